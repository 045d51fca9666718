"""Warm numba's on-disk cache after installing liteopt, so that the first model a process loads starts fast:

    python3 -m liteopt.runtime.warmup

It runs every cpu kernel variant once on small float32 inputs of the ranks real models use (the compiled
code is cached next to the package, keyed by argument types and by the kernels' sources: `kernels/_util.py`);
later runs only load it. It also deletes the caches other liteopt versions left there.
"""
from __future__ import annotations

import sys
import time

import numpy as np

from ..ir import OPS, DType, Graph, Node, Tensor, infer_shapes
from . import kernels as K
from .kernels._util import CACHE_DIR, remove_stale_caches
from .predictor import Program
from .threads import cores, set_threads, use_numba_pool

RNG = np.random.default_rng(0)


def _graph() -> tuple[Graph, dict, dict]:
    """One small graph touching the common kernels (conv variants, depthwise, pools, elementwise, nn); its
    feeds; and the variants some nodes must run, where the small shapes would make opt pick another."""
    t: dict[str, Tensor] = {}
    nodes: list[Node] = []
    variants: dict[str, str] = {}

    def const(name, shape, positive=False):
        v = RNG.standard_normal(shape).astype(np.float32) * 0.1
        t[name] = Tensor(name, DType.FLOAT32, shape, np.abs(v) + 0.5 if positive else v)
        return name

    def add(op, inputs, variant=None, **attrs):
        name = f"t{len(nodes)}"
        if variant:
            variants[f"n{len(nodes)}"] = variant
        nodes.append(Node(op, inputs, [name], OPS[op].normalize_attrs(attrs, op), f"n{len(nodes)}"))
        t[name] = Tensor(name, DType.FLOAT32, None)
        return name

    t["x"] = Tensor("x", DType.FLOAT32, (1, 8, 16, 16))
    h = add("conv2d", ["x", const("w1", (16, 8, 3, 3)), const("b1", (16,))], "gemm", paddings=(1, 1, 1, 1),
            act_type="relu")
    h = add("conv2d", [h, const("w2", (16, 16, 1, 1)), const("b2", (16,))], act_type="relu6", act_alpha=6.0)
    s2 = add("conv2d", [h, const("w2s", (16, 16, 3, 3))], "gemm", strides=(2, 2), paddings=(1, 1, 1, 1))  # (planes)
    h = add("conv2d", [h, const("w2b", (16, 16, 1, 1)), "", add("nearest_interp_v2", [s2], scale=(2.0, 2.0))])
    h = add("depthwise_conv2d", [h, const("w3", (16, 1, 3, 3)), const("b3", (16,))], paddings=(1, 1, 1, 1),
            groups=16, act_type="hard_swish")
    h = add("depthwise_conv2d", [h, const("w4", (16, 1, 5, 5))], paddings=(2, 2, 2, 2), strides=(2, 2), groups=16)
    # outputs under 10 wide: 3x3 stride 2 row by row (5x5 and stride 1: channels-last); 2x2 max pooling
    h = add("depthwise_conv2d", [h, const("w4b", (16, 1, 3, 3))], paddings=(1, 1, 1, 1), strides=(2, 2), groups=16)
    h = add("pool2d", [h], pooling_type="max", ksize=(2, 2), strides=(1, 1))
    h = add("conv2d_transpose", [h, const("w5", (16, 8, 2, 2))], strides=(2, 2))
    h = add("pool2d", [h], pooling_type="max", ksize=(3, 3), strides=(2, 2), paddings=(1, 1, 1, 1))
    a = add("pool2d", [h], pooling_type="avg", ksize=(2, 2), strides=(1, 1), ceil_mode=True)
    g = add("elementwise_add", [add("pool2d", [a], pooling_type="avg", global_pooling=True),
                                add("pool2d", [a], pooling_type="max", global_pooling=True)])
    h = add("elementwise_mul", [a, add("hard_sigmoid", [g])])
    h = add("elementwise_add", [h, a], act_type="relu")
    h = add("bilinear_interp_v2", [h], out_h=10, out_w=10)
    h = add("nearest_interp_v2", [h], scale=(2.0, 2.0))
    h = add("batch_norm", [h, const("s", (8,)), const("bb", (8,)), const("m", (8,)), const("v2", (8,), positive=True)])
    h = add("sigmoid", [add("concat", [h, h], axis=1)])
    f = add("reshape2", [add("transpose2", [h], axis=(0, 2, 3, 1))], shape=(1, 400, 16))
    f = add("layer_norm", [f, const("g", (16,)), const("be", (16,))], begin_norm_axis=2)
    f = add("fc", [f, const("fw", (16, 16)), const("fb", (16,))], in_num_col_dims=2, act_type="relu")
    f = add("softmax", [add("matmul_v2", [f, f], trans_y=True)], axis=-1)
    f = add("softmax", [f], axis=1)  # (an inner axis: YOLOv8's box distribution)
    y = add("reduce_mean", [f], dim=(2,), keep_dim=False)
    # a transformer's attention mask at run time (Swin's: equal, not, where on float32) and a gather of float32
    t["i0"] = Tensor("i0", DType.INT64, (), np.array(0, np.int64))
    mask = add("logical_not", [add("equal", [f, const("zero1", (1,))])])
    f = add("gather", [add("where", [mask, const("big1", (1,)), f]), "i0"], axis=0)
    # a 24x24 map: the kernels opt picks for wider maps (Winograd F(4,3), depthwise row by row, the general
    # transposed convolution) and the data movement of channel-shuffle networks
    t["z"] = Tensor("z", DType.FLOAT32, (1, 16, 24, 24))
    z = add("conv2d", ["z", const("w6", (16, 16, 3, 3))], "winograd_f43", paddings=(1, 1, 1, 1), act_type="relu")
    # (8 output channels, not a whole block: the blocked kernel with the filter padded, reordered to NCHW)
    z8 = add("conv2d", ["z", const("w29", (8, 16, 3, 3))], "winograd_f43", paddings=(1, 1, 1, 1), act_type="relu")
    z = add("depthwise_conv2d", [z, const("w7", (16, 1, 3, 3))], paddings=(1, 1, 1, 1), groups=16)
    z = add("depthwise_conv2d", [z, const("w8", (16, 1, 3, 3))], paddings=(1, 1, 1, 1), strides=(2, 2), groups=16)
    z = add("conv2d_transpose", [z, const("w9", (16, 16, 3, 3))], strides=(2, 2), paddings=(1, 1, 1, 1))
    z = add("depthwise_conv2d", [z, const("w10", (16, 1, 5, 5)), const("b10", (16,))], paddings=(2, 2, 2, 2),
            groups=16)
    z = add("elementwise_add", [add("elementwise_mul", [z, const("k1", (1,))]), const("k2", (1, 16, 1, 1))])
    z = add("depthwise_conv2d", [z, const("w28", (16, 1, 7, 7))], paddings=(3, 3, 3, 3), groups=16)  # (ConvNeXt's)
    for act in ("relu", "relu6", "leaky_relu", "hard_swish", "swish", "tanh", "sigmoid", "exp", "sqrt", "gelu",
                "erf", "square"):  # standalone
        z = add(act, [z])
    z = add("clip", [z, "", ""], min=-1.0, max=1.0)  # (Swin-V2's logit scale, its square and pad)
    z = add("pad", [z, ""], paddings=(0, 0, 0, 0, 1, 0, 0, 1))
    z = add("shuffle_channel", [z], group=2)
    z = add("strided_slice", [z, "", "", ""], axes=(1,), starts=(0,), ends=(8,))
    z = add("strided_slice", [z, "", "", ""], axes=(2, 3), starts=(0, 1), ends=(24, 24), strides=(2, 2))  # (Swin's)
    # shape arithmetic left to run time (dynamic shapes): 8-byte copies
    t["i64"] = Tensor("i64", DType.INT64, (2,), np.array([1, -1], np.int64))
    s = add("concat", [add("shape", [z]), "i64"], axis=0)
    s = add("expand_v2", [s, ""], shape=(2, 6))
    # a network's stem: 3 input channels (the direct 3x3 kernel); a 1x1 conv on a map of at most 64 pixels
    # (AVX-512: the channel tiles); a depthwise 3x3 over 100 wide (row by row)
    t["i"] = Tensor("i", DType.FLOAT32, (1, 3, 20, 20))
    stem = add("conv2d", ["i", const("w11", (8, 3, 3, 3)), const("b11", (8,))], strides=(2, 2), paddings=(1, 1, 1, 1),
               act_type="relu6", act_alpha=6.0)
    small = add("pool2d", [stem], pooling_type="max", ksize=(2, 2), strides=(2, 2))
    small = add("conv2d", [small, const("w12", (8, 8, 1, 1)), const("b12", (8,))], act_type="relu")
    wide = add("depthwise_conv2d", [add("bilinear_interp_v2", [small], out_h=5, out_w=100),
                                    const("w13", (8, 1, 3, 3)), const("b13", (8,))], paddings=(1, 1, 1, 1), groups=8)
    # an island of channel-blocked tensors (runtime/layout.py): pointwise convs into, inside and out of it,
    # depthwise, k x k and Winograd convs, a concat and max pooling in it, global pooling reading it
    q = add("conv2d", [small, const("w14", (16, 8, 1, 1)), const("b14", (16,))], act_type="relu")
    # Inception's 1 x k and k x 1 convs, from a blocked and from an NCHW input
    q = add("elementwise_add", [
        add("conv2d", [q, const("w31", (16, 16, 1, 3))], "gemm", paddings=(0, 0, 1, 1), act_type="relu"),
        add("conv2d", [small, const("w32", (16, 8, 3, 1))], "gemm", paddings=(1, 1, 0, 0), act_type="relu")])
    q = add("depthwise_conv2d", [q, const("w15", (16, 1, 3, 3))], paddings=(1, 1, 1, 1), groups=16)
    q = add("conv2d", [q, const("w15b", (16, 16, 3, 3)), const("b15b", (16,))], "gemm", paddings=(1, 1, 1, 1),
            act_type="relu")
    q = add("conv2d", [q, const("w15c", (16, 16, 3, 3))], "winograd_f23", paddings=(1, 1, 1, 1), act_type="relu")
    q = add("conv2d", [q, const("w16", (32, 16, 1, 1))], act_type="relu6", act_alpha=6.0)
    q = add("conv2d", [q, const("w30", (32, 16, 3, 3))], "gemm", paddings=(1, 1, 1, 1), groups=2,
            act_type="relu")  # (RegNet's groups of 16 channels)
    q = add("depthwise_conv2d", [q, const("w17", (32, 1, 5, 5)), const("b17", (32,))], paddings=(2, 2, 2, 2),
            strides=(2, 2), groups=32)
    halves = [add("conv2d", [q, const(f"w{i}", (16, 32, 1, 1))]) for i in (18, 19)]
    q = add("concat", halves, axis=1)
    q = add("pool2d", [q], pooling_type="max", ksize=(3, 3), strides=(2, 2), paddings=(1, 1, 1, 1))
    q = add("pool2d", [q], pooling_type="max", ksize=(5, 5), strides=(1, 1), paddings=(2, 2, 2, 2))  # (YOLO's SPPF)
    g2 = add("pool2d", [q], pooling_type="avg", global_pooling=True)
    up = add("nearest_interp_v2", [q], scale=(2.0, 2.0))  # (YOLO's neck)
    # dilated depthwise convs (DeepLabV3's backbone): by phase grids, then the general kernel
    up = add("depthwise_conv2d", [up, const("w26", (32, 1, 3, 3))], paddings=(2, 2, 2, 2), dilations=(2, 2), groups=32,
             act_type="relu")
    up = add("depthwise_conv2d", [up, const("w27", (32, 1, 3, 3))], paddings=(1, 1, 1, 1), dilations=(2, 2), groups=32,
             act_type="hard_swish")
    # DenseNet's BN -> ReLU that no conv absorbed and its transitions' average pooling, blocked
    up = add("batch_norm", [up, const("s32", (32,)), const("b32", (32,)), const("m32", (32,)),
                            const("v32", (32,), positive=True)], act_type="relu")
    up = add("pool2d", [up], pooling_type="avg", ksize=(2, 2), strides=(2, 2))
    up = add("conv2d", [up, const("w25", (8, 32, 1, 1))])
    # a squeeze-excite block on a blocked tensor: a 1x1 conv of the 1x1 map (a matrix-vector product), then the
    # per-channel scale
    se = add("conv2d", [g2, const("w24", (32, 32, 1, 1)), const("b24", (32,))], act_type="hard_sigmoid",
             act_alpha=0.2)
    q = add("elementwise_mul", [se, q], act_type="relu")
    q = add("conv2d", [q, const("w20", (8, 32, 1, 1))])
    # a pointwise conv BLAS runs (more than 192 input channels on more than 64 pixels: `_tiled.pays`), its
    # bias and activation in a second pass
    t["p"] = Tensor("p", DType.FLOAT32, (1, 200, 9, 9))
    wide_in = add("conv2d", ["p", const("w21", (8, 200, 1, 1)), const("b21", (8,))], act_type="relu")
    # a depthwise conv with unequal strides (PP-OCR's recognizer: the 16-lane strips row by row), then x * s + t
    # (`scale`), then a 1 x 3 conv (the recognizer's neck: im2col + GEMM)
    tall = add("depthwise_conv2d", [wide_in, const("w22", (8, 1, 3, 3))], strides=(2, 1), paddings=(1, 1, 1, 1),
               groups=8)
    tall = add("scale", [tall], scale=0.5, bias=0.25)
    tall = add("conv2d", [tall, const("w23", (8, 8, 1, 3))], paddings=(0, 0, 1, 1))
    graph = Graph(nodes, ["x", "z", "i", "p"], [y, z, z8, s, stem, wide, q, g2, tall, up, f], t)
    infer_shapes(graph)
    return graph, {"x": RNG.standard_normal((1, 8, 16, 16)).astype(np.float32),
                   "z": RNG.standard_normal((1, 16, 24, 24)).astype(np.float32),
                   "i": RNG.standard_normal((1, 3, 20, 20)).astype(np.float32),
                   "p": RNG.standard_normal((1, 200, 9, 9)).astype(np.float32)}, variants


def _graph_with_kernels() -> tuple[Graph, dict]:
    graph, feeds, variants = _graph()
    for node in graph.nodes:  # the variant opt would pick for these shapes, or the one the node is there for
        forced = {node.op: variants[node.name]} if node.name in variants else None
        node.kernel = f"cpu/{K.choose(node, graph.tensors, 'cpu', forced)}"
    return graph, feeds


def warmup(verbose: bool = True) -> float:
    t0 = time.perf_counter()
    graph, feeds = _graph_with_kernels()
    from ..format import read, to_bytes
    program = Program(read(buffer=to_bytes(graph)))
    program.run(feeds)
    if cores() > 1:  # the threaded builds of the blocked kernels too
        set_threads(2)
        use_numba_pool(True)
        try:
            program.run(feeds)
        finally:
            use_numba_pool(False)
            set_threads(1)
    seconds = time.perf_counter() - t0
    stale = remove_stale_caches()
    if verbose:
        print(f"liteopt kernels compiled and cached in {seconds:.1f} s ({CACHE_DIR or 'numba default cache'})")
        if stale:
            print(f"removed {stale} cache entries other liteopt versions left")
    return seconds


if __name__ == "__main__":
    warmup()
    sys.exit(0)
