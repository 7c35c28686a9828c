"""Every output of the plugin, declared once, written by one function and read back by its reader.

A :class:`Product` declares a file: its name pattern, kind, format version, caption template and
provenance tags; NetCDF products also declare their variables (:class:`~.netcdf.Variable`), tables
their columns. :class:`ProductWriter` writes any product and records its provenance in the same
step. For each NetCDF product a reader in this module gives back what the writer was given (all
settings, biome names, months and dataset identity); a reader refuses a file of another product
or format version with a clear error.

Products of the pipeline (``{alias}`` is the dataset's recipe-unique alias):

============================  ===========  =================================================
file                          stage        content
============================  ===========  =================================================
{alias}_monthly_rcs.nc        regression   box regression of every month (time x lattice)
{alias}_native_grid.nc        regression   native grid, cell areas and the box of every cell
{alias}_biomes.nc             detection    biome labels of the reference month(s), linkage
{alias}_biomes_native_grid.nc detection    the same labels on the native grid
{alias}_tracked_biomes.nc     tracking     labels, probability, OOD flag of every month
{alias}_tracked_biomes_native_grid.nc      tracking labels of every month on the native grid
============================  ===========  =================================================
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from carbon_biomes.core.classifier import BiomeClassifier
from carbon_biomes.core.detection import DetectionResult, DetectionSettings
from carbon_biomes.core.errors import DiagnosticError
from carbon_biomes.core.monthly_regression import (
    DRIVER_UNITS,
    BoxStatistics,
    MonthRegression,
    NativeGrid,
    RegressionSettings,
)
from carbon_biomes.core.naming import flag_meaning
from carbon_biomes.core.regression import DEFAULT_DRIVER_NAMES, BoxRegression, box_centres
from carbon_biomes.core.tracking import TrackedBiomes
from carbon_biomes.core.validation import settings_to_dict
from carbon_biomes.workflow.identity import IDENTITY_COLUMNS, DatasetIdentity
from carbon_biomes.workflow.netcdf import (
    NetcdfFile,
    Variable,
    atomic_path,
    history_line,
    month_labels,
    open_netcdf,
    read_csv,
    write_csv,
)
from carbon_biomes.workflow.provenance import ProvenanceLogger

__all__ = [
    "PRODUCTS",
    "DetectedBiomes",
    "MonthlyRCs",
    "Product",
    "ProductError",
    "ProductWriter",
    "discover_products",
    "find_product",
    "read_detected_biomes",
    "read_monthly_rcs",
    "read_native_grid",
    "read_native_labels",
    "read_table",
    "read_tracked_biomes",
    "save_figure",
]

logger = logging.getLogger(__name__)

#: Fill value of biome label variables.
LABEL_FILL = -1
FLOAT_FILL = 1.0e20
_UNITS_PER_DRIVER = ", ".join(f"{d}: {DRIVER_UNITS[d]}" for d in DEFAULT_DRIVER_NAMES)
_DRIVER_LONG = {"sst": "sea surface temperature", "dic": "DIC", "alk": "alkalinity"}


_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


class ProductError(DiagnosticError):
    """A file is not the product (or format version) a reader expects, or is missing."""


@dataclass(frozen=True)
class Product:
    """Declaration of one output.

    Attributes
    ----------
    name
        Product name, written into the file (``product`` attribute of NetCDF files).
    pattern
        File name; ``{alias}`` is replaced by the dataset's file-safe alias.
    kind
        ``netcdf``, ``table``, ``figure`` or ``model``.
    caption
        Provenance caption; ``{what}`` is replaced by a description of the data and settings.
    version
        Format version (``product_version`` attribute); readers refuse other versions.
    title
        ``title`` global attribute of a NetCDF product.
    statistics, plot_types
        Provenance tags.
    columns
        Columns of a table.
    """

    name: str
    pattern: str
    kind: str
    caption: str
    version: int = 1
    title: str = ""
    statistics: tuple[str, ...] = ()
    plot_types: tuple[str, ...] = ()
    columns: tuple[str, ...] = ()

    def filename(self, identity: DatasetIdentity | None = None, **fields: str) -> str:
        """The file name for a dataset (or for all datasets when the pattern has no alias).

        Other fields of the pattern (``{region}``) are given as keywords, made safe for a
        file name.
        """
        values = {key: _UNSAFE_NAME.sub("_", str(value)) for key, value in fields.items()}
        if "{alias}" in self.pattern:
            if identity is None:
                raise ValueError(f"product {self.name} is per dataset: give its identity")
            values["alias"] = identity.file_stem
        try:
            return self.pattern.format(**values)
        except KeyError as exc:
            raise ValueError(f"product {self.name} needs the field {exc.args[0]}") from None

    def attributes(self) -> dict[str, Any]:
        """The product's identifying global attributes."""
        return {"product": f"carbon_biomes.{self.name}", "product_version": np.int32(self.version)}


def _metrics_columns() -> tuple[str, ...]:
    return (*IDENTITY_COLUMNS, "biome", "metric", "value")


