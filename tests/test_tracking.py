"""Tests of carbon_biomes.core.classifier, the biome classifier (docs/method.md §3 and §5)."""

import json
import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from carbon_biomes.core.classifier import (
    MISSING_LABEL,
    BiomeClassifier,
    ClassifierSettings,
    EvaluationReport,
    agreement,
    evaluate_predictions,
    grid_search,
    load,
    required_boxes_per_biome,
    resolve_small_biomes,
)

# Planted RC regimes with realistic scales: slopes of fCO2 on SST (µatm/degC), DIC and ALK
# (µatm per mmol m-3). Labels deliberately not 0..K-1.
MEANS = np.array(
    [
        [6.0, 1.2, -1.1],
        [10.0, 2.0, -1.8],
        [16.0, 1.5, -2.5],
        [19.0, 2.8, -2.8],
        [8.0, 2.6, -1.4],
    ]
)
SPREAD = np.array([0.8, 0.1, 0.1])
LABELS = np.array([3, 5, 7, 8, 11])

# A small, fast network for tests that check plumbing rather than skill.
FAST = {"hidden_units": (16, 16), "epochs": 3, "l2": 0.0, "dropout": 0.1}


def make_boxes(n_per_biome: int | list[int], seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian clusters of box RCs, one per biome, shuffled."""
    rng = np.random.default_rng(seed)
    sizes = [n_per_biome] * len(MEANS) if isinstance(n_per_biome, int) else n_per_biome
    means = MEANS[: len(sizes)]
    x = np.concatenate(
        [m + rng.normal(size=(n, 3)) * SPREAD for m, n in zip(means, sizes, strict=True)]
    )
    y = np.repeat(LABELS[: len(sizes)], sizes)
    order = rng.permutation(y.size)
    return x[order], y[order]


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    return make_boxes(200)


@pytest.fixture(scope="module")
def fitted(data: tuple[np.ndarray, np.ndarray]) -> BiomeClassifier:
    """The paper's default architecture and training, trained once per module."""
    x, y = data
    return BiomeClassifier(ClassifierSettings()).fit(x, y)


# ----------------------------------------------------------------------------- fast tests
def test_import_does_not_import_tensorflow() -> None:
    code = (
        "import sys, carbon_biomes.core.classifier\n"
        "bad = [m for m in ('tensorflow', 'keras') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_settings_defaults_follow_the_paper() -> None:
    s = ClassifierSettings()
    assert s.hidden_units == (64, 128, 256, 128, 64)
    assert (s.activation, s.l2, s.dropout, s.optimizer) == ("relu", 0.01, 0.5, "adam")
    assert (s.learning_rate, s.batch_size, s.epochs, s.patience) == (1e-3, 32, 50, 5)
    assert (s.test_size, s.validation_size, s.seed) == (0.2, 0.2, 42)
    assert (s.ood_quantile, s.small_biome_strategy, s.rescale_per_month) == (
        0.999,
        "merge",
        False,
    )
    assert s.grid_search is False
    assert s.grid_epochs == (50, 100, 150, 200)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("hidden_units", ()),
        ("hidden_units", (64, 0)),
        ("dropout", 1.0),
        ("l2", -0.1),
        ("optimizer", "rmsprop"),
        ("learning_rate", 0.0),
        ("batch_size", 0),
        ("epochs", 2.5),
        ("test_size", 1.0),
        ("validation_size", 0.0),
        ("ood_quantile", 0.0),
        ("small_biome_strategy", "drop"),
        ("rescale_per_month", "yes"),
        ("cv_folds", 1),
        ("grid_optimizer", ("adam", "adagrad")),
        ("grid_epochs", ()),
        ("seed", True),
    ],
)
def test_settings_validation(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=field):
        ClassifierSettings(**{field: value})


def test_settings_from_mapping() -> None:
    s = ClassifierSettings.from_mapping({"hidden_units": [8, 4], "grid_epochs": [5]}, seed=1)
    assert s.hidden_units == (8, 4) and s.grid_epochs == (5,) and s.seed == 1
    assert ClassifierSettings.from_mapping(s.to_dict()) == s
    with pytest.raises(ValueError, match="unknown setting.*hiden_units.*biome classifier"):
        ClassifierSettings.from_mapping({"hiden_units": [8]})


