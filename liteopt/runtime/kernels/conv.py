"""cpu kernels of pool2d and conv2d_transpose (the conv2d / depthwise variants live in conv_fast.py)."""
from __future__ import annotations

import numpy as np
from numba import prange

from ...ir.ops.conv import pool_out_size
from . import kernel
from ._util import JIT, njit
from .conv_fast import _conv_applies, _finish, conv2d_gemm

PJIT = dict(JIT, parallel=True)


@njit(**PJIT)
def _pool(x, y, kh, kw, sh, sw, pt, pl, is_max, exclusive, ph, pw):
    """ph/pw: the padded extent (H + pt + pb, W + pl + pr) that count-include-pad averages divide by."""
    n, c, h, w = x.shape
    oh, ow = y.shape[2], y.shape[3]
    for k in prange(n * c):
        b, ch = k // c, k % c
        for oy in range(oh):
            y0 = oy * sh - pt
            for ox in range(ow):
                x0 = ox * sw - pl
                acc = -np.inf if is_max else 0.0
                cnt = 0
                for i in range(kh):
                    iy = y0 + i
                    if iy < 0 or iy >= h:
                        continue
                    for j in range(kw):
                        ix = x0 + j
                        if ix < 0 or ix >= w:
                            continue
                        v = x[b, ch, iy, ix]
                        if is_max:
                            if v > acc or v != v:
                                acc = v
                        else:
                            acc += v
                        cnt += 1
                if is_max:
                    y[b, ch, oy, ox] = acc
                else:
                    if exclusive:
                        div = cnt
                    else:  # windows count the declared padding, not the ceil-mode overhang
                        div = (min(y0 + kh, ph - pt) - max(y0, -pt)) * (min(x0 + kw, pw - pl) - max(x0, -pl))
                    y[b, ch, oy, ox] = acc / div if div > 0 else 0.0


@kernel("pool2d", out=True)
def pool2d(x, *, pooling_type, ksize, strides, paddings, global_pooling, exclusive, ceil_mode, out=None):
    n, c, h, w = x.shape
    if global_pooling:
        (kh, kw), (sh, sw), (pt, pb, pl, pr), oh, ow = (h, w), (1, 1), (0, 0, 0, 0), 1, 1
    else:
        (kh, kw), (sh, sw), (pt, pb, pl, pr) = ksize, strides, paddings
        oh, ow = pool_out_size(h, kh, sh, pt, pb, ceil_mode), pool_out_size(w, kw, sw, pl, pr, ceil_mode)
    y = out if out is not None else np.empty((n, c, oh, ow), x.dtype)
    _pool(np.ascontiguousarray(x), y, kh, kw, sh, sw, pt, pl, pooling_type == "max", exclusive,
          h + pt + pb, w + pl + pr)
    return y


@njit(**PJIT)
def _col2im(cols, y, og, kh, kw, h, w, sh, sw, dh, dw, pt, pl):
    """cols: (og*kh*kw, h*w) -> scatter-add into y: (og, OH, OW)."""
    oh, ow = y.shape[1], y.shape[2]
    for o in prange(og):
        for i in range(kh):
            for j in range(kw):
                row = (o * kh + i) * kw + j
                for yy in range(h):
                    oy = yy * sh + i * dh - pt
                    if oy < 0 or oy >= oh:
                        continue
                    for xx in range(w):
                        ox = xx * sw + j * dw - pl
                        if 0 <= ox < ow:
                            y[o, oy, ox] += cols[row, yy * w + xx]


@kernel("conv2d_transpose", out=True, applies=_conv_applies)
def conv2d_transpose(x, w, b, *, strides, paddings, dilations, groups, output_padding, act_type, act_alpha, out=None):
    """GEMM (W^T @ x per group) + col2im scatter-add, then bias + activation."""
    n, c, h, wd = x.shape
    _, og, kh, kw = w.shape
    (sh, sw), (dh, dw), (pt, pb, pl, pr) = strides, dilations, paddings
    oh = (h - 1) * sh - pt - pb + dh * (kh - 1) + output_padding[0] + 1
    ow = (wd - 1) * sw - pl - pr + dw * (kw - 1) + output_padding[1] + 1
    y = out if out is not None else np.empty((n, og * groups, oh, ow), np.float32)
    y[...] = 0
    cg = c // groups
    x = np.ascontiguousarray(x, dtype=np.float32)
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
