"""cpu kernels of the nn family: numba loops, BLAS for matmul/fc."""
from __future__ import annotations

import math

import numpy as np
from numba import prange

from ...ir import OPS
from ...ir.ops.activation import apply_act
from ...ir.ops.nn import bilinear_weights, einsum_terms, interp_size_and_scale, nearest_indices
from . import Blocked, _blocked, kernel
from ._util import JIT, NO_BIAS, attrs_bound, bias_of, exp32, frozen, njit
from .conv_fast import ACT_CODES, _act_row

PJIT = dict(JIT, parallel=True)


def _result(out, shape, dtype=np.float32):
    return out if out is not None else np.empty(shape, dtype)


def _copy(x, out):
    if out is None:
        return x.copy()
    out[...] = x
    return out


@njit(**PJIT)
def _bn(x, y, mul, add, code, alpha):
    """y = act(x * mul + add) per channel: x, y (N, C, L)."""
    n, c, length = x.shape
    for k in prange(n * c):
        b, ch = k // c, k % c
        m, a = mul[ch], add[ch]
        for i in range(length):
            y[b, ch, i] = x[b, ch, i] * m + a
        _act_row(y[b, ch], code, alpha)


def _bn_factors(scale, bias, mean, var, epsilon):
    """The per-channel (mul, add) of an inference batch_norm: y = x * mul + add."""
    inv = np.asarray(scale).astype(np.float64) / np.sqrt(np.asarray(var).astype(np.float64) + epsilon)
    return frozen(inv.astype(np.float32)), frozen((bias - mean * inv).astype(np.float32))


def _bn_nchw(x, mul, add, code, alpha, out):
    y = _result(out, x.shape)
    n, c = x.shape[0], x.shape[1]
    _bn(np.ascontiguousarray(x, np.float32).reshape(n, c, -1), y.reshape(n, c, -1), mul, add, code, alpha)
    return y


def _bn_prepare(consts, attrs):
    """The per-channel factors worked out once (a batch_norm no conv absorbed has constant statistics), the
    activation fused; also on channel-blocked tensors (DenseNet's BN -> ReLU before each conv, on the
    concatenation of the blocked outputs of the convs before it)."""
    if any(c is None for c in consts[1:5]) or attrs["act_type"] not in ACT_CODES:
        return None
    mul, add = _bn_factors(*consts[1:5], attrs["epsilon"])
    code, alpha = ACT_CODES[attrs["act_type"]], float(attrs["act_alpha"])
    bounds = _blocked.act_bounds(code, alpha)

    @attrs_bound
    def run(x, *_, out=None, **__):
        return _bn_nchw(x, mul, add, code, alpha, out)

    @attrs_bound
    def blocked(x, *_, out=None, **__):
        y = _result(out, x.shape)
        n, c = x.shape[0], x.shape[1]
        _blocked.affine(np.ascontiguousarray(x).reshape(-1), mul, add, y.reshape(-1), n, c // 16,
                        x[0, 0].size, *bounds)
        return y

    if _blocked.AVAILABLE and bounds is not None:
        run.blocked = Blocked(free=(), tied=(0,), variant=lambda blocked_inputs, out_blocked: blocked)
    return run


@kernel("batch_norm", out=True, prepare=_bn_prepare)
def batch_norm(x, scale, bias, mean, var, *, epsilon, act_type, act_alpha, out=None):
    y = _bn_nchw(x, *_bn_factors(scale, bias, mean, var, epsilon), ACT_CODES.get(act_type, 0), float(act_alpha), out)
    if act_type not in ACT_CODES:
        y[...] = apply_act(y, act_type, act_alpha)
    return y


def _einsum_plan(equation, shapes):
    """How a two-operand einsum runs as one batched matmul (`einsum`), or None (numpy's einsum then): the letters
    of each class in order and the transposes; None for a letter twice in one operand, a broadcast (size-1)
    batch or contracted dimension, or a letter one operand sums alone."""
    (ta, tb), to = einsum_terms(equation, [len(s) for s in shapes])
    if len(set(ta)) != len(ta) or len(set(tb)) != len(tb) or any(c not in tb + to for c in ta) \
            or any(c not in ta + to for c in tb):
        return None
    size = {}
    for t, sh in ((ta, shapes[0]), (tb, shapes[1])):
        for c, d in zip(t, sh):
            if size.setdefault(c, d) != d:
                return None
    batch = [c for c in to if c in ta and c in tb]
    left = [c for c in to if c in ta and c not in tb]
    right = [c for c in to if c in tb and c not in ta]
    inner = [c for c in ta if c in tb and c not in to]
    n = lambda cs: math.prod(size[c] for c in cs)  # noqa: E731
    perm_a = [ta.index(c) for c in batch + left + inner]
    perm_b = [tb.index(c) for c in batch + inner + right]
    order = batch + left + right
    return (perm_a, (n(batch), n(left), n(inner)), perm_b, (n(batch), n(inner), n(right)),
            tuple(size[c] for c in order), [order.index(c) for c in to])


