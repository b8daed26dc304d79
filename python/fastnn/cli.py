"""Command line: `fastnn train | diagnose | bench` (also `python -m fastnn`)."""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

__all__ = ["main"]


def load_dataset(name: str, data_dir: Optional[str], n_train: Optional[int] = None
                 ) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """-> (x_train, y_train, x_val, y_val), a fixed split (MNIST: first 8000 / last 2000 of
    the given split; digits: first 80% / last 20%)."""
    from .data import find_mnist, load_digits, load_mnist
    if name == "digits":
        x, y = load_digits()
        n = int(len(x) * 0.8)
        return x[:n], y[:n], x[n:], y[n:]
    if name == "mnist":
        folder = data_dir or find_mnist()
        if folder is None:
            raise SystemExit("--data: give the folder holding the MNIST IDX files (t10k-*/train-*)")
        split = "train" if Path(folder, "train-images-idx3-ubyte.gz").exists() or Path(folder, "train-images-idx3-ubyte").exists() else "test"
        x, y = load_mnist(folder, split)
        n_val = 2000 if len(x) <= 10000 else 10000
        n = len(x) - n_val if n_train is None else min(n_train, len(x) - n_val)
        return x[:n], y[:n], x[len(x) - n_val:], y[len(y) - n_val:]
    raise SystemExit(f"--dataset: expected 'digits' or 'mnist', got {name!r}")


_OPTIMIZERS = {"sgd": "SGD", "adam": "Adam", "adamw": "AdamW", "rmsprop": "RMSprop",
               "adagrad": "Adagrad", "adadelta": "Adadelta", "adamax": "Adamax", "nadam": "NAdam"}
_AUGMENT = ("none", "crop", "crop+affine", "flip")


def make_optimizer(name: str, params: list, lr: float, momentum: float, weight_decay: float, schedule: Any):
    """An optimizer from fastnn.optim by its command-line name, lr possibly a schedule."""
    from . import optim
    cls_name = _OPTIMIZERS.get(name.lower())
    if cls_name is None or not hasattr(optim, cls_name):
        raise ValueError(f"--optimizer: expected one of {sorted(_OPTIMIZERS)}, got {name!r}")
    cls = getattr(optim, cls_name)
    kw: Dict[str, Any] = {"lr": schedule if schedule is not None else lr, "weight_decay": weight_decay}
    if cls_name in ("SGD", "RMSprop"):
        kw["momentum"] = momentum
    return cls(params, **kw)


