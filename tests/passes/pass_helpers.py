"""Run one pass on a model built with onnx.helper; check the reference run before == after (== onnxruntime)."""
from __future__ import annotations

import os
import tempfile

import onnx

from helpers import assert_close, run_ort

from liteopt.converters.onnx import load_onnx
from liteopt.ir import infer_shapes
from liteopt.ir.registry import evaluate
from liteopt.passes import PassContext


def run_pass(model, pass_fn, input_shapes=None):
    d = tempfile.mkdtemp(prefix="liteopt-pass-")
    path = os.path.join(d, "m.onnx")
    onnx.save(model, path)
    g = load_onnx(path, input_shapes)
    infer_shapes(g)
    before = g.copy()
    ctx = PassContext()
    rec = ctx.begin(pass_fn.__name__)
    pass_fn(g, ctx)
    g.verify()
    return before, g, rec


def check_pass(model, pass_fn, feeds, *, ops_after: dict | None = None, hits: int | None = None, tol=1e-5,
               input_shapes=None):
    """Returns the pass record; asserts numerical equivalence and, if given, the op counts after."""
    before, after, rec = run_pass(model, pass_fn, input_shapes)
    ref = run_ort(model, feeds)
    for a, b, r in zip(evaluate(before, feeds), evaluate(after, feeds), ref):
        assert_close(a, r, 1e-4, "before the pass vs onnxruntime")
        assert_close(b, a, tol, "after the pass vs before")
    if ops_after is not None:
        assert after.op_counts() == dict(sorted(ops_after.items())), (after.op_counts(), rec.near_misses)
    if hits is not None:
        assert rec.matches == hits, (rec.matches, rec.near_misses)
    return rec
