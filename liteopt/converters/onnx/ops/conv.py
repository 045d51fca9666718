"""ONNX Conv, ConvTranspose and pooling -> conv2d / depthwise_conv2d / conv2d_transpose / pool2d (NCHW, explicit pads)."""
from __future__ import annotations

from ..registry import onnx_op


def _split(total: int, auto_pad: str) -> tuple[int, int]:
    """Split a total padding: SAME_UPPER puts the extra odd pixel at the end, anything else at the start."""
    small, big = total // 2, total - total // 2
    return (small, big) if auto_pad == "SAME_UPPER" else (big, small)


def _same_total(size, kernel: int, stride: int, dilation: int) -> int | None:
    """Total SAME padding so that out = ceil(size / stride); None when it needs an unknown size
    (with stride 1 it is dilation * (kernel - 1) whatever the size, so dynamic H/W work)."""
    if stride == 1:
        return dilation * (kernel - 1)
    if not isinstance(size, int):
        return None
    out = -(-size // stride)
    return max(0, (out - 1) * stride + dilation * (kernel - 1) + 1 - size)


def _explicit_pads(ctx, x, kernel, strides, dilations, pads, auto_pad):
    """ONNX pads/auto_pad -> (top, bottom, left, right)."""
    if auto_pad in ("NOTSET", ""):
        p = list(pads) if pads else [0] * 4
        if len(p) != 4:
            raise ctx.error(f"pads {list(pads)} must have 4 values for a 2-D op")
        return (p[0], p[2], p[1], p[3])
    if auto_pad == "VALID":
        return (0, 0, 0, 0)
    if auto_pad not in ("SAME_UPPER", "SAME_LOWER"):
        raise ctx.error(f"auto_pad {auto_pad!r} is not valid")
    shape = ctx.shape(x)
    out = []
    for ax in range(2):
        total = _same_total(shape[2 + ax] if shape is not None else None, kernel[ax], strides[ax], dilations[ax])
        if total is None:
            raise ctx.error(f"auto_pad={auto_pad} with stride {strides[ax]} needs the input's spatial size; "
                            "pin it with --input_shape")
        out += _split(total, auto_pad)
    return tuple(out)


def _check_2d(ctx, x, what="input"):
    s = ctx.shape(x)
    if s is not None and len(s) != 4:
        raise ctx.error(f"only 2-D (NCHW, rank 4) {what}s are supported; this one has shape {s}")


@onnx_op("Conv")
def Conv(ctx, x, w, b="", *, auto_pad="NOTSET", dilations=(1, 1), group=1, kernel_shape=None, pads=None,
         strides=(1, 1)):
    _check_2d(ctx, x)
    ws = ctx.shape(w)
    if ws is None or len(ws) != 4 or not all(isinstance(d, int) for d in ws):
        raise ctx.error(f"the filter must be 4-D with a known shape, got {ws}")
    kernel = tuple(kernel_shape or ws[2:])
    paddings = _explicit_pads(ctx, x, kernel, strides, dilations, pads, auto_pad)
    xs = ctx.shape(x)
    # (the filter says so: group == C_out with one input channel each; the input's channels may be a symbol
    # where a reshape computed from a dynamic batch's shape comes before)
    depthwise = group > 1 and ws[1] == 1 and ws[0] == group and (xs is None or not isinstance(xs[1], int)
                                                                 or xs[1] == group)
    return ctx.emit("depthwise_conv2d" if depthwise else "conv2d", [x, w, b] if b else [x, w],
                    strides=strides, paddings=paddings, dilations=dilations, groups=group)


def _transpose_pads(ctx, x, kernel, strides, dilations, output_padding, output_shape, auto_pad):
    """ConvTranspose pads from output_shape or SAME auto_pad, as onnxruntime computes them.

    The full (unpadded) output is (in - 1) * stride + output_padding + (kernel - 1) * dilation + 1; the
    target size is output_shape, or in * stride for SAME. The difference is cropped, the odd pixel at the
    start except with SAME_UPPER. With SAME a negative difference is clipped to 0 (the output is then the
    full size); a target larger than the full size (output_shape) is reached by extra output padding.
    SAME without output_shape needs no input size: the difference is then independent of it.
    """
    xs = ctx.shape(x)
    paddings, extra = [], []
    for ax in range(2):
        size = xs[2 + ax] if xs is not None else None
        rest = output_padding[ax] + (kernel[ax] - 1) * dilations[ax] + 1
        if output_shape:
            if not isinstance(size, int):
                raise ctx.error("output_shape needs the input's spatial size; pin it with --input_shape")
            total = (size - 1) * strides[ax] + rest - output_shape[-2 + ax]
        else:
            total = max(0, rest - strides[ax])
        paddings += _split(max(total, 0), auto_pad)
        extra.append(output_padding[ax] + max(-total, 0))
    return tuple(paddings), tuple(extra)


@onnx_op("ConvTranspose")
def ConvTranspose(ctx, x, w, b="", *, auto_pad="NOTSET", dilations=(1, 1), group=1, kernel_shape=None,
                  output_padding=(0, 0), output_shape=None, pads=None, strides=(1, 1)):
    _check_2d(ctx, x)
    ws = ctx.shape(w)
    if ws is None or len(ws) != 4 or not all(isinstance(d, int) for d in ws):
        raise ctx.error(f"the filter must be 4-D with a known shape, got {ws}")
    kernel = tuple(kernel_shape or ws[2:])
    output_padding = tuple(output_padding) if output_padding else (0, 0)
    if output_shape or auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        paddings, output_padding = _transpose_pads(ctx, x, kernel, strides, dilations, output_padding,
                                                   output_shape, auto_pad)
    else:
        paddings = _explicit_pads(ctx, x, kernel, strides, dilations, pads, "VALID" if auto_pad == "VALID" else "NOTSET")
    return ctx.emit("conv2d_transpose", [x, w, b] if b else [x, w], strides=strides, paddings=paddings,
                    dilations=dilations, groups=group, output_padding=output_padding)


def _pool(ctx, x, kind, kernel_shape, strides, pads, auto_pad, ceil_mode, exclusive=True, dilations=None):
    _check_2d(ctx, x)
    if kernel_shape is None or len(kernel_shape) != 2:
        raise ctx.error(f"kernel_shape must have 2 values, got {kernel_shape}")
    if dilations and any(d != 1 for d in dilations):
        raise ctx.error(f"dilated pooling (dilations={list(dilations)}) is not supported")
    strides = tuple(strides) if strides else (1, 1)
    paddings = _explicit_pads(ctx, x, kernel_shape, strides, (1, 1), pads, auto_pad)
    return ctx.emit("pool2d", [x], pooling_type=kind, ksize=kernel_shape, strides=strides, paddings=paddings,
                    ceil_mode=bool(ceil_mode), exclusive=exclusive)


@onnx_op("MaxPool")
def MaxPool(ctx, x, *, auto_pad="NOTSET", ceil_mode=0, dilations=None, kernel_shape=None, pads=None,
            storage_order=0, strides=None):
    if len(ctx.node_outputs) > 1 and ctx.node_outputs[1]:
        raise ctx.error("the Indices output of MaxPool is not supported")
    return _pool(ctx, x, "max", kernel_shape, strides, pads, auto_pad, ceil_mode, dilations=dilations)


@onnx_op("AveragePool")
def AveragePool(ctx, x, *, auto_pad="NOTSET", ceil_mode=0, count_include_pad=0, dilations=None, kernel_shape=None,
                pads=None, strides=None):
    return _pool(ctx, x, "avg", kernel_shape, strides, pads, auto_pad, ceil_mode, exclusive=not count_include_pad,
                 dilations=dilations)


@onnx_op("GlobalAveragePool")
def GlobalAveragePool(ctx, x):
    _check_2d(ctx, x)
    return ctx.emit("pool2d", [x], pooling_type="avg", ksize=(1, 1), global_pooling=True)


@onnx_op("GlobalMaxPool")
def GlobalMaxPool(ctx, x):
    _check_2d(ctx, x)
    return ctx.emit("pool2d", [x], pooling_type="max", ksize=(1, 1), global_pooling=True)
