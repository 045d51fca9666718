"""Frozen TensorFlow GraphDef (`.pb` binary or `.pbtxt` text) -> ir.Graph, with protobuf and no TensorFlow.

Inputs are the Placeholders (name = node name; shape from their `shape` attribute, unknown dims symbolic,
overridable with --input_shape); outputs are the graph's sinks: the nodes whose outputs no other node reads
(control inputs do not count), except NoOp, Const and Placeholder nodes; each output is the sink's first
output, named after the node. Inputs and outputs keep TF's layout (NHWC); see registry.py for the layout
of everything in between. Nodes are converted in dependency order (a GraphDef need not be sorted), only
those the outputs depend on; every unsupported op among them is listed before anything is converted.
"""
from __future__ import annotations

import os

import numpy as np
from google.protobuf import text_format
from google.protobuf.message import DecodeError

from ...ir import Graph
from ...ir.dtypes import narrow
from ...ir.errors import ConversionError, LiteoptError, UnsupportedOpsError
from ..shapes import pin_shapes
from .proto import graph_pb2
from .registry import TF_DTYPE_NAMES, TF_DTYPES, TF_OPS, TFCtx, TFValue

# constants only (narrowed to int64 like every front end's): DT_UINT16, DT_UINT32, DT_UINT64
CONST_ONLY_DTYPES = {17: np.dtype("uint16"), 22: np.dtype("uint32"), 23: np.dtype("uint64")}

NOT_OUTPUTS = {"NoOp", "Const", "Placeholder"}


def read_graphdef(path: str) -> graph_pb2.GraphDef:
    """Parse a binary (.pb) or text (.pbtxt) GraphDef; ConversionError naming the file if it is not one."""
    if not os.path.isfile(path):
        raise ConversionError(f"{path}: no such file")
    with open(path, "rb") as f:
        data = f.read()
    g = graph_pb2.GraphDef()
    if path.lower().endswith(".pbtxt"):
        try:
            text_format.Parse(data.decode("utf-8"), g, allow_unknown_field=True)
        except (text_format.ParseError, UnicodeDecodeError) as e:
            raise ConversionError(f"{path}: not a valid TensorFlow GraphDef text file: {e}") from None
    else:
        try:
            g.ParseFromString(data)
        except (DecodeError, ValueError, RuntimeError) as e:
            raise ConversionError(f"{path}: not a valid TensorFlow GraphDef (truncated or corrupt?): {e}") from None
        if g.node and not g.HasField("versions"):  # TF writes it last: a file cut between nodes lacks it
            raise ConversionError(f"{path}: not a valid TensorFlow GraphDef (truncated? it has no `versions`, "
                                  f"which every GraphDef TensorFlow writes ends with)")
    if not g.node:
        raise ConversionError(f"{path}: not a valid TensorFlow GraphDef (no nodes found)")
    for n in g.node:
        if not n.name or not n.op:
            raise ConversionError(f"{path}: not a valid TensorFlow GraphDef (a node without a name or op)")
    return g


# --- attribute and tensor decoding ---------------------------------------------------------------

def tensor_array(t) -> np.ndarray:
    """A TensorProto's value as numpy (narrowed: doubles as float32, unsigned ints as int64); ValueError for
    unsupported or malformed ones."""
    dt = TF_DTYPES.get(t.dtype, CONST_ONLY_DTYPES.get(t.dtype))
    if dt is None:
        raise ValueError(f"constants of type {TF_DTYPE_NAMES.get(t.dtype, t.dtype)} are not supported")
    shape = tuple(int(d.size) for d in t.tensor_shape.dim)
    if any(d < 0 for d in shape):
        raise ValueError(f"constant with unknown dims {shape}")
    size = int(np.prod(shape, dtype=np.int64))
    if t.tensor_content:
        if len(t.tensor_content) != size * dt.itemsize:
            raise ValueError(f"tensor_content holds {len(t.tensor_content)} bytes, shape {shape} needs "
                             f"{size * dt.itemsize}")
        arr = np.frombuffer(t.tensor_content, dt.newbyteorder("<")).astype(dt).reshape(shape)
    else:
        if dt == np.float16:
            vals = np.asarray(t.half_val, np.uint16).view(np.float16)
        else:
            field = {np.float32: t.float_val, np.float64: t.double_val, np.int64: t.int64_val, np.bool_: t.bool_val,
                     np.uint32: t.uint32_val, np.uint64: t.uint64_val}.get(dt.type, t.int_val)
            vals = np.asarray(field, dt)
        if vals.size > size:
            raise ValueError(f"{vals.size} values for shape {shape}")
        if vals.size == 0:
            vals = np.zeros(1, dt)
        # TF's rule: fewer values than elements repeat the last one
        arr = np.pad(vals, (0, size - vals.size), mode="edge").reshape(shape) if size else np.zeros(shape, dt)
    return np.array(narrow(arr), order="C")


