"""Initializers: sample statistics on large draws, PyTorch's fans, orthogonality, LSUV."""
from __future__ import annotations

import math

import warnings

import numpy as np
import pytest

import fastnn
from fastnn import init as I
from fastnn.module import Module, Parameter

LIN = (400, 300)            # fan_in 300, fan_out 400
CONV = (64, 32, 5, 5)       # fan_in 32*25 = 800, fan_out 64*25 = 1600


def _rng():
    return np.random.default_rng(2024)


def test_fans_follow_pytorch():
    assert I.fans(LIN) == (300, 400)
    assert I.fans(CONV) == (800, 1600)
    assert I.fans((10,)) == (10, 10)
    assert I.fans((8, 4, 3)) == (12, 24)
    torch = pytest.importorskip("torch")
    from torch.nn.init import _calculate_fan_in_and_fan_out
    for s in (LIN, CONV, (8, 4, 3), (6, 2, 1, 7)):
        assert I.fans(s) == _calculate_fan_in_and_fan_out(torch.empty(s))


# (initializer, kwargs, expected mean, expected variance) for each shape
def _cases(shape):
    fi, fo = I.fans(shape)
    return [
        (I.normal, dict(mean=0.5, std=2.0), 0.5, 4.0),
        (I.uniform, dict(a=-1.0, b=3.0), 1.0, 16 / 12),
        (I.small_random, {}, 0.0, 1e-4),
        (I.xavier_normal, dict(gain=2.0), 0.0, 4 * 2 / (fi + fo)),
        (I.xavier_uniform, dict(gain=1.5), 0.0, 2.25 * 2 / (fi + fo)),
        (I.he_normal, {}, 0.0, 2 / fi),
        (I.he_normal, dict(mode="fan_out"), 0.0, 2 / fo),
        (I.he_normal, dict(negative_slope=0.2), 0.0, 2 / (1 + 0.04) / fi),
        (I.he_uniform, {}, 0.0, 2 / fi),
        (I.he_uniform, dict(mode="fan_out", negative_slope=0.1), 0.0, 2 / 1.01 / fo),
        (I.lecun_normal, {}, 0.0, 1 / fi),
        (I.torch_default, {}, 0.0, 1 / (3 * fi)),
        (I.orthogonal, {}, 0.0, None),        # variance checked in the orthogonality test
    ]


@pytest.mark.parametrize("shape", [LIN, CONV])
def test_sample_statistics(shape):
    n = int(np.prod(shape))
    for f, kw, mean, var in _cases(shape):
        w = f(shape, rng=_rng(), **kw)
        assert w.shape == shape and w.dtype == np.float32, f.__name__
        if var is None:
            continue
        sd = math.sqrt(var)
        assert abs(w.mean() - mean) < 5 * sd / math.sqrt(n), (f.__name__, kw)
        assert abs(w.var(dtype=np.float64) / var - 1) < 0.03, (f.__name__, kw, w.var(), var)


def test_uniform_bounds_and_constants():
    fi, fo = I.fans(CONV)
    a = math.sqrt(6 / (fi + fo))
    w = I.xavier_uniform(CONV, rng=_rng())
    assert np.abs(w).max() <= a and np.abs(w).max() > 0.99 * a
    b = math.sqrt(6 / fi)
    w = I.he_uniform(CONV, rng=_rng())
    assert np.abs(w).max() <= b and np.abs(w).max() > 0.99 * b
    np.testing.assert_array_equal(I.zeros((3, 4)), 0)
    np.testing.assert_array_equal(I.constant((3, 4), 2.5), 2.5)
    assert I.calculate_gain("tanh") == pytest.approx(5 / 3)
    assert I.calculate_gain("leaky_relu", 0.2) == pytest.approx(math.sqrt(2 / 1.04))


@pytest.mark.parametrize("shape", [(50, 50), (20, 70), (70, 20), (16, 8, 3, 3), (8, 16, 3, 3)])
@pytest.mark.parametrize("gain", [1.0, math.sqrt(2)])
def test_orthogonal(shape, gain):
    w = I.orthogonal(shape, gain=gain, rng=_rng()).reshape(shape[0], -1).astype(np.float64)
    rows, cols = w.shape
    gram = w @ w.T if rows <= cols else w.T @ w
    np.testing.assert_allclose(gram, gain ** 2 * np.eye(min(rows, cols)), atol=1e-5)


def test_same_seed_same_draw_and_get():
    np.testing.assert_array_equal(I.he_normal(LIN, rng=np.random.default_rng(1)),
                                  I.he_normal(LIN, rng=np.random.default_rng(1)))
    assert I.get("glorot_uniform") is I.xavier_uniform
    assert I.get(None) is I.torch_default
    with pytest.raises(ValueError, match="init"):
        I.get("nope")
    with pytest.raises(TypeError, match="init"):
        I.get(3)
    with pytest.raises(ValueError, match="shape"):
        I.orthogonal((5,))
    with pytest.raises(ValueError, match="mode"):
        I.he_normal(LIN, mode="fan_avg")
    with pytest.raises(ValueError, match="std"):
        I.normal(LIN, std=-1.0)
    with pytest.raises(ValueError, match="shape"):
        I.zeros((-1, 3))


