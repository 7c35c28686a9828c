"""Recipe settings of the diagnostic scripts, read from ESMValCore's ``settings.yml``.

Each script takes the library's settings objects (:class:`~carbon_biomes.core.monthly_regression
.RegressionSettings`, :class:`~carbon_biomes.core.detection.DetectionSettings`,
:class:`~carbon_biomes.core.classifier.ClassifierSettings`, whose defaults are the library's
constants) plus a few options of its own. Unknown keys and wrong values fail at once with a
message naming the key, before any computation.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from carbon_biomes.core.classifier import ClassifierSettings
from carbon_biomes.core.comparison import COMMON_LABEL_MODES
from carbon_biomes.core.coverage_statistics import TrendSettings
from carbon_biomes.core.detection import DetectionSettings
from carbon_biomes.core.errors import SettingsError
from carbon_biomes.core.monthly_regression import RegressionSettings
from carbon_biomes.core.regions import PAPER_REGIONS, Region, regions_from_settings
from carbon_biomes.core.validation import (
    as_tuple,
    check_bool,
    check_choice,
    check_int,
    check_known_keys,
    check_month,
    check_number,
)

__all__ = [
    "ESMVALCORE_KEYS",
    "METHODS",
    "PAPER_PRESET",
    "AnalysisScriptSettings",
    "ComparisonScriptSettings",
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


logger = logging.getLogger(__name__)

#: Values of the ``method`` setting of every script.
METHODS = ("default", "paper")

#: What ``method: paper`` sets in each script: every faithful option of docs/method.md §5
#: (keys the recipe gives itself win over the preset).
PAPER_PRESET: dict[str, dict[str, Any]] = {
    "regression": {
        "box_size": 2.0,
        "alpha": 0.04,
        "significance_test": "all_slopes",
    },
    "detection": {
        "thresholds": "paper",
        "dist_scale": "absolute",
        "spread": "pooled_variance",
        "min_biome_size": 1,
    },
    "tracking": {
        "hidden_units": [64, 128, 256, 128, 64],
        "l2": 0.01,
        "dropout": 0.5,
        "optimizer": "adam",
        "learning_rate": 0.001,
        "batch_size": 32,
        "epochs": 50,
        "patience": 5,
        "rescale_per_month": True,
    },
    "analysis": {
        "regions": [region.name for region in PAPER_REGIONS],
    },
}


def apply_method(cfg: Mapping[str, Any], script: str) -> dict[str, Any]:
    """The script's settings with the ``method`` preset filled in (and ``method`` removed).

    ``method: default`` (or no ``method``) leaves the settings as given; ``method: paper`` adds
    every key of :data:`PAPER_PRESET` for the script that the recipe does not set itself. Keys
    the recipe sets that differ from the paper's value are logged, so that a run that departs
    from the paper says so.
    """
    settings = dict(cfg)
    method = check_choice("method", settings.pop("method", "default"), METHODS)
    if method == "paper":
        preset = PAPER_PRESET[script]
        departures = {key: settings[key] for key in preset
                      if key in settings and settings[key] != preset[key]}  # fmt: skip
        for key, value in preset.items():
            settings.setdefault(key, value)
        logger.info(
            "method: paper sets %s",
            ", ".join(f"{key}={value!r}" for key, value in preset.items()),
        )
        if departures:
            logger.warning(
                "method: paper, but the recipe overrides %s (paper: %s)",
                ", ".join(f"{k}={v!r}" for k, v in departures.items()),
                ", ".join(f"{k}={preset[k]!r}" for k in departures),
            )
    return settings


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
        cfg = apply_method(cfg, "regression")
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
        cfg = apply_method(cfg, "detection")
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
    low_probability
        Boxes whose softmax probability is below this (default 0.5) are hatched on the biome
        maps, like out-of-distribution boxes.
    """

    network: ClassifierSettings
    map_months: tuple[str, ...] = ()
    native_labels: bool = True
    low_probability: float = 0.5

    @classmethod
    def from_cfg(cls, cfg: Mapping[str, Any]) -> TrackingScriptSettings:
        """Split and validate the script's settings."""
        cfg = apply_method(cfg, "tracking")
        own = {"map_months", "native_labels", "low_probability"}
        check_known_keys(
            "the tracking script", set(cfg) - ESMVALCORE_KEYS, own | _fields(ClassifierSettings)
        )
        network = ClassifierSettings.from_mapping(_pick(cfg, ClassifierSettings))
        return cls(
            network=network,
            map_months=tuple(check_month("map_months", m) for m in as_tuple(cfg.get("map_months"))),
            native_labels=check_bool("native_labels", cfg.get("native_labels", True)),
            low_probability=check_number(
                "low_probability", cfg.get("low_probability", 0.5), 0.0, 1.0
            ),
        )


