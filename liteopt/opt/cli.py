"""The `opt` command: Paddle Lite's flags (`--flag=value`, booleans as `--flag=true`), rich output.

Exit codes: 0 success, 1 bad model or unsupported ops, 2 bad flags, 3 internal error.
"""
from __future__ import annotations

import os
import sys

import click
from rich.console import Console
from rich.table import Table

from .. import __version__
from ..ir.errors import LiteoptError, UnsupportedOpsError
from . import api

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

EXIT_MODEL, EXIT_USAGE, EXIT_INTERNAL = 1, 2, 3


class GflagsBool(click.ParamType):
    """A boolean in gflags style: `--flag`, `--flag=true`, `--flag=false` (also 1/0, yes/no)."""

    name = "true|false"
    _VALUES = {"true": True, "1": True, "yes": True, "on": True, "false": False, "0": False, "no": False, "off": False}

    def convert(self, value, param, ctx):
        if isinstance(value, bool):
            return value
        v = self._VALUES.get(str(value).strip().lower())
        if v is None:
            self.fail(f"{value!r} is not a boolean: use true or false", param, ctx)
        return v


BOOL = GflagsBool()


def bool_option(name: str, help: str):
    return click.option(name, type=BOOL, default=False, is_flag=False, flag_value="true", metavar="=true|false",
                        help=help)


HELP = f"""paddlelite-compatible opt (liteopt {__version__}): convert an ONNX, Caffe or TensorFlow model to one
optimized .nb file.

\b
  opt --model_dir=DIR --optimize_out=OUT [--valid_targets=arm] [--input_shape=x:1,3,224,224]
  opt --model_file=net.prototxt --param_file=net.caffemodel --optimize_out=OUT
  opt --print_all_ops=true | --print_supported_ops=true --valid_targets=cpu
  opt --print_model_ops=true --model_dir=DIR
"""


