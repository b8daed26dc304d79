"""fastnn: CPU neural-network training with transparent layers and fast C++ kernels.

Public names live in submodules (layers, functional, losses, init, optim, schedules, data,
preprocess, augment, train, diagnostics, search); layers and the most used names are also
re-exported here.
"""
from __future__ import annotations

from typing import Any, Dict

from ._dispatch import _C, built_levels, cpu_levels
from ._random import seed, get_rng
from . import functional, init, layers, losses, optim, schedules, data, preprocess, augment
from . import train, diagnostics, io, search, models
from .layers import *  # noqa: F401,F403
from .losses import SoftmaxCrossEntropy, MSELoss, HingeLoss
from .data import DataLoader, load_mnist, load_digits, train_val_split
from .train import Trainer, History
from .io import save, load
from .schedules import *  # noqa: F401,F403

__version__ = "0.1.0"


def set_num_threads(n: int) -> None:
    """Number of OpenMP threads the kernels use (default: OMP_NUM_THREADS or all cores)."""
    from ._checks import positive_int
    _C.set_num_threads(positive_int(n, "n"))


def get_num_threads() -> int:
    """Number of OpenMP threads the kernels use."""
    return int(_C.get_num_threads())


def build_info() -> Dict[str, Any]:
    """The loaded kernel build: ISA level, Eigen version and SIMD set, compiler, OpenMP
    version, thread count, and the levels built and supported by this CPU."""
    info = dict(_C.build_info())
    info["built_levels"] = built_levels()
    info["cpu_levels"] = cpu_levels()
    info["module"] = _C.__name__
    return info


# Spelled out, not built with `+ list(...)`: type checkers read only a literal __all__,
# and a name left out of it is invisible to them (fastnn.Linear, `from fastnn import *`).
# tests/test_typing.py checks it against the submodules' lists.
__all__ = [
    "seed", "get_rng", "set_num_threads", "get_num_threads", "build_info",
    "functional", "init", "layers", "losses", "optim", "schedules", "data", "preprocess",
    "augment", "train", "diagnostics", "io", "search", "models",
    "SoftmaxCrossEntropy", "MSELoss", "HingeLoss", "DataLoader", "load_mnist", "load_digits",
    "train_val_split", "Trainer", "History", "save", "load",
    # .layers
    "Module", "Parameter", "Sequential", "Residual", "Linear", "Flatten", "Identity",
    "Sigmoid", "Tanh", "ReLU", "LeakyReLU", "PReLU", "ELU", "Maxout", "Conv2d", "MaxPool2d",
    "AvgPool2d", "GlobalAvgPool2d", "BatchNorm1d", "BatchNorm2d", "update_bn", "Dropout",
    "Dropout2d",
    # .schedules
    "Schedule", "Constant", "StepLR", "MultiStepLR", "LinearDecay", "InverseTime", "Clipped",
    "Lambda", "ExponentialLR", "CosineAnnealingLR", "CyclicLR", "OneCycleLR", "Warmup", "Ramp",
    "per_epoch", "lr_find", "LRFinderResult",
]
