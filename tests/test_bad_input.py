"""Bad input: each case fails with a clear error naming dataset and variable, or is a logged skip.

Bad files are copies of the tiny sample data edited with netCDF4. The NEMO-like grid of the
duplicated-cell cases (halo columns, north-fold row) is built in memory.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
from pathlib import Path

import cftime
import iris.coords
import iris.cube
import netCDF4
import numpy as np
import pytest

from carbon_biomes.core import clustering
from carbon_biomes.core.coverage import coverage, lattice_to_native
from carbon_biomes.core.errors import DiagnosticError
from carbon_biomes.core.monthly_regression import (
    FieldMonth,
    NativeGrid,
    RegressionSettings,
    regress_month,
    unique_cells,
)
from carbon_biomes.core.regions import cell_areas, region_masks
from carbon_biomes.core.regression import box_lattice
from carbon_biomes.workflow import products
from carbon_biomes.workflow.identity import DatasetIdentity, group_by_dataset
from carbon_biomes.workflow.inputs import DatasetFields, load_dataset_fields
from carbon_biomes.workflow.netcdf import NetcdfFile, write_csv
from carbon_biomes.workflow.provenance import ProvenanceLogger
from carbon_biomes.workflow.settings import AnalysisScriptSettings
from conftest import TINY_BOX, TINY_NETWORK, load_script, metadata_entries, script_cfg

PRODUCTS = products.PRODUCTS
MODEL_A, MODEL_B = "SYNTH-ESM-A", "SYNTH-ESM-B"  # regular and curvilinear grid


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------
def copy_model(sample_root: Path, target: Path, model: str) -> dict[str, dict]:
    """Copy one model's sample files to ``target`` and return their ``input_data``."""
    for source in sample_root.rglob(f"*_{model}_*.nc"):
        destination = target / source.relative_to(sample_root)
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, destination)
    return metadata_entries(target, (model,))


def file_of(entries: dict[str, dict], short_name: str) -> Path:
    (path,) = [Path(k) for k, v in entries.items() if v["short_name"] == short_name]
    return path


def load(entries: dict[str, dict]):
    ((identity, metadata),) = group_by_dataset(entries.values()).items()
    return load_dataset_fields(identity, metadata)


@pytest.fixture
def model_a(sample_root, tmp_path) -> dict[str, dict]:
    return copy_model(sample_root, tmp_path / "data", MODEL_A)


@pytest.fixture
def model_b(sample_root, tmp_path) -> dict[str, dict]:
    return copy_model(sample_root, tmp_path / "data", MODEL_B)


# ---------------------------------------------------------------------------------------------
# 1. a required variable missing
# ---------------------------------------------------------------------------------------------
def test_variable_missing_from_the_recipe_names_dataset_and_variable(model_a):
    entries = {k: v for k, v in model_a.items() if v["short_name"] != "talkos"}
    with pytest.raises(DiagnosticError, match=rf"{MODEL_A}: required variable talkos is missing "
                                              r"from the recipe's input"):  # fmt: skip
        load(entries)


def test_variable_missing_from_its_file_names_dataset_and_variable(model_a):
    with netCDF4.Dataset(file_of(model_a, "talkos"), "a") as nc:
        nc.renameVariable("talkos", "alkalinity")
    with pytest.raises(DiagnosticError, match=rf"{MODEL_A}: required variable talkos is missing "
                                              r"from its file .*found: alkalinity"):  # fmt: skip
        load(model_a)


def test_missing_file_names_dataset_and_variable(model_a):
    file_of(model_a, "dissicos").unlink()
    with pytest.raises(DiagnosticError, match=rf"{MODEL_A}: the file .* of variable dissicos "
                                              "does not exist"):  # fmt: skip
        load(model_a)


