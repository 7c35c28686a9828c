"""Figures of the comparison stage: several datasets' biomes side by side and scored.

Every function takes arrays and returns a :class:`~matplotlib.figure.Figure`; nothing is read or
written. All datasets share one set of *common* biomes (number -> name, after matching them to
the reference), and a biome's colour depends on its name only
(:func:`~carbon_biomes.figures.plotting.biome_colour`), so one name is one colour in every panel
and every figure. The reference dataset, when there is one, comes first and is marked.
Legends sit outside the data.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib
import numpy as np
from matplotlib.axes import Axes
from matplotlib.colors import BoundaryNorm, ListedColormap, to_hex
from matplotlib.figure import Figure
from matplotlib.patches import Patch, Rectangle
from matplotlib.ticker import FixedLocator, PercentFormatter

from carbon_biomes.figures import plotting
from carbon_biomes.figures.analysis import MONTH_LETTERS

__all__ = [
    "MODEL_COLOURS",
    "NA_COLOUR",
    "UNCLASSIFIED_BAR_COLOUR",
    "agreement_map_figure",
    "comparison_coverage_bars_figure",
    "comparison_maps_figure",
    "portrait_normalization",
    "portrait_figure",
    "seasonal_cycle_spaghetti_figure",
]

#: Line colours of the models in the seasonal-cycle figure (Tol's muted scheme without its
#: indigo and wine, which are too close to the black reference line); after eight models the
#: colours repeat with other line styles.
MODEL_COLOURS = (
    "#CC6677",
    "#117733",
    "#88CCEE",
    "#DDCC77",
    "#44AA99",
    "#AA4499",
    "#999933",
    "#6699CC",
)
_MODEL_STYLES = ("-", (0, (1, 1.2)), (0, (4, 1.5, 1, 1.5)))
#: Cells of the portrait plot without a (normalizable) value.
NA_COLOUR = "#c8c8c8"
#: The unclassified segment of the coverage bars (light grey: white would vanish).
UNCLASSIFIED_BAR_COLOUR = "#e4e4e4"
_MONTHS = np.arange(1, 13)
_REFERENCE_MARK = " (reference)"


# --- shared helpers --------------------------------------------------------------------------


def _lattice_shape(box_size: float) -> tuple[int, int]:
    """(n_lat_boxes, n_lon_boxes) of the lattice; a ValueError for a size that does not tile."""
    if not np.isfinite(box_size) or box_size <= 0:
        raise ValueError(f"box_size must be a positive number of degrees, got {box_size!r}")
    n_lat, n_lon = 180.0 / box_size, 360.0 / box_size
    if abs(n_lat - round(n_lat)) > 1e-9 or abs(n_lon - round(n_lon)) > 1e-9:
        raise ValueError(f"box_size {box_size:g} does not divide 180 and 360")
    return round(n_lat), round(n_lon)


def _ordered(datasets: Sequence[str], reference: str | None, what: str) -> list[str]:
    """The datasets with the reference first (a ValueError if it is not among them)."""
    datasets = list(datasets)
    if not datasets:
        raise ValueError(f"{what} is empty: nothing to compare")
    if reference is None:
        return datasets
    if reference not in datasets:
        raise ValueError(f"reference {reference!r} is not among the datasets of {what}")
    return [reference] + [d for d in datasets if d != reference]


def _display_name(dataset: str, reference: str | None) -> str:
    return dataset + _REFERENCE_MARK if dataset == reference else dataset


def _biome_label(number: int, name: str) -> str:
    return f"{number}: {name}"


def _grid_shape(n: int) -> tuple[int, int]:
    """(rows, columns) of n panels: 2 columns for 2 or 4 panels, else at most 3."""
    n_cols = 1 if n == 1 else 2 if n in (2, 4) else 3
    return -(-n // n_cols), n_cols


def _area_weights(shape: tuple[int, int]) -> np.ndarray:
    """Relative areas of the lattice boxes (sine difference of their latitude edges)."""
    n_lat, n_lon = shape
    edges = np.deg2rad(np.linspace(-90.0, 90.0, n_lat + 1))
    return np.repeat(np.diff(np.sin(edges))[:, None], n_lon, axis=1)


def _check_lattice(label: str, array: np.ndarray, shape: tuple[int, int]) -> None:
    if array.shape != shape:
        raise ValueError(
            f"{label} has shape {array.shape}, expected {shape} (the lattice of the box size)"
        )


# --- 1. biome maps of every dataset ----------------------------------------------------------


def comparison_maps_figure(
    labels: Mapping[str, np.ma.MaskedArray],
    box_size: float,
    names: Mapping[int, str],
    title: str,
    *,
    reference: str | None = None,
    land: Mapping[str, tuple[np.ndarray, np.ndarray, np.ndarray] | None] | None = None,
    flagged: Mapping[str, np.ndarray] | None = None,
    classified_share: Mapping[str, float] | None = None,
    flagged_label: str = "out of distribution or class probability < 0.5",
) -> Figure:
    """Biome maps of several datasets in the common biomes' colours, with one shared legend.

    Parameters
    ----------
    labels
        Dataset -> (n_lat_boxes, n_lon_boxes) common biome numbers on the box lattice (from
        90°S, 180°W, as :func:`~carbon_biomes.figures.plotting.lattice_edges`), masked where
        unclassified or land.
    box_size
        Box size in degrees.
    names
        Common biome number -> name (the same in every dataset; colours follow the names).
    title
        Figure title.
    reference
        The reference dataset (a key of ``labels``): drawn first, "(reference)" in its title.
    land
        Dataset -> ``(latitude, longitude, land_mask)`` of its native grid
        (:func:`~carbon_biomes.figures.detection.land_of`) to shade its land; datasets missing
        or None: no land shading.
    flagged
        Dataset -> (n_lat_boxes, n_lon_boxes) booleans: classified boxes to hatch
        (:func:`~carbon_biomes.figures.plotting.hatch_boxes`); a legend entry is added when any
        dataset is given.
    classified_share
        Dataset -> percent of its ocean area that is classified, for the panel titles. Datasets
        not given get their share of the area that *any* dataset classifies (exact box areas
        on the sphere), so titled.
    flagged_label
        Legend text of the hatched boxes.

    Returns
    -------
    matplotlib.figure.Figure
        One Robinson map per dataset (reference first, then the order of ``labels``) on a grid
        of 2 (for 2 or 4 datasets) or 3 columns; the legend below lists the biomes that occur
        in at least one map.

    Raises
    ------
    ValueError
        For an empty ``labels``, an unknown reference or dataset, a map or flag array not of the
        lattice's shape, or biome numbers missing from ``names``.
    """
    shape = _lattice_shape(box_size)
    order = _ordered(list(labels), reference, "labels")
    land = dict(land or {})
    flagged = dict(flagged or {})
    classified_share = dict(classified_share or {})
    for what, mapping in (
        ("land", land),
        ("flagged", flagged),
        ("classified_share", classified_share),
    ):
        unknown = sorted(set(mapping) - set(labels))
        if unknown:
            raise ValueError(f"{what} names datasets without a label map: {unknown}")
    grids: dict[str, np.ma.MaskedArray] = {}
    present: set[int] = set()
    for dataset in order:
        grid = np.ma.asarray(labels[dataset])
        _check_lattice(f"labels[{dataset!r}]", grid, shape)
        used = {int(k) for k in np.unique(grid.compressed())}
        unknown = sorted(used - set(names))
        if unknown:
            raise ValueError(f"labels[{dataset!r}] carries biome numbers {unknown} not in names")
        if dataset in flagged:
            flags = np.asarray(flagged[dataset], dtype=bool)
            _check_lattice(f"flagged[{dataset!r}]", flags, shape)
            flagged[dataset] = flags
        grids[dataset] = grid
        present |= used
    weights = _area_weights(shape)
    union = np.zeros(shape, dtype=bool)
    for grid in grids.values():
        union |= ~np.ma.getmaskarray(grid)
    union_area = float(weights[union].sum())

    n_rows, n_cols = _grid_shape(len(order))
    panel_width = 4.6 if n_cols == 3 else 5.6 if n_cols == 2 else 8.0
    fig = plotting.new_figure(panel_width * n_cols + 0.3, 0.56 * panel_width * n_rows + 1.5)
    grid_labels = n_cols < 3
    for i, dataset in enumerate(order):
        grid = grids[dataset]
        if dataset in classified_share:
            share_text = f"{classified_share[dataset]:.0f} % of its ocean classified"
        else:
            classified = ~np.ma.getmaskarray(grid)
            share = 100.0 * float(weights[classified].sum()) / union_area if union_area else 0.0
            share_text = f"{share:.0f} % of the area classified by any dataset"
        ax = plotting.map_axes(fig, (n_rows, n_cols, i + 1))
        plotting.plot_biome_map(
            ax,
            grid,
            box_size,
            names,
            land=land.get(dataset),
            title="",
            legend=False,
            flagged=flagged.get(dataset),
            grid_labels=grid_labels,
        )
        ax.set_title(
            f"{_display_name(dataset, reference)}\n{share_text}",
            fontsize=9,
            fontweight="bold" if dataset == reference else "normal",
        )
        ax.set_gid(f"dataset {dataset}")
        if dataset == reference:  # a heavier frame marks the reference map
            ax.spines["geo"].set_linewidth(2.2)
        if not (~np.ma.getmaskarray(grid)).any():
            ax.text(
                0.5,
                0.5,
                "nothing classified",
                ha="center",
                va="center",
                transform=ax.transAxes,
                fontsize=9,
            )
    handles = plotting.biome_legend_handles(
        {k: names[k] for k in sorted(present)},
        flagged_label=flagged_label if flagged else None,
    )
    fig.legend(
        handles=handles,
        loc="outside lower center",
        ncols=min(len(handles), 5 if n_cols == 3 else 4),
        fontsize=8,
        frameon=False,
    )
    fig.suptitle(title, fontsize=11)
    return fig


# --- 2. stacked coverage bars per dataset ----------------------------------------------------


def comparison_coverage_bars_figure(
    fractions: Mapping[str, Mapping[int, float]],
    names: Mapping[int, str],
    title: str,
    *,
    reference: str | None = None,
    unclassified: Mapping[str, float] | None = None,
    ylabel: str = "share of the ocean area (%)",
) -> Figure:
    """One stacked bar per dataset: the share of each common biome and of unclassified ocean.

    Parameters
    ----------
    fractions
        Dataset -> (common biome number -> share in **percent**, e.g. of the ocean area); a
        missing biome or NaN counts as 0.
    names
        Common biome number -> name (colours follow the names).
    title
        Figure title.
    reference
        The reference dataset: first bar, bold tick label, thick black edge, set apart by a gap.
    unclassified
        Dataset -> unclassified share in percent, stacked on top as a light grey segment
        (:data:`UNCLASSIFIED_BAR_COLOUR`)
        (biome shares plus unclassified should make 100). None: no such segment.
    ylabel
        Y-axis label.

    Returns
    -------
    matplotlib.figure.Figure
        Segments of at least 6 % carry their value; the legend (right of the bars, top entry =
        top segment) lists the biomes with a share in some dataset.

    Raises
    ------
    ValueError
        For an empty ``fractions``, an unknown reference, biome numbers not in ``names``,
        negative shares, or bars that exceed 100 % by more than 0.5.
    """
    order = _ordered(list(fractions), reference, "fractions")
    unclassified = dict(unclassified or {})
    unknown = sorted(set(unclassified) - set(fractions))
    if unknown:
        raise ValueError(f"unclassified names datasets without fractions: {unknown}")
    numbers = sorted(names)
    shares = np.zeros((len(order), len(numbers)))
    rest = np.zeros(len(order))
    for d, dataset in enumerate(order):
        extra = sorted(set(fractions[dataset]) - set(names))
        if extra:
            raise ValueError(f"fractions[{dataset!r}] has biome numbers {extra} not in names")
        for b, number in enumerate(numbers):
            value = float(fractions[dataset].get(number, 0.0))
            shares[d, b] = value if np.isfinite(value) else 0.0
        value = float(unclassified.get(dataset, 0.0))
        rest[d] = value if np.isfinite(value) else 0.0
    if (shares < 0).any() or (rest < 0).any():
        raise ValueError("shares must not be negative")
    totals = shares.sum(axis=1) + rest
    if (totals > 100.5).any():
        worst = order[int(np.argmax(totals))]
        raise ValueError(
            f"the shares of {worst!r} add up to {totals.max():.1f} %: pass percent of one area"
        )
    # the reference bar is set apart by a gap
    gap = 0.5 if reference is not None and len(order) > 1 else 0.0
    x = np.arange(len(order), dtype=float) + np.where(np.arange(len(order)) > 0, gap, 0.0)
    width = 0.72
    fig = plotting.new_figure(max(0.75 * len(order) + 4.6, 6.5), 5.2)
    ax = fig.add_subplot(111)
    bottom = np.zeros(len(order))
    shown: list[Any] = []
    colours = plotting.biome_colours(names)
    for b, number in enumerate(numbers):
        heights = shares[:, b]
        if not (heights > 0).any():
            continue
        bars = ax.bar(
            x,
            heights,
            width,
            bottom=bottom,
            color=colours[number],
            edgecolor="white",
            linewidth=0.5,
            label=_biome_label(number, names[number]),
            gid=f"biome {number}",
        )
        shown.append(bars)
        _label_segments(ax, x, bottom, heights, colours[number])
        bottom += heights
    if unclassified:
        bars = ax.bar(
            x,
            rest,
            width,
            bottom=bottom,
            color=UNCLASSIFIED_BAR_COLOUR,
            edgecolor="white",
            linewidth=0.5,
            label="not classified",
            gid="unclassified",
        )
        shown.append(bars)
        _label_segments(ax, x, bottom, rest, UNCLASSIFIED_BAR_COLOUR)
        bottom += rest
    if reference is not None:  # a thick black frame around the whole reference bar
        ax.add_patch(
            Rectangle(
                (x[0] - width / 2, 0.0),
                width,
                bottom[0],
                fill=False,
                edgecolor="black",
                linewidth=2.0,
                zorder=3,
                gid="reference",
            )
        )
    rotate = len(order) > 7  # slanted names, each on one line
    names_shown = [_display_name(d, reference) for d in order]
    if not rotate:
        names_shown = [
            name.replace(_REFERENCE_MARK, "\n" + _REFERENCE_MARK[1:]) for name in names_shown
        ]
    ax.set_xticks(x, names_shown)
    for d, tick in enumerate(ax.get_xticklabels()):
        tick.set_fontsize(8)
        if rotate:
            tick.set(rotation=35, rotation_mode="anchor", ha="right", va="top")
        if order[d] == reference:
            tick.set_fontweight("bold")
    ax.set_xlim(x[0] - 0.7, x[-1] + 0.7)
    ax.set_ylim(0.0, max(100.0, float(bottom.max())))
    ax.set_ylabel(ylabel)
    ax.yaxis.set_major_locator(FixedLocator(np.arange(0.0, 101.0, 20.0)))
    ax.grid(axis="y", alpha=0.3, linewidth=0.5)
    ax.set_axisbelow(True)
    ax.spines[["top", "right"]].set_visible(False)
    ax.legend(
        handles=shown[::-1],
        loc="center left",
        bbox_to_anchor=(1.01, 0.5),
        fontsize=8,
        frameon=False,
    )
    ax.set_title(title, fontsize=11)
    return fig


def _label_segments(
    ax: Axes, x: np.ndarray, bottom: np.ndarray, heights: np.ndarray, colour: str
) -> None:
    """Write the share into the stacked segments tall enough to hold it."""
    text_colour = "white" if plotting._is_dark(colour) else "black"
    for xi, low, height in zip(x, bottom, heights, strict=True):
        if height >= 6.0:
            ax.text(
                xi,
                low + height / 2,
                f"{height:.0f}",
                ha="center",
                va="center",
                fontsize=7.5,
                color=text_colour,
                gid="share",
            )


# --- 3. seasonal cycles of every dataset -----------------------------------------------------


def _title_with_patch(ax: Axes, text: str, colour: str) -> None:
    """Panel title written on a box of the biome's colour (white text on dark colours)."""
    ax.set_title(
        text,
        fontsize=9,
        color="white" if plotting._is_dark(colour) else "black",
        bbox={
            "boxstyle": "round,pad=0.3",
            "facecolor": colour,
            "edgecolor": "0.35",
            "linewidth": 0.6,
        },
    )


