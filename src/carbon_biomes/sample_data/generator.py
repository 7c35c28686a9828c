"""The driver: validate the request, then generate every run of every model."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import netCDF4
import numpy as np

from carbon_biomes.sample_data.chemistry import UATM_TO_PA
from carbon_biomes.sample_data.cmor import (
    _FILL_VALUE,
    _MONTHLY_VARIABLES,
    VARIABLES,
    _create_file,
    _month_bounds,
    output_path,
)
from carbon_biomes.sample_data.fields import (
    _NOISE_FIELDS,
    _Climatology,
    _climatology,
    _enso_index,
    _member_key,
    _month_fields,
    _month_index,
    _NoiseStream,
    _spco2_from_stored,
)
from carbon_biomes.sample_data.grids import Grid, _check_resolution, _n_cells, build_grid
from carbon_biomes.sample_data.models import (
    _KNOWN_EXPERIMENTS,
    _VARIANT_HELP,
    DEFAULT_ENSEMBLES,
    DEFAULT_EXPERIMENTS,
    DEFAULT_MODELS,
    EXPERIMENTS,
    MODELS,
    ExperimentSpec,
    ModelSpec,
    _Member,
    check_years,
    parse_variant_label,
)
from carbon_biomes.sample_data.observations import DEFAULT_OBSERVATIONS, generate_observations

__all__ = ["generate_sample_data"]

logger = logging.getLogger(__name__)


def _resolve_models(models: Iterable[str] | None) -> list[ModelSpec]:
    if models is None:
        return [MODELS[name] for name in DEFAULT_MODELS]
    if isinstance(models, str):
        models = [models]
    names = list(dict.fromkeys(models))
    if not names:
        msg = "no models requested"
        raise ValueError(msg)
    unknown = [name for name in names if name not in MODELS]
    if unknown:
        msg = (
            f"unknown model{'s' if len(unknown) > 1 else ''} "
            f"{', '.join(repr(name) for name in unknown)}; known models: {', '.join(MODELS)}"
        )
        raise ValueError(msg)
    return [MODELS[name] for name in names]


def _iter_months(years: tuple[int, int]) -> Iterator[tuple[int, int]]:
    for year in range(years[0], years[1] + 1):
        for month in range(1, 13):
            yield year, month


def _names(values: Iterable[str] | str, what: str) -> list[str]:
    """Requested names in order, without duplicates; a single string is one name."""
    if isinstance(values, str):
        values = [values]
    try:
        names = list(dict.fromkeys(values))
    except TypeError:
        msg = f"invalid {what} {values!r}: expected a sequence of strings"
        raise ValueError(msg) from None
    if not names:
        msg = f"no {what} requested"
        raise ValueError(msg)
    return names


def _resolve_experiments(experiments: Iterable[str] | str) -> list[ExperimentSpec]:
    names = _names(experiments, "experiments")
    unknown = [name for name in names if not isinstance(name, str) or name not in EXPERIMENTS]
    if unknown:
        msg = (
            f"invalid experiment{'s' if len(unknown) > 1 else ''} "
            f"{', '.join(repr(name) for name in unknown)}: {_KNOWN_EXPERIMENTS}"
        )
        raise ValueError(msg)
    return [EXPERIMENTS[name] for name in names]


def _resolve_ensembles(ensembles: Iterable[str] | str) -> list[str]:
    labels = _names(ensembles, "ensembles")
    invalid = []
    for label in labels:
        try:
            parse_variant_label(label)
        except ValueError:
            invalid.append(label)
    if invalid:
        msg = (
            f"invalid ensemble{'s' if len(invalid) > 1 else ''} "
            f"{', '.join(repr(label) for label in invalid)}: {_VARIANT_HELP}"
        )
        raise ValueError(msg)
    return labels


def _run_name(spec: ModelSpec, member: _Member) -> str:
    """Name of a run in log messages (just the model for historical r1i1p1f1)."""
    return spec.source_id if member.is_reference else f"{spec.source_id} {member.label}"


def _temporary_path(path: Path) -> Path:
    """Create the directories of ``path``; return the file to write before renaming it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.with_name(path.name + ".tmp")


