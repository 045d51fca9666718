"""Whole networks built with onnx.helper, converted and run end to end, checked against onnxruntime,
with the op counts the fusions should reach."""
from __future__ import annotations

import importlib.util
import os

import numpy as np
import pytest
from onnx import helper

from helpers import check_model, convert, make_model

from liteopt.format import read
from liteopt.runtime import load

RNG = np.random.default_rng(0)
F, I64 = np.float32, np.int64
EXAMPLE = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "make_example_model.py")


def w(*shape, scale=0.3):
    return (RNG.standard_normal(shape) * scale).astype(F)


def ops_of(path):
    return read(path).graph.op_counts()


def test_mobilenet_like(tmp_path):
    spec = importlib.util.spec_from_file_location("make_example_model", EXAMPLE)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    model = mod.build()
    x = RNG.standard_normal((2, 3, 32, 32)).astype(F)
    check_model(model, {"input": x}, tmpdir=str(tmp_path))
    ops = ops_of(convert(model, str(tmp_path), valid_targets="cpu"))
    # every Conv+BN(+Clip) is one conv op; BatchNormalization/Clip leave nothing of their own
    assert "batch_norm" not in ops and "relu6" not in ops and "clip" not in ops, ops
    assert ops.get("conv2d", 0) + ops.get("depthwise_conv2d", 0) == 11 and ops["fc"] == 1, ops