def test_required_boxes_per_biome() -> None:
    assert required_boxes_per_biome(0.2, 0.2) == 7
    assert required_boxes_per_biome(0.2, 0.2, cv_folds=5) == 8
    assert required_boxes_per_biome(0.05, 0.2) == 20


def test_agreement() -> None:
    a = np.array([1, 2, 3, MISSING_LABEL, 2])
    b = np.array([1, 2, 1, 3, MISSING_LABEL])
    assert agreement(a, b) == pytest.approx(2 / 3)
    assert np.isnan(agreement([MISSING_LABEL], [1]))
    with pytest.raises(ValueError, match="shape"):
        agreement([1, 2], [1])


def test_evaluate_predictions() -> None:
    true = np.array([1, 1, 2, 2, 4, MISSING_LABEL])
    pred = np.array([1, 2, 2, 2, 1, 4])
    report = evaluate_predictions(true, pred)
    assert report.classes.tolist() == [1, 2, 4]
    assert report.n_boxes == 5
    assert report.accuracy == pytest.approx(0.6)
    assert report.confusion.tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 0]]
    assert report.support.tolist() == [2, 2, 1]
    assert report.recall.tolist() == pytest.approx([0.5, 1.0, 0.0])
    assert report.macro_f1 == pytest.approx(np.mean(report.f1))
    rows = report.to_records("MODEL")
    assert {r["metric"] for r in rows} == {
        "accuracy",
        "macro_f1",
        "n_boxes",
        "precision",
        "recall",
        "f1",
        "support",
    }
    assert len(rows) == 3 + 4 * 3
    assert all(set(r) == {"dataset", "biome", "metric", "value"} for r in rows)
    again = EvaluationReport.from_dict(report.to_dict())
    assert np.array_equal(again.confusion, report.confusion)


def test_resolve_small_biomes_merge_picks_nearest_centroid(
    caplog: pytest.LogCaptureFixture,
) -> None:
    x, y = make_boxes([50, 50, 3, 50, 50])
    # oracle: nearest centroid to biome 7 in z-scored RC space
    z = (x - x.mean(axis=0)) / x.std(axis=0)
    centroids = {k: z[y == k].mean(axis=0) for k in LABELS}
    dist = {k: np.linalg.norm(centroids[k] - centroids[7]) for k in LABELS if k != 7}
    nearest = min(dist, key=dist.get)
    with caplog.at_level(logging.WARNING, logger="carbon_biomes.core.classifier"):
        new, keep, actions = resolve_small_biomes(x, y, 10, "merge")
    assert keep.all()
    assert len(actions) == 1 and actions[0].biome == 7 and actions[0].n_boxes == 3
    assert actions[0].target == nearest
    assert actions[0].distance == pytest.approx(dist[nearest])
    assert 7 not in new and np.count_nonzero(new == nearest) == 53
    assert "Biome 7 has only 3 boxes" in caplog.text
    assert f"merged into biome {nearest}" in caplog.text
    # a small biome planted next to biome 8 goes to biome 8
    x[y == 7] = MEANS[3] + 0.2 * SPREAD
    new, _, actions = resolve_small_biomes(x, y, 10, "merge")
    assert actions[0].target == 8
    assert np.count_nonzero(new == 8) == 53


def test_fewer_than_two_biomes_raise() -> None:
    x, y = make_boxes([50, 3])
    with pytest.raises(ValueError, match="at least 2"):
        resolve_small_biomes(x, y, 10, "merge")
    with pytest.raises(ValueError, match="at least 2"):
        resolve_small_biomes(x, y, 10, "exclude")
    x, y = make_boxes([50])
    with pytest.raises(ValueError, match="at least 2"):
        BiomeClassifier().fit(x, y)


def test_unfitted_classifier_raises() -> None:
    with pytest.raises(RuntimeError, match="not fitted"):
        BiomeClassifier().predict(np.zeros((2, 3)))


