"""Hierarchical clustering of box regression coefficients and the adaptive dendrogram cut.

Detection steps 4-7 of docs/method.md §2:

1. :func:`standardize` - z-score each RC column across the kept boxes (sample std, ddof=1);
2. :func:`ward_linkage` - Ward agglomerative clustering (Euclidean), scipy linkage format;
3. :func:`adaptive_cut` - the paper's top-down adaptive cut (docs/method.md §2.6), O(n log n) after
   the linkage, with node statistics from prefix sums (no member lists, no quadratic search);
4. :func:`threshold_scan` and :func:`select_thresholds` - score every (Δdist, Δvar) pair with
   sound criteria (silhouette, Calinski-Harabasz, Gaussian-mixture BIC, bootstrap stability) and
   the paper's score for comparison, then choose a pair with a documented rule.

Biome numbering
---------------
Biomes are numbered 1..K from left to right in dendrogram leaf order, i.e. the order of
:func:`scipy.cluster.hierarchy.leaves_list` and of :func:`scipy.cluster.hierarchy.dendrogram`
with its default options (the first child ``linkage[i, 0]`` of every merge is drawn on the left).
Each biome is a subtree, whose leaves form a contiguous run in that order; biome 1 holds the
leftmost leaf. The numbering therefore depends only on the linkage matrix and the cut, not on
traversal order, and a dendrogram figure drawn by scipy shows the biomes as 1, 2, ..., K from
left to right (:class:`AdaptiveCut` gives the node id of every biome for marking them).

The Ward-height scale and the default grid
------------------------------------------
Ward merge heights grow like the square root of the number of boxes (a node's height is
``sqrt(2 * increase of within-cluster sum of squares)``). The paper's absolute Δdist values
(20-30, tuned on one 2009 month of a 0.25° model) therefore mean different cuts at different
numbers of boxes: on realistic synthetic RCs the root height is about 50, 108 and 151 for
1,000, 5,000 and 10,000 boxes, and the paper's (25, 0.1) gives 3, 5 and 6-7 biomes. Δvar is
scale-free (standardized features). ``dist_scale="root"`` expresses Δdist as a fraction of the
root height instead, which is invariant to the sample size for the same RC distribution; it is
the default of :func:`threshold_scan`, with :data:`DEFAULT_DELTA_DISTS_ROOT` x
:data:`DEFAULT_DELTA_VARS` (40 pairs, 2-30 biomes at every N tested). The paper grid stays
available (``dist_scale="absolute"``, :data:`PAPER_DELTA_DISTS`, :data:`PAPER_DELTA_VARS`, rule
``"faithful"``). :func:`adaptive_cut` itself defaults to absolute heights, as in
docs/method.md §2.6.
Details in ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.cluster.hierarchy import is_valid_linkage, leaves_list
from scipy.special import logsumexp

__all__ = [
    "DEFAULT_DELTA_DISTS_ROOT",
    "DEFAULT_DELTA_VARS",
    "PAPER_DELTA_DISTS",
    "PAPER_DELTA_VARS",
    "PAPER_THRESHOLDS",
    "AdaptiveCut",
    "adaptive_cut",
    "adaptive_cut_nodes",
    "bootstrap_stability",
    "calinski_harabasz",
    "gmm_bic",
    "merge_small_biomes",
    "paper_score",
    "select_thresholds",
    "silhouette",
    "standardize",
    "threshold_scan",
    "ward_linkage",
]

logger = logging.getLogger(__name__)

Spread = Literal["pooled_variance", "wcss"]
DistScale = Literal["absolute", "root"]
Rule = Literal["silhouette", "calinski_harabasz", "gmm_bic", "stability", "faithful"]

PAPER_DELTA_DISTS: tuple[float, ...] = (20.0, 25.0, 28.0, 30.0)
"""Paper's scan of the height threshold Δdist (absolute Ward heights)."""

PAPER_DELTA_VARS: tuple[float, ...] = (0.1, 0.5, 0.8, 1.0)
"""Paper's scan of the spread threshold Δvar (standardized units squared)."""

PAPER_THRESHOLDS: tuple[float, float] = (25.0, 0.1)
"""The paper's chosen (Δdist, Δvar), absolute heights, for January 2009 (7 biomes)."""

DEFAULT_DELTA_DISTS_ROOT: tuple[float, ...] = (0.05, 0.075, 0.1, 0.125, 0.15, 0.2, 0.25, 0.3)
"""Default Δdist grid as fractions of the root height (``dist_scale="root"``)."""

DEFAULT_DELTA_VARS: tuple[float, ...] = (0.05, 0.1, 0.2, 0.3, 0.5)
"""Default Δvar grid used with :data:`DEFAULT_DELTA_DISTS_ROOT`."""


