"""Data-movement and shape ops (Paddle Lite names): reshape2, transpose2, squeeze2, unsqueeze2, flatten,
concat, split, strided_slice, gather, expand_v2, tile, shape, cast, fill_constant, range, assign, dropout,
pixel_shuffle (DepthToSpace), space_to_depth.

Conventions the converters establish (so kernels never reinterpret a source convention):
- axes are non-negative whenever the input rank is known at conversion time (the references still accept
  negative ones, counted from the end, for graphs built by hand);
- a shape, start/end/step or repeat list is an attribute when known at conversion time, and otherwise the
  op's optional tensor input, which then wins over the attribute (dynamic shapes: Shape -> ... -> Reshape).
"""
from __future__ import annotations

import math
from collections import Counter

import numpy as np

from ..dtypes import DType
from ..registry import (Attr, InferCtx, TensorType, broadcast_shapes, dim_op, normalize_axis, op, same_as,
                        shape_from_value)

INT_MAX = 2 ** 63 - 1   # ONNX's "to the end" sentinel for Slice ends and Shape end
INT_MIN = -2 ** 63


def _ints(v) -> tuple[int, ...]:
    return tuple(int(d) for d in np.asarray(v).reshape(-1))


def _unknown(ctx: InferCtx):
    return [TensorType(ctx.dtype(0), None)]


# --- reshape family (outputs are views of input 0) ----------------------------------------------

def resolve_reshape(in_shape, target, ctx: InferCtx | None = None, allowzero: bool = False):
    """ONNX Reshape semantics: 0 copies the input dim at the same position (unless allowzero), one -1 is
    inferred from the element count. Symbolic dims (str) are allowed with a ctx (fresh symbol for -1)."""
    fail = ctx.error if ctx else ValueError
    out = []
    for i, d in enumerate(target):
        if d == 0 and not allowzero:
            if i >= len(in_shape):
                raise fail(f"reshape target {tuple(target)}: 0 at position {i} but the input has rank {len(in_shape)}")
            d = in_shape[i]
        elif isinstance(d, int) and d < -1:
            raise fail(f"reshape target {tuple(target)} has a negative dim")
        out.append(d)
    if out.count(-1) > 1:
        raise fail(f"reshape target {tuple(target)} has more than one -1")
    if -1 in out:
        k = out.index(-1)
        known = [d for d in out if d != -1]
        if all(isinstance(d, int) for d in known) and all(isinstance(d, int) for d in in_shape):
            rest, total = math.prod(known), math.prod(in_shape)
            if rest == 0 or total % rest:
                raise fail(f"cannot reshape {tuple(in_shape)} to {tuple(target)}")
            out[k] = total // rest
        else:
            out[k] = _cancel(in_shape, known)
            if out[k] is None:
                out[k] = ctx.fresh(k) if ctx is not None else -1
    return tuple(out)


def _cancel(in_shape, known):
    """The -1 of a reshape with symbolic dims when the symbols cancel (one symbol, one value): (N, 16, 8, 8) to
    (N, -1) gives 1024, (N, 116, 28, 28) to (-1, 116, 28, 28) gives N; None otherwise."""
    sym_in = Counter(d for d in in_shape if isinstance(d, str))
    sym_known = Counter(d for d in known if isinstance(d, str))
    if sym_known - sym_in:
        return None
    left = sym_in - sym_known
    ints_in = math.prod(d for d in in_shape if isinstance(d, int))
    ints_known = math.prod(d for d in known if isinstance(d, int))
    if not ints_known or ints_in % ints_known:
        return None
    ratio = ints_in // ints_known
    if not left:
        return ratio
    if sum(left.values()) == 1 and ratio == 1:
        return next(iter(left))
    return None


def _reshape_infer(ctx: InferCtx):
    x = ctx.shape(0)
    target = shape_from_value(ctx, 1) if ctx.has(1) else tuple(ctx.attrs["shape"])
    if target is None or x is None:
        return _unknown(ctx)
    if any(isinstance(d, str) for d in target):  # run-time shape tensor of known length
        return [TensorType(ctx.dtype(0), target)]
    out = resolve_reshape(x, target, ctx)
    if all(isinstance(d, int) for d in out + tuple(x)) and math.prod(out) != math.prod(x):
        raise ctx.error(f"cannot reshape {x} to {out}")
    return [TensorType(ctx.dtype(0), out)]


