"""Hyper-parameter search: spaces (LogUniform, Uniform, IntUniform, Choice), random, grid and
coarse-to-fine search, run through joblib (local worker processes or any backend the user opens).

Local:   results = coarse_to_fine(objective, space, stages=[(20, 1), (8, 4)], n_jobs=2)
Cluster: with joblib.parallel_backend("dask"):   # after distributed.Client(...)
             results = coarse_to_fine(objective, space, stages=[(20, 1), (8, 4)])
"""
from __future__ import annotations

import csv
import inspect
import itertools
import math
import os
import sys
import time
import warnings
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from ._checks import number, positive_int, rng_or_default

__all__ = ["Dimension", "LogUniform", "Uniform", "IntUniform", "Choice", "Results",
           "random_search", "grid_search", "coarse_to_fine", "narrow_space"]

Objective = Callable[..., float]
Space = Mapping[str, "Dimension"]

# Narrowed ranges are widened by this fraction of the kept trials' span on each side, so the
# next stage can still move a little past the best values it has seen.
_WIDEN = 0.1


# -- search spaces ---------------------------------------------------------------------------
class Dimension:
    """One hyper-parameter's range. `sample(rng)` draws a value; `narrow(values, within)`
    returns the range around `values` (the best trials' values), clipped to `within`."""

    log: bool = False

    def sample(self, rng: np.random.Generator) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must define sample(rng) (abstract in the base space)")

    def narrow(self, values: Sequence[Any], within: Optional["Dimension"] = None) -> "Dimension":
        raise NotImplementedError(f"{type(self).__name__} must define narrow(values, within) (abstract in the base space)")


def _bound(v: Any, name: str) -> float:
    f = number(v, name)
    if not math.isfinite(f):
        raise ValueError(f"{name}: expected a finite number, got {v!r}")
    return f


class _Range(Dimension):
    """A numeric interval [lo, hi], sampled uniformly in `_fwd` space (identity or log)."""

    def __init__(self, lo: float, hi: float) -> None:
        self.lo, self.hi = _bound(lo, "lo"), _bound(hi, "hi")
        if self.lo >= self.hi:
            raise ValueError(f"hi: expected a value > lo = {self.lo!r}, got hi = {self.hi!r}")

    def _fwd(self, x: Any) -> Any:
        return np.log(x) if self.log else np.asarray(x, float)

    def _inv(self, y: Any) -> Any:
        return np.exp(y) if self.log else y

    def sample(self, rng: np.random.Generator) -> float:
        y = rng.uniform(self._fwd(self.lo), self._fwd(self.hi))
        return float(min(max(self._inv(y), self.lo), self.hi))  # exp(log(x)) may round past x

    def narrow(self, values: Sequence[Any], within: Optional[Dimension] = None) -> "_Range":
        """[min, max] of `values` widened by 10% of its span on each side (in log space for a
        log scale; 10% of the current range when all values are equal), clipped to `within`
        (default: this range)."""
        outer = self if within is None else within
        if not isinstance(outer, _Range):
            raise TypeError(f"within: expected a numeric range, got {type(outer).__name__}")
        v = np.asarray([float(x) for x in values], float)
        v = v[np.isfinite(v)]
        if self.log:
            v = v[v > 0]
        if v.size == 0:
            return self
        y = self._fwd(v)
        a, b = float(y.min()), float(y.max())
        pad = _WIDEN * (b - a) if b > a else _WIDEN * float(self._fwd(self.hi) - self._fwd(self.lo))
        lo = max(outer.lo, float(self._inv(a - pad)))
        hi = min(outer.hi, float(self._inv(b + pad)))
        if not lo < hi:  # a range collapsed by round-off: keep a sliver around the value
            lo, hi = max(outer.lo, lo - 1e-12 * max(1.0, abs(lo))), min(outer.hi, hi + 1e-12 * max(1.0, abs(hi)))
        return type(self)(lo, hi)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.lo:.6g}, {self.hi:.6g})"

    def __eq__(self, other: Any) -> bool:
        return type(other) is type(self) and (self.lo, self.hi) == (other.lo, other.hi)

    def __hash__(self) -> int:
        return hash((type(self).__name__, self.lo, self.hi))


