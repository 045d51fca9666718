"""The memory planner: hand-derived offsets on tiny literal graphs, and the no-overlap invariant on random
graphs (every pair of slots live at the same step is disjoint in bytes)."""
from __future__ import annotations

import numpy as np
from hypothesis import given, settings, strategies as st

from liteopt.ir import DType, Graph, Node, Tensor
from liteopt.ir.memory import check_plan, lifetimes, lower_bound, plan


def chain(sizes, extra_edges=()):
    """A graph x -> relu -> relu ... where node i outputs a float32 tensor of sizes[i] elements (1-D).
    extra_edges: (i, j) adds, after the chain, an elementwise_add of t_i and t_j (same size only), whose
    output is a graph output: it keeps t_i and t_j alive to the end."""
    tensors = {"x": Tensor("x", DType.FLOAT32, (sizes[0],))}
    nodes, prev = [], "x"
    for i, n in enumerate(sizes):
        name = f"t{i}"
        tensors[name] = Tensor(name, DType.FLOAT32, (n,))
        nodes.append(Node("relu", [prev], [name], {}, f"n{i}"))
        prev = name
    outputs = [prev]
    for i, j in sorted(set(extra_edges)):
        if sizes[i] == sizes[j]:
            out = f"s{i}_{j}"
            tensors[out] = Tensor(out, DType.FLOAT32, (sizes[i],))
            nodes.append(Node("elementwise_add", [f"t{i}", f"t{j}"], [out], {"act_type": "", "act_alpha": 0.0},
                              f"a{i}_{j}"))
            outputs.append(out)
    return Graph(nodes, ["x"], outputs, tensors)


def test_chain_in_place_uses_one_slot():
    # relu may overwrite its input when that input dies there: the whole chain lives in 64 bytes
    g = chain([16, 16, 16, 16])
    p = plan(g)
    assert p.offsets() == {"t0": 0, "t1": 0, "t2": 0, "t3": 0} and p.arena_bytes == 64


def test_chain_ping_pongs_between_two_slots():
    # without in-place: 16 floats = 64 bytes each: t0 at 0, t1 at 64, t2 reuses 0, t3 reuses 64 (the output)
    g = chain([16, 16, 16, 16])
    p = plan(g, inplace=False)
    off = p.offsets()
    assert off == {"t0": 0, "t1": 64, "t2": 0, "t3": 64}
    assert p.arena_bytes == 128 == p.lower_bound_bytes


def test_big_tensors_first():
    # t1 (256 floats) overlaps t0 and t2; by size it goes to offset 0, the small ones share 1024
    g = chain([16, 256, 16])
    p = plan(g, inplace=False)
    assert p.strategy == "greedy_by_size" or p.arena_bytes == 1024 + 64
    assert p.arena_bytes == lower_bound(lifetimes(g, inplace=False)) == 1024 + 64


def test_views_share_their_source_slot():
    tensors = {"x": Tensor("x", DType.FLOAT32, (2, 8)), "a": Tensor("a", DType.FLOAT32, (2, 8)),
               "b": Tensor("b", DType.FLOAT32, (16,)), "c": Tensor("c", DType.FLOAT32, (16,))}
    nodes = [Node("relu", ["x"], ["a"], {}, "r"), Node("reshape2", ["a"], ["b"], {"shape": (16,)}, "v"),
             Node("sigmoid", ["b"], ["c"], {}, "s")]
    g = Graph(nodes, ["x"], ["c"], tensors)
    off = plan(g, inplace=False).offsets()
    assert off["a"] == off["b"] != off["c"]
    off = plan(g).offsets()  # and the sigmoid may then overwrite the view it consumes
    assert off["a"] == off["b"] == off["c"]


@settings(max_examples=60, deadline=None)
@given(sizes=st.lists(st.sampled_from([4, 16, 64, 100]), min_size=2, max_size=12),
       edges=st.lists(st.tuples(st.integers(0, 11), st.integers(0, 11)), max_size=6))
def test_random_graphs_never_overlap(sizes, edges):
    """Declared sizes only (the planner never looks at values)."""
    g = chain(sizes, [(i, j) for i, j in edges if i < j < len(sizes)])
    g.verify()
    p = plan(g)
    check_plan(p)
    assert lower_bound(p.slots) <= p.arena_bytes


