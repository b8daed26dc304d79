"""Batch-norm benchmark: training forward and backward medians, GB/s, ratio to PyTorch.

GB/s counts the compulsory traffic: forward reads x and writes y (8 bytes per element),
backward reads dy and x and writes dx (12 bytes per element). The eval-mode forward (one pass,
y = x*scale + shift) is timed in the same rounds: its GB/s is what one read + write pass over
this tensor gets from the memory system at that moment, the ceiling for the training passes
(which read x, or dy and x, twice). "BW" is the machine's memory bandwidth measured right
before each shape's rounds (STREAM Add by NumPy on 64 MiB arrays, the same number of threads;
see _timing.stream_add_gbs), and "% BW" the forward+backward GB/s as a percentage of it: the
host's bandwidth moves by 1.5x or more from hour to hour, so a fixed figure is no yardstick.
Results are validated against a float64 NumPy computation before anything is timed. fastnn's
and PyTorch's forward and backward are called in turn in every round (interleaved), so a change
in the machine's load hits both alike; the ratios compare medians.

    PYTHONPATH=python python benchmarks/bench_batchnorm.py [--quick] [--threads N] [--more]
        [--shapes 64x64x7x7,256x1024]
"""
from __future__ import annotations

import os

from _timing import import_torch, stream_add_gbs, time_interleaved  # noqa: E402  (first: pins the BLAS threads before NumPy loads)

import argparse
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np

import fastnn
from fastnn import functional as F

SHAPES = [(64, 64, 32, 32), (64, 256, 8, 8), (256, 1024)]
# --more: shapes of small CNNs (14x14 to 4x4 maps) and a wide (N, C) input
MORE_SHAPES = [(64, 32, 14, 14), (128, 64, 8, 8), (64, 64, 7, 7), (64, 128, 4, 4), (128, 4096)]


def parse_shapes(text: str) -> List[Tuple[int, ...]]:
    """'64x64x7x7,256x1024' -> [(64, 64, 7, 7), (256, 1024)] (2 to 4 positive sizes each)."""
    shapes = []
    for item in text.split(","):
        try:
            shape = tuple(int(v) for v in item.strip().lower().split("x"))
        except ValueError:
            shape = ()
        ok = 2 <= len(shape) <= 4 and min(shape) >= 1
        if not ok or shape[0] * int(np.prod(shape[2:], dtype=np.int64)) < 2:
            raise argparse.ArgumentTypeError(
                f"expected comma-separated N x C [x H [x W]] sizes with more than one "
                f"value per channel, e.g. 64x64x7x7,256x1024; got {item!r}")
        shapes.append(shape)
    return shapes


def validate(x: np.ndarray, g: np.ndarray, b: np.ndarray, dy: np.ndarray) -> None:
    """The kernels against float64 NumPy on the benchmark's own data."""
    c = x.shape[1]
    axes = (0,) + tuple(range(2, x.ndim))
    bc = (1, c) + (1,) * (x.ndim - 2)
    xd = x.astype(np.float64)
    mu, var = xd.mean(axes), xd.var(axes)
    invstd = 1.0 / np.sqrt(var + 1e-5)
    xhat = (xd - mu.reshape(bc)) * invstd.reshape(bc)
    y_ref = xhat * g.reshape(bc) + b.reshape(bc)
    m = x.size // c
    dyh = dy * g.reshape(bc)
    dx_ref = invstd.reshape(bc) / m * (m * dyh - dyh.sum(axes).reshape(bc)
                                       - xhat * (dyh * xhat).sum(axes).reshape(bc))
    y, sm, si = F.batch_norm(x, g, b, np.zeros(c, np.float32), np.ones(c, np.float32))
    dx, _, _ = F.batch_norm_backward(dy, x, g, sm, si)
    err_y = np.abs(y - y_ref).max() / np.abs(y_ref).max()
    err_dx = np.abs(dx - dx_ref).max() / np.abs(dx_ref).max()
    if not (err_y < 1e-4 and err_dx < 1e-4):
        raise SystemExit(f"validation failed for {x.shape}: y err {err_y:.2e}, dx err {err_dx:.2e}")


