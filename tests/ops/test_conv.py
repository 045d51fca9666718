"""Conv, ConvTranspose and pooling ONNX ops through liteopt vs onnxruntime (cpu kernels and numpy references),
plus the conv kernels' fused bias + activation epilogues against the registry's references."""
import itertools

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from onnx import helper

from helpers import assert_close, check_op, convert, make_model, run_ort
from liteopt.ir import OPS, DType, Node, Tensor
from liteopt.ir.errors import LiteoptError
from liteopt.runtime import kernels as K
from liteopt.runtime import load

RNG = np.random.default_rng(0)


def rand(*shape, scale=1.0):
    return (RNG.standard_normal(shape) * scale).astype(np.float32)


X = rand(2, 4, 9, 11)


def conv(x, w, b=None, *, op="Conv", tmp=None, **kw):
    """One Conv/ConvTranspose node with constant weights (and bias), checked vs onnxruntime."""
    consts = {"w": w} if b is None else {"w": w, "b": b}
    dynamic, opset = kw.pop("dynamic", None), kw.pop("opset", 13)
    return check_op(op, {"x": x}, kw, consts=consts, dynamic=dynamic, opset=opset, tmpdir=tmp)


# --- Conv --------------------------------------------------------------------------------------

@pytest.mark.parametrize("w_shape,bias,attrs", [
    ((6, 4, 3, 3), True, {}),
    ((6, 4, 3, 3), False, {}),
    ((6, 4, 1, 1), True, {}),                                        # pointwise: plain GEMM
    ((6, 4, 1, 1), True, {"strides": [2, 2]}),
    ((6, 4, 3, 3), True, {"pads": [0, 1, 2, 1]}),                     # asymmetric: top, left, bottom, right
    ((6, 4, 3, 3), True, {"strides": [2, 3], "pads": [1, 1, 1, 1]}),
    ((6, 4, 3, 3), True, {"dilations": [2, 1], "pads": [2, 0, 1, 1]}),
    ((6, 4, 2, 5), True, {"dilations": [3, 2], "strides": [1, 2], "pads": [1, 2, 0, 3]}),
    ((6, 4, 3, 3), True, {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1]}),
    ((6, 2, 3, 3), True, {"group": 2, "pads": [1, 1, 1, 1]}),
    ((8, 1, 3, 3), True, {"group": 4, "pads": [1, 1, 1, 1]}),         # depthwise, channel multiplier 2
    ((4, 1, 3, 3), True, {"group": 4, "pads": [1, 1, 1, 1]}),         # depthwise 3x3 (direct kernel)
    ((4, 1, 3, 3), False, {"group": 4, "strides": [2, 2], "pads": [0, 1, 1, 0]}),
    ((4, 1, 5, 5), True, {"group": 4, "pads": [2, 2, 2, 2]}),
    ((4, 1, 5, 5), True, {"group": 4, "strides": [2, 2], "pads": [1, 2, 2, 1]}),
    ((4, 1, 3, 1), True, {"group": 4, "dilations": [2, 2]}),          # depthwise, grouped GEMM kernel
    ((4, 1, 3, 3), True, {"group": 4, "dilations": [2, 2], "pads": [2, 2, 2, 2]}),
    ((4, 1, 7, 7), True, {"group": 4, "strides": [3, 3], "pads": [3, 3, 3, 3]}),
])
def test_conv(w_shape, bias, attrs, tmp_path):
    conv(X, rand(*w_shape), rand(w_shape[0]) if bias else None, tmp=str(tmp_path), **attrs)


@pytest.mark.parametrize("auto_pad", ["SAME_UPPER", "SAME_LOWER", "VALID"])
@pytest.mark.parametrize("strides", [[1, 1], [2, 2], [3, 2]])
@pytest.mark.parametrize("k", [(3, 3), (2, 4), (1, 1)])
def test_conv_auto_pad(auto_pad, strides, k, tmp_path):
    """Odd totals (even kernels, strides that do not divide) put the extra pixel at the end for SAME_UPPER."""
    conv(X, rand(6, 4, *k), rand(6), auto_pad=auto_pad, strides=strides, tmp=str(tmp_path))


@pytest.mark.parametrize("auto_pad", ["SAME_UPPER", "SAME_LOWER"])
def test_conv_auto_pad_depthwise(auto_pad, tmp_path):
    conv(X, rand(4, 1, 3, 3), rand(4), group=4, auto_pad=auto_pad, strides=[2, 2], tmp=str(tmp_path))


