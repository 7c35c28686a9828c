"""Multi-model comparison on the common box lattice (core.comparison)."""

from __future__ import annotations

import numpy as np
import pytest

from carbon_biomes.core import comparison
from carbon_biomes.core.coverage_statistics import TrendSettings, coverage_statistics
from carbon_biomes.core.detection import DetectionSettings, ReferenceBoxes, detect_biomes
from carbon_biomes.core.errors import DiagnosticError
from carbon_biomes.core.regions import regions_from_settings

BOX = 4.0
SUBTROPICAL, UPWELLING, SUBPOLAR, ICE = 1, 2, 3, 4
NAMES = {SUBTROPICAL: "SUBTR I", UPWELLING: "SUBP+UP I", SUBPOLAR: "SUBP+UP II", ICE: "ICE I"}


def band_labels(n_months: int, upwelling_centre: float = 0.0) -> np.ma.MaskedArray:
    """Zonal bands: ice poleward of 66°, subpolar 42-66°, upwelling ±10° of a centre, else SUBTR."""
    lat, _ = comparison.lattice_centres(BOX)
    labels = np.full(lat.shape, SUBTROPICAL, dtype=np.int16)
    labels[np.abs(lat) >= 42] = SUBPOLAR
    labels[np.abs(lat) >= 66] = ICE
    labels[np.abs(lat - upwelling_centre) < 10] = UPWELLING
    land = np.zeros(lat.shape, dtype=bool)
    land[:, 10:14] = True  # a meridional continent
    return np.ma.masked_array(np.broadcast_to(labels, (n_months, *lat.shape)).copy(),
                              mask=np.broadcast_to(land, (n_months, *lat.shape)).copy())


def box_area() -> np.ndarray:
    lat, _ = comparison.lattice_centres(BOX)
    return np.cos(np.deg2rad(lat)) * 1.0e11


def noisy(labels: np.ma.MaskedArray, fraction: float, seed: int) -> np.ma.MaskedArray:
    rng = np.random.default_rng(seed)
    out = labels.copy()
    flip = rng.random(labels.shape) < fraction
    out[flip] = rng.integers(1, 5, size=int(flip.sum()))
    return out


def months(n: int, start: int = 2000) -> tuple[str, ...]:
    return tuple(f"{start + t // 12}-{t % 12 + 1:02d}" for t in range(n))


REGIONS = regions_from_settings(["Equatorial Pacific", "Southern Ocean", "Global"])


def masks(area: np.ndarray) -> dict[str, np.ndarray]:
    return comparison.lattice_region_masks(REGIONS, BOX, area > 0)


def metrics(records, region="Global", biome=""):
    return {r["metric"]: r["value"] for r in records if r["region"] == region
            and r["biome"] == biome}  # fmt: skip


def test_reference_with_small_noise_agrees_at_least_90_percent():
    reference = band_labels(24)
    model = noisy(reference, 0.05, seed=1)
    records = comparison.map_comparison(model, reference, box_area(), masks(box_area()), NAMES)
    glob = metrics(records)
    assert glob["agreement"] >= 0.9
    assert glob["kappa"] > 0.85
    # the same maps agree perfectly
    same = metrics(comparison.map_comparison(reference, reference, box_area(),
                                             masks(box_area()), NAMES))  # fmt: skip
    assert same["agreement"] == pytest.approx(1.0)
    assert same["kappa"] == pytest.approx(1.0)


