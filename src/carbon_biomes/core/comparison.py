"""Multi-model comparison of carbon biomes on one common label set (docs/method.md §8).

Every dataset's monthly RCs are labelled by one classifier, so that a biome number (and name)
means the same in every dataset: either the reference's classifier (``common_labels:
reference``) or one trained on biomes detected in the pooled reference-month boxes of all
datasets (``common_labels: pooled``, :func:`pool_datasets`; every dataset contributes the same
number of boxes, drawn in proportion to box area, so no dataset dominates by its box count and
none is privileged). The functions here compare the common label maps of each dataset with the
reference's on the shared box lattice and summarize the metrics over the models. Pure arrays:
no files, no iris.
"""

from __future__ import annotations

import warnings
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from carbon_biomes.core.coverage import CoverageTable, coverage
from carbon_biomes.core.coverage_statistics import DESEASONALIZED, CoverageStatistics
from carbon_biomes.core.detection import ReferenceBoxes
from carbon_biomes.core.errors import DiagnosticError
from carbon_biomes.core.matching import map_agreement, multi_model_summary
from carbon_biomes.core.regions import Region
from carbon_biomes.core.regression import box_centres, box_lattice
from carbon_biomes.core.validation import check_choice

__all__ = [
    "COMMON_LABEL_MODES",
    "MULTI_MODEL_MEAN",
    "MULTI_MODEL_SPREAD",
    "PORTRAIT_METRICS",
    "PooledSample",
    "agreement_fraction",
    "biome_centroids",
    "centroid_distances",
    "coverage_comparison",
    "lattice_centres",
    "lattice_coverage",
    "lattice_region_masks",
    "map_comparison",
    "metric_record",
    "multi_model_rows",
    "pool_datasets",
    "portrait_matrix",
    "shared_months",
]

#: Values of the ``common_labels`` setting.
COMMON_LABEL_MODES: tuple[str, ...] = ("reference", "pooled")
#: ``dataset`` of the rows that summarize the models.
MULTI_MODEL_MEAN = "MultiModelMean"
MULTI_MODEL_SPREAD = "MultiModelSpread"

#: The columns of the portrait table: (metric, region, biome, how it is reduced over biomes,
#: whether higher or lower is better, column label).
PORTRAIT_METRICS: tuple[tuple[str, str, str, str], ...] = (
    ("agreement", "", "higher", "agreement"),
    ("kappa", "", "higher", "Cohen's kappa"),
    ("adjusted_rand", "", "higher", "adjusted Rand"),
    ("jaccard", "mean", "higher", "mean Jaccard"),
    ("f1", "mean", "higher", "mean F1"),
    ("area_fraction_difference", "mean_abs", "lower", "mean |Δ area| (pp)"),
    ("seasonal_cycle_rmse", "", "lower", "seasonal RMSE (pp)"),
    ("centroid_distance", "mean", "lower", "centroid distance"),
)


def metric_record(
    region: str, biome: str, metric: str, value: float, units: str
) -> dict[str, Any]:
    """One metric record (``region, biome, metric, value, units``; biome ``""``: all)."""
    return {"region": region, "biome": biome, "metric": metric, "value": float(value),
            "units": units}  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Pooled biomes
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class PooledSample:
    """The reference-month boxes of all datasets pooled for one common detection.

    Attributes
    ----------
    boxes
        The pooled boxes (``months`` are ``"<alias> <YYYY-MM>"``, one per dataset and
        reference month); ready for :func:`~carbon_biomes.core.detection.detect_biomes`.
    aliases
        The datasets, sorted.
    dataset_of_box
        Index into ``aliases`` of every pooled box.
    per_dataset
        Boxes drawn from every dataset.
    available
        Significant reference boxes every dataset had.
    """

    boxes: ReferenceBoxes
    aliases: tuple[str, ...]
    dataset_of_box: np.ndarray
    per_dataset: int
    available: dict[str, int]