#: Physical-context fields (analysis names of :mod:`carbon_biomes.workflow.inputs`): SST,
#: salinity, mixed-layer depth, sea-ice fraction and fCO2.
CONTEXT_VARIABLES: tuple[str, ...] = ("sst", "sss", "mld", "ice", "fco2")


@dataclass(frozen=True)
class AnalysisScriptSettings:
    """Options of the analysis script (``analyse_biomes.py``).

    Attributes
    ----------
    regions
        Regions of the coverage and context statistics (setting ``regions``: names of the
        default regions and/or mappings ``{name, lat: [south, north], lon: [west, east]}``,
        see :func:`~carbon_biomes.core.regions.regions_from_settings`); default the paper's
        four and the global ocean.
    trends
        Trend test (settings ``trend_method``: ``prewhitening`` (default), ``hamed_rao`` or
        ``original``;
        ``trend_alpha``, default 0.05; ``min_years``, default 10: a shorter period gets no
        trends, with a log line).
    frequency_map_months
        Calendar months (1-12) drawn in the frequency-map figure besides all months together
        (default January and July); the NetCDF files hold all twelve.
    native_frequency_maps
        Also write the frequency maps on the native grid (default true).
    context_variables
        Fields averaged per biome and region (default ``sst, sss, mld, ice, fco2``); fields a
        dataset lacks are skipped with a log line.
    rc_trend_min_coverage
        Fraction of the months in which a box must have significant RCs for its RC trend
        (default 0.5).
    """

    regions: tuple[Region, ...]
    trends: TrendSettings = TrendSettings()
    frequency_map_months: tuple[int, ...] = (1, 7)
    native_frequency_maps: bool = True
    context_variables: tuple[str, ...] = CONTEXT_VARIABLES
    rc_trend_min_coverage: float = 0.5

    @classmethod
    def from_cfg(cls, cfg: Mapping[str, Any]) -> AnalysisScriptSettings:
        """Validate the script's settings."""
        cfg = apply_method(cfg, "analysis")
        own = {
            "regions", "trend_method", "trend_alpha", "min_years",
            "frequency_map_months", "native_frequency_maps", "context_variables",
            "rc_trend_min_coverage",
        }  # fmt: skip
        check_known_keys("the analysis script", set(cfg) - ESMVALCORE_KEYS, own)
        trends = TrendSettings(
            method=cfg.get("trend_method", TrendSettings.method),
            alpha=cfg.get("trend_alpha", 0.05),
            min_years=cfg.get("min_years", TrendSettings.min_years),
        )
        months = tuple(
            check_int("frequency_map_months", m, 1)
            for m in as_tuple(cfg.get("frequency_map_months", (1, 7)))
        )
        if any(m > 12 for m in months):
            raise SettingsError(f"setting 'frequency_map_months' takes months 1-12, got {months}")
        variables = tuple(as_tuple(cfg.get("context_variables", CONTEXT_VARIABLES)))
        for name in variables:
            check_choice("context_variables", name, CONTEXT_VARIABLES)
        return cls(
            regions=regions_from_settings(cfg.get("regions")),
            trends=trends,
            frequency_map_months=months,
            native_frequency_maps=check_bool(
                "native_frequency_maps", cfg.get("native_frequency_maps", True)
            ),
            context_variables=variables,
            rc_trend_min_coverage=check_number(
                "rc_trend_min_coverage", cfg.get("rc_trend_min_coverage", 0.5), 0.0, 1.0
            ),
        )


#: Detection keys that do not apply to pooled detection (each dataset keeps its own months).
_NOT_POOLED = frozenset({"reference_months", "biome_names"})


