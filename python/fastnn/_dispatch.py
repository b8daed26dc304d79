"""Picks the fastest build of the C++ kernels this CPU can run and installs it as fastnn._C.

Builds exist per x86-64 ISA level (`_C_v2`, `_C_v3`, `_C_v4`; `_C_generic` elsewhere).
`FASTNN_ISA=v3` forces one level (an ImportError if it is not built or the CPU lacks it).
"""
from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from types import ModuleType
from typing import List

_ORDER = ("native", "v4", "v3", "v2", "generic")


def built_levels() -> List[str]:
    """ISA levels whose extension module is installed."""
    return [lvl for lvl in _ORDER if importlib.util.find_spec(f"fastnn._C_{lvl}") is not None]


def cpu_levels() -> List[str]:
    """x86-64 levels this CPU supports (empty on other architectures)."""
    from . import _cpu
    return list(_cpu.supported_levels())


def load() -> ModuleType:
    built = built_levels()
    if not built:
        raise ImportError("fastnn: no compiled kernel module (_C_*) found; reinstall with `pip install .`")
    cpu = cpu_levels()

    def runnable(lvl: str) -> bool:
        return lvl in ("native", "generic") or lvl in cpu

    forced = os.environ.get("FASTNN_ISA", "").strip()
    if forced:
        if forced not in built:
            raise ImportError(f"FASTNN_ISA={forced!r}: expected one of the built levels {built}")
        if not runnable(forced):
            raise ImportError(f"FASTNN_ISA={forced!r}: this CPU supports only {cpu}")
        level = forced
    else:
        candidates = [lvl for lvl in built if runnable(lvl)]
        if not candidates:
            raise ImportError(f"fastnn: built levels {built} need CPU features this CPU lacks (it has {cpu})")
        level = candidates[0]
    mod = importlib.import_module(f"fastnn._C_{level}")
    sys.modules["fastnn._C"] = mod
    return mod


_C = load()


def _single_thread_in_child() -> None:
    # GNU libgomp's thread pool does not survive fork: a child entering a parallel region
    # would hang. One thread in the child never touches the pool.
    _C.set_num_threads(1)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_single_thread_in_child)
