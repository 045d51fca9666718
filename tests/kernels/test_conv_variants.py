"""Every fast conv variant against the numpy reference (the op's own definition), fused epilogues included."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from liteopt.ir import OPS
from liteopt.runtime import kernels as K
from liteopt.runtime.kernels._util import winograd_matrices

K.load_all()
RNG = np.random.default_rng(0)
ACTS = [("", 0.0), ("relu", 0.0), ("relu6", 6.0), ("leaky_relu", 0.1), ("hard_swish", 0.0), ("sigmoid", 0.0),
        ("swish", 1.0), ("hard_sigmoid", 1 / 6), ("tanh", 0.0)]


def attrs(op, **kw):
    a = {k: v.default for k, v in OPS[op].attrs.items()}
    a.update(kw)
    return a


def run_variant(op, variant, x, w, b, at, out=False, r=None):
    k = K.KERNELS[(op, "cpu")][variant]
    fn = (k.prepare([None, w, b], at) if k.prepare else None) or k.fn
    args = (x, w, b) if r is None else (x, w, b, r.copy())
    if out:
        ref_shape = OPS[op].run(x, w, b, **at)[0].shape
        buf = np.full(ref_shape, np.nan, np.float32)
        y = fn(*args, out=buf, **at)
        assert y is buf
    else:
        y = fn(*args, **at)
    assert r is None or np.array_equal(args[3], r), "the residual input was written"
    return y


def close(y, ref, tol):
    assert y.shape == ref.shape and y.dtype == np.float32
    assert np.abs(y - ref).max() <= tol * max(np.abs(ref).max(), 1e-6)


def test_winograd_matrices_compute_a_correlation():
    for m in (2, 4, 6):
        at, g, bt = winograd_matrices(m)
        d, f = RNG.standard_normal(m + 2), RNG.standard_normal(3)
        np.testing.assert_allclose(at @ ((g @ f) * (bt @ d)), [d[k:k + 3] @ f for k in range(m)], atol=1e-10)


@settings(max_examples=25, deadline=None)
@given(c=st.integers(1, 12), o=st.integers(1, 12), h=st.integers(3, 14), w=st.integers(3, 14),
       k=st.sampled_from([1, 3, 5]), s=st.sampled_from([1, 2]), d=st.sampled_from([1, 2]),
       pads=st.tuples(*[st.integers(0, 2)] * 4), g=st.sampled_from([1, 2]), act=st.sampled_from(ACTS),
       bias=st.booleans(), out=st.booleans(), residual=st.booleans())
@pytest.mark.parametrize("tiled", [True, False])
def test_gemm(tiled, c, o, h, w, k, s, d, pads, g, act, bias, out, residual):
    """(tiled: AVX-512 CPUs, where maps of up to 64 outputs go through the channel tiles; else BLAS only)"""
    from liteopt.runtime.kernels import _tiled
    if tiled and not _tiled.AVAILABLE:
        pytest.skip("this CPU has no AVX-512: the tiled GEMM is not used here")
    c, o = c * g, o * g
    if h + pads[0] + pads[1] < d * (k - 1) + 1 or w + pads[2] + pads[3] < d * (k - 1) + 1:
        return
    x = RNG.standard_normal((2, c, h, w)).astype(np.float32)
    wt = RNG.standard_normal((o, c // g, k, k)).astype(np.float32)
    b = RNG.standard_normal(o).astype(np.float32) if bias else None
    at = attrs("conv2d", strides=(s, s), paddings=pads, dilations=(d, d), groups=g, act_type=act[0], act_alpha=act[1])
    shape = OPS["conv2d"].run(x, wt, b, **at)[0].shape
    r = RNG.standard_normal(shape).astype(np.float32) if residual else None
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(_tiled, "AVAILABLE", tiled)
        y = run_variant("conv2d", "gemm", x, wt, b, at, out, r)
    close(y, OPS["conv2d"].run(x, wt, b, r, **at)[0], 1e-5)


@pytest.mark.parametrize("tiled", [True, False])
@settings(max_examples=40, deadline=None)
@given(c=st.one_of(st.integers(1, 40), st.just(200)), o=st.integers(1, 60),
       hw=st.sampled_from([(1, 1), (7, 7), (4, 8), (5, 13), (14, 14)]),
       act=st.sampled_from(ACTS + [("leaky_relu", 2.0), ("gelu", 0.0)]), bias=st.booleans(), out=st.booleans(),
       residual=st.booleans(), strided=st.booleans(), small_l2=st.booleans(), channel_tiles=st.booleans())
def test_pointwise(tiled, c, o, hw, act, bias, out, residual, strided, small_l2, channel_tiles):
    """1x1 convs: the register-tiled GEMMs (partial pixel panels, output channels past a 12-row panel, the
    activations it clamps in its tiles and the ones applied after, x in chunks; the channel tiles: partial
    channel panels and pixel groups), BLAS where the tiles do not
    pay (200 input channels on maps over 64 pixels) and the BLAS path of CPUs without AVX-512."""
    from liteopt.runtime.kernels import _tiled
    if tiled and not _tiled.AVAILABLE:
        pytest.skip("this CPU has no AVX-512: the tiled GEMM is not used here")
    x = RNG.standard_normal((2, 2 * c if strided else c, *hw)).astype(np.float32)
    x = x[:, ::2] if strided else x  # a channel split's view
    wt = RNG.standard_normal((o, c, 1, 1)).astype(np.float32)
    b = RNG.standard_normal(o).astype(np.float32) if bias else None
    at = attrs("conv2d", act_type=act[0], act_alpha=act[1])
    r = RNG.standard_normal((2, o, *hw)).astype(np.float32) if residual else None
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(_tiled, "AVAILABLE", tiled)
        if small_l2:  # x taken in chunks of one pixel panel (the last one partial)
            mp.setattr(_tiled, "X_IN_L2", 1)
        # output channels in the vectors (7x7 maps) up to 196 pixels, or never
        mp.setattr(_tiled, "CHANNEL_TILES_UP_TO", 196 if channel_tiles else 0)
        y = run_variant("conv2d", "gemm", x, wt, b, at, out, r)
    close(y, OPS["conv2d"].run(x, wt, b, r, **at)[0], 1e-5)


@pytest.mark.parametrize("variant,k,hw", [("gemm", 1, (7, 7)), ("gemm", 1, (12, 12)), ("gemm", 3, (6, 6)),
                                          ("direct", 3, (9, 30))])
def test_read_only_and_float64_residuals(variant, k, hw):
    """A residual that is read-only (a constant, a mapped input) or of another dtype reaches the kernels as a
    writable float32 copy: same result, no second compiled signature needed."""
    x = RNG.standard_normal((2, 6, *hw)).astype(np.float32)
    wt = RNG.standard_normal((5, 6, k, k)).astype(np.float32)
    at = attrs("conv2d", paddings=(k // 2,) * 4, act_type="relu")
    shape = OPS["conv2d"].run(x, wt, None, **at)[0].shape
    for r in (RNG.standard_normal(shape).astype(np.float32), RNG.standard_normal(shape)):
        ref = OPS["conv2d"].run(x, wt, None, r.astype(np.float32), **at)[0]
        r.flags.writeable = False
        k_ = K.KERNELS[("conv2d", "cpu")][variant]
        y = k_.prepare([None, wt, None], at)(x, wt, None, r, **at)
        close(y, ref, 1e-5)


@pytest.mark.parametrize("act", [("relu", 0.0), ("relu6", 6.0), ("leaky_relu", 0.1), ("", 0.0)])
@pytest.mark.parametrize("op,k,hw", [("conv2d", 1, (7, 7)), ("conv2d", 1, (12, 12)), ("conv2d", 3, (9, 30)),
                                     ("depthwise_conv2d", 3, (9, 30))])
def test_fused_activations_at_infinity(act, op, k, hw):
    """Pre-activations of +-inf (overflowed inputs) through the fused activations of every AVX-512 kernel (and
    the numba / BLAS ones): relu and relu6 of -inf are 0, not NaN (0 * -inf), leaky_relu keeps -inf."""
    c = 4
    x = RNG.standard_normal((1, c, *hw)).astype(np.float32)
    x[0, 0, 1, :3] = np.inf
    x[0, 1, 2, :3] = -np.inf
    groups = c if op == "depthwise_conv2d" else 1
    wt = np.abs(RNG.standard_normal((c, c // groups, k, k))).astype(np.float32) + 0.1
    at = attrs(op, paddings=(k // 2,) * 4, groups=groups, act_type=act[0], act_alpha=act[1])
    variant = "direct" if op == "depthwise_conv2d" or k == 3 else "gemm"
    with np.errstate(invalid="ignore"):  # (inf - inf in the reference's sums: NaN, as in the kernels)
        y = run_variant(op, variant, x, wt, None, at)
        ref = OPS[op].run(x, wt, None, **at)[0]
    np.testing.assert_array_equal(np.isnan(y), np.isnan(ref))
    finite = ~np.isnan(ref)
    np.testing.assert_allclose(y[finite], ref[finite], rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("k,s,pads,g", [(3, 1, (1, 1, 1, 1), 1), (7, 2, (3, 2, 3, 1), 2), (3, 2, (0, 1, 1, 0), 1)])
def test_gemm_in_row_blocks(monkeypatch, k, s, pads, g):
    """im2col + GEMM + epilogue over blocks of output rows (blocks of 2-3 rows here, the last one shorter),
    with and without a residual input."""
    from liteopt.runtime.kernels import conv_fast
    monkeypatch.setattr(conv_fast, "GEMM_BLOCK_BYTES", 1)
    monkeypatch.setattr(conv_fast, "GEMM_MIN_COLS", 25)
    x = RNG.standard_normal((2, 4, 23, 13)).astype(np.float32)
    wt = RNG.standard_normal((6, 4 // g, k, k)).astype(np.float32)
    b = RNG.standard_normal(6).astype(np.float32)
    at = attrs("conv2d", strides=(s, s), paddings=pads, groups=g, act_type="relu6", act_alpha=6.0)
    shape = OPS["conv2d"].run(x, wt, b, **at)[0].shape
    assert conv_fast._row_blocks(4 // g * k * k, shape[2], shape[3]) < shape[2]
    for r in (None, RNG.standard_normal(shape).astype(np.float32)):
        close(run_variant("conv2d", "gemm", x, wt, b, at, True, r), OPS["conv2d"].run(x, wt, b, r, **at)[0], 1e-5)


def test_gemm_stride2_planes_across_input_sizes():
    """Stride-2 im2col through phase planes kept between calls: inputs of 16 and 15 rows give the same 8x8
    output, and the second must not read the first one's last row as if it were inside the input."""
    wt = RNG.standard_normal((5, 3, 3, 3)).astype(np.float32)
    at = attrs("conv2d", strides=(2, 2), paddings=(1, 1, 1, 1))
    fn = K.KERNELS[("conv2d", "cpu")]["gemm"].prepare([None, wt, None], at)
    for h in (16, 15, 16):
        x = RNG.standard_normal((1, 3, h, h)).astype(np.float32)
        close(fn(x, wt, None, **at), OPS["conv2d"].run(x, wt, None, **at)[0], 1e-5)


