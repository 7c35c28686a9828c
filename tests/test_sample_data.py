"""Tests of the synthetic CMIP6-like sample data generator and its command line."""

from __future__ import annotations

import ast
import logging
import re
import subprocess
import sys
from pathlib import Path

import netCDF4
import numpy as np
import PyCO2SYS as pyco2  # noqa: N813
import pytest

from carbon_biomes import sample_data as sd
from carbon_biomes.cli import main, parse_list, parse_year_range

YEAR = 2000
RES = 4.0
MONTHLY = ("spco2", "tos", "sos", "dissicos", "talkos", "mlotst", "siconc")
ALL_VARS = (*MONTHLY, "areacello")
REFERENCE = ("historical", "r1i1p1f1")
SECOND_MEMBER = ("historical", "r2i1p1f1")
SECOND_EXPERIMENT = ("esm-hist", "r1i1p1f1")
RUNS = (REFERENCE, SECOND_MEMBER, SECOND_EXPERIMENT)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    """All three models, one year at 4 degrees, seed 0 (and, by default, the observations)."""
    root = tmp_path_factory.mktemp("tiny")
    files = sd.generate_sample_data(root, years=(YEAR, YEAR), resolution=RES, seed=0)
    return root, files


@pytest.fixture(scope="module")
def regression_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """SYNTH-ESM-A, one year at 2 degrees (16 cells in an 8-degree box).

    Three runs: historical r1i1p1f1 (the default), a second member historical r2i1p1f1
    (generated in the same call) and a second experiment esm-hist r1i1p1f1.
    """
    root = tmp_path_factory.mktemp("regression")
    sd.generate_sample_data(
        root,
        models=["SYNTH-ESM-A"],
        years=(YEAR, YEAR),
        resolution=2,
        ensembles=("r1i1p1f1", "r2i1p1f1"),
    )
    sd.generate_sample_data(
        root, models=["SYNTH-ESM-A"], years=(YEAR, YEAR), resolution=2, experiments=["esm-hist"]
    )
    return root


def _path(root: Path, model: str, var: str, run: tuple[str, str] = REFERENCE) -> Path:
    experiment, ensemble = run
    years = None if var == "areacello" else (YEAR, YEAR)
    return sd.output_path(root, model, var, years, experiment=experiment, ensemble=ensemble)


def _read(root: Path, model: str, var: str, run: tuple[str, str] = REFERENCE) -> np.ma.MaskedArray:
    with netCDF4.Dataset(_path(root, model, var, run)) as ds:
        return ds[var][:]


# --------------------------------------------------------------------------------------
# layout and metadata
# --------------------------------------------------------------------------------------


def test_drs_paths_and_file_names(tiny: tuple[Path, list[Path]]) -> None:
    root, files = tiny
    # all models were requested, so the observation-based products were written as well
    assert len(files) == 3 * len(ALL_VARS) + 4
    assert all(path.is_file() for path in files)
    found = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    expected = []
    for model in sd.MODELS:
        for var in ALL_VARS:
            table = sd.VARIABLES[var].mip
            name = f"{var}_{table}_{model}_historical_r1i1p1f1_gn"
            name += ".nc" if var == "areacello" else f"_{YEAR}01-{YEAR}12.nc"
            expected.append(
                f"CMIP6/CMIP/SYNTH/{model}/historical/r1i1p1f1/{table}/{var}/gn/v20260101/{name}"
            )
    period = f"{YEAR}01-{YEAR}12"
    expected += [
        f"OBS/Tier2/SYNTH-OBS-CARBON/OBS6_SYNTH-OBS-CARBON_reanaly_v1_Omon_{var}_{period}.nc"
        for var in ("spco2", "dissicos", "talkos")
    ]
    expected.append(f"OBS/Tier2/SYNTH-OBS-SST/OBS_SYNTH-OBS-SST_reanaly_1_Omon_tos_{period}.nc")
    assert found == sorted(expected)  # no stray temporary files either
    assert [p.relative_to(root).as_posix() for p in files[-4:]] == expected[-4:]
    assert {sd.VARIABLES[v].mip for v in ALL_VARS} == {"Omon", "SImon", "Ofx"}
    assert sd.VARIABLES["siconc"].mip == "SImon"
    assert sd.VARIABLES["areacello"].mip == "Ofx"


def test_variable_specs_match_esmvalcore_tables() -> None:
    import esmvalcore.config  # noqa: F401  (loads the CMOR tables)
    from esmvalcore.cmor.table import get_var_info

    for var in sd.VARIABLES.values():
        info = get_var_info("CMIP6", var.mip, var.short_name)
        assert info is not None
        assert var.standard_name == info.standard_name
        assert var.long_name == info.long_name
        assert var.units == info.units
        assert var.frequency == info.frequency
        assert var.realm in info.modeling_realm
    assert sd.VARIABLES["spco2"].scalar_coordinate == "depth0m"
    assert sd.VARIABLES["siconc"].scalar_coordinate == "typesi"


