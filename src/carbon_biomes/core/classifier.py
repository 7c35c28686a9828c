"""The biome classifier: a feed-forward neural network on box RCs (docs/method.md §3).

Detection (clustering of one reference month) gives, per box, a feature vector of raw regression
coefficients (RCs: the slopes of fCO2 on SST, DIC and ALK) and a biome label. Tracking trains a
classifier on these pairs and applies it to the RCs of every other month.

The classifier follows Mohanty et al. (2025) with the improvements listed in docs/method.md §5:

* one :class:`~sklearn.preprocessing.StandardScaler`, fitted on the training split only and reused
  for the validation split, the test split and every month predicted later (the paper refits a
  scaler on every month: ``rescale_per_month=True`` reproduces that);
* every random source seeded (Python, NumPy, TensorFlow, Keras layers, data splits) and
  TensorFlow's deterministic ops enabled, so identical inputs give identical labels;
* per-box softmax confidence and an out-of-distribution flag (Mahalanobis distance to the nearest
  biome centroid in the standardized RC space of the training split);
* biomes too small for the stratified splits are merged into their nearest biome or excluded, with
  a logged explanation, instead of crashing the split.

TensorFlow and Keras are imported lazily, inside the functions that need them:
``import carbon_biomes.core.classifier`` does not import TensorFlow.

Training on a reference *period* rather than one month needs nothing special: concatenate the
features and labels of the months (one row per box and month) and pass them to
:meth:`BiomeClassifier.fit`. Note that the same box appears in several months then, so the
stratified test split is not independent of the training split in space and the test scores are
optimistic.
"""

import dataclasses
import itertools
import json
import logging
import math
import os
import random
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Self

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.covariance import ledoit_wolf
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
)
from sklearn.model_selection import StratifiedKFold, train_test_split
from sklearn.preprocessing import StandardScaler

from carbon_biomes.core.errors import SettingsError
from carbon_biomes.core.validation import (
    check_bool,
    check_choice,
    check_int,
    check_number,
    settings_from_mapping,
    settings_to_dict,
)

__all__ = [
    "MISSING_LABEL",
    "BiomeClassifier",
    "EvaluationReport",
    "GridSearchResult",
    "Prediction",
    "SmallBiomeAction",
    "ClassifierSettings",
    "agreement",
    "evaluate_predictions",
    "grid_search",
    "load",
    "required_boxes_per_biome",
    "resolve_small_biomes",
]

logger = logging.getLogger(__name__)

#: Label given to boxes that cannot be classified (NaN features). Biome labels must differ from it.
MISSING_LABEL: int = 0

_FORMAT_NAME = "carbon_biomes.classifier"
_FORMAT_VERSION = 1
_DEFAULT_STEM = "biome_classifier"
_OPTIMIZERS = ("adam", "sgd")
_STRATEGIES = ("merge", "exclude")
_PREDICT_CHUNK = 65536


# --------------------------------------------------------------------------------------------
# Settings
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ClassifierSettings:
    """Settings of the tracking classifier; defaults are those of Mohanty et al. (2025).

    All fields can be overridden (the recipe passes them, see :meth:`from_mapping`). Values are
    validated when the object is created; lists are converted to tuples.

    Attributes
    ----------
    hidden_units
        Units of the hidden Dense layers, in order.
    activation
        Activation of the hidden layers (any Keras activation name).
    l2
        L2 kernel-regularization factor of each hidden Dense layer (the softmax layer is not
        regularized).
    dropout
        Dropout rate applied after each hidden Dense layer.
    optimizer
        ``"adam"`` or ``"sgd"`` (plain SGD without momentum).
    learning_rate
        Learning rate of the optimizer.
    batch_size
        Mini-batch size.
    epochs
        Maximum number of epochs.
    patience
        Early stopping: epochs without improvement of ``val_loss`` before training stops; the
        weights of the best epoch are restored.
    test_size
        Fraction of the boxes held out (stratified) for the final evaluation.
    validation_size
        Fraction of the remaining boxes held out (stratified) for early stopping.
    seed
        Seed of every random source (splits, weight initialization, dropout, shuffling).
    ood_quantile
        Quantile of the training-split Mahalanobis distances used as out-of-distribution
        threshold (``np.quantile(..., method="higher")``; a box is flagged when strictly beyond).
    ood_ridge
        Ridge added to the diagonal of each biome's (Ledoit-Wolf shrunk) covariance matrix
        before inversion, in standardized units.
    min_boxes_per_biome
        Smallest biome size accepted as is. The effective threshold is the larger of this value
        and :func:`required_boxes_per_biome` (the smallest size the stratified splits and, if
        enabled, the cross-validation can handle).
    small_biome_strategy
        ``"merge"``: a smaller biome is merged into the biome whose centroid in standardized RC
        space is nearest; ``"exclude"``: its boxes are dropped from training.
    rescale_per_month
        Default of ``rescale`` in :meth:`BiomeClassifier.predict`: ``True`` standardizes each
        predicted month with a scaler fitted on that month (the paper's behaviour, which removes
        real shifts of the RC distribution); ``False`` reuses the training scaler.
    grid_search
        Run the cross-validated grid search of docs/method.md §3.2 on the training+validation boxes
        before the final fit (expensive; off by default).
    cv_folds
        Number of stratified folds of the grid search.
    grid_batch_size, grid_optimizer, grid_learning_rate, grid_epochs
        Values searched by the grid search.
    """

    hidden_units: tuple[int, ...] = (64, 128, 256, 128, 64)
    activation: str = "relu"
    l2: float = 0.01
    dropout: float = 0.5
    optimizer: Literal["adam", "sgd"] = "adam"
    learning_rate: float = 1e-3
    batch_size: int = 32
    epochs: int = 50
    patience: int = 5
    test_size: float = 0.2
    validation_size: float = 0.2
    seed: int = 42
    ood_quantile: float = 0.999
    ood_ridge: float = 1e-6
    min_boxes_per_biome: int = 10
    small_biome_strategy: Literal["merge", "exclude"] = "merge"
    rescale_per_month: bool = False
    grid_search: bool = False
    cv_folds: int = 5
    grid_batch_size: tuple[int, ...] = (16, 32, 64)
    grid_optimizer: tuple[str, ...] = ("adam", "sgd")
    grid_learning_rate: tuple[float, ...] = (0.01, 0.001)
    grid_epochs: tuple[int, ...] = (50, 100, 150, 200)

    def __post_init__(self) -> None:
        for name in (
            "hidden_units",
            "grid_batch_size",
            "grid_optimizer",
            "grid_learning_rate",
            "grid_epochs",
        ):
            value = getattr(self, name)
            if isinstance(value, str | int | float):
                value = (value,)
            object.__setattr__(self, name, tuple(value))
        self._validate()

    def _validate(self) -> None:
        """Check every field (:mod:`carbon_biomes.core.validation`); raise SettingsError."""
        if not self.hidden_units:
            raise SettingsError("setting 'hidden_units' must list at least one layer size")
        for units in self.hidden_units:
            check_int("hidden_units entry", units, 1)
        if not isinstance(self.activation, str) or not self.activation:
            raise SettingsError(
                f"setting 'activation' must be a non-empty string, got {self.activation!r}"
            )
        check_number("l2", self.l2, 0.0)
        check_number("dropout", self.dropout, 0.0, 1.0, closed_high=False)
        check_choice("optimizer", self.optimizer, _OPTIMIZERS)
        check_number("learning_rate", self.learning_rate, 0.0, closed_low=False)
        check_int("batch_size", self.batch_size, 1)
        check_int("epochs", self.epochs, 1)
        check_int("patience", self.patience, 0)
        check_number("test_size", self.test_size, 0.0, 1.0, closed_low=False, closed_high=False)
        check_number(
            "validation_size", self.validation_size, 0.0, 1.0, closed_low=False, closed_high=False
        )
        check_int("seed", self.seed, 0)
        check_number("ood_quantile", self.ood_quantile, 0.0, 1.0, closed_low=False)
        check_number("ood_ridge", self.ood_ridge, 0.0)
        check_int("min_boxes_per_biome", self.min_boxes_per_biome, 1)
        check_choice("small_biome_strategy", self.small_biome_strategy, _STRATEGIES)
        check_bool("rescale_per_month", self.rescale_per_month)
        check_bool("grid_search", self.grid_search)
        check_int("cv_folds", self.cv_folds, 2)
        for name in ("grid_batch_size", "grid_optimizer", "grid_learning_rate", "grid_epochs"):
            if not getattr(self, name):
                raise SettingsError(f"setting '{name}' must list at least one value")
        for value in self.grid_batch_size:
            check_int("grid_batch_size entry", value, 1)
        for value in self.grid_optimizer:
            check_choice("grid_optimizer entry", value, _OPTIMIZERS)
        for value in self.grid_learning_rate:
            check_number("grid_learning_rate entry", value, 0.0, closed_low=False)
        for value in self.grid_epochs:
            check_int("grid_epochs entry", value, 1)

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any] | None = None, **overrides: Any) -> Self:
        """Build settings from a mapping (e.g. recipe options) plus keyword overrides.

        Parameters
        ----------
        mapping
            Field names and values; missing fields keep their defaults.
        **overrides
            Further field values, taking precedence over ``mapping``.

        Returns
        -------
        ClassifierSettings
            Validated settings.

        Raises
        ------
        ValueError
            On unknown keys or invalid values.
        """
        values = {**dict(mapping or {}), **overrides}
        return settings_from_mapping(cls, values, "the biome classifier")

    def to_dict(self) -> dict[str, Any]:
        """Return the settings as a JSON-serializable dictionary (tuples become lists)."""
        return settings_to_dict(self)

    def replace(self, **changes: Any) -> Self:
        """Return a validated copy with some fields changed."""
        return dataclasses.replace(self, **changes)


