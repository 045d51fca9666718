"""ONNX file -> ir.Graph. Reads initializers (and external data), checks the model with onnx's checker,
collects every unsupported op before failing, then runs one converter function per node."""
from __future__ import annotations

import os

import numpy as np
import onnx
from google.protobuf.message import DecodeError
from onnx import numpy_helper

from ...ir import DType, Graph, Tensor
from ...ir.dtypes import compute_dtype, narrow
from ...ir.errors import ConversionError, LiteoptError, UnsupportedOpsError
from ..shapes import pin_shapes
from .registry import ConvertCtx, converter_for

MIN_OPSET, MAX_OPSET = 9, 21


def onnx_dtype(elem_type: int, what: str) -> DType:
    """Our dtype for an ONNX element type (DOUBLE is computed in float32: `compute_dtype`)."""
    try:
        return compute_dtype(onnx.helper.tensor_dtype_to_np_dtype(elem_type))
    except (KeyError, ValueError, TypeError):
        name = onnx.TensorProto.DataType.Name(elem_type) if elem_type in onnx.TensorProto.DataType.values() else elem_type
        raise ConversionError(f"{what} has data type {name}, which liteopt does not support") from None


def _array(init: onnx.TensorProto, path: str) -> np.ndarray:
    try:
        arr = numpy_helper.to_array(init)
    except Exception as e:
        raise ConversionError(f"{path}: initializer {init.name!r} cannot be read: {e}") from None
    arr = narrow(arr)
    try:
        DType.of(arr)
    except ValueError as e:
        raise ConversionError(f"{path}: initializer {init.name!r}: {e}") from None
    return np.asarray(arr, order="C")


def read_model(path: str) -> onnx.ModelProto:
    if not os.path.isfile(path):
        raise ConversionError(f"{path}: no such file")
    try:
        model = onnx.load(path, load_external_data=True)
    except (DecodeError, ValueError, RuntimeError, OSError, UnicodeDecodeError, TypeError) as e:
        raise ConversionError(f"{path}: not a valid ONNX model (truncated or corrupt?): {e}") from None
    except Exception as e:  # protobuf may raise other errors on garbage
        raise ConversionError(f"{path}: not a valid ONNX model: {type(e).__name__}: {e}") from None
    if not model.graph.node and not model.graph.output:
        raise ConversionError(f"{path}: not a valid ONNX model (no graph found)")
    try:
        onnx.checker.check_model(model if model.ByteSize() < 2**31 - 1 else path)
    except Exception as e:
        lines = [ln.strip(" =>") for ln in str(e).splitlines() if ln.strip()]
        raise ConversionError(f"{path}: the ONNX checker rejects this model: "
                              f"{'; '.join(lines) or type(e).__name__}") from None
    return model


def model_opset(model: onnx.ModelProto, path: str) -> int:
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    if opset is None:
        raise ConversionError(f"{path}: the model declares no default-domain opset")
    if not MIN_OPSET <= opset <= MAX_OPSET:
        raise ConversionError(f"{path}: opset {opset} is not supported (liteopt reads opsets {MIN_OPSET} to {MAX_OPSET})")
    return opset


def unsupported_ops(model: onnx.ModelProto, opset: int) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for i, n in enumerate(model.graph.node):
        key = n.op_type if n.domain in ("", "ai.onnx") else f"{n.domain}::{n.op_type}"
        if n.domain not in ("", "ai.onnx") or converter_for(n.op_type, opset) is None:
            out.setdefault(key, []).append(n.name or f"#{i}")
    return dict(sorted(out.items()))


def _input_shape(vi: onnx.ValueInfoProto):
    tt = vi.type.tensor_type
    if not tt.HasField("shape"):
        return None
    return tuple(d.dim_value if d.HasField("dim_value") and d.dim_value > 0
                 else (d.dim_param or f"{vi.name}:{k}") for k, d in enumerate(tt.shape.dim))


def _attr_value(a: onnx.AttributeProto):
    v = onnx.helper.get_attribute_value(a)
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    if isinstance(v, list) and v and isinstance(v[0], bytes):
        return [x.decode("utf-8", "replace") for x in v]
    if isinstance(v, onnx.TensorProto):
        return numpy_helper.to_array(v)
    return v


