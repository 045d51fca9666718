"""Fast convolution variants, picked by opt from the node's shapes and recorded in the .nb:

- `gemm`: im2col + BLAS sgemm per group, over blocks of output rows (1x1 stride-1 convs skip im2col: a plain
  GEMM; stride-2 convs take their windows from the input's phase planes);
- `winograd_f43` / `winograd_f63` / `winograd_f23`: Winograd F(4x4|6x6|2x2, 3x3) for 3x3 stride-1 convs, the filter
  transform done once at load (`prepare`), the 36/16 element-wise products as one batched BLAS matmul;
- `direct` 3x3 convs with few channels (stems): two output channels at a time straight from the input's phase
  planes, in blocks of output rows;
- `direct` depthwise 3x3 / 5x5 (stride 1 or 2) numba kernels: mid-size maps through zero-bordered phase
  planes (every tap a fixed offset in one long loop), wide ones row by row read in place, 7x7 ones
  channels-last, vectorized over the channels. 3x3 max pooling shares the phase planes.
On CPUs with AVX-512, 1x1 convs (where BLAS is slower), the direct 3x3 convs and most depthwise convs run
LLVM-IR micro-kernels on 16-lane vectors instead (`_tiled`: register-tiled GEMM and direct conv, `_dwvec`:
depthwise strips); the variant names and the .nb stay the same.
Bias, a residual input (conv2d) and the fused activation are applied in each kernel's epilogue; every variant
writes into `out` (an arena view) when given one. Scratch buffers are kept per node, so a steady-state run allocates
little beyond BLAS's own workspace.
"""
from __future__ import annotations

import math

import numpy as np
from numba import prange

from ...ir.ops.activation import apply_act
from ...ir.ops.conv import tap_span
from ..threads import numba_threads
from . import Blocked, _blocked, _dwvec, _tiled, kernel
from . import _blocked_winograd as _bwino
from ._util import JIT, NO_BIAS, attrs_bound, bias_of, exp32, frozen, full_bias, njit, per_size, winograd_matrices

PJIT = dict(JIT, parallel=True)
ACT_CODES = {"": 0, "relu": 1, "relu6": 2, "leaky_relu": 3, "hard_swish": 4, "sigmoid": 5, "swish": 6,
             "hard_sigmoid": 7, "tanh": 8}


@njit(inline="always", **JIT)
def _sigmoid32(v):
    """1 / (1 + e**-v) in float32 (`exp32`): loops of it vectorize where the function's error model is numpy's
    (a float division by zero there is inf, not an exception to check for)."""
    return np.float32(1.0) / (np.float32(1.0) + exp32(-v))


@njit(inline="always", **JIT)
def _swish32(v, beta):
    """v * sigmoid(beta * v) in float32, as `_sigmoid32` (YOLO's SiLU: beta 1)."""
    return v / (np.float32(1.0) + exp32(-beta * v))


@njit(inline="always", **JIT)
def _act(v, code, alpha):
    if code == 0:
        return v
    if code == 1:
        return v if v > 0 else 0.0
    if code == 2:
        return min(max(v, 0.0), alpha)
    if code == 3:
        return v if v >= 0 else v * alpha
    if code == 4:
        return v * min(max(v + 3.0, 0.0), 6.0) / 6.0
    if code == 5:
        return _sigmoid32(v)
    if code == 6:
        return _swish32(v, np.float32(alpha))
    if code == 7:
        return min(max(v * alpha + 0.5, 0.0), 1.0)
    return math.tanh(v)


@njit(inline="always", **dict(JIT, fastmath=True))
def _bias_act_row(row, add, code, alpha):
    """row = act(row + add) in place, in one pass, one loop per activation (so each loop vectorizes)."""
    a = np.float32(alpha)
    if code == 0:
        for i in range(row.size):
            row[i] += add
    elif code == 1:
        for i in range(row.size):
            row[i] = max(row[i] + add, np.float32(0.0))
    elif code == 2:
        for i in range(row.size):
            row[i] = min(max(row[i] + add, np.float32(0.0)), a)
    elif code == 3:
        for i in range(row.size):
            v = row[i] + add
            row[i] = v if v >= 0 else v * a
    elif code == 4:
        for i in range(row.size):
            v = row[i] + add
            row[i] = v * min(max(v + np.float32(3.0), np.float32(0.0)), np.float32(6.0)) / np.float32(6.0)
    elif code == 5:
        for i in range(row.size):
            row[i] = _sigmoid32(row[i] + add)
    elif code == 6:
        for i in range(row.size):
            row[i] = _swish32(row[i] + add, a)
    else:
        for i in range(row.size):
            row[i] = _act(row[i] + add, code, alpha)


@njit(inline="always", **dict(JIT, fastmath=True))
def _act_row(row, code, alpha):
    """The activation over a 1-D row in place."""
    if code != 0:
        _bias_act_row(row, np.float32(0.0), code, alpha)


@njit(inline="always", **dict(JIT, fastmath=True))
def _bias_res_act_row(row, res, add, code, alpha):
    """row = act(row + add + res) in place, in one pass (res: a row of the residual input); the common
    activations in loops of their own, the rest through `_act`."""
    a = np.float32(alpha)
    if code == 0:
        for i in range(row.size):
            row[i] += add + res[i]
    elif code == 1:
        for i in range(row.size):
            row[i] = max(row[i] + add + res[i], np.float32(0.0))
    elif code == 2:
        for i in range(row.size):
            row[i] = min(max(row[i] + add + res[i], np.float32(0.0)), a)
    elif code == 6:
        for i in range(row.size):
            row[i] = _swish32(row[i] + add + res[i], a)
    else:
        for i in range(row.size):
            row[i] = _act(row[i] + add + res[i], code, alpha)


@njit(**dict(PJIT, fastmath=True, error_model="numpy"))
def _epilogue(y, bias, has_bias, res, has_res, code, alpha, c0, c1):
    """y: (N, O, L) in place, columns c0:c1 of each row: y = act(y + bias[o] (+ res)), one pass over each
    row. res: the residual input, (N, O, L) like y, or a placeholder when has_res is False."""
    n, o, length = y.shape
    for k in prange(n * o):
        b, c = k // o, k % o
        add = bias[c] if has_bias else np.float32(0.0)
        if has_res:
            _bias_res_act_row(y[b, c, c0:c1], res[b, c, c0:c1], add, code, alpha)
        else:
            _bias_act_row(y[b, c, c0:c1], add, code, alpha)


NO_RES = np.zeros((1, 1, 1), np.float32)  # the residual argument of an epilogue without one


@njit(**dict(JIT, fastmath=True))
def _vector_epilogue(y, bias, code, alpha):
    """y (one value per output channel) = act(y + bias), in place."""
    for i in range(y.size):
        y[i] = _act(y[i] + bias[i], code, alpha)


def _gemv(w2d, x, y, bias, code, alpha):
    """A pointwise conv of one 1x1 map (a squeeze-excite block's): BLAS's matrix-vector product and one pass for
    bias and activation (the tiles would fill one lane of 16: 576 -> 144 channels 12.7 -> 4 us). x and y hold
    one value per channel, the same bytes in NCHW and in the blocked layout."""
    yv = y.reshape(-1)
    np.dot(w2d, x.reshape(-1), out=yv)
    _vector_epilogue(yv, bias, code, alpha)
    return y


def _finish(y4, b, act_type, act_alpha, c0=0, c1=None, r=None):
    """Bias (+ residual r, y4's shape) + activation on an (N, O, H, W) result (its flattened columns c0:c1,
    all by default), in place when the activation is one we compile."""
    code = ACT_CODES.get(act_type)
    n, o = y4.shape[:2]
    y3 = y4.reshape(n, o, -1)
    c1 = y3.shape[2] if c1 is None else c1
    bias = bias_of(b)
    # the residual as the one array type the epilogue is compiled for (a writable C array: arena views are)
    res = NO_RES if r is None else (r if r.flags.c_contiguous and r.flags.writeable else np.array(r)).reshape(n, o, -1)
    if code is None:
        if b is not None or r is not None:
            _epilogue(y3, bias, b is not None, res, r is not None, 0, 0.0, c0, c1)
        y3[:, :, c0:c1] = apply_act(y3[:, :, c0:c1], act_type, act_alpha)
    elif b is not None or r is not None or code != 0:
        _epilogue(y3, bias, b is not None, res, r is not None, code, float(act_alpha), c0, c1)
    return y4


def _out_size(size, k, s, p0, p1, d):
    return (size + p0 + p1 - d * (k - 1) - 1) // s + 1


def _result(out, shape):
    return out if out is not None else np.empty(shape, np.float32)


# --- im2col + GEMM -----------------------------------------------------------------------------

