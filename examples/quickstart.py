"""Quick start: convert the bundled ONNX model with `opt`, run the .nb with Paddle Lite's Python API,
print the prediction (and, when onnxruntime is installed, how closely it agrees with it).

    python3 examples/quickstart.py
"""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
MODEL_DIR = os.path.join(HERE, "models", "tiny_mobilenet")
OUT_DIR = os.path.join(HERE, "..", "out")


def main() -> int:
    os.makedirs(OUT_DIR, exist_ok=True)
    out = os.path.normpath(os.path.join(OUT_DIR, "tiny_mobilenet"))
    cmd = [sys.executable, "-m", "liteopt.opt", f"--model_dir={MODEL_DIR}", f"--optimize_out={out}",
           "--valid_targets=arm"]
    print("$ opt " + " ".join(cmd[3:]), flush=True)
    if subprocess.call(cmd) != 0:
        return 1

    from liteopt import MobileConfig, create_paddle_predictor

    config = MobileConfig()
    config.set_model_from_file(out + ".nb")
    predictor = create_paddle_predictor(config)
    yy, xx = np.mgrid[0:32, 0:32] / 31.0  # a deterministic "image": colour gradients
    image = np.stack([xx, yy, 1 - xx * yy])[None].astype(np.float32)
    predictor.get_input(0).from_numpy(image)
    predictor.run()
    prob = predictor.get_output(0).numpy()[0]
    top = np.argsort(-prob)[:3]
    print("\nliteopt runtime, top-3 classes: " + ", ".join(f"#{c} ({prob[c]:.4f})" for c in top))

    try:
        import onnxruntime as ort
    except ImportError:
        return 0
    sess = ort.InferenceSession(os.path.join(MODEL_DIR, "model.onnx"), providers=["CPUExecutionProvider"])
    ref = sess.run(None, {"input": image})[0][0]
    err = np.abs(prob - ref).max() / np.abs(ref).max()
    print(f"onnxruntime,     top-3 classes: " + ", ".join(f"#{c} ({ref[c]:.4f})" for c in np.argsort(-ref)[:3]))
    print(f"agreement: max|diff| / max|ref| = {err:.2e}")
    return 0 if err <= 1e-4 else 1


if __name__ == "__main__":
    sys.exit(main())
