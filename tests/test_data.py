"""MNIST/IDX loading, digits, DataLoader batching and shuffling, train/val split."""
import gzip
import struct

import numpy as np
import pytest

import fastnn
from fastnn.data import DataLoader, read_idx, train_val_split


def test_load_mnist_real_test_set(mnist_dir):
    x, y = fastnn.load_mnist(mnist_dir, split="test")
    assert x.shape == (10000, 1, 28, 28) and x.dtype == np.float32
    assert y.shape == (10000,) and y.dtype == np.int64
    assert x.min() == 0.0 and x.max() == 1.0
    assert set(np.unique(y)) == set(range(10))
    assert y[:5].tolist() == [7, 2, 1, 0, 4]  # the well-known first test labels


def _write_idx(path, arr, code=0x08, compress=False):
    header = bytes([0, 0, code, arr.ndim]) + struct.pack(">" + "I" * arr.ndim, *arr.shape)
    data = header + arr.astype(">u1" if code == 0x08 else ">i4").tobytes()
    with (gzip.open if compress else open)(path, "wb") as f:
        f.write(data)


@pytest.mark.parametrize("compress", [False, True])
def test_idx_raw_and_gz_and_train_split(tmp_path, compress):
    imgs = np.arange(3 * 28 * 28, dtype=np.uint8).reshape(3, 28, 28)
    labels = np.array([3, 1, 4], np.uint8)
    sfx = ".gz" if compress else ""
    _write_idx(tmp_path / f"train-images-idx3-ubyte{sfx}", imgs, compress=compress)
    _write_idx(tmp_path / f"train-labels-idx1-ubyte{sfx}", labels, compress=compress)
    x, y = fastnn.load_mnist(tmp_path)
    assert x.shape == (3, 1, 28, 28) and y.tolist() == [3, 1, 4]
    np.testing.assert_allclose(x[0, 0], imgs[0] / 255.0, rtol=1e-6)


def test_idx_errors(tmp_path):
    (tmp_path / "bad").write_bytes(b"\x01\x02\x03\x04")
    with pytest.raises(ValueError, match="not an IDX file"):
        read_idx(tmp_path / "bad")
    arr = np.zeros((10, 4, 4), np.uint8)
    _write_idx(tmp_path / "t", arr)
    raw = (tmp_path / "t").read_bytes()
    (tmp_path / "t").write_bytes(raw[:-5])
    with pytest.raises(ValueError, match="truncated"):
        read_idx(tmp_path / "t")
    with pytest.raises(FileNotFoundError, match="path"):
        fastnn.load_mnist(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="no train-images"):
        fastnn.load_mnist(tmp_path)
    with pytest.raises(ValueError, match="split"):
        fastnn.load_mnist(tmp_path, split="validation")


def test_load_digits():
    pytest.importorskip("sklearn")
    x, y = fastnn.load_digits()
    assert x.shape == (1797, 1, 8, 8) and x.dtype == np.float32 and 0 <= x.min() and x.max() == 1.0
    assert y.dtype == np.int64 and y.max() == 9


def test_dataloader_batches_cover_every_sample_once(rng):
    x = np.arange(10, dtype=np.float32).reshape(10, 1)
    y = np.arange(10)
    dl = DataLoader(x, y, batch_size=4, shuffle=True, rng=rng)
    assert len(dl) == 3
    batches = list(dl)
    assert [len(b[0]) for b in batches] == [4, 4, 2]
    seen = np.concatenate([b[1] for b in batches])
    assert sorted(seen.tolist()) == list(range(10))
    for xb, yb in batches:
        np.testing.assert_array_equal(xb[:, 0], yb)
    assert len(DataLoader(x, y, batch_size=4, drop_last=True)) == 2
    ordered = np.concatenate([b[1] for b in DataLoader(x, y, batch_size=3, shuffle=False)])
    assert ordered.tolist() == list(range(10))
    a = [b[1].tolist() for b in DataLoader(x, y, 4, rng=np.random.default_rng(7))]
    b = [b[1].tolist() for b in DataLoader(x, y, 4, rng=np.random.default_rng(7))]
    assert a == b


def test_dataloader_transforms(rng):
    x = np.zeros((6, 1, 2, 2), np.float32)
    y = np.arange(6)
    dl = DataLoader(x, y, batch_size=3, transform=lambda xb, r: xb + 1)
    assert all((xb == 1).all() for xb, _ in dl)
    assert (x == 0).all()

    class Mix:
        mixes_labels = True

        def __call__(self, xb, yb, r):
            return xb, np.eye(6)[yb]
    assert all(yb.shape == (3, 6) for _, yb in DataLoader(x, y, batch_size=3, transform=Mix()))


def test_dataloader_and_split_errors(rng):
    with pytest.raises(ValueError, match="y: expected 3 targets"):
        DataLoader(np.zeros((3, 2)), np.zeros(4))
    with pytest.raises(ValueError, match="batch_size"):
        DataLoader(np.zeros((3, 2)), np.zeros(3), batch_size=0)
    with pytest.raises(TypeError, match="x: expected a floating-point array"):
        DataLoader(np.zeros((3, 2), np.int64), np.zeros(3))
    with pytest.raises(ValueError, match="val_fraction"):
        train_val_split(np.zeros((10, 2)), np.zeros(10), 1.5, rng)
    xt, yt, xv, yv = train_val_split(np.arange(20.0).reshape(10, 2), np.arange(10), 0.3, rng)
    assert len(xv) == 3 and len(xt) == 7
    assert sorted(np.concatenate([yt, yv]).tolist()) == list(range(10))
    np.testing.assert_array_equal(xt[:, 0] / 2, yt)
