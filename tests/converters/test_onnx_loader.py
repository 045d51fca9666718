"""The ONNX front end: opsets, initializers, external data, constants, names, and clear errors."""
from __future__ import annotations

import os

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

from helpers import assert_close, check_model, convert, make_model, run_ort
from models import tiny_cnn

from liteopt.converters.onnx import load_onnx
from liteopt.runtime import load
from liteopt.ir.errors import ConversionError, UnsupportedOpsError

X = np.random.default_rng(0).standard_normal((2, 3, 16, 16)).astype(np.float32)


def save(model, tmp_path, name="m.onnx", **kw):
    p = str(tmp_path / name)
    onnx.save(model, p, **kw)
    return p


@pytest.mark.parametrize("opset", [9, 11, 13, 17, 21])
def test_opsets_9_to_21(opset, tmp_path):
    check_model(tiny_cnn(opset=opset), {"x": X}, tmpdir=str(tmp_path))


@pytest.mark.parametrize("opset", [8, 22])
def test_opset_out_of_range(opset, tmp_path):
    m = tiny_cnn()
    m.opset_import[0].version = opset
    with pytest.raises(ConversionError, match=f"opset {opset}"):
        load_onnx(save(m, tmp_path))


def test_external_data(tmp_path):
    m = tiny_cnn()
    p = save(m, tmp_path, save_as_external_data=True, all_tensors_to_one_file=True, location="weights.bin",
             size_threshold=0)
    assert os.path.exists(tmp_path / "weights.bin")
    g = load_onnx(p)
    np.testing.assert_array_equal(g.tensors["w"].data, numpy_helper.to_array(tiny_cnn().graph.initializer[0]))
    os.remove(tmp_path / "weights.bin")
    with pytest.raises(ConversionError, match="m.onnx"):
        load_onnx(p)


def test_symbolic_dims_stay_symbolic_and_pin(tmp_path):
    p = save(tiny_cnn(), tmp_path)
    g = load_onnx(p)
    assert g.tensors["x"].shape == ("N", 3, 16, 16) and g.tensors["y"].shape == ("N", 8, 8, 8)
    g = load_onnx(p, {"x": (4, 3, 16, 16)})
    assert g.tensors["y"].shape == (4, 8, 8, 8)


def test_constant_node_identity_and_passthrough_outputs(tmp_path):
    nodes = [helper.make_node("Constant", [], ["c"], value=numpy_helper.from_array(np.float32([1, 2, 3]))),
             helper.make_node("Add", ["x", "c"], ["s"]),
             helper.make_node("Identity", ["s"], ["y"]),
             helper.make_node("Identity", ["x"], ["x_copy"])]
    m = make_model(nodes, {"x": (np.float32, [2, 3])}, ["y", "x_copy", "s"])
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    check_model(m, {"x": x}, tmpdir=str(tmp_path))
    g = load_onnx(save(m, tmp_path))
    assert g.outputs == ["y", "x_copy", "s"]


def test_unnamed_and_duplicate_node_names(tmp_path):
    nodes = [helper.make_node("Relu", ["x"], ["a"]), helper.make_node("Relu", ["a"], ["b"], name="dup"),
             helper.make_node("Sigmoid", ["b"], ["y"], name="dup")]
    m = make_model(nodes, {"x": (np.float32, [4])}, ["y"])
    p = save(m, tmp_path)
    g = load_onnx(p)
    names = [n.name for n in g.nodes]
    assert len(set(names)) == len(names) and names[0]
    # onnxruntime refuses duplicate names; numpy is the reference here
    from liteopt.opt import optimize
    from liteopt.runtime import load
    x = np.float32([-1, 0, 1, 2])
    y = load(optimize(model_file=p, optimize_out=str(tmp_path / "d")).path)({"x": x})["y"]
    np.testing.assert_allclose(y, 1 / (1 + np.exp(-np.maximum(x, 0))), rtol=1e-6)


def test_all_unsupported_ops_collected(tmp_path):
    nodes = [helper.make_node("Det", ["x"], ["a"], name="d1"), helper.make_node("Det", ["x"], ["b"], name="d2"),
             helper.make_node("Relu", ["a"], ["c"]),
             helper.make_node("FancyOp", ["c"], ["y"], domain="com.example", name="f")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [2, 2])],
                              [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [])])
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid("com.example", 1)])
    p = str(tmp_path / "u.onnx")
    onnx.save(m, p)
    with pytest.raises(UnsupportedOpsError) as e:
        load_onnx(p)
    assert e.value.unsupported == {"Det": ["d1", "d2"], "com.example::FancyOp": ["f"]}


def test_unknown_attribute_names_the_node(tmp_path):
    m = make_model([helper.make_node("Relu", ["x"], ["y"], name="myrelu", bogus=3)], {"x": (np.float32, [2])}, ["y"])
    p = str(tmp_path / "a.onnx")
    onnx.save(m, p)
    with pytest.raises(ConversionError, match="myrelu.*bogus|bogus.*myrelu"):
        load_onnx(p)


def test_unsupported_dtype_is_named(tmp_path):
    x = helper.make_tensor_value_info("x", onnx.TensorProto.COMPLEX64, [2])
    y = helper.make_tensor_value_info("y", onnx.TensorProto.COMPLEX64, [2])
    m = helper.make_model(helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g", [x], [y]),
                          opset_imports=[helper.make_opsetid("", 13)])
    with pytest.raises(ConversionError, match="'x'.*COMPLEX64"):
        load_onnx(save(m, tmp_path))


def test_doubles_are_computed_in_float32(tmp_path):
    """What a traced anchor grid looks like (`torch.arange(w) + 0.5` made DOUBLE by the TorchScript exporter):
    Cast to DOUBLE, double constants, a DOUBLE ConstantOfShape and graph output, and a DOUBLE graph input.
    liteopt computes all of it in float32 (as TF's DT_DOUBLE) and matches onnxruntime's doubles."""
    nodes = [
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Gather", ["s", "i3"], ["w"], axis=0),
        helper.make_node("Range", ["zero", "w", "one"], ["r"]),
        helper.make_node("Cast", ["r"], ["rd"], to=onnx.TensorProto.DOUBLE),
        helper.make_node("Add", ["rd", "half"], ["c"]),
        helper.make_node("Mul", ["c", "stride"], ["grid"]),
        helper.make_node("ConstantOfShape", ["s"], ["ones"],
                         value=numpy_helper.from_array(np.array([1.5]), "v")),
        helper.make_node("Cast", ["x"], ["xd"], to=onnx.TensorProto.DOUBLE),
        helper.make_node("Mul", ["xd", "ones"], ["xs"]),
        helper.make_node("Add", ["xs", "grid"], ["yd"]),
        helper.make_node("Cast", ["yd"], ["y"], to=onnx.TensorProto.FLOAT),
        helper.make_node("Mul", ["d", "d"], ["dd"]),
    ]
    consts = {"i3": np.array(3), "zero": np.array(0), "one": np.array(1),
              "half": np.array(0.5), "stride": np.array(8.0)}
    m = make_model(nodes, {"x": X, "d": (np.float64, [2, 7])}, ["y", "yd", "dd"], consts)
    d = np.random.default_rng(1).standard_normal((2, 7))
    ref = run_ort(m, {"x": X, "d": d})
    assert [r.dtype for r in ref] == [np.float32, np.float64, np.float64]
    for target in ("cpu", "ref"):
        got = list(load(convert(m, str(tmp_path)), target=target)({"x": X, "d": d}).values())
        for g, r in zip(got, ref):
            assert_close(g, r.astype(np.float32), tol=1e-6)
