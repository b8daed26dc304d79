"""Optimizers: bookkeeping in Python, the element-wise update in one fused C++ pass.

Each parameter group keeps its parameters and gradients in one contiguous float32 buffer
(the Parameters become views into it), so a step is a single sweep over memory per group.
Hyper-parameters in `param_groups` may be numbers or schedules (any callable t -> value,
evaluated at the group's step count t = 0, 1, 2, ...) where the docstring says so.
Update rules, defaults and state-dict layout are torch.optim's.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np

from ._dispatch import _C
from ._checks import number, positive_int
from .module import Parameter

__all__ = ["Optimizer", "SGD", "Adagrad", "RMSprop", "Adadelta", "Adam", "AdamW", "Adamax",
           "NAdam", "AdaptiveGains", "LBFGS", "clip_grad_norm", "resolve"]

Scalar = Union[float, Callable[[int], float]]


def resolve(value: Any, t: int) -> float:
    """The value of a hyper-parameter at step t: a number, or a schedule called with t."""
    if callable(value):
        return float(value(t))
    return float(value)


# Bumped whenever any optimizer binds parameters to its buffers; a group that bound last at
# the current count knows its parameters are still its own without looking at each one.
_bind_count = 0


class _FlatGroup:
    """Contiguous storage of one parameter group: data, grad, named state buffers (each the
    size of the group) and named per-group scalars (e.g. NAdam's mu_product)."""

    def __init__(self, params: List[Parameter], owner: Any) -> None:
        self.params = params
        self.sizes = [p.size for p in params]
        self.offsets = np.concatenate([[0], np.cumsum(self.sizes)]).astype(np.int64)
        total = int(self.offsets[-1])
        self.data = np.empty(total, np.float32)
        self.grad = np.empty(total, np.float32)
        self.state: Dict[str, np.ndarray] = {}
        self.scalars: Dict[str, float] = {}
        self.owner = owner
        self.bind()

    def view(self, flat: np.ndarray, i: int) -> np.ndarray:
        return flat[self.offsets[i]:self.offsets[i + 1]].reshape(self.params[i].shape)

    def bind(self) -> None:
        global _bind_count
        _bind_count += 1
        for i, p in enumerate(self.params):
            p._rebind(self.view(self.data, i), self.view(self.grad, i), self.owner)
        self._bound_at = _bind_count

    def ensure_bound(self) -> None:
        # Another optimizer may have re-bound these parameters since: take them back
        # (their current values are copied in), so a step never updates a stale buffer.
        # O(1) in the usual case (no binding anywhere since ours), so the hot path has no
        # loop over parameters.
        if self._bound_at == _bind_count:
            return
        for p in self.params:
            if p._bound_to is not self.owner:
                self.bind()
                return
        self._bound_at = _bind_count

    def buffer(self, name: str, fill: float = 0.0) -> np.ndarray:
        buf = self.state.get(name)
        if buf is None:
            buf = np.full(self.data.shape, fill, np.float32)
            self.state[name] = buf
        return buf


def _betas(v: Any, name: str = "betas") -> Tuple[Any, float]:
    try:
        b = tuple(v)
    except TypeError:
        raise TypeError(f"{name}: expected a pair (beta1, beta2), got {type(v).__name__}") from None
    if len(b) != 2:
        raise ValueError(f"{name}: expected a pair (beta1, beta2), got {len(b)} values")
    for i, x in enumerate(b):
        if not (i == 0 and callable(x)):
            number(x, f"{name}[{i}]", lo=0.0, hi=1.0, hi_open=True)
    return b


class Optimizer:
    """Base class. `params`: an iterable of Parameters, or of dicts {"params": [...], **options}
    (per-group options, as PyTorch). Subclasses define `_update(group, flat, t)` (t = steps
    taken so far by that group) and, if they keep buffers from the start, `_init_state`.
    """

    _schedulable: Sequence[str] = ("lr",)   # options that may be schedules
    _scalar_state: Sequence[str] = ()        # per-group scalar state (stored per parameter)

    def __init__(self, params: Any, defaults: Dict[str, Any]) -> None:
        if isinstance(params, Parameter):
            raise TypeError("params: expected an iterable of Parameters or of dicts, got a single Parameter")
        try:
            groups = list(params)
        except TypeError:
            raise TypeError(f"params: expected an iterable of Parameters or of dicts, got {type(params).__name__}") from None
        if not groups:
            raise ValueError("params: optimizer got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        self.defaults = dict(defaults)
        self.param_groups: List[Dict[str, Any]] = []
        self._flat: List[_FlatGroup] = []
        self._steps: List[int] = []
        for g in groups:
            self.add_param_group(g)

    # -- groups ---------------------------------------------------------------------------
    def add_param_group(self, group: Dict[str, Any]) -> None:
        """Add a group {"params": [...], **options}; missing options take the defaults."""
        if not isinstance(group, dict) or "params" not in group:
            raise TypeError("param group: expected a dict with a 'params' entry")
        params = group["params"]
        params = [params] if isinstance(params, Parameter) else list(params)
        if not params:
            raise ValueError("params: a parameter group has an empty parameter list")
        for i, p in enumerate(params):
            if not isinstance(p, Parameter):
                raise TypeError(f"params[{i}]: expected a fastnn Parameter, got {type(p).__name__}")
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if len({id(p) for p in params}) != len(params) or any(id(p) in seen for p in params):
            raise ValueError("params: some parameters appear more than once (in this or another group)")
        unknown = set(group) - set(self.defaults) - {"params"}
        if unknown:
            raise TypeError(f"param group: unknown options {sorted(unknown)} for {type(self).__name__}")
        full = dict(self.defaults)
        full.update(group)
        full["params"] = params
        self._validate(full)
        flat = _FlatGroup(params, self)
        self.param_groups.append(full)
        self._flat.append(flat)
        self._steps.append(0)
        self._init_state(full, flat)

    def _init_state(self, group: Dict[str, Any], flat: _FlatGroup) -> None:
        """State created at construction (PyTorch creates most of it lazily at the first step)."""

    def _validate(self, group: Dict[str, Any]) -> None:
        """Check a group's hyper-parameters (schedules are checked when evaluated)."""
        lr = group.get("lr")
        if lr is None:
            raise ValueError("lr: a learning rate is required")
        if not callable(lr):
            number(lr, "lr", lo=0.0)
        for k, v in group.items():
            if callable(v) and k not in self._schedulable and k != "params":
                raise TypeError(f"{k}: {type(self).__name__} accepts a schedule only for "
                                f"{list(self._schedulable)}, got a callable for {k!r}")

    def _hyper(self, group: Dict[str, Any], name: str, t: int, lo: Optional[float] = 0.0) -> float:
        """A hyper-parameter at step t; a schedule's value is checked here."""
        v = group[name]
        if not callable(v):
            return float(v)
        x = float(v(t))
        if not math.isfinite(x) or (lo is not None and x < lo):
            raise ValueError(f"{name}: the schedule gave {x} at step {t}; expected a finite value >= {lo}")
        return x

    # -- steps ----------------------------------------------------------------------------
    def zero_grad(self, set_to_none: bool = False) -> None:
        """Fill every gradient with zeros in place (set_to_none is accepted for PyTorch parity)."""
        for flat in self._flat:
            flat.ensure_bound()
            flat.grad.fill(0.0)

    def step(self, closure: Optional[Callable[[], float]] = None) -> Optional[float]:
        """One update of every group. `closure` (re-evaluates the loss) is optional."""
        loss = closure() if closure is not None else None
        for gi, (group, flat) in enumerate(zip(self.param_groups, self._flat)):
            flat.ensure_bound()
            t = self._steps[gi]
            self._update(group, flat, t)
            self._steps[gi] = t + 1
        return loss

    def _update(self, group: Dict[str, Any], flat: _FlatGroup, t: int) -> None:
        """The update rule of a subclass: one fused kernel call over the group's flat buffers."""
        raise NotImplementedError(f"{type(self).__name__} must define _update() (abstract in Optimizer)")

    def hyper(self, name: str, group: int = 0) -> float:
        """Current value of a hyper-parameter (e.g. "lr") of a group at its next step."""
        v = self.param_groups[group][name]
        if name == "betas":
            raise ValueError("name: ask for one number (e.g. 'lr'), not 'betas'")
        return resolve(v, self._steps[group])

    @property
    def step_count(self) -> int:
        """Number of steps taken (by the first group)."""
        return self._steps[0]

    # -- state ----------------------------------------------------------------------------
    def state_dict(self) -> Dict[str, Any]:
        """PyTorch's layout: {"state": {param_index: {"step": float, buffers...}},
        "param_groups": [{options..., "params": [indices]}]}. Schedules are stored as
        their current value (the schedule itself stays with the live optimizer)."""
        state: Dict[int, Dict[str, Any]] = {}
        groups = []
        idx = 0
        for gi, (group, flat) in enumerate(zip(self.param_groups, self._flat)):
            g: Dict[str, Any] = {}
            for k, v in group.items():
                if k == "params":
                    continue
                if callable(v):
                    v = resolve(v, self._steps[gi])
                elif isinstance(v, (list, tuple)):
                    v = tuple(resolve(x, self._steps[gi]) if callable(x) else x for x in v)
                g[k] = v
            g["params"] = list(range(idx, idx + len(flat.params)))
            groups.append(g)
            for i in range(len(flat.params)):
                st: Dict[str, Any] = {"step": float(self._steps[gi])}
                for name, val in flat.scalars.items():
                    st[name] = float(val)
                for name, buf in flat.state.items():
                    st[name] = flat.view(buf, i).copy()
                state[idx + i] = st
            idx += len(flat.params)
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: Dict[str, Any]) -> None:
        """Restore buffers, step counts and numeric hyper-parameters (shapes must match).
        Accepts PyTorch's state dicts with tensors converted by `.numpy()` (or plain numbers)."""
        if not isinstance(state_dict, dict) or "state" not in state_dict or "param_groups" not in state_dict:
            raise ValueError("state_dict: expected a dict with 'state' and 'param_groups' (an optimizer state_dict)")
        groups = state_dict["param_groups"]
        if len(groups) != len(self.param_groups):
            raise ValueError(f"state_dict: has {len(groups)} parameter groups, this optimizer has {len(self.param_groups)}")
        state = {int(k): v for k, v in state_dict["state"].items()}
        staged = []
        # Check everything first, so a bad state dict leaves the optimizer untouched.
        for gi, (saved, flat) in enumerate(zip(groups, self._flat)):
            ids = list(saved["params"])
            if len(ids) != len(flat.params):
                raise ValueError(f"state_dict: group {gi} has {len(ids)} parameters, expected {len(flat.params)}")
            steps = 0
            bufs: Dict[str, np.ndarray] = {}
            scalars: Dict[str, float] = {}
            for i, pid in enumerate(ids):
                st = state.get(int(pid), {})
                if "step" in st:
                    steps = int(round(float(np.asarray(st["step"]))))
                for name, arr in st.items():
                    if name == "step" or arr is None:
                        continue
                    if name in self._scalar_state:
                        scalars[name] = float(np.asarray(arr))
                        continue
                    arr = np.asarray(arr)
                    if arr.shape != flat.params[i].shape:
                        raise ValueError(f"state_dict: state {name!r} of parameter {pid} has shape {arr.shape}, expected {flat.params[i].shape}")
                    buf = bufs.setdefault(name, np.zeros(flat.data.shape, np.float32))
                    flat.view(buf, i)[...] = arr
            staged.append((saved, steps, bufs, scalars))
        for gi, (saved, steps, bufs, scalars) in enumerate(staged):
            group, flat = self.param_groups[gi], self._flat[gi]
            for k, v in saved.items():
                if k == "params" or k not in group:
                    continue
                cur = group[k]
                if callable(cur):
                    continue  # keep the live schedule
                if isinstance(cur, tuple):
                    v = tuple(c if callable(c) else x for c, x in zip(cur, v))
                group[k] = v
            flat.state = bufs
            flat.scalars = scalars
            self._steps[gi] = steps

    def _snapshot(self) -> Any:
        """Everything a step changes (values, grads, state, steps, options), copied."""
        return ([dict(g) for g in self.param_groups], list(self._steps),
                [(f.data.copy(), f.grad.copy(), {k: v.copy() for k, v in f.state.items()},
                  dict(f.scalars)) for f in self._flat])

    def _restore(self, snap: Any) -> None:
        groups, steps, flats = snap
        for g, saved in zip(self.param_groups, groups):
            g.clear()
            g.update(saved)
        self._steps = list(steps)
        for f, (data, grad, st, sc) in zip(self._flat, flats):
            f.ensure_bound()
            f.data[...] = data
            f.grad[...] = grad
            f.state = {k: v.copy() for k, v in st.items()}
            f.scalars = dict(sc)

    def __repr__(self) -> str:
        opts = ", ".join(f"{k}={v!r}" for k, v in self.defaults.items())
        return f"{type(self).__name__}({opts})"


def _nonneg(group: Dict[str, Any], *names: str) -> None:
    for n in names:
        if not callable(group[n]):
            number(group[n], n, lo=0.0)


class SGD(Optimizer):
    """Stochastic gradient descent with momentum, as torch.optim.SGD.

    Convention (PyTorch): g ← ∇ + wd·p; b ← μ·b + (1 - dampening)·g (b = g on the first step);
    g ← g + μ·b if nesterov else b; p ← p - lr·g. `lr` and `momentum` may be schedules.
    """

    _schedulable = ("lr", "momentum")

    def __init__(self, params: Any, lr: Scalar = 1e-3, momentum: Scalar = 0.0, dampening: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False, *, maximize: bool = False,
                 foreach: Optional[bool] = None, differentiable: bool = False,
                 fused: Optional[bool] = None) -> None:
        # foreach/differentiable/fused: PyTorch's dispatch switches, accepted and ignored.
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov, maximize=maximize))

    def _validate(self, group: Dict[str, Any]) -> None:
        super()._validate(group)
        _nonneg(group, "momentum", "weight_decay")
        number(group["dampening"], "dampening")
        if group["nesterov"] and not callable(group["momentum"]) and (
                float(group["momentum"]) <= 0 or float(group["dampening"]) != 0):
            raise ValueError("nesterov: requires a momentum > 0 and zero dampening")

    def _update(self, group: Dict[str, Any], flat: _FlatGroup, t: int) -> None:
        lr = self._hyper(group, "lr", t)
        mom = self._hyper(group, "momentum", t)
        buf = None
        first = False
        if mom != 0.0:
            first = "momentum_buffer" not in flat.state
            buf = flat.buffer("momentum_buffer")
        _C.sgd_step(flat.data, flat.grad, buf, lr, mom, float(group["dampening"]),
                    float(group["weight_decay"]), bool(group["nesterov"]), bool(group["maximize"]), first)


