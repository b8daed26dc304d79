"""Weight initializers, `f(shape, *, rng=None, **kw) -> float32 array`, formulas as torch.nn.init.

Fans follow PyTorch: for a weight of shape (out, in, *kernel), fan_in = in * prod(kernel) and
fan_out = out * prod(kernel); a 1-d shape has fan_in = fan_out = shape[0].
"""
from __future__ import annotations

import math
import warnings
from typing import Any, Callable, List, Optional, Sequence, Tuple, Union

import numpy as np

from ._checks import number, rng_or_default

__all__ = [
    "zeros", "ones", "constant", "normal", "uniform", "small_random", "xavier_normal", "xavier_uniform",
    "he_normal", "he_uniform", "kaiming_normal", "kaiming_uniform", "lecun_normal", "orthogonal",
    "torch_default", "fans", "calculate_gain", "get", "lsuv",
]

Shape = Union[int, Sequence[int]]
Initializer = Callable[..., np.ndarray]


def _shape(shape: Shape) -> Tuple[int, ...]:
    if isinstance(shape, (int, np.integer)):
        shape = (int(shape),)
    try:
        out = tuple(int(s) for s in shape)
    except TypeError:
        raise TypeError(f"shape: expected an int or a sequence of ints, got {shape!r}") from None
    if any(s < 0 for s in out):
        raise ValueError(f"shape: expected non-negative sizes, got {out}")
    return out


def fans(shape: Shape) -> Tuple[int, int]:
    """(fan_in, fan_out) as PyTorch computes them (conv: Cin*kh*kw, Cout*kh*kw)."""
    s = _shape(shape)
    if len(s) == 0:
        raise ValueError("shape: fan computation needs at least one dimension")
    if len(s) == 1:
        return s[0], s[0]
    receptive = int(np.prod(s[2:])) if len(s) > 2 else 1
    return s[1] * receptive, s[0] * receptive


def calculate_gain(nonlinearity: str, param: Optional[float] = None) -> float:
    """torch.nn.init.calculate_gain: linear/sigmoid 1, tanh 5/3, relu √2, leaky_relu √(2/(1+a²)), selu 3/4."""
    if nonlinearity in ("linear", "identity", "conv2d", "sigmoid"):
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3.0
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        a = 0.01 if param is None else float(param)
        return math.sqrt(2.0 / (1 + a * a))
    if nonlinearity == "selu":
        return 3.0 / 4.0
    raise ValueError(f"nonlinearity: expected one of linear, sigmoid, tanh, relu, leaky_relu, selu; got {nonlinearity!r}")


def zeros(shape: Shape, *, rng: Any = None) -> np.ndarray:
    """All zeros."""
    return np.zeros(_shape(shape), np.float32)


def ones(shape: Shape, *, rng: Any = None) -> np.ndarray:
    """All ones."""
    return np.ones(_shape(shape), np.float32)


def constant(shape: Shape, value: float = 0.0, *, rng: Any = None) -> np.ndarray:
    """All equal to `value`."""
    return np.full(_shape(shape), number(value, "value"), np.float32)


def normal(shape: Shape, mean: float = 0.0, std: float = 1.0, *, rng: Any = None) -> np.ndarray:
    """N(mean, std²)."""
    std = number(std, "std", lo=0.0)
    return rng_or_default(rng).normal(number(mean, "mean"), std, _shape(shape)).astype(np.float32)


def uniform(shape: Shape, a: float = 0.0, b: float = 1.0, *, rng: Any = None) -> np.ndarray:
    """U(a, b)."""
    a, b = number(a, "a"), number(b, "b")
    if b < a:
        raise ValueError(f"b: expected b >= a, got a={a}, b={b}")
    return rng_or_default(rng).uniform(a, b, _shape(shape)).astype(np.float32)


def small_random(shape: Shape, std: float = 0.01, *, rng: Any = None) -> np.ndarray:
    """0.01 · N(0, 1): the lecture's `0.01 * np.random.randn(D, H)`."""
    return normal(shape, 0.0, std, rng=rng)


