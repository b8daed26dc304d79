"""Coarse-to-fine search of learning rate and weight decay for the MNIST MLP (SGD, momentum 0.9).

The MLP is 784-256-10, SGD with momentum 0.9, batch 64. Each trial trains on the first 6000 of
the 8000 training digits and is scored on the next 2000 (the held-out digits stay unseen);
the best configuration is then retrained on all 8000 and compared on the last 2000 held-out
digits with the hand-tuned recipe (lr 0.05, no weight decay, 5 epochs), same seeds for both,
the final runs also spread over the workers.

    PYTHONPATH=python python examples/search_mnist.py [--data DIR] [--n-jobs 2] [--seed 0] [--quick]
"""
from __future__ import annotations

import argparse
import functools
import os
import time
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

import numpy as np

import fastnn
from fastnn import models
from fastnn.optim import SGD
from fastnn.search import LogUniform, coarse_to_fine, grid_search

_DATA: Dict[str, Tuple[np.ndarray, ...]] = {}  # per process, so a worker loads the digits once


def default_data_dir() -> Optional[str]:
    p = fastnn.data.find_mnist()
    return None if p is None else str(p)


def load(data_dir: str) -> Tuple[np.ndarray, ...]:
    """-> (x_train 8000, y_train, x_held 2000, y_held), standardized with the training mean/std."""
    if data_dir not in _DATA:
        x, y = fastnn.load_mnist(data_dir, split="test")
        xtr, ytr, xte, yte = x[:8000], y[:8000], x[8000:], y[8000:]
        mean, std = float(xtr.mean()), float(xtr.std())
        _DATA[data_dir] = ((xtr - mean) / std, ytr, (xte - mean) / std, yte)
    return _DATA[data_dir]


def train(x: np.ndarray, y: np.ndarray, lr: float, weight_decay: float, epochs: int,
          seed: int) -> fastnn.Trainer:
    rng = np.random.default_rng(seed)
    model = models.mlp((1, 28, 28), 10, rng=rng)
    opt = SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=weight_decay)
    trainer = fastnn.Trainer(model, fastnn.SoftmaxCrossEntropy(), opt)
    trainer.fit(fastnn.DataLoader(x, y, batch_size=64, shuffle=True, rng=rng), epochs=epochs,
                progress=False)
    return trainer


def objective(config: Dict[str, float], budget: int, seed: int = 0, data_dir: str = "",
              n_train: int = 6000) -> float:
    """Validation accuracy (digits 6000..7999) after `budget` epochs on the first `n_train`."""
    xtr, ytr, _, _ = load(data_dir)
    trainer = train(xtr[:n_train], ytr[:n_train], config["lr"], config["weight_decay"], budget, seed)
    return trainer.evaluate(xtr[6000:], ytr[6000:])["accuracy"]