class Adagrad(Optimizer):
    """Adagrad, as torch.optim.Adagrad. State "sum" starts at initial_accumulator_value.

    Convention (PyTorch): g ← ∇ + wd·p; sum ← sum + g²; p ← p - clr·g / (√sum + eps) with
    clr = lr / (1 + (t-1)·lr_decay) at the t-th step (t = 1, 2, ...). `lr` may be a schedule.
    """

    def __init__(self, params: Any, lr: Scalar = 1e-2, lr_decay: float = 0.0, weight_decay: float = 0.0,
                 initial_accumulator_value: float = 0.0, eps: float = 1e-10,
                 foreach: Optional[bool] = None, *, maximize: bool = False,
                 differentiable: bool = False, fused: Optional[bool] = None) -> None:
        super().__init__(params, dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                                      initial_accumulator_value=initial_accumulator_value,
                                      eps=eps, maximize=maximize))

    def _validate(self, group: Dict[str, Any]) -> None:
        super()._validate(group)
        _nonneg(group, "lr_decay", "weight_decay", "initial_accumulator_value", "eps")

    def _init_state(self, group: Dict[str, Any], flat: _FlatGroup) -> None:
        flat.buffer("sum", float(group["initial_accumulator_value"]))

    def _update(self, group: Dict[str, Any], flat: _FlatGroup, t: int) -> None:
        _C.adagrad_step(flat.data, flat.grad, flat.buffer("sum", float(group["initial_accumulator_value"])),
                        self._hyper(group, "lr", t), float(group["lr_decay"]),
                        float(group["weight_decay"]), float(group["eps"]), t + 1, bool(group["maximize"]))


