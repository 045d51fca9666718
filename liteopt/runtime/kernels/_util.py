"""Helpers shared by the kernel modules."""
from __future__ import annotations

from fractions import Fraction

import numpy as np
from numba import njit  # noqa: F401  (re-exported: kernel modules use `from ._util import njit`)

# Every kernel is compiled once and cached on disk next to the module (see `opt --warmup`).
JIT = dict(cache=True, nogil=True)


def frozen(a: np.ndarray) -> np.ndarray:
    """A read-only view. numba compiles one signature per array flavour, read-only included: weights mapped
    from a file are read-only, weights restored at load and placeholders are not. Constants and biases reach
    the kernels frozen, so each kernel compiles (and the warm-up caches) one signature."""
    v = a.view()
    v.flags.writeable = False
    return v


NO_BIAS = frozen(np.zeros(1, np.float32))  # the bias argument of a kernel called without one


def bias_of(b) -> np.ndarray:
    """A kernel's bias argument: the float32 bias, read-only, or NO_BIAS."""
    return frozen(b.astype(np.float32, copy=False)) if b is not None else NO_BIAS


def full_bias(b, n: int) -> np.ndarray:
    """A bias of n values for the tiled kernels, which always add one: b as float32, or zeros; read-only."""
    return frozen(np.zeros(n, np.float32) if b is None else b.astype(np.float32))


SIZES_KEPT = 8  # input sizes a kernel keeps its per-size state (geometry, scratch) for


def per_size(cache: dict, key, make):
    """cache[key], made by make() when first asked for; a cache that holds SIZES_KEPT entries is emptied first
    (a model with dynamic shapes sees many sizes: keep a few, not all)."""
    value = cache.get(key)
    if value is None:
        if len(cache) >= SIZES_KEPT:
            cache.clear()
        value = cache[key] = make()
    return value


def flat(x: np.ndarray) -> np.ndarray:
    """A contiguous 1-D view (or copy) of x."""
    return np.ascontiguousarray(x).reshape(-1)


def unary(loop):
    """Wrap a numba loop `loop(x_flat, out_flat)` into a kernel x -> out of x's shape and dtype."""
    def run(x):
        out = np.empty(x.shape, x.dtype)
        if x.size:
            loop(flat(x), out.reshape(-1))
        return out
    run.__name__ = loop.__name__
    return run


def winograd_matrices(m: int, r: int = 3):
    """A^T (m x n), G (n x r), B^T (n x n) of F(m, r) by the Cook-Toom construction (n = m + r - 1),
    interpolation points 0, +-1, +-2, +-1/2, ... and infinity, computed exactly with fractions."""
    n = m + r - 1
    pts = [Fraction(0)]
    k = 1
    while len(pts) < n - 1:
        for v in (Fraction(k), Fraction(-k), Fraction(1, k + 1), Fraction(-1, k + 1)):
            if len(pts) < n - 1 and v not in pts:
                pts.append(v)
        k += 1

    def mul(a, b):
        out = [Fraction(0)] * (len(a) + len(b) - 1)
        for i, x in enumerate(a):
            for j, y in enumerate(b):
                out[i + j] += x * y
        return out

    at = [[p ** i for p in pts] + [Fraction(int(i == m - 1))] for i in range(m)]
    g, bt = [], []
    full = [Fraction(1)]
    for p in pts:
        full = mul(full, [-p, Fraction(1)])
    for i, p in enumerate(pts):
        f, poly = Fraction(1), [Fraction(1)]
        for q in pts[:i] + pts[i + 1:]:
            f *= p - q
            poly = mul(poly, [-q, Fraction(1)])
        g.append([p ** j / f for j in range(r)])
        bt.append(poly + [Fraction(0)] * (n - len(poly)))
    g.append([Fraction(int(j == r - 1)) for j in range(r)])
    bt.append(full)
    as_np = lambda rows: np.array([[float(v) for v in row] for row in rows], np.float64)  # noqa: E731
    return as_np(at), as_np(g), as_np(bt)
