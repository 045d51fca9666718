"""conv2d / depthwise_conv2d / conv2d_transpose (+ bias) -> batch_norm  =>  one conv with new weights and bias.

    y = scale * (conv(x, w) + b - mean) / sqrt(var + eps) + bias
      = conv(x, w * a) + (b - mean) * a + bias,   a = scale / sqrt(var + eps)   (per output channel)
"""
from __future__ import annotations

import numpy as np

from ..ir import Graph
from .context import PassContext
from .pattern import Const, Miss, Op, Rule, Var, run_rules

CONVS = ("conv2d", "depthwise_conv2d", "conv2d_transpose")


def scale_filter(op: str, w: np.ndarray, a: np.ndarray, groups: int) -> np.ndarray:
    """Multiply output channel k of a conv filter by a[k] (OIHW; IOHW per group for conv2d_transpose)."""
    if op == "conv2d_transpose":
        cin, og = w.shape[0], w.shape[1]
        g = w.reshape(groups, cin // groups, og, *w.shape[2:]) * a.reshape(groups, 1, og, 1, 1)
        return g.reshape(w.shape).astype(w.dtype)
    return (w * a.reshape(-1, 1, 1, 1)).astype(w.dtype)


def out_channels(op: str, w: np.ndarray, groups: int) -> int:
    return w.shape[1] * groups if op == "conv2d_transpose" else w.shape[0]


def _fold(g, x, w, b, scale, bias, mean, var, conv, bn):
    if conv.attrs["act_type"]:
        return Miss("the conv already has a fused activation")
    attrs = dict(conv.attrs, act_type=bn.attrs["act_type"], act_alpha=bn.attrs["act_alpha"])  # (the BN's, if fused)
    c = out_channels(conv.op, w.data, conv.attrs["groups"])
    if any(t.data.size != c for t in (scale, bias, mean, var)):
        return Miss(f"batch_norm parameters do not have {c} channels")
    a = scale.data.astype(np.float64) / np.sqrt(var.data.astype(np.float64) + bn.attrs["epsilon"])
    b0 = b.data.astype(np.float64) if b is not None else 0.0
    new_w = g.const(scale_filter(conv.op, w.data.astype(np.float64), a, conv.attrs["groups"]).astype(np.float32),
                    "filter")
    new_b = g.const(((b0 - mean.data) * a + bias.data).astype(np.float32), "bias")
    return g.emit(conv.op, [x.name, new_w, new_b], name=conv.name, **attrs)


RULES = [Rule(Op("batch_norm", Op(CONVS, Var("x"), Const("w"), Const("b", optional=True), name="conv"),
                 Const("scale"), Const("bias"), Const("mean"), Const("var"), name="bn"), _fold)]


def fuse_conv_bn(graph: Graph, ctx: PassContext) -> None:
    run_rules(graph, ctx, RULES)
