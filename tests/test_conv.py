"""conv2d: float64 reference gradient checks, kernel vs reference on awkward geometries,
thread-count independence, PyTorch agreement, bad input, the Conv2d layer, LeNet on MNIST."""
from __future__ import annotations

import numpy as np
import pytest

import fastnn
from fastnn import functional as F
from reference import conv as R

# (x shape, w shape, kwargs): odd sizes, 1x1 images, kernel as large as the padded input,
# H != W, non-square kernels and strides, dilation 2-3, groups 2 and depthwise.
CASES = [
    ((2, 3, 7, 5), (4, 3, 3, 2), dict(stride=(2, 1), padding=(1, 0))),
    ((3, 4, 9, 8), (6, 2, 3, 3), dict(padding=2, dilation=(2, 3), groups=2)),
    ((2, 4, 5, 6), (4, 1, 3, 3), dict(stride=2, padding=1, groups=4)),           # depthwise
    ((2, 3, 6, 7), (6, 1, 2, 3), dict(stride=(1, 3), padding=(0, 1), groups=3)),  # multiplier 2
    ((2, 8, 4, 4), (6, 8, 1, 1), dict()),                                          # 1x1 direct
    ((2, 5, 6, 5), (3, 5, 1, 1), dict(stride=2, padding=1)),                       # 1x1 strided
    ((1, 2, 1, 1), (3, 2, 1, 1), dict()),                                          # 1x1 image
    ((3, 2, 1, 1), (3, 2, 3, 3), dict(padding=1)),                                 # 1x1 image, 3x3
    ((2, 2, 3, 3), (3, 2, 5, 5), dict(padding=1)),                                 # kernel == padded
    ((2, 2, 4, 5), (2, 2, 4, 5), dict()),                                          # kernel == input
    ((19, 3, 5, 4), (5, 3, 3, 3), dict(padding=1)),                                # sample blocks
    ((9, 16, 3, 2), (7, 16, 2, 2), dict(stride=(1, 2), dilation=(2, 1), padding=1)),
    ((5, 6, 9, 8), (16, 6, 5, 5), dict(padding=1)),                              # sample blocks
    ((3, 2, 11, 7), (32, 2, 3, 3), dict(padding=1, stride=(1, 2))),
    # 3x3, stride 1, >= 16 channels: the Winograd path (odd and even Ho/Wo, padding 0-2)
    ((3, 16, 7, 9), (16, 16, 3, 3), dict(padding=1)),
    ((2, 17, 6, 5), (20, 17, 3, 3), dict()),
    ((7, 16, 2, 3), (24, 16, 3, 3), dict(padding=(2, 1))),
    ((2, 16, 1, 1), (16, 16, 3, 3), dict(padding=(2, 2))),                        # 1x1 image
]


def _data(rng, xs, ws, with_bias=True):
    x = rng.standard_normal(xs).astype(np.float32)
    w = rng.standard_normal(ws).astype(np.float32)
    b = rng.standard_normal(ws[0]).astype(np.float32) if with_bias else None
    return x, w, b


def _close(a, ref, tol=1e-4):
    scale = max(1.0, float(np.abs(ref).max()))
    np.testing.assert_allclose(a, ref, rtol=tol, atol=tol * scale)


@pytest.mark.parametrize("xs,ws,kw", [CASES[0], CASES[1], CASES[2], CASES[5], CASES[9]])
def test_reference_gradients_by_central_differences(xs, ws, kw):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(xs); w = rng.standard_normal(ws); b = rng.standard_normal(ws[0])
    dy = rng.standard_normal(R.conv2d(x, w, b, **kw).shape)
    dx, dw, db = R.conv2d_backward(dy, x, w, **kw)
    f = lambda x_, w_, b_: float((R.conv2d(x_, w_, b_, **kw) * dy).sum())
    eps = 1e-6
    for arr, grad in ((x, dx), (w, dw), (b, db)):
        flat = arr.reshape(-1)
        for i in rng.choice(flat.size, size=min(12, flat.size), replace=False):
            old = flat[i]
            flat[i] = old + eps; fp = f(x, w, b)
            flat[i] = old - eps; fm = f(x, w, b)
            flat[i] = old
            assert abs((fp - fm) / (2 * eps) - grad.reshape(-1)[i]) < 1e-6 * max(1.0, abs(grad.reshape(-1)[i]))


