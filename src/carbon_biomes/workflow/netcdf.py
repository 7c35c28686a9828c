"""Write and read the plugin's files: CF NetCDF (netCDF4), CSV tables, all atomically.

Every file is written under a temporary name in its final folder and renamed into place when
complete, so that a failure never leaves a half-written file that looks complete. NetCDF
variables are compressed (zlib level 4 with shuffle), declare ``_FillValue`` when they can be
missing, and the time axis carries the calendar of the input data.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import json
import logging
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cftime
import netCDF4
import numpy as np

from carbon_biomes import __version__
from carbon_biomes.core.monthly_regression import NativeGrid

__all__ = [
    "COMPRESSION",
    "CONVENTIONS",
    "REFERENCES",
    "NetcdfFile",
    "Variable",
    "atomic_path",
    "history_line",
    "month_bounds",
    "month_labels",
    "read_csv",
    "write_csv",
]

logger = logging.getLogger(__name__)

CONVENTIONS = "CF-1.8"
COMPRESSION: dict[str, Any] = {"zlib": True, "complevel": 4, "shuffle": True}

#: Chunks of one variable kept decompressed in the HDF5 chunk cache. The library's default
#: (64 MiB and 1000 chunks per variable) keeps every month written or read, up to 1000 months
#: per variable: streamed through a product of twenty variables for 61 years, that is over 1 GB
#: of cache for data the stream never visits again. Our products are chunked one month per
#: chunk and read and written month by month, so two chunks per variable suffice.
CHUNK_CACHE_CHUNKS = 2
REFERENCES = (
    "Mohanty, Patara, Kazempour and Kroeger (2025), Detection and tracking of carbon biomes via "
    "integrated machine learning, Ocean Science 21, 587, doi:10.5194/os-21-587-2025"
)
TIME_UNITS = "days since 1850-01-01 00:00:00"


def history_line(script: str, inputs: Iterable[str | os.PathLike] = ()) -> str:
    """A CF ``history`` entry: UTC time, producer, script and its input files."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    names = sorted({Path(path).name for path in inputs})
    source = f" from {', '.join(names)}" if names else ""
    return f"{stamp}: carbon-biomes {__version__} {script}{source}"


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it to ``path`` when the block succeeds.

    On an exception the temporary file is removed and ``path`` is left untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.partial{path.suffix}")
    tmp.unlink(missing_ok=True)
    try:
        yield tmp
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


# ---------------------------------------------------------------------------------------------
# Time
# ---------------------------------------------------------------------------------------------
def month_bounds(months: Sequence[str], calendar: str) -> tuple[np.ndarray, np.ndarray]:
    """Mid-month points and month bounds (days since 1850-01-01) of ``YYYY-MM`` months."""
    starts, ends = [], []
    for month in months:
        year, number = (int(part) for part in month.split("-"))
        following = (year + number // 12, number % 12 + 1)
        starts.append(cftime.datetime(year, number, 1, calendar=calendar))
        ends.append(cftime.datetime(*following, 1, calendar=calendar))
    start = np.asarray(cftime.date2num(starts, TIME_UNITS, calendar=calendar), dtype=np.float64)
    end = np.asarray(cftime.date2num(ends, TIME_UNITS, calendar=calendar), dtype=np.float64)
    return 0.5 * (start + end), np.column_stack([start, end])


def month_labels(time_variable: Any) -> list[str]:
    """``YYYY-MM`` of every step of a CF time variable."""
    calendar = getattr(time_variable, "calendar", "standard")
    dates = cftime.num2date(time_variable[:], time_variable.units, calendar=calendar)
    return [f"{d.year:04d}-{d.month:02d}" for d in np.atleast_1d(dates)]


# ---------------------------------------------------------------------------------------------
# NetCDF
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Variable:
    """A NetCDF variable declared once: name, dimensions, type and CF metadata.

    Attributes
    ----------
    name
        Variable name.
    dims
        Dimension names.
    dtype
        numpy type written.
    long_name, units
        CF metadata.
    fill_value
        ``_FillValue``, or None for a variable that is never missing.
    standard_name
        CF standard name, if one exists.
    attributes
        Further attributes (e.g. ``flag_values``, ``flag_meanings``, ``comment``).
    """

    name: str
    dims: tuple[str, ...]
    dtype: Any
    long_name: str
    units: str | None = "1"
    fill_value: Any = None
    standard_name: str | None = None
    attributes: Mapping[str, Any] = field(default_factory=dict)


def _attribute(value: Any) -> Any:
    if isinstance(value, bool):
        return np.int8(value)
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, Mapping):
        return json.dumps(value, sort_keys=True, default=str)
    if isinstance(value, list | tuple):
        if value and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value):
            return np.asarray(value)
        return ", ".join(str(v) for v in value)
    if value is None:
        return "none"
    return value


