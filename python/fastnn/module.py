"""Parameter, Module, Sequential and Residual: the bookkeeping around the kernels.

Layers follow one contract: `forward(x)` caches what the backward needs; `backward(dy)`
accumulates parameter gradients into `p.grad` and returns a fresh `dx`.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import (Any, Callable, Dict, Iterator, List, Mapping, Optional, SupportsIndex, Tuple,
                    TypeVar, Union, overload)

import numpy as np

__all__ = ["Parameter", "Module", "Sequential", "Residual"]

_M = TypeVar("_M", bound="Module")


class Parameter:
    """A trainable float32 array with its gradient buffer.

    `.data` and `.grad` are float32 arrays of the same shape; assigning to either copies the
    values into the existing buffer (so parameters may live as views of one contiguous
    buffer owned by an optimizer). `.grad` starts as zeros and is accumulated by `backward`.
    """

    __slots__ = ("_data", "_grad", "_bound_to", "__weakref__")

    def __init__(self, data: Any) -> None:
        from ._checks import as_float32
        arr = as_float32(data, "data")
        self._data = np.array(arr, dtype=np.float32, copy=True, order="C")
        self._grad = np.zeros_like(self._data)
        self._bound_to: Any = None

    @property
    def data(self) -> np.ndarray:
        return self._data

    @data.setter
    def data(self, value: Any) -> None:
        self._assign(self._data, value, "data")

    @property
    def grad(self) -> np.ndarray:
        return self._grad

    @grad.setter
    def grad(self, value: Any) -> None:
        if value is None:
            self._grad.fill(0.0)
            return
        self._assign(self._grad, value, "grad")

    @staticmethod
    def _assign(buf: np.ndarray, value: Any, name: str) -> None:
        value = np.asarray(value)
        if value.shape != buf.shape:
            raise ValueError(f"{name}: expected shape {buf.shape}, got {value.shape}")
        if value.dtype.kind not in "fiu":
            raise TypeError(f"{name}: expected a numeric array, got dtype {value.dtype}")
        np.copyto(buf, value, casting="unsafe")

    def _rebind(self, data_view: np.ndarray, grad_view: np.ndarray, owner: Any) -> None:
        """Move the values into views of an external buffer (used by optimizers)."""
        np.copyto(data_view, self._data)
        np.copyto(grad_view, self._grad)
        self._data, self._grad, self._bound_to = data_view, grad_view, owner

    @property
    def shape(self) -> Tuple[int, ...]:
        return self._data.shape

    @property
    def size(self) -> int:
        return self._data.size

    @property
    def dtype(self) -> np.dtype:
        return self._data.dtype

    def zero_grad(self) -> None:
        self._grad.fill(0.0)

    def __repr__(self) -> str:
        return f"Parameter(shape={self._data.shape})"


class Module:
    """Base class of layers and containers (PyTorch's naming and state-dict layout)."""

    # Set in __init__ through object.__setattr__ (declared here for type checkers only: no
    # class attributes are created). `training` is switched by train() / eval().
    training: bool
    _parameters: "OrderedDict[str, Parameter]"
    _buffers: "OrderedDict[str, np.ndarray]"
    _modules: "OrderedDict[str, Module]"

    def __init__(self) -> None:
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)

    # -- registration -------------------------------------------------------------------
    def __setattr__(self, name: str, value: Any) -> None:
        if "_parameters" not in self.__dict__:
            raise RuntimeError(f"{type(self).__name__}.__init__ must call super().__init__() first")
        params, bufs, mods = self._parameters, self._buffers, self._modules
        if name in bufs and isinstance(value, np.ndarray):
            # `self.running_mean = ...` (or `+=`) keeps a buffer registered, as in PyTorch.
            bufs[name] = value
            object.__setattr__(self, name, value)
            return
        for d in (params, bufs, mods):
            d.pop(name, None)
        if isinstance(value, Parameter):
            params[name] = value
        elif isinstance(value, Module):
            mods[name] = value
        object.__setattr__(self, name, value)

    def register_buffer(self, name: str, value: np.ndarray) -> None:
        """A state array that is not trained (e.g. running statistics): in state_dict()."""
        object.__setattr__(self, name, value)
        self._buffers[name] = value

    def _set_buffer(self, name: str, value: np.ndarray) -> None:
        object.__setattr__(self, name, value)
        self._buffers[name] = value

    # -- traversal ----------------------------------------------------------------------
    def named_children(self) -> Iterator[Tuple[str, "Module"]]:
        return iter(self._modules.items())

    def children(self) -> Iterator["Module"]:
        return iter(self._modules.values())

    def named_modules(self, prefix: str = "") -> Iterator[Tuple[str, "Module"]]:
        yield prefix, self
        for name, m in self._modules.items():
            yield from m.named_modules(f"{prefix}.{name}" if prefix else name)

    def modules(self) -> Iterator["Module"]:
        for _, m in self.named_modules():
            yield m

    def apply(self: _M, fn: Callable[["Module"], Any]) -> _M:
        """fn(m) for every submodule, children first (depth first), then self, as PyTorch's
        Module.apply; returns self. The usual way to re-initialize a model:

            def init_weights(m):
                if isinstance(m, fastnn.Linear):
                    m.weight.data = fastnn.init.xavier_uniform(m.weight.shape, rng=rng)
            model.apply(init_weights)
        """
        if not callable(fn):
            raise TypeError(f"fn: expected a callable taking a Module, got {type(fn).__name__}")
        for child in self.children():
            child.apply(fn)
        fn(self)
        return self

    def named_parameters(self, prefix: str = "") -> List[Tuple[str, Parameter]]:
        """(name, Parameter) pairs in registration order, as PyTorch ("0.weight", ...)."""
        out: List[Tuple[str, Parameter]] = []
        seen = set()
        for mname, m in self.named_modules(prefix):
            for pname, p in m._parameters.items():
                if p is None or id(p) in seen:
                    continue
                seen.add(id(p))
                out.append((f"{mname}.{pname}" if mname else pname, p))
        return out

    def parameters(self) -> List[Parameter]:
        return [p for _, p in self.named_parameters()]

    def named_buffers(self, prefix: str = "") -> List[Tuple[str, np.ndarray]]:
        out = []
        for mname, m in self.named_modules(prefix):
            for bname, b in m._buffers.items():
                out.append((f"{mname}.{bname}" if mname else bname, b))
        return out

    # -- modes and gradients ------------------------------------------------------------
    def train(self: _M, mode: bool = True) -> _M:
        for m in self.modules():
            object.__setattr__(m, "training", bool(mode))
        return self

    def eval(self: _M) -> _M:
        return self.train(False)

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.grad.fill(0.0)

    # -- state --------------------------------------------------------------------------
    def state_dict(self) -> "OrderedDict[str, np.ndarray]":
        """name -> array (copies), parameters and buffers, PyTorch's keys and order."""
        out: "OrderedDict[str, np.ndarray]" = OrderedDict()
        for mname, m in self.named_modules():
            pre = f"{mname}." if mname else ""
            for n, p in m._parameters.items():
                if p is not None:
                    out[pre + n] = p.data.copy()
            for n, b in m._buffers.items():
                out[pre + n] = np.array(b, copy=True)
        return out

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True) -> Dict[str, List[str]]:
        """Copy values into the existing parameters and buffers (shapes must match).

        With strict=True, missing or unexpected keys raise KeyError. Returns
        {"missing_keys": [...], "unexpected_keys": [...]}.
        """
        if not isinstance(state_dict, Mapping):
            raise TypeError(f"state_dict: expected a mapping name -> array, got {type(state_dict).__name__}")
        targets: Dict[str, Tuple[Module, str, bool]] = {}
        for mname, m in self.named_modules():
            pre = f"{mname}." if mname else ""
            for n, p in m._parameters.items():
                if p is not None:
                    targets[pre + n] = (m, n, True)
            for n in m._buffers:
                targets[pre + n] = (m, n, False)
        missing = [k for k in targets if k not in state_dict]
        unexpected = [k for k in state_dict if k not in targets]
        if strict and (missing or unexpected):
            raise KeyError(f"load_state_dict: missing keys {missing}, unexpected keys {unexpected}")
        # Check every shape before writing anything, so a mismatch leaves the model intact.
        staged = []
        for k, (m, n, is_param) in targets.items():
            if k not in state_dict:
                continue
            v = np.asarray(state_dict[k])
            cur = m._parameters[n].data if is_param else m._buffers[n]
            if v.shape != cur.shape:
                raise ValueError(f"load_state_dict: {k!r} expected shape {cur.shape}, got {v.shape}")
            if v.dtype.kind not in "fiub":
                raise TypeError(f"load_state_dict: {k!r} expected a numeric array, got dtype {v.dtype}")
            staged.append((m, n, is_param, v))
        for m, n, is_param, v in staged:
            if is_param:
                m._parameters[n].data = v
            else:
                np.copyto(m._buffers[n], v, casting="unsafe")
        return {"missing_keys": missing, "unexpected_keys": unexpected}

    # -- computation --------------------------------------------------------------------
    def forward(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError(f"{type(self).__name__} does not define forward")

    def backward(self, dy: np.ndarray) -> np.ndarray:
        raise NotImplementedError(f"{type(self).__name__} does not define backward")

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.forward(x)

    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__}({self.extra_repr()}"]
        if self._modules:
            for name, m in self._modules.items():
                sub = repr(m).replace("\n", "\n  ")
                lines.append(f"\n  ({name}): {sub}")
            lines.append("\n")
        return "".join(lines) + ")"


class Sequential(Module):
    """Modules applied in order; indexable (`model[0]`), iterable, len()."""

    def __init__(self, *modules: Module) -> None:
        super().__init__()
        for i, m in enumerate(modules):
            if not isinstance(m, Module):
                raise TypeError(f"modules[{i}]: expected a fastnn Module, got {type(m).__name__}")
            setattr(self, str(i), m)

    # An index gives Any: the layers differ in type and only the caller knows which one sits at
    # position i (`model[1].running_mean`); a slice gives a Sequential.
    @overload
    def __getitem__(self, i: SupportsIndex) -> Any: ...
    @overload
    def __getitem__(self, i: slice) -> "Sequential": ...

    def __getitem__(self, i: Union[SupportsIndex, slice]) -> Any:
        mods = list(self._modules.values())
        if isinstance(i, slice):
            return Sequential(*mods[i])
        return mods[i]

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())

    def append(self, m: Module) -> "Sequential":
        if not isinstance(m, Module):
            raise TypeError(f"m: expected a fastnn Module, got {type(m).__name__}")
        setattr(self, str(len(self._modules)), m)
        return self

    def forward(self, x: np.ndarray) -> np.ndarray:
        for m in self._modules.values():
            x = m(x)
        return x

    def backward(self, dy: np.ndarray) -> np.ndarray:
        for m in reversed(list(self._modules.values())):
            dy = m.backward(dy)
        return dy


class Residual(Module):
    """y = x + block(x); block must keep the shape. Parameters under "block."."""

    def __init__(self, block: Module) -> None:
        super().__init__()
        if not isinstance(block, Module):
            raise TypeError(f"block: expected a fastnn Module, got {type(block).__name__}")
        self.block = block

    def forward(self, x: np.ndarray) -> np.ndarray:
        y = self.block(x)
        if y.shape != np.shape(x):
            raise ValueError(f"Residual: block changed the shape {np.shape(x)} -> {y.shape}; "
                             "a residual block must keep it")
        return y + x

    def backward(self, dy: np.ndarray) -> np.ndarray:
        return self.block.backward(dy) + dy