@pytest.mark.parametrize("tiled", [True, False])
@settings(max_examples=30, deadline=None)
@given(c=st.integers(1, 12), o=st.integers(1, 27), h=st.integers(1, 19), w=st.integers(1, 70),
       s=st.sampled_from([1, 2]), pads=st.tuples(*[st.integers(0, 2)] * 4), act=st.sampled_from(ACTS + [("gelu", 0.0)]),
       bias=st.booleans(), out=st.booleans(), residual=st.booleans(), block=st.sampled_from([1, 40, 2048]),
       prepared=st.booleans(), tile=st.sampled_from([12, 16]))
def test_direct3x3(tiled, c, o, h, w, s, pads, act, bias, out, residual, block, prepared, tile):
    """Few-channel 3x3 convs: AVX-512 tiles (12 x 32 or 16 x 16, several filter panels and output strips, the
    last ones partial) or phase planes (blocks of one row up to the whole map). Odd channel counts, asymmetric
    paddings, an activation neither compiles (gelu), a residual, a run-time filter."""
    from liteopt.runtime.kernels import _tiled, conv_fast
    if tiled and not _tiled.AVAILABLE:
        pytest.skip("this CPU has no AVX-512: the tiled direct conv is not used here")
    if h + pads[0] + pads[1] < 3 or w + pads[2] + pads[3] < 3:
        return
    x = RNG.standard_normal((2, c, h, w)).astype(np.float32)
    wt = RNG.standard_normal((o, c, 3, 3)).astype(np.float32)
    b = RNG.standard_normal(o).astype(np.float32) if bias else None
    at = attrs("conv2d", strides=(s, s), paddings=pads, act_type=act[0], act_alpha=act[1])
    shape = OPS["conv2d"].run(x, wt, b, **at)[0].shape
    r = RNG.standard_normal(shape).astype(np.float32) if residual else None
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(conv_fast, "DIRECT_BLOCK", block)
        mp.setattr(_tiled, "AVAILABLE", tiled)
        mp.setattr(_tiled, "direct_tile", lambda o, ow, s: tile)
        if prepared:
            y = run_variant("conv2d", "direct", x, wt, b, at, out, r)
        else:
            args = (x, wt, b) if r is None else (x, wt, b, r)
            y = K.KERNELS[("conv2d", "cpu")]["direct"].fn(*args, **at)
    close(y, OPS["conv2d"].run(x, wt, b, r, **at)[0], 1e-5)


