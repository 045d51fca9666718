"""Element-wise ops, comparisons, logical ops and Where through liteopt vs onnxruntime: every ONNX op of the
family, float and integer types (int64 shape arithmetic: truncating Div, precision above 2**53), numpy
broadcasting (hypothesis), mixed-type Pow, Mod's fmod, NaN in Max/Min, variadic Sum/Max/Min/Mean, dynamic
shapes; the fused activation epilogue and the broadcast loop of the cpu kernels vs the registry."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from onnx import helper

from helpers import check_model, check_op, make_model

from liteopt.ir import OPS
from liteopt.runtime import kernels as K

RNG = np.random.default_rng(0)
F, I64, I32 = np.float32, np.int64, np.int32
ARITH = ["Add", "Sub", "Mul", "Div", "Max", "Min"]
COMPARE = ["Equal", "Greater", "Less", "GreaterOrEqual", "LessOrEqual"]
SHAPE_PAIRS = [((2, 3, 4), (2, 3, 4)), ((2, 3, 4), (4,)), ((2, 3, 4), ()), ((), (2, 3)), ((3, 1), (1, 4)),
               ((1,), (2, 3, 1, 5)), ((2, 3, 4, 5), (1, 3, 1, 1)), ((2, 1, 4, 1), (3, 1, 5))]


def r(*shape, dtype=F, scale=1.0):
    x = RNG.standard_normal(shape) * scale
    return np.asarray(np.round(x) if np.dtype(dtype).kind in "iu" else x, dtype)


def nonzero(x):
    """x with zeros replaced (integer division by zero is undefined in onnxruntime)."""
    return np.where(x == 0, 3, x).astype(x.dtype)


# --- arithmetic ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("op", ARITH)
@pytest.mark.parametrize("a,b", SHAPE_PAIRS)
def test_binary_float(op, a, b, tmp_path):
    y = r(*b) + (3 if op == "Div" else 0)
    check_op(op, {"a": r(*a), "b": np.asarray(y, F)}, tmpdir=str(tmp_path))


@pytest.mark.parametrize("op", ARITH)
@pytest.mark.parametrize("dtype", [I64, I32])
def test_binary_types(op, dtype, tmp_path):
    a, b = r(2, 3, 4, dtype=dtype, scale=20), r(3, 1, dtype=dtype, scale=5)
    check_op(op, {"a": a, "b": nonzero(b)}, tmpdir=str(tmp_path))


@pytest.mark.parametrize("op", ["Add", "Sub", "Mul", "Div"])
@pytest.mark.parametrize("opset", [9, 13, 14, 21])
def test_int64_arithmetic(op, opset, tmp_path):
    """Negative operands: Div truncates towards zero (7 / -2 = -3), as onnxruntime."""
    a = np.array([[7, -7, 9, -9], [0, 5, -13, 13]], I64)
    b = np.array([2, 3, -4, -2], I64)
    check_op(op, {"a": a, "b": b}, opset=opset, tmpdir=str(tmp_path))
    check_op(op, {"a": a}, consts={"b": np.array(-2, I64)}, opset=opset, tmpdir=str(tmp_path))


@pytest.mark.parametrize("op", ["Add", "Sub", "Mul", "Max", "Min", "Div"])
def test_int64_precision(op, tmp_path):
    """Values above 2**53 stay exact (no round trip through float64); Mul wraps around on overflow."""
    a = np.array([2 ** 60 + 1, -(2 ** 61) - 3, 2 ** 62 + 7, 5], I64)
    b = np.array([1, 3, 2 ** 40 + 1, -(2 ** 59) - 1], I64)
    check_op(op, {"a": a, "b": b}, tmpdir=str(tmp_path))


def test_empty_and_high_rank(tmp_path):
    check_op("Add", {"a": r(0, 3), "b": r(3)}, tmpdir=str(tmp_path))
    check_op("Mul", {"a": r(2, 1, 3, 1, 2, 1, 2, 3), "b": r(1, 2, 1, 3, 1, 2, 1, 3)}, tmpdir=str(tmp_path))


# --- Pow: mixed types ------------------------------------------------------------------------------------

def test_pow_float(tmp_path):
    check_op("Pow", {"a": np.abs(r(2, 3)) + 0.1, "b": r(2, 3)}, tmpdir=str(tmp_path))
    check_op("Pow", {"a": np.abs(r(2, 3)) + 0.1, "b": r(3)}, opset=9, tmpdir=str(tmp_path))
    check_op("Pow", {"a": r(2, 3)}, consts={"e": np.array(2.0, F)}, opset=15, tmpdir=str(tmp_path))
    check_op("Pow", {"a": np.array([-2.0, 4.0, 0.0, -1.0], F)}, consts={"e": np.array([0.5, 0.5, -1.0, 3.0], F)},
             tmpdir=str(tmp_path))  # NaN, inf


@pytest.mark.parametrize("base,exp", [(F, I64), (F, I32)])
def test_pow_float_base_other_exponent(base, exp, tmp_path):
    a = np.asarray(np.abs(r(2, 3)) + 0.5, base)
    check_op("Pow", {"a": a, "b": np.array([[2, -1, 3], [0, 1, -2]], exp)}, tmpdir=str(tmp_path))
    check_op("Pow", {"a": a}, consts={"b": np.array(3, exp)}, tmpdir=str(tmp_path))


@pytest.mark.parametrize("base,exp", [(I64, I64), (I32, I64), (I64, I32), (I64, F), (I32, F)])
def test_pow_integer_base(base, exp, tmp_path):
    """Computed in double and truncated: 2 ** -1 = 0, 3 ** 2.7 = 19, 7 ** 20 as float64 rounds."""
    a = np.array([2, 3, -2, 9, 7, 1, -1, 5], base)
    b = np.array([-1, 2, 3, 0, 20 if base == I64 else 9, -3, -1, 2], exp)
    if np.dtype(exp).kind == "f":
        b = np.array([0.5, 2.7, 3.0, 0.5, 1.5, -2.0, 2.0, 0.0], exp)
    check_op("Pow", {"a": a, "b": b}, tmpdir=str(tmp_path))


# --- Mod ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [I64, I32, np.int8])
@pytest.mark.parametrize("fmod", [0, 1])
def test_mod_int(dtype, fmod, tmp_path):
    """fmod=0: sign of the divisor (Python), fmod=1: sign of the dividend (C)."""
    a = np.array([[7, -7, 7, -7, 0, 9], [3, -3, 12, -12, 5, -1]], dtype)
    b = np.array([3, 3, -3, -3, 4, -4], dtype)
    check_op("Mod", {"a": a, "b": b}, {"fmod": fmod}, tmpdir=str(tmp_path))
    check_op("Mod", {"a": a}, {"fmod": fmod}, consts={"b": np.array(-5, dtype)}, opset=10, tmpdir=str(tmp_path))


def test_mod_float(tmp_path):
    check_op("Mod", {"a": r(3, 6, scale=5), "b": np.abs(r(6)) + 1}, {"fmod": 1}, tmpdir=str(tmp_path))
    check_op("Mod", {"a": np.array([7.5, -7.5, 7.5, -7.5], F), "b": np.array([2, 2, -2, -2], F)}, {"fmod": 1},
             tmpdir=str(tmp_path))


# --- Max / Min / Sum / Mean ----------------------------------------------------------------------------

@pytest.mark.parametrize("op", ["Sum", "Max", "Min", "Mean"])
@pytest.mark.parametrize("opset", [9, 13, 21])
def test_variadic(op, opset, tmp_path):
    check_op(op, {"a": r(2, 3), "b": r(3), "c": r(2, 1)}, opset=opset, tmpdir=str(tmp_path))
    check_op(op, {"a": r(2, 3)}, opset=opset, tmpdir=str(tmp_path))
    check_op(op, {"a": r(3), "b": r(4, 1)}, opset=opset, tmpdir=str(tmp_path))


@pytest.mark.parametrize("op", ["Max", "Min"])  # onnxruntime has no integer Sum/Mean
def test_variadic_int(op, tmp_path):
    check_op(op, {"a": r(2, 3, dtype=I64, scale=9), "b": r(3, dtype=I64, scale=9), "c": r(2, 1, dtype=I64, scale=9)},
             tmpdir=str(tmp_path))


@pytest.mark.parametrize("op", ["Max", "Min"])
def test_max_min_nan(op, tmp_path):
    """NaN propagates (onnxruntime and numpy), whichever operand holds it."""
    a = np.array([np.nan, 1, 2, np.nan, -np.inf], F)
    b = np.array([1, np.nan, 1, np.nan, 3], F)
    check_op(op, {"a": a, "b": b}, tmpdir=str(tmp_path))


# --- comparisons, logical ops, Where -------------------------------------------------------------------

@pytest.mark.parametrize("op", COMPARE)
@pytest.mark.parametrize("dtype", [F, I64, I32])
def test_compare(op, dtype, tmp_path):
    a = np.array([[1, 2, 3], [3, 2, 1]], dtype)
    opset = 12 if op.endswith("Equal") and op != "Equal" else 11
    check_op(op, {"a": a, "b": np.array([2, 2, 2], dtype)}, opset=opset, tmpdir=str(tmp_path))
    check_op(op, {"a": r(2, 1, 4, dtype=dtype, scale=2), "b": r(3, 1, dtype=dtype, scale=2)}, tmpdir=str(tmp_path))


@pytest.mark.parametrize("op", COMPARE)
def test_compare_nan_and_scalar(op, tmp_path):
    a = np.array([np.nan, 1, 2, np.inf, -np.inf], F)
    check_op(op, {"a": a, "b": np.array([np.nan, np.nan, 2, np.inf, 0], F)}, tmpdir=str(tmp_path))
    check_op(op, {"a": a}, consts={"b": np.array(1.0, F)}, tmpdir=str(tmp_path))


def test_equal_bool(tmp_path):
    check_op("Equal", {"a": r(3, 4) > 0, "b": r(4) > 0}, tmpdir=str(tmp_path))


@pytest.mark.parametrize("op", ["And", "Or"])
def test_logical(op, tmp_path):
    check_op(op, {"a": r(3, 4) > 0, "b": r(4) > 0}, tmpdir=str(tmp_path))
    check_op(op, {"a": r(3, 4) > 0, "b": r(3, 1) > 0}, opset=9, tmpdir=str(tmp_path))
    check_op(op, {"a": r(2, 3) > 0}, consts={"b": np.array(True)}, tmpdir=str(tmp_path))


@pytest.mark.parametrize("c,x,y", [((3, 4), (3, 4), (3, 4)), ((3, 4), (3, 4), (4,)), ((1, 4), (3, 1), ()),
                                   ((2, 1, 1, 3), (3,), (5, 1, 3)), ((), (2, 3), (2, 3))])
@pytest.mark.parametrize("dtype", [F, I64, np.uint8])
def test_where(c, x, y, dtype, tmp_path):
    xs, ys = (np.asarray(np.abs(r(*s, dtype=dtype, scale=9))) for s in (x, y))
    check_op("Where", {"c": np.asarray(r(*c) > 0), "x": xs, "y": ys}, opset=9, tmpdir=str(tmp_path))


# --- dynamic shapes and shape arithmetic -----------------------------------------------------------------

@pytest.mark.parametrize("op", ["Add", "Mul", "Div", "Greater", "Max"])
def test_dynamic(op, tmp_path):
    check_op(op, {"a": r(2, 3, 4, 5), "b": r(3, 1, 1) + 3}, dynamic={"a": ["N", 3, "H", "W"]}, tmpdir=str(tmp_path))
    check_op(op, {"a": r(2, 3, 4, 5), "b": r(2, 3, 4, 5) + 3},
             dynamic={"a": ["N", 3, "H", "W"], "b": ["N", 3, "H", "W"]}, tmpdir=str(tmp_path))


def test_where_dynamic(tmp_path):
    check_op("Where", {"c": r(2, 3, 4) > 0, "x": r(3, 4), "y": r(2, 1, 4)}, dynamic={"c": ["N", 3, "W"]},
             tmpdir=str(tmp_path))


@pytest.mark.parametrize("hw", [(32, 48), (45, 17)])
def test_shape_arithmetic(hw, tmp_path):
    """Shape -> Gather -> Div/Mul/Sub/Mod on int64 -> Concat -> Reshape with dynamic H, W (PP-OCR style)."""
    i64 = lambda *v: np.array(v, I64)  # noqa: E731
    nodes = [
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Gather", ["s", "i2"], ["h"], axis=0),
        helper.make_node("Gather", ["s", "i3"], ["w"], axis=0),
        helper.make_node("Div", ["h", "neg4"], ["hq"]),           # -(h / 4), truncated towards zero
        helper.make_node("Mul", ["hq", "neg4"], ["h4"]),          # the multiple of 4 <= h
        helper.make_node("Sub", ["h", "h4"], ["hr"]),             # h mod 4
        helper.make_node("Mod", ["w", "two"], ["wr"]),
        helper.make_node("Add", ["hr", "wr"], ["extra"]),
        helper.make_node("Mul", ["h", "w"], ["hw"]),
        helper.make_node("Concat", ["n", "hw"], ["shape"], axis=0),
        helper.make_node("Squeeze", ["x", "i0"], ["x2"]),
        helper.make_node("Reshape", ["x2", "shape"], ["y"]),
        helper.make_node("Cast", ["extra"], ["extra_f"], to=1),
        helper.make_node("Add", ["y", "extra_f"], ["out"]),
    ]
    consts = {"i0": i64(0), "i2": i64(2), "i3": i64(3), "neg4": i64(-4), "two": i64(2), "n": i64(3)}
    model = make_model(nodes, {"x": (F, [1, 3, "H", "W"])}, ["out", "hq"], consts, opset=13)
    check_model(model, {"x": r(1, 3, *hw)}, tmpdir=str(tmp_path))


# --- hypothesis: broadcast shape pairs -----------------------------------------------------------------

@st.composite
def broadcast_pair(draw):
    """(a, b): b from a's shape with some dims set to 1 and some leading dims dropped, maybe swapped."""
    full = draw(st.lists(st.integers(1, 4), min_size=0, max_size=5))
    ones = draw(st.lists(st.booleans(), min_size=len(full), max_size=len(full)))
    drop = draw(st.integers(0, len(full)))
    other = [1 if o else d for d, o in zip(full, ones)][drop:]
    return (other, full) if draw(st.booleans()) else (full, other)