def required_boxes_per_biome(
    test_size: float = 0.2, validation_size: float = 0.2, cv_folds: int | None = None
) -> int:
    """Smallest biome size that the stratified splits can handle.

    A biome of this size is expected to put at least one box in each of the test, validation and
    training splits, and at least three boxes overall (``train_test_split`` with ``stratify``
    needs two members per class, and the second split again two members in what the first one
    left). With cross-validation, each class must also reach ``cv_folds`` boxes in the
    training+validation part, plus one of margin.

    Parameters
    ----------
    test_size, validation_size
        Split fractions (see :class:`ClassifierSettings`).
    cv_folds
        Number of stratified folds, or None when no cross-validation is run.

    Returns
    -------
    int
        Minimum number of boxes per biome (7 for the defaults without cross-validation, 8 with
        5 folds).
    """
    eps = 1e-9
    needs = [
        3,
        math.ceil(1.0 / test_size - eps),
        math.ceil(1.0 / ((1.0 - test_size) * validation_size) - eps),
        math.ceil(1.0 / ((1.0 - test_size) * (1.0 - validation_size)) - eps),
    ]
    if cv_folds is not None:
        needs.append(math.ceil((cv_folds + 1) / (1.0 - test_size) - eps))
    return int(max(needs))


# --------------------------------------------------------------------------------------------
# Result containers
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SmallBiomeAction:
    """Record of a biome merged or excluded because it was too small for the splits.

    Attributes
    ----------
    biome
        Original label of the small biome.
    n_boxes
        Its number of (valid) boxes at the time of the decision.
    min_boxes
        Effective minimum size that was not reached.
    action
        ``"merged"`` or ``"excluded"``.
    target
        Label of the biome it was merged into (None when excluded).
    distance
        Euclidean distance between the two centroids in standardized RC space (None when
        excluded).
    """

    biome: int
    n_boxes: int
    min_boxes: int
    action: Literal["merged", "excluded"]
    target: int | None = None
    distance: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return the record as a JSON-serializable dictionary."""
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Prediction:
    """Per-box result of :meth:`BiomeClassifier.predict`.

    Attributes
    ----------
    labels
        Predicted biome label (original label values), ``MISSING_LABEL`` where the features
        contain NaN. Shape (n,), int64.
    probability
        Softmax probability of the predicted biome; NaN for missing boxes. Shape (n,), float64.
    ood
        Out-of-distribution flag: Mahalanobis distance strictly greater than the training
        threshold; False for missing boxes. Shape (n,), bool.
    mahalanobis
        Mahalanobis distance of the standardized RCs to the nearest biome centroid; NaN for
        missing boxes. Shape (n,), float64.
    probabilities
        Full softmax output, columns ordered as ``classes``; NaN rows for missing boxes.
        Shape (n, K), float64.
    classes
        Biome labels of the columns of ``probabilities``. Shape (K,), int64.
    """

    labels: NDArray[np.int64]
    probability: NDArray[np.float64]
    ood: NDArray[np.bool_]
    mahalanobis: NDArray[np.float64]
    probabilities: NDArray[np.float64]
    classes: NDArray[np.int64]

    @property
    def valid(self) -> NDArray[np.bool_]:
        """Boxes that received a biome (features without NaN)."""
        return self.labels != MISSING_LABEL

    def __len__(self) -> int:
        return int(self.labels.shape[0])


@dataclass(frozen=True)
class EvaluationReport:
    """Classification scores of predicted against true biome labels.

    Attributes
    ----------
    classes
        Biome labels, in the order of the per-biome arrays and of the confusion matrix.
    accuracy
        Fraction of boxes correctly labelled.
    macro_f1
        Unweighted mean of the per-biome F1 scores.
    precision, recall, f1
        Per-biome scores (0 where undefined).
    support
        Number of true boxes per biome.
    confusion
        Confusion matrix, rows = true biome, columns = predicted biome, both in ``classes`` order.
    n_boxes
        Number of boxes evaluated.
    """

    classes: NDArray[np.int64]
    accuracy: float
    macro_f1: float
    precision: NDArray[np.float64]
    recall: NDArray[np.float64]
    f1: NDArray[np.float64]
    support: NDArray[np.int64]
    confusion: NDArray[np.int64]
    n_boxes: int

    def to_records(self, dataset: str) -> list[dict[str, Any]]:
        """Long-format rows ``(dataset, biome, metric, value)`` for a CSV file.

        Overall scores (``accuracy``, ``macro_f1``, ``n_boxes``) carry ``biome="all"``; per-biome
        scores (``precision``, ``recall``, ``f1``, ``support``) carry the biome label.

        Parameters
        ----------
        dataset
            Name written in the ``dataset`` column.

        Returns
        -------
        list of dict
            One dictionary per row, keys ``dataset``, ``biome``, ``metric``, ``value``.
        """
        rows: list[dict[str, Any]] = [
            {"dataset": dataset, "biome": "all", "metric": "accuracy", "value": self.accuracy},
            {"dataset": dataset, "biome": "all", "metric": "macro_f1", "value": self.macro_f1},
            {"dataset": dataset, "biome": "all", "metric": "n_boxes", "value": self.n_boxes},
        ]
        for i, biome in enumerate(self.classes.tolist()):
            for metric in ("precision", "recall", "f1", "support"):
                value = getattr(self, metric)[i].item()
                rows.append({"dataset": dataset, "biome": biome, "metric": metric, "value": value})
        return rows

    def to_dict(self) -> dict[str, Any]:
        """Return the report as a JSON-serializable dictionary."""
        return {
            f.name: (v.tolist() if isinstance(v := getattr(self, f.name), np.ndarray) else v)
            for f in dataclasses.fields(self)
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """Rebuild a report written by :meth:`to_dict`."""
        return cls(
            classes=np.asarray(data["classes"], dtype=np.int64),
            accuracy=float(data["accuracy"]),
            macro_f1=float(data["macro_f1"]),
            precision=np.asarray(data["precision"], dtype=np.float64),
            recall=np.asarray(data["recall"], dtype=np.float64),
            f1=np.asarray(data["f1"], dtype=np.float64),
            support=np.asarray(data["support"], dtype=np.int64),
            confusion=np.asarray(data["confusion"], dtype=np.int64).reshape(
                len(data["classes"]), len(data["classes"])
            ),
            n_boxes=int(data["n_boxes"]),
        )


@dataclass(frozen=True)
class GridSearchResult:
    """Result of :func:`grid_search`.

    Attributes
    ----------
    table
        One row per combination: ``batch_size``, ``optimizer``, ``learning_rate``, ``epochs``,
        ``mean_accuracy``, ``std_accuracy`` (over folds), ``n_folds``.
    best
        The row with the highest mean CV accuracy (first in grid order on ties).
    best_settings
        The input settings with the best ``batch_size``, ``optimizer``, ``learning_rate`` and
        ``epochs`` (used as maximum with early stopping in the final fit).
    """

    table: list[dict[str, Any]]
    best: dict[str, Any]
    best_settings: ClassifierSettings

    def to_dict(self) -> dict[str, Any]:
        """Return the result as a JSON-serializable dictionary."""
        return {"table": self.table, "best": self.best}


# --------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------
def _as_features(features: ArrayLike, n_features: int | None = None) -> NDArray[np.float64]:
    """Convert to a 2-D float64 array (n_boxes, n_features), checking the width."""
    x = np.asarray(features, dtype=np.float64)
    if x.ndim == 1 and x.size == 0:
        x = x.reshape(0, n_features if n_features is not None else 0)
    if x.ndim != 2:
        raise ValueError(f"features must be 2-D (n_boxes, n_features), got shape {x.shape}")
    if n_features is not None and x.shape[1] != n_features:
        raise ValueError(f"features must have {n_features} columns, got {x.shape[1]}")
    return x


def _as_labels(labels: ArrayLike, n: int) -> NDArray[np.int64]:
    """Convert labels to int64 (NaN -> MISSING_LABEL), checking length and integrality."""
    y = np.asarray(labels)
    if y.ndim != 1 or y.shape[0] != n:
        raise ValueError(f"labels must be 1-D with {n} entries (one per box), got shape {y.shape}")
    if np.issubdtype(y.dtype, np.floating):
        finite = np.isfinite(y)
        if np.any(y[finite] != np.round(y[finite])):
            raise ValueError("labels must be integer biome numbers")
        out = np.full(n, MISSING_LABEL, dtype=np.int64)
        out[finite] = y[finite].astype(np.int64)
        return out
    if not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"labels must be integer biome numbers, got dtype {y.dtype}")
    return y.astype(np.int64)


def _zscore(x: NDArray[np.float64]) -> NDArray[np.float64]:
    """Standardize columns (population standard deviation; constant columns are centred only)."""
    mean = x.mean(axis=0)
    std = x.std(axis=0)
    std[std == 0] = 1.0
    return (x - mean) / std


def agreement(labels_a: ArrayLike, labels_b: ArrayLike) -> float:
    """Fraction of boxes carrying the same label in two labellings, ignoring missing boxes.

    Typical use: tracked against detected labels in the reference month.

    Parameters
    ----------
    labels_a, labels_b
        Label arrays of the same shape. Boxes where either is ``MISSING_LABEL`` (or NaN) are
        ignored.

    Returns
    -------
    float
        Agreement in [0, 1]; NaN when no box carries a label in both.
    """
    a = np.asarray(labels_a)
    b = np.asarray(labels_b)
    if a.shape != b.shape:
        raise ValueError(f"label arrays differ in shape: {a.shape} and {b.shape}")
    valid = (a != MISSING_LABEL) & (b != MISSING_LABEL)
    if np.issubdtype(a.dtype, np.floating):
        valid &= ~np.isnan(a)
    if np.issubdtype(b.dtype, np.floating):
        valid &= ~np.isnan(b)
    n = int(np.count_nonzero(valid))
    if n == 0:
        return float("nan")
    return float(np.count_nonzero(a[valid] == b[valid]) / n)


def evaluate_predictions(
    true_labels: ArrayLike, predicted_labels: ArrayLike, classes: ArrayLike | None = None
) -> EvaluationReport:
    """Accuracy, per-biome precision/recall/F1/support, macro-F1 and confusion matrix.

    Parameters
    ----------
    true_labels, predicted_labels
        Biome labels per box. Boxes where either is ``MISSING_LABEL`` are ignored.
    classes
        Biome labels to report, in order; default: the sorted union of both label sets.

    Returns
    -------
    EvaluationReport
        The scores (from :mod:`sklearn.metrics`, undefined precision/recall set to 0).
    """
    t = np.asarray(true_labels).astype(np.int64).ravel()
    p = np.asarray(predicted_labels).astype(np.int64).ravel()
    if t.shape != p.shape:
        raise ValueError(f"label arrays differ in shape: {t.shape} and {p.shape}")
    keep = (t != MISSING_LABEL) & (p != MISSING_LABEL)
    t, p = t[keep], p[keep]
    if classes is None:
        cls = np.union1d(t, p).astype(np.int64)
    else:
        cls = np.asarray(classes, dtype=np.int64).ravel()
    if t.size == 0:
        k = cls.size
        nan = np.full(k, np.nan)
        return EvaluationReport(
            cls,
            float("nan"),
            float("nan"),
            nan,
            nan.copy(),
            nan.copy(),
            np.zeros(k, np.int64),
            np.zeros((k, k), np.int64),
            0,
        )
    precision, recall, f1, support = precision_recall_fscore_support(
        t, p, labels=cls, zero_division=0.0
    )
    return EvaluationReport(
        classes=cls,
        accuracy=float(accuracy_score(t, p)),
        macro_f1=float(f1_score(t, p, labels=cls, average="macro", zero_division=0.0)),
        precision=np.asarray(precision, dtype=np.float64),
        recall=np.asarray(recall, dtype=np.float64),
        f1=np.asarray(f1, dtype=np.float64),
        support=np.asarray(support, dtype=np.int64),
        confusion=confusion_matrix(t, p, labels=cls).astype(np.int64),
        n_boxes=int(t.size),
    )


def resolve_small_biomes(
    features: ArrayLike,
    labels: ArrayLike,
    min_boxes: int,
    strategy: Literal["merge", "exclude"] = "merge",
) -> tuple[NDArray[np.int64], NDArray[np.bool_], list[SmallBiomeAction]]:
    """Merge or exclude biomes with fewer than ``min_boxes`` boxes.

    With ``"merge"``, the smallest deficient biome (lowest label on ties) is relabelled as the
    biome whose centroid is nearest (Euclidean distance in RC space standardized over all the
    given boxes); centroids and sizes are updated and the step repeats until every biome is
    large enough. With ``"exclude"``, all deficient biomes are dropped at once. Each decision is
    logged with ``logging.warning``.

    Parameters
    ----------
    features
        RCs of valid boxes, shape (n, n_features), without NaN.
    labels
        Biome labels, shape (n,).
    min_boxes
        Minimum biome size.
    strategy
        ``"merge"`` or ``"exclude"``.

    Returns
    -------
    labels : ndarray of int64
        Labels after merging (unchanged for excluded boxes).
    keep : ndarray of bool
        False for boxes of excluded biomes.
    actions : list of SmallBiomeAction
        What was done, in order.

    Raises
    ------
    ValueError
        If fewer than two biomes remain.
    """
    if strategy not in _STRATEGIES:
        raise ValueError(f"strategy must be one of {_STRATEGIES}, got {strategy!r}")
    x = _as_features(features)
    y = _as_labels(labels, x.shape[0]).copy()
    keep = np.ones(y.shape[0], dtype=bool)
    actions: list[SmallBiomeAction] = []
    classes, counts = np.unique(y, return_counts=True)
    if classes.size < 2:
        raise ValueError(
            f"Tracking needs at least 2 biomes, got {classes.size} ({classes.tolist()})"
        )
    if strategy == "exclude":
        for biome, count in zip(classes.tolist(), counts.tolist(), strict=True):
            if count < min_boxes:
                logger.warning(
                    "Biome %s has only %d boxes, fewer than the %d the stratified splits need: "
                    "excluded from training (it will never be predicted)",
                    biome,
                    count,
                    min_boxes,
                )
                actions.append(SmallBiomeAction(biome, count, min_boxes, "excluded"))
                keep &= y != biome
        remaining = np.unique(y[keep])
        if remaining.size < 2:
            raise ValueError(
                f"After excluding biomes with fewer than {min_boxes} boxes, "
                f"{remaining.size} biome(s) remain; tracking needs at least 2"
            )
        return y, keep, actions

    z = _zscore(x)
    while True:
        classes, counts = np.unique(y, return_counts=True)
        small = counts < min_boxes
        if not np.any(small):
            break
        if classes.size < 2:
            break
        order = np.lexsort((classes, counts))
        i = int(next(j for j in order if small[j]))
        biome, count = int(classes[i]), int(counts[i])
        centroids = np.stack([z[y == c].mean(axis=0) for c in classes])
        dist = np.linalg.norm(centroids - centroids[i], axis=1)
        dist[i] = np.inf
        j = int(np.argmin(dist))
        target = int(classes[j])
        logger.warning(
            "Biome %s has only %d boxes, fewer than the %d the stratified splits need: merged "
            "into biome %s, whose centroid in standardized RC space is nearest (distance %.3g)",
            biome,
            count,
            min_boxes,
            target,
            dist[j],
        )
        actions.append(SmallBiomeAction(biome, count, min_boxes, "merged", target, float(dist[j])))
        y[y == biome] = target
    remaining = np.unique(y)
    if remaining.size < 2:
        raise ValueError(
            f"After merging biomes with fewer than {min_boxes} boxes, only {remaining.size} "
            "biome remains; tracking needs at least 2"
        )
    return y, keep, actions


# --------------------------------------------------------------------------------------------
# TensorFlow / Keras (lazy)
# --------------------------------------------------------------------------------------------
def _import_keras() -> Any:
    """Import TensorFlow quietly and return the ``keras`` module."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    import keras
    import tensorflow as tf  # noqa: F401

    return keras


