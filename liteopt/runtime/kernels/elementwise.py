"""cpu kernels of the element-wise family.

Every op runs one numba loop over the broadcast output. The operands are passed flat (contiguous 1-D)
with, per operand, its element stride along each output dim (0 where it is broadcast); `_layout` drops
size-1 dims and merges adjacent dims along which every operand is contiguous, so same-shape and
scalar operands become one flat loop and a per-channel operand (N, C, H, W) x (1, C, 1, 1) becomes a
loop over (N, C, H*W). The loop walks the outer dims with an odometer and runs the last dim inline.

The op is chosen by a code (tables below). Floats are computed in their own dtype, integers in int64
(stored back with wrap-around, as numpy and onnxruntime do); keeping the two apart keeps numba from
unifying an integer result with a float one (which would lose int64 precision).
"""
from __future__ import annotations

import numpy as np

from ...ir import OPS
from ...ir.ops.activation import apply_act
from . import Blocked, _blocked, kernel
from ._util import JIT, attrs_bound, frozen, in_place, njit, per_size
from .conv_fast import ACT_CODES, _act, _act_row

# division by zero gives inf/nan (float) instead of raising; integer division by zero is guarded below
EJIT = dict(JIT, error_model="numpy")

ADD, SUB, MUL, DIV, MAX, MIN, POW, MOD, FMOD = range(9)
ARITH = {"elementwise_add": ADD, "elementwise_sub": SUB, "elementwise_mul": MUL, "elementwise_div": DIV,
         "elementwise_max": MAX, "elementwise_min": MIN, "elementwise_pow": POW, "elementwise_mod": MOD}
COMPARE = {"equal": 0, "greater_than": 1, "greater_equal": 2, "less_than": 3, "less_equal": 4,
           "logical_and": 5, "logical_or": 6}
FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
INTS = tuple(np.dtype(t) for t in (np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32))


# --- layout: broadcast strides, collapsed -------------------------------------------------------

def _layout(shape: tuple, shapes: list[tuple]) -> tuple[np.ndarray, np.ndarray]:
    """(dims, strides[k, d]): the output `shape` without size-1 dims and with mergeable neighbours merged,
    and each (contiguous) array's element stride along each of those dims (0 where it broadcasts), the arrays
    given by their shapes."""
    rank = len(shape)
    per = []
    for a in shapes:
        st = [0] * rank
        step = 1
        for d in range(1, len(a) + 1):
            if a[-d] != 1:
                st[rank - d] = step
            step *= a[-d]
        per.append(st)
    dims: list[int] = []
    strides: list[list[int]] = []
    for d, n in enumerate(shape):
        if n == 1:
            continue
        col = [st[d] for st in per]
        if dims and all(p == s * n for p, s in zip(strides[-1], col)):
            dims[-1] *= n
            strides[-1] = col
        else:
            dims.append(n)
            strides.append(col)
    if not dims:
        dims, strides = [1], [[0] * len(shapes)]
    return np.array(dims, np.int64), np.array(strides, np.int64).T.copy()


@njit(inline="always", **JIT)
def _advance(idx, dims, strides, offs):
    """Odometer step over dims[:-1]: the next row's start offset of every operand."""
    for d in range(dims.size - 2, -1, -1):
        idx[d] += 1
        for k in range(offs.size):
            offs[k] += strides[k, d]
        if idx[d] < dims[d]:
            return
        for k in range(offs.size):
            offs[k] -= strides[k, d] * dims[d]
        idx[d] = 0


def _rows(dims):
    return int(np.prod(dims[:-1])) if dims.size > 1 else 1


# --- scalar ops -------------------------------------------------------------------------------------

@njit(inline="always", **EJIT)
def _arith_float(a, b, code):
    """One float op; NaN propagates through max/min (like numpy and onnxruntime)."""
    if code == ADD:
        return a + b
    if code == SUB:
        return a - b
    if code == MUL:
        return a * b
    if code == DIV:
        return a / b
    if code == MAX:
        return a if a >= b or a != a else b
    if code == MIN:
        return a if a <= b or a != a else b
    if code == POW:
        return a ** b
    r = np.fmod(a, b)
    if code == MOD and r != 0 and (r < 0) != (b < 0):
        r += b
    return r


