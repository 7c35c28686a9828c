"""Biome tracking: label the significant boxes of every month with a trained classifier.

docs/method.md §3.4. The monthly RCs come from the regression stage (computed once, read back):
the classifier is trained on the reference boxes of that same product and predicts on it, so
training and prediction see RCs of one precision computed in one way. Months are consumed one
at a time from an iterator.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from carbon_biomes.core.classifier import MISSING_LABEL, BiomeClassifier, Prediction, agreement
from carbon_biomes.core.monthly_regression import MonthRegression
from carbon_biomes.core.regression import box_lattice

__all__ = ["TrackedBiomes", "predict_slopes", "reference_agreement", "track_months"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class TrackedBiomes:
    """Labels of every month on the box lattice, with confidence and OOD flags.

    Arrays are (n_months, n_lat_boxes, n_lon_boxes), masked where a box was not classified (land,
    too few cells, or slopes not significant).
    """

    dataset: str
    months: list[str]
    labels: np.ma.MaskedArray
    probability: np.ma.MaskedArray
    ood: np.ma.MaskedArray
    box_area: np.ma.MaskedArray  # ocean area per box (m2)
    names: dict[int, str]
    box_size: float

    def biome_area(self) -> np.ndarray:
        """Ocean area (m2) of every biome per month, (n_months, K) in biome-number order."""
        numbers = sorted(self.names)
        area = np.ma.filled(self.box_area, 0.0)
        labels = np.ma.filled(self.labels, MISSING_LABEL)
        return np.stack([(area * (labels == k)).sum(axis=(1, 2)) for k in numbers], axis=1)


def predict_slopes(
    slopes: np.ndarray, classifier: BiomeClassifier, rescale: bool | None = None
) -> Prediction | None:
    """The classifier's prediction for the significant boxes of one month (None when none)."""
    if len(slopes) == 0:
        return None
    return classifier.predict(slopes, rescale=rescale)


def track_months(
    regressions: Iterable[MonthRegression],
    classifier: BiomeClassifier,
    names: Mapping[int, str],
    box_size: float,
    *,
    dataset: str = "",
    n_months: int | None = None,
    rescale: bool | None = None,
    mapper: Callable[..., Iterable[Prediction | None]] | None = None,
) -> TrackedBiomes:
    """Label the significant boxes of every month with the trained network.

    Parameters
    ----------
    regressions
        The monthly box regression, month after month (an iterator is consumed once).
    classifier
        The network trained on the reference biomes.
    names
        Biome number -> name.
    box_size
        Lattice spacing in degrees.
    dataset
        Dataset identifier, used in the log lines.
    n_months
        Number of months (to preallocate; default: the iterable's length).
    rescale
        Standardize each month with its own scaler (the paper); default: the classifier's
        ``rescale_per_month`` setting.
    mapper
        ``mapper(predict_slopes, slopes_of_each_month, classifier, rescale)`` yields the
        predictions of the months in their order, computed elsewhere (e.g. on a Dask cluster,
        see :mod:`carbon_biomes.workflow.parallel`); None (default): month by month here.

    Returns
    -------
    TrackedBiomes
    """
    if n_months is None:
        regressions = list(regressions)
        n_months = len(regressions)
    n_lat, n_lon = box_lattice(box_size)
    labels = np.ma.masked_all((n_months, n_lat * n_lon), dtype=np.int16)
    probability = np.ma.masked_all((n_months, n_lat * n_lon), dtype=np.float32)
    ood = np.ma.masked_all((n_months, n_lat * n_lon), dtype=np.int8)
    box_area = np.ma.masked_all((n_months, n_lat * n_lon), dtype=np.float64)
    months: list[str] = []
    start = time.perf_counter()
    year_counts = {"boxes": 0, "ood": 0}
    predictions = None
    if mapper is not None:
        regressions, ahead = itertools.tee(regressions)
        slopes = (reg.kept.slopes for reg in ahead)
        predictions = iter(mapper(predict_slopes, slopes, classifier, rescale))
    for t, reg in enumerate(regressions):
        months.append(reg.month)
        kept = reg.kept
        prediction = None if predictions is None else next(predictions)
        if len(kept) == 0:
            logger.warning(
                "%s %s: no box passed the regression and significance filter; the month's "
                "labels are missing",
                dataset,
                reg.month,
            )
        else:
            if prediction is None:  # serial
                prediction = classifier.predict(kept.slopes, rescale=rescale)
            valid = prediction.valid
            ids = kept.box_id[valid]
            labels[t, ids] = prediction.labels[valid]
            probability[t, ids] = prediction.probability[valid]
            ood[t, ids] = prediction.ood[valid]
            box_area[t, ids] = reg.stats.area[reg.significant][valid]
            year_counts["boxes"] += int(valid.sum())
            year_counts["ood"] += int(prediction.ood[valid].sum())
        if reg.month.endswith("-12") or t == n_months - 1:
            logger.info(
                "%s: tracked %s (%d/%d months, %.0f s): %d boxes labelled this year, %.1f %% "
                "out of the training distribution",
                dataset,
                reg.month[:4],
                t + 1,
                n_months,
                time.perf_counter() - start,
                year_counts["boxes"],
                100.0 * year_counts["ood"] / max(year_counts["boxes"], 1),
            )
            year_counts = {"boxes": 0, "ood": 0}
    if len(months) != n_months:
        raise ValueError(f"{dataset}: expected {n_months} months of RCs, got {len(months)}")
    shape = (n_months, n_lat, n_lon)
    return TrackedBiomes(
        dataset=dataset,
        months=months,
        labels=labels.reshape(shape),
        probability=probability.reshape(shape),
        ood=ood.reshape(shape),
        box_area=box_area.reshape(shape),
        names=dict(names),
        box_size=float(box_size),
    )


def reference_agreement(
    tracked: TrackedBiomes,
    months: tuple[str, ...],
    box_id: np.ndarray,
    month_of_box: np.ndarray,
    labels: np.ndarray,
) -> dict[str, Any]:
    """Fraction of reference boxes whose tracked label equals the detected label, per month.

    Boxes without a tracked label are left out (:func:`~carbon_biomes.core.classifier.agreement`);
    in a reference month every detected box is tracked, since its RCs are the same numbers.
    """
    result: dict[str, Any] = {}
    for m, month in enumerate(months):
        if month not in tracked.months:
            continue
        t = tracked.months.index(month)
        members = month_of_box == m
        tracked_labels = tracked.labels[t].reshape(-1)[box_id[members]]
        result[month] = agreement(np.ma.filled(tracked_labels, MISSING_LABEL), labels[members])
    return result