@kernel("einsum", out=True)
def einsum(*xs, equation, out=None):
    """Two operands (attention's 'bhid,bhjd->bhij'): transposed to (batch, rows, inner) @ (batch, inner,
    cols), one batched BLAS matmul, transposed to the output's order; numpy's einsum otherwise."""
    plan = _einsum_plan(equation, [x.shape for x in xs]) if len(xs) == 2 else None
    if plan is None:
        y = OPS["einsum"].reference(*xs, equation=equation)
    else:
        perm_a, shape_a, perm_b, shape_b, shape_y, perm_y = plan
        a = np.ascontiguousarray(xs[0].transpose(perm_a)).reshape(shape_a)
        b = np.ascontiguousarray(xs[1].transpose(perm_b)).reshape(shape_b)
        y = np.matmul(a, b).reshape(shape_y).transpose(perm_y)
    if out is None:
        return np.array(y, order="C")  # (ascontiguousarray makes a 0-d result 1-d)
    np.copyto(out, y)
    return out


@njit(**dict(PJIT, fastmath=True, error_model="numpy"))
def _softmax_rows(x, y, log):
    """Softmax (or its log) of each row of x (rows, L) into y: e**(x - max) once a value (`exp32`, so that the
    loops vectorize), summed in float32."""
    rows, length = x.shape
    for r in prange(rows):
        m = x[r, 0]
        for i in range(1, length):
            m = max(m, x[r, i])
        s = np.float32(0.0)
        if log:
            for i in range(length):
                s += exp32(x[r, i] - m)
            ls = np.float32(math.log(s))
            for i in range(length):
                y[r, i] = x[r, i] - m - ls
        else:
            for i in range(length):
                e = exp32(x[r, i] - m)
                y[r, i] = e
                s += e
            inv = np.float32(1.0) / s
            for i in range(length):
                y[r, i] *= inv


@njit(**dict(PJIT, fastmath=True, error_model="numpy"))
def _softmax_inner(x, y, log):
    """Softmax over the middle axis of x (outer, L, inner), inner > 1: the max, the exponentials and their sums
    run along the contiguous inner axis, L at a time (YOLOv8's DFL: 16 of 4 x 2000; the last-axis rows of a
    moved copy took 1 ms there)."""
    outer, length, inner = x.shape
    for o in prange(outer):
        m = x[o, 0].copy()
        for t in range(1, length):
            row = x[o, t]
            for i in range(inner):
                m[i] = max(m[i], row[i])
        s = np.zeros(inner, np.float32)
        for t in range(length):
            row, out = x[o, t], y[o, t]
            for i in range(inner):
                e = exp32(row[i] - m[i])
                s[i] += e
                if not log:
                    out[i] = e
        if log:
            for i in range(inner):
                s[i] = np.float32(math.log(s[i])) + m[i]
            for t in range(length):
                row, out = x[o, t], y[o, t]
                for i in range(inner):
                    out[i] = row[i] - s[i]
        else:
            for i in range(inner):
                s[i] = np.float32(1.0) / s[i]
            for t in range(length):
                out = y[o, t]
                for i in range(inner):
                    out[i] *= s[i]


def _softmax(x, axis, log, out):
    a = axis % x.ndim
    if x.dtype != np.float32:  # (float64 / float16 models: the op's reference, in their precision)
        y = OPS["log_softmax" if log else "softmax"].run(x, axis=axis)[0]
        if out is not None:
            out[...] = y
            return out
        return y
    y = out if out is not None and out.flags.c_contiguous and out.dtype == np.float32 else np.empty(x.shape, np.float32)
    if x.size:
        xc = np.ascontiguousarray(x)
        inner = math.prod(x.shape[a + 1:])
        if inner == 1:  # the usual case (a classifier's or attention's last axis)
            _softmax_rows(xc.reshape(-1, x.shape[a]), y.reshape(-1, x.shape[a]), log)
        else:
            _softmax_inner(xc.reshape(-1, x.shape[a], inner), y.reshape(-1, x.shape[a], inner), log)
    if out is not None and y is not out:
        out[...] = y
        return out
    return y


