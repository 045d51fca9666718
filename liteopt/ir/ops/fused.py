"""Ops that only the passes produce (pattern recognition), defined like any other op."""
from __future__ import annotations

import numpy as np

from ..registry import op, same_as


@op("shuffle_channel", attrs={"group": 1}, infer=same_as(0))
def shuffle_channel(x, *, group):
    """ShuffleNet's channel shuffle of an NCHW tensor: (N, g, C/g, H, W) -> transpose(0, 2, 1, 3, 4) -> NCHW"""
    n, c, h, w = x.shape
    return np.ascontiguousarray(x.reshape(n, group, c // group, h, w).transpose(0, 2, 1, 3, 4)).reshape(n, c, h, w)
