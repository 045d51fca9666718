"""Unary ONNX ops through liteopt vs onnxruntime."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from helpers import assert_close, check_op

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


# --- Clip: bounds as attributes (opset < 11), constant inputs, run-time inputs, integers ---------------

def scalar(v, dtype=np.float32):
    return np.array(v, dtype)


@pytest.mark.parametrize("opset,consts,order", [
    (13, {"lo": scalar(2.0), "hi": scalar(-1.0)}, ["x", "lo", "hi"]),   # min > max: everything is max
    (11, {"lo": scalar(-2.0)}, ["x", "lo"]),
    (12, {"hi": scalar(1.5)}, ["x", "", "hi"]),
    (13, {}, ["x"]),                                                 # no bounds: a copy
    (13, {"lo": scalar(0.0), "hi": scalar(3.0)}, ["x", "lo", "hi"]),   # -> relu6(threshold=3)
    (13, {"lo": scalar(0.0)}, ["x", "lo"]),
])
def test_clip_constant_bounds(opset, consts, order, tmp_path):
    check_op("Clip", {"x": X}, consts=consts, input_order=order, opset=opset, tmpdir=str(tmp_path))


@pytest.mark.parametrize("attrs", [{"max": 1.0}, {"min": -0.5}, {}])
def test_clip_opset9_attributes(attrs, tmp_path):
    check_op("Clip", {"x": X}, attrs, opset=9, tmpdir=str(tmp_path))


@pytest.mark.parametrize("inputs,consts,order", [
    ({"lo": scalar(-1.0)}, {"hi": scalar(2.0)}, ["x", "lo", "hi"]),
    ({"lo": scalar(-1.0), "hi": scalar(2.0)}, {}, ["x", "lo", "hi"]),
    ({"lo": scalar(3.0), "hi": scalar(2.0)}, {}, ["x", "lo", "hi"]),
    ({"hi": scalar(2.0)}, {}, ["x", "", "hi"]),
    ({"lo": scalar(0.0)}, {"hi": scalar(6.0)}, ["x", "lo", "hi"]),
])
def test_clip_runtime_bounds(inputs, consts, order, tmp_path):
    """Bounds computed at run time stay inputs of the clip op."""
    check_op("Clip", {"x": X, **inputs}, consts=consts, input_order=order, tmpdir=str(tmp_path))


@pytest.mark.parametrize("dtype", [np.int32, np.int64])
@pytest.mark.parametrize("runtime", [False, True])
def test_clip_integers(dtype, runtime, tmp_path):
    x = (X * 10).astype(dtype)
    bounds = {"lo": scalar(-5, dtype), "hi": scalar(7, dtype)}
    inputs, consts = ({"x": x, **bounds}, {}) if runtime else ({"x": x}, bounds)
    check_op("Clip", inputs, consts=consts, input_order=["x", "lo", "hi"], tmpdir=str(tmp_path))
    check_op("Clip", {"x": x}, consts={"hi": bounds["hi"]}, input_order=["x", "", "hi"], tmpdir=str(tmp_path))


def test_clip_nan_and_dynamic(tmp_path):
    x = np.array([[np.nan, 1, -9, 9, np.inf, -np.inf]], np.float32)
    check_op("Clip", {"x": x}, consts={"lo": scalar(-2.0), "hi": scalar(3.0)}, dynamic={"x": ["N", "W"]},
             tmpdir=str(tmp_path))
    check_op("Clip", {"x": X}, consts={"lo": scalar(0.0), "hi": scalar(6.0)}, dynamic={"x": ["N", "C", 4, "W"]},
             opset=12, tmpdir=str(tmp_path))


# --- PRelu: slope broadcasts (unidirectionally) against x ---------------------------------------------

@pytest.mark.parametrize("slope_shape", [(), (1,), (5,), (3, 1, 1), (1, 3, 1, 1), (2, 3, 4, 5), (4, 1)])
def test_prelu_broadcast(slope_shape, tmp_path):
    slope = RNG.standard_normal(slope_shape).astype(np.float32)
    check_op("PRelu", {"x": X}, consts={"slope": slope}, tmpdir=str(tmp_path))


@pytest.mark.parametrize("opset", [9, 16])
def test_prelu_runtime_slope_and_dynamic(opset, tmp_path):
    slope = RNG.standard_normal((3, 1, 1)).astype(np.float32)
    check_op("PRelu", {"x": X, "slope": slope}, opset=opset, tmpdir=str(tmp_path))
    check_op("PRelu", {"x": X}, consts={"slope": slope}, dynamic={"x": ["N", 3, "H", "W"]}, opset=opset,
             tmpdir=str(tmp_path))


# --- the rest of the family: Gelu, Neg (scale), Not, integer inputs, numeric extremes, empty tensors ----

@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu(approximate, tmp_path):
    check_op("Gelu", {"x": X}, {"approximate": approximate}, opset=20, tmpdir=str(tmp_path))
    check_op("Gelu", {"x": X}, {"approximate": approximate}, opset=20, dynamic={"x": ["N", "C", "H", 5]},
             tmpdir=str(tmp_path))


@pytest.mark.parametrize("op,dtype,opset", [("Neg", np.int32, 13), ("Neg", np.int64, 13), ("Neg", np.float32, 13),
                                            ("Abs", np.int32, 13), ("Sign", np.int64, 13), ("Relu", np.int32, 14)])
def test_integer_inputs(op, dtype, opset, tmp_path):
    check_op(op, {"x": (X * 10).astype(dtype)}, opset=opset, tmpdir=str(tmp_path))


def test_not_shapes(tmp_path):
    check_op("Not", {"x": X > 0}, dynamic={"x": ["A", "B", 4, 5]}, tmpdir=str(tmp_path))
    check_op("Not", {"x": np.array(True)}, tmpdir=str(tmp_path))


EXTREMES = np.array([-1e4, -1000, -100, -88, -80, -50, -20, -1, 0, 1, 20, 50, 80, 88, 89, 100, 1000, 1e4], np.float32)


@pytest.mark.parametrize("op", ["Sigmoid", "Tanh", "Exp", "Softplus", "Elu", "HardSwish", "HardSigmoid", "Erf"])
def test_extremes(op, tmp_path):
    check_op(op, {"x": EXTREMES}, opset=14, tmpdir=str(tmp_path))


@pytest.mark.parametrize("op,consts,opset", [("Relu", {}, 13), ("Clip", {"lo": scalar(-1.0)}, 13),
                                             ("PRelu", {"slope": np.ones(3, np.float32)}, 13), ("Gelu", {}, 20),
                                             ("LeakyRelu", {}, 13)])
def test_empty(op, consts, opset, tmp_path):
    check_op(op, {"x": np.zeros((0, 3), np.float32)}, consts=consts, opset=opset, tmpdir=str(tmp_path))


# --- IR attributes no ONNX op sets: the cpu kernel against the op's own reference -------------------------

@pytest.mark.parametrize("attrs", [dict(scale=2.5, bias=-1.0, bias_after_scale=True),
                                   dict(scale=2.5, bias=-1.0, bias_after_scale=False),
                                   dict(scale=-1.0, bias=0.5, bias_after_scale=False)])
@pytest.mark.parametrize("dtype", [np.float32, np.int32])
def test_scale_kernel(attrs, dtype):
    from liteopt.ir import OPS
    from liteopt.runtime import kernels as K
    K.load_all()
    x = (X * 10).astype(dtype)
    got = K.KERNELS[("scale", "cpu")]["default"].fn(x, **attrs)
    assert_close(got, OPS["scale"].run(x, **attrs)[0])