PRODUCTS: dict[str, Product] = {
    product.name: product
    for product in (
        Product(
            "monthly_rcs",
            "{alias}_monthly_rcs.nc",
            "netcdf",
            "Monthly box regression of fCO2 on SST, DIC and alkalinity: regression coefficients, "
            "standard errors, p-values, VIFs, R², cell counts, significance flag, box ocean area "
            "and mean SST and sea ice per box and month; {what}.",
            title="Monthly box regression of surface fCO2 on SST, DIC and alkalinity",
            statistics=("regression",),
        ),
        Product(
            "native_grid",
            "{alias}_native_grid.nc",
            "netcdf",
            "Native model grid with cell areas, the box of every ocean cell and the cells that "
            "repeat another cell's position (halo columns, north-fold row; counted once); "
            "{what}.",
            title="Native grid and cell-to-box index of the box regression",
            statistics=("other",),
            version=2,
        ),
        Product(
            "biomes",
            "{alias}_biomes.nc",
            "netcdf",
            "Carbon biomes detected by Ward clustering of the standardized regression "
            "coefficients on the box lattice, with the linkage matrix and the standardization; "
            "{what}.",
            title="Carbon biomes detected in the reference month(s)",
            statistics=("clustering",),
        ),
        Product(
            "biomes_native_grid",
            "{alias}_biomes_native_grid.nc",
            "netcdf",
            "Carbon biomes of the reference month(s) on the native model grid (each cell takes "
            "the label of its box); {what}.",
            title="Carbon biomes detected in the reference month(s), native grid",
            statistics=("clustering",),
        ),
        Product(
            "tracked_biomes",
            "{alias}_tracked_biomes.nc",
            "netcdf",
            "Monthly carbon-biome labels on the box lattice assigned by the biome classifier, "
            "with the softmax probability of the label, an out-of-distribution flag and the "
            "box ocean area; {what}.",
            title="Carbon biomes of every month (biome classifier)",
            statistics=("classification",),
        ),
        Product(
            "tracked_biomes_native_grid",
            "{alias}_tracked_biomes_native_grid.nc",
            "netcdf",
            "Monthly carbon-biome labels on the native model grid (each cell takes the label of "
            "its box); {what}.",
            title="Carbon biomes of every month, native grid",
            statistics=("classification",),
        ),
        Product(
            "biome_classifier",
            "{alias}_biome_classifier",
            "model",
            "Trained biome classifier (Keras network, and a JSON file with the scaler fitted on "
            "the training split, class labels, out-of-distribution model, settings and test "
            "scores); {what}.",
            statistics=("classification",),
        ),
        Product(
            "biome_centroids",
            "{alias}_biome_centroids.csv",
            "table",
            "Biome centroids: mean raw and standardized regression coefficients, number of "
            "boxes, area and mean latitude per biome; {what}.",
            statistics=("clustering", "mean"),
            columns=(
                *IDENTITY_COLUMNS,
                "biome_number",
                "biome",
                "n_boxes",
                "area_km2",
                "mean_latitude",
                *(f"rc_{d} [{DRIVER_UNITS[d]}]" for d in DEFAULT_DRIVER_NAMES),
                *(f"z_{d}" for d in DEFAULT_DRIVER_NAMES),
            ),  # fmt: skip
        ),
        Product(
            "threshold_scan",
            "{alias}_threshold_scan.csv",
            "table",
            "Threshold scan of the adaptive dendrogram cut: number of biomes, paper's score, "
            "silhouette, Calinski-Harabasz, Gaussian-mixture BIC and bootstrap stability per "
            "(Δdist, Δvar); {what}.",
            statistics=("clustering",),
        ),
        Product(
            "biome_area",
            "{alias}_biome_area.csv",
            "table",
            "Number of boxes, ocean area and fraction of the classified area of every tracked "
            "biome per month; {what}.",
            statistics=("classification", "other"),
            columns=(
                *IDENTITY_COLUMNS,
                "month",
                "biome_number",
                "biome",
                "n_boxes",
                "area_km2",
                "fraction_of_classified_area",
            ),  # fmt: skip
        ),
        Product(
            "regression_metrics",
            "regression_metrics.csv",
            "table",
            "Regression metrics in long format: boxes fitted, significant and dropped per "
            "reason, summed over all months; {what}.",
            statistics=("regression", "other"),
            columns=_metrics_columns(),
        ),
        Product(
            "detection_metrics",
            "detection_metrics.csv",
            "table",
            "Detection metrics in long format: number of biomes, boxes fitted, clustered and "
            "dropped, chosen thresholds and their scores, number of boxes and area fraction per "
            "biome; {what}.",
            statistics=("clustering", "other"),
            columns=_metrics_columns(),
        ),
        Product(
            "tracking_metrics",
            "tracking_metrics.csv",
            "table",
            "Tracking metrics in long format: held-out accuracy, per-biome precision, recall, "
            "F1 and support, macro-F1, agreement of tracked and detected labels in the "
            "reference month, out-of-distribution fraction, training details; {what}.",
            statistics=("classification", "other"),
            columns=_metrics_columns(),
        ),
        Product(
            "biome_map",
            "{alias}_biome_map",
            "figure",
            "Map of the carbon biomes detected; {what}.",
            plot_types=("geo",),
            statistics=("clustering",),
        ),
        Product(
            "dendrogram",
            "{alias}_dendrogram",
            "figure",
            "Ward dendrogram of the standardized regression coefficients, coloured by biome, "
            "with the cut nodes marked and numbered; {what}.",
            plot_types=("dendrogram",),
            statistics=("clustering",),
        ),
        Product(
            "rc_bars",
            "{alias}_rc_bars",
            "figure",
            "Mean standardized regression coefficients of fCO2 on SST, DIC and alkalinity "
            "per biome; {what}.",
            plot_types=("bar",),
            statistics=("clustering",),
        ),
        Product(
            "threshold_scan_figure",
            "{alias}_threshold_scan",
            "figure",
            "Heat maps of the threshold scan (number of biomes and scores per Δdist, Δvar; "
            "the chosen pair outlined); {what}.",
            plot_types=("heatmap",),
            statistics=("clustering",),
        ),
        Product(
            "training",
            "{alias}_training",
            "figure",
            "Loss and accuracy per epoch on the training and validation splits (early "
            "stopping on the validation loss; dotted: epoch whose weights were restored); "
            "{what}.",
            plot_types=("line",),
            statistics=("classification",),
        ),
        Product(
            "confusion_matrix",
            "{alias}_confusion_matrix",
            "figure",
            "Confusion matrix of the biome classifier on held-out test boxes (counts; "
            "colour: fraction of the true biome); {what}.",
            plot_types=("matrix",),
            statistics=("classification",),
        ),
        Product(
            "scores",
            "{alias}_scores",
            "figure",
            "Precision, recall and F1 per biome on held-out test boxes; {what}.",
            plot_types=("bar",),
            statistics=("classification",),
        ),
        Product(
            "coverage",
            "{alias}_coverage.nc",
            "netcdf",
            "Coverage of every tracked biome in every region and month: biome area as a "
            "percentage of the region's classified area (native cell areas), with the biome "
            "areas, the classified area and the unclassified percentage of the region's ocean; "
            "{what}.",
            title="Regional coverage of the carbon biomes",
            statistics=("area", "other"),
        ),
        Product(
            "coverage_table",
            "{alias}_coverage.csv",
            "table",
            "Coverage of every tracked biome in every region and month (long format): biome "
            "area / classified area x 100, biome area, classified area and unclassified "
            "percentage of the region's ocean; {what}.",
            statistics=("area", "other"),
            columns=(
                *IDENTITY_COLUMNS, "region", "time", "biome_number", "biome",
                "coverage_percent", "area_km2", "classified_area_km2", "unclassified_percent",
            ),  # fmt: skip
        ),
        Product(
            "coverage_seasonal_cycle",
            "{alias}_coverage_seasonal_cycle.csv",
            "table",
            "Seasonal cycle of the biome coverage per region: mean and standard deviation over "
            "the years of each calendar month, with the unclassified percentage; {what}.",
            statistics=("mean", "stddev"),
            columns=(
                *IDENTITY_COLUMNS, "region", "calendar_month", "biome_number", "biome",
                "coverage_percent_mean", "coverage_percent_std", "n_years",
                "unclassified_percent_mean", "unclassified_percent_std",
            ),  # fmt: skip
        ),
        Product(
            "coverage_annual",
            "{alias}_coverage_annual.csv",
            "table",
            "Annual mean coverage of every biome per region (complete years only) and the "
            "annual mean unclassified percentage; {what}.",
            statistics=("mean",),
            columns=(
                *IDENTITY_COLUMNS, "region", "year", "biome_number", "biome",
                "coverage_percent", "unclassified_percent",
            ),  # fmt: skip
        ),
        Product(
            "frequency_maps",
            "{alias}_frequency_maps.nc",
            "netcdf",
            "Biome frequency on the box lattice: per biome, the percentage of years in which a "
            "box carries it, per calendar month and over all months (among the years in which "
            "the box is classified); {what}.",
            title="Frequency of the carbon biomes, box lattice",
            statistics=("other",),
        ),
        Product(
            "frequency_maps_native_grid",
            "{alias}_frequency_maps_native_grid.nc",
            "netcdf",
            "Biome frequency on the native grid (each cell takes its box's frequency): per "
            "biome, the percentage of years in which the location carries it, per calendar "
            "month and over all months; {what}.",
            title="Frequency of the carbon biomes, native grid",
            statistics=("other",),
        ),
        Product(
            "physical_context",
            "{alias}_physical_context.csv",
            "table",
            "Area-weighted mean SST, salinity, mixed-layer depth, sea-ice fraction and fCO2 of "
            "every biome, region and month (also over all classified cells and the whole "
            "region's ocean), with the area averaged; {what}.",
            statistics=("mean",),
            columns=(
                *IDENTITY_COLUMNS, "region", "time", "biome_number", "biome", "variable",
                "units", "mean", "area_km2",
            ),  # fmt: skip
        ),
        Product(
            "physical_context_seasonal_cycle",
            "{alias}_physical_context_seasonal_cycle.csv",
            "table",
            "Seasonal cycle (mean and standard deviation over the years per calendar month) of "
            "the area-weighted physical context of every biome and region; {what}.",
            statistics=("mean", "stddev"),
            columns=(
                *IDENTITY_COLUMNS, "region", "calendar_month", "biome_number", "biome",
                "variable", "units", "mean", "std", "n_years",
            ),  # fmt: skip
        ),
        Product(
            "rc_trends",
            "{alias}_rc_trends.nc",
            "netcdf",
            "Trends of the regression coefficients of fCO2 on SST, DIC and alkalinity: per box "
            "(deseasonalized monthly RCs) and per biome (area-weighted biome-mean RC), "
            "Theil-Sen slope per decade with its confidence interval and the autocorrelation-"
            "corrected Mann-Kendall p-value; {what}.",
            title="Trends of the box regression coefficients",
            statistics=("trend",),
        ),
        Product(
            "analysis_metrics",
            "analysis_metrics.csv",
            "table",
            "Analysis metrics in long format: mean coverage, seasonal amplitude and trends "
            "(Theil-Sen slope per decade, confidence interval, total change, Mann-Kendall "
            "p-value corrected for autocorrelation) of the deseasonalized, annual-mean and "
            "calendar-month coverage per region and biome, and trends of the biome-mean "
            "regression coefficients; {what}.",
            statistics=("trend", "mean", "other"),
            columns=(
                *IDENTITY_COLUMNS, "region", "biome", "quantity", "series", "metric", "value",
                "units",
            ),  # fmt: skip
        ),
        Product(
            "coverage_seasonal_cycle_figure",
            "{alias}_coverage_seasonal_cycle",
            "figure",
            "Seasonal cycle of the biome coverage in each region: mean over the years (lines) "
            "and ± one standard deviation (bands); {what}.",
            plot_types=("seas", "line"),
            statistics=("mean", "stddev"),
        ),
        Product(
            "coverage_series",
            "{alias}_coverage_series",
            "figure",
            "Coverage of every biome in each region: monthly (thin) and annual means (markers), "
            "with the Theil-Sen trend of the deseasonalized series and its Mann-Kendall p-value "
            "in the legend; {what}.",
            plot_types=("times",),
            statistics=("trend",),
        ),
        Product(
            "coverage_bars",
            "{alias}_coverage_bars",
            "figure",
            "Mean coverage per calendar month in each region as stacked bars (summing to 100 % "
            "of the classified area), with the unclassified percentage of the region's ocean; "
            "{what}.",
            plot_types=("bar",),
            statistics=("mean",),
        ),
        Product(
            "frequency_maps_figure",
            "{alias}_frequency_maps",
            "figure",
            "Maps of the percentage of years in which each box carries each biome, over all "
            "months and in selected calendar months; {what}.",
            plot_types=("geo",),
            statistics=("other",),
        ),
        Product(
            "rc_trend_maps",
            "{alias}_rc_trend_maps",
            "figure",
            "Maps of the trend per decade of each regression coefficient (deseasonalized "
            "monthly box RCs), stippled where significant; {what}.",
            plot_types=("geo",),
            statistics=("trend",),
        ),
        Product(
            "context_seasonal_cycle_figure",
            "{alias}_context_seasonal_cycle",
            "figure",
            "Seasonal cycle of the area-weighted physical context of every biome over the "
            "global ocean: mean over the years and ± one standard deviation; {what}.",
            plot_types=("seas", "line"),
            statistics=("mean", "stddev"),
        ),
        Product(
            "tracked_maps",
            "{alias}_maps",
            "figure",
            "Maps of the tracked biomes in four months; {what}.",
            plot_types=("geo",),
            statistics=("classification",),
        ),
        # comparison stage
        Product(
            "common_biomes",
            "{alias}_common_biomes.nc",
            "netcdf",
            "Monthly labels of the common carbon biomes on the box lattice (one label set for "
            "every dataset of the comparison), with the softmax probability, an "
            "out-of-distribution flag and the box ocean area; {what}.",
            title="Common carbon biomes of every month (one classifier for all datasets)",
            statistics=("classification",),
        ),
        Product(
            "pooled_biome_classifier",
            "pooled_biome_classifier",
            "model",
            "Biome classifier trained on the biomes detected in the pooled reference boxes of "
            "all datasets (Keras network and JSON scaler, labels, settings, test scores); "
            "{what}.",
            statistics=("classification",),
        ),
        Product(
            "common_biome_centroids",
            "comparison_common_biomes.csv",
            "table",
            "The common biomes: number, name and mean standardized regression coefficients in "
            "the common standardization, for the common set and for every dataset's boxes of "
            "the biome in its reference month(s); {what}.",
            statistics=("clustering", "mean"),
            columns=(
                *IDENTITY_COLUMNS,
                "biome_number",
                "biome",
                "n_boxes",
                *(f"z_{d}" for d in DEFAULT_DRIVER_NAMES),
            ),  # fmt: skip
        ),
        Product(
            "comparison_matching",
            "comparison_matching.csv",
            "table",
            "Each dataset's own biomes matched to the common biomes (Hungarian assignment on "
            "centroid distance in the common standardized RC space and spatial overlap): "
            "matched pairs with their cost, novel own biomes and absent common biomes; {what}.",
            statistics=("clustering", "other"),
            columns=(
                *IDENTITY_COLUMNS,
                "own_biome_number",
                "own_biome",
                "common_biome_number",
                "common_biome",
                "status",
                "cost",
            ),  # fmt: skip
        ),
        Product(
            "comparison_metrics",
            "comparison_metrics.csv",
            "table",
            "Comparison metrics in long format, per dataset against the reference, region and "
            "biome: area-weighted agreement, Cohen's kappa, adjusted Rand index, Jaccard and F1, "
            "area fractions and their differences, centroid distances, RMSE of the seasonal "
            "coverage cycle, coverage trends and their differences; multi-model mean and "
            "spread as rows MultiModelMean and MultiModelSpread; {what}.",
            statistics=("perfmetrics", "rmsd", "diff", "trend"),
            columns=(*IDENTITY_COLUMNS, "region", "biome", "metric", "value", "units"),
        ),
        Product(
            "comparison_cmec",
            "comparison_cmec.json",
            "json",
            "The comparison metrics as a CMEC metric bundle (dimensions source_id, region, "
            "biome, metric); {what}.",
            statistics=("perfmetrics",),
        ),
        Product(
            "comparison_agreement",
            "comparison_agreement.nc",
            "netcdf",
            "Fraction of the models whose common biome agrees with the reference's in every "
            "box (in at least half of the shared months); {what}.",
            title="Agreement of the models' common carbon biomes with the reference",
            statistics=("perfmetrics",),
        ),
        Product(
            "comparison_maps",
            "comparison_maps",
            "figure",
            "Maps of the common carbon biomes of every dataset in one month, one colour and "
            "name per biome in every panel; {what}.",
            plot_types=("geo",),
            statistics=("classification",),
        ),
        Product(
            "comparison_coverage_bars",
            "comparison_coverage_bars",
            "figure",
            "Share of the ocean area of every common biome per dataset (mean over the shared "
            "months); {what}.",
            plot_types=("bar",),
            statistics=("area", "mean"),
        ),
        Product(
            "comparison_seasonal_cycle",
            "comparison_seasonal_cycle_{region}",
            "figure",
            "Seasonal cycle of the coverage of every common biome in one region, one line per "
            "dataset, the reference in black; {what}.",
            plot_types=("seas", "line"),
            statistics=("area", "mean"),
        ),
        Product(
            "comparison_portrait",
            "comparison_portrait",
            "figure",
            "Portrait diagram of the comparison metrics (datasets x metrics), each metric "
            "relative to the multi-model median; {what}.",
            plot_types=("portrait",),
            statistics=("perfmetrics",),
        ),
        Product(
            "comparison_agreement_map",
            "comparison_agreement_map",
            "figure",
            "Map of the fraction of the models whose common biome agrees with the reference's "
            "(in at least half of the shared months); {what}.",
            plot_types=("geo",),
            statistics=("perfmetrics",),
        ),
    )  # fmt: skip
}