def _draw(boxes: ReferenceBoxes, n: int, seed: int, alias: str) -> np.ndarray:
    """``n`` rows of ``boxes`` drawn without replacement with probability ∝ box area."""
    total = len(boxes.features)
    if n >= total:
        return np.arange(total)
    area = np.nan_to_num(np.asarray(boxes.area, dtype=float), nan=0.0)
    if not np.all(area >= 0.0) or area.sum() <= 0.0:
        raise DiagnosticError(f"{alias}: the reference boxes have no positive ocean area")
    rng = np.random.default_rng([seed, zlib.crc32(alias.encode())])
    chosen = rng.choice(total, size=n, replace=False, p=area / area.sum())
    return np.sort(chosen)


def pool_datasets(
    boxes: Mapping[str, ReferenceBoxes], *, per_dataset: int | None = None, seed: int = 0
) -> PooledSample:
    """Pool the reference boxes of several datasets with equal weight for each dataset.

    Every dataset contributes ``per_dataset`` boxes (default: as many as the dataset with the
    fewest significant boxes has), drawn without replacement with a probability proportional
    to the box's ocean area, so that each dataset's sample represents its ocean area and no
    dataset dominates the clustering by its number of boxes. The datasets are taken in sorted
    order of their aliases and each draw is seeded by ``seed`` and the alias, so the pooled
    sample does not depend on the order in which the datasets are given.

    Parameters
    ----------
    boxes
        Alias -> the significant boxes of its reference month(s) (one box lattice).
    per_dataset
        Boxes drawn per dataset; default the smallest number available.
    seed
        Seed of the draws.

    Returns
    -------
    PooledSample

    Raises
    ------
    DiagnosticError
        With fewer than two datasets, on box lattices that differ, or a ``per_dataset`` that
        is not positive.
    """
    if len(boxes) < 2:
        raise DiagnosticError(
            f"pooled common labels need at least two datasets, got {len(boxes)}"
        )
    aliases = tuple(sorted(boxes))
    sizes = {alias: float(boxes[alias].box_size) for alias in aliases}
    if len(set(sizes.values())) > 1:
        raise DiagnosticError(
            "the datasets were regressed on different box lattices ("
            + ", ".join(f"{a}: {s:g}°" for a, s in sizes.items())
            + "); use one box_size for all datasets of a comparison"
        )
    available = {alias: len(boxes[alias].features) for alias in aliases}
    n = min(available.values()) if per_dataset is None else int(per_dataset)
    if n < 1:
        raise DiagnosticError(f"pooled_boxes_per_dataset must be positive, got {per_dataset}")
    parts = []
    months: list[str] = []
    for index, alias in enumerate(aliases):
        source = boxes[alias]
        rows = _draw(source, n, seed, alias)
        ice = (np.full(len(source.features), np.nan) if source.ice is None
               else np.asarray(source.ice, dtype=float))  # fmt: skip
        parts.append({
            "features": np.asarray(source.features, dtype=np.float64)[rows],
            "box_id": source.box_id[rows],
            "lat": source.lat[rows],
            "lon": source.lon[rows],
            "month_of_box": source.month_of_box[rows] + len(months),
            "area": source.area[rows],
            "sst": source.sst[rows],
            "ice": ice[rows],
            "dataset": np.full(rows.size, index),
        })  # fmt: skip
        months += [f"{alias} {month}" for month in source.months]

    def joined(key: str) -> np.ndarray:
        return np.concatenate([part[key] for part in parts])

    ice = joined("ice")
    pooled = ReferenceBoxes(
        months=tuple(months),
        box_size=sizes[aliases[0]],
        features=joined("features"),
        box_id=joined("box_id"),
        lat=joined("lat"),
        lon=joined("lon"),
        month_of_box=joined("month_of_box"),
        area=joined("area"),
        sst=joined("sst"),
        ice=None if np.all(np.isnan(ice)) else ice,
        n_fitted=sum(boxes[a].n_fitted for a in aliases),
    )
    return PooledSample(
        boxes=pooled,
        aliases=aliases,
        dataset_of_box=joined("dataset"),
        per_dataset=min(n, max(available.values())),
        available=available,
    )


