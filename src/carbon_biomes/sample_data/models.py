"""The fictitious models, the experiments and the ensemble members of the sample data.

A generated dataset is identified like a CMIP6 one by its model (``source_id``, see
:data:`MODELS`), its experiment (``experiment_id``, see :data:`EXPERIMENTS`, which also fixes
the ``activity_id`` of the data reference syntax) and its ensemble member (``variant_label``
``rNiNpNfN``, see :func:`parse_variant_label`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

__all__ = [
    "DEFAULT_ENSEMBLES",
    "DEFAULT_EXPERIMENTS",
    "DEFAULT_MODELS",
    "EXPERIMENTS",
    "FIRST_YEAR",
    "LAST_YEAR",
    "MODELS",
    "ExperimentSpec",
    "ModelSpec",
    "check_years",
    "parse_variant_label",
]

#: Earliest and latest year that can be generated (time units are days since 1850-01-01).
FIRST_YEAR = 1850
LAST_YEAR = 2100

_INSTITUTION_ID = "SYNTH"


# --------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelSpec:
    """A fictitious Earth System Model: grid, default period and climate biases.

    Attributes
    ----------
    source_id
        Dataset name (CMIP6 ``source_id``); no real model has these names.
    grid_type
        ``"regular"`` (1-D latitude/longitude) or ``"curvilinear"`` (2-D latitude/longitude
        on dimensions ``j, i`` with a pole displaced over Greenland).
    resolution
        Nominal resolution in degrees.
    default_years
        First and last year generated when no period is requested.
    calendar
        CF calendar of the time coordinate.
    description
        Short text used in the ``source`` attribute.
    sst_bias
        Global sea-surface temperature offset (degC).
    polar_sst_bias
        Additional temperature offset poleward of about 50 degrees (degC); moves the ice edge.
    warming_rate
        Surface warming trend (degC per year).
    upwelling_strength
        Scale factor of the upwelling cooling and carbon enrichment (1 = reference).
    enso_amplitude
        Temperature amplitude of the ENSO-like mode in the cold tongue (degC per unit index).
    salinity_bias
        Global salinity offset (0.001).
    alkalinity_bias
        Alkalinity offset (µmol kg-1).
    dic_bias
        DIC offset relative to the reference (µmol kg-1).
    dic_extra_trend
        DIC trend on top of equilibration with rising atmospheric CO2 (µmol kg-1 per year).
    bio_amplitude
        Scale factor of the seasonal biological DIC drawdown.
    mld_factor
        Scale factor of the mixed-layer depth.
    """

    source_id: str
    grid_type: Literal["regular", "curvilinear"]
    resolution: float
    default_years: tuple[int, int]
    calendar: str
    description: str
    sst_bias: float = 0.0
    polar_sst_bias: float = 0.0
    warming_rate: float = 0.02
    upwelling_strength: float = 1.0
    enso_amplitude: float = 1.0
    salinity_bias: float = 0.0
    alkalinity_bias: float = 0.0
    dic_bias: float = 0.0
    dic_extra_trend: float = 0.0
    bio_amplitude: float = 1.0
    mld_factor: float = 1.0

    @property
    def institution_id(self) -> str:
        """CMIP6 ``institution_id`` (always ``SYNTH``)."""
        return _INSTITUTION_ID


#: The fictitious models, keyed by ``source_id`` (read-only mapping).
MODELS: Mapping[str, ModelSpec] = MappingProxyType(
    {
        "SYNTH-ESM-A": ModelSpec(
            source_id="SYNTH-ESM-A",
            grid_type="regular",
            resolution=1.0,
            default_years=(2000, 2009),
            calendar="standard",
            description="reference configuration on a regular 1x1 degree grid",
        ),
        "SYNTH-ESM-B": ModelSpec(
            source_id="SYNTH-ESM-B",
            grid_type="curvilinear",
            resolution=1.0,
            default_years=(2000, 2009),
            calendar="noleap",
            description=(
                "warm-biased configuration with weak upwelling on a nominal 1 degree "
                "curvilinear grid with the north pole displaced over Greenland"
            ),
            sst_bias=1.0,
            warming_rate=0.025,
            upwelling_strength=0.6,
            enso_amplitude=0.7,
            alkalinity_bias=10.0,
            dic_bias=-5.0,
            mld_factor=0.8,
        ),
        "SYNTH-ESM-C": ModelSpec(
            source_id="SYNTH-ESM-C",
            grid_type="regular",
            resolution=0.5,
            default_years=(2008, 2009),
            calendar="360_day",
            description=(
                "cold-polar configuration with an extended sea-ice cover, a strong carbon "
                "trend and strong biology on a regular 0.5x0.5 degree grid"
            ),
            polar_sst_bias=-1.2,
            warming_rate=0.03,
            enso_amplitude=1.3,
            salinity_bias=-0.2,
            dic_extra_trend=0.6,
            bio_amplitude=1.3,
            mld_factor=1.15,
        ),
    }
)

#: Models generated when none are requested.
DEFAULT_MODELS: tuple[str, ...] = tuple(MODELS)


# --------------------------------------------------------------------------------------
# Experiments
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExperimentSpec:
    """A CMIP6 experiment that the generator can imitate.

    Attributes
    ----------
    experiment_id
        CMIP6 ``experiment_id``.
    activity_id
        CMIP6 ``activity_id`` of the experiment in the CMIP6 controlled vocabulary (the
        ``activity`` facet of ESMValCore and the second level of the DRS directories).
    title
        Experiment description of the CMIP6 controlled vocabulary (global attribute
        ``experiment``, followed by "(synthetic stand-in)").
    co2_drift
        Atmospheric CO2 fugacity added to the common historical curve, growing linearly
        from :data:`FIRST_YEAR` (µatm per year). Surface DIC equilibrates with it and fCO2 is
        computed from DIC as in every experiment, so the experiments differ physically
        consistently.
    """

    experiment_id: str
    activity_id: str
    title: str
    co2_drift: float = 0.0


#: The experiments that can be generated, keyed by ``experiment_id`` (read-only mapping).
#: ``historical`` is concentration-driven (prescribed atmospheric CO2); in the
#: emission-driven ``esm-hist`` the models compute their own atmospheric CO2, here slightly
#: above the prescribed one (+7.5 µatm in 2000), so DIC and fCO2 are slightly higher.
EXPERIMENTS: Mapping[str, ExperimentSpec] = MappingProxyType(
    {
        "historical": ExperimentSpec(
            experiment_id="historical",
            activity_id="CMIP",
            title="all-forcing simulation of the recent past",
        ),
        "esm-hist": ExperimentSpec(
            experiment_id="esm-hist",
            activity_id="CMIP",
            title=(
                "all-forcing simulation of the recent past with atmospheric CO2 "
                "concentration calculated"
            ),
            co2_drift=0.05,
        ),
    }
)

#: Experiments generated when none are requested.
DEFAULT_EXPERIMENTS: tuple[str, ...] = ("historical",)

_KNOWN_EXPERIMENTS = "known experiments are " + ", ".join(
    f"{spec.experiment_id} (activity {spec.activity_id})" for spec in EXPERIMENTS.values()
)


def _experiment(experiment_id: str) -> ExperimentSpec:
    """Look up an experiment; :class:`ValueError` naming the known ones if unknown."""
    try:
        return EXPERIMENTS[experiment_id]
    except (KeyError, TypeError):
        msg = f"invalid experiment {experiment_id!r}: {_KNOWN_EXPERIMENTS}"
        raise ValueError(msg) from None


# --------------------------------------------------------------------------------------
# Ensemble members
# --------------------------------------------------------------------------------------

#: Ensemble members (variant labels) generated when none are requested.
DEFAULT_ENSEMBLES: tuple[str, ...] = ("r1i1p1f1",)

_VARIANT_LABEL = re.compile(r"r([1-9][0-9]*)i([1-9][0-9]*)p([1-9][0-9]*)f([1-9][0-9]*)")
# The run that existed before experiments and members could be chosen.
_REFERENCE_RUN = ("historical", "r1i1p1f1")
_VARIANT_HELP = (
    "expected a CMIP6 variant label rNiNpNfN with positive indices and no leading zeros, "
    "e.g. r1i1p1f1 or r2i1p1f1"
)


def parse_variant_label(label: str) -> tuple[int, int, int, int]:
    """Split a CMIP6 variant label ``r<k>i<l>p<m>f<n>`` into its four indices.

    Parameters
    ----------
    label
        The ensemble member, e.g. ``r2i1p1f1``.

    Returns
    -------
    tuple of int
        ``(realization_index, initialization_index, physics_index, forcing_index)``.

    Raises
    ------
    ValueError
        If ``label`` is not a variant label with positive indices written without leading
        zeros (``r01i1p1f1`` would not match its own ``realization_index``).
    """
    match = _VARIANT_LABEL.fullmatch(label) if isinstance(label, str) else None
    if match is None:
        msg = f"invalid ensemble {label!r}: {_VARIANT_HELP}"
        raise ValueError(msg)
    r, i, p, f = (int(index) for index in match.groups())
    return r, i, p, f


@dataclass(frozen=True)
class _Member:
    """One run of a model: an experiment and an ensemble member (validated)."""

    experiment: ExperimentSpec
    variant_label: str

    @property
    def indices(self) -> tuple[int, int, int, int]:
        """Realization, initialization, physics and forcing index."""
        return parse_variant_label(self.variant_label)

    @property
    def is_reference(self) -> bool:
        """``True`` for historical r1i1p1f1, the only run before members were added.

        Its random streams and metadata are unchanged, so its files stay bit-identical.
        """
        return (self.experiment.experiment_id, self.variant_label) == _REFERENCE_RUN

    @property
    def label(self) -> str:
        """``<experiment_id> <variant_label>``, for messages."""
        return f"{self.experiment.experiment_id} {self.variant_label}"


def check_years(years: tuple[int, int]) -> tuple[int, int]:
    """A period ``(first, last)`` of integer years within :data:`FIRST_YEAR`-:data:`LAST_YEAR`.

    Raises
    ------
    ValueError
        For a period that is not a pair of integers, runs backwards or leaves that range.
    """
    try:
        first, last = (int(year) for year in years)
    except (TypeError, ValueError):
        msg = f"invalid years {years!r}: expected a pair (first, last) of integers"
        raise ValueError(msg) from None
    if first > last:
        msg = f"invalid years {first}-{last}: the first year must not be after the last"
        raise ValueError(msg)
    if first < FIRST_YEAR or last > LAST_YEAR:
        msg = f"invalid years {first}-{last}: years must lie within {FIRST_YEAR}-{LAST_YEAR}"
        raise ValueError(msg)
    return first, last
