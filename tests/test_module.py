"""Parameter/Module/Sequential/Residual semantics, layers end to end against references,
PyTorch-compatible state dicts."""
from collections import OrderedDict

import numpy as np
import pytest

import fastnn
from fastnn import layers as L
from reference import core as R
from reference.gradcheck import numerical_grad, rel_error


def test_parameter_assignment_copies_into_the_buffer():
    p = fastnn.Parameter(np.ones((2, 3)))
    assert p.data.dtype == np.float32 and p.grad.shape == (2, 3) and not p.grad.any()
    buf, gbuf = p.data, p.grad
    p.data = np.full((2, 3), 5.0)
    p.grad = np.full((2, 3), 2.0)
    assert p.data is buf and p.grad is gbuf and buf[0, 0] == 5 and gbuf[1, 2] == 2
    with pytest.raises(ValueError, match=r"data: expected shape \(2, 3\), got \(3, 2\)"):
        p.data = np.zeros((3, 2))
    with pytest.raises(TypeError):
        fastnn.Parameter(np.arange(3))


def _mlp(rng):
    return fastnn.Sequential(L.Flatten(), L.Linear(12, 8, rng=rng), L.ReLU(), L.Linear(8, 3, rng=rng))


def test_names_order_and_state_dict_keys(rng):
    m = _mlp(rng)
    names = [n for n, _ in m.named_parameters()]
    assert names == ["1.weight", "1.bias", "3.weight", "3.bias"]
    assert m.parameters()[0] is m[1].weight and len(m) == 4
    sd = m.state_dict()
    assert list(sd) == names and sd["1.weight"].shape == (8, 12)
    sd["1.weight"][:] = 0  # a copy: the model is unaffected
    assert m[1].weight.data.any()


def test_load_state_dict_strict_and_shape_checks(rng):
    m, m2 = _mlp(rng), _mlp(rng)
    m2.load_state_dict(m.state_dict())
    for a, b in zip(m.parameters(), m2.parameters()):
        np.testing.assert_array_equal(a.data, b.data)
    bad = m.state_dict()
    del bad["3.bias"]
    with pytest.raises(KeyError, match="3.bias"):
        m2.load_state_dict(bad)
    assert m2.load_state_dict(bad, strict=False)["missing_keys"] == ["3.bias"]
    wrong = m.state_dict()
    wrong["3.bias"] = np.zeros(4)
    before = m2[1].weight.data.copy()
    with pytest.raises(ValueError, match=r"'3.bias' expected shape \(3,\), got \(4,\)"):
        m2.load_state_dict({k: (v * 0 if k == "1.weight" else v) for k, v in wrong.items()})
    np.testing.assert_array_equal(m2[1].weight.data, before)  # nothing written


def test_torch_state_dict_loads_and_outputs_match(rng):
    torch = pytest.importorskip("torch")
    tm = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    m = _mlp(rng)
    m.load_state_dict({k: v.detach().numpy() for k, v in tm.state_dict().items()}, strict=True)
    x = rng.standard_normal((5, 3, 4)).astype(np.float32)
    np.testing.assert_allclose(m(x), tm(torch.tensor(x)).detach().numpy(), rtol=1e-5, atol=1e-6)
    back = tm.load_state_dict({k: torch.tensor(v) for k, v in m.state_dict().items()}, strict=True)
    assert not back.missing_keys and not back.unexpected_keys


def _check_module_gradients(module, x, rng, tol=2e-2):
    """Compare module.backward with float64 centred differences of sum(module(x) * dy)."""
    y = module(x)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    module.zero_grad()
    dx = module.backward(dy)

    def f_x(v):
        return float((module(v.astype(np.float32)).astype(np.float64) * dy).sum())
    num = numerical_grad(f_x, x.astype(np.float64), eps=1e-2)
    assert rel_error(dx, num, floor=1e-2) < tol
    for name, p in module.named_parameters():
        analytic = p.grad.copy()
        orig = p.data.copy()

        def f_p(v):
            p.data = v
            out = float((module(x).astype(np.float64) * dy).sum())
            return out
        num = numerical_grad(f_p, orig.astype(np.float64), eps=1e-2)
        p.data = orig
        assert rel_error(analytic, num, floor=1e-2) < tol, name


