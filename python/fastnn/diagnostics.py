"""Diagnostics: per-layer activation statistics, dead units, gradient checks, the lecture's
weight-initialization experiment (`init_report`) and update-to-weight ratio summaries."""
from __future__ import annotations

import math
import os
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np

from . import functional as F
from . import init as I
from ._checks import as_float32, number, positive_int, rng_or_default
from .layers.activations import ELU, LeakyReLU, PReLU, ReLU, Sigmoid, Tanh
from .layers.linear import Linear
from .module import Module, Sequential

__all__ = [
    "activation_stats", "format_activation_stats", "dead_units", "gradient_check", "gradient_errors",
    "init_report", "format_init_report", "print_init_report", "plot_init_report",
    "update_ratios", "format_update_ratios",
]

Record = Dict[str, Any]

# Layers whose unit is "dead" when its output is never positive (y > 0 iff the input > 0).
RELU_FAMILY = (ReLU, LeakyReLU, PReLU, ELU)
SATURATION = 0.99   # tanh |y| > 0.99, sigmoid y < 0.01 or y > 0.99


# -- watching the layers of a model ----------------------------------------------------------
class _Watch:
    """Temporarily wraps `forward` of the leaf modules of a model to see their outputs, and
    puts the model in eval mode; both are undone on exit (each module's own mode restored)."""

    def __init__(self, model: Module, select: Callable[[Module], bool],
                 sink: Callable[[str, Module, np.ndarray], None]) -> None:
        if not isinstance(model, Module):
            raise TypeError(f"model: expected a fastnn Module, got {type(model).__name__}")
        self.model, self.select, self.sink = model, select, sink

    def __enter__(self) -> "_Watch":
        self.modes = [(m, m.training) for m in self.model.modules()]
        self.patched: List[Tuple[Module, bool, Any]] = []
        for name, m in self.model.named_modules():
            if any(True for _ in m.children()) or not self.select(m):
                continue
            had = "forward" in m.__dict__
            orig = m.__dict__.get("forward")
            bound = m.forward

            def forward(x: np.ndarray, _m: Module = m, _name: str = name, _f: Any = bound) -> np.ndarray:
                y = _f(x)
                self.sink(_name or type(_m).__name__, _m, np.asarray(y))
                return y

            object.__setattr__(m, "forward", forward)
            self.patched.append((m, had, orig))
        self.model.eval()
        return self

    def __exit__(self, *exc: Any) -> None:
        for m, had, orig in self.patched:
            if had:
                object.__setattr__(m, "forward", orig)
            else:
                del m.__dict__["forward"]
        for m, mode in self.modes:
            object.__setattr__(m, "training", mode)


def _positive_units(y: np.ndarray) -> np.ndarray:
    """Per sample and unit, whether the unit was positive: (N, units) bool. A unit is a
    feature column of (N, F) or a channel of (N, C, ...) (positive anywhere in the plane)."""
    if y.ndim == 1:
        return (y > 0)[:, None]
    pos = y > 0
    if y.ndim > 2:
        pos = np.any(pos.reshape(y.shape[0], y.shape[1], -1), axis=2)
    return pos


