"""cpu kernels of the data-movement and shape ops.

Most of these ops move elements without looking at them. Where numpy's copy of a view does it (transpose2,
concat, split, strided_slice with unit steps) they use it; the rest go through one numba loop, `_copy_box`,
which copies an N-d box between two flat buffers, each side addressed by an element offset and per-dim element
strides, and each op is a few lines of stride arithmetic:
- strided_slice with other steps: source offset at the starts, strides times the steps (negative: reversed);
- expand_v2: stride 0 on broadcast dims;
- tile: the input seen as (1, d0, 1, d1, ...) with stride-0 repeat dims, the output as (r0, d0, r1, d1, ...).
Arrays are reinterpreted as unsigned integers of the same width, so one compiled loop per item size serves
every dtype (float16 and bool included). gather has its own loop. The reshape family (views of the input),
shape, cast, range and fill_constant are plain numpy.
"""
from __future__ import annotations

import math

import numpy as np

from ...ir import OPS, DType
from ...ir.ops.tensor import slice_bounds, slice_len, slice_params, split_sections
from . import Blocked, kernel
from ._util import JIT, frozen, njit, per_size

_UINT = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}


@njit(**JIT)
def _copy_box(src, s_off, s_str, dst, d_off, d_str, shape):
    """dst[d_off + sum(i_k * d_str[k])] = src[s_off + sum(i_k * s_str[k])] for every index i < shape."""
    nd = shape.size
    inner, si, di = shape[nd - 1], s_str[nd - 1], d_str[nd - 1]
    outer = 1
    for k in range(nd - 1):
        outer *= shape[k]
    idx = np.zeros(nd, np.int64)
    s, d = s_off, d_off
    for _ in range(outer):
        if si == 1 and di == 1:  # (a loop over views: numba's slice assignment was 3.4x slower, 63 vs 18 us on
            to, frm = dst[d:d + inner], src[s:s + inner]  # 800 KB; indexing dst[d + t] 4.5x, its sign unknown)
            for t in range(inner):
                to[t] = frm[t]
        else:
            for t in range(inner):
                dst[d + t * di] = src[s + t * si]
        k = nd - 2
        while k >= 0:  # advance the multi-index over the outer dims
            idx[k] += 1
            s += s_str[k]
            d += d_str[k]
            if idx[k] < shape[k]:
                break
            s -= s_str[k] * shape[k]
            d -= d_str[k] * shape[k]
            idx[k] = 0
            k -= 1


@njit(**JIT)
def _gather_loop(x, outer, n, inner, idx, out):
    """out[o, k, :] = x[o, idx[k], :] over (outer, n, inner) / (outer, len(idx), inner); returns the
    position of the first out-of-range index, or -1."""
    m = idx.size
    for k in range(m):
        i = idx[k] + n if idx[k] < 0 else idx[k]
        if i < 0 or i >= n:
            return k
        for o in range(outer):
            src, dst = (o * n + i) * inner, (o * m + k) * inner
            for t in range(inner):
                out[dst + t] = x[src + t]
    return -1


def _bits(a: np.ndarray) -> np.ndarray:
    """a as a flat C-order array of unsigned ints of the same width (a view when a is contiguous)."""
    return np.ascontiguousarray(a).reshape(-1).view(_UINT[a.dtype.itemsize])


def _strides(shape) -> list[int]:
    """C-order strides in elements."""
    out, acc = [], 1
    for d in reversed(shape):
        out.append(acc)
        acc *= d
    return out[::-1]


def _collapse(shape, s_str, d_str):
    """Drop size-1 dims and merge neighbours that are contiguous on both sides (fewer, longer loops)."""
    dims = [(n, s, d) for n, s, d in zip(shape, s_str, d_str) if n != 1]
    merged: list[tuple[int, int, int]] = []
    for n, s, d in dims:
        if merged and merged[-1][1] == s * n and merged[-1][2] == d * n:
            merged[-1] = (merged[-1][0] * n, s, d)
        else:
            merged.append((n, s, d))
    return merged or [(1, 1, 1)]


