"""One optimizer step over 10,000,000 float32 parameters for every fused optimizer:
median ms, GB/s moved (bytes read + written per element) and the ratio to torch.optim
(fused=True where PyTorch has it: SGD, Adam, AdamW, Adagrad; foreach otherwise).

    PYTHONPATH=python python benchmarks/bench_optim.py [--quick] [--n N] [--repeats R]

Each optimizer is validated against the float64 reference (tests/reference/optim.py) on a
small problem before it is timed. Never asserts on speed.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

import fastnn
from fastnn import optim
from fastnn.module import Parameter

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from reference import optim as ref  # noqa: E402

RMW_BANDWIDTH = 68.0   # GB/s, read-modify-write streams on this machine (BUILD-NOTES)

# name, fastnn class, hyper-parameters, bytes per element (reads + writes), torch switches
CASES = [
    ("SGD", "SGD", dict(lr=0.01), 12, dict(fused=True)),
    ("SGD momentum", "SGD", dict(lr=0.01, momentum=0.9), 20, dict(fused=True)),
    ("Adagrad", "Adagrad", dict(lr=0.01), 20, dict(fused=True)),
    ("RMSprop", "RMSprop", dict(lr=0.01), 20, dict(foreach=True)),
    ("RMSprop centered+mom", "RMSprop", dict(lr=0.01, centered=True, momentum=0.9), 36, dict(foreach=True)),
    ("Adadelta", "Adadelta", dict(lr=1.0), 28, dict(foreach=True)),
    ("Adam", "Adam", dict(lr=1e-3), 28, dict(fused=True)),
    ("Adam amsgrad", "Adam", dict(lr=1e-3, amsgrad=True), 36, dict(fused=True)),
    ("AdamW", "AdamW", dict(lr=1e-3), 28, dict(fused=True)),
    ("Adamax", "Adamax", dict(lr=2e-3), 28, dict(foreach=True)),
    ("NAdam", "NAdam", dict(lr=2e-3), 28, dict(foreach=True)),
    ("AdaptiveGains", "AdaptiveGains", dict(lr=0.01), 28, None),
]


def validate(cls: str, hyper: dict) -> float:
    """Max relative deviation from the float64 reference after 5 steps on 10,007 elements."""
    rng = np.random.default_rng(0)
    p = Parameter(rng.standard_normal(10_007))
    rp = p.data.astype(np.float64)
    opt = getattr(optim, cls)([p], **hyper)
    st: dict = {}
    for _ in range(5):
        g = rng.standard_normal(10_007).astype(np.float32)
        p.grad = g
        opt.step()
        ref.STEPS[cls](rp, g.astype(np.float64), st, **hyper)
    err = float(np.max(np.abs(p.data - rp) / (np.abs(rp) + 1e-3)))
    if err > 1e-3:
        raise SystemExit(f"{cls} {hyper}: kernel disagrees with the reference (max rel err {err:.2e})")
    return err


def time_step(step, repeats: int) -> float:
    step()   # first step allocates the state
    step()
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        step()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="1M parameters, 5 repeats")
    ap.add_argument("--n", type=int, default=None, help="number of parameters (default 10M)")
    ap.add_argument("--repeats", type=int, default=None)
    ap.add_argument("--chunks", type=int, default=1, help="split the parameters into this many Parameters (one group)")
    ap.add_argument("--only", default=None, help="comma-separated substrings of the optimizer labels to run")
    args = ap.parse_args()
    n = args.n or (1_000_000 if args.quick else 10_000_000)
    repeats = args.repeats or (5 if args.quick else 20)
    try:
        import torch
        torch.set_num_threads(fastnn.get_num_threads())
    except ImportError:
        torch = None
    print(f"fastnn {fastnn.build_info()['isa_level']}, {fastnn.get_num_threads()} threads; "
          f"n = {n:,} float32 parameters in {args.chunks} Parameter(s); median of {repeats}")
    if torch is not None:
        print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    hdr = f"{'optimizer':22s} {'ms':>8s} {'GB/s':>7s} {'%RMW':>5s} {'torch ms':>9s} {'torch path':>10s} {'speed-up':>8s}"
    print(hdr)
    print("-" * len(hdr))
    rng = np.random.default_rng(1)
    sizes = [n // args.chunks + (1 if i < n % args.chunks else 0) for i in range(args.chunks)]
    init = [rng.standard_normal(s).astype(np.float32) for s in sizes]
    grads = [(rng.standard_normal(s) * 0.1).astype(np.float32) for s in sizes]
    only = [o.strip().lower() for o in args.only.split(",")] if args.only else None
    for label, cls, hyper, nbytes, tswitch in CASES:
        if only and not any(o in label.lower() for o in only):
            continue
        validate(cls, hyper)
        params = [Parameter(x) for x in init]
        for p, g in zip(params, grads):
            p.grad = g
        opt = getattr(optim, cls)(params, **hyper)
        ms = time_step(opt.step, repeats) * 1e3
        gbs = nbytes * n / (ms * 1e-3) / 1e9
        del opt, params
        tms_s, path, ratio = "-", "-", "-"
        if torch is not None and tswitch is not None:
            tparams = [torch.from_numpy(x.copy()).requires_grad_() for x in init]
            for tp, g in zip(tparams, grads):
                tp.grad = torch.from_numpy(g.copy())
            try:
                topt = getattr(torch.optim, cls)(tparams, **hyper, **tswitch)
                path = next(iter(tswitch))
            except (TypeError, RuntimeError, ValueError):
                topt = getattr(torch.optim, cls)(tparams, **hyper, foreach=True)
                path = "foreach"
            with torch.no_grad():
                tms = time_step(topt.step, repeats) * 1e3
            tms_s, ratio = f"{tms:9.2f}", f"{tms / ms:7.2f}x"
            del topt, tparams
        print(f"{label:22s} {ms:8.2f} {gbs:7.1f} {100 * gbs / RMW_BANDWIDTH:4.0f}% {tms_s:>9s} {path:>10s} {ratio:>8s}")
        sys.stdout.flush()
    print("(GB/s counts bytes read + written per element; %RMW is relative to "
          f"{RMW_BANDWIDTH:.0f} GB/s; speed-up = torch ms / fastnn ms)")


if __name__ == "__main__":
    main()