@pytest.mark.parametrize("opset", [9, 11, 21])
def test_conv_opsets(opset, tmp_path):
    conv(X, rand(6, 2, 3, 3), rand(6), group=2, pads=[1, 0, 1, 2], opset=opset, tmp=str(tmp_path))


@settings(max_examples=20, deadline=None)
@given(c=st.integers(1, 3), o=st.integers(1, 3), groups=st.sampled_from([1, 2, 3]), depthwise=st.booleans(),
       kh=st.integers(1, 4), kw=st.integers(1, 4), h=st.integers(1, 9), w=st.integers(1, 9),
       strides=st.tuples(st.integers(1, 3), st.integers(1, 3)),
       dilations=st.tuples(st.integers(1, 2), st.integers(1, 2)),
       pads=st.tuples(*[st.integers(0, 2)] * 4), bias=st.booleans(), n=st.integers(1, 2))
def test_conv_hypothesis(c, o, groups, depthwise, kh, kw, h, w, strides, dilations, pads, bias, n, tmp_path_factory):
    if depthwise:
        c = 1
    c_in, c_out = c * groups, o * groups
    ext_h, ext_w = dilations[0] * (kh - 1) + 1, dilations[1] * (kw - 1) + 1
    if h + pads[0] + pads[2] < ext_h or w + pads[1] + pads[3] < ext_w:
        return
    conv(rand(n, c_in, h, w), rand(c_out, c, kh, kw), rand(c_out) if bias else None, group=groups,
         strides=list(strides), dilations=list(dilations), pads=list(pads), tmp=str(tmp_path_factory.mktemp("c")))


# --- ConvTranspose -----------------------------------------------------------------------------

XT = rand(2, 4, 5, 6)


@pytest.mark.parametrize("w_shape,bias,attrs", [
    ((4, 3, 3, 3), True, {}),
    ((4, 3, 3, 3), False, {}),
    ((4, 3, 1, 1), True, {}),
    ((4, 3, 3, 3), True, {"strides": [2, 2]}),
    ((4, 3, 3, 3), True, {"strides": [2, 3], "pads": [1, 0, 2, 1]}),
    ((4, 3, 3, 3), True, {"strides": [2, 3], "output_padding": [1, 2]}),
    ((4, 3, 3, 3), True, {"strides": [2, 3], "output_padding": [1, 1], "pads": [1, 1, 1, 1]}),
    ((4, 3, 3, 3), True, {"dilations": [2, 3], "strides": [2, 1]}),
    ((4, 3, 3, 3), True, {"dilations": [2, 2], "strides": [3, 2], "output_padding": [2, 1], "pads": [0, 2, 1, 1]}),
    ((4, 3, 2, 4), True, {"strides": [2, 2]}),
    ((4, 3, 4, 4), True, {"strides": [2, 2], "pads": [1, 1, 1, 1]}),  # the usual 2x upsampling
    ((4, 2, 3, 3), True, {"group": 2, "strides": [2, 2], "pads": [1, 1, 1, 1]}),
    ((4, 1, 3, 3), True, {"group": 4, "strides": [2, 2]}),
    ((4, 2, 3, 3), True, {"group": 4, "strides": [2, 1], "output_padding": [1, 0], "dilations": [1, 2]}),
    ((4, 3, 3, 3), True, {"kernel_shape": [3, 3], "strides": [2, 2]}),
    ((4, 3, 2, 2), True, {"strides": [2, 2]}),                     # stride == kernel: each output written once
    ((4, 3, 2, 2), False, {"strides": [2, 2]}),
    ((4, 3, 2, 3), True, {"strides": [2, 3]}),
    ((4, 1, 2, 2), True, {"group": 4, "strides": [2, 2]}),
])
def test_conv_transpose(w_shape, bias, attrs, tmp_path):
    conv(XT, rand(*w_shape), rand(w_shape[1] * attrs.get("group", 1)) if bias else None, op="ConvTranspose",
         tmp=str(tmp_path), **attrs)


