"""Optimizers: fused kernels vs the float64 reference (100-step trajectories, every option
combination), vs torch.optim when installed, state-dict resume, parameter groups, schedules as
hyper-parameters, thread-count independence, convergence on a quadratic bowl, LBFGS on least
squares, and bad hyper-parameters."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

import fastnn
from fastnn import optim, schedules
from fastnn._dispatch import _C
from fastnn.module import Parameter
from reference import optim as ref

SHAPES = [(7, 3), (33,), (1,), (2, 2, 5)]   # awkward sizes: 1, odd, below/above SIMD width


def _grid(**axes):
    keys = list(axes)
    return [dict(zip(keys, vals)) for vals in itertools.product(*(axes[k] for k in keys))]


def _sgd_cases():
    out = []
    for c in _grid(lr=[0.05], momentum=[0.0, 0.9], dampening=[0.0, 0.1], nesterov=[False, True],
                   weight_decay=[0.0, 0.01], maximize=[False, True]):
        if c["nesterov"] and (c["momentum"] == 0 or c["dampening"] != 0):
            continue
        out.append(c)
    return out


CASES = (
    [("SGD", c) for c in _sgd_cases()]
    + [("Adagrad", c) for c in _grid(lr=[0.1], lr_decay=[0.0, 0.01], weight_decay=[0.0, 0.1],
                                      initial_accumulator_value=[0.0, 0.1], maximize=[False, True])]
    + [("RMSprop", c) for c in _grid(lr=[0.01], alpha=[0.99, 0.9], centered=[False, True],
                                      momentum=[0.0, 0.9], weight_decay=[0.0, 0.01],
                                      maximize=[False, True])]
    + [("Adadelta", c) for c in _grid(lr=[1.0, 0.5], rho=[0.9], weight_decay=[0.0, 0.01],
                                       maximize=[False, True])]
    + [("Adam", c) for c in _grid(lr=[0.01], amsgrad=[False, True], weight_decay=[0.0, 0.05],
                                   maximize=[False, True], decoupled_weight_decay=[False, True])]
    + [("AdamW", c) for c in _grid(lr=[0.01], amsgrad=[False, True], weight_decay=[0.0, 0.05],
                                    maximize=[False, True])]
    + [("Adamax", c) for c in _grid(lr=[0.02], betas=[(0.9, 0.999), (0.8, 0.99)],
                                     weight_decay=[0.0, 0.05], maximize=[False, True])]
    + [("NAdam", c) for c in _grid(lr=[0.01], momentum_decay=[4e-3, 0.05], weight_decay=[0.0, 0.05],
                                    decoupled_weight_decay=[False, True], maximize=[False, True])]
    + [("AdaptiveGains", c) for c in _grid(lr=[0.01], max_gain=[100.0, 1.5], min_gain=[0.01, 0.5],
                                            maximize=[False, True])]
)


def _ids(cases):
    return [f"{n}-" + ",".join(f"{k}={v}" for k, v in c.items() if k != "lr") for n, c in cases]


def _grads(rng, shapes, t, drift):
    # drift > 0 keeps gradient signs for a while (exercises AdaptiveGains' growth and clipping).
    return [(rng.standard_normal(s) + drift * np.sin(0.05 * t + np.arange(np.prod(s)).reshape(s)))
            .astype(np.float32) for s in shapes]


def _run(name, hyper, steps=100, seed=0, drift=0.0):
    rng = np.random.default_rng(seed)
    params = [Parameter(rng.standard_normal(s)) for s in SHAPES]
    ref_p = [p.data.astype(np.float64) for p in params]
    opt = getattr(optim, name)(params, **hyper)
    states = [{} for _ in params]
    for t in range(steps):
        grads = _grads(rng, SHAPES, t, drift)
        for p, g in zip(params, grads):
            p.grad = g
        opt.step()
        for rp, g, st in zip(ref_p, grads, states):
            ref.STEPS[name](rp, g.astype(np.float64), st, **hyper)
    return opt, params, ref_p, states


@pytest.mark.parametrize("name,hyper", CASES, ids=_ids(CASES))
def test_trajectory_matches_reference(name, hyper):
    drift = 2.0 if name == "AdaptiveGains" else 0.0
    opt, params, ref_p, states = _run(name, hyper, drift=drift)
    # Float32 round-off over 100 steps (measured worst case about 2e-6).
    for p, rp in zip(params, ref_p):
        np.testing.assert_allclose(p.data, rp, rtol=1e-5, atol=1e-5 * max(1.0, np.abs(rp).max()))
    sd = opt.state_dict()["state"]
    for i, st in enumerate(states):
        for k, v in st.items():
            if k == "step":
                assert sd[i]["step"] == v
            else:
                np.testing.assert_allclose(sd[i][k], v, rtol=1e-5, atol=1e-6 * max(1.0, np.abs(v).max()))


def test_adaptive_gains_clipping_reached():
    # The drift makes gradients keep their sign, so gains must hit the max_gain clip.
    opt, params, _, _ = _run("AdaptiveGains", dict(lr=0.01, max_gain=1.5), drift=3.0)
    gains = opt.state_dict()["state"][0]["gain"]
    assert gains.max() == np.float32(1.5) and gains.min() < 1.5
    # Random signs shrink gains down to the min_gain clip.
    opt, _, _, _ = _run("AdaptiveGains", dict(lr=0.01, min_gain=0.5, decrease=0.5), drift=0.0)
    assert opt.state_dict()["state"][0]["gain"].min() == np.float32(0.5)


TORCH_CASES = [c for c in CASES if c[0] != "AdaptiveGains"]


def _step_both(torch, opt, topt, params, tparams, grads):
    """One step of fastnn's and PyTorch's optimizer on the same gradients."""
    for p, tp, g in zip(params, tparams, grads):
        p.grad = g
        tp.grad = torch.from_numpy(g.copy())
    opt.step()
    topt.step()


@pytest.mark.parametrize("name,hyper", TORCH_CASES, ids=_ids(TORCH_CASES))
def test_trajectory_matches_torch(name, hyper):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    init = [rng.standard_normal(s).astype(np.float32) for s in SHAPES]
    params = [Parameter(x) for x in init]
    tparams = [torch.tensor(x, requires_grad=True) for x in init]
    opt = getattr(optim, name)(params, **hyper)
    topt = getattr(torch.optim, name)(tparams, **hyper)
    for t in range(100):
        _step_both(torch, opt, topt, params, tparams, _grads(rng, SHAPES, t, 0.0))
    for p, tp in zip(params, tparams):
        np.testing.assert_allclose(p.data, tp.detach().numpy(), rtol=2e-4, atol=2e-5)
    ours, theirs = opt.state_dict(), topt.state_dict()
    for i in range(len(params)):
        tkeys = {k for k, v in theirs["state"].get(i, {}).items() if v is not None}
        okeys = set(ours["state"][i]) - ({"step"} if name == "SGD" else set())
        assert okeys == tkeys
        for k in tkeys:
            np.testing.assert_allclose(np.asarray(ours["state"][i][k]),
                                       np.asarray(theirs["state"][i][k]), rtol=2e-4, atol=2e-6)
    for k, v in theirs["param_groups"][0].items():
        if k in ours["param_groups"][0] and k != "params":
            assert ours["param_groups"][0][k] == (tuple(v) if isinstance(v, list) else v), k


@pytest.mark.parametrize("name,hyper", [
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True)),
    ("Adagrad", dict(lr=0.1, lr_decay=0.01)),
    ("RMSprop", dict(lr=0.01, centered=True, momentum=0.5)),
    ("Adadelta", dict(lr=1.0)),
    ("Adam", dict(lr=0.01, amsgrad=True)),
    ("AdamW", dict(lr=0.01)),
    ("Adamax", dict(lr=0.02)),
    ("NAdam", dict(lr=0.01, weight_decay=0.01)),
])
def test_load_torch_state_dict_resumes(name, hyper):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    init = [rng.standard_normal(s).astype(np.float32) for s in SHAPES]
    tparams = [torch.tensor(x, requires_grad=True) for x in init]
    topt = getattr(torch.optim, name)(tparams, **hyper)
    for t in range(7):
        for tp, g in zip(tparams, _grads(rng, SHAPES, t, 0.0)):
            tp.grad = torch.from_numpy(g)
        topt.step()
    sd = topt.state_dict()
    conv = {"state": {i: {k: (v.numpy() if torch.is_tensor(v) else v) for k, v in st.items()}
                      for i, st in sd["state"].items()},
            "param_groups": sd["param_groups"]}
    params = [Parameter(tp.detach().numpy()) for tp in tparams]
    opt = getattr(optim, name)(params, **{**hyper, "lr": 123.0})   # lr comes from the state dict
    opt.load_state_dict(conv)
    for t in range(3):
        _step_both(torch, opt, topt, params, tparams, _grads(rng, SHAPES, 100 + t, 0.0))
    for p, tp in zip(params, tparams):
        np.testing.assert_allclose(p.data, tp.detach().numpy(), rtol=1e-5, atol=1e-6)


ALL_ON = [
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01)),
    ("Adagrad", dict(lr=0.1, lr_decay=0.01, weight_decay=0.01, initial_accumulator_value=0.1)),
    ("RMSprop", dict(lr=0.01, centered=True, momentum=0.9, weight_decay=0.01)),
    ("Adadelta", dict(lr=1.0, weight_decay=0.01)),
    ("Adam", dict(lr=0.01, amsgrad=True, weight_decay=0.01)),
    ("AdamW", dict(lr=0.01, amsgrad=True)),
    ("Adamax", dict(lr=0.02, weight_decay=0.01)),
    ("NAdam", dict(lr=0.01, weight_decay=0.01, decoupled_weight_decay=True)),
    ("AdaptiveGains", dict(lr=0.01)),
]


@pytest.mark.parametrize("name,hyper", ALL_ON, ids=[n for n, _ in ALL_ON])
def test_state_dict_round_trip_identical(name, hyper):
    rng = np.random.default_rng(3)
    a = [Parameter(rng.standard_normal(s)) for s in SHAPES]
    opt_a = getattr(optim, name)(a, **hyper)
    for t in range(10):
        for p, g in zip(a, _grads(rng, SHAPES, t, 0.5)):
            p.grad = g
        opt_a.step()
    sd = opt_a.state_dict()
    b = [Parameter(p.data) for p in a]
    opt_b = getattr(optim, name)(b, **{**hyper, "lr": 0.5})
    opt_b.load_state_dict(sd)
    assert opt_b.param_groups[0]["lr"] == hyper["lr"] and opt_b.step_count == 10
    for t in range(5):
        grads = _grads(rng, SHAPES, t, 0.5)
        for pa, pb, g in zip(a, b, grads):
            pa.grad = g
            pb.grad = g
        opt_a.step()
        opt_b.step()
    for pa, pb in zip(a, b):
        assert np.array_equal(pa.data, pb.data)
    # The state dict holds copies: stepping did not change what was saved.
    assert sd["state"][0]["step"] == 10.0


@pytest.mark.parametrize("name,hyper", ALL_ON, ids=[n for n, _ in ALL_ON])
def test_one_and_two_threads_identical(name, hyper, threads):
    n = 3 * (1 << 15) + 5   # several parallel chunks
    out = []
    for nt in (1, 2):
        threads(nt)
        rng = np.random.default_rng(4)
        p = Parameter(rng.standard_normal(n))
        opt = getattr(optim, name)([p], **hyper)
        for t in range(3):
            p.grad = rng.standard_normal(n).astype(np.float32)
            opt.step()
        out.append(p.data.copy())
    assert np.array_equal(out[0], out[1])


@pytest.mark.parametrize("name,hyper", [
    ("SGD", dict(lr=schedules.Warmup(schedules.CosineAnnealingLR(0.05, 20), 5),
                 momentum=schedules.Ramp(0.5, 0.95, 12))),
    ("RMSprop", dict(lr=schedules.ExponentialLR(0.01, 0.9), momentum=schedules.Ramp(0.0, 0.9, 8))),
    ("Adam", dict(lr=schedules.OneCycleLR(0.01, 40), betas=(schedules.Ramp(0.95, 0.85, 20), 0.999))),
    ("NAdam", dict(lr=schedules.StepLR(0.01, 4, gamma=0.5))),
], ids=["SGD", "RMSprop", "Adam", "NAdam"])
def test_state_dict_resume_continues_the_schedules(name, hyper):
    # Resuming restores the step count, so the schedules continue where they were: the
    # resumed run equals the uninterrupted one bit for bit.
    rng = np.random.default_rng(11)
    grads = [_grads(rng, SHAPES, t, 0.3) for t in range(20)]
    init = [rng.standard_normal(s).astype(np.float32) for s in SHAPES]
    a = [Parameter(x) for x in init]
    opt_a = getattr(optim, name)(a, **hyper)
    for t in range(20):
        for p, g in zip(a, grads[t]):
            p.grad = g
        opt_a.step()
    b = [Parameter(x) for x in init]
    opt_b = getattr(optim, name)(b, **hyper)
    for t in range(9):
        for p, g in zip(b, grads[t]):
            p.grad = g
        opt_b.step()
    sd = opt_b.state_dict()
    c = [Parameter(p.data) for p in b]
    opt_c = getattr(optim, name)(c, **hyper)
    opt_c.load_state_dict(sd)
    assert opt_c.step_count == 9 and opt_c.hyper("lr") == hyper["lr"](9)
    for t in range(9, 20):
        for p, g in zip(c, grads[t]):
            p.grad = g
        opt_c.step()
    for pa, pc in zip(a, c):
        assert np.array_equal(pa.data, pc.data)


class _CountingC:
    """Wraps the kernel module and counts calls of each *_step kernel."""

    def __init__(self, real):
        self.real, self.calls = real, []

    def __getattr__(self, name):
        fn = getattr(self.real, name)
        if not name.endswith("_step"):
            return fn

        def counted(*args, **kw):
            self.calls.append((name, args[0]))
            return fn(*args, **kw)
        return counted


@pytest.mark.parametrize("name,hyper", ALL_ON, ids=[n for n, _ in ALL_ON])
def test_one_fused_kernel_call_per_group_over_a_contiguous_buffer(name, hyper, monkeypatch):
    rng = np.random.default_rng(12)
    ps = [Parameter(rng.standard_normal(s)) for s in SHAPES * 3]   # 12 parameters, 2 groups
    opt = getattr(optim, name)([{"params": ps[:7]}, {"params": ps[7:], "lr": hyper["lr"] / 2}], **hyper)
    counting = _CountingC(optim._C)
    monkeypatch.setattr(optim, "_C", counting)
    for _ in range(3):
        for p in ps:
            p.grad = rng.standard_normal(p.shape)
        opt.step()
    assert len(counting.calls) == 3 * 2           # one pass per group per step, not per parameter
    for gi, group in enumerate(opt.param_groups):
        flat = counting.calls[gi][1]
        assert flat.ndim == 1 and flat.size == sum(p.size for p in group["params"])
        for p in group["params"]:                 # the parameters are views of that buffer
            assert np.shares_memory(p.data, flat)


OPTIMIZERS = ["SGD", "Adagrad", "RMSprop", "Adadelta", "Adam", "AdamW", "Adamax", "NAdam",
              "AdaptiveGains", "LBFGS"]


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_negative_lr_and_empty_params_raise_for_every_optimizer(name):
    cls = getattr(optim, name)
    with pytest.raises(ValueError, match="lr"):
        cls([Parameter(np.ones(2))], lr=-0.1)
    with pytest.raises(ValueError, match="lr"):
        cls([Parameter(np.ones(2))], lr=float("nan"))
    with pytest.raises(ValueError, match="params"):
        cls([], lr=0.1)
    if "betas" in __import__("inspect").signature(cls).parameters:
        for bad in [(-0.1, 0.999), (0.9, 1.0), (1.5, 0.9)]:
            with pytest.raises(ValueError, match="betas"):
                cls([Parameter(np.ones(2))], betas=bad)


def test_param_groups_with_different_options():
    rng = np.random.default_rng(5)
    w, b = Parameter(rng.standard_normal((4, 3))), Parameter(rng.standard_normal(4))
    opt = optim.Adam([{"params": [w], "weight_decay": 0.1},
                      {"params": [b], "lr": 0.05, "amsgrad": True}], lr=0.01)
    assert opt.param_groups[0]["lr"] == 0.01 and opt.param_groups[1]["weight_decay"] == 0.0
    rw, rb = w.data.astype(np.float64), b.data.astype(np.float64)
    sw, sb = {}, {}
    for t in range(50):
        gw, gb = rng.standard_normal((4, 3)).astype(np.float32), rng.standard_normal(4).astype(np.float32)
        w.grad, b.grad = gw, gb
        opt.step()
        ref.adam_step(rw, gw.astype(np.float64), sw, lr=0.01, weight_decay=0.1)
        ref.adam_step(rb, gb.astype(np.float64), sb, lr=0.05, amsgrad=True)
    np.testing.assert_allclose(w.data, rw, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(b.data, rb, rtol=1e-4, atol=1e-5)
    sd = opt.state_dict()
    assert sd["param_groups"][0]["params"] == [0] and sd["param_groups"][1]["params"] == [1]
    assert "max_exp_avg_sq" in sd["state"][1] and "max_exp_avg_sq" not in sd["state"][0]


def test_group_hyper_parameters_settable_between_steps():
    p = Parameter(np.ones(3))
    opt = optim.SGD([p], lr=0.1)
    p.grad = np.ones(3)
    opt.step()
    opt.param_groups[0]["lr"] = 0.5
    opt.step()
    np.testing.assert_allclose(p.data, 1 - 0.1 - 0.5, rtol=1e-6)


def test_schedules_as_hyper_parameters():
    rng = np.random.default_rng(6)
    lr_s = schedules.ExponentialLR(0.1, 0.97)
    mom_s = schedules.Ramp(0.5, 0.9, 30)
    p = Parameter(rng.standard_normal(10))
    rp = p.data.astype(np.float64)
    opt = optim.SGD([p], lr=lr_s, momentum=mom_s)
    st = {}
    for t in range(60):
        g = rng.standard_normal(10).astype(np.float32)
        p.grad = g
        assert opt.hyper("lr") == pytest.approx(lr_s(t))
        opt.step()
        ref.sgd_step(rp, g.astype(np.float64), st, lr=lr_s(t), momentum=mom_s(t))
    np.testing.assert_allclose(p.data, rp, rtol=1e-4, atol=1e-5)
    # A plain callable works too, and the state dict stores the schedule's current value.
    q = Parameter(np.ones(2))
    o = optim.RMSprop([q], lr=lambda t: 0.01 / (1 + t), momentum=lambda t: 0.9)
    q.grad = np.ones(2)
    o.step()
    assert o.state_dict()["param_groups"][0]["lr"] == pytest.approx(0.005)
    # Adam accepts a schedule for betas[0].
    r = Parameter(np.ones(2))
    oa = optim.Adam([r], lr=0.1, betas=(schedules.Ramp(0.5, 0.9, 10), 0.999))
    r.grad = np.ones(2)
    oa.step()
    rr, sr = np.ones(2), {}
    ref.adam_step(rr, np.ones(2), sr, lr=0.1, betas=(0.5, 0.999))
    np.testing.assert_allclose(r.data, rr, rtol=1e-6)


@pytest.mark.parametrize("name,hyper", ALL_ON, ids=[n for n, _ in ALL_ON])
def test_every_optimizer_evaluates_an_lr_schedule_each_step(name, hyper):
    # lr(t) follows a warm-up then a cosine; the reference gets the value for each step.
    lr0 = hyper["lr"]
    sched = schedules.Warmup(schedules.CosineAnnealingLR(lr0, 30), 5, start_factor=0.1)
    rng = np.random.default_rng(13)
    params = [Parameter(rng.standard_normal(s)) for s in SHAPES]
    rp = [p.data.astype(np.float64) for p in params]
    opt = getattr(optim, name)(params, **{**hyper, "lr": sched})
    states = [{} for _ in params]
    for t in range(30):
        grads = _grads(rng, SHAPES, t, 0.5)
        for p, g in zip(params, grads):
            p.grad = g
        opt.step()
        for r, g, st in zip(rp, grads, states):
            ref.STEPS[name](r, g.astype(np.float64), st, **{**hyper, "lr": sched(t)})
    for p, r in zip(params, rp):
        np.testing.assert_allclose(p.data, r, rtol=1e-5, atol=1e-5)


def test_schedule_giving_a_bad_value_raises():
    p = Parameter(np.ones(2))
    opt = optim.SGD([p], lr=lambda t: -1.0)
    with pytest.raises(ValueError, match="lr"):
        opt.step()


# -- convergence ----------------------------------------------------------------------------
BOWL = [
    ("SGD", dict(lr=0.3, momentum=0.5), 300),
    ("SGD", dict(lr=0.2, momentum=0.9, nesterov=True), 300),
    ("Adagrad", dict(lr=0.5), 500),
    ("RMSprop", dict(lr=schedules.ExponentialLR(0.05, 0.99)), 600),
    ("RMSprop", dict(lr=0.01, centered=True, momentum=0.9), 600),
    ("Adadelta", dict(lr=schedules.Constant(10.0)), 1500),
    ("Adam", dict(lr=schedules.ExponentialLR(0.1, 0.99)), 800),
    ("AdamW", dict(lr=schedules.ExponentialLR(0.1, 0.99), weight_decay=1e-3), 800),
    ("Adamax", dict(lr=schedules.ExponentialLR(0.2, 0.99)), 800),
    ("NAdam", dict(lr=schedules.ExponentialLR(0.1, 0.99)), 800),
    ("AdaptiveGains", dict(lr=0.05, max_gain=10.0), 500),
]


@pytest.mark.parametrize("name,hyper,steps", BOWL, ids=[f"{n}{i}" for i, (n, _, _) in enumerate(BOWL)])
def test_quadratic_bowl_converges(name, hyper, steps):
    a = np.linspace(0.5, 2.0, 20).astype(np.float32)
    c = np.linspace(-1.0, 1.0, 20).astype(np.float32)
    x = Parameter(np.full(20, 2.0))
    opt = getattr(optim, name)([x], **hyper)
    f = lambda: float(0.5 * np.sum(a * (x.data - c) ** 2))
    f0 = f()
    for _ in range(steps):
        x.grad = a * (x.data - c)
        opt.step()
    assert f() < 1e-4 * f0, f"{name}: f went {f0} -> {f()}"


def _least_squares(seed=7):
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((40, 6))
    A /= np.linalg.norm(A, axis=0)   # well conditioned
    b = rng.standard_normal(40)
    return A, b, np.linalg.lstsq(A, b, rcond=None)[0]


@pytest.mark.parametrize("line_search_fn", [None, "strong_wolfe"])
def test_lbfgs_solves_least_squares(line_search_fn):
    A, b, x_star = _least_squares()
    x = Parameter(np.zeros(6))
    opt = optim.LBFGS([x], lr=1, max_iter=50, line_search_fn=line_search_fn,
                      tolerance_grad=1e-9, tolerance_change=1e-12)

    def closure():
        opt.zero_grad()
        r = A @ x.data.astype(np.float64) - b
        x.grad += A.T @ r
        return 0.5 * float(r @ r)

    for _ in range(5):
        opt.step(closure)
    assert np.abs(x.data - x_star).max() < 1e-6
    st = opt.state_dict()["state"][0]
    assert st["n_iter"] > 0 and st["func_evals"] >= st["n_iter"]


def test_lbfgs_matches_torch():
    torch = pytest.importorskip("torch")
    A, b, _ = _least_squares(8)
    for ls in (None, "strong_wolfe"):
        x = Parameter(np.zeros(6))
        opt = optim.LBFGS([x], max_iter=4, line_search_fn=ls, history_size=3)
        tx = torch.zeros(6, dtype=torch.float64, requires_grad=True)
        topt = torch.optim.LBFGS([tx], max_iter=4, line_search_fn=ls, history_size=3)
        At, bt = torch.from_numpy(A), torch.from_numpy(b)

        def closure():
            opt.zero_grad()
            r = A @ x.data.astype(np.float64) - b
            x.grad += A.T @ r
            return 0.5 * float(r @ r)

        def tclosure():
            topt.zero_grad()
            loss = 0.5 * ((At @ tx - bt) ** 2).sum()
            loss.backward()
            return loss

        for _ in range(2):
            l1 = opt.step(closure)
            l2 = topt.step(tclosure)
            assert l1 == pytest.approx(float(l2.detach()), rel=1e-5)
        np.testing.assert_allclose(x.data, tx.detach().numpy(), rtol=1e-4, atol=1e-5)


def test_lbfgs_state_dict_resume():
    A, b, _ = _least_squares(9)

    def make():
        x = Parameter(np.zeros(6))
        opt = optim.LBFGS([x], max_iter=3, line_search_fn="strong_wolfe")

        def closure():
            opt.zero_grad()
            r = A @ x.data.astype(np.float64) - b
            x.grad += A.T @ r
            return 0.5 * float(r @ r)
        return x, opt, closure

    x1, o1, c1 = make()
    o1.step(c1)
    x2, o2, c2 = make()
    x2.data = x1.data
    o2.load_state_dict(o1.state_dict())
    o1.step(c1)
    o2.step(c2)
    assert np.array_equal(x1.data, x2.data)


# -- bad input ------------------------------------------------------------------------------
@pytest.mark.parametrize("make,arg", [
    (lambda p: optim.SGD(p, lr=-0.1), "lr"),
    (lambda p: optim.SGD(p, lr=0.1, momentum=-0.5), "momentum"),
    (lambda p: optim.SGD(p, lr=0.1, nesterov=True), "nesterov"),
    (lambda p: optim.SGD(p, lr=0.1, weight_decay=-1), "weight_decay"),
    (lambda p: optim.Adam(p, betas=(1.0, 0.999)), r"betas\[0\]"),
    (lambda p: optim.Adam(p, betas=(0.9, -0.1)), r"betas\[1\]"),
    (lambda p: optim.Adam(p, betas=(0.9,)), "betas"),
    (lambda p: optim.AdamW(p, eps=-1e-8), "eps"),
    (lambda p: optim.Adamax(p, betas=(0.9, 1.0)), r"betas\[1\]"),
    (lambda p: optim.NAdam(p, momentum_decay=-1), "momentum_decay"),
    (lambda p: optim.Adagrad(p, lr_decay=-1), "lr_decay"),
    (lambda p: optim.Adagrad(p, eps=-1), "eps"),
    (lambda p: optim.RMSprop(p, alpha=-0.1), "alpha"),
    (lambda p: optim.RMSprop(p, eps=-1), "eps"),
    (lambda p: optim.Adadelta(p, rho=1.5), "rho"),
    (lambda p: optim.AdaptiveGains(p, decrease=1.5), "decrease"),
    (lambda p: optim.AdaptiveGains(p, min_gain=2.0, max_gain=1.0), "max_gain"),
    (lambda p: optim.LBFGS(p, line_search_fn="armijo"), "line_search_fn"),
    (lambda p: optim.LBFGS([{"params": p[:1]}, {"params": p[1:]}]), "params"),
    (lambda p: optim.Adam([]), "params"),
    (lambda p: optim.SGD([{"params": []}], lr=0.1), "params"),
    (lambda p: optim.SGD(p + p, lr=0.1), "params"),
])
def test_bad_hyper_parameters_raise_value_error(make, arg):
    params = [Parameter(np.ones(2)), Parameter(np.ones(3))]
    with pytest.raises(ValueError, match=arg):
        make(params)


def test_bad_types_raise_type_error():
    with pytest.raises(TypeError, match="params"):
        optim.SGD(Parameter(np.ones(2)), lr=0.1)
    with pytest.raises(TypeError, match="params"):
        optim.Adam([np.ones(2)])
    with pytest.raises(TypeError, match="unknown"):
        optim.Adam([{"params": [Parameter(np.ones(2))], "momentum": 0.9}])
    with pytest.raises(TypeError, match="eps"):
        optim.Adam([Parameter(np.ones(2))], eps=lambda t: 1e-8)
    with pytest.raises(TypeError, match="closure"):
        optim.LBFGS([Parameter(np.ones(2))]).step()


def test_kernels_reject_copies_and_wrong_sizes():
    p = np.ones(8, np.float32)
    g = np.ones(8, np.float32)
    m, v = np.zeros(8, np.float32), np.zeros(8, np.float32)
    args = (1e-3, 0.9, 0.999, 1e-8, 0.0, 1, False, False)
    with pytest.raises(TypeError):
        _C.adam_step(p.astype(np.float64), g, m, v, None, *args)
    with pytest.raises(TypeError):
        _C.adam_step(np.ones(16, np.float32)[::2], g, m, v, None, *args)
    with pytest.raises(ValueError, match="exp_avg"):
        _C.adam_step(p, g, np.zeros(7, np.float32), v, None, *args)
    with pytest.raises(ValueError, match="step"):
        _C.adam_step(p, g, m, v, None, 1e-3, 0.9, 0.999, 1e-8, 0.0, 0, False, False)
    ro = np.zeros(8, np.float32)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        _C.adagrad_step(p, g, ro, 0.1, 0.0, 0.0, 1e-10, 1, False)


def test_load_state_dict_rejects_mismatch_and_keeps_state():
    p = Parameter(np.ones((2, 3)))
    opt = optim.Adam([p])
    p.grad = np.ones((2, 3))
    opt.step()
    good = opt.state_dict()
    bad = opt.state_dict()
    bad["state"][0]["exp_avg"] = np.zeros(5)
    with pytest.raises(ValueError, match="exp_avg"):
        opt.load_state_dict(bad)
    np.testing.assert_array_equal(opt.state_dict()["state"][0]["exp_avg"], good["state"][0]["exp_avg"])
    with pytest.raises(ValueError, match="state_dict"):
        opt.load_state_dict({"param_groups": []})


def test_clip_grad_norm_matches_torch():
    rng = np.random.default_rng(10)
    params = [Parameter(rng.standard_normal(s)) for s in SHAPES]
    for p in params:
        p.grad = rng.standard_normal(p.shape) * 3
    grads = [p.grad.copy() for p in params]
    total = optim.clip_grad_norm(params, 1.0)
    expect = np.sqrt(sum(float(np.sum(g.astype(np.float64) ** 2)) for g in grads))
    assert total == pytest.approx(expect, rel=1e-6)
    new = np.sqrt(sum(float(np.sum(p.grad.astype(np.float64) ** 2)) for p in params))
    assert new == pytest.approx(1.0, rel=1e-5)
    torch = pytest.importorskip("torch")
    ts = [torch.zeros(g.shape, requires_grad=True) for g in grads]
    for t, g in zip(ts, grads):
        t.grad = torch.from_numpy(g.copy())
    tn = torch.nn.utils.clip_grad_norm_(ts, 1.0)
    assert total == pytest.approx(float(tn), rel=1e-5)
    for p, t in zip(params, ts):
        np.testing.assert_allclose(p.grad, t.grad.numpy(), rtol=1e-5, atol=1e-7)


def test_all_names_exported():
    for name in ["Optimizer", "SGD", "Adagrad", "RMSprop", "Adadelta", "Adam", "AdamW", "Adamax",
                 "NAdam", "AdaptiveGains", "LBFGS", "clip_grad_norm"]:
        assert name in optim.__all__ and hasattr(optim, name)
