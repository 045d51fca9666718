"""An explicit zero `pad` of the spatial dims feeding a conv or an average pool => that op with larger,
possibly asymmetric, explicit paddings: one op instead of two (TF's SAME padding and explicit Pad ops end
this way). The pool then counts the padded zeros (exclusive=false), as it did when they were data."""
from __future__ import annotations

from ..ir import Graph
from .context import PassContext
from .pattern import Miss, Op, Rule, Var, run_rules


def spatial_pads(pad) -> tuple[int, int, int, int] | str:
    """(top, bottom, left, right) of a 4-D zero pad on H and W only, or the reason it is not one."""
    if len([i for i in pad.inputs if i]) > 1:
        return "the paddings are a run-time tensor"
    a = pad.attrs
    p = tuple(a["paddings"])
    if a["mode"] != "constant":
        return f"pad mode {a['mode']} is not constant"
    if len(p) != 8:
        return f"the pad is not 4-D (paddings {p})"
    if any(p[:4]) or min(p) < 0:
        return f"the pad touches the batch/channel dims or crops (paddings {p})"
    return (p[4], p[5], p[6], p[7])


def _merge(g, x, pad, op):
    s = spatial_pads(pad)
    if isinstance(s, str):
        return Miss(s)
    if pad.attrs["pad_value"] != 0:
        return Miss(f"pad value {pad.attrs['pad_value']} is not 0")
    if op.op == "pool2d":
        if op.attrs["global_pooling"]:
            return Miss("global pooling")
        if op.attrs["pooling_type"] != "avg":
            return Miss("a max pool would take the padded zeros for data: only average pools absorb a zero pad")
        if op.attrs["exclusive"] and any(op.attrs["paddings"]):
            return Miss("the pool has its own padding, which it does not count (exclusive)")
    paddings = tuple(a + b for a, b in zip(op.attrs["paddings"], s))
    extra = {"exclusive": False} if op.op == "pool2d" else {}
    return g.emit(op.op, [x.name, *op.inputs[1:]], name=op.name, **dict(op.attrs, paddings=paddings, **extra))


RULES = [Rule(Op(("conv2d", "depthwise_conv2d", "pool2d"), Op("pad", Var("x"), name="pad"), name="op"), _merge,
              "pad + conv/pool")]


def fuse_pad(graph: Graph, ctx: PassContext) -> None:
    run_rules(graph, ctx, RULES)
