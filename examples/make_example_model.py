"""Build examples/models/tiny_mobilenet/model.onnx: a small MobileNetV2-style classifier (seeded random
weights, 32x32 input, 10 classes) written with onnx.helper, the way torch.onnx exports such nets
(Conv + BatchNormalization + Clip(0, 6), depthwise convs, a residual Add, GlobalAveragePool, Flatten, Gemm,
Softmax). Run it again to regenerate the committed file; the bytes are the same every time."""
from __future__ import annotations

import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "models", "tiny_mobilenet", "model.onnx")


class Builder:
    def __init__(self, seed=0):
        self.rng = np.random.default_rng(seed)
        self.nodes, self.inits, self.n = [], [], 0

    def name(self, p):
        self.n += 1
        return f"{p}_{self.n}"

    def const(self, arr, p="w"):
        n = self.name(p)
        self.inits.append(numpy_helper.from_array(np.asarray(arr, np.float32), n))
        return n

    def conv_bn(self, x, cin, cout, k=3, s=1, groups=1, act=True):
        w = self.const(self.rng.standard_normal((cout, cin // groups, k, k)) * np.sqrt(2 / (cin // groups * k * k)))
        c = self.name("conv")
        self.nodes.append(helper.make_node("Conv", [x, w], [c], kernel_shape=[k, k], strides=[s, s],
                                           pads=[k // 2] * 4, group=groups, name=c))
        bn = [self.const(self.rng.uniform(0.5, 1.5, cout)), self.const(self.rng.normal(0, 0.1, cout)),
              self.const(self.rng.normal(0, 0.1, cout)), self.const(self.rng.uniform(0.5, 1.5, cout))]
        b = self.name("bn")
        self.nodes.append(helper.make_node("BatchNormalization", [c, *bn], [b], epsilon=1e-5, name=b))
        if not act:
            return b
        r = self.name("relu6")
        lo, hi = self.const(np.float32(0), "min"), self.const(np.float32(6), "max")
        self.nodes.append(helper.make_node("Clip", [b, lo, hi], [r], name=r))
        return r

    def block(self, x, cin, cout, s, expand=4):
        h = self.conv_bn(x, cin, cin * expand, k=1)
        h = self.conv_bn(h, cin * expand, cin * expand, k=3, s=s, groups=cin * expand)
        h = self.conv_bn(h, cin * expand, cout, k=1, act=False)
        if s == 1 and cin == cout:
            a = self.name("add")
            self.nodes.append(helper.make_node("Add", [x, h], [a], name=a))
            return a
        return h


def build() -> onnx.ModelProto:
    b = Builder()
    h = b.conv_bn("input", 3, 16, s=2)
    h = b.block(h, 16, 16, 1)
    h = b.block(h, 16, 24, 2)
    h = b.block(h, 24, 24, 1)
    h = b.conv_bn(h, 24, 64, k=1)
    b.nodes.append(helper.make_node("GlobalAveragePool", [h], ["pool"], name="pool"))
    b.nodes.append(helper.make_node("Flatten", ["pool"], ["flat"], axis=1, name="flatten"))
    w = b.const(b.rng.standard_normal((10, 64)) * 0.3, "fc_w")
    bias = b.const(b.rng.normal(0, 0.1, 10), "fc_b")
    b.nodes.append(helper.make_node("Gemm", ["flat", w, bias], ["logits"], transB=1, name="fc"))
    b.nodes.append(helper.make_node("Softmax", ["logits"], ["prob"], axis=1, name="softmax"))
    graph = helper.make_graph(
        b.nodes, "tiny_mobilenet",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, 32, 32])],
        [helper.make_tensor_value_info("prob", TensorProto.FLOAT, ["N", 10])], b.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="liteopt-examples")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


if __name__ == "__main__":
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    onnx.save(build(), OUT)
    print(f"wrote {OUT} ({os.path.getsize(OUT)} bytes)")
