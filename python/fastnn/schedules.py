"""Learning-rate (and momentum) schedules as pure callables s(t) of the optimizer step t = 0, 1, ...,
plus `per_epoch` and the LR range test `lr_find`.

Values equal torch.optim.lr_scheduler's schedulers of the same name and arguments step for
step (the scheduler's value after t calls of `scheduler.step()`). Any optimizer accepts a
schedule wherever it accepts `lr=` (and `momentum=` for SGD/RMSprop).
"""
from __future__ import annotations

import bisect
import inspect
import math
from typing import Any, Callable, List, Optional, Sequence

import numpy as np

from ._checks import number, positive_int

__all__ = ["Schedule", "Constant", "StepLR", "MultiStepLR", "LinearDecay", "InverseTime",
           "Clipped", "Lambda", "ExponentialLR", "CosineAnnealingLR", "CyclicLR", "OneCycleLR",
           "Warmup", "Ramp", "per_epoch", "lr_find", "LRFinderResult"]


def _step(t: Any) -> int:
    if isinstance(t, (bool, np.bool_)) or not isinstance(t, (int, np.integer)):
        if isinstance(t, (float, np.floating)) and float(t).is_integer():
            t = int(t)
        else:
            raise TypeError(f"t: expected an integer step, got {type(t).__name__} {t!r}")
    if t < 0:
        raise ValueError(f"t: expected a step >= 0, got {t}")
    return int(t)


def _schedule_arg(s: Any, name: str) -> Callable[[int], float]:
    if isinstance(s, (int, float)) and not isinstance(s, bool):
        return Constant(float(s))
    if not callable(s):
        raise TypeError(f"{name}: expected a schedule (a callable t -> value) or a number, got {type(s).__name__}")
    return s


class Schedule:
    """Base class: `s(t) -> float` for the step t = 0, 1, 2, ...; `values(n)`, `plot(n)`."""

    def __call__(self, t: int) -> float:
        return float(self.value(_step(t)))

    def value(self, t: int) -> float:
        raise NotImplementedError(f"{type(self).__name__} must define value(t) (abstract in Schedule)")

    def values(self, n: int) -> np.ndarray:
        """The first n values (float64 array of shape (n,))."""
        n = positive_int(n, "n", minimum=0)
        return np.array([self(t) for t in range(n)], dtype=np.float64)

    def plot(self, n: int, path: Any = None, ax: Any = None, log: bool = False) -> Any:
        """Plot the first n values; saves to `path` if given; returns the matplotlib Figure."""
        from ._plot import pyplot
        plt = pyplot()
        if ax is None:
            fig, ax = plt.subplots(figsize=(6, 3.5))
        else:
            fig = ax.figure
        ax.plot(np.arange(n), self.values(n))
        ax.set_xlabel("step")
        ax.set_ylabel("value")
        ax.set_title(repr(self), fontsize=8)
        if log:
            ax.set_yscale("log")
        ax.grid(True, alpha=0.3)
        fig.tight_layout()
        if path is not None:
            fig.savefig(path)
        return fig

    def __repr__(self) -> str:
        args = []
        for name in list(inspect.signature(type(self).__init__).parameters)[1:]:
            if hasattr(self, name):
                args.append(f"{name}={getattr(self, name)!r}")
        return f"{type(self).__name__}({', '.join(args)})"


class Constant(Schedule):
    """s(t) = value."""

    def __init__(self, value: float) -> None:
        self.value_ = number(value, "value")

    def value(self, t: int) -> float:
        return self.value_

    def __repr__(self) -> str:
        return f"Constant({self.value_!r})"


