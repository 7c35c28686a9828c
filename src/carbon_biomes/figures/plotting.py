"""Figures. Every function draws on an ``Axes`` it is given and never touches global state.

Maps use cartopy projections but no downloaded features: land is drawn from the data's own
land mask (cells that are masked in every variable), so nothing is fetched at run time.
Biome colours depend on the biome *name* only (family palette + numeral), so that the same name
has the same colour in every figure, month and model.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.colors import BoundaryNorm, ListedColormap, to_hex  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

__all__ = [
    "LAND_COLOUR",
    "biome_colour",
    "biome_colours",
    "dendrogram_node_positions",
    "map_axes",
    "new_figure",
    "plot_biome_map",
    "plot_confusion_matrix",
    "plot_dendrogram",
    "plot_rc_bars",
    "plot_scan_heatmap",
    "plot_scores_bars",
    "plot_training_curves",
]

logger = logging.getLogger(__name__)

LAND_COLOUR = "#d9d4c7"
_FAMILY_PALETTES: dict[str, list[str]] = {
    "ICE": ["#5e3c99", "#8073ac", "#b2abd2", "#3f007d", "#9e9ac8"],
    "SUBTR": ["#d7301f", "#fc8d59", "#fdbb84", "#b30000", "#ef6548", "#fee8c8"],
    "SUBP+UP": ["#1b7837", "#2c7fb8", "#41b6c4", "#7fbc41", "#253494", "#a1dab4", "#006837"],
}
_OTHER = ["#8c510a", "#c51b7d", "#7f7f7f", "#bf812d", "#01665e", "#e7298a", "#66a61e"]
_NUMERALS = ["I", "II", "III", "IV", "V", "VI", "VII", "VIII", "IX", "X"]


def biome_colour(name: str) -> str:
    """Return the colour of a biome name (same name, same colour everywhere)."""
    family, _, numeral = name.partition(" ")
    palette = _FAMILY_PALETTES.get(family)
    if palette is None:
        digest = sum(ord(char) * (i + 1) for i, char in enumerate(name))
        return _OTHER[digest % len(_OTHER)]
    rank = _NUMERALS.index(numeral) if numeral in _NUMERALS else 0
    return palette[rank % len(palette)]


def biome_colours(names: Mapping[int, str]) -> dict[int, str]:
    """Biome number -> colour."""
    return {number: to_hex(biome_colour(name)) for number, name in names.items()}


def new_figure(width: float = 10.0, height: float = 5.5) -> Figure:
    """A new figure not registered with pyplot's global state."""
    return Figure(figsize=(width, height), layout="constrained")


def map_axes(fig: Figure, position: Any = 111, central_longitude: float = 200.0) -> Axes:
    """Add a Robinson-projection map axes (Pacific-centred by default) to a figure."""
    import cartopy.crs as ccrs

    args = position if isinstance(position, tuple) else (position,)
    ax = fig.add_subplot(*args, projection=ccrs.Robinson(central_longitude=central_longitude))
    ax.set_global()
    return ax