@op("reshape2", inputs="X ShapeTensor?", attrs={"shape": Attr("ints", ())}, infer=_reshape_infer, view_of_input=0)
def reshape2(x, shape_t, *, shape):
    """reshape to `shape` or to the ShapeTensor input's value (ONNX: 0 copies the dim, one -1 is inferred)"""
    target = _ints(shape_t) if shape_t is not None else shape
    return x.reshape(resolve_reshape(x.shape, target))


def _squeeze_infer(ctx: InferCtx):
    x = ctx.shape(0)
    if x is None:
        return _unknown(ctx)
    axes = {normalize_axis(ctx, a, len(x)) for a in ctx.attrs["axes"]}
    if not axes:
        if any(isinstance(d, str) for d in x):
            raise ctx.error(f"squeeze without axes of shape {x} with dynamic dims: the output rank is unknown; "
                            "give the axes")
        axes = {i for i, d in enumerate(x) if d == 1}
    for a in axes:
        if isinstance(x[a], int) and x[a] != 1:
            raise ctx.error(f"cannot squeeze axis {a} of size {x[a]}")
    return [TensorType(ctx.dtype(0), tuple(d for i, d in enumerate(x) if i not in axes))]


@op("squeeze2", attrs={"axes": Attr("ints", ())}, infer=_squeeze_infer, view_of_input=0)
def squeeze2(x, *, axes):
    """drop the size-1 dims listed in `axes` (all size-1 dims when `axes` is empty)"""
    if x.ndim == 0:
        return x
    return np.squeeze(x, axis=tuple(a % x.ndim for a in axes) if axes else None)


def _unsqueeze_infer(ctx: InferCtx):
    x = ctx.shape(0)
    if x is None:
        return _unknown(ctx)
    rank = len(x) + len(ctx.attrs["axes"])
    axes = {normalize_axis(ctx, a, rank) for a in ctx.attrs["axes"]}
    if len(axes) != len(ctx.attrs["axes"]):
        raise ctx.error(f"axes {ctx.attrs['axes']} repeat a dim")
    it = iter(x)
    return [TensorType(ctx.dtype(0), tuple(1 if i in axes else next(it) for i in range(rank)))]


@op("unsqueeze2", attrs={"axes": Attr("ints")}, infer=_unsqueeze_infer, view_of_input=0)
def unsqueeze2(x, *, axes):
    """insert size-1 dims at `axes`, positions in the output (rank = x.ndim + len(axes))"""
    rank = x.ndim + len(axes)
    return np.expand_dims(x, tuple(sorted(a % rank for a in axes)))


def flatten_axis(axis: int, rank: int) -> int:
    """ONNX Flatten's axis in [-rank, rank]; negative counts from the back (-1 -> rank - 1)."""
    if not -rank <= axis <= rank:
        raise ValueError(f"flatten axis {axis} out of range for rank {rank}")
    return axis + rank if axis < 0 else axis


def _flatten_infer(ctx: InferCtx):
    x = ctx.shape(0)
    if x is None:
        return _unknown(ctx)
    try:
        a = flatten_axis(ctx.attrs["axis"], len(x))
    except ValueError as e:
        raise ctx.error(str(e)) from None
    prod = lambda *d: math.prod(d)  # noqa: E731
    return [TensorType(ctx.dtype(0), (dim_op(ctx, 0, prod, *x[:a]), dim_op(ctx, 1, prod, *x[a:])))]


@op("flatten", attrs={"axis": 1}, infer=_flatten_infer, view_of_input=0)
def flatten(x, *, axis):
    """ONNX Flatten: 2-D (prod(dims[:axis]), prod(dims[axis:])); axis in [-rank, rank]"""
    a = flatten_axis(axis, x.ndim)
    return x.reshape(math.prod(x.shape[:a]), math.prod(x.shape[a:]))


# --- transpose / concat / split ------------------------------------------------------------------

