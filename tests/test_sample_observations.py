"""The fictitious observation-based products SYNTH-OBS-CARBON (OBS6) and SYNTH-OBS-SST (OBS).

(a) Files, names, attributes, values, determinism and the consistency of the two products, on
tiny grids (carbon product 4 degrees, SST product 2 degrees, two years).
(b) ``esmvaltool run`` of a recipe that assembles an observation-based reference from both
products (one alias, a per-dataset regridding preprocessor) next to a model.
"""

from __future__ import annotations

import fnmatch
import logging
import textwrap
from pathlib import Path

import netCDF4
import numpy as np
import PyCO2SYS as pyco2  # noqa: N813
import pytest
import yaml

from carbon_biomes import sample_data as sd
from carbon_biomes.cli import main
from carbon_biomes.esmvalcore_config import (
    OBS_DIRNAME,
    OBS_FILENAME,
    OBS_SUBDIRECTORY,
    latest_run_dir,
    run_recipe,
    write_config,
)
from carbon_biomes.sample_data.observations import _ObservedClimate, _product_resolution

REPOSITORY = Path(__file__).resolve().parent.parent
YEARS = (2000, 2001)
RES = 4.0
CARBON, SST = "SYNTH-OBS-CARBON", "SYNTH-OBS-SST"
PRODUCTS = ((CARBON, "spco2"), (CARBON, "dissicos"), (CARBON, "talkos"), (SST, "tos"))
PERIOD = f"{YEARS[0]}01-{YEARS[1]}12"
EXPECTED = (
    f"OBS/Tier2/SYNTH-OBS-CARBON/OBS6_SYNTH-OBS-CARBON_reanaly_v1_Omon_spco2_{PERIOD}.nc",
    f"OBS/Tier2/SYNTH-OBS-CARBON/OBS6_SYNTH-OBS-CARBON_reanaly_v1_Omon_dissicos_{PERIOD}.nc",
    f"OBS/Tier2/SYNTH-OBS-CARBON/OBS6_SYNTH-OBS-CARBON_reanaly_v1_Omon_talkos_{PERIOD}.nc",
    f"OBS/Tier2/SYNTH-OBS-SST/OBS_SYNTH-OBS-SST_reanaly_1_Omon_tos_{PERIOD}.nc",
)


