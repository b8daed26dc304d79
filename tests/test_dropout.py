"""Dropout: mask statistics, scaling, eval identity, backward reuses the mask, seeding."""
from __future__ import annotations

import numpy as np
import pytest

import fastnn
from fastnn import functional as F
from reference import norm as R


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_mask_statistics_and_scaling(p):
    d = fastnn.Dropout(p, rng=np.random.default_rng(0))
    x = np.ones((400, 500), np.float32)
    y = d(x)
    kept = y != 0
    assert abs(kept.mean() - (1 - p)) < 0.01          # 200k draws: sd ~ 0.001
    np.testing.assert_allclose(y[kept], 1.0 / (1.0 - p), rtol=1e-6)
    assert abs(y.mean() - 1.0) < 0.03                  # inverted: the expectation is kept


def test_forward_is_x_times_mask_and_backward_uses_it(rng):
    d = fastnn.Dropout(0.3, rng=np.random.default_rng(5))
    x = rng.standard_normal((8, 3, 5, 5)).astype(np.float32)
    y = d(x)
    mask = d._mask
    np.testing.assert_allclose(y, R.dropout(x, mask), rtol=1e-6)
    dy = rng.standard_normal(x.shape).astype(np.float32)
    dx = d.backward(dy)
    np.testing.assert_allclose(dx, dy * mask, rtol=1e-6)
    assert np.all(dx[y == 0] == 0) and np.all(dx[y != 0] != 0)
    # a second backward reuses the same mask (no new draw)
    np.testing.assert_array_equal(d.backward(dy), dx)


def test_eval_and_p_zero_are_identity(rng):
    x = rng.standard_normal((4, 7)).astype(np.float32)
    d = fastnn.Dropout(0.5, rng=1)
    d.eval()
    np.testing.assert_array_equal(d(x), x)
    dy = rng.standard_normal(x.shape).astype(np.float32)
    np.testing.assert_array_equal(d.backward(dy), dy)
    d0 = fastnn.Dropout(0.0, rng=1)
    np.testing.assert_array_equal(d0(x), x)
    np.testing.assert_array_equal(d0.backward(dy), dy)


def test_same_seed_same_mask_and_fresh_masks_per_call():
    x = np.ones((50, 40), np.float32)
    a, b = fastnn.Dropout(0.5, rng=123), fastnn.Dropout(0.5, rng=123)
    ya, yb = a(x), b(x)
    np.testing.assert_array_equal(ya, yb)
    assert not np.array_equal(a(x), ya)               # the next call draws a new mask
    fastnn.seed(7)
    y1 = fastnn.Dropout(0.5)(x)
    fastnn.seed(7)
    y2 = fastnn.Dropout(0.5)(x)
    np.testing.assert_array_equal(y1, y2)


def test_functional_dropout(rng):
    x = rng.standard_normal((10, 10)).astype(np.float32)
    y, mask = F.dropout(x, 0.25, rng=np.random.default_rng(3))
    assert set(np.unique(mask)) <= {0.0, np.float32(1 / 0.75)}
    np.testing.assert_allclose(y, x * mask)
    np.testing.assert_allclose(F.dropout_backward(np.ones_like(x), mask), mask)
    y_eval, m_eval = F.dropout(x, 0.25, training=False)
    np.testing.assert_array_equal(y_eval, x)
    np.testing.assert_array_equal(m_eval, 1)


def test_bad_arguments():
    for p in (-0.1, 1.0, 1.5):
        with pytest.raises(ValueError, match="p"):
            fastnn.Dropout(p)
    for p in ("half", "0.5", b"0.5"):  # a string is not a rate, even one float() would parse
        with pytest.raises(TypeError, match="p: expected a number, got (str|bytes)"):
            fastnn.Dropout(p)
    with pytest.raises(TypeError, match="rng"):
        fastnn.Dropout(0.5, rng="seed")
    with pytest.raises(RuntimeError, match="before forward"):
        fastnn.Dropout(0.5).backward(np.ones(3, np.float32))
    with pytest.raises(ValueError, match="dy"):
        F.dropout_backward(np.ones(3), np.ones(4))
    with pytest.raises(TypeError, match="x"):
        fastnn.Dropout(0.5)(np.ones(3, np.int32))
    # the C++ layer re-checks what it is handed directly
    from fastnn._dispatch import _C
    with pytest.raises(ValueError, match="p"):
        _C.dropout_forward(np.ones(3, np.float32), 1.0, 0)
    with pytest.raises(ValueError, match="dy"):
        _C.dropout_backward(np.ones(3, np.float32), np.ones(4, np.float32))
    with pytest.raises(TypeError):
        _C.dropout_forward(np.ones(3), 0.5, 0)           # float64: never converted silently


