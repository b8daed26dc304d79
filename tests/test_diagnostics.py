"""fastnn.diagnostics: activation statistics, dead units, gradient checks, the lecture's
initialization experiment and update-ratio summaries."""
from __future__ import annotations

import numpy as np
import pytest

import fastnn
from fastnn import diagnostics as D
from fastnn.module import Module


class RunningScale(Module):
    """Scale with a buffer updated in training mode (BatchNorm-like bookkeeping)."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.weight = fastnn.Parameter(np.linspace(0.5, 1.5, n).astype(np.float32))
        self.register_buffer("running_mean", np.zeros(n, np.float32))

    def forward(self, x):
        if self.training:
            rm = self.running_mean
            rm += np.float32(0.1) * x.mean(axis=0)
        self._x = x
        return x * self.weight.data

    def backward(self, dy):
        self.weight.grad += (dy * self._x).sum(axis=0)
        return dy * self.weight.data


# -- activation_stats ------------------------------------------------------------------------
def test_activation_stats_dead_and_saturated_units():
    rng = np.random.default_rng(0)
    lin = fastnn.Linear(6, 4, rng=rng)
    lin.weight.data = np.zeros((4, 6))
    lin.bias.data = np.array([1.0, -1.0, 2.0, -3.0])   # units 1 and 3 are never positive
    big = fastnn.Linear(4, 5, rng=rng)
    big.weight.data = np.full((5, 4), 10.0)
    big.bias.data = np.zeros(5)
    model = fastnn.Sequential(lin, fastnn.ReLU(), fastnn.Sequential(big, fastnn.Tanh()), fastnn.Sigmoid())
    x = rng.standard_normal((32, 6)).astype(np.float32)
    recs = D.activation_stats(model, x, bins=10)
    assert [r["name"] for r in recs] == ["0", "1", "2.0", "2.1", "3"]
    assert [r["type"] for r in recs] == ["Linear", "ReLU", "Linear", "Tanh", "Sigmoid"]
    relu = recs[1]
    assert relu["dead_fraction"] == 0.5 and relu["saturated_fraction"] is None
    assert relu["shape"] == (32, 4)
    # tanh(10 * (1 + 2)) = 1 for every value: fully saturated
    assert recs[3]["saturated_fraction"] == 1.0 and recs[3]["dead_fraction"] is None
    # sigmoid(tanh) = sigmoid(1) = 0.73: not saturated
    assert recs[4]["saturated_fraction"] == 0.0
    y = model(x)
    assert recs[4]["mean"] == pytest.approx(float(y.mean()), rel=1e-6)
    assert recs[4]["std"] == pytest.approx(float(y.astype(np.float64).std()), rel=1e-6)
    counts, edges = recs[0]["histogram"]
    assert counts.sum() == 32 * 4 and len(edges) == 11
    assert "ReLU" in D.format_activation_stats(recs)


def test_activation_stats_channels_and_modes():
    # (N, C, H, W): a unit is a channel, dead when never positive anywhere in the batch
    class Shift(Module):
        def forward(self, x):
            return x + np.array([0.0, -100.0, 0.0], np.float32)[None, :, None, None]

    x = np.random.default_rng(1).standard_normal((5, 3, 4, 4)).astype(np.float32)
    model = fastnn.Sequential(Shift(), fastnn.ReLU())
    model.train()
    model[1].eval()
    recs = D.activation_stats(model, x)
    assert recs[1]["dead_fraction"] == pytest.approx(1 / 3)
    assert model.training and model[0].training and not model[1].training
    # forward hooks are gone
    assert "forward" not in model[1].__dict__


def test_activation_stats_runs_in_eval_mode_and_leaves_buffers():
    model = fastnn.Sequential(fastnn.Linear(3, 4, rng=np.random.default_rng(0)), RunningScale(4), fastnn.ReLU())
    model.train()
    x = np.random.default_rng(2).standard_normal((10, 3)).astype(np.float32)
    D.activation_stats(model, x)
    np.testing.assert_array_equal(model[1].running_mean, 0.0)
    assert model.training
    with pytest.raises(TypeError, match="model"):
        D.activation_stats("not a model", x)


# -- dead_units ------------------------------------------------------------------------------
def test_dead_units_counts_over_the_dataset():
    lin = fastnn.Linear(2, 3, rng=np.random.default_rng(0))
    lin.weight.data = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]])
    lin.bias.data = np.array([0.0, 0.0, -10.0])
    model = fastnn.Sequential(lin, fastnn.ReLU(), fastnn.Linear(3, 2, rng=np.random.default_rng(1)), fastnn.LeakyReLU())
    rng = np.random.default_rng(3)
    x = rng.standard_normal((100, 2)).astype(np.float32)
    y = np.zeros(100, np.int64)
    loader = fastnn.DataLoader(x, y, batch_size=16, shuffle=True, rng=np.random.default_rng(5))
    state = loader.rng.bit_generator.state
    recs = D.dead_units(model, loader)
    assert loader.rng.bit_generator.state == state     # the training shuffle is not disturbed
    assert [r["name"] for r in recs] == ["1", "3"]
    r = recs[0]
    assert r["samples"] == 100 and r["units"] == 3
    np.testing.assert_array_equal(r["counts"], [(x[:, 0] > 0).sum(), (x[:, 1] > 0).sum(), 0])
    np.testing.assert_array_equal(r["dead"], [2])
    assert r["dead_fraction"] == pytest.approx(1 / 3)
    # an array or a plain iterable of batches gives the same counts
    for data in (x, [(x[:50], None), (x[50:], None)], [x[:30], x[30:]]):
        np.testing.assert_array_equal(D.dead_units(model, data)[0]["counts"], r["counts"])
    with pytest.raises(ValueError, match="at least one batch"):
        D.dead_units(model, [])


# -- gradient_check --------------------------------------------------------------------------
def _mods():
    rng = np.random.default_rng(0)
    return {
        "linear": (fastnn.Linear(13, 7, rng=rng), (8, 13)),
        "tanh": (fastnn.Tanh(), (6, 9)),
        "sigmoid": (fastnn.Sigmoid(), (6, 9)),
        "elu": (fastnn.ELU(), (6, 9)),
        "prelu": (fastnn.PReLU(9), (6, 9)),
        "mlp": (fastnn.Sequential(fastnn.Linear(5, 12, rng=rng), fastnn.Tanh(), RunningScale(12),
                                  fastnn.Linear(12, 4, rng=rng), fastnn.Sigmoid()), (7, 5)),
    }


@pytest.mark.parametrize("name", list(_mods()))
def test_gradient_check_passes_for_correct_layers(name):
    module, shape = _mods()[name]
    x = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    # a stack needs the larger step to beat float32 round-off (see gradient_check's docstring)
    eps = 1e-2 if name == "mlp" else 1e-3
    err = D.gradient_check(module, x, eps=eps, rng=np.random.default_rng(2))
    assert err < 5e-3, err


class WrongScale(fastnn.Linear):
    def backward(self, dy):
        return super().backward(dy) * 1.1                # dx 10% off


class ForgetsBias(fastnn.Linear):
    def backward(self, dy):
        dx = super().backward(dy)
        self.bias.grad[...] = 0
        return dx


class WrongTanh(fastnn.Tanh):
    def backward(self, dy):
        return dy * (1 - np.tanh(self._x))                # 1 - y instead of 1 - y²


@pytest.mark.parametrize("cls", [WrongScale, ForgetsBias, WrongTanh])
def test_gradient_check_catches_wrong_backward(cls):
    module = cls() if cls is WrongTanh else cls(6, 4, rng=np.random.default_rng(0))
    x = np.random.default_rng(1).standard_normal((5, 6)).astype(np.float32)
    assert D.gradient_check(module, x, rng=np.random.default_rng(2)) > 3e-2


def test_gradient_check_restores_state_and_reports_per_tensor():
    model = fastnn.Sequential(fastnn.Linear(4, 6, rng=np.random.default_rng(0)), RunningScale(6))
    model.train()
    for p in model.parameters():
        p.grad[...] = 7.0
    before = model.state_dict()
    x = np.random.default_rng(1).standard_normal((3, 4))            # float64 is accepted
    errs = D.gradient_errors(model, x, rng=0)
    assert set(errs) == {"x", "0.weight", "0.bias", "1.weight"}
    assert max(errs.values()) < 5e-3
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v, before[k])                  # buffers and weights
    assert all((p.grad == 7.0).all() for p in model.parameters())    # gradients too
    # explicit dy and sampled entries
    dy = np.ones((3, 6), np.float32)
    assert D.gradient_check(model, x, dy=dy, max_entries=5, rng=0) < 5e-3
    with pytest.raises(ValueError, match="dy"):
        D.gradient_check(model, x, dy=np.ones((3, 5)))
    with pytest.raises(ValueError, match="eps"):
        D.gradient_check(model, x, eps=0)
    with pytest.raises(TypeError, match="module"):
        D.gradient_check(lambda t: t, x)


# -- init_report: the lecture's experiment ---------------------------------------------------
@pytest.fixture(scope="module")
def lecture():
    recs = D.init_report(rng=np.random.default_rng(0))
    return {(r["activation"], r["init"], r["layer"]): r for r in recs}, recs


def test_init_report_reproduces_the_lecture(lecture):
    by, recs = lecture
    assert len(recs) == 2 * 4 * 10
    std = lambda a, i, l: by[(a, i, l)]["std"]  # noqa: E731
    # 0.01 * randn with tanh: activations collapse to zero
    assert std("tanh", "small_random", 1) > 0.05
    assert std("tanh", "small_random", 10) < 1e-3
    # unit normal with tanh: saturated at ±1, std about 0.98
    for layer in range(1, 11):
        assert 0.95 < std("tanh", "normal", layer) < 0.99
    # Xavier keeps tanh alive
    assert std("tanh", "xavier_normal", 10) > 0.1
    # Xavier with ReLU halves the variance per layer: decays
    assert std("relu", "xavier_normal", 10) < 0.1 * std("relu", "xavier_normal", 1)
    # He with ReLU: stable
    ratio = std("relu", "he_normal", 10) / std("relu", "he_normal", 1)
    assert 0.5 < ratio < 2.0
    for r in recs:
        assert r["histogram"][0].sum() == 1000 * 500


def test_init_report_table_and_plots(lecture, tmp_path):
    _, recs = lecture
    text = D.format_init_report(recs)
    assert "xavier_normal" in text and "L10" in text
    assert len(text.splitlines()) == 2 + 2 * 8
    small = [r for r in recs if r["layer"] <= 3 and r["init"] in ("normal", "he_normal")]
    grid = D.plot_init_report(small, tmp_path / "grid.png")
    assert grid == [str(tmp_path / "grid.png")]
    files = D.plot_init_report(small, tmp_path / "plots")
    assert sorted(p.split("/")[-1] for p in files) == [
        "init_relu_he_normal.png", "init_relu_normal.png", "init_tanh_he_normal.png", "init_tanh_normal.png"]
    for p in grid + files:
        with open(p, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="histogram"):
        D.plot_init_report([{"activation": "tanh", "init": "x", "layer": 1, "mean": 0, "std": 1}], tmp_path / "a.png")


def test_init_report_options_and_errors():
    a = D.init_report(depth=3, width=40, n=50, activations="tanh", inits=("xavier_normal",), input="normal", rng=3)
    b = D.init_report(depth=3, width=40, n=50, activations="tanh", inits=("xavier_normal",), input="normal", rng=3)
    assert [r["std"] for r in a] == [r["std"] for r in b]
    assert [r["layer"] for r in a] == [1, 2, 3]
    custom = D.init_report(depth=2, width=8, n=10, activations=("relu",), inits=(fastnn.init.zeros,), rng=0)
    assert [r["init"] for r in custom] == ["zeros", "zeros"] and custom[-1]["std"] == 0.0
    with pytest.raises(ValueError, match="activations"):
        D.init_report(activations=("swish",))
    with pytest.raises(ValueError, match="init"):
        D.init_report(inits=("nonsense",))
    with pytest.raises(ValueError, match="input"):
        D.init_report(input="gaussian")
    with pytest.raises(ValueError, match="depth"):
        D.init_report(depth=0)


def test_init_report_lsuv_keeps_unit_preactivation_variance():
    recs = D.init_report(depth=6, width=64, n=256, activations=("tanh", "relu", "linear"),
                         inits=("xavier_normal", "lsuv"), rng=np.random.default_rng(4))
    by = {(r["activation"], r["init"], r["layer"]): r for r in recs}
    for layer in range(1, 7):
        # pre-activation variance 1 (LSUV's tolerance 0.05): the linear net's output itself,
        # tanh of a unit-variance pre-activation has std about 0.63
        assert abs(by[("linear", "lsuv", layer)]["std"] ** 2 - 1) < 0.05
        assert 0.55 < by[("tanh", "lsuv", layer)]["std"] < 0.7
    # where Xavier lets ReLU activations decay layer by layer, LSUV holds them
    relu = lambda i, l: by[("relu", i, l)]["std"]  # noqa: E731
    assert relu("xavier_normal", 6) < 0.3 * relu("xavier_normal", 1)
    assert 0.8 < relu("lsuv", 6) / relu("lsuv", 1) < 1.25
    again = D.init_report(depth=6, width=64, n=256, activations=("tanh", "relu", "linear"),
                          inits=("xavier_normal", "lsuv"), rng=np.random.default_rng(4))
    assert [r["std"] for r in again] == [r["std"] for r in recs]


# -- update ratios ---------------------------------------------------------------------------
def test_update_ratios_from_a_trainer():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 5)).astype(np.float32)
    y = rng.integers(0, 3, 64)
    model = fastnn.Sequential(fastnn.Linear(5, 8, rng=rng), fastnn.ReLU(), fastnn.Linear(8, 3, rng=rng))
    tr = fastnn.Trainer(model, fastnn.SoftmaxCrossEntropy(), fastnn.optim.SGD(model.parameters(), lr=1e-3),
                        track_update_ratio=True)
    h = tr.fit(fastnn.DataLoader(x, y, batch_size=16, rng=rng), epochs=2, progress=False)
    recs = D.update_ratios(h)
    assert [r["name"] for r in recs] == ["0.weight", "0.bias", "2.weight", "2.bias"]
    for r in recs:
        assert len(r["per_epoch"]) == 2 and r["ratio"] > 0
        assert r["status"] in ("low", "ok", "high")
    text = D.format_update_ratios(recs)
    assert "0.weight" in text
    fixed = D.update_ratios({"w": [1e-5], "v": [1e-3], "u": [0.1]})
    assert [r["status"] for r in fixed] == ["low", "ok", "high"]
    with pytest.raises(ValueError, match="track_update_ratio"):
        D.update_ratios({})


# -- command line ----------------------------------------------------------------------------
def test_cli_diagnose(tmp_path, capsys):
    from fastnn.cli import main
    out = tmp_path / "diag"
    assert main(["diagnose", "--depth", "3", "--width", "60", "--n", "80", "--input", "normal",
                 "--inits", "small_random,he_normal", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "3 layers of 60 units" in text and "he_normal" in text and "L3" in text
    assert sorted(p.name for p in out.iterdir()) == [
        "init_grid.png", "init_relu_he_normal.png", "init_relu_small_random.png",
        "init_tanh_he_normal.png", "init_tanh_small_random.png"]
    with pytest.raises(SystemExit, match="activations"):
        main(["diagnose", "--activations", "swish", "--no-plots"])


def test_init_report_and_stats_identical_at_1_and_2_threads(threads):
    kw = dict(depth=4, width=130, n=97, rng=5)
    model = fastnn.Sequential(fastnn.Linear(130, 70, rng=np.random.default_rng(0)), fastnn.ReLU())
    x = np.random.default_rng(1).standard_normal((97, 130)).astype(np.float32)
    results = []
    for n in (1, 2):
        threads(n)
        results.append(([r["std"] for r in D.init_report(**kw)],
                        [(r["mean"], r["std"], r["dead_fraction"]) for r in D.activation_stats(model, x)]))
    assert results[0] == results[1]
