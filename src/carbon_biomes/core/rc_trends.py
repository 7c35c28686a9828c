"""Trends of the regression coefficients (RCs) over the period, per box and per biome.

docs/method.md §4 (trend maps of the RCs) and §2.3 (the RCs). The monthly RCs of the box lattice
(slopes of fCO2 on SST, DIC and alkalinity) change with the state of the carbonate system:
e.g. the sensitivity of fCO2 to DIC grows as the Revelle factor grows with rising carbon. Two
views of these changes:

* **per box and driver**: the Theil-Sen slope and the Mann-Kendall test
  (:func:`~carbon_biomes.core.trends.trend_map`, Hamed-Rao correction by default) of the box's
  monthly RC series after removing its mean seasonal cycle
  (:func:`~carbon_biomes.core.trends.deseasonalize`: every value minus the mean over the years
  of its calendar month), against time in fractional years since the first month. Without it
  the seasonal cycle would leak into the trend wherever the valid months are not spread evenly
  over the calendar (e.g. summer months missing in the first decades), and it would make the
  Hamed-Rao correction meaningless. A box is tested only if its RC is valid in at least
  ``min_coverage`` (default 0.5) of all months given, and in at least ``min_length`` months: a
  box that is fitted in a few months only gives NaN, not a trend of a handful of scattered
  months;
* **per biome and driver**: every month, the area-weighted mean RC over the boxes labelled with
  the biome (weights: the boxes' ocean area, over the boxes with a valid RC of the driver; NaN
  in a month without such a box), and the trend of this series, deseasonalized as above. The
  trend of the annual means of the deseasonalized series is given too: years with at least
  :data:`ANNUAL_MIN_MONTHS` valid months (anomalies, not raw values, so that a year lacking
  some months is not biased by the seasonal cycle), one nearly independent value per year.

The biome mean mixes two things: the RCs of the boxes that carry the biome, and which boxes
carry it. A biome that moves into boxes of other RCs changes its mean without any box
changing; the box maps separate the two.

Slopes are reported per decade (RC units per decade) with Sen's ``1 - alpha`` confidence
interval, the change of the Theil-Sen line over the span of the valid values (RC units), the
p-value and the number of valid values. The caveats of :mod:`carbon_biomes.core.trends` apply:
Hamed-Rao stays somewhat liberal for autocorrelated series, more so for short ones such as the
30-60 annual means, where a chance negative autocorrelation at the first lags shrinks the
variance of the Mann-Kendall score (the tests show a trend-free series of 30 annual means with
p = 2e-5, uncorrected p = 0.05); Sen's interval assumes independent values.

Cost: that of :func:`~carbon_biomes.core.trends.trend_map`, the pairwise slopes of every tested
box series: about 6 ms per series of 732 months (measured: 1,000 boxes x 3 drivers of 61 years
in 19 s on 2 cores), so about a minute per driver for the 10,000 ocean boxes of a 2° lattice.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from carbon_biomes.core.coverage import _biome_numbers, _codes, _months
from carbon_biomes.core.errors import DiagnosticError, SettingsError
from carbon_biomes.core.monthly_regression import DRIVER_UNITS
from carbon_biomes.core.regression import DEFAULT_DRIVER_NAMES
from carbon_biomes.core.trends import (
    METHODS,
    MIN_LENGTH,
    DecadalChange,
    Method,
    TrendMap,
    annual_means,
    deseasonalize,
    month_index,
    per_decade,
    short_period_reason,
    trend_map,
)
from carbon_biomes.core.validation import check_choice, check_int, check_number

__all__ = [
    "ALL_BOXES",
    "ANNUAL_MEAN",
    "ANNUAL_MIN_MONTHS",
    "BIOME",
    "DESEASONALIZED",
    "MONTHLY",
    "RC_TREND_COLUMNS",
    "RCTrends",
    "rc_trends",
    "rc_units",
]

logger = logging.getLogger(__name__)

#: Columns of :meth:`RCTrends.records`, in order.
RC_TREND_COLUMNS: tuple[str, ...] = ("scope", "biome", "driver", "series", "metric", "value",
                                     "units")  # fmt: skip

#: ``scope`` of the rows of a biome.
BIOME = "biome"
#: ``scope`` of the summary rows over all tested boxes.
ALL_BOXES = "all_boxes"

#: ``series`` of the raw monthly biome means (their period mean).
MONTHLY = "monthly"
#: ``series`` of the deseasonalized monthly series.
DESEASONALIZED = "deseasonalized_monthly"
#: ``series`` of the annual means of the deseasonalized series.
ANNUAL_MEAN = "annual_mean"

#: Fewest valid months of a year for its annual mean (of the deseasonalized biome series).
ANNUAL_MIN_MONTHS = 6


def rc_units(driver: str) -> str:
    """Units of the RC of a driver (slope of fCO2 in µatm on the driver).

    Parameters
    ----------
    driver
        Driver name; :data:`~carbon_biomes.core.monthly_regression.DRIVER_UNITS` names the
        units of ``sst``, ``dic`` and ``alk``.

    Returns
    -------
    str
        E.g. ``uatm m3 mmol-1`` for ``dic``; ``uatm (<driver> unit)-1`` for another driver.
    """
    return DRIVER_UNITS.get(driver, f"uatm ({driver} unit)-1")


@dataclass(frozen=True, eq=False)
class RCTrends:
    """Trends of the regression coefficients per box and per biome (docs/method.md §4).

    Slopes are per decade, in RC units per decade (:func:`rc_units`); total changes in RC
    units.

    Attributes
    ----------
    driver_names
        The drivers (axis 0 of the box arrays, last axis of the biome arrays).
    biome_numbers
        Biome numbers, ascending.
    months
        ``YYYY-MM`` of the input months, in input order.
    box_trend, box_trend_low, box_trend_high
        (drivers, n_lat_boxes, n_lon_boxes) Theil-Sen slope of the deseasonalized monthly RC
        per decade and its ``1 - alpha`` confidence bounds; NaN where the box is valid in fewer
        than ``min_coverage`` of the months or fewer than ``min_length`` months.
    box_total_change
        Change of the Theil-Sen line between the box's first and last valid month.
    box_p_value
        Two-sided Mann-Kendall p-value (NaN where not tested, or where the Hamed-Rao
        correction is not positive).
    box_significant
        ``box_p_value < alpha`` (false where not tested).
    box_n
        Number of months with a valid RC, whether tested or not.
    box_valid_fraction
        ``box_n`` / number of months.
    biome_series
        (months, biomes, drivers) area-weighted mean RC of the boxes labelled with each biome
        (NaN in a month without any).
    biome_area
        (months, biomes, drivers) ocean area (m2) of those boxes: the weights' sum.
    biome_trend
        Trend of the deseasonalized ``biome_series``: a
        :class:`~carbon_biomes.core.trends.TrendMap` of shape (biomes, drivers), slope per year
        (:meth:`decadal` gives it per decade); time counts years since the first month (the
        intercept is the value of the line there).
    biome_years
        (years,) calendar years of ``biome_annual``.
    biome_annual
        (years, biomes, drivers) annual means of the deseasonalized ``biome_series`` (anomalies
        from the seasonal cycle; NaN for a year with fewer than :data:`ANNUAL_MIN_MONTHS`
        valid months).
    biome_annual_trend
        Trend of ``biome_annual`` (TrendMap (biomes, drivers), slope per year; time in years
        since the first year).
    method, alpha, min_length, min_coverage
        The test settings.
    """

    driver_names: tuple[str, ...]
    biome_numbers: tuple[int, ...]
    months: tuple[str, ...]
    box_trend: np.ndarray
    box_trend_low: np.ndarray
    box_trend_high: np.ndarray
    box_total_change: np.ndarray
    box_p_value: np.ndarray
    box_significant: np.ndarray
    box_n: np.ndarray
    box_valid_fraction: np.ndarray
    biome_series: np.ndarray
    biome_area: np.ndarray
    biome_trend: TrendMap
    biome_years: np.ndarray
    biome_annual: np.ndarray
    biome_annual_trend: TrendMap
    method: str
    alpha: float
    min_length: int
    min_coverage: float

    def biome_index(self, number: int) -> int:
        """Index of a biome number on the biome axis."""
        try:
            return self.biome_numbers.index(int(number))
        except ValueError:
            raise KeyError(
                f"no biome {number!r} in the RC trends; biomes: {self.biome_numbers}"
            ) from None

    def driver_index(self, name: str) -> int:
        """Index of a driver on the driver axis."""
        try:
            return self.driver_names.index(name)
        except ValueError:
            raise KeyError(
                f"no driver {name!r} in the RC trends; drivers: {', '.join(self.driver_names)}"
            ) from None

    def decadal(self, series: str = DESEASONALIZED) -> DecadalChange:
        """Biome trends per decade: (biomes, drivers) slopes, bounds and total changes.

        Parameters
        ----------
        series
            :data:`DESEASONALIZED` (default) or :data:`ANNUAL_MEAN`.

        Returns
        -------
        DecadalChange
            :func:`~carbon_biomes.core.trends.per_decade` of the biome trend.
        """
        check_choice("series", series, (DESEASONALIZED, ANNUAL_MEAN))
        trend = self.biome_trend if series == DESEASONALIZED else self.biome_annual_trend
        return per_decade(trend)

    def box_summary(self) -> dict[str, np.ndarray]:
        """Summary of the box trends per driver, over the tested boxes (finite slope).

        Returns
        -------
        dict
            ``median_trend_per_decade``, ``fraction_significant_positive``,
            ``fraction_significant_negative`` (of the tested boxes; NaN without any) and
            ``n_boxes`` (tested boxes), each an array over the drivers.
        """
        flat = self.box_trend.reshape(len(self.driver_names), -1)
        significant = self.box_significant.reshape(flat.shape)
        tested = np.isfinite(flat)
        n_boxes = tested.sum(axis=1)
        with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN drivers give NaN
            median = np.nanmedian(flat, axis=1)
            positive = (significant & tested & (flat > 0)).sum(axis=1) / n_boxes
            negative = (significant & tested & (flat < 0)).sum(axis=1) / n_boxes
        return {
            "median_trend_per_decade": median,
            "fraction_significant_positive": np.where(n_boxes > 0, positive, np.nan),
            "fraction_significant_negative": np.where(n_boxes > 0, negative, np.nan),
            "n_boxes": n_boxes,
        }

    def records(self) -> list[dict[str, Any]]:
        """Long-format rows for a table: biome trends, then a summary over all boxes.

        Returns
        -------
        list of dict
            Keys :data:`RC_TREND_COLUMNS`. ``scope`` is :data:`BIOME` (``biome`` the number) or
            :data:`ALL_BOXES` (``biome`` None). Biome rows, biome-major, then driver:

            * ``series`` :data:`MONTHLY`: ``period_mean`` (mean of the monthly biome means,
              RC units) and ``n`` (months with a value);
            * ``series`` :data:`DESEASONALIZED` and :data:`ANNUAL_MEAN`: ``trend_per_decade``,
              ``trend_low``, ``trend_high`` (RC units per decade), ``total_change`` (RC
              units), ``p_value``, ``significant`` (0/1) and ``n`` (valid months or years)
              (units ``1``); NaN where the series is too short to test.

            All-boxes rows, per driver, ``series`` :data:`DESEASONALIZED`:
            ``median_trend_per_decade`` (RC units per decade), ``fraction_significant_positive``
            and ``fraction_significant_negative`` (of the tested boxes, ``1``) and ``n_boxes``.
            Values are floats.
        """
        rows: list[dict[str, Any]] = []
        changes = {name: self.decadal(name) for name in (DESEASONALIZED, ANNUAL_MEAN)}
        trends = {DESEASONALIZED: self.biome_trend, ANNUAL_MEAN: self.biome_annual_trend}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a biome never present: NaN
            period_mean = np.nanmean(self.biome_series, axis=0)
        present = np.isfinite(self.biome_series).sum(axis=0)

        def row(scope: str, biome: int | None, driver: str, series: str, metric: str,
                value: Any, units: str) -> dict[str, Any]:  # fmt: skip
            values = (scope, biome, driver, series, metric, float(value), units)
            return dict(zip(RC_TREND_COLUMNS, values, strict=True))

        for k, biome in enumerate(self.biome_numbers):
            for d, driver in enumerate(self.driver_names):
                units = rc_units(driver)
                per = f"{units} per decade"
                rows.append(row(BIOME, biome, driver, MONTHLY, "period_mean",
                                period_mean[k, d], units))  # fmt: skip
                rows.append(row(BIOME, biome, driver, MONTHLY, "n", present[k, d], "1"))
                for series, change in changes.items():
                    trend = trends[series]
                    for metric, value, unit in (
                        ("trend_per_decade", change.per_decade[k, d], per),
                        ("trend_low", change.low[k, d], per),
                        ("trend_high", change.high[k, d], per),
                        ("total_change", change.total_change[k, d], units),
                        ("p_value", trend.p_value[k, d], "1"),
                        ("significant", trend.significant[k, d], "1"),
                        ("n", trend.n[k, d], "1"),
                    ):
                        rows.append(row(BIOME, biome, driver, series, metric, value, unit))
        summary = self.box_summary()
        for d, driver in enumerate(self.driver_names):
            per = f"{rc_units(driver)} per decade"
            for metric, unit in (
                ("median_trend_per_decade", per),
                ("fraction_significant_positive", "1"),
                ("fraction_significant_negative", "1"),
                ("n_boxes", "1"),
            ):
                rows.append(row(ALL_BOXES, None, driver, DESEASONALIZED, metric,
                                summary[metric][d], unit))  # fmt: skip
        return rows

    def rows(self) -> list[tuple[Any, ...]]:
        """The :meth:`records` as tuples in the order of :data:`RC_TREND_COLUMNS` (for CSV)."""
        return [tuple(record[c] for c in RC_TREND_COLUMNS) for record in self.records()]


def rc_trends(
    slopes: np.ndarray | np.ma.MaskedArray,
    months: Sequence[str],
    labels: np.ndarray | np.ma.MaskedArray,
    box_area: np.ndarray | np.ma.MaskedArray,
    biome_numbers: Sequence[int],
    *,
    driver_names: Sequence[str] = DEFAULT_DRIVER_NAMES,
    method: Method = "hamed_rao",
    alpha: float = 0.05,
    min_length: int = MIN_LENGTH,
    min_coverage: float = 0.5,
    min_years: int = 1,
) -> RCTrends:
    """Trends of the regression coefficients of every box and of every biome's mean.

    Parameters
    ----------
    slopes
        (n_months, n_lat_boxes, n_lon_boxes, n_drivers) RCs of every month, masked (or NaN)
        where the box was not fitted or not significant.
    months
        ``YYYY-MM`` of every month (unique; gaps allowed), as many as ``slopes`` has.
    labels
        (n_months, n_lat_boxes, n_lon_boxes) tracked biome numbers, masked where unclassified
        (e.g. :attr:`~carbon_biomes.core.tracking.TrackedBiomes.labels`).
    box_area
        Ocean area of every box in m2, (n_months, n_lat_boxes, n_lon_boxes) (e.g.
        :attr:`~carbon_biomes.core.tracking.TrackedBiomes.box_area`) or (n_lat_boxes,
        n_lon_boxes); it must be finite and non-negative wherever a labelled box has a valid RC.
    biome_numbers
        The biome numbers; every unmasked label must be one of them.
    driver_names
        Names of the drivers on the last axis of ``slopes`` (default ``sst``, ``dic``,
        ``alk``), for the units and the records.
    method, alpha, min_length
        Mann-Kendall flavour, significance level (and ``1 - alpha`` interval of the slopes) and
        fewest valid values of a series to test it, as in
        :func:`~carbon_biomes.core.trends.trend_map`.
    min_coverage
        A box is tested only where its RC is valid in at least this fraction of the months
        (0 to 1, default 0.5); other boxes are NaN.
    min_years
        Fewest calendar years the period must span (default 1): a shorter period gives NaN
        trends everywhere (biome series are still computed), with a log line.

    Returns
    -------
    RCTrends
        Box trends (drivers, n_lat_boxes, n_lon_boxes) and biome series and trends.

    Raises
    ------
    DiagnosticError
        Shapes that disagree (slopes, labels, box areas, months, driver names), months that are
        not ``YYYY-MM`` or repeat, labels that are not biome numbers, a missing or negative
        area of a labelled box with a valid RC.
    SettingsError
        Bad ``biome_numbers``, ``method``, ``alpha``, ``min_length`` or ``min_coverage``.
    """
    method = check_choice("method", method, METHODS)  # type: ignore[assignment]
    alpha = check_number("alpha", alpha, 0.0, 1.0, closed_low=False, closed_high=False)
    min_coverage = check_number("min_coverage", min_coverage, 0.0, 1.0)
    numbers = _biome_numbers(biome_numbers)
    month_names = _months(months)
    if not month_names:
        raise DiagnosticError("RC trends need at least one month, got none")
    index = month_index(list(month_names))
    if np.unique(index).size != index.size:
        raise DiagnosticError("the months of the RC trends repeat a month")
    too_short = short_period_reason(index, check_int("min_years", min_years, 1))
    if too_short is not None:
        logger.info("No RC trends: %s", too_short)
        min_length = index.size + 1  # every series is too short to test: NaN, never a number
    if isinstance(driver_names, str):
        raise SettingsError(f"driver_names must be a list of names, got {driver_names!r}")
    drivers = tuple(str(name) for name in driver_names)
    if len(set(drivers)) != len(drivers):
        raise SettingsError(f"driver_names repeat a name: {drivers}")

    data = np.ma.filled(np.ma.asarray(slopes, dtype=np.float64), np.nan)
    if data.ndim != 4:
        raise DiagnosticError(
            "slopes must be (n_months, n_lat_boxes, n_lon_boxes, n_drivers), got shape "
            f"{data.shape}"
        )
    n_months, n_lat, n_lon, n_drivers = data.shape
    if n_months != len(month_names):
        raise DiagnosticError(
            f"slopes have {n_months} months on axis 0, but {len(month_names)} months were given"
        )
    if n_drivers != len(drivers):
        raise DiagnosticError(
            f"slopes have {n_drivers} drivers on the last axis, but driver_names names "
            f"{len(drivers)}: {', '.join(drivers)}"
        )
    labels = np.ma.asarray(labels)
    if labels.shape != data.shape[:3]:
        raise DiagnosticError(
            f"labels have shape {labels.shape}, the slopes (n_months, n_lat_boxes, "
            f"n_lon_boxes) {data.shape[:3]}"
        )
    area = np.ma.filled(np.ma.asarray(box_area, dtype=np.float64), np.nan)
    if area.shape not in (data.shape[:3], data.shape[1:3]):
        raise DiagnosticError(
            f"box_area has shape {area.shape}; expected {data.shape[:3]} (per month) or "
            f"{data.shape[1:3]} like the slopes"
        )

    n_boxes = n_lat * n_lon
    flat = data.reshape(n_months, n_boxes, n_drivers)
    valid = np.isfinite(flat)
    codes = _codes(labels.reshape(n_months, n_boxes), numbers)
    series, weight = _biome_means(
        flat, valid, codes, np.broadcast_to(area, data.shape[:3]).reshape(n_months, n_boxes),
        numbers.size, month_names,
    )  # fmt: skip

    # biome trends: deseasonalized monthly series, and its annual means
    options: dict[str, Any] = {"method": method, "alpha": alpha, "min_length": min_length}
    anomalies = deseasonalize(series, index)
    # time in fractional years since the first month: with t of two thousand years, the
    # residuals y - slope * t of the Hamed-Rao correction lose about 12 bits, enough for the
    # last-bit differences of the anomalies to change their ranks (and p at the 1e-6 level)
    years_since = (index - index.min()) / 12.0
    biome_trend = trend_map(anomalies, years_since, time_unit="year", **options)
    years, annual = annual_means(anomalies, index, min_months=ANNUAL_MIN_MONTHS)
    biome_annual_trend = trend_map(
        annual, (years - years.min()).astype(float), time_unit="year", **options
    )

    # box trends, driver by driver, of the boxes valid often enough
    n_valid = valid.sum(axis=0)  # (boxes, drivers)
    fraction = n_valid / n_months
    boxes = {
        name: np.full((n_drivers, n_boxes), np.nan)
        for name in ("trend", "low", "high", "total_change", "p_value")
    }
    significant = np.zeros((n_drivers, n_boxes), dtype=bool)
    for d in range(n_drivers):
        tested = np.flatnonzero(fraction[:, d] >= min_coverage)
        if tested.size == 0:
            continue
        result = trend_map(
            deseasonalize(flat[:, tested, d], index), years_since, time_unit="year", **options
        )
        change = per_decade(result)
        boxes["trend"][d, tested] = change.per_decade
        boxes["low"][d, tested] = change.low
        boxes["high"][d, tested] = change.high
        boxes["total_change"][d, tested] = change.total_change
        boxes["p_value"][d, tested] = result.p_value
        significant[d, tested] = result.significant
    n_sparse = int(np.count_nonzero((n_valid > 0) & (fraction < min_coverage)))
    if n_sparse:
        logger.info(
            "RC trends: %d box-driver series with a valid RC in fewer than %.0f %% of the %d "
            "months are not tested (NaN)",
            n_sparse, 100.0 * min_coverage, n_months,
        )  # fmt: skip

    shape = (n_drivers, n_lat, n_lon)
    return RCTrends(
        driver_names=drivers,
        biome_numbers=tuple(int(k) for k in numbers),
        months=month_names,
        box_trend=boxes["trend"].reshape(shape),
        box_trend_low=boxes["low"].reshape(shape),
        box_trend_high=boxes["high"].reshape(shape),
        box_total_change=boxes["total_change"].reshape(shape),
        box_p_value=boxes["p_value"].reshape(shape),
        box_significant=significant.reshape(shape),
        box_n=n_valid.T.reshape(shape),
        box_valid_fraction=fraction.T.reshape(shape),
        biome_series=series,
        biome_area=weight,
        biome_trend=biome_trend,
        biome_years=np.asarray(years, dtype=np.int64),
        biome_annual=annual,
        biome_annual_trend=biome_annual_trend,
        method=method,
        alpha=alpha,
        min_length=biome_trend.min_length,
        min_coverage=min_coverage,
    )


def _biome_means(
    slopes: np.ndarray,
    valid: np.ndarray,
    codes: np.ndarray,
    area: np.ndarray,
    n_biomes: int,
    months: tuple[str, ...],
) -> tuple[np.ndarray, np.ndarray]:
    """Area-weighted mean RC of every month, biome and driver, and the weights' sum.

    ``slopes`` and ``valid`` are (months, boxes, drivers), ``codes`` and ``area`` (months,
    boxes); code ``n_biomes`` is unclassified.
    """
    n_months, n_boxes, n_drivers = slopes.shape
    used = (codes < n_biomes)[..., None] & valid
    bad = used.any(axis=2) & ~(np.isfinite(area) & (area >= 0.0))
    if bad.any():
        first = int(np.flatnonzero(bad.any(axis=1))[0])
        raise DiagnosticError(
            f"box_area is missing, not finite or negative at {int(bad.sum())} labelled "
            f"box-month(s) with a valid RC (first in {months[first]})"
        )
    size = n_months * (n_biomes + 1)
    flat_codes = (codes + (np.arange(n_months) * (n_biomes + 1))[:, None]).reshape(-1)
    mean = np.full((n_months, n_biomes, n_drivers), np.nan)
    weight = np.zeros((n_months, n_biomes, n_drivers))
    for d in range(n_drivers):
        w = np.where(used[..., d], area, 0.0)
        wx = w * np.where(used[..., d], slopes[..., d], 0.0)
        total = np.bincount(flat_codes, weights=w.reshape(-1), minlength=size)
        moment = np.bincount(flat_codes, weights=wx.reshape(-1), minlength=size)
        total = total.reshape(n_months, n_biomes + 1)[:, :n_biomes]
        moment = moment.reshape(n_months, n_biomes + 1)[:, :n_biomes]
        weight[..., d] = total
        with np.errstate(invalid="ignore", divide="ignore"):
            mean[..., d] = np.where(total > 0.0, moment / total, np.nan)
    return mean, weight