# -- LSUV -----------------------------------------------------------------------------------------
class Conv1x1(Module):
    """A 4-d-weight layer (a 1x1 convolution in NumPy) named like Conv2d: exercises LSUV's
    4-d path without the convolution kernels."""

    def __init__(self, cin, cout, rng):
        super().__init__()
        self.weight = Parameter(rng.standard_normal((cout, cin, 1, 1)).astype(np.float32))
        self.bias = Parameter(np.zeros(cout, np.float32))

    def forward(self, x):
        return (np.einsum("oi,nihw->nohw", self.weight.data[:, :, 0, 0], x)
                + self.bias.data[None, :, None, None]).astype(np.float32)


Conv1x1.__name__ = "Conv2d"


class TwoBranch(Module):
    """Not a Sequential: LSUV must run it whole and capture its layers' outputs."""

    def __init__(self, rng):
        super().__init__()
        self.a = fastnn.Linear(16, 16, rng=rng)
        self.b = fastnn.Linear(16, 16, rng=rng)

    def forward(self, x):
        return np.tanh(self.a(x)) + self.b(x)


def _layer_outputs(model, x):
    """Each target layer's output, recomputed independently of lsuv's own bookkeeping."""
    outs = {}
    originals = {}
    for name, m in model.named_modules():
        if type(m).__name__ in ("Linear", "Conv2d"):
            originals[name] = m

    def wrap(name, m):
        f = type(m).forward
        object.__setattr__(m, "forward", lambda inp: outs.setdefault(name, f(m, inp)))

    for name, m in originals.items():
        wrap(name, m)
    try:
        model.eval()
        model(x)
    finally:
        for m in originals.values():
            object.__delattr__(m, "forward")
    return outs


def test_lsuv_mlp_each_layer_unit_variance():
    rng = np.random.default_rng(0)
    model = fastnn.Sequential(
        fastnn.Linear(20, 64, rng=rng), fastnn.ReLU(),
        fastnn.Sequential(fastnn.Linear(64, 32, rng=rng), fastnn.Tanh(), fastnn.Dropout(0.5)),
        fastnn.Residual(fastnn.Linear(32, 32, rng=rng)),
        fastnn.Linear(32, 10, rng=rng))
    model.train()
    x = (rng.standard_normal((512, 20)) * 4 + 1).astype(np.float32)
    tol = 0.05
    records = fastnn.init.lsuv(model, x, tol=tol, rng=np.random.default_rng(1))
    assert [r[0] for r in records] == ["0", "2.0", "3.block", "4"]
    assert all(abs(after - 1) < tol for _, _, after in records)
    assert abs(records[0][1] - 1) > tol              # the input scale made it far from 1
    assert model.training and model[2][2].training    # modes restored
    outs = _layer_outputs(model, x)
    for name, _, after in records:
        v = float(np.var(outs[name], dtype=np.float64))
        assert abs(v - 1) < tol, (name, v)
        assert v == pytest.approx(after, rel=1e-5)


def test_lsuv_conv_shaped_weights_and_generic_container():
    rng = np.random.default_rng(3)
    conv = Conv1x1(3, 8, rng)
    model = fastnn.Sequential(conv, fastnn.ReLU(), fastnn.Flatten(), fastnn.Linear(8 * 4 * 4, 16, rng=rng),
                              TwoBranch(rng), fastnn.Linear(16, 4, rng=rng))
    x = (rng.standard_normal((64, 3, 4, 4)) * 0.1).astype(np.float32)
    records = fastnn.init.lsuv(model, x, tol=0.02, rng=np.random.default_rng(4))
    assert [r[0] for r in records] == ["0", "3", "4.a", "4.b", "5"]
    w = conv.weight.data.reshape(8, 3).astype(np.float64)
    # still orthogonal up to one scale: the rescaling is a single factor per layer
    gram = w.T @ w
    np.testing.assert_allclose(gram / gram[0, 0], np.eye(3), atol=1e-5)
    outs = _layer_outputs(model, x)
    for name, _, after in records:
        assert abs(np.var(outs[name], dtype=np.float64) - 1) < 0.02, name


