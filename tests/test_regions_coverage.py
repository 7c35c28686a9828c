"""Tests of carbon_biomes.core.regions and carbon_biomes.core.coverage (docs/method.md §4)."""

from __future__ import annotations

import numpy as np
import pytest

from carbon_biomes.core.coverage import (
    COVERAGE_COLUMNS,
    coverage,
    frequency_maps,
    iter_native_labels,
    lattice_to_native,
)
from carbon_biomes.core.errors import DiagnosticError, SettingsError
from carbon_biomes.core.monthly_regression import NativeGrid
from carbon_biomes.core.regions import (
    ARCTIC,
    DEFAULT_REGIONS,
    EARTH_RADIUS,
    EQUATORIAL_PACIFIC,
    GLOBAL,
    NORTH_ATLANTIC,
    PAPER_REGIONS,
    SOUTHERN_OCEAN,
    Region,
    cell_areas,
    region_masks,
    regions_from_settings,
    spherical_polygon_area,
)
from carbon_biomes.core.regression import box_lattice

SPHERE = 4.0 * np.pi * EARTH_RADIUS**2


# ---------------------------------------------------------------------------------------------
# Synthetic grids
# ---------------------------------------------------------------------------------------------
def regular_axes(res: float, lon0: float = 0.0) -> tuple[np.ndarray, ...]:
    """Centres and (n, 2) bounds of a global regular grid; longitudes from ``lon0``."""
    lat_edges = np.linspace(-90.0, 90.0, round(180 / res) + 1)
    lon_edges = lon0 + np.linspace(0.0, 360.0, round(360 / res) + 1)
    lat = 0.5 * (lat_edges[:-1] + lat_edges[1:])
    lon = 0.5 * (lon_edges[:-1] + lon_edges[1:])
    lat_b = np.stack((lat_edges[:-1], lat_edges[1:]), axis=-1)
    lon_b = np.stack((lon_edges[:-1], lon_edges[1:]), axis=-1)
    return lat, lon, lat_b, lon_b


def regular_grid(
    res: float = 1.0,
    box_size: float = 10.0,
    ocean: np.ndarray | None = None,
    lon0: float = 0.0,
    bounds: bool = True,
    area: np.ndarray | None = None,
) -> NativeGrid:
    lat, lon, lat_b, lon_b = regular_axes(res, lon0)
    if ocean is None:
        ocean = np.ones((lat.size, lon.size), dtype=bool)
    return NativeGrid.build(
        lat,
        lon,
        ocean,
        box_size,
        area=area,
        latitude_bounds=lat_b if bounds else None,
        longitude_bounds=lon_b if bounds else None,
    )


def analytic_areas(res: float) -> np.ndarray:
    """R^2 dlon (sin lat_n - sin lat_s) of a global regular grid (what areacello holds)."""
    _, lon, lat_b, _ = regular_axes(res)
    band = np.sin(np.deg2rad(lat_b[:, 1])) - np.sin(np.deg2rad(lat_b[:, 0]))
    return EARTH_RADIUS**2 * np.deg2rad(res) * np.repeat(band[:, None], lon.size, axis=1)