@pytest.mark.parametrize("model", list(sd.MODELS))
def test_netcdf_metadata(tiny: tuple[Path, list[Path]], model: str) -> None:
    root, _ = tiny
    spec = sd.MODELS[model]
    for var in ALL_VARS:
        info = sd.VARIABLES[var]
        with netCDF4.Dataset(_path(root, model, var)) as ds:
            data = ds[var]
            assert data.standard_name == info.standard_name
            assert data.long_name == info.long_name
            assert data.units == info.units
            assert data.dtype == np.float32
            assert data._FillValue == np.float32(1e20)
            assert data.missing_value == np.float32(1e20)
            attrs = ds.__dict__
            assert attrs["source_id"] == model
            assert attrs["institution_id"] == "SYNTH"
            assert attrs["activity_id"] == "CMIP"
            assert attrs["experiment_id"] == "historical"
            assert attrs["variant_label"] == "r1i1p1f1"
            assert attrs["grid_label"] == "gn"
            # no mip_era: ESMValCore would look the fictitious model up online for citations
            assert "mip_era" not in attrs
            assert attrs["table_id"] == info.mip
            assert attrs["variable_id"] == var
            assert attrs["frequency"] == info.frequency
            assert attrs["realm"] == info.realm
            assert attrs["Conventions"] == "CF-1.7 CMIP-6.2"
            for key in ("title", "comment"):
                assert "SYNTHETIC DATA generated by carbon-biomes" in attrs[key]
                assert "not model output" in attrs[key]
            assert "synthetic" in attrs["history"]
            if var == "areacello":
                assert "time" not in ds.variables
            else:
                time = ds["time"]
                assert time.units == "days since 1850-01-01"
                assert time.calendar == spec.calendar
                assert time.bounds == "time_bnds"
                bounds = ds["time_bnds"][:]
                assert time.shape == (12,)
                np.testing.assert_allclose(time[:], bounds.mean(axis=1))
                assert np.all(bounds[1:, 0] == bounds[:-1, 1])
                dates = netCDF4.num2date(time[:], time.units, time.calendar)
                assert [d.month for d in dates] == list(range(1, 13))
                assert all(d.year == YEAR and 14 <= d.day <= 16 for d in dates)
            coordinates = getattr(data, "coordinates", "").split()
            if spec.grid_type == "curvilinear":
                assert data.dimensions[-2:] == ("j", "i")
                assert {"latitude", "longitude"} <= set(coordinates)
                for name in ("latitude", "longitude"):
                    assert ds[name].standard_name == name
                    assert ds[name].bounds == f"vertices_{name}"
                    assert ds[f"vertices_{name}"].shape == (*ds[name].shape, 4)
                assert ds["latitude"].units == "degrees_north"
                assert ds["longitude"].units == "degrees_east"
            else:
                assert data.dimensions[-2:] == ("lat", "lon")
                assert ds["lat"].standard_name == "latitude"
                assert ds["lon"].standard_name == "longitude"
                assert ds["lat"].bounds == "lat_bnds"
                assert ds["lon"].bounds == "lon_bnds"
                lon = ds["lon"][:]
                assert lon.min() >= 0 and lon.max() < 360
            if var == "spco2":
                assert "depth" in coordinates
                depth = ds["depth"]
                assert depth.shape == ()
                assert float(depth[...]) == 0.0
                assert depth.standard_name == "depth"
                assert depth.units == "m"
                assert depth.positive == "down"
            if var == "siconc":
                assert "type" in coordinates
                assert ds["type"].standard_name == "area_type"
                assert netCDF4.chartostring(ds["type"][:]) == "sea_ice"


def test_shapes(tiny: tuple[Path, list[Path]]) -> None:
    root, _ = tiny
    ny, nx = round(180 / RES), round(360 / RES)
    for model in sd.MODELS:
        for var in MONTHLY:
            assert _read(root, model, var).shape == (12, ny, nx)
        assert _read(root, model, "areacello").shape == (ny, nx)


def _check_cube_with_esmvalcore(path: Path, model: str, var: str, raw: bool) -> list[str]:
    """Load a file and run ESMValCore's fixes and CMOR checks as ``esmvaltool run`` does."""
    from esmvalcore.cmor.check import CheckLevels, _get_cmor_checker
    from esmvalcore.preprocessor import (
        cmor_check_data,
        cmor_check_metadata,
        fix_metadata,
        load,
    )

    info = sd.VARIABLES[var]
    cubes = load(path)
    assert len(cubes) == 1
    problems: list[str] = []
    if raw:
        # without any fixes: the file itself must be compliant
        checker = _get_cmor_checker("CMIP6", info.mip, var, frequency=info.frequency)(
            cubes[0].copy()
        )
        checker.check_metadata()
        checker.check_data()
        problems += checker._errors + checker._warnings
    cubes = fix_metadata(
        cubes,
        short_name=var,
        project="CMIP6",
        dataset=model,
        mip=info.mip,
        frequency=info.frequency,
    )
    assert len(cubes) == 1
    kwargs = {
        "cmor_table": "CMIP6",
        "mip": info.mip,
        "short_name": var,
        "frequency": info.frequency,
        "check_level": CheckLevels.DEFAULT,
    }
    cube = cmor_check_metadata(cubes[0], **kwargs)  # raises CMORCheckError on errors
    cube = cmor_check_data(cube, **kwargs)
    if var == "spco2":
        assert cube.coord("depth").points.tolist() == [0.0]
    if var == "siconc":
        assert cube.coord("area_type").points.tolist() == ["sea_ice"]
    return problems


@pytest.mark.parametrize("model", list(sd.MODELS))
def test_esmvalcore_cmor_checks_pass(
    tiny: tuple[Path, list[Path]], model: str, caplog: pytest.LogCaptureFixture
) -> None:
    root, _ = tiny
    regular = sd.MODELS[model].grid_type == "regular"
    for var in ALL_VARS:
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="esmvalcore"):
            problems = _check_cube_with_esmvalcore(_path(root, model, var), model, var, regular)
        assert problems == []
        warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
        assert warnings == [], (var, warnings)


