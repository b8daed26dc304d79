"""Batch-normalization layers: BatchNorm1d (N, C) / (N, C, L) and BatchNorm2d (N, C, H, W).

Bookkeeping over fastnn.functional.batch_norm: parameters `weight` (gamma) and `bias` (beta),
buffers `running_mean`, `running_var`, `num_batches_tracked`, with PyTorch's state-dict keys.
"""
from __future__ import annotations

from typing import Any, Iterable, Optional, Tuple

import numpy as np

from .. import functional as F
from .. import init as I
from .._checks import as_float32, number, positive_int
from ..module import Module, Parameter

__all__ = ["BatchNorm1d", "BatchNorm2d", "update_bn"]


class _BatchNorm(Module):
    _ndims: Tuple[int, ...] = ()
    _layout = ""
    # None with affine=False / track_running_stats=False (declared for type checkers).
    weight: Optional[Parameter]
    bias: Optional[Parameter]
    running_mean: Optional[np.ndarray]
    running_var: Optional[np.ndarray]
    num_batches_tracked: Optional[np.ndarray]

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: Optional[float] = 0.1,
                 affine: bool = True, track_running_stats: bool = True, *, init: Any = None,
                 rng: Optional[np.random.Generator] = None) -> None:
        super().__init__()
        self.num_features = positive_int(num_features, "num_features")
        self.eps = number(eps, "eps", lo=0.0)
        self.momentum = None if momentum is None else number(momentum, "momentum", lo=0.0, hi=1.0)
        self.affine = bool(affine)
        self.track_running_stats = bool(track_running_stats)
        c = self.num_features
        if self.affine:
            # PyTorch starts gamma at 1; init= (e.g. "zeros" for the last BN of a residual
            # block) draws it instead. beta always starts at 0.
            gamma = np.ones(c, np.float32) if init is None else I.make_weight((c,), init, rng)
            self.weight = Parameter(gamma)
            self.bias = Parameter(np.zeros(c, np.float32))
        else:
            self.weight = None
            self.bias = None
        if self.track_running_stats:
            self.register_buffer("running_mean", np.zeros(c, np.float32))
            self.register_buffer("running_var", np.ones(c, np.float32))
            self.register_buffer("num_batches_tracked", np.array(0, dtype=np.int64))
        else:
            self.running_mean = None
            self.running_var = None
            self.num_batches_tracked = None
        self._cache: Optional[tuple] = None

    def reset_running_stats(self) -> None:
        """Running mean 0, running variance 1, no batches seen."""
        if self.track_running_stats:
            assert (self.running_mean is not None and self.running_var is not None
                    and self.num_batches_tracked is not None)
            self.running_mean.fill(0.0)
            self.running_var.fill(1.0)
            self.num_batches_tracked[...] = 0

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = as_float32(x, "x", ndim=self._ndims)
        if x.shape[1] != self.num_features:
            raise ValueError(f"x: expected {self._layout} with C = {self.num_features}, "
                             f"got shape {x.shape}")
        use_batch = self.training or not self.track_running_stats
        if use_batch and x.size // max(x.shape[1], 1) < 2:
            # Checked before num_batches_tracked moves, so a rejected batch changes nothing.
            raise ValueError("x: expected more than 1 value per channel when training, got input "
                             f"shape {x.shape}")
        momentum = 0.0
        if self.training and self.track_running_stats:
            nbt = self.num_batches_tracked
            assert nbt is not None
            np.add(nbt, 1, out=nbt)
            # momentum=None: cumulative moving average, as PyTorch.
            momentum = 1.0 / float(nbt) if self.momentum is None else self.momentum
        gamma = None if self.weight is None else self.weight.data  # None: affine=False
        beta = None if self.bias is None else self.bias.data
        # PyTorch: without tracked statistics the batch statistics are used in eval too,
        # and nothing is updated.
        rm = self.running_mean if (self.training and self.track_running_stats) or not use_batch else None
        rv = self.running_var if (self.training and self.track_running_stats) or not use_batch else None
        y, mean, invstd = F.batch_norm(x, gamma, beta, rm, rv, training=use_batch,
                                       momentum=momentum, eps=self.eps)
        self._cache = (x, mean, invstd, use_batch)
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray:
        if self._cache is None:
            raise RuntimeError(f"{type(self).__name__}.backward called before forward")
        x, mean, invstd, use_batch = self._cache
        weight, bias = self.weight, self.bias  # None: affine=False
        dx, dgamma, dbeta = F.batch_norm_backward(dy, x, None if weight is None else weight.data,
                                                  mean, invstd, training=use_batch)
        if weight is not None and bias is not None:
            weight.grad += dgamma
            bias.grad += dbeta
        return dx

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, track_running_stats={self.track_running_stats}")


