"""Per-month work on a Dask distributed cluster gives the numbers of the serial run.

In-process: a ``distributed.LocalCluster`` (two worker processes, one thread each) started
here; the regression and tracking scripts' ``main`` run with ``scheduler_address`` (as
ESMValCore passes it in ``settings.yml``) and their products equal those of the serial run,
value for value, and the log says where the tasks ran. End to end: ``esmvaltool run`` of a
one-model recipe (regression, detection, tracking) with ESMValCore's ``dask`` configuration
selecting a ``distributed.LocalCluster`` profile.
"""

from __future__ import annotations

import logging
import re
import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import yaml
from tests.conftest import TINY_BOX, TINY_NETWORK, load_script, metadata_entries, script_cfg

from carbon_biomes.esmvalcore_config import latest_run_dir, run_recipe, write_config
from carbon_biomes.sample_data import generate_sample_data
from carbon_biomes.workflow import parallel, settings

distributed = pytest.importorskip("distributed")

REPOSITORY = Path(__file__).resolve().parent.parent
MODELS = ("SYNTH-ESM-A", "SYNTH-ESM-B")
RAN = re.compile(r"(\d+) chunks \((\d+) months, up to \d+ per chunk\) ran on the Dask cluster "
                 r"at (\S+) with (\d+) workers")  # fmt: skip


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as local:  # fmt: skip
        yield local


def _attributes(attrs: dict) -> dict:
    """Attributes comparable with ``==`` (arrays as lists), without the time-stamped history."""
    return {key: (value.tolist() if isinstance(value, np.ndarray) else value)
            for key, value in attrs.items() if key != "history"}  # fmt: skip


def _assert_same_netcdf(a_path: Path, b_path: Path) -> None:
    with xr.open_dataset(a_path, decode_cf=False) as a, \
            xr.open_dataset(b_path, decode_cf=False) as b:  # fmt: skip
        assert set(a.variables) == set(b.variables)
        for name in a.variables:
            assert a[name].dtype == b[name].dtype, name
            np.testing.assert_array_equal(a[name].values, b[name].values, err_msg=name)
            assert _attributes(a[name].attrs) == _attributes(b[name].attrs), name
        assert _attributes(a.attrs) == _attributes(b.attrs)


def _ran_on_cluster(text: str, stage: str, address: str) -> list[tuple[int, int, str, int]]:
    runs = [(int(c), int(m), addr, int(w))
            for line in text.splitlines() if f"{stage} of " in line
            for c, m, addr, w in RAN.findall(line)]  # fmt: skip
    assert runs, f"no '{stage}' line says the tasks ran on the cluster"
    assert all(addr == address for *_, addr, _ in runs), runs
    return runs


def test_every_script_accepts_scheduler_address():
    """ESMValCore writes ``scheduler_address`` into the settings of every Python script."""
    assert "scheduler_address" in settings.ESMVALCORE_KEYS
    extra = {"scheduler_address": "tcp://127.0.0.1:8786"}
    settings.RegressionScriptSettings.from_cfg(extra)
    settings.DetectionScriptSettings.from_cfg(extra)
    settings.TrackingScriptSettings.from_cfg(extra)
    settings.AnalysisScriptSettings.from_cfg(extra)
    settings.ComparisonScriptSettings.from_cfg({**extra, "reference": "SYNTH-ESM-A"})


def test_serial_pool_has_no_mapper():
    with parallel.month_pool({"run_dir": "."}) as pool:
        assert not pool.distributed and pool.mapper("regression", "x", 12) is None
        assert list(pool.map(pow, [1, 2, 3], 2)) == [1, 4, 9]


def _slow_square(x: int, delay: float) -> tuple[int, str, int]:
    import os

    from threadpoolctl import threadpool_info

    time.sleep(delay * (x % 3))  # later chunks finish first
    blas = max((pool["num_threads"] for pool in threadpool_info()), default=1)
    return x * x, os.environ["OPENBLAS_NUM_THREADS"], blas


