"""Helpers shared by the kernel modules."""
from __future__ import annotations

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
