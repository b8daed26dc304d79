"""conv2d benchmark: forward and backward (dx, dw, db) medians and GFLOP/s on the issue's nine
shapes (float32, NCHW), with the speed ratio to torch.nn.functional.conv2d and to its autograd
backward when PyTorch is installed. Results are validated against float64 NumPy first.

GFLOP/s counts forward 2·N·Cout·Ho·Wo·Cin·k² and backward twice that. fastnn and PyTorch are
timed in interleaved rounds (each round: fastnn fwd, torch fwd, fastnn bwd, torch bwd), so a
burst of load from other processes hits both alike; the table gives medians over the rounds.

    PYTHONPATH=python python benchmarks/bench_conv.py [--quick] [--threads N] [--only NAME ...]
"""
from __future__ import annotations

import os

from _timing import import_torch  # noqa: E402  (first: pins the BLAS threads before NumPy loads)

import argparse
import math
import statistics
import time
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np

import fastnn
import fastnn.functional as F

# name: (N, Cin, H, W, Cout, k, stride, pad), as in the issue.
SHAPES: Dict[str, Tuple[int, ...]] = {
    "mnist_c1": (64, 1, 28, 28, 32, 3, 1, 1),
    "mnist_c2": (64, 32, 14, 14, 64, 3, 1, 1),
    "lenet_c2": (64, 6, 14, 14, 16, 5, 1, 0),
    "cifar_c1": (64, 3, 32, 32, 64, 3, 1, 1),
    "cifar_c2": (64, 64, 32, 32, 64, 3, 1, 1),
    "cifar_c3": (64, 128, 16, 16, 128, 3, 1, 1),
    "cifar_c4": (64, 256, 8, 8, 256, 3, 1, 1),
    "cifar_s2": (64, 64, 32, 32, 128, 3, 2, 1),
    "cifar_1x1": (64, 128, 16, 16, 256, 1, 1, 0),
}


def reference(x: np.ndarray, w: np.ndarray, b: np.ndarray, dy: np.ndarray, stride: int,
              pad: int) -> Tuple[np.ndarray, ...]:
    """float64 conv2d forward and (dx, dw, db) by shifted-window sums (groups = 1)."""
    x, w, dy = x.astype(np.float64), w.astype(np.float64), dy.astype(np.float64)
    k, (ho, wo) = w.shape[2], dy.shape[2:]
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    dxp = np.zeros_like(xp)
    y = np.zeros(dy.shape) + b[None, :, None, None]
    dw = np.zeros_like(w)
    for i in range(k):
        for j in range(k):
            hs = slice(i, i + stride * (ho - 1) + 1, stride)
            ws = slice(j, j + stride * (wo - 1) + 1, stride)
            win = xp[:, :, hs, ws]
            y += np.einsum("nchw,oc->nohw", win, w[:, :, i, j], optimize=True)
            dw[:, :, i, j] = np.einsum("nohw,nchw->oc", dy, win, optimize=True)
            dxp[:, :, hs, ws] += np.einsum("nohw,oc->nchw", dy, w[:, :, i, j], optimize=True)
    dx = dxp[:, :, pad:pad + x.shape[2], pad:pad + x.shape[3]]
    return y, dx, dw, dy.sum(axis=(0, 2, 3))


def validate(name: str, x, w, b, dy, stride: int, pad: int) -> None:
    """fastnn on the first 3 samples (every code path of the shape but the sample blocking)
    and the full-batch forward of those samples, against float64 NumPy."""
    xs, dys = x[:3], dy[:3]
    ref = reference(xs, w, b, dys, stride, pad)
    got = (F.conv2d(xs, w, b, stride, pad),) + tuple(F.conv2d_backward(dys, xs, w, stride, pad))
    got_full = F.conv2d(x, w, b, stride, pad)[:3]
    dx_full = F.conv2d_backward(dy, x, w, stride, pad)[0][:3]
    for what, a, r in zip(("y", "dx", "dw", "db", "y(full)", "dx(full)"), got + (got_full, dx_full),
                          ref + (ref[0], ref[1])):
        err = float(np.abs(a - r).max() / max(1.0, np.abs(r).max()))
        if not err < 1e-4:
            raise SystemExit(f"{name}: validation failed, {what} max rel error {err:.2e}")


def timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def torch_fns(torch, x, w, b, dy, stride: int, pad: int):
    """(forward, backward) callables; backward times autograd's dx, dw, db only."""
    tx = torch.tensor(x, requires_grad=True)
    tw = torch.tensor(w, requires_grad=True)
    tb = torch.tensor(b, requires_grad=True)
    tdy = torch.tensor(dy)
    TF = torch.nn.functional
    state = {}

    def fwd():
        with torch.no_grad():
            return TF.conv2d(tx, tw, tb, stride, pad)

    def prepare():
        tx.grad = tw.grad = tb.grad = None
        state["y"] = TF.conv2d(tx, tw, tb, stride, pad)

    def bwd():
        state["y"].backward(tdy)

    # Same numbers as fastnn (guards against timing two different computations).
    prepare(); bwd()
    return fwd, prepare, bwd, (tx, tw, tb)


