"""Pooling: float64 reference gradient checks, kernels vs references on odd sizes (padding,
floor-mode output sizes, padding counted by the average), NaN and ties as PyTorch, 1 vs 2
threads, bad input, the MaxPool2d / AvgPool2d / GlobalAvgPool2d layers, PyTorch agreement."""
from __future__ import annotations

import numpy as np
import pytest

import fastnn
from fastnn import functional as F
from reference import conv as R
from reference.gradcheck import numerical_grad, rel_error

# (x shape, kernel_size, stride, padding): 1x1 images, H != W, non-square kernels and
# strides, padding up to half the kernel, kernels as large as the padded input, and sizes
# where floor mode drops the last partial window (PyTorch's ceil_mode=False).
CASES = [
    ((2, 3, 7, 5), 2, None, 0),           # floor: 7 -> 3, 5 -> 2
    ((2, 3, 7, 5), 3, 2, 1),
    ((1, 2, 9, 6), (3, 2), (2, 1), (1, 1)),
    ((3, 1, 1, 1), 1, 1, 0),              # 1x1 image
    ((2, 2, 1, 1), 2, 1, 1),              # 1x1 image, 2x2 window over the padding
    ((2, 2, 3, 3), 3, None, 0),           # kernel == input
    ((1, 3, 2, 4), (4, 4), 1, (1, 0)),    # kernel == padded input (rows)
    ((2, 4, 8, 11), (2, 5), (3, 2), (1, 2)),
    ((5, 2, 6, 6), 4, 3, 2),
]


def _close(a, ref, tol=1e-5):
    np.testing.assert_allclose(a, ref, rtol=tol, atol=tol * max(1.0, float(np.abs(ref).max())))


