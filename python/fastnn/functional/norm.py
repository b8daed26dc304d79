"""Batch normalization (forward/backward, PyTorch's numerics), inverted dropout and channel
(spatial) dropout.

Batch norm runs in C++ (fastnn._C): per-channel statistics over N (and H, W) in float64, in a
fixed order, so results are identical at any thread count.
"""
from __future__ import annotations

from typing import Any, Optional, Tuple

import numpy as np

from .. import _checks as C
from .._dispatch import _C

__all__ = ["batch_norm", "batch_norm_backward", "dropout", "dropout_backward", "dropout2d",
           "dropout2d_backward"]


def _channel_param(v: Any, name: str, channels: int) -> Optional[np.ndarray]:
    if v is None:
        return None
    return C.as_float32(v, name, shape=(channels,))


def _running(v: Any, name: str, channels: int, inplace: bool) -> Tuple[Any, Optional[np.ndarray]]:
    """(original, float32 working array). When the update must land in place and the original
    is not already float32 C-contiguous, the working array is a copy written back afterwards."""
    if v is None:
        return None, None
    if inplace and not isinstance(v, np.ndarray):
        raise TypeError(f"{name}: expected a numpy array of shape ({channels},) (updated in place "
                        f"in training mode), got {C.describe(v)}")
    work = C.as_float32(v, name, shape=(channels,))
    if inplace and not v.flags.writeable:
        raise ValueError(f"{name}: expected a writeable array (updated in place in training mode)")
    return v, work


