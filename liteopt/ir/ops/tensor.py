"""Data-movement and shape ops (Paddle Lite names): reshape2, transpose2, squeeze2, unsqueeze2, flatten,
concat, split, strided_slice, gather, expand_v2, tile, shape, cast, fill_constant, range, assign, dropout."""
from __future__ import annotations

import math

import numpy as np

from ..dtypes import DType
from ..registry import Attr, InferCtx, TensorType, dim_op, normalize_axis, op, same_as, shape_from_value


# --- reshape family ------------------------------------------------------------------------------

def resolve_reshape(in_shape, target, ctx: InferCtx | None = None, allowzero: bool = False):
    """ONNX Reshape semantics: 0 copies the input dim (unless allowzero), -1 is inferred."""
    out = [in_shape[i] if d == 0 and not allowzero and i < len(in_shape) else d for i, d in enumerate(target)]
    if out.count(-1) > 1:
        raise (ctx.error if ctx else ValueError)(f"reshape target {tuple(target)} has more than one -1")
    if -1 in out:
        known = [d for d in out if d != -1]
        if all(isinstance(d, int) for d in known) and all(isinstance(d, int) for d in in_shape):
            rest = math.prod(known)
            total = math.prod(in_shape)
            if rest == 0 or total % rest:
                raise (ctx.error if ctx else ValueError)(f"cannot reshape {tuple(in_shape)} to {tuple(target)}")
            out[out.index(-1)] = total // rest
        elif ctx is not None:
            out[out.index(-1)] = ctx.fresh(out.index(-1))
    return tuple(out)


def _reshape_infer(ctx: InferCtx):
    x = ctx.shape(0)
    target = shape_from_value(ctx, 1) if ctx.has(1) else tuple(ctx.attrs["shape"])
    if target is None or x is None:
        return [TensorType(ctx.dtype(0), None)]
    if any(isinstance(d, str) for d in target):  # run-time shape tensor of known length
        return [TensorType(ctx.dtype(0), target)]
    out = resolve_reshape(x, target, ctx)
    if all(isinstance(d, int) for d in out) and all(isinstance(d, int) for d in x) and math.prod(out) != math.prod(x):
        raise ctx.error(f"cannot reshape {x} to {out}")
    return [TensorType(ctx.dtype(0), out)]


@op("reshape2", inputs="X ShapeTensor?", attrs={"shape": Attr("ints", ())}, infer=_reshape_infer, view_of_input=0)
def reshape2(x, shape_t, *, shape):
    """reshape to `shape` or to the ShapeTensor input (0 copies a dim, -1 is inferred)"""
    target = tuple(int(d) for d in np.asarray(shape_t).reshape(-1)) if shape_t is not None else shape
    return x.reshape(resolve_reshape(x.shape, target))


def _transpose_infer(ctx: InferCtx):
    x, perm = ctx.shape(0), tuple(ctx.attrs["axis"])
    if x is None:
        return [TensorType(ctx.dtype(0), None)]
    if sorted(perm) != list(range(len(x))):
        raise ctx.error(f"axis {perm} is not a permutation of the {len(x)} dims")
    return [TensorType(ctx.dtype(0), tuple(x[p] for p in perm))]


@op("transpose2", attrs={"axis": Attr("ints")}, infer=_transpose_infer)
def transpose2(x, *, axis):
    """permute the dims: out.shape[i] = x.shape[axis[i]]"""
    return np.array(np.transpose(x, axis), order="C")


def _squeeze_infer(ctx: InferCtx):
    x = ctx.shape(0)
    if x is None:
        return [TensorType(ctx.dtype(0), None)]
    axes = {normalize_axis(ctx, a, len(x)) for a in ctx.attrs["axes"]}
    if not axes:
        if any(isinstance(d, str) for d in x):
            raise ctx.error("squeeze without axes on a shape with dynamic dims; give the axes")
        axes = {i for i, d in enumerate(x) if d == 1}
    for a in axes:
        if isinstance(x[a], int) and x[a] != 1:
            raise ctx.error(f"cannot squeeze axis {a} of size {x[a]}")
    return [TensorType(ctx.dtype(0), tuple(d for i, d in enumerate(x) if i not in axes))]


@op("squeeze2", attrs={"axes": Attr("ints", ())}, infer=_squeeze_infer, view_of_input=0)
def squeeze2(x, *, axes):
    """drop size-1 dims (all of them when axes is empty)"""
    return np.squeeze(x, axis=tuple(a % x.ndim for a in axes) if axes else None) if x.ndim else x