class Uniform(_Range):
    """Uniform on [lo, hi] (lo < hi)."""


class LogUniform(_Range):
    """Log-uniform on [lo, hi] (0 < lo < hi): log(value) is uniform, so each decade gets the
    same share of the trials — the scale for learning rates and weight decays."""

    log = True

    def __init__(self, lo: float, hi: float) -> None:
        super().__init__(lo, hi)
        if self.lo <= 0:
            raise ValueError(f"lo: expected a value > 0 for a log scale, got {self.lo!r}")


class IntUniform(_Range):
    """Integers lo..hi, both ends included (lo < hi). `log=True` draws uniformly in log space
    (0 < lo), e.g. for layer widths or batch sizes."""

    lo: int
    hi: int

    def __init__(self, lo: int, hi: int, log: bool = False) -> None:
        for name, v in (("lo", lo), ("hi", hi)):
            if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
                raise TypeError(f"{name}: expected an int, got {type(v).__name__} {v!r}")
        super().__init__(int(lo), int(hi))
        self.lo, self.hi = int(lo), int(hi)
        self.log = bool(log)
        if self.log and self.lo <= 0:
            raise ValueError(f"lo: expected a value > 0 for a log scale, got {self.lo!r}")

    def sample(self, rng: np.random.Generator) -> int:
        if not self.log:
            return int(rng.integers(self.lo, self.hi, endpoint=True))
        # log-uniform over [lo, hi + 1) then floor, so every integer in lo..hi can occur
        y = rng.uniform(math.log(self.lo), math.log(self.hi + 1))
        return int(min(max(math.floor(math.exp(y)), self.lo), self.hi))

    def narrow(self, values: Sequence[Any], within: Optional[Dimension] = None) -> "IntUniform":
        """As the real ranges, rounded outwards to integers and at least two values wide,
        clipped to `within`."""
        outer = self if within is None else within
        if not isinstance(outer, _Range):
            raise TypeError(f"within: expected a numeric range, got {type(outer).__name__}")
        real = LogUniform if self.log else Uniform
        r = real(self.lo, self.hi).narrow(values, real(outer.lo, outer.hi))
        olo, ohi = math.ceil(outer.lo), math.floor(outer.hi)  # the integers within `within`
        lo, hi = max(int(math.floor(r.lo + 1e-9)), olo), min(int(math.ceil(r.hi - 1e-9)), ohi)
        if lo >= hi:  # one kept integer: reopen one step inside the outer range
            lo, hi = (lo, lo + 1) if lo < ohi else (hi - 1, hi)
        return IntUniform(lo, hi, self.log)

    def __repr__(self) -> str:
        return f"IntUniform({self.lo}, {self.hi}{', log=True' if self.log else ''})"


class Choice(Dimension):
    """One of `options` (a non-empty list), each equally likely."""

    def __init__(self, options: Sequence[Any]) -> None:
        if isinstance(options, (str, bytes)) or not isinstance(options, (list, tuple, range, np.ndarray)):
            raise TypeError(f"options: expected a list of values, got {type(options).__name__}")
        self.options = [o.item() if isinstance(o, np.generic) else o for o in options]
        if not self.options:
            raise ValueError("options: expected a non-empty list of values, got an empty one")

    def sample(self, rng: np.random.Generator) -> Any:
        return self.options[int(rng.integers(len(self.options)))]

    def narrow(self, values: Sequence[Any], within: Optional[Dimension] = None) -> "Choice":
        """The options that occur among `values`, in their original order."""
        kept = [o for o in self.options if any(_same(o, v) for v in values)]
        return Choice(kept) if kept else self

    def __repr__(self) -> str:
        return f"Choice({self.options!r})"

    def __eq__(self, other: Any) -> bool:
        return isinstance(other, Choice) and self.options == other.options

    __hash__ = None  # type: ignore[assignment]


def _same(a: Any, b: Any) -> bool:
    try:
        return bool(a == b)
    except Exception:
        return a is b