def test_curvilinear_raw_check_only_wants_cmip6_coordinate_names(
    tiny: tuple[Path, list[Path]],
) -> None:
    """Like CMOR-written CMIP6 files, 2-D coordinates are named latitude/longitude.

    ESMValCore's generic fix renames them to lat/lon (see the test above); without the
    fix the checker complains about the names only.
    """
    from esmvalcore.cmor.check import CMORCheckError, _get_cmor_checker
    from esmvalcore.preprocessor import load

    root, _ = tiny
    cube = load(_path(root, "SYNTH-ESM-B", "tos"))[0]
    checker = _get_cmor_checker("CMIP6", "Omon", "tos", frequency="mon")(cube)
    with pytest.raises(CMORCheckError, match="var name"):
        checker.check_metadata()
    assert all("has var name" in error for error in checker._errors)


# --------------------------------------------------------------------------------------
# values
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("model", list(sd.MODELS))
def test_value_ranges(tiny: tuple[Path, list[Path]], model: str) -> None:
    root, _ = tiny
    fco2 = _read(root, model, "spco2").compressed() / sd.UATM_TO_PA
    tos = _read(root, model, "tos")
    sos = _read(root, model, "sos").compressed()
    dic = _read(root, model, "dissicos").compressed() * 1000
    alk = _read(root, model, "talkos").compressed() * 1000
    mld = _read(root, model, "mlotst").compressed()
    ice = _read(root, model, "siconc")
    assert 150 < fco2.min() and fco2.max() < 900
    assert 320 < np.median(fco2) < 420
    assert np.mean((fco2 >= 250) & (fco2 <= 480)) > 0.95
    assert np.mean(fco2 > 500) < 0.03
    assert -2.2 < tos.min() and tos.max() < 35
    assert 27 < np.ma.median(tos.max(axis=0)) or tos.max() > 27
    assert 28 < sos.min() and sos.max() < 40
    assert np.percentile(sos, 90) > 35.5  # subtropical maxima
    assert 1700 < dic.min() and dic.max() < 2500
    assert 1900 < alk.min() and alk.max() < 2700
    assert 0 < mld.min() and mld.max() < 3000
    assert np.percentile(mld, 99) > 150  # winter convection somewhere
    assert ice.min() == 0 and ice.max() == 100
    # ice only where the water is (close to) freezing
    assert np.all(tos[ice > 50] < -1.0)
    assert np.all(ice[tos > 3.0] == 0)
    # both hemispheres have ice in their winter
    lat = _cell_lat(root, model)
    north, south = (lat > 50), (lat < -50)
    assert ice[2][north].max() == 100  # March
    assert ice[8][south].max() == 100  # September


def _cell_lat(root: Path, model: str) -> np.ndarray:
    with netCDF4.Dataset(_path(root, model, "tos")) as ds:
        if "lat" in ds.variables:
            return np.broadcast_to(ds["lat"][:][:, None], ds["tos"].shape[1:])
        return ds["latitude"][:]


def _cell_lon(root: Path, model: str) -> np.ndarray:
    with netCDF4.Dataset(_path(root, model, "tos")) as ds:
        if "lon" in ds.variables:
            return np.broadcast_to(ds["lon"][:][None, :], ds["tos"].shape[1:])
        return ds["longitude"][:]


@pytest.mark.parametrize("model", list(sd.MODELS))
def test_fco2_equals_pyco2sys(tiny: tuple[Path, list[Path]], model: str) -> None:
    root, _ = tiny
    values = {var: _read(root, model, var) for var in ("spco2", "tos", "sos", "dissicos", "talkos")}
    valid = ~np.ma.getmaskarray(values["spco2"])
    index = np.flatnonzero(valid)
    rng = np.random.default_rng(123)
    pick = rng.choice(index, size=50, replace=False)
    flat = {var: np.ma.getdata(v).ravel()[pick].astype(np.float64) for var, v in values.items()}
    result = pyco2.sys(
        par1=flat["talkos"] * 1e6 / sd.SEAWATER_DENSITY,  # mol m-3 -> umol kg-1
        par2=flat["dissicos"] * 1e6 / sd.SEAWATER_DENSITY,
        par1_type=1,
        par2_type=2,
        salinity=flat["sos"],
        temperature=flat["tos"],
    )
    np.testing.assert_allclose(flat["spco2"] / 0.101325, result["fCO2"], rtol=1e-6)


def test_fast_chemistry_matches_pyco2sys() -> None:
    rng = np.random.default_rng(5)
    n = 500
    temp = rng.uniform(-2, 32, n)
    sal = rng.uniform(30, 38, n)
    alk = 2300 + 58 * (sal - 35) + rng.normal(0, 30, n)
    dic = rng.uniform(1850, 2250, n)
    reference = pyco2.sys(
        par1=alk, par2=dic, par1_type=1, par2_type=2, salinity=sal, temperature=temp
    )
    np.testing.assert_allclose(
        sd.fco2_from_dic_alk(dic, alk, temp, sal), reference["fCO2"], rtol=1e-12
    )
    back = sd.dic_from_fco2_alk(reference["fCO2"], alk, temp, sal)
    np.testing.assert_allclose(back, dic, rtol=1e-9)
    # broadcasting and shape
    assert sd.fco2_from_dic_alk(np.full((2, 3), 2000.0), 2300.0, 15.0, 35.0).shape == (2, 3)


