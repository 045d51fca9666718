"""The optimization pipeline. `PIPELINE` is the one place where passes are ordered.

A pass is a function `(graph, ctx) -> None` that rewrites the graph in place and records what it did
in `ctx`. Passes import only `ir`; what they need from elsewhere (the kernel table) comes in `ctx`.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

from ..ir import Graph, infer_shapes
from .context import PassContext, PassRecord
from .pick_kernels import pick_kernels


def infer(graph: Graph, ctx: PassContext) -> None:
    """Shape inference over the whole graph (symbolic where input shapes are not pinned)."""
    infer_shapes(graph)


PIPELINE: list[Callable[[Graph, PassContext], None]] = [
    infer,
    pick_kernels,
]


def run_pipeline(graph: Graph, ctx: PassContext, pipeline=None) -> Graph:
    for p in pipeline or PIPELINE:
        rec = ctx.begin(p.__name__)
        t0 = time.perf_counter()
        p(graph, ctx)
        rec.ms = (time.perf_counter() - t0) * 1e3
        if ctx.verify:
            graph.verify()
    return graph


__all__ = ["PIPELINE", "PassContext", "PassRecord", "run_pipeline"]
