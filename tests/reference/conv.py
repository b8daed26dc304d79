"""float64 NumPy references (direct loops, clarity first) for conv2d and pooling, PyTorch semantics."""
from __future__ import annotations

import numpy as np


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def conv2d(x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
    """x (N, Cin, H, W), w (Cout, Cin/groups, kh, kw) -> y (N, Cout, Ho, Wo), float64."""
    x = np.asarray(x, np.float64); w = np.asarray(w, np.float64)
    (sh, sw), (ph, pw), (dh, dw) = _pair(stride), _pair(padding), _pair(dilation)
    n, cin, h, wd = x.shape
    cout, cg, kh, kw = w.shape
    og = cout // groups
    ho = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    wo = (wd + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    y = np.zeros((n, cout, ho, wo))
    for o in range(cout):
        g = o // og
        xs = xp[:, g * cg:(g + 1) * cg]
        for i in range(kh):
            for j in range(kw):
                patch = xs[:, :, i * dh:i * dh + sh * (ho - 1) + 1:sh, j * dw:j * dw + sw * (wo - 1) + 1:sw]
                y[:, o] += np.einsum("nchw,c->nhw", patch, w[o, :, i, j])
        if b is not None:
            y[:, o] += float(b[o])
    return y


def conv2d_backward(dy, x, w, stride=1, padding=0, dilation=1, groups=1):
    """-> (dx, dw, db) of sum(conv2d(x, w, b) * dy), float64."""
    x = np.asarray(x, np.float64); w = np.asarray(w, np.float64); dy = np.asarray(dy, np.float64)
    (sh, sw), (ph, pw), (dh, dw_) = _pair(stride), _pair(padding), _pair(dilation)
    n, cin, h, wd = x.shape
    cout, cg, kh, kw = w.shape
    og = cout // groups
    ho, wo = dy.shape[2], dy.shape[3]
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    dxp = np.zeros_like(xp)
    dw = np.zeros_like(w)
    for o in range(cout):
        g = o // og
        for i in range(kh):
            for j in range(kw):
                hs = slice(i * dh, i * dh + sh * (ho - 1) + 1, sh)
                ws = slice(j * dw_, j * dw_ + sw * (wo - 1) + 1, sw)
                patch = xp[:, g * cg:(g + 1) * cg, hs, ws]
                dw[o, :, i, j] = np.einsum("nchw,nhw->c", patch, dy[:, o])
                dxp[:, g * cg:(g + 1) * cg, hs, ws] += w[o, :, i, j][None, :, None, None] * dy[:, o][:, None]
    dx = dxp[:, :, ph:ph + h, pw:pw + wd]
    return dx, dw, dy.sum(axis=(0, 2, 3))


def _windows(h, w, k, s, p):
    (kh, kw), (sh, sw), (ph, pw) = k, s, p
    ho = (h + 2 * ph - kh) // sh + 1
    wo = (w + 2 * pw - kw) // sw + 1
    for oh in range(ho):
        for ow in range(wo):
            h0, w0 = oh * sh - ph, ow * sw - pw
            yield oh, ow, h0, w0, ho, wo


def max_pool2d(x, kernel_size, stride=None, padding=0):
    """-> (y float64, argmax int64 flat index into each H*W plane); padding never wins, the
    first maximum of a window wins, and a NaN beats any number (the last NaN is taken)."""
    x = np.asarray(x, np.float64)
    k = _pair(kernel_size); s = k if stride is None else _pair(stride); p = _pair(padding)
    n, c, h, w = x.shape
    ho = (h + 2 * p[0] - k[0]) // s[0] + 1
    wo = (w + 2 * p[1] - k[1]) // s[1] + 1
    y = np.zeros((n, c, ho, wo)); am = np.zeros((n, c, ho, wo), np.int64)
    for oh, ow, h0, w0, _, _ in _windows(h, w, k, s, p):
        a0, a1 = max(h0, 0), min(h0 + k[0], h)
        b0, b1 = max(w0, 0), min(w0 + k[1], w)
        win = x[:, :, a0:a1, b0:b1].reshape(n, c, -1)
        idx = win.argmax(axis=2)  # first maximum, as PyTorch
        nan = np.isnan(win)  # PyTorch (`v > best || isnan(v)`) ends on the window's last NaN
        idx = np.where(nan.any(2), win.shape[2] - 1 - nan[..., ::-1].argmax(2), idx)
        y[:, :, oh, ow] = np.take_along_axis(win, idx[..., None], 2)[..., 0]
        am[:, :, oh, ow] = (a0 + idx // (b1 - b0)) * w + b0 + idx % (b1 - b0)
    return y, am


def max_pool2d_backward(dy, argmax, x_shape):
    dy = np.asarray(dy, np.float64)
    n, c, h, w = x_shape
    dx = np.zeros((n, c, h * w))
    for i in range(n):
        for j in range(c):
            np.add.at(dx[i, j], argmax[i, j].ravel(), dy[i, j].ravel())
    return dx.reshape(x_shape)


def avg_pool2d(x, kernel_size, stride=None, padding=0):
    """Average over each window, zero padding counted in the divisor (kh*kw)."""
    x = np.asarray(x, np.float64)
    k = _pair(kernel_size); s = k if stride is None else _pair(stride); p = _pair(padding)
    n, c, h, w = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (p[0], p[0]), (p[1], p[1])))
    ho = (h + 2 * p[0] - k[0]) // s[0] + 1
    wo = (w + 2 * p[1] - k[1]) // s[1] + 1
    y = np.zeros((n, c, ho, wo))
    for oh in range(ho):
        for ow in range(wo):
            y[:, :, oh, ow] = xp[:, :, oh * s[0]:oh * s[0] + k[0], ow * s[1]:ow * s[1] + k[1]].mean(axis=(2, 3))
    return y


def avg_pool2d_backward(dy, x_shape, kernel_size, stride=None, padding=0):
    dy = np.asarray(dy, np.float64)
    k = _pair(kernel_size); s = k if stride is None else _pair(stride); p = _pair(padding)
    n, c, h, w = x_shape
    dxp = np.zeros((n, c, h + 2 * p[0], w + 2 * p[1]))
    for oh in range(dy.shape[2]):
        for ow in range(dy.shape[3]):
            dxp[:, :, oh * s[0]:oh * s[0] + k[0], ow * s[1]:ow * s[1] + k[1]] += \
                dy[:, :, oh, ow][:, :, None, None] / (k[0] * k[1])
    return dxp[:, :, p[0]:p[0] + h, p[1]:p[1] + w]


def global_avg_pool2d(x):
    return np.asarray(x, np.float64).mean(axis=(2, 3))


def global_avg_pool2d_backward(dy, x_shape):
    n, c, h, w = x_shape
    return np.broadcast_to(np.asarray(dy, np.float64)[:, :, None, None] / (h * w), x_shape).copy()
