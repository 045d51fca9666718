"""Run a .nb: Paddle Lite's light API (`MobileConfig`, `create_paddle_predictor`) and a Pythonic `load()`.

The interpreter is a plain read-eval loop over the nodes; it never names an op.
"""
from __future__ import annotations

import math
import operator

import numpy as np

from ..format import NbModel, read
from ..ir import OPS, Graph, infer_shapes
from ..ir.errors import LiteoptError, ShapeError
from ..ir.memory import ALIGN, plan
from . import kernels as K
from . import layout
from .kernels._util import frozen
from .threads import use_numba_pool

MAX_PLANS = 8  # input-shape signatures whose arena is kept


class PredictorError(LiteoptError):
    """Bad input to the predictor, or a kernel failing on it (names the input or the op)."""


class _Step:
    __slots__ = ("_fn", "inputs", "outputs", "attrs", "node", "takes_out")
    changes = 0  # fn assignments so far, in every program (a program's schedule holds the functions it saw)

    def __init__(self, kernel, node, consts):
        self.fn, self.node, self.takes_out = kernel.fn, node, kernel.out
        # absent trailing optional inputs are passed as None, as the signature expects
        self.inputs = OPS[node.op].pad_inputs(node.inputs)
        self.outputs, self.attrs = node.outputs, node.attrs
        if kernel.prepare is not None:  # once at load: e.g. transform a constant filter
            prepared = kernel.prepare([consts.get(i) if i else None for i in node.inputs], node.attrs)
            if prepared is not None:
                self.fn = prepared

    @property
    def fn(self):
        return self._fn

    @fn.setter
    def fn(self, f):  # (layout.apply, profilers and tests swap functions after load)
        self._fn = f
        _Step.changes += 1


class Arena:
    """One buffer for all intermediates, laid out by a MemoryPlan: tensor name -> array view."""

    def __init__(self, graph: Graph, plan):
        self.plan = plan
        raw = np.empty(plan.arena_bytes + ALIGN, np.uint8)
        start = (-raw.ctypes.data) % ALIGN
        self.buffer = raw[start:start + plan.arena_bytes]
        self.views: dict[str, np.ndarray] = {}
        self.slot_of: dict[str, object] = {}
        for slot in plan.slots:
            for name in slot.tensors:
                self.slot_of[name] = slot
                t = graph.tensors[name]
                nbytes = math.prod(t.shape) * t.dtype.itemsize
                at = slot.offset + slot.sub.get(name, 0)
                self.views[name] = self.buffer[at:at + nbytes].view(t.dtype.np).reshape(t.shape)
        # concats the plan assembles in place (every input inside the result, ir/memory.py): when each input
        # did land in its arena view, the step has nothing left to do
        self.assembled = {n.outputs[0] for n in graph.nodes
                          if n.op == "concat" and n.outputs[0] in self.slot_of
                          and all(i and self.slot_of.get(i) is self.slot_of[n.outputs[0]] for i in n.inputs)}
        self.schedule: tuple = (-1, None)  # (_Step.changes, Program._schedule's list) when last worked out


