"""Check a .nb against the source framework's own runtime on random inputs and print the agreement.

    python3 -m liteopt.opt.verify --framework=onnx --model=m.onnx --nb=m.nb
    python3 -m liteopt.opt.verify --framework=caffe --prototxt=n.prototxt --weight=n.caffemodel --nb=n.nb
    python3 -m liteopt.opt.verify --framework=tensorflow --model=g.pb --nb=g.nb

References: onnxruntime (ONNX), OpenCV's dnn module < 5 (Caffe), TensorFlow (TF). When the reference is not
installed it says so and exits 0: the conversion itself already succeeded. Exit 1 when outputs disagree.
"""
from __future__ import annotations

import argparse
import sys

import numpy as np

from ..runtime import load

TOL = 1e-4


def _feeds(pred, seed: int = 0, dyn: int = 64) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    g = pred._program.graph
    feeds = {}
    for name in pred.input_names:
        t = g.tensors[name]
        shape = tuple(d if isinstance(d, int) else (1 if k == 0 else dyn) for k, d in enumerate(t.shape or ()))
        feeds[name] = rng.standard_normal(shape).astype(t.dtype.np) if t.dtype.is_float else \
            rng.integers(0, 2, shape).astype(t.dtype.np)
    return feeds


def _onnx(args, feeds):
    import onnxruntime as ort
    sess = ort.InferenceSession(args.model, providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)


def _caffe(args, feeds):
    import cv2
    net = cv2.dnn.readNetFromCaffe(args.prototxt, args.weight)
    names = list(feeds)
    for n in names:
        net.setInput(feeds[n], n if len(names) > 1 else "")
    return [net.forward()]


def _tensorflow(args, feeds):
    import tensorflow as tf
    gd = tf.compat.v1.GraphDef()
    with open(args.model, "rb") as f:
        gd.ParseFromString(f.read())
    with tf.Graph().as_default() as graph:
        tf.import_graph_def(gd, name="")
        with tf.compat.v1.Session(graph=graph) as sess:
            return sess.run([f"{o}:0" for o in args.outputs], {f"{k}:0": v for k, v in feeds.items()})


REFERENCES = {"onnx": ("onnxruntime", _onnx), "caffe": ("cv2", _caffe), "tensorflow": ("tensorflow", _tensorflow)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python3 -m liteopt.opt.verify", description=__doc__.split("\n")[0])
    ap.add_argument("--framework", required=True, choices=sorted(REFERENCES))
    ap.add_argument("--nb", required=True)
    ap.add_argument("--model", help="ONNX or TensorFlow model file")
    ap.add_argument("--prototxt")
    ap.add_argument("--weight")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args(argv)
    module, run_ref = REFERENCES[args.framework]
    try:
        __import__(module)
    except ImportError:
        print(f"verify: {module} is not installed: skipping the comparison with {args.framework}'s own runtime")
        return 0
    pred = load(args.nb)
    args.outputs = pred.output_names
    worst = 0.0
    for seed in range(args.runs):
        feeds = _feeds(pred, seed)
        ours = pred(feeds)
        try:
            ref = run_ref(args, feeds)
        except Exception as e:  # the reference itself failed: report, do not pretend
            print(f"verify: {args.framework} reference run failed: {type(e).__name__}: {e}")
            return 1
        for (name, a), r in zip(ours.items(), ref):
            r = np.asarray(r)
            if r.shape != a.shape:
                print(f"verify: output {name!r}: shape {a.shape} but {args.framework} gives {r.shape}")
                return 1
            if r.dtype.kind == "f":
                err = float(np.abs(a.astype(np.float64) - r).max() / max(float(np.abs(r).max()), 1e-30)) if r.size else 0
            else:
                err = float(not np.array_equal(a, r))
            worst = max(worst, err)
    verdict = "OK" if worst <= TOL else "MISMATCH"
    print(f"verify: {verdict}: max|diff|/max|ref| = {worst:.2e} over {args.runs} random input(s) "
          f"vs {args.framework} ({module})")
    return 0 if worst <= TOL else 1


if __name__ == "__main__":
    sys.exit(main())