@njit(inline="always", **EJIT)
def _arith_int(a, b, code):
    """One int64 op: division truncates towards zero; x / 0 and x mod 0 are 0; pow goes through float64."""
    if code == ADD:
        return a + b
    if code == SUB:
        return a - b
    if code == MUL:
        return a * b
    if code == MAX:
        return a if a >= b else b
    if code == MIN:
        return a if a <= b else b
    if code == POW:
        return np.int64(np.float64(a) ** np.float64(b))
    if b == 0:
        return a * 0
    if code == DIV:
        q = abs(a) // abs(b)
        return q if (a >= 0) == (b >= 0) else -q
    if code == MOD:
        return a % b
    r = abs(a) % abs(b)
    return r if a >= 0 else -r


@njit(inline="always", **JIT)
def _compare(a, b, code):
    if code == 0:
        return a == b
    if code == 1:
        return a > b
    if code == 2:
        return a >= b
    if code == 3:
        return a < b
    if code == 4:
        return a <= b
    if code == 5:
        return bool(a) and bool(b)
    return bool(a) or bool(b)


# --- loops --------------------------------------------------------------------------------------------

@njit(inline="always", **EJIT)
def _row_float(out, a, b, sa, sb, code):
    """`_row_float_body`, handed out itself for an operand whose memory it is (`_util.in_place`: a residual
    add of 64 x 56 x 56 in place 67 -> 25 us)."""
    if sa and in_place(a, out):
        _row_float_body(out, out, b, sa, sb, code)
    elif sb and in_place(b, out):
        _row_float_body(out, a, out, sa, sb, code)
    else:
        _row_float_body(out, a, b, sa, sb, code)


@njit(inline="always", **EJIT)
def _row_float_body(out, a, b, sa, sb, code):
    """out = a (op) b over one contiguous row (sa / sb: 0 when that operand is one broadcast value). The
    four common ops get a loop each, so that LLVM vectorizes them; the others go through _arith_float."""
    n = out.size
    if sa and sb:
        if code == ADD:
            for i in range(n):
                out[i] = a[i] + b[i]
        elif code == MUL:
            for i in range(n):
                out[i] = a[i] * b[i]
        elif code == SUB:
            for i in range(n):
                out[i] = a[i] - b[i]
        elif code == DIV:
            for i in range(n):
                out[i] = a[i] / b[i]
        else:
            for i in range(n):
                out[i] = _arith_float(a[i], b[i], code)
    elif sa:
        bv = b[0]
        if code == ADD:
            for i in range(n):
                out[i] = a[i] + bv
        elif code == MUL:
            for i in range(n):
                out[i] = a[i] * bv
        elif code == SUB:
            for i in range(n):
                out[i] = a[i] - bv
        elif code == DIV:
            for i in range(n):
                out[i] = a[i] / bv
        else:
            for i in range(n):
                out[i] = _arith_float(a[i], bv, code)
    else:
        av = a[0]
        if code == ADD:
            for i in range(n):
                out[i] = av + b[i]
        elif code == MUL:
            for i in range(n):
                out[i] = av * b[i]
        else:
            for i in range(n):
                out[i] = _arith_float(av, b[i], code)


BLOCK = 4096  # a fused activation runs on each block of a row while it is still in L1


@njit(**EJIT)
def _float_loop(out, a, b, dims, strides, rows, code, act, alpha):
    idx = np.zeros(dims.size, np.int64)
    offs = np.zeros(3, np.int64)
    n = dims[-1]
    so, sa, sb = strides[0, -1], strides[1, -1], strides[2, -1]
    for _ in range(rows):
        o, ia, ib = offs[0], offs[1], offs[2]
        if so == 1 and sa <= 1 and sb <= 1:  # contiguous rows: slices, so that LLVM vectorizes
            for s0 in range(0, n, BLOCK):
                m = min(BLOCK, n - s0)
                _row_float(out[o + s0:o + s0 + m], a[ia + s0:ia + s0 + m] if sa else a[ia:ia + 1],
                           b[ib + s0:ib + s0 + m] if sb else b[ib:ib + 1], sa, sb, code)
                if act:
                    _act_row(out[o + s0:o + s0 + m], act, alpha)
        else:
            for i in range(n):
                out[o + i * so] = _arith_float(a[ia + i * sa], b[ib + i * sb], code)
            if act:
                for i in range(n):
                    out[o + i * so] = _act(out[o + i * so], act, alpha)
        _advance(idx, dims, strides, offs)


