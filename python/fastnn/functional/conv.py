"""Convolution and pooling kernels (NCHW float32, PyTorch semantics): forward and backward.

Output sizes follow PyTorch (floor mode): Ho = (H + 2·pad - dilation·(k-1) - 1) // stride + 1.
"""
from __future__ import annotations

from typing import Optional, Sequence, Tuple

import numpy as np

from .. import _checks as C
from .._checks import IntOrPair
from .._dispatch import _C

__all__ = [
    "conv2d", "conv2d_backward", "conv2d_output_size",
    "max_pool2d", "max_pool2d_backward", "avg_pool2d", "avg_pool2d_backward",
    "global_avg_pool2d", "global_avg_pool2d_backward",
]


def conv2d_output_size(h: int, w: int, kernel: Tuple[int, int], stride: Tuple[int, int],
                       padding: Tuple[int, int], dilation: Tuple[int, int] = (1, 1)) -> Tuple[int, int]:
    """(Ho, Wo) as PyTorch computes them (floor mode); may be <= 0 for a too-large kernel."""
    ho = (h + 2 * padding[0] - dilation[0] * (kernel[0] - 1) - 1) // stride[0] + 1
    wo = (w + 2 * padding[1] - dilation[1] * (kernel[1] - 1) - 1) // stride[1] + 1
    return ho, wo


def _conv_args(x: np.ndarray, w: np.ndarray, stride: IntOrPair, padding: IntOrPair,
               dilation: IntOrPair, groups: int
               ) -> Tuple[np.ndarray, np.ndarray, Tuple[int, int], Tuple[int, int],
                          Tuple[int, int], int]:
    stride = C.pair(stride, "stride", minimum=1)
    padding = C.pair(padding, "padding", minimum=0)
    dilation = C.pair(dilation, "dilation", minimum=1)
    groups = C.positive_int(groups, "groups")
    w = C.as_float32(w, "w", ndim=4)
    x = C.as_float32(x, "x", ndim=4)
    cin, cout = x.shape[1], w.shape[0]
    if cin % groups:
        raise ValueError(f"groups: in_channels (x.shape[1] = {cin}) must be divisible by groups = {groups}")
    if cout % groups:
        raise ValueError(f"groups: out_channels (w.shape[0] = {cout}) must be divisible by groups = {groups}")
    if w.shape[1] != cin // groups:
        raise ValueError(f"w: expected shape ({cout}, {cin // groups}, kh, kw) "
                         f"(in_channels {cin} / groups {groups}), got {w.shape}")
    if min(w.shape[2:]) < 1:
        raise ValueError(f"w: expected a kernel of at least 1x1, got shape {w.shape}")
    eff = tuple(dilation[i] * (w.shape[2 + i] - 1) + 1 for i in range(2))
    padded = (x.shape[2] + 2 * padding[0], x.shape[3] + 2 * padding[1])
    if eff[0] > padded[0] or eff[1] > padded[1]:
        raise ValueError(f"w: kernel {tuple(w.shape[2:])} (dilated extent {eff}) is larger than "
                         f"the padded input {padded} (x {x.shape}, padding {padding})")
    return x, w, stride, padding, dilation, groups


def conv2d(x: np.ndarray, w: np.ndarray, b: Optional[np.ndarray] = None, stride: IntOrPair = 1,
           padding: IntOrPair = 0, dilation: IntOrPair = 1, groups: int = 1) -> np.ndarray:
    """2-D cross-correlation as torch.nn.functional.conv2d.

    x (N, Cin, H, W), w (Cout, Cin // groups, kh, kw), b (Cout,) or None -> y (N, Cout, Ho, Wo).
    """
    x, w, stride, padding, dilation, groups = _conv_args(x, w, stride, padding, dilation, groups)
    if b is not None:
        b = C.as_float32(b, "b", shape=(w.shape[0],))
    return _C.conv2d_forward(x, w, b, stride, padding, dilation, groups)


