"""TF convolutions, pools, bias, batch norm and resizes -> NCHW IR ops with explicit (top, bottom, left,
right) paddings. TF filters are HWIO (depthwise: HWCM); ours are OIHW (conv2d_transpose: IOHW)."""
from __future__ import annotations

import numpy as np

from ..registry import tf_op

HWIO_TO_OIHW = (3, 2, 0, 1)


def _hw(ctx, vals, data_format: str, what: str) -> tuple[int, int]:
    """The (H, W) entries of a 4-value attribute (strides, dilations, ksize) given in data_format order."""
    vals = tuple(int(v) for v in vals)
    if len(vals) != 4:
        raise ctx.error(f"{what} must have 4 values, got {vals}")
    h, w = (1, 2) if data_format == "NHWC" else (2, 3)
    if any(vals[i] != 1 for i in range(4) if i not in (h, w)):
        raise ctx.error(f"{what} {vals} other than 1 on the batch or channel dim are not supported")
    return vals[h], vals[w]


def same_pads(size, k: int, s: int, d: int) -> tuple[int, int] | None:
    """TF SAME: out = ceil(size / s), total padding max((out - 1) * s + (k - 1) * d + 1 - size, 0), the odd
    pixel at the end. With stride 1 the total is (k - 1) * d whatever the size; else None for unknown sizes."""
    if s == 1:
        total = (k - 1) * d
    elif not isinstance(size, int):
        return None
    else:
        total = max((-(-size // s) - 1) * s + (k - 1) * d + 1 - size, 0)
    return total // 2, total - total // 2


def _paddings(ctx, x_nchw: str, kernel, strides, dilations, padding: str, explicit, data_format: str):
    """(top, bottom, left, right) for TF padding VALID / SAME / EXPLICIT."""
    if padding == "VALID":
        return (0, 0, 0, 0)
    if padding == "EXPLICIT":
        ep = [int(v) for v in explicit]
        if len(ep) != 8:
            raise ctx.error(f"explicit_paddings must have 8 values, got {ep}")
        h, w = (1, 2) if data_format == "NHWC" else (2, 3)
        if any(ep[2 * i] or ep[2 * i + 1] for i in range(4) if i not in (h, w)):
            raise ctx.error(f"explicit_paddings {ep} on the batch or channel dim are not supported")
        return (ep[2 * h], ep[2 * h + 1], ep[2 * w], ep[2 * w + 1])
    if padding != "SAME":
        raise ctx.error(f"padding {padding!r} is not supported (SAME, VALID or EXPLICIT)")
    shape = ctx.shape(x_nchw)
    pads = []
    for ax in range(2):
        p = same_pads(shape[2 + ax], kernel[ax], strides[ax], dilations[ax])
        if p is None:
            raise ctx.error(f"padding SAME with stride {strides[ax]} needs the input's spatial size, which is "
                            f"unknown ({shape[2 + ax]}); pin it with --input_shape")
        pads += p
    return tuple(pads)


def _filter(ctx, w, perm, reshape=None) -> str:
    """The filter as our layout wants it: a constant transposed here, else transpose2 (reshape2) ops."""
    val = ctx.value_of(w)
    if val is not None:
        val = val.reshape(reshape) if reshape else val
        return ctx.const(np.ascontiguousarray(val.transpose(perm)), "filter")
    name = ctx.tf(w)
    if reshape:
        name = ctx.emit("reshape2", [name], shape=reshape)
    return ctx.emit("transpose2", [name], axis=perm)


def _static_shape(ctx, name: str, what: str):
    s = ctx.shape(name)
    if s is None or not all(isinstance(d, int) for d in s):
        raise ctx.error(f"the {what}'s shape must be known, got {s}")
    return s


def _channels(ctx, x_nchw: str) -> int:
    c = ctx.shape(x_nchw)[1]
    if not isinstance(c, int):
        raise ctx.error(f"the input's channel count must be known, got shape {ctx.shape(x_nchw)}")
    return c


@tf_op("Conv2D")
def Conv2D(ctx, x, w, *, strides, padding, data_format="NHWC", dilations=(1, 1, 1, 1), explicit_paddings=(),
           use_cudnn_on_gpu=True):
    """-> conv2d (groups = C / filter in-channels), or depthwise_conv2d when that is what it is"""
    xin = ctx.nchw(x, data_format)
    filt = _filter(ctx, w, HWIO_TO_OIHW)
    o, i, kh, kw = _static_shape(ctx, filt, "filter")
    c = _channels(ctx, xin)
    if c % i:
        raise ctx.error(f"the input has {c} channels, not a multiple of the filter's {i}")
    st, dl = _hw(ctx, strides, data_format, "strides"), _hw(ctx, dilations, data_format, "dilations")
    pads = _paddings(ctx, xin, (kh, kw), st, dl, padding, explicit_paddings, data_format)
    groups = c // i
    op = "depthwise_conv2d" if groups > 1 and i == 1 and o == groups else "conv2d"
    y = ctx.emit(op, [xin, filt], strides=st, paddings=pads, dilations=dl, groups=groups)
    return ctx.from_nchw(y, data_format)


@tf_op("DepthwiseConv2dNative")
def DepthwiseConv2dNative(ctx, x, w, *, strides, padding, data_format="NHWC", dilations=(1, 1, 1, 1),
                          explicit_paddings=()):
    """filter HWCM, output channel c * M + m -> depthwise_conv2d (M = 1) or conv2d with groups = C"""
    xin = ctx.nchw(x, data_format)
    ws = ctx.shape_of(w)
    if ws is None or len(ws) != 4 or not all(isinstance(d, int) for d in ws):
        raise ctx.error(f"the filter must be 4-D (H, W, C, M) with a known shape, got {ws}")
    kh, kw, c, m = ws
    if _channels(ctx, xin) != c:
        raise ctx.error(f"the input has {_channels(ctx, xin)} channels, the filter {c}")
    filt = _filter(ctx, w, HWIO_TO_OIHW, reshape=(kh, kw, 1, c * m))
    st, dl = _hw(ctx, strides, data_format, "strides"), _hw(ctx, dilations, data_format, "dilations")
    pads = _paddings(ctx, xin, (kh, kw), st, dl, padding, explicit_paddings, data_format)
    y = ctx.emit("depthwise_conv2d" if m == 1 else "conv2d", [xin, filt], strides=st, paddings=pads,
                 dilations=dl, groups=c)
    return ctx.from_nchw(y, data_format)


@tf_op("Conv2DBackpropInput")
def Conv2DBackpropInput(ctx, input_sizes, w, dy, *, strides, padding, data_format="NHWC",
                        dilations=(1, 1, 1, 1), explicit_paddings=(), use_cudnn_on_gpu=True):
    """The gradient of a Conv2D = conv2d_transpose, cropped (paddings) or extended (output_padding) so
    that the output has `input_sizes`, the forward conv's input size."""
    sizes = [int(v) for v in ctx.const_of(input_sizes, "input_sizes (the output shape)").reshape(-1)]
    if len(sizes) != 4:
        raise ctx.error(f"input_sizes must have 4 values, got {sizes}")
    out_hw = (sizes[1], sizes[2]) if data_format == "NHWC" else (sizes[2], sizes[3])
    xin = ctx.nchw(dy, data_format)
    filt = _filter(ctx, w, HWIO_TO_OIHW)  # (out_backprop channels, result channels, kh, kw) = IOHW
    i, o, kh, kw = _static_shape(ctx, filt, "filter")
    if _channels(ctx, xin) != i:
        raise ctx.error(f"out_backprop has {_channels(ctx, xin)} channels, the filter expects {i}")
    st, dl = _hw(ctx, strides, data_format, "strides"), _hw(ctx, dilations, data_format, "dilations")
    in_hw = ctx.shape(xin)[2:]
    if not all(isinstance(d, int) for d in in_hw):
        raise ctx.error(f"out_backprop's spatial size must be known, got {ctx.shape(xin)}; pin it with --input_shape")
    if padding == "SAME":  # the forward conv's padding, computed on its input (our output)
        fwd = [same_pads(out_hw[a], (kh, kw)[a], st[a], dl[a]) for a in range(2)]
        fwd = (*fwd[0], *fwd[1])
    else:
        fwd = _paddings(ctx, xin, (kh, kw), st, dl, padding, explicit_paddings, data_format)
    pads, extra = [], []
    for a, k in enumerate((kh, kw)):
        full = (in_hw[a] - 1) * st[a] + dl[a] * (k - 1) + 1
        before = fwd[2 * a]
        after = full - before - out_hw[a]
        pads += [before, max(after, 0)]
        extra.append(max(-after, 0))
    y = ctx.emit("conv2d_transpose", [xin, filt], strides=st, paddings=tuple(pads), dilations=dl,
                 output_padding=tuple(extra))
    return ctx.from_nchw(y, data_format)


@tf_op("BiasAdd", "BiasAddV1")
def BiasAdd(ctx, x, bias, *, data_format="NHWC"):
    """x + bias along the channel axis (the last for NHWC, 1 for NCHW)"""
    if data_format == "NHWC":
        return ctx.binary("elementwise_add", x, bias)
    r = ctx.rank_of(x)
    val = ctx.value_of(bias)
    if val is not None:
        b = ctx.const(val.reshape((-1,) + (1,) * (r - 2)), "bias")
    else:
        b = ctx.emit("unsqueeze2", [ctx.tf(bias)], axes=tuple(range(1, r - 1)))
    return ctx.binary("elementwise_add", x, type(x)(b))


@tf_op("FusedBatchNorm", "FusedBatchNormV2", "FusedBatchNormV3")
def FusedBatchNorm(ctx, x, scale, offset, mean, variance, *, epsilon=1e-4, data_format="NHWC", is_training=True,
                   exponential_avg_factor=1.0):
    """inference batch norm -> batch_norm (NCHW); only output 0 (y) is converted"""
    if is_training:
        raise ctx.error("batch norm in training mode (is_training=true) normalizes with batch statistics; "
                        "export the model for inference (training=False)")
    xin = ctx.nchw(x, data_format)
    y = ctx.emit("batch_norm", [xin] + [ctx.tf(v) for v in (scale, offset, mean, variance)], epsilon=epsilon)
    return ctx.from_nchw(y, data_format)


def _pool(ctx, x, kind, ksize, strides, padding, data_format, explicit_paddings=()):
    """-> pool2d. SAME on an unknown size with windows of at most 2 is ceil mode without padding: TF's
    padding is then 0 before and 0 or 1 after, which is exactly ceil mode's overhang (MTCNN's P-Net)."""
    xin = ctx.nchw(x, data_format)
    k, st = _hw(ctx, ksize, data_format, "ksize"), _hw(ctx, strides, data_format, "strides")
    hw = ctx.shape(xin)[2:]
    if padding == "SAME" and max(k) <= 2 and not all(isinstance(d, int) for d in hw):
        y = ctx.emit("pool2d", [xin], pooling_type=kind, ksize=k, strides=st, ceil_mode=True, exclusive=True)
        return ctx.from_nchw(y, data_format)
    pads = _paddings(ctx, xin, k, st, (1, 1), padding, explicit_paddings, data_format)
    y = ctx.emit("pool2d", [xin], pooling_type=kind, ksize=k, strides=st, paddings=pads, exclusive=True)
    return ctx.from_nchw(y, data_format)


@tf_op("MaxPool")
def MaxPool(ctx, x, *, ksize, strides, padding, data_format="NHWC", explicit_paddings=()):
    return _pool(ctx, x, "max", ksize, strides, padding, data_format, explicit_paddings)


@tf_op("AvgPool")
def AvgPool(ctx, x, *, ksize, strides, padding, data_format="NHWC"):
    """TF averages over the window's elements inside the input (padding not counted: exclusive)"""
    return _pool(ctx, x, "avg", ksize, strides, padding, data_format)


# (align_corners, half_pixel_centers) -> (coordinate_transformation_mode, nearest_mode), TF's resize kernels:
# legacy: in = out * (in_size / out_size); align_corners: in = out * (in - 1) / (out - 1), nearest rounds
# half away from zero; half_pixel_centers: bilinear (out + 0.5) * scale - 0.5, nearest floor((out + 0.5) * scale)
RESIZE_MODES = {
    (False, False): ("asymmetric", "floor"),
    (True, False): ("align_corners", "round_prefer_ceil"),
    (False, True): (None, "floor"),  # coordinate mode by op, below
}
HALF_PIXEL = {"bilinear_interp_v2": "half_pixel", "nearest_interp_v2": "tf_half_pixel_for_nn"}


def tf_nearest_index(out: int, size: int, align_corners: bool, half_pixel_centers: bool) -> np.ndarray:
    """The input index TF's ResizeNearestNeighbor reads for each output index (float32, as TF computes)."""
    f = np.float32
    scale = f(size - 1) / f(out - 1) if align_corners and out > 1 else f(size) / f(out)
    i = np.arange(out, dtype=f)
    if align_corners:
        idx = np.floor(i * scale + f(0.5))  # roundf of a non-negative value
    elif half_pixel_centers:
        idx = np.floor((i + f(0.5)) * scale)
    else:
        idx = np.floor(i * scale)
    return np.clip(idx, 0, size - 1).astype(np.int64)


def _ours_nearest_index(out: int, size: int, coord: str, nearest: str) -> np.ndarray:
    from ....ir.ops.nn import nearest_index, source_coords
    s = np.float32(out) / np.float32(size)
    return nearest_index(source_coords(out, size, s, coord), size, nearest, s)


def _nearest_by_gather(ctx, xin, oh, ow, align_corners, half_pixel_centers):
    """TF's nearest indices as two gathers, when nearest_interp_v2's float32 coordinates would round one
    differently (sizes whose coordinates land within an ulp of an integer)."""
    h, w = ctx.shape(xin)[2:]
    if not (isinstance(h, int) and isinstance(w, int)):
        return None
    iy, ix = tf_nearest_index(oh, h, align_corners, half_pixel_centers), tf_nearest_index(ow, w, align_corners,
                                                                                         half_pixel_centers)
    coord, nearest = RESIZE_MODES[(align_corners, half_pixel_centers)]
    coord = coord or HALF_PIXEL["nearest_interp_v2"]
    if (oh, ow) == (h, w) or (np.array_equal(iy, _ours_nearest_index(oh, h, coord, nearest)) and
                              np.array_equal(ix, _ours_nearest_index(ow, w, coord, nearest))):
        return None
    y = ctx.emit("gather", [xin, ctx.const(iy, "rows")], axis=2)
    return ctx.emit("gather", [y, ctx.const(ix, "cols")], axis=3)


def _resize(ctx, op, images, size, align_corners, half_pixel_centers):
    if (align_corners, half_pixel_centers) not in RESIZE_MODES:
        raise ctx.error("align_corners and half_pixel_centers cannot both be true")
    coord, nearest = RESIZE_MODES[(align_corners, half_pixel_centers)]
    coord = coord or HALF_PIXEL[op]
    xin = ctx.nchw(images, "NHWC")
    val = ctx.value_of(size)
    if val is None:
        y = ctx.emit(op, [xin, ctx.tf(size)], coordinate_transformation_mode=coord, nearest_mode=nearest)
        return ctx.from_nchw(y, "NHWC")
    oh, ow = [int(v) for v in val.reshape(-1)]
    y = _nearest_by_gather(ctx, xin, oh, ow, align_corners, half_pixel_centers) \
        if op == "nearest_interp_v2" else None
    if y is None:
        y = ctx.emit(op, [xin], out_h=oh, out_w=ow, coordinate_transformation_mode=coord, nearest_mode=nearest)
    return ctx.from_nchw(y, "NHWC")


@tf_op("ResizeBilinear")
def ResizeBilinear(ctx, images, size, *, align_corners=False, half_pixel_centers=False):
    return _resize(ctx, "bilinear_interp_v2", images, size, align_corners, half_pixel_centers)


@tf_op("ResizeNearestNeighbor")
def ResizeNearestNeighbor(ctx, images, size, *, align_corners=False, half_pixel_centers=False):
    return _resize(ctx, "nearest_interp_v2", images, size, align_corners, half_pixel_centers)
