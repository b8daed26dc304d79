"""Layers: Modules over the functional kernels. Every name is re-exported as fastnn.X."""
from ..module import Module, Parameter, Residual, Sequential
from .activations import ELU, LeakyReLU, Maxout, PReLU, ReLU, Sigmoid, Tanh, Identity
from .linear import Linear
from .reshape import Flatten
from .conv import *  # noqa: F401,F403
from .pool import *  # noqa: F401,F403
from .norm import *  # noqa: F401,F403
from .dropout import *  # noqa: F401,F403

# Spelled out, not built with `+ list(...)`: type checkers read only a literal __all__,
# and a name left out of it is invisible to them (fastnn.Conv2d, `from fastnn.layers import *`).
# tests/test_typing.py checks it against the submodules' lists.
__all__ = [
    "Module", "Parameter", "Sequential", "Residual", "Linear", "Flatten", "Identity",
    "Sigmoid", "Tanh", "ReLU", "LeakyReLU", "PReLU", "ELU", "Maxout",
    "Conv2d",                                                 # .conv
    "MaxPool2d", "AvgPool2d", "GlobalAvgPool2d",              # .pool
    "BatchNorm1d", "BatchNorm2d", "update_bn",                # .norm
    "Dropout", "Dropout2d",                                   # .dropout
]
