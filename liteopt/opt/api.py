"""The optimizer's Python API: `optimize(...)` and Paddle Lite's `Opt` class. No graph logic here."""
from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass, field

from .. import converters
from ..format import Manifest, write
from ..ir import OPS, Graph
from ..ir.errors import LiteoptError
from ..ir.memory import lifetimes, lower_bound
from ..passes import PassContext, run_pipeline
from .agreement import agreement, float_version

QUANT_TYPES = ("QUANT_INT8", "QUANT_INT16")
from ..runtime import kernels as K


class OptError(LiteoptError):
    """A bad flag or option (names the flag)."""


def parse_targets(valid_targets: str | list[str] | None) -> list[str]:
    """`--valid_targets` (comma-separated, priority first) -> our targets; aliases arm/x86/host -> cpu."""
    items = valid_targets if isinstance(valid_targets, list) else (valid_targets or "arm").split(",")
    out: list[str] = []
    for raw in items:
        t = raw.strip().lower()
        if not t:
            continue
        if t not in K.TARGET_ALIASES:
            raise OptError(f"Wrong target '{raw.strip()}' found, please check the command flag 'valid_targets' "
                           f"(valid: {', '.join(sorted(K.TARGET_ALIASES))})")
        if K.TARGET_ALIASES[t] not in out:
            out.append(K.TARGET_ALIASES[t])
    if not out:
        raise OptError("--valid_targets is empty (valid: cpu, ref; arm, x86, host mean cpu)")
    return out


_SHAPE_RE = re.compile(r"^(?P<name>.+):(?P<dims>\d+(,\d+)*)$")


def parse_input_shape(spec: str) -> tuple[str, tuple[int, ...]]:
    """`NAME:D0,D1,...` -> (name, dims)."""
    m = _SHAPE_RE.match(spec.strip().replace(" ", ""))
    if not m:
        raise OptError(f"--input_shape {spec!r}: expected NAME:D0,D1,... with positive integers, e.g. x:1,3,224,224")
    dims = tuple(int(d) for d in m["dims"].split(","))
    if any(d <= 0 for d in dims):
        raise OptError(f"--input_shape {spec!r}: dimensions must be positive")
    return m["name"], dims


def output_path(optimize_out: str) -> str:
    if not optimize_out:
        raise OptError("--optimize_out is required: the path of the .nb file to write")
    path = optimize_out if optimize_out.endswith(".nb") else optimize_out + ".nb"
    d = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(d):
        raise OptError(f"--optimize_out: directory {d} does not exist")
    if os.path.isdir(path):
        raise OptError(f"--optimize_out: {path} is a directory")
    return path


def kernel_variants(op: str, target: str) -> list[str]:
    K.load_all()
    return sorted(K.KERNELS.get((op, target), {}))


@dataclass
class OptResult:
    path: str
    file_size: int
    ops_before: dict[str, int]
    ops_after: dict[str, int]
    seconds: float
    source_format: str
    passes: list = field(default_factory=list)
    graph: Graph | None = None
    original_lower_bound: int | None = None  # bytes live at the worst step of the graph before the passes
    quantization: dict | None = None          # per-layer SQNR/cosine and end-to-end agreement

    def memory(self) -> dict | None:
        p = self.graph.memory_plan if self.graph is not None else None
        if p is None:
            return None
        return {"arena_bytes": p.arena_bytes, "lower_bound_bytes": p.lower_bound_bytes,
                "original_lower_bound_bytes": self.original_lower_bound, "strategy": p.strategy,
                "per_strategy": p.per_strategy}

    def report(self) -> dict:
        return {
            "output": self.path,
            "file_size": self.file_size,
            "source_format": self.source_format,
            "seconds": round(self.seconds, 3),
            "ops_before": self.ops_before,
            "ops_after": self.ops_after,
            "passes": [{"name": r.name, "matches": r.matches, "near_misses": r.near_misses, "ms": round(r.ms, 3)}
                       for r in self.passes],
            "memory": self.memory(),
            "quantization": self.quantization,
        }


def convert(model_dir=None, model_file=None, param_file=None, input_shapes=None):
    """Find and convert the model; returns (source, graph)."""
    src = converters.find_source(model_dir, model_file, param_file)
    return src, converters.load(src, input_shapes)


