"""Depthwise k x k convolutions (k 3 or 5, stride 1 or 2; k 7, stride 1) on 16-lane vectors, straight from NCHW.

One micro-kernel call computes a strip of up to 16 output columns, all output rows, of one channel: per output
row, each of the k*k taps is one masked vector load of the input row it reads (stride 2: two loads and a shuffle
keeping the even lanes) and one multiply-add. A strip takes ROWS output rows at a time, each input row's k loads
serving every output row that reads it (3x3 stride 1: 18 loads for 4 rows instead of 36; 5x5 stride 2: 55 instead
of 100); a vertical stride other than the horizontal one (PP-OCR's (2, 1)) goes row by row. The masks drop the
lanes that fall in the left/right padding or past the row's end, and a tap row above or below the input reads a
row of zeros instead, so there is no padded copy of the input and no border case; a 5x5 row computed alone (maps
under ROWS rows, the remainders) visits only the kernel rows inside the input. The bias and a relu-like or
hard_swish activation are applied before the single masked store. Written as LLVM IR on 16-lane vectors (see
`_tiled`): AVX-512 where the CPU has it; the caller only picks it there (`AVAILABLE`).
"""
from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import prange, types
from numba.extending import intrinsic

from ._tiled import (_F32, _I32, _I64, _VEC, AVAILABLE, LANES, _accumulating_loop, _activation, _fma, _lane_mask,
                     _masked_load, _masked_store, _splat)
from ._util import serial_and_threaded

__all__ = ["AVAILABLE", "depthwise", "pays"]

_LANE_IDS = list(range(LANES))
ROWS = 4  # output rows a strip computes together


