"""Front ends: find the model in what the user gave (`--model_dir` or `--model_file/--param_file`), pick the
converter by format, and return an ir.Graph."""
from __future__ import annotations

import hashlib
import importlib
import os
from dataclasses import dataclass

from ..ir import Graph
from ..ir.errors import ConversionError


@dataclass(frozen=True)
class Frontend:
    name: str             # "onnx", "caffe", "tensorflow"
    model_exts: tuple     # extensions of the model (topology) file
    param_exts: tuple     # extensions of the separate weights file, () if none
    module: str           # module with `load(model_file, param_file, input_shapes) -> Graph`


FRONTENDS = (
    Frontend("onnx", (".onnx",), (), "liteopt.converters.onnx"),
    Frontend("caffe", (".prototxt",), (".caffemodel",), "liteopt.converters.caffe"),
    Frontend("tensorflow", (".pb", ".pbtxt"), (), "liteopt.converters.tensorflow"),
)

FORMAT_HELP = """no model found in {where}. A model directory must hold exactly one of:
  (1) model.onnx                            (ONNX; external data files beside it)
  (2) net.prototxt + net.caffemodel         (Caffe)
  (3) frozen_graph.pb or .pbtxt             (TensorFlow frozen GraphDef)
You can also name the files: --model_file=<model> [--param_file=<weights>]"""


@dataclass
class Source:
    frontend: Frontend
    model_file: str
    param_file: str | None

    def sha256(self) -> str:
        h = hashlib.sha256()
        for p in (self.model_file, self.param_file):
            if p:
                with open(p, "rb") as f:
                    for chunk in iter(lambda: f.read(1 << 20), b""):
                        h.update(chunk)
        return h.hexdigest()


def _frontend_for_file(path: str) -> Frontend:
    ext = os.path.splitext(path)[1].lower()
    for fe in FRONTENDS:
        if ext in fe.model_exts:
            return fe
    return FRONTENDS[0]  # unknown extension: try ONNX, whose loader says clearly if it is not ONNX


def find_source(model_dir: str | None = None, model_file: str | None = None, param_file: str | None = None) -> Source:
    """Resolve the user's paths to one model; raise ConversionError naming the path when impossible."""
    if model_file:
        if not os.path.exists(model_file):
            raise ConversionError(f"--model_file: {model_file}: no such file")
        if os.path.isdir(model_file):
            raise ConversionError(f"--model_file: {model_file} is a directory (use --model_dir for a directory)")
        fe = _frontend_for_file(model_file)
        if param_file and not os.path.isfile(param_file):
            raise ConversionError(f"--param_file: {param_file}: no such file")
        if fe.param_exts and not param_file:
            raise ConversionError(f"--model_file {model_file} is a {fe.name} model: give its weights with --param_file")
        if param_file and not fe.param_exts:
            raise ConversionError(f"--param_file: a {fe.name} model keeps its weights in {model_file}; "
                                  f"do not pass --param_file")
        return Source(fe, model_file, param_file)
    if not model_dir:
        raise ConversionError("no model given: use --model_dir=<dir> or --model_file=<file> [--param_file=<file>]")
    if not os.path.exists(model_dir):
        raise ConversionError(f"--model_dir: {model_dir}: no such directory")
    if os.path.isfile(model_dir):  # a forgiving shortcut: --model_dir pointing at the model file itself
        return find_source(model_file=model_dir, param_file=param_file)
    files = sorted(os.listdir(model_dir))
    found: list[Source] = []
    for fe in FRONTENDS:
        models = [f for f in files if os.path.splitext(f)[1].lower() in fe.model_exts]
        params = [f for f in files if os.path.splitext(f)[1].lower() in fe.param_exts]
        for m in models:
            if fe.param_exts and len(params) != 1:
                raise ConversionError(f"--model_dir: {model_dir} holds {m} but "
                                      + ("no " + "/".join(fe.param_exts) + " weights file" if not params else
                                         f"{len(params)} weights files ({', '.join(params)})")
                                      + ": use --model_file/--param_file to choose")
            found.append(Source(fe, os.path.join(model_dir, m),
                                os.path.join(model_dir, params[0]) if fe.param_exts else None))
    if not found:
        raise ConversionError("--model_dir: " + FORMAT_HELP.format(where=model_dir))
    if len(found) > 1:
        raise ConversionError(f"--model_dir: {model_dir} holds {len(found)} models "
                              f"({', '.join(os.path.basename(s.model_file) for s in found)}): "
                              f"use --model_file to choose one")
    return found[0]


def load(source: Source, input_shapes: dict[str, tuple[int, ...]] | None = None) -> Graph:
    """Convert the source model to an ir.Graph (all unsupported ops reported at once)."""
    try:
        mod = importlib.import_module(source.frontend.module)
    except ModuleNotFoundError:
        raise ConversionError(f"{source.model_file}: {source.frontend.name} models are not supported yet") from None
    return mod.load(source.model_file, source.param_file, input_shapes)
