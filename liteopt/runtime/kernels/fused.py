"""cpu kernels for the ops only passes produce."""
from __future__ import annotations

import numpy as np

from . import kernel
from ._util import JIT, njit


@njit(**JIT)
def _shuffle(x, out, group):
    """Channel g*per+k goes to k*group+g (plain indexing: a row view per channel costs more than the copy)."""
    n, c, hw = x.shape
    per = c // group
    for b in range(n):
        for g in range(group):
            for k in range(per):
                for i in range(hw):
                    out[b, k * group + g, i] = x[b, g * per + k, i]


@kernel("shuffle_channel", out=True)
def shuffle_channel(x, *, group, out=None):
    n, c, h, w = x.shape
    y = out if out is not None else np.empty_like(x)
    _shuffle(np.ascontiguousarray(x).reshape(n, c, h * w), y.reshape(n, c, h * w), group)
    return y