@pytest.mark.parametrize("auto_pad", ["NOTSET", "SAME_UPPER", "SAME_LOWER"])
@pytest.mark.parametrize("strides,output_shape", [
    ([2, 2], [11, 13]),   # the full size: no padding
    ([2, 2], [10, 12]),   # odd total: NOTSET/SAME_LOWER crop the extra pixel at the start, SAME_UPPER at the end
    ([2, 2], [8, 10]),
    ([2, 2], [12, 14]),   # larger than the full size: extra output padding
    ([3, 3], [17, 20]),
    ([1, 2], [6, 12]),
])
def test_conv_transpose_output_shape(auto_pad, strides, output_shape, tmp_path):
    conv(XT, rand(4, 3, 3, 3), rand(3), op="ConvTranspose", strides=strides, output_shape=output_shape,
         auto_pad=auto_pad, tmp=str(tmp_path))


@pytest.mark.parametrize("auto_pad", ["SAME_UPPER", "SAME_LOWER", "VALID"])
@pytest.mark.parametrize("strides,k,output_padding", [([1, 1], (3, 2), [0, 0]), ([2, 2], (3, 3), [0, 0]),
                                                      ([2, 3], (3, 2), [1, 2]), ([3, 3], (2, 1), [0, 0]),
                                                      ([2, 2], (1, 1), [0, 0])])
def test_conv_transpose_auto_pad(auto_pad, strides, k, output_padding, tmp_path):
    """SAME: output = input * stride when the kernel reaches that far, else the full size (onnxruntime clips)."""
    conv(XT, rand(4, 3, *k), rand(3), op="ConvTranspose", auto_pad=auto_pad, strides=strides,
         output_padding=output_padding, tmp=str(tmp_path))


@settings(max_examples=15, deadline=None)
@given(c=st.integers(1, 3), o=st.integers(1, 3), groups=st.sampled_from([1, 2]), kh=st.integers(1, 4),
       kw=st.integers(1, 4), h=st.integers(1, 6), w=st.integers(1, 6),
       strides=st.tuples(st.integers(1, 3), st.integers(1, 3)),
       dilations=st.tuples(st.integers(1, 2), st.integers(1, 2)), pads=st.tuples(*[st.integers(0, 2)] * 4),
       output_padding=st.tuples(st.integers(0, 2), st.integers(0, 2)), bias=st.booleans())
def test_conv_transpose_hypothesis(c, o, groups, kh, kw, h, w, strides, dilations, pads, output_padding, bias,
                                   tmp_path_factory):
    # onnxruntime wants output_padding < stride; the output must not be empty
    op = tuple(min(p, s - 1) for p, s in zip(output_padding, strides))
    full = [(n - 1) * s + d * (k - 1) + 1 + p for n, s, d, k, p in zip((h, w), strides, dilations, (kh, kw), op)]
    if full[0] - pads[0] - pads[2] < 1 or full[1] - pads[1] - pads[3] < 1:
        return
    conv(rand(2, c * groups, h, w), rand(c * groups, o, kh, kw), rand(o * groups) if bias else None, op="ConvTranspose",
         group=groups, strides=list(strides), dilations=list(dilations), pads=list(pads), output_padding=list(op),
         tmp=str(tmp_path_factory.mktemp("t")))


# --- pooling -----------------------------------------------------------------------------------

XP = rand(2, 3, 7, 8)
POOL_CASES = [
    dict(kernel_shape=k, strides=s, pads=p, ceil_mode=c)
    for k, s, p, c in itertools.product([[2, 2], [3, 3], [3, 2]], [[1, 1], [2, 2], [3, 2]],
                                        [[0, 0, 0, 0], [1, 1, 1, 1], [0, 1, 1, 0], [1, 0, 2, 1]], [0, 1])
    if all(pi < ki for pi, ki in zip(p, k + k))  # onnxruntime wants pads < kernel
]


@pytest.mark.parametrize("attrs", POOL_CASES, ids=str)
def test_max_pool(attrs, tmp_path):
    check_op("MaxPool", {"x": XP}, attrs, tmpdir=str(tmp_path))


@pytest.mark.parametrize("shape", [(1, 4, 13, 11), (2, 3, 24, 31)])
@pytest.mark.parametrize("strides,pads,ceil", [([2, 2], [0, 0, 0, 0], 1), ([2, 2], [1, 1, 1, 1], 0),
                                               ([1, 1], [1, 1, 1, 1], 0), ([2, 2], [0, 1, 2, 0], 1)])
def test_max_pool_3x3_planes(shape, strides, pads, ceil, tmp_path):
    """3x3 max pooling (the phase-plane kernel) on odd and even widths, ceil mode reaching past the input."""
    check_op("MaxPool", {"x": rand(*shape)}, dict(kernel_shape=[3, 3], strides=strides, pads=pads, ceil_mode=ceil),
             tmpdir=str(tmp_path))


