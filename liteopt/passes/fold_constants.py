"""Constant folding: a node whose inputs are all known is replaced by its value, computed with the op's
own numpy reference (never a second implementation). Shape arithmetic folds too once input shapes are
pinned: `shape` of a static tensor is a constant. A size guard keeps folding from bloating the file
(Tile/Expand of a constant stays an op when its result is much larger than its inputs)."""
from __future__ import annotations

import numpy as np

from ..ir import OPS, DType, Graph, Tensor
from .context import PassContext

MAX_GROWTH = 4          # a folded value may be this many times the bytes of its constant inputs...
MIN_BYTES = 64 * 1024   # ...or up to this size anyway


def _value(graph: Graph, node, i: int, name: str):
    t = graph.tensors[name]
    if t.data is not None:
        return t.data
    if i in OPS[node.op].shape_only_inputs and t.is_static:
        return np.broadcast_to(np.zeros((), t.dtype.np), t.shape)
    return None


def fold_constants(graph: Graph, ctx: PassContext) -> None:
    kept = []
    for node in graph.nodes:
        if node.op in ("dropout",):
            kept.append(node)
            continue
        args, in_bytes = [], 0
        for i, name in enumerate(node.inputs):
            if not name:
                args.append(None)
                continue
            v = _value(graph, node, i, name)
            if v is None:
                break
            args.append(v)
            in_bytes += graph.tensors[name].data.nbytes if graph.tensors[name].data is not None else 0
        else:
            if any(o in graph.outputs for o in node.outputs):
                kept.append(node)
                continue
            try:
                outs = OPS[node.op].run(*args, **node.attrs)
            except Exception as e:  # the runtime would fail the same way: leave it to run and report there
                ctx.record.miss(f"{node.name} ({node.op}): not folded: {type(e).__name__}: {e}")
                kept.append(node)
                continue
            size = sum(np.asarray(o).nbytes for o in outs)
            if size > max(MAX_GROWTH * in_bytes, MIN_BYTES):
                ctx.record.miss(f"{node.name} ({node.op}): not folded: the result ({size} bytes) would be "
                                f"{size / max(in_bytes, 1):.0f}x its constant inputs")
                kept.append(node)
                continue
            for name, v in zip(node.outputs, outs):
                arr = np.asarray(v, order="C")
                t = graph.tensors[name]
                graph.tensors[name] = Tensor(name, t.dtype, tuple(arr.shape), arr.astype(t.dtype.np, copy=False))
            ctx.record.hit()
            continue
        kept.append(node)
    graph.nodes = kept
    graph.prune()