def _set_seeds(seed: int) -> None:
    """Seed Python, NumPy, TensorFlow and Keras, and make TensorFlow ops deterministic.

    ``enable_op_determinism`` is process-wide and stays on.
    """
    keras = _import_keras()
    import tensorflow as tf

    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002 - the legacy global generator is one of the sources
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def _build_model(n_features: int, n_classes: int, settings: ClassifierSettings) -> Any:
    """Build and compile the feed-forward network (explicit seeds and layer names)."""
    keras = _import_keras()
    inputs = keras.Input(shape=(n_features,), name="rcs")
    x = inputs
    for i, units in enumerate(settings.hidden_units, start=1):
        x = keras.layers.Dense(
            units,
            activation=settings.activation,
            kernel_regularizer=keras.regularizers.L2(settings.l2) if settings.l2 > 0 else None,
            kernel_initializer=keras.initializers.GlorotUniform(seed=settings.seed + i),
            name=f"dense_{i}",
        )(x)
        if settings.dropout > 0:
            x = keras.layers.Dropout(
                settings.dropout, seed=settings.seed + 1000 + i, name=f"dropout_{i}"
            )(x)
    outputs = keras.layers.Dense(
        n_classes,
        activation="softmax",
        kernel_initializer=keras.initializers.GlorotUniform(seed=settings.seed),
        name="softmax",
    )(x)
    model = keras.Model(inputs, outputs, name="carbon_biome_tracker")
    if settings.optimizer == "adam":
        optimizer = keras.optimizers.Adam(learning_rate=settings.learning_rate)
    else:
        optimizer = keras.optimizers.SGD(learning_rate=settings.learning_rate)
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def _predict_proba(model: Any, z: NDArray[np.float64]) -> NDArray[np.float64]:
    """Softmax output of the network (inference mode) for standardized features."""
    if z.shape[0] == 0:
        return np.empty((0, int(model.outputs[0].shape[-1])), dtype=np.float64)
    parts = [
        np.asarray(model(z[i : i + _PREDICT_CHUNK].astype(np.float32), training=False))
        for i in range(0, z.shape[0], _PREDICT_CHUNK)
    ]
    return np.concatenate(parts).astype(np.float64)


