"""One optimizer step over 10,000,000 float32 parameters for every fused optimizer: median ms,
GB/s moved (bytes read + written per element), and the ratio to torch.optim (fused=True where
PyTorch has it: SGD, Adagrad, Adam, AdamW; foreach otherwise) when PyTorch is installed.

    PYTHONPATH=python python benchmarks/bench_optim.py [--quick] [--n N] [--repeats R] [--threads T]

Each optimizer is first validated against a small float64 NumPy computation written out below
(this file ships in the wheel without the tests). fastnn and torch steps are timed alternately,
so both see the same machine load; the load average is printed. Never asserts on speed.
"""
from __future__ import annotations

import os

from _timing import import_torch, stream_add_gbs  # noqa: E402  (first: pins the BLAS threads before NumPy loads)

import argparse
import math
import statistics
import sys
import time
from typing import Any, Callable, Dict, List, Optional

import numpy as np

import fastnn
from fastnn import optim
from fastnn.module import Parameter

RMW_BANDWIDTH = 68.0   # GB/s, read-modify-write streams on the reference machine (BUILD-NOTES)

# label, fastnn class, hyper-parameters, bytes per element (reads + writes), torch switches,
# target ("fused": at least as fast as torch fused; "5x": 5x torch foreach; None: bandwidth only)
CASES = [
    ("SGD", "SGD", dict(lr=0.01), 12, dict(fused=True), None),
    ("SGD momentum", "SGD", dict(lr=0.01, momentum=0.9), 20, dict(fused=True), "fused"),
    ("Adagrad", "Adagrad", dict(lr=0.01), 20, dict(fused=True), "fused"),
    ("RMSprop", "RMSprop", dict(lr=0.01), 20, dict(foreach=True), "5x"),
    ("RMSprop centered+mom", "RMSprop", dict(lr=0.01, centered=True, momentum=0.9), 36,
     dict(foreach=True), "5x"),
    ("Adadelta", "Adadelta", dict(lr=1.0), 28, dict(foreach=True), "5x"),
    ("Adam", "Adam", dict(lr=1e-3), 28, dict(fused=True), "fused"),
    ("Adam amsgrad", "Adam", dict(lr=1e-3, amsgrad=True), 36, dict(fused=True), "fused"),
    ("AdamW", "AdamW", dict(lr=1e-3), 28, dict(fused=True), "fused"),
    ("Adamax", "Adamax", dict(lr=2e-3), 28, dict(foreach=True), "5x"),
    ("NAdam", "NAdam", dict(lr=2e-3), 28, dict(foreach=True), "5x"),
    ("AdaptiveGains", "AdaptiveGains", dict(lr=0.01), 28, None, None),
]


