"""Layers: Modules over the functional kernels. Every name is re-exported as fastnn.X."""
from ..module import Module, Parameter, Residual, Sequential
from .activations import ELU, LeakyReLU, Maxout, PReLU, ReLU, Sigmoid, Tanh, Identity
from .linear import Linear
from .reshape import Flatten
from .conv import *  # noqa: F401,F403
from .conv import __all__ as _conv_all
from .pool import *  # noqa: F401,F403
from .pool import __all__ as _pool_all
from .norm import *  # noqa: F401,F403
from .norm import __all__ as _norm_all
from .dropout import *  # noqa: F401,F403
from .dropout import __all__ as _dropout_all

__all__ = [
    "Module", "Parameter", "Sequential", "Residual", "Linear", "Flatten", "Identity",
    "Sigmoid", "Tanh", "ReLU", "LeakyReLU", "PReLU", "ELU", "Maxout",
] + list(_conv_all) + list(_pool_all) + list(_norm_all) + list(_dropout_all)