class Program:
    """A loaded model ready to run: kernels resolved once, weights as views of the file."""

    def __init__(self, nb: NbModel, target: str | None = None):
        self.nb = nb
        self.graph: Graph = nb.graph
        # quantized or float16 weights are restored to float32 once, here (outside the arena); all constants are
        # read-only, like the weights mapped from the file, so that kernels see one array type (kernels/_util)
        self.consts = {k: frozen(t.value()) for k, t in self.graph.tensors.items() if t.data is not None}
        self.steps: list[_Step] = []
        for node in self.graph.nodes:
            k = self._kernel_for(node, target)
            self.steps.append(_Step(k, node, self.consts))
        self.blocked = layout.apply(self.graph, self.steps)  # tensors kept channel-blocked between kernels
        # with most of the convolution work in numba's kernels, the threads go to numba's pool, else to BLAS
        use_numba_pool(layout.numba_share(self.graph, self.blocked) >= 0.5)
        self._arenas: dict[tuple, Arena | None] = {}
        self._unplanned_schedule: tuple = (-1, None)  # the schedule without an arena (Arena.schedule)
        # the run's values live in a list, one slot a tensor (slot 0: None, an absent optional input), the
        # constants in theirs from the start: `_schedule`
        self._slot = {name: k + 1 for k, name in enumerate(self.graph.tensors)}
        self._slot[""] = 0
        self._values: list = [None] * (len(self.graph.tensors) + 1)
        for name, value in self.consts.items():
            self._values[self._slot[name]] = value
        if self.graph.memory_plan is not None:
            key = tuple(tuple(self.graph.tensors[i].shape) for i in self.graph.inputs)
            self._arenas[key] = Arena(self.graph, self.graph.memory_plan)

    def _kernel_for(self, node, target: str | None):
        """The kernel recorded by opt; with a target override, the best variant on that target instead."""
        recorded = node.kernel or "cpu/default"
        want = target or recorded.split("/")[0]
        k = K.find(node.op, recorded) if recorded.startswith(want + "/") else None
        if k is None:
            variant = K.choose(node, self.graph.tensors, want)
            k = K.find(node.op, f"{want}/{variant}") if variant else None
        if k is None:
            raise PredictorError(f"op {node.name!r} ({node.op}): this runtime has no {want!r} kernel for it "
                                 f"(the file asks for {recorded!r})")
        return k

    def arena_for(self, feeds: dict[str, np.ndarray]) -> Arena | None:
        """The arena for these input shapes: the plan in the file, or one planned once per new shape."""
        key = tuple(tuple(feeds[i].shape) for i in self.graph.inputs)
        if key not in self._arenas:
            if len(self._arenas) >= MAX_PLANS:
                self._arenas.pop(next(iter(self._arenas)))
            g = self.graph.copy()
            for name in g.inputs:
                g.tensors[name].shape = tuple(feeds[name].shape)
            try:
                infer_shapes(g)
            except ShapeError as e:
                raise PredictorError(f"these input shapes do not fit the model: {e}") from None
            p = plan(g)
            self._arenas[key] = Arena(g, p) if p is not None else None
        return self._arenas[key]

    def _schedule(self, arena: Arena | None) -> list:
        """The steps as they run with this arena, worked out once (again after a step's function changes):
        (fn, attrs, getter of the input arrays from the value slots, first output's slot, the step, its output's
        arena view or None, the (input slot, view) pairs of a concat assembled in place or None). The loop over
        these tuples touches a few objects per step instead of the step's and the arena's dicts and the tensor
        names: after each kernel those are cold in the cache, and looking them up cost ~5 us a step."""
        version, steps = arena.schedule if arena is not None else self._unplanned_schedule
        if version == _Step.changes:
            return steps
        views = arena.views if arena is not None else {}
        assembled = arena.assembled if arena is not None else ()
        slot = self._slot
        steps = []
        for s in self.steps:
            at = tuple(slot[i or ""] for i in s.inputs)
            if len(at) > 1:
                get = operator.itemgetter(*at)
            else:  # (itemgetter of one index gives the array itself, of none is an error)
                get = (lambda env, _k=at[0]: (env[_k],)) if at else (lambda env: ())
            out = s.outputs[0]
            skip = tuple((slot[i], views[i]) for i in s.inputs) if out in assembled else None
            view = None
            if s.takes_out:  # a multi-output kernel gets the tuple of its outputs' views (when all are planned)
                view = views.get(out) if len(s.outputs) == 1 else \
                    (tuple(views[o] for o in s.outputs) if all(o in views for o in s.outputs) else None)
            attrs = {} if getattr(s.fn, "attrs_bound", False) else s.attrs  # (`kernels._util.attrs_bound`)
            steps.append((s.fn, attrs, get, slot[out], s, view, skip))
        if arena is not None:
            arena.schedule = (_Step.changes, steps)
        else:
            self._unplanned_schedule = (_Step.changes, steps)
        return steps

    def run(self, feeds: dict[str, np.ndarray], check: bool = False) -> list[np.ndarray]:
        """Execute the nodes in order. `check=True` (tests) verifies every result against the dtype and
        shape that opt inferred, symbols included (one symbol, one value)."""
        slot = self._slot
        env = self._values.copy()  # the value of tensor t at env[slot[t]]
        for name, value in feeds.items():
            env[slot[name]] = value
        symbols: dict[str, int] = {}
        arena = self.arena_for(feeds)
        views = arena.views if arena is not None else {}
        for fn, attrs, get, out, s, view, skip in self._schedule(arena):
            if skip is not None and all(env[i] is v for i, v in skip):
                env[out] = views[s.outputs[0]]
                continue
            args = get(env)
            try:
                res = fn(*args, **attrs) if view is None else fn(*args, out=view, **attrs)
            except LiteoptError:
                raise
            except Exception as e:
                shapes = ", ".join(str(tuple(a.shape)) if a is not None else "-" for a in args)
                raise PredictorError(f"op {s.node.name!r} ({s.node.op}) failed on inputs of shape {shapes}: "
                                    f"{type(e).__name__}: {e}") from None
            if isinstance(res, (tuple, list)):
                for name, v in zip(s.outputs, res):
                    env[slot[name]] = v
            else:
                env[out] = res
            if check:
                for name in s.outputs:
                    value = env[slot[name]]
                    self._check_inferred(s.node, name, value, symbols)
                    d = OPS[s.node.op]
                    planned = arena.slot_of.get(name) if arena is not None else None
                    if d.view_of_input is None and not d.inplace and any(
                            a is not None and np.may_share_memory(value, a)
                            and (planned is None or arena.slot_of.get(i) is not planned)  # planned: concat in place
                            for i, a in zip(s.inputs, args)):
                        raise AssertionError(f"op {s.node.name!r} ({s.node.op}) returned a view of its input, but "
                                             f"it is not declared view_of_input: the memory plan would reuse it")
        # outputs may live in the arena, which the next run overwrites: hand out copies
        return [np.array(env[slot[o]]) if o in views else np.asarray(env[slot[o]]) for o in self.graph.outputs]

    def _check_inferred(self, node, name: str, value, symbols: dict[str, int]) -> None:
        t = self.graph.tensors[name]
        value = np.asarray(value)
        where = f"op {node.name!r} ({node.op}) output {name!r}"
        if value.dtype != t.dtype.np:
            raise AssertionError(f"{where}: kernel gave {value.dtype}, opt inferred {t.dtype}")
        if t.shape is None:
            return
        if len(t.shape) != value.ndim:
            raise AssertionError(f"{where}: kernel gave shape {value.shape}, opt inferred {t.shape}")
        for d, v in zip(t.shape, value.shape):
            if isinstance(d, str):
                if symbols.setdefault(d, v) != v:
                    raise AssertionError(f"{where}: symbol {d!r} is {v} here but {symbols[d]} elsewhere")
            elif d != v:
                raise AssertionError(f"{where}: kernel gave shape {value.shape}, opt inferred {t.shape}")

    def check_input(self, name: str, a) -> np.ndarray:
        """Validate (and where harmless convert) a user array for input `name`."""
        t = self.graph.tensors[name]
        a = np.asarray(a)
        if a.dtype != t.dtype.np:
            same_kind = (np.issubdtype(a.dtype, np.floating) and t.dtype.is_float) or (
                np.issubdtype(a.dtype, np.integer) and np.issubdtype(t.dtype.np, np.integer))
            if not same_kind:
                raise PredictorError(f"input {name!r} expects {t.dtype}, got an array of {a.dtype}")
            a = a.astype(t.dtype.np)
        if t.shape is not None:
            if a.ndim != len(t.shape) or any(isinstance(d, int) and d != s for d, s in zip(t.shape, a.shape)):
                want = "x".join(str(d) if isinstance(d, int) else "?" for d in t.shape)
                raise PredictorError(f"input {name!r} expects shape {want}, got {'x'.join(map(str, a.shape)) or 'a scalar'}")
        return a if a.flags.c_contiguous else np.array(a, order="C")  # (ascontiguousarray makes 0-d 1-d)


