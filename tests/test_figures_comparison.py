"""The comparison figures: one name one colour in every panel, the reference first and marked."""

from __future__ import annotations

import socket
from collections import Counter

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.collections import FillBetweenPolyCollection, QuadMesh  # noqa: E402
from matplotlib.colors import BoundaryNorm, to_hex  # noqa: E402
from matplotlib.path import Path  # noqa: E402

from carbon_biomes.figures import comparison  # noqa: E402
from carbon_biomes.figures.plotting import LAND_COLOUR, biome_colour  # noqa: E402

BOX = 10.0
SHAPE = (18, 36)
NAMES = {1: "SUBTR I", 2: "SUBP+UP I", 3: "ICE I", 4: "SUBTR II", 5: "ICE II"}
REF = "OBS-REF"
MODELS = ["MODEL-A", "MODEL-B", "MODEL-C"]


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError("network access attempted during plotting")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


def save(fig, tmp_path, name):
    path = tmp_path / f"{name}.png"
    fig.savefig(path, dpi=60)
    assert path.stat().st_size > 5_000
    return path


def overlaps(fig, legend, axes):
    """Whether a legend's box overlaps the data area of any of the axes."""
    fig.draw_without_rendering()
    box = legend.get_window_extent()
    return any(box.overlaps(ax.get_window_extent()) for ax in axes)


# --- 1. maps ---------------------------------------------------------------------------------


def label_maps(seed=0):
    """Zonal bands of biomes 1-3 and 5 (never 4), different noise and gaps per dataset."""
    rng = np.random.default_rng(seed)
    lat = -90.0 + (np.arange(SHAPE[0]) + 0.5) * BOX
    maps = {}
    for i, dataset in enumerate([*MODELS[:1], REF, *MODELS[1:]]):  # the reference not first
        shifted = lat[:, None] + rng.normal(0.0, 8.0, SHAPE)
        grid = np.where(np.abs(shifted) < 35, 1, np.where(np.abs(shifted) < 60, 2, 3))
        grid = np.where(shifted > 70, 5, grid)
        masked = rng.random(SHAPE) < 0.2 + 0.1 * i
        maps[dataset] = np.ma.masked_array(grid, mask=masked)
    maps[MODELS[2]] = np.ma.masked_where(maps[MODELS[2]] == 5, maps[MODELS[2]])  # no ICE II
    return maps


def map_panels(fig):
    return [ax for ax in fig.axes if hasattr(ax, "projection")]


def biome_mesh(ax):
    (mesh,) = [
        c for c in ax.collections if isinstance(c, QuadMesh) and isinstance(c.norm, BoundaryNorm)
    ]
    return mesh


def drawn_colour_counts(ax):
    """Colour -> number of boxes drawn in it (the lattice's columns reordered, not changed)."""
    mesh = biome_mesh(ax)
    data = mesh.get_array()
    rgba = mesh.to_rgba(data)[~np.ma.getmaskarray(data)]
    return Counter(to_hex(colour) for colour in rgba)


def test_maps_reference_first_and_one_colour_per_name_in_every_panel(tmp_path, no_network):
    maps = label_maps()
    fig = comparison.comparison_maps_figure(maps, BOX, NAMES, "Biomes", reference=REF)
    panels = map_panels(fig)
    titles = [ax.get_title() for ax in panels]
    assert [t.split("\n")[0] for t in titles] == [f"{REF} (reference)", *MODELS]
    assert panels[0].title.get_fontweight() == "bold"
    assert all(f"{REF}" not in t for t in titles[1:])
    for ax, dataset in zip(panels, [REF, *MODELS], strict=True):
        grid = maps[dataset]
        expected = Counter(biome_colour(NAMES[int(k)]) for k in grid.compressed())
        assert drawn_colour_counts(ax) == expected, dataset
    # hence a name has one colour everywhere: ICE I is the same colour in every panel
    ice = biome_colour("ICE I")
    assert all(drawn_colour_counts(ax)[ice] > 0 for ax in panels)
    (legend,) = fig.legends
    texts = [t.get_text() for t in legend.get_texts()]
    # biome 4 (SUBTR II) occurs nowhere: not in the legend; ICE II occurs in some maps
    assert texts == ["1: SUBTR I", "2: SUBP+UP I", "3: ICE I", "5: ICE II", "ocean, not classified"]
    legend_colours = [to_hex(h.get_facecolor()) for h in legend.legend_handles[:4]]
    assert legend_colours == [biome_colour(NAMES[k]) for k in (1, 2, 3, 5)]
    assert not overlaps(fig, legend, panels)
    save(fig, tmp_path, "maps")


