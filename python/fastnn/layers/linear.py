"""Fully connected layer."""
from __future__ import annotations

from typing import Any, Optional

import numpy as np

from .. import functional as F
from .. import init as I
from .._checks import positive_int
from ..module import Module, Parameter


class Linear(Module):
    """y = x Wᵀ + b. x (N, in_features) -> y (N, out_features); weight (out, in), bias (out,).

    Default init is PyTorch's (weight and bias U(-1/√in, 1/√in)); with `init=` (a name from
    fastnn.init or a callable f(shape, rng=)) the weight is drawn with it and the bias is zero.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 init: Any = None, rng: Optional[np.random.Generator] = None) -> None:
        super().__init__()
        self.in_features = positive_int(in_features, "in_features")
        self.out_features = positive_int(out_features, "out_features")
        self.weight = Parameter(I.make_weight((self.out_features, self.in_features), init, rng))
        self.bias = Parameter(I.make_bias(self.out_features, self.in_features, init, rng)) if bias else None
        self._x: Optional[np.ndarray] = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        from .._checks import as_float32
        x = as_float32(x, "x", shape=(None, self.in_features))
        self._x = x
        return F.linear(x, self.weight.data, None if self.bias is None else self.bias.data)

    def backward(self, dy: np.ndarray) -> np.ndarray:
        if self._x is None:
            raise RuntimeError("Linear.backward called before forward")
        dx, dw, db = F.linear_backward(dy, self._x, self.weight.data)
        self.weight.grad += dw
        if self.bias is not None:
            self.bias.grad += db
        return dx

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"