@pytest.mark.parametrize("xs,ws,kw", CASES)
def test_kernel_matches_reference_at_one_and_two_threads(threads, xs, ws, kw):
    rng = np.random.default_rng(1)
    x, w, b = _data(rng, xs, ws)
    dy = rng.standard_normal(R.conv2d(x, w, None, **kw).shape).astype(np.float32)
    ry = R.conv2d(x, w, b, **kw)
    rx, rw, rb = R.conv2d_backward(dy, x, w, **kw)
    runs = []
    for n in (1, 2):
        threads(n)
        y = F.conv2d(x, w, b, **kw)
        _close(y, ry)
        _close(F.conv2d(x, w, None, **kw), R.conv2d(x, w, None, **kw))
        dx, dw, db = F.conv2d_backward(dy, x, w, **kw)
        assert dx.shape == x.shape and dw.shape == w.shape and db.shape == (w.shape[0],)
        assert dx.dtype == dw.dtype == db.dtype == np.float32
        _close(dx, rx); _close(dw, rw); _close(db, rb)
        runs.append((y, dx, dw, db))
    for a, c in zip(*runs):
        np.testing.assert_array_equal(a, c)


@pytest.mark.parametrize("xs,ws,kw", [
    ((37, 6, 14, 14), (16, 6, 5, 5), dict()),
    ((21, 8, 5, 5), (8, 8, 3, 3), dict(padding=1)),
    ((10, 4, 9, 9), (4, 1, 3, 3), dict(groups=4, padding=1)),
    ((12, 16, 6, 6), (8, 16, 1, 1), dict()),
    ((37, 16, 9, 7), (20, 16, 3, 3), dict(padding=1)),  # Winograd: 4 ranges, several blocks
])
def test_identical_at_one_and_two_threads(threads, xs, ws, kw):
    rng = np.random.default_rng(2)
    x, w, b = _data(rng, xs, ws)
    out = []
    for n in (1, 2):
        threads(n)
        y = F.conv2d(x, w, b, **kw)
        dy = np.cos(y)
        out.append((y,) + tuple(F.conv2d_backward(dy, x, w, **kw)))
    for a, c in zip(*out):
        np.testing.assert_array_equal(a, c)


def test_float64_and_strided_input_converted():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3, 10, 12))
    w = rng.standard_normal((4, 3, 3, 3))
    y = F.conv2d(x[:, :, ::2, ::2], w, padding=1)
    _close(y, R.conv2d(x[:, :, ::2, ::2], w, padding=1))
    assert y.dtype == np.float32


def test_empty_batch():
    w = np.ones((4, 3, 3, 3), np.float32)
    x = np.zeros((0, 3, 5, 5), np.float32)
    y = F.conv2d(x, w)
    assert y.shape == (0, 4, 3, 3)
    dx, dw, db = F.conv2d_backward(y, x, w)
    assert dx.shape == x.shape and not dw.any() and not db.any()


def test_matches_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(4)
    for xs, ws, kw in CASES + [((8, 32, 14, 14), (64, 32, 3, 3), dict(padding=1))]:
        x, w, b = _data(rng, xs, ws)
        tx = torch.tensor(x, requires_grad=True); tw = torch.tensor(w, requires_grad=True)
        tb = torch.tensor(b, requires_grad=True)
        ty = torch.nn.functional.conv2d(tx, tw, tb, **kw)
        dy = rng.standard_normal(tuple(ty.shape)).astype(np.float32)
        ty.backward(torch.tensor(dy))
        _close(F.conv2d(x, w, b, **kw), ty.detach().numpy())
        dx, dw, db = F.conv2d_backward(dy, x, w, **kw)
        _close(dx, tx.grad.numpy()); _close(dw, tw.grad.numpy()); _close(db, tb.grad.numpy())