# ---------------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------------
class ProductWriter:
    """Writes the products of one diagnostic script and records their provenance.

    Parameters
    ----------
    cfg
        The script's settings (``work_dir``, ``plot_dir``, ``output_file_type``).
    provenance
        The script's provenance logger.
    script
        Name of the script, for the ``history`` attribute.
    """

    def __init__(self, cfg: Mapping[str, Any], provenance: ProvenanceLogger, script: str) -> None:
        self.work_dir = Path(cfg["work_dir"])
        self.plot_dir = Path(cfg["plot_dir"])
        self.file_type = str(cfg.get("output_file_type", "png"))
        self.provenance = provenance
        self.script = script

    def path(
        self, product: Product, identity: DatasetIdentity | None = None, **fields: str
    ) -> Path:
        """Where a product of a dataset is written."""
        name = product.filename(identity, **fields)
        if product.kind == "figure":
            return self.plot_dir / f"{name}.{self.file_type}"
        return self.work_dir / name

    def _record(
        self, product: Product, path: Path, ancestors: Sequence[str | os.PathLike], what: str
    ) -> None:
        self.provenance.record(
            path,
            product.caption.format(what=what),
            [str(a) for a in ancestors],
            statistics=list(product.statistics) or ["other"],
            **({"plot_types": list(product.plot_types)} if product.plot_types else {}),
        )

    @contextlib.contextmanager
    def netcdf(
        self,
        product: Product,
        identity: DatasetIdentity | None,
        ancestors: Sequence[str | os.PathLike],
        what: str,
        attributes: Mapping[str, Any] | None = None,
    ) -> Iterator[NetcdfFile]:
        """Write a NetCDF product: yields the open file; records provenance when it is complete.

        The file carries the product name and version, the dataset identity, ``title``,
        ``history`` (UTC time, script, input files), ``source``, ``references`` and
        ``Conventions``.
        """
        path = self.path(product, identity)
        global_attributes = {
            **product.attributes(),
            "title": product.title if identity is None
            else f"{product.title}: {identity.describe()}",
            **(identity.attributes() if identity is not None else {}),
            "history": history_line(self.script, ancestors),
            **dict(attributes or {}),
        }
        with NetcdfFile(path, global_attributes) as file:
            yield file
        self._record(product, path, ancestors, what)

    def write(
        self,
        product: Product,
        identity: DatasetIdentity | None,
        content: Any,
        ancestors: Sequence[str | os.PathLike],
        what: str,
        *,
        header: Sequence[str] | None = None,
        **fields: str,
    ) -> list[Path]:
        """Write a table (rows), figure (a Figure), model (a classifier) or JSON (a dict).

        A table's columns are the product's; ``header`` gives them for a table whose columns
        depend on the data (the threshold scan). ``fields`` fill the file-name pattern's other
        fields (``region``).

        Returns
        -------
        list of Path
            The files written (each with its provenance record).
        """
        path = self.path(product, identity, **fields)
        if product.kind == "table":
            columns = product.columns or header
            if not columns:
                raise ValueError(f"table {product.name} declares no columns: pass header")
            written = [write_csv(path, columns, content)]
        elif product.kind == "figure":
            written = [save_figure(content, path)]
        elif product.kind == "model":
            written = _save_classifier(content, path)
        elif product.kind == "json":
            with atomic_path(path) as tmp:
                tmp.write_text(json.dumps(content, indent=1, sort_keys=True, allow_nan=False)
                               + "\n", encoding="utf-8")  # fmt: skip
            logger.info("Wrote %s", path)
            written = [path]
        else:
            raise ValueError(f"use ProductWriter.netcdf for the NetCDF product {product.name}")
        for file in written:
            self._record(product, file, ancestors, what)
        return written


def save_figure(fig: Figure, path: Path, dpi: int = 130) -> Path:
    """Save a figure atomically and close it."""
    import matplotlib.pyplot as plt

    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=dpi, format=path.suffix.lstrip(".") or "png")
    finally:
        plt.close(fig)
    logger.info("Wrote %s", path)
    return path


def _save_classifier(classifier: BiomeClassifier, stem: Path) -> list[Path]:
    """Save the network and its scaler (``stem.keras``, ``stem.json``): both files or neither."""
    import shutil

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


def read_classifier(identity: DatasetIdentity, folders: Iterable[str | os.PathLike]) -> tuple[
    BiomeClassifier, Path
]:
    """The trained biome classifier of a dataset (tracking stage) and its file stem.

    Raises
    ------
    ProductError
        When its files are in none or in more than one of the folders.
    """
    product = PRODUCTS["biome_classifier"]
    stem = product.filename(identity)
    found = [Path(folder) / stem for folder in folders
             if (Path(folder) / f"{stem}.json").is_file()]  # fmt: skip
    if len(found) != 1:
        raise ProductError(
            f"{identity.alias}: expected one {stem}.keras/.json in the ancestors' folders, "
            f"found {len(found)}; list the tracking script under this script's 'ancestors'"
        )
    return BiomeClassifier.load(found[0]), found[0]


def find_product(
    product: Product, identity: DatasetIdentity, folders: Iterable[str | os.PathLike]
) -> Path:
    """The file of a dataset's product in the ancestors' output folders.

    Raises
    ------
    ProductError
        When it is in none or in more than one of the folders.
    """
    folders = [Path(folder) for folder in folders]
    name = product.filename(identity)
    found = [folder / name for folder in folders if (folder / name).is_file()]
    if len(found) != 1:
        where = ", ".join(str(f) for f in folders) or "no ancestor folders"
        raise ProductError(
            f"{identity.alias}: expected one {name} in {where}, found {len(found)}; list the "
            f"script that writes the {product.name} product under this script's 'ancestors' "
            "in the recipe"
        )
    return found[0]


