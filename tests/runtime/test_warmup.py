"""The cache-warming command runs its graph to the end through the cpu kernels, and agrees with the numpy
references on it."""
import numpy as np

from liteopt.format import read, to_bytes
from liteopt.ir.registry import evaluate
from liteopt.runtime import Program
from liteopt.runtime.warmup import _graph, warmup


def test_warmup_runs_and_matches_the_references():
    assert warmup(verbose=False) > 0
    graph, feeds = _graph()
    got = Program(read(buffer=to_bytes(graph)), target="cpu").run(feeds, check=True)
    for g, want in zip(got, evaluate(graph, feeds), strict=True):
        np.testing.assert_allclose(g, want, rtol=1e-4, atol=1e-5)
