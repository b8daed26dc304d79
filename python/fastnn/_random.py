"""fastnn's global random generator: `fastnn.seed(n)` resets it; `rng=None` arguments use it."""
from __future__ import annotations

import numpy as np

_global = np.random.default_rng()


def seed(n: int) -> None:
    """Seed fastnn's global generator (used wherever `rng=None`): same seed, same run."""
    global _global
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"n: expected a non-negative int seed, got {n!r}")
    _global = np.random.default_rng(int(n))


def get_rng() -> np.random.Generator:
    """The global generator (the one `fastnn.seed` resets)."""
    return _global
