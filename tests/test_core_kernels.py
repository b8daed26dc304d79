"""Linear and activation kernels against the float64 references; reference gradients by
centred differences; thread-count independence; bad inputs."""
import numpy as np
import pytest

import fastnn
import fastnn.functional as F
from reference import core as R
from reference.gradcheck import numerical_grad, rel_error

ACTS = [
    ("relu", {}), ("leaky_relu", {"negative_slope": 0.2}), ("elu", {"alpha": 1.3}),
    ("sigmoid", {}), ("tanh", {}),
]
# 1, just below / at / above the AVX-512 width, and sizes that are not chunk multiples.
SIZES = [1, 15, 16, 17, 1000, (1 << 15) + 3]


def _x(rng, n):
    x = rng.standard_normal(n) * 3
    x[::7] = 0.0  # exercise the kink at 0
    return x


@pytest.mark.parametrize("name,kw", ACTS)
def test_reference_activation_gradients(name, kw, rng):
    x = rng.standard_normal(23) * 2
    x[np.abs(x) < 1e-3] = 0.5  # centred differences need distance from the kink
    dy = rng.standard_normal(23)
    fwd, bwd = getattr(R, name), getattr(R, name + "_backward")
    num = numerical_grad(lambda v: float((fwd(v, **kw) * dy).sum()), x.copy())
    assert rel_error(bwd(dy, x, **kw), num) < 1e-4