def _check_space(space: Any, name: str = "space") -> Dict[str, Dimension]:
    if not isinstance(space, Mapping) or not space:
        raise ValueError(f"{name}: expected a non-empty dict name -> LogUniform/Uniform/IntUniform/Choice, "
                         f"got {space!r}")
    for k, d in space.items():
        if not isinstance(k, str):
            raise TypeError(f"{name}: keys must be hyper-parameter names (str), got {k!r}")
        if not isinstance(d, Dimension):
            raise TypeError(f"{name}[{k!r}]: expected LogUniform, Uniform, IntUniform or Choice, "
                            f"got {type(d).__name__} {d!r}")
    return dict(space)


def _check_mode(mode: Any) -> str:
    if mode not in ("min", "max"):
        raise ValueError(f"mode: expected 'min' or 'max', got {mode!r}")
    return mode


def _check_n_jobs(n_jobs: Any) -> int:
    if isinstance(n_jobs, (bool, np.bool_)) or not isinstance(n_jobs, (int, np.integer)):
        raise TypeError(f"n_jobs: expected an int (1, 2, ..., or -1 for all cores), got {type(n_jobs).__name__} {n_jobs!r}")
    if n_jobs == 0:
        raise ValueError("n_jobs: expected an int != 0 (1, 2, ..., or -1 for all cores), got 0")
    return int(n_jobs)


def _check_threads(threads_per_trial: Any) -> Optional[int]:
    return None if threads_per_trial is None else positive_int(threads_per_trial, "threads_per_trial")


def _check_objective(objective: Any) -> None:
    if not callable(objective):
        raise TypeError(f"objective: expected a callable objective(config, budget) -> float, "
                        f"got {type(objective).__name__}")


