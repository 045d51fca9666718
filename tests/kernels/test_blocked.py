"""The channel-blocked (NCHW16c) kernels against the numpy references, through the kernels' own `blocked`
declarations as the runtime's layout planner calls them (pointwise convs in every layout pair, k x k convs,
depthwise convs, max and global pooling, concat; serial and threaded), and the planner itself on networks
checked against onnxruntime (which tensors it blocks, symbolic sizes, which pool gets the threads)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from onnx import helper

from helpers import assert_close, check_model, convert, make_model, run_ort

from liteopt.ir import OPS
from liteopt.runtime import kernels as K, load
from liteopt.runtime.kernels import _blocked, _blocked_winograd as _bwino
from liteopt.runtime.threads import cores, set_threads, use_numba_pool

K.load_all()
RNG = np.random.default_rng(1)
ACTS = [("", 0.0), ("relu", 0.0), ("relu6", 6.0), ("leaky_relu", 0.1), ("hard_swish", 0.0), ("swish", 1.0), ("swish", 1.7)]
pytestmark = pytest.mark.skipif(not _blocked.AVAILABLE, reason="this CPU has no AVX-512: no blocked kernels here")


def attrs(op, **kw):
    a = {k: v.default for k, v in OPS[op].attrs.items()}
    a.update(kw)
    return a


def to_blocked(a):
    """(N, C, H, W) -> the same shape holding the blocked layout (the independent conversion, numpy)."""
    n, c, h, w = a.shape
    return np.ascontiguousarray(a.reshape(n, c // 16, 16, h * w).transpose(0, 1, 3, 2)).reshape(a.shape)


def from_blocked(a):
    n, c, h, w = a.shape
    return np.ascontiguousarray(a.reshape(n, c // 16, h * w, 16).transpose(0, 1, 3, 2)).reshape(a.shape)


def blocked_variant(op, variant, w, b, at, ins, out):
    fn = K.KERNELS[(op, "cpu")][variant].prepare([None, w, b], at)
    assert fn.blocked is not None
    return fn.blocked.variant(ins, out)


def close(y, ref, scale=None):
    """y matches ref to 1e-5 of ref's largest magnitude (or of `scale`: that of the sums before a clamping
    activation, which set the rounding)."""
    assert y.shape == ref.shape and y.dtype == np.float32
    assert np.abs(y - ref).max() <= 1e-5 * max(np.abs(ref).max() if scale is None else scale, 1e-6)


@settings(max_examples=60, deadline=None)
@given(layouts=st.sampled_from([(True, True), (False, True), (True, False)]), cb=st.integers(1, 5),
       c_rest=st.integers(0, 15), ob=st.integers(1, 5), o_rest=st.integers(0, 15),
       hw=st.sampled_from([(1, 1), (3, 4), (7, 7), (5, 13), (12, 2), (14, 14)]), act=st.sampled_from(ACTS),
       bias=st.booleans(), residual=st.booleans(), out=st.booleans(), batch=st.sampled_from([1, 2]))
def test_pointwise(layouts, cb, c_rest, ob, o_rest, hw, act, bias, residual, out, batch):
    """Each layout pair a pointwise conv runs in: partial pixel tiles, an odd last output block, input
    channels past the last whole block (NCHW input), output channels past the last block (NCHW output)."""
    xb, yb = layouts
    c = cb * 16 + (0 if xb else c_rest)
    o = ob * 16 + (0 if yb else o_rest)
    x = RNG.standard_normal((batch, c, *hw)).astype(np.float32)
    wt = RNG.standard_normal((o, c, 1, 1)).astype(np.float32)
    b = RNG.standard_normal(o).astype(np.float32) if bias else None
    at = attrs("conv2d", act_type=act[0], act_alpha=act[1])
    r = RNG.standard_normal((batch, o, *hw)).astype(np.float32) if residual else None
    fn = blocked_variant("conv2d", "gemm", wt, b, at, {0} if xb else set(), yb)
    rb = None if r is None else (to_blocked(r) if yb else r.copy())
    buf = np.full((batch, o, *hw), np.nan, np.float32) if out else None
    y = fn(to_blocked(x) if xb else x, wt, b, rb, out=buf, **at)
    assert buf is None or y is buf
    close(from_blocked(y) if yb else y, OPS["conv2d"].run(x, wt, b, r, **at)[0])


@settings(max_examples=60, deadline=None)
@given(cb=st.integers(1, 3), k=st.sampled_from([3, 5]), s=st.tuples(st.sampled_from([1, 2]), st.sampled_from([1, 2])),
       h=st.integers(1, 20), w=st.integers(1, 20), pads=st.tuples(*[st.integers(0, 2)] * 4),
       act=st.sampled_from(ACTS), bias=st.booleans(), batch=st.sampled_from([1, 2]))
def test_depthwise(cb, k, s, h, w, pads, act, bias, batch):
    """Depthwise 3x3/5x5, strides 1/2 (the two may differ, as PP-OCR's (2, 1)), any padding on each side (taps
    in the padding rows and columns)."""
    c = cb * 16
    if h + pads[0] + pads[1] < k or w + pads[2] + pads[3] < k:
        return
    x = RNG.standard_normal((batch, c, h, w)).astype(np.float32)
    wt = RNG.standard_normal((c, 1, k, k)).astype(np.float32)
    b = RNG.standard_normal(c).astype(np.float32) if bias else None
    at = attrs("depthwise_conv2d", strides=s, paddings=pads, groups=c, act_type=act[0], act_alpha=act[1])
    fn = blocked_variant("depthwise_conv2d", "direct", wt, b, at, {0}, True)
    y = fn(to_blocked(x), wt, b, **at)
    close(from_blocked(y), OPS["depthwise_conv2d"].run(x, wt, b, **at)[0])


@settings(max_examples=60, deadline=None)
@given(xb=st.booleans(), c=st.integers(1, 40), ob=st.integers(1, 5), k=st.integers(1, 5), s=st.integers(1, 3),
       h=st.integers(1, 16), w=st.integers(1, 16), pads=st.tuples(*[st.integers(0, 3)] * 4), act=st.sampled_from(ACTS),
       bias=st.booleans(), residual=st.booleans(), out=st.booleans(), batch=st.sampled_from([1, 2]),
       variant=st.sampled_from(["gemm", "direct", "winograd_f23", "winograd_f43", "winograd_f63"]))
def test_conv(xb, c, ob, k, s, h, w, pads, act, bias, residual, out, batch, variant):
    """k x k convs into a blocked output from a blocked or an NCHW input: any stride (phase planes), padding
    on each side, an odd last output block, 7-wide rows and tiles running on across the rows; declared by
    every conv2d variant it can stand in for. The Winograd variants' own (3x3 stride 1, `_blocked_winograd`):
    tiles past the output's edges, input channels past the last whole block (NCHW input)."""
    c = 16 * (c % 4 + 1) if xb else c
    o = 16 * ob
    if h + pads[0] + pads[1] < k or w + pads[2] + pads[3] < k:
        return
    x = RNG.standard_normal((batch, c, h, w)).astype(np.float32)
    wt = RNG.standard_normal((o, c, k, k)).astype(np.float32)
    _check_blocked_conv(x, wt, xb, s, pads, act, bias, residual, out, variant)


