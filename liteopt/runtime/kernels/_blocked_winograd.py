"""Winograd F(m, 3) for 3x3 stride-1 convolutions into a channel-blocked output (NCHW16c, `_blocked`).

The convolution of each m x m output tile becomes, after the input transform V = B^T d B of its n x n input
tile (n = m + 2), n*n independent products over the channels, M[p] = U[p] @ V[p] (U = G g G^T, the filter
transformed once at load), and the output transform A^T M A. In the blocked layout every step works on
vectors of 16 channels:
- the input transform of a tile and an input block is n*n vector loads, the two passes of B^T with its
  coefficients as constants (zeros skipped, +-1 as additions), n*n stores into V, laid out as n*n blocked
  "images" whose pixels are the tiles;
- the n*n products are the pointwise tile of `_blocked` on those images (12 tiles x 32 output channels over
  all input channels), with U packed as n*n pointwise filters;
- the output transform is n*n loads, A^T twice, bias, residual and activation, and one masked store per
  output pixel (the tiles past the right/bottom edge store only what is inside).
Tiles go through the three steps in chunks of about CHUNK_BYTES of V (`chunk`; every map of ResNet50 in one:
chunks that fit in L2 were slower, each reads all of U again). 4x (F(4,3)) or 2.25x (F(2,3)) fewer
multiplications than the direct conv, for the transforms' cost.
"""
from __future__ import annotations

import threading

import numpy as np
from llvmlite import ir
from numba import prange, types
from numba.extending import intrinsic

from ._blocked import _BB1, _BB1T, _BB2, _BB2T, BLOCK, NR, PANEL, _prefetch_share, _with_activation, to_blocked
from ._tiled import (_I32, _I64, _MASK, _VEC, AVAILABLE, LANES, _fma, _masked_load, _masked_store, _pointers,
                     _splat, pack_panels)
from ._util import JIT, frozen, njit, serial_and_threaded, winograd_matrices

__all__ = ["AVAILABLE", "SIZES", "pack", "Padded", "chunk", "scratch", "winograd"]

SIZES = (2, 4)  # the m of F(m, 3) built (F(6,3), picked only when forced, runs in NCHW)
CHUNK_BYTES = 2 << 20  # the transformed input (or output) of one chunk of tiles, at most about this


def _combine(builder, coefs, vecs):
    """IR for sum(coefs[k] * vecs[k]): the coefficients are constants; zeros skipped, +-1 as additions."""
    fma = _fma(builder.module)
    const = lambda c: ir.Constant(_VEC, [float(c)] * LANES)  # noqa: E731
    terms = sorted(((float(c), v) for c, v in zip(coefs, vecs) if c != 0), key=lambda t: t[0] != 1.0)
    if not terms:
        return const(0.0)
    c, v = terms[0]
    acc = v if c == 1.0 else builder.fmul(const(c), v)
    for c, v in terms[1:]:
        acc = (builder.fadd(acc, v) if c == 1.0 else builder.fsub(acc, v) if c == -1.0
               else builder.call(fma, [const(c), v, acc]))
    return acc


def _make_input_tile(m: int):
    bt = winograd_matrices(m)[2].astype(np.float32)
    n = m + 2

    @intrinsic
    def _tile(typingctx, xp, xoff, row, v, voff, vstride):
        """V = B^T d B of the n x n tile d at xp[xoff + (k*row + l)*16 + lane] (rows `row` pixels apart):
        V[i, j] to v[voff + (i*n + j)*vstride]."""
        sig = types.void(xp, xoff, row, v, voff, vstride)

        def codegen(context, builder, signature, args):
            _, xoff_, row_, _, voff_, vstride_ = args
            ptr = _pointers(context, builder, signature, args)
            xptr, vptr = ptr[0], ptr[3]
            load = _masked_load(builder.module, xptr.type)
            store = _masked_store(builder.module, vptr.type)
            align, on, zero = ir.Constant(_I32, 4), ir.Constant(_MASK, [1] * LANES), ir.Constant(_VEC, [0.0] * LANES)
            i64 = lambda c: ir.Constant(_I64, c)  # noqa: E731
            line = builder.mul(row_, i64(BLOCK))
            d = []
            for k in range(n):
                base = builder.add(xoff_, builder.mul(line, i64(k)))
                d.append([builder.call(load, [builder.gep(xptr, [builder.add(base, i64(l * BLOCK))]), align, on,
                                              zero]) for l in range(n)])
            t = [[_combine(builder, bt[i], [d[k][l] for k in range(n)]) for l in range(n)] for i in range(n)]
            for i in range(n):
                for j in range(n):
                    at = builder.add(voff_, builder.mul(vstride_, i64(i * n + j)))
                    builder.call(store, [_combine(builder, bt[j], t[i]), builder.gep(vptr, [at]), align, on])
            return context.get_dummy_value()

        return sig, codegen

    return _tile