@pytest.mark.parametrize("model", list(sd.MODELS))
def test_land_is_masked_consistently(tiny: tuple[Path, list[Path]], model: str) -> None:
    root, _ = tiny
    mask = np.ma.getmaskarray(_read(root, model, "areacello"))
    assert 0.25 < mask.mean() < 0.5
    for var in MONTHLY:
        data = _read(root, model, var)
        data_mask = np.ma.getmaskarray(data)
        assert np.array_equal(data_mask, np.broadcast_to(mask, data.shape)), var
        assert np.all(np.isfinite(data.compressed()))
    with netCDF4.Dataset(_path(root, model, "tos")) as ds:
        ds.set_auto_mask(False)
        raw = ds["tos"][0]
    assert np.all(raw[mask] == np.float32(1e20))
    lat, lon = _cell_lat(root, model), _cell_lon(root, model)
    spec = sd.MODELS[model]
    grid = sd.build_grid(spec, RES)
    np.testing.assert_array_equal(mask, grid.land)
    np.testing.assert_allclose(lat, grid.lat)
    np.testing.assert_allclose(lon, grid.lon)
    # recognisable geography: central Africa and Antarctica are land, open oceans are not
    assert sd.land_mask(np.array([0.0, -85.0, 40.0]), np.array([20.0, 0.0, 260.0])).all()
    assert not sd.land_mask(
        np.array([0.0, 0.0, -30.0, 30.0]), np.array([180.0, 330.0, 80.0, 320.0])
    ).any()


def test_cell_areas() -> None:
    sphere = 4 * np.pi * sd.EARTH_RADIUS**2
    for model, res in (("SYNTH-ESM-A", 4.0), ("SYNTH-ESM-B", 4.0), ("SYNTH-ESM-B", 2.0)):
        grid = sd.build_grid(sd.MODELS[model], res)
        assert np.all(grid.area > 0)
        np.testing.assert_allclose(grid.area.sum(), sphere, rtol=1e-10)
    grid = sd.build_grid(sd.MODELS["SYNTH-ESM-B"], 2.0)
    # the curvilinear grid is regular in the south and distorted in the north
    assert np.allclose(grid.lat[:40], grid.lat[:40, :1])
    assert np.ptp(grid.lat[-5]) > 5  # logical latitude 81N: a circle around 75N 40W
    assert grid.land[-1].all()  # the displaced pole sits on Greenland


def test_areacello_matches_grid(tiny: tuple[Path, list[Path]]) -> None:
    root, _ = tiny
    for model in sd.MODELS:
        area = _read(root, model, "areacello")
        grid = sd.build_grid(sd.MODELS[model], RES)
        np.testing.assert_allclose(area.compressed(), grid.area[grid.ocean], rtol=1e-6)


def test_models_differ_as_designed(tiny: tuple[Path, list[Path]]) -> None:
    root, _ = tiny

    def area_mean(model: str, var: str, region: np.ndarray | None = None) -> float:
        area = _read(root, model, "areacello")
        data = _read(root, model, var).mean(axis=0)
        if region is not None:
            area = np.ma.masked_where(~region, area)
        return float((data * area).sum() / area.sum())

    # same lattice at the same resolution: regions compare like for like in the south
    sst_a, sst_b = area_mean("SYNTH-ESM-A", "tos"), area_mean("SYNTH-ESM-B", "tos")
    assert 0.5 < sst_b - sst_a < 1.5
    ice_a, ice_c = area_mean("SYNTH-ESM-A", "siconc"), area_mean("SYNTH-ESM-C", "siconc")
    assert ice_c > ice_a
    equator = np.abs(_cell_lat(root, "SYNTH-ESM-A")) < 6
    lon = _cell_lon(root, "SYNTH-ESM-A")
    cold_tongue = equator & (lon > 200) & (lon < 270)
    # weaker upwelling in B: warmer cold tongue relative to the global mean
    anomaly_a = area_mean("SYNTH-ESM-A", "tos", cold_tongue) - sst_a
    anomaly_b = area_mean("SYNTH-ESM-B", "tos", cold_tongue) - sst_b
    assert anomaly_b > anomaly_a + 0.5


# --------------------------------------------------------------------------------------
# reproducibility
# --------------------------------------------------------------------------------------


def test_same_seed_gives_identical_files(tiny: tuple[Path, list[Path]], tmp_path: Path) -> None:
    root, _ = tiny
    # the default run is unchanged by a second member generated in the same call
    again = sd.generate_sample_data(
        tmp_path,
        models=["SYNTH-ESM-B"],
        years=(YEAR, YEAR),
        resolution=RES,
        seed=0,
        ensembles=("r1i1p1f1", "r2i1p1f1"),
    )
    assert len(again) == 2 * len(ALL_VARS)
    reference = [path for path in again if "_r1i1p1f1_" in path.name]
    assert len(reference) == len(ALL_VARS)
    for path in reference:
        original = root / path.relative_to(tmp_path)
        assert original.read_bytes() == path.read_bytes(), path.name


def test_different_seed_gives_different_data(tiny: tuple[Path, list[Path]], tmp_path: Path) -> None:
    root, _ = tiny
    sd.generate_sample_data(
        tmp_path, models=["SYNTH-ESM-A"], years=(YEAR, YEAR), resolution=RES, seed=1
    )
    for var in ("tos", "dissicos", "talkos", "spco2"):
        first = _read(root, "SYNTH-ESM-A", var)
        second = _read(tmp_path, "SYNTH-ESM-A", var)
        assert np.array_equal(np.ma.getmaskarray(first), np.ma.getmaskarray(second))
        assert not np.ma.allclose(first, second)
        # same climate, different weather
        assert np.corrcoef(first.compressed(), second.compressed())[0, 1] > 0.5
    np.testing.assert_array_equal(
        _read(root, "SYNTH-ESM-A", "areacello"), _read(tmp_path, "SYNTH-ESM-A", "areacello")
    )


