"""What every front end does with --input_shape."""
from __future__ import annotations

from ..ir import Graph
from ..ir.errors import ConversionError


def pin_shapes(graph: Graph, input_shapes: dict[str, tuple[int, ...]] | None, source: str) -> None:
    """Apply --input_shape: every named input must exist, ranks must agree, fixed dims must match."""
    for name, shape in (input_shapes or {}).items():
        if name not in graph.inputs:
            raise ConversionError(f"--input_shape: {source} has no input named {name!r} "
                                  f"(inputs: {', '.join(graph.inputs) or 'none'})")
        t = graph.tensors[name]
        if t.shape is not None:
            if len(t.shape) != len(shape):
                raise ConversionError(f"--input_shape: input {name!r} has rank {len(t.shape)} "
                                      f"{tuple(t.shape)}, got {len(shape)} dims {tuple(shape)}")
            for k, (old, new) in enumerate(zip(t.shape, shape)):
                if isinstance(old, int) and old != new:
                    raise ConversionError(f"--input_shape: input {name!r} dim {k} is fixed to {old} "
                                          f"in the model, got {new}")
        t.shape = tuple(int(d) for d in shape)
