"""Biome detection on the RCs of the reference month(s): Ward clustering, adaptive cut, naming.

docs/method.md §2.4-2.8. The input is the monthly box regression of the reference month(s)
(:mod:`carbon_biomes.core.monthly_regression`), computed once by the regression stage and read
back; nothing is regressed here.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from carbon_biomes.core import clustering
from carbon_biomes.core.errors import DiagnosticError, SettingsError
from carbon_biomes.core.monthly_regression import MonthRegression
from carbon_biomes.core.naming import BiomeSignature, biome_signatures, name_biomes
from carbon_biomes.core.regression import box_lattice
from carbon_biomes.core.validation import (
    as_tuple,
    check_bool,
    check_choice,
    check_int,
    check_month,
    check_number,
)

__all__ = [
    "MIN_BOXES_TO_CLUSTER",
    "DetectionResult",
    "DetectionSettings",
    "ReferenceBoxes",
    "default_reference_months",
    "detect_biomes",
    "partition_scores",
    "pool_reference_boxes",
    "scan_table",
]

logger = logging.getLogger(__name__)

#: Fewest significant boxes for a clustering to mean anything.
MIN_BOXES_TO_CLUSTER = 30
#: Default bounds on the number of biomes of an automatically chosen cut.
DEFAULT_MIN_BIOMES, DEFAULT_MAX_BIOMES = 4, 12
#: Biomes of fewer boxes are merged into the nearest biome.
DEFAULT_MIN_BIOME_SIZE = 10
#: Median box sea-ice fraction (%) from which a biome is named ICE.
DEFAULT_ICE_THRESHOLD = 15.0


@dataclass(frozen=True)
class DetectionSettings:
    """How the biomes of the reference month(s) are found (docs/method.md §2.4-2.8).

    Attributes
    ----------
    reference_months
        Months whose boxes are clustered (``YYYY-MM``); several months are pooled. Default: the
        first January of the data (or the first month if there is no January).
    thresholds
        ``auto`` (scan and select with ``selection_rule``), ``paper`` (Δdist=25, Δvar=0.1 in
        absolute Ward heights, whatever ``dist_scale`` says), or a pair
        ``[delta_dist, delta_var]`` in the unit of ``dist_scale``.
    dist_scale
        Unit of Δdist: ``root`` (fraction of the dendrogram's root height; invariant to the
        number of boxes, default) or ``absolute`` (Ward heights, as in the paper).
    scan_delta_dist, scan_delta_var
        Grid of the threshold scan; default the library grid for ``dist_scale``
        (``root``: :data:`~carbon_biomes.core.clustering.DEFAULT_DELTA_DISTS_ROOT` x
        :data:`~carbon_biomes.core.clustering.DEFAULT_DELTA_VARS`; ``absolute``: the paper's
        Δdist 20, 25, 28, 30 x Δvar 0.1, 0.5, 0.8, 1.0).
    selection_rule
        Criterion of the automatic choice: ``silhouette``, ``calinski_harabasz``, ``gmm_bic``
        or ``stability`` (bootstrap adjusted Rand index; needs ``stability: true``); only pairs
        giving ``min_biomes`` to ``max_biomes`` biomes qualify.
    min_biomes, max_biomes
        Bounds on the number of biomes of an automatic choice.
    spread
        Node spread of the adaptive cut: ``pooled_variance`` (paper) or ``wcss``.
    min_biome_size
        Biomes of fewer boxes are merged into the biome with the nearest centroid, in the scan
        and in the final cut; 1 keeps the paper's cut unchanged.
    stability
        Also compute bootstrap stability in the scan (costly).
    biome_names
        Biome number -> name, overriding the automatic names.
    ice_threshold
        Median box sea-ice fraction (%) from which a biome is named ICE.
    seed
        Seed of every random step (silhouette subsample, bootstrap).
    """

    reference_months: tuple[str, ...] = ()
    thresholds: Any = "auto"
    dist_scale: str = "root"
    scan_delta_dist: tuple[float, ...] = ()
    scan_delta_var: tuple[float, ...] = ()
    selection_rule: str = "silhouette"
    min_biomes: int = DEFAULT_MIN_BIOMES
    max_biomes: int = DEFAULT_MAX_BIOMES
    spread: str = "pooled_variance"
    min_biome_size: int = DEFAULT_MIN_BIOME_SIZE
    stability: bool = False
    biome_names: Mapping[int, str] = field(default_factory=dict)
    ice_threshold: float = DEFAULT_ICE_THRESHOLD
    seed: int = 0

    def __post_init__(self) -> None:
        """Validate and normalize."""
        set_ = object.__setattr__
        months = tuple(check_month("reference_months", m) for m in as_tuple(self.reference_months))
        set_(self, "reference_months", months)
        check_choice("dist_scale", self.dist_scale, ("root", "absolute"))
        thresholds = self.thresholds
        if thresholds == "paper":
            thresholds = clustering.PAPER_THRESHOLDS
            set_(self, "dist_scale", "absolute")
        if thresholds != "auto":
            try:
                delta_dist, delta_var = (float(v) for v in thresholds)
            except (TypeError, ValueError):
                raise SettingsError(
                    "setting 'thresholds' must be auto, paper or a pair [delta_dist, delta_var], "
                    f"got {self.thresholds!r}"
                ) from None
            check_number("thresholds (delta_dist)", delta_dist, 0.0)
            check_number("thresholds (delta_var)", delta_var, 0.0)
            thresholds = (delta_dist, delta_var)
        set_(self, "thresholds", thresholds)
        defaults = {
            "root": (clustering.DEFAULT_DELTA_DISTS_ROOT, clustering.DEFAULT_DELTA_VARS),
            "absolute": (clustering.PAPER_DELTA_DISTS, clustering.PAPER_DELTA_VARS),
        }[self.dist_scale]
        for key, default in zip(("scan_delta_dist", "scan_delta_var"), defaults, strict=True):
            values = tuple(
                check_number(key, v, 0.0) for v in (as_tuple(getattr(self, key)) or default)
            )
            set_(self, key, values)
        check_choice(
            "selection_rule",
            self.selection_rule,
            ("silhouette", "calinski_harabasz", "gmm_bic", "stability"),
        )
        check_bool("stability", self.stability)
        if self.selection_rule == "stability" and not self.stability:
            raise SettingsError("setting 'selection_rule: stability' needs 'stability: true'")
        set_(self, "min_biomes", check_int("min_biomes", self.min_biomes, 2))
        set_(self, "max_biomes", check_int("max_biomes", self.max_biomes, 2))
        if self.min_biomes > self.max_biomes:
            raise SettingsError("settings need min_biomes <= max_biomes")
        set_(self, "min_biome_size", check_int("min_biome_size", self.min_biome_size, 1))
        check_choice("spread", self.spread, ("pooled_variance", "wcss"))
        set_(self, "ice_threshold", check_number("ice_threshold", self.ice_threshold, 0.0, 100.0))
        set_(self, "seed", check_int("seed", self.seed, 0))
        set_(self, "biome_names", {int(k): str(v) for k, v in dict(self.biome_names).items()})


def default_reference_months(months: Sequence[str]) -> tuple[str, ...]:
    """The first January of the data, or the first month if there is no January."""
    januaries = [month for month in months if month.endswith("-01")]
    return (januaries[0] if januaries else months[0],)


@dataclass(frozen=True, eq=False)
class ReferenceBoxes:
    """The significant boxes of the reference month(s), pooled month after month.

    Attributes
    ----------
    months
        The reference months.
    box_size
        Lattice spacing in degrees.
    features
        Raw RCs (n x 3), float64.
    box_id, lat, lon
        Lattice box id and centre of each row.
    month_of_box
        Index into ``months`` of each row.
    area, sst, ice
        Box ocean area (m2), mean SST (degC) and sea ice (%, or None).
    n_fitted
        Boxes fitted (significant or not) over all reference months.
    dropped
        Boxes dropped per reason over all reference months.
    """

    months: tuple[str, ...]
    box_size: float
    features: np.ndarray
    box_id: np.ndarray
    lat: np.ndarray
    lon: np.ndarray
    month_of_box: np.ndarray
    area: np.ndarray
    sst: np.ndarray
    ice: np.ndarray | None
    n_fitted: int = 0
    dropped: Mapping[str, int] = field(default_factory=dict)


def pool_reference_boxes(
    regressions: Sequence[MonthRegression], dataset: str = ""
) -> ReferenceBoxes:
    """Pool the significant boxes of the reference months.

    Raises
    ------
    DiagnosticError
        When a month has fewer than :data:`MIN_BOXES_TO_CLUSTER` significant boxes.
    """
    for reg in regressions:
        if reg.n_significant < MIN_BOXES_TO_CLUSTER:
            raise DiagnosticError(
                f"{dataset} {reg.month}: only {reg.n_significant} of {len(reg.all_boxes)} boxes "
                f"have significant slopes; at least {MIN_BOXES_TO_CLUSTER} are needed to "
                "cluster. Check the input fields, or use a larger box_size, a larger alpha or "
                "significance_test: f_test in the regression script."
            )
    kept = [reg.kept for reg in regressions]
    ices = [reg.stats.ice for reg in regressions]
    return ReferenceBoxes(
        months=tuple(reg.month for reg in regressions),
        box_size=float(regressions[0].all_boxes.box_size),
        features=np.concatenate([k.slopes for k in kept]).astype(np.float64),
        box_id=np.concatenate([k.box_id for k in kept]),
        lat=np.concatenate([k.lat for k in kept]),
        lon=np.concatenate([k.lon for k in kept]),
        month_of_box=np.concatenate([np.full(len(k), i) for i, k in enumerate(kept)]),
        area=np.concatenate([reg.stats.area[reg.significant] for reg in regressions]),
        sst=np.concatenate([reg.stats.sst[reg.significant] for reg in regressions]),
        ice=(
            np.concatenate(
                [ice[reg.significant] for ice, reg in zip(ices, regressions, strict=True)]
            )
            if all(ice is not None for ice in ices)
            else None
        ),
        n_fitted=sum(len(reg.all_boxes) for reg in regressions),
        dropped={
            "few_points": sum(reg.all_boxes.n_dropped_few_points for reg in regressions),
            "singular": sum(reg.all_boxes.n_dropped_singular for reg in regressions),
            "constant_target": sum(reg.all_boxes.n_dropped_constant_target for reg in regressions),
            "not_significant": sum(int((~reg.significant).sum()) for reg in regressions),
        },
    )


@dataclass(frozen=True, eq=False)
class DetectionResult:
    """Everything detection found for one dataset.

    The per-box arrays of ``boxes`` and ``labels``/``z`` are aligned: the significant boxes of all
    reference months, month after month.
    """

    dataset: str
    boxes: ReferenceBoxes
    z: np.ndarray  # standardized RCs
    mean: np.ndarray
    std: np.ndarray
    linkage: np.ndarray
    scan: list[dict[str, Any]]
    thresholds: tuple[float, float]
    delta_dist_abs: float
    threshold_source: str
    labels: np.ndarray  # 1..K
    cut_nodes: dict[int, int]
    names: dict[int, str]
    signature: BiomeSignature
    settings: DetectionSettings
    merged: dict[int, int] = field(default_factory=dict)  # small biome of the cut -> biome

    @property
    def months(self) -> tuple[str, ...]:
        """The reference months."""
        return self.boxes.months

    @property
    def n_biomes(self) -> int:
        """Number of biomes."""
        return len(self.names)

    def label_lattice(self) -> np.ma.MaskedArray:
        """Labels on the box lattice, (n_months, n_lat_boxes, n_lon_boxes), masked elsewhere."""
        n_lat, n_lon = box_lattice(self.boxes.box_size)
        grid = np.ma.masked_all((len(self.months), n_lat * n_lon), dtype=np.int16)
        grid[self.boxes.month_of_box, self.boxes.box_id] = self.labels
        return grid.reshape(len(self.months), n_lat, n_lon)

    def centroids(self) -> dict[int, dict[str, Any]]:
        """Per biome: raw and standardized mean RCs, number of boxes, area (m2), mean latitude."""
        table = {}
        boxes = self.boxes
        for row, number in enumerate(sorted(self.names)):  # signature rows: sorted numbers
            members = self.labels == number
            table[number] = {
                "name": self.names[number],
                "n_boxes": int(self.signature.n_boxes[row]),
                "area": float(np.nansum(boxes.area[members])) / len(self.months),
                "mean_lat": float(np.mean(boxes.lat[members])),
                "rc": boxes.features[members].mean(axis=0),
                "z": self.signature.mean_z[row],
            }
        return table


def _choose_thresholds(
    scan: list[dict[str, Any]], settings: DetectionSettings, where: str
) -> tuple[tuple[float, float], str]:
    """The (Δdist, Δvar) pair: selected from the scan or set in the settings."""
    if settings.thresholds != "auto":
        return tuple(settings.thresholds), "set in the recipe"  # type: ignore[return-value]
    try:
        selected = clustering.select_thresholds(
            scan,
            rule=settings.selection_rule,
            min_biomes=settings.min_biomes,
            max_biomes=settings.max_biomes,
        )
    except ValueError as exc:
        raise DiagnosticError(
            f"{where}: cannot choose the cut thresholds: {exc} "
            "(settings scan_delta_dist, scan_delta_var, min_biomes, max_biomes)"
        ) from None
    thresholds = (float(selected["delta_dist"]), float(selected["delta_var"]))
    return thresholds, f"selected by {settings.selection_rule} among {len(scan)} scanned pairs"


def detect_biomes(
    boxes: ReferenceBoxes, settings: DetectionSettings, dataset: str = ""
) -> DetectionResult:
    """Detect the carbon biomes of one dataset in its reference boxes.

    Parameters
    ----------
    boxes
        The pooled significant boxes of the reference month(s) (:func:`pool_reference_boxes`).
    settings
        Detection settings.
    dataset
        Dataset identifier, used in messages.

    Returns
    -------
    DetectionResult

    Raises
    ------
    DiagnosticError
        When no threshold pair qualifies (the message names the dataset and months).
    """
    where = f"{dataset} {', '.join(boxes.months)}"
    z, mean, std = clustering.standardize(boxes.features)
    linkage = clustering.ward_linkage(z)
    scan = clustering.threshold_scan(
        linkage,
        z,
        settings.scan_delta_dist,
        settings.scan_delta_var,
        settings.spread,
        dist_scale=settings.dist_scale,
        seed=settings.seed,
        stability=settings.stability,
        min_biome_size=settings.min_biome_size,
    )
    thresholds, source = _choose_thresholds(scan, settings, where)
    cut = clustering.adaptive_cut_nodes(
        linkage, z, thresholds[0], thresholds[1], settings.spread, dist_scale=settings.dist_scale
    )
    n_cut = cut.n_biomes
    cut, merged = clustering.merge_small_biomes(
        cut, z, min(settings.min_biome_size, int(cut.sizes.max()))
    )
    if merged:
        logger.info(
            "%s: %d of the %d biomes of the cut had fewer than %d boxes and were merged into the "
            "biome with the nearest centroid (old -> new number: %s)",
            dataset,
            len(merged),
            n_cut,
            settings.min_biome_size,
            ", ".join(f"{old}->{new}" for old, new in merged.items()),
        )
    labels = np.asarray(cut.labels)
    signature = biome_signatures(labels, z, boxes.lat, boxes.sst, boxes.ice)
    names = name_biomes(
        signature, ice_threshold=settings.ice_threshold, overrides=settings.biome_names
    )
    logger.info(
        "%s: %d significant boxes clustered into %d biomes with Δdist=%g (%s; %.3g in Ward "
        "height), Δvar=%g (%s): %s",
        where,
        len(labels),
        len(names),
        thresholds[0],
        settings.dist_scale,
        cut.delta_dist,
        thresholds[1],
        source,
        ", ".join(f"{k}={v} ({int((labels == k).sum())})" for k, v in names.items()),
    )
    return DetectionResult(
        dataset=dataset,
        boxes=boxes,
        z=z,
        mean=mean,
        std=std,
        linkage=linkage,
        scan=scan,
        thresholds=thresholds,
        delta_dist_abs=cut.delta_dist,
        threshold_source=source,
        labels=labels,
        cut_nodes={k: int(node) for k, node in enumerate(cut.nodes, start=1)},
        names=names,
        signature=signature,
        settings=settings,
        merged=merged,
    )


def partition_scores(result: DetectionResult) -> dict[str, float]:
    """Scores of the chosen partition (from the scan when the pair was scanned)."""
    for row in result.scan:
        if (
            np.isclose(row["delta_dist"], result.thresholds[0])
            and np.isclose(row["delta_var"], result.thresholds[1])
            and row["dist_scale"] == result.settings.dist_scale
        ):
            keys = ("silhouette", "calinski_harabasz", "gmm_bic", "paper_score", "stability")
            return {key: float(row[key]) for key in keys}
    seed = result.settings.seed
    return {
        "silhouette": clustering.silhouette(result.z, result.labels, seed=seed),
        "calinski_harabasz": clustering.calinski_harabasz(result.z, result.labels),
        "gmm_bic": clustering.gmm_bic(result.z, result.labels),
        "paper_score": clustering.paper_score(result.labels),
        "stability": float("nan"),
    }


def scan_table(
    scan: list[Mapping[str, Any]],
    key: str,
    delta_dists: tuple[float, ...],
    delta_vars: tuple[float, ...],
) -> np.ndarray:
    """Arrange one scan quantity as a (Δvar x Δdist) table."""
    table = np.full((len(delta_vars), len(delta_dists)), np.nan)
    for row in scan:
        i = int(np.argmin(np.abs(np.asarray(delta_vars) - row["delta_var"])))
        j = int(np.argmin(np.abs(np.asarray(delta_dists) - row["delta_dist"])))
        table[i, j] = row[key]
    return table
