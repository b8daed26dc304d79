"""Optimizers: bookkeeping in Python, the element-wise update in one fused C++ pass.

Each parameter group keeps its parameters and gradients in one contiguous float32 buffer
(the Parameters become views into it), so a step is a single sweep over memory per group.
Hyper-parameters in `param_groups` may be numbers or schedules (any callable t -> value,
evaluated at the group's step count t = 0, 1, 2, ...).
"""
from __future__ import annotations

import math
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Union

import numpy as np

from ._dispatch import _C
from ._checks import number
from .module import Parameter

__all__ = ["Optimizer", "SGD", "clip_grad_norm", "resolve"]

Scalar = Union[float, Callable[[int], float]]


def resolve(value: Any, t: int) -> float:
    """The value of a hyper-parameter at step t: a number, or a schedule called with t."""
    if callable(value):
        return float(value(t))
    return float(value)


class _FlatGroup:
    """Contiguous storage of one parameter group: data, grad and named state buffers."""

    def __init__(self, params: List[Parameter], owner: Any) -> None:
        self.params = params
        self.sizes = [p.size for p in params]
        self.offsets = np.concatenate([[0], np.cumsum(self.sizes)]).astype(np.int64)
        total = int(self.offsets[-1])
        self.data = np.empty(total, np.float32)
        self.grad = np.empty(total, np.float32)
        self.state: Dict[str, np.ndarray] = {}
        self.owner = owner
        self.bind()

    def view(self, flat: np.ndarray, i: int) -> np.ndarray:
        return flat[self.offsets[i]:self.offsets[i + 1]].reshape(self.params[i].shape)

    def bind(self) -> None:
        for i, p in enumerate(self.params):
            p._rebind(self.view(self.data, i), self.view(self.grad, i), self.owner)

    def ensure_bound(self) -> None:
        # Another optimizer may have re-bound these parameters since: take them back
        # (their current values are copied in), so a step never updates a stale buffer.
        for p in self.params:
            if p._bound_to is not self.owner:
                self.bind()
                return

    def buffer(self, name: str, fill: float = 0.0) -> np.ndarray:
        buf = self.state.get(name)
        if buf is None:
            buf = np.full(self.data.shape, fill, np.float32)
            self.state[name] = buf
        return buf


class Optimizer:
    """Base class. `params`: an iterable of Parameters, or of dicts {"params": [...], **options}
    (per-group options, as PyTorch). Subclasses define `defaults` and `_update(group, flat, t)`.
    """

    _state_names: Sequence[str] = ()

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
        self.param_groups.append(full)
        self._flat.append(_FlatGroup(params, self))
        self._steps.append(0)

    def _validate(self, group: Dict[str, Any]) -> None:
        """Check a group's hyper-parameters (numbers only; schedules are checked when used)."""
        lr = group.get("lr")
        if lr is None:
            raise ValueError("lr: a learning rate is required")
        if not callable(lr):
            number(lr, "lr", lo=0.0)

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
        raise NotImplementedError

    def hyper(self, name: str, group: int = 0) -> float:
        """Current value of a hyper-parameter (e.g. "lr") of a group at its next step."""
        return resolve(self.param_groups[group][name], self._steps[group])

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
            g = {}
            for k, v in group.items():
                if k == "params":
                    continue
                g[k] = resolve(v, self._steps[gi]) if callable(v) else (tuple(v) if isinstance(v, (list, tuple)) else v)
            g["params"] = list(range(idx, idx + len(flat.params)))
            groups.append(g)
            for i in range(len(flat.params)):
                st: Dict[str, Any] = {"step": float(self._steps[gi])}
                for name, buf in flat.state.items():
                    st[name] = flat.view(buf, i).copy()
                state[idx + i] = st
            idx += len(flat.params)
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: Dict[str, Any]) -> None:
        """Restore buffers, step counts and numeric hyper-parameters (shapes must match)."""
        if not isinstance(state_dict, dict) or "state" not in state_dict or "param_groups" not in state_dict:
            raise ValueError("state_dict: expected a dict with 'state' and 'param_groups' (an optimizer state_dict)")
        groups = state_dict["param_groups"]
        if len(groups) != len(self.param_groups):
            raise ValueError(f"state_dict: has {len(groups)} parameter groups, this optimizer has {len(self.param_groups)}")
        state = {int(k): v for k, v in state_dict["state"].items()}
        for gi, (saved, group, flat) in enumerate(zip(groups, self.param_groups, self._flat)):
            ids = list(saved["params"])
            if len(ids) != len(flat.params):
                raise ValueError(f"state_dict: group {gi} has {len(ids)} parameters, expected {len(flat.params)}")
            for k, v in saved.items():
                if k != "params" and k in group and not callable(group[k]):
                    group[k] = tuple(v) if isinstance(group[k], tuple) else v
            steps = 0
            new_bufs: Dict[str, np.ndarray] = {}
            for i, pid in enumerate(ids):
                st = state.get(int(pid), {})
                steps = int(round(float(np.asarray(st.get("step", steps)))))
                for name, arr in st.items():
                    if name == "step":
                        continue
                    arr = np.asarray(arr, dtype=np.float32)
                    if arr.shape != flat.params[i].shape:
                        raise ValueError(f"state_dict: state {name!r} of parameter {pid} has shape {arr.shape}, expected {flat.params[i].shape}")
                    buf = new_bufs.setdefault(name, np.zeros(flat.data.shape, np.float32))
                    flat.view(buf, i)[...] = arr
            flat.state = new_bufs
            self._steps[gi] = steps

    def __repr__(self) -> str:
        opts = ", ".join(f"{k}={v!r}" for k, v in self.defaults.items())
        return f"{type(self).__name__}({opts})"


