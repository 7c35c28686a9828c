"""Matching of one dataset's biomes to a common biome set, and label-map agreement metrics.

Groundwork of the multi-model comparison (docs/method.md §4): a dataset's own detection is
matched to the common biomes by a Hungarian assignment (:func:`scipy.optimize
.linear_sum_assignment`) on a cost that combines the distance of the centroids in standardized
RC space with the spatial overlap of the label maps; agreement of two label maps on the common
box lattice is measured area-weighted (scikit-learn's metrics with sample weights).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn.metrics import adjusted_rand_score, cohen_kappa_score, f1_score, jaccard_score

from carbon_biomes.core.errors import DiagnosticError
from carbon_biomes.core.validation import check_number

__all__ = [
    "BiomeMatch",
    "MapAgreement",
    "agreement_map",
    "map_agreement",
    "match_biomes",
    "multi_model_summary",
]


@dataclass(frozen=True)
class BiomeMatch:
    """Result of :func:`match_biomes`.

    Attributes
    ----------
    pairs
        Own biome number -> matched common biome number.
    novel
        Own biomes without an acceptable match.
    absent
        Common biomes that no own biome matches.
    cost
        (own, common) cost matrix used (rows and columns in ascending biome-number order).
    """

    pairs: dict[int, int]
    novel: tuple[int, ...]
    absent: tuple[int, ...]
    cost: np.ndarray


def _paired_labels(
    a: np.ma.MaskedArray, b: np.ma.MaskedArray, area: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    a, b = np.ma.asarray(a), np.ma.asarray(b)
    if a.shape != b.shape:
        raise DiagnosticError(f"label maps of shapes {a.shape} and {b.shape} cannot be compared")
    weight = np.ones(a.shape) if area is None else np.ma.filled(np.ma.asarray(area, float), 0.0)
    if weight.shape != a.shape:
        raise DiagnosticError(f"areas of shape {weight.shape} for label maps of shape {a.shape}")
    both = ~np.ma.getmaskarray(a) & ~np.ma.getmaskarray(b) & (weight > 0)
    return (np.ma.getdata(a)[both].astype(np.int64), np.ma.getdata(b)[both].astype(np.int64),
            weight[both])  # fmt: skip


def match_biomes(
    own_centroids: Mapping[int, np.ndarray],
    common_centroids: Mapping[int, np.ndarray],
    own_labels: np.ma.MaskedArray | None = None,
    common_labels: np.ma.MaskedArray | None = None,
    area: np.ndarray | None = None,
    *,
    overlap_weight: float = 0.5,
    max_cost: float = 1.5,
) -> BiomeMatch:
    """Match a dataset's biomes to the common biomes (Hungarian assignment).

    Parameters
    ----------
    own_centroids, common_centroids
        Biome number -> centroid in standardized RC space (one common standardization).
    own_labels, common_labels
        Optional label maps on one lattice (masked where unclassified), for the overlap term.
    area
        Optional box areas (weights of the overlap).
    overlap_weight
        Weight ``w`` of the overlap term: cost = (1 - w) * distance / median distance +
        w * (1 - Jaccard overlap); 0 uses centroids only.
    max_cost
        Assigned pairs of higher cost are not matches: the own biome is novel and the common
        biome absent.

    Returns
    -------
    BiomeMatch
    """
    check_number("overlap_weight", overlap_weight, 0.0, 1.0)
    own = sorted(own_centroids)
    common = sorted(common_centroids)
    if not own or not common:
        raise DiagnosticError("matching needs at least one biome on each side")
    a = np.stack([np.asarray(own_centroids[k], float) for k in own])
    b = np.stack([np.asarray(common_centroids[k], float) for k in common])
    if a.shape[1] != b.shape[1]:
        raise DiagnosticError(
            f"centroids of {a.shape[1]} and {b.shape[1]} RCs cannot be compared"
        )
    distance = np.linalg.norm(a[:, None, :] - b[None, :, :], axis=-1)
    scale = float(np.median(distance)) or 1.0
    cost = distance / scale
    if own_labels is not None and common_labels is not None and overlap_weight > 0:
        x, y, w = _paired_labels(own_labels, common_labels, area)
        inter = np.zeros((len(own), len(common)))
        own_index = np.searchsorted(own, x)
        common_index = np.searchsorted(common, y)
        valid = (own_index < len(own)) & (common_index < len(common))
        valid &= (np.asarray(own)[np.minimum(own_index, len(own) - 1)] == x)
        valid &= (np.asarray(common)[np.minimum(common_index, len(common) - 1)] == y)
        np.add.at(inter, (own_index[valid], common_index[valid]), w[valid])
        union = inter.sum(axis=1)[:, None] + inter.sum(axis=0)[None, :] - inter
        with np.errstate(invalid="ignore", divide="ignore"):
            jaccard = np.where(union > 0, inter / union, 0.0)
        cost = (1.0 - overlap_weight) * cost + overlap_weight * (1.0 - jaccard)
    rows, columns = linear_sum_assignment(cost)
    pairs = {own[i]: common[j] for i, j in zip(rows, columns, strict=True)
             if cost[i, j] <= max_cost}  # fmt: skip
    return BiomeMatch(
        pairs=pairs,
        novel=tuple(k for k in own if k not in pairs),
        absent=tuple(k for k in common if k not in set(pairs.values())),
        cost=cost,
    )


@dataclass(frozen=True)
class MapAgreement:
    """Agreement of two label maps (area-weighted where stated).

    Attributes
    ----------
    agreement
        Area fraction of the boxes classified in both maps that carry the same label.
    kappa
        Cohen's kappa, area-weighted.
    adjusted_rand
        Adjusted Rand index (unweighted; dominated by large biomes).
    jaccard, f1
        Per biome of the reference: area-weighted Jaccard index and F1 score.
    area_fraction, area_fraction_reference
        Per biome: fraction of the compared area carrying it in the map and in the reference.
    """

    agreement: float
    kappa: float
    adjusted_rand: float
    jaccard: dict[int, float]
    f1: dict[int, float]
    area_fraction: dict[int, float]
    area_fraction_reference: dict[int, float]


def map_agreement(
    labels: np.ma.MaskedArray, reference: np.ma.MaskedArray, area: np.ndarray | None = None
) -> MapAgreement:
    """Agreement of a label map with a reference map on the same lattice (same label set).

    Parameters
    ----------
    labels, reference
        Label maps of one shape, masked where unclassified; only boxes classified in both count.
    area
        Box areas (weights); default equal weights.

    Returns
    -------
    MapAgreement

    Raises
    ------
    DiagnosticError
        On shapes that differ or no box classified in both maps.
    """
    x, y, w = _paired_labels(labels, reference, area)
    if x.size == 0:
        raise DiagnosticError("no box is classified in both label maps")
    biomes = np.unique(np.concatenate([x, y]))
    reference_biomes = np.unique(y)
    total = w.sum()
    return MapAgreement(
        agreement=float(w[x == y].sum() / total),
        kappa=float(cohen_kappa_score(y, x, sample_weight=w)),
        adjusted_rand=float(adjusted_rand_score(y, x)),
        jaccard=dict(zip(reference_biomes.tolist(), jaccard_score(
            y, x, labels=reference_biomes, average=None, sample_weight=w, zero_division=0.0,
        ).tolist(), strict=True)),
        f1=dict(zip(reference_biomes.tolist(), f1_score(
            y, x, labels=reference_biomes, average=None, sample_weight=w, zero_division=0.0,
        ).tolist(), strict=True)),
        area_fraction={int(k): float(w[x == k].sum() / total) for k in biomes},
        area_fraction_reference={int(k): float(w[y == k].sum() / total) for k in biomes},
    )  # fmt: skip


def agreement_map(
    labels: Sequence[np.ma.MaskedArray], reference: np.ma.MaskedArray
) -> np.ma.MaskedArray:
    """Fraction of the datasets whose label equals the reference's, box by box.

    Parameters
    ----------
    labels
        One label map per dataset, on the reference's lattice and label set, masked where
        unclassified.
    reference
        The reference label map.

    Returns
    -------
    numpy.ma.MaskedArray
        Fraction (0-1) among the datasets that classify the box; masked where the reference or
        every dataset leaves it unclassified.
    """
    reference = np.ma.asarray(reference)
    if not labels:
        raise DiagnosticError("an agreement map needs at least one dataset")
    stack = np.ma.stack([np.ma.asarray(m) for m in labels])
    if stack.shape[1:] != reference.shape:
        raise DiagnosticError(
            f"label maps of shape {stack.shape[1:]} for a reference of shape {reference.shape}"
        )
    classified = ~np.ma.getmaskarray(stack) & ~np.ma.getmaskarray(reference)[None]
    same = classified & (np.ma.getdata(stack) == np.ma.getdata(reference)[None])
    count = classified.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        fraction = same.sum(axis=0) / count
    return np.ma.masked_where(count == 0, fraction)


def multi_model_summary(values: Mapping[str, float]) -> tuple[float, float]:
    """Multi-model mean and spread (standard deviation, ddof 1) of one metric over datasets.

    NaN values (a metric a dataset does not have) are left out; fewer than two values give a
    NaN spread.
    """
    data = np.array([v for v in values.values() if np.isfinite(v)], dtype=float)
    if data.size == 0:
        return float("nan"), float("nan")
    spread = float(np.std(data, ddof=1)) if data.size > 1 else float("nan")
    return float(data.mean()), spread