@settings(max_examples=30, deadline=None)
@given(shapes=broadcast_pair(), op=st.sampled_from(["Add", "Mul", "Sub", "Div", "Max", "Greater", "Equal"]),
       dtype=st.sampled_from([F, I64]))
def test_broadcast_hypothesis(shapes, op, dtype, tmp_path_factory):
    a, b = shapes
    check_op(op, {"a": r(*a, dtype=dtype, scale=5), "b": nonzero(r(*b, dtype=dtype, scale=5))},
             tmpdir=str(tmp_path_factory.mktemp("b")))


# --- cpu kernels directly: fused epilogue, out=, read-only inputs -----------------------------------

def _kernel(op):
    K.load_all()
    return K.find(op, "cpu/default").fn


BINARY_IR = ["elementwise_add", "elementwise_sub", "elementwise_mul", "elementwise_div", "elementwise_max",
             "elementwise_min"]


@pytest.mark.parametrize("act,alpha", [("relu", 0.0), ("relu6", 6.0), ("leaky_relu", 0.1), ("hard_swish", 0.0),
                                       ("sigmoid", 0.0), ("tanh", 0.0), ("swish", 1.5), ("hard_sigmoid", 1 / 6),
                                       ("gelu", 0.0), ("elu", 0.0)])
@pytest.mark.parametrize("op", BINARY_IR)
def test_fused_activation_epilogue(op, act, alpha):
    """No ONNX op produces act_type: the kernel vs the op's numpy definition (op, then the activation op)."""
    for a, b in [(r(2, 3, 4, scale=4), r(3, 1, scale=2) + 2.5), (r(5, 7, scale=4), r(5, 7) + 2.5),
                 (r(6, scale=4), np.array(2.5, F))]:
        want = OPS[op].run(a, b, act_type=act, act_alpha=alpha)[0]
        np.testing.assert_allclose(want, OPS[act].run(OPS[op].run(a, b, act_type="", act_alpha=0.0)[0],
                                                      **_act_attrs(act, alpha))[0], rtol=1e-6, atol=1e-7)
        got = _kernel(op)(a, b, act_type=act, act_alpha=alpha)
        assert got.dtype == want.dtype and got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("op", ["elementwise_add", "elementwise_sub", "elementwise_mul", "elementwise_div"])
