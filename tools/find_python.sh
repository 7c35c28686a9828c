#!/usr/bin/env bash
# Print the path of a working Python >= 3.12 (ESMValCore 2.15 needs it), or explain and fail.
# Order: $PYTHON if set, python3.13/python3.12/python3 on PATH, then pyenv and conda installs.
set -u
tried=()
check() {
    local candidate=$1
    [ -n "$candidate" ] || return 1
    tried+=("$candidate")
    "$candidate" -c 'import sys, venv, ensurepip; sys.exit(0 if sys.version_info >= (3, 12) else 1)' \
        >/dev/null 2>&1 || return 1
    command -v "$candidate" 2>/dev/null || echo "$candidate"
    return 0
}
if [ -n "${PYTHON:-}" ]; then
    check "$PYTHON" && exit 0
    echo "error: PYTHON=$PYTHON is not a working Python >= 3.12 with venv" >&2
    exit 1
fi
for name in python3.12 python3.13 python3; do
    check "$name" && exit 0
done
roots=()
command -v pyenv >/dev/null 2>&1 && roots+=("$(pyenv root)/versions")
roots+=("$HOME/.pyenv/versions" "/usr/local/bin" "/opt/conda/bin" "$HOME/miniconda3/bin" "$HOME/anaconda3/bin")
for root in "${roots[@]}"; do
    for candidate in "$root"/3.12*/bin/python3.12 "$root"/3.13*/bin/python3.13 \
                     "$root"/python3.12 "$root"/python3.13; do
        [ -x "$candidate" ] && check "$candidate" && exit 0
    done
done
{
    echo "error: no working Python >= 3.12 (with venv and ensurepip) was found."
    echo "Tried: ${tried[*]:-nothing}"
    echo "Install Python 3.12 or newer, or run: make PYTHON=/path/to/python3.12 <target>"
} >&2
exit 1