def test_reference_gradient_by_centred_differences(rng):
    x = rng.standard_normal((4, 6))
    mask = np.where(rng.random(x.shape) >= 0.4, 1 / 0.6, 0.0)
    dy = rng.standard_normal(x.shape)
    h = 1e-6
    num = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        xp, xm = x.copy(), x.copy()
        xp[i] += h
        xm[i] -= h
        num[i] = ((R.dropout(xp, mask) * dy).sum() - (R.dropout(xm, mask) * dy).sum()) / (2 * h)
    np.testing.assert_allclose(F.dropout_backward(dy, mask), num, rtol=1e-6, atol=1e-6)


def test_same_masks_at_one_and_two_threads(threads):
    x = np.ones((64, 3, 8, 8), np.float32)
    out = []
    for n in (1, 2):
        threads(n)
        out.append(fastnn.Dropout(0.3, rng=9)(x))
    np.testing.assert_array_equal(out[0], out[1])


@pytest.mark.parametrize("shape, p", [((7, 5), 0.3), ((64, 3, 8, 8), 0.5), ((100_003,), 0.9),
                                      ((1,), 0.2)])
def test_mask_is_the_documented_generator_at_any_thread_count(shape, p, threads):
    """The C++ masks equal a NumPy implementation of the counter-based generator (odd sizes:
    the last element takes the top bits of its pair), at 1, 2 and 3 threads."""
    seed = int(np.random.default_rng(11).integers(0, 2**64, dtype=np.uint64))
    ref = R.dropout_mask(shape, p, seed)
    x = np.linspace(-2, 2, int(np.prod(shape))).astype(np.float32).reshape(shape)
    for n in (1, 2, 3):
        threads(n)
        y, mask = F.dropout(x, p, rng=np.random.default_rng(11))
        np.testing.assert_array_equal(mask, ref)
        np.testing.assert_array_equal(y, x * ref)


def test_neighbouring_draws_are_independent():
    """Two elements share one 64-bit draw: the pairs (2j, 2j+1), and the neighbours across
    pairs, are kept together as often as independent draws would be, and the keep rate holds
    in every block of the array."""
    p, n = 0.3, 1_000_000
    kept = F.dropout(np.ones(n, np.float32), p, rng=np.random.default_rng(4))[1] > 0
    both_in_pair = (kept[0::2] & kept[1::2]).mean()
    both_across = (kept[1:-1:2] & kept[2::2]).mean()
    for rate in (both_in_pair, both_across):       # 500k pairs: sd ~ 0.0007
        assert abs(rate - (1 - p) ** 2) < 0.004
    blocks = kept.reshape(100, -1).mean(axis=1)    # 10k draws each: sd ~ 0.0046
    assert np.all(np.abs(blocks - (1 - p)) < 0.025)


