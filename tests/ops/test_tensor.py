"""Data-movement and shape ops through liteopt vs onnxruntime: every ONNX op of the family and its opset
variants, constant and run-time shape/start/repeat tensors, negative axes, int64 data, dynamic input shapes
(Shape -> Gather -> Unsqueeze -> Concat -> Reshape as the PP-OCR models do), and the errors that name the node."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from onnx import TensorProto, helper, numpy_helper

from helpers import check_model, check_op, convert, make_model
from liteopt.runtime import load
from liteopt.ir.errors import LiteoptError

RNG = np.random.default_rng(0)
X = RNG.standard_normal((2, 3, 4, 5)).astype(np.float32)
XI = np.arange(120, dtype=np.int64).reshape(2, 3, 4, 5) - 60
I64 = np.int64
INT64_MAX, INT64_MIN = 2 ** 63 - 1, -2 ** 63
DYN = {"x": ["N", 3, "H", "W"]}


def i64(*v):
    return np.array(v, I64)


# --- Reshape (opset 5 and 14: allowzero) -----------------------------------------------------------------

@pytest.mark.parametrize("shape", [(6, 20), (0, -1), (2, -1, 5), (-1,), (2, 3, 20, 1), (0, 0, -1), (-1, 0, 4, 5)])
@pytest.mark.parametrize("x", [X, XI], ids=["f32", "i64"])
def test_reshape(shape, x, tmp_path):
    check_op("Reshape", {"x": x}, consts={"s": np.array(shape, I64)}, opset=9, tmpdir=str(tmp_path))


@pytest.mark.parametrize("shape", [(6, 20), (2, 3, -1)])
def test_reshape_allowzero(shape, tmp_path):
    check_op("Reshape", {"x": X}, {"allowzero": 1}, consts={"s": np.array(shape, I64)}, opset=14, tmpdir=str(tmp_path))


def test_reshape_runtime_shape(tmp_path):
    """The target shape is a run-time input (0 and -1 resolved by the kernel), input dims dynamic."""
    for s in [i64(0, -1, 5), i64(6, 20), i64(-1)]:
        check_op("Reshape", {"x": X, "s": s}, tmpdir=str(tmp_path))
    check_op("Reshape", {"x": X, "s": i64(0, 3, -1)}, dynamic=DYN, opset=14, tmpdir=str(tmp_path))
    check_op("Reshape", {"x": X}, consts={"s": i64(0, 0, -1)}, dynamic=DYN, tmpdir=str(tmp_path))


# --- Transpose, Squeeze / Unsqueeze, Flatten -------------------------------------------------------------

@pytest.mark.parametrize("perm", [None, [0, 2, 3, 1], [3, 1, 0, 2], [0, 1, 2, 3]])
def test_transpose(perm, tmp_path):
    attrs = {} if perm is None else {"perm": perm}
    check_op("Transpose", {"x": X}, attrs, tmpdir=str(tmp_path))
    check_op("Transpose", {"x": XI}, attrs, dynamic=DYN, tmpdir=str(tmp_path))


def test_transpose_ranks(tmp_path):
    check_op("Transpose", {"x": np.array(3.5, np.float32)}, tmpdir=str(tmp_path))
    check_op("Transpose", {"x": X[0, 0]}, tmpdir=str(tmp_path))
    x6 = RNG.standard_normal((2, 1, 3, 2, 2, 3)).astype(np.float32)
    check_op("Transpose", {"x": x6}, {"perm": [5, 0, 3, 1, 4, 2]}, tmpdir=str(tmp_path))


X_SQ = RNG.standard_normal((2, 1, 3, 1)).astype(np.float32)


@pytest.mark.parametrize("axes", [[1, -1], [1], [-1], None])
def test_squeeze(axes, tmp_path):
    check_op("Squeeze", {"x": X_SQ}, {} if axes is None else {"axes": axes}, opset=11, tmpdir=str(tmp_path))
    if axes is None:
        check_op("Squeeze", {"x": X_SQ}, opset=13, tmpdir=str(tmp_path))
    else:
        check_op("Squeeze", {"x": X_SQ}, consts={"a": np.array(axes, I64)}, opset=13, tmpdir=str(tmp_path))
        check_op("Squeeze", {"x": X_SQ}, consts={"a": np.array(axes, I64)}, dynamic={"x": ["N", 1, "C", 1]},
                 opset=13, tmpdir=str(tmp_path))


@pytest.mark.parametrize("axes", [[0], [0, -1], [1, 3], [-1, -2], [5, 0]])
def test_unsqueeze(axes, tmp_path):
    """axes index the output (rank 4 + len(axes)), negative ones too."""
    check_op("Unsqueeze", {"x": X_SQ}, {"axes": axes}, opset=11, tmpdir=str(tmp_path))
    check_op("Unsqueeze", {"x": X_SQ}, consts={"a": np.array(axes, I64)}, opset=13, tmpdir=str(tmp_path))
    check_op("Unsqueeze", {"x": X_SQ}, consts={"a": np.array(axes, I64)}, dynamic={"x": ["N", 1, "C", 1]},
             opset=13, tmpdir=str(tmp_path))


def test_unsqueeze_scalar(tmp_path):
    check_op("Unsqueeze", {"x": np.array(7, I64)}, consts={"a": i64(0)}, opset=13, tmpdir=str(tmp_path))
    check_op("Unsqueeze", {"x": np.array(7, I64)}, consts={"a": i64(-1, 0)}, opset=13, tmpdir=str(tmp_path))


@pytest.mark.parametrize("axis", [0, 1, 2, 4, -1, -2, -4])
def test_flatten(axis, tmp_path):
    check_op("Flatten", {"x": X}, {"axis": axis}, tmpdir=str(tmp_path))
    check_op("Flatten", {"x": XI}, {"axis": axis}, dynamic=DYN, opset=11, tmpdir=str(tmp_path))


def test_flatten_default(tmp_path):
    check_op("Flatten", {"x": X}, tmpdir=str(tmp_path))


# --- Concat, Split ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("axis", [0, 1, -1, 3, -4])
def test_concat(axis, tmp_path):
    y = np.concatenate([X, X], axis=axis) * 2
    check_op("Concat", {"x": X, "y": y}, {"axis": axis}, tmpdir=str(tmp_path))
    check_op("Concat", {"x": XI, "y": XI + 1000, "z": XI[:1] if axis in (0, -4) else XI}, {"axis": axis},
             tmpdir=str(tmp_path))


def test_concat_dynamic_and_constants(tmp_path):
    check_op("Concat", {"x": X}, {"axis": 1}, consts={"c": X[:, :1] + 5}, dynamic={"x": ["N", 3, 4, 5]},
             tmpdir=str(tmp_path))
    check_op("Concat", {"x": X}, {"axis": 2}, dynamic=DYN, input_order=["x", "x", "x"], tmpdir=str(tmp_path))
    check_op("Concat", {"x": np.array([3.0], np.float32)}, {"axis": 0}, tmpdir=str(tmp_path))


@pytest.mark.parametrize("opset,attrs,sizes,n", [
    (11, {"axis": 0}, None, 2), (11, {"axis": -1, "split": [2, 3]}, None, 2), (11, {"axis": 1}, None, 3),
    (13, {"axis": 3}, [1, 4], 2), (13, {"axis": -3}, [1, 0, 2], 3), (13, {"axis": 2}, None, 4),
    (18, {"axis": 2, "num_outputs": 2}, None, 2), (18, {"axis": -1, "num_outputs": 2}, None, 2),
    (18, {"axis": 3, "num_outputs": 3}, None, 3), (18, {"axis": 3}, [3, 2], 2)])
def test_split(opset, attrs, sizes, n, tmp_path):
    """Sizes as attribute (< 13), as input (>= 13), num_outputs with an uneven last part (>= 18)."""
    consts = {"s": np.array(sizes, I64)} if sizes else {}
    check_op("Split", {"x": X}, attrs, consts=consts, n_outputs=n, opset=opset, tmpdir=str(tmp_path))
    check_op("Split", {"x": XI}, attrs, consts=consts, n_outputs=n, opset=opset, tmpdir=str(tmp_path))


def test_split_dynamic(tmp_path):
    check_op("Split", {"x": X}, {"axis": 1}, consts={"s": i64(2, 1)}, n_outputs=2, dynamic=DYN, tmpdir=str(tmp_path))
    check_op("Split", {"x": X}, {"axis": 1}, n_outputs=3, dynamic=DYN, tmpdir=str(tmp_path))


# --- Slice (attributes before opset 10, inputs after) ---------------------------------------------------

@pytest.mark.parametrize("starts,ends,axes,steps", [
    ([1], [3], [1], None), ([0, 1], [2, -1], [2, 3], None), ([-1], [-1000], [3], [-1]),
    ([0], [INT64_MAX], [2], [2]), ([3], [0], [2], [-2]), ([1, 0], [2, 5], [0, -1], [1, 3]),
    ([-1], [INT64_MIN], [3], [-1]), ([INT64_MAX], [INT64_MIN], [-2], [-2]), ([-1000], [1000], [1], [1]),
    ([-1000], [-2000], [3], [-1]), ([1000], [-1000], [3], [-3]), ([5], [1], [3], [1]), ([2], [2], [2], None),
    ([0, 0, 0, 0], [1, 2, 3, 4], [3, 2, 1, 0], [1, 1, 1, 1]), ([3, 1], [-INT64_MAX, 2], [-1, 1], [-1, 1]),
])
def test_slice(starts, ends, axes, steps, tmp_path):
    consts = {"st": np.array(starts, I64), "en": np.array(ends, I64), "ax": np.array(axes, I64)}
    if steps:
        consts["sp"] = np.array(steps, I64)
    check_op("Slice", {"x": X}, consts=consts, tmpdir=str(tmp_path))
    check_op("Slice", {"x": XI}, consts=consts, dynamic=DYN, tmpdir=str(tmp_path))


def test_slice_without_axes(tmp_path):
    check_op("Slice", {"x": X}, consts={"st": i64(1, 0), "en": i64(2, -1)}, tmpdir=str(tmp_path))
    check_op("Slice", {"x": X}, consts={"st": i64(-1), "en": i64(INT64_MIN), "sp": i64(-1)},
             input_order=["x", "st", "en", "", "sp"], tmpdir=str(tmp_path))


@pytest.mark.parametrize("opset", [9])
def test_slice_attributes(opset, tmp_path):
    check_op("Slice", {"x": X}, {"starts": [1, 0], "ends": [3, -1], "axes": [1, 3]}, opset=opset, tmpdir=str(tmp_path))
    check_op("Slice", {"x": X}, {"starts": [1, -3], "ends": [INT64_MAX, 1000], "axes": [-1, 2]}, opset=opset,
             tmpdir=str(tmp_path))
    check_op("Slice", {"x": X}, {"starts": [0, 1], "ends": [1, 2]}, opset=opset, dynamic=DYN, tmpdir=str(tmp_path))


@pytest.mark.parametrize("runtime", [("st",), ("en",), ("st", "en"), ("st", "en", "sp")])
def test_slice_runtime_starts_ends(runtime, tmp_path):
    """starts/ends/steps computed at run time become the op's tensor inputs (axes stay constant)."""
    vals = {"st": i64(3, -1), "en": i64(0, INT64_MIN), "ax": i64(2, -1), "sp": i64(-1, -2)}
    inputs = {"x": X, **{k: vals[k] for k in runtime}}
    consts = {k: v for k, v in vals.items() if k not in runtime}
    order = ["x", "st", "en", "ax", "sp"]
    check_op("Slice", inputs, consts=consts, input_order=order, tmpdir=str(tmp_path))
    check_op("Slice", inputs, consts=consts, input_order=order, dynamic=DYN, tmpdir=str(tmp_path))