def test_shifted_upwelling_lowers_agreement_and_changes_its_area():
    reference = band_labels(24)
    area = box_area()
    noise = metrics(comparison.map_comparison(noisy(reference, 0.05, 2), reference, area,
                                              masks(area), NAMES))  # fmt: skip
    shifted = band_labels(24, upwelling_centre=24.0)
    records = comparison.map_comparison(shifted, reference, area, masks(area), NAMES)
    glob = metrics(records)
    assert glob["agreement"] < noise["agreement"] - 0.1
    assert metrics(records, biome=NAMES[UPWELLING])["jaccard"] == pytest.approx(0.0)
    # the Equatorial Pacific loses its upwelling biome entirely
    assert metrics(records, "Equatorial Pacific")["agreement"] == pytest.approx(0.0)

    m = masks(area)
    ref_table = comparison.lattice_coverage(reference, area, m, sorted(NAMES), months(24))
    table = comparison.lattice_coverage(shifted, area, m, sorted(NAMES), months(24))
    settings = TrendSettings(min_years=10)
    rows = comparison.coverage_comparison(
        table, coverage_statistics(table, settings),
        (ref_table, coverage_statistics(ref_table, settings)), NAMES,
    )
    diff = metrics(rows, biome=NAMES[UPWELLING])["area_fraction_difference"]
    # an equal-width band moved from the equator to 24°N covers cos(24°) of the area, less
    # what it takes from the subtropics: clearly negative
    assert diff < -0.5
    assert metrics(rows, "Equatorial Pacific", NAMES[UPWELLING])["area_fraction_difference"] < -50
    assert metrics(rows, biome="")["seasonal_cycle_rmse"] > 0.5
    # no trend is tested on two years
    assert not any(r["metric"].startswith("coverage_trend") for r in rows)


