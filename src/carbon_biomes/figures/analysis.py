"""Figures of the analysis stage: seasonal cycles, coverage series, bars, frequency and RC trends.

Arrays in, :class:`matplotlib.figure.Figure` out (docs/method.md §4). Every biome keeps its colour
(:func:`~carbon_biomes.figures.plotting.biome_colour` of its name) in every figure.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from carbon_biomes.figures import plotting

__all__ = [
    "coverage_bars_figure",
    "coverage_series_figure",
    "frequency_maps_figure",
    "rc_trend_maps_figure",
    "seasonal_cycle_figure",
]

MONTH_LETTERS = ("J", "F", "M", "A", "M", "J", "J", "A", "S", "O", "N", "D")
Land = tuple[np.ndarray, np.ndarray, np.ndarray] | None


def _panel_grid(fig: Figure, n: int, columns: int = 3, **kwargs: Any) -> list[Axes]:
    columns = min(columns, n)
    rows = math.ceil(n / columns)
    axes = fig.subplots(rows, columns, squeeze=False, **kwargs).ravel()
    for ax in axes[n:]:
        ax.set_visible(False)
    for ax in axes[:n]:
        ax.tick_params(labelbottom=True)  # shared x, but every panel keeps its labels
    return list(axes[:n])


def _present(values: np.ndarray) -> bool:
    finite = values[np.isfinite(values)]
    return bool(finite.size) and bool(np.any(finite != 0.0))


def _biome_legend(fig: Figure, handles: list[Any], labels: list[str]) -> None:
    if handles:
        fig.legend(handles, labels, loc="outside lower center", ncols=min(len(labels), 4),
                   fontsize=8, frameon=False)  # fmt: skip


def seasonal_cycle_figure(
    mean: np.ndarray,
    std: np.ndarray,
    regions: Sequence[str],
    names: Mapping[int, str],
    title: str,
    *,
    ylabel: str = "coverage (% of classified area)",
) -> Figure:
    """Seasonal cycle per region: mean over the years per calendar month, ±1 std band.

    Parameters
    ----------
    mean, std
        (n_regions, n_biomes, 12) values per calendar month (NaN allowed); biomes in the order
        of ``sorted(names)``.
    regions
        Region names (one panel each).
    names
        Biome number -> name.
    title
        Figure title.
    ylabel
        Label of the y axes (with units).

    Returns
    -------
    Figure
        Biomes that are all-NaN or all-zero in a region are left out of its panel.
    """
    numbers = sorted(names)
    fig = plotting.new_figure(12.0, 3.2 * math.ceil(len(regions) / 3) + 1.0)
    axes = _panel_grid(fig, len(regions), sharex=True)
    months = np.arange(1, 13)
    legend: dict[str, Any] = {}
    for r, (ax, region) in enumerate(zip(axes, regions, strict=True)):
        for k, number in enumerate(numbers):
            values = np.asarray(mean[r, k], dtype=float)
            if not _present(values):
                continue
            colour = plotting.biome_colour(names[number])
            spread = np.nan_to_num(np.asarray(std[r, k], dtype=float))
            (line,) = ax.plot(months, values, color=colour, marker="o", markersize=3,
                              linewidth=1.5, label=names[number])  # fmt: skip
            ax.fill_between(months, values - spread, values + spread, color=colour, alpha=0.2,
                            linewidth=0)  # fmt: skip
            legend.setdefault(names[number], line)
        ax.set_title(region, fontsize=10)
        ax.set_xticks(months, MONTH_LETTERS)
        ax.set_ylabel(ylabel, fontsize=8)
        ax.grid(alpha=0.3)
    fig.suptitle(f"{title}\n(lines: mean over the years; bands: ±1 standard deviation)",
                 fontsize=11)  # fmt: skip
    _biome_legend(fig, list(legend.values()), list(legend))
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
    """Coverage time series per region with Theil-Sen trend lines and p-values.

    Parameters
    ----------
    times
        (n_months,) fractional years of the monthly values.
    monthly
        (n_regions, n_months, n_biomes) coverage percent.
    annual_years, annual
        (n_years,) fractional years and (n_regions, n_years, n_biomes) annual means.
    trends
        (region, biome number) -> (slope in percentage points per decade, p-value); a missing
        key means the series was not tested.
    regions, names, title
        Region names (one panel each), biome number -> name, figure title.
    """
    numbers = sorted(names)
    fig = plotting.new_figure(12.0, 3.4 * math.ceil(len(regions) / 2) + 0.8)
    axes = _panel_grid(fig, len(regions), columns=2, sharex=True)
    for r, (ax, region) in enumerate(zip(axes, regions, strict=True)):
        for k, number in enumerate(numbers):
            values = np.asarray(monthly[r, :, k], dtype=float)
            if not _present(values):
                continue
            name = names[number]
            colour = plotting.biome_colour(name)
            ax.plot(times, values, color=colour, linewidth=0.6, alpha=0.45)
            yearly = np.asarray(annual[r, :, k], dtype=float)
            ax.plot(annual_years, yearly, color=colour, marker="o", markersize=3, linewidth=1.2)
            trend = trends.get((region, number))
            if trend is None or not np.isfinite(trend[0]):
                label = f"{name}: not tested"
            else:
                slope, p_value = trend
                valid = np.isfinite(yearly)
                if valid.any():
                    t0, y0 = annual_years[valid].mean(), yearly[valid].mean()
                else:
                    t0, y0 = np.nanmean(times), np.nanmean(values)
                span = np.array([times[0], times[-1]])
                ax.plot(span, y0 + slope / 10.0 * (span - t0), color=colour, linestyle="--",
                        linewidth=1.2)  # fmt: skip
                label = f"{name}: {slope:+.2f} pp/decade (p = {p_value:.2g})"
            ax.plot([], [], color=colour, linewidth=1.5, label=label)
        ax.set_title(region, fontsize=10)
        ax.set_ylabel("coverage (%)", fontsize=8)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="best", framealpha=0.7)
    fig.suptitle(f"{title}\n(thin: monthly; markers: annual means; dashed: Theil-Sen trend of "
                 "the deseasonalized series)", fontsize=11)  # fmt: skip
    return fig


def coverage_bars_figure(
    coverage: np.ndarray,
    unclassified: np.ndarray,
    regions: Sequence[str],
    names: Mapping[int, str],
    title: str,
) -> Figure:
    """Stacked coverage bars per calendar month and region, with the unclassified share.

    Parameters
    ----------
    coverage
        (n_regions, 12, n_biomes) mean coverage percent (rows sum to 100, or NaN).
    unclassified
        (n_regions, 12) unclassified percent of the region's ocean.
    regions, names, title
        Region names (one panel each), biome number -> name, figure title.
    """
    numbers = sorted(names)
    fig = plotting.new_figure(12.0, 3.2 * math.ceil(len(regions) / 3) + 1.0)
    axes = _panel_grid(fig, len(regions), sharex=True)
    months = np.arange(1, 13)
    legend: dict[str, Any] = {}
    for r, (ax, region) in enumerate(zip(axes, regions, strict=True)):
        bottom = np.zeros(12)
        for k, number in enumerate(numbers):
            heights = np.nan_to_num(np.asarray(coverage[r, :, k], dtype=float))
            if not heights.any():
                continue
            bars = ax.bar(months, heights, bottom=bottom, width=0.8,
                          color=plotting.biome_colour(names[number]), edgecolor="white",
                          linewidth=0.3, label=names[number])  # fmt: skip
            legend.setdefault(names[number], bars)
            bottom += heights
        ax.set_ylim(0, 100)
        ax.set_xticks(months, MONTH_LETTERS)
        ax.set_ylabel("coverage (% of classified area)", fontsize=8)
        twin = ax.twinx()
        (line,) = twin.plot(months, unclassified[r], color="black", marker="D", markersize=3,
                            linewidth=1.0, label="unclassified (% of region's ocean)")  # fmt: skip
        twin.set_ylim(0, 100)
        twin.set_ylabel("unclassified (%)", fontsize=8)
        legend.setdefault("unclassified (% of the region's ocean, right axis)", line)
        ax.set_title(region, fontsize=10)
    fig.suptitle(title, fontsize=11)
    _biome_legend(fig, list(legend.values()), list(legend))
    return fig


def _lattice_edges(box_size: float, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    return (-180.0 + box_size * np.arange(shape[1] + 1),
            -90.0 + box_size * np.arange(shape[0] + 1))  # fmt: skip


def _map_panel(fig: Figure, position: tuple[int, int, int], land: Land) -> Axes:
    ax = plotting.map_axes(fig, position)
    if land is not None:
        plotting._draw_land(ax, *land)
    ax.gridlines(linewidth=0.3, color="0.6", alpha=0.6)
    return ax


def frequency_maps_figure(
    frequency: np.ndarray,
    row_labels: Sequence[str],
    box_size: float,
    names: Mapping[int, str],
    land: Land,
    title: str,
) -> Figure:
    """Maps of the percentage of years in which each box carries each biome.

    Parameters
    ----------
    frequency
        (n_rows, n_biomes, n_lat_boxes, n_lon_boxes) percent (NaN: never classified).
    row_labels
        What each row shows (e.g. ``all months``, ``January``).
    box_size
        Lattice box size in degrees.
    names, land, title
        Biome number -> name, native land mask (:func:`~.detection.land_of`) or None, title.
    """
    import cartopy.crs as ccrs

    numbers = sorted(names)
    n_rows, n_cols = len(row_labels), len(numbers)
    fig = plotting.new_figure(3.3 * n_cols + 1.0, 2.1 * n_rows + 1.0)
    lon_edges, lat_edges = _lattice_edges(box_size, frequency.shape[-2:])
    image = None
    for i, row in enumerate(row_labels):
        for k, number in enumerate(numbers):
            ax = _map_panel(fig, (n_rows, n_cols, i * n_cols + k + 1), land)
            image = ax.pcolormesh(lon_edges, lat_edges, np.ma.masked_invalid(frequency[i, k]),
                                  cmap="viridis", vmin=0, vmax=100,
                                  transform=ccrs.PlateCarree(), rasterized=True)  # fmt: skip
            ax.set_title(f"{names[number]}, {row}", fontsize=8,
                         color=plotting.biome_colour(names[number]))  # fmt: skip
    if image is not None:
        fig.colorbar(image, ax=fig.axes, orientation="horizontal", shrink=0.5,
                     label="% of years carrying the biome")  # fmt: skip
    fig.suptitle(title, fontsize=11)
    return fig


def rc_trend_maps_figure(
    slope_per_decade: np.ndarray,
    significant: np.ndarray,
    box_size: float,
    driver_labels: Sequence[str],
    land: Land,
    title: str,
) -> Figure:
    """Maps of the trend of each regression coefficient, stippled where significant.

    Parameters
    ----------
    slope_per_decade
        (n_drivers, n_lat_boxes, n_lon_boxes) trend per decade (NaN: not tested).
    significant
        The same shape, True where the trend is significant.
    box_size
        Lattice box size in degrees.
    driver_labels
        Colour-bar label of each driver (with units).
    land, title
        Native land mask or None; figure title.
    """
    import cartopy.crs as ccrs

    n = len(driver_labels)
    fig = plotting.new_figure(5.0 * n, 4.2)
    lon_edges, lat_edges = _lattice_edges(box_size, slope_per_decade.shape[-2:])
    lon_c = 0.5 * (lon_edges[:-1] + lon_edges[1:])
    lat_c = 0.5 * (lat_edges[:-1] + lat_edges[1:])
    for d, label in enumerate(driver_labels):
        ax = _map_panel(fig, (1, n, d + 1), land)
        values = np.asarray(slope_per_decade[d], dtype=float)
        finite = np.abs(values[np.isfinite(values)])
        limit = float(np.percentile(finite, 98)) if finite.size else 1.0
        limit = limit if limit > 0 else 1.0
        image = ax.pcolormesh(lon_edges, lat_edges, np.ma.masked_invalid(values), cmap="RdBu_r",
                              vmin=-limit, vmax=limit, transform=ccrs.PlateCarree(),
                              rasterized=True)  # fmt: skip
        chosen = np.asarray(significant[d], dtype=bool) & np.isfinite(values)
        i, j = np.nonzero(chosen)
        if i.size:
            ax.scatter(lon_c[j], lat_c[i], s=1.5, color="black", transform=ccrs.PlateCarree(),
                       label="significant trend")  # fmt: skip
        if not finite.size:
            ax.text(0.5, 0.5, "not tested\n(period too short)", transform=ax.transAxes,
                    ha="center", va="center", fontsize=9)  # fmt: skip
        fig.colorbar(image, ax=ax, orientation="horizontal", shrink=0.85, label=label)
    fig.suptitle(f"{title}\n(dots: trend significant at the test's level)", fontsize=11)
    return fig