_ends = st.one_of(st.integers(-8, 8), st.sampled_from([INT64_MAX, INT64_MIN, 2 ** 31 - 1, -2 ** 31]))


@settings(max_examples=25, deadline=None)
@given(shape=st.lists(st.integers(0, 5), min_size=1, max_size=3), data=st.data())
def test_slice_hypothesis(shape, data, tmp_path_factory):
    rank = len(shape)
    axes = data.draw(st.lists(st.integers(-rank, rank - 1), min_size=1, max_size=rank,
                              unique_by=lambda a: a % rank))
    n = len(axes)
    starts = data.draw(st.lists(_ends, min_size=n, max_size=n))
    ends = data.draw(st.lists(_ends, min_size=n, max_size=n))
    steps = data.draw(st.lists(st.sampled_from([1, 2, 3, -1, -2, -5, INT64_MAX, INT64_MIN]), min_size=n, max_size=n))
    x = np.arange(int(np.prod(shape)), dtype=np.float32).reshape(shape)
    consts = {"st": np.array(starts, I64), "en": np.array(ends, I64), "ax": np.array(axes, I64),
              "sp": np.array(steps, I64)}
    check_op("Slice", {"x": x}, consts=consts, tmpdir=str(tmp_path_factory.mktemp("s")))


# --- Gather -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("index,axis", [
    (np.array(1, I64), 0), (np.array(-1, I64), 3), (np.array([2, -1, 0], I64), 3), (np.array([[0, 1], [2, 2]], I64), 1),
    (np.array([[-4, 3, 0]], np.int32), -2), (np.array([], I64), 1), (np.array([[[1]]], I64), -1)])