@pytest.mark.parametrize("x_shape,w_shape,kw,match", [
    ((1, 3, 4, 4), (2, 3, 7, 7), dict(padding=1), "w: kernel"),          # larger than padded input
    ((1, 3, 4, 4), (2, 3, 3, 3), dict(dilation=3), "w: kernel"),         # dilated too large
    ((1, 3, 5, 5), (2, 1, 3, 3), dict(groups=2), "groups"),              # 3 % 2
    ((1, 4, 5, 5), (3, 2, 3, 3), dict(groups=2), "groups"),              # out 3 % 2
    ((1, 4, 5, 5), (2, 3, 3, 3), dict(), "w: expected shape"),           # channel mismatch
    ((1, 4, 5, 5), (2, 4, 3, 3), dict(groups=2), "w: expected shape"),   # per-group mismatch
    ((1, 3, 5, 5), (2, 3, 3, 3), dict(stride=0), "stride"),
    ((1, 3, 5, 5), (2, 3, 3, 3), dict(stride=(1, -1)), "stride"),
    ((1, 3, 5, 5), (2, 3, 3, 3), dict(dilation=0), "dilation"),
    ((1, 3, 5, 5), (2, 3, 3, 3), dict(dilation=(1, -2)), "dilation"),
    ((1, 3, 2, 9), (2, 3, 3, 3), dict(), "w: kernel"),                      # H too small only
    ((1, 3, 5, 5), (2, 3, 3, 3), dict(padding=-1), "padding"),
    ((1, 3, 5, 5), (2, 3, 3, 3), dict(groups=0), "groups"),
    ((3, 5, 5), (2, 3, 3, 3), dict(), "x: expected a 4-d"),
    ((1, 3, 5, 5), (2, 3, 3), dict(), "w: expected a 4-d"),
])
def test_bad_input_raises_value_error(x_shape, w_shape, kw, match):
    x = np.zeros(x_shape, np.float32); w = np.zeros(w_shape, np.float32)
    with pytest.raises(ValueError, match=match):
        F.conv2d(x, w, **kw)
    if len(x_shape) == 4 and len(w_shape) == 4:
        with pytest.raises(ValueError, match=match):
            F.conv2d_backward(np.zeros((1, w_shape[0], 1, 1), np.float32), x, w, **kw)


def test_bad_bias_dy_and_types():
    x = np.zeros((2, 3, 5, 5), np.float32); w = np.zeros((4, 3, 3, 3), np.float32)
    with pytest.raises(ValueError, match="b: expected shape"):
        F.conv2d(x, w, np.zeros(3, np.float32))
    with pytest.raises(ValueError, match="dy: expected shape"):
        F.conv2d_backward(np.zeros((2, 4, 5, 5), np.float32), x, w)
    with pytest.raises(TypeError, match="x"):
        F.conv2d(x.astype(np.int32), w)
    with pytest.raises(TypeError, match="stride"):
        F.conv2d(x, w, stride=1.5)
    # direct calls into _C with inconsistent shapes raise instead of reading out of bounds
    from fastnn._dispatch import _C
    with pytest.raises(ValueError):
        _C.conv2d_backward(np.zeros((2, 4, 2, 2), np.float32), x, w, (1, 1), (0, 0), (1, 1), 1)
    with pytest.raises(ValueError):
        _C.conv2d_forward(x, w, np.zeros(2, np.float32), (1, 1), (0, 0), (1, 1), 1)