class RMSprop(Optimizer):
    """RMSprop, as torch.optim.RMSprop (Hinton's lecture 6e; centered as Graves 2013).

    Convention (PyTorch): eps is added to the square root: v ← α·v + (1-α)·g²;
    centered: ḡ ← α·ḡ + (1-α)·g, a = √(v - ḡ²) + eps, else a = √v + eps;
    momentum > 0: b ← μ·b + g/a, p ← p - lr·b; else p ← p - lr·g/a.
    `lr` and `momentum` may be schedules.
    """

    _schedulable = ("lr", "momentum")

    def __init__(self, params: Any, lr: Scalar = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0.0, momentum: Scalar = 0.0, centered: bool = False,
                 capturable: bool = False, foreach: Optional[bool] = None, maximize: bool = False,
                 differentiable: bool = False) -> None:
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                                      momentum=momentum, centered=centered, maximize=maximize))

    def _validate(self, group: Dict[str, Any]) -> None:
        super()._validate(group)
        _nonneg(group, "eps", "weight_decay", "momentum", "alpha")

    def _update(self, group: Dict[str, Any], flat: _FlatGroup, t: int) -> None:
        mom = self._hyper(group, "momentum", t)
        centered = bool(group["centered"])
        _C.rmsprop_step(flat.data, flat.grad, flat.buffer("square_avg"),
                        flat.buffer("grad_avg") if centered else None,
                        flat.buffer("momentum_buffer") if mom > 0 else None,
                        self._hyper(group, "lr", t), float(group["alpha"]), float(group["eps"]),
                        float(group["weight_decay"]), mom, centered, bool(group["maximize"]))


