"""The comparison script on the tiny two-model pipeline (reference and pooled common labels)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr
from tests.conftest import TINY_NETWORK, load_script, script_cfg

from carbon_biomes.workflow import products

PRODUCTS = products.PRODUCTS
REFERENCE = "SYNTH-ESM-A"
MODEL = "SYNTH-ESM-B"


def _compare(pipeline_run, tmp_path_factory, name, folders=None, **options):
    root = tmp_path_factory.mktemp(name)
    folders = folders or [cfg["work_dir"] for cfg in pipeline_run.values()]
    cfg = script_cfg(root, "comparison", None, input_files=folders, report=False,
                     regions=["Southern Ocean", "Global"], **options)  # fmt: skip
    load_script("compare_biomes").main(cfg)
    return cfg


@pytest.fixture(scope="module")
def reference_run(pipeline_run, tmp_path_factory):
    return _compare(pipeline_run, tmp_path_factory, "compare_reference", reference=REFERENCE)


@pytest.fixture(scope="module")
def pooled_run(pipeline_run, tmp_path_factory):
    return _compare(pipeline_run, tmp_path_factory, "compare_pooled", common_labels="pooled",
                    reference=REFERENCE, min_biomes=2, max_biomes=6, min_biome_size=2,
                    **TINY_NETWORK)  # fmt: skip


def _metrics(cfg):
    rows = products.read_table(f"{cfg['work_dir']}/comparison_metrics.csv",
                               PRODUCTS["comparison_metrics"])  # fmt: skip
    return rows


def test_reference_labels_are_the_reference_tracking(pipeline_run, reference_run):
    """With common_labels: reference, the reference's common labels are its tracked labels,
    and every dataset carries the reference's biome names."""
    tracked = products.read_tracked_biomes(
        f"{pipeline_run['tracking']['work_dir']}/{REFERENCE}_tracked_biomes.nc"
    )
    common = products.read_tracked_biomes(
        f"{reference_run['work_dir']}/{REFERENCE}_common_biomes.nc", PRODUCTS["common_biomes"]
    )
    np.testing.assert_array_equal(np.ma.filled(common.labels, -1), np.ma.filled(tracked.labels, -1))
    other = products.read_tracked_biomes(
        f"{reference_run['work_dir']}/{MODEL}_common_biomes.nc", PRODUCTS["common_biomes"]
    )
    assert other.names == tracked.names
    assert set(np.unique(other.labels.compressed())) <= set(tracked.names)
    with xr.open_dataset(f"{reference_run['work_dir']}/{MODEL}_common_biomes.nc") as ds:
        assert ds.attrs["common_labels"] == "reference"
        assert ds.attrs["reference_alias"] == REFERENCE
        assert ds.attrs["product"] == "carbon_biomes.common_biomes"


def test_metrics_against_the_reference(reference_run):
    rows = _metrics(reference_run)
    datasets = {row["dataset"] for row in rows}
    assert datasets == {REFERENCE, MODEL, "MultiModelMean", "MultiModelSpread"}
    model = {(r["region"], r["biome"], r["metric"]): float(r["value"]) for r in rows
             if r["dataset"] == MODEL}  # fmt: skip
    agreement = model["Global", "", "agreement"]
    assert 0.0 < agreement <= 1.0
    assert -1.0 <= model["Global", "", "kappa"] <= 1.0
    assert any(metric == "jaccard" for _, _, metric in model)
    assert any(metric == "area_fraction_difference" for _, _, metric in model)
    assert any(metric == "centroid_distance" for _, _, metric in model)
    # one year: no trend is tested
    assert not any(metric.startswith("coverage_trend") for _, _, metric in model)
    # the reference is not compared with itself
    reference = {r["metric"] for r in rows if r["dataset"] == REFERENCE}
    assert "agreement" not in reference and "area_fraction" in reference
    mean = {(r["region"], r["biome"], r["metric"]): float(r["value"]) for r in rows
            if r["dataset"] == "MultiModelMean"}  # fmt: skip
    assert mean["Global", "", "agreement"] == pytest.approx(agreement)
    # the area fractions of the common biomes sum to 100 in every dataset
    for alias in (REFERENCE, MODEL):
        shares = [float(r["value"]) for r in rows if r["dataset"] == alias
                  and r["region"] == "Global" and r["metric"] == "area_fraction"]  # fmt: skip
        assert sum(shares) == pytest.approx(100.0, abs=1e-6)


def test_agreement_map_matches_the_labels(reference_run):
    fraction, count, reference = products.read_agreement_map(
        f"{reference_run['work_dir']}/comparison_agreement.nc"
    )
    assert reference == REFERENCE
    a = products.read_tracked_biomes(f"{reference_run['work_dir']}/{REFERENCE}_common_biomes.nc",
                                     PRODUCTS["common_biomes"])  # fmt: skip
    b = products.read_tracked_biomes(f"{reference_run['work_dir']}/{MODEL}_common_biomes.nc",
                                     PRODUCTS["common_biomes"])  # fmt: skip
    both = ~np.ma.getmaskarray(a.labels) & ~np.ma.getmaskarray(b.labels)
    same = (both & (np.ma.getdata(a.labels) == np.ma.getdata(b.labels))).sum(axis=0)
    expected = np.where(both.sum(axis=0) > 0, 2 * same >= both.sum(axis=0), False)
    valid = ~np.ma.getmaskarray(fraction)
    assert valid.any()
    np.testing.assert_array_equal(np.ma.getdata(fraction)[valid], expected[valid].astype(float))
    assert set(np.unique(count)) <= {0, 1}


