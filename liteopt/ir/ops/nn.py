"""Neural-network ops (Paddle Lite names): batch_norm, softmax, log_softmax, matmul_v2, einsum, fc, layer_norm,
instance_norm, nearest_interp_v2 / bilinear_interp_v2 (resize), pad."""
from __future__ import annotations

import math

import numpy as np

from ..registry import Attr, InferCtx, TensorType, broadcast_shapes, dim_op, normalize_axis, op, same_as
from .activation import FUSED_ACT_ATTRS, apply_act


@op("batch_norm", inputs="X Scale Bias Mean Variance", outputs="Y", attrs={"epsilon": 1e-5, **FUSED_ACT_ATTRS},
    infer=same_as(0))
def batch_norm(x, scale, bias, mean, var, *, epsilon, act_type, act_alpha):
    """inference batch norm over channel axis 1: (x - mean) / sqrt(var + eps) * scale + bias (then the fused
    activation: a batch_norm that no conv before it absorbs, DenseNet's BN -> ReLU before each conv)"""
    shape = (1, -1) + (1,) * (x.ndim - 2)
    inv = (scale / np.sqrt(var.astype(np.float64) + epsilon)).astype(np.float32)
    y = ((x - mean.reshape(shape)) * inv.reshape(shape) + bias.reshape(shape)).astype(x.dtype)
    return apply_act(y, act_type, act_alpha)


def _softmax_infer(ctx: InferCtx):
    if ctx.shape(0) is not None:
        normalize_axis(ctx, ctx.attrs["axis"], len(ctx.shape(0)))
    return [TensorType(ctx.dtype(0), ctx.shape(0))]


@op("softmax", attrs={"axis": -1}, infer=_softmax_infer)
def softmax(x, *, axis):
    """exp(x - max) / sum over one axis"""
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return (e / e.sum(axis=axis, keepdims=True)).astype(x.dtype)


@op("log_softmax", attrs={"axis": -1}, infer=_softmax_infer)
def log_softmax(x, *, axis):
    """x - max - log(sum(exp(x - max))) over one axis"""
    m = x - x.max(axis=axis, keepdims=True)
    return (m - np.log(np.exp(m).sum(axis=axis, keepdims=True))).astype(x.dtype)


def _matmul_infer(ctx: InferCtx):
    a, b = ctx.shape(0), ctx.shape(1)
    if a is None or b is None:
        return [TensorType(ctx.dtype(0), None)]
    a, b = list(a), list(b)
    if ctx.attrs["trans_x"] and len(a) >= 2:
        a[-1], a[-2] = a[-2], a[-1]
    if ctx.attrs["trans_y"] and len(b) >= 2:
        b[-1], b[-2] = b[-2], b[-1]
    a1, b1 = len(a) == 1, len(b) == 1
    a2 = [1] + a if a1 else a
    b2 = b + [1] if b1 else b
    k1, k2 = a2[-1], b2[-2]
    if isinstance(k1, int) and isinstance(k2, int) and k1 != k2:
        raise ctx.error(f"matmul of shapes {ctx.shape(0)} and {ctx.shape(1)}: inner dims {k1} != {k2}")
    batch = broadcast_shapes(ctx, [tuple(a2[:-2]), tuple(b2[:-2])])
    out = list(batch) + ([] if a1 else [a2[-2]]) + ([] if b1 else [b2[-1]])
    return [TensorType(ctx.dtype(0), tuple(out))]


@op("matmul_v2", inputs="X Y", attrs={"trans_x": False, "trans_y": False}, infer=_matmul_infer,
    weight_inputs={1: lambda attrs: -2 if attrs["trans_y"] else -1})
def matmul_v2(x, y, *, trans_x, trans_y):
    """numpy matmul (batch broadcasting, 1-D operands), optionally transposing the last two dims"""
    if trans_x and x.ndim >= 2:
        x = np.swapaxes(x, -1, -2)
    if trans_y and y.ndim >= 2:
        y = np.swapaxes(y, -1, -2)
    return np.matmul(x, y).astype(x.dtype)


