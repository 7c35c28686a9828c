"""Matching biomes to a common set and label-map agreement (groundwork of the comparison)."""

from __future__ import annotations

import numpy as np
import pytest

from carbon_biomes.core.errors import DiagnosticError
from carbon_biomes.core.matching import (
    agreement_map,
    map_agreement,
    match_biomes,
    multi_model_summary,
)


def planted_map(rng: np.random.Generator, shift: int = 0) -> np.ma.MaskedArray:
    """Zonal biomes on a 45 x 90 lattice: 1 polar, 2 subpolar, 3 upwelling band, 4 subtropical."""
    lat = np.repeat(np.arange(45)[:, None], 90, axis=1)
    labels = np.full((45, 90), 4)
    labels[(lat < 8) | (lat > 38)] = 1
    labels[((lat >= 8) & (lat < 14)) | ((lat > 32) & (lat <= 38))] = 2
    labels[(lat >= 21 + shift) & (lat <= 23 + shift)] = 3
    mask = rng.uniform(size=labels.shape) < 0.1  # unclassified boxes
    return np.ma.MaskedArray(labels, mask=mask)


def centroids(rng: np.random.Generator) -> dict[int, np.ndarray]:
    return {k: rng.normal(size=3) * 3 for k in (1, 2, 3, 4)}


def test_matching_recovers_a_permutation_exactly():
    rng = np.random.default_rng(0)
    common = centroids(rng)
    reference = planted_map(rng)
    permutation = {1: 7, 2: 5, 3: 9, 4: 6}
    own = {permutation[k]: c + rng.normal(scale=0.1, size=3) for k, c in common.items()}
    relabelled = np.ma.MaskedArray(np.vectorize(permutation.get)(reference.data),
                                   mask=reference.mask)  # fmt: skip
    for labels in (None, relabelled):
        match = match_biomes(own, common, labels, reference if labels is not None else None)
        assert match.pairs == {v: k for k, v in permutation.items()}
        assert match.novel == () and match.absent == ()


def test_unmatched_biomes_are_novel_or_absent():
    rng = np.random.default_rng(1)
    common = centroids(rng)
    own = {1: common[1], 2: common[2], 8: np.array([40.0, -40.0, 40.0])}
    match = match_biomes(own, common, max_cost=1.0)
    assert match.pairs == {1: 1, 2: 2}
    assert match.novel == (8,)
    assert set(match.absent) == {3, 4}


def test_reference_with_small_noise_agrees_and_a_shift_disagrees():
    rng = np.random.default_rng(2)
    reference = planted_map(rng)
    area = np.cos(np.deg2rad(-88 + 4 * np.arange(45)))[:, None] * np.ones((45, 90))
    noisy = reference.copy()
    flip = rng.uniform(size=noisy.shape) < 0.05
    noisy[flip] = rng.integers(1, 5, size=int(flip.sum()))
    same = map_agreement(noisy, reference, area)
    assert same.agreement >= 0.9 and same.kappa >= 0.85
    shifted = map_agreement(planted_map(rng, shift=6), reference, area)
    assert shifted.agreement < same.agreement - 0.05
    assert shifted.jaccard[3] < 0.1 and same.jaccard[3] > 0.7
    # the upwelling band moved from the equator to mid-latitudes: its area changes
    assert shifted.area_fraction[3] != pytest.approx(shifted.area_fraction_reference[3],
                                                     abs=1e-3)  # fmt: skip
    assert sum(same.area_fraction.values()) == pytest.approx(1.0)


def test_agreement_is_area_weighted():
    reference = np.ma.MaskedArray(np.array([[1, 1], [2, 2]]))
    labels = np.ma.MaskedArray(np.array([[1, 1], [1, 1]]))
    area = np.array([[1.0, 1.0], [3.0, 3.0]])
    assert map_agreement(labels, reference).agreement == pytest.approx(0.5)
    assert map_agreement(labels, reference, area).agreement == pytest.approx(0.25)
    with pytest.raises(DiagnosticError, match="shapes"):
        map_agreement(labels, reference[:1])


def test_agreement_map_counts_the_models_that_agree_with_the_reference():
    reference = np.ma.MaskedArray(np.array([[1, 2, 3]]), mask=[[False, False, True]])
    models = [
        np.ma.MaskedArray(np.array([[1, 2, 3]])),
        np.ma.MaskedArray(np.array([[1, 1, 3]])),
        np.ma.MaskedArray(np.array([[2, 1, 3]]), mask=[[True, False, False]]),
    ]
    fraction = agreement_map(models, reference)
    assert fraction[0, 0] == pytest.approx(1.0)  # two of two classifying models agree
    assert fraction[0, 1] == pytest.approx(1 / 3)
    assert np.ma.is_masked(fraction[0, 2])  # the reference does not classify it


def test_multi_model_mean_and_spread_skip_missing_values():
    mean, spread = multi_model_summary({"A": 0.8, "B": 0.6, "C": float("nan")})
    assert mean == pytest.approx(0.7) and spread == pytest.approx(np.std([0.8, 0.6], ddof=1))
    assert np.isnan(multi_model_summary({"A": 0.5})[1])
