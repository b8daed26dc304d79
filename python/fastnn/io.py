"""Saving and loading checkpoints (filled in by the persistence work)."""
from typing import Any

__all__ = ["save", "load"]


def save(path: Any, model: Any, optimizer: Any = None, *, epoch: Any = None, **extra: Any) -> None:
    raise NotImplementedError("fastnn.save arrives with the persistence work")


def load(path: Any, model: Any = None, optimizer: Any = None, **extra: Any) -> dict:
    raise NotImplementedError("fastnn.load arrives with the persistence work")
