"""Augmentation benchmark: a batch of 256 RGB 32x32 images through crop (pad 4) + horizontal
flip + affine warp + colour jitter + cutout, each stage and the whole pipeline (median ms and
GB/s of compulsory traffic: read x, write y), beside the forward+backward time of the
batch-norm CNN (`fastnn.models.bncnn`, in_shape (3, 32, 32)) on the same batch. Target: the
augmentation costs under 10% of that training step. The affine warp is also timed against
PyTorch's per-sample equivalent (affine_grid + grid_sample) when torch is installed.
Every stage is validated against a small NumPy computation before anything is timed.

    PYTHONPATH=python python benchmarks/bench_augment.py [--quick] [--threads N] [--batch 256]
"""
from __future__ import annotations

from _timing import time_fn  # noqa: E402  (first: pins the BLAS threads before NumPy loads)

import argparse  # noqa: E402
from typing import Optional  # noqa: E402

import numpy as np  # noqa: E402

import fastnn  # noqa: E402
from fastnn import augment as A  # noqa: E402


def pipeline() -> A.Compose:
    return A.Compose([A.RandomCrop(32, padding=4), A.RandomHorizontalFlip(),
                      A.RandomAffine(10, translate=(0.1, 0.1), scale=(0.9, 1.1), shear=5),
                      A.ColorJitter(0.4, 0.4, 0.4), A.Cutout(8, fill=0.5)])


# --- validation against inline NumPy -----------------------------------------------------
def _bilinear_numpy(x: np.ndarray, theta: np.ndarray, fill: float) -> np.ndarray:
    """Vectorised float64 bilinear sampling with the kernel's centred coordinates."""
    n, c, h, w = x.shape
    out = np.empty(x.shape)
    ys, xs = np.meshgrid(np.arange(h) - (h - 1) / 2, np.arange(w) - (w - 1) / 2, indexing="ij")
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (1, 2), (1, 2)), constant_values=fill)
    for i in range(n):
        a, b, tx, d, e, ty = theta[i].astype(np.float64)
        u = np.clip(a * xs + b * ys + tx + (w - 1) / 2, -1.5, w + 0.5)
        v = np.clip(d * xs + e * ys + ty + (h - 1) / 2, -1.5, h + 0.5)
        x0, y0 = np.floor(u).astype(int), np.floor(v).astype(int)
        fx, fy = u - x0, v - y0
        p = xp[i]
        out[i] = ((1 - fx) * (1 - fy) * p[:, y0 + 1, x0 + 1] + fx * (1 - fy) * p[:, y0 + 1, x0 + 2]
                  + (1 - fx) * fy * p[:, y0 + 2, x0 + 1] + fx * fy * p[:, y0 + 2, x0 + 2])
    return out


def validate(x: np.ndarray) -> None:
    def check(name: str, got: np.ndarray, want: np.ndarray, tol: float = 1e-5) -> None:
        err = float(np.abs(got - want).max()) if got.shape == want.shape else float("inf")
        if not err <= tol:
            raise SystemExit(f"validation failed for {name}: max error {err:.2e}")

    xs = x[:16]
    crop = A.RandomCrop(32, padding=4)
    rng = np.random.default_rng(1)
    off = np.stack([rng.integers(0, 9, 16), rng.integers(0, 9, 16)], 1)
    xp = np.pad(xs, ((0, 0), (0, 0), (4, 4), (4, 4)))
    check("crop", crop(xs, np.random.default_rng(1)),
          np.stack([xp[i, :, t:t + 32, s:s + 32] for i, (t, s) in enumerate(off)]), 0.0)
    check("flip", A.RandomHorizontalFlip(p=1.0)(xs, None), xs[..., ::-1], 0.0)
    aff = A.RandomAffine(10, translate=(0.1, 0.1), scale=(0.9, 1.1), shear=5)
    theta = aff.sample_matrices(16, 32, 32, np.random.default_rng(2))
    check("affine", aff(xs, np.random.default_rng(2)), _bilinear_numpy(xs, theta, 0.0), 1e-5)
    check("affine identity", A.RandomAffine()(xs, None), xs, 0.0)
    jit = A.ColorJitter(0.4, 0.4, 0.4)
    rng = np.random.default_rng(3)
    f = np.stack([rng.uniform(0.6, 1.4, 16) for _ in range(3)], 1)
    want = xs.astype(np.float64)
    grey = lambda im: 0.299 * im[:, 0] + 0.587 * im[:, 1] + 0.114 * im[:, 2]  # noqa: E731
    want = np.clip(f[:, 0, None, None, None] * want, 0, 1)
    m = grey(want).mean(axis=(1, 2))[:, None, None, None]
    want = np.clip(f[:, 1, None, None, None] * want + (1 - f[:, 1, None, None, None]) * m, 0, 1)
    want = np.clip(f[:, 2, None, None, None] * want + (1 - f[:, 2, None, None, None]) * grey(want)[:, None], 0, 1)
    check("color jitter", jit(xs, np.random.default_rng(3)), want, 1e-5)
    cut = A.Cutout(8, fill=0.5)(xs, np.random.default_rng(4))
    for i in range(16):
        hole = (cut[i] == 0.5).all(axis=0) & (cut[i] != xs[i]).any(axis=0)
        if not (0 < hole.sum() <= 64 and np.array_equal(cut[i][:, ~hole], xs[i][:, ~hole])):
            raise SystemExit("validation failed for cutout")
    y1 = pipeline()(x, np.random.default_rng(5))
    y2 = pipeline()(x, np.random.default_rng(5))
    if not (np.array_equal(y1, y2) and y1.shape == x.shape and np.isfinite(y1).all()):
        raise SystemExit("validation failed for the pipeline (not reproducible or bad shape)")