def _target_of(target: str | None) -> str | None:
    if target is None:
        return None
    t = K.TARGET_ALIASES.get(target)
    if t is None:
        raise PredictorError(f"unknown target {target!r} (valid: {', '.join(sorted(K.TARGET_ALIASES))})")
    return t


# --- the Pythonic API --------------------------------------------------------------------------

class Predictor:
    """`predictor({name: array}) -> {output name: array}`; also `.run(*arrays)` -> list."""

    def __init__(self, program: Program):
        self._program = program
        self.input_names = list(program.graph.inputs)
        self.output_names = list(program.graph.outputs)
        self.metadata = dict(program.graph.metadata)

    def __call__(self, feeds: dict[str, np.ndarray] | None = None, **kw) -> dict[str, np.ndarray]:
        feeds = {**(feeds or {}), **kw}
        missing = [n for n in self.input_names if n not in feeds]
        extra = [n for n in feeds if n not in self.input_names]
        if missing or extra:
            raise PredictorError(("missing input(s) " + ", ".join(map(repr, missing)) if missing else "unknown input(s) "
                                 + ", ".join(map(repr, extra))) + f" (the model takes {', '.join(self.input_names)})")
        checked = {n: self._program.check_input(n, feeds[n]) for n in self.input_names}
        return dict(zip(self.output_names, self._program.run(checked)))

    def run(self, *arrays) -> list[np.ndarray]:
        if len(arrays) != len(self.input_names):
            raise PredictorError(f"the model takes {len(self.input_names)} input(s) ({', '.join(self.input_names)}), "
                                f"got {len(arrays)}")
        return list(self(dict(zip(self.input_names, arrays))).values())