@njit(**EJIT)
def _per_row_loop(out, x, v, rows, n, code, v_first, act, alpha):
    """out[r*n + i] = act(x[r*n + i] (op) v[r]) (v_first: v[r] (op) x[...]) for ADD/SUB/MUL/DIV: a per-channel
    operand (1, C, H, W) x (1, C, 1, 1), or one value (rows = 1). A row's loop vectorizes; the general loop's
    row slices cost more than a squeeze-excite multiply's short rows (200 rows of 192: 9 -> 4.5 us). In place
    the body gets out twice (`_util.in_place`: 576 rows of 196 32 -> 9 us)."""
    if in_place(x, out):
        _per_row(out, out, v, rows, n, code, v_first, act, alpha)
    else:
        _per_row(out, x, v, rows, n, code, v_first, act, alpha)


@njit(inline="always", **EJIT)
def _per_row(out, x, v, rows, n, code, v_first, act, alpha):
    for r in range(rows):
        s = v[r]
        base = r * n
        if code == MUL:
            for i in range(n):
                out[base + i] = x[base + i] * s
        elif code == ADD:
            for i in range(n):
                out[base + i] = x[base + i] + s
        elif code == SUB:
            if v_first:
                for i in range(n):
                    out[base + i] = s - x[base + i]
            else:
                for i in range(n):
                    out[base + i] = x[base + i] - s
        elif v_first:
            for i in range(n):
                out[base + i] = s / x[base + i]
        else:
            for i in range(n):
                out[base + i] = x[base + i] / s
        if act:
            for s0 in range(0, n, BLOCK):
                _act_row(out[base + s0:base + min(n, s0 + BLOCK)], act, alpha)


@njit(**dict(JIT, fastmath=True))
def _act_inplace(y, act, alpha):
    for s0 in range(0, y.size, BLOCK):
        _act_row(y[s0:s0 + BLOCK], act, alpha)


@njit(**EJIT)
def _int_loop(out, a, b, dims, strides, rows, code):
    idx = np.zeros(dims.size, np.int64)
    offs = np.zeros(3, np.int64)
    n = dims[-1]
    so, sa, sb = strides[0, -1], strides[1, -1], strides[2, -1]
    for _ in range(rows):
        o, ia, ib = offs[0], offs[1], offs[2]
        for i in range(n):
            out[o + i * so] = _arith_int(np.int64(a[ia + i * sa]), np.int64(b[ib + i * sb]), code)
        _advance(idx, dims, strides, offs)


@njit(**JIT)
def _compare_loop(out, a, b, dims, strides, rows, code):
    idx = np.zeros(dims.size, np.int64)
    offs = np.zeros(3, np.int64)
    n = dims[-1]
    so, sa, sb = strides[0, -1], strides[1, -1], strides[2, -1]
    for _ in range(rows):
        o, ia, ib = offs[0], offs[1], offs[2]
        for i in range(n):
            out[o + i * so] = _compare(a[ia + i * sa], b[ib + i * sb], code)
        _advance(idx, dims, strides, offs)


@njit(**JIT)
def _where_loop(out, c, a, b, dims, strides, rows):
    idx = np.zeros(dims.size, np.int64)
    offs = np.zeros(4, np.int64)
    n = dims[-1]
    so, sc, sa, sb = strides[0, -1], strides[1, -1], strides[2, -1], strides[3, -1]
    for _ in range(rows):
        o, ic, ia, ib = offs[0], offs[1], offs[2], offs[3]
        for i in range(n):
            out[o + i * so] = a[ia + i * sa] if c[ic + i * sc] else b[ib + i * sb]
        _advance(idx, dims, strides, offs)


# --- wrappers -----------------------------------------------------------------------------------------

def _prepare(out, dtype, *operands):
    """(result array, its flat view, flat contiguous operands, dims, strides, rows) for the broadcast."""
    shape = np.broadcast_shapes(*(a.shape for a in operands))
    res = out if out is not None else np.empty(shape, dtype)
    if not res.flags.c_contiguous:
        res = np.empty(shape, dtype)
    flats = [frozen(np.ascontiguousarray(a).reshape(-1)) for a in operands]  # one signature, constants or not
    dims, strides = _layout(shape, [res.shape, *(a.shape for a in operands)])
    return res, res.reshape(-1), flats, dims, strides, _rows(dims)


def _finish(res, out):
    if out is not None and res is not out:
        out[...] = res
        return out
    return res


