"""liteopt vs onnxruntime, side by side in one process run: median latency per model, their ratio and the
geometric mean; optionally a per-layer profile of liteopt with GFLOP/s against this machine's sgemm peak.

    python3 benchmarks/bench.py [model ...] [--threads 1,2] [--repeat 20] [--profile]

A model is a zoo name, "ppocr_det" or the path of an .onnx file (its dynamic inputs pinned with
--input_shape, as opt's); the default is the zoo's torchvision
architectures (benchmarks/zoo.py, dev-only: torch, exported at opset 13) and the PP-OCRv4 detector from the
rapidocr-onnxruntime wheel. This machine sets OPENBLAS_CORETYPE, which slows numpy's
BLAS: the script re-executes itself once without OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE (this process only)
and prints which BLAS kernel it ran.
"""
from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import tempfile
import time

if os.environ.get("OPENBLAS_CORETYPE") or os.environ.get("OPENBLAS_L2_SIZE"):
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
    os.execve(sys.executable, [sys.executable, *sys.argv], env)

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

DEFAULT = ["mobilenet_v1", "mobilenet_v2", "resnet50", "squeezenet1_1", "shufflenet_v2_x1_0", "mnasnet1_0",
           "ppocr_det"]


def blas_info() -> str:
    try:
        from threadpoolctl import threadpool_info
        return "; ".join(f"{i.get('internal_api')} {i.get('version')} ({i.get('architecture')})"
                         for i in threadpool_info() if i.get("user_api") == "blas")
    except ImportError:
        cfg = np.show_config(mode="dicts") if "mode" in np.show_config.__code__.co_varnames else {}
        blas = cfg.get("Build Dependencies", {}).get("blas", {}) if isinstance(cfg, dict) else {}
        return f"{blas.get('name', '?')} {blas.get('version', '')} (OPENBLAS_CORETYPE unset)"


def sgemm_peak(n: int = 1024, repeat: int = 5) -> float:
    from liteopt.runtime.threads import set_blas_threads
    set_blas_threads(1)
    a = np.random.rand(n, n).astype(np.float32)
    b = np.random.rand(n, n).astype(np.float32)
    a @ b
    t = min(_time(lambda: a @ b) for _ in range(repeat))
    return 2 * n ** 3 / t / 1e9


