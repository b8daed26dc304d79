"""Preprocessing fitted on training data and applied unchanged to test data: Standardize,
MeanImage, ChannelMean, PCAWhiten, ZCAWhiten. Statistics are computed in float64 and
stored as plain NumPy arrays, so `state_dict()` saves in an .npz without pickle.
"""
from __future__ import annotations

from typing import Any, Dict, Mapping, Optional, Tuple

import numpy as np

from . import _checks as C

__all__ = ["Preprocessor", "Standardize", "MeanImage", "ChannelMean", "PCAWhiten", "ZCAWhiten",
           "NotFittedError"]

_CHUNK = 4096  # rows per chunk of the float64 covariance accumulation (bounds the memory)


class NotFittedError(ValueError, RuntimeError):
    """transform / inverse_transform / state_dict (or an augmentation such as ColorPCA) was
    used before `fit`. A ValueError as the project's bad-input errors (and a RuntimeError)."""


class Preprocessor:
    """Base class: fit(x) -> self, transform, fit_transform, inverse_transform, state_dict.

    x is (N, *feature_shape); `feature_shape_` is fixed by fit, and data of another feature
    shape is a ValueError. The state holds "kind" (the class name), "feature_shape" and the
    fitted arrays.
    """

    _stats: Tuple[str, ...] = ()
    _hyper: Tuple[str, ...] = ()

    def __init__(self) -> None:
        self.feature_shape_: Optional[Tuple[int, ...]] = None

    # --- helpers -------------------------------------------------------------------------
    @property
    def fitted(self) -> bool:
        return self.feature_shape_ is not None

    def _require_fitted(self, what: str) -> Tuple[int, ...]:
        """The fitted feature shape; NotFittedError before fit."""
        if self.feature_shape_ is None:
            raise NotFittedError(f"{type(self).__name__}: not fitted; call fit(x_train) before {what}")
        return self.feature_shape_

    def _fit_input(self, x: Any) -> np.ndarray:
        x = C.as_float32(x, "x", min_ndim=2)
        if x.shape[0] < 1:
            raise ValueError(f"x: {type(self).__name__}.fit needs at least one sample, got shape {x.shape}")
        C.check_finite(x, "x")
        return x

    def _input(self, x: Any, what: str = "transform") -> np.ndarray:
        self._require_fitted(what)
        x = C.as_float32(x, "x", min_ndim=2)
        if tuple(x.shape[1:]) != self.feature_shape_:
            raise ValueError(f"x: {type(self).__name__} was fitted on features of shape "
                             f"{self.feature_shape_}, got x of shape {x.shape}")
        return x

    def _expected_shapes(self, feature_shape: Tuple[int, ...]) -> Dict[str, Tuple[int, ...]]:
        raise NotImplementedError(f"{type(self).__name__} must define _expected_shapes() (abstract in Preprocessor)")

    def _after_load(self) -> None:
        """Recompute derived arrays after fit or load_state_dict."""

    # --- public API ----------------------------------------------------------------------
    def fit(self, x: np.ndarray) -> "Preprocessor":
        raise NotImplementedError(f"{type(self).__name__} must define fit() (abstract in Preprocessor)")

    def transform(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError(f"{type(self).__name__} must define transform() (abstract in Preprocessor)")

    def inverse_transform(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError(f"{type(self).__name__} must define inverse_transform() (abstract in Preprocessor)")

    def fit_transform(self, x: np.ndarray) -> np.ndarray:
        """fit(x) then transform(x)."""
        return self.fit(x).transform(x)

    def state_dict(self) -> Dict[str, np.ndarray]:
        """Plain arrays: "kind", "feature_shape", the hyper-parameters and fitted statistics."""
        self._require_fitted("state_dict()")
        d: Dict[str, np.ndarray] = {"kind": np.array(type(self).__name__),
                                    "feature_shape": np.array(self.feature_shape_, np.int64)}
        for h in self._hyper:
            v = getattr(self, h)
            d[h] = np.array(-1 if v is None else v)
        for s in self._stats:
            d[s] = np.array(getattr(self, s + "_"), copy=True)
        return d

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore what `state_dict()` returned. A state of another kind, with missing keys or
        with arrays of the wrong shape is a ValueError; the object is unchanged then."""
        name = type(self).__name__
        if not isinstance(state, Mapping):
            raise TypeError(f"state: expected a mapping of arrays, got {type(state).__name__}")
        missing = [k for k in ("kind", "feature_shape") + self._hyper + self._stats if k not in state]
        if missing:
            raise ValueError(f"state: not a {name} state (missing {missing})")
        kind = np.asarray(state["kind"])
        if kind.dtype.kind not in "US" or str(kind) != name:
            raise ValueError(f"state: expected a {name} state, got kind {str(kind)!r}")
        fs = np.asarray(state["feature_shape"])
        if fs.dtype.kind not in "iu" or fs.ndim != 1 or (fs < 0).any():
            raise ValueError(f"state: feature_shape must be a 1-d array of sizes, got {fs!r}")
        feature_shape = tuple(int(v) for v in fs)
        old = {h: getattr(self, h) for h in self._hyper}
        try:
            for h in self._hyper:
                v = np.asarray(state[h]).item()
                setattr(self, h, None if v == -1 and h == "n_components" else v)
            self._validate_hyper()
            want = self._expected_shapes_from_state(feature_shape, state)
        except (TypeError, ValueError) as e:
            for h, v in old.items():
                setattr(self, h, v)
            raise ValueError(f"state: bad {name} state: {e}") from None
        arrays = {}
        for s in self._stats:
            a = np.asarray(state[s])
            if a.dtype.kind != "f" or a.shape != want[s]:
                for h, v in old.items():
                    setattr(self, h, v)
                raise ValueError(f"state: {name} entry {s!r} should be a float array of shape "
                                 f"{want[s]} for feature shape {feature_shape}, got {C.describe(a)}")
            arrays[s] = a.astype(np.float64)
        for s, a in arrays.items():
            setattr(self, s + "_", a)
        self.feature_shape_ = feature_shape
        self._after_load()

    def _validate_hyper(self) -> None:
        pass

    def _expected_shapes_from_state(self, feature_shape: Tuple[int, ...],
                                    state: Mapping[str, Any]) -> Dict[str, Tuple[int, ...]]:
        return self._expected_shapes(feature_shape)

    def __repr__(self) -> str:
        args = ", ".join(f"{h}={getattr(self, h)!r}" for h in self._hyper)
        return f"{type(self).__name__}({args})"


class Standardize(Preprocessor):
    """Per-feature standardization: (x - mean) / (std + eps), statistics over axis 0.
    x (N, *F) -> same shape. Convention: population std (ddof=0); eps is added to the std,
    so constant features map to 0 instead of dividing by zero."""

    _stats = ("mean", "std")
    _hyper = ("eps",)

    def __init__(self, eps: float = 1e-8) -> None:
        super().__init__()
        self.eps = C.number(eps, "eps", lo=0.0, lo_open=True)

    def _validate_hyper(self) -> None:
        self.eps = C.number(self.eps, "eps", lo=0.0, lo_open=True)

    def _expected_shapes(self, fs):
        return {"mean": fs, "std": fs}

    def fit(self, x: np.ndarray) -> "Standardize":
        """Fit on training data x (N, *F); returns self."""
        x = self._fit_input(x)
        mean = x.mean(axis=0, dtype=np.float64)
        var = np.zeros_like(mean)
        for i in range(0, x.shape[0], _CHUNK):
            var += ((x[i:i + _CHUNK] - mean) ** 2).sum(axis=0)
        self.mean_, self.std_ = mean, np.sqrt(var / x.shape[0])
        self.feature_shape_ = tuple(x.shape[1:])
        self._after_load()
        return self

    def _after_load(self) -> None:
        self._m32 = self.mean_.astype(np.float32)
        self._s32 = (self.std_ + self.eps).astype(np.float32)

    def transform(self, x: np.ndarray) -> np.ndarray:
        """x (N, *F) -> (x - mean) / (std + eps), float32."""
        x = self._input(x)
        return (x - self._m32) / self._s32

    def inverse_transform(self, x: np.ndarray) -> np.ndarray:
        """z (N, *F) -> z * (std + eps) + mean."""
        x = self._input(x, "inverse_transform")
        return x * self._s32 + self._m32


class MeanImage(Preprocessor):
    """Subtracts the mean training sample (per feature, e.g. per pixel and channel).
    x (N, *F) -> same shape."""

    _stats = ("mean",)

    def _expected_shapes(self, fs):
        return {"mean": fs}

    def fit(self, x: np.ndarray) -> "MeanImage":
        """Fit on training data x (N, *F); returns self."""
        x = self._fit_input(x)
        self.mean_ = x.mean(axis=0, dtype=np.float64)
        self.feature_shape_ = tuple(x.shape[1:])
        self._after_load()
        return self

    def _after_load(self) -> None:
        self._m32 = self.mean_.astype(np.float32)

    def transform(self, x: np.ndarray) -> np.ndarray:
        """x (N, *F) -> x - mean."""
        return self._input(x) - self._m32

    def inverse_transform(self, x: np.ndarray) -> np.ndarray:
        """z (N, *F) -> z + mean."""
        return self._input(x, "inverse_transform") + self._m32


class ChannelMean(Preprocessor):
    """Subtracts the per-channel mean (over samples and positions; channel = axis 1), and with
    scale=True divides by the per-channel std (population; a constant channel is left
    unscaled). x (N, C, ...) -> same shape. Only the channel count is tied to the fit, so
    images of another spatial size are accepted; `feature_shape_` is (C,)."""

    _stats = ("mean", "std")
    _hyper = ("scale",)

    def __init__(self, scale: bool = False) -> None:
        super().__init__()
        self.scale = bool(scale)

    def _validate_hyper(self) -> None:
        self.scale = bool(self.scale)

    def _expected_shapes(self, fs):
        if len(fs) != 1:
            raise ValueError(f"feature_shape must be (C,), got {fs}")
        return {"mean": fs, "std": fs}

    def _input(self, x: Any, what: str = "transform") -> np.ndarray:
        fs = self._require_fitted(what)
        x = C.as_float32(x, "x", min_ndim=2)
        if x.shape[1] != fs[0]:
            raise ValueError(f"x: ChannelMean was fitted on {fs[0]} channels, "
                             f"got x of shape {x.shape}")
        return x

    def fit(self, x: np.ndarray) -> "ChannelMean":
        """Fit on training data x (N, C, ...); returns self."""
        x = self._fit_input(x)
        axes = (0,) + tuple(range(2, x.ndim))
        mean = x.mean(axis=axes, dtype=np.float64)
        shape = (1, -1) + (1,) * (x.ndim - 2)
        var = np.zeros_like(mean)
        for i in range(0, x.shape[0], _CHUNK):
            var += ((x[i:i + _CHUNK] - mean.reshape(shape)) ** 2).sum(axis=axes)
        self.mean_, self.std_ = mean, np.sqrt(var / (x.size // x.shape[1]))
        self.feature_shape_ = (int(x.shape[1]),)
        self._after_load()
        return self

    def _after_load(self) -> None:
        self._m32 = self.mean_.astype(np.float32)
        s = np.where(self.std_ > 0, self.std_, 1.0) if self.scale else np.ones_like(self.std_)
        self._s32 = s.astype(np.float32)

    def _b(self, v: np.ndarray, ndim: int) -> np.ndarray:
        return v.reshape((1, -1) + (1,) * (ndim - 2))

    def transform(self, x: np.ndarray) -> np.ndarray:
        """x (N, C, ...) -> (x - mean_c) [/ std_c]."""
        x = self._input(x)
        y = x - self._b(self._m32, x.ndim)
        return y / self._b(self._s32, x.ndim) if self.scale else y

    def inverse_transform(self, x: np.ndarray) -> np.ndarray:
        """z (N, C, ...) -> z [* std_c] + mean_c."""
        x = self._input(x, "inverse_transform")
        y = x * self._b(self._s32, x.ndim) if self.scale else x
        return y + self._b(self._m32, x.ndim)


def _mean_and_cov(x: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Mean (D,) and covariance (D, D), 1/N, of x (N, *F) flattened, in float64 chunks."""
    n = x.shape[0]
    flat = x.reshape(n, -1)
    mean = flat.mean(axis=0, dtype=np.float64)
    cov = np.zeros((flat.shape[1], flat.shape[1]))
    for i in range(0, n, _CHUNK):
        c = flat[i:i + _CHUNK].astype(np.float64) - mean
        cov += c.T @ c
    return mean, cov / n


class _Whiten(Preprocessor):
    def __init__(self, eps: float) -> None:
        super().__init__()
        self.eps = C.number(eps, "eps", lo=0.0, lo_open=True)

    def _eig(self, x: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        mean, cov = _mean_and_cov(x)
        lam, vec = np.linalg.eigh(cov)
        order = np.argsort(lam)[::-1]  # largest variance first
        return mean, np.maximum(lam[order], 0.0), vec[:, order]


class PCAWhiten(_Whiten):
    """PCA whitening: z = (x - mean) U_k / sqrt(λ_k + eps), with the covariance's (1/N)
    eigenvectors U sorted by decreasing eigenvalue λ and the first k = n_components kept
    (all when None). x (N, *F) -> z (N, k). On the training data z has covariance
    λ/(λ + eps) ≈ I. inverse_transform maps z back to (N, *F); with k < D that is the
    projection of x onto the top-k principal subspace."""

    _stats = ("mean", "components", "explained_variance")
    _hyper = ("n_components", "eps")

    def __init__(self, n_components: Optional[int] = None, eps: float = 1e-5) -> None:
        super().__init__(eps)
        self.n_components = None if n_components is None else C.positive_int(n_components, "n_components")

    def _validate_hyper(self) -> None:
        self.eps = C.number(self.eps, "eps", lo=0.0, lo_open=True)
        if self.n_components is not None:
            self.n_components = C.positive_int(int(self.n_components), "n_components")

    def _expected_shapes_from_state(self, fs, state):
        d = int(np.prod(fs))
        k = np.asarray(state["explained_variance"]).shape
        k = k[0] if len(k) == 1 else -1
        if k != (d if self.n_components is None else self.n_components):
            raise ValueError(f"explained_variance has shape {np.asarray(state['explained_variance']).shape}, "
                             f"expected ({self.n_components or d},)")
        return {"mean": (d,), "components": (d, k), "explained_variance": (k,)}

    def fit(self, x: np.ndarray) -> "PCAWhiten":
        """Fit on training data x (N, *F); returns self."""
        x = self._fit_input(x)
        d = int(np.prod(x.shape[1:]))
        k = d if self.n_components is None else self.n_components
        if k > d:
            raise ValueError(f"n_components: expected at most {d} (the feature count of x with shape "
                             f"{x.shape}), got {k}")
        mean, lam, vec = self._eig(x)
        self.mean_, self.components_, self.explained_variance_ = mean, vec[:, :k], lam[:k]
        self.feature_shape_ = tuple(x.shape[1:])
        self._after_load()
        return self

    def _after_load(self) -> None:
        root = np.sqrt(self.explained_variance_ + self.eps)
        self._m32 = self.mean_.astype(np.float32)
        self._w = (self.components_ / root).astype(np.float32)          # (D, k)
        self._winv = (self.components_ * root).T.astype(np.float32)     # (k, D)

    def transform(self, x: np.ndarray) -> np.ndarray:
        """x (N, *F) -> z (N, k)."""
        x = self._input(x)
        return (x.reshape(x.shape[0], -1) - self._m32) @ self._w

    def inverse_transform(self, x: np.ndarray) -> np.ndarray:
        """z (N, k) -> (N, *F)."""
        fs = self._require_fitted("inverse_transform")
        k = self._w.shape[1]
        z = C.as_float32(x, "x", shape=(None, k))
        return (z @ self._winv + self._m32).reshape((z.shape[0],) + fs)


class ZCAWhiten(_Whiten):
    """ZCA whitening: z = (x - mean) W with W = U diag(1/sqrt(λ + eps)) Uᵀ (symmetric, so the
    whitened data stays closest to the original). x (N, *F) -> same shape; on the training
    data the covariance (1/N) is λ/(λ + eps) ≈ I. inverse_transform restores x."""

    _stats = ("mean", "components", "eigenvalues")
    _hyper = ("eps",)

    def __init__(self, eps: float = 1e-5) -> None:
        super().__init__(eps)

    def _validate_hyper(self) -> None:
        self.eps = C.number(self.eps, "eps", lo=0.0, lo_open=True)

    def _expected_shapes(self, fs):
        d = int(np.prod(fs))
        return {"mean": (d,), "components": (d, d), "eigenvalues": (d,)}

    def fit(self, x: np.ndarray) -> "ZCAWhiten":
        """Fit on training data x (N, *F); returns self."""
        x = self._fit_input(x)
        self.mean_, self.eigenvalues_, self.components_ = self._eig(x)
        self.feature_shape_ = tuple(x.shape[1:])
        self._after_load()
        return self

    def _after_load(self) -> None:
        root = np.sqrt(self.eigenvalues_ + self.eps)
        u = self.components_
        self._m32 = self.mean_.astype(np.float32)
        self._w = ((u / root) @ u.T).astype(np.float32)
        self._winv = ((u * root) @ u.T).astype(np.float32)

    def transform(self, x: np.ndarray) -> np.ndarray:
        """x (N, *F) -> whitened (N, *F)."""
        x = self._input(x)
        return ((x.reshape(x.shape[0], -1) - self._m32) @ self._w).reshape(x.shape)

    def inverse_transform(self, x: np.ndarray) -> np.ndarray:
        """z (N, *F) -> x (N, *F)."""
        z = self._input(x, "inverse_transform")
        return (z.reshape(z.shape[0], -1) @ self._winv + self._m32).reshape(z.shape)
