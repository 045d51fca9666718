"""Cancel data-movement chains:

    transpose2(transpose2(x, p), q)  => transpose2(x, p[q])   (nothing at all when p[q] is the identity)
    reshape-like(reshape-like(x))    => reshape2(x, final shape)   when the final shape is static
"""
from __future__ import annotations

from ..ir import Graph
from .context import PassContext
from .pattern import Op, Rule, Var, run_rules

RESHAPES = ("reshape2", "squeeze2", "unsqueeze2", "flatten")


def _transposes(g, x, inner, outer):
    p, q = inner.attrs["axis"], outer.attrs["axis"]
    perm = tuple(p[i] for i in q)
    if perm == tuple(range(len(perm))):
        return x.name
    return g.emit("transpose2", [x.name], name=outer.name, axis=perm)


def _reshapes(g, x, inner, outer):
    out = g.graph.tensors[outer.outputs[0]].shape
    if out is None or not all(isinstance(d, int) for d in out):
        return None
    if x.shape == out:
        return x.name
    return g.emit("reshape2", [x.name], name=outer.name, shape=out)


RULES = [
    Rule(Op("transpose2", Op("transpose2", Var("x"), name="inner"), name="outer"), _transposes, "transpose pair"),
    Rule(Op(RESHAPES, Op(RESHAPES, Var("x"), name="inner"), name="outer"), _reshapes, "reshape chain"),
]


def cancel_chains(graph: Graph, ctx: PassContext) -> None:
    run_rules(graph, ctx, RULES)
