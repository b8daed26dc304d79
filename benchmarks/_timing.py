"""Shared by the benchmark scripts (import it before NumPy): pins NumPy's and PyTorch's BLAS
to one thread, because their busy-waiting threads would steal the cores being timed (fastnn
and PyTorch set their own OpenMP thread counts), and times a callable."""
from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import time  # noqa: E402
from typing import Callable, Tuple  # noqa: E402

import numpy as np  # noqa: E402


def time_fn(fn: Callable[[], object], repeats: int, warmup: int = 2) -> Tuple[float, float]:
    """(median, best) wall time of fn() in seconds over `repeats` calls after `warmup`."""
    for _ in range(warmup):
        fn()
    times = np.empty(repeats)
    for i in range(repeats):
        t0 = time.perf_counter()
        fn()
        times[i] = time.perf_counter() - t0
    return float(np.median(times)), float(times.min())
