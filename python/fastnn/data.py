"""Datasets and minibatches: DataLoader, MNIST (IDX files), scikit-learn's digits, splits."""
from __future__ import annotations

import gzip
import os
import struct
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, Tuple, Union

import numpy as np

from ._checks import as_float32, positive_int, rng_or_default

__all__ = ["DataLoader", "load_mnist", "load_digits", "train_val_split", "read_idx", "find_mnist"]

PathLike = Union[str, os.PathLike]


class DataLoader:
    """Minibatches `(xb, yb)` over arrays x (N, ...) and y (N, ...).

    shuffle draws a new permutation from `rng` every epoch; `transform` is applied to each
    batch: either `(xb, rng) -> xb` or, for label-mixing transforms, `(xb, yb, rng) -> (xb, yb)`
    (set `transform.mixes_labels = True`). len() is the number of batches per epoch.
    """

    def __init__(self, x: np.ndarray, y: Optional[np.ndarray] = None, batch_size: int = 32,
                 shuffle: bool = True, drop_last: bool = False,
                 transform: Optional[Callable[..., Any]] = None,
                 rng: Optional[np.random.Generator] = None) -> None:
        self.x = as_float32(x, "x", min_ndim=1)
        if y is not None:
            y = np.asarray(y)
            if y.shape[:1] != self.x.shape[:1]:
                raise ValueError(f"y: expected {self.x.shape[0]} targets (one per sample of x), got shape {y.shape}")
        self.y = y
        self.batch_size = positive_int(batch_size, "batch_size")
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        if transform is not None and not callable(transform):
            raise TypeError(f"transform: expected a callable, got {type(transform).__name__}")
        self.transform = transform
        self.rng = rng_or_default(rng)

    def __len__(self) -> int:
        n = self.x.shape[0]
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    @property
    def num_samples(self) -> int:
        return int(self.x.shape[0])

    def __iter__(self) -> Iterator[Tuple[np.ndarray, Any]]:
        n = self.x.shape[0]
        order = self.rng.permutation(n) if self.shuffle else None
        for b in range(len(self)):
            lo, hi = b * self.batch_size, min(n, (b + 1) * self.batch_size)
            if order is None:
                xb = self.x[lo:hi]
                yb = None if self.y is None else self.y[lo:hi]
            else:
                idx = order[lo:hi]
                xb = self.x[idx]
                yb = None if self.y is None else self.y[idx]
            if self.transform is not None:
                if getattr(self.transform, "mixes_labels", False):
                    xb, yb = self.transform(xb, yb, self.rng)
                else:
                    xb = self.transform(xb, self.rng)
            yield xb, yb


def read_idx(path: PathLike) -> np.ndarray:
    """Read one IDX file (gzip-compressed or raw) into an array of its stored dtype/shape."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as e:
        raise ValueError(f"path: could not read IDX file {str(path)!r}: {e}") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise ValueError(f"path: {str(path)!r} is not an IDX file (bad magic number)")
    dtypes = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
    code, ndim = raw[2], raw[3]
    if code not in dtypes:
        raise ValueError(f"path: {str(path)!r} has an unknown IDX data type 0x{code:02x}")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"path: {str(path)!r} is truncated (incomplete header)")
    shape = struct.unpack(">" + "I" * ndim, raw[4:header])
    dt = np.dtype(dtypes[code])
    need = int(np.prod(shape)) * dt.itemsize
    if len(raw) - header < need:
        raise ValueError(f"path: {str(path)!r} is truncated: expected {need} data bytes, found {len(raw) - header}")
    return np.frombuffer(raw, dt, count=int(np.prod(shape)), offset=header).reshape(shape)


def _find(folder: Path, stem: str) -> Path:
    for name in (stem, stem + ".gz", stem.replace("-idx", ".idx"), stem.replace("-idx", ".idx") + ".gz"):
        p = folder / name
        if p.exists():
            return p
    raise FileNotFoundError(f"path: no {stem}[.gz] in {str(folder)!r}")


def load_mnist(path: PathLike, split: str = "train") -> Tuple[np.ndarray, np.ndarray]:
    """MNIST from a folder of IDX files (`train-*` or, for split="test", `t10k-*`; .gz or raw).

    Returns x float32 (N, 1, 28, 28) scaled to [0, 1] and y int64 (N,).
    """
    folder = Path(path)
    if not folder.is_dir():
        raise FileNotFoundError(f"path: {str(folder)!r} is not a folder holding MNIST IDX files")
    if split not in ("train", "test"):
        raise ValueError(f"split: expected 'train' or 'test', got {split!r}")
    prefix = "train" if split == "train" else "t10k"
    images = read_idx(_find(folder, f"{prefix}-images-idx3-ubyte"))
    labels = read_idx(_find(folder, f"{prefix}-labels-idx1-ubyte"))
    if images.ndim != 3 or labels.ndim != 1 or images.shape[0] != labels.shape[0]:
        raise ValueError(f"path: MNIST files disagree: images {images.shape}, labels {labels.shape}")
    x = (images.astype(np.float32) / np.float32(255.0))[:, None, :, :]
    return np.ascontiguousarray(x), labels.astype(np.int64)


def find_mnist(path: Optional[PathLike] = None) -> Optional[Path]:
    """The folder holding MNIST's IDX files (`t10k-images-idx3-ubyte[.gz]`): `path` if given,
    else $FASTNN_MNIST, ./shared/data/mnist, ../shared/data/mnist (beside a checkout), or None."""
    cands = [Path(path)] if path is not None else []
    env = os.environ.get("FASTNN_MNIST")
    cands += ([Path(env)] if env else []) + [Path("shared/data/mnist"), Path("../shared/data/mnist"),
                                              Path(__file__).resolve().parents[3] / "shared" / "data" / "mnist"]
    for c in cands:
        if (c / "t10k-images-idx3-ubyte.gz").exists() or (c / "t10k-images-idx3-ubyte").exists():
            return c
    return None


def load_digits() -> Tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 8x8 digits (1797 images) as x float32 (N, 1, 8, 8) in [0, 1], y int64.

    Needs scikit-learn (`pip install "fastnn[examples]"`); the data ships with it.
    """
    try:
        from sklearn.datasets import load_digits as _sk_digits
    except ImportError:
        raise ImportError("load_digits needs scikit-learn: pip install 'fastnn[examples]'") from None
    d = _sk_digits()
    x = (d.images.astype(np.float32) / np.float32(16.0))[:, None, :, :]
    return np.ascontiguousarray(x), d.target.astype(np.int64)


def train_val_split(x: np.ndarray, y: np.ndarray, val_fraction: float = 0.2,
                    rng: Optional[np.random.Generator] = None
                    ) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Random split -> (x_train, y_train, x_val, y_val); val_fraction in (0, 1)."""
    x = np.asarray(x)
    y = np.asarray(y)
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"y: expected {x.shape[0]} targets (one per sample of x), got {y.shape[0]}")
    if not (0.0 < float(val_fraction) < 1.0):
        raise ValueError(f"val_fraction: expected a value in (0, 1), got {val_fraction}")
    n = x.shape[0]
    n_val = int(round(n * float(val_fraction)))
    if n_val < 1 or n_val >= n:
        raise ValueError(f"val_fraction: {val_fraction} of {n} samples leaves an empty split")
    order = rng_or_default(rng).permutation(n)
    tr, va = order[n_val:], order[:n_val]
    return x[tr], y[tr], x[va], y[va]
