"""A register-tiled GEMM for pointwise convolutions: y (M, N) = act(W (M, K) @ x (K, N) + bias [+ r]).

BLAS re-packs the filter on every call and leaves the bias and activation to a second pass over the output;
on the shapes of mobile networks (K of 16-32 over 112x112 maps, N of 49 or 196 pixels) that costs as much as
the multiplications. Here the filter is packed once, at load, into panels of MR output channels (k-major), and
each call walks x in panels of NV * 16 pixels: one micro-kernel keeps an MR x (NV * 16) tile of y in vector
registers over the whole of K (one broadcast filter value and NV vectors of x per step), then adds the bias
(and the residual), clamps, and stores it once.

numba's loop vectorizer stops at 256-bit vectors on these CPUs; the micro-kernel is written as LLVM IR on
16-lane vectors (an `intrinsic`), which compiles to AVX-512 where the CPU has it and to pairs of AVX2 vectors
elsewhere (the caller only picks this path on AVX-512 machines, `AVAILABLE`). Masked loads and stores handle
the last, partial panel of pixels; rows past M come from zero-padded filter panels and are not stored.
"""
from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import prange, types
from numba.core import cgutils
from numba.extending import intrinsic

from ._util import EXP_LN2, EXP_POLY, EXP_RANGE, frozen, serial_and_threaded

MR, NV, LANES = 12, 2, 16  # 24 accumulator registers of the 32 (measured: 12x2 beats 6x4, 8x3, 14x2 overall)
PANEL = NV * LANES


def pays(k: int, n: int) -> bool:
    """Where the tiled GEMM beats BLAS (measured on MobileNetV2 / ResNet50 / MnasNet shapes, inside the
    networks): 7x7 maps at any size (BLAS's 49-column edge case and its re-packing of a filter read once;
    ResNet50's 2048 -> 512: 1.5 -> 1.1 ms), and up to 192 input channels on any map (112x112 16 -> 96: 0.82 ->
    0.66 ms). From 256 input channels on 14x14 and larger maps BLAS is 5-15% faster."""
    return n <= 64 or k <= 192


X_IN_L2 = 1 << 20

_F32, _I32, _I64 = ir.FloatType(), ir.IntType(32), ir.IntType(64)
_VEC = ir.VectorType(_F32, LANES)
_MASK = ir.VectorType(ir.IntType(1), LANES)


def _host_has_avx512() -> bool:
    try:
        import llvmlite.binding as llvm
        features = llvm.get_host_cpu_features()
        return bool(features.get("avx512f")) and bool(features.get("avx512vl"))
    except Exception:  # an llvmlite that cannot tell: keep BLAS
        return False


def _opaque_pointers() -> bool:
    """The micro-kernels are written for LLVM's opaque pointers (llvmlite 0.45 and later, numba 0.62): with an
    older numba (typed pointers, other intrinsic names) they would not compile, and the numba/BLAS kernels
    are used instead."""
    try:
        return bool(getattr(ir.PointerType(), "is_opaque", False))
    except TypeError:  # PointerType(pointee) only
        return False


AVAILABLE = _host_has_avx512() and _opaque_pointers()


def act_bounds(code: int, alpha: float):
    """The fused activation as (a, hi): v < 0 -> a * v, then at most hi (`_activation`), for none / relu /
    relu6 / leaky_relu with 0 <= alpha <= 1; None for the others (applied in a second pass)."""
    if code == 0:
        return 1.0, np.inf
    if code == 1:
        return 0.0, np.inf
    if code == 2:
        return 0.0, float(alpha)
    if code == 3 and 0.0 <= alpha <= 1.0:
        return float(alpha), np.inf
    return None