class Adadelta(Optimizer):
    """Adadelta (Zeiler 2012), as torch.optim.Adadelta.

    Convention (PyTorch): v ← ρ·v + (1-ρ)·g²; Δ = √(u + eps) / √(v + eps) · g;
    u ← ρ·u + (1-ρ)·Δ²; p ← p - lr·Δ (lr multiplies the delta; default 1). `lr` may be a schedule.
    """

    def __init__(self, params: Any, lr: Scalar = 1.0, rho: float = 0.9, eps: float = 1e-6,
                 weight_decay: float = 0.0, foreach: Optional[bool] = None, *,
                 capturable: bool = False, maximize: bool = False, differentiable: bool = False) -> None:
        super().__init__(params, dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay,
                                      maximize=maximize))

    def _validate(self, group: Dict[str, Any]) -> None:
        super()._validate(group)
        number(group["rho"], "rho", lo=0.0, hi=1.0)
        _nonneg(group, "eps", "weight_decay")

    def _update(self, group: Dict[str, Any], flat: _FlatGroup, t: int) -> None:
        _C.adadelta_step(flat.data, flat.grad, flat.buffer("square_avg"), flat.buffer("acc_delta"),
                         self._hyper(group, "lr", t), float(group["rho"]), float(group["eps"]),
                         float(group["weight_decay"]), bool(group["maximize"]))


def _beta1(group: Dict[str, Any], t: int) -> float:
    """betas[0] at step t (it may be a schedule), checked to lie in [0, 1)."""
    b1 = resolve(group["betas"][0], t)
    if not 0.0 <= b1 < 1.0:
        raise ValueError(f"betas[0]: the schedule gave {b1} at step {t}; expected a value in [0, 1)")
    return b1


class _BetasOptimizer(Optimizer):
    """Shared validation of Adam and Adamax: betas (betas[0] may be a schedule), eps, weight_decay."""

    def _validate(self, group: Dict[str, Any]) -> None:
        super()._validate(group)
        group["betas"] = _betas(group["betas"])
        _nonneg(group, "eps", "weight_decay")


