"""numba kernels for the unary ops of ir/ops/activation.py: plain loops over the flattened input."""
from __future__ import annotations

import math
import types

import numpy as np

from ...ir import OPS
from . import Blocked, kernel
from ._util import JIT, erf32, exp32, frozen, in_place, njit


def _loop_template(x, out, p0, p1, p2):
    if in_place(x, out):  # (the loop reads out itself: `_util.in_place`)
        for i in range(out.size):
            out[i] = _elem(out[i], p0, p1, p2)  # noqa: F821  (each op's copy has its own `_elem` global)
    else:
        for i in range(x.size):
            out[i] = _elem(x[i], p0, p1, p2)  # noqa: F821


def _map(op_name, **jit_kw):
    """Register a kernel whose loop applies `f(v, *params)` element by element."""
    def deco(f):
        # Each op gets its own copy of `_loop_template`, whose `_elem` is the op's compiled f. Not a closure:
        # numba keys a function's disk cache on the pickled contents of its closure cells, and a pickled
        # dispatcher differs from process to process, so a closure recompiled in every new process. And
        # its own name: numba names the cache files after it (one shared name made the ops evict each other).
        glb = dict(globals(), _elem=njit(inline="always", **JIT)(f))
        loop = types.FunctionType(_loop_template.__code__, glb, f"{op_name}_loop")
        loop.__qualname__ = f"{op_name}_loop"
        loop = njit(**dict(JIT, error_model="numpy"))(loop)  # (no zero-division checks: the loops vectorize)

        names = list(OPS[op_name].attrs)

        def run(x, out=None, **attrs):
            params = [float(attrs[k]) for k in names] + [0.0] * (3 - len(names))
            y = out if out is not None else np.empty(x.shape, x.dtype)
            if x.size:
                loop(frozen(np.ascontiguousarray(x).reshape(-1)), y.reshape(-1), *params)
            return y
        run.__name__ = op_name
        kernel(op_name, out=True)(_any_layout(run))
        return f
    return deco


def _any_layout(fn):
    """An element-by-element kernel runs as it is on a channel-blocked tensor (`_blocked`), its output in the
    input's layout: an activation that no op before it absorbed stays inside a blocked island."""
    fn.blocked = Blocked(free=(), tied=(0,), variant=lambda blocked_inputs, out_blocked: fn)
    return fn


@_map("relu")
def _relu(v, a, b, c):
    return v if v > 0 else v * 0


@_map("relu6")
def _relu6(v, threshold, b, c):
    return min(max(v, 0), threshold)


@_map("leaky_relu")
def _leaky(v, alpha, b, c):
    return v if v >= 0 else v * alpha


@_map("sigmoid")
def _sigmoid(v, a, b, c):
    return np.float32(1.0) / (np.float32(1.0) + exp32(-v))  # (float32, vectorized: `_util.exp32`)


@_map("tanh")
def _tanh(v, a, b, c):
    return math.tanh(v)


@_map("hard_sigmoid")
def _hard_sigmoid(v, slope, offset, c):
    return min(max(v * slope + offset, 0.0), 1.0)


@_map("hard_swish")
def _hard_swish(v, threshold, scale, offset):
    return v * min(max(v + offset, 0.0), threshold) / scale


@_map("swish")
def _swish(v, beta, b, c):
    return v / (np.float32(1.0) + exp32(-np.float32(beta) * v))


@_map("elu")
def _elu(v, alpha, b, c):
    return v if v > 0 else alpha * math.expm1(v)


@_map("softplus")
def _softplus(v, a, b, c):
    return max(v, 0.0) + math.log1p(math.exp(-abs(v)))


@_map("exp")
def _exp(v, a, b, c):
    return math.exp(v) if v < 709 else math.inf


@_map("log")
def _log(v, a, b, c):
    return math.log(v) if v > 0 else (-math.inf if v == 0 else math.nan)


@_map("abs")
def _abs(v, a, b, c):
    return abs(v)


@_map("sqrt")
def _sqrt(v, a, b, c):
    return math.sqrt(v) if v >= 0 else math.nan


@_map("rsqrt")
def _rsqrt(v, a, b, c):
    return 1.0 / math.sqrt(v) if v > 0 else (math.inf if v == 0 else math.nan)


@_map("reciprocal")
def _reciprocal(v, a, b, c):
    return 1.0 / v if v != 0 else math.copysign(math.inf, v)


@_map("floor")
def _floor(v, a, b, c):
    return math.floor(v)


@_map("ceil")
def _ceil(v, a, b, c):
    return math.ceil(v)


@_map("square")
def _square(v, a, b, c):
    return v * v


@_map("erf")
def _erf(v, a, b, c):
    return erf32(v)  # (float32, vectorized: `_util.erf32`)


