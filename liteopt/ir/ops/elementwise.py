"""Binary element-wise ops with numpy broadcasting, comparisons, `where` and the n-ary `sum`.

Paddle's `axis` attribute of elementwise ops is not used: converters produce numpy-broadcastable
operands (trailing alignment), which is what ONNX, TF and Caffe (after the converter) mean.
`act_type` is the fused epilogue written by the elementwise+activation fusion.
"""
from __future__ import annotations

import numpy as np

from ..dtypes import DType
from ..registry import TensorType, broadcast_shapes, op
from .activation import FUSED_ACT_ATTRS, apply_act


def _binary_infer(dtype: DType | None = None):
    def infer(ctx):
        return [TensorType(dtype or ctx.dtype(0), broadcast_shapes(ctx, [ctx.shape(0), ctx.shape(1)]))]
    return infer


def _same_dtype(x, y):
    return y.astype(x.dtype, copy=False) if y.dtype != x.dtype else y


def _int_div(x, y):
    """Integer division truncating towards zero (C semantics, as ONNX and TF use)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        q = np.abs(x) // np.where(y == 0, 1, np.abs(y))
        return (np.sign(x) * np.sign(y) * q).astype(x.dtype)


def _binary(name, fn, doc):
    def ref(x, y, *, act_type, act_alpha):
        with np.errstate(all="ignore"):
            return apply_act(np.asarray(fn(x, _same_dtype(x, y))).astype(x.dtype, copy=False), act_type, act_alpha)
    ref.__doc__ = doc
    ref.__name__ = name
    op(name, inputs="X Y", attrs=dict(FUSED_ACT_ATTRS), infer=_binary_infer())(ref)


_binary("elementwise_add", np.add, "x + y")
_binary("elementwise_sub", np.subtract, "x - y")
_binary("elementwise_mul", np.multiply, "x * y")
_binary("elementwise_div", lambda x, y: _int_div(x, y) if np.issubdtype(x.dtype, np.integer) else x / y,
        "x / y (integer division truncates towards zero)")
_binary("elementwise_max", np.maximum, "max(x, y)")
_binary("elementwise_min", np.minimum, "min(x, y)")
_binary("elementwise_pow", lambda x, y: np.power(x, y), "x ** y")
_binary("elementwise_mod", lambda x, y: np.fmod(x, y) if np.issubdtype(x.dtype, np.floating) else np.mod(x, y),
        "x mod y")


def _compare(name, fn, doc):
    def ref(x, y):
        return fn(x, _same_dtype(x, y))
    ref.__doc__ = doc
    ref.__name__ = name
    op(name, inputs="X Y", infer=_binary_infer(DType.BOOL))(ref)


_compare("equal", np.equal, "x == y")
_compare("greater_than", np.greater, "x > y")
_compare("greater_equal", np.greater_equal, "x >= y")
_compare("less_than", np.less, "x < y")
_compare("less_equal", np.less_equal, "x <= y")
_compare("logical_and", np.logical_and, "x and y")
_compare("logical_or", np.logical_or, "x or y")


@op("where", inputs="Condition X Y",
    infer=lambda ctx: [TensorType(ctx.dtype(1), broadcast_shapes(ctx, [ctx.shape(0), ctx.shape(1), ctx.shape(2)]))])
def where(cond, x, y):
    """x where condition else y (broadcasting)"""
    return np.where(cond, x, _same_dtype(x, y))


@op("sum", inputs="X*",
    infer=lambda ctx: [TensorType(ctx.dtype(0), broadcast_shapes(ctx, [t.shape for t in ctx.types]))])
def sum_(*xs):
    """x0 + x1 + ... (broadcasting)"""
    out = xs[0]
    for x in xs[1:]:
        out = out + _same_dtype(xs[0], x)
    return np.asarray(out).astype(xs[0].dtype, copy=False)
