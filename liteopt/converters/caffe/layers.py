"""One small function per Caffe layer type: (ctx, input tensor names, layer message) -> output name(s).

Caffe's conventions are normalized here: explicit 4-value paddings, Caffe's ceil-mode pooling, BatchNorm's
moving-average factor, InnerProduct's (N, K) weights, per-channel parameters shaped (C, 1, 1) for NCHW.
BatchNorm and Scale become batch_norm and per-channel mul/add: the passes fold them into the conv.
"""
from __future__ import annotations

import math

import numpy as np

LAYERS = {}


def layer(*types):
    def deco(fn):
        for t in types:
            LAYERS[t] = fn
        return fn
    return deco


def _pair(ctx, values, h, w, default, what):
    """Caffe's repeated (1 or 2 values) field with its _h/_w overrides -> (h, w)."""
    v = list(values)
    if len(v) > 2:
        raise ctx.error(f"{len(v)} values of {what}: only 2-D convolutions are supported")
    out = (v[0], v[0]) if len(v) == 1 else (tuple(v) if len(v) == 2 else (default, default))
    return (h if h is not None else out[0], w if w is not None else out[1])


def _opt(p, field):
    return getattr(p, field) if p.HasField(field) else None


def _blob(ctx, i, shape, what):
    b = ctx.blob(i, what)
    if b.size != math.prod(shape):
        raise ctx.error(f"{what} (blob #{i}) has shape {b.shape}, expected {tuple(shape)}")
    return np.ascontiguousarray(b.reshape(shape), dtype=np.float32)


def _channels(ctx, x):
    s = ctx.shape(x)
    if s is None or len(s) < 2 or not isinstance(s[1], int):
        raise ctx.error(f"the channel count of the input must be known, got shape {s}")
    return s[1]


def _axis(ctx, x, axis):
    """Caffe's axis (negative counts from the end) made non-negative."""
    rank = ctx.rank(x)
    if not -rank <= axis < rank:
        raise ctx.error(f"axis {axis} is out of range for an input of rank {rank}")
    return axis % rank


def _per_channel(ctx, values, rank):
    """A (C,) vector shaped to broadcast over axis 1 of a tensor of `rank` dims."""
    return ctx.const(np.asarray(values, np.float32).reshape((-1,) + (1,) * (rank - 2)))


