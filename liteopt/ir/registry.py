"""The op registry: one `OpDef` per op, read by converters, passes, format, runtime and `opt --print_*_ops`.

An op family file in `ir/ops/` declares each op once with `@op(...)` on its numpy reference:

    @op("leaky_relu", inputs="X", outputs="Out", attrs={"alpha": 0.02}, infer=same_as(0))
    def leaky_relu(x, *, alpha):
        return np.where(x >= 0, x, x * alpha)

The reference receives the input arrays positionally (None for an absent optional input) and the
attributes as keyword arguments, and returns one array or a tuple of arrays (one per output).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, NamedTuple

import numpy as np

from .dtypes import DType
from .errors import ShapeError
from .graph import Dim, Graph, Node, Shape

_REQUIRED = object()
ATTR_KINDS = ("int", "float", "bool", "str", "ints", "floats", "strs", "dtype")


@dataclass(frozen=True)
class Attr:
    kind: str
    default: Any = _REQUIRED
    doc: str = ""

    @property
    def required(self) -> bool:
        return self.default is _REQUIRED

    def normalize(self, value: Any, where: str) -> Any:
        """Coerce a value to this attribute's kind; raise ShapeError naming `where` if impossible."""
        try:
            return _NORMALIZE[self.kind](value)
        except (TypeError, ValueError) as e:
            raise ShapeError(f"{where}: expected {self.kind}, got {value!r} ({e})") from None


def _to_bool(v):
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)) and v in (0, 1):
        return bool(v)
    raise ValueError("not a boolean")


def _to_int(v):
    if isinstance(v, (float, np.floating)) and v != int(v):
        raise ValueError("not an integer")
    return int(v)


def _seq(f):
    def conv(v):
        if isinstance(v, (str, bytes)) or not hasattr(v, "__iter__"):
            raise TypeError("not a sequence")
        return tuple(f(x) for x in v)
    return conv


_NORMALIZE: dict[str, Callable] = {
    "int": _to_int,
    "float": float,
    "bool": _to_bool,
    "str": str,
    "ints": _seq(_to_int),
    "floats": _seq(float),
    "strs": _seq(str),
    "dtype": DType.of,
}


def _kind_of(default) -> str:
    if isinstance(default, bool):
        return "bool"
    if isinstance(default, int):
        return "int"
    if isinstance(default, float):
        return "float"
    if isinstance(default, str):
        return "str"
    if isinstance(default, DType):
        return "dtype"
    if isinstance(default, tuple) and default:
        return {"int": "ints", "float": "floats", "str": "strs"}[_kind_of(default[0])]
    raise TypeError(f"cannot tell the kind of attribute default {default!r}: use Attr(kind, default)")


class TensorType(NamedTuple):
    dtype: DType
    shape: Shape | None


@dataclass
class InferCtx:
    """What a shape function sees: input types and (when known) values, attributes, the node."""

    node: Node
    types: list[TensorType | None]
    values: list[np.ndarray | None]
    attrs: dict[str, Any]

    def shape(self, i: int) -> Shape | None:
        t = self.types[i] if i < len(self.types) else None
        return None if t is None else t.shape

    def dtype(self, i: int) -> DType:
        return self.types[i].dtype

    def has(self, i: int) -> bool:
        return i < len(self.types) and self.types[i] is not None

    def value(self, i: int) -> np.ndarray | None:
        return self.values[i] if i < len(self.values) else None

    def fresh(self, k: int = 0) -> str:
        """A new symbolic dimension, named after the node's first output (deterministic)."""
        return f"{self.node.outputs[0]}:{k}"

    def error(self, msg: str) -> ShapeError:
        return ShapeError(f"node {self.node.name!r} ({self.node.op}): {msg}")


