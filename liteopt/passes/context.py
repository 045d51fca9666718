"""What passes receive besides the graph: options, the kernel table, and the record of what they did."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable


@dataclass
class PassRecord:
    name: str
    matches: int = 0
    near_misses: list[str] = field(default_factory=list)
    ms: float = 0.0

    def hit(self, n: int = 1) -> None:
        self.matches += n

    def miss(self, reason: str) -> None:
        self.near_misses.append(reason)


@dataclass
class PassContext:
    # targets in priority order, e.g. ["cpu", "ref"]
    targets: list[str] = field(default_factory=lambda: ["cpu"])
    # kernel_variants(op, target) -> registered variant names ([] if unsupported); injected by opt
    kernel_variants: Callable[[str, str], list[str]] = lambda op, target: ["default"]
    verify: bool = True
    records: list[PassRecord] = field(default_factory=list)

    def begin(self, name: str) -> PassRecord:
        self.records.append(PassRecord(name))
        return self.records[-1]

    @property
    def record(self) -> PassRecord:
        return self.records[-1]