def einsum_terms(equation: str, ranks: list[int]) -> tuple[list[str], str]:
    """ONNX/numpy einsum notation (spaces ignored; output implicit without '->': the letters used once, in
    alphabetical order) -> each input's letters and the output's, one letter per dimension: an ellipsis becomes
    the letters '0', '1', ... for its dimensions, aligned to the right as broadcasting aligns them. ValueError
    for an equation that does not fit the ranks."""
    eq = equation.replace(" ", "")
    lhs, arrow, rhs = eq.partition("->")
    terms = lhs.split(",")
    if len(terms) != len(ranks):
        raise ValueError(f"einsum {equation!r} has {len(terms)} operand(s), the node {len(ranks)}")
    width = 0
    for t, r in zip(terms, ranks):
        if "..." in t:
            width = max(width, r - len(t.replace("...", "")))
    dots = "".join(str(i) for i in range(width))
    out = []
    for t, r in zip(terms, ranks):
        named = t.replace("...", "")
        if not named.isalpha() and named:
            raise ValueError(f"einsum {equation!r}: {t!r} is not letters and one '...'")
        n = r - len(named)
        if ("..." in t and n < 0) or ("..." not in t and n != 0):
            raise ValueError(f"einsum {equation!r}: {t!r} does not fit an operand of rank {r}")
        out.append(t.replace("...", dots[width - n:]))
    if arrow:
        result = rhs.replace("...", dots)
    else:
        letters = "".join(out)
        result = dots + "".join(sorted(c for c in set(letters) if c.isalpha() and letters.count(c) == 1))
    if any(c not in "".join(out) for c in result) or len(set(result)) != len(result):
        raise ValueError(f"einsum {equation!r}: the output {result!r} names a dimension no input has, or twice")
    return out, result


def _einsum_infer(ctx: InferCtx):
    shapes = [ctx.shape(i) for i in range(len(ctx.node.inputs))]
    if any(sh is None for sh in shapes):
        return [TensorType(ctx.dtype(0), None)]
    try:
        terms, result = einsum_terms(ctx.attrs["equation"], [len(sh) for sh in shapes])
    except ValueError as e:
        raise ctx.error(str(e)) from None
    dims: dict[str, object] = {}
    for t, sh in zip(terms, shapes):
        for c, d in zip(t, sh):
            have = dims.get(c, 1)
            if have == 1 or (c.isdigit() and d == 1):  # (ellipsis dims broadcast)
                dims[c] = d if have == 1 else have
            elif isinstance(have, int) and isinstance(d, int) and have != d:
                raise ctx.error(f"einsum {ctx.attrs['equation']!r}: dimension {c!r} is {have} and {d}")
    return [TensorType(ctx.dtype(0), tuple(dims[c] for c in result))]


@op("einsum", inputs="Operands*", attrs={"equation": Attr("str")}, infer=_einsum_infer)
def einsum(*xs, equation):
    """numpy einsum of the operands (ONNX Einsum: letters per dimension, '...' for broadcast ones, '->' the
    output, implicit without it)"""
    terms, result = einsum_terms(equation, [x.ndim for x in xs])
    letters = {c: chr(ord("A") + i) for i, c in enumerate(dict.fromkeys("".join(terms)))}  # (numpy: letters only)
    spec = ",".join("".join(letters[c] for c in t) for t in terms) + "->" + "".join(letters[c] for c in result)
    return np.asarray(np.einsum(spec, *xs)).astype(xs[0].dtype)


def _fc_infer(ctx: InferCtx):
    x, w = ctx.shape(0), ctx.shape(1)
    k = ctx.attrs["in_num_col_dims"]
    if w is None or len(w) != 2:
        raise ctx.error(f"the fc weight must be 2-D, got {w}")
    if x is None:
        return [TensorType(ctx.dtype(0), None)]
    if not 1 <= k < max(len(x), 2):
        raise ctx.error(f"in_num_col_dims {k} out of range for an input of rank {len(x)}")
    inner = dim_op(ctx, 9, lambda *d: math.prod(d), *x[k:])
    if isinstance(inner, int) and isinstance(w[0], int) and inner != w[0]:
        raise ctx.error(f"input {x} flattens to {inner} features but the weight {w} expects {w[0]}")
    return [TensorType(ctx.dtype(0), tuple(x[:k]) + (w[1],))]


@op("fc", inputs="Input W Bias?", attrs={"in_num_col_dims": 1, **FUSED_ACT_ATTRS}, infer=_fc_infer,
    weight_inputs={1: 1, 2: None})
