"""Record on every node the kernel the runtime will use: the first valid target that has one."""
from __future__ import annotations

from ..ir import Graph
from ..ir.errors import UnsupportedOpsError
from .context import PassContext


def pick_kernels(graph: Graph, ctx: PassContext) -> None:
    missing: dict[str, list[str]] = {}
    for node in graph.nodes:
        for target in ctx.targets:
            variants = ctx.kernel_variants(node.op, target)
            if variants:
                node.kernel = f"{target}/{'default' if 'default' in variants else variants[0]}"
                ctx.record.hit()
                break
        else:
            missing.setdefault(node.op, []).append(node.name)
    if missing:
        raise UnsupportedOpsError(f"no kernel on {','.join(ctx.targets)} for: {', '.join(missing)}", missing)
