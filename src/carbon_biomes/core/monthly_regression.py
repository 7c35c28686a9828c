"""The monthly box regression of one dataset: one code path for every stage.

docs/method.md §2.1-2.3.

Every stage that needs regression coefficients (RCs) gets them from here, computed once per month
and dataset: the per-cell outlier filter, the box regression of fCO2 on SST, DIC and alkalinity,
the significance test and the box statistics (ocean area, mean SST and sea ice). The box of every
native cell is computed once per dataset (:class:`NativeGrid`) and passed to every month.

Arrays only: the fields of a month come in as a :class:`FieldMonth`, whoever read them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from carbon_biomes.core.errors import SettingsError
from carbon_biomes.core.regression import (
    DEFAULT_ALPHA,
    DEFAULT_BOX_SIZE,
    DEFAULT_DRIVER_NAMES,
    DEFAULT_MIN_POINTS,
    DEFAULT_OUTLIER_FILTER,
    BoxRegression,
    box_index,
    box_lattice,
    box_regression,
    outlier_mask,
    significant_boxes,
)
from carbon_biomes.core.validation import check_choice, check_int, check_number

__all__ = [
    "CARBON_VARIABLES",
    "DRIVER_UNITS",
    "BoxStatistics",
    "FieldMonth",
    "MonthRegression",
    "NativeGrid",
    "RegressionSettings",
    "box_statistics",
    "cell_box_index",
    "regress_month",
    "regress_months",
    "unique_cells",
]

logger = logging.getLogger(__name__)

#: Units of the slopes of fCO2 (µatm) on each driver.
DRIVER_UNITS: dict[str, str] = {
    "sst": "uatm degC-1",
    "dic": "uatm m3 mmol-1",
    "alk": "uatm m3 mmol-1",
}

#: CMIP short names of the target (fCO2) and DIC for contemporary and natural carbon.
CARBON_VARIABLES: dict[str, dict[str, str]] = {
    "contemporary": {"fco2": "spco2", "dic": "dissicos"},
    "natural": {"fco2": "spco2nat", "dic": "dissicnatos"},
}


@dataclass(frozen=True)
class RegressionSettings:
    """How the box RCs of a month are computed (docs/method.md §2.1-2.3).

    Attributes
    ----------
    box_size
        Lattice spacing in degrees (paper: 2); must divide 180 and 360.
    min_points
        Fewest valid cells in a box for a fit (paper: 5, i.e. more than 4).
    alpha
        Significance level (paper: 0.04).
    significance_test
        ``all_slopes`` (paper: every slope's p <= alpha) or ``f_test`` (joint F-test).
    outlier_filter
        Per-cell bounds ``dic_min``, ``alk_min`` (mmol m-3), ``sst_max`` (degC), ``fco2_max``
        (µatm); missing keys keep the paper's values.
    carbon
        ``contemporary`` (spco2, dissicos) or ``natural`` (spco2nat, dissicnatos).
    """

    box_size: float = DEFAULT_BOX_SIZE
    min_points: int = DEFAULT_MIN_POINTS
    alpha: float = DEFAULT_ALPHA
    significance_test: str = "all_slopes"
    outlier_filter: Mapping[str, float] = field(
        default_factory=lambda: dict(DEFAULT_OUTLIER_FILTER)
    )
    carbon: str = "contemporary"

    def __post_init__(self) -> None:
        """Validate and normalize."""
        set_ = object.__setattr__
        set_(self, "box_size", check_number("box_size", self.box_size, 0.0, closed_low=False))
        try:
            box_lattice(self.box_size)
        except ValueError as exc:
            raise SettingsError(f"setting 'box_size': {exc}") from None
        set_(self, "min_points", check_int("min_points", self.min_points, 2))
        set_(self, "alpha", check_number("alpha", self.alpha, 0.0, 1.0, closed_low=False,
                                         closed_high=False))  # fmt: skip
        check_choice("significance_test", self.significance_test, ("all_slopes", "f_test"))
        unknown = set(self.outlier_filter) - set(DEFAULT_OUTLIER_FILTER)
        if unknown:
            raise SettingsError(
                f"unknown key(s) {sorted(unknown)} in setting 'outlier_filter'; known: "
                f"{sorted(DEFAULT_OUTLIER_FILTER)}"
            )
        bounds = dict(DEFAULT_OUTLIER_FILTER)
        bounds.update(
            {k: check_number(f"outlier_filter.{k}", v) for k, v in self.outlier_filter.items()}
        )
        set_(self, "outlier_filter", bounds)
        check_choice("carbon", self.carbon, tuple(CARBON_VARIABLES))

    @property
    def carbon_variables(self) -> dict[str, str]:
        """CMIP short names of the target (fCO2) and DIC for the chosen carbon."""
        return dict(CARBON_VARIABLES[self.carbon])


def cell_box_index(latitude: np.ndarray, longitude: np.ndarray, box_size: float) -> np.ndarray:
    """Box id of every native cell (2-D, the field's shape); regular 1-D axes are broadcast."""
    if latitude.ndim == 1:
        lat2d, lon2d = np.meshgrid(latitude, longitude, indexing="ij")
        return box_index(lat2d, lon2d, box_size)
    return box_index(latitude, longitude, box_size)


#: Cells closer than this (degrees, after wrapping longitudes) are one place.
POSITION_TOLERANCE = 1e-6


def unique_cells(
    latitude: np.ndarray,
    longitude: np.ndarray,
    ocean: np.ndarray,
    tolerance: float = POSITION_TOLERANCE,
) -> np.ndarray:
    """True for every cell but the repeats of an ocean place (halo columns, north-fold row).

    NEMO-based models (e.g. IPSL-CM6A-LR, CNRM-ESM2-1) carry two halo columns that repeat
    other columns and a north-fold row that repeats half of another row. Ocean cells with the
    same position (latitude and longitude, wrapped to [0, 360), rounded to ``tolerance``
    degrees) are one place: the first of them in C order is kept, the others are marked False,
    so that each place is counted once in the regression and in every area. Land cells and
    cells without finite coordinates are always True (they are never counted).

    Parameters
    ----------
    latitude, longitude
        Cell centres in degrees: 1-D axes (regular grid) or 2-D.
    ocean
        True for ocean cells, 2-D.
    tolerance
        Rounding step of the positions, degrees.

    Returns
    -------
    ndarray of bool
        2-D, the grid's shape.
    """
    ocean = np.asarray(ocean, dtype=bool)
    lat = np.asarray(latitude, dtype=np.float64)
    lon = np.asarray(longitude, dtype=np.float64)
    if lat.ndim == 1:
        lat, lon = np.meshgrid(lat, lon, indexing="ij")
    unique = np.ones(ocean.shape, dtype=bool)
    flat_lat, flat_lon = lat.reshape(-1), lon.reshape(-1)
    cells = np.flatnonzero(ocean.reshape(-1) & np.isfinite(flat_lat) & np.isfinite(flat_lon))
    if cells.size < 2:
        return unique
    turn = int(round(360.0 / tolerance))
    lat_key = np.rint(flat_lat[cells] / tolerance).astype(np.int64)
    lon_key = np.rint(np.mod(flat_lon[cells], 360.0) / tolerance).astype(np.int64) % turn
    _, first = np.unique(lat_key * turn + lon_key, return_index=True)
    repeat = np.ones(cells.size, dtype=bool)
    repeat[first] = False
    unique.reshape(-1)[cells[repeat]] = False
    return unique


@dataclass(frozen=True, eq=False)
class NativeGrid:
    """A dataset's native grid and the box of each of its cells (computed once per dataset).

    Attributes
    ----------
    latitude, longitude
        Cell centres in degrees: 1-D axes (regular grid) or 2-D (curvilinear).
    ocean
        True for ocean cells (valid SST in the first month), 2-D.
    cell_box
        Box id of every cell (-1 outside the lattice or on land), 2-D. Repeated cells keep
        their box here, so that maps give them their box's value; counts and areas use
        :attr:`counted_box`.
    box_size
        Lattice spacing in degrees.
    area
        Cell areas in m2 (2-D), or None when the dataset gave no ``areacello``.
    latitude_bounds, longitude_bounds
        Cell bounds when known: (n, 2) for 1-D axes, (ny, nx, 4) for 2-D coordinates.
    unique
        False for an ocean cell that repeats the position of another one (:func:`unique_cells`:
        halo columns, north-fold row), 2-D; ``None``: every cell is a place of its own.
    """

    latitude: np.ndarray
    longitude: np.ndarray
    ocean: np.ndarray
    cell_box: np.ndarray
    box_size: float
    area: np.ndarray | None = None
    latitude_bounds: np.ndarray | None = None
    longitude_bounds: np.ndarray | None = None
    unique: np.ndarray | None = None

    @classmethod
    def build(
        cls,
        latitude: np.ndarray,
        longitude: np.ndarray,
        ocean: np.ndarray,
        box_size: float,
        area: np.ndarray | None = None,
        latitude_bounds: np.ndarray | None = None,
        longitude_bounds: np.ndarray | None = None,
    ) -> NativeGrid:
        """Compute the box of every ocean cell, mark repeated cells and bundle the grid."""
        boxes = cell_box_index(np.asarray(latitude), np.asarray(longitude), box_size)
        ocean = np.asarray(ocean, dtype=bool)
        return cls(
            latitude=np.asarray(latitude, dtype=np.float64),
            longitude=np.asarray(longitude, dtype=np.float64),
            ocean=ocean,
            cell_box=np.where(ocean, boxes, -1),
            box_size=float(box_size),
            area=area,
            latitude_bounds=latitude_bounds,
            longitude_bounds=longitude_bounds,
            unique=unique_cells(latitude, longitude, ocean),
        )

    @property
    def n_repeated(self) -> int:
        """Number of ocean cells that repeat another cell's position (not counted)."""
        return 0 if self.unique is None else int(np.count_nonzero(self.ocean & ~self.unique))

    @property
    def counted_box(self) -> np.ndarray:
        """:attr:`cell_box` with -1 on repeated cells (each place counted once)."""
        if self.unique is None:
            return self.cell_box
        return np.where(self.unique, self.cell_box, -1)

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of a field on this grid."""
        return tuple(self.ocean.shape)

    @property
    def is_curvilinear(self) -> bool:
        """True when latitude and longitude are 2-D."""
        return self.latitude.ndim == 2

    def cell_coordinates(self) -> tuple[np.ndarray, np.ndarray]:
        """Latitude and longitude of every cell as 2-D arrays."""
        if self.is_curvilinear:
            return self.latitude, self.longitude
        lat2d, lon2d = np.meshgrid(self.latitude, self.longitude, indexing="ij")
        return lat2d, lon2d

    def to_native(self, lattice_values: np.ndarray, fill: Any) -> np.ndarray:
        """Give every ocean cell the value of its box (``fill`` elsewhere).

        Parameters
        ----------
        lattice_values
            Values on the flattened box lattice, shape (..., n_boxes_total).
        fill
            Value of land cells and cells outside the lattice.
        """
        values = np.asarray(lattice_values)
        inside = self.cell_box >= 0
        index = np.where(inside, self.cell_box, 0)
        return np.where(inside, values[..., index], fill).astype(values.dtype, copy=False)


@dataclass(frozen=True)
class FieldMonth:
    """One month of one dataset, in analysis units, as masked arrays on the native grid."""

    label: str
    fields: dict[str, np.ma.MaskedArray]

    def __getitem__(self, name: str) -> np.ma.MaskedArray:
        """Return the field of one analysis variable (``fco2``, ``sst``, ...)."""
        return self.fields[name]


@dataclass(frozen=True, eq=False)
class BoxStatistics:
    """Per-box summaries of native cells (aligned with a regression's ``box_id``)."""

    area: np.ndarray  # m2 of ocean (all ocean cells of the box)
    sst: np.ndarray  # area-weighted mean SST, degC
    ice: np.ndarray | None  # area-weighted mean sea-ice fraction, %, or None


def box_statistics(
    cell_boxes: np.ndarray,
    box_id: np.ndarray,
    ocean: np.ndarray,
    area: np.ndarray | None,
    sst: np.ndarray,
    ice: np.ndarray | None = None,
) -> BoxStatistics:
    """Ocean area and area-weighted means of SST and sea ice per box, by grouped sums.

    Parameters
    ----------
    cell_boxes
        Box id per native cell (-1 outside the lattice).
    box_id
        Boxes to report, in this order.
    ocean
        True for ocean cells.
    area
        Cell area in m2 (``None``: 1 per cell, so the "area" is a cell count).
    sst, ice
        Fields on the native grid (masked or NaN where missing).

    Returns
    -------
    BoxStatistics
    """
    ok = ocean & (cell_boxes >= 0)
    ids = cell_boxes[ok]
    weight = np.ones(ids.size) if area is None else np.nan_to_num(area[ok])
    size = int(max(box_id.max(initial=-1), ids.max(initial=-1))) + 1

    def weighted_mean(values: np.ndarray) -> np.ndarray:
        v = np.ma.filled(np.ma.masked_invalid(np.ma.asarray(values, dtype=float)), np.nan)[ok]
        good = np.isfinite(v)
        sums = np.bincount(ids[good], weights=weight[good] * v[good], minlength=size)
        norms = np.bincount(ids[good], weights=weight[good], minlength=size)
        with np.errstate(invalid="ignore", divide="ignore"):
            return (sums / norms)[box_id]

    box_area = np.bincount(ids, weights=weight, minlength=size)[box_id]
    return BoxStatistics(
        area=box_area,
        sst=weighted_mean(sst),
        ice=None if ice is None else weighted_mean(ice),
    )


@dataclass(frozen=True, eq=False)
class MonthRegression:
    """Box regression of one month, before and after the significance filter.

    Attributes
    ----------
    month
        ``YYYY-MM``.
    all_boxes
        Every fitted box.
    significant
        Bool per box of ``all_boxes``: passes the significance filter.
    stats
        Box statistics aligned with ``all_boxes``.
    n_cells_valid, n_cells_outliers
        Ocean cells that passed the outlier filter, and those it rejected.
    """

    month: str
    all_boxes: BoxRegression
    significant: np.ndarray
    stats: BoxStatistics
    n_cells_valid: int
    n_cells_outliers: int

    @property
    def kept(self) -> BoxRegression:
        """The significant boxes."""
        return self.all_boxes.select(self.significant)

    @property
    def n_significant(self) -> int:
        """Number of significant boxes."""
        return int(np.count_nonzero(self.significant))

    def summary(self) -> str:
        """One log line of the month's counts."""
        boxes = self.all_boxes
        return (
            f"{self.month}: {self.n_cells_valid} valid cells ({self.n_cells_outliers} outliers "
            f"dropped), {len(boxes)} boxes fitted, {self.n_significant} significant; dropped: "
            f"{boxes.n_dropped_few_points} with too few cells, {boxes.n_dropped_singular} with a "
            f"constant or collinear driver, {boxes.n_dropped_constant_target} with constant fCO2"
        )


def regress_month(
    month: FieldMonth, grid: NativeGrid, settings: RegressionSettings
) -> MonthRegression:
    """Outlier filter, box regression, significance test and box statistics of one month.

    Parameters
    ----------
    month
        The month's fields in analysis units (``fco2``, ``sst``, ``dic``, ``alk``, optional
        ``ice``).
    grid
        The dataset's native grid with the box of every cell.
    settings
        How the RCs are computed.

    Returns
    -------
    MonthRegression
    """
    fco2, sst, dic, alk = (month[name] for name in ("fco2", "sst", "dic", "alk"))
    ocean = ~np.ma.getmaskarray(sst)
    if grid.unique is not None:
        ocean &= grid.unique  # a repeated cell (halo, north fold) is not a place of its own
    valid = outlier_mask(fco2, sst, dic, alk, **settings.outlier_filter) & ocean
    target = np.where(valid, np.ma.filled(fco2, np.nan), np.nan)
    result = box_regression(
        None,
        None,
        target,
        [np.ma.filled(f, np.nan) for f in (sst, dic, alk)],
        box_size=settings.box_size,
        min_points=settings.min_points,
        driver_names=DEFAULT_DRIVER_NAMES,
        cell_box=grid.counted_box,
    )
    significant = significant_boxes(result, settings.alpha, settings.significance_test)
    stats = box_statistics(
        grid.counted_box, result.box_id, ocean, grid.area, sst, month.fields.get("ice")
    )
    return MonthRegression(
        month=month.label,
        all_boxes=result,
        significant=significant,
        stats=stats,
        n_cells_valid=int(valid.sum()),
        n_cells_outliers=int((ocean & ~valid).sum()),
    )


def regress_months(
    months: Iterable[FieldMonth],
    grid: NativeGrid,
    settings: RegressionSettings,
    *,
    dataset: str = "",
    n_months: int | None = None,
    mapper: Callable[..., Iterable[MonthRegression]] | None = None,
) -> Iterator[MonthRegression]:
    """Regress a stream of months, one at a time, logging progress once per year.

    Parameters
    ----------
    months
        The months' fields (an iterator: each month is realized only when it is regressed).
    grid
        The dataset's native grid.
    settings
        How the RCs are computed.
    dataset
        Name used in the log lines.
    n_months
        Number of months expected (for the progress lines).
    mapper
        ``mapper(regress_month, months, grid, settings)`` yields the regressions of the months
        in their order, computed elsewhere (e.g. on a Dask cluster, see
        :mod:`carbon_biomes.workflow.parallel`); None (default): one after the other here.

    Yields
    ------
    MonthRegression
    """
    start = time.perf_counter()
    if mapper is None:
        results: Iterable[MonthRegression] = (
            regress_month(month, grid, settings) for month in months
        )
    else:
        results = mapper(regress_month, months, grid, settings)
    for count, result in enumerate(results, start=1):
        logger.debug("%s %s", dataset, result.summary())
        if result.n_significant == 0:
            logger.warning(
                "%s %s: no box passed the regression and significance filter", dataset, result.month
            )
        if result.month.endswith("-12") or count == n_months:
            logger.info(
                "%s: regressed %s (%d%s months, %.0f s); last month: %s",
                dataset,
                result.month[:4],
                count,
                f"/{n_months}" if n_months else "",
                time.perf_counter() - start,
                result.summary(),
            )
        yield result