def xavier_uniform(shape: Shape, gain: float = 1.0, *, rng: Any = None) -> np.ndarray:
    """U(-a, a) with a = gain · √(6 / (fan_in + fan_out)) (Glorot & Bengio)."""
    fi, fo = fans(shape)
    a = number(gain, "gain") * math.sqrt(6.0 / max(fi + fo, 1))
    return uniform(shape, -a, a, rng=rng)


def xavier_normal(shape: Shape, gain: float = 1.0, *, rng: Any = None) -> np.ndarray:
    """N(0, std²) with std = gain · √(2 / (fan_in + fan_out))."""
    fi, fo = fans(shape)
    return normal(shape, 0.0, number(gain, "gain") * math.sqrt(2.0 / max(fi + fo, 1)), rng=rng)


def _he_std(shape: Shape, negative_slope: float, mode: str, nonlinearity: str) -> float:
    fi, fo = fans(shape)
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"mode: expected 'fan_in' or 'fan_out', got {mode!r}")
    fan = fi if mode == "fan_in" else fo
    return calculate_gain(nonlinearity, negative_slope) / math.sqrt(max(fan, 1))


def he_normal(shape: Shape, negative_slope: float = 0.0, mode: str = "fan_in",
              nonlinearity: str = "leaky_relu", *, rng: Any = None) -> np.ndarray:
    """N(0, std²), std = √(2 / (1 + a²)) / √fan (He et al.; torch.nn.init.kaiming_normal_)."""
    return normal(shape, 0.0, _he_std(shape, negative_slope, mode, nonlinearity), rng=rng)


def he_uniform(shape: Shape, negative_slope: float = 0.0, mode: str = "fan_in",
               nonlinearity: str = "leaky_relu", *, rng: Any = None) -> np.ndarray:
    """U(-b, b), b = √3 · √(2 / (1 + a²)) / √fan (torch.nn.init.kaiming_uniform_)."""
    b = math.sqrt(3.0) * _he_std(shape, negative_slope, mode, nonlinearity)
    return uniform(shape, -b, b, rng=rng)


kaiming_normal = he_normal
kaiming_uniform = he_uniform


def lecun_normal(shape: Shape, *, rng: Any = None) -> np.ndarray:
    """N(0, 1 / fan_in), not truncated (LeCun 1998)."""
    fi, _ = fans(shape)
    return normal(shape, 0.0, 1.0 / math.sqrt(max(fi, 1)), rng=rng)


def orthogonal(shape: Shape, gain: float = 1.0, *, rng: Any = None) -> np.ndarray:
    """(Semi-)orthogonal matrix via QR of a Gaussian, flattened to (shape[0], rest) as PyTorch;
    rows orthonormal when rows <= cols, columns otherwise; scaled by gain."""
    s = _shape(shape)
    if len(s) < 2:
        raise ValueError(f"shape: orthogonal needs at least 2 dimensions, got {s}")
    rows = s[0]
    cols = int(np.prod(s[1:]))
    g = rng_or_default(rng).standard_normal((rows, cols))
    if rows < cols:
        g = g.T
    q, r = np.linalg.qr(g)
    d = np.sign(np.diag(r))
    d[d == 0] = 1.0
    q = q * d
    if rows < cols:
        q = q.T
    return (number(gain, "gain") * q).reshape(s).astype(np.float32)


def torch_default(shape: Shape, *, rng: Any = None) -> np.ndarray:
    """PyTorch's default for Linear/Conv weights and biases: U(-1/√fan_in, 1/√fan_in)
    (kaiming_uniform with a = √5). For a bias pass the weight's fan_in via `fan_in=`."""
    fi, _ = fans(shape)
    b = 1.0 / math.sqrt(max(fi, 1))
    return uniform(shape, -b, b, rng=rng)


