"""Each fusion on graphs built to hit and to just miss its pattern; numerical equivalence before/after."""
from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

from helpers import make_model
from pass_helpers import check_pass

from liteopt.passes import (eliminate_identities, fuse_activation, fuse_conv_affine, fuse_conv_bn, fuse_fc,
                            fuse_pad, fuse_residual, fuse_scale, fuse_scale_conv)

RNG = np.random.default_rng(0)
X = RNG.standard_normal((2, 4, 8, 8)).astype(np.float32)


def w(*shape, scale=0.5):
    return (RNG.standard_normal(shape) * scale).astype(np.float32)


def conv(x, out, wname, bname=None, **attrs):
    return helper.make_node("Conv", [x, wname] + ([bname] if bname else []), [out], name=out, **attrs)


def bn_inits(c, p="bn"):
    return {f"{p}_s": RNG.uniform(0.5, 1.5, c).astype(np.float32), f"{p}_b": w(c), f"{p}_m": w(c),
            f"{p}_v": RNG.uniform(0.5, 1.5, c).astype(np.float32)}


def bn(x, out, p="bn"):
    return helper.make_node("BatchNormalization", [x, f"{p}_s", f"{p}_b", f"{p}_m", f"{p}_v"], [out], name=out,
                            epsilon=1e-3)


@pytest.mark.parametrize("bias,group,transpose", [(True, 1, False), (False, 1, False), (True, 4, False),
                                                   (True, 1, True), (False, 2, True)])