class NetcdfFile:
    """A NetCDF file being written: dimensions and coordinates first, then variables.

    Use as a context manager: the file is written under a temporary name and renamed into place
    only when the block completes without an exception.
    """

    def __init__(self, path: str | os.PathLike, global_attributes: Mapping[str, Any]) -> None:
        self.path = Path(path)
        self._attributes = dict(global_attributes)
        self._context: Any = None
        self.dataset: netCDF4.Dataset | None = None

    def __enter__(self) -> NetcdfFile:
        self._context = atomic_path(self.path)
        tmp = self._context.__enter__()
        self.dataset = netCDF4.Dataset(tmp, "w", format="NETCDF4")
        self.dataset.set_auto_mask(True)
        attributes = {"Conventions": CONVENTIONS, **self._attributes}
        attributes.setdefault("source", f"carbon-biomes {__version__}")
        attributes.setdefault("references", REFERENCES)
        for key, value in attributes.items():
            self.dataset.setncattr(key, _attribute(value))
        return self

    def __exit__(self, *exc_info: Any) -> None:
        assert self.dataset is not None
        self.dataset.close()
        self._context.__exit__(*exc_info)
        if exc_info[0] is None:
            logger.info("Wrote %s", self.path)

    @property
    def nc(self) -> netCDF4.Dataset:
        """The open dataset."""
        assert self.dataset is not None, "use NetcdfFile as a context manager"
        return self.dataset

    def define(self, variable: Variable) -> netCDF4.Variable:
        """Create a declared variable (compressed, with its fill value and attributes)."""
        chunks = None
        if len(variable.dims) > 1 and variable.dims[0] == "time":
            # one month per chunk: the readers stream month by month
            chunks = (1, *(self.nc.dimensions[d].size for d in variable.dims[1:]))
        var = self.nc.createVariable(
            variable.name,
            np.dtype(variable.dtype),
            variable.dims,
            fill_value=variable.fill_value if variable.fill_value is not None else False,
            chunksizes=chunks,
            **(COMPRESSION if variable.dims else {}),
        )
        limit_chunk_cache(var)
        if variable.standard_name:
            var.standard_name = variable.standard_name
        var.long_name = variable.long_name
        if variable.units is not None:
            var.units = variable.units
        for key, value in variable.attributes.items():
            if key in ("flag_values", "valid_range", "valid_min", "valid_max"):
                value = np.asarray(value, dtype=np.dtype(variable.dtype))
            var.setncattr(key, _attribute(value))
        return var

    def write(self, variable: Variable, values: Any, index: Any = slice(None)) -> None:
        """Define ``variable`` when needed and write ``values`` (masked -> fill) at ``index``.

        A variable of ``dtype=str`` is written whole, as a CF character array.
        """
        if variable.dtype is str:
            self._write_strings(variable, values)
            return
        if variable.name in self.nc.variables:
            var = self.nc.variables[variable.name]
        else:
            var = self.define(variable)
        data = np.ma.asarray(values)
        if variable.fill_value is None and np.ma.is_masked(data):
            raise ValueError(f"variable {variable.name} has no fill value but masked data")
        if np.issubdtype(np.dtype(variable.dtype), np.floating):
            data = np.ma.masked_invalid(data)
        var[index] = data.astype(np.dtype(variable.dtype))

    def _write_strings(self, variable: Variable, values: Sequence[str]) -> None:
        """Labels as a CF character array (``{name}_strlen`` dimension; any tool decodes it)."""
        encoded = [str(v).encode("utf-8") for v in values]
        width = max([len(v) for v in encoded] + [1])
        dim = f"{variable.name}_strlen"
        self.nc.createDimension(dim, width)
        var = self.nc.createVariable(variable.name, "S1", (*variable.dims, dim), **COMPRESSION)
        var.long_name = variable.long_name
        var._Encoding = "utf-8"  # netCDF4 and xarray read the labels back as strings
        for key, value in variable.attributes.items():
            var.setncattr(key, _attribute(value))
        var[:] = netCDF4.stringtochar(np.array(encoded, dtype=f"S{width}"))

    # -- coordinates --------------------------------------------------------------------------
    def time_axis(self, months: Sequence[str], calendar: str) -> None:
        """An unlimited-free time dimension with mid-month points and month bounds."""
        self.nc.createDimension("time", len(months))
        if "bnds" not in self.nc.dimensions:
            self.nc.createDimension("bnds", 2)
        points, bounds = month_bounds(months, calendar)
        time = self.nc.createVariable("time", "f8", ("time",), **COMPRESSION)
        time.standard_name = "time"
        time.long_name = "time"
        time.units = TIME_UNITS
        time.calendar = calendar
        time.axis = "T"
        time.bounds = "time_bnds"
        time[:] = points
        self.nc.createVariable("time_bnds", "f8", ("time", "bnds"), **COMPRESSION)[:] = bounds

    def lattice_axes(self, box_size: float) -> None:
        """Latitude and longitude (with bounds) of the box lattice anchored at -90/-180."""
        n_lat, n_lon = round(180.0 / box_size), round(360.0 / box_size)
        if "bnds" not in self.nc.dimensions:
            self.nc.createDimension("bnds", 2)
        for name, n, origin, standard, units, axis in (
            ("lat", n_lat, -90.0, "latitude", "degrees_north", "Y"),
            ("lon", n_lon, -180.0, "longitude", "degrees_east", "X"),
        ):
            edges = origin + box_size * np.arange(n + 1)
            self.nc.createDimension(name, n)
            var = self.nc.createVariable(name, "f8", (name,), **COMPRESSION)
            var.standard_name = standard
            var.long_name = f"{standard} of box centre"
            var.units = units
            var.axis = axis
            var.bounds = f"{name}_bnds"
            var[:] = 0.5 * (edges[:-1] + edges[1:])
            self.nc.createVariable(f"{name}_bnds", "f8", (name, "bnds"), **COMPRESSION)[:] = (
                np.column_stack([edges[:-1], edges[1:]])
            )

    def native_axes(self, grid: NativeGrid) -> tuple[tuple[str, str], str | None]:
        """Write the native grid's coordinates.

        Returns its two dimension names and, for curvilinear grids, the value of the data
        variables' ``coordinates`` attribute (None for regular grids).
        """
        if not grid.is_curvilinear:
            for name, values, bounds, standard, units, axis in (
                ("lat", grid.latitude, grid.latitude_bounds, "latitude", "degrees_north", "Y"),
                ("lon", grid.longitude, grid.longitude_bounds, "longitude", "degrees_east", "X"),
            ):
                self.nc.createDimension(name, values.size)
                var = self.nc.createVariable(name, "f8", (name,), **COMPRESSION)
                var.standard_name = standard
                var.long_name = standard
                var.units = units
                var.axis = axis
                var[:] = values
                if bounds is not None:
                    if "bnds" not in self.nc.dimensions:
                        self.nc.createDimension("bnds", 2)
                    var.bounds = f"{name}_bnds"
                    self.nc.createVariable(f"{name}_bnds", "f8", (name, "bnds"), **COMPRESSION)[
                        :
                    ] = bounds
            return ("lat", "lon"), None
        ny, nx = grid.shape
        self.nc.createDimension("j", ny)
        self.nc.createDimension("i", nx)
        for name, dim in (("j", ny), ("i", nx)):
            var = self.nc.createVariable(name, "i4", (name,), **COMPRESSION)
            var.long_name = (
                f"cell index along the {'second' if name == 'i' else 'first'} "
                "dimension of the native grid"
            )
            var.units = "1"
            var[:] = np.arange(dim)
        for name, values, bounds, standard, units in (
            ("latitude", grid.latitude, grid.latitude_bounds, "latitude", "degrees_north"),
            ("longitude", grid.longitude, grid.longitude_bounds, "longitude", "degrees_east"),
        ):
            var = self.nc.createVariable(name, "f8", ("j", "i"), **COMPRESSION)
            var.standard_name = standard
            var.long_name = standard
            var.units = units
            var[:] = values
            if bounds is not None:
                if "vertices" not in self.nc.dimensions:
                    self.nc.createDimension("vertices", bounds.shape[-1])
                var.bounds = f"vertices_{name}"
                vertices = self.nc.createVariable(
                    f"vertices_{name}", "f8", ("j", "i", "vertices"), **COMPRESSION
                )
                vertices.units = units  # the same as the coordinate's, as CF allows
                vertices[:] = bounds
        return ("j", "i"), "latitude longitude"