def discover_products(
    product: Product, folders: Iterable[str | os.PathLike]
) -> dict[DatasetIdentity, Path]:
    """Every file of a per-dataset product in the ancestors' folders, by dataset identity.

    Raises
    ------
    ProductError
        When there is none, or when two files are of one dataset.
    """
    folders = [Path(folder) for folder in folders]
    found: dict[DatasetIdentity, Path] = {}
    for folder in folders:
        for path in sorted(folder.glob(product.pattern.format(alias="*"))):
            if path.name.startswith("."):
                continue
            with _open_product(path, product) as nc:
                identity = _identity(nc)
            if identity in found:
                raise ProductError(
                    f"{identity.alias}: two {product.name} files, {found[identity]} and {path}"
                )
            found[identity] = path
    if not found:
        where = ", ".join(str(f) for f in folders) or "no ancestor folders"
        raise ProductError(
            f"no {product.pattern.format(alias='*')} file in {where}; list the script that "
            f"writes the {product.name} product under this script's 'ancestors' in the recipe"
        )
    return dict(sorted(found.items(), key=lambda item: item[0].alias))


@contextlib.contextmanager
def _open_product(path: str | os.PathLike, product: Product) -> Iterator[Any]:
    """Open a NetCDF product, checking its product name and format version."""
    path = Path(path)
    if not path.is_file():
        raise ProductError(f"{path}: no such file (product {product.name})")
    with open_netcdf(path) as nc:
        expected = product.attributes()["product"]
        found = getattr(nc, "product", None)
        if found != expected:
            raise ProductError(
                f"{path} is not a {expected} file (its product attribute is {found!r})"
            )
        version = int(getattr(nc, "product_version", -1))
        if version != product.version:
            raise ProductError(
                f"{path} has format version {version} of {expected}; this version of "
                f"carbon-biomes reads version {product.version}: rerun the script that wrote it"
            )
        yield nc


def _identity(nc: Any) -> DatasetIdentity:
    return DatasetIdentity.from_attributes({k: nc.getncattr(k) for k in nc.ncattrs()})


# ---------------------------------------------------------------------------------------------
# Native grid (regression stage)
# ---------------------------------------------------------------------------------------------
def write_native_grid(
    writer: ProductWriter,
    identity: DatasetIdentity,
    grid: NativeGrid,
    ancestors: Sequence[str | os.PathLike],
    what: str,
) -> Path:
    """Write the native grid, its cell areas and the box of every ocean cell."""
    product = PRODUCTS["native_grid"]
    with writer.netcdf(
        product,
        identity,
        ancestors,
        what,
        {"box_size_degrees": grid.box_size, "cell_area_source": _area_source(grid)},
    ) as file:
        dims, coordinates = file.native_axes(grid)
        extra = {"coordinates": coordinates} if coordinates else {}
        file.write(
            Variable("cell_box", dims, np.int32, "lattice box of the cell (latitude-major id)",
                     "1", fill_value=LABEL_FILL,
                     attributes={**extra, "comment": "missing on land and outside the lattice"}),
            grid.cell_box,
        )  # fmt: skip
        file.write(
            Variable("ocean", dims, np.int8, "ocean cell (valid SST in the first month)", "1",
                     attributes={**extra, "flag_values": [0, 1], "flag_meanings": "land ocean"}),
            grid.ocean.astype(np.int8),
        )  # fmt: skip
        unique = np.ones(grid.shape, dtype=bool) if grid.unique is None else grid.unique
        file.write(
            Variable("unique_cell", dims, np.int8,
                     "cell is a place of its own (0: it repeats the position of another ocean "
                     "cell, e.g. a halo column or the north-fold row, and is not counted)", "1",
                     attributes={**extra, "flag_values": [0, 1],
                                 "flag_meanings": "repeated_cell unique_cell"}),
            unique.astype(np.int8),
        )  # fmt: skip
        if grid.area is not None:
            file.write(
                Variable("cell_area", dims, np.float64, "area of the grid cell", "m2",
                         fill_value=FLOAT_FILL, standard_name="cell_area", attributes=extra),
                np.ma.masked_invalid(grid.area),
            )  # fmt: skip
    return file.path


def _area_source(grid: NativeGrid) -> str:
    return "areacello" if grid.area is not None else "none (areas are cell counts)"


def read_native_grid(path: str | os.PathLike) -> tuple[DatasetIdentity, NativeGrid]:
    """Read :func:`write_native_grid`'s file back."""
    with _open_product(path, PRODUCTS["native_grid"]) as nc:
        curvilinear = "latitude" in nc.variables
        lat_name, lon_name = ("latitude", "longitude") if curvilinear else ("lat", "lon")

        def bounds(name: str) -> np.ndarray | None:
            var = nc.variables[name]
            key = getattr(var, "bounds", None)
            return np.asarray(nc.variables[key][:]) if key else None

        area = nc.variables.get("cell_area")
        grid = NativeGrid(
            latitude=np.asarray(nc.variables[lat_name][:], dtype=np.float64),
            longitude=np.asarray(nc.variables[lon_name][:], dtype=np.float64),
            ocean=np.asarray(nc.variables["ocean"][:], dtype=bool),
            cell_box=np.ma.filled(nc.variables["cell_box"][:], LABEL_FILL).astype(np.int64),
            box_size=float(nc.box_size_degrees),
            area=None if area is None else np.ma.filled(area[:].astype(np.float64), np.nan),
            latitude_bounds=bounds(lat_name),
            longitude_bounds=bounds(lon_name),
            unique=np.asarray(nc.variables["unique_cell"][:], dtype=bool),
        )
        return _identity(nc), grid


# ---------------------------------------------------------------------------------------------
# Monthly RCs (regression stage)
# ---------------------------------------------------------------------------------------------
def _rc_variables(with_ice: bool) -> list[tuple[str, Variable]]:
    """(field key, variable) of the monthly-RC product, in file order.

    Box areas are stored in double precision (they are summed), everything else in single
    precision (seven significant digits, far finer than the statistical uncertainty of a box
    fit), which makes the file less than half as large. Every later stage reads these stored
    values, so detection clusters, and the classifier trains and predicts on, the same numbers;
    the reader returns them as float64. The t statistics are not stored: the reader derives
    them (t = RC / stderr).
    """
    dims = ("time", "lat", "lon")
    f8, f4 = np.float64, np.float32
    fill4 = np.float32(FLOAT_FILL)
    out: list[tuple[str, Variable]] = []
    for driver in DEFAULT_DRIVER_NAMES:
        long = _DRIVER_LONG[driver]
        unit = DRIVER_UNITS[driver]
        out += [
            (f"slopes:{driver}", Variable(f"rc_{driver}", dims, f4,
             f"regression coefficient of fCO2 on {long}", unit, fill4)),
            (f"stderr:{driver}", Variable(f"stderr_{driver}", dims, f4,
             f"standard error of the regression coefficient on {long}", unit, fill4)),
            (f"pvalues:{driver}", Variable(f"pvalue_{driver}", dims, f4,
             f"two-sided t-test p-value of the regression coefficient on {long}", "1", fill4)),
            (f"vif:{driver}", Variable(f"vif_{driver}", dims, f4,
             f"variance inflation factor of {long}", "1", fill4)),
        ]  # fmt: skip
    out += [
        ("intercept", Variable("intercept", dims, f4, "intercept of the fCO2 regression",
                               "uatm", fill4)),
        ("r2", Variable("r2", dims, f4,
                        "coefficient of determination of the fCO2 regression", "1", fill4)),
        ("f_statistic", Variable("f_statistic", dims, f4,
                                 "F statistic of the joint test of the slopes", "1", fill4)),
        ("f_pvalue", Variable("f_pvalue", dims, f4,
                              "p-value of the joint F-test of the slopes", "1", fill4)),
        ("n", Variable("n_cells", dims, np.int32,
                       "number of native grid cells used in the box fit", "1", -1)),
        ("significant", Variable("significant", dims, np.int8,
                                 "box passes the significance filter", "1", -1,
                                 attributes={"flag_values": [0, 1],
                                             "flag_meanings": "not_significant significant"})),
        ("area", Variable("ocean_area", dims, f8, "ocean area of the box", "m2", FLOAT_FILL)),
        ("sst", Variable("box_sst", dims, f4,
                         "area-weighted mean sea surface temperature of the box", "degC",
                         fill4)),
    ]  # fmt: skip
    if with_ice:
        out.append(("ice", Variable("box_ice", dims, f4,
                                    "area-weighted mean sea-ice area fraction of the box", "%",
                                    fill4)))  # fmt: skip
    return out


_MONTH_COUNTS: tuple[tuple[str, str], ...] = (
    ("n_cells_valid", "ocean cells that passed the outlier filter"),
    ("n_cells_outliers", "ocean cells rejected by the outlier filter"),
    ("n_boxes_dropped_few_points", "boxes dropped for too few valid cells"),
    ("n_boxes_dropped_singular", "boxes dropped for a constant or collinear driver"),
    ("n_boxes_dropped_constant_target", "boxes dropped for constant fCO2"),
)


def _box_field(reg: MonthRegression, key: str) -> np.ndarray | None:
    boxes = reg.all_boxes
    if ":" in key:
        name, driver = key.split(":")
        return getattr(boxes, name)[:, boxes.driver_names.index(driver)]
    if key == "significant":
        return reg.significant.astype(np.int8)
    if key in ("area", "sst", "ice"):
        return getattr(reg.stats, key)
    return getattr(boxes, key)


