"""Shape arithmetic on a dynamic batch. Exporters compute a reshape's target from `shape` of a tensor whose batch
is symbolic (Shape -> Gather -> Unsqueeze -> Concat, with Div for ShuffleNetV2's channel shuffle), which constant
folding cannot fold: after such a reshape even the channels are unknown (no depthwise or blocked kernels, no
shuffle_channel). Here every small integer tensor computed from shapes gets a partial value, per element an
int, a dimension's symbol or unknown; a reshape whose target is known but for at most one element becomes a
static reshape (a symbol equal to the input's dim at the same place: 0, which copies it; the one unknown: -1),
and the shape subgraph nobody reads any more is dropped.
"""
from __future__ import annotations

import numpy as np

from ..ir import DType, Graph, infer_shapes
from .context import PassContext

MAX_LEN = 16  # longer integer tensors are data, not shapes

# a partial value: (rank 0 or 1, elements: int | str (a dimension's symbol) | None (unknown))
Partial = tuple[int, tuple]


def _const(t) -> Partial | None:
    d = t.data
    if d is None or d.ndim > 1 or d.size > MAX_LEN or not np.issubdtype(d.dtype, np.integer):
        return None
    return d.ndim, tuple(int(v) for v in d.reshape(-1))


def _arith(op: str, a, b):
    if isinstance(a, int) and isinstance(b, int):
        if op == "elementwise_add":
            return a + b
        if op == "elementwise_sub":
            return a - b
        if op == "elementwise_mul":
            return a * b
        return int(a / b) if b else None  # ONNX Div of integers truncates
    neutral = 0 if op in ("elementwise_add", "elementwise_sub") else 1
    return a if b == neutral and a is not None else None


def _partial(node, tensors, known: dict[str, Partial]) -> Partial | None:
    """The partial value of node's (first) output, from its inputs' partial values; None if not a shape value."""
    ins = [known.get(i) if i else None for i in node.inputs]
    op, a = node.op, node.attrs
    if op == "shape":
        s = tensors[node.inputs[0]].shape
        return None if s is None else (1, tuple(s[a["start"]:a["end"]]))
    if op == "cast" and ins[0] is not None and np.issubdtype(DType.of(a["out_dtype"]).np, np.integer):
        return ins[0]
    if op == "gather" and ins[0] is not None and ins[0][0] == 1 and a["axis"] == 0 and ins[1] is not None \
            and all(isinstance(i, int) and -len(ins[0][1]) <= i < len(ins[0][1]) for i in ins[1][1]):
        return ins[1][0], tuple(ins[0][1][i] for i in ins[1][1])
    if op == "unsqueeze2" and ins[0] is not None and ins[0][0] == 0 and tuple(a["axes"]) in ((0,), (-1,)):
        return 1, ins[0][1]
    if op == "squeeze2" and ins[0] is not None and ins[0][0] == 1 and len(ins[0][1]) == 1:
        return 0, ins[0][1]
    if op == "concat" and a["axis"] in (0, -1) and ins and all(p is not None and p[0] == 1 for p in ins):
        return 1, tuple(e for p in ins for e in p[1])
    if op in ("elementwise_add", "elementwise_sub", "elementwise_mul", "elementwise_div") and not a["act_type"] \
            and len(ins) == 2 and ins[0] is not None and ins[1] is not None:
        (ra, xa), (rb, xb) = ins
        if len(xa) != len(xb) and 1 not in (len(xa), len(xb)):
            return None
        n = max(len(xa), len(xb))
        xa, xb = (xa * n if len(xa) == 1 else xa), (xb * n if len(xb) == 1 else xb)
        return max(ra, rb), tuple(_arith(op, u, v) for u, v in zip(xa, xb))
    if op == "strided_slice" and ins[0] is not None and ins[0][0] == 1 and not any(node.inputs[1:]) \
            and tuple(a["axes"]) == (0,) and tuple(a["strides"]) in ((), (1,)):
        return 1, ins[0][1][slice(a["starts"][0], a["ends"][0])]
    return None


def _static_target(target: tuple, x_shape) -> tuple[int, ...] | None:
    """The reshape's target as ints (0: copy the input's dim, -1: the one inferred), or None."""
    out, unknown = [], 0
    for k, e in enumerate(target):
        if isinstance(e, int):
            unknown += e == -1
            out.append(e)
        elif isinstance(e, str) and x_shape is not None and k < len(x_shape) and x_shape[k] == e:
            out.append(0)
        else:
            unknown += 1
            out.append(-1)
    return tuple(out) if unknown <= 1 else None


def _slice_attrs(node, known: dict[str, Partial]) -> dict | None:
    """strided_slice's tensor bounds as attributes when all of them are known ints, else None."""
    attrs = dict(node.attrs)
    for pos, key in ((1, "starts"), (2, "ends"), (3, "strides")):
        name = node.inputs[pos] if pos < len(node.inputs) else ""
        if name:
            p = known.get(name)
            if p is None or p[0] != 1 or not all(isinstance(e, int) for e in p[1]):
                return None
            attrs[key] = p[1]
    return attrs


def _sweep(graph: Graph) -> tuple[int, list[str]]:
    """One pass in execution order, each node visited just before shape inference reaches it (a reshape made
    static gives every shape after it its ints at once): (reshapes and slices made static, near-misses)."""
    known: dict[str, Partial] = {}
    for name, t in graph.tensors.items():
        p = _const(t)
        if p is not None:
            known[name] = p
    done, misses = 0, []

    def visit(node):
        nonlocal done
        if node.op == "reshape2" and len(node.inputs) > 1 and node.inputs[1] in known:
            rank, target = known[node.inputs[1]]
            static = _static_target(target, graph.tensors[node.inputs[0]].shape) if rank == 1 else None
            if static is None:
                misses.append(f"{node.name} (reshape2): target {target} has more than one unknown dim")
            else:
                node.inputs, node.attrs = node.inputs[:1], dict(node.attrs, shape=static)
                done += 1
        elif node.op == "strided_slice" and any(node.inputs[1:]):
            attrs = _slice_attrs(node, known)
            if attrs is not None:
                node.inputs, node.attrs = node.inputs[:1], attrs
                done += 1
        p = _partial(node, graph.tensors, known)  # (from the inputs' shapes and values alone)
        if p is not None and len(p[1]) <= MAX_LEN:
            known[node.outputs[0]] = p

    infer_shapes(graph, before=visit)
    return done, misses


def fold_shapes(graph: Graph, ctx: PassContext) -> None:
    """Sweeps until nothing changes: a reshape made static gives the next ones' shapes their ints."""
    misses: list[str] = []
    for _ in range(len(graph.nodes)):
        done, misses = _sweep(graph)
        if not done:
            break
        ctx.record.hit(done)
        graph.prune()
    for m in misses:
        ctx.record.miss(m)
