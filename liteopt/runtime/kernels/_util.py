"""Helpers shared by the kernel modules."""
from __future__ import annotations

import numpy as np
from numba import njit  # noqa: F401  (re-exported: kernel modules use `from ._util import njit`)

# Every kernel is compiled once and cached on disk next to the module (see `opt --warmup`).
JIT = dict(cache=True, nogil=True)


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
