"""Type stub for the compiled CPU-feature probe (cpp/cpu_features.c)."""
from typing import List

def supported_levels() -> List[str]:
    """x86-64 ISA level names this CPU runs (e.g. ['v2', 'v3']); empty on other architectures."""
    ...