@kernel("softmax", out=True)
def softmax(x, *, axis, out=None):
    return _softmax(x, axis, False, out)


@kernel("log_softmax", out=True)
def log_softmax(x, *, axis, out=None):
    return _softmax(x, axis, True, out)


@kernel("matmul_v2", out=True)
def matmul_v2(x, y, *, trans_x, trans_y, out=None):
    if trans_x and x.ndim >= 2:
        x = np.swapaxes(x, -1, -2)
    if trans_y and y.ndim >= 2:
        y = np.swapaxes(y, -1, -2)
    if out is not None and x.dtype == y.dtype == out.dtype and x.ndim >= 2 and y.ndim >= 2:
        return np.matmul(x, y, out=out)
    r = np.matmul(x, y).astype(x.dtype, copy=False)
    if out is not None:
        out[...] = r
        return out
    return r


@njit(**dict(JIT, fastmath=True, error_model="numpy"))
def _bias_act(y, bias, has_bias, code, alpha):
    """(Serial: one pass over the GEMM's output; a parallel region cost more than the pass, 30 us on a
    classifier's 1000 outputs.) Row by row, the bias add and each activation a loop of its own, which LLVM
    vectorizes (one loop calling `_act` a value did not: ConvNeXt's 3136 x 384 bias 1.0 -> 0.1 ms)."""
    rows, n = y.shape
    for r in range(rows):
        row = y[r]
        if has_bias:
            for j in range(n):
                row[j] += bias[j]
        _act_row(row, code, alpha)


@kernel("fc", out=True)
def fc(x, w, b, *, in_num_col_dims, act_type, act_alpha, out=None):
    k = in_num_col_dims
    rows = math.prod(x.shape[:k])
    y = _result(out, x.shape[:k] + (w.shape[1],))
    y2 = y.reshape(rows, w.shape[1])
    np.dot(np.ascontiguousarray(x, dtype=np.float32).reshape(rows, -1), w, out=y2)
    code = ACT_CODES.get(act_type, 0)
    if b is not None or code:
        _bias_act(y2, bias_of(b), b is not None, code, float(act_alpha))
    if act_type not in ACT_CODES:
        y[...] = apply_act(y, act_type, act_alpha)
    return y


@njit(**dict(PJIT, fastmath=True, error_model="numpy"))
def _layer_norm(x, y, scale, bias, has_scale, has_bias, eps):
    """fastmath: the sums (in float64) in any order, so that LLVM vectorizes them (ConvNeXt-tiny's 23 layer
    norms 6.1 -> 1.9 ms)."""
    rows, n = x.shape
    for r in prange(rows):
        s = 0.0
        for i in range(n):
            s += x[r, i]
        mu = s / n
        v = 0.0
        for i in range(n):
            d = x[r, i] - mu
            v += d * d
        inv = 1.0 / math.sqrt(v / n + eps)
        if has_scale and has_bias:
            for i in range(n):
                y[r, i] = (x[r, i] - mu) * inv * scale[i] + bias[i]
        else:
            for i in range(n):
                t = (x[r, i] - mu) * inv
                if has_scale:
                    t *= scale[i]
                if has_bias:
                    t += bias[i]
                y[r, i] = t


@kernel("layer_norm", out=True)
def layer_norm(x, scale, bias, *, epsilon, begin_norm_axis, out=None):
    a = begin_norm_axis % x.ndim
    n = math.prod(x.shape[a:])
    y = _result(out, x.shape)
    one = NO_BIAS
    _layer_norm(np.ascontiguousarray(x).reshape(-1, n), y.reshape(-1, n),
                scale.reshape(-1) if scale is not None else one, bias.reshape(-1) if bias is not None else one,
                scale is not None, bias is not None, epsilon)
    return y


