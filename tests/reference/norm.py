"""Float64 NumPy references for batch normalization and dropout (clarity over speed)."""
from __future__ import annotations

from typing import Optional, Tuple

import numpy as np


def _axes(x: np.ndarray) -> Tuple[int, ...]:
    return (0,) + tuple(range(2, x.ndim))


def _bc(v: np.ndarray, x: np.ndarray) -> np.ndarray:
    return np.asarray(v, np.float64).reshape((1, -1) + (1,) * (x.ndim - 2))


def batch_norm(x, gamma, beta, running_mean, running_var, training=True, momentum=0.1, eps=1e-5):
    """-> (y, save_mean, save_invstd, new_running_mean, new_running_var), all float64."""
    x = np.asarray(x, np.float64)
    c = x.shape[1]
    g = np.ones(c) if gamma is None else np.asarray(gamma, np.float64)
    b = np.zeros(c) if beta is None else np.asarray(beta, np.float64)
    if training:
        m = x.size // c
        mean = x.mean(axis=_axes(x))
        var = ((x - _bc(mean, x)) ** 2).mean(axis=_axes(x))          # biased
        rm = rv = None
        if running_mean is not None:
            rm = (1 - momentum) * np.asarray(running_mean, np.float64) + momentum * mean
        if running_var is not None:
            rv = (1 - momentum) * np.asarray(running_var, np.float64) + momentum * var * m / (m - 1)
    else:
        mean = np.asarray(running_mean, np.float64)
        var = np.asarray(running_var, np.float64)
        rm, rv = mean, var
    invstd = 1.0 / np.sqrt(var + eps)
    y = (x - _bc(mean, x)) * _bc(invstd, x) * _bc(g, x) + _bc(b, x)
    return y, mean, invstd, rm, rv


def batch_norm_backward(dy, x, gamma, save_mean, save_invstd, training=True):
    """-> (dx, dgamma, dbeta) float64; training: the statistics depend on x."""
    x = np.asarray(x, np.float64)
    dy = np.asarray(dy, np.float64)
    c = x.shape[1]
    g = np.ones(c) if gamma is None else np.asarray(gamma, np.float64)
    xhat = (x - _bc(save_mean, x)) * _bc(save_invstd, x)
    dbeta = dy.sum(axis=_axes(x))
    dgamma = (dy * xhat).sum(axis=_axes(x))
    dyhat = dy * _bc(g, x)
    if not training:
        return dyhat * _bc(save_invstd, x), dgamma, dbeta
    m = x.size // c
    dx = _bc(save_invstd, x) / m * (m * dyhat - _bc(dyhat.sum(axis=_axes(x)), x)
                                    - xhat * _bc((dyhat * xhat).sum(axis=_axes(x)), x))
    return dx, dgamma, dbeta


def dropout(x, mask):
    """y = x * mask (mask already holds 0 or 1/(1-p))."""
    return np.asarray(x, np.float64) * mask


def dropout_mask(shape, p, seed):
    """fastnn's dropout mask in NumPy: SplitMix64 as a counter-based generator. Element pair j
    (elements 2j, 2j+1 of the flat array) takes mix(seed + (j + 1) * gamma), its top 24 bits
    for element 2j and bits 8-31 for 2j + 1, each times 2^-24 as a float32 uniform u;
    mask = 1/(1-p) where u >= p, else 0."""
    n = int(np.prod(shape, dtype=np.int64))
    j = np.arange((n + 1) // 2, dtype=np.uint64)
    with np.errstate(over="ignore"):
        z = np.uint64(seed) + (j + np.uint64(1)) * np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z = z ^ (z >> np.uint64(31))
    u0 = (z >> np.uint64(40)).astype(np.float32) * np.float32(2.0 ** -24)
    u1 = ((z >> np.uint64(8)) & np.uint64(0xFFFFFF)).astype(np.float32) * np.float32(2.0 ** -24)
    u = np.stack([u0, u1], axis=1).reshape(-1)[:n]
    mask = np.where(u >= np.float32(p), np.float32(1.0 / (1.0 - p)), np.float32(0.0))
    return mask.astype(np.float32).reshape(shape)
