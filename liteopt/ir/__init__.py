"""The core of liteopt: tensors, nodes, graphs, dtypes and the op registry (numpy and stdlib only)."""
from .dtypes import DType
from .errors import ConversionError, LiteoptError, NbFormatError, ShapeError, UnsupportedOpsError
from .graph import Dim, Graph, Node, QuantInfo, Shape, Tensor
from .registry import OPS, Attr, InferCtx, OpDef, TensorType, infer_node, infer_shapes
from . import ops as _ops  # noqa: F401  (registers every op)

__all__ = ["DType", "Dim", "Graph", "Node", "QuantInfo", "Shape", "Tensor", "OPS", "Attr", "InferCtx", "OpDef",
           "TensorType", "infer_node", "infer_shapes", "LiteoptError", "ConversionError", "UnsupportedOpsError",
           "ShapeError", "NbFormatError"]
