"""One module per op family (mirroring ir/ops); importing registers the ONNX converter functions."""
from . import activation, conv, elementwise, nn, reduce, tensor  # noqa: F401