def test_conv_bn(bias, group, transpose):
    """conv: filter (6, 4/g, 3, 3) -> 6 channels; depthwise: (4, 1, 3, 3); transposed: (4, 6/g, 3, 3) -> 6."""
    c = 4 if group == 4 else 6
    filt = w(4, 6 // group, 3, 3) if transpose else w(c, 4 // group, 3, 3)
    inits = {"w": filt, **bn_inits(c), **({"b": w(c)} if bias else {})}
    op = "ConvTranspose" if transpose else "Conv"
    nodes = [helper.make_node(op, ["x", "w"] + (["b"] if bias else []), ["c"], group=group, pads=[1, 1, 1, 1]),
             bn("c", "y")]
    kind = "conv2d_transpose" if transpose else ("depthwise_conv2d" if group == 4 else "conv2d")
    check_pass(make_model(nodes, {"x": X}, ["y"], inits), fuse_conv_bn, {"x": X}, ops_after={kind: 1}, hits=1)


def test_conv_bn_miss_when_conv_output_is_used_twice():
    nodes = [conv("x", "c", "w"), bn("c", "y"), helper.make_node("Relu", ["c"], ["z"])]
    model = make_model(nodes, {"x": X}, ["y", "z"], {"w": w(6, 4, 3, 3), **bn_inits(6)})
    rec = check_pass(model, fuse_conv_bn, {"x": X}, hits=0)
    assert any("also used by" in m for m in rec.near_misses)


@pytest.mark.parametrize("shape,hit", [((6, 1, 1), True), ((1, 6, 1, 1), True), ((1,), True), ((6,), False),
                                       ((6, 6, 6), False)])
def test_conv_add_mul(shape, hit):
    c = w(*shape)
    nodes = [conv("x", "c", "w", "b"), helper.make_node("Add", ["c", "k"], ["a"]),
             helper.make_node("Mul", ["k2", "a"], ["y"])]
    model = make_model(nodes, {"x": X}, ["y"], {"w": w(6, 4, 3, 3), "b": w(6), "k": c, "k2": c + 1})
    check_pass(model, fuse_conv_affine, {"x": X}, hits=2 if hit else 0)


@pytest.mark.parametrize("transpose", [False, True])
def test_conv_bias_add_then_bn(transpose):
    """A conv, its bias as a separate per-channel Add, then a BatchNormalization (the PP-OCRv4 detector's
    ConvTranspose -> Add -> BatchNormalization): fuse_conv_bn cannot see the conv behind the add; the affine pass
    folds both into one conv."""
    op, filt = ("ConvTranspose", w(4, 6, 2, 2)) if transpose else ("Conv", w(6, 4, 3, 3))
    nodes = [helper.make_node(op, ["x", "w"], ["c"], **({"strides": [2, 2]} if transpose else {"pads": [1, 1, 1, 1]})),
             helper.make_node("Add", ["c", "k"], ["a"]), bn("a", "y")]
    model = make_model(nodes, {"x": X}, ["y"], {"w": filt, "k": w(6, 1, 1), **bn_inits(6)})
    check_pass(model, fuse_conv_affine, {"x": X}, ops_after={"conv2d_transpose" if transpose else "conv2d": 1},
               hits=2)


@pytest.mark.parametrize("act,attrs,expect", [
    ("Relu", {}, "relu"), ("LeakyRelu", {"alpha": 0.2}, "leaky_relu"), ("HardSwish", {}, "hard_swish"),
    ("Sigmoid", {}, "sigmoid"), ("Clip6", {}, "relu6"), ("Tanh", {}, "tanh"),
    ("HardSigmoid", {"alpha": 1 / 6, "beta": 0.5}, "hard_sigmoid"), ("HardSigmoid", {}, "hard_sigmoid")])
def test_conv_activation(act, attrs, expect):
    nodes = [conv("x", "c", "w", "b", pads=[1, 1, 1, 1])]
    inits = {"w": w(6, 4, 3, 3), "b": w(6)}
    if act == "Clip6":
        nodes.append(helper.make_node("Clip", ["c", "lo", "hi"], ["y"]))
        inits.update(lo=np.float32(0), hi=np.float32(6))
    else:
        nodes.append(helper.make_node(act, ["c"], ["y"], **attrs))
    check_pass(make_model(nodes, {"x": X}, ["y"], inits, opset=14), fuse_activation, {"x": X * 4},
               ops_after={"conv2d": 1}, hits=1)


@pytest.mark.parametrize("act,attrs", [("Relu", {}), ("HardSigmoid", {"alpha": 0.2, "beta": 0.5})])
def test_batch_norm_activation(act, attrs):
    """A batch_norm that no conv absorbs (DenseNet's BN -> ReLU on a concatenation) takes the activation."""
    nodes = [helper.make_node("Concat", ["x", "x"], ["c"], axis=1), bn("c", "n"), helper.make_node(act, ["n"], ["y"],
                                                                                                   **attrs)]
    check_pass(make_model(nodes, {"x": X}, ["y"], bn_inits(8)), fuse_activation, {"x": X},
               ops_after={"concat": 1, "batch_norm": 1}, hits=1)


def test_activation_miss_on_non_default_hard_sigmoid_and_clip():
    nodes = [conv("x", "c", "w"), helper.make_node("Clip", ["c", "lo", "hi"], ["y"])]
    model = make_model(nodes, {"x": X}, ["y"], {"w": w(6, 4, 3, 3), "lo": np.float32(-1), "hi": np.float32(1)})
    rec = check_pass(model, fuse_activation, {"x": X}, hits=0)
    assert any("clip(-1.0, 1.0)" in m for m in rec.near_misses)
    for attrs, why in (({"alpha": 0.2, "beta": 0.4}, "offset=0.4"), ({"alpha": 0.0}, "slope 0")):
        nodes = [conv("x", "c", "w"), helper.make_node("HardSigmoid", ["c"], ["y"], **attrs)]
        rec = check_pass(make_model(nodes, {"x": X}, ["y"], {"w": w(6, 4, 3, 3)}), fuse_activation, {"x": X}, hits=0)
        assert any(why in m for m in rec.near_misses), rec.near_misses


def test_residual_add_relu():
    nodes = [conv("x", "c", "w", pads=[1, 1, 1, 1]), helper.make_node("Add", ["c", "x"], ["a"]),
             helper.make_node("Relu", ["a"], ["y"])]
    check_pass(make_model(nodes, {"x": X}, ["y"], {"w": w(4, 4, 3, 3)}), fuse_activation, {"x": X},
               ops_after={"conv2d": 1, "elementwise_add": 1}, hits=1)


def activation_then_residual(g, ctx):
    """The two passes in pipeline order: the add's activation is fused first, then the add into the conv."""
    fuse_activation(g, ctx)
    fuse_residual(g, ctx)


@pytest.mark.parametrize("swap", [False, True])
@pytest.mark.parametrize("act", [None, "Relu"])
def test_conv_residual(swap, act):
    """conv + add(x) (+ relu) -> one conv2d with x as ResidualData, either operand order."""
    ins = ["x", "c"] if swap else ["c", "x"]
    nodes = [conv("x", "c", "w", "b", pads=[1, 1, 1, 1]), helper.make_node("Add", ins, ["a" if act else "y"])]
    if act:
        nodes.append(helper.make_node(act, ["a"], ["y"]))
    rec = check_pass(make_model(nodes, {"x": X}, ["y"], {"w": w(4, 4, 3, 3), "b": w(4)}), activation_then_residual,
                     {"x": X}, ops_after={"conv2d": 1}, hits=1 + bool(act))
    assert not rec.near_misses


def test_conv_residual_chain_of_blocks():
    """Blocks whose input is the previous block's fused output (used by a conv and by the add): each block's
    add still fuses, whichever operand comes first."""
    nodes, inits, prev = [], {}, "x"
    for k in range(3):
        nodes += [conv(prev, f"h{k}", f"w{k}a", pads=[1, 1, 1, 1]), helper.make_node("Relu", [f"h{k}"], [f"r{k}"]),
                  conv(f"r{k}", f"c{k}", f"w{k}b"), helper.make_node("Add", [prev, f"c{k}"], [f"y{k}"])]
        inits.update({f"w{k}a": w(4, 4, 3, 3), f"w{k}b": w(4, 4, 1, 1)})
        prev = f"y{k}"
    check_pass(make_model(nodes, {"x": X}, [prev], inits), activation_then_residual, {"x": X},
               ops_after={"conv2d": 6}, hits=6)


@pytest.mark.parametrize("case,reason", [
    ("act_before_add", "applies relu before the add"), ("broadcast", "not of the conv output's type"),
    ("constant", "is a constant"), ("used_twice", "also used by")])
def test_conv_residual_misses(case, reason):
    inits = {"w": w(4, 4, 3, 3)}
    other = "x"
    nodes = [conv("x", "c", "w", pads=[1, 1, 1, 1])]
    outputs = ["y"]
    if case == "act_before_add":
        nodes = [conv("x", "c0", "w", pads=[1, 1, 1, 1]), helper.make_node("Relu", ["c0"], ["c"])]
    elif case == "broadcast":
        inits["k"] = w(1, 4, 1, 8)
        nodes.append(helper.make_node("Neg", ["k"], ["s"]))  # a run-time tensor that broadcasts
        other = "s"
    elif case == "constant":
        other, inits["k"] = "k", w(2, 4, 8, 8)
    else:
        nodes.append(helper.make_node("Neg", ["c"], ["z"]))
        outputs.append("z")
    nodes.append(helper.make_node("Add", ["c", other], ["y"]))
    rec = check_pass(make_model(nodes, {"x": X}, outputs, inits), activation_then_residual, {"x": X},
                     hits=int(case == "act_before_add"))  # (that hit: the relu into the conv)
    assert any(reason in m for m in rec.near_misses), rec.near_misses


@pytest.mark.parametrize("pads,hit", [([0, 0, 1, 2, 0, 0, 3, 1], True), ([0, 1, 1, 1, 0, 1, 1, 1], False)])
def test_pad_conv(pads, hit):
    nodes = [helper.make_node("Pad", ["x", "p"], ["xp"]), conv("xp", "y", "w", strides=[2, 2])]
    model = make_model(nodes, {"x": X}, ["y"], {"w": w(6, 4 + 2 * (not hit), 3, 3), "p": np.array(pads, np.int64)})
    check_pass(model, fuse_pad, {"x": X}, hits=int(hit))


def test_pad_avgpool_counts_padding():
    nodes = [helper.make_node("Pad", ["x", "p"], ["xp"]),
             helper.make_node("AveragePool", ["xp"], ["y"], kernel_shape=[3, 3], strides=[2, 2])]
    model = make_model(nodes, {"x": X}, ["y"], {"p": np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64)})
    check_pass(model, fuse_pad, {"x": X}, ops_after={"pool2d": 1}, hits=1)


