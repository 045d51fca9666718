"""ONNX neural-network ops -> ir nn ops (batch_norm, softmax, matmul_v2, layer_norm, resize, pad)."""
from __future__ import annotations

import numpy as np

from ..registry import onnx_op


def _only_first_output(ctx):
    if any(ctx.node_outputs[1:]):
        raise ctx.error("only the first output is supported (training-mode outputs are not)")


@onnx_op("BatchNormalization")
def BatchNormalization(ctx, x, scale, b, mean, var, *, epsilon=1e-5, momentum=0.9, spatial=1, training_mode=0):
    _only_first_output(ctx)
    if training_mode:
        raise ctx.error("training_mode=1 is not supported (inference only)")
    if not spatial:
        raise ctx.error("spatial=0 is not supported")
    return ctx.emit("batch_norm", [x, scale, b, mean, var], epsilon=epsilon)


def _axis(ctx, x, axis):
    """axis made non-negative when the rank is known"""
    rank = len(ctx.shape(x)) if ctx.shape(x) is not None else None
    return axis % rank if rank and -rank <= axis < rank else axis


def _softmax_coerced(ctx, op, x, axis):
    """Opset < 13: softmax over the input flattened to 2-D at `axis` (flatten -> op -> reshape back)."""
    rank = ctx.rank(x)
    a = axis % rank if rank else 0
    if a == rank - 1:
        return ctx.emit(op, [x], axis=a)
    flat = ctx.emit("flatten", [x], axis=a)
    y = ctx.emit(op, [flat], axis=1)
    s = ctx.shape(x)
    if all(isinstance(d, int) for d in s):
        return ctx.emit("reshape2", [y], shape=s)
    return ctx.emit("reshape2", [y, ctx.emit("shape", [x])])


@onnx_op("Softmax")
def Softmax_1(ctx, x, *, axis=1):
    return _softmax_coerced(ctx, "softmax", x, axis)


@onnx_op("Softmax", since=13)
def Softmax_13(ctx, x, *, axis=-1):
    return ctx.emit("softmax", [x], axis=_axis(ctx, x, axis))


@onnx_op("LogSoftmax")
def LogSoftmax_1(ctx, x, *, axis=1):
    return _softmax_coerced(ctx, "log_softmax", x, axis)


@onnx_op("LogSoftmax", since=13)
def LogSoftmax_13(ctx, x, *, axis=-1):
    return ctx.emit("log_softmax", [x], axis=_axis(ctx, x, axis))


@onnx_op("MatMul")
def MatMul(ctx, a, b):
    return ctx.emit("matmul_v2", [a, b])


@onnx_op("LRN")
def LRN(ctx, x, *, size, alpha=0.0001, beta=0.75, bias=1.0):
    return ctx.emit("lrn", [x], n=size, k=bias, alpha=alpha / size, beta=beta)


@onnx_op("Einsum", since=12)
def Einsum(ctx, *xs, equation):
    return ctx.emit("einsum", list(xs), equation=equation)


@onnx_op("Gemm")
def Gemm(ctx, a, b, c="", *, alpha=1.0, beta=1.0, transA=0, transB=0, broadcast=0):
    """alpha * A' @ B' + beta * C (C broadcast): matmul_v2(A, scale(B, alpha)) + scale(C, beta).
    alpha scales B, so that with a constant B constant folding and the fc fusion leave one fc."""
    if alpha != 1.0:
        b = ctx.emit("scale", [b], scale=alpha)
    y = ctx.emit("matmul_v2", [a, b], trans_x=bool(transA), trans_y=bool(transB))
    if c and beta != 0.0:
        if beta != 1.0:
            c = ctx.emit("scale", [c], scale=beta)
        y = ctx.emit("elementwise_add", [y, c])
    return y


@onnx_op("LayerNormalization")
def LayerNormalization(ctx, x, scale, b="", *, axis=-1, epsilon=1e-5, stash_type=1):
    _only_first_output(ctx)
    return ctx.emit("layer_norm", [x, scale, b] if b else [x, scale], epsilon=epsilon,
                    begin_norm_axis=axis % ctx.rank(x))


@onnx_op("InstanceNormalization")
def InstanceNormalization(ctx, x, scale, b, *, epsilon=1e-5):
    return ctx.emit("instance_norm", [x, scale, b], epsilon=epsilon)


# --- resize --------------------------------------------------------------------------------------

_MODES = {"nearest": "nearest_interp_v2", "linear": "bilinear_interp_v2", "bilinear": "bilinear_interp_v2"}


