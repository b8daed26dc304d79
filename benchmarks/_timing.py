"""Shared by the benchmark scripts (import it before NumPy): pins NumPy's and PyTorch's BLAS
to one thread, because their busy-waiting threads would steal the cores being timed (fastnn
and PyTorch set their own OpenMP thread counts), and times a callable."""
from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import time  # noqa: E402
from typing import Callable, Dict, Tuple  # noqa: E402

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


def time_interleaved(fns: Dict[str, Callable[[], object]], rounds: int,
                     warmup: int = 2) -> Dict[str, Tuple[float, float]]:
    """{name: (median, best)} wall time in seconds of one call of each fn, the fns called in
    turn in every round, so that a change in the machine's load (other tenants of the host)
    hits all of them alike and their ratios stay meaningful."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times = {name: np.empty(rounds) for name in fns}
    for i in range(rounds):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[name][i] = time.perf_counter() - t0
    return {name: (float(np.median(t)), float(t.min())) for name, t in times.items()}
