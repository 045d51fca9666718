"""ONNX reductions -> ir reduce ops; ArgMax/ArgMin -> arg_max/arg_min.

`axes` is an attribute up to opset 12 (ReduceSum) / 17 (the others) and an optional constant input from
then on, where `noop_with_empty_axes=1` turns "no axes" into the identity instead of "every axis".
Axes are made non-negative when the input rank is known. ReduceL1/L2/SumSquare/LogSum/LogSumExp are
decomposed into unary ops around reduce_sum (LogSumExp subtracts the maximum first, like onnxruntime).
"""
from __future__ import annotations

import numpy as np

from ..registry import onnx_op

_REDUCE = {"ReduceMax": "reduce_max", "ReduceMin": "reduce_min", "ReduceMean": "reduce_mean",
           "ReduceSum": "reduce_sum", "ReduceProd": "reduce_prod"}
# the opset where `axes` moved from an attribute to an input
_AXES_INPUT_SINCE = {"ReduceSum": 13}


def _axes(ctx, x, axes) -> tuple[int, ...]:
    """`axes` non-negative when the rank of x is known (else as given); out of range -> error."""
    shape = ctx.shape(x)
    if shape is None:
        return tuple(axes)
    rank = len(shape)
    for a in axes:
        if not -rank <= a < max(rank, 1):
            raise ctx.error(f"axis {a} out of range for rank {rank}")
    return tuple(a % rank if rank else 0 for a in axes)


def _reduce(ctx, ir_op, x, axes, keepdims, noop_with_empty_axes=0):
    """One reduce node over `axes` (all when empty, or the identity with noop_with_empty_axes)."""
    if not axes and noop_with_empty_axes:
        return ctx.emit("assign", [x])
    return ctx.emit(ir_op, [x], dim=_axes(ctx, x, axes) or (0,), keep_dim=bool(keepdims), reduce_all=not axes)


def _axes_input(ctx, axes) -> tuple[int, ...]:
    if not axes:
        return ()
    return tuple(int(a) for a in np.asarray(ctx.const_value(axes, "axes")).reshape(-1))


# The decomposed reductions: (unary ops before reduce_sum, unary ops after).
_SUM_BASED = {"ReduceSumSquare": (("square",), ()), "ReduceL1": (("abs",), ()), "ReduceL2": (("square",), ("sqrt",)),
              "ReduceLogSum": ((), ("log",))}


def _sum_based(ctx, onnx_op_type, x, axes, keepdims, noop):
    """unary ops, reduce_sum, unary ops; with noop_with_empty_axes and no axes only the unary ops (as
    onnxruntime: ReduceL2 is then |x|)."""
    before, after = _SUM_BASED[onnx_op_type]
    y = x
    for u in before:
        y = ctx.emit(u, [y])
    if axes or not noop:
        y = _reduce(ctx, "reduce_sum", y, axes, keepdims)
    for u in after:
        y = ctx.emit(u, [y])
    return y if y != x else ctx.emit("assign", [x])


def _log_sum_exp(ctx, x, axes, keepdims, noop):
    """log(sum(exp(x - m))) + m with m the maximum over the axes (stable for large x)."""
    if not axes and noop:
        return ctx.emit("assign", [x])
    m = _reduce(ctx, "reduce_max", x, axes, True)
    e = ctx.emit("exp", [ctx.emit("elementwise_sub", [x, m])])
    s = ctx.emit("log", [_reduce(ctx, "reduce_sum", e, axes, keepdims)])
    return ctx.emit("elementwise_add", [s, m if keepdims else _reduce(ctx, "reduce_max", x, axes, False)])


def _emitter(onnx_op_type):
    """(ctx, x, axes, keepdims, noop) -> output, for any of the reductions."""
    if onnx_op_type in _REDUCE:
        return lambda ctx, x, axes, keepdims, noop: _reduce(ctx, _REDUCE[onnx_op_type], x, axes, keepdims, noop)
    if onnx_op_type == "ReduceLogSumExp":
        return _log_sum_exp
    return lambda ctx, x, axes, keepdims, noop: _sum_based(ctx, onnx_op_type, x, axes, keepdims, noop)


def _attr_form(emit):
    def convert(ctx, x, *, axes=(), keepdims=1):
        return emit(ctx, x, tuple(axes or ()), keepdims, 0)
    return convert


def _input_form(emit):
    def convert(ctx, x, axes="", *, keepdims=1, noop_with_empty_axes=0):
        return emit(ctx, x, _axes_input(ctx, axes), keepdims, noop_with_empty_axes)
    return convert


for _onnx in (*_REDUCE, *_SUM_BASED, "ReduceLogSumExp"):
    onnx_op(_onnx)(_attr_form(_emitter(_onnx)))
    onnx_op(_onnx, since=_AXES_INPUT_SINCE.get(_onnx, 18))(_input_form(_emitter(_onnx)))


def _arg(ir_op):
    def convert(ctx, x, *, axis=0, keepdims=1, select_last_index=0):
        (a,) = _axes(ctx, x, (axis,))
        return ctx.emit(ir_op, [x], axis=a, keepdims=bool(keepdims), select_last_index=bool(select_last_index))
    convert.__doc__ = f"-> {ir_op} (int64 indices; select_last_index picks the last of equal extrema)"
    return convert


onnx_op("ArgMax")(_arg("arg_max"))
onnx_op("ArgMin")(_arg("arg_min"))


@onnx_op("TopK")
def TopK_1(ctx, x, *, k, axis=-1):
    return ctx.emit("top_k_v2", [x], k=k, axis=_axes(ctx, x, (axis,))[0], n_out=2)


@onnx_op("TopK", since=10)
def TopK_10(ctx, x, k, *, axis=-1, largest=1, sorted=1):
    """K a tensor input (its value known now: the attribute)."""
    kv = ctx.value(k)
    attrs = dict(axis=_axes(ctx, x, (axis,))[0], largest=bool(largest), sorted=bool(sorted))
    if kv is not None:
        return ctx.emit("top_k_v2", [x], k=int(np.asarray(kv).reshape(-1)[0]), n_out=2, **attrs)
    return ctx.emit("top_k_v2", [x, k], n_out=2, **attrs)