@njit(**PJIT)
def _im2col(x, cols, kh, kw, sh, sw, dh, dw, pt, pl, oy0, oy1, ow):
    """x: (C, H, W) -> cols: (C*kh*kw, >= (oy1-oy0)*ow), the windows of output rows oy0:oy1, zero where the
    window reads padding. The output columns whose tap falls inside the row are worked out once per tap:
    the copy loop has no branches; plain unsigned indexing (a row view per output row cost more than the
    copy on 14x14 maps)."""
    c_in, h, w = x.shape
    for row in prange(c_in * kh * kw):
        c = row // (kh * kw)
        i = (row // kw) % kh
        j = row % kw
        off = j * dw - pl                               # ix = xo * sw + off
        x0 = min(ow, max(0, (-off + sw - 1) // sw))     # first xo with ix >= 0
        x1 = max(x0, min(ow, (w - 1 - off) // sw + 1))  # one past the last with ix < w
        ur, uc = np.uint64(row), np.uint64(c)
        for y in range(oy0, oy1):
            iy = y * sh - pt + i * dh
            d0 = np.uint64((y - oy0) * ow)
            if iy < 0 or iy >= h:
                for xo in range(ow):
                    cols[ur, d0 + np.uint64(xo)] = 0.0
                continue
            for xo in range(x0):
                cols[ur, d0 + np.uint64(xo)] = 0.0
            for xo in range(x1, ow):
                cols[ur, d0 + np.uint64(xo)] = 0.0
            ui, s0 = np.uint64(iy), np.uint64(x0 * sw + off)
            dx = d0 + np.uint64(x0)
            if sw == 1:
                for t in range(x1 - x0):
                    cols[ur, dx + np.uint64(t)] = x[uc, ui, s0 + np.uint64(t)]
            else:
                us = np.uint64(sw)
                for t in range(x1 - x0):
                    cols[ur, dx + np.uint64(t)] = x[uc, ui, s0 + us * np.uint64(t)]


# im2col runs over blocks of output rows whose columns take about this many bytes, each block's GEMM and
# epilogue right after it, while the block is still in cache (a whole 7x7 stem's columns are 7 MB); blocks
# never go under GEMM_MIN_COLS columns, where BLAS would spend more on re-packing the filter than it saves.
GEMM_BLOCK_BYTES = 512 * 1024
GEMM_MIN_COLS = 1024


def _row_blocks(k: int, oh: int, ow: int) -> int:
    """Output rows per im2col block for a K-row column matrix."""
    rows = max(GEMM_BLOCK_BYTES // (4 * k * ow), -(-GEMM_MIN_COLS // ow), 1)
    return min(rows, oh)


GROUPED_COLS_UP_TO = 1 << 21  # floats of a grouped conv's whole im2col (8 MB)


def _conv_by_taps(x, y, w2d, k, spans, strides, paddings, dilations, b, r, act_type, act_alpha, scratch):
    """A dilated conv where most taps read the padding for most outputs (DeepLabV3's ASPP: 3x3, dilation 12 on a
    14x14 map, 18% of the taps' products inside the input): per tap, one GEMM of its (O, C) filter slice by the
    input pixels it reads, added into the outputs whose tap that is; no im2col of zeros (`_gemm_conv`)."""
    (kh, kw), (sh, sw), (pt, _, pl, _), (dh, dw) = k, strides, paddings, dilations
    o = w2d.shape[0]
    taps = scratch.get("taps")
    if taps is None:  # (KH * KW, O, C): each tap's filter slice contiguous, once
        taps = scratch["taps"] = np.ascontiguousarray(w2d.reshape(o, -1, kh * kw).transpose(2, 0, 1))
    y[...] = 0.0
    for t, ((y0, y1), (x0, x1)) in enumerate(spans):
        if y1 == y0 or x1 == x0:
            continue
        i, j = divmod(t, kw)
        iy, ix = y0 * sh - pt + i * dh, x0 * sw - pl + j * dw
        for n in range(x.shape[0]):
            cols = np.ascontiguousarray(x[n, :, iy:iy + (y1 - y0 - 1) * sh + 1:sh, ix:ix + (x1 - x0 - 1) * sw + 1:sw])
            y[n, :, y0:y1, x0:x1] += (taps[t] @ cols.reshape(cols.shape[0], -1)).reshape(o, y1 - y0, x1 - x0)
    return _finish(y, b, act_type, act_alpha, r=r)


def _gemm_conv(x, w2d, b, r, w_shape, strides, paddings, dilations, groups, act_type, act_alpha, out, scratch):
    n, c, h, wd = x.shape
    o, cg, kh, kw = w_shape
    (sh, sw), (pt, pb, pl, pr), (dh, dw) = strides, paddings, dilations
    oh, ow = _out_size(h, kh, sh, pt, pb, dh), _out_size(wd, kw, sw, pl, pr, dw)
    y = _result(out, (n, o, oh, ow))
    og = o // groups
    x = np.ascontiguousarray(x, dtype=np.float32)
    if kh == kw == 1 and sh == sw == 1 and not any(paddings):  # pointwise: a plain GEMM
        for b_ in range(n):
            yb = y[b_].reshape(o, oh * ow)
            for g in range(groups):
                rhs = x[b_, g * cg:(g + 1) * cg].reshape(cg, h * wd)
                np.matmul(w2d[g * og:(g + 1) * og], rhs, out=yb[g * og:(g + 1) * og])
        return _finish(y, b, act_type, act_alpha, r=r)
    if groups == 1 and (dh > 1 or dw > 1):
        spans = scratch.get(("spans", h, wd))
        if spans is None:  # (per input size, once: None when most products lie inside the input)
            spans = [(tap_span(h, oh, sh, pt, i * dh), tap_span(wd, ow, sw, pl, j * dw))
                     for i in range(kh) for j in range(kw)]
            sparse = 2 * sum((y1 - y0) * (x1 - x0) for (y0, y1), (x0, x1) in spans) < kh * kw * oh * ow
            spans = scratch[("spans", h, wd)] = spans if sparse else ()
        if spans:
            return _conv_by_taps(x, y, w2d, (kh, kw), spans, strides, paddings, dilations, b, r, act_type,
                                 act_alpha, scratch)
    rows = _row_blocks(cg * kh * kw, oh, ow)
    key = (cg * kh * kw, rows * ow)
    if len(scratch) > 8:  # buffers of input sizes seen before (dynamic shapes): keep a few
        scratch.clear()
    cols = scratch.get(key)
    if cols is None:
        # rows 64 bytes longer than the data: a row stride of a large power of two (112*112*4 bytes is
        # 49 * 1024) makes BLAS's reads of successive rows collide in the cache (ResNet50 stem -15%)
        cols = scratch[key] = np.empty((key[0], key[1] + 16), np.float32)
    # stride 2, kernels of 3 and up (stems, downsampling convs): im2col from the input split into its four
    # phase planes, so that each window row is a contiguous copy instead of a stride-2 gather (these convs
    # 8-15% faster as a whole)
    phased = sh == sw == 2 and kh == kw >= 3 and dh == dw == 1
    if phased:
        mt, ml, rh, ws, _, offs = planes_geometry(oh, ow, kh, 2, pt, pl)
        pkey = ("planes", c, h, wd, rh, ws)  # (the input size too: it decides which cells are inside)
        planes = scratch.get(pkey)
        if planes is None:  # zero borders, written once; each call overwrites the inside
            planes = scratch[pkey] = np.zeros((c, 4 * rh * ws), np.float32)
    # a map of up to 64 outputs on AVX-512 with K up to 2048: the whole map is one block, multiplied by the
    # channel tiles (the filter packed once; BLAS re-packs it on every call): ResNet50's 1024 -> 2048 stride-2
    # 1x1 2.7 -> 2.1 ms. With K = 4608 (its 3x3 512 -> 512) a tile's filter panel no longer stays in L2 across
    # the pixel groups and BLAS is faster.
    tiles = (_tiled.AVAILABLE and groups == 1 and oh * ow <= _tiled.CHANNEL_TILES_UP_TO and rows == oh
             and cg * kh * kw <= 2048)
    if tiles:
        wq = scratch.get("packed")
        if wq is None:
            wq = scratch["packed"] = _tiled.pack_channels(w2d)
        bias, bounds = bias_of(b), _tile_bounds(act_type, act_alpha)
        if b is None:
            bias = scratch.get("no bias")
            if bias is None:
                bias = scratch["no bias"] = full_bias(None, o)
        a, hi = bounds or (1.0, np.inf)
    for b_ in range(n):
        yb = y[b_].reshape(o, oh * ow)
        if phased:
            _fill_all_planes(x, b_, planes, 2, mt, ml, rh, ws)
        if tiles:
            if phased:
                _im2col_planes(planes, 0, cols[:, :oh * ow], kh, offs, ws, 0, oh, ow)
            else:
                _im2col(x[b_], cols, kh, kw, sh, sw, dh, dw, pt, pl, 0, oh, ow)
            res = _NO_RES_FLAT if r is None else _residual_rows(r, n)[b_]
            _tiled.tiled_gemm_channels(wq, cols.reshape(-1), cols.shape[1], yb.reshape(-1), bias, res, r is not None,
                                       a, hi, o, cg * kh * kw, oh * ow)
            if bounds is None:
                _finish(y[b_:b_ + 1], None, act_type, act_alpha)
            continue
        if groups > 1 and c * kh * kw * oh * ow <= GROUPED_COLS_UP_TO:
            # grouped (RegNet's 16-channel groups, 25 of them on 7x7): im2col of all channels at once, one
            # batched product of the groups' filters by their columns (per group a call each cost more than
            # the products: 298 -> 118 us there)
            gkey = ("grouped", c * kh * kw, oh * ow)
            allc = scratch.get(gkey)
            if allc is None:  # (rows 16 longer, as `cols`: the im2col kernels see the array types they were
                allc = scratch[gkey] = np.empty((c * kh * kw, oh * ow + 16), np.float32)  # compiled for)
            if phased:
                _im2col_planes(planes, 0, allc[:, :oh * ow], kh, offs, ws, 0, oh, ow)
            else:
                _im2col(x[b_], allc, kh, kw, sh, sw, dh, dw, pt, pl, 0, oh, ow)
            np.matmul(w2d.reshape(groups, og, -1), allc[:, :oh * ow].reshape(groups, cg * kh * kw, oh * ow),
                      out=yb.reshape(groups, og, oh * ow))
            _finish(y[b_:b_ + 1], b, act_type, act_alpha, r=None if r is None else r[b_:b_ + 1])
            continue
        for y0 in range(0, oh, rows):
            y1 = min(oh, y0 + rows)
            c0, c1 = y0 * ow, y1 * ow
            for g in range(groups):
                if phased:
                    _im2col_planes(planes, g * cg, cols[:, :c1 - c0], kh, offs, ws, y0, y1, ow)
                else:
                    _im2col(x[b_, g * cg:(g + 1) * cg], cols, kh, kw, sh, sw, dh, dw, pt, pl, y0, y1, ow)
                np.matmul(w2d[g * og:(g + 1) * og], cols[:, :c1 - c0], out=yb[g * og:(g + 1) * og, c0:c1])
            _finish(y[b_:b_ + 1], b, act_type, act_alpha, c0, c1, None if r is None else r[b_:b_ + 1])
    return y


def _conv_applies(node, tensors):
    x, w = tensors[node.inputs[0]].shape, tensors[node.inputs[1]].shape
    return x is not None and len(x) == 4 and w is not None and len(w) == 4 and tensors[node.inputs[0]].dtype.value == "float32"


def _gemm_prepare(consts, attrs):
    w = consts[1]
    if w is None:
        return None
    w2d = np.ascontiguousarray(w, dtype=np.float32).reshape(w.shape[0], -1)
    scratch: dict = {}

    def run(x, w_, b, r=None, *, out=None, strides, paddings, dilations, groups, act_type, act_alpha):
        return _gemm_conv(x, w2d, b, r, w.shape, strides, paddings, dilations, groups, act_type, act_alpha, out,
                          scratch)

    code = ACT_CODES.get(attrs["act_type"])
    if (w.shape[2:] == (1, 1) and tuple(attrs["strides"]) == (1, 1) and not any(attrs["paddings"])
            and attrs["groups"] == 1 and code is not None):
        # the common pointwise case, with what the general path works out on every call done here, once
        # (about 3 us a call: 2-5% of a MobileNet's small layers)
        b0 = consts[2] if len(consts) > 2 else None
        bias, has_bias, alpha = bias_of(b0), b0 is not None, float(attrs["act_alpha"])
        o, c = w2d.shape

        @attrs_bound
        def general(x, w_, b, r=None, *, out=None, **_):
            return run(x, w_, b, r, out=out, **attrs)

        @attrs_bound
        def pointwise(x, w_, b, r=None, *, out=None, **_):
            if b is not b0:  # a bias computed at run time
                return general(x, w_, b, r, out=out)
            n, h, wd = x.shape[0], x.shape[2], x.shape[3]
            y = out if out is not None else np.empty((n, o, h, wd), np.float32)
            x3 = np.ascontiguousarray(x, dtype=np.float32).reshape(n, c, h * wd)
            y3 = y.reshape(n, o, h * wd)
            for i in range(n):
                np.matmul(w2d, x3[i], out=y3[i])
            if r is not None:
                _finish(y, b0, attrs["act_type"], alpha, r=r)
            elif has_bias or code:
                _epilogue(y3, bias, has_bias, NO_RES, False, code, alpha, 0, h * wd)
            return y
        fast = _tiled_pointwise(w2d, b0, code, alpha, general, pointwise) if _tiled.AVAILABLE else pointwise
        bounds = _blocked.act_bounds(code, alpha)
        if _blocked.AVAILABLE and bounds is not None:
            fast.blocked = _blocked_pointwise(w2d, b0, bounds, code, alpha)
        return fast

    return run


_NO_RES_FLAT = np.zeros(1, np.float32)


def _tile_bounds(act_type, act_alpha):
    """The (a, hi) with which the AVX-512 kernels apply an activation themselves (`_tiled.act_bounds`), or None
    when they leave it to a second pass (`_finish`)."""
    code = ACT_CODES.get(act_type)
    return None if code is None else _tiled.act_bounds(code, float(act_alpha))


def _item_rows(x, n):
    """x as (n, -1) rows, float32 and C order (a view where it already is)."""
    return (x if x.flags.c_contiguous and x.dtype == np.float32 else np.ascontiguousarray(x, np.float32)).reshape(n, -1)


def _residual_rows(r, n):
    """A residual input as the one array type the AVX-512 kernels are compiled for: (n, -1), float32, C order,
    writable (arena views are; a read-only input is copied)."""
    if not (r.flags.c_contiguous and r.flags.writeable and r.dtype == np.float32):
        r = np.array(r, dtype=np.float32, order="C")
    return r.reshape(n, -1)


def _tiled_pointwise(w2d, b0, code, alpha, general, blas):
    """The pointwise conv through the register-tiled GEMMs (`_tiled`) where they beat BLAS for the call's map
    size (`_tiled.pays`): the filter packed here, bias, residual and a relu-like activation applied in the
    tiles; other activations in a second pass. general and blas: the other paths, attributes bound."""
    o, c = w2d.shape
    packs: dict = {}  # the filter packed for the pixel tiles and/or the channel tiles (7x7 maps), when first used
    plans: dict = {}  # map size -> (tiles or None for BLAS, the packed filter, pixels per chunk)
    bias = full_bias(b0, o)
    bounds = _tiled.act_bounds(code, alpha)
    a, hi = bounds if bounds is not None else (1.0, np.inf)

    def plan(hw):
        if not _tiled.pays(c, hw):
            return None, None, 0
        channels = hw <= _tiled.CHANNEL_TILES_UP_TO
        wp = packs.get(channels)
        if wp is None:
            wp = packs[channels] = _tiled.pack_channels(w2d) if channels else _tiled.pack(w2d)
        return ("channels" if channels else "pixels"), wp, _tiled.chunk_of(c, hw)

    @attrs_bound
    def pointwise(x, w_, b, r=None, *, out=None, **_):
        if b is not b0:  # a bias computed at run time
            return general(x, w_, b, r, out=out)
        n, h, wd = x.shape[0], x.shape[2], x.shape[3]
        hw = h * wd
        if n * hw == 1 and r is None:
            return _gemv(w2d, _item_rows(x, 1), out if out is not None else np.empty((1, o, 1, 1), np.float32),
                         bias, code, alpha)
        tiles, wp, chunk = per_size(plans, hw, lambda: plan(hw))
        if tiles is None:
            return blas(x, w_, b, r, out=out)
        y = out if out is not None else np.empty((n, o, h, wd), np.float32)
        x2 = _item_rows(x, n)
        y2 = y.reshape(n, -1)
        r2 = None if r is None else _residual_rows(r, n)
        for i in range(n):
            res = _NO_RES_FLAT if r2 is None else r2[i]
            if tiles == "channels":
                _tiled.tiled_gemm_channels(wp, x2[i], hw, y2[i], bias, res, r2 is not None, a, hi, o, c, hw)
            else:
                _tiled.tiled_gemm(wp, x2[i], y2[i], bias, res, r2 is not None, a, hi, o, c, hw, chunk,
                                  numba_threads())
        if bounds is None:
            _epilogue(y.reshape(n, o, hw), NO_BIAS, False, NO_RES, False, code, alpha, 0, hw)
        return y
    return pointwise


def _blocked_pointwise(w2d, b0, bounds, code, alpha):
    """The pointwise conv on channel-blocked tensors (`_blocked`): x in either layout, the residual in y's."""
    o, c = w2d.shape
    bias = full_bias(b0, o)
    a, hi = bounds

    def variant(blocked_inputs, out_blocked):
        xb = 0 in blocked_inputs
        wq = _blocked.pack(w2d)  # (only for a conv the layout blocks or borders)

        @attrs_bound
        def run(x, w_, b, r=None, *, out=None, **_):
            n, h, wd = x.shape[0], x.shape[2], x.shape[3]
            y = out if out is not None else np.empty((n, o, h, wd), np.float32)
            if n * h * wd == 1 and r is None:  # (one 1x1 map: the same bytes in both layouts)
                return _gemv(w2d, _item_rows(x, 1), y, bias, code, alpha)
            x2 = _item_rows(x, n)
            y2 = y.reshape(n, -1)
            r2 = None if r is None else _residual_rows(r, n)
            for i in range(n):
                _blocked.pointwise(wq, x2[i], y2[i], bias, _NO_RES_FLAT if r2 is None else r2[i], r2 is not None, a,
                                   hi, o, c, h * wd, xb, out_blocked)
            return y
        return run
    return Blocked(free=(0,), tied=(3,), variant=variant)


def _blocked_conv(consts, attrs):
    """The kh x kw conv (groups 1; or square, in groups of one block: `_blocked_grouped_conv`; equal strides, no
    dilation, a relu-like activation, hard_swish or swish) into a channel-blocked output (`_blocked`), from a
    blocked or an NCHW input; None where it has none."""
    w, b0 = consts[1], consts[2] if len(consts) > 2 else None
    code = ACT_CODES.get(attrs["act_type"])
    bounds = None if code is None else _blocked.act_bounds(code, float(attrs["act_alpha"]))
    (sh, sw) = attrs["strides"]
    if (not _blocked.AVAILABLE or bounds is None or w is None or w.ndim != 4 or sh != sw
            or tuple(attrs["dilations"]) != (1, 1)):
        return None
    o, c, kh, kw = w.shape
    bias = full_bias(b0, o)
    a, hi = bounds
    if attrs["groups"] != 1:
        groups = attrs["groups"]
        if kh != kw or c != _blocked.BLOCK or o != groups * _blocked.BLOCK:
            return None
        return _blocked_grouped_conv(w, bias, a, hi, sh)
    k = kh if kh == kw else (kh, kw)  # (a k x 1 or 1 x k conv: Inception's, through the phase planes)

    def variant(blocked_inputs, out_blocked):
        xb = 0 in blocked_inputs
        wq = _blocked.pack_conv(w, xb)

        def in_place(x, w_, b, r=None, *, out=None, strides, paddings, dilations, groups, act_type, act_alpha):
            """An NCHW input read where it lies (`_blocked.conv_nchw`; square filters)."""
            n, _, h, wd = x.shape
            pt, pb, pl, pr = paddings
            oh, ow = _out_size(h, k, sh, pt, pb, 1), _out_size(wd, k, sh, pl, pr, 1)
            y = _result(out, (n, o, oh, ow))
            x2 = _item_rows(x, n)
            y2 = y.reshape(n, -1)
            r2 = None if r is None else _residual_rows(r, n)
            for i in range(n):
                _blocked.conv_nchw(wq, x2[i], y2[i], bias, _NO_RES_FLAT if r2 is None else r2[i], r2 is not None, a, hi,
                                   o, c, h, wd, k, sh, pt, pl, oh, ow)
            return y

        if not xb and sh in _blocked.NCHW_STRIDES and kh == kw:
            return in_place
        return _over_phase_planes(c, o, k, sh, xb, lambda planes, y, res, has_res, g, oh, ow: _blocked.conv(
            wq, planes, y, bias, res, has_res, a, hi, o, c, g.taps, g.pix, g.plane, g.wph, oh, ow, xb))
    return Blocked(free=(), tied=(3,), follows=(0,), variant=variant)


def _over_phase_planes(c, o, k, s, xb, item):
    """The run of a blocked conv that reads x's zero-padded phase planes (`_blocked.ConvGeometry`, worked out once
    per input size, and `_blocked.pad`): batch item by item, item(planes, y, res, has_res, geometry, oh, ow)
    runs the kernel into y (flat), res the item's residual (flat, blocked) when has_res. c: x's channels; k an
    int or (kh, kw); s the stride."""
    kh, kw = (k, k) if isinstance(k, int) else k
    sizes: dict = {}  # input size -> _blocked.ConvGeometry

    def run(x, w_, b, r=None, *, out=None, strides, paddings, dilations, groups, act_type, act_alpha):
        n, _, h, wd = x.shape
        pt, pb, pl, pr = paddings
        oh, ow = _out_size(h, kh, s, pt, pb, 1), _out_size(wd, kw, s, pl, pr, 1)
        g = per_size(sizes, (h, wd), lambda: _blocked.ConvGeometry(c, h, wd, k, s, pt, pb, pl, pr, oh, ow, xb))
        y = _result(out, (n, o, oh, ow))
        x2 = _item_rows(x, n)
        y2 = y.reshape(n, -1)
        r2 = None if r is None else _residual_rows(r, n)
        for i in range(n):
            item(_blocked.pad(x2[i], g, k, s, pt, pl), y2[i], _NO_RES_FLAT if r2 is None else r2[i], r2 is not None, g,
                 oh, ow)
        return y
    return run


def _blocked_winograd(m, consts, attrs):
    """Winograd F(m, 3) into a channel-blocked output (`_blocked_winograd`), from a blocked or an NCHW input;
    None where the blocked kernels cannot apply the activation."""
    w, b0 = consts[1], consts[2] if len(consts) > 2 else None
    code = ACT_CODES.get(attrs["act_type"])
    bounds = None if code is None else _blocked.act_bounds(code, float(attrs["act_alpha"]))
    if not _blocked.AVAILABLE or bounds is None or m not in _bwino.SIZES:
        return None
    a, hi = bounds
    o, c = w.shape[:2]
    bias = full_bias(b0, o)
    zeros = full_bias(None, o)
    cp = -(-c // _blocked.BLOCK) * _blocked.BLOCK
    n2 = (m + 2) ** 2

    def variant(blocked_inputs, out_blocked):
        xb = 0 in blocked_inputs
        uq, usize = _bwino.pack(w, m)  # (only for a conv the layout blocks: the NCHW run transforms its own)
        sizes: dict = {}  # input size -> _bwino.Padded

        def run(x, w_, b, r=None, *, out=None, strides, paddings, dilations, groups, act_type, act_alpha):
            n, _, h, wd = x.shape
            pt, pb, pl, pr = paddings
            oh, ow = h + pt + pb - 2, wd + pl + pr - 2
            xp = per_size(sizes, (h, wd), lambda: _bwino.Padded(c, h, wd, m, pt, pl, oh, ow))
            per = _bwino.chunk(m, cp, o, xp.th * xp.tw)
            v, mm = _bwino.scratch(n2 * max(cp, o) * per)
            y = _result(out, (n, o, oh, ow))
            x2 = _item_rows(x, n)
            y2 = y.reshape(n, -1)
            r2 = None if r is None else _residual_rows(r, n)
            for i in range(n):
                xp.fill(x2[i], xb)
                _bwino.winograd(xp.data, xp.rows, xp.cols, v, mm, uq, usize, zeros, y2[i], bias,
                                _NO_RES_FLAT if r2 is None else r2[i], r2 is not None, a, hi, m, cp, o, xp.th, xp.tw,
                                oh, ow, per)
            return y
        return run
    return Blocked(free=(), tied=(3,), follows=(0,), variant=variant)


def _blocked_grouped_conv(w, bias, a, hi, s):
    """A grouped k x k conv (stride s) whose groups are one block each, 16 input and 16 output channels (RegNet's
    group width 16), on blocked tensors in and out: each group the blocked conv tile of one output block over its
    own block of the input (`_blocked.grouped_conv`), instead of an im2col and one small GEMM a group."""
    o, _, k, _ = w.shape
    groups = o // _blocked.BLOCK

    def variant(blocked_inputs, out_blocked):
        wq, gsize = _blocked.pack_grouped(w)
        return _over_phase_planes(o, o, k, s, True, lambda planes, y, res, has_res, g, oh, ow: _blocked.grouped_conv(
            wq, gsize, planes, y, bias, res, has_res, a, hi, groups, g.taps, g.pix, g.plane, g.wph, oh, ow))
    return Blocked(free=(), tied=(0, 3), variant=variant)


def _padded_winograd(m, consts, attrs):
    """An NCHW Winograd F(m, 3) whose output channels are not whole blocks (the PP-OCRv4 detector's 96 -> 24 convs
    on 160x160 maps), run by the blocked kernel: the filter padded with zero filters to whole blocks, the blocked
    result's first O channels reordered to NCHW (`_blocked.to_nchw`). A third more products for 24 channels, yet
    12 -> 7.3 ms a conv in the detector against the NCHW transforms + BLAS. None where the blocked kernel does not
    apply; the returned run takes no residual."""
    w, b0 = consts[1], consts[2] if len(consts) > 2 else None
    o = w.shape[0]
    opad = -(-o // _blocked.BLOCK) * _blocked.BLOCK  # (the output channels in whole blocks)
    if opad == o:
        return None
    wp = np.zeros((opad,) + w.shape[1:], np.float32)
    wp[:o] = w
    bp = None if b0 is None else np.concatenate([np.asarray(b0, np.float32), np.zeros(opad - o, np.float32)])
    declared = _blocked_winograd(m, (consts[0], wp, bp), attrs)
    if declared is None:
        return None
    blocked = declared.variant(set(), True)
    scratch: dict = {}

    def run(x, out, **attrs):
        n, _, h, wd = x.shape
        pt, pb, pl, pr = attrs["paddings"]
        oh, ow = h + pt + pb - 2, wd + pl + pr - 2
        z = per_size(scratch, (n, oh, ow), lambda: np.empty((n, opad, oh, ow), np.float32))
        blocked(x, wp, bp, out=z, **attrs)
        y = _result(out, (n, o, oh, ow))
        y2, z2 = y.reshape(n, -1), z.reshape(n, -1)
        for i in range(n):
            _blocked.to_nchw(z2[i], y2[i], o, oh * ow)
        return y
    return run


def _and_blocked(prepare):
    """A conv2d variant's prepare, its result also declaring the blocked conv (`_blocked_conv`), unless it has
    its own (the pointwise one)."""
    def both(consts, attrs):
        fn = prepare(consts, attrs)
        if fn is not None and getattr(fn, "blocked", None) is None:
            declared = _blocked_conv(consts, attrs)
            if declared is not None:
                fn.blocked = declared
        return fn
    return both


@kernel("conv2d", variant="gemm", out=True, applies=_conv_applies, priority=10, prepare=_and_blocked(_gemm_prepare))
def conv2d_gemm(x, w, b, r=None, *, out=None, strides, paddings, dilations, groups, act_type, act_alpha):
    """im2col + BLAS GEMM (the filter may be a run-time tensor here); bias, residual and activation in the
    epilogue."""
    w2d = np.ascontiguousarray(w, dtype=np.float32).reshape(w.shape[0], -1)
    return _gemm_conv(x, w2d, b, r, w.shape, strides, paddings, dilations, groups, act_type, act_alpha, out, {})


# --- depthwise ---------------------------------------------------------------------------------

@njit(**dict(PJIT, fastmath=True))
def _depthwise(x, w, y, bias, has_bias, sh, sw, dh, dw, pt, pb, pl, pr, code, alpha):
    """Per channel: copy the plane into a zero-padded buffer, then each kernel tap adds a shifted copy of it
    to the output. Stride 1: one long loop over the flattened padded rows (vectorizes); stride s: per
    output row with strided reads. fastmath only lets LLVM vectorize these independent multiply-adds."""
    n, c, h, wd = x.shape
    _, _, oh, ow = y.shape
    kh, kw = w.shape[2], w.shape[3]
    hp, wp = h + pt + pb, wd + pl + pr
    for k in prange(n * c):
        b, ch = k // c, k % c
        add = bias[ch] if has_bias else 0.0
        pad = np.zeros(hp * wp + kw * dw, np.float32)
        for iy in range(h):
            base = (iy + pt) * wp + pl
            for ix in range(wd):
                pad[base + ix] = x[b, ch, iy, ix]
        if sh == 1 and sw == 1:
            acc = np.zeros(oh * wp, np.float32)
            for i in range(kh):
                for j in range(kw):
                    wv = w[ch, 0, i, j]
                    off = i * dh * wp + j * dw
                    for p in range(oh * wp):
                        acc[p] += wv * pad[p + off]
            for oy in range(oh):
                for ox in range(ow):
                    y[b, ch, oy, ox] = _act(acc[oy * wp + ox] + add, code, alpha)
        else:
            acc = np.zeros(ow, np.float32)
            for oy in range(oh):
                acc[:] = 0.0
                for i in range(kh):
                    row = (oy * sh + i * dh) * wp
                    for j in range(kw):
                        wv = w[ch, 0, i, j]
                        off = row + j * dw
                        for ox in range(ow):
                            acc[ox] += wv * pad[off + ox * sw]
                for ox in range(ow):
                    y[b, ch, oy, ox] = _act(acc[ox] + add, code, alpha)


@njit(inline="always", **dict(JIT, fastmath=True))
def _dw3_edge(x, w, b, ch, iy0, h, j0, wd, add):
    """One output of a 3x3 depthwise window that reaches past a border of the input (a literal 3: with the
    kernel's size read from `w` the whole row kernel ran 1.5x slower)."""
    acc = add
    for i in range(3):
        iy = iy0 + i
        if 0 <= iy < h:
            for t in range(3):
                j = j0 + t
                if 0 <= j < wd:
                    acc += w[ch, 0, i, t] * x[b, ch, iy, j]
    return acc


U1, U2 = np.uint64(1), np.uint64(2)


@njit(**dict(PJIT, fastmath=True))
def _depthwise3x3(x, w, y, bias, has_bias, s, pt, pl, code, alpha):
    """The 3x3 (dilation 1, stride 1 or 2) case for wide planes, read in place (no padded copy): each output
    row whose window lies inside the input is one loop with the nine taps unrolled over the interior
    columns; border columns and rows go through `_dw3_edge`. The interior loop indexes with unsigned
    integers and no array views: numba then neither guards against negative indices nor counts references,
    and the loop vectorizes (1.4-2x over row views)."""
    n, c, h, wd = x.shape
    _, _, oh, ow = y.shape
    lo = min(ow, (pl + s - 1) // s)                # first output column whose taps are all inside
    hi = max(lo, min(ow, (wd - 3 + pl) // s + 1))  # one past the last
    for k in prange(n * c):
        b, ch = k // c, k % c
        w00, w01, w02 = w[ch, 0, 0, 0], w[ch, 0, 0, 1], w[ch, 0, 0, 2]
        w10, w11, w12 = w[ch, 0, 1, 0], w[ch, 0, 1, 1], w[ch, 0, 1, 2]
        w20, w21, w22 = w[ch, 0, 2, 0], w[ch, 0, 2, 1], w[ch, 0, 2, 2]
        add = bias[ch] if has_bias else np.float32(0.0)
        ub, uc = np.uint64(b), np.uint64(ch)
        for oy in range(oh):
            iy = oy * s - pt
            if iy < 0 or iy + 2 >= h:
                for ox in range(ow):
                    y[b, ch, oy, ox] = _dw3_edge(x, w, b, ch, iy, h, ox * s - pl, wd, add)
            else:
                r0, r1, r2, uo = np.uint64(iy), np.uint64(iy + 1), np.uint64(iy + 2), np.uint64(oy)
                base, ulo = np.uint64(lo * s - pl), np.uint64(lo)
                if s == 1:  # a literal stride in each loop: with `s` as a factor, stride 2 ran 25% slower
                    for t in range(hi - lo):
                        j = np.uint64(t) + base
                        y[ub, uc, uo, np.uint64(t) + ulo] = (
                            add + w00 * x[ub, uc, r0, j] + w01 * x[ub, uc, r0, j + U1] + w02 * x[ub, uc, r0, j + U2]
                            + w10 * x[ub, uc, r1, j] + w11 * x[ub, uc, r1, j + U1] + w12 * x[ub, uc, r1, j + U2]
                            + w20 * x[ub, uc, r2, j] + w21 * x[ub, uc, r2, j + U1] + w22 * x[ub, uc, r2, j + U2])
                else:
                    for t in range(hi - lo):
                        j = U2 * np.uint64(t) + base
                        y[ub, uc, uo, np.uint64(t) + ulo] = (
                            add + w00 * x[ub, uc, r0, j] + w01 * x[ub, uc, r0, j + U1] + w02 * x[ub, uc, r0, j + U2]
                            + w10 * x[ub, uc, r1, j] + w11 * x[ub, uc, r1, j + U1] + w12 * x[ub, uc, r1, j + U2]
                            + w20 * x[ub, uc, r2, j] + w21 * x[ub, uc, r2, j + U1] + w22 * x[ub, uc, r2, j + U2])
                for ox in range(lo):
                    y[b, ch, oy, ox] = _dw3_edge(x, w, b, ch, iy, h, ox * s - pl, wd, add)
                for ox in range(hi, ow):
                    y[b, ch, oy, ox] = _dw3_edge(x, w, b, ch, iy, h, ox * s - pl, wd, add)
            _act_row(y[b, ch, oy], code, alpha)


@njit(**dict(PJIT, fastmath=True))
def _depthwise_hwc(x, wt, y, bias, s, pt, pl, k, code, alpha):
    """Small planes (a row shorter than a few vectors): channels-last. x (N, C, H, W) is transposed to
    (N, H, W, C) here, each output pixel is one loop over all channels per tap, and the result goes back to
    y (N, C, OH, OW); plain indexing throughout (no views to reference-count, no numpy transposes).
    wt (K*K, C); bias has C values."""
    n, c, h, wd = x.shape
    _, _, oh, ow = y.shape
    xt = np.empty((n, h, wd, c), np.float32)
    yt = np.empty((n, oh, ow, c), np.float32)
    for idx in prange(n * h):
        b, iy = idx // h, idx % h
        for q in range(c):
            for ix in range(wd):
                xt[b, iy, ix, q] = x[b, q, iy, ix]
    for idx in prange(n * oh):
        b, oy = idx // oh, idx % oh
        for ox in range(ow):
            for q in range(c):
                yt[b, oy, ox, q] = bias[q]
            for i in range(k):
                iy = oy * s + i - pt
                if 0 <= iy < h:
                    for j in range(k):
                        ix = ox * s + j - pl
                        if 0 <= ix < wd:
                            t = i * k + j
                            for q in range(c):
                                yt[b, oy, ox, q] += wt[t, q] * xt[b, iy, ix, q]
        _act_row(yt[b, oy].reshape(-1), code, alpha)
    for idx in prange(n * c):
        b, q = idx // c, idx % c
        for oy in range(oh):
            for ox in range(ow):
                y[b, q, oy, ox] = yt[b, oy, ox, q]


def planes_geometry(oh, ow, k, s, pt, pl):
    """The phase planes of a k x k, stride-s window op with paddings (pt, pl) before the input: plane rows
    and columns before the first input one (mt, ml), plane rows (rh), their stride (ws), the flattened
    output length covered, and each tap's offset from the output's flattened position (see
    `_depthwise_planes`)."""
    mt, ml = -min(0, -pt // s), -min(0, -pl // s)
    rh = oh + max(0, (k - 1 - pt) // s) + mt
    ws = ow + max(0, (k - 1 - pl) // s) + ml
    plane = rh * ws
    offs = np.empty(k * k, np.uint64)
    for i in range(k):
        for j in range(k):
            di, dj = i - pt, j - pl
            offs[i * k + j] = ((di % s) * s + dj % s) * plane + (di // s + mt) * ws + dj // s + ml
    return mt, ml, rh, ws, (oh - 1) * ws + ow, offs


planes_geometry_jit = njit(inline="always", **JIT)(planes_geometry)


@njit(inline="always", **dict(JIT, fastmath=True))
def _fill_planes(x, b, ch, buf, s, mt, ml, rh, ws):
    """Channel (b, ch) of x into the inside of its s*s phase planes in buf: input row iy goes to row
    iy // s + mt of the planes of row phase iy % s, column ix to column ix // s + ml of phase ix % s. The
    planes' borders are left as they are (the caller fills them once)."""
    h, wd = x.shape[2], x.shape[3]
    plane = rh * ws
    ub, uc = np.uint64(b), np.uint64(ch)
    for iy in range(min(h, (rh - mt) * s)):
        ui = np.uint64(iy)
        r = iy // s + mt
        if s == 1:
            o = np.uint64(r * ws + ml)
            for t in range(min(wd, ws - ml)):
                buf[o + np.uint64(t)] = x[ub, uc, ui, np.uint64(t)]
        else:  # both column phases in one loop: a contiguous read of the row, two contiguous writes
            oe = np.uint64((iy % 2) * 2 * plane + r * ws + ml)
            oo = oe + np.uint64(plane)
            for t in range(min(wd // 2, ws - ml)):
                ut = np.uint64(t)
                buf[oe + ut] = x[ub, uc, ui, U2 * ut]
                buf[oo + ut] = x[ub, uc, ui, U2 * ut + U1]
            if wd % 2 == 1 and wd // 2 < ws - ml:
                buf[oe + np.uint64(wd // 2)] = x[b, ch, iy, wd - 1]


@njit(inline="always", **JIT)
def _compact(acc, y, b, ch, ws):
    """y[b, ch] = the flattened result acc with its planes' row stride ws."""
    oh, ow = y.shape[2], y.shape[3]
    ub, uc = np.uint64(b), np.uint64(ch)
    for oy in range(oh):
        src, uo = np.uint64(oy * ws), np.uint64(oy)
        for ox in range(ow):
            y[ub, uc, uo, np.uint64(ox)] = acc[src + np.uint64(ox)]


@njit(**dict(PJIT, fastmath=True))
def _depthwise_planes(x, w, y, bias, has_bias, k, s, pt, pl, code, alpha, threads):
    """k x k (3 or 5), stride s (1 or 2), any paddings, on mid-size maps. Each channel is copied once into
    s*s zero-bordered phase planes (stride 2: even and odd rows and columns apart, so that every tap reads
    a contiguous run), sized so that each tap is one fixed offset from the output's position in a flattened
    plane with the planes' row stride. The taps are then one long vectorized loop per channel with no border
    cases (the bias comes in with them); the result is compacted into y, then activated over the whole
    output plane.
    Tap (i, j) reads input row s*oy + i - pt: row phase (i - pt) % s, plane row oy + (i - pt) // s + mt."""
    n, c = x.shape[0], x.shape[1]
    oh, ow = y.shape[2], y.shape[3]
    mt, ml, rh, ws, length, offs = planes_geometry_jit(oh, ow, k, s, pt, pl)
    chunks = min(n * c, threads)  # one scratch per thread's run of channels
    per = -(-(n * c) // chunks)
    for ck in prange(chunks):
        buf = np.zeros(s * s * rh * ws, np.float32)  # borders written once: each channel overwrites the inside
        acc = np.empty(length, np.float32)
        for kk in range(ck * per, min(n * c, (ck + 1) * per)):
            b, ch = kk // c, kk % c
            _fill_planes(x, b, ch, buf, s, mt, ml, rh, ws)
            add = bias[ch] if has_bias else np.float32(0.0)
            if k == 3:
                w00, w01, w02 = w[ch, 0, 0, 0], w[ch, 0, 0, 1], w[ch, 0, 0, 2]
                w10, w11, w12 = w[ch, 0, 1, 0], w[ch, 0, 1, 1], w[ch, 0, 1, 2]
                w20, w21, w22 = w[ch, 0, 2, 0], w[ch, 0, 2, 1], w[ch, 0, 2, 2]
                o0, o1, o2, o3, o4, o5 = offs[0], offs[1], offs[2], offs[3], offs[4], offs[5]
                o6, o7, o8 = offs[6], offs[7], offs[8]
                for t in range(length):
                    p = np.uint64(t)
                    acc[p] = (add + w00 * buf[p + o0] + w01 * buf[p + o1] + w02 * buf[p + o2]
                              + w10 * buf[p + o3] + w11 * buf[p + o4] + w12 * buf[p + o5]
                              + w20 * buf[p + o6] + w21 * buf[p + o7] + w22 * buf[p + o8])
            else:  # 5x5: one pass per kernel row
                for t in range(length):
                    acc[t] = add
                for i in range(5):
                    a0, a1, a2, a3, a4 = w[ch, 0, i, 0], w[ch, 0, i, 1], w[ch, 0, i, 2], w[ch, 0, i, 3], w[ch, 0, i, 4]
                    o0, o1, o2, o3, o4 = offs[i * 5], offs[i * 5 + 1], offs[i * 5 + 2], offs[i * 5 + 3], offs[i * 5 + 4]
                    for t in range(length):
                        p = np.uint64(t)
                        acc[p] += (a0 * buf[p + o0] + a1 * buf[p + o1] + a2 * buf[p + o2] + a3 * buf[p + o3]
                                   + a4 * buf[p + o4])
            _compact(acc, y, b, ch, ws)
            if code != 0:
                _bias_act_row(y[b, ch].reshape(oh * ow), np.float32(0.0), code, alpha)


@njit(**dict(PJIT, fastmath=True))
def _maxpool_planes(x, y, s, pt, pl, threads):
    """3x3 max pooling, stride s (1 or 2), through phase planes as `_depthwise_planes` (their borders -inf:
    every window holds at least one input)."""
    n, c = x.shape[0], x.shape[1]
    oh, ow = y.shape[2], y.shape[3]
    mt, ml, rh, ws, length, offs = planes_geometry_jit(oh, ow, 3, s, pt, pl)
    o0, o1, o2, o3, o4, o5, o6, o7, o8 = offs[0], offs[1], offs[2], offs[3], offs[4], offs[5], offs[6], offs[7], offs[8]
    chunks = min(n * c, threads)
    per = -(-(n * c) // chunks)
    for ck in prange(chunks):
        buf = np.full(s * s * rh * ws, -np.inf, np.float32)
        acc = np.empty(length, np.float32)
        for kk in range(ck * per, min(n * c, (ck + 1) * per)):
            b, ch = kk // c, kk % c
            _fill_planes(x, b, ch, buf, s, mt, ml, rh, ws)
            for t in range(length):
                p = np.uint64(t)
                acc[p] = max(max(max(buf[p + o0], buf[p + o1]), max(buf[p + o2], buf[p + o3])),
                             max(max(buf[p + o4], buf[p + o5]), max(max(buf[p + o6], buf[p + o7]), buf[p + o8])))
            _compact(acc, y, b, ch, ws)


# Output rows of DW_PLANES_FROM up to DW_PLANES_BELOW wide go through `_depthwise_planes` (3x3; 5x5 from
# DW_PLANES_FROM at any width). Narrower ones: channels-last, or row by row for 3x3 stride 2 (its input rows
# are twice as long, and channels-last would transpose four times the output). Wider 3x3 ones: row by row,
# read in place (the copy into planes costs more there than it saves). Measured per layer on MobileNetV2 /
# MnasNet / PP-OCR shapes: 1.2-2.8x over row by row between these bounds.
DW_PLANES_FROM = 10
DW_PLANES_BELOW = 100


def _dw_applies(node, tensors):
    w = tensors[node.inputs[1]].shape
    x = tensors[node.inputs[0]].shape
    strides = tuple(node.attrs["strides"])
    return (_conv_applies(node, tensors) and w[1] == 1 and w[2] == w[3] and isinstance(x[1], int) and w[0] == x[1]
            and ((w[2] in (3, 5) and all(s in (1, 2) for s in strides)) or (w[2] == 7 and strides == (1, 1))))


@njit(**dict(PJIT, fastmath=True))
def _fill_all_planes(x, b, planes, s, mt, ml, rh, ws):
    """Every channel of batch item b into its row of planes (C, s*s*rh*ws), the borders left as they are."""
    for ch in prange(x.shape[1]):
        _fill_planes(x, b, ch, planes[ch], s, mt, ml, rh, ws)


@njit(**PJIT)
def _im2col_planes(planes, c0, cols, k, offs, ws, oy0, oy1, ow):
    """im2col from zero-bordered phase planes (`_fill_planes`): channel c0 + c's window row (i, j) for
    output row y is the contiguous run planes[c0 + c, offs[i*k+j] + y*ws:][:ow], no border cases."""
    kk = k * k
    for row in prange(cols.shape[0]):
        c, t = row // kk, row % kk
        src_c = c0 + c
        for y in range(oy0, oy1):
            src = np.uint64(offs[t] + y * ws)
            dst = np.uint64((y - oy0) * ow)
            for q in range(ow):
                cols[row, dst + np.uint64(q)] = planes[src_c, src + np.uint64(q)]


def _dw_run(x, wc, bias, has_bias, out, strides, paddings, dilations, act_type, act_alpha):
    """The direct depthwise variants (wc: the float32 filter, bias: frozen, or NO_BIAS)."""
    n, c, h, wd = x.shape
    kh, kw = wc.shape[2:]
    (sh, sw), (pt, pb, pl, pr), (dh, dw) = strides, paddings, dilations
    y = _result(out, (n, c, _out_size(h, kh, sh, pt, pb, dh), _out_size(wd, kw, sw, pl, pr, dw)))
    code = ACT_CODES.get(act_type, 0)
    xc = np.ascontiguousarray(x, dtype=np.float32)
    direct = kh == kw and kh in (3, 5) and dh == dw == 1 and sh in (1, 2) and sw in (1, 2)
    seven = kh == kw == 7 and dh == dw == 1 and sh == sw == 1  # (ConvNeXt's: the strips, or channels-last)
    if (direct or seven) and _dwvec.AVAILABLE and y.flags.c_contiguous and _dwvec.pays(kh, sh, sw, y.shape[3]):
        # relu-like activations and hard_swish in the kernel, the others after it
        bounds = _tile_bounds(act_type, act_alpha) if code != 4 else None
        fused = bounds is not None or code == 4
        a, hi = bounds or (1.0, np.inf)
        _dwvec.depthwise(xc, wc, y, bias, has_bias, kh, sh, sw, pt, pl, a, hi, code == 4)
        return y if fused else _finish(y, None, act_type, act_alpha)
    direct = direct and sh == sw  # (the kernels below take one stride)
    if direct and y.shape[3] >= DW_PLANES_FROM and (kh == 5 or y.shape[3] < DW_PLANES_BELOW):
        _depthwise_planes(xc, wc, y, bias, has_bias, kh, sh, pt, pl, code, float(act_alpha),
                          numba_threads())
    elif (direct and y.shape[3] < DW_PLANES_FROM and (kh == 5 or sh == 1)) or seven:
        wt = frozen(np.ascontiguousarray(wc.reshape(c, kh * kw).T))
        bias_c = bias if has_bias else full_bias(None, c)
        _depthwise_hwc(xc, wt, y, bias_c, sh, pt, pl, kh, code, float(act_alpha))
    elif direct and kh == 3:
        _depthwise3x3(xc, wc, y, bias, has_bias, sh, pt, pl, code, float(act_alpha))
    else:
        _depthwise(xc, wc, y, bias, has_bias, sh, sw, dh, dw, pt, pb, pl, pr, code, float(act_alpha))
    if act_type not in ACT_CODES:
        y[...] = apply_act(y, act_type, act_alpha)
    return y


def _dw_prepare(consts, attrs):
    """A constant filter and bias: made float32 and read-only once, at load."""
    w, b0 = consts[1], consts[2] if len(consts) > 2 else None
    if w is None:
        return None
    wc = frozen(np.ascontiguousarray(w, dtype=np.float32))
    bias = bias_of(b0)
    strides, paddings, dilations, act_type, act_alpha = (
        attrs[k] for k in ("strides", "paddings", "dilations", "act_type", "act_alpha"))

    @attrs_bound
    def run(x, w_, b, *, out=None, **_):
        if b is not b0:  # a bias computed at run time
            return depthwise_direct(x, w_, b, out=out, **attrs)
        return _dw_run(x, wc, bias, b0 is not None, out, strides, paddings, dilations, act_type, act_alpha)
    code = ACT_CODES.get(attrs["act_type"])
    bounds = None if code is None else _blocked.act_bounds(code, float(attrs["act_alpha"]))
    k, (sh, sw) = w.shape[2], attrs["strides"]
    if (_blocked.AVAILABLE and bounds is not None and w.shape[2:] == (k, k) and k in (3, 5) and sh in (1, 2)
            and sw in (1, 2) and tuple(attrs["dilations"]) == (1, 1)):
        run.blocked = _blocked_depthwise(wc, b0, k, sh, sw, bounds, paddings)
    elif _blocked.AVAILABLE and code is not None and tuple(attrs["dilations"]) != (1, 1):
        run.blocked = _blocked_depthwise_dilated(wc, b0, attrs, bounds)
    return run


@njit(**dict(PJIT, fastmath=True))
def _depthwise_blocked_any(x, w, y, bias, blocks, h, wd, oh, ow, sh, sw, dh, dw, pt, pl, kh, kw, code, alpha):
    """A depthwise conv of any filter size, stride and dilation on channel-blocked tensors, flat: x (blocks, H, W,
    16), y (blocks, OH, OW, 16), w (C / 16, KH * KW, 16), bias (C,). Per output pixel, the taps inside the input
    each add 16 channels at once (a loop of 16 the compiler turns into vector instructions), then the activation
    over the output row."""
    cb = w.shape[0] // (kh * kw * 16)
    for k in prange(blocks):
        blk = k % cb
        for oy in range(oh):
            row = np.uint64((k * oh + oy) * ow * 16)
            for ox in range(ow):
                o = row + np.uint64(ox * 16)
                for lane in range(16):
                    y[o + np.uint64(lane)] = bias[blk * 16 + lane]
                for i in range(kh):
                    iy = oy * sh - pt + i * dh
                    if iy < 0 or iy >= h:
                        continue
                    for j in range(kw):
                        ix = ox * sw - pl + j * dw
                        if ix < 0 or ix >= wd:
                            continue
                        src = np.uint64(((k * h + iy) * wd + ix) * 16)
                        tap = np.uint64(((blk * kh + i) * kw + j) * 16)
                        for lane in range(16):
                            q = np.uint64(lane)
                            y[o + q] += w[tap + q] * x[src + q]
            _act_row(y[row:row + np.uint64(ow * 16)], code, alpha)


def _blocked_depthwise_dilated(wc, b0, attrs, bounds):
    """Dilated depthwise convs (DeepLabV3's and LR-ASPP's MobileNetV3 backbones: 5x5, dilation 2, on 14x14 maps
    of 672-960 channels) on channel-blocked tensors (`_blocked`; x and y both blocked; the NCHW kernels were
    10-20x slower). Stride 1 with dilation d, the map and the paddings multiples of d: the output's d x d phase
    grids each are an undilated conv of the input's same phase grid (paddings / d), run by the blocked depthwise
    kernel (960 channels of 14x14, 5x5, dilation 2: 264 us, of which the gathers ~150); otherwise
    `_depthwise_blocked_any` (1.15 ms there)."""
    c, _, kh, kw = wc.shape
    bias = full_bias(b0, c)
    (sh, sw), (pt, pb, pl, pr), (dh, dw) = attrs["strides"], attrs["paddings"], attrs["dilations"]
    code, alpha = ACT_CODES[attrs["act_type"]], float(attrs["act_alpha"])
    d = dh
    phases = (bounds is not None and sh == sw == 1 and dh == dw and kh == kw and kh in (3, 5)
              and all(p % d == 0 for p in (pt, pb, pl, pr)))

    def variant(blocked_inputs, out_blocked):
        w16 = frozen(np.ascontiguousarray(wc.reshape(c // 16, 16, kh * kw).transpose(0, 2, 1)).reshape(-1))
        wq = _blocked.pack_depthwise(wc) if phases else None

        def by_phases(x, y, n, h, wd, oh, ow):
            cb, hs, ws, ohs, ows = c // 16, h // d, wd // d, oh // d, ow // d
            xs = np.empty((n, d, d, cb, hs, ws, 16), np.float32)
            ys = np.empty((n, d, d, cb, ohs, ows, 16), np.float32)
            xs[...] = x.reshape(n, cb, hs, d, ws, d, 16).transpose(0, 3, 5, 1, 2, 4, 6)
            x2, y2 = xs.reshape(n * d * d, -1), ys.reshape(n * d * d, -1)
            for i in range(n * d * d):
                _blocked.depthwise(x2[i], wq, bias, y2[i], kh, 1, 1, c, hs, ws, ohs, ows, pt // d, pl // d, *bounds)
            y.reshape(n, cb, ohs, d, ows, d, 16)[...] = ys.transpose(0, 3, 4, 1, 5, 2, 6)

        @attrs_bound
        def run(x, w_, b, *, out=None, **_):
            n, _, h, wd = x.shape
            oh, ow = _out_size(h, kh, sh, pt, pb, dh), _out_size(wd, kw, sw, pl, pr, dw)
            y = _result(out, (n, c, oh, ow))
            if phases and h % d == 0 and wd % d == 0:
                by_phases(x, y, n, h, wd, oh, ow)
            else:
                _depthwise_blocked_any(frozen(x.reshape(-1)), w16, y.reshape(-1), bias, n * c // 16, h, wd, oh, ow,
                                       sh, sw, dh, dw, pt, pl, kh, kw, code, alpha)
            return y
        return run
    return Blocked(free=(), tied=(0,), variant=variant)


def _blocked_depthwise(wc, b0, k, sh, sw, bounds, paddings):
    """The depthwise conv on channel-blocked tensors (`_blocked`; x and y both blocked)."""
    c = wc.shape[0]
    bias = full_bias(b0, c)
    a, hi = bounds

    def variant(blocked_inputs, out_blocked):
        wq = _blocked.pack_depthwise(wc)

        pt, pb, pl, pr = paddings

        @attrs_bound
        def run(x, w_, b, *, out=None, **_):
            n, _, h, wd = x.shape
            oh, ow = _out_size(h, k, sh, pt, pb, 1), _out_size(wd, k, sw, pl, pr, 1)
            y = _result(out, (n, c, oh, ow))
            x2, y2 = x.reshape(n, -1), y.reshape(n, -1)
            for i in range(n):
                _blocked.depthwise(x2[i], wq, bias, y2[i], k, sh, sw, c, h, wd, oh, ow, pt, pl, a, hi)
            return y
        return run
    return Blocked(free=(), tied=(0,), variant=variant)


@kernel("depthwise_conv2d", variant="direct", out=True, applies=_dw_applies, priority=10, prepare=_dw_prepare)
def depthwise_direct(x, w, b, *, out=None, strides, paddings, dilations, groups, act_type, act_alpha):
    return _dw_run(x, frozen(np.ascontiguousarray(w, dtype=np.float32)), bias_of(b), b is not None, out, strides,
                   paddings, dilations, act_type, act_alpha)


# --- direct 3x3 (few channels) -----------------------------------------------------------------

@njit(**dict(PJIT, fastmath=True))
def _conv3x3_planes(planes, w, y, b, bias, has_bias, ws, offs, code, alpha, rows):
    """y[b] = a 3x3 convolution (groups 1, stride 1 or 2) read from the input's zero-bordered phase planes
    (`_fill_all_planes`; each tap a fixed offset, as in `_depthwise_planes`). Blocks of `rows` output rows
    (their planes' rows stay in cache across all output channels); in a block, two output channels at a time
    share each of the nine loads per input channel and pixel, accumulating over the input channels in two
    flattened rows that are then compacted into y and activated."""
    o, c = w.shape[0], w.shape[1]
    oh, ow = y.shape[2], y.shape[3]
    o0, o1, o2, o3, o4, o5, o6, o7, o8 = offs[0], offs[1], offs[2], offs[3], offs[4], offs[5], offs[6], offs[7], offs[8]
    ub = np.uint64(b)
    for block in prange(-(-oh // rows)):
        acc0 = np.empty(rows * ws, np.float32)
        acc1 = np.empty(rows * ws, np.float32)
        y0 = block * rows
        y1 = min(oh, y0 + rows)
        n = (y1 - 1 - y0) * ws + ow
        start = np.uint64(y0 * ws)
        for pair in range((o + 1) // 2):
            p0 = 2 * pair
            p1 = min(o - 1, p0 + 1)  # an odd count: the last channel twice, written once
            a0 = bias[p0] if has_bias else np.float32(0.0)
            a1 = bias[p1] if has_bias else np.float32(0.0)
            for t in range(n):
                acc0[t] = a0
                acc1[t] = a1
            for ch in range(c):
                pl = planes[ch]
                u00, u01, u02 = w[p0, ch, 0, 0], w[p0, ch, 0, 1], w[p0, ch, 0, 2]
                u10, u11, u12 = w[p0, ch, 1, 0], w[p0, ch, 1, 1], w[p0, ch, 1, 2]
                u20, u21, u22 = w[p0, ch, 2, 0], w[p0, ch, 2, 1], w[p0, ch, 2, 2]
                v00, v01, v02 = w[p1, ch, 0, 0], w[p1, ch, 0, 1], w[p1, ch, 0, 2]
                v10, v11, v12 = w[p1, ch, 1, 0], w[p1, ch, 1, 1], w[p1, ch, 1, 2]
                v20, v21, v22 = w[p1, ch, 2, 0], w[p1, ch, 2, 1], w[p1, ch, 2, 2]
                for t in range(n):
                    p = np.uint64(t)
                    q = p + start
                    x0, x1, x2 = pl[q + o0], pl[q + o1], pl[q + o2]
                    x3, x4, x5 = pl[q + o3], pl[q + o4], pl[q + o5]
                    x6, x7, x8 = pl[q + o6], pl[q + o7], pl[q + o8]
                    acc0[p] += (u00 * x0 + u01 * x1 + u02 * x2 + u10 * x3 + u11 * x4 + u12 * x5
                                + u20 * x6 + u21 * x7 + u22 * x8)
                    acc1[p] += (v00 * x0 + v01 * x1 + v02 * x2 + v10 * x3 + v11 * x4 + v12 * x5
                                + v20 * x6 + v21 * x7 + v22 * x8)
            u0, u1 = np.uint64(p0), np.uint64(p1)
            for oy in range(y0, y1):
                src, uo = np.uint64((oy - y0) * ws), np.uint64(oy)
                for ox in range(ow):
                    y[ub, u0, uo, np.uint64(ox)] = acc0[src + np.uint64(ox)]
                    y[ub, u1, uo, np.uint64(ox)] = acc1[src + np.uint64(ox)]
                if code != 0:
                    _act_row(y[b, p0, oy], code, alpha)
                    if p1 != p0:
                        _act_row(y[b, p1, oy], code, alpha)


# flattened output length per block of `_conv3x3_planes` (two such rows of accumulators stay in L1)
DIRECT_BLOCK = 2048


def _direct_applies(node, tensors):
    w = tensors[node.inputs[1]].shape
    a = node.attrs
    return (_conv_applies(node, tensors) and tuple(w[2:]) == (3, 3) and a["groups"] == 1
            and tuple(a["strides"]) in ((1, 1), (2, 2)) and tuple(a["dilations"]) == (1, 1))


def _direct_pays(node, tensors):
    """Where BLAS has too little to multiply: stems (3 input channels; 224x224 -> 32 channels 0.50 -> 0.28 ms,
    PP-OCR's 640x640 -> 16 channels 3.0 -> 1.4 ms) and convs with few channels on both sides (16 -> 16 on
    56x56: 0.25 -> 0.15 ms). With the AVX-512 tiles (`_tiled.conv3x3`) also up to 32 input channels on maps
    from 24 wide (SqueezeNet's 16 -> 64 on 55x55: Winograd 0.56 -> 0.42 ms); on 13x13 maps, or from 64 input
    channels, Winograd / im2col + GEMM are faster. The choice does not depend on the CPU opt runs on (the
    same model gives the same file): on a CPU without AVX-512 the variant hands those wider convs to
    Winograd / im2col + GEMM at load."""
    w = tensors[node.inputs[1]].shape
    y = tensors[node.outputs[0]].shape
    wide = isinstance(y[3], int) and y[3] >= 24
    blocked_winograd = _wino_applies(node, tensors) and _blocks_out(node, tensors) and _wino_f43_pays(node, tensors)
    return _few_channels(w[0], w[1]) or (w[1] <= 32 and wide and not blocked_winograd)


def _few_channels(o, c):
    """Where the direct conv pays without AVX-512 too (the phase-plane kernel)."""
    return c <= 4 or o * c <= 512


def _direct_prepare(consts, attrs):
    w = consts[1]
    if w is None:
        return None
    wc = frozen(np.ascontiguousarray(w, dtype=np.float32))
    if _tiled.AVAILABLE:
        return _tiled_direct(wc)
    if not _few_channels(w.shape[0], w.shape[1]):  # (see _direct_pays)
        unit = tuple(attrs["strides"]) == (1, 1) and w.shape[1] >= 8
        return _wino_prepare(4)(consts, attrs) if unit else _gemm_prepare(consts, attrs)
    scratch: dict = {}

    def run(x, w_, b, r=None, *, out=None, strides, paddings, dilations, groups, act_type, act_alpha):
        n, c, h, wd = x.shape
        s = strides[0]
        pt, pb, pl, pr = paddings
        y = _result(out, (n, wc.shape[0], _out_size(h, 3, s, pt, pb, 1), _out_size(wd, 3, s, pl, pr, 1)))
        oh, ow = y.shape[2:]
        mt, ml, rh, ws, _, offs = planes_geometry(oh, ow, 3, s, pt, pl)
        key = (c, h, wd, rh, ws)  # (the input size too: it decides which cells are inside)
        planes = per_size(scratch, key, lambda: np.zeros((c, s * s * rh * ws), np.float32))  # borders: zeros, once
        fused = r is None and act_type in ACT_CODES
        code = ACT_CODES[act_type] if fused else 0
        xc = np.ascontiguousarray(x, dtype=np.float32)
        rows = max(1, min(oh, DIRECT_BLOCK // ws))
        for k in range(n):
            _fill_all_planes(xc, k, planes, s, mt, ml, rh, ws)
            _conv3x3_planes(planes, wc, y, k, bias_of(b), b is not None, ws, offs, code, float(act_alpha), rows)
        return y if fused else _finish(y, None, act_type, act_alpha, r=r)
    return run


def _tiled_direct(wc):
    """The direct 3x3 conv through AVX-512 tiles (`_tiled.conv3x3`): 16 output channels x 16 outputs of a row
    per tile, or 12 x 32 (`_tiled.direct_tile`), each input vector loaded once for the tile's channels; the
    filter packed for the tile (once per tile shape)."""
    o = wc.shape[0]
    packs: dict = {}
    no_bias = full_bias(None, o)
    zrows: dict = {}

    def run(x, w_, b, r=None, *, out=None, strides, paddings, dilations, groups, act_type, act_alpha):
        n, c, h, wd = x.shape
        s = strides[0]
        pt, pb, pl, pr = paddings
        y = _result(out, (n, o, _out_size(h, 3, s, pt, pb, 1), _out_size(wd, 3, s, pl, pr, 1)))
        zrow = per_size(zrows, wd,  # the zeros a tap row in the padding reads
                        lambda: np.zeros(wd + 2 * s * _tiled.PANEL + 2 * _tiled.LANES, np.float32))
        mr = _tiled.direct_tile(o, y.shape[3], s)
        wp = packs.get(mr)
        if wp is None:
            wp = packs[mr] = _tiled.pack_panels(wc.reshape(o, -1), mr)
        bounds = _tile_bounds(act_type, act_alpha)
        a, hi = bounds or (1.0, np.inf)
        bias = no_bias if b is None else bias_of(b)
        res = _NO_RES_FLAT if r is None else _residual_rows(r, 1)[0]
        _tiled.conv3x3(wp, np.ascontiguousarray(x, dtype=np.float32), y, zrow, bias, res, r is not None, a, hi, s,
                       pt, pl, mr, numba_threads())
        return y if bounds is not None else _finish(y, None, act_type, act_alpha)
    return run


@kernel("conv2d", variant="direct", out=True, applies=_direct_applies, pays=_direct_pays, priority=20,
        prepare=_and_blocked(_direct_prepare))
def conv2d_direct(x, w, b, r=None, *, out=None, **attrs):
    """(the filter a run-time tensor)"""
    return _direct_prepare([None, w, b], attrs)(x, w, b, r, out=out, **attrs)


# --- Winograd ----------------------------------------------------------------------------------

@njit(inline="always", **dict(JIT, fastmath=True))
def _lincomb(out, oa, ob, src, r0, rstep, col, coef, add):
    """out[oa, ob, t] = add + sum_k coef[k] * src[r0 + k * rstep, col, t]: one loop for the whole sum (n = 4,
    6, 8 unrolled), so a transform step costs one pass over its tiles instead of one per coefficient.
    Plain 3-D indexing, no views: numba knows the last axis is contiguous, and no reference counting."""
    n = coef.size
    nt = out.shape[2]
    if n == 6:
        c0, c1, c2, c3, c4, c5 = coef[0], coef[1], coef[2], coef[3], coef[4], coef[5]
        for t in range(nt):
            out[oa, ob, t] = (add + c0 * src[r0, col, t] + c1 * src[r0 + rstep, col, t]
                              + c2 * src[r0 + 2 * rstep, col, t] + c3 * src[r0 + 3 * rstep, col, t]
                              + c4 * src[r0 + 4 * rstep, col, t] + c5 * src[r0 + 5 * rstep, col, t])
    elif n == 4:
        c0, c1, c2, c3 = coef[0], coef[1], coef[2], coef[3]
        for t in range(nt):
            out[oa, ob, t] = (add + c0 * src[r0, col, t] + c1 * src[r0 + rstep, col, t]
                              + c2 * src[r0 + 2 * rstep, col, t] + c3 * src[r0 + 3 * rstep, col, t])
    elif n == 8:
        c0, c1, c2, c3 = coef[0], coef[1], coef[2], coef[3]
        c4, c5, c6, c7 = coef[4], coef[5], coef[6], coef[7]
        for t in range(nt):
            out[oa, ob, t] = (add + c0 * src[r0, col, t] + c1 * src[r0 + rstep, col, t]
                              + c2 * src[r0 + 2 * rstep, col, t] + c3 * src[r0 + 3 * rstep, col, t]
                              + c4 * src[r0 + 4 * rstep, col, t] + c5 * src[r0 + 5 * rstep, col, t]
                              + c6 * src[r0 + 6 * rstep, col, t] + c7 * src[r0 + 7 * rstep, col, t])
    else:
        for t in range(nt):
            out[oa, ob, t] = add
        for k in range(n):
            ck = coef[k]
            for t in range(nt):
                out[oa, ob, t] += ck * src[r0 + k * rstep, col, t]


@njit(**dict(PJIT, fastmath=True))
def _wino_input(xp, v, bt, m, ty0, ty1, tw):
    """xp: (C, th*m+2, tw*m+2) padded input -> v: (n*n, C, T) = B^T d B of the tiles of tile rows [ty0, ty1).
    Per channel, the tiles are gathered side by side (d[k, l, t]) so that each step of the transform is one
    vectorized loop over all T tiles. (Plain indexing throughout: views in these loops cost reference
    counting, which made this three times slower.)"""
    c_in = xp.shape[0]
    n = bt.shape[0]
    nt = (ty1 - ty0) * tw
    for c in prange(c_in):
        d = np.empty((n, n, nt), np.float32)
        tmp = np.empty((n, n, nt), np.float32)
        for ty in range(ty1 - ty0):
            for k in range(n):
                row = (ty0 + ty) * m + k
                for l in range(n):
                    for tx in range(tw):
                        d[k, l, ty * tw + tx] = xp[c, row, tx * m + l]
        for i in range(n):
            for l in range(n):
                _lincomb(tmp, l, i, d, 0, 1, l, bt[i], np.float32(0.0))       # tmp[l, i] = (B^T d)[i, l]
        for i in range(n):
            for j in range(n):
                _lincomb(v, i * n + j, c, tmp, 0, 1, i, bt[j], np.float32(0.0))  # v = (B^T d) B


@njit(**dict(PJIT, fastmath=True))
def _wino_output(mm, y, at, m, ty0, ty1, tw, bias, has_bias, code, alpha):
    """mm: (n*n, O, T) of tile rows [ty0, ty1) -> their rows of y: (O, oh, ow) = A^T M A of every tile
    (each step one vectorized loop over the tiles), cropped, + bias, activation."""
    o_n = mm.shape[1]
    n = at.shape[1]
    th = ty1 - ty0
    nt = th * tw
    oh, ow = y.shape[1], y.shape[2]
    full = min(tw, ow // m)  # tiles wholly inside a row
    for o in prange(o_n):
        tmp = np.empty((n, m, nt), np.float32)
        res = np.empty((m, m, nt), np.float32)
        add = bias[o] if has_bias else np.float32(0.0)
        for i in range(m):
            for j in range(n):
                _lincomb(tmp, j, i, mm, j, n, o, at[i], np.float32(0.0))  # tmp[j, i] = (A^T M)[i, j]
        for i in range(m):
            for j in range(m):
                _lincomb(res, i, j, tmp, 0, 1, i, at[j], add)            # res = (A^T M) A + bias
        for ty in range(th):
            for i in range(min(m, oh - (ty0 + ty) * m)):
                yy = (ty0 + ty) * m + i
                for j in range(m):
                    for tx in range(full):
                        y[o, yy, tx * m + j] = res[i, j, ty * tw + tx]
                    for tx in range(full, tw):
                        if tx * m + j < ow:
                            y[o, yy, tx * m + j] = res[i, j, ty * tw + tx]
                _act_row(y[o, yy], code, alpha)


# Tile rows go through the three steps together in blocks of at most this many tiles (and about 1 MB of
# transformed input): a 96-channel 160x160 map in one go streamed 22 MB through memory, several times.
WINO_BLOCK_TILES = 256
WINO_BLOCK_BYTES = 1 << 20


def _wino_applies(node, tensors):
    w = tensors[node.inputs[1]].shape
    a = node.attrs
    return (_conv_applies(node, tensors) and tuple(w[2:]) == (3, 3) and a["groups"] == 1
            and tuple(a["strides"]) == (1, 1) and tuple(a["dilations"]) == (1, 1) and w[0] >= 8 and w[1] >= 8)


def _out_area(node, tensors) -> int:
    y = tensors[node.outputs[0]].shape
    return y[2] * y[3] if all(isinstance(d, int) for d in y[2:]) else 0


def _blocks_out(node, tensors) -> bool:
    """Whether the conv's output can be channel-blocked (`runtime/layout.py`: whole blocks of 16 channels); its
    Winograd then runs as `_blocked_winograd`, which pays on smaller maps and with fewer channels. From the
    shapes only, so that the file does not depend on the CPU opt runs on (without AVX-512, F(2,3) hands what
    it does not pay for to im2col + GEMM at load)."""
    return tensors[node.inputs[1]].shape[0] % _blocked.BLOCK == 0


def _wino_f43_pays(node, tensors):
    """F(4,3) beats im2col + GEMM and the direct conv from about 20x20 outputs with 16+ channels (1.5-2x at 28x28
    and up, benchmarks/bench.py --profile); smaller maps waste too much of their 4x4 tiles."""
    w = tensors[node.inputs[1]].shape
    return _out_area(node, tensors) >= 20 * 20 and w[0] >= 16 and w[1] >= 16


def _wino_f23_pays(node, tensors):
    """F(2,3) on 10x10..19x19 outputs: with 128+ channels on both sides (ResNet50's 14x14 stage: 2.3 -> 2.0 ms
    a conv inside the network; with fewer channels im2col + GEMM stays faster), and from 32 channels where the
    output is blocked (ResNet50's 14x14 stage 1.9 -> 1.4 ms; SqueezeNet's 13x13 0.41 -> 0.38 ms). On 7x7 maps
    F(2,3) loses to the direct conv even blocked: its transformed filter (16/9 the size) is read from memory
    (ResNet50's last stage 1.7 -> 2.1 ms)."""
    w = tensors[node.inputs[1]].shape
    least = 32 if _blocks_out(node, tensors) else 128
    return 10 * 10 <= _out_area(node, tensors) < 20 * 20 and w[0] >= least and w[1] >= least


def _wino_prepare(m):
    at, g, bt = winograd_matrices(m)
    n = m + 2
    at32, bt32 = at.astype(np.float32), bt.astype(np.float32)

    def prepare(consts, attrs):
        w = consts[1]
        if w is None:
            return None
        o, c = w.shape[:2]
        if m == 2 and not _bwino.AVAILABLE and min(o, c) < 128:  # (picked for the blocked form: `_wino_f23_pays`)
            return _gemm_prepare(consts, attrs)
        transformed: list = []  # U = G g G^T, made on the first NCHW run (a blocked conv packs its own)
        scratch: dict = {}
        padded = _padded_winograd(m, consts, attrs) if m in _bwino.SIZES else None

        def run(x, w_, b, r=None, *, out=None, strides, paddings, dilations, groups, act_type, act_alpha):
            if padded is not None and r is None:
                return padded(x, out, strides=strides, paddings=paddings, dilations=dilations, groups=groups,
                              act_type=act_type, act_alpha=act_alpha)
            nb, _, h, wd = x.shape
            fused, act_type = (act_type, "") if r is not None else ("", act_type)  # a residual goes before it
            pt, pb, pl, pr = paddings
            oh, ow = h + pt + pb - 2, wd + pl + pr - 2
            th, tw = -(-oh // m), -(-ow // m)
            y = _result(out, (nb, o, oh, ow))
            rows = max(1, min(th, WINO_BLOCK_TILES // tw, WINO_BLOCK_BYTES // (n * n * max(c, o) * tw * 4)))
            if not transformed:
                u = np.einsum("ik,ockl,jl->ijoc", g, w.astype(np.float64), g).reshape(n * n, o, c)
                transformed.append(np.ascontiguousarray(u, dtype=np.float32))
            u = transformed[0]
            # the padded input, and flat buffers for v and mm (each block uses a contiguous prefix)
            xp, v, mm = per_size(scratch, (c, th, tw), lambda: (
                np.zeros((c, th * m + 2, tw * m + 2), np.float32),
                np.empty(n * n * c * rows * tw, np.float32), np.empty(n * n * o * rows * tw, np.float32)))
            code = ACT_CODES.get(act_type, 0)
            bias = bias_of(b)
            for k in range(nb):
                xp[:] = 0
                xp[:, pt:pt + h, pl:pl + wd] = x[k]
                for ty0 in range(0, th, rows):
                    ty1 = min(th, ty0 + rows)
                    t = (ty1 - ty0) * tw
                    vb, mb = v[:n * n * c * t].reshape(n * n, c, t), mm[:n * n * o * t].reshape(n * n, o, t)
                    _wino_input(xp, vb, bt32, m, ty0, ty1, tw)
                    np.matmul(u, vb, out=mb)
                    _wino_output(mb, y[k], at32, m, ty0, ty1, tw, bias, b is not None, code, float(act_alpha))
            if act_type not in ACT_CODES:
                y[...] = apply_act(y, act_type, act_alpha)
            return y if r is None else _finish(y, None, fused, act_alpha, r=r)
        declared = _blocked_winograd(m, consts, attrs)
        if declared is not None:
            run.blocked = declared
        return run
    return prepare


def _wino_fallback(x, w, b, r=None, **attrs):
    out = attrs.pop("out", None)
    y = conv2d_gemm(x, w, b, r, **attrs)
    if out is not None:
        out[...] = y
        return out
    return y


# Measured on this machine (benchmarks/bench.py --profile): F(4,3) wins from 20x20 outputs, F(2,3) on 14x14
# ones with many channels. F(6,3) is no better than F(4,3) here and loses precision (used when forced:
# kernel_override). On 7x7 maps F(2,3) loses inside a network although it wins in isolation: its transformed
# filters are 16/9 the size of the filter, and reading them costs more than the multiplications save
# (ResNet50's last stage 2.9 -> 4.1 ms).
kernel("conv2d", variant="winograd_f63", out=True, applies=_wino_applies, priority=5,
       prepare=_and_blocked(_wino_prepare(6)))(_wino_fallback)
kernel("conv2d", variant="winograd_f43", out=True, applies=_wino_applies, pays=_wino_f43_pays, priority=15,
       prepare=_and_blocked(_wino_prepare(4)))(_wino_fallback)
kernel("conv2d", variant="winograd_f23", out=True, applies=_wino_applies, pays=_wino_f23_pays, priority=14,
       prepare=_and_blocked(_wino_prepare(2)))(_wino_fallback)
