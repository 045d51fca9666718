"""Fully connected layers, as Paddle Lite's fc fusion:

    matmul_v2(x, W)  with W a 2-D constant        => fc(x, W)        (in_num_col_dims = rank(x) - 1)
    fc(x, W) + b     with b a constant of N values => fc(x, W, b)
    fc(flatten(x, axis=1)) / fc(reshape2(x, [n, -1]))  => fc(x) with in_num_col_dims = 1
"""
from __future__ import annotations

import math

import numpy as np

from ..ir import Graph
from .context import PassContext
from .pattern import Const, Miss, Op, Rule, Var, run_rules


def _matmul(g, x, w, mm):
    if mm.attrs["trans_x"]:
        return Miss("matmul transposes its input")
    if x.shape is None or len(x.shape) < 2 or w.data.ndim != 2:
        return Miss(f"fc needs an input of rank >= 2 and a 2-D weight (got {x.shape} and {w.shape})")
    wt = np.asarray(w.data.T, order="C") if mm.attrs["trans_y"] else w.data
    wname = g.const(wt, "weight") if mm.attrs["trans_y"] else w.name
    return g.emit("fc", [x.name, wname], name=mm.name, in_num_col_dims=len(x.shape) - 1)


def _bias(g, x, w, b, fc, add):
    if len(fc.inputs) > 2 and fc.inputs[2] or fc.attrs["act_type"] or add.attrs["act_type"]:
        return Miss("the fc already has a bias or an activation")
    n = w.shape[1]
    if b.data.size != n or (b.data.ndim > 1 and b.data.shape[-1] != n):
        return Miss(f"the added constant of shape {b.shape} is not a bias of {n} values")
    return g.emit("fc", [x.name, w.name, g.const(np.asarray(b.data.reshape(n), order="C"), "bias")], name=fc.name,
                  **fc.attrs)


def _flatten(g, x, fc, flat):
    if fc.attrs["in_num_col_dims"] != 1 or x.shape is None:
        return None
    if flat.op == "flatten" and flat.attrs["axis"] != 1:
        return Miss(f"flatten axis {flat.attrs['axis']} != 1")
    if flat.op == "reshape2":
        out = g.graph.tensors[flat.outputs[0]].shape
        if not (x.is_static and out is not None and len(out) == 2 and out[0] == x.shape[0]
                and out[1] == math.prod(x.shape[1:])):
            return Miss("the reshape is not a flatten of all but the first dim")
    return g.emit("fc", [x.name, *fc.inputs[1:]], name=fc.name, **fc.attrs)


RULES = [
    Rule(Op("matmul_v2", Var("x"), Const("w"), name="mm"), _matmul, "matmul -> fc"),
    Rule(Op("elementwise_add", Op("fc", Var("x"), Const("w"), name="fc"), Const("b"), name="add", commutative=True),
         _bias, "fc + bias"),
    Rule(Op("fc", Op(("flatten", "reshape2"), Var("x"), name="flat"), name="fc"), _flatten, "flatten + fc"),
]


def fuse_fc(graph: Graph, ctx: PassContext) -> None:
    run_rules(graph, ctx, RULES)