def test_trend_difference_is_significant_only_when_planted():
    n = 240
    area = box_area()
    m = masks(area)
    reference = band_labels(n)
    growing = reference.copy()
    lat, _ = comparison.lattice_centres(BOX)
    # the upwelling band widens by one box row every four years on its northern edge
    for t in range(n):
        rows = int(t // 48)
        band = (lat >= 10) & (lat < 10 + BOX * rows)
        growing[t][band & ~np.ma.getmaskarray(growing[t])] = UPWELLING
    settings = TrendSettings(min_years=10)
    ref_table = comparison.lattice_coverage(reference, area, m, sorted(NAMES), months(n))
    ref = (ref_table, coverage_statistics(ref_table, settings))
    table = comparison.lattice_coverage(growing, area, m, sorted(NAMES), months(n))
    rows = comparison.coverage_comparison(table, coverage_statistics(table, settings), ref, NAMES)
    up = metrics(rows, biome=NAMES[UPWELLING])
    assert up["coverage_trend"] > 1.0  # pp per decade
    assert up["coverage_trend_difference"] == pytest.approx(up["coverage_trend"], abs=1e-9)
    assert up["coverage_trend_difference_significant"] == 1.0
    noise_table = comparison.lattice_coverage(noisy(reference, 0.05, 3), area, m,
                                              sorted(NAMES), months(n))  # fmt: skip
    rows = comparison.coverage_comparison(noise_table, coverage_statistics(noise_table, settings),
                                          ref, NAMES)  # fmt: skip
    assert metrics(rows, biome=NAMES[UPWELLING])["coverage_trend_difference_significant"] == 0.0


def test_agreement_fraction_counts_models_agreeing_in_most_months():
    reference = band_labels(3)
    other = ICE if reference[0, 20, 30] != ICE else SUBTROPICAL
    model_a = reference.copy()
    model_b = reference.copy()
    model_b[0, 20, 30] = other  # one month of three: still agrees
    model_c = reference.copy()
    model_c[:2, 20, 30] = other  # two of three: disagrees
    model_c[:, 20, 31] = np.ma.masked  # never classified there
    fraction, count = comparison.agreement_fraction(
        [(model_a, reference), (model_b, reference), (model_c, reference)]
    )
    assert count[20, 30] == 3
    assert fraction[20, 30] == pytest.approx(2 / 3)
    assert count[20, 31] == 2
    assert fraction[20, 31] == pytest.approx(1.0)
    assert np.ma.getmaskarray(fraction)[:, 10:14].all()  # land


def _boxes(n: int, seed: int, shift: float = 0.0) -> ReferenceBoxes:
    rng = np.random.default_rng(seed)
    centres = np.array([[5.0, 1.0, -1.0], [-3.0, 4.0, -2.0], [0.5, -2.0, 3.0]]) + shift
    group = rng.integers(0, 3, n)
    features = centres[group] + 0.3 * rng.standard_normal((n, 3))
    lat = rng.uniform(-80, 80, n)
    return ReferenceBoxes(
        months=("2009-01",), box_size=BOX, features=features,
        box_id=np.sort(rng.choice(45 * 90, n, replace=False)), lat=lat,
        lon=rng.uniform(-180, 180, n), month_of_box=np.zeros(n, dtype=int),
        area=np.cos(np.deg2rad(lat)) * 1e11, sst=25 - 0.3 * np.abs(lat), ice=None,
    )  # fmt: skip


def test_pooled_sample_draws_equally_and_ignores_dataset_order():
    boxes = {"MODEL-B": _boxes(900, 1), "MODEL-A": _boxes(300, 2), "OBS": _boxes(500, 3, 0.5)}
    sample = comparison.pool_datasets(boxes, seed=7)
    assert sample.aliases == ("MODEL-A", "MODEL-B", "OBS")
    assert np.bincount(sample.dataset_of_box).tolist() == [300, 300, 300]
    # area weighting: the draw from the larger datasets favours large (low-latitude) boxes
    drawn_b = sample.boxes.area[sample.dataset_of_box == 1]
    assert drawn_b.mean() > boxes["MODEL-B"].area.mean()
    reordered = comparison.pool_datasets(dict(reversed(list(boxes.items()))), seed=7)
    np.testing.assert_array_equal(sample.boxes.features, reordered.boxes.features)
    settings = DetectionSettings(min_biomes=2, max_biomes=6)
    first = detect_biomes(sample.boxes, settings, "pooled")
    second = detect_biomes(reordered.boxes, settings, "pooled")
    np.testing.assert_array_equal(first.labels, second.labels)
    assert first.names == second.names
    assert first.n_biomes >= 2
    # another seed draws other boxes
    other = comparison.pool_datasets(boxes, seed=8)
    assert not np.array_equal(other.boxes.features, sample.boxes.features)


def test_pooled_sample_refuses_bad_input():
    with pytest.raises(DiagnosticError, match="at least two datasets"):
        comparison.pool_datasets({"A": _boxes(50, 1)})
    coarse = _boxes(50, 2)
    coarse = ReferenceBoxes(**{**coarse.__dict__, "box_size": 2.0})
    with pytest.raises(DiagnosticError, match="different box lattices"):
        comparison.pool_datasets({"A": _boxes(50, 1), "B": coarse})


def test_multi_model_rows_and_portrait():
    records = {
        "A": [comparison.metric_record("Global", "", "agreement", 0.8, "1"),
              comparison.metric_record("Global", "X", "jaccard", 0.5, "1"),
              comparison.metric_record("Global", "Y", "jaccard", 0.7, "1")],
        "B": [comparison.metric_record("Global", "", "agreement", 0.6, "1"),
              comparison.metric_record("Global", "X", "jaccard", 0.3, "1")],
    }  # fmt: skip
    summary = comparison.multi_model_rows(records, ["A", "B"])
    mean = {(r["biome"], r["metric"]): r["value"] for r in summary["MultiModelMean"]}
    spread = {(r["biome"], r["metric"]): r["value"] for r in summary["MultiModelSpread"]}
    assert mean["", "agreement"] == pytest.approx(0.7)
    assert spread["", "agreement"] == pytest.approx(np.std([0.8, 0.6], ddof=1))
    assert mean["Y", "jaccard"] == pytest.approx(0.7)
    assert np.isnan(spread["Y", "jaccard"])
    flags = {"A": [comparison.metric_record("Global", "X", "coverage_trend_difference_significant",
                                            1.0, "1")],
             "B": [comparison.metric_record("Global", "X", "coverage_trend_difference_significant",
                                            0.0, "1")]}  # fmt: skip
    summary = comparison.multi_model_rows(flags, ["A", "B"])
    assert summary["MultiModelMean"][0]["value"] == pytest.approx(0.5)  # share of models
    assert summary["MultiModelSpread"] == []
    values, labels, better = comparison.portrait_matrix(records, ["A", "B"])
    assert labels[0] == "agreement" and better[0] == "higher"
    assert values[0, 0] == pytest.approx(0.8)
    assert values[0, labels.index("mean Jaccard")] == pytest.approx(0.6)
    assert values[1, labels.index("mean Jaccard")] == pytest.approx(0.3)
    assert np.isnan(values[0, labels.index("seasonal RMSE (pp)")])


def test_region_without_ocean_box_is_an_error():
    area = box_area()
    area[:] = 0.0
    area[0, 0] = 1.0
    with pytest.raises(DiagnosticError, match="Equatorial Pacific"):
        comparison.lattice_region_masks(REGIONS, BOX, area > 0)
