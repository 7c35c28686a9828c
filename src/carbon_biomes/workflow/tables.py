"""Rows of the CSV tables of each stage, from the core results (nothing is written here).

Long-format tables start with the identity columns ``dataset`` (the recipe-unique alias),
``model``, ``ensemble`` and ``exp``, so that they can be grouped by model.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import numpy as np

from carbon_biomes.core.classifier import BiomeClassifier
from carbon_biomes.core.context import ContextTable
from carbon_biomes.core.coverage import CoverageTable
from carbon_biomes.core.coverage_statistics import CoverageStatistics, trend_rows
from carbon_biomes.core.detection import DetectionResult
from carbon_biomes.core.monthly_regression import MonthRegression
from carbon_biomes.core.rc_trends import RCTrends
from carbon_biomes.core.tracking import TrackedBiomes
from carbon_biomes.core.trends import calendar_months
from carbon_biomes.workflow.identity import IDENTITY_COLUMNS, DatasetIdentity

__all__ = [
    "annual_rows",
    "area_rows",
    "context_rows",
    "context_seasonal_rows",
    "coverage_metric_rows",
    "coverage_rows",
    "seasonal_cycle_rows",
    "centroid_rows",
    "detection_metrics",
    "metric_rows",
    "rc_trend_metric_rows",
    "regression_metrics",
    "scan_columns",
    "scan_rows",
    "tally_regressions",
    "tracking_metrics",
]


def _identity_values(identity: DatasetIdentity) -> list[str]:
    columns = identity.table_columns()
    return [columns[key] for key in IDENTITY_COLUMNS]


def metric_rows(
    identity: DatasetIdentity, entries: Iterable[tuple[str, str, Any]]
) -> list[list[Any]]:
    """Long-format rows (identity columns, biome, metric, value) of one dataset."""
    prefix = _identity_values(identity)
    return [[*prefix, biome, metric, value] for biome, metric, value in entries]


def centroid_rows(identity: DatasetIdentity, result: DetectionResult) -> list[list[Any]]:
    """Rows of the biome-centroid table."""
    prefix = _identity_values(identity)
    return [
        [
            *prefix,
            number,
            entry["name"],
            entry["n_boxes"],
            entry["area"] / 1e6,
            entry["mean_lat"],
            *entry["rc"],
            *entry["z"],
        ]
        for number, entry in result.centroids().items()
    ]


def scan_columns(result: DetectionResult) -> list[str]:
    """Columns of the threshold-scan table (the scan's own quantities after the identity)."""
    return [*IDENTITY_COLUMNS, *(key for key in result.scan[0] if key != "labels")]


def scan_rows(identity: DatasetIdentity, result: DetectionResult) -> list[list[Any]]:
    """Rows of the threshold-scan table, one per scanned (Δdist, Δvar) pair."""
    keys = [key for key in result.scan[0] if key != "labels"]
    prefix = _identity_values(identity)
    return [[*prefix, *[row[key] for key in keys]] for row in result.scan]


def regression_metrics(
    regressions_summary: Mapping[str, int], n_months: int
) -> list[tuple[str, str, Any]]:
    """Entries (biome, metric, value) of the regression stage of one dataset."""
    entries: list[tuple[str, str, Any]] = [("all", "n_months", n_months)]
    entries += [("all", key, value) for key, value in regressions_summary.items()]
    return entries


def tally_regressions(
    regressions: Iterable[MonthRegression], totals: dict[str, int]
) -> Iterator[MonthRegression]:
    """Pass a stream of month regressions through, adding their box counts to ``totals``."""
    for reg in regressions:
        boxes = reg.all_boxes
        for key, value in (
            ("n_boxes_fitted", len(boxes)),
            ("n_boxes_significant", reg.n_significant),
            ("n_boxes_dropped_few_points", boxes.n_dropped_few_points),
            ("n_boxes_dropped_singular", boxes.n_dropped_singular),
            ("n_boxes_dropped_constant_target", boxes.n_dropped_constant_target),
            ("n_cells_valid", reg.n_cells_valid),
            ("n_cells_outliers", reg.n_cells_outliers),
            ("n_months_without_significant_boxes", int(reg.n_significant == 0)),
        ):
            totals[key] = totals.get(key, 0) + int(value)
        yield reg


def detection_metrics(
    result: DetectionResult, scores: Mapping[str, float]
) -> list[tuple[str, str, Any]]:
    """Entries (biome, metric, value) of a detection."""
    boxes = result.boxes
    entries: list[tuple[str, str, Any]] = [
        ("all", "n_biomes", result.n_biomes),
        ("all", "n_boxes_clustered", int(result.labels.size)),
        ("all", "n_boxes_fitted", boxes.n_fitted),
        ("all", "delta_dist", result.thresholds[0]),
        ("all", "delta_var", result.thresholds[1]),
        ("all", "delta_dist_ward_height", result.delta_dist_abs),
    ]
    entries += [("all", f"n_boxes_dropped_{k}", v) for k, v in boxes.dropped.items()]
    entries.append(("all", "n_small_biomes_merged", len(result.merged)))
    entries += [("all", key, value) for key, value in scores.items()]
    total_area = float(np.nansum(boxes.area))
    for entry in result.centroids().values():
        entries.append((entry["name"], "n_boxes", entry["n_boxes"]))
        fraction = entry["area"] * len(result.months) / total_area if total_area else np.nan
        entries.append((entry["name"], "area_fraction", fraction))
    return entries


def tracking_metrics(
    classifier: BiomeClassifier,
    names: Mapping[int, str],
    agreement: Mapping[str, float],
    tracked: TrackedBiomes,
) -> list[tuple[str, str, Any]]:
    """Entries (biome, metric, value) of one dataset's tracking.

    Reproducible numbers only: the wall-clock training time (``training_seconds_``, logged and
    kept in the classifier's JSON) is left out, so that a run repeated gives the same table.
    """
    entries: list[tuple[str, str, Any]] = []
    for record in classifier.test_metrics_.to_records(tracked.dataset):
        biome = record["biome"]
        biome = biome if biome == "all" else names.get(int(biome), str(biome))
        entries.append((biome, record["metric"], record["value"]))
    for month, value in agreement.items():
        entries.append(("all", f"agreement_with_detection_{month}", value))
    classified = ~np.ma.getmaskarray(tracked.labels)
    n_boxes = int(classified.sum())
    entries += [
        ("all", "best_epoch", classifier.best_epoch_),
        ("all", "epochs_run", len(classifier.history_.get("loss", []))),
        ("all", "ood_threshold_mahalanobis", classifier.ood_threshold_),
        ("all", "n_box_months_labelled", n_boxes),
        ("all", "ood_fraction", float(tracked.ood.sum()) / max(n_boxes, 1)),
        ("all", "mean_probability", float(tracked.probability.mean())),
        ("all", "n_months_without_boxes", int((~classified).all(axis=(1, 2)).sum())),
    ]
    for action in classifier.small_biome_log_:
        entries.append(
            (names.get(action.biome, str(action.biome)), f"small_biome_{action.action}",
             action.n_boxes)
        )  # fmt: skip
    return entries


def area_rows(identity: DatasetIdentity, tracked: TrackedBiomes) -> list[list[Any]]:
    """Per month and biome: number of boxes, ocean area and fraction of the classified area."""
    numbers = sorted(tracked.names)
    area = tracked.biome_area()
    labels = np.ma.filled(tracked.labels, 0)
    prefix = _identity_values(identity)
    rows = []
    for t, month in enumerate(tracked.months):
        total = area[t].sum()
        for k, number in enumerate(numbers):
            rows.append(
                [
                    *prefix,
                    month,
                    number,
                    tracked.names[number],
                    int((labels[t] == number).sum()),
                    area[t, k] / 1e6,
                    area[t, k] / total if total > 0 else np.nan,
                ]
            )
    return rows


# ---------------------------------------------------------------------------------------------
# Analysis stage
# ---------------------------------------------------------------------------------------------
#: Units of the coverage series.
COVERAGE_UNITS = "percentage points"


def coverage_rows(
    identity: DatasetIdentity, table: CoverageTable, names: Mapping[int, str]
) -> Iterator[list[Any]]:
    """Rows of the coverage table (one per region, month and biome)."""
    prefix = _identity_values(identity)
    for record in table.records():
        yield [
            *prefix,
            record["region"],
            record["month"],
            record["biome"],
            names[record["biome"]],
            record["coverage_percent"],
            record["area_km2"],
            record["classified_area_km2"],
            record["unclassified_percent"],
        ]


def seasonal_cycle_rows(
    identity: DatasetIdentity, stats: CoverageStatistics, names: Mapping[int, str]
) -> Iterator[list[Any]]:
    """Rows of the coverage seasonal-cycle table."""
    prefix = _identity_values(identity)
    for record in stats.seasonal_records():
        r = stats.regions.index(record["region"])
        m = record["calendar_month"] - 1
        yield [
            *prefix,
            record["region"],
            record["calendar_month"],
            record["biome"],
            names[record["biome"]],
            record["mean"],
            record["std"],
            record["n_years"],
            float(stats.unclassified_mean[r, m]),
            float(stats.unclassified_std[r, m]),
        ]


def annual_rows(
    identity: DatasetIdentity, stats: CoverageStatistics, names: Mapping[int, str]
) -> Iterator[list[Any]]:
    """Rows of the annual-mean coverage table."""
    prefix = _identity_values(identity)
    for record in stats.annual_records():
        yield [
            *prefix,
            record["region"],
            record["year"],
            record["biome"],
            names[record["biome"]],
            record["coverage_percent"],
            record["unclassified_percent"],
        ]


def coverage_metric_rows(
    identity: DatasetIdentity, stats: CoverageStatistics, names: Mapping[int, str]
) -> list[list[Any]]:
    """Analysis-metrics rows of the coverage: mean, seasonal amplitude and every trend.

    Columns: identity, region, biome (name), quantity, series, metric, value, units.
    """
    prefix = _identity_values(identity)
    rows: list[list[Any]] = []
    quantity = "coverage_percent"
    for r, region in enumerate(stats.regions):
        for k, number in enumerate(stats.biome_numbers):
            cycle = stats.seasonal_mean[r, k]
            finite = cycle[np.isfinite(cycle)]
            mean = float(finite.mean()) if finite.size else float("nan")
            amplitude = float(finite.max() - finite.min()) if finite.size else float("nan")
            rows.append([*prefix, region, names[number], quantity, "climatology",
                         "mean", mean, "%"])  # fmt: skip
            rows.append([*prefix, region, names[number], quantity, "climatology",
                         "seasonal_amplitude", amplitude, COVERAGE_UNITS])  # fmt: skip
        rows.append([*prefix, region, "unclassified", "unclassified_percent", "climatology",
                     "mean", float(np.nanmean(stats.unclassified_mean[r])), "%"])  # fmt: skip
    for item in stats.trends:
        for metric, value, units in trend_rows(item.result, COVERAGE_UNITS):
            rows.append([*prefix, item.region, names[item.biome], quantity, item.series,
                         metric, value, units])  # fmt: skip
    return rows


def _column_name(column: Any, names: Mapping[int, str]) -> tuple[Any, str]:
    """(biome_number, biome) of a context column: a biome, or all classified / region ocean."""
    if isinstance(column, int | np.integer):
        return int(column), names[int(column)]
    return "", str(column)


def context_rows(
    identity: DatasetIdentity, context: ContextTable, names: Mapping[int, str],
    units: Mapping[str, str],
) -> Iterator[list[Any]]:  # fmt: skip
    """Rows of the physical-context table (region, month, biome, variable)."""
    prefix = _identity_values(identity)
    for record in context.records():
        number, name = _column_name(record["biome"], names)
        yield [*prefix, record["region"], record["month"], number, name, record["variable"],
               units.get(record["variable"], ""), record["mean"], record["area_km2"]]  # fmt: skip


def context_seasonal_rows(
    identity: DatasetIdentity, context: ContextTable, names: Mapping[int, str],
    units: Mapping[str, str],
) -> Iterator[list[Any]]:  # fmt: skip
    """Rows of the physical-context seasonal-cycle table."""
    prefix = _identity_values(identity)
    month_index = calendar_months(list(context.months)) - 1
    for variable in context.variables:
        mean, std = context.seasonal(variable)
        values = context.mean[context.variable_index(variable)]  # (R, T, C)
        for r, region in enumerate(context.regions):
            for c, column in enumerate(context.columns):
                number, name = _column_name(column, names)
                finite = np.isfinite(values[r, :, c])
                for m in range(12):
                    n_years = int(np.count_nonzero(finite & (month_index == m)))
                    yield [*prefix, region, m + 1, number, name, variable,
                           units.get(variable, ""), float(mean[r, c, m]), float(std[r, c, m]),
                           n_years]  # fmt: skip


def rc_trend_metric_rows(
    identity: DatasetIdentity, trends: RCTrends, names: Mapping[int, str]
) -> list[list[Any]]:
    """Analysis-metrics rows of the RC trends (region ``all boxes``: biomes are global)."""
    prefix = _identity_values(identity)
    rows = []
    for record in trends.records():
        biome = "all boxes" if record["biome"] is None else names[record["biome"]]
        rows.append([*prefix, "Global", biome, f"rc_{record['driver']}", record["series"],
                     record["metric"], record["value"], record["units"]])  # fmt: skip
    return rows
