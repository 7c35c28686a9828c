"""Figures render offline (no coastline download) and keep colours tied to biome names."""

from __future__ import annotations

import socket

import numpy as np
import pytest

from carbon_biomes.figures import plotting
from carbon_biomes.workflow.products import save_figure


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError("network access attempted during plotting")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


def _labels(box_size: float = 10.0):
    rng = np.random.default_rng(0)
    n_lat, n_lon = int(180 / box_size), int(360 / box_size)
    ids = np.sort(rng.choice(n_lat * n_lon, n_lat * n_lon // 2, replace=False))
    lat_row = ids // n_lon
    labels = np.where(lat_row < n_lat / 3, 1, np.where(lat_row < 2 * n_lat / 3, 2, 3))
    grid = np.ma.masked_all(n_lat * n_lon, dtype=np.int16)
    grid[ids] = labels
    return grid.reshape(n_lat, n_lon)


@pytest.mark.parametrize("curvilinear", [False, True])
def test_biome_map_renders_without_network(tmp_path, no_network, curvilinear):
    lat = np.linspace(-89.5, 89.5, 180)
    lon = np.linspace(-179.5, 179.5, 360)
    if curvilinear:
        lat, lon = np.meshgrid(lat, lon, indexing="ij")
        land = (lon > 0) & (lon < 40) & (np.abs(lat) < 30)
    else:
        land = np.zeros((180, 360), bool)
        land[60:120, 180:220] = True
    fig = plotting.new_figure()
    ax = plotting.map_axes(fig)
    names = {1: "SUBP+UP I", 2: "SUBTR", 3: "ICE"}
    plotting.plot_biome_map(ax, _labels(), 10.0, names, land=(lat, lon, land), title="test")
    path = save_figure(fig, tmp_path / "map.png")
    assert path.stat().st_size > 10_000
    assert not list(tmp_path.glob(".*partial*"))


def test_colours_follow_names_not_numbers():
    a = plotting.biome_colours({1: "SUBTR I", 2: "ICE"})
    b = plotting.biome_colours({5: "ICE", 7: "SUBTR I"})
    assert a[1] == b[7] and a[2] == b[5]
    family = {plotting.biome_colour(f"SUBTR {n}") for n in ("I", "II", "III")}
    assert len(family) == 3


def test_dendrogram_node_positions_match_scipy():
    from scipy.cluster.hierarchy import dendrogram, linkage

    x = np.random.default_rng(3).normal(size=(40, 3))
    link = linkage(x, "ward")
    xs, heights = plotting.dendrogram_node_positions(link)
    drawn = dendrogram(link, no_plot=True)
    # each drawn link's top midpoint is an internal node at its height
    tops = {(round((ic[1] + ic[2]) / 2, 6), round(dc[1], 6)) for ic, dc in
            zip(drawn["icoord"], drawn["dcoord"], strict=True)}  # fmt: skip
    ours = {(round(xs[n], 6), round(heights[n], 6)) for n in range(40, 79)}
    assert tops == ours


# --- colour-blind-safe palette ---------------------------------------------------------------

CVD_TYPES = ["protanomaly", "deuteranomaly", "tritanomaly"]  # severity 100: -anopia
MIN_DELTA_E = 10.0  # CAM02-UCS; ~1 is a just-noticeable difference


def _seen(colour, cvd_type):
    from colorspacious import cspace_convert
    from matplotlib.colors import to_rgb

    rgb = np.asarray(to_rgb(colour))
    if cvd_type is None:
        return rgb
    space = {"name": "sRGB1+CVD", "cvd_type": cvd_type, "severity": 100}
    return cspace_convert(rgb, space, "sRGB1")


def _delta_e(a, b, cvd_type):
    from colorspacious import deltaE

    return float(deltaE(_seen(a, cvd_type), _seen(b, cvd_type), input_space="sRGB1"))


def _cvd_safe_names():
    from carbon_biomes.core.naming import FAMILIES, roman

    names = []
    for family in FAMILIES:
        names += [f"{family} {roman(n)}" for n in range(1, plotting.CVD_SAFE_MEMBERS + 1)]
    return names


@pytest.mark.parametrize("cvd_type", CVD_TYPES)
def test_subtropical_and_subpolar_first_members_differ_under_cvd(cvd_type):
    assert (
        _delta_e(plotting.biome_colour("SUBTR I"), plotting.biome_colour("SUBP+UP I"), cvd_type)
        >= MIN_DELTA_E
    )


@pytest.mark.parametrize("cvd_type", [None, *CVD_TYPES])
def test_first_members_of_every_family_are_pairwise_distinguishable(cvd_type):
    import itertools

    names = _cvd_safe_names()
    assert len(names) == 3 * plotting.CVD_SAFE_MEMBERS >= 12
    worst = min(
        (_delta_e(plotting.biome_colour(a), plotting.biome_colour(b), cvd_type), a, b)
        for a, b in itertools.combinations(names, 2)
    )
    assert worst[0] >= MIN_DELTA_E, worst
    # nor can a biome be mistaken for unclassified ocean (white) or land
    background = min(
        _delta_e(plotting.biome_colour(a), reference, cvd_type)
        for a in names
        for reference in (plotting.UNCLASSIFIED_COLOUR, plotting.LAND_COLOUR)
    )
    assert background >= MIN_DELTA_E


@pytest.mark.parametrize("cvd_type", [None, *CVD_TYPES])
def test_members_of_one_family_stay_apart_up_to_six(cvd_type):
    import itertools

    from carbon_biomes.core.naming import FAMILIES, roman

    for family in FAMILIES:
        colours = [plotting.biome_colour(f"{family} {roman(n)}") for n in range(1, 7)]
        assert min(_delta_e(a, b, cvd_type) for a, b in itertools.combinations(colours, 2)) >= 8
        # beyond the designed shades the colours still differ (blended towards grey)
        more = {plotting.biome_colour(f"{family} {roman(n)}") for n in range(1, 13)}
        assert len(more) == 12


def test_palette_covers_the_naming_families_with_published_base_colours():
    from carbon_biomes.core.naming import FAMILIES

    tol = {"#EE7733", "#66CCEE", "#332288"}  # Tol vibrant orange, bright cyan, muted indigo
    assert set(FAMILIES) <= set(plotting.FAMILY_PALETTES)
    assert {palette[0] for palette in plotting.FAMILY_PALETTES.values()} == tol
    for family in FAMILIES:
        # a family named without numeral (a single member) has the colour of member I
        assert plotting.biome_colour(family) == plotting.biome_colour(f"{family} I")


def test_colour_depends_on_the_name_only():
    assert plotting.biome_colour("SUBTR North") == plotting.biome_colour("SUBTR North")
    assert plotting.biome_colour("SUBTR North") in {
        plotting.biome_colour(f"SUBTR {n}") for n in ("I", "II", "III", "IV", "V", "VI")
    }
    other = plotting.biome_colour("EQU")  # not a family: a stable fallback colour
    assert other == plotting.biome_colour("EQU") and other.startswith("#")
    assert plotting.biome_colours({4: "ICE II", 9: "SUBTR"}) == {
        4: plotting.biome_colour("ICE II"),
        9: plotting.biome_colour("SUBTR I"),
    }


# --- flagged (hatched) boxes and map labels --------------------------------------------------


def _gridliners(ax):
    from cartopy.mpl.gridliner import Gridliner

    return [a for a in ax.get_children() if isinstance(a, Gridliner)]


def _hatched_boxes(ax):
    from matplotlib.path import Path

    patches = [a for a in ax.get_children() if a.get_gid() == "flagged"]
    assert all(patch.get_hatch() == plotting.FLAG_HATCH for patch in patches)
    return sum(int((patch.get_path().codes == Path.MOVETO).sum()) for patch in patches)


def test_plot_biome_map_hatches_the_flagged_classified_boxes():
    labels = _labels()
    rng = np.random.default_rng(5)
    flagged = rng.random(labels.shape) < 0.3
    fig = plotting.new_figure()
    ax = plotting.map_axes(fig)
    names = {1: "ICE I", 2: "SUBTR I", 3: "SUBP+UP I"}  # ICE I is dark: light hatching on it
    plotting.plot_biome_map(ax, labels, 10.0, names, flagged=flagged, flagged_label="odd boxes")
    expected = int((flagged & ~np.ma.getmaskarray(labels)).sum())
    assert 0 < expected < int(flagged.sum())  # some flagged boxes are unclassified: not hatched
    assert _hatched_boxes(ax) == expected
    colours = {a.get_edgecolor()[:3] for a in ax.get_children() if a.get_gid() == "flagged"}
    assert len(colours) == 2  # dark hatching on light biomes, light hatching on ICE I
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert texts[-1] == "odd boxes" and "1: ICE I" in texts
    with pytest.raises(ValueError, match="flagged has shape"):
        plotting.plot_biome_map(ax, labels, 10.0, names, flagged=flagged[:-1])


def test_biome_map_without_flags_has_no_hatching_and_labels_the_graticule():
    fig = plotting.new_figure()
    ax = plotting.map_axes(fig)
    plotting.plot_biome_map(ax, _labels(), 10.0, {1: "ICE I", 2: "SUBTR I", 3: "SUBP+UP I"})
    fig.draw_without_rendering()
    assert _hatched_boxes(ax) == 0
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert not any("distribution" in text for text in texts)
    (gridliner,) = _gridliners(ax)
    lat_labels = {a.get_text() for a in gridliner.ylabel_artists if a.get_visible()}
    lon_labels = {a.get_text() for a in gridliner.xlabel_artists if a.get_visible()}
    assert {"30°N", "0°", "30°S", "60°N", "60°S"} <= lat_labels
    assert {"60°E", "120°W"} <= lon_labels


@pytest.mark.parametrize(
    ("box_size", "central"), [(10.0, 200.0), (3.0, 200.0), (4.0, 0.0), (7.5, 200.0)]
)
def test_framed_longitudes_tile_the_map_from_edge_to_edge(box_size, central):
    edges = -180.0 + box_size * np.arange(round(360 / box_size) + 1)
    framed, columns = plotting._framed_longitudes(edges, central)
    assert np.all(np.diff(framed) > 0)
    np.testing.assert_allclose([framed[0], framed[-1]], [central - 180, central + 180], atol=1e-5)
    centres = 0.5 * (framed[1:] + framed[:-1])
    # each drawn column shows the data column whose box holds its centre
    expected = (np.mod(centres + 180.0, 360.0) // box_size).astype(int)
    np.testing.assert_array_equal(columns, expected)


def _tracked(box_size=10.0, n_months=3, seed=0):
    from carbon_biomes.core.tracking import TrackedBiomes

    rng = np.random.default_rng(seed)
    n_lat, n_lon = int(180 / box_size), int(360 / box_size)
    shape = (n_months, n_lat, n_lon)
    classified = rng.random(shape) < 0.7
    labels = np.ma.masked_array(rng.integers(1, 4, shape).astype(np.int16), mask=~classified)
    probability = np.ma.masked_array(rng.uniform(0.3, 1.0, shape), mask=~classified)
    ood = np.ma.masked_array((rng.random(shape) < 0.1).astype(np.int8), mask=~classified)
    months = [f"2001-{m:02d}" for m in range(1, n_months + 1)]
    names = {1: "ICE", 2: "SUBTR I", 3: "SUBTR II"}
    return TrackedBiomes("M", months, labels, probability, ood, np.ma.ones(shape), names, box_size)


def _native_grid():
    from carbon_biomes.core.monthly_regression import NativeGrid

    lat = np.arange(-89.0, 90.0, 2.0)
    lon = np.arange(1.0, 360.0, 2.0)  # 0..360 convention
    ocean = ~((lat[:, None] > -30) & (lat[:, None] < 30) & (lon[None, :] > 10) & (lon < 40))
    return NativeGrid.build(lat, lon, ocean, 10.0)


def test_tracked_maps_hatch_ood_and_low_probability_boxes(no_network):
    from carbon_biomes.figures import tracking

    tracked = _tracked()
    months = ["2001-01", "2001-03"]
    fig = tracking.tracked_maps_figure(tracked, months, _native_grid(), "t", low_probability=0.6)
    maps = [ax for ax in fig.axes if hasattr(ax, "projection")]
    assert len(maps) == 2
    for ax, month in zip(maps, months, strict=True):
        t = tracked.months.index(month)
        expected = ~tracked.labels.mask[t] & (
            (tracked.ood[t].data == 1) | (tracked.probability[t].data < 0.6)
        )
        assert 0 < expected.sum()
        assert _hatched_boxes(ax) == int(expected.sum())
        np.testing.assert_array_equal(tracking.flagged_boxes(tracked, t, 0.6), expected)
        assert month in ax.get_title()
    (legend,) = fig.legends
    texts = [t.get_text() for t in legend.get_texts()]
    assert "out of training distribution, or class probability < 0.6" in texts
    fig.draw_without_rendering()
    for ax in maps:  # every map carries latitude and longitude labels
        (gridliner,) = _gridliners(ax)
        assert any(a.get_text().endswith("°N") for a in gridliner.ylabel_artists)
        assert any(a.get_text().endswith("°W") for a in gridliner.xlabel_artists)


def test_tracked_maps_default_threshold_is_one_half():
    from carbon_biomes.figures import tracking

    tracked = _tracked(n_months=1, seed=3)
    fig = tracking.tracked_maps_figure(tracked, ["2001-01"], _native_grid(), "t")
    (ax,) = [ax for ax in fig.axes if hasattr(ax, "projection")]
    expected = ~tracked.labels.mask[0] & (
        (tracked.ood[0].data == 1) | (tracked.probability[0].data < 0.5)
    )
    assert _hatched_boxes(ax) == int(expected.sum())
    assert any("probability < 0.5" in t.get_text() for t in fig.legends[0].get_texts())