def test_direct_tile_counts_padded_outputs():
    """16 x 16 tiles where the output channels are whole 16s (stems of 16 and 32 channels), 12 x 32 where they
    waste a third of a 16-row tile and the 32-wide strips fit (24 channels on 56-wide rows, stride 1)."""
    from liteopt.runtime.kernels._tiled import direct_tile
    assert direct_tile(16, 112, 2) == direct_tile(32, 112, 2) == direct_tile(16, 320, 2) == 16
    assert direct_tile(24, 56, 1) == direct_tile(12, 64, 1) == 12


@pytest.mark.parametrize("s", [1, 2])
def test_direct_on_a_cpu_without_avx512_hands_wide_convs_over(s):
    """A .nb whose 16 -> 64 channel conv opt gave the direct variant, run where the AVX-512 tiles are not:
    the variant falls back to Winograd (stride 1) or im2col + GEMM, with the same result."""
    from liteopt.runtime.kernels import _tiled
    x = RNG.standard_normal((1, 16, 30, 30)).astype(np.float32)
    wt = (RNG.standard_normal((64, 16, 3, 3)) / 12).astype(np.float32)
    b = RNG.standard_normal(64).astype(np.float32)
    at = attrs("conv2d", strides=(s, s), paddings=(1, 1, 1, 1), act_type="relu")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(_tiled, "AVAILABLE", False)
        y = run_variant("conv2d", "direct", x, wt, b, at, True)
    close(y, OPS["conv2d"].run(x, wt, b, **at)[0], 5e-5)