_NAMES = {
    "zeros": zeros, "ones": ones, "constant": constant, "small_random": small_random, "normal": normal, "uniform": uniform,
    "xavier_normal": xavier_normal, "xavier_uniform": xavier_uniform, "glorot_normal": xavier_normal,
    "glorot_uniform": xavier_uniform, "he_normal": he_normal, "he_uniform": he_uniform,
    "kaiming_normal": he_normal, "kaiming_uniform": he_uniform, "lecun_normal": lecun_normal,
    "orthogonal": orthogonal, "torch_default": torch_default, "default": torch_default,
}


def get(init: Union[str, Initializer, None], default: Initializer = torch_default) -> Initializer:
    """Resolve an `init=` argument: a name from this module, a callable f(shape, rng=), or None."""
    if init is None:
        return default
    if isinstance(init, str):
        try:
            return _NAMES[init]
        except KeyError:
            raise ValueError(f"init: expected one of {sorted(_NAMES)} or a callable, got {init!r}") from None
    if callable(init):
        return init
    raise TypeError(f"init: expected a name or a callable f(shape, rng=), got {type(init).__name__}")


def make_weight(shape: Shape, init: Union[str, Initializer, None], rng: Any) -> np.ndarray:
    """Draw a weight of `shape` with `init` (PyTorch's default when None), checking the result."""
    shape = _shape(shape)
    w = np.asarray(get(init)(shape, rng=rng_or_default(rng)))
    if w.shape != shape:
        raise ValueError(f"init: the initializer returned shape {w.shape}, expected {shape}")
    if w.dtype.kind not in "fiu":
        raise TypeError(f"init: the initializer returned a {w.dtype} array, expected real numbers")
    with np.errstate(over="ignore", invalid="ignore"):  # reported below, by name
        w = w.astype(np.float32)
    if not np.isfinite(w).all():
        raise ValueError("init: the initializer returned NaN or infinity (or values too large "
                         "for float32)")
    return w


def make_bias(size: int, fan_in: int, init: Union[str, Initializer, None], rng: Any) -> np.ndarray:
    """PyTorch's default bias U(-1/√fan_in, 1/√fan_in) when init is None, zeros otherwise."""
    if init is None:
        b = 1.0 / math.sqrt(max(fan_in, 1))
        return rng_or_default(rng).uniform(-b, b, size).astype(np.float32)
    return np.zeros(size, np.float32)


_LSUV_TYPES = ("Linear", "Conv2d", "Maxout")


def _is_lsuv_target(m: Any) -> bool:
    from .module import Parameter
    w = getattr(m, "weight", None)
    return (type(m).__name__ in _LSUV_TYPES and isinstance(w, Parameter)
            and w.data.ndim in (2, 4))