class StepLR(Schedule):
    """lr0 · gamma^(t // step_size) (torch StepLR)."""

    def __init__(self, lr0: float, step_size: int, gamma: float = 0.1) -> None:
        self.lr0 = number(lr0, "lr0")
        self.step_size = positive_int(step_size, "step_size")
        self.gamma = number(gamma, "gamma")

    def value(self, t: int) -> float:
        return self.lr0 * self.gamma ** (t // self.step_size)


class MultiStepLR(Schedule):
    """lr0 · gamma^(number of milestones <= t) (torch MultiStepLR; repeated milestones count twice)."""

    def __init__(self, lr0: float, milestones: Sequence[int], gamma: float = 0.1) -> None:
        self.lr0 = number(lr0, "lr0")
        self.milestones = sorted(positive_int(m, "milestones", minimum=0) for m in milestones)
        self.gamma = number(gamma, "gamma")

    def value(self, t: int) -> float:
        return self.lr0 * self.gamma ** bisect.bisect_right(self.milestones, t)


class LinearDecay(Schedule):
    """(1 - t/tau)·lr0 + (t/tau)·lr_tau for t < tau, then lr_tau (Goodfellow et al. 8.3.1)."""

    def __init__(self, lr0: float, lr_tau: float, tau: int) -> None:
        self.lr0 = number(lr0, "lr0")
        self.lr_tau = number(lr_tau, "lr_tau")
        self.tau = positive_int(tau, "tau")

    def value(self, t: int) -> float:
        if t >= self.tau:
            return self.lr_tau
        a = t / self.tau
        return (1.0 - a) * self.lr0 + a * self.lr_tau


class InverseTime(Schedule):
    """lr0 / (1 + decay·t)."""

    def __init__(self, lr0: float, decay: float) -> None:
        self.lr0 = number(lr0, "lr0")
        self.decay = number(decay, "decay", lo=0.0)

    def value(self, t: int) -> float:
        return self.lr0 / (1.0 + self.decay * t)


class Clipped(Schedule):
    """min(max_value, s(t)) (and max(min_value, ·) if given), e.g. Clipped(Lambda(lambda t: 100 / max(t, 1)), 0.1)."""

    def __init__(self, s: Callable[[int], float], max_value: float, min_value: Optional[float] = None) -> None:
        self.s = _schedule_arg(s, "s")
        self.max_value = number(max_value, "max_value")
        self.min_value = None if min_value is None else number(min_value, "min_value", hi=self.max_value)

    def value(self, t: int) -> float:
        v = min(self.max_value, float(self.s(t)))
        return v if self.min_value is None else max(self.min_value, v)


class Lambda(Schedule):
    """s(t) = fn(t) (torch's LambdaLR multiplies the initial lr by fn(t); here fn gives the value)."""

    def __init__(self, fn: Callable[[int], float]) -> None:
        if not callable(fn):
            raise TypeError(f"fn: expected a callable t -> value, got {type(fn).__name__}")
        self.fn = fn

    def value(self, t: int) -> float:
        return float(self.fn(t))


class ExponentialLR(Schedule):
    """lr0 · gamma^t (torch ExponentialLR)."""

    def __init__(self, lr0: float, gamma: float) -> None:
        self.lr0 = number(lr0, "lr0")
        self.gamma = number(gamma, "gamma")

    def value(self, t: int) -> float:
        return self.lr0 * self.gamma ** t


class CosineAnnealingLR(Schedule):
    """eta_min + (lr0 - eta_min)(1 + cos(π t / T_max)) / 2, the closed form of torch's
    CosineAnnealingLR (SGDR without restarts); past T_max it keeps oscillating, as PyTorch's."""

    def __init__(self, lr0: float, T_max: int, eta_min: float = 0.0) -> None:
        self.lr0 = number(lr0, "lr0")
        self.T_max = positive_int(T_max, "T_max")
        self.eta_min = number(eta_min, "eta_min")

    def value(self, t: int) -> float:
        return self.eta_min + (self.lr0 - self.eta_min) * (1.0 + math.cos(math.pi * t / self.T_max)) / 2.0


class CyclicLR(Schedule):
    """Cyclical learning rate (Smith 2017), as torch CyclicLR: triangular, triangular2 (the
    amplitude halves each cycle) or exp_range (amplitude · gamma^t); or a custom
    `scale_fn(x)` evaluated on the cycle number or on the step (`scale_mode`)."""

    def __init__(self, base_lr: float, max_lr: float, step_size_up: int = 2000,
                 step_size_down: Optional[int] = None, mode: str = "triangular", gamma: float = 1.0,
                 scale_fn: Optional[Callable[[float], float]] = None,
                 scale_mode: str = "cycle") -> None:
        self.base_lr = number(base_lr, "base_lr")
        self.max_lr = number(max_lr, "max_lr")
        self.step_size_up = positive_int(step_size_up, "step_size_up")
        self.step_size_down = None if step_size_down is None else positive_int(step_size_down, "step_size_down")
        if scale_fn is None and mode not in ("triangular", "triangular2", "exp_range"):
            raise ValueError(f"mode: expected 'triangular', 'triangular2' or 'exp_range', got {mode!r}")
        if scale_mode not in ("cycle", "iterations"):
            raise ValueError(f"scale_mode: expected 'cycle' or 'iterations', got {scale_mode!r}")
        self.mode = mode
        self.gamma = number(gamma, "gamma")
        self.scale_fn = scale_fn
        up = float(self.step_size_up)
        down = float(self.step_size_down) if self.step_size_down is not None else up
        self._total = up + down
        self._ratio = up / self._total
        if scale_fn is not None:
            self._fn, self._mode = scale_fn, scale_mode
        elif mode == "triangular":
            self._fn, self._mode = (lambda x: 1.0), "cycle"
        elif mode == "triangular2":
            self._fn, self._mode = (lambda x: 1 / (2.0 ** (x - 1))), "cycle"
        else:
            self._fn, self._mode = (lambda x: self.gamma ** x), "iterations"
        self.scale_mode = scale_mode

    def value(self, t: int) -> float:
        cycle = math.floor(1 + t / self._total)
        x = 1.0 + t / self._total - cycle
        scale = x / self._ratio if x <= self._ratio else (x - 1) / (self._ratio - 1)
        height = (self.max_lr - self.base_lr) * scale
        return self.base_lr + height * self._fn(cycle if self._mode == "cycle" else t)


class OneCycleLR(Schedule):
    """1cycle policy (Smith & Topin 2018), as torch OneCycleLR: from max_lr/div_factor up to
    max_lr over pct_start of total_steps, then down to initial/final_div_factor (cos or
    linear); three_phase adds PyTorch's symmetric descent before the final annihilation.
    Like PyTorch, t may not exceed total_steps. `momentum_schedule()` gives the matching
    inverse momentum cycle."""

    def __init__(self, max_lr: float, total_steps: int, pct_start: float = 0.3,
                 anneal_strategy: str = "cos", div_factor: float = 25.0,
                 final_div_factor: float = 1e4, three_phase: bool = False) -> None:
        self.max_lr = number(max_lr, "max_lr", lo=0.0)
        self.total_steps = positive_int(total_steps, "total_steps")
        self.pct_start = number(pct_start, "pct_start", lo=0.0, hi=1.0)
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(f"anneal_strategy: expected 'cos' or 'linear', got {anneal_strategy!r}")
        self.anneal_strategy = anneal_strategy
        self.div_factor = number(div_factor, "div_factor", lo=0.0, lo_open=True)
        self.final_div_factor = number(final_div_factor, "final_div_factor", lo=0.0, lo_open=True)
        self.three_phase = bool(three_phase)
        initial = self.max_lr / self.div_factor
        self._values = {"initial": initial, "max": self.max_lr, "min": initial / self.final_div_factor}
        n = self.total_steps
        if self.three_phase:
            self._phases = [(float(self.pct_start * n) - 1, "initial", "max"),
                            (float(2 * self.pct_start * n) - 2, "max", "initial"),
                            (n - 1, "initial", "min")]
        else:
            self._phases = [(float(self.pct_start * n) - 1, "initial", "max"),
                            (n - 1, "max", "min")]

    def _anneal(self, start: float, end: float, pct: float) -> float:
        if self.anneal_strategy == "cos":
            return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)
        return (end - start) * pct + start

    def _phase(self, t: int, values: dict) -> float:
        if t > self.total_steps:
            raise ValueError(f"t: OneCycleLR has total_steps={self.total_steps}, got step {t}")
        start_step = 0.0
        for i, (end_step, a, b) in enumerate(self._phases):
            if t <= end_step or i == len(self._phases) - 1:
                pct = (t - start_step) / (end_step - start_step)
                return self._anneal(values[a], values[b], pct)
            start_step = end_step
        raise AssertionError("unreachable")

    def value(self, t: int) -> float:
        return self._phase(t, self._values)

    def momentum_schedule(self, base_momentum: float = 0.85, max_momentum: float = 0.95) -> "Schedule":
        """The momentum cycle torch's OneCycleLR applies alongside (max -> base -> max)."""
        vals = {"initial": float(max_momentum), "max": float(base_momentum), "min": float(max_momentum)}
        return Lambda(lambda t: self._phase(_step(t), vals))


