"""cpu kernels of pool2d and conv2d_transpose (the conv2d / depthwise variants live in conv_fast.py)."""
from __future__ import annotations

import numpy as np
from numba import prange

from ...ir.ops.conv import pool_out_size
from ..threads import numba_threads
from . import Blocked, _blocked, kernel
from ._util import JIT, attrs_bound, bias_of, njit
from .conv_fast import ACT_CODES, _act_row, _conv_applies, _finish, _maxpool_planes, conv2d_gemm
from .reduce import MAX, MEAN, _reduce_kernel

PJIT = dict(JIT, parallel=True)
_GLOBAL_POOL = {"max": _reduce_kernel(MAX), "avg": _reduce_kernel(MEAN)}


@njit(**dict(PJIT, fastmath=True))
def _pool(x, y, kh, kw, sh, sw, pt, pl, is_max, exclusive, ph, pw):
    """Per channel: the plane in a buffer padded with -inf (max) or 0 (avg) to cover every window, then
    plain window loops. ph/pw: the declared padded extent (H + pt + pb, W + pl + pr) that count-include-pad
    averages divide by (the ceil-mode overhang is never counted)."""
    n, c, h, w = x.shape
    oh, ow = y.shape[2], y.shape[3]
    hp = max((oh - 1) * sh + kh, h + pt)
    wp = max((ow - 1) * sw + kw, w + pl)
    fill = -np.inf if is_max else 0.0
    for k in prange(n * c):
        b, ch = k // c, k % c
        pad = np.full((hp, wp), fill, np.float32)
        for iy in range(h):
            for ix in range(w):
                pad[iy + pt, ix + pl] = x[b, ch, iy, ix]
        acc = np.empty(ow, np.float32)
        for oy in range(oh):
            acc[:] = fill
            for i in range(kh):
                row = pad[oy * sh + i]
                for j in range(kw):
                    if is_max:
                        for ox in range(ow):
                            acc[ox] = max(acc[ox], row[ox * sw + j])
                    else:
                        for ox in range(ow):
                            acc[ox] += row[ox * sw + j]
            if is_max:
                for ox in range(ow):
                    y[b, ch, oy, ox] = acc[ox]
                continue
            y0 = oy * sh - pt
            if exclusive:
                rows = min(y0 + kh, h) - max(y0, 0)
            else:
                rows = min(y0 + kh, ph - pt) - max(y0, -pt)
            for ox in range(ow):
                x0 = ox * sw - pl
                if exclusive:
                    cols = min(x0 + kw, w) - max(x0, 0)
                else:
                    cols = min(x0 + kw, pw - pl) - max(x0, -pl)
                div = rows * cols
                y[b, ch, oy, ox] = acc[ox] / div if div > 0 else 0.0


@njit(**dict(PJIT, fastmath=True))
def _maxpool(x, y, kh, kw, sh, sw, pt, pl):
    """Max pooling without a padded copy of the plane: per output row, the element-wise max of its input
    rows (contiguous, vectorizes) into a row buffer whose margins hold -inf, then the max over each window
    of that row. Every window holds at least one input (paddings are smaller than the window)."""
    n, c, h, w = x.shape
    oh, ow = y.shape[2], y.shape[3]
    wp = max((ow - 1) * sw + kw, w + pl)
    for k in prange(n * c):
        b, ch = k // c, k % c
        buf = np.full(wp, -np.inf, np.float32)
        t = buf[pl:pl + w]
        for oy in range(oh):
            y0 = oy * sh - pt
            first = max(y0, 0)
            last = min(y0 + kh, h)
            if first >= last:  # cannot happen with the output sizes of pool_out_size; kept safe
                y[b, ch, oy, :] = -np.inf
                continue
            r = x[b, ch, first]
            for ix in range(w):
                t[ix] = r[ix]
            for iy in range(first + 1, last):
                r = x[b, ch, iy]
                for ix in range(w):
                    t[ix] = max(t[ix], r[ix])
            out = y[b, ch, oy]
            for ox in range(ow):
                m = buf[ox * sw]
                for j in range(1, kw):
                    m = max(m, buf[ox * sw + j])
                out[ox] = m


@njit(**PJIT)
def _maxpool_2x2(x, y):
    """2x2 max pooling, stride 2, every window inside the input (no padding, no ceil-mode overhang): each
    output the max of two pairs, the pairs read as interleaved loads (25 -> 5 us on 200 x 2 x 96, where the
    row buffer of `_maxpool` cost an allocation per channel and a scalar loop per window)."""
    n, c = x.shape[0], x.shape[1]
    oh, ow = y.shape[2], y.shape[3]
    for k in prange(n * c):
        b, ch = k // c, k % c
        for oy in range(oh):
            r0, r1, out = x[b, ch, 2 * oy], x[b, ch, 2 * oy + 1], y[b, ch, oy]
            for ox in range(ow):
                out[ox] = max(max(r0[2 * ox], r0[2 * ox + 1]), max(r1[2 * ox], r1[2 * ox + 1]))


