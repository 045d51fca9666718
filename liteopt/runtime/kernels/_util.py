"""Helpers shared by the kernel modules."""
from __future__ import annotations

import hashlib
import math
import os
from fractions import Fraction

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils, config
from numba.extending import intrinsic

# Every kernel is compiled once and cached on disk (see `python3 -m liteopt.runtime.warmup`).
JIT = dict(cache=True, nogil=True)

_HERE = os.path.dirname(os.path.abspath(__file__))


def source_key(folder: str = _HERE) -> str:
    """A digest of the kernel modules' sources (every .py file in `folder`). numba keys a cached function by
    the content of its own file only, while a kernel also compiles in what it calls from other modules (the
    LLVM-IR tiles, constants such as the Winograd matrices): cached under this key, no kernel comes back from
    the cache built against another version of them."""
    digest = hashlib.sha256()
    for name in sorted(os.listdir(folder)):
        if name.endswith(".py"):
            with open(os.path.join(folder, name), "rb") as f:
                digest.update(name.encode() + b"\0" + f.read())
    return digest.hexdigest()[:16]


CACHE_PREFIX = "liteopt-kernels-"


def cache_bases() -> list[str]:
    """Where the kernel cache may go, in order: NUMBA_CACHE_DIR if set, the package's __pycache__, the user's
    cache folder (for a read-only install)."""
    user = os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "liteopt")
    return [b for b in (config.CACHE_DIR, os.path.join(_HERE, "__pycache__"), user) if b]


def _cache_dir() -> str:
    """The first writable of `cache_bases()` joined with CACHE_PREFIX + `source_key()`; "" if none is (numba
    then picks its own place)."""
    key = source_key()
    for base in cache_bases():
        path = os.path.join(base, CACHE_PREFIX + key)
        try:
            os.makedirs(path, exist_ok=True)
        except OSError:
            continue
        if os.access(path, os.W_OK):
            return path
    return ""


CACHE_DIR = _cache_dir()


def remove_stale_caches() -> int:
    """Delete what older versions of the package left in its __pycache__: the caches of other keys and the
    files numba wrote there before the caches were keyed. (Shared places, NUMBA_CACHE_DIR or the user's
    cache folder, may hold other installs' caches: left alone.) Returns how many entries went."""
    import shutil
    base, current, removed = os.path.join(_HERE, "__pycache__"), os.path.basename(CACHE_DIR), 0
    for name in os.listdir(base) if os.path.isdir(base) else ():
        path = os.path.join(base, name)
        try:
            if name.startswith(CACHE_PREFIX) and name != current:
                shutil.rmtree(path)
            elif name.endswith((".nbi", ".nbc")):
                os.remove(path)
            else:
                continue
        except OSError:  # not ours to delete (a read-only install): left as it is
            continue
        removed += 1
    return removed


def njit(*args, **options):
    """numba.njit; a cached function's cache goes to CACHE_DIR (numba picks the folder when the function is
    decorated, from its CACHE_DIR setting: set for that moment only, the user's own functions are untouched)."""
    def decorate(fn):
        if not (options.get("cache") and CACHE_DIR):
            return numba.njit(**options)(fn)
        saved, config.CACHE_DIR = config.CACHE_DIR, CACHE_DIR
        try:
            return numba.njit(**options)(fn)
        finally:
            config.CACHE_DIR = saved
    return decorate(args[0]) if args else decorate


def serial_and_threaded(fn):
    """Two builds of a driver whose outer loop is a prange: a serial one (a parallel build costs about 1 us a
    call even on one thread) and a threaded one, under their own names so that numba caches both; a call runs
    the threaded one when numba's pool has more than one thread (`threads.use_numba_pool`)."""
    import types as pytypes

    from ..threads import numba_threads
    threaded = pytypes.FunctionType(fn.__code__, fn.__globals__, fn.__name__ + "_threaded", fn.__defaults__,
                                    fn.__closure__)
    threaded.__qualname__ = fn.__qualname__ + "_threaded"
    serial, threaded = njit(**JIT)(fn), njit(**dict(JIT, parallel=True))(threaded)
    return lambda *args: (threaded if numba_threads() > 1 else serial)(*args)


def attrs_bound(fn):
    """Mark a prepared kernel that took its node's attributes from `prepare` and ignores them at run time: the
    predictor calls it with the inputs (and out=) only. Unpacking a conv's seven attributes into keywords cost
    ~0.6 us a call, 4-5% of a small model's run (PP-OCR's direction classifier: 75 ops in 0.85 ms)."""
    fn.attrs_bound = True
    return fn


@njit(inline="always", **JIT)
def in_place(x, out):
    """Whether out starts at x's memory (the memory plan may give an op its input's memory). A loop reading x
    and writing out then has LLVM's runtime overlap check fail and runs scalar (sigmoid on 80 x 1029: 37 ->
    373 us); handed the one array twice (`f(out, out)`), LLVM sees one pointer and vectorizes."""
    return x.ctypes.data == out.ctypes.data


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


# F(4,3)'s interpolation points: 0, +-3/2, +-2/3 instead of the usual 0, +-1, +-1/2. In float32 its error
# from the exact convolution is then 2.8x that of im2col + GEMM on a 64-channel 56x56 conv instead of 13.5x
# (tests/kernels/test_conv_variants.py), ResNet50's logits 1.4e-4 -> 8e-5 from onnxruntime's, at the same speed
# (a few more multiply-adds in the transforms). Found by trying point sets on that conv (Barabasz et al., "Error
# analysis and improving the accuracy of Winograd convolution", 2020, show why the points matter); for F(6,3)
# none of the symmetric sets tried beat the default.
WINOGRAD_POINTS = {4: (Fraction(0), Fraction(3, 2), Fraction(-3, 2), Fraction(2, 3), Fraction(-2, 3))}


