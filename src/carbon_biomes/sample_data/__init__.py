"""Synthetic, CMOR-compliant CMIP6-like ocean carbon output for demonstrations and tests.

The generator writes monthly surface fields of three fictitious Earth System Models
(``SYNTH-ESM-A``, ``SYNTH-ESM-B``, ``SYNTH-ESM-C``) in the CMIP6 data reference syntax
(ESGF directory layout), so that ESMValCore finds and loads them like real CMIP6 data:

``CMIP6/<activity>/SYNTH/<source_id>/<experiment>/<ensemble>/<table>/<var>/gn/v20260101/<file>.nc``

with, by default, experiment ``historical`` (activity ``CMIP``) and ensemble member
``r1i1p1f1``. Further ensemble members (any variant label ``rNiNpNfN``) and the
emission-driven experiment ``esm-hist`` (activity ``CMIP``) can be requested
(:data:`EXPERIMENTS`); each run gets its own files and random streams.

Variables: ``spco2``, ``tos``, ``sos``, ``dissicos``, ``talkos``, ``mlotst`` (Omon),
``siconc`` (SImon) and ``areacello`` (Ofx). Their metadata follow the CMIP6 data request
tables bundled with ESMValCore.

The fields are built from analytic climatologies (meridional temperature gradient, seasonal
cycle growing with latitude, equatorial and eastern-boundary upwelling, subtropical salinity
maxima, alkalinity tied to salinity, biological drawdown, sea ice at the freezing point), an
ENSO-like interannual mode, warming and carbon trends, and spatially correlated small-scale
noise that lets temperature, DIC and alkalinity vary partly independently within a few grid
cells. DIC is set relative to equilibrium with a rising atmospheric CO2, and surface fCO2 is
computed from (DIC, alkalinity, temperature, salinity) with PyCO2SYS's own equations, so
that regressions of fCO2 on the drivers recover PyCO2SYS's partial derivatives.

Unit conventions: DIC and alkalinity are converted between mol m-3 (files) and µmol kg-1
(chemistry) with a constant density of :data:`SEAWATER_DENSITY` (1025 kg m-3); fCO2 is
written as ``spco2`` in Pa with 1 µatm = :data:`UATM_TO_PA` Pa (the small difference
between fCO2 and pCO2, < 0.3 %, is ignored: the fCO2 value is stored).

Alongside the models, two fictitious observation-based products (:data:`OBSERVATIONS`) can be
written in the layout of ESMValTool's CMORized observations (projects OBS6 and OBS, default
ESMValCore data source ``Tier{tier}/{dataset}/{project}_{dataset}_{type}_{version}_{mip}_
{short_name}_YYYYMM-YYYYMM.nc`` below ``<out_dir>/OBS``): ``SYNTH-OBS-CARBON`` (OBS6, like
OceanSODA-ETHZ: ``spco2``, ``dissicos``, ``talkos`` on a 1x1 degree grid) and ``SYNTH-OBS-SST``
(OBS, like HadISST: ``tos`` in K on a 0.5 degree grid with latitudes from north to south).
They observe one unbiased climate, so the SST product is consistent with the carbon product's
chemistry (:func:`generate_observations`, by default part of :func:`generate_sample_data`).

Every file is labelled as synthetic in its ``title``, ``comment`` and ``history``
attributes. Identical arguments and seed give bit-identical files; the data of a given
model, run and month do not depend on which other models, runs or years are generated in
the same call.

Modules (only NumPy, netCDF4/cftime, PyCO2SYS and the standard library are used):

``models``
    The fictitious models, the experiments and the ensemble members.
``geography``
    The analytic land mask.
``grids``
    Regular and curvilinear grids with cell areas.
``chemistry``
    Carbonate chemistry with PyCO2SYS.
``fields``
    The physical fields and their random variability.
``cmor``
    CMIP6 variable metadata, DRS paths and CMOR-compliant NetCDF writing.
``observations``
    The fictitious observation-based products and :func:`generate_observations`.
``generator``
    :func:`generate_sample_data`, the driver.
"""

from __future__ import annotations

from carbon_biomes.sample_data.chemistry import (
    SEAWATER_DENSITY,
    UATM_TO_PA,
    dic_from_fco2_alk,
    fco2_from_dic_alk,
)
from carbon_biomes.sample_data.cmor import VARIABLES, VariableSpec, output_path
from carbon_biomes.sample_data.generator import generate_sample_data
from carbon_biomes.sample_data.geography import land_mask
from carbon_biomes.sample_data.grids import (
    EARTH_RADIUS,
    MAX_RESOLUTION,
    MIN_RESOLUTION,
    Grid,
    build_grid,
)
from carbon_biomes.sample_data.models import (
    DEFAULT_ENSEMBLES,
    DEFAULT_EXPERIMENTS,
    DEFAULT_MODELS,
    EXPERIMENTS,
    FIRST_YEAR,
    LAST_YEAR,
    MODELS,
    ExperimentSpec,
    ModelSpec,
    parse_variant_label,
)
from carbon_biomes.sample_data.observations import (
    DEFAULT_OBSERVATIONS,
    OBS_DIRECTORY,
    OBSERVATIONS,
    OBSERVED_CLIMATE,
    ObservationSpec,
    build_observation_grid,
    generate_observations,
    observation_path,
    observation_variable,
)

__all__ = [
    "DEFAULT_ENSEMBLES",
    "DEFAULT_EXPERIMENTS",
    "DEFAULT_MODELS",
    "DEFAULT_OBSERVATIONS",
    "EARTH_RADIUS",
    "EXPERIMENTS",
    "FIRST_YEAR",
    "LAST_YEAR",
    "MAX_RESOLUTION",
    "MIN_RESOLUTION",
    "MODELS",
    "OBSERVATIONS",
    "OBSERVED_CLIMATE",
    "OBS_DIRECTORY",
    "SEAWATER_DENSITY",
    "UATM_TO_PA",
    "VARIABLES",
    "ExperimentSpec",
    "Grid",
    "ModelSpec",
    "ObservationSpec",
    "VariableSpec",
    "build_grid",
    "build_observation_grid",
    "dic_from_fco2_alk",
    "fco2_from_dic_alk",
    "generate_observations",
    "generate_sample_data",
    "land_mask",
    "observation_path",
    "observation_variable",
    "output_path",
    "parse_variant_label",
]
