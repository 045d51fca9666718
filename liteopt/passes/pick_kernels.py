"""Record on every node the kernel the runtime will use: for the first valid target that has one, the
best variant for the node's shapes (as Paddle Lite records its kernel choice in the .nb)."""
from __future__ import annotations

from ..ir import Graph
from ..ir.errors import UnsupportedOpsError
from .context import PassContext


def pick_kernels(graph: Graph, ctx: PassContext) -> None:
    missing: dict[str, list[str]] = {}
    for node in graph.nodes:
        for target in ctx.targets:
            variant = ctx.choose_kernel(node, graph.tensors, target)
            if variant:
                node.kernel = f"{target}/{variant}"
                ctx.record.hit()
                break
        else:
            missing.setdefault(node.op, []).append(node.name)
    if missing:
        raise UnsupportedOpsError(f"no kernel on {','.join(ctx.targets)} for: {', '.join(missing)}", missing)