def _transpose_infer(ctx: InferCtx):
    x, perm = ctx.shape(0), tuple(ctx.attrs["axis"])
    if x is None:
        return _unknown(ctx)
    if sorted(perm) != list(range(len(x))):
        raise ctx.error(f"axis {perm} is not a permutation of the {len(x)} dims")
    return [TensorType(ctx.dtype(0), tuple(x[p] for p in perm))]


@op("transpose2", attrs={"axis": Attr("ints")}, infer=_transpose_infer)
def transpose2(x, *, axis):
    """permute the dims: out.shape[i] = x.shape[axis[i]] (axis is a permutation of 0..rank-1)"""
    return np.array(np.transpose(x, axis), order="C")


def _concat_infer(ctx: InferCtx):
    shapes = [t.shape for t in ctx.types]
    if any(s is None for s in shapes):
        return _unknown(ctx)
    rank = len(shapes[0])
    ax = normalize_axis(ctx, ctx.attrs["axis"], rank)
    out = list(shapes[0])
    for s in shapes[1:]:
        if len(s) != rank:
            raise ctx.error(f"concat of ranks {len(shapes[0])} and {len(s)}")
        for i in range(rank):
            if i == ax:
                continue
            if isinstance(out[i], int) and isinstance(s[i], int) and out[i] != s[i]:
                raise ctx.error(f"concat along axis {ax} of shapes {shapes[0]} and {s}")
            if isinstance(out[i], str) and isinstance(s[i], int):
                out[i] = s[i]
    out[ax] = dim_op(ctx, ax, lambda *d: sum(d), *[s[ax] for s in shapes])
    return [TensorType(ctx.dtype(0), tuple(out))]


@op("concat", inputs="X*", attrs={"axis": 0}, infer=_concat_infer)
def concat(*xs, axis):
    """join the inputs (same rank, same dims except `axis`) along `axis`"""
    return np.concatenate([np.asarray(x) for x in xs], axis=axis)


