"""Convolutions and pooling, NCHW. Paddings are always explicit: (top, bottom, left, right).

Filters: `conv2d`/`depthwise_conv2d` OIHW with I = C / groups; `conv2d_transpose` IOHW with O = C_out / groups.
"""
from __future__ import annotations

import numpy as np

from ..registry import Attr, InferCtx, TensorType, dim_op, op
from .activation import FUSED_ACT_ATTRS, apply_act

CONV_ATTRS = {
    "strides": (1, 1),
    "paddings": (0, 0, 0, 0),
    "dilations": (1, 1),
    "groups": 1,
    **FUSED_ACT_ATTRS,
}


def conv_out_size(size: int, k: int, stride: int, pad0: int, pad1: int, dilation: int) -> int:
    return (size + pad0 + pad1 - dilation * (k - 1) - 1) // stride + 1


def tap_span(size: int, out: int, stride: int, pad0: int, offset: int) -> tuple[int, int]:
    """The output positions [first, last) whose filter tap at `offset` (its index times the dilation) reads
    inside an input of `size` with `pad0` before it: o * stride - pad0 + offset in [0, size). Empty: first == last."""
    first = max(0, -(-(pad0 - offset) // stride))
    return first, max(first, min(out, (size - 1 + pad0 - offset) // stride + 1))


def _check_conv(ctx: InferCtx, x, w):
    if x is not None and len(x) != 4:
        raise ctx.error(f"input must be 4-D NCHW, got shape {x}")
    if w is None or len(w) != 4:
        raise ctx.error(f"filter must be 4-D, got shape {w}")
    a = ctx.attrs
    if len(a["strides"]) != 2 or len(a["dilations"]) != 2 or len(a["paddings"]) != 4:
        raise ctx.error("strides/dilations need 2 values and paddings 4 (top, bottom, left, right)")
    if min(a["strides"]) < 1 or min(a["dilations"]) < 1 or a["groups"] < 1:
        raise ctx.error("strides, dilations and groups must be >= 1")


def _conv_infer(ctx: InferCtx):
    x, w = ctx.shape(0), ctx.shape(1)
    _check_conv(ctx, x, w)
    a = ctx.attrs
    if x is None:
        return [TensorType(ctx.dtype(0), None)]
    if isinstance(x[1], int) and isinstance(w[1], int) and x[1] != w[1] * a["groups"]:
        raise ctx.error(f"input has {x[1]} channels but filter {w} with groups={a['groups']} expects "
                        f"{w[1] * a['groups']}")
    (pt, pb, pl, pr), (sh, sw), (dh, dw) = a["paddings"], a["strides"], a["dilations"]
    oh = dim_op(ctx, 2, lambda h, k: conv_out_size(h, k, sh, pt, pb, dh), x[2], w[2])
    ow = dim_op(ctx, 3, lambda h, k: conv_out_size(h, k, sw, pl, pr, dw), x[3], w[3])
    for d in (oh, ow):
        if isinstance(d, int) and d < 1:
            raise ctx.error(f"output would be empty: input {x}, filter {w}, paddings {a['paddings']}")
    return [TensorType(ctx.dtype(0), (x[0], w[0], oh, ow))]


def _windows(xp: np.ndarray, kh: int, kw: int, oh: int, ow: int, sh: int, sw: int, dh: int, dw: int):
    """View of shape (N, C, kh, kw, oh, ow) over a padded NCHW array."""
    n, c, _, _ = xp.shape
    s = xp.strides
    return np.lib.stride_tricks.as_strided(
        xp, (n, c, kh, kw, oh, ow), (s[0], s[1], s[2] * dh, s[3] * dw, s[2] * sh, s[3] * sw), writeable=False)


def conv2d_reference(x, w, b, *, strides, paddings, dilations, groups, act_type, act_alpha):
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    pt, pb, pl, pr = paddings
    xp = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    oh = conv_out_size(h, kh, strides[0], pt, pb, dilations[0])
    ow = conv_out_size(wd, kw, strides[1], pl, pr, dilations[1])
    cols = _windows(xp, kh, kw, oh, ow, *strides, *dilations)
    og = o // groups
    y = np.empty((n, o, oh, ow), np.float32)
    for g in range(groups):
        cg_cols = cols[:, g * cg:(g + 1) * cg]
        y[:, g * og:(g + 1) * og] = np.einsum("nckluv,ockl->nouv", cg_cols, w[g * og:(g + 1) * og], optimize=True)
    if b is not None:
        y += b.reshape(1, -1, 1, 1)
    return apply_act(y.astype(x.dtype, copy=False), act_type, act_alpha)


def _conv_residual_infer(ctx: InferCtx):
    out = _conv_infer(ctx)
    if ctx.has(3):
        r, y = ctx.shape(3), out[0].shape
        if r is not None and y is not None and tuple(r) != tuple(y):
            raise ctx.error(f"the residual input has shape {r}, the convolution's output {y}")
        if ctx.dtype(3) != out[0].dtype:
            raise ctx.error(f"the residual input is {ctx.dtype(3)}, the convolution's output {out[0].dtype}")
    return out


@op("conv2d", inputs="Input Filter Bias? ResidualData?", outputs="Output", attrs=CONV_ATTRS,
    infer=_conv_residual_infer, weight_inputs={1: 0, 2: None})
def conv2d(x, w, b, r=None, **attrs):
    """2-D convolution (+ bias, + a residual of the output's shape added before the fused activation)"""
    if r is None:
        return conv2d_reference(x, w, b, **attrs)
    act = {"act_type": attrs.pop("act_type"), "act_alpha": attrs.pop("act_alpha")}
    y = conv2d_reference(x, w, b, act_type="", act_alpha=0.0, **attrs) + r
    return apply_act(y.astype(x.dtype, copy=False), **act)


@op("depthwise_conv2d", inputs="Input Filter Bias?", outputs="Output", attrs=CONV_ATTRS, infer=_conv_infer,
    weight_inputs={1: 0, 2: None})
def depthwise_conv2d(x, w, b, **attrs):
    """2-D convolution with groups == input channels"""
    return conv2d_reference(x, w, b, **attrs)


def _conv_t_infer(ctx: InferCtx):
    x, w = ctx.shape(0), ctx.shape(1)
    _check_conv(ctx, x, w)
    a = ctx.attrs
    if x is None:
        return [TensorType(ctx.dtype(0), None)]
    if isinstance(x[1], int) and isinstance(w[0], int) and x[1] != w[0]:
        raise ctx.error(f"input has {x[1]} channels but the transposed filter {w} expects {w[0]}")
    (pt, pb, pl, pr), (sh, sw), (dh, dw), (oph, opw) = a["paddings"], a["strides"], a["dilations"], a["output_padding"]
    oh = dim_op(ctx, 2, lambda h, k: (h - 1) * sh - pt - pb + dh * (k - 1) + oph + 1, x[2], w[2])
    ow = dim_op(ctx, 3, lambda h, k: (h - 1) * sw - pl - pr + dw * (k - 1) + opw + 1, x[3], w[3])
    return [TensorType(ctx.dtype(0), (x[0], dim_op(ctx, 1, lambda c: c * a["groups"], w[1]), oh, ow))]


def conv2d_transpose_reference(x, w, b, *, strides, paddings, dilations, groups, output_padding, act_type,
                               act_alpha):
    n, c, h, wd = x.shape
    _, og, kh, kw = w.shape
    (sh, sw), (dh, dw), (pt, pb, pl, pr) = strides, dilations, paddings
    full_h = (h - 1) * sh + dh * (kh - 1) + 1 + output_padding[0]
    full_w = (wd - 1) * sw + dw * (kw - 1) + 1 + output_padding[1]
    cg = c // groups
    full = np.zeros((n, og * groups, full_h, full_w), np.float32)
    for g in range(groups):
        xs = x[:, g * cg:(g + 1) * cg]
        # contrib[n, o, i, j, y, x] = sum_c x[n, c, y, x] * w[c, o, i, j]
        contrib = np.einsum("ncyx,coij->noijyx", xs, w[g * cg:(g + 1) * cg], optimize=True)
        for i in range(kh):
            for j in range(kw):
                full[:, g * og:(g + 1) * og, i * dh:i * dh + (h - 1) * sh + 1:sh,
                     j * dw:j * dw + (wd - 1) * sw + 1:sw] += contrib[:, :, i, j]
    y = full[:, :, pt:full_h - pb, pl:full_w - pr]
    if b is not None:
        y = y + b.reshape(1, -1, 1, 1)
    return apply_act(np.ascontiguousarray(y).astype(x.dtype, copy=False), act_type, act_alpha)


@op("conv2d_transpose", inputs="Input Filter Bias?", outputs="Output",
    attrs={**CONV_ATTRS, "output_padding": (0, 0)}, infer=_conv_t_infer, weight_inputs={1: 1, 2: None})
def conv2d_transpose(x, w, b, **attrs):
    """2-D transposed convolution (filter IOHW)"""
    return conv2d_transpose_reference(x, w, b, **attrs)


# --- pooling ---------------------------------------------------------------------------------

def pool_out_size(size: int, k: int, stride: int, pad0: int, pad1: int, ceil_mode: bool) -> int:
    """Output size; with ceil_mode the last window must start inside the input or its leading pad."""
    span = size + pad0 + pad1 - k
    out = (-(-span // stride) if ceil_mode else span // stride) + 1
    if ceil_mode and (out - 1) * stride >= size + pad0:
        out -= 1
    return out


POOL_ATTRS = {
    "pooling_type": "max",
    "ksize": Attr("ints", (1, 1)),
    "strides": (1, 1),
    "paddings": (0, 0, 0, 0),
    "global_pooling": False,
    "exclusive": True,       # avg: divide by the number of non-padding elements
    "ceil_mode": False,
}


def _pool_infer(ctx: InferCtx):
    x = ctx.shape(0)
    a = ctx.attrs
    if a["pooling_type"] not in ("max", "avg"):
        raise ctx.error(f"pooling_type must be max or avg, got {a['pooling_type']!r}")
    if x is None:
        return [TensorType(ctx.dtype(0), None)]
    if len(x) != 4:
        raise ctx.error(f"input must be 4-D NCHW, got shape {x}")
    if a["global_pooling"]:
        return [TensorType(ctx.dtype(0), (x[0], x[1], 1, 1))]
    (kh, kw), (sh, sw), (pt, pb, pl, pr) = a["ksize"], a["strides"], a["paddings"]
    oh = dim_op(ctx, 2, lambda h: pool_out_size(h, kh, sh, pt, pb, a["ceil_mode"]), x[2])
    ow = dim_op(ctx, 3, lambda w: pool_out_size(w, kw, sw, pl, pr, a["ceil_mode"]), x[3])
    for d in (oh, ow):
        if isinstance(d, int) and d < 1:
            raise ctx.error(f"output would be empty: input {x}, ksize {a['ksize']}, paddings {a['paddings']}")
    return [TensorType(ctx.dtype(0), (x[0], x[1], oh, ow))]


@op("pool2d", attrs=POOL_ATTRS, infer=_pool_infer)
def pool2d(x, *, pooling_type, ksize, strides, paddings, global_pooling, exclusive, ceil_mode):
    """max or average 2-D pooling (explicit paddings, optional ceil mode and global pooling)"""
    n, c, h, w = x.shape
    if global_pooling:
        f = np.max if pooling_type == "max" else np.mean
        return f(x, axis=(2, 3), keepdims=True).astype(x.dtype)
    (kh, kw), (sh, sw), (pt, pb, pl, pr) = ksize, strides, paddings
    oh = pool_out_size(h, kh, sh, pt, pb, ceil_mode)
    ow = pool_out_size(w, kw, sw, pl, pr, ceil_mode)
    # pad enough for every window (ceil mode may reach past the declared padding)
    eh = max(0, (oh - 1) * sh + kh - (h + pt + pb))
    ew = max(0, (ow - 1) * sw + kw - (w + pl + pr))
    fill = -np.inf if pooling_type == "max" else 0.0
    xp = np.pad(x.astype(np.float32), ((0, 0), (0, 0), (pt, pb + eh), (pl, pr + ew)), constant_values=fill)
    win = _windows(xp, kh, kw, oh, ow, sh, sw, 1, 1)
    if pooling_type == "max":
        return win.max(axis=(2, 3)).astype(x.dtype)
    total = win.sum(axis=(2, 3))
    if exclusive:
        ones = np.pad(np.ones((1, 1, h, w), np.float32), ((0, 0), (0, 0), (pt, pb + eh), (pl, pr + ew)))
    else:  # count the declared padding, not the extra ceil-mode overhang
        ones = np.pad(np.ones((1, 1, h + pt + pb, w + pl + pr), np.float32), ((0, 0), (0, 0), (0, eh), (0, ew)))
    count = _windows(ones, kh, kw, oh, ow, sh, sw, 1, 1).sum(axis=(2, 3))
    return (total / count).astype(x.dtype)
