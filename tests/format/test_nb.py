"""The .nb format: round trip, determinism, alignment, zero-copy weights, golden file, and validation."""
from __future__ import annotations

import os

import numpy as np
import onnx
import pytest

from helpers import convert, run_ort
from models import tiny_cnn

from liteopt.format import read, to_bytes
from liteopt.format.schema import ALIGN, SCHEMA_VERSION, TRAILER
from liteopt.ir.errors import NbFormatError
from liteopt.runtime import MobileConfig, create_paddle_predictor, load

GOLDEN = os.path.join(os.path.dirname(__file__), "..", "data", "tiny_cnn.nb")
GOLDEN_V2 = os.path.join(os.path.dirname(__file__), "..", "data", "tiny_cnn_v2.nb")  # written by format version 2
X = np.random.default_rng(1).standard_normal((2, 3, 16, 16)).astype(np.float32)


@pytest.fixture(scope="module")
def nb_path(tmp_path_factory):
    return convert(tiny_cnn(), str(tmp_path_factory.mktemp("nb")), valid_targets="cpu,ref")


def test_round_trip_preserves_graph(nb_path):
    m = read(nb_path)
    again = read(buffer=to_bytes(m.graph, m.manifest))
    g1, g2 = m.graph, again.graph
    assert [(n.op, n.inputs, n.outputs, n.attrs, n.name, n.kernel) for n in g1.nodes] == \
           [(n.op, n.inputs, n.outputs, n.attrs, n.name, n.kernel) for n in g2.nodes]
    assert (g1.inputs, g1.outputs, g1.metadata) == (g2.inputs, g2.outputs, g2.metadata)
    assert set(g1.tensors) == set(g2.tensors)
    for k, t in g1.tensors.items():
        u = g2.tensors[k]
        assert (t.dtype, t.shape) == (u.dtype, u.shape), k
        assert (t.data is None) == (u.data is None), k
        if t.data is not None:
            np.testing.assert_array_equal(t.data, u.data)
    assert m.manifest == again.manifest
    assert m.graph.tensors["x"].shape == ("N", 3, 16, 16)  # the dynamic batch stays symbolic


def test_deterministic(tmp_path):
    """Same model and flags -> the same bytes, whatever the output path."""
    paths = []
    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
        paths.append(convert(tiny_cnn(), str(tmp_path / sub), valid_targets="cpu,ref"))
    assert open(paths[0], "rb").read() == open(paths[1], "rb").read()