def split_sections(size: int, sections: tuple, n_out: int) -> list[int]:
    """The sizes of the parts: `sections` if given, else n_out parts of ceil(size / n_out), the last
    one smaller (ONNX Split-18 num_outputs; an even split for older opsets)."""
    if sections:
        return list(sections)
    base = -(-size // n_out)
    return [base] * (n_out - 1) + [size - base * (n_out - 1)]


def _split_infer(ctx: InferCtx):
    x = ctx.shape(0)
    n_out = len(ctx.node.outputs)
    if x is None:
        return [TensorType(ctx.dtype(0), None)] * n_out
    ax = normalize_axis(ctx, ctx.attrs["axis"], len(x))
    secs = ctx.attrs["sections"]
    if secs and len(secs) != n_out:
        raise ctx.error(f"{len(secs)} sections for {n_out} outputs")
    if isinstance(x[ax], int):
        sizes = split_sections(x[ax], secs, n_out)
        if sum(sizes) != x[ax] or min(sizes) < 0:
            raise ctx.error(f"cannot split an axis of size {x[ax]} into parts {sizes}")
    else:
        sizes = list(secs) if secs else [ctx.fresh(k) for k in range(n_out)]
    return [TensorType(ctx.dtype(0), tuple(x[:ax]) + (s,) + tuple(x[ax + 1:])) for s in sizes]


@op("split", outputs=("Out*",), attrs={"axis": 0, "sections": Attr("ints", ()), "num": 0}, infer=_split_infer)
def split(x, *, axis, sections, num):
    """split along `axis` into parts of sizes `sections`, or into `num` parts (see split_sections);
    one output per part (a node declares as many outputs as parts)"""
    n = len(sections) if sections else num
    secs = split_sections(x.shape[axis], sections, n)
    return tuple(np.array(p) for p in np.split(x, np.cumsum(secs)[:-1], axis=axis))


# --- strided_slice / gather ------------------------------------------------------------------------

INT32_MAX = 2 ** 31 - 1


def slice_bounds(size: int, start: int, end: int, step: int) -> tuple[int, int, int]:
    """ONNX Slice clamping of one axis. Negative start/end count from the end; then, for step > 0,
    start and end are clamped to [0, size]; for step < 0, start to [0, size - 1] and end to [-1, size - 1]
    (-1 meaning "past the first element"). So INT64 min/max work as "to the end" sentinels both ways.
    As onnxruntime does, an end of INT32 or INT64 max means "to the end" whatever the step's sign: with
    a negative step it reaches the first element (the spec's clamping alone would give an empty slice)."""
    if step == 0:
        raise ValueError("slice step 0")
    if step < 0 and end in (INT32_MAX, INT_MAX):
        end = -1 - size
    if start < 0:
        start += size
    if end < 0:
        end += size
    if step > 0:
        return min(max(start, 0), size), min(max(end, 0), size), step
    return min(max(start, 0), size - 1), min(max(end, -1), size - 1), step


def slice_len(size: int, start: int, end: int, step: int) -> int:
    """Number of elements ONNX Slice takes from an axis of `size`."""
    s, e, st = slice_bounds(size, start, end, step)
    return max(0, -(-(e - s) // st))


def _full_range(start: int, end: int, step: int) -> bool:
    """Whether a slice takes a whole axis whatever its size (x[:] or x[::-1] written with sentinels)."""
    big = INT32_MAX  # exporters write INT32 or INT64 max
    return (step == 1 and start == 0 and end >= big) or \
        (step == -1 and (start == -1 or start >= big) and (end <= -big or end in (INT32_MAX, INT_MAX)))


def slice_params(attrs: dict, starts_t, ends_t, strides_t) -> tuple[tuple, tuple, tuple]:
    """(starts, ends, steps): a tensor input wins over its attribute; steps default to 1."""
    starts = _ints(starts_t) if starts_t is not None else tuple(attrs["starts"])
    ends = _ints(ends_t) if ends_t is not None else tuple(attrs["ends"])
    steps = _ints(strides_t) if strides_t is not None else (tuple(attrs["strides"]) or (1,) * len(attrs["axes"]))
    return starts, ends, steps


def _strided_slice_infer(ctx: InferCtx):
    x = ctx.shape(0)
    if x is None:
        return _unknown(ctx)
    axes = [normalize_axis(ctx, a, len(x)) for a in ctx.attrs["axes"]]
    if len(set(axes)) != len(axes):
        raise ctx.error(f"axes {ctx.attrs['axes']} repeat a dim")
    tensors = [ctx.value(i) if ctx.has(i) else None for i in (1, 2, 3)]
    known = all(not ctx.has(i) or tensors[i - 1] is not None for i in (1, 2, 3))
    out = list(x)
    if not known:
        for a in axes:
            out[a] = ctx.fresh(a)
        return [TensorType(ctx.dtype(0), tuple(out))]
    starts, ends, steps = slice_params(ctx.attrs, *tensors)
    if not len(starts) == len(ends) == len(steps) == len(axes):
        raise ctx.error(f"{len(axes)} axes, {len(starts)} starts, {len(ends)} ends, {len(steps)} steps")
    if 0 in steps:
        raise ctx.error("slice step 0")
    for a, s, e, st in zip(axes, starts, ends, steps):
        if isinstance(x[a], int):
            out[a] = slice_len(x[a], s, e, st)
        elif not _full_range(s, e, st):
            out[a] = ctx.fresh(a)
    return [TensorType(ctx.dtype(0), tuple(out))]


@op("strided_slice", inputs="Input StartsTensor? EndsTensor? StridesTensor?",
    attrs={"axes": Attr("ints"), "starts": Attr("ints", ()), "ends": Attr("ints", ()), "strides": Attr("ints", ())},
    infer=_strided_slice_infer)
def strided_slice(x, starts_t, ends_t, strides_t, *, axes, starts, ends, strides):
    """x[starts:ends:strides] on `axes` with ONNX Slice clamping (see slice_bounds); tensor inputs, when
    present, replace the starts/ends/strides attributes"""
    index = [slice(None)] * x.ndim
    for a, s, e, st in zip(axes, *slice_params(dict(axes=axes, starts=starts, ends=ends, strides=strides),
                                               starts_t, ends_t, strides_t)):
        b0, b1, step = slice_bounds(x.shape[a], s, e, st)
        index[a] = slice(b0, b1 if b1 >= 0 else None, step)
    return np.array(x[tuple(index)], order="C")


def _gather_infer(ctx: InferCtx):
    x, idx = ctx.shape(0), ctx.shape(1)
    if x is None or idx is None:
        return _unknown(ctx)
    if not x:
        raise ctx.error("gather from a scalar")
    a = normalize_axis(ctx, ctx.attrs["axis"], len(x))
    return [TensorType(ctx.dtype(0), tuple(x[:a]) + tuple(idx) + tuple(x[a + 1:]))]


@op("gather", inputs="X Index", attrs={"axis": 0}, infer=_gather_infer)
def gather(x, index, *, axis):
    """ONNX Gather: out = take(x, index, axis); index of any rank (0-d removes the axis), negative
    entries count from the end, out-of-range entries are an error"""
    a = axis % x.ndim
    idx = np.asarray(index).astype(np.int64)
    idx = np.where(idx < 0, idx + x.shape[a], idx)
    if idx.size and (idx.min() < 0 or idx.max() >= x.shape[a]):
        raise IndexError(f"gather index out of range for an axis of size {x.shape[a]}")
    return np.array(np.take(x, idx, axis=a), order="C")


def _scatter_nd_infer(ctx: InferCtx):
    x, idx, upd = ctx.shape(0), ctx.shape(1), ctx.shape(2)
    if ctx.attrs["reduction"] not in SCATTER_REDUCTIONS:
        raise ctx.error(f"reduction {ctx.attrs['reduction']!r} is not one of {', '.join(SCATTER_REDUCTIONS)}")
    if x is not None and idx is not None and upd is not None and isinstance(idx[-1] if idx else 0, int):
        k = idx[-1] if idx else 0
        want = tuple(idx[:-1]) + tuple(x[k:])
        if not idx or k > len(x) or len(upd) != len(want) or any(
                isinstance(a, int) and isinstance(b, int) and a != b for a, b in zip(upd, want)):
            raise ctx.error(f"updates of shape {upd} do not fit data {x} at indices {idx} (want {want})")
    if ctx.dtype(2) != ctx.dtype(0):
        raise ctx.error(f"updates are {ctx.dtype(2)}, data is {ctx.dtype(0)}")
    return [TensorType(ctx.dtype(0), x)]


SCATTER_REDUCTIONS = ("none", "add", "mul", "max", "min")


@op("scatter_nd", inputs="X Index Updates", attrs={"reduction": "none"}, infer=_scatter_nd_infer)
def scatter_nd(x, index, updates, *, reduction):
    """ONNX ScatterND: a copy of x with `updates` written at the index tuples (index's last axis addresses x's
    leading dims; negative entries count from the end), combined with what is there by `reduction` (none:
    replaced, in index order)"""
    out = np.array(x, order="C")
    idx = np.asarray(index).astype(np.int64)
    k = idx.shape[-1]
    dims = np.array(x.shape[:k], np.int64)
    idx = idx.reshape(-1, k)
    idx = np.where(idx < 0, idx + dims, idx)
    if idx.size and (idx.min() < 0 or (idx >= dims).any()):
        raise IndexError(f"scatter_nd index out of range for dims {tuple(dims)}")
    upd = np.asarray(updates).reshape((idx.shape[0],) + x.shape[k:])
    combine = {"add": np.add, "mul": np.multiply, "max": np.maximum, "min": np.minimum}.get(reduction)
    for row, u in zip(idx, upd):
        at = tuple(row)
        out[at] = u if combine is None else combine(out[at], u)
    return out


# --- expand / tile -----------------------------------------------------------------------------------

def _expand_infer(ctx: InferCtx):
    x = ctx.shape(0)
    target = shape_from_value(ctx, 1) if ctx.has(1) else tuple(ctx.attrs["shape"])
    if x is None or target is None:
        return _unknown(ctx)
    if ctx.has(1) and ctx.value(1) is None:  # run-time target of known length: a dim is x's unless x has 1 there
        rank = max(len(x), len(target))
        xs = (1,) * (rank - len(x)) + tuple(x)
        return [TensorType(ctx.dtype(0), tuple(d if isinstance(d, int) and d != 1 else ctx.fresh(i)
                                                for i, d in enumerate(xs)))]
    return [TensorType(ctx.dtype(0), broadcast_shapes(ctx, [x, target]))]


@op("expand_v2", inputs="X Shape?", attrs={"shape": Attr("ints", ())}, infer=_expand_infer)
def expand_v2(x, shape_t, *, shape):
    """ONNX Expand: the output shape is numpy broadcasting of x's shape with `shape` (or the Shape input),
    both ways (a target dim of 1 keeps x's dim; a shorter target is aligned to the right)"""
    target = _ints(shape_t) if shape_t is not None else shape
    return np.array(np.broadcast_to(x, np.broadcast_shapes(x.shape, target)), order="C")


def _tile_infer(ctx: InferCtx):
    x = ctx.shape(0)
    reps = shape_from_value(ctx, 1) if ctx.has(1) else tuple(ctx.attrs["repeat_times"])
    if x is None or reps is None:
        return _unknown(ctx)
    if len(reps) != len(x):
        raise ctx.error(f"{len(reps)} repeats for rank {len(x)}")
    return [TensorType(ctx.dtype(0), tuple(dim_op(ctx, i, lambda a, b: a * b, d, r)
                                           for i, (d, r) in enumerate(zip(x, reps))))]


@op("tile", inputs="X RepeatTimes?", attrs={"repeat_times": Attr("ints", ())}, infer=_tile_infer)
def tile(x, reps_t, *, repeat_times):
    """repeat x `repeat_times[i]` times along dim i (one repeat per dim, ONNX Tile)"""
    reps = _ints(reps_t) if reps_t is not None else repeat_times
    if len(reps) != x.ndim:
        raise ValueError(f"{len(reps)} repeats for rank {x.ndim}")
    return np.tile(x, reps)


# --- shape, cast, constants --------------------------------------------------------------------------

def shape_range(rank: int, start: int, end: int) -> tuple[int, int]:
    """ONNX Shape-15 start/end: negative counts from the back, both clamped to [0, rank]."""
    s = start + rank if start < 0 else start
    e = end + rank if end < 0 else end
    return max(0, min(rank, s)), max(0, min(rank, e))


def _shape_infer(ctx: InferCtx):
    x = ctx.shape(0)
    if x is None:
        return [TensorType(DType.INT64, (ctx.fresh(0),))]
    s, e = shape_range(len(x), ctx.attrs["start"], ctx.attrs["end"])
    return [TensorType(DType.INT64, (max(0, e - s),))]


@op("shape", inputs="Input", attrs={"start": 0, "end": INT_MAX}, infer=_shape_infer, shape_only_inputs=(0,))
def shape(x, *, start, end):
    """the dims of the input as a 1-D int64 tensor, dims[start:end] (ONNX Shape; see shape_range)"""
    s, e = shape_range(np.ndim(x), start, end)
    return np.array(np.shape(x)[s:e], np.int64)


@op("cast", attrs={"out_dtype": Attr("dtype")}, infer=lambda ctx: [TensorType(ctx.attrs["out_dtype"], ctx.shape(0))])
def cast(x, *, out_dtype):
    """convert to `out_dtype` as numpy's astype: float -> int truncates toward zero, nonzero -> True"""
    return np.asarray(x).astype(DType.of(out_dtype).np)


def _fill_infer(ctx: InferCtx):
    target = shape_from_value(ctx, 0) if ctx.has(0) else tuple(ctx.attrs["shape"])
    return [TensorType(ctx.attrs["dtype"], target)]


@op("fill_constant", inputs="ShapeTensor?", attrs={"shape": Attr("ints", ()), "value": 0.0,
                                                  "dtype": Attr("dtype", DType.FLOAT32)}, infer=_fill_infer)
def fill_constant(shape_t, *, shape, value, dtype):
    """a tensor of `shape` (or the ShapeTensor input's value) filled with `value` converted to `dtype`
    (ONNX ConstantOfShape; the value travels as a float, exact for integers up to 2**53)"""
    s = _ints(shape_t) if shape_t is not None else shape
    return np.full(s, value, DType.of(dtype).np)


def range_len(start, end, step) -> int:
    """ONNX Range: max(ceil((end - start) / step), 0) elements (exact for integers)."""
    s, e, d = (np.asarray(v).reshape(()).item() for v in (start, end, step))
    if d == 0:
        raise ValueError("range step 0")
    if all(isinstance(v, int) for v in (s, e, d)):
        return max(0, -((s - e) // d))
    return max(0, int(math.ceil((e - s) / d)))


def _range_infer(ctx: InferCtx):
    vals = [ctx.value(i) for i in range(3)]
    n = range_len(*vals) if all(v is not None for v in vals) else ctx.fresh(0)
    return [TensorType(ctx.dtype(0), (n,))]


@op("range", inputs="Start End Step", infer=_range_infer)
def range_(start, end, step):
    """ONNX Range of 0-d inputs: start + i * step for i < range_len (the dtype of start)"""
    dt = np.asarray(start).dtype
    n = range_len(start, end, step)
    s, d = np.asarray(start).reshape(()), np.asarray(step).reshape(())
    return (s + np.arange(n, dtype=dt) * d).astype(dt)


@op("assign", infer=same_as(0))
def assign(x):
    """a copy of x"""
    return np.array(x)


@op("dropout", attrs={"dropout_prob": 0.5, "is_test": True}, infer=same_as(0))
def dropout(x, *, dropout_prob, is_test):
    """inference dropout: a copy of x (only is_test=True is ever converted; dropout_prob is informative)"""
    return np.array(x)


def _blocks_infer(to_depth: bool):
    def infer(ctx: InferCtx):
        x, b = ctx.shape(0), ctx.attrs["blocksize"]
        if b < 1:
            raise ctx.error(f"blocksize {b} must be at least 1")
        if not to_depth and ctx.attrs["mode"] not in ("CRD", "DCR"):
            raise ctx.error(f"mode {ctx.attrs['mode']!r} is neither 'CRD' nor 'DCR'")
        if x is None:
            return [TensorType(ctx.dtype(0), None)]
        if len(x) != 4:
            raise ctx.error(f"needs an NCHW input, got rank {len(x)}")
        n, c, h, w = x
        moved = (h, w) if to_depth else (c,)
        need = b if to_depth else b * b
        if any(isinstance(d, int) and d % need for d in moved):
            raise ctx.error(f"input {x}: {'H and W' if to_depth else 'C'} must be multiples of {need}")
        if to_depth:
            out = (n, dim_op(ctx, 0, lambda v: v * b * b, c), dim_op(ctx, 1, lambda v: v // b, h),
                   dim_op(ctx, 2, lambda v: v // b, w))
        else:
            out = (n, dim_op(ctx, 0, lambda v: v // (b * b), c), dim_op(ctx, 1, lambda v: v * b, h),
                   dim_op(ctx, 2, lambda v: v * b, w))
        return [TensorType(ctx.dtype(0), out)]
    return infer


@op("pixel_shuffle", attrs={"blocksize": Attr("int"), "mode": "CRD"}, infer=_blocks_infer(False))
def pixel_shuffle(x, *, blocksize, mode):
    """ONNX DepthToSpace (torch's PixelShuffle is mode CRD, Paddle's pixel_shuffle): (N, C*b*b, H, W) ->
    (N, C, H*b, W*b), output (c, y*b + i, x*b + j) from input channel c*b*b + i*b + j (CRD) or (i*b + j)*C + c
    (DCR)"""
    n, c, h, w = x.shape
    b = blocksize
    if mode == "DCR":
        y = x.reshape(n, b, b, c // (b * b), h, w).transpose(0, 3, 4, 1, 5, 2)
    else:
        y = x.reshape(n, c // (b * b), b, b, h, w).transpose(0, 1, 4, 2, 5, 3)
    return np.ascontiguousarray(y).reshape(n, c // (b * b), h * b, w * b)


@op("space_to_depth", attrs={"blocksize": Attr("int")}, infer=_blocks_infer(True))
def space_to_depth(x, *, blocksize):
    """ONNX SpaceToDepth: (N, C, H*b, W*b) -> (N, C*b*b, H, W), output channel (i*b + j)*C + c holding input
    (c, y*b + i, x*b + j)"""
    n, c, h, w = x.shape
    b = blocksize
    y = x.reshape(n, c, h // b, b, w // b, b).transpose(0, 3, 5, 1, 2, 4)
    return np.ascontiguousarray(y).reshape(n, c * b * b, h // b, w // b)