def test_conv2d_layer_default_init_and_backward():
    rng = np.random.default_rng(5)
    layer = fastnn.Conv2d(4, 6, (3, 2), stride=2, padding=1, groups=2, rng=rng)
    assert layer.weight.shape == (6, 2, 3, 2) and layer.bias.shape == (6,)
    bound = 1 / np.sqrt(2 * 3 * 2)  # PyTorch: U(-1/√fan_in, 1/√fan_in), fan_in = Cin/g·kh·kw
    assert np.abs(layer.weight.data).max() <= bound and np.abs(layer.bias.data).max() <= bound
    x = rng.standard_normal((3, 4, 7, 6)).astype(np.float32)
    y = layer(x)
    _close(y, R.conv2d(x, layer.weight.data, layer.bias.data, stride=2, padding=1, groups=2))
    dy = rng.standard_normal(y.shape).astype(np.float32)
    dx = layer.backward(dy)
    rx, rw, rb = R.conv2d_backward(dy, x, layer.weight.data, stride=2, padding=1, groups=2)
    _close(dx, rx); _close(layer.weight.grad, rw); _close(layer.bias.grad, rb)
    layer.backward(dy)  # grads accumulate
    _close(layer.weight.grad, 2 * rw)
    assert [n for n, _ in layer.named_parameters()] == ["weight", "bias"]


def test_conv2d_layer_init_rng_and_no_bias():
    a = fastnn.Conv2d(3, 8, 3, init="he_normal", rng=np.random.default_rng(7), bias=False)
    b = fastnn.Conv2d(3, 8, 3, init="he_normal", rng=np.random.default_rng(7), bias=False)
    np.testing.assert_array_equal(a.weight.data, b.weight.data)
    assert a.bias is None and len(a.parameters()) == 1
    assert abs(a.weight.data.std() - np.sqrt(2 / 27)) < 0.08
    c = fastnn.Conv2d(3, 8, 3, init="he_normal", rng=np.random.default_rng(7))
    assert not c.bias.data.any()
    with pytest.raises(ValueError, match="groups"):
        fastnn.Conv2d(3, 8, 3, groups=2)
    with pytest.raises(ValueError, match="x: expected 3 channels"):
        a(np.zeros((1, 4, 5, 5), np.float32))
    for bad in (dict(stride=0), dict(dilation=-1), dict(padding=-1)):
        with pytest.raises(ValueError, match=next(iter(bad))):
            fastnn.Conv2d(3, 8, 3, **bad)
    with pytest.raises(ValueError, match="w: kernel"):  # kernel larger than the padded input
        fastnn.Conv2d(3, 8, 5)(np.zeros((1, 3, 3, 3), np.float32))


def test_layer_loads_torch_state_dict():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    t = torch.nn.Conv2d(4, 6, 3, stride=(2, 1), padding=1, groups=2)
    layer = fastnn.Conv2d(4, 6, 3, stride=(2, 1), padding=1, groups=2)
    layer.load_state_dict({k: v.detach().numpy() for k, v in t.state_dict().items()})
    x = np.random.default_rng(8).standard_normal((2, 4, 6, 5)).astype(np.float32)
    _close(layer(x), t(torch.tensor(x)).detach().numpy())


def test_lenet_trains_on_mnist(mnist_split):
    """The issue's LeNet, He init, Adam 1e-3, batch 64: >= 98.0% held out within 8 epochs."""
    from fastnn.losses import SoftmaxCrossEntropy
    xtr, ytr, xva, yva = mnist_split
    mean, std = float(xtr.mean()), float(xtr.std())
    xtr = ((xtr - mean) / std).astype(np.float32)
    xva = ((xva - mean) / std).astype(np.float32)
    rng = np.random.default_rng(0)
    from fastnn import models
    model = models.build("lenet", xtr.shape[1:], 10, rng=rng)
    assert sum(p.size for p in model.parameters()) == 416 + 12832 + 200832 + 1290
    opt = fastnn.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = SoftmaxCrossEntropy()
    accs = []
    for epoch in range(8):
        model.train()
        order = rng.permutation(len(xtr))
        for i in range(0, len(xtr), 64):
            idx = order[i:i + 64]
            opt.zero_grad()
            loss, dout = loss_fn(model(xtr[idx]), ytr[idx])
            model.backward(dout)
            opt.step()
        model.eval()
        pred = np.concatenate([model(xva[i:i + 500]).argmax(1) for i in range(0, len(xva), 500)])
        accs.append(float((pred == yva).mean()))
        if accs[-1] >= 0.98:
            break
    assert max(accs) >= 0.98, f"held-out accuracy per epoch: {accs}"
