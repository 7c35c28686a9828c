"""Every NetCDF output is a CF file any tool reads: xarray, iris and the CF checker agree."""

from __future__ import annotations

import re
from pathlib import Path

import iris
import netCDF4
import numpy as np
import pytest
import xarray as xr

from cf_compliance import cf_check

#: CF calendar names of one calendar (iris and ESMValCore write the second).
SAME_CALENDAR = {"noleap": "365_day", "gregorian": "standard", "all_leap": "366_day"}


def _netcdf_outputs(pipeline_run) -> list[Path]:
    files = sorted(
        path for cfg in pipeline_run.values() for path in Path(cfg["work_dir"]).glob("*.nc")
    )
    assert len(files) == 20  # 10 products x 2 datasets
    return files


def test_every_file_opens_in_xarray_without_leaking_fill_values(pipeline_run):
    for path in _netcdf_outputs(pipeline_run):
        with xr.open_dataset(path) as ds:
            for name, variable in ds.data_vars.items():
                values = variable.values
                if values.dtype.kind == "f":
                    assert not np.isinf(values).any(), (path.name, name)
                    assert not (np.abs(values[np.isfinite(values)]) > 1e20).any(), (path.name, name)
                elif values.dtype.kind in "iu" and values.size:
                    assert values.max() < 1e6, (path.name, name)
                # mixed or per-driver units; region and biome names
                unitless = {"linkage", "rc_mean", "rc_std", "region_name", "biome_name"}
                if name not in unitless and not name.endswith("_bnds"):
                    assert "units" in variable.attrs, (path.name, name)
            # label variables: fill values are missing in xarray as in iris
            if "biome" in ds.data_vars:
                labels = ds["biome"].values
                assert np.isnan(labels).any() and np.nanmin(labels) >= 1
                cube = iris.load_cube(path, iris.NameConstraint(var_name="biome"))
                assert cube.data.mask.sum() == np.isnan(labels).sum()


def test_every_file_passes_the_cf_checker(pipeline_run):
    for path in _netcdf_outputs(pipeline_run):
        report = cf_check(path)
        assert report.errors == [], f"{path.name}:\n{report.output}"


def test_attributes_compression_and_calendar(pipeline_run, sample_root):
    stamp = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z: carbon-biomes \S+ \S+\.py")
    calendars = {}
    for source in sample_root.rglob("tos_*.nc"):
        with netCDF4.Dataset(source) as nc:
            calendar = nc.variables["time"].calendar
            calendars[source.name.split("_")[2]] = SAME_CALENDAR.get(calendar, calendar)
    assert set(calendars.values()) == {"standard", "365_day"}  # the two models differ
    for path in _netcdf_outputs(pipeline_run):
        with netCDF4.Dataset(path) as nc:
            attributes = nc.__dict__
            for key in ("title", "source", "references", "Conventions", "history", "product",
                        "product_version", "dataset_alias", "ensemble", "experiment"):  # fmt: skip
                assert key in attributes, (path.name, key)
            assert "doi:10.5194/os-21-587-2025" in attributes["references"]
            assert stamp.match(attributes["history"]), attributes["history"]
            assert attributes["dataset_alias"] in path.name
            if "time" in nc.variables:
                expected = calendars[attributes["dataset"]]
                assert nc.variables["time"].calendar == expected, path.name
            for name, variable in nc.variables.items():
                if variable.ndim >= 1:
                    filters = variable.filters()
                    assert filters["zlib"] and filters["shuffle"], (path.name, name)
                    assert filters["complevel"] == 4, (path.name, name)
            if "biome" in nc.variables and nc.variables["biome"].dimensions != ("biome",):
                biome = nc.variables["biome"]
                assert biome._FillValue == -1
                meanings = biome.flag_meanings.split()
                assert len(meanings) == len(biome.flag_values) >= 2
                assert biome.biome_names  # number -> name


@pytest.mark.parametrize("flagged", ["significant", "out_of_distribution"])
def test_flag_variables_carry_flag_attributes(pipeline_run, flagged):
    paths = [p for p in _netcdf_outputs(pipeline_run) if p.name.endswith(
        "_monthly_rcs.nc" if flagged == "significant" else "_tracked_biomes.nc")]  # fmt: skip
    assert paths
    for path in paths:
        with netCDF4.Dataset(path) as nc:
            variable = nc.variables[flagged]
            assert list(variable.flag_values) == [0, 1]
            assert len(variable.flag_meanings.split()) == 2
            assert variable._FillValue == -1
