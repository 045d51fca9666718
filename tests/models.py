"""Small ONNX models the tests build with onnx.helper (deterministic weights)."""
from __future__ import annotations

import numpy as np
from onnx import helper

from helpers import make_model


def tiny_cnn(seed: int = 0, opset: int = 13, batch="N"):
    """Conv(3->8, 3x3, pad 1) -> Relu -> MaxPool(2) -> HardSigmoid: a few ops with weights."""
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((8, 3, 3, 3)).astype(np.float32)
    b = rng.standard_normal(8).astype(np.float32)
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1], name="conv"),
        helper.make_node("Relu", ["c"], ["r"], name="relu"),
        helper.make_node("MaxPool", ["r"], ["p"], kernel_shape=[2, 2], strides=[2, 2], name="pool"),
        helper.make_node("HardSigmoid", ["p"], ["y"], name="hsig"),
    ]
    return make_model(nodes, {"x": (np.float32, [batch, 3, 16, 16])}, ["y"], {"w": w, "b": b}, opset=opset)
