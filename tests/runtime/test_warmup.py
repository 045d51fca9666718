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
        assert any(n.op == "nearest_interp_v2" and n.outputs[0] in prog.blocked for n in graph.nodes)
        assert sum(n.op == "depthwise_conv2d" and n.attrs["dilations"] != (1, 1) and n.outputs[0] in prog.blocked
                   for n in graph.nodes) == 2
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


def test_every_cached_kernel_goes_under_the_sources_key():
    """numba keys a cached function by its own file's content, yet compiles in what it calls from other kernel
    modules (IR tiles, the Winograd matrices): each kernel module's cached functions go to a folder named by the
    digest of all the kernel sources, so that no kernel comes back from the cache built against other ones."""
    import importlib
    import os

    from numba.core.dispatcher import Dispatcher

    from liteopt.runtime import kernels as K
    from liteopt.runtime.kernels import _util
    K.load_all()
    assert os.path.basename(_util.CACHE_DIR) == _util.CACHE_PREFIX + _util.source_key()
    folder = os.path.dirname(_util.__file__)
    cached = []
    for name in sorted(os.listdir(folder)):
        if name.endswith(".py") and name != "__init__.py":
            module = importlib.import_module(f"liteopt.runtime.kernels.{name[:-3]}")
            cached += [(name, v) for v in vars(module).values()
                       if isinstance(v, Dispatcher) and getattr(v, "_cache", None) is not None
                       and type(v._cache).__name__ == "FunctionCache"]
    assert len(cached) > 20
    outside = [f"{name}: {fn.py_func.__name__}" for name, fn in cached
               if not fn._cache._cache_path.startswith(_util.CACHE_DIR + os.sep)]
    assert not outside, outside


def test_the_sources_key_changes_with_any_kernel_module(tmp_path):
    import os
    import shutil

    from liteopt.runtime.kernels import _util
    folder = os.path.dirname(_util.__file__)
    for name in os.listdir(folder):
        if name.endswith(".py"):
            shutil.copy(os.path.join(folder, name), tmp_path / name)
    key = _util.source_key(str(tmp_path))
    assert key == _util.source_key()
    (tmp_path / "notes.txt").write_text("not a module")
    assert _util.source_key(str(tmp_path)) == key
    with open(tmp_path / "_blocked_winograd.py", "a") as f:  # a module other than the one holding the kernel
        f.write("\n")
    assert _util.source_key(str(tmp_path)) != key


def test_warmup_deletes_what_older_versions_left(tmp_path, monkeypatch):
    """In the package's __pycache__: other keys' folders and the loose cache files numba wrote there before
    the caches were keyed go; the current cache and Python's own .pyc files stay."""
    from liteopt.runtime.kernels import _util
    cache = tmp_path / "__pycache__"
    current = cache / (_util.CACHE_PREFIX + "1111")
    for d in (current, cache / (_util.CACHE_PREFIX + "0000")):
        d.mkdir(parents=True)
        (d / "k.nbi").write_bytes(b"x")
    for f in ("_blocked._conv-421.py311.nbi", "_blocked._conv-421.py311.1.nbc", "_util.cpython-311.pyc"):
        (cache / f).write_bytes(b"x")
    monkeypatch.setattr(_util, "_HERE", str(tmp_path))
    monkeypatch.setattr(_util, "CACHE_DIR", str(current))
    assert _util.remove_stale_caches() == 3
    assert {p.name for p in cache.iterdir()} == {current.name, "_util.cpython-311.pyc"}
    assert (current / "k.nbi").exists()