def fc(x, w, b, *, in_num_col_dims, act_type, act_alpha):
    """fully connected: x flattened to (prod(dims[:k]), prod(dims[k:])) @ W[K, N] + bias, dims[:k] + (N,)"""
    k = in_num_col_dims
    y = x.reshape(math.prod(x.shape[:k]), -1) @ w
    if b is not None:
        y = y + b.reshape(1, -1)
    return apply_act(y.reshape(x.shape[:k] + (w.shape[1],)).astype(x.dtype), act_type, act_alpha)


@op("layer_norm", inputs="X Scale? Bias?", outputs="Y", attrs={"epsilon": 1e-5, "begin_norm_axis": 1},
    infer=same_as(0), weight_inputs={1: None, 2: None})
def layer_norm(x, scale, bias, *, epsilon, begin_norm_axis):
    """normalize over dims[begin_norm_axis:], then * scale + bias (flattened over those dims)"""
    a = begin_norm_axis % x.ndim
    axes = tuple(range(a, x.ndim))
    x64 = x.astype(np.float64)
    mu = x64.mean(axis=axes, keepdims=True)
    var = ((x64 - mu) ** 2).mean(axis=axes, keepdims=True)
    y = (x64 - mu) / np.sqrt(var + epsilon)
    if scale is not None:
        y = y * scale.reshape(x.shape[a:])
    if bias is not None:
        y = y + bias.reshape(x.shape[a:])
    return y.astype(x.dtype)


@op("instance_norm", inputs="X Scale? Bias?", outputs="Y", attrs={"epsilon": 1e-5}, infer=same_as(0))
def instance_norm(x, scale, bias, *, epsilon):
    """normalize each (n, c) plane over dims[2:], then * scale[c] + bias[c]"""
    axes = tuple(range(2, x.ndim))
    x64 = x.astype(np.float64)
    mu = x64.mean(axis=axes, keepdims=True)
    var = ((x64 - mu) ** 2).mean(axis=axes, keepdims=True)
    y = (x64 - mu) / np.sqrt(var + epsilon)
    shape = (1, -1) + (1,) * (x.ndim - 2)
    if scale is not None:
        y = y * scale.reshape(shape)
    if bias is not None:
        y = y + bias.reshape(shape)
    return y.astype(x.dtype)


# --- resize ------------------------------------------------------------------------------------

INTERP_ATTRS = {
    "out_h": -1, "out_w": -1,                          # fixed output size, or -1
    "scale": Attr("floats", ()),                       # (scale_h, scale_w) when no size is given
    "coordinate_transformation_mode": "half_pixel",    # ONNX's names
    "nearest_mode": "round_prefer_floor",             # ONNX's names, or "simple" (see nearest_index)
    "cubic_coeff_a": -0.75,
}


def _interp_infer(ctx: InferCtx):
    x = ctx.shape(0)
    a = ctx.attrs
    if x is None or len(x) != 4:
        raise ctx.error(f"resize needs a 4-D NCHW input, got {x}")
    if ctx.has(1):  # SizeTensor: the full output shape (or just H, W)
        v = ctx.value(1)
        if v is not None:
            v = [int(d) for d in np.asarray(v).reshape(-1)]
            return [TensorType(ctx.dtype(0), (x[0], x[1], v[-2], v[-1]))]
        return [TensorType(ctx.dtype(0), (x[0], x[1], ctx.fresh(2), ctx.fresh(3)))]
    if ctx.has(2):  # Scale tensor
        v = ctx.value(2)
        if v is None:
            return [TensorType(ctx.dtype(0), (x[0], x[1], ctx.fresh(2), ctx.fresh(3)))]
        sh, sw = [float(s) for s in np.asarray(v).reshape(-1)][-2:]
    elif a["out_h"] > 0:
        return [TensorType(ctx.dtype(0), (x[0], x[1], a["out_h"], a["out_w"]))]
    else:
        if len(a["scale"]) != 2:
            raise ctx.error("resize needs an output size or two scales")
        sh, sw = a["scale"]
    return [TensorType(ctx.dtype(0), (x[0], x[1], dim_op(ctx, 2, lambda h: scaled_size(h, sh), x[2]),
                                      dim_op(ctx, 3, lambda w: scaled_size(w, sw), x[3])))]


# onnxruntime computes sizes, scales and coordinates in float32; so do we, or ties (x.5 under
# round_prefer_floor, integers under floor/ceil) and truncated sizes come out differently.
_f32 = np.float32


def scaled_size(n: int, scale: float) -> int:
    """Output length of a resize by `scale`: floor(n * scale), the product taken in float32."""
    return int(np.floor(_f32(n) * _f32(scale)))