@settings(max_examples=40, deadline=None)
@given(xb=st.booleans(), c=st.integers(1, 40), ob=st.integers(1, 3), kh=st.integers(1, 7), kw=st.integers(1, 7),
       s=st.integers(1, 2), h=st.integers(1, 12), w=st.integers(1, 12), pads=st.tuples(*[st.integers(0, 3)] * 4),
       act=st.sampled_from(ACTS), residual=st.booleans(), batch=st.sampled_from([1, 2]))
def test_conv_of_unequal_filter_sides(xb, c, ob, kh, kw, s, h, w, pads, act, residual, batch):
    """kh x kw convs (Inception's 1x7 and 7x1) through the phase planes, from a blocked or an NCHW input."""
    c = 16 * (c % 3 + 1) if xb else c
    if kh == kw or h + pads[0] + pads[1] < kh or w + pads[2] + pads[3] < kw:
        return
    x = RNG.standard_normal((batch, c, h, w)).astype(np.float32)
    wt = RNG.standard_normal((16 * ob, c, kh, kw)).astype(np.float32)
    _check_blocked_conv(x, wt, xb, s, pads, act, True, residual, False, "gemm")


def _check_blocked_conv(x, wt, xb, s, pads, act, bias, residual, out, variant):
    """The blocked variant of a conv2d against the reference, its output in a buffer (out) or not."""
    o = wt.shape[0]
    b = RNG.standard_normal(o).astype(np.float32) if bias else None
    at = attrs("conv2d", strides=(s, s), paddings=pads, act_type=act[0], act_alpha=act[1])
    shape = OPS["conv2d"].run(x, wt, b, **at)[0].shape
    r = RNG.standard_normal(shape).astype(np.float32) if residual else None
    if wt.shape[2:] == (1, 1) and s == 1 and not any(pads):  # (the pointwise declaration: tested above)
        return
    if wt.shape[2:] != (3, 3) or (variant == "direct" and s > 2) or (variant.startswith("winograd") and s > 1):
        variant = "gemm"  # (where the others apply)
    fn = blocked_variant("conv2d", variant, wt, b, at, {0} if xb else set(), True)
    buf = np.full(shape, np.nan, np.float32) if out else None
    y = fn(to_blocked(x) if xb else x, wt, b, None if r is None else to_blocked(r), out=buf, **at)
    assert buf is None or y is buf
    sums = OPS["conv2d"].run(x, wt, b, r, **dict(at, act_type=""))[0]
    close(from_blocked(y), OPS["conv2d"].run(x, wt, b, r, **at)[0], scale=np.abs(sums).max())


@pytest.mark.parametrize("h,w,s", [(7, 7, 1), (6, 7, 1), (14, 14, 2), (13, 14, 2), (1, 7, 1)])
@pytest.mark.parametrize("residual", [False, True])
def test_seven_wide_outputs_take_two_rows_a_tile(h, w, s, residual):
    """A k x k conv on a blocked input whose output rows are 7 wide (ResNet50's last stage): a tile holds two
    output rows, the second one past the phase planes' extra columns, the last row alone when there is an odd
    number of them."""
    x = RNG.standard_normal((2, 32, h, w)).astype(np.float32)
    wt = (RNG.standard_normal((48, 32, 3, 3)) / 16).astype(np.float32)
    b = RNG.standard_normal(48).astype(np.float32)
    at = attrs("conv2d", strides=(s, s), paddings=(1, 1, 1, 1), act_type="relu")
    shape = OPS["conv2d"].run(x, wt, b, **at)[0].shape
    assert shape[3] == 7
    r = RNG.standard_normal(shape).astype(np.float32) if residual else None
    fn = blocked_variant("conv2d", "gemm", wt, b, at, {0}, True)
    y = fn(to_blocked(x), wt, b, None if r is None else to_blocked(r), **at)
    sums = OPS["conv2d"].run(x, wt, b, r, **dict(at, act_type=""))[0]
    close(from_blocked(y), OPS["conv2d"].run(x, wt, b, r, **at)[0], scale=np.abs(sums).max())


@pytest.mark.parametrize("k,s,pads", [(3, 2, (1, 1, 1, 1)), (7, 2, (3, 3, 3, 3)), (3, 1, (1, 1, 1, 1)),
                                      (3, 2, (0, 0, 0, 0)), (5, 1, (2, 0, 1, 3)), (3, 2, (2, 1, 0, 2))])
@pytest.mark.parametrize("w", [61, 56, 29])
def test_nchw_input_read_in_place(k, s, pads, w):
    """A conv from an NCHW input (a network's stem) into a blocked output reads x where it lies: rows wide
    enough for tiles inside the row, tiles at its left and right ends (zero columns) and a last partial tile;
    kernel rows above and below the input. With a residual, the even widths with an odd last block."""
    from liteopt.runtime.kernels import _blocked
    x = RNG.standard_normal((2, 3, 9, w)).astype(np.float32)
    o = 48 if w % 2 else 32
    wt = RNG.standard_normal((o, 3, k, k)).astype(np.float32)
    b = RNG.standard_normal(o).astype(np.float32)
    at = attrs("conv2d", strides=(s, s), paddings=pads, act_type="relu")
    shape = OPS["conv2d"].run(x, wt, b, **at)[0].shape
    r = None if w % 2 else RNG.standard_normal(shape).astype(np.float32)
    fn = blocked_variant("conv2d", "gemm", wt, b, at, set(), True)
    calls = []
    with pytest.MonkeyPatch.context() as mp:  # (the in-place driver is the one that runs)
        direct = _blocked.conv_nchw
        mp.setattr(_blocked, "conv_nchw", lambda *args: calls.append(1) or direct(*args))
        y = fn(x, wt, b, None if r is None else to_blocked(r), **at)
    assert len(calls) == 2
    sums = OPS["conv2d"].run(x, wt, b, r, **dict(at, act_type=""))[0]
    close(from_blocked(y), OPS["conv2d"].run(x, wt, b, r, **at)[0], scale=np.abs(sums).max())


@settings(max_examples=80, deadline=None)
@given(m=st.sampled_from([2, 4]), xb=st.booleans(), c=st.integers(1, 40), ob=st.integers(1, 5),
       h=st.integers(1, 21), w=st.integers(1, 21), pads=st.tuples(*[st.integers(0, 2)] * 4), act=st.sampled_from(ACTS),
       bias=st.booleans(), residual=st.booleans(), out=st.booleans(), batch=st.sampled_from([1, 2]),
       chunked=st.booleans())
