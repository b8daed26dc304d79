"""lr_find: the LR range test on the MNIST MLP suggests a rate that trains, stops on
divergence, and leaves the model and the optimizer exactly as they were."""
from __future__ import annotations

import numpy as np
import pytest

import fastnn
from fastnn import losses, models, optim, schedules


def _setup(mnist_split, make_opt, seed=0):
    xt, yt, xv, yv = mnist_split
    model = models.mlp((1, 28, 28), 10, rng=np.random.default_rng(seed))
    opt = make_opt(model.parameters())
    loader = fastnn.DataLoader(xt, yt, batch_size=64, rng=np.random.default_rng(seed + 1))
    return model, opt, loader, losses.SoftmaxCrossEntropy()


def _train_epoch(model, opt, loader, loss_fn):
    for xb, yb in loader:
        opt.zero_grad()
        loss, dout = loss_fn(model(xb), yb)
        model.backward(dout)
        opt.step()


@pytest.mark.parametrize("make_opt", [
    lambda ps: optim.SGD(ps, lr=0.01, momentum=0.9),
    lambda ps: optim.Adam(ps),
], ids=["SGD-momentum", "Adam"])
def test_suggestion_trains_mnist_mlp(mnist_split, make_opt):
    model, opt, loader, loss_fn = _setup(mnist_split, make_opt)
    res = fastnn.lr_find(model, loss_fn, opt, loader)
    assert 1e-7 <= res.suggestion <= 10
    assert len(res.lrs) == len(res.losses) == len(res.raw_losses) > 20
    assert res.lrs[0] == pytest.approx(1e-7)
    np.testing.assert_allclose(np.diff(np.log(res.lrs)), np.log(1e8) / 99, rtol=1e-9)
    assert res.diverged and len(res.lrs) < 100      # end_lr = 10 blows these up
    # A rate at the suggestion trains: one epoch beats chance (10%) by far.
    for g in opt.param_groups:
        g["lr"] = res.suggestion
    _train_epoch(model, opt, loader, loss_fn)
    model.eval()
    acc = float((model(mnist_split[2]).argmax(1) == mnist_split[3]).mean())
    assert acc > 0.8, f"accuracy {acc} at suggested lr {res.suggestion}"
    # The suggestion lies below the rate where the sweep diverged.
    assert res.suggestion < res.lrs[-1]


def test_restores_model_and_optimizer_bitwise(mnist_split):
    lr_sched = schedules.ExponentialLR(0.01, 0.99)
    model, opt, loader, loss_fn = _setup(mnist_split, lambda ps: optim.SGD(ps, lr=lr_sched, momentum=0.9))
    _train_epoch(model, opt, fastnn.DataLoader(*mnist_split[:2], batch_size=500,
                                               rng=np.random.default_rng(3)), loss_fn)
    model.eval()
    before_model = model.state_dict()
    before_opt = opt.state_dict()
    before_grads = [p.grad.copy() for p in model.parameters()]
    res = fastnn.lr_find(model, loss_fn, opt, loader, num=30, end_lr=1.0)
    assert len(res.lrs) > 0
    assert model.training is False
    after_model = model.state_dict()
    for k in before_model:
        assert np.array_equal(before_model[k], after_model[k]), k
    for p, g in zip(model.parameters(), before_grads):
        assert np.array_equal(p.grad, g)
    after_opt = opt.state_dict()
    assert after_opt["param_groups"] == before_opt["param_groups"]
    assert opt.param_groups[0]["lr"] is lr_sched
    assert after_opt["state"].keys() == before_opt["state"].keys()
    for i, st in before_opt["state"].items():
        assert st.keys() == after_opt["state"][i].keys()
        for k, v in st.items():
            assert np.array_equal(v, after_opt["state"][i][k]), (i, k)


def test_restores_fresh_optimizer_without_state(mnist_split):
    model, opt, loader, loss_fn = _setup(mnist_split, lambda ps: optim.Adam(ps))
    fastnn.lr_find(model, loss_fn, opt, loader, num=10)
    sd = opt.state_dict()
    assert opt.step_count == 0 and set(sd["state"][0]) == {"step"}


def test_plot_and_bad_arguments(mnist_split, tmp_path):
    model, opt, loader, loss_fn = _setup(mnist_split, lambda ps: optim.SGD(ps, lr=0.1))
    res = fastnn.lr_find(model, loss_fn, opt, loader, start_lr=1e-4, end_lr=1.0, num=15)
    fig = res.plot(path=tmp_path / "lr.png")
    assert (tmp_path / "lr.png").stat().st_size > 1000 and fig.axes[0].get_xscale() == "log"
    fastnn._plot.pyplot().close(fig)
    with pytest.raises(ValueError, match="start_lr"):
        fastnn.lr_find(model, loss_fn, opt, loader, start_lr=0.0)
    with pytest.raises(ValueError, match="end_lr"):
        fastnn.lr_find(model, loss_fn, opt, loader, start_lr=1e-3, end_lr=1e-4)
    with pytest.raises(ValueError, match="num"):
        fastnn.lr_find(model, loss_fn, opt, loader, num=1)
    with pytest.raises(TypeError, match="optimizer"):
        fastnn.lr_find(model, loss_fn, optim.LBFGS(model.parameters()), loader)