def optimize(model_dir: str | None = None, model_file: str | None = None, param_file: str | None = None,
             optimize_out: str = "", valid_targets: str | list[str] = "arm",
             input_shapes: dict[str, tuple[int, ...]] | None = None, optimize_out_type: str = "naive_buffer",
             report: str | None = None, on_loaded=None, quant_model: bool = False, quant_type: str = "QUANT_INT16",
             enable_fp16: bool = False, quant_min_sqnr: float | None = None,
             kernel_override: dict[str, str] | None = None) -> OptResult:
    """Convert, optimize and write one .nb; raise a LiteoptError subclass on any problem (nothing written)."""
    t0 = time.perf_counter()
    if optimize_out_type != "naive_buffer":
        raise OptError(f"Unsupported Model type :{optimize_out_type} (--optimize_out_type supports naive_buffer only)")
    if quant_model and quant_type not in QUANT_TYPES:
        raise OptError(f"Unsupported quant type: {quant_type} (--quant_type is QUANT_INT8 or QUANT_INT16)")
    if quant_min_sqnr is not None and not quant_model:
        raise OptError("--quant_min_sqnr needs --quant_model=true")
    targets = parse_targets(valid_targets)
    path = output_path(optimize_out)
    src, graph = convert(model_dir, model_file, param_file, input_shapes)
    if on_loaded:
        on_loaded(src)
    ops_before = graph.op_counts()
    original = lifetimes(graph, inplace=False)
    ctx = PassContext(targets=targets, choose_kernel=lambda n, t, tg: K.choose(n, t, tg, kernel_override),
                      quant_type=quant_type if quant_model else None, enable_fp16=enable_fp16,
                      quant_min_sqnr=quant_min_sqnr)
    run_pipeline(graph, ctx)
    flags = {"valid_targets": ",".join(targets),
             "input_shape": ";".join(f"{k}:{','.join(map(str, v))}" for k, v in sorted((input_shapes or {}).items()))}
    if quant_model:
        flags.update(quant_model="true", quant_type=quant_type)
        if quant_min_sqnr is not None:
            flags["quant_min_sqnr"] = repr(float(quant_min_sqnr))
    if enable_fp16:
        flags["enable_fp16"] = "true"
    size = write(graph, path, Manifest(src.sha256(), src.frontend.name, flags))
    result = OptResult(path, size, ops_before, graph.op_counts(), time.perf_counter() - t0, src.frontend.name,
                       ctx.records, graph, None if original is None else lower_bound(original))
    if ctx.quant_layers:
        result.quantization = {
            "quant_type": quant_type if quant_model else None, "enable_fp16": enable_fp16,
            "min_sqnr_db": quant_min_sqnr,
            "layers": [q.as_dict() for q in sorted(ctx.quant_layers, key=_sqnr_key)],
            "end_to_end": agreement(float_version(graph, ctx.float_weights), graph) if ctx.float_weights else None,
        }
    if report:
        write_report(report, result.report())
    return result


def _sqnr_key(q) -> float:
    """Worst (lowest SQNR) first; float32-kept layers last."""
    return q.sqnr_db if q.sqnr_db is not None else float("inf")


def write_report(path: str, data: dict) -> None:
    try:
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(data, f, indent=2, sort_keys=False)
        os.replace(tmp, path)
    except OSError as e:
        raise OptError(f"--report: cannot write {path}: {e.strerror or e}") from None


def op_support_table(targets: list[str] | None = None) -> list[tuple[str, dict[str, bool]]]:
    """[(op, {target: supported})] for every registered op, sorted by name."""
    K.load_all()
    targets = targets or list(K.TARGETS)
    return [(name, {t: bool(K.KERNELS.get((name, t))) for t in targets}) for name in sorted(OPS)]


class Opt:
    """Paddle Lite's `paddlelite.lite.Opt`, with the same setters."""

    def __init__(self):
        self._model_dir = self._model_file = self._param_file = None
        self._out = ""
        self._targets = "arm"
        self._type = "naive_buffer"
        self._input_shapes: dict[str, tuple[int, ...]] = {}
        self._quant_model, self._quant_type, self._fp16 = False, "QUANT_INT16", False
        self.result: OptResult | None = None

    def set_model_dir(self, d: str): self._model_dir = d
    def set_model_file(self, f: str): self._model_file = f
    def set_param_file(self, f: str): self._param_file = f
    def set_optimize_out(self, out: str): self._out = out
    def set_valid_places(self, places: str): self._targets = places
    def set_model_type(self, t: str): self._type = t
    def set_input_shape(self, name: str, shape): self._input_shapes[name] = tuple(int(d) for d in shape)
    def set_quant_model(self, on: bool): self._quant_model = bool(on)
    def set_quant_type(self, t: str): self._quant_type = t
    def enable_fp16(self): self._fp16 = True

    def run(self) -> OptResult:
        self.result = optimize(self._model_dir, self._model_file, self._param_file, self._out, self._targets,
                               self._input_shapes or None, self._type, quant_model=self._quant_model,
                               quant_type=self._quant_type, enable_fp16=self._fp16)
        return self.result

    def run_optimize(self, model_dir: str, model_file: str, param_file: str, model_type: str, valid_places: str,
                     optimized_out_path: str) -> OptResult:
        self.set_model_dir(model_dir or None)
        self.set_model_file(model_file or None)
        self.set_param_file(param_file or None)
        self.set_model_type(model_type or "naive_buffer")
        self.set_valid_places(valid_places or "arm")
        self.set_optimize_out(optimized_out_path)
        return self.run()

    @staticmethod
    def version() -> str:
        from .. import __version__
        return __version__