def final(config: Dict[str, Any], budget: int, data_dir: str = "", n_final: int = 8000,
          recipes: Optional[Dict[str, Tuple[float, float]]] = None) -> float:
    """Held-out accuracy (last 2000 digits) of recipe config["recipe"] = (lr, weight_decay)
    trained on the first `n_final` digits for `budget` epochs with seed config["seed"]."""
    xtr, ytr, xte, yte = load(data_dir)
    lr, wd = recipes[config["recipe"]]  # type: ignore[index]
    return train(xtr[:n_final], ytr[:n_final], lr, wd, budget, config["seed"]).evaluate(xte, yte)["accuracy"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=default_data_dir(), help="folder of the MNIST IDX files")
    ap.add_argument("--n-jobs", type=int, default=1, help="parallel trials (loky worker processes)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="few short trials (a smoke test)")
    ap.add_argument("--stages", default="20:1,10:3,6:5",
                    help="comma-separated trials:epochs per stage (default 20:1,10:3,6:5)")
    ap.add_argument("--keep", type=float, default=0.3,
                    help="fraction of each stage's best trials the next stage narrows around")
    ap.add_argument("--repeats", type=int, default=3,
                    help="final runs per recipe (seeds seed..seed+repeats-1), averaged")
    ap.add_argument("--out", default=None, help="folder for trials.csv and search.png")
    args = ap.parse_args()
    if not args.data:
        raise SystemExit("--data: give the folder holding t10k-images-idx3-ubyte.gz")

    space = {"lr": LogUniform(1e-6, 1e-1), "weight_decay": LogUniform(1e-7, 1e-2)}
    try:
        stages = [(int(a), int(b)) for a, b in (st.split(":") for st in args.stages.split(","))]
    except ValueError:
        raise SystemExit(f"--stages: expected trials:epochs pairs such as 16:1,8:3, got {args.stages!r}")
    if args.quick:
        stages, args.repeats = [(4, 1), (2, 1)], 1
    n_train = 1000 if args.quick else 6000
    final_epochs, n_final = (1, 2000) if args.quick else (5, 8000)
    print(f"fastnn {fastnn.__version__}, kernels {fastnn.build_info()['isa_level']}; "
          f"coarse-to-fine over {space}, stages (trials, epochs) {stages}, n_jobs {args.n_jobs}")
    obj = functools.partial(objective, data_dir=args.data, n_train=n_train)
    t0 = time.perf_counter()
    results = coarse_to_fine(obj, space, stages=stages, keep=args.keep, n_jobs=args.n_jobs,
                             rng=args.seed)
    elapsed = time.perf_counter() - t0
    print(results.table())
    for s, sp in enumerate(results.spaces):
        print(f"stage {s} space: {sp}")
    print(f"{len(results)} trials ({len(results.failed)} failed) in {elapsed:.1f}s"
          + (" (interrupted)" if results.interrupted else ""))
    best = results.best
    if best is None:
        raise SystemExit("every trial failed")
    cfg = best["config"]
    print(f"best: lr {cfg['lr']:.4g}, weight_decay {cfg['weight_decay']:.3g} "
          f"(validation accuracy {best['score']:.4f}, stage {best['stage']}, {best['budget']} epochs)")

    out = Path(args.out) if args.out else None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        results.to_csv(str(out / "trials.csv"))
        try:
            results.plot(str(out / "search.png"))
        except ImportError as e:
            print(f"no plot: {e}")

    recipes = {"searched": (cfg["lr"], cfg["weight_decay"]), "hand-tuned": (0.05, 0.0)}
    seeds = list(range(args.seed, args.seed + max(1, args.repeats)))
    fin = grid_search(functools.partial(final, data_dir=args.data, n_final=n_final, recipes=recipes),
                      {"recipe": list(recipes), "seed": seeds}, n_jobs=args.n_jobs, budget=final_epochs)
    if fin.failed:
        raise SystemExit(f"final runs failed: {[r['error'] for r in fin.failed]}")
    print(f"held-out accuracy (last 2000 digits; trained on the first {n_final} for {final_epochs} epochs, "
          f"seeds {seeds}):")
    acc = {name: [r["score"] * 100 for r in fin if r["config"]["recipe"] == name] for name in recipes}
    for name, (lr, wd) in recipes.items():
        print(f"  {name:10s} lr {lr:<9.4g} weight_decay {wd:<9.3g}: "
              + "  ".join(f"{a:.2f}%" for a in acc[name]) + f"   mean {np.mean(acc[name]):.2f}%")
    diff = np.array(acc["searched"]) - np.array(acc["hand-tuned"])
    spread = f", paired differences {' '.join(f'{d:+.2f}' for d in diff)}" if len(diff) > 1 else ""
    # binomial standard error of one accuracy on the 2000 held-out digits, and of the
    # difference of two means over len(diff) seeds each
    se_run = 100 * np.sqrt(0.965 * 0.035 / len(load(args.data)[3]))
    se_diff = se_run * np.sqrt(2 / len(diff))
    verdict = "reaches" if diff.mean() >= -se_diff else "falls short of"
    print(f"searched - hand-tuned: {diff.mean():+.2f} points (mean over {len(diff)} seeds{spread}); "
          f"standard error {se_run:.2f} points per run, {se_diff:.2f} for the difference of the means: "
          f"the searched configuration {verdict} the hand-tuned accuracy")

if __name__ == "__main__":
    main()
