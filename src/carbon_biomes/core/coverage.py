"""Regional coverage of the tracked biomes and biome frequency maps, from native cell areas.

docs/method.md §4. The labels of the box lattice are given to every native ocean cell of their
box (:func:`lattice_to_native`, :func:`iter_native_labels`); each region then sums the areas of
its own cells (:func:`~carbon_biomes.core.regions.region_masks`,
:func:`~carbon_biomes.core.regions.cell_areas`), so a region edge inside a box counts only the
part of the box inside the region.

Conventions:

* **coverage** of a biome in a region and month: biome area / classified area x 100, so it sums
  to 100 over the biomes wherever anything is classified, and is NaN in a month in which
  nothing of the region is classified;
* **unclassified percent**: unclassified ocean area / ocean area of the region x 100 (0 to 100;
  NaN only for a region without ocean area);
* **frequency maps**: per biome and location, the percentage of years in which the location
  carries the biome, per calendar month; the denominator counts only the years in which the
  location is classified in that calendar month (an unclassified month is missing data, not
  "another biome"), NaN where it is never classified.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from carbon_biomes.core.errors import DiagnosticError, SettingsError
from carbon_biomes.core.monthly_regression import NativeGrid
from carbon_biomes.core.regression import box_lattice
from carbon_biomes.core.validation import check_month

__all__ = [
    "COVERAGE_COLUMNS",
    "CoverageTable",
    "FrequencyMaps",
    "coverage",
    "frequency_maps",
    "iter_native_labels",
    "lattice_to_native",
]

#: Columns of :meth:`CoverageTable.records`, in order.
COVERAGE_COLUMNS: tuple[str, ...] = (
    "region",
    "month",
    "biome",
    "coverage_percent",
    "area_km2",
    "classified_area_km2",
    "unclassified_percent",
)


# ---------------------------------------------------------------------------------------------
# Lattice labels on the native grid
# ---------------------------------------------------------------------------------------------
def lattice_to_native(lattice_labels: np.ma.MaskedArray, grid: NativeGrid) -> np.ma.MaskedArray:
    """Give every native ocean cell the label of its box.

    Parameters
    ----------
    lattice_labels
        Labels on the box lattice, (n_lat_boxes, n_lon_boxes) for one month or
        (n_months, n_lat_boxes, n_lon_boxes) for a block of months, masked where unclassified.
    grid
        The dataset's native grid (its ``box_size`` must be that of the lattice).

    Returns
    -------
    numpy.ma.MaskedArray
        (ny, nx) or (n_months, ny, nx) labels of the labels' dtype, masked where the box is
        unclassified and on cells outside any box (land, or coordinates off the lattice).

    Raises
    ------
    DiagnosticError
        When the lattice shape does not match the grid's box size.
    """
    labels = np.ma.asarray(lattice_labels)
    n_lat, n_lon = box_lattice(grid.box_size)
    if labels.ndim not in (2, 3) or labels.shape[-2:] != (n_lat, n_lon):
        raise DiagnosticError(
            f"lattice labels must have shape ([n_months,] {n_lat}, {n_lon}) for boxes of "
            f"{grid.box_size:g} degrees, got {labels.shape}"
        )
    flat_shape = (*labels.shape[:-2], n_lat * n_lon)
    values = np.ma.getdata(labels).reshape(flat_shape)
    missing = np.ma.getmaskarray(labels).reshape(flat_shape)
    native = grid.to_native(values, values.dtype.type(0))
    unclassified = grid.to_native(missing, True)
    return np.ma.MaskedArray(native, mask=unclassified)


def iter_native_labels(
    lattice_labels: np.ma.MaskedArray, grid: NativeGrid, *, block_months: int = 12
) -> Iterator[np.ma.MaskedArray]:
    """Native labels of a lattice label series, in blocks of months.

    Only one block is held on the native grid at a time, e.g.
    ``coverage(iter_native_labels(tracked.labels, grid), masks, areas, numbers,
    months=tracked.months)`` for a :class:`~carbon_biomes.core.tracking.TrackedBiomes`.

    Parameters
    ----------
    lattice_labels
        (n_months, n_lat_boxes, n_lon_boxes) labels, masked where unclassified.
    grid
        The dataset's native grid.
    block_months
        Months per block (at least 1).

    Yields
    ------
    numpy.ma.MaskedArray
        (n_block, ny, nx) native labels (:func:`lattice_to_native`), in month order.
    """
    if block_months < 1:
        raise SettingsError(f"block_months must be at least 1, got {block_months!r}")
    labels = np.ma.asarray(lattice_labels)
    if labels.ndim != 3:
        raise DiagnosticError(
            f"lattice labels must be (n_months, n_lat_boxes, n_lon_boxes), got {labels.shape}"
        )
    for start in range(0, labels.shape[0], block_months):
        yield lattice_to_native(labels[start : start + block_months], grid)


# ---------------------------------------------------------------------------------------------
# Coverage
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class CoverageTable:
    """Biome areas of every region, month and biome (docs/method.md §4).

    Attributes
    ----------
    regions
        Region names (axis 0).
    months
        ``YYYY-MM`` (axis 1).
    biome_numbers
        Biome numbers, ascending (axis 2).
    biome_area
        (regions, months, biomes) ocean area carrying each biome, m2.
    classified_area
        (regions, months) ocean area carrying any biome, m2.
    unclassified_area
        (regions, months) ocean area without a label, m2.
    ocean_area
        (regions,) ocean area of each region, m2 (classified + unclassified in every month).
    area_source
        Where the cell areas come from (:func:`~carbon_biomes.core.regions.cell_areas`).
    """

    regions: tuple[str, ...]
    months: tuple[str, ...]
    biome_numbers: tuple[int, ...]
    biome_area: np.ndarray
    classified_area: np.ndarray
    unclassified_area: np.ndarray
    ocean_area: np.ndarray
    area_source: str = ""

    @property
    def coverage_percent(self) -> np.ndarray:
        """(regions, months, biomes) biome area / classified area x 100; NaN if none classified."""
        classified = self.classified_area[..., None]
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(classified > 0.0, 100.0 * self.biome_area / classified, np.nan)

    @property
    def unclassified_percent(self) -> np.ndarray:
        """(regions, months) unclassified ocean / region ocean x 100; NaN without ocean."""
        ocean = self.ocean_area[:, None]
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(ocean > 0.0, 100.0 * self.unclassified_area / ocean, np.nan)

    def region_index(self, name: str) -> int:
        """Index of a region on axis 0."""
        try:
            return self.regions.index(name)
        except ValueError:
            raise KeyError(
                f"no region {name!r} in the coverage table; regions: {', '.join(self.regions)}"
            ) from None

    def records(self) -> list[dict[str, Any]]:
        """Long-format rows, one per region, month and biome (region-major, then month).

        Returns
        -------
        list of dict
            Keys :data:`COVERAGE_COLUMNS`: ``region``, ``month`` (``YYYY-MM``), ``biome`` (the
            number), ``coverage_percent`` (NaN when nothing is classified), ``area_km2`` (biome
            area), ``classified_area_km2`` and ``unclassified_percent`` (the last two repeat
            over the biomes of a region and month).
        """
        cover = self.coverage_percent
        unclassified = self.unclassified_percent
        area_km2 = self.biome_area / 1.0e6
        classified_km2 = self.classified_area / 1.0e6
        return [
            dict(
                zip(
                    COVERAGE_COLUMNS,
                    (
                        region,
                        month,
                        biome,
                        float(cover[r, t, k]),
                        float(area_km2[r, t, k]),
                        float(classified_km2[r, t]),
                        float(unclassified[r, t]),
                    ),
                    strict=True,
                )
            )
            for r, region in enumerate(self.regions)
            for t, month in enumerate(self.months)
            for k, biome in enumerate(self.biome_numbers)
        ]

    def rows(self) -> list[tuple[Any, ...]]:
        """The :meth:`records` as tuples in the order of :data:`COVERAGE_COLUMNS` (for CSV)."""
        return [tuple(record[c] for c in COVERAGE_COLUMNS) for record in self.records()]


def coverage(
    labels_native: np.ma.MaskedArray | Iterable[np.ma.MaskedArray],
    masks: Mapping[str, np.ndarray],
    areas: np.ndarray,
    biome_numbers: Iterable[int],
    *,
    months: Sequence[str],
    area_source: str = "",
) -> CoverageTable:
    """Area of every biome in every region and month, from native cell areas.

    Parameters
    ----------
    labels_native
        Labels on the native grid, masked where unclassified: an (n_months, ny, nx) array, or an
        iterable of blocks ((ny, nx) months or (n, ny, nx) blocks, e.g.
        :func:`iter_native_labels`) consumed once, block by block.
    masks
        Region name -> (ny, nx) bool mask of the region's ocean cells
        (:func:`~carbon_biomes.core.regions.region_masks`).
    areas
        (ny, nx) cell areas in m2 (:func:`~carbon_biomes.core.regions.cell_areas`).
    biome_numbers
        The biome numbers; every unmasked label must be one of them.
    months
        ``YYYY-MM`` of each month, as many as the labels have.
    area_source
        Where the areas come from (kept in the table).

    Returns
    -------
    CoverageTable

    Raises
    ------
    DiagnosticError
        On shapes that disagree, an area that is not finite and non-negative on a region cell,
        a label that is not a biome number, or a number of months other than ``len(months)``.
    """
    numbers = _biome_numbers(biome_numbers)
    months = _months(months)
    n_biomes = numbers.size
    areas = np.ma.filled(np.ma.asarray(areas, dtype=np.float64), np.nan)
    names = tuple(masks)
    cells, weights = _region_cells(masks, areas)

    # per region, month and code (biome index, n_biomes = unclassified): area
    sums: list[np.ndarray] = []
    for block in _blocks(labels_native):
        if block.shape[1:] != areas.shape:
            raise DiagnosticError(
                f"native labels have shape {block.shape[1:]} per month, the areas {areas.shape}"
            )
        codes = _codes(block.reshape(block.shape[0], -1), numbers)
        n = block.shape[0]
        offset = (np.arange(n) * (n_biomes + 1))[:, None]
        per_region = np.empty((len(names), n, n_biomes + 1))
        for r, (index, weight) in enumerate(zip(cells, weights, strict=True)):
            flat = (codes[:, index] + offset).reshape(-1)
            w = np.broadcast_to(weight, (n, index.size)).reshape(-1)
            counts = np.bincount(flat, weights=w, minlength=n * (n_biomes + 1))
            per_region[r] = counts.reshape(n, n_biomes + 1)
        sums.append(per_region)
    total = np.concatenate(sums, axis=1) if sums else np.zeros((len(names), 0, n_biomes + 1))
    if total.shape[1] != len(months):
        raise DiagnosticError(
            f"the native labels have {total.shape[1]} months, but {len(months)} month names "
            "were given"
        )
    biome_area = total[..., :n_biomes]
    return CoverageTable(
        regions=names,
        months=months,
        biome_numbers=tuple(int(k) for k in numbers),
        biome_area=biome_area,
        classified_area=biome_area.sum(axis=-1),
        unclassified_area=total[..., n_biomes],
        ocean_area=np.array([w.sum() for w in weights], dtype=np.float64),
        area_source=area_source,
    )


# ---------------------------------------------------------------------------------------------
# Frequency maps
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class FrequencyMaps:
    """How often each location carries each biome (docs/method.md §4).

    ``...`` is the spatial shape of the labels (native grid or box lattice).

    Attributes
    ----------
    biome_numbers
        Biome numbers, ascending (axis 0 of the maps).
    monthly
        (biomes, 12, ...) percentage of the years in which the location carries the biome in
        each calendar month (January first), among the years in which it is classified in that
        calendar month; NaN where it never is.
    overall
        (biomes, ...) percentage of the classified months (any calendar month) in which the
        location carries the biome; NaN where it is never classified.
    years_classified
        (12, ...) number of years in which the location is classified, per calendar month (the
        denominators of ``monthly``).
    months_classified
        (...) number of classified months (the denominator of ``overall``).
    years
        (12,) number of years of the data that hold each calendar month.
    """

    biome_numbers: tuple[int, ...]
    monthly: np.ndarray
    overall: np.ndarray
    years_classified: np.ndarray
    months_classified: np.ndarray
    years: np.ndarray

    def biome_index(self, number: int) -> int:
        """Index of a biome number on axis 0."""
        try:
            return self.biome_numbers.index(int(number))
        except ValueError:
            raise KeyError(
                f"no biome {number!r} in the frequency maps; biomes: {self.biome_numbers}"
            ) from None


def frequency_maps(
    labels: np.ma.MaskedArray, biome_numbers: Iterable[int], months: Sequence[str]
) -> FrequencyMaps:
    """Per biome, the percentage of years in which each location carries it.

    Parameters
    ----------
    labels
        (n_months, ...) labels on any grid (native or box lattice), masked where unclassified.
    biome_numbers
        The biome numbers; every unmasked label must be one of them.
    months
        ``YYYY-MM`` of each month (unique, any order, gaps allowed).

    Returns
    -------
    FrequencyMaps
        Masked (unclassified) months are left out of the denominators location by location, so
        a location classified in 4 of 5 Januaries and carrying biome 2 in 3 of them gives 75 %.
    """
    numbers = _biome_numbers(biome_numbers)
    months = _months(months)
    labels = np.ma.asarray(labels)
    if labels.ndim < 1 or labels.shape[0] != len(months):
        raise DiagnosticError(
            f"labels must have one entry per month ({len(months)}) on axis 0, got shape "
            f"{labels.shape}"
        )
    if len(set(months)) != len(months):
        raise DiagnosticError("the months of the labels repeat a month")
    spatial = labels.shape[1:]
    codes = _codes(labels.reshape(labels.shape[0], -1), numbers)
    n_biomes = numbers.size
    calendar = np.array([int(month[5:7]) - 1 for month in months], dtype=np.int64)
    classified = codes < n_biomes
    years = np.bincount(calendar, minlength=12)
    years_classified = np.stack([classified[calendar == c].sum(axis=0) for c in range(12)])
    hits = np.zeros((n_biomes, 12, codes.shape[1]), dtype=np.int64)
    for k in range(n_biomes):
        carries = codes == k
        for c in range(12):
            hits[k, c] = carries[calendar == c].sum(axis=0)
    months_classified = classified.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        monthly = np.where(years_classified > 0, 100.0 * hits / years_classified, np.nan)
        overall = np.where(
            months_classified > 0, 100.0 * hits.sum(axis=1) / months_classified, np.nan
        )
    return FrequencyMaps(
        biome_numbers=tuple(int(k) for k in numbers),
        monthly=monthly.reshape(n_biomes, 12, *spatial),
        overall=overall.reshape(n_biomes, *spatial),
        years_classified=years_classified.reshape(12, *spatial),
        months_classified=months_classified.reshape(spatial),
        years=years,
    )


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------
def _region_cells(
    masks: Mapping[str, np.ndarray], areas: np.ndarray
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Flat indices and areas of every region's cells, in the order of ``masks``.

    Raises
    ------
    DiagnosticError
        On a mask of another shape than the areas, or a region cell without a finite,
        non-negative area.
    """
    cells: list[np.ndarray] = []
    weights: list[np.ndarray] = []
    for name, given in masks.items():
        mask = np.asarray(given, dtype=bool)
        if mask.shape != areas.shape:
            raise DiagnosticError(
                f"the mask of region '{name}' has shape {mask.shape}, the areas {areas.shape}"
            )
        index = np.flatnonzero(mask)
        weight = areas.reshape(-1)[index]
        if not np.all(np.isfinite(weight) & (weight >= 0.0)):
            raise DiagnosticError(
                f"region '{name}': {int(np.sum(~(weight >= 0.0)))} cell(s) without a finite, "
                "non-negative area"
            )
        cells.append(index)
        weights.append(weight)
    return cells, weights