# -- validation: PyTorch's update rules in float64 NumPy, for the options used above ---------
def _numpy_step(cls: str, h: Dict[str, Any], p: np.ndarray, g: np.ndarray, st: Dict[str, Any],
                t: int) -> None:
    """One step (t = 1, 2, ...) of `cls` with hyper-parameters h on float64 p, in place."""
    z = lambda: np.zeros_like(p)   # noqa: E731
    lr, eps = h["lr"], h.get("eps", 1e-8)
    b1, b2 = h.get("betas", (0.9, 0.999))
    if cls == "SGD":
        mom = h.get("momentum", 0.0)
        if mom:
            st["b"] = g.copy() if "b" not in st else mom * st["b"] + g
            g = st["b"]
        p -= lr * g
    elif cls == "Adagrad":
        st["s"] = st.get("s", z()) + g * g
        p -= lr * g / (np.sqrt(st["s"]) + h.get("eps", 1e-10))
    elif cls == "RMSprop":
        a, mom = h.get("alpha", 0.99), h.get("momentum", 0.0)
        st["v"] = a * st.get("v", z()) + (1 - a) * g * g
        v = st["v"]
        if h.get("centered"):
            st["m"] = a * st.get("m", z()) + (1 - a) * g
            v = v - st["m"] ** 2
        step = g / (np.sqrt(v) + eps)
        if mom:
            st["b"] = mom * st.get("b", z()) + step
            step = st["b"]
        p -= lr * step
    elif cls == "Adadelta":
        rho, eps = h.get("rho", 0.9), h.get("eps", 1e-6)
        st["v"] = rho * st.get("v", z()) + (1 - rho) * g * g
        u = st.get("u", z())
        delta = np.sqrt(u + eps) / np.sqrt(st["v"] + eps) * g
        st["u"] = rho * u + (1 - rho) * delta * delta
        p -= lr * delta
    elif cls in ("Adam", "AdamW"):
        if cls == "AdamW":
            p *= 1 - lr * h.get("weight_decay", 1e-2)
        st["m"] = b1 * st.get("m", z()) + (1 - b1) * g
        st["v"] = b2 * st.get("v", z()) + (1 - b2) * g * g
        v = st["v"]
        if h.get("amsgrad"):
            st["vmax"] = v = np.maximum(st.get("vmax", z()), v)
        p -= lr / (1 - b1 ** t) * st["m"] / (np.sqrt(v) / math.sqrt(1 - b2 ** t) + eps)
    elif cls == "Adamax":
        st["m"] = b1 * st.get("m", z()) + (1 - b1) * g
        st["u"] = np.maximum(b2 * st.get("u", z()), np.abs(g) + eps)
        p -= lr / (1 - b1 ** t) * st["m"] / st["u"]
    elif cls == "NAdam":
        md = h.get("momentum_decay", 4e-3)
        mu = b1 * (1 - 0.5 * 0.96 ** (t * md))
        mu_next = b1 * (1 - 0.5 * 0.96 ** ((t + 1) * md))
        st["mu_product"] = st.get("mu_product", 1.0) * mu
        st["m"] = b1 * st.get("m", z()) + (1 - b1) * g
        st["v"] = b2 * st.get("v", z()) + (1 - b2) * g * g
        denom = np.sqrt(st["v"] / (1 - b2 ** t)) + eps
        p -= lr * (1 - mu) / (1 - st["mu_product"]) * g / denom
        p -= lr * mu_next / (1 - st["mu_product"] * mu_next) * st["m"] / denom
    elif cls == "AdaptiveGains":
        s = g * st.get("q", z())
        k = st.get("k", np.ones_like(p))
        k = np.where(s > 0, k + h.get("increase", 0.05), np.where(s < 0, k * h.get("decrease", 0.95), k))
        st["k"] = np.clip(k, h.get("min_gain", 0.01), h.get("max_gain", 100.0))
        st["q"] = g.copy()
        p -= lr * st["k"] * g
    else:
        raise ValueError(f"no NumPy check for {cls}")


def validate(label: str, cls: str, hyper: Dict[str, Any], n: int = 10_007, steps: int = 5) -> float:
    """Max deviation (relative to |p| + 1) of the fused kernel from the float64 NumPy steps."""
    rng = np.random.default_rng(0)
    p = Parameter(rng.standard_normal(n))
    rp = p.data.astype(np.float64)
    opt = getattr(optim, cls)([p], **hyper)
    st: Dict[str, Any] = {}
    for t in range(1, steps + 1):
        g = rng.standard_normal(n).astype(np.float32)
        p.grad = g
        opt.step()
        _numpy_step(cls, hyper, rp, g.astype(np.float64), st, t)
    err = float(np.max(np.abs(p.data - rp) / (np.abs(rp) + 1.0)))
    if not err < 1e-5:
        raise SystemExit(f"{label}: the fused kernel disagrees with NumPy (max rel err {err:.2e})")
    return err


