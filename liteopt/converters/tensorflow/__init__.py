"""TensorFlow front end: `load(model_file, param_file, input_shapes)` -> ir.Graph from a frozen GraphDef
(`.pb` binary or `.pbtxt` text), parsed with protobuf; TensorFlow is never imported.

Inputs: the Placeholders (their names; shapes from their `shape` attribute, -1 dims symbolic, overridable
with --input_shape). Outputs: the graph's sinks, i.e. the nodes no other node reads (control inputs do not
count) other than NoOp, Const and Placeholder, each by its first output, named after the node. Both keep
TF's layout (NHWC); inside, convolutions and everything around them run in NCHW (see registry.py)."""
from . import ops  # noqa: F401  (registers the converters)
from .loader import load_tf
from .registry import TF_OPS


def load(model_file: str, param_file: str | None = None, input_shapes=None):
    """Front-end entry point used by `converters.load` (a frozen graph holds its weights: no param_file)."""
    return load_tf(model_file, input_shapes)


__all__ = ["TF_OPS", "load", "load_tf"]
