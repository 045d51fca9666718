"""The optimization pipeline. `PIPELINE` is the one place where passes are ordered.

A pass is a function `(graph, ctx) -> None` that rewrites the graph in place and records what it did
in `ctx`. Passes import only `ir`; what they need from elsewhere (the kernel table) comes in `ctx`.
"""
from __future__ import annotations

import time
from typing import Callable

from ..ir import Graph, infer_shapes
from .cancel import cancel_chains
from .context import PassContext, PassRecord
from .eliminate import eliminate_identities
from .fold_constants import fold_constants
from .fold_shapes import fold_shapes
from .fuse_activation import fuse_activation
from .fuse_conv_affine import fuse_conv_affine
from .fuse_conv_bn import fuse_conv_bn
from .fuse_fc import fuse_fc
from .fuse_pad import fuse_pad
from .fuse_residual import fuse_residual
from .fuse_scale import fuse_scale
from .fuse_scale_conv import fuse_scale_conv
from .pick_kernels import pick_kernels
from .plan_memory import plan_memory
from .prune_taps import prune_taps
from .quantize_weights import quantize_weights
from .recognize import recognize_patterns


def infer(graph: Graph, ctx: PassContext) -> None:
    """Shape inference over the whole graph (symbolic where input shapes are not pinned)."""
    infer_shapes(graph)


PIPELINE: list[Callable[[Graph, PassContext], None]] = [
    infer,
    fold_constants,        # shape arithmetic and constant subgraphs (size-guarded)
    fold_shapes,           # reshape targets computed from a dynamic batch's shape -> static reshapes
    eliminate_identities,  # assign, dropout, no-op reshape/transpose/cast, x*1, x+0
    cancel_chains,         # transpose pairs, reshape chains
    recognize_patterns,    # hard_swish, swish, shuffle_channel, layer_norm spelled out
    fuse_pad,              # pad + conv/pool -> explicit paddings
    fuse_conv_bn,          # conv (+ bias) + batch_norm
    fuse_conv_affine,      # conv + per-channel add / mul
    fuse_scale,            # x * scalar + scalar -> scale (one pass instead of two)
    fuse_scale_conv,       # scale + 1x1 conv without padding -> the conv's filter and bias
    fuse_fc,               # matmul (+ add) -> fc, flatten + fc
    fuse_activation,       # conv/fc/elementwise + activation -> act_type epilogue
    fuse_residual,         # conv + add of a same-shape tensor (+ its activation) -> the conv's epilogue
    prune_taps,            # filter rows/columns that only read the padding (dilated convs on small maps)
    quantize_weights,      # --quant_model / --enable_fp16: weight storage only, after the fusions
    pick_kernels,
    plan_memory,           # one arena: lifetimes, in-place, best of two placement strategies
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


__all__ = ["PIPELINE", "PassContext", "PassRecord", "run_pipeline", "cancel_chains", "eliminate_identities",
           "fold_constants", "fold_shapes", "fuse_activation", "fuse_conv_affine", "fuse_conv_bn", "fuse_fc",
           "fuse_pad", "fuse_residual", "fuse_scale", "fuse_scale_conv", "pick_kernels", "plan_memory",
           "prune_taps", "quantize_weights", "recognize_patterns"]