# --- timing -------------------------------------------------------------------------------
def torch_affine_ms(x: np.ndarray, theta: np.ndarray, repeats: int, threads: int) -> Optional[float]:
    """PyTorch's per-sample affine warp of the same batch: affine_grid + grid_sample."""
    try:
        import torch
        import torch.nn.functional as TF
    except ImportError:
        return None
    torch.set_num_threads(threads)
    n, c, h, w = x.shape
    th = torch.from_numpy(theta.astype(np.float32)).view(n, 2, 3).clone()
    # Pixel units -> the normalised [-1, 1] units of affine_grid (align_corners=False).
    th[:, 0, 1] *= h / w
    th[:, 1, 0] *= w / h
    th[:, 0, 2] *= 2.0 / w
    th[:, 1, 2] *= 2.0 / h
    xt = torch.from_numpy(x)

    def run():
        with torch.no_grad():
            grid = TF.affine_grid(th, (n, c, h, w), align_corners=False)
            return TF.grid_sample(xt, grid, mode="bilinear", padding_mode="zeros", align_corners=False)

    got = run().numpy()
    want = fastnn._C.affine_warp_bilinear(x, theta, h, w, 0.0)
    if np.abs(got - want).max() > 1e-4:
        raise SystemExit("validation failed: torch's grid_sample disagrees with the affine kernel")
    return time_fn(run, repeats)[0] * 1e3


def cnn_step_ms(x: np.ndarray, repeats: int) -> float:
    model = fastnn.models.bncnn((3, 32, 32), 10, rng=np.random.default_rng(0))
    model.train()
    loss_fn = fastnn.SoftmaxCrossEntropy()
    y = np.random.default_rng(0).integers(0, 10, len(x))

    def step():
        model.zero_grad()
        out = model(x)
        _, dout = loss_fn(out, y)
        model.backward(dout)

    return time_fn(step, repeats, warmup=1)[0] * 1e3


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer repeats")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=256)
    args = ap.parse_args()
    fastnn.set_num_threads(args.threads)
    reps = 5 if args.quick else 21
    x = np.random.default_rng(0).random((args.batch, 3, 32, 32), dtype=np.float32)
    validate(x)

    stages = pipeline().transforms
    names = ["RandomCrop(32, pad 4)", "RandomHorizontalFlip", "RandomAffine", "ColorJitter",
             "Cutout(8)"]
    rng = np.random.default_rng(0)
    nbytes = 2 * x.nbytes  # read x, write y
    print(f"fastnn {fastnn.__version__} | kernels {fastnn.build_info()['isa_level']} | threads "
          f"{fastnn.get_num_threads()} | batch {x.shape} float32 | median of {reps}")
    print(f"{'stage':28s} {'ms':>8s} {'GB/s':>7s} {'torch ms':>9s} {'ratio':>6s}")
    total = 0.0
    for name, t in zip(names, stages):
        ms = time_fn(lambda: t(x, rng), reps)[0] * 1e3
        total += ms
        extra = ""
        if isinstance(t, A.RandomAffine):
            theta = t.sample_matrices(len(x), 32, 32, np.random.default_rng(1))
            tms = torch_affine_ms(x, theta, reps, args.threads)
            if tms is not None:
                extra = f" {tms:9.2f} {tms / ms:6.2f}"
        print(f"{name:28s} {ms:8.2f} {nbytes / ms / 1e6:7.1f}{extra}")
    comp = pipeline()
    pipe_ms = time_fn(lambda: comp(x, rng), reps)[0] * 1e3
    print(f"{'whole pipeline (Compose)':28s} {pipe_ms:8.2f}   (sum of stages {total:.2f})")
    step_ms = cnn_step_ms(x, max(3, reps // 3))
    print(f"{'bncnn forward+backward':28s} {step_ms:8.2f}")
    print(f"augmentation / training step: {100 * pipe_ms / step_ms:.1f}%  (target < 10%)")
    print("ratio = torch ms / fastnn ms (above 1: fastnn faster); shared machine: compare medians only")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
