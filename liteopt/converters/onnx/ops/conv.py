"""ONNX Conv, ConvTranspose and pooling -> conv2d / depthwise_conv2d / conv2d_transpose / pool2d (NCHW, explicit pads)."""
from __future__ import annotations

from ..registry import onnx_op


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
        size = shape[2 + ax] if shape is not None else None
        if not isinstance(size, int):
            raise ctx.error(f"auto_pad={auto_pad} needs the input's spatial size; pin it with --input_shape")
        o = -(-size // strides[ax])
        total = max(0, (o - 1) * strides[ax] + dilations[ax] * (kernel[ax] - 1) + 1 - size)
        small, big = total // 2, total - total // 2
        out.append((small, big) if auto_pad == "SAME_UPPER" else (big, small))
    return (out[0][0], out[0][1], out[1][0], out[1][1])


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
    depthwise = group > 1 and ws[1] == 1 and ws[0] == group and (xs is None or xs[1] == group)
    return ctx.emit("depthwise_conv2d" if depthwise else "conv2d", [x, w, b] if b else [x, w],
                    strides=strides, paddings=paddings, dilations=dilations, groups=group)


@onnx_op("ConvTranspose")
def ConvTranspose(ctx, x, w, b="", *, auto_pad="NOTSET", dilations=(1, 1), group=1, kernel_shape=None,
                  output_padding=(0, 0), output_shape=None, pads=None, strides=(1, 1)):
    _check_2d(ctx, x)
    ws = ctx.shape(w)
    if ws is None or len(ws) != 4 or not all(isinstance(d, int) for d in ws):
        raise ctx.error(f"the filter must be 4-D with a known shape, got {ws}")
    kernel = tuple(kernel_shape or ws[2:])
    output_padding = tuple(output_padding) if output_padding else (0, 0)
    if output_shape:
        xs = ctx.shape(x)
        if xs is None or not all(isinstance(d, int) for d in xs[2:]):
            raise ctx.error("output_shape needs the input's spatial size; pin it with --input_shape")
        paddings = []
        for ax in range(2):
            total = (strides[ax] * (xs[2 + ax] - 1) + output_padding[ax] + (kernel[ax] - 1) * dilations[ax] + 1
                     - output_shape[-2 + ax])
            lo, hi = (total // 2, total - total // 2) if auto_pad != "SAME_LOWER" else (total - total // 2, total // 2)
            paddings += [lo, hi]
        paddings = tuple(paddings)
    elif auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        xs = ctx.shape(x)
        if xs is None or not all(isinstance(d, int) for d in xs[2:]):
            raise ctx.error(f"auto_pad={auto_pad} needs the input's spatial size; pin it with --input_shape")
        paddings = []
        for ax in range(2):
            total = max(0, (xs[2 + ax] - 1) * strides[ax] + output_padding[ax] + (kernel[ax] - 1) * dilations[ax] + 1
                        - xs[2 + ax] * strides[ax])
            lo, hi = (total // 2, total - total // 2) if auto_pad == "SAME_UPPER" else (total - total // 2, total // 2)
            paddings += [lo, hi]
        paddings = tuple(paddings)
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