def _train_network(
    x_train: NDArray[np.float64],
    y_train: NDArray[np.int64],
    validation: tuple[NDArray[np.float64], NDArray[np.int64]] | None,
    n_classes: int,
    settings: ClassifierSettings,
    early_stopping: bool = True,
) -> tuple[Any, dict[str, list[float]]]:
    """Seed everything, build the network and train it (optionally with early stopping)."""
    keras = _import_keras()
    import tensorflow as tf

    _set_seeds(settings.seed)
    model = _build_model(x_train.shape[1], n_classes, settings)
    cbs = []
    if validation is not None and early_stopping:
        cbs.append(
            keras.callbacks.EarlyStopping(
                monitor="val_loss", patience=settings.patience, restore_best_weights=True
            )
        )
    train_data = (
        tf.data.Dataset.from_tensor_slices((x_train.astype(np.float32), y_train))
        .shuffle(x_train.shape[0], seed=settings.seed, reshuffle_each_iteration=True)
        .batch(settings.batch_size)
    )
    val_data = None
    if validation is not None:
        val_data = tf.data.Dataset.from_tensor_slices(
            (validation[0].astype(np.float32), validation[1])
        ).batch(max(settings.batch_size, 1024))
    history = model.fit(
        train_data,
        epochs=settings.epochs,
        validation_data=val_data,
        shuffle=False,  # the dataset reshuffles itself each epoch, with the seed
        callbacks=cbs,
        verbose=0,
    )
    hist = {k: [float(v) for v in vals] for k, vals in history.history.items()}
    return model, hist


