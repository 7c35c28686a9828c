"""The physical fields: analytic climatologies, ENSO-like mode, trends and correlated noise.

:func:`_month_fields` builds the monthly fields of one run on the ocean cells; surface fCO2
is then computed from the stored DIC, alkalinity, temperature and salinity with PyCO2SYS
(:func:`_spco2_from_stored`). All randomness comes from NumPy generators seeded with
``(seed, model, stream[, month])`` and, for every run other than historical r1i1p1f1, a spawn
key of the experiment and the variant label (:func:`_member_key`).
"""

from __future__ import annotations

import math
import zlib
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

from carbon_biomes.sample_data.chemistry import (
    SEAWATER_DENSITY,
    UATM_TO_PA,
    dic_from_fco2_alk,
    fco2_from_dic_alk,
)
from carbon_biomes.sample_data.geography import _gauss, _smoothstep, _wrap180
from carbon_biomes.sample_data.models import (
    FIRST_YEAR,
    LAST_YEAR,
    ExperimentSpec,
    ModelSpec,
    _Member,
)

__all__: list[str] = []

# Reference year of trends and of the atmospheric CO2 curve.
_REFERENCE_YEAR = 2000

# Ids of the random streams (part of the seed sequence of each stream).
_STREAM_ENSO = 1
_NOISE_FIELDS: Mapping[str, int] = MappingProxyType(
    {"tos": 11, "sos": 12, "dic": 13, "alk": 14, "mld": 15}
)
# Standard deviations of the small-scale noise of each field.
_NOISE_STD: Mapping[str, float] = MappingProxyType(
    {"tos": 0.3, "sos": 0.08, "dic": 7.0, "alk": 5.5, "mld": 0.2}
)
# Small-scale noise: spatial Gaussian smoothing (cells) and temporal moving average.
_NOISE_SIGMA_CELLS = 1.0
_NOISE_MEMORY = 3
_NOISE_PERSISTENCE = 0.6
# DIC excess of fully upwelled water (µmol/kg).
_UPWELLING_DIC = 38.0


def _model_key(source_id: str) -> int:
    """Stable integer key of a model name for seeding its random streams."""
    return zlib.crc32(source_id.encode("utf-8"))


def _member_key(member: _Member) -> tuple[int, ...]:
    """Spawn key of the random streams of a run (experiment and ensemble member).

    Empty for historical r1i1p1f1, whose streams therefore are those of the generator before
    it knew about members; otherwise the CRC-32 of the experiment id and the four indices of
    the variant label. The key enters :class:`numpy.random.SeedSequence` as ``spawn_key``,
    so it can never be confused with the entropy ``(seed, model, stream[, month])``.
    """
    if member.is_reference:
        return ()
    return (zlib.crc32(member.experiment.experiment_id.encode("utf-8")), *member.indices)


def _rng(entropy: tuple[int, ...], member_key: tuple[int, ...]) -> np.random.Generator:
    """Random generator of one stream of one run."""
    return np.random.default_rng(np.random.SeedSequence(list(entropy), spawn_key=member_key))


def _month_index(year: int, month: int) -> int:
    """Months since January of :data:`FIRST_YEAR` (``month`` is 1-12)."""
    return (year - FIRST_YEAR) * 12 + month - 1


def _enso_index(seed: int, spec: ModelSpec, member_key: tuple[int, ...] = ()) -> np.ndarray:
    """Monthly ENSO-like index for all months of FIRST_YEAR..LAST_YEAR (unit variance).

    A damped oscillator (AR(2) with a period of about four years) driven by white noise.
    """
    rng = _rng((seed, _model_key(spec.source_id), _STREAM_ENSO), member_key)
    n_months = (LAST_YEAR - FIRST_YEAR + 1) * 12
    spin_up = 600
    radius, period = 0.985, 48.0
    a1 = 2.0 * radius * math.cos(2.0 * math.pi / period)
    a2 = -(radius**2)
    shocks = rng.standard_normal(n_months + spin_up)
    index = np.zeros(n_months + spin_up)
    for n in range(2, n_months + spin_up):
        index[n] = a1 * index[n - 1] + a2 * index[n - 2] + shocks[n]
    index = index[spin_up:]
    return (index - index.mean()) / index.std()


