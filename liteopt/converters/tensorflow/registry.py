"""The TensorFlow converter table, tensor layouts, and the context each converter function writes into.

One small function per TF op; its signature is the attribute schema (TF's defaults):

    @tf_op("LeakyRelu")
    def LeakyRelu(ctx, x, *, alpha=0.2):
        return ctx.unary("leaky_relu", x, alpha=alpha)

Positional parameters receive the node's data inputs as `TFValue`s (a `*args` parameter takes a variadic
list); keyword-only parameters receive the attributes, decoded to Python values (strings, ints, floats,
bools, tuples, numpy arrays for tensors, TF DataType numbers for types). Type parameters (T, Tidx, ...: any
attribute holding a type or a list of types) are informative and dropped unless the signature names them;
attributes starting with "_" are TF bookkeeping and dropped; any other attribute the signature does not
name is an error naming the node. A function returns one `TFValue` (or a list, one per TF output).

Layout. A TF tensor is held in our graph as `TFValue(name, perm)`: our tensor is the TF tensor transposed
by `perm` (`()` = as TF holds it). Convolutions, pools, batch norm and resizes run in NCHW, so a TF NHWC
activation lives in NCHW (perm (0, 3, 1, 2)) from the first such op on; element-wise ops keep whatever
layout their operands have, axis-taking ops (reductions, concat, pad, softmax, squeeze) renumber their axes,
and every other op (reshape, strided slice, ...) gets its input transposed back to TF's layout. The
transposes this needs are explicit `transpose2` ops, at most one per (tensor, layout); graph inputs and
outputs are in TF's layout, and the `cancel_chains` pass removes transpose pairs that meet.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Callable, NamedTuple

import numpy as np

from ...ir import DType
from ...ir.dtypes import compute_dtype
from ..onnx.registry import ConvertCtx

NCHW = (0, 3, 1, 2)  # our NCHW tensor = the TF NHWC tensor transposed by this


class TFValue(NamedTuple):
    """A TF tensor as held in our graph: tensor `name` = the TF tensor transposed by `perm` (() = as is)."""
    name: str
    perm: tuple = ()


@dataclass(frozen=True)
class TFConverter:
    op_type: str
    fn: Callable
    attrs: frozenset
    variadic: bool


TF_OPS: dict[str, TFConverter] = {}


def tf_op(*op_types: str):
    def deco(fn):
        sig = inspect.signature(fn)
        attrs = frozenset(p.name for p in sig.parameters.values() if p.kind is p.KEYWORD_ONLY)
        variadic = any(p.kind is p.VAR_POSITIONAL for p in sig.parameters.values())
        for t in op_types:
            if t in TF_OPS:
                raise RuntimeError(f"TF converter for {t} registered twice")
            TF_OPS[t] = TFConverter(t, fn, attrs, variadic)
        return fn
    return deco


def inverse(perm: tuple) -> tuple:
    inv = [0] * len(perm)
    for i, p in enumerate(perm):
        inv[p] = i
    return tuple(inv)


def is_identity(perm: tuple) -> bool:
    return tuple(perm) == tuple(range(len(perm)))


@dataclass
class TFCtx(ConvertCtx):
    """The ONNX converters' context (emit, const, error), plus TF layouts."""

    input_shapes: dict = field(default_factory=dict)  # --input_shape overrides, by Placeholder name
    _layouts: dict = field(default_factory=dict)  # (our name, target perm) -> transposed tensor name

    # --- layouts ---
    def shape_of(self, v: TFValue):
        """The TF shape of v (None if the rank is unknown)."""
        s = self.shape(v.name)
        if s is None or not v.perm:
            return s
        return tuple(s[i] for i in inverse(v.perm))

    def rank_of(self, v: TFValue) -> int:
        s = self.shape_of(v)
        if s is None:
            raise self.error(f"the rank of input {v.name!r} is unknown; pin the input shapes with --input_shape")
        return len(s)

    def in_layout(self, v: TFValue, target: tuple) -> str:
        """Our tensor holding the TF tensor v transposed by `target` (a transpose2 when needed)."""
        target = () if is_identity(target) else tuple(target)
        if v.perm == target:
            return v.name
        inv = inverse(v.perm) if v.perm else tuple(range(len(target)))
        axis = tuple(inv[t] for t in target) if target else inv
        if is_identity(axis):
            return v.name
        key = (v.name, target)
        if key not in self._layouts:  # a node named after the tensor it transposes, not the reader
            here = self.node_name, self._emitted_here
            self.node_name, self._emitted_here = f"{v.name}/transpose_{''.join(map(str, axis))}", 0
            try:
                self._layouts[key] = self.emit("transpose2", [v.name], axis=axis)
            finally:
                self.node_name, self._emitted_here = here
        return self._layouts[key]

    def tf(self, v: TFValue) -> str:
        """Our tensor holding v as TF holds it."""
        return self.in_layout(v, ())

    def nchw(self, v: TFValue, data_format: str) -> str:
        """v (4-D, TF layout `data_format`) as an NCHW tensor."""
        if data_format not in ("NHWC", "NCHW"):
            raise self.error(f"data_format {data_format!r} is not supported (NHWC or NCHW)")
        if self.rank_of(v) != 4:
            raise self.error(f"only 4-D ({data_format}) inputs are supported; this one has shape {self.shape_of(v)}")
        return self.in_layout(v, NCHW if data_format == "NHWC" else ())

    @staticmethod
    def from_nchw(name: str, data_format: str) -> TFValue:
        """An NCHW result standing for a TF tensor in layout `data_format`."""
        return TFValue(name, NCHW if data_format == "NHWC" else ())

    def renamed(self, old: str, new: str) -> None:
        """Keep the layout cache in step with Graph.rename."""
        self._layouts = {(new if k[0] == old else k[0], k[1]): (new if t == old else t)
                         for k, t in self._layouts.items()}

    # --- values ---
    def value_of(self, v: TFValue) -> np.ndarray | None:
        """The TF-layout value of v if known at conversion time."""
        val = self.value(v.name)
        return val if val is None or not v.perm else np.transpose(val, inverse(v.perm))

    def const_of(self, v: TFValue, what: str) -> np.ndarray:
        val = self.value_of(v)
        if val is None:
            raise self.error(f"{what} (input {v.name!r}) must be a constant; it is computed at run time")
        return val

    def axis(self, v: TFValue, axis: int, rank: int | None = None) -> int:
        """A TF axis of v (negative allowed), made non-negative, in TF numbering."""
        r = self.rank_of(v) if rank is None else rank
        if not -r <= axis < max(r, 1):
            raise self.error(f"axis {axis} out of range for rank {r}")
        return axis % r if r else 0

    # --- layout-aware emitters ---
    def unary(self, op: str, v: TFValue, **attrs) -> TFValue:
        """An op computing element by element: the output keeps the input's layout."""
        return TFValue(self.emit(op, [v.name], **attrs), v.perm)

    def binary(self, op: str, x: TFValue, y: TFValue, **attrs) -> TFValue:
        """A broadcasting element-wise op, computed in the layout of an operand of the output's rank."""
        sx, sy = self.shape(x.name), self.shape(y.name)
        perm = ()
        if sx is not None and sy is not None:
            rank = max(len(sx), len(sy))
            perm = next((v.perm for v in (x, y) if v.perm and len(v.perm) == rank), ())
        return TFValue(self.emit(op, [self.broadcast_operand(v, perm) for v in (x, y)], **attrs), perm)

    def broadcast_operand(self, v: TFValue, perm: tuple) -> str:
        """v ready to broadcast against a TF tensor of rank len(perm) held transposed by perm."""
        if not perm:
            return self.tf(v)
        shape = self.shape_of(v)
        if len(shape) == len(perm):
            return self.in_layout(v, perm)
        if all(d == 1 for d in shape):
            return v.name  # a scalar or all-ones shape broadcasts the same in any layout
        lead = len(perm) - len(shape)
        val = self.value_of(v)
        if val is not None:
            return self.const(np.ascontiguousarray(val.reshape((1,) * lead + val.shape).transpose(perm)),
                              "broadcast", dtype=DType.of(val))
        lifted = TFValue(self.emit("unsqueeze2", [self.tf(v)], axes=tuple(range(lead))))
        return self.in_layout(lifted, perm)

    def reduce_axes(self, v: TFValue, axes, keep: bool) -> tuple[tuple, tuple]:
        """(our axes, the output's perm) for an op removing (or keeping as 1) TF axes `axes` of v."""
        rank = self.rank_of(v)
        tf_axes = sorted({self.axis(v, int(a), rank) for a in axes})
        if not v.perm:
            return tuple(tf_axes), ()
        inv = inverse(v.perm)
        ours = tuple(sorted(inv[a] for a in tf_axes))
        if keep:
            return ours, v.perm
        kept_ours = [j for j in range(rank) if j not in ours]
        kept_tf = sorted(v.perm[j] for j in kept_ours)
        out_perm = tuple(kept_tf.index(v.perm[j]) for j in kept_ours)
        return ours, (() if is_identity(out_perm) else out_perm)


