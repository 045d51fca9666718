"""`kernels._util.exp32` (the float32 e**x the sigmoid/swish epilogues vectorize) against numpy in float64."""
import numba
import numpy as np

from liteopt.runtime.kernels._util import exp32
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