def _make_output_tile(m: int):
    at = winograd_matrices(m)[0].astype(np.float32)
    n = m + 2

    @intrinsic
    def _tile(typingctx, mm, moff, mstride, y, yoff, ow, rows, cols, bias, boff, r, has_res, a, hi):
        """Y = A^T M A of the tile whose M[i, j] is at mm[moff + (i*n + j)*mstride]: y[yoff + (i*ow + j)*16] =
        act(Y[i, j] + bias[boff:] (+ r at the same offset)) for i < rows, j < cols."""
        sig = types.void(mm, moff, mstride, y, yoff, ow, rows, cols, bias, boff, r, has_res, a, hi)

        def codegen(context, builder, signature, args):
            _, moff_, mstride_, _, yoff_, ow_, rows_, cols_, _, boff_, _, has_res_, a_, hi_ = args
            ptr = _pointers(context, builder, signature, args)
            mptr, yptr, bptr, rptr = ptr[0], ptr[3], ptr[8], ptr[10]
            load = _masked_load(builder.module, mptr.type)
            store = _masked_store(builder.module, yptr.type)
            align, on, zero = ir.Constant(_I32, 4), ir.Constant(_MASK, [1] * LANES), ir.Constant(_VEC, [0.0] * LANES)
            i64 = lambda c: ir.Constant(_I64, c)  # noqa: E731
            big = [[builder.call(load, [builder.gep(mptr, [builder.add(moff_, builder.mul(mstride_, i64(i * n + j)))]),
                                        align, on, zero]) for j in range(n)] for i in range(n)]
            t = [[_combine(builder, at[a], [big[i][j] for i in range(n)]) for j in range(n)] for a in range(m)]
            bv = builder.call(load, [builder.gep(bptr, [boff_]), align, on, zero])
            res_on = _splat(builder, has_res_, _MASK)
            line = builder.mul(ow_, i64(BLOCK))
            inside = [[_splat(builder, builder.and_(builder.icmp_signed("<", i64(i), rows_),
                                                    builder.icmp_signed("<", i64(j), cols_)), _MASK)
                       for j in range(m)] for i in range(m)]
            sums = [[builder.fadd(_combine(builder, at[j], t[i]), bv) for j in range(m)] for i in range(m)]

            def store_all(act):
                for i in range(m):
                    base = builder.add(yoff_, builder.mul(line, i64(i)))
                    for j in range(m):
                        off = builder.add(base, i64(j * BLOCK))
                        val = builder.fadd(sums[i][j], builder.call(load, [builder.gep(rptr, [off]), align,
                                                                           builder.and_(inside[i][j], res_on), zero]))
                        builder.call(store, [act(val), builder.gep(yptr, [off]), align, inside[i][j]])

            _with_activation(builder, a_, hi_, store_all)
            return context.get_dummy_value()

        return sig, codegen

    return _tile


_IN2, _IN4 = (_make_input_tile(m) for m in SIZES)
_OUT2, _OUT4 = (_make_output_tile(m) for m in SIZES)


@njit(**dict(JIT, inline="always"))
def _input_tile(m, xp, xoff, row, v, voff, vstride):
    if m == 2:
        _IN2(xp, xoff, row, v, voff, vstride)
    else:
        _IN4(xp, xoff, row, v, voff, vstride)


@njit(**dict(JIT, inline="always"))
def _output_tile(m, mm, moff, mstride, y, yoff, ow, rows, cols, bias, boff, r, has_res, a, hi):
    if m == 2:
        _OUT2(mm, moff, mstride, y, yoff, ow, rows, cols, bias, boff, r, has_res, a, hi)
    else:
        _OUT4(mm, moff, mstride, y, yoff, ow, rows, cols, bias, boff, r, has_res, a, hi)


@njit(**dict(JIT, inline="always"))
def _product_tile(cvb, tail, uq, uoff, v, voff, hw, c, mm, moff, npix, mrows, zb, boff, pf, per):
    """The pointwise tile of `_blocked` on blocked V and M, no bias, residual or activation (only the four
    blocked-to-blocked builds: a driver compiles each tile it may call)."""
    if cvb == 2:
        if tail:
            _BB2T(uq, uoff, v, voff, hw, c, mm, moff, npix, mrows, zb, boff, mm, False, 1.0, np.inf, False, pf, per)
        else:
            _BB2(uq, uoff, v, voff, hw, c, mm, moff, npix, mrows, zb, boff, mm, False, 1.0, np.inf, False, pf, per)
    elif tail:
        _BB1T(uq, uoff, v, voff, hw, c, mm, moff, npix, mrows, zb, boff, mm, False, 1.0, np.inf, False, pf, per)
    else:
        _BB1(uq, uoff, v, voff, hw, c, mm, moff, npix, mrows, zb, boff, mm, False, 1.0, np.inf, False, pf, per)