def _make_strip_kernel(k: int, s: int):
    @intrinsic
    def _strip(typingctx, x, xoff, h, wd, sh, pt, col0, nout, oh, w, woff, bias, y, yoff, ldy, a, hi, hswish, zrow):
        """Up to 16 output columns, all output rows, of one channel: y[yoff + oy*ldy + l] = act(bias +
        sum_ij w[woff + i*k + j] * x[xoff + (oy*sh - pt + i)*wd + col0 + s*l + j]) for the lanes l < nout,
        taps outside the input reading zero: a tap row in the padding reads zrow (zeros, at least wd + (2 + 2s)
        * 16 long) instead, so that every row is one path with the same column masks."""
        sig = types.void(x, xoff, h, wd, sh, pt, col0, nout, oh, w, woff, bias, y, yoff, ldy, a, hi, hswish, zrow)

        def codegen(context, builder, signature, args):
            (x_, xoff_, h_, wd_, sh_, pt_, col0_, nout_, oh_, w_, woff_, bias_, y_, yoff_, ldy_, a_, hi_, hswish_,
             zrow_) = args
            xptr = context.make_array(signature.args[0])(context, builder, x_).data
            wptr = context.make_array(signature.args[9])(context, builder, w_).data
            yptr = context.make_array(signature.args[12])(context, builder, y_).data
            zptr = context.make_array(signature.args[18])(context, builder, zrow_).data
            mod = builder.module
            load = _masked_load(mod, xptr.type)
            store = _masked_store(mod, yptr.type)
            fma = _fma(mod)
            vmax = lambda u, v: builder.select(builder.fcmp_ordered(">", u, v), u, v)  # noqa: E731  (vmaxps)
            vmin = lambda u, v: builder.select(builder.fcmp_ordered("<", u, v), u, v)  # noqa: E731
            align, zero = ir.Constant(_I32, 4), ir.Constant(_VEC, [0.0] * LANES)
            i64 = lambda v: ir.Constant(_I64, v)  # noqa: E731
            f32 = lambda v: builder.fptrunc(v, _F32) if v.type != _F32 else v  # noqa: E731
            out_on = _lane_mask(builder, i64(0), nout_)

            def columns(first, used):
                """Lanes l < used whose input column first + l lies inside the row (0 <= first + l < wd)."""
                hi = builder.sub(wd_, first)
                return _lane_mask(builder, builder.sub(i64(0), first),
                                  builder.select(builder.icmp_signed("<", used, hi), used, hi))

            # loop invariants: the lanes inside the input per tap column (stride 2: per raw half)
            if s == 1:
                col_masks = [[columns(builder.add(col0_, i64(j)), nout_)] for j in range(k)]
            else:
                nraw = builder.mul(nout_, i64(2))
                col_masks = [[columns(builder.add(col0_, i64(j + 16 * half)), builder.sub(nraw, i64(16 * half)))
                              for half in (0, 1)] for j in range(k)]

            def tap(t):
                """Filter tap t, loaded where a multiply-add uses it: LLVM folds it into the instruction as a
                broadcast operand (held in registers, 25 of them spilled to the stack: 5x5 strips 14% slower)."""
                return _splat(builder, builder.load(builder.gep(wptr, [builder.add(woff_, i64(t))])))
            bv = _splat(builder, f32(bias_))
            act = _activation(builder, a_, hi_)
            even = ir.Constant(ir.VectorType(_I32, LANES), [2 * t for t in _LANE_IDS])
            three, six = ir.Constant(_VEC, [3.0] * LANES), ir.Constant(_VEC, [6.0] * LANES)
            sixth = ir.Constant(_VEC, [1.0 / 6.0] * LANES)

            def tap_row(iy):
                """The k vectors input row iy gives the taps of one kernel row (stride 2: the even lanes of two
                loads); a row outside the input reads zrow."""
                row_in = builder.and_(builder.icmp_signed(">=", iy, i64(0)), builder.icmp_signed("<", iy, h_))
                base = builder.select(row_in,
                                      builder.gep(xptr, [builder.add(xoff_, builder.add(builder.mul(iy, wd_), col0_))]),
                                      builder.gep(zptr, [builder.add(col0_, i64(LANES))]))
                vs = []
                for j in range(k):
                    if s == 1:
                        vs.append(builder.call(load, [builder.gep(base, [i64(j)]), align, col_masks[j][0], zero]))
                    else:
                        lo = builder.call(load, [builder.gep(base, [i64(j)]), align, col_masks[j][0], zero])
                        up = builder.call(load, [builder.gep(base, [i64(j + 16)]), align, col_masks[j][1], zero])
                        vs.append(builder.shuffle_vector(lo, up, even))
                return vs

            def row(oy):
                """One output row: one multiply-add chain per kernel row (latency, not throughput)."""
                iy0 = builder.sub(builder.mul(oy, sh_), pt_)
                chains = []
                for i in range(k):
                    acc = bv if i == 0 else zero
                    for j, v in enumerate(tap_row(builder.add(iy0, i64(i)))):
                        acc = builder.call(fma, [tap(i * k + j), v, acc])
                    chains.append(acc)
                return chains

            swish = [False]  # whether the loops being emitted apply hard_swish

            def finish(oy, acc):
                """Activation (hard_swish if asked) and the store of output row oy."""
                acc = act(acc)
                at = builder.gep(yptr, [builder.add(yoff_, builder.mul(oy, ldy_))])
                if swish[0]:
                    gate = vmin(vmax(builder.fadd(acc, three), zero), six)
                    acc = builder.fmul(acc, builder.fmul(gate, sixth))
                builder.call(store, [acc, at, align, out_on])

            def inside_rows(oy):
                """The chains of one output row over the kernel rows inside the input only, one chain per
                column tap (5x5 on maps of 2-3 rows: most tap rows lie in the padding; 200 x 2 x 96: 66 -> 38
                us with the masks of `_lane_mask`). 3x3 keeps `row`: the loop cost more than it saved."""
                iy0 = builder.sub(builder.mul(oy, sh_), pt_)
                neg = builder.sub(i64(0), iy0)
                i0 = builder.select(builder.icmp_signed(">", neg, i64(0)), neg, i64(0))
                lim = builder.sub(h_, iy0)
                i1 = builder.select(builder.icmp_signed("<", lim, i64(k)), lim, i64(k))

                def kernel_row(t, acc):
                    i = builder.add(i0, t)
                    vs = tap_row(builder.add(iy0, i))
                    wrow = builder.add(woff_, builder.mul(i, i64(k)))
                    taps = [_splat(builder, builder.load(builder.gep(wptr, [builder.add(wrow, i64(j))])))
                            for j in range(k)]
                    return [[builder.call(fma, [taps[j], vs[j], acc[0][j]]) for j in range(k)]]
                return _accumulating_loop(builder, builder.sub(i1, i0), 1, k, kernel_row, "strip.krow",
                                          init=[[bv] + [zero] * (k - 1)])[0]

            def one_row(oy, _):
                chains = row(oy) if k == 3 else inside_rows(oy)
                while len(chains) > 1:
                    chains = [builder.fadd(chains[t], chains[t + 1]) if t + 1 < len(chains) else chains[t]
                              for t in range(0, len(chains), 2)]
                finish(oy, chains[0])
                return []

            nrows = ROWS

            def rows(g, _):
                """nrows output rows: each input row's k shifted vectors loaded once for the output rows that
                read it (stride 1, 3x3: a third of the loads), two chains a row."""
                oy0 = builder.mul(g, i64(nrows))
                acc = [[bv, zero] for _ in range(nrows)]
                for r in range((nrows - 1) * s + k):
                    vs = tap_row(builder.add(builder.sub(builder.mul(oy0, i64(s)), pt_), i64(r)))
                    for q in range(nrows):
                        i = r - q * s
                        if 0 <= i < k:
                            for j in range(k):
                                acc[q][i % 2] = builder.call(fma, [tap(i * k + j), vs[j], acc[q][i % 2]])
                for q in range(nrows):
                    finish(builder.add(oy0, i64(q)), builder.fadd(acc[q][0], acc[q][1]))
                return []

            # the loops twice, with and without hard_swish: a branch at every row's store split the 4-row
            # block in basic blocks that LLVM scheduled apart (5x5 strips 13-30% slower)
            groups = builder.select(builder.icmp_signed("==", sh_, i64(s)), builder.sdiv(oh_, i64(nrows)), i64(0))
            done = builder.mul(groups, i64(nrows))
            with builder.if_else(hswish_) as (with_swish, plain):
                for branch, on in ((with_swish, True), (plain, False)):
                    with branch:
                        swish[0] = on
                        _accumulating_loop(builder, groups, 0, 0, rows, "strip.rows")
                        _accumulating_loop(builder, builder.sub(oh_, done), 0, 0,
                                           lambda t, g: one_row(builder.add(done, t), g), "strip.row")
            return context.get_dummy_value()

        return sig, codegen
    return _strip


