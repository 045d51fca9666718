"""Element-wise and comparison ops with broadcasting through liteopt vs onnxruntime; fused epilogues vs the
registry's numpy definition."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from helpers import check_op

from liteopt.ir import OPS
from liteopt.runtime import kernels as K

RNG = np.random.default_rng(0)
F, I64 = np.float32, np.int64


def r(*shape):
    return np.asarray(RNG.standard_normal(shape), F)


@pytest.mark.parametrize("op", ["Add", "Sub", "Mul", "Div", "Max", "Min"])
@pytest.mark.parametrize("a,b", [((2, 3, 4), (2, 3, 4)), ((2, 3, 4), (4,)), ((2, 3, 4), ()), ((3, 1), (1, 4)),
                                 ((1,), (2, 3, 1, 5))])
def test_binary(op, a, b, tmp_path):
    check_op(op, {"a": r(*a), "b": np.asarray(r(*b) + (3 if op == "Div" else 0), F)}, tmpdir=str(tmp_path))


def test_pow(tmp_path):
    check_op("Pow", {"a": np.abs(r(2, 3)) + 0.1, "b": r(2, 3)}, tmpdir=str(tmp_path))
    check_op("Pow", {"a": r(2, 3)}, consts={"e": np.array(2, I64)}, tmpdir=str(tmp_path))


@pytest.mark.parametrize("op", ["Add", "Sub", "Mul", "Div"])
def test_int64_arithmetic(op, tmp_path):
    a = np.array([[7, -7, 9], [0, 5, -13]], I64)
    b = np.array([2, 3, -4], I64)
    check_op(op, {"a": a, "b": b}, tmpdir=str(tmp_path))


def test_mod(tmp_path):
    check_op("Mod", {"a": np.array([7, -7, 9, -9], I64), "b": np.array([3, 3, -4, -4], I64)}, tmpdir=str(tmp_path))
    check_op("Mod", {"a": r(6) * 5, "b": np.abs(r(6)) + 1}, {"fmod": 1}, tmpdir=str(tmp_path))


@pytest.mark.parametrize("op", ["Equal", "Greater", "Less", "GreaterOrEqual", "LessOrEqual"])
def test_compare(op, tmp_path):
    a = np.array([[1, 2, 3], [3, 2, 1]], F)
    check_op(op, {"a": a, "b": np.array([2, 2, 2], F)}, tmpdir=str(tmp_path))


def test_logical_and_where(tmp_path):
    check_op("And", {"a": r(3, 4) > 0, "b": r(4) > 0}, tmpdir=str(tmp_path))
    check_op("Or", {"a": r(3, 4) > 0, "b": r(3, 1) > 0}, tmpdir=str(tmp_path))
    check_op("Where", {"c": r(3, 4) > 0, "x": r(3, 4), "y": r(4)}, tmpdir=str(tmp_path))


def test_variadic(tmp_path):
    ins = {"a": r(2, 3), "b": r(3), "c": r(2, 1)}
    for op in ("Sum", "Max", "Min", "Mean"):
        check_op(op, ins, tmpdir=str(tmp_path))
    check_op("Max", {"a": r(2, 3)}, tmpdir=str(tmp_path))


@settings(max_examples=25, deadline=None)
@given(shapes=st.lists(st.integers(1, 4), min_size=1, max_size=5).flatmap(
    lambda s: st.tuples(st.just(s), st.lists(st.booleans(), min_size=len(s), max_size=len(s)),
                        st.integers(0, len(s)))), op=st.sampled_from(["Add", "Mul", "Sub"]))
def test_broadcast_hypothesis(shapes, op, tmp_path_factory):
    full, ones, drop = shapes
    other = [1 if o else d for d, o in zip(full, ones)][drop:]
    check_op(op, {"a": r(*full), "b": r(*other)}, tmpdir=str(tmp_path_factory.mktemp("b")))


@pytest.mark.parametrize("act,alpha", [("relu", 0.0), ("relu6", 6.0), ("leaky_relu", 0.1), ("hard_swish", 0.0),
                                       ("sigmoid", 0.0), ("tanh", 0.0)])
@pytest.mark.parametrize("op", ["elementwise_add", "elementwise_mul"])
def test_fused_activation_epilogue(op, act, alpha):
    K.load_all()
    a, b = r(2, 3, 4) * 4, r(3, 1) * 2
    want = OPS[op].run(a, b, act_type=act, act_alpha=alpha)[0]
    got = K.find(op, "cpu/default").fn(a, b, act_type=act, act_alpha=alpha)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
