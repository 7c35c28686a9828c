"""The analysis figures draw exactly the arrays they are given, in the biomes' own colours."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.collections import PathCollection, PolyCollection, QuadMesh  # noqa: E402
from matplotlib.colors import to_hex  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

from carbon_biomes.figures import analysis  # noqa: E402
from carbon_biomes.figures.plotting import biome_colour  # noqa: E402

NAMES = {2: "SUBTR I", 5: "SUBP+UP I", 7: "ICE"}  # axis order: 2, 5, 7
REGIONS = ["Arctic", "North Atlantic", "Southern Ocean", "Equatorial Pacific", "Global"]


def panels(fig):
    """Data panels (not twins or colour bars), in drawing order."""
    return [ax for ax in fig.axes if ax.get_title() and ax.get_visible()]


def overlaps(fig, legend):
    """Whether a legend's box overlaps the data area of any panel."""
    fig.draw_without_rendering()
    box = legend.get_window_extent()
    return any(box.overlaps(ax.get_window_extent()) for ax in panels(fig))


def line_colours(ax):
    return [to_hex(line.get_color()) for line in ax.get_lines() if line.get_gid()]


# --- seasonal cycle --------------------------------------------------------------------------


def seasonal_data():
    rng = np.random.default_rng(0)
    mean = rng.uniform(5.0, 60.0, (len(REGIONS), 3, 12))
    std = rng.uniform(0.5, 3.0, mean.shape)
    mean[0, 0] = np.nan  # SUBTR I never in the Arctic
    mean[2, 2] = 0.0  # ICE present in no month of the Southern Ocean
    std[3, 1] = np.nan  # one year only: no band
    return mean, std


def test_seasonal_cycle_one_panel_per_region_lines_in_biome_colours():
    mean, std = seasonal_data()
    fig = analysis.seasonal_cycle_figure(mean, std, REGIONS, NAMES, "t")
    axes = panels(fig)
    assert [ax.get_title() for ax in axes] == REGIONS
    assert line_colours(axes[0]) == [biome_colour("SUBP+UP I"), biome_colour("ICE")]
    assert line_colours(axes[2]) == [biome_colour("SUBTR I"), biome_colour("SUBP+UP I")]
    assert line_colours(axes[4]) == [biome_colour(n) for n in ("SUBTR I", "SUBP+UP I", "ICE")]
    np.testing.assert_allclose(axes[1].get_lines()[2].get_ydata(), mean[1, 2])
    np.testing.assert_array_equal(axes[1].get_lines()[0].get_xdata(), np.arange(1, 13))
    # a ±1 std band per biome drawn, none where the std is NaN
    bands = [len([c for c in ax.collections if isinstance(c, PolyCollection)]) for ax in axes]
    assert bands == [2, 3, 2, 2, 3]
    # ticks are the calendar months; shared y axis starting at 0 for coverage
    fig.draw_without_rendering()
    for ax in axes[2:]:  # the lowest panel of each column is labelled
        assert [t.get_text() for t in ax.get_xticklabels()] == list(analysis.MONTH_LETTERS)
        assert ax.get_xlabel() == "calendar month"
    assert {ax.get_ylim() for ax in axes} == {axes[0].get_ylim()}
    assert axes[0].get_ylim()[0] == 0.0
    assert axes[0].get_ylabel() == "coverage (% of classified area)"
    (legend,) = fig.legends
    assert [t.get_text() for t in legend.get_texts()] == ["2: SUBTR I", "5: SUBP+UP I", "7: ICE"]
    assert not overlaps(fig, legend)


def test_seasonal_cycle_of_a_physical_field_keeps_negative_values():
    mean = np.array([[np.full(12, 25.0), np.full(12, 8.0), np.linspace(-1.8, 0.5, 12)]])
    fig = analysis.seasonal_cycle_figure(
        mean, np.full_like(mean, 0.3), ["Global ocean"], NAMES, "t", ylabel="SST (degC)"
    )
    (ax,) = panels(fig)
    assert ax.get_ylabel() == "SST (degC)"
    low, high = ax.get_ylim()
    assert low < -1.8 and high > 25.0


def test_seasonal_cycle_checks_shapes():
    mean, std = seasonal_data()
    with pytest.raises(ValueError, match="mean has shape"):
        analysis.seasonal_cycle_figure(mean[:, :2], std[:, :2], REGIONS, NAMES, "t")


# --- coverage series -------------------------------------------------------------------------


def series_data(n_years=12):
    rng = np.random.default_rng(1)
    times = 2000.0 + (np.arange(12 * n_years) + 0.5) / 12.0
    monthly = rng.uniform(10.0, 40.0, (len(REGIONS), times.size, 3))
    monthly[1, :, 2] = 0.0  # no ICE in the North Atlantic
    years = 2000.5 + np.arange(n_years)
    annual = monthly.reshape(len(REGIONS), n_years, 12, 3).mean(axis=2)
    annual[0, 3, 1] = np.nan  # an incomplete year
    trends = {("Arctic", 5): (1.234, 0.0312), ("Arctic", 2): (-0.5, 0.0004)}
    return times, monthly, years, annual, trends


