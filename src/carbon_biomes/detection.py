"""Biome detection for one dataset: regression of the reference month(s), clustering, naming.

This module strings the stages together (METHOD.md §2) on arrays; reading the data
(:mod:`carbon_biomes.inputs`) and writing outputs (:mod:`carbon_biomes.products`) are elsewhere.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from carbon_biomes import clustering
from carbon_biomes.diagnostic import DiagnosticError
from carbon_biomes.inputs import DatasetFields, FieldMonth
from carbon_biomes.naming import BiomeSignature, biome_signatures, name_biomes
from carbon_biomes.regression import (
    BoxRegression,
    box_index,
    box_regression,
    outlier_mask,
    significant_boxes,
)
from carbon_biomes.settings import DetectionSettings

__all__ = [
    "DRIVER_UNITS",
    "BoxStatistics",
    "DetectionResult",
    "MonthRegression",
    "box_statistics",
    "cell_box_index",
    "default_reference_months",
    "detect_biomes",
    "partition_scores",
    "regression_attributes",
    "settings_from_attributes",
    "regress_month",
]

logger = logging.getLogger(__name__)

#: Units of the slopes of fCO2 (µatm) on each driver.
DRIVER_UNITS: dict[str, str] = {
    "sst": "uatm degC-1",
    "dic": "uatm m3 mmol-1",
    "alk": "uatm m3 mmol-1",
}

#: Fewest significant boxes for a clustering to mean anything.
MIN_BOXES_TO_CLUSTER = 30


def cell_box_index(latitude: np.ndarray, longitude: np.ndarray, box_size: float) -> np.ndarray:
    """Box id of every native cell (2-D, the field's shape); regular 1-D axes are broadcast."""
    if latitude.ndim == 1:
        lat2d, lon2d = np.meshgrid(latitude, longitude, indexing="ij")
        return box_index(lat2d, lon2d, box_size)
    return box_index(latitude, longitude, box_size)


@dataclass(frozen=True)
class BoxStatistics:
    """Per-box summaries of native cells (aligned with a regression's ``box_id``)."""

    area: np.ndarray  # m2 of ocean (all ocean cells of the box)
    sst: np.ndarray  # area-weighted mean SST, degC
    ice: np.ndarray | None  # area-weighted mean sea-ice fraction, %, or None


def box_statistics(
    cell_boxes: np.ndarray,
    box_id: np.ndarray,
    ocean: np.ndarray,
    area: np.ndarray | None,
    sst: np.ndarray,
    ice: np.ndarray | None = None,
) -> BoxStatistics:
    """Ocean area and area-weighted means of SST and sea ice per box, by grouped sums.

    Parameters
    ----------
    cell_boxes
        Box id per native cell (-1 outside the lattice).
    box_id
        Boxes to report, in this order.
    ocean
        True for ocean cells.
    area
        Cell area in m2 (``None``: 1 per cell, so the "area" is a cell count).
    sst, ice
        Fields on the native grid (masked or NaN where missing).

    Returns
    -------
    BoxStatistics
    """
    ok = ocean & (cell_boxes >= 0)
    ids = cell_boxes[ok]
    weight = np.ones(ids.size) if area is None else np.nan_to_num(area[ok])
    size = int(max(box_id.max(initial=-1), ids.max(initial=-1))) + 1

    def weighted_mean(values: np.ndarray) -> np.ndarray:
        v = np.ma.filled(np.ma.masked_invalid(np.ma.asarray(values, dtype=float)), np.nan)[ok]
        good = np.isfinite(v)
        sums = np.bincount(ids[good], weights=weight[good] * v[good], minlength=size)
        norms = np.bincount(ids[good], weights=weight[good], minlength=size)
        with np.errstate(invalid="ignore", divide="ignore"):
            return (sums / norms)[box_id]

    box_area = np.bincount(ids, weights=weight, minlength=size)[box_id]
    return BoxStatistics(
        area=box_area,
        sst=weighted_mean(sst),
        ice=None if ice is None else weighted_mean(ice),
    )


@dataclass(frozen=True)
class MonthRegression:
    """Box regression of one month, before and after the significance filter."""

    month: str
    all_boxes: BoxRegression
    significant: np.ndarray  # bool per box of all_boxes
    stats: BoxStatistics  # aligned with all_boxes
    n_cells_valid: int
    n_cells_outliers: int

    @property
    def kept(self) -> BoxRegression:
        """The significant boxes."""
        return self.all_boxes.select(self.significant)


def regress_month(
    month: FieldMonth,
    latitude: np.ndarray,
    longitude: np.ndarray,
    cell_boxes: np.ndarray,
    area: np.ndarray | None,
    settings: DetectionSettings,
) -> MonthRegression:
    """Outlier filter, box regression and significance test of one month (METHOD.md §2.1-2.3).

    Parameters
    ----------
    month
        The month's fields in analysis units (``fco2``, ``sst``, ``dic``, ``alk``, optional
        ``ice``).
    latitude, longitude
        Native cell coordinates (1-D regular axes or 2-D).
    cell_boxes
        Box id per cell (from :func:`cell_box_index`).
    area
        Cell areas (m2) or ``None``.
    settings
        Detection settings.

    Returns
    -------
    MonthRegression
    """
    fco2, sst, dic, alk = (month[name] for name in ("fco2", "sst", "dic", "alk"))
    ocean = ~np.ma.getmaskarray(sst)
    valid = outlier_mask(fco2, sst, dic, alk, **settings.outlier_filter)
    target = np.where(valid, np.ma.filled(fco2, np.nan), np.nan)
    result = box_regression(
        latitude,
        longitude,
        target,
        [np.ma.filled(field, np.nan) for field in (sst, dic, alk)],
        box_size=settings.box_size,
        min_points=settings.min_points,
    )
    significant = significant_boxes(result, settings.alpha, settings.significance_test)
    stats = box_statistics(cell_boxes, result.box_id, ocean, area, sst, month.fields.get("ice"))
    return MonthRegression(
        month=month.label,
        all_boxes=result,
        significant=significant,
        stats=stats,
        n_cells_valid=int(valid.sum()),
        n_cells_outliers=int((ocean & ~valid).sum()),
    )


#: Settings that define how box RCs are computed; stored in the detection outputs so that tracking
#: computes the RCs of every month in exactly the same way.
REGRESSION_KEYS: tuple[str, ...] = (
    "box_size",
    "min_points",
    "alpha",
    "significance_test",
    "carbon",
)


def regression_attributes(settings: DetectionSettings) -> dict[str, Any]:
    """NetCDF global attributes that record how the box RCs were computed."""
    attributes: dict[str, Any] = {
        f"regression_{key}": getattr(settings, key) for key in REGRESSION_KEYS
    }
    for key, value in settings.outlier_filter.items():
        attributes[f"regression_outlier_{key}"] = value
    return attributes


def settings_from_attributes(attributes: Mapping[str, Any]) -> DetectionSettings:
    """Rebuild the regression part of the detection settings from :func:`regression_attributes`."""
    values: dict[str, Any] = {}
    outliers: dict[str, float] = {}
    for key, value in attributes.items():
        if key.startswith("regression_outlier_"):
            outliers[key.removeprefix("regression_outlier_")] = float(value)
        elif key.startswith("regression_") and key.removeprefix("regression_") in REGRESSION_KEYS:
            values[key.removeprefix("regression_")] = value
    missing = set(REGRESSION_KEYS) - set(values)
    if missing:
        raise DiagnosticError(f"detection output lacks the attributes regression_{sorted(missing)}")
    values["min_points"] = int(values["min_points"])
    values["alpha"] = float(values["alpha"])
    return DetectionSettings(outlier_filter=outliers, **values)


def default_reference_months(months: list[str]) -> tuple[str, ...]:
    """The first January of the data, or the first month if there is no January."""
    januaries = [month for month in months if month.endswith("-01")]
    return (januaries[0] if januaries else months[0],)


@dataclass
class DetectionResult:
    """Everything detection found for one dataset.

    The pooled arrays (``features``, ``z``, ``labels``, ``box_id``, ``month_of_box``, ...) hold
    the significant boxes of all reference months, month after month.
    """

    dataset: str
    months: tuple[str, ...]
    regressions: list[MonthRegression]
    features: np.ndarray  # raw RCs (n x 3)
    z: np.ndarray  # standardized RCs
    mean: np.ndarray
    std: np.ndarray
    box_id: np.ndarray
    lat: np.ndarray
    lon: np.ndarray
    month_of_box: np.ndarray  # index into months
    area: np.ndarray
    sst: np.ndarray
    ice: np.ndarray | None
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
    cell_boxes: np.ndarray  # box id of every native cell
    dropped: dict[str, int] = field(default_factory=dict)
    merged: dict[int, int] = field(default_factory=dict)  # small biome of the cut -> biome

    @property
    def n_biomes(self) -> int:
        """Number of biomes."""
        return len(self.names)

    def centroids(self) -> dict[int, dict[str, Any]]:
        """Per biome: raw and standardized mean RCs, number of boxes, area (m2), mean latitude."""
        table = {}
        for row, number in enumerate(sorted(self.names)):  # signature rows: sorted numbers
            members = self.labels == number
            table[number] = {
                "name": self.names[number],
                "n_boxes": int(self.signature.n_boxes[row]),
                "area": float(np.nansum(self.area[members])) / len(self.months),
                "mean_lat": float(np.mean(self.lat[members])),
                "rc": self.features[members].mean(axis=0),
                "z": self.signature.mean_z[row],
            }
        return table


def detect_biomes(fields: DatasetFields, settings: DetectionSettings) -> DetectionResult:
    """Detect the carbon biomes of one dataset in its reference month(s).

    Parameters
    ----------
    fields
        The dataset's preprocessed fields.
    settings
        Detection settings.

    Returns
    -------
    DetectionResult

    Raises
    ------
    DiagnosticError
        When a reference month is missing or too few significant boxes remain to cluster (the
        message names the dataset and month).
    """
    months = settings.reference_months or default_reference_months(fields.months)
    cell_boxes = cell_box_index(fields.latitude, fields.longitude, settings.box_size)
    names = ["fco2", "sst", "dic", "alk"] + (["ice"] if "ice" in fields.cubes else [])
    regressions = []
    for month in months:
        index = fields.month_index(month)
        reg = regress_month(
            fields.month(index, names),
            fields.latitude,
            fields.longitude,
            cell_boxes,
            fields.area,
            settings,
        )
        all_boxes = reg.all_boxes
        logger.info(
            "%s %s: %d valid cells (%d outliers dropped), %d boxes fitted, %d significant "
            "(%s, alpha=%g); dropped: %d with too few cells, %d with a constant or collinear "
            "driver, %d with constant fCO2",
            fields.dataset,
            month,
            reg.n_cells_valid,
            reg.n_cells_outliers,
            len(all_boxes),
            int(reg.significant.sum()),
            settings.significance_test,
            settings.alpha,
            all_boxes.n_dropped_few_points,
            all_boxes.n_dropped_singular,
            all_boxes.n_dropped_constant_target,
        )
        if int(reg.significant.sum()) < MIN_BOXES_TO_CLUSTER:
            raise DiagnosticError(
                f"{fields.dataset} {month}: only {int(reg.significant.sum())} of "
                f"{len(all_boxes)} boxes have significant slopes ({settings.significance_test}, "
                f"alpha={settings.alpha}); at least {MIN_BOXES_TO_CLUSTER} are needed to "
                "cluster. Check the input fields, or use a larger box_size, a larger alpha or "
                "significance_test: f_test."
            )
        regressions.append(reg)

    kept = [reg.kept for reg in regressions]
    features = np.concatenate([k.slopes for k in kept])
    box_id = np.concatenate([k.box_id for k in kept])
    lat = np.concatenate([k.lat for k in kept])
    lon = np.concatenate([k.lon for k in kept])
    month_of_box = np.concatenate([np.full(len(k), i) for i, k in enumerate(kept)])
    area = np.concatenate([reg.stats.area[reg.significant] for reg in regressions])
    sst = np.concatenate([reg.stats.sst[reg.significant] for reg in regressions])
    ice = (
        np.concatenate([reg.stats.ice[reg.significant] for reg in regressions])
        if all(reg.stats.ice is not None for reg in regressions)
        else None
    )

    z, mean, std = clustering.standardize(features)
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
    if settings.thresholds == "auto":
        try:
            selected = clustering.select_thresholds(
                scan,
                rule=settings.selection_rule,
                min_biomes=settings.min_biomes,
                max_biomes=settings.max_biomes,
            )
        except ValueError as exc:
            raise DiagnosticError(
                f"{fields.dataset} {', '.join(months)}: cannot choose the cut thresholds: {exc} "
                "(settings scan_delta_dist, scan_delta_var, min_biomes, max_biomes)"
            ) from None
        thresholds = (float(selected["delta_dist"]), float(selected["delta_var"]))
        source = f"selected by {settings.selection_rule} among {len(scan)} scanned pairs"
    else:
        thresholds = tuple(settings.thresholds)
        source = "set in the recipe"
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
            fields.dataset,
            len(merged),
            n_cut,
            settings.min_biome_size,
            ", ".join(f"{old}->{new}" for old, new in merged.items()),
        )
    labels = np.asarray(cut.labels)
    cut_nodes = {k: int(node) for k, node in enumerate(cut.nodes, start=1)}
    signature = biome_signatures(labels, z, lat, sst, ice)
    names = name_biomes(
        signature, ice_threshold=settings.ice_threshold, overrides=settings.biome_names
    )
    logger.info(
        "%s: %d significant boxes in %s clustered into %d biomes with Δdist=%g (%s; %.3g in Ward "
        "height), Δvar=%g (%s): %s",
        fields.dataset,
        len(labels),
        ", ".join(months),
        len(names),
        thresholds[0],
        settings.dist_scale,
        cut.delta_dist,
        thresholds[1],
        source,
        ", ".join(f"{k}={v} ({int((labels == k).sum())})" for k, v in names.items()),
    )
    dropped = {
        "few_points": sum(reg.all_boxes.n_dropped_few_points for reg in regressions),
        "singular": sum(reg.all_boxes.n_dropped_singular for reg in regressions),
        "constant_target": sum(reg.all_boxes.n_dropped_constant_target for reg in regressions),
        "not_significant": sum(int((~reg.significant).sum()) for reg in regressions),
    }
    return DetectionResult(
        dataset=fields.dataset,
        months=tuple(months),
        regressions=regressions,
        features=features,
        z=z,
        mean=mean,
        std=std,
        box_id=box_id,
        lat=lat,
        lon=lon,
        month_of_box=month_of_box,
        area=area,
        sst=sst,
        ice=ice,
        linkage=linkage,
        scan=scan,
        thresholds=thresholds,
        delta_dist_abs=cut.delta_dist,
        threshold_source=source,
        labels=labels,
        cut_nodes=cut_nodes,
        names=names,
        signature=signature,
        settings=settings,
        cell_boxes=cell_boxes,
        dropped=dropped,
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
