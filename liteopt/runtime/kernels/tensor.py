"""cpu kernels of the data-movement and shape ops.

These ops compute nothing: each kernel is one vectorized copy (numpy's C loops) written into the arena
view when the runtime gives one, or a view when the op is a reshape. The reshape family returns views of
its input, which the memory plan placed in the same slot.
"""
from __future__ import annotations

import numpy as np

from ...ir import OPS
from . import kernel


def _into(out, value):
    if out is None:
        return np.array(value, order="C")
    out[...] = value
    return out


for _name in ("reshape2", "squeeze2", "unsqueeze2", "flatten", "shape", "range", "fill_constant", "split", "tile",
              "gather", "strided_slice", "expand_v2"):
    kernel(_name)(OPS[_name].reference)


@kernel("transpose2", out=True)
def transpose2(x, *, axis, out=None):
    return _into(out, np.transpose(x, axis))


@kernel("concat", out=True)
def concat(*xs, axis, out=None):
    if out is None:
        return np.concatenate(xs, axis=axis)
    return np.concatenate(xs, axis=axis, out=out)


@kernel("cast", out=True)
def cast(x, *, out_dtype, out=None):
    return _into(out, np.asarray(x).astype(out_dtype.np if hasattr(out_dtype, "np") else np.dtype(str(out_dtype))))


@kernel("assign", out=True)
def assign(x, out=None):
    return _into(out, x) if out is not None else np.array(x)


@kernel("dropout", out=True)
def dropout(x, *, dropout_prob, is_test, out=None):
    return _into(out, x) if out is not None else np.array(x)