@click.command(help=HELP, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.option("--model_dir", help="Directory holding one model (.onnx | .prototxt+.caffemodel | .pb).")
@click.option("--model_file", help="Model file (.onnx, .prototxt, .pb/.pbtxt).")
@click.option("--param_file", help="Weights file (.caffemodel) when separate from --model_file.")
@click.option("--optimize_out", help="Output path; .nb is appended unless present.")
@click.option("--optimize_out_type", default="naive_buffer", show_default=True, help="Only naive_buffer.")
@click.option("--valid_targets", default="arm", show_default=True,
              help="Comma-separated targets, priority first: cpu, ref (arm, x86, host = cpu).")
@click.option("--input_shape", multiple=True, metavar="NAME:D0,D1,...",
              help="Pin the shape of an input (repeatable); dynamic dims stay symbolic otherwise.")
@click.option("--report", "report", metavar="FILE.json", help="Write a JSON report of the conversion.")
@bool_option("--print_all_ops", "Print every op liteopt knows, per target.")
@bool_option("--print_all_ops_in_md_format", "The same as a markdown table.")
@bool_option("--print_supported_ops", "Print the ops supported on --valid_targets.")
@bool_option("--print_model_ops", "Print the model's ops and whether each is supported.")
@bool_option("--quant_model", "Weight-only quantization, no calibration data needed.")
@click.option("--quant_type", default="QUANT_INT16", show_default=True, metavar="QUANT_INT8|QUANT_INT16",
              help="Bits of the quantized weights (with --quant_model=true).")
@click.option("--quant_min_sqnr", type=float, metavar="DB",
              help="Keep layers whose quantized weights fall below this SQNR in more bits or float32.")
@bool_option("--enable_fp16", "Store float weights as float16 (out-of-range tensors stay float32).")
@bool_option("--explain", "List every near-miss of the passes (why a fusion did not apply).")
@click.option("--version", "show_version", is_flag=True, help="Print the version and exit.")
def main(model_dir, model_file, param_file, optimize_out, optimize_out_type, valid_targets, input_shape, report,
         print_all_ops, print_all_ops_in_md_format, print_supported_ops, print_model_ops, quant_model, quant_type,
         quant_min_sqnr, enable_fp16, explain, show_version):
    try:
        if show_version:
            out.print(f"liteopt opt version: {__version__}")
            return 0
        if print_all_ops or print_all_ops_in_md_format:
            _print_ops(None, markdown=print_all_ops_in_md_format)
            return 0
        if print_supported_ops:
            _print_ops(api.parse_targets(valid_targets), markdown=False)
            return 0
        shapes = dict(api.parse_input_shape(s) for s in input_shape)
        if print_model_ops:
            return _print_model_ops(model_dir, model_file, param_file, api.parse_targets(valid_targets), shapes)
        if not (model_dir or model_file):
            raise api.OptError("no model given: use --model_dir=<dir> or --model_file=<file> (see opt --help)")
        result = api.optimize(model_dir, model_file, param_file, optimize_out, valid_targets, shapes or None,
                              optimize_out_type, report,
                              on_loaded=lambda src: out.print("1. Model is successfully loaded!"),
                              quant_model=quant_model, quant_type=quant_type, enable_fp16=enable_fp16,
                              quant_min_sqnr=quant_min_sqnr)
        out.print(f"2. Model is optimized and saved into {result.path} successfully")
        _print_summary(result)
        if result.quantization:
            _print_quantization(result.quantization)
        if explain:
            _print_near_misses(result)
        return 0
    except UnsupportedOpsError as e:
        _print_unsupported(e, valid_targets)
        return EXIT_MODEL
    except api.OptError as e:
        err.print(f"Error: {e}", markup=False)
        return EXIT_USAGE
    except LiteoptError as e:
        err.print(f"Error: {e}", markup=False)
        return EXIT_MODEL
    except KeyboardInterrupt:
        err.print("Interrupted; nothing was written.", markup=False)
        return 130
    except Exception as e:  # never a traceback: say what happened and how to report it
        if os.environ.get("LITEOPT_DEBUG"):
            raise
        err.print(f"Internal error: {type(e).__name__}: {e}. Nothing was written. "
                  f"Set LITEOPT_DEBUG=1 for a traceback and please report it.", markup=False)
        return EXIT_INTERNAL


def _print_unsupported(e: UnsupportedOpsError, valid_targets: str) -> None:
    ops = sorted(e.unsupported)
    err.print(f"Error: This model is not supported, because {len(ops)} ops are not supported on "
              f"'{valid_targets}'. These unsupported ops are: '{', '.join(ops)}'.", markup=False)
    t = Table(title="Unsupported ops", title_justify="left")
    t.add_column("op type")
    t.add_column("count", justify="right")
    t.add_column("nodes")
    for k in ops:
        names = e.unsupported[k]
        t.add_row(k, str(len(names)), ", ".join(names[:8]) + (f", ... ({len(names) - 8} more)" if len(names) > 8 else ""))
    err.print(t)
    err.print("Nothing was written.", markup=False)


def _print_summary(r: api.OptResult) -> None:
    passes = Table(title="passes", title_justify="left", header_style="bold")
    passes.add_column("pass")
    passes.add_column("matches", justify="right")
    passes.add_column("near-misses", justify="right")
    passes.add_column("ms", justify="right")
    for p in r.passes:
        passes.add_row(p.name, str(p.matches), str(len(p.near_misses)) if p.near_misses else "", f"{p.ms:.1f}")
    t = Table(title="summary", title_justify="left", header_style="bold")
    t.add_column("")
    t.add_column("value", justify="right")
    t.add_row("source", r.source_format)
    t.add_row("ops before", str(sum(r.ops_before.values())))
    t.add_row("ops after", str(sum(r.ops_after.values())))
    mem = r.memory()
    if mem:
        t.add_row("arena", f"{_size(mem['arena_bytes'])} (lower bound {_size(mem['lower_bound_bytes'])})")
    t.add_row("file size", _size(r.file_size))
    t.add_row("time", f"{r.seconds:.2f} s")
    out.print(passes)
    out.print(t)
    misses = sum(len(p.near_misses) for p in r.passes)
    if misses:
        out.print(f"{misses} near-miss(es): see them with --explain", markup=False)


def _print_quantization(q: dict, worst: int = 10) -> None:
    layers = q["layers"]
    t = Table(title=f"weight storage, worst {min(worst, len(layers))} of {len(layers)} layers first",
              title_justify="left", header_style="bold")
    for c, j in (("tensor", "left"), ("op", "left"), ("storage", "left"), ("SQNR dB", "right"), ("cosine", "right"),
                 ("bytes", "right"), ("note", "left")):
        t.add_column(c, justify=j)
    for q_ in layers[:worst]:
        s = q_["sqnr_db"]
        t.add_row(q_["tensor"], q_["op"], q_["storage"], "" if s is None else (s if isinstance(s, str) else f"{s:.1f}"),
                  "" if q_["cosine"] is None else f"{q_['cosine']:.6f}",
                  f"{_size(q_['bytes_before'])} -> {_size(q_['bytes_after'])}", q_["note"])
    out.print(t)
    e = q.get("end_to_end")
    if e and "cosine" in e:
        shapes = ", ".join("x".join(map(str, s)) for s in e.get("input_shapes", {}).values())
        out.print(f"end to end on {e['inputs']} synthetic inputs ({shapes}, uniform in [-1, 1]): cosine "
                  f"{e['cosine']:.6f}, max|diff|/max|ref| {e['max_rel_err']:.2e} (quantized vs float model)",
                  markup=False)
    elif e:
        out.print(f"end-to-end check skipped: {e['skipped']}", markup=False)
    out.print("Weights are restored to float32 when the model loads: this saves file size and download time, "
              "not inference time.", markup=False)


def _print_near_misses(r: api.OptResult) -> None:
    for p in r.passes:
        for m in p.near_misses:
            out.print(f"  {p.name}: {m}", markup=False)


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{n} B"
        n /= 1024
    return str(n)


def _print_ops(targets: list[str] | None, markdown: bool) -> None:
    rows = api.op_support_table(targets)
    cols = targets or [t for t in api.K.TARGETS]
    if markdown:
        print("| op | " + " | ".join(cols) + " |")
        print("|---|" + "---|" * len(cols))
        for name, sup in rows:
            print(f"| {name} | " + " | ".join("Y" if sup[c] else "" for c in cols) + " |")
        return
    rows = [(n, s) for n, s in rows if any(s.values())] if targets else rows
    title = (f"Supported OPs on '{','.join(targets)}': {len(rows)} ops" if targets
             else f"All OPs supported by liteopt: {len(rows)} ops in total.")
    t = Table(title=title, title_justify="left")
    t.add_column("OP")
    for c in cols:
        t.add_column(c, justify="center")
    for name, sup in rows:
        t.add_row(name, *("Y" if sup[c] else "" for c in cols))
    out.print(t)


def _print_model_ops(model_dir, model_file, param_file, targets, shapes) -> int:
    """The model's op types (after conversion) and their support; exit code 1 if any is unsupported."""
    try:
        src, graph = api.convert(model_dir, model_file, param_file, shapes or None)
    except UnsupportedOpsError as e:
        _print_unsupported(e, ",".join(targets))
        return EXIT_MODEL
    out.print("OPs in the input model include:")
    t = Table()
    t.add_column("OP")
    t.add_column("count", justify="right")
    for c in targets:
        t.add_column(c, justify="center")
    missing = []
    for name, count in graph.op_counts().items():
        sup = [bool(api.kernel_variants(name, c)) for c in targets]
        if not any(sup):
            missing.append(name)
        t.add_row(name, str(count), *("Y" if s else "" for s in sup))
    out.print(t)
    if missing:
        err.print(f"Error: This model is not supported, because {len(missing)} ops are not supported on "
                  f"'{','.join(targets)}'. These unsupported ops are: '{', '.join(missing)}'.", markup=False)
        return EXIT_MODEL
    out.print("liteopt supports this model!")
    return 0


def run(argv: list[str] | None = None) -> int:
    """Run opt on argv (default sys.argv[1:]); returns the exit code. No arguments prints the help (exit 0),
    as Paddle Lite's opt does."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv:
        with click.Context(main, info_name="opt") as ctx:
            out.print(main.get_help(ctx), markup=False, highlight=False)
        return 0
    try:
        code = main(args=argv, prog_name="opt", standalone_mode=False)
        return 0 if code is None else int(code)
    except click.exceptions.NoSuchOption as e:
        hint = f" (did you mean {', '.join(e.possibilities)}?)" if e.possibilities else ""
        err.print(f"Error: unknown flag {e.option_name}{hint}; see opt --help", markup=False)
    except click.exceptions.ClickException as e:
        err.print(f"Error: {e.format_message()}; see opt --help", markup=False)
    except click.exceptions.Abort:
        return 130
    return EXIT_USAGE


def entry() -> None:
    """The `opt` console script."""
    sys.exit(run())