@pytest.mark.parametrize("name,kw", ACTS)
@pytest.mark.parametrize("n", SIZES)
def test_activation_kernels_match_reference(name, kw, n, rng):
    x = _x(rng, n)
    dy = rng.standard_normal(n)
    y = getattr(F, name)(x.astype(np.float32), **kw)
    dx = getattr(F, name + "_backward")(dy.astype(np.float32), x.astype(np.float32), **kw)
    x32 = x.astype(np.float32).astype(np.float64)
    assert y.dtype == np.float32 and y.shape == x.shape
    np.testing.assert_allclose(y, getattr(R, name)(x32, **kw), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(dx, getattr(R, name + "_backward")(dy.astype(np.float32).astype(np.float64), x32, **kw),
                               rtol=1e-4, atol=1e-6)


def test_activations_keep_shape_and_accept_float64(rng):
    x = rng.standard_normal((3, 4, 5))
    y = F.relu(x)
    assert y.dtype == np.float32 and y.shape == (3, 4, 5)
    np.testing.assert_array_equal(y, np.maximum(x.astype(np.float32), 0))
    # non-contiguous input is converted
    np.testing.assert_array_equal(F.relu(x[:, ::2]), np.maximum(x[:, ::2].astype(np.float32), 0))


def test_activation_extremes():
    x = np.array([-1e4, -100, 0, 100, 1e4, np.inf, -np.inf], np.float32)
    s = F.sigmoid(x)
    assert np.all(np.isfinite(s)) and s[0] == 0 and s[4] == 1
    t = F.tanh(x)
    np.testing.assert_allclose(t, np.tanh(x.astype(np.float64)), atol=1e-6)
    e = F.elu(x)
    assert e[0] == -1 and e[4] == 1e4
    assert np.isnan(F.relu(np.array([np.nan], np.float32)))[0]


@pytest.mark.parametrize("shape", [(1, 1), (7, 3), (64, 784), (33, 129), (5, 1000)])
@pytest.mark.parametrize("out", [1, 10, 17, 256])
def test_linear_matches_reference(shape, out, rng):
    n, d = shape
    x = rng.standard_normal((n, d)).astype(np.float32)
    w = rng.standard_normal((out, d)).astype(np.float32) / np.sqrt(d)
    b = rng.standard_normal(out).astype(np.float32)
    dy = rng.standard_normal((n, out)).astype(np.float32)
    x64, w64, b64, dy64 = (a.astype(np.float64) for a in (x, w, b, dy))
    np.testing.assert_allclose(F.linear(x, w, b), R.linear(x64, w64, b64), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(F.linear(x, w), R.linear(x64, w64), rtol=1e-4, atol=1e-4)
    dx, dw, db = F.linear_backward(dy, x, w)
    rdx, rdw, rdb = R.linear_backward(dy64, x64, w64)
    scale = np.sqrt(n)  # sums over the batch grow like sqrt(n) in magnitude
    np.testing.assert_allclose(dx, rdx, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(dw, rdw, rtol=1e-4, atol=1e-4 * scale)
    np.testing.assert_allclose(db, rdb, rtol=1e-4, atol=1e-4 * scale)


def test_reference_linear_gradients(rng):
    x, w, b = rng.standard_normal((4, 5)), rng.standard_normal((3, 5)), rng.standard_normal(3)
    dy = rng.standard_normal((4, 3))
    dx, dw, db = R.linear_backward(dy, x, w)
    assert rel_error(dx, numerical_grad(lambda v: float((R.linear(v, w, b) * dy).sum()), x.copy())) < 1e-4
    assert rel_error(dw, numerical_grad(lambda v: float((R.linear(x, v, b) * dy).sum()), w.copy())) < 1e-4
    assert rel_error(db, numerical_grad(lambda v: float((R.linear(x, w, v) * dy).sum()), b.copy())) < 1e-4


@pytest.mark.parametrize("shape,nslope", [((4, 3), 3), ((2, 3, 5, 5), 3), ((6, 7), 1), ((2, 4, 9), 1)])
def test_prelu_matches_reference(shape, nslope, rng):
    x = rng.standard_normal(shape)
    wt = rng.uniform(0.05, 0.5, nslope)
    dy = rng.standard_normal(shape)
    np.testing.assert_allclose(F.prelu(x, wt), R.prelu(x.astype(np.float32), wt.astype(np.float32)), rtol=1e-5, atol=1e-6)
    dx, dwt = F.prelu_backward(dy, x, wt)
    rdx, rdwt = R.prelu_backward(dy, x, wt)
    np.testing.assert_allclose(dx, rdx, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(dwt, rdwt, rtol=1e-4, atol=1e-4)
    # the reference's slope gradient by centred differences
    num = numerical_grad(lambda v: float((R.prelu(x, v) * dy).sum()), wt.copy())
    assert rel_error(rdwt, num) < 1e-4


def test_results_identical_at_one_and_two_threads(threads, rng):
    x = rng.standard_normal((256, 1000)).astype(np.float32)
    w = rng.standard_normal((512, 1000)).astype(np.float32)
    dy = rng.standard_normal((256, 512)).astype(np.float32)
    big = rng.standard_normal(300_001).astype(np.float32)
    outs = []
    for n in (1, 2):
        threads(n)
        outs.append([F.linear(x, w), *F.linear_backward(dy, x, w), F.tanh(big), F.sigmoid_backward(big, big),
                     *F.prelu_backward(dy, dy, np.array([0.2], np.float32))])
    for a, b in zip(*outs):
        np.testing.assert_array_equal(a, b)


def test_bad_inputs_raise_clear_errors():
    w = np.zeros((3, 5), np.float32)
    with pytest.raises(ValueError, match=r"x: expected shape \(\*, 5\), got \(2, 4\)"):
        F.linear(np.zeros((2, 4), np.float32), w)
    with pytest.raises(ValueError, match="b: expected shape"):
        F.linear(np.zeros((2, 5), np.float32), w, np.zeros(4, np.float32))
    with pytest.raises(TypeError, match="x: expected a floating-point array"):
        F.relu(np.arange(5))
    with pytest.raises(TypeError, match="x: expected a floating-point array"):
        F.relu(np.array([True, False]))
    with pytest.raises(ValueError, match="dy: expected shape"):
        F.relu_backward(np.zeros(4, np.float32), np.zeros(5, np.float32))
    with pytest.raises(ValueError, match="weight: expected 1 or 3 slopes"):
        F.prelu(np.zeros((2, 3), np.float32), np.zeros(2, np.float32))
    with pytest.raises(ValueError, match="dy: expected shape"):
        F.linear_backward(np.zeros((2, 4), np.float32), np.zeros((2, 5), np.float32), w)
    with pytest.raises(TypeError):
        F.linear("not an array", w)


def test_kernel_module_refuses_silent_copies():
    # The raw bindings never convert: a float64 array is an error, not a silent copy.
    p = np.zeros(10)
    with pytest.raises(TypeError):
        fastnn._C.sgd_step(p, np.zeros(10, np.float32), None, 0.1, 0.0, 0.0, 0.0, False, False, True)
    with pytest.raises(ValueError, match="grad: expected 10 elements"):
        fastnn._C.sgd_step(np.zeros(10, np.float32), np.zeros(9, np.float32), None, 0.1, 0.0, 0.0, 0.0, False, False, True)


def test_sigmoid_is_accurate_in_the_tails():
    x = np.linspace(-80, 80, 4001).astype(np.float32)
    ref = 1.0 / (1.0 + np.exp(-x.astype(np.float64)))
    np.testing.assert_allclose(F.sigmoid(x), ref, rtol=1e-5, atol=1e-30)