def shape_tuple(s):
    """A TensorShapeProto as a tuple (-1 for unknown dims), None for an unknown rank."""
    return None if s.unknown_rank else tuple(int(d.size) for d in s.dim)


_SCALAR = {"s": lambda v: v.s.decode("utf-8", "replace"), "i": lambda v: int(v.i), "f": lambda v: float(v.f),
           "b": lambda v: bool(v.b), "type": lambda v: int(v.type), "shape": lambda v: shape_tuple(v.shape),
           "tensor": lambda v: tensor_array(v.tensor)}
_LIST = {"s": lambda xs: tuple(x.decode("utf-8", "replace") for x in xs), "i": lambda xs: tuple(int(x) for x in xs),
         "f": lambda xs: tuple(float(x) for x in xs), "b": lambda xs: tuple(bool(x) for x in xs),
         "type": lambda xs: tuple(int(x) for x in xs), "shape": lambda xs: tuple(shape_tuple(x) for x in xs),
         "tensor": lambda xs: tuple(tensor_array(x) for x in xs)}


def attr_value(v):
    """(kind, Python value) of an AttrValue."""
    kind = v.WhichOneof("value")
    if kind == "list":
        for k, f in _LIST.items():
            items = getattr(v.list, k)
            if len(items):
                return ("type" if k == "type" else "list"), f(items)
        return "list", ()
    if kind in _SCALAR:
        return kind, _SCALAR[kind](v)
    return kind, None  # func / placeholder: only inside functions; no converter takes them


# --- graph order and outputs ---------------------------------------------------------------------

def parse_input(s: str) -> tuple[str, int, bool]:
    """'node:k' -> (node, k, is_control)."""
    if s.startswith("^"):
        return s[1:], 0, True
    name, _, k = s.rpartition(":")
    if name and k.isdigit():
        return name, int(k), False
    return s, 0, False


def topo_order(g, path: str) -> list:
    """The nodes in an order where every node comes after the nodes it reads (stable: file order first)."""
    by_name = {}
    for n in g.node:
        if n.name in by_name:
            raise ConversionError(f"{path}: two nodes are named {n.name!r}")
        by_name[n.name] = n
    state: dict[str, int] = {}  # 1 = in progress, 2 = done
    order = []
    for root in g.node:
        stack = [(root, iter(root.input))]
        if state.get(root.name):
            continue
        state[root.name] = 1
        while stack:
            node, it = stack[-1]
            for inp in it:
                src, _, _ = parse_input(inp)
                if src not in by_name:
                    raise ConversionError(f"{path}: node {node.name!r} ({node.op}) reads {inp!r}, but there is no "
                                          f"node {src!r}")
                st = state.get(src)
                if st == 1:
                    raise ConversionError(f"{path}: the graph has a cycle through node {src!r} (TF control flow "
                                          f"loops are not supported)")
                if st is None:
                    state[src] = 1
                    stack.append((by_name[src], iter(by_name[src].input)))
                    break
            else:
                stack.pop()
                state[node.name] = 2
                order.append(node)
    return order


def sink_nodes(nodes: list) -> list:
    """Nodes whose outputs no node reads (control inputs do not count), except NoOp/Const/Placeholder."""
    read = {parse_input(i)[0] for n in nodes for i in n.input if not i.startswith("^")}
    return [n for n in nodes if n.name not in read and n.op not in NOT_OUTPUTS]


