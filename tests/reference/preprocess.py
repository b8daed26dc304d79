"""Float64 NumPy references for fastnn.preprocess: plain formulas, and whitening through the
SVD of the centred data (a different route from the covariance eigen-decomposition)."""
from __future__ import annotations

import numpy as np


def standardize(x_train, x, eps):
    xt = np.asarray(x_train, np.float64)
    mean = xt.mean(axis=0)
    std = np.sqrt(((xt - mean) ** 2).mean(axis=0))
    return (np.asarray(x, np.float64) - mean) / (std + eps)


def mean_image(x_train, x):
    return np.asarray(x, np.float64) - np.asarray(x_train, np.float64).mean(axis=0)


def channel_mean(x_train, x, scale):
    """Per-channel statistics over every axis but 1; a constant channel is not scaled."""
    xt = np.asarray(x_train, np.float64)
    x = np.asarray(x, np.float64)
    out = np.empty_like(x)
    for c in range(xt.shape[1]):
        v = xt[:, c].ravel()
        m = v.mean()
        s = np.sqrt(((v - m) ** 2).mean())
        out[:, c] = (x[:, c] - m) / (s if scale and s > 0 else 1.0)
    return out


def _svd(x_train):
    xt = np.asarray(x_train, np.float64).reshape(len(x_train), -1)
    mean = xt.mean(axis=0)
    _, s, vt = np.linalg.svd(xt - mean, full_matrices=True)
    lam = np.zeros(xt.shape[1])
    lam[:len(s)] = s ** 2 / xt.shape[0]  # eigenvalues of the 1/N covariance, decreasing
    return mean, lam, vt.T


def pca_whiten(x_train, x, k, eps):
    """(N, *F) -> (N, k); components' signs are arbitrary, so compare up to a sign per column."""
    mean, lam, u = _svd(x_train)
    k = u.shape[1] if k is None else k
    xf = np.asarray(x, np.float64).reshape(len(x), -1)
    return (xf - mean) @ u[:, :k] / np.sqrt(lam[:k] + eps)


def pca_project(x_train, x, k):
    """Projection of x onto the top-k principal subspace (what PCA's inverse gives)."""
    mean, _, u = _svd(x_train)
    xf = np.asarray(x, np.float64).reshape(len(x), -1)
    return ((xf - mean) @ u[:, :k] @ u[:, :k].T + mean).reshape(np.shape(x))


def zca_whiten(x_train, x, eps):
    mean, lam, u = _svd(x_train)
    xf = np.asarray(x, np.float64).reshape(len(x), -1)
    w = (u / np.sqrt(lam + eps)) @ u.T
    return ((xf - mean) @ w).reshape(np.shape(x))