@pytest.mark.parametrize("act,alpha", [("", 0.0), ("relu", 0.0), ("hard_swish", 0.0), ("sigmoid", 0.0)])
def test_prepared_kernel_into_the_arena(op, act, alpha):
    """The prepared kernel (float32 into an arena view): one value per row of the other operand (a squeeze-excite
    scale (1, C, 1, 1), either side; one value for all) runs the per-row loop, other layouts the general one;
    each against the op's numpy definition, a second call reusing the plan."""
    K.load_all()
    fn = K.KERNELS[(op, "cpu")]["default"].prepare([None, None], {"act_type": act, "act_alpha": alpha})
    full = r(1, 5, 3, 7, scale=3) + 4
    for a, b in [(full, r(1, 5, 1, 1) + 2.5), (r(1, 5, 1, 1) + 2.5, full), (full, np.array([2.5], F)),
                 (np.array([[[[1.5]]]], F), full), (r(2, 5, 3, 7), r(1, 5, 1, 1) + 2.5), (full, full + 1),
                 (r(1, 5, 3, 1) + 2.5, full), (r(1, 5, 1, 7) + 2.5, full)]:
        want = OPS[op].run(a, b, act_type=act, act_alpha=alpha)[0]
        out = np.full(want.shape, np.nan, F)
        for _ in range(2):
            assert fn(a, b, act_type=act, act_alpha=alpha, out=out) is out
            np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-6)


