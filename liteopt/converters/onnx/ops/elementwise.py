"""ONNX binary/n-ary element-wise ops, comparisons and Where -> ir elementwise ops (numpy broadcasting)."""
from __future__ import annotations

from ..registry import onnx_op

_BINARY = {"Add": "elementwise_add", "Sub": "elementwise_sub", "Mul": "elementwise_mul", "Div": "elementwise_div",
           "Equal": "equal", "Greater": "greater_than", "GreaterOrEqual": "greater_equal", "Less": "less_than",
           "LessOrEqual": "less_equal", "And": "logical_and", "Or": "logical_or"}


def _binary(ir_op):
    def convert(ctx, a, b):
        return ctx.emit(ir_op, [a, b])
    return convert


for _onnx, _ir in _BINARY.items():
    onnx_op(_onnx)(_binary(_ir))


@onnx_op("Pow")
def Pow(ctx, x, y):
    """x ** y; an exponent of another type is cast to the base's (ONNX allows e.g. an int exponent)."""
    if ctx.dtype(y) != ctx.dtype(x):
        y = ctx.emit("cast", [y], out_dtype=ctx.dtype(x))
    return ctx.emit("elementwise_pow", [x, y])


@onnx_op("Mod")
def Mod(ctx, a, b, *, fmod=0):
    """elementwise_mod is C fmod on floats and Python's mod (sign of the divisor) on integers."""
    if bool(fmod) != ctx.dtype(a).is_float:
        raise ctx.error(f"Mod with fmod={fmod} on {ctx.dtype(a)} is not supported")
    return ctx.emit("elementwise_mod", [a, b])


def _chain(ir_op):
    def convert(ctx, *xs):
        out = xs[0]
        for x in xs[1:]:
            out = ctx.emit(ir_op, [out, x])
        return out if len(xs) > 1 else ctx.emit("assign", [out])
    return convert


onnx_op("Max")(_chain("elementwise_max"))
onnx_op("Min")(_chain("elementwise_min"))


@onnx_op("Sum")
def Sum(ctx, *xs):
    return ctx.emit("sum", list(xs))


@onnx_op("Mean")
def Mean(ctx, *xs):
    s = ctx.emit("sum", list(xs))
    return ctx.emit("scale", [s], scale=1.0 / len(xs))


@onnx_op("Where")
def Where(ctx, cond, x, y):
    return ctx.emit("where", [cond, x, y])
