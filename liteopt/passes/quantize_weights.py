"""Weight-only quantization without calibration data (Paddle Lite's post_quant_dynamic), and float16 storage.

For every weight input of an op (`OpDef.weight_inputs`: input index -> output-channel axis) that is a
float32 constant of at least MIN_ELEMENTS values:
    scale[c] = max|W[c]| / (2^(bits-1) - 1)          (symmetric, per output channel; 1 for an all-zero channel)
    q = clip(round(W / scale), -qmax, qmax)          stored as int8/int16 with its scales
Biases (one scale per tensor) take 16 bits. INT8 also keeps its smallest layers in 16 bits as long as the
stored (compressed) weights stay within a quarter of their float bytes (INT8_TARGET). With `quant_min_sqnr`,
a layer whose SQNR falls below it is tried with 16 bits, then kept in float32: a per-layer mixed-precision
choice made from the weights alone. With `enable_fp16`, float32 weights that are not quantized are stored as
float16 unless values fall outside its range or would be flushed to zero. The runtime restores float32 once
at load: this saves file size and download time, not inference time.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from ..ir import OPS, DType, Graph, QuantInfo
from ..ir.graph import scales_from_amax16, stored_bytes
from .context import PassContext

MIN_ELEMENTS = 256           # smaller per-channel tensors (tiny filters) gain nothing worth the precision
MIN_ELEMENTS_PER_TENSOR = 64  # biases: smaller ones save nothing once blobs are 64-byte aligned
# A bias has one scale for the whole tensor, and its error shifts every output of its channel alike: biases
# always take 16 bits (they are a tiny part of a model).
# INT8 promises weights a quarter of their float size. The file stores integer weights zlib-compressed, which
# saves 7-14% more; INT8 spends that on keeping its smallest per-channel layers in 16 bits (the stem, the
# depthwise and the first 1x1 convolutions, whose errors every later layer carries), smallest first, while the
# weights stay within INT8_TARGET of their float bytes. On the seeded zoo nets the output cosine rises from
# 0.986-0.994 to >= 0.9995 (ResNet50, MobileNetV2).
INT8_TARGET = 0.25
FP16_MAX = 65504.0
FP16_TINY = 6.1e-5           # below this (subnormal or zero in float16) a value loses its precision
FP16_MAX_FLUSHED = 0.01      # keep float32 if more than this fraction of non-zero values would be flushed
BITS = {"QUANT_INT8": 8, "QUANT_INT16": 16}


@dataclass
class QuantLayer:
    tensor: str
    node: str
    op: str
    elements: int
    storage: str          # "int8", "int16", "float16" or "float32" (kept)
    sqnr_db: float | None
    cosine: float | None
    bytes_before: int
    bytes_after: int
    note: str = ""

    def as_dict(self) -> dict:
        d = asdict(self)
        if d["sqnr_db"] is not None and math.isinf(d["sqnr_db"]):
            d["sqnr_db"] = "inf"
        return d


FP16_NORMAL = (6.2e-5, 65504.0)  # abs-max values in this range are stored as float16


def quantize(w: np.ndarray, axis: int | None, bits: int) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric abs-max quantization of w, per channel along `axis` (None: one scale for the tensor):
    (integers, scales). The abs-max values are rounded up to float16 when they fit (the file stores them so;
    the step grows by under 0.05%), and the integers are computed with the resulting scales."""
    qmax = 2 ** (bits - 1) - 1
    if axis is None:
        amax = np.abs(w).max(initial=0.0).astype(np.float64).reshape(1)
        shape = [1] * w.ndim
    else:
        axis = axis % w.ndim
        amax = np.abs(np.moveaxis(w, axis, 0).reshape(w.shape[axis], -1)).max(axis=1).astype(np.float64)
        shape = [1] * w.ndim
        shape[axis] = -1
    amax = np.where(amax > 0, amax, float(qmax))  # an all-zero channel: scale 1, every integer 0
    if np.all((amax >= FP16_NORMAL[0]) & (amax <= FP16_NORMAL[1])):
        half = amax.astype(np.float16)
        half = np.where(half.astype(np.float64) < amax, np.nextafter(half, np.float16(np.inf)), half)
        scale = scales_from_amax16(half, bits).astype(np.float64)  # rounded up: nothing is clipped
    else:
        scale = amax / qmax
    q = np.clip(np.round(w / scale.reshape(shape)), -qmax, qmax)
    return q.astype(np.int8 if bits == 8 else np.int16), scale.astype(np.float32)


def sqnr_db(w: np.ndarray, w_hat: np.ndarray) -> float:
    """Signal-to-quantization-noise ratio in dB (inf when exact)."""
    w64 = w.astype(np.float64)
    noise = float(np.sum((w64 - w_hat) ** 2))
    signal = float(np.sum(w64 ** 2))
    return math.inf if noise == 0 else (10 * math.log10(signal / noise) if signal > 0 else -math.inf)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.astype(np.float64).ravel(), b.astype(np.float64).ravel()
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    return 1.0 if na == 0 and nb == 0 else float(a @ b / (na * nb)) if na and nb else 0.0


NOT_A_WEIGHT = object()


def weight_axis(op: str, attrs: dict, index: int):
    """The output-channel axis of weight input `index` of an op, None for one scale per tensor (biases), or
    NOT_A_WEIGHT."""
    spec = OPS[op].weight_inputs
    if index not in spec:
        return NOT_A_WEIGHT
    axis = spec[index] if isinstance(spec, dict) else 0
    return axis(attrs) if callable(axis) else axis