def _time(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def median_ms(fn, repeat: int, warmup: int = 3) -> float:
    for _ in range(warmup):
        fn()
    return statistics.median(_time(fn) for _ in range(repeat)) * 1e3


def model_source(name: str, cache: str) -> tuple[str, dict]:
    """(onnx path, input shapes) for a benchmark model: a zoo name, "ppocr_det", or the path of an .onnx file
    (its own input shapes)."""
    if name.endswith(".onnx") and os.path.isfile(name):
        return name, {}
    if name == "ppocr_det":
        from zoo import fetch_ppocr
        return fetch_ppocr(cache)["det"], {"x": (1, 3, 640, 640)}
    from zoo import export_onnx
    path = os.path.join(cache, f"{name}.onnx")
    if not os.path.exists(path):
        export_onnx(name, path)
    return path, {}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("models", nargs="*", default=DEFAULT)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--profile", action="store_true", help="per-layer profile of liteopt (1 thread)")
    ap.add_argument("--cache", default=os.path.join(os.path.expanduser("~"), ".cache", "liteopt-models"))
    ap.add_argument("--input_shape", action="append", default=[], metavar="NAME:D0,D1,...",
                    help="pin an input of the .onnx files given by path, as opt's flag (e.g. x:1,3,48,320)")
    args = ap.parse_intermixed_args()  # (models before and after the options)
    from liteopt.ir.errors import LiteoptError
    from liteopt.opt.api import parse_input_shape
    try:
        pinned = dict(parse_input_shape(s) for s in args.input_shape)
    except LiteoptError as e:
        ap.error(str(e))
    import onnxruntime as ort

    from liteopt.opt import optimize
    from liteopt.runtime import load

    os.makedirs(args.cache, exist_ok=True)
    threads = [int(t) for t in args.threads.split(",")]
    print(f"BLAS: {blas_info()}; sgemm peak {sgemm_peak():.1f} GFLOP/s (1 thread); onnxruntime {ort.__version__}")
    rows, ratios = [], {t: [] for t in threads}
    tmp = tempfile.mkdtemp(prefix="liteopt-bench-")
    for arg in args.models:
        name = os.path.basename(arg).removesuffix(".onnx")
        try:
            src, shapes = model_source(arg, args.cache)
            if src == arg:
                shapes = pinned
            nb = optimize(model_file=src, optimize_out=os.path.join(tmp, name), valid_targets="arm",
                          input_shapes=shapes or None).path
        except Exception as e:
            print(f"{name}: skipped: {type(e).__name__}: {e}")
            continue
        rng = np.random.default_rng(0)
        for t in threads:
            # one engine at a time: an idle onnxruntime session keeps spinning threads that would steal the
            # cores from liteopt's (and the reverse), so liteopt is timed before the session exists
            pred = load(nb, threads=t)
            feeds = {n: rng.standard_normal(_concrete(pred, n, shapes)).astype(np.float32) for n in pred.input_names}
            ours = median_ms(lambda: pred(feeds), args.repeat)
            so = ort.SessionOptions()
            so.intra_op_num_threads, so.inter_op_num_threads = t, 1
            sess = ort.InferenceSession(src, so, providers=["CPUExecutionProvider"])
            theirs = median_ms(lambda: sess.run(None, feeds), args.repeat)
            del sess
            ratios[t].append(ours / theirs)
            rows.append((name, t, ours, theirs, ours / theirs))
            print(f"{name:22s} threads={t}  liteopt {ours:8.2f} ms  onnxruntime {theirs:8.2f} ms  ratio {ours / theirs:5.2f}",
                  flush=True)
        if args.profile:
            profile(nb, feeds)
    for t in threads:
        if ratios[t]:
            g = math.exp(sum(math.log(r) for r in ratios[t]) / len(ratios[t]))
            print(f"geometric mean ratio liteopt/onnxruntime, {t} thread(s): {g:.2f} over {len(ratios[t])} models")
    return 0


def _concrete(pred, name: str, shapes: dict) -> tuple:
    """The input's shape with dynamic dims set to 1 (or as pinned)."""
    if name in shapes:
        return shapes[name]
    t = pred._program.graph.tensors[name]
    return tuple(d if isinstance(d, int) else 1 for d in t.shape)


def profile(nb_path: str, feeds: dict, repeat: int = 5) -> None:
    """Time per op of liteopt (1 thread) and GFLOP/s of each conv."""
    from liteopt.runtime import load
    pred = load(nb_path, threads=1)
    prog = pred._program
    per = {}
    orig = [s.fn for s in prog.steps]
    for k, s in enumerate(prog.steps):
        def timed(*a, _f=orig[k], _k=k, **kw):
            t0 = time.perf_counter()
            r = _f(*a, **kw)
            per.setdefault(_k, []).append(time.perf_counter() - t0)
            return r
        s.fn = timed
    for _ in range(repeat):
        pred(feeds)
    for k in range(len(prog.steps)):
        per.setdefault(k, [0.0])  # a step the runtime skipped (a concat the memory plan assembled in place)
    g = prog.graph
    print(f"  {'op':34s} {'kernel':18s} {'ms':>8s} {'GFLOP/s':>8s}")
    for k, s in sorted(enumerate(prog.steps), key=lambda kv: -statistics.median(per[kv[0]]))[:25]:
        ms = statistics.median(per[k]) * 1e3
        n = s.node
        flops = ""
        if n.op in ("conv2d", "depthwise_conv2d"):
            w = g.tensors[n.inputs[1]].shape
            o = g.tensors[n.outputs[0]].shape
            if all(isinstance(d, int) for d in o):
                f = 2 * math.prod(o) * math.prod(w[1:])
                flops = f"{f / ms / 1e6:8.1f}"
        print(f"  {n.name[:34]:34s} {n.op + ' ' + n.kernel:18s} {ms:8.3f} {flops:>8s}")
    by_kind: dict[str, float] = {}
    for k, s in enumerate(prog.steps):
        kind = f"{s.node.op} {s.node.kernel}"
        by_kind[kind] = by_kind.get(kind, 0.0) + statistics.median(per[k]) * 1e3
    ops_ms = sum(by_kind.values())
    whole = median_ms(lambda: pred(feeds), repeat)
    print(f"  per op kind (sum of ops {ops_ms:.2f} ms; a whole run {whole:.2f} ms, "
          f"{whole - ops_ms:.2f} ms outside the ops): " +
          ", ".join(f"{k} {v:.2f}" for k, v in sorted(by_kind.items(), key=lambda kv: -kv[1])[:8]))
    for s, f in zip(prog.steps, orig):
        s.fn = f


if __name__ == "__main__":
    sys.exit(main())
