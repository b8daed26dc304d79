"""Stateless, validated kernels (what the layers call and the benchmarks time).

Every function takes and returns float32 NumPy arrays; inputs are validated and converted
once (see fastnn._checks) and the arithmetic runs in C++ (fastnn._C) with the GIL released.
"""
from .core import *  # noqa: F401,F403
from .core import __all__ as _core_all
from .conv import *  # noqa: F401,F403
from .conv import __all__ as _conv_all
from .norm import *  # noqa: F401,F403
from .norm import __all__ as _norm_all

__all__ = list(_core_all) + list(_conv_all) + list(_norm_all)