@pytest.mark.parametrize("shape", [(1, 5, 2, 96), (2, 3, 9, 37), (1, 2, 3, 3)])
@pytest.mark.parametrize("ceil", [0, 1])
def test_max_pool_2x2(shape, ceil, tmp_path):
    """2x2 stride-2 max pooling (the pairwise kernel when every window is inside the input; ceil mode's windows
    hanging past an odd edge go the general way)."""
    check_op("MaxPool", {"x": rand(*shape)}, dict(kernel_shape=[2, 2], strides=[2, 2], ceil_mode=ceil),
             tmpdir=str(tmp_path))


@pytest.mark.parametrize("count_include_pad", [0, 1])
@pytest.mark.parametrize("attrs", POOL_CASES, ids=str)
def test_average_pool(attrs, count_include_pad, tmp_path):
    """With ceil_mode the last window may hang past the padded input: count_include_pad counts the declared
    padding there, not the overhang."""
    check_op("AveragePool", {"x": XP}, dict(attrs, count_include_pad=count_include_pad), tmpdir=str(tmp_path))


@pytest.mark.parametrize("op,extra", [("MaxPool", {}), ("AveragePool", {}), ("AveragePool", {"count_include_pad": 1})])
@pytest.mark.parametrize("auto_pad", ["SAME_UPPER", "SAME_LOWER", "VALID"])
@pytest.mark.parametrize("strides", [[1, 1], [2, 2], [3, 2]])
def test_pool_auto_pad(op, extra, auto_pad, strides, tmp_path):
    check_op(op, {"x": XP}, dict(kernel_shape=[3, 2], strides=strides, auto_pad=auto_pad, **extra),
             tmpdir=str(tmp_path))


@pytest.mark.parametrize("op", ["MaxPool", "AveragePool"])
@pytest.mark.parametrize("opset,attrs", [
    (9, dict(kernel_shape=[3, 3], strides=[2, 2])),
    (10, dict(kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1)),
    (13, dict(kernel_shape=[3, 3])),                                   # strides default to 1
    (19, dict(kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1, pads=[1, 1, 1, 1])),
    (19, dict(kernel_shape=[1, 1], strides=[2, 2])),
    (21, dict(kernel_shape=[3, 3], strides=[2, 2], dilations=[1, 1])),
])
def test_pool_opsets(op, opset, attrs, tmp_path):
    check_op(op, {"x": XP}, attrs, opset=opset, tmpdir=str(tmp_path))


@pytest.mark.parametrize("dtype", [np.uint8, np.int8])
def test_max_pool_integers(dtype, tmp_path):
    x = RNG.integers(np.iinfo(dtype).min, np.iinfo(dtype).max, (1, 2, 6, 7)).astype(dtype)
    check_op("MaxPool", {"x": x}, dict(kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[2, 2]), opset=12,
             tmpdir=str(tmp_path))


@pytest.mark.parametrize("op", ["GlobalAveragePool", "GlobalMaxPool"])
@pytest.mark.parametrize("shape", [(2, 3, 7, 8), (1, 5, 1, 1), (1, 2, 1, 9)])
def test_global_pool(op, shape, tmp_path):
    check_op(op, {"x": rand(*shape)}, tmpdir=str(tmp_path))


@pytest.mark.parametrize("op_type,w_shape,attrs", [("Conv", (6, 4, 3, 3), {"pads": [1, 1, 1, 1]}),
                                                    ("Conv", (4, 1, 3, 3), {"group": 4}),
                                                    ("ConvTranspose", (4, 3, 3, 3), {"strides": [2, 2]})])
def test_conv_runtime_weights(op_type, w_shape, attrs, tmp_path):
    """Filter and bias fed at run time (no load-time filter transform)."""
    n_out = w_shape[1] * attrs.get("group", 1) if op_type == "ConvTranspose" else w_shape[0]
    check_op(op_type, {"x": rand(1, 4, 7, 8), "w": rand(*w_shape), "b": rand(n_out)}, attrs, tmpdir=str(tmp_path))