# -- activation statistics -------------------------------------------------------------------
def activation_stats(model: Module, x: np.ndarray, bins: int = 50) -> List[Record]:
    """Run `model` on the batch x in eval mode and describe every leaf layer's output.

    Returns one record per layer call, in execution order: {"name" (e.g. "3" or "1.0"),
    "type", "shape", "mean", "std", "min", "max", "dead_fraction" (ReLU family: fraction of
    units never positive over the batch; a unit is a feature of (N, F) or a channel of
    (N, C, H, W); None for other layers), "saturated_fraction" (Tanh: |y| > 0.99, Sigmoid:
    y < 0.01 or y > 0.99, fraction of values; None for other layers), "histogram":
    (counts, bin_edges)}. The model's training/eval modes are restored afterwards.
    """
    bins = positive_int(bins, "bins")
    x = as_float32(x, "x", min_ndim=1)
    records: List[Record] = []

    def sink(name: str, m: Module, y: np.ndarray) -> None:
        y64 = y.astype(np.float64, copy=False)
        finite = y64[np.isfinite(y64)]
        rec: Record = {"name": name, "type": type(m).__name__, "shape": tuple(y.shape),
                       "mean": float(y64.mean()) if y64.size else float("nan"),
                       "std": float(y64.std()) if y64.size else float("nan"),
                       "min": float(y64.min()) if y64.size else float("nan"),
                       "max": float(y64.max()) if y64.size else float("nan"),
                       "dead_fraction": None, "saturated_fraction": None}
        if isinstance(m, RELU_FAMILY) and y.size:
            rec["dead_fraction"] = float(np.mean(~_positive_units(y).any(axis=0)))
        if isinstance(m, Tanh) and y.size:
            rec["saturated_fraction"] = float(np.mean(np.abs(y64) > SATURATION))
        elif isinstance(m, Sigmoid) and y.size:
            rec["saturated_fraction"] = float(np.mean((y64 < 1 - SATURATION) | (y64 > SATURATION)))
        rec["histogram"] = np.histogram(finite, bins=bins) if finite.size else (np.zeros(bins, np.int64), np.linspace(0, 1, bins + 1))
        records.append(rec)

    with _Watch(model, lambda m: True, sink):
        model(x)
    return records


def format_activation_stats(records: Sequence[Record]) -> str:
    """A printable table of `activation_stats` records."""
    lines = [f"{'layer':<10} {'type':<12} {'shape':<18} {'mean':>10} {'std':>10} {'dead':>7} {'saturated':>9}"]
    for r in records:
        dead = "" if r["dead_fraction"] is None else f"{r['dead_fraction']:.1%}"
        sat = "" if r["saturated_fraction"] is None else f"{r['saturated_fraction']:.1%}"
        lines.append(f"{r['name']:<10} {r['type']:<12} {str(r['shape']):<18} {r['mean']:>10.4g} "
                     f"{r['std']:>10.4g} {dead:>7} {sat:>9}")
    return "\n".join(lines)


def _batches(data: Any) -> Iterable[np.ndarray]:
    from .data import DataLoader
    if isinstance(data, np.ndarray):
        for i in range(0, data.shape[0], 256):
            yield data[i:i + 256]
    elif isinstance(data, DataLoader):
        # In order and without the transform: the dataset as stored, and the loader's random
        # generator (which drives training shuffles) is not consumed.
        for i in range(0, data.x.shape[0], data.batch_size):
            yield data.x[i:i + data.batch_size]
    else:
        for b in data:
            yield b[0] if isinstance(b, (tuple, list)) else b


def dead_units(model: Module, loader: Any) -> List[Record]:
    """Count, for every unit of every ReLU-family layer, on how many samples it was positive.

    loader: a DataLoader (read in order, without its transform), an iterable of (x, y) or x
    batches, or an array x (N, ...). Runs in eval mode (modes restored afterwards). Returns one
    record per ReLU-family layer: {"name", "type", "units", "samples", "counts" (int64 (units,):
    samples on which the unit was positive; for (N, C, H, W) outputs a channel counts once per
    sample where it is positive anywhere), "dead" (indices of units never positive),
    "dead_fraction"}.
    """
    acc: Dict[str, Record] = {}
    order: List[str] = []

    def sink(name: str, m: Module, y: np.ndarray) -> None:
        pos = _positive_units(y)
        r = acc.get(name)
        if r is None:
            r = acc[name] = {"name": name, "type": type(m).__name__, "units": pos.shape[1],
                             "samples": 0, "counts": np.zeros(pos.shape[1], np.int64)}
            order.append(name)
        if pos.shape[1] != r["units"]:
            raise ValueError(f"dead_units: layer {name} gave {pos.shape[1]} units, earlier {r['units']}")
        r["counts"] += pos.sum(axis=0)
        r["samples"] += pos.shape[0]

    with _Watch(model, lambda m: isinstance(m, RELU_FAMILY), sink):
        seen = 0
        for xb in _batches(loader):
            model(as_float32(xb, "x", min_ndim=1))
            seen += 1
    if seen == 0:
        raise ValueError("loader: expected at least one batch, got none")
    out = []
    for name in order:
        r = acc[name]
        dead = np.flatnonzero(r["counts"] == 0)
        r["dead"] = dead
        r["dead_fraction"] = float(dead.size / max(r["units"], 1))
        out.append(r)
    return out