def test_blobs_aligned_and_zero_copy(nb_path):
    m = read(nb_path)
    size = os.path.getsize(nb_path)
    header = int.from_bytes(open(nb_path, "rb").read(4), "little") + 4
    data_start = -(-header // ALIGN) * ALIGN
    for t in m.graph.tensors.values():
        if t.data is None:
            continue
        assert not t.data.flags.owndata and not t.data.flags.writeable
        addr = t.data.__array_interface__["data"][0]
        owner = t.data
        while isinstance(owner, (np.ndarray, memoryview)):
            owner = owner.base if isinstance(owner, np.ndarray) else owner.obj
        import mmap
        assert isinstance(owner, mmap.mmap)  # a view of the mapped file, not a copy
        offset = addr - np.frombuffer(owner, np.uint8).__array_interface__["data"][0]
        assert offset % ALIGN == 0 and data_start <= offset < size - TRAILER.size


def test_manifest_records_source_and_flags(nb_path):
    m = read(nb_path)
    src = os.path.join(os.path.dirname(nb_path), "model.onnx")
    import hashlib
    assert m.manifest.source_sha256 == hashlib.sha256(open(src, "rb").read()).hexdigest()
    assert m.manifest.source_format == "onnx"
    assert m.manifest.flags["valid_targets"] == "cpu,ref"
    assert m.schema_version == SCHEMA_VERSION and m.producer_version.startswith("liteopt ")


def test_golden_file_still_reads_and_rewrites_identically():
    """A schema change that alters the bytes of this tiny committed model fails here: bump
    SCHEMA_VERSION if readers must refuse old files, then regenerate with scripts/make_golden.py."""
    m = read(GOLDEN)
    y = load(GOLDEN)({"x": X})["y"]
    np.testing.assert_allclose(y, run_ort(tiny_cnn(), {"x": X})[0], rtol=1e-5, atol=1e-6)
    assert to_bytes(m.graph, m.manifest).replace(m.producer_version.encode(), b"") == \
        open(GOLDEN, "rb").read().replace(m.producer_version.encode(), b"")


def test_version_2_files_still_read():
    """Files of the previous format version (no compressed blobs) load and run unchanged."""
    m = read(GOLDEN_V2)
    assert m.schema_version == 2 < SCHEMA_VERSION
    np.testing.assert_allclose(load(GOLDEN_V2)({"x": X})["y"], run_ort(tiny_cnn(), {"x": X})[0], rtol=1e-5, atol=1e-6)


def test_a_fused_hard_sigmoid_of_an_older_file_keeps_its_slope():
    """Before act_alpha carried hard_sigmoid's slope, opt fused only the default slope 0.2 and wrote act_alpha 0:
    such a file still computes clip(0.2 x + 0.5, 0, 1)."""
    from liteopt.ir import DType, Graph, Node, Tensor
    from liteopt.ir.registry import evaluate
    f = DType.FLOAT32
    wt = np.random.default_rng(3).standard_normal((4, 3, 1, 1)).astype(np.float32)
    tensors = {"x": Tensor("x", f, (1, 3, 5, 5)), "w": Tensor("w", f, (4, 3, 1, 1), data=wt),
               "y": Tensor("y", f, (1, 4, 5, 5))}
    conv = Node("conv2d", ["x", "w", ""], ["y"], {"act_type": "hard_sigmoid", "act_alpha": 0.0}, "conv")
    g = Graph([conv], ["x"], ["y"], tensors)
    m = read(buffer=to_bytes(g))
    assert m.graph.nodes[0].attrs["act_alpha"] == pytest.approx(0.2)
    x = np.random.default_rng(4).standard_normal((1, 3, 5, 5)).astype(np.float32) * 4
    want = np.clip(np.einsum("oc,nchw->nohw", wt[:, :, 0, 0], x) * 0.2 + 0.5, 0, 1)
    np.testing.assert_allclose(evaluate(m.graph, {"x": x})[0], want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(load(buffer=to_bytes(g))({"x": x})["y"], want, rtol=1e-5, atol=1e-6)


# --- validation ---------------------------------------------------------------------------------

def _expect_error(data: bytes, tmp_path, name="bad.nb"):
    p = tmp_path / name
    p.write_bytes(data)
    with pytest.raises(NbFormatError) as e:
        read(str(p))
    assert str(p) in str(e.value)
    with pytest.raises(NbFormatError):
        read(buffer=data)
    return str(e.value)


def test_missing_empty_and_foreign_files(tmp_path):
    with pytest.raises(NbFormatError, match="no such file"):
        read(str(tmp_path / "nope.nb"))
    with pytest.raises(NbFormatError, match="directory"):
        read(str(tmp_path))
    assert "empty" in _expect_error(b"", tmp_path)
    assert "not a liteopt" in _expect_error(b"PK\x03\x04" + b"\0" * 100, tmp_path)
    onnx_bytes = tiny_cnn().SerializeToString()
    _expect_error(onnx_bytes, tmp_path)


def test_every_truncation_is_an_error(nb_path, tmp_path):
    data = open(nb_path, "rb").read()
    for n in sorted(set(range(0, len(data), max(1, len(data) // 200))) | {len(data) - 1, len(data) - 16, 4, 8, 12}):
        _expect_error(data[:n], tmp_path)


def test_random_corruption_never_escapes(nb_path, tmp_path):
    data = open(nb_path, "rb").read()
    rng = np.random.default_rng(7)
    for i in range(300):
        buf = bytearray(data)
        for _ in range(int(rng.integers(1, 4))):
            pos = int(rng.integers(0, len(buf)))
            buf[pos] ^= int(rng.integers(1, 256))
        msg = _expect_error(bytes(buf), tmp_path)
        assert "checksum" in msg or "trailer" in msg or "identifier" in msg or "truncated" in msg or "corrupt" in msg or "liteopt" in msg


def test_newer_schema_version_is_refused_with_advice(nb_path, tmp_path, monkeypatch):
    import importlib
    w = importlib.import_module("liteopt.format.write")
    m = read(nb_path)
    monkeypatch.setattr(w, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    msg = _expect_error(w.to_bytes(m.graph, m.manifest), tmp_path)
    assert f"version {SCHEMA_VERSION + 1}" in msg and "convert the model again" in msg


def test_predictor_api_raises_our_error_on_corrupt_file(nb_path, tmp_path):
    data = bytearray(open(nb_path, "rb").read())
    data[len(data) // 2] ^= 0xFF
    p = tmp_path / "c.nb"
    p.write_bytes(bytes(data))
    cfg = MobileConfig()
    cfg.set_model_from_file(str(p))
    with pytest.raises(NbFormatError):
        create_paddle_predictor(cfg)
    cfg.set_model_from_buffer(bytes(data))
    with pytest.raises(NbFormatError):
        create_paddle_predictor(cfg)