def pack(w: np.ndarray, m: int) -> tuple[np.ndarray, int]:
    """A 3x3 filter (O, C, 3, 3) -> U = G g G^T as n*n pointwise filters (O, C') packed for the blocked tile
    (`_blocked.pack`) one after the other, C' = C rounded up to whole blocks (the padded channels zero); and
    the size of one of them."""
    _, g, _ = winograd_matrices(m)
    o, c = w.shape[:2]
    n, cp = m + 2, -(-c // BLOCK) * BLOCK
    u = np.zeros((n * n, o, cp), np.float64)
    u[:, :, :c] = np.einsum("ik,ockl,jl->ijoc", g, w.astype(np.float64), g).reshape(n * n, o, c)
    panels = [pack_panels(u[p].astype(np.float32), PANEL) for p in range(n * n)]
    return frozen(np.concatenate(panels)), panels[0].size


class Padded:
    """The zero-padded blocked copy of an input (C channels, h x w) that the tiles of F(m, 3) read: th*m + 2
    rows by tw*m + 2 columns of whole blocks, the input at (pt, pl), zeros around it (written once)."""

    def __init__(self, c, h, wd, m, pt, pl, oh, ow):
        self.th, self.tw = -(-oh // m), -(-ow // m)
        self.rows, self.cols = self.th * m + 2, self.tw * m + 2
        self.blocks = -(-c // BLOCK)
        self.c, self.h, self.wd, self.pt, self.pl = c, h, wd, pt, pl
        self.data = np.zeros(self.blocks * self.rows * self.cols * BLOCK, np.float32)

    def fill(self, x, blocked: bool):
        """x: one batch item, flat, blocked or NCHW."""
        c, h, wd, pt, pl = self.c, self.h, self.wd, self.pt, self.pl
        if blocked:
            dst = self.data.reshape(self.blocks, self.rows, self.cols, BLOCK)[:, pt:pt + h, pl:pl + wd]
            dst[...] = x.reshape(self.blocks, h, wd, BLOCK)
        else:
            to_blocked(x, self.data, c, h, wd, self.rows, self.cols, pt, pl)


def chunk(m: int, c: int, o: int, tiles: int) -> int:
    """Tiles per chunk, of the given number of tiles: all, or whole pointwise tiles (NR) whose transformed input
    (or output) takes about CHUNK_BYTES. (Chunks that fit in L2 were slower: each reads all of U again.)"""
    n2 = (m + 2) ** 2
    return min(tiles, max(NR, CHUNK_BYTES // (n2 * max(c, o) * 4) // NR * NR))


_scratch = threading.local()


def scratch(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Two buffers of at least `size` floats for a chunk's V and M, shared by the convs a thread runs."""
    have = getattr(_scratch, "buffers", None)
    if have is None or have[0].size < size:
        have = _scratch.buffers = (np.empty(size, np.float32), np.empty(size, np.float32))
    return have


def _winograd(xp, rows, cols, v, mm, uq, usize, zb, y, bias, r, has_res, a, hi, m, c, o, th, tw, oh, ow, per):
    """y (O x OH x OW, blocked, flat; O % 16 == 0) = act(the 3x3 stride-1 conv + bias (+ r, blocked)) for one
    batch item, from its padded copy xp (`Padded`: C channels in whole blocks, rows x cols pixels) and the
    filter uq (`pack`, usize floats per product); v and mm hold one chunk's transforms, zb O zeros. Chunk by
    chunk of tiles: the input transform, the n*n products by the pointwise tile, the output transform.
    (Threaded: each step's (block, tile) or (product, panel, tile) triples split over the threads.)"""
    n = m + 2
    nn = n * n
    cb, ob = c // BLOCK, o // BLOCK
    panels = (ob + 1) // 2
    total = th * tw
    for t0 in range(0, total, per):
        cnt = min(per, total - t0)
        for q in prange(cb * cnt):
            b, t = q // cnt, q % cnt
            ty, tx = (t0 + t) // tw, (t0 + t) % tw
            _input_tile(m, xp, ((b * rows + ty * m) * cols + tx * m) * BLOCK, cols, v, (b * cnt + t) * BLOCK, c * cnt)
        tiles = (cnt + NR - 1) // NR
        for q in prange(nn * panels * tiles):
            p, rest = q // (panels * tiles), q % (panels * tiles)
            b, p0 = (rest // tiles) * 2, (rest % tiles) * NR
            npix = min(NR, cnt - p0)
            pf, lines = _prefetch_share(PANEL * c, nn * panels, p * panels + b // 2, tiles, c // BLOCK, rest % tiles)
            _product_tile(2 if b + 1 < ob else 1, npix < NR, uq, p * usize + (b // 2) * PANEL * c, v,
                          p * c * cnt + p0 * BLOCK, cnt, c, mm, p * o * cnt + (b * cnt + p0) * BLOCK, npix,
                          min(PANEL, o - b * BLOCK), zb, b * BLOCK, pf, lines)
        for q in prange(ob * cnt):
            b, t = q // cnt, q % cnt
            ty, tx = (t0 + t) // tw, (t0 + t) % tw
            _output_tile(m, mm, (b * cnt + t) * BLOCK, o * cnt, y, ((b * oh + ty * m) * ow + tx * m) * BLOCK, ow,
                         min(m, oh - ty * m), min(m, ow - tx * m), bias, b * BLOCK, r, has_res, a, hi)


winograd = serial_and_threaded(_winograd)
