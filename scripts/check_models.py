"""Convert the zoo models (torchvision architectures, opset 13) and the PP-OCR models with opt, run the .nb
through Paddle Lite's API and compare every output with onnxruntime; print ops, sizes, error, timings.

    python3 scripts/check_models.py [name ...] [--cache DIR] [--quant QUANT_INT8]

Dev tool (needs torch for the zoo). Exit 1 if any model fails to convert or exceeds 1e-4.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "benchmarks"))

TOL = 1e-4
OCR = {"ppocr_det": ("det", {"x": (1, 3, 640, 640)}), "ppocr_det_dynamic": ("det", None),
       "ppocr_rec": ("rec", {"x": (1, 3, 48, 320)}), "ppocr_rec_dynamic": ("rec", None),
       "ppocr_cls": ("cls", {"x": (1, 3, 48, 192)})}
FEED = {"ppocr_det_dynamic": (1, 3, 480, 320), "ppocr_rec_dynamic": (1, 3, 48, 200)}


def main() -> int:
    import zoo
    ap = argparse.ArgumentParser()
    ap.add_argument("names", nargs="*")
    ap.add_argument("--cache", default=os.path.join(os.path.expanduser("~"), ".cache", "liteopt-models"))
    ap.add_argument("--quant", default=None)
    args = ap.parse_args()
    import onnxruntime as ort

    from liteopt import MobileConfig, create_paddle_predictor
    from liteopt.opt import optimize
    names = args.names or [*zoo.MODELS, *OCR]
    os.makedirs(args.cache, exist_ok=True)
    bad = 0
    print(f"{'model':20s} {'ops':>11s} {'onnx MB':>8s} {'nb MB':>7s} {'max rel err':>11s} {'liteopt ms':>10s} {'ort ms':>7s}")
    for name in names:
        try:
            if name in OCR:
                key, shapes = OCR[name]
                src = zoo.fetch_ppocr(args.cache)[key]
                feed = FEED.get(name) or shapes["x"]
            else:
                src = os.path.join(args.cache, f"{name}.onnx")
                if not os.path.exists(src):
                    zoo.export_onnx(name, src)
                shapes, feed = None, (1, 3, 224, 224)
            r = optimize(model_file=src, optimize_out=os.path.join(args.cache, name), valid_targets="arm",
                         input_shapes=shapes, quant_model=bool(args.quant), quant_type=args.quant or "QUANT_INT16")
            sess = ort.InferenceSession(src, providers=["CPUExecutionProvider"])
            iname = sess.get_inputs()[0].name
            x = np.random.default_rng(0).standard_normal(feed).astype(np.float32)
            ref = sess.run(None, {iname: x})
            cfg = MobileConfig()
            cfg.set_model_from_file(r.path)
            pred = create_paddle_predictor(cfg)
            pred.get_input(0).from_numpy(x)
            times = []
            for _ in range(3):
                t = time.perf_counter()
                pred.run()
                times.append(time.perf_counter() - t)
            ort_t = []
            for _ in range(3):
                t = time.perf_counter()
                sess.run(None, {iname: x})
                ort_t.append(time.perf_counter() - t)
            errs = [float(np.abs(pred.get_output(i).numpy() - rr).max() / max(np.abs(rr).max(), 1e-30))
                    for i, rr in enumerate(ref)]
            err = max(errs)
            bad += err > TOL and not args.quant
            print(f"{name:20s} {sum(r.ops_before.values()):4d} -> {sum(r.ops_after.values()):3d} "
                  f"{os.path.getsize(src) / 1e6:8.2f} {r.file_size / 1e6:7.2f} {err:11.2e} "
                  f"{statistics.median(times) * 1e3:10.1f} {statistics.median(ort_t) * 1e3:7.1f}"
                  f"{'   <-- above ' + str(TOL) if err > TOL else ''}", flush=True)
        except Exception as e:
            bad += 1
            print(f"{name:20s} FAILED: {type(e).__name__}: {e}", flush=True)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