@contextlib.contextmanager
def open_netcdf(path: str | os.PathLike) -> Iterator[netCDF4.Dataset]:
    """Open a NetCDF file for reading (masked arrays where ``_FillValue`` is met)."""
    with netCDF4.Dataset(path, "r") as nc:
        nc.set_auto_mask(True)
        for var in nc.variables.values():
            limit_chunk_cache(var)
        yield nc


def limit_chunk_cache(var: netCDF4.Variable, chunks: int = CHUNK_CACHE_CHUNKS) -> None:
    """Bound the HDF5 chunk cache of a chunked variable to ``chunks`` of its chunks.

    Memory then does not grow with the number of months streamed through the file (see
    :data:`CHUNK_CACHE_CHUNKS`). Contiguous variables have no chunk cache and are left alone.
    """
    shape = var.chunking()
    if not isinstance(shape, list | tuple):  # "contiguous"
        return
    chunk_bytes = int(np.prod(shape, dtype=np.int64)) * np.dtype(var.dtype).itemsize
    var.set_var_chunk_cache(size=max(chunks * chunk_bytes, 2**16), nelems=101)


# ---------------------------------------------------------------------------------------------
# CSV
# ---------------------------------------------------------------------------------------------
def write_csv(
    path: str | os.PathLike, header: Sequence[str], rows: Iterable[Sequence[Any]]
) -> Path:
    """Write a CSV table atomically (floats with full, round-trip precision)."""
    path = Path(path)
    with atomic_path(path) as tmp, tmp.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(header)
        for row in rows:
            if len(row) != len(header):
                raise ValueError(f"a row of {path.name} needs {len(header)} values, got {row}")
            writer.writerow([_csv_value(value) for value in row])
    logger.info("Wrote %s", path)
    return path


def _csv_value(value: Any) -> Any:
    if isinstance(value, float | np.floating):
        return "nan" if not np.isfinite(value) else repr(float(value))
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_ | bool):
        return int(value)
    return value


def read_csv(path: str | os.PathLike) -> tuple[list[str], list[dict[str, str]]]:
    """Read a CSV table: its header and its rows as dictionaries of strings."""
    with Path(path).open(newline="", encoding="utf-8") as file:
        reader = csv.DictReader(file)
        rows = list(reader)
        return list(reader.fieldnames or []), rows
