"""Module-level objectives for the search tests (importable by joblib/Dask worker processes)."""
from __future__ import annotations

import math
import os

import numpy as np


def log_peak(config, budget):
    """Maximum 0 at lr = 1e-3; the budget adds a constant so stages are comparable."""
    return -(math.log10(config["lr"]) + 3.0) ** 2


def deterministic(config, budget, seed=None):
    """A score that depends on the config, the budget and the trial seed (and uses fastnn's
    kernels), so a parallel run must reproduce it exactly."""
    import fastnn
    x = np.random.default_rng(seed).standard_normal((7, 5)).astype(np.float32)
    w = np.full((3, 5), config["lr"], np.float32)
    y = fastnn.functional.linear(x, w)
    return float(y.sum()) + config.get("units", 0) * 1e-3 + (budget or 0)


def worker_threads(config, budget):
    """The worker's fastnn thread count (the search sets a budget of cores // n_jobs)."""
    import fastnn
    return float(fastnn.get_num_threads())


def worker_pid(config, budget):
    """The id of the process that ran the trial."""
    return float(os.getpid())


def sometimes_fails(config, budget):
    if config["lr"] > 1e-2:
        raise RuntimeError(f"diverged at lr={config['lr']:.3g}")
    if config["lr"] < 1e-5:
        return float("nan")
    return config["lr"]


class InterruptAt:
    """Raises KeyboardInterrupt on the k-th call (1-based), as Ctrl-C would mid-search."""

    def __init__(self, k):
        self.k, self.calls = k, 0

    def __call__(self, config, budget):
        self.calls += 1
        if self.calls == self.k:
            raise KeyboardInterrupt
        return config["lr"]


class RecordBudget:
    def __init__(self):
        self.budgets = []

    def __call__(self, config, budget):
        self.budgets.append(budget)
        return -abs(math.log10(config["lr"]) + 3.0)


def slow(config, budget):
    """Half a second per trial; appends a line to $SEARCH_TRIAL_LOG when done (if set), so a
    test can tell that trials have finished before it interrupts the search."""
    import time
    time.sleep(0.5)
    log = os.environ.get("SEARCH_TRIAL_LOG")
    if log:
        with open(log, "a") as f:
            f.write("done\n")
    return config["lr"]


def crash_at_3(config, budget):
    """Kills its worker process when units == 3 (as a segfault in a kernel would)."""
    if config["units"] == 3:
        os._exit(3)
    return float(config["units"])


def grab_threads(config, budget):
    """The thread count the trial starts with; then it changes it, as a careless objective
    might, so a later trial in the same worker shows whether the search re-applied its budget."""
    import fastnn
    n = fastnn.get_num_threads()
    fastnn.set_num_threads(n + 3)
    return float(n)