# ---------------------------------------------------------------------------------------------
# 2. units
# ---------------------------------------------------------------------------------------------
def test_convertible_units_are_converted_and_logged(model_a, caplog):
    reference = load(model_a)
    sst0 = np.ma.filled(reference.month(0, ["sst"])["sst"], np.nan)
    fco2_0 = np.ma.filled(reference.month(0, ["fco2"])["fco2"], np.nan)
    with netCDF4.Dataset(file_of(model_a, "tos"), "a") as nc:
        nc["tos"].set_auto_mask(False)
        data = nc["tos"][:]
        nc["tos"][:] = np.where(data > 1e19, data, data + 273.15)
        nc["tos"].units = "K"
    with netCDF4.Dataset(file_of(model_a, "spco2"), "a") as nc:
        nc["spco2"].set_auto_mask(False)
        data = nc["spco2"][:]
        nc["spco2"][:] = np.where(data > 1e19, data, data / 0.101325)
        nc["spco2"].units = "µatm"
    with caplog.at_level(logging.INFO, logger="carbon_biomes.workflow.inputs"):
        fields = load(model_a)
    messages = [r.getMessage() for r in caplog.records]
    assert f"{MODEL_A}: converted variable tos from 'K' to 'degC'" in messages
    assert f"{MODEL_A}: converted variable talkos from 'mol m-3' to 'mmol m-3'" in messages
    assert f"{MODEL_A}: converted variable dissicos from 'mol m-3' to 'mmol m-3'" in messages
    assert not any("variable spco2" in m for m in messages)  # µatm is uatm: nothing to convert
    np.testing.assert_allclose(np.ma.filled(fields.month(0, ["sst"])["sst"], np.nan), sst0,
                               atol=2e-4)  # float32 on file  # fmt: skip
    np.testing.assert_allclose(np.ma.filled(fields.month(0, ["fco2"])["fco2"], np.nan), fco2_0,
                               rtol=1e-6)  # fmt: skip


@pytest.mark.parametrize("units", ["m", "unknown"])
def test_units_that_do_not_convert_name_dataset_variable_and_units(model_a, units):
    with netCDF4.Dataset(file_of(model_a, "tos"), "a") as nc:
        nc["tos"].units = units
    with pytest.raises(DiagnosticError, match=rf"{MODEL_A}: variable tos has units '{units}', "
                                              r"which cannot be converted to 'degC'"):  # fmt: skip
        load(model_a)


# ---------------------------------------------------------------------------------------------
# 3. an all-missing month
# ---------------------------------------------------------------------------------------------
def mask_month(entries: dict[str, dict], short_name: str, index: int) -> None:
    with netCDF4.Dataset(file_of(entries, short_name), "a") as nc:
        var = nc[short_name]
        var[index] = np.full(var.shape[1:], var._FillValue, dtype=var.dtype)


def check_skipped_month(messages: list[str], rcs_file: Path) -> None:
    assert any(f"{MODEL_A}: variable talkos has no valid value in 2009-04" in m
               for m in messages)  # fmt: skip
    assert any(f"{MODEL_A} 2009-04: no box passed" in m for m in messages)
    rcs = products.read_monthly_rcs(rcs_file)
    regressions = rcs.regressions(list(rcs.months))
    assert len(rcs.months) == 12
    assert len(regressions[3].all_boxes) == 0 and regressions[3].n_cells_valid == 0
    assert all(reg.n_significant > 0 for i, reg in enumerate(regressions) if i != 3)


def test_all_missing_month_is_skipped_with_a_warning_by_the_regression(model_a, tmp_path,
                                                                        caplog):  # fmt: skip
    """An all-missing month of talkos: a warning naming dataset, variable and month; the month
    has no box (so no label later), the other months are regressed."""
    mask_month(model_a, "talkos", 3)
    cfg = script_cfg(tmp_path, "regression", model_a, box_size=TINY_BOX)
    with caplog.at_level(logging.WARNING):
        load_script("regress_boxes").main(cfg)
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    check_skipped_month(messages, Path(cfg["work_dir"]) / f"{MODEL_A}_monthly_rcs.nc")


