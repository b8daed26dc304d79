"""fastnn.save / fastnn.load: round trips, resumed optimisation, bad files, atomic writes."""
from __future__ import annotations

import os

import numpy as np
import pytest

import fastnn
from fastnn import io
from fastnn.module import Module
from fastnn.losses import MSELoss


class RunningScale(Module):
    """A BatchNorm-like layer: a learnable scale plus buffers updated in training mode."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.weight = fastnn.Parameter(np.ones(n, np.float32))
        self.register_buffer("running_mean", np.zeros(n, np.float32))
        self.register_buffer("num_batches_tracked", np.array(0, np.int64))

    def forward(self, x):
        if self.training:
            # in place through local names: `self.buf += ...` would re-assign the attribute
            rm, nbt = self.running_mean, self.num_batches_tracked
            rm *= np.float32(0.9)
            rm += np.float32(0.1) * x.mean(axis=0)
            nbt += 1
        self._x = x
        return x * self.weight.data

    def backward(self, dy):
        self.weight.grad += (dy * self._x).sum(axis=0)
        return dy * self.weight.data


class Scaler:
    """A preprocessor-like extra: state_dict of arrays and small scalars/strings."""

    def __init__(self) -> None:
        self.mean = None
        self.eps = 0.0
        self.mode = ""

    def state_dict(self):
        return {"mean": self.mean, "eps": self.eps, "mode": self.mode, "n": np.int64(7)}

    def load_state_dict(self, d):
        if d["mean"] is not None and np.shape(d["mean"]) != (4,):
            raise ValueError("mean: expected shape (4,)")
        self.mean, self.eps, self.mode = d["mean"], d["eps"], d["mode"]


def make_model(seed: int, hidden: int = 6) -> Module:
    rng = np.random.default_rng(seed)
    return fastnn.Sequential(fastnn.Linear(4, hidden, rng=rng), RunningScale(hidden), fastnn.Tanh(),
                             fastnn.Linear(hidden, 3, rng=rng))


def train_steps(model, opt, steps, seed):
    rng = np.random.default_rng(seed)
    loss_fn = MSELoss()
    model.train()
    for _ in range(steps):
        x = rng.standard_normal((8, 4)).astype(np.float32)
        t = rng.standard_normal((8, 3)).astype(np.float32)
        opt.zero_grad()
        out = model(x)
        _, d = loss_fn(out, t)
        model.backward(d)
        opt.step()


def assert_same_state(a: Module, b: Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    for k in sa:
        assert sa[k].dtype == sb[k].dtype, k
        np.testing.assert_array_equal(sa[k], sb[k], err_msg=k)


def tmp_files(folder):
    return [f for f in os.listdir(folder) if f.endswith(".tmp")]


def test_round_trip_resumes_identically(tmp_path):
    a = make_model(0)
    opt_a = fastnn.optim.SGD(a.parameters(), lr=0.05, momentum=0.9, nesterov=True)
    train_steps(a, opt_a, 3, seed=1)
    path = tmp_path / "ckpt.npz"
    fastnn.save(path, a, opt_a, epoch=4, _history=np.array([0.5, 0.25]))

    b = make_model(99)
    opt_b = fastnn.optim.SGD(b.parameters(), lr=0.5, momentum=0.1, nesterov=False)
    rest = fastnn.load(path, b, opt_b)
    assert rest["epoch"] == 4
    np.testing.assert_array_equal(rest["_history"], [0.5, 0.25])
    assert_same_state(a, b)
    assert b[1].num_batches_tracked.dtype == np.int64 and int(b[1].num_batches_tracked) == 3
    assert opt_b.param_groups[0]["lr"] == 0.05 and opt_b.param_groups[0]["nesterov"] is True
    assert opt_b.step_count == 3
    # the momentum buffers came back: the next steps are bit-identical
    train_steps(a, opt_a, 4, seed=2)
    train_steps(b, opt_b, 4, seed=2)
    assert_same_state(a, b)


def test_without_objects_returns_state_dicts(tmp_path):
    a = make_model(0)
    opt = fastnn.optim.SGD(a.parameters(), lr=0.1, momentum=0.5)
    train_steps(a, opt, 1, seed=0)
    path = tmp_path / "c.npz"
    fastnn.save(path, a, opt, cfg={"lr": 0.1, "betas": (0.9, 0.999), "tags": ["x", None]}, note="hi")
    rest = fastnn.load(path)
    assert rest["epoch"] is None
    assert set(rest) == {"epoch", "model", "optimizer", "cfg", "note"}
    for k, v in a.state_dict().items():
        np.testing.assert_array_equal(rest["model"][k], v)
    st = rest["optimizer"]["state"]
    assert sorted(st) == [0, 1, 2, 3, 4] and st[0]["step"] == 1.0
    assert st[0]["momentum_buffer"].shape == (6, 4)
    assert rest["cfg"] == {"lr": 0.1, "betas": (0.9, 0.999), "tags": ["x", None]}
    assert rest["note"] == "hi"
    # the file is a plain npz, readable without pickle
    with np.load(path, allow_pickle=False) as z:
        assert "model/0.weight" in z.files and "__fastnn__" in z.files


def test_extra_state_dict_objects(tmp_path):
    s = Scaler()
    s.mean, s.eps, s.mode = np.arange(4, dtype=np.float32), 1e-8, "per_feature"
    path = tmp_path / "p.npz"
    fastnn.save(path, None, scaler=s, mean=np.ones((2, 3)))
    s2 = Scaler()
    rest = fastnn.load(path, scaler=s2)
    np.testing.assert_array_equal(s2.mean, s.mean)
    assert s2.eps == 1e-8 and s2.mode == "per_feature"
    assert "scaler" not in rest and rest["mean"].shape == (2, 3)
    # not given: its state dict comes back, numpy scalars keep their dtype
    st = fastnn.load(path)["scaler"]
    assert st["n"] == 7 and isinstance(st["n"], np.int64)
    with pytest.raises(KeyError, match="no extra named 'other'"):
        fastnn.load(path, other=Scaler())


def test_path_is_used_exactly_and_permissions_follow_umask(tmp_path):
    a = make_model(0)
    path = tmp_path / "no_suffix"
    fastnn.save(str(path), a)
    assert path.exists() and not (tmp_path / "no_suffix.npz").exists()
    assert tmp_files(tmp_path) == []
    umask = os.umask(0)
    os.umask(umask)
    assert os.stat(path).st_mode & 0o777 == 0o666 & ~umask
    b = make_model(1)
    fastnn.load(path, b)
    assert_same_state(a, b)


@pytest.mark.parametrize("cut", [0, 100, 0.5, -1, -30])
def test_truncated_file_raises_and_model_untouched(tmp_path, cut):
    a = make_model(0)
    path = tmp_path / "t.npz"
    fastnn.save(path, a, fastnn.optim.SGD(a.parameters(), lr=0.1), epoch=1)
    data = path.read_bytes()
    n = int(len(data) * cut) if isinstance(cut, float) else (cut if cut >= 0 else len(data) + cut)
    path.write_bytes(data[:n])
    b = make_model(1)
    before = b.state_dict()
    with pytest.raises(ValueError, match=str(path)):
        fastnn.load(path, b)
    for k, v in b.state_dict().items():
        np.testing.assert_array_equal(v, before[k])


def test_corrupted_member_raises(tmp_path):
    a = make_model(0)
    path = tmp_path / "x.npz"
    fastnn.save(path, a)
    data = bytearray(path.read_bytes())
    # flip bytes inside the first weight's data (after its .npy header): CRC check fails
    i = data.index(b"model/0.weight.npy") + 200
    data[i:i + 8] = b"\xff" * 8
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="unreadable|not a readable"):
        fastnn.load(path, make_model(1))


def test_foreign_files_raise(tmp_path):
    np.savez(tmp_path / "foreign.npz", weight=np.ones(3))
    with pytest.raises(ValueError, match="not a fastnn checkpoint"):
        fastnn.load(tmp_path / "foreign.npz", make_model(0))
    np.save(tmp_path / "single.npy", np.ones(3))
    with pytest.raises(ValueError, match="single .npy"):
        fastnn.load(tmp_path / "single.npy")
    (tmp_path / "text.npz").write_text("hello, not an archive\n")
    with pytest.raises(ValueError, match="not a readable"):
        fastnn.load(tmp_path / "text.npz")
    (tmp_path / "empty.npz").write_bytes(b"")
    with pytest.raises(ValueError, match="not a readable"):
        fastnn.load(tmp_path / "empty.npz")
    # a marker with the wrong format name or a future version
    np.savez(tmp_path / "other.npz", __fastnn__=np.array('{"format": "something-else", "version": 1}'))
    with pytest.raises(ValueError, match="format marker"):
        fastnn.load(tmp_path / "other.npz")
    np.savez(tmp_path / "future.npz", __fastnn__=np.array('{"format": "fastnn.checkpoint", "version": 99}'))
    with pytest.raises(ValueError, match="version 99"):
        fastnn.load(tmp_path / "future.npz")
    with pytest.raises(FileNotFoundError):
        fastnn.load(tmp_path / "missing.npz")


def test_mismatched_model_raises_and_leaves_model_untouched(tmp_path):
    a = make_model(0)
    opt_a = fastnn.optim.SGD(a.parameters(), lr=0.1, momentum=0.9)
    train_steps(a, opt_a, 1, seed=0)
    path = tmp_path / "m.npz"
    fastnn.save(path, a, opt_a)

    wrong_shape = make_model(1, hidden=7)
    before = wrong_shape.state_dict()
    with pytest.raises(ValueError, match="does not fit the given model"):
        fastnn.load(path, wrong_shape)
    for k, v in wrong_shape.state_dict().items():
        np.testing.assert_array_equal(v, before[k])

    extra_layer = make_model(1).append(fastnn.Linear(3, 2))
    with pytest.raises(KeyError, match="unexpected|missing"):
        fastnn.load(path, extra_layer)

    # the model fits but the optimizer does not: the model is rolled back
    b = make_model(2)
    before = b.state_dict()
    opt_b = fastnn.optim.SGD(b.parameters()[:2], lr=0.1)
    with pytest.raises(ValueError, match="optimizer"):
        fastnn.load(path, b, opt_b)
    for k, v in b.state_dict().items():
        np.testing.assert_array_equal(v, before[k])

    # an object without state / a file without an optimizer
    fastnn.save(tmp_path / "model_only.npz", a)
    with pytest.raises(ValueError, match="no optimizer state"):
        fastnn.load(tmp_path / "model_only.npz", make_model(0), fastnn.optim.SGD(a.parameters(), lr=0.1))


def test_unstorable_values_raise_before_writing(tmp_path):
    a = make_model(0)
    path = tmp_path / "u.npz"
    with pytest.raises(TypeError, match="extra/bad"):
        fastnn.save(path, a, bad=np.array([object(), 1], dtype=object))
    with pytest.raises(TypeError, match="epoch"):
        fastnn.save(path, a, epoch=1.5)
    with pytest.raises(TypeError, match="cannot store a value of type"):
        fastnn.save(path, a, fn=lambda t: t)
    assert not path.exists() and tmp_files(tmp_path) == []


def test_saving_to_a_folder_raises_before_writing(tmp_path):
    (tmp_path / "run").mkdir()
    with pytest.raises(IsADirectoryError, match="is a folder; expected a file name"):
        fastnn.save(tmp_path / "run", make_model(0))
    assert list((tmp_path / "run").iterdir()) == [] and tmp_files(tmp_path) == []


def test_crash_mid_write_keeps_previous_checkpoint(tmp_path, monkeypatch):
    a = make_model(0)
    path = tmp_path / "ckpt.npz"
    fastnn.save(path, a, epoch=1)
    good = path.read_bytes()

    real_savez = np.savez

    def crashing_savez(f, **arrays):
        f.write(b"PK\x03\x04 half an archive")
        f.flush()
        raise OSError("simulated: disk full")

    monkeypatch.setattr(np, "savez", crashing_savez)
    train_steps(a, fastnn.optim.SGD(a.parameters(), lr=0.1), 1, seed=0)
    with pytest.raises(OSError, match="disk full"):
        fastnn.save(path, a, epoch=2)
    assert path.read_bytes() == good
    assert tmp_files(tmp_path) == []

    # a crash inside the writer after part of the real archive was written
    def partial_writer(f, arrays):
        real_savez(f, **dict(list(arrays.items())[:2]))
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", real_savez)
    monkeypatch.setattr(io, "_write_npz", partial_writer)
    with pytest.raises(KeyboardInterrupt):
        fastnn.save(path, a, epoch=3)
    assert path.read_bytes() == good
    assert tmp_files(tmp_path) == []
    assert fastnn.load(path, make_model(5))["epoch"] == 1

    monkeypatch.undo()
    fastnn.save(path, a, epoch=4)
    assert fastnn.load(path)["epoch"] == 4
    with pytest.raises(FileNotFoundError, match="folder"):
        fastnn.save(tmp_path / "nope" / "x.npz", a)


def test_trainer_checkpoint_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((32, 4)).astype(np.float32)
    y = rng.standard_normal((32, 3)).astype(np.float32)
    a = make_model(0)
    tr = fastnn.Trainer(a, MSELoss(), fastnn.optim.SGD(a.parameters(), lr=0.05, momentum=0.9), metrics=())
    tr.fit(fastnn.DataLoader(x, y, batch_size=8, rng=np.random.default_rng(1)), epochs=2, progress=False)
    tr.save_checkpoint(str(tmp_path / "tr.npz"))
    b = make_model(3)
    tr_b = fastnn.Trainer(b, MSELoss(), fastnn.optim.SGD(b.parameters(), lr=0.05, momentum=0.9), metrics=())
    rest = tr_b.load_checkpoint(str(tmp_path / "tr.npz"))
    assert tr_b.epoch == 2
    assert tr_b.history.train_loss == tr.history.train_loss
    assert_same_state(a, b)


@pytest.mark.parametrize("bitgen", [np.random.PCG64, np.random.MT19937, np.random.Philox])
def test_random_generator_state_round_trips(tmp_path, bitgen):
    rng = np.random.Generator(bitgen(42))
    rng.standard_normal(7)                 # move it away from the seed state
    path = tmp_path / "r.npz"
    fastnn.save(path, None, epoch=2, rng=rng)
    expected = rng.permutation(50)
    # restored into a given Generator of the same kind
    other = np.random.Generator(bitgen(0))
    fastnn.load(path, rng=other)
    np.testing.assert_array_equal(other.permutation(50), expected)
    # or returned as a new Generator
    fresh = fastnn.load(path)["rng"]
    assert isinstance(fresh, np.random.Generator)
    np.testing.assert_array_equal(fresh.permutation(50), expected)
    wrong = np.random.Generator(np.random.SFC64(0))
    with pytest.raises(ValueError, match="random generator"):
        fastnn.load(path, rng=wrong)


def test_interrupted_run_resumes_to_the_same_weights(tmp_path):
    """Model + optimizer + the loader's shuffling Generator saved after epoch 2 of 4: the
    resumed run ends bit-identical to the uninterrupted one."""
    rng = np.random.default_rng(7)
    x = rng.standard_normal((40, 4)).astype(np.float32)
    y = rng.standard_normal((40, 3)).astype(np.float32)
    loss_fn = MSELoss()

    def run(model, opt, loader, epochs):
        for _ in range(epochs):
            for xb, yb in loader:
                opt.zero_grad()
                _, d = loss_fn(model(xb), yb)
                model.backward(d)
                opt.step()

    def fresh(seed):
        m = make_model(seed)
        return m, fastnn.optim.SGD(m.parameters(), lr=0.05, momentum=0.9), \
            fastnn.DataLoader(x, y, batch_size=8, rng=np.random.default_rng(seed + 100))

    a, opt_a, loader_a = fresh(0)
    run(a, opt_a, loader_a, 4)

    b, opt_b, loader_b = fresh(0)
    run(b, opt_b, loader_b, 2)
    fastnn.save(tmp_path / "mid.npz", b, opt_b, epoch=2, loader_rng=loader_b.rng)
    c, opt_c, loader_c = fresh(1)                  # a new process: other weights, other seed
    assert fastnn.load(tmp_path / "mid.npz", c, opt_c, loader_rng=loader_c.rng)["epoch"] == 2
    run(c, opt_c, loader_c, 2)
    assert_same_state(a, c)


def test_malformed_manifest_raises(tmp_path):
    bad = '{"format": "fastnn.checkpoint", "version": 1, "model": null, "optimizer": null, "extra": [1, 2]}'
    np.savez(tmp_path / "bad.npz", __fastnn__=np.array(bad))
    with pytest.raises(ValueError, match="malformed"):
        fastnn.load(tmp_path / "bad.npz")
    ref = '{"format": "fastnn.checkpoint", "version": 1, "model": {"__dict__": [["w", {"__array__": "model/w"}]]}}'
    np.savez(tmp_path / "ref.npz", __fastnn__=np.array(ref))
    with pytest.raises(ValueError, match="incomplete.*model/w"):
        fastnn.load(tmp_path / "ref.npz")
