"""Shape-only layers."""
from __future__ import annotations

from typing import Optional, Tuple

import numpy as np

from ..module import Module


class Flatten(Module):
    """(N, d1, d2, ...) -> (N, d1*d2*...). A view; backward restores the shape."""

    def __init__(self) -> None:
        super().__init__()
        self._shape: Optional[Tuple[int, ...]] = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x)
        if x.ndim < 1:
            raise ValueError(f"x: expected at least a 1-d batch, got shape {x.shape}")
        self._shape = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, dy: np.ndarray) -> np.ndarray:
        if self._shape is None:
            raise RuntimeError("Flatten.backward called before forward")
        return np.asarray(dy).reshape(self._shape)
