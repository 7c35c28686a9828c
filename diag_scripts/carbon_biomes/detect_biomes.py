"""Detect carbon biomes in each dataset's reference month(s) (Mohanty et al., 2025).

Per dataset (ancestor: the regression script): read the monthly-RC product, pool the significant
boxes of the reference month(s), cluster their standardized RCs with Ward's method, scan the
thresholds of the adaptive dendrogram cut, cut and name the biomes. Writes the detected biomes
(box lattice and native grid), CSV tables (centroids, threshold scan, long-format metrics) and
figures, each with provenance (docs/method.md §2.4-2.8).
Settings: :class:`carbon_biomes.workflow.settings.DetectionScriptSettings`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from carbon_biomes.core.detection import (
    DetectionResult,
    default_reference_months,
    detect_biomes,
    partition_scores,
    pool_reference_boxes,
)
from carbon_biomes.core.errors import DiagnosticError
from carbon_biomes.figures import detection as figures
from carbon_biomes.workflow import products, tables
from carbon_biomes.workflow.diagnostic import (
    DatasetFailures,
    ProvenanceLogger,
    ancestor_folders,
    run_diagnostic,
)
from carbon_biomes.workflow.identity import DatasetIdentity
from carbon_biomes.workflow.settings import DetectionScriptSettings

logger = logging.getLogger(__name__)
PRODUCTS = products.PRODUCTS


def describe(identity: DatasetIdentity, result: DetectionResult, box_size: float) -> str:
    """Caption fragment: dataset, month(s), thresholds."""
    return (
        f"{identity.describe()}, reference month {', '.join(result.months)}, "
        f"{box_size:g}° boxes, Δdist={result.thresholds[0]:g} "
        f"({result.settings.dist_scale}; Ward height {result.delta_dist_abs:.3g}), "
        f"Δvar={result.thresholds[1]:g} ({result.threshold_source}), "
        f"{result.n_biomes} biomes"
    )


def write_outputs(
    writer: products.ProductWriter,
    identity: DatasetIdentity,
    rcs: products.MonthlyRCs,
    grid_file: Path,
    result: DetectionResult,
) -> None:
    """Save every product of one dataset with its provenance."""
    _, grid = products.read_native_grid(grid_file)
    box_size = rcs.settings.box_size
    what = describe(identity, result, box_size)
    ancestors = [str(rcs.path), str(grid_file)]
    path = products.write_detected_biomes(
        writer, identity, result, rcs.settings, rcs.calendar, rcs.path, ancestors, what
    )
    labels = result.label_lattice()
    products.write_native_labels(
        writer,
        PRODUCTS["biomes_native_grid"],
        identity,
        grid,
        result.months,
        rcs.calendar,
        labels,
        result.names,
        "carbon biome detected in the reference month (label of the cell's box)",
        [*ancestors, str(path)],
        what,
    )
    writer.write(PRODUCTS["biome_centroids"], identity, tables.centroid_rows(identity, result),
                 ancestors, what)  # fmt: skip
    writer.write(PRODUCTS["threshold_scan"], identity, tables.scan_rows(identity, result),
                 ancestors, what, header=tables.scan_columns(result))  # fmt: skip
    months = ", ".join(result.months)
    figure_list = [
        ("biome_map", figures.biome_map_figure(
            labels[0], box_size, result.names, grid,
            f"Carbon biomes, {identity.describe()}, {result.months[0]}")),
        ("dendrogram", figures.dendrogram_figure(
            result,
            f"Ward dendrogram, {identity.describe()} {months}: adaptive cut "
            f"Δdist={result.thresholds[0]:g} ({result.settings.dist_scale}), "
            f"Δvar={result.thresholds[1]:g}")),
        ("rc_bars", figures.rc_bars_figure(
            result, f"Mean standardized regression coefficients per biome, "
            f"{identity.describe()}")),
        ("threshold_scan_figure", figures.scan_figure(
            result, f"Threshold scan of the adaptive cut, {identity.describe()} {months} "
            "(red: chosen pair)")),
    ]  # fmt: skip
    for name, figure in figure_list:
        writer.write(PRODUCTS[name], identity, figure, ancestors, what)


def main(cfg: dict[str, Any]) -> None:
    """Detect the biomes of every dataset whose monthly RCs the ancestors wrote."""
    settings = DetectionScriptSettings.from_cfg(cfg).detection
    folders = ancestor_folders(cfg)
    datasets = products.discover_products(PRODUCTS["monthly_rcs"], folders)
    metric_rows: list[list[Any]] = []
    ancestors: list[str] = []
    failed = DatasetFailures()  # datasets whose input is bad
    with ProvenanceLogger(cfg["run_dir"]) as provenance:
        writer = products.ProductWriter(cfg, provenance, "detect_biomes.py")
        for number, (identity, rcs_file) in enumerate(datasets.items(), start=1):
            logger.info("Dataset %d of %d: %s", number, len(datasets), identity.alias)
            try:
                rcs = products.read_monthly_rcs(rcs_file)
                months = settings.reference_months or default_reference_months(rcs.months)
                boxes = pool_reference_boxes(rcs.regressions(months), identity.alias)
                result = detect_biomes(boxes, settings, identity.alias)
                grid_file = products.find_product(PRODUCTS["native_grid"], identity, folders)
                write_outputs(writer, identity, rcs, grid_file, result)
            except DiagnosticError as exc:  # bad input: go on with the other datasets
                failed.record(identity.alias, exc)
                continue
            metric_rows += tables.metric_rows(
                identity, tables.detection_metrics(result, partition_scores(result))
            )
            ancestors += [str(rcs_file)]
        done = failed.good(identity.alias for identity in datasets)
        if done:
            writer.write(
                PRODUCTS["detection_metrics"],
                None,
                metric_rows,
                ancestors,
                f"datasets {', '.join(done)}",
            )
    failed.raise_if_any(len(datasets))


if __name__ == "__main__":
    with run_diagnostic() as config:
        main(config)
