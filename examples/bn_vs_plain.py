"""The small CNN with and without BatchNorm2d after each convolution, on the MNIST split.

Trains both nets on the first 8000 digits of MNIST's test set and evaluates on the last 2000,
printing the held-out accuracy after every epoch and the number of epochs each needs to reach
the target (98.5% by default). Same seed, same initial weights of the shared layers, same
batches, same optimizer (Adam) for both.

    PYTHONPATH=python python examples/bn_vs_plain.py [--epochs 10] [--lr 1e-3] [--mnist DIR]
"""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import List, Optional

import numpy as np

import fastnn


def find_mnist(arg: Optional[str]) -> Path:
    here = Path(__file__).resolve().parents[1]
    for p in ([Path(arg)] if arg else []) + [Path(os.environ.get("FASTNN_MNIST", "/nonexistent")),
                                           here.parent / "shared" / "data" / "mnist",
                                           Path("/work/shared/data/mnist")]:
        if (p / "t10k-images-idx3-ubyte.gz").exists() or (p / "t10k-images-idx3-ubyte").exists():
            return p
    raise SystemExit("MNIST not found: pass --mnist DIR (folder with t10k-images-idx3-ubyte.gz)")


def small_cnn(batch_norm: bool, seed: int) -> fastnn.Sequential:
    """LeNet-style: [Conv 5x5 pad 2 - (BN) - ReLU - MaxPool 2] x2 (16, 32 channels) -
    Linear(1568, 128) - ReLU - Linear(128, 10); He init. With batch norm the convolutions
    drop their bias (BN's beta replaces it)."""
    rng = np.random.default_rng(seed)

    def block(cin: int, cout: int) -> List[fastnn.Module]:
        conv = fastnn.Conv2d(cin, cout, 5, padding=2, bias=not batch_norm, init="he_normal", rng=rng)
        return [conv] + ([fastnn.BatchNorm2d(cout)] if batch_norm else []) + [fastnn.ReLU(),
                                                                          fastnn.MaxPool2d(2)]

    return fastnn.Sequential(*block(1, 16), *block(16, 32), fastnn.Flatten(),
                             fastnn.Linear(32 * 7 * 7, 128, init="he_normal", rng=rng), fastnn.ReLU(),
                             fastnn.Linear(128, 10, init="he_normal", rng=rng))


def accuracy(model: fastnn.Module, x: np.ndarray, y: np.ndarray, batch: int = 500) -> float:
    model.eval()
    pred = np.concatenate([model(x[i:i + batch]).argmax(1) for i in range(0, len(x), batch)])
    model.train()
    return float((pred == y).mean())


def train(batch_norm: bool, data, epochs: int, lr: float, seed: int, target: float) -> List[float]:
    xtr, ytr, xva, yva = data
    model = small_cnn(batch_norm, seed)
    opt = fastnn.optim.Adam(model.parameters(), lr=lr)
    loss_fn = fastnn.SoftmaxCrossEntropy()
    loader = fastnn.DataLoader(xtr, ytr, batch_size=64, shuffle=True, rng=np.random.default_rng(seed))
    accs: List[float] = []
    name = "with BatchNorm2d" if batch_norm else "plain"
    for epoch in range(1, epochs + 1):
        t0 = time.perf_counter()
        losses = []
        for xb, yb in loader:
            out = model(xb)
            loss, dout = loss_fn(out, yb)
            opt.zero_grad()
            model.backward(dout)
            opt.step()
            losses.append(loss)
        accs.append(accuracy(model, xva, yva))
        print(f"  {name:17s} epoch {epoch:2d}  train loss {np.mean(losses):.4f}  "
              f"held-out acc {100 * accs[-1]:.2f}%  ({time.perf_counter() - t0:.1f} s)", flush=True)
    return accs


def epochs_to(accs: List[float], target: float) -> Optional[int]:
    return next((i + 1 for i, a in enumerate(accs) if a >= target), None)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--target", type=float, default=0.985)
    ap.add_argument("--mnist", default=None)
    args = ap.parse_args()
    x, y = fastnn.load_mnist(find_mnist(args.mnist), split="test")
    data = (x[:8000], y[:8000], x[8000:], y[8000:])
    print(f"MNIST split: 8000 train / 2000 held out; Adam lr {args.lr}, batch 64, seed {args.seed}, "
          f"{fastnn.get_num_threads()} threads")
    results = {}
    for bn in (False, True):
        results[bn] = train(bn, data, args.epochs, args.lr, args.seed, args.target)
    print("\nheld-out accuracy per epoch (%):")
    print("  epoch   plain   batch-norm")
    for e in range(args.epochs):
        print(f"  {e + 1:5d}  {100 * results[False][e]:6.2f}   {100 * results[True][e]:6.2f}")
    for bn, label in ((False, "plain"), (True, "batch-norm")):
        n = epochs_to(results[bn], args.target)
        print(f"{label:10s}: epochs to {100 * args.target:.1f}%: {n if n else f'not within {args.epochs}'}"
              f"; best {100 * max(results[bn]):.2f}%")


if __name__ == "__main__":
    main()