def pack_panels(w: np.ndarray, width: int) -> np.ndarray:
    """W (M, K) -> panels of `width` rows, each k-major (K, width), rows past M zero; flattened, read-only
    (the filter layout of every tiled kernel: one row of a panel per k, the panel's output channels side by
    side)."""
    m, k = w.shape
    mb = -(-m // width)
    padded = np.zeros((mb * width, k), np.float32)
    padded[:m] = w
    return frozen(np.ascontiguousarray(padded.reshape(mb, width, k).transpose(0, 2, 1)).reshape(-1))


def pack(w: np.ndarray) -> np.ndarray:
    """W (M, K) -> panels of MR rows (`pack_panels`)."""
    return pack_panels(w, MR)


def _pointers(context, builder, signature, args):
    """The data pointer of each array argument of an intrinsic (None for the scalars)."""
    return [context.make_array(t)(context, builder, v).data if isinstance(t, types.Array) else None
            for t, v in zip(signature.args, args)]


def _declare(module, name, ret, args):
    return cgutils.get_or_insert_function(module, ir.FunctionType(ret, args), name)


def _masked_load(module, ptr_type):
    """llvm.masked.load of a 16-float vector: (pointer, alignment, mask, passthru) -> vector."""
    return _declare(module, "llvm.masked.load.v16f32.p0", _VEC, [ptr_type, _I32, _MASK, _VEC])


def _masked_store(module, ptr_type):
    """llvm.masked.store of a 16-float vector: (vector, pointer, alignment, mask)."""
    return _declare(module, "llvm.masked.store.v16f32.p0", ir.VoidType(), [_VEC, ptr_type, _I32, _MASK])


def _fma(module):
    """llvm.fma on 16-float vectors: (a, b, c) -> a * b + c, one rounding."""
    return _declare(module, "llvm.fma.v16f32", _VEC, [_VEC, _VEC, _VEC])


def _splat(builder, scalar, ty=_VEC):
    v = builder.insert_element(ir.Constant(ty, ir.Undefined), scalar, ir.Constant(_I32, 0))
    return builder.shuffle_vector(v, v, ir.Constant(ir.VectorType(_I32, LANES), [0] * LANES))


def _exp(builder, x):
    """e**x on a 16-lane vector, as `_util.exp32` and with its constants (clamp, x = n ln2 + r by fused
    multiply-adds, Cephes' expf polynomial, 2**n in the exponent bits)."""
    mod = builder.module
    fma = _fma(mod)
    floor = _declare(mod, "llvm.floor.v16f32", _VEC, [_VEC])
    c = lambda v: ir.Constant(_VEC, [v] * LANES)  # noqa: E731
    (lo, hi), (ln2_hi, ln2_lo) = EXP_RANGE, EXP_LN2
    x = builder.select(builder.fcmp_ordered("<", x, c(lo)), c(lo), x)
    x = builder.select(builder.fcmp_ordered(">", x, c(hi)), c(hi), x)
    n = builder.call(floor, [builder.call(fma, [x, c(1.44269504), c(0.5)])])
    r = builder.call(fma, [n, c(-ln2_lo), builder.call(fma, [n, c(-ln2_hi), x])])
    p = c(EXP_POLY[0])
    for k in EXP_POLY[1:]:
        p = builder.call(fma, [p, r, c(k)])
    p = builder.fadd(builder.call(fma, [builder.fmul(p, r), r, r]), c(1.0))
    ivec = ir.VectorType(_I32, LANES)
    bits = builder.shl(builder.add(builder.fptosi(n, ivec), ir.Constant(ivec, [127] * LANES)),
                       ir.Constant(ivec, [23] * LANES))
    return builder.fmul(p, builder.bitcast(bits, _VEC))


def _lane_mask(builder, lo, hi):
    """The lanes l with lo <= l < hi (i64 values, any range) as a 16-lane mask, computed on scalar bits: the
    same compares on a vector of 16 lane numbers take 64-bit lanes, two registers each, and cost more than a
    short tile's arithmetic (the 5x5 depthwise strips of a 200 x 2 x 96 map: 52 -> 38 us)."""
    i64 = lambda v: ir.Constant(_I64, v)  # noqa: E731

    def below(n):  # bits 0..n-1, n clamped to 0..16
        n = builder.select(builder.icmp_signed("<", n, i64(0)), i64(0), n)
        n = builder.select(builder.icmp_signed(">", n, i64(LANES)), i64(LANES), n)
        return builder.sub(builder.shl(i64(1), n), i64(1))
    bits = builder.and_(below(hi), builder.xor(below(lo), i64(-1)))
    return builder.bitcast(builder.trunc(bits, ir.IntType(LANES)), _MASK)


def _activation(builder, a_, hi_):
    """The fused activation of `act_bounds`' (a, hi) as a function of a 16-lane vector: v < 0 -> a * v (a = 0:
    exactly 0, also for -inf), then at most hi; NaN stays NaN."""
    f32 = lambda v: builder.fptrunc(v, _F32) if v.type != _F32 else v  # noqa: E731
    av, hv = _splat(builder, f32(a_)), _splat(builder, f32(hi_))
    zero = ir.Constant(_VEC, [0.0] * LANES)
    a_zero = _splat(builder, builder.fcmp_ordered("==", f32(a_), ir.Constant(_F32, 0.0)), _MASK)

    def act(v):
        # for 0 <= a <= 1, a*v is above v exactly where v < 0: max(v, a*v), then min(v, hi). Written as the
        # selects x86's max and min compute (one instruction each; a NaN v reaches the result)
        below = builder.select(a_zero, zero, builder.fmul(v, av))
        v = builder.select(builder.fcmp_ordered("<", v, below), below, v)
        return builder.select(builder.fcmp_ordered("<", hv, v), hv, v)
    return act


def _accumulating_loop(builder, count, rows, cols, step, name, init=None):
    """IR for `for i in range(count): acc = step(i, acc)`, acc a rows x cols grid of 16-lane vectors carried in
    registers (phi nodes) from zero (or from the grid `init`); returns the final grid (the initial one when
    count <= 0). step(i, acc) emits the body and returns the next grid (rows = 0: a plain counted loop)."""
    zero = ir.Constant(_VEC, [0.0] * LANES)
    start = init or [[zero] * cols for _ in range(rows)]
    first, one = ir.Constant(_I64, 0), ir.Constant(_I64, 1)
    entry = builder.block
    body = builder.append_basic_block(name)
    done = builder.append_basic_block(name + ".done")
    builder.cbranch(builder.icmp_signed(">", count, first), body, done)
    builder.position_at_end(body)
    i = builder.phi(_I64)
    i.add_incoming(first, entry)
    acc = [[builder.phi(_VEC) for _ in range(cols)] for _ in range(rows)]
    for r in range(rows):
        for c in range(cols):
            acc[r][c].add_incoming(start[r][c], entry)
    nxt = step(i, acc)
    i_next = builder.add(i, one)
    tail = builder.block
    i.add_incoming(i_next, tail)
    for r in range(rows):
        for c in range(cols):
            acc[r][c].add_incoming(nxt[r][c], tail)
    builder.cbranch(builder.icmp_signed("<", i_next, count), body, done)
    builder.position_at_end(done)
    sums = [[builder.phi(_VEC) for _ in range(cols)] for _ in range(rows)]  # (phi nodes first in a block)
    for r in range(rows):
        for c in range(cols):
            sums[r][c].add_incoming(start[r][c], entry)
            sums[r][c].add_incoming(nxt[r][c], tail)
    return sums


def _store_tile(builder, sums, masks, mrows_, bptr, boff_, yptr, yoff_, ldy_, rptr, has_res_, a_, hi_):
    """y[yoff + i*ldy + 16j + l] = act(v) (`_activation`), v = sums[i][j] + bias[boff + i] (+ r at y's offset),
    for the rows i < mrows and the lanes in masks[j]."""
    mod = builder.module
    load = _masked_load(mod, rptr.type)
    store = _masked_store(mod, yptr.type)
    align, zero = ir.Constant(_I32, 4), ir.Constant(_VEC, [0.0] * LANES)
    i64 = lambda v: ir.Constant(_I64, v)  # noqa: E731
    act = _activation(builder, a_, hi_)

    def epilogue(residual):
        for i in range(len(sums)):
            with builder.if_then(builder.icmp_signed(">", mrows_, i64(i))):
                bv = _splat(builder, builder.load(builder.gep(bptr, [builder.add(boff_, i64(i))])))
                yrow = builder.add(yoff_, builder.mul(i64(i), ldy_))
                for j in range(len(masks)):
                    off = builder.add(yrow, i64(j * LANES))
                    v = builder.fadd(sums[i][j], bv)
                    if residual:
                        v = builder.fadd(v, builder.call(load, [builder.gep(rptr, [off]), align, masks[j], zero]))
                    builder.call(store, [act(v), builder.gep(yptr, [off]), align, masks[j]])

    with builder.if_else(has_res_) as (with_residual, without):
        with with_residual:
            epilogue(True)
        with without:
            epilogue(False)


@intrinsic
def _tile(typingctx, wp, woff, x, xoff, ldx, y, yoff, ldy, k, nvalid, mrows, bias, boff, r, has_res, a, hi):
    """One MR x PANEL tile: y[yoff + i*ldy + j] = clamp(sum_k wp[woff + k*MR + i] * x[xoff + k*ldx + j]
    + bias[boff + i] (+ r[yoff + i*ldy + j])) for rows i < mrows and columns j < nvalid."""
    sig = types.void(wp, woff, x, xoff, ldx, y, yoff, ldy, k, nvalid, mrows, bias, boff, r, has_res, a, hi)

    def codegen(context, builder, signature, args):
        (wp_, woff_, x_, xoff_, ldx_, y_, yoff_, ldy_, k_, nvalid_, mrows_, bias_, boff_, r_, has_res_,
         a_, hi_) = args
        data = _pointers(context, builder, signature, args)
        wptr, xptr, yptr, bptr, rptr = data[0], data[2], data[5], data[11], data[13]
        mod = builder.module
        load = _masked_load(mod, xptr.type)
        fma = _fma(mod)
        align, zero = ir.Constant(_I32, 4), ir.Constant(_VEC, [0.0] * LANES)
        i64 = lambda v: ir.Constant(_I64, v)  # noqa: E731
        masks = [_lane_mask(builder, i64(0), builder.sub(nvalid_, i64(j * LANES))) for j in range(NV)]

        def step(kk, acc):  # one k: NV vectors of x, MR broadcast filter values
            xrow = builder.add(xoff_, builder.mul(kk, ldx_))
            xv = [builder.call(load, [builder.gep(xptr, [builder.add(xrow, i64(j * LANES))]), align, masks[j],
                                      zero]) for j in range(NV)]
            wrow = builder.add(woff_, builder.mul(kk, i64(MR)))
            return [[builder.call(fma, [_splat(builder, builder.load(builder.gep(wptr, [builder.add(wrow, i64(i))]))),
                                        xv[j], acc[i][j]]) for j in range(NV)] for i in range(MR)]

        sums = _accumulating_loop(builder, k_, MR, NV, step, "tile.k")
        _store_tile(builder, sums, masks, mrows_, bptr, boff_, yptr, yoff_, ldy_, rptr, has_res_, a_, hi_)
        return context.get_dummy_value()

    return sig, codegen


def _make_conv3x3_tile(s: int, mr: int, nv: int):
    @intrinsic
    def _conv_tile(typingctx, wp, woff, x, plane, wd, rows, col0, zrow, c, y, yoff, ldy, nvalid, mrows, bias, boff,
                   r, has_res, a, hi):
        """One mr x (nv * 16) tile of a 3x3 convolution, stride s: output channels boff.., nv * 16 outputs of one
        output row. rows (3 int64: the offset in x of each tap row's first element, -1 for a row in the padding),
        col0: the input column of the first output's first tap; x holds c channels of `plane` elements, rows
        `wd` long. A tap row in the padding reads zrow (zeros at least wd + 2 * s * PANEL long) instead. The
        filter is packed in panels of mr (`pack_panels`) with K = c * 9 (channel, tap row, tap column)."""
        sig = types.void(wp, woff, x, plane, wd, rows, col0, zrow, c, y, yoff, ldy, nvalid, mrows, bias, boff, r,
                         has_res, a, hi)

        def codegen(context, builder, signature, args):
            (wp_, woff_, x_, plane_, wd_, rows_, col0_, zrow_, c_, y_, yoff_, ldy_, nvalid_, mrows_, bias_, boff_,
             r_, has_res_, a_, hi_) = args
            data = _pointers(context, builder, signature, args)
            wptr, xptr, rowsptr, zptr, yptr, bptr, rptr = (data[0], data[2], data[5], data[7], data[9], data[14],
                                                            data[16])
            mod = builder.module
            load = _masked_load(mod, xptr.type)
            fma = _fma(mod)
            align, zero = ir.Constant(_I32, 4), ir.Constant(_VEC, [0.0] * LANES)
            i64 = lambda v: ir.Constant(_I64, v)  # noqa: E731
            out_masks = [_lane_mask(builder, i64(0), builder.sub(nvalid_, i64(q * LANES))) for q in range(nv)]
            # per tap column j and raw input vector q (stride 2: two per output vector): lanes inside the row
            nraw = builder.mul(nvalid_, i64(s))
            raw = nv * s
            col_masks = []
            for j in range(3):
                per = []
                for q in range(raw):  # lanes l: 0 <= col0 + j + 16q + l < wd and 16q + l < nraw
                    first = builder.add(col0_, i64(j + q * LANES))
                    inside, used = builder.sub(wd_, first), builder.sub(nraw, i64(q * LANES))
                    per.append(_lane_mask(builder, builder.sub(i64(0), first),
                                          builder.select(builder.icmp_signed("<", used, inside), used, inside)))
                col_masks.append(per)
            # each tap row: its address in channel 0 and the step between channels (the zero row: 0)
            bases, steps = [], []
            for i in range(3):
                off = builder.load(builder.gep(rowsptr, [i64(i)]))
                inside = builder.icmp_signed(">=", off, i64(0))
                bases.append(builder.select(inside, builder.gep(xptr, [builder.add(off, col0_)]),
                                            builder.gep(zptr, [builder.add(col0_, i64(LANES))])))
                steps.append(builder.select(inside, plane_, i64(0)))
            even = ir.Constant(ir.VectorType(_I32, LANES), [2 * t for t in range(LANES)])

            def step(ch, acc):  # one input channel: its k x k taps
                cur = [list(row) for row in acc]
                wch = builder.add(woff_, builder.mul(ch, i64(9 * mr)))
                for i in range(3):
                    rowp = builder.gep(bases[i], [builder.mul(ch, steps[i])])
                    for j in range(3):
                        raws = [builder.call(load, [builder.gep(rowp, [i64(j + q * LANES)]), align, col_masks[j][q],
                                                    zero]) for q in range(raw)]
                        xv = raws if s == 1 else [builder.shuffle_vector(raws[2 * q], raws[2 * q + 1], even)
                                                  for q in range(nv)]
                        wt = builder.add(wch, i64((i * 3 + j) * mr))
                        for m in range(mr):
                            wv = _splat(builder, builder.load(builder.gep(wptr, [builder.add(wt, i64(m))])))
                            cur[m] = [builder.call(fma, [wv, xv[q], cur[m][q]]) for q in range(nv)]
                return cur

            sums = _accumulating_loop(builder, c_, mr, nv, step, "conv.c")
            _store_tile(builder, sums, out_masks, mrows_, bptr, boff_, yptr, yoff_, ldy_, rptr, has_res_, a_, hi_)
            return context.get_dummy_value()

        return sig, codegen
    return _conv_tile


# the direct conv's two tiles: MR x PANEL (12 x 32) and 16 x 16 (`direct_tile` picks one per conv and width)
_C1, _C2 = _make_conv3x3_tile(1, MR, NV), _make_conv3x3_tile(2, MR, NV)
_C1_16, _C2_16 = _make_conv3x3_tile(1, LANES, 1), _make_conv3x3_tile(2, LANES, 1)


def direct_tile(o: int, ow: int, s: int) -> int:
    """The rows (output channels) of the direct conv's tile for o output channels of ow-wide rows, stride s:
    16 (16 x 16 tiles) or MR (12 x 32), whichever computes fewer padded outputs, counting the 16 x 16 tile's
    outputs 5% cheaper at stride 1 and 20% at stride 2 (the 12 x 32 tile de-interleaves two input vectors per
    tap for one of its two output vectors). Measured: 3 -> 16 channels on 112x112 0.27 -> 0.15 ms, 3 -> 32
    0.38 -> 0.25 ms, 3 -> 24 0.26 -> 0.24 ms; 16 -> 24 on 56x56 0.23 ms with 12 x 32 tiles, 0.29 with 16 x 16."""
    def useful(mr, panel):
        return o / (-(-o // mr) * mr) * ow / (-(-ow // panel) * panel)
    return LANES if useful(LANES, LANES) * (1.2 if s == 2 else 1.05) >= useful(MR, PANEL) else MR


def _conv3x3(wp, x, y, zrow, bias, r, has_res, a, hi, s, pt, pl, mr, parts):
    """y (N, O, OH, OW) = act(v) (`_activation`), v = 3x3 conv (stride s 1 or 2, groups 1) of x (N, C, H, W)
    with the filter packed in panels of mr (`direct_tile`: 16 or MR; `pack_panels`) + bias (+ r: y's elements,
    flat); paddings pt/pl before the input (those after follow from y's size). zrow: zeros, at least
    W + 2 * s * PANEL + 2 * LANES long. Filter panel by panel, output row by output row, a tile's width of
    outputs at a time; the output rows in `parts` runs, one a thread (the part of x it reads, and of y an op
    after it split over the pixels reads, stay on its core)."""
    n, c, h, wd = x.shape
    o, oh, ow = y.shape[1], y.shape[2], y.shape[3]
    xf, yf = x.reshape(-1), y.reshape(-1)
    run = (oh + parts - 1) // parts
    panel = LANES if mr == LANES else PANEL
    rows = np.empty((n * parts, 3), np.int64)  # a task's input rows (offsets, -1: padding) for its output row
    for t in prange(n * parts):
        b_, part = t // parts, t % parts
        for b in range((o + mr - 1) // mr):
            woff, mrows = b * mr * c * 9, min(mr, o - b * mr)
            for oy in range(part * run, min(oh, (part + 1) * run)):
                for i in range(3):
                    iy = oy * s - pt + i
                    rows[t, i] = b_ * c * h * wd + iy * wd if 0 <= iy < h else -1
                for n0 in range(0, ow, panel):
                    yoff = (b_ * o + b * mr) * oh * ow + oy * ow + n0
                    valid, col0 = min(panel, ow - n0), s * n0 - pl
                    if mr == LANES:
                        if s == 1:
                            _C1_16(wp, woff, xf, h * wd, wd, rows[t], col0, zrow, c, yf, yoff, oh * ow, valid, mrows,
                                   bias, b * mr, r, has_res, a, hi)
                        else:
                            _C2_16(wp, woff, xf, h * wd, wd, rows[t], col0, zrow, c, yf, yoff, oh * ow, valid, mrows,
                                   bias, b * mr, r, has_res, a, hi)
                    elif s == 1:
                        _C1(wp, woff, xf, h * wd, wd, rows[t], col0, zrow, c, yf, yoff, oh * ow, valid, mrows, bias,
                            b * mr, r, has_res, a, hi)
                    else:
                        _C2(wp, woff, xf, h * wd, wd, rows[t], col0, zrow, c, yf, yoff, oh * ow, valid, mrows, bias,
                            b * mr, r, has_res, a, hi)


conv3x3 = serial_and_threaded(_conv3x3)


# the channel-vector tile for small maps: CV vectors of 16 output channels x NR pixels (7 divides the 7x7,
# 14x14, ... maps of these networks: no lane is wasted, where 32-pixel panels fill 49 pixels into 64 lanes)
CV, NR = 3, 7
CPANEL = CV * LANES
CHANNEL_TILES_UP_TO = 64  # pixels: 7x7 maps (1024 -> 1024: 0.82 -> 0.75 ms; on 14x14 the pixel tiles are faster)


def pack_channels(w: np.ndarray) -> np.ndarray:
    """W (M, K) -> panels of CPANEL output channels (`pack_panels`)."""
    return pack_panels(w, CPANEL)


@intrinsic
def _ctile(typingctx, wq, woff, x, xoff, ldx, y, yoff, ldy, k, npix, mrows, bias, boff, r, has_res, a, hi):
    """One CPANEL x NR tile with the output channels in the vectors: s[c][p] = sum_k wq[woff + k*CPANEL + c] *
    x[xoff + k*ldx + p]; y[yoff + c*ldy + p] = clamp(s + bias[boff + c] (+ r at y's offset)) for the
    channels c < mrows and pixels p < npix (stored lane by lane)."""
    sig = types.void(wq, woff, x, xoff, ldx, y, yoff, ldy, k, npix, mrows, bias, boff, r, has_res, a, hi)

    def codegen(context, builder, signature, args):
        (wq_, woff_, x_, xoff_, ldx_, y_, yoff_, ldy_, k_, npix_, mrows_, bias_, boff_, r_, has_res_, a_, hi_) = args
        data = _pointers(context, builder, signature, args)
        wptr, xptr, yptr, bptr, rptr = data[0], data[2], data[5], data[11], data[13]
        mod = builder.module
        load = _masked_load(mod, wptr.type)
        fma = _fma(mod)
        align, zero = ir.Constant(_I32, 4), ir.Constant(_VEC, [0.0] * LANES)
        all_on = ir.Constant(_MASK, [1] * LANES)
        i64 = lambda v: ir.Constant(_I64, v)  # noqa: E731
        ivec = ir.VectorType(_I64, LANES)
        lanes = ir.Constant(ivec, list(range(LANES)))
        # pixels past npix read the last one (inside x) into accumulators that are never stored
        last = builder.sub(npix_, i64(1))
        cols = [builder.select(builder.icmp_signed("<", i64(p), npix_), i64(p), last) for p in range(NR)]

        def step(kk, acc):  # one k: CV vectors of the filter, NR broadcast pixels
            wrow = builder.add(woff_, builder.mul(kk, i64(CPANEL)))
            wv = [builder.call(load, [builder.gep(wptr, [builder.add(wrow, i64(v * LANES))]), align, all_on, zero])
                  for v in range(CV)]
            xrow = builder.add(xoff_, builder.mul(kk, ldx_))
            xs = [_splat(builder, builder.load(builder.gep(xptr, [builder.add(xrow, cols[p])]))) for p in range(NR)]
            return [[builder.call(fma, [wv[v], xs[p], acc[v][p]]) for p in range(NR)] for v in range(CV)]

        sums = _accumulating_loop(builder, k_, CV, NR, step, "ctile.k")
        act = _activation(builder, a_, hi_)
        ptrs_t = ir.VectorType(ir.PointerType(), LANES)
        gather = _declare(mod, "llvm.masked.gather.v16f32.v16p0", _VEC, [ptrs_t, _I32, _MASK, _VEC])
        scatter = _declare(mod, "llvm.masked.scatter.v16f32.v16p0", ir.VoidType(), [_VEC, ptrs_t, _I32, _MASK])
        res_on = _splat(builder, has_res_, _MASK)
        stride = builder.mul(_splat(builder, ldy_, ivec), lanes)  # lane c: channel row c of y (and r)

        def addresses(ptr, first_off):
            """The 16 addresses ptr + 4 * (first_off + lane * ldy) (a vector GEP, spelled out)."""
            start = builder.add(_splat(builder, builder.ptrtoint(ptr, _I64), ivec),
                                builder.mul(builder.add(_splat(builder, first_off, ivec), stride),
                                            ir.Constant(ivec, [4] * LANES)))
            return builder.inttoptr(start, ptrs_t)

        for v in range(CV):
            first = v * LANES
            on = builder.icmp_signed("<", builder.add(lanes, _splat(builder, i64(first), ivec)),
                                     _splat(builder, mrows_, ivec))
            bv = builder.call(load, [builder.gep(bptr, [builder.add(boff_, i64(first))]), align, on, zero])
            for p in range(NR):
                with builder.if_then(builder.icmp_signed("<", i64(p), npix_)):
                    off = builder.add(builder.add(yoff_, builder.mul(i64(first), ldy_)), i64(p))
                    val = builder.fadd(sums[v][p], bv)
                    val = builder.fadd(val, builder.call(gather, [addresses(rptr, off), align,
                                                                  builder.and_(on, res_on), zero]))
                    builder.call(scatter, [act(val), addresses(yptr, off), align, on])
        return context.get_dummy_value()

    return sig, codegen


PIXEL_MAJOR_FROM = 48  # input channels: from these, a pixel panel goes through every filter panel in turn


def _tiled_gemm(wp, x, y, bias, r, has_res, a, hi, m, k, n, chunk, parts):
    """y (M*N, flat) = act(v) (`_activation`), v = W @ x + bias (+ r); wp from `pack`, x (K*N, flat), over
    chunks of `chunk` pixels (K x chunk of x stays in L2). From PIXEL_MAJOR_FROM input channels each pixel panel
    goes through every filter panel while it is in L1 (the filter stays in L2), and the threads take runs of
    pixel panels; with fewer, whose tiles are mostly their stores, each filter panel sweeps the pixel panels,
    writing y row after row (measured: 16 -> 96 channels on 112x112 0.58 ms pixel panel first, 0.46 filter
    panel first; 192 -> 192 on 28x28 0.44 and 0.46), and the threads take `parts` runs of pixel panels. Either
    way a thread reads only its part of x and writes the part of y that an op after it, split over the pixels
    as well, reads on the same core."""
    panels = (m + MR - 1) // MR
    for c0 in range(0, n, chunk):
        c1 = min(n, c0 + chunk)
        pixel_panels = (c1 - c0 + PANEL - 1) // PANEL
        if k >= PIXEL_MAJOR_FROM:
            for t in prange(panels * pixel_panels):
                b, n0 = t % panels, c0 + t // panels * PANEL
                _tile(wp, b * MR * k, x, n0, n, y, b * MR * n + n0, n, k, min(PANEL, c1 - n0),
                      min(MR, m - b * MR), bias, b * MR, r, has_res, a, hi)
        else:
            run = (pixel_panels + parts - 1) // parts
            for part in prange(parts):
                for b in range(panels):
                    for j in range(part * run, min(pixel_panels, (part + 1) * run)):
                        n0 = c0 + j * PANEL
                        _tile(wp, b * MR * k, x, n0, n, y, b * MR * n + n0, n, k, min(PANEL, c1 - n0),
                              min(MR, m - b * MR), bias, b * MR, r, has_res, a, hi)


def _tiled_gemm_channels(wq, x, ldx, y, bias, r, has_res, a, hi, m, k, n):
    """tiled_gemm with the output channels in the vectors (`_ctile`; wq from `pack_channels`): for small maps
    (7x7), whose pixels do not fill whole 16-lane vectors. x's rows are ldx apart. Each filter panel is read
    once (the threads take runs of them: x is small, the filter is not)."""
    groups = (n + NR - 1) // NR
    for t in prange(((m + CPANEL - 1) // CPANEL) * groups):
        b, p0 = t // groups, t % groups * NR
        _ctile(wq, b * CPANEL * k, x, p0, ldx, y, b * CPANEL * n + p0, n, k, min(NR, n - p0),
               min(CPANEL, m - b * CPANEL), bias, b * CPANEL, r, has_res, a, hi)


tiled_gemm, tiled_gemm_channels = serial_and_threaded(_tiled_gemm), serial_and_threaded(_tiled_gemm_channels)


def chunk_of(k: int, n: int) -> int:
    """tiled_gemm's pixels per chunk for a K x N input: a multiple of PANEL whose K x chunk block of x takes
    at most X_IN_L2 bytes (all of N for 7x7..28x28 maps of up to a few hundred channels)."""
    return min(n, max(PANEL, X_IN_L2 // (4 * k) // PANEL * PANEL))
