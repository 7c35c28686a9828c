"""Shared fixtures: sample data generated once per session, scripts run once per session.

``sample_root`` holds one year (2009) of two tiny synthetic models at 2°: SYNTH-ESM-A on a
regular grid and SYNTH-ESM-B on a curvilinear grid. ``pipeline_run`` runs the regression,
detection and tracking scripts' ``main`` on them (as ESMValCore would, without it), once.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from carbon_biomes.sample_data import generate_sample_data

REPOSITORY = Path(__file__).resolve().parent.parent
SCRIPTS = REPOSITORY / "diag_scripts" / "carbon_biomes"
MODELS = ("SYNTH-ESM-A", "SYNTH-ESM-B")
TINY_BOX = 10.0
TINY_NETWORK = {"epochs": 8, "hidden_units": [32, 32], "l2": 1e-4, "dropout": 0.1}


def load_script(name: str) -> Any:
    """Import a diagnostic script as a module."""
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def metadata_entries(root: Path, models: tuple[str, ...] | None = None) -> dict[str, dict]:
    """``input_data`` as ESMValCore would pass it: one entry per file, with alias and facets."""
    entries = {}
    for path in sorted(root.rglob("*.nc")):
        short_name, mip, dataset, exp, ensemble, grid = path.name.split("_")[:6]
        if models and dataset not in models:
            continue
        entries[str(path)] = {
            "filename": str(path), "short_name": short_name, "mip": mip, "dataset": dataset,
            "exp": exp, "ensemble": ensemble, "grid": grid.removesuffix(".nc"),
            "project": "CMIP6", "alias": dataset,
        }  # fmt: skip
    return entries


def script_cfg(root: Path, name: str, input_data: dict | None = None, **options: Any) -> dict:
    """Settings of one script run with its own run, work and plot folders."""
    cfg = {
        "run_dir": str(root / name / "run"),
        "work_dir": str(root / name / "work"),
        "plot_dir": str(root / name / "plots"),
        "input_data": input_data or {},
        "output_file_type": "png",
        **options,
    }
    for key in ("run_dir", "work_dir", "plot_dir"):
        Path(cfg[key]).mkdir(parents=True, exist_ok=True)
    return cfg


@pytest.fixture(scope="session")
def sample_root(tmp_path_factory) -> Path:
    """Tiny synthetic CMIP6 data, generated once for the whole session."""
    root = tmp_path_factory.mktemp("sample_data")
    generate_sample_data(root, models=MODELS, years=(2009, 2009), resolution=2.0)
    return root


@pytest.fixture(scope="session")
def input_data(sample_root) -> dict[str, dict]:
    """The metadata of SYNTH-ESM-A (regular grid)."""
    return metadata_entries(sample_root, ("SYNTH-ESM-A",))


class PipelineRun(dict):
    """The cfg of each script run (by stage), and how often each stage regressed a month."""

    regress_calls: dict[str, int]


@pytest.fixture(scope="session")
def run_pipeline(tmp_path_factory) -> Callable[..., PipelineRun]:
    """Run regression, detection, tracking and analysis on some input data."""
    from carbon_biomes.core import monthly_regression

    def run(
        input_data: dict,
        name: str = "run",
        tracking: bool = True,
        regression: dict | None = None,
        detection: dict | None = None,
        analysis: dict | None = None,
    ) -> PipelineRun:
        root = tmp_path_factory.mktemp(name)
        cfgs = PipelineRun()
        cfgs.regress_calls = {}
        stages = [
            ("regression", "regress_boxes", dict(input_data=input_data, box_size=TINY_BOX,
                                                 **(regression or {}))),
            ("detection", "detect_biomes", dict(**(detection or {}))),
            ("tracking", "track_biomes", dict(TINY_NETWORK)),
            ("analysis", "analyse_biomes", dict(input_data=input_data, **(analysis or {}))),
        ][: 4 if tracking else 2]  # fmt: skip
        original = monthly_regression.regress_month
        for stage, script, options in stages:
            ancestors = [cfg["work_dir"] for cfg in cfgs.values()]
            options.setdefault("input_files", ancestors)
            data = options.pop("input_data", None)
            cfgs[stage] = script_cfg(root, stage, data, **options)
            calls = []

            def counting(*args, _calls=calls, **kwargs):
                _calls.append(1)
                return original(*args, **kwargs)

            monthly_regression.regress_month = counting
            try:
                load_script(script).main(cfgs[stage])
            finally:
                monthly_regression.regress_month = original
            cfgs.regress_calls[stage] = len(calls)
        return cfgs

    return run


@pytest.fixture(scope="session")
def pipeline_run(sample_root, run_pipeline) -> PipelineRun:
    """The four scripts run once on both tiny models."""
    return run_pipeline(metadata_entries(sample_root), "pipeline")
