"""Which intermediate tensors the runtime keeps channel-blocked (NCHW16c, `kernels/_blocked.py`).

Decided once per loaded model. A tensor is blocked when every kernel that writes or reads it can take it so
(the kernel's `blocked` declaration, `kernels.Blocked`), it is an intermediate (not a graph input, output or
constant) of float32 (N, C, H, W) with C fixed and a multiple of 16 (the blocked form then takes the same
bytes, so the memory plan holds as it is; N, H and W may be known only at run time), and the inputs a kernel
ties to its outputs' layout (a depthwise conv's input, a conv's residual, the input of a split along the
channels) are blocked together with its outputs (all of them or none). A pointwise conv reads and writes either
layout, a k x k conv writes a blocked output from either layout, so islands of blocked tensors need no reorder op
at their edges. Outside the runtime nothing changes:
the file, the graph and every output are NCHW.
"""
from __future__ import annotations

import math

from ..ir import Graph


def declared(graph: Graph, step):
    """The step's blocked declaration (`kernels.Blocked`) for its node's shapes, or None."""
    d = getattr(step.fn, "blocked", None)
    return d.for_node(graph, step.node) if d is not None and d.for_node is not None else d


def blocked_tensors(graph: Graph, steps, decl: dict | None = None) -> set[str]:
    """The tensors to keep blocked, given the steps (node + prepared fn) in execution order (and their
    declarations by id, `declared`, when worked out already)."""
    decl = decl if decl is not None else {id(s): declared(graph, s) for s in steps}
    producers, uses = {}, {}
    for s in steps:
        for name in s.outputs:
            producers.setdefault(name, []).append(s)
        for pos, name in enumerate(s.inputs):
            if name:
                uses.setdefault(name, []).append((s, pos))

    def capable(s) -> bool:
        d = decl[id(s)]
        return d is not None and all(not name or pos in d.free + d.tied + d.follows
                                     or graph.tensors[name].data is not None for pos, name in enumerate(s.inputs))

    def eligible(name: str) -> bool:
        t = graph.tensors[name]
        shape = t.shape
        if (t.data is not None or name in graph.inputs or name in graph.outputs or t.dtype.value != "float32"
                or shape is None or len(shape) != 4 or not isinstance(shape[1], int)
                or shape[1] % 16):
            return False
        made = producers.get(name, [])
        if len(made) != 1 or not capable(made[0]):
            return False
        return all(capable(s) and pos in decl[id(s)].free + decl[id(s)].tied + decl[id(s)].follows
                   for s, pos in uses.get(name, []))

    blocked = {name for name in graph.tensors if eligible(name)}
    changed = True
    while changed:  # a tied input and its output: both blocked or neither; a following input: only with it
        changed = False
        for s in steps:
            d = decl[id(s)]
            if d is None:
                continue
            group = [o for o in s.outputs if o] + [s.inputs[p] for p in d.tied if p < len(s.inputs) and s.inputs[p]]
            inside = [name in blocked for name in group]
            if any(inside) and not all(inside):
                blocked.difference_update(group)
                changed = True
            if s.outputs[0] not in blocked:
                following = {s.inputs[p] for p in d.follows if p < len(s.inputs) and s.inputs[p]} & blocked
                if following:
                    blocked.difference_update(following)
                    changed = True
    return blocked


def apply(graph: Graph, steps) -> set[str]:
    """Switch the steps that touch blocked tensors to their blocked variants; returns the blocked tensors."""
    decl = {id(s): declared(graph, s) for s in steps}
    blocked = blocked_tensors(graph, steps, decl)
    for s in steps:
        d = decl[id(s)]
        if d is None:
            continue
        ins = {p for p, name in enumerate(s.inputs) if name in blocked}
        out = s.outputs[0] in blocked
        if ins or out:
            s.fn = d.variant(ins, out)
    return blocked


def numba_share(graph: Graph, blocked: set[str]) -> float:
    """The share of the model's convolution multiplications done by numba kernels, which split their work over
    numba's pool when it has threads (0 when the model has no convolutions with known shapes): the convs writing
    blocked tensors, depthwise and direct convs, and, where the AVX-512 tiles run, the pointwise convs the tiled
    GEMMs take (`_tiled.pays`) and the NCHW Winograd convs whose output channels are not whole blocks (the
    blocked kernel with a padded filter: the PP-OCRv4 detector's 24-channel F(4,3) convs). The rest go through
    BLAS: im2col + GEMM, other Winograd convs in NCHW (counted with their fewer multiplications), wide
    pointwise."""
    from .kernels import _blocked_winograd, _tiled
    total = done = 0
    for n in graph.nodes:
        if n.op not in ("conv2d", "depthwise_conv2d") or len(n.inputs) < 2:
            continue
        w, y = graph.tensors[n.inputs[1]].shape, graph.tensors[n.outputs[0]].shape
        if w is None or y is None or not all(isinstance(d, int) for d in (*w, *y[1:])):
            continue
        macs = math.prod(w) * math.prod(y[2:])
        variant = (n.kernel or "").partition("/")[2]
        if variant.startswith("winograd_f"):  # F(m,3): (m+2)^2 multiplications for m*m outputs' 9 taps
            m = int(variant[len("winograd_f"):-1])
            macs = macs * (m + 2) ** 2 // (9 * m * m)
        total += macs
        pointwise = (tuple(w[2:]) == (1, 1) and tuple(n.attrs.get("strides", (1, 1))) == (1, 1)
                     and n.attrs.get("groups", 1) == 1)
        padded = (variant in ("winograd_f23", "winograd_f43") and _blocked_winograd.AVAILABLE and w[0] % 16
                  and not (len(n.inputs) > 3 and n.inputs[3]))  # (`conv_fast._padded_winograd`)
        if (n.outputs[0] in blocked or n.op == "depthwise_conv2d" or variant == "direct" or padded
                or (pointwise and _tiled.AVAILABLE and _tiled.pays(w[1], y[2] * y[3]))):
            done += macs
    return done / total if total else 0.0