@dataclass(frozen=True)
class OpDef:
    name: str
    inputs: tuple[str, ...]   # slot names; "Name?" optional, "Name*" variadic (last slot only)
    outputs: tuple[str, ...]  # "Name?" optional
    attrs: dict[str, Attr]
    infer: Callable[[InferCtx], list[TensorType]]
    reference: Callable[..., Any]
    doc: str = ""
    view_of_input: int | None = None       # output 0 may share memory with this input (reshape family)
    # weight inputs (quantization): input index -> output-channel axis (or attrs -> axis), None for one
    # scale per tensor (biases); a tuple means axis 0
    weight_inputs: dict | tuple = ()
    shape_only_inputs: tuple[int, ...] = ()  # inputs whose values the op never reads (e.g. `shape`)
    inplace: bool = False                  # output 0 may overwrite input 0 when that input dies here
    family: str = ""

    @property
    def variadic(self) -> bool:
        return bool(self.inputs) and self.inputs[-1].endswith("*")

    def input_slot(self, name: str) -> int:
        for i, s in enumerate(self.inputs):
            if s.rstrip("?*") == name:
                return i
        raise KeyError(name)

    def check_arity(self, node: Node) -> None:
        required_in = sum(1 for s in self.inputs if not s.endswith(("?", "*")))
        if len(node.inputs) < required_in or (not self.variadic and len(node.inputs) > len(self.inputs)):
            raise ShapeError(f"node {node.name!r} ({self.name}): {len(node.inputs)} inputs, expected "
                             f"{', '.join(self.inputs)}")
        for i, s in enumerate(self.inputs):
            if not s.endswith(("?", "*")) and not node.inputs[i]:
                raise ShapeError(f"node {node.name!r} ({self.name}): required input {s} is missing")
        many = bool(self.outputs) and self.outputs[-1].endswith("*")
        if not (1 <= len(node.outputs) and (many or len(node.outputs) <= len(self.outputs))):
            raise ShapeError(f"node {node.name!r} ({self.name}): {len(node.outputs)} outputs, expected "
                             f"{', '.join(self.outputs)}")

    def normalize_attrs(self, attrs: dict[str, Any], where: str) -> dict[str, Any]:
        """Full attribute dict with defaults; unknown or missing-required attributes raise ShapeError."""
        unknown = set(attrs) - set(self.attrs)
        if unknown:
            raise ShapeError(f"{where}: unknown attribute(s) {', '.join(sorted(unknown))} for op {self.name}")
        out = {}
        for k, a in self.attrs.items():
            if k in attrs:
                out[k] = a.normalize(attrs[k], f"{where}: attribute {k}")
            elif a.required:
                raise ShapeError(f"{where}: op {self.name} needs attribute {k}")
            else:
                out[k] = a.default
        return out

    def pad_inputs(self, inputs: list) -> list:
        """Inputs padded with "" (absent) up to the declared optional slots (variadic ops: as given)."""
        return list(inputs) if self.variadic else list(inputs) + [""] * (len(self.inputs) - len(inputs))

    def run(self, *inputs, **attrs) -> list[np.ndarray]:
        """The numpy reference, always returning a list of outputs."""
        if not self.variadic and len(inputs) < len(self.inputs):
            inputs = inputs + (None,) * (len(self.inputs) - len(inputs))
        r = self.reference(*inputs, **attrs)
        return list(r) if isinstance(r, (tuple, list)) else [r]


OPS: dict[str, OpDef] = {}


def op(name: str, *, inputs: str | tuple = "X", outputs: str | tuple = "Out", attrs: dict | None = None,
       infer: Callable, view_of_input: int | None = None, weight_inputs: tuple = (),
       shape_only_inputs: tuple = (), inplace: bool = False):
    """Register the decorated numpy reference as op `name` (see the module docstring)."""
    def split(s):
        return tuple(s.split()) if isinstance(s, str) else tuple(s)

    norm = {k: (v if isinstance(v, Attr) else Attr(_kind_of(v), v)) for k, v in (attrs or {}).items()}
    for k, a in norm.items():
        if a.kind not in ATTR_KINDS:
            raise TypeError(f"op {name}: attribute {k} has unknown kind {a.kind}")

    def deco(fn):
        if name in OPS:
            raise RuntimeError(f"op {name} registered twice")
        OPS[name] = OpDef(name=name, inputs=split(inputs), outputs=split(outputs), attrs=norm, infer=infer,
                          reference=fn, doc=(fn.__doc__ or "").strip().split("\n")[0],
                          view_of_input=view_of_input,
                          weight_inputs=dict(weight_inputs) if isinstance(weight_inputs, dict) else tuple(weight_inputs),
                          shape_only_inputs=tuple(shape_only_inputs), inplace=inplace,
                          family=fn.__module__.rsplit(".", 1)[-1])
        return fn
    return deco


# --- graph-level shape inference -------------------------------------------------------------

# Values of tensors up to this many elements are propagated during inference, so that shape
# arithmetic (Shape -> Gather -> Concat -> Reshape) yields exact shapes once input shapes are known.
VALUE_PROPAGATION_LIMIT = 4096


def _placeholder(t: TensorType) -> np.ndarray:
    return np.broadcast_to(np.zeros((), t.dtype.np), t.shape)