def test_winograd(m, xb, c, ob, h, w, pads, act, bias, residual, out, batch, chunked):
    """The blocked conv of Winograd F(2,3) and F(4,3) (`_blocked_winograd`, 3x3 stride 1): tiles past the output's right
    and bottom edges, uneven paddings, input channels past the last whole block (NCHW input), an odd last
    output block, residual and activation in the output transform; the tiles in one chunk or in chunks of
    12 (the last one partial)."""
    c = 16 * (c % 3 + 1) if xb else c
    o = 16 * ob
    if h + pads[0] + pads[1] < 3 or w + pads[2] + pads[3] < 3:
        return
    x = RNG.standard_normal((batch, c, h, w)).astype(np.float32)
    wt = RNG.standard_normal((o, c, 3, 3)).astype(np.float32)
    b = RNG.standard_normal(o).astype(np.float32) if bias else None
    at = attrs("conv2d", paddings=pads, act_type=act[0], act_alpha=act[1])
    shape = OPS["conv2d"].run(x, wt, b, **at)[0].shape
    r = RNG.standard_normal(shape).astype(np.float32) if residual else None
    fn = blocked_variant("conv2d", f"winograd_f{m}3", wt, b, at, {0} if xb else set(), True)
    buf = np.full(shape, np.nan, np.float32) if out else None
    whole = _bwino.CHUNK_BYTES
    try:
        _bwino.CHUNK_BYTES = 1 if chunked else whole
        y = fn(to_blocked(x) if xb else x, wt, b, None if r is None else to_blocked(r), out=buf, **at)
    finally:
        _bwino.CHUNK_BYTES = whole
    assert buf is None or y is buf
    sums = OPS["conv2d"].run(x, wt, b, r, **dict(at, act_type=""))[0]
    close(from_blocked(y), OPS["conv2d"].run(x, wt, b, r, **at)[0], scale=np.abs(sums).max())


