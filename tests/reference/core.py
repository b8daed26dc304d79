"""Float64 references: linear layer, activations, PReLU, Maxout, losses, SGD (PyTorch's formulas)."""
from __future__ import annotations

import numpy as np


def linear(x, w, b=None):
    y = x @ w.T
    return y + b if b is not None else y


def linear_backward(dy, x, w):
    return dy @ w, dy.T @ x, dy.sum(axis=0)


def relu(x):
    return np.maximum(x, 0.0)


def relu_backward(dy, x):
    return dy * (x > 0)


def leaky_relu(x, negative_slope=0.01):
    return np.where(x > 0, x, negative_slope * x)


def leaky_relu_backward(dy, x, negative_slope=0.01):
    return np.where(x > 0, dy, negative_slope * dy)


def elu(x, alpha=1.0):
    return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0)))


def elu_backward(dy, x, alpha=1.0):
    return np.where(x > 0, dy, dy * alpha * np.exp(np.minimum(x, 0)))


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def sigmoid_backward(dy, x):
    s = sigmoid(x)
    return dy * s * (1 - s)


def tanh(x):
    return np.tanh(x)


def tanh_backward(dy, x):
    return dy * (1 - np.tanh(x) ** 2)


def _slopes(x, weight):
    shape = [1] * x.ndim
    if weight.size > 1:
        shape[1] = weight.size
    return weight.reshape(shape)


def prelu(x, weight):
    return np.where(x > 0, x, _slopes(x, weight) * x)


def prelu_backward(dy, x, weight):
    a = _slopes(x, weight)
    dx = np.where(x > 0, dy, a * dy)
    contrib = np.where(x > 0, 0.0, x * dy)
    if weight.size == 1:
        return dx, np.array([contrib.sum()])
    axes = tuple(i for i in range(x.ndim) if i != 1)
    return dx, contrib.sum(axis=axes)


def maxout(x, w, b, pieces):
    z = linear(x, w, b)
    return z.reshape(x.shape[0], -1, pieces).max(axis=2)


def log_softmax(z):
    m = z.max(axis=1, keepdims=True)
    return z - m - np.log(np.exp(z - m).sum(axis=1, keepdims=True))


def cross_entropy(z, target, label_smoothing=0.0):
    """Mean cross-entropy; target: int labels (N,) or probabilities (N, C). Returns (loss, dz)."""
    n, c = z.shape
    if np.asarray(target).dtype.kind in "iu":
        q = np.eye(c)[target]
    else:
        q = np.asarray(target, np.float64)
    q = (1 - label_smoothing) * q + label_smoothing / c
    lp = log_softmax(z)
    loss = -(q * lp).sum() / n
    dz = (np.exp(lp) * q.sum(axis=1, keepdims=True) - q) / n
    return loss, dz


def mse(y, t):
    d = y - t
    return (d * d).mean(), 2 * d / d.size


def multi_margin(x, y, margin=1.0):
    n, c = x.shape
    loss = 0.0
    g = np.zeros_like(x)
    for i in range(n):
        for j in range(c):
            if j == y[i]:
                continue
            m = margin - x[i, y[i]] + x[i, j]
            if m > 0:
                loss += m
                g[i, j] += 1
                g[i, y[i]] -= 1
    return loss / (n * c), g / (n * c)


def sgd_step(p, g, buf, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False,
             maximize=False):
    """One torch.optim.SGD step on float64 copies; returns (p, buf)."""
    g = -g if maximize else g
    if weight_decay:
        g = g + weight_decay * p
    if momentum:
        buf = g.copy() if buf is None else momentum * buf + (1 - dampening) * g
        g = g + momentum * buf if nesterov else buf
    return p - lr * g, buf
