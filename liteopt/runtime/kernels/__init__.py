"""The kernel table: (op, target) -> variant -> Kernel. The only place numba is used.

A kernel has the same signature as the op's numpy reference: input arrays positionally (None for an
absent optional input), attributes as keyword arguments; it returns one array or a tuple.

    @kernel("relu")                       # target "cpu", variant "default"
    def relu(x):
        ...

Target "ref" is the numpy references themselves. An op is supported on a target exactly when a
kernel is registered for it there. Kernel ids, as recorded in the .nb, are "<target>/<variant>".
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable

from ...ir import OPS

TARGETS = ("cpu", "ref")
TARGET_ALIASES = {"arm": "cpu", "x86": "cpu", "host": "cpu", "cpu": "cpu", "ref": "ref"}
DEFAULT_VARIANT = "default"


@dataclass(frozen=True)
class Kernel:
    op: str
    target: str
    variant: str
    fn: Callable
    out: bool = False  # fn accepts out=<preallocated array> (an arena view) and writes its result there
    # applies(node, tensors) -> bool: whether this variant handles that node (shapes/attrs); None = always
    applies: Callable | None = None
    # the variant opt prefers among those that apply (higher first); "default" has 0
    priority: int = 0
    # pays(node, tensors) -> bool: whether opt may pick this variant unprompted (it is faster there); None =
    # wherever it applies. A kernel_override only needs `applies`.
    pays: Callable | None = None
    # prepare(consts, attrs) -> fn: work done once at load from the constant inputs (e.g. a Winograd filter
    # transform); `consts` holds the constant input arrays (None for run-time inputs). The returned function
    # replaces `fn` for that node. None when there is nothing to prepare.
    prepare: Callable | None = None

    @property
    def id(self) -> str:
        return f"{self.target}/{self.variant}"


@dataclass(frozen=True)
class Blocked:
    """What a prepared kernel says when it can also run on channel-blocked tensors (`_blocked`,
    runtime/layout.py): the input positions that may be in either layout (`free`), those that must be in the
    output's layout (`tied`), those that may be blocked only when the output is (`follows`: NCHW into a
    blocked output, or blocked to blocked), and variant(blocked inputs: set of positions, output blocked) ->
    the function to run instead. Set as the `blocked` attribute of the function `prepare` returns; every other
    input must be a constant."""
    free: tuple[int, ...]
    tied: tuple[int, ...]
    variant: Callable
    follows: tuple[int, ...] = ()
    # for_node(graph, node) -> Blocked | None: the declaration for this node's shapes (e.g. which input is the full
    # tensor), None where they allow no blocked variant; unset: this declaration as it is
    for_node: Callable | None = None


KERNELS: dict[tuple[str, str], dict[str, Kernel]] = {}


def kernel(op: str, target: str = "cpu", variant: str = DEFAULT_VARIANT, out: bool = False,
           applies: Callable | None = None, priority: int = 0, prepare: Callable | None = None,
           pays: Callable | None = None):
    """Register fn as the kernel of `op` (see Kernel for the options)."""
    def deco(fn):
        if op not in OPS:
            raise RuntimeError(f"kernel for unknown op {op!r}")
        variants = KERNELS.setdefault((op, target), {})
        if variant in variants:
            raise RuntimeError(f"kernel {op} {target}/{variant} registered twice")
        variants[variant] = Kernel(op, target, variant, fn, out=out, applies=applies, priority=priority,
                                   prepare=prepare, pays=pays)
        return fn
    return deco


def choose(node, tensors, target: str, override: dict[str, str] | None = None) -> str | None:
    """The variant opt records for a node on a target: an override (benchmarking) if it applies, else
    the highest-priority variant that applies to the node and pays there; None if the target has no kernel."""
    load_all()
    variants = KERNELS.get((node.op, target), {})
    wanted = (override or {}).get(node.op)
    if wanted in variants and (variants[wanted].applies is None or variants[wanted].applies(node, tensors)):
        return wanted
    ok = [k for k in variants.values() if (k.applies is None or k.applies(node, tensors))
          and (k.pays is None or k.pays(node, tensors))]
    return max(ok, key=lambda k: (k.priority, k.variant == DEFAULT_VARIANT)).variant if ok else None


def _register_ref():
    for name, d in OPS.items():
        KERNELS.setdefault((name, "ref"), {})[DEFAULT_VARIANT] = Kernel(name, "ref", DEFAULT_VARIANT, d.reference)


_FAMILIES = ("activation", "caffe_extra", "conv", "conv_fast", "elementwise", "fused", "nn", "reduce", "tensor")
_loaded = False


def load_all() -> None:
    """Import every kernel module (registers the cpu kernels); cheap after the first call."""
    global _loaded
    if not _loaded:
        _register_ref()
        for fam in _FAMILIES:
            importlib.import_module(f"{__name__}.{fam}")
        _loaded = True


def supported(op: str, target: str) -> bool:
    load_all()
    return bool(KERNELS.get((op, TARGET_ALIASES.get(target, target))))


def find(op: str, kernel_id: str) -> Kernel | None:
    """The kernel for an id like "cpu/winograd_f63"; None if not registered."""
    load_all()
    target, _, variant = kernel_id.partition("/")
    return KERNELS.get((op, target), {}).get(variant or DEFAULT_VARIANT)
