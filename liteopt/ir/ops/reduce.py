"""Reductions (Paddle Lite names): reduce_{max,min,mean,sum,prod} over `dim` (all dims when reduce_all),
and arg_max / arg_min (int64 indices)."""
from __future__ import annotations

import numpy as np

from ..dtypes import DType
from ..registry import InferCtx, TensorType, normalize_axis, op

REDUCE_ATTRS = {"dim": (0,), "keep_dim": False, "reduce_all": False}


def reduce_axes(ndim: int, dim, reduce_all: bool) -> tuple[int, ...]:
    return tuple(range(ndim)) if reduce_all or not dim else tuple(sorted({d % ndim for d in dim}))


def _reduce_infer(ctx: InferCtx):
    x = ctx.shape(0)
    if x is None:
        return [TensorType(ctx.dtype(0), None)]
    a = ctx.attrs
    for d in a["dim"]:
        normalize_axis(ctx, d, max(len(x), 1))
    axes = reduce_axes(len(x), a["dim"], a["reduce_all"]) if x else ()
    if a["keep_dim"]:
        return [TensorType(ctx.dtype(0), tuple(1 if i in axes else d for i, d in enumerate(x)))]
    return [TensorType(ctx.dtype(0), tuple(d for i, d in enumerate(x) if i not in axes))]


def _reduce(name, fn, doc):
    def ref(x, *, dim, keep_dim, reduce_all):
        axes = reduce_axes(x.ndim, dim, reduce_all) if x.ndim else None
        return np.asarray(fn(x, axis=axes, keepdims=keep_dim)).astype(x.dtype)
    ref.__doc__ = doc
    ref.__name__ = name
    op(name, attrs=REDUCE_ATTRS, infer=_reduce_infer)(ref)


_reduce("reduce_max", np.max, "maximum over `dim`")
_reduce("reduce_min", np.min, "minimum over `dim`")
_reduce("reduce_mean", lambda x, **kw: np.mean(x, dtype=np.float64, **kw), "mean over `dim`")
_reduce("reduce_sum", lambda x, **kw: np.sum(x, dtype=np.float64 if x.dtype.kind == "f" else None, **kw),
        "sum over `dim`")
_reduce("reduce_prod", np.prod, "product over `dim`")


def _arg_infer(ctx: InferCtx):
    x = ctx.shape(0)
    if x is None:
        return [TensorType(DType.INT64, None)]
    a = normalize_axis(ctx, ctx.attrs["axis"], len(x))
    if ctx.attrs["keepdims"]:
        return [TensorType(DType.INT64, tuple(1 if i == a else d for i, d in enumerate(x)))]
    return [TensorType(DType.INT64, tuple(d for i, d in enumerate(x) if i != a))]


def _arg(name, fn, doc):
    def ref(x, *, axis, keepdims, select_last_index):
        a = axis % x.ndim
        if select_last_index:
            r = x.shape[a] - 1 - fn(np.flip(x, axis=a), axis=a)
        else:
            r = fn(x, axis=a)
        r = r.astype(np.int64)
        return np.expand_dims(r, a) if keepdims else r
    ref.__doc__ = doc
    ref.__name__ = name
    op(name, attrs={"axis": 0, "keepdims": True, "select_last_index": False}, infer=_arg_infer)(ref)


_arg("arg_max", np.argmax, "index of the maximum along `axis` (int64)")
_arg("arg_min", np.argmin, "index of the minimum along `axis` (int64)")