@settings(max_examples=30, deadline=None)
@given(n=st.integers(2, 10), edges=st.lists(st.tuples(st.integers(0, 9), st.integers(0, 9)), max_size=6))
def test_runs_through_the_arena_match_the_reference(n, edges):
    """Consistent graphs (one size) run through the planned arena: same result as the numpy references."""
    g = chain([16] * n, [(i, j) for i, j in edges if i < j < n])
    p = plan(g)
    from liteopt.format import read, to_bytes
    from liteopt.ir.registry import evaluate
    from liteopt.runtime import Program
    g.memory_plan = p
    x = np.random.default_rng(0).standard_normal(16).astype(np.float32)
    got = Program(read(buffer=to_bytes(g))).run({"x": x})
    np.testing.assert_allclose(got[0], evaluate(g, {"x": x})[0], rtol=1e-6)


def _concat_graph(lead=1, later_inplace=False):
    """a = relu(x1), b = sigmoid(x2), c = concat(a, b) along axis 1 (+ an in-place relu of `a` after it)."""
    f = DType.FLOAT32
    tensors = {"x1": Tensor("x1", f, (lead, 4)), "x2": Tensor("x2", f, (lead, 6)), "a": Tensor("a", f, (lead, 4)),
               "b": Tensor("b", f, (lead, 6)), "c": Tensor("c", f, (lead, 10))}
    nodes = [Node("relu", ["x1"], ["a"], {}, "r"), Node("sigmoid", ["x2"], ["b"], {}, "s"),
             Node("concat", ["a", "b"], ["c"], {"axis": 1}, "cat")]
    outputs = ["c"]
    if later_inplace:
        tensors["d"] = Tensor("d", f, (lead, 4))
        nodes.append(Node("relu", ["a"], ["d"], {}, "r2"))
        outputs.append("d")
    return Graph(nodes, ["x1", "x2"], outputs, tensors)


def _run_planned(g, lead):
    from liteopt.format import read, to_bytes
    from liteopt.ir.registry import evaluate
    from liteopt.runtime import Program
    g.memory_plan = plan(g)
    rng = np.random.default_rng(0)
    feeds = {"x1": rng.standard_normal((lead, 4)).astype(np.float32),
             "x2": rng.standard_normal((lead, 6)).astype(np.float32)}
    m = read(buffer=to_bytes(g))
    assert m.graph.memory_plan.offsets() == g.memory_plan.offsets()  # the .nb keeps the offsets inside slots
    prog, calls = Program(m), []
    step = next(s for s in prog.steps if s.node.op == "concat")
    step.fn = lambda *a, _f=step.fn, **kw: calls.append(1) or _f(*a, **kw)
    for got, want in zip(prog.run(feeds, check=True), evaluate(g, feeds)):
        np.testing.assert_allclose(got, want, rtol=1e-6)
    return len(calls)  # 0 when the plan assembled the concat in place: the runtime skips the step


def test_concat_inputs_are_written_in_place_inside_its_result():
    g = _concat_graph()
    off = plan(g).offsets()
    assert off["a"] == off["c"] and off["b"] == off["c"] + 4 * 4
    assert _run_planned(g, 1) == 0


def test_concat_copies_when_inputs_are_not_contiguous_ranges_or_are_written_later():
    for g, lead in ((_concat_graph(lead=2), 2), (_concat_graph(later_inplace=True), 1)):
        off, p = plan(g).offsets(), plan(g)
        slot_c = next(s for s in p.slots if "c" in s.tensors)
        assert "a" not in slot_c.tensors, off
        check_plan(p)
        assert _run_planned(g, lead) == 1


