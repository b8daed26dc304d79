"""Matplotlib access for the plotting helpers (the `plot` extra), headless-safe."""
from typing import Any


def pyplot() -> Any:
    """matplotlib.pyplot with the Agg backend when no display is available."""
    try:
        import matplotlib
    except ImportError:
        raise ImportError("plotting needs matplotlib: pip install 'fastnn[plot]'") from None
    import os
    if not os.environ.get("DISPLAY") and matplotlib.get_backend().lower() not in ("agg", "pdf", "svg"):
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt
