"""Recipe settings of the diagnostic scripts: defaults, validation and documentation in one place.

Each script reads its options with ``XxxSettings.from_cfg(cfg)``; unknown keys and wrong values
fail at once with a message naming the key, before any computation.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

__all__ = [
    "PAPER_THRESHOLDS",
    "DetectionSettings",
    "SettingsError",
    "TrackingScriptSettings",
    "parse_month",
]

#: The paper's (Δdist, Δvar) pair for January 2009 (METHOD.md §2.7).
PAPER_THRESHOLDS: tuple[float, float] = (25.0, 0.1)

#: Keys ESMValCore adds to every script's settings.
_ESMVALCORE_KEYS = {
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
}

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


class SettingsError(ValueError):
    """A recipe setting is missing, unknown or has a wrong value."""


def parse_month(value: Any, key: str) -> str:
    """Return a ``YYYY-MM`` string from a recipe value (string or YAML date), or raise."""
    text = str(value)
    if hasattr(value, "year") and hasattr(value, "month"):
        text = f"{value.year:04d}-{value.month:02d}"
    match = _MONTH.match(text)
    if not match or not 1 <= int(match.group(2)) <= 12:
        raise SettingsError(f"setting '{key}' must be a month like 2009-01, got {value!r}")
    return text


@dataclass(frozen=True)
class _Settings:
    """Shared behaviour: construction from the ESMValCore settings dictionary."""

    _doc: ClassVar[str] = ""

    @classmethod
    def from_cfg(cls, cfg: Mapping[str, Any]) -> _Settings:
        """Build and validate the settings from ``cfg`` (recipe options plus ESMValCore keys)."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(cfg) - names - _ESMVALCORE_KEYS)
        if unknown:
            raise SettingsError(
                f"unknown setting(s) {', '.join(unknown)} for this script; known settings: "
                f"{', '.join(sorted(names))}"
            )
        values = {key: cfg[key] for key in names if key in cfg and cfg[key] is not None}
        return cls(**values)