def interp_size_and_scale(x_shape, size_t, scale_t, out_h, out_w, scale):
    """Output (oh, ow) and the float32 scales (sh, sw) the coordinate transform uses (given, or out/in)."""
    h, w = x_shape[2], x_shape[3]
    if size_t is not None:
        oh, ow = [int(d) for d in np.asarray(size_t).reshape(-1)][-2:]
    elif scale_t is None and out_h > 0:
        oh, ow = out_h, out_w
    else:
        sh, sw = [_f32(s) for s in np.asarray(scale_t).reshape(-1)][-2:] if scale_t is not None else map(_f32, scale)
        return scaled_size(h, sh), scaled_size(w, sw), sh, sw
    return oh, ow, _f32(oh) / _f32(h), _f32(ow) / _f32(w)


def _half_pixel_symmetric(i, s, out, n):
    adjustment = _f32(out) / (s * _f32(n))
    offset = _f32(n) / _f32(2) * (_f32(1) - adjustment)
    return offset + (i + _f32(0.5)) / s - _f32(0.5)


# coordinate_transformation_mode -> (output index i, scale s, output length, input length) -> input coordinate
COORDINATE_TRANSFORMS = {
    "half_pixel": lambda i, s, out, n: (i + _f32(0.5)) / s - _f32(0.5),
    "pytorch_half_pixel": lambda i, s, out, n: (i + _f32(0.5)) / s - _f32(0.5) if out > 1 else i * _f32(0),
    "align_corners": lambda i, s, out, n: i * _f32(n - 1) / _f32(out - 1) if out > 1 else i * _f32(0),
    "asymmetric": lambda i, s, out, n: i / s,
    "tf_half_pixel_for_nn": lambda i, s, out, n: (i + _f32(0.5)) / s,
    "half_pixel_symmetric": _half_pixel_symmetric,
}


def source_coords(out_size: int, in_size: int, scale: float, mode: str) -> np.ndarray:
    """ONNX Resize coordinate_transformation_mode: the (float32) input coordinate of each output index."""
    if mode not in COORDINATE_TRANSFORMS:
        raise ValueError(f"coordinate_transformation_mode {mode!r} is not supported")
    return COORDINATE_TRANSFORMS[mode](np.arange(out_size, dtype=_f32), _f32(scale), out_size, in_size)


def _round_prefer(tie):
    return lambda c: np.where(c - np.floor(c) == 0.5, tie(c), np.round(c))


# nearest_mode -> input coordinate -> index before clamping (np.round alone would round ties to even)
NEAREST_MODES = {
    "round_prefer_floor": _round_prefer(np.floor),
    "round_prefer_ceil": _round_prefer(np.ceil),
    "floor": np.floor,
    "ceil": np.ceil,
}


def nearest_index(coord: np.ndarray, in_size: int, mode: str, scale: float) -> np.ndarray:
    """Nearest input index of each coordinate, clamped to the input. Mode "simple" is onnxruntime's rule
    for Resize-10 and Upsample: ceil along an axis that is downsampled (scale < 1), else floor.
    An axis of scale 1 maps to itself, as in onnxruntime (which only tf_half_pixel_for_nn would change)."""
    if scale == 1:
        return np.arange(len(coord), dtype=np.int64)
    if mode == "simple":
        mode = "ceil" if scale < 1 else "floor"
    if mode not in NEAREST_MODES:
        raise ValueError(f"nearest_mode {mode!r} is not supported")
    return np.clip(NEAREST_MODES[mode](coord), 0, in_size - 1).astype(np.int64)


def linear_weights(coord: np.ndarray, in_size: int):
    """(lo, hi, frac) for 1-D linear interpolation, clamped to the input like onnxruntime."""
    c = np.clip(coord, 0, in_size - 1)
    lo = np.floor(c).astype(np.int64)
    hi = np.minimum(lo + 1, in_size - 1)
    return lo, hi, (c - lo).astype(_f32)


def nearest_indices(x_shape, oh: int, ow: int, sh: float, sw: float, mode: str, nearest_mode: str):
    """(row indices, column indices) of x that nearest-neighbour resize to (oh, ow) reads"""
    return (nearest_index(source_coords(oh, x_shape[2], sh, mode), x_shape[2], nearest_mode, sh),
            nearest_index(source_coords(ow, x_shape[3], sw, mode), x_shape[3], nearest_mode, sw))