def pays(k: int, sh: int, sw: int, ow: int) -> bool:
    """Where the strips beat the numba kernels inside the networks (MobileNetV2's depthwise convs 3.1 -> 1.9 ms,
    576 channels of 14x14 0.138 -> 0.063 ms, MnasNet's 5x5 on 7x7 0.14 -> 0.12 ms): everywhere but 3x3 stride 1
    from 100 wide (the row-by-row kernel reads each input row once for three output rows' taps); for strides
    that differ always (the other kernels take one stride)."""
    return sh != sw or not (k == 3 and sh == 1 and ow >= 100)


_STRIP3S1, _STRIP3S2 = _make_strip_kernel(3, 1), _make_strip_kernel(3, 2)
_STRIP5S1, _STRIP5S2 = _make_strip_kernel(5, 1), _make_strip_kernel(5, 2)
_STRIP7S1 = _make_strip_kernel(7, 1)


def _depthwise(x, w, y, bias, has_bias, k, sh, s, pt, pl, a, hi, hswish):
    """y (N, C, OH, OW) = act(depthwise conv of x (N, C, H, W) with w (C, 1, k, k) + bias), k 3 or 5, strides
    sh (rows) and s (columns) 1 or 2 (k 7: both 1), paddings pt/pl before the input (the ones after follow from
    y's size); act: `_tiled.act_bounds` (a, hi), then hard_swish if asked. All arrays C-contiguous."""
    n, c, h, wd = x.shape
    oh, ow = y.shape[2], y.shape[3]
    xf, yf, wf = x.reshape(-1), y.reshape(-1), w.reshape(-1)
    zrow = np.zeros(wd + (2 + 2 * s) * LANES + k, np.float32)
    for bc in prange(n * c):  # (the threads take runs of channels)
        ch = bc % c
        bv = bias[ch] if has_bias else np.float32(0.0)
        xoff, woff = bc * h * wd, ch * k * k
        for c0 in range(0, ow, LANES):
            col0, nout, yoff = c0 * s - pl, min(LANES, ow - c0), bc * oh * ow + c0
            if k == 3 and s == 1:
                _STRIP3S1(xf, xoff, h, wd, sh, pt, col0, nout, oh, wf, woff, bv, yf, yoff, ow, a, hi, hswish, zrow)
            elif k == 3:
                _STRIP3S2(xf, xoff, h, wd, sh, pt, col0, nout, oh, wf, woff, bv, yf, yoff, ow, a, hi, hswish, zrow)
            elif k == 7:
                _STRIP7S1(xf, xoff, h, wd, sh, pt, col0, nout, oh, wf, woff, bv, yf, yoff, ow, a, hi, hswish, zrow)
            elif s == 1:
                _STRIP5S1(xf, xoff, h, wd, sh, pt, col0, nout, oh, wf, woff, bv, yf, yoff, ow, a, hi, hswish, zrow)
            else:
                _STRIP5S2(xf, xoff, h, wd, sh, pt, col0, nout, oh, wf, woff, bv, yf, yoff, ow, a, hi, hswish, zrow)


depthwise = serial_and_threaded(_depthwise)