def test_maps_titles_give_the_classified_share():
    full = np.ma.masked_array(np.ones(SHAPE, int))
    north = np.ma.masked_array(
        np.full(SHAPE, 2), mask=np.arange(SHAPE[0])[:, None] < 9 + np.zeros(SHAPE, bool)
    )
    fig = comparison.comparison_maps_figure({"A": full, "B": north}, BOX, NAMES, "t")
    titles = [ax.get_title() for ax in map_panels(fig)]
    # the northern hemisphere is half of the sphere's area, and of the union (= the globe)
    assert titles == [
        "A\n100 % of the area classified by any dataset",
        "B\n50 % of the area classified by any dataset",
    ]
    fig = comparison.comparison_maps_figure(
        {"A": full, "B": north}, BOX, NAMES, "t", classified_share={"B": 71.6}
    )
    assert map_panels(fig)[1].get_title() == "B\n72 % of its ocean classified"


def hatched_boxes(ax):
    patches = [a for a in ax.get_children() if a.get_gid() == "flagged"]
    return sum(int((patch.get_path().codes == Path.MOVETO).sum()) for patch in patches)


def test_maps_hatch_flagged_classified_boxes_and_shade_land(tmp_path):
    maps = label_maps(1)
    rng = np.random.default_rng(7)
    flagged = {MODELS[0]: rng.random(SHAPE) < 0.3}
    lat = np.arange(-89.0, 90.0, 2.0)
    lon = np.arange(-179.0, 180.0, 2.0)
    land_mask = (np.abs(lat)[:, None] < 20) & (np.abs(lon)[None, :] < 20)
    fig = comparison.comparison_maps_figure(
        maps,
        BOX,
        NAMES,
        "t",
        reference=REF,
        flagged=flagged,
        land={REF: (lat, lon, land_mask), MODELS[0]: None},
        flagged_label="odd boxes",
    )
    panels = map_panels(fig)
    expected = int((flagged[MODELS[0]] & ~np.ma.getmaskarray(maps[MODELS[0]])).sum())
    assert expected > 0
    assert [hatched_boxes(ax) for ax in panels] == [0, expected, 0, 0]
    land_meshes = [
        [c for c in ax.collections if isinstance(c, QuadMesh) and c.cmap.N == 1] for ax in panels
    ]
    assert [len(m) for m in land_meshes] == [1, 0, 0, 0]
    assert to_hex(land_meshes[0][0].cmap(0)) == LAND_COLOUR
    (legend,) = fig.legends
    assert legend.get_texts()[-1].get_text() == "odd boxes"
    save(fig, tmp_path, "maps_flagged")


def test_maps_lay_out_many_datasets_readably(tmp_path):
    base = label_maps()[REF]
    maps = {f"M{i:02d}": base for i in range(15)}
    fig = comparison.comparison_maps_figure(maps, BOX, NAMES, "t", reference="M07")
    panels = map_panels(fig)
    assert len(panels) == 15
    assert panels[0].get_title().startswith("M07 (reference)")
    fig.draw_without_rendering()
    columns = {round(ax.get_position().x0, 3) for ax in panels}
    assert len(columns) == 3
    boxes = [ax.get_window_extent() for ax in panels]
    assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1 :])
    save(fig, tmp_path, "maps_15")