def test_lsuv_bad_arguments():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="no Linear"):
        fastnn.init.lsuv(fastnn.Sequential(fastnn.ReLU()), np.ones((4, 3), np.float32))
    with pytest.raises(TypeError, match="model"):
        fastnn.init.lsuv("model", np.ones((4, 3), np.float32))
    with pytest.raises(ValueError, match="tol"):
        fastnn.init.lsuv(fastnn.Linear(3, 2, rng=rng), np.ones((4, 3), np.float32), tol=0)
    with pytest.raises(ValueError, match="x"):
        fastnn.init.lsuv(fastnn.Linear(3, 2, rng=rng), np.ones((4, 5), np.float32))
    # a non-finite batch would give NaN variances and leave the weights unscaled
    lin = fastnn.Linear(3, 2, rng=rng)
    before = lin.weight.data.copy()
    for bad in (np.nan, np.inf):
        xb = np.ones((4, 3), np.float32)
        xb[1, 2] = bad
        with pytest.raises(ValueError, match="x_batch: expected finite"):
            fastnn.init.lsuv(lin, xb)
    assert np.array_equal(lin.weight.data, before)  # rejected before anything changed


def test_lsuv_warns_for_a_layer_it_cannot_bring_to_unit_variance():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((64, 6)).astype(np.float32)
    # constant output: the first layer sees only zeros (no bias), nothing to scale
    model = fastnn.Sequential(fastnn.Linear(6, 5, bias=False, rng=rng), fastnn.ReLU())
    with pytest.warns(RuntimeWarning, match=r"layer '0' \(Linear\): output variance 0, .*constant over x_batch"):
        records = fastnn.init.lsuv(model, np.zeros((16, 6), np.float32))
    assert records[0][1:] == (0.0, 0.0) and np.isfinite(model[0].weight.data).all()
    # not converged: a big bias dominates the variance, one scaling is not enough
    lin = fastnn.Linear(6, 4, rng=rng)
    lin.bias.data = np.array([0.0, 0.0, 0.0, 30.0], np.float32)
    with pytest.warns(RuntimeWarning, match=r"layer '' \(Linear\): .*max_iter=1 scalings"):
        (name, before, after), = fastnn.init.lsuv(lin, x, max_iter=1)
    assert abs(after - 1) > 0.05
    # converged: no warning
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        (name, before, after), = fastnn.init.lsuv(fastnn.Linear(6, 4, rng=rng), x)
    assert abs(after - 1) < 0.05


def test_lsuv_real_convolutions_lenet():
    from fastnn.models import lenet
    rng = np.random.default_rng(5)
    model = lenet((1, 12, 12), 10, rng=rng)
    x = rng.random((48, 1, 12, 12)).astype(np.float32)
    records = fastnn.init.lsuv(model, x, tol=0.05, rng=np.random.default_rng(6))
    assert [r[0] for r in records] == ["0", "3", "7", "9"]
    assert all(np.isfinite(b) and abs(a - 1) < 0.05 for _, b, a in records)
    outs = _layer_outputs(model, x)
    for name, _, after in records:
        assert abs(np.var(outs[name], dtype=np.float64) - 1) < 0.05, name
    # the orthogonal start survives the rescaling: rows of the flattened conv weight orthogonal
    w = model[3].weight.data.reshape(32, -1).astype(np.float64)
    gram = w @ w.T
    np.testing.assert_allclose(gram / gram[0, 0], np.eye(32), atol=1e-4)


@pytest.mark.parametrize("make", [
    lambda init, rng: fastnn.Linear(30, 20, init=init, rng=rng),
    lambda init, rng: fastnn.Conv2d(4, 6, 3, init=init, rng=rng),
    lambda init, rng: fastnn.Maxout(12, 5, init=init, rng=rng),
    lambda init, rng: fastnn.BatchNorm2d(8, init=init, rng=rng),
])
def test_weight_owning_layers_take_init_and_rng(make):
    a = make("he_normal", np.random.default_rng(11))
    b = make("he_normal", np.random.default_rng(11))
    np.testing.assert_array_equal(a.weight.data, b.weight.data)
    np.testing.assert_array_equal(a.weight.data,
                                  I.he_normal(a.weight.shape, rng=np.random.default_rng(11)))
    c = make(lambda shape, rng=None: np.full(shape, 0.5), None)
    np.testing.assert_array_equal(c.weight.data, 0.5)
    with pytest.raises(ValueError, match="init"):
        make("nope", None)
    # a callable's result is checked: shape, real numbers, finite (also after float32 rounding)
    with pytest.raises(ValueError, match="init: the initializer returned shape"):
        make(lambda shape, rng=None: np.zeros(3), None)
    with pytest.raises(TypeError, match="init: the initializer returned a <U1 array"):
        make(lambda shape, rng=None: np.full(shape, "a"), None)
    for bad in (np.nan, np.inf, 1e300):
        with pytest.raises(ValueError, match="init: the initializer returned NaN or infinity"):
            make(lambda shape, rng=None, bad=bad: np.full(shape, bad), None)


def test_default_init_is_pytorchs():
    fi = 4 * 3 * 3
    conv = fastnn.Conv2d(4, 600, 3, rng=np.random.default_rng(0))
    bound = 1 / math.sqrt(fi)
    for p in (conv.weight.data, conv.bias.data):
        assert np.abs(p).max() <= bound and np.abs(p).max() > 0.95 * bound
    assert abs(conv.weight.data.var() / (bound ** 2 / 3) - 1) < 0.03