@_map("sign")
def _sign(v, a, b, c):
    return (v > 0) - (v < 0)


@njit(inline="always", **JIT)
def _clip_body(x, out, lo, hi):
    for i in range(x.size):
        v = x[i]
        if v < lo:
            v = lo
        if v > hi:  # after the lower bound: min > max gives max, as onnxruntime
            v = hi
        out[i] = v


@njit(**JIT)
def _clip(x, out, lo, hi):
    if in_place(x, out):  # (`_util.in_place`)
        _clip_body(out, out, lo, hi)
    else:
        _clip_body(x, out, lo, hi)


def _bound(t, attr, dtype):
    """The clip bound in x's dtype: the Min/Max input if given, else the attribute; an infinite bound of an
    integer clip becomes the dtype's limit (so the loop stays in integers)."""
    v = np.asarray(t).reshape(-1)[0] if t is not None else attr
    if dtype.kind in "iu" and not np.isfinite(v):
        v = np.iinfo(dtype).min if v < 0 else np.iinfo(dtype).max
    return dtype.type(v)


@kernel("clip", out=True)
def clip(x, lo_t, hi_t, *, min, max, out=None):
    """min(max(x, lo), hi); NaN stays NaN."""
    y = out if out is not None else np.empty(x.shape, x.dtype)
    if x.size:
        _clip(np.ascontiguousarray(x).reshape(-1), y.reshape(-1), _bound(lo_t, min, x.dtype),
              _bound(hi_t, max, x.dtype))
    return y


@njit(**JIT)
def _prelu(x, alpha, out):
    for i in range(x.size):
        v = x[i]
        out[i] = v if v >= 0 else v * alpha[i]


@kernel("prelu", out=True)
def prelu(x, alpha, *, mode, out=None):
    a = np.ascontiguousarray(np.broadcast_to(alpha.astype(x.dtype, copy=False), x.shape)).reshape(-1)
    y = out if out is not None else np.empty(x.shape, x.dtype)
    if x.size:
        _prelu(np.ascontiguousarray(x).reshape(-1), a, y.reshape(-1))
    return y


@njit(inline="always", **JIT)
def _scale_body(x, out, s, b, after):
    if after:
        for i in range(x.size):
            out[i] = x[i] * s + b
    else:
        for i in range(x.size):
            out[i] = (x[i] + b) * s


@njit(**JIT)
def _scale(x, out, s, b, after):
    if in_place(x, out):  # (`_util.in_place`)
        _scale_body(out, out, s, b, after)
    else:
        _scale_body(x, out, s, b, after)


@kernel("scale", out=True)
@_any_layout
def scale(x, *, scale, bias, bias_after_scale, out=None):
    if x.dtype.kind not in "f":
        return OPS["scale"].reference(x, scale=scale, bias=bias, bias_after_scale=bias_after_scale)
    y = out if out is not None else np.empty(x.shape, x.dtype)
    if x.size:
        _scale(np.ascontiguousarray(x).reshape(-1), y.reshape(-1), x.dtype.type(scale), x.dtype.type(bias),
               bias_after_scale)
    return y


@njit(inline="always", **JIT)
def _gelu_body(x, out, approximate):
    half, one = np.float32(0.5), np.float32(1.0)
    if approximate:  # (tanh z = 1 - 2 / (1 + e**2z))
        for i in range(out.size):
            v = x[i]
            z = np.float32(1.5957691216057308) * (v + np.float32(0.044715) * v * v * v)
            out[i] = half * v * (np.float32(2.0) - np.float32(2.0) / (one + exp32(z)))
    else:
        for i in range(out.size):
            v = x[i]
            out[i] = half * v * (one + erf32(v * np.float32(0.7071067811865476)))


@njit(**dict(JIT, error_model="numpy"))
def _gelu(x, out, approximate):
    """float32 arithmetic LLVM vectorizes (`_util.erf32`, `exp32`; ConvNeXt-tiny's GELUs 25 -> 7 ms)."""
    if in_place(x, out):  # (`_util.in_place`)
        _gelu_body(out, out, approximate)
    else:
        _gelu_body(x, out, approximate)


@kernel("gelu", out=True)
def gelu(x, *, approximate, out=None):
    y = out if out is not None else np.empty(x.shape, x.dtype)
    if x.size:
        _gelu(frozen(np.ascontiguousarray(x).reshape(-1)), y.reshape(-1), approximate)
    return y


@njit(**JIT)
def _not(x, out):
    for i in range(x.size):
        out[i] = not x[i]


@kernel("logical_not", out=True)
def logical_not(x, out=None):
    y = out if out is not None else np.empty(x.shape, np.bool_)
    if x.size:
        _not(np.ascontiguousarray(x).reshape(-1), y.reshape(-1))
    return y