# ----------------------------------------------------------------------------- trained networks
@pytest.mark.slow
def test_default_network_separates_planted_regimes(
    fitted: BiomeClassifier, data: tuple[np.ndarray, np.ndarray]
) -> None:
    report = fitted.test_metrics_
    assert report.classes.tolist() == LABELS.tolist()
    assert report.n_boxes == fitted.split_indices_["test"].size == 200
    assert report.macro_f1 >= 0.9
    # the same on fresh boxes drawn from the same regimes
    x_new, y_new = make_boxes(100, seed=99)
    assert fitted.evaluate(x_new, y_new).macro_f1 >= 0.9
    # labels are the original biome values; learned state is complete
    pred = fitted.predict(x_new)
    assert set(np.unique(pred.labels)) <= set(LABELS.tolist())
    assert set(fitted.history_) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert 1 <= fitted.best_epoch_ <= len(fitted.history_["loss"]) <= 50
    assert fitted.best_epoch_ == int(np.argmin(fitted.history_["val_loss"])) + 1
    assert np.allclose(pred.probabilities.sum(axis=1), 1.0, atol=1e-5)
    assert np.array_equal(pred.probability, pred.probabilities.max(axis=1))


@pytest.mark.slow
def test_splits_are_stratified_and_disjoint(
    fitted: BiomeClassifier, data: tuple[np.ndarray, np.ndarray]
) -> None:
    _, y = data
    parts = fitted.split_indices_
    all_rows = np.concatenate([parts["train"], parts["validation"], parts["test"]])
    assert np.array_equal(np.sort(all_rows), np.arange(y.size))
    assert (parts["train"].size, parts["validation"].size, parts["test"].size) == (640, 160, 200)
    for name in parts:
        counts = np.unique(y[parts[name]], return_counts=True)[1]
        assert counts.max() - counts.min() <= 1


@pytest.mark.slow
def test_scaler_is_fitted_on_training_split_only(
    fitted: BiomeClassifier, data: tuple[np.ndarray, np.ndarray]
) -> None:
    x, _ = data
    train = x[fitted.split_indices_["train"]]
    assert fitted.scaler_.n_samples_seen_ == train.shape[0]
    np.testing.assert_array_equal(fitted.scaler_.mean_, train.mean(axis=0))
    np.testing.assert_allclose(fitted.scaler_.scale_, train.std(axis=0), rtol=1e-12)
    assert not np.allclose(fitted.scaler_.mean_, x.mean(axis=0), rtol=0, atol=1e-6)


