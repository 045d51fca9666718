"""cpu kernels of the ops in ir/ops/caffe_extra.py."""
from __future__ import annotations

import numpy as np
from numba import prange

from . import kernel
from ._util import JIT, njit

PJIT = dict(JIT, parallel=True)


@njit(**PJIT)
def _lrn(x, y, n, k, alpha, beta):
    b_n, c, length = x.shape
    lo, hi = (n - 1) // 2, n // 2  # (channels before and after: ONNX's for an even n)
    for t in prange(b_n * length):
        b, i = t // length, t % length
        for ch in range(c):
            s = 0.0
            for cc in range(max(0, ch - lo), min(c, ch + hi + 1)):
                s += x[b, cc, i] * x[b, cc, i]
            y[b, ch, i] = x[b, ch, i] / (k + alpha * s) ** beta


@kernel("lrn", out=True)
def lrn(x, *, n, k, alpha, beta, out=None):
    y = out if out is not None else np.empty(x.shape, x.dtype)
    nb, c = x.shape[0], x.shape[1]
    _lrn(np.asarray(x, order="C").reshape(nb, c, -1), y.reshape(nb, c, -1), n, k, alpha, beta)
    return y