@njit(**PJIT)
def _bilinear(x, y, y0, y1, fy, x0, x1, fx):
    n, c, _, _ = x.shape
    oh, ow = y.shape[2], y.shape[3]
    for k in prange(n * c):
        b, ch = k // c, k % c
        for i in range(oh):
            a0, a1, wy = y0[i], y1[i], fy[i]
            for j in range(ow):
                c0, c1, wx = x0[j], x1[j], fx[j]
                top = x[b, ch, a0, c0] * (1 - wx) + x[b, ch, a0, c1] * wx
                bot = x[b, ch, a1, c0] * (1 - wx) + x[b, ch, a1, c1] * wx
                y[b, ch, i, j] = top * (1 - wy) + bot * wy


@njit(**PJIT)
def _nearest(x, y, iy, ix):
    """Output rows that repeat the row above (an upsampling's) are copied from it, not gathered again (2x on a
    96 x 80 x 80 map: 2.4 -> 1.0 ms)."""
    n, c, _, _ = x.shape
    oh, ow = y.shape[2], y.shape[3]
    for k in prange(n * c):
        b, ch = k // c, k % c
        for i in range(oh):
            row = y[b, ch, i]
            if i > 0 and iy[i] == iy[i - 1]:
                above = y[b, ch, i - 1]
                for j in range(ow):  # (a loop: numba's slice assignment is slower, `tensor._copy_box`)
                    row[j] = above[j]
                continue
            src = x[b, ch, iy[i]]
            for j in range(ow):
                row[j] = src[ix[j]]


@kernel("bilinear_interp_v2", out=True)
def bilinear_interp_v2(x, size_t, scale_t, *, out_h, out_w, scale, coordinate_transformation_mode, nearest_mode,
                       cubic_coeff_a, out=None):
    oh, ow, sh, sw = interp_size_and_scale(x.shape, size_t, scale_t, out_h, out_w, scale)
    if (oh, ow) == x.shape[2:]:  # the identity, whatever the scales (as the reference)
        return _copy(x, out)
    (y0, y1, fy), (x0, x1, fx) = bilinear_weights(x.shape, oh, ow, sh, sw, coordinate_transformation_mode)
    y = _result(out, x.shape[:2] + (oh, ow), x.dtype)
    _bilinear(np.ascontiguousarray(x), y, y0, y1, fy, x0, x1, fx)
    return y


@njit(**PJIT)
def _nearest_blocked(x, y, iy, ix):
    """_nearest on channel-blocked tensors, as (N * C / 16, H, W, 16): a pixel's 16 channels copied at once."""
    for k in prange(x.shape[0]):
        for i in range(y.shape[1]):
            if i > 0 and iy[i] == iy[i - 1]:
                row, above = y[k, i].reshape(-1), y[k, i - 1].reshape(-1)
                for j in range(row.size):
                    row[j] = above[j]
                continue
            for j in range(y.shape[2]):
                for lane in range(16):
                    y[k, i, j, lane] = x[k, iy[i], ix[j], lane]


def _nearest_prepare(consts, attrs):
    """Also on channel-blocked tensors (`_blocked`; input and output blocked): YOLOv8's necks upsample a conv's
    output and concatenate it with another, which then stay blocked from conv to conv."""
    def run(x, size_t, scale_t, *, out=None, **kw):
        return nearest_interp_v2(x, size_t, scale_t, out=out, **kw)

    def blocked(x, size_t, scale_t, *, out_h, out_w, scale, coordinate_transformation_mode, nearest_mode,
                cubic_coeff_a, out=None):
        n, c, h, w = x.shape
        oh, ow, sh, sw = interp_size_and_scale(x.shape, size_t, scale_t, out_h, out_w, scale)
        if (oh, ow) == (h, w):
            return _copy(x, out)
        iy, ix = nearest_indices(x.shape, oh, ow, sh, sw, coordinate_transformation_mode, nearest_mode)
        y = _result(out, (n, c, oh, ow), x.dtype)
        _nearest_blocked(np.ascontiguousarray(x).reshape(-1, h, w, 16), y.reshape(-1, oh, ow, 16), iy, ix)
        return y

    run.blocked = Blocked(free=(), tied=(0,), variant=lambda blocked_inputs, out_blocked: blocked)
    return run


