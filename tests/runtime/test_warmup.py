"""The cache-warming command runs its graph to the end through the cpu kernels, and agrees with the numpy
references on it."""
import numpy as np

from liteopt.format import read, to_bytes
from liteopt.ir.registry import evaluate
from liteopt.runtime import Program
from liteopt.runtime.warmup import _graph_with_kernels, warmup


def test_warmup_runs_and_matches_the_references():
    assert warmup(verbose=False) > 0
    graph, feeds = _graph_with_kernels()
    conv = {n.kernel for n in graph.nodes if n.op == "conv2d"}
    assert conv >= {"cpu/gemm", "cpu/winograd_f43", "cpu/direct"}, conv  # every conv variant opt picks unprompted
    from liteopt.runtime.kernels import _blocked
    if _blocked.AVAILABLE:  # the blocked kernels too: every layout a pointwise conv runs in, and the depthwise
        prog = Program(read(buffer=to_bytes(graph)), target="cpu")
        ins = {(n.inputs[0] in prog.blocked, n.outputs[0] in prog.blocked) for n in graph.nodes if n.op == "conv2d"}
        assert ins >= {(False, True), (True, True), (True, False)}, ins
        assert any(n.op == "depthwise_conv2d" and n.outputs[0] in prog.blocked for n in graph.nodes)
        assert any(n.op == "conv2d" and n.inputs[0] in prog.blocked and graph.tensors[n.inputs[1]].shape[2] == 3
                   for n in graph.nodes)
        assert any(n.kernel.startswith("cpu/winograd") and n.outputs[0] in prog.blocked for n in graph.nodes)
    got = Program(read(buffer=to_bytes(graph)), target="cpu").run(feeds, check=True)
    for g, want in zip(got, evaluate(graph, feeds), strict=True):
        np.testing.assert_allclose(g, want, rtol=1e-4, atol=1e-5)


def test_a_new_process_after_the_warmup_compiles_nothing():
    """Everything the warm-up compiled is loaded from numba's disk cache by the next process, not compiled
    again (a kernel whose cache key changes from process to process, like a closure over a compiled
    function, would cost every process its compile time)."""
    import os
    import subprocess
    import sys
    warmup(verbose=False)
    env = dict(os.environ, NUMBA_DEBUG_CACHE="1")
    res = subprocess.run([sys.executable, "-c", "from liteopt.runtime.warmup import warmup; warmup(verbose=False)"],
                         env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    saved = [line for line in res.stdout.splitlines() + res.stderr.splitlines() if "data saved" in line]
    assert not saved, "compiled again in a new process:\n" + "\n".join(saved[:10])