def test_gather(index, axis, tmp_path):
    check_op("Gather", {"x": X}, {"axis": axis}, consts={"i": index}, tmpdir=str(tmp_path))
    check_op("Gather", {"x": XI, "i": index}, {"axis": axis}, tmpdir=str(tmp_path))


def test_gather_int64_data_and_dynamic(tmp_path):
    check_op("Gather", {"x": np.arange(12, dtype=I64).reshape(3, 4)}, {"axis": 1}, consts={"i": i64(3, 0)},
             tmpdir=str(tmp_path))
    check_op("Gather", {"x": X}, {"axis": 1}, consts={"i": i64(2, 0, -1)}, dynamic=DYN, tmpdir=str(tmp_path))
    check_op("Gather", {"x": X}, {"axis": 0}, consts={"i": np.array(-1, I64)}, dynamic=DYN, tmpdir=str(tmp_path))
    check_op("Gather", {"x": i64(5, 6, 7)}, consts={"i": np.array(2, I64)}, tmpdir=str(tmp_path))


@pytest.mark.parametrize("index, upd_shape", [
    (np.array([[2], [0]], I64), (2, 4, 5)),           # whole slices of the first axis
    (np.array([[0, 2], [2, -1], [1, 0]], I64), (3, 5)),  # rows, a negative entry
    (np.array([[0, 1, 2], [2, 3, 4]], I64), (2,)),   # single elements
])
@pytest.mark.parametrize("reduction, opset", [("none", 13), ("add", 16), ("mul", 16), ("max", 18), ("min", 18)])
def test_scatter_nd(index, upd_shape, reduction, opset, tmp_path):
    """Data at run time (a kernel), and all constant (folded at opt time: Swin's attention masks)."""
    data = RNG.standard_normal((3, 4, 5)).astype(np.float32)
    upd = RNG.standard_normal(upd_shape).astype(np.float32)
    at = {} if reduction == "none" else {"reduction": reduction}
    check_op("ScatterND", {"x": data}, at, consts={"i": index, "u": upd}, opset=opset, tmpdir=str(tmp_path))
    check_op("ScatterND", {"x": data, "u": upd}, at, consts={"i": index}, opset=opset, tmpdir=str(tmp_path),
             input_order=["x", "i", "u"])
    check_op("ScatterND", {"x": data.astype(I64)}, at, consts={"i": index, "u": (upd * 10).astype(I64)},
             opset=opset, tmpdir=str(tmp_path))


