"""Checkpoints and resume: an interrupted run continued with fit(resume=path) ends with the
same weights as the uninterrupted run (fixed seed and thread count)."""
import numpy as np
import pytest

import fastnn
from fastnn import layers as L
from fastnn.data import DataLoader
from fastnn.losses import SoftmaxCrossEntropy
from fastnn.optim import SGD
from fastnn.train import Checkpoint, Trainer


def _setup(seed=3):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((96, 6)).astype(np.float32)
    y = (x[:, 0] * x[:, 1] > 0).astype(np.int64)
    mods = [L.Linear(6, 32, rng=rng), L.ReLU()]
    if hasattr(L, "Dropout"):
        mods.append(L.Dropout(0.2, rng=np.random.default_rng(seed + 1)))
    mods.append(L.Linear(32, 2, rng=rng))
    model = fastnn.Sequential(*mods)
    opt = SGD(model.parameters(), lr=lambda t: 0.1 / (1 + 0.01 * t), momentum=0.9)
    loader = DataLoader(x, y, batch_size=16, rng=np.random.default_rng(seed + 2))
    return model, opt, loader, (x, y)


def test_resume_gives_the_same_weights_as_an_uninterrupted_run(tmp_path):
    model, opt, loader, val = _setup()
    full = Trainer(model, SoftmaxCrossEntropy(), opt)
    full.fit(loader, val_data=val, epochs=4, progress=False)
    expected = model.state_dict()

    model, opt, loader, val = _setup()
    ckpt = tmp_path / "run.npz"
    first = Trainer(model, SoftmaxCrossEntropy(), opt, callbacks=[Checkpoint(str(ckpt))])
    first.fit(loader, val_data=val, epochs=2, progress=False)
    assert ckpt.exists()

    model, opt, loader, val = _setup()  # a fresh process would rebuild everything like this
    second = Trainer(model, SoftmaxCrossEntropy(), opt)
    hist = second.fit(loader, val_data=val, epochs=4, progress=False, resume=str(ckpt))
    assert hist.epochs == [1.0, 2.0, 3.0, 4.0] and len(hist.val_loss) == 4
    got = model.state_dict()
    for k in expected:
        np.testing.assert_array_equal(got[k], expected[k], err_msg=k)
    assert hist.train_loss == full.history.train_loss


def test_checkpoint_every_and_epoch_pattern(tmp_path):
    model, opt, loader, val = _setup()
    t = Trainer(model, SoftmaxCrossEntropy(), opt, callbacks=[Checkpoint(str(tmp_path / "e{epoch}.npz"), every=2)])
    t.fit(loader, epochs=4, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e2.npz", "e4.npz"]
    rest = fastnn.load(tmp_path / "e2.npz")
    assert int(rest["epoch"]) == 2


def test_resume_from_a_broken_file_is_a_clear_error(tmp_path):
    bad = tmp_path / "broken.npz"
    bad.write_bytes(b"not a checkpoint")
    model, opt, loader, _ = _setup()
    with pytest.raises((ValueError, OSError)):
        Trainer(model, SoftmaxCrossEntropy(), opt).fit(loader, epochs=1, progress=False, resume=str(bad))
