"""Schedules: closed forms, step-for-step agreement with torch.optim.lr_scheduler, repr,
plotting, per_epoch and bad arguments."""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import fastnn
from fastnn import schedules as S


def _torch_values(make_sched, n, lr=1.0, momentum=0.0, key="lr"):
    """Scheduler values after 0, 1, ..., n-1 calls of scheduler.step()."""
    torch = pytest.importorskip("torch")
    p = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([p], lr=lr, momentum=momentum)
    sched = make_sched(torch.optim.lr_scheduler, opt)
    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i in range(n):
            out.append(float(opt.param_groups[0][key]))
            if i < n - 1:
                opt.step()
                sched.step()
    return np.array(out)


TORCH_CASES = [
    ("StepLR", S.StepLR(0.1, 7, gamma=0.5), lambda L, o: L.StepLR(o, 7, gamma=0.5), 0.1, 40),
    ("MultiStepLR", S.MultiStepLR(0.1, [5, 12, 12, 30], gamma=0.3),
     lambda L, o: L.MultiStepLR(o, [5, 12, 12, 30], gamma=0.3), 0.1, 40),
    ("ExponentialLR", S.ExponentialLR(0.1, 0.95), lambda L, o: L.ExponentialLR(o, 0.95), 0.1, 60),
    ("CosineAnnealingLR", S.CosineAnnealingLR(0.1, 20, eta_min=0.001),
     lambda L, o: L.CosineAnnealingLR(o, 20, eta_min=0.001), 0.1, 70),
    ("CyclicLR-triangular", S.CyclicLR(0.01, 0.1, step_size_up=5),
     lambda L, o: L.CyclicLR(o, 0.01, 0.1, step_size_up=5, cycle_momentum=False), 0.1, 40),
    ("CyclicLR-triangular2", S.CyclicLR(0.01, 0.1, step_size_up=5, step_size_down=3, mode="triangular2"),
     lambda L, o: L.CyclicLR(o, 0.01, 0.1, step_size_up=5, step_size_down=3, mode="triangular2",
                             cycle_momentum=False), 0.1, 40),
    ("CyclicLR-exp_range", S.CyclicLR(0.01, 0.1, step_size_up=4, mode="exp_range", gamma=0.97),
     lambda L, o: L.CyclicLR(o, 0.01, 0.1, step_size_up=4, mode="exp_range", gamma=0.97,
                             cycle_momentum=False), 0.1, 40),
    ("OneCycleLR-cos", S.OneCycleLR(0.1, 50), lambda L, o: L.OneCycleLR(o, 0.1, total_steps=50,
                                                                       cycle_momentum=False), 0.1, 51),
    ("OneCycleLR-linear", S.OneCycleLR(0.2, 37, pct_start=0.25, anneal_strategy="linear", div_factor=10.0,
                                       final_div_factor=100.0),
     lambda L, o: L.OneCycleLR(o, 0.2, total_steps=37, pct_start=0.25, anneal_strategy="linear",
                               div_factor=10.0, final_div_factor=100.0, cycle_momentum=False), 0.1, 38),
    ("OneCycleLR-three_phase", S.OneCycleLR(0.1, 40, three_phase=True),
     lambda L, o: L.OneCycleLR(o, 0.1, total_steps=40, three_phase=True, cycle_momentum=False), 0.1, 41),
    ("Warmup", S.Warmup(S.Constant(0.1), 10, start_factor=0.25),
     lambda L, o: L.LinearLR(o, start_factor=0.25, end_factor=1.0, total_iters=10), 0.1, 30),
    ("LinearDecay", S.LinearDecay(0.1, 0.004, 25),
     lambda L, o: L.LinearLR(o, start_factor=1.0, end_factor=0.04, total_iters=25), 0.1, 40),
    ("Ramp", S.Ramp(0.05, 0.1, 8),
     lambda L, o: L.LinearLR(o, start_factor=0.5, end_factor=1.0, total_iters=8), 0.1, 20),
    ("Lambda", S.Lambda(lambda t: 0.5 / (1 + t) ** 0.5),
     lambda L, o: L.LambdaLR(o, lambda t: 0.5 / (1 + t) ** 0.5), 1.0, 30),
]


@pytest.mark.parametrize("name,ours,make,lr,n", TORCH_CASES, ids=[c[0] for c in TORCH_CASES])
def test_matches_torch_step_for_step(name, ours, make, lr, n):
    expect = _torch_values(make, n, lr=lr)
    np.testing.assert_allclose(ours.values(n), expect, rtol=1e-9, atol=1e-12)


def test_one_cycle_momentum_matches_torch():
    s = S.OneCycleLR(0.1, 30, three_phase=False)
    expect = _torch_values(lambda L, o: L.OneCycleLR(o, 0.1, total_steps=30), 31, momentum=0.9,
                           key="momentum")
    np.testing.assert_allclose(s.momentum_schedule().values(31), expect, rtol=1e-9)


def test_per_epoch_matches_torch_epoch_stepping():
    s = S.per_epoch(S.StepLR(0.1, 3, gamma=0.5), steps_per_epoch=4)
    expect = _torch_values(lambda L, o: L.StepLR(o, 3, gamma=0.5), 10, lr=0.1)
    np.testing.assert_allclose(s.values(40), np.repeat(expect, 4), rtol=1e-12)


