"""Data-movement and shape ops through liteopt vs onnxruntime, including run-time shape arithmetic."""
import numpy as np
import pytest
from onnx import helper

from helpers import check_model, check_op, make_model

RNG = np.random.default_rng(0)
X = RNG.standard_normal((2, 3, 4, 5)).astype(np.float32)
I64 = np.int64


@pytest.mark.parametrize("shape", [(6, 20), (0, -1), (2, -1, 5), (-1,), (2, 3, 20, 1)])
def test_reshape(shape, tmp_path):
    check_op("Reshape", {"x": X}, consts={"s": np.array(shape, I64)}, tmpdir=str(tmp_path))


@pytest.mark.parametrize("perm", [None, [0, 2, 3, 1], [3, 1, 0, 2]])
def test_transpose(perm, tmp_path):
    check_op("Transpose", {"x": X}, {} if perm is None else {"perm": perm}, tmpdir=str(tmp_path))


@pytest.mark.parametrize("opset", [11, 13])
def test_squeeze_unsqueeze(opset, tmp_path):
    x = RNG.standard_normal((2, 1, 3, 1)).astype(np.float32)
    if opset < 13:
        check_op("Squeeze", {"x": x}, {"axes": [1, -1]}, opset=opset, tmpdir=str(tmp_path))
        check_op("Unsqueeze", {"x": x}, {"axes": [0, -1]}, opset=opset, tmpdir=str(tmp_path))
    else:
        check_op("Squeeze", {"x": x}, consts={"a": np.array([1, -1], I64)}, opset=opset, tmpdir=str(tmp_path))
        check_op("Squeeze", {"x": x}, opset=opset, tmpdir=str(tmp_path))
        check_op("Unsqueeze", {"x": x}, consts={"a": np.array([0, 5], I64)}, opset=opset, tmpdir=str(tmp_path))


@pytest.mark.parametrize("axis", [0, 1, 2, 4])
def test_flatten(axis, tmp_path):
    check_op("Flatten", {"x": X}, {"axis": axis}, tmpdir=str(tmp_path))


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_concat(axis, tmp_path):
    y = np.concatenate([X, X], axis=axis) * 2
    check_op("Concat", {"x": X, "y": y}, {"axis": axis}, tmpdir=str(tmp_path))


@pytest.mark.parametrize("opset,attrs,sizes", [(11, {"axis": 0}, None), (11, {"axis": -1, "split": [2, 3]}, None),
                                               (13, {"axis": 3}, [1, 4]), (18, {"axis": 2, "num_outputs": 2}, None)])
def test_split(opset, attrs, sizes, tmp_path):
    n = len(attrs.get("split", sizes or [0, 0]))
    if "num_outputs" in attrs:
        n = attrs["num_outputs"]
    consts = {"s": np.array(sizes, I64)} if sizes else {}
    check_op("Split", {"x": X}, attrs, consts=consts, n_outputs=n, opset=opset, tmpdir=str(tmp_path))


@pytest.mark.parametrize("starts,ends,axes,steps", [
    ([1], [3], [1], None), ([0, 1], [2, -1], [2, 3], None), ([-1], [-1000], [3], [-1]),
    ([0], [2 ** 63 - 1], [2], [2]), ([3], [0], [2], [-2]), ([1, 0], [2, 5], [0, -1], [1, 3])])
def test_slice(starts, ends, axes, steps, tmp_path):
    consts = {"st": np.array(starts, I64), "en": np.array(ends, I64), "ax": np.array(axes, I64)}
    if steps:
        consts["sp"] = np.array(steps, I64)
    check_op("Slice", {"x": X}, consts=consts, tmpdir=str(tmp_path))


def test_slice_opset9(tmp_path):
    check_op("Slice", {"x": X}, {"starts": [1, 0], "ends": [3, -1], "axes": [1, 3]}, opset=9, tmpdir=str(tmp_path))


@pytest.mark.parametrize("index,axis", [(np.array(1, I64), 0), (np.array([2, -1, 0], I64), 3),
                                        (np.array([[0, 1], [2, 2]], I64), 1)])
