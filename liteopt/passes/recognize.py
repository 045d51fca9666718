"""Recognize ops that exporters spell out, and replace them by the one op (exact algebra only):

    x * hard_sigmoid(x; s, o)               => hard_swish(threshold=1/s, scale=1/s, offset=o/s)
    x * relu6(x + o) / k,  x * (relu6(x + o) / k),  x * relu6(x + o) * (1/k)   => hard_swish(t, k, o)
    x * sigmoid(x)                          => swish(beta=1)
    reshape(x, [n, g, c/g, h, w]) -> transpose(0, 2, 1, 3, 4) -> reshape(x, [n, c, h, w])  => shuffle_channel(g)
    mean over the last axis, x - mean, (.)^2, mean, + eps, sqrt, divide, * gamma, + beta   => layer_norm
    x * (1 + erf(x / sqrt(2))) * 0.5,  x * 0.5 * (1 + erf(x / sqrt(2)))   => gelu (x * (1/sqrt(2)) too)
"""
from __future__ import annotations

import math

import numpy as np

from ..ir import Graph
from .context import PassContext
from .pattern import Const, Miss, Op, Rule, Var, run_rules


def _scalar(c) -> float | None:
    return float(c.data.reshape(-1)[0]) if c is not None and c.data.size == 1 else None


def _hsig(g, x, hs, mul):
    s, o = hs.attrs["slope"], hs.attrs["offset"]
    if s <= 0:
        return Miss(f"hard_sigmoid slope {s} is not positive")
    return g.emit("hard_swish", [x.name], name=mul.name, threshold=1 / s, scale=1 / s, offset=o / s)


def _relu6_bound(act) -> float | None:
    if act.op == "relu6":
        return act.attrs["threshold"]
    if len([i for i in act.inputs if i]) == 1 and act.attrs["min"] == 0 and math.isfinite(act.attrs["max"]):
        return act.attrs["max"]
    return None


def _hswish(divide: bool):
    def rewrite(g, x, o, k, act, root, **_):
        t, off, kk = _relu6_bound(act), _scalar(o), _scalar(k)
        if t is None or off is None or not kk:
            return Miss("not a relu6(x + offset) scaled by a scalar constant")
        return g.emit("hard_swish", [x.name], name=root.name, threshold=t, scale=kk if divide else 1 / kk, offset=off)
    return rewrite


def _relu6_of_x_plus(name="act"):
    return Op(("relu6", "clip"), Op("elementwise_add", Var("x"), Const("o"), commutative=True, name="add"), name=name)


def _shuffle(g, x, r1, t, r2):
    s = x.shape
    mid = g.graph.tensors[r1.outputs[0]].shape
    out = g.graph.tensors[r2.outputs[0]].shape
    # (the batch may be a symbol: the same one throughout)
    if not (s is not None and len(s) == 4 and all(isinstance(d, int) for d in s[1:]) and mid is not None
            and len(mid) == 5 and out == s and tuple(t.attrs["axis"]) == (0, 2, 1, 3, 4) and mid[0] == s[0]
            and isinstance(mid[1], int) and isinstance(mid[2], int) and mid[1] * mid[2] == s[1]
            and tuple(mid[3:]) == tuple(s[2:])):
        return None
    return g.emit("shuffle_channel", [x.name], name=r2.name, group=mid[1])


def _last_axis(node, x) -> bool:
    rank = len(x.shape) if x.shape is not None else None
    dims = tuple(node.attrs["dim"])
    return rank is not None and node.attrs["keep_dim"] and not node.attrs["reduce_all"] and \
        len(dims) == 1 and dims[0] % rank == rank - 1


def _layer_norm(g, x, two, eps, gamma, beta, mean, var, out, **_):
    if not (_last_axis(mean, x) and _last_axis(var, x)) or _scalar(two) != 2.0 or _scalar(eps) is None:
        return Miss("not a normalization over the last axis")
    c = x.shape[-1]
    if not isinstance(c, int) or gamma.data.size != c or beta.data.size != c:
        return Miss("gamma/beta do not match the last dimension")
    return g.emit("layer_norm", [x.name, g.const(gamma.data.reshape(c).astype(np.float32), "scale"),
                                 g.const(beta.data.reshape(c).astype(np.float32), "bias")],
                  name=out.name, epsilon=_scalar(eps), begin_norm_axis=len(x.shape) - 1)


