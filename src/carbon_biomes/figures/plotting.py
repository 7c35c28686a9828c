"""Figures. Every function draws on an ``Axes`` it is given and never touches global state.

Maps use cartopy projections but no downloaded features: land is drawn from the data's own
land mask (cells that are masked in every variable), so nothing is fetched at run time.
Biome colours depend on the biome *name* only (family palette + numeral), so that the same name
has the same colour in every figure, month and model.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.colors import BoundaryNorm, ListedColormap, to_hex, to_rgb  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from carbon_biomes.core.naming import roman  # noqa: E402

__all__ = [
    "CVD_SAFE_MEMBERS",
    "FAMILY_PALETTES",
    "FLAG_HATCH",
    "LAND_COLOUR",
    "UNCLASSIFIED_COLOUR",
    "add_gridlines",
    "biome_colour",
    "biome_colours",
    "biome_legend_handles",
    "dendrogram_node_positions",
    "draw_land",
    "hatch_boxes",
    "lattice_edges",
    "line_outline",
    "map_axes",
    "new_figure",
    "pcolormesh_on_map",
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
#: Colour of ocean boxes that carry no biome (the map background).
UNCLASSIFIED_COLOUR = "#ffffff"

#: Biome family -> colours of members I, II, III, ... (see :func:`biome_colour`).
FAMILY_PALETTES: dict[str, tuple[str, ...]] = {
    # Tol vibrant orange and shades
    "SUBTR": ("#EE7733", "#FEAD82", "#833401", "#B24A05", "#CE5E1C", "#FDCBB1"),
    # Tol bright cyan and shades
    "SUBP+UP": ("#66CCEE", "#004C5F", "#B6EAFD", "#056B84", "#0485A4", "#299BBC"),
    # Tol muted indigo and shades
    "ICE": ("#332288", "#9190F2", "#7471D1", "#4B43A4", "#ADADFD", "#C7C7FD"),
}
#: Members I..CVD_SAFE_MEMBERS of every family are pairwise distinguishable under simulated
#: protanopia, deuteranopia and tritanopia (tests/test_plotting.py).
CVD_SAFE_MEMBERS = 4
#: Names outside the families (recipe overrides): Okabe-Ito and Tol colours the families leave
#: unused, chosen by a checksum of the name (stable across runs, not guaranteed distinct).
_OTHER = ("#009E73", "#F0E442", "#CC79A7", "#999933", "#882255", "#228833", "#BBBBBB")
_NUMERALS = {roman(n): n for n in range(1, 40)}
#: Hatching of flagged boxes (out of distribution, low probability): dark grey, and light grey on
#: dark biome colours.
FLAG_HATCH = "////"
FLAG_COLOUR = "#333333"
FLAG_COLOUR_ON_DARK = "#dddddd"


def biome_colour(name: str) -> str:
    """Return the colour of a biome name (same name, same colour in every figure).

    The colour depends on the name only, never on the biome number, so that a biome keeps its
    colour across figures, months and models. A name is a family of
    :data:`carbon_biomes.core.naming.FAMILIES` with an optional Roman numeral ("SUBTR II");
    a family named without numeral has the colour of member I.

    Palette: each family has a hue of a published colour-blind-safe set (Tol 2021, *Colour
    schemes*, SRON/EPS/TN/09-002): SUBTR the vibrant orange ``#EE7733``, SUBP+UP the bright cyan
    ``#66CCEE``, ICE the muted indigo ``#332288``; member I is that colour, members II-VI are
    lighter and darker shades of it (its CAM02-UCS lightness J' moved, hue kept, chroma reduced
    only where needed to stay in the sRGB gamut). The shifts were searched to maximize the
    smallest CAM02-UCS colour difference under normal vision and simulated protanopia,
    deuteranopia and tritanopia (Machado et al. 2009, severity 100) among members I-IV of the
    three families and against the white of unclassified ocean and the land colour: all those
    differences are at least 11.5 (ΔE ≥ 10 is checked by the tests), and members I-VI of one
    family differ by at least 8 (members V and VI of different families are not guaranteed to
    be told apart). Members after VI reuse the six shades blended towards grey; other suffixes
    ("SUBTR North") pick one of the family's shades by a checksum of the suffix, and names of
    other families one of seven further Okabe-Ito and Tol colours by a checksum of the name.

    Parameters
    ----------
    name
        Biome name, e.g. ``"SUBP+UP III"``.

    Returns
    -------
    str
        Hex colour ``#rrggbb``.
    """
    family, _, suffix = name.strip().partition(" ")
    palette = FAMILY_PALETTES.get(family)
    if palette is None:
        return _OTHER[zlib.crc32(name.encode()) % len(_OTHER)]
    suffix = suffix.strip()
    if not suffix:
        rank = 0
    elif suffix in _NUMERALS:
        rank = _NUMERALS[suffix] - 1
    else:  # an override such as "SUBTR North": a shade of the family, by checksum
        rank = zlib.crc32(suffix.encode()) % len(palette)
    cycle, index = divmod(rank, len(palette))
    colour = np.asarray(to_rgb(palette[index]))
    if cycle:
        colour = colour + min(0.3 * cycle, 0.9) * (0.5 - colour)
    return to_hex(colour)


def biome_colours(names: Mapping[int, str]) -> dict[int, str]:
    """Biome number -> colour (:func:`biome_colour` of its name)."""
    return {number: biome_colour(name) for number, name in names.items()}


def _luminance(colour: str) -> float:
    """WCAG relative luminance of a colour (0 black, 1 white)."""
    channels = np.asarray(to_rgb(colour))
    linear = np.where(channels <= 0.04045, channels / 12.92, ((channels + 0.055) / 1.055) ** 2.4)
    return float(linear @ [0.2126, 0.7152, 0.0722])


def _is_dark(colour: str) -> bool:
    """Whether a colour is dark enough for light hatching or text on it."""
    return _luminance(colour) < 0.18


def line_outline(colour: str, linewidth: float = 1.5) -> list[Any]:
    """Path effects that edge a light-coloured line in grey, so it reads on a white background.

    Parameters
    ----------
    colour
        The line's colour.
    linewidth
        The line's width in points.

    Returns
    -------
    list
        Matplotlib path effects (empty for colours dark enough on their own).
    """
    from matplotlib import patheffects

    if _luminance(colour) < 0.45:
        return []
    return [patheffects.Stroke(linewidth=linewidth + 1.1, foreground="0.45"), patheffects.Normal()]


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


def _centre_edges(centres: np.ndarray) -> np.ndarray:
    """Cell edges of a 1-D axis from its centres (midpoints, the ends extrapolated)."""
    centres = np.asarray(centres, dtype=float)
    if centres.size == 1:
        return np.array([centres[0] - 0.5, centres[0] + 0.5])
    middle = 0.5 * (centres[1:] + centres[:-1])
    return np.concatenate(
        [[2.0 * centres[0] - middle[0]], middle, [2.0 * centres[-1] - middle[-1]]]
    )


def _framed_longitudes(
    lon_edges: np.ndarray, central_longitude: float
) -> tuple[np.ndarray, np.ndarray] | None:
    """Reorder the columns of a global grid to run from one map edge to the other.

    A cell that crosses the edge meridian of a map would be cut and reprojected polygon by
    polygon by cartopy, which is slow; here the columns are rotated to start at the map's west
    edge, the straddling column (if any) is drawn twice, once at each edge, and the outer edges
    are moved inside the map by a hair.

    Parameters
    ----------
    lon_edges
        Increasing longitude edges of a grid that covers 360 degrees.
    central_longitude
        Central longitude of the map.

    Returns
    -------
    edges, columns
        New edges, and for each new column the index of the data column it shows; None if the
        edges do not cover the globe (then draw as given).
    """
    lon_edges = np.asarray(lon_edges, dtype=float)
    width = np.diff(lon_edges)
    if lon_edges.size < 2 or np.any(width <= 0) or abs(lon_edges[-1] - lon_edges[0] - 360) > 1e-6:
        return None
    west_edge = central_longitude - 180.0
    west = west_edge + np.mod(lon_edges[:-1] - west_edge, 360.0)
    west[west >= west_edge + 360.0] -= 360.0
    order = np.argsort(west, kind="stable")
    edges = np.append(west[order], west[order[-1]] + width[order[-1]])
    columns = order
    if edges[0] > west_edge + 1e-9:  # the last column straddles the edge: show it at both ends
        edges = np.insert(edges, 0, west_edge)
        columns = np.insert(columns, 0, order[-1])
    hair = 1e-6
    edges[0] = west_edge + hair
    edges[-1] = min(edges[-1], west_edge + 360.0) - hair
    return edges, columns


def pcolormesh_on_map(
    ax: Axes, lon_edges: np.ndarray, lat_edges: np.ndarray, data: np.ndarray, **kwargs: Any
) -> Any:
    """``pcolormesh`` of a global field with 1-D cell edges on a cartopy map axes.

    Parameters
    ----------
    ax
        A cartopy map axes.
    lon_edges, lat_edges
        Cell edges in degrees east and north (longitude increasing over 360 degrees).
    data
        (n_lat, n_lon) values; masked or NaN cells are not drawn.
    **kwargs
        Passed on to :meth:`~matplotlib.axes.Axes.pcolormesh`.

    Returns
    -------
    matplotlib.collections.QuadMesh
    """
    import cartopy.crs as ccrs

    central = float(ax.projection.proj4_params.get("lon_0", 0.0))
    framed = _framed_longitudes(lon_edges, central)
    if framed is not None:
        lon_edges, columns = framed
        data = data[:, columns]
    lat_edges = np.clip(np.asarray(lat_edges, dtype=float), -90.0, 90.0)
    return ax.pcolormesh(lon_edges, lat_edges, data, transform=ccrs.PlateCarree(), **kwargs)


def _draw_land(ax: Axes, latitude: np.ndarray, longitude: np.ndarray, land: np.ndarray) -> None:
    """Shade land cells (True in ``land``) of the native grid; no external coastline data."""
    cmap = ListedColormap([LAND_COLOUR])
    if latitude.ndim == 1:
        order = np.argsort(np.mod(longitude, 360.0), kind="stable")
        lon = np.mod(longitude[order], 360.0)
        lon_edges = _centre_edges(lon)
        if abs(lon_edges[-1] - lon_edges[0] - 360.0) < 0.5 * np.diff(lon).max():
            lon_edges[-1] = lon_edges[0] + 360.0  # a global axis: close the circle exactly
        shading = np.ma.masked_where(~land[:, order], np.ones(land.shape))
        lat_edges = _centre_edges(latitude)
    else:
        lat_edges, lon_edges, shading = _land_on_regular_grid(latitude, longitude, land)
    pcolormesh_on_map(ax, lon_edges, lat_edges, shading, cmap=cmap, rasterized=True, zorder=0)


def lattice_edges(box_size: float, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Latitude and longitude edges of the box lattice (from 90°S and 180°W, docs §2.2).

    Parameters
    ----------
    box_size
        Box size in degrees.
    shape
        ``(n_lat_boxes, n_lon_boxes)`` of a lattice field.

    Returns
    -------
    lat_edges, lon_edges
        Arrays of length ``n_lat_boxes + 1`` and ``n_lon_boxes + 1``.
    """
    return (
        -90.0 + box_size * np.arange(shape[0] + 1),
        -180.0 + box_size * np.arange(shape[1] + 1),
    )


