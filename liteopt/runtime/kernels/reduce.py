"""cpu kernels of the reductions: x viewed as (outer, r, inner) with the reduced axes in the middle (no copy
when they are adjacent, e.g. H, W of NCHW or C; else a transpose moves them to the end), then one numba
loop per outer index that accumulates whole inner rows (cache-friendly; a scalar accumulator when inner
is 1). Floats accumulate sums in float64, integers in int64 (stored back with wrap-around); semantics as
in ir/ops/reduce.py."""
from __future__ import annotations

import math

import numpy as np
from ...ir import OPS
from ...ir.ops.reduce import extreme, reduce_axes, reduce_shape
from . import Blocked, _blocked, kernel
from ._util import JIT, njit

MAX, MIN, MEAN, SUM, PROD = range(5)
CODES = {"reduce_max": MAX, "reduce_min": MIN, "reduce_mean": MEAN, "reduce_sum": SUM, "reduce_prod": PROD}


@njit(**JIT)
def _extremum3(x, out, want_max):
    """out[o, i] = max (min) over k of x[o, k, i]; NaN propagates."""
    outer, r, inner = x.shape
    for o in range(outer):
        if inner == 1:  # a contiguous run: a scalar accumulator
            m = x[o, 0, 0]
            for k in range(1, r):
                v = x[o, k, 0]
                if (v > m if want_max else v < m) or v != v:
                    m = v
            out[o, 0] = m
            continue
        acc = x[o, 0].copy()
        for k in range(1, r):
            for i in range(inner):
                v = x[o, k, i]
                if (v > acc[i] if want_max else v < acc[i]) or v != v:
                    acc[i] = v
        out[o] = acc


@njit(**dict(JIT, fastmath={"reassoc", "contract"}))
def _accumulate3(x, out, code, is_int, zero):
    """out[o, i] = sum / mean / product over k of x[o, k, i], accumulated in zero's type (float64 or int64);
    an integer mean truncates towards zero. Float sums may be reassociated (so that the scalar loop over a
    contiguous run vectorizes: 4x on a 7x7 global mean); NaN and infinity keep their meaning."""
    outer, r, inner = x.shape
    acc = np.empty(inner, type(zero))  # one buffer for every outer index (an allocation each cost 4x the sum)
    for o in range(outer):
        acc[:] = zero
        if inner == 1:  # a contiguous run: a scalar accumulator
            t = zero + 1 if code == PROD else zero
            for k in range(r):
                if code == PROD:
                    t *= x[o, k, 0]
                else:
                    t += x[o, k, 0]
            acc[0] = t
        elif code == PROD:
            acc[:] = 1
            for k in range(r):
                for i in range(inner):
                    acc[i] *= x[o, k, i]
        else:
            for k in range(r):
                for i in range(inner):
                    acc[i] += x[o, k, i]
        for i in range(inner):
            v = acc[i]
            if code != MEAN:
                out[o, i] = v
            elif is_int:
                q = abs(v) // r
                out[o, i] = q if v >= 0 else -q
            else:
                out[o, i] = v / r


def as_3d(x: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    """x as (outer, r, inner) with the `axes` (sorted) reduced in the middle dim."""
    if axes and axes == tuple(range(axes[0], axes[-1] + 1)):
        x = np.ascontiguousarray(x)
        split = (axes[0], axes[-1] + 1)
    else:
        keep = tuple(i for i in range(x.ndim) if i not in axes)
        x = np.ascontiguousarray(np.transpose(x, keep + axes))
        split = (len(keep), x.ndim)
    s = x.shape
    return x.reshape(math.prod(s[:split[0]]), math.prod(s[split[0]:split[1]]), math.prod(s[split[1]:]))


def _reduce_kernel(code):
    def run(x, *, dim, keep_dim, reduce_all, out=None):
        axes = reduce_axes(x.ndim, dim, reduce_all) if x.ndim else ()
        shape = reduce_shape(x.shape, axes, keep_dim)
        res = out if out is not None else np.empty(shape, x.dtype)
        if res.size == 0:
            return res
        if not axes:  # a scalar
            res[...] = x
            return res
        x3 = as_3d(x, axes)
        o2 = res.reshape(x3.shape[0], x3.shape[2])
        if x3.shape[1] == 0:  # over nothing: the identity
            o2[...] = {MAX: extreme(x.dtype, False), MIN: extreme(x.dtype, True), PROD: 1}.get(code, 0)
        elif code in (MAX, MIN):
            _extremum3(x3, o2, code == MAX)
        else:
            is_int = x.dtype.kind in "iub"
            _accumulate3(x3, o2, code, is_int, np.int64(0) if is_int else np.float64(0))
        return res
    return run


def _spatial_prepare(code):
    """reduce_mean / reduce_max over H and W of a channel-blocked (N, C, H, W) input (`_blocked`, as global
    pooling reads it: MnasNet ends with one): the conv before it then writes the blocked layout instead of
    scattering into NCHW."""
    def prepare(consts, attrs):
        if not _blocked.AVAILABLE or attrs["reduce_all"] or sorted(d % 4 for d in attrs["dim"]) != [2, 3]:
            return None
        general = _reduce_kernel(code)

        def variant(blocked_inputs, out_blocked):
            if 0 not in blocked_inputs:
                return general

            def blocked(x, *, dim, keep_dim, reduce_all, out=None):
                n, c, h, w = x.shape
                y = out if out is not None else np.empty((n, c, 1, 1) if keep_dim else (n, c), np.float32)
                _blocked.global_pool(x.reshape(n, -1), y.reshape(n, -1), c, h * w, code == MAX)
                return y
            return blocked

        def run(x, **kw):
            return general(x, **kw)
        run.blocked = Blocked(free=(0,), tied=(), variant=variant)
        return run
    return prepare


for _name, _code in CODES.items():
    kernel(_name, out=True, prepare=_spatial_prepare(_code) if _code in (MAX, MEAN) else None)(_reduce_kernel(_code))


@njit(**JIT)
def _argext3(x, out, want_max, last):
    """out[o, i] = the k of the first (last) extremum of x[o, k, i] in scan order."""
    outer, r, inner = x.shape
    for o in range(outer):
        if inner == 1:  # a contiguous run: scalar state
            b, j = x[o, 0, 0], 0
            for k in range(1, r):
                v = x[o, k, 0]
                if (v > b if want_max else v < b) or (last and v == b):
                    b, j = v, k
            out[o, 0] = j
            continue
        best = x[o, 0].copy()
        arg = np.zeros(inner, np.int64)
        for k in range(1, r):
            for i in range(inner):
                v = x[o, k, i]
                if (v > best[i] if want_max else v < best[i]) or (last and v == best[i]):
                    best[i] = v
                    arg[i] = k
        out[o] = arg


def _arg_kernel(want_max):
    def run(x, *, axis, keepdims, select_last_index, out=None):
        a = axis % x.ndim
        res = out if out is not None else np.empty(reduce_shape(x.shape, (a,), keepdims), np.int64)
        x3 = as_3d(x, (a,))
        if res.size:
            if x3.shape[1] == 0:
                raise ValueError(f"arg_max/arg_min over an empty axis {a} of shape {x.shape}")
            _argext3(x3, res.reshape(x3.shape[0], x3.shape[2]), want_max, select_last_index)
        return res
    return run


kernel("arg_max", out=True)(_arg_kernel(True))
kernel("arg_min", out=True)(_arg_kernel(False))


# top_k_v2: numpy's stable argsort (the reference; a model's TopK is post-processing on small tensors)
kernel("top_k_v2")(OPS["top_k_v2"].reference)
