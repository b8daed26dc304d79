"""Stateless, validated kernels (what the layers call and the benchmarks time).

Every function takes and returns float32 NumPy arrays; inputs are validated and converted
once (see fastnn._checks) and the arithmetic runs in C++ (fastnn._C) with the GIL released.
"""
from .core import *  # noqa: F401,F403
from .conv import *  # noqa: F401,F403
from .norm import *  # noqa: F401,F403

# Spelled out, not built with `+ list(...)`: type checkers read only a literal __all__,
# and a name left out of it is invisible to them (`from fastnn.functional import conv2d`).
# tests/test_typing.py checks it against the submodules' lists.
__all__ = [
    # .core
    "linear", "linear_backward", "relu", "relu_backward", "leaky_relu", "leaky_relu_backward",
    "elu", "elu_backward", "sigmoid", "sigmoid_backward", "tanh", "tanh_backward", "prelu",
    "prelu_backward",
    # .conv
    "conv2d", "conv2d_backward", "conv2d_output_size", "max_pool2d", "max_pool2d_backward",
    "avg_pool2d", "avg_pool2d_backward", "global_avg_pool2d", "global_avg_pool2d_backward",
    # .norm
    "batch_norm", "batch_norm_backward", "dropout", "dropout_backward", "dropout2d",
    "dropout2d_backward",
]