# -- gradient check --------------------------------------------------------------------------
_U32 = 2.0 ** -24   # float32 unit round-off
_GRAD_FLOOR = 1e-2  # entries below 1% of a tensor's largest gradient: compared against that 1%


def gradient_errors(module: Module, x: np.ndarray, eps: float = 1e-3, dy: Optional[np.ndarray] = None,
                    rng: Any = None, max_entries: Optional[int] = None) -> Dict[str, float]:
    """Max relative error per tensor ("x" and every parameter name) between the module's
    backward and centred differences of f = sum(module(x) * dy) (see gradient_check)."""
    if not isinstance(module, Module):
        raise TypeError(f"module: expected a fastnn Module, got {type(module).__name__}")
    eps = number(eps, "eps", lo=0.0, lo_open=True)
    if max_entries is not None:
        max_entries = positive_int(max_entries, "max_entries")
    rng = rng_or_default(rng)
    x32 = np.array(as_float32(x, "x", min_ndim=1), copy=True)
    params = module.named_parameters()
    saved_state = module.state_dict()
    saved_grads = [p.grad.copy() for _, p in params]
    try:
        out = np.asarray(module(x32))
        if dy is None:
            dy32 = rng.standard_normal(out.shape).astype(np.float32)
        else:
            dy32 = as_float32(dy, "dy", shape=out.shape)
        dy64 = dy32.astype(np.float64).ravel()
        module.zero_grad()
        dx = module.backward(dy32)
        if np.shape(dx) != x32.shape:
            raise ValueError(f"gradient_check: backward returned shape {np.shape(dx)}, expected {x32.shape}")
        tensors = [("x", x32, np.asarray(dx, np.float64))]
        tensors += [(n, p.data, p.grad.astype(np.float64)) for n, p in params]

        def terms() -> np.ndarray:
            return np.asarray(module(x32), np.float64).ravel() * dy64

        errors: Dict[str, float] = {}
        for name, buf, analytic in tensors:
            flat, a_flat = buf.reshape(-1), analytic.reshape(-1)
            if flat.size and not np.shares_memory(flat, buf):
                raise RuntimeError(f"gradient_check: {name} is not contiguous")
            idx = np.arange(flat.size)
            if max_entries is not None and flat.size > max_entries:
                idx = np.sort(rng.choice(flat.size, max_entries, replace=False))
            a = a_flat[idx]
            num = np.empty(idx.size)
            res = np.empty(idx.size)
            for j, i in enumerate(idx):
                orig = flat[i]
                flat[i] = orig + np.float32(eps)
                hi, tp = float(flat[i]), terms()
                flat[i] = orig - np.float32(eps)
                lo, tm = float(flat[i]), terms()
                flat[i] = orig
                step = hi - lo
                num[j] = (tp.sum() - tm.sum()) / step
                # float32 resolution of this difference: the round-off of the outputs that moved
                moved = tp != tm
                res[j] = _U32 * float(np.abs(tp[moved]).sum() + np.abs(tm[moved]).sum()) / step
            if idx.size:
                scale = float(np.max(np.abs(a) + np.abs(num)))
                tiny = np.maximum(np.maximum(4.0 * res, _GRAD_FLOOR * scale), 1e-30)
                errors[name] = float(np.max(np.abs(a - num) / np.maximum(np.abs(a) + np.abs(num), tiny)))
            else:
                errors[name] = 0.0
        return errors
    finally:
        module.load_state_dict(saved_state, strict=False)
        for (_, p), g in zip(params, saved_grads):
            p.grad = g