def test_maps_check_their_input():
    maps = label_maps()
    with pytest.raises(ValueError, match=r"labels\['MODEL-B'\] has shape"):
        comparison.comparison_maps_figure({**maps, "MODEL-B": maps[REF][:, :-1]}, BOX, NAMES, "t")
    with pytest.raises(ValueError, match="not divide"):
        comparison.comparison_maps_figure(maps, 7.0, NAMES, "t")
    with pytest.raises(ValueError, match="reference 'X' is not among"):
        comparison.comparison_maps_figure(maps, BOX, NAMES, "t", reference="X")
    with pytest.raises(ValueError, match=r"biome numbers \[5\] not in names"):
        comparison.comparison_maps_figure(maps, BOX, {1: "A", 2: "B", 3: "C"}, "t")
    with pytest.raises(ValueError, match=r"flagged\['OBS-REF'\] has shape"):
        comparison.comparison_maps_figure(
            maps, BOX, NAMES, "t", flagged={REF: np.zeros((2, 2), bool)}
        )
    with pytest.raises(ValueError, match="empty"):
        comparison.comparison_maps_figure({}, BOX, NAMES, "t")


# --- 2. coverage bars ------------------------------------------------------------------------


def bar_data():
    fractions = {
        "MODEL-A": {1: 40.0, 2: 30.0, 3: 20.0},
        REF: {1: 50.0, 2: 20.0, 3: 15.0, 5: 5.0},
        "MODEL-B": {1: 45.0, 2: 25.0, 3: np.nan, 5: 2.0},  # NaN: absent
    }
    unclassified = {"MODEL-A": 10.0, REF: 10.0, "MODEL-B": 28.0}
    return fractions, unclassified


def test_coverage_bars_stack_to_100_reference_first_and_marked(tmp_path):
    fractions, unclassified = bar_data()
    fig = comparison.comparison_coverage_bars_figure(
        fractions, NAMES, "Shares", reference=REF, unclassified=unclassified
    )
    (ax,) = fig.axes
    ticks = [t.get_text() for t in ax.get_xticklabels()]
    assert ticks == [f"{REF}\n(reference)", "MODEL-A", "MODEL-B"]
    assert ax.get_xticklabels()[0].get_fontweight() == "bold"
    assert ax.get_xticklabels()[1].get_fontweight() == "normal"
    centres = [t for t in ax.get_xticks()]
    assert centres[1] - centres[0] > centres[2] - centres[1]  # the reference set apart
    totals: dict[float, float] = {}
    colours: dict[float, list[str]] = {}
    for bar in ax.patches:
        if bar.get_gid() == "reference":
            continue
        centre = round(bar.get_x() + bar.get_width() / 2, 6)
        assert bar.get_y() == pytest.approx(totals.get(centre, 0.0))  # stacked
        totals[centre] = totals.get(centre, 0.0) + bar.get_height()
        if bar.get_height() > 0:
            colours.setdefault(centre, []).append(to_hex(bar.get_facecolor()))
    np.testing.assert_allclose(sorted(totals.values()), 100.0)
    ref_centre = round(centres[0], 6)
    assert colours[ref_centre] == [
        *(biome_colour(NAMES[k]) for k in (1, 2, 3, 5)),
        comparison.UNCLASSIFIED_BAR_COLOUR,
    ]
    # the MODEL-B bar has no ICE I segment (NaN)
    assert biome_colour("ICE I") not in colours[round(centres[2], 6)]
    (frame,) = [p for p in ax.patches if p.get_gid() == "reference"]
    assert frame.get_linewidth() >= 2 and not frame.get_fill()
    assert frame.get_height() == pytest.approx(100.0)
    legend = ax.get_legend()
    texts = [t.get_text() for t in legend.get_texts()]
    assert texts == ["not classified", "5: ICE II", "3: ICE I", "2: SUBP+UP I", "1: SUBTR I"]
    fig.draw_without_rendering()
    assert legend.get_window_extent().x0 >= ax.get_window_extent().x1 - 1
    shares = sorted(t.get_text() for t in ax.texts if t.get_gid() == "share")
    assert shares == sorted(["50", "20", "15", "10", "40", "30", "20", "10", "45", "25", "28"])
    assert ax.get_ylim() == (0.0, 100.0)
    assert ax.get_ylabel() == "share of the ocean area (%)"
    save(fig, tmp_path, "bars")