@pytest.mark.parametrize("make", [
    lambda rng: L.Linear(5, 4, rng=rng),
    lambda rng: L.Maxout(5, 3, pieces=3, rng=rng),
    lambda rng: L.PReLU(1),
    lambda rng: L.PReLU(5, init=0.1),
    lambda rng: L.ELU(0.7),
    lambda rng: L.LeakyReLU(0.1),
    lambda rng: L.Sigmoid(),
    lambda rng: L.Tanh(),
    lambda rng: fastnn.Residual(fastnn.Sequential(L.Linear(5, 5, rng=rng), L.Tanh())),
    lambda rng: fastnn.Sequential(L.Linear(5, 6, rng=rng), L.ReLU(), L.Linear(6, 2, rng=rng)),
])
def test_layer_backward_matches_finite_differences(make, rng):
    module = make(rng)
    x = rng.standard_normal((4, 5)).astype(np.float32)
    x[np.abs(x) < 0.05] = 0.3  # keep clear of kinks
    _check_module_gradients(module, x, rng)


def test_maxout_matches_reference_and_torch_layout(rng):
    m = L.Maxout(6, 4, pieces=3, rng=rng)
    assert m.weight.shape == (12, 6) and m.bias.shape == (12,)
    x = rng.standard_normal((5, 6)).astype(np.float32)
    np.testing.assert_allclose(m(x), R.maxout(x.astype(np.float64), m.weight.data, m.bias.data, 3), rtol=1e-5, atol=1e-6)


def test_prelu_matches_torch(rng):
    torch = pytest.importorskip("torch")
    x = rng.standard_normal((4, 3, 5, 5)).astype(np.float32)
    p = L.PReLU(3, init=0.2)
    tp = torch.nn.PReLU(3, init=0.2)
    xt = torch.tensor(x, requires_grad=True)
    yt = tp(xt)
    dy = rng.standard_normal(x.shape).astype(np.float32)
    yt.backward(torch.tensor(dy))
    np.testing.assert_allclose(p(x), yt.detach().numpy(), rtol=1e-6)
    dx = p.backward(dy)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-5)
    np.testing.assert_allclose(p.weight.grad, tp.weight.grad.numpy(), rtol=1e-4)


def test_grads_accumulate_and_zero_grad(rng):
    m = L.Linear(3, 2, rng=rng)
    x = rng.standard_normal((4, 3)).astype(np.float32)
    dy = np.ones((4, 2), np.float32)
    m(x); m.backward(dy)
    g1 = m.weight.grad.copy()
    m(x); m.backward(dy)
    np.testing.assert_allclose(m.weight.grad, 2 * g1, rtol=1e-6)
    m.zero_grad()
    assert not m.weight.grad.any() and not m.bias.grad.any()


def test_train_eval_modes_propagate(rng):
    m = _mlp(rng)
    m.eval()
    assert not m.training and not m[1].training
    m.train()
    assert all(sub.training for sub in m.modules())


def test_residual_and_sequential_errors(rng):
    with pytest.raises(TypeError, match=r"modules\[1\]"):
        fastnn.Sequential(L.ReLU(), "relu")
    r = fastnn.Residual(L.Linear(4, 3, rng=rng))
    with pytest.raises(ValueError, match="residual block must keep it"):
        r(np.zeros((2, 4), np.float32))
    with pytest.raises(ValueError, match=r"x: expected shape \(\*, 4\)"):
        L.Linear(4, 3)(np.zeros((2, 5), np.float32))
    with pytest.raises(RuntimeError, match="before forward"):
        L.Linear(4, 3).backward(np.zeros((2, 3), np.float32))
    with pytest.raises(ValueError, match="in_features"):
        L.Linear(0, 3)