def _generate_run(
    out_dir: Path,
    spec: ModelSpec,
    member: _Member,
    grid: Grid,
    clim: _Climatology,
    years: tuple[int, int],
    seed: int,
) -> list[Path]:
    """Generate all files of one run (experiment and member) of a model.

    Files appear only when complete.
    """
    start = time.perf_counter()
    name_of_run = _run_name(spec, member)
    ocean = grid.ocean
    member_key = _member_key(member)
    enso = _enso_index(seed, spec, member_key)
    streams = {
        name: _NoiseStream(seed, spec, name, grid.shape, member_key) for name in _NOISE_FIELDS
    }
    run = {"experiment": member.experiment.experiment_id, "ensemble": member.variant_label}

    written: list[Path] = []
    # areacello
    area_path = output_path(out_dir, spec.source_id, "areacello", **run)
    tmp = _temporary_path(area_path)
    with _create_file(tmp, spec, VARIABLES["areacello"], grid, years, seed, member) as ds:
        ds["areacello"][:] = np.where(ocean, grid.area, _FILL_VALUE).astype(np.float32)
    tmp.replace(area_path)
    written.append(area_path)

    paths = {
        name: output_path(out_dir, spec.source_id, name, years, **run)
        for name in _MONTHLY_VARIABLES
    }
    datasets: dict[str, netCDF4.Dataset] = {}
    try:
        for name, path in paths.items():
            tmp = _temporary_path(path)
            datasets[name] = _create_file(tmp, spec, VARIABLES[name], grid, years, seed, member)
        fco2_range = [np.inf, -np.inf]
        for step, (year, month) in enumerate(_iter_months(years)):
            n = _month_index(year, month)
            noise = {name: stream.get(n)[ocean] for name, stream in streams.items()}
            fields = _month_fields(
                spec, clim, year, month, float(enso[n]), noise, member.experiment
            )
            stored = {name: values.astype(np.float32) for name, values in fields.items()}
            stored["spco2"] = _spco2_from_stored(stored).astype(np.float32)
            fco2_range[0] = min(fco2_range[0], float(stored["spco2"].min()) / UATM_TO_PA)
            fco2_range[1] = max(fco2_range[1], float(stored["spco2"].max()) / UATM_TO_PA)
            bounds = _month_bounds(year, month, spec.calendar)
            for name, ds in datasets.items():
                full = np.full(grid.shape, _FILL_VALUE, dtype=np.float32)
                full[ocean] = stored[name]
                ds["time"][step] = 0.5 * (bounds[0] + bounds[1])
                ds["time_bnds"][step, :] = bounds
                ds[name][step, :, :] = full
            if month == 12:
                logger.info(
                    "%s: year %d written (fCO2 %.0f-%.0f uatm so far, %.1f s)",
                    name_of_run,
                    year,
                    fco2_range[0],
                    fco2_range[1],
                    time.perf_counter() - start,
                )
    finally:
        for ds in datasets.values():
            ds.close()
    for path in paths.values():
        path.with_name(path.name + ".tmp").replace(path)
        written.append(path)
    return written


def _generate_model(
    out_dir: Path,
    spec: ModelSpec,
    years: tuple[int, int],
    resolution: float,
    seed: int,
    members: Sequence[_Member],
) -> list[Path]:
    """Generate all files of all runs of one model (grid and climatology built once)."""
    start = time.perf_counter()
    grid = build_grid(spec, resolution)
    ocean = grid.ocean
    ny, nx = grid.shape
    logger.info(
        "%s: %s grid %dx%d (%.3g deg, %d ocean cells), years %d-%d, calendar %s",
        spec.source_id,
        grid.grid_type,
        ny,
        nx,
        grid.resolution,
        int(ocean.sum()),
        years[0],
        years[1],
        spec.calendar,
    )
    if len(members) > 1 or not members[0].is_reference:
        logger.info("%s: runs %s", spec.source_id, ", ".join(member.label for member in members))
    clim = _climatology(spec, grid.lat[ocean], grid.lon[ocean])
    written: list[Path] = []
    for member in members:
        written += _generate_run(out_dir, spec, member, grid, clim, years, seed)
    logger.info(
        "%s: %d files written in %.1f s", spec.source_id, len(written), time.perf_counter() - start
    )
    return written