def test_map_keeps_the_order_and_limits_threads(cluster):
    with parallel.month_pool({"scheduler_address": cluster.scheduler_address}) as pool:
        assert pool.distributed and pool.n_workers() == 2
        assert pool.chunk_size(12) == 3 and pool.chunk_size(500) == parallel.MAX_CHUNK_MONTHS
        results = list(pool.map(_slow_square, range(20), 0.05, n_items=20))
    assert [r[0] for r in results] == [x * x for x in range(20)]
    # one BLAS/OpenMP thread per task on the workers: environment and loaded libraries
    assert {r[1:] for r in results} == {("1", 1)}


@pytest.fixture(scope="module")
def serial_and_cluster_runs(sample_root, run_pipeline, cluster, tmp_path_factory):
    """Regression and detection serially; then regression and tracking once more on the
    cluster (reading the serial detection, so that tracking sees the same reference)."""
    data = metadata_entries(sample_root)
    serial = run_pipeline(data, "dask_serial", tracking=False)
    root = tmp_path_factory.mktemp("dask_cluster")
    address = cluster.scheduler_address
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record)

    handler = Keep(level=logging.INFO)
    parallel_logger = logging.getLogger(parallel.__name__)
    level = parallel_logger.level
    parallel_logger.addHandler(handler)
    parallel_logger.setLevel(logging.INFO)
    ancestors = [serial["regression"]["work_dir"], serial["detection"]["work_dir"]]
    try:
        regression = script_cfg(root, "regression", data, box_size=TINY_BOX,
                                scheduler_address=address)  # fmt: skip
        load_script("regress_boxes").main(regression)
        tracking_serial = script_cfg(root, "tracking_serial", None, input_files=ancestors,
                                     **TINY_NETWORK)  # fmt: skip
        load_script("track_biomes").main(tracking_serial)
        tracking = script_cfg(root, "tracking", None, input_files=ancestors,
                              scheduler_address=address, **TINY_NETWORK)  # fmt: skip
        load_script("track_biomes").main(tracking)
    finally:
        parallel_logger.removeHandler(handler)
        parallel_logger.setLevel(level)
    log = "\n".join(record.getMessage() for record in records)
    return serial, {"regression": regression, "tracking": tracking,
                    "tracking_serial": tracking_serial}, log, address  # fmt: skip


@pytest.mark.slow  # trains the networks of two datasets twice
def test_regression_on_the_cluster_equals_the_serial_run(serial_and_cluster_runs):
    serial, on_cluster, log, address = serial_and_cluster_runs
    a, b = Path(serial["regression"]["work_dir"]), Path(on_cluster["regression"]["work_dir"])
    for model in MODELS:
        _assert_same_netcdf(a / f"{model}_monthly_rcs.nc", b / f"{model}_monthly_rcs.nc")
        _assert_same_netcdf(a / f"{model}_native_grid.nc", b / f"{model}_native_grid.nc")
    table = "regression_metrics.csv"
    assert (a / table).read_bytes() == (b / table).read_bytes()
    runs = _ran_on_cluster(log, "regression", address)
    assert len(runs) == len(MODELS)  # one line per dataset
    assert all(chunks > 1 and months == 12 and workers == 2 for chunks, months, _, workers in runs)


@pytest.mark.slow  # trains the networks of two datasets twice
def test_tracking_prediction_on_the_cluster_equals_the_serial_run(serial_and_cluster_runs):
    _, on_cluster, log, address = serial_and_cluster_runs
    a = Path(on_cluster["tracking_serial"]["work_dir"])
    b = Path(on_cluster["tracking"]["work_dir"])
    for model in MODELS:
        _assert_same_netcdf(a / f"{model}_tracked_biomes.nc", b / f"{model}_tracked_biomes.nc")
    assert (a / "tracking_metrics.csv").read_bytes() == (b / "tracking_metrics.csv").read_bytes()
    runs = _ran_on_cluster(log, "tracking prediction", address)
    assert len(runs) == len(MODELS)
    assert all(chunks > 1 and months == 12 and workers == 2 for chunks, months, _, workers in runs)