def test_init_argument_and_rng_reproducibility():
    a = L.Linear(20, 10, init="he_normal", rng=np.random.default_rng(5))
    b = L.Linear(20, 10, init="he_normal", rng=np.random.default_rng(5))
    np.testing.assert_array_equal(a.weight.data, b.weight.data)
    assert not a.bias.data.any()  # an explicit init gives zero biases
    c = L.Linear(20, 10, init=lambda shape, rng: np.full(shape, 0.5), rng=np.random.default_rng(0))
    assert np.all(c.weight.data == 0.5)
    fastnn.seed(3)
    d = L.Linear(20, 10)
    fastnn.seed(3)
    e = L.Linear(20, 10)
    np.testing.assert_array_equal(d.weight.data, e.weight.data)
    bound = 1 / np.sqrt(20)  # PyTorch's default init
    assert np.abs(d.weight.data).max() <= bound and np.abs(d.bias.data).max() <= bound
    with pytest.raises(ValueError, match="init: expected one of"):
        L.Linear(3, 3, init="nope")


def test_buffers_stay_registered_when_reassigned():
    class WithBuffer(fastnn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("running", np.zeros(3, np.float32))

    m = WithBuffer()
    m.running = m.running + 1.0
    m.running += 1.0
    assert "running" in m.state_dict() and np.all(m.state_dict()["running"] == 2.0)


def test_abstract_bases_name_the_subclass_and_the_missing_method():
    """A user's subclass that forgets the one method it must define gets an error naming its
    own class and that method, from every extensible base."""
    from fastnn.augment import Transform
    from fastnn.losses import Loss
    from fastnn.optim import Optimizer
    from fastnn.preprocess import Preprocessor
    from fastnn.schedules import Schedule
    from fastnn.search import Dimension

    class MyLayer(fastnn.Module):
        pass

    class MyTransform(Transform):
        pass

    class MyLoss(Loss):
        pass

    class MySchedule(Schedule):
        pass

    class MyDim(Dimension):
        pass

    class MyPre(Preprocessor):
        pass

    x = np.zeros((2, 1, 4, 4), np.float32)
    cases = [(lambda: MyLayer()(x), "MyLayer", "forward"),
             (lambda: MyLayer().backward(x), "MyLayer", "backward"),
             (lambda: MyTransform()(x), "MyTransform", "__call__"),
             (lambda: MyLoss()(x, x), "MyLoss", "__call__"),
             (lambda: MySchedule()(0), "MySchedule", "value"),
             (lambda: MyDim().sample(np.random.default_rng(0)), "MyDim", "sample"),
             (lambda: MyDim().narrow([1.0]), "MyDim", "narrow"),
             (lambda: MyPre().fit(x), "MyPre", "fit")]
    for call, cls, method in cases:
        with pytest.raises(NotImplementedError, match=rf"{cls}.*{method}"):
            call()

    class MyOpt(Optimizer):
        pass

    p = fastnn.Parameter(np.ones(3, np.float32))
    opt = MyOpt([p], {"lr": 0.1})  # the base's signature: (params, defaults), as PyTorch's
    with pytest.raises(NotImplementedError, match="MyOpt"):
        opt.step()


def test_apply_visits_children_first_then_self_and_reinitializes(rng):
    inner = fastnn.Sequential(fastnn.Linear(3, 4, rng=rng), fastnn.ReLU())
    model = fastnn.Sequential(inner, fastnn.Residual(fastnn.Linear(4, 4, rng=rng)),
                              fastnn.Linear(4, 2, rng=rng))
    seen = []
    assert model.apply(lambda m: seen.append(type(m).__name__)) is model
    # the order of torch.nn.Module.apply: depth first, a module after its children
    assert seen == ["Linear", "ReLU", "Sequential", "Linear", "Residual", "Linear", "Sequential"]
    gen = np.random.default_rng(5)

    def init_weights(m):
        if isinstance(m, fastnn.Linear):
            m.weight.data = fastnn.init.constant(m.weight.shape, 0.5)
            m.bias.data = np.zeros(m.bias.shape, np.float32)
    model.apply(init_weights)
    for m in model.modules():
        if isinstance(m, fastnn.Linear):
            assert np.all(m.weight.data == 0.5) and np.all(m.bias.data == 0)
    x = gen.standard_normal((2, 3)).astype(np.float32)
    h = np.maximum(x @ np.full((4, 3), 0.5).T, 0)
    h = h + h @ np.full((4, 4), 0.5).T
    np.testing.assert_allclose(model(x), h @ np.full((2, 4), 0.5).T, rtol=1e-5)
    with pytest.raises(TypeError, match="fn: expected a callable"):
        model.apply("xavier")