def test_concat_input_still_used_after_an_in_place_write_to_the_result_keeps_its_own_slot():
    """c = concat(a, b) then relu(c) in place: a (a graph output, so read at the end) must not live inside c."""
    f = DType.FLOAT32
    tensors = {"x1": Tensor("x1", f, (1, 4)), "x2": Tensor("x2", f, (1, 6)), "a": Tensor("a", f, (1, 4)),
               "b": Tensor("b", f, (1, 6)), "c": Tensor("c", f, (1, 10)), "r": Tensor("r", f, (1, 10))}
    nodes = [Node("tanh", ["x1"], ["a"], {}, "t"), Node("sigmoid", ["x2"], ["b"], {}, "s"),
             Node("concat", ["a", "b"], ["c"], {"axis": 1}, "cat"), Node("relu", ["c"], ["r"], {}, "r")]
    g = Graph(nodes, ["x1", "x2"], ["r", "a"], tensors)
    p = plan(g)
    assert next(s for s in p.slots if "c" in s.tensors) is not next(s for s in p.slots if "a" in s.tensors)
    _run_planned(g, 1)


def test_a_step_function_swapped_after_a_run_is_the_one_that_runs():
    """The runtime works its schedule out once per arena; a function swapped later (a profiler's timer, the
    layout's blocked variants) must still be the one called, in the planned and the unplanned run alike."""
    from liteopt.format import read, to_bytes
    from liteopt.ir.registry import evaluate
    from liteopt.runtime import Program
    for planned in (True, False):
        g = _concat_graph(lead=2)
        g.memory_plan = plan(g) if planned else None
        prog = Program(read(buffer=to_bytes(g)))
        rng = np.random.default_rng(1)
        feeds = {"x1": rng.standard_normal((2, 4)).astype(np.float32),
                 "x2": rng.standard_normal((2, 6)).astype(np.float32)}
        first = prog.run(feeds)
        calls = []
        for s in prog.steps:
            s.fn = lambda *a, _f=s.fn, **kw: calls.append(1) or _f(*a, **kw)
        again = prog.run(feeds)
        assert len(calls) == len(prog.steps)
        for got, was, want in zip(again, first, evaluate(g, feeds)):
            np.testing.assert_array_equal(got, was)
            np.testing.assert_allclose(got, want, rtol=1e-6)


@settings(max_examples=60, deadline=None)
@given(ops=st.lists(st.tuples(st.sampled_from(["tanh", "relu", "concat", "concat_relu"]), st.integers(0, 99),
                              st.integers(0, 99)), min_size=1, max_size=10),
       outs=st.lists(st.integers(0, 99), max_size=3))
def test_random_graphs_with_concats_run_through_the_arena_like_the_reference(ops, outs):
    """Random chains of unary ops and concats (some followed by an in-place relu) on (1, n) tensors, random
    extra outputs: the plan never overlaps and the arena run matches the numpy references."""
    f = DType.FLOAT32
    tensors = {"x": Tensor("x", f, (1, 3))}
    nodes, names = [], ["x"]
    for k, (op, i, j) in enumerate(ops):
        a, b = names[i % len(names)], names[j % len(names)]
        if op.startswith("concat") and a != b:
            out = f"c{k}"
            tensors[out] = Tensor(out, f, (1, tensors[a].shape[1] + tensors[b].shape[1]))
            nodes.append(Node("concat", [a, b], [out], {"axis": 1}, f"n{k}"))
            if op == "concat_relu":
                tensors[f"r{k}"] = Tensor(f"r{k}", f, tensors[out].shape)
                nodes.append(Node("relu", [out], [f"r{k}"], {}, f"m{k}"))
                out = f"r{k}"
        else:
            out = f"u{k}"
            tensors[out] = Tensor(out, f, tensors[a].shape)
            nodes.append(Node("tanh" if op == "tanh" else "relu", [a], [out], {}, f"n{k}"))
        names.append(out)
    outputs = list(dict.fromkeys([names[-1]] + [names[1:][o % (len(names) - 1)] for o in outs if len(names) > 1]))
    g = Graph(nodes, ["x"], outputs, tensors)
    g.verify()
    p = plan(g)
    check_plan(p)
    from liteopt.format import read, to_bytes
    from liteopt.ir.registry import evaluate
    from liteopt.runtime import Program
    g.memory_plan = p
    x = np.random.default_rng(0).standard_normal((1, 3)).astype(np.float32)
    for got, want in zip(Program(read(buffer=to_bytes(g))).run({"x": x}, check=True), evaluate(g, {"x": x})):
        np.testing.assert_allclose(got, want, rtol=1e-6)
