"""Binary element-wise ops with numpy broadcasting, comparisons, `where` and the n-ary `sum`.

Paddle's `axis` attribute of elementwise ops is not used: converters produce numpy-broadcastable
operands (trailing alignment), which is what ONNX, TF and Caffe (after the converter) mean.
The result has X's dtype; Y is converted to X's dtype first (except for `elementwise_pow`, see there).
Integer semantics follow onnxruntime: division truncates towards zero, overflow wraps.
`act_type`/`act_alpha` are the fused epilogue written by the elementwise+activation fusion.
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


def _is_int(x) -> bool:
    return x.dtype.kind in "iu"


def _div(x, y):
    """x / y; on integers truncating towards zero (C semantics, as ONNX and TF use), x / 0 = 0."""
    if not _is_int(x):
        return x / y
    q = np.abs(x) // np.where(y == 0, 1, np.abs(y))
    return np.where(y == 0, 0, np.where((x < 0) != (y < 0), -q, q))


def _pow(x, y):
    """x ** y in x's dtype. Integer x: computed in float64 and truncated towards zero, whatever y's
    dtype (onnxruntime's static_cast<T>(std::pow(x, y)): 2 ** -1 = 0, 7 ** 0.5 = 2); float x: y is
    converted to x's dtype."""
    if _is_int(x):
        return np.power(x.astype(np.float64), y.astype(np.float64))
    return np.power(x, _same_dtype(x, y))


def _mod(x, y, *, fmod):
    """x mod y: fmod=False gives the sign of y (Python/Paddle elementwise_mod, ONNX Mod fmod=0),
    fmod=True the sign of x (C fmod, ONNX Mod fmod=1); x mod 0 = 0 on integers."""
    if _is_int(x):
        safe = np.where(y == 0, 1, y)
        r = np.fmod(x, safe) if fmod else np.mod(x, safe)
        return np.where(y == 0, 0, r)
    return np.fmod(x, y) if fmod else np.mod(x, y)


def _binary(name, fn, doc, extra_attrs=None, cast_y=True):
    attrs = dict(FUSED_ACT_ATTRS, **(extra_attrs or {}))

    def ref(x, y, *, act_type, act_alpha, **kw):
        with np.errstate(all="ignore"):
            r = np.asarray(fn(x, _same_dtype(x, y) if cast_y else y, **kw)).astype(x.dtype, copy=False)
        return apply_act(r, act_type, act_alpha)
    ref.__doc__ = doc
    ref.__name__ = name
    op(name, inputs="X Y", attrs=attrs, infer=_binary_infer(), inplace=True)(ref)


_binary("elementwise_add", np.add, "x + y")
_binary("elementwise_sub", np.subtract, "x - y")
_binary("elementwise_mul", np.multiply, "x * y")
_binary("elementwise_div", _div, "x / y (integer division truncates towards zero)")
_binary("elementwise_max", np.maximum, "max(x, y) (NaN propagates)")
_binary("elementwise_min", np.minimum, "min(x, y) (NaN propagates)")
_binary("elementwise_pow", _pow, "x ** y in x's dtype (integers: via float64, truncated)", cast_y=False)
_binary("elementwise_mod", _mod, "x mod y (sign of y; with fmod: sign of x)", extra_attrs={"fmod": False})


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
    return np.where(cond.astype(bool, copy=False), x, _same_dtype(x, y))


@op("sum", inputs="X*",
    infer=lambda ctx: [TensorType(ctx.dtype(0), broadcast_shapes(ctx, [t.shape for t in ctx.types]))])
def sum_(*xs):
    """x0 + x1 + ... (broadcasting), in x0's dtype"""
    out = np.array(xs[0])
    for x in xs[1:]:
        out = out + _same_dtype(xs[0], x)
    return np.asarray(out).astype(xs[0].dtype, copy=False)