def batch_norm(x: np.ndarray, gamma: Optional[np.ndarray], beta: Optional[np.ndarray],
               running_mean: Optional[np.ndarray], running_var: Optional[np.ndarray],
               training: bool = True, momentum: float = 0.1, eps: float = 1e-5
               ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Batch normalization per channel (axis 1) over N and, for 4-d input, H and W.

    x (N, C) or (N, C, H, W) (also (N, C, L)); gamma, beta (C,) or None (affine=False);
    running_mean, running_var (C,). Returns (y like x, save_mean (C,), save_invstd (C,)).

    training=True: normalizes with the batch mean and the biased batch variance and updates
    the running statistics in place (either may be None to skip it):
    running = (1 - momentum) * running + momentum * batch, running_var taking the unbiased
    variance. Needs more than one value per channel (N*H*W > 1), as PyTorch.
    training=False: normalizes with the running statistics (both required) and returns
    save_mean = running_mean, save_invstd = 1/sqrt(running_var + eps).

    Convention: momentum weights the new batch (PyTorch), not the old statistics (Keras).
    """
    if (training and type(momentum) is float and type(eps) is float and 0.0 <= momentum <= 1.0
            and eps >= 0.0):
        # Fast path: the kernel's binding takes the arrays as they are when every one is already
        # float32 and C-contiguous with the right shape (checked in C++, ~3 us less per call
        # than here) and raises before touching anything otherwise; then the checked path below
        # converts or gives the precise error.
        try:
            return _C.batchnorm_forward_train(x, gamma, beta, running_mean, running_var, momentum, eps)
        except (TypeError, ValueError):
            pass
    elif (not training and type(eps) is float and eps >= 0.0 and running_mean is not None
          and running_var is not None):
        try:  # the same for eval mode (inference): ~8 us less per call
            return _C.batchnorm_forward_eval(x, gamma, beta, running_mean, running_var, eps)
        except (TypeError, ValueError):
            pass
    x = C.as_float32(x, "x", ndim=(2, 3, 4))
    channels = x.shape[1]
    gamma = _channel_param(gamma, "gamma", channels)
    beta = _channel_param(beta, "beta", channels)
    eps = C.number(eps, "eps", lo=0.0)
    if training:
        momentum = C.number(momentum, "momentum", lo=0.0, hi=1.0)
        per_channel = x.size // channels if channels else 0
        if per_channel < 2:
            raise ValueError("x: expected more than 1 value per channel when training, got input "
                             f"shape {x.shape}")
        rm0, rm = _running(running_mean, "running_mean", channels, inplace=True)
        rv0, rv = _running(running_var, "running_var", channels, inplace=True)
        y, mean, invstd = _C.batchnorm_forward_train(x, gamma, beta, rm, rv, momentum, eps)
        for orig, work in ((rm0, rm), (rv0, rv)):
            if orig is not None and work is not None and orig is not work:
                np.copyto(orig, work, casting="unsafe")
        return y, mean, invstd
    if running_mean is None or running_var is None:
        raise ValueError("running_mean, running_var: expected arrays of shape "
                         f"({channels},) in eval mode (training=False), got None")
    rm = C.as_float32(running_mean, "running_mean", shape=(channels,))
    rv = C.as_float32(running_var, "running_var", shape=(channels,))
    return _C.batchnorm_forward_eval(x, gamma, beta, rm, rv, eps)


def batch_norm_backward(dy: np.ndarray, x: np.ndarray, gamma: Optional[np.ndarray],
                        save_mean: np.ndarray, save_invstd: np.ndarray, training: bool = True
                        ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients of batch_norm. dy, x like the forward input; gamma (C,) or None;
    save_mean, save_invstd (C,) as returned by batch_norm. -> (dx like x, dgamma (C,), dbeta (C,)).

    dgamma = sum(dy * xhat) and dbeta = sum(dy) per channel (returned even when gamma is None).
    `training` must match the forward: True (the statistics came from the batch, so they
    depend on x) gives dx = invstd/M * (M*dyhat - sum(dyhat) - xhat*sum(dyhat*xhat)) with
    dyhat = dy*gamma, M = N*H*W; False (eval, fixed running statistics) gives
    dx = dy * gamma * invstd.
    """
    try:  # fast path, as in batch_norm
        return _C.batchnorm_backward(dy, x, gamma, save_mean, save_invstd, bool(training))
    except (TypeError, ValueError):
        pass
    x = C.as_float32(x, "x", ndim=(2, 3, 4))
    channels = x.shape[1]
    dy = C.as_float32(dy, "dy", shape=x.shape)
    gamma = _channel_param(gamma, "gamma", channels)
    save_mean = C.as_float32(save_mean, "save_mean", shape=(channels,))
    save_invstd = C.as_float32(save_invstd, "save_invstd", shape=(channels,))
    return _C.batchnorm_backward(dy, x, gamma, save_mean, save_invstd, bool(training))


def dropout(x: np.ndarray, p: float = 0.5, training: bool = True,
            rng: Optional[np.random.Generator] = None) -> Tuple[np.ndarray, np.ndarray]:
    """Inverted dropout: y = x * mask, mask = (u >= p) / (1 - p) with u ~ U[0, 1).

    x any shape -> (y like x, mask like x, float32). In eval (training=False) or with p == 0,
    y is x itself and the mask is all ones. Convention: p is the drop probability (PyTorch).
    The uniforms (24 random bits each) come from a counter-based generator in C++ keyed by one
    64-bit seed drawn from `rng` (None: fastnn's global generator) per call, so the same rng
    state gives the same mask at any thread count, and the mask is drawn, stored and applied
    in one pass.
    """
    shape = np.shape(x)
    x = C.as_float32(x, "x").reshape(shape)  # (as_float32 gives 0-d input 1 axis)
    p = C.number(p, "p", lo=0.0, hi=1.0, hi_open=True)
    if not training or p == 0.0:
        return x, np.ones_like(x)
    seed = int(C.rng_or_default(rng).integers(0, 2**64, dtype=np.uint64))
    return _C.dropout_forward(x, float(p), seed)


def dropout_backward(dy: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """dx = dy * mask (the mask the forward returned). dy and mask of the same shape."""
    shape = np.shape(mask)
    mask = C.as_float32(mask, "mask").reshape(shape)  # (as_float32 gives 0-d input 1 axis)
    dy = C.as_float32(dy, "dy", shape=shape).reshape(shape)
    return _C.dropout_backward(dy, mask)


def _scale_planes(x: np.ndarray, s: np.ndarray) -> np.ndarray:
    """y[n, c] = x[n, c] * s[n, c] for x (N, C, H, W) float32 C-contiguous and s (N, C) float32:
    the batch-norm inference kernel (threaded, one pass) on the (1, N*C, H, W) view with
    gamma = s, mean 0, variance 1 and eps 0, whose per-channel constants are then exactly
    scale = s * 1/sqrt(1) = s and shift = 0."""
    n, c, h, w = x.shape
    planes = n * c
    y, _, _ = _C.batchnorm_forward_eval(x.reshape(1, planes, h, w), s.reshape(planes), None,
                                        np.zeros(planes, np.float32), np.ones(planes, np.float32), 0.0)
    return y.reshape(x.shape)


def dropout2d(x: np.ndarray, p: float = 0.5, training: bool = True,
              rng: Optional[np.random.Generator] = None) -> Tuple[np.ndarray, np.ndarray]:
    """Channel (spatial) dropout, as torch.nn.functional.dropout2d on (N, C, H, W): each feature
    map x[n, c] is zeroed whole with probability p, the kept ones scaled by 1/(1-p).

    x (N, C, H, W) -> (y like x, mask (N, C, 1, 1) float32 of 0 and 1/(1-p)), y = x * mask.
    Neighbouring pixels of a map are strongly correlated, so dropping single pixels (dropout)
    barely regularizes a convolution's output; dropping whole maps does (Tompson et al. 2015).
    In eval (training=False) or with p == 0, y is x itself and the mask is all ones. The mask
    comes from the same counter-based generator as dropout (one 64-bit seed from `rng` per
    call, None: fastnn's global generator).
    """
    x = C.as_float32(x, "x", ndim=4)
    p = C.number(p, "p", lo=0.0, hi=1.0, hi_open=True)
    n, c = x.shape[:2]
    if not training or p == 0.0:
        return x, np.ones((n, c, 1, 1), np.float32)
    seed = int(C.rng_or_default(rng).integers(0, 2**64, dtype=np.uint64))
    _, mask = _C.dropout_forward(np.ones((n, c), np.float32), float(p), seed)
    return _scale_planes(x, mask), mask.reshape(n, c, 1, 1)


def dropout2d_backward(dy: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """dx = dy * mask: dy (N, C, H, W), mask (N, C, 1, 1) as dropout2d returned it."""
    dy = C.as_float32(dy, "dy", ndim=4)
    mask = C.as_float32(mask, "mask", shape=(dy.shape[0], dy.shape[1], 1, 1))
    return _scale_planes(dy, mask.reshape(dy.shape[:2]))