@pytest.mark.parametrize("variant,strides", [("gemm", (2, 2)), ("gemm", (1, 1)), ("winograd_f43", (1, 1)),
                                             ("direct", (1, 1)), ("direct", (2, 2))])
def test_prepared_conv_over_many_input_sizes(variant, strides):
    """A prepared conv fed more input sizes than it keeps scratch buffers for (dynamic shapes): every size,
    including ones seen again after the buffers were dropped, gives the reference result."""
    wt = (RNG.standard_normal((16, 8, 3, 3)) / 8).astype(np.float32)
    at = attrs("conv2d", strides=strides, paddings=(1, 1, 1, 1))
    fn = K.KERNELS[("conv2d", "cpu")][variant].prepare([None, wt, None], at)
    for h in [9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 9, 12]:
        x = RNG.standard_normal((1, 8, h, h + 3)).astype(np.float32)
        close(fn(x, wt, None, **at), OPS["conv2d"].run(x, wt, None, **at)[0], 5e-5)


@pytest.mark.parametrize("variant,tol", [("winograd_f23", 1e-5), ("winograd_f43", 5e-5), ("winograd_f63", 1e-4)])
@pytest.mark.parametrize("shape,pads,act", [((1, 8, 9, 11, 16), (1, 1, 1, 1), ("relu", 0.0)),
                                            ((2, 16, 20, 20, 8), (0, 1, 2, 1), ("relu6", 6.0)),
                                            ((1, 32, 14, 14, 32), (1, 1, 1, 1), ("", 0.0)),
                                            ((1, 64, 56, 56, 64), (1, 1, 1, 1), ("hard_swish", 0.0)),
                                            ((2, 40, 21, 19, 24), (1, 0, 2, 1), ("hard_swish", 0.0))])
def test_winograd(variant, tol, shape, pads, act):
    """(Output channels not whole blocks of 16, without a residual: by the blocked kernel with the filter padded,
    where the CPU has AVX-512, `_padded_winograd`.)"""
    n, c, h, w, o = shape
    x = RNG.standard_normal((n, c, h, w)).astype(np.float32)
    wt = (RNG.standard_normal((o, c, 3, 3)) / np.sqrt(9 * c)).astype(np.float32)
    b = RNG.standard_normal(o).astype(np.float32)
    at = attrs("conv2d", paddings=pads, act_type=act[0], act_alpha=act[1])
    shape = OPS["conv2d"].run(x, wt, b, **at)[0].shape
    for r in (None, RNG.standard_normal(shape).astype(np.float32)):  # the residual goes in before the activation
        close(run_variant("conv2d", variant, x, wt, b, at, True, r), OPS["conv2d"].run(x, wt, b, r, **at)[0], tol)