def test_scatter_nd_errors_name_the_node(tmp_path):
    """Updates that do not fit: refused at conversion; an index out of range: at run time, naming the node."""
    data = RNG.standard_normal((3, 4)).astype(np.float32)
    bad = make_model([helper.make_node("ScatterND", ["x", "i", "u"], ["y"], name="sc")], {"x": data}, ["y"],
                     {"i": np.array([[1]], I64), "u": np.zeros((1, 3), np.float32)})
    with pytest.raises(LiteoptError, match="sc"):
        convert(bad, str(tmp_path))
    oob = make_model([helper.make_node("ScatterND", ["x", "i", "u"], ["y"], name="sc2")], {"x": data}, ["y"],
                     {"i": np.array([[5]], I64), "u": np.zeros((1, 4), np.float32)})
    with pytest.raises(LiteoptError, match="sc2.*out of range"):
        load(convert(oob, str(tmp_path)))({"x": data})


# --- Expand, Tile ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("x_shape,shape", [((2, 3, 4, 1), (2, 3, 4, 5)), ((3, 1, 5), (3, 1, 1)),
                                           ((3, 1, 5), (1, 1, 2, 3, 4, 5)), ((3, 1, 5), (4, 1)), ((1,), (2, 3)),
                                           ((), (2, 2)), ((3, 1, 5), (5,)), ((2, 1), (2, 1))])
