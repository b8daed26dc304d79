"""Named models used by the command line, the tests and the benchmarks."""
from __future__ import annotations

from typing import Any, Callable, Dict, Optional, Tuple

import numpy as np

from . import layers as L
from .module import Module, Sequential

__all__ = ["mlp", "build", "MODELS"]


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


MODELS: Dict[str, Callable[..., Module]] = {"mlp": mlp}

# Recipes the command line uses when --optimizer/--lr are not given.
DEFAULT_OPTIMIZER: Dict[str, str] = {"mlp": "sgd"}
DEFAULT_LR: Dict[str, float] = {"mlp": 0.05}


def build(name: str, in_shape: Tuple[int, ...], num_classes: int,
          rng: Optional[np.random.Generator] = None) -> Module:
    """A named model for inputs of `in_shape` (C, H, W) and `num_classes` outputs."""
    if name not in MODELS:
        raise ValueError(f"model: expected one of {sorted(MODELS)}, got {name!r}")
    return MODELS[name](in_shape, num_classes, rng=rng)