# --------------------------------------------------------------------------------------------
# Grid search
# --------------------------------------------------------------------------------------------
def grid_search(
    features: ArrayLike, labels: ArrayLike, settings: ClassifierSettings | None = None
) -> GridSearchResult:
    """Stratified k-fold cross-validated grid search (docs/method.md §3.2).

    Every combination of ``grid_batch_size`` × ``grid_optimizer`` × ``grid_learning_rate`` ×
    ``grid_epochs`` is scored by its mean validation accuracy over ``cv_folds`` stratified
    folds (shuffled with ``seed``). In each fold the scaler is fitted on the fold's training
    part, and the network is trained for a fixed number of epochs without early stopping (the
    number of epochs is a searched parameter). Because training is seeded and deterministic, one
    run of ``max(grid_epochs)`` epochs per fold scores every epoch count of the grid at once; the
    result equals that of separate runs.

    Small biomes are handled as in :meth:`BiomeClassifier.fit`, with at least ``cv_folds + 1``
    boxes per biome. :meth:`BiomeClassifier.fit` with ``grid_search=True`` calls this on the
    training+validation boxes only (never on the test split).

    Parameters
    ----------
    features
        RCs, shape (n, n_features); rows with NaN are dropped.
    labels
        Biome labels, shape (n,); ``MISSING_LABEL`` rows are dropped.
    settings
        Grids and all other settings; defaults of :class:`ClassifierSettings` when None.

    Returns
    -------
    GridSearchResult
        Table of mean CV accuracy per combination and the best settings.
    """
    settings = settings or ClassifierSettings()
    x = _as_features(features)
    y = _as_labels(labels, x.shape[0])
    valid = np.all(np.isfinite(x), axis=1) & (y != MISSING_LABEL)
    x, y = x[valid], y[valid]
    min_boxes = max(settings.min_boxes_per_biome, settings.cv_folds + 1)
    y, keep, _ = resolve_small_biomes(x, y, min_boxes, settings.small_biome_strategy)
    x, y = x[keep], y[keep]
    classes = np.unique(y)
    y_idx = np.searchsorted(classes, y)

    folds = list(
        StratifiedKFold(n_splits=settings.cv_folds, shuffle=True, random_state=settings.seed).split(
            x, y_idx
        )
    )
    max_epochs = max(settings.grid_epochs)
    t0 = time.perf_counter()
    table: list[dict[str, Any]] = []
    for batch_size, optimizer, learning_rate in itertools.product(
        settings.grid_batch_size, settings.grid_optimizer, settings.grid_learning_rate
    ):
        run_settings = settings.replace(
            batch_size=batch_size,
            optimizer=optimizer,
            learning_rate=learning_rate,
            epochs=max_epochs,
        )
        scores: dict[int, list[float]] = {e: [] for e in settings.grid_epochs}
        for train_idx, val_idx in folds:
            scaler = StandardScaler().fit(x[train_idx])
            _, history = _train_network(
                scaler.transform(x[train_idx]),
                y_idx[train_idx],
                (scaler.transform(x[val_idx]), y_idx[val_idx]),
                classes.size,
                run_settings,
                early_stopping=False,
            )
            for e in settings.grid_epochs:
                scores[e].append(history["val_accuracy"][e - 1])
        for e in settings.grid_epochs:
            table.append(
                {
                    "batch_size": int(batch_size),
                    "optimizer": str(optimizer),
                    "learning_rate": float(learning_rate),
                    "epochs": int(e),
                    "mean_accuracy": float(np.mean(scores[e])),
                    "std_accuracy": float(np.std(scores[e])),
                    "n_folds": settings.cv_folds,
                }
            )
    best_i = int(np.argmax([row["mean_accuracy"] for row in table]))
    best = dict(table[best_i])
    best_settings = settings.replace(
        batch_size=best["batch_size"],
        optimizer=best["optimizer"],
        learning_rate=best["learning_rate"],
        epochs=best["epochs"],
    )
    logger.info(
        "Grid search over %d combinations x %d folds in %.1f s: best batch_size=%d, "
        "optimizer=%s, learning_rate=%g, epochs=%d (mean CV accuracy %.4f)",
        len(table),
        settings.cv_folds,
        time.perf_counter() - t0,
        best["batch_size"],
        best["optimizer"],
        best["learning_rate"],
        best["epochs"],
        best["mean_accuracy"],
    )
    return GridSearchResult(table=table, best=best, best_settings=best_settings)