@pytest.mark.parametrize("variant,most", [("winograd_f23", 2.0), ("winograd_f43", 4.0)])
@pytest.mark.parametrize("blocked", [False, True])
def test_winograd_error_stays_near_the_gemms(variant, most, blocked):
    """Winograd's float32 result stays within a few times the error of im2col + GEMM, both measured from the
    exact (float64) convolution, on ResNet50's first-stage conv (64 channels, 56x56, after a ReLU), in NCHW and
    blocked: F(4,3) with its points 0, +-3/2, +-2/3 makes 2.8x the GEMM's error (the usual 0, +-1, +-1/2: 13.5x,
    which put ResNet50's logits 1.4e-4 from onnxruntime's)."""
    from liteopt.runtime.kernels import _blocked
    if blocked and not _blocked.AVAILABLE:
        pytest.skip("this CPU has no AVX-512: no blocked kernels here")
    rng = np.random.default_rng(0)
    c = 64
    x = np.maximum(rng.standard_normal((1, c, 56, 56)), 0).astype(np.float32)
    wt = (rng.standard_normal((c, c, 3, 3)) * np.sqrt(2 / (9 * c))).astype(np.float32)
    at = attrs("conv2d", paddings=(1, 1, 1, 1))
    xp = np.pad(x[0].astype(np.float64), ((0, 0), (1, 1), (1, 1)))
    cols = np.stack([xp[:, i:i + 56, j:j + 56] for i in range(3) for j in range(3)], 1).reshape(c * 9, -1)
    exact = (wt.reshape(c, -1).astype(np.float64) @ cols).reshape(1, c, 56, 56)
    gemm = np.abs(run_variant("conv2d", "gemm", x, wt, None, at) - exact).max()
    if blocked:  # NCHW16c: a pixel's 16 channels side by side
        fn = K.KERNELS[("conv2d", "cpu")][variant].prepare([None, wt, None], at).blocked.variant({0}, True)
        xb = np.ascontiguousarray(x.reshape(1, 4, 16, -1).transpose(0, 1, 3, 2)).reshape(x.shape)
        y = fn(xb, wt, None, **at)
        y = np.ascontiguousarray(y.reshape(1, 4, -1, 16).transpose(0, 1, 3, 2)).reshape(x.shape)
    else:
        y = run_variant("conv2d", variant, x, wt, None, at)
    assert np.abs(y - exact).max() <= most * gemm, (np.abs(y - exact).max(), gemm)


@pytest.mark.parametrize("k,s,pads", [(3, 1, (1, 1, 1, 1)), (3, 2, (0, 1, 0, 1)), (5, 1, (2, 2, 2, 2)),
                                      (5, 2, (1, 2, 2, 1)), (3, 1, (0, 0, 0, 0)), (3, 2, (2, 0, 3, 1)),
                                      (5, 1, (0, 3, 1, 4)), (3, (2, 1), (1, 1, 1, 1)), (5, (2, 1), (2, 2, 2, 2)),
                                      (3, (1, 2), (0, 2, 1, 0)), (5, (1, 2), (1, 2, 2, 1)), (7, 1, (3, 3, 3, 3)),
                                      (7, 1, (1, 4, 0, 5))])
@pytest.mark.parametrize("act", [("", 0.0), ("relu6", 6.0), ("hard_swish", 0.0), ("leaky_relu", 0.1),
                                 ("leaky_relu", 3.0), ("sigmoid", 0.0), ("gelu", 0.0)])