def test_coverage_bars_without_reference_or_unclassified():
    fractions, _ = bar_data()
    fig = comparison.comparison_coverage_bars_figure(fractions, NAMES, "t", ylabel="x (%)")
    (ax,) = fig.axes
    assert [t.get_text() for t in ax.get_xticklabels()] == list(fractions)
    assert not [p for p in ax.patches if p.get_gid() in ("reference", "unclassified")]
    assert ax.get_ylabel() == "x (%)"


def test_coverage_bars_check_their_input():
    fractions, unclassified = bar_data()
    with pytest.raises(ValueError, match="add up to 110.0 %"):
        comparison.comparison_coverage_bars_figure(
            fractions, NAMES, "t", unclassified={**unclassified, REF: 20.0}
        )
    with pytest.raises(ValueError, match=r"biome numbers \[9\] not in names"):
        comparison.comparison_coverage_bars_figure({"A": {9: 1.0}}, NAMES, "t")
    with pytest.raises(ValueError, match="negative"):
        comparison.comparison_coverage_bars_figure({"A": {1: -1.0}}, NAMES, "t")
    with pytest.raises(ValueError, match="reference 'X'"):
        comparison.comparison_coverage_bars_figure(fractions, NAMES, "t", reference="X")


# --- 3. seasonal cycles ----------------------------------------------------------------------


def cycle_data():
    rng = np.random.default_rng(3)
    cycles = {d: rng.uniform(2.0, 40.0, (len(NAMES), 12)) for d in [*MODELS, REF]}
    for data in cycles.values():
        data[3] = np.nan  # SUBTR II absent everywhere: no panel
    cycles[REF][4] = np.nan  # ICE II absent in the reference only
    cycles[MODELS[1]][4, :6] = np.nan  # ... and half the year in one model
    std = rng.uniform(0.5, 2.0, (len(NAMES), 12))
    return cycles, std


def spaghetti_panels(fig):
    return [ax for ax in fig.axes if ax.get_title()]


def test_spaghetti_reference_thick_black_models_thin_mean_dashed(tmp_path):
    cycles, std = cycle_data()
    fig = comparison.seasonal_cycle_spaghetti_figure(
        cycles, NAMES, "Global ocean", "Cycles", reference=REF, reference_std=std
    )
    panels = spaghetti_panels(fig)
    shown = [1, 2, 3, 5]  # biome 4 is NaN in every dataset
    assert [ax.get_title() for ax in panels] == [f"{k}: {NAMES[k]}" for k in shown]
    fig.draw_without_rendering()
    for ax, k in zip(panels, shown, strict=True):
        patch = ax.title.get_bbox_patch()
        assert to_hex(patch.get_facecolor()) == biome_colour(NAMES[k])
        np.testing.assert_array_equal(ax.get_xticks(), np.arange(1, 13))
    for ax in panels[1:]:  # the lowest panel of each column (3 columns) labels the months
        assert [t.get_text() for t in ax.get_xticklabels()] == list(comparison.MONTH_LETTERS)
        assert ax.get_xlabel() == "calendar month"
    model_colours = None
    for ax, k in zip(panels, shown, strict=True):
        b = sorted(NAMES).index(k)
        lines = {line.get_gid(): line for line in ax.get_lines()}
        models = [lines[f"model {m}"] for m in MODELS]
        colours = [to_hex(line.get_color()) for line in models]
        assert len(set(colours)) == len(MODELS)
        model_colours = model_colours or colours
        assert colours == model_colours  # a model keeps its colour in every panel
        assert all(line.get_linewidth() < 1.5 for line in models)
        mean = lines["multi-model mean"]
        assert mean.get_linestyle() == "--"
        expected = np.nanmean(np.stack([cycles[m][b] for m in MODELS]), axis=0)
        np.testing.assert_allclose(mean.get_ydata(), expected)
        if k == 5:  # absent in the reference: no reference line, a note says so
            assert "reference" not in lines
            (note,) = [t for t in ax.texts if t.get_gid() == "absent"]
            assert note.get_text() == f"absent in {REF} (reference)"
            continue
        reference = lines["reference"]
        assert to_hex(reference.get_color()) == "#000000"
        assert reference.get_linewidth() > 2 * max(line.get_linewidth() for line in models)
        assert reference.get_linewidth() > mean.get_linewidth()
        np.testing.assert_allclose(reference.get_ydata(), cycles[REF][b])
        (band,) = [c for c in ax.collections if c.get_gid() == "reference std"]
        assert isinstance(band, FillBetweenPolyCollection)
        vertices = band.get_paths()[0].vertices
        assert vertices[:, 1].max() == pytest.approx(np.max(cycles[REF][b] + std[b]))
        assert vertices[:, 1].min() == pytest.approx(np.min(cycles[REF][b] - std[b]))
        assert ax.get_ylim()[0] == 0.0
    (legend,) = fig.legends
    texts = [t.get_text() for t in legend.get_texts()]
    assert texts == [
        f"{REF} (reference)",
        f"{REF} ±1 standard deviation",
        "multi-model mean (3 models)",
        *MODELS,
    ]
    assert not overlaps(fig, legend, panels)
    save(fig, tmp_path, "spaghetti")


