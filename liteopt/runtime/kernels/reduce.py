"""cpu kernels of the reductions: a numba loop over (outer, reduced, inner) after moving the reduced axes
together; arg_max/arg_min alike."""
from __future__ import annotations

import math

import numpy as np
from numba import prange

from ...ir.ops.reduce import reduce_axes
from . import kernel
from ._util import JIT, njit

PJIT = dict(JIT, parallel=True)


@njit(**PJIT)
def _reduce3(x, out, code):
    """x: (outer, r, inner) -> out: (outer, inner); code 0 max 1 min 2 mean 3 sum 4 prod."""
    outer, r, inner = x.shape
    for o in prange(outer):
        for i in range(inner):
            if code == 0 or code == 1:
                acc = x[o, 0, i]
                for k in range(1, r):
                    v = x[o, k, i]
                    if (code == 0 and v > acc) or (code == 1 and v < acc) or v != v:
                        acc = v
                out[o, i] = acc
            elif code == 4:
                p = x[o, 0, i] * 0 + 1
                for k in range(r):
                    p *= x[o, k, i]
                out[o, i] = p
            else:
                s = 0.0
                for k in range(r):
                    s += x[o, k, i]
                out[o, i] = s / r if code == 2 else s


def _reduce_kernel(code):
    def run(x, *, dim, keep_dim, reduce_all, out=None):
        axes = reduce_axes(x.ndim, dim, reduce_all) if x.ndim else ()
        keep = tuple(i for i in range(x.ndim) if i not in axes)
        moved = np.ascontiguousarray(np.transpose(x, keep + axes)) if axes != tuple(range(x.ndim - len(axes), x.ndim)) \
            else np.ascontiguousarray(x)
        outer = math.prod(x.shape[i] for i in keep)
        r = math.prod(x.shape[i] for i in axes)
        shape = tuple(1 if i in axes else d for i, d in enumerate(x.shape)) if keep_dim else \
            tuple(d for i, d in enumerate(x.shape) if i not in axes)
        res = out if out is not None else np.empty(shape, x.dtype)
        if r == 0:
            from ...ir import OPS
            res[...] = OPS[("reduce_max", "reduce_min", "reduce_mean", "reduce_sum", "reduce_prod")[code]].run(
                x, dim=dim, keep_dim=keep_dim, reduce_all=reduce_all)[0]
            return res
        _reduce3(moved.reshape(outer, r, 1), res.reshape(outer, 1), code)
        return res
    return run


for _code, _name in enumerate(("reduce_max", "reduce_min", "reduce_mean", "reduce_sum", "reduce_prod")):
    kernel(_name, out=True)(_reduce_kernel(_code))


@njit(**PJIT)
def _argext(x, out, want_max, last):
    outer, r, inner = x.shape
    for o in prange(outer):
        for i in range(inner):
            best, arg = x[o, 0, i], 0
            for k in range(1, r):
                v = x[o, k, i]
                better = (v > best) if want_max else (v < best)
                if better or (last and v == best):
                    best, arg = v, k
            out[o, i] = arg


def _arg_kernel(want_max):
    def run(x, *, axis, keepdims, select_last_index, out=None):
        a = axis % x.ndim
        outer, r, inner = math.prod(x.shape[:a]), x.shape[a], math.prod(x.shape[a + 1:])
        shape = tuple(1 if i == a else d for i, d in enumerate(x.shape)) if keepdims else \
            tuple(d for i, d in enumerate(x.shape) if i != a)
        res = out if out is not None else np.empty(shape, np.int64)
        _argext(np.ascontiguousarray(x).reshape(outer, r, inner), res.reshape(outer, inner), want_max,
                select_last_index)
        return res
    return run


kernel("arg_max", out=True)(_arg_kernel(True))
kernel("arg_min", out=True)(_arg_kernel(False))
