"""Convolutions and pooling on channel-blocked tensors (NCHW16c).

A blocked tensor of C channels (C a multiple of 16) keeps, for each block of 16 channels, the pixels one after
the other with their 16 channels side by side: element (n, c, y, x) at ((n * C/16 + c // 16) * H * W + y * W +
x) * 16 + c % 16. It takes the same bytes as its NCHW form, so the memory plan does not change; which tensors
are blocked is decided at load (`runtime/layout.py`) and never leaves the runtime.

In this layout one output pixel's 16 channels are one vector, and a pixel's 16 input channels one cache line:
- pointwise: a tile of NR pixels x 2 blocks of output channels (28 vector registers) over all of K, one
  vector of the packed filter per block and one broadcast input value per pixel for each input channel,
  the 16 channels of an input block unrolled (no address arithmetic in the loop; an NCHW input's channels
  NB_UNROLL a step). The input and the output may each be blocked or NCHW (a conv at an island's edge reads
  or writes the plain layout, NCHW output as the tile's vectors transposed in registers), so no reorder op is
  ever needed. Close to the FMA peak where the NCHW GEMMs stall on x's strided rows. While a filter panel's
  tiles run they prefetch the next panel (`_prefetch_share`); inputs much larger than the filter go tile by
  tile instead (`TILE_MAJOR_FROM`).
- k x k convs (groups 1, any stride), blocked or NCHW input (a network's stem) into a blocked output: the
  same tile over the zero-padded phase planes of the input (`ConvGeometry`), which make every tap of a tile
  one address plus constant offsets; an NCHW input of stride 1 or 2 is read where it lies instead
  (`conv_nchw`: tiles along an output row, zeros read past the row's ends).
- depthwise k x k (3, 5), stride 1 or 2, and max pooling: a tile of RD output pixels of one output row and
  one block, each tap one (masked) vector load per pixel; the masks drop taps in the left/right padding,
  the tap rows above or below the input are not visited.
The accumulators start from the bias; residual (in the output's layout) and a relu-like activation, hard_swish
or swish (`act_bounds`) are applied before the one store. LLVM IR on 16-lane vectors as in `_tiled`: AVX-512 only
(`AVAILABLE`). Each driver comes serial and threaded (`_util.serial_and_threaded`): with threads in numba's pool its
tiles are split over them.
"""
from __future__ import annotations

import threading

import numpy as np
from llvmlite import ir
from numba import prange, types
from numba.extending import intrinsic

from . import _tiled
from ._tiled import (_F32, _I32, _I64, _MASK, _VEC, AVAILABLE, LANES, _accumulating_loop, _activation, _declare,
                     _exp, _fma, _lane_mask, _masked_load, _masked_store, _pointers, _splat, pack_panels)
from ._util import JIT, frozen, njit, serial_and_threaded

__all__ = ["AVAILABLE", "BLOCK", "pack", "pack_conv", "pack_depthwise", "pack_grouped", "pointwise", "ConvGeometry",
           "pad", "conv", "grouped_conv", "conv_nchw", "depthwise", "global_pool", "max_pool", "avg_pool", "affine",
           "to_blocked", "to_nchw"]

BLOCK = LANES  # channels per block
# pixels per tile (x 2 blocks: 28 accumulators). 14 divides the pixels of every map a 224 or 640 input gives
# (7x7: 3 tiles and a short one). Against 12 pixels x 2 blocks (and 8 x 3 from 512 input channels): 4-15% per
# pointwise conv standalone, 4-8% on MobileNets, MnasNet and ResNet50 in-network
NR = 14
NR_SHORT = 7  # pixels per tile on 7-wide maps (a row of the direct conv's tile; a pointwise 7x7 map's last tile)
PANEL = 2 * BLOCK  # output channels per packed filter panel
RD = 8  # output pixels per depthwise tile


HARD_SWISH = (float("nan"), 6.0)  # the (a, hi) that asks the blocked kernels for hard_swish


def act_bounds(code: int, alpha: float):
    """The fused activation as the blocked kernels take it: `_tiled.act_bounds`' relu-like (a, hi), HARD_SWISH
    for hard_swish (v * clamp(v + 3, 0, 6) / 6), or (NaN, -beta) for swish with beta > 0 (v * sigmoid(beta v):
    YOLO's SiLU, beta 1); None for the others."""
    if code == 4:
        return HARD_SWISH
    if code == 6 and alpha > 0:
        return float("nan"), -float(alpha)
    return _tiled.act_bounds(code, alpha)


def _with_activation(builder, a_, hi_, emit):
    """emit(act) for the activation (a, hi) stands for (`act_bounds`): the relu-like one, or, when a is NaN,
    hard_swish (hi > 0) or swish (beta = -hi); all three emitted, branches per call pick."""
    f32 = lambda v: builder.fptrunc(v, _F32) if v.type != _F32 else v  # noqa: E731
    zero, three = ir.Constant(_VEC, [0.0] * LANES), ir.Constant(_VEC, [3.0] * LANES)
    six, sixth = ir.Constant(_VEC, [6.0] * LANES), ir.Constant(_VEC, [1.0 / 6.0] * LANES)
    one = ir.Constant(_VEC, [1.0] * LANES)

    def hard_swish(v):
        t = builder.fadd(v, three)
        t = builder.select(builder.fcmp_ordered("<", t, zero), zero, t)
        t = builder.select(builder.fcmp_ordered(">", t, six), six, t)
        return builder.fmul(builder.fmul(v, t), sixth)

    def swish(v):  # v / (1 + e**(-beta v)), -beta = hi
        return builder.fdiv(v, builder.fadd(one, _exp(builder, builder.fmul(v, _splat(builder, f32(hi_))))))

    with builder.if_else(builder.fcmp_unordered("uno", f32(a_), f32(a_))) as (special, relu_like):
        with special:
            with builder.if_else(builder.fcmp_ordered(">", f32(hi_), ir.Constant(_F32, 0.0))) as (hs, sw):
                with hs:
                    emit(hard_swish)
                with sw:
                    emit(swish)
        with relu_like:
            emit(_activation(builder, a_, hi_))


def pack(w2d: np.ndarray) -> np.ndarray:
    """A pointwise filter W (M, K) -> panels of PANEL output channels (`_tiled.pack_panels`)."""
    return pack_panels(w2d, PANEL)


