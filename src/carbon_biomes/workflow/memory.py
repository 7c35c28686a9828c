"""Resident memory of scripts that stream decades of months.

glibc carves freed large arrays back into its heap (its mmap threshold rises each time a mapped
block is freed, up to 32 MiB), so that after the first months the per-month arrays of a
high-resolution field (8 MB per variable at 0.25°) come from the heap; freed, they leave holes
that later allocations of other sizes only partly reuse, and the resident memory of a stream
creeps up by tens of MiB a year although no array outlives its month. Trimming the heap once
per month gives the free pages back (``benchmarks/RESULTS.md``: flat at 0.25° over 10 years).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from typing import Any


@functools.cache
def _malloc_trim() -> Any:
    """Glibc's ``malloc_trim``, or ``None`` where the C library has none (macOS, musl)."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        return ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):
        return None


def release_free_memory() -> bool:
    """Return the free pages of the C heap to the system (between two months of a stream).

    Returns
    -------
    bool
        Whether any memory was released (False also where the C library cannot trim).
    """
    trim = _malloc_trim()
    return bool(trim(0)) if trim is not None else False