def add_gridlines(ax: Axes, *, labels: bool = True, fontsize: float = 7.0) -> Any:
    """Light graticule on a map axes, with latitude (left) and longitude (bottom) labels.

    The labels are drawn by cartopy from the projection alone: nothing is downloaded.

    Parameters
    ----------
    ax
        A cartopy map axes.
    labels
        Label the meridians and parallels.
    fontsize
        Label font size.

    Returns
    -------
    cartopy.mpl.gridliner.Gridliner
    """
    gridliner = ax.gridlines(
        draw_labels={"bottom": "x", "left": "y", "geo": "y"} if labels else False,
        linewidth=0.3,
        color="0.6",
        alpha=0.6,
        xlocs=np.arange(-180.0, 181.0, 60.0),
        ylocs=np.arange(-90.0, 91.0, 30.0),
        xlabel_style={"size": fontsize, "color": "0.3"},
        ylabel_style={"size": fontsize, "color": "0.3"},
    )
    return gridliner


def draw_land(ax: Axes, land: tuple[np.ndarray, np.ndarray, np.ndarray] | None) -> None:
    """Shade the land of ``(latitude, longitude, land_mask)`` of a native grid (None: nothing)."""
    if land is not None:
        _draw_land(ax, *land)


def _box_polygons(
    ax: Axes, rows: np.ndarray, cols: np.ndarray, box_size: float, points_per_side: int = 4
) -> np.ndarray:
    """Outlines of lattice boxes in the map projection's coordinates, (n_boxes, 4 * points, 2).

    Boxes are projected here, in one vectorized call, rather than by cartopy path by path (much
    faster for thousands of boxes). A box that straddles the map's edge meridian is cut at it.
    """
    import cartopy.crs as ccrs

    central = float(ax.projection.proj4_params.get("lon_0", 0.0))
    lat0 = -90.0 + box_size * rows.astype(float)
    west = central - 180.0 + np.mod(-180.0 + box_size * cols - (central - 180.0), 360.0)
    east = np.minimum(west + box_size, central + 180.0 - 1e-6)
    step = np.linspace(0.0, 1.0, points_per_side)
    width = (east - west)[:, None]
    lon = np.concatenate(
        [
            west[:, None] + width * step,
            np.repeat(east[:, None], points_per_side, axis=1),
            west[:, None] + width * step[::-1],
            np.repeat(west[:, None], points_per_side, axis=1),
        ],
        axis=1,
    )
    lat = np.concatenate(
        [
            np.repeat(lat0[:, None], points_per_side, axis=1),
            lat0[:, None] + box_size * step,
            np.repeat(lat0[:, None] + box_size, points_per_side, axis=1),
            lat0[:, None] + box_size * step[::-1],
        ],
        axis=1,
    )
    projected = ax.projection.transform_points(ccrs.PlateCarree(), lon, lat)
    return projected[..., :2]


