"""ONNX data-movement and shape ops -> ir tensor ops (reshape2, transpose2, squeeze2, unsqueeze2, flatten,
concat, split, strided_slice, gather, expand_v2, tile, shape, cast, fill_constant, range, dropout).

Shapes, starts/ends/steps and repeats that are known at conversion time (constants, or values derived
from known shapes) become attributes; otherwise the tensor is wired to the op's optional input, so
run-time shape arithmetic works. Axes must be known: they decide the output rank. Axes are made
non-negative whenever the input rank is known.
"""
from __future__ import annotations

import numpy as np

from ....ir import DType
from ....ir.dtypes import compute_dtype, narrow
from ....ir.ops.tensor import flatten_axis
from ..registry import onnx_op


def _ints(v) -> tuple[int, ...]:
    return tuple(int(x) for x in np.asarray(v).reshape(-1))


def _const_ints(ctx, name: str, what: str) -> tuple[int, ...]:
    """A list input that must be constant (axes, split sizes); () when the input is absent."""
    return _ints(ctx.const_value(name, what)) if name else ()


def _maybe_const(ctx, name: str) -> tuple[tuple[int, ...], str]:
    """(value, "") when the input's value is known now, else ((), name): wire it as a run-time tensor."""
    v = ctx.value(name)
    return (_ints(v), "") if v is not None else ((), name)


def _axis(ctx, x: str, axis: int, extra: int = 0) -> int:
    """`axis` made non-negative against rank(x) + extra when that rank is known (else left as is)."""
    shape = ctx.shape(x)
    if shape is None:
        return axis
    rank = len(shape) + extra
    if not -rank <= axis < max(rank, 1):
        raise ctx.error(f"axis {axis} out of range for rank {rank}")
    return axis % rank if rank else 0


def _axes(ctx, x: str, axes, extra: int = 0) -> tuple[int, ...]:
    return tuple(_axis(ctx, x, a, extra) for a in axes)


def _with_tensors(x: str, *tensors: str) -> list[str]:
    """Inputs [x, *tensors] without trailing absent ones ("" keeps a position in the middle)."""
    inputs = [x, *tensors]
    while inputs[-1] == "":
        inputs.pop()
    return inputs


# --- reshape family -----------------------------------------------------------------------------

@onnx_op("Reshape")
def Reshape(ctx, x, shape, *, allowzero=0):
    """Reshape-5 and -14; allowzero=1 is the same op unless the target has a 0 (or is not known)."""
    target, tensor = _maybe_const(ctx, shape)
    if allowzero and (tensor or 0 in target):
        raise ctx.error("allowzero=1 is supported only with a constant target shape without zeros")
    return ctx.emit("reshape2", _with_tensors(x, tensor), shape=target)


@onnx_op("Squeeze")
def Squeeze_1(ctx, x, *, axes=()):
    return ctx.emit("squeeze2", [x], axes=_axes(ctx, x, axes))


@onnx_op("Squeeze", since=13)
def Squeeze_13(ctx, x, axes=""):
    return ctx.emit("squeeze2", [x], axes=_axes(ctx, x, _const_ints(ctx, axes, "axes")))


@onnx_op("Unsqueeze")
def Unsqueeze_1(ctx, x, *, axes):
    return ctx.emit("unsqueeze2", [x], axes=_axes(ctx, x, axes, extra=len(axes)))


@onnx_op("Unsqueeze", since=13)
def Unsqueeze_13(ctx, x, axes):
    a = _const_ints(ctx, axes, "axes")
    return ctx.emit("unsqueeze2", [x], axes=_axes(ctx, x, a, extra=len(a)))


@onnx_op("Flatten")
def Flatten(ctx, x, *, axis=1):
    shape = ctx.shape(x)
    if shape is not None:
        try:
            axis = flatten_axis(axis, len(shape))
        except ValueError as e:
            raise ctx.error(str(e)) from None
    return ctx.emit("flatten", [x], axis=axis)


# --- transpose / concat / split -----------------------------------------------------------------

@onnx_op("Transpose")
def Transpose(ctx, x, *, perm=None):
    """The default perm reverses the dims."""
    return ctx.emit("transpose2", [x], axis=tuple(perm) if perm is not None else tuple(reversed(range(ctx.rank(x)))))


