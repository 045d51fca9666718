"""TF graph plumbing and tensor ops: Placeholder, Const, Identity, NoOp, Pad family, ConcatV2, Reshape,
Squeeze, ExpandDims, Shape, StridedSlice, Pack, Transpose, Cast."""
from __future__ import annotations

import numpy as np

from ....ir import DType, Tensor
from ...shapes import pin_shapes
from ..registry import NCHW, TFValue, inverse, ir_dtype, tf_op

INT_MAX = 2**63 - 1  # "to the end" for strided_slice, whatever the step's sign


def _dtype(ctx, tf_type: int) -> DType:
    try:
        return ir_dtype(tf_type)
    except ValueError as e:
        raise ctx.error(str(e)) from None


def _ints(ctx, v: TFValue, what: str) -> list[int]:
    return [int(x) for x in ctx.const_of(v, what).reshape(-1)]


@tf_op("Placeholder")
def Placeholder(ctx, *, dtype, shape=None):
    """A graph input named after the node; unknown dims become symbols `name:k`; --input_shape overrides."""
    name = ctx.node_name
    dims = None if shape is None else tuple(d if d >= 0 else f"{name}:{k}" for k, d in enumerate(shape))
    ctx.graph.tensors[name] = Tensor(name, _dtype(ctx, dtype), dims)
    ctx.graph.inputs.append(name)
    if name in ctx.input_shapes:
        pin_shapes(ctx.graph, {name: ctx.input_shapes[name]}, "the model")
    return TFValue(name)


@tf_op("Const")
def Const(ctx, *, value, dtype=None):
    return TFValue(ctx.const(value, "value", dtype=DType.of(value)))


@tf_op("Identity", "StopGradient", "Snapshot")
def Identity(ctx, x):
    return x


@tf_op("PlaceholderWithDefault")
def PlaceholderWithDefault(ctx, x, *, shape=None):
    """not a graph input: a frozen graph is run with its default"""
    return x


@tf_op("NoOp")
def NoOp(ctx):
    return []


# --- padding ---

def _pad(ctx, x, paddings, mode: str, value: float = 0.0) -> TFValue:
    """paddings (rank, 2) in TF's dim order, reordered to x's layout. A pad of only dims 1 and 2 of a 4-D
    tensor (ZeroPadding2D on NHWC) runs in NCHW, next to the conv or pool it feeds (fuse_pad merges them)."""
    p = ctx.const_of(paddings, "paddings").astype(np.int64).reshape(-1, 2)
    r = ctx.rank_of(x)
    if p.shape[0] != r:
        raise ctx.error(f"paddings of shape {p.shape} for an input of rank {r}")
    if r == 4 and not x.perm and not p[0].any() and not p[3].any():
        x = TFValue(ctx.in_layout(x, NCHW), NCHW)
    order = x.perm or range(r)
    ours = tuple(int(v) for j in order for v in p[j])
    return TFValue(ctx.emit("pad", [x.name], paddings=ours, mode=mode, pad_value=value), x.perm)


@tf_op("Pad")
def Pad(ctx, x, paddings):
    return _pad(ctx, x, paddings, "constant")


@tf_op("PadV2")
def PadV2(ctx, x, paddings, constant_values):
    return _pad(ctx, x, paddings, "constant", float(ctx.const_of(constant_values, "constant_values").reshape(-1)[0]))


MIRROR_MODES = {"REFLECT": "reflect"}


@tf_op("MirrorPad")
def MirrorPad(ctx, x, paddings, *, mode):
    if mode not in MIRROR_MODES:
        raise ctx.error(f"MirrorPad mode {mode!r} is not supported (only REFLECT)")
    return _pad(ctx, x, paddings, MIRROR_MODES[mode])


# --- joining, reshaping ---

@tf_op("ConcatV2")
def ConcatV2(ctx, *inputs, N=None):
    """the last input is the axis; computed in the layout of the first input held transposed"""
    values, axis = inputs[:-1], inputs[-1]
    r = ctx.rank_of(values[0])
    a = ctx.axis(values[0], int(ctx.const_of(axis, "axis").reshape(-1)[0]), r)
    perm = next((v.perm for v in values if v.perm), ())
    ours = inverse(perm)[a] if perm else a
    return TFValue(ctx.emit("concat", [ctx.in_layout(v, perm) for v in values], axis=ours), perm)


@tf_op("Concat")
def Concat(ctx, axis, *values, N=None):
    """the old ConcatV2, axis first"""
    return ConcatV2(ctx, *values, axis)


@tf_op("Pack")
def Pack(ctx, *values, axis=0, N=None):
    """stack along a new axis: unsqueeze2 each input, then concat"""
    a = ctx.axis(values[0], axis, ctx.rank_of(values[0]) + 1)
    parts = [ctx.emit("unsqueeze2", [ctx.tf(v)], axes=(a,)) for v in values]
    return parts[0] if len(parts) == 1 else ctx.emit("concat", parts, axis=a)