def gradient_check(module: Module, x: np.ndarray, eps: float = 1e-3, dy: Optional[np.ndarray] = None,
                   rng: Any = None, max_entries: Optional[int] = None) -> float:
    """Max relative error between `module.backward` and centred differences, over the input
    and every parameter.

    f = sum(module(x) * dy) with dy ~ N(0, 1) (drawn from rng) unless given; each entry w is
    moved to fl32(w ± eps) and df/dw ≈ (f+ - f-) / (w+ - w-), f summed in float64 from the
    module's float32 outputs. Error per entry: |a - n| / max(|a| + |n|, tiny), where tiny is
    the larger of the float32 resolution of that difference (4·2⁻²⁴·Σ|moved outputs·dy| / step)
    and 1% of the tensor's largest |a| + |n| (float32 cannot resolve smaller gradients to a
    useful relative accuracy, so they get an absolute tolerance). Expected level with
    eps = 1e-3 and O(1) values: about 1e-5 to 1e-3 for a single smooth layer, up to ~2e-2 for
    a stack of layers (float32 round-off of the longer sums; eps = 1e-2 brings smooth stacks
    back to ~1e-3, the O(eps²) truncation error being smaller); a wrong backward gives 3e-2
    to 1. Kinks (ReLU at 0, max-pool ties) within eps of an entry can give larger errors,
    and random layers (Dropout in training mode) must be put in eval mode first. Buffers
    (running statistics), parameters and gradients are restored afterwards. max_entries:
    check at most that many randomly chosen entries per tensor (default: all).
    """
    errs = gradient_errors(module, x, eps=eps, dy=dy, rng=rng, max_entries=max_entries)
    return max(errs.values()) if errs else 0.0


# -- the lecture's initialization experiment -------------------------------------------------
_ACTIVATIONS: Dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "tanh": F.tanh, "relu": F.relu, "sigmoid": F.sigmoid, "leaky_relu": F.leaky_relu,
    "elu": F.elu, "linear": lambda h: h,
}
_HIST_RANGE = {"tanh": (-1.0, 1.0), "sigmoid": (0.0, 1.0)}


def _init_name(init: Any) -> str:
    return init if isinstance(init, str) else getattr(init, "__name__", type(init).__name__)


_ACTIVATION_LAYERS: Dict[str, Callable[[], Module]] = {
    "tanh": Tanh, "relu": ReLU, "sigmoid": Sigmoid, "leaky_relu": LeakyReLU, "elu": ELU,
}


def _lsuv_weights(x: np.ndarray, depth: int, act: str, rng: np.random.Generator) -> List[np.ndarray]:
    """init_report's `depth` (width, width) weights after fastnn.init.lsuv on x (n, width)."""
    width = x.shape[1]
    layers: List[Module] = []
    for _ in range(depth):
        layers.append(Linear(width, width, bias=False, init="zeros"))
        if act in _ACTIVATION_LAYERS:
            layers.append(_ACTIVATION_LAYERS[act]())
    model = Sequential(*layers)
    I.lsuv(model, x, rng=rng)
    return [m.weight.data for m in layers if isinstance(m, Linear)]


