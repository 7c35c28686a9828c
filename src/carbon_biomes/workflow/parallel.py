"""Per-month work on a Dask distributed cluster, when ESMValCore runs one (serial otherwise).

When ESMValCore's ``dask`` configuration selects a profile with a ``cluster`` (for example
``distributed.LocalCluster`` or ``dask_jobqueue.SLURMCluster``) or a ``scheduler_address``, it
writes that scheduler's address into the ``settings.yml`` of every Python diagnostic as
``scheduler_address``. :func:`month_pool` connects a :class:`distributed.Client` to it for the
duration of a script; :meth:`MonthPool.mapper` then gives the science core a ``map`` that runs
chunks of consecutive months as tasks on the cluster and hands the results back in the order of
the months, so that the products are the same numbers as those of a serial run. Without a
``scheduler_address`` (the default) the mapper is ``None`` and the core runs its serial loop,
unchanged.

Only the mapped work goes to the cluster: the client is not made the default scheduler, so the
reading of the preprocessed files (dask arrays of iris cubes) stays in the script's process.

Oversubscription: every task of a cluster worker runs with one BLAS/OpenMP thread and one
TensorFlow intra-op and inter-op thread (the cluster's parallelism is the workers' threads);
a worker plugin sets the environment (``OMP_NUM_THREADS``, ``OPENBLAS_NUM_THREADS``,
``MKL_NUM_THREADS``, ``TF_NUM_INTRAOP_THREADS``, ``TF_NUM_INTEROP_THREADS``) and the limits of
the loaded BLAS libraries (threadpoolctl) when a worker starts, and each task applies them again
(TensorFlow's own threading once it is imported).
"""

from __future__ import annotations

import collections
import contextlib
import logging
import math
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

__all__ = ["THREAD_VARIABLES", "MonthPool", "limit_threads", "month_pool"]

logger = logging.getLogger(__name__)

#: Environment variables that bound the threads of BLAS, OpenMP and TensorFlow in a worker.
THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "TF_NUM_INTRAOP_THREADS",
    "TF_NUM_INTEROP_THREADS",
)
#: TensorFlow settings of the script's process (``setdefault``, as the classifier does).
TENSORFLOW_VARIABLES = {"TF_CPP_MIN_LOG_LEVEL": "2", "TF_ENABLE_ONEDNN_OPTS": "0"}
#: Most months in one task (one year).
MAX_CHUNK_MONTHS = 12

#: Name of the worker plugin that limits the threads.
PLUGIN_NAME = "carbon-biomes-thread-limits"

_LIMITS: dict[str, Any] = {}


def limit_threads(threads: int = 1) -> None:
    """Bound BLAS, OpenMP and TensorFlow to ``threads`` threads in this process (idempotent).

    Environment variables are set for libraries loaded later; BLAS libraries already loaded are
    limited through threadpoolctl (when installed); TensorFlow's thread pools are set when it is
    imported and not yet initialized (once initialized, the environment variables set before
    its import have done the work).
    """
    for name in THREAD_VARIABLES:
        os.environ[name] = str(threads)
    # as carbon_biomes.core.classifier sets them before it imports TensorFlow, for a worker that
    # imports it first (unpickling a classifier): the same kernels as in the script's process
    for name, value in TENSORFLOW_VARIABLES.items():
        os.environ.setdefault(name, value)
    if _LIMITS.get("blas") != threads:
        with contextlib.suppress(ImportError):
            from threadpoolctl import threadpool_limits

            threadpool_limits(limits=threads)  # stays in force (not used as a context)
        _LIMITS["blas"] = threads
    if "tensorflow" in sys.modules and _LIMITS.get("tensorflow") != threads:
        tf = sys.modules["tensorflow"]
        with contextlib.suppress(RuntimeError, AttributeError):  # runtime already initialized
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(threads)
        _LIMITS["tensorflow"] = threads


def _thread_limits_plugin(threads: int) -> Any:
    """A worker plugin that runs :func:`limit_threads` when a worker starts.

    Built on demand, so that this module imports without ``distributed``; a worker that joins
    later (an adaptive or job-queue cluster) runs it too.
    """
    from distributed import WorkerPlugin

    class ThreadLimits(WorkerPlugin):
        name = PLUGIN_NAME

        def __init__(self, threads: int) -> None:
            self.threads = threads

        def setup(self, worker: Any) -> None:
            limit_threads(self.threads)

    return ThreadLimits(threads)


def _run_chunk(
    function: Callable[..., Any], items: list[Any], args: tuple[Any, ...], threads: int
) -> list[Any]:
    """One task: ``function(item, *args)`` for the items of a chunk, in order."""
    limit_threads(threads)
    return [function(item, *args) for item in items]