def test_expand(x_shape, shape, tmp_path):
    x = np.asarray(RNG.standard_normal(x_shape), np.float32)
    check_op("Expand", {"x": x}, consts={"s": np.array(shape, I64)}, tmpdir=str(tmp_path))
    check_op("Expand", {"x": np.asarray(x * 100).astype(I64), "s": np.array(shape, I64)}, tmpdir=str(tmp_path))


def test_expand_dynamic(tmp_path):
    check_op("Expand", {"x": X[:, :1]}, consts={"s": i64(1, 3, 1, 1)}, dynamic={"x": ["N", 1, "H", "W"]},
             tmpdir=str(tmp_path))
    check_op("Expand", {"x": X[:, :1], "s": i64(2, 1, 3, 4, 5)}, dynamic={"x": ["N", 1, "H", "W"]},
             tmpdir=str(tmp_path))


@pytest.mark.parametrize("reps", [(1, 2, 1, 3), (2, 1, 1, 1), (1, 1, 1, 1), (3, 2, 2, 2), (1, 0, 1, 1)])
def test_tile(reps, tmp_path):
    check_op("Tile", {"x": X}, consts={"r": np.array(reps, I64)}, tmpdir=str(tmp_path))
    check_op("Tile", {"x": XI, "r": np.array(reps, I64)}, tmpdir=str(tmp_path))
    check_op("Tile", {"x": X}, consts={"r": np.array(reps, I64)}, dynamic=DYN, tmpdir=str(tmp_path))


# --- Shape, Cast ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("opset,attrs", [(13, {}), (9, {}), (15, {}), (15, {"start": 1}), (15, {"start": -3, "end": -1}),
                                         (15, {"end": 2}), (15, {"start": -100, "end": 100}), (15, {"start": 3, "end": 1})])
def test_shape(opset, attrs, tmp_path):
    check_op("Shape", {"x": X}, attrs, opset=opset, tmpdir=str(tmp_path))
    check_op("Shape", {"x": X}, attrs, opset=opset, dynamic=DYN, tmpdir=str(tmp_path))


@pytest.mark.parametrize("to,x", [(TensorProto.INT64, X * 3), (TensorProto.FLOAT, np.arange(6, dtype=I64)),
                                  (TensorProto.BOOL, np.round(X)), (TensorProto.INT32, X * 10),
                                  (TensorProto.FLOAT16, X), (TensorProto.FLOAT, X.astype(np.float16)),
                                  (TensorProto.INT8, X * 10), (TensorProto.UINT8, np.abs(X) * 10),
                                  (TensorProto.INT64, np.array([True, False])), (TensorProto.FLOAT, X)])
@pytest.mark.parametrize("opset", [9, 13, 19])
def test_cast(to, x, opset, tmp_path):
    check_op("Cast", {"x": x}, {"to": to}, opset=opset, tmpdir=str(tmp_path))


def test_cast_dynamic(tmp_path):
    check_op("Cast", {"x": X * 3}, {"to": TensorProto.INT64}, dynamic=DYN, tmpdir=str(tmp_path))


# --- ConstantOfShape, Range, Constant -----------------------------------------------------------------------

@pytest.mark.parametrize("value", [None, np.array([2.5], np.float32), np.array([-7], I64), np.array([3], np.int32),
                                   np.array([True])])
