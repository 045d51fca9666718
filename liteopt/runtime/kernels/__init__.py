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

    @property
    def id(self) -> str:
        return f"{self.target}/{self.variant}"


KERNELS: dict[tuple[str, str], dict[str, Kernel]] = {}


def kernel(op: str, target: str = "cpu", variant: str = DEFAULT_VARIANT, out: bool = False):
    """Register fn as the kernel of `op`; `out=True` if it accepts `out=` (an arena view) and writes there."""
    def deco(fn):
        if op not in OPS:
            raise RuntimeError(f"kernel for unknown op {op!r}")
        variants = KERNELS.setdefault((op, target), {})
        if variant in variants:
            raise RuntimeError(f"kernel {op} {target}/{variant} registered twice")
        variants[variant] = Kernel(op, target, variant, fn, out)
        return fn
    return deco


def _register_ref():
    for name, d in OPS.items():
        KERNELS.setdefault((name, "ref"), {})[DEFAULT_VARIANT] = Kernel(name, "ref", DEFAULT_VARIANT, d.reference)


_FAMILIES = ("activation", "conv", "elementwise", "fused", "nn", "reduce", "tensor")
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