def _ln_pattern():
    mean = Op("reduce_mean", Var("x"), name="mean")
    d = Op("elementwise_sub", Var("x"), mean, name="d")
    var = Op("reduce_mean", Op("elementwise_pow", d, Const("two"), name="sq"), name="var")
    sd = Op("sqrt", Op("elementwise_add", var, Const("eps"), commutative=True, name="ve"), name="sd")
    norm = Op("elementwise_div", d, sd, name="norm")
    scaled = Op("elementwise_mul", norm, Const("gamma"), commutative=True, name="scaled")
    return Op("elementwise_add", scaled, Const("beta"), commutative=True, name="out")


def _gelu(g, x, arg, c, one, half, root, **_):
    """(the constants as exporters store them: float32 roundings of sqrt(2) or 1/sqrt(2), 1 and 0.5)"""
    want = math.sqrt(2) if arg.op == "elementwise_div" else 1 / math.sqrt(2)
    cv, ov, hv = _scalar(c), _scalar(one), _scalar(half)
    if cv is None or abs(cv - want) > 1e-6 or ov != 1.0 or hv != 0.5:
        return Miss("not x * (1 + erf(x / sqrt(2))) / 2")
    return g.emit("gelu", [x.name], name=root.name, approximate=False)


def _erf_term():
    arg = Op(("elementwise_div", "elementwise_mul"), Var("x"), Const("c"), name="arg")
    return Op("elementwise_add", Op("erf", arg, name="erf"), Const("one"), commutative=True, name="plus")


RULES = [
    Rule(Op("elementwise_mul", Var("x"), Op("hard_sigmoid", Var("x"), name="hs"), commutative=True, name="mul"),
         _hsig, "x * hard_sigmoid(x) -> hard_swish"),
    Rule(Op("elementwise_div", Op("elementwise_mul", Var("x"), _relu6_of_x_plus(), commutative=True, name="m"),
            Const("k"), name="root"), _hswish(divide=True), "x * relu6(x + 3) / 6 -> hard_swish"),
    Rule(Op("elementwise_mul", Op("elementwise_mul", Var("x"), _relu6_of_x_plus(), commutative=True, name="m"),
            Const("k"), commutative=True, name="root"), _hswish(divide=False), "x * relu6(x + 3) * (1/6) -> hard_swish"),
    Rule(Op("elementwise_mul", Var("x"), Op("elementwise_div", _relu6_of_x_plus(), Const("k"), name="m"),
            commutative=True, name="root"), _hswish(divide=True), "x * (relu6(x + 3) / 6) -> hard_swish"),
    Rule(Op("elementwise_mul", Var("x"), Op("sigmoid", Var("x"), name="s"), commutative=True, name="mul"),
         lambda g, x, s, mul: g.emit("swish", [x.name], name=mul.name, beta=1.0), "x * sigmoid(x) -> swish"),
    Rule(Op("reshape2", Op("transpose2", Op("reshape2", Var("x"), name="r1"), name="t"), name="r2"), _shuffle,
         "reshape-transpose-reshape -> shuffle_channel"),
    Rule(_ln_pattern(), _layer_norm, "spelled-out layer norm -> layer_norm"),
    Rule(Op("elementwise_mul", Op("elementwise_mul", Var("x"), _erf_term(), commutative=True, name="m"),
            Const("half"), commutative=True, name="root"), _gelu, "x * (1 + erf(x / sqrt 2)) * 0.5 -> gelu"),
    Rule(Op("elementwise_mul", Op("elementwise_mul", Var("x"), Const("half"), commutative=True, name="m"),
            _erf_term(), commutative=True, name="root"), _gelu, "x * 0.5 * (1 + erf(x / sqrt 2)) -> gelu"),
]


def recognize_patterns(graph: Graph, ctx: PassContext) -> None:
    run_rules(graph, ctx, RULES)