def test_closed_forms():
    assert S.Constant(0.3)(1000) == 0.3
    ld = S.LinearDecay(0.1, 0.001, 100)
    for k in (0, 1, 50, 99):
        assert ld(k) == pytest.approx((1 - k / 100) * 0.1 + k / 100 * 0.001)
    assert ld(100) == ld(1000) == 0.001
    it = S.InverseTime(0.5, 0.1)
    assert [it(t) for t in (0, 10, 90)] == pytest.approx([0.5, 0.25, 0.05])
    cl = S.Clipped(S.Lambda(lambda t: 100.0 / max(t, 1)), 0.1)
    assert cl(0) == 0.1 and cl(1000) == 0.1 and cl(2000) == pytest.approx(0.05)
    assert S.Clipped(S.Constant(0.001), 0.1, min_value=0.01)(5) == 0.01
    r = S.Ramp(0.5, 0.99, 20)
    assert r(0) == 0.5 and r(10) == pytest.approx(0.745) and r(20) == r(500) == 0.99
    w = S.Warmup(S.ExponentialLR(0.1, 0.9), 5)
    assert w(0) == 0.0 and w(2) == pytest.approx(0.1 * 0.9 ** 2 * 0.4) and w(7) == pytest.approx(0.1 * 0.9 ** 7)
    c = S.CosineAnnealingLR(1.0, 10)
    assert c(0) == 1.0 and c(5) == pytest.approx(0.5) and c(10) == pytest.approx(0.0, abs=1e-15)
    assert c(20) == pytest.approx(1.0) and c(15) == pytest.approx(0.5)    # keeps oscillating
    tri = S.CyclicLR(0.1, 1.0, step_size_up=4)
    assert tri(0) == pytest.approx(0.1) and tri(4) == pytest.approx(1.0) and tri(8) == pytest.approx(0.1)
    assert tri(2) == pytest.approx(0.55)
    t2 = S.CyclicLR(0.0, 1.0, step_size_up=2, mode="triangular2")
    assert [t2(2), t2(6), t2(10)] == pytest.approx([1.0, 0.5, 0.25])
    ex = S.CyclicLR(0.0, 1.0, step_size_up=2, mode="exp_range", gamma=0.9)
    assert ex(2) == pytest.approx(0.81) and ex(6) == pytest.approx(0.9 ** 6)
    oc = S.OneCycleLR(1.0, 100, pct_start=0.3)
    assert oc(0) == pytest.approx(1 / 25) and oc(29) == pytest.approx(1.0)
    assert oc(99) == pytest.approx(1 / 25 / 1e4)
    assert all(oc(t) >= oc(t + 1) for t in range(29, 99))


def test_values_are_floats_and_accept_numpy_ints():
    s = S.StepLR(0.1, 2)
    assert isinstance(s(np.int64(3)), float) and s(np.int64(3)) == pytest.approx(0.01)


def test_repr_and_plot(tmp_path):
    s = S.OneCycleLR(0.1, 50, anneal_strategy="linear")
    r = repr(s)
    assert r.startswith("OneCycleLR(") and "max_lr=0.1" in r and "anneal_strategy='linear'" in r
    assert repr(S.Warmup(S.StepLR(0.1, 5), 3)).startswith("Warmup(s=StepLR(lr0=0.1, step_size=5")
    assert "steps_per_epoch=4" in repr(S.per_epoch(S.ExponentialLR(0.1, 0.9), 4))
    path = tmp_path / "s.png"
    fig = s.plot(50, path=path)
    assert path.stat().st_size > 1000
    line = fig.axes[0].lines[0]
    np.testing.assert_allclose(line.get_ydata(), s.values(50))
    fastnn._plot.pyplot().close(fig)


@pytest.mark.parametrize("make,arg", [
    (lambda: S.StepLR(0.1, 0), "step_size"),
    (lambda: S.CyclicLR(0.1, 1.0, mode="sine"), "mode"),
    (lambda: S.OneCycleLR(0.1, 10, anneal_strategy="exp"), "anneal_strategy"),
    (lambda: S.OneCycleLR(0.1, 10, pct_start=1.5), "pct_start"),
    (lambda: S.Warmup(S.Constant(0.1), 5, start_factor=2.0), "start_factor"),
    (lambda: S.CosineAnnealingLR(0.1, 0), "T_max"),
    (lambda: S.OneCycleLR(0.1, 10)(11), "t"),
    (lambda: S.StepLR(0.1, 2)(-1), "t"),
    (lambda: S.Ramp(0.5, 0.9, 0), "steps"),
    (lambda: S.per_epoch(S.Constant(1.0), 0), "steps_per_epoch"),
])
def test_bad_arguments_raise_value_error(make, arg):
    with pytest.raises(ValueError, match=arg):
        make()


def test_bad_types_raise_type_error():
    with pytest.raises(TypeError, match="fn"):
        S.Lambda(3)
    with pytest.raises(TypeError, match="t"):
        S.StepLR(0.1, 2)(1.5)
    with pytest.raises(TypeError, match="s"):
        S.Warmup("x", 3)


def test_all_exported():
    for name in ["Schedule", "Constant", "StepLR", "MultiStepLR", "LinearDecay", "InverseTime",
                 "Clipped", "Lambda", "ExponentialLR", "CosineAnnealingLR", "CyclicLR",
                 "OneCycleLR", "Warmup", "Ramp", "per_epoch", "lr_find"]:
        assert name in S.__all__ and getattr(fastnn, name) is getattr(S, name)
