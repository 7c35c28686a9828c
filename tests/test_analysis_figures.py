"""The analysis figures draw what they are given (docs/method.md §4)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
from matplotlib.collections import PathCollection, QuadMesh
from matplotlib.colors import to_hex

from carbon_biomes.figures import analysis
from carbon_biomes.figures.plotting import biome_colour

NAMES = {1: "SUBP+UP I", 2: "SUBTR I", 3: "ICE"}
REGIONS = ["Arctic", "North Atlantic", "Southern Ocean", "Global"]


def visible_axes(fig):
    return [ax for ax in fig.axes if ax.get_visible() and ax.get_title()]


def test_seasonal_cycle_panels_colours_and_omitted_biomes():
    rng = np.random.default_rng(1)
    mean = rng.uniform(5, 60, (4, 3, 12))
    mean[0, 1] = np.nan  # SUBTR I absent from the Arctic
    mean[2, 2] = 0.0  # ICE never in the Southern Ocean here
    fig = analysis.seasonal_cycle_figure(mean, np.ones_like(mean), REGIONS, NAMES, "t")
    panels = visible_axes(fig)
    assert [ax.get_title() for ax in panels] == REGIONS
    arctic = {to_hex(line.get_color()) for line in panels[0].get_lines()}
    assert arctic == {to_hex(biome_colour("SUBP+UP I")), to_hex(biome_colour("ICE"))}
    assert len(panels[2].get_lines()) == 2 and len(panels[3].get_lines()) == 3
    np.testing.assert_allclose(panels[3].get_lines()[0].get_ydata(), mean[3, 0])


def test_coverage_series_legend_has_slope_and_p_or_not_tested():
    times = 2000 + (np.arange(24) + 0.5) / 12
    monthly = np.full((4, 24, 3), 30.0)
    annual = np.full((4, 2, 3), 30.0)
    trends = {("Arctic", 1): (1.234, 0.0312)}
    fig = analysis.coverage_series_figure(times, monthly, np.array([2000.5, 2001.5]), annual,
                                          trends, REGIONS, NAMES, "t")  # fmt: skip
    labels = [t.get_text() for t in visible_axes(fig)[0].get_legend().get_texts()]
    assert "SUBP+UP I: +1.23 pp/decade (p = 0.031)" in labels
    assert "ICE: not tested" in labels


def test_coverage_bars_stack_to_100():
    rng = np.random.default_rng(2)
    coverage = rng.dirichlet(np.ones(3), (4, 12)) * 100.0
    fig = analysis.coverage_bars_figure(coverage, np.full((4, 12), 10.0), REGIONS, NAMES, "t")
    panel = visible_axes(fig)[0]
    tops = {}
    for patch in panel.patches:
        x = round(patch.get_x(), 6)
        tops[x] = max(tops.get(x, 0.0), patch.get_y() + patch.get_height())
    assert len(tops) == 12
    np.testing.assert_allclose(list(tops.values()), 100.0, atol=1e-9)


def test_rc_trend_maps_are_symmetric_and_stippled():
    slope = np.zeros((3, 18, 36))
    slope[1, 5:8, 10:20] = 2.0
    slope[1, 0, 0] = -0.5
    significant = slope != 0
    fig = analysis.rc_trend_maps_figure(slope, significant, 10.0, ["a", "b", "c"], None, "t")
    maps = [ax for ax in fig.axes if hasattr(ax, "projection")]
    assert len(maps) == 3
    mesh = next(c for c in maps[1].collections if isinstance(c, QuadMesh))
    low, high = mesh.get_clim()
    assert low == -high and high > 0
    dots = [c for c in maps[1].collections if isinstance(c, PathCollection)]
    assert len(dots) == 1 and len(dots[0].get_offsets()) == int(significant[1].sum())
    assert not [c for c in maps[0].collections if isinstance(c, PathCollection)]
