"""Reductions and arg-extrema through liteopt vs onnxruntime (axes as attribute or input by opset)."""
import numpy as np
import pytest

from helpers import check_op

RNG = np.random.default_rng(0)
X = RNG.standard_normal((2, 3, 4, 5)).astype(np.float32)
I64 = np.int64


@pytest.mark.parametrize("op", ["ReduceMax", "ReduceMin", "ReduceMean", "ReduceSum", "ReduceProd"])
@pytest.mark.parametrize("axes,keepdims", [([1], 1), ([-1, 2], 0), (None, 1), ([0, 3], 1)])
def test_reduce_attr_axes(op, axes, keepdims, tmp_path):
    attrs = {"keepdims": keepdims, **({"axes": axes} if axes is not None else {})}
    check_op(op, {"x": X}, attrs, opset=11, tmpdir=str(tmp_path))


@pytest.mark.parametrize("op,opset", [("ReduceSum", 13), ("ReduceMean", 18), ("ReduceMax", 18)])
def test_reduce_axes_input(op, opset, tmp_path):
    check_op(op, {"x": X}, {"keepdims": 0}, consts={"a": np.array([1, -1], I64)}, opset=opset, tmpdir=str(tmp_path))
    check_op(op, {"x": X}, {"keepdims": 1}, opset=opset, tmpdir=str(tmp_path))


def test_reduce_int64(tmp_path):
    check_op("ReduceSum", {"x": np.arange(24, dtype=I64).reshape(2, 3, 4)}, {"axes": [1]}, opset=11,
             tmpdir=str(tmp_path))


@pytest.mark.parametrize("op", ["ArgMax", "ArgMin"])
@pytest.mark.parametrize("axis,keepdims,last", [(1, 1, 0), (-1, 0, 0), (2, 1, 1)])
def test_arg(op, axis, keepdims, last, tmp_path):
    x = np.round(X * 2) / 2  # ties, so that select_last_index matters
    check_op(op, {"x": x}, {"axis": axis, "keepdims": keepdims, "select_last_index": last}, tmpdir=str(tmp_path))


def test_reduce_dynamic(tmp_path):
    check_op("ReduceMean", {"x": X}, {"axes": [2, 3]}, opset=11, dynamic={"x": ["N", 3, "H", "W"]},
             tmpdir=str(tmp_path))