# ---------------------------------------------------------------------------------------------
# The box lattice
# ---------------------------------------------------------------------------------------------
def lattice_centres(box_size: float) -> tuple[np.ndarray, np.ndarray]:
    """(n_lat, n_lon) latitudes and longitudes ([-180, 180)) of the box centres of a lattice."""
    n_lat, n_lon = box_lattice(box_size)
    lat, lon = box_centres(np.arange(n_lat * n_lon), box_size)
    return lat.reshape(n_lat, n_lon), lon.reshape(n_lat, n_lon)


def lattice_region_masks(
    regions: Sequence[Region], box_size: float, ocean: np.ndarray
) -> dict[str, np.ndarray]:
    """Region name -> (n_lat, n_lon) mask of the ocean boxes whose centre lies in the region.

    Raises
    ------
    DiagnosticError
        When a region holds no ocean box.
    """
    lat2, lon2 = lattice_centres(box_size)
    ocean = np.asarray(ocean, dtype=bool)
    if ocean.shape != lat2.shape:
        raise DiagnosticError(f"an ocean mask of shape {ocean.shape} for a lattice {lat2.shape}")
    masks = {}
    for region in regions:
        mask = region.contains(lat2, lon2) & ocean
        if not mask.any():
            raise DiagnosticError(
                f"region '{region.name}' ({region.description}) holds no ocean box of the "
                f"{box_size:g}° lattice"
            )
        masks[region.name] = mask
    return masks


def shared_months(months: Sequence[str], reference_months: Sequence[str]) -> tuple[str, ...]:
    """The months (``YYYY-MM``) both series have, in order."""
    known = set(reference_months)
    return tuple(month for month in months if month in known)


def lattice_coverage(
    labels: np.ma.MaskedArray,
    box_area: np.ndarray,
    masks: Mapping[str, np.ndarray],
    numbers: Iterable[int],
    months: Sequence[str],
) -> CoverageTable:
    """Coverage of each biome per region and month from labels on the box lattice.

    ``box_area`` is the (n_lat, n_lon) ocean area of every box (m2); boxes without a label
    in a month count as unclassified.
    """
    area = np.ma.filled(np.ma.asarray(box_area, dtype=float), 0.0)
    return coverage(labels, masks, area, numbers, months=months, area_source="box ocean area")


# ---------------------------------------------------------------------------------------------
# Centroids
# ---------------------------------------------------------------------------------------------
def biome_centroids(z: np.ndarray, labels: np.ndarray) -> dict[int, np.ndarray]:
    """Mean standardized RCs of every biome number present (boxes x drivers ``z``)."""
    z = np.asarray(z, dtype=float)
    labels = np.asarray(labels)
    if z.ndim != 2 or len(z) != len(labels):
        raise DiagnosticError(f"{len(labels)} labels for standardized RCs of shape {z.shape}")
    ok = np.all(np.isfinite(z), axis=1)
    return {int(k): z[ok & (labels == k)].mean(axis=0)
            for k in np.unique(labels[ok])}  # fmt: skip


def centroid_distances(
    centroids: Mapping[int, np.ndarray], common: Mapping[int, np.ndarray], names: Mapping[int, str]
) -> list[dict[str, Any]]:
    """Distance of a dataset's centroid of each common biome from the common centroid."""
    return [
        metric_record("Global", names[k], "centroid_distance",
                float(np.linalg.norm(np.asarray(centroids[k]) - np.asarray(common[k]))),
                "1")  # fmt: skip
        for k in sorted(common)
        if k in centroids and k in names
    ]


