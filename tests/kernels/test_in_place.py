"""Kernels the memory plan runs in place (the output in the input's memory) give what they give out of place:
the activation loops and the per-row elementwise loop take another path there (a shared array defeats LLVM's
overlap check), checked against the ops' numpy references."""
import numpy as np
import pytest

from liteopt.ir import OPS
from liteopt.runtime import kernels as K
from liteopt.runtime.kernels import elementwise as E
from liteopt.runtime.kernels._util import frozen

K.load_all()
RNG = np.random.default_rng(3)


@pytest.mark.parametrize("op,attrs", [("sigmoid", {}), ("swish", {"beta": 1.0}), ("relu", {}), ("tanh", {}),
                                      ("hard_swish", {}), ("leaky_relu", {"alpha": 0.1}), ("exp", {})])
@pytest.mark.parametrize("size", [5, 1024, 3000])
def test_activation_in_place(op, attrs, size):
    x = (RNG.standard_normal((1, size)) * 6).astype(np.float32)
    attrs = dict({k: v.default for k, v in OPS[op].attrs.items()}, **attrs)
    ref = OPS[op].run(x.astype(np.float64), **attrs)[0]
    y = x.copy()
    assert K.KERNELS[(op, "cpu")]["default"].fn(y, out=y, **attrs) is y
    np.testing.assert_allclose(y, ref, rtol=2e-6, atol=1e-6)


@pytest.mark.parametrize("code,v_first", [(E.MUL, False), (E.ADD, True), (E.SUB, False), (E.SUB, True),
                                          (E.DIV, False), (E.DIV, True)])
def test_per_row_loop_in_place(code, v_first):
    rows, n = 37, 53
    x = RNG.uniform(0.5, 2.0, rows * n).astype(np.float32)
    v = RNG.uniform(0.5, 2.0, rows).astype(np.float32)
    a, b = (v[:, None], x.reshape(rows, n)) if v_first else (x.reshape(rows, n), v[:, None])
    ref = np.maximum({E.MUL: np.multiply, E.ADD: np.add, E.SUB: np.subtract, E.DIV: np.divide}[code](a, b) - 1.0, 0)
    y = x.copy()
    E._per_row_loop(y, frozen(y), frozen(v), rows, n, code, v_first, 0, 0.0)
    y -= 1.0
    np.testing.assert_allclose(np.maximum(y, 0).reshape(rows, n), ref, rtol=1e-6)


@pytest.mark.parametrize("op,ref", [("elementwise_add", np.add), ("elementwise_sub", np.subtract),
                                    ("elementwise_mul", np.multiply), ("elementwise_div", np.divide),
                                    ("elementwise_max", np.maximum), ("elementwise_pow", np.power)])
@pytest.mark.parametrize("shapes", [((2, 8, 5, 7), (2, 8, 5, 7)), ((2, 8, 5, 7), (1,)), ((1,), (2, 8, 5, 7))])
def test_elementwise_in_place(op, ref, shapes):
    """out in the memory of either full-size operand (the residual adds the memory plan runs in place)."""
    a = RNG.uniform(0.5, 2.0, shapes[0]).astype(np.float32)
    b = RNG.uniform(0.5, 2.0, shapes[1]).astype(np.float32)
    attrs = {k: v.default for k, v in OPS[op].attrs.items()}
    k = K.KERNELS[(op, "cpu")]["default"]
    run = (k.prepare([None, None], attrs) if k.prepare else None) or k.fn
    expected = ref(a, b)
    for into in (0, 1):
        x, y = a.copy(), b.copy()
        target = (x, y)[into]
        if target.shape != expected.shape:
            continue
        assert run(x, y, out=target, **attrs) is target
        np.testing.assert_allclose(target, expected, rtol=1e-6)


@pytest.mark.parametrize("op,attrs,inputs", [("scale", {"scale": 1.5, "bias": 0.2, "bias_after_scale": True}, 0),
                                             ("scale", {"scale": -2.0, "bias": 0.5, "bias_after_scale": False}, 0),
                                             ("clip", {"min": -1.0, "max": 2.0}, 2)])
def test_scale_and_clip_in_place(op, attrs, inputs):
    x = (RNG.standard_normal((3, 1000)) * 3).astype(np.float32)
    attrs = dict({k: v.default for k, v in OPS[op].attrs.items()}, **attrs)
    extra = (None,) * inputs
    ref = OPS[op].run(x.copy(), *extra, **attrs)[0]
    y = x.copy()
    assert K.KERNELS[(op, "cpu")]["default"].fn(y, *extra, out=y, **attrs) is y
    np.testing.assert_allclose(y, ref, rtol=1e-6, atol=1e-6)