@pytest.mark.slow
def test_all_missing_month_carries_through_tracking_and_analysis(model_a, run_pipeline, caplog):
    """The same through detection, tracking (no label in that month) and analysis (coverage
    NaN in that month, the other months complete)."""
    mask_month(model_a, "talkos", 3)
    with caplog.at_level(logging.WARNING):
        run = run_pipeline(model_a, "nan_month")
    work = {stage: Path(cfg["work_dir"]) for stage, cfg in run.items()}
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    check_skipped_month(messages, work["regression"] / f"{MODEL_A}_monthly_rcs.nc")
    tracked = products.read_tracked_biomes(work["tracking"] / f"{MODEL_A}_tracked_biomes.nc")
    labels = np.ma.getmaskarray(tracked.labels)
    assert labels[3].all() and not labels[[0, 1, 2, 4]].all(axis=(1, 2)).any()
    rows = products.read_table(work["analysis"] / f"{MODEL_A}_coverage.csv",
                               PRODUCTS["coverage_table"])  # fmt: skip
    april = [row for row in rows if row["time"] == "2009-04"]
    assert april and all(row["coverage_percent"] == "nan" for row in april)
    assert all(row["coverage_percent"] != "nan" for row in rows
               if row["time"] == "2009-03" and row["region"] == "Global")  # fmt: skip
    assert (work["analysis"] / "analysis_metrics.csv").is_file()


def test_all_missing_first_month_is_an_error_naming_dataset_and_variable(model_a):
    mask_month(model_a, "dissicos", 0)
    with pytest.raises(DiagnosticError, match=rf"{MODEL_A}: variable dissicos has no valid value "
                                              "in its first month"):  # fmt: skip
        load(model_a)


