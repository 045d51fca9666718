"""Remove ops that compute nothing: assign, dropout (inference), scale by 1 with bias 0, a reshape,
transpose, cast or clip that leaves its input as it is, a pad of zero everywhere (Swin's pads to a multiple of
its window size, exported for any input size), and adds/muls of a neutral constant."""
from __future__ import annotations

import numpy as np

from ..ir import Graph
from .context import PassContext
from .pattern import Const, Op, Rule, Var, run_rules


def _same(x, out_name, g):
    t = g.graph.tensors
    return x.name if t[out_name].shape == x.shape and t[out_name].dtype == x.dtype else None


def _drop(g, x, op):
    return _same(x, op.outputs[0], g)


def _neutral(value):
    def rewrite(g, x, c, op):
        if np.all(c.data == value):  # _same: only when the constant does not broadcast x to a larger shape
            return _same(x, op.outputs[0], g)
        return None
    return rewrite


def _noop_attr(check):
    def rewrite(g, x, op):
        return _same(x, op.outputs[0], g) if check(op.attrs, x) else None
    return rewrite


def _zero_pad(g, x, op):
    """(paddings in the attributes only: a run-time paddings tensor may pad)"""
    if len([i for i in op.inputs if i]) == 1 and not any(op.attrs["paddings"]):
        return _same(x, op.outputs[0], g)
    return None


RULES = [
    Rule(Op(("assign", "dropout"), Var("x"), name="op"), _drop, "identity"),
    Rule(Op(("reshape2", "squeeze2", "unsqueeze2", "flatten", "expand_v2"), Var("x"), name="op"), _drop,
         "no-op reshape"),
    Rule(Op("scale", Var("x"), name="op"),
         _noop_attr(lambda a, x: a["scale"] == 1.0 and a["bias"] == 0.0), "scale by 1"),
    Rule(Op("transpose2", Var("x"), name="op"),
         _noop_attr(lambda a, x: tuple(a["axis"]) == tuple(range(len(a["axis"])))), "identity transpose"),
    Rule(Op("cast", Var("x"), name="op"), _noop_attr(lambda a, x: a["out_dtype"] == x.dtype), "no-op cast"),
    Rule(Op("pad", Var("x"), name="op"), _zero_pad, "zero pad"),
    Rule(Op(("elementwise_add", "elementwise_sub"), Var("x"), Const("c"), name="op"), _neutral(0), "add 0"),
    Rule(Op(("elementwise_mul", "elementwise_div"), Var("x"), Const("c"), name="op"), _neutral(1), "mul by 1"),
]


def eliminate_identities(graph: Graph, ctx: PassContext) -> None:
    """Drop identity-like ops (the output keeps its name when it is a graph output)."""
    run_rules(graph, ctx, RULES)
