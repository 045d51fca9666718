"""A conv2d followed by the add of a same-shape tensor (a residual connection) => conv2d with that tensor as
its `ResidualData` input (Paddle's conv + elementwise_add fusion, `fuse_residual_connection`):

    act(conv(x, w) + b + r)   is computed in the conv's epilogue, as the bias and activation already are,
so the add is no longer a separate pass over memory. The add's fused activation moves to the conv; the conv
must not have one of its own (it would apply before the add). The residual must be a run-time tensor of
exactly the conv output's shape and dtype (no broadcasting).
"""
from __future__ import annotations

from ..ir import Graph
from .context import PassContext
from .pattern import Const, Miss, Op, Rule, Var, run_rules


def _fuse(g, x, w, b, r, conv, add):
    if len(conv.inputs) > 3 and conv.inputs[3]:
        return Miss(f"{conv.name} already adds a residual")
    if conv.attrs["act_type"]:
        return Miss(f"{conv.name} applies {conv.attrs['act_type']} before the add")
    y = g.graph.tensors[conv.outputs[0]]
    if r.data is not None:
        return Miss("the added tensor is a constant")
    if r.shape is None or y.shape is None or tuple(r.shape) != tuple(y.shape) or r.dtype != y.dtype:
        return Miss(f"the added tensor ({r.dtype} {r.shape}) is not of the conv output's type ({y.dtype} {y.shape})")
    attrs = dict(conv.attrs, act_type=add.attrs["act_type"], act_alpha=add.attrs["act_alpha"])
    return g.emit("conv2d", [x.name, w.name, b.name if b is not None else "", r.name], name=conv.name, **attrs)


def _conv():
    return Op("conv2d", Var("x"), Const("w"), Const("b", optional=True), name="conv")


# one rule per operand order rather than `commutative=True`: when the first operand is also a conv's output
# (the previous block's, used elsewhere too) the commutative match stops at that near-miss
RULES = [Rule(Op("elementwise_add", _conv(), Var("r"), name="add"), _fuse, "conv + residual add"),
         Rule(Op("elementwise_add", Var("r"), _conv(), name="add"), _fuse, "residual + conv add")]


def fuse_residual(graph: Graph, ctx: PassContext) -> None:
    run_rules(graph, ctx, RULES)
