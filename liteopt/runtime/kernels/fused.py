"""cpu kernels for the ops only passes produce."""
from __future__ import annotations

import numpy as np

from . import kernel
from ._util import JIT, njit


@njit(**JIT)
def _shuffle(x, out, group):
    n, c, hw = x.shape
    per = c // group
    for b in range(n):
        for g in range(group):
            for k in range(per):
                out[b, k * group + g, :] = x[b, g * per + k, :]


@kernel("shuffle_channel")
def shuffle_channel(x, *, group):
    n, c, h, w = x.shape
    out = np.empty_like(x)
    _shuffle(np.ascontiguousarray(x).reshape(n, c, h * w), out.reshape(n, c, h * w), group)
    return out