@dataclass(frozen=True)
class ComparisonScriptSettings:
    """Options of the comparison script (``compare_biomes.py``).

    Attributes
    ----------
    reference
        Alias of the reference dataset (a dataset of the recipe, or the alias given to the
        products of an observation-based reference); required with ``common_labels:
        reference``, optional with ``pooled`` (then no metric against a reference).
    common_labels
        ``reference`` (default: the reference's biomes and classifier label every dataset) or
        ``pooled`` (biomes detected on the pooled reference boxes of all datasets, each dataset
        with the same number of area-weighted boxes).
    regions
        Regions of the metrics (as in the analysis script); default the paper's four and the
        global ocean.
    trends
        Trend test of the coverage series (``trend_method``, ``trend_alpha``, ``min_years``).
    map_months
        Month(s) of the map panels; default the reference's first detection month (or the
        first month all datasets share).
    overlap_weight, max_match_cost
        Matching of each dataset's own biomes to the common ones
        (:func:`~carbon_biomes.core.matching.match_biomes`; defaults 0.5 and 1.5).
    pooled_boxes_per_dataset
        Boxes drawn per dataset for pooled detection; default the smallest number any dataset
        has.
    detection, network
        Pooled mode only: the detection keys (thresholds, selection rule, ...; not
        ``reference_months``: each dataset's detection months are used) and the network keys
        of the tracking script, at the top level; ``seed`` seeds the draw, the detection and
        the network.
    report
        Write the offline HTML report of the run at the end (default true).
    """

    reference: str | None = None
    common_labels: str = "reference"
    regions: tuple[Region, ...] = ()
    trends: TrendSettings = TrendSettings()
    map_months: tuple[str, ...] = ()
    overlap_weight: float = 0.5
    max_match_cost: float = 1.5
    pooled_boxes_per_dataset: int | None = None
    detection: DetectionSettings = DetectionSettings()
    network: ClassifierSettings = ClassifierSettings()
    report: bool = True

    @classmethod
    def from_cfg(cls, cfg: Mapping[str, Any]) -> ComparisonScriptSettings:
        """Validate the script's settings."""
        cfg = dict(cfg)
        own = {
            "reference", "common_labels", "regions", "trend_method", "trend_alpha", "min_years",
            "map_months", "overlap_weight", "max_match_cost", "pooled_boxes_per_dataset",
            "report",
        }  # fmt: skip
        pooled_keys = (_fields(DetectionSettings) - _NOT_POOLED) | _fields(ClassifierSettings)
        check_known_keys("the comparison script", set(cfg) - ESMVALCORE_KEYS, own | pooled_keys)
        mode = check_choice("common_labels", cfg.get("common_labels", "reference"),
                            COMMON_LABEL_MODES)  # fmt: skip
        reference = cfg.get("reference")
        if reference is not None and not isinstance(reference, str):
            raise SettingsError(f"setting 'reference' must be a dataset alias, got {reference!r}")
        if mode == "reference" and not reference:
            raise SettingsError(
                "common_labels: reference needs the setting 'reference' (the alias of the "
                "reference dataset); or use common_labels: pooled"
            )
        given = sorted(key for key in set(cfg) & pooled_keys if key != "seed")
        if mode == "reference" and given:
            raise SettingsError(
                f"settings {', '.join(given)} apply to common_labels: pooled only (with "
                "common_labels: reference the reference's own detection and network are used)"
            )
        per_dataset = cfg.get("pooled_boxes_per_dataset")
        return cls(
            reference=reference,
            common_labels=mode,
            regions=regions_from_settings(cfg.get("regions")),
            trends=TrendSettings(
                method=cfg.get("trend_method", TrendSettings.method),
                alpha=cfg.get("trend_alpha", 0.05),
                min_years=cfg.get("min_years", TrendSettings.min_years),
            ),
            map_months=tuple(check_month("map_months", m) for m in as_tuple(cfg.get("map_months"))),
            overlap_weight=check_number("overlap_weight", cfg.get("overlap_weight", 0.5), 0.0, 1.0),
            max_match_cost=check_number("max_match_cost", cfg.get("max_match_cost", 1.5), 0.0),
            pooled_boxes_per_dataset=None if per_dataset is None
            else check_int("pooled_boxes_per_dataset", per_dataset, 1),
            detection=DetectionSettings(**_pick(
                {k: v for k, v in cfg.items() if k not in _NOT_POOLED}, DetectionSettings)),
            network=ClassifierSettings.from_mapping(_pick(cfg, ClassifierSettings)),
            report=check_bool("report", cfg.get("report", True)),
        )  # fmt: skip

