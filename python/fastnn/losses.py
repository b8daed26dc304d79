"""Losses: `loss_fn(outputs, targets) -> (loss: float, doutputs: float32 array)`.

Reduction is PyTorch's "mean" in every case; doutputs is d(loss)/d(outputs).
"""
from __future__ import annotations

from typing import Any, Tuple

import numpy as np

from ._checks import as_float32, as_labels, number

__all__ = ["Loss", "SoftmaxCrossEntropy", "MSELoss", "HingeLoss", "log_softmax", "softmax"]


def log_softmax(z: np.ndarray) -> np.ndarray:
    """Numerically stable log-softmax over the last axis (float64 result)."""
    z = np.asarray(z, dtype=np.float64)
    with np.errstate(invalid="ignore", over="ignore"):  # non-finite logits give NaN, reported by the caller
        m = z.max(axis=-1, keepdims=True)
        m = np.where(np.isfinite(m), m, 0.0)
        s = z - m
        return s - np.log(np.exp(s).sum(axis=-1, keepdims=True))


def softmax(z: np.ndarray) -> np.ndarray:
    """Softmax over the last axis (float32 result)."""
    return np.exp(log_softmax(z)).astype(np.float32)


class Loss:
    """Base class: a callable (outputs, targets) -> (loss, doutputs)."""

    def __call__(self, outputs: np.ndarray, targets: Any) -> Tuple[float, np.ndarray]:
        raise NotImplementedError(f"{type(self).__name__} must define __call__(outputs, targets) (abstract in Loss)")

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class SoftmaxCrossEntropy(Loss):
    """Softmax + cross-entropy on logits (N, C), as torch.nn.CrossEntropyLoss.

    targets: class indices (N,) of an integer dtype, or per-class probabilities (N, C)
    (soft targets, e.g. from mixup). Convention: label smoothing ε mixes the target with the
    uniform distribution, q = (1 - ε)·target + ε/C, as PyTorch. Stable for logits of ±1e4.
    """

    def __init__(self, label_smoothing: float = 0.0) -> None:
        self.label_smoothing = number(label_smoothing, "label_smoothing", 0.0, 1.0)

    def __call__(self, outputs: np.ndarray, targets: Any) -> Tuple[float, np.ndarray]:
        z = as_float32(outputs, "outputs", ndim=2, allow_empty=False)
        n, c = z.shape
        t = np.asarray(targets)
        if t.dtype.kind in "iu":
            labels = as_labels(t, "targets", n=n, num_classes=c)
            q = np.zeros((n, c), np.float64)
            q[np.arange(n), labels] = 1.0
        elif t.dtype.kind == "f":
            if t.shape != (n, c):
                raise ValueError(f"targets: soft targets must have the outputs' shape {(n, c)}, got {t.shape}")
            q = t.astype(np.float64)
            if not np.isfinite(q).all():
                raise ValueError("targets: soft targets contain NaN or infinity")
        else:
            raise TypeError(f"targets: expected integer class indices (N,) or float probabilities (N, C), got dtype {t.dtype}")
        eps = self.label_smoothing
        if eps:
            q = (1.0 - eps) * q + eps / c
        logp = log_softmax(z)
        # 0 * (-inf) would be NaN where a target is zero and a logit is -inf: count it as 0.
        with np.errstate(invalid="ignore"):
            loss = float(-(np.where(q != 0, q * logp, 0.0)).sum() / n)
        grad = (np.exp(logp) * q.sum(axis=1, keepdims=True) - q) / n
        return loss, grad.astype(np.float32)

    def __repr__(self) -> str:
        return f"SoftmaxCrossEntropy(label_smoothing={self.label_smoothing})"


class MSELoss(Loss):
    """mean((outputs - targets)²) over all elements, as F.mse_loss. Same shapes required."""

    def __call__(self, outputs: np.ndarray, targets: Any) -> Tuple[float, np.ndarray]:
        y = as_float32(outputs, "outputs", allow_empty=False)
        t = as_float32(targets, "targets")
        if t.shape != y.shape:
            raise ValueError(f"targets: expected the outputs' shape {y.shape}, got {t.shape}")
        d = y.astype(np.float64) - t
        loss = float(np.mean(d * d))
        return loss, (2.0 * d / d.size).astype(np.float32)


class HingeLoss(Loss):
    """Multi-class SVM loss, as F.multi_margin_loss (p=1): per sample the sum over wrong
    classes j of max(0, margin - x[y] + x[j]), divided by C; mean over the batch."""

    def __init__(self, margin: float = 1.0) -> None:
        self.margin = number(margin, "margin")

    def __call__(self, outputs: np.ndarray, targets: Any) -> Tuple[float, np.ndarray]:
        x = as_float32(outputs, "outputs", ndim=2, allow_empty=False)
        n, c = x.shape
        y = as_labels(targets, "targets", n=n, num_classes=c)
        xd = x.astype(np.float64)
        correct = xd[np.arange(n), y][:, None]
        m = self.margin - correct + xd
        m[np.arange(n), y] = 0.0
        active = m > 0
        loss = float(np.where(active, m, 0.0).sum() / (c * n))
        g = active.astype(np.float64)
        g[np.arange(n), y] = -g.sum(axis=1)
        return loss, (g / (c * n)).astype(np.float32)

    def __repr__(self) -> str:
        return f"HingeLoss(margin={self.margin})"
