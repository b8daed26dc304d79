"""Shared by the benchmark scripts (import it before NumPy): pins NumPy's and PyTorch's BLAS
to one thread, because their busy-waiting threads would steal the cores being timed (fastnn
and PyTorch set their own OpenMP thread counts), and times a callable."""
from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import time  # noqa: E402
from typing import Any, Callable, Dict, Optional, Tuple  # noqa: E402

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


_STREAM_ARRAYS: Dict[int, Tuple[np.ndarray, np.ndarray, np.ndarray]] = {}


def stream_add_gbs(threads: int, mib: int = 64, repeats: int = 15) -> float:
    """The memory bandwidth available right now, in GB/s: STREAM's Add (c = a + b, float32
    arrays of `mib` MiB each, far larger than the caches) done by NumPy in `threads` Python
    threads, each on its own slice (NumPy releases the GIL in the loop), counted as STREAM
    counts it: 12 bytes per element (two reads and one write; the write-allocate read of c is
    not counted). Median of `repeats` runs after one warm-up. An independent yardstick for
    the kernels' GB/s: the host's bandwidth varies by 1.5x or more from hour to hour."""
    from concurrent.futures import ThreadPoolExecutor
    n = (mib << 20) // 4
    if mib not in _STREAM_ARRAYS:  # made once: the benchmarks measure before every case
        _STREAM_ARRAYS[mib] = (np.ones(n, np.float32), np.full(n, 2.0, np.float32),
                               np.zeros(n, np.float32))
    a, b, c = _STREAM_ARRAYS[mib]
    parts = [slice(i * n // threads, (i + 1) * n // threads) for i in range(threads)]
    with ThreadPoolExecutor(threads) as pool:
        def run() -> None:
            for f in [pool.submit(np.add, a[s], b[s], out=c[s]) for s in parts]:
                f.result()
        median, _ = time_fn(run, repeats, warmup=1)
    return 12 * n / median / 1e9


def import_torch(threads: int) -> Optional[Any]:
    """PyTorch with its own OpenMP pool set to `threads` (as fastnn's), or None when it is
    not installed (the benchmarks then print fastnn's figures alone)."""
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(threads)
    return torch
