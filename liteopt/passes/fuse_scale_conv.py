"""A `scale` (s * x + t) read only by a 1x1 conv without padding => the conv with s and t in its filter and bias:

    conv(s * x + t, w) + b = conv(x, s * w) + (b + t * sum over w's input channels)
(t * s for a scale with the bias first.) Exact only where every tap reads the scaled tensor: a padded conv's
border taps read zeros, not t, so a k x k conv with padding keeps the scale. PP-LCNet's learnable affine
blocks sit after every activation; half of those in the PP-OCRv4 detector feed a pointwise conv (a pass over
tensors of up to 6.5 MB each).
"""
from __future__ import annotations

import numpy as np

from ..ir import Graph
from .context import PassContext
from .pattern import Const, Miss, Op, Rule, Var, run_rules


def _fold(g, x, w, b, sc, conv):
    if tuple(w.shape[2:]) != (1, 1) or any(conv.attrs["paddings"]):
        return Miss(f"the conv is {w.shape[2]}x{w.shape[3]} with paddings {tuple(conv.attrs['paddings'])}: "
                    "its border taps would read zeros, not the scale's bias")
    if not x.dtype.is_float or w.dtype != x.dtype:
        return Miss(f"not float of one dtype ({x.dtype}, {w.dtype})")
    s = float(sc.attrs["scale"])
    t = float(sc.attrs["bias"]) * (1.0 if sc.attrs["bias_after_scale"] else s)
    w64 = w.data.astype(np.float64)
    b0 = b.data.astype(np.float64) if b is not None else np.zeros(w.shape[0])
    new_w = g.const((w64 * s).astype(np.float32), "filter")
    new_b = g.const((b0 + t * w64.sum(axis=(1, 2, 3))).astype(np.float32), "bias")
    return g.emit(conv.op, [x.name, new_w, new_b], name=conv.name, **conv.attrs)


RULES = [Rule(Op(("conv2d", "depthwise_conv2d"), Op("scale", Var("x"), name="sc"), Const("w"),
                 Const("b", optional=True), name="conv"), _fold, "scale + 1x1 conv")]


def fuse_scale_conv(graph: Graph, ctx: PassContext) -> None:
    run_rules(graph, ctx, RULES)