def hatch_boxes(
    ax: Axes,
    boxes: np.ndarray,
    box_size: float,
    *,
    dark: np.ndarray | None = None,
    hatch: str = FLAG_HATCH,
) -> list[Any]:
    """Hatch lattice boxes of a map axes.

    Parameters
    ----------
    ax
        A cartopy map axes.
    boxes
        (n_lat_boxes, n_lon_boxes) booleans, True where to hatch.
    box_size
        Box size in degrees.
    dark
        Same shape: True where the box is drawn in a dark colour, which gets light hatching
        (dark grey elsewhere). Default: dark grey everywhere.
    hatch
        Matplotlib hatch pattern.

    Returns
    -------
    list of matplotlib.patches.PathPatch
        One compound patch per hatch colour, with one closed subpath per hatched box and
        ``gid`` ``"flagged"``.
    """
    from matplotlib.patches import PathPatch
    from matplotlib.path import Path

    boxes = np.asarray(boxes, dtype=bool)
    dark = np.zeros_like(boxes) if dark is None else np.asarray(dark, dtype=bool)
    patches = []
    for selection, colour in ((boxes & ~dark, FLAG_COLOUR), (boxes & dark, FLAG_COLOUR_ON_DARK)):
        rows, cols = np.nonzero(selection)
        if rows.size == 0:
            continue
        polygons = _box_polygons(ax, rows, cols, box_size)
        path = Path.make_compound_path(*(Path(polygon, closed=True) for polygon in polygons))
        patch = PathPatch(
            path,
            facecolor="none",
            edgecolor=colour,
            linewidth=0.0,
            hatch=hatch,
            transform=ax.transData,
            zorder=2,
            gid="flagged",
        )
        ax.add_artist(patch)  # not add_patch: its data-limit update walks every vertex
        patches.append(patch)
    return patches