def test_constant_of_shape(value, tmp_path):
    attrs = {} if value is None else {"value": numpy_helper.from_array(value)}
    check_op("ConstantOfShape", {}, attrs, consts={"s": i64(2, 3)}, tmpdir=str(tmp_path))
    check_op("ConstantOfShape", {"s": i64(3, 1, 2)}, attrs, tmpdir=str(tmp_path))
    check_op("ConstantOfShape", {"s": i64(4)}, attrs, opset=9, tmpdir=str(tmp_path))


def test_constant_of_shape_large(tmp_path):
    """Too large to fold into the file: fill_constant stays an op without inputs."""
    check_op("ConstantOfShape", {}, {"value": numpy_helper.from_array(np.array([-1.5], np.float32))},
             consts={"s": i64(300, 301)}, tmpdir=str(tmp_path))


def test_constant_of_shape_and_range_dynamic(tmp_path):
    nodes = [helper.make_node("Shape", ["x"], ["s"]),
             helper.make_node("ConstantOfShape", ["s"], ["c"], value=numpy_helper.from_array(np.array([2.5], np.float32))),
             helper.make_node("Gather", ["s", "i"], ["n"], axis=0),
             helper.make_node("Range", ["zero", "n", "one"], ["r"])]
    model = make_model(nodes, {"x": (np.float32, ["A", 3])}, ["c", "r"],
                       {"i": np.array(0, I64), "zero": np.array(0, I64), "one": np.array(1, I64)})
    for n in (4, 1):
        check_model(model, {"x": RNG.standard_normal((n, 3)).astype(np.float32)}, tmpdir=str(tmp_path))


@pytest.mark.parametrize("start,limit,delta", [(0, 5, 1), (10, -3, -3), (2, 2, 1), (5, 0, 1), (-4, 9, 4)])
@pytest.mark.parametrize("dtype", [I64, np.int32, np.float32])
def test_range(start, limit, delta, dtype, tmp_path):
    vals = {"a": np.array(start, dtype), "b": np.array(limit, dtype), "c": np.array(delta, dtype)}
    check_op("Range", {}, consts=vals, tmpdir=str(tmp_path))
    check_op("Range", vals, tmpdir=str(tmp_path))


def test_range_float_steps(tmp_path):
    vals = {"a": np.array(0.5, np.float32), "b": np.array(3.2, np.float32), "c": np.array(0.25, np.float32)}
    check_op("Range", vals, tmpdir=str(tmp_path))


def _constant_model(**attrs):
    node = helper.make_node("Constant", [], ["c"], **attrs)
    add = helper.make_node("Identity", ["c"], ["y"])
    shape = helper.make_node("Shape", ["c"], ["s"])
    return make_model([node, add, shape], {}, ["y", "s"])


@pytest.mark.parametrize("attrs", [{"value": numpy_helper.from_array(X[0])},
                                   {"value": numpy_helper.from_array(np.array([1, -2], I64))},
                                   {"value": numpy_helper.from_array(np.array(True))},
                                   {"value_float": 1.5}, {"value_floats": [1.0, -2.5]}, {"value_int": -3},
                                   {"value_ints": [4, 5, 6]}])
def test_constant(attrs, tmp_path):
    check_model(_constant_model(**attrs), {}, tmpdir=str(tmp_path))


def test_constant_feeds_reshape(tmp_path):
    nodes = [helper.make_node("Constant", [], ["s"], value_ints=[0, -1]),
             helper.make_node("Reshape", ["x", "s"], ["y"])]
    model = make_model(nodes, {"x": (np.float32, ["N", 3, "H", "W"])}, ["y"], opset=13)
    check_model(model, {"x": X}, tmpdir=str(tmp_path))


# --- Identity, Dropout ------------------------------------------------------------------------------------

def test_identity(tmp_path):
    check_op("Identity", {"x": X}, tmpdir=str(tmp_path))
    check_op("Identity", {"x": XI}, dynamic=DYN, tmpdir=str(tmp_path))
    nodes = [helper.make_node("Identity", ["x"], ["a"]), helper.make_node("Relu", ["a"], ["y"])]
    check_model(make_model(nodes, {"x": X}, ["a", "y"]), {"x": X}, tmpdir=str(tmp_path))