@pytest.mark.parametrize("shape", [(), (0,), (2, 0, 3), (3,)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_scalar_empty_and_float64_inputs_keep_their_shape(shape, dtype):
    x = np.full(shape, 2.0, dtype)
    y, mask = F.dropout(x, 0.5, rng=np.random.default_rng(0))
    assert y.shape == mask.shape == shape and y.dtype == mask.dtype == np.float32
    np.testing.assert_array_equal(y, 2.0 * mask)
    dx = F.dropout_backward(np.ones(shape, dtype), mask)
    assert dx.shape == shape
    np.testing.assert_array_equal(dx, mask)


# -- Dropout2d: whole feature maps ----------------------------------------------------------
@pytest.mark.parametrize("p", [0.2, 0.5])
def test_dropout2d_drops_whole_maps_at_rate_p(p):
    d = fastnn.Dropout2d(p, rng=np.random.default_rng(0))
    x = np.ones((200, 100, 3, 5), np.float32)
    y = d(x)
    maps = y.reshape(200, 100, -1)
    kept = (maps != 0).all(-1)
    assert np.array_equal(kept, (maps != 0).any(-1))  # a map is kept or dropped whole
    assert abs(kept.mean() - (1 - p)) < 0.015          # 20k maps: sd ~ 0.0035
    np.testing.assert_allclose(maps[kept], 1.0 / (1.0 - p), rtol=1e-6)
    assert d._mask.shape == (200, 100, 1, 1)


def test_dropout2d_forward_backward_against_numpy(rng, threads):
    x = rng.standard_normal((6, 5, 7, 3)).astype(np.float32)
    dy = rng.standard_normal(x.shape).astype(np.float32)
    out = []
    for n in (1, 2):
        threads(n)
        d = fastnn.Dropout2d(0.4, rng=21)
        y = d(x)
        mask = d._mask
        assert set(np.unique(mask)) <= {0.0, np.float32(1 / 0.6)}
        np.testing.assert_array_equal(y, x * mask)    # exact: one product per value
        dx = d.backward(dy)
        np.testing.assert_array_equal(dx, dy * mask)
        np.testing.assert_array_equal(d.backward(dy), dx)  # the same mask again
        out.append((y, dx))
    np.testing.assert_array_equal(out[0][0], out[1][0])  # same masks at 1 and 2 threads
    np.testing.assert_array_equal(out[0][1], out[1][1])
    # the mask is the element-wise generator's, drawn over the (N, C) maps
    y, mask = F.dropout2d(x, 0.4, rng=np.random.default_rng(8))
    seed = int(np.random.default_rng(8).integers(0, 2**64, dtype=np.uint64))
    np.testing.assert_array_equal(mask.reshape(6, 5), R.dropout_mask((6, 5), 0.4, seed))


def test_dropout2d_eval_p_zero_and_errors(rng):
    x = rng.standard_normal((2, 3, 4, 4)).astype(np.float32)
    d = fastnn.Dropout2d(0.5, rng=1)
    d.eval()
    np.testing.assert_array_equal(d(x), x)
    np.testing.assert_array_equal(d.backward(x), x)
    y, mask = F.dropout2d(x, 0.0)
    np.testing.assert_array_equal(y, x)
    assert mask.shape == (2, 3, 1, 1) and np.all(mask == 1)
    assert repr(fastnn.Dropout2d(0.25)) == "Dropout2d(p=0.25)"
    with pytest.raises(ValueError, match="p: expected a value < 1.0"):
        fastnn.Dropout2d(1.0)
    with pytest.raises(ValueError, match="x: expected a 4-d array, got shape \\(2, 3\\)"):
        fastnn.Dropout2d(0.5)(np.ones((2, 3), np.float32))
    with pytest.raises(RuntimeError, match="Dropout2d.backward called before forward"):
        fastnn.Dropout2d(0.5).backward(x)
    with pytest.raises(ValueError, match="mask: expected shape \\(2, 3, 1, 1\\)"):
        F.dropout2d_backward(x, np.ones((2, 3), np.float32))
    with pytest.raises(ValueError, match="dy: expected a 4-d array"):
        F.dropout2d_backward(np.ones((2, 3)), np.ones((2, 3, 1, 1)))


def test_dropout2d_in_a_cnn_trains(rng):
    model = fastnn.Sequential(fastnn.Conv2d(1, 4, 3, padding=1, rng=rng), fastnn.ReLU(),
                              fastnn.Dropout2d(0.25, rng=3), fastnn.GlobalAvgPool2d(),
                              fastnn.Linear(4, 2, rng=rng))
    x = rng.standard_normal((32, 1, 6, 6)).astype(np.float32)
    t = (x.mean(axis=(1, 2, 3)) > 0).astype(np.int64)
    loss_fn = fastnn.SoftmaxCrossEntropy()
    opt = fastnn.optim.Adam(model.parameters(), lr=0.05)
    first = None
    for _ in range(60):
        model.zero_grad()
        loss, dout = loss_fn(model(x), t)
        model.backward(dout)
        opt.step()
        first = loss if first is None else first
    model.eval()
    final, _ = loss_fn(model(x), t)
    assert final < 0.5 * first
