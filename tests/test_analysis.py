"""The analysis script on the tiny pipeline run: products, coverage checks, context, presets.

docs/method.md §4. The coverage is checked against an independent computation from the tracked
labels on the native grid (xarray) and the cell areas; the physical context against the input
fields themselves.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from carbon_biomes.workflow import products
from carbon_biomes.workflow.settings import (
    PAPER_PRESET,
    AnalysisScriptSettings,
    DetectionScriptSettings,
    RegressionScriptSettings,
    SettingsError,
    TrackingScriptSettings,
)

DATASETS = ("SYNTH-ESM-A", "SYNTH-ESM-B")
PER_DATASET_FILES = (
    "coverage.nc", "coverage.csv", "coverage_seasonal_cycle.csv", "coverage_annual.csv",
    "frequency_maps.nc", "frequency_maps_native_grid.nc", "physical_context.csv",
    "physical_context_seasonal_cycle.csv", "rc_trends.nc",
)  # fmt: skip
PER_DATASET_FIGURES = (
    "coverage_seasonal_cycle", "coverage_series", "coverage_bars", "frequency_maps",
    "rc_trend_maps", "context_seasonal_cycle",
)  # fmt: skip


def analysis_dirs(pipeline_run) -> tuple[Path, Path]:
    cfg = pipeline_run["analysis"]
    return Path(cfg["work_dir"]), Path(cfg["plot_dir"])


def test_every_product_and_figure_is_written_with_provenance(pipeline_run):
    work, plots = analysis_dirs(pipeline_run)
    run_dir = Path(pipeline_run["analysis"]["run_dir"])
    provenance = (run_dir / "diagnostic_provenance.yml").read_text()
    for dataset in DATASETS:
        for name in PER_DATASET_FILES:
            assert (work / f"{dataset}_{name}").is_file(), name
            assert f"{dataset}_{name}" in provenance
        for name in PER_DATASET_FIGURES:
            assert (plots / f"{dataset}_{name}.png").stat().st_size > 10_000, name
            assert f"{dataset}_{name}.png" in provenance
    assert (work / "analysis_metrics.csv").is_file()
    assert pipeline_run.regress_calls["analysis"] == 0


def _region_contains(region: str, lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """The paper's regions written out again, independently of core.regions."""
    lon = np.mod(lon + 180.0, 360.0) - 180.0
    if region == "Global":
        return np.ones(lat.shape, dtype=bool)
    if region == "Arctic":
        return lat > 70.0
    if region == "North Atlantic":
        return (lat >= 10.0) & (lat <= 70.0) & (lon >= -75.0) & (lon <= 0.0)
    if region == "Equatorial Pacific":
        return (lat >= -10.0) & (lat <= 10.0) & ((lon >= 105.0) | (lon <= -80.0))
    if region == "Southern Ocean":
        return lat <= -45.0
    raise KeyError(region)


def test_coverage_sums_to_100_and_equals_an_independent_native_computation(pipeline_run):
    work, _ = analysis_dirs(pipeline_run)
    tracking_work = Path(pipeline_run["tracking"]["work_dir"])
    regression_work = Path(pipeline_run["regression"]["work_dir"])
    for dataset in DATASETS:
        rows = products.read_table(work / f"{dataset}_coverage.csv",
                                   products.PRODUCTS["coverage_table"])  # fmt: skip
        assert {row["dataset"] for row in rows} == {dataset}
        # sums to 100 within 0.01 for every region and month with classified ocean
        sums: dict[tuple[str, str], float] = {}
        for row in rows:
            key = (row["region"], row["time"])
            sums[key] = sums.get(key, 0.0) + float(row["coverage_percent"])
        classified = {(r["region"], r["time"]): float(r["classified_area_km2"]) for r in rows}
        assert all(abs(total - 100.0) <= 0.01 for key, total in sums.items()
                   if classified[key] > 0)  # fmt: skip
        assert sum(1 for key in sums if classified[key] > 0) >= len(sums) * 0.7

        with xr.open_dataset(tracking_work / f"{dataset}_tracked_biomes_native_grid.nc") as ds:
            labels = ds["biome"].values  # NaN where unclassified
            lat = ds["lat"].values if "lat" in ds.coords and ds["lat"].ndim == 1 else None
            if lat is not None:
                lat2, lon2 = np.meshgrid(ds["lat"].values, ds["lon"].values, indexing="ij")
            else:
                lat2, lon2 = ds["latitude"].values, ds["longitude"].values
            months = [str(t)[:7] for t in ds["time"].values]
        with xr.open_dataset(regression_work / f"{dataset}_native_grid.nc") as grid:
            area = grid["cell_area"].values
            ocean = grid["ocean"].values == 1
        expected = {}
        for region in ("Global", "North Atlantic", "Equatorial Pacific", "Southern Ocean"):
            inside = _region_contains(region, lat2, lon2) & ocean
            for t, month in enumerate(months):
                chosen = inside & np.isfinite(labels[t])
                total = area[chosen].sum()
                for k in np.unique(labels[t][chosen]):
                    biome_area = area[chosen & (labels[t] == k)].sum()
                    expected[(region, month, int(k))] = 100.0 * biome_area / total
        found = {(r["region"], r["time"], int(r["biome_number"])): float(r["coverage_percent"])
                 for r in rows}  # fmt: skip
        checked = 0
        for key, value in expected.items():
            assert found[key] == pytest.approx(value, abs=1e-9), key
            checked += 1
        assert checked > 50, checked


