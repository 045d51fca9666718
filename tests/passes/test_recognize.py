"""Pattern recognition and chain cancellation: hit and near-miss graphs, equivalence before/after."""
from __future__ import annotations

import math

import numpy as np
import pytest
from onnx import helper

from helpers import make_model
from pass_helpers import check_pass

from liteopt.passes import cancel_chains, fold_constants, recognize_patterns

RNG = np.random.default_rng(1)
X = (RNG.standard_normal((2, 6, 5, 5)) * 4).astype(np.float32)
F = np.float32


def test_hard_sigmoid_times_x():
    nodes = [helper.make_node("HardSigmoid", ["x"], ["h"], alpha=1 / 6, beta=0.5),
             helper.make_node("Mul", ["h", "x"], ["y"])]
    check_pass(make_model(nodes, {"x": X}, ["y"]), recognize_patterns, {"x": X}, ops_after={"hard_swish": 1})


@pytest.mark.parametrize("form", ["div", "mul", "inner_div"])
def test_relu6_hard_swish(form):
    nodes = [helper.make_node("Add", ["x", "three"], ["a"]), helper.make_node("Clip", ["a", "lo", "hi"], ["r"])]
    if form == "div":
        nodes += [helper.make_node("Mul", ["x", "r"], ["m"]), helper.make_node("Div", ["m", "six"], ["y"])]
    elif form == "mul":
        nodes += [helper.make_node("Mul", ["r", "x"], ["m"]), helper.make_node("Mul", ["m", "sixth"], ["y"])]
    else:
        nodes += [helper.make_node("Div", ["r", "six"], ["d"]), helper.make_node("Mul", ["x", "d"], ["y"])]
    inits = {"three": F(3), "lo": F(0), "hi": F(6), "six": F(6), "sixth": F(1 / 6)}
    check_pass(make_model(nodes, {"x": X}, ["y"], inits), recognize_patterns, {"x": X}, ops_after={"hard_swish": 1})


def test_hard_swish_miss_when_input_differs():
    nodes = [helper.make_node("HardSigmoid", ["x"], ["h"]), helper.make_node("Mul", ["h", "z"], ["y"])]
    model = make_model(nodes, {"x": X, "z": X}, ["y"])
    check_pass(model, recognize_patterns, {"x": X, "z": X * 2}, hits=0)


def test_swish():
    nodes = [helper.make_node("Sigmoid", ["x"], ["s"]), helper.make_node("Mul", ["x", "s"], ["y"])]
    check_pass(make_model(nodes, {"x": X}, ["y"]), recognize_patterns, {"x": X}, ops_after={"swish": 1})


def test_shuffle_channel():
    nodes = [helper.make_node("Reshape", ["x", "s1"], ["r1"]),
             helper.make_node("Transpose", ["r1"], ["t"], perm=[0, 2, 1, 3, 4]),
             helper.make_node("Reshape", ["t", "s2"], ["y"])]
    inits = {"s1": np.array([2, 3, 2, 5, 5], np.int64), "s2": np.array([2, 6, 5, 5], np.int64)}
    check_pass(make_model(nodes, {"x": X}, ["y"], inits), recognize_patterns, {"x": X},
               ops_after={"shuffle_channel": 1})


def _layer_norm_nodes(axes=(-1,)):
    return [helper.make_node("ReduceMean", ["x"], ["mu"], axes=list(axes)),
            helper.make_node("Sub", ["x", "mu"], ["d"]), helper.make_node("Pow", ["d", "two"], ["sq"]),
            helper.make_node("ReduceMean", ["sq"], ["var"], axes=list(axes)),
            helper.make_node("Add", ["var", "eps"], ["ve"]), helper.make_node("Sqrt", ["ve"], ["sd"]),
            helper.make_node("Div", ["d", "sd"], ["n"]), helper.make_node("Mul", ["n", "g"], ["m"]),
            helper.make_node("Add", ["m", "b"], ["y"])]


@pytest.mark.parametrize("axes,hit", [((-1,), True), ((1,), False)])
def test_layer_norm(axes, hit):
    x = RNG.standard_normal((2, 7, 5)).astype(np.float32)
    inits = {"two": F(2), "eps": F(1e-5), "g": RNG.standard_normal(5).astype(F), "b": RNG.standard_normal(5).astype(F)}
    rec = check_pass(make_model(_layer_norm_nodes(axes), {"x": x}, ["y"], inits, opset=13), recognize_patterns,
                     {"x": x}, hits=int(hit))
    assert hit or rec.near_misses