class SGD(Optimizer):
    """Stochastic gradient descent with momentum, as torch.optim.SGD.

    Convention (PyTorch): g ← ∇ + wd·p; b ← μ·b + (1 - dampening)·g (b = g on the first step);
    g ← g + μ·b if nesterov else b; p ← p - lr·g. `lr` and `momentum` may be schedules.
    """

    def __init__(self, params: Any, lr: Scalar = 1e-3, momentum: Scalar = 0.0, dampening: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False, *, maximize: bool = False) -> None:
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov, maximize=maximize))

    def _validate(self, group: Dict[str, Any]) -> None:
        super()._validate(group)
        if not callable(group["momentum"]):
            number(group["momentum"], "momentum", lo=0.0)
        number(group["weight_decay"], "weight_decay", lo=0.0)
        number(group["dampening"], "dampening")
        if group["nesterov"] and (callable(group["momentum"]) is False and
                                  (float(group["momentum"]) <= 0 or float(group["dampening"]) != 0)):
            raise ValueError("nesterov: requires a momentum > 0 and zero dampening")

    def _update(self, group: Dict[str, Any], flat: _FlatGroup, t: int) -> None:
        lr = resolve(group["lr"], t)
        mom = resolve(group["momentum"], t)
        if lr < 0 or not math.isfinite(lr):
            raise ValueError(f"lr: the schedule gave {lr} at step {t}; expected a finite value >= 0")
        buf = None
        first = False
        if mom != 0.0:
            first = "momentum_buffer" not in flat.state
            buf = flat.buffer("momentum_buffer")
        _C.sgd_step(flat.data, flat.grad, buf, lr, mom, float(group["dampening"]),
                    float(group["weight_decay"]), bool(group["nesterov"]), bool(group["maximize"]), first)


def clip_grad_norm(params: Iterable[Parameter], max_norm: float, norm_type: float = 2.0) -> float:
    """Scale gradients in place so their global norm is at most max_norm (as
    torch.nn.utils.clip_grad_norm_: factor max_norm / (norm + 1e-6)); returns the norm before."""
    params = [p for p in params]
    max_norm = number(max_norm, "max_norm", lo=0.0)
    if not params:
        return 0.0
    if norm_type == math.inf:
        total = max(float(np.abs(p.grad).max(initial=0.0)) for p in params)
    else:
        total = float(sum(float(np.sum(np.abs(p.grad.astype(np.float64)) ** norm_type)) for p in params)) ** (1.0 / norm_type)
    coef = max_norm / (total + 1e-6)
    if coef < 1.0:
        for p in params:
            p.grad *= np.float32(coef)
    return total