@pytest.mark.slow
def test_same_seed_gives_identical_results(
    fitted: BiomeClassifier, data: tuple[np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    x, y = data
    again = BiomeClassifier(ClassifierSettings()).fit(x, y)
    x_new, _ = make_boxes(100, seed=5)
    a, b = fitted.predict(x_new), again.predict(x_new)
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_array_equal(a.probabilities, b.probabilities)  # bitwise
    np.testing.assert_array_equal(a.mahalanobis, b.mahalanobis)
    assert fitted.history_ == again.history_
    for clf in (fitted, again):
        for w0, w1 in zip(fitted.model_.get_weights(), clf.model_.get_weights(), strict=True):
            np.testing.assert_array_equal(w0, w1)
    np.save(tmp_path / "a.npy", a.labels)
    np.save(tmp_path / "b.npy", b.labels)
    assert (tmp_path / "a.npy").read_bytes() == (tmp_path / "b.npy").read_bytes()


@pytest.mark.slow
def test_save_and_load_reproduce_predictions(fitted: BiomeClassifier, tmp_path: Path) -> None:
    written = fitted.save(tmp_path / "model")
    assert [p.name for p in written] == ["model.keras", "model.json"]
    assert all(p.is_file() for p in written)
    x_new, _ = make_boxes(60, seed=7)
    x_new[::10] = np.nan
    expected = fitted.predict(x_new)
    for path in (tmp_path / "model", written[0], written[1]):
        loaded = load(path)
        got = loaded.predict(x_new)
        np.testing.assert_array_equal(got.labels, expected.labels)
        np.testing.assert_array_equal(got.probabilities, expected.probabilities)
        np.testing.assert_array_equal(got.mahalanobis, expected.mahalanobis)
        np.testing.assert_array_equal(got.ood, expected.ood)
        np.testing.assert_array_equal(loaded.classes_, fitted.classes_)
        assert loaded.ood_threshold_ == fitted.ood_threshold_
        assert loaded.settings_ == fitted.settings_
        np.testing.assert_array_equal(
            loaded.test_metrics_.confusion, fitted.test_metrics_.confusion
        )
    # the files are what is compared: a loaded model is not the fitted one, and a changed
    # scaler in the JSON file changes the predictions
    assert loaded.model_ is not fitted.model_
    meta = json.loads(written[1].read_text(encoding="utf-8"))
    meta["scaler"]["mean"] = [m + 5.0 for m in meta["scaler"]["mean"]]
    written[1].write_text(json.dumps(meta), encoding="utf-8")
    shifted = load(tmp_path / "model").predict(x_new)
    assert not np.array_equal(shifted.probabilities, expected.probabilities, equal_nan=True)
    # a directory gets the default stem
    written = fitted.save(tmp_path)
    assert [p.name for p in written] == ["biome_classifier.keras", "biome_classifier.json"]
    np.testing.assert_array_equal(
        BiomeClassifier.load(tmp_path).predict(x_new).labels, expected.labels
    )


@pytest.mark.slow
def test_ood_flags_far_boxes_not_training_boxes(
    fitted: BiomeClassifier, data: tuple[np.ndarray, np.ndarray]
) -> None:
    x, _ = data
    train = fitted.split_indices_["train"]
    assert train.size < 1000
    pred_train = fitted.predict(x[train])
    assert not pred_train.ood.any()
    assert pred_train.mahalanobis.max() == pytest.approx(fitted.ood_threshold_)
    far = MEANS + 20 * x.std(axis=0) * np.array([1, -1, 1])
    far = np.vstack([far, MEANS - 20 * x.std(axis=0)])
    pred_far = fitted.predict(far)
    assert pred_far.ood.all()
    assert (pred_far.mahalanobis > fitted.ood_threshold_).all()
    assert (pred_far.labels != MISSING_LABEL).all()  # still labelled, but flagged


@pytest.mark.slow
def test_nan_rows_and_empty_input(fitted: BiomeClassifier) -> None:
    x, _ = make_boxes(10, seed=3)
    x[[0, 7]] = np.nan
    x[3, 1] = np.nan
    pred = fitted.predict(x)
    missing = np.zeros(x.shape[0], dtype=bool)
    missing[[0, 3, 7]] = True
    assert np.array_equal(pred.labels == MISSING_LABEL, missing)
    assert np.array_equal(pred.valid, ~missing)
    assert np.isnan(pred.probability[missing]).all()
    assert not np.isnan(pred.probability[~missing]).any()
    assert not pred.ood[missing].any()
    assert np.isnan(pred.mahalanobis[missing]).all()
    assert np.isnan(pred.probabilities[missing]).all()
    # valid rows are labelled as they would be alone
    np.testing.assert_array_equal(pred.labels[~missing], fitted.predict(x[~missing]).labels)
    for empty in (np.empty((0, 3)), []):
        out = fitted.predict(empty)
        assert len(out) == 0 and out.probabilities.shape == (0, LABELS.size)
        assert out.labels.dtype == np.int64 and out.ood.dtype == bool
    all_nan = fitted.predict(np.full((4, 3), np.nan))
    assert (all_nan.labels == MISSING_LABEL).all()
    with pytest.raises(ValueError, match="3 columns"):
        fitted.predict(np.zeros((2, 2)))


@pytest.mark.slow
def test_rescale_per_month_removes_a_uniform_shift(
    fitted: BiomeClassifier, data: tuple[np.ndarray, np.ndarray]
) -> None:
    x, y = data
    month = x[fitted.split_indices_["test"]]
    shift = np.array([4.0, 0.5, -0.5])  # every box of the month shifted alike
    shifted = month + shift
    plain = fitted.predict(month, rescale=False)
    kept = fitted.predict(shifted)  # default: training scaler, the shift is visible
    removed = fitted.predict(shifted, rescale=True)  # paper: the month's own scaler
    assert fitted.settings_.rescale_per_month is False
    assert agreement(kept.labels, plain.labels) < 0.8
    # the paper's behaviour cannot see the shift: same labels as the unshifted month rescaled
    rescaled = fitted.predict(month, rescale=True)
    assert agreement(removed.labels, rescaled.labels) >= 0.99
    assert not np.array_equal(kept.labels, removed.labels)
    # the setting selects the default
    paper = BiomeClassifier.__new__(BiomeClassifier)
    paper.__dict__.update(fitted.__dict__)
    paper.settings_ = fitted.settings_.replace(rescale_per_month=True)
    np.testing.assert_array_equal(paper.predict(shifted).labels, removed.labels)


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["merge", "exclude"])
def test_small_biome_is_merged_or_excluded(strategy: str, caplog: pytest.LogCaptureFixture) -> None:
    x, y = make_boxes([60, 60, 3, 60, 60], seed=1)
    x[y == 7] = MEANS[3] + 0.2 * SPREAD  # planted next to biome 8
    settings = ClassifierSettings(**FAST, small_biome_strategy=strategy)
    with caplog.at_level(logging.WARNING, logger="carbon_biomes.core.classifier"):
        clf = BiomeClassifier(settings).fit(x, y)
    assert "Biome 7 has only 3 boxes" in caplog.text
    assert clf.classes_.tolist() == [3, 5, 8, 11]
    (action,) = clf.small_biome_log_
    assert (action.biome, action.n_boxes, action.min_boxes) == (7, 3, 10)
    rows = np.concatenate(list(clf.split_indices_.values()))
    small = np.flatnonzero(y == 7)
    if strategy == "merge":
        assert action.action == "merged" and action.target == 8
        assert "merged into biome 8" in caplog.text
        assert np.isin(small, rows).all()
    else:
        assert action.action == "excluded" and action.target is None
        assert "excluded" in caplog.text
        assert not np.isin(small, rows).any() and rows.size == 240
    pred = clf.predict(x)
    assert 7 not in pred.labels


@pytest.mark.slow
def test_pooled_months_and_missing_rows_in_fit() -> None:
    x1, y1 = make_boxes(40, seed=1)
    x2, y2 = make_boxes(40, seed=2)
    x = np.vstack([x1, x2])
    y = np.concatenate([y1, y2])
    x[0] = np.nan
    y[1] = MISSING_LABEL
    clf = BiomeClassifier(ClassifierSettings(**FAST)).fit(x, y)
    rows = np.concatenate(list(clf.split_indices_.values()))
    assert rows.size == 398 and 0 not in rows and 1 not in rows
    assert clf.scaler_.n_samples_seen_ == clf.split_indices_["train"].size


@pytest.mark.slow
def test_grid_search_on_a_tiny_grid() -> None:
    x, y = make_boxes(30, seed=4)
    settings = ClassifierSettings(
        **{**FAST, "epochs": 50},
        cv_folds=2,
        grid_batch_size=(32,),
        grid_optimizer=("adam", "sgd"),
        grid_learning_rate=(0.01,),
        grid_epochs=(1, 3),
    )
    result = grid_search(x, y, settings)
    assert len(result.table) == 4
    assert {(r["optimizer"], r["epochs"]) for r in result.table} == {
        ("adam", 1),
        ("adam", 3),
        ("sgd", 1),
        ("sgd", 3),
    }
    assert all(0.0 <= r["mean_accuracy"] <= 1.0 and r["n_folds"] == 2 for r in result.table)
    best = max(r["mean_accuracy"] for r in result.table)
    assert result.best["mean_accuracy"] == best
    assert result.best_settings.optimizer == result.best["optimizer"]
    assert result.best_settings.epochs == result.best["epochs"]
    # wired into fit: the search runs on training+validation boxes and sets the final settings
    clf = BiomeClassifier(settings.replace(grid_search=True)).fit(x, y)
    assert clf.grid_search_ is not None
    assert clf.settings_.epochs in (1, 3) and clf.settings_.grid_search is True
    assert len(clf.history_["loss"]) <= clf.settings_.epochs
