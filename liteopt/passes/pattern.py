"""A small declarative matcher: patterns are objects, captures arrive as keyword arguments.

    CONV_BN = Op("batch_norm", Op(CONVS, Var("x"), Const("w"), Const("b", optional=True), name="conv"),
                 Const("scale"), Const("bias"), Const("mean"), Const("var"), name="bn")

    def fold(g, x, w, b, scale, bias, mean, var, conv, bn):
        ...
        return g.emit(conv.op, [x.name, ...], **conv.attrs)   # the replacement of bn's output
    RULES = [Rule(CONV_BN, fold)]

- `Var(name)` matches any tensor, `Const(name)` a constant one (`optional=True`: also an absent input);
  both capture the `Tensor`. `Op(ops, *inputs, name=)` matches a tensor produced by a node of one of
  `ops` and captures the `Node`; `commutative=True` also tries the two first inputs swapped.
- Interior nodes (all matched nodes but the root) must be used only inside the match and must not produce
  a graph output: the matcher enforces it and records a near-miss when only that rule fails. A named `Op`
  or `Var` that appears twice in a pattern must match the same node or tensor (DAG patterns).
- A rewrite returns the name of the tensor that replaces the root's (first) output, a list for several
  outputs, `None` to decline silently, or `Miss("reason")` to decline with a near-miss.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from ..ir import OPS, DType, Graph, Node, Tensor
from ..ir.registry import TensorType, infer_node
from .context import PassContext


class Pat:
    pass


@dataclass(eq=False)
class Var(Pat):
    name: str


@dataclass(eq=False)
class Const(Pat):
    name: str
    optional: bool = False


@dataclass(eq=False)
class Op(Pat):
    ops: tuple
    inputs: tuple
    name: str | None
    commutative: bool
    where: Callable | None

    def __init__(self, ops, *inputs, name: str | None = None, commutative: bool = False, where=None):
        self.ops = (ops,) if isinstance(ops, str) else tuple(ops)
        self.inputs, self.name, self.commutative, self.where = inputs, name, commutative, where


@dataclass
class Miss:
    reason: str


@dataclass
class Rule:
    pattern: Op
    rewrite: Callable[..., Any]
    name: str = ""


class _NoMatch(Exception):
    pass


@dataclass
class _Match:
    captures: dict[str, Any] = field(default_factory=dict)
    nodes: list[Node] = field(default_factory=list)  # matched nodes, root first


class Matcher:
    """Matches patterns against one graph state (producers/consumers computed once per sweep)."""

    def __init__(self, graph: Graph):
        self.graph = graph
        self.producers = graph.producers()
        self.consumers = graph.consumers()
        self.outputs = set(graph.outputs)

    def match(self, pat: Op, root: Node) -> tuple[_Match | None, str | None]:
        """(match, None) on success; (None, reason) for a near-miss; (None, None) otherwise."""
        m = _Match()
        try:
            self._node(pat, root, m)
        except _NoMatch:
            return None, None
        inside = {id(n) for n in m.nodes}
        for n in m.nodes[1:]:
            for o in n.outputs:
                if o in self.outputs:
                    return None, f"{n.name} ({n.op}) output {o!r} is a graph output"
                outside = [u.name for u in self.consumers.get(o, []) if id(u) not in inside]
                if outside:
                    return None, f"{n.name} ({n.op}) output {o!r} is also used by {', '.join(outside)}"
        m.nodes = list({id(n): n for n in m.nodes}.values())
        return m, None

    def _node(self, pat: Op, node: Node, m: _Match) -> None:
        if node.op not in pat.ops:
            raise _NoMatch
        if pat.where is not None and not pat.where(node, self.graph):
            raise _NoMatch
        orders = [list(range(len(pat.inputs)))]
        if pat.commutative and len(pat.inputs) >= 2:
            orders.append([1, 0, *range(2, len(pat.inputs))])
        for order in orders:
            trial = _Match(dict(m.captures), list(m.nodes))
            trial.nodes.append(node)
            try:
                if pat.name:
                    self._capture(trial, pat.name, node)
                for slot, pi in zip(order, pat.inputs):
                    name = node.inputs[slot] if slot < len(node.inputs) else ""
                    self._tensor(pi, name, trial)
            except _NoMatch:
                continue
            m.captures, m.nodes = trial.captures, trial.nodes
            return
        raise _NoMatch

    def _tensor(self, pat: Pat | None, name: str, m: _Match) -> None:
        if pat is None:
            return
        if isinstance(pat, Op):
            prod = self.producers.get(name) if name else None
            if prod is None:
                raise _NoMatch
            self._node(pat, prod, m)
            return
        t = self.graph.tensors.get(name) if name else None
        if t is None:
            if isinstance(pat, Const) and pat.optional:
                return self._capture(m, pat.name, None)
            raise _NoMatch
        if isinstance(pat, Const) and t.data is None:
            raise _NoMatch
        self._capture(m, pat.name, t)

    @staticmethod
    def _capture(m: _Match, key: str, value) -> None:
        if key in m.captures and m.captures[key] is not value:
            raise _NoMatch
        m.captures[key] = value


class Rewriter:
    """What a rewrite writes with: new nodes (shape-inferred on the spot) and new constants."""

    def __init__(self, graph: Graph, base_name: str):
        self.graph, self.base = graph, base_name
        self.nodes: list[Node] = []
        self._k = 0

    def _fresh(self, hint: str) -> str:
        while True:
            self._k += 1
            name = f"{self.base}/{hint}_{self._k}"
            if name not in self.graph.tensors:
                return name

    def const(self, value, hint: str = "const") -> str:
        arr = np.asarray(value, order="C")
        name = self._fresh(hint)
        self.graph.tensors[name] = Tensor(name, DType.of(arr), tuple(arr.shape), arr)
        return name

    def emit(self, op: str, inputs: list[str], n_out: int = 1, name: str | None = None, **attrs):
        d = OPS[op]
        attrs = d.normalize_attrs(attrs, f"rewrite of {self.base}")
        outs = [self._fresh(op) for _ in range(n_out)]
        node = Node(op, list(inputs), outs, attrs, name or self._fresh(op).replace("/", "_"))
        t = self.graph.tensors
        types = [TensorType(t[i].dtype, t[i].shape) if i else None for i in inputs]
        vals = [t[i].data if i else None for i in inputs]
        out_types, _ = infer_node(node, types, vals)
        for o, tt in zip(outs, out_types):
            t[o] = Tensor(o, tt.dtype, tt.shape)
        self.nodes.append(node)
        return outs[0] if n_out == 1 else outs


def replace_uses(graph: Graph, old: str, new: str) -> None:
    for n in graph.nodes:
        n.inputs = [new if i == old else i for i in n.inputs]
    graph.outputs = [new if o == old else o for o in graph.outputs]


def apply(graph: Graph, m: _Match, result, rw: Rewriter) -> bool:
    """Splice the rewrite's nodes in place of the matched ones. False if it cannot keep the graph valid."""
    root = m.nodes[0]
    results = result if isinstance(result, (list, tuple)) else [result]
    outs = [o for o in root.outputs][: len(results)]
    # outputs of the root that nobody uses may be dropped; used ones must be replaced
    consumers = graph.consumers()
    for o in root.outputs[len(results):]:
        if consumers.get(o) or o in graph.outputs:
            return False
    producers = graph.producers()
    for old, new in zip(outs, results):
        keeps_name = new in {o for n in rw.nodes for o in n.outputs} or (new in producers and new not in graph.outputs)
        if old in graph.outputs and not keeps_name:
            return False  # would rename a graph output to an input or constant
    index = graph.nodes.index(root)
    matched = {id(n) for n in m.nodes}
    graph.nodes = [n for n in graph.nodes[:index] if id(n) not in matched] + rw.nodes + \
                  [n for n in graph.nodes[index + 1:] if id(n) not in matched]
    new_outputs = {o for n in rw.nodes for o in n.outputs}
    for old, new in zip(outs, results):
        if new in new_outputs or old in graph.outputs:
            # the replacement takes the old name, so consumers and graph outputs stay as they were
            graph.tensors.pop(old, None)
            graph.rename(new, old)
        else:
            replace_uses(graph, old, new)
    return True


