"""ONNX reductions -> ir reduce ops; ArgMax/ArgMin -> arg_max/arg_min."""
from __future__ import annotations

import numpy as np

from ..registry import onnx_op

_REDUCE = {"ReduceMax": "reduce_max", "ReduceMin": "reduce_min", "ReduceMean": "reduce_mean",
           "ReduceSum": "reduce_sum", "ReduceProd": "reduce_prod"}
# the opset where `axes` moved from an attribute to an input
_AXES_INPUT_SINCE = {"ReduceSum": 13}


def _emit(ctx, ir_op, x, axes, keepdims, noop_with_empty_axes):
    if not axes and noop_with_empty_axes:
        return ctx.emit("assign", [x])
    return ctx.emit(ir_op, [x], dim=tuple(axes) or (0,), keep_dim=bool(keepdims), reduce_all=not axes)


def _attr_form(ir_op):
    def convert(ctx, x, *, axes=(), keepdims=1, noop_with_empty_axes=0):
        return _emit(ctx, ir_op, x, tuple(axes or ()), keepdims, noop_with_empty_axes)
    return convert


def _input_form(ir_op):
    def convert(ctx, x, axes="", *, keepdims=1, noop_with_empty_axes=0):
        ax = tuple(int(a) for a in np.asarray(ctx.const_value(axes, "axes")).reshape(-1)) if axes else ()
        return _emit(ctx, ir_op, x, ax, keepdims, noop_with_empty_axes)
    return convert


for _onnx, _ir in _REDUCE.items():
    onnx_op(_onnx)(_attr_form(_ir))
    onnx_op(_onnx, since=_AXES_INPUT_SINCE.get(_onnx, 18))(_input_form(_ir))


def _arg(ir_op):
    def convert(ctx, x, *, axis=0, keepdims=1, select_last_index=0):
        return ctx.emit(ir_op, [x], axis=axis, keepdims=bool(keepdims), select_last_index=bool(select_last_index))
    return convert


onnx_op("ArgMax")(_arg("arg_max"))
onnx_op("ArgMin")(_arg("arg_min"))