def test_spaghetti_without_reference_averages_every_dataset():
    cycles, _ = cycle_data()
    fig = comparison.seasonal_cycle_spaghetti_figure(cycles, NAMES, "r", "t")
    ax = spaghetti_panels(fig)[0]
    lines = {line.get_gid(): line for line in ax.get_lines()}
    assert "reference" not in lines
    assert len([g for g in lines if g.startswith("model ")]) == 4
    expected = np.mean(np.stack([c[0] for c in cycles.values()]), axis=0)
    np.testing.assert_allclose(lines["multi-model mean"].get_ydata(), expected)


def test_spaghetti_checks_shapes():
    cycles, std = cycle_data()
    with pytest.raises(ValueError, match=r"cycles\['MODEL-B'\] has shape \(5, 11\)"):
        comparison.seasonal_cycle_spaghetti_figure(
            {**cycles, "MODEL-B": cycles["MODEL-B"][:, :11]}, NAMES, "r", "t"
        )
    with pytest.raises(ValueError, match="reference_std has shape"):
        comparison.seasonal_cycle_spaghetti_figure(
            cycles, NAMES, "r", "t", reference=REF, reference_std=std[:2]
        )
    with pytest.raises(ValueError, match="needs a reference"):
        comparison.seasonal_cycle_spaghetti_figure(cycles, NAMES, "r", "t", reference_std=std)


# --- 4. portrait -----------------------------------------------------------------------------


def test_portrait_normalization_by_the_median_signed_by_the_better_direction():
    values = np.array(
        [
            [1.0, 10.0, np.nan],
            [2.0, 20.0, 3.0],
            [4.0, 40.0, 5.0],
            [100.0, 0.0, 7.0],  # excluded from the medians
        ]
    )
    got = comparison.portrait_normalization(values, ["higher", "lower", "lower"], exclude=[3])
    # by hand: medians over rows 0-2 are 2, 20 and 4 (NaN skipped: median of 3 and 5)
    expected = np.array(
        [
            [-(1 - 2) / 2, (10 - 20) / 20, np.nan],
            [0.0, 0.0, (3 - 4) / 4],
            [-(4 - 2) / 2, (40 - 20) / 20, (5 - 4) / 4],
            [-(100 - 2) / 2, (0 - 20) / 20, (7 - 4) / 4],
        ]
    )
    np.testing.assert_allclose(got, expected)
    assert got[0, 0] == 0.5 and got[2, 0] == -1.0  # above the median is better when higher
    # a boolean mask excludes the same row; without exclusion the median moves
    mask = np.array([False, False, False, True])
    np.testing.assert_allclose(
        comparison.portrait_normalization(values, ["higher", "lower", "lower"], mask), expected
    )
    median_all = np.median([1.0, 2.0, 4.0, 100.0])
    assert comparison.portrait_normalization(values, ["higher", "lower", "lower"])[0, 0] == (
        pytest.approx(-(1.0 - median_all) / median_all)
    )


