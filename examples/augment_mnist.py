"""The batch-norm CNN (`fastnn.models.bncnn`) on the MNIST split with random crops and small
affine warps, trained by `fastnn.train.Trainer`.

Data: the first 8000 digits of MNIST's test set for training, the last 2000 held out (the
split of `fastnn train --dataset mnist`). Preprocessing: `ChannelMean(scale=True)` fitted on
the training digits only; the augmentation runs on the standardized batches with the
background value as fill, so padded and uncovered pixels look like the digit's background.
Recipe: Adam 3e-3 with cosine decay to 0 over all steps, batch 64, He init (the defaults of
`fastnn.models` for bncnn). Prints the held-out accuracy and time after every epoch; with
--checkpoint it saves model, optimizer and the fitted preprocessor in one file.

    PYTHONPATH=python python examples/augment_mnist.py [--epochs 20] [--pad 2] [--degrees 8]
        [--translate 0.05] [--scale 0.9 1.1] [--shear 0] [--mnist DIR] [--checkpoint FILE]
"""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Optional

import numpy as np

import fastnn
from fastnn import augment as A
from fastnn.preprocess import ChannelMean


def find_mnist(arg: Optional[str]) -> Path:
    p = fastnn.data.find_mnist(arg)
    if p is None:
        raise SystemExit("MNIST not found: pass --mnist DIR (folder with t10k-images-idx3-ubyte.gz)")
    return p


def make_transform(pad: int, degrees: float, translate: float, scale: tuple, shear: float,
                   fill: float, size: int = 28) -> A.Compose:
    """Random crop (zero padding = background) then a small random affine warp."""
    steps: list = []
    if pad > 0:
        steps.append(A.RandomCrop(size, padding=pad, fill=fill))
    if degrees > 0 or translate > 0 or tuple(scale) != (1.0, 1.0) or shear > 0:
        steps.append(A.RandomAffine(degrees, translate=(translate, translate) if translate > 0 else None,
                                    scale=tuple(scale), shear=shear if shear > 0 else None, fill=fill))
    return A.Compose(steps)


def main(argv: Optional[list] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--lr", type=float, default=fastnn.models.DEFAULT_LR["bncnn"])
    ap.add_argument("--pad", type=int, default=2, help="RandomCrop padding (0: no crops)")
    ap.add_argument("--degrees", type=float, default=8.0, help="RandomAffine rotation range ±deg")
    ap.add_argument("--translate", type=float, default=0.0, help="RandomAffine translation fraction")
    ap.add_argument("--scale", type=float, nargs=2, default=(0.9, 1.1), help="RandomAffine scale range")
    ap.add_argument("--shear", type=float, default=0.0, help="RandomAffine x shear range ±deg")
    ap.add_argument("--n-train", type=int, default=8000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=0, help="kernel threads (0: default)")
    ap.add_argument("--mnist", default=None, help="folder with the MNIST IDX files")
    ap.add_argument("--checkpoint", default=None, help="save model + optimizer + preprocessor here")
    args = ap.parse_args(argv)

    if args.threads:
        fastnn.set_num_threads(args.threads)
    fastnn.seed(args.seed)
    rng = np.random.default_rng(args.seed)
    x, y = fastnn.load_mnist(find_mnist(args.mnist), "test")
    xtr, ytr = x[:min(args.n_train, len(x) - 2000)], y[:min(args.n_train, len(x) - 2000)]
    xva, yva = x[-2000:], y[-2000:]

    pre = ChannelMean(scale=True).fit(xtr)         # statistics of the training digits only
    xtr, xva = pre.transform(xtr), pre.transform(xva)
    background = float(pre.transform(np.zeros((1, 1, 1, 1), np.float32))[0, 0, 0, 0])
    transform = make_transform(args.pad, args.degrees, args.translate, args.scale, args.shear,
                               fill=background)

    model = fastnn.models.bncnn((1, 28, 28), 10, rng=rng)
    loader = fastnn.DataLoader(xtr, ytr, batch_size=args.batch_size, shuffle=True,
                               transform=transform, rng=rng)
    schedule = fastnn.schedules.CosineAnnealingLR(args.lr, T_max=args.epochs * len(loader))
    opt = fastnn.optim.Adam(model.parameters(), lr=schedule)
    trainer = fastnn.Trainer(model, fastnn.SoftmaxCrossEntropy(), opt)
    print(f"fastnn {fastnn.__version__} | kernels {fastnn.build_info()['isa_level']} | "
          f"threads {fastnn.get_num_threads()}")
    print(f"MNIST split: {len(xtr)} train / {len(xva)} held out | bncnn, Adam {args.lr:g} cosine "
          f"to 0, batch {args.batch_size}, {args.epochs} epochs | augment {transform!r}", flush=True)

    t_start = time.perf_counter()
    best = 0.0
    for epoch in range(args.epochs):
        h = trainer.fit(loader, val_data=(xva, yva), epochs=epoch + 1, progress=False)
        best = max(best, h.val_acc[-1])
        print(f"epoch {epoch + 1:3d}/{args.epochs}  train loss {h.train_loss[-1]:.4f}  "
              f"train acc {h.train_acc[-1]:.4f}  held-out acc {h.val_acc[-1] * 100:.2f}%  "
              f"lr {h.lr[-1]:.3g}  ({h.epoch_time[-1]:.1f}s, total {time.perf_counter() - t_start:.0f}s)",
              flush=True)
    final = trainer.evaluate(xva, yva)["accuracy"]
    total = time.perf_counter() - t_start
    print(f"held-out accuracy after {args.epochs} epochs: {final * 100:.2f}% (best epoch "
          f"{best * 100:.2f}%); training time {total:.0f}s ({total / max(args.epochs, 1):.1f}s per epoch)")
    if args.checkpoint:
        fastnn.save(args.checkpoint, model, opt, epoch=args.epochs, preprocess=pre)
        print(f"checkpoint (model, optimizer, preprocessor) written to {args.checkpoint}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