def winograd_matrices(m: int, r: int = 3):
    """A^T (m x n), G (n x r), B^T (n x n) of F(m, r) by the Cook-Toom construction (n = m + r - 1),
    computed exactly with fractions; interpolation points WINOGRAD_POINTS[m], else 0, +-1, +-1/2, +-2, ...
    and infinity."""
    n = m + r - 1
    pts = list(WINOGRAD_POINTS.get(m, [Fraction(0)]))
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


# e**x in float32 (`exp32` and the 16-lane `_tiled._exp`): the clamp, ln2 in two parts (hi + lo), Cephes' expf
# polynomial from its highest coefficient on
EXP_RANGE = (-87.33, 88.0)
EXP_LN2 = (0.693359375, -2.12194440e-4)
EXP_POLY = (1.9875691500e-4, 1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2, 1.6666665459e-1, 5.0000001201e-1)
_X_LO, _X_HI = (np.float32(v) for v in EXP_RANGE)
_MINUS_LN2_HI, _MINUS_LN2_LO = (np.float32(-v) for v in EXP_LN2)
_P0, _P1, _P2, _P3, _P4, _P5 = (np.float32(v) for v in EXP_POLY)


@intrinsic
def _float_from_bits(typingctx, bits):
    """The float32 whose IEEE bits are the int32 `bits`."""
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.FloatType())
    return types.float32(types.int32), codegen


@intrinsic
def _fma32(typingctx, a, b, c):
    """a * b + c, one rounding (llvm.fma: a fast-math caller cannot re-associate through it)."""
    sig = types.float32(a, b, c)

    def codegen(context, builder, signature, args):
        f32 = [context.cast(builder, v, t, types.float32) for v, t in zip(args, signature.args)]
        f = ir.FloatType()
        fma = cgutils.get_or_insert_function(builder.module, ir.FunctionType(f, [f, f, f]), "llvm.fma.f32")
        return builder.call(fma, f32)
    return sig, codegen


# erf: 2/sqrt(pi) times its Maclaurin series' first seven odd terms under |x| = 0.5 (the next term < 1e-9);
# above, Abramowitz & Stegun's 7.1.26, 1 - t (a1 + t (a2 + ... + t a5)) e**-x^2 with t = 1 / (1 + p |x|)
# (absolute error under 1.5e-7)
_ERF_SERIES = tuple(np.float32(2 / math.sqrt(math.pi) * (-1) ** k / (math.factorial(k) * (2 * k + 1)))
                    for k in range(7))
_ERF_P = np.float32(0.3275911)
_ERF_A = tuple(np.float32(v) for v in (0.254829592, -0.284496736, 1.421413741, -1.453152027, 1.061405429))


@njit(inline="always", **JIT)
def erf32(x):
    """erf of a float32 in float32 arithmetic that LLVM vectorizes (math.erf is a libm call a value): both
    forms computed and one selected (no branch). Under 3.5e-7 from the exact value, relative under 1e-6 near 0
    (tests/kernels/test_exp32.py). GELU's erf (ConvNeXt-tiny: 25 ms of scalar calls)."""
    a = min(abs(x), np.float32(4.0))  # (erf(4) rounds to 1 in float32)
    a2 = a * a
    c0, c1, c2, c3, c4, c5, c6 = _ERF_SERIES
    series = a * (c0 + a2 * (c1 + a2 * (c2 + a2 * (c3 + a2 * (c4 + a2 * (c5 + a2 * c6))))))
    t = np.float32(1.0) / (np.float32(1.0) + _ERF_P * a)
    p1, p2, p3, p4, p5 = _ERF_A
    tail = np.float32(1.0) - t * (p1 + t * (p2 + t * (p3 + t * (p4 + t * p5)))) * exp32(-a2)
    r = series if a < np.float32(0.5) else tail
    return r if x > 0 else (-r if x < 0 else x)  # (erf(+-0) = +-0, NaN stays)


@njit(inline="always", **JIT)
def exp32(x):
    """e**x of a float32 in float32 arithmetic that LLVM vectorizes (math.exp is a libm call a value, in float64):
    x = n ln2 + r (ln2 in two parts, fused multiply-adds), e**r by Cephes' degree-6 polynomial for expf, 2**n
    built in the exponent bits. Relative error under 5e-7 (tests/kernels/test_exp32.py); x clamped to [-87.3, 88]
    (e**x from 1.2e-38 to 1.7e38). A YOLOv8 head's class sigmoid (80 x 1029): 270 -> 35 us."""
    x = min(max(x, _X_LO), _X_HI)
    n = np.floor(x * np.float32(1.44269504) + np.float32(0.5))
    r = _fma32(n, _MINUS_LN2_LO, _fma32(n, _MINUS_LN2_HI, x))
    p = ((((_P0 * r + _P1) * r + _P2) * r + _P3) * r + _P4) * r + _P5
    p = p * r * r + r + np.float32(1.0)
    return p * _float_from_bits((np.int32(n) + np.int32(127)) << np.int32(23))