def test_months_do_not_depend_on_the_requested_period(
    tiny: tuple[Path, list[Path]], tmp_path: Path
) -> None:
    root, _ = tiny
    sd.generate_sample_data(
        tmp_path, models=["SYNTH-ESM-C"], years=(YEAR - 1, YEAR), resolution=RES, seed=0
    )
    path = sd.output_path(tmp_path, "SYNTH-ESM-C", "spco2", (YEAR - 1, YEAR))
    with netCDF4.Dataset(path) as ds:
        longer = ds["spco2"][12:]
    np.testing.assert_array_equal(longer, _read(root, "SYNTH-ESM-C", "spco2"))


# --------------------------------------------------------------------------------------
# ensemble members and experiments
# --------------------------------------------------------------------------------------


def test_member_and_experiment_drs_paths(regression_data: Path) -> None:
    root, model = regression_data, "SYNTH-ESM-A"
    found = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    expected = []
    for experiment, ensemble in RUNS:
        for var in ALL_VARS:
            table = sd.VARIABLES[var].mip
            name = f"{var}_{table}_{model}_{experiment}_{ensemble}_gn"
            name += ".nc" if var == "areacello" else f"_{YEAR}01-{YEAR}12.nc"
            expected.append(
                f"CMIP6/CMIP/SYNTH/{model}/{experiment}/{ensemble}/{table}/{var}/gn/v20260101/"
                f"{name}"
            )
    assert found == sorted(expected)
    assert [_path(root, model, "tos", run).relative_to(root).parts[:6] for run in RUNS] == [
        ("CMIP6", "CMIP", "SYNTH", model, experiment, ensemble) for experiment, ensemble in RUNS
    ]


def test_member_and_experiment_attributes(regression_data: Path) -> None:
    root, model = regression_data, "SYNTH-ESM-A"
    tracking_ids = set()
    for experiment, ensemble in RUNS:
        for var in ALL_VARS:
            with netCDF4.Dataset(_path(root, model, var, (experiment, ensemble))) as ds:
                attrs = ds.__dict__
            assert attrs["source_id"] == model
            assert attrs["activity_id"] == "CMIP"
            assert attrs["experiment_id"] == experiment
            assert attrs["experiment"] == (
                f"{sd.EXPERIMENTS[experiment].title} (synthetic stand-in)"
            )
            assert attrs["variant_label"] == ensemble
            indices = sd.parse_variant_label(ensemble)
            for key, index in zip(
                ("realization_index", "initialization_index", "physics_index", "forcing_index"),
                indices,
                strict=True,
            ):
                assert attrs[key] == index
                assert attrs[key].dtype == np.int32
            assert attrs["variable_id"] == var
            assert "SYNTHETIC DATA generated by carbon-biomes" in attrs["title"]
            if (experiment, ensemble) != REFERENCE:
                assert f"experiment {experiment}, ensemble {ensemble}" in attrs["history"]
            else:
                assert "experiment" not in attrs["history"]  # unchanged since before members
            tracking_ids.add(attrs["tracking_id"])
    assert len(tracking_ids) == len(RUNS) * len(ALL_VARS)


def test_members_differ_in_weather_not_climate(regression_data: Path) -> None:
    root, model = regression_data, "SYNTH-ESM-A"
    for var in ("tos", "sos", "dissicos", "talkos", "mlotst", "spco2"):
        first = _read(root, model, var, REFERENCE)
        second = _read(root, model, var, SECOND_MEMBER)
        assert np.array_equal(np.ma.getmaskarray(first), np.ma.getmaskarray(second))
        assert not np.ma.allclose(first, second), var
        assert np.corrcoef(first.compressed(), second.compressed())[0, 1] > 0.5, var
    np.testing.assert_array_equal(
        _read(root, model, "areacello", REFERENCE), _read(root, model, "areacello", SECOND_MEMBER)
    )
    area = _read(root, model, "areacello")

    def mean_fco2(run: tuple[str, str]) -> float:
        fco2 = _read(root, model, "spco2", run).mean(axis=0) / sd.UATM_TO_PA
        return float((fco2 * area).sum() / area.sum())

    # same climate: the global means of two members agree closely
    assert abs(mean_fco2(SECOND_MEMBER) - mean_fco2(REFERENCE)) < 1.0
    # esm-hist: atmospheric CO2 7.5 uatm above the historical curve in 2000
    assert 5.0 < mean_fco2(SECOND_EXPERIMENT) - mean_fco2(REFERENCE) < 10.0
    assert not np.ma.allclose(
        _read(root, model, "tos", SECOND_EXPERIMENT), _read(root, model, "tos", REFERENCE)
    )


def test_second_experiment_fco2_equals_pyco2sys(regression_data: Path) -> None:
    root, model = regression_data, "SYNTH-ESM-A"
    values = {
        var: _read(root, model, var, SECOND_EXPERIMENT)
        for var in ("spco2", "tos", "sos", "dissicos", "talkos")
    }
    index = np.flatnonzero(~np.ma.getmaskarray(values["spco2"]))
    pick = np.random.default_rng(7).choice(index, size=50, replace=False)
    flat = {var: np.ma.getdata(v).ravel()[pick].astype(np.float64) for var, v in values.items()}
    result = pyco2.sys(
        par1=flat["talkos"] * 1e6 / sd.SEAWATER_DENSITY,
        par2=flat["dissicos"] * 1e6 / sd.SEAWATER_DENSITY,
        par1_type=1,
        par2_type=2,
        salinity=flat["sos"],
        temperature=flat["tos"],
    )
    np.testing.assert_allclose(flat["spco2"] / sd.UATM_TO_PA, result["fCO2"], rtol=1e-6)