def test_gemm_flatten_fc():
    nodes = [helper.make_node("GlobalAveragePool", ["x"], ["p"]), helper.make_node("Flatten", ["p"], ["f"]),
             helper.make_node("Gemm", ["f", "fw", "fb"], ["g"], transB=1), helper.make_node("Relu", ["g"], ["y"])]
    model = make_model(nodes, {"x": X}, ["y"], {"fw": w(10, 4), "fb": w(10)})
    check_pass(model, fuse_fc, {"x": X}, ops_after={"pool2d": 1, "fc": 1, "relu": 1}, hits=3)


def test_matmul_fc_3d_input():
    x = RNG.standard_normal((2, 5, 8)).astype(np.float32)
    nodes = [helper.make_node("MatMul", ["x", "mw"], ["m"]), helper.make_node("Add", ["m", "mb"], ["y"])]
    check_pass(make_model(nodes, {"x": x}, ["y"], {"mw": w(8, 3), "mb": w(3)}), fuse_fc, {"x": x},
               ops_after={"fc": 1}, hits=2)


def test_identity_elimination_keeps_output_names():
    nodes = [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Identity", ["r"], ["i"]),
             helper.make_node("Dropout", ["i"], ["y"])]
    model = make_model(nodes, {"x": X}, ["y"])
    from pass_helpers import run_pass
    check_pass(model, eliminate_identities, {"x": X}, ops_after={"relu": 1})
    _, after, _ = run_pass(model, eliminate_identities)
    assert after.outputs == ["y"] and after.nodes[0].outputs == ["y"]