class Adam(_BetasOptimizer):
    """Adam (Kingma & Ba), as torch.optim.Adam, with AMSGrad and PyTorch's
    `decoupled_weight_decay` switch (then it is AdamW).

    Convention (PyTorch): eps is added to the bias-corrected √v:
    p ← p - lr/(1-β₁ᵗ) · m / (√v / √(1-β₂ᵗ) + eps); weight_decay is coupled L2 (g ← ∇ + wd·p)
    unless decoupled (p ← p·(1 - lr·wd) first). AMSGrad uses max_exp_avg_sq = max over time of v.
    `lr` and betas[0] may be schedules.
    """

    _schedulable = ("lr",)

    def __init__(self, params: Any, lr: Scalar = 1e-3, betas: Tuple[Scalar, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, amsgrad: bool = False, *,
                 foreach: Optional[bool] = None, maximize: bool = False, capturable: bool = False,
                 differentiable: bool = False, fused: Optional[bool] = None,
                 decoupled_weight_decay: bool = False) -> None:
        super().__init__(params, dict(lr=lr, betas=tuple(betas) if isinstance(betas, (list, tuple)) else betas,
                                      eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                                      maximize=maximize, decoupled_weight_decay=decoupled_weight_decay))

    def _update(self, group: Dict[str, Any], flat: _FlatGroup, t: int) -> None:
        b1 = _beta1(group, t)
        _C.adam_step(flat.data, flat.grad, flat.buffer("exp_avg"), flat.buffer("exp_avg_sq"),
                     flat.buffer("max_exp_avg_sq") if group["amsgrad"] else None,
                     self._hyper(group, "lr", t), b1, float(group["betas"][1]), float(group["eps"]),
                     float(group["weight_decay"]), t + 1, bool(group["maximize"]),
                     bool(group["decoupled_weight_decay"]))


class AdamW(Adam):
    """AdamW (Loshchilov & Hutter), as torch.optim.AdamW: Adam with decoupled weight decay,
    p ← p·(1 - lr·wd) before the Adam step. Default weight_decay 1e-2."""

    def __init__(self, params: Any, lr: Scalar = 1e-3, betas: Tuple[Scalar, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 1e-2, amsgrad: bool = False, *,
                 maximize: bool = False, foreach: Optional[bool] = None, capturable: bool = False,
                 differentiable: bool = False, fused: Optional[bool] = None) -> None:
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize,
                         decoupled_weight_decay=True)

    def _validate(self, group: Dict[str, Any]) -> None:
        group["decoupled_weight_decay"] = True
        super()._validate(group)


class Adamax(_BetasOptimizer):
    """Adamax (Kingma & Ba, infinity norm), as torch.optim.Adamax.

    Convention (PyTorch): u ← max(β₂·u, |g| + eps) (eps inside the max);
    p ← p - lr/(1-β₁ᵗ) · m/u. `lr` and betas[0] may be schedules.
    """

    def __init__(self, params: Any, lr: Scalar = 2e-3, betas: Tuple[Scalar, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, foreach: Optional[bool] = None, *,
                 maximize: bool = False, differentiable: bool = False, capturable: bool = False) -> None:
        super().__init__(params, dict(lr=lr, betas=tuple(betas) if isinstance(betas, (list, tuple)) else betas,
                                      eps=eps, weight_decay=weight_decay, maximize=maximize))

    def _update(self, group: Dict[str, Any], flat: _FlatGroup, t: int) -> None:
        b1 = _beta1(group, t)
        _C.adamax_step(flat.data, flat.grad, flat.buffer("exp_avg"), flat.buffer("exp_inf"),
                       self._hyper(group, "lr", t), b1, float(group["betas"][1]), float(group["eps"]),
                       float(group["weight_decay"]), t + 1, bool(group["maximize"]))


class NAdam(Optimizer):
    """NAdam (Dozat 2016), as torch.optim.NAdam, with its momentum-decay schedule
    μ_t = β₁(1 - ½·0.96^(t·momentum_decay)) and the running product mu_product.

    Convention (PyTorch): eps added to √(v/(1-β₂ᵗ)); weight decay coupled unless
    decoupled_weight_decay (then p ← p·(1 - lr·wd) first). `lr` may be a schedule.
    """

    _scalar_state = ("mu_product",)

    def __init__(self, params: Any, lr: Scalar = 2e-3, betas: Tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, momentum_decay: float = 4e-3,
                 decoupled_weight_decay: bool = False, *, foreach: Optional[bool] = None,
                 maximize: bool = False, capturable: bool = False, differentiable: bool = False) -> None:
        super().__init__(params, dict(lr=lr, betas=tuple(betas) if isinstance(betas, (list, tuple)) else betas,
                                      eps=eps, weight_decay=weight_decay, momentum_decay=momentum_decay,
                                      decoupled_weight_decay=decoupled_weight_decay, maximize=maximize))

    def _validate(self, group: Dict[str, Any]) -> None:
        super()._validate(group)
        b = _betas(group["betas"])
        if callable(b[0]):
            raise TypeError("betas[0]: NAdam needs a number (its momentum schedule is built in)")
        group["betas"] = b
        _nonneg(group, "eps", "weight_decay", "momentum_decay")

    def _init_state(self, group: Dict[str, Any], flat: _FlatGroup) -> None:
        flat.scalars["mu_product"] = 1.0

    def _update(self, group: Dict[str, Any], flat: _FlatGroup, t: int) -> None:
        b1, b2 = float(group["betas"][0]), float(group["betas"][1])
        md, step = float(group["momentum_decay"]), t + 1
        mu = b1 * (1.0 - 0.5 * 0.96 ** (step * md))
        mu_next = b1 * (1.0 - 0.5 * 0.96 ** ((step + 1) * md))
        mu_product = flat.scalars.get("mu_product", 1.0) * mu
        flat.scalars["mu_product"] = mu_product
        _C.nadam_step(flat.data, flat.grad, flat.buffer("exp_avg"), flat.buffer("exp_avg_sq"),
                      self._hyper(group, "lr", t), b1, b2, float(group["eps"]),
                      float(group["weight_decay"]), mu, mu_next, mu_product, mu_product * mu_next,
                      step, bool(group["maximize"]), bool(group["decoupled_weight_decay"]))


class AdaptiveGains(Optimizer):
    """Per-weight adaptive gains (Jacobs 1988; Hinton's lecture 6d). Per weight a gain g
    (starts at 1, state "gain") and the previous gradient q (starts at 0, state "prev_grad"):
    g += increase if ∇·q > 0, g *= decrease if ∇·q < 0, g = clip(g, min_gain, max_gain);
    p ← p - lr·g·∇; q ← ∇. `lr` may be a schedule."""

    def __init__(self, params: Any, lr: Scalar = 1e-2, increase: float = 0.05, decrease: float = 0.95,
                 min_gain: float = 0.01, max_gain: float = 100.0, *, maximize: bool = False) -> None:
        super().__init__(params, dict(lr=lr, increase=increase, decrease=decrease,
                                      min_gain=min_gain, max_gain=max_gain, maximize=maximize))

    def _validate(self, group: Dict[str, Any]) -> None:
        super()._validate(group)
        _nonneg(group, "increase")
        number(group["decrease"], "decrease", lo=0.0, hi=1.0, lo_open=True)
        lo = number(group["min_gain"], "min_gain", lo=0.0)
        number(group["max_gain"], "max_gain", lo=lo)

    def _init_state(self, group: Dict[str, Any], flat: _FlatGroup) -> None:
        flat.buffer("gain", 1.0)
        flat.buffer("prev_grad", 0.0)

    def _update(self, group: Dict[str, Any], flat: _FlatGroup, t: int) -> None:
        _C.adaptive_gains_step(flat.data, flat.grad, flat.buffer("gain", 1.0), flat.buffer("prev_grad"),
                               self._hyper(group, "lr", t), float(group["increase"]),
                               float(group["decrease"]), float(group["min_gain"]),
                               float(group["max_gain"]), bool(group["maximize"]))


# -- L-BFGS ---------------------------------------------------------------------------------
def _cubic_interpolate(x1: float, f1: float, g1: float, x2: float, f2: float, g2: float,
                       bounds: Optional[Tuple[float, float]] = None) -> float:
    """Minimizer of the cubic through two points with derivatives (torch.optim.lbfgs)."""
    if bounds is not None:
        xmin_bound, xmax_bound = bounds
    else:
        xmin_bound, xmax_bound = (x1, x2) if x1 <= x2 else (x2, x1)
    d1 = g1 + g2 - 3 * (f1 - f2) / (x1 - x2)
    d2_square = d1 ** 2 - g1 * g2
    if d2_square >= 0:
        d2 = math.sqrt(d2_square)
        if x1 <= x2:
            min_pos = x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2 * d2))
        else:
            min_pos = x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + 2 * d2))
        return min(max(min_pos, xmin_bound), xmax_bound)
    return (xmin_bound + xmax_bound) / 2.0