def _run_arith(name, code, x, y, act_type, act_alpha, out):
    """One binary op in x's dtype (see the module docstring); None when numba does not handle the dtype."""
    if x.dtype in INTS and code == POW:  # integers: pow in float64, truncated (see the op's doc)
        with np.errstate(invalid="ignore"):
            r = _run_arith(name, code, x.astype(np.float64), y.astype(np.float64), "", 0.0, None).astype(x.dtype)
        return _finish(apply_act(r, act_type, act_alpha), out)
    y = y.astype(x.dtype, copy=False)
    res, flat, (fx, fy), dims, strides, rows = _prepare(out, x.dtype, x, y)
    act = ACT_CODES.get(act_type, -1) if x.dtype in FLOATS else -1
    if res.size:
        if x.dtype in FLOATS:
            _float_loop(flat, fx, fy, dims, strides, rows, code, max(act, 0), float(act_alpha))
        else:
            _int_loop(flat, fx, fy, dims, strides, rows, code)
    if act_type and act < 0:
        res[...] = apply_act(res, act_type, act_alpha)
    return _finish(res, out)


def _arith_kernel(name, code):
    def run(x, y, *, act_type, act_alpha, out=None, **attrs):
        c = FMOD if attrs.get("fmod") else code
        if x.dtype not in FLOATS + INTS:
            return _finish(OPS[name].run(x, y, act_type=act_type, act_alpha=act_alpha, **attrs)[0], out)
        return _run_arith(name, c, x, y, act_type, act_alpha, out)
    run.__name__ = name
    return run


def _arith_prepare(name, code):
    """float32 operands and an arena output (the common case in a network): the broadcast layout worked out
    once per pair of input shapes, so that a call is the numba loop and little else (the generic path spends
    ~15 us of Python on it: MobileNetV3's squeeze-excite multiplies took 3x as long as their loops)."""
    generic = _arith_kernel(name, code)

    def prepare(consts, attrs):
        c = FMOD if attrs.get("fmod") else code
        act = ACT_CODES.get(attrs["act_type"], -1)
        if act < 0:
            return generic
        alpha = float(attrs["act_alpha"])
        plans: dict = {}

        def plan(xs, ys):
            """(output shape, whether the per-row loop runs it, the loop's arguments after out, x, y): the
            per-row loop for ADD/SUB/MUL/DIV of a full operand and one value per row of it, else the general
            loop."""
            shape = np.broadcast_shapes(xs, ys)
            dims, strides = _layout(shape, [shape, xs, ys])
            if c in (ADD, SUB, MUL, DIV):
                n, rows = int(dims[-1]), _rows(dims)
                lead = dims.size == 2 and tuple(strides[0]) == (n, 1)
                for k, v_first in ((2, False), (1, True)):  # y per row, or x per row
                    full, per = strides[3 - k], strides[k]
                    if (dims.size == 1 and tuple(full) == (1,) and tuple(per) == (0,)) or \
                            (lead and tuple(full) == (n, 1) and tuple(per) == (1, 0)):
                        return shape, True, (rows, n, v_first)
            return shape, False, (dims, strides, _rows(dims))

        @attrs_bound
        def run(x, y, *, out=None, **_):
            if (out is None or x.dtype != np.float32 or y.dtype != np.float32 or not out.flags.c_contiguous
                    or not x.flags.c_contiguous or not y.flags.c_contiguous):
                return generic(x, y, out=out, **attrs)
            shape, per_row, args = per_size(plans, (x.shape, y.shape), lambda: plan(x.shape, y.shape))
            if out.shape != shape:
                return generic(x, y, out=out, **attrs)
            if out.size:
                fo, fx, fy = out.reshape(-1), frozen(x.reshape(-1)), frozen(y.reshape(-1))
                if per_row:
                    rows, n, v_first = args
                    _per_row_loop(fo, fx if not v_first else fy, fy if not v_first else fx, rows, n, c, v_first,
                                  act, alpha)
                else:
                    _float_loop(fo, fx, fy, *args, c, act, alpha)
            return out

        if c in (ADD, SUB, MUL, DIV):
            run.blocked = Blocked(free=(), tied=(), variant=None, for_node=lambda graph, node: _per_channel_decl(
                graph, node, run, lambda full, v_first: _blocked_per_channel(run, full, v_first, c, act, alpha)))
        return run
    return prepare


