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
    # choose_kernel(node, tensors, target) -> the variant to use, None if unsupported; injected by opt
    choose_kernel: Callable = lambda node, tensors, target: "default"
    verify: bool = True
    # weight-only quantization (passes/quantize_weights.py): "QUANT_INT8" | "QUANT_INT16" | None
    quant_type: str | None = None
    enable_fp16: bool = False
    quant_min_sqnr: float | None = None   # dB: layers below it get more bits, or stay float32
    records: list[PassRecord] = field(default_factory=list)
    quant_layers: list = field(default_factory=list)  # one QuantLayer per weight considered
    float_weights: dict = field(default_factory=dict)  # tensor name -> original float32 data

    def begin(self, name: str) -> PassRecord:
        self.records.append(PassRecord(name))
        return self.records[-1]

    @property
    def record(self) -> PassRecord:
        return self.records[-1]