def geomean(v: List[float]) -> float:
    return math.exp(sum(math.log(a) for a in v) / len(v))


def main(argv: Optional[List[str]] = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer rounds")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=None, help="timing rounds (default 15, quick 4)")
    ap.add_argument("--only", nargs="*", default=None, help=f"shape names ({', '.join(SHAPES)})")
    ap.add_argument("--no-torch", action="store_true", help="skip the PyTorch comparison")
    args = ap.parse_args(argv)
    fastnn.set_num_threads(args.threads)
    torch = None if args.no_torch else import_torch(args.threads)
    rounds = args.rounds or (4 if args.quick else 15)
    names = args.only or list(SHAPES)
    for n in names:
        if n not in SHAPES:
            raise SystemExit(f"--only: unknown shape {n!r}; expected some of {list(SHAPES)}")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"conv2d float32 NCHW, {args.threads} threads, kernels {fastnn.build_info()['isa_level']}, "
          f"median of {rounds} rounds, load average {load:.1f} at start"
          + ("" if torch else (", no PyTorch comparison" if args.no_torch else ", PyTorch not installed")))
    head = f"{'shape':<10} {'N,Cin,H,W,Cout,k,s,p':<22} {'fwd ms':>7} {'GF/s':>6} {'bwd ms':>7} {'GF/s':>6}"
    if torch:
        head += f" {'tfwd ms':>8} {'tbwd ms':>8} {'fwd x':>6} {'bwd x':>6} {'f+b x':>6}"
    print(head)
    ratios: List[float] = []
    rng = np.random.default_rng(0)
    for name in names:
        n, cin, h, wd, cout, k, s, p = SHAPES[name]
        x = rng.standard_normal((n, cin, h, wd)).astype(np.float32)
        w = (rng.standard_normal((cout, cin, k, k)) / math.sqrt(cin * k * k)).astype(np.float32)
        b = rng.standard_normal(cout).astype(np.float32)
        ho, wo = (h + 2 * p - k) // s + 1, (wd + 2 * p - k) // s + 1
        dy = rng.standard_normal((n, cout, ho, wo)).astype(np.float32)
        validate(name, x, w, b, dy, s, p)
        flops = 2.0 * n * cout * ho * wo * cin * k * k
        fn_f = lambda: F.conv2d(x, w, b, s, p)
        fn_b = lambda: F.conv2d_backward(dy, x, w, s, p)
        fn_f(); fn_b()  # warm-up: grows the workspaces
        tf: List[float] = []
        tb: List[float] = []
        qf: List[float] = []
        qb: List[float] = []
        if torch:
            t_f, t_prep, t_b, (tx, tw, tb_) = torch_fns(torch, x, w, b, dy, s, p)
            dx, dw, db = fn_b()
            for what, a, r in (("y", fn_f(), t_f().numpy()), ("dx", dx, tx.grad.numpy()),
                               ("dw", dw, tw.grad.numpy()), ("db", db, tb_.grad.numpy())):
                err = float(np.abs(a - r).max() / max(1.0, np.abs(r).max()))
                if not err < 1e-3:
                    raise SystemExit(f"{name}: fastnn and torch disagree on {what} ({err:.2e})")
            t_f()
        for _ in range(rounds):
            tf.append(timed(fn_f))
            if torch:
                qf.append(timed(t_f))
            tb.append(timed(fn_b))
            if torch:
                t_prep()
                qb.append(timed(t_b))
        mf, mb = statistics.median(tf) * 1e3, statistics.median(tb) * 1e3
        geo = f"{n},{cin},{h},{wd},{cout},{k},{s},{p}"
        line = (f"{name:<10} {geo:<22} {mf:7.2f} {flops / mf / 1e6:6.0f} {mb:7.2f} "
                f"{2 * flops / mb / 1e6:6.0f}")
        if torch:
            tqf, tqb = statistics.median(qf) * 1e3, statistics.median(qb) * 1e3
            r = (tqf + tqb) / (mf + mb)
            ratios.append(r)
            line += f" {tqf:8.2f} {tqb:8.2f} {tqf / mf:6.2f} {tqb / mb:6.2f} {r:6.2f}"
        print(line, flush=True)
    if ratios:
        print(f"geometric mean of the fwd+bwd speed ratio to PyTorch: {geomean(ratios):.2f} "
              f"(min {min(ratios):.2f}); load average now {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