def generate_sample_data(
    out_dir: str | Path,
    models: Iterable[str] | None = None,
    years: tuple[int, int] | None = None,
    resolution: float | None = None,
    seed: int = 0,
    *,
    ensembles: Sequence[str] = DEFAULT_ENSEMBLES,
    experiments: Sequence[str] = DEFAULT_EXPERIMENTS,
    observations: bool | None = None,
) -> list[Path]:
    """Write synthetic CMIP6-like ocean carbon output of fictitious models.

    By default (all models), the fictitious observation-based products SYNTH-OBS-CARBON and
    SYNTH-OBS-SST are written as well (see :func:`generate_observations`).

    Parameters
    ----------
    out_dir
        Root directory; files go to
        ``out_dir/CMIP6/<activity>/SYNTH/<model>/<experiment>/<ensemble>/...`` (see
        :func:`output_path`). Existing files of the same name are replaced.
    models
        Model names (keys of :data:`MODELS`); ``None`` generates all of them.
    years
        First and last year (inclusive, within 1850-2100); ``None`` uses each model's
        :attr:`ModelSpec.default_years`.
    resolution
        Nominal resolution in degrees for every requested model (must divide 180); ``None``
        uses each model's own.
    seed
        Non-negative seed of all random streams. The same seed and arguments give
        bit-identical files.
    ensembles
        Ensemble members (CMIP6 variant labels ``rNiNpNfN``) generated for every model and
        experiment. Each member has its own random streams, derived from the seed, the
        experiment and the variant label: members share the climate but differ in their
        ENSO phases and small-scale noise.
    experiments
        Experiments (keys of :data:`EXPERIMENTS`: ``historical``, ``esm-hist``) generated
        for every model; the activity directory and ``activity_id`` follow from the
        experiment (``CMIP`` for both).
    observations
        Also write the observation-based products (:data:`OBSERVATIONS`) below
        ``out_dir/OBS/Tier2/``, for ``years`` (``None``: 2000-2009), with ``resolution`` as
        the carbon product's grid spacing (``None``: 1 degree, 0.5 for the SST product) and
        ``seed``. ``None`` (the default) writes them when all models are generated
        (``models=None``) and not when particular models are requested, so that a call for
        some models writes only those; ``True`` or ``False`` decides explicitly.

    Returns
    -------
    list of pathlib.Path
        All files written, per model, experiment and ensemble member (in the requested
        order): ``areacello`` first, then the monthly variables; then the observation files.

    Raises
    ------
    ValueError
        For unknown models or experiments, invalid variant labels, an invalid period,
        resolution or seed. Nothing is written then.
    """
    specs = _resolve_models(models)
    if years is not None:
        years = check_years(years)
    if resolution is not None:
        _check_resolution(float(resolution))
        for span in (180.0, 360.0):
            _n_cells(span, float(resolution))
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        msg = f"invalid seed {seed!r}: it must be a non-negative integer"
        raise ValueError(msg)
    experiment_specs = _resolve_experiments(experiments)
    labels = _resolve_ensembles(ensembles)
    members = [_Member(experiment, label) for experiment in experiment_specs for label in labels]
    with_observations = models is None if observations is None else bool(observations)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for spec in specs:
        model_years = years if years is not None else spec.default_years
        res = spec.resolution if resolution is None else float(resolution)
        written += _generate_model(out_dir, spec, model_years, res, int(seed), members)
    if with_observations:
        written += generate_observations(
            out_dir, years, resolution, int(seed), products=DEFAULT_OBSERVATIONS
        )
    return written