def make_schedule(name: str, lr: float, total_steps: int, steps_per_epoch: int) -> Any:
    """A step-indexed schedule by command-line name (none, cosine, step, onecycle, warmup-cosine)."""
    if name == "none":
        return None
    from . import schedules as S
    if name == "cosine":
        return S.CosineAnnealingLR(lr, T_max=total_steps)
    if name == "step":
        return S.per_epoch(S.StepLR(lr, step_size=max(1, total_steps // steps_per_epoch // 3), gamma=0.1), steps_per_epoch)
    if name == "onecycle":
        return S.OneCycleLR(lr, total_steps=total_steps)
    if name == "warmup-cosine":
        return S.Warmup(S.CosineAnnealingLR(lr, T_max=total_steps), steps=steps_per_epoch)
    raise ValueError(f"--schedule: expected none, cosine, step, onecycle or warmup-cosine, got {name!r}")


def make_augment(name: str, image_size: int, fill: float = 0.0) -> Any:
    """A batch transform by command-line name (none, crop, crop+affine, flip). `fill` is the
    value of uncovered pixels: the background after preprocessing (0 in [0, 1] pixel units)."""
    if name == "none":
        return None
    from . import augment as A
    pad = 2 if image_size <= 28 else 4
    if name == "crop":
        return A.RandomCrop(image_size, padding=pad, fill=fill)
    if name == "crop+affine":
        return A.Compose([A.RandomCrop(image_size, padding=pad, fill=fill),
                          A.RandomAffine(degrees=8, scale=(0.9, 1.1), fill=fill)])
    if name == "flip":
        return A.RandomHorizontalFlip()
    raise ValueError(f"--augment: expected one of {_AUGMENT}, got {name!r}")


def _next_run_dir(root: Path) -> Path:
    """root/run-N for the first N not taken, so a new run never replaces an earlier one."""
    n = 1
    while (root / f"run-{n}").exists():
        n += 1
    return root / f"run-{n}"


def cmd_train(args: argparse.Namespace) -> int:
    import fastnn
    from . import models
    from .losses import SoftmaxCrossEntropy
    from .data import DataLoader
    from .preprocess import ChannelMean
    from .train import Checkpoint, Trainer

    if args.threads:
        fastnn.set_num_threads(args.threads)
    fastnn.seed(args.seed)
    rng = np.random.default_rng(args.seed)
    t_load = time.perf_counter()
    xtr, ytr, xva, yva = load_dataset(args.dataset, args.data, args.n_train)
    # Per-channel mean/std fitted on the training split only; stored in the checkpoint.
    pre = ChannelMean(scale=True).fit(xtr)
    xtr, xva = pre.transform(xtr), pre.transform(xva)
    out_dir = None if args.no_save else (Path(args.out) if args.out else _next_run_dir(Path("fastnn-runs")))
    ckpt_path = args.checkpoint or (str(out_dir / "checkpoint.npz") if out_dir else None)
    plot_path = args.plot or (str(out_dir / "curves.png") if out_dir else None)
    if ckpt_path and Path(ckpt_path).exists() and not args.overwrite and (
            not args.resume or Path(args.resume).resolve() != Path(ckpt_path).resolve()):
        raise ValueError(f"--checkpoint: {ckpt_path} already exists; pass --resume {ckpt_path} to continue "
                         "that run, --overwrite to replace it, or another --out")
    for path in (ckpt_path, plot_path):
        if path:
            Path(path).resolve().parent.mkdir(parents=True, exist_ok=True)
    num_classes = int(max(ytr.max(), yva.max()) + 1)
    print(f"fastnn {fastnn.__version__} | kernels: {fastnn.build_info()['isa_level']} | "
          f"threads: {fastnn.get_num_threads()}")
    print(f"dataset {args.dataset}: {len(xtr)} train / {len(xva)} held out, input {xtr.shape[1:]}, "
          f"{num_classes} classes (loaded in {time.perf_counter() - t_load:.1f}s)")
    model = models.build(args.model, xtr.shape[1:], num_classes, rng=rng)
    n_params = sum(p.size for p in model.parameters())
    background = float(pre.transform(np.zeros((1,) + xtr.shape[1:], np.float32)).ravel()[0])
    transform = make_augment(args.augment, xtr.shape[-1], fill=background)
    loader = DataLoader(xtr, ytr, batch_size=args.batch_size, shuffle=True, rng=rng, transform=transform)
    lr = args.lr if args.lr is not None else models.DEFAULT_LR.get(args.model, 0.05)
    opt_name = args.optimizer or models.DEFAULT_OPTIMIZER.get(args.model, "sgd")
    sched_name = args.schedule or models.DEFAULT_SCHEDULE.get(args.model, "none")
    schedule = make_schedule(sched_name, lr, args.epochs * len(loader), len(loader))
    opt = make_optimizer(opt_name, model.parameters(), lr, args.momentum, args.weight_decay, schedule)
    print(f"model {args.model}: {n_params:,} parameters | optimizer {type(opt).__name__} lr {lr:g}"
          f"{' (' + sched_name + ')' if schedule is not None else ''} | batch {args.batch_size}"
          f" | augment {args.augment}")
    callbacks = [Checkpoint(ckpt_path, preprocess=pre)] if ckpt_path else []
    trainer = Trainer(model, SoftmaxCrossEntropy(), opt, callbacks=callbacks)
    if args.resume:
        trainer.load_checkpoint(args.resume, preprocess=pre)
        print(f"resumed from {args.resume} at epoch {trainer.epoch}")
    t0 = time.perf_counter()
    start = trainer.epoch
    for epoch in range(start, args.epochs):
        h = trainer.fit(loader, val_data=(xva, yva), epochs=epoch + 1, progress=not args.quiet)
        print(f"epoch {epoch + 1:3d}/{args.epochs}  train loss {h.train_loss[-1]:.4f}  "
              f"train acc {h.train_acc[-1]:.4f}  val loss {h.val_loss[-1]:.4f}  "
              f"val acc {h.val_acc[-1]:.4f}  lr {h.lr[-1]:.3g}  ({h.epoch_time[-1]:.2f}s)", flush=True)
    total = time.perf_counter() - t0
    final = trainer.evaluate(xva, yva)
    done = max(args.epochs - start, 1)
    print(f"held-out accuracy: {final['accuracy'] * 100:.2f}%  (loss {final['loss']:.4f}); "
          f"training time {total:.1f}s, {total / done:.2f}s per epoch")
    if plot_path:
        try:
            trainer.history.plot(plot_path)
        except ImportError as e:
            if args.plot:
                raise
            print(f"(no curves PNG: {e})")
        else:
            print(f"curves written to {plot_path}")
    if ckpt_path:
        print(f"checkpoint written to {ckpt_path} (model, optimizer, preprocessing, epoch)")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    """Run the benchmark scripts (from the source checkout or the installed package)."""
    import subprocess
    here = Path(__file__).resolve().parent
    for folder in (here / "benchmarks", here.parents[1] / "benchmarks"):
        if folder.is_dir() and any(folder.glob("bench_*.py")):
            break
    else:
        raise FileNotFoundError("no benchmark scripts found (benchmarks/bench_*.py)")
    names = args.only or sorted(p.stem[len("bench_"):] for p in folder.glob("bench_*.py"))
    status = 0
    for name in names:
        script = folder / f"bench_{name}.py"
        if not script.exists():
            raise ValueError(f"--only: no benchmark {name!r} (have {sorted(p.stem[6:] for p in folder.glob('bench_*.py'))})")
        print(f"== {script.name}", flush=True)
        cmd = [sys.executable, str(script)] + (["--quick"] if args.quick else [])
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(here.parent)] + [p for p in [env.get("PYTHONPATH")] if p])
        status |= subprocess.call(cmd, env=env)
    return status


def cmd_diagnose(args: argparse.Namespace) -> int:
    """The lecture's initialization experiment: per-layer activation mean/std table and
    histogram PNGs (one per activation/initializer, plus one grid) in --out."""
    from . import diagnostics as D

    acts = [a.strip() for a in args.activations.split(",") if a.strip()]
    inits = [i.strip() for i in args.inits.split(",") if i.strip()]
    t0 = time.perf_counter()
    try:
        records = D.init_report(depth=args.depth, width=args.width, n=args.n, activations=acts,
                                inits=inits, input=args.input, rng=np.random.default_rng(args.seed))
    except (TypeError, ValueError) as e:
        raise SystemExit(f"fastnn diagnose: {e}")
    print(f"initialization report: {args.depth} layers of {args.width} units, no biases, "
          f"{args.n} inputs ~ {'U[0, 1)' if args.input == 'uniform' else 'N(0, 1)'}, seed {args.seed} "
          f"({time.perf_counter() - t0:.1f}s)")
    D.print_init_report(records)
    if not args.no_plots:
        try:
            files = D.plot_init_report(records, args.out)
            files += D.plot_init_report(records, os.path.join(args.out, "init_grid.png"))
        except ImportError as e:
            print(f"(no histogram PNGs: {e})")
        else:
            print(f"histograms: {len(files)} PNG files in {args.out}")
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    """Coarse-to-fine search of lr and weight decay (SGD with momentum) for a named model:
    trials score on the last 1/8 of the training split; the best is retrained on all of it
    and reported on the held-out split next to the --lr/no-decay baseline."""
    import fastnn
    from . import models, optim
    from .data import DataLoader
    from .losses import SoftmaxCrossEntropy
    from .search import LogUniform, coarse_to_fine
    from .train import Trainer

    def parse_pairs(text: str, name: str) -> List[Tuple[float, float]]:
        try:
            return [tuple(float(v) for v in item.split(":")) for item in text.split(",")]  # type: ignore[misc]
        except ValueError:
            raise SystemExit(f"{name}: expected comma-separated a:b pairs, got {text!r}") from None

    stages = [(int(n), int(e)) for n, e in parse_pairs(args.stages, "--stages")]
    (lr_lo, lr_hi), = parse_pairs(args.lr_range, "--lr-range")
    (wd_lo, wd_hi), = parse_pairs(args.wd_range, "--wd-range")
    space = {"lr": LogUniform(lr_lo, lr_hi), "weight_decay": LogUniform(wd_lo, wd_hi)}
    spec = (args.dataset, args.data, args.n_train, args.model, args.momentum, args.batch_size)
    cache: dict = {}

    def data() -> Tuple[np.ndarray, ...]:
        if "d" not in cache:  # once per process (each worker loads its own copy)
            xtr, ytr, xva, yva = load_dataset(spec[0], spec[1], spec[2])
            mean, std = float(xtr.mean()), float(xtr.std())
            cache["d"] = ((xtr - mean) / std, ytr, (xva - mean) / std, yva)
        return cache["d"]

    def fit(x: np.ndarray, y: np.ndarray, lr: float, wd: float, epochs: int, seed: int) -> Trainer:
        rng = np.random.default_rng(seed)
        model = models.build(spec[3], x.shape[1:], int(y.max()) + 1, rng=rng)
        opt = optim.SGD(model.parameters(), lr=lr, momentum=spec[4], weight_decay=wd)
        trainer = Trainer(model, SoftmaxCrossEntropy(), opt)
        trainer.fit(DataLoader(x, y, batch_size=spec[5], shuffle=True, rng=rng), epochs=epochs, progress=False)
        return trainer

    def objective(config: dict, budget: int, seed: int = 0) -> float:
        xtr, ytr = data()[:2]
        n = len(xtr) - len(xtr) // 8
        trainer = fit(xtr[:n], ytr[:n], config["lr"], config["weight_decay"], budget, seed)
        return trainer.evaluate(xtr[n:], ytr[n:])["accuracy"]

    xtr, ytr, xva, yva = data()
    cache.clear()  # the objective's closure is pickled for every trial: ship it without the data
    print(f"fastnn {fastnn.__version__}: coarse-to-fine over {space} for {args.model} on {args.dataset} "
          f"({len(xtr)} train / {len(xva)} held out), stages (trials, epochs) {stages}, n_jobs {args.n_jobs}")
    t0 = time.perf_counter()
    results = coarse_to_fine(objective, space, stages=stages, keep=args.keep, n_jobs=args.n_jobs, rng=args.seed)
    print(results.table())
    print(f"{len(results)} trials ({len(results.failed)} failed) in {time.perf_counter() - t0:.1f}s"
          + (" (interrupted)" if results.interrupted else ""))
    if args.csv:
        results.to_csv(args.csv)
    if args.plot:
        results.plot(args.plot)
    best = results.best
    if best is None:
        print("every trial failed")
        return 1
    cfg, epochs = best["config"], stages[-1][1]
    print(f"best: lr {cfg['lr']:.4g}, weight_decay {cfg['weight_decay']:.3g} (validation accuracy {best['score']:.4f})")
    for name, lr, wd in (("searched", cfg["lr"], cfg["weight_decay"]), ("baseline", args.lr, 0.0)):
        acc = fit(xtr, ytr, lr, wd, epochs, args.seed).evaluate(xva, yva)["accuracy"]
        print(f"held-out accuracy, {name} (lr {lr:.4g}, weight_decay {wd:.3g}, {epochs} epochs): {acc * 100:.2f}%")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="fastnn", description="fastnn: CPU neural-network training")
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train a named model on a dataset and report held-out accuracy")
    t.add_argument("--dataset", default="digits", choices=["digits", "mnist"])
    t.add_argument("--data", default=None, help="folder of the MNIST IDX files (for --dataset mnist)")
    t.add_argument("--model", default="mlp", help="model name: mlp, lenet, cnn, bncnn")
    t.add_argument("--epochs", type=int, default=5)
    t.add_argument("--batch-size", type=int, default=64)
    t.add_argument("--optimizer", default=None, help=f"one of {sorted(_OPTIMIZERS)} (default: the model's)")
    t.add_argument("--lr", type=float, default=None, help="learning rate (default: the model's)")
    t.add_argument("--momentum", type=float, default=0.9, help="for sgd and rmsprop")
    t.add_argument("--weight-decay", type=float, default=0.0)
    t.add_argument("--schedule", default=None, help="none, cosine, step, onecycle, warmup-cosine (default: the model's)")
    t.add_argument("--augment", default="none", help="none, crop, crop+affine, flip")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--threads", type=int, default=0, help="OpenMP threads (default: all cores)")
    t.add_argument("--n-train", type=int, default=None, help="use only the first N training samples")
    t.add_argument("--out", default=None, help="folder for curves.png and checkpoint.npz (default: a new ./fastnn-runs/run-N)")
    t.add_argument("--overwrite", action="store_true", help="replace an existing checkpoint instead of refusing")
    t.add_argument("--no-save", action="store_true", help="write neither the curves PNG nor a checkpoint")
    t.add_argument("--checkpoint", default=None, help="checkpoint path (.npz), written after every epoch (default OUT/checkpoint.npz)")
    t.add_argument("--resume", default=None, help="continue from a checkpoint written by an earlier run")
    t.add_argument("--plot", default=None, help="training-curves PNG path (default OUT/curves.png)")
    t.add_argument("--quiet", action="store_true", help="no progress bars")
    t.set_defaults(func=cmd_train)
    b = sub.add_parser("bench", help="run the kernel benchmarks (compares with PyTorch when installed)")
    b.add_argument("--only", nargs="*", default=None, help="benchmark names, e.g. conv optim")
    b.add_argument("--quick", action="store_true", help="fewer shapes and repeats")
    b.set_defaults(func=cmd_bench)
    d = sub.add_parser("diagnose", help="weight-initialization report: per-layer activation statistics and histograms")
    d.add_argument("--depth", type=int, default=10, help="number of layers (default 10)")
    d.add_argument("--width", type=int, default=500, help="units per layer (default 500)")
    d.add_argument("--n", type=int, default=1000, help="number of random inputs (default 1000)")
    d.add_argument("--input", default="uniform", choices=["uniform", "normal"], help="input distribution: U[0,1) or N(0,1)")
    d.add_argument("--activations", default="tanh,relu", help="comma-separated (tanh, relu, sigmoid, leaky_relu, elu, linear)")
    d.add_argument("--inits", default="small_random,normal,xavier_normal,he_normal",
                   help="comma-separated fastnn.init names, or lsuv (data-dependent: fitted to the inputs)")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--out", default="fastnn-diagnose", help="folder for the histogram PNGs (default ./fastnn-diagnose)")
    d.add_argument("--no-plots", action="store_true", help="print the table only")
    d.set_defaults(func=cmd_diagnose)
    s = sub.add_parser("search", help="coarse-to-fine search of learning rate and weight decay")
    s.add_argument("--dataset", default="digits", choices=["digits", "mnist"])
    s.add_argument("--data", default=None, help="folder of the MNIST IDX files (for --dataset mnist)")
    s.add_argument("--model", default="mlp", help="model name (mlp)")
    s.add_argument("--stages", default="16:1,8:3,4:5", help="trials:epochs per stage, comma-separated")
    s.add_argument("--keep", type=float, default=0.3, help="fraction of best trials each stage narrows around")
    s.add_argument("--lr-range", default="1e-6:1e-1", help="lo:hi of the log-uniform learning rate")
    s.add_argument("--wd-range", default="1e-7:1e-2", help="lo:hi of the log-uniform weight decay")
    s.add_argument("--lr", type=float, default=0.05, help="baseline learning rate to compare with")
    s.add_argument("--momentum", type=float, default=0.9)
    s.add_argument("--batch-size", type=int, default=64)
    s.add_argument("--n-jobs", type=int, default=1, help="parallel trials (joblib loky processes)")
    s.add_argument("--n-train", type=int, default=None, help="use only the first N training samples")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--csv", default=None, help="write the trials to this CSV file")
    s.add_argument("--plot", default=None, help="save score-vs-hyper-parameter plots to this PNG")
    s.set_defaults(func=cmd_search)
    return p


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point of the `fastnn` script; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ValueError, TypeError, KeyError, FileNotFoundError, ImportError, RuntimeError) as e:
        if os.environ.get("FASTNN_DEBUG"):
            raise
        print(f"fastnn {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"fastnn {args.command}: interrupted", file=sys.stderr)
        return 130