@pytest.mark.parametrize("k,group", [(1, 1), (3, 1), (3, 4)])
def test_conv_constant_filter_runtime_bias(k, group, tmp_path):
    """A constant filter (prepared at load: pointwise, im2col, depthwise) with a bias fed at run time."""
    o = 4 if group == 4 else 6
    check_op("Conv", {"x": rand(2, 4, 7, 8), "b": rand(o)}, {"pads": [k // 2] * 4, "group": group},
             consts={"w": rand(o, 4 // group, k, k)}, input_order=["x", "w", "b"], tmpdir=str(tmp_path))


@pytest.mark.parametrize("r_type,match", [(("float32", (1, 6, 7, 8)), r"residual input has shape \(1, 6, 7, 8\)"),
                                           (("int64", (1, 6, 5, 6)), "residual input is int64")])
def test_conv_residual_of_the_wrong_type_names_the_node(r_type, match):
    """A conv2d whose ResidualData does not match its output (a hand-made graph: the fusion never makes one)."""
    from liteopt.ir import Graph, infer_shapes
    from liteopt.ir.errors import ShapeError
    t = {"x": Tensor("x", DType.FLOAT32, (1, 4, 7, 8)), "w": Tensor("w", DType.FLOAT32, (6, 4, 3, 3), rand(6, 4, 3, 3)),
         "r": Tensor("r", DType(r_type[0]), r_type[1]), "y": Tensor("y", DType.FLOAT32, None)}
    g = Graph([Node("conv2d", ["x", "w", "", "r"], ["y"], OPS["conv2d"].normalize_attrs({}, "c"), "block1_conv")],
              ["x", "r"], ["y"], t)
    with pytest.raises(ShapeError, match=f"block1_conv.*{match}"):
        infer_shapes(g)


# --- unsupported attributes name the node --------------------------------------------------------

@pytest.mark.parametrize("op_type,inputs,attrs,consts,match", [
    ("MaxPool", {"x": XP}, dict(kernel_shape=[2, 2], dilations=[2, 2]), {}, "dilated pooling"),
    ("Conv", {"x": X}, dict(auto_pad="SAME_UPPER", strides=[2, 2]), {"w": rand(6, 4, 3, 3)}, "input_shape"),
    ("Conv", {"x": rand(1, 4, 9)}, {}, {"w": rand(6, 4, 3)}, "rank 4"),
])
def test_conv_errors(op_type, inputs, attrs, consts, match, tmp_path):
    dynamic = {"x": ["N", 4, "H", "W"]} if op_type == "Conv" and "auto_pad" in attrs else None
    with pytest.raises(LiteoptError, match=match):
        check_op(op_type, inputs, attrs, consts=consts, dynamic=dynamic, tmpdir=str(tmp_path))


# --- dynamic input shapes: one .nb, several input sizes ---------------------------------------------

def check_dynamic(node, decl, consts, feeds_list, tmp_path):
    """Convert once with symbolic dims, then run several input shapes through the same .nb (both targets)."""
    model = make_model([node], decl, ["y"], consts)
    path = convert(model, str(tmp_path), valid_targets="cpu,ref")
    for target in ("cpu", "ref"):
        pred = load(path, target=target)
        for feeds in feeds_list:
            (got,) = pred(feeds).values()
            assert_close(got, run_ort(model, feeds)[0], what=f"[{target}] {feeds['x'].shape}")


SIZES = [(1, 4, 9, 11), (2, 4, 16, 5), (1, 4, 3, 3)]


@pytest.mark.parametrize("op_type,w_shape,attrs", [
    ("Conv", (6, 4, 3, 3), dict(pads=[1, 1, 1, 1])),
    ("Conv", (6, 4, 3, 3), dict(strides=[2, 2], pads=[0, 1, 1, 0])),
    ("Conv", (6, 4, 3, 2), dict(auto_pad="SAME_UPPER")),              # stride 1: pads independent of the size
    ("Conv", (6, 4, 2, 3), dict(auto_pad="SAME_LOWER", dilations=[1, 1])),
    ("Conv", (4, 1, 3, 3), dict(group=4, strides=[2, 2], pads=[1, 1, 1, 1])),
    ("Conv", (4, 1, 3, 3), dict(group=4, auto_pad="SAME_UPPER")),
    ("Conv", (6, 2, 1, 1), dict(group=2)),
    ("ConvTranspose", (4, 3, 3, 3), dict(strides=[2, 2], pads=[1, 0, 1, 0])),
    ("ConvTranspose", (4, 3, 3, 3), dict(strides=[2, 2], auto_pad="SAME_UPPER")),  # crop independent of the size
    ("ConvTranspose", (4, 3, 4, 4), dict(strides=[2, 2], auto_pad="SAME_LOWER")),
])
def test_conv_dynamic(op_type, w_shape, attrs, tmp_path):
    node = helper.make_node(op_type, ["x", "w", "b"], ["y"], **attrs)
    n_out = w_shape[1] * attrs.get("group", 1) if op_type == "ConvTranspose" else w_shape[0]
    check_dynamic(node, {"x": (np.float32, ["N", 4, "H", "W"])}, {"w": rand(*w_shape), "b": rand(n_out)},
                  [{"x": rand(*s)} for s in SIZES], tmp_path)


@pytest.mark.parametrize("op_type,attrs", [
    ("MaxPool", dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], ceil_mode=1)),
    ("AveragePool", dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], ceil_mode=1, count_include_pad=1)),
    ("AveragePool", dict(kernel_shape=[2, 2], strides=[2, 2], ceil_mode=1)),
    ("MaxPool", dict(kernel_shape=[3, 3], auto_pad="SAME_UPPER")),
    ("AveragePool", dict(kernel_shape=[2, 3], auto_pad="SAME_LOWER")),
    ("GlobalAveragePool", {}),
    ("GlobalMaxPool", {}),
])
def test_pool_dynamic(op_type, attrs, tmp_path):
    node = helper.make_node(op_type, ["x"], ["y"], **attrs)
    check_dynamic(node, {"x": (np.float32, ["N", "C", "H", "W"])}, {}, [{"x": rand(*s)} for s in SIZES], tmp_path)


# --- fused bias + activation epilogues (no ONNX op produces them: the kernels are called directly) ---

# act_type -> act_alpha; the first six are compiled into the epilogue, the rest fall back to the activation op
ACTS = {"": 0.0, "relu": 0.0, "relu6": 6.0, "leaky_relu": 0.1, "hard_swish": 0.0, "sigmoid": 0.0, "swish": 1.5,
        "hard_sigmoid": 1 / 6, "tanh": 0.0, "elu": 0.0, "gelu": 0.0, "softplus": 0.0}
ACT_PARAM = {"leaky_relu": "alpha", "relu6": "threshold", "swish": "beta", "hard_sigmoid": "slope"}

CONV_NODES = [  # op, x, w, attrs (depthwise 3x3 takes the direct kernel, 7x7 / dilated the grouped GEMM)
    ("conv2d", rand(2, 4, 9, 11, scale=2), rand(6, 4, 3, 3), dict(strides=(2, 1), paddings=(1, 0, 2, 1))),
    ("conv2d", rand(1, 4, 6, 7, scale=2), rand(6, 2, 1, 1), dict(groups=2)),
    ("conv2d", rand(1, 8, 18, 17), rand(8, 8, 3, 3, scale=0.3), dict(paddings=(1, 1, 1, 1))),  # + Winograd variants
    ("depthwise_conv2d", rand(2, 4, 9, 11, scale=2), rand(4, 1, 3, 3), dict(groups=4, paddings=(1, 1, 1, 1))),
    ("depthwise_conv2d", rand(2, 4, 9, 11, scale=2), rand(4, 1, 3, 3), dict(groups=4, dilations=(2, 2))),
    ("depthwise_conv2d", rand(1, 4, 9, 11, scale=2), rand(4, 1, 7, 7), dict(groups=4, paddings=(3, 3, 2, 1))),
    ("conv2d_transpose", rand(2, 4, 5, 6, scale=2), rand(4, 3, 3, 3), dict(strides=(2, 2), paddings=(1, 0, 0, 1),
                                                                           output_padding=(1, 1))),
]


def op_attrs(op, **kw):
    a = {k: v.default for k, v in OPS[op].attrs.items()}
    a.update(kw)
    return a


def cpu_variants(op, *arrays, **attrs):
    """The cpu kernels (name, Kernel) whose `applies` accepts a node of `op` on these arrays (None = absent),
    each with the function to call (after its load-time `prepare`, as the runtime does)."""
    K.load_all()
    names = [f"in{i}" if a is not None else "" for i, a in enumerate(arrays)]
    tensors = {n: Tensor(n, DType.of(a), a.shape, a if i else None) for i, (n, a) in enumerate(zip(names, arrays)) if n}
    y = OPS[op].run(*arrays, **attrs)[0]
    tensors["y"] = Tensor("y", DType.of(y), y.shape)
    node = Node(op, names, ["y"], attrs)
    out = []
    for name, k in sorted(K.KERNELS[(op, "cpu")].items()):
        if k.applies is None or k.applies(node, tensors):
            fn = (k.prepare([None, *arrays[1:]], attrs) if k.prepare else None) or k.fn
            out.append((name, k, fn))
    assert out, f"no cpu kernel applies to {op}"
    return out


@pytest.mark.parametrize("act", list(ACTS))
@pytest.mark.parametrize("case", range(len(CONV_NODES)))
@pytest.mark.parametrize("bias", [True, False])
def test_fused_epilogue(act, case, bias):
    """Every cpu variant of the conv ops with act_type/act_alpha equals the unfused conv followed by the
    activation op's own reference (its attributes at their defaults, act_alpha in its one parameter)."""
    op, x, w, kw = CONV_NODES[case]
    n_out = w.shape[1] * kw.get("groups", 1) if op == "conv2d_transpose" else w.shape[0]
    b = rand(n_out) if bias else None
    plain = OPS[op].run(x, w, b, **op_attrs(op, **kw))[0]
    act_attrs = op_attrs(act, **({ACT_PARAM[act]: ACTS[act]} if act in ACT_PARAM else {})) if act else {}
    expected = OPS[act].run(plain, **act_attrs)[0] if act else plain
    attrs = op_attrs(op, **kw, act_type=act, act_alpha=ACTS[act])
    assert_close(OPS[op].run(x, w, b, **attrs)[0], expected, what=f"{op} reference")
    for name, k, fn in cpu_variants(op, x, w, b, **attrs):
        for out in ((None, np.full(expected.shape, np.nan, np.float32)) if k.out else (None,)):
            extra = {"out": out} if k.out else {}
            got = fn(x, w, b, **attrs, **extra)
            assert out is None or got is out
            assert_close(got, expected, what=f"{op} cpu/{name} (out={out is not None})")


def test_kernels_do_not_write_inputs():
    """Weights are read-only mmap views: every conv/pool kernel must work on read-only inputs."""
    for op, x, w, kw in CONV_NODES:
        x, w = x.copy(), w.copy()
        x.flags.writeable = w.flags.writeable = False
        attrs = op_attrs(op, **kw, act_type="relu")
        for _, _, fn in cpu_variants(op, x, w, None, **attrs):
            fn(x, w, None, **attrs)
    x = rand(1, 3, 7, 8)
    x.flags.writeable = False
    attrs = op_attrs("pool2d", ksize=(3, 3), paddings=(1, 1, 1, 1))
    for _, _, fn in cpu_variants("pool2d", x, **attrs):
        fn(x, **attrs)


@pytest.mark.parametrize("op,x,w,attrs", [
    ("conv2d", (1, 32, 112, 112), (64, 32, 1, 1), {}),
    ("conv2d", (1, 3, 224, 224), (32, 3, 3, 3), dict(strides=(2, 2), paddings=(1, 1, 1, 1))),
    ("conv2d", (1, 64, 56, 56), (64, 64, 3, 3), dict(paddings=(1, 1, 1, 1))),
    ("depthwise_conv2d", (1, 96, 112, 112), (96, 1, 3, 3), dict(groups=96, paddings=(1, 1, 1, 1))),
    ("depthwise_conv2d", (1, 96, 56, 56), (96, 1, 7, 7), dict(groups=96, paddings=(3, 3, 3, 3))),
    ("conv2d_transpose", (1, 64, 56, 56), (64, 32, 4, 4), dict(strides=(2, 2), paddings=(1, 1, 1, 1))),
    ("pool2d", (1, 64, 112, 112), None, dict(ksize=(3, 3), strides=(2, 2), paddings=(1, 1, 1, 1))),
])
def test_mobilenet_size_layers_are_fast(op, x, w, attrs):
    """MobileNet-size layers take well under a second on every cpu variant that `opt` could pick."""
    import time
    x = rand(*x)
    args = (x,) if w is None else (x, rand(*w), None)
    attrs = op_attrs(op, **attrs)
    for name, _, fn in cpu_variants(op, *args, **attrs):
        fn(*args, **attrs)  # compile / warm up
        t0 = time.perf_counter()
        fn(*args, **attrs)
        assert time.perf_counter() - t0 < 0.5, f"{op} cpu/{name} is slow"