# ------------------------------------------------------------------------------ esmvaltool run
def _one_model_recipe(path: Path) -> Path:
    recipe = yaml.safe_load(
        (REPOSITORY / "recipes" / "recipe_carbon_biomes_demo.yml").read_text(encoding="utf-8")
    )
    run = {"project": "CMIP6", "dataset": "SYNTH-ESM-A", "institute": "SYNTH",
           "exp": "historical", "ensemble": "r1i1p1f1", "grid": "gn", "timerange": "2009/2009",
           "alias": "SYNTH-ESM-A"}  # fmt: skip
    recipe["MODELS"] = [run]
    diagnostic = recipe["diagnostics"]["carbon_biomes"]
    diagnostic["variables"] = {
        name: {**group, "additional_datasets": [run]}
        for name, group in diagnostic["variables"].items()
        if group.get("preprocessor") != "obs_to_common_grid"
    }
    scripts = diagnostic["scripts"]
    diagnostic["scripts"] = {name: scripts[name] for name in ("regression", "detection",
                                                              "tracking")}  # fmt: skip
    scripts["regression"].update({"box_size": TINY_BOX})
    scripts["detection"].update({"reference_months": ["2009-01"]})
    scripts["tracking"].update({"epochs": 8, "hidden_units": [32, 32]})
    path.write_text(yaml.safe_dump(recipe, sort_keys=False), encoding="utf-8")
    return path


#: ESMValCore 2.15's ``dask`` configuration (config/_dask.py, defaults/dask.yml): the profile
#: named by ``use`` starts this cluster and passes its address to the Python diagnostics.
DASK_LOCAL_CLUSTER = {
    "use": "local_cluster",
    "profiles": {
        "local_cluster": {
            "cluster": {"type": "distributed.LocalCluster", "n_workers": 2,
                        "threads_per_worker": 1, "dashboard_address": None},
        }
    },
}  # fmt: skip


@pytest.fixture(scope="module")
def esmvaltool_dask_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("e2e_dask")
    generate_sample_data(root / "data", models=["SYNTH-ESM-A"], years=(2009, 2009),
                         resolution=2.0)  # fmt: skip
    config_dir = root / "config"
    write_config(config_dir, root / "data", root / "output", max_parallel_tasks=1,
                 dask=DASK_LOCAL_CLUSTER)  # fmt: skip
    recipe = _one_model_recipe(root / "recipe_carbon_biomes_dask.yml")
    start = time.perf_counter()
    result = run_recipe(recipe, config_dir, repository=REPOSITORY)
    return result, latest_run_dir(root / "output", recipe), time.perf_counter() - start


@pytest.mark.esmvaltool
def test_esmvaltool_run_on_a_local_cluster(esmvaltool_dask_run):
    result, run_dir, _ = esmvaltool_dask_run
    main_log = (run_dir / "run" / "main_log.txt").read_text(encoding="utf-8") if run_dir else ""
    assert result.returncode == 0, main_log[-5000:]
    assert "Using Dask distributed scheduler" in main_log
    run = run_dir / "run" / "carbon_biomes"
    settings_file = yaml.safe_load((run / "regression" / "settings.yml").read_text())
    address = settings_file["scheduler_address"]
    assert address.startswith("tcp://")
    regression_log = (run / "regression" / "log.txt").read_text(encoding="utf-8")
    [(chunks, months, _, workers)] = _ran_on_cluster(regression_log, "regression", address)
    assert chunks > 1 and months == 12 and workers == 2
    tracking_log = (run / "tracking" / "log.txt").read_text(encoding="utf-8")
    _ran_on_cluster(tracking_log, "tracking prediction", address)
    work = run_dir / "work" / "carbon_biomes"
    for product in ("regression/SYNTH-ESM-A_monthly_rcs.nc", "detection/SYNTH-ESM-A_biomes.nc",
                    "tracking/SYNTH-ESM-A_tracked_biomes.nc"):  # fmt: skip
        assert (work / product).is_file(), product
