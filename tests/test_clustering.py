"""Tests of carbon_biomes.clustering: adaptive cut vs a plain reference, scores vs sklearn."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.cluster.hierarchy import dendrogram, fcluster, leaves_list, linkage, to_tree
from sklearn.metrics import adjusted_rand_score, calinski_harabasz_score, silhouette_score
from sklearn.mixture import GaussianMixture

from carbon_biomes.core.clustering import (
    DEFAULT_DELTA_DISTS_ROOT,
    DEFAULT_DELTA_VARS,
    PAPER_DELTA_DISTS,
    PAPER_DELTA_VARS,
    PAPER_THRESHOLDS,
    adaptive_cut,
    adaptive_cut_nodes,
    bootstrap_stability,
    calinski_harabasz,
    gmm_bic,
    merge_small_biomes,
    paper_score,
    select_thresholds,
    silhouette,
    standardize,
    threshold_scan,
    ward_linkage,
)


# ---------------------------------------------------------------------------------------------
# reference implementation of docs/method.md §2.6: recursive, explicit member lists
# ---------------------------------------------------------------------------------------------
def reference_spread(members: np.ndarray, spread: str) -> float:
    if spread == "pooled_variance":
        return float(np.var(members.ravel()))  # population variance of the pooled values
    centroid = members.mean(axis=0)
    return float(np.mean(np.sum((members - centroid) ** 2, axis=1)))


def reference_cut(z, x, delta_dist, delta_var, spread):
    """Descend from the root; a child is split iff internal and both differences exceed Δ.

    Biomes are collected left child first, so they come out in dendrogram leaf order and
    are numbered 1..K in that order. Returns labels and the biome node ids.
    """
    biomes: list[tuple[int, list[int]]] = []

    def visit(node):
        v_node = reference_spread(x[node.pre_order()], spread)
        for child in (node.get_left(), node.get_right()):
            if (
                not child.is_leaf()
                and abs(node.dist - child.dist) > delta_dist
                and abs(v_node - reference_spread(x[child.pre_order()], spread)) > delta_var
            ):
                visit(child)
            else:
                biomes.append((child.id, child.pre_order()))

    visit(to_tree(z))  # the root is always split
    labels = np.zeros(x.shape[0], dtype=int)
    for k, (_, members) in enumerate(biomes, start=1):
        labels[members] = k
    return labels, [node_id for node_id, _ in biomes]


def random_features(rng, n, d):
    x = rng.normal(size=(n, d)) * rng.uniform(0.3, 3.0, d)
    # a few groups of different spread, as RCs have
    for _ in range(rng.integers(0, 4)):
        sel = rng.random(n) < rng.uniform(0.1, 0.4)
        x[sel] = x[sel] * rng.uniform(0.2, 1.0) + rng.normal(0, 4, d)
    return standardize(x)[0]


def same_partition(a, b) -> bool:
    return adjusted_rand_score(a, b) == 1.0


# ---------------------------------------------------------------------------------------------
# adaptive cut
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("spread", ["pooled_variance", "wcss"])
def test_adaptive_cut_equals_reference(spread):
    n_checked = 0
    for seed in range(60):
        rng = np.random.default_rng(seed)
        n = int(rng.integers(2, 250))
        d = int(rng.integers(1, 4))
        x = random_features(rng, n, d) if n > 2 else rng.normal(size=(n, d))
        z = ward_linkage(x)
        h_root = z[-1, 2]
        for _ in range(4):
            dd = float(rng.uniform(0, 0.6) * h_root)
            dv = float(rng.choice([0.0, rng.uniform(0, 0.6)]))
            cut = adaptive_cut_nodes(z, x, dd, dv, spread)
            ref_labels, ref_nodes = reference_cut(z, x, dd, dv, spread)
            assert same_partition(cut.labels, ref_labels)
            np.testing.assert_array_equal(cut.labels, ref_labels)  # numbering rule too
            np.testing.assert_array_equal(cut.nodes, ref_nodes)
            np.testing.assert_array_equal(cut.sizes, np.bincount(ref_labels)[1:])
            n_checked += 1
    assert n_checked == 240


def test_paper_thresholds_on_reference():
    rng = np.random.default_rng(99)
    x = random_features(rng, 1500, 3)
    z = ward_linkage(x)
    for spread in ("pooled_variance", "wcss"):
        for dd in PAPER_DELTA_DISTS:
            for dv in PAPER_DELTA_VARS:
                got = adaptive_cut(z, x, dd, dv, spread)
                np.testing.assert_array_equal(got, reference_cut(z, x, dd, dv, spread)[0])


def test_numbering_follows_dendrogram_leaf_order():
    rng = np.random.default_rng(5)
    x = random_features(rng, 300, 3)
    z = ward_linkage(x)
    cut = adaptive_cut_nodes(z, x, 0.05 * z[-1, 2], 0.01)
    assert cut.n_biomes > 3
    order = leaves_list(z)
    np.testing.assert_array_equal(order, dendrogram(z, no_plot=True)["leaves"])
    in_order = cut.labels[order]
    # biomes are contiguous runs, numbered 1, 2, ..., K from left to right
    np.testing.assert_array_equal(np.unique(in_order), np.arange(1, cut.n_biomes + 1))
    assert np.all(np.diff(in_order) >= 0)
    assert in_order[0] == 1 and in_order[-1] == cut.n_biomes
    # each biome's node holds exactly its members
    n = x.shape[0]
    root = to_tree(z, rd=True)[1]
    for k, node in enumerate(cut.nodes, start=1):
        members = sorted(root[node].pre_order())
        np.testing.assert_array_equal(members, np.flatnonzero(cut.labels == k))
        assert (node < n) == (len(members) == 1)
    # the root is split first and every split node is an ancestor of some biome
    assert cut.split_nodes[0] == 2 * n - 2


def test_root_always_split_and_labels_contiguous():
    rng = np.random.default_rng(1)
    x = random_features(rng, 200, 3)
    z = ward_linkage(x)
    cut = adaptive_cut_nodes(z, x, 1e9, 1e9)
    assert cut.n_biomes == 2
    np.testing.assert_array_equal(sorted(cut.nodes), sorted(z[-1, :2].astype(int)))
    np.testing.assert_array_equal(cut.split_nodes, [2 * 200 - 2])
    # zero thresholds split every internal node whose tests pass strictly
    labels = adaptive_cut(z, x, 0.0, 0.0)  # negative thresholds are refused
    assert labels.max() == len(np.unique(labels))
    # two points: the root's children are the two leaves
    x2 = np.array([[0.0, 1.0], [1.0, 0.0]])
    np.testing.assert_array_equal(adaptive_cut(ward_linkage(x2), x2, 0, 0), [1, 2])


def test_dist_scale_root_equals_absolute_times_root_height():
    rng = np.random.default_rng(8)
    x = random_features(rng, 400, 3)
    z = ward_linkage(x)
    for frac in (0.05, 0.1, 0.2):
        rel = adaptive_cut_nodes(z, x, frac, 0.1, dist_scale="root")
        absolute = adaptive_cut(z, x, frac * z[-1, 2], 0.1)
        np.testing.assert_array_equal(rel.labels, absolute)
        assert math.isclose(rel.delta_dist, frac * z[-1, 2])
    with pytest.raises(ValueError, match="dist_scale"):
        adaptive_cut(z, x, 0.1, 0.1, dist_scale="relative")


def test_adaptive_cut_errors():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(20, 3))
    z = ward_linkage(x)
    with pytest.raises(ValueError, match="features must have shape"):
        adaptive_cut(z, x[:10], 1, 0.1)
    with pytest.raises(ValueError, match="spread"):
        adaptive_cut(z, x, 1, 0.1, spread="variance")
    with pytest.raises(ValueError, match="linkage"):
        adaptive_cut(z[:, :3], x, 1, 0.1)
    with pytest.raises(ValueError, match="finite"):
        adaptive_cut(z, x, np.nan, 0.1)


# ---------------------------------------------------------------------------------------------
# standardize and linkage
# ---------------------------------------------------------------------------------------------
def test_standardize():
    rng = np.random.default_rng(2)
    rcs = rng.normal([14, 1.6, -1.3], [4, 0.5, 0.4], size=(100, 3))
    z, mean, std = standardize(rcs)
    np.testing.assert_allclose(mean, rcs.mean(0))
    np.testing.assert_allclose(std, rcs.std(0, ddof=1))
    np.testing.assert_allclose(z.mean(0), 0, atol=1e-12)
    np.testing.assert_allclose(z.std(0, ddof=1), 1)
    np.testing.assert_allclose(z * std + mean, rcs)
    with pytest.raises(ValueError, match="constant"):
        standardize(np.column_stack([rcs[:, 0], np.full(100, 3.0)]))
    with pytest.raises(ValueError, match="at least 2 rows"):
        standardize(rcs[:1])
    with pytest.raises(ValueError, match="NaN"):
        standardize(np.where(rcs > 20, np.nan, rcs))


def test_ward_linkage_equals_scipy():
    rng = np.random.default_rng(4)
    x = random_features(rng, 500, 3)
    ours = ward_linkage(x)
    ref = linkage(x, method="ward")
    assert ours.shape == (499, 4)
    np.testing.assert_allclose(np.sort(ours[:, 2]), np.sort(ref[:, 2]), rtol=1e-10)
    np.testing.assert_array_equal(np.sort(ours[:, 3]), np.sort(ref[:, 3]))
    for k in (2, 5, 12):
        assert same_partition(fcluster(ours, k, "maxclust"), fcluster(ref, k, "maxclust"))
    with pytest.raises(ValueError):
        ward_linkage(x[:1])
    with pytest.raises(ValueError):
        ward_linkage(np.where(x > 2, np.inf, x))


# ---------------------------------------------------------------------------------------------
# scores
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def clustered():
    rng = np.random.default_rng(17)
    centres = rng.normal(0, 3, (5, 3))
    labels = rng.integers(0, 5, 900)
    x = centres[labels] + rng.normal(0, 1, (900, 3))
    return standardize(x)[0], labels + 1


def test_paper_score(clustered):
    _, labels = clustered
    n = labels.size
    counts = np.bincount(labels)[1:]
    expected = -2 * np.sum(np.log(counts / n)) + 3 * np.log(n)
    assert math.isclose(paper_score(labels), expected)
    assert math.isclose(paper_score(labels, d=5), expected + 2 * np.log(n))
    # no goodness-of-fit term: a single cluster always scores best (lowest)
    assert paper_score(np.ones(n)) < paper_score(labels)


def test_silhouette_and_calinski_harabasz_equal_sklearn(clustered):
    x, labels = clustered
    assert math.isclose(silhouette(x, labels), silhouette_score(x, labels))
    sub = silhouette(x, labels, max_samples=300, seed=3)
    assert math.isclose(sub, silhouette_score(x, labels, sample_size=300, random_state=3))
    assert sub == silhouette(x, labels, max_samples=300, seed=3)  # seeded
    assert math.isclose(calinski_harabasz(x, labels), calinski_harabasz_score(x, labels))
    assert math.isnan(silhouette(x, np.ones(x.shape[0])))
    assert math.isnan(calinski_harabasz(x, np.ones(x.shape[0])))


def test_gmm_bic_equals_sklearn_mixture_with_partition_parameters(clustered):
    x, labels = clustered
    reg = 1e-6
    ks = np.unique(labels)
    gm = GaussianMixture(n_components=ks.size, covariance_type="full", reg_covar=reg)
    gm.weights_ = np.array([np.mean(labels == k) for k in ks])
    gm.means_ = np.array([x[labels == k].mean(0) for k in ks])
    gm.covariances_ = np.array([np.cov(x[labels == k].T, bias=True) + reg * np.eye(3) for k in ks])
    gm.precisions_cholesky_ = np.array(
        [np.linalg.inv(np.linalg.cholesky(c)).T for c in gm.covariances_]
    )
    assert math.isclose(gmm_bic(x, labels, reg_covar=reg), gm.bic(x), rel_tol=1e-9)
    # the true partition beats a random one and a merged one
    rng = np.random.default_rng(0)
    assert gmm_bic(x, labels) < gmm_bic(x, rng.permutation(labels))
    assert gmm_bic(x, labels) < gmm_bic(x, np.minimum(labels, 2))
    # a singleton cluster stays finite
    lab = labels.copy()
    lab[0] = 99
    assert np.isfinite(gmm_bic(x, lab))


def test_bootstrap_stability(clustered):
    x, _ = clustered
    z = ward_linkage(x)
    labels = adaptive_cut(z, x, 0.2, 0.05, dist_scale="root")
    s = bootstrap_stability(x, 0.2, 0.05, dist_scale="root", n_boot=4, seed=1, labels=labels)
    assert 0.5 < s <= 1.0
    assert s == bootstrap_stability(x, 0.2, 0.05, dist_scale="root", n_boot=4, seed=1)


# ---------------------------------------------------------------------------------------------
# scan and selection
# ---------------------------------------------------------------------------------------------
def test_threshold_scan_rows_match_direct_calls(clustered):
    x, _ = clustered
    z = ward_linkage(x)
    scan = threshold_scan(z, x, [0.05, 0.2], [0.05, 0.3], dist_scale="root", seed=2)
    assert [(r["delta_dist"], r["delta_var"]) for r in scan] == [
        (0.05, 0.05),
        (0.05, 0.3),
        (0.2, 0.05),
        (0.2, 0.3),
    ]
    for row in scan:
        labels = adaptive_cut(z, x, row["delta_dist"], row["delta_var"], dist_scale="root")
        assert row["n_biomes"] == labels.max()
        assert math.isclose(row["delta_dist_abs"], row["delta_dist"] * z[-1, 2])
        assert math.isclose(row["paper_score"], paper_score(labels, 3))
        assert math.isclose(row["silhouette"], silhouette(x, labels, seed=2))
        assert math.isclose(row["calinski_harabasz"], calinski_harabasz(x, labels))
        assert math.isclose(row["gmm_bic"], gmm_bic(x, labels))
        assert math.isnan(row["stability"])
    # default grids
    assert len(threshold_scan(z, x)) == len(DEFAULT_DELTA_DISTS_ROOT) * len(DEFAULT_DELTA_VARS)
    paper = threshold_scan(z, x, dist_scale="absolute")
    assert len(paper) == len(PAPER_DELTA_DISTS) * len(PAPER_DELTA_VARS)
    assert select_thresholds(paper, "faithful")["delta_dist"] == PAPER_THRESHOLDS[0]
    # stability: shared bootstrap, equal to the direct call with the same seed
    stab = threshold_scan(z, x, [0.2], [0.05], dist_scale="root", stability=True, n_boot=3, seed=4)
    direct = bootstrap_stability(x, 0.2, 0.05, dist_scale="root", n_boot=3, seed=4)
    assert math.isclose(stab[0]["stability"], direct)


def _row(dd, dv, k, sil, ch, bic=0.0, stab=float("nan")):
    return {
        "delta_dist": dd,
        "delta_var": dv,
        "n_biomes": k,
        "silhouette": sil,
        "calinski_harabasz": ch,
        "gmm_bic": bic,
        "stability": stab,
        "dist_scale": "root",
    }


def test_select_thresholds_rules():
    rows = [
        _row(0.05, 0.1, 20, 0.9, 10, bic=1.0),  # best silhouette but too many biomes
        _row(0.1, 0.1, 6, 0.5, 10, bic=5.0),
        _row(0.2, 0.1, 6, 0.5, 30, bic=4.0),  # tie on silhouette: higher CH wins
        _row(0.3, 0.1, 5, 0.5, 30, bic=9.0),  # tie on silhouette and CH: larger Δdist wins
        _row(0.3, 0.5, 2, 0.99, 99, bic=-9.0),  # too few biomes
        _row(0.1, 0.5, 7, float("nan"), 50, bic=3.0),  # undefined silhouette
    ]
    best = select_thresholds(rows)
    assert (best["delta_dist"], best["delta_var"]) == (0.3, 0.1)
    best = select_thresholds(rows, "gmm_bic")
    assert (best["delta_dist"], best["delta_var"]) == (0.1, 0.5)  # lowest BIC
    best = select_thresholds(rows, "calinski_harabasz")
    assert (best["delta_dist"], best["delta_var"]) == (0.1, 0.5)
    best = select_thresholds(rows, "silhouette", min_biomes=2, max_biomes=30)
    assert best["n_biomes"] == 2
    with pytest.raises(ValueError, match="no threshold pair gives between 30 and 40"):
        select_thresholds(rows, min_biomes=30, max_biomes=40)
    with pytest.raises(ValueError, match="finite 'stability'"):
        select_thresholds(rows, "stability")
    with pytest.raises(ValueError, match="rule must be"):
        select_thresholds(rows, "bic")
    with pytest.raises(ValueError, match="faithful"):
        select_thresholds(rows, "faithful")
    with pytest.raises(ValueError, match="empty"):
        select_thresholds([])


def test_merge_small_biomes_moves_boxes_to_nearest_centroid():
    rng = np.random.default_rng(5)
    big_a = rng.normal([0.0, 0.0, 0.0], 0.3, (60, 3))
    big_b = rng.normal([4.0, 0.0, 0.0], 0.3, (50, 3))
    lone = np.array([[9.0, 2.0, 1.0]])  # far out, nearer to big_b: joins at the root
    x = np.vstack([big_a, big_b, lone])
    link = ward_linkage(x)
    cut = adaptive_cut_nodes(link, x, 5.0, 0.5)
    assert cut.sizes.min() == 1
    merged_cut, merged = merge_small_biomes(cut, x, 5)
    assert merged_cut.n_biomes == int((cut.sizes >= 5).sum())
    assert set(np.unique(merged_cut.labels)) == set(range(1, merged_cut.n_biomes + 1))
    assert merged_cut.sizes.min() >= 5 and merged_cut.sizes.sum() == x.shape[0]
    assert merged, "the outlier must have been left alone by the cut and merged"
    # every merged biome joined the surviving biome whose centroid was nearest to its own
    large = [k for k in range(1, cut.n_biomes + 1) if (cut.labels == k).sum() >= 5]
    for old, new in merged.items():
        own = x[cut.labels == old].mean(axis=0)
        distances = [np.linalg.norm(x[cut.labels == k].mean(axis=0) - own) for k in large]
        target = large[int(np.argmin(distances))]
        assert np.all(merged_cut.labels[cut.labels == old] == new)
        assert np.all(merged_cut.labels[cut.labels == target] == new)
    # surviving biomes keep their relative order
    firsts = [merged_cut.labels[np.flatnonzero(cut.labels == k)[0]] for k in large]
    assert firsts == sorted(firsts)
    unchanged, none = merge_small_biomes(cut, x, 1)
    assert unchanged is cut and none == {}
    with pytest.raises(ValueError, match="nothing to merge into"):
        merge_small_biomes(cut, x, x.shape[0] + 1)


def test_scan_with_min_biome_size_reports_merged_counts():
    rng = np.random.default_rng(2)
    x = np.vstack([rng.normal(c, 0.4, (80, 3)) for c in ([0, 0, 0], [3, 0, 0], [0, 3, 0])])
    x = np.vstack([x, [[10.0, 10.0, 10.0]]])
    link = ward_linkage(x)
    plain = threshold_scan(link, x, [0.05], [0.05])
    merged = threshold_scan(link, x, [0.05], [0.05], min_biome_size=5)
    assert plain[0]["min_size"] == 1
    assert merged[0]["min_size"] >= 5
    assert merged[0]["n_biomes_before_merge"] == plain[0]["n_biomes"]
    assert merged[0]["n_biomes"] < plain[0]["n_biomes"]
