"""Plan where every intermediate tensor lives in one arena (see ir/memory.py); the plan goes into the .nb.

Runs last but kernel picking, on the final graph. With dynamic shapes there is nothing to plan here: the
runtime plans once per input shape.
"""
from __future__ import annotations

from ..ir import Graph
from ..ir.memory import plan
from .context import PassContext


def plan_memory(graph: Graph, ctx: PassContext) -> None:
    graph.memory_plan = plan(graph)
    if graph.memory_plan is None:
        ctx.record.miss("shapes are dynamic: the runtime plans memory per input shape (pin them with --input_shape)")
    else:
        ctx.record.hit(len(graph.memory_plan.slots))