def pack_depthwise(w: np.ndarray) -> np.ndarray:
    """A depthwise filter (C, 1, k, k), C a multiple of 16 -> (C/16, k*k, 16): one vector per block and tap."""
    c, _, kh, kw = w.shape
    return frozen(np.ascontiguousarray(w.reshape(c // BLOCK, BLOCK, kh * kw).transpose(0, 2, 1)).reshape(-1))


def _prefetch(builder, ptr, start, per, step):
    """IR prefetching into L2 `per` cache lines (16 floats each) of ptr from float offset start + step*per*16:
    step s of a tile's loop fetches its share of the filter panel the next tiles read (a hint: never faults)."""
    fn = _declare(builder.module, "llvm.prefetch.p0", ir.VoidType(), [ptr.type, _I32, _I32, _I32])
    first = builder.add(start, builder.mul(builder.mul(step, per), ir.Constant(_I64, LANES)))
    i32 = lambda v: ir.Constant(_I32, v)  # noqa: E731

    def line(j, grid):
        at = builder.add(first, builder.mul(j, ir.Constant(_I64, LANES)))
        builder.call(fn, [builder.gep(ptr, [at]), i32(0), i32(2), i32(1)])
        return grid
    _accumulating_loop(builder, per, 0, 0, line, "prefetch")


def _by_width(builder, short_, emit):
    """emit(nr) for tiles of NR_SHORT pixels and of NR, one branch per call picking by short."""
    with builder.if_else(short_) as (few, many):
        with few:
            emit(NR_SHORT)
        with many:
            emit(NR)


def _bias_start(builder, bptr, boff_, mrows_, cvb, nr):
    """The accumulators a tile starts from: the bias of its output channels (< mrows; zeros past them), so that
    the epilogue has one addition less a vector."""
    load = _masked_load(builder.module, bptr.type)
    grid = []
    for v in range(cvb):
        chan = _lane_mask(builder, ir.Constant(_I64, 0), builder.sub(mrows_, ir.Constant(_I64, v * LANES)))
        at = builder.gep(bptr, [builder.add(boff_, ir.Constant(_I64, v * LANES))])
        grid.append([builder.call(load, [at, ir.Constant(_I32, 4), chan, ir.Constant(_VEC, [0.0] * LANES)])] * nr)
    return grid


def _transpose(builder, rows):
    """The 16 x 16 transpose of up to 16 vectors (missing rows zero): out[c] lane p = rows[p] lane c. Four
    stages, stage b swapping bit b of the row and lane indices, each new row one two-source shuffle (64
    shuffles, no memory)."""
    zero = ir.Constant(_VEC, [0.0] * LANES)
    m = list(rows) + [zero] * (LANES - len(rows))
    for b in (1, 2, 4, 8):
        nxt = []
        for r in range(LANES):
            lo = r & ~b
            idx = [(0 if not (lane & b) else LANES) + ((lane & ~b) | (r & b)) for lane in range(LANES)]
            nxt.append(builder.shuffle_vector(m[lo], m[lo | b], ir.Constant(ir.VectorType(_I32, LANES), idx)))
        m = nxt
    return m


def _store(builder, sums, cvb, yb, tail, yoff_, ohw_, npix_, mrows_, rptr, has_res_, yptr, a_, hi_, pixels=None):
    """The epilogue of a tile of nr pixels x cvb output blocks (sums: cvb x nr vectors, started from the bias:
    `_bias_start`): y = act(sums (+ r, at y's offsets)) for the output channels < mrows (and pixels < npix in a
    tail tile); y (and r) blocked (one vector store per pixel and block) or NCHW (each block's vectors
    transposed in registers, then one masked store of the tile's pixels per channel row, ohw apart: 16
    stores a block instead of nr scatters of 16). yoff: the offset of (first block, first pixel); pixels
    (blocked y): instead, each pixel's (offset from yoff, whether to store it)."""
    mod = builder.module
    load = _masked_load(mod, rptr.type)
    store = _masked_store(mod, yptr.type)
    align, zero = ir.Constant(_I32, 4), ir.Constant(_VEC, [0.0] * LANES)
    i64 = lambda v: ir.Constant(_I64, v)  # noqa: E731
    plane = builder.mul(ohw_, i64(BLOCK))
    chan = [_lane_mask(builder, i64(0), builder.sub(mrows_, i64(v * LANES))) for v in range(cvb)]
    if not yb:  # the pixels of a channel row: lanes < nr (and < npix in a tail tile)
        nr = len(sums[0])
        pix_on = ir.Constant(_MASK, [lane < nr for lane in range(LANES)])
        if tail:
            pix_on = builder.and_(pix_on, _lane_mask(builder, i64(0), npix_))
        columns = [_transpose(builder, sums[v]) for v in range(cvb)]

    def plus_residual(vectors, offsets, masks):
        """vectors + r at the offsets, when there is a residual (one branch a tile; the stores after it are
        emitted once)."""
        before = builder.block
        with builder.if_then(has_res_):
            added = [builder.fadd(v, builder.call(load, [builder.gep(rptr, [off]), align, m, zero]))
                     for v, off, m in zip(vectors, offsets, masks)]
            inside = builder.block
        merged = []
        for v, w in zip(vectors, added):
            phi = builder.phi(_VEC)
            phi.add_incoming(v, before)
            phi.add_incoming(w, inside)
            merged.append(phi)
        return merged

    if yb:
        nr = len(sums[0])
        stored = [pixels[p][1] if pixels is not None else (builder.icmp_signed("<", i64(p), npix_) if tail else None)
                  for p in range(nr)]  # whether pixel p is stored (None: always)
        offs, masks = [], []
        for v in range(cvb):
            for p in range(nr):
                at = i64(p * BLOCK) if pixels is None else pixels[p][0]
                offs.append(builder.add(builder.add(yoff_, builder.mul(i64(v), plane)), at))
                masks.append(chan[v] if stored[p] is None else builder.and_(chan[v], _splat(builder, stored[p], _MASK)))
        vals = plus_residual([sums[v][p] for v in range(cvb) for p in range(nr)], offs, masks)

        def store_all(act):
            for val, off, m in zip(vals, offs, masks):
                builder.call(store, [act(val), builder.gep(yptr, [off]), align, m])
    else:
        offs, oks = [], []
        for v in range(cvb):
            for c in range(LANES):
                oks.append(builder.and_(pix_on, _splat(builder, builder.icmp_signed("<", i64(v * LANES + c), mrows_),
                                                       _MASK)))
                offs.append(builder.add(yoff_, builder.mul(i64(v * LANES + c), ohw_)))
        vals = plus_residual([columns[v][c] for v in range(cvb) for c in range(LANES)], offs, oks)

        def store_all(act):
            for val, off, ok in zip(vals, offs, oks):
                builder.call(store, [act(val), builder.gep(yptr, [off]), align, ok])

    _with_activation(builder, a_, hi_, store_all)


# NCHW input: channels a step of the pointwise tile's loop. (Unrolling 16, as for a blocked input, let LLVM
# hoist all 32 filter loads of a step to its top and spill them: 10-15% slower.)
NB_UNROLL = 2


def _make_pw_tile(cvb: int, xb: bool, yb: bool, tail: bool):
    """The pointwise tile for cvb (1 or 2) output blocks, x blocked or NCHW (xb), y blocked or NCHW (yb); a
    tail tile (fewer than NR pixels) reads its missing pixels from the last valid one and does not store
    them."""

    @intrinsic
    def _tile(typingctx, wq, woff, x, xoff, hw, k, y, yoff, npix, mrows, bias, boff, r, has_res, a, hi, short, pf, per):
        """y at yoff, the output blocks b..b+cvb-1 of pixels p0..p0+npix-1 = act(sum_k wq[woff + k*PANEL + c] *
        x[k, pixel] + bias[boff + c] (+ r)) for the output channels c < mrows of the tile. Offsets: xoff is
        pixel p0's (blocked p0*16, NCHW p0), yoff that of (block b, p0) (blocked (b*hw + p0)*16, NCHW
        b*16*hw + p0). short (not in a tail tile): NR_SHORT pixels instead of NR. Each step over 16 input
        channels also prefetches `per` cache lines of wq from pf on (`_prefetch`)."""
        sig = types.void(wq, woff, x, xoff, hw, k, y, yoff, npix, mrows, bias, boff, r, has_res, a, hi, short, pf, per)

        def codegen(context, builder, signature, args):
            (_, woff_, _, xoff_, hw_, k_, _, yoff_, npix_, mrows_, _, boff_, _, has_res_, a_, hi_, short_, pf_,
             per_) = args
            ptr = _pointers(context, builder, signature, args)
            wptr, xptr, yptr, bptr, rptr = ptr[0], ptr[2], ptr[6], ptr[10], ptr[12]
            mod = builder.module
            load = _masked_load(mod, wptr.type)
            fma = _fma(mod)
            align, zero = ir.Constant(_I32, 4), ir.Constant(_VEC, [0.0] * LANES)
            on = ir.Constant(_MASK, [1] * LANES)
            i64 = lambda v: ir.Constant(_I64, v)  # noqa: E731

            def emit(nr):
                if tail:
                    last = builder.sub(npix_, i64(1))
                    cols = [builder.select(builder.icmp_signed("<", i64(p), npix_), i64(p), last) for p in range(nr)]
                else:
                    cols = [i64(p) for p in range(nr)]
                xcols = [builder.mul(c, i64(BLOCK)) if xb else c for c in cols]  # a pixel's offset in x
                plane = builder.mul(hw_, i64(BLOCK))  # one block of channels: hw pixels x 16 (both layouts)

                def fmas(xrow, wrow, acc):
                    """One input channel: its row of the panel, one broadcast x per pixel."""
                    wv = [builder.call(load, [builder.gep(wptr, [builder.add(wrow, i64(v * LANES))]), align, on, zero])
                          for v in range(cvb)]
                    nxt = [[None] * nr for _ in range(cvb)]
                    for p in range(nr):  # (one broadcast live at a time: 24 + cvb + 1 registers)
                        xs = _splat(builder, builder.load(builder.gep(xptr, [builder.add(xrow, xcols[p])])))
                        for v in range(cvb):
                            nxt[v][p] = builder.call(fma, [wv[v], xs, acc[v][p]])
                    return nxt

                def block_step(kb, acc):  # 16 input channels, unrolled
                    xbase = builder.add(xoff_, builder.mul(kb, plane))
                    wbase = builder.add(woff_, builder.mul(kb, i64(BLOCK * PANEL)))
                    for ci in range(BLOCK):
                        xrow = builder.add(xbase, i64(ci) if xb else builder.mul(hw_, i64(ci)))
                        acc = fmas(xrow, builder.add(wbase, i64(ci * PANEL)), acc)
                    _prefetch(builder, wptr, pf_, per_, kb)
                    return acc

                def channels_step(i, acc):  # NCHW input: NB_UNROLL channels, then their prefetch share
                    for ci in range(NB_UNROLL):
                        kk = builder.add(builder.mul(i, i64(NB_UNROLL)), i64(ci))
                        acc = fmas(builder.add(xoff_, builder.mul(kk, hw_)),
                                   builder.add(woff_, builder.mul(kk, i64(PANEL))), acc)
                    _prefetch(builder, wptr, pf_, per_, i)
                    return acc

                start = _bias_start(builder, bptr, boff_, mrows_, cvb, nr)
                if xb:
                    sums = _accumulating_loop(builder, builder.ashr(k_, i64(4)), cvb, nr, block_step, "pw.k",
                                              init=start)
                else:
                    steps = builder.sdiv(k_, i64(NB_UNROLL))
                    sums = _accumulating_loop(builder, steps, cvb, nr, channels_step, "pw.k", init=start)
                    done = builder.mul(steps, i64(NB_UNROLL))

                    def one(i, acc):  # the channels past the last step, one at a time
                        kk = builder.add(done, i)
                        return fmas(builder.add(xoff_, builder.mul(kk, hw_)),
                                    builder.add(woff_, builder.mul(kk, i64(PANEL))), acc)
                    sums = _accumulating_loop(builder, builder.sub(k_, done), cvb, nr, one, "pw.krest", init=sums)

                _store(builder, sums, cvb, yb, tail, yoff_, hw_, npix_, mrows_, rptr, has_res_, yptr, a_, hi_)

            if tail:
                emit(NR)
            else:
                _by_width(builder, short_, emit)
            return context.get_dummy_value()

        return sig, codegen

    return _tile


# (output blocks, x blocked, y blocked, tail) -> tile; an island's inside (both blocked) and its two edges
_PW = {(cvb, xb, yb, tail): _make_pw_tile(cvb, xb, yb, tail)
       for cvb in (1, 2) for xb, yb in ((True, True), (False, True), (True, False)) for tail in (False, True)}
_BB1, _BB1T, _BB2, _BB2T = (_PW[c, True, True, t] for c in (1, 2) for t in (False, True))
_NB1, _NB1T, _NB2, _NB2T = (_PW[c, False, True, t] for c in (1, 2) for t in (False, True))
_BN1, _BN1T, _BN2, _BN2T = (_PW[c, True, False, t] for c in (1, 2) for t in (False, True))


@njit(**dict(JIT, inline="always"))
def _pw_tile(cvb, tail, xb, yb, wq, woff, x, xoff, hw, k, y, yoff, npix, mrows, bias, boff, r, has_res, a, hi,
             short, pf, per):
    if xb and yb:
        if cvb == 2:
            if tail:
                _BB2T(wq, woff, x, xoff, hw, k, y, yoff, npix, mrows, bias, boff, r, has_res, a, hi, short, pf, per)
            else:
                _BB2(wq, woff, x, xoff, hw, k, y, yoff, npix, mrows, bias, boff, r, has_res, a, hi, short, pf, per)
        elif tail:
            _BB1T(wq, woff, x, xoff, hw, k, y, yoff, npix, mrows, bias, boff, r, has_res, a, hi, short, pf, per)
        else:
            _BB1(wq, woff, x, xoff, hw, k, y, yoff, npix, mrows, bias, boff, r, has_res, a, hi, short, pf, per)
    elif yb:
        if cvb == 2:
            if tail:
                _NB2T(wq, woff, x, xoff, hw, k, y, yoff, npix, mrows, bias, boff, r, has_res, a, hi, short, pf, per)
            else:
                _NB2(wq, woff, x, xoff, hw, k, y, yoff, npix, mrows, bias, boff, r, has_res, a, hi, short, pf, per)
        elif tail:
            _NB1T(wq, woff, x, xoff, hw, k, y, yoff, npix, mrows, bias, boff, r, has_res, a, hi, short, pf, per)
        else:
            _NB1(wq, woff, x, xoff, hw, k, y, yoff, npix, mrows, bias, boff, r, has_res, a, hi, short, pf, per)
    elif cvb == 2:
        if tail:
            _BN2T(wq, woff, x, xoff, hw, k, y, yoff, npix, mrows, bias, boff, r, has_res, a, hi, short, pf, per)
        else:
            _BN2(wq, woff, x, xoff, hw, k, y, yoff, npix, mrows, bias, boff, r, has_res, a, hi, short, pf, per)
    elif tail:
        _BN1T(wq, woff, x, xoff, hw, k, y, yoff, npix, mrows, bias, boff, r, has_res, a, hi, short, pf, per)
    else:
        _BN1(wq, woff, x, xoff, hw, k, y, yoff, npix, mrows, bias, boff, r, has_res, a, hi, short, pf, per)


PREFETCH_FROM = 512 << 10  # filters from this many bytes (not kept in L2 from one run to the next)


@njit(**dict(JIT, inline="always"))
def _prefetch_share(panel, panels, b, tiles, steps, q):
    """Where tile q of filter panel b (of `panels`, `panel` floats each; `tiles` tiles, `steps` prefetch steps
    each) prefetches from, and how many cache lines a step: tiles 1.. of a panel each fetch an equal share of
    the next panel, so that it is in L2 when that panel starts. A panel read from memory by its first tile
    alone ran at the memory's latency (ResNet50's last stage, 9 MB filters: 2.6 -> 2.2 ms a conv; MobileNets'
    7x7 stages). Small filters (in L2 anyway), the last panel, tile 0 and lone tiles: nothing."""
    if tiles < 2 or q == 0 or b + 1 >= panels or panel * panels * 4 < PREFETCH_FROM:
        return 0, 0
    share = -(-panel // (tiles - 1))
    return (b + 1) * panel + (q - 1) * share, -(-share // (LANES * steps))


TILE_MAJOR_FROM = 1 << 20  # inputs from this many bytes, larger than the filter, go tile by tile


@njit(**dict(JIT, inline="always"))
def _tile_major(x_floats, filter_floats):
    """Whether a driver goes tile by tile (every filter panel on one tile of x, x read once from memory) rather
    than panel by panel (every tile on one panel, the filter read once): x over TILE_MAJOR_FROM bytes and
    twice the filter."""
    return x_floats > 2 * filter_floats and x_floats * 4 > TILE_MAJOR_FROM


@njit(**dict(JIT, inline="always"))
def _schedule(t, panels, tiles, by_tile, panel, steps):
    """Step t of a driver's loop over (panel, tile) pairs: the panel, the tile, and the prefetch of the next
    panel (`_prefetch_share`; none tile by tile, where the panels take turns)."""
    if by_tile:
        return t % panels, t // panels, 0, 0
    b, q = t // tiles, t % tiles
    pf, per = _prefetch_share(panel, panels, b, tiles, steps, q)
    return b, q, pf, per


def _pointwise(wq, x, y, bias, r, has_res, a, hi, m, k, hw, xb, yb):
    """y (M x hw, flat, blocked if yb) = act(W @ x + bias (+ r, in y's layout)) for one batch item; wq from
    `pack`, x (K x hw, flat, blocked if xb: then K % 16 == 0; yb: M % 16 == 0), bias of at least M values; xb
    or yb (both NCHW: `_tiled`). Filter panel by panel (2 blocks, the last one alone if odd), NR pixels at a
    time, the last tile partial (or a short one: 7x7 maps' last 7 pixels). An x of over 1 MB and twice the
    filter goes tile by tile instead, every panel on a tile (read once from memory, not once a panel:
    ResNet50's 256 -> 64 convs on 56x56). (Threaded: the (panel, tile) pairs split in runs over the threads.)"""
    nblk = (m + BLOCK - 1) // BLOCK
    tiles = (hw + NR - 1) // NR
    xps, yps = (BLOCK if xb else 1), (BLOCK if yb else 1)
    panel, panels = PANEL * k, (nblk + 1) // 2
    by_tile = _tile_major(k * hw, m * k)
    for t in prange(panels * tiles):
        pi, q, pf, per = _schedule(t, panels, tiles, by_tile, panel, max(1, k // (BLOCK if xb else NB_UNROLL)))
        b, p0 = pi * 2, q * NR
        cvb, npix = (2 if b + 1 < nblk else 1), min(NR, hw - p0)
        short = npix == NR_SHORT  # (a 7x7 map's last 7 pixels: a whole short tile, not a tail)
        _pw_tile(cvb, npix < NR and not short, xb, yb, wq, pi * panel, x, p0 * xps, hw, k, y,
                 b * BLOCK * hw + p0 * yps, npix, min(PANEL, m - b * BLOCK), bias, b * BLOCK, r, has_res, a, hi, short,
                 pf, per)


pointwise = serial_and_threaded(_pointwise)


def pack_conv(w: np.ndarray, x_blocked: bool) -> np.ndarray:
    """A conv filter (O, C, k, k) -> panels of PANEL output channels (`_tiled.pack_panels`) whose rows are, for a
    blocked input, (block of C, ky, kx, channel in the block), for an NCHW input (channel, ky, kx)."""
    o, c, kh, kw = w.shape
    if x_blocked:
        w = w.reshape(o, c // BLOCK, BLOCK, kh, kw).transpose(0, 1, 3, 4, 2)
    return pack_panels(np.asarray(w, np.float32).reshape(o, -1), PANEL)


def _make_conv_tile(cvb: int, xb: bool):
    """The k x k conv tile (groups 1) for cvb output blocks into a blocked y, reading the zero-padded phase planes
    of x (`pad`), blocked or NCHW."""

    @intrinsic
    def _tile(typingctx, wq, woff, xp, taps, kk, plane, c, q0, npix, pix, y, yoff, ohw, mrows, bias, boff, r, has_res,
              a, hi, short, pf, per, skip):
        """The output pixels q0 + p (p < npix; NR of them, or NR_SHORT if short) x cvb output blocks: y =
        act(bias + sum over the input channels and the kk taps of w * x (+ r)). Tap t of pixel q, channel (block)
        ch reads xp[ch*plane + q*unit + taps[t] (+ the channel in the block)], unit 16 (blocked) or 1 (NCHW); the
        result goes to yoff + pix[q] (+ ohw*16 per output block; pix[q] < 0: a pixel not stored). Each (channel,
        tap) step also prefetches `per` cache lines of wq from pf on (`_prefetch`). Pixels from NR_SHORT on are
        skip positions further on (7-wide outputs: a tile is two rows of 7, skip = wph - 7; else 0)."""
        sig = types.void(wq, woff, xp, taps, kk, plane, c, q0, npix, pix, y, yoff, ohw, mrows, bias, boff, r, has_res,
                         a, hi, short, pf, per, skip)

        def codegen(context, builder, signature, args):
            (_, woff_, _, _, kk_, plane_, c_, q0_, npix_, _, _, yoff_, ohw_, mrows_, _, boff_, _, has_res_, a_, hi_,
             short_, pf_, per_, skip_) = args
            ptr = _pointers(context, builder, signature, args)
            wptr, xptr, tptr, pptr, yptr, bptr, rptr = ptr[0], ptr[2], ptr[3], ptr[9], ptr[10], ptr[14], ptr[16]
            mod = builder.module
            load = _masked_load(mod, wptr.type)
            fma = _fma(mod)
            align, zero = ir.Constant(_I32, 4), ir.Constant(_VEC, [0.0] * LANES)
            on = ir.Constant(_MASK, [1] * LANES)
            i64 = lambda v: ir.Constant(_I64, v)  # noqa: E731
            unit = BLOCK if xb else 1  # one pixel in x
            per_ch = BLOCK if xb else 1  # input channels per step of the channel loop
            start = builder.mul(q0_, i64(unit))
            jump = builder.mul(skip_, i64(unit))  # (pixels from NR_SHORT on)

            def emit(nr):
                def ch_step(cc, acc):
                    xc = builder.add(start, builder.mul(cc, plane_))
                    wc = builder.add(woff_, builder.mul(builder.mul(cc, kk_), i64(per_ch * PANEL)))

                    def tap_step(t, acc):
                        first = builder.add(xc, builder.load(builder.gep(tptr, [t])))
                        later = builder.add(first, jump)
                        wbase = builder.add(wc, builder.mul(t, i64(per_ch * PANEL)))
                        for ci in range(per_ch):
                            row = builder.add(wbase, i64(ci * PANEL))
                            wv = [builder.call(load, [builder.gep(wptr, [builder.add(row, i64(v * LANES))]), align, on,
                                                      zero]) for v in range(cvb)]
                            nxt = [[None] * nr for _ in range(cvb)]
                            for p in range(nr):  # (one broadcast live at a time)
                                at = builder.add(first if p < NR_SHORT else later, i64(p * unit + ci))
                                xs = _splat(builder, builder.load(builder.gep(xptr, [at])))
                                for v in range(cvb):
                                    nxt[v][p] = builder.call(fma, [wv[v], xs, acc[v][p]])
                            acc = nxt
                        _prefetch(builder, wptr, pf_, per_, builder.add(builder.mul(cc, kk_), t))
                        return acc
                    return _accumulating_loop(builder, kk_, cvb, nr, tap_step, "conv.tap", init=acc)

                sums = _accumulating_loop(builder, builder.sdiv(c_, i64(per_ch)), cvb, nr, ch_step, "conv.c",
                                          init=_bias_start(builder, bptr, boff_, mrows_, cvb, nr))
                pixels = []
                for p in range(nr):
                    q = builder.add(q0_, i64(p)) if p < NR_SHORT else builder.add(builder.add(q0_, skip_), i64(p))
                    at = builder.load(builder.gep(pptr, [q]))
                    ok = builder.and_(builder.icmp_signed(">=", at, i64(0)), builder.icmp_signed("<", i64(p), npix_))
                    pixels.append((at, ok))
                _store(builder, sums, cvb, True, True, yoff_, ohw_, npix_, mrows_, rptr, has_res_, yptr, a_, hi_,
                       pixels)

            _by_width(builder, short_, emit)
            return context.get_dummy_value()

        return sig, codegen

    return _tile


_CV1B, _CV2B, _CV1N, _CV2N = (_make_conv_tile(cvb, xb) for xb in (True, False) for cvb in (1, 2))


@njit(**dict(JIT, inline="always"))
def _conv_tile(cvb, xb, wq, woff, xp, taps, kk, plane, c, q0, npix, pix, y, yoff, ohw, mrows, bias, boff, r, has_res,
               a, hi, short, pf, per, skip):
    if xb:
        if cvb == 1:
            _CV1B(wq, woff, xp, taps, kk, plane, c, q0, npix, pix, y, yoff, ohw, mrows, bias, boff, r, has_res, a, hi,
                  short, pf, per, skip)
        else:
            _CV2B(wq, woff, xp, taps, kk, plane, c, q0, npix, pix, y, yoff, ohw, mrows, bias, boff, r, has_res, a, hi,
                  short, pf, per, skip)
    elif cvb == 1:
        _CV1N(wq, woff, xp, taps, kk, plane, c, q0, npix, pix, y, yoff, ohw, mrows, bias, boff, r, has_res, a, hi,
              short, pf, per, skip)
    else:
        _CV2N(wq, woff, xp, taps, kk, plane, c, q0, npix, pix, y, yoff, ohw, mrows, bias, boff, r, has_res, a, hi,
              short, pf, per, skip)


class ConvGeometry:
    """What a blocked k x k conv (k: an int, or (kh, kw): Inception's 1x7 and 7x1 convs) works out once per input
    size: the size of the zero-padded phase planes of x it reads (`pad`: phase plane (a, b) holds the padded
    input's rows a, a + s, ... and columns b, b + s, ...), each tap's offset in them, and where each pixel of the
    rows it runs over (wph wide, of which the first ow are output columns) goes in y."""

    def __init__(self, c, h, wd, k, s, pt, pb, pl, pr, oh, ow, xb):
        unit = BLOCK if xb else 1
        kh, kw = (k, k) if isinstance(k, int) else k
        hph, wph = -(-(h + pt + pb) // s), -(-(wd + pl + pr) // s)
        hph = max(hph, oh + (kh - 1) // s) + (NR + kw) // wph + 2  # rows enough for the last tile's reads
        self.units, self.unit, self.hph, self.wph, self.planes_size = (c // BLOCK if xb else c), unit, hph, wph, (h, wd)
        phase = hph * wph * unit
        self.plane = s * s * phase
        self.planes = None  # (an NCHW input's own planes: `pad`)
        self.taps = frozen(np.array([((ky % s) * s + kx % s) * phase + ((ky // s) * wph + kx // s) * unit
                                     for ky in range(kh) for kx in range(kw)], np.int64))
        q = np.arange(oh * wph + NR)
        row, col = q // wph, q % wph
        self.pix = frozen(np.where((col < ow) & (row < oh), (row * ow + col) * BLOCK, -1).astype(np.int64))


_planes = threading.local()


def pad(x, g: ConvGeometry, k, s, pt, pl) -> np.ndarray:
    """One batch item of x (flat) as g's phase planes, zeros around it; the phases no tap reads (k < s) not
    written. A blocked input's planes go to a buffer every conv of the calling thread shares (`_fill_planes`:
    ResNet50's stride-2 convs had 1-2 MB of planes each, cold in memory every run; 62 -> 57 ms). An NCHW
    input's (strides from 3 and filters of unequal sides come here: `conv_nchw` reads the others in place)
    keep their own buffer, whose zero borders are written once, and get their inside by strided numpy copies."""
    h, wd = g.planes_size
    k = k if isinstance(k, int) else max(k)  # (the phases a tap reads: all of them from k = s on)
    if g.unit == 1:
        if g.planes is None:
            g.planes = np.zeros(g.units * g.plane, np.float32)
        src = x.reshape(g.units, h, wd)
        dst = g.planes.reshape(g.units, s, s, g.hph, g.wph)
        for a in range(min(k, s)):
            iy0 = (a - pt) % s  # the first input row of phase row a: (iy0 + pt) % s == a
            for b in range(min(k, s)):
                ix0 = (b - pl) % s
                part = src[:, iy0::s, ix0::s]
                r0, c0 = (iy0 + pt) // s, (ix0 + pl) // s
                dst[:, a, b, r0:r0 + part.shape[1], c0:c0 + part.shape[2]] = part
        return g.planes
    size = g.units * g.plane
    buf = getattr(_planes, "buffer", None)
    if buf is None or buf.size < size:
        buf = _planes.buffer = np.empty(size, np.float32)
    _fill_planes(x, buf, g.units, h, wd, s, g.hph, g.wph, pt, pl, min(k, s))
    return buf


@njit(**JIT)
def _fill_planes(x, planes, units, h, wd, s, hph, wph, pt, pl, used):
    """The phase planes of a blocked input, every pixel written (zeros outside the input)."""
    phase = hph * wph * BLOCK
    for u in range(units):
        src = u * h * wd * BLOCK
        for a in range(used):
            for b in range(used):
                c_lo = min(wph, max(0, -(-(pl - b) // s)))  # the phase columns whose input column is inside
                c_hi = max(c_lo, min(wph, (wd - 1 + pl - b) // s + 1))
                for r in range(hph):
                    iy = r * s + a - pt
                    row = ((u * s + a) * s + b) * phase + r * wph * BLOCK
                    if iy < 0 or iy >= h:
                        planes[row:row + wph * BLOCK] = 0.0
                        continue
                    planes[row:row + c_lo * BLOCK] = 0.0
                    planes[row + c_hi * BLOCK:row + wph * BLOCK] = 0.0
                    first = src + (iy * wd + c_lo * s + b - pl) * BLOCK
                    for cc in range(c_hi - c_lo):
                        d, f = row + (c_lo + cc) * BLOCK, first + cc * s * BLOCK
                        for lane in range(BLOCK):
                            planes[d + lane] = x[f + lane]


@njit(**dict(JIT, inline="always"))
def _tile_pixels(q, rows, oh, wph):
    """Tile q of `_conv`'s tiles over output rows wph wide: its first pixel, whether it is a short one (7-wide
    outputs: two rows a tile, `rows`; the last one alone when oh is odd) and its pixels."""
    if rows:
        short = 2 * q + 1 == oh
        return 2 * q * wph, short, NR_SHORT if short else NR
    return q * NR, False, min(NR, oh * wph - q * NR)


def _conv(wq, xp, y, bias, r, has_res, a, hi, m, c, taps, pix, plane, wph, oh, ow, xb):
    """y (M x OH x OW, blocked, flat) = act(k x k conv, groups 1, of x + bias (+ r, blocked)) for one batch item,
    x given as its phase planes (`pad`; C channels, blocked if xb: C % 16 == 0) with the tap offsets and pixel
    destinations of `ConvGeometry`; wq from `pack_conv`. Filter panel by panel (planes of over 1 MB and twice the
    filter: tile by tile), NR output pixels at a time over rows wph wide (the columns past ow computed and not
    stored; 7-wide outputs: two rows of NR_SHORT a tile, the second one address further on): every tap of a
    tile is one or two addresses plus constant offsets. (Threaded: the (panel, tile) pairs split in runs over
    the threads.)"""
    nblk = (m + BLOCK - 1) // BLOCK
    kk = taps.shape[0]
    rows = ow == NR_SHORT  # two output rows a tile (the last one alone when oh is odd)
    tiles = (oh + 1) // 2 if rows else (oh * wph + NR - 1) // NR
    panel = PANEL * c * kk
    panels = (nblk + 1) // 2
    steps = (c // BLOCK if xb else c) * kk
    by_tile = _tile_major((c // BLOCK if xb else c) * plane, m * c * kk)  # (x: its phase planes)
    for t in prange(panels * tiles):
        pi, q, pf, per = _schedule(t, panels, tiles, by_tile, panel, steps)
        b = pi * 2
        q0, short, npix = _tile_pixels(q, rows, oh, wph)
        _conv_tile(2 if b + 1 < nblk else 1, xb, wq, pi * panel, xp, taps, kk, plane, c, q0, npix, pix, y,
                   b * BLOCK * oh * ow, oh * ow, min(PANEL, m - b * BLOCK), bias, b * BLOCK, r, has_res, a, hi, short,
                   pf, per, wph - NR_SHORT if rows else 0)


conv = serial_and_threaded(_conv)


def pack_grouped(w: np.ndarray) -> tuple[np.ndarray, int]:
    """A grouped conv's filter (O, 16, k, k), a block of 16 input and 16 output channels a group -> each group's
    filter packed as `pack_conv`'s (blocked input) one after the other; and the floats of one."""
    groups = w.shape[0] // BLOCK
    packed = [pack_conv(w[g * BLOCK:(g + 1) * BLOCK], True) for g in range(groups)]
    return frozen(np.concatenate(packed)), packed[0].size


def _grouped_conv(wq, gsize, xp, y, bias, r, has_res, a, hi, groups, taps, pix, plane, wph, oh, ow):
    """y = act(a grouped k x k conv + bias (+ r)) for one batch item, blocked in and out, each group one block of
    16 input and 16 output channels (RegNet's group width): the tiles of `_conv` for one output block, group g
    reading only block g of x's phase planes (`pad`) and its own filter (`pack_grouped`, gsize floats)."""
    kk = taps.shape[0]
    rows = ow == NR_SHORT
    tiles = (oh + 1) // 2 if rows else (oh * wph + NR - 1) // NR
    for t in prange(groups * tiles):
        g, q = t // tiles, t % tiles
        q0, short, npix = _tile_pixels(q, rows, oh, wph)
        _conv_tile(1, True, wq, g * gsize, xp[g * plane:], taps, kk, plane, BLOCK, q0, npix, pix, y,
                   g * BLOCK * oh * ow, oh * ow, BLOCK, bias, g * BLOCK, r, has_res, a, hi, short, 0, 0,
                   wph - NR_SHORT if rows else 0)


grouped_conv = serial_and_threaded(_grouped_conv)


def _make_nchw_conv_tile(cvb: int, s: int, edge: bool):
    """The k x k conv tile (groups 1, stride s) reading an NCHW input where it lies: no phase planes to fill
    (a network's stem: the planes cost more than the conv's reads, their 0.6 MB written cold every run). NR
    pixels of one output row x cvb output blocks into a blocked y. An edge tile (a window past the row's left
    or right end, or a last tile of fewer pixels) reads zero for the columns outside the row; the driver
    passes the kernel rows inside the input."""

    @intrinsic
    def _tile(typingctx, wq, woff, x, xoff, c, plane, wd, k, ky0, ky1, col0, y, yoff, ohw, npix, mrows, bias, boff,
              r, has_res, a, hi, zero):
        """y at yoff (block b, pixel p0) = act(bias + sum over ch < c, ky0 <= ky < ky1, kx < k of
        wq[woff + ((ch*k + ky)*k + kx)*PANEL + channel] * x[xoff + ch*plane + ky*wd + col0 + kx + p*s] (+ r)),
        for the pixels p < npix (edge tiles: where col0 + kx + p*s is outside [0, wd), zero[0] (0.0) instead)."""
        sig = types.void(wq, woff, x, xoff, c, plane, wd, k, ky0, ky1, col0, y, yoff, ohw, npix, mrows, bias, boff,
                         r, has_res, a, hi, zero)

        def codegen(context, builder, signature, args):
            (_, woff_, _, xoff_, c_, plane_, wd_, k_, ky0_, ky1_, col0_, _, yoff_, ohw_, npix_, mrows_, _, boff_, _,
             has_res_, a_, hi_, _) = args
            ptr = _pointers(context, builder, signature, args)
            wptr, xptr, yptr, bptr, rptr, zptr = ptr[0], ptr[2], ptr[11], ptr[16], ptr[18], ptr[22]
            mod = builder.module
            load = _masked_load(mod, wptr.type)
            fma = _fma(mod)
            align, zero = ir.Constant(_I32, 4), ir.Constant(_VEC, [0.0] * LANES)
            on = ir.Constant(_MASK, [1] * LANES)
            i64 = lambda v: ir.Constant(_I64, v)  # noqa: E731

            def ch_step(ch, acc):
                xc = builder.add(xoff_, builder.mul(ch, plane_))
                wc = builder.add(woff_, builder.mul(builder.mul(ch, builder.mul(k_, k_)), i64(PANEL)))

                def row_step(i, acc):
                    ky = builder.add(ky0_, i)
                    xrow = builder.add(xc, builder.mul(ky, wd_))
                    wrow = builder.add(wc, builder.mul(builder.mul(ky, k_), i64(PANEL)))

                    def tap_step(kx, acc):
                        wv = [builder.call(load, [builder.gep(wptr, [builder.add(builder.add(
                            wrow, builder.mul(kx, i64(PANEL))), i64(v * LANES))]), align, on, zero])
                            for v in range(cvb)]
                        first = builder.add(col0_, kx)  # pixel 0's column
                        nxt = [[None] * NR for _ in range(cvb)]
                        for p in range(NR):
                            at = builder.gep(xptr, [builder.add(xrow, builder.add(first, i64(p * s)))])
                            if edge:  # (a negative column compares above wd unsigned)
                                inside = builder.icmp_unsigned("<", builder.add(first, i64(p * s)), wd_)
                                at = builder.select(inside, at, zptr)
                            xs = _splat(builder, builder.load(at))
                            for b in range(cvb):
                                nxt[b][p] = builder.call(fma, [wv[b], xs, acc[b][p]])
                        return nxt
                    return _accumulating_loop(builder, k_, cvb, NR, tap_step, "nconv.kx", init=acc)
                return _accumulating_loop(builder, builder.sub(ky1_, ky0_), cvb, NR, row_step, "nconv.ky", init=acc)

            sums = _accumulating_loop(builder, c_, cvb, NR, ch_step, "nconv.c",
                                      init=_bias_start(builder, bptr, boff_, mrows_, cvb, NR))
            _store(builder, sums, cvb, True, edge, yoff_, ohw_, npix_, mrows_, rptr, has_res_, yptr, a_, hi_)
            return context.get_dummy_value()

        return sig, codegen

    return _tile


# (output blocks, stride, edge) -> tile
_NCV = {(cvb, s, e): _make_nchw_conv_tile(cvb, s, e) for cvb in (1, 2) for s in (1, 2) for e in (False, True)}
_NCV1S1, _NCV1S1E, _NCV1S2, _NCV1S2E = (_NCV[1, s, e] for s in (1, 2) for e in (False, True))
_NCV2S1, _NCV2S1E, _NCV2S2, _NCV2S2E = (_NCV[2, s, e] for s in (1, 2) for e in (False, True))
NCHW_STRIDES = (1, 2)  # the strides `conv_nchw` takes
_ZERO = frozen(np.zeros(LANES, np.float32))  # what an edge tile reads outside the row


@njit(**dict(JIT, inline="always"))
def _nchw_conv_tile(cvb, s, edge, wq, woff, x, xoff, c, plane, wd, k, ky0, ky1, col0, y, yoff, ohw, npix, mrows,
                    bias, boff, r, has_res, a, hi, zero):
    if cvb == 2:
        if s == 1:
            if edge:
                _NCV2S1E(wq, woff, x, xoff, c, plane, wd, k, ky0, ky1, col0, y, yoff, ohw, npix, mrows, bias, boff, r,
                         has_res, a, hi, zero)
            else:
                _NCV2S1(wq, woff, x, xoff, c, plane, wd, k, ky0, ky1, col0, y, yoff, ohw, npix, mrows, bias, boff, r,
                        has_res, a, hi, zero)
        elif edge:
            _NCV2S2E(wq, woff, x, xoff, c, plane, wd, k, ky0, ky1, col0, y, yoff, ohw, npix, mrows, bias, boff, r,
                     has_res, a, hi, zero)
        else:
            _NCV2S2(wq, woff, x, xoff, c, plane, wd, k, ky0, ky1, col0, y, yoff, ohw, npix, mrows, bias, boff, r,
                    has_res, a, hi, zero)
    elif s == 1:
        if edge:
            _NCV1S1E(wq, woff, x, xoff, c, plane, wd, k, ky0, ky1, col0, y, yoff, ohw, npix, mrows, bias, boff, r,
                     has_res, a, hi, zero)
        else:
            _NCV1S1(wq, woff, x, xoff, c, plane, wd, k, ky0, ky1, col0, y, yoff, ohw, npix, mrows, bias, boff, r,
                    has_res, a, hi, zero)
    elif edge:
        _NCV1S2E(wq, woff, x, xoff, c, plane, wd, k, ky0, ky1, col0, y, yoff, ohw, npix, mrows, bias, boff, r,
                 has_res, a, hi, zero)
    else:
        _NCV1S2(wq, woff, x, xoff, c, plane, wd, k, ky0, ky1, col0, y, yoff, ohw, npix, mrows, bias, boff, r, has_res,
                a, hi, zero)


def _conv_nchw(wq, x, y, bias, r, has_res, a, hi, m, c, h, wd, k, s, pt, pl, oh, ow):
    """y (M x OH x OW, blocked, flat) = act(k x k conv, groups 1, stride s (NCHW_STRIDES), of x (C x H x W,
    NCHW, flat) + bias (+ r, blocked)) for one batch item, x read in place (`_make_nchw_conv_tile`); wq from
    `pack_conv` (NCHW input). Tiles of NR pixels along each output row (the row's last one partial), filter
    panel by panel, or tile by tile for inputs of over 1 MB and twice the filter. (Threaded: the (panel, tile)
    pairs split in runs over the threads.)"""
    nblk = (m + BLOCK - 1) // BLOCK
    per_row = (ow + NR - 1) // NR
    tiles = oh * per_row
    panel, panels = PANEL * c * k * k, (nblk + 1) // 2
    by_tile = _tile_major(c * h * wd, m * c * k * k)
    for t in prange(panels * tiles):
        pi, q, _, _ = _schedule(t, panels, tiles, by_tile, panel, 1)
        b, oy, ox0 = pi * 2, q // per_row, (q % per_row) * NR
        iy0 = oy * s - pt
        col0 = ox0 * s - pl
        npix = min(NR, ow - ox0)
        edge = col0 < 0 or col0 + (NR - 1) * s + k > wd or npix < NR
        _nchw_conv_tile(2 if b + 1 < nblk else 1, s, edge, wq, pi * panel, x, iy0 * wd, c, h * wd, wd, k,
                        max(0, -iy0), min(k, h - iy0), col0, y, b * BLOCK * oh * ow + (oy * ow + ox0) * BLOCK, oh * ow,
                        npix, min(PANEL, m - b * BLOCK), bias, b * BLOCK, r, has_res, a, hi, _ZERO)


conv_nchw = serial_and_threaded(_conv_nchw)


def _make_dw_tile(k: int, s: int, pool: bool = False):
    span = (RD - 1) * s + k  # input columns a tile reads

    @intrinsic
    def _tile(typingctx, x, xrow, wd, col0, npix, ky0, ky1, w, woff, bias, boff, y, yoff, a, hi):
        """RD output pixels of one row and block: y[yoff + 16j + l] = act(bias[boff + l] + sum over taps (i, t)
        with ky0 <= i < ky1 of w[woff + (i*k + t)*16 + l] * x[xrow + (i*wd + col0 + s*j + t)*16 + l]), taps in
        the columns outside 0..wd-1 skipped, for the pixels j < npix. pool: the max over those taps instead (w,
        bias, a, hi unused)."""
        sig = types.void(x, xrow, wd, col0, npix, ky0, ky1, w, woff, bias, boff, y, yoff, a, hi)

        def codegen(context, builder, signature, args):
            (_, xrow_, wd_, col0_, npix_, ky0_, ky1_, _, woff_, _, boff_, _, yoff_, a_, hi_) = args
            ptr = _pointers(context, builder, signature, args)
            xptr, wptr, bptr, yptr = ptr[0], ptr[7], ptr[9], ptr[11]
            mod = builder.module
            load = _masked_load(mod, xptr.type)
            store = _masked_store(mod, yptr.type)
            fma = _fma(mod)
            align, zero = ir.Constant(_I32, 4), ir.Constant(_VEC, [0.0] * LANES)
            lowest = ir.Constant(_VEC, [float("-inf")] * LANES)
            on = ir.Constant(_MASK, [1] * LANES)
            i64 = lambda v: ir.Constant(_I64, v)  # noqa: E731
            # one mask per input column the tile reads: inside the row (the same column, the same load)
            inside = []
            for t in range(span):
                col = builder.add(col0_, i64(t))
                ok = builder.and_(builder.icmp_signed(">=", col, i64(0)), builder.icmp_signed("<", col, wd_))
                inside.append(_splat(builder, ok, _MASK))
            first = builder.add(xrow_, builder.mul(col0_, i64(BLOCK)))
            row_len = builder.mul(wd_, i64(BLOCK))

            def step(i, acc):
                ky = builder.add(ky0_, i)
                base = builder.add(first, builder.mul(ky, row_len))
                wrow = builder.add(woff_, builder.mul(ky, i64(k * BLOCK)))
                cols = [builder.call(load, [builder.gep(xptr, [builder.add(base, i64(t * BLOCK))]), align, inside[t],
                                            lowest if pool else zero]) for t in range(span)]
                acc = [list(a_row) for a_row in acc]
                for t in range(k):
                    if pool:
                        for j in range(RD):
                            v = cols[j * s + t]
                            acc[0][j] = builder.select(builder.fcmp_ordered(">", v, acc[0][j]), v, acc[0][j])
                        continue
                    wv = builder.call(load, [builder.gep(wptr, [builder.add(wrow, i64(t * BLOCK))]), align, on, zero])
                    for j in range(RD):
                        acc[0][j] = builder.call(fma, [cols[j * s + t], wv, acc[0][j]])
                return acc

            sums = _accumulating_loop(builder, builder.sub(ky1_, ky0_), 1, RD, step, "dw.rows",
                                      init=[[lowest] * RD] if pool else None)
            def store_all(act):
                if pool:
                    result = [sums[0][j] for j in range(RD)]
                else:
                    bv = builder.call(load, [builder.gep(bptr, [boff_]), align, on, zero])
                    result = [act(builder.fadd(sums[0][j], bv)) for j in range(RD)]
                for j in range(RD):
                    with builder.if_then(builder.icmp_signed("<", i64(j), npix_)):
                        off = builder.add(yoff_, i64(j * BLOCK))
                        builder.call(store, [result[j], builder.gep(yptr, [off]), align, on])

            if pool:
                store_all(None)
            else:
                _with_activation(builder, a_, hi_, store_all)
            return context.get_dummy_value()

        return sig, codegen

    return _tile


_DW3S1, _DW3S2, _DW5S1, _DW5S2 = (_make_dw_tile(k, s) for k in (3, 5) for s in (1, 2))
_MAX2S2, _MAX3S1, _MAX3S2 = (_make_dw_tile(k, s, pool=True) for k, s in ((2, 2), (3, 1), (3, 2)))


def _depthwise(x, wq, bias, y, k, sh, s, c, h, wd, oh, ow, pt, pl, a, hi):
    """Depthwise k x k (3 or 5), strides sh (rows) and s (columns) 1 or 2, of one blocked batch item (x, y flat;
    C % 16 == 0): wq from `pack_depthwise`, bias of C values; paddings pt/pl before the input (those after
    follow from oh, ow).
    Block by block, output row by output row, RD pixels at a time; the tap rows in the padding not visited.
    (Threaded: the (block, row) pairs split over the threads.)"""
    plane_in, plane_out = h * wd * BLOCK, oh * ow * BLOCK
    for t in prange((c // BLOCK) * oh):
        b, oy = t // oh, t % oh
        iy = oy * sh - pt
        ky0, ky1 = max(0, -iy), min(k, h - iy)
        xrow, woff, boff = b * plane_in + iy * wd * BLOCK, b * k * k * BLOCK, b * BLOCK
        for ox in range(0, ow, RD):
            col0, npix, yoff = ox * s - pl, min(RD, ow - ox), b * plane_out + (oy * ow + ox) * BLOCK
            if k == 3 and s == 1:
                _DW3S1(x, xrow, wd, col0, npix, ky0, ky1, wq, woff, bias, boff, y, yoff, a, hi)
            elif k == 3:
                _DW3S2(x, xrow, wd, col0, npix, ky0, ky1, wq, woff, bias, boff, y, yoff, a, hi)
            elif s == 1:
                _DW5S1(x, xrow, wd, col0, npix, ky0, ky1, wq, woff, bias, boff, y, yoff, a, hi)
            else:
                _DW5S2(x, xrow, wd, col0, npix, ky0, ky1, wq, woff, bias, boff, y, yoff, a, hi)


depthwise = serial_and_threaded(_depthwise)


def _make_pixel_reduce(is_max: bool):
    @intrinsic
    def _reduce(typingctx, x, base, hw, y, yoff):
        """y[yoff + l] = the max (or the mean) over p < hw of x[base + 16p + l], l < 16: four accumulators over
        the pixels, one vector each. A NaN pixel makes the max NaN, as in the reference."""
        sig = types.void(x, base, hw, y, yoff)

        def codegen(context, builder, signature, args):
            _, base_, hw_, _, yoff_ = args
            ptr = _pointers(context, builder, signature, args)
            xptr, yptr = ptr[0], ptr[3]
            load = _masked_load(builder.module, xptr.type)
            store = _masked_store(builder.module, yptr.type)
            align, on = ir.Constant(_I32, 4), ir.Constant(_MASK, [1] * LANES)
            zero = ir.Constant(_VEC, [0.0] * LANES)
            start = ir.Constant(_VEC, [float("-inf") if is_max else 0.0] * LANES)
            i64 = lambda v: ir.Constant(_I64, v)  # noqa: E731

            def add(acc, v):
                if is_max:  # v when above acc or NaN (a NaN acc stays: nothing compares above it)
                    take = builder.or_(builder.fcmp_ordered(">", v, acc), builder.fcmp_unordered("uno", v, v))
                    return builder.select(take, v, acc)
                return builder.fadd(acc, v)

            def pixel(p):
                at = builder.add(base_, builder.mul(p, i64(BLOCK)))
                return builder.call(load, [builder.gep(xptr, [at]), align, on, zero])

            def four(g, acc):
                return [[add(acc[0][j], pixel(builder.add(builder.mul(g, i64(4)), i64(j)))) for j in range(4)]]

            groups = builder.sdiv(hw_, i64(4))
            acc = _accumulating_loop(builder, groups, 1, 4, four, "pool.px", init=[[start] * 4])
            done = builder.mul(groups, i64(4))
            acc = _accumulating_loop(builder, builder.sub(hw_, done), 1, 4,
                                     lambda t, a: [[add(a[0][0], pixel(builder.add(done, t)))] + a[0][1:]],
                                     "pool.rest", init=acc)
            total = add(add(acc[0][0], acc[0][1]), add(acc[0][2], acc[0][3]))
            if not is_max:
                total = builder.fdiv(total, _splat(builder, builder.sitofp(hw_, _F32)))
            builder.call(store, [total, builder.gep(yptr, [yoff_]), align, on])
            return context.get_dummy_value()

        return sig, codegen

    return _reduce


_PIXEL_MAX, _PIXEL_MEAN = _make_pixel_reduce(True), _make_pixel_reduce(False)


@njit(**JIT)
def global_pool(x, y, c, hw, is_max):
    """y (N x C) = the max or the mean over the pixels of each channel of the blocked batch items x (N x C*hw;
    a vector a block: the channels of a pixel lie side by side)."""
    for i in range(x.shape[0]):
        xi, yi = x[i], y[i]
        for b in range(c // BLOCK):
            if is_max:
                _PIXEL_MAX(xi, b * hw * BLOCK, hw, yi, b * BLOCK)
            else:
                _PIXEL_MEAN(xi, b * hw * BLOCK, hw, yi, b * BLOCK)


CHANNEL_OPS = ("mul", "add", "sub", "rsub", "div", "rdiv")  # x (op) v; r: v (op) x


def _make_channel_op(kind: str):
    @intrinsic
    def _op(typingctx, x, base, hw, v, voff, y):
        """y[base + 16p + l] = x[base + 16p + l] (op) v[voff + l] for p < hw, l < 16: a blocked batch item's block
        against one value per channel (a squeeze-excite scale), v's 16 values held in one register."""
        sig = types.void(x, base, hw, v, voff, y)

        def codegen(context, builder, signature, args):
            _, base_, hw_, _, voff_, _ = args
            ptr = _pointers(context, builder, signature, args)
            xptr, vptr, yptr = ptr[0], ptr[3], ptr[5]
            load = _masked_load(builder.module, xptr.type)
            store = _masked_store(builder.module, yptr.type)
            align, on = ir.Constant(_I32, 4), ir.Constant(_MASK, [1] * LANES)
            zero = ir.Constant(_VEC, [0.0] * LANES)
            i64 = lambda k: ir.Constant(_I64, k)  # noqa: E731
            vv = builder.call(_masked_load(builder.module, vptr.type), [builder.gep(vptr, [voff_]), align, on, zero])
            apply = {"mul": lambda a: builder.fmul(a, vv), "add": lambda a: builder.fadd(a, vv),
                     "sub": lambda a: builder.fsub(a, vv), "rsub": lambda a: builder.fsub(vv, a),
                     "div": lambda a: builder.fdiv(a, vv), "rdiv": lambda a: builder.fdiv(vv, a)}[kind]

            def pixel(p, _):
                at = builder.gep(xptr, [builder.add(base_, builder.mul(p, i64(BLOCK)))])
                out = builder.gep(yptr, [builder.add(base_, builder.mul(p, i64(BLOCK)))])
                builder.call(store, [apply(builder.call(load, [at, align, on, zero])), out, align, on])
                return []

            _accumulating_loop(builder, hw_, 0, 0, pixel, "chan.px")
            return context.get_dummy_value()

        return sig, codegen

    return _op


_CH_MUL, _CH_ADD, _CH_SUB, _CH_RSUB, _CH_DIV, _CH_RDIV = (_make_channel_op(k) for k in CHANNEL_OPS)


@intrinsic
def _affine(typingctx, x, base, hw, m, a, off, y, lo, hi):
    """y[base + 16p + l] = act(x[base + 16p + l] * m[off + l] + a[off + l]) for p < hw, l < 16: one block of a
    blocked batch item through a per-channel affine map (a batch_norm) and the activation (lo, hi)
    (`act_bounds`); m's and a's 16 values held in registers."""
    sig = types.void(x, base, hw, m, a, off, y, lo, hi)

    def codegen(context, builder, signature, args):
        _, base_, hw_, _, _, off_, _, lo_, hi_ = args
        ptr = _pointers(context, builder, signature, args)
        xptr, mptr, aptr, yptr = ptr[0], ptr[3], ptr[4], ptr[6]
        load = _masked_load(builder.module, xptr.type)
        store = _masked_store(builder.module, yptr.type)
        align, on = ir.Constant(_I32, 4), ir.Constant(_MASK, [1] * LANES)
        zero = ir.Constant(_VEC, [0.0] * LANES)
        i64 = lambda k: ir.Constant(_I64, k)  # noqa: E731
        fma = _fma(builder.module)
        mv = builder.call(load, [builder.gep(mptr, [off_]), align, on, zero])
        av = builder.call(load, [builder.gep(aptr, [off_]), align, on, zero])

        def emit(act):
            def pixel(p, _):
                at = builder.add(base_, builder.mul(p, i64(BLOCK)))
                v = builder.call(fma, [builder.call(load, [builder.gep(xptr, [at]), align, on, zero]), mv, av])
                builder.call(store, [act(v), builder.gep(yptr, [at]), align, on])
                return []
            _accumulating_loop(builder, hw_, 0, 0, pixel, "affine.px")

        _with_activation(builder, lo_, hi_, emit)
        return context.get_dummy_value()

    return sig, codegen


def _affine_blocks(x, m, a, y, groups, blocks, hw, lo, hi):
    """y = act(x * m + a) per channel on blocked tensors (x, y flat: groups batch items of blocks blocks of hw
    pixels; m, a: 16 * blocks values), the activation (lo, hi) as `act_bounds` gives it."""
    for g in prange(groups * blocks):
        _affine(x, g * hw * BLOCK, hw, m, a, (g % blocks) * BLOCK, y, lo, hi)


affine = serial_and_threaded(_affine_blocks)


@njit(**JIT)
def channel_op(x, v, vstride, y, groups, blocks, hw, kind):
    """y = x (op) v per channel on blocked tensors (x, y flat: groups batch items of blocks blocks of hw pixels),
    v: 16 * blocks values, vstride apart per batch item (0: the same for all); kind: index in CHANNEL_OPS."""
    for g in range(groups * blocks):
        base, voff = g * hw * BLOCK, (g // blocks) * vstride + (g % blocks) * BLOCK
        if kind == 0:
            _CH_MUL(x, base, hw, v, voff, y)
        elif kind == 1:
            _CH_ADD(x, base, hw, v, voff, y)
        elif kind == 2:
            _CH_SUB(x, base, hw, v, voff, y)
        elif kind == 3:
            _CH_RSUB(x, base, hw, v, voff, y)
        elif kind == 4:
            _CH_DIV(x, base, hw, v, voff, y)
        else:
            _CH_RDIV(x, base, hw, v, voff, y)


def _max_pool_tiles(x, y, c, h, wd, oh, ow, k, s, pt, pl):
    """k x k max pooling, stride s (2x2/2, 3x3/1, 3x3/2), through the depthwise tiles (taking the max)."""
    plane_in, plane_out = h * wd * BLOCK, oh * ow * BLOCK
    for t in prange((c // BLOCK) * oh):
        b, oy = t // oh, t % oh
        iy = oy * s - pt
        ky0, ky1 = max(0, -iy), min(k, h - iy)
        xrow = b * plane_in + iy * wd * BLOCK
        for ox in range(0, ow, RD):
            col0, npix, yoff = ox * s - pl, min(RD, ow - ox), b * plane_out + (oy * ow + ox) * BLOCK
            if k == 2:
                _MAX2S2(x, xrow, wd, col0, npix, ky0, ky1, x, 0, x, 0, y, yoff, 0.0, 0.0)
            elif s == 1:
                _MAX3S1(x, xrow, wd, col0, npix, ky0, ky1, x, 0, x, 0, y, yoff, 0.0, 0.0)
            else:
                _MAX3S2(x, xrow, wd, col0, npix, ky0, ky1, x, 0, x, 0, y, yoff, 0.0, 0.0)


_max_pool_by_tiles = serial_and_threaded(_max_pool_tiles)


@njit(**JIT)
def _max_pool_by_pixels(x, y, c, h, wd, oh, ow, kh, kw, sh, sw, pt, pl):
    acc = np.empty(BLOCK, np.float32)
    for b in range(c // BLOCK):
        xb, yb = b * h * wd * BLOCK, b * oh * ow * BLOCK
        for oy in range(oh):
            y0, y1 = max(oy * sh - pt, 0), min(oy * sh - pt + kh, h)
            for ox in range(ow):
                x0, x1 = max(ox * sw - pl, 0), min(ox * sw - pl + kw, wd)
                acc[:] = -np.inf
                for iy in range(y0, y1):
                    for ix in range(x0, x1):
                        at = xb + (iy * wd + ix) * BLOCK
                        for lane in range(BLOCK):
                            acc[lane] = max(acc[lane], x[at + lane])
                at = yb + (oy * ow + ox) * BLOCK
                for lane in range(BLOCK):
                    y[at + lane] = acc[lane]


@njit(**JIT)
def _avg_pool(x, y, c, h, wd, oh, ow, kh, kw, sh, sw, pt, pl, exclusive, ph, pw):
    """kh x kw average pooling of one blocked batch item (x, y flat), as `conv._pool` counts: the inputs inside
    the window (exclusive) or the window clipped to the declared padded extent ph x pw (the ceil-mode
    overhang never counted); a pixel's 16 channels at once."""
    acc = np.empty(BLOCK, np.float32)
    for b in range(c // BLOCK):
        xb, yb = b * h * wd * BLOCK, b * oh * ow * BLOCK
        for oy in range(oh):
            y0 = oy * sh - pt
            rows = min(y0 + kh, h) - max(y0, 0) if exclusive else min(y0 + kh, ph - pt) - max(y0, -pt)
            for ox in range(ow):
                x0 = ox * sw - pl
                cols = min(x0 + kw, wd) - max(x0, 0) if exclusive else min(x0 + kw, pw - pl) - max(x0, -pl)
                acc[:] = 0.0
                for iy in range(max(y0, 0), min(y0 + kh, h)):
                    for ix in range(max(x0, 0), min(x0 + kw, wd)):
                        at = xb + (iy * wd + ix) * BLOCK
                        for lane in range(BLOCK):
                            acc[lane] += x[at + lane]
                div = rows * cols
                at = yb + (oy * ow + ox) * BLOCK
                for lane in range(BLOCK):
                    y[at + lane] = acc[lane] / div if div > 0 else 0.0


def avg_pool(x, y, c, h, wd, oh, ow, kh, kw, sh, sw, pt, pb, pl, pr, exclusive):
    """Average pooling of one blocked batch item (x, y flat): `_avg_pool`."""
    _avg_pool(x, y, c, h, wd, oh, ow, kh, kw, sh, sw, pt, pl, exclusive, h + pt + pb, wd + pl + pr)


def max_pool(x, y, c, h, wd, oh, ow, kh, kw, sh, sw, pt, pl):
    """kh x kw max pooling of one blocked batch item (x, y flat), stride (sh, sw), paddings pt/pl before the
    input; the window clipped to the input (each holds at least one input). 2x2 stride 2 and 3x3 stride 1 or
    2 as the depthwise tiles do it (taking the max), other windows pixel by pixel."""
    if kh == kw and sh == sw and ((kh == 2 and sh == 2) or (kh == 3 and sh in (1, 2))):
        _max_pool_by_tiles(x, y, c, h, wd, oh, ow, kh, sh, pt, pl)
    else:
        _max_pool_by_pixels(x, y, c, h, wd, oh, ow, kh, kw, sh, sw, pt, pl)


# --- reordering between NCHW and blocked -------------------------------------------------------------------

@intrinsic
def _reorder_tile(typingctx, src, soff, sstride, nrows, dst, doff, dstride, ncols):
    """A 16 x 16 transpose through registers: rows r < nrows of src (src[soff + r*sstride + l], lanes l < ncols)
    to dst[doff + l*dstride + r] for l < ncols, r < nrows (the missing rows read as zeros, not stored). NCHW ->
    blocked: rows are channels, lanes pixels; blocked -> NCHW: rows are pixels, lanes channels. numpy's
    strided copy of the same moves an element at a time (an NCHW 96 x 160 x 160 map: 3.9 ms)."""
    sig = types.void(src, soff, sstride, nrows, dst, doff, dstride, ncols)

    def codegen(context, builder, signature, args):
        _, soff_, sstride_, nrows_, _, doff_, dstride_, ncols_ = args
        ptr = _pointers(context, builder, signature, args)
        sptr, dptr = ptr[0], ptr[4]
        load, store = _masked_load(builder.module, sptr.type), _masked_store(builder.module, dptr.type)
        align, zero = ir.Constant(_I32, 4), ir.Constant(_VEC, [0.0] * LANES)
        i64 = lambda v: ir.Constant(_I64, v)  # noqa: E731
        lanes = _lane_mask(builder, i64(0), ncols_)
        rows = []
        for r in range(LANES):
            on = builder.and_(lanes, _splat(builder, builder.icmp_signed("<", i64(r), nrows_), _MASK))
            at = builder.gep(sptr, [builder.add(soff_, builder.mul(sstride_, i64(r)))])
            rows.append(builder.call(load, [at, align, on, zero]))
        written = _lane_mask(builder, i64(0), nrows_)
        for c, col in enumerate(_transpose(builder, rows)):
            on = builder.and_(written, _splat(builder, builder.icmp_signed("<", i64(c), ncols_), _MASK))
            at = builder.gep(dptr, [builder.add(doff_, builder.mul(dstride_, i64(c)))])
            builder.call(store, [col, at, align, on])
        return context.get_dummy_value()

    return sig, codegen


def _to_blocked(x, y, c, h, wd, rows, cols, pt, pl):
    """The NCHW batch item x (C x h x wd, flat) into the blocked y (ceil(C/16) blocks of rows x cols pixels,
    flat) at row pt, column pl of each block; the rest of y (its padding, the channels past C) left as it is."""
    blocks = (c + BLOCK - 1) // BLOCK
    for q in prange(blocks * h):
        b, iy = q // h, q % h
        for x0 in range(0, wd, LANES):
            _reorder_tile(x, (b * BLOCK * h + iy) * wd + x0, h * wd, min(BLOCK, c - b * BLOCK),
                          y, ((b * rows + pt + iy) * cols + pl + x0) * BLOCK, BLOCK, min(LANES, wd - x0))


to_blocked = serial_and_threaded(_to_blocked)


def _to_nchw(x, y, c, hw):
    """The first C channels of the blocked batch item x (whole blocks of hw pixels, flat) into the NCHW y (C x
    hw, flat)."""
    blocks = (c + BLOCK - 1) // BLOCK
    for q in prange(blocks):
        for p0 in range(0, hw, LANES):
            _reorder_tile(x, (q * hw + p0) * BLOCK, BLOCK, min(LANES, hw - p0),
                          y, q * BLOCK * hw + p0, hw, min(BLOCK, c - q * BLOCK))


to_nchw = serial_and_threaded(_to_nchw)