def write_monthly_rcs(
    writer: ProductWriter,
    identity: DatasetIdentity,
    regressions: Iterable[MonthRegression],
    months: Sequence[str],
    calendar: str,
    settings: RegressionSettings,
    *,
    with_ice: bool,
    ancestors: Sequence[str | os.PathLike],
    what: str,
) -> Path:
    """Write the monthly box regression, one month at a time as it is computed.

    Parameters
    ----------
    writer
        The script's product writer.
    identity
        The dataset.
    regressions
        The months' regressions, in the order of ``months`` (an iterator is consumed once).
    months
        ``YYYY-MM`` of every month.
    calendar
        Calendar of the input data's time axis.
    settings
        How the RCs were computed (stored whole).
    with_ice
        Whether the box statistics include sea ice.
    ancestors
        Input files (provenance, ``history``).
    what
        Caption fragment describing data and settings.
    """
    product = PRODUCTS["monthly_rcs"]
    attributes = {
        "box_size_degrees": settings.box_size,
        "regression_settings": settings_to_dict(settings),
        "comment": "fCO2 taken as CMIP spco2 converted to uatm (fCO2 equals pCO2 within 0.3 %); "
        "DIC and alkalinity in mmol m-3; SST in degC. Boxes not fitted are missing.",
    }
    variables = _rc_variables(with_ice)
    with writer.netcdf(product, identity, ancestors, what, attributes) as file:
        file.time_axis(months, calendar)
        file.lattice_axes(settings.box_size)
        n_lat, n_lon = file.nc.dimensions["lat"].size, file.nc.dimensions["lon"].size
        for _, variable in variables:
            file.define(variable)
        for name, long_name in _MONTH_COUNTS:
            file.define(Variable(name, ("time",), np.int64, long_name, "1"))
        count = 0
        for t, reg in enumerate(regressions):
            if reg.month != months[t]:
                raise ValueError(f"{identity.alias}: month {reg.month} where {months[t]} was due")
            for key, variable in variables:
                values = _box_field(reg, key)
                grid = np.ma.masked_all(n_lat * n_lon, dtype=np.dtype(variable.dtype))
                grid[reg.all_boxes.box_id] = values
                file.write(variable, grid.reshape(n_lat, n_lon), t)
            boxes = reg.all_boxes
            for (name, _), value in zip(
                _MONTH_COUNTS,
                (reg.n_cells_valid, reg.n_cells_outliers, boxes.n_dropped_few_points,
                 boxes.n_dropped_singular, boxes.n_dropped_constant_target),
                strict=True,
            ):  # fmt: skip
                file.nc.variables[name][t] = value
            count += 1
        if count != len(months):
            raise ValueError(f"{identity.alias}: {count} months regressed, {len(months)} due")
    return file.path


@dataclass(frozen=True)
class MonthlyRCs:
    """The monthly-RC product of one dataset, read month by month (never all at once).

    Attributes
    ----------
    path
        The file.
    identity
        The dataset.
    months
        ``YYYY-MM`` of every month.
    calendar
        Calendar of the time axis (that of the input data).
    settings
        How the RCs were computed.
    with_ice
        Whether the box statistics include sea ice.
    """

    path: Path
    identity: DatasetIdentity
    months: tuple[str, ...]
    calendar: str
    settings: RegressionSettings
    with_ice: bool

    def month_index(self, month: str) -> int:
        """Index of a ``YYYY-MM`` month.

        Raises
        ------
        DiagnosticError
            When the product has no such month.
        """
        if month not in self.months:
            raise DiagnosticError(
                f"{self.identity.alias}: month {month} is not in the monthly RCs of "
                f"{self.path.name}, which cover {self.months[0]} to {self.months[-1]} "
                f"({len(self.months)} months)"
            )
        return self.months.index(month)

    def iter_months(self, indices: Iterable[int] | None = None) -> Iterator[MonthRegression]:
        """The regression of the given months (all by default), read one at a time."""
        indices = range(len(self.months)) if indices is None else list(indices)
        with _open_product(self.path, PRODUCTS["monthly_rcs"]) as nc:
            for t in indices:
                yield _read_month(nc, t, self.months[t], self.settings, self.with_ice)

    def regressions(self, months: Sequence[str]) -> list[MonthRegression]:
        """The regression of some months, by ``YYYY-MM``."""
        return list(self.iter_months([self.month_index(m) for m in months]))

    def significant_slopes(self, months: Sequence[str] | None = None) -> np.ma.MaskedArray:
        """The RCs of the significant boxes on the lattice, month by month.

        Parameters
        ----------
        months
            ``YYYY-MM`` months to read (default all).

        Returns
        -------
        numpy.ma.MaskedArray
            (n_months, n_lat_boxes, n_lon_boxes, n_drivers) float32 slopes in
            :data:`~carbon_biomes.core.monthly_regression.DRIVER_UNITS`, masked where a box was
            not fitted or is not significant.
        """
        indices = (range(len(self.months)) if months is None
                   else [self.month_index(m) for m in months])  # fmt: skip
        with _open_product(self.path, PRODUCTS["monthly_rcs"]) as nc:
            shape = nc.variables["significant"].shape[1:]
            out = np.ma.masked_all((len(indices), *shape, len(DEFAULT_DRIVER_NAMES)), np.float32)
            for i, t in enumerate(indices):
                keep = np.ma.filled(nc.variables["significant"][t], 0) == 1
                for d, driver in enumerate(DEFAULT_DRIVER_NAMES):
                    values = np.ma.filled(nc.variables[f"rc_{driver}"][t].astype(np.float32),
                                          np.nan)  # fmt: skip
                    out[i, ..., d] = np.ma.masked_where(~keep | ~np.isfinite(values), values)
        return out


def _read_month(
    nc: Any, t: int, month: str, settings: RegressionSettings, with_ice: bool
) -> MonthRegression:
    n_cells = nc.variables["n_cells"][t]
    fitted = ~np.ma.getmaskarray(n_cells).reshape(-1)
    box_id = np.flatnonzero(fitted).astype(np.int64)

    def values(name: str) -> np.ndarray:
        return np.ma.getdata(nc.variables[name][t]).reshape(-1)[fitted]

    def per_driver(prefix: str) -> np.ndarray:
        return np.column_stack([values(f"{prefix}_{d}") for d in DEFAULT_DRIVER_NAMES])

    lat, lon = box_centres(box_id, settings.box_size)
    slopes = per_driver("rc").astype(np.float64)
    stderr = per_driver("stderr").astype(np.float64)
    n = values("n_cells").astype(np.int64)
    with np.errstate(divide="ignore", invalid="ignore"):
        tvalues = slopes / stderr
    counts = {name: int(nc.variables[name][t]) for name, _ in _MONTH_COUNTS}
    boxes = BoxRegression(
        box_id=box_id,
        lat=lat,
        lon=lon,
        n=n,
        slopes=slopes,
        intercept=values("intercept").astype(np.float64),
        stderr=stderr,
        tvalues=tvalues,
        pvalues=per_driver("pvalue").astype(np.float64),
        r2=values("r2").astype(np.float64),
        vif=per_driver("vif").astype(np.float64),
        f_statistic=values("f_statistic").astype(np.float64),
        f_pvalue=values("f_pvalue").astype(np.float64),
        box_size=settings.box_size,
        driver_names=DEFAULT_DRIVER_NAMES,
        n_dropped_few_points=counts["n_boxes_dropped_few_points"],
        n_dropped_singular=counts["n_boxes_dropped_singular"],
        n_dropped_constant_target=counts["n_boxes_dropped_constant_target"],
    )
    return MonthRegression(
        month=month,
        all_boxes=boxes,
        significant=values("significant").astype(bool),
        stats=BoxStatistics(
            area=values("ocean_area"),
            sst=values("box_sst").astype(np.float64),
            ice=values("box_ice").astype(np.float64) if with_ice else None,
        ),
        n_cells_valid=counts["n_cells_valid"],
        n_cells_outliers=counts["n_cells_outliers"],
    )


def read_monthly_rcs(path: str | os.PathLike) -> MonthlyRCs:
    """Open the monthly-RC product of a dataset (its metadata; months are read on demand)."""
    path = Path(path)
    with _open_product(path, PRODUCTS["monthly_rcs"]) as nc:
        settings = RegressionSettings(**json.loads(nc.regression_settings))
        return MonthlyRCs(
            path=path,
            identity=_identity(nc),
            months=tuple(month_labels(nc.variables["time"])),
            calendar=str(nc.variables["time"].calendar),
            settings=settings,
            with_ice="box_ice" in nc.variables,
        )


# ---------------------------------------------------------------------------------------------
# Detected biomes (detection stage)
# ---------------------------------------------------------------------------------------------
def flag_attributes(names: Mapping[int, str]) -> dict[str, Any]:
    """CF flag attributes of a biome label variable (names with blanks as underscores)."""
    numbers = sorted(names)
    return {
        "flag_values": np.asarray(numbers, dtype=np.int16),
        "flag_meanings": " ".join(flag_meaning(names[k]) for k in numbers),
        "biome_names": json.dumps({str(k): names[k] for k in numbers}),
    }


