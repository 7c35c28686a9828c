"""Physical context of the tracked biomes: area-weighted means of native fields per biome.

docs/method.md §4 ("physical context"): the area-weighted mean SST, salinity, mixed-layer depth,
sea-ice fraction (and any other native field, e.g. fCO2) of every biome in every region and
month, from the native cells that carry the biome (:func:`~carbon_biomes.core.coverage.
lattice_to_native` gives every native ocean cell the label of its box, as for the coverage).

Conventions:

* the mean of a variable over the cells of a region carrying a biome is ``sum(a x) / sum(a)``
  over the cells where the field is valid, ``a`` the cell area: a masked (or NaN) field cell
  drops out of the numerator and of the denominator, so a field missing under sea ice gives the
  mean of the cells where it exists, and the area used (``area``) says how much that is. NaN
  where no valid cell (or only cells of zero area) carries the biome;
* besides the biomes, two columns: :data:`ALL_CLASSIFIED` (the cells carrying any biome) and
  :data:`REGION_OCEAN` (every ocean cell of the region, classified or not);
* the months are consumed one at a time (fields and labels alike), so the native fields of the
  whole period are never held at once; every month costs two ``np.bincount`` per variable over
  the regions' cells.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from carbon_biomes.core.coverage import _biome_numbers, _blocks, _codes, _months, _region_cells
from carbon_biomes.core.errors import DiagnosticError, SettingsError
from carbon_biomes.core.trends import seasonal_cycle

__all__ = [
    "ALL_CLASSIFIED",
    "CONTEXT_COLUMNS",
    "REGION_OCEAN",
    "ContextTable",
    "physical_context",
]

#: Column of the cells carrying any biome.
ALL_CLASSIFIED = "all_classified"
#: Column of every ocean cell of the region.
REGION_OCEAN = "region_ocean"

#: Columns of :meth:`ContextTable.records`, in order.
CONTEXT_COLUMNS: tuple[str, ...] = ("region", "month", "biome", "variable", "mean", "area_km2")


@dataclass(frozen=True, eq=False)
class ContextTable:
    """Area-weighted means of native fields per region, month and biome (docs/method.md §4).

    The last axis of the arrays holds the biomes in ``biome_numbers`` order, then
    :data:`ALL_CLASSIFIED`, then :data:`REGION_OCEAN` (:attr:`columns`).

    Attributes
    ----------
    variables
        Variable names (axis 0).
    regions
        Region names (axis 1).
    months
        ``YYYY-MM`` (axis 2).
    biome_numbers
        Biome numbers, ascending.
    mean
        (variables, regions, months, biomes + 2) area-weighted mean of the field over the
        valid cells; NaN where there is none.
    area
        (variables, regions, months, biomes + 2) area of the valid cells used, m2.
    """

    variables: tuple[str, ...]
    regions: tuple[str, ...]
    months: tuple[str, ...]
    biome_numbers: tuple[int, ...]
    mean: np.ndarray
    area: np.ndarray

    @property
    def columns(self) -> tuple[int | str, ...]:
        """Labels of the last axis: the biome numbers, ``all_classified``, ``region_ocean``."""
        return (*self.biome_numbers, ALL_CLASSIFIED, REGION_OCEAN)

    def variable_index(self, name: str) -> int:
        """Index of a variable on axis 0."""
        try:
            return self.variables.index(name)
        except ValueError:
            raise KeyError(
                f"no variable {name!r} in the context table; variables: {', '.join(self.variables)}"
            ) from None

    def region_index(self, name: str) -> int:
        """Index of a region on axis 1."""
        try:
            return self.regions.index(name)
        except ValueError:
            raise KeyError(
                f"no region {name!r} in the context table; regions: {', '.join(self.regions)}"
            ) from None

    def seasonal(self, variable: str) -> tuple[np.ndarray, np.ndarray]:
        """Seasonal cycle of a variable: mean and standard deviation over the years.

        Parameters
        ----------
        variable
            One of :attr:`variables`.

        Returns
        -------
        mean, std
            (regions, biomes + 2, 12) mean and standard deviation (``ddof=1``, NaN with fewer
            than two years) of the monthly means over the years, per calendar month (January
            first; :func:`~carbon_biomes.core.trends.seasonal_cycle`). Months without a value
            are left out.
        """
        data = np.moveaxis(self.mean[self.variable_index(variable)], 1, 0)  # (T, R, K + 2)
        mean, std, _ = seasonal_cycle(data, list(self.months))
        return np.moveaxis(mean, 0, -1), np.moveaxis(std, 0, -1)

    def records(self) -> list[dict[str, Any]]:
        """Long-format rows, one per region, month, column and variable (in that nesting).

        Returns
        -------
        list of dict
            Keys :data:`CONTEXT_COLUMNS`: ``region``, ``month`` (``YYYY-MM``), ``biome`` (the
            number, :data:`ALL_CLASSIFIED` or :data:`REGION_OCEAN`), ``variable``, ``mean``
            (NaN without valid cells) and ``area_km2`` (valid area used).
        """
        area_km2 = self.area / 1.0e6
        columns = self.columns
        return [
            dict(
                zip(
                    CONTEXT_COLUMNS,
                    (
                        region,
                        month,
                        column,
                        variable,
                        float(self.mean[v, r, t, c]),
                        float(area_km2[v, r, t, c]),
                    ),
                    strict=True,
                )
            )  # fmt: skip
            for r, region in enumerate(self.regions)
            for t, month in enumerate(self.months)
            for c, column in enumerate(columns)
            for v, variable in enumerate(self.variables)
        ]

    def rows(self) -> list[tuple[Any, ...]]:
        """The :meth:`records` as tuples in the order of :data:`CONTEXT_COLUMNS` (for CSV)."""
        return [tuple(record[c] for c in CONTEXT_COLUMNS) for record in self.records()]


def physical_context(
    fields: Iterable[Mapping[str, np.ndarray | np.ma.MaskedArray]],
    labels_native: np.ma.MaskedArray | Iterable[np.ma.MaskedArray],
    masks: Mapping[str, np.ndarray],
    areas: np.ndarray,
    biome_numbers: Iterable[int],
    *,
    months: Sequence[str],
    variables: Sequence[str],
) -> ContextTable:
    """Area-weighted mean of native fields per region, month and biome.

    Parameters
    ----------
    fields
        One mapping per month, variable name -> (ny, nx) native field, masked (or NaN) where
        missing; only the ``variables`` are read, other names are ignored. Consumed once, one
        month at a time (e.g. a generator reading month by month).
    labels_native
        Labels on the native grid in the same month order, masked where unclassified: an
        (n_months, ny, nx) array, or an iterable of (ny, nx) months or (n, ny, nx) blocks (e.g.
        :func:`~carbon_biomes.core.coverage.iter_native_labels`), consumed alongside the fields.
    masks
        Region name -> (ny, nx) bool mask of the region's ocean cells
        (:func:`~carbon_biomes.core.regions.region_masks`).
    areas
        (ny, nx) cell areas in m2 (:func:`~carbon_biomes.core.regions.cell_areas`).
    biome_numbers
        The biome numbers; every unmasked label must be one of them.
    months
        ``YYYY-MM`` of each month, as many as the fields and labels have.
    variables
        Names of the variables to average (e.g. ``sst``, ``sss``, ``mld``, ``ice``).

    Returns
    -------
    ContextTable

    Raises
    ------
    DiagnosticError
        A month lacking one of the ``variables`` (the message names month and variable), a
        field or labels of another shape than the areas, an area that is not finite and
        non-negative on a region cell, a label that is not a biome number, or numbers of
        field months, label months and ``months`` that disagree.
    SettingsError
        Empty or repeated ``variables``, bad ``biome_numbers``.
    """
    numbers = _biome_numbers(biome_numbers)
    month_names = _months(months)
    names = _variable_names(variables)
    if isinstance(fields, Mapping):
        raise DiagnosticError(
            "fields must be an iterable of per-month mappings (variable name -> (ny, nx) "
            "field), not one mapping"
        )
    areas = np.ma.filled(np.ma.asarray(areas, dtype=np.float64), np.nan)
    if areas.ndim != 2:
        raise DiagnosticError(f"the cell areas must be (ny, nx), got shape {areas.shape}")
    regions = tuple(masks)
    n_biomes, n_regions, n_months = numbers.size, len(regions), len(month_names)
    cells, _ = _region_cells(masks, areas)
    region_of = [np.full(index.size, r * (n_biomes + 1), dtype=np.int64)
                 for r, index in enumerate(cells)]  # fmt: skip
    # the cells of all regions, one after the other (regions may overlap)
    cell_index = np.concatenate(cells) if cells else np.zeros(0, dtype=np.intp)
    region_base = np.concatenate(region_of) if region_of else np.zeros(0, dtype=np.int64)
    cell_area = areas.reshape(-1)[cell_index]
    size = n_regions * (n_biomes + 1)

    shape = (len(names), n_regions, n_months, n_biomes + 2)
    mean = np.full(shape, np.nan)
    area = np.zeros(shape)
    label_months = _label_months(labels_native)
    t = 0
    for month_fields in fields:
        if t >= n_months:
            raise DiagnosticError(
                f"the fields have more months than the {n_months} month names given"
            )
        month = month_names[t]
        labels = next(label_months, None)
        if labels is None:
            raise DiagnosticError(
                f"the native labels end after {t} month(s), but the fields go on ({month})"
            )
        if labels.shape != areas.shape:
            raise DiagnosticError(
                f"{month}: the native labels have shape {labels.shape}, the areas {areas.shape}"
            )
        if not isinstance(month_fields, Mapping):
            raise DiagnosticError(
                f"{month}: the fields of a month must be a mapping of variable name to field, "
                f"got {type(month_fields).__name__}"
            )
        bins = region_base + _codes(labels.reshape(-1), numbers)[cell_index]
        for v, name in enumerate(names):
            if name not in month_fields:
                raise DiagnosticError(
                    f"{month}: no field of variable '{name}' (the month has "
                    f"{', '.join(map(str, month_fields)) or 'no fields'})"
                )
            field = np.ma.filled(np.ma.asarray(month_fields[name], dtype=np.float64), np.nan)
            if field.shape != areas.shape:
                raise DiagnosticError(
                    f"{month}: the field of variable '{name}' has shape {field.shape}, the "
                    f"areas {areas.shape}"
                )
            values = field.reshape(-1)[cell_index]
            valid = np.isfinite(values)
            weight = np.where(valid, cell_area, 0.0)
            total = np.bincount(bins, weights=weight, minlength=size)
            moment = np.bincount(bins, weights=weight * np.where(valid, values, 0.0),
                                 minlength=size)  # fmt: skip
            area[v, :, t], mean[v, :, t] = _columns(total, moment, n_regions, n_biomes)
        t += 1
    if t != n_months:
        raise DiagnosticError(f"the fields have {t} months, but {n_months} month names were given")
    if next(label_months, None) is not None:
        raise DiagnosticError(f"the native labels have more months than the {t} months of fields")
    return ContextTable(
        variables=names,
        regions=regions,
        months=month_names,
        biome_numbers=tuple(int(k) for k in numbers),
        mean=mean,
        area=area,
    )


def _columns(
    total: np.ndarray, moment: np.ndarray, n_regions: int, n_biomes: int
) -> tuple[np.ndarray, np.ndarray]:
    """(regions, biomes + 2) areas and means from per-(region, code) sums of a and a x."""
    total = total.reshape(n_regions, n_biomes + 1)
    moment = moment.reshape(n_regions, n_biomes + 1)
    area = np.concatenate(
        (total[:, :n_biomes], total[:, :n_biomes].sum(axis=1, keepdims=True),
         total.sum(axis=1, keepdims=True)),
        axis=1,
    )  # fmt: skip
    weighted = np.concatenate(
        (moment[:, :n_biomes], moment[:, :n_biomes].sum(axis=1, keepdims=True),
         moment.sum(axis=1, keepdims=True)),
        axis=1,
    )  # fmt: skip
    with np.errstate(invalid="ignore", divide="ignore"):
        return area, np.where(area > 0.0, weighted / area, np.nan)


def _label_months(labels: np.ma.MaskedArray | Iterable[np.ma.MaskedArray]) -> Iterator[Any]:
    """(ny, nx) native labels, month by month, from an array or an iterable of months/blocks."""
    for block in _blocks(labels):
        yield from block


def _variable_names(variables: Sequence[str]) -> tuple[str, ...]:
    """Unique, non-empty variable names."""
    if isinstance(variables, str):
        variables = (variables,)
    names = tuple(variables)
    if not names or not all(isinstance(name, str) and name for name in names):
        raise SettingsError(f"variables must be a non-empty list of names, got {variables!r}")
    if len(set(names)) != len(names):
        raise SettingsError(f"variables repeat a name: {names!r}")
    return names
