"""Linear layer forward/backward: median ms and GFLOP/s on MLP-sized shapes, with the ratio to
PyTorch (same shapes, same thread count) when it is installed. Validates before timing."""
from __future__ import annotations

from _timing import import_torch, time_fn  # noqa: E402  (first: pins the BLAS threads before NumPy loads)

import argparse

import numpy as np

import fastnn
import fastnn.functional as F

SHAPES = [  # (batch, in, out)
    (64, 784, 256), (64, 256, 10), (256, 1024, 1024), (512, 512, 512), (1024, 3136, 10),
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    fastnn.set_num_threads(args.threads)
    torch = import_torch(args.threads)
    repeats = 5 if args.quick else 30
    rng = np.random.default_rng(0)
    print(f"linear, {args.threads} threads, kernels {fastnn.build_info()['isa_level']}, median of {repeats}")
    print(f"{'N,in,out':>16} {'fwd ms':>8} {'GFLOP/s':>8} {'bwd ms':>8} {'GFLOP/s':>8} {'torch fwd+bwd ms':>17} {'ratio':>6}")
    for n, d, o in SHAPES[:3] if args.quick else SHAPES:
        x = rng.standard_normal((n, d)).astype(np.float32)
        w = rng.standard_normal((o, d)).astype(np.float32) / np.sqrt(d)
        b = rng.standard_normal(o).astype(np.float32)
        dy = rng.standard_normal((n, o)).astype(np.float32)
        ref = x.astype(np.float64) @ w.T.astype(np.float64) + b
        assert np.allclose(F.linear(x, w, b), ref, rtol=1e-3, atol=1e-3), "linear forward is wrong"
        dx, dw, db = F.linear_backward(dy, x, w)
        assert np.allclose(dw, dy.T.astype(np.float64) @ x, rtol=1e-3, atol=1e-2), "linear backward is wrong"
        flops = 2.0 * n * d * o
        tf = time_fn(lambda: F.linear(x, w, b), repeats, warmup=1)[0] * 1e3
        tb = time_fn(lambda: F.linear_backward(dy, x, w), repeats, warmup=1)[0] * 1e3
        line = f"{f'{n},{d},{o}':>16} {tf:8.3f} {flops / tf / 1e6:8.1f} {tb:8.3f} {2 * flops / tb / 1e6:8.1f}"
        if torch is not None:
            xt = torch.tensor(x, requires_grad=True)
            lin = torch.nn.Linear(d, o)
            dyt = torch.tensor(dy)

            def step():
                xt.grad = None
                lin.zero_grad()
                lin(xt).backward(dyt)
            tt = time_fn(step, repeats, warmup=1)[0] * 1e3
            line += f" {tt:17.3f} {tt / (tf + tb):6.2f}"
        print(line, flush=True)


if __name__ == "__main__":
    main()
