"""Track carbon biomes through every month with a feed-forward network (Mohanty et al., 2025).

Per dataset: read the biomes detected by ``detect_biomes.py`` (an ancestor of this script),
train the network on the reference boxes (one scaler fitted on the training split, seeded),
evaluate it on held-out boxes, compute the box regression of every month (streamed) and label
it. Writes the label time series with probabilities and out-of-distribution flags (box lattice
and native grid), the trained model and scaler, long-format metrics, a per-month biome-area
table and figures, each with provenance.
Settings: :class:`carbon_biomes.settings.TrackingScriptSettings`.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

from carbon_biomes import products
from carbon_biomes.diagnostic import (
    ProvenanceLogger,
    get_diagnostic_filename,
    get_plot_filename,
    group_metadata,
    run_diagnostic,
)
from carbon_biomes.inputs import DatasetFields, load_dataset_fields
from carbon_biomes.output import history_line, save_cubes, write_csv, write_metrics
from carbon_biomes.plotting import save_figure
from carbon_biomes.settings import TrackingScriptSettings
from carbon_biomes.tracking import BiomeClassifier
from carbon_biomes.tracking_pipeline import (
    ReferenceBiomes,
    TrackedBiomes,
    read_reference_biomes,
    reference_agreement,
    track_dataset,
)

logger = logging.getLogger(__name__)


def ancestor_folders(cfg: dict[str, Any]) -> list[Path]:
    """Output folders of ancestor diagnostic scripts (the detection's work_dir)."""
    return [Path(path) for path in cfg.get("input_files", []) if Path(path).is_dir()]


def save_model(classifier: BiomeClassifier, stem: Path) -> list[Path]:
    """Save the network and its scaler (``stem.keras``, ``stem.json``): both files or neither."""
    staging = stem.parent / f".{stem.name}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        written = classifier.save(staging / stem.name)
        final = [stem.parent / path.name for path in written]
        for source, target in zip(written, final, strict=True):
            source.replace(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return final


def metric_rows(
    dataset: str,
    classifier: BiomeClassifier,
    reference: ReferenceBiomes,
    tracked: TrackedBiomes,
) -> list[list[Any]]:
    """Long-format metrics of one dataset's tracking."""
    names = reference.names
    rows = []
    for record in classifier.test_metrics_.to_records(dataset):
        biome = record["biome"]
        biome = biome if biome == "all" else names.get(int(biome), str(biome))
        rows.append([dataset, biome, record["metric"], record["value"]])
    for month, value in reference_agreement(tracked, reference).items():
        rows.append([dataset, "all", f"agreement_with_detection_{month}", value])
    classified = ~tracked.labels.mask
    n_boxes = int(classified.sum())
    rows += [
        [dataset, "all", "best_epoch", classifier.best_epoch_],
        [dataset, "all", "epochs_run", len(classifier.history_.get("loss", []))],
        [dataset, "all", "training_seconds", classifier.training_seconds_],
        [dataset, "all", "ood_threshold_mahalanobis", classifier.ood_threshold_],
        [dataset, "all", "n_box_months_labelled", n_boxes],
        [dataset, "all", "ood_fraction", float(tracked.ood.sum()) / max(n_boxes, 1)],
        [dataset, "all", "mean_probability", float(tracked.probability.mean())],
        [dataset, "all", "n_months_without_boxes", int((~classified).all(axis=(1, 2)).sum())],
    ]
    for action in classifier.small_biome_log_:
        rows.append(
            [
                dataset,
                names.get(action.biome, str(action.biome)),
                f"small_biome_{action.action}",
                action.n_boxes,
            ]
        )
    return rows


def write_outputs(
    cfg: dict[str, Any],
    settings: TrackingScriptSettings,
    fields: DatasetFields,
    reference: ReferenceBiomes,
    classifier: BiomeClassifier,
    tracked: TrackedBiomes,
    provenance: ProvenanceLogger,
) -> None:
    """Save one dataset's tracking products with their provenance."""
    dataset = fields.dataset
    period = f"{fields.months[0]}_{fields.months[-1]}"
    name = f"{dataset}_{period}"
    what = (
        f"{dataset}, {fields.months[0]} to {fields.months[-1]}, network trained on the biomes "
        f"detected in {', '.join(reference.months)} ({reference.settings.box_size:g}° boxes, "
        f"{len(reference.names)} biomes), seed {settings.network.seed}"
    )
    data_ancestors = fields.ancestors
    ancestors = data_ancestors + list(reference.files)
    attributes = {
        "dataset": dataset,
        "reference_months": list(reference.months),
        "box_size_degrees": reference.settings.box_size,
        "seed": settings.network.seed,
        "rescale_per_month": int(bool(settings.network.rescale_per_month)),
    }
    history = history_line(f"track_biomes.py on {dataset} {period}")

    path = save_cubes(
        products.tracked_cubes(tracked),
        get_diagnostic_filename(f"{name}_tracked_biomes", cfg),
        global_attributes=attributes,
        history=history,
        fill_values=[products.LABEL_FILL, None, -1],
    )
    provenance.record(
        path,
        "Monthly carbon-biome labels on the box lattice assigned by the tracking network, "
        f"with "
        f"the softmax probability of the label and an out-of-distribution flag; {what}.",
        ancestors,
        statistics=["classification"],
    )
    if settings.native_labels:
        cube = products.native_label_cube(
            fields,
            tracked.labels,
            tracked.cell_boxes,
            tracked.names,
            long_name="carbon biome assigned by the tracking network (label of the cell's box)",
        )
        path = save_cubes(
            [cube],
            get_diagnostic_filename(f"{name}_tracked_biomes_native_grid", cfg),
            global_attributes=attributes,
            history=history,
            fill_values=[products.LABEL_FILL],
        )
        provenance.record(
            path,
            f"Monthly carbon-biome labels on the native model grid (each cell takes the label "
            f"of its box); {what}.",
            ancestors,
            statistics=["classification"],
        )

    stem = Path(cfg["work_dir"]) / f"{dataset}_tracking_model"
    for path in save_model(classifier, stem):
        kind = (
            "Keras network"
            if path.suffix == ".keras"
            else (
                "scaler (fitted on the training split), class labels, out-of-distribution model, "
                "settings and test scores of the network"
            )
        )
        provenance.record(
            path,
            f"Trained biome classifier: {kind}; {what}.",
            reference.files,
            statistics=["classification"],
        )

    header, rows = products.area_rows(tracked)
    path = write_csv(get_diagnostic_filename(f"{name}_biome_area", cfg, "csv"), header, rows)
    provenance.record(
        path,
        "Number of boxes, ocean area and fraction of the classified area of every tracked "
        f"biome "
        f"per month; {what}.",
        ancestors,
        statistics=["classification", "other"],
    )

    report = classifier.test_metrics_
    maps_months = settings.map_months or products.seasonal_months(
        tracked.months, reference.months[0][:4]
    )
    missing = [m for m in maps_months if m not in tracked.months]
    if missing:
        raise ValueError(f"{dataset}: map_months {missing} are not in the data")
    figures = [
        (
            "training",
            products.training_figure(
                classifier.history_,
                classifier.best_epoch_,
                f"Training of the biome network, {dataset}",
            ),
            "Loss and accuracy per epoch on the training and validation splits (early stopping on "
            "the validation loss; dotted: epoch whose weights were restored)",
            ["line"],
        ),
        (
            "confusion_matrix",
            products.confusion_figure(
                report,
                reference.names,
                f"Held-out test boxes, {dataset}: accuracy "
                f"{report.accuracy:.3f}, macro-F1 {report.macro_f1:.3f}",
            ),
            "Confusion matrix of the network on held-out test boxes (counts; colour: fraction of "
            "the true biome)",
            ["matrix"],
        ),
        (
            "scores",
            products.scores_figure(
                report, reference.names, f"Per-biome scores on held-out test boxes, {dataset}"
            ),
            "Precision, recall and F1 per biome on held-out test boxes",
            ["bar"],
        ),
        (
            "maps",
            products.tracked_maps_figure(
                tracked, maps_months, fields, f"Tracked carbon biomes, {dataset}"
            ),
            f"Maps of the tracked biomes in {', '.join(maps_months)}",
            ["geo"],
        ),
    ]
    for suffix, figure, caption, plot_types in figures:
        path = save_figure(figure, get_plot_filename(f"{name}_{suffix}", cfg))
        provenance.record(
            path,
            f"{caption}; {what}.",
            ancestors,
            plot_types=plot_types,
            statistics=["classification"],
        )


def main(cfg: dict[str, Any]) -> None:
    """Train, evaluate and apply the tracking network for every dataset."""
    settings = TrackingScriptSettings.from_cfg(cfg)
    datasets = group_metadata(cfg["input_data"].values(), "dataset", sort=True)
    if not datasets:
        raise ValueError("no input data: the recipe gives this script no variables")
    folders = ancestor_folders(cfg)
    metrics: list[list[Any]] = []
    ancestors: list[str] = []
    with ProvenanceLogger(cfg["run_dir"]) as provenance:
        for number, (dataset, metadata) in enumerate(datasets.items(), start=1):
            logger.info("Dataset %d of %d: %s", number, len(datasets), dataset)
            reference = read_reference_biomes(dataset, folders)
            fields = load_dataset_fields(
                dataset, metadata, carbon=reference.settings.carbon_variables
            )
            classifier = BiomeClassifier(settings.network).fit(reference.features, reference.labels)
            report = classifier.test_metrics_
            logger.info(
                "%s: held-out accuracy %.3f, macro-F1 %.3f on %d boxes",
                dataset,
                report.accuracy,
                report.macro_f1,
                report.n_boxes,
            )
            tracked = track_dataset(fields, classifier, reference)
            write_outputs(cfg, settings, fields, reference, classifier, tracked, provenance)
            metrics += metric_rows(dataset, classifier, reference, tracked)
            ancestors += fields.ancestors + list(reference.files)
        path = write_metrics(get_diagnostic_filename("tracking_metrics", cfg, "csv"), metrics)
        provenance.record(
            path,
            "Tracking metrics in long format (dataset, biome, metric, value): held-out "
            "accuracy, per-biome precision, recall, F1 and support, macro-F1, agreement of "
            "tracked and detected labels in the reference month, out-of-distribution "
            f"fraction, training details; datasets {', '.join(datasets)}.",
            ancestors,
            statistics=["classification", "other"],
        )


if __name__ == "__main__":
    with run_diagnostic() as config:
        main(config)