@settings(max_examples=60, deadline=None)
@given(c=st.integers(1, 40), h=st.integers(1, 19), w=st.integers(1, 37), pt=st.integers(0, 2), pl=st.integers(0, 2))
def test_reorders_between_nchw_and_blocked(c, h, w, pt, pl):
    """`to_blocked` puts an NCHW item into a padded blocked buffer (channels past C and the padding untouched),
    `to_nchw` takes the first C channels of a blocked item out: against numpy's transposes, widths past and
    short of a 16-pixel tile."""
    x = RNG.standard_normal((c, h, w)).astype(np.float32)
    blocks, rows, cols = -(-c // 16), h + pt + 1, w + pl + 2
    buf = np.full((blocks, rows, cols, 16), 7.0, np.float32)
    _blocked.to_blocked(x.reshape(-1), buf.reshape(-1), c, h, w, rows, cols, pt, pl)
    want = np.full_like(buf, 7.0)
    xp = np.full((blocks * 16, h, w), 7.0, np.float32)  # (the channels past C stay as they were)
    xp[:c] = x
    want[:, pt:pt + h, pl:pl + w] = xp.reshape(blocks, 16, h, w).transpose(0, 2, 3, 1)
    np.testing.assert_array_equal(buf, want)
    z = RNG.standard_normal((blocks, h * w, 16)).astype(np.float32)
    y = np.full(c * h * w, np.nan, np.float32)
    _blocked.to_nchw(z.reshape(-1), y, c, h * w)
    np.testing.assert_array_equal(y.reshape(c, h * w), z.transpose(0, 2, 1).reshape(blocks * 16, h * w)[:c])


@settings(max_examples=40, deadline=None)
@given(groups=st.integers(2, 5), k=st.sampled_from([1, 3, 5]), s=st.integers(1, 2), h=st.integers(1, 15),
       w=st.sampled_from([1, 5, 7, 14, 15]), pads=st.tuples(*[st.integers(0, 2)] * 4), act=st.sampled_from(ACTS),
       residual=st.booleans(), batch=st.sampled_from([1, 2]))
def test_grouped_conv_of_one_block_a_group(groups, k, s, h, w, pads, act, residual, batch):
    """A grouped conv of 16 input and 16 output channels a group (RegNet's group width) on blocked tensors: the
    conv tile of one output block per group over its own input block (7-wide outputs two rows a tile)."""
    c = 16 * groups
    if h + pads[0] + pads[1] < k or w + pads[2] + pads[3] < k:
        return
    x = RNG.standard_normal((batch, c, h, w)).astype(np.float32)
    wt = RNG.standard_normal((c, 16, k, k)).astype(np.float32)
    b = RNG.standard_normal(c).astype(np.float32)
    at = attrs("conv2d", groups=groups, strides=(s, s), paddings=pads, act_type=act[0], act_alpha=act[1])
    shape = OPS["conv2d"].run(x, wt, b, **at)[0].shape
    r = RNG.standard_normal(shape).astype(np.float32) if residual else None
    fn = blocked_variant("conv2d", "gemm", wt, b, at, {0, 3} if residual else {0}, True)
    y = fn(to_blocked(x), wt, b, None if r is None else to_blocked(r), **at)
    sums = OPS["conv2d"].run(x, wt, b, r, **dict(at, act_type=""))[0]
    close(from_blocked(y), OPS["conv2d"].run(x, wt, b, r, **at)[0], scale=np.abs(sums).max())


def test_regnet_blocks_stay_blocked(tmp_path):
    """RegNetX's block: 1x1 conv, 3x3 conv in groups of 16 channels (stride 2 in a stage's first block), 1x1
    conv, residual add; every tensor between the stem and the pooling stays blocked; against onnxruntime."""
    nodes, inits = [], {}

    def conv(x, y, cin, cout, k, s=1, g=1, relu=True):
        inits[y + "_w"] = (RNG.standard_normal((cout, cin // g, k, k)) / np.sqrt(cin // g * k * k)).astype(np.float32)
        nodes.append(helper.make_node("Conv", [x, y + "_w"], [y + "_c"], pads=[k // 2] * 4, strides=[s, s], group=g))
        if relu:
            nodes.append(helper.make_node("Relu", [y + "_c"], [y]))
            return y
        return y + "_c"

    h = conv("x", "stem", 3, 32, 3, 2)
    for i, s in enumerate((2, 1)):
        a = conv(h, f"a{i}", 32, 48, 1)
        b = conv(a, f"b{i}", 48, 48, 3, s, g=3)
        c = conv(b, f"c{i}", 48, 32, 1, relu=False)
        short = conv(h, f"sc{i}", 32, 32, 1, s, relu=False) if s == 2 else h
        nodes.append(helper.make_node("Add", [c, short], [f"sum{i}"]))
        nodes.append(helper.make_node("Relu", [f"sum{i}"], [f"out{i}"]))
        h = f"out{i}"
    nodes.append(helper.make_node("GlobalAveragePool", [h], ["y"]))
    model = make_model(nodes, {"x": np.zeros((1, 3, 28, 28), np.float32)}, ["y"], inits)
    x = RNG.standard_normal((1, 3, 28, 28)).astype(np.float32)
    check_model(model, {"x": x}, tmpdir=str(tmp_path))
    prog = load(convert(model, str(tmp_path)))._program
    grouped = [s for s in prog.steps if s.node.attrs.get("groups", 1) == 3]
    assert len(grouped) == 2 and all(s.node.outputs[0] in prog.blocked for s in grouped)
    assert [s.node.op for s in prog.steps if s.node.outputs[0] not in prog.blocked] == ["pool2d"]


@pytest.mark.parametrize("layouts", [(True, True), (False, True), (True, False)])
def test_inputs_beyond_l2_go_tile_by_tile(layouts):
    """An input of over 1 MB and twice the filter is read once, every filter panel on one tile of it
    (`_blocked.TILE_MAJOR_FROM`): pointwise in each layout pair (an odd last output block, a partial last
    tile), and a k x k conv whose phase planes are that large."""
    xb, yb = layouts
    x = RNG.standard_normal((1, 32, 93, 91)).astype(np.float32)  # 1.08 MB
    assert x.nbytes > _blocked.TILE_MAJOR_FROM
    wt = RNG.standard_normal((48 if yb else 40, 32, 1, 1)).astype(np.float32)
    at = attrs("conv2d", act_type="relu")
    fn = blocked_variant("conv2d", "gemm", wt, None, at, {0} if xb else set(), yb)
    y = fn(to_blocked(x) if xb else x, wt, None, **at)
    close(from_blocked(y) if yb else y, OPS["conv2d"].run(x, wt, None, **at)[0])
    if yb:
        w3 = RNG.standard_normal((48, 32, 3, 3)).astype(np.float32)
        at3 = attrs("conv2d", strides=(2, 2), paddings=(1, 1, 1, 1))
        y = blocked_variant("conv2d", "gemm", w3, None, at3, {0} if xb else set(), True)(
            to_blocked(x) if xb else x, w3, None, **at3)
        close(from_blocked(y), OPS["conv2d"].run(x, w3, None, **at3)[0])


def test_what_declares_no_blocked_variant():
    """Activations other than the relu-like ones and hard_swish, grouped or dilated convs keep NCHW (dilated
    depthwise convs do not: `test_dilated_depthwise`)."""
    wt = RNG.standard_normal((16, 16, 1, 1)).astype(np.float32)
    for act in ("swish", "sigmoid"):
        fn = K.KERNELS[("conv2d", "cpu")]["gemm"].prepare([None, wt, None], attrs("conv2d", act_type=act))
        assert getattr(fn, "blocked", None) is None
    w3 = RNG.standard_normal((16, 8, 3, 3)).astype(np.float32)
    for at in (attrs("conv2d", groups=2), attrs("conv2d", dilations=(2, 2)), attrs("conv2d", act_type="swish")):
        fn = K.KERNELS[("conv2d", "cpu")]["gemm"].prepare([None, w3, None], at)
        assert getattr(fn, "blocked", None) is None
    for variant in ("winograd_f23", "winograd_f43"):
        for act in ("swish", "sigmoid"):
            at = attrs("conv2d", paddings=(1, 1, 1, 1), act_type=act)
            fn = K.KERNELS[("conv2d", "cpu")][variant].prepare([None, w3, None], at)
            assert getattr(fn, "blocked", None) is None


def _net():
    """stem conv -> dw -> pw 16->24 -> pw 24->48 -> dw 5x5 s2 -> pw 48->24 + residual (24 ch, pooled) -> pw
    24->32 -> a 32-channel pair (pw, pw + residual) whose sum is concatenated with 24 channels -> global pool;
    after the dw a fire module (pw 48->16, pw 48->32, concat, 3x3 max pooling, global max and average) and a
    3x3 conv 48 -> 24."""
    nodes, inits = [], {}

    def conv(x, out, cin, cout, k=1, s=1, group=1, act=None):
        inits[out + "_w"] = (RNG.standard_normal((cout, cin // group, k, k)) / np.sqrt(cin // group * k * k)).astype(
            np.float32)
        inits[out + "_b"] = (RNG.standard_normal(cout) * 0.1).astype(np.float32)
        y = out + "_c" if act else out
        nodes.append(helper.make_node("Conv", [x, out + "_w", out + "_b"], [y], pads=[k // 2] * 4, strides=[s, s],
                                      group=group))
        if act == "relu":
            nodes.append(helper.make_node("Relu", [y], [out]))
        elif act == "relu6":
            nodes.append(helper.make_node("Clip", [y, "zero", "six"], [out]))
        return out

    inits["zero"], inits["six"] = np.float32(0.0), np.float32(6.0)
    h = conv("x", "stem", 3, 16, 3, 2, act="relu")
    h = conv(h, "dw1", 16, 16, 3, 1, 16, act="relu6")
    a = conv(h, "pw1", 16, 24)
    h = conv(a, "pw2", 24, 48, act="relu")
    h = conv(h, "dw2", 48, 48, 5, 2, 48, act="relu6")
    h = conv(h, "pw3", 48, 24)
    nodes.append(helper.make_node("MaxPool", [a], ["ap"], kernel_shape=[2, 2], strides=[2, 2]))
    nodes.append(helper.make_node("Add", [h, "ap"], ["res"]))
    h = conv("res", "pw4", 24, 32, act="relu")
    t = conv(h, "pw5", 32, 32, act="relu")
    u = conv(t, "pw6", 32, 32)
    nodes.append(helper.make_node("Add", [u, t], ["sum"]))
    nodes.append(helper.make_node("Concat", ["sum", h, "res"], ["cat"], axis=1))
    nodes.append(helper.make_node("GlobalAveragePool", ["cat"], ["y"]))
    # a fire module: two pointwise convs into one concat, max pooled, then global max and average pooling
    f1, f2 = conv("dw2", "e1", 48, 16, act="relu"), conv("dw2", "e2", 48, 32, act="relu")
    nodes.append(helper.make_node("Concat", [f1, f2], ["fire"], axis=1))
    nodes.append(helper.make_node("MaxPool", ["fire"], ["fp"], kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1))
    nodes.append(helper.make_node("GlobalMaxPool", ["fp"], ["y2"]))
    nodes.append(helper.make_node("GlobalAveragePool", ["fp"], ["y3"]))
    conv("dw2", "y4", 48, 24, 3)  # a k x k conv into 24 channels: its input may not stay blocked
    return make_model(nodes, {"x": np.zeros((1, 3, 24, 24), np.float32)}, ["y", "y2", "y3", "y4"], inits)


def test_the_planner_blocks_the_islands_and_keeps_the_outputs(tmp_path):
    """Blocked: the stem conv's output (a k x k conv writes blocked from an NCHW input) and the dw after it; the
    fire module (its two pw outputs, their concat and the max pooling, read by the global poolings). Not
    blocked: the 48-channel pw output and the dw after it (a 3x3 conv into 24 channels reads that, and its
    input follows its output's layout; the dw ties its input), 24 channels (not whole blocks), the 32-channel
    tensors (their concat also takes a 24-channel one; the residual pair is tied to that), the graph's
    outputs."""
    model = _net()
    x = RNG.standard_normal((1, 3, 24, 24)).astype(np.float32)
    check_model(model, {"x": x}, tmpdir=str(tmp_path))
    prog = load(convert(model, str(tmp_path)))._program
    assert prog.blocked == {"stem", "dw1", "e1", "e2", "fire", "fp"}, prog.blocked


@settings(max_examples=40, deadline=None)
@given(cb=st.integers(1, 3), k=st.integers(1, 3), s=st.integers(1, 2), h=st.integers(1, 9), w=st.integers(1, 9),
       pads=st.tuples(*[st.integers(0, 1)] * 4), ceil=st.booleans(), batch=st.sampled_from([1, 2]))
def test_max_pool(cb, k, s, h, w, pads, ceil, batch):
    c = cb * 16
    if h + pads[0] + pads[1] < k or w + pads[2] + pads[3] < k or max(pads) >= k:
        return
    x = RNG.standard_normal((batch, c, h, w)).astype(np.float32)
    at = attrs("pool2d", pooling_type="max", ksize=(k, k), strides=(s, s), paddings=pads, ceil_mode=ceil)
    fn = K.KERNELS[("pool2d", "cpu")]["default"].prepare([None], at).blocked.variant({0}, True)
    close(from_blocked(fn(to_blocked(x), **at)), OPS["pool2d"].run(x, **at)[0])


@settings(max_examples=40, deadline=None)
@given(cb=st.integers(1, 3), k=st.tuples(st.integers(1, 3), st.integers(1, 3)), s=st.integers(1, 2),
       h=st.integers(1, 9), w=st.integers(1, 9), pads=st.tuples(*[st.integers(0, 1)] * 4), ceil=st.booleans(),
       exclusive=st.booleans(), batch=st.sampled_from([1, 2]))
def test_avg_pool(cb, k, s, h, w, pads, ceil, exclusive, batch):
    """Average pooling keeps the blocked layout (DenseNet's transitions): windows in the padding, the ceil-mode
    overhang, counting the padding or not."""
    c = cb * 16
    if h + pads[0] + pads[1] < k[0] or w + pads[2] + pads[3] < k[1] or max(pads[:2]) >= k[0] or max(pads[2:]) >= k[1]:
        return
    x = RNG.standard_normal((batch, c, h, w)).astype(np.float32)
    at = attrs("pool2d", pooling_type="avg", ksize=k, strides=(s, s), paddings=pads, ceil_mode=ceil,
               exclusive=exclusive)
    fn = K.KERNELS[("pool2d", "cpu")]["default"].prepare([None], at).blocked.variant({0}, True)
    close(from_blocked(fn(to_blocked(x), **at)), OPS["pool2d"].run(x, **at)[0])


@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("shape", [(1, 16, 1, 1), (2, 48, 5, 7)])
def test_batch_norm_on_a_blocked_tensor(act, shape):
    """A batch_norm that no conv absorbed, its activation fused (DenseNet: BN -> ReLU on each concatenation)."""
    x = RNG.standard_normal(shape).astype(np.float32)
    c = shape[1]
    consts = [None, RNG.uniform(0.5, 1.5, c).astype(np.float32), RNG.standard_normal(c).astype(np.float32),
              RNG.standard_normal(c).astype(np.float32), RNG.uniform(0.5, 1.5, c).astype(np.float32)]
    at = attrs("batch_norm", act_type=act[0], act_alpha=act[1])
    fn = K.KERNELS[("batch_norm", "cpu")]["default"].prepare(consts, at)
    y = fn.blocked.variant({0}, True)(to_blocked(x), *consts[1:], **at)
    close(from_blocked(y), OPS["batch_norm"].run(x, *consts[1:], **at)[0])
    close(fn(x, *consts[1:], **at), OPS["batch_norm"].run(x, *consts[1:], **at)[0])


def test_dense_blocks_stay_blocked(tmp_path):
    """DenseNet: each layer is BN -> ReLU -> 1x1 conv -> BN -> ReLU -> 3x3 conv on the concatenation of all the
    outputs before it, a transition BN -> ReLU -> 1x1 conv -> 2x2 average pooling. The BNs no conv absorbs
    (with their ReLUs), the concatenations and the pooling keep the blocked layout, so every conv is blocked;
    against onnxruntime."""
    nodes, inits = [], {}

    def bn_relu(x, c):
        p = f"{x}_bn"
        for k, v in (("g", RNG.uniform(0.5, 1.5, c)), ("b", RNG.standard_normal(c)), ("m", RNG.standard_normal(c)),
                     ("v", RNG.uniform(0.5, 1.5, c))):
            inits[p + k] = v.astype(np.float32)
        nodes.append(helper.make_node("BatchNormalization", [x] + [p + k for k in "gbmv"], [p]))
        nodes.append(helper.make_node("Relu", [p], [p + "_relu"]))
        return p + "_relu"

    def conv(x, y, cin, cout, k):
        inits[y + "_w"] = (RNG.standard_normal((cout, cin, k, k)) / np.sqrt(cin * k * k)).astype(np.float32)
        nodes.append(helper.make_node("Conv", [x, y + "_w"], [y], pads=[k // 2] * 4))
        return y

    feats = [conv("x", "stem", 3, 16, 3)]
    for i in range(3):  # the inputs: 16, 32, 48 channels
        cat = f"cat{i}"
        nodes.append(helper.make_node("Concat", list(feats), [cat], axis=1))
        h = conv(bn_relu(cat, 16 * (i + 1)), f"c1_{i}", 16 * (i + 1), 32, 1)
        feats.append(conv(bn_relu(h, 32), f"c3_{i}", 32, 16, 3))
    nodes.append(helper.make_node("Concat", feats, ["cat3"], axis=1))
    h = conv(bn_relu("cat3", 64), "trans", 64, 32, 1)
    nodes.append(helper.make_node("AveragePool", [h], ["pool"], kernel_shape=[2, 2], strides=[2, 2]))
    nodes.append(helper.make_node("GlobalAveragePool", ["pool"], ["y"]))
    model = make_model(nodes, {"x": np.zeros((1, 3, 12, 12), np.float32)}, ["y"], inits)
    x = RNG.standard_normal((1, 3, 12, 12)).astype(np.float32)
    check_model(model, {"x": x}, tmpdir=str(tmp_path))
    prog = load(convert(model, str(tmp_path)))._program
    assert [s.node.op for s in prog.steps if s.node.outputs[0] not in prog.blocked] == ["pool2d"]  # (the global one)
    assert {"cat1", "cat2", "cat3", "pool"} <= prog.blocked


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("hw", [(1, 1), (7, 7), (3, 5)])
def test_global_pool_reads_blocked_input(kind, hw):
    x = RNG.standard_normal((2, 48, *hw)).astype(np.float32)
    at = attrs("pool2d", pooling_type=kind, global_pooling=True)
    fn = K.KERNELS[("pool2d", "cpu")]["default"].prepare([None], at).blocked.variant({0}, False)
    close(fn(to_blocked(x), **at), OPS["pool2d"].run(x, **at)[0])
    x[0, 5, 0, 0] = x[1, 40, -1, -1] = np.nan  # (the first and the last pixel of a channel)
    got, want = fn(to_blocked(x), **at), OPS["pool2d"].run(x, **at)[0]
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    assert np.isnan(want).sum() == 2


@pytest.mark.parametrize("op", ["reduce_mean", "reduce_max"])
@pytest.mark.parametrize("dim,keep", [((2, 3), False), ((-1, -2), True), ((3, 2), False)])
def test_spatial_reductions_read_blocked_input(op, dim, keep):
    """reduce_mean / reduce_max over H and W (a network's end, like global pooling) from a blocked input; over
    other axes they declare nothing."""
    x = RNG.standard_normal((2, 32, 7, 5)).astype(np.float32)
    at = attrs(op, dim=dim, keep_dim=keep)
    fn = K.KERNELS[(op, "cpu")]["default"].prepare([None], at).blocked.variant({0}, False)
    out = np.full((2, 32, 1, 1) if keep else (2, 32), np.nan, np.float32)
    assert fn(to_blocked(x), out=out, **at) is out
    close(out, OPS[op].run(x, **at)[0])
    for other in ((1, 2), (3,), (0, 2, 3)):
        assert getattr(K.KERNELS[(op, "cpu")]["default"].prepare([None], attrs(op, dim=other)), "blocked", None) is None


def test_concat_of_blocked_tensors():
    xs = [RNG.standard_normal((2, c, 3, 5)).astype(np.float32) for c in (16, 48, 32)]
    fn = K.KERNELS[("concat", "cpu")]["default"].prepare([None] * 3, {"axis": 1}).blocked.variant({0, 1, 2}, True)
    y = fn(*[to_blocked(x) for x in xs], axis=1)
    np.testing.assert_array_equal(from_blocked(y), np.concatenate(xs, axis=1))


@pytest.mark.skipif(cores() < 2, reason="one core: the threaded builds are never used")
def test_threaded_builds_give_the_serial_results():
    """The blocked kernels and the NCHW drivers of the AVX-512 tiles split their work over numba's pool when
    it has threads (a model whose convolutions run mostly in numba's kernels gives the pool the threads): the
    same results as one thread, for every driver."""
    x = RNG.standard_normal((1, 32, 13, 11)).astype(np.float32)
    at_pw, at_c = attrs("conv2d", act_type="relu"), attrs("conv2d", strides=(2, 2), paddings=(1, 1, 1, 1))
    at_dw = attrs("depthwise_conv2d", groups=32, paddings=(2, 2, 2, 2))
    at_mp = attrs("pool2d", pooling_type="max", ksize=(3, 3), strides=(2, 2), paddings=(1, 1, 1, 1))
    at_w = attrs("conv2d", paddings=(1, 1, 1, 1), act_type="relu")
    w1, w3, wd = (RNG.standard_normal(s).astype(np.float32) for s in ((48, 32, 1, 1), (48, 32, 3, 3), (32, 1, 5, 5)))
    xk = RNG.standard_normal((1, 64, 9, 7)).astype(np.float32)  # 63 pixels: 4 tiles and a short one
    wk = RNG.standard_normal((80, 64, 1, 1)).astype(np.float32)
    xs, ws = RNG.standard_normal((1, 3, 30, 31)).astype(np.float32), RNG.standard_normal((48, 3, 3, 3)).astype(np.float32)
    runs = [lambda: blocked_variant("conv2d", "gemm", w1, None, at_pw, {0}, True)(to_blocked(x), w1, None, **at_pw),
            lambda: blocked_variant("conv2d", "gemm", w3, None, at_c, {0}, True)(to_blocked(x), w3, None, **at_c),
            lambda: blocked_variant("depthwise_conv2d", "direct", wd, None, at_dw, {0}, True)(to_blocked(x), wd, None,
                                                                                              **at_dw),
            lambda: K.KERNELS[("pool2d", "cpu")]["default"].prepare([None], at_mp).blocked.variant({0}, True)(
                to_blocked(x), **at_mp),
            lambda: blocked_variant("conv2d", "winograd_f43", w3, None, at_w, {0}, True)(to_blocked(x), w3, None, **at_w),
            lambda: blocked_variant("conv2d", "gemm", wk, None, at_pw, {0}, True)(to_blocked(xk), wk, None, **at_pw),
            lambda: blocked_variant("conv2d", "gemm", ws, None, at_c, set(), True)(xs, ws, None, **at_c)]  # (NCHW in)
    # the NCHW drivers of the AVX-512 tiles: pointwise (pixel tiles in both orders; channel tiles on a 7x7 map),
    # direct 3x3 (stride 1 and 2), the depthwise strips and Winograd of 24 outputs
    f32 = lambda *shape: RNG.standard_normal(shape).astype(np.float32)  # noqa: E731
    xn, x7, xw = f32(1, 40, 13, 11), f32(1, 40, 7, 7), f32(1, 56, 13, 11)
    wn, ww, wdir, wdn, w24 = f32(36, 40, 1, 1), f32(36, 56, 1, 1), f32(24, 3, 3, 3), f32(40, 1, 5, 5), f32(24, 40, 3, 3)
    wg, at_g = f32(32, 16, 3, 3), attrs("conv2d", groups=2, paddings=(1, 1, 1, 1))  # (a grouped conv, blocked)
    at_s1, at_dn = attrs("conv2d", paddings=(1, 1, 1, 1)), attrs("depthwise_conv2d", groups=40, strides=(2, 2),
                                                                 paddings=(2, 2, 2, 2), act_type="relu")
    nchw = lambda op, variant, w, at: K.KERNELS[(op, "cpu")][variant].prepare([None, w, None], at)  # noqa: E731
    runs += [lambda: nchw("conv2d", "gemm", wn, at_pw)(xn, wn, None, **at_pw),  # (filter panels first, then:)
             lambda: nchw("conv2d", "gemm", ww, at_pw)(xw, ww, None, **at_pw),  # (pixel panels first)
             lambda: nchw("conv2d", "gemm", wn, at_pw)(x7, wn, None, **at_pw),
             lambda: nchw("conv2d", "direct", wdir, at_s1)(xs, wdir, None, **at_s1),
             lambda: nchw("conv2d", "direct", wdir, at_c)(xs, wdir, None, **at_c),
             lambda: nchw("depthwise_conv2d", "direct", wdn, at_dn)(xn, wdn, None, **at_dn),
             lambda: nchw("conv2d", "winograd_f43", w24, at_w)(xn, w24, None, **at_w),  # (reorders both ways)
             lambda: blocked_variant("conv2d", "gemm", wg, None, at_g, {0}, True)(to_blocked(x), wg, None, **at_g)]
    try:
        serial = [run() for run in runs]
        set_threads(2)
        use_numba_pool(True)
        for run, want in zip(runs, serial):
            np.testing.assert_array_equal(run(), want)
    finally:
        use_numba_pool(False)
        set_threads(1)


def _mobile(shape=(1, 3, 32, 32)):
    """A MobileNet-like chain: every conv writes a blocked tensor."""
    nodes, inits, h = [], {}, "x"
    for i, (cin, cout, k, s, g) in enumerate([(3, 16, 3, 2, 1), (16, 16, 3, 1, 16), (16, 32, 1, 1, 1), (32, 32, 3, 2, 32),
                                              (32, 64, 1, 1, 1)]):
        inits[f"w{i}"] = (RNG.standard_normal((cout, cin // g, k, k)) / np.sqrt(cin // g * k * k)).astype(np.float32)
        nodes.append(helper.make_node("Conv", [h, f"w{i}"], [f"c{i}"], pads=[k // 2] * 4, strides=[s, s], group=g))
        nodes.append(helper.make_node("Relu", [f"c{i}"], [f"r{i}"]))
        h = f"r{i}"
    nodes.append(helper.make_node("GlobalAveragePool", [h], ["y"]))
    return make_model(nodes, {"x": (np.float32, list(shape))}, ["y"], inits)


def test_islands_with_sizes_known_only_at_run_time(tmp_path):
    """Blocked tensors need only their channels fixed: a model with a symbolic height and width runs its
    island at any size (and back), each matching onnxruntime."""
    model = _mobile((1, 3, "h", "w"))
    pred = load(convert(model, str(tmp_path)))
    assert len(pred._program.blocked) == 5
    for hw in [(32, 32), (19, 45), (8, 8), (32, 32)]:
        x = RNG.standard_normal((1, 3, *hw)).astype(np.float32)
        assert_close(pred({"x": x})["y"], run_ort(model, {"x": x})[0])


@pytest.mark.skipif(cores() < 2, reason="one core: no second thread to give")
def test_the_threads_go_to_the_pool_that_runs_the_convolutions(tmp_path):
    """A model whose convolutions run in numba's kernels gives the threads to numba's pool and checks out
    against onnxruntime at 2 threads: all blocked, or NCHW (24/48-channel tensors: the NCHW tiles and depthwise
    strips), or more of it than of the BLAS products of a Winograd conv. One whose convolutions go through
    im2col + BLAS (5x5, 40 channels) gives them to BLAS."""
    import numba
    blas = [helper.make_node("Conv", ["x", "w1"], ["c1"], pads=[2] * 4), helper.make_node("Relu", ["c1"], ["r1"]),
            helper.make_node("Conv", ["r1", "w2"], ["c2"], pads=[2] * 4),
            helper.make_node("GlobalAveragePool", ["c2"], ["y"])]
    blas = make_model(blas, {"x": (np.float32, [1, 3, 32, 32])}, ["y"],
                      {"w1": RNG.standard_normal((40, 3, 5, 5)).astype(np.float32) * 0.1,
                       "w2": RNG.standard_normal((40, 40, 5, 5)).astype(np.float32) * 0.05})
    # a tiled pointwise conv and an NCHW Winograd F(4,3) conv of 24 outputs (the blocked kernel with a padded
    # filter): numba's work, as in the PP-OCRv4 detector
    wino = [helper.make_node("Conv", ["x", "w1"], ["c1"]), helper.make_node("Conv", ["c1", "w2"], ["y"], pads=[1] * 4)]
    wino = make_model(wino, {"x": (np.float32, [1, 96, 40, 40])}, ["y"],
                      {"w1": RNG.standard_normal((96, 96, 1, 1)).astype(np.float32) * 0.1,
                       "w2": RNG.standard_normal((24, 96, 3, 3)).astype(np.float32) * 0.03})
    try:
        for name, model, threads, shape in [("mobile", _mobile(), 2, (3, 32)), ("net", _net(), 2, (3, 24)),
                                            ("wino", wino, 2, (96, 40)), ("blas", blas, 1, (3, 32))]:
            (tmp_path / name).mkdir()
            pred = load(convert(model, str(tmp_path / name)), threads=2)
            assert numba.get_num_threads() == threads, name
            x = RNG.standard_normal((1, shape[0], shape[1], shape[1])).astype(np.float32)
            for got, want in zip(pred({"x": x}).values(), run_ort(model, {"x": x}), strict=True):
                assert_close(got, want)
    finally:
        use_numba_pool(False)
        set_threads(1)


@pytest.mark.parametrize("op", ["elementwise_add", "elementwise_sub", "elementwise_mul", "elementwise_div"])
@pytest.mark.parametrize("v_first", [False, True])
@pytest.mark.parametrize("vshape", [(1, 32, 1, 1), (32, 1, 1), (1,), (2, 32, 1, 1)])
@pytest.mark.parametrize("act", [("", 0.0), ("relu", 0.0), ("hard_swish", 0.0)])
def test_per_channel_elementwise_on_a_blocked_tensor(op, v_first, vshape, act):
    """x (op) v with v one value per channel (a squeeze-excite scale) or one value, x blocked, either order."""
    from liteopt.ir import DType, Graph, Node, Tensor
    x = RNG.standard_normal((2, 32, 3, 5)).astype(np.float32)
    v = (RNG.standard_normal(vshape) + 3).astype(np.float32)
    a, b = (v, x) if v_first else (x, v)
    at = {"act_type": act[0], "act_alpha": act[1]}
    fn = K.KERNELS[(op, "cpu")]["default"].prepare([None, None], at)
    f = DType.FLOAT32
    tensors = {"a": Tensor("a", f, a.shape), "b": Tensor("b", f, b.shape), "y": Tensor("y", f, x.shape)}
    decl = fn.blocked.for_node(Graph([], [], [], tensors), Node(op, ["a", "b"], ["y"], at, "n"))
    full = 1 if v_first else 0
    assert decl.tied == (full,) and decl.free == (1 - full,)
    ins = {full}
    y = decl.variant(ins, True)(*((v, to_blocked(x)) if v_first else (to_blocked(x), v)), out=None, **at)
    close(from_blocked(y), OPS[op].run(a, b, **at)[0])


def _binary_decl(op, sa, sb, at):
    from liteopt.ir import DType, Graph, Node, Tensor
    fn = K.KERNELS[(op, "cpu")]["default"].prepare([None, None], at)
    f = DType.FLOAT32
    tensors = {"a": Tensor("a", f, sa), "b": Tensor("b", f, sb), "y": Tensor("y", f, np.broadcast_shapes(sa, sb))}
    return fn.blocked.for_node(Graph([], [], [], tensors), Node(op, ["a", "b"], ["y"], at, "n"))


def test_what_a_binary_op_declares_for_its_shapes():
    """Channels not whole blocks, or a spatial (1, 1, H, W) operand: no blocked variant."""
    for sa, sb in [((1, 24, 4, 4), (1, 24, 1, 1)), ((1, 24, 4, 4), (1, 24, 4, 4)), ((1, 32, 4, 4), (1, 1, 4, 4))]:
        assert _binary_decl("elementwise_mul", sa, sb, {"act_type": "", "act_alpha": 0.0}) is None


@pytest.mark.parametrize("op", ["elementwise_add", "elementwise_sub", "elementwise_mul", "elementwise_div"])
@pytest.mark.parametrize("act", [("", 0.0), ("relu", 0.0)])
def test_same_shape_elementwise_on_blocked_tensors(op, act):
    """Two operands of the output's shape (a residual added after the activation): both tied to the output's
    layout, the kernel walks the blocked bytes as they are."""
    x, v = RNG.standard_normal((2, 32, 3, 5)).astype(np.float32), (RNG.standard_normal((2, 32, 3, 5)) + 3).astype(
        np.float32)
    at = {"act_type": act[0], "act_alpha": act[1]}
    decl = _binary_decl(op, x.shape, v.shape, at)
    assert decl.tied == (0, 1) and decl.free == ()
    out = np.empty_like(x)
    y = decl.variant({0, 1}, True)(to_blocked(x), to_blocked(v), out=out, **at)
    close(from_blocked(y), OPS[op].run(x, v, **at)[0])


@pytest.mark.parametrize("k, s, d, h, w, pads", [
    (5, 1, 2, 14, 14, (4, 4, 4, 4)),   # DeepLabV3's backbone: by phase grids
    (3, 1, 2, 6, 8, (2, 2, 2, 2)),
    (3, 1, 3, 9, 6, (3, 6, 0, 3)),     # asymmetric paddings, multiples of the dilation
    (5, 1, 2, 7, 8, (4, 4, 4, 4)),     # an odd map: the general kernel
    (3, 1, 2, 6, 6, (1, 1, 1, 1)),     # paddings not multiples of the dilation
    (3, 2, 2, 9, 7, (2, 2, 2, 2)),     # stride 2
    (7, 1, 2, 8, 8, (6, 6, 6, 6)),     # 7x7
])
@pytest.mark.parametrize("act", ["", "relu", "hard_swish"])
@pytest.mark.parametrize("batch", [1, 2])
def test_dilated_depthwise(k, s, d, h, w, pads, act, batch):
    """Dilated depthwise convs on blocked tensors, both ways (phase grids or the general kernel), against the
    reference."""
    c = 32
    x = RNG.standard_normal((batch, c, h, w)).astype(np.float32)
    wt = RNG.standard_normal((c, 1, k, k)).astype(np.float32)
    b = RNG.standard_normal(c).astype(np.float32)
    at = attrs("depthwise_conv2d", groups=c, strides=(s, s), paddings=pads, dilations=(d, d), act_type=act)
    fn = K.KERNELS[("depthwise_conv2d", "cpu")]["direct"].prepare([None, wt, b], at)
    ref = OPS["depthwise_conv2d"].run(x, wt, b, **at)[0]
    y = fn.blocked.variant({0}, True)(to_blocked(x), wt, b, out=to_blocked(np.zeros_like(ref)), **at)
    close(from_blocked(y), ref)


def test_split_and_channel_slices_of_blocked_tensors():
    """Whole blocks of channels, per batch item one run of bytes: a split (into arena views and not) and a
    strided_slice; a slice that is not whole blocks, strides, or slices another axis declares nothing."""
    from liteopt.ir import DType, Graph, Node, Tensor
    x = RNG.standard_normal((2, 64, 3, 5)).astype(np.float32)
    at = attrs("split", axis=1, sections=(16, 32, 16))
    fn = K.KERNELS[("split", "cpu")]["default"].prepare([None], at).blocked.variant({0}, True)
    for out in (None, tuple(np.empty((2, c, 3, 5), np.float32) for c in (16, 32, 16))):
        ys = fn(to_blocked(x), out=out, **at)
        for y, ref in zip(ys, np.split(x, [16, 48], axis=1)):
            np.testing.assert_array_equal(from_blocked(y), ref)
    tensors = {"x": Tensor("x", DType.FLOAT32, x.shape), "y": Tensor("y", DType.FLOAT32, None)}

    def sliced(**kw):
        at = attrs("strided_slice", **kw)
        fn = K.KERNELS[("strided_slice", "cpu")]["default"].prepare([None] * 4, at)
        return fn, at, fn.blocked.for_node(Graph([], [], [], tensors), Node("strided_slice", ["x"], ["y"], at, "n"))
    fn, at, decl = sliced(axes=(1,), starts=(16,), ends=(2 ** 63 - 1,))
    y = decl.variant({0}, True)(to_blocked(x), None, None, None, out=np.empty((2, 48, 3, 5), np.float32), **at)
    np.testing.assert_array_equal(from_blocked(y), x[:, 16:])
    fn, at, decl = sliced(axes=(-3,), starts=(-32,), ends=(-16,))
    np.testing.assert_array_equal(from_blocked(decl.variant({0}, True)(to_blocked(x), None, None, None, **at)),
                                  x[:, 32:48])
    for kw in (dict(axes=(1,), starts=(8,), ends=(24,)), dict(axes=(1,), starts=(0,), ends=(24,)),
               dict(axes=(1,), starts=(0,), ends=(64,), strides=(2,)), dict(axes=(1, 2), starts=(0, 0), ends=(32, 2)),
               dict(axes=(2,), starts=(0,), ends=(2,))):
        assert sliced(**kw)[2] is None, kw


@pytest.mark.parametrize("size", [None, (9, 12), (3, 5)])
@pytest.mark.parametrize("mode", [("asymmetric", "floor"), ("half_pixel", "round_prefer_floor")])
def test_nearest_upsampling_of_blocked_tensors(size, mode):
    """Twice the size by scales (YOLOv8's neck), other sizes, and the identity."""
    x = RNG.standard_normal((2, 32, 4, 6)).astype(np.float32)
    at = attrs("nearest_interp_v2", coordinate_transformation_mode=mode[0], nearest_mode=mode[1],
               **({"scale": (2.0, 2.0)} if size is None else {"out_h": size[0], "out_w": size[1]}))
    fn = K.KERNELS[("nearest_interp_v2", "cpu")]["default"].prepare([None] * 3, at).blocked.variant({0}, True)
    y = fn(to_blocked(x), None, None, **at)
    np.testing.assert_array_equal(from_blocked(y), OPS["nearest_interp_v2"].run(x, None, None, **at)[0])


@pytest.mark.parametrize("scale_first", [True, False])
def test_squeeze_excite_blocks_stay_blocked(scale_first, tmp_path):
    """A MobileNetV3 block: expand (hard_swish), depthwise, squeeze-excite (global pool, two 1x1 convs, hard
    sigmoid, the multiply: torchvision writes scale * x), project. The depthwise output and the multiply's
    result stay blocked; against onnxruntime at two batch sizes."""
    inits = {"we": (RNG.standard_normal((32, 16, 1, 1)) * 0.3).astype(np.float32),
             "wd": (RNG.standard_normal((32, 1, 3, 3)) * 0.3).astype(np.float32),
             "w1": (RNG.standard_normal((8, 32, 1, 1)) * 0.3).astype(np.float32), "b1": np.zeros(8, np.float32),
             "w2": (RNG.standard_normal((32, 8, 1, 1)) * 0.3).astype(np.float32), "b2": np.ones(32, np.float32),
             "wp": (RNG.standard_normal((16, 32, 1, 1)) * 0.3).astype(np.float32)}
    nodes = [helper.make_node("Conv", ["x", "we"], ["e"]), helper.make_node("HardSwish", ["e"], ["eh"]),
             helper.make_node("Conv", ["eh", "wd"], ["d"], group=32, pads=[1, 1, 1, 1]),
             helper.make_node("HardSwish", ["d"], ["dh"]),
             helper.make_node("GlobalAveragePool", ["dh"], ["g"]), helper.make_node("Conv", ["g", "w1", "b1"], ["s1"]),
             helper.make_node("Relu", ["s1"], ["s1r"]), helper.make_node("Conv", ["s1r", "w2", "b2"], ["s2"]),
             helper.make_node("HardSigmoid", ["s2"], ["s"], alpha=1 / 6, beta=0.5),
             helper.make_node("Mul", ["s", "dh"] if scale_first else ["dh", "s"], ["m"]),
             helper.make_node("Conv", ["m", "wp"], ["y"])]
    model = make_model(nodes, {"x": (np.float32, ["N", 16, 10, 10])}, ["y"], inits, opset=14)
    for n in (1, 2):
        check_model(model, {"x": RNG.standard_normal((n, 16, 10, 10)).astype(np.float32)}, tmpdir=str(tmp_path))
    prog = load(convert(model, str(tmp_path)))._program
    names = {n.op: n.outputs[0] for n in prog.graph.nodes}
    assert {names["depthwise_conv2d"], names["elementwise_mul"]} <= prog.blocked, prog.blocked