def load(path: str | None = None, *, buffer: bytes | None = None, target: str | None = None,
         threads: int = 1) -> Predictor:
    """Load a .nb (from a path or bytes) and return a Predictor. `target="ref"` runs the numpy references.
    `threads` sets numba's and BLAS's threads for the process (1 by default, as MobileConfig: left at their
    defaults, the two pools fight for the cores and small ops wait for each other)."""
    set_threads(threads)
    return Predictor(Program(read(path, buffer=buffer), _target_of(target)))


def set_threads(n: int) -> None:
    """Threads of numba's kernels and of BLAS (GEMM convolutions, fc, matmul)."""
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise PredictorError(f"threads must be a positive integer, got {n!r}")
    from .threads import set_threads as _set
    _set(n)


# --- Paddle Lite's light API ---------------------------------------------------------------------

class MobileConfig:
    def __init__(self):
        self._path: str | None = None
        self._buffer: bytes | None = None
        self._threads = 1
        self._power_mode = 0

    def set_model_from_file(self, path: str) -> None:
        self._path, self._buffer = str(path), None

    def set_model_from_buffer(self, buffer: bytes) -> None:
        if not isinstance(buffer, (bytes, bytearray, memoryview)):
            raise PredictorError("set_model_from_buffer expects bytes (the content of a .nb file)")
        self._buffer, self._path = bytes(buffer), None

    def set_model_dir(self, path: str) -> None:  # deprecated in Paddle Lite too
        self.set_model_from_file(path)

    def model_dir(self) -> str:
        return self._path or ""

    def is_model_from_memory(self) -> bool:
        return self._buffer is not None

    def set_threads(self, n: int) -> None:
        if not isinstance(n, int) or n < 1:
            raise PredictorError(f"set_threads expects a positive integer, got {n!r}")
        self._threads = n

    def threads(self) -> int:
        return self._threads

    def set_power_mode(self, mode) -> None:  # accepted for compatibility; no effect on a desktop CPU
        self._power_mode = int(mode)

    def power_mode(self) -> int:
        return self._power_mode


