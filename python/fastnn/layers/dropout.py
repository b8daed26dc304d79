"""Dropout layers: inverted dropout of single values (Dropout) or of whole feature maps
(Dropout2d), the masks from the layer's random generator."""
from __future__ import annotations

from typing import Any, Callable, Optional, Tuple

import numpy as np

from .. import functional as F
from .._checks import as_float32, number, rng_or_default
from ..module import Module

__all__ = ["Dropout", "Dropout2d"]


class Dropout(Module):
    """Inverted dropout, any shape: in training y = x * mask with mask = 0 with probability p,
    else 1/(1-p), so E[y] = x; identity in eval. backward reuses the forward's mask.

    rng: a numpy Generator or an int seed (one Generator made here) for the masks; None uses
    fastnn's global generator (fastnn.seed) at each forward. Each forward draws one 64-bit seed
    from it, from which C++ draws the whole mask (functional.dropout): the same generator state
    gives the same mask at any thread count.
    Convention: p is the drop probability (PyTorch), not the keep probability.
    """

    def __init__(self, p: float = 0.5, rng: Any = None) -> None:
        super().__init__()
        self.p = number(p, "p", lo=0.0, hi=1.0, hi_open=True)
        self.rng: Optional[np.random.Generator] = None if rng is None else rng_or_default(rng)
        self._mask: Optional[np.ndarray] = None
        self._identity = False

    # the functional pair: (x, p, training, rng) -> (y, mask) and (dy, mask) -> dx
    _drop: Callable[..., Tuple[np.ndarray, np.ndarray]] = staticmethod(F.dropout)
    _undrop: Callable[[np.ndarray, np.ndarray], np.ndarray] = staticmethod(F.dropout_backward)

    def forward(self, x: np.ndarray) -> np.ndarray:
        if not self.training or self.p == 0.0:
            self._mask, self._identity = None, True
            return as_float32(x, "x")
        y, self._mask = self._drop(x, self.p, training=True, rng=rng_or_default(self.rng))
        self._identity = False
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray:
        if self._identity:
            return dy
        if self._mask is None:
            raise RuntimeError(f"{type(self).__name__}.backward called before forward")
        return self._undrop(dy, self._mask)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class Dropout2d(Dropout):
    """Channel (spatial) dropout, as torch.nn.Dropout2d: on x (N, C, H, W), each feature map
    x[n, c] is zeroed whole with probability p in training, the kept maps scaled by 1/(1-p);
    identity in eval. The mask (N, C, 1, 1) comes from the layer's rng as Dropout's does, and
    backward reuses it (functional.dropout2d). Meant for convolutional feature maps: their
    neighbouring pixels are strongly correlated, so dropping single values barely regularizes.
    """

    _drop = staticmethod(F.dropout2d)
    _undrop = staticmethod(F.dropout2d_backward)
