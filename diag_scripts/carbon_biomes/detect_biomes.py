"""Detect carbon biomes in each dataset's reference month(s) (Mohanty et al., 2025).

Per dataset: box regression of fCO2 on SST, DIC and ALK, significance filter, Ward clustering of
the standardized regression coefficients, threshold scan and adaptive dendrogram cut, automatic
naming. Writes NetCDF (box regression, biome labels on the box lattice and the native grid),
CSV tables (centroids, threshold scan, long-format metrics) and figures, each with provenance.
Settings: :class:`carbon_biomes.settings.DetectionSettings`.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from carbon_biomes import products
from carbon_biomes.detection import (
    DetectionResult,
    detect_biomes,
    partition_scores,
    regression_attributes,
)
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
from carbon_biomes.settings import DetectionSettings

logger = logging.getLogger(__name__)


def describe(result: DetectionResult) -> str:
    """Caption fragment: dataset, month(s), thresholds."""
    return (
        f"{result.dataset}, reference month {', '.join(result.months)}, "
        f"{result.settings.box_size:g}° boxes, Δdist={result.thresholds[0]:g} "
        f"({result.settings.dist_scale}; Ward height {result.delta_dist_abs:.3g}), "
        f"Δvar={result.thresholds[1]:g} ({result.threshold_source}), "
        f"{result.n_biomes} biomes"
    )


def global_attributes(result: DetectionResult) -> dict[str, Any]:
    """Global NetCDF attributes of the detection outputs."""
    settings = result.settings
    return {
        "dataset": result.dataset,
        "reference_months": list(result.months),
        **regression_attributes(settings),
        "biome_names_json": json.dumps({str(k): v for k, v in result.names.items()}),
        "delta_dist": result.thresholds[0],
        "delta_dist_scale": result.settings.dist_scale,
        "delta_dist_ward_height": result.delta_dist_abs,
        "delta_var": result.thresholds[1],
        "threshold_choice": result.threshold_source,
        "node_spread": settings.spread,
        "comment": (
            "fCO2 taken as CMIP spco2 converted to uatm (fCO2 equals pCO2 within 0.3 %); DIC and "
            "alkalinity in mmol m-3; SST in degC."
        ),
    }


def write_outputs(
    cfg: dict[str, Any],
    fields: DatasetFields,
    result: DetectionResult,
    provenance: ProvenanceLogger,
) -> list[list[Any]]:
    """Save every product of one dataset with its provenance; return its metric rows."""
    name = f"{result.dataset}_{'_'.join(result.months)}"
    what = describe(result)
    ancestors = fields.ancestors
    attributes = global_attributes(result)
    history = history_line(f"detect_biomes.py on {result.dataset} {', '.join(result.months)}")

    path = save_cubes(
        products.regression_cubes(result),
        get_diagnostic_filename(f"{name}_box_regression", cfg),
        global_attributes=attributes,
        history=history,
    )
    provenance.record(
        path,
        f"Box regression of fCO2 on SST, DIC and alkalinity: regression coefficients, standard "
        f"errors, p-values, VIFs, R², cell counts and significance flag per box; {what}.",
        ancestors,
        statistics=["regression"],
    )

    label_cubes = products.detection_label_cubes(result)
    month_index = fields.month_index(result.months[0])
    native = products.native_label_cube(
        fields,
        label_cubes[0].data,
        result.cell_boxes,
        result.names,
        long_name="carbon biome detected in the reference month (label of the cell's box)",
        time_indices=[fields.month_index(month) for month in result.months],
    )
    path = save_cubes(
        label_cubes,
        get_diagnostic_filename(f"{name}_biome_labels", cfg),
        global_attributes=attributes,
        history=history,
        fill_values=[products.LABEL_FILL],
    )
    provenance.record(
        path,
        f"Carbon biome labels on the box lattice (CF flag variable: "
        f"{', '.join(f'{k}={v}' for k, v in result.names.items())}); {what}.",
        ancestors,
        statistics=["clustering"],
    )
    path = save_cubes(
        [native],
        get_diagnostic_filename(f"{name}_biome_labels_native_grid", cfg),
        global_attributes=attributes,
        history=history,
        fill_values=[products.LABEL_FILL],
    )
    provenance.record(
        path,
        f"Carbon biome labels of {', '.join(result.months)} on the native model grid (each "
        f"cell takes the label of its box); {what}.",
        ancestors,
        statistics=["clustering"],
    )

    header, rows = products.centroid_rows(result)
    path = write_csv(get_diagnostic_filename(f"{name}_biome_centroids", cfg, "csv"), header, rows)
    provenance.record(
        path,
        f"Biome centroids: mean raw and standardized regression coefficients, number of boxes, "
        f"area and mean latitude per biome; {what}.",
        ancestors,
        statistics=["clustering", "mean"],
    )
    header, rows = products.scan_rows(result)
    path = write_csv(get_diagnostic_filename(f"{name}_threshold_scan", cfg, "csv"), header, rows)
    provenance.record(
        path,
        f"Threshold scan of the adaptive dendrogram cut: number of biomes, paper's score, "
        f"silhouette, Calinski-Harabasz and Gaussian-mixture BIC per (Δdist, Δvar); {what}.",
        ancestors,
        statistics=["clustering"],
    )

    label_grid = label_cubes[0][0].data
    figures = [
        (
            "biome_map",
            products.biome_map_figure(
                label_grid,
                result.settings.box_size,
                result.names,
                fields,
                month_index,
                f"Carbon biomes, {result.dataset}, {result.months[0]}",
            ),
            "Map of the carbon biomes detected",
            ["geo"],
        ),
        (
            "dendrogram",
            products.dendrogram_figure(
                result,
                f"Ward dendrogram, {result.dataset} {', '.join(result.months)}: "
                f"adaptive cut Δdist={result.thresholds[0]:g} ({result.settings.dist_scale}), "
                f"Δvar={result.thresholds[1]:g}",
            ),
            "Ward dendrogram of the standardized regression coefficients, coloured by biome, with "
            "the cut nodes marked and numbered",
            ["dendrogram"],
        ),
        (
            "rc_bars",
            products.rc_bars_figure(
                result,
                f"Mean standardized regression coefficients per biome, {result.dataset}",
            ),
            "Mean standardized regression coefficients of fCO2 on SST, DIC and alkalinity per "
            "biome",
            ["bar"],
        ),
        (
            "threshold_scan",
            products.scan_figure(
                result,
                f"Threshold scan of the adaptive cut, {result.dataset} "
                f"{', '.join(result.months)} (red: chosen pair)",
            ),
            "Heat maps of the threshold scan (number of biomes and scores per Δdist, Δvar; the "
            "chosen pair outlined)",
            ["heatmap"],
        ),
    ]
    for suffix, figure, caption, plot_types in figures:
        path = save_figure(figure, get_plot_filename(f"{name}_{suffix}", cfg))
        provenance.record(
            path,
            f"{caption}; {what}.",
            ancestors,
            plot_types=plot_types,
            statistics=["clustering"],
        )

    return products.detection_metric_rows(result, partition_scores(result))


def main(cfg: dict[str, Any]) -> None:
    """Detect the biomes of every dataset of the recipe."""
    settings = DetectionSettings.from_cfg(cfg)
    datasets = group_metadata(cfg["input_data"].values(), "dataset", sort=True)
    if not datasets:
        raise ValueError("no input data: the recipe gives this script no variables")
    metric_rows: list[list[Any]] = []
    ancestors: list[str] = []
    with ProvenanceLogger(cfg["run_dir"]) as provenance:
        for number, (dataset, metadata) in enumerate(datasets.items(), start=1):
            logger.info("Dataset %d of %d: %s", number, len(datasets), dataset)
            fields = load_dataset_fields(dataset, metadata, carbon=settings.carbon_variables)
            result = detect_biomes(fields, settings)
            metric_rows += write_outputs(cfg, fields, result, provenance)
            ancestors += fields.ancestors
        path = write_metrics(get_diagnostic_filename("detection_metrics", cfg, "csv"), metric_rows)
        provenance.record(
            path,
            "Detection metrics in long format (dataset, biome, metric, value): number of "
            "biomes, boxes fitted, clustered and dropped, chosen thresholds and their scores, "
            "number of "
            f"boxes and area fraction per biome; datasets {', '.join(datasets)}.",
            ancestors,
            statistics=["clustering", "other"],
        )


if __name__ == "__main__":
    with run_diagnostic() as config:
        main(config)