@pytest.mark.parametrize("pads, mode, hit", [([0] * 8, "constant", True), ([0] * 8, "reflect", True),
                                             ([0, 0, 0, 0, 0, 0, 1, 0], "constant", False),
                                             ([0, 0, -1, 0, 0, 0, 1, 0], "constant", False)])
def test_zero_pad_is_removed(pads, mode, hit):
    """A pad of zero on every side (Swin's, when the map is a multiple of its window) computes nothing; a pad
    that crops one side and pads the other keeps the shape but not the values: kept."""
    nodes = [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Pad", ["r", "p"], ["y"], mode=mode)]
    model = make_model(nodes, {"x": X}, ["y"], {"p": np.array(pads, np.int64)})
    check_pass(model, eliminate_identities, {"x": X}, ops_after={"relu": 1} if hit else {"relu": 1, "pad": 1})


@pytest.mark.parametrize("order,shapes,hit", [
    ("mul_add", ((1,), ()), True), ("mul_add", ((1, 1, 1, 1), (1,)), True), ("add_mul", ((), (1,)), True),
    ("add_mul", ((1,), (1,)), True), ("mul_add", ((4, 1, 1), (1,)), False), ("mul_add", ((1, 1, 1, 1, 1), ()), False)])
def test_scalar_mul_add_to_scale(order, shapes, hit):
    """x * s + t and (x + t) * s with one-value constants (either operand order) become one scale op;
    per-channel constants and a constant that would broadcast x to a higher rank do not."""
    s, t = w(*shapes[0]) + 1.5, w(*shapes[1])
    inner, outer = ("Mul", "Add") if order == "mul_add" else ("Add", "Mul")
    first, second = ("s", "t") if order == "mul_add" else ("t", "s")
    nodes = [helper.make_node("Relu", ["x"], ["r"]), helper.make_node(inner, [first, "r"], ["a"]),
             helper.make_node(outer, ["a", second], ["y"])]
    model = make_model(nodes, {"x": X}, ["y"], {"s": s, "t": t})
    rec = check_pass(model, fuse_scale, {"x": X}, hits=1 if hit else 0)
    assert hit or rec.near_misses


def test_scale_miss_when_the_product_is_used_twice():
    nodes = [helper.make_node("Mul", ["x", "s"], ["a"]), helper.make_node("Add", ["a", "t"], ["y"]),
             helper.make_node("Relu", ["a"], ["z"])]
    model = make_model(nodes, {"x": X}, ["y", "z"], {"s": w(1), "t": w(1)})
    check_pass(model, fuse_scale, {"x": X}, hits=0)


def scale_then_conv(g, ctx):
    """The two passes in pipeline order: the multiply and add become a scale, then the conv takes it."""
    fuse_scale(g, ctx)
    fuse_scale_conv(g, ctx)


@pytest.mark.parametrize("order", ["mul_add", "add_mul"])
@pytest.mark.parametrize("k,pads,bias,hit", [(1, [0, 0, 0, 0], True, True), (1, [0, 0, 0, 0], False, True),
                                             (3, [1, 1, 1, 1], True, False), (1, [1, 1, 1, 1], True, False)])
def test_scale_into_the_next_pointwise_conv(order, k, pads, bias, hit):
    """An affine block (x * s + t, or (x + t) * s) after an activation folds into a 1x1 conv without padding;
    a padded conv keeps it (its border taps read zeros, not t)."""
    s, t = np.float32(1.7), np.float32(-0.4)
    nodes = [conv("x", "c", "w0"), helper.make_node("HardSwish", ["c"], ["h"])]
    if order == "mul_add":
        nodes += [helper.make_node("Mul", ["h", "s"], ["m"]), helper.make_node("Add", ["m", "t"], ["a"])]
    else:
        nodes += [helper.make_node("Add", ["h", "t"], ["m"]), helper.make_node("Mul", ["m", "s"], ["a"])]
    nodes.append(conv("a", "y", "w1", "b1" if bias else None, pads=pads))
    inits = {"w0": w(6, 4, 3, 3), "w1": w(5, 6, k, k), "s": s, "t": t}
    if bias:
        inits["b1"] = w(5)
    rec = check_pass(make_model(nodes, {"x": X}, ["y"], inits, opset=14), scale_then_conv, {"x": X},
                     ops_after={"conv2d": 2, "hard_swish": 1} if hit else {"conv2d": 2, "hard_swish": 1, "scale": 1})
    assert rec.matches == 2 if hit else (rec.matches == 1 and any("zeros" in m for m in rec.near_misses))