# ---------------------------------------------------------------------------------------------
# Comparison with the reference
# ---------------------------------------------------------------------------------------------
def map_comparison(
    labels: np.ma.MaskedArray,
    reference: np.ma.MaskedArray,
    area: np.ndarray,
    masks: Mapping[str, np.ndarray],
    names: Mapping[int, str],
) -> list[dict[str, Any]]:
    """Agreement of a dataset's common labels with the reference's, per region.

    Parameters
    ----------
    labels, reference
        (n_months, n_lat, n_lon) common labels of the dataset and of the reference in the same
        (shared) months, masked where unclassified.
    area
        (n_lat, n_lon) box ocean area (weights).
    masks
        Region name -> (n_lat, n_lon) region mask (:func:`lattice_region_masks`).
    names
        Common biome number -> name.

    Returns
    -------
    list of dict
        Records (``region, biome, metric, value, units``): area-weighted ``agreement`` and
        ``kappa``, ``adjusted_rand`` (biome ``""``), per-biome ``jaccard`` and ``f1``. A region
        with no box classified in both gives no records.
    """
    labels, reference = np.ma.asarray(labels), np.ma.asarray(reference)
    if labels.shape != reference.shape or labels.ndim != 3:
        raise DiagnosticError(
            f"label maps of shapes {labels.shape} and {reference.shape} cannot be compared"
        )
    weight = np.ma.filled(np.ma.asarray(area, dtype=float), 0.0)
    records: list[dict[str, Any]] = []
    for region, mask in masks.items():
        inside = np.broadcast_to(np.asarray(mask, dtype=bool) & (weight > 0), labels.shape)
        a = np.ma.masked_where(~inside, labels)
        b = np.ma.masked_where(~inside, reference)
        if not np.any(~np.ma.getmaskarray(a) & ~np.ma.getmaskarray(b)):
            continue
        with warnings.catch_warnings():
            # one biome only in a region: kappa is undefined (NaN), as scikit-learn warns
            warnings.simplefilter("ignore", UserWarning)
            result = map_agreement(a, b, np.broadcast_to(weight, labels.shape))
        records += [
            metric_record(region, "", "agreement", result.agreement, "1"),
            metric_record(region, "", "kappa", result.kappa, "1"),
            metric_record(region, "", "adjusted_rand", result.adjusted_rand, "1"),
        ]
        for metric, values in (("jaccard", result.jaccard), ("f1", result.f1)):
            records += [metric_record(region, names.get(k, str(k)), metric, v, "1")
                        for k, v in sorted(values.items())]  # fmt: skip
    return records


def agreement_fraction(
    pairs: Iterable[tuple[np.ma.MaskedArray, np.ma.MaskedArray]],
) -> tuple[np.ma.MaskedArray, np.ndarray]:
    """Fraction of the models that agree with the reference, box by box.

    A model agrees at a box when its common label equals the reference's in at least half of
    the shared months in which both classify the box.

    Parameters
    ----------
    pairs
        Per model: its (n_months, n_lat, n_lon) common labels and the reference's in the same
        months.

    Returns
    -------
    fraction, count
        (n_lat, n_lon) share of the models that agree (masked where no model and the reference
        both classify the box) and the number of models compared there.
    """
    agree: np.ndarray | None = None
    count: np.ndarray | None = None
    for labels, reference in pairs:
        labels, reference = np.ma.asarray(labels), np.ma.asarray(reference)
        if labels.shape != reference.shape or labels.ndim != 3:
            raise DiagnosticError(
                f"label maps of shapes {labels.shape} and {reference.shape} cannot be compared"
            )
        both = ~np.ma.getmaskarray(labels) & ~np.ma.getmaskarray(reference)
        same = (both & (np.ma.getdata(labels) == np.ma.getdata(reference))).sum(axis=0)
        months = both.sum(axis=0)
        if agree is None or count is None:
            agree, count = np.zeros(months.shape), np.zeros(months.shape, dtype=np.int64)
        agree = agree + ((months > 0) & (2 * same >= months))
        count = count + (months > 0)
    if agree is None or count is None:
        raise DiagnosticError("an agreement map needs at least one model")
    with np.errstate(invalid="ignore", divide="ignore"):
        fraction = np.ma.masked_where(count == 0, agree / np.maximum(count, 1))
    return fraction, count


