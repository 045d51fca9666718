"""Conv, ConvTranspose and pooling through liteopt vs onnxruntime."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from helpers import check_op

RNG = np.random.default_rng(0)


def r(*shape, scale=1.0):
    return (RNG.standard_normal(shape) * scale).astype(np.float32)


@pytest.mark.parametrize("attrs,wshape,bias", [
    ({}, (4, 3, 3, 3), True),
    ({"pads": [1, 1, 1, 1], "strides": [2, 2]}, (4, 3, 3, 3), False),
    ({"pads": [0, 1, 2, 1]}, (5, 3, 3, 2), True),
    ({"dilations": [2, 2], "pads": [2, 2, 2, 2]}, (4, 3, 3, 3), True),
    ({"group": 3}, (6, 1, 3, 3), True),                       # depthwise with multiplier 2
    ({"group": 6, "pads": [1, 1, 1, 1]}, (6, 1, 3, 3), True),  # depthwise
    ({"group": 6, "strides": [2, 2], "pads": [2, 2, 2, 2]}, (6, 1, 5, 5), False),
    ({"group": 2}, (4, 3, 1, 1), True),
    ({"auto_pad": "SAME_UPPER", "strides": [2, 2]}, (4, 6, 3, 3), True),
    ({"auto_pad": "SAME_LOWER"}, (4, 6, 4, 4), True),
    ({"auto_pad": "VALID", "strides": [1, 2]}, (4, 6, 3, 3), True),
    ({"kernel_shape": [1, 1]}, (8, 6, 1, 1), True),
])
def test_conv(attrs, wshape, bias, tmp_path):
    cin = wshape[1] * attrs.get("group", 1)
    x = r(2, cin, 11, 10)
    consts = {"w": r(*wshape), **({"b": r(wshape[0])} if bias else {})}
    check_op("Conv", {"x": x}, attrs, consts=consts, tmpdir=str(tmp_path))


def test_conv_dynamic_shape(tmp_path):
    check_op("Conv", {"x": r(1, 3, 9, 13)}, {"pads": [1, 1, 1, 1]}, consts={"w": r(4, 3, 3, 3)},
             dynamic={"x": ["N", 3, "H", "W"]}, tmpdir=str(tmp_path))


@settings(max_examples=20, deadline=None)
@given(c=st.integers(1, 6), o=st.integers(1, 6), h=st.integers(5, 12), k=st.sampled_from([1, 2, 3]),
       s=st.sampled_from([1, 2]), p=st.integers(0, 2), d=st.sampled_from([1, 2]))
def test_conv_hypothesis(c, o, h, k, s, p, d, tmp_path_factory):
    if h + 2 * p < d * (k - 1) + 1:
        return
    check_op("Conv", {"x": r(1, c, h, h + 1)}, {"pads": [p] * 4, "strides": [s, s], "dilations": [d, d]},
             consts={"w": r(o, c, k, k), "b": r(o)}, tmpdir=str(tmp_path_factory.mktemp("c")))


@pytest.mark.parametrize("attrs,wshape", [
    ({"strides": [2, 2]}, (4, 3, 2, 2)),
    ({"strides": [2, 2], "pads": [1, 1, 1, 1]}, (4, 3, 3, 3)),
    ({"strides": [2, 2], "pads": [1, 1, 1, 1], "output_padding": [1, 1]}, (4, 3, 3, 3)),
    ({"strides": [2, 2], "output_shape": [14, 16]}, (4, 3, 3, 3)),
    ({"group": 2, "strides": [2, 1]}, (4, 2, 3, 3)),
    ({"dilations": [2, 2]}, (4, 3, 3, 3)),
    ({"auto_pad": "SAME_UPPER", "strides": [2, 2]}, (4, 3, 3, 3)),
])
def test_conv_transpose(attrs, wshape, tmp_path):
    check_op("ConvTranspose", {"x": r(2, 4, 7, 8)}, attrs, consts={"w": r(*wshape), "b": r(wshape[1] * attrs.get("group", 1))},
             tmpdir=str(tmp_path))


@pytest.mark.parametrize("op,attrs", [
    ("MaxPool", {"kernel_shape": [2, 2], "strides": [2, 2]}),
    ("MaxPool", {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]}),
    ("MaxPool", {"kernel_shape": [3, 3], "strides": [2, 2], "ceil_mode": 1}),
    ("MaxPool", {"kernel_shape": [3, 2], "strides": [1, 2], "pads": [1, 0, 1, 1]}),
    ("MaxPool", {"kernel_shape": [3, 3], "auto_pad": "SAME_UPPER", "strides": [2, 2]}),
    ("AveragePool", {"kernel_shape": [2, 2], "strides": [2, 2]}),
    ("AveragePool", {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]}),
    ("AveragePool", {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1], "count_include_pad": 1}),
    ("AveragePool", {"kernel_shape": [3, 3], "strides": [2, 2], "ceil_mode": 1}),
    ("AveragePool", {"kernel_shape": [3, 3], "strides": [2, 2], "ceil_mode": 1, "pads": [1, 1, 1, 1],
                     "count_include_pad": 1}),
    ("GlobalAveragePool", {}), ("GlobalMaxPool", {}),
])
def test_pool(op, attrs, tmp_path):
    check_op(op, {"x": r(2, 3, 9, 10)}, attrs, opset=13 if "ceil_mode" not in attrs else 19, tmpdir=str(tmp_path))