def test_transpose_pairs_and_reshape_chains():
    nodes = [helper.make_node("Transpose", ["x"], ["t1"], perm=[0, 2, 3, 1]),
             helper.make_node("Transpose", ["t1"], ["t2"], perm=[0, 3, 1, 2]),
             helper.make_node("Relu", ["t2"], ["r"]),
             helper.make_node("Flatten", ["r"], ["f"]),
             helper.make_node("Reshape", ["f", "s"], ["y"])]
    model = make_model(nodes, {"x": X}, ["y"], {"s": np.array([2, 6, 25], np.int64)})
    check_pass(model, cancel_chains, {"x": X}, ops_after={"relu": 1, "reshape2": 1})


def test_fold_shape_arithmetic_once_shapes_are_pinned():
    nodes = [helper.make_node("Shape", ["x"], ["s"]), helper.make_node("Gather", ["s", "i0"], ["n"], axis=0),
             helper.make_node("Unsqueeze", ["n", "ax"], ["nu"]),
             helper.make_node("Concat", ["nu", "m1"], ["shp"], axis=0),
             helper.make_node("Reshape", ["x", "shp"], ["y"])]
    inits = {"i0": np.array(0, np.int64), "ax": np.array([0], np.int64), "m1": np.array([-1], np.int64)}
    model = make_model(nodes, {"x": (np.float32, ["N", 6, 5, 5])}, ["y"], inits)
    check_pass(model, fold_constants, {"x": X}, ops_after={"reshape2": 1}, input_shapes={"x": (2, 6, 5, 5)})


@pytest.mark.parametrize("form", ["torch", "hf", "mul", "wrong", "broadcast"])
def test_gelu(form):
    """torch's exact GELU export (x * (1 + erf(x / sqrt 2)) * 0.5), the x * 0.5 * (...) order, erf(x * 1/sqrt 2),
    and near misses (x / 2 inside the erf; a 0.5 of higher rank, which broadcasts x to a 4-D result)."""
    x = (RNG.standard_normal((2, 7, 5)) * 3).astype(np.float32)
    inits = {"c": F(math.sqrt(2) if form != "wrong" else 2.0), "one": F(1.0),
             "half": np.full((1, 1, 1, 1), 0.5, F) if form == "broadcast" else F(0.5), "r": F(1 / math.sqrt(2))}
    arg = helper.make_node("Mul", ["x", "r"], ["a"]) if form == "mul" else helper.make_node("Div", ["x", "c"], ["a"])
    nodes = [arg, helper.make_node("Erf", ["a"], ["e"]), helper.make_node("Add", ["e", "one"], ["p"])]
    if form == "hf":
        nodes += [helper.make_node("Mul", ["x", "half"], ["m"]), helper.make_node("Mul", ["m", "p"], ["y"])]
    else:
        nodes += [helper.make_node("Mul", ["x", "p"], ["m"]), helper.make_node("Mul", ["m", "half"], ["y"])]
    hit = form not in ("wrong", "broadcast")
    rec = check_pass(make_model(nodes, {"x": x}, ["y"], inits, opset=13), recognize_patterns, {"x": x},
                     hits=int(hit), ops_after={"gelu": 1} if hit else None)
    assert hit or any("erf" in m or "shape (2, 7, 5), not (1, 2, 7, 5)" in m for m in rec.near_misses), rec.near_misses


def test_a_rewrite_that_would_change_the_shape_is_not_applied():
    """x * relu6(x + o) / 6 with o of shape (1, 1, 1, 1): the result is 4-D, hard_swish(x) would be 3-D (any rule:
    `pattern._shape_change`)."""
    x = (RNG.standard_normal((2, 7, 5)) * 4).astype(np.float32)
    nodes = [helper.make_node("Add", ["x", "o"], ["a"]), helper.make_node("Clip", ["a", "z", "s"], ["c"]),
             helper.make_node("Mul", ["x", "c"], ["m"]), helper.make_node("Div", ["m", "k"], ["y"])]
    inits = {"o": np.full((1, 1, 1, 1), 3, F), "z": F(0), "s": F(6), "k": F(6)}
    rec = check_pass(make_model(nodes, {"x": x}, ["y"], inits, opset=13), recognize_patterns, {"x": x}, hits=0)
    assert any("would have shape (2, 7, 5), not (1, 2, 7, 5)" in m for m in rec.near_misses), rec.near_misses