@tf_op("Reshape")
def Reshape(ctx, x, shape):
    """TF semantics: one -1 is inferred; a 0 is a dim of size 0 (not supported: ours would copy the dim)"""
    val = ctx.value_of(shape)
    if val is None:
        return ctx.emit("reshape2", [ctx.tf(x), ctx.tf(shape)])
    target = [int(d) for d in val.reshape(-1)]
    if 0 in target:
        raise ctx.error(f"a 0 in the target shape {target} (an empty tensor) is not supported")
    return ctx.emit("reshape2", [ctx.tf(x)], shape=target)


@tf_op("Squeeze")
def Squeeze(ctx, x, *, squeeze_dims=()):
    """drop the listed size-1 dims (renumbered to x's layout), or every size-1 dim when none is listed"""
    if not squeeze_dims:
        return ctx.emit("squeeze2", [ctx.tf(x)], axes=())
    ours, out_perm = ctx.reduce_axes(x, squeeze_dims, keep=False)
    return TFValue(ctx.emit("squeeze2", [x.name], axes=ours), out_perm)


@tf_op("ExpandDims")
def ExpandDims(ctx, x, axis):
    a = ctx.axis(x, int(ctx.const_of(axis, "axis").reshape(-1)[0]), ctx.rank_of(x) + 1)
    return ctx.emit("unsqueeze2", [ctx.tf(x)], axes=(a,))


@tf_op("Transpose")
def Transpose(ctx, x, perm):
    """TF's transpose of x is x held transposed by perm: one transpose2 from our layout (or none)"""
    p = tuple(_ints(ctx, perm, "perm"))
    if sorted(p) != list(range(ctx.rank_of(x))):
        raise ctx.error(f"perm {p} is not a permutation of the input's {ctx.rank_of(x)} dims")
    return TFValue(ctx.in_layout(x, p))


@tf_op("Shape")
def Shape(ctx, x, *, out_type=3):
    """TF's shape (int32 by default), whatever layout x is held in"""
    s = ctx.emit("shape", [x.name])
    if x.perm:
        s = ctx.emit("gather", [s, ctx.const(np.array(inverse(x.perm), np.int64), "perm")], axis=0)
    dt = _dtype(ctx, out_type)
    return s if dt == DType.INT64 else ctx.emit("cast", [s], out_dtype=dt)


@tf_op("Cast")
def Cast(ctx, x, *, DstT, Truncate=False):
    return ctx.unary("cast", x, out_dtype=_dtype(ctx, DstT))


# --- strided slice ---

@tf_op("StridedSlice")
def StridedSlice(ctx, x, begin, end, strides, *, begin_mask=0, end_mask=0, ellipsis_mask=0, new_axis_mask=0,
                 shrink_axis_mask=0, Index=None):
    """x[begin:end:strides] with TF's masks, as strided_slice (only the dims actually sliced), squeeze2
    (shrink_axis_mask) and unsqueeze2 (new_axis_mask). An ellipsis stands for the dims the other entries
    do not name (one at the end is implied)."""
    b, e, s = _ints(ctx, begin, "begin"), _ints(ctx, end, "end"), _ints(ctx, strides, "strides")
    if not len(b) == len(e) == len(s):
        raise ctx.error(f"begin, end and strides have different lengths ({len(b)}, {len(e)}, {len(s)})")
    r = ctx.rank_of(x)

    def bit(mask, i):
        return bool(mask >> i & 1)

    if sum(bit(ellipsis_mask, i) for i in range(len(b))) > 1:
        raise ctx.error("more than one ellipsis")
    named = sum(1 for i in range(len(b)) if not bit(ellipsis_mask, i) and not bit(new_axis_mask, i))
    if named > r:
        raise ctx.error(f"the slice names {named} dims, the input has {r}")
    axes, starts, ends, steps, shrink, new = [], [], [], [], [], []
    dim = pos = 0  # next input dim; next output position
    for i in range(len(b)):
        if bit(ellipsis_mask, i):
            dim, pos = dim + r - named, pos + r - named
            continue
        if bit(new_axis_mask, i):
            new.append(pos)
            pos += 1
            continue
        if s[i] == 0:
            raise ctx.error("a stride of 0")
        if bit(shrink_axis_mask, i):
            start = 0 if bit(begin_mask, i) else b[i]
            start, stop, step = start, (start + 1 if start != -1 else INT_MAX), 1
            shrink.append(dim)
        else:
            start = (0 if s[i] > 0 else INT_MAX) if bit(begin_mask, i) else b[i]
            stop, step = INT_MAX if bit(end_mask, i) else e[i], s[i]
            pos += 1
        if not (start == 0 and stop == INT_MAX and step == 1):
            axes.append(dim)
            starts.append(start)
            ends.append(stop)
            steps.append(step)
        dim += 1
    out = ctx.tf(x)
    if axes:
        out = ctx.emit("strided_slice", [out], axes=axes, starts=starts, ends=ends, strides=steps)
    if shrink:
        out = ctx.emit("squeeze2", [out], axes=shrink)
    if new:
        out = ctx.emit("unsqueeze2", [out], axes=new)
    return TFValue(out)
