"""nn ops through liteopt vs onnxruntime: BatchNormalization, Softmax by opset, MatMul, Gemm, LayerNorm,
Resize/Upsample modes, Pad modes."""
import numpy as np
import pytest

from helpers import check_op

RNG = np.random.default_rng(0)
X = RNG.standard_normal((2, 3, 5, 6)).astype(np.float32)
F, I64 = np.float32, np.int64


def r(*shape):
    return RNG.standard_normal(shape).astype(F)


def test_batch_norm(tmp_path):
    consts = {"s": r(3), "b": r(3), "m": r(3), "v": np.abs(r(3)) + 0.5}
    check_op("BatchNormalization", {"x": X}, {"epsilon": 1e-3}, consts=consts, tmpdir=str(tmp_path))
    check_op("BatchNormalization", {"x": X[:, :, 0, 0]}, consts=consts, opset=15, tmpdir=str(tmp_path))


@pytest.mark.parametrize("op", ["Softmax", "LogSoftmax"])
@pytest.mark.parametrize("opset,axis", [(11, 1), (11, -1), (12, 2), (13, 1), (13, -1)])
def test_softmax(op, opset, axis, tmp_path):
    check_op(op, {"x": X * 3}, {"axis": axis}, opset=opset, tmpdir=str(tmp_path))


def test_softmax_opset11_dynamic(tmp_path):
    check_op("Softmax", {"x": X}, {"axis": 1}, opset=11, dynamic={"x": ["N", 3, "H", "W"]}, tmpdir=str(tmp_path))


@pytest.mark.parametrize("a,b", [((3, 4), (4, 5)), ((2, 3, 4), (4, 5)), ((2, 3, 4), (2, 4, 6)), ((4,), (4, 3)),
                                 ((2, 3, 4), (4,)), ((1, 2, 3, 4), (5, 1, 4, 2))])
def test_matmul(a, b, tmp_path):
    check_op("MatMul", {"a": r(*a), "b": r(*b)}, tmpdir=str(tmp_path))


@pytest.mark.parametrize("attrs,cshape", [({}, (5,)), ({"transB": 1}, (1, 5)), ({"transA": 1, "alpha": 0.5}, (3, 5)),
                                          ({"beta": 2.0}, ()), ({"alpha": 2.0}, None)])
def test_gemm(attrs, cshape, tmp_path):
    a = r(4, 3) if attrs.get("transA") else r(3, 4)
    b = r(5, 4) if attrs.get("transB") else r(4, 5)
    consts = {"b": b, **({"c": r(*cshape)} if cshape is not None else {})}
    check_op("Gemm", {"a": a}, attrs, consts=consts, tmpdir=str(tmp_path))


@pytest.mark.parametrize("axis", [-1, 2])
def test_layer_norm(axis, tmp_path):
    shape = X.shape[axis:] if axis != -1 else X.shape[-1:]
    check_op("LayerNormalization", {"x": X}, {"axis": axis, "epsilon": 1e-5}, consts={"g": r(*shape), "b": r(*shape)},
             opset=17, tmpdir=str(tmp_path))


MODES = ["half_pixel", "align_corners", "asymmetric", "pytorch_half_pixel"]


@pytest.mark.parametrize("mode", ["nearest", "linear"])
@pytest.mark.parametrize("coord", MODES)
@pytest.mark.parametrize("nearest_mode", ["round_prefer_floor", "floor", "ceil", "round_prefer_ceil"])
def test_resize_scales(mode, coord, nearest_mode, tmp_path):
    if mode == "linear" and nearest_mode != "round_prefer_floor":
        return
    consts = {"roi": np.zeros(0, F), "sc": np.array([1, 1, 2.0, 1.5], F)}
    check_op("Resize", {"x": X}, {"mode": mode, "coordinate_transformation_mode": coord, "nearest_mode": nearest_mode},
             consts=consts, opset=13, tmpdir=str(tmp_path))


@pytest.mark.parametrize("mode", ["nearest", "linear"])
@pytest.mark.parametrize("sizes", [(2, 3, 9, 4), (2, 3, 3, 12)])
def test_resize_sizes(mode, sizes, tmp_path):
    consts = {"roi": np.zeros(0, F), "sc": np.zeros(0, F), "sz": np.array(sizes, I64)}
    check_op("Resize", {"x": X}, {"mode": mode}, consts=consts, opset=11, tmpdir=str(tmp_path))


def test_resize_opset10_and_upsample(tmp_path):
    check_op("Resize", {"x": X}, {"mode": "nearest"}, consts={"sc": np.array([1, 1, 2, 2], F)}, opset=10,
             tmpdir=str(tmp_path))
    check_op("Upsample", {"x": X}, {"mode": "nearest"}, consts={"sc": np.array([1, 1, 2, 3], F)}, opset=9,
             tmpdir=str(tmp_path))


def test_resize_dynamic_input(tmp_path):
    consts = {"roi": np.zeros(0, F), "sc": np.array([1, 1, 2.0, 2.0], F)}
    check_op("Resize", {"x": X}, {"mode": "nearest"}, consts=consts, opset=13, dynamic={"x": ["N", 3, "H", "W"]},
             tmpdir=str(tmp_path))


@pytest.mark.parametrize("mode", ["constant", "reflect", "edge"])
@pytest.mark.parametrize("pads", [[0, 0, 1, 2, 0, 0, 2, 1], [0, 1, 0, 0, 0, 0, 1, 3]])
def test_pad(mode, pads, tmp_path):
    consts = {"p": np.array(pads, I64), **({"v": np.array(1.5, F)} if mode == "constant" else {})}
    check_op("Pad", {"x": X}, {"mode": mode}, consts=consts, tmpdir=str(tmp_path))


def test_pad_negative_and_opset2(tmp_path):
    check_op("Pad", {"x": X}, consts={"p": np.array([0, 0, -1, 2, 0, 0, 1, -2], I64)}, tmpdir=str(tmp_path))
    check_op("Pad", {"x": X}, {"pads": [0, 0, 1, 1, 0, 0, 1, 1], "value": 2.0}, opset=10, tmpdir=str(tmp_path))
