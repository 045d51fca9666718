"""Unary element-wise ops: activations and math functions (Paddle Lite names).

Each reference keeps the input dtype (float32 in practice); the shape of the output is the input's.
"""
from __future__ import annotations

import math

import numpy as np

from ..registry import Attr, TensorType, op, same_as


def _f(x, y):
    """Cast a float result back to x's dtype."""
    return np.asarray(y).astype(x.dtype, copy=False)


@op("relu", infer=same_as(0), inplace=True)
def relu(x):
    """max(x, 0)"""
    return np.maximum(x, np.zeros((), x.dtype))


@op("relu6", attrs={"threshold": 6.0}, infer=same_as(0), inplace=True)
def relu6(x, *, threshold):
    """min(max(x, 0), threshold)"""
    return _f(x, np.clip(x, 0, threshold))


@op("leaky_relu", attrs={"alpha": 0.02}, infer=same_as(0), inplace=True)
def leaky_relu(x, *, alpha):
    """x if x >= 0 else alpha * x"""
    return _f(x, np.where(x >= 0, x, x * np.float32(alpha)))


@op("sigmoid", infer=same_as(0), inplace=True)
def sigmoid(x):
    """1 / (1 + exp(-x))"""
    with np.errstate(over="ignore"):
        return _f(x, 1.0 / (1.0 + np.exp(-x)))


@op("tanh", infer=same_as(0), inplace=True)
def tanh(x):
    """tanh(x)"""
    return np.tanh(x)


@op("hard_sigmoid", attrs={"slope": 0.2, "offset": 0.5}, infer=same_as(0), inplace=True)
def hard_sigmoid(x, *, slope, offset):
    """clip(slope * x + offset, 0, 1)"""
    return _f(x, np.clip(x * np.float32(slope) + np.float32(offset), 0, 1))


@op("hard_swish", attrs={"threshold": 6.0, "scale": 6.0, "offset": 3.0}, infer=same_as(0), inplace=True)
def hard_swish(x, *, threshold, scale, offset):
    """x * clip(x + offset, 0, threshold) / scale"""
    return _f(x, x * np.clip(x + np.float32(offset), 0, threshold) / np.float32(scale))


@op("swish", attrs={"beta": 1.0}, infer=same_as(0), inplace=True)
def swish(x, *, beta):
    """x * sigmoid(beta * x)"""
    with np.errstate(over="ignore"):
        return _f(x, x / (1.0 + np.exp(-np.float32(beta) * x)))


@op("prelu", inputs="X Alpha", attrs={"mode": "channel"}, infer=same_as(0), weight_inputs=(1,))
def prelu(x, alpha, *, mode):
    """x if x >= 0 else alpha * x; alpha broadcasts against x as in numpy (mode is informative)."""
    return _f(x, np.where(x >= 0, x, x * alpha))


@op("clip", inputs="X Min? Max?", attrs={"min": Attr("float", -math.inf), "max": Attr("float", math.inf)},
    infer=same_as(0), inplace=True)
def clip(x, lo, hi, *, min, max):
    """min(max(x, min), max) (so all values are max when min > max, as onnxruntime); the Min/Max inputs,
    when given, override the attributes. Always a new array, even when there is nothing to clip."""
    lo = np.asarray(min if lo is None else lo).astype(x.dtype) if not (lo is None and math.isinf(min)) else None
    hi = np.asarray(max if hi is None else hi).astype(x.dtype) if not (hi is None and math.isinf(max)) else None
    out = x
    if lo is not None:
        out = np.maximum(out, lo)
    if hi is not None:
        out = np.minimum(out, hi)
    return _f(x, out) if out is not x else x.copy()


@op("exp", infer=same_as(0), inplace=True)
def exp(x):
    """exp(x)"""
    with np.errstate(over="ignore"):
        return np.exp(x)


@op("log", infer=same_as(0), inplace=True)
def log(x):
    """natural logarithm"""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log(x)


@op("abs", infer=same_as(0), inplace=True)
def abs_(x):
    """|x|"""
    return np.abs(x)


@op("sqrt", infer=same_as(0), inplace=True)
def sqrt(x):
    """square root"""
    with np.errstate(invalid="ignore"):
        return np.sqrt(x)