def _pool_prepare(consts, attrs):
    """On channel-blocked tensors (`_blocked`): global pooling reads either layout (its (N, C, 1, 1) result is
    the same in both), max and average pooling keep the input's layout (DenseNet's transitions average)."""
    glob, is_max = attrs["global_pooling"], attrs["pooling_type"] == "max"
    if not _blocked.AVAILABLE:
        return None

    @attrs_bound
    def run(x, *, out=None, **_):
        return pool2d(x, out=out, **attrs)

    def variant(blocked_inputs, out_blocked):
        if 0 not in blocked_inputs:
            return pool2d

        @attrs_bound
        def blocked(x, *, out=None, **_):
            n, c, h, w = x.shape
            if glob:
                y = out if out is not None else np.empty((n, c, 1, 1), np.float32)
                _blocked.global_pool(x.reshape(n, -1), y.reshape(n, -1), c, h * w, is_max)
                return y
            (kh, kw), (sh, sw), (pt, pb, pl, pr), ceil = (attrs[k] for k in ("ksize", "strides", "paddings",
                                                                              "ceil_mode"))
            oh, ow = pool_out_size(h, kh, sh, pt, pb, ceil), pool_out_size(w, kw, sw, pl, pr, ceil)
            y = out if out is not None else np.empty((n, c, oh, ow), np.float32)
            for i in range(n):
                if is_max:
                    _blocked.max_pool(x[i].reshape(-1), y[i].reshape(-1), c, h, w, oh, ow, kh, kw, sh, sw, pt, pl)
                else:
                    _blocked.avg_pool(x[i].reshape(-1), y[i].reshape(-1), c, h, w, oh, ow, kh, kw, sh, sw, pt, pb,
                                      pl, pr, attrs["exclusive"])
            return y
        return blocked

    run.blocked = Blocked(free=(0,), tied=(), variant=variant) if glob else Blocked(free=(), tied=(0,), variant=variant)
    return run


@njit(**dict(JIT, fastmath={"reassoc", "contract"}))
def _mean_rows(x, y):
    """y[r] = the mean of row r of x, summed in float32 in any order (so that the loop vectorizes: 2.3x over the
    float64 sums of reduce_mean on SqueezeNet's 1000 x 13x13 head; as onnxruntime sums)."""
    rows, n = x.shape
    for r in range(rows):
        t = np.float32(0.0)
        for i in range(n):
            t += x[r, i]
        y[r] = t / n


@kernel("pool2d", out=True, prepare=_pool_prepare)
def pool2d(x, *, pooling_type, ksize, strides, paddings, global_pooling, exclusive, ceil_mode, out=None):
    n, c, h, w = x.shape
    if global_pooling:
        (kh, kw), (sh, sw), (pt, pb, pl, pr), oh, ow = (h, w), (1, 1), (0, 0, 0, 0), 1, 1
    else:
        (kh, kw), (sh, sw), (pt, pb, pl, pr) = ksize, strides, paddings
        oh, ow = pool_out_size(h, kh, sh, pt, pb, ceil_mode), pool_out_size(w, kw, sw, pl, pr, ceil_mode)
    y = out if out is not None else np.empty((n, c, oh, ow), x.dtype)
    if global_pooling:
        if pooling_type == "avg" and x.dtype == np.float32 and h * w:
            _mean_rows(np.ascontiguousarray(x).reshape(n * c, h * w), y.reshape(n * c))
            return y
        # reduce_max / reduce_mean over H, W (numpy's mean was 4x slower on 7x7)
        return _GLOBAL_POOL[pooling_type](x, dim=(2, 3), keep_dim=True, reduce_all=False, out=y)
    if pooling_type == "max" and x.dtype == np.float32 and max(pt, pb) < kh and max(pl, pr) < kw:
        if kh == kw == 3 and sh == sw and sh in (1, 2):  # 2-2.6x over row by row on 7x7 to 160x160 maps
            _maxpool_planes(np.ascontiguousarray(x), y, sh, pt, pl, numba_threads())
        elif kh == kw == sh == sw == 2 and pt == pl == 0 and 2 * oh <= h and 2 * ow <= w:
            _maxpool_2x2(np.ascontiguousarray(x), y)
        else:
            _maxpool(np.ascontiguousarray(x), y, kh, kw, sh, sw, pt, pl)
        return y
    _pool(np.ascontiguousarray(x), y, kh, kw, sh, sw, pt, pl, pooling_type == "max", exclusive,
          h + pt + pb, w + pl + pr)
    return y


