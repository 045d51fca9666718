"""Reductions and arg-extrema through liteopt vs onnxruntime: axes as attribute (ReduceSum < 13, the others
< 18) or as a constant input, noop_with_empty_axes, keepdims, negative axes, integer types (truncating
mean), empty reductions, the decomposed ReduceL1/L2/SumSquare/LogSum/LogSumExp, ArgMax/ArgMin with ties
and select_last_index, dynamic input shapes, hypothesis over shapes x axes; errors name the node."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from onnx import helper

from helpers import check_op, convert, make_model

from liteopt.ir import OPS
from liteopt.ir.errors import LiteoptError
from liteopt.runtime import kernels as K

RNG = np.random.default_rng(0)
X = RNG.standard_normal((2, 3, 4, 5)).astype(np.float32)
I64 = np.int64
BASIC = ["ReduceMax", "ReduceMin", "ReduceMean", "ReduceSum", "ReduceProd"]
DECOMPOSED = ["ReduceL1", "ReduceL2", "ReduceSumSquare", "ReduceLogSum", "ReduceLogSumExp"]
AXES = [([1], 1), ([-1, 2], 0), (None, 1), (None, 0), ([0, 3], 1), ([0, 2], 0), ([-4, -3, -2, -1], 0)]
DYN = {"x": ["N", 3, "H", "W"]}


def axes_input_since(op):
    return 13 if op == "ReduceSum" else 18


def positive(op, x):
    """Inputs where the op is defined (log of a positive sum) and products stay moderate."""
    if op in ("ReduceLogSum", "ReduceProd"):
        return np.abs(x) + 0.5
    return x


def check_reduce(op, x, axes, keepdims, opset, tmp_path, noop=None, dynamic=None):
    """`axes` (None = absent) as an attribute or as a constant input, as the opset wants."""
    attrs = {"keepdims": keepdims, **({} if noop is None else {"noop_with_empty_axes": noop})}
    if opset >= axes_input_since(op):
        consts = {} if axes is None else {"axes": np.array(axes, I64)}
    else:
        attrs.update({} if axes is None else {"axes": axes})
        consts = {}
    check_op(op, {"x": x}, attrs, consts=consts, opset=opset, dynamic=dynamic, tmpdir=str(tmp_path))


@pytest.mark.parametrize("op", BASIC + DECOMPOSED)
@pytest.mark.parametrize("axes,keepdims", AXES)
@pytest.mark.parametrize("opset", [11, 18])
def test_reduce(op, axes, keepdims, opset, tmp_path):
    check_reduce(op, positive(op, X), axes, keepdims, opset, tmp_path)


@pytest.mark.parametrize("opset", [9, 12, 13, 17, 18, 21])
def test_reduce_sum_axes_by_opset(opset, tmp_path):
    """ReduceSum takes axes as an input from opset 13, the others from 18."""
    check_reduce("ReduceSum", X, [1, -1], 0, opset, tmp_path)
    check_reduce("ReduceMean", X, [1, -1], 0, opset, tmp_path)


@pytest.mark.parametrize("op", BASIC + DECOMPOSED)
@pytest.mark.parametrize("noop", [0, 1])
def test_noop_with_empty_axes(op, noop, tmp_path):
    """No axes (absent or an empty tensor): every axis, or the identity (still squaring etc.) with noop."""
    x = positive(op, X)
    opset = axes_input_since(op)
    check_reduce(op, x, None, 1, opset, tmp_path, noop=noop)
    check_op(op, {"x": x}, {"keepdims": 0, "noop_with_empty_axes": noop}, consts={"axes": np.zeros(0, I64)},
             opset=opset, tmpdir=str(tmp_path))
    check_reduce(op, x, [2], 0, opset, tmp_path, noop=noop)


@pytest.mark.parametrize("op", ["ReduceMax", "ReduceMin", "ReduceMean", "ReduceSum", "ReduceProd"])
@pytest.mark.parametrize("dtype", [I64, np.int32])
def test_reduce_int(op, dtype, tmp_path):
    """Integers stay integers: ReduceMean truncates towards zero (-7 / 3 = -2)."""
    x = RNG.integers(-9, 10, (2, 3, 4)).astype(dtype)
    if op == "ReduceProd":
        x = np.clip(x, -3, 3)
    for axes, keepdims in [([1], 1), ([0, 2], 0), (None, 0)]:
        check_reduce(op, x, axes, keepdims, 13, tmp_path)


def test_reduce_int64_exact(tmp_path):
    """A max among close values far above 2**53. (onnxruntime's int64 ReduceSum rounds there, 2**55 + 1 +
    2**55 + 3 giving 2**56, so exact int64 sums are checked against numpy in the kernel test below.)"""
    x = np.array([[2 ** 60, 3, -5], [2 ** 58 + 1, 2 ** 58 + 2, 7]], I64)
    check_reduce("ReduceMax", x, [1], 0, 13, tmp_path)
    check_reduce("ReduceMin", -x, [1], 0, 13, tmp_path)


def test_reduce_bool_max_min(tmp_path):
    x = RNG.standard_normal((3, 4)) > 0.5
    for op in ("ReduceMax", "ReduceMin"):
        check_reduce(op, x, [1], 0, 20, tmp_path)


@pytest.mark.parametrize("op", BASIC)
def test_reduce_empty(op, tmp_path):
    """Over an empty axis: -inf for max, inf for min, 0 for sum and mean, 1 for prod (onnxruntime)."""
    check_reduce(op, np.zeros((2, 0, 3), np.float32), [1], 0, 18, tmp_path)
    check_reduce(op, np.zeros((2, 0, 3), np.float32), [2], 1, 18, tmp_path)  # nothing to reduce into


def test_reduce_scalar_and_rank1(tmp_path):
    for op in BASIC:
        check_reduce(op, np.array(2.5, np.float32), None, 0, 18, tmp_path)
        check_reduce(op, X[0, 0, 0], [0], 0, 13, tmp_path)


def test_log_sum_exp_large(tmp_path):
    """exp(100) overflows float32: the maximum is subtracted first."""
    check_reduce("ReduceLogSumExp", X * 40 + 100, [1, 3], 1, 13, tmp_path)
    check_reduce("ReduceLogSumExp", X * 40 + 100, [2], 0, 18, tmp_path)


@pytest.mark.parametrize("op", BASIC + ["ReduceL2", "ReduceLogSumExp"])
def test_reduce_dynamic(op, tmp_path):
    for axes, keepdims in [([2, 3], 1), ([1], 0), ([-1], 0), (None, 0)]:
        check_reduce(op, positive(op, X), axes, keepdims, 13, tmp_path, dynamic=DYN)
        check_reduce(op, positive(op, X), axes, keepdims, 18, tmp_path, dynamic=DYN)


@settings(max_examples=25, deadline=None)
@given(shape=st.lists(st.integers(1, 4), min_size=1, max_size=5), data=st.data(),
       op=st.sampled_from(BASIC + ["ReduceL2", "ReduceSumSquare"]), keepdims=st.sampled_from([0, 1]))
def test_reduce_hypothesis(shape, data, op, keepdims, tmp_path_factory):
    rank = len(shape)
    axes = data.draw(st.lists(st.integers(-rank, rank - 1), max_size=rank, unique_by=lambda a: a % rank))
    x = positive(op, RNG.standard_normal(shape).astype(np.float32))
    check_reduce(op, x, axes or None, keepdims, data.draw(st.sampled_from([11, 18])),
                 tmp_path_factory.mktemp("r"))


# --- ArgMax / ArgMin -------------------------------------------------------------------------------------

TIES = np.round(X * 2) / 2  # repeated values, so that select_last_index matters


@pytest.mark.parametrize("op", ["ArgMax", "ArgMin"])
@pytest.mark.parametrize("axis,keepdims,last", [(1, 1, 0), (-1, 0, 0), (2, 1, 1), (0, 0, 1), (3, 0, 1), (-3, 1, 0)])
def test_arg(op, axis, keepdims, last, tmp_path):
    check_op(op, {"x": TIES}, {"axis": axis, "keepdims": keepdims, "select_last_index": last}, tmpdir=str(tmp_path))


@pytest.mark.parametrize("op", ["ArgMax", "ArgMin"])
def test_arg_opsets_types_dynamic(op, tmp_path):
    check_op(op, {"x": X}, {"axis": 1}, opset=9, tmpdir=str(tmp_path))  # keepdims default 1
    check_op(op, {"x": X}, {"axis": -1, "keepdims": 0}, opset=11, tmpdir=str(tmp_path))
    xi = RNG.integers(-3, 3, (3, 4, 5)).astype(I64)
    check_op(op, {"x": xi}, {"axis": 2, "keepdims": 0, "select_last_index": 1}, opset=13, tmpdir=str(tmp_path))
    check_op(op, {"x": xi.astype(np.int32)}, {"axis": 0}, opset=13, tmpdir=str(tmp_path))
    check_op(op, {"x": TIES}, {"axis": 3, "keepdims": 0}, dynamic=DYN, tmpdir=str(tmp_path))
    check_op(op, {"x": TIES}, {"axis": 1, "select_last_index": 1}, dynamic=DYN, tmpdir=str(tmp_path))
    check_op(op, {"x": X[0, 0, 0]}, {"keepdims": 0}, tmpdir=str(tmp_path))


@pytest.mark.parametrize("op", ["ArgMax", "ArgMin"])
def test_arg_nan(op, tmp_path):
    """A NaN is never the extremum unless it comes first (onnxruntime's scan order)."""
    x = np.array([[2, np.nan, 3, np.nan], [np.nan, 1, 5, 5], [1, 1, np.nan, 0]], np.float32)
    for last in (0, 1):
        check_op(op, {"x": x}, {"axis": 1, "keepdims": 0, "select_last_index": last}, tmpdir=str(tmp_path))


# --- errors ---------------------------------------------------------------------------------------------

def _one(op, inputs, attrs=None, opset=18, decl=None, inits=None):
    node = helper.make_node(op, inputs, ["y"], name="the_node", **(attrs or {}))
    return make_model([node], decl or {"x": X}, ["y"], inits or {}, opset=opset)


@pytest.mark.parametrize("model,match", [
    (_one("ReduceMean", ["x", "a"], decl={"x": X, "a": np.array([1], I64)}), "axes .* must be a constant"),
    (_one("ReduceSum", ["x", "a"], opset=13, decl={"x": X, "a": np.array([1], I64)}), "axes .* must be a constant"),
    (_one("ReduceMax", ["x"], {"axes": [4]}, opset=13), "axis 4 out of range"),
    (_one("ArgMax", ["x"], {"axis": -5}), "axis -5 out of range"),
])
def test_errors(model, match, tmp_path):
    with pytest.raises(LiteoptError, match=match) as e:
        convert(model, str(tmp_path))
    assert "the_node" in str(e.value)


# --- kernels directly ----------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["reduce_max", "reduce_min", "reduce_mean", "reduce_sum", "reduce_prod"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, I64, np.int32, np.uint8])
def test_reduce_kernel_vs_registry(name, dtype):
    """Every axes layout (adjacent, split, all, none), read-only input, out=, exact dtype."""
    K.load_all()
    fn = K.find(name, "cpu/default").fn
    x = (RNG.standard_normal((2, 3, 4, 5)) * (1 if name == "reduce_prod" else 9)).astype(dtype)
    if name == "reduce_prod" and np.issubdtype(dtype, np.floating):  # factors near 1: a product of 120 standard
        x = (1 + 0.4 * RNG.standard_normal((2, 3, 4, 5))).astype(dtype)  # normals can be subnormal (few digits)
    x.flags.writeable = False
    for dim, reduce_all in [((1,), False), ((2, 3), False), ((0, 2), False), ((3, 0), False), ((0,), True)]:
        for keep in (False, True):
            attrs = dict(dim=dim, keep_dim=keep, reduce_all=reduce_all)
            want = OPS[name].run(x, **attrs)[0]
            out = np.empty(want.shape, want.dtype)
            got = fn(x, **attrs, out=out)
            assert got is out and got.dtype == want.dtype and got.shape == want.shape
            np.testing.assert_allclose(got, want, rtol=1e-5)


def test_reduce_kernel_int64_exact():
    K.load_all()
    x = np.array([[2 ** 55 + 1, 2 ** 55 + 3, -1], [2 ** 62, 2 ** 62, 5]], I64)
    for name, want in [("reduce_sum", [2 ** 56 + 3, -(2 ** 63) + 5]), ("reduce_mean", [(2 ** 56 + 3) // 3, 0])]:
        got = K.find(name, "cpu/default").fn(x, dim=(1,), keep_dim=False, reduce_all=False)
        assert got.tolist() == OPS[name].run(x, dim=(1,), keep_dim=False, reduce_all=False)[0].tolist()
        assert got[0] == want[0]


@pytest.mark.parametrize("opset", [9, 11])
@pytest.mark.parametrize("axis,largest", [(-1, 1), (1, 0), (0, 1)])
def test_top_k(opset, axis, largest, tmp_path):
    """The k largest (or smallest) and their indices (opset 9: k an attribute); equal values keep the lower
    index first (onnxruntime's order: values drawn from a few integers make ties)."""
    if opset == 9 and not largest:
        return
    x = np.random.default_rng(0).integers(0, 4, (3, 5, 6)).astype(np.float32)
    attrs = {"axis": axis, **({"k": 3} if opset == 9 else {"largest": largest})}
    consts = {} if opset == 9 else {"k": np.array([3], np.int64)}
    check_op("TopK", {"x": x}, attrs, consts=consts, n_outputs=2, opset=opset, tmpdir=str(tmp_path))


def test_top_k_with_k_known_at_run_time(tmp_path):
    x = np.random.default_rng(1).standard_normal((2, 7)).astype(np.float32)
    check_op("TopK", {"x": x, "k": np.array([4], np.int64)}, {"axis": 1}, n_outputs=2, opset=11,
             tmpdir=str(tmp_path))
