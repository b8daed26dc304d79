"""Batch augmentations on NCHW float32 arrays with per-sample random parameters, and
test-time augmentation (`tta_predict`). Warps and colour jitter run in C++ (`fastnn._C`).

Every transform is a callable `(x, rng) -> x` (label-mixing ones, marked `mixes_labels = True`,
are `(x, y, rng) -> (x, y)`); x is (N, C, H, W); the input is never modified.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Dict, Optional, Sequence, Tuple, Union

import numpy as np

from . import _checks as C
from ._dispatch import _C
from .preprocess import NotFittedError

__all__ = [
    "Transform", "Compose", "RandomCrop", "CenterCrop", "RandomHorizontalFlip",
    "RandomVerticalFlip", "RandomAffine", "ColorJitter", "ColorPCA", "Cutout", "Mixup",
    "tta_predict", "affine_matrices",
]

Rng = Optional[np.random.Generator]


def _batch(x: Any, name: str = "x") -> np.ndarray:
    return C.as_float32(x, name, ndim=4)


def _range(v: Any, name: str, center: Optional[float] = None, lo: Optional[float] = None
           ) -> Tuple[float, float]:
    """A number v -> (center - v, center + v) (v >= 0; clipped below at lo), or a pair (a, b), a <= b."""
    if isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool):
        d = C.number(v, name, lo=0.0)
        a, b = (-d, d) if center is None else (center - d, center + d)
        if lo is not None:
            a = max(lo, a)
        return a, b
    try:
        seq = tuple(v)
    except TypeError:
        raise TypeError(f"{name}: expected a number or a pair (min, max), got {type(v).__name__}") from None
    if len(seq) != 2:
        raise ValueError(f"{name}: expected a number or a pair (min, max), got {v!r}")
    a, b = C.number(seq[0], name, lo=lo), C.number(seq[1], name, lo=lo)
    if a > b:
        raise ValueError(f"{name}: expected min <= max, got {v!r}")
    return a, b


class Transform:
    """Base class: `(x (N, C, H, W), rng) -> x'`, never modifying x."""

    mixes_labels = False

    def __call__(self, x: np.ndarray, rng: Rng = None) -> np.ndarray:
        raise NotImplementedError(f"{type(self).__name__} must define __call__(x, rng) (abstract in Transform)")

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._repr_args().items())
        return f"{type(self).__name__}({args})"

    def _repr_args(self) -> Dict[str, Any]:
        return {}


class Compose(Transform):
    """Applies transforms in order. Called as `(x, rng)`, or `(x, y, rng) -> (x, y)` when any
    member mixes labels (then `mixes_labels` is True, so DataLoader passes the labels)."""

    def __init__(self, transforms: Sequence[Callable[..., Any]]) -> None:
        try:
            self.transforms = list(transforms)
        except TypeError:
            raise TypeError(f"transforms: expected a list of callables, got {type(transforms).__name__}") from None
        for i, t in enumerate(self.transforms):
            if not callable(t):
                raise TypeError(f"transforms[{i}]: expected a callable, got {type(t).__name__}")
        self.mixes_labels = any(getattr(t, "mixes_labels", False) for t in self.transforms)

    def __call__(self, x: np.ndarray, *args: Any) -> Any:
        if self.mixes_labels:
            if len(args) not in (1, 2):
                raise TypeError("Compose with a label-mixing transform is called as (x, y, rng)")
            y, rng = args[0], (args[1] if len(args) == 2 else None)
        else:
            if len(args) > 1:
                raise TypeError("Compose without label-mixing transforms is called as (x, rng)")
            y, rng = None, (args[0] if args else None)
        rng = C.rng_or_default(rng)
        for t in self.transforms:
            if getattr(t, "mixes_labels", False):
                x, y = t(x, y, rng)
            else:
                x = t(x, rng)
        return (x, y) if self.mixes_labels else x

    def __repr__(self) -> str:
        inner = ", ".join(repr(t) for t in self.transforms)
        return f"Compose([{inner}])"


class RandomCrop(Transform):
    """Pads by `padding` on every side with the constant `fill` (0 as torchvision's default;
    give the background value of standardized data), then crops a random (h, w) window per
    sample: (N, C, H, W) -> (N, C, h, w). Offsets are uniform over all valid positions."""

    def __init__(self, size: Union[int, Tuple[int, int]], padding: Union[int, Tuple[int, int]] = 0,
                 fill: float = 0.0) -> None:
        self.size = C.pair(size, "size", minimum=1)
        self.padding = C.pair(padding, "padding", minimum=0)  # (top/bottom, left/right)
        self.fill = C.number(fill, "fill")
        if not math.isfinite(self.fill):
            raise ValueError(f"fill: expected a finite value, got {fill}")

    def _repr_args(self) -> Dict[str, Any]:
        return {"size": self.size, "padding": self.padding, "fill": self.fill}

    def __call__(self, x: np.ndarray, rng: Rng = None) -> np.ndarray:
        x = _batch(x)
        rng = C.rng_or_default(rng)
        n, _, h, w = x.shape
        (oh, ow), (ph, pw) = self.size, self.padding
        hp, wp = h + 2 * ph, w + 2 * pw
        if oh > hp or ow > wp:
            raise ValueError(f"size: crop {self.size} is larger than the padded image ({hp}, {wp}) "
                             f"of x with shape {x.shape}")
        offsets = np.empty((n, 2), np.int64)
        offsets[:, 0] = rng.integers(0, hp - oh + 1, size=n)
        offsets[:, 1] = rng.integers(0, wp - ow + 1, size=n)
        return _C.crop_padded(x, offsets, oh, ow, ph, pw, self.fill)


class CenterCrop(Transform):
    """Crops the central (h, w) window (torchvision's rounding of the offset):
    (N, C, H, W) -> (N, C, h, w). A size larger than the image is a ValueError."""

    def __init__(self, size: Union[int, Tuple[int, int]]) -> None:
        self.size = C.pair(size, "size", minimum=1)

    def _repr_args(self) -> Dict[str, Any]:
        return {"size": self.size}

    def __call__(self, x: np.ndarray, rng: Rng = None) -> np.ndarray:
        x = _batch(x)
        _, _, h, w = x.shape
        oh, ow = self.size
        if oh > h or ow > w:
            raise ValueError(f"size: crop {self.size} is larger than the image ({h}, {w}) of x")
        top, left = int(round((h - oh) / 2.0)), int(round((w - ow) / 2.0))
        return np.ascontiguousarray(x[:, :, top:top + oh, left:left + ow])


class _RandomFlip(Transform):
    _axis = 3

    def __init__(self, p: float = 0.5) -> None:
        self.p = C.number(p, "p", 0.0, 1.0)

    def _repr_args(self) -> Dict[str, Any]:
        return {"p": self.p}

    def __call__(self, x: np.ndarray, rng: Rng = None) -> np.ndarray:
        x = _batch(x)
        rng = C.rng_or_default(rng)
        flip = rng.random(len(x)) < self.p
        flipped = np.flip(x, axis=self._axis)
        return np.where(flip[:, None, None, None], flipped, x)


class RandomHorizontalFlip(_RandomFlip):
    """Mirrors each sample left-right with probability p. (N, C, H, W) -> same shape."""
    _axis = 3


class RandomVerticalFlip(_RandomFlip):
    """Mirrors each sample top-bottom with probability p. (N, C, H, W) -> same shape."""
    _axis = 2


def affine_matrices(angle: np.ndarray, translate: np.ndarray, scale: np.ndarray,
                    shear: np.ndarray) -> np.ndarray:
    """Inverse affine matrices (N, 6), torchvision's `_get_inverse_affine_matrix` about the
    image centre: angle (N,) degrees, translate (N, 2) pixels (x, y), scale (N,), shear (N, 2)
    degrees (x, y). Row i maps centred output coordinates to centred input coordinates."""
    rot = np.deg2rad(np.asarray(angle, np.float64))
    sx = np.deg2rad(np.asarray(shear, np.float64)[:, 0])
    sy = np.deg2rad(np.asarray(shear, np.float64)[:, 1])
    s = np.asarray(scale, np.float64)
    tx = np.asarray(translate, np.float64)[:, 0]
    ty = np.asarray(translate, np.float64)[:, 1]
    # Rotation-scale-shear; the inverse uses det = 1 of the rotation and shear parts.
    a = np.cos(rot - sy) / np.cos(sy)
    b = -np.cos(rot - sy) * np.tan(sx) / np.cos(sy) - np.sin(rot)
    c = np.sin(rot - sy) / np.cos(sy)
    d = -np.sin(rot - sy) * np.tan(sx) / np.cos(sy) + np.cos(rot)
    m = np.stack([d, -b, np.zeros_like(a), -c, a, np.zeros_like(a)], axis=1) / s[:, None]
    m[:, 2] = -(m[:, 0] * tx + m[:, 1] * ty)
    m[:, 5] = -(m[:, 3] * tx + m[:, 4] * ty)
    return m


class RandomAffine(Transform):
    """Random affine warp per sample, torchvision's parameterisation: rotation about the image
    centre (clockwise for positive angles, as torchvision's F.affine) by U(-degrees, degrees) (or a (min, max) pair); translation by round(U(-a·W, a·W)),
    round(U(-b·H, b·H)) pixels for translate=(a, b); scale U(lo, hi); shear in degrees (a number
    s -> x shear U(-s, s); a pair -> x range; 4 values -> x and y ranges). Bilinear sampling;
    points outside the image read `fill` (with fill=0 as torchvision's zero padding).
    Identity parameters return the input exactly. (N, C, H, W) -> same shape.
    """

    def __init__(self, degrees: Union[float, Tuple[float, float]] = 0,
                 translate: Optional[Tuple[float, float]] = None,
                 scale: Optional[Tuple[float, float]] = None,
                 shear: Union[None, float, Sequence[float]] = None, fill: float = 0.0) -> None:
        self.degrees = _range(degrees, "degrees")
        if translate is not None:
            t = tuple(translate) if not isinstance(translate, (int, float)) else None
            if t is None or len(t) != 2:
                raise ValueError(f"translate: expected a pair (a, b) of fractions, got {translate!r}")
            t = (C.number(t[0], "translate", 0.0, 1.0), C.number(t[1], "translate", 0.0, 1.0))
            translate = t
        self.translate = translate
        if scale is not None:
            scale = _range(scale, "scale", lo=0.0)
            if scale[0] <= 0:
                raise ValueError(f"scale: expected positive values, got {scale!r}")
        self.scale = scale
        if shear is None:
            self.shear: Optional[Tuple[float, float, float, float]] = None
        elif isinstance(shear, (int, float, np.integer, np.floating)) and not isinstance(shear, bool):
            sx = _range(shear, "shear")
            self.shear = (sx[0], sx[1], 0.0, 0.0)
        else:
            if isinstance(shear, (bool, np.bool_)):
                raise TypeError(f"shear: expected a number, 2 or 4 values, got {shear!r}")
            seq = tuple(shear)
            if len(seq) == 2:
                self.shear = _range(seq, "shear") + (0.0, 0.0)
            elif len(seq) == 4:
                self.shear = _range(seq[:2], "shear") + _range(seq[2:], "shear")
            else:
                raise ValueError(f"shear: expected a number, 2 or 4 values, got {shear!r}")
            if max(abs(v) for v in self.shear) >= 90:
                raise ValueError(f"shear: expected angles in (-90, 90) degrees, got {shear!r}")
        self.fill = C.number(fill, "fill")
        if not math.isfinite(self.fill):
            raise ValueError(f"fill: expected a finite value, got {fill}")

    def _repr_args(self) -> Dict[str, Any]:
        return {"degrees": self.degrees, "translate": self.translate, "scale": self.scale,
                "shear": self.shear, "fill": self.fill}

    def sample_matrices(self, n: int, h: int, w: int, rng: np.random.Generator) -> np.ndarray:
        """Draws per-sample parameters -> inverse matrices (n, 6) float32 (see affine_matrices)."""
        angle = rng.uniform(self.degrees[0], self.degrees[1], size=n)
        trans = np.zeros((n, 2))
        if self.translate is not None:
            mx, my = self.translate[0] * w, self.translate[1] * h
            trans[:, 0] = np.round(rng.uniform(-mx, mx, size=n))
            trans[:, 1] = np.round(rng.uniform(-my, my, size=n))
        scale = np.ones(n) if self.scale is None else rng.uniform(self.scale[0], self.scale[1], size=n)
        shear = np.zeros((n, 2))
        if self.shear is not None:
            shear[:, 0] = rng.uniform(self.shear[0], self.shear[1], size=n)
            if self.shear[2] != 0 or self.shear[3] != 0:
                shear[:, 1] = rng.uniform(self.shear[2], self.shear[3], size=n)
        return affine_matrices(angle, trans, scale, shear).astype(np.float32)

    def __call__(self, x: np.ndarray, rng: Rng = None) -> np.ndarray:
        x = _batch(x)
        rng = C.rng_or_default(rng)
        n, _, h, w = x.shape
        theta = self.sample_matrices(n, h, w, rng)
        return _C.affine_warp_bilinear(x, theta, h, w, self.fill)


class ColorJitter(Transform):
    """Per-sample brightness, contrast and saturation factors, as torchvision's ColorJitter
    for float images: a number v gives U(max(0, 1-v), 1+v), a pair (min, max) that range; 0
    disables the operation. Convention: the enabled operations run in the fixed order
    brightness, contrast, saturation (torchvision shuffles them), each followed by a clamp
    to [0, 1] as torchvision does for float images; grey = 0.299 R + 0.587 G + 0.114 B
    (ITU-R 601-2; torchvision's tensor path uses 0.2989). Brightness and contrast work on 1
    channel; saturation needs 3 (a ValueError otherwise). (N, C, H, W) -> same shape.
    """

    def __init__(self, brightness: Union[float, Tuple[float, float]] = 0,
                 contrast: Union[float, Tuple[float, float]] = 0,
                 saturation: Union[float, Tuple[float, float]] = 0) -> None:
        self.brightness = self._factor(brightness, "brightness")
        self.contrast = self._factor(contrast, "contrast")
        self.saturation = self._factor(saturation, "saturation")

    @staticmethod
    def _factor(v: Any, name: str) -> Optional[Tuple[float, float]]:
        r = _range(v, name, center=1.0, lo=0.0)
        return None if r == (1.0, 1.0) else r

    def _repr_args(self) -> Dict[str, Any]:
        return {"brightness": self.brightness, "contrast": self.contrast, "saturation": self.saturation}

    def __call__(self, x: np.ndarray, rng: Rng = None) -> np.ndarray:
        x = _batch(x)
        rng = C.rng_or_default(rng)
        n, c = x.shape[:2]
        if c not in (1, 3):
            raise ValueError(f"x: ColorJitter expects 1 or 3 channels, got shape {x.shape}")
        if self.saturation is not None and c != 3:
            raise ValueError(f"x: ColorJitter(saturation=...) needs RGB images (3 channels), got shape {x.shape}")
        factors = np.ones((n, 3), np.float32)
        for j, r in enumerate((self.brightness, self.contrast, self.saturation)):
            if r is not None:
                factors[:, j] = rng.uniform(r[0], r[1], size=n)
        return _C.color_jitter(x, factors, self.brightness is not None,
                               self.contrast is not None, self.saturation is not None)


class ColorPCA(Transform):
    """AlexNet's lighting noise. `fit(x)` computes the 3x3 covariance of the RGB values of all
    training pixels (x (N, 3, H, W), float64, 1/(M-1)) and its eigen-decomposition
    (`eigenvalues_` ascending, `eigenvectors_` as columns, as numpy.linalg.eigh); a call adds
    Σᵢ αᵢ λᵢ pᵢ to every pixel of an image with αᵢ ~ N(0, std) drawn per image. No clamping.
    """

    def __init__(self, std: float = 0.1) -> None:
        self.std = C.number(std, "std", lo=0.0)
        self.eigenvalues_: Optional[np.ndarray] = None
        self.eigenvectors_: Optional[np.ndarray] = None

    def _repr_args(self) -> Dict[str, Any]:
        return {"std": self.std}

    @staticmethod
    def _rgb(x: Any) -> np.ndarray:
        x = _batch(x)
        if x.shape[1] != 3:
            raise ValueError(f"x: ColorPCA needs RGB images (N, 3, H, W), got shape {x.shape}")
        return x

    def fit(self, x: np.ndarray) -> "ColorPCA":
        """Fit on training images x (N, 3, H, W); returns self."""
        x = self._rgb(x)
        m = x.shape[0] * x.shape[2] * x.shape[3]
        if m < 2:
            raise ValueError(f"x: ColorPCA.fit needs at least 2 pixels, got shape {x.shape}")
        C.check_finite(x, "x")
        # Two passes in chunks: the centred products stay accurate and memory stays small.
        chunk = 1024
        mean = np.zeros(3)
        for i in range(0, x.shape[0], chunk):
            mean += x[i:i + chunk].sum(axis=(0, 2, 3), dtype=np.float64)
        mean /= m
        cov = np.zeros((3, 3))
        for i in range(0, x.shape[0], chunk):
            p = x[i:i + chunk].transpose(0, 2, 3, 1).reshape(-1, 3).astype(np.float64) - mean
            cov += p.T @ p
        cov /= (m - 1)
        lam, vec = np.linalg.eigh(cov)
        self.eigenvalues_ = np.maximum(lam, 0.0)
        self.eigenvectors_ = vec
        return self

    def __call__(self, x: np.ndarray, rng: Rng = None) -> np.ndarray:
        x = self._rgb(x)
        if self.eigenvalues_ is None or self.eigenvectors_ is None:
            raise NotFittedError("ColorPCA: not fitted; call fit(x_train) first")
        rng = C.rng_or_default(rng)
        alpha = rng.normal(0.0, self.std, size=(x.shape[0], 3)) if self.std > 0 else np.zeros((x.shape[0], 3))
        delta = (alpha * self.eigenvalues_) @ self.eigenvectors_.T  # (N, 3)
        return (x + delta.astype(np.float32)[:, :, None, None]).astype(np.float32, copy=False)

    def state_dict(self) -> Dict[str, np.ndarray]:
        """Plain arrays: kind, std, eigenvalues (3,), eigenvectors (3, 3)."""
        if self.eigenvalues_ is None or self.eigenvectors_ is None:
            raise NotFittedError("ColorPCA: not fitted; call fit(x_train) before state_dict()")
        return {"kind": np.array("ColorPCA"), "std": np.array(self.std),
                "eigenvalues": self.eigenvalues_.copy(), "eigenvectors": self.eigenvectors_.copy()}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        """Restore a state from `state_dict()`; a foreign or malformed state is a ValueError."""
        kind = str(np.asarray(state.get("kind", ""))) if hasattr(state, "get") else ""
        if kind != "ColorPCA":
            raise ValueError(f"state: expected a ColorPCA state, got kind {kind!r}")
        lam = np.asarray(state["eigenvalues"], np.float64)
        vec = np.asarray(state["eigenvectors"], np.float64)
        if lam.shape != (3,) or vec.shape != (3, 3):
            raise ValueError(f"state: expected eigenvalues (3,) and eigenvectors (3, 3), got {lam.shape}, {vec.shape}")
        self.std = C.number(np.asarray(state["std"]).item(), "std", lo=0.0)
        self.eigenvalues_, self.eigenvectors_ = lam.copy(), vec.copy()


class Cutout(Transform):
    """Sets a (size x size) square to `fill` in every channel, one per sample, centred at a
    uniformly drawn pixel and clipped at the border (DeVries & Taylor). Same shape out."""

    def __init__(self, size: Union[int, Tuple[int, int]], fill: float = 0.5) -> None:
        self.size = C.pair(size, "size", minimum=0)
        self.fill = C.number(fill, "fill")

    def _repr_args(self) -> Dict[str, Any]:
        return {"size": self.size, "fill": self.fill}

    def __call__(self, x: np.ndarray, rng: Rng = None) -> np.ndarray:
        x = _batch(x)
        rng = C.rng_or_default(rng)
        n, _, h, w = map(int, x.shape)
        cy = rng.integers(0, h, size=n) if h else np.zeros(n, np.int64)
        cx = rng.integers(0, w, size=n) if w else np.zeros(n, np.int64)
        y0, x0 = cy - self.size[0] // 2, cx - self.size[1] // 2
        rows, cols = np.arange(h), np.arange(w)
        in_r = (rows >= y0[:, None]) & (rows < (y0 + self.size[0])[:, None])
        in_c = (cols >= x0[:, None]) & (cols < (x0 + self.size[1])[:, None])
        mask = in_r[:, None, :, None] & in_c[:, None, None, :]
        return np.where(mask, np.float32(self.fill), x)


class Mixup(Transform):
    """mixup (Zhang et al.): one λ ~ Beta(alpha, alpha) per batch and a random permutation π;
    x' = λ x + (1-λ) x[π], y' = λ Y + (1-λ) Y[π]. Called as (x, y, rng) -> (x', y_soft).

    y: int class indices (N,) (one-hot with `num_classes`, or y.max()+1 when None — pass
    num_classes in training so every batch has the same width) or soft targets (N, K).
    x (N, ...) any shape; y_soft (N, K) float32 rows summing to 1 (for one-hot/probability y).
    """

    mixes_labels = True

    def __init__(self, alpha: float = 1.0, num_classes: Optional[int] = None) -> None:
        self.alpha = C.number(alpha, "alpha", lo=0.0, lo_open=True)
        self.num_classes = None if num_classes is None else C.positive_int(num_classes, "num_classes")

    def _repr_args(self) -> Dict[str, Any]:
        return {"alpha": self.alpha, "num_classes": self.num_classes}

    def __call__(self, x: np.ndarray, y: Any = None, rng: Rng = None) -> Tuple[np.ndarray, np.ndarray]:  # type: ignore[override]
        x = C.as_float32(x, "x", min_ndim=1)
        n = x.shape[0]
        if y is None:
            raise TypeError("y: Mixup mixes labels and is called as (x, y, rng)")
        t = np.asarray(y)
        if t.dtype.kind in "iu":
            k = self.num_classes
            if k is None:
                k = int(t.max()) + 1 if t.size else 1
            labels = C.as_labels(t, "y", n=n, num_classes=k)
            q = np.zeros((n, k), np.float32)
            q[np.arange(n), labels] = 1.0
        elif t.dtype.kind == "f":
            if t.ndim != 2 or t.shape[0] != n:
                raise ValueError(f"y: expected soft targets of shape ({n}, K), got {t.shape}")
            if self.num_classes is not None and t.shape[1] != self.num_classes:
                raise ValueError(f"y: expected {self.num_classes} classes, got shape {t.shape}")
            q = C.as_float32(t, "y")
            C.check_finite(q, "y")
        else:
            raise TypeError(f"y: expected int class indices (N,) or float soft targets (N, K), got {C.describe(t)}")
        rng = C.rng_or_default(rng)
        lam = float(rng.beta(self.alpha, self.alpha))
        perm = rng.permutation(n)
        l32, m32 = np.float32(lam), np.float32(1.0 - lam)
        xm = l32 * x + m32 * x[perm]
        ym = l32 * q + m32 * q[perm]
        self.last_lambda = lam
        return xm, ym


def tta_predict(model: Callable[[np.ndarray], np.ndarray], x: np.ndarray,
                transforms: Sequence[Callable[..., np.ndarray]] = (), batch_size: int = 256,
                rng: Rng = None) -> np.ndarray:
    """Test-time augmentation: mean of softmax(model(view)) over the identity view plus one
    view per transform (e.g. `RandomHorizontalFlip(p=1.0)`, `CenterCrop`), each called as
    `t(x, rng)`. x (N, C, H, W) -> probabilities (N, K) float32. The model runs in eval mode
    (its mode is restored afterwards), in batches of `batch_size`. rng defaults to a fixed
    seed so that random views are reproducible.
    """
    from .losses import softmax
    x = _batch(x)
    bs = C.positive_int(batch_size, "batch_size")
    if not callable(model):
        raise TypeError(f"model: expected a callable model, got {type(model).__name__}")
    views = list(transforms)
    for i, v in enumerate(views):
        if not callable(v):
            raise TypeError(f"transforms[{i}]: expected a callable, got {type(v).__name__}")
        if getattr(v, "mixes_labels", False):
            raise TypeError(f"transforms[{i}]: label-mixing transforms cannot be test-time views")
    gen = np.random.default_rng(0) if rng is None else C.rng_or_default(rng)
    was_training = getattr(model, "training", None)
    if hasattr(model, "eval"):
        model.eval()
    try:
        total: Optional[np.ndarray] = None
        for t in [None] + views:
            xv = x if t is None else t(x, gen)
            probs = []
            for i in range(0, xv.shape[0], bs):
                out = C.as_float32(model(xv[i:i + bs]), "model output", ndim=2)
                probs.append(softmax(out).astype(np.float64))
            p = np.concatenate(probs, axis=0) if probs else np.zeros((0, 0))
            if total is not None and p.shape != total.shape:
                raise ValueError(f"transforms: views give outputs of different shapes {total.shape} and {p.shape}")
            total = p if total is None else total + p
    finally:
        if was_training is not None and hasattr(model, "train"):
            model.train(bool(was_training))
    assert total is not None
    return (total / (1 + len(views))).astype(np.float32)