def _shape_change(graph: Graph, root: Node, result) -> str | None:
    """Why the rewrite's results would not stand in for the root's outputs: a known shape that differs (a
    constant of higher rank broadcast x in the matched ops, e.g. x * relu6(x + o) / 6 with o of shape (1, 1, 1,
    1)); None when they fit or a shape is not fully known."""
    results = result if isinstance(result, (list, tuple)) else [result]
    for old, new in zip(root.outputs, results):
        a, b = graph.tensors[old].shape, graph.tensors[new].shape
        if a is not None and b is not None and all(isinstance(d, int) for d in (*a, *b)) and tuple(a) != tuple(b):
            return f"the result would have shape {tuple(b)}, not {tuple(a)}"
    return None


def run_rules(graph: Graph, ctx: PassContext, rules: list[Rule], max_rewrites: int = 100_000) -> None:
    """Apply rules in execution order, repeating until nothing matches; record hits and near-misses."""
    by_root: dict[str, list[Rule]] = {}
    for r in rules:
        for op in r.pattern.ops:
            by_root.setdefault(op, []).append(r)
    misses: dict[str, str] = {}
    for _ in range(max_rewrites):
        changed = False
        matcher = Matcher(graph)
        for node in list(graph.nodes):
            for rule in by_root.get(node.op, ()):
                m, reason = matcher.match(rule.pattern, node)
                if m is None:
                    if reason:
                        misses[node.name] = f"{rule.name or ctx.record.name} at {node.name}: not applied: {reason}"
                    continue
                rw = Rewriter(graph, node.name)
                result = rule.rewrite(rw, **m.captures)
                if isinstance(result, Miss):
                    misses[node.name] = f"{rule.name or ctx.record.name} at {node.name}: not applied: {result.reason}"
                    continue
                if result is None:
                    continue
                moved = _shape_change(graph, node, result)
                if moved:
                    misses[node.name] = f"{rule.name or ctx.record.name} at {node.name}: not applied: {moved}"
                    continue
                if apply(graph, m, result, rw):
                    ctx.record.hit()
                    misses.pop(node.name, None)
                    changed = True
                    break
            if changed:
                break  # the graph changed under the matcher: start a new sweep
        if not changed:
            break
    ctx.record.near_misses.extend(misses.values())
    graph.prune()