def test_portrait_normalization_of_a_zero_median_falls_back_to_the_spread():
    values = np.array([[-1.0, 0.0, np.nan], [0.0, 0.0, np.nan], [2.0, 0.0, np.nan]])
    got = comparison.portrait_normalization(values, ["lower", "higher", "lower"])
    spread = np.sqrt(((-1.0 - 1 / 3) ** 2 + (0 - 1 / 3) ** 2 + (2 - 1 / 3) ** 2) / 3)
    np.testing.assert_allclose(got[:, 0], np.array([-1.0, 0.0, 2.0]) / spread)
    assert np.isnan(got[:, 1:]).all()  # no spread around 0, no values: not normalizable
    with pytest.raises(ValueError, match="better must be"):
        comparison.portrait_normalization(values, ["lower", "more", "lower"])
    with pytest.raises(ValueError, match="better has 2 entries for 3 metrics"):
        comparison.portrait_normalization(values, ["lower", "lower"])


def portrait_data():
    datasets = ["MODEL-A", REF, "MODEL-B", "MODEL-C"]
    metrics = ["agreement", "kappa", "coverage RMSE (pp)", "novel biomes"]
    better = ["higher", "higher", "lower", "lower"]
    values = np.array(
        [
            [0.71, 0.62, 4.1, 1.0],
            [1.0, 1.0, 0.0, 0.0],
            [0.64, np.nan, 6.8, 0.0],
            [0.78, 0.70, 3.2, 0.0],
        ]
    )
    return values, datasets, metrics, better


def test_portrait_rows_colours_and_annotations(tmp_path):
    values, datasets, metrics, better = portrait_data()
    fig = comparison.portrait_figure(
        values, datasets, metrics, "Scores", better=better, reference=REF
    )
    ax = fig.axes[0]
    (image,) = ax.get_images()
    rows = [t.get_text() for t in ax.get_yticklabels()]
    assert rows == [f"{REF} (reference)", "MODEL-A", "MODEL-B", "MODEL-C"]
    assert ax.get_yticklabels()[0].get_fontweight() == "bold"
    assert [line for line in ax.get_lines() if line.get_gid() == "reference separator"]
    ordered = values[[1, 0, 2, 3]]
    expected = comparison.portrait_normalization(ordered, better, exclude=[0])
    shown = image.get_array()
    np.testing.assert_allclose(np.ma.filled(shown, np.nan), expected)
    assert np.ma.getmaskarray(shown)[2, 1]  # NaN: masked, drawn in the "bad" colour
    assert to_hex(image.cmap.get_bad()) == comparison.NA_COLOUR
    # medians without the reference: agreement median 0.71 -> MODEL-A's cell is 0
    assert expected[1, 0] == 0.0 and expected[3, 0] == pytest.approx(-(0.78 - 0.71) / 0.71)
    low, high = image.get_clim()
    assert high == -low > 0
    assert image.cmap.name.startswith("RdBu_r")
    # blue (better) for MODEL-C's low RMSE, red (worse) for MODEL-B's high one
    blue, red = image.cmap(image.norm(expected[3, 2])), image.cmap(image.norm(expected[2, 2]))
    assert blue[2] > blue[0] and red[0] > red[2]
    cells = [t.get_text() for t in ax.texts if t.get_gid() == "cell value"]
    assert len(cells) == values.size
    assert cells[:4] == ["1", "1", "0", "0"]
    assert cells[4:8] == ["0.71", "0.62", "4.1", "1"]
    assert cells[9] == "n/a"
    assert [t.get_text() for t in ax.get_xticklabels()] == [
        "agreement ↑",
        "kappa ↑",
        "coverage RMSE (pp) ↓",
        "novel biomes ↓",
    ]
    (colour_bar,) = [a for a in fig.axes if a is not ax]
    assert colour_bar.get_xlabel() == "relative to the multi-model median (better <-> worse)"
    note = fig.get_supxlabel()
    assert f"other than the reference {REF}" in note
    assert "standard deviation instead: novel biomes" in note
    save(fig, tmp_path, "portrait")


