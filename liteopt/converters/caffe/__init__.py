"""Caffe front end: `load(prototxt, caffemodel, input_shapes)` -> ir.Graph."""
from .loader import load_caffe
from .layers import LAYERS


def load(model_file: str, param_file: str | None = None, input_shapes=None):
    """Front-end entry point used by `converters.load`."""
    return load_caffe(model_file, param_file, input_shapes)


__all__ = ["LAYERS", "load", "load_caffe"]
