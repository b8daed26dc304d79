"""Conv2d layer: a Module over functional.conv2d / conv2d_backward (PyTorch layout and init)."""
from __future__ import annotations

from typing import Any, Optional

import numpy as np

from .. import functional as F
from .. import init as I
from .._checks import IntOrPair, as_float32, pair, positive_int
from ..module import Module, Parameter

__all__ = ["Conv2d"]


class Conv2d(Module):
    """2-D cross-correlation. x (N, C_in, H, W) -> (N, C_out, H_out, W_out).

    weight (C_out, C_in // groups, kh, kw) and bias (C_out,), PyTorch layout. Default init is
    PyTorch's (kaiming_uniform(a=√5) for the weight, U(-1/√fan_in, 1/√fan_in) for the bias,
    fan_in = C_in/groups·kh·kw); with `init=` (a name from fastnn.init or a callable
    f(shape, rng=)) the weight is drawn with it and the bias is zero.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: IntOrPair,
                 stride: IntOrPair = 1, padding: IntOrPair = 0, dilation: IntOrPair = 1,
                 groups: int = 1, bias: bool = True, init: Any = None,
                 rng: Optional[np.random.Generator] = None) -> None:
        super().__init__()
        self.in_channels = positive_int(in_channels, "in_channels")
        self.out_channels = positive_int(out_channels, "out_channels")
        self.kernel_size = pair(kernel_size, "kernel_size", minimum=1)
        self.stride = pair(stride, "stride", minimum=1)
        self.padding = pair(padding, "padding", minimum=0)
        self.dilation = pair(dilation, "dilation", minimum=1)
        self.groups = positive_int(groups, "groups")
        if self.in_channels % self.groups:
            raise ValueError(f"groups: in_channels ({self.in_channels}) must be divisible by groups ({self.groups})")
        if self.out_channels % self.groups:
            raise ValueError(f"groups: out_channels ({self.out_channels}) must be divisible by groups ({self.groups})")
        shape = (self.out_channels, self.in_channels // self.groups) + self.kernel_size
        fan_in = shape[1] * shape[2] * shape[3]
        self.weight = Parameter(I.make_weight(shape, init, rng))
        self.bias = Parameter(I.make_bias(self.out_channels, fan_in, init, rng)) if bias else None
        self._x: Optional[np.ndarray] = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = as_float32(x, "x", ndim=4)
        if x.shape[1] != self.in_channels:
            raise ValueError(f"x: expected {self.in_channels} channels (N, {self.in_channels}, H, W), got shape {x.shape}")
        self._x = x  # cache for backward
        return F.conv2d(x, self.weight.data, None if self.bias is None else self.bias.data,
                        self.stride, self.padding, self.dilation, self.groups)

    def backward(self, dy: np.ndarray) -> np.ndarray:
        if self._x is None:
            raise RuntimeError("Conv2d.backward called before forward")
        dx, dw, db = F.conv2d_backward(dy, self._x, self.weight.data, self.stride, self.padding,
                                       self.dilation, self.groups)
        self.weight.grad += dw  # grads accumulate; dx is fresh
        if self.bias is not None:
            self.bias.grad += db
        return dx

    def extra_repr(self) -> str:
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
             f"stride={self.stride}, padding={self.padding}")
        if self.dilation != (1, 1):
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        return s + f", bias={self.bias is not None}"
