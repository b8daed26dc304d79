"""Linear layer and element-wise activations: forward and backward.

Backward functions take the upstream gradient `dy` and the forward input `x` and return
fresh arrays; nothing is modified in place.
"""
from __future__ import annotations

from typing import Optional, Tuple

import numpy as np

from .. import _checks as C
from .._dispatch import _C

__all__ = [
    "linear", "linear_backward",
    "relu", "relu_backward", "leaky_relu", "leaky_relu_backward", "elu", "elu_backward",
    "sigmoid", "sigmoid_backward", "tanh", "tanh_backward", "prelu", "prelu_backward",
]


def linear(x: np.ndarray, w: np.ndarray, b: Optional[np.ndarray] = None) -> np.ndarray:
    """y = x wᵀ + b. x (N, in), w (out, in), b (out,) or None -> y (N, out)."""
    w = C.as_float32(w, "w", ndim=2)
    x = C.as_float32(x, "x", shape=(None, w.shape[1]))
    if b is not None:
        b = C.as_float32(b, "b", shape=(w.shape[0],))
    return _C.linear_forward(x, w, b)


def linear_backward(dy: np.ndarray, x: np.ndarray, w: np.ndarray
                    ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients of y = x wᵀ + b: dy (N, out), x (N, in), w (out, in) -> (dx (N, in), dw (out, in), db (out,))."""
    w = C.as_float32(w, "w", ndim=2)
    x = C.as_float32(x, "x", shape=(None, w.shape[1]))
    dy = C.as_float32(dy, "dy", shape=(x.shape[0], w.shape[0]))
    return _C.linear_backward(dy, x, w)


def _grad_pair(dy: np.ndarray, x: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    x = C.as_float32(x, "x")
    dy = C.as_float32(dy, "dy", shape=x.shape)
    return dy, x


def relu(x: np.ndarray) -> np.ndarray:
    """max(x, 0), element-wise (NaN propagates). Any shape."""
    return _C.relu(C.as_float32(x, "x"))


def relu_backward(dy: np.ndarray, x: np.ndarray) -> np.ndarray:
    """dy where x > 0, else 0. dy and x of the same shape."""
    return _C.relu_backward(*_grad_pair(dy, x))


def leaky_relu(x: np.ndarray, negative_slope: float = 0.01) -> np.ndarray:
    """x if x > 0 else negative_slope * x. Any shape."""
    return _C.leaky_relu(C.as_float32(x, "x"), C.number(negative_slope, "negative_slope"))


def leaky_relu_backward(dy: np.ndarray, x: np.ndarray, negative_slope: float = 0.01) -> np.ndarray:
    """dy if x > 0 else negative_slope * dy."""
    return _C.leaky_relu_backward(*_grad_pair(dy, x), C.number(negative_slope, "negative_slope"))


def elu(x: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    """x if x > 0 else alpha * (exp(x) - 1). Any shape."""
    return _C.elu(C.as_float32(x, "x"), C.number(alpha, "alpha"))


def elu_backward(dy: np.ndarray, x: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    """dy if x > 0 else dy * alpha * exp(x)."""
    return _C.elu_backward(*_grad_pair(dy, x), C.number(alpha, "alpha"))


def sigmoid(x: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-x)). Any shape."""
    return _C.sigmoid(C.as_float32(x, "x"))


def sigmoid_backward(dy: np.ndarray, x: np.ndarray) -> np.ndarray:
    """dy * s * (1 - s) with s = sigmoid(x)."""
    return _C.sigmoid_backward(*_grad_pair(dy, x))


def tanh(x: np.ndarray) -> np.ndarray:
    """tanh(x). Any shape."""
    return _C.tanh(C.as_float32(x, "x"))


def tanh_backward(dy: np.ndarray, x: np.ndarray) -> np.ndarray:
    """dy * (1 - tanh(x)²)."""
    return _C.tanh_backward(*_grad_pair(dy, x))


def _prelu_weight(x: np.ndarray, weight: np.ndarray) -> np.ndarray:
    weight = C.as_float32(weight, "weight", ndim=1)
    channels = x.shape[1] if x.ndim >= 2 else 1
    if weight.shape[0] not in (1, channels):
        raise ValueError(f"weight: expected 1 or {channels} slopes (x.shape[1]), got shape {weight.shape}")
    return weight


def prelu(x: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """x if x > 0 else weight[c] * x, c the channel (axis 1). x (N, C, ...), weight (C,) or (1,)."""
    x = C.as_float32(x, "x", min_ndim=1)
    return _C.prelu(x, _prelu_weight(x, weight))


def prelu_backward(dy: np.ndarray, x: np.ndarray, weight: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """-> (dx like x, dweight like weight); dweight sums x * dy where x <= 0."""
    dy, x = _grad_pair(dy, x)
    return _C.prelu_backward(dy, x, _prelu_weight(x, weight))