def test_coverage_file_round_trips_and_opens_in_xarray(pipeline_run):
    work, _ = analysis_dirs(pipeline_run)
    path = work / "SYNTH-ESM-B_coverage.nc"
    identity, table, names = products.read_coverage(path)
    assert identity.alias == "SYNTH-ESM-B"
    rows = products.read_table(work / "SYNTH-ESM-B_coverage.csv",
                               products.PRODUCTS["coverage_table"])  # fmt: skip
    first = rows[0]
    r = table.regions.index(first["region"])
    t = table.months.index(first["time"])
    k = table.biome_numbers.index(int(first["biome_number"]))
    assert table.coverage_percent[r, t, k] == pytest.approx(float(first["coverage_percent"]))
    assert names[int(first["biome_number"])] == first["biome"]
    with xr.open_dataset(path) as ds:
        assert list(ds["region_name"].values) == list(table.regions)
        assert ds["coverage_percent"].dims == ("time", "region", "biome")
        assert ds["coverage_percent"].attrs["units"] == "%"
        assert ds["time"].dt.calendar == "noleap"  # SYNTH-ESM-B's 365_day calendar
        cover = ds["coverage_percent"].sum("biome", min_count=1).values
        np.testing.assert_allclose(cover[np.isfinite(cover)], 100.0, atol=0.01)
    with pytest.raises(products.ProductError, match="coverage"):
        products.read_frequency_maps(path)


def test_frequency_maps_agree_on_lattice_and_native_grid(pipeline_run):
    work, _ = analysis_dirs(pipeline_run)
    regression_work = Path(pipeline_run["regression"]["work_dir"])
    _, lattice, names = products.read_frequency_maps(work / "SYNTH-ESM-A_frequency_maps.nc")
    _, native, _ = products.read_frequency_maps(
        work / "SYNTH-ESM-A_frequency_maps_native_grid.nc",
        products.PRODUCTS["frequency_maps_native_grid"],
    )
    _, grid = products.read_native_grid(regression_work / "SYNTH-ESM-A_native_grid.nc")
    # every native ocean cell carries its box's frequency
    boxes = grid.cell_box
    inside = boxes >= 0
    flat = lattice.overall.reshape(len(names), -1)
    np.testing.assert_allclose(native.overall[:, inside], flat[:, boxes[inside]], rtol=1e-6)
    # where classified, the biomes' frequencies over all months sum to 100
    total = np.nansum(lattice.overall, axis=0)
    classified = lattice.months_classified > 0
    np.testing.assert_allclose(total[classified], 100.0, atol=1e-3)
    assert (lattice.years == 1).all()  # one year of data, every calendar month once