# -- results ---------------------------------------------------------------------------------
class Results(list):
    """The trials of a search, in order: a list of records {"config", "score", "status"
    ("ok" | "failed"), "error", "seconds", "stage", "trial", "budget", "seed"}.

    `best` is the best "ok" record (by `mode`), `interrupted` is True when Ctrl-C stopped the
    search early, `spaces` lists the space each stage sampled from (coarse_to_fine narrows it).
    """

    def __init__(self, records: Iterable[Dict[str, Any]] = (), mode: str = "max",
                 space: Optional[Mapping[str, Any]] = None) -> None:
        super().__init__(records)
        self.mode = _check_mode(mode)
        self.space: Dict[str, Any] = dict(space or {})
        self.spaces: List[Dict[str, Any]] = []
        self.interrupted = False

    @property
    def ok(self) -> List[Dict[str, Any]]:
        """The records whose status is "ok"."""
        return [r for r in self if r["status"] == "ok"]

    @property
    def failed(self) -> List[Dict[str, Any]]:
        """The records whose status is "failed"."""
        return [r for r in self if r["status"] != "ok"]

    @property
    def best(self) -> Optional[Dict[str, Any]]:
        """The best successful record (highest score, lowest for mode "min"); None if none."""
        ok = self.ok
        if not ok:
            return None
        pick = max if self.mode == "max" else min
        return pick(ok, key=lambda r: r["score"])

    def sorted(self) -> List[Dict[str, Any]]:
        """Successful records best first, then the failed ones."""
        return sorted(self.ok, key=lambda r: r["score"], reverse=self.mode == "max") + self.failed

    def _names(self) -> List[str]:
        names = list(self.space)
        for r in self:
            names += [k for k in r["config"] if k not in names]
        return names

    def table(self, sort: bool = False, max_rows: Optional[int] = None) -> str:
        """The trials as a text table (in trial order, or best first with sort=True)."""
        names = self._names()
        rows = self.sorted() if sort else list(self)
        if max_rows is not None:
            rows = rows[:max_rows]
        best = self.best
        head = ["stage", "trial", "budget"] + names + ["score", "status", "seconds"]
        body = []
        for r in rows:
            cells = [str(r.get("stage", "")), str(r.get("trial", "")), _fmt(r.get("budget"))]
            cells += [_fmt(r["config"].get(n)) for n in names]
            cells += [_fmt(r["score"]) + (" *" if r is best else ""),
                      r["status"] if r["status"] == "ok" else f"failed: {_short(r['error'])}",
                      f"{r['seconds']:.2f}"]
            body.append(cells)
        widths = [max(len(h), *(len(c[i]) for c in body)) if body else len(h) for i, h in enumerate(head)]
        lines = ["  ".join(h.rjust(w) for h, w in zip(head, widths))]
        lines += ["  ".join(c.rjust(w) if i < len(head) - 2 else c.ljust(w) if i == len(head) - 2 else c.rjust(w)
                            for i, (c, w) in enumerate(zip(cells, widths))) for cells in body]
        return "\n".join(lines)

    def to_csv(self, path: str) -> None:
        """Write one row per trial: stage, trial, budget, seed, status, score, seconds, one
        column per hyper-parameter, error."""
        names = self._names()
        with open(path, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["stage", "trial", "budget", "seed", "status", "score", "seconds"] + names + ["error"])
            for r in self:
                w.writerow([r.get("stage"), r.get("trial"), _csv(r.get("budget")), r.get("seed"),
                            r["status"], _csv(r["score"]), _csv(r["seconds"])]
                           + [_csv(r["config"].get(n)) for n in names] + [r["error"] or ""])

    def plot(self, path: Optional[str] = None) -> Any:
        """Score against each hyper-parameter, one panel each (log x-axis for log scales),
        colored by stage; failed trials as crosses along the bottom, the best as a star.
        Saves a PNG when `path` is given; returns the matplotlib Figure (`plot` extra)."""
        from ._plot import pyplot
        plt = pyplot()
        names = self._names()
        if not names:
            raise ValueError("Results.plot: there are no trials to plot")
        ncol = min(3, len(names))
        nrow = (len(names) + ncol - 1) // ncol
        fig, axes = plt.subplots(nrow, ncol, figsize=(5 * ncol, 3.8 * nrow), squeeze=False)
        ok = self.ok
        scores = [r["score"] for r in ok]
        floor = min(scores) if scores else 0.0
        stages = sorted({r.get("stage", 0) for r in self})
        cmap = plt.get_cmap("viridis")
        best = self.best
        for ax, name in zip(axes.flat, names):
            dim = self.space.get(name)
            vals = [r["config"].get(name) for r in self]
            numeric = all(isinstance(v, (int, float, np.number)) and not isinstance(v, bool) for v in vals)
            cats: List[Any] = []
            if not numeric:
                for v in (dim.options if isinstance(dim, Choice) else []) + vals:
                    if not any(_same(v, c) for c in cats):
                        cats.append(v)

            def xpos(v: Any) -> float:
                return float(v) if numeric else float(next(i for i, c in enumerate(cats) if _same(v, c)))

            for k, s in enumerate(stages):
                pts = [(xpos(r["config"][name]), r["score"]) for r in ok if r.get("stage", 0) == s]
                if pts:
                    x, y = zip(*pts)
                    ax.scatter(x, y, s=22, color=cmap(k / max(1, len(stages) - 1)) if len(stages) > 1 else "C0",
                               label=f"stage {s}" if len(stages) > 1 else None, alpha=0.85)
            bad = [xpos(r["config"][name]) for r in self.failed]
            if bad:
                ax.scatter(bad, [floor] * len(bad), marker="x", color="red", label="failed")
            if best is not None:
                ax.scatter([xpos(best["config"][name])], [best["score"]], marker="*", s=180,
                           color="orange", edgecolor="k", zorder=5, label="best")
            if numeric and _log_axis(dim, vals):
                ax.set_xscale("log")
            if not numeric:
                ax.set_xticks(range(len(cats)))
                ax.set_xlim(-0.5, len(cats) - 0.5)
                ax.set_xticklabels([str(c) for c in cats])
            ax.set_xlabel(name)
            ax.set_ylabel("score")
            ax.grid(alpha=0.3)
        for ax in list(axes.flat)[len(names):]:
            ax.set_visible(False)
        handles, labels = axes.flat[0].get_legend_handles_labels()
        if labels:
            axes.flat[0].legend(fontsize=8)
        fig.suptitle(f"{len(self)} trials ({len(self.failed)} failed), mode {self.mode}")
        fig.tight_layout()
        if path is not None:
            fig.savefig(path, dpi=100)
            plt.close(fig)
        return fig