@pytest.mark.parametrize("opset,attrs,consts,order", [
    (9, {}, {}, ["x"]), (10, {"ratio": 0.3}, {}, ["x"]), (13, {}, {}, ["x"]),
    (13, {}, {"r": np.array(0.2, np.float32)}, ["x", "r"]),
    (13, {"seed": 3}, {"r": np.array(0.2, np.float32), "t": np.array(False)}, ["x", "r", "t"]),
    (12, {}, {"t": np.array(False)}, ["x", "", "t"])])
def test_dropout(opset, attrs, consts, order, tmp_path):
    check_op("Dropout", {"x": X}, attrs, consts=consts, input_order=order, opset=opset, tmpdir=str(tmp_path))


# --- dynamic shape arithmetic: one .nb, several input sizes -------------------------------------------------

def test_dynamic_shape_chain(tmp_path):
    """Shape -> Gather -> Unsqueeze -> Concat -> Reshape on an input declared [N, 3, H, W]."""
    nodes = [helper.make_node("Shape", ["x"], ["s"]),
             helper.make_node("Gather", ["s", "i0"], ["n"], axis=0),
             helper.make_node("Gather", ["s", "i1"], ["c"], axis=0),
             helper.make_node("Unsqueeze", ["n", "ax"], ["nu"]),
             helper.make_node("Unsqueeze", ["c", "ax"], ["cu"]),
             helper.make_node("Concat", ["nu", "cu", "m1"], ["shp"], axis=0),
             helper.make_node("Reshape", ["x", "shp"], ["r"]),
             helper.make_node("Transpose", ["r"], ["y"], perm=[0, 2, 1])]
    inits = {"i0": np.array(0, I64), "i1": np.array(1, I64), "ax": i64(0), "m1": i64(-1)}
    model = make_model(nodes, {"x": (np.float32, ["N", 3, "H", "W"])}, ["y", "shp"], inits)
    for shape in [(1, 3, 4, 5), (2, 3, 7, 2), (3, 3, 1, 1)]:
        check_model(model, {"x": RNG.standard_normal(shape).astype(np.float32)}, tmpdir=str(tmp_path))


def test_dynamic_ocr_head(tmp_path):
    """PP-OCR style: H/W sliced from Shape, Div, Concat into a Reshape target; Slice with a run-time end;
    Expand/Tile to a run-time shape; ConstantOfShape of a run-time shape (opset 11 Unsqueeze attrs)."""
    nodes = [helper.make_node("Shape", ["x"], ["s"]),
             helper.make_node("Slice", ["s", "b2", "b4"], ["hw"]),                   # [H, W]
             helper.make_node("Div", ["hw", "two"], ["hw2"]),
             helper.make_node("Slice", ["s", "b0", "b1"], ["n"]),
             helper.make_node("Concat", ["n", "m1", "hw2"], ["shp"], axis=0),     # [N, -1, H/2, W/2]
             helper.make_node("Slice", ["x", "z2", "hw2", "a23"], ["xs"]),         # x[:, :, :H/2, :W/2]
             helper.make_node("Transpose", ["xs"], ["xt"], perm=[0, 1, 3, 2]),
             helper.make_node("Reshape", ["xt", "s1"], ["xr"]),
             helper.make_node("Concat", ["n", "one3"], ["es"], axis=0),
             helper.make_node("Expand", ["bias", "es"], ["be"]),                   # (N, 3, 1, 1)
             helper.make_node("Tile", ["bias", "es"], ["bt"]),
             helper.make_node("ConstantOfShape", ["hw2"], ["z"], value=numpy_helper.from_array(np.array([1], I64))),
             helper.make_node("Unsqueeze", ["z"], ["zu"], axes=[0, -1]),
             helper.make_node("Squeeze", ["zu"], ["zs"], axes=[-1])]
    inits = {"b0": i64(0), "b1": i64(1), "b2": i64(2), "b4": i64(4), "two": i64(2), "m1": i64(-1),
             "s1": i64(0, 0, -1), "z2": i64(0, 0), "a23": i64(2, 3), "one3": i64(3, 1, 1), "bias": RNG.standard_normal((1, 3, 1, 1)).astype(np.float32)}
    model = make_model(nodes, {"x": (np.float32, ["N", 3, "H", "W"])}, ["shp", "xr", "be", "bt", "zs"], inits, opset=11)
    for shape in [(1, 3, 4, 6), (2, 3, 8, 2)]:
        check_model(model, {"x": RNG.standard_normal(shape).astype(np.float32)}, tmpdir=str(tmp_path))
    check_model(model, {"x": X}, input_shapes={"x": X.shape}, tmpdir=str(tmp_path))  # pinned: all folded


