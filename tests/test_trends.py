"""Tests of carbon_biomes.core.trends: Theil-Sen slopes, Mann-Kendall tests, monthly helpers.

docs/method.md §4: coverage trends (paper: about +10 points over the period), seasonal cycles
and trend maps of the regression coefficients.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest
from scipy import stats
from scipy.signal import lfilter

from carbon_biomes.core.errors import DiagnosticError, SettingsError
from carbon_biomes.core.trends import (
    MIN_LENGTH,
    TrendResult,
    annual_means,
    calendar_months,
    deseasonalize,
    deseasonalized_trend,
    month_index,
    monthly_trends,
    per_decade,
    seasonal_cycle,
    trend_map,
    trend_test,
)


def months_from(first_year: int, n_years: int) -> list[str]:
    return [f"{year:04d}-{month:02d}" for year in range(first_year, first_year + n_years)
            for month in range(1, 13)]  # fmt: skip


def ar1(shape: tuple[int, ...], phi: float, rng: np.random.Generator) -> np.ndarray:
    """AR(1) noise of unit innovations along axis 0, after a spin-up of 100 steps."""
    innovations = rng.normal(size=(shape[0] + 100, *shape[1:]))
    return lfilter([1.0], [1.0, -phi], innovations, axis=0)[100:]


# ------------------------------------------------------------------------------------------
# (a) a planted coverage expansion


def coverage_series(seed: int, expansion: float, n_years: int = 30):
    """Monthly coverage (percentage points): seasonal cycle + AR(1) noise + linear expansion."""
    rng = np.random.default_rng(seed)
    months = months_from(1990, n_years)
    n = len(months)
    phase = 2 * np.pi * (np.arange(n) % 12) / 12
    cycle = 40.0 + 12.0 * np.sin(phase) + 4.0 * np.cos(2 * phase)
    noise = 1.5 * np.sqrt(1 - 0.5**2) * ar1((n,), 0.5, rng)  # stationary sd 1.5 points
    trend = expansion * np.arange(n) / (n - 1)  # from the first to the last month
    return months, cycle + noise + trend


def test_planted_expansion_of_10_points_is_recovered_deseasonalized():
    months, coverage = coverage_series(seed=3, expansion=10.0)
    result = deseasonalized_trend(coverage, months)
    change = per_decade(result)
    assert result.time_unit == "year" and result.method == "hamed_rao"
    assert result.n == 360 and not result.skipped
    assert abs(change.total_change - 10.0) < 2.0
    assert result.p_value < 0.05 and result.significant
    # 10 points over 359 months: 3.34 points per decade, inside the confidence interval
    assert change.low < 10.0 / (359 / 120) < change.high
    assert change.per_decade == pytest.approx(result.slope * 10)
    # the same series in months (index): slope per month, identical test
    by_month = trend_test(deseasonalize(coverage, months), time_unit="month")
    assert per_decade(by_month).per_decade == pytest.approx(change.per_decade, rel=1e-9)
    assert by_month.p_value == pytest.approx(result.p_value, rel=1e-9)


def test_planted_expansion_is_found_in_every_calendar_month():
    months, coverage = coverage_series(seed=4, expansion=10.0)
    trends = monthly_trends(coverage, months)
    assert sorted(trends) == list(range(1, 13))
    for result in trends.values():
        assert result.n == 30 and result.time_unit == "year"
        assert result.significant
        assert abs(per_decade(result).total_change - 10.0) < 3.0


def test_no_expansion_no_significant_deseasonalized_trend():
    months, coverage = coverage_series(seed=5, expansion=0.0)
    result = deseasonalized_trend(coverage, months)
    assert abs(per_decade(result).total_change) < 2.0
    assert result.p_value > 0.05


# ------------------------------------------------------------------------------------------
# (b) false positives without a trend: the correction matters

N_SEEDS = 200
N_MONTHS = 360  # 30 years of monthly anomalies


def rejection_rate(noise: np.ndarray, method: str) -> float:
    return float(np.mean(trend_map(noise, method=method).p_value < 0.05))


@pytest.fixture(scope="module")
def noise():
    rng = np.random.default_rng(20250101)
    return {
        "white": rng.normal(size=(N_MONTHS, N_SEEDS)),
        "ar1": ar1((N_MONTHS, N_SEEDS), 0.6, rng),
    }


def test_corrected_tests_keep_false_positives_near_nominal(noise):
    # Measured with these 200 seeds (2,000 series give: white 5 %, 5 %; AR(1) 8 %, 5 %):
    #   hamed_rao:    white 6.0 %, AR(1) 8.5 %
    #   prewhitening: white 5.0 %, AR(1) 3.5 %
    for method in ("hamed_rao", "prewhitening"):
        for kind in ("white", "ar1"):
            rate = rejection_rate(noise[kind], method)
            assert 1 - rate >= 0.90, (method, kind, rate)


def test_uncorrected_test_fails_with_autocorrelated_noise(noise):
    # The uncorrected Mann-Kendall test is fine on white noise (6.0 % here) but rejects a
    # non-existent trend in 32 % of the AR(1) series (phi = 0.6): Var(S) is about 4 times
    # too small. It fails the 90 % criterion that Hamed-Rao (8.5 %) passes.
    original_white = rejection_rate(noise["white"], "original")
    original_ar1 = rejection_rate(noise["ar1"], "original")
    corrected_ar1 = rejection_rate(noise["ar1"], "hamed_rao")
    assert original_white <= 0.10
    assert 1 - original_ar1 < 0.90
    assert original_ar1 >= 2 * corrected_ar1 and original_ar1 - corrected_ar1 >= 0.1


def test_every_lag_hamed_rao_is_liberal_with_ar1_noise(noise):
    # Why max_lag defaults to 3: with every lag (Hamed and Rao 1998, pymannkendall's default)
    # the chance-significant long lags pull the correction down (15 % false positives here,
    # 11 % with white noise).
    every_lag = np.mean(trend_map(noise["ar1"], max_lag=None).p_value < 0.05)
    three_lags = np.mean(trend_map(noise["ar1"]).p_value < 0.05)
    assert every_lag > three_lags


# ------------------------------------------------------------------------------------------
# (c) agreement with scipy and pymannkendall


def reference_series() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    return {
        "white": rng.normal(size=50),
        "ar1": ar1((120,), 0.6, rng),
        "ar1 + trend": ar1((80,), 0.8, rng) + 0.05 * np.arange(80),
        "ties": np.round(rng.normal(size=60), 1),
        "seasonal": np.sin(np.arange(96) * np.pi / 6) + 0.3 * rng.normal(size=96),
        "short": rng.normal(size=12) + 0.2 * np.arange(12),
    }


@pytest.mark.parametrize("name", list(reference_series()))
def test_theil_sen_matches_scipy(name):
    y = reference_series()[name]
    for alpha in (0.05, 0.1):
        result = trend_test(y, alpha=alpha)
        expected = stats.theilslopes(y, alpha=1 - alpha)
        assert result.slope == pytest.approx(expected.slope, rel=1e-12, abs=1e-14)
        assert result.intercept == pytest.approx(expected.intercept, rel=1e-12, abs=1e-12)
        assert result.slope_low == pytest.approx(expected.low_slope, rel=1e-12, abs=1e-14)
        assert result.slope_high == pytest.approx(expected.high_slope, rel=1e-12, abs=1e-14)


def test_theil_sen_matches_scipy_with_gaps_and_uneven_times():
    rng = np.random.default_rng(8)
    times = np.sort(rng.uniform(1960, 2020, size=40))
    y = 0.3 * times + rng.normal(size=40)
    y[[3, 17, 30]] = np.nan
    result = trend_test(y, times)
    keep = np.isfinite(y)
    expected = stats.theilslopes(y[keep], times[keep], alpha=0.95)
    assert result.n == 37
    assert result.slope == pytest.approx(expected.slope, rel=1e-12)
    assert result.intercept == pytest.approx(expected.intercept, rel=1e-10)
    assert (result.slope_low, result.slope_high) == pytest.approx(
        (expected.low_slope, expected.high_slope), rel=1e-12
    )
    assert result.span == pytest.approx(times[keep][-1] - times[keep][0])


@pytest.mark.parametrize("name", list(reference_series()))
def test_mann_kendall_matches_pymannkendall(name):
    mk = pytest.importorskip("pymannkendall")
    y = reference_series()[name]
    cases = [
        ({"method": "original"}, mk.original_test(y)),
        ({"method": "hamed_rao"}, mk.hamed_rao_modification_test(y, lag=3)),
        ({"method": "hamed_rao", "max_lag": None}, mk.hamed_rao_modification_test(y)),
        ({"method": "prewhitening"}, mk.pre_whitening_modification_test(y)),
    ]
    for options, expected in cases:
        result = trend_test(y, **options)
        if not np.isfinite(expected.p):  # pymannkendall's non-positive correction
            assert result.skipped and "Hamed-Rao" in result.skipped_reason
            continue
        assert result.p_value == pytest.approx(expected.p, rel=1e-9, abs=1e-14), options
        assert result.z == pytest.approx(expected.z, rel=1e-12, abs=1e-12), options
        assert result.tau == pytest.approx(expected.Tau, rel=1e-12, abs=1e-15), options
        assert result.slope == pytest.approx(expected.slope, rel=1e-12, abs=1e-14), options
        assert result.intercept == pytest.approx(expected.intercept, rel=1e-12, abs=1e-12)
        assert result.significant == bool(expected.h)


# ------------------------------------------------------------------------------------------
# (d) short series, settings and input errors


def test_short_series_is_skipped_with_a_reason(caplog):
    short = np.arange(MIN_LENGTH - 1, dtype=float)
    with caplog.at_level(logging.INFO, logger="carbon_biomes.core.trends"):
        result = trend_test(short)
    assert isinstance(result, TrendResult) and result.skipped
    assert "min_length=10" in result.skipped_reason and "9 valid values" in result.skipped_reason
    assert np.isnan([result.slope, result.slope_low, result.slope_high, result.p_value,
                     result.z, result.tau]).all()  # fmt: skip
    assert result.n == 9 and not result.significant
    assert any("skipped" in record.getMessage() for record in caplog.records)


def test_missing_values_can_make_a_series_too_short():
    y = np.arange(20, dtype=float)
    y[::2] = np.nan
    assert not trend_test(y).skipped and trend_test(y).n == 10  # exactly min_length
    y[1] = np.nan
    assert trend_test(y).n == 9 and trend_test(y).skipped
    assert not trend_test(y, min_length=5).skipped
    ten = trend_test(np.arange(10.0))
    assert not ten.skipped and ten.slope == 1.0 and ten.significant


def test_settings_and_inputs_are_checked():
    y = np.random.default_rng(0).normal(size=30)
    with pytest.raises(SettingsError, match="method"):
        trend_test(y, method="sen")
    with pytest.raises(SettingsError, match="alpha"):
        trend_test(y, alpha=1.5)
    with pytest.raises(SettingsError, match="min_length"):
        trend_test(y, min_length=3)
    with pytest.raises(SettingsError, match="max_lag"):
        trend_test(y, max_lag=0)
    with pytest.raises(DiagnosticError, match="repeat"):
        trend_test(y, np.r_[np.arange(29), 3.0])
    with pytest.raises(DiagnosticError, match="1-D"):
        trend_test(np.ones((30, 2)))
    with pytest.raises(DiagnosticError, match="YYYY-MM"):
        month_index(["2000-13"])
    with pytest.raises(SettingsError, match="per"):
        per_decade(trend_test(y))  # unit "step": per decade of what?


def test_times_need_not_be_sorted():
    rng = np.random.default_rng(1)
    y = rng.normal(size=40) + 0.05 * np.arange(40)
    order = rng.permutation(40)
    shuffled = trend_test(y[order], np.arange(40.0)[order], time_unit="year")
    assert shuffled == trend_test(y, np.arange(40.0), time_unit="year")


def test_negative_autocorrelation_can_defeat_the_three_lag_correction():
    # an alternating series: rank autocorrelations near -1, +1, -1 give 1 + 2 * (-1) < 0
    rng = np.random.default_rng(11)
    y = (-1.0) ** np.arange(40) * (1 + 0.1 * rng.normal(size=40))
    result = trend_test(y)
    assert result.skipped and "Hamed-Rao" in result.skipped_reason
    assert np.isnan(result.p_value) and np.isnan(result.z) and not result.significant
    assert result.slope == stats.theilslopes(y).slope  # the slope does not need the test
    assert np.isnan(trend_map(y[:, None]).p_value[0])


# ------------------------------------------------------------------------------------------
# (e) monthly helpers on planted values


def planted_monthly():
    """Eight years (2000-2007) of monthly values with a known cycle, spread and annual means."""
    months = months_from(2000, 8)
    cycle = np.array([3.0, 5, 8, 12, 15, 18, 20, 19, 16, 11, 7, 4])
    year = np.repeat(np.arange(8), 12)
    calendar = np.tile(np.arange(12), 8)
    # +a in even years, -a in odd years: per calendar month mean 0 and std a * sqrt(8 / 7); the
    # sign also alternates from month to month, with a equal in Jan/Feb, Mar/Apr, ...: every
    # year's anomalies average to zero
    amplitude = 0.5 + 0.2 * (np.arange(12) // 2)
    sign = np.where(year % 2 == 0, 1.0, -1.0) * np.where(calendar % 2 == 0, 1.0, -1.0)
    anomaly = sign * amplitude[calendar]
    return months, cycle[calendar] + anomaly, cycle, amplitude, anomaly


def test_seasonal_cycle_gives_planted_mean_spread_and_count():
    months, values, cycle, amplitude, _ = planted_monthly()
    mean, std, count = seasonal_cycle(values, months)
    assert mean == pytest.approx(cycle, abs=1e-12)
    assert std == pytest.approx(amplitude * np.sqrt(8 / 7), abs=1e-12)
    assert (count == 8).all()
    # a month seen in one year only has a mean but no spread; a month never seen has neither
    calendar = calendar_months(months)
    values = values.copy()
    values[calendar == 2] = np.nan  # no February at all
    values[calendar == 3] = np.nan
    values[14] = 2.5  # March 2001 only
    mean, std, count = seasonal_cycle(values, months)
    assert count[2] == 1 and mean[2] == 2.5 and np.isnan(std[2])
    assert count[1] == 0 and np.isnan(mean[1]) and np.isnan(std[1])
    assert (count[3:] == 8).all() and mean[3:] == pytest.approx(cycle[3:], abs=1e-12)


def test_deseasonalize_gives_planted_anomalies():
    months, values, _, _, anomaly = planted_monthly()
    assert deseasonalize(values, months) == pytest.approx(anomaly, abs=1e-12)
    # along axis 0 of a field, with gaps: a missing value stays missing
    field = np.stack([values, 2 * values], axis=1)
    field[5, 1] = np.nan
    result = deseasonalize(field, month_index(months))
    assert np.isnan(result[5, 1]) and result[5, 0] == pytest.approx(anomaly[5])
    # June 2001 of the second series: its June mean now lacks June 2000
    assert result[17, 1] == pytest.approx(2 * anomaly[17] + 2 * anomaly[5] / 7, abs=1e-12)


def test_annual_means_use_complete_years_only():
    months, values, cycle, _, _ = planted_monthly()
    values = values + np.repeat(np.arange(8.0), 12)  # + 0, 1, ..., 7 by year
    values[30] = np.nan  # July 2002: that year is incomplete
    years, means = annual_means(values, months)
    assert years.tolist() == list(range(2000, 2008))
    expected = cycle.mean() + np.arange(8.0)
    expected[2] = np.nan
    np.testing.assert_allclose(means, expected, atol=1e-12)
    _, lenient = annual_means(values, months, min_months=11)
    assert np.isfinite(lenient).all()
    # a year that is not fully covered by the months is incomplete too
    years, means = annual_means(values[3:], months[3:])
    assert years[0] == 2000 and np.isnan(means[0])


def test_month_index_accepts_strings_dates_and_integers():
    strings = ["1999-12", "2000-01", "2000-02-15"]
    expected = [1999 * 12 + 11, 2000 * 12, 2000 * 12 + 1]
    assert month_index(strings).tolist() == expected
    dates = np.array(["1999-12", "2000-01", "2000-02"], dtype="datetime64[M]")
    assert month_index(dates).tolist() == expected
    assert calendar_months(np.arange(14)).tolist() == [*range(1, 13), 1, 2]


# ------------------------------------------------------------------------------------------
# (f) a trend map of the DIC sensitivity of the fCO2 regression


def test_trend_map_recovers_a_planted_growth_of_the_dic_sensitivity():
    # The slope of fCO2 on DIC (µatm per mmol m-3) on a 20 x 30 box lattice, 61 annual values
    # (1960-2020): it grows by 0.08 per decade in the northern half and stays put in the south.
    rng = np.random.default_rng(42)
    years = np.arange(1960, 2021)
    n_lat, n_lon = 20, 30
    growth = np.zeros((n_lat, n_lon))
    growth[10:] = 0.08  # per decade
    base = 1.5 + 0.5 * rng.random((n_lat, n_lon))
    noise = 0.15 * np.sqrt(1 - 0.3**2) * ar1((years.size, n_lat, n_lon), 0.3, rng)
    rc = base + growth * (years - 1960)[:, None, None] / 10.0 + noise
    rc = np.ma.masked_array(rc, mask=np.zeros(rc.shape, dtype=bool))
    rc[:, 0, :5] = np.ma.masked  # land
    rc[:52, 15, 7] = np.ma.masked  # nine years left: too short
    rc[::3, 5, 5] = np.ma.masked  # gaps, still long enough

    result = trend_map(rc, years.astype(float), time_unit="year")
    assert result.slope.shape == (n_lat, n_lon)
    decadal = per_decade(result)
    skipped = np.zeros((n_lat, n_lon), dtype=bool)
    skipped[0, :5] = skipped[15, 7] = True
    assert np.isnan(result.slope[skipped]).all() and np.isnan(result.p_value[skipped]).all()
    assert not result.significant[skipped].any()
    assert result.n[0, 0] == 0 and result.n[15, 7] == 9 and result.n[5, 5] == 40
    assert np.isfinite(result.slope[~skipped]).all()

    north, south = np.zeros_like(skipped), np.zeros_like(skipped)
    north[10:], south[:10] = True, True
    north &= ~skipped
    south &= ~skipped
    error = decadal.per_decade - growth
    assert np.abs(np.median(error[~skipped])) < 0.003
    assert np.abs(error[~skipped]).max() < 0.07
    assert result.significant[north].mean() >= 0.95  # 100 % here
    # Hamed-Rao is liberal for 61 values: at n = 61 the lag bound 1.96 / sqrt(61) = 0.25 lets
    # most AR(1) autocorrelations of 0.3 pass uncorrected (5,000 series: 12 % false positives,
    # uncorrected 14 %); 11.9 % here. Pre-whitening keeps the size (2.7 % here, 4.7 % on 5,000
    # series) at some cost in power (94 % of the growing boxes here).
    assert result.significant[south].mean() <= 0.20
    whitened = trend_map(rc, years.astype(float), method="prewhitening", time_unit="year")
    assert whitened.significant[south].mean() <= 0.10
    assert whitened.significant[north].mean() >= 0.85
    np.testing.assert_array_equal(whitened.slope, result.slope)
    # Sen's interval assumes independent values: with AR(1) noise of 0.3 it covers the planted
    # growth in 87 % of the boxes (nominal 95 %)
    inside = (decadal.low <= growth) & (growth <= decadal.high)
    assert inside[~skipped].mean() >= 0.75
    assert decadal.total_change[north].mean() == pytest.approx(0.08 * 6.0, abs=0.03)

    # every box is the single-series test of that box
    for box in [(12, 3), (5, 5), (3, 20), (15, 7), (0, 0)]:
        single = trend_test(rc[(slice(None), *box)], years, time_unit="year")
        for name in ("slope", "slope_low", "slope_high", "intercept", "p_value", "z", "tau"):
            np.testing.assert_equal(getattr(result, name)[box], getattr(single, name))
        assert result.significant[box] == single.significant and result.n[box] == single.n


def test_trend_map_recovers_a_gradient_of_slopes():
    rng = np.random.default_rng(9)
    n_times, n_points = 120, 400
    slope = np.linspace(-0.02, 0.02, n_points)
    values = slope * np.arange(n_times)[:, None] + 0.2 * ar1((n_times, n_points), 0.5, rng)
    clear = np.abs(slope) > 0.01  # a change of 1.2 to 2.4 against noise of sd 0.23
    for method in ("hamed_rao", "original"):
        result = trend_map(values, method=method)
        assert np.corrcoef(result.slope, slope)[0, 1] > 0.99
        assert result.significant[clear].all()
        assert (np.sign(result.z[clear]) == np.sign(slope[clear])).all()
    # Pre-whitening estimates r1 from the series with its trend: a strong trend inflates r1 and
    # the whitening removes most of the trend (Yue and Wang 2002). 12 of these 200 clear trends
    # are missed (p up to 0.23), although the slopes are the same.
    whitened = trend_map(values, method="prewhitening")
    assert 0.8 <= whitened.significant[clear].mean() < 1.0
    assert (np.sign(whitened.z[clear]) == np.sign(slope[clear])).all()


def test_short_period_reason_counts_calendar_years():
    from carbon_biomes.core.trends import short_period_reason

    assert short_period_reason(months_from(2000, 10), 10) is None
    reason = short_period_reason(months_from(2008, 2), 10)
    assert reason == ("the period 2008-01 to 2009-12 spans 2 calendar year(s), fewer than "
                      "min_years = 10")  # fmt: skip
    # Dec 2008 to Jan 2010 touches three calendar years
    assert short_period_reason(["2008-12", "2009-06", "2010-01"], 3) is None
