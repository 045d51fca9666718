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
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from ._util import JIT, njit

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


AVAILABLE = _host_has_avx512()


def act_bounds(code: int, alpha: float):
    """The fused activation as y = min(max(v, a * v), hi): (a, hi) for none / relu / relu6 / leaky_relu with
    0 <= alpha <= 1; None for the others (applied in a second pass)."""
    if code == 0:
        return 1.0, np.inf
    if code == 1:
        return 0.0, np.inf
    if code == 2:
        return 0.0, float(alpha)
    if code == 3 and 0.0 <= alpha <= 1.0:
        return float(alpha), np.inf
    return None


def pack(w: np.ndarray) -> np.ndarray:
    """W (M, K) -> panels of MR rows, each k-major (K, MR), rows past M zero; flattened, read-only."""
    m, k = w.shape
    mb = -(-m // MR)
    padded = np.zeros((mb * MR, k), np.float32)
    padded[:m] = w
    packed = np.ascontiguousarray(padded.reshape(mb, MR, k).transpose(0, 2, 1)).reshape(-1)
    packed.flags.writeable = False
    return packed


def _declare(module, name, ret, args):
    return cgutils.get_or_insert_function(module, ir.FunctionType(ret, args), name)


def _splat(builder, scalar, ty=_VEC):
    v = builder.insert_element(ir.Constant(ty, ir.Undefined), scalar, ir.Constant(_I32, 0))
    return builder.shuffle_vector(v, v, ir.Constant(ir.VectorType(_I32, LANES), [0] * LANES))


@intrinsic
def _tile(typingctx, wp, woff, x, xoff, ldx, y, yoff, ldy, k, nvalid, mrows, bias, boff, r, has_res, a, hi):
    """One MR x PANEL tile: y[yoff + i*ldy + j] = clamp(sum_k wp[woff + k*MR + i] * x[xoff + k*ldx + j]
    + bias[boff + i] (+ r[yoff + i*ldy + j])) for rows i < mrows and columns j < nvalid."""
    sig = types.void(wp, woff, x, xoff, ldx, y, yoff, ldy, k, nvalid, mrows, bias, boff, r, has_res, a, hi)

    def codegen(context, builder, signature, args):
        (wp_, woff_, x_, xoff_, ldx_, y_, yoff_, ldy_, k_, nvalid_, mrows_, bias_, boff_, r_, has_res_,
         a_, hi_) = args
        data = [context.make_array(t)(context, builder, v).data if isinstance(t, types.Array) else None
                for t, v in zip(signature.args, args)]
        wptr, xptr, yptr, bptr, rptr = data[0], data[2], data[5], data[11], data[13]
        mod = builder.module
        load = _declare(mod, "llvm.masked.load.v16f32.p0", _VEC, [xptr.type, _I32, _MASK, _VEC])
        store = _declare(mod, "llvm.masked.store.v16f32.p0", ir.VoidType(), [_VEC, yptr.type, _I32, _MASK])
        fma = _declare(mod, "llvm.fma.v16f32", _VEC, [_VEC, _VEC, _VEC])
        vmax = _declare(mod, "llvm.maxnum.v16f32", _VEC, [_VEC, _VEC])
        vmin = _declare(mod, "llvm.minnum.v16f32", _VEC, [_VEC, _VEC])
        align, zero = ir.Constant(_I32, 4), ir.Constant(_VEC, [0.0] * LANES)
        i64 = lambda v: ir.Constant(_I64, v)  # noqa: E731
        lanes = ir.Constant(ir.VectorType(_I64, LANES), list(range(LANES)))
        masks = [builder.icmp_signed("<", lanes, _splat(builder, builder.sub(nvalid_, i64(j * LANES)),
                                                         ir.VectorType(_I64, LANES))) for j in range(NV)]

        # the k loop: MR x NV accumulators carried in registers (phi nodes)
        entry = builder.block
        body = builder.append_basic_block("tile.k")
        done = builder.append_basic_block("tile.done")
        builder.cbranch(builder.icmp_signed(">", k_, i64(0)), body, done)
        builder.position_at_end(body)
        kk = builder.phi(_I64)
        kk.add_incoming(i64(0), entry)
        acc = [[builder.phi(_VEC) for _ in range(NV)] for _ in range(MR)]
        for row in acc:
            for p in row:
                p.add_incoming(zero, entry)
        xrow = builder.add(xoff_, builder.mul(kk, ldx_))
        xv = [builder.call(load, [builder.gep(xptr, [builder.add(xrow, i64(j * LANES))]), align, masks[j], zero])
              for j in range(NV)]
        wrow = builder.add(woff_, builder.mul(kk, i64(MR)))
        nxt = []
        for i in range(MR):
            wv = _splat(builder, builder.load(builder.gep(wptr, [builder.add(wrow, i64(i))])))
            nxt.append([builder.call(fma, [wv, xv[j], acc[i][j]]) for j in range(NV)])
        kn = builder.add(kk, i64(1))
        tail = builder.block
        kk.add_incoming(kn, tail)
        for i in range(MR):
            for j in range(NV):
                acc[i][j].add_incoming(nxt[i][j], tail)
        builder.cbranch(builder.icmp_signed("<", kn, k_), body, done)

        # epilogue: bias, residual, clamp, masked stores of the rows that exist
        builder.position_at_end(done)
        sums = [[builder.phi(_VEC) for _ in range(NV)] for _ in range(MR)]  # (phi nodes first in a block)
        for i in range(MR):
            for j in range(NV):
                sums[i][j].add_incoming(zero, entry)
                sums[i][j].add_incoming(nxt[i][j], tail)
        av, hv = _splat(builder, builder.fptrunc(a_, _F32)), _splat(builder, builder.fptrunc(hi_, _F32))

        def epilogue(residual):
            for i in range(MR):
                with builder.if_then(builder.icmp_signed(">", mrows_, i64(i))):
                    bv = _splat(builder, builder.load(builder.gep(bptr, [builder.add(boff_, i64(i))])))
                    yrow = builder.add(yoff_, builder.mul(i64(i), ldy_))
                    for j in range(NV):
                        off = builder.add(yrow, i64(j * LANES))
                        v = builder.fadd(sums[i][j], bv)
                        if residual:
                            v = builder.fadd(v, builder.call(load, [builder.gep(rptr, [off]), align, masks[j], zero]))
                        v = builder.call(vmin, [builder.call(vmax, [v, builder.fmul(v, av)]), hv])
                        builder.call(store, [v, builder.gep(yptr, [off]), align, masks[j]])

        with builder.if_else(has_res_) as (with_residual, without):
            with with_residual:
                epilogue(True)
            with without:
                epilogue(False)
        return context.get_dummy_value()

    return sig, codegen


@njit(**JIT)
def tiled_gemm(wp, x, y, bias, r, has_res, a, hi, m, k, n, chunk):
    """y (M*N, flat) = min(max(v, a*v), hi), v = W @ x + bias (+ r); wp from `pack`, x (K*N, flat).
    Over chunks of `chunk` pixels (K x chunk of x stays in L2), each filter panel is swept over the chunk's
    pixel panels: the panel is read once per chunk, and the tiles of y are written row after row."""
    for c0 in range(0, n, chunk):
        c1 = min(n, c0 + chunk)
        for b in range((m + MR - 1) // MR):
            for n0 in range(c0, c1, PANEL):
                _tile(wp, b * MR * k, x, n0, n, y, b * MR * n + n0, n, k, min(PANEL, c1 - n0), min(MR, m - b * MR),
                      bias, b * MR, r, has_res, a, hi)


def chunk_of(k: int, n: int) -> int:
    """tiled_gemm's pixels per chunk for a K x N input: a multiple of PANEL whose K x chunk block of x takes
    at most X_IN_L2 bytes (all of N for 7x7..28x28 maps of up to a few hundred channels)."""
    return min(n, max(PANEL, X_IN_L2 // (4 * k) // PANEL * PANEL))