def _unsqueeze_infer(ctx: InferCtx):
    x = ctx.shape(0)
    if x is None:
        return [TensorType(ctx.dtype(0), None)]
    rank = len(x) + len(ctx.attrs["axes"])
    axes = sorted(normalize_axis(ctx, a, rank) for a in ctx.attrs["axes"])
    out, it = [], iter(x)
    for i in range(rank):
        out.append(1 if i in axes else next(it))
    return [TensorType(ctx.dtype(0), tuple(out))]


@op("unsqueeze2", attrs={"axes": Attr("ints")}, infer=_unsqueeze_infer, view_of_input=0)
def unsqueeze2(x, *, axes):
    """insert size-1 dims at `axes` (positions in the output)"""
    rank = x.ndim + len(axes)
    return np.expand_dims(x, tuple(sorted(a % rank for a in axes)))


def _flatten_infer(ctx: InferCtx):
    x = ctx.shape(0)
    if x is None:
        return [TensorType(ctx.dtype(0), None)]
    a = ctx.attrs["axis"] % (len(x) + 1) if len(x) else 0
    return [TensorType(ctx.dtype(0), (dim_op(ctx, 0, lambda *d: math.prod(d), *x[:a]) if a else 1,
                                      dim_op(ctx, 1, lambda *d: math.prod(d), *x[a:]) if a < len(x) else 1))]


@op("flatten", attrs={"axis": 1}, infer=_flatten_infer, view_of_input=0)
def flatten(x, *, axis):
    """ONNX Flatten: 2-D (prod(dims[:axis]), prod(dims[axis:]))"""
    a = axis % (x.ndim + 1) if x.ndim else 0
    return x.reshape(math.prod(x.shape[:a]), math.prod(x.shape[a:]))


# --- concat / split / slice / gather -----------------------------------------------------------

def _concat_infer(ctx: InferCtx):
    shapes = [t.shape for t in ctx.types]
    if any(s is None for s in shapes):
        return [TensorType(ctx.dtype(0), None)]
    rank = len(shapes[0])
    ax = normalize_axis(ctx, ctx.attrs["axis"], rank)
    out = list(shapes[0])
    for s in shapes[1:]:
        if len(s) != rank:
            raise ctx.error(f"concat of ranks {len(shapes[0])} and {len(s)}")
        for i in range(rank):
            if i != ax and isinstance(out[i], str) and isinstance(s[i], int):
                out[i] = s[i]
    out[ax] = dim_op(ctx, ax, lambda *d: sum(d), *[s[ax] for s in shapes])
    return [TensorType(ctx.dtype(0), tuple(out))]


@op("concat", inputs="X*", attrs={"axis": 0}, infer=_concat_infer)
def concat(*xs, axis):
    """join along `axis`"""
    return np.concatenate([np.asarray(x) for x in xs], axis=axis)


def split_sections(size: int, sections: tuple, n_out: int) -> list[int]:
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
    outs = []
    for k in range(n_out):
        s = list(x)
        if isinstance(x[ax], int):
            s[ax] = split_sections(x[ax], secs, n_out)[k]
        else:
            s[ax] = secs[k] if secs else ctx.fresh(k)
        outs.append(TensorType(ctx.dtype(0), tuple(s)))
    return outs


@op("split", outputs=("Out*",), attrs={"axis": 0, "sections": Attr("ints", ()), "num": 0}, infer=_split_infer)
def split(x, *, axis, sections, num):
    """split along `axis` into `sections` (or `num` equal parts, the last one smaller)"""
    n = len(sections) if sections else num
    secs = split_sections(x.shape[axis], sections, n)
    return tuple(np.array(p) for p in np.split(x, np.cumsum(secs)[:-1], axis=axis))


INT_MAX = 2 ** 63 - 1


def slice_bounds(size: int, start: int, end: int, step: int) -> tuple[int, int, int]:
    """ONNX Slice clamping: negative values count from the end; out-of-range values are clamped."""
    if step == 0:
        raise ValueError("slice step 0")
    if start < 0:
        start += size
    if end < 0:
        end += size
    if step > 0:
        start, end = min(max(start, 0), size), min(max(end, 0), size)
    else:
        start, end = min(max(start, -1), size - 1), min(max(end, -1), size - 1)
    return start, end, step