def load_onnx(path: str, input_shapes: dict[str, tuple[int, ...]] | None = None) -> Graph:
    """Convert an ONNX file to an ir.Graph (shapes inferred, symbolic where not pinned)."""
    model = read_model(path)
    opset = model_opset(model, path)
    bad = unsupported_ops(model, opset)
    if bad:
        raise UnsupportedOpsError.listing(path, bad)
    g = model.graph
    graph = Graph(nodes=[], inputs=[], outputs=[], tensors={},
                  metadata={p.key: p.value for p in model.metadata_props})
    for init in g.initializer:
        arr = _array(init, path)
        graph.tensors[init.name] = Tensor(init.name, DType.of(arr), tuple(arr.shape), arr)
    for vi in g.input:
        if vi.name in graph.tensors:
            continue  # old exporters list initializers as inputs too
        if not vi.type.HasField("tensor_type"):
            raise ConversionError(f"{path}: input {vi.name!r} is not a tensor")
        dtype = onnx_dtype(vi.type.tensor_type.elem_type, f"{path}: input {vi.name!r}")
        graph.tensors[vi.name] = Tensor(vi.name, dtype, _input_shape(vi))
        graph.inputs.append(vi.name)
    pin_shapes(graph, input_shapes, path)

    ctx = ConvertCtx(graph, opset)
    alias: dict[str, str] = {}
    used_names: set[str] = set()
    for idx, n in enumerate(g.node):
        name = n.name or f"{n.op_type}_{idx}"
        if name in used_names:
            name = f"{name}_{idx}"
        used_names.add(name)
        ctx.node_name, ctx.node_op, ctx._emitted_here = name, n.op_type, 0
        ctx.node_outputs = list(n.output)
        try:
            _convert_node(ctx, n, alias, path)
        except LiteoptError:
            raise
        except Exception as e:  # a converter tripping over a malformed node is the model's fault
            raise ConversionError(f"{path}: node {name!r} ({n.op_type}) cannot be converted: "
                                  f"{type(e).__name__}: {e}") from None

    output_names = {vi.name for vi in g.output}
    for vi in g.output:
        ours = alias.get(vi.name, vi.name)
        if ours not in graph.tensors:
            raise ConversionError(f"{path}: graph output {vi.name!r} is never produced")
        if ours in graph.inputs or graph.tensors[ours].is_const or ours in graph.outputs or \
                (ours != vi.name and ours in output_names):
            ctx.node_name, ctx.node_op, ctx._emitted_here = f"output/{vi.name}", "Identity", 0
            ours = ctx.emit("assign", [ours])
        if ours != vi.name and vi.name not in graph.tensors:
            _rename(ctx, ours, vi.name)
            ours = vi.name
        graph.outputs.append(ours)
    graph.prune()
    return graph


def _rename(ctx: ConvertCtx, old: str, new: str) -> None:
    ctx.graph.rename(old, new)
    if old in ctx.values:
        ctx.values[new] = ctx.values.pop(old)


def _convert_node(ctx: ConvertCtx, n: onnx.NodeProto, alias: dict[str, str], path: str) -> None:
    conv = converter_for(n.op_type, ctx.opset)
    attrs = {a.name: _attr_value(a) for a in n.attribute}
    unknown = set(attrs) - conv.attrs
    if unknown and not conv.var_kw:
        raise ConversionError(f"{path}: node {ctx.node_name!r} ({n.op_type}): attribute(s) "
                              f"{', '.join(sorted(unknown))} not supported")
    inputs = [alias.get(i, i) if i else "" for i in n.input]
    for i in inputs:
        if i and i not in ctx.graph.tensors:
            raise ConversionError(f"{path}: node {ctx.node_name!r} ({n.op_type}) reads {i!r}, which is never produced")
    start = len(ctx.graph.nodes)
    result = conv.fn(ctx, *inputs, **attrs)
    results = list(result) if isinstance(result, (list, tuple)) else [result]
    outputs = list(n.output)
    if len(results) < len([o for o in outputs if o]):
        raise ctx.error(f"produced {len(results)} outputs, the model expects {len(outputs)}")
    emitted = {o for node in ctx.graph.nodes[start:] for o in node.outputs}
    renamed: dict[str, str] = {}
    for onnx_name, ours in zip(outputs, results):
        if not onnx_name:
            continue
        if ours in renamed:
            alias[onnx_name] = renamed[ours]
        elif ours in emitted and onnx_name not in ctx.graph.tensors:
            _rename(ctx, ours, onnx_name)
            renamed[ours] = onnx_name
        else:
            alias[onnx_name] = ours