def biome_legend_handles(
    names: Mapping[int, str], *, unclassified: bool = True, flagged_label: str | None = None
) -> list[Any]:
    """Legend handles of a biome map: one patch per biome, unclassified ocean, flagged boxes.

    Parameters
    ----------
    names
        Biome number -> name.
    unclassified
        Add the white patch of ocean boxes without a biome.
    flagged_label
        Label of the hatched boxes; None: no such entry.

    Returns
    -------
    list of matplotlib.patches.Patch
    """
    from matplotlib.patches import Patch

    colours = biome_colours(names)
    handles = [
        Patch(facecolor=colours[k], edgecolor="0.3", label=f"{k}: {names[k]}")
        for k in sorted(names)
    ]
    if unclassified:
        handles.append(
            Patch(facecolor=UNCLASSIFIED_COLOUR, edgecolor="0.3", label="ocean, not classified")
        )
    if flagged_label is not None:
        handles.append(
            Patch(facecolor="white", edgecolor=FLAG_COLOUR, hatch=FLAG_HATCH, label=flagged_label)
        )
    return handles


def plot_biome_map(
    ax: Axes,
    label_grid: np.ma.MaskedArray,
    box_size: float,
    names: Mapping[int, str],
    *,
    land: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    title: str = "",
    legend: bool = True,
    flagged: np.ndarray | None = None,
    flagged_label: str = "out of distribution or class probability < 0.5",
    grid_labels: bool = True,
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
        Draw a legend with the biome names below the map.
    flagged
        (n_lat_boxes, n_lon_boxes) booleans: classified boxes to hatch over their biome colour
        (e.g. out of the training distribution or of low class probability); boxes without a
        biome are never hatched. None: no hatching and no legend entry.
    flagged_label
        Legend text of the hatched boxes.
    grid_labels
        Label latitudes and longitudes.
    """
    numbers = sorted(names)
    colours = biome_colours(names)
    cmap = ListedColormap([colours[k] for k in numbers])
    norm = BoundaryNorm(np.arange(len(numbers) + 1) - 0.5, len(numbers))
    index = np.ma.masked_all(label_grid.shape, dtype=float)
    for i, k in enumerate(numbers):
        index[np.ma.filled(label_grid == k, False)] = i
    lat_edges, lon_edges = lattice_edges(box_size, label_grid.shape)
    draw_land(ax, land)
    pcolormesh_on_map(ax, lon_edges, lat_edges, index, cmap=cmap, norm=norm, rasterized=True)
    if flagged is not None:
        flagged = np.asarray(flagged, dtype=bool)
        if flagged.shape != label_grid.shape:
            raise ValueError(
                f"flagged has shape {flagged.shape}, the label grid {label_grid.shape}"
            )
        dark_biomes = [k for k in numbers if _is_dark(colours[k])]
        dark = np.ma.filled(np.isin(label_grid, dark_biomes), False)
        hatch_boxes(ax, flagged & ~np.ma.getmaskarray(label_grid), box_size, dark=dark)
    add_gridlines(ax, labels=grid_labels)
    if title:
        ax.set_title(title, fontsize=10)
    if legend:
        handles = biome_legend_handles(
            names, flagged_label=flagged_label if flagged is not None else None
        )
        ax.legend(
            handles=handles,
            loc="upper center",
            bbox_to_anchor=(0.5, -0.08 if grid_labels else -0.02),
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