def test_same_seed_gives_identical_member_files(regression_data: Path, tmp_path: Path) -> None:
    """A member alone gives the bytes it gave next to another member, in any call."""
    again = sd.generate_sample_data(
        tmp_path,
        models=["SYNTH-ESM-A"],
        years=(YEAR, YEAR),
        resolution=2,
        seed=0,
        ensembles="r2i1p1f1",
    )
    assert len(again) == len(ALL_VARS)
    for path in again:
        assert "_historical_r2i1p1f1_" in path.name
        original = regression_data / path.relative_to(tmp_path)
        assert original.read_bytes() == path.read_bytes(), path.name


@pytest.mark.parametrize("run", [SECOND_MEMBER, SECOND_EXPERIMENT], ids="_".join)
def test_esmvalcore_cmor_checks_pass_for_members_and_experiments(
    regression_data: Path, run: tuple[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    model = "SYNTH-ESM-A"
    for var in ALL_VARS:
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="esmvalcore"):
            problems = _check_cube_with_esmvalcore(
                _path(regression_data, model, var, run), model, var, raw=True
            )
        assert problems == []
        warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
        assert warnings == [], (var, warnings)


def test_esmvalcore_finds_members_and_experiments(regression_data: Path) -> None:
    """ESMValCore derives the activity from the experiment; our DRS template then finds it."""
    from esmvalcore.dataset import Dataset
    from esmvalcore.io.local import LocalDataSource

    from carbon_biomes.esmvalcore_config import CMIP6_DIRNAME, CMIP6_FILENAME

    source = LocalDataSource(
        name="local",
        project="CMIP6",
        priority=1,
        rootpath=regression_data,
        dirname_template=CMIP6_DIRNAME,
        filename_template=CMIP6_FILENAME,
    )
    for experiment, ensemble in RUNS:
        for var in ("tos", "siconc", "areacello"):
            info = sd.VARIABLES[var]
            facets = {
                "project": "CMIP6",
                "dataset": "SYNTH-ESM-A",
                "institute": "SYNTH",
                "exp": experiment,
                "ensemble": ensemble,
                "mip": info.mip,
                "short_name": var,
                "grid": "gn",
            }
            if info.frequency != "fx":
                facets["timerange"] = f"{YEAR}/{YEAR}"
            dataset = Dataset(**facets)
            dataset.augment_facets()
            assert dataset.facets["activity"] == "CMIP"
            found = source.find_data(**dataset.facets)
            run = (experiment, ensemble)
            assert [Path(f) for f in found] == [_path(regression_data, "SYNTH-ESM-A", var, run)]


def test_variant_labels_and_experiments() -> None:
    assert sd.parse_variant_label("r1i1p1f1") == (1, 1, 1, 1)
    assert sd.parse_variant_label("r12i3p2f10") == (12, 3, 2, 10)
    for bad in ("r1i1p1", "r0i1p1f1", "r01i1p1f1", "R1I1P1F1", " r1i1p1f1", "r1i1p1f1x", 1):
        with pytest.raises(ValueError, match="invalid ensemble .*rNiNpNfN"):
            sd.parse_variant_label(bad)  # type: ignore[arg-type]
    assert sd.DEFAULT_ENSEMBLES == ("r1i1p1f1",)
    assert sd.DEFAULT_EXPERIMENTS == ("historical",)
    assert {name: spec.activity_id for name, spec in sd.EXPERIMENTS.items()} == {
        "historical": "CMIP",
        "esm-hist": "CMIP",
    }
    assert sd.output_path("/d", "SYNTH-ESM-A", "tos", (2000, 2001)) == sd.output_path(
        "/d", "SYNTH-ESM-A", "tos", (2000, 2001), experiment="historical", ensemble="r1i1p1f1"
    )
    assert sd.output_path(
        "/d", "SYNTH-ESM-B", "areacello", experiment="esm-hist", ensemble="r3i1p1f2"
    ) == Path(
        "/d/CMIP6/CMIP/SYNTH/SYNTH-ESM-B/esm-hist/r3i1p1f2/Ofx/areacello/gn/v20260101/"
        "areacello_Ofx_SYNTH-ESM-B_esm-hist_r3i1p1f2_gn.nc"
    )
    with pytest.raises(ValueError, match="invalid experiment 'ssp585'"):
        sd.output_path("/d", "SYNTH-ESM-A", "tos", (2000, 2001), experiment="ssp585")
    with pytest.raises(ValueError, match="invalid ensemble 'r1'"):
        sd.output_path("/d", "SYNTH-ESM-A", "tos", (2000, 2001), ensemble="r1")


def test_library_rejects_bad_members_and_experiments(tmp_path: Path) -> None:
    cases = [
        ({"ensembles": ["r1i1p1f1", "r1i1p1"]}, r"invalid ensemble 'r1i1p1': .*rNiNpNfN"),
        ({"ensembles": ["r0i1p1f1", "r01i1p1f1"]}, "invalid ensembles 'r0i1p1f1', 'r01i1p1f1'"),
        ({"ensembles": []}, "no ensembles requested"),
        ({"experiments": ["historical", "ssp585"]}, "invalid experiment 'ssp585': known"),
        ({"experiments": "piControl"}, r"historical \(activity CMIP\), esm-hist"),
        ({"experiments": ()}, "no experiments requested"),
    ]
    for kwargs, message in cases:
        with pytest.raises(ValueError, match=message):
            sd.generate_sample_data(tmp_path / "out", models=["SYNTH-ESM-A"], **kwargs)
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------------------
# implementation
# --------------------------------------------------------------------------------------


def test_smoothing_equals_scipy_bit_for_bit() -> None:
    """The NumPy Gaussian filter reproduces scipy.ndimage exactly (and so the old files)."""
    from scipy.ndimage import gaussian_filter

    from carbon_biomes.sample_data.fields import _gaussian_smooth

    rng = np.random.default_rng(3)
    for shape in ((18, 36), (45, 90), (90, 180), (5, 7)):
        field = rng.standard_normal(shape)
        expected = gaussian_filter(field, sigma=1.0, mode=("nearest", "wrap"), truncate=3.0)
        assert np.array_equal(_gaussian_smooth(field, 1.0, truncate=3.0), expected), shape


def test_subpackage_imports_only_numpy_netcdf_pyco2sys_and_stdlib() -> None:
    allowed = {"numpy", "netCDF4", "cftime", "PyCO2SYS", "carbon_biomes"}
    package = Path(sd.__file__).parent
    for path in sorted(package.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
                if names[0] == "carbon_biomes":
                    assert {alias.name for alias in node.names} == {"__version__"}, path.name
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                assert top in allowed or top in sys.stdlib_module_names, (path.name, name)
                if top == "carbon_biomes":
                    assert name == "carbon_biomes" or name.startswith(
                        "carbon_biomes.sample_data"
                    ), (path.name, name)


# --------------------------------------------------------------------------------------
# physics: box regressions recover PyCO2SYS's partial derivatives
# --------------------------------------------------------------------------------------


def test_box_regressions_recover_partial_derivatives(regression_data: Path) -> None:
    from scipy import stats

    root, model, box, month = regression_data, "SYNTH-ESM-A", 8.0, 0
    fields = {
        var: _read(root, model, var)[month] for var in ("spco2", "tos", "dissicos", "talkos", "sos")
    }
    valid = ~np.ma.getmaskarray(fields["spco2"])
    fco2 = np.ma.getdata(fields["spco2"])[valid] / sd.UATM_TO_PA
    temp = np.ma.getdata(fields["tos"])[valid].astype(float)
    dic = np.ma.getdata(fields["dissicos"])[valid] * 1000.0  # mmol m-3
    alk = np.ma.getdata(fields["talkos"])[valid] * 1000.0
    sal = np.ma.getdata(fields["sos"])[valid].astype(float)
    lat = _cell_lat(root, model)[valid]
    lon = (_cell_lon(root, model)[valid] + 180) % 360 - 180
    key = np.floor((lat + 90) / box) * 1000 + np.floor((lon + 180) / box)
    slopes, pvalues, means = [], [], []
    for k in np.unique(key):
        sel = key == k
        n = int(sel.sum())
        if n < 12:
            continue
        design = np.column_stack([np.ones(n), temp[sel], dic[sel], alk[sel]])
        beta, *_ = np.linalg.lstsq(design, fco2[sel], rcond=None)
        resid = fco2[sel] - design @ beta
        cov = resid @ resid / (n - 4) * np.linalg.inv(design.T @ design)
        tval = beta / np.sqrt(np.diag(cov))
        slopes.append(beta[1:])
        pvalues.append(2 * stats.t.sf(np.abs(tval[1:]), n - 4))
        means.append([temp[sel].mean(), dic[sel].mean(), alk[sel].mean(), sal[sel].mean()])
    slopes_a, pvalues_a, means_a = np.array(slopes), np.array(pvalues), np.array(means)
    assert len(slopes_a) > 100
    significant = np.all(pvalues_a <= 0.04, axis=1)
    assert significant.mean() > 0.7
    rho = sd.SEAWATER_DENSITY / 1000.0  # mmol m-3 per umol kg-1
    deriv = pyco2.sys(
        par1=means_a[:, 2] / rho,
        par2=means_a[:, 1] / rho,
        par1_type=1,
        par2_type=2,
        temperature=means_a[:, 0],
        salinity=means_a[:, 3],
        grads_of=["fCO2"],
        grads_wrt=["temperature", "par1", "par2"],
    )
    expected = np.column_stack(
        [
            deriv["d_fCO2__d_temperature"],
            deriv["d_fCO2__d_par2"] / rho,
            deriv["d_fCO2__d_par1"] / rho,
        ]
    )
    ratio = slopes_a[significant] / expected[significant]
    median = np.median(ratio, axis=0)
    assert np.all((median > 0.85) & (median < 1.15)), median
    assert np.all(slopes_a[significant, 0] > 0)  # warming raises fCO2
    assert np.all(slopes_a[significant, 1] > 0)  # DIC raises fCO2
    assert np.all(slopes_a[significant, 2] < 0)  # alkalinity lowers fCO2


# --------------------------------------------------------------------------------------
# validation and command line
# --------------------------------------------------------------------------------------


def test_library_rejects_bad_input(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="first year must not be after the last"):
        sd.generate_sample_data(tmp_path, years=(2000, 1990))
    with pytest.raises(ValueError, match="known models: SYNTH-ESM-A, SYNTH-ESM-B, SYNTH-ESM-C"):
        sd.generate_sample_data(tmp_path, models=["CESM2"])
    with pytest.raises(ValueError, match="positive"):
        sd.generate_sample_data(tmp_path, resolution=0)
    with pytest.raises(ValueError, match="whole number of cells"):
        sd.generate_sample_data(tmp_path, resolution=0.7)
    with pytest.raises(ValueError, match="within 1850-2100"):
        sd.generate_sample_data(tmp_path, years=(1800, 1801))
    with pytest.raises(ValueError, match="seed"):
        sd.generate_sample_data(tmp_path, seed=-1)
    assert not any(tmp_path.rglob("*.nc"))


def test_parse_list() -> None:
    assert parse_list(["a,b", "c"], "--x", "a,b") == ["a", "b", "c"]
    assert parse_list("a, b,a", "--x", "a,b") == ["a", "b"]
    with pytest.raises(ValueError, match="invalid --x 'a,,b': expected a comma-separated list"):
        parse_list(["a,,b"], "--x", "a,b")
    with pytest.raises(ValueError, match="invalid --x"):
        parse_list([], "--x", "a,b")


def test_parse_year_range() -> None:
    assert parse_year_range("2000-2009") == (2000, 2009)
    assert parse_year_range("2005") == (2005, 2005)
    with pytest.raises(ValueError, match="expected FIRST-LAST"):
        parse_year_range("20x0-2001")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--years", "2000-1990"],
            "invalid --years '2000-1990': the first year must not be after the last",
        ),
        (["--years", "abc"], "invalid --years 'abc'"),
        (["--years", "1700-1701"], "invalid --years 1700-1701"),
        (
            ["--models", "SYNTH-ESM-A", "NOPE"],
            "unknown model 'NOPE'; known models: SYNTH-ESM-A, SYNTH-ESM-B, SYNTH-ESM-C",
        ),
        (["--resolution", "0"], "invalid --resolution 0: it must be a positive"),
        (["--resolution", "-2"], "invalid --resolution -2: it must be a positive"),
        (["--resolution", "0.7"], "whole number of cells"),
        (["--seed", "-3"], "invalid --seed -3"),
        (
            ["--ensembles", "r1i1p1f1,r2i1p1"],
            "invalid --ensembles 'r2i1p1': expected a CMIP6 variant label rNiNpNfN",
        ),
        (["--ensembles", "r1i1p1f1", "r0i1p1f1"], "invalid --ensembles 'r0i1p1f1'"),
        (["--ensembles", "r1i1p1f1,"], "invalid --ensembles 'r1i1p1f1,': expected a comma"),
        (
            ["--experiments", "historical,ssp585"],
            "invalid --experiments 'ssp585': known experiments are historical (activity CMIP), "
            "esm-hist (activity CMIP)",
        ),
        (["--experiments", "piControl", "amip"], "invalid --experiments 'piControl', 'amip'"),
        (["--experiments", ",esm-hist"], "invalid --experiments ',esm-hist'"),
    ],
)
def test_cli_rejects_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    with pytest.raises(SystemExit) as excinfo:
        main(["sample-data", "--out", str(tmp_path / "out"), *args])
    assert excinfo.value.code == 2
    err = capsys.readouterr().err
    assert message in err
    assert "carbon-biomes sample-data: error:" in err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("*.nc"))