def _fp16_problem(w: np.ndarray) -> str | None:
    a = np.abs(w)
    if a.max(initial=0) > FP16_MAX:
        return f"values up to {a.max():.3g} exceed the float16 range"
    nonzero = a[a > 0]
    flushed = float(np.mean(nonzero < FP16_TINY)) if nonzero.size else 0.0
    if flushed > FP16_MAX_FLUSHED:
        return f"{flushed:.0%} of the values would be flushed to zero in float16"
    return None


def quantize_weights(graph: Graph, ctx: PassContext) -> None:
    if not ctx.quant_type and not ctx.enable_fp16:
        return
    if ctx.quant_type and ctx.quant_type not in BITS:
        raise ValueError(f"unknown quant type {ctx.quant_type!r}")
    done: set[str] = set()
    chosen = []
    for node in graph.nodes:
        for index, name in enumerate(node.inputs):
            axis = weight_axis(node.op, node.attrs, index) if name else NOT_A_WEIGHT
            t = graph.tensors.get(name) if name else None
            if axis is NOT_A_WEIGHT or t is None or t.data is None or t.quant is not None or name in done:
                continue
            done.add(name)
            if t.dtype != DType.FLOAT32:
                continue
            layer = _choose(t.data, axis, ctx)
            layer.tensor, layer.node, layer.op = name, node.name, node.op
            chosen.append((t, axis, layer))
    if ctx.quant_type == "QUANT_INT8":
        _keep_small_layers_16(chosen)
    for t, axis, layer in chosen:
        ctx.quant_layers.append(layer)
        if layer.storage != "float32":
            ctx.float_weights[layer.tensor] = t.data
            ctx.record.hit()
            _store(t, layer.storage, axis)
        elif layer.note:
            ctx.record.miss(f"{layer.tensor} ({layer.node}): kept float32: {layer.note}")


def _keep_small_layers_16(chosen: list) -> None:
    """Raise the smallest int8 layers to int16, smallest first, while the stored weights fit INT8_TARGET."""
    def stored(t, axis, bits):  # integers, scales, and the bytes the file will take for them
        q, scale = quantize(t.data, axis, bits)
        return q, scale, len(stored_bytes(q, quantized=True)) + 2 * scale.size  # float16 scales

    budget = INT8_TARGET * sum(layer.bytes_before for _, _, layer in chosen)
    int8 = []
    for t, axis, layer in chosen:
        if layer.storage == "int8":
            int8.append((t, axis, layer, stored(t, axis, 8)[2]))
            budget -= int8[-1][3]
        else:
            budget -= layer.bytes_after
    for t, axis, layer, bytes8 in sorted(int8, key=lambda c: c[2].elements):
        q16, scale, bytes16 = stored(t, axis, 16)
        if bytes16 - bytes8 > budget:
            break
        budget -= bytes16 - bytes8
        w_hat = q16.astype(np.float64) * scale.reshape(_channel_shape(t.data.ndim, axis))
        layer.storage, layer.bytes_after = "int16", q16.nbytes
        layer.sqnr_db, layer.cosine = sqnr_db(t.data, w_hat), cosine(t.data, w_hat)
        layer.note = "a small layer: int16 within the INT8 size target"


def _channel_shape(ndim: int, axis: int | None) -> list[int]:
    shape = [1] * ndim
    if axis is not None:
        shape[axis % ndim] = -1
    return shape


def _store(t, storage: str, axis: int) -> None:
    if storage == "float16":
        t.data, t.dtype = t.data.astype(np.float16), DType.FLOAT16
        t.quant = QuantInfo(np.zeros(0, np.float32), 0, 16)
        return
    bits = 8 if storage == "int8" else 16
    q, scale = quantize(t.data, axis, bits)
    t.data, t.dtype = q, DType.of(q)
    t.quant = QuantInfo(scale, 0 if axis is None else axis % q.ndim, bits)


def _choose(w: np.ndarray, axis: int, ctx: PassContext) -> QuantLayer:
    """Pick the storage of one weight: the requested bits, more bits if the SQNR floor asks, else float."""
    n = w.size
    layer = QuantLayer("", "", "", n, "float32", None, None, w.nbytes, w.nbytes)
    if ctx.quant_type and n >= (MIN_ELEMENTS if axis is not None else MIN_ELEMENTS_PER_TENSOR):
        tried = []
        floor = ctx.quant_min_sqnr
        for bits in ([8, 16] if BITS[ctx.quant_type] == 8 and axis is not None else [16]):
            q, scale = quantize(w, axis, bits)
            w_hat = q.astype(np.float64) * scale.reshape(_channel_shape(w.ndim, axis))
            s, c = sqnr_db(w, w_hat), cosine(w, w_hat)
            tried.append(f"int{bits} {s:.1f} dB")
            if floor is None or s >= floor or axis is None:
                return QuantLayer("", "", "", n, f"int{bits}", s, c, w.nbytes, q.nbytes,
                                  "" if len(tried) == 1 else f"int8 gave {tried[0]}: raised to int16")
        layer.note = f"below --quant_min_sqnr={ctx.quant_min_sqnr} ({', '.join(tried)})"
    elif ctx.quant_type:
        layer.note = f"{n} values: too small to be worth quantizing"
    if ctx.enable_fp16 and n >= 1:
        problem = _fp16_problem(w)
        if problem is None:
            w16 = w.astype(np.float16)
            return QuantLayer("", "", "", n, "float16", sqnr_db(w, w16.astype(np.float64)), cosine(w, w16),
                              w.nbytes, w16.nbytes, layer.note)
        layer.note = problem if not layer.note else f"{layer.note}; {problem}"
    return layer