def test_matching_table_and_cmec_bundle(reference_run):
    work = reference_run["work_dir"]
    rows = products.read_table(f"{work}/comparison_matching.csv", PRODUCTS["comparison_matching"])
    reference_rows = [r for r in rows if r["dataset"] == REFERENCE]
    # the reference's own biomes are the common ones: all matched to themselves
    assert reference_rows and all(r["status"] == "matched" for r in reference_rows)
    assert all(r["own_biome"] == r["common_biome"] for r in reference_rows)
    assert {r["status"] for r in rows} <= {"matched", "novel", "absent"}
    bundle = json.loads((products.Path(work) / "comparison_cmec.json").read_text())
    assert bundle["DIMENSIONS"]["json_structure"][0] == "source_id"
    assert MODEL in bundle["RESULTS"] and "MultiModelMean" in bundle["RESULTS"]


def test_figures_and_provenance(reference_run):
    plots = products.Path(reference_run["plot_dir"])
    for name in ("comparison_maps", "comparison_coverage_bars", "comparison_portrait",
                 "comparison_agreement_map", "comparison_seasonal_cycle_Global",
                 "comparison_seasonal_cycle_Southern_Ocean"):  # fmt: skip
        assert (plots / f"{name}.png").stat().st_size > 10_000, name
    import yaml

    records = yaml.safe_load(
        (products.Path(reference_run["run_dir"]) / "diagnostic_provenance.yml").read_text()
    )
    written = list(plots.glob("*.png")) + list(products.Path(reference_run["work_dir"]).glob("*"))
    assert {str(p) for p in written if not p.name.startswith(".")} <= set(records)
    maps = records[str(plots / "comparison_maps.png")]
    # every dataset's monthly RCs and detection are ancestors
    for alias in (REFERENCE, MODEL):
        assert any(a.endswith(f"{alias}_monthly_rcs.nc") for a in maps["ancestors"])
        assert any(a.endswith(f"{alias}_biomes.nc") for a in maps["ancestors"])
    assert any(a.endswith(f"{REFERENCE}_biome_classifier.keras") for a in maps["ancestors"])


def test_pooled_labels_share_one_name_set_and_ignore_order(pipeline_run, pooled_run,
                                                           tmp_path_factory):  # fmt: skip
    work = pooled_run["work_dir"]
    a = products.read_tracked_biomes(f"{work}/{REFERENCE}_common_biomes.nc",
                                     PRODUCTS["common_biomes"])  # fmt: skip
    b = products.read_tracked_biomes(f"{work}/{MODEL}_common_biomes.nc", PRODUCTS["common_biomes"])
    assert a.names == b.names
    assert (products.Path(work) / "pooled_biome_classifier.keras").is_file()
    folders = [cfg["work_dir"] for cfg in pipeline_run.values()][::-1]
    again = _compare(pipeline_run, tmp_path_factory, "compare_pooled_reversed", folders=folders,
                     common_labels="pooled", reference=REFERENCE, min_biomes=2, max_biomes=6,
                     min_biome_size=2, **TINY_NETWORK)  # fmt: skip
    for alias in (REFERENCE, MODEL):
        first = products.read_tracked_biomes(f"{work}/{alias}_common_biomes.nc",
                                             PRODUCTS["common_biomes"])  # fmt: skip
        second = products.read_tracked_biomes(f"{again['work_dir']}/{alias}_common_biomes.nc",
                                              PRODUCTS["common_biomes"])  # fmt: skip
        assert first.names == second.names
        np.testing.assert_array_equal(np.ma.filled(first.labels, -1),
                                      np.ma.filled(second.labels, -1))  # fmt: skip


def test_unknown_reference_is_a_clear_error(pipeline_run, tmp_path_factory):
    from carbon_biomes.core.errors import DiagnosticError

    with pytest.raises(DiagnosticError, match="NO-SUCH-OBS.*SYNTH-ESM-A, SYNTH-ESM-B"):
        _compare(pipeline_run, tmp_path_factory, "compare_bad", reference="NO-SUCH-OBS")


def test_comparison_netcdf_files_are_cf_and_open_in_xarray_and_iris(reference_run):
    import iris

    from cf_compliance import cf_check

    files = sorted(products.Path(reference_run["work_dir"]).glob("*.nc"))
    assert {p.name for p in files} == {f"{REFERENCE}_common_biomes.nc", f"{MODEL}_common_biomes.nc",
                                       "comparison_agreement.nc"}  # fmt: skip
    for path in files:
        report = cf_check(path)
        assert report.errors == [], f"{path.name}:\n{report.output}"
        with xr.open_dataset(path) as ds:
            assert "units" in ds["lat"].attrs
            for name, variable in ds.data_vars.items():
                if name.endswith("_bnds"):
                    continue
                values = variable.values
                if values.dtype.kind == "f":
                    assert not (np.abs(values[np.isfinite(values)]) > 1e20).any(), (path, name)
        cubes = iris.load(path)
        assert cubes
    agreement = products.Path(reference_run["work_dir"]) / "comparison_agreement.nc"
    with xr.open_dataset(agreement) as ds:
        fraction = ds["agreement_fraction"].values
        assert np.nanmin(fraction) >= 0.0 and np.nanmax(fraction) <= 1.0
        assert np.isnan(fraction).any()  # land and unclassified boxes are missing
        assert ds.attrs["reference_alias"] == REFERENCE
    cube = iris.load_cube(agreement, iris.NameConstraint(var_name="agreement_fraction"))
    assert int(cube.data.mask.sum()) == int(np.isnan(fraction).sum())