def _gaussian_kernel(sigma: float, truncate: float) -> np.ndarray:
    """Normalised 1-D Gaussian weights of radius ``int(truncate * sigma + 0.5)`` cells."""
    radius = int(truncate * float(sigma) + 0.5)
    x = np.arange(-radius, radius + 1)
    phi = np.exp(-0.5 / (sigma * sigma) * x**2)
    return phi / phi.sum()


def _correlate_symmetric(
    field: np.ndarray, weights: np.ndarray, axis: int, mode: str
) -> np.ndarray:
    """Correlate ``field`` along ``axis`` with a symmetric kernel of odd length.

    ``mode`` ``"nearest"`` repeats the edge values, ``"wrap"`` is periodic. The sums are
    formed in the order of SciPy's ``correlate1d`` for symmetric kernels (centre first,
    then the outermost pair inwards), so the result is bit-identical to
    ``scipy.ndimage.correlate1d`` with the same mode.
    """
    radius = len(weights) // 2
    pad = [(0, 0)] * field.ndim
    pad[axis] = (radius, radius)
    extended = np.pad(field, pad, mode="edge" if mode == "nearest" else "wrap")
    size = field.shape[axis]

    def shifted(offset: int) -> np.ndarray:
        index = [slice(None)] * field.ndim
        index[axis] = slice(radius + offset, radius + offset + size)
        return extended[tuple(index)]

    result = shifted(0) * weights[radius]
    for offset in range(radius, 0, -1):
        result += (shifted(-offset) + shifted(offset)) * weights[radius - offset]
    return result


def _gaussian_smooth(field: np.ndarray, sigma: float, truncate: float = 3.0) -> np.ndarray:
    """Gaussian smoothing of a 2-D field, edge-repeating in y and periodic in x.

    Equal, bit for bit, to ``scipy.ndimage.gaussian_filter(field, sigma,
    mode=("nearest", "wrap"), truncate=truncate)`` for float64 input, without needing SciPy.
    """
    weights = _gaussian_kernel(sigma, truncate)
    smoothed = _correlate_symmetric(np.asarray(field, dtype=np.float64), weights, 0, "nearest")
    return _correlate_symmetric(smoothed, weights, 1, "wrap")