def torch_fns(x: np.ndarray, g: np.ndarray, b: np.ndarray, dy: np.ndarray,
              threads: int) -> Optional[Dict[str, Callable[[], object]]]:
    """PyTorch's training-mode forward and backward on the same data, or None without torch."""
    torch = import_torch(threads)  # its own OpenMP pool, the same size as fastnn's
    if torch is None:
        return None
    TF = torch.nn.functional
    c = x.shape[1]
    xt = torch.from_numpy(x).requires_grad_(True)
    gt = torch.from_numpy(g.copy()).requires_grad_(True)
    bt = torch.from_numpy(b.copy()).requires_grad_(True)
    rm, rv = torch.zeros(c), torch.ones(c)
    dyt = torch.from_numpy(dy)

    def fwd():
        with torch.no_grad():
            return TF.batch_norm(xt, rm, rv, gt, bt, training=True)

    y = TF.batch_norm(xt, rm, rv, gt, bt, training=True)

    def bwd():
        return torch.autograd.grad(y, (xt, gt, bt), dyt, retain_graph=True)

    return {"torch fwd": fwd, "torch bwd": bwd}


def main(argv: Optional[List[str]] = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer repeats")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--more", action="store_true",
                    help="also small-CNN shapes: " + ", ".join("x".join(map(str, s)) for s in MORE_SHAPES))
    ap.add_argument("--shapes", type=parse_shapes, default=None,
                    help="comma-separated shapes instead, e.g. 64x64x7x7,256x1024")
    args = ap.parse_args(argv)
    shapes = args.shapes or (SHAPES + MORE_SHAPES if args.more else SHAPES)
    fastnn.set_num_threads(args.threads)
    repeats = 15 if args.quick else 101
    rng = np.random.default_rng(0)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"batch norm, float32, training mode, {args.threads} thread(s), median of {repeats} interleaved rounds "
          f"(best in brackets); load average {load:.1f} on {os.cpu_count()} cores")
    print("GB/s: compulsory traffic (forward 8 B, backward 12 B per element) / median time; "
          "BW: STREAM Add now (NumPy)")
    head = (f"{'shape':>18} {'fwd ms':>15} {'GB/s':>5} {'bwd ms':>15} {'GB/s':>5} {'f+b GB/s':>8} "
            f"{'eval GB/s':>9} {'BW':>5} {'% BW':>5} "
            f"{'torch fwd':>9} {'torch bwd':>9} {'x fwd':>5} {'x bwd':>5} {'x f+b':>5}")
    print(head)
    for shape in shapes:
        c = shape[1]
        x = (rng.standard_normal(shape) * 2 + 1).astype(np.float32)
        dy = rng.standard_normal(shape).astype(np.float32)
        g = rng.uniform(0.5, 1.5, c).astype(np.float32)
        b = rng.standard_normal(c).astype(np.float32)
        validate(x, g, b, dy)
        rm, rv = np.zeros(c, np.float32), np.ones(c, np.float32)
        y, sm, si = F.batch_norm(x, g, b, rm, rv)
        fns: Dict[str, Callable[[], object]] = {
            "fwd": lambda: F.batch_norm(x, g, b, rm, rv),
            "bwd": lambda: F.batch_norm_backward(dy, x, g, sm, si),
            "eval": lambda: F.batch_norm(x, g, b, rm, rv, training=False)}
        tfns = torch_fns(x, g, b, dy, args.threads)
        fns.update(tfns or {})
        bw = stream_add_gbs(args.threads, repeats=5 if args.quick else 15)
        t = time_interleaved(fns, repeats)
        (tf, tf_best), (tb, tb_best) = t["fwd"], t["bwd"]
        nbytes = x.size * 4
        row = (f"{str(shape):>18} {tf * 1e3:6.3f} ({tf_best * 1e3:6.3f}) {2 * nbytes / tf / 1e9:5.1f} "
               f"{tb * 1e3:6.3f} ({tb_best * 1e3:6.3f}) {3 * nbytes / tb / 1e9:5.1f} "
               f"{5 * nbytes / (tf + tb) / 1e9:8.1f} {2 * nbytes / t['eval'][0] / 1e9:9.1f}"
               f" {bw:5.1f} {100 * 5 * nbytes / (tf + tb) / 1e9 / bw:5.0f}")
        if tfns is not None:
            ttf, ttb = t["torch fwd"][0], t["torch bwd"][0]
            row += (f" {ttf * 1e3:9.3f} {ttb * 1e3:9.3f} {ttf / tf:5.2f} {ttb / tb:5.2f}"
                    f" {(ttf + ttb) / (tf + tb):5.2f}")
        else:
            row += "  (PyTorch not installed)"
        print(row)


if __name__ == "__main__":
    main()
