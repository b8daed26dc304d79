"""Pooling layers: MaxPool2d, AvgPool2d (padding counted, as PyTorch) and GlobalAvgPool2d."""
from __future__ import annotations

from typing import Optional, Tuple

import numpy as np

from .. import functional as F
from .._checks import IntOrPair, as_float32, pair
from ..module import Module

__all__ = ["MaxPool2d", "AvgPool2d", "GlobalAvgPool2d"]


class _Pool2d(Module):
    def __init__(self, kernel_size: IntOrPair, stride: Optional[IntOrPair] = None,
                 padding: IntOrPair = 0) -> None:
        super().__init__()
        self.kernel_size = pair(kernel_size, "kernel_size", minimum=1)
        self.stride = self.kernel_size if stride is None else pair(stride, "stride", minimum=1)
        self.padding = pair(padding, "padding", minimum=0)
        if 2 * self.padding[0] > self.kernel_size[0] or 2 * self.padding[1] > self.kernel_size[1]:
            raise ValueError(f"padding: must be at most half the kernel size (as PyTorch), "
                             f"got padding {self.padding} for kernel_size {self.kernel_size}")
        self._x_shape: Optional[Tuple[int, ...]] = None

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class MaxPool2d(_Pool2d):
    """Max over kh x kw windows. x (N, C, H, W) -> (N, C, Ho, Wo); stride defaults to kernel_size."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = as_float32(x, "x", ndim=4)
        y, self._argmax = F.max_pool2d(x, self.kernel_size, self.stride, self.padding)
        self._x_shape = x.shape
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray:
        if self._x_shape is None:
            raise RuntimeError("MaxPool2d.backward called before forward")
        return F.max_pool2d_backward(dy, self._argmax, self._x_shape)


class AvgPool2d(_Pool2d):
    """Mean over kh x kw windows, zero padding counted (PyTorch's count_include_pad=True).
    x (N, C, H, W) -> (N, C, Ho, Wo); stride defaults to kernel_size."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = as_float32(x, "x", ndim=4)
        self._x_shape = x.shape
        return F.avg_pool2d(x, self.kernel_size, self.stride, self.padding)

    def backward(self, dy: np.ndarray) -> np.ndarray:
        if self._x_shape is None:
            raise RuntimeError("AvgPool2d.backward called before forward")
        return F.avg_pool2d_backward(dy, self._x_shape, self.kernel_size, self.stride, self.padding)


class GlobalAvgPool2d(Module):
    """Mean over H and W: x (N, C, H, W) -> (N, C)."""

    def __init__(self) -> None:
        super().__init__()
        self._x_shape: Optional[Tuple[int, ...]] = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = as_float32(x, "x", ndim=4)
        self._x_shape = x.shape
        return F.global_avg_pool2d(x)

    def backward(self, dy: np.ndarray) -> np.ndarray:
        if self._x_shape is None:
            raise RuntimeError("GlobalAvgPool2d.backward called before forward")
        return F.global_avg_pool2d_backward(dy, self._x_shape)
