#!/usr/bin/env bash
# Create (or update) the project's virtual environment: a Python >= 3.12 found on this machine,
# the project with its test extras, and, only if real esmpy cannot be imported, the import-only
# esmpy stand-in from tools/esmpy_stub (see README: ESMValCore imports esmpy, which is not on PyPI).
set -euo pipefail
venv=${1:-.venv}
here=$(cd "$(dirname "$0")/.." && pwd)
if [ ! -x "$venv/bin/python" ]; then
    python=$("$here/tools/find_python.sh")
    echo "Creating $venv with $python ($("$python" --version 2>&1))"
    "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --upgrade pip
fi
echo "Installing carbon-biomes and its dependencies into $venv (first time: a few minutes, ~3 GB)"
"$venv/bin/python" -m pip install --quiet -e "$here[test]"
if "$venv/bin/python" -c "import esmpy" >/dev/null 2>&1; then
    echo "esmpy is importable: $("$venv/bin/python" -c 'import esmpy; print(esmpy.__file__)')"
else
    echo "Real esmpy is not importable: installing the import-only esmpy stand-in (no ESMF regridding)"
    "$venv/bin/python" -m pip install --quiet "$here/tools/esmpy_stub"
fi
# The CF checker of the tests (tests/cf_compliance.py runs cfchecks from cfchecker, a test extra)
# needs the UDUNITS-2 C library, which cfunits loads through ctypes. cf_compliance normally uses
# the copy that the cf-units wheel bundles; only if its self-test fails are Debian's
# libudunits2-0 and libudunits2-data fetched (apt-get download) and unpacked (dpkg -x) into
# $venv/udunits2, which cf_compliance then prefers: no root, nothing installed system-wide.
udunits_debs="libudunits2-0 libudunits2-data"
if cf_out=$("$venv/bin/python" "$here/tests/cf_compliance.py" --self-test 2>&1); then
    echo "$cf_out"
else
    echo "cfchecks cannot run yet: unpacking Debian's $udunits_debs into $venv/udunits2"
    debs=$(mktemp -d)
    # shellcheck disable=SC2086
    if ! (cd "$debs" && apt-get download $udunits_debs) >"$debs/apt.log" 2>&1; then
        if [ "$(id -u)" = 0 ]; then  # apt's package lists may never have been fetched
            apt-get update -qq >>"$debs/apt.log" 2>&1 || true
            # shellcheck disable=SC2086
            (cd "$debs" && apt-get download $udunits_debs) >>"$debs/apt.log" 2>&1 || true
        fi
    fi
    if ! ls "$debs"/*.deb >/dev/null 2>&1; then
        cat "$debs/apt.log" >&2
        echo "error: could not download $udunits_debs (as root: apt-get update first)" >&2
        rm -rf "$debs"
        exit 1
    fi
    rm -rf "$venv/udunits2.partial"
    mkdir -p "$venv/udunits2.partial"
    for deb in "$debs"/*.deb; do dpkg -x "$deb" "$venv/udunits2.partial"; done
    rm -rf "$venv/udunits2" "$debs"
    mv "$venv/udunits2.partial" "$venv/udunits2"
    "$venv/bin/python" "$here/tests/cf_compliance.py" --self-test \
        || { echo "error: cfchecks cannot run with $venv/udunits2 either" >&2; echo "$cf_out" >&2; exit 1; }
fi
"$venv/bin/python" -c "import esmvalcore.preprocessor, carbon_biomes" \
    || { echo "error: the environment in $venv cannot import esmvalcore/carbon_biomes" >&2; exit 1; }
echo "Environment ready: $venv"