def _resnet_like():
    nodes, inits = [], {}

    def cbr(x, out, cin, cout, k, s, relu=True):
        p = out
        inits.update({f"{p}_w": w(cout, cin, k, k, scale=np.sqrt(2 / (cin * k * k))),
                      f"{p}_s": RNG.uniform(0.5, 1.5, cout).astype(F), f"{p}_b": w(cout, scale=0.1),
                      f"{p}_m": w(cout, scale=0.1), f"{p}_v": RNG.uniform(0.5, 1.5, cout).astype(F)})
        nodes.append(helper.make_node("Conv", [x, f"{p}_w"], [f"{p}_c"], pads=[k // 2] * 4, strides=[s, s]))
        nodes.append(helper.make_node("BatchNormalization", [f"{p}_c", f"{p}_s", f"{p}_b", f"{p}_m", f"{p}_v"],
                                      [f"{p}_bn" if relu else out]))
        if relu:
            nodes.append(helper.make_node("Relu", [f"{p}_bn"], [out]))
        return out

    h = cbr("x", "stem", 3, 16, 3, 2)
    nodes.append(helper.make_node("MaxPool", [h], ["pool"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]))
    h = "pool"
    for i, (cin, cout, s) in enumerate([(16, 16, 1), (16, 32, 2)]):
        a = cbr(h, f"b{i}a", cin, cout, 3, s)
        b = cbr(a, f"b{i}b", cout, cout, 3, 1, relu=False)
        sc = cbr(h, f"b{i}d", cin, cout, 1, s, relu=False) if s != 1 or cin != cout else h
        nodes += [helper.make_node("Add", [b, sc], [f"b{i}s"]), helper.make_node("Relu", [f"b{i}s"], [f"b{i}o"])]
        h = f"b{i}o"
    inits.update(fw=w(10, 32), fb=w(10))
    nodes += [helper.make_node("GlobalAveragePool", [h], ["gap"]), helper.make_node("Flatten", ["gap"], ["flat"]),
              helper.make_node("Gemm", ["flat", "fw", "fb"], ["logits"], transB=1)]
    return make_model(nodes, {"x": (F, ["N", 3, 32, 32])}, ["logits"], inits)


def test_resnet_like(tmp_path):
    model = _resnet_like()
    check_model(model, {"x": RNG.standard_normal((2, 3, 32, 32)).astype(F)}, tmpdir=str(tmp_path))
    ops = ops_of(convert(model, str(tmp_path), valid_targets="cpu"))
    # 6 convs (the residual adds and their relu in the epilogues of two), 2 pools, one fc: nothing else
    assert ops == {"conv2d": 6, "pool2d": 2, "fc": 1}, ops


def test_residual_into_bias_free_convs(tmp_path):
    """Residual adds fused into convs without a bias (the conv's inputs: x, w, -, r), in a 7x7 conv run by
    blocks of im2col rows and in a Winograd-sized 3x3 one, with a dynamic batch; the first add's input is
    the graph input itself."""
    nodes = [helper.make_node("Conv", ["x", "w1"], ["c1"], pads=[3, 3, 3, 3]),
             helper.make_node("Add", ["x", "c1"], ["a1"]),
             helper.make_node("Conv", ["a1", "w2"], ["c2"], pads=[1, 1, 1, 1]),
             helper.make_node("Add", ["c2", "a1"], ["a2"]), helper.make_node("Relu", ["a2"], ["y"])]
    model = make_model(nodes, {"x": (F, ["N", 16, 40, 40])}, ["y"], {"w1": w(16, 16, 7, 7, scale=0.05),
                                                                     "w2": w(16, 16, 3, 3, scale=0.1)})
    check_model(model, {"x": RNG.standard_normal((2, 16, 40, 40)).astype(F)}, tmpdir=str(tmp_path))
    g = read(convert(model, str(tmp_path), valid_targets="cpu")).graph
    assert g.op_counts() == {"conv2d": 2}
    assert [n.inputs[2:] for n in g.nodes] == [["", "x"], ["", g.nodes[0].outputs[0]]]


def _transformer_block(d=16, heads=2, seq="T"):
    """LayerNorm spelled out (as Paddle exports it), multi-head attention with shape arithmetic, GELU (Erf)."""
    dh = d // heads
    nodes, inits = [], {}
    inits.update(two=np.array(2, F), eps=np.array(1e-5, F), g1=w(d) + 1, b1=w(d), wqkv=w(d, 3 * d), bqkv=w(3 * d),
                 wo=w(d, d), bo=w(d), w1=w(d, 2 * d), w2=w(2 * d, d), sq=np.array(np.sqrt(2), F),
                 half=np.array(0.5, F), one=np.array(1, F), scale=np.array(1 / np.sqrt(dh), F),
                 i1=np.array(1, I64), ax=np.array([0], I64), heads3=np.array([3, heads, dh], I64),
                 zero=np.array([0], I64), minus1=np.array([-1], I64), dd=np.array([d], I64))
    nodes += [helper.make_node("ReduceMean", ["x"], ["mu"], axes=[-1]), helper.make_node("Sub", ["x", "mu"], ["dv"]),
              helper.make_node("Pow", ["dv", "two"], ["sqd"]), helper.make_node("ReduceMean", ["sqd"], ["var"], axes=[-1]),
              helper.make_node("Add", ["var", "eps"], ["ve"]), helper.make_node("Sqrt", ["ve"], ["sd"]),
              helper.make_node("Div", ["dv", "sd"], ["nrm"]), helper.make_node("Mul", ["nrm", "g1"], ["ln_g"]),
              helper.make_node("Add", ["ln_g", "b1"], ["ln"])]
    nodes += [helper.make_node("MatMul", ["ln", "wqkv"], ["qkv0"]), helper.make_node("Add", ["qkv0", "bqkv"], ["qkv"]),
              helper.make_node("Shape", ["x"], ["xs"]), helper.make_node("Gather", ["xs", "i1"], ["t"], axis=0),
              helper.make_node("Unsqueeze", ["t", "ax"], ["tu"]),
              helper.make_node("Concat", ["zero", "tu", "heads3"], ["shp"], axis=0),
              helper.make_node("Reshape", ["qkv", "shp"], ["qkv5"]),
              helper.make_node("Transpose", ["qkv5"], ["qkvt"], perm=[2, 0, 3, 1, 4]),
              helper.make_node("Split", ["qkvt"], ["q5", "k5", "v5"], axis=0),
              helper.make_node("Squeeze", ["q5", "ax"], ["q"]), helper.make_node("Squeeze", ["k5", "ax"], ["k"]),
              helper.make_node("Squeeze", ["v5", "ax"], ["v"]),
              helper.make_node("Transpose", ["k"], ["kt"], perm=[0, 1, 3, 2]),
              helper.make_node("MatMul", ["q", "kt"], ["att0"]), helper.make_node("Mul", ["att0", "scale"], ["att1"]),
              helper.make_node("Softmax", ["att1"], ["att"], axis=-1), helper.make_node("MatMul", ["att", "v"], ["ctx"]),
              helper.make_node("Transpose", ["ctx"], ["ctxt"], perm=[0, 2, 1, 3]),
              helper.make_node("Concat", ["zero", "tu", "dd"], ["shp2"], axis=0),
              helper.make_node("Reshape", ["ctxt", "shp2"], ["ctxr"]),
              helper.make_node("MatMul", ["ctxr", "wo"], ["o0"]), helper.make_node("Add", ["o0", "bo"], ["o"]),
              helper.make_node("Add", ["x", "o"], ["res1"])]
    nodes += [helper.make_node("MatMul", ["res1", "w1"], ["h1"]), helper.make_node("Div", ["h1", "sq"], ["h2"]),
              helper.make_node("Erf", ["h2"], ["h3"]), helper.make_node("Add", ["h3", "one"], ["h4"]),
              helper.make_node("Mul", ["h1", "h4"], ["h5"]), helper.make_node("Mul", ["h5", "half"], ["gelu"]),
              helper.make_node("MatMul", ["gelu", "w2"], ["h6"]), helper.make_node("Add", ["res1", "h6"], ["y"])]
    return make_model(nodes, {"x": (F, ["N", seq, d])}, ["y"], inits, opset=13)


def test_transformer_block(tmp_path):
    model = _transformer_block()
    for t in (7, 12):  # dynamic sequence length: one file, two lengths
        check_model(model, {"x": RNG.standard_normal((2, t, 16)).astype(F)}, tmpdir=str(tmp_path))
    ops = ops_of(convert(model, str(tmp_path), valid_targets="cpu"))
    assert ops.get("layer_norm") == 1 and "reduce_mean" not in ops and ops.get("fc", 0) >= 3, ops


def test_transformer_block_pinned_folds_shape_arithmetic(tmp_path):
    model = _transformer_block()
    x = RNG.standard_normal((1, 9, 16)).astype(F)
    check_model(model, {"x": x}, input_shapes={"x": (1, 9, 16)}, tmpdir=str(tmp_path))
    ops = ops_of(convert(model, str(tmp_path), input_shapes={"x": (1, 9, 16)}, valid_targets="cpu"))
    assert not {"shape", "gather", "concat", "unsqueeze2"} & set(ops), ops


def _shufflenet_units(c=16, hw=8, units=2):
    """ShuffleNetV2 units as torch's dynamo exporter writes them (opset 18): the channel split is one Split
    with num_outputs=2 (the TorchScript exporter wrote two Slices), its first half goes straight into the
    Concat, then the channel shuffle as Reshape / Transpose / Reshape."""
    nodes, inits, h, half = [], {}, "x", c // 2
    inits.update(shp5=np.array([1, 2, half, hw, hw], I64), shp4=np.array([1, c, hw, hw], I64))
    for u in range(units):
        p = f"u{u}"
        inits.update({f"{p}_w1": w(half, half, 1, 1), f"{p}_b1": w(half), f"{p}_dw": w(half, 1, 3, 3),
                      f"{p}_w2": w(half, half, 1, 1), f"{p}_b2": w(half)})
        nodes += [helper.make_node("Split", [h], [f"{p}_a", f"{p}_b"], axis=1, num_outputs=2),
                  helper.make_node("Conv", [f"{p}_b", f"{p}_w1", f"{p}_b1"], [f"{p}_c1"]),
                  helper.make_node("Relu", [f"{p}_c1"], [f"{p}_r1"]),
                  helper.make_node("Conv", [f"{p}_r1", f"{p}_dw"], [f"{p}_d"], group=half, pads=[1, 1, 1, 1]),
                  helper.make_node("Conv", [f"{p}_d", f"{p}_w2", f"{p}_b2"], [f"{p}_c2"]),
                  helper.make_node("Relu", [f"{p}_c2"], [f"{p}_r2"]),
                  helper.make_node("Concat", [f"{p}_a", f"{p}_r2"], [f"{p}_cat"], axis=1),
                  helper.make_node("Reshape", [f"{p}_cat", "shp5"], [f"{p}_5"]),
                  helper.make_node("Transpose", [f"{p}_5"], [f"{p}_t"], perm=[0, 2, 1, 3, 4]),
                  helper.make_node("Reshape", [f"{p}_t", "shp4"], [f"{p}_o"])]
        h = f"{p}_o"
    nodes.append(helper.make_node("Relu", [h], ["y"]))
    return make_model(nodes, {"x": (F, [1, c, hw, hw])}, ["y"], inits, opset=18)


def test_shufflenet_units_with_split_assemble_their_concats_in_place(tmp_path):
    """The split writes its halves into their arena views, so the concat of a half and the branch's output
    costs nothing: the runtime skips every concat step."""
    model = _shufflenet_units()
    x = RNG.standard_normal((1, 16, 8, 8)).astype(F)
    ref = check_model(model, {"x": x}, tmpdir=str(tmp_path))
    path = convert(model, str(tmp_path), valid_targets="cpu")
    assert ops_of(path) == {"split": 2, "conv2d": 4, "depthwise_conv2d": 2, "concat": 2, "shuffle_channel": 2,
                            "relu": 1}
    pred = load(path)
    calls = []
    for s in pred._program.steps:
        if s.node.op == "concat":
            s.fn = lambda *a, _f=s.fn, **kw: calls.append(1) or _f(*a, **kw)
    for _ in range(2):  # the second run reuses the arena and the schedule
        np.testing.assert_allclose(pred({"x": x})["y"], ref[0], rtol=1e-5, atol=1e-5)
    assert calls == []


def _shufflenet_units_dynamic_batch(c=16, hw=8, units=2):
    """ShuffleNetV2 units as the TorchScript exporter writes them with a dynamic batch: the channel split's
    bounds and the shuffle's and the flatten's reshape targets computed from Shape (Gather, Add, Div, Mul,
    Unsqueeze, Concat), since the batch N is only known at run time."""
    nodes, inits, h = [], {}, "x"
    inits.update(i0=np.array(0, I64), i1=np.array(1, I64), i2=np.array(2, I64), i3=np.array(3, I64),
                 two=np.array(2, I64), one=np.array(1, I64), ax1=np.array([1], I64), g2=np.array([2], I64),
                 m1=np.array([-1], I64), zero1=np.array([0], I64))

    def dims(x, p, which):
        nodes.append(helper.make_node("Shape", [x], [f"{p}_s"]))
        for k in which:
            nodes.append(helper.make_node("Gather", [f"{p}_s", f"i{k}"], [f"{p}_d{k}"], axis=0))
        return [f"{p}_d{k}" for k in which]

    def vec(p, scalars):
        out = []
        for k, s in enumerate(scalars):
            if s.startswith("@"):  # a 1-D constant
                out.append(s[1:])
                continue
            nodes.append(helper.make_node("Unsqueeze", [s, "zero1"], [f"{p}_u{k}"]))
            out.append(f"{p}_u{k}")
        nodes.append(helper.make_node("Concat", out, [f"{p}_v"], axis=0))
        return f"{p}_v"

    for u in range(units):
        p, half = f"u{u}", c // 2
        inits.update({f"{p}_w1": w(half, half, 1, 1), f"{p}_dw": w(half, 1, 3, 3), f"{p}_w2": w(half, half, 1, 1)})
        (ch,) = dims(h, f"{p}_a", [1])
        nodes += [helper.make_node("Add", [ch, "one"], [f"{p}_c1"]),
                  helper.make_node("Div", [f"{p}_c1", "two"], [f"{p}_hf"]),
                  helper.make_node("Mul", [f"{p}_hf", "one"], [f"{p}_e0"]),
                  helper.make_node("Mul", [f"{p}_hf", "two"], [f"{p}_e1"])]
        e0, e1 = vec(f"{p}_e0v", [f"{p}_e0"]), vec(f"{p}_e1v", [f"{p}_e1"])
        nodes += [helper.make_node("Slice", [h, "zero1", e0, "ax1"], [f"{p}_lo"]),
                  helper.make_node("Slice", [h, e0, e1, "ax1"], [f"{p}_hi"]),
                  helper.make_node("Conv", [f"{p}_hi", f"{p}_w1"], [f"{p}_c"]),
                  helper.make_node("Relu", [f"{p}_c"], [f"{p}_r"]),
                  helper.make_node("Conv", [f"{p}_r", f"{p}_dw"], [f"{p}_d"], group=half, pads=[1, 1, 1, 1]),
                  helper.make_node("Conv", [f"{p}_d", f"{p}_w2"], [f"{p}_c2"]),
                  helper.make_node("Relu", [f"{p}_c2"], [f"{p}_r2"]),
                  helper.make_node("Concat", [f"{p}_lo", f"{p}_r2"], [f"{p}_cat"], axis=1)]
        n_, c_, h_, w_ = dims(f"{p}_cat", f"{p}_b", [0, 1, 2, 3])
        nodes.append(helper.make_node("Div", [c_, "two"], [f"{p}_cg"]))
        t5 = vec(f"{p}_t5", [n_, "@g2", f"{p}_cg", h_, w_])
        t4 = vec(f"{p}_t4", [n_, c_, h_, w_])
        nodes += [helper.make_node("Reshape", [f"{p}_cat", t5], [f"{p}_5"]),
                  helper.make_node("Transpose", [f"{p}_5"], [f"{p}_t"], perm=[0, 2, 1, 3, 4]),
                  helper.make_node("Reshape", [f"{p}_t", t4], [f"{p}_o"])]
        h = f"{p}_o"
    (n_,) = dims(h, "fl", [0])
    inits.update(fw=w(10, c * hw * hw, scale=0.05), fb=w(10))
    nodes += [helper.make_node("Reshape", [h, vec("flv", [n_, "@m1"])], ["flat"]),
              helper.make_node("Gemm", ["flat", "fw", "fb"], ["y"], transB=1)]
    return make_model(nodes, {"x": (F, ["N", c, hw, hw])}, ["y"], inits, opset=13)


def test_shape_arithmetic_on_a_dynamic_batch_folds_into_static_reshapes(tmp_path):
    """The reshapes and slices computed from the shape of a tensor whose batch is symbolic become static ones
    (0 or -1 for the batch): the channels stay known, so the depthwise convs, the blocked layout and the
    shuffle_channel recognition apply as on a static export; any batch still runs."""
    model = _shufflenet_units_dynamic_batch()
    for n in (1, 3):
        check_model(model, {"x": RNG.standard_normal((n, 16, 8, 8)).astype(F)}, tmpdir=str(tmp_path))
    path = convert(model, str(tmp_path), valid_targets="cpu")
    assert ops_of(path) == {"strided_slice": 4, "conv2d": 4, "depthwise_conv2d": 2, "concat": 2,
                            "shuffle_channel": 2, "reshape2": 1, "fc": 1}  # (the flatten: a view)
    g = read(path).graph
    assert all(isinstance(d, int) for n in g.nodes for o in n.outputs for d in g.tensors[o].shape[1:])


def _yolo_like(split="Split", batch=1):
    """YOLOv8's pieces: Conv+BN+SiLU (x * Sigmoid(x)), a C2f split (Split, or two Slices as the TorchScript
    exporter writes chunk) into a bottleneck with a residual, a concat, a neck (a downsampling conv, nearest
    upsampling, a concat), and the box head's softmax over an inner axis (4 sides x 16 bins per anchor)."""
    nodes, inits = [], {}

    def cbs(x, out, cin, cout, k, s):
        inits.update({f"{out}_w": w(cout, cin, k, k, scale=np.sqrt(2 / (cin * k * k))),
                      f"{out}_s": RNG.uniform(0.5, 1.5, cout).astype(F), f"{out}_b": w(cout, scale=0.1),
                      f"{out}_m": w(cout, scale=0.1), f"{out}_v": RNG.uniform(0.5, 1.5, cout).astype(F)})
        nodes.extend([helper.make_node("Conv", [x, f"{out}_w"], [f"{out}_c"], pads=[k // 2] * 4, strides=[s, s]),
                      helper.make_node("BatchNormalization", [f"{out}_c", f"{out}_s", f"{out}_b", f"{out}_m",
                                                              f"{out}_v"], [f"{out}_bn"]),
                      helper.make_node("Sigmoid", [f"{out}_bn"], [f"{out}_sg"]),
                      helper.make_node("Mul", [f"{out}_bn", f"{out}_sg"], [out])])
        return out

    h = cbs(cbs("x", "stem", 3, 16, 3, 2), "down", 16, 32, 3, 2)
    h = cbs(h, "cv1", 32, 32, 1, 1)
    if split == "Split":
        inits["split"] = np.array([16, 16], np.int64)
        nodes.append(helper.make_node("Split", [h, "split"], ["y0", "y1"], axis=1))
    else:
        inits.update(ax=np.array([1], np.int64), s0=np.array([0], np.int64), s1=np.array([16], np.int64),
                     e1=np.array([2 ** 63 - 1], np.int64))
        nodes += [helper.make_node("Slice", [h, "s0", "s1", "ax"], ["y0"]),
                  helper.make_node("Slice", [h, "s1", "e1", "ax"], ["y1"])]
    b = cbs(cbs("y1", "m_a", 16, 16, 3, 1), "m_b", 16, 16, 3, 1)
    nodes.append(helper.make_node("Add", ["y1", b], ["y2"]))
    nodes.append(helper.make_node("Concat", ["y0", "y1", "y2"], ["cat"], axis=1))
    h = cbs("cat", "cv2", 48, 32, 1, 1)
    inits["up"] = np.array([1, 1, 2, 2], F)
    nodes += [helper.make_node("Resize", [cbs(h, "down2", 32, 32, 3, 2), "", "up"], ["u"], mode="nearest"),
              helper.make_node("Concat", ["u", h], ["neck"], axis=1)]
    h = cbs("neck", "n", 64, 32, 1, 1)
    inits.update(box_w=w(64, 32, 1, 1), box_b=w(64), shape=np.array([0, 4, 16, -1], np.int64))
    nodes += [helper.make_node("Conv", [h, "box_w", "box_b"], ["box"]),
              helper.make_node("Reshape", ["box", "shape"], ["dist"]),
              helper.make_node("Transpose", ["dist"], ["bins"], perm=[0, 2, 1, 3]),
              helper.make_node("Softmax", ["bins"], ["p"], axis=1)]
    return make_model(nodes, {"x": (F, [batch, 3, 64, 64])}, ["p"], inits, opset=13)


def test_yolo_like(tmp_path):
    """SiLU fuses into the convs (the channel-blocked kernels apply it: swish in their epilogue) and the box
    distribution's softmax runs over its inner axis; the result matches onnxruntime."""
    model = _yolo_like()
    check_model(model, {"x": RNG.standard_normal((1, 3, 64, 64)).astype(F)}, tmpdir=str(tmp_path))
    ops = ops_of(convert(model, str(tmp_path), valid_targets="cpu"))
    assert "sigmoid" not in ops and "elementwise_mul" not in ops and "batch_norm" not in ops, ops
    assert ops["conv2d"] == 9 and ops["softmax"] == 1, ops


@pytest.mark.parametrize("split", ["Split", "Slice"])
def test_yolo_like_stays_channel_blocked(split, tmp_path):
    """The C2f block's split or slices, the residual add after the bottleneck's SiLU, the neck's nearest
    upsampling and both concats run on channel-blocked tensors: from the stem to the last conv before the head's
    reshape, every tensor stays blocked. Against onnxruntime, one and two images."""
    for batch in (1, 2):
        model = _yolo_like(split, batch)
        check_model(model, {"x": RNG.standard_normal((batch, 3, 64, 64)).astype(F)}, tmpdir=str(tmp_path))
    prog = load(convert(model, str(tmp_path), valid_targets="cpu"))._program
    want = {"stem", "down", "cv1", "y0", "y1", "m_a", "m_b", "y2", "cat", "cv2", "down2", "u", "neck", "n"}
    assert want <= prog.blocked, want - prog.blocked


def test_deeplab_like(tmp_path):
    """DeepLabV3's pieces: a dilated depthwise conv in the backbone (kept channel-blocked) and an ASPP head whose
    dilation-12 branch only reads the padding of an 8x8 map outside its centre tap (cut to a 1x1 conv by
    prune_taps), then bilinear upsampling; against onnxruntime, one and two images."""
    inits = {"w0": w(32, 16, 1, 1), "wd": w(32, 1, 5, 5), "w1": w(32, 32, 1, 1), "wa": w(16, 32, 3, 3),
             "wb": w(16, 32, 3, 3), "wp": w(8, 32, 1, 1), "sc": np.array([1, 1, 4, 4], F)}
    nodes = [helper.make_node("Conv", ["x", "w0"], ["e"]), helper.make_node("HardSwish", ["e"], ["eh"]),
             helper.make_node("Conv", ["eh", "wd"], ["d"], group=32, pads=[4] * 4, dilations=[2, 2]),
             helper.make_node("Relu", ["d"], ["dr"]), helper.make_node("Conv", ["dr", "w1"], ["f"]),
             helper.make_node("Conv", ["f", "wa"], ["a6"], pads=[6] * 4, dilations=[6, 6]),
             helper.make_node("Conv", ["f", "wb"], ["a12"], pads=[12] * 4, dilations=[12, 12]),
             helper.make_node("Concat", ["a6", "a12"], ["cat"], axis=1),
             helper.make_node("Conv", ["cat", "wp"], ["p"]),
             helper.make_node("Resize", ["p", "", "sc"], ["y"], mode="linear")]
    for batch in (1, 2):
        model = make_model(nodes, {"x": (F, [batch, 16, 8, 8])}, ["y"], inits, opset=14)
        check_model(model, {"x": RNG.standard_normal((batch, 16, 8, 8)).astype(F)}, tmpdir=str(tmp_path))
    path = convert(model, str(tmp_path), valid_targets="cpu")
    g = read(path).graph
    convs = {tuple(n.attrs["dilations"]): g.tensors[n.inputs[1]].shape for n in g.nodes if n.op == "conv2d"}
    assert convs[(6, 6)][2:] == (3, 3) and convs[(1, 1)][2:] == (1, 1), convs
    assert sum(n.op == "conv2d" and g.tensors[n.inputs[1]].shape[2:] == (1, 1) for n in g.nodes) == 4
    prog = load(path)._program
    dw = next(n for n in prog.graph.nodes if n.op == "depthwise_conv2d")
    assert dw.outputs[0] in prog.blocked and dw.inputs[0] in prog.blocked
