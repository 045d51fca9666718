"""ONNX data-movement and shape ops -> ir tensor ops."""
from __future__ import annotations

import numpy as np

from ....ir import DType
from ..registry import onnx_op


def _ints(v) -> tuple[int, ...]:
    return tuple(int(x) for x in np.asarray(v).reshape(-1))


def _axes(ctx, name: str, what: str = "axes") -> tuple[int, ...]:
    return _ints(ctx.const_value(name, what)) if name else ()


def _maybe_const(ctx, name: str):
    """(constant value as ints, "") when known now, else ((), name) to pass as a run-time tensor."""
    v = ctx.value(name)
    return (_ints(v), "") if v is not None else ((), name)


@onnx_op("Reshape")
def Reshape(ctx, x, shape, *, allowzero=0):
    if allowzero:
        v = ctx.value(shape)
        if v is None or 0 in _ints(v):
            raise ctx.error("allowzero=1 with a zero in the target shape is not supported")
    target, tensor = _maybe_const(ctx, shape)
    return ctx.emit("reshape2", [x, tensor] if tensor else [x], shape=target)


@onnx_op("Transpose")
def Transpose(ctx, x, *, perm=None):
    return ctx.emit("transpose2", [x], axis=perm if perm is not None else tuple(reversed(range(ctx.rank(x)))))


@onnx_op("Squeeze")
def Squeeze_1(ctx, x, *, axes=()):
    return ctx.emit("squeeze2", [x], axes=axes)


@onnx_op("Squeeze", since=13)
def Squeeze_13(ctx, x, axes=""):
    return ctx.emit("squeeze2", [x], axes=_axes(ctx, axes))


@onnx_op("Unsqueeze")
def Unsqueeze_1(ctx, x, *, axes=()):
    return ctx.emit("unsqueeze2", [x], axes=axes)


@onnx_op("Unsqueeze", since=13)
def Unsqueeze_13(ctx, x, axes):
    return ctx.emit("unsqueeze2", [x], axes=_axes(ctx, axes))


@onnx_op("Flatten")
def Flatten(ctx, x, *, axis=1):
    return ctx.emit("flatten", [x], axis=axis)


@onnx_op("Concat")
def Concat(ctx, *xs, axis):
    return ctx.emit("concat", [x for x in xs if x], axis=axis)


def _split(ctx, x, axis, sections):
    n = len([o for o in ctx.node_outputs])
    if sections and len(sections) != n:
        raise ctx.error(f"split has {len(sections)} sizes for {n} outputs")
    return ctx.emit("split", [x], n_out=n, axis=axis, sections=sections, num=n)


@onnx_op("Split")
def Split_2(ctx, x, *, axis=0, split=()):
    r = _split(ctx, x, axis, tuple(split))
    return r if isinstance(r, list) else [r]


@onnx_op("Split", since=13)
def Split_13(ctx, x, split="", *, axis=0, num_outputs=0):
    r = _split(ctx, x, axis, _axes(ctx, split, "split sizes"))
    return r if isinstance(r, list) else [r]


@onnx_op("Slice")
def Slice_1(ctx, x, *, starts, ends, axes=None):
    axes = tuple(axes) if axes is not None else tuple(range(len(starts)))
    return ctx.emit("strided_slice", [x], axes=axes, starts=starts, ends=ends, strides=(1,) * len(axes))


@onnx_op("Slice", since=10)
def Slice_10(ctx, x, starts, ends, axes="", steps=""):
    s_v, s_t = _maybe_const(ctx, starts)
    e_v, e_t = _maybe_const(ctx, ends)
    st_v, st_t = _maybe_const(ctx, steps) if steps else ((), "")
    n = len(s_v) if s_v else (ctx.shape(starts) or (None,))[0]
    if not isinstance(n, int):
        raise ctx.error("the number of sliced axes must be known")
    ax = _axes(ctx, axes) if axes else tuple(range(n))
    inputs = [x, s_t, e_t, st_t]
    while inputs[-1] == "":
        inputs.pop()
    return ctx.emit("strided_slice", inputs, axes=ax, starts=s_v, ends=e_v, strides=st_v or (1,) * len(ax))


@onnx_op("Gather")
def Gather(ctx, x, indices, *, axis=0):
    return ctx.emit("gather", [x, indices], axis=axis)


@onnx_op("Expand")
def Expand(ctx, x, shape):
    target, tensor = _maybe_const(ctx, shape)
    return ctx.emit("expand_v2", [x, tensor] if tensor else [x], shape=target)


@onnx_op("Tile")
def Tile(ctx, x, repeats):
    reps, tensor = _maybe_const(ctx, repeats)
    return ctx.emit("tile", [x, tensor] if tensor else [x], repeat_times=reps)


@onnx_op("Shape")
def Shape(ctx, x, *, start=0, end=None):
    return ctx.emit("shape", [x], start=start, **({"end": end} if end is not None else {}))


@onnx_op("Cast")
def Cast(ctx, x, *, to, saturate=1):
    from ..loader import onnx_dtype
    return ctx.emit("cast", [x], out_dtype=onnx_dtype(to, f"node {ctx.node_name!r} (Cast) target type"))


@onnx_op("ConstantOfShape")
def ConstantOfShape(ctx, shape, *, value=None):
    v = np.asarray(value if value is not None else np.zeros(1, np.float32)).reshape(-1)
    dtype = DType.of(v)
    target, tensor = _maybe_const(ctx, shape)
    if tensor:
        return ctx.emit("fill_constant", [tensor], value=float(v[0]), dtype=dtype)
    return ctx.const(np.full(target, v[0], dtype.np), "constant_of_shape")


@onnx_op("Range")
def Range(ctx, start, limit, delta):
    return ctx.emit("range", [start, limit, delta])


@onnx_op("Identity")
def Identity(ctx, x):
    return x


def _dropout(ctx, x):
    if len(ctx.node_outputs) > 1 and ctx.node_outputs[1]:
        raise ctx.error("the mask output of Dropout is not supported")
    return ctx.emit("dropout", [x])


@onnx_op("Dropout")
def Dropout_1(ctx, x, *, ratio=0.5, is_test=0, seed=0):
    return _dropout(ctx, x)


@onnx_op("Dropout", since=12)
def Dropout_12(ctx, x, ratio="", training_mode="", *, seed=0):
    mode = ctx.value(training_mode) if training_mode else None
    if training_mode and (mode is None or bool(np.asarray(mode))):
        raise ctx.error("training_mode must be a constant false: only inference dropout is supported")
    return _dropout(ctx, x)


@onnx_op("Constant")
def Constant(ctx, *, value=None, value_float=None, value_floats=None, value_int=None, value_ints=None,
             sparse_value=None, value_string=None, value_strings=None):
    if sparse_value is not None or value_string is not None or value_strings is not None:
        raise ctx.error("sparse and string constants are not supported")
    for v, dtype in ((value, None), (value_float, np.float32), (value_floats, np.float32), (value_int, np.int64),
                     (value_ints, np.int64)):
        if v is not None:
            arr = np.asarray(v, dtype=dtype)
            if arr.dtype == np.float64:
                arr = arr.astype(np.float32)
            return ctx.const(arr, "constant")
    raise ctx.error("Constant without a value")
