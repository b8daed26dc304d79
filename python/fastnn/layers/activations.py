"""Activation layers: each caches its input and calls the functional kernels."""
from __future__ import annotations

from typing import Any, Optional

import numpy as np

from .. import functional as F
from .. import init as I
from .._checks import as_float32, number, positive_int
from ..module import Module, Parameter

__all__ = ["Identity", "Sigmoid", "Tanh", "ReLU", "LeakyReLU", "PReLU", "ELU", "Maxout"]


class _Elementwise(Module):
    def __init__(self) -> None:
        super().__init__()
        self._x: Optional[np.ndarray] = None

    def _cached(self) -> np.ndarray:
        if self._x is None:
            raise RuntimeError(f"{type(self).__name__}.backward called before forward")
        return self._x


class Identity(Module):
    """y = x (a placeholder layer)."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        return x

    def backward(self, dy: np.ndarray) -> np.ndarray:
        return dy


class ReLU(_Elementwise):
    """max(x, 0). Any shape."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._x = as_float32(x, "x")
        return F.relu(self._x)

    def backward(self, dy: np.ndarray) -> np.ndarray:
        return F.relu_backward(dy, self._cached())


class Sigmoid(_Elementwise):
    """1 / (1 + exp(-x)). Any shape."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._x = as_float32(x, "x")
        return F.sigmoid(self._x)

    def backward(self, dy: np.ndarray) -> np.ndarray:
        return F.sigmoid_backward(dy, self._cached())


class Tanh(_Elementwise):
    """tanh(x). Any shape."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._x = as_float32(x, "x")
        return F.tanh(self._x)

    def backward(self, dy: np.ndarray) -> np.ndarray:
        return F.tanh_backward(dy, self._cached())


class LeakyReLU(_Elementwise):
    """x if x > 0 else negative_slope · x (PyTorch default slope 0.01)."""

    def __init__(self, negative_slope: float = 0.01) -> None:
        super().__init__()
        self.negative_slope = number(negative_slope, "negative_slope")

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._x = as_float32(x, "x")
        return F.leaky_relu(self._x, self.negative_slope)

    def backward(self, dy: np.ndarray) -> np.ndarray:
        return F.leaky_relu_backward(dy, self._cached(), self.negative_slope)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}"


class ELU(_Elementwise):
    """x if x > 0 else alpha · (exp(x) - 1)."""

    def __init__(self, alpha: float = 1.0) -> None:
        super().__init__()
        self.alpha = number(alpha, "alpha")

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._x = as_float32(x, "x")
        return F.elu(self._x, self.alpha)

    def backward(self, dy: np.ndarray) -> np.ndarray:
        return F.elu_backward(dy, self._cached(), self.alpha)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}"


class PReLU(_Elementwise):
    """Leaky ReLU with a learnable slope: parameter `weight` of shape (num_parameters,), one
    slope per channel (axis 1) or one shared; `init` is the initial slope (PyTorch's 0.25)."""

    def __init__(self, num_parameters: int = 1, init: float = 0.25) -> None:
        super().__init__()
        self.num_parameters = positive_int(num_parameters, "num_parameters")
        self.weight = Parameter(np.full(self.num_parameters, number(init, "init"), np.float32))

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._x = as_float32(x, "x", min_ndim=1)
        return F.prelu(self._x, self.weight.data)

    def backward(self, dy: np.ndarray) -> np.ndarray:
        dx, dw = F.prelu_backward(dy, self._cached(), self.weight.data)
        self.weight.grad += dw
        return dx

    def extra_repr(self) -> str:
        return f"num_parameters={self.num_parameters}"


class Maxout(Module):
    """Maxout unit (Goodfellow et al.): z = x Wᵀ + b with W (out·pieces, in); output j is
    max over k of z[:, j·pieces + k]. x (N, in_features) -> (N, out_features)."""

    def __init__(self, in_features: int, out_features: int, pieces: int = 2, init: Any = None,
                 rng: Optional[np.random.Generator] = None) -> None:
        super().__init__()
        self.in_features = positive_int(in_features, "in_features")
        self.out_features = positive_int(out_features, "out_features")
        self.pieces = positive_int(pieces, "pieces")
        rows = self.out_features * self.pieces
        self.weight = Parameter(I.make_weight((rows, self.in_features), init, rng))
        self.bias = Parameter(I.make_bias(rows, self.in_features, init, rng))
        self._x: Optional[np.ndarray] = None
        self._arg: Optional[np.ndarray] = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = as_float32(x, "x", shape=(None, self.in_features))
        z = F.linear(x, self.weight.data, self.bias.data).reshape(x.shape[0], self.out_features, self.pieces)
        arg = z.argmax(axis=2)
        self._x, self._arg = x, arg
        return np.take_along_axis(z, arg[:, :, None], axis=2)[:, :, 0]

    def backward(self, dy: np.ndarray) -> np.ndarray:
        if self._x is None or self._arg is None:
            raise RuntimeError("Maxout.backward called before forward")
        n = self._x.shape[0]
        dy = as_float32(dy, "dy", shape=(n, self.out_features))
        dz = np.zeros((n, self.out_features, self.pieces), np.float32)
        np.put_along_axis(dz, self._arg[:, :, None], dy[:, :, None], axis=2)
        dx, dw, db = F.linear_backward(dz.reshape(n, -1), self._x, self.weight.data)
        self.weight.grad += dw
        self.bias.grad += db
        return dx

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, pieces={self.pieces}"
