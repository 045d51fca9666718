"""Unary ONNX ops through liteopt vs onnxruntime."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from helpers import check_op

RNG = np.random.default_rng(0)
X = (RNG.standard_normal((2, 3, 4, 5)) * 4).astype(np.float32)
POS = np.abs(X) + 0.1


@pytest.mark.parametrize("op,x,attrs", [
    ("Relu", X, {}), ("Sigmoid", X, {}), ("Tanh", X, {}), ("Exp", X, {}), ("Log", POS, {}), ("Abs", X, {}),
    ("Sqrt", POS, {}), ("Reciprocal", POS, {}), ("Floor", X, {}), ("Ceil", X, {}), ("Erf", X, {}), ("Neg", X, {}),
    ("LeakyRelu", X, {"alpha": 0.1}), ("LeakyRelu", X, {}), ("HardSigmoid", X, {"alpha": 0.3, "beta": 0.4}),
    ("HardSigmoid", X, {}), ("HardSwish", X, {}), ("Elu", X, {"alpha": 0.5}), ("Softplus", X, {}),
    ("Sign", X, {}),
])
def test_unary(op, x, attrs, tmp_path):
    check_op(op, {"x": x}, attrs, opset=14 if op == "HardSwish" else 13, tmpdir=str(tmp_path))


def test_unary_scalar_and_empty(tmp_path):
    check_op("Relu", {"x": np.array(-1.5, np.float32)}, tmpdir=str(tmp_path))


@pytest.mark.parametrize("opset,lo,hi", [(13, 0.0, 6.0), (13, -1.0, None), (13, None, 0.5), (9, 0.0, 6.0)])
def test_clip(opset, lo, hi, tmp_path):
    if opset < 11:
        attrs = {k: v for k, v in (("min", lo), ("max", hi)) if v is not None}
        check_op("Clip", {"x": X}, attrs, opset=opset, tmpdir=str(tmp_path))
        return
    consts = {}
    order = ["x", "lo" if lo is not None else "", "hi" if hi is not None else ""]
    if lo is not None:
        consts["lo"] = np.array(lo, np.float32)
    if hi is not None:
        consts["hi"] = np.array(hi, np.float32)
    check_op("Clip", {"x": X}, consts=consts, input_order=order, opset=opset, tmpdir=str(tmp_path))


def test_prelu(tmp_path):
    slope = RNG.standard_normal((3, 1, 1)).astype(np.float32)
    check_op("PRelu", {"x": X}, consts={"slope": slope}, tmpdir=str(tmp_path))


def test_not(tmp_path):
    check_op("Not", {"x": X > 0}, tmpdir=str(tmp_path))


@settings(max_examples=15, deadline=None)
@given(shape=st.lists(st.integers(1, 5), min_size=0, max_size=4),
       op=st.sampled_from(["Relu", "Sigmoid", "Tanh", "HardSwish", "Abs"]))
def test_unary_shapes(shape, op, tmp_path_factory):
    x = np.asarray(np.random.default_rng(len(shape)).standard_normal(shape) * 3, np.float32)
    check_op(op, {"x": x}, opset=14, tmpdir=str(tmp_path_factory.mktemp("u")))
