"""End-to-end: `esmvaltool run` of the demo recipe's diagnostics on tiny generated data.

Two ensemble members and a second experiment of one synthetic model (regular grid) plus a second
model (curvilinear grid), at 2°, one year, 10° boxes, a short network training, and the
observation-like reference assembled from two products (OBS6 carbon, OBS SST, regridded in the
recipe's preprocessing): exercises ESMValCore's data finding, CMOR checks and preprocessing, the
dataset identity (aliases) through every diagnostic script, their outputs and provenance, the
comparison with the reference, index.html and the offline report.
"""

from __future__ import annotations

from pathlib import Path

import iris
import numpy as np
import pytest
import xarray as xr
import yaml

from carbon_biomes.esmvalcore_config import latest_run_dir, run_recipe, write_config
from carbon_biomes.sample_data import generate_observations, generate_sample_data
from carbon_biomes.workflow import products
from carbon_biomes.workflow.provenance import missing_records

pytestmark = pytest.mark.esmvaltool

REPOSITORY = Path(__file__).resolve().parent.parent
MODELS = ("SYNTH-ESM-A", "SYNTH-ESM-B")
#: (model, experiment, ensemble) of the recipe: two members and two experiments of model A
RUNS = (
    ("SYNTH-ESM-A", "historical", "r1i1p1f1"),
    ("SYNTH-ESM-A", "historical", "r2i1p1f1"),
    ("SYNTH-ESM-A", "esm-hist", "r1i1p1f1"),
    ("SYNTH-ESM-B", "historical", "r1i1p1f1"),
)
SCRIPTS = ("regression", "detection", "tracking")