def _white_smoothed(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """Gaussian-smoothed white noise (periodic in longitude), scaled to unit variance."""
    field = _gaussian_smooth(rng.standard_normal(shape), sigma=_NOISE_SIGMA_CELLS, truncate=3.0)
    return field / field.std()


class _NoiseStream:
    """Spatially and temporally correlated noise for one field of one run of a model.

    Each month's innovation is drawn from its own seed (seed, model, field, month; spawn key
    of the run), and the noise is a moving average of the last :data:`_NOISE_MEMORY`
    innovations, so the noise of a month does not depend on the first month generated.
    """

    def __init__(
        self,
        seed: int,
        spec: ModelSpec,
        field: str,
        shape: tuple[int, int],
        member_key: tuple[int, ...] = (),
    ):
        self._entropy = (seed, _model_key(spec.source_id), _NOISE_FIELDS[field])
        self._member_key = member_key
        self._shape = shape
        weights = _NOISE_PERSISTENCE ** np.arange(_NOISE_MEMORY)
        self._weights = weights / np.sqrt(np.sum(weights**2))
        self._cache: deque[tuple[int, np.ndarray]] = deque(maxlen=_NOISE_MEMORY)

    def _innovation(self, month_index: int) -> np.ndarray:
        rng = _rng((*self._entropy, month_index + _NOISE_MEMORY), self._member_key)
        return _white_smoothed(rng, self._shape)

    def get(self, month_index: int) -> np.ndarray:
        """Noise field of the given month (months since January FIRST_YEAR)."""
        cached = dict(self._cache)
        for lag in range(_NOISE_MEMORY - 1, -1, -1):
            n = month_index - lag
            if n not in cached:
                cached[n] = self._innovation(n)
                self._cache.append((n, cached[n]))
        return sum(w * cached[month_index - lag] for lag, w in enumerate(self._weights))  # type: ignore[return-value]


@dataclass(frozen=True)
class _Climatology:
    """Time-independent fields of a model on its ocean cells (1-D arrays)."""

    lat: np.ndarray
    lon: np.ndarray
    hemisphere: np.ndarray  # -1 (south) .. 1 (north), smooth across the equator
    sst_annual: np.ndarray
    sst_seasonal_amplitude: np.ndarray
    upwelling: np.ndarray
    cold_tongue: np.ndarray
    salinity: np.ndarray
    dic_offset: np.ndarray
    bio_amplitude: np.ndarray
    mld_base: np.ndarray
    mld_winter: np.ndarray


def _climatology(spec: ModelSpec, lat: np.ndarray, lon: np.ndarray) -> _Climatology:
    """Analytic climatological fields at the given ocean points."""
    abslat = np.abs(lat)
    lon180 = _wrap180(lon)
    hemisphere = np.tanh(lat / 8.0)

    # Upwelling index (0..1): equatorial cold tongues and eastern boundary upwelling.
    cold_tongue = (
        np.exp(-(((lat + 0.5) / 4.5) ** 2))
        * _smoothstep(lon % 360.0, 165.0, 255.0)
        * (1.0 - _smoothstep(lon % 360.0, 278.0, 290.0))
    )
    boundary = (
        1.0 * _gauss(lon, lat, -79.0, -12.0, 4.0, 9.0)  # Peru
        + 0.6 * _gauss(lon, lat, -73.5, -30.0, 3.0, 7.0)  # Chile
        + 0.8 * _gauss(lon, lat, -123.5, 36.0, 4.0, 8.0)  # California
        + 0.8 * _gauss(lon, lat, -18.5, 23.0, 4.0, 8.0)  # Canary
        + 0.9 * _gauss(lon, lat, 12.0, -22.0, 4.0, 8.0)  # Benguela
        + 0.5 * _gauss(lon, lat, -10.0, -1.5, 14.0, 3.0)  # equatorial Atlantic
        + 0.5 * _gauss(lon, lat, 54.0, 12.0, 5.0, 5.0)  # Somali / Arabian Sea
    )
    upwelling = np.clip(cold_tongue + boundary, 0.0, 1.0)

    # Annual-mean temperature: meridional profile, upwelling, warm currents, polar cold.
    sst = -1.9 + 29.6 * np.exp(-((abslat / 48.0) ** 3))
    sst += 1.0 * np.exp(-((lat / 12.0) ** 2) - (_wrap180(lon - 150.0) / 45.0) ** 2)  # warm pool
    sst += 3.0 * _gauss(lon, lat, -62.0, 38.0, 14.0, 5.0)  # Gulf Stream
    sst += 5.0 * _gauss(lon, lat, 0.0, 64.0, 18.0, 9.0)  # North Atlantic Current / Nordic
    sst += 2.0 * _gauss(lon, lat, 150.0, 36.0, 14.0, 5.0)  # Kuroshio
    sst -= 3.0 * _smoothstep(lat, 65.0, 82.0)  # Arctic
    sst -= 2.0 * _smoothstep(-lat, 62.0, 72.0)  # Antarctic shelf
    sst -= 5.0 * spec.upwelling_strength * upwelling
    sst += spec.sst_bias + spec.polar_sst_bias * _smoothstep(abslat, 40.0, 60.0)
    seasonal_amplitude = (0.4 + 4.5 * np.sin(np.deg2rad(abslat)) ** 1.5) * (
        1.0 - 0.75 * _smoothstep(abslat, 55.0, 80.0)
    )

    # Salinity: subtropical maxima, ITCZ and polar freshening, salty Atlantic.
    atlantic = (
        _smoothstep(lon180, -82.0, -70.0)
        * (1.0 - _smoothstep(lon180, 15.0, 25.0))
        * _smoothstep(lat, -40.0, -30.0)
        * (1.0 - _smoothstep(lat, 62.0, 70.0))
    )
    mediterranean = _gauss(lon, lat, 18.0, 36.0, 14.0, 5.0)
    salinity = (
        34.6
        + 1.4 * np.exp(-(((abslat - 24.0) / 11.0) ** 2))
        - 0.8 * np.exp(-(((lat - 6.0) / 6.0) ** 2))
        - 3.0 * _smoothstep(lat, 62.0, 82.0)
        - 0.5 * _smoothstep(-lat, 45.0, 65.0)
        + 0.7 * atlantic
        + 2.0 * mediterranean
        - 0.8 * _gauss(lon, lat, 90.0, 15.0, 6.0, 6.0)  # Bay of Bengal
        + spec.salinity_bias
    )

    # DIC relative to equilibrium with the atmosphere (µmol/kg): upwelled carbon, Southern
    # Ocean upwelling, polar and subpolar undersaturation (biology, cooling).
    dic_offset = (
        _UPWELLING_DIC * spec.upwelling_strength * upwelling
        + 10.0 * np.exp(-(((lat + 58.0) / 7.0) ** 2))
        - 25.0 * _smoothstep(lat, 60.0, 78.0)
        - 12.0 * _gauss(lon, lat, -30.0, 55.0, 25.0, 8.0)  # North Atlantic sink
        + spec.dic_bias
    )
    bio_amplitude = spec.bio_amplitude * 28.0 * _smoothstep(abslat, 35.0, 55.0)

    # Mixed layer (m): base plus winter deepening in subpolar convection regions.
    mld_base = (20.0 + 30.0 * np.sin(np.deg2rad(abslat)) ** 2) * (1.0 - 0.4 * upwelling)
    mld_winter = (
        150.0 * np.exp(-(((abslat - 55.0) / 10.0) ** 2))
        + 350.0 * _gauss(lon, lat, -35.0, 60.0, 20.0, 7.0)  # Labrador / Irminger / Nordic
        + 200.0 * np.exp(-(((lat + 52.0) / 6.0) ** 2))  # Southern Ocean mode waters
    )
    return _Climatology(
        lat=lat,
        lon=lon,
        hemisphere=hemisphere,
        sst_annual=sst,
        sst_seasonal_amplitude=seasonal_amplitude,
        upwelling=upwelling,
        cold_tongue=cold_tongue,
        salinity=salinity,
        dic_offset=dic_offset,
        bio_amplitude=bio_amplitude,
        mld_base=spec.mld_factor * mld_base,
        mld_winter=spec.mld_factor * mld_winter,
    )


def _atmospheric_fco2(years_since_reference: float) -> float:
    """Atmospheric CO2 fugacity (µatm), a smooth fit to the observed rise around 2000."""
    tau = years_since_reference
    return 361.0 + 1.85 * tau + 0.012 * tau * tau


def _experiment_atmospheric_fco2(experiment: ExperimentSpec, years_since_reference: float) -> float:
    """Atmospheric CO2 fugacity (µatm) of an experiment: the common curve plus its drift."""
    fco2 = _atmospheric_fco2(years_since_reference)
    if experiment.co2_drift:
        fco2 += experiment.co2_drift * (years_since_reference + _REFERENCE_YEAR - FIRST_YEAR)
    return fco2


def _freezing_point(salinity: np.ndarray) -> np.ndarray:
    """Linear freezing point of seawater at the surface (degC)."""
    return -0.054 * salinity


def _soft_floor(value: np.ndarray, floor: np.ndarray, scale: float) -> np.ndarray:
    """Smooth maximum of ``value`` and ``floor`` (softplus with the given scale)."""
    return floor + scale * np.logaddexp(0.0, (value - floor) / scale)


@dataclass(frozen=True)
class _SurfaceState:
    """Temperature and salinity of one month on a set of points (1-D arrays)."""

    tau: float  # years since the reference year (mid-month)
    phase: float  # phase of the seasonal cycle (radians, mid-month)
    enso_pattern: np.ndarray
    salinity: np.ndarray
    t_slow: np.ndarray  # annual, noise-free temperature including the warming trend
    ice: np.ndarray  # sea-ice fraction (0-1)
    sst: np.ndarray


def _month_surface(
    spec: ModelSpec,
    clim: _Climatology,
    year: int,
    month: int,
    enso: float,
    noise: Mapping[str, np.ndarray],
) -> _SurfaceState:
    """Sea-surface temperature, salinity and sea ice of a month (float64).

    Needs only the ``tos`` and ``sos`` noise; :func:`_month_fields` builds on it, so the
    temperature of every point is the same function of the climatology and the noise
    whether or not the carbon fields are computed as well.
    """
    tau = year - _REFERENCE_YEAR + (month - 0.5) / 12.0
    phase = 2.0 * math.pi * (month - 0.5) / 12.0
    # +1 in local summer (temperature maximum mid-August in the north, mid-February south)
    season_t = clim.hemisphere * math.cos(phase - 2.0 * math.pi * 7.5 / 12.0)

    enso_pattern = clim.cold_tongue * enso
    salinity = clim.salinity + _NOISE_STD["sos"] * noise["sos"]
    freezing = _freezing_point(salinity)
    t_slow = clim.sst_annual + spec.warming_rate * tau
    t_raw = (
        t_slow
        + clim.sst_seasonal_amplitude * season_t
        + spec.enso_amplitude * enso_pattern
        + _NOISE_STD["tos"] * noise["tos"]
    )
    ice = np.clip((freezing + 0.8 - t_raw) / 1.6, 0.0, 1.0)
    sst = _soft_floor(t_raw, freezing, 0.3) + 0.05 * noise["tos"] * ice
    return _SurfaceState(
        tau=tau,
        phase=phase,
        enso_pattern=enso_pattern,
        salinity=salinity,
        t_slow=t_slow,
        ice=ice,
        sst=sst,
    )


def _month_fields(
    spec: ModelSpec,
    clim: _Climatology,
    year: int,
    month: int,
    enso: float,
    noise: Mapping[str, np.ndarray],
    experiment: ExperimentSpec,
) -> dict[str, np.ndarray]:
    """All monthly fields on the ocean cells, in file units (float64, not yet rounded)."""
    surface = _month_surface(spec, clim, year, month, enso, noise)
    tau, phase = surface.tau, surface.phase
    enso_pattern, salinity = surface.enso_pattern, surface.salinity
    t_slow, ice, sst = surface.t_slow, surface.ice, surface.sst
    # biological drawdown peaks in early summer (June / December)
    season_bio = clim.hemisphere * math.cos(phase - 2.0 * math.pi * 5.5 / 12.0)
    # mixed layer deepest in late winter (March / September)
    season_mld = clim.hemisphere * math.cos(phase - 2.0 * math.pi * 2.5 / 12.0)

    # Alkalinity tied to salinity, plus independent small-scale variability.
    alk_clim = 2300.0 + 58.0 * (clim.salinity - 35.0) + spec.alkalinity_bias
    alk = alk_clim + 58.0 * _NOISE_STD["sos"] * noise["sos"] + _NOISE_STD["alk"] * noise["alk"]

    # DIC: equilibrium with the atmosphere at the slow (annual, noise-free) state, plus
    # upwelling (weaker during El Nino), biology, trend offset and small-scale variability.
    t_eq = _soft_floor(t_slow, _freezing_point(clim.salinity), 0.3)
    atmosphere = _experiment_atmospheric_fco2(experiment, tau)
    dic_eq = dic_from_fco2_alk(atmosphere, alk_clim, t_eq, clim.salinity)
    upwelling_dic = _UPWELLING_DIC * spec.upwelling_strength * clim.upwelling
    # biology: strong drawdown in early summer, weaker winter entrainment
    bio = np.where(season_bio > 0.0, season_bio, 0.4 * season_bio)
    dic = (
        dic_eq
        + clim.dic_offset
        - 0.3 * upwelling_dic * np.clip(enso_pattern, -1.5, 1.5)
        - clim.bio_amplitude * (1.0 - ice) * bio
        + spec.dic_extra_trend * tau
        + _NOISE_STD["dic"] * noise["dic"]
    )

    mld = (clim.mld_base + clim.mld_winter * np.maximum(season_mld, 0.0)) * np.exp(
        _NOISE_STD["mld"] * noise["mld"]
    )
    to_mol_m3 = SEAWATER_DENSITY * 1e-6
    return {
        "tos": sst,
        "sos": salinity,
        "dissicos": dic * to_mol_m3,
        "talkos": alk * to_mol_m3,
        "mlotst": mld,
        "siconc": 100.0 * ice,
    }


def _spco2_from_stored(fields: Mapping[str, np.ndarray]) -> np.ndarray:
    """spco2 (Pa) from the float32 values that are written to the files.

    Computing from the stored (rounded) values keeps the files exactly consistent:
    recomputing fCO2 from the file contents reproduces spco2 to float32 precision.
    """
    per_kg = 1e6 / SEAWATER_DENSITY
    fco2 = fco2_from_dic_alk(
        fields["dissicos"].astype(np.float64) * per_kg,
        fields["talkos"].astype(np.float64) * per_kg,
        fields["tos"].astype(np.float64),
        fields["sos"].astype(np.float64),
    )
    return fco2 * UATM_TO_PA
