"""Track carbon biomes through every month with a feed-forward network (Mohanty et al., 2025).

Per dataset (ancestors: the regression and detection scripts): read the detected biomes and the
monthly-RC product, train the biome classifier on the reference boxes (their RCs as stored in
the product; one scaler fitted on the training split, seeded), evaluate it on held-out boxes and
label the significant boxes of every month of the same product (streamed month by month).
Writes the labels with probabilities and out-of-distribution flags (box lattice and native
grid), the trained classifier, long-format metrics, a per-month biome-area table and figures,
each with provenance (docs/method.md §3).
Settings: :class:`carbon_biomes.workflow.settings.TrackingScriptSettings`.
"""

from __future__ import annotations

import logging
from typing import Any

from carbon_biomes.core.classifier import BiomeClassifier
from carbon_biomes.core.tracking import TrackedBiomes, reference_agreement, track_months
from carbon_biomes.figures import tracking as figures
from carbon_biomes.workflow import parallel, products, tables
from carbon_biomes.workflow.diagnostic import ProvenanceLogger, ancestor_folders, run_diagnostic
from carbon_biomes.workflow.identity import DatasetIdentity
from carbon_biomes.workflow.settings import TrackingScriptSettings

logger = logging.getLogger(__name__)
PRODUCTS = products.PRODUCTS


def write_outputs(
    writer: products.ProductWriter,
    settings: TrackingScriptSettings,
    identity: DatasetIdentity,
    detected: products.DetectedBiomes,
    rcs: products.MonthlyRCs,
    grid_file: Any,
    classifier: BiomeClassifier,
    tracked: TrackedBiomes,
    ancestors: list[str],
) -> None:
    """Save one dataset's tracking products with their provenance."""
    _, grid = products.read_native_grid(grid_file)
    what = (
        f"{identity.describe()}, {tracked.months[0]} to {tracked.months[-1]}, network trained "
        f"on the biomes detected in {', '.join(detected.months)} "
        f"({rcs.settings.box_size:g}° boxes, {len(detected.names)} biomes), "
        f"seed {settings.network.seed}"
    )
    attributes = {
        "reference_months": list(detected.months),
        "classifier_settings": classifier.settings_.to_dict(),
        "rescale_per_month": int(bool(classifier.settings_.rescale_per_month)),
        "monthly_rcs_file": rcs.path.name,
        "biomes_file": products.PRODUCTS["biomes"].filename(identity),
    }
    products.write_tracked_biomes(
        writer, identity, tracked, rcs.calendar, attributes, ancestors, what
    )
    if settings.native_labels:
        products.write_native_labels(
            writer,
            PRODUCTS["tracked_biomes_native_grid"],
            identity,
            grid,
            tracked.months,
            rcs.calendar,
            tracked.labels,
            tracked.names,
            "carbon biome assigned by the biome classifier (label of the cell's box)",
            ancestors,
            what,
        )
    writer.write(PRODUCTS["biome_classifier"], identity, classifier, ancestors, what)
    writer.write(PRODUCTS["biome_area"], identity, tables.area_rows(identity, tracked),
                 ancestors, what)  # fmt: skip

    report = classifier.test_metrics_
    maps_months = settings.map_months or figures.seasonal_months(
        tracked.months, detected.months[0][:4]
    )
    missing = [m for m in maps_months if m not in tracked.months]
    if missing:
        raise ValueError(f"{identity.alias}: map_months {missing} are not in the data")
    name = identity.describe()
    figure_list = [
        ("training", figures.training_figure(
            classifier.history_, classifier.best_epoch_, f"Training of the biome network, {name}")),
        ("confusion_matrix", figures.confusion_figure(
            report, detected.names, f"Held-out test boxes, {name}: accuracy "
            f"{report.accuracy:.3f}, macro-F1 {report.macro_f1:.3f}")),
        ("scores", figures.scores_figure(
            report, detected.names, f"Per-biome scores on held-out test boxes, {name}")),
        ("tracked_maps", figures.tracked_maps_figure(
            tracked, maps_months, grid, f"Tracked carbon biomes, {name}",
            low_probability=settings.low_probability)),
    ]  # fmt: skip
    for product, figure in figure_list:
        writer.write(PRODUCTS[product], identity, figure, ancestors,
                     f"{what}; months shown: {', '.join(maps_months)}")  # fmt: skip


def main(cfg: dict[str, Any]) -> None:
    """Train, evaluate and apply the biome classifier for every detected dataset."""
    settings = TrackingScriptSettings.from_cfg(cfg)
    folders = ancestor_folders(cfg)
    datasets = products.discover_products(PRODUCTS["biomes"], folders)
    metric_rows: list[list[Any]] = []
    all_ancestors: list[str] = []
    with ProvenanceLogger(cfg["run_dir"]) as provenance, parallel.month_pool(cfg) as pool:
        writer = products.ProductWriter(cfg, provenance, "track_biomes.py")
        for number, (identity, biomes_file) in enumerate(datasets.items(), start=1):
            logger.info("Dataset %d of %d: %s", number, len(datasets), identity.alias)
            detected = products.read_detected_biomes(biomes_file)
            rcs_file = products.find_product(PRODUCTS["monthly_rcs"], identity, folders)
            grid_file = products.find_product(PRODUCTS["native_grid"], identity, folders)
            rcs = products.read_monthly_rcs(rcs_file)
            features = detected.features(rcs)
            classifier = BiomeClassifier(settings.network).fit(features, detected.labels)
            report = classifier.test_metrics_
            logger.info(
                "%s: held-out accuracy %.3f, macro-F1 %.3f on %d boxes",
                identity.alias,
                report.accuracy,
                report.macro_f1,
                report.n_boxes,
            )
            tracked = track_months(
                rcs.iter_months(),
                classifier,
                detected.names,
                rcs.settings.box_size,
                dataset=identity.alias,
                n_months=len(rcs.months),
                mapper=pool.mapper("tracking prediction", identity.alias, len(rcs.months)),
            )
            ancestors = [str(biomes_file), str(rcs_file), str(grid_file)]
            write_outputs(writer, settings, identity, detected, rcs, grid_file, classifier,
                          tracked, ancestors)  # fmt: skip
            agreement = reference_agreement(
                tracked, detected.months, detected.box_id, detected.month_of_box, detected.labels
            )
            metric_rows += tables.metric_rows(
                identity, tables.tracking_metrics(classifier, detected.names, agreement, tracked)
            )
            all_ancestors += ancestors
        writer.write(
            PRODUCTS["tracking_metrics"],
            None,
            metric_rows,
            all_ancestors,
            f"datasets {', '.join(identity.alias for identity in datasets)}",
        )


if __name__ == "__main__":
    with run_diagnostic() as config:
        main(config)
