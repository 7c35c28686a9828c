"""Rows of the CSV tables of each stage, from the core results (nothing is written here).

Long-format tables start with the identity columns ``dataset`` (the recipe-unique alias),
``model``, ``ensemble`` and ``exp``, so that they can be grouped by model.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import numpy as np

from carbon_biomes.core.classifier import BiomeClassifier
from carbon_biomes.core.detection import DetectionResult
from carbon_biomes.core.monthly_regression import MonthRegression
from carbon_biomes.core.tracking import TrackedBiomes
from carbon_biomes.workflow.identity import IDENTITY_COLUMNS, DatasetIdentity

__all__ = [
    "area_rows",
    "centroid_rows",
    "detection_metrics",
    "metric_rows",
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
    """Entries (biome, metric, value) of one dataset's tracking."""
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
        ("all", "training_seconds", classifier.training_seconds_),
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
