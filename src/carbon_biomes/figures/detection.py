"""Figures of the detection stage: biome map, dendrogram, RC bars, threshold scan."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from matplotlib.figure import Figure

from carbon_biomes.core.detection import DetectionResult, scan_table
from carbon_biomes.core.monthly_regression import NativeGrid
from carbon_biomes.figures import plotting

__all__ = ["biome_map_figure", "dendrogram_figure", "rc_bars_figure", "scan_figure"]


def land_of(grid: NativeGrid) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Latitude, longitude and land mask of a native grid, for the maps' land shading."""
    return grid.latitude, grid.longitude, ~grid.ocean


def biome_map_figure(
    label_grid: np.ma.MaskedArray,
    box_size: float,
    names: Mapping[int, str],
    grid: NativeGrid,
    title: str,
    *,
    flagged: np.ndarray | None = None,
    flagged_label: str = "flagged box",
) -> Figure:
    """Map of biome labels on the box lattice with land from the dataset's own mask.

    Parameters
    ----------
    label_grid
        (n_lat_boxes, n_lon_boxes) biome numbers, masked where no box was classified.
    box_size
        Box size in degrees.
    names
        Biome number -> name.
    grid
        The dataset's native grid (its land is shaded).
    title
        Figure title.
    flagged
        Optional (n_lat_boxes, n_lon_boxes) booleans: boxes to hatch
        (:func:`~carbon_biomes.figures.plotting.plot_biome_map`).
    flagged_label
        Legend text of the hatched boxes.

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig = plotting.new_figure(10.0, 6.0)
    ax = plotting.map_axes(fig)
    plotting.plot_biome_map(
        ax,
        label_grid,
        box_size,
        names,
        land=land_of(grid),
        title=title,
        flagged=flagged,
        flagged_label=flagged_label,
    )
    return fig


def dendrogram_figure(result: DetectionResult, title: str) -> Figure:
    """Dendrogram of the Ward linkage with the cut nodes marked and numbered."""
    fig = plotting.new_figure(11.0, 5.5)
    ax = fig.add_subplot(111)
    plotting.plot_dendrogram(ax, result.linkage, result.cut_nodes, result.names, title=title)
    return fig


def rc_bars_figure(result: DetectionResult, title: str) -> Figure:
    """Grouped bars of the mean standardized RCs of every biome."""
    fig = plotting.new_figure(9.0, 5.0)
    ax = fig.add_subplot(111)
    # signature rows follow the sorted biome numbers, as the bars do
    plotting.plot_rc_bars(ax, result.names, result.signature.mean_z, title=title)
    return fig


def scan_figure(result: DetectionResult, title: str) -> Figure:
    """Heat maps of the threshold scan: biome count and the selection scores."""
    settings = result.settings
    quantities = [
        ("n_biomes", "number of biomes", "{:.0f}", "viridis"),
        ("silhouette", "silhouette (higher is better)", "{:.2f}", "magma"),
        ("calinski_harabasz", "Calinski-Harabasz (higher is better)", "{:.0f}", "magma"),
        ("gmm_bic", "Gaussian-mixture BIC (lower is better)", "{:.0f}", "magma_r"),
        ("paper_score", "paper's score (cannot select K)", "{:.0f}", "cividis"),
    ]
    if any(np.isfinite(row.get("stability", np.nan)) for row in result.scan):
        quantities.append(("stability", "bootstrap stability (ARI)", "{:.2f}", "magma"))
    fig = plotting.new_figure(15.0, 8.0)
    axes = fig.subplots(2, 3).ravel()
    for ax, (key, label, fmt, cmap) in zip(axes, quantities, strict=False):
        table = scan_table(result.scan, key, settings.scan_delta_dist, settings.scan_delta_var)
        plotting.plot_scan_heatmap(
            ax,
            table,
            settings.scan_delta_dist,
            settings.scan_delta_var,
            label=label,
            selected=result.thresholds,
            fmt=fmt,
            cmap=cmap,
        )
        if settings.dist_scale == "root":
            ax.set_xlabel("Δdist (fraction of the root height)")
    for ax in axes[len(quantities) :]:
        ax.set_axis_off()
    fig.suptitle(title, fontsize=11)
    return fig