@dataclass(frozen=True)
class DetectionSettings(_Settings):
    """Options of the detection script (``detect_biomes.py``).

    Attributes
    ----------
    reference_months
        Months whose boxes are clustered (``YYYY-MM``); several months are pooled. Default: the
        first January of the data (or the first month if there is no January).
    box_size
        Box edge in degrees (paper: 2; a 2° box holds only four cells of a 1° model, too few
        for a fit with four parameters, so CMIP-class grids need 3-4°).
    min_points
        Minimum number of valid cells in a box.
    alpha
        Significance level of the slope tests (paper: 0.04).
    significance_test
        ``all_slopes`` (paper: every slope p <= alpha) or ``f_test`` (joint F-test).
    outlier_filter
        Cell filter thresholds: ``dic_min``, ``alk_min`` (mmol m-3), ``sst_max`` (degC),
        ``fco2_max`` (µatm); paper values by default.
    carbon
        ``contemporary`` (spco2, dissicos) or ``natural`` (spco2nat, dissicnatos).
    thresholds
        ``auto`` (scan and select with ``selection_rule``), ``paper`` (Δdist=25, Δvar=0.1 in
        absolute Ward heights, whatever ``dist_scale`` says), or a pair
        ``[delta_dist, delta_var]`` in the unit of ``dist_scale``.
    dist_scale
        Unit of Δdist: ``root`` (fraction of the dendrogram's root height; invariant to the
        number of boxes, default) or ``absolute`` (Ward heights, as in the paper).
    scan_delta_dist, scan_delta_var
        Grid of the threshold scan; default the library grid for ``dist_scale``
        (``root``: Δdist 0.02-0.3 of the root height x Δvar 0.05-0.5; ``absolute``: the paper's
        Δdist 20, 25, 28, 30 x Δvar 0.1, 0.5, 0.8, 1.0).
    selection_rule
        Criterion of the automatic choice: ``silhouette``, ``calinski_harabasz``, ``gmm_bic``
        or ``stability`` (bootstrap adjusted Rand index; needs ``stability: true``); only pairs
        giving ``min_biomes`` to ``max_biomes`` biomes qualify.
    spread
        Node spread of the adaptive cut: ``pooled_variance`` (paper) or ``wcss``.
    min_biome_size
        Biomes of fewer boxes (typically single outlying boxes that the cut leaves on their
        own) are merged into the biome with the nearest centroid, in the scan and in the final
        cut; 1 keeps the paper's cut unchanged.
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
    box_size: float = 2.0
    min_points: int = 5
    alpha: float = 0.04
    significance_test: str = "all_slopes"
    outlier_filter: Mapping[str, float] = field(
        default_factory=lambda: {
            "dic_min": 1500.0,
            "alk_min": 1700.0,
            "sst_max": 40.0,
            "fco2_max": 500.0,
        }
    )
    carbon: str = "contemporary"
    thresholds: Any = "auto"
    dist_scale: str = "root"
    scan_delta_dist: tuple[float, ...] = ()
    scan_delta_var: tuple[float, ...] = ()
    selection_rule: str = "silhouette"
    min_biomes: int = 4
    max_biomes: int = 12
    spread: str = "pooled_variance"
    min_biome_size: int = 10
    stability: bool = False
    biome_names: Mapping[int, str] = field(default_factory=dict)
    ice_threshold: float = 15.0
    seed: int = 0

    def __post_init__(self) -> None:
        """Validate and normalize."""
        set_ = object.__setattr__
        months = self.reference_months
        if isinstance(months, str) or hasattr(months, "year"):
            months = (months,)
        set_(self, "reference_months", tuple(parse_month(m, "reference_months") for m in months))
        if not (isinstance(self.box_size, (int, float)) and self.box_size > 0):
            raise SettingsError(
                f"setting 'box_size' must be a positive number, got {self.box_size!r}"
            )
        set_(self, "box_size", float(self.box_size))
        from carbon_biomes.regression import box_lattice

        try:
            box_lattice(self.box_size)
        except ValueError as exc:
            raise SettingsError(f"setting 'box_size': {exc}") from None
        if int(self.min_points) < 2:
            raise SettingsError(f"setting 'min_points' must be at least 2, got {self.min_points}")
        if not 0 < float(self.alpha) < 1:
            raise SettingsError(f"setting 'alpha' must lie in (0, 1), got {self.alpha}")
        if self.significance_test not in ("all_slopes", "f_test"):
            raise SettingsError(
                "setting 'significance_test' must be all_slopes or f_test, got "
                f"{self.significance_test!r}"
            )
        outliers = dict(DetectionSettings.__dataclass_fields__["outlier_filter"].default_factory())
        unknown = set(self.outlier_filter) - set(outliers)
        if unknown:
            raise SettingsError(
                f"unknown key(s) {sorted(unknown)} in 'outlier_filter'; known: {sorted(outliers)}"
            )
        outliers.update({k: float(v) for k, v in self.outlier_filter.items()})
        set_(self, "outlier_filter", outliers)
        if self.carbon not in ("contemporary", "natural"):
            raise SettingsError(
                f"setting 'carbon' must be contemporary or natural, got {self.carbon!r}"
            )
        if self.dist_scale not in ("root", "absolute"):
            raise SettingsError(
                f"setting 'dist_scale' must be root or absolute, got {self.dist_scale!r}"
            )
        thresholds = self.thresholds
        if thresholds == "paper":
            thresholds = PAPER_THRESHOLDS
            set_(self, "dist_scale", "absolute")
        if thresholds != "auto":
            try:
                delta_dist, delta_var = (float(v) for v in thresholds)
            except (TypeError, ValueError):
                raise SettingsError(
                    "setting 'thresholds' must be auto, paper or a pair [delta_dist, delta_var], "
                    f"got {self.thresholds!r}"
                ) from None
            thresholds = (delta_dist, delta_var)
        set_(self, "thresholds", thresholds)
        from carbon_biomes import clustering

        defaults = {
            "root": (clustering.DEFAULT_DELTA_DISTS_ROOT, clustering.DEFAULT_DELTA_VARS),
            "absolute": (clustering.PAPER_DELTA_DISTS, clustering.PAPER_DELTA_VARS),
        }[self.dist_scale]
        for key, default in zip(("scan_delta_dist", "scan_delta_var"), defaults, strict=True):
            values = tuple(float(v) for v in (getattr(self, key) or default))
            if any(v < 0 for v in values):
                raise SettingsError(f"setting '{key}' must be a list of numbers >= 0")
            set_(self, key, values)
        if self.selection_rule not in ("silhouette", "calinski_harabasz", "gmm_bic", "stability"):
            raise SettingsError(
                "setting 'selection_rule' must be silhouette, calinski_harabasz, gmm_bic or "
                f"stability, got {self.selection_rule!r}"
            )
        if self.selection_rule == "stability" and not self.stability:
            raise SettingsError("selection_rule: stability needs stability: true")
        if not 2 <= int(self.min_biomes) <= int(self.max_biomes):
            raise SettingsError("settings need 2 <= min_biomes <= max_biomes")
        if int(self.min_biome_size) < 1:
            raise SettingsError(f"setting 'min_biome_size' must be >= 1, got {self.min_biome_size}")
        if self.spread not in ("pooled_variance", "wcss"):
            raise SettingsError(
                f"setting 'spread' must be pooled_variance or wcss, got {self.spread!r}"
            )
        set_(self, "biome_names", {int(k): str(v) for k, v in dict(self.biome_names).items()})

    @property
    def carbon_variables(self) -> dict[str, str]:
        """CMIP short names of the target (fCO2) and DIC for the chosen carbon."""
        if self.carbon == "natural":
            return {"fco2": "spco2nat", "dic": "dissicnatos"}
        return {"fco2": "spco2", "dic": "dissicos"}


@dataclass(frozen=True)
class TrackingScriptSettings:
    """Options of the tracking script (``track_biomes.py``).

    Every field of :class:`carbon_biomes.tracking.TrackingSettings` (network, training, splits,
    seed, OOD threshold, ``rescale_per_month``, grid search) is accepted at the top level of the
    script's recipe entry; in addition:

    Attributes
    ----------
    network
        The validated :class:`~carbon_biomes.tracking.TrackingSettings`.
    map_months
        Months shown in the biome-map figure; default January, April, July and October of the
        reference year (or of the last full year).
    native_labels
        Also write the labels of every month on the native grid.
    """

    network: Any
    map_months: tuple[str, ...] = ()
    native_labels: bool = True

    @classmethod
    def from_cfg(cls, cfg: Mapping[str, Any]) -> TrackingScriptSettings:
        """Split and validate the script's settings."""
        from carbon_biomes.tracking import TrackingSettings

        own = {"map_months", "native_labels"}
        network_keys = {f.name for f in dataclasses.fields(TrackingSettings)}
        unknown = sorted(set(cfg) - own - network_keys - _ESMVALCORE_KEYS)
        if unknown:
            raise SettingsError(
                f"unknown setting(s) {', '.join(unknown)} for the tracking script; known "
                f"settings: {', '.join(sorted(own | network_keys))}"
            )
        try:
            network = TrackingSettings.from_mapping(
                {key: cfg[key] for key in network_keys if key in cfg}
            )
        except ValueError as exc:
            raise SettingsError(str(exc)) from None
        months = cfg.get("map_months") or ()
        if isinstance(months, str) or hasattr(months, "year"):
            months = (months,)
        native = cfg.get("native_labels", True)
        if not isinstance(native, bool):
            raise SettingsError(f"setting 'native_labels' must be true or false, got {native!r}")
        return cls(
            network=network,
            map_months=tuple(parse_month(m, "map_months") for m in months),
            native_labels=native,
        )
