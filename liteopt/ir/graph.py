"""The IR: flat, ordered, no stored back-links.

`Graph.nodes` is always in execution order. A `Tensor` whose `data` is set is a constant (a weight).
A dimension is an `int`, or a `str` naming a symbolic (dynamic) size; `shape=None` means unknown rank.
Consumers and producers are computed on demand, never stored.
"""
from __future__ import annotations

import dataclasses
import zlib
from dataclasses import dataclass, field
from typing import Any, Union

import numpy as np

from .dtypes import DType
from .errors import ShapeError

Dim = Union[int, str]
Shape = tuple  # tuple[Dim, ...]


def scales_from_amax16(amax16: np.ndarray, bits: int) -> np.ndarray:
    """Per-channel scales from abs-max values stored as float16 (the .nb's compact form): the one place
    both the quantizer and the reader compute them, so that they agree bit for bit."""
    return (amax16.astype(np.float32) / np.float32(2 ** (bits - 1) - 1)).astype(np.float32)


# Quantized integer weights are not uniformly distributed (most values lie near zero): zlib saves 7-14% of an
# INT8 model. Float blobs barely compress and are stored as they are, ready to be used in place.
ZLIB_MIN_SAVING = 0.02


def stored_bytes(data: np.ndarray, quantized: bool) -> bytes:
    """A constant's bytes as the .nb stores them: zlib-compressed when quantized and it pays. Here so that
    the quantizer can weigh its choices in the bytes the writer will spend."""
    raw = np.ascontiguousarray(data).tobytes()
    if quantized and data.dtype.kind == "i":
        packed = zlib.compress(raw, 9)
        if len(packed) <= (1 - ZLIB_MIN_SAVING) * len(raw):
            return packed
    return raw


@dataclass
class QuantInfo:
    """A weight stored in a smaller type, restored to float32 once at load:
    int8/int16 data: real value = data * scale[channel along `axis`] (symmetric, per channel);
    float16 data: `scale` is empty and the value is the data itself, widened."""

    scale: np.ndarray
    axis: int
    bits: int

    def dequantize(self, data: np.ndarray) -> np.ndarray:
        out = data.astype(np.float32)
        if self.scale.size == 1:  # one scale for the whole tensor
            out *= np.float32(self.scale.reshape(-1)[0])
        elif self.scale.size:
            shape = [1] * data.ndim
            shape[self.axis] = -1
            out *= self.scale.astype(np.float32).reshape(shape)
        return out


@dataclass
class Tensor:
    name: str
    dtype: DType
    shape: Shape | None
    data: np.ndarray | None = None
    quant: QuantInfo | None = None

    @property
    def is_const(self) -> bool:
        return self.data is not None

    @property
    def is_static(self) -> bool:
        return self.shape is not None and all(isinstance(d, int) for d in self.shape)

    def value(self) -> np.ndarray | None:
        """The constant's real (float) value: the data, dequantized if it is stored quantized."""
        if self.data is None or self.quant is None:
            return self.data
        return self.quant.dequantize(self.data)

    @property
    def numel(self) -> int | None:
        return int(np.prod(self.shape, dtype=np.int64)) if self.is_static else None


@dataclass
class Node:
    op: str
    inputs: list[str]  # "" stands for an absent optional input
    outputs: list[str]
    attrs: dict[str, Any] = field(default_factory=dict)
    name: str = ""
    kernel: str = ""  # the kernel picked by opt ("cpu/default", "ref", ...); "" = not picked yet


@dataclass
class Graph:
    nodes: list[Node]
    inputs: list[str]
    outputs: list[str]
    tensors: dict[str, Tensor]
    metadata: dict[str, str] = field(default_factory=dict)
    memory_plan: Any = None  # ir.memory.MemoryPlan once planned (static shapes only)

    # --- derived views ---------------------------------------------------------------------
    def producers(self) -> dict[str, Node]:
        return {o: n for n in self.nodes for o in n.outputs}

    def consumers(self) -> dict[str, list[Node]]:
        out: dict[str, list[Node]] = {}
        for n in self.nodes:
            for i in n.inputs:
                if i:
                    out.setdefault(i, []).append(n)
        return out

    def const(self, name: str) -> np.ndarray | None:
        t = self.tensors.get(name) if name else None
        return None if t is None else t.data

    def op_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for n in self.nodes:
            counts[n.op] = counts.get(n.op, 0) + 1
        return dict(sorted(counts.items()))

    def copy(self) -> "Graph":
        """A structural copy: nodes, lists and dicts are new; constant arrays are shared."""
        return Graph(
            nodes=[dataclasses.replace(n, inputs=list(n.inputs), outputs=list(n.outputs), attrs=dict(n.attrs))
                   for n in self.nodes],
            inputs=list(self.inputs),
            outputs=list(self.outputs),
            tensors={k: dataclasses.replace(t) for k, t in self.tensors.items()},
            metadata=dict(self.metadata),
            memory_plan=self.memory_plan,
        )

    def rename(self, old: str, new: str) -> None:
        """Give tensor `old` the free name `new` everywhere: its Tensor, every node, the graph outputs."""
        t = self.tensors.pop(old)
        t.name = new
        self.tensors[new] = t
        for n in self.nodes:
            n.inputs = [new if i == old else i for i in n.inputs]
            n.outputs = [new if o == old else o for o in n.outputs]
        self.inputs = [new if i == old else i for i in self.inputs]
        self.outputs = [new if o == old else o for o in self.outputs]

    def prune(self) -> None:
        """Drop nodes whose outputs are never used and tensors nobody refers to."""
        live = set(self.outputs)
        kept: list[Node] = []
        for n in reversed(self.nodes):
            if any(o in live for o in n.outputs):
                kept.append(n)
                live.update(i for i in n.inputs if i)
        self.nodes = kept[::-1]
        used = live | set(self.inputs) | {o for n in self.nodes for o in n.outputs}
        self.tensors = {k: t for k, t in self.tensors.items() if k in used}

    # --- checks ----------------------------------------------------------------------------
    def verify(self) -> None:
        """Check the invariants every pass must keep; raise ShapeError naming what is wrong."""
        from .registry import OPS

        defined = set(self.inputs) | {k for k, t in self.tensors.items() if t.is_const}
        for name in self.inputs:
            if name not in self.tensors:
                raise ShapeError(f"graph input {name!r} has no tensor")
        seen_nodes = set()
        for n in self.nodes:
            if n.op not in OPS:
                raise ShapeError(f"node {n.name!r}: unknown op type {n.op!r}")
            if n.name in seen_nodes:
                raise ShapeError(f"node name {n.name!r} used twice")
            seen_nodes.add(n.name)
            OPS[n.op].check_arity(n)
            for i in n.inputs:
                if i and i not in defined:
                    raise ShapeError(f"node {n.name!r} ({n.op}) reads {i!r} before it is produced")
            for o in n.outputs:
                if o in defined:
                    raise ShapeError(f"tensor {o!r} is produced twice (node {n.name!r})")
                if o not in self.tensors:
                    raise ShapeError(f"node {n.name!r} output {o!r} has no tensor")
                defined.add(o)
        for o in self.outputs:
            if o not in defined:
                raise ShapeError(f"graph output {o!r} is never produced")