def _slice_len(size, start, end, step):
    s, e, st = slice_bounds(size, start, end, step)
    return max(0, -(-(e - s) // st))


def _strided_slice_infer(ctx: InferCtx):
    x = ctx.shape(0)
    axes = ctx.attrs["axes"]
    if x is None:
        return [TensorType(ctx.dtype(0), None)]
    vals = [ctx.value(i) if ctx.has(i) else None for i in (1, 2, 3)]
    starts = tuple(int(v) for v in vals[0].reshape(-1)) if vals[0] is not None else ctx.attrs["starts"]
    ends = tuple(int(v) for v in vals[1].reshape(-1)) if vals[1] is not None else ctx.attrs["ends"]
    steps = tuple(int(v) for v in vals[2].reshape(-1)) if vals[2] is not None else (ctx.attrs["strides"] or (1,) * len(axes))
    known = all(not ctx.has(i) or vals[i - 1] is not None for i in (1, 2, 3))
    out = list(x)
    for k, a in enumerate(axes):
        a = normalize_axis(ctx, a, len(x))
        if known and isinstance(x[a], int):
            out[a] = _slice_len(x[a], starts[k], ends[k], steps[k])
        else:
            out[a] = ctx.fresh(a)
    return [TensorType(ctx.dtype(0), tuple(out))]


@op("strided_slice", inputs="Input StartsTensor? EndsTensor? StridesTensor?",
    attrs={"axes": Attr("ints"), "starts": Attr("ints", ()), "ends": Attr("ints", ()), "strides": Attr("ints", ())},
    infer=_strided_slice_infer)
def strided_slice(x, starts_t, ends_t, strides_t, *, axes, starts, ends, strides):
    """x[starts:ends:strides] on `axes` with ONNX Slice clamping (tensor inputs override the attributes)"""
    starts = [int(v) for v in np.asarray(starts_t).reshape(-1)] if starts_t is not None else list(starts)
    ends = [int(v) for v in np.asarray(ends_t).reshape(-1)] if ends_t is not None else list(ends)
    steps = [int(v) for v in np.asarray(strides_t).reshape(-1)] if strides_t is not None else (list(strides) or [1] * len(axes))
    index = [slice(None)] * x.ndim
    for a, s, e, st in zip(axes, starts, ends, steps):
        a %= x.ndim
        b0, b1, step = slice_bounds(x.shape[a], s, e, st)
        index[a] = slice(b0, b1 if b1 >= 0 else None, step)
    return np.array(x[tuple(index)], order="C")


def _gather_infer(ctx: InferCtx):
    x, idx = ctx.shape(0), ctx.shape(1)
    if x is None or idx is None:
        return [TensorType(ctx.dtype(0), None)]
    a = normalize_axis(ctx, ctx.attrs["axis"], len(x))
    return [TensorType(ctx.dtype(0), tuple(x[:a]) + tuple(idx) + tuple(x[a + 1:]))]


@op("gather", inputs="X Index", attrs={"axis": 0}, infer=_gather_infer)
def gather(x, index, *, axis):
    """ONNX Gather: take `index` (any rank, negative counts from the end) along `axis`"""
    a = axis % x.ndim
    idx = np.asarray(index).astype(np.int64)
    idx = np.where(idx < 0, idx + x.shape[a], idx)
    if idx.size and (idx.min() < 0 or idx.max() >= x.shape[a]):
        raise IndexError(f"gather index out of range for axis of size {x.shape[a]}")
    return np.asarray(np.take(x, idx, axis=a), order="C")


# --- expand / tile -----------------------------------------------------------------------------

def _expand_infer(ctx: InferCtx):
    from ..registry import broadcast_shapes
    x = ctx.shape(0)
    target = shape_from_value(ctx, 1) if ctx.has(1) else tuple(ctx.attrs["shape"])
    if x is None or target is None:
        return [TensorType(ctx.dtype(0), None)]
    if any(isinstance(d, str) for d in target) and ctx.value(1) is None:
        rank = max(len(x), len(target))
        xs = (1,) * (rank - len(x)) + tuple(x)
        return [TensorType(ctx.dtype(0), tuple(d if isinstance(d, int) and d != 1 else ctx.fresh(i)
                                                for i, d in enumerate(xs)))]
    return [TensorType(ctx.dtype(0), broadcast_shapes(ctx, [x, target]))]


@op("expand_v2", inputs="X Shape?", attrs={"shape": Attr("ints", ())}, infer=_expand_infer)
def expand_v2(x, shape_t, *, shape):
    """ONNX Expand: broadcast x and the target shape against each other (numpy rules, both ways)"""
    target = tuple(int(d) for d in np.asarray(shape_t).reshape(-1)) if shape_t is not None else shape
    out = np.broadcast_shapes(x.shape, target)
    return np.array(np.broadcast_to(x, out), order="C")


def _tile_infer(ctx: InferCtx):
    x = ctx.shape(0)
    reps = shape_from_value(ctx, 1) if ctx.has(1) else tuple(ctx.attrs["repeat_times"])
    if x is None or reps is None:
        return [TensorType(ctx.dtype(0), None)]
    if len(reps) != len(x):
        raise ctx.error(f"{len(reps)} repeats for rank {len(x)}")
    return [TensorType(ctx.dtype(0), tuple(dim_op(ctx, i, lambda a, b: a * b, d, r) for i, (d, r) in enumerate(zip(x, reps))))]


@op("tile", inputs="X RepeatTimes?", attrs={"repeat_times": Attr("ints", ())}, infer=_tile_infer)
def tile(x, reps_t, *, repeat_times):
    """repeat x along each dim"""
    reps = tuple(int(d) for d in np.asarray(reps_t).reshape(-1)) if reps_t is not None else repeat_times
    return np.tile(x, reps)


# --- shape, cast, constants --------------------------------------------------------------------

def _shape_infer(ctx: InferCtx):
    x = ctx.shape(0)
    if x is None:
        return [TensorType(DType.INT64, (ctx.fresh(0),))]
    s, e = _shape_range(len(x), ctx.attrs["start"], ctx.attrs["end"])
    return [TensorType(DType.INT64, (max(0, e - s),))]


def _shape_range(rank, start, end):
    s = max(0, min(rank, start + rank if start < 0 else start))
    e = max(0, min(rank, end + rank if end < 0 else (rank if end == INT_MAX else end)))
    return s, e


@op("shape", inputs="Input", attrs={"start": 0, "end": INT_MAX}, infer=_shape_infer, shape_only_inputs=(0,))
def shape(x, *, start, end):
    """the dims of the input as int64 (ONNX Shape, with start/end)"""
    s, e = _shape_range(np.ndim(x), start, end)
    return np.array(np.shape(x)[s:e], np.int64)


@op("cast", attrs={"out_dtype": Attr("dtype")},
    infer=lambda ctx: [TensorType(ctx.attrs["out_dtype"], ctx.shape(0))])
def cast(x, *, out_dtype):
    """convert to `out_dtype` (float -> int truncates toward zero, as ONNX)"""
    return np.asarray(x).astype(DType.of(out_dtype).np)


def _fill_infer(ctx: InferCtx):
    target = shape_from_value(ctx, 0) if ctx.has(0) else tuple(ctx.attrs["shape"])
    return [TensorType(ctx.attrs["dtype"], target)]


@op("fill_constant", inputs="ShapeTensor?", attrs={"shape": Attr("ints", ()), "value": 0.0,
                                                  "dtype": Attr("dtype", DType.FLOAT32)}, infer=_fill_infer)
def fill_constant(shape_t, *, shape, value, dtype):
    """a tensor of `shape` (or ShapeTensor) filled with `value` (ONNX ConstantOfShape)"""
    s = tuple(int(d) for d in np.asarray(shape_t).reshape(-1)) if shape_t is not None else shape
    return np.full(s, value, DType.of(dtype).np)


def _range_infer(ctx: InferCtx):
    vals = [ctx.value(i) for i in range(3)]
    if all(v is not None for v in vals):
        s, e, d = (np.asarray(v).reshape(()) for v in vals)
        return [TensorType(ctx.dtype(0), (max(0, int(math.ceil((e - s) / d))),))]
    return [TensorType(ctx.dtype(0), (ctx.fresh(0),))]


@op("range", inputs="Start End Step", infer=_range_infer)
def range_(start, end, step):
    """start, start + step, ... up to (not including) end"""
    s, e, d = (np.asarray(v).reshape(()) for v in (start, end, step))
    n = max(0, int(math.ceil((e - s) / d)))
    return (s + np.arange(n, dtype=np.asarray(start).dtype) * d).astype(np.asarray(start).dtype)


@op("assign", infer=same_as(0))
def assign(x):
    """a copy of x"""
    return np.array(x)


@op("dropout", attrs={"dropout_prob": 0.5, "is_test": True}, infer=same_as(0))
def dropout(x, *, dropout_prob, is_test):
    """inference: the identity"""
    return np.array(x)