@layer("Convolution", "Deconvolution")
def convolution(ctx, ins, lyr):
    p = lyr.convolution_param
    x = ins[0]
    c = _channels(ctx, x)
    if ctx.rank(x) != 4 or p.axis not in (1, -3):
        raise ctx.error(f"only 2-D convolutions over axis 1 of NCHW are supported (input {ctx.shape(x)}, "
                        f"axis {p.axis})")
    kh, kw = _pair(ctx, p.kernel_size, _opt(p, "kernel_h"), _opt(p, "kernel_w"), 1, "kernel_size")
    sh, sw = _pair(ctx, p.stride, _opt(p, "stride_h"), _opt(p, "stride_w"), 1, "stride")
    ph, pw = _pair(ctx, p.pad, _opt(p, "pad_h"), _opt(p, "pad_w"), 0, "pad")
    dh, dw = _pair(ctx, p.dilation, None, None, 1, "dilation")
    g, o = p.group, p.num_output
    deconv = ctx.node_op == "Deconvolution"
    if c % g or o % g:
        raise ctx.error(f"group {g} does not divide the {c} input or {o} output channels")
    wshape = (c, o // g, kh, kw) if deconv else (o, c // g, kh, kw)
    w = ctx.const(_blob(ctx, 0, wshape, "the weights"), "weights")
    inputs = [x, w] + ([ctx.const(_blob(ctx, 1, (o,), "the bias"), "bias")] if p.bias_term else [])
    attrs = dict(strides=(sh, sw), paddings=(ph, ph, pw, pw), dilations=(dh, dw), groups=g)
    if deconv:
        return ctx.emit("conv2d_transpose", inputs, **attrs)
    depthwise = g > 1 and g == c == o
    return ctx.emit("depthwise_conv2d" if depthwise else "conv2d", inputs, **attrs)


@layer("Pooling")
def pooling(ctx, ins, lyr):
    p = lyr.pooling_param
    kind = {0: "max", 1: "avg"}.get(p.pool)
    if kind is None:
        raise ctx.error("stochastic pooling is not supported")
    if p.global_pooling:
        return ctx.emit("pool2d", ins[:1], pooling_type=kind, ksize=(1, 1), global_pooling=True)
    kh = p.kernel_h if p.HasField("kernel_h") else p.kernel_size
    kw = p.kernel_w if p.HasField("kernel_w") else p.kernel_size
    sh = p.stride_h if p.HasField("stride_h") else p.stride
    sw = p.stride_w if p.HasField("stride_w") else p.stride
    ph = p.pad_h if p.HasField("pad_h") else p.pad
    pw = p.pad_w if p.HasField("pad_w") else p.pad
    # Caffe: ceil-mode output size, the last window clipped to start inside the input + pad; an average
    # divides by the window clipped to the padded input (the declared padding counts, the overhang not)
    return ctx.emit("pool2d", ins[:1], pooling_type=kind, ksize=(kh, kw), strides=(sh, sw),
                    paddings=(ph, ph, pw, pw), ceil_mode=p.round_mode == 0, exclusive=False)


@layer("InnerProduct")
def inner_product(ctx, ins, lyr):
    p = lyr.inner_product_param
    x = ins[0]
    s = ctx.shape(x)
    axis = p.axis % len(s) if s is not None else p.axis
    k = math.prod(s[axis:]) if s is not None and all(isinstance(d, int) for d in s[axis:]) else None
    if k is None:
        raise ctx.error(f"the input's inner dims must be known, got shape {s}")
    n = p.num_output
    w = _blob(ctx, 0, (k, n) if p.transpose else (n, k), "the weights")
    inputs = [x, ctx.const(np.ascontiguousarray(w if p.transpose else w.T), "weights")]
    if p.bias_term:
        inputs.append(ctx.const(_blob(ctx, 1, (n,), "the bias"), "bias"))
    return ctx.emit("fc", inputs, in_num_col_dims=axis)


@layer("ReLU")
def relu(ctx, ins, lyr):
    slope = lyr.relu_param.negative_slope
    return ctx.emit("leaky_relu", ins[:1], alpha=slope) if slope else ctx.emit("relu", ins[:1])


@layer("ReLU6")
def relu6(ctx, ins, lyr):
    return ctx.emit("relu6", ins[:1], threshold=6.0)


@layer("PReLU")
def prelu(ctx, ins, lyr):
    x = ins[0]
    rank = len(ctx.shape(x))
    if lyr.prelu_param.channel_shared:
        alpha = ctx.const(_blob(ctx, 0, (1,), "the slope"), "slope")
        return ctx.emit("prelu", [x, alpha], mode="all")
    c = _channels(ctx, x)
    return ctx.emit("prelu", [x, _per_channel(ctx, _blob(ctx, 0, (c,), "the slopes"), rank)], mode="channel")


@layer("ELU")
def elu(ctx, ins, lyr):
    return ctx.emit("elu", ins[:1], alpha=lyr.elu_param.alpha)


_UNARY = {"Sigmoid": "sigmoid", "TanH": "tanh", "AbsVal": "abs"}
for _t, _op in _UNARY.items():
    LAYERS[_t] = (lambda op_name: lambda ctx, ins, lyr: ctx.emit(op_name, ins[:1]))(_op)


@layer("Power")
def power(ctx, ins, lyr):
    """(shift + scale * x) ^ power"""
    p = lyr.power_param
    y = ins[0]
    if p.scale != 1 or p.shift != 0:
        y = ctx.emit("scale", [y], scale=p.scale, bias=p.shift)
    if p.power != 1:
        y = ctx.emit("elementwise_pow", [y, ctx.const(np.array(p.power, np.float32))])
    return y if y != ins[0] else ctx.emit("assign", [y])


@layer("BatchNorm")
def batch_norm(ctx, ins, lyr):
    """(x - mean) / sqrt(var + eps) per channel. The stored mean and variance are sums scaled by the third
    blob, the moving-average factor: divide by it (a factor of 0 means zero statistics). Without
    use_global_stats (it defaults to true in the TEST phase) the statistics are the batch's own, over
    every axis but the channels, with the biased variance (Caffe's and OpenCV's forward)."""
    p = lyr.batch_norm_param
    x = ins[0]
    c = _channels(ctx, x)
    one, zero = np.ones(c, np.float32), np.zeros(c, np.float32)
    if p.HasField("use_global_stats") and not p.use_global_stats:
        ctx.ignore_blobs()
        dims = tuple(i for i in range(ctx.rank(x)) if i != 1)
        centred = ctx.emit("elementwise_sub", [x, ctx.emit("reduce_mean", [x], dim=dims, keep_dim=True)])
        var = ctx.emit("reduce_mean", [ctx.emit("square", [centred])], dim=dims, keep_dim=True)
        eps = ctx.const(np.array(p.eps, np.float32))
        return ctx.emit("elementwise_mul", [centred, ctx.emit("rsqrt", [ctx.emit("elementwise_add", [var, eps])])])
    factor = float(_blob(ctx, 2, (1,), "the moving-average factor")[0]) if len(ctx.blobs) > 2 else 1.0
    f = 0.0 if factor == 0 else 1.0 / factor
    mean = _blob(ctx, 0, (c,), "the mean") * f
    var = _blob(ctx, 1, (c,), "the variance") * f
    return ctx.emit("batch_norm", [x, ctx.const(one), ctx.const(zero), ctx.const(mean), ctx.const(var)],
                    epsilon=p.eps)


def _param_dims(ctx, x, axis, num_axes, what):
    """The dims of x that a learned Scale/Bias parameter covers: axis .. axis+num_axes (-1: to the end)."""
    s = ctx.shape(x)
    axis = _axis(ctx, x, axis)
    end = len(s) if num_axes == -1 else axis + num_axes
    if num_axes < -1 or end > len(s):
        raise ctx.error(f"axis {axis} with num_axes {num_axes} does not fit an input of rank {len(s)}")
    dims = s[axis:end]
    if not all(isinstance(d, int) for d in dims):
        raise ctx.error(f"{what} covers dims {axis}..{end - 1} of the input, which must be known; got shape {s}")
    return axis, tuple(dims)


def _aligned(ctx, x, values_or_name, axis, dims):
    """A parameter of shape `dims` placed at `axis` of x: shaped [1]*axis + dims + [1]*rest to broadcast."""
    rank = ctx.rank(x)
    shape = (1,) * axis + tuple(dims) + (1,) * (rank - axis - len(dims))
    if isinstance(values_or_name, str):  # a run-time tensor (second bottom)
        return ctx.emit("reshape2", [values_or_name], shape=shape)
    return ctx.const(np.asarray(values_or_name, np.float32).reshape(shape if dims else ()))


def _second_bottom(ctx, x, other, axis):
    """Scale/Bias with two bottoms: the second one's dims match x's from `axis` on (or it is a scalar)."""
    s2 = ctx.shape(other)
    if s2 is None or not all(isinstance(d, int) for d in s2):
        raise ctx.error(f"the second bottom's shape must be known, got {s2}")
    axis = _axis(ctx, x, axis) if len(s2) else 0
    s = ctx.shape(x)
    covered = s[axis:axis + len(s2)]
    if len(covered) != len(s2) or any(isinstance(a, int) and a != b for a, b in zip(covered, s2)):
        raise ctx.error(f"the second bottom of shape {tuple(s2)} does not match the input {tuple(s)} at axis {axis}")
    return axis, tuple(s2)


@layer("Scale")
def scale(ctx, ins, lyr):
    """x * scale (+ bias), the parameter covering dims axis..axis+num_axes of x: a learned blob, or the
    second bottom (then num_axes is its rank). Emitted as elementwise mul/add: the passes fold a
    BatchNorm + Scale after a convolution into it."""
    p = lyr.scale_param
    x = ins[0]
    if len(ins) > 1:
        axis, dims = _second_bottom(ctx, x, ins[1], p.axis)
        y = ctx.emit("elementwise_mul", [x, _aligned(ctx, x, ins[1], axis, dims)])
        bias_blob = 0
    else:
        axis, dims = _param_dims(ctx, x, p.axis, p.num_axes, "the scale")
        y = ctx.emit("elementwise_mul", [x, _aligned(ctx, x, _blob(ctx, 0, dims, "the scale"), axis, dims)])
        bias_blob = 1
    if p.bias_term:
        b = _blob(ctx, bias_blob, dims, "the bias")
        y = ctx.emit("elementwise_add", [y, _aligned(ctx, x, b, axis, dims)])
    return y


@layer("Bias")
def bias(ctx, ins, lyr):
    """x + bias, the bias covering dims axis..axis+num_axes of x (a learned blob, or the second bottom)."""
    p = lyr.bias_param
    x = ins[0]
    if len(ins) > 1:
        axis, dims = _second_bottom(ctx, x, ins[1], p.axis)
        return ctx.emit("elementwise_add", [x, _aligned(ctx, x, ins[1], axis, dims)])
    axis, dims = _param_dims(ctx, x, p.axis, p.num_axes, "the bias")
    return ctx.emit("elementwise_add", [x, _aligned(ctx, x, _blob(ctx, 0, dims, "the bias"), axis, dims)])


@layer("Eltwise")
def eltwise(ctx, ins, lyr):
    p = lyr.eltwise_param
    if p.operation == 1:  # SUM, with coefficients
        coeff = list(p.coeff) or [1.0] * len(ins)
        if len(coeff) != len(ins):
            raise ctx.error(f"{len(coeff)} coefficients for {len(ins)} inputs")
        terms = [x if c == 1 else ctx.emit("scale", [x], scale=c) for x, c in zip(ins, coeff)]
        y = terms[0]
        for t in terms[1:]:
            y = ctx.emit("elementwise_add", [y, t])
        return y
    op = "elementwise_mul" if p.operation == 0 else "elementwise_max"
    y = ins[0]
    for t in ins[1:]:
        y = ctx.emit(op, [y, t])
    return y


@layer("Concat")
def concat(ctx, ins, lyr):
    p = lyr.concat_param
    axis = p.axis if p.HasField("axis") or not p.HasField("concat_dim") else p.concat_dim
    return ctx.emit("concat", ins, axis=_axis(ctx, ins[0], axis))


@layer("Slice")
def slice_(ctx, ins, lyr):
    p = lyr.slice_param
    axis = _axis(ctx, ins[0], p.axis if p.HasField("axis") or not p.HasField("slice_dim") else p.slice_dim)
    n = len(ctx.node_outputs)
    size = ctx.shape(ins[0])[axis]
    if p.slice_point:
        points = [0] + list(p.slice_point) + [size]
        sections = tuple(b - a for a, b in zip(points, points[1:]))
    else:
        if size % n:
            raise ctx.error(f"axis of size {size} cannot be sliced into {n} equal parts")
        sections = (size // n,) * n
    outs = ctx.emit("split", ins[:1], n_out=n, axis=axis, sections=sections, num=n)
    return outs if isinstance(outs, list) else [outs]


@layer("Split")
def split(ctx, ins, lyr):
    return [ins[0]] * len(ctx.node_outputs)


@layer("Softmax")
def softmax(ctx, ins, lyr):
    return ctx.emit("softmax", ins[:1], axis=_axis(ctx, ins[0], lyr.softmax_param.axis))


@layer("Dropout")
def dropout(ctx, ins, lyr):
    return ctx.emit("dropout", ins[:1])


@layer("Flatten")
def flatten(ctx, ins, lyr):
    p = lyr.flatten_param
    s = ctx.shape(ins[0])
    a, e = p.axis % len(s), p.end_axis % len(s)
    if not all(isinstance(d, int) for d in s[a:e + 1]):
        raise ctx.error(f"flattened dims must be known, got shape {s}")
    shape = [0] * a + [math.prod(s[a:e + 1])] + [d if isinstance(d, int) else 0 for d in s[e + 1:]]
    if any(d == 0 for d in shape[a + 1:]):
        raise ctx.error(f"dims after end_axis must be known, got shape {s}")
    return ctx.emit("reshape2", ins[:1], shape=tuple(shape))


@layer("Reshape")
def reshape(ctx, ins, lyr):
    p = lyr.reshape_param
    s = ctx.shape(ins[0])
    rank = len(s)
    axis = p.axis % (rank + 1) if p.axis < 0 else p.axis
    end = rank if p.num_axes == -1 else axis + p.num_axes
    new = list(p.shape.dim)
    # 0 copies the input dim at the same position *within the replaced range*
    new = [s[axis + i] if d == 0 else d for i, d in enumerate(new)]
    full = list(s[:axis]) + new + list(s[end:])
    if any(isinstance(d, str) for d in full):
        raise ctx.error(f"the input shape must be known, got {s}")
    return ctx.emit("reshape2", ins[:1], shape=tuple(full))


@layer("Permute")
def permute(ctx, ins, lyr):
    order = list(lyr.permute_param.order)
    rank = len(ctx.shape(ins[0]))
    order += [i for i in range(rank) if i not in order]
    return ctx.emit("transpose2", ins[:1], axis=tuple(order))


@layer("Crop")
def crop(ctx, ins, lyr):
    p = lyr.crop_param
    s, ref = ctx.shape(ins[0]), ctx.shape(ins[1])
    axis = p.axis % len(s)
    axes = list(range(axis, len(s)))
    offsets = list(p.offset) or [0]
    offsets = offsets * len(axes) if len(offsets) == 1 else offsets
    if len(offsets) != len(axes):
        raise ctx.error(f"{len(offsets)} offsets for {len(axes)} cropped axes")
    return ctx.emit("strided_slice", ins[:1], axes=tuple(axes), starts=tuple(offsets),
                    ends=tuple(o + ref[a] for o, a in zip(offsets, axes)), strides=(1,) * len(axes))


@layer("LRN")
def lrn(ctx, ins, lyr):
    """ACROSS_CHANNELS: x / (k + alpha/n * sum of x^2 over n channels) ^ beta, the `lrn` op.
    WITHIN_CHANNEL (Caffe's own decomposition): x * (1 + alpha * avgpool_nxn(x^2)) ^ -beta, the n x n
    window zero-padded by (n-1)/2 and always divided by n*n."""
    p = lyr.lrn_param
    if p.local_size % 2 == 0:
        raise ctx.error(f"local_size must be odd (Caffe's rule), got {p.local_size}")
    if p.norm_region == 0:
        return ctx.emit("lrn", ins[:1], n=p.local_size, k=p.k, alpha=p.alpha / p.local_size, beta=p.beta)
    x, n, pad = ins[0], p.local_size, (p.local_size - 1) // 2
    sq = ctx.emit("square", [x])
    avg = ctx.emit("pool2d", [sq], pooling_type="avg", ksize=(n, n), strides=(1, 1), paddings=(pad,) * 4,
                   exclusive=False)
    base = ctx.emit("scale", [avg], scale=p.alpha, bias=1.0)
    return ctx.emit("elementwise_mul", [x, ctx.emit("elementwise_pow", [base, ctx.const(np.array(-p.beta, np.float32))])])


@layer("Normalize")
def normalize(ctx, ins, lyr):
    """SSD's L2 normalization: x / sqrt(sum(x^2) + eps) * scale, over C,H,W (across_spatial) or C."""
    p = lyr.norm_param
    x = ins[0]
    rank = len(ctx.shape(x))
    c = _channels(ctx, x)
    sq = ctx.emit("elementwise_mul", [x, x])
    dims = tuple(range(1, rank)) if p.across_spatial else (1,)
    s = ctx.emit("reduce_sum", [sq], dim=dims, keep_dim=True)
    norm = ctx.emit("sqrt", [ctx.emit("elementwise_add", [s, ctx.const(np.array(p.eps, np.float32))])])
    y = ctx.emit("elementwise_div", [x, norm])
    if ctx.blobs:
        w = ctx.const(_blob(ctx, 0, (1,), "the scale").reshape(())) if p.channel_shared else \
            _per_channel(ctx, _blob(ctx, 0, (c,), "the scale"), rank)
        y = ctx.emit("elementwise_mul", [y, w])
    return y


@layer("Interp")
def interp(ctx, ins, lyr):
    """PSPNet's Interp: bilinear resize with aligned corners, of the input cropped by pad_beg/pad_end (both
    <= 0). Output size, in Caffe's order of precedence: shrink_factor alone, zoom_factor alone,
    height + width, shrink then zoom; zoom z gives h + (h-1)(z-1), shrink s gives (h-1)/s + 1."""
    p = lyr.interp_param
    x = ins[0]
    s = ctx.shape(x)
    h, w = s[2], s[3]
    if not (isinstance(h, int) and isinstance(w, int)):
        raise ctx.error("Interp needs a known input size; pin it with --input_shape")
    if p.pad_beg > 0 or p.pad_end > 0:
        raise ctx.error(f"pad_beg/pad_end must be <= 0 (they crop), got {p.pad_beg}/{p.pad_end}")
    if p.pad_beg or p.pad_end:
        x = ctx.emit("strided_slice", [x], axes=(2, 3), starts=(-p.pad_beg,) * 2,
                     ends=(h + p.pad_end, w + p.pad_end), strides=(1, 1))
    h, w = h + p.pad_beg + p.pad_end, w + p.pad_beg + p.pad_end

    def shrink(d):
        return (d - 1) // p.shrink_factor + 1

    def zoom(d):
        return d + (d - 1) * (p.zoom_factor - 1)

    has_s, has_z = p.HasField("shrink_factor"), p.HasField("zoom_factor")
    if has_s and not has_z:
        oh, ow = shrink(h), shrink(w)
    elif has_z and not has_s:
        oh, ow = zoom(h), zoom(w)
    elif p.HasField("height") and p.HasField("width"):
        oh, ow = p.height, p.width
    elif has_s and has_z:
        oh, ow = zoom(shrink(h)), zoom(shrink(w))
    else:
        raise ctx.error("interp_param needs zoom_factor, shrink_factor, or height and width")
    if oh < 1 or ow < 1 or p.shrink_factor < 1 or p.zoom_factor < 1:
        raise ctx.error(f"invalid Interp parameters: output {oh}x{ow}")
    return ctx.emit("bilinear_interp_v2", [x], out_h=oh, out_w=ow, coordinate_transformation_mode="align_corners")
