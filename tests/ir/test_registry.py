"""Meta-tests over the op registry: every op is complete and reachable."""
from __future__ import annotations

import pathlib
import re

import pytest

from liteopt.ir import OPS
from liteopt.runtime import kernels as K

CONVERTERS = pathlib.Path(__file__).resolve().parents[2] / "liteopt" / "converters"
# ops that no converter emits directly: they are produced by the passes (fusions)
PRODUCED_BY_PASSES = {"fc", "swish", "layer_norm", "shuffle_channel"}


def test_registry_is_not_trivial():
    assert len(OPS) >= 60


@pytest.mark.parametrize("name", sorted(OPS))
def test_every_op_has_a_cpu_kernel(name):
    assert K.supported(name, "cpu"), f"op {name} has no cpu kernel"
    assert K.supported(name, "ref")


@pytest.mark.parametrize("name", sorted(OPS))
def test_attribute_defaults_are_normalized(name):
    d = OPS[name]
    for k, a in d.attrs.items():
        if not a.required:
            assert a.normalize(a.default, k) == a.default, f"{name}.{k}"
    assert d.doc, f"op {name} has no docstring on its reference"


def test_every_op_is_reachable_from_a_converter():
    source = "\n".join(p.read_text() for p in CONVERTERS.rglob("*.py"))
    quoted = set(re.findall(r"[\"']([a-z0-9_]+)[\"']", source))
    unreachable = sorted(set(OPS) - quoted - PRODUCED_BY_PASSES)
    assert not unreachable, f"ops no converter mentions: {unreachable}"


def test_paddle_names():
    for name in ("conv2d", "depthwise_conv2d", "conv2d_transpose", "pool2d", "relu", "relu6", "leaky_relu",
                 "hard_swish", "elementwise_add", "batch_norm", "softmax", "matmul_v2", "reshape2", "transpose2",
                 "concat", "bilinear_interp_v2", "nearest_interp_v2"):
        assert name in OPS, name