def conv2d_backward(dy: np.ndarray, x: np.ndarray, w: np.ndarray, stride: IntOrPair = 1,
                    padding: IntOrPair = 0, dilation: IntOrPair = 1, groups: int = 1
                    ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients of conv2d: dy (N, Cout, Ho, Wo) -> (dx like x, dw like w, db (Cout,)).

    db (dy summed over N, Ho, Wo) is returned whether or not the forward had a bias.
    """
    x, w, stride, padding, dilation, groups = _conv_args(x, w, stride, padding, dilation, groups)
    ho, wo = conv2d_output_size(x.shape[2], x.shape[3], w.shape[2:], stride, padding, dilation)
    dy = C.as_float32(dy, "dy", shape=(x.shape[0], w.shape[0], ho, wo))
    return _C.conv2d_backward(dy, x, w, stride, padding, dilation, groups)


def _pool_args(x_shape: Sequence[int], kernel_size, stride, padding):
    k = C.pair(kernel_size, "kernel_size", minimum=1)
    s = k if stride is None else C.pair(stride, "stride", minimum=1)
    p = C.pair(padding, "padding", minimum=0)
    if 2 * p[0] > k[0] or 2 * p[1] > k[1]:
        raise ValueError(f"padding: must be at most half the kernel size (as PyTorch), "
                         f"got padding {p} for kernel_size {k}")
    h, w = x_shape[2], x_shape[3]
    if h + 2 * p[0] < k[0] or w + 2 * p[1] < k[1]:
        raise ValueError(f"kernel_size: {k} is larger than the padded input "
                         f"({h + 2 * p[0]}, {w + 2 * p[1]}) (x shape {tuple(x_shape)}, padding {p})")
    return k, s, p


def _pool_out(x_shape, k, s, p):
    return (x_shape[0], x_shape[1], (x_shape[2] + 2 * p[0] - k[0]) // s[0] + 1,
            (x_shape[3] + 2 * p[1] - k[1]) // s[1] + 1)


def _x_shape(x_shape) -> Tuple[int, int, int, int]:
    try:
        shp = tuple(int(v) for v in x_shape)
    except TypeError:
        raise TypeError(f"x_shape: expected a sequence of 4 ints, got {x_shape!r}") from None
    if len(shp) != 4 or min(shp) < 0:
        raise ValueError(f"x_shape: expected 4 non-negative sizes (N, C, H, W), got {x_shape!r}")
    return shp


def max_pool2d(x: np.ndarray, kernel_size: IntOrPair, stride: Optional[IntOrPair] = None,
               padding: IntOrPair = 0) -> Tuple[np.ndarray, np.ndarray]:
    """Max pooling as torch.nn.functional.max_pool2d (stride defaults to kernel_size).

    x (N, C, H, W) -> (y (N, C, Ho, Wo), argmax int64 (N, C, Ho, Wo): flat index ih*W + iw of
    each maximum in its input plane). Padding is -inf (never chosen); NaN propagates.
    """
    x = C.as_float32(x, "x", ndim=4)
    k, s, p = _pool_args(x.shape, kernel_size, stride, padding)
    return _C.max_pool2d_forward(x, k, s, p)


def max_pool2d_backward(dy: np.ndarray, argmax: np.ndarray, x_shape: Sequence[int],
                        kernel_size: Optional[IntOrPair] = None, stride: Optional[IntOrPair] = None,
                        padding: IntOrPair = 0) -> np.ndarray:
    """dx (x_shape) with dy (N, C, Ho, Wo) added at the argmax positions (overlaps summed).

    argmax alone defines the scatter; kernel_size/stride/padding, when given, only check shapes.
    """
    shp = _x_shape(x_shape)
    am = np.asarray(argmax)
    if am.dtype.kind not in "iu":
        raise TypeError(f"argmax: expected an integer array, got {C.describe(am)}")
    if am.ndim != 4 or am.shape[:2] != shp[:2]:
        raise ValueError(f"argmax: expected shape ({shp[0]}, {shp[1]}, Ho, Wo), got {am.shape}")
    am = np.ascontiguousarray(am, dtype=np.int64)
    dy = C.as_float32(dy, "dy", shape=am.shape)
    if kernel_size is not None:
        k, s, p = _pool_args(shp, kernel_size, stride, padding)
        if _pool_out(shp, k, s, p) != am.shape:
            raise ValueError(f"dy: expected shape {_pool_out(shp, k, s, p)}, got {am.shape}")
    return _C.max_pool2d_backward(dy, am, list(shp))


def avg_pool2d(x: np.ndarray, kernel_size: IntOrPair, stride: Optional[IntOrPair] = None,
               padding: IntOrPair = 0) -> np.ndarray:
    """Average pooling as torch.nn.functional.avg_pool2d (count_include_pad=True, floor mode).

    x (N, C, H, W) -> y (N, C, Ho, Wo); stride defaults to kernel_size.
    """
    x = C.as_float32(x, "x", ndim=4)
    k, s, p = _pool_args(x.shape, kernel_size, stride, padding)
    return _C.avg_pool2d_forward(x, k, s, p)


def avg_pool2d_backward(dy: np.ndarray, x_shape: Sequence[int], kernel_size: IntOrPair,
                        stride: Optional[IntOrPair] = None, padding: IntOrPair = 0) -> np.ndarray:
    """Gradient of avg_pool2d: dy (N, C, Ho, Wo) -> dx (x_shape)."""
    shp = _x_shape(x_shape)
    k, s, p = _pool_args(shp, kernel_size, stride, padding)
    dy = C.as_float32(dy, "dy", shape=_pool_out(shp, k, s, p))
    return _C.avg_pool2d_backward(dy, list(shp), k, s, p)


def global_avg_pool2d(x: np.ndarray) -> np.ndarray:
    """Mean over H and W: x (N, C, H, W) -> y (N, C)."""
    x = C.as_float32(x, "x", ndim=4)
    if x.shape[2] * x.shape[3] == 0:
        raise ValueError(f"x: expected H, W >= 1, got shape {x.shape}")
    return _C.global_avg_pool2d_forward(x)


def global_avg_pool2d_backward(dy: np.ndarray, x_shape: Sequence[int]) -> np.ndarray:
    """Gradient of global_avg_pool2d: dy (N, C) -> dx (x_shape), each value dy / (H*W)."""
    shp = _x_shape(x_shape)
    if shp[2] * shp[3] == 0:
        raise ValueError(f"x_shape: expected H, W >= 1, got {shp}")
    dy = C.as_float32(dy, "dy", shape=shp[:2])
    return _C.global_avg_pool2d_backward(dy, list(shp))
