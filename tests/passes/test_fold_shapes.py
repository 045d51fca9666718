"""fold_shapes: reshape targets and slice bounds computed from the shape of a tensor with symbolic dims."""
from __future__ import annotations

import numpy as np
from onnx import helper

from helpers import make_model
from pass_helpers import check_pass

from liteopt.passes import fold_shapes

RNG = np.random.default_rng(0)
I64 = np.int64


def _gathers(x, which):
    nodes = [helper.make_node("Shape", [x], ["s"])]
    nodes += [helper.make_node("Gather", ["s", f"i{k}"], [f"d{k}"], axis=0) for k in which]
    nodes += [helper.make_node("Unsqueeze", [f"d{k}", "zero"], [f"u{k}"]) for k in which]
    return nodes


INITS = {"i0": np.array(0, I64), "i1": np.array(1, I64), "i2": np.array(2, I64), "zero": np.array([0], I64),
         "four": np.array([4], I64)}


def test_a_target_known_but_for_the_batch_becomes_static():
    """(N, T, 4) -> [N, T * 4 computed as Mul] with T pinned by the input's static dims: [0, 12]."""
    nodes = _gathers("x", [0, 1, 2]) + [helper.make_node("Mul", ["d1", "d2"], ["m"]),
                                        helper.make_node("Unsqueeze", ["m", "zero"], ["um"]),
                                        helper.make_node("Concat", ["u0", "um"], ["t"], axis=0),
                                        helper.make_node("Reshape", ["x", "t"], ["y"])]
    model = make_model(nodes, {"x": (np.float32, ["N", 3, 4])}, ["y"], INITS)
    x = RNG.standard_normal((2, 3, 4)).astype(np.float32)
    rec = check_pass(model, fold_shapes, {"x": x}, ops_after={"reshape2": 1}, hits=1)
    assert not rec.near_misses


def test_two_unknown_dims_stay_a_run_time_reshape():
    """(N, T, 4) -> [T, N, 4]: both symbols sit elsewhere in the input, so neither is 0 nor the one -1."""
    nodes = _gathers("x", [0, 1]) + [helper.make_node("Concat", ["u1", "u0", "four"], ["t"], axis=0),
                                     helper.make_node("Reshape", ["x", "t"], ["y"])]
    model = make_model(nodes, {"x": (np.float32, ["N", "T", 4])}, ["y"], INITS)
    x = RNG.standard_normal((2, 3, 4)).astype(np.float32)
    rec = check_pass(model, fold_shapes, {"x": x}, hits=0)
    assert any("more than one unknown" in m for m in rec.near_misses), rec.near_misses