def test_coverage_series_legends_give_slope_and_p_or_not_tested():
    times, monthly, years, annual, trends = series_data()
    fig = analysis.coverage_series_figure(
        times, monthly, years, annual, trends, REGIONS, NAMES, "t"
    )
    axes = panels(fig)
    assert [ax.get_title() for ax in axes] == REGIONS
    labels = [t.get_text() for t in axes[0].get_legend().get_texts()]
    assert labels == [
        "SUBTR I: -0.50 pp/decade (p < 0.001)",
        "SUBP+UP I: +1.23 pp/decade (p = 0.031)",
        "ICE: not tested",
    ]
    # ICE (all zero) is left out of the North Atlantic
    assert [t.get_text() for t in axes[1].get_legend().get_texts()] == [
        "SUBTR I: not tested",
        "SUBP+UP I: not tested",
    ]
    assert line_colours(axes[1]) == [biome_colour("SUBTR I"), biome_colour("SUBP+UP I")]
    for ax in axes:  # legends right of the panels, off the data
        box = ax.get_legend().get_window_extent()
        assert box.x0 >= ax.get_window_extent().x1 - 1


def test_coverage_series_trend_line_has_the_slope_and_passes_through_the_annual_mean():
    times, monthly, years, annual, trends = series_data()
    fig = analysis.coverage_series_figure(
        times, monthly, years, annual, trends, REGIONS, NAMES, "t"
    )
    arctic = panels(fig)[0]
    (trend,) = [line for line in arctic.get_lines() if line.get_gid() == "trend 5"]
    x, y = trend.get_xdata(), trend.get_ydata()
    assert (y[1] - y[0]) / (x[1] - x[0]) == pytest.approx(0.1234)
    valid = np.isfinite(annual[0, :, 1])
    x_mean, y_mean = years[valid].mean(), annual[0, valid, 1].mean()
    assert y[0] + (x_mean - x[0]) * 0.1234 == pytest.approx(y_mean)
    assert (x[0], x[1]) == (years[0], years[-1])
    # no trend line for untested series; the monthly line is faint and thin
    assert not [line for line in panels(fig)[1].get_lines() if "trend" in str(line.get_gid())]
    (annual_line,) = [line for line in arctic.get_lines() if line.get_gid() == "biome 5"]
    np.testing.assert_allclose(annual_line.get_ydata(), annual[0, :, 1])
    monthly_lines = [line for line in arctic.get_lines() if line.get_gid() is None]
    assert all(line.get_alpha() < 0.5 and line.get_linewidth() < 1 for line in monthly_lines)


def test_format_trend():
    assert analysis.format_trend("A", (12.345, 0.2)) == "A: +12.35 pp/decade (p = 0.2)"
    assert analysis.format_trend("A", None) == "A: not tested"
    assert analysis.format_trend("A", (np.nan, np.nan)) == "A: not tested"
    assert analysis.format_trend("A", (-0.004, 0.5), "x/decade") == "A: -0.00 x/decade (p = 0.5)"


# --- coverage bars ---------------------------------------------------------------------------


def test_coverage_bars_stack_to_100_with_the_unclassified_share():
    rng = np.random.default_rng(2)
    coverage = rng.dirichlet(np.ones(3), (len(REGIONS), 12)) * 100.0
    coverage[0, :, 2] = 0.0  # no ICE in the Arctic panel
    coverage[0] *= 100.0 / coverage[0].sum(axis=1, keepdims=True)
    coverage[1, 6] = np.nan  # July: nothing classified
    unclassified = rng.uniform(0.0, 60.0, (len(REGIONS), 12))
    fig = analysis.coverage_bars_figure(coverage, unclassified, REGIONS, NAMES, "t")
    axes = panels(fig)
    assert [ax.get_title() for ax in axes] == REGIONS
    for r, ax in enumerate(axes):
        totals: dict[float, float] = {}
        for bar in ax.patches:
            assert isinstance(bar, Rectangle)
            centre = round(bar.get_x() + bar.get_width() / 2, 6)
            assert bar.get_y() == pytest.approx(totals.get(centre, 0.0))  # stacked
            totals[centre] = totals.get(centre, 0.0) + bar.get_height()
        months = [m for m in range(1, 13) if np.isfinite(coverage[r, m - 1]).all()]
        filled = {m: totals[m] for m in months}
        np.testing.assert_allclose(list(filled.values()), 100.0)
        assert totals.get(7, 0.0) == (0.0 if r == 1 else pytest.approx(100.0))
        assert ax.get_ylim() == (0.0, 100.0)
        (twin,) = [a for a in fig.axes if a is not ax and a.bbox.bounds == ax.bbox.bounds]
        (line,) = [line for line in twin.get_lines() if line.get_gid() == "unclassified"]
        np.testing.assert_allclose(line.get_ydata(), unclassified[r])
        assert twin.get_ylim() == (0.0, 100.0)
    arctic_colours = {to_hex(bar.get_facecolor()) for bar in axes[0].patches}
    assert arctic_colours == {biome_colour("SUBTR I"), biome_colour("SUBP+UP I")}
    assert axes[0].get_ylabel() == "coverage (% of classified area)"
    (legend,) = fig.legends
    texts = [t.get_text() for t in legend.get_texts()]
    assert texts[:3] == ["2: SUBTR I", "5: SUBP+UP I", "7: ICE"]
    assert "unclassified" in texts[-1]
    assert not overlaps(fig, legend)