def _copy(src: np.ndarray, s_off: int, s_str, dst: np.ndarray, d_off: int, d_str, shape) -> None:
    """Copy a box of `shape` from src to dst (same dtype), both addressed in elements of their C-order data."""
    if math.prod(shape) == 0:
        return
    dims = _collapse(shape, s_str, d_str)
    n, s, d = (np.array(v, np.int64) for v in zip(*dims))
    _copy_box(frozen(_bits(src)), s_off, s, _bits(dst), d_off, d, n)  # read-only: one signature, constant or not


def _out(out, shape, dtype) -> np.ndarray:
    return out if out is not None else np.empty(tuple(shape), dtype)


# --- metadata-only ops: the references (views of the input, or tiny numpy results) ------------------

for _name in ("reshape2", "squeeze2", "unsqueeze2", "flatten", "shape", "range", "fill_constant"):
    kernel(_name)(OPS[_name].reference)


# --- data movement ---------------------------------------------------------------------------------------

@kernel("pixel_shuffle", out=True)
def pixel_shuffle(x, *, blocksize, mode, out=None):
    """A reshape, numpy's strided copy of the transpose (as transpose2), a reshape."""
    n, c, h, w = x.shape
    b = blocksize
    v = x.reshape(n, b, b, c // (b * b), h, w).transpose(0, 3, 4, 1, 5, 2) if mode == "DCR" else \
        x.reshape(n, c // (b * b), b, b, h, w).transpose(0, 1, 4, 2, 5, 3)
    y = _out(out, (n, c // (b * b), h * b, w * b), x.dtype)
    np.copyto(y.reshape(v.shape[0], v.shape[1], h, b, w, b), v)
    return y


@kernel("space_to_depth", out=True)
def space_to_depth(x, *, blocksize, out=None):
    n, c, h, w = x.shape
    b = blocksize
    y = _out(out, (n, c * b * b, h // b, w // b), x.dtype)
    np.copyto(y.reshape(n, b, b, c, h // b, w // b), x.reshape(n, c, h // b, b, w // b, b).transpose(0, 3, 5, 1, 2, 4))
    return y


@kernel("transpose2", out=True)
def transpose2(x, *, axis, out=None):
    """numpy's strided copy (its inner loops take the transposed axes in cache-friendly order: ConvNeXt's
    96 x 56 x 56 <-> 56 x 56 x 96 259 -> 139-183 us; `_copy` walks the output in order)."""
    y = _out(out, [x.shape[p] for p in axis], x.dtype)
    np.copyto(y, x.transpose(axis))
    return y


def _slice_plan(xshape, axes, params):
    """strided_slice of an input of xshape: (output shape, the box of slices when every step is 1 else None,
    the source's element offset and strides)."""
    xs = _strides(xshape)
    shape, src_str, offset = list(xshape), list(xs), 0
    box = [slice(None)] * len(xshape)
    for a, s, e, st in zip(axes, *params):
        a %= len(xshape)
        b0, _, step = slice_bounds(xshape[a], s, e, st)
        shape[a] = slice_len(xshape[a], s, e, st)
        if shape[a]:
            offset += b0 * xs[a]
        src_str[a] = xs[a] * step
        box[a] = slice(b0, b0 + shape[a]) if step == 1 else None
    return tuple(shape), (tuple(box) if None not in box else None), offset, src_str


def _slice(x, plan, out):
    shape, box, offset, src_str = plan
    y = _out(out, shape, x.dtype)
    if box is not None:  # unit steps: numpy's own strided copy, without _copy's set-up (ShuffleNetV2's splits)
        np.copyto(y, x[box])
    else:
        _copy(x, offset, src_str, y, 0, _strides(shape), shape)
    return y


def _slice_prepare(consts, attrs):
    """With the bounds in the attributes (no tensor inputs at run time), the plan is worked out once per input
    shape (3-4 us of Python a call: ShuffleNetV2 slices 26 times)."""
    plans: dict = {}
    params = slice_params(dict(axes=attrs["axes"], starts=attrs["starts"], ends=attrs["ends"],
                               strides=attrs["strides"]), None, None, None)

    def run(x, starts_t, ends_t, strides_t, *, axes, starts, ends, strides, out=None):
        if starts_t is not None or ends_t is not None or strides_t is not None:
            return strided_slice(x, starts_t, ends_t, strides_t, axes=axes, starts=starts, ends=ends,
                                 strides=strides, out=out)
        return _slice(x, per_size(plans, x.shape, lambda: _slice_plan(x.shape, axes, params)), out)

    def blocked(x, starts_t, ends_t, strides_t, *, axes, starts, ends, strides, out=None):
        _, box, _, _ = per_size(plans, x.shape, lambda: _slice_plan(x.shape, axes, params))
        return _channel_run(x, box[1].start, box[1].stop - box[1].start, out)

    run.blocked = Blocked(free=(), tied=(0,), variant=lambda ins, out_blocked: blocked,
                          for_node=lambda graph, node: run.blocked if _whole_blocks(graph, node, params) else None)
    return run


def _whole_blocks(graph, node, params) -> bool:
    """Whether a strided_slice takes whole blocks of 16 channels of a 4-D tensor and nothing else (bounds in the
    attributes, the channels the one axis sliced, unit step)."""
    x = graph.tensors[node.inputs[0]].shape
    axes = node.attrs["axes"]
    if any(node.inputs[1:]) or x is None or len(x) != 4 or not isinstance(x[1], int) or len(axes) != 1 \
            or axes[0] % 4 != 1:
        return False
    start, end, step = slice_bounds(x[1], params[0][0], params[1][0], params[2][0])
    return step == 1 and start % 16 == 0 and (end - start) % 16 == 0 and end > start


def _channel_run(x, first: int, count: int, out):
    """Channels first .. first + count of a channel-blocked x (whole blocks): per batch item, one run of its
    bytes."""
    n, pixels = x.shape[0], math.prod(x.shape[2:])
    y = out if out is not None else np.empty((n, count, *x.shape[2:]), x.dtype)
    np.copyto(y.reshape(n, -1), x.reshape(n, -1)[:, first * pixels:(first + count) * pixels])
    return y


@kernel("strided_slice", out=True, prepare=_slice_prepare)
def strided_slice(x, starts_t, ends_t, strides_t, *, axes, starts, ends, strides, out=None):
    params = slice_params(dict(axes=axes, starts=starts, ends=ends, strides=strides), starts_t, ends_t, strides_t)
    return _slice(x, _slice_plan(x.shape, axes, params), out)


def _broadcast_strides(x: np.ndarray, shape) -> list[int]:
    """Strides that read x broadcast to `shape` (right-aligned; 0 on size-1 dims of x)."""
    lead = len(shape) - x.ndim
    xs = _strides(x.shape)
    return [0 if k < lead or x.shape[k - lead] == 1 else xs[k - lead] for k in range(len(shape))]


@kernel("expand_v2", out=True)
def expand_v2(x, shape_t, *, shape, out=None):
    target = tuple(int(d) for d in np.asarray(shape_t).reshape(-1)) if shape_t is not None else shape
    full = np.broadcast_shapes(x.shape, tuple(target))
    y = _out(out, full, x.dtype)
    _copy(x, 0, _broadcast_strides(x, full), y, 0, _strides(full), full)
    return y


@kernel("tile", out=True)
def tile(x, reps_t, *, repeat_times, out=None):
    reps = tuple(int(d) for d in np.asarray(reps_t).reshape(-1)) if reps_t is not None else tuple(repeat_times)
    if len(reps) != x.ndim:
        raise ValueError(f"{len(reps)} repeats for rank {x.ndim}")
    y = _out(out, [d * r for d, r in zip(x.shape, reps)], x.dtype)
    xs, ys = _strides(x.shape), _strides(y.shape)
    box = [v for d, r in zip(x.shape, reps) for v in (r, d)]
    src = [v for s in xs for v in (0, s)]
    dst = [v for d, s in zip(x.shape, ys) for v in (d * s, s)]
    _copy(x, 0, src, y, 0, dst, box)
    return y


def _concat_prepare(consts, attrs):
    """Concat along the channels of channel-blocked tensors (`_blocked`; all inputs and the output blocked):
    per batch item, the inputs' blocks one after the other, i.e. their bytes end to end."""
    if attrs["axis"] not in (1, -3):
        return None

    def run(*xs, **kw):
        return concat(*xs, **kw)

    def blocked(*xs, axis, out=None):
        n = xs[0].shape[0]
        y = _out(out, (n, sum(x.shape[1] for x in xs), *xs[0].shape[2:]), np.float32)
        np.concatenate([x.reshape(n, -1) for x in xs], axis=1, out=y.reshape(n, -1))
        return y

    run.blocked = Blocked(free=(), tied=tuple(range(len(consts))), variant=lambda ins, out_blocked: blocked)
    return run


@kernel("concat", out=True, prepare=_concat_prepare)
def concat(*xs, axis, out=None):
    """numpy's concatenate (a memcpy a box): DenseNet121's 62 concats 8.0 -> 2.6 ms."""
    a = axis % xs[0].ndim
    shape = list(xs[0].shape)
    shape[a] = sum(x.shape[a] for x in xs)
    y = _out(out, shape, np.result_type(*xs))
    np.concatenate(xs, axis=a, out=y)
    return y


def _split_plan(xshape, axis, sections, num):
    """split of an input of xshape: (output shape, the input's box that is that output) per output."""
    a = axis % len(xshape)
    plan, at = [], 0
    for size in split_sections(xshape[a], sections, len(sections) if sections else num):
        plan.append((xshape[:a] + (size,) + xshape[a + 1:], (slice(None),) * a + (slice(at, at + size),)))
        at += size
    return plan


def _split(x, plan, out):
    """`out`: the outputs' arena views (a tuple, as the runtime hands to a multi-output kernel) or None."""
    outs = []
    for k, (shape, box) in enumerate(plan):
        y = out[k] if out is not None else np.empty(shape, x.dtype)
        np.copyto(y, x[box])
        outs.append(y)
    return tuple(outs)


def _split_prepare(consts, attrs):
    """The boxes worked out once per input shape; the outputs written into their arena views, so that a concat
    the memory plan assembles from them is skipped (ShuffleNetV2 exported by torch's dynamo exporter: 13 splits).
    Along the channels, the split also runs on channel-blocked tensors (`_blocked`; the input and all outputs
    blocked, which the layout allows when every section is a multiple of 16): per batch item, each output is a
    run of the input's bytes (YOLOv8's C2f blocks split a conv's output in two and convolve one half)."""
    plans: dict = {}

    def run(x, *, axis, sections, num, out=None):
        return _split(x, per_size(plans, x.shape, lambda: _split_plan(x.shape, axis, sections, num)), out)

    def blocked(x, *, axis, sections, num, out=None):
        plan = per_size(plans, x.shape, lambda: _split_plan(x.shape, axis, sections, num))
        return tuple(_channel_run(x, box[1].start, shape[1], out[k] if out is not None else None)
                     for k, (shape, box) in enumerate(plan))

    if attrs["axis"] in (1, -3):
        run.blocked = Blocked(free=(), tied=(0,), variant=lambda ins, out_blocked: blocked)
    return run


@kernel("split", out=True, prepare=_split_prepare)
def split(x, *, axis, sections, num, out=None):
    return _split(x, _split_plan(x.shape, axis, sections, num), out)


@kernel("gather", out=True)
def gather(x, index, *, axis, out=None):
    a = axis % x.ndim
    idx = np.asarray(index)
    y = _out(out, x.shape[:a] + idx.shape + x.shape[a + 1:], x.dtype)
    outer, inner = math.prod(x.shape[:a]), math.prod(x.shape[a + 1:])
    bad = _gather_loop(_bits(x), outer, x.shape[a], inner, idx.reshape(-1).astype(np.int64), _bits(y)) \
        if idx.size else -1
    if bad >= 0:
        raise IndexError(f"gather index {idx.reshape(-1)[bad]} out of range for an axis of size {x.shape[a]}")
    return y


@kernel("scatter_nd", out=True)
def scatter_nd(x, index, updates, *, reduction, out=None):
    """(the op's reference: exporters build masks with it, which fold to constants at opt time; Swin's)"""
    return _into(out, OPS["scatter_nd"].run(x, index, updates, reduction=reduction)[0])


# --- element-wise copies -------------------------------------------------------------------------------

def _into(out, value):
    if out is None:
        return np.array(value, order="C")
    out[...] = value
    return out


@kernel("cast", out=True)
def cast(x, *, out_dtype, out=None):
    """numpy's astype semantics, as the reference (float -> int truncates toward zero)."""
    if out is not None:
        out[...] = x
        return out
    return np.asarray(x).astype(DType.of(out_dtype).np)


@kernel("assign", out=True)
def assign(x, out=None):
    return _into(out, x)


@kernel("dropout", out=True)
def dropout(x, *, dropout_prob, is_test, out=None):
    return _into(out, x)