@kernel("nearest_interp_v2", out=True, prepare=_nearest_prepare)
def nearest_interp_v2(x, size_t, scale_t, *, out_h, out_w, scale, coordinate_transformation_mode, nearest_mode,
                      cubic_coeff_a, out=None):
    oh, ow, sh, sw = interp_size_and_scale(x.shape, size_t, scale_t, out_h, out_w, scale)
    if (oh, ow) == x.shape[2:]:  # the identity, whatever the scales (as the reference)
        return _copy(x, out)
    iy, ix = nearest_indices(x.shape, oh, ow, sh, sw, coordinate_transformation_mode, nearest_mode)
    y = _result(out, x.shape[:2] + (oh, ow), x.dtype)
    _nearest(np.ascontiguousarray(x), y, iy, ix)
    return y


@kernel("instance_norm", out=True)
def instance_norm(x, scale, bias, *, epsilon, out=None):
    """layer norm of each (n, c) plane, then the per-channel affine (the same loop as layer_norm)."""
    n, c = x.shape[0], x.shape[1]
    y = _result(out, x.shape)
    plane = math.prod(x.shape[2:])
    one = np.ones(1, np.float32)
    _layer_norm(np.ascontiguousarray(x).reshape(n * c, plane), y.reshape(n * c, plane), one, one, False, False,
                epsilon)
    if scale is not None or bias is not None:
        mul = np.tile(scale.astype(np.float32), n) if scale is not None else np.ones(n * c, np.float32)
        add = np.tile(bias.astype(np.float32), n) if bias is not None else np.zeros(n * c, np.float32)
        _bn(y.reshape(1, n * c, plane), y.reshape(1, n * c, plane), frozen(mul), frozen(add), 0, 0.0)
    return y


# --- pad ---------------------------------------------------------------------------------------------

PAD_RANK = 6  # inputs of lower rank get leading 1-dims; higher ranks fall back to the reference


def _pad_source_index(n: int, before: int, after: int, mode: str) -> np.ndarray:
    """For each output index along one dim, the input index it copies (-1: the constant).

    Negative pads crop first; reflect (mirror without the edge, numpy/ONNX) and edge then pad the
    cropped range, as the reference does."""
    lo, hi = max(0, -before), n - max(0, -after)
    m = hi - lo
    i = np.arange(m + max(0, before) + max(0, after), dtype=np.int64) - max(0, before)
    if mode == "constant":
        return np.where((i >= 0) & (i < m), i + lo, -1)
    if mode == "edge" or m == 1:
        return np.clip(i, 0, m - 1) + lo
    period = 2 * (m - 1)
    j = np.abs(i) % period
    return np.where(j >= m, period - j, j) + lo


@njit(**PJIT)
def _pad6(x, y, maps, value):
    o = y.shape
    for a in prange(o[0]):
        ia = maps[0, a]
        for b in range(o[1]):
            ib = maps[1, b]
            for c in range(o[2]):
                ic = maps[2, c]
                for d in range(o[3]):
                    id_ = maps[3, d]
                    for e in range(o[4]):
                        ie = maps[4, e]
                        outer = ia < 0 or ib < 0 or ic < 0 or id_ < 0 or ie < 0
                        for f in range(o[5]):
                            jf = maps[5, f]
                            if outer or jf < 0:
                                y[a, b, c, d, e, f] = value
                            else:
                                y[a, b, c, d, e, f] = x[ia, ib, ic, id_, ie, jf]


@kernel("pad", out=True)
def pad(x, paddings_t, *, paddings, mode, pad_value, out=None):
    if x.ndim > PAD_RANK or x.dtype == np.bool_:
        r = OPS["pad"].reference(x, paddings_t, paddings=paddings, mode=mode, pad_value=pad_value)
        if out is None:
            return r
        out[...] = r
        return out
    p = [int(v) for v in np.asarray(paddings_t).reshape(-1)] if paddings_t is not None else list(paddings)
    lead = PAD_RANK - x.ndim
    idx = [np.zeros(1, np.int64)] * lead + [_pad_source_index(x.shape[i], p[2 * i], p[2 * i + 1], mode)
                                            for i in range(x.ndim)]
    maps = np.full((PAD_RANK, max(len(m) for m in idx)), -1, np.int64)
    for k, m in enumerate(idx):
        maps[k, :len(m)] = m
    shape = tuple(len(m) for m in idx[lead:])
    y = _result(out, shape, x.dtype)
    if y.size:
        x6 = np.ascontiguousarray(x).reshape((1,) * lead + x.shape)
        _pad6(x6, y.reshape((1,) * lead + shape), maps, x.dtype.type(pad_value))
    return y