class BatchNorm1d(_BatchNorm):
    """Batch norm of x (N, C) or (N, C, L), per feature C over N (and L).

    y = (x - mean) / sqrt(var + eps) * weight + bias; training uses the batch statistics
    (biased variance) and updates running_mean / running_var (unbiased) with `momentum`
    (None: cumulative average); eval uses the running statistics. weight starts at 1,
    bias at 0 (init=: a name from fastnn.init or a callable f(shape, rng=) to draw weight
    instead, with rng=); affine=False drops both. Convention: momentum weights the new batch
    (PyTorch).
    """
    _ndims = (2, 3)
    _layout = "(N, C) or (N, C, L)"


class BatchNorm2d(_BatchNorm):
    """Batch norm of x (N, C, H, W), per channel C over N, H and W. Same rules as BatchNorm1d."""
    _ndims = (4,)
    _layout = "(N, C, H, W)"


def update_bn(loader: Iterable[Any], model: Module, batch_size: int = 256) -> None:
    """Recompute every batch-norm layer's running statistics from data ("precise BN"), as
    PyTorch's torch.optim.swa_utils.update_bn: each layer's running_mean / running_var are reset
    and become the cumulative average over the batches of `loader` (momentum None for the
    pass), with the model in training mode and its weights untouched; momentum and the model's
    mode are restored afterwards; if a batch fails or there is none, the statistics are
    restored too. Running averages with momentum 0.1 trail the weights by ~10 steps, which at
    a high learning rate can cost held-out accuracy in eval mode.

    loader: an iterable of batches x (N, ...) or (x, y, ...) tuples (e.g. a DataLoader), or one
    array x (N, ...), fed in slices of `batch_size`. A model without batch-norm layers is left
    as it is.
    """
    if not isinstance(model, Module):
        raise TypeError(f"model: expected a fastnn Module, got {type(model).__name__}")
    batch_size = positive_int(batch_size, "batch_size")
    if isinstance(loader, np.ndarray):
        if loader.ndim < 2 or len(loader) == 0:
            raise ValueError("loader: expected an array (N, ...) with N >= 1, got shape "
                             f"{loader.shape}")
        x_all = loader
        loader = (x_all[i:i + batch_size] for i in range(0, len(x_all), batch_size))
    elif not hasattr(loader, "__iter__"):
        raise TypeError("loader: expected an iterable of batches or an array, got "
                        f"{type(loader).__name__}")
    layers = [m for m in model.modules() if isinstance(m, _BatchNorm) and m.track_running_stats]
    if not layers:
        return
    # Each layer's momentum and its three buffers (they exist: track_running_stats), each
    # buffer with a copy of its values to restore if the pass fails.
    saved = []
    for m in layers:
        buffers = [m.running_mean, m.running_var, m.num_batches_tracked]
        saved.append((m, m.momentum, [(b, b.copy()) for b in buffers if b is not None]))
    modes = [(mod, mod.training) for mod in model.modules()]  # each restored as it was
    done = False
    try:
        for m in layers:
            m.reset_running_stats()
            m.momentum = None
        model.train()
        seen = 0
        for batch in loader:
            model(batch[0] if isinstance(batch, (tuple, list)) else batch)
            seen += 1
        if seen == 0:
            raise ValueError("loader: expected at least one batch, got none")
        done = True
    finally:
        for m, momentum, copies in saved:
            m.momentum = momentum
            if not done:  # a failed pass leaves the statistics the user had
                for buf, old in copies:
                    buf[...] = old
        for mod, training in modes:
            object.__setattr__(mod, "training", training)