@njit(**dict(PJIT, fastmath=True))
def _col2im(cols, y, og, kh, kw, h, w, sh, sw, dh, dw, pt, pl):
    """cols: (og*kh*kw, h*w) -> scatter-add into y: (og, OH, OW). The input columns a kernel tap reaches
    inside the output are worked out once per tap, so the inner loop has no bounds checks."""
    oh, ow = y.shape[1], y.shape[2]
    for o in prange(og):
        yo = y[o]
        for i in range(kh):
            for j in range(kw):
                row = cols[(o * kh + i) * kw + j]
                off = j * dw - pl
                x0 = max(0, (-off + sw - 1) // sw)        # first xx with xx*sw + off >= 0
                x1 = min(w, (ow - 1 - off) // sw + 1)      # one past the last with xx*sw + off < ow
                for yy in range(h):
                    oy = yy * sh + i * dh - pt
                    if oy < 0 or oy >= oh:
                        continue
                    dst = yo[oy]
                    src = row[yy * w:(yy + 1) * w]
                    for xx in range(x0, x1):
                        dst[xx * sw + off] += src[xx]


@njit(**dict(PJIT, fastmath=True))
def _col2im_tiles(cols, y, og, kh, kw, h, w, bias, has_bias, code, alpha):
    """The stride == kernel, no padding, no dilation case (2x2 stride-2 upsampling in detection heads):
    every output is written exactly once, so no zero fill and no read-modify-write; the kw taps of a row
    are interleaved in one loop, and bias and activation are applied on the way."""
    for k in prange(og * kh):
        o, i = k // kh, k % kh
        add = bias[o] if has_bias else np.float32(0.0)
        for yy in range(h):
            dst = y[o, yy * kh + i]
            for j in range(kw):
                src = cols[(o * kh + i) * kw + j, yy * w:(yy + 1) * w]
                for xx in range(w):
                    dst[xx * kw + j] = src[xx] + add
            _act_row(dst, code, alpha)


@kernel("conv2d_transpose", out=True, applies=_conv_applies)
def conv2d_transpose(x, w, b, *, strides, paddings, dilations, groups, output_padding, act_type, act_alpha, out=None):
    """GEMM (W^T @ x per group) + col2im scatter-add, then bias + activation."""
    n, c, h, wd = x.shape
    _, og, kh, kw = w.shape
    (sh, sw), (dh, dw), (pt, pb, pl, pr) = strides, dilations, paddings
    oh = (h - 1) * sh - pt - pb + dh * (kh - 1) + output_padding[0] + 1
    ow = (wd - 1) * sw - pl - pr + dw * (kw - 1) + output_padding[1] + 1
    y = out if out is not None else np.empty((n, og * groups, oh, ow), np.float32)
    cg = c // groups
    x = np.ascontiguousarray(x, dtype=np.float32)
    code = ACT_CODES.get(act_type)
    if (sh, sw) == (kh, kw) and (dh, dw) == (1, 1) and not any(paddings) and not any(output_padding) \
            and code is not None:
        bias = bias_of(b)
        for b_ in range(n):
            for g in range(groups):
                wg = np.ascontiguousarray(w[g * cg:(g + 1) * cg]).reshape(cg, og * kh * kw)
                cols = wg.T @ x[b_, g * cg:(g + 1) * cg].reshape(cg, h * wd)
                _col2im_tiles(cols, y[b_, g * og:(g + 1) * og], og, kh, kw, h, wd, bias[g * og:(g + 1) * og]
                              if b is not None else bias, b is not None, code, float(act_alpha))
        return y
    y[...] = 0
    for b_ in range(n):
        for g in range(groups):
            wg = np.ascontiguousarray(w[g * cg:(g + 1) * cg]).reshape(cg, og * kh * kw)
            cols = wg.T @ x[b_, g * cg:(g + 1) * cg].reshape(cg, h * wd)
            _col2im(cols, y[b_, g * og:(g + 1) * og], og, kh, kw, h, wd, sh, sw, dh, dw, pt, pl)
    return _finish(y, b, act_type, act_alpha)


def _depthwise_gemm(x, w, b, *, out=None, **attrs):
    """Any depthwise conv (other kernel sizes/strides): the grouped GEMM path."""
    return conv2d_gemm(x, w, b, out=out, **attrs)


kernel("depthwise_conv2d", variant="gemm", out=True, applies=_conv_applies, priority=1)(_depthwise_gemm)
