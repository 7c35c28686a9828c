"""Biome tracking for one dataset: read the detected reference biomes, label every month.

METHOD.md §3.4: the box RCs of every month are computed exactly as in detection (same box size,
outlier filter and significance test, read back from the detection output) and classified by
the network trained on the reference biomes. Months are streamed one at a time.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import iris
import numpy as np

from carbon_biomes.detection import cell_box_index, regress_month, settings_from_attributes
from carbon_biomes.diagnostic import DiagnosticError
from carbon_biomes.inputs import DatasetFields
from carbon_biomes.regression import box_lattice
from carbon_biomes.settings import DetectionSettings
from carbon_biomes.tracking import MISSING_LABEL, BiomeClassifier, agreement

__all__ = [
    "ReferenceBiomes",
    "TrackedBiomes",
    "find_detection_files",
    "read_reference_biomes",
    "track_dataset",
]

logger = logging.getLogger(__name__)

DRIVER_VARIABLES: tuple[str, ...] = ("rc_sst", "rc_dic", "rc_alk")


@dataclass(frozen=True)
class ReferenceBiomes:
    """The detected biomes a network is trained on (boxes of the reference month(s))."""

    dataset: str
    months: tuple[str, ...]
    features: np.ndarray  # raw RCs (n x 3)
    labels: np.ndarray  # biome numbers
    box_id: np.ndarray
    month_of_box: np.ndarray
    names: dict[int, str]
    settings: DetectionSettings
    files: tuple[str, ...]


def find_detection_files(dataset: str, folders: Iterable[str | Path]) -> tuple[Path, Path]:
    """Locate a dataset's detection outputs (labels and box regression) in ancestor folders.

    Raises
    ------
    DiagnosticError
        When none or more than one set is found.
    """
    labels, regression = [], []
    for folder in folders:
        folder = Path(folder)
        labels += sorted(folder.glob(f"{dataset}_*_biome_labels.nc"))
        regression += sorted(folder.glob(f"{dataset}_*_box_regression.nc"))
    if len(labels) != 1 or len(regression) != 1:
        where = ", ".join(str(f) for f in folders) or "no ancestor folders"
        raise DiagnosticError(
            f"{dataset}: expected one detection output (*_biome_labels.nc and "
            f"*_box_regression.nc) in {where}, found {len(labels)} and {len(regression)}; "
            "list the detection script under this script's 'ancestors' in the recipe"
        )
    return labels[0], regression[0]


def read_reference_biomes(dataset: str, folders: Iterable[str | Path]) -> ReferenceBiomes:
    """Read the labelled boxes and their RCs written by the detection script."""
    labels_file, regression_file = find_detection_files(dataset, folders)
    label_cube = iris.load_cube(labels_file, "carbon biome detected by Ward clustering")
    cubes = iris.load(regression_file)
    rcs = [cubes.extract_cube(iris.NameConstraint(var_name=name)) for name in DRIVER_VARIABLES]
    attributes = dict(label_cube.attributes)
    settings = settings_from_attributes(attributes)
    names = {int(k): v for k, v in json.loads(attributes["biome_names_json"]).items()}
    time = label_cube.coord("time")
    months = tuple(f"{d.year:04d}-{d.month:02d}" for d in time.units.num2date(time.points))
    grid = np.ma.asarray(label_cube.data)
    features, labels, box_id, month_of_box = [], [], [], []
    for t in range(grid.shape[0]):
        flat = grid[t].reshape(-1)
        ids = np.flatnonzero(~np.ma.getmaskarray(flat))
        labels.append(np.asarray(flat[ids], dtype=np.int64))
        features.append(
            np.column_stack([np.ma.filled(cube.data[t].reshape(-1)[ids], np.nan) for cube in rcs])
        )
        box_id.append(ids)
        month_of_box.append(np.full(ids.size, t))
    return ReferenceBiomes(
        dataset=dataset,
        months=months,
        features=np.concatenate(features),
        labels=np.concatenate(labels),
        box_id=np.concatenate(box_id),
        month_of_box=np.concatenate(month_of_box),
        names=names,
        settings=settings,
        files=(str(labels_file), str(regression_file)),
    )


@dataclass
class TrackedBiomes:
    """Labels of every month on the box lattice, with confidence and OOD flags.

    Arrays are (n_months, n_lat_boxes, n_lon_boxes), masked where a box was not classified (land,
    too few cells, or slopes not significant).
    """

    dataset: str
    months: list[str]
    labels: np.ma.MaskedArray
    probability: np.ma.MaskedArray
    ood: np.ma.MaskedArray
    box_area: np.ma.MaskedArray  # ocean area per box (m2)
    names: dict[int, str]
    box_size: float
    cell_boxes: np.ndarray  # box id of every native cell

    def biome_area(self) -> np.ndarray:
        """Ocean area (m2) of every biome per month, (n_months, K) in biome-number order."""
        numbers = sorted(self.names)
        area = np.ma.filled(self.box_area, 0.0)
        labels = np.ma.filled(self.labels, MISSING_LABEL)
        return np.stack([(area * (labels == k)).sum(axis=(1, 2)) for k in numbers], axis=1)


def track_dataset(
    fields: DatasetFields,
    classifier: BiomeClassifier,
    reference: ReferenceBiomes,
    *,
    rescale: bool | None = None,
) -> TrackedBiomes:
    """Compute the box RCs of every month and label them with the trained network.

    Parameters
    ----------
    fields
        The dataset's preprocessed fields (streamed month by month).
    classifier
        The network trained on ``reference``.
    reference
        The detected reference biomes (its settings say how the RCs are computed).
    rescale
        Standardize each month with its own scaler (the paper); default: the classifier's
        ``rescale_per_month`` setting.

    Returns
    -------
    TrackedBiomes
    """
    settings = reference.settings
    n_lat, n_lon = box_lattice(settings.box_size)
    n_months = len(fields.months)
    labels = np.ma.masked_all((n_months, n_lat * n_lon), dtype=np.int16)
    probability = np.ma.masked_all((n_months, n_lat * n_lon), dtype=np.float32)
    ood = np.ma.masked_all((n_months, n_lat * n_lon), dtype=np.int8)
    box_area = np.ma.masked_all((n_months, n_lat * n_lon), dtype=np.float64)
    cell_boxes = cell_box_index(fields.latitude, fields.longitude, settings.box_size)
    names = ["fco2", "sst", "dic", "alk"]
    start = time.perf_counter()
    year_counts = {"boxes": 0, "ood": 0}
    for t, month in enumerate(fields.months):
        reg = regress_month(
            fields.month(t, names),
            fields.latitude,
            fields.longitude,
            cell_boxes,
            fields.area,
            settings,
        )
        kept = reg.kept
        if len(kept) == 0:
            logger.warning(
                "%s %s: no box passed the regression and significance filter; the month's "
                "labels are missing",
                fields.dataset,
                month,
            )
        else:
            prediction = classifier.predict(kept.slopes, rescale=rescale)
            valid = prediction.valid
            ids = kept.box_id[valid]
            labels[t, ids] = prediction.labels[valid]
            probability[t, ids] = prediction.probability[valid]
            ood[t, ids] = prediction.ood[valid]
            box_area[t, ids] = reg.stats.area[reg.significant][valid]
            year_counts["boxes"] += int(valid.sum())
            year_counts["ood"] += int(prediction.ood[valid].sum())
        if month.endswith("-12") or t == n_months - 1:
            logger.info(
                "%s: tracked %s (%d/%d months, %.0f s): %d boxes labelled this year, %.1f %% "
                "out of the training distribution",
                fields.dataset,
                month[:4],
                t + 1,
                n_months,
                time.perf_counter() - start,
                year_counts["boxes"],
                100.0 * year_counts["ood"] / max(year_counts["boxes"], 1),
            )
            year_counts = {"boxes": 0, "ood": 0}
    shape = (n_months, n_lat, n_lon)
    return TrackedBiomes(
        dataset=fields.dataset,
        months=list(fields.months),
        labels=labels.reshape(shape),
        probability=probability.reshape(shape),
        ood=ood.reshape(shape),
        box_area=box_area.reshape(shape),
        names=dict(reference.names),
        box_size=settings.box_size,
        cell_boxes=cell_boxes,
    )


def reference_agreement(tracked: TrackedBiomes, reference: ReferenceBiomes) -> Mapping[str, Any]:
    """Fraction of reference boxes whose tracked label equals the detected label, per month.

    Boxes without a tracked label are left out (:func:`carbon_biomes.tracking.agreement`); in a
    reference month every detected box is tracked, since its RCs are computed the same way.
    """
    result: dict[str, Any] = {}
    for m, month in enumerate(reference.months):
        if month not in tracked.months:
            continue
        t = tracked.months.index(month)
        members = reference.month_of_box == m
        tracked_labels = tracked.labels[t].reshape(-1)[reference.box_id[members]]
        result[month] = agreement(
            np.ma.filled(tracked_labels, MISSING_LABEL), reference.labels[members]
        )
    return result
