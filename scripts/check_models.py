"""Check liteopt on the kinds of models users ship: convert each model with opt, run the .nb through
Paddle Lite's API (MobileConfig / create_paddle_predictor) and compare every output with onnxruntime on a
seeded random input. Prints one table row per model (ops before -> after, .onnx and .nb sizes, worst
max|diff|/max|ref| over the outputs, the same measure between onnxruntime with and without its graph
optimizations -- the float-reordering noise floor at that output scale --, median ms per run of liteopt and
of onnxruntime at the same thread count and their ratio), then every failure with its message. Exit 1 if any model fails or exceeds the tolerance.

    python3 scripts/check_models.py [name ...] [--cache DIR] [--threads 1] [--repeat 3] [--ops] [--traceback]
                                    [--valid_targets arm] [--quant QUANT_INT8]

Names: the zoo models (benchmarks/zoo.py: torchvision architectures exported by torch at opset 13), their
`_dynbatch` variants (exported with a symbolic batch, converted without --input_shape, fed at batch 2) and
the PP-OCR models from the rapidocr-onnxruntime wheel (det at 1x3x640x640 and dynamic, rec at 1x3x48x320
and dynamic, cls at 1x3x48x192). Dev tool: needs torch for the zoo; models live in the cache directory.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import traceback
from dataclasses import dataclass

if os.environ.get("OPENBLAS_CORETYPE") or os.environ.get("OPENBLAS_L2_SIZE"):
    # this machine pins a slow OpenBLAS kernel; time what users get (same re-exec as benchmarks/bench.py)
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
    os.execve(sys.executable, [sys.executable, *sys.argv], env)

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "benchmarks"))
import zoo  # noqa: E402

TOL = 1e-4  # max|diff| / max|ref|


@dataclass
class Case:
    """One model to check: where its ONNX file comes from, the shapes given to opt (None: keep the model's
    symbolic dims) and the shape of the input fed at run time."""
    source: str            # a zoo model name, or "ppocr:det|rec|cls"
    input_shapes: dict | None
    feed: tuple
    dynamic_batch: bool = False


def cases() -> dict[str, Case]:
    out = {n: Case(n, {"input": (1, 3, 224, 224)}, (1, 3, 224, 224)) for n in zoo.MODELS}
    for n in ("mobilenet_v2", "shufflenet_v2_x1_0"):
        out[f"{n}_dynbatch"] = Case(n, None, (2, 3, 224, 224), dynamic_batch=True)
    out.update({
        "ppocr_det": Case("ppocr:det", {"x": (1, 3, 640, 640)}, (1, 3, 640, 640)),
        "ppocr_det_dynamic": Case("ppocr:det", None, (1, 3, 480, 320)),
        "ppocr_rec": Case("ppocr:rec", {"x": (1, 3, 48, 320)}, (1, 3, 48, 320)),
        "ppocr_rec_dynamic": Case("ppocr:rec", None, (1, 3, 48, 200)),
        "ppocr_cls": Case("ppocr:cls", {"x": (1, 3, 48, 192)}, (1, 3, 48, 192)),
    })
    return out


class Failure(Exception):
    """A failed stage: `stage` says which (export, opt, load, run, compare)."""

    def __init__(self, stage: str, exc: BaseException):
        super().__init__(f"{stage}: {type(exc).__name__}: {exc}")
        self.stage, self.exc = stage, exc


def stage(name: str, fn, *args, **kw):
    try:
        return fn(*args, **kw)
    except Exception as e:  # noqa: BLE001 - reported per model, never hides the others
        raise Failure(name, e) from e


def source_file(case: Case, cache: str) -> str:
    """The ONNX file; zoo exports are redone when benchmarks/zoo.py is newer than the cached file."""
    if case.source.startswith("ppocr:"):
        return zoo.fetch_ppocr(cache)[case.source.split(":")[1]]
    path = os.path.join(cache, f"{case.source}{'_dynbatch' if case.dynamic_batch else ''}.onnx")
    if not os.path.exists(path) or os.path.getmtime(path) < os.path.getmtime(zoo.__file__):
        zoo.export_onnx(case.source, path, dynamic_batch=case.dynamic_batch)
    return path


def median_ms(fn, repeat: int) -> float:
    fn()  # warm-up (numba compile/cache load, onnxruntime's first-run allocations)
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e3


def compare(got: list[np.ndarray], ref: list[np.ndarray], names: list[str]) -> tuple[float, str]:
    """Worst max|diff|/max|ref| over the outputs and the output it comes from; a different output count,
    shape or dtype, or NaN/inf where onnxruntime has none, raises."""
    if len(got) != len(ref):
        raise ValueError(f"{len(got)} outputs, onnxruntime has {len(ref)}")
    worst, where = 0.0, ""
    for name, g, r in zip(names, got, ref):
        if g.shape != r.shape or g.dtype != r.dtype:
            raise ValueError(f"output {name!r}: {g.dtype}{list(g.shape)}, onnxruntime has {r.dtype}{list(r.shape)}")
        if np.issubdtype(r.dtype, np.floating) and not np.array_equal(np.isfinite(g), np.isfinite(r)):
            raise ValueError(f"output {name!r}: {int((~np.isfinite(g)).sum())} non-finite values, "
                             f"onnxruntime has {int((~np.isfinite(r)).sum())}")
        fin = np.isfinite(r) if np.issubdtype(r.dtype, np.floating) else np.ones(r.shape, bool)
        if not fin.any():
            continue
        rf, gf = r[fin].astype(np.float64), g[fin].astype(np.float64)
        err = float(np.abs(gf - rf).max()) / max(float(np.abs(rf).max()), 1e-30)
        if err >= worst:
            worst, where = err, name
    return worst, where


def check(name: str, case: Case, args, ort, lite) -> dict:
    """Convert, run and compare one model; returns its table row (raises Failure)."""
    src = stage("export/fetch", source_file, case, args.cache)
    r = stage("opt", lite.optimize, model_file=src, optimize_out=os.path.join(args.cache, name),
              valid_targets=args.valid_targets, input_shapes=case.input_shapes,
              quant_model=bool(args.quant), quant_type=args.quant or "QUANT_INT16")
    so = ort.SessionOptions()
    so.intra_op_num_threads = args.threads
    so.log_severity_level = 3
    sess = stage("onnxruntime", ort.InferenceSession, src, so, providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    x = np.random.default_rng(0).standard_normal(case.feed).astype(np.float32)
    ref = stage("onnxruntime", sess.run, None, {inp.name: x})
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    ref_plain = stage("onnxruntime", ort.InferenceSession(src, so, providers=["CPUExecutionProvider"]).run,
                      None, {inp.name: x})
    ort_self = compare(ref_plain, ref, [o.name for o in sess.get_outputs()])[0]

    def load():
        cfg = lite.MobileConfig()
        cfg.set_model_from_file(r.path)
        cfg.set_threads(args.threads)
        return lite.create_paddle_predictor(cfg)
    pred = stage("load .nb", load)
    stage("run .nb", pred.get_input(0).from_numpy, x)
    stage("run .nb", pred.run)
    got = [pred.get_output(i).numpy() for i in range(len(pred.get_output_names()))]
    err, worst_out = stage("compare", compare, got, ref, [o.name for o in sess.get_outputs()])
    return dict(ops=(sum(r.ops_before.values()), sum(r.ops_after.values())), onnx=os.path.getsize(src),
                nb=r.file_size, err=err, worst=worst_out, ort_self=ort_self,
                scale=max(float(np.abs(o).max()) for o in ref), ops_after=r.ops_after,
                lite_ms=stage("run .nb", median_ms, pred.run, args.repeat),
                ort_ms=median_ms(lambda: sess.run(None, {inp.name: x}), args.repeat))


HEADER = f"{'model':28s} {'ops before->after':>17s} {'onnx MB':>8s} {'nb MB':>7s} {'rel err':>9s} {'ort self':>9s} " \
         f"{'liteopt ms':>10s} {'ort ms':>8s} {'ratio':>6s}"


def row(name: str, res: dict, tol: float | None) -> str:
    flag = f"   <-- above {tol:g}" if tol is not None and res["err"] > tol else ""
    return (f"{name:28s} {res['ops'][0]:8d} -> {res['ops'][1]:4d} {res['onnx'] / 1e6:8.2f} {res['nb'] / 1e6:7.2f} "
            f"{res['err']:9.2e} {res['ort_self']:9.2e} {res['lite_ms']:10.1f} {res['ort_ms']:8.1f} {res['lite_ms'] / res['ort_ms']:6.2f}{flag}")


def main() -> int:
    all_cases = cases()
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 epilog="models: " + " ".join(all_cases))
    ap.add_argument("names", nargs="*", metavar="name", help="models to check (default: all)")
    ap.add_argument("--cache", default=zoo.DEFAULT_CACHE, help="where model files and .nb outputs go")
    ap.add_argument("--threads", type=int, default=1, help="threads for liteopt and onnxruntime alike")
    ap.add_argument("--repeat", type=int, default=3, help="timed runs per model (after one warm-up)")
    ap.add_argument("--valid_targets", default="arm", help="opt's --valid_targets (arm = the numba kernels)")
    ap.add_argument("--quant", default=None, help="weight quantization type (the tolerance is then not enforced)")
    ap.add_argument("--ops", action="store_true", help="print each model's ops after optimization")
    ap.add_argument("--traceback", action="store_true", help="print tracebacks of failures")
    args = ap.parse_args()
    unknown = [n for n in args.names if n not in all_cases]
    if unknown:
        ap.error(f"unknown model(s) {', '.join(unknown)}; known: {', '.join(all_cases)}")
    import onnxruntime as ort

    import liteopt
    from liteopt import opt as liteopt_opt

    class Lite:  # the liteopt entry points this script uses
        optimize = staticmethod(liteopt_opt.optimize)
        MobileConfig = liteopt.MobileConfig
        create_paddle_predictor = staticmethod(liteopt.create_paddle_predictor)

    os.makedirs(args.cache, exist_ok=True)
    tol = None if args.quant else TOL
    failures, over = {}, []
    t_all = time.perf_counter()
    print(f"threads={args.threads}, median of {args.repeat} runs, rel err = max|diff|/max|ref| "
          f"({f'tolerance {TOL:g}' if tol is not None else f'{args.quant}: tolerance not enforced'})")
    print(HEADER)
    for name in args.names or list(all_cases):
        try:
            res = check(name, all_cases[name], args, ort, Lite)
        except Failure as f:
            failures[name] = f
            first = str(f).splitlines()[0] if str(f) else ""
            print(f"{name:28s} FAILED at {first}", flush=True)
            continue
        print(row(name, res, tol), flush=True)
        if args.ops:
            print(" " * 30 + ", ".join(f"{k} {v}" for k, v in sorted(res["ops_after"].items())))
        if tol is not None and res["err"] > tol:
            over.append(f"{name}: rel err {res['err']:.3g} > {tol:g} on output {res['worst']!r} (max|ref| = "
                        f"{res['scale']:.3g}; onnxruntime optimized vs unoptimized differ by {res['ort_self']:.3g})")
    print(f"total {time.perf_counter() - t_all:.0f} s")
    for name, f in failures.items():
        print(f"\n== {name} failed at {f.stage}: {type(f.exc).__name__}\n{f.exc}")
        if args.traceback:
            traceback.print_exception(f.exc)
    if over:
        print("\n== above tolerance\n" + "\n".join(over))
    return 1 if failures or over else 0


if __name__ == "__main__":
    sys.exit(main())
