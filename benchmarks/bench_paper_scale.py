"""Paper-scale benchmark: a 0.25° dataset end to end, stage by stage.

Run from the repository root::

    MPLBACKEND=Agg .venv/bin/python benchmarks/bench_paper_scale.py \\
        --resolution 0.25 --years 1 --months 1 --out /tmp/bench_q025 --skip-esmvaltool
    MPLBACKEND=Agg .venv/bin/python benchmarks/bench_paper_scale.py \\
        --resolution 0.25 --years 2 5 10 61 --out /tmp/bench_q025       # + esmvaltool runs
    MPLBACKEND=Agg .venv/bin/python benchmarks/bench_paper_scale.py --esmvaltool-only \\
        --resolution 1 --models 12 --years 30 --out /tmp/bench_q025      # + 12 datasets at 1°

Not part of the test suite. What it does:

1. ``generate``: writes synthetic CMOR-like files (``tos``, ``spco2``, ``dissicos``,
   ``talkos``, ``areacello``) of SYNTH-ESM-A on a regular grid of ``--resolution`` degrees in
   the CMIP6 DRS of :func:`carbon_biomes.sample_data.cmor.output_path` (the layout the
   package's ESMValCore configuration reads), one month at a time (the whole period is never
   in memory). The grid and land mask are the package's (:func:`build_grid`); the fields are
   cheap analytic ones, and **fCO2 is an analytic carbonate approximation**, not PyCO2SYS
   (too slow at 0.25° for many years)::

       fCO2 = fCO2_0 exp(0.0423 (T - T0)) (DIC/DIC0)^R (ALK/ALK0)^(-R')

   with a Revelle factor R = 10 and R' = 9 (plus noise of processes that are not drivers).
2. every stage, each in a subprocess of its own (so that its peak resident memory, VmHWM of
   ``/proc/self/status``, is its own), in-process through the library with the calls the
   diagnostic scripts make: reading a month from the files, box regression
   (``regress_months``), the per-box loop baseline (``box_regression_loop`` on a random
   subset of boxes, extrapolated), detection (``pool_reference_boxes`` + ``detect_biomes``:
   Ward linkage, threshold scan and adaptive cut), training (``BiomeClassifier.fit``),
   prediction (``track_months``), analysis (``coverage`` on the native grid), comparison
   (``lattice_coverage`` + ``map_comparison`` + ``coverage_comparison`` of two datasets) and
   writing (``products.write_monthly_rcs``). Stages hand their results to the next through
   pickles in ``OUT/state`` (load time is not counted in the stage time; the peak memory
   includes it and the imports). The optional ``memory`` stage (``--stages memory``) streams
   ``--memory-months`` months through ``regress_months`` alone and into
   ``write_monthly_rcs`` and records the resident memory after every year.
3. without ``--skip-esmvaltool``: for each ``--models M`` and ``--years N`` a benchmark
   recipe (the demo recipe's regression, detection, tracking and analysis scripts; with
   several datasets also its two comparison scripts) is written into ``OUT`` and run with
   ``esmvaltool run``; the wall time, each diagnostic's peak memory and its memory in each
   tenth of its run (its ``resource_usage.txt``) and the valid cells per month are reported,
   and the targets are judged from these runs.
4. the table is printed (markdown) and written to ``benchmarks/paper_scale_results.md``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import pickle
import platform
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "paper_scale_results.md"
SOURCE_ID = "SYNTH-ESM-A"
EXPERIMENT = "historical"
ENSEMBLE = "r1i1p1f1"
FIRST_YEAR = 1960
BOX_SIZE = 2.0
UATM_TO_PA = 0.101325
STAGES = (
    "generate",
    "regression",
    "baseline",
    "detection",
    "training",
    "prediction",
    "analysis",
    "comparison",
    "writing",
    "memory",
)
DEFAULT_STAGES = STAGES[:-1]
CHEMISTRY_NOTE = (
    "fCO2 from an analytic carbonate approximation, fCO2 = 340 µatm · exp(0.0423 (T − 15 °C)) · "
    "(DIC/2050)^10 · (ALK/2350)^(−9) (Revelle factor R = 10), plus noise; not PyCO2SYS"
)


# ---------------------------------------------------------------------------------------------
# Synthetic CMOR-like data, month by month
# ---------------------------------------------------------------------------------------------
def _spec_and_grid(resolution: float) -> tuple[Any, Any]:
    from carbon_biomes.sample_data.grids import build_grid
    from carbon_biomes.sample_data.models import MODELS

    spec = dataclasses.replace(MODELS[SOURCE_ID], resolution=resolution)
    return spec, build_grid(spec, resolution)


class FastFields:
    """Cheap analytic monthly fields on a grid (float64, NaN on land).

    Large-scale structure is analytic; four mesoscale noise fields (Gaussian-filtered, a few
    cells wide) are computed once and mixed with month-dependent weights, plus white noise.
    """

    def __init__(self, grid: Any, seed: int = 0) -> None:
        from scipy import ndimage

        self.grid = grid
        self.rng = np.random.default_rng(seed)
        la, lo = grid.lat, grid.lon
        self.la = la
        self.coslat = np.cos(np.deg2rad(la))
        upw = np.exp(-(((lo - 260) / 25) ** 2) - (la / 6) ** 2)
        upw += np.exp(-(((lo - 10) / 8) ** 2) - ((la + 20) / 8) ** 2)
        self.upw = upw
        self.zonal = np.sin(np.deg2rad(2 * lo)) * np.cos(np.deg2rad(3 * la))
        cells = max(1.0, 0.75 / grid.resolution)  # ~0.75° mesoscale
        self.noise = []
        for _ in range(6):
            f = ndimage.gaussian_filter(
                self.rng.standard_normal(la.shape), cells, mode=("nearest", "wrap")
            )
            self.noise.append((f / f.std()).astype(np.float32))
        self.amp = 0.5 + 1.5 * np.exp(-(((np.abs(la) - 40) / 10) ** 2))
        self.amp += np.exp(-(((la + 55) / 8) ** 2))
        self.land = grid.land

    def month(self, index: int) -> dict[str, np.ndarray]:
        """Fields of month ``index`` (0 = January of the first year): degC, mmol m-3, µatm."""
        phase = 2 * np.pi * (index % 12) / 12.0
        w = [np.cos(phase + k) for k in range(6)]
        n = self.noise
        seasonal = -4.0 * np.sin(np.deg2rad(self.la)) * np.cos(phase) * (1 - self.coslat**4)
        trend = 0.02 * index / 12.0
        sst = -1.8 + 30.0 * self.coslat**2 - 4.0 * self.upw + 1.0 * self.zonal + seasonal + trend
        s1 = w[0] * n[0] + w[1] * n[1]
        s2 = w[2] * n[2] + w[3] * n[3]
        s3 = w[4] * n[4] + w[5] * n[0]
        sst_a = 0.4 * self.amp * s1
        sst = np.maximum(sst + sst_a, -1.8)
        dic = 2150.0 - 7.5 * (sst + 1.8) + 45.0 * self.upw + 6.0 * self.amp * s2 + 0.8 * index / 12
        alk = 2300.0 + 2.2 * (sst + 1.8) + 0.5 * (dic - 2150.0) + 5.0 * self.amp * s3
        fco2 = 340.0 * np.exp(0.0423 * (sst - 15.0)) * (dic / 2050.0) ** 10 * (alk / 2350.0) ** -9
        fco2 += 2.0 * self.rng.standard_normal(sst.shape) + 3.0 * self.amp * n[(index + 1) % 6]
        out = {"sst": sst, "dic": dic, "alk": alk, "fco2": fco2}
        for a in out.values():
            a[self.land] = np.nan
        return out


def month_labels(n_months: int) -> list[str]:
    return [f"{FIRST_YEAR + i // 12:04d}-{i % 12 + 1:02d}" for i in range(n_months)]


def _paths(
    data_root: Path, years: tuple[int, int], source_id: str = SOURCE_ID
) -> dict[str, Path]:
    from carbon_biomes.sample_data.cmor import output_path

    names = ("tos", "spco2", "dissicos", "talkos", "areacello")
    return {
        v: output_path(data_root, source_id, v, years, experiment=EXPERIMENT, ensemble=ENSEMBLE)
        for v in names
    }


def run_tag(n_models: int, n_years: int) -> str:
    """File-name tag of an esmvaltool run: ``10y`` or ``12x_30y``."""
    return f"{n_models}x_{n_years}y" if n_models > 1 else f"{n_years}y"


def run_label(entry: dict[str, Any], cfg: dict[str, Any]) -> str:
    """Table label of an esmvaltool run: ``1 x 0.25°``."""
    return f"{entry.get('models', 1)} x {entry.get('resolution', cfg['resolution']):g}°"


def model_names(n_models: int) -> list[str]:
    """Dataset names of a multi-model benchmark (one model: the package's SYNTH-ESM-A)."""
    if n_models == 1:
        return [SOURCE_ID]
    return [f"BENCH-ESM-{k + 1:02d}" for k in range(n_models)]


def generate(
    data_root: Path, resolution: float, n_months: int, source_id: str = SOURCE_ID, seed: int = 0
) -> dict[str, Any]:
    """Write the CMOR-like files month by month; returns timings.

    Datasets of a multi-model benchmark differ in their name and the seed of their noise.
    """
    from carbon_biomes.sample_data import cmor
    from carbon_biomes.sample_data.models import _experiment, _Member

    t0 = time.perf_counter()
    spec, grid = _spec_and_grid(resolution)
    spec = dataclasses.replace(spec, source_id=source_id)
    fields = FastFields(grid, seed)
    t_setup = time.perf_counter() - t0
    n_years = -(-n_months // 12)
    years = (FIRST_YEAR, FIRST_YEAR + n_years - 1)
    paths = _paths(data_root, years, source_id)
    member = _Member(_experiment(EXPERIMENT), ENSEMBLE)
    files = {}
    for short_name, path in paths.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        var = cmor.VARIABLES[short_name]
        files[short_name] = cmor._create_file(path, spec, var, grid, years, 0, member)
    area = np.where(grid.land, np.nan, grid.area)
    files["areacello"]["areacello"][:] = np.ma.masked_invalid(area)
    files["areacello"].close()
    del files["areacello"]
    scale = {"tos": 1.0, "spco2": UATM_TO_PA, "dissicos": 1e-3, "talkos": 1e-3}
    source = {"tos": "sst", "spco2": "fco2", "dissicos": "dic", "talkos": "alk"}
    t_fields = t_write = 0.0
    for i in range(n_months):
        t1 = time.perf_counter()
        month = fields.month(i)
        t2 = time.perf_counter()
        lo, hi = cmor._month_bounds(FIRST_YEAR + i // 12, i % 12 + 1, spec.calendar)
        for short_name, ds in files.items():
            ds["time"][i] = 0.5 * (lo + hi)
            ds["time_bnds"][i, :] = [lo, hi]
            ds[short_name][i] = np.ma.masked_invalid(
                (month[source[short_name]] * scale[short_name]).astype(np.float32)
            )
        t_write += time.perf_counter() - t2
        t_fields += t2 - t1
    for ds in files.values():
        ds.close()
    n_ocean = int((~grid.land).sum())
    return {
        "setup_s": t_setup,
        "fields_s_per_month": t_fields / n_months,
        "write_s_per_month": t_write / n_months,
        "n_months": n_months,
        "grid": list(grid.shape),
        "n_ocean": n_ocean,
        "bytes": sum(p.stat().st_size for p in paths.values()),
        "years": list(years),
    }


class FileMonths:
    """Read months from the generated files one at a time (netCDF4 slices), analysis units."""

    def __init__(self, data_root: Path, years: tuple[int, int]) -> None:
        import netCDF4

        self.paths = _paths(data_root, years)
        self.ds = {v: netCDF4.Dataset(p) for v, p in self.paths.items()}
        ref = self.ds["tos"]
        self.lat = np.asarray(ref["lat"][:], dtype=np.float64)
        self.lon = np.asarray(ref["lon"][:], dtype=np.float64)
        self.area = np.ma.filled(self.ds["areacello"]["areacello"][:].astype(np.float64), np.nan)

    def month(self, i: int) -> dict[str, np.ma.MaskedArray]:
        scale = {"tos": 1.0, "spco2": 1 / UATM_TO_PA, "dissicos": 1e3, "talkos": 1e3}
        names = {"tos": "sst", "spco2": "fco2", "dissicos": "dic", "talkos": "alk"}
        return {
            names[v]: np.ma.masked_invalid(
                np.ma.filled(self.ds[v][v][i].astype(np.float64), np.nan) * scale[v]
            )
            for v in names
        }

    def grid(self, box_size: float) -> Any:
        from carbon_biomes.core.monthly_regression import NativeGrid

        ocean = ~np.ma.getmaskarray(self.month(0)["sst"])
        area = np.where(ocean, self.area, 0.0)
        return NativeGrid.build(self.lat, self.lon, ocean, box_size, area=area)


# ---------------------------------------------------------------------------------------------
# Stage workers (each runs in a process of its own)
# ---------------------------------------------------------------------------------------------
def vm_hwm_mib(key: str = "VmHWM") -> float:
    """Peak (``VmHWM``) or current (``VmRSS``) resident memory of this process, MiB."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(f"{key}:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _save(state: Path, name: str, obj: Any) -> None:
    with open(state / f"{name}.pkl", "wb") as fh:
        pickle.dump(obj, fh, protocol=pickle.HIGHEST_PROTOCOL)


def _load(state: Path, name: str) -> Any:
    with open(state / f"{name}.pkl", "rb") as fh:
        return pickle.load(fh)


def _config(state: Path) -> dict[str, Any]:
    return json.loads((state / "config.json").read_text())


def stage_generate(state: Path) -> dict[str, Any]:
    cfg = _config(state)
    out = generate(Path(cfg["data_root"]), cfg["resolution"], cfg["n_months"])
    out["stage_s"] = out["setup_s"] + out["n_months"] * (
        out["fields_s_per_month"] + out["write_s_per_month"]
    )
    return out


def _months_iter(files: FileMonths, n: int, timing: dict[str, float]) -> Iterator[Any]:
    from carbon_biomes.core.monthly_regression import FieldMonth

    for i, label in enumerate(month_labels(n)):
        t0 = time.perf_counter()
        month = FieldMonth(label=label, fields=files.month(i))
        timing["read"] += time.perf_counter() - t0
        yield month


def stage_regression(state: Path) -> dict[str, Any]:
    from carbon_biomes.core.monthly_regression import RegressionSettings, regress_months

    cfg = _config(state)
    files = FileMonths(Path(cfg["data_root"]), tuple(cfg["years"]))
    t0 = time.perf_counter()
    grid = files.grid(BOX_SIZE)
    t_grid = time.perf_counter() - t0
    settings = RegressionSettings(box_size=BOX_SIZE)
    n = cfg["n_months"]
    timing = {"read": 0.0}
    regs = []
    t0 = time.perf_counter()
    for reg in regress_months(_months_iter(files, n, timing), grid, settings, n_months=n):
        regs.append(reg)
    total = time.perf_counter() - t0
    # again, the first month alone, a few times (median), on fields already in memory
    month0 = next(_months_iter(files, 1, {"read": 0.0}))
    from carbon_biomes.core.monthly_regression import regress_month

    reps = []
    for _ in range(cfg["repeat"]):
        t1 = time.perf_counter()
        regress_month(month0, grid, settings)
        reps.append(time.perf_counter() - t1)
    _save(state, "grid", grid)
    _save(state, "regressions", regs)
    r0 = regs[0]
    return {
        "grid_s": t_grid,
        "read_s_per_month": timing["read"] / n,
        "regress_s_per_month": (total - timing["read"]) / n,
        "regress_month_median_s": float(np.median(reps)),
        "regress_month_runs_s": reps,
        "n_months": n,
        "n_cells_valid": r0.n_cells_valid,
        "n_boxes": len(r0.all_boxes),
        "n_significant": r0.n_significant,
        "summary": r0.summary(),
        "stage_s": total,
    }


def stage_baseline(state: Path) -> dict[str, Any]:
    """Per-box loop of the notebooks' kind on the first month, on a random subset of boxes."""
    from carbon_biomes.core.regression import box_regression_loop, outlier_mask

    cfg = _config(state)
    files = FileMonths(Path(cfg["data_root"]), tuple(cfg["years"]))
    m = files.month(0)
    fco2, sst, dic, alk = (np.ma.filled(m[k], np.nan) for k in ("fco2", "sst", "dic", "alk"))
    ok = outlier_mask(fco2, sst, dic, alk)
    target = np.where(ok, fco2, np.nan)
    regs = _load(state, "regressions")
    ids = regs[0].all_boxes.box_id
    rng = np.random.default_rng(0)
    chosen = rng.choice(ids, size=min(cfg["loop_boxes"], ids.size), replace=False)
    t0 = time.perf_counter()
    res = box_regression_loop(files.lat, files.lon, target, [sst, dic, alk], BOX_SIZE,
                              box_ids=chosen)  # fmt: skip
    t_sub = time.perf_counter() - t0
    return {
        "subset_boxes": int(chosen.size),
        "subset_fitted": len(res),
        "subset_s": t_sub,
        "n_boxes": int(ids.size),
        "extrapolated_s": t_sub / chosen.size * ids.size,
        "stage_s": t_sub,
    }


def stage_detection(state: Path) -> dict[str, Any]:
    from carbon_biomes.core import clustering
    from carbon_biomes.core.detection import (
        DetectionSettings,
        detect_biomes,
        pool_reference_boxes,
    )

    regs = _load(state, "regressions")
    t0 = time.perf_counter()
    boxes = pool_reference_boxes(regs[:1], SOURCE_ID)
    result = detect_biomes(boxes, DetectionSettings(), SOURCE_ID)
    total = time.perf_counter() - t0
    z = result.z
    t1 = time.perf_counter()
    clustering.ward_linkage(z)
    t_link = time.perf_counter() - t1
    t1 = time.perf_counter()
    clustering.adaptive_cut_nodes(result.linkage, z, *result.thresholds,
                                  result.settings.spread, dist_scale=result.settings.dist_scale)
    t_cut = time.perf_counter() - t1  # fmt: skip
    _save(state, "detection", result)
    return {
        "n_boxes": len(result.labels),
        "n_biomes": result.n_biomes,
        "n_scanned": len(result.scan),
        "linkage_s": t_link,
        "one_cut_s": t_cut,
        "stage_s": total,
    }


def stage_training(state: Path) -> dict[str, Any]:
    from carbon_biomes.core.classifier import BiomeClassifier, ClassifierSettings

    result = _load(state, "detection")
    t0 = time.perf_counter()
    clf = BiomeClassifier(ClassifierSettings()).fit(result.boxes.features, result.labels)
    total = time.perf_counter() - t0
    clf.save(state / "classifier")
    return {
        "n_boxes": len(result.labels),
        "epochs": len(clf.history_["loss"]),
        "network_s": float(clf.training_seconds_),
        "stage_s": total,
    }


def stage_prediction(state: Path) -> dict[str, Any]:
    from carbon_biomes.core import classifier as classifier_module
    from carbon_biomes.core.tracking import track_months

    cfg = _config(state)
    regs = _load(state, "regressions")
    result = _load(state, "detection")
    clf = classifier_module.load(state / "classifier")
    clf.predict(regs[0].kept.slopes[:10])  # warm-up (graph tracing), not timed
    reps = max(1, cfg["predict_months"] // len(regs))
    labels = month_labels(reps * len(regs))  # the regressed months again, as later months
    stream = [dataclasses.replace(reg, month=label)
              for label, reg in zip(labels, regs * reps, strict=True)]  # fmt: skip
    t0 = time.perf_counter()
    tracked = track_months(stream, clf, result.names, BOX_SIZE, n_months=len(stream))
    total = time.perf_counter() - t0
    _save(state, "tracked", tracked)
    return {
        "n_months": len(stream),
        "predict_s_per_month": total / len(stream),
        "stage_s": total,
    }


def _month_subset(tracked: Any, n: int) -> Any:
    return dataclasses.replace(
        tracked,
        months=tracked.months[:n],
        labels=tracked.labels[:n],
        probability=tracked.probability[:n],
        ood=tracked.ood[:n],
        box_area=tracked.box_area[:n],
    )


def stage_analysis(state: Path) -> dict[str, Any]:
    from carbon_biomes.core.coverage import coverage, iter_native_labels
    from carbon_biomes.core.regions import DEFAULT_REGIONS, cell_areas, region_masks

    grid = _load(state, "grid")
    tracked = _load(state, "tracked")
    names = dict(sorted(tracked.names.items()))
    t0 = time.perf_counter()
    masks = region_masks(DEFAULT_REGIONS, grid, dataset=SOURCE_ID)
    areas, source = cell_areas(grid, dataset=SOURCE_ID)
    t_setup = time.perf_counter() - t0
    t0 = time.perf_counter()
    table = coverage(iter_native_labels(tracked.labels, grid), masks, areas, list(names),
                     months=list(tracked.months), area_source=source)  # fmt: skip
    t_cov = time.perf_counter() - t0
    n = len(tracked.months)
    return {
        "n_months": n,
        "regions": len(masks),
        "setup_s": t_setup,
        "coverage_s_per_month": t_cov / n,
        "rows": len(table.records()),
        "stage_s": t_setup + t_cov,
    }


def stage_comparison(state: Path) -> dict[str, Any]:
    """Two datasets on the lattice: the tracked labels and a perturbed copy (10 % relabelled)."""
    from carbon_biomes.core import comparison
    from carbon_biomes.core.coverage_statistics import coverage_statistics
    from carbon_biomes.core.regions import DEFAULT_REGIONS

    tracked = _load(state, "tracked")
    names = dict(sorted(tracked.names.items()))
    numbers = list(names)
    rng = np.random.default_rng(1)
    other = tracked.labels.copy()
    flip = rng.random(other.shape) < 0.1
    other[flip & ~np.ma.getmaskarray(other)] = rng.choice(numbers, size=other.shape)[
        flip & ~np.ma.getmaskarray(other)
    ]
    area = np.ma.filled(tracked.box_area.max(axis=0), 0.0)
    months = list(tracked.months)
    t0 = time.perf_counter()
    masks = comparison.lattice_region_masks(DEFAULT_REGIONS, BOX_SIZE, area > 0)
    ref_table = comparison.lattice_coverage(tracked.labels, area, masks, numbers, months)
    table = comparison.lattice_coverage(other, area, masks, numbers, months)
    records = comparison.map_comparison(other, tracked.labels, area, masks, names)
    t_map = time.perf_counter() - t0
    t1 = time.perf_counter()
    stats = coverage_statistics(table, dataset="B")
    ref_stats = coverage_statistics(ref_table, dataset=SOURCE_ID)
    records += comparison.coverage_comparison(table, stats, (ref_table, ref_stats), names)
    cov_note = ""
    t_cov = time.perf_counter() - t1
    return {
        "n_months": len(months),
        "map_and_lattice_coverage_s": t_map,
        "coverage_comparison_s": t_cov,
        "note": cov_note,
        "records": len(records),
        "stage_s": t_map + t_cov,
    }


def stage_writing(state: Path) -> dict[str, Any]:
    from carbon_biomes.core.monthly_regression import RegressionSettings
    from carbon_biomes.workflow import products
    from carbon_biomes.workflow.diagnostic import ProvenanceLogger
    from carbon_biomes.workflow.identity import DatasetIdentity

    regs = _load(state, "regressions")
    work = state / "writing"
    for sub in ("work", "plot", "run"):
        (work / sub).mkdir(parents=True, exist_ok=True)
    cfg = {"work_dir": str(work / "work"), "plot_dir": str(work / "plot")}
    identity = DatasetIdentity(alias=SOURCE_ID, dataset=SOURCE_ID, project="CMIP6",
                               exp=EXPERIMENT, ensemble=ENSEMBLE, grid="gn")  # fmt: skip
    with ProvenanceLogger(work / "run") as provenance:
        writer = products.ProductWriter(cfg, provenance, "bench_paper_scale")
        t0 = time.perf_counter()
        path = products.write_monthly_rcs(
            writer, identity, iter(regs), [r.month for r in regs], "standard",
            RegressionSettings(box_size=BOX_SIZE), with_ice=False, ancestors=[],
            what="benchmark",
        )  # fmt: skip
        total = time.perf_counter() - t0
    return {
        "n_months": len(regs),
        "write_s_per_month": total / len(regs),
        "bytes": path.stat().st_size,
        "stage_s": total,
    }


def stage_memory(state: Path) -> dict[str, Any]:
    """Does peak memory grow with the number of months? VmHWM after every year of a stream.

    Two streams over the same ``--memory-months`` months (generated once in
    ``OUT/data_memory``): ``regress_months`` alone (results dropped), and ``regress_months``
    into ``products.write_monthly_rcs`` (what the regression script does).
    """
    from carbon_biomes.core.monthly_regression import RegressionSettings, regress_months
    from carbon_biomes.workflow import products
    from carbon_biomes.workflow.diagnostic import ProvenanceLogger
    from carbon_biomes.workflow.identity import DatasetIdentity

    cfg = _config(state)
    n = cfg["memory_months"]
    root = state.parent / "data_memory"
    years = (FIRST_YEAR, FIRST_YEAR + (-(-n // 12)) - 1)
    if not _paths(root, years)["tos"].exists():  # in a process of its own (its peak)
        subprocess.run([sys.executable, "-c", "import sys; sys.path.insert(0, sys.argv[1]); "
                        "import bench_paper_scale as b; from pathlib import Path; "
                        "b.generate(Path(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]))",
                        str(Path(__file__).parent), str(root), str(cfg["resolution"]), str(n)],
                       check=True)  # fmt: skip
    files = FileMonths(root, years)
    grid = files.grid(BOX_SIZE)
    settings = RegressionSettings(box_size=BOX_SIZE)
    t0 = time.perf_counter()
    alone = []
    for i, _ in enumerate(regress_months(_months_iter(files, n, {"read": 0.0}), grid, settings,
                                         n_months=n)):  # fmt: skip
        if i % 12 == 11 or i == n - 1:
            alone.append(round(vm_hwm_mib("VmRSS")))
    hwm_alone = round(vm_hwm_mib())
    written: list[int] = []

    def tap(stream: Iterator[Any]) -> Iterator[Any]:
        for i, reg in enumerate(stream):
            if i % 12 == 11 or i == n - 1:
                written.append(round(vm_hwm_mib("VmRSS")))
            yield reg

    work = state / "memory"
    (work / "run").mkdir(parents=True, exist_ok=True)
    identity = DatasetIdentity(alias=SOURCE_ID, dataset=SOURCE_ID, project="CMIP6",
                               exp=EXPERIMENT, ensemble=ENSEMBLE, grid="gn")  # fmt: skip
    with ProvenanceLogger(work / "run") as provenance:
        writer = products.ProductWriter({"work_dir": str(work), "plot_dir": str(work)},
                                        provenance, "bench_paper_scale")  # fmt: skip
        stream = regress_months(_months_iter(files, n, {"read": 0.0}), grid, settings,
                                n_months=n)  # fmt: skip
        products.write_monthly_rcs(writer, identity, tap(stream), month_labels(n), "standard",
                                   settings, with_ice=False, ancestors=[], what="benchmark")
    return {"n_months": n, "regress_only_mib": alone, "regress_and_write_mib": written,
            "hwm_after_regress_only_mib": hwm_alone,
            "stage_s": time.perf_counter() - t0}  # fmt: skip


WORKERS = {name: globals()[f"stage_{name}"] for name in STAGES}


def run_worker(stage: str, state: Path) -> None:
    import logging

    logging.basicConfig(level=logging.WARNING)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    t0 = time.perf_counter()
    out = WORKERS[stage](state)
    out["process_s"] = time.perf_counter() - t0
    out["peak_rss_mib"] = vm_hwm_mib()
    (state / f"result_{stage}.json").write_text(json.dumps(out, indent=1, default=str))


# ---------------------------------------------------------------------------------------------
# esmvaltool runs
# ---------------------------------------------------------------------------------------------
def write_recipe(
    out: Path, years: tuple[int, int], models: list[str] | None = None, resolution: float = 0.25
) -> Path:
    """The demo recipe's regression, detection, tracking and analysis on the dataset(s).

    Script settings are the demo's, except ``box_size`` (the paper's 2° on grids of 0.5° or
    finer; on coarser grids the demo's 4°, since a 2° box of a 1° grid holds only four cells),
    the reference month (the first January) and the analysis ancestors (only the generated
    variables). With more than one dataset, the demo's two comparison scripts follow, with the
    first dataset as the reference.
    """
    import yaml

    models = models or [SOURCE_ID]
    demo = yaml.safe_load((REPO / "recipes" / "recipe_carbon_biomes_demo.yml").read_text())
    name, diag = next(iter(demo["diagnostics"].items()))
    datasets = [{
        "project": "CMIP6", "dataset": model, "institute": "SYNTH", "exp": EXPERIMENT,
        "ensemble": ENSEMBLE, "grid": "gn", "timerange": f"{years[0]}/{years[1]}",
        "alias": model,
    } for model in models]  # fmt: skip
    mips = {"spco2": "Omon", "tos": "Omon", "dissicos": "Omon", "talkos": "Omon",
            "areacello": "Ofx"}  # fmt: skip
    stages = ["regression", "detection", "tracking", "analysis"]
    if len(models) > 1:
        stages += ["comparison", "comparison_pooled"]
    scripts = {k: dict(diag["scripts"][k]) for k in stages}
    if resolution <= 0.5:
        scripts["regression"]["box_size"] = BOX_SIZE
    scripts["detection"]["reference_months"] = [f"{years[0]}-01"]
    scripts["analysis"]["ancestors"] = ["regression", "tracking", *mips]
    for key in stages[4:]:
        scripts[key]["reference"] = models[0]
    recipe = {
        "documentation": {
            **demo["documentation"],
            "title": f"carbon-biomes paper-scale benchmark, {years[0]}-{years[1]}",
            "description": f"Benchmark on synthetic data ({CHEMISTRY_NOTE}).",
        },
        "datasets": datasets,
        "diagnostics": {
            name: {
                **{k: v for k, v in diag.items() if k not in ("variables", "scripts")},
                "variables": {v: {"mip": mip} for v, mip in mips.items()},
                "scripts": scripts,
            }
        },
    }
    path = out / f"recipe_bench_{run_tag(len(models), years[1] - years[0] + 1)}.yml"
    path.write_text(yaml.safe_dump(recipe, sort_keys=False, allow_unicode=True))
    return path


def parse_run(run_dir: Path) -> dict[str, str]:
    """Per task: duration (main_log.txt) and peak memory (the task's resource_usage.txt).

    ESMValCore's "Maximum memory used (estimate)" lines in ``run/main_log.txt`` name no task;
    they follow each task's start, in order, and the last one is the whole run's. The task's
    own ``run/<diagnostic>/<script>/resource_usage.txt`` (column "Memory (GB)") gives the same
    number by name.
    """
    out: dict[str, str] = {}
    log = run_dir / "run" / "main_log.txt"
    text = log.read_text() if log.exists() else ""
    durations = dict(re.findall(r"Successfully completed task \S+/(\S+) \(priority \d+\) in "
                                r"(\d+:\d\d:\d\d)", text))  # fmt: skip
    for usage in sorted((run_dir / "run").glob("*/*/resource_usage.txt")):
        rows = [ln.split("\t") for ln in usage.read_text().splitlines()[1:]]
        peak = max((float(r[4]) for r in rows if len(r) > 4), default=float("nan"))
        task = usage.parent.name
        out[task] = f"{peak:.1f} GB in {durations.get(task, '?')}"
    found = re.findall(r"Maximum memory used \(estimate\): ([\d.]+ GB)", text)
    if found:
        out["whole run"] = found[-1]
    return out


def memory_trace(run_dir: Path, task: str, parts: int = 10) -> list[float]:
    """Peak memory (GB) of a task in each tenth of its run (its ``resource_usage.txt``).

    ESMValCore samples the task's process tree once a second; a memory that grows with the
    months shows as rising numbers, a bounded one as a flat row.
    """
    usage = next(iter(sorted((run_dir / "run").glob(f"*/{task}/resource_usage.txt"))), None)
    if usage is None:
        return []
    values = [float(r[4]) for r in (ln.split("\t") for ln in usage.read_text().splitlines()[1:])
              if len(r) > 4]  # fmt: skip
    if not values:
        return []
    edges = np.linspace(0, len(values), min(parts, len(values)) + 1).astype(int)
    return [max(values[a:b]) for a, b in zip(edges[:-1], edges[1:], strict=True)]


def run_esmvaltool(
    out: Path, resolution: float, n_years: int, timeout: float, n_models: int = 1
) -> dict[str, Any]:
    """Generate the data of ``n_models`` datasets and run the benchmark recipe on them."""
    from carbon_biomes.esmvalcore_config import write_config

    tag = run_tag(n_models, n_years)
    data_root = out / f"data_{tag}"
    n_months = 12 * n_years
    models = model_names(n_models)
    generate_s = 0.0
    for seed, model in enumerate(models):
        gen = generate(data_root, resolution, n_months, model, seed)
        generate_s += gen["setup_s"] + n_months * (gen["fields_s_per_month"]
                                                  + gen["write_s_per_month"])  # fmt: skip
    years = tuple(gen["years"])
    recipe = write_recipe(out, years, models, resolution)  # type: ignore[arg-type]
    config = write_config(out / f"config_{tag}", data_root, out / "esmvaltool_output")
    exe = Path(sys.executable).with_name("esmvaltool")
    env = {**os.environ, "ESMVALTOOL_CONFIG_DIR": str(config.parent), "MPLBACKEND": "Agg",
           "TF_CPP_MIN_LOG_LEVEL": "2"}  # fmt: skip
    log_path = out / f"esmvaltool_{tag}.log"
    t0 = time.perf_counter()
    with open(log_path, "w") as log_file:
        proc = subprocess.Popen([str(exe), "run", str(recipe)], cwd=REPO, env=env,
                                stdout=log_file, stderr=subprocess.STDOUT,
                                start_new_session=True)  # fmt: skip
        try:
            rc: int | str = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 15)  # the run's own process group (started here)
            proc.wait()
            rc = f"stopped after {timeout:.0f} s"
    wall = time.perf_counter() - t0
    runs = sorted((out / "esmvaltool_output").glob(f"{recipe.stem}_*"))
    memory = parse_run(runs[-1]) if runs else {}
    return {"years": n_years, "models": n_models, "resolution": resolution, "rc": rc,
            "wall_s": wall, "memory": memory, "generate_s": generate_s,
            "run_dir": str(runs[-1]) if runs else ""}  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Driver and table
# ---------------------------------------------------------------------------------------------
def machine_info() -> str:
    cpu = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next(ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    ncpu = len(os.sched_getaffinity(0))
    return f"{cpu}, {ncpu} cores, {mem:.0f} GiB RAM; Python {platform.python_version()}"


def table(res: dict[str, dict[str, Any]], cfg: dict[str, Any], esm: list[dict[str, Any]]) -> str:
    g, r = res.get("generate", {}), res.get("regression", {})
    lines = [
        f"# Paper-scale benchmark ({cfg['resolution']}° grid)",
        "",
        f"Machine: {machine_info()}. Generated {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
        f" by `benchmarks/bench_paper_scale.py`. Data: {g.get('grid')} grid, "
        f"{g.get('n_ocean', 0):,} ocean cells, {r.get('n_months', cfg['n_months'])} month(s) "
        f"regressed; {CHEMISTRY_NOTE}. "
        f"Box lattice {BOX_SIZE:g}°. Each stage runs in its own process; 'peak RSS' is that "
        "process's VmHWM (imports and loading of the previous stage's pickled results "
        "included).",
        "",
        "| stage | what | time | peak RSS (MiB) |",
        "|---|---|---|---|",
    ]

    def row(stage: str, what: str, timing: str) -> None:
        if stage in res:
            lines.append(f"| {stage} | {what} | {timing} | {res[stage]['peak_rss_mib']:.0f} |")

    if g:
        row("generate", "analytic fields + CMOR-like NetCDF writing (5 files)",
            f"{g['fields_s_per_month']:.2f} s fields + {g['write_s_per_month']:.2f} s write "
            f"per month; grid set-up {g['setup_s']:.1f} s")  # fmt: skip
    if r:
        row("regression", f"read a month + `regress_months` ({r['n_cells_valid']:,} valid cells, "
            f"{r['n_boxes']:,} boxes, {r['n_significant']:,} significant)",
            f"read {r['read_s_per_month']:.2f} s + regression {r['regress_s_per_month']:.2f} s "
            f"per month (`regress_month` alone: median {r['regress_month_median_s']:.2f} s of "
            f"{len(r['regress_month_runs_s'])}); native grid {r['grid_s']:.2f} s once")  # fmt: skip
    if "baseline" in res:
        b = res["baseline"]
        speed = b["extrapolated_s"] / r["regress_month_median_s"] if r else float("nan")
        row("baseline", f"per-box loop (`box_regression_loop`: mask, lstsq, statistics per box) on "
            f"{b['subset_boxes']} random boxes, extrapolated to {b['n_boxes']:,}",
            f"~{b['extrapolated_s']:.0f} s per month (extrapolated from {b['subset_s']:.2f} s); "
            f"speed-up **{speed:.0f}x**")  # fmt: skip
    if "detection" in res:
        d = res["detection"]
        row("detection", f"pool + standardize + Ward linkage + {d['n_scanned']}-pair scan + cut "
            f"({d['n_boxes']:,} boxes -> {d['n_biomes']} biomes)",
            f"{d['stage_s']:.2f} s once (linkage {d['linkage_s']:.2f} s, one cut "
            f"{d['one_cut_s']:.3f} s)")  # fmt: skip
    if "training" in res:
        t = res["training"]
        row("training", f"`BiomeClassifier.fit` ({t['n_boxes']:,} boxes, {t['epochs']} epochs)",
            f"{t['stage_s']:.1f} s once")  # fmt: skip
    if "prediction" in res:
        p = res["prediction"]
        row("prediction", f"`track_months` over {p['n_months']} months",
            f"{p['predict_s_per_month']:.3f} s per month")
    if "analysis" in res:
        a = res["analysis"]
        row("analysis", f"`coverage` on the native grid, {a['regions']} regions",
            f"{a['coverage_s_per_month']:.3f} s per month; masks and areas {a['setup_s']:.2f} s "
            "once")  # fmt: skip
    if "comparison" in res:
        c = res["comparison"]
        row("comparison", "two datasets on the lattice (`lattice_coverage` x2, `map_comparison`, "
            f"`coverage_comparison`) {c['note']}",
            f"{c['stage_s']:.3f} s for {c['n_months']} month(s)")  # fmt: skip
    if "writing" in res:
        w = res["writing"]
        row("writing", "`products.write_monthly_rcs`",
            f"{w['write_s_per_month']:.3f} s per month ({w['bytes'] / 2**20:.1f} MiB file)")
    if "memory" in res:
        m = res["memory"]
        lines += ["", f"Resident memory (VmRSS, MiB) after each year of a stream of "
                  f"{m['n_months']} months, one process (`memory` stage; the process's peak "
                  f"VmHWM after the first stream: {m['hwm_after_regress_only_mib']} MiB, at the "
                  f"end: {m['peak_rss_mib']:.0f} MiB):", "",
                  "| stream | " + " | ".join(f"y{i + 1}" for i in range(len(m['regress_only_mib'])))
                  + " |", "|---|" + "---|" * len(m["regress_only_mib"]),
                  "| `regress_months` alone | " + " | ".join(map(str, m["regress_only_mib"]))
                  + " |",
                  "| `regress_months` into `write_monthly_rcs` | "
                  + " | ".join(map(str, m["regress_and_write_mib"])) + " |"]  # fmt: skip
    lines += ["", "## Against the targets", ""]
    lines += targets(res)
    lines += ["", "Notes:", "",
              "- The baseline is timed on a random subset of boxes and extrapolated linearly in "
              "the number of boxes (each box costs the same: a mask over all cells + lstsq).",
              "- Training uses the library's `ClassifierSettings()` defaults (50 epochs, "
              "patience 5); the demo recipe's tracking settings (200 epochs, patience 10) are "
              "used in the esmvaltool runs.",
              "- Prediction and coverage are timed over the regressed month(s) repeated "
              "(`--predict-months`), relabelled as later months.",
              "- The comparison's second dataset is the tracked labels with 10 % of the boxes "
              "relabelled at random (the cost does not depend on the labels).",
              "- The 61-year figure is an extrapolation of the in-process per-month step; it "
              "leaves out ESMValCore's preprocessing, figures, trends and frequency maps (see "
              "the esmvaltool runs for those)."]  # fmt: skip
    if esm:
        lines += ["", "## esmvaltool run (regression, detection, tracking, analysis; with several "
                  "datasets also both comparisons)", "",
                  "| datasets | years | data generation | return code | esmvaltool run wall time "
                  "| peak memory per diagnostic (resource_usage.txt) |",
                  "|---|---|---|---|---|---|"]  # fmt: skip
        for e in esm:
            mem = ", ".join(f"{k}: {v}" for k, v in e["memory"].items()) or "not found in log"
            what = run_label(e, cfg)
            lines.append(f"| {what} | {e['years']} | {e['generate_s']:.0f} s | {e['rc']} | "
                         f"{e['wall_s'] / 60:.1f} min | {mem} |")
        lines += ["", "Memory of each diagnostic during its run (GB; the peak of ESMValCore's "
                  "once-a-second samples in each tenth of the task's run time): a memory that "
                  "grows with the months would rise from left to right.", "",
                  "| datasets | years | diagnostic | " + " | ".join(f"{10 * k}-{10 * k + 10} %"
                                                             for k in range(10)) + " |",
                  "|---|---|---|" + "---|" * 10]  # fmt: skip
        for e in esm:
            if not e.get("run_dir"):
                continue
            what = run_label(e, cfg)
            for task in e["memory"]:
                trace = memory_trace(Path(e["run_dir"]), task)
                if trace:
                    lines.append(f"| {what} | {e['years']} | {task} | "
                                 + " | ".join(f"{v:.1f}" for v in trace) + " |")
        lines += ["", *esmvaltool_targets(esm, cfg)]
        cells = [(e, valid_cells(Path(e["run_dir"]))) for e in esm if e.get("run_dir")]
        cells = [(e, c) for e, c in cells if c]
        if cells:
            lines += ["", "Valid ocean cells per month in the regression (the rest fall outside "
                      "the outlier filter, mostly fCO2 > 500 µatm as the synthetic fields warm "
                      "and take up carbon; fewer cells cost less):", "",
                      "| datasets | years | first month | last month | mean |",
                      "|---|---|---|---|---|"]
            for e, (first, last, mean) in cells:
                what = run_label(e, cfg)
                lines.append(f"| {what} | {e['years']} | {first:,} | {last:,} | {mean:,.0f} |")
    return "\n".join(lines) + "\n"


def valid_cells(run_dir: Path) -> tuple[int, int, float] | None:
    """Valid cells of the first and last month and their mean (first dataset of a run)."""
    import netCDF4

    files = sorted((run_dir / "work").glob("*/regression/*_monthly_rcs.nc"))
    if not files:
        return None
    with netCDF4.Dataset(files[0]) as nc:
        n = np.asarray(nc.variables["n_cells_valid"][:])
    return int(n[0]), int(n[-1]), float(n.mean())


def _peak_gb(entry: dict[str, Any]) -> float:
    """Largest peak memory of one diagnostic in an esmvaltool run (GB)."""
    peaks = [float(v.split()[0]) for k, v in entry["memory"].items() if k != "whole run"]
    return max(peaks, default=float("nan"))


def esmvaltool_targets(esm: list[dict[str, Any]], cfg: dict[str, Any]) -> list[str]:
    """The targets as measured through ``esmvaltool run``."""
    out = ["Against the targets, through `esmvaltool run`:", "",
           "| target | measured | met |", "|---|---|---|"]  # fmt: skip
    single = sorted((e for e in esm if e.get("models", 1) == 1 and e["rc"] == 0),
                    key=lambda e: e["years"])  # fmt: skip
    if single:
        longest = single[-1]
        minutes = longest["wall_s"] / 60
        if longest["years"] >= 61:
            measured = f"{minutes:.1f} min for {longest['years']} years (measured)"
            ok = minutes <= 30
        elif len(single) > 1:
            first = single[0]
            rate = (longest["wall_s"] - first["wall_s"]) / (longest["years"] - first["years"])
            total = (longest["wall_s"] + rate * (61 - longest["years"])) / 60
            measured = (f"{total:.1f} min, extrapolated from {first['years']}-{longest['years']} "
                        f"years ({rate:.1f} s per year)")  # fmt: skip
            ok = total <= 30
        else:
            measured, ok = f"{minutes:.1f} min for {longest['years']} years", False
        out.append(f"| 61 years at {cfg['resolution']:g}° tracked end to end <= 30 min | "
                   f"{measured} | {'yes' if ok else 'NO'} |")  # fmt: skip
        peaks = [(e["years"], _peak_gb(e)) for e in single]
        grows = peaks[-1][1] > peaks[0][1] + 0.3 if len(peaks) > 1 else False
        text = ", ".join(f"{p:.1f} GB at {y} years" for y, p in peaks)
        ok = all(p <= 4.0 for _, p in peaks) and not grows
        out.append(f"| peak memory of a diagnostic <= 4 GB, not growing with the years | {text}"
                   f" | {'yes' if ok else 'NO'} |")  # fmt: skip
    multi = [e for e in esm if e.get("models", 1) > 1 and e["rc"] == 0]
    for e in multi:
        p = _peak_gb(e)
        out.append(f"| {e['models']} datasets at {e.get('resolution', 1):g}° in one recipe "
                   f"within 4 GB | {p:.1f} GB ({e['years']} years, {e['wall_s'] / 60:.1f} min) "
                   f"| {'yes' if p <= 4.0 else 'NO'} |")  # fmt: skip
    return out


def targets(res: dict[str, dict[str, Any]]) -> list[str]:
    out = ["| target | measured | met |", "|---|---|---|"]
    r, p, a, w = (res.get(k) for k in ("regression", "prediction", "analysis", "writing"))
    if r:
        v = r["regress_month_median_s"]
        ok = "yes" if v <= 1 else "NO"
        out.append(f"| box regression of a month <= 1 s | {v:.2f} s | {ok} |")
    if r and p and a and w:
        step = (r["read_s_per_month"] + r["regress_s_per_month"] + p["predict_s_per_month"]
                + a["coverage_s_per_month"] + w["write_s_per_month"])  # fmt: skip
        out.append(f"| whole per-month step (read + regression + prediction + coverage + write) "
                   f"<= 2 s | {step:.2f} s | {'yes' if step <= 2 else 'NO'} |")  # fmt: skip
        once = sum(res[k]["stage_s"] for k in ("detection", "training") if k in res)
        total = (732 * step + once) / 60
        out.append(f"| 61 years (732 months) end to end <= 30 min, extrapolated: 732 x per-month "
                   f"step + detection + training once (no esmvaltool preprocessing, figures or "
                   f"trends) | {total:.1f} min | {'yes' if total <= 30 else 'NO'} |")  # fmt: skip
    peak = max((v["peak_rss_mib"] for k, v in res.items() if k != "generate"), default=0)
    if peak:
        out.append(f"| peak memory <= 4 GB (largest stage process) | {peak / 1024:.2f} GiB | "
                   f"{'yes' if peak <= 4096 else 'NO'} per stage; growth with the years: see "
                   "the memory stage and the esmvaltool runs |")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--resolution", type=float, default=0.25)
    parser.add_argument("--years", type=int, nargs="+", default=[1])
    parser.add_argument("--months", type=int, default=None,
                        help="months for the per-stage timings (default: 12 x the first --years)")
    parser.add_argument("--out", type=Path, default=Path("/tmp/bench_paper_scale"))
    parser.add_argument("--stages", nargs="+", choices=STAGES, default=list(DEFAULT_STAGES),
                        help="stages to run (default: all but 'memory')")
    parser.add_argument("--memory-months", type=int, default=120,
                        help="months of the 'memory' stage (VmHWM after every year)")
    parser.add_argument("--skip-esmvaltool", action="store_true")
    parser.add_argument("--repeat", type=int, default=3, help="repeats of regress_month")
    parser.add_argument("--loop-boxes", type=int, default=300, help="boxes of the baseline")
    parser.add_argument("--predict-months", type=int, default=12,
                        help="months tracked (the regressed months, repeated)")
    parser.add_argument("--esmvaltool-timeout", type=float, default=900.0)
    parser.add_argument("--models", type=int, nargs="+", default=[1],
                        help="datasets in the recipe of the esmvaltool runs (each count is run "
                             "for every --years)")
    parser.add_argument("--esmvaltool-only", action="store_true",
                        help="no per-stage timings: only the esmvaltool runs (their results are "
                             "added to those already in OUT/state)")
    parser.add_argument("--worker", choices=STAGES, help=argparse.SUPPRESS)
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--table-only", action="store_true",
                        help="only render the table from the results already in OUT/state")
    args = parser.parse_args(argv)  # fmt: skip
    state = args.out / "state"
    if args.worker:
        run_worker(args.worker, state)
        return 0
    if args.table_only:
        cfg = json.loads((state / "config.json").read_text())
        res = {k: json.loads((state / f"result_{k}.json").read_text())
               for k in STAGES if (state / f"result_{k}.json").exists()}
        text = table(res, cfg, _stored_runs(state))
        print(text)
        args.results.write_text(text)
        return 0
    if args.esmvaltool_only:
        state.mkdir(parents=True, exist_ok=True)
        if not (state / "config.json").exists():
            (state / "config.json").write_text(json.dumps({"resolution": args.resolution,
                                                           "n_months": 0}))  # fmt: skip
        cfg = json.loads((state / "config.json").read_text())
        res = {k: json.loads((state / f"result_{k}.json").read_text())
               for k in STAGES if (state / f"result_{k}.json").exists()}  # fmt: skip
        _esmvaltool_runs(args, state)
        text = table(res, cfg, _stored_runs(state))
        print(text)
        args.results.write_text(text)
        return 0
    state.mkdir(parents=True, exist_ok=True)
    n_months = args.months or 12 * args.years[0]
    cfg = {
        "resolution": args.resolution,
        "n_months": n_months,
        "years": [FIRST_YEAR, FIRST_YEAR + (-(-n_months // 12)) - 1],
        "data_root": str(args.out / "data"),
        "repeat": args.repeat,
        "loop_boxes": args.loop_boxes,
        "predict_months": args.predict_months,
        "memory_months": args.memory_months,
    }
    (state / "config.json").write_text(json.dumps(cfg))
    if "generate" in args.stages:
        shutil.rmtree(args.out / "data", ignore_errors=True)
    results: dict[str, dict[str, Any]] = {}
    env = {**os.environ, "MPLBACKEND": "Agg", "TF_CPP_MIN_LOG_LEVEL": "2"}
    for stage in STAGES:
        if stage not in args.stages:
            f = state / f"result_{stage}.json"
            if f.exists():
                results[stage] = json.loads(f.read_text())
            continue
        t0 = time.perf_counter()
        cmd = [sys.executable, __file__, "--worker", stage, "--out", str(args.out)]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if proc.returncode:
            print(f"stage {stage} failed:\n{proc.stderr[-3000:]}", file=sys.stderr)
            return 1
        results[stage] = json.loads((state / f"result_{stage}.json").read_text())
        print(f"{stage}: {results[stage]['stage_s']:.2f} s in the stage, "
              f"{time.perf_counter() - t0:.1f} s in the process, "
              f"peak RSS {results[stage]['peak_rss_mib']:.0f} MiB", flush=True)  # fmt: skip
    if not args.skip_esmvaltool:
        _esmvaltool_runs(args, state)
    text = table(results, cfg, _stored_runs(state))
    print(text)
    args.results.write_text(text)
    return 0


def _esmvaltool_runs(args: argparse.Namespace, state: Path) -> None:
    """Run the benchmark recipe for every --models and --years; results to OUT/state."""
    for n_models in args.models:
        for n_years in args.years:
            entry = run_esmvaltool(args.out, args.resolution, n_years, args.esmvaltool_timeout,
                                   n_models)  # fmt: skip
            record = state / f"esmvaltool_{run_tag(n_models, n_years)}.json"
            record.write_text(json.dumps(entry, default=str))
            print(json.dumps(entry, default=str), flush=True)


def _stored_runs(state: Path) -> list[dict[str, Any]]:
    """Every esmvaltool run recorded in OUT/state, memory re-read from its run directory."""
    runs = []
    for f in state.glob("esmvaltool_*.json"):
        entry = json.loads(f.read_text())
        if entry.get("run_dir") and Path(entry["run_dir"]).exists():
            entry["memory"] = parse_run(Path(entry["run_dir"]))
        runs.append(entry)
    return sorted(runs, key=lambda e: (e.get("models", 1), e.get("resolution", 0), e["years"]))


if __name__ == "__main__":
    sys.exit(main())