def live_nodes(nodes: list, sinks: list) -> list:
    """The nodes the outputs read, directly or not, plus every Placeholder (the model's inputs), in order.
    Dead ends (a string Const, a NoOp) are neither converted nor checked."""
    by_name = {n.name: n for n in nodes}
    live: set[str] = set()
    stack = [n.name for n in sinks]
    while stack:
        name = stack.pop()
        if name not in live:
            live.add(name)
            stack.extend(parse_input(i)[0] for i in by_name[name].input if not i.startswith("^"))
    return [n for n in nodes if n.name in live or n.op == "Placeholder"]


def unsupported_ops(nodes: list) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for n in nodes:
        if n.op not in TF_OPS:
            out.setdefault(n.op, []).append(n.name)
    return dict(sorted(out.items()))


# --- conversion ----------------------------------------------------------------------------------

def load_tf(path: str, input_shapes: dict[str, tuple[int, ...]] | None = None) -> Graph:
    """Convert a frozen GraphDef to an ir.Graph (shapes inferred, symbolic where not pinned)."""
    g = read_graphdef(path)
    nodes = topo_order(g, path)
    sinks = sink_nodes(nodes)
    if not sinks:
        raise ConversionError(f"{path}: the graph has no output (every node is read by another, or is a "
                              f"Const/NoOp/Placeholder)")
    nodes = live_nodes(nodes, sinks)
    bad = unsupported_ops(nodes)
    if bad:
        raise UnsupportedOpsError.listing(path, bad)
    graph = Graph(nodes=[], inputs=[], outputs=[], tensors={})
    ctx = TFCtx(graph, opset=0, input_shapes=dict(input_shapes or {}))
    values: dict[str, list[TFValue]] = {}  # TF node name -> its outputs
    for n in nodes:
        ctx.node_name, ctx.node_op, ctx._emitted_here, ctx.node_outputs = n.name, n.op, 0, [n.name]
        try:
            values[n.name] = _convert_node(ctx, n, values)
        except LiteoptError as e:
            raise type(e)(f"{path}: {e}") from None
        except Exception as e:  # a converter tripping over a malformed node is the model's fault
            raise ConversionError(f"{path}: node {n.name!r} ({n.op}) cannot be converted: "
                                  f"{type(e).__name__}: {e}") from None
    unknown = set(ctx.input_shapes) - set(graph.inputs)
    if unknown:
        pin_shapes(graph, {k: ctx.input_shapes[k] for k in sorted(unknown)}, path)  # raises, naming the inputs
    for n in sinks:
        ctx.node_name, ctx.node_op, ctx._emitted_here = f"output/{n.name}", "Identity", 0
        ours = ctx.tf(values[n.name][0])
        if ours in graph.inputs or graph.tensors[ours].is_const or ours in graph.outputs:
            ours = ctx.emit("assign", [ours])
        if ours != n.name and n.name not in graph.tensors:
            graph.rename(ours, n.name)
            ours = n.name
        graph.outputs.append(ours)
    graph.prune()
    return graph


def _convert_node(ctx: TFCtx, n, values: dict) -> list[TFValue]:
    conv = TF_OPS[n.op]
    attrs = {}
    for k, v in n.attr.items():
        kind, val = attr_value(v)
        if k in conv.attrs:
            attrs[k] = val
        elif not (k.startswith("_") or kind == "type"):
            raise ctx.error(f"attribute {k!r} is not supported")
    inputs = []
    for s in n.input:
        src, k, control = parse_input(s)
        if control:
            continue
        outs = values[src]
        if k >= len(outs):
            raise ctx.error(f"reads output {k} of node {src!r}, which has {len(outs)} output(s) we convert")
        inputs.append(outs[k])
    start_tensors = len(ctx.graph.tensors)
    result = conv.fn(ctx, *inputs, **attrs)
    results = list(result) if isinstance(result, list) else [result]
    results = [r if isinstance(r, TFValue) else TFValue(r) for r in results]
    # name a new result held in TF layout after the TF tensor it stands for
    new = set(list(ctx.graph.tensors)[start_tensors:])
    for k, r in enumerate(results):
        tf_name = n.name if k == 0 else f"{n.name}:{k}"
        if not r.perm and r.name in new and tf_name not in ctx.graph.tensors and r.name not in ctx.graph.inputs:
            ctx.graph.rename(r.name, tf_name)
            ctx.renamed(r.name, tf_name)
            if r.name in ctx.values:
                ctx.values[tf_name] = ctx.values.pop(r.name)
            results[k] = TFValue(tf_name)
    return results
