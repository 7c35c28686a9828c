"""Benchmarks of the detection stage: box regression, Ward linkage, adaptive cut, Δdist vs N.

Run from the repository root::

    .venv/bin/python benchmarks/bench_detection.py            # everything (a few minutes)
    .venv/bin/python benchmarks/bench_detection.py --only regression --res 0.25
    .venv/bin/python benchmarks/bench_detection.py --only cut --n-cut 20000
    .venv/bin/python benchmarks/bench_detection.py --only thresholds

Not part of the test suite. Synthetic data only (seeded): a global ocean with smooth
climatological base states, mesoscale anomalies of SST, DIC and ALK that are partly
correlated (as in the real ocean), and fCO2 from PyCO2SYS (threshold study) or from a cheap
analytic carbonate-chemistry approximation (timing at 0.25°, where PyCO2SYS would take ~30 s).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import numpy as np
from scipy import ndimage

from carbon_biomes.core.clustering import (
    DEFAULT_DELTA_DISTS_ROOT,
    DEFAULT_DELTA_VARS,
    PAPER_DELTA_DISTS,
    PAPER_DELTA_VARS,
    PAPER_THRESHOLDS,
    adaptive_cut,
    adaptive_cut_nodes,
    select_thresholds,
    standardize,
    threshold_scan,
    ward_linkage,
)
from carbon_biomes.core.regression import (
    box_index,
    box_regression,
    box_regression_loop,
    outlier_mask,
    significant_boxes,
)


# ---------------------------------------------------------------------------------------------
# Synthetic data
# ---------------------------------------------------------------------------------------------
def smooth_noise(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    """Unit-variance Gaussian random field, smoothed by `sigma` grid cells (periodic in lon)."""
    f = ndimage.gaussian_filter(rng.standard_normal(shape), sigma, mode=("nearest", "wrap"))
    return f / f.std()


def synthetic_month(
    res: float, seed: int = 0, chemistry: str = "pyco2sys", land_fraction: float = 0.3
) -> dict[str, Any]:
    """Global synthetic month on a regular `res`-degree grid; land and ice-shelf cells are NaN.

    DIC and ALK are in µmol/kg (PyCO2SYS units), SST in degC, fCO2 in µatm.
    """
    rng = np.random.default_rng(seed)
    lat = np.arange(-90 + res / 2, 90, res)
    lon = np.arange(res / 2, 360, res)  # 0..360 convention on purpose
    shape = (lat.size, lon.size)
    la, lo = np.meshgrid(lat, lon, indexing="ij")
    cells_per_deg = 1.0 / res
    # land: smooth blobs (`land_fraction` of the cells); no ocean poleward of 85°N / 78°S
    blobs = smooth_noise(rng, shape, 8 * cells_per_deg)
    land = blobs > np.quantile(blobs, 1.0 - land_fraction)
    land |= (la > 85) | (la < -78)
    # base state: meridional gradients plus eastern-boundary / equatorial upwelling
    coslat = np.cos(np.deg2rad(la))
    upw = np.exp(-(((lo - 260) / 25) ** 2) - (la / 6) ** 2)  # cold tongue, east Pacific
    upw += np.exp(-(((lo - 10) / 8) ** 2) - ((la + 20) / 8) ** 2)  # Benguela-like
    regional = smooth_noise(rng, shape, 6 * cells_per_deg)
    sst = -1.8 + 30.0 * coslat**2 - 4.0 * upw + 1.0 * regional
    sst = np.maximum(sst, -1.8)
    dic = 2175.0 - 7.5 * (sst + 1.8) + 45.0 * upw
    dic = dic + 15.0 * smooth_noise(rng, shape, 5 * cells_per_deg)
    alk = 2290.0 + 2.2 * (sst + 1.8) + 12.0 * smooth_noise(rng, shape, 5 * cells_per_deg)
    sal = 34.2 + 1.6 * coslat**2
    # mesoscale anomalies, stronger in boundary-current / Southern Ocean bands; partly correlated
    amp = (
        0.5 + 1.5 * np.exp(-(((np.abs(la) - 40) / 10) ** 2)) + 1.0 * np.exp(-(((la + 55) / 8) ** 2))
    )
    s1 = smooth_noise(rng, shape, 0.8 * cells_per_deg)
    s2 = smooth_noise(rng, shape, 0.8 * cells_per_deg)
    s3 = smooth_noise(rng, shape, 0.8 * cells_per_deg)
    sst_a = 0.4 * amp * s1
    dic_a = -6.0 * sst_a + 6.0 * amp * s2
    alk_a = 0.5 * dic_a + 5.0 * amp * s3
    # freshwater (salinity) anomalies dilute DIC and ALK together: strong DIC-ALK collinearity
    sal_a = 0.15 * amp * smooth_noise(rng, shape, 1.2 * cells_per_deg)
    dic_a = dic_a + dic / sal * sal_a
    alk_a = alk_a + alk / sal * sal_a
    sst, dic, alk, sal = sst + sst_a, dic + dic_a, alk + alk_a, sal + sal_a
    ocean = ~land
    fco2 = np.full(shape, np.nan)
    if chemistry == "pyco2sys":
        import PyCO2SYS as pyco2  # noqa: N813

        out = pyco2.sys(
            par1=alk[ocean],
            par2=dic[ocean],
            par1_type=1,
            par2_type=2,
            salinity=sal[ocean],
            temperature=sst[ocean],
        )
        fco2[ocean] = out["fCO2"]
    else:  # analytic approximation (Takahashi-style sensitivities around a reference state)
        buffer = 14.0 - 0.2 * sst  # Revelle-like factor, larger in cold water
        fco2 = 380.0 * np.exp(
            0.0423 * (sst - 15.0) + buffer * ((dic - 2050.0) - 1.05 * (alk - 2320.0) + 100) / 2050.0
        )
    # processes not explained by the three drivers (biology, salinity, mixing)
    # (stronger in some regions: the drivers explain less there and the RCs are noisier)
    other_amp = 2.0 + 6.0 * (smooth_noise(rng, shape, 10 * cells_per_deg) > 0.8)
    fco2 = fco2 + other_amp * smooth_noise(rng, shape, 1.5 * cells_per_deg)
    fco2 = fco2 + 1.0 * rng.standard_normal(shape)
    for a in (sst, dic, alk, fco2):
        a[land] = np.nan
    return {"lat": lat, "lon": lon, "fco2": fco2, "sst": sst, "dic": dic, "alk": alk}


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------
def timed(fn: Callable[[], Any], repeat: int) -> tuple[float, list[float], Any]:
    times = []
    out = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), times, out


def peak_mib(fn: Callable[[], Any]) -> float:
    tracemalloc.start()
    tracemalloc.reset_peak()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 2**20


def machine_info() -> str:
    cpu = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError):
        mem = float("nan")
    import fastcluster
    import scipy
    import sklearn

    ncpu = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return (
        f"{cpu}, {ncpu} cores available, {mem:.0f} GiB RAM; Python {platform.python_version()}, "
        f"numpy {np.__version__}, scipy {scipy.__version__}, scikit-learn {sklearn.__version__}, "
        f"fastcluster {fastcluster.__version__}; {platform.platform()}"
    )


def grouped_loop(ids: np.ndarray, y: np.ndarray, x: np.ndarray, min_points: int = 5) -> int:
    """A *well-written* per-box loop (cells sorted by box once, lstsq per box), for fairness."""
    order = np.argsort(ids, kind="stable")
    ids_s, y_s, x_s = ids[order], y[order], x[:, order]
    bounds = np.flatnonzero(np.diff(ids_s)) + 1
    starts = np.concatenate([[0], bounds])
    ends = np.concatenate([bounds, [ids_s.size]])
    fitted = 0
    for s, e in zip(starts, ends, strict=True):
        if e - s < min_points:
            continue
        design = np.column_stack([np.ones(e - s), x_s[:, s:e].T])
        np.linalg.lstsq(design, y_s[s:e], rcond=None)
        fitted += 1
    return fitted


# ---------------------------------------------------------------------------------------------
# Benchmarks
# ---------------------------------------------------------------------------------------------
def bench_regression(args: argparse.Namespace) -> list[str]:
    print(f"== box_regression: synthetic {args.res}° month, {args.box}° boxes ==")
    t0 = time.perf_counter()
    m = synthetic_month(
        args.res, seed=args.seed, chemistry="analytic", land_fraction=args.land_fraction
    )
    print(f"   generated data in {time.perf_counter() - t0:.1f} s")
    lat, lon = m["lat"], m["lon"]
    drivers = [m["sst"], m["dic"], m["alk"]]
    n_cells = int(np.isfinite(m["fco2"]).sum())
    med, times, res = timed(
        lambda: box_regression(lat, lon, m["fco2"], drivers, args.box), args.repeat
    )
    mem = peak_mib(lambda: box_regression(lat, lon, m["fco2"], drivers, args.box))
    n_box = len(res)
    if n_box == 0:
        raise SystemExit(
            f"no box of {args.box}° holds enough cells of a {args.res}° grid: use a larger --box"
        )
    print(
        f"   {n_cells} valid cells, {n_box} boxes fitted; median {med:.3f} s "
        f"(runs {', '.join(f'{t:.3f}' for t in times)}); peak traced memory {mem:.0f} MiB"
    )
    input_mib = 4 * m["fco2"].nbytes / 2**20

    # the per-box loop (as in the notebooks: boolean mask over all cells, then fit), timed on
    # a random subset of the boxes on the full data and extrapolated linearly in boxes
    rng = np.random.default_rng(args.seed)
    chosen = rng.choice(res.box_id, size=min(args.loop_boxes, n_box), replace=False)
    t_sub, _, rl = timed(
        lambda: box_regression_loop(lat, lon, m["fco2"], drivers, args.box, box_ids=chosen), 1
    )
    assert len(rl) == chosen.size
    t_loop_est = t_sub / chosen.size * n_box
    la2, lo2 = np.broadcast_arrays(lat[:, None], lon[None, :])
    valid = np.isfinite(m["fco2"])
    for d in drivers:
        valid &= np.isfinite(d)
    flat_ids = box_index(la2, lo2, args.box)[valid]
    y = m["fco2"][valid]
    x = np.stack([d[valid] for d in drivers])
    t_grouped, _, _ = timed(lambda: grouped_loop(flat_ids, y, x), 1)
    print(
        f"   box_regression_loop (mask + lstsq + statistics) on {chosen.size} random boxes: "
        f"{t_sub:.2f} s -> {t_loop_est:.0f} s for {n_box} boxes (extrapolated), "
        f"speed-up {t_loop_est / med:.0f}x"
    )
    print(
        f"   sorted-groups loop (lstsq only, no statistics), all boxes: {t_grouped:.2f} s, "
        f"speed-up {t_grouped / med:.1f}x"
    )
    return [
        f"| box_regression, {args.res}° global month ({lat.size}x{lon.size} grid), "
        f"{n_cells:,} valid cells, 3 drivers, {args.box:g}° boxes ({n_box:,} boxes) | "
        f"{med:.3f} s (median of {args.repeat}) | peak {mem:.0f} MiB traced by tracemalloc "
        f"(the 4 input fields: {input_mib:.0f} MiB) |",
        f"| `box_regression_loop` (per box: boolean mask over all cells, lstsq, statistics), "
        f"timed on {chosen.size} random boxes of the same month, extrapolated to {n_box:,} "
        f"boxes | ~{t_loop_est:.0f} s (extrapolated from {t_sub:.2f} s) | speed-up "
        f"**{t_loop_est / med:.0f}x** |",
        f"| sorted-groups loop (cells sorted by box once, lstsq per box, no standard errors or "
        f"p-values), all boxes | {t_grouped:.2f} s | speed-up {t_grouped / med:.1f}x |",
    ]


def realistic_rcs(res: float, boxes: tuple[float, ...], seed: int) -> dict[float | str, np.ndarray]:
    """RCs of the boxes of one PyCO2SYS synthetic month, per box size.

    Key ``box``: the paper's filters applied (outlier mask per cell, all three slopes
    p <= 0.04); key ``"all {box}"``: every fitted box.
    """
    m = synthetic_month(res, seed=seed, chemistry="pyco2sys")
    dic_mmol, alk_mmol = m["dic"] * 1.025, m["alk"] * 1.025  # µmol/kg -> mmol m-3
    ok = outlier_mask(m["fco2"], m["sst"], dic_mmol, alk_mmol)
    fco2 = np.where(ok, m["fco2"], np.nan)
    out: dict[float | str, np.ndarray] = {}
    for box in boxes:
        r = box_regression(m["lat"], m["lon"], fco2, [m["sst"], dic_mmol, alk_mmol], box)
        out[box] = r.select(significant_boxes(r)).slopes
        out[f"all {box:g}"] = r.slopes  # before the significance filter
    return out


def bench_cut(args: argparse.Namespace, pool: np.ndarray) -> list[str]:
    """Time Ward linkage, adaptive cut and threshold scans on `n_cut` boxes."""
    n = min(args.n_cut, pool.shape[0])
    rng = np.random.default_rng(args.seed)
    idx = rng.choice(pool.shape[0], size=n, replace=False)
    z, _, _ = standardize(pool[idx])
    print(f"== Ward linkage and adaptive cut on {n} boxes ==")
    t_link, _, z_link = timed(lambda: ward_linkage(z), 1)
    rows = []
    for spread in ("pooled_variance", "wcss"):
        for dd, dv, scale in ((25.0, 0.1, "absolute"), (0.1, 0.1, "root")):
            med, times, cut = timed(
                lambda dd=dd, dv=dv, scale=scale, spread=spread: adaptive_cut_nodes(
                    z_link, z, dd, dv, spread, dist_scale=scale
                ),
                args.repeat,
            )
            print(
                f"   adaptive_cut {spread}, ({dd}, {dv}, {scale}): median {med * 1e3:.1f} ms, "
                f"{cut.n_biomes} biomes"
            )
            rows.append(
                f"| adaptive_cut, {n:,} boxes, spread={spread}, Δdist={dd} ({scale}), Δvar={dv} "
                f"| {med * 1e3:.1f} ms (median of {args.repeat}) | {cut.n_biomes} biomes |"
            )
    t_scan, _, _ = timed(lambda: threshold_scan(z_link, z, dist_scale="root"), 1)
    n_s = min(5000, n)
    z_s = z[:n_s]
    link_s = ward_linkage(z_s)
    t_stab, _, scan_s = timed(
        lambda: threshold_scan(link_s, z_s, dist_scale="root", stability=True, n_boot=10), 1
    )
    best = select_thresholds(scan_s, "stability")
    print(
        f"   ward_linkage (fastcluster) {t_link:.2f} s; threshold_scan (40 pairs, no "
        f"stability) {t_scan:.2f} s; with stability (10 resamples) on {n_s} boxes "
        f"{t_stab:.1f} s, most stable pair in [4, 12] biomes: {best['n_biomes']} biomes, "
        f"ARI {best['stability']:.2f}"
    )
    rows.append(
        f"| ward_linkage (fastcluster.linkage_vector), {n:,} boxes | {t_link:.2f} s | reference |"
    )
    rows.append(
        f"| threshold_scan, default root-relative grid (40 pairs; silhouette on a "
        f"5000-box subsample; no bootstrap), {n:,} boxes | {t_scan:.2f} s | |"
    )
    rows.append(
        f"| threshold_scan with bootstrap stability (10 resamples, shared by the 40 "
        f"pairs), {n_s:,} boxes | {t_stab:.1f} s | most stable pair with 4-12 biomes: "
        f"{best['n_biomes']} biomes, mean ARI {best['stability']:.2f} |"
    )
    return rows


def bench_thresholds(args: argparse.Namespace, pools: dict[float, np.ndarray]) -> list[str]:
    """Biome counts of the paper grid and of the root-relative grid for several N."""
    print("== Number of biomes vs number of boxes ==")
    rng = np.random.default_rng(args.seed)
    lines = [
        "| RCs | N boxes | root height | paper grid, absolute Δdist {20,25,28,30} (rows) x "
        "Δvar {0.1,0.5,0.8,1.0} (columns): biome counts | (25, 0.1) | root-relative default "
        "grid: range of biome counts | selected by silhouette in [4, 12] |",
        "|---|---|---|---|---|---|---|",
    ]
    cases: list[tuple[str, np.ndarray]] = []
    for box in sorted(pools):
        if box != args.pool_box:
            cases.append((f"{box:g}° boxes (all)", pools[box]))
    base = pools[args.pool_box]
    for n in args.n_list:
        if n <= base.shape[0]:
            idx = rng.choice(base.shape[0], size=n, replace=False)
            cases.append((f"{args.pool_box:g}° boxes, random subset", base[idx]))
    for spread in ("pooled_variance", "wcss"):
        lines.append(f"| **spread={spread}** | | | | | | |")
        for label, rcs in cases:
            z, _, _ = standardize(rcs)
            link = ward_linkage(z)
            paper = threshold_scan(
                link,
                z,
                PAPER_DELTA_DISTS,
                PAPER_DELTA_VARS,
                spread,
                dist_scale="absolute",
                seed=args.seed,
            )
            rel = threshold_scan(
                link,
                z,
                DEFAULT_DELTA_DISTS_ROOT,
                DEFAULT_DELTA_VARS,
                spread,
                dist_scale="root",
                seed=args.seed,
            )
            grid = np.array([r["n_biomes"] for r in paper]).reshape(
                len(PAPER_DELTA_DISTS), len(PAPER_DELTA_VARS)
            )
            k_paper = "<br>".join(" ".join(f"{k:3d}" for k in row) for row in grid)
            k_fixed = int(adaptive_cut(link, z, *PAPER_THRESHOLDS, spread).max())
            k_rel = [r["n_biomes"] for r in rel]
            try:
                best = select_thresholds(rel, "silhouette")
                chosen = (
                    f"Δdist={best['delta_dist']:g}·h_root, Δvar={best['delta_var']:g}: "
                    f"{best['n_biomes']} biomes (silhouette {best['silhouette']:.2f})"
                )
            except ValueError:
                chosen = "none in range"
            print(
                f"   {spread} {label} N={rcs.shape[0]}: root {link[-1, 2]:.0f}; paper grid "
                f"{grid.tolist()}; (25, 0.1): {k_fixed}; relative grid K in "
                f"[{min(k_rel)}, {max(k_rel)}]; {chosen}"
            )
            lines.append(
                f"| {label} | {rcs.shape[0]:,} | {link[-1, 2]:.0f} | {k_paper} | {k_fixed} | "
                f"{min(k_rel)}-{max(k_rel)} | {chosen} |"
            )
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", choices=("regression", "cut", "thresholds"), action="append")
    parser.add_argument("--res", type=float, default=0.25, help="grid spacing (deg) for timing")
    parser.add_argument(
        "--land-fraction",
        type=float,
        default=0.02,
        help="land fraction of the timing month (0.02 gives ~1 million ocean "
        "cells at 0.25°, as in the brief; the real ocean is ~0.7 of the grid)",
    )
    parser.add_argument("--box", type=float, default=2.0, help="box size (deg)")
    parser.add_argument("--repeat", type=int, default=5, help="runs per timing (median)")
    parser.add_argument("--loop-boxes", type=int, default=200, help="boxes timed in the loop")
    parser.add_argument("--n-cut", type=int, default=20000, help="boxes for the cut benchmark")
    parser.add_argument(
        "--pool-box",
        type=float,
        default=1.5,
        help="box size whose RCs are subsampled in the threshold study",
    )
    parser.add_argument(
        "--rc-res",
        type=float,
        default=0.25,
        help="grid spacing (deg) of the PyCO2SYS month used for realistic RCs",
    )
    parser.add_argument("--n-list", type=int, nargs="+", default=[1000, 2000, 5000, 10000])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    todo = set(args.only or ("regression", "cut", "thresholds"))
    print(machine_info())
    out: list[str] = []
    if "regression" in todo:
        out += bench_regression(args)
    if todo & {"cut", "thresholds"}:
        t0 = time.perf_counter()
        boxes = (1.0, args.pool_box, 2.0, 3.0, 4.0, 6.0)
        pools = realistic_rcs(args.rc_res, tuple(sorted(set(boxes))), args.seed)
        print(
            f"realistic RCs from a {args.rc_res}° PyCO2SYS month in "
            f"{time.perf_counter() - t0:.0f} s: boxes per box size "
            f"{ {b: p.shape[0] for b, p in pools.items()} }; median RCs (2° boxes) "
            f"{np.median(pools[2.0], 0).round(3)}"
        )
        if "cut" in todo:
            out += bench_cut(args, pools["all 1"])
        if "thresholds" in todo:
            significant = {b: p for b, p in pools.items() if isinstance(b, float)}
            if args.pool_box != 1.0:
                significant.pop(1.0)
            out += bench_thresholds(args, significant)
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