def init_report(depth: int = 10, width: int = 500, n: int = 1000,
                activations: Sequence[str] = ("tanh", "relu"),
                inits: Sequence[Any] = ("small_random", "normal", "xavier_normal", "he_normal"),
                input: str = "uniform", rng: Any = None, bins: int = 50) -> List[Record]:
    """The lecture's experiment: push n random inputs through `depth` fully connected layers
    of `width` units (no biases), for each activation and weight initializer.

    Input x (n, width) is U[0, 1) (the lecture's np.random.rand; input="uniform") or N(0, 1)
    (input="normal"); every layer draws W (width, width) with the initializer (a name from
    fastnn.init — "normal" is the unit normal — or a callable f(shape, rng=)) and computes
    h = act(h Wᵀ) with fastnn's kernels. "lsuv" is the data-dependent one: the whole net gets
    fastnn.init.lsuv on this x (orthogonal start, then each layer scaled until its
    pre-activation variance over the batch is 1 ± 0.05).
    Returns one record per (activation, init, layer):
    {"activation", "init", "layer" (1..depth), "mean", "std", "histogram": (counts, bin_edges)}
    (tanh histograms over [-1, 1], sigmoid over [0, 1], others over the data range).
    """
    depth = positive_int(depth, "depth")
    width = positive_int(width, "width")
    n = positive_int(n, "n")
    bins = positive_int(bins, "bins")
    if isinstance(activations, str):
        activations = (activations,)
    if isinstance(inits, str) or callable(inits):
        inits = (inits,)
    for a in activations:
        if a not in _ACTIVATIONS:
            raise ValueError(f"activations: expected names from {sorted(_ACTIVATIONS)}, got {a!r}")
    init_fns = [None if i == "lsuv" else I.get(i) for i in inits]
    if input not in ("uniform", "normal"):
        raise ValueError(f"input: expected 'uniform' or 'normal', got {input!r}")
    rng = rng_or_default(rng)
    x = (rng.random((n, width)) if input == "uniform" else rng.standard_normal((n, width))).astype(np.float32)
    # One seed per configuration, so each is reproducible whatever else is run with it.
    seeds = rng.integers(0, 2 ** 63, size=(len(activations), len(init_fns)))
    records: List[Record] = []
    for ai, act in enumerate(activations):
        f_act = _ACTIVATIONS[act]
        for ii, (init, f_init) in enumerate(zip(inits, init_fns)):
            sub = np.random.default_rng(int(seeds[ai, ii]))
            weights = (_lsuv_weights(x, depth, act, sub) if f_init is None else
                       (np.asarray(f_init((width, width), rng=sub), np.float32) for _ in range(depth)))
            h = x
            for layer, w in enumerate(weights, start=1):
                h = f_act(F.linear(h, w))
                h64 = h.astype(np.float64)
                finite = h64[np.isfinite(h64)]
                rng_h = _HIST_RANGE.get(act)
                if rng_h is None and finite.size:
                    rng_h = (float(finite.min()), float(max(finite.max(), finite.min() + 1e-12)))
                hist = np.histogram(finite, bins=bins, range=rng_h)
                records.append({"activation": act, "init": _init_name(init), "layer": layer,
                                "mean": float(h64.mean()), "std": float(h64.std()), "histogram": hist})
    return records


def _configs(records: Sequence[Record]) -> List[Tuple[str, str]]:
    seen: List[Tuple[str, str]] = []
    for r in records:
        key = (r["activation"], r["init"])
        if key not in seen:
            seen.append(key)
    return seen


def format_init_report(records: Sequence[Record]) -> str:
    """A compact table: one block per (activation, init), rows mean/std, a column per layer."""
    if not records:
        return "(no records)"
    depth = max(r["layer"] for r in records)
    head = f"{'activation':<11}{'init':<15}{'':<5}" + "".join(f"{'L' + str(l):>10}" for l in range(1, depth + 1))
    lines = [head, "-" * len(head)]
    for act, init in _configs(records):
        rows = {r["layer"]: r for r in records if r["activation"] == act and r["init"] == init}
        for stat in ("mean", "std"):
            label = (f"{act:<11}{init:<15}" if stat == "mean" else " " * 26) + f"{stat:<5}"
            lines.append(label + "".join(f"{rows[l][stat]:>10.3g}" if l in rows else f"{'':>10}"
                                         for l in range(1, depth + 1)))
    return "\n".join(lines)


def print_init_report(records: Sequence[Record]) -> None:
    """Print format_init_report(records)."""
    print(format_init_report(records))


