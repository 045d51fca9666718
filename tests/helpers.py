"""Test helpers: build ONNX models with onnx.helper, run them in onnxruntime (the independent reference)
and through liteopt (opt -> .nb -> runtime, on the numba `cpu` kernels and on the numpy `ref` target)."""
from __future__ import annotations

import os
import tempfile

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from liteopt.opt import optimize
from liteopt.runtime import load

NP_TO_ONNX = {np.dtype(k): v for k, v in {
    "float32": TensorProto.FLOAT, "float16": TensorProto.FLOAT16, "int64": TensorProto.INT64,
    "int32": TensorProto.INT32, "int16": TensorProto.INT16, "int8": TensorProto.INT8, "uint8": TensorProto.UINT8,
    "bool": TensorProto.BOOL, "float64": TensorProto.DOUBLE}.items()}

TOL = 1e-4  # max|diff| / max|ref|, the bar the issues set


def make_model(nodes, inputs: dict[str, np.ndarray | tuple], outputs: list[str], initializers: dict | None = None,
               opset: int = 13, output_shapes: dict | None = None) -> onnx.ModelProto:
    """A model from nodes; `inputs` maps name -> example array (its dtype/shape declare the input) or
    (dtype, shape) with symbolic dims allowed; outputs get no declared shape unless given."""
    def vi(name, dtype, shape):
        return helper.make_tensor_value_info(name, NP_TO_ONNX[np.dtype(dtype)], shape)

    ins = []
    for name, v in inputs.items():
        if isinstance(v, tuple):
            ins.append(vi(name, v[0], v[1]))
        else:
            ins.append(vi(name, v.dtype, list(v.shape)))
    outs = [helper.make_tensor_value_info(o, TensorProto.UNDEFINED, None) if not output_shapes or o not in output_shapes
            else vi(o, *output_shapes[o]) for o in outputs]
    inits = [numpy_helper.from_array(np.asarray(a), name) for name, a in (initializers or {}).items()]
    graph = helper.make_graph(nodes, "test", ins, outs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = min(model.ir_version, 9)
    return _with_inferred_outputs(model)


def _with_inferred_outputs(model: onnx.ModelProto) -> onnx.ModelProto:
    """Fill the declared output types (the checker wants them) by onnx shape inference."""
    inferred = onnx.shape_inference.infer_shapes(model)
    known = {v.name: v for v in list(inferred.graph.value_info) + list(inferred.graph.output)}
    for o in model.graph.output:
        if o.type.tensor_type.elem_type == TensorProto.UNDEFINED and o.name in known:
            o.CopyFrom(known[o.name])
            if not o.type.tensor_type.HasField("shape"):
                o.type.tensor_type.shape.SetInParent()
        elif not o.type.tensor_type.HasField("shape"):
            o.type.tensor_type.shape.SetInParent()
    return model


def run_ort(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    so = ort.SessionOptions()
    so.log_severity_level = 3
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)


def convert(model: onnx.ModelProto, tmpdir: str | None = None, input_shapes=None, valid_targets="cpu") -> str:
    """Save the model, run opt on it, return the .nb path."""
    d = tmpdir or tempfile.mkdtemp(prefix="liteopt-test-")
    src = os.path.join(d, "model.onnx")
    onnx.save(model, src)
    return optimize(model_file=src, optimize_out=os.path.join(d, "model.nb"), valid_targets=valid_targets,
                    input_shapes=input_shapes).path


def assert_close(got: np.ndarray, ref: np.ndarray, tol: float = TOL, what: str = "output") -> None:
    got, ref = np.asarray(got), np.asarray(ref)
    assert got.shape == ref.shape, f"{what}: shape {got.shape} != reference {ref.shape}"
    assert got.dtype == ref.dtype, f"{what}: dtype {got.dtype} != reference {ref.dtype}"
    if ref.dtype == np.bool_ or np.issubdtype(ref.dtype, np.integer):
        np.testing.assert_array_equal(got, ref, err_msg=what)
        return
    finite = np.isfinite(ref)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(ref), err_msg=f"{what}: NaN positions differ")
    np.testing.assert_array_equal(got[np.isinf(ref)], ref[np.isinf(ref)], err_msg=f"{what}: inf values differ")
    if finite.any():
        scale = max(float(np.abs(ref[finite]).max()), 1e-30)
        err = float(np.abs(got[finite].astype(np.float64) - ref[finite]).max()) / scale
        assert err <= tol, f"{what}: max|diff|/max|ref| = {err:.3g} > {tol}"


def check_model(model: onnx.ModelProto, feeds: dict[str, np.ndarray], tol: float = TOL, input_shapes=None,
                targets=("cpu", "ref"), tmpdir: str | None = None) -> list[np.ndarray]:
    """onnxruntime vs liteopt on every target; returns onnxruntime's outputs."""
    ref = run_ort(model, feeds)
    path = convert(model, tmpdir, input_shapes, valid_targets="cpu,ref")
    for target in targets:
        pred = load(path, target=target)
        got = pred(feeds)
        # every intermediate must have the dtype and shape opt inferred (checks the shape functions)
        pred._program.run({n: pred._program.check_input(n, feeds[n]) for n in pred.input_names}, check=True)
        assert len(got) == len(ref), f"{len(got)} outputs, onnxruntime has {len(ref)}"
        for (name, g), r in zip(got.items(), ref):
            assert_close(g, r, tol, what=f"[{target}] output {name!r}")
    return ref


def check_op(op_type: str, inputs: dict[str, np.ndarray], attrs: dict | None = None, *,
             consts: dict[str, np.ndarray] | None = None, n_outputs: int = 1, opset: int = 13, tol: float = TOL,
             input_order: list[str] | None = None, tmpdir: str | None = None, input_shapes=None,
             dynamic: dict | None = None) -> list[np.ndarray]:
    """One-node model: `inputs` are fed at run time, `consts` are initializers; `input_order` lists the
    node's input names in order ("" for an absent optional one), default: inputs then consts.
    `dynamic` maps an input name to its declared (symbolic) shape."""
    consts = consts or {}
    order = input_order if input_order is not None else [*inputs, *consts]
    outs = [f"out{i}" for i in range(n_outputs)]
    node = helper.make_node(op_type, order, outs, **(attrs or {}))
    decl = {k: ((v.dtype, dynamic[k]) if dynamic and k in dynamic else v) for k, v in inputs.items()}
    model = make_model([node], decl, outs, consts, opset=opset)
    return check_model(model, inputs, tol, input_shapes=input_shapes, tmpdir=tmpdir)