class Tensor:
    """A predictor's input or output slot (Paddle Lite's `Tensor`)."""

    def __init__(self, predictor: "LightPredictor", name: str, is_input: bool):
        self._p, self._name, self._is_input = predictor, name, is_input

    def from_numpy(self, array, place=None) -> None:
        if not self._is_input:
            raise PredictorError(f"{self._name!r} is an output; from_numpy is for inputs")
        self._p._feeds[self._name] = self._p._program.check_input(self._name, array)

    def numpy(self) -> np.ndarray:
        if self._is_input:
            if self._name not in self._p._feeds:
                raise PredictorError(f"input {self._name!r} has not been set")
            return self._p._feeds[self._name]
        if self._name not in self._p._results:
            raise PredictorError(f"output {self._name!r} is not available: call run() first")
        return self._p._results[self._name]

    def shape(self) -> list[int]:
        if self._is_input and self._name not in self._p._feeds or not self._is_input and self._name not in self._p._results:
            t = self._p._program.graph.tensors[self._name]
            return [d if isinstance(d, int) else -1 for d in (t.shape or ())]
        return list(self.numpy().shape)

    def resize(self, shape) -> None:
        pass  # shapes follow from_numpy

    def name(self) -> str:
        return self._name

    def precision(self) -> str:
        return str(self._p._program.graph.tensors[self._name].dtype)

    def float_data(self) -> list[float]:
        return self.numpy().reshape(-1).astype(np.float32).tolist()


class LightPredictor:
    def __init__(self, config: MobileConfig):
        set_threads(config.threads())
        if config._buffer is not None:
            nb = read(buffer=config._buffer)
        elif config._path:
            nb = read(config._path)
        else:
            raise PredictorError("MobileConfig has no model: call set_model_from_file or set_model_from_buffer")
        self._program = Program(nb)
        self._feeds: dict[str, np.ndarray] = {}
        self._results: dict[str, np.ndarray] = {}

    def _slot(self, names: list[str], i, is_input: bool) -> Tensor:
        if not isinstance(i, int) or not 0 <= i < len(names):
            kind = "input" if is_input else "output"
            raise PredictorError(f"{kind} index {i!r} out of range: the model has {len(names)} {kind}(s)")
        return Tensor(self, names[i], is_input)

    def get_input(self, i: int) -> Tensor:
        return self._slot(self._program.graph.inputs, i, True)

    def get_output(self, i: int) -> Tensor:
        return self._slot(self._program.graph.outputs, i, False)

    def get_input_by_name(self, name: str) -> Tensor:
        if name not in self._program.graph.inputs:
            raise PredictorError(f"no input named {name!r} (inputs: {', '.join(self._program.graph.inputs)})")
        return Tensor(self, name, True)

    def get_output_by_name(self, name: str) -> Tensor:
        if name not in self._program.graph.outputs:
            raise PredictorError(f"no output named {name!r} (outputs: {', '.join(self._program.graph.outputs)})")
        return Tensor(self, name, False)

    def get_input_names(self) -> list[str]:
        return list(self._program.graph.inputs)

    def get_output_names(self) -> list[str]:
        return list(self._program.graph.outputs)

    def run(self) -> None:
        missing = [n for n in self._program.graph.inputs if n not in self._feeds]
        if missing:
            raise PredictorError(f"input(s) {', '.join(map(repr, missing))} not set: use get_input(i).from_numpy(array)")
        outs = self._program.run(self._feeds)
        self._results = dict(zip(self._program.graph.outputs, outs))

    def get_version(self) -> str:
        return self._program.nb.producer_version


def create_paddle_predictor(config: MobileConfig) -> LightPredictor:
    if not isinstance(config, MobileConfig):
        raise PredictorError("create_paddle_predictor expects a MobileConfig")
    return LightPredictor(config)