def test_gather(index, axis, tmp_path):
    check_op("Gather", {"x": X}, {"axis": axis}, consts={"i": index}, tmpdir=str(tmp_path))


def test_gather_int64_data(tmp_path):
    check_op("Gather", {"x": np.arange(12, dtype=I64).reshape(3, 4)}, {"axis": 1}, consts={"i": np.array([3, 0], I64)},
             tmpdir=str(tmp_path))


@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (3, 1, 1), (1, 1, 2, 3, 4, 5)])
def test_expand(shape, tmp_path):
    x = RNG.standard_normal((3, 1, 5)).astype(np.float32) if shape != (2, 3, 4, 5) else X[:, :, :1]
    check_op("Expand", {"x": x}, consts={"s": np.array(shape, I64)}, tmpdir=str(tmp_path))


def test_tile(tmp_path):
    check_op("Tile", {"x": X}, consts={"r": np.array([1, 2, 1, 3], I64)}, tmpdir=str(tmp_path))


@pytest.mark.parametrize("opset,attrs", [(13, {}), (15, {"start": 1}), (15, {"start": -3, "end": -1})])
def test_shape(opset, attrs, tmp_path):
    check_op("Shape", {"x": X}, attrs, opset=opset, tmpdir=str(tmp_path))


@pytest.mark.parametrize("to,x", [(7, X * 3), (1, np.arange(6, dtype=I64)), (9, X), (6, X * 10)])
def test_cast(to, x, tmp_path):
    check_op("Cast", {"x": x}, {"to": to}, tmpdir=str(tmp_path))


def test_constant_of_shape_and_range(tmp_path):
    from onnx import numpy_helper
    nodes = [helper.make_node("Shape", ["x"], ["s"]),
             helper.make_node("ConstantOfShape", ["s"], ["c"], value=numpy_helper.from_array(np.array([2.5], np.float32))),
             helper.make_node("Gather", ["s", "i"], ["n"], axis=0),
             helper.make_node("Range", ["zero", "n", "one"], ["r"])]
    model = make_model(nodes, {"x": (np.float32, ["A", 3])}, ["c", "r"],
                       {"i": np.array(0, I64), "zero": np.array(0, I64), "one": np.array(1, I64)})
    check_model(model, {"x": RNG.standard_normal((4, 3)).astype(np.float32)}, tmpdir=str(tmp_path))


def test_dynamic_shape_chain(tmp_path):
    """Shape -> Gather -> Unsqueeze -> Concat -> Reshape with dynamic H/W, run at two sizes."""
    nodes = [helper.make_node("Shape", ["x"], ["s"]),
             helper.make_node("Gather", ["s", "i0"], ["n"], axis=0),
             helper.make_node("Gather", ["s", "i1"], ["c"], axis=0),
             helper.make_node("Unsqueeze", ["n", "ax"], ["nu"]),
             helper.make_node("Unsqueeze", ["c", "ax"], ["cu"]),
             helper.make_node("Concat", ["nu", "cu", "m1"], ["shp"], axis=0),
             helper.make_node("Reshape", ["x", "shp"], ["r"]),
             helper.make_node("Transpose", ["r"], ["y"], perm=[0, 2, 1])]
    inits = {"i0": np.array(0, I64), "i1": np.array(1, I64), "ax": np.array([0], I64), "m1": np.array([-1], I64)}
    model = make_model(nodes, {"x": (np.float32, ["N", 3, "H", "W"])}, ["y"], inits)
    for shape in [(1, 3, 4, 5), (2, 3, 7, 2)]:
        check_model(model, {"x": RNG.standard_normal(shape).astype(np.float32)}, tmpdir=str(tmp_path))


def test_identity_and_dropout(tmp_path):
    check_op("Identity", {"x": X}, tmpdir=str(tmp_path))
    check_op("Dropout", {"x": X}, opset=13, tmpdir=str(tmp_path))
    check_op("Dropout", {"x": X}, {"ratio": 0.3}, opset=10, tmpdir=str(tmp_path))
