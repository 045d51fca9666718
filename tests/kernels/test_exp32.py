"""`kernels._util.exp32` (the float32 e**x the sigmoid/swish epilogues vectorize) and `erf32` (GELU's) against
numpy / math in float64."""
import math

import numba
import numpy as np

from liteopt.runtime.kernels._util import erf32, exp32
from liteopt.runtime.kernels.conv_fast import _bias_act_row


@numba.njit(error_model="numpy", fastmath=True)
def _exp_loop(x, y):
    for i in range(x.size):
        y[i] = exp32(x[i])


def test_exp32_relative_error_over_the_float32_range():
    x = np.concatenate([np.linspace(-87.3, 88.0, 400001), np.linspace(-1, 1, 10001)]).astype(np.float32)
    y = np.empty_like(x)
    _exp_loop(x, y)
    exact = np.exp(x.astype(np.float64))
    assert np.max(np.abs(y - exact) / exact) < 5e-7


def test_exp32_clamps_instead_of_overflowing():
    x = np.array([-1e4, -200.0, -88.0, 88.5, 100.0, 1e4], np.float32)
    y = np.empty_like(x)
    _exp_loop(x, y)
    assert np.all(np.isfinite(y)) and np.all(y >= 0)
    assert np.all(y[:3] < 1.3e-38) and np.all(y[3:] > 1.6e38)


@numba.njit(error_model="numpy", fastmath=True)
def _rows(row, add, code, alpha):
    _bias_act_row(row, add, code, alpha)


def test_sigmoid_and_swish_rows_match_numpy():
    """Against float64 from the same float32 arguments (v = x + bias, and beta * v for swish: their roundings are
    float32's, as in onnxruntime's kernels, not exp32's)."""
    x = (np.random.default_rng(0).standard_normal(4099) * 30).astype(np.float32)
    v = x + np.float32(0.25)
    for code, beta in ((5, None), (6, 1.0), (6, 1.7)):
        row = x.copy()
        _rows(row, np.float32(0.25), code, 0.0 if beta is None else beta)
        if beta is None:
            exact = 1 / (1 + np.exp(-v.astype(np.float64)))
        else:
            exact = v.astype(np.float64) / (1 + np.exp((-np.float32(beta) * v).astype(np.float64)))
        np.testing.assert_allclose(row, exact, rtol=1e-6, atol=1e-30)


@numba.njit(error_model="numpy")
def _erf_loop(x, y):
    for i in range(x.size):
        y[i] = erf32(x[i])


def test_erf32_against_math_erf():
    """Under 3.5e-7 from erf over [-6, 6], relative under 1e-6 down to tiny values (the series near 0), +-1
    at +-inf, NaN kept, the sign of -0 kept."""
    tiny = np.geomspace(1e-30, 1, 4001)
    x = np.concatenate([np.linspace(-6, 6, 240001), tiny, -tiny, [0.5, -0.5, np.nextafter(np.float32(0.5), 0)]])
    x = x.astype(np.float32)
    y = np.empty_like(x)
    _erf_loop(x, y)
    exact = np.array([math.erf(v) for v in x.astype(np.float64)])
    assert np.abs(y - exact).max() < 3.5e-7
    small = (np.abs(x) < 1) & (x != 0)
    assert (np.abs(y - exact)[small] / np.abs(exact[small])).max() < 1e-6
    z = np.array([np.inf, -np.inf, np.nan, 1e30, -0.0], np.float32)
    w = np.empty_like(z)
    _erf_loop(z, w)
    assert w[0] == 1 and w[1] == -1 and np.isnan(w[2]) and w[3] == 1 and w[4] == 0 and np.signbit(w[4])
