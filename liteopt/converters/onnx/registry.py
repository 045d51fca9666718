"""The ONNX converter table and the context each converter function writes into.

One small function per ONNX op; its signature is the attribute schema:

    @onnx_op("LeakyRelu")
    def LeakyRelu(ctx, x, *, alpha=0.01):
        return ctx.emit("leaky_relu", [x], alpha=alpha)

Positional parameters receive input tensor names ("" for an absent optional input); keyword-only
parameters receive the ONNX attributes (defaults are ONNX's). An attribute the signature does not
name is an error naming the node. `since=N` selects the function by the model's opset: the one
with the largest `since` not above it wins. The function returns our tensor name(s), one per ONNX output.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from ...ir import OPS, DType, Graph, Node, Tensor
from ...ir.errors import ConversionError, ShapeError
from ...ir.registry import TensorType, infer_node


@dataclass(frozen=True)
class OnnxConverter:
    op_type: str
    since: int
    fn: Callable
    attrs: frozenset
    var_kw: bool


ONNX_OPS: dict[str, list[OnnxConverter]] = {}


def onnx_op(*op_types: str, since: int = 1):
    def deco(fn):
        sig = inspect.signature(fn)
        attrs = frozenset(p.name for p in sig.parameters.values() if p.kind is p.KEYWORD_ONLY)
        var_kw = any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values())
        for t in op_types:
            lst = ONNX_OPS.setdefault(t, [])
            if any(c.since == since for c in lst):
                raise RuntimeError(f"ONNX converter for {t} since {since} registered twice")
            lst.append(OnnxConverter(t, since, fn, attrs, var_kw))
            lst.sort(key=lambda c: c.since)
        return fn
    return deco


def converter_for(op_type: str, opset: int) -> OnnxConverter | None:
    best = None
    for c in ONNX_OPS.get(op_type, ()):
        if c.since <= opset:
            best = c
    return best


@dataclass
class ConvertCtx:
    """Builds the IR graph; converter functions call `emit`, `const`, `value`, `shape`, `error`."""

    graph: Graph
    opset: int
    values: dict[str, np.ndarray] = field(default_factory=dict)  # small known values (shape arithmetic)
    node_name: str = ""
    node_op: str = ""
    node_outputs: list = field(default_factory=list)  # the source node's output names ("" = unused)
    _counter: int = 0
    _emitted_here: int = 0  # nodes emitted for the current source node

    # --- reading ---
    def tensor(self, name: str) -> Tensor:
        return self.graph.tensors[name]

    def shape(self, name: str):
        return self.graph.tensors[name].shape

    def dtype(self, name: str) -> DType:
        return self.graph.tensors[name].dtype

    def rank(self, name: str) -> int:
        s = self.shape(name)
        if s is None:
            raise self.error(f"the rank of input {name!r} is unknown")
        return len(s)

    def value(self, name: str) -> np.ndarray | None:
        """The value of a tensor if it is constant or derivable from known shapes, else None."""
        if not name:
            return None
        t = self.graph.tensors[name]
        return t.data if t.data is not None else self.values.get(name)

    def const_value(self, name: str, what: str) -> np.ndarray:
        v = self.value(name)
        if v is None:
            raise self.error(f"{what} (input {name!r}) must be a constant; it is computed at run time")
        return v

    def error(self, msg: str) -> ConversionError:
        return ConversionError(f"node {self.node_name!r} ({self.node_op}): {msg}")

    # --- writing ---
    def fresh(self, hint: str) -> str:
        while True:
            self._counter += 1
            name = f"{self.node_name or 'tmp'}/{hint}_{self._counter}"
            if name not in self.graph.tensors:
                return name

    def const(self, value: Any, hint: str = "const", dtype: DType | None = None) -> str:
        arr = np.asarray(value, dtype=(dtype.np if dtype else None))
        if dtype is None and arr.dtype == np.float64:
            arr = arr.astype(np.float32)
        arr = np.asarray(arr, order="C")
        name = self.fresh(hint)
        self.graph.tensors[name] = Tensor(name, DType.of(arr), tuple(arr.shape), arr)
        return name

    def emit(self, op: str, inputs: list[str], n_out: int = 1, **attrs) -> Any:
        """Append one IR node; returns its output name (or a list when n_out > 1)."""
        d = OPS[op]
        where = f"node {self.node_name!r} ({self.node_op})"
        try:
            attrs = d.normalize_attrs(attrs, where)
        except ShapeError as e:
            raise ConversionError(str(e)) from None
        outs = [self.fresh(op) for _ in range(n_out)]
        suffix = f"/{op}" if self._emitted_here else ""
        node = Node(op, list(inputs), outs, attrs, name=self.node_name + suffix + (f"_{self._counter}" if suffix else ""))
        self._emitted_here += 1
        types = [TensorType(self.dtype(i), self.shape(i)) if i else None for i in inputs]
        try:
            out_types, out_vals = infer_node(node, types, [self.value(i) for i in inputs])
        except ShapeError as e:
            raise ConversionError(str(e)) from None
        for name, t, v in zip(outs, out_types, out_vals):
            self.graph.tensors[name] = Tensor(name, t.dtype, t.shape)
            if v is not None:
                self.values[name] = v
        self.graph.nodes.append(node)
        return outs[0] if n_out == 1 else outs