def test_cli_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as excinfo:
        main(["sample-data", "--help"])
    assert excinfo.value.code == 0
    out = capsys.readouterr().out
    for text in (
        "--out",
        "--models",
        "--years",
        "--resolution",
        "--seed",
        "--ensembles",
        "--experiments",
        "SYNTH-ESM-B",
        "esm-hist (activity CMIP)",
    ):
        assert text in out
    with pytest.raises(SystemExit) as excinfo:
        main(["--help"])
    assert excinfo.value.code == 0
    assert "sample-data" in capsys.readouterr().out


def test_console_script_help() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "carbon_biomes.cli", "sample-data", "--help"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0
    assert "--resolution" in result.stdout
    bad = subprocess.run(
        [
            sys.executable,
            "-m",
            "carbon_biomes.cli",
            "sample-data",
            "--out",
            "x",
            "--years",
            "2000-1990",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 2
    assert "the first year must not be after the last" in bad.stderr


def test_cli_generates_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="carbon_biomes")
    status = main(
        [
            "sample-data",
            "--out",
            str(tmp_path),
            "--models",
            "SYNTH-ESM-A",
            "--years",
            "2001",
            "--resolution",
            "10",
            "--seed",
            "4",
        ]
    )
    assert status == 0
    files = sorted(tmp_path.rglob("*.nc"))
    assert len(files) == len(ALL_VARS)  # particular models: no observations by default
    out = capsys.readouterr().out
    assert re.search(r"Wrote 8 files .* for SYNTH-ESM-A", out)
    assert "SYNTH-OBS" not in out
    assert any("SYNTH-ESM-A: year 2001 written" in r.getMessage() for r in caplog.records)
    with netCDF4.Dataset(sd.output_path(tmp_path, "SYNTH-ESM-A", "tos", (2001, 2001))) as ds:
        assert ds["tos"].shape == (12, 18, 36)
        assert "seed=4" in ds.history


def test_cli_generates_members_and_experiments(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status = main(
        [
            "sample-data",
            "--out",
            str(tmp_path),
            "--models",
            "SYNTH-ESM-A",
            "--years",
            "2001",
            "--resolution",
            "10",
            "--ensembles",
            "r1i1p1f1,r2i1p1f1",
            "--experiments",
            "esm-hist",
        ]
    )
    assert status == 0
    assert len(list(tmp_path.rglob("*.nc"))) == 2 * len(ALL_VARS)
    out = capsys.readouterr().out
    assert re.search(r"Wrote 16 files .* for SYNTH-ESM-A", out)
    assert "activity CMIP, exp esm-hist, ensemble r1i1p1f1, r2i1p1f1" in out
    for ensemble in ("r1i1p1f1", "r2i1p1f1"):
        run = {"experiment": "esm-hist", "ensemble": ensemble}
        path = sd.output_path(tmp_path, "SYNTH-ESM-A", "spco2", (2001, 2001), **run)
        with netCDF4.Dataset(path) as ds:
            assert ds.experiment_id == "esm-hist"
            assert ds.activity_id == "CMIP"
            assert ds.variant_label == ensemble
            assert ds.realization_index == int(ensemble[1])
