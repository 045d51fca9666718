"""A walk-through of weight-only quantization: the same model stored as float32, INT16, INT8 and INT8 with a
per-layer SQNR floor; sizes, agreement with onnxruntime, and the layers quantization hurts most.

    python3 examples/quantization.py

The model is built here (a MobileNetV2-style net, 96x96 input, seeded weights), so nothing is downloaded.
Remember what this buys: smaller files and downloads. The runtime restores float32 weights when it loads a
model and computes in float32, so inference time does not change.
"""
from __future__ import annotations

import os
import sys
import tempfile

import numpy as np
import onnx

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from make_example_model import Builder  # noqa: E402


def build_model() -> onnx.ModelProto:
    from onnx import TensorProto, helper
    b = Builder(seed=1)
    h = b.conv_bn("input", 3, 32, s=2)
    for cin, cout, s in [(32, 32, 1), (32, 64, 2), (64, 64, 1), (64, 96, 2), (96, 96, 1), (96, 160, 2)]:
        h = b.block(h, cin, cout, s, expand=6)
    h = b.conv_bn(h, 160, 640, k=1)
    b.nodes.append(helper.make_node("GlobalAveragePool", [h], ["pool"]))
    b.nodes.append(helper.make_node("Flatten", ["pool"], ["flat"]))
    w = b.const(b.rng.standard_normal((100, 640)) * 0.05, "fc_w")
    b.nodes.append(helper.make_node("Gemm", ["flat", w, b.const(np.zeros(100), "fc_b")], ["logits"], transB=1))
    graph = helper.make_graph(b.nodes, "walkthrough", [helper.make_tensor_value_info("input", TensorProto.FLOAT,
                                                                                       [1, 3, 96, 96])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 100])], b.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model


def cosine(a, b) -> float:
    a, b = a.ravel().astype(np.float64), b.ravel().astype(np.float64)
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


def main() -> int:
    from liteopt.opt import optimize
    from liteopt.runtime import load

    d = tempfile.mkdtemp(prefix="liteopt-quant-")
    src = os.path.join(d, "model.onnx")
    onnx.save(build_model(), src)
    x = np.random.default_rng(0).standard_normal((1, 3, 96, 96)).astype(np.float32)
    try:
        import onnxruntime as ort
        ref = ort.InferenceSession(src, providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
    except ImportError:
        ref = None
    variants = [("float32", {}), ("INT16", dict(quant_model=True, quant_type="QUANT_INT16")),
                ("INT8", dict(quant_model=True, quant_type="QUANT_INT8")),
                ("INT8, floor 44 dB", dict(quant_model=True, quant_type="QUANT_INT8", quant_min_sqnr=44.0))]
    results = {}
    print(f"{'variant':18s} {'.nb size':>10s} {'of fp32':>8s} {'cosine vs fp32':>15s} {'vs onnxruntime':>15s}")
    for name, kw in variants:
        r = optimize(model_file=src, optimize_out=os.path.join(d, name.split(",")[0]), **kw)
        out = load(r.path)({"input": x})["logits"]
        results[name] = (r, out)
        base = results["float32"]
        print(f"{name:18s} {r.file_size / 1024:8.1f} KB {r.file_size / base[0].file_size:8.1%} "
              f"{cosine(out, base[1]):15.6f} {cosine(out, ref) if ref is not None else float('nan'):15.6f}")
    r8 = results["INT8"][0]
    print("\nthe INT8 layers quantization hurts most (SQNR of the dequantized weights):")
    for layer in r8.quantization["layers"][:5]:
        print(f"  {layer['tensor'][:48]:48s} {layer['op']:18s} {layer['storage']:6s} {layer['sqnr_db']:6.1f} dB")
    floor = results["INT8, floor 44 dB"][0].quantization["layers"]
    raised = [e["tensor"] for e in floor if "raised" in e["note"] or "quant_min_sqnr" in e["note"]]
    print(f"\nwith --quant_min_sqnr=44, the {len(raised)} weight(s) that int8 would put under 44 dB keep 16 bits "
          f"(or float32): a per-layer mixed precision chosen from the weights alone")
    print("\n(weights are restored to float32 at load: this saves file size and download time, not inference time)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
