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

# Recipes the command line uses when --optimizer/--lr are not given.
DEFAULT_OPTIMIZER: Dict[str, str] = {"mlp": "sgd"}
DEFAULT_LR: Dict[str, float] = {"mlp": 0.05}


def build(name: str, in_shape: Tuple[int, ...], num_classes: int,
          rng: Optional[np.random.Generator] = None) -> Module:
    """A named model for inputs of `in_shape` (C, H, W) and `num_classes` outputs."""
    if name not in MODELS:
        raise ValueError(f"model: expected one of {sorted(MODELS)}, got {name!r}")
    return MODELS[name](in_shape, num_classes, rng=rng)


def _conv_block(cin: int, cout: int, batch_norm: bool, init: Any, rng: Any) -> list:
    from . import layers as L
    if batch_norm:
        return [L.Conv2d(cin, cout, 3, padding=1, bias=False, init=init, rng=rng), L.BatchNorm2d(cout), L.ReLU()]
    return [L.Conv2d(cin, cout, 3, padding=1, init=init, rng=rng), L.ReLU()]


def cnn(in_shape: Tuple[int, ...], num_classes: int, batch_norm: bool = False, dropout: float = 0.3,
        init: Any = "he_normal", rng: Optional[np.random.Generator] = None) -> Sequential:
    """Two blocks of [Conv 3x3 pad 1 (- BatchNorm2d) - ReLU] x2 - MaxPool(2), 32 then 64
    channels, then Dropout and Linear. (C, H, W) -> num_classes logits; He init."""
    from . import layers as L
    c, h, w = in_shape
    mods: list = []
    for cin, cout in ((c, 32), (32, 64)):
        mods += _conv_block(cin, cout, batch_norm, init, rng)
        mods += _conv_block(cout, cout, batch_norm, init, rng)
        mods.append(L.MaxPool2d(2))
        h, w = h // 2, w // 2
    mods += [L.Flatten(), L.Dropout(dropout, rng=rng), L.Linear(64 * h * w, num_classes, init=init, rng=rng)]
    return Sequential(*mods)


def bncnn(in_shape: Tuple[int, ...], num_classes: int, init: Any = "he_normal",
          rng: Optional[np.random.Generator] = None) -> Sequential:
    """The batch-norm CNN: cnn(..., batch_norm=True) (conv layers without bias), Dropout(0.3)."""
    return cnn(in_shape, num_classes, batch_norm=True, init=init, rng=rng)


MODELS.update({"cnn": cnn, "bncnn": bncnn})
DEFAULT_OPTIMIZER.update({"lenet": "adam", "cnn": "adam", "bncnn": "adam"})
DEFAULT_LR.update({"lenet": 1e-3, "cnn": 3e-3, "bncnn": 3e-3})
DEFAULT_SCHEDULE: Dict[str, str] = {"cnn": "cosine", "bncnn": "cosine"}