def to_xyz(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    phi, lam = np.deg2rad(lat), np.deg2rad(lon)
    return np.stack((np.cos(phi) * np.cos(lam), np.cos(phi) * np.sin(lam), np.sin(phi)), -1)


def rotation(tilt: float, spin: float) -> np.ndarray:
    """Tilt about the y axis, then spin about the z axis (degrees)."""
    t, s = np.deg2rad(tilt), np.deg2rad(spin)
    ry = np.array([[np.cos(t), 0, np.sin(t)], [0, 1, 0], [-np.sin(t), 0, np.cos(t)]])
    rz = np.array([[np.cos(s), -np.sin(s), 0], [np.sin(s), np.cos(s), 0], [0, 0, 1]])
    return rz @ ry


def rotated_grid(
    res: float = 2.0, tilt: float = 35.0, spin: float = 20.0, box_size: float = 10.0
) -> NativeGrid:
    """A curvilinear grid: a regular logical grid whose pole is rotated; (ny, nx, 4) vertices.

    Longitudes are deliberately given in mixed conventions (half the columns + 360).
    """
    lat_edges = np.linspace(-90.0, 90.0, round(180 / res) + 1)
    lon_edges = np.linspace(0.0, 360.0, round(360 / res) + 1)
    ny, nx = lat_edges.size - 1, lon_edges.size - 1
    lat_c = 0.5 * (lat_edges[:-1] + lat_edges[1:])
    lon_c = 0.5 * (lon_edges[:-1] + lon_edges[1:])
    lat2, lon2 = np.meshgrid(lat_c, lon_c, indexing="ij")
    lat_v = np.stack(
        np.broadcast_arrays(
            lat_edges[:-1, None], lat_edges[:-1, None], lat_edges[1:, None], lat_edges[1:, None]
        ),
        axis=-1,
    )
    lat_v = np.broadcast_to(lat_v, (ny, nx, 4))
    lon_v = np.stack(
        (lon_edges[None, :-1], lon_edges[None, 1:], lon_edges[None, 1:], lon_edges[None, :-1]),
        axis=-1,
    )
    lon_v = np.broadcast_to(lon_v, (ny, nx, 4))
    matrix = rotation(tilt, spin)

    def rotate(lat: np.ndarray, lon: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        xyz = to_xyz(lat, lon) @ matrix.T
        out_lat = np.rad2deg(np.arcsin(np.clip(xyz[..., 2], -1, 1)))
        out_lon = np.rad2deg(np.arctan2(xyz[..., 1], xyz[..., 0]))  # [-180, 180]
        return out_lat, out_lon

    lat_cc, lon_cc = rotate(lat2, lon2)
    lat_vv, lon_vv = rotate(lat_v, lon_v)
    lon_cc = lon_cc.copy()
    lon_cc[:, : nx // 2] += 360.0  # mixed conventions
    return NativeGrid.build(
        lat_cc,
        lon_cc,
        np.ones((ny, nx), bool),
        box_size,
        latitude_bounds=lat_vv,
        longitude_bounds=lon_vv,
    )


def brute_contains(region: Region, lat: float, lon: float) -> bool:
    """The documented edge rule, one point at a time, in the 0-360 convention."""
    north_ok = (
        lat <= region.lat_max
        if (region.lat_max == 90 or region.lat_max_inclusive)
        else (lat < region.lat_max)
    )
    if not (lat >= region.lat_min and north_ok):
        return False
    if region.lon_max - region.lon_min == 360:
        return True
    west, x = region.lon_min % 360.0, lon % 360.0
    span = (region.lon_max - region.lon_min) % 360.0
    return (x - west) % 360.0 < span


# ---------------------------------------------------------------------------------------------
# Regions
# ---------------------------------------------------------------------------------------------
def test_paper_regions_as_in_the_method():
    assert [r.name for r in DEFAULT_REGIONS] == [
        "Arctic",
        "North Atlantic",
        "Equatorial Pacific",
        "Southern Ocean",
        "Global",
    ]
    assert DEFAULT_REGIONS == (*PAPER_REGIONS, GLOBAL)
    assert EQUATORIAL_PACIFIC.crosses_dateline and not NORTH_ATLANTIC.crosses_dateline
    assert GLOBAL.all_longitudes and ARCTIC.all_longitudes
    assert EQUATORIAL_PACIFIC.description == "10°S-10°N, 105°E-80°W"
    # edges: Arctic holds 70N and the pole, North Atlantic stops below 70N
    lat = np.array([70.0, 90.0, 69.999, -45.0, -44.999, -90.0, 10.0, -10.0])
    lon = np.full(lat.size, -30.0)
    assert ARCTIC.contains(lat, lon).tolist() == [1, 1, 0, 0, 0, 0, 0, 0]
    assert NORTH_ATLANTIC.contains(lat, lon).tolist() == [0, 0, 1, 0, 0, 0, 1, 0]
    # lat <= -45 (the method's rule): -45 itself is Southern Ocean
    assert SOUTHERN_OCEAN.contains(lat, lon).tolist() == [0, 0, 0, 1, 0, 1, 0, 0]
    # longitude edges: west inclusive, east exclusive, any convention
    lons = np.array([-75.0, 285.0, 0.0, 360.0, -0.001, -75.001, 105.0, 180.0, -80.0, 280.0])
    assert NORTH_ATLANTIC.contains(np.full(lons.size, 30.0), lons).tolist() == [
        1,
        1,
        0,
        0,
        1,
        0,
        0,
        0,
        0,
        0,
    ]
    assert EQUATORIAL_PACIFIC.contains(np.zeros(lons.size), lons).tolist() == [
        0,
        0,
        0,
        0,
        0,
        0,
        1,
        1,
        0,
        0,
    ]
    assert not GLOBAL.contains(np.array([np.nan, 0.0]), np.array([0.0, np.nan])).any()


def test_region_from_mapping_and_settings():
    region = Region.from_mapping({"name": "North Atlantic", "lat": [10, 70], "lon": [-75, 0]})
    assert region == NORTH_ATLANTIC
    assert Region.from_mapping(region.to_mapping()) == region
    pacific = Region.from_mapping({"name": "EqPac", "lat": [-10, 10], "lon": [105, 280]})
    lat = np.zeros(721)
    lon = np.linspace(-360, 360, 721)
    assert np.array_equal(pacific.contains(lat, lon), EQUATORIAL_PACIFIC.contains(lat, lon))
    south = Region.from_mapping({"name": "SO", "lat": [-90, -45], "lat_max_inclusive": True})
    assert south.contains(np.array([-45.0]), np.array([0.0]))[0]
    regions = regions_from_settings(["arctic", {"name": "Box", "lat": [0, 5], "lon": [0, 5]}])
    assert [r.name for r in regions] == ["Arctic", "Box"]
    assert regions_from_settings(None) == DEFAULT_REGIONS


@pytest.mark.parametrize(
    ("mapping", "words"),
    [
        ({"name": "Bad", "lat": [10, 95]}, ["regions[Bad].lat_max", "95"]),
        ({"name": "Bad", "lat": [20, 10]}, ["regions[Bad].lat_min", "20 >= 10"]),
        ({"name": "Bad", "lon": [-400, 0]}, ["regions[Bad].lon_min", "-400"]),
        ({"name": "Bad", "lon": [10, 370]}, ["regions[Bad].lon_max"]),
        ({"name": "Bad", "lon": [10, 10]}, ["regions[Bad].lon_min", "empty"]),
        ({"name": "Bad", "lat": 10}, ["regions[Bad].lat", "pair"]),
        ({"name": "Bad", "lat": ["a", 10]}, ["regions[Bad].lat_min", "'a'"]),
        ({"name": "Bad", "latitude": [0, 1]}, ["region 'Bad'", "latitude"]),
        ({"lat": [0, 1]}, ["name"]),
    ],
)
def test_invalid_regions_are_refused_naming_region_and_bound(mapping, words):
    with pytest.raises(SettingsError) as info:
        Region.from_mapping(mapping)
    for word in words:
        assert word in str(info.value)


def test_unknown_or_repeated_region_names_are_refused():
    with pytest.raises(SettingsError, match="unknown region 'Atlantis'"):
        regions_from_settings(["Atlantis"])
    with pytest.raises(SettingsError, match="Arctic more than once"):
        regions_from_settings(["Arctic", {"name": "Arctic", "lat": [60, 90]}])


def test_dateline_region_on_a_regular_grid_selects_exactly_the_right_cells():
    for lon0 in (0.0, -180.0):  # both longitude conventions
        grid = regular_grid(1.0, lon0=lon0)
        mask = region_masks([EQUATORIAL_PACIFIC], grid)["Equatorial Pacific"]
        lat2, lon2 = grid.cell_coordinates()
        lon360 = lon2 % 360.0
        expected = (lat2 >= -10) & (lat2 < 10) & (lon360 >= 105) & (lon360 < 280)
        assert np.array_equal(mask, expected)
        assert mask.sum() == 20 * 175  # 20 rows, 75 columns east of 105E + 100 west of 180


def test_dateline_region_on_a_curvilinear_grid_selects_exactly_the_right_cells():
    grid = rotated_grid()
    assert grid.is_curvilinear
    lat2, lon2 = grid.cell_coordinates()
    assert lon2.max() > 360.0 - 1.0 and lon2.min() < 0.0  # mixed conventions
    masks = region_masks(DEFAULT_REGIONS, grid)
    for region in DEFAULT_REGIONS:
        expected = np.array(
            [
                brute_contains(region, la, lo)
                for la, lo in zip(lat2.ravel(), lon2.ravel(), strict=True)
            ]
        ).reshape(grid.shape)
        assert np.array_equal(masks[region.name], expected), region.name
        assert expected.any()
    pacific = masks["Equatorial Pacific"]
    on_both_sides = lon2[pacific] % 360.0
    assert (on_both_sides < 180).any() and (on_both_sides > 180).any()
    assert masks["Global"].all()


def test_region_edge_inside_a_box_splits_the_box_by_cell_coordinates():
    grid = regular_grid(1.0, box_size=10.0)
    west = Region("West", 10.0, 70.0, -180.0, -75.0)
    masks = region_masks([west, NORTH_ATLANTIC], grid)
    lat2, lon2 = grid.cell_coordinates()
    # the box of 20-30N, 80-70W holds cells on both sides of 75W
    box = grid.cell_box[np.argmin(np.abs(lat2[:, 0] - 25.5)), np.argmin(np.abs(lon2[0] - 282.5))]
    in_box = grid.cell_box == box
    assert in_box.sum() == 100
    atlantic = masks["North Atlantic"] & in_box
    assert atlantic.sum() == 50 and (masks["West"] & in_box).sum() == 50
    assert not (masks["West"] & masks["North Atlantic"]).any()
    assert np.all(lon2[atlantic] >= 285.0)
    # the coverage counts only the part of the box inside each region
    n_lat, n_lon = box_lattice(10.0)
    lattice = np.ma.masked_all((1, n_lat, n_lon), dtype=np.int16)
    lattice[0].flat[box] = 3
    native = lattice_to_native(lattice, grid)
    areas, _ = cell_areas(grid)
    table = coverage(native, masks, areas, [1, 3], months=["2000-01"])
    for r, name in enumerate(table.regions):
        expected = areas[masks[name] & in_box].sum()
        assert table.biome_area[r, 0, 1] == pytest.approx(expected, rel=1e-12)
        assert table.coverage_percent[r, 0].tolist() == [0.0, 100.0]
    assert table.biome_area[0, 0, 1] == pytest.approx(table.biome_area[1, 0, 1], rel=1e-12)


def test_region_without_ocean_raises_naming_it():
    ocean = np.ones((180, 360), dtype=bool)
    ocean[150:, :] = False  # land north of 60N
    grid = regular_grid(1.0, ocean=ocean)
    with pytest.raises(DiagnosticError, match=r"MODEL-X: region 'Arctic' .*no ocean cell"):
        region_masks(DEFAULT_REGIONS, grid, dataset="MODEL-X")
    masks = region_masks(DEFAULT_REGIONS[1:], grid)
    assert not (masks["Global"] & ~ocean).any()
    assert masks["North Atlantic"].sum() == 50 * 75  # 10-60N x 75W-0


# ---------------------------------------------------------------------------------------------
# Cell areas
# ---------------------------------------------------------------------------------------------
def test_spherical_areas_of_a_regular_grid_match_areacello():
    reference = analytic_areas(1.0)
    areas, source = cell_areas(regular_grid(1.0))
    assert source == "spherical areas from cell bounds"
    assert abs(areas.sum() / SPHERE - 1.0) < 1e-6
    np.testing.assert_allclose(areas, reference, rtol=1e-9)
    # without bounds: edges midway between the centres give the same cells
    areas, source = cell_areas(regular_grid(1.0, bounds=False))
    assert source == "spherical areas from midpoints between cell centres"
    assert abs(areas.sum() / SPHERE - 1.0) < 1e-6
    np.testing.assert_allclose(areas, reference, rtol=1e-9)
    # without bounds, a longitude axis that jumps from 359 to 1 (starts at 180E)
    lat, lon, _, _ = regular_axes(2.0, lon0=180.0)
    grid = NativeGrid.build(lat, lon % 360.0, np.ones((90, 180), bool), 10.0)
    np.testing.assert_allclose(cell_areas(grid)[0], analytic_areas(2.0), rtol=1e-9)
    # other longitude convention and a north-to-south latitude axis
    lat, lon, lat_b, lon_b = regular_axes(2.0, lon0=-180.0)
    grid = NativeGrid.build(
        lat[::-1],
        lon,
        np.ones((90, 180), bool),
        10.0,
        latitude_bounds=lat_b[::-1, ::-1],
        longitude_bounds=lon_b,
    )
    areas, _ = cell_areas(grid)
    np.testing.assert_allclose(areas, analytic_areas(2.0)[::-1], rtol=1e-9)
    # areacello wins when present
    given = np.full((180, 360), 7.0)
    areas, source = cell_areas(regular_grid(1.0, area=given))
    assert source == "areacello" and np.array_equal(areas, given)


def test_curvilinear_vertex_areas_sum_to_the_sphere():
    grid = rotated_grid(res=2.0)
    areas, source = cell_areas(grid)
    assert source == "spherical areas from cell vertices"
    assert abs(areas.sum() / SPHERE - 1.0) < 1e-3
    assert abs(areas.sum() / SPHERE - 1.0) < 1e-9  # the cells tile the sphere exactly
    # a rotation keeps every cell's area; great-circle cells are within 0.1 % of lat-lon cells
    unrotated, _ = cell_areas(rotated_grid(res=2.0, tilt=0.0, spin=0.0))
    np.testing.assert_allclose(areas, unrotated, rtol=1e-7)
    np.testing.assert_allclose(unrotated, analytic_areas(2.0), rtol=1e-3)
    # clockwise vertices give the same areas
    reverse = spherical_polygon_area(
        grid.latitude_bounds[..., ::-1], grid.longitude_bounds[..., ::-1]
    )
    np.testing.assert_allclose(reverse * EARTH_RADIUS**2, areas, rtol=1e-12)


def test_missing_areas_are_errors_not_cell_counts():
    grid = rotated_grid()
    no_bounds = NativeGrid.build(grid.latitude, grid.longitude, grid.ocean, 10.0)
    with pytest.raises(DiagnosticError, match="neither areacello nor cell vertex bounds"):
        cell_areas(no_bounds)
    area = np.full(grid.shape, 1.0)
    area[3, 4] = np.nan
    bad = NativeGrid.build(grid.latitude, grid.longitude, grid.ocean, 10.0, area=area)
    with pytest.raises(DiagnosticError, match="1 ocean cell"):
        cell_areas(bad)


# ---------------------------------------------------------------------------------------------
# Coverage
# ---------------------------------------------------------------------------------------------
def random_case(seed: int = 1, n_months: int = 6) -> tuple:
    """A small random curvilinear grid with land, random labels on the lattice, native labels."""
    rng = np.random.default_rng(seed)
    grid = rotated_grid(res=5.0, tilt=25.0, spin=-40.0, box_size=10.0)
    ocean = rng.random(grid.shape) > 0.2
    grid = NativeGrid.build(
        grid.latitude,
        grid.longitude,
        ocean,
        10.0,
        latitude_bounds=grid.latitude_bounds,
        longitude_bounds=grid.longitude_bounds,
    )
    n_lat, n_lon = box_lattice(10.0)
    numbers = [2, 5, 9]
    values = rng.choice(numbers, size=(n_months, n_lat, n_lon)).astype(np.int16)
    lattice = np.ma.MaskedArray(values, mask=rng.random(values.shape) < 0.3)
    lattice[2] = np.ma.masked  # a month with nothing classified
    months = [f"2001-{m:02d}" for m in range(1, n_months + 1)]
    return grid, lattice, numbers, months


def test_coverage_matches_a_brute_force_loop_over_cells():
    grid, lattice, numbers, months = random_case()
    regions = DEFAULT_REGIONS
    masks = region_masks(regions, grid)
    areas, source = cell_areas(grid)
    table = coverage(
        iter_native_labels(lattice, grid, block_months=4),
        masks,
        areas,
        numbers,
        months=months,
        area_source=source,
    )
    # brute force: every cell, its own coordinates, its box's label
    lat2, lon2 = grid.cell_coordinates()
    n_lon = box_lattice(10.0)[1]
    box_labels = lattice.filled(-1).reshape(len(months), -1)
    for r, region in enumerate(regions):
        biome = np.zeros((len(months), len(numbers)))
        unclassified = np.zeros(len(months))
        ocean_area = 0.0
        for i in range(grid.shape[0]):
            for j in range(grid.shape[1]):
                if not grid.ocean[i, j] or not brute_contains(region, lat2[i, j], lon2[i, j]):
                    continue
                ocean_area += areas[i, j]
                box = grid.cell_box[i, j]
                assert box == (
                    int((lat2[i, j] + 90) // 10) * n_lon + int(((lon2[i, j] + 180) % 360) // 10)
                )
                for t in range(len(months)):
                    label = box_labels[t, box]
                    if label < 0:
                        unclassified[t] += areas[i, j]
                    else:
                        biome[t, numbers.index(label)] += areas[i, j]
        classified = biome.sum(axis=1)
        assert table.ocean_area[r] == pytest.approx(ocean_area, rel=1e-12)
        np.testing.assert_allclose(table.biome_area[r], biome, rtol=1e-12, atol=1e-3)
        np.testing.assert_allclose(table.classified_area[r], classified, rtol=1e-12, atol=1e-3)
        np.testing.assert_allclose(
            table.unclassified_percent[r], 100 * unclassified / ocean_area, rtol=1e-12, atol=1e-12
        )
        for t in range(len(months)):
            if classified[t] > 0:
                expected = 100 * biome[t] / classified[t]
                np.testing.assert_allclose(
                    table.coverage_percent[r, t], expected, rtol=1e-12, atol=1e-12
                )
            else:
                assert np.isnan(table.coverage_percent[r, t]).all()
    assert table.area_source == "spherical areas from cell vertices"


def test_coverage_sums_to_100_where_classified_and_is_nan_otherwise():
    grid, lattice, numbers, months = random_case(seed=7, n_months=8)
    masks = region_masks(DEFAULT_REGIONS, grid)
    areas, _ = cell_areas(grid)
    table = coverage(lattice_to_native(lattice, grid), masks, areas, numbers, months=months)
    cover = table.coverage_percent
    assert cover.shape == (5, 8, 3)
    classified = table.classified_area > 0
    assert classified.sum() >= 5 * 7
    np.testing.assert_allclose(cover.sum(axis=-1)[classified], 100.0, rtol=0, atol=1e-9)
    assert np.isnan(cover[:, 2]).all() and not classified[:, 2].any()
    np.testing.assert_allclose(table.unclassified_percent[:, 2], 100.0, rtol=1e-12)
    np.testing.assert_allclose(
        table.classified_area + table.unclassified_area,
        np.repeat(table.ocean_area[:, None], 8, axis=1),
        rtol=1e-12,
    )
    # one array or one month at a time: the same table
    one_by_one = coverage(
        (lattice_to_native(lattice[t], grid) for t in range(8)),
        masks,
        areas,
        numbers,
        months=months,
    )
    np.testing.assert_array_equal(one_by_one.biome_area, table.biome_area)


def test_unclassified_percent_on_a_planted_case():
    # 2 x 4 cells of 90 degrees (an eighth of the sphere each), one box per cell
    lat, lon, lat_b, lon_b = regular_axes(90.0)
    grid = NativeGrid.build(
        lat, lon, np.ones((2, 4), bool), 90.0, latitude_bounds=lat_b, longitude_bounds=lon_b
    )
    areas, _ = cell_areas(grid)
    np.testing.assert_allclose(areas, SPHERE / 8, rtol=1e-12)
    labels = np.ma.MaskedArray(
        [[[1, 1, 2, 2], [1, 1, 1, 1]], [[1, 2, 0, 0], [0, 0, 0, 0]]],
        mask=[[[0, 0, 0, 0], [0, 0, 1, 1]], [[0, 0, 1, 1], [1, 1, 1, 1]]],
    )
    north = Region("North", 0.0, 90.0)
    masks = region_masks([north, GLOBAL], grid)
    table = coverage(labels, masks, areas, [1, 2], months=["1999-12", "2000-01"])
    np.testing.assert_allclose(table.unclassified_percent, [[50.0, 100.0], [25.0, 75.0]])
    np.testing.assert_allclose(table.coverage_percent[1, 0], [4 / 6 * 100, 2 / 6 * 100])
    np.testing.assert_allclose(table.coverage_percent[1, 1], [50.0, 50.0])
    assert np.isnan(table.coverage_percent[0, 1]).all()
    records = table.records()
    assert len(records) == 2 * 2 * 2 and tuple(records[0]) == COVERAGE_COLUMNS
    row = records[4]  # Global, 1999-12, biome 1
    assert (row["region"], row["month"], row["biome"]) == ("Global", "1999-12", 1)
    assert row["area_km2"] == pytest.approx(4 * SPHERE / 8 / 1e6)
    assert row["classified_area_km2"] == pytest.approx(6 * SPHERE / 8 / 1e6)
    assert row["unclassified_percent"] == pytest.approx(25.0)
    assert table.rows()[4] == tuple(row.values())
    # a label that is no biome number is an error, not "unclassified"
    with pytest.raises(DiagnosticError, match=r"labels \[0\] are not biome numbers"):
        coverage(labels.filled(0), masks, areas, [1, 2], months=["1999-12", "2000-01"])
    with pytest.raises(DiagnosticError, match="2 months, but 3 month names"):
        coverage(labels, masks, areas, [1, 2], months=["1999-11", "1999-12", "2000-01"])


def test_lattice_labels_reach_every_ocean_cell_of_their_box():
    ocean = np.ones((180, 360), dtype=bool)
    ocean[:20, :] = False
    grid = regular_grid(1.0, box_size=10.0, ocean=ocean)
    n_lat, n_lon = box_lattice(10.0)
    rng = np.random.default_rng(3)
    lattice = np.ma.MaskedArray(
        rng.integers(1, 5, (3, n_lat, n_lon)).astype(np.int16),
        mask=rng.random((3, n_lat, n_lon)) < 0.5,
    )
    native = lattice_to_native(lattice, grid)
    assert native.shape == (3, 180, 360) and native.dtype == np.int16
    assert np.ma.getmaskarray(native)[:, ~ocean].all()
    # the lattice starts at 180W: the grid's column of 0.5E is in lattice column 18
    lat2, lon2 = grid.cell_coordinates()
    i = ((lat2 + 90) // 10).astype(int)
    j = (((lon2 + 180) % 360) // 10).astype(int)
    expected = lattice[:, i, j]
    expected[:, ~ocean] = np.ma.masked
    assert np.array_equal(np.ma.getmaskarray(native), np.ma.getmaskarray(expected))
    assert np.array_equal(native.compressed(), expected.compressed())
    blocks = list(iter_native_labels(lattice, grid, block_months=2))
    assert [b.shape[0] for b in blocks] == [2, 1]
    assert np.ma.allequal(np.ma.concatenate(blocks), native)
    with pytest.raises(DiagnosticError, match="for boxes of 10 degrees"):
        lattice_to_native(lattice[:, :9], grid)


# ---------------------------------------------------------------------------------------------
# Frequency maps
# ---------------------------------------------------------------------------------------------
def test_frequency_maps_on_a_planted_series():
    months = [f"{y}-{m:02d}" for y in range(2001, 2006) for m in range(1, 13)]
    n = len(months)
    labels = np.ma.MaskedArray(np.full((n, 2, 3), 1, dtype=np.int16), mask=False)
    january = np.arange(n) % 12 == 0
    # location (0, 0): biome 2 in 3 of 5 Januaries (2001, 2003, 2005)
    labels[np.flatnonzero(january)[[0, 2, 4]], 0, 0] = 2
    # location (0, 1): biome 2 in 3 Januaries, one January unclassified: 3 of 4 = 75 %
    labels[np.flatnonzero(january)[[0, 1, 2]], 0, 1] = 2
    labels[np.flatnonzero(january)[3], 0, 1] = np.ma.masked
    # location (1, 2): never classified
    labels[:, 1, 2] = np.ma.masked
    maps = frequency_maps(labels, [1, 2, 3], months)
    two, one = maps.biome_index(2), maps.biome_index(1)
    assert maps.monthly.shape == (3, 12, 2, 3) and maps.overall.shape == (3, 2, 3)
    assert maps.monthly[two, 0, 0, 0] == pytest.approx(60.0)
    assert maps.monthly[one, 0, 0, 0] == pytest.approx(40.0)
    assert maps.monthly[two, 0, 0, 1] == pytest.approx(75.0)
    assert maps.years_classified[0, 0, 1] == 4
    assert maps.monthly[two, 1:, 0, 0].max() == 0.0
    assert maps.overall[two, 0, 0] == pytest.approx(100 * 3 / 60)
    assert maps.overall[two, 0, 1] == pytest.approx(100 * 3 / 59)
    assert np.isnan(maps.monthly[:, :, 1, 2]).all() and np.isnan(maps.overall[:, 1, 2]).all()
    assert (maps.monthly[maps.biome_index(3)][~np.isnan(maps.monthly[0])] == 0).all()
    finite = ~np.isnan(maps.monthly[0])
    np.testing.assert_allclose(maps.monthly.sum(axis=0)[finite], 100.0)
    assert maps.years.tolist() == [5] * 12
    # a series with a gap: only 2 Februaries
    keep = [t for t, m in enumerate(months) if not (m.endswith("-02") and m < "2004")]
    gap = frequency_maps(labels[keep], [1, 2, 3], [months[t] for t in keep])
    assert gap.years[1] == 2 and gap.years_classified[1, 0, 0] == 2
    with pytest.raises(DiagnosticError, match="repeat"):
        frequency_maps(labels[:2], [1, 2, 3], ["2001-01", "2001-01"])
