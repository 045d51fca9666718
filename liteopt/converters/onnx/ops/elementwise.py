"""ONNX binary/n-ary element-wise ops, comparisons and Where -> ir elementwise ops (numpy broadcasting).

Opsets 7..21 only widened the type lists of these ops; the opset-1..6 `broadcast`/`axis` attributes
are not accepted (the signatures do not name them).
"""
from __future__ import annotations

from ..registry import onnx_op

_BINARY = {"Add": "elementwise_add", "Sub": "elementwise_sub", "Mul": "elementwise_mul", "Div": "elementwise_div",
           "Equal": "equal", "Greater": "greater_than", "GreaterOrEqual": "greater_equal", "Less": "less_than",
           "LessOrEqual": "less_equal", "And": "logical_and", "Or": "logical_or"}
_VARIADIC = {"Max": "elementwise_max", "Min": "elementwise_min"}


def _binary(ir_op):
    def convert(ctx, a, b):
        return ctx.emit(ir_op, [a, b])
    convert.__doc__ = f"-> {ir_op} (on integers, Div truncates towards zero)"
    return convert


for _onnx, _ir in _BINARY.items():
    onnx_op(_onnx)(_binary(_ir))


@onnx_op("Pow")
def Pow(ctx, x, y):
    """x ** y in x's type; an exponent of another type (ONNX allows e.g. an int exponent, or a float one on
    an int base) is handled by elementwise_pow itself (float base: exponent converted; int base: float64)."""
    return ctx.emit("elementwise_pow", [x, y])


@onnx_op("Mod")
def Mod(ctx, a, b, *, fmod=0):
    """fmod=0: the sign of the divisor (integers; ONNX requires fmod=1 on floats, we also accept 0 with the
    same meaning), fmod=1: C fmod, the sign of the dividend."""
    return ctx.emit("elementwise_mod", [a, b], fmod=bool(fmod))


def _chain(ir_op):
    def convert(ctx, *xs):
        out = xs[0]
        for x in xs[1:]:
            out = ctx.emit(ir_op, [out, x])
        return out if len(xs) > 1 else ctx.emit("assign", [out])
    convert.__doc__ = f"a chain of {ir_op} (broadcasting); one input -> assign"
    return convert


for _onnx, _ir in _VARIADIC.items():
    onnx_op(_onnx)(_chain(_ir))


@onnx_op("Sum")
def Sum(ctx, *xs):
    return ctx.emit("sum", list(xs))


@onnx_op("Mean")
def Mean(ctx, *xs):
    """sum / n as sum then scale by 1/n"""
    s = ctx.emit("sum", list(xs))
    return ctx.emit("scale", [s], scale=1.0 / len(xs)) if len(xs) > 1 else s


@onnx_op("Where")
def Where(ctx, cond, x, y):
    return ctx.emit("where", [cond, x, y])