@onnx_op("DepthToSpace")
def DepthToSpace(ctx, x, *, blocksize, mode="DCR"):
    return ctx.emit("pixel_shuffle", [x], blocksize=blocksize, mode=mode)


@onnx_op("SpaceToDepth")
def SpaceToDepth(ctx, x, *, blocksize):
    return ctx.emit("space_to_depth", [x], blocksize=blocksize)


@onnx_op("Concat")
def Concat(ctx, *xs, axis):
    xs = [x for x in xs if x]
    return ctx.emit("concat", xs, axis=_axis(ctx, xs[0], axis))


def _split(ctx, x, axis: int, sections: tuple[int, ...]) -> list[str]:
    """One split node with one output per ONNX output (unused ones included: they keep positions)."""
    n = len(ctx.node_outputs)
    if sections and len(sections) != n:
        raise ctx.error(f"{len(sections)} split sizes for {n} outputs")
    r = ctx.emit("split", [x], n_out=n, axis=_axis(ctx, x, axis), sections=sections, num=n)
    return r if isinstance(r, list) else [r]


@onnx_op("Split")
def Split_2(ctx, x, *, axis=0, split=()):
    return _split(ctx, x, axis, tuple(split))


@onnx_op("Split", since=13)
def Split_13(ctx, x, split="", *, axis=0):
    return _split(ctx, x, axis, _const_ints(ctx, split, "split sizes"))


@onnx_op("Split", since=18)
def Split_18(ctx, x, split="", *, axis=0, num_outputs=None):
    """num_outputs: that many parts of ceil(size / num_outputs), the last one smaller."""
    if num_outputs is not None and num_outputs != len(ctx.node_outputs):
        raise ctx.error(f"num_outputs={num_outputs} but the node has {len(ctx.node_outputs)} outputs")
    return _split(ctx, x, axis, _const_ints(ctx, split, "split sizes"))


# --- slice / gather -----------------------------------------------------------------------------

@onnx_op("Slice")
def Slice_1(ctx, x, *, starts, ends, axes=None):
    """Slice-1: starts/ends/axes attributes, steps 1."""
    axes = tuple(axes) if axes is not None else tuple(range(len(starts)))
    return ctx.emit("strided_slice", [x], axes=_axes(ctx, x, axes), starts=starts, ends=ends,
                    strides=(1,) * len(axes))


@onnx_op("Slice", since=10)
def Slice_10(ctx, x, starts, ends, axes="", steps=""):
    """Slice-10+: starts/ends/steps may be run-time tensors; axes must be constant."""
    s_v, s_t = _maybe_const(ctx, starts)
    e_v, e_t = _maybe_const(ctx, ends)
    st_v, st_t = _maybe_const(ctx, steps) if steps else ((), "")
    if axes:
        ax = _const_ints(ctx, axes, "axes")
    else:
        n = len(s_v) if not s_t else (ctx.shape(starts) or (None,))[0]
        if not isinstance(n, int):
            raise ctx.error("without axes, the length of starts must be known")
        ax = tuple(range(n))
    if 0 in st_v:
        raise ctx.error("slice step 0")
    return ctx.emit("strided_slice", _with_tensors(x, s_t, e_t, st_t), axes=_axes(ctx, x, ax),
                    starts=s_v, ends=e_v, strides=st_v or ((1,) * len(ax) if not st_t else ()))


@onnx_op("Gather")
def Gather(ctx, x, indices, *, axis=0):
    return ctx.emit("gather", [x, indices], axis=_axis(ctx, x, axis))


@onnx_op("ScatterND")
def ScatterND(ctx, data, indices, updates, *, reduction="none"):
    """(reduction: opset 16 and later)"""
    return ctx.emit("scatter_nd", [data, indices, updates], reduction=reduction)


# --- expand / tile ------------------------------------------------------------------------------

@onnx_op("Expand")
def Expand(ctx, x, shape):
    target, tensor = _maybe_const(ctx, shape)
    return ctx.emit("expand_v2", _with_tensors(x, tensor), shape=target)