# --- TF dtypes -------------------------------------------------------------------------------------

# TF DataType number -> numpy dtype of the array we keep (doubles become float32)
TF_DTYPES = {k: np.dtype(v) for k, v in {1: "float32", 2: "float64", 3: "int32", 4: "uint8", 5: "int16",
                                         6: "int8", 9: "int64", 10: "bool", 19: "float16"}.items()}
TF_DTYPE_NAMES = {0: "DT_INVALID", 1: "DT_FLOAT", 2: "DT_DOUBLE", 3: "DT_INT32", 4: "DT_UINT8", 5: "DT_INT16",
                  6: "DT_INT8", 7: "DT_STRING", 8: "DT_COMPLEX64", 9: "DT_INT64", 10: "DT_BOOL", 14: "DT_BFLOAT16",
                  17: "DT_UINT16", 18: "DT_COMPLEX128", 19: "DT_HALF", 20: "DT_RESOURCE", 21: "DT_VARIANT",
                  22: "DT_UINT32", 23: "DT_UINT64"}


def ir_dtype(tf_type: int) -> DType:
    """Our dtype for a TF DataType (DT_DOUBLE is computed in float32); ValueError when unsupported."""
    if tf_type not in TF_DTYPES:
        raise ValueError(f"data type {TF_DTYPE_NAMES.get(tf_type, tf_type)} is not supported")
    return compute_dtype(TF_DTYPES[tf_type])
