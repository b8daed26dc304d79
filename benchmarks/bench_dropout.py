"""Dropout benchmark: training-mode forward (draw the mask, store it, apply it) and backward
(dy * mask) medians, GB/s of compulsory traffic (forward reads x and writes y and the mask,
backward reads dy and the mask and writes dx: 12 bytes per element each), and the ratio to
PyTorch's dropout (forward, and backward through autograd) when torch is installed; then the
same for channel dropout (dropout2d: one mask value per feature map, so 8 bytes per element)
against torch.nn.functional.dropout2d. Before anything is timed: mask values, y = x * mask,
the keep rate and reproducibility are checked (tests/test_dropout.py checks the masks against
a NumPy implementation of the generator).

    PYTHONPATH=python python benchmarks/bench_dropout.py [--quick] [--threads N]
"""
from __future__ import annotations

from _timing import import_torch, time_interleaved  # noqa: E402  (first: pins the BLAS threads before NumPy loads)

import argparse  # noqa: E402
from typing import Any, Callable, Dict, List, Optional, Tuple  # noqa: E402

import numpy as np  # noqa: E402

import fastnn  # noqa: E402
from fastnn import functional as F  # noqa: E402

# the small CNN's dropout input (64, 3136), a conv activation, a large activation
SHAPES = [(64, 3136), (64, 32, 14, 14), (64, 64, 32, 32)]
# channel dropout: conv activations
SHAPES_2D = [(64, 32, 14, 14), (64, 64, 32, 32)]
P = 0.5


def bench(kind: str, shape: Tuple[int, ...], repeats: int, torch: Any) -> str:
    """One table row: fastnn's and (when installed) PyTorch's dropout or dropout2d."""
    rng = np.random.default_rng(0)
    drop, undrop = ((F.dropout, F.dropout_backward) if kind == "dropout"
                    else (F.dropout2d, F.dropout2d_backward))
    x = rng.standard_normal(shape).astype(np.float32)
    dy = rng.standard_normal(shape).astype(np.float32)
    y, mask = drop(x, P, rng=np.random.default_rng(1))
    y2, mask2 = drop(x, P, rng=np.random.default_rng(1))
    values_ok = np.all((mask == 0) | (mask == np.float32(1 / (1 - P))))
    if not (values_ok and np.array_equal(y, x * mask) and np.array_equal(mask, mask2)
            and abs((mask > 0).mean() - (1 - P)) < (0.01 if kind == "dropout" else 0.03)):
        raise SystemExit(f"validation failed for {kind} {shape}: mask values, y = x * mask, "
                         "the same mask from the same seed, or the keep rate")
    gen = np.random.default_rng(2)
    fns: Dict[str, Callable[[], object]] = {
        "fwd": lambda: drop(x, P, rng=gen),
        "bwd": lambda: undrop(dy, mask)}
    if torch is not None:
        tdrop = getattr(torch.nn.functional, kind)
        xt = torch.from_numpy(x).requires_grad_(True)
        dyt = torch.from_numpy(dy)
        yt = tdrop(xt, P, training=True)

        def tfwd() -> object:
            with torch.no_grad():
                return tdrop(xt, P, training=True)

        fns["torch fwd"] = tfwd
        fns["torch bwd"] = lambda: torch.autograd.grad(yt, xt, dyt, retain_graph=True)
    t = time_interleaved(fns, repeats)
    tf, tb = t["fwd"][0], t["bwd"][0]
    nbytes = (12 if kind == "dropout" else 8) * x.size
    row = (f"{kind:>9} {str(shape):>18} {tf * 1e3:8.3f} {nbytes / tf / 1e9:5.1f} {tb * 1e3:8.3f} "
           f"{nbytes / tb / 1e9:5.1f}")
    if torch is not None:
        ttf, ttb = t["torch fwd"][0], t["torch bwd"][0]
        row += f" {ttf * 1e3:9.3f} {ttb * 1e3:9.3f} {ttf / tf:6.1f} {ttb / tb:6.2f}"
    else:
        row += "  (PyTorch not installed)"
    return row


def main(argv: Optional[List[str]] = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer repeats")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    fastnn.set_num_threads(args.threads)
    repeats = 11 if args.quick else 51
    torch = import_torch(args.threads)
    print(f"dropout p={P}, float32, training mode, {args.threads} thread(s), "
          f"median of {repeats} interleaved rounds")
    print(f"{'kind':>9} {'shape':>18} {'fwd ms':>8} {'GB/s':>5} {'bwd ms':>8} {'GB/s':>5} "
          f"{'torch fwd':>9} {'torch bwd':>9} {'x fwd':>6} {'x bwd':>6}")
    for shape in SHAPES:
        print(bench("dropout", shape, repeats, torch), flush=True)
    for shape in SHAPES_2D:
        print(bench("dropout2d", shape, repeats, torch), flush=True)


if __name__ == "__main__":
    main()