class Warmup(Schedule):
    """s(t)·(start_factor + (1 - start_factor)·t/steps) for t < steps, then s(t)
    (torch's LinearLR(start_factor, 1.0, steps) chained with s)."""

    def __init__(self, s: Any, steps: int, start_factor: float = 0.0) -> None:
        self.s = _schedule_arg(s, "s")
        self.steps = positive_int(steps, "steps")
        self.start_factor = number(start_factor, "start_factor", lo=0.0, hi=1.0)

    def value(self, t: int) -> float:
        v = float(self.s(t))
        if t < self.steps:
            v *= self.start_factor + (1.0 - self.start_factor) * t / self.steps
        return v


class Ramp(Schedule):
    """Linear from `start` at t=0 to `end` at t=steps, then `end` (e.g. momentum 0.5 -> 0.99)."""

    def __init__(self, start: float, end: float, steps: int) -> None:
        self.start = number(start, "start")
        self.end = number(end, "end")
        self.steps = positive_int(steps, "steps")

    def value(self, t: int) -> float:
        if t >= self.steps:
            return self.end
        return self.start + (self.end - self.start) * t / self.steps


class _PerEpoch(Schedule):
    def __init__(self, s: Callable[[int], float], steps_per_epoch: int) -> None:
        self.s = _schedule_arg(s, "s")
        self.steps_per_epoch = positive_int(steps_per_epoch, "steps_per_epoch")

    def value(self, t: int) -> float:
        return float(self.s(t // self.steps_per_epoch))

    def __repr__(self) -> str:
        return f"per_epoch({self.s!r}, steps_per_epoch={self.steps_per_epoch})"


def per_epoch(s: Callable[[int], float], steps_per_epoch: int) -> Schedule:
    """An epoch-indexed schedule as a step-indexed one: value at step t is s(t // steps_per_epoch)."""
    return _PerEpoch(s, steps_per_epoch)


# -- LR range test ------------------------------------------------------------------------------
class LRFinderResult:
    """Result of `lr_find`: `.lrs` and `.losses` (smoothed, one per step taken; float64 arrays
    of the same length), `.raw_losses`, `.suggestion` (a learning rate), `.plot(path=None)`."""

    def __init__(self, lrs: List[float], losses: List[float], raw_losses: List[float],
                 suggestion: float, diverged: bool) -> None:
        self.lrs = np.asarray(lrs, np.float64)
        self.losses = np.asarray(losses, np.float64)
        self.raw_losses = np.asarray(raw_losses, np.float64)
        self.suggestion = float(suggestion)
        self.diverged = bool(diverged)

    def plot(self, path: Any = None, ax: Any = None) -> Any:
        """Smoothed loss against the learning rate (log x), the suggestion marked; returns the Figure."""
        from ._plot import pyplot
        plt = pyplot()
        if ax is None:
            fig, ax = plt.subplots(figsize=(6, 4))
        else:
            fig = ax.figure
        ax.plot(self.lrs, self.raw_losses, color="0.75", lw=0.8, label="loss")
        ax.plot(self.lrs, self.losses, lw=1.5, label="smoothed")
        ax.axvline(self.suggestion, color="r", ls="--", label=f"suggestion {self.suggestion:.2g}")
        ax.set_xscale("log")
        ax.set_xlabel("learning rate")
        ax.set_ylabel("loss")
        finite = self.losses[np.isfinite(self.losses)]
        if finite.size:
            lo = float(finite.min())
            ax.set_ylim(lo - 0.05 * abs(lo), min(float(finite.max()), 4 * max(lo, 1e-12)) * 1.05 + 1e-12)
        ax.legend()
        ax.grid(True, which="both", alpha=0.3)
        fig.tight_layout()
        if path is not None:
            fig.savefig(path)
        return fig

    def __repr__(self) -> str:
        return (f"LRFinderResult(steps={len(self.lrs)}, suggestion={self.suggestion:.3g}, "
                f"diverged={self.diverged})")


def _suggest(lrs: np.ndarray, losses: np.ndarray) -> float:
    """The rate where the smoothed loss falls fastest per decade of lr, looked for between
    the first 10% of the sweep (warm-up noise of the average) and the loss minimum."""
    n = len(lrs)
    if n < 3:
        return float(lrs[0]) if n else float("nan")
    stop = int(np.argmin(losses)) + 1
    start = min(max(1, n // 10), max(stop - 2, 0))
    seg = slice(start, max(stop, start + 2))
    x, y = np.log10(lrs[seg]), losses[seg]
    if len(x) < 2:
        return float(lrs[int(np.argmin(losses))] / 10)
    slope = np.gradient(y, x)
    return float(lrs[seg][int(np.argmin(slope))])


def lr_find(model: Any, loss_fn: Callable, optimizer: Any, loader: Any, start_lr: float = 1e-7,
            end_lr: float = 10.0, num: int = 100, beta: float = 0.98,
            diverge_factor: float = 4.0) -> LRFinderResult:
    """LR range test (Smith 2017; fastai's variant): `num` training steps on batches of
    `loader` (cycled as needed) with the rate growing exponentially from start_lr to end_lr in
    every group; the loss is smoothed by an exponential average (`beta`, bias-corrected); the
    sweep stops when the smoothed loss exceeds diverge_factor × its best or is not finite.
    Suggestion: the rate of steepest descent of the smoothed loss against log(lr) (see
    `_suggest`). The model's weights and buffers, its train/eval mode and the optimizer
    (values, gradients, state, step counts, hyper-parameters) are restored afterwards, bit for bit.
    `loss_fn(outputs, targets) -> (loss, doutputs)`; the model has forward/backward."""
    start_lr = number(start_lr, "start_lr", lo=0.0, lo_open=True)
    end_lr = number(end_lr, "end_lr", lo=start_lr, lo_open=True)
    num = positive_int(num, "num", minimum=2)
    beta = number(beta, "beta", lo=0.0, hi=1.0, hi_open=True)
    if not hasattr(optimizer, "_snapshot") or type(optimizer).__name__ == "LBFGS":
        raise TypeError(f"optimizer: expected a fastnn first-order optimizer, got {type(optimizer).__name__}")
    model_state = model.state_dict()
    was_training = bool(getattr(model, "training", True))
    opt_snap = optimizer._snapshot()
    lrs: List[float] = []
    smoothed: List[float] = []
    raw: List[float] = []
    diverged = False
    try:
        model.train()
        it = iter(loader)
        avg, best = 0.0, math.inf
        ratio = end_lr / start_lr
        for i in range(num):
            lr = start_lr * ratio ** (i / (num - 1))
            for g in optimizer.param_groups:
                g["lr"] = lr
            try:
                xb, yb = next(it)
            except StopIteration:
                it = iter(loader)
                xb, yb = next(it)
            optimizer.zero_grad()
            out = model(xb)
            loss, dout = loss_fn(out, yb)
            loss = float(loss)
            if not math.isfinite(loss):
                diverged = True
                break
            model.backward(dout)
            optimizer.step()
            avg = beta * avg + (1 - beta) * loss
            s = avg / (1 - beta ** (i + 1))
            lrs.append(lr)
            raw.append(loss)
            smoothed.append(s)
            if s > diverge_factor * best:
                diverged = True
                break
            best = min(best, s)
    finally:
        optimizer._restore(opt_snap)
        model.load_state_dict(model_state)
        model.train(was_training)
    return LRFinderResult(lrs, smoothed, raw, _suggest(np.asarray(lrs), np.asarray(smoothed)), diverged)
