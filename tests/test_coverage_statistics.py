"""Coverage from synthetic label series, and its seasonal cycle, annual means and trends.

docs/method.md §4. The label series are built from a planted coverage fraction: each month the
first ``round(f * N)`` boxes of a fixed random order carry biome 2, the others biome 1, so the
coverage that :func:`coverage` measures follows ``f`` up to the box granularity and the cell
areas. The trends are then those of :func:`coverage_statistics`.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest
from scipy.signal import lfilter

from carbon_biomes.core.coverage import coverage, iter_native_labels
from carbon_biomes.core.coverage_statistics import (
    ANNUAL_MEAN,
    CALENDAR_MONTH_SERIES,
    DESEASONALIZED,
    TrendSettings,
    coverage_statistics,
    trend_rows,
)
from carbon_biomes.core.errors import SettingsError
from carbon_biomes.core.monthly_regression import NativeGrid
from carbon_biomes.core.regions import EQUATORIAL_PACIFIC, GLOBAL, cell_areas, region_masks
from carbon_biomes.core.regression import box_lattice

BOX = 1.0


def months_from(first_year: int, n_years: int) -> list[str]:
    return [f"{y:04d}-{m:02d}" for y in range(first_year, first_year + n_years)
            for m in range(1, 13)]  # fmt: skip


def equatorial_grid() -> NativeGrid:
    """A 1° regular grid of the central equatorial Pacific, 12°S-12°N, 160°E-200°E."""
    lat = np.arange(-11.5, 12.0, 1.0)
    lon = np.arange(160.5, 200.0, 1.0)
    lat_b = np.stack((lat - 0.5, lat + 0.5), axis=-1)
    lon_b = np.stack((lon - 0.5, lon + 0.5), axis=-1)
    ocean = np.ones((lat.size, lon.size), dtype=bool)
    return NativeGrid.build(lat, lon, ocean, BOX, latitude_bounds=lat_b, longitude_bounds=lon_b)


def planted_fraction(n_years: int, expansion: float, seed: int, phi: float = 0.6) -> np.ndarray:
    """Biome-2 fraction: 0.45 + seasonal cycle + AR(1) noise (sd 0.02) + linear expansion."""
    rng = np.random.default_rng(seed)
    n = 12 * n_years
    phase = 2 * np.pi * (np.arange(n) % 12) / 12
    innovations = rng.normal(size=n + 100) * 0.02 * np.sqrt(1 - phi**2)
    noise = lfilter([1.0], [1.0, -phi], innovations)[100:]
    return 0.45 + 0.12 * np.sin(phase) + noise + expansion * np.arange(n) / (n - 1)


def lattice_labels(grid: NativeGrid, fraction: np.ndarray, seed: int = 0) -> np.ma.MaskedArray:
    """Labels on the lattice: biome 2 on the first round(f N) of the grid's boxes, else 1."""
    n_lat, n_lon = box_lattice(BOX)
    boxes = np.unique(grid.cell_box[grid.cell_box >= 0])
    order = np.random.default_rng(seed).permutation(boxes)
    labels = np.ma.masked_all((fraction.size, n_lat * n_lon), dtype=np.int16)
    labels[:, boxes] = 1
    counts = np.clip(np.round(fraction * boxes.size).astype(int), 0, boxes.size)
    rank = np.empty(boxes.size, dtype=int)
    rank[np.searchsorted(boxes, order)] = np.arange(boxes.size)
    chosen = rank[None, :] < counts[:, None]
    labels[:, boxes] = np.where(chosen, 2, 1)
    return labels.reshape(fraction.size, n_lat, n_lon)


def statistics_of(fraction: np.ndarray, months: list[str], settings: TrendSettings | None = None):
    grid = equatorial_grid()
    labels = lattice_labels(grid, fraction)
    masks = region_masks([EQUATORIAL_PACIFIC, GLOBAL], grid)
    areas, source = cell_areas(grid)
    table = coverage(iter_native_labels(labels, grid, block_months=60), masks, areas, (1, 2),
                     months=months, area_source=source)  # fmt: skip
    return table, coverage_statistics(table, settings)


