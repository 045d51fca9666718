"""A multiply by a scalar constant and an add of one, in either order => one `scale` op (Paddle's `scale`:
scale * x + bias, or scale * (x + bias) when not bias_after_scale):

    x * s + t   = scale(x, scale=s, bias=t)
    (x + t) * s = scale(x, scale=s, bias=t, bias_after_scale=False)
One pass over the tensor instead of two (PP-LCNet's learnable affine blocks follow every conv and its
activation, where fuse_conv_affine cannot fold them into the filter). Both constants must hold one value,
broadcast to x's shape unchanged, in x's float dtype; neither op may carry an activation of its own.
"""
from __future__ import annotations

import numpy as np

from ..ir import Graph
from .context import PassContext
from .pattern import Const, Miss, Op, Rule, Var, run_rules


def _scalar(c, x) -> float | None:
    """c's one value if c broadcasts against x without changing its shape, else None."""
    if c.data is None or c.data.size != 1 or x.shape is None or c.data.ndim > len(x.shape):
        return None
    return float(np.asarray(c.data).reshape(()))


def _scale(x, s, t, inner, outer, after):
    if inner.attrs.get("act_type") or outer.attrs.get("act_type"):
        return None, Miss("an activation sits between the multiply and the add")
    if not x.dtype.is_float or s.dtype != x.dtype or t.dtype != x.dtype:
        return None, Miss(f"not all float of one dtype ({x.dtype}, {s.dtype}, {t.dtype})")
    sv, tv = _scalar(s, x), _scalar(t, x)
    if sv is None or tv is None:
        return None, Miss("a constant is not one value broadcast to the tensor's shape")
    return dict(scale=sv, bias=tv, bias_after_scale=after), None


def _mul_add(g, x, s, t, mul, add):
    attrs, miss = _scale(x, s, t, mul, add, True)
    return miss or g.emit("scale", [x.name], name=add.name, **attrs)


def _add_mul(g, x, s, t, mul, add):
    attrs, miss = _scale(x, s, t, add, mul, False)
    return miss or g.emit("scale", [x.name], name=mul.name, **attrs)


RULES = [
    Rule(Op("elementwise_add", Op("elementwise_mul", Var("x"), Const("s"), name="mul", commutative=True), Const("t"),
            name="add", commutative=True), _mul_add, "x * s + t"),
    Rule(Op("elementwise_mul", Op("elementwise_add", Var("x"), Const("t"), name="add", commutative=True), Const("s"),
            name="mul", commutative=True), _add_mul, "(x + t) * s"),
]


def fuse_scale(graph: Graph, ctx: PassContext) -> None:
    run_rules(graph, ctx, RULES)