def _chunks(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    chunk: list[Any] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


class MonthPool:
    """Where per-month work runs: on a Dask cluster (``client``) or in this process (``None``).

    Parameters
    ----------
    client
        A connected :class:`distributed.Client`, or None for the serial path.
    threads_per_task
        BLAS/OpenMP/TensorFlow threads of each task on the cluster.
    """

    def __init__(self, client: Any | None = None, threads_per_task: int = 1) -> None:
        self.client = client
        self.threads_per_task = threads_per_task

    @property
    def distributed(self) -> bool:
        """True when the work runs on a cluster."""
        return self.client is not None

    @property
    def address(self) -> str | None:
        """The scheduler's address (None when serial)."""
        return None if self.client is None else self.client.scheduler.address

    def n_workers(self) -> int:
        """Workers connected to the scheduler now (0 when serial)."""
        if self.client is None:
            return 0
        return len(self.client.scheduler_info().get("workers", {}))

    def mapper(
        self, stage: str, dataset: str, n_items: int | None = None
    ) -> Callable[..., Iterator[Any]] | None:
        """A ``map(function, items, *args)`` over the cluster, or None for the serial path.

        Parameters
        ----------
        stage
            Name of the work in the log lines (e.g. ``regression``).
        dataset
            Dataset alias in the log lines.
        n_items
            Number of items (months) expected, to size the chunks.
        """
        if self.client is None:
            return None

        def mapped(function: Callable[..., Any], items: Iterable[Any], *args: Any) -> Iterator[Any]:
            return self.map(function, items, *args, stage=stage, dataset=dataset,
                            n_items=n_items)  # fmt: skip

        return mapped

    def chunk_size(self, n_items: int | None) -> int:
        """Months per task: about two tasks per worker, at most :data:`MAX_CHUNK_MONTHS`."""
        workers = max(self.n_workers(), 1)
        if not n_items:
            return max(1, MAX_CHUNK_MONTHS // 2)
        return max(1, min(MAX_CHUNK_MONTHS, math.ceil(n_items / (2 * workers))))

    def map(
        self,
        function: Callable[..., Any],
        items: Iterable[Any],
        *args: Any,
        stage: str = "work",
        dataset: str = "",
        n_items: int | None = None,
    ) -> Iterator[Any]:
        """``function(item, *args)`` for every item, in the items' order.

        Serial: a plain loop. On the cluster: the shared ``args`` are scattered to every worker
        once, the items are sent in chunks of consecutive items (one task each, at most two per
        worker in flight, so that a stream of months is never all in memory), and the results
        are yielded in order as their chunks finish.
        """
        if self.client is None:
            for item in items:
                yield function(item, *args)
            return
        client = self.client
        workers = self.n_workers()
        if workers == 0:
            logger.warning("%s %s: no Dask worker is connected yet to %s; the tasks wait for one",
                           stage, dataset, self.address)  # fmt: skip
        size = self.chunk_size(n_items)
        in_flight = max(2 * workers, 2)
        shared = tuple(client.scatter(arg, broadcast=True, hash=False) for arg in args)
        pending: collections.deque = collections.deque()
        n_chunks = n_done = 0
        start = time.perf_counter()
        for chunk in _chunks(items, size):
            pending.append(client.submit(_run_chunk, function, chunk, shared,
                                         self.threads_per_task, pure=False))  # fmt: skip
            n_chunks += 1
            while len(pending) >= in_flight:
                results = pending.popleft().result()
                n_done += len(results)
                yield from results
        while pending:
            results = pending.popleft().result()
            n_done += len(results)
            if not pending:  # logged before the last results: a consumer may stop at them
                logger.info(
                    "%s of %s: %d chunks (%d months, up to %d per chunk) ran on the Dask cluster "
                    "at %s with %d workers (%.1f s)",
                    stage, dataset, n_chunks, n_done, size, self.address, workers,
                    time.perf_counter() - start,
                )  # fmt: skip
            yield from results


@contextlib.contextmanager
def month_pool(cfg: dict[str, Any], threads_per_task: int = 1) -> Iterator[MonthPool]:
    """A :class:`MonthPool` on the cluster at ``cfg["scheduler_address"]``, or a serial one.

    The client is connected for the duration of the ``with`` block and closed after it; the
    cluster itself belongs to ESMValCore (or whoever started it) and stays up.
    """
    address = cfg.get("scheduler_address")
    if not address:
        yield MonthPool(None)
        return
    from distributed import Client

    client = Client(address, set_as_default=False)
    try:
        client.register_plugin(_thread_limits_plugin(threads_per_task), name=PLUGIN_NAME)
        pool = MonthPool(client, threads_per_task)
        logger.info("Connected to the Dask cluster at %s (%d workers): per-month work runs "
                    "there, %d thread(s) per task", pool.address, pool.n_workers(),
                    threads_per_task)  # fmt: skip
        yield pool
    finally:
        client.close()
