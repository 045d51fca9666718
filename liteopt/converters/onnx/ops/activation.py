"""ONNX unary ops -> ir activation ops."""
from __future__ import annotations

import math

import numpy as np

from ..registry import onnx_op

_SIMPLE = {"Relu": "relu", "Sigmoid": "sigmoid", "Tanh": "tanh", "Exp": "exp", "Log": "log", "Abs": "abs",
           "Sqrt": "sqrt", "Reciprocal": "reciprocal", "Floor": "floor", "Ceil": "ceil", "Erf": "erf",
           "Not": "logical_not", "Sign": "sign"}


def _simple(ir_op):
    def convert(ctx, x):
        return ctx.emit(ir_op, [x])
    return convert


for _onnx, _ir in _SIMPLE.items():
    onnx_op(_onnx)(_simple(_ir))


@onnx_op("LeakyRelu")
def LeakyRelu(ctx, x, *, alpha=0.01):
    return ctx.emit("leaky_relu", [x], alpha=alpha)


@onnx_op("HardSigmoid")
def HardSigmoid(ctx, x, *, alpha=0.2, beta=0.5):
    return ctx.emit("hard_sigmoid", [x], slope=alpha, offset=beta)


@onnx_op("HardSwish")
def HardSwish(ctx, x):
    return ctx.emit("hard_swish", [x], threshold=6.0, scale=6.0, offset=3.0)


@onnx_op("PRelu")
def PRelu(ctx, x, slope):
    return ctx.emit("prelu", [x, slope], mode="channel" if ctx.shape(slope) and len(ctx.shape(slope)) > 0 else "all")


@onnx_op("Neg")
def Neg(ctx, x):
    return ctx.emit("scale", [x], scale=-1.0, bias=0.0)


def _clip(ctx, x, lo, hi):
    """Clip(0, t) is Paddle's relu6 with threshold t (as x2paddle maps it); other bounds stay a clip."""
    if lo == 0 and math.isfinite(hi) and hi > 0:
        return ctx.emit("relu6", [x], threshold=hi)
    return ctx.emit("clip", [x], min=lo, max=hi)


@onnx_op("Clip")
def Clip_6(ctx, x, *, min=-math.inf, max=math.inf):
    return _clip(ctx, x, min, max)


@onnx_op("Clip", since=11)
def Clip_11(ctx, x, lo="", hi=""):
    """Min/max are inputs since opset 11; constant ones become attributes."""
    lo_v, hi_v = ctx.value(lo), ctx.value(hi)
    attrs = {}
    if lo and lo_v is not None:
        attrs["min"], lo = float(np.asarray(lo_v).reshape(())), ""
    if hi and hi_v is not None:
        attrs["max"], hi = float(np.asarray(hi_v).reshape(())), ""
    if not lo and not hi:
        return _clip(ctx, x, attrs.get("min", -math.inf), attrs.get("max", math.inf))
    inputs = [x, lo, hi]
    while inputs[-1] == "":
        inputs.pop()
    return ctx.emit("clip", inputs, **attrs)


@onnx_op("Elu")
def Elu(ctx, x, *, alpha=1.0):
    return ctx.emit("elu", [x], alpha=alpha)


@onnx_op("Softplus")
def Softplus(ctx, x):
    return ctx.emit("softplus", [x])


@onnx_op("Gelu", since=20)
def Gelu(ctx, x, *, approximate="none"):
    if approximate not in ("none", "tanh"):
        raise ctx.error(f"approximate={approximate!r} is not supported (none, tanh)")
    return ctx.emit("gelu", [x], approximate=approximate == "tanh")