def _log_axis(dim: Any, vals: Sequence[Any]) -> bool:
    if dim is not None and getattr(dim, "log", False):
        return True
    if isinstance(dim, (Uniform, IntUniform)):
        return False
    v = np.asarray([float(x) for x in vals], float)
    # a grid such as [1e-3, 1e-2, 1e-1]: positive and spanning two decades or more
    return v.size > 0 and bool(np.all(v > 0)) and v.max() / v.min() >= 100


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, (float, np.floating)):
        return f"{v:.4g}"
    return str(v)


def _csv(v: Any) -> Any:
    if v is None:
        return ""
    if isinstance(v, (float, np.floating)):
        return repr(float(v))
    return v


def _short(msg: Optional[str], n: int = 60) -> str:
    msg = (msg or "").splitlines()[0] if msg else ""
    return msg if len(msg) <= n else msg[:n - 3] + "..."


# -- running trials --------------------------------------------------------------------------
def _accepts_seed(objective: Callable[..., Any]) -> bool:
    try:
        params = inspect.signature(objective).parameters
    except (TypeError, ValueError):
        return False
    return "seed" in params or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


def _run_trial(objective: Objective, config: Dict[str, Any], budget: Any, seed: int,
               threads: Any, pass_seed: bool) -> Dict[str, Any]:
    """Run one trial (in a worker, or in-process) -> {"score", "status", "error", "seconds"}.
    Sets the trial's thread budget (`threads`: an int, a _ThreadShare worked out here, on the
    machine the trial runs on, or None to leave it), then seeds fastnn's global generator
    with the trial's seed; an exception or a non-finite score makes the trial "failed".
    A trial on a thread of the caller's own process (threading backend) touches neither:
    they belong to the caller and to the trials beside it (it still gets `seed=`)."""
    import fastnn
    shared = isinstance(threads, _ThreadShare) and threads.in_caller()
    if isinstance(threads, _ThreadShare):
        threads = threads.threads()
    if threads is not None:
        fastnn.set_num_threads(threads)
    if not shared:
        fastnn.seed(int(seed))
    t0 = time.perf_counter()
    score, status, error = float("nan"), "ok", None
    try:
        out = objective(config, budget, seed=int(seed)) if pass_seed else objective(config, budget)
        try:
            score = float(out)
        except (TypeError, ValueError):
            raise TypeError(f"objective returned {type(out).__name__} {out!r}, expected a number") from None
        if not math.isfinite(score):
            status, error = "failed", f"objective returned {score} (diverged)"
    except Exception as e:  # the search goes on; KeyboardInterrupt is not an Exception
        status, error = "failed", f"{type(e).__name__}: {e}"
    return {"score": score, "status": status, "error": error, "seconds": time.perf_counter() - t0}