# --- errors name the node ---------------------------------------------------------------------------------

def _one(op_type, inputs, outputs, attrs=None, opset=13, inits=None, decl=None):
    node = helper.make_node(op_type, list(inputs), outputs, name="the_node", **(attrs or {}))
    return make_model([node], decl or {"x": X}, [o for o in outputs if o], inits or {}, opset=opset)


@pytest.mark.parametrize("model,match", [
    (_one("Unsqueeze", ["x", "a"], ["y"], decl={"x": X, "a": i64(0)}), "axes .* must be a constant"),
    (_one("Squeeze", ["x", "a"], ["y"], decl={"x": X, "a": i64(0)}), "axes .* must be a constant"),
    (_one("Slice", ["x", "s", "e", "a"], ["y"], decl={"x": X, "a": i64(0)}, inits={"s": i64(0), "e": i64(1)}),
     "axes .* must be a constant"),
    (_one("Split", ["x", "s"], ["y", "z"], decl={"x": X, "s": i64(1, 1)}), "split sizes .* must be a constant"),
    (_one("Dropout", ["x"], ["y", "mask"], opset=13), "mask output"),
    (_one("Dropout", ["x", "", "t"], ["y"], inits={"t": np.array(True)}), "training_mode"),
    (_one("Dropout", ["x", "", "t"], ["y"], decl={"x": X, "t": np.array(False)}), "training_mode"),
    (_one("Reshape", ["x", "s"], ["y"], {"allowzero": 1}, opset=14, decl={"x": X, "s": i64(2, -1)}), "allowzero"),
    (_one("Squeeze", ["x"], ["y"], decl={"x": (np.float32, ["N", 3])}), "dynamic dims"),
    (_one("Cast", ["x"], ["y"], {"to": TensorProto.STRING}), "STRING"),
])
def test_errors(model, match, tmp_path):
    with pytest.raises(LiteoptError, match=match) as e:
        convert(model, str(tmp_path))
    assert "the_node" in str(e.value)


# --- DepthToSpace / SpaceToDepth (pixel_shuffle / space_to_depth) ------------------------------------------

@pytest.mark.parametrize("mode", ["DCR", "CRD"])
@pytest.mark.parametrize("dynamic", [False, True])
def test_depth_to_space(mode, dynamic, tmp_path):
    """Both channel orders (CRD: torch's PixelShuffle, super-resolution models), static and dynamic H/W."""
    x = RNG.standard_normal((2, 18, 4, 5)).astype(np.float32)
    check_op("DepthToSpace", {"x": x}, {"blocksize": 3, "mode": mode}, tmpdir=str(tmp_path),
             dynamic={"x": ["N", 18, "H", "W"]} if dynamic else None)


@pytest.mark.parametrize("dynamic", [False, True])
def test_space_to_depth(dynamic, tmp_path):
    x = RNG.standard_normal((2, 3, 6, 8)).astype(np.float32)
    check_op("SpaceToDepth", {"x": x}, {"blocksize": 2}, tmpdir=str(tmp_path),
             dynamic={"x": ["N", 3, "H", "W"]} if dynamic else None)


@pytest.mark.parametrize("op,attrs,shape,msg", [
    ("DepthToSpace", {"blocksize": 2, "mode": "CRD"}, (1, 6, 4, 4), "C must be multiples of 4"),
    ("SpaceToDepth", {"blocksize": 2}, (1, 3, 5, 4), "H and W must be multiples of 2")])
def test_blocks_that_do_not_divide(op, attrs, shape, msg, tmp_path):
    model = make_model([helper.make_node(op, ["x"], ["y"], name="d2s", **attrs)],
                       {"x": np.zeros(shape, np.float32)}, ["y"], output_shapes={"y": (np.float32, [1, 1, 1, 1])})
    with pytest.raises(LiteoptError, match=f"'d2s'.*{msg}"):
        convert(model, str(tmp_path))