def _strong_wolfe(obj_func: Callable, x: np.ndarray, t: float, d: np.ndarray, f: float,
                  g: np.ndarray, gtd: float, c1: float = 1e-4, c2: float = 0.9,
                  tolerance_change: float = 1e-9, max_ls: int = 25):
    """Line search satisfying the strong Wolfe conditions (torch.optim.lbfgs, after minFunc)."""
    d_norm = float(np.abs(d).max())
    g = g.copy()
    f_new, g_new = obj_func(x, t, d)
    ls_func_evals = 1
    gtd_new = float(g_new @ d)
    t_prev, f_prev, g_prev, gtd_prev = 0.0, f, g, gtd
    done = False
    ls_iter = 0
    while ls_iter < max_ls:
        if f_new > (f + c1 * t * gtd) or (ls_iter > 1 and f_new >= f_prev):
            bracket, bracket_f = [t_prev, t], [f_prev, f_new]
            bracket_g, bracket_gtd = [g_prev, g_new.copy()], [gtd_prev, gtd_new]
            break
        if abs(gtd_new) <= -c2 * gtd:
            bracket, bracket_f, bracket_g = [t], [f_new], [g_new]
            done = True
            break
        if gtd_new >= 0:
            bracket, bracket_f = [t_prev, t], [f_prev, f_new]
            bracket_g, bracket_gtd = [g_prev, g_new.copy()], [gtd_prev, gtd_new]
            break
        min_step = t + 0.01 * (t - t_prev)
        max_step = t * 10
        tmp = t
        t = _cubic_interpolate(t_prev, f_prev, gtd_prev, t, f_new, gtd_new, bounds=(min_step, max_step))
        t_prev, f_prev, g_prev, gtd_prev = tmp, f_new, g_new.copy(), gtd_new
        f_new, g_new = obj_func(x, t, d)
        ls_func_evals += 1
        gtd_new = float(g_new @ d)
        ls_iter += 1
    if ls_iter == max_ls:
        bracket, bracket_f, bracket_g = [0.0, t], [f, f_new], [g, g_new]
        bracket_gtd = [gtd, gtd_new]
    insuf_progress = False
    low_pos, high_pos = (0, 1) if bracket_f[0] <= bracket_f[-1] else (1, 0)
    while not done and ls_iter < max_ls:
        if abs(bracket[1] - bracket[0]) * d_norm < tolerance_change:
            break
        t = _cubic_interpolate(bracket[0], bracket_f[0], bracket_gtd[0],
                               bracket[1], bracket_f[1], bracket_gtd[1])
        eps = 0.1 * (max(bracket) - min(bracket))
        if min(max(bracket) - t, t - min(bracket)) < eps:
            if insuf_progress or t >= max(bracket) or t <= min(bracket):
                if abs(t - max(bracket)) < abs(t - min(bracket)):
                    t = max(bracket) - eps
                else:
                    t = min(bracket) + eps
                insuf_progress = False
            else:
                insuf_progress = True
        else:
            insuf_progress = False
        f_new, g_new = obj_func(x, t, d)
        ls_func_evals += 1
        gtd_new = float(g_new @ d)
        ls_iter += 1
        if f_new > (f + c1 * t * gtd) or f_new >= bracket_f[low_pos]:
            bracket[high_pos], bracket_f[high_pos] = t, f_new
            bracket_g[high_pos], bracket_gtd[high_pos] = g_new.copy(), gtd_new
            low_pos, high_pos = (0, 1) if bracket_f[0] <= bracket_f[1] else (1, 0)
        else:
            if abs(gtd_new) <= -c2 * gtd:
                done = True
            elif gtd_new * (bracket[high_pos] - bracket[low_pos]) >= 0:
                bracket[high_pos] = bracket[low_pos]
                bracket_f[high_pos] = bracket_f[low_pos]
                bracket_g[high_pos] = bracket_g[low_pos]
                bracket_gtd[high_pos] = bracket_gtd[low_pos]
            bracket[low_pos], bracket_f[low_pos] = t, f_new
            bracket_g[low_pos], bracket_gtd[low_pos] = g_new.copy(), gtd_new
    return bracket_f[low_pos], bracket_g[low_pos], bracket[low_pos], ls_func_evals


