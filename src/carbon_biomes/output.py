"""Write outputs safely: CF NetCDF on the box lattice or the native grid, and CSV tables.

Every file is written under a temporary name in its final folder and renamed into place when
complete, so that a failure never leaves a half-written file that looks complete. Every NetCDF
gets units, CF attributes and a ``history`` line.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as _dt
import logging
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import iris
import iris.coords
import iris.cube
import numpy as np

from carbon_biomes import __version__

__all__ = [
    "METRICS_COLUMNS",
    "atomic_path",
    "box_lattice_coords",
    "box_lattice_cube",
    "flag_attributes",
    "history_line",
    "save_cubes",
    "write_csv",
    "write_metrics",
]

logger = logging.getLogger(__name__)

METRICS_COLUMNS: tuple[str, ...] = ("dataset", "biome", "metric", "value")


def history_line(what: str) -> str:
    """Return a CF ``history`` entry naming the producer (no wall-clock time: reproducible)."""
    return f"carbon-biomes {__version__}: {what}"


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


def box_lattice_coords(box_size: float) -> tuple[iris.coords.DimCoord, iris.coords.DimCoord]:
    """Latitude and longitude coordinates (with bounds) of the full box lattice.

    The lattice is anchored at -90/-180 (METHOD.md §2.2): row i spans
    [-90 + i*b, -90 + (i+1)*b), column j spans [-180 + j*b, -180 + (j+1)*b).
    """
    n_lat = round(180.0 / box_size)
    n_lon = round(360.0 / box_size)
    lat_edges = -90.0 + box_size * np.arange(n_lat + 1)
    lon_edges = -180.0 + box_size * np.arange(n_lon + 1)
    lat = iris.coords.DimCoord(
        0.5 * (lat_edges[:-1] + lat_edges[1:]),
        bounds=np.column_stack([lat_edges[:-1], lat_edges[1:]]),
        standard_name="latitude",
        long_name="latitude of box centre",
        var_name="lat",
        units="degrees_north",
    )
    lon = iris.coords.DimCoord(
        0.5 * (lon_edges[:-1] + lon_edges[1:]),
        bounds=np.column_stack([lon_edges[:-1], lon_edges[1:]]),
        standard_name="longitude",
        long_name="longitude of box centre",
        var_name="lon",
        units="degrees_east",
        circular=True,
    )
    return lat, lon


def box_lattice_cube(
    values: np.ndarray,
    box_id: np.ndarray,
    box_size: float,
    *,
    var_name: str,
    long_name: str,
    units: str,
    standard_name: str | None = None,
    dtype: Any = np.float32,
    fill_value: float | int | None = None,
    attributes: Mapping[str, Any] | None = None,
) -> iris.cube.Cube:
    """Scatter per-box values onto the full box lattice as a masked 2-D cube.

    Parameters
    ----------
    values
        One value per box (same order as ``box_id``).
    box_id
        Latitude-major box ids (``i * n_lon + j``).
    box_size
        Box size in degrees.
    var_name, long_name, units, standard_name
        CF metadata of the variable.
    dtype
        Data type written.
    fill_value
        Fill value of the masked cells (default: netCDF default for the type).
    attributes
        Further variable attributes (e.g. CF flag attributes).

    Returns
    -------
    iris.cube.Cube
        (latitude, longitude) on the lattice; boxes without a value are masked.
    """
    lat, lon = box_lattice_coords(box_size)
    grid = np.ma.masked_all((lat.shape[0], lon.shape[0]), dtype=dtype)
    flat = grid.reshape(-1)
    flat[np.asarray(box_id, dtype=np.int64)] = np.asarray(values).astype(dtype)
    cube = iris.cube.Cube(
        grid,
        var_name=var_name,
        long_name=long_name,
        standard_name=standard_name,
        units=units,
        dim_coords_and_dims=[(lat, 0), (lon, 1)],
        attributes=dict(attributes or {}),
    )
    if fill_value is not None:
        cube.data.fill_value = fill_value
    return cube


def flag_attributes(names: Mapping[int, str]) -> dict[str, Any]:
    """CF flag attributes for a biome label variable.

    Parameters
    ----------
    names
        Biome number -> name (e.g. ``{1: "SUBTR I"}``).

    Returns
    -------
    dict
        ``flag_values`` (int array) and ``flag_meanings`` (blank-separated words: the names with
        blanks as underscores and '+' as '_and_').
    """
    from carbon_biomes.naming import flag_meaning

    numbers = sorted(names)
    return {
        "flag_values": np.asarray(numbers, dtype=np.int16),
        "flag_meanings": " ".join(flag_meaning(names[k]) for k in numbers),
    }


def save_cubes(
    cubes: Sequence[iris.cube.Cube] | iris.cube.CubeList,
    path: str | os.PathLike,
    *,
    global_attributes: Mapping[str, Any],
    history: str,
    fill_values: Sequence[Any] | None = None,
) -> Path:
    """Save cubes to one CF NetCDF file atomically.

    Parameters
    ----------
    cubes
        Cubes to write (each with units and names set).
    path
        Destination.
    global_attributes
        Written as global attributes (e.g. dataset, reference month, thresholds).
    history
        A ``history`` line (see :func:`history_line`).
    fill_values
        Fill value per cube (``None`` entries for the default).

    Returns
    -------
    Path
    """
    cubes = iris.cube.CubeList(cubes)
    attributes = {key: _attribute_value(value) for key, value in global_attributes.items()}
    attributes["history"] = history
    attributes.setdefault("source", f"carbon-biomes {__version__}")
    attributes.setdefault(
        "references", "Mohanty et al. (2025), Ocean Science 21, 587, doi:10.5194/os-21-587-2025"
    )
    for cube in cubes:
        for key, value in attributes.items():
            cube.attributes.globals[key] = value
    path = Path(path)
    with atomic_path(path) as tmp:
        with iris.FUTURE.context(save_split_attrs=True):
            iris.save(cubes, tmp, fill_value=None if fill_values is None else list(fill_values))
    logger.info("Wrote %s", path)
    return path


def _attribute_value(value: Any) -> Any:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (_dt.date, Path)):
        return str(value)
    if isinstance(value, (list, tuple)):
        return ", ".join(str(item) for item in value)
    if value is None:
        return "none"
    return value


def write_csv(
    path: str | os.PathLike, header: Sequence[str], rows: Iterable[Sequence[Any]]
) -> Path:
    """Write a CSV table atomically (floats with full precision)."""
    path = Path(path)
    with atomic_path(path) as tmp, tmp.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(header)
        for row in rows:
            writer.writerow([_csv_value(value) for value in row])
    logger.info("Wrote %s", path)
    return path


def _csv_value(value: Any) -> Any:
    if isinstance(value, (float, np.floating)):
        return "nan" if not np.isfinite(value) else repr(float(value))
    if isinstance(value, np.integer):
        return int(value)
    return value


def write_metrics(path: str | os.PathLike, rows: Iterable[Sequence[Any]]) -> Path:
    """Write the long-format metrics table (columns ``dataset, biome, metric, value``).

    ``biome`` is the biome name, or ``all`` for a metric of the whole partition.
    """
    rows = list(rows)
    for row in rows:
        if len(row) != len(METRICS_COLUMNS):
            raise ValueError(f"a metrics row needs {len(METRICS_COLUMNS)} values, got {row}")
    return write_csv(path, METRICS_COLUMNS, rows)