@dataclass(frozen=True, eq=False)
class DetectedBiomes:
    """The detection product read back: what tracking and later stages need of a detection.

    Attributes
    ----------
    identity
        The dataset.
    months
        Reference months.
    box_id, month_of_box, labels
        Every clustered box: its lattice id, index into ``months`` and biome number.
    names
        Biome number -> name.
    settings
        Detection settings (complete).
    regression_settings
        How the clustered RCs were computed.
    thresholds, delta_dist_abs, threshold_source
        The cut's (Δdist, Δvar), Δdist in Ward height, and how the pair was chosen.
    linkage
        The Ward linkage matrix of the clustered boxes.
    mean, std
        The standardization of the RCs (per driver).
    cut_nodes, merged
        Linkage node of every biome; small biomes of the cut merged into others.
    rcs_file
        The monthly-RC product the detection was made from.
    calendar
        Calendar of the time axis.
    """

    identity: DatasetIdentity
    months: tuple[str, ...]
    box_id: np.ndarray
    month_of_box: np.ndarray
    labels: np.ndarray
    names: dict[int, str]
    settings: DetectionSettings
    regression_settings: RegressionSettings
    thresholds: tuple[float, float]
    delta_dist_abs: float
    threshold_source: str
    linkage: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    cut_nodes: dict[int, int]
    merged: dict[int, int]
    rcs_file: str
    calendar: str

    def features(self, rcs: MonthlyRCs) -> np.ndarray:
        """The raw RCs of the clustered boxes, from the monthly-RC product.

        Raises
        ------
        ProductError
            When the product does not hold every clustered box as significant.
        """
        regressions = rcs.regressions(self.months)
        out = np.full((self.labels.size, len(DEFAULT_DRIVER_NAMES)), np.nan)
        for m, reg in enumerate(regressions):
            members = self.month_of_box == m
            kept = reg.kept
            position = np.searchsorted(kept.box_id, self.box_id[members])
            position = np.clip(position, 0, max(len(kept) - 1, 0))
            if len(kept) == 0 or not np.array_equal(kept.box_id[position], self.box_id[members]):
                raise ProductError(
                    f"{self.identity.alias} {reg.month}: the clustered boxes of {self.rcs_file} "
                    f"are not the significant boxes of {rcs.path.name}; rerun detection on it"
                )
            out[members] = kept.slopes[position]
        return out


def write_detected_biomes(
    writer: ProductWriter,
    identity: DatasetIdentity,
    result: DetectionResult,
    regression_settings: RegressionSettings,
    calendar: str,
    rcs_file: str | os.PathLike,
    ancestors: Sequence[str | os.PathLike],
    what: str,
) -> Path:
    """Write the detected biomes of the reference month(s) with everything needed to reuse them."""
    product = PRODUCTS["biomes"]
    boxes = result.boxes
    attributes = {
        "reference_months": list(result.months),
        "box_size_degrees": regression_settings.box_size,
        "detection_settings": settings_to_dict(result.settings),
        "regression_settings": settings_to_dict(regression_settings),
        "delta_dist": result.thresholds[0],
        "delta_dist_scale": result.settings.dist_scale,
        "delta_dist_ward_height": result.delta_dist_abs,
        "delta_var": result.thresholds[1],
        "threshold_choice": result.threshold_source,
        "node_spread": result.settings.spread,
        "cut_nodes": {str(k): v for k, v in result.cut_nodes.items()},
        "merged_biomes": {str(k): v for k, v in result.merged.items()},
        "monthly_rcs_file": Path(rcs_file).name,
    }
    with writer.netcdf(product, identity, ancestors, what, attributes) as file:
        file.time_axis(result.months, calendar)
        file.lattice_axes(regression_settings.box_size)
        n_lat, n_lon = file.nc.dimensions["lat"].size, file.nc.dimensions["lon"].size
        labels = np.ma.masked_all((len(result.months), n_lat * n_lon), dtype=np.int16)
        labels[boxes.month_of_box, boxes.box_id] = result.labels
        file.write(
            Variable("biome", ("time", "lat", "lon"), np.int16,
                     "carbon biome detected by Ward clustering", "1", LABEL_FILL,
                     attributes=flag_attributes(result.names)),
            labels.reshape(len(result.months), n_lat, n_lon),
        )  # fmt: skip
        file.nc.createDimension("merge", result.linkage.shape[0])
        file.nc.createDimension("linkage_column", 4)
        file.nc.createDimension("driver", len(DEFAULT_DRIVER_NAMES))
        file.write(
            Variable("linkage", ("merge", "linkage_column"), np.float64,
                     "Ward linkage matrix of the clustered boxes (scipy layout: child, child, "
                     "height, size)", None,
                     attributes={"comment": "leaves are the clustered boxes in the order of the "
                                 "biome variable (time, then latitude-major box id); heights "
                                 "are Ward distances of the standardized RCs (dimensionless)"}),
            result.linkage,
        )  # fmt: skip
        file.write(
            Variable("rc_mean", ("driver",), np.float64,
                     "mean of the raw regression coefficients (standardization)", None,
                     attributes={"drivers": " ".join(DEFAULT_DRIVER_NAMES),
                                 "units_per_driver": _UNITS_PER_DRIVER}),
            result.mean,
        )  # fmt: skip
        file.write(
            Variable("rc_std", ("driver",), np.float64,
                     "sample standard deviation of the raw regression coefficients "
                     "(standardization)", None,
                     attributes={"drivers": " ".join(DEFAULT_DRIVER_NAMES),
                                 "units_per_driver": _UNITS_PER_DRIVER}),
            result.std,
        )  # fmt: skip
    return file.path


def read_detected_biomes(path: str | os.PathLike) -> DetectedBiomes:
    """Read :func:`write_detected_biomes`'s file back."""
    with _open_product(path, PRODUCTS["biomes"]) as nc:
        biome = nc.variables["biome"]
        grid = biome[:]
        flat = grid.reshape(grid.shape[0], -1)
        month_of_box, box_id = np.nonzero(~np.ma.getmaskarray(flat))
        return DetectedBiomes(
            identity=_identity(nc),
            months=tuple(month_labels(nc.variables["time"])),
            box_id=box_id.astype(np.int64),
            month_of_box=month_of_box.astype(np.int64),
            labels=np.asarray(flat[month_of_box, box_id], dtype=np.int64),
            names={int(k): v for k, v in json.loads(biome.biome_names).items()},
            settings=DetectionSettings(**json.loads(nc.detection_settings)),
            regression_settings=RegressionSettings(**json.loads(nc.regression_settings)),
            thresholds=(float(nc.delta_dist), float(nc.delta_var)),
            delta_dist_abs=float(nc.delta_dist_ward_height),
            threshold_source=str(nc.threshold_choice),
            linkage=np.asarray(nc.variables["linkage"][:]),
            mean=np.asarray(nc.variables["rc_mean"][:]),
            std=np.asarray(nc.variables["rc_std"][:]),
            cut_nodes={int(k): int(v) for k, v in json.loads(nc.cut_nodes).items()},
            merged={int(k): int(v) for k, v in json.loads(nc.merged_biomes).items()},
            rcs_file=str(nc.monthly_rcs_file),
            calendar=str(nc.variables["time"].calendar),
        )


# ---------------------------------------------------------------------------------------------
# Labels on the native grid (detection and tracking)
# ---------------------------------------------------------------------------------------------
def write_native_labels(
    writer: ProductWriter,
    product: Product,
    identity: DatasetIdentity,
    grid: NativeGrid,
    months: Sequence[str],
    calendar: str,
    lattice_labels: np.ma.MaskedArray,
    names: Mapping[int, str],
    long_name: str,
    ancestors: Sequence[str | os.PathLike],
    what: str,
) -> Path:
    """Write labels on the native grid, one month at a time (each cell takes its box's label).

    Parameters
    ----------
    writer
        The script's product writer.
    product
        ``biomes_native_grid`` or ``tracked_biomes_native_grid``.
    identity
        The dataset.
    grid
        Its native grid with the box of every cell.
    months, calendar
        The months of the labels and the calendar of the time axis.
    lattice_labels
        (n_months, n_lat_boxes, n_lon_boxes) labels on the lattice, masked where none.
    names
        Biome number -> name.
    long_name
        Long name of the label variable.
    ancestors
        Input files (provenance, ``history``).
    what
        Caption fragment describing data and settings.
    """
    flat = np.ma.filled(lattice_labels.reshape(len(months), -1), LABEL_FILL).astype(np.int16)
    with writer.netcdf(
        product, identity, ancestors, what, {"box_size_degrees": grid.box_size}
    ) as file:
        file.time_axis(months, calendar)
        dims, coordinates = file.native_axes(grid)
        variable = Variable(
            "biome", ("time", *dims), np.int16, long_name, "1", LABEL_FILL,
            attributes={**flag_attributes(names),
                        **({"coordinates": coordinates} if coordinates else {})},
        )  # fmt: skip
        file.define(variable)
        for t in range(len(months)):
            native = grid.to_native(flat[t], LABEL_FILL)
            file.write(variable, np.ma.masked_equal(native, LABEL_FILL), t)
    return file.path


def read_native_labels(
    path: str | os.PathLike, product: Product
) -> tuple[DatasetIdentity, tuple[str, ...], np.ma.MaskedArray, dict[int, str]]:
    """Read labels on the native grid: identity, months, labels (time, ...), biome names."""
    with _open_product(path, product) as nc:
        biome = nc.variables["biome"]
        return (
            _identity(nc),
            tuple(month_labels(nc.variables["time"])),
            biome[:],
            {int(k): v for k, v in json.loads(biome.biome_names).items()},
        )


