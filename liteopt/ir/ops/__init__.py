"""One module per op family; importing this package registers every op in `OPS`."""
from . import activation, caffe_extra, conv, elementwise, fused, nn, reduce, tensor  # noqa: F401