def test_portrait_checks_shapes_and_annotates_on_request():
    values, datasets, metrics, better = portrait_data()
    with pytest.raises(ValueError, match=r"values has shape \(4, 4\), expected \(3, 4\)"):
        comparison.portrait_figure(values, datasets[:3], metrics, "t", better=better)
    with pytest.raises(ValueError, match="better has 3 entries"):
        comparison.portrait_figure(values, datasets, metrics, "t", better=better[:3])
    fig = comparison.portrait_figure(
        values, datasets, metrics, "t", better=better, annotate=False, limit=0.5
    )
    ax = fig.axes[0]
    assert not [t for t in ax.texts if t.get_gid() == "cell value"]
    assert ax.get_images()[0].get_clim() == (-0.5, 0.5)
    # no reference: rows as given, the medians over all rows
    assert [t.get_text() for t in ax.get_yticklabels()] == datasets


# --- 5. agreement map ------------------------------------------------------------------------


def test_agreement_map_discrete_levels_and_colour_bar(tmp_path, no_network):
    rng = np.random.default_rng(4)
    n_models = 3
    fraction = rng.integers(0, n_models + 1, SHAPE) / n_models
    mask = rng.random(SHAPE) < 0.3
    fraction = np.ma.masked_array(fraction, mask=mask)
    fig = comparison.agreement_map_figure(fraction, BOX, "Agreement", n_models=n_models)
    (ax,) = map_panels(fig)
    (mesh,) = [c for c in ax.collections if isinstance(c, QuadMesh)]
    assert mesh.cmap.N == n_models + 1 and mesh.norm.Ncmap == n_models + 1
    levels = [to_hex(mesh.to_rgba(k / n_models)) for k in range(n_models + 1)]
    assert len(set(levels)) == n_models + 1
    drawn = mesh.get_array()
    assert np.ma.getmaskarray(drawn).sum() == mask.sum()
    np.testing.assert_allclose(np.sort(drawn.compressed()), np.sort(fraction.compressed()))
    (colour_bar,) = [a for a in fig.axes if a is not ax]
    assert colour_bar.get_xlabel() == "fraction of models agreeing with the reference"
    assert [t.get_text() for t in colour_bar.get_xticklabels()] == ["0", "1/3", "2/3", "1"]
    lat_edges = np.deg2rad(np.linspace(-90, 90, SHAPE[0] + 1))
    area = np.repeat(np.diff(np.sin(lat_edges))[:, None], SHAPE[1], axis=1)
    mean = (area * fraction).sum() / area[~mask].sum()
    assert ax.get_title() == f"3 models; area-weighted mean: {mean:.2f}"
    save(fig, tmp_path, "agreement")


def test_agreement_map_checks_its_input():
    fraction = np.ma.masked_array(np.full(SHAPE, 0.5))
    with pytest.raises(ValueError, match="fraction has shape"):
        comparison.agreement_map_figure(fraction[:-1], BOX, "t", n_models=2)
    with pytest.raises(ValueError, match="0-1"):
        comparison.agreement_map_figure(fraction * 3, BOX, "t", n_models=2)
    with pytest.raises(ValueError, match="n_models"):
        comparison.agreement_map_figure(fraction, BOX, "t", n_models=0)
    everything_masked = np.ma.masked_all(SHAPE)
    fig = comparison.agreement_map_figure(everything_masked, BOX, "t", n_models=2)
    assert "classifies no box" in map_panels(fig)[0].get_title()
