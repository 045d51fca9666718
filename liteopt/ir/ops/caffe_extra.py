"""Ops that Caffe models need beyond the shared families (Paddle Lite names)."""
from __future__ import annotations

import numpy as np

from ..registry import op, same_as


@op("lrn", attrs={"n": 5, "k": 1.0, "alpha": 1e-4, "beta": 0.75}, infer=same_as(0))
def lrn(x, *, n, k, alpha, beta):
    """across channels: x / (k + alpha * sum of x^2 over the n channels centred on c) ^ beta (Paddle's lrn;
    Caffe's and ONNX's alpha/n is divided by the converters); an even n reaches (n-1)//2 channels before c and
    n//2 after it, as ONNX's LRN (Caffe's n is odd)"""
    sq = np.pad(x.astype(np.float64) ** 2, ((0, 0), ((n - 1) // 2, n // 2)) + ((0, 0),) * (x.ndim - 2))
    window = sum(sq[:, i:i + x.shape[1]] for i in range(n))
    return (x / (k + alpha * window) ** beta).astype(x.dtype)
