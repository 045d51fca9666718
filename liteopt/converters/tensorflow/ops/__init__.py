"""One small function per TensorFlow op, by family; importing this package fills `registry.TF_OPS`."""
from . import math, nn, tensor  # noqa: F401