# --- maps ------------------------------------------------------------------------------------


def test_frequency_maps_one_map_per_row_and_biome_with_one_colour_bar():
    box = 10.0
    rng = np.random.default_rng(3)
    frequency = rng.uniform(0.0, 100.0, (2, 3, 18, 36))
    frequency[:, :, :2] = np.nan  # never classified
    rows = ["all months", "July"]
    fig = analysis.frequency_maps_figure(frequency, rows, box, NAMES, None, "t")
    maps = [ax for ax in fig.axes if hasattr(ax, "projection")]
    assert len(maps) == 6
    assert [ax.get_title() for ax in maps[:4]] == [
        "2: SUBTR I · all months",
        "5: SUBP+UP I · all months",
        "7: ICE · all months",
        "2: SUBTR I · July",
    ]
    for ax in maps:
        (mesh,) = [c for c in ax.collections if isinstance(c, QuadMesh)]
        assert mesh.get_clim() == (0.0, 100.0)
        assert mesh.get_cmap().name == "viridis"
    # the map shows the field: the drawn values are a permutation of the columns
    shown = np.ma.filled(maps[4].collections[0].get_array(), np.nan).reshape(18, -1)
    np.testing.assert_allclose(np.nansum(shown), np.nansum(frequency[1, 1]))
    colour_bars = [ax for ax in fig.axes if not hasattr(ax, "projection")]
    assert len(colour_bars) == 1
    assert colour_bars[0].get_xlabel().startswith("% of years")


def test_frequency_maps_draw_land_from_the_native_mask():
    lat = np.arange(-89.0, 90.0, 2.0)
    lon = np.arange(-179.0, 180.0, 2.0)
    land = (np.abs(lat)[:, None] < 20) & (np.abs(lon)[None, :] < 20)
    frequency = np.full((1, 3, 18, 36), 50.0)
    fig = analysis.frequency_maps_figure(
        frequency, ["all months"], 10.0, NAMES, (lat, lon, land), "t"
    )
    maps = [ax for ax in fig.axes if hasattr(ax, "projection")]
    assert all(len([c for c in ax.collections if isinstance(c, QuadMesh)]) == 2 for ax in maps)
    with pytest.raises(ValueError, match="frequency has shape"):
        analysis.frequency_maps_figure(frequency, ["all months"], 5.0, NAMES, None, "t")


def test_rc_trend_maps_symmetric_robust_limits_and_stippling():
    rng = np.random.default_rng(4)
    slope = rng.normal(0.0, 1.0, (3, 18, 36)) * np.array([1.0, 0.01, 5.0])[:, None, None]
    slope[1, 0, 0] = 50.0  # an outlier does not set the colour range
    slope[:, :3] = np.nan
    significant = rng.random(slope.shape) < 0.2
    significant[2] = False
    labels = ["d fCO2/d SST trend (a)", "d fCO2/d DIC trend (b)", "d fCO2/d ALK trend (c)"]
    fig = analysis.rc_trend_maps_figure(slope, significant, 10.0, labels, None, "t")
    maps = [ax for ax in fig.axes if hasattr(ax, "projection")]
    assert len(maps) == 3
    for d, ax in enumerate(maps):
        (mesh,) = [c for c in ax.collections if isinstance(c, QuadMesh)]
        low, high = mesh.get_clim()
        expected = np.percentile(np.abs(slope[d][np.isfinite(slope[d])]), 98)
        assert -low == high == pytest.approx(expected)
        assert mesh.get_cmap().name == "RdBu_r"
        dots = [c for c in ax.collections if isinstance(c, PathCollection)]
        n_significant = int((significant[d] & np.isfinite(slope[d])).sum())
        if n_significant:
            (stipple,) = dots
            assert len(stipple.get_offsets()) == n_significant
        else:
            assert not dots
    assert maps[1].collections[0].get_clim()[1] < 1.0  # the outlier saturates
    colour_bars = [ax for ax in fig.axes if not hasattr(ax, "projection")]
    assert [ax.get_xlabel() for ax in colour_bars] == labels
    (legend,) = fig.legends
    assert "significant" in legend.get_texts()[0].get_text()
    assert not overlaps(fig, legend)


def test_rc_trend_maps_without_any_trend():
    slope = np.full((1, 18, 36), np.nan)
    fig = analysis.rc_trend_maps_figure(slope, slope > 0, 10.0, ["x (u)"], None, "t")
    (ax,) = [ax for ax in fig.axes if hasattr(ax, "projection")]
    assert ax.collections[0].get_clim() == (-1.0, 1.0)
    assert any(t.get_text() == "no trend computed" for t in ax.texts)