def _out_size(xs, k, s, p):
    k = (k, k) if isinstance(k, int) else k
    s = k if s is None else ((s, s) if isinstance(s, int) else s)
    p = (p, p) if isinstance(p, int) else p
    return tuple((xs[2 + i] + 2 * p[i] - k[i]) // s[i] + 1 for i in range(2))


@pytest.mark.parametrize("xs,k,s,p", [CASES[1], CASES[2], CASES[4], CASES[7]])
def test_reference_gradients_by_central_differences(xs, k, s, p):
    rng = np.random.default_rng(0)
    x = rng.permutation(np.prod(xs)).reshape(xs) / np.prod(xs)  # distinct: no ties in max
    dy = rng.standard_normal((xs[0], xs[1]) + _out_size(xs, k, s, p))
    y, am = R.max_pool2d(x, k, s, p)
    g = numerical_grad(lambda x_: float((R.max_pool2d(x_, k, s, p)[0] * dy).sum()), x, eps=1e-4)
    assert rel_error(R.max_pool2d_backward(dy, am, xs), g) < 1e-5
    g = numerical_grad(lambda x_: float((R.avg_pool2d(x_, k, s, p) * dy).sum()), x)
    assert rel_error(R.avg_pool2d_backward(dy, xs, k, s, p), g) < 1e-5
    dg = rng.standard_normal(xs[:2])
    g = numerical_grad(lambda x_: float((R.global_avg_pool2d(x_) * dg).sum()), x)
    assert rel_error(R.global_avg_pool2d_backward(dg, xs), g) < 1e-5


@pytest.mark.parametrize("nthreads", [1, 2])
@pytest.mark.parametrize("xs,k,s,p", CASES)
def test_kernels_match_reference(threads, nthreads, xs, k, s, p):
    threads(nthreads)
    rng = np.random.default_rng(1)
    x = (np.round(rng.standard_normal(xs) * 2) / 2).astype(np.float32)  # many ties: first wins
    y, am = F.max_pool2d(x, k, s, p)
    ry, ram = R.max_pool2d(x, k, s, p)
    assert y.shape == ry.shape == (xs[0], xs[1]) + _out_size(xs, k, s, p)
    assert y.dtype == np.float32 and am.dtype == np.int64
    np.testing.assert_array_equal(y, ry.astype(np.float32))
    np.testing.assert_array_equal(am, ram)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    _close(F.max_pool2d_backward(dy, am, xs, k, s, p), R.max_pool2d_backward(dy, am, xs))
    _close(F.avg_pool2d(x, k, s, p), R.avg_pool2d(x, k, s, p))
    _close(F.avg_pool2d_backward(dy, xs, k, s, p), R.avg_pool2d_backward(dy, xs, k, s, p))
    _close(F.global_avg_pool2d(x), R.global_avg_pool2d(x))
    dg = rng.standard_normal(xs[:2]).astype(np.float32)
    _close(F.global_avg_pool2d_backward(dg, xs), R.global_avg_pool2d_backward(dg, xs))


def test_average_counts_padding():
    x = np.ones((1, 1, 2, 2), np.float32)
    y = F.avg_pool2d(x, 2, 1, 1)  # 3x3 windows over a zero border
    np.testing.assert_allclose(y[0, 0], [[0.25, 0.5, 0.25], [0.5, 1.0, 0.5], [0.25, 0.5, 0.25]])
    dx = F.avg_pool2d_backward(np.ones_like(y), x.shape, 2, 1, 1)
    np.testing.assert_allclose(dx, np.ones_like(x))  # each input lies in 4 windows of 1/4


def test_max_pool_nan_and_padding_as_torch():
    x = np.array([[[[1, np.nan, 3, np.nan, -np.inf, -np.inf, -np.inf, -np.inf]]]], np.float32)
    y, am = F.max_pool2d(x, (1, 4), (1, 2), (0, 1))
    ry, ram = R.max_pool2d(x, (1, 4), (1, 2), (0, 1))
    assert np.isnan(y[0, 0, 0, :3]).all() and y[0, 0, 0, 3] == -np.inf
    np.testing.assert_array_equal(am, ram)
    assert am[0, 0, 0].tolist() == [1, 3, 3, 5]  # last NaN; all -inf keeps the first in-bounds index
    torch = pytest.importorskip("torch")
    ty, ti = torch.nn.functional.max_pool2d_with_indices(torch.tensor(x), (1, 4), (1, 2), (0, 1))
    np.testing.assert_array_equal(am, ti.numpy())
    np.testing.assert_array_equal(np.isnan(y), np.isnan(ty.numpy()))


@pytest.mark.parametrize("op", ["max", "avg", "global"])
def test_identical_at_one_and_two_threads(threads, op):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((9, 13, 17, 10)).astype(np.float32)
    out = []
    for n in (1, 2):
        threads(n)
        if op == "max":
            y, am = F.max_pool2d(x, 3, 2, 1)
            out.append((y, am, F.max_pool2d_backward(np.cos(y), am, x.shape)))
        elif op == "avg":
            y = F.avg_pool2d(x, (3, 2), (2, 1), (1, 0))
            out.append((y, F.avg_pool2d_backward(np.cos(y), x.shape, (3, 2), (2, 1), (1, 0))))
        else:
            y = F.global_avg_pool2d(x)
            out.append((y, F.global_avg_pool2d_backward(np.cos(y), x.shape)))
    for a, b in zip(*out):
        np.testing.assert_array_equal(a, b)


def test_matches_torch():
    torch = pytest.importorskip("torch")
    TF = torch.nn.functional
    rng = np.random.default_rng(3)
    for xs, k, s, p in CASES:
        x = rng.standard_normal(xs).astype(np.float32)
        tx = torch.tensor(x, requires_grad=True)
        ty, ti = TF.max_pool2d_with_indices(tx, k, s, p)
        y, am = F.max_pool2d(x, k, s, p)
        np.testing.assert_array_equal(y, ty.detach().numpy())
        np.testing.assert_array_equal(am, ti.numpy())
        dy = rng.standard_normal(y.shape).astype(np.float32)
        ty.backward(torch.tensor(dy))
        _close(F.max_pool2d_backward(dy, am, xs), tx.grad.numpy())
        tx.grad = None
        ta = TF.avg_pool2d(tx, k, s, p)  # count_include_pad=True, ceil_mode=False by default
        _close(F.avg_pool2d(x, k, s, p), ta.detach().numpy())
        ta.backward(torch.tensor(dy))
        _close(F.avg_pool2d_backward(dy, xs, k, s, p), tx.grad.numpy())


@pytest.mark.parametrize("fn", ["max", "avg"])
@pytest.mark.parametrize("xs,kw,exc,match", [
    ((1, 2, 3, 3), dict(kernel_size=4), ValueError, "kernel_size"),          # > input
    ((1, 2, 3, 3), dict(kernel_size=6, padding=1), ValueError, "kernel_size"),  # > padded input
    ((1, 2, 5, 5), dict(kernel_size=2, padding=2), ValueError, "padding"),    # > k/2
    ((1, 2, 5, 5), dict(kernel_size=2, padding=-1), ValueError, "padding"),
    ((1, 2, 5, 5), dict(kernel_size=2, stride=0), ValueError, "stride"),
    ((1, 2, 5, 5), dict(kernel_size=(2, 0)), ValueError, "kernel_size"),
    ((1, 2, 5, 5), dict(kernel_size=2.5), TypeError, "kernel_size"),
    ((2, 5, 5), dict(kernel_size=2), ValueError, "x"),
])
def test_bad_input(fn, xs, kw, exc, match):
    x = np.zeros(xs, np.float32)
    with pytest.raises(exc, match=match):
        (F.max_pool2d if fn == "max" else F.avg_pool2d)(x, **kw)


def test_bad_backward_input():
    x = np.random.default_rng(4).standard_normal((2, 3, 6, 6)).astype(np.float32)
    y, am = F.max_pool2d(x, 2)
    with pytest.raises(ValueError, match="argmax"):
        F.max_pool2d_backward(y, am, (2, 4, 6, 6))
    with pytest.raises(ValueError, match="argmax"):
        F.max_pool2d_backward(y, am + 100, x.shape)  # outside the input plane
    with pytest.raises(TypeError, match="argmax"):
        F.max_pool2d_backward(y, am.astype(np.float32), x.shape)
    with pytest.raises(ValueError, match="dy"):
        F.max_pool2d_backward(y[:, :, :2], am, x.shape)
    with pytest.raises(ValueError, match="dy"):
        F.max_pool2d_backward(y, am, x.shape, kernel_size=3)  # shape of another geometry
    with pytest.raises(ValueError, match="x_shape"):
        F.max_pool2d_backward(y, am, (2, 3, 6))
    with pytest.raises(ValueError, match="dy"):
        F.avg_pool2d_backward(y, x.shape, 3)
    with pytest.raises(ValueError, match="dy"):
        F.global_avg_pool2d_backward(np.zeros((2, 4), np.float32), x.shape)
    with pytest.raises(ValueError, match="x"):
        F.global_avg_pool2d(np.zeros((2, 3, 0, 4), np.float32))
    from fastnn._dispatch import _C  # direct calls re-check instead of reading out of bounds
    with pytest.raises(ValueError):
        _C.avg_pool2d_backward(y, [2, 3, 8, 6], (2, 2), (2, 2), (0, 0))
    with pytest.raises(ValueError):
        _C.max_pool2d_forward(x, (2, 2), (2, 2), (2, 2))


def test_layers_forward_backward():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3, 4, 9, 7)).astype(np.float32)
    mp = fastnn.MaxPool2d(3, stride=2, padding=1)
    y = mp(x)
    ry, ram = R.max_pool2d(x, 3, 2, 1)
    _close(y, ry)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    _close(mp.backward(dy), R.max_pool2d_backward(dy, ram, x.shape))
    ap = fastnn.AvgPool2d((2, 3), padding=(1, 1))
    assert ap.stride == (2, 3)  # defaults to kernel_size
    y = ap(x)
    _close(y, R.avg_pool2d(x, (2, 3), (2, 3), (1, 1)))
    dy = rng.standard_normal(y.shape).astype(np.float32)
    _close(ap.backward(dy), R.avg_pool2d_backward(dy, x.shape, (2, 3), (2, 3), (1, 1)))
    gp = fastnn.GlobalAvgPool2d()
    _close(gp(x), x.astype(np.float64).mean(axis=(2, 3)))
    dg = rng.standard_normal((3, 4)).astype(np.float32)
    _close(gp.backward(dg), R.global_avg_pool2d_backward(dg, x.shape))
    assert mp.parameters() == [] and "kernel_size=(3, 3)" in repr(mp)
    for layer in (fastnn.MaxPool2d(2), fastnn.AvgPool2d(2), fastnn.GlobalAvgPool2d()):
        with pytest.raises(RuntimeError, match="before forward"):
            layer.backward(np.zeros((1, 1, 1, 1), np.float32))
    with pytest.raises(ValueError, match="padding"):
        fastnn.MaxPool2d(2, padding=2)
