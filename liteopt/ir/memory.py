"""Memory planning, as TFLite does it, in two pure steps (used by the `plan_memory` pass and, for a new
input shape, by the runtime):

1. `lifetimes(graph)`: for every intermediate tensor, the first and last step that touch it, by reference
   counts in execution order; graph outputs are pinned to the end. A view (reshape family,
   `OpDef.view_of_input`) shares its source's slot; an op that may write in place (`OpDef.inplace`)
   takes its input's slot when that input dies there.
2. `assign_offsets(...)`: offsets in one arena. Two strategies, the smaller arena wins:
   greedy by size (largest first, best-fit gap among time-overlapping tensors) and greedy by first use.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from .graph import Graph
from .registry import OPS

ALIGN = 64


@dataclass
class Slot:
    """One arena allocation: the tensors that share it (a root and its views / in-place successors)."""

    tensors: list[str]
    first: int
    last: int
    size: int
    offset: int = -1
    sub: dict[str, int] = field(default_factory=dict)  # a tensor's byte offset inside the slot (default 0)


@dataclass
class MemoryPlan:
    slots: list[Slot]
    arena_bytes: int
    lower_bound_bytes: int
    strategy: str
    per_strategy: dict[str, int] = field(default_factory=dict)

    def offsets(self) -> dict[str, int]:
        return {t: s.offset + s.sub.get(t, 0) for s in self.slots for t in s.tensors}


def _align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


def lifetimes(graph: Graph, inplace: bool = True) -> list[Slot] | None:
    """Slots for the intermediates of a graph with static shapes; None if some shape is not static."""
    t = graph.tensors
    n_steps = len(graph.nodes)
    external = set(graph.inputs) | {k for k, v in t.items() if v.data is not None}
    last_use: dict[str, int] = {}
    for i, node in enumerate(graph.nodes):
        for x in node.inputs:
            if x:
                last_use[x] = i
    for o in graph.outputs:
        last_use[o] = n_steps  # pinned: never overwritten
    slot_of: dict[str, Slot] = {}
    slots: list[Slot] = []
    for i, node in enumerate(graph.nodes):
        d = OPS[node.op]
        for k, o in enumerate(node.outputs):
            tt = t[o]
            if not tt.is_static:
                return None
            size = _align(math.prod(tt.shape) * tt.dtype.itemsize)
            src = node.inputs[d.view_of_input] if k == 0 and d.view_of_input is not None else None
            if src is None and inplace and k == 0 and d.inplace:
                cand = node.inputs[0]
                if cand and cand not in external and cand in slot_of and last_use.get(cand) == i \
                        and slot_of[cand].size >= size and t[cand].dtype == tt.dtype \
                        and sum(1 for x in node.inputs if x == cand) == 1:
                    src = cand
            if src and src not in external and src in slot_of:
                s = slot_of[src]
                s.tensors.append(o)
                s.last = max(s.last, last_use.get(o, i))
                slot_of[o] = s
                continue
            s = Slot([o], i, max(i, last_use.get(o, i)), size)
            slot_of[o] = s
            slots.append(s)
    # a view keeps its source alive as long as the view is used
    for s in slots:
        s.last = max([s.last] + [last_use.get(x, s.first) for x in s.tensors])
    if inplace:
        _concat_in_place(graph, slots, slot_of, external, last_use)
    return slots


def _concat_in_place(graph: Graph, slots: list[Slot], slot_of: dict[str, Slot], external: set[str],
                     last_use: dict[str, int]) -> None:
    """Concat without copies: when the inputs of a concat are contiguous byte ranges of its output (every
    dimension before the axis is 1), an input's slot moves inside the output's slot at its range, so its
    producer writes straight into the concat result and the runtime skips the concat (Arena.assembled).
    An input qualifies when nothing in its slot is a different size or is written after the concat (an
    in-place op would overwrite the result), when it is no longer read once an in-place op overwrites the
    result, and when it is not a graph input, a constant, or part of another concat."""
    t = graph.tensors
    produced = {o: i for i, n in enumerate(graph.nodes) for o in n.outputs}

    def writes(y: str) -> bool:  # y's producer writes bytes (a view only names them)
        return OPS[graph.nodes[produced[y]].op].view_of_input is None

    for i, node in enumerate(graph.nodes):
        if node.op != "concat" or len(node.outputs) != 1:
            continue
        o = node.outputs[0]
        shape, dtype = t[o].shape, t[o].dtype
        a = node.attrs["axis"] % len(shape)
        out = slot_of.get(o)
        if out is None or out.tensors[0] != o or math.prod(shape[:a]) != 1 or len(set(node.inputs)) != len(node.inputs):
            continue
        inner = math.prod(shape[a + 1:]) * dtype.itemsize
        # the first step after the concat that writes over the result in place (e.g. a relu on it)
        overwritten = min((produced[z] for z in out.tensors if produced[z] > i and writes(z)), default=math.inf)
        at = 0
        for x in node.inputs:
            s, nbytes = slot_of.get(x), t[x].shape[a] * inner
            if (x not in external and s is not None and s is not out and not s.sub and t[x].dtype == dtype
                    and all(math.prod(t[y].shape) * t[y].dtype.itemsize == nbytes for y in s.tensors)
                    and all(produced[y] < i or not writes(y) for y in s.tensors)
                    and all(last_use.get(y, produced[y]) < overwritten for y in s.tensors)):
                for y in s.tensors:
                    out.tensors.append(y)
                    out.sub[y] = at
                    slot_of[y] = out
                out.first, out.last = min(out.first, s.first), max(out.last, s.last)
                slots.remove(s)
            at += nbytes


def lower_bound(slots: list[Slot]) -> int:
    """The most bytes live at any one step: no plan can use less."""
    if not slots:
        return 0
    steps = max(s.last for s in slots) + 1
    live = [0] * (steps + 1)
    for s in slots:
        live[s.first] += s.size
        live[s.last + 1] -= s.size
    best = run = 0
    for v in live:
        run += v
        best = max(best, run)
    return best


def _place(order: list[Slot]) -> int:
    """Best-fit placement in the given order; returns the arena size."""
    placed: list[Slot] = []
    top = 0
    for s in order:
        busy = sorted((p.offset, p.offset + p.size) for p in placed if p.first <= s.last and s.first <= p.last)
        best, best_gap, cursor = None, None, 0
        for lo, hi in busy:
            gap = lo - cursor
            if gap >= s.size and (best_gap is None or gap < best_gap):
                best, best_gap = cursor, gap
            cursor = max(cursor, hi)
        s.offset = best if best is not None else cursor
        placed.append(s)
        top = max(top, s.offset + s.size)
    return top


STRATEGIES = {
    "greedy_by_size": lambda slots: sorted(slots, key=lambda s: (-s.size, s.first)),
    "greedy_by_first_use": lambda slots: sorted(slots, key=lambda s: (s.first, -s.size)),
}


def plan(graph: Graph, inplace: bool = True) -> MemoryPlan | None:
    slots = lifetimes(graph, inplace)
    if slots is None:
        return None
    results = {}
    for name, order in STRATEGIES.items():
        results[name] = (_place(order(slots)), {id(s): s.offset for s in slots})
    best = min(results, key=lambda k: (results[k][0], k))
    for s in slots:
        s.offset = results[best][1][id(s)]
    return MemoryPlan(slots, results[best][0], lower_bound(slots), best, {k: v[0] for k, v in results.items()})


def check_plan(p: MemoryPlan) -> None:
    """No two slots that are live at the same step overlap in bytes (the planner's invariant)."""
    for i, a in enumerate(p.slots):
        assert a.offset % ALIGN == 0 and a.offset + a.size <= p.arena_bytes
        for b in p.slots[i + 1:]:
            if a.first <= b.last and b.first <= a.last:
                assert a.offset + a.size <= b.offset or b.offset + b.size <= a.offset, (a, b)
