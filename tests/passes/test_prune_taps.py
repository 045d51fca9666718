"""prune_taps: filter rows/columns that only ever read the padding are cut, the paddings shrunk with them;
the result equals the reference run before the pass and onnxruntime."""
from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

from helpers import make_model
from pass_helpers import check_pass, run_pass

from liteopt.passes import prune_taps

RNG = np.random.default_rng(3)


def _model(h, w, k, d, pads, s=1, c=4, depthwise=False):
    x = RNG.standard_normal((1, c, h, w)).astype(np.float32)
    filt = RNG.standard_normal((c if depthwise else 6, 1 if depthwise else c, k, k)).astype(np.float32)
    node = helper.make_node("Conv", ["x", "w", "b"], ["y"], pads=list(pads), dilations=[d, d], strides=[s, s],
                            group=c if depthwise else 1)
    bias = RNG.standard_normal(filt.shape[0]).astype(np.float32)
    return make_model([node], {"x": x}, ["y"], {"w": filt, "b": bias}), x


@pytest.mark.parametrize("h, w, k, d, pads, s, depthwise, kept, paddings", [
    (6, 6, 3, 12, (12, 12, 12, 12), 1, False, (1, 1), (0, 0, 0, 0)),    # ASPP's dilation 24/36 on 14x14
    (1, 1, 3, 1, (1, 1, 1, 1), 1, False, (1, 1), (0, 0, 0, 0)),         # a 3x3 conv on a 1x1 map
    (1, 7, 3, 1, (1, 1, 1, 1), 1, False, (1, 3), (0, 0, 1, 1)),         # one row: the middle filter row
    (4, 4, 5, 3, (6, 6, 6, 6), 1, True, (3, 3), (3, 3, 3, 3)),          # depthwise: the outer ring cut
    (5, 5, 3, 6, (6, 6, 6, 6), 2, False, (1, 1), (0, 0, 0, 0)),         # stride 2
    (6, 6, 3, 4, (4, 4, 4, 4), 1, False, (3, 3), (4, 4, 4, 4)),         # every tap reads the input somewhere
    (3, 3, 3, 2, (1, 1, 1, 1), 2, False, (3, 3), (1, 1, 1, 1)),         # the live tap starts inside: kept
])
def test_taps_that_read_only_padding_are_cut(h, w, k, d, pads, s, depthwise, kept, paddings):
    model, x = _model(h, w, k, d, pads, s, depthwise=depthwise)
    hit = kept != (k, k)
    rec = check_pass(model, prune_taps, {"x": x}, hits=int(hit), tol=1e-6)
    _, g, _ = run_pass(model, prune_taps)
    conv = g.nodes[0]
    assert g.tensors[conv.inputs[1]].shape[2:] == kept and tuple(conv.attrs["paddings"]) == paddings
    if kept == (1, 1):
        assert tuple(conv.attrs["dilations"]) == (1, 1)
    if pads == (1, 1, 1, 1) and s == 2:
        assert any("start inside" in m for m in rec.near_misses), rec.near_misses
