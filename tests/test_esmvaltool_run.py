"""End-to-end: `esmvaltool run` of the demo recipe's diagnostics on tiny generated data.

Two synthetic models (regular and curvilinear grid) at 2°, one year, 10° boxes, a short network
training: exercises ESMValCore's data finding, CMOR checks and preprocessing, both diagnostic
scripts, their outputs and provenance, and index.html.
"""

from __future__ import annotations

from pathlib import Path

import iris
import numpy as np
import pytest
import yaml

from carbon_biomes.esmvalcore_config import latest_run_dir, run_recipe, write_config
from carbon_biomes.provenance import missing_records
from carbon_biomes.sample_data import generate_sample_data

pytestmark = pytest.mark.esmvaltool

REPOSITORY = Path(__file__).resolve().parent.parent
MODELS = ("SYNTH-ESM-A", "SYNTH-ESM-B")


def _tiny_recipe(path: Path) -> Path:
    recipe = yaml.safe_load(
        (REPOSITORY / "recipes" / "recipe_carbon_biomes_demo.yml").read_text(encoding="utf-8")
    )
    recipe["datasets"] = [
        {
            "project": "CMIP6", "dataset": model, "institute": "SYNTH", "exp": "historical",
            "ensemble": "r1i1p1f1", "grid": "gn", "timerange": "2009/2009",
        }
        for model in MODELS
    ]  # fmt: skip
    scripts = recipe["diagnostics"]["carbon_biomes"]["scripts"]
    scripts["detection"].update({"box_size": 10.0, "reference_months": ["2009-01"]})
    scripts["tracking"].update({"epochs": 8, "hidden_units": [32, 32]})
    path.write_text(yaml.safe_dump(recipe, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def esmvaltool_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("e2e")
    generate_sample_data(root / "data", models=MODELS, years=(2009, 2009), resolution=2.0)
    config_dir = root / "config"
    write_config(config_dir, root / "data", root / "output", max_parallel_tasks=2)
    recipe = _tiny_recipe(root / "recipe_carbon_biomes_tiny.yml")
    result = run_recipe(recipe, config_dir, repository=REPOSITORY)
    run_dir = latest_run_dir(root / "output", recipe)
    return result, run_dir


def test_run_succeeds_and_writes_index(esmvaltool_run):
    result, run_dir = esmvaltool_run
    log = (run_dir / "run" / "main_log.txt").read_text(encoding="utf-8") if run_dir else ""
    assert result.returncode == 0, log[-5000:]
    assert (run_dir / "index.html").is_file()


def test_cmor_log_has_no_errors(esmvaltool_run):
    _, run_dir = esmvaltool_run
    cmor_log = (run_dir / "run" / "cmor_log.txt").read_text(encoding="utf-8")
    assert "error" not in cmor_log.lower(), cmor_log[:2000]
    assert "ERROR" not in (run_dir / "run" / "main_log.txt").read_text(encoding="utf-8")


def test_no_online_lookups(esmvaltool_run):
    """The synthetic data carry no CMIP6 mip_era: ESMValCore does not query citation services."""
    _, run_dir = esmvaltool_run
    log = (run_dir / "run" / "main_log_debug.txt").read_text(encoding="utf-8")
    assert "citation information" not in log
    assert "citation link" not in log


@pytest.mark.parametrize("script", ["detection", "tracking"])
def test_every_output_has_provenance(esmvaltool_run, script):
    _, run_dir = esmvaltool_run
    work = run_dir / "work" / "carbon_biomes" / script
    plots = run_dir / "plots" / "carbon_biomes" / script
    provenance = run_dir / "run" / "carbon_biomes" / script / "diagnostic_provenance.yml"
    outputs = [p for p in [*work.iterdir(), *plots.iterdir()] if not _is_provenance_file(p)]
    assert outputs
    unrecorded = set(missing_records(provenance, work, plots))
    everything = [*work.rglob("*"), *plots.rglob("*")]
    assert unrecorded == {p for p in everything if _is_provenance_file(p)}
    for path in outputs:
        assert path.with_name(f"{path.stem}_provenance.xml").is_file(), path
    for model in MODELS:
        assert any(p.name.startswith(model) and p.suffix == ".nc" for p in outputs), model
        assert any(p.name.startswith(model) and p.suffix == ".png" for p in outputs), model


def _is_provenance_file(path: Path) -> bool:
    return path.name.endswith(("_provenance.xml", "_citation.bibtex", "_data_citation_info.txt"))


def test_detection_outputs_are_cf_and_consistent(esmvaltool_run):
    _, run_dir = esmvaltool_run
    work = run_dir / "work" / "carbon_biomes" / "detection"
    for model in MODELS:
        labels = iris.load_cube(next(work.glob(f"{model}_2009-01_biome_labels.nc")))
        values = np.ma.compressed(labels.data)
        flags = labels.attributes["flag_values"]
        assert set(np.unique(values)) == set(flags)
        assert len(labels.attributes["flag_meanings"].split()) == len(flags)
        native = iris.load_cube(next(work.glob(f"{model}_2009-01_biome_labels_native_grid.nc")))
        assert set(np.unique(np.ma.compressed(native.data))) <= set(flags)
        regression = iris.load(next(work.glob(f"{model}_2009-01_box_regression.nc")))
        rc_sst = regression.extract_cube(iris.NameConstraint(var_name="rc_sst"))
        assert str(rc_sst.units) == "uatm degC-1"
        # SST slopes of surface seawater are positive: about 4 % of fCO2 per degree
        assert np.ma.median(rc_sst.data) > 5.0
    metrics = (work / "detection_metrics.csv").read_text(encoding="utf-8").splitlines()
    assert metrics[0] == "dataset,biome,metric,value"


def test_tracking_outputs(esmvaltool_run):
    _, run_dir = esmvaltool_run
    work = run_dir / "work" / "carbon_biomes" / "tracking"
    for model in MODELS:
        cubes = iris.load(next(work.glob(f"{model}_*_tracked_biomes.nc")))
        labels = cubes.extract_cube(iris.NameConstraint(var_name="biome"))
        assert labels.shape[0] == 12
        assert (work / f"{model}_tracking_model.keras").is_file()
        assert (work / f"{model}_tracking_model.json").is_file()
    rows = (work / "tracking_metrics.csv").read_text(encoding="utf-8").splitlines()
    assert any(",all,accuracy," in row for row in rows)
