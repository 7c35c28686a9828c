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
"$venv/bin/python" -c "import esmvalcore.preprocessor, carbon_biomes" \
    || { echo "error: the environment in $venv cannot import esmvalcore/carbon_biomes" >&2; exit 1; }
echo "Environment ready: $venv"