class LBFGS(Optimizer):
    """L-BFGS, as torch.optim.LBFGS (full batch; one parameter group): two-loop recursion over
    the last `history_size` pairs, optional strong-Wolfe line search (line_search_fn=
    "strong_wolfe"), max_eval default max_iter*5//4. `step(closure)`: the closure zeroes the
    gradients, computes the loss, runs the backward pass and returns the loss.

    Works on the group's flat buffer; directions and history are kept in float64 (PyTorch uses
    the parameter dtype), so it converges further in float32 problems. State (PyTorch's names)
    is kept for the first parameter: func_evals, n_iter, d, t, old_dirs, old_stps, ro, H_diag,
    prev_flat_grad, prev_loss.
    """

    _lbfgs_keys = ("func_evals", "n_iter", "d", "t", "old_dirs", "old_stps", "ro", "H_diag",
                   "prev_flat_grad", "prev_loss")

    def __init__(self, params: Any, lr: float = 1, max_iter: int = 20, max_eval: Optional[int] = None,
                 tolerance_grad: float = 1e-7, tolerance_change: float = 1e-9,
                 history_size: int = 100, line_search_fn: Optional[str] = None) -> None:
        max_iter = positive_int(max_iter, "max_iter")
        if max_eval is None:
            max_eval = max_iter * 5 // 4
        super().__init__(params, dict(lr=lr, max_iter=max_iter, max_eval=max_eval,
                                      tolerance_grad=tolerance_grad, tolerance_change=tolerance_change,
                                      history_size=history_size, line_search_fn=line_search_fn))
        if len(self.param_groups) != 1:
            raise ValueError("params: LBFGS doesn't support per-parameter options (parameter groups)")
        self._state: Dict[str, Any] = {"func_evals": 0, "n_iter": 0}

    def add_param_group(self, group: Dict[str, Any]) -> None:
        if self.param_groups:
            raise ValueError("params: LBFGS doesn't support per-parameter options (parameter groups)")
        super().add_param_group(group)

    def _validate(self, group: Dict[str, Any]) -> None:
        if callable(group.get("lr")):
            raise TypeError("lr: LBFGS needs a number, not a schedule")
        super()._validate(group)
        positive_int(group["max_eval"], "max_eval")
        positive_int(group["history_size"], "history_size")
        _nonneg(group, "tolerance_grad", "tolerance_change")
        if group["line_search_fn"] not in (None, "strong_wolfe"):
            raise ValueError(f"line_search_fn: expected None or 'strong_wolfe', got {group['line_search_fn']!r}")

    def _grad(self) -> np.ndarray:
        return self._flat[0].grad.astype(np.float64)

    def _add(self, t: float, d: np.ndarray) -> None:
        data = self._flat[0].data
        np.add(data, t * d, out=data, casting="unsafe")

    def step(self, closure: Optional[Callable[[], float]] = None) -> float:
        """Up to max_iter L-BFGS iterations; returns the loss of the first closure call."""
        if closure is None or not callable(closure):
            raise TypeError("closure: LBFGS.step needs a closure that zeroes grads, computes the loss, runs backward and returns it")
        group, flat = self.param_groups[0], self._flat[0]
        flat.ensure_bound()
        lr = float(group["lr"])
        max_iter, max_eval = int(group["max_iter"]), int(group["max_eval"])
        tolerance_grad, tolerance_change = float(group["tolerance_grad"]), float(group["tolerance_change"])
        line_search_fn, history_size = group["line_search_fn"], int(group["history_size"])
        state = self._state

        orig_loss = closure()
        loss = float(orig_loss)
        current_evals = 1
        state["func_evals"] += 1
        flat_grad = self._grad()
        if np.abs(flat_grad).max() <= tolerance_grad:
            return orig_loss

        # The history of earlier steps (None before the first iteration).
        d: Optional[np.ndarray] = state.get("d")
        t: Optional[float] = state.get("t")
        old_dirs: Optional[List[np.ndarray]] = state.get("old_dirs")
        old_stps: Optional[List[np.ndarray]] = state.get("old_stps")
        ro: Optional[List[float]] = state.get("ro")
        H_diag: Optional[float] = state.get("H_diag")
        prev_flat_grad: Optional[np.ndarray] = state.get("prev_flat_grad")
        prev_loss: Optional[float] = state.get("prev_loss")
        n_iter = 0
        while n_iter < max_iter:
            n_iter += 1
            state["n_iter"] += 1
            if state["n_iter"] == 1:
                d = -flat_grad
                old_dirs, old_stps, ro = [], [], []
                H_diag = 1.0
            else:
                # A later iteration (of this step or an earlier one): the history is set.
                assert (d is not None and t is not None and old_dirs is not None
                        and old_stps is not None and ro is not None and H_diag is not None
                        and prev_flat_grad is not None)
                y = flat_grad - prev_flat_grad
                s = d * t
                ys = float(y @ s)
                if ys > 1e-10:
                    if len(old_dirs) == history_size:
                        old_dirs.pop(0)
                        old_stps.pop(0)
                        ro.pop(0)
                    old_dirs.append(y)
                    old_stps.append(s)
                    ro.append(1.0 / ys)
                    H_diag = ys / float(y @ y)
                num_old = len(old_dirs)
                al = [0.0] * num_old
                q = -flat_grad
                for i in range(num_old - 1, -1, -1):
                    al[i] = float(old_stps[i] @ q) * ro[i]
                    q -= al[i] * old_dirs[i]
                d = r = q * H_diag
                for i in range(num_old):
                    be_i = float(old_dirs[i] @ r) * ro[i]
                    r += (al[i] - be_i) * old_stps[i]
            prev_flat_grad = flat_grad.copy()
            prev_loss = loss
            if state["n_iter"] == 1:
                t = min(1.0, 1.0 / float(np.abs(flat_grad).sum())) * lr
            else:
                t = lr
            gtd = float(flat_grad @ d)
            if gtd > -tolerance_change:
                break
            ls_func_evals = 0
            if line_search_fn is not None:
                x_init = flat.data.copy()

                def obj_func(x: np.ndarray, step: float, direction: np.ndarray) -> Tuple[float, np.ndarray]:
                    self._add(step, direction)
                    f = float(closure())
                    g = self._grad()
                    flat.data[...] = x
                    return f, g

                loss, flat_grad, t, ls_func_evals = _strong_wolfe(
                    obj_func, x_init, t, d, loss, flat_grad, gtd, max_ls=max_eval - current_evals)
                self._add(t, d)
                opt_cond = np.abs(flat_grad).max() <= tolerance_grad
            else:
                self._add(t, d)
                opt_cond = False
                if n_iter != max_iter:
                    loss = float(closure())
                    flat_grad = self._grad()
                    opt_cond = np.abs(flat_grad).max() <= tolerance_grad
                    ls_func_evals = 1
            current_evals += ls_func_evals
            state["func_evals"] += ls_func_evals
            if n_iter == max_iter or current_evals >= max_eval or opt_cond:
                break
            if np.abs(d * t).max() <= tolerance_change:
                break
            if abs(loss - prev_loss) < tolerance_change:
                break
        state.update(d=d, t=t, old_dirs=old_dirs, old_stps=old_stps, ro=ro, H_diag=H_diag,
                     prev_flat_grad=prev_flat_grad, prev_loss=prev_loss)
        self._steps[0] += 1
        return orig_loss

    def state_dict(self) -> Dict[str, Any]:
        sd = super().state_dict()
        st = sd["state"].setdefault(0, {})
        for k in self._lbfgs_keys:
            if k in self._state:
                v = self._state[k]
                st[k] = [a.copy() for a in v] if isinstance(v, list) and k != "ro" else (
                    list(v) if isinstance(v, list) else (v.copy() if isinstance(v, np.ndarray) else v))
        return sd

    def load_state_dict(self, state_dict: Dict[str, Any]) -> None:
        saved = {int(k): v for k, v in state_dict.get("state", {}).items()} if isinstance(state_dict, dict) else {}
        first = dict(saved.get(0, {}))
        rest = {k: v for k, v in first.items() if k not in self._lbfgs_keys}
        sd = dict(state_dict)
        sd["state"] = dict(saved)
        sd["state"][0] = rest
        super().load_state_dict(sd)
        st: Dict[str, Any] = {"func_evals": 0, "n_iter": 0}
        for k in self._lbfgs_keys:
            if k in first and first[k] is not None:
                v = first[k]
                if k in ("old_dirs", "old_stps"):
                    v = [np.asarray(a, np.float64).ravel().copy() for a in v]
                elif k == "ro":
                    v = [float(np.asarray(a)) for a in v]
                elif k in ("d", "prev_flat_grad"):
                    v = np.asarray(v, np.float64).ravel().copy()
                elif k in ("func_evals", "n_iter"):
                    v = int(np.asarray(v))
                else:
                    v = float(np.asarray(v))
                st[k] = v
        self._state = st

    def _snapshot(self) -> Any:
        import copy
        return super()._snapshot(), copy.deepcopy(self._state)

    def _restore(self, snap: Any) -> None:
        import copy
        super()._restore(snap[0])
        self._state = copy.deepcopy(snap[1])