def _land_on_regular_grid(
    latitude: np.ndarray, longitude: np.ndarray, land: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ma.MaskedArray]:
    """Bin a curvilinear land mask onto a regular grid of about the native resolution."""
    # twice the mean native spacing, so that no bin falls between the cells of a stretched grid
    resolution = max(0.5, 2.0 * float(np.sqrt(360.0 * 180.0 / land.size)))
    resolution = 180.0 / np.ceil(180.0 / resolution)
    n_lat, n_lon = round(180.0 / resolution), round(360.0 / resolution)
    i = np.clip(((latitude + 90.0) // resolution).astype(int), 0, n_lat - 1)
    j = np.clip((((longitude + 180.0) % 360.0) // resolution).astype(int), 0, n_lon - 1)
    index = (i * n_lon + j).ravel()
    cells = np.bincount(index, minlength=n_lat * n_lon)
    land_cells = np.bincount(index, weights=land.ravel().astype(float), minlength=n_lat * n_lon)
    with np.errstate(invalid="ignore", divide="ignore"):
        fraction = (land_cells / cells).reshape(n_lat, n_lon)
    lat_edges = -90.0 + resolution * np.arange(n_lat + 1)
    lon_edges = -180.0 + resolution * np.arange(n_lon + 1)
    return lat_edges, lon_edges, np.ma.masked_where(~(fraction >= 0.5), np.ones_like(fraction))


def _draw_land(ax: Axes, latitude: np.ndarray, longitude: np.ndarray, land: np.ndarray) -> None:
    """Shade land cells (True in ``land``) of the native grid; no external coastline data."""
    import cartopy.crs as ccrs

    cmap = ListedColormap([LAND_COLOUR])
    if latitude.ndim == 1:
        shading = np.ma.masked_where(~land, np.ones(land.shape))
        ax.pcolormesh(
            longitude,
            latitude,
            shading,
            cmap=cmap,
            transform=ccrs.PlateCarree(),
            shading="nearest",
            rasterized=True,
            zorder=0,
        )
    else:
        lat_edges, lon_edges, shading = _land_on_regular_grid(latitude, longitude, land)
        ax.pcolormesh(
            lon_edges,
            lat_edges,
            shading,
            cmap=cmap,
            transform=ccrs.PlateCarree(),
            rasterized=True,
            zorder=0,
        )


def plot_biome_map(
    ax: Axes,
    label_grid: np.ma.MaskedArray,
    box_size: float,
    names: Mapping[int, str],
    *,
    land: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    title: str = "",
    legend: bool = True,
) -> None:
    """Draw biome labels on the box lattice.

    Parameters
    ----------
    ax
        A cartopy map axes (see :func:`map_axes`).
    label_grid
        (n_lat_boxes, n_lon_boxes) biome numbers, masked where no box was classified.
    box_size
        Box size in degrees.
    names
        Biome number -> name (colours follow the names).
    land
        ``(latitude, longitude, land_mask)`` of the native grid to shade land from the data.
    title
        Axes title.
    legend
        Draw a legend with the biome names.
    """
    import cartopy.crs as ccrs

    numbers = sorted(names)
    colours = biome_colours(names)
    cmap = ListedColormap([colours[k] for k in numbers])
    norm = BoundaryNorm(np.arange(len(numbers) + 1) - 0.5, len(numbers))
    index = np.ma.masked_all(label_grid.shape, dtype=float)
    for i, k in enumerate(numbers):
        index[np.ma.filled(label_grid == k, False)] = i
    lat_edges = -90.0 + box_size * np.arange(label_grid.shape[0] + 1)
    lon_edges = -180.0 + box_size * np.arange(label_grid.shape[1] + 1)
    if land is not None:
        _draw_land(ax, *land)
    ax.pcolormesh(
        lon_edges,
        lat_edges,
        index,
        cmap=cmap,
        norm=norm,
        transform=ccrs.PlateCarree(),
        rasterized=True,
    )
    ax.gridlines(linewidth=0.3, color="0.6", alpha=0.6)
    if title:
        ax.set_title(title, fontsize=10)
    if legend:
        from matplotlib.patches import Patch

        handles = [
            Patch(facecolor=colours[k], edgecolor="0.3", label=f"{k}: {names[k]}") for k in numbers
        ]
        handles.append(Patch(facecolor="white", edgecolor="0.3", label="ocean, not classified"))
        ax.legend(
            handles=handles,
            loc="upper center",
            bbox_to_anchor=(0.5, -0.02),
            ncols=min(len(handles), 4),
            fontsize=8,
            frameon=False,
        )


def dendrogram_node_positions(linkage: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """X positions and heights of all nodes as :func:`scipy.cluster.hierarchy.dendrogram` draws.

    Leaves sit at x = 5 + 10 * rank in the leaf order; an internal node sits midway between its
    children, at its linkage height. Node ids follow scipy: leaves 0..n-1, merges n..2n-2.

    Returns
    -------
    x, height
        Arrays of length 2n - 1.
    """
    from scipy.cluster.hierarchy import leaves_list

    n = linkage.shape[0] + 1
    x = np.empty(2 * n - 1)
    height = np.zeros(2 * n - 1)
    x[leaves_list(linkage)] = 5.0 + 10.0 * np.arange(n)
    children = linkage[:, :2].astype(np.int64)
    for row in range(n - 1):  # children precede parents: one pass, O(n)
        x[n + row] = 0.5 * (x[children[row, 0]] + x[children[row, 1]])
    height[n:] = linkage[:, 2]
    return x, height


def plot_dendrogram(
    ax: Axes,
    linkage: np.ndarray,
    cut_nodes: Mapping[int, int],
    names: Mapping[int, str],
    *,
    title: str = "",
) -> None:
    """Draw the Ward dendrogram coloured by biome, with the cut nodes marked and numbered.

    Parameters
    ----------
    ax
        Axes.
    linkage
        scipy linkage matrix.
    cut_nodes
        Biome number -> node id (scipy numbering) whose subtree is that biome.
    names
        Biome number -> name.
    title
        Axes title.
    """
    from scipy.cluster.hierarchy import dendrogram

    n = linkage.shape[0] + 1
    colours = biome_colours(names)
    node_colour = np.full(2 * n - 1, "#555555", dtype=object)
    children = linkage[:, :2].astype(np.int64)
    for number, node in cut_nodes.items():
        node_colour[node] = colours[number]
    # propagate each biome's colour down its subtree (parents after children: reverse pass)
    for row in range(n - 2, -1, -1):
        node = n + row
        if node_colour[node] != "#555555":
            node_colour[children[row]] = node_colour[node]
    dendrogram(
        linkage,
        ax=ax,
        no_labels=True,
        link_color_func=lambda node: node_colour[node],
        color_threshold=None,
    )
    x, height = dendrogram_node_positions(linkage)
    for number, node in sorted(cut_nodes.items()):
        ax.plot(x[node], height[node], "o", ms=9, mfc=colours[number], mec="k", zorder=5)
        ax.annotate(
            str(number),
            (x[node], height[node]),
            xytext=(0, 7),
            textcoords="offset points",
            ha="center",
            fontsize=8,
            fontweight="bold",
        )
    ax.set_ylabel("Ward linkage distance")
    ax.set_xlabel(f"{n} boxes (leaf order); circles: cut nodes, one per biome")
    from matplotlib.patches import Patch

    ax.legend(
        handles=[Patch(color=colours[k], label=f"{k}: {names[k]}") for k in sorted(names)],
        fontsize=8,
        loc="upper right",
    )
    if title:
        ax.set_title(title, fontsize=10)


def plot_rc_bars(
    ax: Axes,
    names: Mapping[int, str],
    mean_z: np.ndarray,
    driver_labels: Sequence[str] = ("SST", "DIC", "ALK"),
    *,
    title: str = "",
) -> None:
    """Grouped bars of the mean standardized RCs per biome (groups: biomes; bars: drivers)."""
    numbers = sorted(names)
    n_drivers = mean_z.shape[1]
    width = 0.8 / n_drivers
    hatches = ["", "//", ".."]
    colours = biome_colours(names)
    x = np.arange(len(numbers))
    for d in range(n_drivers):
        ax.bar(
            x + (d - (n_drivers - 1) / 2) * width,
            mean_z[:, d],
            width,
            color=[colours[k] for k in numbers],
            edgecolor="k",
            hatch=hatches[d % 3],
            label=driver_labels[d],
        )
    ax.axhline(0.0, color="k", lw=0.8)
    ax.set_xticks(x, [f"{k}: {names[k]}" for k in numbers], rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("mean standardized RC (z-score)")
    legend = ax.legend(title="slope of fCO2 on", fontsize=8)
    for handle in legend.legend_handles:
        handle.set_facecolor("white")
    if title:
        ax.set_title(title, fontsize=10)


def plot_scan_heatmap(
    ax: Axes,
    table: np.ndarray,
    delta_dists: Sequence[float],
    delta_vars: Sequence[float],
    *,
    label: str,
    selected: tuple[float, float] | None = None,
    fmt: str = "{:.2f}",
    cmap: str = "viridis",
) -> None:
    """Heat map of one scan quantity over (Δvar rows, Δdist columns), selected pair outlined."""
    image = ax.imshow(table, cmap=cmap, aspect="auto", origin="lower")
    ax.set_xticks(range(len(delta_dists)), [f"{v:g}" for v in delta_dists])
    ax.set_yticks(range(len(delta_vars)), [f"{v:g}" for v in delta_vars])
    ax.set_xlabel("Δdist")
    ax.set_ylabel("Δvar")
    for i in range(table.shape[0]):
        for j in range(table.shape[1]):
            value = table[i, j]
            text = "–" if not np.isfinite(value) else fmt.format(value)
            ax.text(
                j,
                i,
                text,
                ha="center",
                va="center",
                fontsize=7,
                color=_text_colour(image, value),
            )
    if selected is not None:
        j = int(np.argmin(np.abs(np.asarray(delta_dists) - selected[0])))
        i = int(np.argmin(np.abs(np.asarray(delta_vars) - selected[1])))
        ax.add_patch(
            matplotlib.patches.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, lw=2.5, ec="red")
        )
    ax.figure.colorbar(image, ax=ax, shrink=0.8)
    ax.set_title(label, fontsize=10)


def _text_colour(image: Any, value: float) -> str:
    """Black or white, whichever reads better on the colour of ``value`` in an image."""
    if not np.isfinite(value):
        return "black"
    red, green, blue, _ = image.cmap(image.norm(value))
    return "black" if 0.299 * red + 0.587 * green + 0.114 * blue > 0.5 else "white"


def plot_training_curves(
    ax_loss: Axes, ax_acc: Axes, history: Mapping[str, Sequence[float]]
) -> None:
    """Loss and accuracy per epoch for training and validation splits."""
    epochs = np.arange(1, len(history.get("loss", [])) + 1)
    for key, style in (("loss", "-"), ("val_loss", "--")):
        if key in history:
            ax_loss.plot(epochs, history[key], style, label=key.replace("_", " "))
    for key, style in (("accuracy", "-"), ("val_accuracy", "--")):
        if key in history:
            ax_acc.plot(epochs, history[key], style, label=key.replace("_", " "))
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("loss (cross-entropy + L2)")
    ax_acc.set_xlabel("epoch")
    ax_acc.set_ylabel("accuracy")
    ax_loss.legend(fontsize=8)
    ax_acc.legend(fontsize=8)


def plot_confusion_matrix(
    ax: Axes, matrix: np.ndarray, class_names: Sequence[str], *, title: str = ""
) -> None:
    """Confusion matrix (rows: true biome, columns: predicted), counts and row fractions."""
    matrix = np.asarray(matrix)
    totals = matrix.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        fraction = np.where(totals > 0, matrix / np.maximum(totals, 1), np.nan)
    image = ax.imshow(fraction, cmap="Blues", vmin=0, vmax=1)
    for i in range(matrix.shape[0]):
        for j in range(matrix.shape[1]):
            ax.text(
                j,
                i,
                f"{matrix[i, j]}",
                ha="center",
                va="center",
                fontsize=7,
                color="white" if np.nan_to_num(fraction[i, j]) > 0.6 else "black",
            )
    ax.set_xticks(range(len(class_names)), class_names, rotation=40, ha="right", fontsize=8)
    ax.set_yticks(range(len(class_names)), class_names, fontsize=8)
    ax.set_xlabel("predicted biome")
    ax.set_ylabel("true biome")
    ax.figure.colorbar(image, ax=ax, shrink=0.8, label="fraction of true biome")
    if title:
        ax.set_title(title, fontsize=10)


def plot_scores_bars(
    ax: Axes,
    class_names: Sequence[str],
    scores: Mapping[str, Sequence[float]],
    *,
    title: str = "",
) -> None:
    """Grouped bars of per-biome scores (e.g. precision, recall, F1)."""
    x = np.arange(len(class_names))
    width = 0.8 / max(len(scores), 1)
    for i, (label, values) in enumerate(scores.items()):
        ax.bar(x + (i - (len(scores) - 1) / 2) * width, values, width, label=label)
    ax.set_xticks(x, class_names, rotation=30, ha="right", fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("score on held-out boxes")
    ax.legend(fontsize=8, ncols=len(scores))
    if title:
        ax.set_title(title, fontsize=10)
