"""Data-free end-to-end check of a quantized model: the float and the quantized graphs run on the same
synthetic inputs through the real runtime; we report how closely their outputs agree.

The inputs are uniform in [-1, 1] (bounded like normalized images; standard-normal noise overstated the
disagreement of detectors, whose outputs it drives to the sigmoid's flat ends) and symbolic dimensions
other than the batch get 224, a typical image side, or when the model cannot take that (an OCR line
recogniser wants a height it can pool down to 1), the next of SYMBOLIC_SIZES."""
from __future__ import annotations

import numpy as np

from ..format import read, to_bytes
from ..ir import Graph
from ..ir.errors import LiteoptError
from ..runtime import Program

SYMBOLIC_BATCH, SYMBOLIC_SIZES = 1, (224, 64, 48, 32)  # sizes given to dynamic dims, tried in order


def synthetic_inputs(graph: Graph, seed: int = 0, size: int = SYMBOLIC_SIZES[0]) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    feeds = {}
    for name in graph.inputs:
        t = graph.tensors[name]
        shape = tuple(d if isinstance(d, int) else (SYMBOLIC_BATCH if k == 0 else size)
                      for k, d in enumerate(t.shape or ()))
        if t.dtype.is_float:
            feeds[name] = rng.uniform(-1.0, 1.0, shape).astype(t.dtype.np)
        elif t.dtype.value == "bool":
            feeds[name] = rng.random(shape) > 0.5
        else:
            feeds[name] = rng.integers(0, 2, shape).astype(t.dtype.np)
    return feeds


def float_version(graph: Graph, float_weights: dict[str, np.ndarray]) -> Graph:
    g = graph.copy()
    for name, data in float_weights.items():
        t = g.tensors[name]
        t.data, t.quant = data, None
        t.dtype = t.dtype.of(data)
    return g


def agreement(float_graph: Graph, quant_graph: Graph, runs: int = 2) -> dict:
    """Cosine and max relative error (max|diff| / max|ref|) of every output, worst over a few inputs."""
    try:
        fp = Program(read(buffer=to_bytes(float_graph)))
        qp = Program(read(buffer=to_bytes(quant_graph)))
    except (LiteoptError, ValueError) as e:
        return {"skipped": f"{type(e).__name__}: {e}"}
    symbolic = any(not isinstance(d, int) for name in float_graph.inputs
                   for d in (float_graph.tensors[name].shape or ()))
    for size in SYMBOLIC_SIZES if symbolic else SYMBOLIC_SIZES[:1]:
        try:
            return _compare(fp, qp, float_graph, runs, size)
        except (LiteoptError, ValueError, FloatingPointError) as e:
            failure = e
    return {"skipped": f"{type(failure).__name__}: {failure}"}


def _compare(fp: Program, qp: Program, graph: Graph, runs: int, size: int) -> dict:
    worst_cos, worst_err = 1.0, 0.0
    for seed in range(runs):
        feeds = synthetic_inputs(graph, seed, size)
        for a, b in zip(fp.run(feeds), qp.run(feeds)):
            a64, b64 = a.astype(np.float64).ravel(), b.astype(np.float64).ravel()
            if not np.issubdtype(a.dtype, np.floating):
                continue
            na, nb = np.linalg.norm(a64), np.linalg.norm(b64)
            cos = float(a64 @ b64 / (na * nb)) if na and nb else float(na == nb)
            err = float(np.abs(a64 - b64).max() / max(np.abs(a64).max(), 1e-30)) if a64.size else 0.0
            worst_cos, worst_err = min(worst_cos, cos), max(worst_err, err)
    shapes = {name: list(v.shape) for name, v in feeds.items()}
    return {"cosine": worst_cos, "max_rel_err": worst_err, "inputs": runs, "input_shapes": shapes}