def plot_init_report(records: Sequence[Record], path: Union[str, "os.PathLike[str]"]) -> List[str]:
    """Histogram PNGs of `init_report` records, as the lecture shows them.

    path ending in ".png": one grid (a row per (activation, init), a column per layer);
    otherwise a folder (created if needed) receiving one PNG per (activation, init) named
    "init_<activation>_<init>.png" (per-layer histograms plus the mean/std per layer).
    Returns the paths written. Needs matplotlib (the `plot` extra).
    """
    from ._plot import pyplot
    if not records:
        raise ValueError("records: expected init_report records, got none")
    if any("histogram" not in r for r in records):
        raise ValueError("records: expected init_report records with a 'histogram' entry")
    plt = pyplot()
    path = os.fspath(path)
    configs = _configs(records)
    depth = max(r["layer"] for r in records)

    def draw(ax: Any, r: Record) -> None:
        counts, edges = r["histogram"]
        ax.stairs(counts, edges, fill=True, color="tab:blue")
        if r["activation"] in ("relu", "leaky_relu", "elu") and len(counts) > 1 and counts[1:].max() > 0:
            # half the values sit in the bin at zero: clip it so the positive part shows
            ax.set_ylim(0, 1.15 * counts[1:].max())
        ax.set_yticks([])
        ax.tick_params(labelsize=6)

    written: List[str] = []
    if path.lower().endswith(".png"):
        fig, axes = plt.subplots(len(configs), depth, figsize=(1.6 * depth, 1.3 * len(configs)), squeeze=False)
        for row, (act, init) in enumerate(configs):
            for r in records:
                if (r["activation"], r["init"]) == (act, init):
                    ax = axes[row, r["layer"] - 1]
                    draw(ax, r)
                    ax.set_title(f"L{r['layer']} std {r['std']:.2g}", fontsize=7)
            axes[row, 0].set_ylabel(f"{act}\n{init}", fontsize=7)
        fig.tight_layout()
        fig.savefig(path, dpi=90)
        plt.close(fig)
        return [path]
    os.makedirs(path, exist_ok=True)
    for act, init in configs:
        rows = sorted((r for r in records if (r["activation"], r["init"]) == (act, init)), key=lambda r: r["layer"])
        fig, axes = plt.subplots(2, depth, figsize=(1.8 * depth, 4.2), squeeze=False,
                                 gridspec_kw={"height_ratios": [1, 1.2]})
        for r in rows:
            ax = axes[0, r["layer"] - 1]
            draw(ax, r)
            ax.set_title(f"layer {r['layer']}", fontsize=8)
        for ax in axes[1, 1:]:
            ax.remove()
        big = fig.add_subplot(2, 1, 2)
        axes[1, 0].remove()
        layers = [r["layer"] for r in rows]
        big.plot(layers, [r["mean"] for r in rows], "o-", label="mean")
        big.plot(layers, [r["std"] for r in rows], "s-", label="std")
        big.set_xlabel("layer"); big.set_xticks(layers); big.legend(fontsize=8)
        big.set_title(f"{act}, {init}: activation mean and std per layer", fontsize=9)
        fig.tight_layout()
        out = os.path.join(path, f"init_{act}_{init}.png")
        fig.savefig(out, dpi=90)
        plt.close(fig)
        written.append(out)
    return written


# -- update-to-weight ratios -----------------------------------------------------------------
def update_ratios(history: Any, low: float = 1e-4, high: float = 1e-2) -> List[Record]:
    """Summarize the update-to-weight ratios ||Δw|| / ||w|| a Trainer recorded with
    `track_update_ratio=True` (History.update_ratio: name -> mean per epoch).

    history: a History or a dict name -> list of per-epoch ratios. Returns one record per
    parameter: {"name", "ratio" (last epoch), "log10", "per_epoch", "status"}: "low" below
    `low`, "high" above `high`, else "ok" (the rule of thumb is about 1e-3).
    """
    ratios = getattr(history, "update_ratio", history)
    if not isinstance(ratios, dict):
        raise TypeError(f"history: expected a History or a dict name -> ratios, got {type(history).__name__}")
    if not ratios:
        raise ValueError("history: no update ratios recorded (use Trainer(..., track_update_ratio=True))")
    out = []
    for name, vals in ratios.items():
        vals = [float(v) for v in vals]
        if not vals:
            continue
        last = vals[-1]
        status = "low" if last < low else "high" if last > high else "ok"
        out.append({"name": name, "ratio": last, "log10": math.log10(last) if last > 0 else float("-inf"),
                    "per_epoch": vals, "status": status})
    return out


def format_update_ratios(records: Sequence[Record]) -> str:
    """A printable table of `update_ratios` records."""
    lines = [f"{'parameter':<20} {'ratio':>10} {'log10':>7}  status"]
    for r in records:
        lines.append(f"{r['name']:<20} {r['ratio']:>10.3g} {r['log10']:>7.2f}  {r['status']}")
    return "\n".join(lines)