def lsuv(model: Any, x_batch: np.ndarray, tol: float = 0.05, max_iter: int = 10,
         rng: Any = None) -> List[Tuple[str, float, float]]:
    """Layer-sequential unit-variance init (Mishkin & Matas 2016), in place.

    Every Linear / Conv2d / Maxout weight (a `weight` Parameter of 2 or 4 dimensions) is first
    replaced by an orthogonal matrix (`rng`), then, layer by layer in forward order, scaled by
    1/sqrt(var) until the variance of that layer's own output (before its activation) over
    the whole batch x_batch is within 1 ± tol, or max_iter scalings were done. Biases are
    left as they are. Returns [(name, variance_before, variance_after)] per layer, in order,
    variance_before being the output variance right after the orthogonal start. A layer left
    outside 1 ± tol (max_iter reached, or an output that is constant over x_batch and so
    cannot be scaled) gives a RuntimeWarning naming it.

    Sequential containers are run child by child (only the layer being fitted is re-run);
    Residual blocks add their input back; other containers are run whole, with the target's
    output captured. The model runs in eval mode (dropout off, batch-norm running statistics
    untouched) and gets its train/eval flags back afterwards.
    """
    from ._checks import as_float32, check_finite, positive_int
    from .module import Module
    if not isinstance(model, Module):
        raise TypeError(f"model: expected a fastnn Module, got {type(model).__name__}")
    x = as_float32(x_batch, "x_batch", min_ndim=1, allow_empty=False)
    check_finite(x, "x_batch")  # NaN in, NaN variances out: nothing could be scaled
    tol = number(tol, "tol", lo=0.0, lo_open=True)
    max_iter = positive_int(max_iter, "max_iter")
    gen = rng_or_default(rng)
    names = {id(m): n for n, m in model.named_modules()}
    # Linear / Conv2d / Maxout layers, each with a `weight` Parameter (_is_lsuv_target)
    targets: List[Any] = [m for _, m in model.named_modules() if _is_lsuv_target(m)]
    if not targets:
        raise ValueError("model: no Linear/Conv2d/Maxout layer (2-d or 4-d weight) to initialize")
    for m in targets:
        m.weight.data = orthogonal(m.weight.data.shape, rng=gen)
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    records: List[Tuple[str, float, float]] = []
    problems: List[str] = []  # warned about once the walk is done (at the caller's line)
    done: set = set()

    def fit(m: Any, run: Callable[[], np.ndarray]) -> np.ndarray:
        out = run()
        before = var = float(np.var(out, dtype=np.float64))
        name = names.get(id(m), type(m).__name__)
        for _ in range(max_iter):
            if abs(var - 1.0) < tol or not np.isfinite(var) or var <= 1e-30:
                break
            np.multiply(m.weight.data, np.float32(1.0 / math.sqrt(var)), out=m.weight.data)
            out = run()
            var = float(np.var(out, dtype=np.float64))
        if not abs(var - 1.0) < tol:  # the record says so too; the warning says why
            if not np.isfinite(var):
                why = "its output is not finite (the weights are left as they are)"
            elif var <= 1e-30:
                why = ("its output is constant over x_batch, so no scale can give it unit "
                       "variance (the weights are left as they are)")
            else:
                why = f"not reached in max_iter={max_iter} scalings; raise max_iter or tol"
            problems.append(f"lsuv: layer {name!r} ({type(m).__name__}): output variance {var:.4g}, "
                            f"not within 1 ± {tol:g}: {why}")
        records.append((name, before, var))
        done.add(id(m))
        return out

    def contains_target(m: Any) -> bool:
        return any(_is_lsuv_target(s) and id(s) not in done for s in m.modules())

    def run_whole(m: Any, xin: np.ndarray) -> np.ndarray:
        # An arbitrary container: fit its targets one by one, re-running the container and
        # capturing the target's output through a temporary instance-level forward.
        for t in [s for s in m.modules() if _is_lsuv_target(s) and id(s) not in done]:
            captured: list = []
            orig = type(t).forward

            def capture(inp: np.ndarray, t=t, orig=orig, captured=captured) -> np.ndarray:
                out = orig(t, inp)
                captured.append(out)
                return out

            object.__setattr__(t, "forward", capture)
            try:
                def run(t=t, captured=captured) -> np.ndarray:
                    captured.clear()
                    m(xin)
                    if not captured:
                        raise ValueError(f"lsuv: layer {names.get(id(t))!r} is not used by the forward pass")
                    return captured[-1]
                fit(t, run)
            finally:
                object.__delattr__(t, "forward")
        return m(xin)

    def walk(m: Any, xin: np.ndarray) -> np.ndarray:
        from .module import Residual, Sequential
        if _is_lsuv_target(m):
            return fit(m, lambda: m(xin))
        if not contains_target(m):
            return m(xin)
        if isinstance(m, Sequential):
            h = xin
            for child in m:
                h = walk(child, h)
            return h
        if isinstance(m, Residual):
            return walk(m.block, xin) + xin
        return run_whole(m, xin)

    try:
        walk(model, x)
    finally:
        for m, mode in modes:
            object.__setattr__(m, "training", mode)
    for text in problems:
        warnings.warn(text, RuntimeWarning, stacklevel=2)
    return records