@pytest.fixture(scope="module")
def observations(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    """Both products, two years, carbon product at 4 degrees (SST product at 2), seed 0."""
    root = tmp_path_factory.mktemp("observations")
    files = sd.generate_observations(root, years=YEARS, resolution=RES, seed=0)
    return root, files


def _path(root: Path, dataset: str, var: str, years: tuple[int, int] = YEARS) -> Path:
    return sd.observation_path(root, dataset, var, years)


def _read(root: Path, dataset: str, var: str) -> np.ma.MaskedArray:
    with netCDF4.Dataset(_path(root, dataset, var)) as ds:
        return ds[var][:]


# --------------------------------------------------------------------------------------
# (a) layout and metadata
# --------------------------------------------------------------------------------------


def test_file_layout_is_esmvalcores_obs_layout(observations: tuple[Path, list[Path]]) -> None:
    root, files = observations
    assert [p.relative_to(root).as_posix() for p in files] == list(EXPECTED)
    found = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    assert found == sorted(EXPECTED)  # no temporary files left
    # the path is what ESMValCore's OBS/OBS6 data source globs for
    for path, (dataset, var) in zip(files, PRODUCTS, strict=True):
        spec = sd.OBSERVATIONS[dataset]
        facets = {**spec.facets, "short_name": var}
        relative = path.relative_to(root / OBS_SUBDIRECTORY)
        assert relative.parent.as_posix() == OBS_DIRNAME.format(**facets)
        assert fnmatch.fnmatchcase(relative.name, OBS_FILENAME.format(**facets))
    assert sd.OBS_DIRECTORY == OBS_SUBDIRECTORY


def test_templates_are_esmvalcores_defaults() -> None:
    import esmvalcore

    defaults = Path(esmvalcore.__file__).parent / "config" / "configurations"
    config = yaml.safe_load((defaults / "data-local-esmvaltool.yml").read_text(encoding="utf-8"))
    for project in ("OBS6", "OBS"):
        local = config["projects"][project]["data"]["local"]
        assert local["dirname_template"] == OBS_DIRNAME
        assert local["filename_template"] == OBS_FILENAME


def test_specs() -> None:
    carbon, sst = sd.OBSERVATIONS[CARBON], sd.OBSERVATIONS[SST]
    assert (carbon.project, carbon.tier, carbon.obs_type, carbon.version, carbon.mip) == (
        "OBS6", 2, "reanaly", "v1", "Omon",
    )  # fmt: skip
    assert carbon.variables == ("spco2", "dissicos", "talkos")
    assert (sst.project, sst.tier, sst.obs_type, sst.version, sst.mip) == (
        "OBS", 2, "reanaly", "1", "Omon",
    )  # fmt: skip
    assert sst.variables == ("tos",)
    assert (carbon.cmor_table, sst.cmor_table) == ("CMIP6", "CMIP5")
    assert sd.DEFAULT_OBSERVATIONS == (CARBON, SST)
    # the observed climate is the models' unbiased reference configuration (SYNTH-ESM-A's
    # parameters) with its own random streams
    reference = sd.MODELS["SYNTH-ESM-A"]
    from dataclasses import replace

    climate = replace(
        sd.OBSERVED_CLIMATE, source_id=reference.source_id, description=reference.description
    )
    assert climate == reference
    assert sd.OBSERVED_CLIMATE.source_id not in sd.MODELS


def test_variable_specs_match_esmvalcore_tables() -> None:
    import esmvalcore.config  # noqa: F401  (loads the CMOR tables)
    from esmvalcore.cmor.table import get_var_info

    for dataset, var in PRODUCTS:
        project = sd.OBSERVATIONS[dataset].project
        info = get_var_info(project, "Omon", var)
        spec = sd.observation_variable(dataset, var)
        assert (spec.standard_name, spec.long_name, spec.units, spec.frequency) == (
            info.standard_name, info.long_name, info.units, info.frequency,
        )  # fmt: skip
        assert spec.cell_measures == ""  # the products have no areacello
    assert sd.observation_variable(SST, "tos").units == "K"  # CMIP5 table
    assert sd.observation_variable(CARBON, "spco2").scalar_coordinate == "depth0m"
    with pytest.raises(ValueError, match="has no variable 'tos'"):
        sd.observation_variable(CARBON, "tos")
    with pytest.raises(ValueError, match="unknown observation product"):
        sd.observation_path(".", "HadISST", "tos", YEARS)


@pytest.mark.parametrize(("dataset", "var"), PRODUCTS)
def test_netcdf_metadata(observations: tuple[Path, list[Path]], dataset: str, var: str) -> None:
    root, _ = observations
    spec = sd.OBSERVATIONS[dataset]
    info = sd.observation_variable(dataset, var)
    with netCDF4.Dataset(_path(root, dataset, var)) as ds:
        attrs = ds.__dict__
        # what ESMValTool's CMORizers write (utilities.set_global_atts)
        assert attrs["project_id"] == spec.project
        assert attrs["tier"] == "2"
        assert attrs["version"] == spec.version
        assert attrs["modeling_realm"] == "reanaly"
        assert attrs["dataset_id"] == dataset
        assert attrs["mip"] == "Omon"
        assert attrs["title"].startswith(f"{dataset} data reformatted for ESMValTool")
        for key in ("title", "source", "reference", "comment"):
            assert "SYNTHETIC" in attrs[key], key
        assert "not observations" in attrs["comment"]
        assert "seed=0" in attrs["history"]
        assert "mip_era" not in attrs and "external_variables" not in attrs
        data = ds[var]
        assert data.dimensions == ("time", "lat", "lon")
        assert (data.standard_name, data.long_name, data.units) == (
            info.standard_name, info.long_name, info.units,
        )  # fmt: skip
        assert data.cell_methods == info.cell_methods
        assert "cell_measures" not in data.ncattrs()
        assert data.dtype == np.float32
        assert data._FillValue == np.float32(1e20) == data.missing_value
        if var == "spco2":
            assert data.coordinates == "depth"
            assert float(ds["depth"][...]) == 0.0 and ds["depth"].positive == "down"
        else:
            assert "coordinates" not in data.ncattrs()
        time = ds["time"]
        assert (time.units, time.calendar, time.bounds) == (
            "days since 1850-01-01", "standard", "time_bnds",
        )  # fmt: skip
        bounds = ds["time_bnds"][:]
        assert time.shape == (24,)
        np.testing.assert_allclose(time[:], bounds.mean(axis=1))
        assert np.all(bounds[1:, 0] == bounds[:-1, 1])
        dates = netCDF4.num2date(time[:], time.units, time.calendar)
        assert [(d.year, d.month) for d in dates] == [
            (year, month) for year in range(YEARS[0], YEARS[1] + 1) for month in range(1, 13)
        ]
        lat, lon = ds["lat"][:], ds["lon"][:]
        lat_bnds, lon_bnds = ds["lat_bnds"][:], ds["lon_bnds"][:]
        assert ds["lat"].bounds == "lat_bnds" and ds["lon"].bounds == "lon_bnds"
        res = RES if dataset == CARBON else RES / 2
        assert data.shape == (24, round(180 / res), round(360 / res))
        # longitudes -180..180 with centres at half cells, as in OceanSODA-ETHZ and HadISST
        np.testing.assert_allclose(lon, -180 + res / 2 + res * np.arange(lon.size))
        np.testing.assert_allclose(lon_bnds, np.stack((lon - res / 2, lon + res / 2), axis=-1))
        if dataset == SST:  # HadISST: from north to south, bounds in the same order
            np.testing.assert_allclose(lat, 90 - res / 2 - res * np.arange(lat.size))
            np.testing.assert_allclose(lat_bnds, np.stack((lat + res / 2, lat - res / 2), -1))
        else:
            np.testing.assert_allclose(lat, -90 + res / 2 + res * np.arange(lat.size))
            np.testing.assert_allclose(lat_bnds, np.stack((lat - res / 2, lat + res / 2), -1))


def test_default_grids() -> None:
    carbon = sd.build_observation_grid(CARBON)
    sst = sd.build_observation_grid(SST)
    assert carbon.shape == (180, 360) and sst.shape == (360, 720)
    assert (carbon.lon_1d[0], carbon.lon_1d[-1], carbon.lat_1d[0]) == (-179.5, 179.5, -89.5)
    assert (sst.lon_1d[0], sst.lon_1d[-1]) == (-179.75, 179.75)
    assert (sst.lat_1d[0], sst.lat_1d[-1]) == (89.75, -89.75)
    sphere = 4 * np.pi * sd.EARTH_RADIUS**2
    for grid in (carbon, sst):
        np.testing.assert_allclose(grid.area.sum(), sphere, rtol=1e-10)
        assert 0.25 < grid.land.mean() < 0.5
        np.testing.assert_array_equal(grid.land, sd.land_mask(grid.lat, grid.lon))
    # the resolution of the carbon product sets the SST product's (half of it, >= 0.25)
    assert sd.build_observation_grid(SST, 4.0).resolution == 2.0
    assert _product_resolution(sd.OBSERVATIONS[SST], 0.25) == 0.25


@pytest.mark.parametrize(("dataset", "var"), PRODUCTS)
def test_esmvalcore_fixes_and_cmor_checks(
    observations: tuple[Path, list[Path]],
    dataset: str,
    var: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """What ESMValCore has to fix: longitudes -180..180 (all) and north-to-south latitudes."""
    from esmvalcore.cmor.check import CheckLevels, CMORCheckError, _get_cmor_checker
    from esmvalcore.preprocessor import cmor_check_data, cmor_check_metadata, fix_metadata, load

    root, _ = observations
    project = sd.OBSERVATIONS[dataset].project
    cubes = load(_path(root, dataset, var))
    assert len(cubes) == 1
    # without ESMValCore's generic fixes, the checker finds only the real products' layout
    checker = _get_cmor_checker(project, "Omon", var, frequency="mon")(cubes[0].copy())
    with pytest.raises(CMORCheckError):
        checker.check_metadata()
    expected = ["lon: has values < valid_min = 0.0"]
    if dataset == SST:
        expected.insert(0, "lat: is not increasing")
    assert checker._errors == expected
    assert checker._warnings == []
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="esmvalcore"):
        cubes = fix_metadata(
            cubes, short_name=var, project=project, dataset=dataset, mip="Omon", frequency="mon"
        )
        kwargs = {"cmor_table": project, "mip": "Omon", "short_name": var, "frequency": "mon",
                  "check_level": CheckLevels.DEFAULT}  # fmt: skip
        cube = cmor_check_metadata(cubes[0], **kwargs)  # raises CMORCheckError on errors
        cube = cmor_check_data(cube, **kwargs)
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert warnings == []
    fixes = [r.getMessage().split("\n")[0] for r in caplog.records if r.name.endswith("genericfix")]
    assert "Shifted longitude to [0, 360]" in fixes
    assert ("Coordinate lat values have been reversed" in fixes) == (dataset == SST)
    lat, lon = cube.coord("latitude"), cube.coord("longitude")
    assert np.all(np.diff(lat.points) > 0) and np.all(np.diff(lon.points) > 0)
    assert lon.points.min() > 0 and lon.points.max() < 360
    assert np.all(lat.bounds[:, 0] < lat.bounds[:, 1])
    if var == "spco2":
        assert cube.coord("depth").points.tolist() == [0.0]


# --------------------------------------------------------------------------------------
# (a) values and consistency
# --------------------------------------------------------------------------------------


def test_value_ranges(observations: tuple[Path, list[Path]]) -> None:
    root, _ = observations
    fco2 = _read(root, CARBON, "spco2").compressed() / sd.UATM_TO_PA
    dic = _read(root, CARBON, "dissicos").compressed() * 1000
    alk = _read(root, CARBON, "talkos").compressed() * 1000
    tos = _read(root, SST, "tos")
    assert 150 < fco2.min() and fco2.max() < 900
    assert 320 < np.median(fco2) < 420
    assert np.mean((fco2 >= 250) & (fco2 <= 480)) > 0.95
    assert 1700 < dic.min() and dic.max() < 2500
    assert 1900 < alk.min() and alk.max() < 2700
    assert 271.0 < tos.min() and tos.max() < 308.0  # K
    assert 288 < np.ma.median(tos) < 296
    # masks: land masked in every month, same mask for the carbon variables
    masks = [np.ma.getmaskarray(_read(root, CARBON, var)) for var in ("spco2", "dissicos")]
    assert np.array_equal(*masks)
    assert np.all(masks[0] == masks[0][:1])
    grid = sd.build_observation_grid(SST, RES)
    np.testing.assert_array_equal(np.ma.getmaskarray(tos)[0], grid.land)


def test_fco2_equals_pyco2sys(observations: tuple[Path, list[Path]]) -> None:
    """spco2 is fCO2 of the stored DIC and alkalinity at the climate's SST and salinity."""
    root, _ = observations
    climate = _ObservedClimate(0, RES, carbon=True)
    month = climate.month(YEARS[1], 7)
    step = 12 + 6
    ocean = climate.carbon_grid.ocean
    for var in ("spco2", "dissicos", "talkos"):
        stored = _read(root, CARBON, var)[step]
        np.testing.assert_array_equal(stored[ocean].data, month.carbon[var])
    result = pyco2.sys(
        par1=month.carbon["talkos"].astype(np.float64) * 1e6 / sd.SEAWATER_DENSITY,
        par2=month.carbon["dissicos"].astype(np.float64) * 1e6 / sd.SEAWATER_DENSITY,
        par1_type=1,
        par2_type=2,
        salinity=month.carbon["sos"].astype(np.float64),
        temperature=month.carbon["tos"].astype(np.float64),
    )
    np.testing.assert_allclose(month.carbon["spco2"] / sd.UATM_TO_PA, result["fCO2"], rtol=1e-6)


def _block_mean_of_sst_product(climate: _ObservedClimate, sst_kelvin: np.ndarray) -> np.ndarray:
    """The SST product (degC, NaN on land) averaged over the 2x2 cells of each carbon cell."""
    grid = climate.sst_grid
    full = np.full(grid.shape, np.nan)
    full[grid.ocean] = sst_kelvin.astype(np.float64) - 273.15
    ny, nx = climate.carbon_grid.shape
    return full[::-1].reshape(ny, 2, nx, 2).mean(axis=(1, 3))  # north-south -> south-north


@pytest.mark.parametrize("resolution", [RES, None])
def test_sst_product_is_the_sst_of_the_carbon_chemistry(
    observations: tuple[Path, list[Path]], resolution: float | None
) -> None:
    """Averaged over a carbon cell, the SST product equals the chemistry's SST.

    Within the interpolation error of the noise (the climatology is evaluated exactly at each
    product's cell centres): RMS below 0.1 K, at most a few tenths.
    """
    root, _ = observations
    climate = _ObservedClimate(0, resolution, carbon=True)
    ocean = climate.carbon_grid.ocean
    for year, month in ((YEARS[0], 1), (YEARS[1], 8)):
        observed = climate.month(year, month)
        if resolution == RES:  # the file holds the same SST
            step = (year - YEARS[0]) * 12 + month - 1
            stored = _read(root, SST, "tos")[step]
            np.testing.assert_array_equal(stored[climate.sst_grid.ocean].data, observed.sst_kelvin)
        chemistry = np.full(climate.carbon_grid.shape, np.nan)
        chemistry[ocean] = observed.carbon["tos"]
        blocks = _block_mean_of_sst_product(climate, observed.sst_kelvin)
        both = np.isfinite(blocks) & np.isfinite(chemistry)
        assert both.sum() > 0.9 * ocean.sum()
        difference = blocks[both] - chemistry[both]
        assert np.sqrt(np.mean(difference**2)) < 0.1
        assert np.abs(difference).max() < 0.5
        # the same field, not just the same climate: another seed's SST differs far more
        other = _ObservedClimate(1, resolution, carbon=False).month(year, month)
        blocks = _block_mean_of_sst_product(climate, other.sst_kelvin)
        both = np.isfinite(blocks) & np.isfinite(chemistry)
        assert np.sqrt(np.mean((blocks[both] - chemistry[both]) ** 2)) > 0.3


# --------------------------------------------------------------------------------------
# (a) determinism
# --------------------------------------------------------------------------------------


def test_same_seed_gives_identical_files(
    observations: tuple[Path, list[Path]], tmp_path: Path
) -> None:
    root, files = observations
    again = sd.generate_observations(tmp_path, years=YEARS, resolution=RES, seed=0)
    for first, second in zip(files, again, strict=True):
        assert first.relative_to(root) == second.relative_to(tmp_path)
        assert first.read_bytes() == second.read_bytes(), first.name


def test_months_do_not_depend_on_period_or_products(
    observations: tuple[Path, list[Path]], tmp_path: Path
) -> None:
    root, _ = observations
    sd.generate_observations(tmp_path, years=(2001, 2001), resolution=RES, products=[SST])
    assert [p.name for p in tmp_path.rglob("*.nc")] == [
        "OBS_SYNTH-OBS-SST_reanaly_1_Omon_tos_200101-200112.nc"
    ]
    with netCDF4.Dataset(_path(tmp_path, SST, "tos", (2001, 2001))) as ds:
        np.testing.assert_array_equal(ds["tos"][:], _read(root, SST, "tos")[12:])


def test_different_seed_gives_different_weather(
    observations: tuple[Path, list[Path]], tmp_path: Path
) -> None:
    root, _ = observations
    sd.generate_observations(tmp_path, years=YEARS, resolution=RES, seed=1)
    for dataset, var in PRODUCTS:
        first = _read(root, dataset, var)
        second = _read(tmp_path, dataset, var)
        assert np.array_equal(np.ma.getmaskarray(first), np.ma.getmaskarray(second))
        assert not np.ma.allclose(first, second)
        assert np.corrcoef(first.compressed(), second.compressed())[0, 1] > 0.5


def test_observations_have_their_own_weather(tmp_path: Path) -> None:
    """Same climate as SYNTH-ESM-A, other ENSO phases and noise (their own random streams)."""
    sd.generate_sample_data(tmp_path, models=["SYNTH-ESM-A"], years=(2000, 2000), resolution=RES)
    sd.generate_observations(tmp_path, years=(2000, 2000), resolution=RES, products=[CARBON])
    with netCDF4.Dataset(sd.output_path(tmp_path, "SYNTH-ESM-A", "dissicos", (2000, 2000))) as ds:
        model = ds["dissicos"][:]  # longitudes 0..360
    with netCDF4.Dataset(_path(tmp_path, CARBON, "dissicos", (2000, 2000))) as ds:
        observed = np.roll(ds["dissicos"][:], -model.shape[-1] // 2, axis=-1)  # -180..180
    assert np.array_equal(np.ma.getmaskarray(model), np.ma.getmaskarray(observed))
    difference = (model - observed).compressed() * 1000
    assert 1.0 < np.std(difference) < 20.0  # mmol m-3: weather, not climate
    assert abs(np.mean(difference)) < 3.0


# --------------------------------------------------------------------------------------
# (a) the driver, the command line and the ESMValCore configuration
# --------------------------------------------------------------------------------------


def test_generate_sample_data_writes_observations_by_default(tmp_path: Path) -> None:
    files = sd.generate_sample_data(tmp_path / "all", years=(2000, 2000), resolution=10)
    assert len(files) == 3 * 8 + 4
    assert [p.name.split("_")[1] for p in files[-4:]] == [CARBON] * 3 + [SST]
    with netCDF4.Dataset(files[-1]) as ds:  # same years, resolution / 2
        assert ds["tos"].shape == (12, 36, 72)
    files = sd.generate_sample_data(
        tmp_path / "none", years=(2000, 2000), resolution=10, observations=False
    )
    assert len(files) == 3 * 8 and not (tmp_path / "none" / "OBS").exists()
    # particular models: no observations unless asked for
    files = sd.generate_sample_data(
        tmp_path / "a", models=["SYNTH-ESM-A"], years=(2000, 2000), resolution=10
    )
    assert len(files) == 8
    files = sd.generate_sample_data(
        tmp_path / "a+obs",
        models=["SYNTH-ESM-A"],
        years=(2000, 2000),
        resolution=10,
        observations=True,
    )
    assert len(files) == 12


def test_default_years(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="carbon_biomes")
    files = sd.generate_observations(tmp_path, resolution=10, products=[SST])
    assert [p.name for p in files] == ["OBS_SYNTH-OBS-SST_reanaly_1_Omon_tos_200001-200912.nc"]
    messages = [r.getMessage() for r in caplog.records]
    assert any("SYNTH-OBS-SST (OBS, tier 2" in m and "latitudes descending" in m for m in messages)
    assert any("year 2009 written" in m for m in messages)


def test_library_rejects_bad_input(tmp_path: Path) -> None:
    for kwargs, message in (
        ({"products": ["HadISST"]}, "unknown observation product 'HadISST'"),
        ({"products": []}, "no observation products requested"),
        ({"years": (2001, 2000)}, "invalid years"),
        ({"years": (1800, 1801)}, "invalid years"),
        ({"seed": -1}, "invalid seed"),
        ({"resolution": 7.0}, "invalid resolution"),
        ({"resolution": 0.1}, "invalid resolution"),
    ):
        with pytest.raises(ValueError, match=message):
            sd.generate_observations(tmp_path, **kwargs)
    assert not any(tmp_path.rglob("*"))


def test_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["sample-data", "--years", "2001", "--resolution", "10"]
    assert main([*args, "--out", str(tmp_path / "all")]) == 0
    out = capsys.readouterr().out
    assert len(list((tmp_path / "all").rglob("*.nc"))) == 3 * 8 + 4
    assert "and SYNTH-OBS-CARBON, SYNTH-OBS-SST under" in out
    assert f"project OBS6, rootpath {(tmp_path / 'all' / 'OBS').resolve()}" in out
    assert "facets dataset SYNTH-OBS-SST, tier 2, type reanaly, version 1, mip Omon (tos)" in out
    assert main([*args, "--out", str(tmp_path / "none"), "--no-observations"]) == 0
    assert len(list((tmp_path / "none").rglob("*.nc"))) == 3 * 8
    assert "SYNTH-OBS" not in capsys.readouterr().out
    one = ["--models", "SYNTH-ESM-A", "--observations"]
    assert main([*args, "--out", str(tmp_path / "one"), *one]) == 0
    assert len(list((tmp_path / "one").rglob("*.nc"))) == 8 + 4


def test_cli_help_names_the_products(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["sample-data", "--help"])
    out = capsys.readouterr().out
    for text in ("--no-observations", "SYNTH-OBS-CARBON: project OBS6", "SYNTH-OBS-SST"):
        assert text in out


def test_config_has_obs_data_sources(tmp_path: Path) -> None:
    path = write_config(tmp_path / "config", tmp_path / "data", tmp_path / "out")
    projects = yaml.safe_load(path.read_text(encoding="utf-8"))["projects"]
    assert set(projects) == {"CMIP6", "OBS6", "OBS"}
    for project in ("OBS6", "OBS"):
        assert projects[project]["data"]["local"] == {
            "type": "esmvalcore.io.local.LocalDataSource",
            "rootpath": str((tmp_path / "data" / "OBS").absolute()),
            "dirname_template": "Tier{tier}/{dataset}",
            "filename_template": "{project}_{dataset}_{type}_{version}_{mip}_{short_name}[_.]*nc",
        }
    assert "&id" not in path.read_text(encoding="utf-8")  # no YAML anchors
    other = write_config(tmp_path / "c2", tmp_path / "data", tmp_path / "out", obs_root="/obs")
    projects = yaml.safe_load(other.read_text(encoding="utf-8"))["projects"]
    assert projects["OBS"]["data"]["local"]["rootpath"] == "/obs"


# --------------------------------------------------------------------------------------
# (b) end-to-end: an observation-based reference assembled in an esmvaltool recipe
# --------------------------------------------------------------------------------------
#
# ESMValCore 2.15 preprocesses a variable group with ONE preprocessor, that of the group's
# first dataset (esmvalcore._recipe.recipe._get_preprocessor_task reads
# datasets[0].facets["preprocessor"]); a dataset entry's own ``preprocessor`` only ends up in
# its metadata. The mechanism that works: the products in variable groups of their own
# (``spco2_obs`` with ``short_name: spco2``), each with the regridding preprocessor. The
# diagnostic ``dataset_facet`` of the recipe documents the other behaviour.

DIAGNOSTIC = '''
"""Record the grid of every preprocessed file; the *_obs groups must be on the 1x1 grid."""
import os
import sys

import iris
import numpy as np
import yaml

with open(sys.argv[1], encoding="utf-8") as file:
    settings = yaml.safe_load(file)
entries = {}
for metadata in settings["input_files"]:
    with open(metadata, encoding="utf-8") as file:
        entries.update(yaml.safe_load(file))
summary = []
for filename, entry in sorted(entries.items()):
    cube = iris.load_cube(filename)
    lat, lon = cube.coord("latitude"), cube.coord("longitude")
    summary.append({
        "alias": entry["alias"], "dataset": entry["dataset"], "project": entry["project"],
        "short_name": entry["short_name"], "variable_group": entry["variable_group"],
        "preprocessor": entry["preprocessor"], "units": str(cube.units),
        "shape": list(cube.shape),
        "lat": [float(lat.points[0]), float(lat.points[-1])],
        "lon": [float(lon.points[0]), float(lon.points[-1])],
        "valid_fraction": float(np.ma.count(cube.data[0]) / cube.data[0].size),
    })
    if entry["variable_group"].endswith("_obs"):
        assert cube.shape[1:] == (180, 360), (filename, cube.shape)
        np.testing.assert_allclose(lat.points, -89.5 + np.arange(180))
        np.testing.assert_allclose(lon.points, 0.5 + np.arange(360))
os.makedirs(settings["work_dir"], exist_ok=True)
with open(f"{settings['work_dir']}/grids.yml", "w", encoding="utf-8") as file:
    yaml.safe_dump(summary, file)
'''

#: The recipe entries of the products (``alias`` shared, so they form one reference dataset).
OBS_ENTRIES = {
    "spco2": {"project": "OBS6", "dataset": CARBON, "tier": 2, "type": "reanaly",
              "version": "v1", "timerange": "2009/2009", "alias": "SYNTH-OBS"},
    "tos": {"project": "OBS", "dataset": SST, "tier": 2, "type": "reanaly", "version": "1",
            "timerange": "2009/2009", "alias": "SYNTH-OBS"},
}  # fmt: skip
MODEL_ENTRY = {"project": "CMIP6", "dataset": "SYNTH-ESM-A", "institute": "SYNTH",
               "exp": "historical", "ensemble": "r1i1p1f1", "grid": "gn",
               "timerange": "2009/2009"}  # fmt: skip
VARIABLES = ("spco2", "dissicos", "talkos", "tos")


def _recipe(path: Path, script: Path) -> Path:
    def product(short_name: str) -> dict:
        return OBS_ENTRIES["tos" if short_name == "tos" else "spco2"]

    reference_variables = {}
    for name in VARIABLES:
        # the models on their native grids
        reference_variables[name] = {"mip": "Omon", "preprocessor": "native",
                                     "additional_datasets": [MODEL_ENTRY]}  # fmt: skip
        # the reference on the common 1x1 grid, in a group of its own
        reference_variables[f"{name}_obs"] = {
            "short_name": name, "mip": "Omon", "preprocessor": "obs_to_common_grid",
            "additional_datasets": [product(name)],
        }  # fmt: skip
    recipe = {
        "documentation": {
            "title": "Observation-based reference from two synthetic products",
            "description": "SYNTH-OBS-CARBON (OBS6) and SYNTH-OBS-SST (OBS) regridded to 1x1.",
            "authors": ["carbon_biomes_dev"],
            "maintainer": ["carbon_biomes_dev"],
            "references": ["mohanty25os"],
            "projects": ["carbon_biomes"],
        },
        "preprocessors": {
            "native": {},
            "obs_to_common_grid": {"regrid": {"target_grid": "1x1", "scheme": "linear"}},
        },
        "diagnostics": {
            "reference": {
                "description": "One alias, four variables from two products, one grid.",
                "variables": reference_variables,
                "scripts": {"check": {"script": str(script)}},
            },
            "dataset_facet": {
                "description": "A dataset's own preprocessor facet in a group (not applied).",
                "variables": {
                    "tos": {
                        "mip": "Omon",
                        "preprocessor": "native",
                        "additional_datasets": [
                            {**MODEL_ENTRY, "alias": "SYNTH-ESM-A"},
                            {**OBS_ENTRIES["tos"], "preprocessor": "obs_to_common_grid"},
                        ],
                    }
                },
                "scripts": {"check": {"script": str(script)}},
            },
        },
    }
    path.write_text(yaml.safe_dump(recipe, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def esmvaltool_run(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("obs_e2e")
    data = root / "data"
    sd.generate_sample_data(data, models=["SYNTH-ESM-A"], years=(2009, 2009), resolution=4.0)
    sd.generate_observations(data, years=(2009, 2009))  # the products' own 1 and 0.5 deg grids
    config_dir = root / "config"
    write_config(config_dir, data, root / "output", keep_preprocessed=True)
    script = root / "check_reference_grid.py"
    script.write_text(textwrap.dedent(DIAGNOSTIC), encoding="utf-8")
    recipe = _recipe(root / "recipe_obs_reference.yml", script)
    result = run_recipe(recipe, config_dir, repository=REPOSITORY)
    return result, latest_run_dir(root / "output", recipe)


def _summary(run_dir: Path, diagnostic: str) -> list[dict]:
    path = run_dir / "work" / diagnostic / "check" / "grids.yml"
    return yaml.safe_load(path.read_text(encoding="utf-8"))


@pytest.mark.esmvaltool
def test_recipe_assembles_the_reference_on_one_grid(esmvaltool_run) -> None:
    result, run_dir = esmvaltool_run
    log = (run_dir / "run" / "main_log.txt").read_text(encoding="utf-8") if run_dir else ""
    assert result.returncode == 0, log[-5000:]
    summary = _summary(run_dir, "reference")
    reference = {entry["short_name"]: entry for entry in summary if entry["alias"] == "SYNTH-OBS"}
    assert set(reference) == set(VARIABLES)
    for name, entry in reference.items():
        expected = OBS_ENTRIES["tos" if name == "tos" else "spco2"]
        assert (entry["project"], entry["dataset"]) == (expected["project"], expected["dataset"])
        assert (entry["variable_group"], entry["preprocessor"]) == (
            f"{name}_obs", "obs_to_common_grid",
        )  # fmt: skip
        assert entry["shape"] == [12, 180, 360]
        assert entry["lat"] == [-89.5, 89.5] and entry["lon"] == [0.5, 359.5]
        assert 0.5 < entry["valid_fraction"] < 0.8
    assert reference["tos"]["units"] == "K"  # the CMIP5 table's unit of project OBS
    models = [entry for entry in summary if entry["dataset"] == "SYNTH-ESM-A"]
    assert [entry["short_name"] for entry in models] == sorted(VARIABLES)
    for entry in models:  # the variable's preprocessor: native 4-degree grid
        assert entry["preprocessor"] == "native"
        assert entry["shape"] == [12, 45, 90]
        # ESMValCore's automatic alias now names the project: it differs between datasets
        assert entry["alias"] == "CMIP6"


@pytest.mark.esmvaltool
def test_a_datasets_preprocessor_facet_is_not_applied(esmvaltool_run) -> None:
    """In one group, every dataset gets the group's preprocessor (its first dataset's)."""
    _, run_dir = esmvaltool_run
    summary = {entry["alias"]: entry for entry in _summary(run_dir, "dataset_facet")}
    assert set(summary) == {"SYNTH-ESM-A", "SYNTH-OBS"}
    assert summary["SYNTH-OBS"]["preprocessor"] == "obs_to_common_grid"  # in the metadata
    assert summary["SYNTH-OBS"]["shape"] == [12, 360, 720]  # but not regridded
    assert summary["SYNTH-OBS"]["lat"] == [-89.75, 89.75]  # only the generic CMOR fixes
    assert summary["SYNTH-ESM-A"]["shape"] == [12, 45, 90]


@pytest.mark.esmvaltool
def test_recipe_needs_only_generic_fixes(esmvaltool_run) -> None:
    """No CMOR warnings or errors; ESMValCore shifts the longitudes and flips the latitudes."""
    _, run_dir = esmvaltool_run
    cmor_log = (run_dir / "run" / "cmor_log.txt").read_text(encoding="utf-8")
    assert "error" not in cmor_log.lower() and "warning" not in cmor_log.lower(), cmor_log[:3000]
    main_log = (run_dir / "run" / "main_log.txt").read_text(encoding="utf-8")
    assert "ERROR" not in main_log
    warnings = [
        line
        for line in main_log.splitlines()
        if line.startswith("WARNING") and "No provenance information was written" not in line
    ]  # (the test's diagnostic script records no provenance)
    assert warnings == []
    debug = (run_dir / "run" / "main_log_debug.txt").read_text(encoding="utf-8")
    assert "Shifted longitude to [0, 360]" in debug
    assert "Coordinate lat values have been reversed" in debug
    assert "citation information" not in debug and "citation link" not in debug
