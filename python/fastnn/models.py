"""Named models used by the command line, the tests and the benchmarks."""
from __future__ import annotations

from typing import Any, Callable, Dict, Optional, Tuple

import numpy as np

from . import layers as L
from .module import Module, Sequential

__all__ = ["mlp", "lenet", "build", "MODELS"]


def mlp(in_shape: Tuple[int, ...], num_classes: int, hidden: Tuple[int, ...] = (256,),
        init: Any = "he_normal", rng: Optional[np.random.Generator] = None) -> Sequential:
    """Flatten - [Linear - ReLU] x len(hidden) - Linear; He init by default."""
    d = int(np.prod(in_shape))
    mods: list = [L.Flatten()]
    for h in hidden:
        mods += [L.Linear(d, h, init=init, rng=rng), L.ReLU()]
        d = h
    mods.append(L.Linear(d, num_classes, init=init, rng=rng))
    return Sequential(*mods)


def lenet(in_shape: Tuple[int, ...], num_classes: int, init: Any = "he_normal",
          rng: Optional[np.random.Generator] = None) -> Sequential:
    """Conv(C→16, 5x5, pad 2)-ReLU-MaxPool(2)-Conv(16→32, 5x5, pad 2)-ReLU-MaxPool(2)-
    Linear(32·(H/4)·(W/4)→128)-ReLU-Linear(128→num_classes); in_shape (C, H, W). He init by default."""
    if len(in_shape) != 3:
        raise ValueError(f"in_shape: lenet expects images (C, H, W), got {tuple(in_shape)}")
    c, h, w = (int(v) for v in in_shape)
    if h < 4 or w < 4:
        raise ValueError(f"in_shape: lenet needs images of at least 4x4, got {h}x{w}")
    flat = 32 * (h // 2 // 2) * (w // 2 // 2)
    return Sequential(
        L.Conv2d(c, 16, 5, padding=2, init=init, rng=rng), L.ReLU(), L.MaxPool2d(2),
        L.Conv2d(16, 32, 5, padding=2, init=init, rng=rng), L.ReLU(), L.MaxPool2d(2),
        L.Flatten(), L.Linear(flat, 128, init=init, rng=rng), L.ReLU(),
        L.Linear(128, num_classes, init=init, rng=rng))


MODELS: Dict[str, Callable[..., Module]] = {"mlp": mlp, "lenet": lenet}


def build(name: str, in_shape: Tuple[int, ...], num_classes: int,
          rng: Optional[np.random.Generator] = None) -> Module:
    """A named model for inputs of `in_shape` (C, H, W) and `num_classes` outputs."""
    if name not in MODELS:
        raise ValueError(f"model: expected one of {sorted(MODELS)}, got {name!r}")
    return MODELS[name](in_shape, num_classes, rng=rng)
