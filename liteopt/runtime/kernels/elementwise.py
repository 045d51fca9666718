"""cpu kernels of the element-wise family: one numba loop over the broadcast output (operands viewed as
6-D with zero strides where they broadcast), the op chosen by a code, the fused activation in the epilogue."""
from __future__ import annotations

import numpy as np

from ...ir.ops.activation import apply_act
from . import kernel
from ._util import JIT, njit
from .conv_fast import ACT_CODES, _act

RANK = 6
ARITH = {"elementwise_add": 0, "elementwise_sub": 1, "elementwise_mul": 2, "elementwise_div": 3,
         "elementwise_max": 4, "elementwise_min": 5, "elementwise_pow": 6, "elementwise_mod": 7}
COMPARE = {"equal": 0, "greater_than": 2, "greater_equal": 3, "less_than": 4, "less_equal": 5,
           "logical_and": 6, "logical_or": 7}


@njit(inline="always", **JIT)
def _arith(a, b, code, is_int):
    if code == 0:
        return a + b
    if code == 1:
        return a - b
    if code == 2:
        return a * b
    if code == 3:
        if is_int:
            if b == 0:
                return a * 0
            q = abs(a) // abs(b)
            return q if (a >= 0) == (b >= 0) else -q
        return a / b
    if code == 4:
        return a if a >= b else b
    if code == 5:
        return a if a <= b else b
    if code == 6:
        return a ** b
    if is_int:
        return a % b if b != 0 else a * 0
    return np.fmod(a, b)


@njit(inline="always", **JIT)
def _compare(a, b, code):
    if code == 0:
        return a == b
    if code == 1:
        return a != b
    if code == 2:
        return a > b
    if code == 3:
        return a >= b
    if code == 4:
        return a < b
    if code == 5:
        return a <= b
    if code == 6:
        return bool(a) and bool(b)
    return bool(a) or bool(b)


@njit(**JIT)
def _arith6(a, b, out, code, is_int, act, alpha):
    s = out.shape
    for i0 in range(s[0]):
        for i1 in range(s[1]):
            for i2 in range(s[2]):
                for i3 in range(s[3]):
                    for i4 in range(s[4]):
                        for i5 in range(s[5]):
                            v = _arith(a[i0, i1, i2, i3, i4, i5], b[i0, i1, i2, i3, i4, i5], code, is_int)
                            out[i0, i1, i2, i3, i4, i5] = _act(v, act, alpha) if act else v


@njit(**JIT)
def _arith_flat(a, b, out, code, is_int, act, alpha):
    """Same-shape contiguous operands, or b a single value (b.size == 1)."""
    scalar = b.size == 1
    for i in range(out.size):
        v = _arith(a[i], b[0] if scalar else b[i], code, is_int)
        out[i] = _act(v, act, alpha) if act else v


@njit(**JIT)
def _compare6(a, b, out, code):
    s = out.shape
    for i0 in range(s[0]):
        for i1 in range(s[1]):
            for i2 in range(s[2]):
                for i3 in range(s[3]):
                    for i4 in range(s[4]):
                        for i5 in range(s[5]):
                            out[i0, i1, i2, i3, i4, i5] = _compare(a[i0, i1, i2, i3, i4, i5],
                                                                   b[i0, i1, i2, i3, i4, i5], code)


def _view6(a: np.ndarray, shape: tuple) -> np.ndarray:
    """a broadcast to `shape` and viewed as 6-D (leading 1s), without copying."""
    full = (1,) * (RANK - len(shape)) + tuple(shape)
    return np.broadcast_to(a.reshape((1,) * (RANK - a.ndim) + a.shape) if a.ndim <= RANK else a, full)


def _out(out, shape, dtype):
    return out if out is not None else np.empty(shape, dtype)


def _arith_kernel(name, code):
    def run(x, y, *, act_type, act_alpha, out=None):
        y = y.astype(x.dtype, copy=False)
        shape = np.broadcast_shapes(x.shape, y.shape)
        if len(shape) > RANK:
            from ...ir import OPS
            return OPS[name].run(x, y, act_type=act_type, act_alpha=act_alpha)[0]
        res = _out(out, shape, x.dtype)
        act = ACT_CODES.get(act_type, 0) if x.dtype.kind == "f" else 0
        is_int = x.dtype.kind in "iu"
        if res.size:
            if x.shape == shape and (y.shape == shape or y.size == 1) and x.flags.c_contiguous and y.flags.c_contiguous:
                _arith_flat(x.reshape(-1), y.reshape(-1), res.reshape(-1), code, is_int, act, float(act_alpha))
            else:
                _arith6(_view6(x, shape), _view6(y, shape), res.reshape((1,) * (RANK - len(shape)) + shape), code,
                        is_int, act, float(act_alpha))
        if act_type and act_type not in ACT_CODES:
            res[...] = apply_act(res, act_type, act_alpha)
        return res
    run.__name__ = name
    return run


for _name, _code in ARITH.items():
    kernel(_name, out=True)(_arith_kernel(_name, _code))


def _compare_kernel(name, code):
    def run(x, y, out=None):
        y = y.astype(x.dtype, copy=False)
        shape = np.broadcast_shapes(x.shape, y.shape)
        res = _out(out, shape, np.bool_)
        if res.size:
            _compare6(_view6(x, shape), _view6(y, shape), res.reshape((1,) * (RANK - len(shape)) + shape), code)
        return res
    run.__name__ = name
    return run


for _name, _code in COMPARE.items():
    kernel(_name, out=True)(_compare_kernel(_name, _code))


@kernel("where", out=True)
def where(cond, x, y, out=None):
    r = np.where(cond, x, y.astype(x.dtype, copy=False))
    if out is not None:
        out[...] = r
        return out
    return r


@kernel("sum", out=True)
def sum_(*xs, out=None):
    add = _arith_kernel("elementwise_add", 0)
    acc = xs[0]
    for k, x in enumerate(xs[1:]):
        last = k == len(xs) - 2
        acc = add(acc, x, act_type="", act_alpha=0.0, out=out if last and out is not None and out.shape ==
                  np.broadcast_shapes(acc.shape, x.shape) else None)
    return acc if len(xs) > 1 else (_copy(xs[0], out))


def _copy(x, out):
    if out is not None:
        out[...] = x
        return out
    return np.array(x)