def test_planted_10_point_expansion_from_labels_is_recovered():
    months = months_from(1981, 30)
    table, stats = statistics_of(planted_fraction(30, 0.10, seed=1), months)
    cover = table.coverage_percent
    # the coverage sums to 100 in every region and month
    np.testing.assert_allclose(cover.sum(axis=-1), 100.0, atol=0.01)
    for biome, sign in ((2, 1.0), (1, -1.0)):
        trend = stats.trend("Equatorial Pacific", biome, DESEASONALIZED).result
        rows = dict((m, v) for m, v, _ in trend_rows(trend, "percentage points"))
        assert abs(rows["total_change"] - sign * 10.0) < 2.0, rows
        assert rows["p_value"] < 0.05 and rows["significant"] == 1.0
        # the annual means carry the same expansion
        annual = stats.trend("Equatorial Pacific", biome, ANNUAL_MEAN).result
        assert annual.n == 30 and annual.p_value < 0.05
        assert abs(annual.slope * 29 - sign * 10.0 * 29 / 30) < 2.0
    # the region is 10S-10N; the grid is 12S-12N: the Global region sees another coverage
    assert table.ocean_area[0] < table.ocean_area[1]


def test_no_planted_trend_rarely_significant_with_ar1_noise():
    # 100 seeds of AR(1) (phi = 0.6) noise around a seasonal cycle, no trend; the default
    # test (pre-whitening) keeps 92 % non-significant here (94 % on seeds 300-399); Hamed-Rao
    # keeps 90 % on both seed sets, at the edge of the criterion
    months = months_from(1981, 30)
    p_values = []
    for seed in range(100):
        _, stats = statistics_of(planted_fraction(30, 0.0, seed=100 + seed), months)
        p_values.append(stats.trend("Equatorial Pacific", 2, DESEASONALIZED).result.p_value)
    not_significant = np.mean(np.asarray(p_values) > 0.05)
    assert not_significant >= 0.90, not_significant


def test_seasonal_cycle_and_annual_means_follow_the_planted_fraction():
    months = months_from(1991, 12)
    fraction = planted_fraction(12, 0.0, seed=3)
    table, stats = statistics_of(fraction, months)
    r = stats.regions.index("Equatorial Pacific")
    direct = table.coverage_percent[r, :, 1].reshape(12, 12)  # (years, calendar months)
    np.testing.assert_allclose(stats.seasonal_mean[r, 1], direct.mean(axis=0), atol=1e-9)
    np.testing.assert_allclose(stats.seasonal_std[r, 1], direct.std(axis=0, ddof=1), atol=1e-9)
    np.testing.assert_allclose(stats.annual[r, :, 1], direct.mean(axis=1), atol=1e-9)
    assert list(stats.years) == list(range(1991, 2003))
    assert (stats.seasonal_years[r] == 12).all()
    # the planted cycle: 12 points of sin, maximum in April (phase 3/12 of a year)
    cycle = stats.seasonal_mean[r, 1]
    assert int(np.argmax(cycle)) == 3 and cycle.max() - cycle.min() > 18.0
    np.testing.assert_allclose(stats.seasonal_mean[r].sum(axis=0), 100.0, atol=0.01)
    # every calendar month's series is tested (12 years >= min_length 10)
    for name in CALENDAR_MONTH_SERIES:
        assert not stats.trend("Equatorial Pacific", 2, name).result.skipped


def test_short_period_gives_a_logged_skip_not_a_number(caplog):
    months = months_from(2008, 2)
    with caplog.at_level(logging.INFO, logger="carbon_biomes.core.coverage_statistics"):
        _, stats = statistics_of(planted_fraction(2, 0.1, seed=4), months)
    assert stats.skipped_reason and "2 calendar year(s)" in stats.skipped_reason
    assert "no coverage trends" in caplog.text
    assert all(item.result.skipped and np.isnan(item.result.slope) for item in stats.trends)
    rows = trend_rows(stats.trends[0].result, "percentage points")
    assert [m for m, _, _ in rows] == ["n", "skipped"]
    # the seasonal cycle is still there
    assert np.isfinite(stats.seasonal_mean).all()


def test_trend_settings_are_checked():
    with pytest.raises(SettingsError, match="trend_method"):
        TrendSettings(method="linear")
    with pytest.raises(SettingsError, match="min_years"):
        TrendSettings(min_years=1)