def _per_channel_decl(graph, node, run, make):
    """The blocked declaration of a binary op on a 4-D tensor with whole blocks of 16 channels: with a second
    input of the same shape (a residual add after the activation: YOLOv8's bottlenecks), both tied to the
    output's layout and `run` as it is (it walks the same bytes in either layout); with one value per channel
    ((1, C, 1, 1), (C, 1, 1); a batch's squeeze-excite scales (N, C, 1, 1)) or one value in all, the full input
    tied to the output's layout, the other free (its bytes are the same in both layouts), `make`'s variant.
    None for other shapes."""
    t = graph.tensors
    shapes = [t[i].shape for i in node.inputs[:2]]
    out = t[node.outputs[0]].shape
    if None in shapes or out is None or len(out) != 4 or not isinstance(out[1], int) or out[1] % 16:
        return None
    if tuple(shapes[0]) == tuple(shapes[1]) == tuple(out):
        return Blocked(free=(), tied=(0, 1), variant=lambda blocked_inputs, out_blocked: run)
    for full, other in ((0, 1), (1, 0)):
        s = shapes[other]
        s4 = (1,) * (4 - len(s)) + tuple(s) if len(s) <= 4 else None
        per_channel = s4 in ((1, out[1], 1, 1), (out[0], out[1], 1, 1), (1, 1, 1, 1))
        if tuple(shapes[full]) == tuple(out) and per_channel:
            return Blocked(free=(other,), tied=(full,), variant=make(full, full == 1))
    return None


def _blocked_per_channel(run, full, v_first, code, act, alpha):
    """variant(blocked inputs, output blocked) for `_per_channel_decl`: the full input blocked ->
    `_blocked.channel_op` (one register holds a block's 16 values; a numba loop over the 16 lanes did not
    vectorize: 9 -> 2.6 us on 576 channels of 7x7)."""
    name = {MUL: "mul", ADD: "add", SUB: "sub", DIV: "div"}[code]
    kind = _blocked.CHANNEL_OPS.index("r" + name if v_first and code in (SUB, DIV) else name)

    def variant(blocked_inputs, out_blocked):
        if full not in blocked_inputs:
            return run

        @attrs_bound
        def blocked(x, y, *, out=None, **_):
            a, v = (y, x) if v_first else (x, y)
            n, ch, h, w = a.shape
            res = out if out is not None else np.empty(a.shape, np.float32)
            vals = np.ascontiguousarray(v, np.float32).reshape(-1)
            if vals.size == 1:
                vals = np.full(ch, vals[0], np.float32)
            flat = res.reshape(-1)
            _blocked.channel_op(frozen(a.reshape(-1)), frozen(vals), ch if vals.size > ch else 0, flat, n, ch // 16,
                                h * w, kind)
            if act:
                _act_inplace(flat, act, alpha)
            return res
        return blocked
    return variant


for _name, _code in ARITH.items():
    kernel(_name, out=True, prepare=_arith_prepare(_name, _code))(_arith_kernel(_name, _code))


def _compare_kernel(name, code):
    def run(x, y, out=None):
        if x.dtype == np.float16:
            return _finish(OPS[name].run(x, y)[0], out)
        res, flat, (fx, fy), dims, strides, rows = _prepare(out, np.bool_, x, y.astype(x.dtype, copy=False))
        if res.size:
            _compare_loop(flat, fx, fy, dims, strides, rows, code)
        return _finish(res, out)
    run.__name__ = name
    return run


for _name, _code in COMPARE.items():
    kernel(_name, out=True)(_compare_kernel(_name, _code))


@kernel("where", out=True)
def where(cond, x, y, out=None):
    """x where cond else y, broadcasting all three."""
    if x.dtype == np.float16:
        return _finish(OPS["where"].run(cond, x, y)[0], out)
    res, flat, (fc, fx, fy), dims, strides, rows = _prepare(out, x.dtype, cond.astype(np.bool_, copy=False), x,
                                                             y.astype(x.dtype, copy=False))
    if res.size:
        _where_loop(flat, fc, fx, fy, dims, strides, rows)
    return _finish(res, out)


_add = _arith_kernel("elementwise_add", ADD)


@kernel("sum", out=True)
def sum_(*xs, out=None):
    """x0 + x1 + ... as a chain of adds in x0's dtype; the last add writes into `out`."""
    if len(xs) == 1:
        return _finish(np.array(xs[0]), out)
    acc = xs[0]
    for k, x in enumerate(xs[1:]):
        acc = _add(acc, x, act_type="", act_alpha=0.0, out=out if k == len(xs) - 2 else None)
    return acc
