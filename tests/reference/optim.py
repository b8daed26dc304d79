"""Float64 NumPy references of every optimizer update rule (torch.optim's single-tensor code
written out with plain NumPy), plus LBFGS-free helpers used by the tests.

Each `<name>_step(p, g, state, **hyper)` updates the float64 array `p` in place for one step
with gradient `g`; `state` is a dict holding "step" and the buffers under PyTorch's names.
"""
from __future__ import annotations

import math
from typing import Any, Dict

import numpy as np

State = Dict[str, Any]


def _grad(p, g, weight_decay, maximize):
    g = -g if maximize else g.copy()
    if weight_decay != 0:
        g = g + weight_decay * p
    return g


def sgd_step(p, g, state, *, lr, momentum=0.0, dampening=0.0, weight_decay=0.0,
             nesterov=False, maximize=False):
    d = _grad(p, g, weight_decay, maximize)
    if momentum != 0:
        buf = state.get("momentum_buffer")
        if buf is None:
            buf = d.copy()
        else:
            buf = momentum * buf + (1 - dampening) * d
        state["momentum_buffer"] = buf
        d = d + momentum * buf if nesterov else buf
    p -= lr * d
    state["step"] = state.get("step", 0) + 1


def adagrad_step(p, g, state, *, lr=1e-2, lr_decay=0.0, weight_decay=0.0,
                 initial_accumulator_value=0.0, eps=1e-10, maximize=False):
    step = state.get("step", 0) + 1
    state["step"] = step
    d = _grad(p, g, weight_decay, maximize)
    s = state.get("sum")
    if s is None:
        s = np.full_like(p, initial_accumulator_value)
    s = s + d * d
    state["sum"] = s
    clr = lr / (1 + (step - 1) * lr_decay)
    p -= clr * d / (np.sqrt(s) + eps)


def rmsprop_step(p, g, state, *, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0,
                 momentum=0.0, centered=False, maximize=False):
    state["step"] = state.get("step", 0) + 1
    d = _grad(p, g, weight_decay, maximize)
    sq = alpha * state.get("square_avg", np.zeros_like(p)) + (1 - alpha) * d * d
    state["square_avg"] = sq
    if centered:
        ga = state.get("grad_avg", np.zeros_like(p))
        ga = ga + (1 - alpha) * (d - ga)
        state["grad_avg"] = ga
        avg = np.sqrt(sq - ga * ga) + eps
    else:
        avg = np.sqrt(sq) + eps
    if momentum > 0:
        buf = momentum * state.get("momentum_buffer", np.zeros_like(p)) + d / avg
        state["momentum_buffer"] = buf
        p -= lr * buf
    else:
        p -= lr * d / avg


def adadelta_step(p, g, state, *, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0.0, maximize=False):
    state["step"] = state.get("step", 0) + 1
    d = _grad(p, g, weight_decay, maximize)
    sq = rho * state.get("square_avg", np.zeros_like(p)) + (1 - rho) * d * d
    acc = state.get("acc_delta", np.zeros_like(p))
    delta = np.sqrt(acc + eps) / np.sqrt(sq + eps) * d
    state["square_avg"] = sq
    state["acc_delta"] = rho * acc + (1 - rho) * delta * delta
    p -= lr * delta


def _adam_grad(p, g, lr, weight_decay, maximize, decoupled):
    """The gradient Adam/NAdam use: AdamW-style decay shrinks p in place first (decoupled),
    otherwise weight decay is added to the gradient (coupled L2)."""
    if decoupled:
        p *= 1 - lr * weight_decay
        return _grad(p, g, 0.0, maximize)
    return _grad(p, g, weight_decay, maximize)


def adam_step(p, g, state, *, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
              amsgrad=False, maximize=False, decoupled_weight_decay=False):
    b1, b2 = betas
    step = state.get("step", 0) + 1
    state["step"] = step
    d = _adam_grad(p, g, lr, weight_decay, maximize, decoupled_weight_decay)
    m = b1 * state.get("exp_avg", np.zeros_like(p)) + (1 - b1) * d
    v = b2 * state.get("exp_avg_sq", np.zeros_like(p)) + (1 - b2) * d * d
    state["exp_avg"], state["exp_avg_sq"] = m, v
    if amsgrad:
        v = np.maximum(state.get("max_exp_avg_sq", np.zeros_like(p)), v)
        state["max_exp_avg_sq"] = v
    bc1 = 1 - b1 ** step
    bc2 = 1 - b2 ** step
    p -= lr / bc1 * m / (np.sqrt(v) / math.sqrt(bc2) + eps)


def adamw_step(p, g, state, *, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
               amsgrad=False, maximize=False):
    adam_step(p, g, state, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
              amsgrad=amsgrad, maximize=maximize, decoupled_weight_decay=True)


def adamax_step(p, g, state, *, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                maximize=False):
    b1, b2 = betas
    step = state.get("step", 0) + 1
    state["step"] = step
    d = _grad(p, g, weight_decay, maximize)
    m = b1 * state.get("exp_avg", np.zeros_like(p)) + (1 - b1) * d
    u = np.maximum(b2 * state.get("exp_inf", np.zeros_like(p)), np.abs(d) + eps)
    state["exp_avg"], state["exp_inf"] = m, u
    p -= lr / (1 - b1 ** step) * m / u


def nadam_step(p, g, state, *, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
               momentum_decay=4e-3, decoupled_weight_decay=False, maximize=False):
    b1, b2 = betas
    step = state.get("step", 0) + 1
    state["step"] = step
    d = _adam_grad(p, g, lr, weight_decay, maximize, decoupled_weight_decay)
    mu = b1 * (1 - 0.5 * 0.96 ** (step * momentum_decay))
    mu_next = b1 * (1 - 0.5 * 0.96 ** ((step + 1) * momentum_decay))
    mu_product = state.get("mu_product", 1.0) * mu
    state["mu_product"] = mu_product
    m = b1 * state.get("exp_avg", np.zeros_like(p)) + (1 - b1) * d
    v = b2 * state.get("exp_avg_sq", np.zeros_like(p)) + (1 - b2) * d * d
    state["exp_avg"], state["exp_avg_sq"] = m, v
    denom = np.sqrt(v / (1 - b2 ** step)) + eps
    p -= lr * (1 - mu) / (1 - mu_product) * d / denom
    p -= lr * mu_next / (1 - mu_product * mu_next) * m / denom


def adaptive_gains_step(p, g, state, *, lr=1e-2, increase=0.05, decrease=0.95, min_gain=0.01,
                        max_gain=100.0, maximize=False):
    state["step"] = state.get("step", 0) + 1
    d = -g if maximize else g
    gain = state.get("gain", np.ones_like(p)).copy()
    q = state.get("prev_grad", np.zeros_like(p))
    s = d * q
    gain = np.where(s > 0, gain + increase, np.where(s < 0, gain * decrease, gain))
    gain = np.clip(gain, min_gain, max_gain)
    state["gain"], state["prev_grad"] = gain, d.copy()
    p -= lr * gain * d


STEPS = {"SGD": sgd_step, "Adagrad": adagrad_step, "RMSprop": rmsprop_step,
         "Adadelta": adadelta_step, "Adam": adam_step, "AdamW": adamw_step,
         "Adamax": adamax_step, "NAdam": nadam_step, "AdaptiveGains": adaptive_gains_step}
