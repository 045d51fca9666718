"""An op with a fused-activation epilogue (conv2d, depthwise_conv2d, conv2d_transpose, fc, elementwise_*, batch_norm)
followed by an activation => the op with `act_type`/`act_alpha` set (as Paddle Lite's conv+act fusion).

Fusable: relu, relu6 (and clip(0, t), which is relu6 with threshold t), leaky_relu, hard_swish, sigmoid,
swish, hard_sigmoid, tanh — each only with the attribute values the epilogue can express (its one parameter
in `act_alpha`, e.g. hard_sigmoid's slope, 1/6 from torch and 0.2 from Paddle; the others at their defaults).
"""
from __future__ import annotations

import math

from ..ir import OPS, Graph
from ..ir.ops.activation import ACT_PARAM
from .context import PassContext
from .pattern import Miss, Op, Rule, Var, run_rules

PRODUCERS = ("conv2d", "depthwise_conv2d", "conv2d_transpose", "fc", "elementwise_add", "elementwise_sub",
             "elementwise_mul", "elementwise_div", "elementwise_max", "elementwise_min", "batch_norm")
ACTS = ("relu", "relu6", "leaky_relu", "hard_swish", "sigmoid", "swish", "hard_sigmoid", "tanh")


def as_epilogue(act) -> tuple[str, float] | str:
    """(act_type, act_alpha) for an activation node, or the reason it cannot be an epilogue."""
    if act.op == "clip":
        if len([i for i in act.inputs if i]) > 1:
            return "clip bounds are run-time tensors"
        lo, hi = act.attrs["min"], act.attrs["max"]
        if lo == 0 and math.isfinite(hi) and hi > 0:
            return ("relu6", hi)
        if lo == 0 and math.isinf(hi):
            return ("relu", 0.0)
        return f"clip({lo}, {hi}) is not a relu/relu6"
    d = OPS[act.op]
    param = ACT_PARAM.get(act.op)
    for k, a in d.attrs.items():
        if k != param and act.attrs[k] != a.default:
            return f"{act.op} with {k}={act.attrs[k]} (the epilogue supports the default {a.default})"
    if act.op == "hard_sigmoid" and act.attrs["slope"] == 0:  # (act_alpha 0 is an older file's default slope)
        return "hard_sigmoid with slope 0 (a constant)"
    return (act.op, float(act.attrs[param]) if param else 0.0)


def _fuse(g, x, op, act):
    if op.attrs["act_type"]:
        return Miss(f"{op.name} already has the activation {op.attrs['act_type']}")
    e = as_epilogue(act)
    if isinstance(e, str):
        return Miss(e)
    attrs = dict(op.attrs, act_type=e[0], act_alpha=e[1])
    return g.emit(op.op, list(op.inputs), name=op.name, **attrs)


RULES = [Rule(Op((*ACTS, "clip"), Op(PRODUCERS, name="op"), name="act"),
              lambda g, op, act: _fuse(g, None, op, act), "op + activation")]


def fuse_activation(graph: Graph, ctx: PassContext) -> None:
    run_rules(graph, ctx, RULES)