def bilinear_weights(x_shape, oh: int, ow: int, sh: float, sw: float, mode: str):
    """((y0, y1, fy), (x0, x1, fx)): linear_weights of the rows and of the columns of a resize to (oh, ow)"""
    return (linear_weights(source_coords(oh, x_shape[2], sh, mode), x_shape[2]),
            linear_weights(source_coords(ow, x_shape[3], sw, mode), x_shape[3]))


@op("nearest_interp_v2", inputs="X SizeTensor? Scale?", attrs=INTERP_ATTRS, infer=_interp_infer)
def nearest_interp_v2(x, size_t, scale_t, *, out_h, out_w, scale, coordinate_transformation_mode, nearest_mode,
                      cubic_coeff_a):
    """nearest-neighbour resize of H and W (ONNX Resize semantics); the identity when the size does not
    change, whatever the scales (onnxruntime and Paddle do that)"""
    oh, ow, sh, sw = interp_size_and_scale(x.shape, size_t, scale_t, out_h, out_w, scale)
    if (oh, ow) == x.shape[2:]:
        return x.copy()
    iy, ix = nearest_indices(x.shape, oh, ow, sh, sw, coordinate_transformation_mode, nearest_mode)
    return np.asarray(x[:, :, iy][:, :, :, ix], order="C")


@op("bilinear_interp_v2", inputs="X SizeTensor? Scale?", attrs=INTERP_ATTRS, infer=_interp_infer)
def bilinear_interp_v2(x, size_t, scale_t, *, out_h, out_w, scale, coordinate_transformation_mode, nearest_mode,
                       cubic_coeff_a):
    """bilinear resize of H and W (ONNX Resize linear semantics); the identity when the size does not
    change, whatever the scales (onnxruntime and Paddle do that)"""
    oh, ow, sh, sw = interp_size_and_scale(x.shape, size_t, scale_t, out_h, out_w, scale)
    if (oh, ow) == x.shape[2:]:
        return x.copy()
    (y0, y1, fy), (x0, x1, fx) = bilinear_weights(x.shape, oh, ow, sh, sw, coordinate_transformation_mode)
    xd = x.astype(np.float64)
    top = xd[:, :, y0][:, :, :, x0] * (1 - fx) + xd[:, :, y0][:, :, :, x1] * fx
    bot = xd[:, :, y1][:, :, :, x0] * (1 - fx) + xd[:, :, y1][:, :, :, x1] * fx
    fy = fy.reshape(-1, 1)
    return (top * (1 - fy) + bot * fy).astype(x.dtype)


# --- pad ---------------------------------------------------------------------------------------

def _pad_infer(ctx: InferCtx):
    x = ctx.shape(0)
    if x is None:
        return [TensorType(ctx.dtype(0), None)]
    p = ctx.value(1) if ctx.has(1) else ctx.attrs["paddings"]
    if p is None:
        return [TensorType(ctx.dtype(0), tuple(ctx.fresh(i) for i in range(len(x))))]
    p = [int(v) for v in np.asarray(p).reshape(-1)]
    if len(p) != 2 * len(x):
        raise ctx.error(f"{len(p)} paddings for rank {len(x)} (need before/after per dim)")
    return [TensorType(ctx.dtype(0), tuple(dim_op(ctx, i, lambda d: d + p[2 * i] + p[2 * i + 1], d)
                                           for i, d in enumerate(x)))]


@op("pad", inputs="X Paddings?", attrs={"paddings": Attr("ints", ()), "mode": "constant", "pad_value": 0.0},
    infer=_pad_infer)
def pad(x, paddings_t, *, paddings, mode, pad_value):
    """pad every dim by (before, after) = paddings[2i], paddings[2i+1] (negative crops); modes constant,
    reflect, edge"""
    p = [int(v) for v in np.asarray(paddings_t).reshape(-1)] if paddings_t is not None else list(paddings)
    crop = tuple(slice(max(0, -p[2 * i]), x.shape[i] - max(0, -p[2 * i + 1])) for i in range(x.ndim))
    x = x[crop]
    widths = [(max(0, p[2 * i]), max(0, p[2 * i + 1])) for i in range(x.ndim)]
    if mode == "constant":
        return np.pad(x, widths, mode="constant", constant_values=np.asarray(pad_value).astype(x.dtype))
    if mode in ("reflect", "edge"):
        return np.pad(x, widths, mode=mode)
    raise ValueError(f"pad mode {mode!r} is not supported")