@op("rsqrt", infer=same_as(0), inplace=True)
def rsqrt(x):
    """1 / sqrt(x)"""
    with np.errstate(invalid="ignore", divide="ignore"):
        return _f(x, 1.0 / np.sqrt(x))


@op("reciprocal", infer=same_as(0), inplace=True)
def reciprocal(x):
    """1 / x"""
    with np.errstate(divide="ignore"):
        return _f(x, np.reciprocal(x))


@op("floor", infer=same_as(0), inplace=True)
def floor(x):
    """round towards -inf"""
    return np.floor(x)


@op("ceil", infer=same_as(0), inplace=True)
def ceil(x):
    """round towards +inf"""
    return np.ceil(x)


@op("square", infer=same_as(0), inplace=True)
def square(x):
    """x * x"""
    return x * x


_ERF = np.vectorize(math.erf, otypes=[np.float64])


@op("erf", infer=same_as(0), inplace=True)
def erf(x):
    """the Gauss error function"""
    return _f(x, _ERF(x.astype(np.float64)) if x.size else x)


@op("gelu", attrs={"approximate": False}, infer=same_as(0), inplace=True)
def gelu(x, *, approximate):
    """x * Phi(x) (tanh approximation when `approximate`)"""
    xd = x.astype(np.float64)
    if approximate:
        y = 0.5 * xd * (1 + np.tanh(math.sqrt(2 / math.pi) * (xd + 0.044715 * xd ** 3)))
    else:
        y = 0.5 * xd * (1 + (_ERF(xd / math.sqrt(2)) if x.size else xd))
    return _f(x, y)


@op("scale", attrs={"scale": 1.0, "bias": 0.0, "bias_after_scale": True}, infer=same_as(0), inplace=True)
def scale(x, *, scale, bias, bias_after_scale):
    """scale * x + bias (or scale * (x + bias) when not bias_after_scale)"""
    s, b = np.asarray(scale, x.dtype), np.asarray(bias, x.dtype)
    if np.issubdtype(x.dtype, np.integer):
        s, b = np.asarray(scale), np.asarray(bias)
    return _f(x, x * s + b if bias_after_scale else (x + b) * s)


@op("elu", attrs={"alpha": 1.0}, infer=same_as(0), inplace=True)
def elu(x, *, alpha):
    """x if x > 0 else alpha * (exp(x) - 1)"""
    with np.errstate(over="ignore"):
        return _f(x, np.where(x > 0, x, np.float32(alpha) * np.expm1(np.minimum(x, 0))))


@op("softplus", infer=same_as(0), inplace=True)
def softplus(x):
    """log(1 + exp(x))"""
    return _f(x, np.logaddexp(0, x))


@op("sign", infer=same_as(0), inplace=True)
def sign(x):
    """-1, 0 or 1"""
    return np.sign(x)


@op("logical_not", infer=lambda ctx: [TensorType(ctx.dtype(0), ctx.shape(0))])
def logical_not(x):
    """boolean not"""
    return np.logical_not(x)


# --- fused activation epilogues --------------------------------------------------------------
# Ops that can absorb a following activation (conv2d, fc, elementwise_*) carry these attributes:
# `act_type` names one of the activation ops above ("" = none), `act_alpha` is its one parameter
# (leaky_relu alpha, relu6 threshold, swish beta, hard_sigmoid slope); the other attributes keep their defaults.
# (Files written before hard_sigmoid's slope was its parameter have act_alpha 0 there: the reader maps it to 0.2.)
FUSED_ACT_ATTRS = {"act_type": "", "act_alpha": 0.0}
# the one parameter in act_alpha
ACT_PARAM = {"leaky_relu": "alpha", "relu6": "threshold", "swish": "beta", "hard_sigmoid": "slope"}


def apply_act(y: np.ndarray, act_type: str, act_alpha: float) -> np.ndarray:
    """Apply the activation op `act_type` (by its own reference) to y."""
    if not act_type:
        return y
    from ..registry import OPS
    d = OPS[act_type]
    attrs = {k: a.default for k, a in d.attrs.items()}
    if act_type in ACT_PARAM:
        attrs[ACT_PARAM[act_type]] = act_alpha
    return d.run(y, **attrs)[0]