def _tiny_recipe(path: Path) -> Path:
    recipe = yaml.safe_load(
        (REPOSITORY / "recipes" / "recipe_carbon_biomes_demo.yml").read_text(encoding="utf-8")
    )
    runs = [
        {
            "project": "CMIP6", "dataset": model, "institute": "SYNTH", "exp": exp,
            "ensemble": ensemble, "grid": "gn", "timerange": "2009/2009",
        }
        for model, exp, ensemble in RUNS
    ]  # fmt: skip
    recipe["MODELS"] = runs
    diagnostic = recipe["diagnostics"]["carbon_biomes"]
    for group in diagnostic["variables"].values():
        if group.get("preprocessor") == "obs_to_common_grid":
            for entry in group["additional_datasets"]:
                entry["timerange"] = "2009/2009"
        else:  # models: aliases from ESMValCore (members and experiments differ)
            group["additional_datasets"] = runs
    scripts = diagnostic["scripts"]
    scripts["regression"].update({"box_size": 10.0})
    scripts["detection"].update({"reference_months": ["2009-01"]})
    scripts["tracking"].update({"epochs": 8, "hidden_units": [32, 32]})
    scripts["comparison_pooled"].update({"epochs": 8, "hidden_units": [32, 32]})
    path.write_text(yaml.safe_dump(recipe, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def esmvaltool_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("e2e")
    generate_sample_data(root / "data", models=["SYNTH-ESM-A"], years=(2009, 2009),
                         resolution=2.0, ensembles=("r1i1p1f1", "r2i1p1f1"),
                         experiments=("historical", "esm-hist"))  # fmt: skip
    generate_sample_data(root / "data", models=["SYNTH-ESM-B"], years=(2009, 2009),
                         resolution=2.0)  # fmt: skip
    generate_observations(root / "data", years=(2009, 2009), resolution=2.0)
    config_dir = root / "config"
    write_config(config_dir, root / "data", root / "output", max_parallel_tasks=2,
                 keep_preprocessed=True)  # fmt: skip
    recipe = _tiny_recipe(root / "recipe_carbon_biomes_tiny.yml")
    result = run_recipe(recipe, config_dir, repository=REPOSITORY)
    run_dir = latest_run_dir(root / "output", recipe)
    return result, run_dir


def _aliases(run_dir: Path) -> dict[tuple[str, str, str], str]:
    """(model, exp, ensemble) -> alias, from ESMValCore's metadata of the preprocessed files."""
    aliases = {}
    for metadata in (run_dir / "preproc").rglob("metadata.yml"):
        for entry in yaml.safe_load(metadata.read_text(encoding="utf-8")).values():
            if entry["project"] != "CMIP6":
                continue
            key = (entry["dataset"], entry["exp"], entry["ensemble"])
            aliases[key] = entry["alias"]
    return aliases


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


def test_members_and_experiments_are_separate_datasets(esmvaltool_run):
    """Every output and table row names the right member and experiment."""
    _, run_dir = esmvaltool_run
    aliases = _aliases(run_dir)
    assert set(aliases) == set(RUNS) and len(set(aliases.values())) == len(RUNS)
    work = run_dir / "work" / "carbon_biomes"
    for (model, exp, ensemble), alias in aliases.items():
        for script, product in (("regression", "monthly_rcs"), ("detection", "biomes"),
                                ("tracking", "tracked_biomes")):  # fmt: skip
            path = work / script / f"{alias}_{product}.nc"
            with xr.open_dataset(path) as ds:
                assert (ds.attrs["dataset_alias"], ds.attrs["dataset"], ds.attrs["experiment"],
                        ds.attrs["ensemble"]) == (alias, model, exp, ensemble)  # fmt: skip
        rows = products.read_table(work / "tracking" / f"{alias}_biome_area.csv",
                                   products.PRODUCTS["biome_area"])  # fmt: skip
        assert {(r["dataset"], r["model"], r["exp"], r["ensemble"]) for r in rows} == {
            (alias, model, exp, ensemble)
        }
    for script in SCRIPTS:
        rows = products.read_table(work / script / f"{script}_metrics.csv",
                                   products.PRODUCTS[f"{script}_metrics"])  # fmt: skip
        named = {(r["dataset"], r["model"], r["exp"], r["ensemble"]) for r in rows
                 if r["dataset"] != "SYNTH-OBS"}  # the reference of the comparison
        assert named == {(alias, *key) for key, alias in aliases.items()}
    # the two members differ (their own noise), and so their RCs
    a = products.read_monthly_rcs(
        work / "regression" / f"{aliases[RUNS[0]]}_monthly_rcs.nc"
    ).regressions(["2009-01"])[0]
    b = products.read_monthly_rcs(
        work / "regression" / f"{aliases[RUNS[1]]}_monthly_rcs.nc"
    ).regressions(["2009-01"])[0]
    assert not np.array_equal(a.all_boxes.slopes, b.all_boxes.slopes)


@pytest.mark.parametrize("script", SCRIPTS)
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
    # aliases: ESMValCore prefixes the project, which differs from the reference's
    for model in (*MODELS, "SYNTH-OBS"):
        assert any(model in p.name and p.suffix == ".nc" for p in outputs), model
        if script != "regression":  # the regression stage draws no figures
            assert any(model in p.name and p.suffix == ".png" for p in outputs), model


def _is_provenance_file(path: Path) -> bool:
    return path.name.endswith(("_provenance.xml", "_citation.bibtex", "_data_citation_info.txt"))


def test_detection_and_tracking_outputs(esmvaltool_run):
    _, run_dir = esmvaltool_run
    work = run_dir / "work" / "carbon_biomes"
    for alias in _aliases(run_dir).values():
        detected = products.read_detected_biomes(work / "detection" / f"{alias}_biomes.nc")
        labels = iris.load_cube(work / "detection" / f"{alias}_biomes.nc",
                                iris.NameConstraint(var_name="biome"))  # fmt: skip
        flags = set(labels.attributes["flag_values"])
        values = set(np.unique(np.ma.compressed(labels.data)))
        assert values == flags == set(detected.names) and len(flags) >= 2
        native = iris.load_cube(work / "detection" / f"{alias}_biomes_native_grid.nc")
        assert set(np.unique(np.ma.compressed(native.data))) == flags  # not an empty file
        rcs = products.read_monthly_rcs(work / "regression" / f"{alias}_monthly_rcs.nc")
        january = rcs.regressions(["2009-01"])[0]
        # SST slopes of surface seawater are positive: about 4 % of fCO2 per degree
        assert np.median(january.kept.slopes[:, 0]) > 5.0
        tracked = products.read_tracked_biomes(work / "tracking" / f"{alias}_tracked_biomes.nc")
        assert len(tracked.months) == 12 and tracked.labels.count() > 1000
        assert (work / "tracking" / f"{alias}_biome_classifier.keras").is_file()
        assert (work / "tracking" / f"{alias}_biome_classifier.json").is_file()
    rows = (work / "tracking" / "tracking_metrics.csv").read_text(encoding="utf-8").splitlines()
    assert rows[0] == "dataset,model,ensemble,exp,biome,metric,value"
    assert any(",all,accuracy," in row for row in rows)


def test_analysis_of_every_dataset_sums_to_100(esmvaltool_run):
    """The analysis stage under esmvaltool: coverage of every alias, region and month."""
    _, run_dir = esmvaltool_run
    aliases = _aliases(run_dir)
    work = run_dir / "work" / "carbon_biomes" / "analysis"
    plots = run_dir / "plots" / "carbon_biomes" / "analysis"
    for (model, exp, ensemble), alias in aliases.items():
        rows = products.read_table(work / f"{alias}_coverage.csv",
                                   products.PRODUCTS["coverage_table"])  # fmt: skip
        assert {(r["dataset"], r["model"], r["exp"], r["ensemble"]) for r in rows} == {
            (alias, model, exp, ensemble)
        }
        totals: dict[tuple[str, str], float] = {}
        for row in rows:
            if float(row["classified_area_km2"]) > 0:
                key = (row["region"], row["time"])
                totals[key] = totals.get(key, 0.0) + float(row["coverage_percent"])
        assert len(totals) >= 5 * 12 * 0.7
        assert all(abs(total - 100.0) <= 0.01 for total in totals.values())
        # the physical context came from the preprocessed fields named as ancestors
        context = products.read_table(work / f"{alias}_physical_context.csv",
                                      products.PRODUCTS["physical_context"])  # fmt: skip
        assert {"sst", "sss", "mld", "ice", "fco2"} <= {r["variable"] for r in context}
        for figure in ("coverage_seasonal_cycle", "coverage_series", "coverage_bars",
                       "frequency_maps", "rc_trend_maps"):  # fmt: skip
            assert (plots / f"{alias}_{figure}.png").is_file()


REFERENCE = "SYNTH-OBS"


def test_assembled_reference_runs_through_every_stage(esmvaltool_run):
    """SYNTH-OBS: carbon from the OBS6 product, SST from the OBS product, one dataset."""
    _, run_dir = esmvaltool_run
    work = run_dir / "work" / "carbon_biomes"
    with xr.open_dataset(work / "regression" / f"{REFERENCE}_monthly_rcs.nc") as ds:
        assert ds.attrs["dataset_alias"] == REFERENCE
        assert ds.attrs["dataset"] == "SYNTH-OBS-CARBON+SYNTH-OBS-SST"
        assert ds.attrs["project"] == "OBS6+OBS"
    _, grid = products.read_native_grid(work / "regression" / f"{REFERENCE}_native_grid.nc")
    assert grid.latitude.shape == (180,) and grid.longitude.shape == (360,)  # regridded to 1x1
    for script, product in (("detection", "biomes"), ("tracking", "tracked_biomes"),
                            ("analysis", "coverage")):  # fmt: skip
        assert (work / script / f"{REFERENCE}_{product}.nc").is_file()


@pytest.mark.parametrize("script", ["comparison", "comparison_pooled"])
def test_comparison_with_the_reference(esmvaltool_run, script):
    _, run_dir = esmvaltool_run
    aliases = set(_aliases(run_dir).values())
    work = run_dir / "work" / "carbon_biomes" / script
    names = None
    for alias in aliases | {REFERENCE}:
        common = products.read_tracked_biomes(work / f"{alias}_common_biomes.nc",
                                              products.PRODUCTS["common_biomes"])  # fmt: skip
        names = names or common.names
        assert common.names == names  # one name set for every dataset
        assert common.labels.count() > 0
    rows = products.read_table(work / "comparison_metrics.csv",
                               products.PRODUCTS["comparison_metrics"])  # fmt: skip
    assert {r["dataset"] for r in rows} == aliases | {REFERENCE, "MultiModelMean",
                                                      "MultiModelSpread"}  # fmt: skip
    agreement = {r["dataset"]: float(r["value"]) for r in rows
                 if r["metric"] == "agreement" and r["region"] == "Global"}  # fmt: skip
    assert set(agreement) == aliases | {"MultiModelMean", "MultiModelSpread"}
    assert all(0.0 < agreement[a] <= 1.0 for a in aliases)
    assert (work / "comparison_cmec.json").is_file()
    plots = run_dir / "plots" / "carbon_biomes" / script
    for figure in ("comparison_maps", "comparison_coverage_bars", "comparison_portrait",
                   "comparison_agreement_map", "comparison_seasonal_cycle_Global"):  # fmt: skip
        assert (plots / f"{figure}.png").is_file(), figure
    provenance = run_dir / "run" / "carbon_biomes" / script / "diagnostic_provenance.yml"
    records = yaml.safe_load(provenance.read_text(encoding="utf-8"))
    ancestors = records[str(plots / "comparison_maps.png")]["ancestors"]
    for alias in aliases | {REFERENCE}:
        assert any(a.endswith(f"{alias}_monthly_rcs.nc") for a in ancestors), alias


def test_report_opens_offline_with_every_output(esmvaltool_run):
    """The pooled comparison (the last script) wrote the run's report; Chromium loads it with
    no request outside file:// and every figure of the run in it."""
    from tests.test_report import assert_offline_and_complete, browser_check, chromium_executable

    _, run_dir = esmvaltool_run
    report = run_dir / "carbon_biomes_report.html"
    assert report.is_file()
    figures = sorted((run_dir / "plots").rglob("*.png"))
    result = browser_check(report, chromium_executable())
    assert_offline_and_complete(report, result, n_images=len(figures))
    html = report.read_text(encoding="utf-8")
    positions = [html.index(f'<section class="stage" id="{stage}"')
                 for stage in ("regression", "detection", "tracking", "analysis", "comparison")]
    assert positions == sorted(positions)  # in pipeline order