# ---------------------------------------------------------------------------------------------
# 4. gaps and repeats in the time axis
# ---------------------------------------------------------------------------------------------
def set_months(path: Path, short_name: str, months: list[tuple[int, int]]) -> None:
    with netCDF4.Dataset(path, "a") as nc:
        time = nc["time"]
        calendar = time.calendar
        start = [cftime.datetime(y, m, 1, calendar=calendar) for y, m in months]
        end = [cftime.datetime(y + m // 12, m % 12 + 1, 1, calendar=calendar) for y, m in months]
        lower = cftime.date2num(start, time.units, calendar=calendar)
        upper = cftime.date2num(end, time.units, calendar=calendar)
        time[:] = 0.5 * (lower + upper)
        nc["time_bnds"][:] = np.column_stack([lower, upper])


def test_a_gap_in_the_time_axis_names_dataset_variable_and_month(model_a):
    months = [(2009, m) for m in range(1, 13) if m != 6] + [(2010, 1)]
    set_months(file_of(model_a, "tos"), "tos", months)
    with pytest.raises(DiagnosticError, match=rf"{MODEL_A}: the time axis of variable tos .*"
                                              r"missing month\(s\) 2009-06"):  # fmt: skip
        load(model_a)


def test_a_repeated_month_names_dataset_variable_and_month(model_a):
    months = [(2009, m) for m in range(1, 12)] + [(2009, 11)]
    set_months(file_of(model_a, "dissicos"), "dissicos", months)
    with pytest.raises(DiagnosticError, match=rf"{MODEL_A}: the time axis of variable dissicos "
                                              r".*repeated month\(s\) 2009-11"):  # fmt: skip
        load(model_a)


# ---------------------------------------------------------------------------------------------
# 5. a curvilinear file without latitude/longitude
# ---------------------------------------------------------------------------------------------
def test_curvilinear_file_without_coordinates_names_dataset_and_variable(model_b):
    with netCDF4.Dataset(file_of(model_b, "tos"), "a") as nc:
        assert "latitude" in nc["tos"].coordinates
        nc["tos"].delncattr("coordinates")
    with pytest.raises(DiagnosticError, match=rf"{MODEL_B}: variable tos in .* has no latitude "
                                              "or longitude coordinate"):  # fmt: skip
        load(model_b)


# ---------------------------------------------------------------------------------------------
# 6. duplicated cells (NEMO halo columns and north-fold row)
# ---------------------------------------------------------------------------------------------
NY0, NX0 = 60, 180  # the grid without repeats: 2° cells, 59S to 59N


def nemo_index() -> tuple[np.ndarray, np.ndarray]:
    """(row, column) of the grid without repeats for every cell of the NEMO-like grid.

    Columns: i=0 repeats i=nx-2 and i=nx-1 repeats i=1 (two halo columns); an extra top row
    repeats the row below the last one, mirrored (the north fold).
    """
    columns = np.concatenate([[NX0 - 1], np.arange(NX0), [0]])
    rows = np.empty((NY0 + 1, NX0 + 2), dtype=np.int64)
    cols = np.empty_like(rows)
    rows[:NY0] = np.arange(NY0)[:, None]
    cols[:NY0] = columns[None, :]
    rows[NY0] = NY0 - 2
    cols[NY0] = columns[::-1]
    return rows, cols


def plain_fields(seed: int = 0) -> dict[str, np.ndarray]:
    """Coordinates, areas and one month of fields with box-varying slopes, land masked."""
    lat, lon = np.meshgrid(np.arange(-59.0, 60.0, 2.0), np.arange(1.0, 360.0, 2.0),
                           indexing="ij")  # fmt: skip
    rng = np.random.default_rng(seed)
    land = (lat > 10) & (lat < 40) & (lon > 60) & (lon < 100)
    sst = 15 + 10 * np.cos(np.deg2rad(lat)) + rng.normal(0, 1.5, lat.shape)
    dic = 2000 + rng.normal(0, 30, lat.shape)
    alk = 2300 + rng.normal(0, 30, lat.shape)
    slope = 8 + 4 * np.sin(np.deg2rad(lon))
    fco2 = (360 + slope * (sst - 20) + 1.2 * (dic - 2000) - 0.9 * (alk - 2300)
            + rng.normal(0, 3, lat.shape))  # fmt: skip
    out = {"lat": lat, "lon": lon, "area": 4.9e10 * np.cos(np.deg2rad(lat))}
    for name, values in (("fco2", fco2), ("sst", sst), ("dic", dic), ("alk", alk)):
        out[name] = np.ma.masked_where(land, values)
    return out


def nemo_fields(plain: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    rows, cols = nemo_index()
    out = {name: values[rows, cols] for name, values in plain.items()}
    out["lon"][:, 0] -= 360.0  # the western halo column at -1°E: the same place as 359°E
    return out


def grid_and_month(fields: dict[str, np.ndarray]) -> tuple[NativeGrid, FieldMonth]:
    ocean = ~np.ma.getmaskarray(fields["sst"])
    grid = NativeGrid.build(fields["lat"], fields["lon"], ocean, TINY_BOX, area=fields["area"])
    month = FieldMonth("2009-01", {k: fields[k] for k in ("fco2", "sst", "dic", "alk")})
    return grid, month


def expected_repeats(plain: dict[str, np.ndarray]) -> int:
    ocean = ~np.ma.getmaskarray(plain["sst"])
    return int(ocean[:, [0, NX0 - 1]].sum() + ocean[NY0 - 2].sum() + ocean[NY0 - 2, [0, -1]].sum())


def test_unique_cells_marks_each_repeat_once():
    plain = plain_fields()
    nemo = nemo_fields(plain)
    ocean = ~np.ma.getmaskarray(nemo["sst"])
    unique = unique_cells(nemo["lat"], nemo["lon"], ocean)
    assert int((ocean & ~unique).sum()) == expected_repeats(plain)
    assert not (~unique & ~ocean).any()  # land is never marked
    # the kept cells are exactly one per place
    kept = np.column_stack([nemo["lat"][unique & ocean], np.mod(nemo["lon"][unique & ocean], 360)])
    assert len(np.unique(np.round(kept, 6), axis=0)) == len(kept)
    # a regular grid whose longitudes repeat the first one at +360 degrees
    lat = np.array([-1.0, 1.0])
    lon = np.array([0.0, 90.0, 180.0, 270.0, 360.0])
    assert unique_cells(lat, lon, np.ones((2, 5), bool))[:, -1].tolist() == [False, False]


def test_box_regression_counts_each_place_once():
    plain = plain_fields()
    grid_p, month_p = grid_and_month(plain)
    grid_n, month_n = grid_and_month(nemo_fields(plain))
    assert grid_p.n_repeated == 0 and grid_n.n_repeated == expected_repeats(plain)
    settings = RegressionSettings(box_size=TINY_BOX)
    plain_fit, nemo_fit = (regress_month(m, g, settings)
                           for m, g in ((month_p, grid_p), (month_n, grid_n)))  # fmt: skip
    a, b = plain_fit.all_boxes, nemo_fit.all_boxes
    assert len(a) > 100
    np.testing.assert_array_equal(b.box_id, a.box_id)
    np.testing.assert_array_equal(b.n, a.n)
    np.testing.assert_allclose(b.slopes, a.slopes, rtol=1e-9)
    np.testing.assert_allclose(b.stderr, a.stderr, rtol=1e-9)
    np.testing.assert_array_equal(nemo_fit.significant, plain_fit.significant)
    np.testing.assert_allclose(nemo_fit.stats.area, plain_fit.stats.area, rtol=1e-12)
    np.testing.assert_allclose(nemo_fit.stats.sst, plain_fit.stats.sst, rtol=1e-12)
    assert nemo_fit.n_cells_valid == plain_fit.n_cells_valid
    # without the de-duplication the halo boxes would count cells twice
    twice = regress_month(month_n, dataclasses.replace(grid_n, unique=None), settings)
    assert twice.all_boxes.n.sum() > a.n.sum()


def test_areas_and_coverage_count_each_place_once():
    plain = plain_fields()
    grid_p, _ = grid_and_month(plain)
    grid_n, _ = grid_and_month(nemo_fields(plain))
    (areas_p, source), (areas_n, _) = cell_areas(grid_p), cell_areas(grid_n)
    assert source == "areacello"
    ocean_p, ocean_n = grid_p.ocean, grid_n.ocean
    np.testing.assert_allclose(areas_n[ocean_n].sum(), areas_p[ocean_p].sum(), rtol=1e-12)
    assert (areas_n[ocean_n & ~grid_n.unique] == 0).all()
    settings = AnalysisScriptSettings.from_cfg({"regions": [
        "Global", {"name": "Dateline band", "lat": [-20, 20], "lon": [170, -170]},
        {"name": "Greenwich band", "lat": [30, 60], "lon": [-10, 10]},
        {"name": "North edge", "lat": [50, 60], "lon": [-180, 180]},
    ]})  # fmt: skip
    masks_p = region_masks(settings.regions, grid_p)
    masks_n = region_masks(settings.regions, grid_n)
    rng = np.random.default_rng(3)
    n_lat, n_lon = box_lattice(TINY_BOX)
    labels = np.ma.masked_array(rng.integers(1, 4, (2, n_lat, n_lon)),
                                mask=rng.random((2, n_lat, n_lon)) < 0.2)  # fmt: skip
    tables = [coverage(lattice_to_native(labels, grid), masks, areas, [1, 2, 3],
                       months=["2009-01", "2009-02"])
              for grid, masks, areas in ((grid_p, masks_p, areas_p),
                                         (grid_n, masks_n, areas_n))]  # fmt: skip
    for name in ("ocean_area", "biome_area", "classified_area", "unclassified_area"):
        np.testing.assert_allclose(getattr(tables[1], name), getattr(tables[0], name),
                                   rtol=1e-12, err_msg=name)  # fmt: skip
    # the repeated cells still get their box's label on the native grid (maps show them)
    native = lattice_to_native(labels[:1], grid_n)[0]
    rows, cols = nemo_index()
    plain_native = lattice_to_native(labels[:1], grid_p)[0]
    np.testing.assert_array_equal(native.filled(-1), plain_native.filled(-1)[rows, cols])


def test_repeated_cells_are_logged_once_and_kept_in_the_native_grid_product(tmp_path, caplog):
    plain = plain_fields()
    nemo = nemo_fields(plain)
    identity = DatasetIdentity(alias="SYNTH-NEMO", dataset="SYNTH-NEMO", project="CMIP6")
    time = iris.coords.DimCoord([15.5], standard_name="time", units="days since 2009-01-01")
    cube = iris.cube.Cube(nemo["sst"][None], var_name="tos", units="degC",
                          dim_coords_and_dims=[(time, 0)],
                          aux_coords_and_dims=[
                              (iris.coords.AuxCoord(nemo["lat"], standard_name="latitude",
                                                    units="degrees"), (1, 2)),
                              (iris.coords.AuxCoord(nemo["lon"], standard_name="longitude",
                                                    units="degrees"), (1, 2))])  # fmt: skip
    fields = DatasetFields(identity=identity, cubes={"sst": cube}, files={}, latitude=nemo["lat"],
                           longitude=nemo["lon"], area=nemo["area"],
                           months=["2009-01"])  # fmt: skip
    with caplog.at_level(logging.INFO, logger="carbon_biomes.workflow.inputs"):
        grid = fields.native_grid(TINY_BOX)
    logged = [r.getMessage() for r in caplog.records if "repeat the position" in r.getMessage()]
    assert logged == [f"SYNTH-NEMO: {expected_repeats(plain)} ocean cells repeat the position of "
                      "another cell (halo columns or a north-fold row); each place is counted "
                      "once in the regression and the areas"]  # fmt: skip
    assert PRODUCTS["native_grid"].version == 2
    cfg = {"work_dir": tmp_path / "work", "plot_dir": tmp_path / "plots"}
    with ProvenanceLogger(tmp_path) as provenance:
        writer = products.ProductWriter(cfg, provenance, "test_bad_input.py")
        path = products.write_native_grid(writer, identity, grid, [], "test")
    _, back = products.read_native_grid(path)
    np.testing.assert_array_equal(back.unique, grid.unique)
    assert back.n_repeated == grid.n_repeated == expected_repeats(plain)
    np.testing.assert_array_equal(back.counted_box, grid.counted_box)


# ---------------------------------------------------------------------------------------------
# 7. a region without ocean
# ---------------------------------------------------------------------------------------------
def test_region_without_ocean_is_an_error_naming_it():
    plain = plain_fields()
    grid, _ = grid_and_month(plain)
    settings = AnalysisScriptSettings.from_cfg({"regions": [
        "Global", {"name": "Dry land", "lat": [15, 35], "lon": [65, 95]}]})  # fmt: skip
    with pytest.raises(DiagnosticError, match="SYNTH-X: region 'Dry land' .* holds no ocean cell"):
        region_masks(settings.regions, grid, dataset="SYNTH-X")


# ---------------------------------------------------------------------------------------------
# 8. and 9. a reference month outside the period; one broken dataset of two
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def one_broken(sample_root, tmp_path_factory):
    """Regression of SYNTH-ESM-A (good) and SYNTH-ESM-B without talkos (broken)."""
    root = tmp_path_factory.mktemp("one_broken")
    entries = {k: v for k, v in metadata_entries(sample_root).items()
               if not (v["dataset"] == MODEL_B and v["short_name"] == "talkos")}  # fmt: skip
    cfg = script_cfg(root, "regression", entries, box_size=TINY_BOX)
    with pytest.raises(DiagnosticError) as error:
        load_script("regress_boxes").main(cfg)
    return root, cfg, entries, error.value


def test_a_broken_dataset_fails_the_run_but_the_others_outputs_are_complete(one_broken):
    root, cfg, _, error = one_broken
    message = str(error)
    assert message.startswith(f"1 of 2 datasets failed ({MODEL_B}); the products of the "
                              "others are complete.")  # fmt: skip
    assert f"{MODEL_B}: required variable talkos is missing" in message
    assert MODEL_A not in message
    work = Path(cfg["work_dir"])
    assert sorted(p.name for p in work.iterdir()) == [
        f"{MODEL_A}_monthly_rcs.nc", f"{MODEL_A}_native_grid.nc", "regression_metrics.csv"]
    rcs = products.read_monthly_rcs(work / f"{MODEL_A}_monthly_rcs.nc")
    assert len(rcs.months) == 12
    rows = products.read_table(work / "regression_metrics.csv", PRODUCTS["regression_metrics"])
    assert {row["dataset"] for row in rows} == {MODEL_A}
    provenance = (Path(cfg["run_dir"]) / "diagnostic_provenance.yml").read_text()
    assert f"{MODEL_A}_monthly_rcs.nc" in provenance and MODEL_B + "_" not in provenance


def test_a_broken_dataset_logs_its_error(sample_root, tmp_path, caplog):
    entries = copy_model(sample_root, tmp_path / "data", MODEL_A)
    with netCDF4.Dataset(file_of(entries, "tos"), "a") as nc:
        nc["tos"].units = "m"
    cfg = script_cfg(tmp_path, "regression", entries, box_size=TINY_BOX)
    with caplog.at_level(logging.ERROR), pytest.raises(DiagnosticError, match="1 of 1 datasets"):
        load_script("regress_boxes").main(cfg)
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert any(m.startswith(f"{MODEL_A}: dataset failed") and "variable tos has units 'm'" in m
               for m in errors)  # fmt: skip
    assert not list(Path(cfg["work_dir"]).iterdir())  # no table of no dataset


def run_later_stages(one_broken, stages: list[str]) -> dict[str, dict]:
    root, regression_cfg, entries, _ = one_broken
    cfgs = {"regression": regression_cfg}
    scripts = {"detection": ("detect_biomes", {}), "tracking": ("track_biomes", TINY_NETWORK),
               "analysis": ("analyse_biomes", {})}  # fmt: skip
    for stage in stages:
        script, options = scripts[stage]
        ancestors = [cfg["work_dir"] for cfg in cfgs.values()]
        data = entries if stage == "analysis" else None
        cfgs[stage] = script_cfg(root, f"{stage}_{len(stages)}", data, input_files=ancestors,
                                 **options)  # fmt: skip
        load_script(script).main(cfgs[stage])
    patterns = {"detection": "_biomes.nc", "tracking": "_tracked_biomes.nc",
                "analysis": "_coverage.csv"}  # fmt: skip
    for stage in stages:
        names = [p.name for p in Path(cfgs[stage]["work_dir"]).iterdir()]
        assert f"{MODEL_A}{patterns[stage]}" in names, stage
        assert not any(name.startswith(MODEL_B) for name in names), stage
    return cfgs


def test_detection_processes_the_good_datasets(one_broken):
    cfgs = run_later_stages(one_broken, ["detection"])
    rows = products.read_table(Path(cfgs["detection"]["work_dir"]) / "detection_metrics.csv",
                               PRODUCTS["detection_metrics"])  # fmt: skip
    assert {row["dataset"] for row in rows} == {MODEL_A}


@pytest.mark.slow
def test_tracking_and_analysis_process_the_good_datasets(one_broken):
    run_later_stages(one_broken, ["detection", "tracking", "analysis"])


def test_reference_month_outside_the_period_names_dataset_month_and_period(one_broken):
    root, regression_cfg, _, _ = one_broken
    cfg = script_cfg(root, "detection_1990", input_files=[regression_cfg["work_dir"]],
                     reference_months=["1990-01"])  # fmt: skip
    expected = rf"{MODEL_A}: month 1990-01 is not in the monthly RCs .* cover 2009-01 to 2009-12"
    with pytest.raises(DiagnosticError, match=expected) as error:
        load_script("detect_biomes").main(cfg)
    assert str(error.value).startswith(f"1 of 1 datasets failed ({MODEL_A})")
    assert not (Path(cfg["work_dir"]) / "detection_metrics.csv").exists()


# ---------------------------------------------------------------------------------------------
# 10. thresholds and linkage matrices given to the library
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tree():
    features = np.random.default_rng(0).normal(size=(30, 3))
    return clustering.ward_linkage(features), features


@pytest.mark.parametrize("delta_dist, delta_var, name", [
    (-1.0, 0.1, "delta_dist"), (1.0, -0.1, "delta_var"), (np.nan, 0.1, "delta_dist"),
    (1.0, np.inf, "delta_var"), ("x", 0.1, "delta_dist"), (None, 0.1, "delta_dist"),
])  # fmt: skip
def test_bad_thresholds_are_value_errors_naming_them(tree, delta_dist, delta_var, name):
    linkage, features = tree
    for function in (clustering.adaptive_cut, clustering.adaptive_cut_nodes):
        with pytest.raises(ValueError, match=name):
            function(linkage, features, delta_dist, delta_var)
    with pytest.raises(ValueError, match=name):
        clustering.threshold_scan(linkage, features, [delta_dist], [delta_var])


def malformed(linkage: np.ndarray, kind: str):
    z = linkage.copy()
    if kind == "nan":
        z[3, 2] = np.nan
    elif kind == "id beyond the tree":
        z[0, 0] = 500
    elif kind == "id of a later row":
        z[0, 1] = len(z) + 5
    elif kind == "fractional id":
        z[2, 0] += 0.5
    elif kind == "negative distance":
        z[4, 2] = -1.0
    elif kind == "wrong size":
        z[:, 3] = 2
    elif kind == "merged twice":
        z[1] = z[0]
    elif kind == "wrong shape":
        z = z[:, :3]
    elif kind == "text":
        z = [["a"] * 4] * len(z)
    elif kind == "empty":
        z = np.empty((0, 4))
    return z


@pytest.mark.parametrize("kind", ["nan", "id beyond the tree", "id of a later row",
                                  "fractional id", "negative distance", "wrong size",
                                  "merged twice", "wrong shape", "text", "empty"])  # fmt: skip
def test_malformed_linkage_is_a_value_error(tree, kind):
    linkage, features = tree
    z = malformed(linkage, kind)
    with pytest.raises(ValueError, match="linkage"):
        clustering.adaptive_cut(z, features, 1.0, 0.1)
    with pytest.raises(ValueError, match="linkage"):
        clustering.threshold_scan(z, features, [0.5], [0.1])


# ---------------------------------------------------------------------------------------------
# 11. a failure while writing leaves no file that looks complete
# ---------------------------------------------------------------------------------------------
def test_failure_while_writing_a_netcdf_product_leaves_no_file(tmp_path, monkeypatch):
    grid, _ = grid_and_month(plain_fields())
    identity = DatasetIdentity(alias="SYNTH-X", dataset="SYNTH-X")
    original = NetcdfFile.write
    calls = []

    def failing(self, variable, values, index=slice(None)):
        calls.append(variable.name)
        if len(calls) == 2:
            raise OSError("disk full (simulated)")
        return original(self, variable, values, index)

    monkeypatch.setattr(NetcdfFile, "write", failing)
    cfg = {"work_dir": tmp_path / "work", "plot_dir": tmp_path / "plots"}
    with ProvenanceLogger(tmp_path) as provenance:
        writer = products.ProductWriter(cfg, provenance, "test_bad_input.py")
        with pytest.raises(OSError, match="disk full"):
            products.write_native_grid(writer, identity, grid, [], "test")
        assert provenance.records == {}
    assert calls == ["cell_box", "ocean"]
    assert list((tmp_path / "work").iterdir()) == []  # neither the file nor a partial one


def test_failure_while_writing_a_table_leaves_no_file(tmp_path):
    path = tmp_path / "table.csv"
    with pytest.raises(ValueError, match="needs 2 values"):
        write_csv(path, ["a", "b"], [[1, 2], [3, 4], [5]])
    assert list(tmp_path.iterdir()) == []