def _resize(ctx, x, scales, sizes, mode, coord, nearest_mode):
    if mode not in _MODES:
        raise ctx.error(f"resize mode {mode!r} is not supported (nearest, linear)")
    if ctx.shape(x) is not None and len(ctx.shape(x)) != 4:
        raise ctx.error(f"only 4-D NCHW resize is supported, the input has shape {ctx.shape(x)}")
    attrs = dict(coordinate_transformation_mode=coord, nearest_mode=nearest_mode)
    inputs = [x]
    if sizes:
        v = ctx.value(sizes)
        if v is not None:
            v = [int(d) for d in np.asarray(v).reshape(-1)]
            if len(v) == 4 and any(isinstance(d, int) and d != s for d, s in zip((ctx.shape(x) or ())[:2], v[:2])):
                raise ctx.error(f"sizes {v}: only H and W of an NCHW input may be resized")
            attrs.update(out_h=v[-2], out_w=v[-1])
        else:
            inputs.append(sizes)
    elif scales:
        v = ctx.value(scales)
        if v is not None:
            v = [float(s) for s in np.asarray(v).reshape(-1)]
            if not (len(v) == 2 or (len(v) == 4 and v[0] == v[1] == 1)):
                raise ctx.error(f"scales {v}: only H and W of an NCHW input may be resized")
            attrs.update(scale=(v[-2], v[-1]))
        else:
            inputs += ["", scales]
    else:
        raise ctx.error("resize needs scales or sizes")
    return ctx.emit(_MODES[mode], inputs, **attrs)


@onnx_op("Upsample")
def Upsample(ctx, x, scales, *, mode="nearest"):
    """asymmetric coordinates; nearest: onnxruntime's "simple" rounding (floor, ceil when downsampling)"""
    return _resize(ctx, x, scales, "", mode, "asymmetric", "simple")


@onnx_op("Resize", since=10)
def Resize_10(ctx, x, scales, *, mode="nearest"):
    """asymmetric coordinates; nearest: onnxruntime's "simple" rounding (floor, ceil when downsampling)"""
    return _resize(ctx, x, scales, "", mode, "asymmetric", "simple")


@onnx_op("Resize", since=11)
def Resize_11(ctx, x, roi="", scales="", sizes="", *, coordinate_transformation_mode="half_pixel",
              cubic_coeff_a=-0.75, exclude_outside=0, extrapolation_value=0.0, mode="nearest",
              nearest_mode="round_prefer_floor", antialias=0, axes=None, keep_aspect_ratio_policy="stretch"):
    if coordinate_transformation_mode == "tf_crop_and_resize":
        raise ctx.error("coordinate_transformation_mode tf_crop_and_resize is not supported")
    if antialias or exclude_outside or (sizes and keep_aspect_ratio_policy != "stretch"):
        raise ctx.error("antialias, exclude_outside and keep_aspect_ratio_policy are not supported")
    if axes is not None and tuple(a % 4 for a in axes) not in ((2, 3), (0, 1, 2, 3)):
        raise ctx.error(f"axes {list(axes)}: only H and W (2, 3) may be resized")
    if scales and ctx.shape(scales) == (0,):
        scales = ""
    return _resize(ctx, x, scales, sizes, mode, coordinate_transformation_mode, nearest_mode)


# --- pad ---------------------------------------------------------------------------------------

_PAD_MODES = ("constant", "reflect", "edge")


def _pad(ctx, x, onnx_pads, mode, value, axes=None):
    """ONNX pads [b_axis0, b_axis1, ..., e_axis0, e_axis1, ...] -> ours [b0, e0, b1, e1, ...] over every dim."""
    rank = ctx.rank(x)
    if mode not in _PAD_MODES:
        raise ctx.error(f"pad mode {mode!r} is not supported ({', '.join(_PAD_MODES)})")
    pads = [int(p) for p in np.asarray(onnx_pads).reshape(-1)]
    axes = [a % rank for a in axes] if axes is not None else list(range(rank))
    if len(pads) != 2 * len(axes):
        raise ctx.error(f"{len(pads)} pads for {len(axes)} axes")
    ours = [0] * (2 * rank)
    for k, a in enumerate(axes):
        ours[2 * a], ours[2 * a + 1] = pads[k], pads[k + len(axes)]
    return ctx.emit("pad", [x], paddings=ours, mode=mode, pad_value=float(value))


def _pad_runtime(ctx, x, pads, mode, value):
    """Pads computed at run time: interleave them with reshape [2, rank] -> transpose -> flatten."""
    if mode not in _PAD_MODES:
        raise ctx.error(f"pad mode {mode!r} is not supported ({', '.join(_PAD_MODES)})")
    rank = ctx.rank(x)
    p = ctx.emit("reshape2", [pads], shape=[2, rank])
    p = ctx.emit("transpose2", [p], axis=[1, 0])
    p = ctx.emit("reshape2", [p], shape=[2 * rank])
    return ctx.emit("pad", [x, p], mode=mode, pad_value=float(value))


@onnx_op("Pad")
def Pad_2(ctx, x, *, mode="constant", pads=(), value=0.0, paddings=None):
    return _pad(ctx, x, pads if paddings is None else paddings, mode, value)


@onnx_op("Pad", since=11)
def Pad_11(ctx, x, pads, constant_value="", axes="", *, mode="constant"):
    """pads may be computed at run time (without axes); constant_value and axes must be constants"""
    value = np.asarray(ctx.const_value(constant_value, "constant_value")).reshape(-1) if constant_value else ()
    value = float(value[0]) if len(value) else 0.0
    ax = [int(a) for a in np.asarray(ctx.const_value(axes, "axes")).reshape(-1)] if axes else None
    if ctx.value(pads) is None and ax is None:
        return _pad_runtime(ctx, x, pads, mode, value)
    return _pad(ctx, x, ctx.const_value(pads, "pads"), mode, value, ax)
