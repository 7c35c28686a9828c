"""The same recipe run twice gives the same numbers: every NetCDF value and every CSV byte.

The five in-process stages (regression, detection, tracking, analysis, then the comparison with
``common_labels: reference`` and ``pooled``) run twice on the tiny two-model sample data, each
time into folders of their own. Every NetCDF variable (data and coordinates) must be equal,
NaN and masked positions included, and so must every attribute except the global ``history``,
which carries a time stamp; every CSV table must be byte-identical.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from tests.conftest import TINY_NETWORK, load_script, metadata_entries, script_cfg

pytestmark = pytest.mark.slow

REFERENCE = "SYNTH-ESM-A"
#: Attributes that differ between two runs by design (time stamps, the run's own folders).
VOLATILE_ATTRIBUTES = frozenset({"history"})


def _run_everything(sample_root, run_pipeline, tmp_path_factory, name: str) -> list[Path]:
    """All five stages; returns the work folders (one per stage and comparison)."""
    cfgs = run_pipeline(metadata_entries(sample_root), name)
    folders = [cfg["work_dir"] for cfg in cfgs.values()]
    work = [Path(folder) for folder in folders]
    for mode, options in (
        ("reference", {}),
        ("pooled", dict(min_biomes=2, max_biomes=6, min_biome_size=2, **TINY_NETWORK)),
    ):
        root = tmp_path_factory.mktemp(f"{name}_compare_{mode}")
        cfg = script_cfg(root, "comparison", None, input_files=folders, report=False,
                         regions=["Southern Ocean", "Global"], reference=REFERENCE,
                         common_labels=mode, **options)  # fmt: skip
        load_script("compare_biomes").main(cfg)
        work.append(Path(cfg["work_dir"]))
    return work


@pytest.fixture(scope="module")
def two_runs(sample_root, run_pipeline, tmp_path_factory):
    first = _run_everything(sample_root, run_pipeline, tmp_path_factory, "first")
    second = _run_everything(sample_root, run_pipeline, tmp_path_factory, "second")
    return first, second


def _files(folders: list[Path], suffix: str) -> dict[str, Path]:
    """Files of one kind by ``stage/name`` (the position of the folder names the stage)."""
    return {
        f"{n}/{path.relative_to(folder)}": path
        for n, folder in enumerate(folders)
        for path in sorted(folder.rglob(f"*{suffix}"))
    }


def _clean(attrs: dict) -> dict:
    return {
        key: (value.tolist() if isinstance(value, np.ndarray) else value)
        for key, value in attrs.items()
        if key not in VOLATILE_ATTRIBUTES
    }


def _assert_same_dataset(a: xr.Dataset, b: xr.Dataset, name: str) -> None:
    assert set(a.variables) == set(b.variables), name
    assert _clean(a.attrs) == _clean(b.attrs), name
    for variable in a.variables:
        x, y = a[variable], b[variable]
        assert x.dims == y.dims and x.shape == y.shape, f"{name}:{variable}"
        assert _clean(x.attrs) == _clean(y.attrs), f"{name}:{variable}"
        if x.dtype.kind in "fc":
            np.testing.assert_array_equal(x.values, y.values, err_msg=f"{name}:{variable}")
        else:
            assert np.array_equal(x.values, y.values), f"{name}:{variable}"


def test_every_netcdf_is_identical(two_runs):
    first, second = (_files(run, ".nc") for run in two_runs)
    assert set(first) == set(second)
    assert len(first) >= 15  # every stage wrote NetCDF products
    differing = []
    for name, path in first.items():
        # decode nothing: compare the stored values (NaN positions, fill values, flags) as written
        with xr.open_dataset(path, decode_cf=False) as a, \
                xr.open_dataset(second[name], decode_cf=False) as b:  # fmt: skip
            try:
                _assert_same_dataset(a, b, name)
            except AssertionError as error:
                differing.append(f"{name}: {str(error)[:300]}")
    assert not differing, "\n".join(differing)


def test_every_csv_is_byte_identical(two_runs):
    first, second = (_files(run, ".csv") for run in two_runs)
    assert set(first) == set(second)
    assert len(first) >= 15
    differing = [name for name, path in first.items()
                 if path.read_bytes() != second[name].read_bytes()]  # fmt: skip
    assert not differing, differing


def _without_timing(value):
    """A JSON document without its wall-clock times (``training_seconds``)."""
    if isinstance(value, dict):
        return {k: _without_timing(v) for k, v in value.items() if k != "training_seconds"}
    if isinstance(value, list):
        return [_without_timing(v) for v in value]
    return value


def test_classifier_and_cmec_json_are_identical(two_runs):
    """The stored classifiers (scaler, OOD model, classes, history) and the CMEC bundles are the
    same numbers; only the classifiers' wall-clock training time may differ."""
    first, second = (_files(run, ".json") for run in two_runs)
    assert set(first) == set(second)
    assert any(name.endswith("_biome_classifier.json") for name in first)
    assert any(name.endswith("comparison_cmec.json") for name in first)
    differing = [
        name for name, path in first.items()
        if _without_timing(json.loads(path.read_text(encoding="utf-8")))
        != _without_timing(json.loads(second[name].read_text(encoding="utf-8")))
    ]  # fmt: skip
    assert not differing, differing


def test_keras_weights_are_identical(two_runs):
    """The trained networks: every weight array equal."""
    from carbon_biomes.core.classifier import load

    first, second = (_files(run, "_biome_classifier.keras") for run in two_runs)
    assert set(first) == set(second) and first
    for name, path in first.items():
        a, b = load(path).model_.get_weights(), load(second[name]).model_.get_weights()
        assert len(a) == len(b), name
        for x, y in zip(a, b, strict=True):
            np.testing.assert_array_equal(x, y, err_msg=name)