@onnx_op("Tile")
def Tile(ctx, x, repeats):
    reps, tensor = _maybe_const(ctx, repeats)
    return ctx.emit("tile", _with_tensors(x, tensor), repeat_times=reps)


# --- shape, cast, constants ---------------------------------------------------------------------

@onnx_op("Shape")
def Shape_1(ctx, x):
    return ctx.emit("shape", [x])


@onnx_op("Shape", since=15)
def Shape_15(ctx, x, *, start=0, end=None):
    """start/end select dims[start:end] (negative from the back, clamped)."""
    return ctx.emit("shape", [x], start=start, **({"end": end} if end is not None else {}))


def _target_dtype(ctx, to: int) -> DType:
    from ..loader import onnx_dtype
    return onnx_dtype(to, f"node {ctx.node_name!r} (Cast) target type")


@onnx_op("Cast")
def Cast_1(ctx, x, *, to):
    return ctx.emit("cast", [x], out_dtype=_target_dtype(ctx, to))


@onnx_op("Cast", since=19)
def Cast_19(ctx, x, *, to, saturate=1):
    """saturate only concerns float8 targets, which liteopt has no dtype for (onnx_dtype says so)."""
    return ctx.emit("cast", [x], out_dtype=_target_dtype(ctx, to))


@onnx_op("ConstantOfShape")
def ConstantOfShape(ctx, shape, *, value=None):
    """value: a 1-element tensor (default float32 0); its dtype is the output's (a double's: float32)."""
    v = np.asarray(value if value is not None else np.zeros(1, np.float32)).reshape(-1)
    if v.size != 1:
        raise ctx.error(f"value must have one element, got {v.size}")
    try:
        dtype = compute_dtype(v.dtype)
    except ValueError as e:
        raise ctx.error(str(e)) from None
    target, tensor = _maybe_const(ctx, shape)
    return ctx.emit("fill_constant", [tensor] if tensor else [], shape=target, value=float(v[0]), dtype=dtype)


@onnx_op("Range")
def Range(ctx, start, limit, delta):
    return ctx.emit("range", [start, limit, delta])


@onnx_op("Identity")
def Identity(ctx, x):
    return x


def _dropout(ctx, x):
    if len(ctx.node_outputs) > 1 and ctx.node_outputs[1]:
        raise ctx.error("the mask output of Dropout is not supported (inference only)")
    return ctx.emit("dropout", [x])


@onnx_op("Dropout")
def Dropout_1(ctx, x, *, ratio=0.5, is_test=0, seed=0):
    return _dropout(ctx, x)


@onnx_op("Dropout", since=12)
def Dropout_12(ctx, x, ratio="", training_mode="", *, seed=0):
    """Inference only: training_mode must be absent or a constant false."""
    if training_mode:
        mode = ctx.value(training_mode)
        if mode is None or bool(np.asarray(mode)):
            raise ctx.error("training_mode must be absent or a constant false: only inference dropout is supported")
    return _dropout(ctx, x)


_CONSTANT_KINDS = {"value_float": np.float32, "value_floats": np.float32, "value_int": np.int64,
                   "value_ints": np.int64}


@onnx_op("Constant")
def Constant(ctx, *, value=None, value_float=None, value_floats=None, value_int=None, value_ints=None,
             sparse_value=None, value_string=None, value_strings=None):
    """A constant tensor (no IR node). float64 becomes float32 and unsigned ints int64, as for initializers."""
    if sparse_value is not None or value_string is not None or value_strings is not None:
        raise ctx.error("sparse and string constants are not supported")
    given = {"value": value, "value_float": value_float, "value_floats": value_floats, "value_int": value_int,
             "value_ints": value_ints}
    given = {k: v for k, v in given.items() if v is not None}
    if len(given) != 1:
        raise ctx.error(f"Constant needs exactly one value attribute, got {', '.join(given) or 'none'}")
    (kind, v), = given.items()
    arr = narrow(np.asarray(v, dtype=_CONSTANT_KINDS.get(kind)))
    try:
        DType.of(arr)
    except ValueError as e:
        raise ctx.error(str(e)) from None
    return ctx.const(arr, "constant")