# ---------------------------------------------------------------------------------------------
# Tracked biomes (tracking stage)
# ---------------------------------------------------------------------------------------------
def write_tracked_biomes(
    writer: ProductWriter,
    identity: DatasetIdentity,
    tracked: TrackedBiomes,
    calendar: str,
    attributes: Mapping[str, Any],
    ancestors: Sequence[str | os.PathLike],
    what: str,
    product: Product | None = None,
) -> Path:
    """Write the labels, probabilities, OOD flags and box areas of every month.

    ``product`` is the tracked biomes (default) or the common biomes of the comparison.
    """
    product = product or PRODUCTS["tracked_biomes"]
    dims = ("time", "lat", "lon")
    with writer.netcdf(
        product, identity, ancestors, what, {"box_size_degrees": tracked.box_size, **attributes}
    ) as file:
        file.time_axis(tracked.months, calendar)
        file.lattice_axes(tracked.box_size)
        file.write(
            Variable("biome", dims, np.int16, "carbon biome assigned by the biome classifier",
                     "1", LABEL_FILL, attributes=flag_attributes(tracked.names)),
            tracked.labels,
        )  # fmt: skip
        file.write(
            Variable("biome_probability", dims, np.float32,
                     "softmax probability of the assigned biome", "1", np.float32(FLOAT_FILL)),
            tracked.probability,
        )  # fmt: skip
        file.write(
            Variable("out_of_distribution", dims, np.int8,
                     "box regression coefficients outside the training distribution "
                     "(Mahalanobis distance to the nearest biome centroid beyond the training "
                     "quantile)", "1", -1,
                     attributes={"flag_values": [0, 1],
                                 "flag_meanings": "in_distribution out_of_distribution"}),
            tracked.ood,
        )  # fmt: skip
        file.write(
            Variable("ocean_area", dims, np.float64, "ocean area of the classified box", "m2",
                     FLOAT_FILL),
            tracked.box_area,
        )  # fmt: skip
    return file.path


def read_tracked_biomes(path: str | os.PathLike, product: Product | None = None) -> TrackedBiomes:
    """Read :func:`write_tracked_biomes`'s file back (``product``: as written)."""
    with _open_product(path, product or PRODUCTS["tracked_biomes"]) as nc:
        biome = nc.variables["biome"]
        return TrackedBiomes(
            dataset=str(nc.dataset_alias),
            months=month_labels(nc.variables["time"]),
            labels=np.ma.asarray(biome[:]),
            probability=np.ma.asarray(nc.variables["biome_probability"][:]),
            ood=np.ma.asarray(nc.variables["out_of_distribution"][:]),
            box_area=np.ma.asarray(nc.variables["ocean_area"][:]),
            names={int(k): v for k, v in json.loads(biome.biome_names).items()},
            box_size=float(nc.box_size_degrees),
        )


# ---------------------------------------------------------------------------------------------
# Tables
# ---------------------------------------------------------------------------------------------
def read_table(path: str | os.PathLike, product: Product) -> list[dict[str, str]]:
    """Read a table product, checking its columns.

    Raises
    ------
    ProductError
        When the header is not the product's.
    """
    header, rows = read_csv(path)
    if product.columns and tuple(header) != product.columns:
        raise ProductError(
            f"{path} does not have the columns of the {product.name} table: {header}"
        )
    return rows


# ---------------------------------------------------------------------------------------------
# Analysis stage: coverage and frequency maps
# ---------------------------------------------------------------------------------------------
def _biome_axis(file: NetcdfFile, names: Mapping[int, str]) -> None:
    """A ``biome`` dimension with the biome numbers as coordinate and their names as labels."""
    numbers = sorted(names)
    file.nc.createDimension("biome", len(numbers))
    file.write(
        Variable("biome", ("biome",), np.int16, "carbon biome number", "1",
                 attributes={"biome_names": {str(k): names[k] for k in numbers}}),
        np.asarray(numbers, dtype=np.int16),
    )  # fmt: skip
    file.write(Variable("biome_name", ("biome",), str, "carbon biome name", None),
               [names[k] for k in numbers])  # fmt: skip


def _biome_names(nc: Any) -> dict[int, str]:
    return {int(k): v for k, v in json.loads(nc.variables["biome"].biome_names).items()}


def write_coverage(
    writer: ProductWriter,
    identity: DatasetIdentity,
    table: Any,
    names: Mapping[int, str],
    calendar: str,
    regions: Sequence[Any],
    ancestors: Sequence[str | os.PathLike],
    what: str,
) -> Path:
    """Write a :class:`~carbon_biomes.core.coverage.CoverageTable` (time x region x biome).

    Parameters
    ----------
    writer, identity, ancestors, what
        As for every product.
    table
        The coverage table.
    names
        Biome number -> name (the table's biome numbers).
    calendar
        Calendar of the time axis (that of the input data).
    regions
        The :class:`~carbon_biomes.core.regions.Region` objects (their bounds are stored).
    """
    if tuple(sorted(names)) != tuple(table.biome_numbers):
        raise DiagnosticError(
            f"{identity.alias}: the coverage table has biomes {table.biome_numbers}, the names "
            f"{sorted(names)}"
        )
    attributes = {
        "area_source": table.area_source,
        "regions": json.dumps([region.to_mapping() for region in regions]),
        "comment": "coverage_percent sums to 100 over the biomes wherever any ocean of the "
        "region is classified; it is missing in a month without classified ocean",
    }
    with writer.netcdf(PRODUCTS["coverage"], identity, ancestors, what, attributes) as file:
        file.time_axis(list(table.months), calendar)
        file.nc.createDimension("region", len(table.regions))
        file.write(Variable("region_name", ("region",), str, "region name", None),
                   list(table.regions))  # fmt: skip
        _biome_axis(file, names)
        labels = {"coordinates": "region_name biome_name"}
        file.write(
            Variable("coverage_percent", ("time", "region", "biome"), np.float64,
                     "biome area as a percentage of the region's classified ocean area", "%",
                     FLOAT_FILL, attributes=labels),
            np.moveaxis(table.coverage_percent, 1, 0),
        )  # fmt: skip
        file.write(
            Variable("biome_area", ("time", "region", "biome"), np.float64,
                     "ocean area of the region carrying the biome", "m2", FLOAT_FILL,
                     attributes=labels),
            np.moveaxis(table.biome_area, 1, 0),
        )  # fmt: skip
        file.write(
            Variable("classified_area", ("time", "region"), np.float64,
                     "classified ocean area of the region", "m2", FLOAT_FILL,
                     attributes={"coordinates": "region_name"}),
            table.classified_area.T,
        )  # fmt: skip
        file.write(
            Variable("unclassified_percent", ("time", "region"), np.float64,
                     "unclassified ocean area as a percentage of the region's ocean area", "%",
                     FLOAT_FILL, attributes={"coordinates": "region_name"}),
            table.unclassified_percent.T,
        )  # fmt: skip
        file.write(
            Variable("region_ocean_area", ("region",), np.float64, "ocean area of the region",
                     "m2", attributes={"coordinates": "region_name"}),
            table.ocean_area,
        )  # fmt: skip
    return file.path


def read_coverage(path: str | os.PathLike) -> tuple[DatasetIdentity, Any, dict[int, str]]:
    """Read :func:`write_coverage`'s file: identity, CoverageTable, biome names."""
    from carbon_biomes.core.coverage import CoverageTable

    with _open_product(path, PRODUCTS["coverage"]) as nc:
        names = _biome_names(nc)
        classified = np.ma.filled(nc.variables["classified_area"][:], np.nan).T
        ocean = np.asarray(nc.variables["region_ocean_area"][:], dtype=np.float64)
        unclassified = np.ma.filled(nc.variables["unclassified_percent"][:], np.nan).T
        table = CoverageTable(
            regions=tuple(str(r) for r in nc.variables["region_name"][:]),
            months=tuple(month_labels(nc.variables["time"])),
            biome_numbers=tuple(sorted(names)),
            biome_area=np.moveaxis(np.ma.filled(nc.variables["biome_area"][:], np.nan), 0, 1),
            classified_area=classified,
            unclassified_area=unclassified / 100.0 * ocean[:, None],
            ocean_area=ocean,
            area_source=str(nc.area_source),
        )
        return _identity(nc), table, names


def write_frequency_maps(
    writer: ProductWriter,
    identity: DatasetIdentity,
    maps: Any,
    names: Mapping[int, str],
    box_size: float,
    ancestors: Sequence[str | os.PathLike],
    what: str,
    grid: NativeGrid | None = None,
) -> Path:
    """Write :class:`~carbon_biomes.core.coverage.FrequencyMaps` of the box lattice.

    With ``grid``, the native-grid product is written instead: every native ocean cell takes
    the frequency of its box, written one biome and calendar month at a time.
    """
    product = PRODUCTS["frequency_maps" if grid is None else "frequency_maps_native_grid"]
    with writer.netcdf(
        product, identity, ancestors, what, {"box_size_degrees": box_size}
    ) as file:
        _biome_axis(file, names)
        file.nc.createDimension("month", 12)
        file.write(Variable("month", ("month",), np.int16, "calendar month", "1",
                            attributes={"comment": "1 = January"}),
                   np.arange(1, 13, dtype=np.int16))  # fmt: skip
        if grid is None:
            file.lattice_axes(box_size)
            dims: tuple[str, ...] = ("lat", "lon")
            extra: dict[str, Any] = {}
        else:
            dims, coordinates = file.native_axes(grid)
            extra = {"coordinates": coordinates} if coordinates else {}
        n_space = int(np.prod(maps.overall.shape[1:]))

        def native(values: np.ndarray) -> np.ma.MaskedArray:
            values = np.asarray(values, dtype=np.float64)
            if grid is None:
                return np.ma.masked_invalid(values)
            return np.ma.masked_invalid(grid.to_native(values.reshape(n_space), np.nan))

        frequency = Variable(
            "frequency", ("biome", "month", *dims), np.float32,
            "percentage of the years in which the location carries the biome in the calendar "
            "month (among the years in which it is classified)", "%", np.float32(FLOAT_FILL),
            attributes={"coordinates": " ".join(["biome_name", *extra.values()])},
        )  # fmt: skip
        overall = Variable(
            "frequency_all_months", ("biome", *dims), np.float32,
            "percentage of the classified months in which the location carries the biome", "%",
            np.float32(FLOAT_FILL),
            attributes={"coordinates": " ".join(["biome_name", *extra.values()])},
        )  # fmt: skip
        years = Variable(
            "years_classified", ("month", *dims), np.int16,
            "number of years in which the location is classified in the calendar month", "1",
            np.int16(-1), attributes=extra,
        )  # fmt: skip
        file.define(frequency)
        file.define(overall)
        file.define(years)
        for k in range(len(maps.biome_numbers)):
            for m in range(12):
                file.write(frequency, native(maps.monthly[k, m]), (k, m))
            file.write(overall, native(maps.overall[k]), k)
        for m in range(12):
            counts = native(maps.years_classified[m])
            file.write(years, np.ma.masked_array(np.ma.filled(counts, -1).astype(np.int16),
                                                 mask=np.ma.getmaskarray(counts)), m)  # fmt: skip
        file.write(Variable("years", ("month",), np.int16,
                            "number of years of the data holding the calendar month", "1"),
                   np.asarray(maps.years, dtype=np.int16))  # fmt: skip
    return file.path