# AVX-512 CPUs: 16-lane strips straight from NCHW (3x3 stride 1 from 100 wide: row by row). Others: outputs under
# 10 wide go channels-last (3x3 stride 2: row by row), 10-99 through the phase planes, wider 3x3 ones row by
# row (5x5: planes; 7x7, stride 1 (ConvNeXt's): channels-last); strides that differ (PP-OCR's (2, 1)): the strips, elsewhere the generic loop. Odd and even
# widths, asymmetric paddings, with and without a bias.
@pytest.mark.parametrize("hw", [(7, 8), (13, 12), (45, 41), (11, 213)])
@pytest.mark.parametrize("vec", [True, False])
def test_depthwise_direct(k, s, pads, act, hw, vec):
    from liteopt.runtime.kernels import _dwvec
    if vec and not _dwvec.AVAILABLE:
        pytest.skip("this CPU has no AVX-512: the 16-lane depthwise kernel is not used here")
    x = RNG.standard_normal((2, 8, *hw)).astype(np.float32)
    wt = RNG.standard_normal((8, 1, k, k)).astype(np.float32)
    b = RNG.standard_normal(8).astype(np.float32) if hw[0] != 13 else None
    at = attrs("depthwise_conv2d", strides=s if isinstance(s, tuple) else (s, s), paddings=pads, groups=8,
               act_type=act[0], act_alpha=act[1])
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(_dwvec, "AVAILABLE", vec)
        y = run_variant("depthwise_conv2d", "direct", x, wt, b, at, out=True)
    close(y, OPS["depthwise_conv2d"].run(x, wt, b, **at)[0], 1e-5)


@pytest.mark.parametrize("k", [3, 5])
@pytest.mark.parametrize("s", [(1, 1), (2, 1), (1, 2), (2, 2)])
@pytest.mark.parametrize("h", [1, 2, 3])
@pytest.mark.parametrize("act", [("relu", 0.0), ("hard_swish", 0.0)])
@pytest.mark.parametrize("vec", [True, False])
def test_depthwise_direct_short_maps(k, s, h, act, vec):
    """Maps of 1-3 rows under the kernel's padding (PP-OCR's direction classifier: 2-3 rows, 5x5): most tap rows
    lie in the padding, which the 16-lane strips do not visit."""
    from liteopt.runtime.kernels import _dwvec
    if vec and not _dwvec.AVAILABLE:
        pytest.skip("this CPU has no AVX-512: the 16-lane depthwise kernel is not used here")
    x = RNG.standard_normal((1, 24, h, 53)).astype(np.float32)
    wt = RNG.standard_normal((24, 1, k, k)).astype(np.float32)
    b = RNG.standard_normal(24).astype(np.float32)
    p = k // 2
    at = attrs("depthwise_conv2d", strides=s, paddings=(p, p, p, p), groups=24, act_type=act[0], act_alpha=act[1])
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(_dwvec, "AVAILABLE", vec)
        y = run_variant("depthwise_conv2d", "direct", x, wt, b, at, out=True)
    close(y, OPS["depthwise_conv2d"].run(x, wt, b, **at)[0], 1e-5)


@pytest.mark.parametrize("k,s,groups,bias", [((2, 2), (2, 2), 1, True), ((2, 3), (2, 3), 2, False),
                                             ((3, 3), (2, 2), 1, True)])
@pytest.mark.parametrize("act", [("", 0.0), ("sigmoid", 0.0), ("relu6", 6.0), ("gelu", 0.0)])
def test_conv2d_transpose_fused_activation(k, s, groups, bias, act):
    """The stride == kernel path writes each output once with bias and activation; others scatter-add."""
    x = RNG.standard_normal((2, 4, 7, 6)).astype(np.float32)
    wt = RNG.standard_normal((4, 3, *k)).astype(np.float32)
    b = RNG.standard_normal(3 * groups).astype(np.float32) if bias else None
    at = attrs("conv2d_transpose", strides=s, groups=groups, act_type=act[0], act_alpha=act[1])
    close(run_variant("conv2d_transpose", "default", x, wt, b, at, out=True),
          OPS["conv2d_transpose"].run(x, wt, b, **at)[0], 1e-5)


def test_f23_without_avx512_hands_few_channels_to_gemm():
    """opt picks F(2,3) from 32 channels for the blocked form (the same file on every CPU); without AVX-512
    there is no blocked form, and under 128 channels im2col + GEMM is faster: that is what the variant runs."""
    from liteopt.runtime.kernels import _blocked_winograd
    x = RNG.standard_normal((1, 32, 13, 13)).astype(np.float32)
    wt = RNG.standard_normal((32, 32, 3, 3)).astype(np.float32)
    b = RNG.standard_normal(32).astype(np.float32)
    at = attrs("conv2d", paddings=(1, 1, 1, 1), act_type="relu")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(_blocked_winograd, "AVAILABLE", False)
        fn = K.KERNELS[("conv2d", "cpu")]["winograd_f23"].prepare([None, wt, b], at)
        gemm = K.KERNELS[("conv2d", "cpu")]["gemm"].prepare([None, wt, b], at)
        assert fn.__code__ is gemm.__code__
        close(run_variant("conv2d", "winograd_f23", x, wt, b, at, out=True), OPS["conv2d"].run(x, wt, b, **at)[0],
              1e-5)