def infer_node(node: Node, types: list[TensorType | None], values: list[np.ndarray | None]
               ) -> tuple[list[TensorType], list[np.ndarray | None]]:
    """Output types of one node, and output values when they can be computed cheaply."""
    d = OPS[node.op]
    ctx = InferCtx(node, types, values, node.attrs)
    try:
        out = d.infer(ctx)
    except ShapeError:
        raise
    except Exception as e:  # a shape function tripping over bad attributes is the model's fault
        raise ctx.error(f"cannot infer output shape: {type(e).__name__}: {e}") from None
    out = [TensorType(DType.of(t.dtype), None if t.shape is None else tuple(t.shape)) for t in out]
    out_values: list[np.ndarray | None] = [None] * len(node.outputs)
    small = all(t.shape is not None and all(isinstance(s, int) for s in t.shape)
                and int(np.prod(t.shape)) <= VALUE_PROPAGATION_LIMIT for t in out[:len(node.outputs)])
    args = []
    for i, t in enumerate(types):
        if t is None:
            args.append(None)
        elif values[i] is not None:
            args.append(values[i])
        elif i in d.shape_only_inputs and t.shape is not None and all(isinstance(s, int) for s in t.shape):
            args.append(_placeholder(t))
        else:
            args = None
            break
    if small and args is not None:
        try:
            res = d.run(*args, **node.attrs)
            out_values = [np.asarray(r) for r in res][:len(node.outputs)]
        except Exception as e:
            raise ctx.error(f"evaluating on constant inputs failed: {type(e).__name__}: {e}") from None
    return out, out_values


def infer_shapes(graph: Graph, before=None) -> dict[str, np.ndarray]:
    """Fill in dtype and shape of every node output, in order. Returns the small values it could derive.
    `before(node)`, if given, runs on each node just before its outputs are inferred (its inputs' types are then
    up to date): a pass that rewrites nodes from their inputs' shapes as it goes (`passes/fold_shapes.py`)."""
    values: dict[str, np.ndarray] = {k: t.data for k, t in graph.tensors.items() if t.data is not None}
    for node in graph.nodes:
        if before is not None:
            before(node)
        types = [TensorType(graph.tensors[i].dtype, graph.tensors[i].shape) if i else None for i in node.inputs]
        vals = [values.get(i) if i else None for i in node.inputs]
        out_types, out_vals = infer_node(node, types, vals)
        if len(out_types) < len(node.outputs):
            raise ShapeError(f"node {node.name!r} ({node.op}): shape function gave {len(out_types)} outputs")
        for name, t, v in zip(node.outputs, out_types, out_vals):
            tensor = graph.tensors.get(name)
            if tensor is None or tensor.data is None:
                from .graph import Tensor
                graph.tensors[name] = Tensor(name, t.dtype, t.shape)
            if v is not None:
                values[name] = v
    return values


# --- helpers for shape functions ---------------------------------------------------------------

def same_as(i: int = 0, dtype: DType | None = None):
    """Shape function: every output has input i's shape (and dtype, unless given)."""
    def infer(ctx: InferCtx):
        return [TensorType(dtype or ctx.dtype(i), ctx.shape(i))] * max(1, len(ctx.node.outputs))
    return infer


def broadcast_shapes(ctx: InferCtx, shapes: list[Shape | None]) -> Shape | None:
    """Numpy broadcasting over possibly-symbolic shapes."""
    if any(s is None for s in shapes):
        return None
    rank = max(len(s) for s in shapes)
    out: list[Dim] = []
    for ax in range(rank):
        dims = [s[len(s) - rank + ax] for s in shapes if len(s) - rank + ax >= 0]
        known = {d for d in dims if d != 1}
        if not known:
            out.append(1)
        elif len(known) == 1:
            out.append(known.pop())
        elif all(isinstance(d, int) for d in known):
            raise ctx.error(f"shapes {' and '.join(str(tuple(s)) for s in shapes)} cannot be broadcast")
        else:
            ints = [d for d in known if isinstance(d, int)]
            out.append(ints[0] if ints else ctx.fresh(ax))
    return tuple(out)


def normalize_axis(ctx: InferCtx, axis: int, rank: int) -> int:
    if not -rank <= axis < max(rank, 1):
        raise ctx.error(f"axis {axis} out of range for rank {rank}")
    return axis % rank if rank else 0


def dim_op(ctx: InferCtx, k: int, f: Callable[..., int], *dims: Dim) -> Dim:
    """Apply integer arithmetic `f` to dims; any symbolic operand gives a fresh symbol."""
    if all(isinstance(d, int) for d in dims):
        return int(f(*dims))
    return ctx.fresh(k)


def shape_from_value(ctx: InferCtx, i: int, length_hint: int | None = None) -> Shape | None:
    """A shape given as the value of input i (e.g. Reshape's shape): exact if known, else symbols."""
    v = ctx.value(i)
    if v is not None:
        return tuple(int(x) for x in np.asarray(v).reshape(-1))
    s = ctx.shape(i)
    if s is not None and len(s) == 1 and isinstance(s[0], int):
        return tuple(ctx.fresh(k) for k in range(s[0]))
    return None


def evaluate(graph: Graph, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    """Run a graph with the numpy references (the oracle for pass tests and constant folding)."""
    env = {k: t.value() for k, t in graph.tensors.items() if t.data is not None}
    env.update(feeds)
    for n in graph.nodes:
        outs = OPS[n.op].run(*[env[i] if i else None for i in n.inputs], **n.attrs)
        env.update(zip(n.outputs, outs))
    return [env[o] for o in graph.outputs]
