"""ONNX front end: `load_onnx(path, input_shapes)` -> ir.Graph."""
from . import ops as _ops  # noqa: F401  (registers the converter functions)
from .loader import load_onnx
from .registry import ONNX_OPS, onnx_op

__all__ = ["load_onnx", "ONNX_OPS", "onnx_op"]


def load(model_file: str, param_file: str | None = None, input_shapes=None):
    """Front-end entry point used by `converters.load`."""
    return load_onnx(model_file, input_shapes)