class _ThreadShare:
    """A trial's thread budget, worked out in the worker: the cores of the machine it runs on
    // the number of trials running at once on that machine (`per_host`, by worker host, for
    a Dask cluster; else `concurrency`). Trials in the caller's own process (threads, or a
    cluster of threads) get None: they must not change the caller's thread count."""

    def __init__(self, concurrency: int, per_host: Optional[Mapping[str, int]] = None,
                 fixed: Optional[int] = None) -> None:
        self.concurrency = max(1, int(concurrency))
        self.per_host = dict(per_host or {})
        self.fixed = fixed  # threads_per_trial, when the caller gave one
        self.caller_pid = os.getpid()

    def in_caller(self) -> bool:
        return os.getpid() == self.caller_pid

    def threads(self) -> Optional[int]:
        if self.in_caller():
            return None
        if self.fixed is not None:
            return self.fixed
        n = self.per_host.get(_dask_worker_host() or "", self.concurrency) if self.per_host else self.concurrency
        return max(1, _cores() // max(1, n))

    def __repr__(self) -> str:
        return f"_ThreadShare({self.concurrency}, {self.per_host}, fixed={self.fixed})"


def _host(address: str) -> str:
    """'tcp://10.0.0.5:40123' -> '10.0.0.5' (a Dask worker address without scheme and port)."""
    return address.split("://", 1)[-1].rsplit(":", 1)[0]


def _dask_worker_host() -> Optional[str]:
    dist = sys.modules.get("distributed")
    if dist is None:
        return None
    try:
        return _host(dist.get_worker().address)
    except Exception:  # not running inside a Dask worker
        return None


def _dask_per_host(backend: Any) -> Dict[str, int]:
    """Worker threads per host of the Dask cluster behind a joblib backend ({} otherwise)."""
    client = getattr(backend, "client", None)
    if client is None or not hasattr(client, "ncores"):
        return {}
    try:
        per: Dict[str, int] = {}
        for addr, n in client.ncores().items():
            per[_host(addr)] = per.get(_host(addr), 0) + int(n)
        return per
    except Exception:
        return {}


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def _user_backend_active() -> bool:
    """True when the caller opened a joblib backend context (parallel_backend/parallel_config)
    that names a backend; then trials go through it as is."""
    joblib = sys.modules.get("joblib")
    if joblib is None:  # nobody imported joblib, so no context can be open
        return False
    par = joblib.parallel
    cfg = getattr(par._backend, "config", None)
    if cfg is not None and hasattr(par, "default_parallel_config"):  # joblib >= 1.3
        return cfg.get("backend") is not par.default_parallel_config["backend"]
    return getattr(par._backend, "backend_and_jobs", None) is not None  # older joblib


def _run_tasks(objective: Objective, tasks: List[Tuple[Dict[str, Any], Any, int]], n_jobs: int,
               threads_per_trial: Optional[int]) -> Tuple[List[Dict[str, Any]], bool]:
    """Run tasks (config, budget, seed) -> (outcomes in task order, interrupted). Outcomes of
    tasks that never ran are missing from the list when interrupted."""
    pass_seed = _accepts_seed(objective)
    outcomes: List[Dict[str, Any]] = []
    if n_jobs == 1 and not _user_backend_active():
        import fastnn
        from . import _random
        saved = _random._global  # the trial seeds must not consume the caller's generator
        saved_threads = fastnn.get_num_threads()
        try:
            for config, budget, seed in tasks:
                outcomes.append(_run_trial(objective, config, budget, seed, threads_per_trial, pass_seed))
        except KeyboardInterrupt:
            return outcomes, True
        finally:
            _random._global = saved
            if threads_per_trial is not None:
                fastnn.set_num_threads(saved_threads)
        return outcomes, False

    try:
        import joblib
    except ImportError:
        raise ImportError("n_jobs != 1 needs joblib: pip install joblib") from None
    if _user_backend_active():
        # The context decides where trials run (Dask, Ray, ...); n_jobs=1 means "as the
        # context says" rather than forcing a sequential run.
        nj: Optional[int] = None if n_jobs == 1 else n_jobs
        backend: Optional[str] = None
    else:
        nj, backend = n_jobs, "loky"  # fork-safe: a plain fork after OpenMP ran deadlocks
    n_eff = max(1, int(joblib.effective_n_jobs(nj)))  # the open context's backend, else loky
    active = joblib.parallel.get_active_backend()[0] if backend is None else None
    # worked out in each worker; None (leave the count alone) in the caller's own process
    threads = _ThreadShare(n_eff, _dask_per_host(active), threads_per_trial)
    while len(outcomes) < len(tasks):
        par = joblib.Parallel(n_jobs=nj, backend=backend, batch_size=1, return_as="generator")
        gen = par(joblib.delayed(_run_trial)(objective, c, b, s, threads, pass_seed)
                  for c, b, s in tasks[len(outcomes):])
        try:
            for out in gen:
                outcomes.append(out)
        except KeyboardInterrupt:
            _close(gen)
            return outcomes, True
        except Exception as e:
            _close(gen)
            msg = f"{type(e).__name__}: {e}"
            if type(e).__name__ in _WORKER_DIED:
                # The first unfinished trial was in flight (perhaps the one that killed its
                # worker): record it failed and go on with the rest on a fresh pool.
                warnings.warn(f"search: a worker died during trial {len(outcomes)}; it is recorded "
                              f"as failed and the search goes on ({type(e).__name__})",
                              RuntimeWarning, stacklevel=3)
                outcomes.append(_failed(f"worker died while this trial ran: {msg}"))
                continue
            # the objective could not be shipped, or the backend broke: nothing more can run
            warnings.warn(f"search: the remaining {len(tasks) - len(outcomes)} trials failed: {msg}",
                          RuntimeWarning, stacklevel=3)
            outcomes += [_failed(msg) for _ in range(len(tasks) - len(outcomes))]
    return outcomes, False


# Exceptions (by class name, to stay independent of joblib/loky/dask versions) that mean a
# worker process died mid-trial, e.g. a segfault or the OOM killer.
_WORKER_DIED = {"TerminatedWorkerError", "BrokenProcessPool", "KilledWorker"}


def _failed(msg: str) -> Dict[str, Any]:
    return {"score": float("nan"), "status": "failed", "error": msg, "seconds": 0.0}


def _close(gen: Any) -> None:
    try:
        gen.close()
    except BaseException:
        pass


def _trial_seeds(rng: np.random.Generator, n: int) -> List[int]:
    return [int(s) for s in rng.integers(0, 2**31 - 1, size=n)]


def _run_stage(results: Results, objective: Objective, configs: List[Dict[str, Any]], budget: Any,
               seeds: List[int], stage: int, n_jobs: int, threads_per_trial: Optional[int]) -> bool:
    """Run one stage's configs and append their records; returns True when interrupted."""
    outcomes, interrupted = _run_tasks(objective, [(c, budget, s) for c, s in zip(configs, seeds)],
                                       n_jobs, threads_per_trial)
    start = len(results)
    for i, (c, s, o) in enumerate(zip(configs, seeds, outcomes)):
        results.append({"config": c, "score": o["score"], "status": o["status"], "error": o["error"],
                        "seconds": o["seconds"], "stage": stage, "trial": start + i,
                        "budget": budget, "seed": s})
    if interrupted:
        results.interrupted = True
    return interrupted


def _sample(space: Mapping[str, Dimension], rng: np.random.Generator) -> Dict[str, Any]:
    return {k: d.sample(rng) for k, d in space.items()}


# -- the searches ----------------------------------------------------------------------------
def random_search(objective: Objective, space: Space, n_trials: int, n_jobs: int = 1,
                  rng: Any = None, mode: str = "max", *, budget: Any = None,
                  threads_per_trial: Optional[int] = None) -> Results:
    """`n_trials` configurations drawn from `space` (dict name -> Dimension), each scored by
    `objective(config, budget)` (also given `seed=` when it accepts one). Higher is better
    unless mode="min". `rng`: Generator, int seed or None (fastnn's global generator); the
    same seed gives the same configs and per-trial seeds; each trial runs with fastnn seeded
    by its own seed. n_jobs != 1 runs trials in joblib worker processes (loky); an open joblib
    backend context (Dask, Ray, threading) is used as is. In a worker process every trial
    first sets fastnn.set_num_threads(threads_per_trial, default: that machine's cores // the
    trials running at once on it: n_jobs, or a Dask host's worker threads). A trial that
    raises or returns a non-finite score is recorded "failed" with its error; Ctrl-C returns
    the trials finished so far (`interrupted` True). Returns Results."""
    _check_objective(objective)
    space = _check_space(space)
    n_trials = positive_int(n_trials, "n_trials")
    n_jobs, mode = _check_n_jobs(n_jobs), _check_mode(mode)
    threads_per_trial = _check_threads(threads_per_trial)
    gen = rng_or_default(rng)
    configs = [_sample(space, gen) for _ in range(n_trials)]
    seeds = _trial_seeds(gen, n_trials)
    results = Results(mode=mode, space=space)
    results.spaces.append(dict(space))
    _run_stage(results, objective, configs, budget, seeds, 0, n_jobs, threads_per_trial)
    return results


def grid_search(objective: Objective, grid: Mapping[str, Sequence[Any]], n_jobs: int = 1,
                mode: str = "max", rng: Any = None, *, budget: Any = None,
                threads_per_trial: Optional[int] = None) -> Results:
    """Every combination of `grid` (dict name -> list of values), in row-major order (the
    last name varies fastest). Execution, seeds and results as random_search."""
    _check_objective(objective)
    if not isinstance(grid, Mapping) or not grid:
        raise ValueError(f"grid: expected a non-empty dict name -> list of values, got {grid!r}")
    values: Dict[str, List[Any]] = {}
    for k, v in grid.items():
        if isinstance(v, (str, bytes)) or not isinstance(v, (list, tuple, range, np.ndarray)):
            raise TypeError(f"grid[{k!r}]: expected a list of values, got {type(v).__name__}")
        if len(v) == 0:
            raise ValueError(f"grid[{k!r}]: expected a non-empty list of values, got an empty one")
        values[k] = [x.item() if isinstance(x, np.generic) else x for x in v]
    n_jobs, mode = _check_n_jobs(n_jobs), _check_mode(mode)
    threads_per_trial = _check_threads(threads_per_trial)
    configs = [dict(zip(values, combo)) for combo in itertools.product(*values.values())]
    seeds = _trial_seeds(rng_or_default(rng), len(configs))
    results = Results(mode=mode, space={k: Choice(v) for k, v in values.items()})
    results.spaces.append(dict(results.space))
    _run_stage(results, objective, configs, budget, seeds, 0, n_jobs, threads_per_trial)
    return results


def narrow_space(space: Space, records: Sequence[Dict[str, Any]], keep: float, mode: str,
                 within: Optional[Space] = None) -> Dict[str, Dimension]:
    """The space around the best `keep` fraction (at least one) of the "ok" `records`: every
    dimension narrowed to its kept values (see Dimension.narrow), clipped to `within`."""
    ok = [r for r in records if r["status"] == "ok"]
    if not ok:
        return dict(space)
    ok.sort(key=lambda r: r["score"], reverse=mode == "max")
    kept = ok[:max(1, int(math.ceil(keep * len(ok))))]
    within = within or space
    return {k: d.narrow([r["config"][k] for r in kept], within.get(k)) for k, d in space.items()}


def coarse_to_fine(objective: Objective, space: Space, stages: Sequence[Tuple[int, Any]] = ((20, 1), (10, 3)),
                   keep: float = 0.2, n_jobs: int = 1, rng: Any = None, mode: str = "max", *,
                   threads_per_trial: Optional[int] = None) -> Results:
    """Coarse-to-fine search: stage s draws `n_trials` configs from the current space and
    scores each with `objective(config, budget)` (e.g. budget = epochs: a few short runs over
    the wide range first, longer runs later); then every numeric range is narrowed to the
    best `keep` fraction of that stage's trials (their [min, max], widened 10%, in log space
    for LogUniform, clipped to the original range) and Choices to the options they used.
    `results.spaces[s]` is the space stage s sampled from. Execution as random_search."""
    _check_objective(objective)
    space = _check_space(space)
    if isinstance(stages, (str, bytes)) or not isinstance(stages, (list, tuple)) or not stages:
        raise ValueError(f"stages: expected a non-empty list of (n_trials, budget) pairs, got {stages!r}")
    plan = []
    for i, st in enumerate(stages):
        if not isinstance(st, (list, tuple)) or len(st) != 2:
            raise ValueError(f"stages[{i}]: expected an (n_trials, budget) pair, got {st!r}")
        plan.append((positive_int(st[0], f"stages[{i}] n_trials"), st[1]))
    keep = number(keep, "keep", lo=0.0, hi=1.0, lo_open=True)
    n_jobs, mode = _check_n_jobs(n_jobs), _check_mode(mode)
    threads_per_trial = _check_threads(threads_per_trial)
    gen = rng_or_default(rng)
    results = Results(mode=mode, space=space)
    current = dict(space)
    for s, (n, budget) in enumerate(plan):
        results.spaces.append(current)
        configs = [_sample(current, gen) for _ in range(n)]
        seeds = _trial_seeds(gen, n)
        if _run_stage(results, objective, configs, budget, seeds, s, n_jobs, threads_per_trial):
            break
        stage_records = [r for r in results if r["stage"] == s]
        if s + 1 < len(plan):
            if not any(r["status"] == "ok" for r in stage_records):
                warnings.warn(f"coarse_to_fine: every trial of stage {s} failed; the next stage "
                              "keeps the same space", RuntimeWarning, stacklevel=2)
            current = narrow_space(current, stage_records, keep, mode, within=space)
    return results