# -- timing -----------------------------------------------------------------------------------
def time_alternately(steps: List[Optional[Callable[[], Any]]], repeats: int) -> List[List[float]]:
    """Seconds per call of each step function, timed in turn (a, b, a, b, ...) after two
    warm-up calls each (the first step allocates the state)."""
    live = [s for s in steps if s is not None]
    for fn in live:
        fn()
        fn()
    times: List[List[float]] = [[] for _ in steps]
    for _ in range(repeats):
        for i, s in enumerate(steps):
            if s is None:
                continue
            t0 = time.perf_counter()
            s()
            times[i].append(time.perf_counter() - t0)
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="1M parameters, 5 repeats")
    ap.add_argument("--n", type=int, default=None, help="number of parameters (default 10M)")
    ap.add_argument("--repeats", type=int, default=None, help="timed steps per optimizer (default 21)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--chunks", type=int, default=1,
                    help="split the parameters into this many Parameters (one group)")
    ap.add_argument("--only", default=None, help="comma-separated substrings of the labels to run")
    args = ap.parse_args()
    n = args.n or (1_000_000 if args.quick else 10_000_000)
    repeats = args.repeats or (5 if args.quick else 21)
    fastnn.set_num_threads(args.threads)
    torch = import_torch(args.threads)
    load0 = os.getloadavg()[0]
    print(f"fastnn {fastnn.build_info()['isa_level']}, {fastnn.get_num_threads()} threads; "
          f"n = {n:,} float32 parameters in {args.chunks} Parameter(s); median of {repeats}; "
          f"load average {load0:.1f} on {os.cpu_count()} cpus")
    if torch is not None:
        print(f"torch {torch.__version__}, {torch.get_num_threads()} threads (timed alternately)")
    hdr = (f"{'optimizer':22s} {'ms':>8s} {'min ms':>7s} {'GB/s':>6s} {'%RMW':>5s} {'BW':>5s} "
           f"{'%BW':>5s} {'torch ms':>9s} "
           f"{'path':>7s} {'speed-up':>8s}  target")
    print(hdr)
    print("-" * len(hdr))
    rng = np.random.default_rng(1)
    sizes = [n // args.chunks + (1 if i < n % args.chunks else 0) for i in range(args.chunks)]
    init = [rng.standard_normal(s).astype(np.float32) for s in sizes]
    grads = [(rng.standard_normal(s) * 0.1).astype(np.float32) for s in sizes]
    only = [o.strip().lower() for o in args.only.split(",")] if args.only else None
    for label, cls, hyper, nbytes, tswitch, target in CASES:
        if only and not any(o in label.lower() for o in only):
            continue
        validate(label, cls, hyper)
        params = [Parameter(x) for x in init]
        for p, g in zip(params, grads):
            p.grad = g
        opt = getattr(optim, cls)(params, **hyper)
        tstep, path = None, "-"
        if torch is not None and tswitch is not None:
            tparams = [torch.from_numpy(x.copy()).requires_grad_() for x in init]
            for tp, g in zip(tparams, grads):
                tp.grad = torch.from_numpy(g.copy())
            topt = getattr(torch.optim, cls)(tparams, **hyper, **tswitch)
            path = next(iter(tswitch))

            def tstep(topt=topt):
                with torch.no_grad():
                    topt.step()
        bw = stream_add_gbs(args.threads, repeats=5 if args.quick else 11)
        ours, theirs = time_alternately([opt.step, tstep], repeats)
        ms, ms_min = statistics.median(ours) * 1e3, min(ours) * 1e3
        gbs = nbytes * n / (ms * 1e-3) / 1e9
        tms_s, ratio_s, verdict = "-", "-", ""
        ok_bw = gbs >= 0.8 * RMW_BANDWIDTH
        if theirs:
            tms = statistics.median(theirs) * 1e3
            ratio = tms / ms
            tms_s, ratio_s = f"{tms:9.2f}", f"{ratio:7.2f}x"
            if target == "fused":
                verdict = ">=1x fused " + ("ok" if ratio >= 1.0 else "SHORT")
            elif target == "5x":
                verdict = ">=5x foreach " + ("ok" if ratio >= 5.0 else "SHORT")
        verdict += ("; " if verdict else "") + f">=80% RMW {'ok' if ok_bw else 'SHORT'}"
        print(f"{label:22s} {ms:8.2f} {ms_min:7.2f} {gbs:6.1f} {100 * gbs / RMW_BANDWIDTH:4.0f}% "
              f"{bw:5.1f} {100 * gbs / bw:4.0f}% "
              f"{tms_s:>9s} {path:>7s} {ratio_s:>8s}  {verdict}")
        sys.stdout.flush()
        del opt, params, tstep
    print(f"(GB/s: bytes read + written per element / median time; %RMW relative to "
          f"{RMW_BANDWIDTH:.0f} GB/s; BW the memory bandwidth measured just before (STREAM Add "
          f"by NumPy, {args.threads} threads, 64 MiB arrays) and %BW relative to it; speed-up = torch median / fastnn median; load average "
          f"{load0:.1f} -> {os.getloadavg()[0]:.1f}: other processes slow both sides)")


if __name__ == "__main__":
    main()
