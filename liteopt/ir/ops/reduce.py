"""Reductions (Paddle Lite names): reduce_{max,min,mean,sum,prod} over `dim` (every dim when `reduce_all`
or `dim` is empty), arg_max / arg_min (int64 indices along `axis`) and top_k_v2 (the k largest or smallest).

The result keeps X's dtype. Integer mean truncates towards zero (sum / count in C, as onnxruntime).
Over an empty set: max gives the dtype's lowest value (-inf), min its highest, sum and mean 0, prod 1.
Max/min propagate NaN (numpy); arg_max/arg_min scan in order and keep the first extremum (the last
with `select_last_index`), so a NaN never wins unless it comes first (onnxruntime's result).
"""
from __future__ import annotations

import numpy as np

from ..dtypes import DType
from ..registry import InferCtx, TensorType, normalize_axis, op

REDUCE_ATTRS = {"dim": (0,), "keep_dim": False, "reduce_all": False}


def reduce_axes(ndim: int, dim, reduce_all: bool) -> tuple[int, ...]:
    """The reduced axes, sorted and non-negative."""
    return tuple(range(ndim)) if reduce_all or not dim else tuple(sorted({d % ndim for d in dim}))


def reduce_shape(shape: tuple, axes: tuple[int, ...], keep_dim: bool) -> tuple:
    if keep_dim:
        return tuple(1 if i in axes else d for i, d in enumerate(shape))
    return tuple(d for i, d in enumerate(shape) if i not in axes)


def _reduce_infer(ctx: InferCtx):
    x = ctx.shape(0)
    if x is None:
        return [TensorType(ctx.dtype(0), None)]
    a = ctx.attrs
    if not a["reduce_all"]:
        for d in a["dim"]:
            normalize_axis(ctx, d, len(x))
    axes = reduce_axes(len(x), a["dim"], a["reduce_all"]) if x else ()
    return [TensorType(ctx.dtype(0), reduce_shape(x, axes, a["keep_dim"]))]


def extreme(dtype: np.dtype, high: bool):
    """The dtype's highest (high) or lowest value: the identity of min (max)."""
    if dtype.kind == "f":
        return np.inf if high else -np.inf
    if dtype.kind == "b":
        return high
    info = np.iinfo(dtype)
    return info.max if high else info.min


def _max(x, axis, keepdims):
    return np.max(x, axis=axis, keepdims=keepdims, initial=extreme(x.dtype, False))


def _min(x, axis, keepdims):
    return np.min(x, axis=axis, keepdims=keepdims, initial=extreme(x.dtype, True))


def _sum(x, axis, keepdims):
    return np.sum(x, axis=axis, keepdims=keepdims, dtype=np.float64 if x.dtype.kind == "f" else None)


def _mean(x, axis, keepdims):
    """sum / count; integers truncate towards zero; the mean of nothing is 0 (onnxruntime)."""
    count = max(int(np.prod([x.shape[a] for a in axis])), 1) if x.ndim else 1
    s = _sum(x, axis, keepdims)
    if x.dtype.kind in "iu":
        return np.sign(s) * (np.abs(s) // count)
    return s / count


def _prod(x, axis, keepdims):
    return np.prod(x, axis=axis, keepdims=keepdims)


def _reduce(name, fn, doc):
    def ref(x, *, dim, keep_dim, reduce_all):
        axes = reduce_axes(x.ndim, dim, reduce_all) if x.ndim else ()
        with np.errstate(all="ignore"):
            return np.asarray(fn(x, axes, keep_dim)).astype(x.dtype)
    ref.__doc__ = doc
    ref.__name__ = name
    op(name, attrs=REDUCE_ATTRS, infer=_reduce_infer)(ref)


_reduce("reduce_max", _max, "maximum over `dim`")
_reduce("reduce_min", _min, "minimum over `dim`")
_reduce("reduce_mean", _mean, "mean over `dim` (integers truncate)")
_reduce("reduce_sum", _sum, "sum over `dim`")
_reduce("reduce_prod", _prod, "product over `dim`")


def _arg_infer(ctx: InferCtx):
    x = ctx.shape(0)
    if x is None:
        return [TensorType(DType.INT64, None)]
    a = normalize_axis(ctx, ctx.attrs["axis"], len(x))
    return [TensorType(DType.INT64, reduce_shape(x, (a,), ctx.attrs["keepdims"]))]


def _arg(name, fn, nan_as, doc):
    def ref(x, *, axis, keepdims, select_last_index):
        a = axis % x.ndim
        first_nan = None
        if x.dtype.kind == "f" and x.shape[a] and np.isnan(x).any():
            first_nan = np.isnan(np.take(x, 0, axis=a))
            x = np.where(np.isnan(x), nan_as, x)
        if select_last_index:
            r = x.shape[a] - 1 - fn(np.flip(x, axis=a), axis=a)
        else:
            r = fn(x, axis=a)
        if first_nan is not None:
            r = np.where(first_nan, 0, r)
        r = np.asarray(r).astype(np.int64)
        return np.expand_dims(r, a) if keepdims else r
    ref.__doc__ = doc
    ref.__name__ = name
    op(name, attrs={"axis": 0, "keepdims": True, "select_last_index": False}, infer=_arg_infer)(ref)


_arg("arg_max", np.argmax, -np.inf, "index of the maximum along `axis` (int64)")
_arg("arg_min", np.argmin, np.inf, "index of the minimum along `axis` (int64)")


def _top_k_infer(ctx: InferCtx):
    """k from the K input's value when known, the attribute without one; a K known only at run time: a symbol."""
    x = ctx.shape(0)
    given = len(ctx.node.inputs) > 1 and bool(ctx.node.inputs[1])
    kv = ctx.value(1) if given else None
    if x is None:
        return [TensorType(ctx.dtype(0), None), TensorType(DType.INT64, None)]
    a = normalize_axis(ctx, ctx.attrs["axis"], len(x))
    if given and kv is None:
        dim = ctx.fresh(0)
    else:
        dim = int(np.asarray(kv).reshape(-1)[0]) if given else ctx.attrs["k"]
        if dim < 0 or (isinstance(x[a], int) and dim > x[a]):
            raise ctx.error(f"k = {dim} for an axis of size {x[a]}")
    shape = tuple(x[:a]) + (dim,) + tuple(x[a + 1:])
    return [TensorType(ctx.dtype(0), shape), TensorType(DType.INT64, shape)]


@op("top_k_v2", inputs="X K?", outputs=("Out", "Indices"), attrs={"k": 1, "axis": -1, "largest": True, "sorted": True},
    infer=_top_k_infer)
def top_k_v2(x, k_t, *, k, axis, largest, sorted):
    """the k largest (or smallest) values along `axis` and their int64 indices, in order; of equal values the
    lower index first (onnxruntime's TopK); K as a tensor input wins over the attribute"""
    k = int(np.asarray(k_t).reshape(-1)[0]) if k_t is not None else k
    a = axis % x.ndim
    order = np.argsort(-x if largest else x, axis=a, kind="stable")
    idx = np.take(order, np.arange(k), axis=a)
    return np.take_along_axis(x, idx, axis=a), idx.astype(np.int64)
