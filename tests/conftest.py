"""Shared fixtures: the MNIST folder, thread-count control, deterministic seeds."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

import fastnn


def _mnist_candidates():
    env = os.environ.get("FASTNN_MNIST")
    if env:
        yield Path(env)
    root = Path(__file__).resolve().parents[1]
    yield root.parent / "shared" / "data" / "mnist"
    yield Path("/work/shared/data/mnist")


def find_mnist():
    for p in _mnist_candidates():
        if (p / "t10k-images-idx3-ubyte.gz").exists() or (p / "t10k-images-idx3-ubyte").exists():
            return p
    return None


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    p = find_mnist()
    if p is None:
        pytest.skip("MNIST not found (../shared/data/mnist or $FASTNN_MNIST)")
    return p


@pytest.fixture(scope="session")
def mnist_split(mnist_dir):
    """(x_train, y_train, x_val, y_val): first 8000 / last 2000 of the MNIST test set."""
    x, y = fastnn.load_mnist(mnist_dir, split="test")
    return x[:8000], y[:8000], x[8000:], y[8000:]


@pytest.fixture
def threads():
    """Call threads(n) to set the thread count; restored after the test."""
    before = fastnn.get_num_threads()
    yield fastnn.set_num_threads
    fastnn.set_num_threads(before)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
