"""Figures of the analysis stage: coverage cycles, series and bars, frequency and RC-trend maps.

Every function takes arrays and returns a :class:`~matplotlib.figure.Figure`; nothing is read or
written. Biome colours always come from :func:`~carbon_biomes.figures.plotting.biome_colour`, so
a biome has the same colour here as on the maps of the detection and tracking stages. Legends
sit outside the data (below the panels, or right of a panel).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from carbon_biomes.figures import plotting

__all__ = [
    "MONTH_LETTERS",
    "coverage_bars_figure",
    "coverage_series_figure",
    "format_trend",
    "frequency_maps_figure",
    "rc_trend_maps_figure",
    "seasonal_cycle_figure",
]

#: Tick labels of the calendar months.
MONTH_LETTERS = ("J", "F", "M", "A", "M", "J", "J", "A", "S", "O", "N", "D")
_MONTHS = np.arange(1, 13)


def _check_shape(label: str, array: np.ndarray, shape: tuple[int, ...]) -> None:
    """Raise a ValueError naming the argument when an array does not have the expected shape."""
    if array.shape != shape:
        raise ValueError(f"{label} has shape {array.shape}, expected {shape}")


def _present(values: np.ndarray) -> bool:
    """Whether a series carries anything: some finite value that is not zero."""
    values = np.asarray(values, dtype=float)
    return bool(np.any(np.isfinite(values) & (values != 0.0)))


def _panels(
    fig: Figure, n: int, n_cols: int, *, sharex: bool = False, sharey: bool = False
) -> list[Axes]:
    """``n`` panels on a grid of ``n_cols`` columns; empty slots are removed.

    A panel with an empty slot below it keeps its x tick labels when x is shared.
    """
    n_rows = -(-n // n_cols)
    grid = fig.subplots(n_rows, n_cols, sharex=sharex, sharey=sharey, squeeze=False)
    axes = list(grid.ravel())
    for ax in axes[n:]:
        ax.remove()
    for i, ax in enumerate(axes[:n]):
        if i + n_cols >= n:  # nothing below: the bottom of its column
            ax.xaxis.set_tick_params(labelbottom=True)
    return axes[:n]


def _is_bottom(i: int, n: int, n_cols: int) -> bool:
    """Whether panel ``i`` of ``n`` is the lowest of its column."""
    return i + n_cols >= n


def _biome_label(number: int, name: str) -> str:
    return f"{number}: {name}"


def format_trend(name: str, trend: tuple[float, float] | None, unit: str = "pp/decade") -> str:
    """Legend text of a biome's trend: ``"SUBTR I: +1.23 pp/decade (p = 0.031)"``.

    Parameters
    ----------
    name
        Biome name.
    trend
        ``(slope per decade, p-value)``, or None when no trend was tested.
    unit
        Unit of the slope.

    Returns
    -------
    str
        The label; ``"NAME: not tested"`` without a (finite) slope.
    """
    if trend is None or not np.isfinite(trend[0]):
        return f"{name}: not tested"
    slope, p_value = trend
    if not np.isfinite(p_value):
        p_text = "p n/a"
    elif p_value < 0.001:
        p_text = "p < 0.001"
    else:
        p_text = f"p = {p_value:.2g}"
    return f"{name}: {slope:+.2f} {unit} ({p_text})"


def seasonal_cycle_figure(
    mean: np.ndarray,
    std: np.ndarray,
    regions: Sequence[str],
    names: Mapping[int, str],
    title: str,
    *,
    ylabel: str = "coverage (% of classified area)",
) -> Figure:
    """Mean seasonal cycle of every biome, one panel per region, ±1 standard deviation shaded.

    Parameters
    ----------
    mean, std
        (n_regions, n_biomes, 12) mean and standard deviation over the years per calendar month
        (January first); NaN allowed (no band where the std is NaN).
    regions
        Region names (panel titles), in axis-0 order.
    names
        Biome number -> name; axis 1 follows the sorted numbers.
    title
        Figure title.
    ylabel
        Y-axis label with unit; the y axis starts at 0 unless a mean is negative (e.g. SST).

    Returns
    -------
    matplotlib.figure.Figure
        Biomes that are all NaN or all zero in a region are left out of its panel.
    """
    mean = np.asarray(mean, dtype=float)
    std = np.asarray(std, dtype=float)
    numbers = sorted(names)
    shape = (len(regions), len(numbers), 12)
    _check_shape("mean", mean, shape)
    _check_shape("std", std, shape)
    n_cols = min(len(regions), 3)
    n_rows = -(-len(regions) // n_cols)
    width = max(4.3 * n_cols + 0.6, 7.0)
    fig = plotting.new_figure(width, 3.0 * n_rows + 1.3)
    axes = _panels(fig, len(regions), n_cols, sharex=True, sharey=True)
    handles: dict[int, Any] = {}
    lowest = np.inf
    for r, ax in enumerate(axes):
        for b, number in enumerate(numbers):
            values = mean[r, b]
            if not _present(values):
                continue
            colour = plotting.biome_colour(names[number])
            spread = std[r, b]
            band = np.isfinite(values) & np.isfinite(spread)
            if band.any():
                ax.fill_between(
                    _MONTHS,
                    values - spread,
                    values + spread,
                    where=band,
                    color=colour,
                    alpha=0.4 if plotting.line_outline(colour) else 0.22,
                    linewidth=0,
                )
            (line,) = ax.plot(
                _MONTHS,
                values,
                color=colour,
                linewidth=1.6,
                marker="o",
                markersize=3,
                path_effects=plotting.line_outline(colour, 1.6),
                label=_biome_label(number, names[number]),
                gid=f"biome {number}",
            )
            handles.setdefault(number, line)
            lowest = min(lowest, float(np.nanmin(values)))
        if not ax.lines:
            ax.text(0.5, 0.5, "no biome here", ha="center", va="center", transform=ax.transAxes)
        ax.set_title(regions[r], fontsize=10)
        ax.set_xticks(_MONTHS, MONTH_LETTERS)
        ax.set_xlim(0.5, 12.5)
        ax.grid(alpha=0.3, linewidth=0.5)
        if r % n_cols == 0:
            ax.set_ylabel(ylabel)
        if _is_bottom(r, len(regions), n_cols):
            ax.set_xlabel("calendar month")
    if np.isfinite(lowest) and lowest >= 0.0:
        axes[0].set_ylim(bottom=0.0)
    if handles:
        fig.legend(
            handles=[handles[k] for k in sorted(handles)],
            loc="outside lower center",
            ncols=min(len(handles), max(int(width // 1.8), 1)),
            fontsize=8,
            frameon=False,
        )
    fig.suptitle(f"{title}\n(lines: mean over the years; shading: ±1 standard deviation)", size=11)
    return fig


def coverage_series_figure(
    times: np.ndarray,
    monthly: np.ndarray,
    annual_years: np.ndarray,
    annual: np.ndarray,
    trends: Mapping[tuple[str, int], tuple[float, float]],
    regions: Sequence[str],
    names: Mapping[int, str],
    title: str,
) -> Figure:
    """Monthly and annual-mean coverage of every biome with its trend, one panel per region.

    Parameters
    ----------
    times
        (n_months,) decimal years of the monthly values.
    monthly
        (n_regions, n_months, n_biomes) coverage percent; biomes in sorted-number order.
    annual_years
        (n_years,) decimal years of the annual means (e.g. mid-year).
    annual
        (n_regions, n_years, n_biomes) annual mean coverage percent (NaN: incomplete year).
    trends
        ``(region name, biome number) -> (slope in percentage points per decade, p-value)``; a
        missing key means not tested. The trend line has that slope and passes through the
        mean of the annual values and their mean time.
    regions
        Region names, in axis-0 order.
    names
        Biome number -> name.
    title
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure
        Thin faint lines: monthly values; markers: annual means; dashed: trends. Each panel's
        legend (right of it) gives every biome's trend and p-value. Biomes all NaN or all zero
        in a region are left out of its panel.
    """
    times = np.asarray(times, dtype=float)
    monthly = np.asarray(monthly, dtype=float)
    annual_years = np.asarray(annual_years, dtype=float)
    annual = np.asarray(annual, dtype=float)
    numbers = sorted(names)
    _check_shape("monthly", monthly, (len(regions), times.size, len(numbers)))
    _check_shape("annual", annual, (len(regions), annual_years.size, len(numbers)))
    fig = plotting.new_figure(11.5, 2.5 * len(regions) + 1.4)
    axes = _panels(fig, len(regions), 1, sharex=True)
    for r, (ax, region) in enumerate(zip(axes, regions, strict=True)):
        handles = []
        for b, number in enumerate(numbers):
            if not (_present(monthly[r, :, b]) or _present(annual[r, :, b])):
                continue
            name = names[number]
            colour = plotting.biome_colour(name)
            ax.plot(times, monthly[r, :, b], color=colour, linewidth=0.6, alpha=0.35)
            (line,) = ax.plot(
                annual_years,
                annual[r, :, b],
                color=colour,
                linewidth=1.3,
                marker="o",
                markersize=3.5,
                path_effects=plotting.line_outline(colour, 1.3),
                label=format_trend(name, trends.get((region, number))),
                gid=f"biome {number}",
            )
            handles.append(line)
            trend = trends.get((region, number))
            valid = np.isfinite(annual[r, :, b])
            if trend is not None and np.isfinite(trend[0]) and valid.sum() >= 2:
                x = annual_years[valid]
                x_mean, y_mean = float(x.mean()), float(annual[r, valid, b].mean())
                ends = np.array([x.min(), x.max()])
                ax.plot(
                    ends,
                    y_mean + trend[0] / 10.0 * (ends - x_mean),
                    color=colour,
                    linestyle="--",
                    linewidth=1.6,
                    path_effects=plotting.line_outline(colour, 1.6),
                    gid=f"trend {number}",
                )
        ax.set_title(region, fontsize=10)
        ax.set_ylabel("coverage (%)")
        ax.set_ylim(bottom=0.0)
        ax.grid(alpha=0.3, linewidth=0.5)
        if handles:
            ax.legend(
                handles=handles,
                loc="center left",
                bbox_to_anchor=(1.01, 0.5),
                fontsize=8,
                frameon=False,
                title="annual means; trend",
                title_fontsize=8,
            )
        else:
            ax.text(0.5, 0.5, "no biome here", ha="center", va="center", transform=ax.transAxes)
    axes[-1].set_xlabel("year")
    style = [
        Line2D([], [], color="0.4", linewidth=0.6, alpha=0.5, label="monthly"),
        Line2D([], [], color="0.4", linewidth=1.3, marker="o", markersize=3.5, label="annual mean"),
        Line2D([], [], color="0.4", linestyle="--", linewidth=1.6, label="trend"),
    ]
    fig.legend(handles=style, loc="outside lower center", ncols=3, fontsize=8, frameon=False)
    fig.suptitle(f"{title}\n(coverage: % of the region's classified ocean area)", fontsize=11)
    return fig


def coverage_bars_figure(
    coverage: np.ndarray,
    unclassified: np.ndarray,
    regions: Sequence[str],
    names: Mapping[int, str],
    title: str,
) -> Figure:
    """Stacked bars of the mean coverage per calendar month, one panel per region.

    Parameters
    ----------
    coverage
        (n_regions, 12, n_biomes) mean coverage percent per calendar month (biomes in
        sorted-number order); each month sums to 100, or is NaN when nothing is classified.
    unclassified
        (n_regions, 12) unclassified percent of the region's ocean, drawn as black diamonds on
        a second y axis.
    regions
        Region names, in axis-0 order.
    names
        Biome number -> name.
    title
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure
    """
    coverage = np.asarray(coverage, dtype=float)
    unclassified = np.asarray(unclassified, dtype=float)
    numbers = sorted(names)
    _check_shape("coverage", coverage, (len(regions), 12, len(numbers)))
    _check_shape("unclassified", unclassified, (len(regions), 12))
    n_cols = min(len(regions), 3)
    n_rows = -(-len(regions) // n_cols)
    width = max(4.6 * n_cols + 0.8, 7.0)
    fig = plotting.new_figure(width, 3.1 * n_rows + 1.4)
    axes = _panels(fig, len(regions), n_cols, sharex=True)
    shown: set[int] = set()
    for r, ax in enumerate(axes):
        bottom = np.zeros(12)
        for b, number in enumerate(numbers):
            heights = coverage[r, :, b]
            if not _present(heights):
                continue
            heights = np.nan_to_num(heights, nan=0.0)
            ax.bar(
                _MONTHS,
                heights,
                bottom=bottom,
                width=0.8,
                color=plotting.biome_colour(names[number]),
                edgecolor="white",
                linewidth=0.3,
                label=_biome_label(number, names[number]),
                gid=f"biome {number}",
            )
            bottom += heights
            shown.add(number)
        missing = ~np.isfinite(coverage[r]).any(axis=1)
        for month in _MONTHS[missing]:
            ax.text(month, 1.5, "n/a", ha="center", va="bottom", fontsize=7, color="0.3")
        ax.set_ylim(0.0, 100.0)
        ax.set_xticks(_MONTHS, MONTH_LETTERS)
        ax.set_title(regions[r], fontsize=10)
        if r % n_cols == 0:
            ax.set_ylabel("coverage (% of classified area)")
        if _is_bottom(r, len(regions), n_cols):
            ax.set_xlabel("calendar month")
        twin = ax.twinx()
        twin.plot(
            _MONTHS,
            unclassified[r],
            color="black",
            linewidth=1.0,
            marker="D",
            markersize=4,
            markeredgecolor="white",
            markeredgewidth=0.6,
            clip_on=False,
            gid="unclassified",
        )
        twin.set_ylim(0.0, 100.0)
        if r % n_cols == n_cols - 1 or r == len(regions) - 1:
            twin.set_ylabel("unclassified (% of ocean)")
    handles: list[Any] = [
        Patch(facecolor=plotting.biome_colour(names[k]), label=_biome_label(k, names[k]))
        for k in sorted(shown)
    ]
    handles.append(
        Line2D(
            [],
            [],
            color="black",
            marker="D",
            markersize=4,
            markeredgecolor="white",
            label="unclassified share of the region's ocean (right axis)",
        )
    )
    fig.legend(
        handles=handles,
        loc="outside lower center",
        ncols=min(len(handles), max(int(width // 2.6), 1)),
        fontsize=8,
        frameon=False,
    )
    fig.suptitle(title, fontsize=11)
    return fig


def _lattice_shape(box_size: float) -> tuple[int, int]:
    """(n_lat_boxes, n_lon_boxes) of the lattice (docs/method.md §2.2)."""
    return round(180.0 / box_size), round(360.0 / box_size)


def frequency_maps_figure(
    frequency: np.ndarray,
    row_labels: Sequence[str],
    box_size: float,
    names: Mapping[int, str],
    land: tuple[np.ndarray, np.ndarray, np.ndarray] | None,
    title: str,
    *,
    colourbar_label: str = "% of years (all months: % of classified months)",
    cmap: str = "viridis",
) -> Figure:
    """Maps of how often each box carries each biome, with one shared colour bar.

    Parameters
    ----------
    frequency
        (n_rows, n_biomes, n_lat_boxes, n_lon_boxes) percent 0-100 on the box lattice (from
        90°S, 180°W); NaN where the box is never classified (drawn white). Biomes in
        sorted-number order.
    row_labels
        What each row is, e.g. ``["all months", "January", "July"]``.
    box_size
        Box size in degrees.
    names
        Biome number -> name.
    land
        ``(latitude, longitude, land_mask)`` of the native grid
        (:func:`~carbon_biomes.figures.detection.land_of`), or None for no land shading.
    title
        Figure title.
    colourbar_label
        Label of the colour bar.
    cmap
        Sequential colour map.

    Returns
    -------
    matplotlib.figure.Figure
        One map per (row, biome), rows of at most four maps.
    """
    frequency = np.asarray(frequency, dtype=float)
    numbers = sorted(names)
    _check_shape("frequency", frequency, (len(row_labels), len(numbers), *_lattice_shape(box_size)))
    n_cols = min(len(numbers), 4)
    lines_per_row = -(-len(numbers) // n_cols)
    n_lines = len(row_labels) * lines_per_row
    fig = plotting.new_figure(3.5 * n_cols + 0.4, 2.05 * n_lines + 1.6)
    lat_edges, lon_edges = plotting.lattice_edges(box_size, frequency.shape[2:])
    axes = []
    mesh = None
    for row, label in enumerate(row_labels):
        for b, number in enumerate(numbers):
            line, col = divmod(b, n_cols)
            position = (n_lines, n_cols, (row * lines_per_row + line) * n_cols + col + 1)
            ax = plotting.map_axes(fig, position)
            plotting.draw_land(ax, land)
            mesh = plotting.pcolormesh_on_map(
                ax,
                lon_edges,
                lat_edges,
                np.ma.masked_invalid(frequency[row, b]),
                cmap=cmap,
                vmin=0.0,
                vmax=100.0,
                rasterized=True,
            )
            plotting.add_gridlines(ax, labels=False)
            ax.set_title(f"{_biome_label(number, names[number])} · {label}", fontsize=8)
            axes.append(ax)
    if mesh is not None:
        fig.colorbar(
            mesh,
            ax=axes,
            orientation="horizontal",
            location="bottom",
            shrink=0.6,
            aspect=40,
            label=f"{colourbar_label}; white: ocean never classified",
        )
    fig.suptitle(title, fontsize=11)
    return fig


def _robust_limit(values: np.ndarray, percentile: float = 98.0) -> float:
    """Symmetric colour limit: a high percentile of |values| (1 if there is nothing finite)."""
    finite = np.abs(values[np.isfinite(values)])
    if finite.size == 0:
        return 1.0
    limit = float(np.percentile(finite, percentile))
    if limit <= 0.0:
        limit = float(finite.max())
    return limit if limit > 0.0 else 1.0


def rc_trend_maps_figure(
    slope_per_decade: np.ndarray,
    significant: np.ndarray,
    box_size: float,
    driver_labels: Sequence[str],
    land: tuple[np.ndarray, np.ndarray, np.ndarray] | None,
    title: str,
    *,
    significance_label: str = "dots: trend significant (Mann-Kendall test)",
) -> Figure:
    """Maps of the per-box trends of the regression coefficients, one per driver.

    Parameters
    ----------
    slope_per_decade
        (n_drivers, n_lat_boxes, n_lon_boxes) trend per decade on the box lattice; NaN where
        not computed (not drawn).
    significant
        Same shape, True where the trend is significant (stippled with black dots).
    box_size
        Box size in degrees.
    driver_labels
        Colour-bar label of each driver, with units.
    land
        ``(latitude, longitude, land_mask)`` of the native grid, or None for no land shading.
    title
        Figure title.
    significance_label
        Legend text explaining the stippling.

    Returns
    -------
    matplotlib.figure.Figure
        Diverging colours (``RdBu_r``) symmetric about 0, limited at the 98th percentile of
        |trend| of each driver (larger values saturate; the colour bars extend both ways).
    """
    import cartopy.crs as ccrs

    slope = np.asarray(slope_per_decade, dtype=float)
    significant = np.asarray(significant, dtype=bool)
    shape = (len(driver_labels), *_lattice_shape(box_size))
    _check_shape("slope_per_decade", slope, shape)
    _check_shape("significant", significant, shape)
    n_cols = min(len(driver_labels), 3)
    n_rows = -(-len(driver_labels) // n_cols)
    width = 5.4 * n_cols
    fig = plotting.new_figure(width, 3.3 * n_rows + 0.8)
    lat_edges, lon_edges = plotting.lattice_edges(box_size, shape[1:])
    # dot size: about 40 % of a box's width on the map (a map is ~85 % of its column)
    box_points = 72.0 * 0.85 * width / n_cols * box_size / 360.0
    dot_size = float(np.clip((0.45 * box_points) ** 2, 0.3, 16.0))
    for d, label in enumerate(driver_labels):
        ax = plotting.map_axes(fig, (n_rows, n_cols, d + 1))
        plotting.draw_land(ax, land)
        limit = _robust_limit(slope[d])
        mesh = plotting.pcolormesh_on_map(
            ax,
            lon_edges,
            lat_edges,
            np.ma.masked_invalid(slope[d]),
            cmap="RdBu_r",
            vmin=-limit,
            vmax=limit,
            rasterized=True,
        )
        rows, cols = np.nonzero(significant[d] & np.isfinite(slope[d]))
        if rows.size:
            ax.scatter(
                -180.0 + (cols + 0.5) * box_size,
                -90.0 + (rows + 0.5) * box_size,
                s=dot_size,
                c="black",
                marker="o",
                linewidths=0,
                transform=ccrs.PlateCarree(),
                zorder=3,
                gid="significant",
            )
        if not np.isfinite(slope[d]).any():
            ax.text(0.5, 0.5, "no trend computed", ha="center", va="center", transform=ax.transAxes)
        plotting.add_gridlines(ax)
        colourbar = fig.colorbar(
            mesh,
            ax=ax,
            orientation="horizontal",
            location="bottom",
            shrink=0.85,
            aspect=30,
            pad=0.06,
            extend="both",
            label=label,
        )
        colourbar.locator = MaxNLocator(nbins=4, symmetric=True)
        colourbar.update_ticks()
    handle = Line2D(
        [], [], linestyle="", marker="o", markersize=3, color="black", label=significance_label
    )
    fig.legend(handles=[handle], loc="outside lower center", fontsize=8, frameon=False)
    fig.suptitle(title, fontsize=11)
    return fig
