"""Tests of carbon_biomes.core.rc_trends: trends of the regression coefficients (§4)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import lfilter

from carbon_biomes.core.errors import DiagnosticError, SettingsError
from carbon_biomes.core.rc_trends import (
    ALL_BOXES,
    ANNUAL_MEAN,
    BIOME,
    DESEASONALIZED,
    MONTHLY,
    RC_TREND_COLUMNS,
    rc_trends,
    rc_units,
)
from carbon_biomes.core.trends import deseasonalize, month_index, per_decade, trend_map, trend_test

N_LAT, N_LON = 6, 8
BASE = np.array([15.0, 1.5, -1.3])  # µatm per degC, per mmol m-3 (DIC), per mmol m-3 (ALK)
NOISE = np.array([1.0, 0.2, 0.2])
SEASON = np.array([2.0, 0.3, 0.3])


def month_names(first_year: int, n_years: int) -> list[str]:
    return [f"{y}-{m:02d}" for y in range(first_year, first_year + n_years) for m in range(1, 13)]


def ar1(shape: tuple[int, ...], phi: float, rng: np.random.Generator) -> np.ndarray:
    """AR(1) noise of unit variance along axis 0, after a spin-up of 100 steps."""
    innovations = rng.normal(size=(shape[0] + 100, *shape[1:])) * np.sqrt(1 - phi**2)
    return lfilter([1.0], [1.0, -phi], innovations, axis=0)[100:]


def box_areas() -> np.ndarray:
    """Unequal box areas (m2): cos(latitude) of a 2-degree lattice band, times a ramp."""
    lat = np.linspace(-50.0, 50.0, N_LAT)
    return 4.9e10 * np.cos(np.deg2rad(lat))[:, None] * np.linspace(0.5, 1.5, N_LON)[None, :]


def planted_case(seed: int = 2, n_years: int = 30):
    """DIC sensitivity growing by 0.5 per decade in the boxes of biome 2 (rows 3-5).

    Every driver has a seasonal cycle and AR(1) noise; 10 % of the box-months are unclassified
    (labels and slopes masked, as the tracking leaves them), box (1, 1) is land and box (4, 6)
    is fitted in 40 % of the months only.
    """
    rng = np.random.default_rng(seed)
    months = month_names(1990, n_years)
    index = month_index(months)
    t_years = (index - index[0]) / 12.0
    shape = (index.size, N_LAT, N_LON, 3)
    season = np.sin(2 * np.pi * (index % 12) / 12.0)[:, None, None, None] * SEASON
    slopes = BASE + season + NOISE * ar1(shape, 0.4, rng)
    growth = np.zeros((N_LAT, N_LON))
    growth[3:] = 0.5  # per decade
    slopes[..., 1] += growth * t_years[:, None, None] / 10.0
    labels = np.ones(shape[:3], dtype=np.int16)
    labels[:, 3:] = 2
    missing = rng.random(shape[:3]) < 0.1
    missing[:, 1, 1] = True  # land
    missing[:, 4, 6] |= rng.random(index.size) < 0.6  # valid in about 40 % of the months
    labels = np.ma.masked_array(labels, mask=missing)
    slopes = np.ma.masked_array(slopes, mask=np.repeat(missing[..., None], 3, axis=-1))
    return slopes, months, labels, box_areas(), growth


@pytest.fixture(scope="module")
def planted():
    slopes, months, labels, area, growth = planted_case()
    return rc_trends(slopes, months, labels, area, [1, 2]), slopes, months, labels, area, growth


def test_planted_dic_growth_is_recovered_per_box(planted):
    result, slopes, months, labels, area, growth = planted
    assert result.box_trend.shape == (3, N_LAT, N_LON)
    assert result.driver_names == ("sst", "dic", "alk") and result.biome_numbers == (1, 2)
    sparse = np.zeros((N_LAT, N_LON), dtype=bool)
    sparse[1, 1] = sparse[4, 6] = True
    tested = ~sparse
    assert np.isfinite(result.box_trend[:, tested]).all()
    assert np.isnan(result.box_trend[:, sparse]).all()
    dic = result.box_trend[1]
    grows = (growth > 0) & tested
    still = (growth == 0) & tested
    # 30 years of AR(1) noise (sd 0.2, phi 0.4): the slope error of a box is about 0.04 per decade
    assert dic[grows].mean() == pytest.approx(0.5, abs=0.03)
    assert np.abs(dic[grows] - 0.5).max() < 0.15
    assert result.box_significant[1][grows].mean() >= 0.95  # 100 % here
    assert np.abs(dic[still].mean()) < 0.03
    assert result.box_significant[1][still].mean() <= 0.2
    for d in (0, 2):  # SST and ALK sensitivities stay put everywhere
        assert result.box_significant[d][tested].mean() <= 0.2
        assert np.abs(np.nanmedian(result.box_trend[d] / NOISE[d])) < 0.1
    inside = (result.box_trend_low[1] <= growth) & (growth <= result.box_trend_high[1])
    assert inside[tested].mean() >= 0.75
    assert result.box_total_change[1][grows].mean() == pytest.approx(0.5 * 2.99, abs=0.1)

    # every box is the single-series test of its deseasonalized RCs, against fractional years
    # since the first month
    years = (month_index(months) - month_index(months)[0]) / 12.0
    for box in [(0, 0), (3, 2), (5, 7)]:
        series = np.ma.filled(slopes[(slice(None), *box, 1)], np.nan)
        single = trend_test(deseasonalize(series, months), years, time_unit="year")
        change = per_decade(single)
        assert result.box_trend[(1, *box)] == pytest.approx(change.per_decade, rel=1e-12)
        assert result.box_trend_low[(1, *box)] == pytest.approx(change.low, rel=1e-12)
        assert result.box_p_value[(1, *box)] == pytest.approx(single.p_value, rel=1e-9)
        assert result.box_significant[(1, *box)] == single.significant
        assert result.box_n[(1, *box)] == single.n == np.isfinite(series).sum()


def test_planted_dic_growth_is_recovered_per_biome(planted):
    result, slopes, months, labels, area, growth = planted
    assert result.biome_series.shape == (len(months), 2, 3)
    # the biome series is the area-weighted mean of the labelled boxes, month by month
    for t in (0, 17, 359):
        for k, biome in enumerate((1, 2)):
            chosen = ~np.ma.getmaskarray(labels[t]) & (np.ma.getdata(labels[t]) == biome)
            weights = area[chosen]
            for d in range(3):
                expected = np.sum(weights * slopes[t, ..., d].data[chosen]) / weights.sum()
                assert result.biome_series[t, k, d] == pytest.approx(expected, rel=1e-12)
                assert result.biome_area[t, k, d] == pytest.approx(weights.sum(), rel=1e-12)

    monthly, annual = result.decadal(DESEASONALIZED), result.decadal(ANNUAL_MEAN)
    k2, dic = result.biome_index(2), result.driver_index("dic")
    for change, trend in ((monthly, result.biome_trend), (annual, result.biome_annual_trend)):
        assert change.low[k2, dic] <= 0.5 <= change.high[k2, dic]
        assert change.per_decade[k2, dic] == pytest.approx(0.5, abs=0.03)
        assert trend.p_value[k2, dic] < 1e-6 and trend.significant[k2, dic]
        # the other five series have no trend; with seeds 0-19 of this case, 9 % (deseasonalized)
        # and 10 % (annual means) of them are significant at 5 %; none with this seed
        nulls = np.ones((2, 3), dtype=bool)
        nulls[k2, dic] = False
        assert not trend.significant[nulls].any()
        assert (trend.p_value[nulls] > 0.05).all()
        assert np.abs(change.per_decade / NOISE)[nulls].max() < 0.1
    assert monthly.total_change[k2, dic] == pytest.approx(0.5 * 2.99, abs=0.1)
    assert result.biome_trend.n[k2, dic] == len(months)
    assert result.biome_annual_trend.n[k2, dic] == 30
    np.testing.assert_array_equal(result.biome_years, np.arange(1990, 2020))
    # the biome trend is that of the deseasonalized biome series
    years = (month_index(months) - month_index(months)[0]) / 12.0
    anomalies = deseasonalize(result.biome_series[:, k2, dic], months)
    single = trend_test(anomalies, years, time_unit="year")
    assert per_decade(single).per_decade == pytest.approx(monthly.per_decade[k2, dic], rel=1e-12)
    assert single.p_value == pytest.approx(result.biome_trend.p_value[k2, dic], rel=1e-9)

    # a per-month box area gives the same numbers as the constant one
    again = rc_trends(slopes, months, labels, np.broadcast_to(area, labels.shape), [1, 2])
    np.testing.assert_allclose(again.biome_series, result.biome_series, rtol=1e-12)
    np.testing.assert_array_equal(again.box_trend, result.box_trend)


def test_records_are_long_format_rows_with_units(planted):
    result = planted[0]
    records = result.records()
    assert all(tuple(row) == RC_TREND_COLUMNS for row in records)
    biome_rows = [row for row in records if row["scope"] == BIOME]
    box_rows = [row for row in records if row["scope"] == ALL_BOXES]
    # per biome and driver: 2 monthly rows + 7 metrics of 2 trend series
    assert len(biome_rows) == 2 * 3 * (2 + 2 * 7)
    assert len(box_rows) == 3 * 4 and all(row["biome"] is None for row in box_rows)
    metrics = {row["metric"] for row in biome_rows if row["series"] == DESEASONALIZED}
    assert metrics == {"trend_per_decade", "trend_low", "trend_high", "total_change",
                       "p_value", "significant", "n"}  # fmt: skip

    def pick(scope, biome, driver, series, metric):
        (row,) = [
            row for row in records
            if (row["scope"], row["biome"], row["driver"], row["series"], row["metric"])
            == (scope, biome, driver, series, metric)
        ]  # fmt: skip
        return row

    row = pick(BIOME, 2, "dic", DESEASONALIZED, "trend_per_decade")
    assert row["units"] == "uatm m3 mmol-1 per decade"
    assert row["value"] == pytest.approx(result.decadal().per_decade[1, 1])
    assert pick(BIOME, 2, "dic", DESEASONALIZED, "total_change")["units"] == "uatm m3 mmol-1"
    assert pick(BIOME, 1, "sst", ANNUAL_MEAN, "trend_low")["units"] == "uatm degC-1 per decade"
    assert pick(BIOME, 2, "dic", DESEASONALIZED, "significant")["value"] == 1.0
    assert pick(BIOME, 2, "dic", ANNUAL_MEAN, "n")["value"] == 30.0
    assert pick(BIOME, 2, "alk", DESEASONALIZED, "p_value")["units"] == "1"
    assert pick(BIOME, 1, "sst", MONTHLY, "period_mean")["value"] == pytest.approx(15.0, abs=0.1)
    # all boxes: 23 of the 46 tested boxes grow
    dic_up = pick(ALL_BOXES, None, "dic", DESEASONALIZED, "fraction_significant_positive")
    assert 0.45 <= dic_up["value"] <= 0.55
    assert pick(ALL_BOXES, None, "dic", DESEASONALIZED, "n_boxes")["value"] == 46.0
    median = pick(ALL_BOXES, None, "alk", DESEASONALIZED, "median_trend_per_decade")
    assert median["units"] == "uatm m3 mmol-1 per decade" and abs(median["value"]) < 0.02
    assert len(result.rows()) == len(records)
    assert rc_units("dic") == "uatm m3 mmol-1" and rc_units("sss") == "uatm (sss unit)-1"


def test_a_seasonal_cycle_alone_gives_no_trend():
    # a strong seasonal cycle, and the summers (Jun-Aug) missing in the first 15 years: the raw
    # series seem to rise, the calendar-month anomalies do not
    rng = np.random.default_rng(3)
    months = month_names(1980, 30)
    index = month_index(months)
    calendar = index % 12
    season = 5.0 * np.cos(2 * np.pi * (calendar - 6) / 12.0)  # peaks in July
    shape = (index.size, N_LAT, N_LON, 3)
    slopes = BASE + season[:, None, None, None] + 0.1 * rng.normal(size=shape)
    gap = (index < index[0] + 180) & np.isin(calendar, [5, 6, 7])
    slopes = np.ma.masked_array(slopes, mask=np.zeros(shape, dtype=bool))
    slopes[gap] = np.ma.masked
    labels = np.ones(shape[:3], dtype=np.int16)
    labels[:, :, 4:] = 2
    result = rc_trends(slopes, months, labels, box_areas(), [1, 2])

    raw = per_decade(trend_map(slopes[..., 1], months))  # without deseasonalizing
    assert (raw.per_decade > 0.2).all()  # a spurious rise of about 0.3 per decade
    assert np.isfinite(result.box_trend).all()
    assert result.box_significant.mean() <= 0.15
    assert np.abs(result.box_trend).max() < 0.05  # 0.02 here, seasonal amplitude 5
    # nor do the biome means (the raw biome series rise by 0.06-0.07 per decade)
    raw_biome = per_decade(trend_map(result.biome_series, months))
    assert (raw_biome.per_decade > 0.05).all()
    assert not result.biome_trend.significant.any()  # smallest p: 0.07
    for series in (DESEASONALIZED, ANNUAL_MEAN):
        assert np.abs(result.decadal(series).per_decade).max() < 0.01  # 0.003 here
    # (the annual means of biome 2's ALK sensitivity, 30 values without trend, get p = 2e-5
    # from Hamed-Rao and 0.054 from the uncorrected test: a chance negative autocorrelation
    # shrinks the variance; see core/trends.py on short series)
    assert result.biome_annual_trend.significant.sum() <= 1
    # the gaps are missing in the biome series (all boxes gap together)
    assert np.isnan(result.biome_series[gap]).all()
    assert np.isfinite(result.biome_series[~gap]).all()


def test_boxes_valid_in_too_few_months_are_nan():
    slopes, months, labels, area, _ = planted_case(n_years=12)
    result = rc_trends(slopes, months, labels, area, [1, 2])
    fraction = result.box_valid_fraction[1, 4, 6]
    assert 0.3 < fraction < 0.5
    assert result.box_n[1, 4, 6] == round(fraction * len(months))
    for name in ("box_trend", "box_trend_low", "box_trend_high", "box_total_change",
                 "box_p_value"):  # fmt: skip
        assert np.isnan(getattr(result, name)[:, 4, 6]).all()
        assert np.isnan(getattr(result, name)[:, 1, 1]).all()
    assert not result.box_significant[:, 4, 6].any()
    assert (result.box_n[:, 1, 1] == 0).all()
    assert np.isfinite(result.box_trend[:, 0, 0]).all()
    # a lower bar tests the sparse box too, the land box never
    relaxed = rc_trends(slopes, months, labels, area, [1, 2], min_coverage=0.3)
    assert np.isfinite(relaxed.box_trend[:, 4, 6]).all()
    assert np.isnan(relaxed.box_trend[:, 1, 1]).all()
    # min_length still applies to the biome series: 8 months are too few
    short = rc_trends(slopes[:8], months[:8], labels[:8], area, [1, 2], min_coverage=0.0)
    assert np.isnan(short.biome_trend.slope).all() and np.isnan(short.box_trend).all()
    assert (short.box_n[:, 0, 0] <= 8).all()


def test_a_biome_absent_in_a_month_is_nan_and_drops_out():
    slopes, months, labels, area, _ = planted_case(n_years=12)
    labels = labels.copy()
    labels[5, 3:] = np.ma.masked  # no box carries biome 2 in June 1990
    result = rc_trends(slopes, months, labels, area, [1, 2, 3])
    assert np.isnan(result.biome_series[5, 1]).all() and (result.biome_area[5, 1] == 0).all()
    assert np.isfinite(result.biome_series[5, 0]).all()
    assert np.isnan(result.biome_series[:, 2]).all()  # biome 3 never occurs
    assert result.biome_trend.n[0, 0] == len(months) and result.biome_trend.n[1, 0] == 143
    assert np.isnan(result.biome_trend.slope[2]).all()
    records = result.records()
    assert {row["biome"] for row in records if row["scope"] == BIOME} == {1, 2, 3}


def test_bad_input_raises_naming_the_problem():
    slopes, months, labels, area, _ = planted_case(n_years=2)
    with pytest.raises(DiagnosticError, match="slopes must be"):
        rc_trends(slopes[..., 0], months, labels, area, [1, 2])
    with pytest.raises(DiagnosticError, match="24 months on axis 0, but 23 months"):
        rc_trends(slopes, months[:-1], labels, area, [1, 2])
    with pytest.raises(DiagnosticError, match="labels have shape"):
        rc_trends(slopes, months, labels[:, :-1], area, [1, 2])
    with pytest.raises(DiagnosticError, match="box_area has shape"):
        rc_trends(slopes, months, labels, area[:-1], [1, 2])
    with pytest.raises(DiagnosticError, match="driver_names names 2"):
        rc_trends(slopes, months, labels, area, [1, 2], driver_names=("sst", "dic"))
    with pytest.raises(DiagnosticError, match=r"labels \[2\] are not biome numbers"):
        rc_trends(slopes, months, labels, area, [1, 3])
    with pytest.raises(DiagnosticError, match="repeat a month"):
        rc_trends(slopes, [months[0]] * 24, labels, area, [1, 2])
    with pytest.raises(DiagnosticError, match="months must be like 2009-01"):
        rc_trends(slopes, ["1990"] + months[1:], labels, area, [1, 2])
    holes = area.copy()
    holes[2, 2] = np.nan
    with pytest.raises(DiagnosticError, match="box_area is missing"):
        rc_trends(slopes, months, labels, holes, [1, 2])
    holes = np.ma.masked_array(area, mask=np.zeros(area.shape, dtype=bool))
    holes[1, 1] = np.ma.masked  # the land box: never labelled, no area needed
    rc_trends(slopes, months, labels, holes, [1, 2])
    with pytest.raises(SettingsError, match="min_coverage"):
        rc_trends(slopes, months, labels, area, [1, 2], min_coverage=1.5)
    with pytest.raises(SettingsError, match="method"):
        rc_trends(slopes, months, labels, area, [1, 2], method="spearman")
    with pytest.raises(SettingsError, match="biome numbers"):
        rc_trends(slopes, months, labels, area, [])