def coverage_comparison(
    table: CoverageTable,
    statistics: CoverageStatistics,
    reference: tuple[CoverageTable, CoverageStatistics] | None,
    names: Mapping[int, str],
    *,
    alpha: float = 0.05,
) -> list[dict[str, Any]]:
    """Area fractions, seasonal cycles and trends of the common biomes, against the reference.

    Parameters
    ----------
    table, statistics
        Coverage of the dataset's common labels over the months shared with the reference,
        and its statistics (:func:`~carbon_biomes.core.coverage_statistics
        .coverage_statistics`).
    reference
        The same of the reference (same regions and biome numbers); None gives only the
        dataset's own ``area_fraction`` and ``coverage_trend``.
    names
        Common biome number -> name.
    alpha
        Level of the test of a trend difference.

    Returns
    -------
    list of dict
        Per region and biome: ``area_fraction`` (mean coverage, %), ``coverage_trend``
        (pp per decade, deseasonalized series), and with a reference
        ``area_fraction_difference`` (pp), ``seasonal_cycle_rmse`` (pp, over the twelve
        calendar months; biome ``""``: over every biome and month), ``coverage_trend_difference``
        (pp per decade) and ``coverage_trend_difference_significant`` (1 when the difference
        exceeds its ``1 - alpha`` interval from the two slopes' confidence intervals, else 0).
    """
    numbers = table.biome_numbers
    fraction = _mean_coverage(table)
    ref_fraction = ref_statistics = None
    ref_trends: dict[tuple[str, int], Any] = {}
    if reference is not None:
        ref_table, ref_statistics = reference
        if ref_table.regions != table.regions or ref_table.biome_numbers != numbers:
            raise DiagnosticError(
                "the dataset's and the reference's coverage tables differ in regions or biomes"
            )
        ref_fraction = _mean_coverage(ref_table)
        ref_trends = _deseasonalized_trends(ref_statistics)
    trends = _deseasonalized_trends(statistics)
    z_crit = _normal_quantile(1.0 - alpha / 2.0)
    records: list[dict[str, Any]] = []
    for r, region in enumerate(table.regions):
        if ref_statistics is not None:
            a = statistics.seasonal_mean[r]
            b = ref_statistics.seasonal_mean[r]
            both = np.isfinite(a) & np.isfinite(b)
            if both.any():
                records.append(metric_record(region, "", "seasonal_cycle_rmse",
                                       np.sqrt(np.mean((a[both] - b[both]) ** 2)), "%"))
        for k, number in enumerate(numbers):
            name = names.get(number, str(number))
            if np.isfinite(fraction[r, k]):
                records.append(metric_record(region, name, "area_fraction", fraction[r, k], "%"))
            trend = trends.get((region, number))
            if trend is not None and np.isfinite(trend.slope):
                records.append(metric_record(region, name, "coverage_trend", 10 * trend.slope,
                                       "% (10 year)-1"))  # fmt: skip
            if ref_statistics is None or ref_fraction is None:
                continue
            if np.isfinite(fraction[r, k]) and np.isfinite(ref_fraction[r, k]):
                records.append(metric_record(region, name, "area_fraction_difference",
                                       fraction[r, k] - ref_fraction[r, k], "%"))
            a, b = statistics.seasonal_mean[r, k], ref_statistics.seasonal_mean[r, k]
            both = np.isfinite(a) & np.isfinite(b)
            if both.sum() >= 1:
                records.append(metric_record(region, name, "seasonal_cycle_rmse",
                                       np.sqrt(np.mean((a[both] - b[both]) ** 2)), "%"))
            ref_trend = ref_trends.get((region, number))
            if trend is None or ref_trend is None:
                continue
            if not (np.isfinite(trend.slope) and np.isfinite(ref_trend.slope)):
                continue
            difference = trend.slope - ref_trend.slope
            se = np.hypot(_standard_error(trend), _standard_error(ref_trend))
            records += [
                metric_record(region, name, "coverage_trend_difference", 10 * difference,
                        "% (10 year)-1"),
                metric_record(region, name, "coverage_trend_difference_significant",
                        float(np.isfinite(se) and abs(difference) > z_crit * se), "1"),
            ]  # fmt: skip
    return records


