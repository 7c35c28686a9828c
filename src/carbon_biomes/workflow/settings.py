"""Recipe settings of the diagnostic scripts, read from ESMValCore's ``settings.yml``.

Each script takes the library's settings objects (:class:`~carbon_biomes.core.monthly_regression
.RegressionSettings`, :class:`~carbon_biomes.core.detection.DetectionSettings`,
:class:`~carbon_biomes.core.classifier.ClassifierSettings`, whose defaults are the library's
constants) plus a few options of its own. Unknown keys and wrong values fail at once with a
message naming the key, before any computation.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from carbon_biomes.core.classifier import ClassifierSettings
from carbon_biomes.core.detection import DetectionSettings
from carbon_biomes.core.errors import SettingsError
from carbon_biomes.core.monthly_regression import RegressionSettings
from carbon_biomes.core.validation import as_tuple, check_bool, check_known_keys, check_month

__all__ = [
    "ESMVALCORE_KEYS",
    "DetectionScriptSettings",
    "RegressionScriptSettings",
    "SettingsError",
    "TrackingScriptSettings",
]

#: Keys ESMValCore adds to every script's settings (not recipe options of ours).
ESMVALCORE_KEYS = frozenset(
    {
        "auxiliary_data_dir",
        "input_files",
        "input_data",
        "log_level",
        "output_file_type",
        "plot_dir",
        "profile_diagnostic",
        "recipe",
        "run_dir",
        "script",
        "version",
        "work_dir",
        "exit_on_ncl_warning",
        "write_ncl_interface",
        "realms",
        "themes",
        "ancestors",
        "scheduler_address",
    }
)


def _fields(cls: type) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}


def _pick(cfg: Mapping[str, Any], cls: type) -> dict[str, Any]:
    return {key: cfg[key] for key in _fields(cls) if key in cfg and cfg[key] is not None}


@dataclass(frozen=True)
class RegressionScriptSettings:
    """Options of the regression script (``regress_boxes.py``).

    Every field of :class:`~carbon_biomes.core.monthly_regression.RegressionSettings`
    (``box_size``, ``min_points``, ``alpha``, ``significance_test``, ``outlier_filter``,
    ``carbon``) at the top level, plus:

    Attributes
    ----------
    regression
        The validated regression settings.
    months
        ``all`` (default: every month of the data, as tracking needs) or a list of ``YYYY-MM``
        months (for example only the reference month of a detection-only recipe).
    """

    regression: RegressionSettings
    months: tuple[str, ...] | str = "all"

    @classmethod
    def from_cfg(cls, cfg: Mapping[str, Any]) -> RegressionScriptSettings:
        """Split and validate the script's settings."""
        own = {"months"}
        check_known_keys(
            "the regression script", set(cfg) - ESMVALCORE_KEYS, own | _fields(RegressionSettings)
        )
        months: Any = cfg.get("months", "all")
        if months != "all":
            months = tuple(check_month("months", m) for m in as_tuple(months))
            if not months:
                raise SettingsError("setting 'months' must be all or a list of months")
        return cls(regression=RegressionSettings(**_pick(cfg, RegressionSettings)), months=months)


@dataclass(frozen=True)
class DetectionScriptSettings:
    """Options of the detection script (``detect_biomes.py``).

    The fields of :class:`~carbon_biomes.core.detection.DetectionSettings` at the top level.
    """

    detection: DetectionSettings

    @classmethod
    def from_cfg(cls, cfg: Mapping[str, Any]) -> DetectionScriptSettings:
        """Validate the script's settings."""
        check_known_keys("the detection script", set(cfg) - ESMVALCORE_KEYS,
                         _fields(DetectionSettings))  # fmt: skip
        return cls(detection=DetectionSettings(**_pick(cfg, DetectionSettings)))


@dataclass(frozen=True)
class TrackingScriptSettings:
    """Options of the tracking script (``track_biomes.py``).

    Every field of :class:`~carbon_biomes.core.classifier.ClassifierSettings` (network,
    training, splits, seed, OOD threshold, ``rescale_per_month``, grid search) at the top level,
    plus:

    Attributes
    ----------
    network
        The validated classifier settings.
    map_months
        Months shown in the biome-map figure; default January, April, July and October of the
        reference year (or of the last full year).
    native_labels
        Also write the labels of every month on the native grid.
    """

    network: ClassifierSettings
    map_months: tuple[str, ...] = ()
    native_labels: bool = True

    @classmethod
    def from_cfg(cls, cfg: Mapping[str, Any]) -> TrackingScriptSettings:
        """Split and validate the script's settings."""
        own = {"map_months", "native_labels"}
        check_known_keys(
            "the tracking script", set(cfg) - ESMVALCORE_KEYS, own | _fields(ClassifierSettings)
        )
        network = ClassifierSettings.from_mapping(_pick(cfg, ClassifierSettings))
        return cls(
            network=network,
            map_months=tuple(check_month("map_months", m) for m in as_tuple(cfg.get("map_months"))),
            native_labels=check_bool("native_labels", cfg.get("native_labels", True)),
        )