def clip_grad_norm(params: Iterable[Parameter], max_norm: float, norm_type: float = 2.0) -> float:
    """Scale gradients in place so their global norm is at most max_norm (as
    torch.nn.utils.clip_grad_norm_: factor max_norm / (norm + 1e-6), applied when < 1);
    returns the norm before clipping. `params`: Parameters (or one Parameter)."""
    if isinstance(params, Parameter):
        params = [params]
    params = list(params)
    for i, p in enumerate(params):
        if not isinstance(p, Parameter):
            raise TypeError(f"params[{i}]: expected a fastnn Parameter, got {type(p).__name__}")
    max_norm = number(max_norm, "max_norm", lo=0.0)
    norm_type = number(norm_type, "norm_type", lo=0.0, lo_open=True)
    if not params:
        return 0.0
    if norm_type == math.inf:
        total = max(float(np.abs(p.grad).max(initial=0.0)) for p in params)
    elif norm_type == 2.0:
        total = math.sqrt(sum(float(np.dot(p.grad.ravel().astype(np.float64), p.grad.ravel())) for p in params))
    else:
        total = float(sum(float(np.sum(np.abs(p.grad.astype(np.float64)) ** norm_type)) for p in params)) ** (1.0 / norm_type)
    coef = max_norm / (total + 1e-6)
    if coef < 1.0:
        for p in params:
            p.grad *= np.float32(coef)
    return total