def _mean_coverage(table: CoverageTable) -> np.ndarray:
    """(regions, biomes) mean coverage percent over the months with a classified area."""
    cover = table.coverage_percent
    valid = np.isfinite(cover)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(valid.any(axis=1), np.nansum(cover, axis=1) / valid.sum(axis=1), np.nan)


def _deseasonalized_trends(statistics: CoverageStatistics) -> dict[tuple[str, int], Any]:
    return {(t.region, t.biome): t.result for t in statistics.trends
            if t.series == DESEASONALIZED}  # fmt: skip


def _normal_quantile(p: float) -> float:
    from scipy.stats import norm

    return float(norm.ppf(p))


def _standard_error(result: Any) -> float:
    """Standard error of a Theil-Sen slope from its confidence interval (normal approximation)."""
    z = _normal_quantile(1.0 - result.alpha / 2.0)
    return float((result.slope_high - result.slope_low) / (2.0 * z))


# ---------------------------------------------------------------------------------------------
# Over the models
# ---------------------------------------------------------------------------------------------
def multi_model_rows(
    records: Mapping[str, Sequence[Mapping[str, Any]]], models: Sequence[str]
) -> dict[str, list[dict[str, Any]]]:
    """Multi-model mean and spread of every (region, biome, metric) over ``models``.

    Returns
    -------
    dict
        :data:`MULTI_MODEL_MEAN` and :data:`MULTI_MODEL_SPREAD` -> records (spread: standard
        deviation over the models that have the metric, ddof 1; NaN with one model). For a
        0/1 flag (``*_significant``) the mean is the share of the models flagged, and no spread
        is given.
    """
    keyed: dict[tuple[str, str, str], dict[str, float]] = {}
    units: dict[tuple[str, str, str], str] = {}
    for alias in models:
        for row in records.get(alias, ()):
            key = (row["region"], row["biome"], row["metric"])
            keyed.setdefault(key, {})[alias] = float(row["value"])
            units[key] = row["units"]
    mean, spread = [], []
    for key, values in keyed.items():
        m, s = multi_model_summary(values)
        mean.append(metric_record(*key, m, units[key]))
        if not key[2].endswith("_significant"):
            spread.append(metric_record(*key, s, units[key]))
    return {MULTI_MODEL_MEAN: mean, MULTI_MODEL_SPREAD: spread}


def portrait_matrix(
    records: Mapping[str, Sequence[Mapping[str, Any]]],
    datasets: Sequence[str],
    region: str = "Global",
) -> tuple[np.ndarray, list[str], list[str]]:
    """Datasets x metrics of :data:`PORTRAIT_METRICS` in one region, for the portrait plot.

    Per-biome metrics are reduced over the biomes (mean, or mean of absolute values).

    Returns
    -------
    values, labels, better
        (n_datasets, n_metrics) array (NaN where a dataset lacks a metric), column labels and
        ``"higher"``/``"lower"`` per column.
    """
    values = np.full((len(datasets), len(PORTRAIT_METRICS)), np.nan)
    for i, alias in enumerate(datasets):
        rows = [r for r in records.get(alias, ()) if r["region"] == region]
        for j, (metric, reduce, _, _) in enumerate(PORTRAIT_METRICS):
            if metric == "centroid_distance":
                rows_j = [r for r in records.get(alias, ()) if r["metric"] == metric]
            else:
                rows_j = [r for r in rows if r["metric"] == metric]
            if reduce:
                data = np.array([r["value"] for r in rows_j if r["biome"]], dtype=float)
                data = np.abs(data) if reduce == "mean_abs" else data
            else:
                data = np.array([r["value"] for r in rows_j if not r["biome"]], dtype=float)
            data = data[np.isfinite(data)]
            if data.size:
                values[i, j] = float(data.mean())
    return (values, [m[3] for m in PORTRAIT_METRICS], [m[2] for m in PORTRAIT_METRICS])


def check_common_labels(mode: str) -> str:
    """Validate the ``common_labels`` setting."""
    return check_choice("common_labels", mode, COMMON_LABEL_MODES)