def read_frequency_maps(
    path: str | os.PathLike, product: Product | None = None
) -> tuple[DatasetIdentity, Any, dict[int, str]]:
    """Read :func:`write_frequency_maps`'s file: identity, FrequencyMaps, biome names."""
    from carbon_biomes.core.coverage import FrequencyMaps

    with _open_product(path, product or PRODUCTS["frequency_maps"]) as nc:
        names = _biome_names(nc)
        years_classified = np.ma.filled(nc.variables["years_classified"][:].astype(float), 0)
        return (
            _identity(nc),
            FrequencyMaps(
                biome_numbers=tuple(sorted(names)),
                monthly=np.ma.filled(nc.variables["frequency"][:].astype(np.float64), np.nan),
                overall=np.ma.filled(
                    nc.variables["frequency_all_months"][:].astype(np.float64), np.nan
                ),
                years_classified=years_classified.astype(np.int64),
                months_classified=years_classified.sum(axis=0).astype(np.int64),
                years=np.asarray(nc.variables["years"][:], dtype=np.int64),
            ),
            names,
        )


# ---------------------------------------------------------------------------------------------
# Analysis stage: trends of the regression coefficients
# ---------------------------------------------------------------------------------------------
def write_rc_trends(
    writer: ProductWriter,
    identity: DatasetIdentity,
    trends: Any,
    names: Mapping[int, str],
    box_size: float,
    calendar: str,
    ancestors: Sequence[str | os.PathLike],
    what: str,
) -> Path:
    """Write :class:`~carbon_biomes.core.rc_trends.RCTrends`: box maps and biome series.

    Per driver ``d``: ``rc_trend_{d}`` (lat, lon) per decade with ``rc_trend_low_{d}`` and
    ``rc_trend_high_{d}``, ``rc_trend_pvalue_{d}``, ``rc_trend_significant_{d}``, ``n_months_{d}``;
    and ``biome_rc_{d}`` (time, biome) the area-weighted biome-mean RC with its trend per
    decade ``biome_rc_trend_{d}`` (biome) and p-value.
    """
    from carbon_biomes.core.rc_trends import rc_units

    decadal = trends.decadal()
    attributes = {
        "trend_method": trends.method,
        "trend_alpha": trends.alpha,
        "min_length": trends.min_length,
        "min_coverage": trends.min_coverage,
        "box_size_degrees": box_size,
        "comment": "box trends: Theil-Sen slope of the deseasonalized monthly RCs of the "
        "significant boxes against time, Mann-Kendall test corrected for autocorrelation; "
        "missing where a box has RCs in fewer than min_coverage of the months",
    }
    with writer.netcdf(PRODUCTS["rc_trends"], identity, ancestors, what, attributes) as file:
        file.time_axis(list(trends.months), calendar)
        file.lattice_axes(box_size)
        _biome_axis(file, names)
        lattice = ("lat", "lon")
        fill = np.float32(FLOAT_FILL)
        for d, driver in enumerate(trends.driver_names):
            units = rc_units(driver)
            per = f"{units} (10 year)-1"  # per decade, in a form UDUNITS parses
            long = _DRIVER_LONG.get(driver, driver)
            for name, values, long_name, unit in (
                (f"rc_trend_{driver}", trends.box_trend[d],
                 f"trend of the regression coefficient on {long}", per),
                (f"rc_trend_low_{driver}", trends.box_trend_low[d],
                 f"lower confidence bound of the trend of the RC on {long}", per),
                (f"rc_trend_high_{driver}", trends.box_trend_high[d],
                 f"upper confidence bound of the trend of the RC on {long}", per),
                (f"rc_trend_pvalue_{driver}", trends.box_p_value[d],
                 f"Mann-Kendall p-value of the trend of the RC on {long}", "1"),
            ):  # fmt: skip
                file.write(Variable(name, lattice, np.float32, long_name, unit, fill), values)
            file.write(
                Variable(f"rc_trend_significant_{driver}", lattice, np.int8,
                         f"trend of the RC on {long} is significant", "1", np.int8(-1),
                         attributes={"flag_values": [0, 1],
                                     "flag_meanings": "not_significant significant"}),
                np.ma.masked_where(~np.isfinite(trends.box_trend[d]),
                                   trends.box_significant[d].astype(np.int8)),
            )  # fmt: skip
            file.write(
                Variable(f"n_months_{driver}", lattice, np.int16,
                         f"number of months with a significant RC on {long}", "1"),
                trends.box_n[d].astype(np.int16),
            )  # fmt: skip
            file.write(
                Variable(f"biome_rc_{driver}", ("time", "biome"), np.float32,
                         f"area-weighted mean regression coefficient on {long} of the biome's "
                         "boxes", units, fill, attributes={"coordinates": "biome_name"}),
                trends.biome_series[:, :, d],
            )  # fmt: skip
            file.write(
                Variable(f"biome_rc_trend_{driver}", ("biome",), np.float32,
                         f"trend of the deseasonalized biome-mean RC on {long}", per, fill,
                         attributes={"coordinates": "biome_name"}),
                decadal.per_decade[:, d],
            )  # fmt: skip
            file.write(
                Variable(f"biome_rc_trend_pvalue_{driver}", ("biome",), np.float32,
                         f"Mann-Kendall p-value of the trend of the biome-mean RC on {long}",
                         "1", fill, attributes={"coordinates": "biome_name"}),
                trends.biome_trend.p_value[:, d],
            )  # fmt: skip
    return file.path


def read_rc_trends(path: str | os.PathLike) -> tuple[DatasetIdentity, dict[str, Any]]:
    """Read :func:`write_rc_trends`'s file: identity and a mapping of its arrays and names.

    The mapping holds ``months``, ``biome_names``, ``drivers`` and, per driver ``d``,
    ``box_trend[d]``, ``box_p_value[d]``, ``box_significant[d]``, ``biome_series[d]``,
    ``biome_trend[d]`` (masked arrays as stored).
    """
    with _open_product(path, PRODUCTS["rc_trends"]) as nc:
        drivers = [name[len("rc_trend_") :] for name in nc.variables
                   if name.startswith("rc_trend_") and name.count("_") == 2]  # fmt: skip
        out: dict[str, Any] = {
            "months": month_labels(nc.variables["time"]),
            "biome_names": _biome_names(nc),
            "drivers": drivers,
            "box_trend": {}, "box_p_value": {}, "box_significant": {}, "biome_series": {},
            "biome_trend": {},
        }  # fmt: skip
        for d in drivers:
            out["box_trend"][d] = nc.variables[f"rc_trend_{d}"][:]
            out["box_p_value"][d] = nc.variables[f"rc_trend_pvalue_{d}"][:]
            out["box_significant"][d] = nc.variables[f"rc_trend_significant_{d}"][:]
            out["biome_series"][d] = nc.variables[f"biome_rc_{d}"][:]
            out["biome_trend"][d] = nc.variables[f"biome_rc_trend_{d}"][:]
        return _identity(nc), out


# ---------------------------------------------------------------------------------------------
# Comparison stage
# ---------------------------------------------------------------------------------------------
def write_agreement_map(
    writer: ProductWriter,
    fraction: np.ma.MaskedArray,
    count: np.ndarray,
    box_size: float,
    reference: DatasetIdentity,
    models: Sequence[DatasetIdentity],
    ancestors: Sequence[str | os.PathLike],
    what: str,
) -> Path:
    """Write the fraction of the models agreeing with the reference in every box."""
    with writer.netcdf(
        PRODUCTS["comparison_agreement"], None, ancestors, what,
        {"box_size_degrees": float(box_size), "reference_alias": reference.alias,
         "reference_dataset": reference.dataset,
         "models": " ".join(model.alias for model in models)},
    ) as file:  # fmt: skip
        file.lattice_axes(box_size)
        file.write(
            Variable("agreement_fraction", ("lat", "lon"), np.float32,
                     "fraction of the models whose common biome equals the reference's", "1",
                     np.float32(FLOAT_FILL),
                     attributes={"comment": "a model agrees at a box when its label equals "
                                 "the reference's in at least half of the shared months in "
                                 "which both classify the box"}),
            fraction,
        )  # fmt: skip
        file.write(
            Variable("number_of_models", ("lat", "lon"), np.int32,
                     "number of models compared", "1"),
            np.asarray(count, dtype=np.int32),
        )  # fmt: skip
    return file.path


def read_agreement_map(path: str | os.PathLike) -> tuple[np.ma.MaskedArray, np.ndarray, str]:
    """Read :func:`write_agreement_map`'s file: fraction, number of models, reference alias."""
    with _open_product(path, PRODUCTS["comparison_agreement"]) as nc:
        fraction = np.ma.asarray(nc.variables["agreement_fraction"][:])
        return fraction, np.asarray(nc.variables["number_of_models"][:]), str(nc.reference_alias)

