"""SGD: the fused C++ update against PyTorch's rule (float64 reference), schedules as lr,
flat-buffer binding, state round trip, bad hyper-parameters."""
import itertools

import numpy as np
import pytest

import fastnn
from fastnn.optim import SGD
from reference import core as R


def _params(rng, shapes=((3, 4), (4,), (2, 3, 5))):
    return [fastnn.Parameter(rng.standard_normal(s)) for s in shapes]


@pytest.mark.parametrize("momentum,dampening,nesterov,wd,maximize", [
    c for c in itertools.product([0.0, 0.9], [0.0, 0.3], [False, True], [0.0, 0.01], [False, True])
    if not (c[2] and (c[0] == 0 or c[1] != 0))
])
def test_sgd_trajectory_matches_reference(momentum, dampening, nesterov, wd, maximize, rng):
    ps = _params(rng)
    ref = [p.data.astype(np.float64) for p in ps]
    bufs = [None] * len(ps)
    opt = SGD(ps, lr=0.05, momentum=momentum, dampening=dampening, nesterov=nesterov,
              weight_decay=wd, maximize=maximize)
    for _ in range(100):
        grads = [rng.standard_normal(p.shape).astype(np.float32) for p in ps]
        for p, g in zip(ps, grads):
            p.grad = g
        opt.step()
        for i, g in enumerate(grads):
            ref[i], bufs[i] = R.sgd_step(ref[i], g.astype(np.float64), bufs[i], 0.05, momentum,
                                         dampening, wd, nesterov, maximize)
    for p, r in zip(ps, ref):
        np.testing.assert_allclose(p.data, r, rtol=1e-4, atol=1e-4)


def test_sgd_matches_torch(rng):
    torch = pytest.importorskip("torch")
    w0 = rng.standard_normal((5, 7)).astype(np.float32)
    p = fastnn.Parameter(w0)
    tp = torch.nn.Parameter(torch.tensor(w0))
    opt = SGD([p], lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-3)
    topt = torch.optim.SGD([tp], lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-3)
    for _ in range(20):
        g = rng.standard_normal(w0.shape).astype(np.float32)
        p.grad = g
        tp.grad = torch.tensor(g)
        opt.step()
        topt.step()
    np.testing.assert_allclose(p.data, tp.detach().numpy(), rtol=1e-5, atol=1e-6)


def test_parameters_become_views_of_one_buffer(rng):
    ps = _params(rng)
    before = [p.data.copy() for p in ps]
    opt = SGD(ps, lr=0.1)
    flat = opt._flat[0]
    for p, b in zip(ps, before):
        np.testing.assert_array_equal(p.data, b)
        assert np.shares_memory(p.data, flat.data) and np.shares_memory(p.grad, flat.grad)
    ps[0].grad += 1.0  # accumulate through the view
    opt.step()
    np.testing.assert_allclose(ps[0].data, before[0] - 0.1, rtol=1e-6)
    np.testing.assert_array_equal(ps[1].data, before[1])
    opt.zero_grad()
    assert all(not p.grad.any() for p in ps)


def test_second_optimizer_on_same_parameters_stays_consistent(rng):
    ps = _params(rng)
    a = SGD(ps, lr=0.1)
    b = SGD(ps, lr=0.1)  # rebinds the parameters to its own buffer
    for p in ps:
        p.grad = np.ones(p.shape)
    a.step()  # takes them back (values carried over) instead of updating a stale buffer
    b_before = [p.data.copy() for p in ps]
    b.step()
    for p, q in zip(ps, b_before):
        assert not np.array_equal(p.data, q)


def test_lr_and_momentum_accept_schedules(rng):
    p = fastnn.Parameter(np.zeros(3))
    seen = []
    opt = SGD([p], lr=lambda t: seen.append(t) or 0.1 * (t + 1), momentum=lambda t: 0.0)
    for _ in range(3):
        p.grad = np.ones(3)
        opt.step()
    assert seen == [0, 1, 2]
    np.testing.assert_allclose(p.data, -(0.1 + 0.2 + 0.3), rtol=1e-6)
    assert opt.hyper("lr") == pytest.approx(0.4)


def test_param_groups_and_state_dict_resume(rng):
    w, b = fastnn.Parameter(rng.standard_normal((4, 3))), fastnn.Parameter(rng.standard_normal(4))
    opt = SGD([{"params": [w]}, {"params": [b], "weight_decay": 0.0}], lr=0.1, momentum=0.9, weight_decay=0.1)
    assert opt.param_groups[0]["weight_decay"] == 0.1 and opt.param_groups[1]["weight_decay"] == 0.0
    grads = [(rng.standard_normal((4, 3)), rng.standard_normal(4)) for _ in range(6)]
    for gw, gb in grads[:3]:
        w.grad, b.grad = gw, gb
        opt.step()
    sd = opt.state_dict()
    assert set(sd["state"]) == {0, 1} and "momentum_buffer" in sd["state"][0]
    assert sd["state"][0]["step"] == 3.0 and sd["param_groups"][1]["params"] == [1]
    w2, b2 = fastnn.Parameter(w.data), fastnn.Parameter(b.data)
    opt2 = SGD([{"params": [w2]}, {"params": [b2], "weight_decay": 0.0}], lr=0.1, momentum=0.9, weight_decay=0.1)
    opt2.load_state_dict(sd)
    for gw, gb in grads[3:]:
        w.grad, b.grad, w2.grad, b2.grad = gw, gb, gw, gb
        opt.step()
        opt2.step()
    np.testing.assert_array_equal(w.data, w2.data)
    np.testing.assert_array_equal(b.data, b2.data)


def test_clip_grad_norm(rng):
    ps = _params(rng)
    for p in ps:
        p.grad = rng.standard_normal(p.shape) * 10
    total = np.sqrt(sum((p.grad.astype(np.float64) ** 2).sum() for p in ps))
    got = fastnn.optim.clip_grad_norm(ps, 1.0)
    assert got == pytest.approx(total, rel=1e-5)
    new = np.sqrt(sum((p.grad.astype(np.float64) ** 2).sum() for p in ps))
    assert new == pytest.approx(1.0, rel=1e-4)


def test_bad_hyper_parameters(rng):
    ps = _params(rng)
    with pytest.raises(ValueError, match="lr"):
        SGD(ps, lr=-0.1)
    with pytest.raises(ValueError, match="momentum"):
        SGD(ps, lr=0.1, momentum=-1)
    with pytest.raises(ValueError, match="empty parameter list"):
        SGD([], lr=0.1)
    with pytest.raises(ValueError, match="nesterov"):
        SGD(ps, lr=0.1, nesterov=True)
    with pytest.raises(TypeError, match=r"params\[0\]"):
        SGD([np.zeros(3)], lr=0.1)
    with pytest.raises(ValueError, match="more than once"):
        SGD([ps[0], ps[0]], lr=0.1)
    p = fastnn.Parameter(np.zeros(2))
    opt = SGD([p], lr=lambda t: -1.0)
    with pytest.raises(ValueError, match="lr: the schedule gave -1.0"):
        opt.step()