# --------------------------------------------------------------------------------------------
# Classifier
# --------------------------------------------------------------------------------------------
@dataclass
class _OODModel:
    """Biome centroids and inverse covariances in standardized space, plus the threshold."""

    centroids: NDArray[np.float64]
    inverse_covariances: NDArray[np.float64]
    threshold: float

    @classmethod
    def fit(
        cls,
        z: NDArray[np.float64],
        y_idx: NDArray[np.int64],
        n_classes: int,
        quantile: float,
        ridge: float,
    ) -> Self:
        d = z.shape[1]
        centroids = np.empty((n_classes, d))
        inverse = np.empty((n_classes, d, d))
        for k in range(n_classes):
            members = z[y_idx == k]
            centroids[k] = members.mean(axis=0)
            if members.shape[0] > 1:
                cov, _ = ledoit_wolf(members)
            else:
                cov = np.zeros((d, d))
            inverse[k] = np.linalg.inv(cov + ridge * np.eye(d))
        model = cls(centroids, inverse, 0.0)
        model.threshold = float(np.quantile(model.distance(z), quantile, method="higher"))
        return model

    def distance(self, z: NDArray[np.float64]) -> NDArray[np.float64]:
        """Mahalanobis distance of each row to the nearest centroid."""
        if z.shape[0] == 0:
            return np.empty(0)
        diff = z[:, None, :] - self.centroids[None, :, :]
        sq = np.einsum("nkd,kde,nke->nk", diff, self.inverse_covariances, diff)
        return np.sqrt(np.maximum(sq.min(axis=1), 0.0))

    def to_dict(self) -> dict[str, Any]:
        return {
            "centroids": self.centroids.tolist(),
            "inverse_covariances": self.inverse_covariances.tolist(),
            "threshold": self.threshold,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        return cls(
            np.asarray(data["centroids"], dtype=np.float64),
            np.asarray(data["inverse_covariances"], dtype=np.float64),
            float(data["threshold"]),
        )


def _usable_rows(x: NDArray[np.float64], y: NDArray[np.int64]) -> NDArray[np.int64]:
    """Rows with finite features and a biome label."""
    valid = np.all(np.isfinite(x), axis=1) & (y != MISSING_LABEL)
    n_dropped = int(np.count_nonzero(~valid))
    if n_dropped:
        logger.info("Dropping %d boxes with NaN features or missing labels", n_dropped)
    return np.flatnonzero(valid)


def _min_biome_size(settings: ClassifierSettings) -> int:
    """The smallest biome accepted as is: the setting, raised to what the splits need."""
    required = required_boxes_per_biome(
        settings.test_size,
        settings.validation_size,
        settings.cv_folds if settings.grid_search else None,
    )
    min_boxes = max(settings.min_boxes_per_biome, required)
    if min_boxes > settings.min_boxes_per_biome:
        logger.info(
            "min_boxes_per_biome raised from %d to %d, the minimum the splits need",
            settings.min_boxes_per_biome,
            min_boxes,
        )
    return min_boxes


def _stratified_splits(
    y_idx: NDArray[np.int64], settings: ClassifierSettings
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]:
    """Seeded stratified train, validation and test positions (sorted), and train+validation."""
    positions = np.arange(y_idx.size)
    trainval, test = train_test_split(
        positions, test_size=settings.test_size, stratify=y_idx, random_state=settings.seed
    )
    train, val = train_test_split(
        trainval,
        test_size=settings.validation_size,
        stratify=y_idx[trainval],
        random_state=settings.seed,
    )
    return np.sort(train), np.sort(val), np.sort(test), trainval


def _train_with_early_stopping(
    z_train: NDArray[np.float64],
    y_train: NDArray[np.int64],
    validation: tuple[NDArray[np.float64], NDArray[np.int64]],
    n_classes: int,
    settings: ClassifierSettings,
) -> tuple[Any, dict[str, list[float]], int, float]:
    """Train the network; return it, its history, the restored epoch and the training time."""
    t0 = time.perf_counter()
    model, history = _train_network(z_train, y_train, validation, n_classes, settings)
    seconds = time.perf_counter() - t0
    val_loss = np.asarray(history.get("val_loss", [np.nan]))
    best_epoch = int(np.nanargmin(val_loss)) + 1 if np.any(np.isfinite(val_loss)) else 0
    logger.info(
        "Biome network trained on %d boxes (%d validation, %d biomes): %d epochs run (max %d), "
        "best val_loss %.4f at epoch %d, %.1f s",
        z_train.shape[0],
        validation[0].shape[0],
        n_classes,
        len(val_loss),
        settings.epochs,
        float(np.nanmin(val_loss)) if best_epoch else float("nan"),
        best_epoch,
        seconds,
    )
    return model, history, best_epoch, seconds


class BiomeClassifier:
    """Feed-forward network that assigns carbon-biome labels to boxes from their RCs.

    scikit-learn style: ``__init__`` only stores the settings, :meth:`fit` learns and returns
    ``self``; learned state lives in attributes with a trailing underscore.

    Parameters
    ----------
    settings
        Tracking settings; :class:`ClassifierSettings` defaults when None.

    Attributes
    ----------
    settings_ : ClassifierSettings
        Settings used for the final fit (after the grid search, if any).
    model_ : keras.Model
        The trained network (input: standardized RCs; output: softmax over ``classes_``).
    scaler_ : sklearn.preprocessing.StandardScaler
        Scaler fitted on the training split only.
    classes_ : ndarray of int64
        Original biome labels, in the order of the network's outputs.
    n_features_in_ : int
        Number of features (RCs) per box.
    history_ : dict of list of float
        Per-epoch ``loss``, ``accuracy``, ``val_loss``, ``val_accuracy``.
    best_epoch_ : int
        Epoch (1-based) whose weights were restored (lowest ``val_loss``).
    test_metrics_ : EvaluationReport
        Scores on the held-out test split.
    small_biome_log_ : list of SmallBiomeAction
        Biomes merged or excluded before training.
    split_indices_ : dict of ndarray
        Row indices (into the arrays given to :meth:`fit`) of the ``train``, ``validation`` and
        ``test`` splits; rows with NaN features, missing labels or excluded biomes are in none.
    ood_threshold_ : float
        Mahalanobis distance above which a box is out of distribution.
    grid_search_ : GridSearchResult or None
        Result of the grid search when ``settings.grid_search`` is true.
    training_seconds_ : float
        Wall-clock time of the final network training.
    """

    def __init__(self, settings: ClassifierSettings | None = None) -> None:
        self.settings = settings

    # ----------------------------------------------------------------------------- fitting
    def fit(self, features: ArrayLike, labels: ArrayLike) -> Self:
        """Train the classifier on boxes with known biome labels.

        Rows with NaN features or ``MISSING_LABEL`` are dropped; biomes smaller than the splits
        need are merged or excluded (:func:`resolve_small_biomes`); the remaining boxes are split
        (stratified, ``seed``) into test, validation and training sets; the scaler is fitted on
        the training set; the network is trained with early stopping on the validation set and
        evaluated on the test set.

        To train on a reference period, concatenate the boxes of its months (one row per box and
        month) and pass the pooled arrays.

        Parameters
        ----------
        features
            Raw RCs, shape (n_boxes, n_features) (n_features = 3: SST, DIC, ALK slopes).
        labels
            Biome labels, shape (n_boxes,), integers different from ``MISSING_LABEL``.

        Returns
        -------
        BiomeClassifier
            ``self``, fitted.

        Raises
        ------
        ValueError
            On malformed input, or when fewer than 2 biomes remain.
        """
        settings = self.settings if self.settings is not None else ClassifierSettings()
        x_all = _as_features(features)
        y_all = _as_labels(labels, x_all.shape[0])
        rows = _usable_rows(x_all, y_all)
        y, keep, actions = resolve_small_biomes(
            x_all[rows], y_all[rows], _min_biome_size(settings), settings.small_biome_strategy
        )
        rows, y = rows[keep], y[keep]
        x = x_all[rows]
        classes = np.unique(y)
        y_idx = np.searchsorted(classes, y).astype(np.int64)
        train, val, test, trainval = _stratified_splits(y_idx, settings)

        search = None
        if settings.grid_search:
            search = grid_search(x[trainval], y[trainval], settings)
            settings = search.best_settings

        scaler = StandardScaler().fit(x[train])
        z_train, z_val, z_test = (scaler.transform(x[s]) for s in (train, val, test))
        model, history, best_epoch, seconds = _train_with_early_stopping(
            z_train, y_idx[train], (z_val, y_idx[val]), classes.size, settings
        )

        self.settings_ = settings
        self.model_ = model
        self.scaler_ = scaler
        self.classes_ = classes.astype(np.int64)
        self.n_features_in_ = int(x.shape[1])
        self.history_ = history
        self.best_epoch_ = best_epoch
        self.small_biome_log_ = actions
        self.split_indices_ = {"train": rows[train], "validation": rows[val], "test": rows[test]}
        self._ood = _OODModel.fit(
            z_train, y_idx[train], classes.size, settings.ood_quantile, settings.ood_ridge
        )
        self.ood_threshold_ = self._ood.threshold
        self.grid_search_ = search
        self.training_seconds_ = seconds
        test_pred = self.classes_[np.argmax(_predict_proba(model, z_test), axis=1)]
        self.test_metrics_ = evaluate_predictions(y[test], test_pred, self.classes_)
        logger.info(
            "Test split: accuracy %.4f, macro-F1 %.4f",
            self.test_metrics_.accuracy,
            self.test_metrics_.macro_f1,
        )
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "model_"):
            raise RuntimeError("This BiomeClassifier is not fitted yet: call fit() or load()")

    # ----------------------------------------------------------------------------- predicting
    def predict(self, features: ArrayLike, rescale: bool | None = None) -> Prediction:
        """Assign a biome to each box of one month (or any set of boxes).

        Parameters
        ----------
        features
            Raw RCs, shape (n_boxes, n_features). Rows containing NaN get ``MISSING_LABEL``,
            probability NaN, Mahalanobis distance NaN and ``ood=False``.
        rescale
            False: standardize with the training scaler (default of this project). True:
            standardize the given boxes with a scaler fitted on them (the paper's behaviour; it
            removes any uniform shift of the RC distribution). None: use
            ``settings_.rescale_per_month``. The out-of-distribution test uses the same
            standardized features as the network.

        Returns
        -------
        Prediction
            Labels (original biome values), probability, OOD flag and distance per box.
        """
        self._check_fitted()
        x = _as_features(features, self.n_features_in_)
        if rescale is None:
            rescale = self.settings_.rescale_per_month
        n = x.shape[0]
        k = self.classes_.size
        labels = np.full(n, MISSING_LABEL, dtype=np.int64)
        probability = np.full(n, np.nan)
        probabilities = np.full((n, k), np.nan)
        ood = np.zeros(n, dtype=bool)
        distance = np.full(n, np.nan)
        valid = np.all(np.isfinite(x), axis=1)
        if np.any(valid):
            xv = x[valid]
            scaler = StandardScaler().fit(xv) if rescale else self.scaler_
            z = scaler.transform(xv)
            proba = _predict_proba(self.model_, z)
            idx = np.argmax(proba, axis=1)
            d = self._ood.distance(z)
            labels[valid] = self.classes_[idx]
            probability[valid] = proba[np.arange(idx.size), idx]
            probabilities[valid] = proba
            distance[valid] = d
            ood[valid] = d > self._ood.threshold
        return Prediction(
            labels=labels,
            probability=probability,
            ood=ood,
            mahalanobis=distance,
            probabilities=probabilities,
            classes=self.classes_.copy(),
        )

    def evaluate(
        self, features: ArrayLike, labels: ArrayLike, rescale: bool | None = None
    ) -> EvaluationReport:
        """Predict ``features`` and score the result against ``labels``.

        Parameters
        ----------
        features
            Raw RCs, shape (n_boxes, n_features).
        labels
            True biome labels, shape (n_boxes,). Labels of biomes merged during :meth:`fit` are
            *not* translated: pass labels mapped with :attr:`small_biome_log_` if needed.
        rescale
            As in :meth:`predict`.

        Returns
        -------
        EvaluationReport
            Scores over the boxes where both labels are present.
        """
        pred = self.predict(features, rescale=rescale)
        return evaluate_predictions(labels, pred.labels)

    # ----------------------------------------------------------------------------- persistence
    def save(self, path: str | os.PathLike[str]) -> list[Path]:
        """Write the classifier as ``<stem>.keras`` (network) and ``<stem>.json`` (the rest).

        The JSON file holds the format version, the settings, the class labels, the scaler
        (mean, scale, variance, sample count), the OOD centroids, inverse covariances and
        threshold, the training history, the test scores, the small-biome log and the split
        sizes. Floats are written with full (round-trip) precision, so :func:`load` reproduces
        predictions exactly.

        Parameters
        ----------
        path
            An existing directory (files ``biome_classifier.keras`` and ``biome_classifier.json``
            are written in it) or a file stem (a ``.keras`` or ``.json`` suffix is stripped);
            missing parent directories are created.

        Returns
        -------
        list of Path
            The files written: ``[<stem>.keras, <stem>.json]``.
        """
        self._check_fitted()
        stem = _stem(path)
        stem.parent.mkdir(parents=True, exist_ok=True)
        model_path = stem.with_name(stem.name + ".keras")
        meta_path = stem.with_name(stem.name + ".json")
        with warnings.catch_warnings():
            # Keras' serializer calls np.array on TF variables: harmless NumPy 2 deprecation noise
            warnings.filterwarnings(
                "ignore",
                message="__array__ implementation doesn't accept a copy keyword",
                category=DeprecationWarning,
            )
            self.model_.save(model_path)
        from carbon_biomes import __version__

        meta = {
            "format": _FORMAT_NAME,
            "format_version": _FORMAT_VERSION,
            "carbon_biomes_version": __version__,
            "model_file": model_path.name,
            "settings": self.settings_.to_dict(),
            "classes": self.classes_.tolist(),
            "n_features_in": self.n_features_in_,
            "scaler": {
                "mean": self.scaler_.mean_.tolist(),
                "scale": self.scaler_.scale_.tolist(),
                "var": self.scaler_.var_.tolist(),
                "n_samples_seen": int(self.scaler_.n_samples_seen_),
            },
            "ood": self._ood.to_dict(),
            "history": self.history_,
            "best_epoch": self.best_epoch_,
            "training_seconds": self.training_seconds_,
            "test_metrics": self.test_metrics_.to_dict(),
            "small_biome_log": [a.to_dict() for a in self.small_biome_log_],
            "split_sizes": {k: int(v.size) for k, v in self.split_indices_.items()},
            "grid_search": self.grid_search_.to_dict() if self.grid_search_ else None,
        }
        meta_path.write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
        logger.info("Saved the biome classifier to %s and %s", model_path, meta_path)
        return [model_path, meta_path]

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Self:
        """Read a classifier written by :meth:`save`.

        Parameters
        ----------
        path
            The directory, the stem, or either of the two files given to / written by
            :meth:`save`.

        Returns
        -------
        BiomeClassifier
            Fitted classifier; ``split_indices_`` is not restored (only the split sizes are,
            in ``split_sizes_``), ``grid_search_`` holds the saved dictionary or None.
        """
        keras = _import_keras()
        stem = _stem(path)
        meta_path = stem.with_name(stem.name + ".json")
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        if meta.get("format") != _FORMAT_NAME:
            raise ValueError(f"{meta_path} is not a carbon_biomes tracking model")
        if meta.get("format_version") != _FORMAT_VERSION:
            raise ValueError(
                f"{meta_path} has format version {meta.get('format_version')}, "
                f"this code reads version {_FORMAT_VERSION}"
            )
        settings = ClassifierSettings.from_mapping(meta["settings"])
        obj = cls(settings)
        obj.settings_ = settings
        obj.model_ = keras.saving.load_model(meta_path.with_name(meta["model_file"]), compile=False)
        scaler = StandardScaler()
        scaler.mean_ = np.asarray(meta["scaler"]["mean"], dtype=np.float64)
        scaler.scale_ = np.asarray(meta["scaler"]["scale"], dtype=np.float64)
        scaler.var_ = np.asarray(meta["scaler"]["var"], dtype=np.float64)
        scaler.n_samples_seen_ = int(meta["scaler"]["n_samples_seen"])
        scaler.n_features_in_ = int(meta["n_features_in"])
        obj.scaler_ = scaler
        obj.classes_ = np.asarray(meta["classes"], dtype=np.int64)
        obj.n_features_in_ = int(meta["n_features_in"])
        obj.history_ = {k: [float(v) for v in vals] for k, vals in meta["history"].items()}
        obj.best_epoch_ = int(meta["best_epoch"])
        obj.training_seconds_ = float(meta["training_seconds"])
        obj.test_metrics_ = EvaluationReport.from_dict(meta["test_metrics"])
        obj.small_biome_log_ = [SmallBiomeAction(**a) for a in meta["small_biome_log"]]
        obj.split_sizes_ = dict(meta["split_sizes"])
        obj._ood = _OODModel.from_dict(meta["ood"])
        obj.ood_threshold_ = obj._ood.threshold
        obj.grid_search_ = meta.get("grid_search")
        return obj


def _stem(path: str | os.PathLike[str]) -> Path:
    """Resolve a save/load path to the common stem of the ``.keras`` and ``.json`` files."""
    p = Path(path)
    if p.is_dir():
        return p / _DEFAULT_STEM
    if p.suffix in (".keras", ".json"):
        return p.with_suffix("")
    return p


def load(path: str | os.PathLike[str]) -> BiomeClassifier:
    """Read a classifier written by :meth:`BiomeClassifier.save`.

    Parameters
    ----------
    path
        The directory, the stem, or either file (``.keras`` / ``.json``).

    Returns
    -------
    BiomeClassifier
        Fitted classifier whose predictions equal those of the saved one.
    """
    return BiomeClassifier.load(path)
