"""Load one dataset's preprocessed fields, check them and convert to the analysis units.

The analysis works in the paper's units (docs/method.md §1): fCO2 in µatm (CMIP ``spco2`` is in Pa;
1 µatm = 0.101325 Pa), SST in degC, DIC and alkalinity in mmol m-3 (CMIP: mol m-3). Cubes stay
lazy; :meth:`DatasetFields.month` realizes one month at a time, so that multi-decade
high-resolution fields are streamed, never loaded whole.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import iris
import iris.cube
import numpy as np

from carbon_biomes.core.errors import DiagnosticError
from carbon_biomes.core.monthly_regression import FieldMonth, NativeGrid
from carbon_biomes.workflow.identity import DatasetIdentity
from carbon_biomes.workflow.memory import release_free_memory

__all__ = [
    "ANALYSIS_UNITS",
    "PLAUSIBLE_MEDIANS",
    "DatasetFields",
    "load_dataset_fields",
    "month_label",
]

logger = logging.getLogger(__name__)

#: CMIP short name -> (analysis name, analysis unit, long description).
ANALYSIS_UNITS: dict[str, tuple[str, str, str]] = {
    "spco2": ("fco2", "uatm", "surface CO2 fugacity (taken as spco2; fCO2 ≈ pCO2 within 0.3 %)"),
    "spco2nat": ("fco2", "uatm", "natural surface CO2 fugacity (spco2nat)"),
    "tos": ("sst", "degC", "sea surface temperature"),
    "dissicos": ("dic", "mmol m-3", "surface dissolved inorganic carbon"),
    "dissicnatos": ("dic", "mmol m-3", "natural surface dissolved inorganic carbon"),
    "talkos": ("alk", "mmol m-3", "surface total alkalinity"),
    "sos": ("sss", "0.001", "sea surface salinity"),
    "mlotst": ("mld", "m", "mixed-layer depth"),
    "siconc": ("ice", "%", "sea-ice area fraction"),
}


#: Most bytes of input data realized at once when months are streamed.
BLOCK_BYTES = 256 * 2**20

#: Plausible range of the median of each field over the ocean in one month (analysis units): a
#: median outside it means wrong units or a wrong variable, not an unusual ocean.
PLAUSIBLE_MEDIANS: dict[str, tuple[float, float]] = {
    "fco2": (100.0, 2000.0),
    "sst": (-3.0, 40.0),
    "dic": (1000.0, 4000.0),
    "alk": (1000.0, 4000.0),
}


def month_label(time_point: Any) -> str:
    """Return ``YYYY-MM`` for a datetime or cftime object."""
    return f"{time_point.year:04d}-{time_point.month:02d}"


@dataclass
class DatasetFields:
    """The preprocessed fields of one dataset, lazy, on a common native grid.

    Attributes
    ----------
    identity
        The dataset (its ``alias`` names it in every message).
    cubes
        Analysis name (``fco2``, ``sst``, ``dic``, ``alk``, optional ``sss``, ``mld``, ``ice``)
        -> lazy cube with time as first dimension, converted to the analysis unit.
    files
        Analysis name -> preprocessed file it came from.
    latitude, longitude
        Cell-centre coordinates: 1-D (regular grid) or 2-D (curvilinear), degrees.
    area
        Cell area in m2 on the native grid (from ``areacello``), or ``None`` when not given.
    months
        ``YYYY-MM`` of every time step.
    """

    identity: DatasetIdentity
    cubes: dict[str, iris.cube.Cube]
    files: dict[str, str]
    latitude: np.ndarray
    longitude: np.ndarray
    area: np.ndarray | None
    months: list[str] = field(default_factory=list)
    area_file: str | None = None
    calendar: str = "standard"
    short_names: dict[str, str] = field(default_factory=dict)

    @property
    def dataset(self) -> str:
        """The dataset's recipe-unique alias."""
        return self.identity.alias

    @property
    def ancestors(self) -> list[str]:
        """All input files."""
        files = list(self.files.values())
        if self.area_file:
            files.append(self.area_file)
        return sorted(set(files))

    def month_index(self, month: str) -> int:
        """Return the time index of a ``YYYY-MM`` month.

        Raises
        ------
        DiagnosticError
            When the dataset has no such month.
        """
        try:
            return self.months.index(month)
        except ValueError:
            raise DiagnosticError(
                f"{self.dataset}: month {month} is not in the data, which cover "
                f"{self.months[0]} to {self.months[-1]}"
            ) from None

    def ocean_mask(self, index: int = 0) -> np.ndarray:
        """Cells with a valid SST in one month (True = ocean), on the native grid."""
        return ~np.ma.getmaskarray(self.month(index, ["sst"])["sst"])

    def native_grid(self, box_size: float) -> NativeGrid:
        """The native grid with the box of every ocean cell (computed once per dataset)."""
        sst = self.cubes["sst"]

        def bounds(name: str) -> np.ndarray | None:
            coord = sst.coord(name)
            return None if coord.bounds is None else np.asarray(coord.bounds, dtype=np.float64)

        grid = NativeGrid.build(
            self.latitude,
            self.longitude,
            self.ocean_mask(0),
            box_size,
            area=self.area,
            latitude_bounds=bounds("latitude"),
            longitude_bounds=bounds("longitude"),
        )
        if grid.n_repeated:
            logger.info(
                "%s: %d ocean cells repeat the position of another cell (halo columns or a "
                "north-fold row); each place is counted once in the regression and the areas",
                self.dataset,
                grid.n_repeated,
            )
        return grid

    def iter_months(
        self, names: Iterable[str] | None = None, indices: Iterable[int] | None = None
    ) -> Iterator[FieldMonth]:
        """Realize the months one at a time (all months by default).

        Consecutive months are read in blocks that follow the files' time chunks (a compressed
        file chunked over many months would otherwise be decompressed again for every month),
        with at most :data:`BLOCK_BYTES` of data in memory.
        """
        names = list(self.cubes) if names is None else list(names)
        order = list(range(len(self.months)) if indices is None else indices)
        block = self._block_length(names)
        position = 0
        while position < len(order):
            start = order[position]
            run = 1
            while (run < block and position + run < len(order)
                   and order[position + run] == start + run):  # fmt: skip
                run += 1
            if run == 1:
                yield self.month(start, names)
            else:
                data = {name: self.cubes[name][start : start + run].data for name in names}
                for offset in range(run):
                    fields = {name: _analysis_array(data[name][offset]) for name in names}
                    yield self._checked(FieldMonth(label=self.months[start + offset],
                                                   fields=fields))  # fmt: skip
                    del fields
                del data
            position += run
            release_free_memory()  # the block's arrays are freed: memory stays flat (memory.py)

    def _block_length(self, names: Sequence[str]) -> int:
        """Months per read: the largest time chunk of the files, within the memory bound."""
        chunk = 1
        month_bytes = 0
        for name in names:
            cube = self.cubes[name]
            if cube.has_lazy_data():
                chunk = max(chunk, int(max(cube.lazy_data().chunks[0])))
            month_bytes += int(np.prod(cube.shape[1:])) * cube.dtype.itemsize
        return max(1, min(chunk, BLOCK_BYTES // max(month_bytes, 1)))

    def month(self, index: int, names: Iterable[str] | None = None) -> FieldMonth:
        """Realize one month of the requested variables (all by default)."""
        names = list(self.cubes) if names is None else list(names)
        fields = {}
        for name in names:
            fields[name] = _analysis_array(self.cubes[name][index].data)
        return self._checked(FieldMonth(label=self.months[index], fields=fields))

    def _checked(self, month: FieldMonth) -> FieldMonth:
        """Warn about a variable without any valid value in the month.

        The month is skipped, not refused: the regression finds no box in it, so it has no
        labels.
        """
        for name, values in month.fields.items():
            if np.ma.count(values) == 0:
                logger.warning(
                    "%s: variable %s has no valid value in %s (all cells missing); that "
                    "month gets no boxes and no labels",
                    self.dataset,
                    self.short_names.get(name, name),
                    month.label,
                )
        return month


def _analysis_array(data: Any) -> np.ma.MaskedArray:
    """One month of a field as float64, masked where missing or not finite."""
    return np.ma.masked_invalid(np.ma.asarray(data, dtype=np.float64))


def _load_variable(dataset: str, short_name: str, filename: str) -> iris.cube.Cube:
    """Load the one variable of a preprocessed file; errors name the dataset and variable.

    The cell-measure reference to areacello is not needed (areacello is loaded apart).
    """
    if not os.path.isfile(filename):
        raise DiagnosticError(
            f"{dataset}: the file {filename} of variable {short_name} does not exist"
        )
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Missing CF-netCDF measure variable")
            cubes = iris.load(filename)
    except Exception as exc:  # noqa: BLE001 - any reader failure is a bad input file
        raise DiagnosticError(
            f"{dataset}: cannot read the file {filename} of variable {short_name}: {exc}"
        ) from exc
    named = [cube for cube in cubes if cube.var_name == short_name]
    if len(named) == 1:
        return named[0]
    found = ", ".join(sorted(str(cube.var_name) for cube in cubes)) or "no variable"
    raise DiagnosticError(
        f"{dataset}: required variable {short_name} is missing from its file {filename} "
        f"(found: {found})"
    )


def _convert_units(dataset: str, short_name: str, cube: iris.cube.Cube, unit: str) -> None:
    """Convert a cube to its analysis unit in place, saying so in the log."""
    source = cube.units
    if source == unit:
        return
    if source.is_unknown() or source.is_no_unit() or not source.is_convertible(unit):
        raise DiagnosticError(
            f"{dataset}: variable {short_name} has units '{source}', which cannot be "
            f"converted to '{unit}'"
        )
    cube.convert_units(unit)
    logger.info("%s: converted variable %s from '%s' to '%s'", dataset, short_name, source, unit)


def _check_time_axis(dataset: str, short_name: str, cube: iris.cube.Cube) -> None:
    """Refuse a time axis with a repeated month or a gap (months must follow each other)."""
    times = cube.coord("time")
    dates = times.units.num2date(times.points)
    index = np.array([date.year * 12 + date.month - 1 for date in dates], dtype=np.int64)
    if index.size == 0:
        raise DiagnosticError(f"{dataset}: variable {short_name} has no time step")
    labels = [month_label(date) for date in dates]
    values, counts = np.unique(index, return_counts=True)
    repeated = sorted({labels[i] for i in np.flatnonzero(np.isin(index, values[counts > 1]))})
    problems = []
    if repeated:
        problems.append(f"repeated month(s) {', '.join(repeated)}")
    if np.any(np.diff(index) <= 0) and not repeated:
        problems.append("months out of order")
    expected = np.arange(values.min(), values.max() + 1)
    gaps = expected[~np.isin(expected, values)]
    if gaps.size:
        names = [f"{g // 12:04d}-{g % 12 + 1:02d}" for g in gaps]
        shown = ", ".join(names[:12]) + (f" and {len(names) - 12} more" if len(names) > 12 else "")
        problems.append(f"missing month(s) {shown}")
    if problems:
        raise DiagnosticError(
            f"{dataset}: the time axis of variable {short_name} ({labels[0]} to {labels[-1]}) "
            f"must have one step per month without gaps; found {'; '.join(problems)}"
        )


def _single(
    dataset: str, metadata: Sequence[Mapping[str, Any]], short_name: str
) -> Mapping[str, Any] | None:
    items = [item for item in metadata if item.get("short_name") == short_name]
    if len(items) > 1:
        files = ", ".join(str(item["filename"]) for item in items)
        raise DiagnosticError(
            f"{dataset}: more than one preprocessed file for variable {short_name}: {files}"
        )
    return items[0] if items else None


def _horizontal_coords(cube: iris.cube.Cube) -> tuple[np.ndarray, np.ndarray]:
    lat = cube.coord("latitude").points
    lon = cube.coord("longitude").points
    return np.asarray(lat, dtype=np.float64), np.asarray(lon, dtype=np.float64)


def _horizontal_shape(cube: iris.cube.Cube, has_time: bool) -> tuple[int, ...]:
    return tuple(cube.shape[1:] if has_time else cube.shape)


def load_dataset_fields(
    identity: DatasetIdentity,
    metadata: Sequence[Mapping[str, Any]],
    *,
    carbon: Mapping[str, str] | None = None,
    optional: Sequence[str] = ("sos", "mlotst", "siconc"),
) -> DatasetFields:
    """Load, check and convert one dataset's preprocessed fields.

    Parameters
    ----------
    identity
        The dataset; its alias is used in every error message.
    metadata
        The dataset's entries of ``cfg["input_data"]`` (one per preprocessed file).
    carbon
        CMIP short names of the target and DIC, default
        ``{"fco2": "spco2", "dic": "dissicos"}``; the natural-carbon option is
        ``{"fco2": "spco2nat", "dic": "dissicnatos"}``.
    optional
        Further variables loaded when present (salinity, mixed layer, sea ice).

    Returns
    -------
    DatasetFields

    Raises
    ------
    DiagnosticError
        When a required variable is missing, a unit cannot be converted, or the variables' grids
        or time axes disagree; the message names the dataset and the variables.
    """
    dataset = identity.alias
    carbon = dict(carbon or {"fco2": "spco2", "dic": "dissicos"})
    required = [carbon["fco2"], "tos", carbon["dic"], "talkos"]
    wanted = required + [name for name in optional if name not in required]
    cubes: dict[str, iris.cube.Cube] = {}
    files: dict[str, str] = {}
    for short_name in wanted:
        item = _single(dataset, metadata, short_name)
        if item is None:
            if short_name in required:
                found = sorted({str(entry.get("short_name")) for entry in metadata})
                raise DiagnosticError(
                    f"{dataset}: required variable {short_name} is missing from the recipe's "
                    f"input (found: {', '.join(found) or 'nothing'})"
                )
            continue
        name, unit, _ = ANALYSIS_UNITS[short_name]
        cube = _load_variable(dataset, short_name, str(item["filename"]))
        if not cube.coords("time") or cube.coord_dims("time") != (0,):
            raise DiagnosticError(
                f"{dataset}: variable {short_name} in {item['filename']} has no leading time "
                "dimension"
            )
        missing = [axis for axis in ("latitude", "longitude") if not cube.coords(axis)]
        if missing:
            raise DiagnosticError(
                f"{dataset}: variable {short_name} in {item['filename']} has no "
                f"{' or '.join(missing)} coordinate; a curvilinear grid needs 2-D latitude and "
                "longitude auxiliary coordinates (the data variable's 'coordinates' attribute)"
            )
        _check_time_axis(dataset, short_name, cube)
        _convert_units(dataset, short_name, cube, unit)
        cubes[name] = cube
        files[name] = str(item["filename"])

    reference_name = "sst"
    reference = cubes[reference_name]
    shape = _horizontal_shape(reference, has_time=True)
    lat, lon = _horizontal_coords(reference)
    times = reference.coord("time")
    for name, cube in cubes.items():
        if name == reference_name:
            continue
        other_shape = _horizontal_shape(cube, has_time=True)
        short = _short_name_of(name, carbon)
        if other_shape != shape:
            raise DiagnosticError(
                f"{dataset}: the grids of tos {shape} and {short} {other_shape} disagree; all "
                "variables must be on the same native grid (regrid them in the recipe's "
                "preprocessor)"
            )
        other_lat, other_lon = _horizontal_coords(cube)
        if other_lat.shape != lat.shape or not (
            np.allclose(other_lat, lat, atol=1e-4)
            and np.allclose(other_lon % 360, lon % 360, atol=1e-4)
        ):
            raise DiagnosticError(
                f"{dataset}: the latitude/longitude of tos and {short} disagree; all variables "
                "must be on the same native grid"
            )
        other_times = cube.coord("time")
        if len(other_times.points) != len(times.points) or not np.array_equal(
            other_times.units.num2date(other_times.points).astype(str),
            times.units.num2date(times.points).astype(str),
        ):
            raise DiagnosticError(
                f"{dataset}: the time axes of tos ({len(times.points)} steps) and {short} "
                f"({len(other_times.points)} steps) disagree; use the same timerange for all "
                "variables"
            )

    area = None
    area_file = None
    area_item = _single(dataset, metadata, "areacello")
    if area_item is not None:
        area_cube = _load_variable(dataset, "areacello", str(area_item["filename"]))
        _convert_units(dataset, "areacello", area_cube, "m2")
        if tuple(area_cube.shape) != shape:
            raise DiagnosticError(
                f"{dataset}: the grid of areacello {tuple(area_cube.shape)} disagrees with that "
                f"of tos {shape}"
            )
        area = np.ma.filled(np.ma.asarray(area_cube.data, dtype=np.float64), np.nan)
        area_file = str(area_item["filename"])
    else:
        logger.warning(
            "%s: no areacello given; box and biome 'areas' are cell counts, not areas", dataset
        )

    months = [month_label(point) for point in times.units.num2date(times.points)]
    _check_plausible(dataset, cubes, carbon)
    logger.info(
        "%s: loaded %s on a %s grid %s, %d months (%s to %s)",
        dataset,
        ", ".join(_short_name_of(name, carbon) for name in cubes),
        "curvilinear" if lat.ndim == 2 else "regular",
        "x".join(map(str, shape)),
        len(months),
        months[0],
        months[-1],
    )
    return DatasetFields(
        identity=identity,
        cubes=cubes,
        files=files,
        latitude=lat,
        longitude=lon,
        area=area,
        months=months,
        area_file=area_file,
        calendar=str(times.units.calendar or "standard"),
        short_names={name: _short_name_of(name, carbon) for name in cubes},
    )


def _check_plausible(
    dataset: str, cubes: Mapping[str, iris.cube.Cube], carbon: Mapping[str, str]
) -> None:
    """Check the first month's median of every driver against :data:`PLAUSIBLE_MEDIANS`."""
    for name, (low, high) in PLAUSIBLE_MEDIANS.items():
        values = np.ma.compressed(np.ma.masked_invalid(np.ma.asarray(cubes[name][0].data)))
        short = _short_name_of(name, carbon)
        if values.size == 0:
            raise DiagnosticError(
                f"{dataset}: variable {short} has no valid value in its first month"
            )
        median = float(np.median(values))
        if not low <= median <= high:
            raise DiagnosticError(
                f"{dataset}: variable {short} has a median of {median:.4g} "
                f"{cubes[name].units} in its first month, outside the plausible range "
                f"{low:g} to {high:g}: check its units attribute"
            )


def _short_name_of(name: str, carbon: Mapping[str, str]) -> str:
    lookup = {"sst": "tos", "alk": "talkos", "sss": "sos", "mld": "mlotst", "ice": "siconc"}
    lookup.update(carbon)
    return lookup.get(name, name)