def _biome_numbers(biome_numbers: Iterable[int]) -> np.ndarray:
    """Unique, ascending integer biome numbers."""
    values = list(biome_numbers)
    if not values or not all(
        isinstance(v, int | np.integer) and not isinstance(v, bool) for v in values
    ):
        raise SettingsError(f"biome numbers must be a non-empty list of integers, got {values!r}")
    numbers = np.array(values, dtype=np.int64)
    if np.unique(numbers).size != numbers.size:
        raise SettingsError(f"biome numbers repeat a number: {values!r}")
    return np.sort(numbers)


def _months(months: Sequence[str]) -> tuple[str, ...]:
    """Months as ``YYYY-MM`` strings."""
    out = []
    for month in months:
        try:
            out.append(check_month("months", month))
        except SettingsError:
            raise DiagnosticError(f"months must be like 2009-01, got {month!r}") from None
    return tuple(out)


def _blocks(labels: np.ma.MaskedArray | Iterable[np.ma.MaskedArray]) -> Iterator[np.ma.MaskedArray]:
    """(n, ny, nx) blocks of native labels from an array or an iterable of months or blocks."""
    if isinstance(labels, np.ndarray):
        labels = np.ma.asarray(labels)
        if labels.ndim != 3:
            raise DiagnosticError(
                f"native labels must be (n_months, ny, nx), got shape {labels.shape}"
            )
        yield labels
        return
    for block in labels:
        block = np.ma.asarray(block)
        if block.ndim == 2:
            block = block[None]
        if block.ndim != 3:
            raise DiagnosticError(
                f"a block of native labels must be (ny, nx) or (n, ny, nx), got {block.shape}"
            )
        yield block


def _codes(labels: np.ma.MaskedArray, numbers: np.ndarray) -> np.ndarray:
    """Index of each label in ``numbers``; ``numbers.size`` where unclassified (masked).

    Raises
    ------
    DiagnosticError
        When an unmasked label is not one of ``numbers``.
    """
    values = np.ma.getdata(labels)
    missing = np.ma.getmaskarray(labels)
    if values.dtype.kind == "f":
        missing = missing | ~np.isfinite(values)
        values = np.where(missing, numbers[0], values)
    index = np.searchsorted(numbers, values)
    clipped = np.minimum(index, numbers.size - 1)
    unknown = ~missing & (numbers[clipped] != values)
    if unknown.any():
        found = np.unique(values[unknown])
        raise DiagnosticError(
            f"labels {found[:10].tolist()} are not biome numbers {numbers.tolist()} (mask "
            "unclassified cells instead of giving them a fill value)"
        )
    return np.where(missing, numbers.size, clipped)