def test_physical_context_equals_the_area_weighted_input_field(pipeline_run, sample_root):
    work, _ = analysis_dirs(pipeline_run)
    rows = products.read_table(work / "SYNTH-ESM-A_physical_context.csv",
                               products.PRODUCTS["physical_context"])  # fmt: skip
    variables = {row["variable"] for row in rows}
    assert {"sst", "sss", "mld", "ice", "fco2"} <= variables
    units = {row["variable"]: row["units"] for row in rows}
    assert units["sst"] == "degC" and units["mld"] == "m"
    tos = next(sample_root.rglob("tos_Omon_SYNTH-ESM-A_*.nc"))
    area_file = next(sample_root.rglob("areacello_Ofx_SYNTH-ESM-A_*.nc"))
    with xr.open_dataset(tos) as ds, xr.open_dataset(area_file) as fx:
        sst = ds["tos"].isel(time=6).values.astype(np.float64)
        area = fx["areacello"].values.astype(np.float64)
        month = str(ds["time"].values[6])[:7]
    valid = np.isfinite(sst)
    expected = float((sst[valid] * area[valid]).sum() / area[valid].sum())
    row = next(r for r in rows if r["region"] == "Global" and r["time"] == month
               and r["biome"] == "region_ocean" and r["variable"] == "sst")  # fmt: skip
    assert float(row["mean"]) == pytest.approx(expected, rel=1e-9), (row, expected)


def test_short_period_trends_are_skipped_not_numbers(pipeline_run):
    work, _ = analysis_dirs(pipeline_run)
    rows = products.read_table(work / "analysis_metrics.csv",
                               products.PRODUCTS["analysis_metrics"])  # fmt: skip
    coverage = [r for r in rows if r["quantity"] == "coverage_percent"]
    trend_rows = [r for r in coverage if r["series"] not in ("climatology",)]
    assert trend_rows and {r["metric"] for r in trend_rows} == {"n", "skipped"}
    assert not any(r["metric"] == "trend_per_decade" and r["value"] != "nan"
                   for r in rows)  # fmt: skip
    climatology = [r for r in coverage if r["metric"] == "mean"]
    assert climatology and all(np.isfinite(float(r["value"])) or r["region"] == "Arctic"
                               for r in climatology)  # fmt: skip
    with xr.open_dataset(work / "SYNTH-ESM-A_rc_trends.nc") as ds:
        assert np.isnan(ds["rc_trend_dic"].values).all()  # 12 months < min_years


def test_method_paper_sets_every_faithful_option(caplog):
    regression = RegressionScriptSettings.from_cfg({"method": "paper"}).regression
    assert (regression.box_size, regression.alpha, regression.significance_test) == (
        2.0, 0.04, "all_slopes")  # fmt: skip
    detection = DetectionScriptSettings.from_cfg({"method": "paper"}).detection
    assert detection.thresholds == (25.0, 0.1) and detection.dist_scale == "absolute"
    assert detection.min_biome_size == 1 and detection.spread == "pooled_variance"
    network = TrackingScriptSettings.from_cfg({"method": "paper"}).network
    assert (network.l2, network.dropout, network.epochs, network.patience) == (0.01, 0.5, 50, 5)
    assert network.rescale_per_month
    analysis = AnalysisScriptSettings.from_cfg({"method": "paper"})
    assert [r.name for r in analysis.regions] == PAPER_PRESET["analysis"]["regions"]
    # the defaults are not the paper's
    assert DetectionScriptSettings.from_cfg({}).detection.min_biome_size > 1
    assert not TrackingScriptSettings.from_cfg({}).network.rescale_per_month
    # an override wins and is logged
    with caplog.at_level(logging.WARNING):
        overridden = RegressionScriptSettings.from_cfg({"method": "paper", "box_size": 4.0})
    assert overridden.regression.box_size == 4.0
    assert "overrides box_size=4.0 (paper: box_size=2.0)" in caplog.text
    with pytest.raises(SettingsError, match="method"):
        DetectionScriptSettings.from_cfg({"method": "faithful"})


def test_rc_trend_file_reads_back(pipeline_run):
    work, _ = analysis_dirs(pipeline_run)
    identity, content = products.read_rc_trends(work / "SYNTH-ESM-A_rc_trends.nc")
    assert identity.alias == "SYNTH-ESM-A"
    assert content["drivers"] == ["sst", "dic", "alk"]
    assert len(content["months"]) == 12
    series = content["biome_series"]["dic"]
    assert series.shape == (12, len(content["biome_names"]))
    assert np.isfinite(np.ma.filled(series, np.nan)).any()  # biome-mean RCs of every month