def seasonal_cycle_spaghetti_figure(
    cycles: Mapping[str, np.ndarray],
    names: Mapping[int, str],
    region: str,
    title: str,
    *,
    reference: str | None = None,
    reference_std: np.ndarray | None = None,
) -> Figure:
    """Mean seasonal cycle of each common biome in every dataset, one panel per biome.

    Parameters
    ----------
    cycles
        Dataset -> (n_biomes, 12) coverage in % of the region's classified area per common
        biome (sorted-number order of ``names``) and calendar month (January first); NaN where
        the biome is absent.
    names
        Common biome number -> name.
    region
        Region name (in the figure title).
    title
        Figure title.
    reference
        The reference dataset: a thick black line.
    reference_std
        (n_biomes, 12) standard deviation of the reference over its years: a grey ±1 std band.

    Returns
    -------
    matplotlib.figure.Figure
        One panel per biome with a finite value in some dataset, titled on a patch of the
        biome's colour. Models: thin lines, one colour (and style) per model, the same in every
        panel; the reference: thick black; the multi-model mean of the models (the datasets
        other than the reference, NaN skipped per month; drawn with at least two models):
        dashed dark grey. Each panel has its own y range (from 0).

    Raises
    ------
    ValueError
        For an empty ``cycles``, an unknown reference, or arrays not of shape (n_biomes, 12).
    """
    order = _ordered(list(cycles), reference, "cycles")
    numbers = sorted(names)
    shape = (len(numbers), 12)
    data = {}
    for dataset in order:
        data[dataset] = np.asarray(cycles[dataset], dtype=float)
        if data[dataset].shape != shape:
            raise ValueError(
                f"cycles[{dataset!r}] has shape {data[dataset].shape}, "
                f"expected {shape} (biomes, calendar months)"
            )
    std = None
    if reference_std is not None:
        if reference is None:
            raise ValueError("reference_std needs a reference")
        std = np.asarray(reference_std, dtype=float)
        if std.shape != shape:
            raise ValueError(f"reference_std has shape {std.shape}, expected {shape}")
    models = [d for d in order if d != reference]
    stack = np.stack([data[d] for d in models]) if models else np.empty((0, *shape))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Mean of empty slice", RuntimeWarning)
        mean = np.nanmean(stack, axis=0) if len(models) >= 2 else None
    shown = [b for b in range(len(numbers)) if any(np.isfinite(data[d][b]).any() for d in order)]
    n = max(len(shown), 1)
    n_cols = min(n, 4 if n > 6 else 3)
    n_rows = -(-n // n_cols)
    width = max(3.6 * n_cols + 0.4, 7.0)
    fig = plotting.new_figure(width, 2.55 * n_rows + 1.7)
    grid = fig.subplots(n_rows, n_cols, sharex=True, squeeze=False)
    axes = list(grid.ravel())
    for ax in axes[n:]:
        ax.remove()
    handles: dict[str, Any] = {}
    for i, ax in enumerate(axes[:n]):
        ax.set_xticks(_MONTHS, MONTH_LETTERS)
        ax.set_xlim(0.6, 12.4)
        ax.grid(alpha=0.3, linewidth=0.5)
        if i + n_cols >= n:
            ax.xaxis.set_tick_params(labelbottom=True)
            ax.set_xlabel("calendar month", fontsize=8)
        if i % n_cols == 0:
            ax.set_ylabel("coverage (% of classified area)", fontsize=8)
        ax.tick_params(labelsize=8)
        if not shown:
            ax.text(
                0.5,
                0.5,
                "no biome in this region",
                ha="center",
                va="center",
                transform=ax.transAxes,
            )
            continue
        b = shown[i]
        number = numbers[b]
        _title_with_patch(
            ax, _biome_label(number, names[number]), plotting.biome_colour(names[number])
        )
        top = 0.0
        for m, dataset in enumerate(models):
            values = data[dataset][b]
            (line,) = ax.plot(
                _MONTHS,
                values,
                color=MODEL_COLOURS[m % len(MODEL_COLOURS)],
                linestyle=_MODEL_STYLES[(m // len(MODEL_COLOURS)) % len(_MODEL_STYLES)],
                linewidth=1.1,
                alpha=0.95,
                label=dataset,
                gid=f"model {dataset}",
                zorder=2,
            )
            handles.setdefault(dataset, line)
            top = max(top, float(np.nanmax(values, initial=0.0)))
        if mean is not None and np.isfinite(mean[b]).any():
            (line,) = ax.plot(
                _MONTHS,
                mean[b],
                color="0.3",
                linestyle=(0, (5, 2.5)),
                linewidth=2.0,
                label=f"multi-model mean ({len(models)} models)",
                gid="multi-model mean",
                zorder=3,
            )
            handles.setdefault("mean", line)
        if reference is not None and np.isfinite(data[reference][b]).any():
            values = data[reference][b]
            if std is not None and np.isfinite(values + std[b]).any():
                band = ax.fill_between(
                    _MONTHS,
                    values - std[b],
                    values + std[b],
                    where=np.isfinite(values + std[b]),
                    color="0.55",
                    alpha=0.3,
                    linewidth=0,
                    gid="reference std",
                    label=f"{reference} ±1 standard deviation",
                    zorder=1,
                )
                handles.setdefault("std", band)
                top = max(top, float(np.nanmax(values + std[b], initial=0.0)))
            (line,) = ax.plot(
                _MONTHS,
                values,
                color="black",
                linewidth=2.6,
                label=_display_name(reference, reference),
                gid="reference",
                zorder=4,
            )
            handles.setdefault("reference", line)
            top = max(top, float(np.nanmax(values, initial=0.0)))
        ax.set_ylim(0.0, max(1.08 * top, 1.0))
        absent = [_display_name(d, reference) for d in order if not np.isfinite(data[d][b]).any()]
        if absent:
            ax.text(
                0.98,
                0.03,
                _wrap("absent in " + ", ".join(absent), 0.8 * width / n_cols, 20),
                transform=ax.transAxes,
                ha="right",
                va="bottom",
                fontsize=7,
                color="0.25",
                bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8, "pad": 1.5},
                gid="absent",
            )
    keys = [k for k in ("reference", "std", "mean") if k in handles] + models
    legend_handles = [handles[k] for k in keys if k in handles]
    if legend_handles:
        fig.legend(
            handles=legend_handles,
            loc="outside lower center",
            ncols=min(len(legend_handles), max(int(width // 2.3), 1)),
            fontsize=8,
            frameon=False,
        )
    fig.suptitle(f"{title}\n{region}: mean seasonal cycle of each common biome", fontsize=11)
    return fig


# --- 4. portrait plot ------------------------------------------------------------------------


def _column_scales(
    values: np.ndarray, exclude: np.ndarray
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Median, scale and scaling method ("median", "std", "none") of each column."""
    included = values[~exclude]
    medians = np.full(values.shape[1], np.nan)
    scales = np.full(values.shape[1], np.nan)
    methods = []
    for j in range(values.shape[1]):
        column = included[:, j]
        column = column[np.isfinite(column)]
        if column.size == 0:
            methods.append("none")
            continue
        medians[j] = float(np.median(column))
        spread = float(np.std(column))
        if abs(medians[j]) > 1e-12 * max(spread, 1.0) and medians[j] != 0.0:
            scales[j] = abs(medians[j])
            methods.append("median")
        elif spread > 0.0:
            scales[j] = spread
            methods.append("std")
        else:
            methods.append("none")
    return medians, scales, methods


def _exclusion_mask(exclude: Any, n_rows: int) -> np.ndarray:
    mask = np.zeros(n_rows, dtype=bool)
    if exclude is None:
        return mask
    exclude = np.asarray(exclude)
    if exclude.dtype == bool:
        if exclude.shape != (n_rows,):
            raise ValueError(f"exclude has shape {exclude.shape}, expected ({n_rows},)")
        return exclude.copy()
    indices = np.atleast_1d(exclude).astype(int)
    if ((indices < -n_rows) | (indices >= n_rows)).any():
        raise ValueError(f"exclude has row indices outside 0..{n_rows - 1}: {indices.tolist()}")
    mask[indices] = True
    return mask


def _check_better(better: Sequence[str], n_metrics: int) -> np.ndarray:
    better = [str(b) for b in better]
    if len(better) != n_metrics:
        raise ValueError(f"better has {len(better)} entries for {n_metrics} metrics")
    wrong = sorted({b for b in better if b not in ("higher", "lower")})
    if wrong:
        raise ValueError(f"better must be 'higher' or 'lower', got {wrong}")
    return np.array([1.0 if b == "lower" else -1.0 for b in better])


def portrait_normalization(
    values: np.ndarray,
    better: Sequence[str],
    exclude: Sequence[int] | np.ndarray | None = None,
) -> np.ndarray:
    """Relative deviation of each value from its column's median, signed so that < 0 is better.

    As in ESMValTool's performance-metrics portrait plots, each metric (column) is normalized
    by the multi-model median: ``(x - median) / |median|``, the median over the rows not
    excluded (NaN skipped). The sign is flipped for metrics where higher is better, so that a
    negative value is always better than the median and a positive one worse. A column whose
    median is 0 is scaled by the standard deviation (ddof 0) of the included values instead;
    a column with no finite included value, or with all included values equal to a median
    of 0, cannot be normalized and is NaN.

    Parameters
    ----------
    values
        (n_datasets, n_metrics) raw metric values; NaN where missing.
    better
        Per metric, ``"higher"`` or ``"lower"``: which direction is better.
    exclude
        Rows left out of the medians (e.g. the reference): row indices or an (n_datasets,)
        boolean mask. They are still normalized.

    Returns
    -------
    numpy.ndarray
        (n_datasets, n_metrics) normalized values, NaN where the value is NaN.

    Raises
    ------
    ValueError
        For values that are not 2-D, or ``better``/``exclude`` not matching them.
    """
    values = np.asarray(values, dtype=float)
    if values.ndim != 2:
        raise ValueError(f"values must be (n_datasets, n_metrics), got shape {values.shape}")
    sign = _check_better(better, values.shape[1])
    mask = _exclusion_mask(exclude, values.shape[0])
    medians, scales, _ = _column_scales(values, mask)
    with np.errstate(invalid="ignore", divide="ignore"):
        return sign * (values - medians) / scales


def _short(value: float) -> str:
    """Short text of a raw metric value."""
    if not np.isfinite(value):
        return "n/a"
    magnitude = abs(value)
    if magnitude == 0.0:
        return "0"
    if magnitude >= 1e4 or magnitude < 1e-3:
        return f"{value:.1e}"
    if magnitude >= 100:
        return f"{value:.0f}"
    return f"{value:.3g}" if magnitude >= 1 else f"{value:.2g}"


def portrait_figure(
    values: np.ndarray,
    datasets: Sequence[str],
    metrics: Sequence[str],
    title: str,
    *,
    better: Sequence[str],
    reference: str | None = None,
    annotate: bool = True,
    limit: float | None = None,
) -> Figure:
    """ESMValTool-style portrait plot: datasets x metrics, each column relative to its median.

    Parameters
    ----------
    values
        (n_datasets, n_metrics) raw metric values; NaN where missing (grey cell, "n/a").
    datasets
        Row names, in axis-0 order.
    metrics
        Column names, in axis-1 order (an arrow after each tells the better direction).
    title
        Figure title.
    better
        Per metric ``"higher"`` or ``"lower"`` (e.g. agreement: higher; RMSE: lower).
    reference
        If among ``datasets``: its row is drawn first, set apart by a black line, and left out
        of the medians (a note says so).
    annotate
        Write the raw value into each cell.
    limit
        Colour limit: the colours span -limit..+limit (ESMValTool's default: 0.5, i.e. ±50 %).
        None: the smallest of 0.1, 0.2, 0.3, 0.5 and 1.0 that holds every value of the
        median-normalized columns in the rows other than the reference (values beyond
        saturate; the colour bar then has arrows).

    Returns
    -------
    matplotlib.figure.Figure
        Colours: :func:`portrait_normalization` (blue better, red worse than the multi-model
        median; ``RdBu_r``, symmetric about 0); columns that cannot be normalized are grey,
        columns scaled by their standard deviation are named in a note below the plot.

    Raises
    ------
    ValueError
        For ``values`` not of shape (len(datasets), len(metrics)), duplicate datasets, or a bad
        ``better``.
    """
    values = np.asarray(values, dtype=float)
    datasets = [str(d) for d in datasets]
    metrics = [str(m) for m in metrics]
    if values.shape != (len(datasets), len(metrics)):
        raise ValueError(
            f"values has shape {values.shape}, expected {(len(datasets), len(metrics))} "
            "(datasets, metrics)"
        )
    if not datasets or not metrics:
        raise ValueError("a portrait plot needs at least one dataset and one metric")
    if len(set(datasets)) != len(datasets):
        raise ValueError("datasets has duplicate names")
    _check_better(better, len(metrics))
    has_reference = reference is not None and reference in datasets
    rows = list(range(len(datasets)))
    if has_reference:
        r = datasets.index(reference)
        rows = [r] + [i for i in rows if i != r]
    values = values[rows]
    datasets = [datasets[i] for i in rows]
    exclude = np.zeros(len(datasets), dtype=bool)
    exclude[0] = has_reference
    normalized = portrait_normalization(values, better, exclude)
    _, _, methods = _column_scales(values, exclude)
    if limit is None:
        limit = _portrait_limit(normalized[~exclude], methods)
    elif not (np.isfinite(limit) and limit > 0):
        raise ValueError(f"limit must be a positive number, got {limit!r}")
    # continuous (not ESMValTool's ten steps), so that the median itself is white
    cmap = matplotlib.colormaps["RdBu_r"].with_extremes(bad=NA_COLOUR)

    n_rows, n_cols = values.shape
    label_width = 0.075 * max(len(_display_name(d, reference)) for d in datasets) + 0.4
    fig = plotting.new_figure(max(0.95 * n_cols + label_width + 2.2, 6.0), 0.42 * n_rows + 2.6)
    fig.get_layout_engine().set(w_pad=0.12, h_pad=0.08)  # room for the slanted metric names
    ax = fig.add_subplot(111)
    image = ax.imshow(
        np.ma.masked_invalid(normalized),
        cmap=cmap,
        vmin=-limit,
        vmax=limit,
        aspect="auto",
        interpolation="nearest",
    )
    ax.set_xticks(
        range(n_cols),
        [f"{m} {'↑' if b == 'higher' else '↓'}" for m, b in zip(metrics, better, strict=True)],
    )
    ax.xaxis.tick_top()
    for tick in ax.get_xticklabels():
        tick.set(rotation=35, rotation_mode="anchor", ha="left", va="bottom", fontsize=8)
    ax.set_yticks(range(n_rows), [_display_name(d, reference) for d in datasets], fontsize=8)
    if has_reference:
        ax.get_yticklabels()[0].set_fontweight("bold")
        ax.axhline(0.5, color="black", linewidth=2.5, gid="reference separator")
    ax.set_xticks(np.arange(n_cols + 1) - 0.5, minor=True)
    ax.set_yticks(np.arange(n_rows + 1) - 0.5, minor=True)
    ax.grid(which="minor", color="white", linewidth=1.2)
    ax.tick_params(which="minor", length=0)
    ax.tick_params(which="major", length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    if annotate:
        fontsize = 8 if n_cols <= 8 else 7
        for i in range(n_rows):
            for j in range(n_cols):
                shade = normalized[i, j]
                colour = image.cmap(image.norm(shade)) if np.isfinite(shade) else NA_COLOUR
                dark = plotting._is_dark(to_hex(colour))
                ax.text(
                    j,
                    i,
                    _short(values[i, j]),
                    ha="center",
                    va="center",
                    fontsize=fontsize,
                    color="white" if dark else "black",
                    gid="cell value",
                )
    finite = normalized[np.isfinite(normalized)]
    beyond = (finite < -limit).any(), (finite > limit).any()
    extend = {(True, True): "both", (True, False): "min", (False, True): "max"}.get(
        beyond, "neither"
    )
    colour_bar = fig.colorbar(
        image,
        ax=ax,
        orientation="horizontal",
        location="bottom",
        shrink=min(0.7, 2.8 / max(fig.get_figwidth() - label_width, 1.0) + 0.3),
        aspect=30,
        pad=0.03,
        extend=extend,
        ticks=np.linspace(-limit, limit, 5),
    )
    colour_bar.set_label("relative to the multi-model median (better <-> worse)", fontsize=8)
    colour_bar.ax.xaxis.set_major_formatter(PercentFormatter(xmax=1.0, decimals=0))
    colour_bar.ax.tick_params(labelsize=7)
    notes = [
        "cell colour: (value − median) / |median| of its column, signed so that blue is better "
        "and red worse; ↑ higher is better, ↓ lower is better"
    ]
    if has_reference:
        notes.append(
            f"the medians are over the {n_rows - 1} datasets other than the reference {reference}"
        )
    scaled = [metrics[j] for j in range(n_cols) if methods[j] == "std"]
    if scaled:
        notes.append(f"median 0, scaled by the standard deviation instead: {', '.join(scaled)}")
    unscaled = [metrics[j] for j in range(n_cols) if methods[j] == "none"]
    if unscaled:
        notes.append(
            f"not normalized (no spread around a median of 0, or no value): {', '.join(unscaled)}"
        )
    if annotate:
        notes.append("numbers: the raw values; grey cells: no value (n/a) or not normalizable")
    # as the figure's x label, so that the constrained layout makes room for it
    note = fig.supxlabel(
        "\n".join(_wrap(note, fig.get_figwidth()) for note in notes),
        x=0.01,
        ha="left",
        fontsize=7,
        color="0.25",
    )
    note.set_gid("note")
    fig.suptitle(title, fontsize=11)
    return fig


def _portrait_limit(normalized: np.ndarray, methods: Sequence[str]) -> float:
    """A round colour limit that holds the median-normalized columns (at most 1)."""
    columns = [j for j, method in enumerate(methods) if method == "median"]
    if not columns:
        columns = list(range(normalized.shape[1]))
    values = np.abs(normalized[:, columns])
    largest = float(values[np.isfinite(values)].max(initial=0.0))
    for limit in (0.1, 0.2, 0.3, 0.5):
        if largest <= limit + 1e-12:
            return limit
    return 1.0


def _wrap(text: str, width_inches: float, minimum: int = 40) -> str:
    """Break text into lines that fit about ``width_inches`` at 7 points."""
    import textwrap

    return textwrap.fill(text, width=max(int(width_inches * 17), minimum))


# --- 5. agreement map ------------------------------------------------------------------------


def agreement_map_figure(
    fraction: np.ma.MaskedArray,
    box_size: float,
    title: str,
    *,
    n_models: int,
    land: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
) -> Figure:
    """Map of the fraction of models whose biome agrees with the reference's, box by box.

    Parameters
    ----------
    fraction
        (n_lat_boxes, n_lon_boxes) fraction 0-1 on the box lattice
        (:func:`carbon_biomes.core.matching.agreement_map`), masked (or NaN) where the
        reference has no label (drawn white).
    box_size
        Box size in degrees.
    title
        Figure title; the area-weighted mean fraction is added below it.
    n_models
        Number of models compared: the colours are the n_models + 1 levels 0, 1/n, ..., 1.
        A fraction between two levels (a box some models leave unclassified) takes the colour
        of the nearest level.
    land
        ``(latitude, longitude, land_mask)`` of the reference's native grid, or None.

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    ValueError
        For a map not of the lattice's shape, fractions outside 0-1 or n_models < 1.
    """
    shape = _lattice_shape(box_size)
    fraction = np.ma.masked_invalid(np.ma.asarray(fraction, dtype=float))
    _check_lattice("fraction", fraction, shape)
    if int(n_models) != n_models or n_models < 1:
        raise ValueError(f"n_models must be a positive integer, got {n_models!r}")
    n_models = int(n_models)
    shown = fraction.compressed()
    if shown.size and (shown.min() < -1e-9 or shown.max() > 1.0 + 1e-9):
        raise ValueError(f"fraction must lie in 0-1, got {shown.min():.3g} to {shown.max():.3g}")
    levels = np.arange(n_models + 1) / n_models
    boundaries = np.concatenate(
        [[-0.5 / n_models], (levels[:-1] + levels[1:]) / 2, [1.0 + 0.5 / n_models]]
    )
    cmap = ListedColormap(matplotlib.colormaps["viridis"](np.linspace(0.0, 1.0, n_models + 1)))
    norm = BoundaryNorm(boundaries, n_models + 1)
    fig = plotting.new_figure(9.5, 6.2)
    ax = plotting.map_axes(fig)
    plotting.draw_land(ax, land)
    lat_edges, lon_edges = plotting.lattice_edges(box_size, shape)
    mesh = plotting.pcolormesh_on_map(
        ax, lon_edges, lat_edges, fraction, cmap=cmap, norm=norm, rasterized=True
    )
    plotting.add_gridlines(ax)
    colour_bar = fig.colorbar(
        mesh,
        ax=ax,
        orientation="horizontal",
        location="bottom",
        shrink=0.6,
        aspect=35,
        pad=0.07,
        ticks=levels,
    )
    colour_bar.set_ticklabels([_level_label(k, n_models) for k in range(n_models + 1)])
    colour_bar.set_label("fraction of models agreeing with the reference")
    colour_bar.ax.tick_params(labelsize=8)
    weights = _area_weights(shape)
    classified = ~np.ma.getmaskarray(fraction)
    if classified.any():
        mean = float(
            (weights[classified] * fraction.data[classified]).sum() / weights[classified].sum()
        )
        subtitle = f"area-weighted mean: {mean:.2f}"
    else:
        subtitle = "the reference classifies no box"
        ax.text(0.5, 0.5, "nothing to compare", ha="center", va="center", transform=ax.transAxes)
    handles = [
        Patch(
            facecolor=plotting.UNCLASSIFIED_COLOUR,
            edgecolor="0.3",
            label="ocean without a reference biome (not compared)",
        )
    ]
    if land is not None:
        handles.append(Patch(facecolor=plotting.LAND_COLOUR, edgecolor="0.3", label="land"))
    fig.legend(
        handles=handles, loc="outside lower center", ncols=len(handles), fontsize=8, frameon=False
    )
    ax.set_title(f"{n_models} models; {subtitle}", fontsize=9)
    fig.suptitle(title, fontsize=11)
    return fig


def _level_label(k: int, n: int) -> str:
    if k == 0:
        return "0"
    if k == n:
        return "1"
    return f"{k}/{n}"