def _act_attrs(act, alpha):
    key = {"leaky_relu": "alpha", "relu6": "threshold", "swish": "beta", "hard_sigmoid": "slope"}.get(act)
    return {k: (alpha if k == key else a.default) for k, a in OPS[act].attrs.items()}


@pytest.mark.parametrize("op", ["elementwise_add", "elementwise_mul", "elementwise_max"])
def test_fused_activation_int(op):
    a, b = r(3, 4, dtype=I64, scale=9), r(4, dtype=I64, scale=9)
    want = OPS[op].run(a, b, act_type="relu", act_alpha=0.0)[0]
    got = _kernel(op)(a, b, act_type="relu", act_alpha=0.0)
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("op", BINARY_IR + ["elementwise_pow", "elementwise_mod"])
@pytest.mark.parametrize("dtype", [F, np.float64, I64, I32, np.uint8, np.float16])
def test_kernel_out_and_readonly(op, dtype):
    """Writes into a given `out`, never into the (read-only) inputs, keeps the dtype; float16 via numpy."""
    a = np.abs(r(2, 3, 4, dtype=dtype, scale=5)) + 1
    b = np.abs(r(3, 1, dtype=dtype, scale=2)) + 1
    a.flags.writeable = b.flags.writeable = False
    extra = {"fmod": True} if op == "elementwise_mod" else {}
    want = OPS[op].run(a, b, act_type="", act_alpha=0.0, **extra)[0]
    out = np.empty(want.shape, want.dtype)
    got = _kernel(op)(a, b, act_type="", act_alpha=0.0, out=out, **extra)
    assert got is out and got.dtype == want.dtype
    np.testing.assert_allclose(got, want, rtol=1e-3 if dtype == np.float16 else 1e-6)


def test_sum_kernel_out():
    xs = [r(2, 3), r(3), r(2, 1)]
    out = np.empty((2, 3), F)
    assert _kernel("sum")(*xs, out=out) is out
    np.testing.assert_allclose(out, OPS["sum"].run(*xs)[0], rtol=1e-6)