@pytest.mark.parametrize("c,o,hw,want,want_s2", [(64, 64, 56, "winograd_f43", "gemm"),
                                                 (32, 32, 20, "winograd_f43", "gemm"), (256, 256, 14, "winograd_f23", "gemm"),
                                                 (64, 64, 13, "winograd_f23", "gemm"), (64, 72, 13, "gemm", "gemm"),
                                                 (256, 256, 7, "gemm", "gemm"), (8, 8, 56, "direct", "direct"),
                                                 (3, 32, 224, "direct", "direct"), (16, 64, 56, "winograd_f43", "direct"),
                                                 (24, 40, 56, "direct", "direct"), (48, 192, 13, "winograd_f23", "gemm")])
def test_conv_kernel_choice_and_override(c, o, hw, want, want_s2):
    """opt picks a variant where it pays; an override only needs the variant to apply. (Few input channels on
    wide maps go to the direct conv, unless the output can be blocked and Winograd applies; on 10x10..19x19
    maps F(2,3) from 32 channels when the output can be blocked, else from 128. The same choice on every CPU:
    the file must not depend on where opt ran.)"""
    from liteopt.ir import DType, Node, Tensor
    f = DType.FLOAT32
    tensors = {"x": Tensor("x", f, (1, c, hw, hw)), "w": Tensor("w", f, (o, c, 3, 3)),
               "y": Tensor("y", f, (1, o, hw, hw))}
    node = Node("conv2d", ["x", "w", ""], ["y"], attrs("conv2d", paddings=(1, 1, 1, 1)), "conv")
    assert K.choose(node, tensors, "cpu") == want
    assert K.choose(node, tensors, "cpu", {"conv2d": "winograd_f63"}) == ("winograd_f63" if c >= 8 else want)
    assert K.choose(node, tensors, "cpu", {"conv2d": "gemm"}) == "gemm"
    node.attrs["strides"] = (2, 2)  # Winograd does not apply: the override falls back to the choice
    tensors["y"] = Tensor("y", f, (1, o, hw // 2, hw // 2))
    assert K.choose(node, tensors, "cpu", {"conv2d": "winograd_f63"}) == want_s2


@pytest.mark.parametrize("k,s,want", [(3, (2, 1), "direct"), (5, (1, 2), "direct"), (3, (2, 2), "direct"),
                                      (3, (3, 1), "gemm"), (7, (1, 1), "direct"), (7, (2, 2), "gemm")])
def test_depthwise_kernel_choice(k, s, want):
    """The direct depthwise kernels take 3x3 and 5x5 filters with strides of 1 or 2 on each axis, different ones
    included (PP-OCR's (2, 1): through im2col + GEMM one channel at a time they took 10-20x as long), and 7x7
    ones at stride 1 (ConvNeXt's)."""
    from liteopt.ir import DType, Node, Tensor
    f = DType.FLOAT32
    tensors = {"x": Tensor("x", f, (1, 32, 12, 96)), "w": Tensor("w", f, (32, 1, k, k)),
               "y": Tensor("y", f, (1, 32, 12 // s[0], 96 // s[1]))}
    node = Node("depthwise_conv2d", ["x", "w", ""], ["y"],
                attrs("depthwise_conv2d", strides=s, paddings=(k // 2,) * 4, groups=32), "dw")
    assert K.choose(node, tensors, "cpu") == want


@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("cin,cout", [(576, 144), (8, 32), (40, 10)])
def test_pointwise_conv_of_a_1x1_map(act, bias, cin, cout):
    """A squeeze-excite block's 1x1 convs on its pooled 1x1 map: the matrix-vector product and one epilogue pass,
    in NCHW and, where the layout blocks it (relu-like and hard_swish), in the blocked variant (the same bytes)."""
    x = RNG.standard_normal((1, cin, 1, 1)).astype(np.float32)
    wt = (RNG.standard_normal((cout, cin, 1, 1)) / np.sqrt(cin)).astype(np.float32)
    b = RNG.standard_normal(cout).astype(np.float32) if bias else None
    at = attrs("conv2d", act_type=act[0], act_alpha=act[1])
    want = OPS["conv2d"].run(x, wt, b, **at)[0]
    close(run_variant("conv2d", "gemm", x, wt, b, at, out=True), want, 1e-5)
    fn = K.KERNELS[("conv2d", "cpu")]["gemm"].prepare([None, wt, b], at)
    if getattr(fn, "blocked", None) is not None:
        close(fn.blocked.variant({0}, True)(x, wt, b, out=np.full(want.shape, np.nan, np.float32), **at), want, 1e-5)


@pytest.mark.parametrize("h, w, k, s, d, pads", [
    (14, 14, 3, 1, 12, (12, 12, 12, 12)),   # DeepLabV3's ASPP at dilation 12
    (9, 7, 3, 1, 6, (6, 3, 5, 6)),          # asymmetric paddings
    (10, 11, 3, 2, 8, (8, 8, 8, 8)),        # stride 2
    (8, 8, 5, 1, 6, (12, 12, 12, 12)),      # 5x5
])
@pytest.mark.parametrize("act", [("", 0.0), ("relu", 0.0), ("sigmoid", 0.0)])
@pytest.mark.parametrize("bias, residual", [(True, False), (False, True)])
def test_dilated_gemm_by_taps(monkeypatch, h, w, k, s, d, pads, act, bias, residual):
    """A dilated conv whose taps mostly read the padding runs tap by tap (`_conv_by_taps`), two images."""
    from liteopt.runtime.kernels import conv_fast
    calls = []
    by_taps = conv_fast._conv_by_taps
    monkeypatch.setattr(conv_fast, "_conv_by_taps", lambda *a: calls.append(1) or by_taps(*a))
    x = RNG.standard_normal((2, 6, h, w)).astype(np.float32)
    wt = RNG.standard_normal((5, 6, k, k)).astype(np.float32)
    b = RNG.standard_normal(5).astype(np.float32) if bias else None
    at = attrs("conv2d", strides=(s, s), paddings=pads, dilations=(d, d), act_type=act[0], act_alpha=act[1])
    ref_shape = OPS["conv2d"].run(x, wt, b, **at)[0].shape
    r = RNG.standard_normal(ref_shape).astype(np.float32) if residual else None
    y = run_variant("conv2d", "gemm", x, wt, b, at, out=True, r=r)
    close(y, OPS["conv2d"].run(x, wt, b, r, **at)[0], 1e-5)
    assert calls


@pytest.mark.parametrize("act", ACTS + [("gelu", 0.0)])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("shape", [(1, 7, 5, 24), (3, 24), (1, 24)])
def test_fc_epilogue(act, bias, shape):
    """fc's bias and fused activation, one pass a row (a transformer's 3-D input, a batch, a classifier's row)."""
    x = RNG.standard_normal(shape).astype(np.float32)
    wt = RNG.standard_normal((24, 40)).astype(np.float32)
    b = RNG.standard_normal(40).astype(np.float32) if bias else None
    at = attrs("fc", in_num_col_dims=len(shape) - 1, act_type=act[0], act_alpha=act[1])
    y = K.KERNELS[("fc", "cpu")]["default"].fn(x, wt, b, **at)
    close(y, OPS["fc"].run(x, wt, b, **at)[0], 1e-5)


@pytest.mark.parametrize("g, cg, og, hw, s", [(25, 4, 4, 7, 1), (4, 16, 16, 12, 2), (3, 5, 2, 9, 1)])
@pytest.mark.parametrize("batched", [True, False])
@pytest.mark.parametrize("residual", [False, True])
def test_grouped_gemm(monkeypatch, g, cg, og, hw, s, batched, residual):
    """Grouped convs (RegNet's): im2col of all channels and one batched product, or group by group when the
    columns would exceed `GROUPED_COLS_UP_TO`; stride 2 through the phase planes; two images."""
    from liteopt.runtime.kernels import conv_fast
    if not batched:
        monkeypatch.setattr(conv_fast, "GROUPED_COLS_UP_TO", 0)
    x = RNG.standard_normal((2, g * cg, hw, hw)).astype(np.float32)
    wt = RNG.standard_normal((g * og, cg, 3, 3)).astype(np.float32)
    b = RNG.standard_normal(g * og).astype(np.float32)
    at = attrs("conv2d", groups=g, strides=(s, s), paddings=(1, 1, 1, 1), act_type="relu")
    ref_shape = OPS["conv2d"].run(x, wt, b, **at)[0].shape
    r = RNG.standard_normal(ref_shape).astype(np.float32) if residual else None
    y = run_variant("conv2d", "gemm", x, wt, b, at, out=True, r=r)
    close(y, OPS["conv2d"].run(x, wt, b, r, **at)[0], 1e-5)
