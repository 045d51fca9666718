"""nn ops through liteopt vs onnxruntime: BatchNormalization, InstanceNormalization, Softmax/LogSoftmax by
opset, MatMul, Gemm, LayerNormalization, Resize/Upsample modes, Pad modes; dynamic shapes through one .nb."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from onnx import helper

from helpers import assert_close, check_model, check_op, convert, make_model, run_ort

from liteopt.format import read
from liteopt.ir import OPS
from liteopt.ir.errors import ConversionError, LiteoptError
from liteopt.runtime import load

RNG = np.random.default_rng(0)
X = RNG.standard_normal((2, 3, 5, 6)).astype(np.float32)
F, I64 = np.float32, np.int64
DYN = {"x": ["N", 3, "H", "W"]}
SIZES = [(2, 3, 5, 6), (1, 3, 8, 3), (3, 3, 1, 7)]


def r(*shape):
    return RNG.standard_normal(shape).astype(F)


def ops_in(tmp_path):
    """Op counts of the .nb the last check wrote into tmp_path."""
    return read(str(tmp_path / "model.nb")).graph.op_counts()


def check_dynamic(node, consts, tmp_path, opset=13, shapes=SIZES, decl=DYN):
    """Convert once with symbolic dims, then run several input shapes through the same .nb (both targets)."""
    model = make_model([node], {k: (F, v) for k, v in decl.items()}, [node.output[0]], consts, opset=opset)
    path = convert(model, str(tmp_path), valid_targets="cpu,ref")
    for target in ("cpu", "ref"):
        pred = load(path, target=target)
        for s in shapes:
            feeds = {"x": r(*s)}
            (got,) = pred(feeds).values()
            assert_close(got, run_ort(model, feeds)[0], what=f"[{target}] {s}")


def bn_consts(c=3):
    return {"s": r(c), "b": r(c), "m": r(c), "v": np.abs(r(c)) + 0.5}


# --- normalization ---------------------------------------------------------------------------------

@pytest.mark.parametrize("opset", [9, 14, 15])
@pytest.mark.parametrize("shape", [(2, 3), (2, 3, 7), (2, 3, 4, 5), (1, 3, 2, 3, 2)])
def test_batch_norm(opset, shape, tmp_path):
    check_op("BatchNormalization", {"x": r(*shape)}, {"epsilon": 1e-3}, consts=bn_consts(), opset=opset,
             tmpdir=str(tmp_path))
    assert ops_in(tmp_path) == {"batch_norm": 1}


def test_batch_norm_dynamic(tmp_path):
    check_dynamic(helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"]), bn_consts(), tmp_path)


def test_instance_norm(tmp_path):
    check_op("InstanceNormalization", {"x": X}, {"epsilon": 1e-3}, consts={"s": r(3), "b": r(3)}, tmpdir=str(tmp_path))
    check_op("InstanceNormalization", {"x": r(2, 3, 7)}, consts={"s": r(3), "b": r(3)}, tmpdir=str(tmp_path))


@pytest.mark.parametrize("axis", [-1, 2, 1, 0, -2])
@pytest.mark.parametrize("bias", [True, False])
def test_layer_norm(axis, bias, tmp_path):
    shape = X.shape[axis:]
    consts = {"g": r(*shape), **({"b": r(*shape)} if bias else {})}
    check_op("LayerNormalization", {"x": X}, {"axis": axis, "epsilon": 1e-5}, consts=consts, opset=17,
             tmpdir=str(tmp_path))


def test_layer_norm_dynamic(tmp_path):
    node = helper.make_node("LayerNormalization", ["x", "g", "b"], ["y"], axis=-1)
    check_dynamic(node, {"g": r(6), "b": r(6)}, tmp_path, opset=17, shapes=[(2, 3, 5, 6), (1, 3, 2, 6)],
                  decl={"x": ["N", 3, "H", 6]})


# --- softmax ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("op", ["Softmax", "LogSoftmax"])
@pytest.mark.parametrize("opset,axis", [(11, 1), (11, -1), (11, 0), (12, 2), (12, -3), (13, 1), (13, -1), (13, 0)])
def test_softmax(op, opset, axis, tmp_path):
    check_op(op, {"x": X * 3}, {"axis": axis}, opset=opset, tmpdir=str(tmp_path))


@pytest.mark.parametrize("op", ["Softmax", "LogSoftmax"])
@pytest.mark.parametrize("shape,axis", [((1, 16, 4, 37), 1), ((2, 5, 3, 7), 2), ((3, 1000), -1), ((2, 3, 70), 0)])
def test_softmax_large_values(op, shape, axis, tmp_path):
    """Inner axes (YOLOv8's DFL: softmax over 16 of (1, 16, 4, anchors)) and rows of 1000, with inputs up to
    ~100 (the exponentials of x - max underflow to 0 for most)."""
    x = (np.random.default_rng(1).standard_normal(shape) * 30).astype(np.float32)
    check_op(op, {"x": x}, {"axis": axis}, opset=13, tmpdir=str(tmp_path))


@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
def test_softmax_kernel_other_float_types(op):
    """The cpu kernel on float16/float64 arrays (no model input has them; an op inside one could): the op's
    reference, in their precision."""
    from liteopt.runtime.kernels import nn as kernels
    for dtype in (np.float16, np.float64):
        x = (X * 3).astype(dtype)
        got = getattr(kernels, op)(x, axis=1)
        assert got.dtype == dtype
        np.testing.assert_allclose(got, OPS[op].run(x.astype(np.float64), axis=1)[0], rtol=2e-3, atol=2e-3)


@pytest.mark.parametrize("op", ["Softmax", "LogSoftmax"])
@pytest.mark.parametrize("opset", [9, 13])
def test_softmax_default_axis(op, opset, tmp_path):
    check_op(op, {"x": X}, opset=opset, tmpdir=str(tmp_path))


@pytest.mark.parametrize("op", ["Softmax", "LogSoftmax"])
@pytest.mark.parametrize("opset,axis", [(11, 1), (11, 2), (12, -3), (13, 1), (13, -2)])
def test_softmax_dynamic(op, opset, axis, tmp_path):
    """opset < 13 on a symbolic shape: flatten -> softmax(-1) -> reshape back to shape(x) at run time"""
    check_dynamic(helper.make_node(op, ["x"], ["y"], axis=axis), {}, tmp_path, opset=opset)


# --- matmul / gemm ---------------------------------------------------------------------------------

@pytest.mark.parametrize("a,b", [((3, 4), (4, 5)), ((2, 3, 4), (4, 5)), ((2, 3, 4), (2, 4, 6)), ((4,), (4, 3)),
                                 ((2, 3, 4), (4,)), ((4,), (4,)), ((4,), (2, 4, 3)), ((1, 2, 3, 4), (5, 1, 4, 2)),
                                 ((3, 1, 2, 4), (5, 4, 3))])
def test_matmul(a, b, tmp_path):
    check_op("MatMul", {"a": r(*a), "b": r(*b)}, tmpdir=str(tmp_path))


def test_matmul_constant_weight_is_fc(tmp_path):
    check_op("MatMul", {"a": r(2, 3, 4)}, consts={"b": r(4, 5)}, tmpdir=str(tmp_path))
    assert ops_in(tmp_path) == {"fc": 1}
    check_op("MatMul", {"a": r(2, 3, 4)}, consts={"b": r(4, 5)}, dynamic={"a": ["N", "T", 4]}, tmpdir=str(tmp_path))


@pytest.mark.parametrize("attrs,cshape", [({}, (5,)), ({"transB": 1}, (1, 5)), ({"transA": 1, "alpha": 0.5}, (3, 5)),
                                          ({"beta": 2.0}, ()), ({"alpha": 2.0}, None), ({"beta": 0.5}, (3, 1)),
                                          ({"transA": 1, "transB": 1, "alpha": 0.7, "beta": 0.3}, (1, 1))])
@pytest.mark.parametrize("opset", [9, 13])
def test_gemm(attrs, cshape, opset, tmp_path):
    a = r(4, 3) if attrs.get("transA") else r(3, 4)
    b = r(5, 4) if attrs.get("transB") else r(4, 5)
    if opset < 11 and cshape is None:  # C is optional since opset 11
        return
    consts = {"b": b, **({"c": r(*cshape)} if cshape is not None else {})}
    check_op("Gemm", {"a": a}, attrs, consts=consts, opset=opset, tmpdir=str(tmp_path))


@pytest.mark.parametrize("attrs", [{}, {"transA": 1, "transB": 1, "alpha": 0.5, "beta": 3.0}])
def test_gemm_runtime_operands(attrs, tmp_path):
    """B and C fed at run time: matmul_v2 with transposes, scale, elementwise_add stay unfused"""
    a = r(4, 3) if attrs.get("transA") else r(3, 4)
    b = r(5, 4) if attrs.get("transB") else r(4, 5)
    check_op("Gemm", {"a": a, "b": b, "c": r(3, 5)}, attrs, tmpdir=str(tmp_path))
    assert ops_in(tmp_path).get("matmul_v2") == 1


def test_gemm_constant_weight_is_one_fc(tmp_path):
    check_op("Gemm", {"a": r(3, 4)}, {"transB": 1, "alpha": 0.5, "beta": 2.0}, consts={"b": r(5, 4), "c": r(5)},
             tmpdir=str(tmp_path))
    assert ops_in(tmp_path) == {"fc": 1}
    check_op("Gemm", {"a": r(3, 4)}, {"beta": 0.0}, consts={"b": r(4, 5), "c": r(3, 5)}, tmpdir=str(tmp_path))


def test_gemm_relu_fuses_into_fc(tmp_path):
    nodes = [helper.make_node("Gemm", ["x", "w", "c"], ["g"], transB=1), helper.make_node("Relu", ["g"], ["y"])]
    model = make_model(nodes, {"x": r(3, 4)}, ["y"], {"w": r(5, 4), "c": r(5)})
    check_model(model, {"x": r(3, 4)}, tmpdir=str(tmp_path))
    assert ops_in(tmp_path) == {"fc": 1}


# --- resize ----------------------------------------------------------------------------------------

EMPTY = np.zeros(0, F)
COORDS = ["half_pixel", "align_corners", "asymmetric", "pytorch_half_pixel", "tf_half_pixel_for_nn"]
NEAREST = ["round_prefer_floor", "round_prefer_ceil", "floor", "ceil"]
CASES = [(m, c, n) for c in COORDS for n in NEAREST for m in ("nearest",)] + \
        [("linear", c, "round_prefer_floor") for c in COORDS if c != "tf_half_pixel_for_nn"]


@pytest.mark.parametrize("scales", [(1, 1, 2.0, 1.5), (1, 1, 0.5, 0.34), (1, 1, 1.7, 0.6)])
@pytest.mark.parametrize("mode,coord,nearest_mode", CASES)
def test_resize_scales(mode, coord, nearest_mode, scales, tmp_path):
    check_op("Resize", {"x": X}, {"mode": mode, "coordinate_transformation_mode": coord, "nearest_mode": nearest_mode},
             consts={"roi": EMPTY, "sc": np.array(scales, F)}, opset=13, tmpdir=str(tmp_path))


@pytest.mark.parametrize("mode", ["nearest", "linear"])
@pytest.mark.parametrize("coord", ["half_pixel", "align_corners", "asymmetric"])
@pytest.mark.parametrize("sizes", [(2, 3, 9, 4), (2, 3, 3, 12), (2, 3, 1, 1)])
def test_resize_sizes(mode, coord, sizes, tmp_path):
    consts = {"roi": EMPTY, "sc": EMPTY, "sz": np.array(sizes, I64)}
    check_op("Resize", {"x": X}, {"mode": mode, "coordinate_transformation_mode": coord}, consts=consts, opset=11,
             tmpdir=str(tmp_path))


@pytest.mark.parametrize("opset", [18, 19])
@pytest.mark.parametrize("mode", ["nearest", "linear"])
def test_resize_axes(opset, mode, tmp_path):
    check_op("Resize", {"x": X}, {"mode": mode, "axes": [2, 3]}, consts={"roi": EMPTY, "sc": np.array([1.7, 0.6], F)},
             opset=opset, tmpdir=str(tmp_path))
    check_op("Resize", {"x": X}, {"mode": mode, "axes": [-2, -1]},
             consts={"roi": EMPTY, "sc": EMPTY, "sz": np.array([7, 4], I64)}, opset=opset, tmpdir=str(tmp_path))
    check_op("Resize", {"x": X}, {"mode": mode, "axes": [0, 1, 2, 3]},
             consts={"roi": EMPTY, "sc": np.array([1, 1, 0.5, 2], F)}, opset=opset, tmpdir=str(tmp_path))


def test_resize_half_pixel_symmetric(tmp_path):
    check_op("Resize", {"x": X}, {"mode": "linear", "coordinate_transformation_mode": "half_pixel_symmetric"},
             consts={"roi": EMPTY, "sc": np.array([1, 1, 1.7, 0.6], F)}, opset=19, tmpdir=str(tmp_path))


@pytest.mark.parametrize("mode", ["nearest", "linear"])
@pytest.mark.parametrize("scales", [(1, 1, 2, 1.5), (1, 1, 0.6, 0.34), (1, 1, 3, 0.5)])
def test_resize_opset10_and_upsample(mode, scales, tmp_path):
    """asymmetric; nearest floors, but onnxruntime takes the ceiling along a downsampled axis"""
    consts = {"sc": np.array(scales, F)}
    check_op("Resize", {"x": r(1, 2, 10, 9)}, {"mode": mode}, consts=consts, opset=10, tmpdir=str(tmp_path))
    if min(scales) >= 1:  # onnxruntime's Upsample refuses to downsample
        check_op("Upsample", {"x": r(1, 2, 10, 9)}, {"mode": mode}, consts=consts, opset=9, tmpdir=str(tmp_path))


def test_resize_float32_sizes(tmp_path):
    """10 * 0.7f is 7 in float32 (onnxruntime) but 6.99999988 in float64"""
    check_op("Resize", {"x": r(1, 1, 10, 10)}, {"mode": "nearest"},
             consts={"roi": EMPTY, "sc": np.array([1, 1, 0.7, 1.3], F)}, tmpdir=str(tmp_path))


@pytest.mark.parametrize("mode", ["nearest", "linear"])
def test_resize_runtime_scales_and_sizes(mode, tmp_path):
    check_op("Resize", {"x": X, "sc": np.array([1, 1, 2.0, 1.5], F)}, {"mode": mode}, input_order=["x", "", "sc"],
             tmpdir=str(tmp_path))
    check_op("Resize", {"x": X, "sz": np.array([2, 3, 7, 11], I64)}, {"mode": mode}, input_order=["x", "", "", "sz"],
             tmpdir=str(tmp_path))


@pytest.mark.parametrize("mode,coord", [("nearest", "asymmetric"), ("nearest", "half_pixel"), ("linear", "half_pixel"),
                                        ("linear", "align_corners")])
def test_resize_dynamic(mode, coord, tmp_path):
    """constant scales on a symbolic input (the PP-OCR detector's upsampling)"""
    node = helper.make_node("Resize", ["x", "roi", "sc"], ["y"], mode=mode, coordinate_transformation_mode=coord)
    check_dynamic(node, {"roi": EMPTY, "sc": np.array([1, 1, 2.0, 2.0], F)}, tmp_path)


def test_resize_sizes_computed_from_shape(tmp_path):
    """sizes = concat(shape(x)[:2], shape(x)[2:] * 2) at run time, on a symbolic input"""
    nodes = [helper.make_node("Shape", ["x"], ["s"]),
             helper.make_node("Slice", ["s", "i2", "i4"], ["hw"]),
             helper.make_node("Mul", ["hw", "two"], ["hw2"]),
             helper.make_node("Slice", ["s", "i0", "i2"], ["nc"]),
             helper.make_node("Concat", ["nc", "hw2"], ["sz"], axis=0),
             helper.make_node("Resize", ["x", "", "", "sz"], ["y"], mode="linear")]
    consts = {k: np.array([v], I64) for k, v in {"i0": 0, "i2": 2, "i4": 4, "two": 2}.items()}
    model = make_model(nodes, {"x": (F, ["N", 3, "H", "W"])}, ["y"], consts)
    for s in SIZES[:2]:
        check_model(model, {"x": r(*s)}, tmpdir=str(tmp_path))


def near_tie(n, out, scale, coord, nearest_mode):
    """Whether some output index maps, in exact arithmetic, onto a rounding boundary of nearest_mode
    (x.5 for the round modes, an integer for floor/ceil). There the float32 result is a coin toss and
    onnxruntime 1.32 does not always land where its own float32 formula would."""
    if scale == 1 or out == n:
        return False
    i = np.arange(out) + (0.0 if coord in ("asymmetric", "align_corners") else 0.5)
    c = i * (n - 1) / max(out - 1, 1) if coord == "align_corners" else i / scale
    c = c - 0.5 if coord in ("half_pixel", "pytorch_half_pixel") else c
    frac = np.abs(c - np.floor(c) - (0.5 if nearest_mode.startswith("round") else 0.0))
    return bool(np.any(np.minimum(frac, 1 - frac) < 1e-4))


@settings(max_examples=25, deadline=None)
@given(h=st.integers(1, 7), w=st.integers(1, 7), sh=st.sampled_from([0.5, 0.6, 0.75, 1.0, 1.25, 1.5, 1.7, 2.0, 3.0]),
       sw=st.sampled_from([0.5, 0.6, 0.75, 1.0, 1.25, 1.5, 1.7, 2.0, 3.0]), case=st.sampled_from(CASES),
       by_size=st.booleans())
def test_resize_hypothesis(h, w, sh, sw, case, by_size, tmp_path_factory):
    mode, coord, nearest_mode = case
    oh, ow = int(h * np.float32(sh)), int(w * np.float32(sw))
    if oh < 1 or ow < 1:
        return
    if mode == "nearest" and (near_tie(h, oh, oh / h if by_size else sh, coord, nearest_mode) or
                              near_tie(w, ow, ow / w if by_size else sw, coord, nearest_mode)):
        return
    consts = {"roi": EMPTY, "sc": np.array([1, 1, sh, sw], F)}
    if by_size:
        consts.update(sc=EMPTY, sz=np.array([1, 2, oh, ow], I64))
    check_op("Resize", {"x": r(1, 2, h, w)},
             {"mode": mode, "coordinate_transformation_mode": coord, "nearest_mode": nearest_mode},
             consts=consts, tmpdir=str(tmp_path_factory.mktemp("rs")))


# --- pad -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["constant", "reflect", "edge"])
@pytest.mark.parametrize("pads", [[0, 0, 1, 2, 0, 0, 2, 1], [0, 1, 0, 0, 0, 0, 1, 3], [0, 0, -1, 2, 0, 0, 1, -2],
                                  [1, 0, 0, -2, 0, 0, -1, 0]])
def test_pad(mode, pads, tmp_path):
    consts = {"p": np.array(pads, I64), **({"v": np.array(1.5, F)} if mode == "constant" else {})}
    check_op("Pad", {"x": X}, {"mode": mode}, consts=consts, tmpdir=str(tmp_path))


@pytest.mark.parametrize("mode", ["constant", "reflect", "edge"])
def test_pad_attrs_opset_below_11(mode, tmp_path):
    check_op("Pad", {"x": X}, {"pads": [0, 0, 1, 1, 0, 0, 1, 1], "value": 2.0, "mode": mode}, opset=10,
             tmpdir=str(tmp_path))
    check_op("Pad", {"x": X}, {"pads": [0, 0, -1, 0, 0, 0, 2, -3], "mode": mode}, opset=9, tmpdir=str(tmp_path))


def test_pad_axes_opset18(tmp_path):
    consts = {"p": np.array([1, 2, 3, 0], I64), "v": np.array(0.5, F), "ax": np.array([-1, 1], I64)}
    check_op("Pad", {"x": X}, consts=consts, opset=18, tmpdir=str(tmp_path))


def test_pad_runtime_pads_and_int(tmp_path):
    check_op("Pad", {"x": X, "p": np.array([0, 0, 1, 2, 0, 0, 2, 1], I64)}, tmpdir=str(tmp_path))
    check_op("Pad", {"x": r(3, 4)}, {"mode": "edge"}, consts={"p": np.array([1, -1, 2, 2], I64)}, opset=13,
             tmpdir=str(tmp_path))
    check_op("Pad", {"x": np.arange(12, dtype=I64).reshape(3, 4)}, consts={"p": np.array([1, 0, 0, 2], I64),
             "v": np.array(7, I64)}, tmpdir=str(tmp_path))


@pytest.mark.parametrize("mode", ["constant", "reflect"])
def test_pad_dynamic(mode, tmp_path):
    node = helper.make_node("Pad", ["x", "p"], ["y"], mode=mode)
    check_dynamic(node, {"p": np.array([0, 0, 0, 1, 0, 0, 0, 1], I64)}, tmp_path,
                  shapes=[(2, 3, 5, 6), (1, 3, 2, 3)])


@settings(max_examples=20, deadline=None)
@given(shape=st.lists(st.integers(1, 5), min_size=1, max_size=4), mode=st.sampled_from(["constant", "reflect", "edge"]),
       data=st.data())
def test_pad_hypothesis(shape, mode, data, tmp_path_factory):
    before, after = [], []
    for n in shape:  # crop at most n - 1 in total; reflect pads stay below the (cropped) length
        b = data.draw(st.integers(-(n - 1), 3))
        a = data.draw(st.integers(-(n - 1 - max(0, -b)), 3))
        m = n - max(0, -b) - max(0, -a)
        if mode == "reflect":
            b, a = min(b, m - 1), min(a, m - 1)
        before.append(b)
        after.append(a)
    check_op("Pad", {"x": r(*shape)}, {"mode": mode}, consts={"p": np.array(before + after, I64)},
             tmpdir=str(tmp_path_factory.mktemp("pad")))


# --- unsupported attributes name the node ------------------------------------------------------------

@pytest.mark.parametrize("op_type,attrs,consts,opset,match", [
    ("Resize", {"mode": "cubic"}, {"roi": EMPTY, "sc": np.array([1, 1, 2, 2], F)}, 13, "cubic"),
    ("Resize", {"mode": "nearest"}, {"roi": EMPTY, "sc": np.array([1, 2, 2, 2], F)}, 13, "only H and W"),
    ("Resize", {"keep_aspect_ratio_policy": "not_larger"},
     {"roi": EMPTY, "sc": EMPTY, "sz": np.array([2, 3, 4, 4], I64)}, 18, "keep_aspect_ratio_policy"),
    ("Resize", {"antialias": 1, "mode": "linear"}, {"roi": EMPTY, "sc": np.array([1, 1, 0.5, 0.5], F)}, 18, "antialias"),
    ("BatchNormalization", {"training_mode": 1}, bn_consts(), 15, "training_mode"),
    ("Pad", {"mode": "wrap"}, {"p": np.array([0, 0, 1, 1, 0, 0, 1, 1], I64)}, 19, "wrap"),
])
def test_errors(op_type, attrs, consts, opset, match, tmp_path):
    node = helper.make_node(op_type, ["x", *consts], ["y"], **attrs)
    model = make_model([node], {"x": X}, ["y"], consts, opset=opset)
    with pytest.raises(LiteoptError, match=match):
        convert(model, str(tmp_path))


@pytest.mark.parametrize("equation,shapes", [
    ("B G H I D, B G H J D -> B G H I J", [(1, 2, 3, 4, 5), (1, 2, 3, 6, 5)]),  # (MaxViT's attention, spaced)
    ("bhij,bhjd->bhid", [(2, 3, 4, 5), (2, 3, 5, 6)]), ("bid,bjd->bji", [(2, 3, 4), (2, 5, 4)]),
    ("ij,jk", [(3, 4), (4, 5)]), ("...ij,...jk->...ik", [(2, 3, 4), (2, 4, 5)]), ("i,j->ij", [(3,), (4,)]),
    ("ij,ij->", [(3, 4), (3, 4)]), ("ij->ji", [(3, 4)]), ("ii->i", [(3, 3)]), ("bij->bj", [(2, 3, 4)]),
    ("ij,jk,kl->il", [(2, 3), (3, 4), (4, 5)]), ("bij,bjk->bik", [(1, 3, 4), (2, 4, 5)])])
def test_einsum(equation, shapes, tmp_path):
    """Two operands as one batched matmul (also with an ellipsis and an implicit output); the rest (one or three
    operands, a diagonal, a broadcast batch) by numpy's einsum. (The output's type declared from numpy's.)"""
    inputs = {f"x{i}": r(*s) for i, s in enumerate(shapes)}
    out = np.einsum(equation.replace(" ", ""), *inputs.values())
    node = helper.make_node("Einsum", list(inputs), ["y"], equation=equation)
    model = make_model([node], inputs, ["y"], opset=12, output_shapes={"y": (np.float32, list(out.shape))})
    check_model(model, inputs, tmpdir=str(tmp_path))


def test_einsum_that_does_not_fit_its_operands(tmp_path):
    """An equation whose terms do not fit the operands' ranks: opt names the node and the equation."""
    node = helper.make_node("Einsum", ["a", "b"], ["y"], equation="ijk,jk->ik", name="attn")
    model = make_model([node], {"a": r(3, 4), "b": r(4, 5)}, ["y"], opset=12,
                       output_shapes={"y": (np.float32, [3, 5])})
    with pytest.raises(ConversionError, match="'attn'.*einsum 'ijk,jk->ik'.*'ijk' does not fit an operand of rank 2"):
        convert(model, str(tmp_path))


@pytest.mark.parametrize("size", [5, 1])
def test_lrn(size, tmp_path):
    """ONNX LRN as the lrn op Caffe's LRN uses."""
    check_op("LRN", {"x": r(2, 7, 3, 4) * 3}, {"size": size, "alpha": 0.02, "beta": 0.75, "bias": 1.5},
             tmpdir=str(tmp_path))


def test_lrn_of_even_size(tmp_path):
    """onnxruntime refuses an even size; the ONNX spec's formula, written out here, is the reference: the sum
    over channels c - floor((size-1)/2) .. c + ceil((size-1)/2)."""
    x, size, alpha, beta, bias = r(1, 6, 2, 3) * 3, 4, 0.02, 0.75, 1.5
    node = helper.make_node("LRN", ["x"], ["y"], size=size, alpha=alpha, beta=beta, bias=bias)
    model = make_model([node], {"x": x}, ["y"], output_shapes={"y": (np.float32, list(x.shape))})
    got = load(convert(model, str(tmp_path)))({"x": x})["y"]
    want = np.empty_like(x)
    for c in range(6):
        lo, hi = max(0, c - (size - 1) // 2), min(5, c + -(-(size - 1) // 2))
        want[:, c] = x[:, c] / (bias + alpha / size * (x[:, lo:hi + 1] ** 2).sum(axis=1)) ** beta
    assert_close(got, want, 1e-5)