# ---------------------------------------------------------------------------------------------
# Standardization and linkage
# ---------------------------------------------------------------------------------------------
def standardize(
    rcs: ArrayLike,
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Z-score every column (sample standard deviation, ddof=1).

    Parameters
    ----------
    rcs : array_like, shape (n_boxes, n_features)
        Regression coefficients, one row per box. A 1-D array is one feature.

    Returns
    -------
    z : ndarray, shape (n_boxes, n_features)
        ``(rcs - mean) / std``.
    mean, std : ndarray, shape (n_features,)
        Column means and sample standard deviations, to apply the same scaling elsewhere.

    Raises
    ------
    ValueError
        If there are fewer than 2 rows, values are not finite, or a column is constant.
    """
    x = np.asarray(rcs, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2:
        raise ValueError(f"rcs must be a 2-D array (boxes x features), got shape {x.shape}")
    if x.shape[0] < 2:
        raise ValueError(f"at least 2 rows are needed to standardize, got {x.shape[0]}")
    if not np.all(np.isfinite(x)):
        raise ValueError("rcs contains NaN or infinite values")
    mean = x.mean(axis=0)
    std = x.std(axis=0, ddof=1)
    const = std <= 1e-12 * np.maximum(np.abs(mean), np.finfo(float).tiny)
    if np.any(const):
        raise ValueError(
            f"column(s) {np.flatnonzero(const).tolist()} of rcs are constant: cannot standardize"
        )
    return (x - mean) / std, mean, std


def ward_linkage(z: ArrayLike) -> NDArray[np.float64]:
    """Ward agglomerative clustering (Euclidean) in scipy's linkage-matrix format.

    Uses :func:`fastcluster.linkage_vector` (memory O(n)); its heights equal those of
    ``scipy.cluster.hierarchy.linkage(z, method="ward")``: a merge of clusters a and b has
    height ``sqrt(2 n_a n_b / (n_a + n_b)) * ||c_a - c_b||``.

    Parameters
    ----------
    z : array_like, shape (n, n_features)
        Standardized features, n >= 2, all finite.

    Returns
    -------
    ndarray of float64, shape (n - 1, 4)
        Linkage matrix: merged node ids, height, size of the new node; node ``n + i`` is
        created by row ``i``.

    Raises
    ------
    ValueError
        If ``z`` is not 2-D with at least 2 rows or contains non-finite values.
    """
    import fastcluster

    x = np.ascontiguousarray(z, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f"z must be 2-D with at least 2 rows, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError("z contains NaN or infinite values")
    return np.asarray(fastcluster.linkage_vector(x, method="ward"), dtype=np.float64)


# ---------------------------------------------------------------------------------------------
# Node statistics and the adaptive cut
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class _Tree:
    """Per-node arrays of a dendrogram; node ids 0..n-1 are leaves, n+i is row i."""

    n: int
    parent: NDArray[np.int64]  # root points to itself
    height: NDArray[np.float64]  # 0 for leaves
    count: NDArray[np.int64]
    start: NDArray[np.int64]  # position of the first member in leaf order
    order: NDArray[np.int64]  # leaves_list
    spread: NDArray[np.float64]  # per node; leaves 0

    @property
    def root(self) -> int:
        return 2 * self.n - 2


def _check_linkage(linkage: ArrayLike) -> NDArray[np.float64]:
    """A scipy linkage matrix, checked so that a malformed one fails with a clear ValueError."""
    try:
        z = np.asarray(linkage, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"linkage must be a numeric (n - 1, 4) array: {exc}") from None
    if z.ndim != 2 or z.shape[1] != 4 or z.shape[0] < 1:
        raise ValueError(f"linkage must have shape (n - 1, 4) with n >= 2, got {z.shape}")
    if not np.all(np.isfinite(z)):
        raise ValueError("linkage contains NaN or infinite values")
    n = z.shape[0] + 1
    children, counts = z[:, :2], z[:, 3]
    if np.any(children != np.round(children)) or np.any(counts != np.round(counts)):
        raise ValueError(
            "linkage: cluster ids (columns 0, 1) and sizes (column 3) must be integers"
        )
    rows = np.arange(n - 1)
    if np.any(children < 0) or np.any(children >= (n + rows)[:, None]):
        raise ValueError(
            "linkage: row i may only merge leaves (0..n-1) and clusters made by rows before it "
            "(n..n+i-1)"
        )
    if np.any(z[:, 2] < 0):
        raise ValueError("linkage: merge distances (column 2) must not be negative")
    if not is_valid_linkage(z):
        raise ValueError("linkage is not a valid scipy linkage matrix (a cluster is merged twice)")
    ids = children.astype(np.int64)
    size = np.concatenate([np.ones(n), counts])
    if not np.array_equal(counts, size[ids[:, 0]] + size[ids[:, 1]]):
        raise ValueError("linkage: cluster sizes (column 3) are not the sums of the merged sizes")
    return z


def _check_features(features: ArrayLike, n: int) -> NDArray[np.float64]:
    x = np.asarray(features, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2 or x.shape[0] != n:
        raise ValueError(
            f"features must have shape ({n}, n_features) to match the linkage, got {x.shape}"
        )
    if not np.all(np.isfinite(x)):
        raise ValueError("features contain NaN or infinite values")
    return x


def _build_tree(linkage: ArrayLike, features: ArrayLike, spread: Spread) -> _Tree:
    """Compute parent, height, count, leaf-order start and spread of every node in O(n log n).

    Members of a node are a contiguous run of the leaf order, starting at the leftmost leaf
    (found by pointer jumping along first children), so a node's sums are differences of
    prefix sums over the features sorted in leaf order.
    """
    if spread not in ("pooled_variance", "wcss"):
        raise ValueError(f"spread must be 'pooled_variance' or 'wcss', got {spread!r}")
    z = _check_linkage(linkage)
    n = z.shape[0] + 1
    x = _check_features(features, n)
    d = x.shape[1]
    n_nodes = 2 * n - 1
    children = z[:, :2].astype(np.int64)

    parent = np.empty(n_nodes, dtype=np.int64)
    parent[children[:, 0]] = np.arange(n, n_nodes)
    parent[children[:, 1]] = np.arange(n, n_nodes)
    parent[n_nodes - 1] = n_nodes - 1
    height = np.concatenate([np.zeros(n), z[:, 2]])
    count = np.concatenate([np.ones(n, dtype=np.int64), z[:, 3].astype(np.int64)])

    # leftmost leaf of every node: follow first children, by pointer doubling
    leftmost = np.arange(n_nodes, dtype=np.int64)
    leftmost[n:] = children[:, 0]
    while True:
        nxt = leftmost[leftmost]
        if np.array_equal(nxt, leftmost):
            break
        leftmost = nxt
    order = leaves_list(z).astype(np.int64)
    pos = np.empty(n, dtype=np.int64)
    pos[order] = np.arange(n)
    start = pos[leftmost]

    xo = x[order]
    csum = np.zeros((n + 1, d))
    np.cumsum(xo, axis=0, out=csum[1:])
    csq = np.zeros(n + 1)
    np.cumsum(np.einsum("ij,ij->i", xo, xo), out=csq[1:])
    end = start + count
    s = csum[end] - csum[start]  # (nodes, d) sums per feature
    q = csq[end] - csq[start]  # sum of squares over all features
    c = count.astype(np.float64)
    if spread == "pooled_variance":
        m = s.sum(axis=1) / (c * d)
        v = q / (c * d) - m * m
    else:
        v = q / c - np.einsum("ij,ij->i", s, s) / (c * c)
    v = np.maximum(v, 0.0)
    v[:n] = 0.0
    return _Tree(n=n, parent=parent, height=height, count=count, start=start, order=order, spread=v)


@dataclass(frozen=True, eq=False)
class AdaptiveCut:
    """Result of the adaptive dendrogram cut.

    Attributes
    ----------
    labels : ndarray of int64, shape (n,)
        Biome of every box, 1..K, numbered in dendrogram leaf order (see module docstring).
    nodes : ndarray of int64, shape (K,)
        Node id of biome k at index k-1: a leaf id (< n) for a single-box biome, otherwise
        ``n + i`` for the node made by linkage row ``i``.
    sizes : ndarray of int64, shape (K,)
        Number of boxes per biome.
    split_nodes : ndarray of int64
        Ids of the internal nodes that were split (the root first), ascending after the root.
    delta_dist, delta_var : float
        The thresholds used; ``delta_dist`` in absolute height units (already multiplied by the
        root height when ``dist_scale="root"``).
    spread : str
        The spread measure used.
    """

    labels: NDArray[np.int64]
    nodes: NDArray[np.int64]
    sizes: NDArray[np.int64]
    split_nodes: NDArray[np.int64]
    delta_dist: float
    delta_var: float
    spread: str

    @property
    def n_biomes(self) -> int:
        """Number of biomes K."""
        return int(self.nodes.size)


def _effective_delta_dist(tree: _Tree, delta_dist: float, dist_scale: DistScale) -> float:
    if dist_scale == "absolute":
        return float(delta_dist)
    if dist_scale == "root":
        return float(delta_dist) * float(tree.height[tree.root])
    raise ValueError(f"dist_scale must be 'absolute' or 'root', got {dist_scale!r}")


def _cut_tree(tree: _Tree, delta_dist: float, delta_var: float, spread: str) -> AdaptiveCut:
    """Apply the per-node tests and return the partition (vectorized, O(n log n))."""
    for name, value in (("delta_dist", delta_dist), ("delta_var", delta_var)):
        if not np.isfinite(value) or value < 0:
            raise ValueError(f"{name} must be a finite, non-negative number, got {value!r}")
    n, root = tree.n, tree.root
    par = tree.parent
    internal = np.zeros(2 * n - 1, dtype=bool)
    internal[n:] = True
    # test of every node against its parent; the root is always split
    passes = (
        internal
        & (np.abs(tree.height[par] - tree.height) > delta_dist)
        & (np.abs(tree.spread[par] - tree.spread) > delta_var)
    )
    passes[root] = True
    # split = AND of `passes` over the node and all its ancestors (pointer doubling)
    split = passes.copy()
    anc = par.copy()
    while True:
        split &= split[anc]
        nxt = anc[anc]
        if np.array_equal(nxt, anc):
            break
        anc = nxt
    is_biome = split[par] & ~split
    is_biome[root] = False
    biome_nodes = np.flatnonzero(is_biome)
    biome_nodes = biome_nodes[np.argsort(tree.start[biome_nodes], kind="stable")]
    sizes = tree.count[biome_nodes]
    labels_in_order = np.repeat(np.arange(1, biome_nodes.size + 1, dtype=np.int64), sizes)
    labels = np.empty(n, dtype=np.int64)
    labels[tree.order] = labels_in_order
    split_ids = np.flatnonzero(split)
    split_ids = np.concatenate([[root], split_ids[split_ids != root]]).astype(np.int64)
    return AdaptiveCut(
        labels=labels,
        nodes=biome_nodes.astype(np.int64),
        sizes=sizes.astype(np.int64),
        split_nodes=split_ids,
        delta_dist=float(delta_dist),
        delta_var=float(delta_var),
        spread=spread,
    )


def adaptive_cut_nodes(
    linkage: ArrayLike,
    features: ArrayLike,
    delta_dist: float,
    delta_var: float,
    spread: Spread = "pooled_variance",
    *,
    dist_scale: DistScale = "absolute",
) -> AdaptiveCut:
    """Adaptive top-down dendrogram cut (docs/method.md §2.6), with the cut nodes.

    Every internal node has a height h (its linkage distance) and a spread v. Starting at the
    root, which is always split, a child of a split node is split in turn when it is an
    internal node and both ``|h(node) - h(child)| > delta_dist`` and
    ``|v(node) - v(child)| > delta_var``; otherwise the child (its whole subtree, or a single
    box) is one biome. The partition depends only on these per-node tests.

    Parameters
    ----------
    linkage : array_like, shape (n - 1, 4)
        Linkage matrix of ``features`` (e.g. from :func:`ward_linkage`).
    features : array_like, shape (n, n_features)
        The standardized RCs that were clustered.
    delta_dist : float
        Height threshold Δdist (paper: 25 with ``dist_scale="absolute"``).
    delta_var : float
        Spread threshold Δvar (paper: 0.1).
    spread : {"pooled_variance", "wcss"}, default "pooled_variance"
        ``"pooled_variance"`` (paper): population variance of all members' standardized RCs
        pooled into one array (members x n_features values). ``"wcss"``: mean squared
        Euclidean distance of the members to their centroid (within-cluster sum of squares per
        member; consistent with Ward's criterion and not mixing the RC columns).
    dist_scale : {"absolute", "root"}, default "absolute"
        ``"absolute"``: ``delta_dist`` in linkage-height units, as in the paper. ``"root"``:
        ``delta_dist`` is a fraction of the root height (invariant to the number of boxes).

    Returns
    -------
    AdaptiveCut
        Labels 1..K in dendrogram leaf order, the node id and size of every biome and the
        split nodes.

    Raises
    ------
    ValueError
        If the linkage is invalid, features do not match it or an option is unknown.

    Notes
    -----
    Cost after the linkage is O(n log n) with vectorized numpy: node sums (count, per-feature
    sum, sum of squares) are differences of prefix sums over the leaf order, and the
    "all ancestors split" condition is evaluated by pointer doubling.
    """
    _check_thresholds(delta_dist, delta_var)
    tree = _build_tree(linkage, features, spread)
    dd = _effective_delta_dist(tree, delta_dist, dist_scale)
    return _cut_tree(tree, dd, float(delta_var), spread)


def _check_thresholds(delta_dist: Any, delta_var: Any) -> None:
    """Refuse a threshold that is not a finite, non-negative number (ValueError naming it)."""
    for name, value in (("delta_dist", delta_dist), ("delta_var", delta_var)):
        _check_threshold(name, value)


def _check_threshold(name: str, value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not np.isfinite(number) or number < 0:
        raise ValueError(f"{name} must be a finite, non-negative number, got {value!r}")
    return number


def adaptive_cut(
    linkage: ArrayLike,
    features: ArrayLike,
    delta_dist: float,
    delta_var: float,
    spread: Spread = "pooled_variance",
    *,
    dist_scale: DistScale = "absolute",
) -> NDArray[np.int64]:
    """Adaptive top-down dendrogram cut (docs/method.md §2.6); return the biome labels.

    See :func:`adaptive_cut_nodes` for the rule and the parameters (identical).

    Parameters
    ----------
    linkage, features, delta_dist, delta_var, spread, dist_scale
        As for :func:`adaptive_cut_nodes`.

    Returns
    -------
    ndarray of int64, shape (n,)
        Biome labels 1..K, numbered from left to right in dendrogram leaf order
        (:func:`scipy.cluster.hierarchy.leaves_list`).
    """
    return adaptive_cut_nodes(
        linkage, features, delta_dist, delta_var, spread, dist_scale=dist_scale
    ).labels


def merge_small_biomes(
    cut: AdaptiveCut, features: ArrayLike, min_size: int
) -> tuple[AdaptiveCut, dict[int, int]]:
    """Merge biomes with fewer than ``min_size`` boxes into the biome with the nearest centroid.

    The adaptive cut turns every unsplit child of a split node into a biome, so an outlying box
    that joins the tree near the root becomes a one-box biome. Such biomes carry no regime and
    cannot be learnt by the tracking network; this step (not in the paper: ``min_size=1``
    disables it) gives their boxes to the biome whose centroid, in the clustered feature space,
    is nearest to the small biome's centroid. The surviving biomes keep their relative order
    and are renumbered 1..K'.

    Parameters
    ----------
    cut : AdaptiveCut
        A cut from :func:`adaptive_cut_nodes`.
    features : array_like, shape (n, n_features)
        The features that were clustered.
    min_size : int
        Smallest biome kept as it is.

    Returns
    -------
    AdaptiveCut
        The merged partition (``nodes`` and ``sizes`` of the surviving biomes; a surviving
        biome's node no longer holds all its boxes when others were merged into it).
    dict
        Old number of every merged biome -> new number of the biome it joined.

    Raises
    ------
    ValueError
        If ``min_size`` < 1 or no biome has ``min_size`` boxes.
    """
    if min_size < 1:
        raise ValueError(f"min_size must be at least 1, got {min_size}")
    x = np.asarray(features, dtype=np.float64)
    x = x[:, None] if x.ndim == 1 else x
    k = cut.n_biomes
    sizes = np.bincount(cut.labels, minlength=k + 1)[1:]
    small = sizes < min_size
    if not small.any():
        return cut, {}
    if small.all():
        raise ValueError(
            f"every biome has fewer than {min_size} boxes (sizes {sizes.tolist()}): nothing to "
            "merge into; lower min_biome_size or the thresholds"
        )
    sums = np.zeros((k + 1, x.shape[1]))
    np.add.at(sums, cut.labels, x)
    centroids = sums[1:] / sizes[:, None]
    large = np.flatnonzero(~small)
    new_number = np.zeros(k + 1, dtype=np.int64)
    new_number[large + 1] = np.arange(1, large.size + 1)
    merged: dict[int, int] = {}
    for old in np.flatnonzero(small):
        distance = np.linalg.norm(centroids[large] - centroids[old], axis=1)
        target = large[int(np.argmin(distance))]
        new_number[old + 1] = new_number[target + 1]
        merged[int(old + 1)] = int(new_number[target + 1])
    labels = new_number[cut.labels]
    new_cut = AdaptiveCut(
        labels=labels,
        nodes=cut.nodes[large],
        sizes=np.bincount(labels, minlength=large.size + 1)[1:].astype(np.int64),
        split_nodes=cut.split_nodes,
        delta_dist=cut.delta_dist,
        delta_var=cut.delta_var,
        spread=cut.spread,
    )
    return new_cut, merged


# ---------------------------------------------------------------------------------------------
# Scores
# ---------------------------------------------------------------------------------------------
def _check_labels(labels: ArrayLike, n: int | None = None) -> NDArray[np.int64]:
    lab = np.asarray(labels)
    if lab.ndim != 1 or lab.size == 0:
        raise ValueError("labels must be a non-empty 1-D array")
    if n is not None and lab.size != n:
        raise ValueError(f"labels has {lab.size} entries, features have {n} rows")
    return lab


def paper_score(labels: ArrayLike, d: int = 3) -> float:
    """Return the paper's "BIC" of a partition: ``-2 * sum_k log(n_k / N) + d * log(N)``.

    Report only, it cannot select K: the score has no goodness-of-fit term (it depends on the
    cluster sizes only, not on the data) and its penalty ``d log N`` does not depend on K.
    Every cluster adds ``-2 log(n_k / N) > 0``, so the score is smallest (best, as for a BIC)
    for a single cluster, and for a given K it prefers the most unequal sizes; K clusters of
    equal size score ``2 K log K + d log N``. Use :func:`gmm_bic`, :func:`silhouette`,
    :func:`calinski_harabasz` or :func:`bootstrap_stability` to choose thresholds.

    Parameters
    ----------
    labels : array_like, shape (N,)
        Cluster labels.
    d : int, default 3
        The paper's "number of parameters" (the number of RCs).

    Returns
    -------
    float
        The score.
    """
    lab = _check_labels(labels)
    _, counts = np.unique(lab, return_counts=True)
    n_total = lab.size
    return float(-2.0 * np.sum(np.log(counts / n_total)) + d * math.log(n_total))


def silhouette(
    features: ArrayLike, labels: ArrayLike, *, max_samples: int = 5000, seed: int = 0
) -> float:
    """Return the mean silhouette coefficient (:func:`sklearn.metrics.silhouette_score`).

    Higher is better (range -1..1). When there are more than ``max_samples`` rows, it is
    estimated on a seeded random subsample of ``max_samples`` rows (the exact value costs
    O(N²)).

    Parameters
    ----------
    features : array_like, shape (N, n_features)
        The clustered (standardized) features.
    labels : array_like, shape (N,)
        Cluster labels.
    max_samples : int, default 5000
        Subsample size above which the score is estimated.
    seed : int, default 0
        Seed of the subsample.

    Returns
    -------
    float
        The silhouette, or NaN when there are fewer than 2 clusters or every row is its own
        cluster (undefined).
    """
    from sklearn.metrics import silhouette_score

    x = np.asarray(features, dtype=np.float64)
    x = x[:, None] if x.ndim == 1 else x
    lab = _check_labels(labels, x.shape[0])
    k = np.unique(lab).size
    if k < 2 or k >= lab.size:
        return float("nan")
    sample_size = max_samples if lab.size > max_samples else None
    try:
        return float(silhouette_score(x, lab, sample_size=sample_size, random_state=seed))
    except ValueError:  # the subsample may hold a single cluster
        return float("nan")


def calinski_harabasz(features: ArrayLike, labels: ArrayLike) -> float:
    """Return the Calinski-Harabasz index (:func:`sklearn.metrics.calinski_harabasz_score`).

    Higher is better.

    Parameters
    ----------
    features : array_like, shape (N, n_features)
        The clustered (standardized) features.
    labels : array_like, shape (N,)
        Cluster labels.

    Returns
    -------
    float
        The index, or NaN when there are fewer than 2 clusters or every row is its own cluster.
    """
    from sklearn.metrics import calinski_harabasz_score

    x = np.asarray(features, dtype=np.float64)
    x = x[:, None] if x.ndim == 1 else x
    lab = _check_labels(labels, x.shape[0])
    k = np.unique(lab).size
    if k < 2 or k >= lab.size:
        return float("nan")
    return float(calinski_harabasz_score(x, lab))


def gmm_bic(features: ArrayLike, labels: ArrayLike, *, reg_covar: float = 1e-6) -> float:
    """Return the Bayesian information criterion of the partition as a Gaussian mixture.

    Every cluster k becomes a Gaussian component with weight ``n_k / N``, mean the cluster mean
    and full covariance the cluster's maximum-likelihood covariance plus ``reg_covar`` times
    the identity (as :class:`sklearn.mixture.GaussianMixture` regularizes). The criterion is
    ``-2 log L + p log N`` with the mixture log-likelihood ``log L = sum_i log sum_k w_k
    N(x_i | mu_k, S_k)`` and ``p = (K - 1) + K d + K d (d + 1) / 2`` free parameters. Lower is
    better. Unlike :func:`paper_score`, it balances fit against the number of clusters.

    Parameters
    ----------
    features : array_like, shape (N, d)
        The clustered (standardized) features.
    labels : array_like, shape (N,)
        Cluster labels.
    reg_covar : float, default 1e-6
        Added to the diagonal of every covariance (in units of the standardized features
        squared), so that singleton and flat clusters stay finite.

    Returns
    -------
    float
        The BIC.
    """
    x = np.asarray(features, dtype=np.float64)
    x = x[:, None] if x.ndim == 1 else x
    lab = _check_labels(labels, x.shape[0])
    n, d = x.shape
    uniq, inv, counts = np.unique(lab, return_inverse=True, return_counts=True)
    k = uniq.size
    log_prob = np.empty((n, k))
    for j in range(k):
        xj = x[inv == j]
        mu = xj.mean(axis=0)
        diff_j = xj - mu
        cov = diff_j.T @ diff_j / counts[j] + reg_covar * np.eye(d)
        chol = np.linalg.cholesky(cov)
        sol = np.linalg.solve(chol, (x - mu).T)  # (d, n)
        log_det = 2.0 * np.sum(np.log(np.diag(chol)))
        log_prob[:, j] = math.log(counts[j] / n) - 0.5 * (
            d * math.log(2.0 * math.pi) + log_det + np.einsum("ij,ij->j", sol, sol)
        )
    log_lik = float(np.sum(logsumexp(log_prob, axis=1)))
    n_params = (k - 1) + k * d + k * d * (d + 1) // 2
    return -2.0 * log_lik + n_params * math.log(n)


def bootstrap_stability(
    features: ArrayLike,
    delta_dist: float,
    delta_var: float,
    spread: Spread = "pooled_variance",
    *,
    dist_scale: DistScale = "absolute",
    n_boot: int = 10,
    seed: int = 0,
    labels: ArrayLike | None = None,
) -> float:
    """Return the bootstrap stability of the adaptive cut (mean adjusted Rand index).

    For each of ``n_boot`` seeded bootstrap resamples (rows drawn with replacement), the
    resample is clustered with :func:`ward_linkage` and cut with the same thresholds; the
    adjusted Rand index between that cut and the full-data labels of the drawn rows is
    averaged. 1 means perfectly reproducible biomes; values near 0 mean chance agreement.
    Costs ``n_boot`` linkages.

    Parameters
    ----------
    features : array_like, shape (N, n_features)
        Standardized features (not re-standardized per resample).
    delta_dist, delta_var, spread, dist_scale
        As for :func:`adaptive_cut_nodes`; with ``dist_scale="root"`` Δdist is relative to each
        resample's own root height.
    n_boot : int, default 10
        Number of resamples.
    seed : int, default 0
        Seed of the resampling.
    labels : array_like, optional
        Labels of the full data for these thresholds (computed when omitted).

    Returns
    -------
    float
        Mean adjusted Rand index over the resamples.
    """
    x = np.asarray(features, dtype=np.float64)
    x = x[:, None] if x.ndim == 1 else x
    if labels is None:
        labels = adaptive_cut(
            ward_linkage(x), x, delta_dist, delta_var, spread, dist_scale=dist_scale
        )
    lab = _check_labels(labels, x.shape[0])
    boots = _bootstrap_trees(x, spread, n_boot, seed)
    return _stability(boots, lab, delta_dist, delta_var, spread, dist_scale)


def _bootstrap_trees(
    x: NDArray[np.float64], spread: Spread, n_boot: int, seed: int
) -> list[tuple[NDArray[np.int64], _Tree]]:
    """Draw seeded bootstrap resamples and build their dendrograms (once for all thresholds)."""
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    rng = np.random.default_rng(seed)
    boots = []
    for _ in range(n_boot):
        idx = rng.integers(0, x.shape[0], size=x.shape[0])
        xb = x[idx]
        boots.append((idx, _build_tree(ward_linkage(xb), xb, spread)))
    return boots


def _stability(
    boots: list[tuple[NDArray[np.int64], _Tree]],
    labels: NDArray[np.int64],
    delta_dist: float,
    delta_var: float,
    spread: Spread,
    dist_scale: DistScale,
) -> float:
    from sklearn.metrics import adjusted_rand_score

    scores = []
    for idx, tree in boots:
        dd = _effective_delta_dist(tree, delta_dist, dist_scale)
        cut = _cut_tree(tree, dd, float(delta_var), spread)
        scores.append(adjusted_rand_score(labels[idx], cut.labels))
    return float(np.mean(scores))


# ---------------------------------------------------------------------------------------------
# Threshold scan and selection
# ---------------------------------------------------------------------------------------------
def threshold_scan(
    linkage: ArrayLike,
    features: ArrayLike,
    delta_dists: Iterable[float] | None = None,
    delta_vars: Iterable[float] | None = None,
    spread: Spread = "pooled_variance",
    *,
    dist_scale: DistScale = "root",
    seed: int = 0,
    stability: bool = False,
    n_boot: int = 10,
    max_silhouette_samples: int = 5000,
    paper_d: int | None = None,
    min_biome_size: int = 1,
) -> list[dict[str, Any]]:
    """Cut the dendrogram at every (Δdist, Δvar) pair and score each partition.

    The node statistics are computed once; every cut costs O(n log n).

    Parameters
    ----------
    linkage : array_like, shape (n - 1, 4)
        Linkage matrix of ``features``.
    features : array_like, shape (n, n_features)
        The standardized RCs.
    delta_dists : iterable of float, optional
        Δdist values, in the unit set by ``dist_scale``. Default:
        :data:`DEFAULT_DELTA_DISTS_ROOT` for ``dist_scale="root"``, :data:`PAPER_DELTA_DISTS`
        for ``"absolute"``.
    delta_vars : iterable of float, optional
        Δvar values. Default: :data:`DEFAULT_DELTA_VARS` for ``"root"``,
        :data:`PAPER_DELTA_VARS` for ``"absolute"``.
    spread : {"pooled_variance", "wcss"}, default "pooled_variance"
        Node spread (see :func:`adaptive_cut_nodes`).
    dist_scale : {"root", "absolute"}, default "root"
        Unit of ``delta_dists``: fraction of the root height, or absolute heights (paper).
    seed : int, default 0
        Seed for the silhouette subsample and the bootstrap.
    stability : bool, default False
        Also compute :func:`bootstrap_stability` (``n_boot`` extra linkages, shared by all
        pairs; about 1 s each at 20,000 boxes).
    n_boot : int, default 10
        Bootstrap resamples per pair when ``stability`` is True.
    max_silhouette_samples : int, default 5000
        Subsample size for the silhouette.
    paper_d : int, optional
        ``d`` of :func:`paper_score`; default the number of features.
    min_biome_size : int, default 1
        Biomes smaller than this are merged into their nearest biome
        (:func:`merge_small_biomes`) before counting and scoring; 1 keeps the paper's cut.

    Returns
    -------
    list of dict
        One row per pair, in the order ``for dd in delta_dists: for dv in delta_vars``, with
        keys ``delta_dist``, ``delta_var`` (as given), ``delta_dist_abs`` (absolute height
        threshold), ``dist_scale``, ``spread``, ``n_biomes``, ``min_size``, ``paper_score``,
        ``silhouette``, ``calinski_harabasz``, ``gmm_bic`` and ``stability`` (NaN if not
        computed).
    """
    x = np.asarray(features, dtype=np.float64)
    x = x[:, None] if x.ndim == 1 else x
    tree = _build_tree(linkage, x, spread)
    if delta_dists is None:
        delta_dists = DEFAULT_DELTA_DISTS_ROOT if dist_scale == "root" else PAPER_DELTA_DISTS
    if delta_vars is None:
        delta_vars = DEFAULT_DELTA_VARS if dist_scale == "root" else PAPER_DELTA_VARS
    delta_dists = [_check_threshold("delta_dist", dd) for dd in delta_dists]
    delta_vars = [_check_threshold("delta_var", dv) for dv in delta_vars]
    d = x.shape[1] if paper_d is None else int(paper_d)
    boots = _bootstrap_trees(x, spread, n_boot, seed) if stability else []
    rows: list[dict[str, Any]] = []
    cache: dict[bytes, dict[str, float]] = {}
    for dd in delta_dists:
        dd_abs = _effective_delta_dist(tree, dd, dist_scale)
        for dv in delta_vars:
            cut = _cut_tree(tree, dd_abs, float(dv), spread)
            n_unmerged = cut.n_biomes
            cut, _ = merge_small_biomes(cut, x, min(min_biome_size, int(cut.sizes.max())))
            key = cut.labels.tobytes()
            if key not in cache:  # identical partitions are scored once
                cache[key] = {
                    "paper_score": paper_score(cut.labels, d),
                    "silhouette": silhouette(
                        x, cut.labels, max_samples=max_silhouette_samples, seed=seed
                    ),
                    "calinski_harabasz": calinski_harabasz(x, cut.labels),
                    "gmm_bic": gmm_bic(x, cut.labels),
                }
            scores = dict(cache[key])
            scores["stability"] = (
                _stability(boots, cut.labels, dd, dv, spread, dist_scale)
                if stability
                else float("nan")
            )
            rows.append(
                {
                    "delta_dist": float(dd),
                    "delta_var": float(dv),
                    "delta_dist_abs": dd_abs,
                    "dist_scale": dist_scale,
                    "spread": spread,
                    "n_biomes": cut.n_biomes,
                    "n_biomes_before_merge": n_unmerged,
                    "min_size": int(cut.sizes.min()),
                    **scores,
                }
            )
            logger.debug("threshold_scan: %s", rows[-1])
    return rows


_HIGHER_IS_BETTER = {
    "silhouette": True,
    "calinski_harabasz": True,
    "gmm_bic": False,
    "stability": True,
}


def select_thresholds(
    scan: Sequence[dict[str, Any]],
    rule: Rule = "silhouette",
    min_biomes: int = 4,
    max_biomes: int = 12,
) -> dict[str, Any]:
    """Choose one (Δdist, Δvar) pair from a :func:`threshold_scan`.

    Rules:

    * ``"silhouette"`` (default), ``"calinski_harabasz"``, ``"stability"`` (highest) or
      ``"gmm_bic"`` (lowest): among the rows with ``min_biomes <= n_biomes <= max_biomes`` and
      a finite criterion, the best criterion; ties are broken by the higher Calinski-Harabasz
      index, then by the larger Δdist, then by the larger Δvar (fewer, coarser biomes).
    * ``"faithful"``: the paper's fixed pair :data:`PAPER_THRESHOLDS` (Δdist 25, Δvar 0.1 with
      absolute heights), whatever its score or biome count; the scan must contain it.

    Parameters
    ----------
    scan : sequence of dict
        Rows from :func:`threshold_scan`.
    rule : {"silhouette", "calinski_harabasz", "gmm_bic", "stability", "faithful"}
        Selection rule.
    min_biomes, max_biomes : int, default 4, 12
        Admissible range of the number of biomes (ignored by ``"faithful"``).

    Returns
    -------
    dict
        The selected row.

    Raises
    ------
    ValueError
        If the rule is unknown, no row qualifies, or (``"faithful"``) the paper's pair is not
        in the scan.
    """
    rows = list(scan)
    if not rows:
        raise ValueError("the threshold scan is empty")
    if rule == "faithful":
        for row in rows:
            if (
                row.get("dist_scale", "absolute") == "absolute"
                and math.isclose(row["delta_dist"], PAPER_THRESHOLDS[0])
                and math.isclose(row["delta_var"], PAPER_THRESHOLDS[1])
            ):
                return row
        raise ValueError(
            "rule 'faithful' needs the paper's pair (delta_dist=25, delta_var=0.1, "
            "dist_scale='absolute') in the scan; or call adaptive_cut(linkage, z, 25, 0.1)"
        )
    if rule not in _HIGHER_IS_BETTER:
        raise ValueError(
            f"rule must be one of {sorted([*_HIGHER_IS_BETTER, 'faithful'])}, got {rule!r}"
        )
    if min_biomes > max_biomes:
        raise ValueError(f"min_biomes ({min_biomes}) > max_biomes ({max_biomes})")
    sign = 1.0 if _HIGHER_IS_BETTER[rule] else -1.0
    candidates = [
        r for r in rows if min_biomes <= r["n_biomes"] <= max_biomes and np.isfinite(r[rule])
    ]
    if not candidates:
        counts = sorted({int(r["n_biomes"]) for r in rows})
        raise ValueError(
            f"no threshold pair gives between {min_biomes} and {max_biomes} biomes with a "
            f"finite {rule!r} (biome counts in the scan: {counts}); widen the grid or the range"
        )

    def key(r: dict[str, Any]) -> tuple[float, float, float, float]:
        ch = r["calinski_harabasz"]
        return (
            sign * r[rule],
            ch if np.isfinite(ch) else -np.inf,
            r["delta_dist"],
            r["delta_var"],
        )

    return max(candidates, key=key)
