"""Analysis of the tracked carbon biomes: coverage, seasonal cycles, trends, context, RC trends.

Per dataset (ancestors: the regression and tracking scripts; the preprocessed fields of the
diagnostic for the physical context): read the tracked labels, the native grid and the monthly
RCs, then

* give every native ocean cell its box's label and compute the **coverage** of every biome in
  every region and month from the native cell areas (``areacello``, else spherical areas from
  the grid's bounds);
* its **seasonal cycle**, **annual means** and **trends** (Theil-Sen, Mann-Kendall corrected for
  autocorrelation) of the deseasonalized, annual-mean and calendar-month series;
* **frequency maps** (percentage of years a location carries a biome) on the box lattice and
  the native grid;
* the **physical context** (area-weighted SST, salinity, mixed-layer depth, sea ice, fCO2 per
  biome, region and month), streamed month by month;
* **RC trends** per box and per biome from the monthly-RC product;

and write them as NetCDF, CSV and figures with provenance (docs/method.md §4).
Settings: :class:`carbon_biomes.workflow.settings.AnalysisScriptSettings`.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from carbon_biomes.core.context import physical_context
from carbon_biomes.core.coverage import coverage, frequency_maps, iter_native_labels
from carbon_biomes.core.coverage_statistics import (
    CALENDAR_MONTH_SERIES,
    DESEASONALIZED,
    coverage_statistics,
)
from carbon_biomes.core.errors import DiagnosticError
from carbon_biomes.core.monthly_regression import DRIVER_UNITS
from carbon_biomes.core.rc_trends import rc_trends
from carbon_biomes.core.regions import cell_areas, region_masks
from carbon_biomes.core.regression import DEFAULT_DRIVER_NAMES
from carbon_biomes.core.trends import month_index, per_decade
from carbon_biomes.figures import analysis as figures
from carbon_biomes.figures.detection import land_of
from carbon_biomes.workflow import products, tables
from carbon_biomes.workflow.diagnostic import ProvenanceLogger, ancestor_folders, run_diagnostic
from carbon_biomes.workflow.identity import DatasetIdentity, group_by_dataset
from carbon_biomes.workflow.inputs import ANALYSIS_UNITS, load_dataset_fields
from carbon_biomes.workflow.settings import AnalysisScriptSettings

logger = logging.getLogger(__name__)
PRODUCTS = products.PRODUCTS
#: Analysis name -> units of the physical-context fields.
CONTEXT_UNITS = {name: unit for name, unit, _ in ANALYSIS_UNITS.values()}


def check_coverage_sums(identity: DatasetIdentity, table: Any) -> None:
    """Coverage must sum to 100 wherever anything is classified (a failed sum is a bug)."""
    total = table.coverage_percent.sum(axis=-1)
    classified = table.classified_area > 0
    bad = classified & ~(np.abs(total - 100.0) <= 0.01)
    if bad.any():
        r, t = np.argwhere(bad)[0]
        raise DiagnosticError(
            f"{identity.alias}: the coverage of region {table.regions[r]} in "
            f"{table.months[t]} sums to {total[r, t]:.4f} %, not 100 %"
        )


def context_fields(
    identity: DatasetIdentity, metadata: list[dict[str, Any]], settings: AnalysisScriptSettings,
    months: list[str],
) -> tuple[Any, list[str], list[int]]:  # fmt: skip
    """The preprocessed fields of the context variables that the dataset has."""
    if not metadata:
        logger.info("%s: no preprocessed fields in this diagnostic: no physical context",
                    identity.alias)  # fmt: skip
        return None, [], []
    fields = load_dataset_fields(identity, metadata)
    names = [name for name in settings.context_variables if name in fields.cubes]
    for name in settings.context_variables:
        if name not in fields.cubes:
            logger.info("%s: no %s in the input, skipped in the physical context",
                        identity.alias, name)  # fmt: skip
    return fields, names, [fields.month_index(month) for month in months]


def analyse_dataset(
    writer: products.ProductWriter,
    settings: AnalysisScriptSettings,
    identity: DatasetIdentity,
    tracked_file: Any,
    folders: list[str],
    metadata: list[dict[str, Any]],
) -> tuple[list[list[Any]], list[str]]:
    """All analysis products of one dataset; returns its metric rows and ancestors."""
    alias = identity.alias
    tracked = products.read_tracked_biomes(tracked_file)
    grid_file = products.find_product(PRODUCTS["native_grid"], identity, folders)
    rcs_file = products.find_product(PRODUCTS["monthly_rcs"], identity, folders)
    _, grid = products.read_native_grid(grid_file)
    rcs = products.read_monthly_rcs(rcs_file)
    names = dict(sorted(tracked.names.items()))
    numbers = list(names)
    months = list(tracked.months)
    ancestors = [str(tracked_file), str(grid_file), str(rcs_file)]
    what = (f"{identity.describe()}, {months[0]} to {months[-1]}, "
            f"{tracked.box_size:g}° boxes, {len(numbers)} biomes")  # fmt: skip

    # coverage and its statistics
    masks = region_masks(settings.regions, grid, dataset=alias)
    areas, area_source = cell_areas(grid, dataset=alias)
    logger.info("%s: coverage of %d biomes in %s (cell areas: %s)", alias, len(numbers),
                ", ".join(masks), area_source)  # fmt: skip
    table = coverage(iter_native_labels(tracked.labels, grid), masks, areas, numbers,
                     months=months, area_source=area_source)  # fmt: skip
    check_coverage_sums(identity, table)
    stats = coverage_statistics(table, settings.trends, dataset=alias)
    cover_what = f"{what}; regions {', '.join(masks)}; cell areas: {area_source}"
    products.write_coverage(writer, identity, table, names, rcs.calendar, settings.regions,
                            ancestors, cover_what)  # fmt: skip
    writer.write(PRODUCTS["coverage_table"], identity, tables.coverage_rows(identity, table, names),
                 ancestors, cover_what)  # fmt: skip
    seasonal_rows = tables.seasonal_cycle_rows(identity, stats, names)
    writer.write(PRODUCTS["coverage_seasonal_cycle"], identity, seasonal_rows, ancestors,
                 cover_what)  # fmt: skip
    writer.write(PRODUCTS["coverage_annual"], identity, tables.annual_rows(identity, stats, names),
                 ancestors, cover_what)  # fmt: skip
    metric_rows = tables.coverage_metric_rows(identity, stats, names)

    # frequency maps (lattice, then native: each cell takes its box's frequency)
    freq = frequency_maps(tracked.labels, numbers, months)
    products.write_frequency_maps(writer, identity, freq, names, tracked.box_size, ancestors,
                                  what)  # fmt: skip
    if settings.native_frequency_maps:
        products.write_frequency_maps(writer, identity, freq, names, tracked.box_size,
                                      ancestors, what, grid=grid)  # fmt: skip

    # physical context, month by month from the preprocessed fields
    fields, variables, indices = context_fields(identity, metadata, settings, months)
    context = None
    if variables:
        context = physical_context(
            (month.fields for month in fields.iter_months(variables, indices)),
            iter_native_labels(tracked.labels, grid), masks, areas, numbers, months=months,
            variables=variables,
        )  # fmt: skip
        context_ancestors = ancestors + fields.ancestors
        context_what = f"{what}; fields: {', '.join(variables)}"
        writer.write(PRODUCTS["physical_context"], identity,
                     tables.context_rows(identity, context, names, CONTEXT_UNITS),
                     context_ancestors, context_what)  # fmt: skip
        writer.write(PRODUCTS["physical_context_seasonal_cycle"], identity,
                     tables.context_seasonal_rows(identity, context, names, CONTEXT_UNITS),
                     context_ancestors, context_what)  # fmt: skip
        ancestors = context_ancestors

    # trends of the regression coefficients
    trends = rc_trends(rcs.significant_slopes(months), months, tracked.labels, tracked.box_area,
                       numbers, driver_names=DEFAULT_DRIVER_NAMES, method=settings.trends.method,
                       alpha=settings.trends.alpha, min_length=settings.trends.min_length,
                       min_coverage=settings.rc_trend_min_coverage,
                       min_years=settings.trends.min_years)  # fmt: skip
    rc_what = (f"{what}; significant box RCs of {rcs.path.name}, boxes with RCs in at least "
               f"{settings.rc_trend_min_coverage:.0%} of the months")  # fmt: skip
    products.write_rc_trends(writer, identity, trends, names, tracked.box_size, rcs.calendar,
                             ancestors, rc_what)  # fmt: skip
    metric_rows += tables.rc_trend_metric_rows(identity, trends, names)

    write_figures(writer, settings, identity, names, grid, tracked, table, stats, freq,
                  trends, context, ancestors, what)  # fmt: skip
    return metric_rows, ancestors


def write_figures(
    writer: products.ProductWriter, settings: AnalysisScriptSettings, identity: DatasetIdentity,
    names: dict[int, str], grid: Any, tracked: Any, table: Any, stats: Any, freq: Any,
    trends: Any, context: Any, ancestors: list[str], what: str,
) -> None:  # fmt: skip
    """The analysis figures of one dataset."""
    label = identity.describe()
    regions = list(table.regions)
    land = land_of(grid)
    times = (month_index(list(table.months)) + 0.5) / 12.0  # mid-month, fractional years
    series_trends = {}
    for item in stats.trends:
        if item.series == DESEASONALIZED and not item.result.skipped:
            series_trends[(item.region, item.biome)] = (
                float(per_decade(item.result).per_decade), float(item.result.p_value)
            )
    trend_note = (f"trends of the deseasonalized series ({stats.settings.method})"
                  if stats.skipped_reason is None
                  else f"no trends: {stats.skipped_reason}")  # fmt: skip
    bars = np.moveaxis(stats.seasonal_mean, 1, 2)  # (regions, 12, biomes)
    rows = ["all months", *(CALENDAR_MONTH_SERIES[m - 1] for m in settings.frequency_map_months)]
    frequency = np.stack([freq.overall, *(freq.monthly[:, m - 1]
                                          for m in settings.frequency_map_months)])  # fmt: skip
    drivers = list(DEFAULT_DRIVER_NAMES)
    driver_labels = [f"d fCO2/d {d.upper()} trend ({DRIVER_UNITS[d]} per decade)"
                     for d in drivers]  # fmt: skip
    slope, significant = trends.box_trend, trends.box_significant
    figure_list = [
        ("coverage_seasonal_cycle_figure", figures.seasonal_cycle_figure(
            stats.seasonal_mean, stats.seasonal_std, regions, names,
            f"Seasonal cycle of biome coverage, {label}"), what),
        ("coverage_series", figures.coverage_series_figure(
            times, table.coverage_percent, stats.years.astype(float) + 0.5,
            stats.annual, series_trends, regions, names, f"Biome coverage, {label}"),
            f"{what}; {trend_note}"),
        ("coverage_bars", figures.coverage_bars_figure(
            bars, stats.unclassified_mean, regions, names,
            f"Mean coverage per calendar month, {label}"), what),
        ("frequency_maps_figure", figures.frequency_maps_figure(
            frequency, rows, tracked.box_size, names, land,
            f"Biome frequency (% of years), {label}"), what),
        ("rc_trend_maps", figures.rc_trend_maps_figure(
            slope, significant, tracked.box_size, driver_labels, land,
            f"Trends of the regression coefficients, {label}"
            + ("" if stats.skipped_reason is None else " (period shorter than min_years)")),
            f"{what}; {trend_note}"),
    ]  # fmt: skip
    if context is not None and "sst" in context.variables and "Global" in context.regions:
        mean, std = context.seasonal("sst")
        g = context.regions.index("Global")
        figure_list.append(("context_seasonal_cycle_figure", figures.seasonal_cycle_figure(
            mean[g : g + 1, : len(names)], std[g : g + 1, : len(names)], ["Global ocean"],
            names, f"SST of the biomes, {label}", ylabel="SST (degC)"),
            f"{what}; SST"))  # fmt: skip
    for product, figure, caption in figure_list:
        writer.write(PRODUCTS[product], identity, figure, ancestors, caption)


def main(cfg: dict[str, Any]) -> None:
    """Analyse the tracked biomes of every dataset."""
    settings = AnalysisScriptSettings.from_cfg(cfg)
    folders = ancestor_folders(cfg)
    datasets = products.discover_products(PRODUCTS["tracked_biomes"], folders)
    given = list(cfg.get("input_data", {}).values())
    inputs = group_by_dataset(given) if given else {}
    metric_rows: list[list[Any]] = []
    all_ancestors: list[str] = []
    with ProvenanceLogger(cfg["run_dir"]) as provenance:
        writer = products.ProductWriter(cfg, provenance, "analyse_biomes.py")
        for number, (identity, tracked_file) in enumerate(datasets.items(), start=1):
            logger.info("Dataset %d of %d: %s", number, len(datasets), identity.alias)
            rows, ancestors = analyse_dataset(writer, settings, identity, tracked_file, folders,
                                              list(inputs.get(identity, [])))  # fmt: skip
            metric_rows += rows
            all_ancestors += ancestors
        writer.write(PRODUCTS["analysis_metrics"], None, metric_rows, all_ancestors,
                     f"datasets {', '.join(identity.alias for identity in datasets)}")  # fmt: skip


if __name__ == "__main__":
    with run_diagnostic() as config:
        main(config)
