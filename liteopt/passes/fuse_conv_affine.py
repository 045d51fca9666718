"""A conv followed by a constant per-channel add (its bias) or mul (a scale) => one conv.

    conv(x, w) + b + c   = conv(x, w) + (b + c)
    (conv(x, w) + b) * s = conv(x, w * s) + b * s
Only constants that broadcast per output channel qualify: shape (C, 1, 1), (1, C, 1, 1), (1,) or ().
A batch_norm after such an add or mul is folded here too (`fuse_conv_bn`'s rule, which runs first and sees
only a batch_norm right after the conv): the PP-OCRv4 detector's ConvTranspose -> Add(bias) -> BatchNorm.
"""
from __future__ import annotations

import numpy as np

from ..ir import Graph
from .context import PassContext
from . import fuse_conv_bn
from .fuse_conv_bn import CONVS, out_channels, scale_filter
from .pattern import Const, Miss, Op, Rule, Var, run_rules


def per_channel(c: np.ndarray, channels: int) -> np.ndarray | None:
    """c as a (channels,) vector if it broadcasts per channel against an NCHW tensor, else None."""
    shape = (1,) * (4 - c.ndim) + tuple(c.shape) if c.ndim <= 4 else None
    if shape is None or shape[0] != 1 or shape[2:] != (1, 1) or shape[1] not in (1, channels):
        return None
    return np.broadcast_to(c.reshape(-1), (channels,)).astype(np.float64)


def _conv_out(conv, w):
    return out_channels(conv.op, w.data, conv.attrs["groups"])


def _add(g, x, w, b, c, conv, add):
    if conv.attrs["act_type"] or add.attrs["act_type"]:
        return Miss("an activation sits between the conv and the add")
    v = per_channel(c.data, _conv_out(conv, w))
    if v is None:
        return Miss(f"the added constant of shape {c.shape} is not per-channel")
    b0 = b.data.astype(np.float64) if b is not None else 0.0
    return g.emit(conv.op, [x.name, w.name, g.const((b0 + v).astype(np.float32), "bias")], name=conv.name,
                  **conv.attrs)


def _mul(g, x, w, b, c, conv, mul):
    if conv.attrs["act_type"] or mul.attrs["act_type"]:
        return Miss("an activation sits between the conv and the mul")
    v = per_channel(c.data, _conv_out(conv, w))
    if v is None:
        return Miss(f"the multiplying constant of shape {c.shape} is not per-channel")
    new_w = g.const(scale_filter(conv.op, w.data.astype(np.float64), v, conv.attrs["groups"]).astype(np.float32),
                    "filter")
    ins = [x.name, new_w] + ([g.const((b.data * v).astype(np.float32), "bias")] if b is not None else [])
    return g.emit(conv.op, ins, name=conv.name, **conv.attrs)


def _conv():
    return Op(CONVS, Var("x"), Const("w"), Const("b", optional=True), name="conv")


RULES = [
    Rule(Op("elementwise_add", _conv(), Const("c"), name="add", commutative=True), _add, "conv + bias"),
    Rule(Op("elementwise_mul", _conv(), Const("c"), name="mul", commutative=True), _mul, "conv * scale"),
]


def fuse_conv_affine(graph: Graph, ctx: PassContext) -> None:
    run_rules(graph, ctx, RULES + fuse_conv_bn.RULES)
