"""Weight-only quantization and float16 storage: error bounds, per-channel scales, guards, end to end."""
from __future__ import annotations

import os

import numpy as np
import pytest
from onnx import helper

from helpers import make_model, run_ort

from liteopt.opt import optimize
from liteopt.passes import PassContext
from liteopt.passes.quantize_weights import _choose, cosine, quantize, sqnr_db
from liteopt.runtime import load

RNG = np.random.default_rng(0)


@pytest.mark.parametrize("bits,axis", [(8, 0), (16, 0), (8, 1)])
def test_round_trip_error_is_at_most_half_a_step(bits, axis):
    w = RNG.standard_normal((16, 8, 3, 3)).astype(np.float32)
    q, scale = quantize(w, axis, bits)
    assert q.dtype == (np.int8 if bits == 8 else np.int16)
    shape = [1] * 4
    shape[axis] = -1
    qmax = 2 ** (bits - 1) - 1
    ideal = np.abs(np.moveaxis(w, axis, 0).reshape(w.shape[axis], -1)).max(1) / qmax
    # the stored step is the ideal abs-max step rounded up to float16 (at most 0.05% larger)
    assert np.all(scale >= ideal - 1e-12) and np.all(scale <= ideal * (1 + 2 ** -10))
    err = np.abs(q * scale.reshape(shape) - w)
    assert np.all(err <= scale.reshape(shape) / 2 + 1e-7)
    assert qmax * (1 - 2 ** -10) <= np.abs(q).max() <= qmax


def test_per_channel_beats_per_tensor_with_one_large_channel():
    w = RNG.standard_normal((8, 16, 3, 3)).astype(np.float32)
    w[3] *= 100  # one channel with a much larger range
    q, scale = quantize(w, 0, 8)
    per_channel = q * scale.reshape(-1, 1, 1, 1)
    t_scale = np.abs(w).max() / 127  # the per-tensor alternative, computed independently
    per_tensor = np.clip(np.round(w / t_scale), -127, 127) * t_scale
    small = [c for c in range(8) if c != 3]
    assert sqnr_db(w[small], per_channel[small]) > sqnr_db(w[small], per_tensor[small]) + 20


def test_zero_channel_is_guarded():
    w = RNG.standard_normal((4, 2, 3, 3)).astype(np.float32)
    w[1] = 0
    q, scale = quantize(w, 0, 8)
    assert np.all(np.isfinite(scale)) and np.all(q[1] == 0)
    np.testing.assert_array_equal((q * scale.reshape(-1, 1, 1, 1))[1], 0)


def test_sqnr_and_cosine_reference_values():
    w = np.array([3.0, 4.0])
    assert sqnr_db(w, w) == float("inf")
    assert abs(sqnr_db(w, np.array([3.0, 4.5])) - 10 * np.log10(25 / 0.25)) < 1e-9
    assert abs(cosine(np.array([1.0, 0.0]), np.array([1.0, 1.0])) - 1 / np.sqrt(2)) < 1e-12


@pytest.mark.parametrize("values,reason", [(1e6, "range"), (1e-9, "flushed")])
def test_fp16_guard_keeps_float32(values, reason):
    w = (RNG.standard_normal((64, 32)) * values).astype(np.float32)
    layer = _choose(w, 0, PassContext(enable_fp16=True))
    assert layer.storage == "float32" and reason in layer.note


def test_min_sqnr_raises_bits_then_keeps_float():
    w = RNG.standard_normal((32, 64)).astype(np.float32)
    assert _choose(w, 0, PassContext(quant_type="QUANT_INT8")).storage == "int8"
    assert _choose(w, 0, PassContext(quant_type="QUANT_INT8", quant_min_sqnr=60)).storage == "int16"
    layer = _choose(w, 0, PassContext(quant_type="QUANT_INT8", quant_min_sqnr=200))
    assert layer.storage == "float32" and "quant_min_sqnr" in layer.note


def _conv_net(channels=((3, 32), (32, 64), (64, 64)), bias=True):
    """3x3 convs (weights w0, w1, ..., biases b0, b1, ...) with relus, then a global average pool."""
    nodes, inits, x = [], {}, "x"
    for i, (cin, cout) in enumerate(channels):
        inits[f"w{i}"] = (RNG.standard_normal((cout, cin, 3, 3)) * np.sqrt(2 / (cin * 9))).astype(np.float32)
        if bias:
            inits[f"b{i}"] = (RNG.standard_normal(cout) * 0.1).astype(np.float32)
        nodes += [helper.make_node("Conv", [x, f"w{i}"] + ([f"b{i}"] if bias else []), [f"c{i}"], pads=[1, 1, 1, 1]),
                  helper.make_node("Relu", [f"c{i}"], [f"r{i}"])]
        x = f"r{i}"
    nodes.append(helper.make_node("GlobalAveragePool", [x], ["y"]))
    return make_model(nodes, {"x": (np.float32, [1, 3, 16, 16])}, ["y"], inits)


@pytest.mark.parametrize("quant_type,max_ratio,min_cos", [("QUANT_INT8", 0.30, 0.999), ("QUANT_INT16", 0.55, 0.99999)])
def test_end_to_end_size_and_agreement(tmp_path, quant_type, max_ratio, min_cos):
    import onnx
    model = _conv_net()
    src = str(tmp_path / "m.onnx")
    onnx.save(model, src)
    fp32 = optimize(model_file=src, optimize_out=str(tmp_path / "f"), valid_targets="cpu,ref")
    q = optimize(model_file=src, optimize_out=str(tmp_path / "q"), valid_targets="cpu,ref", quant_model=True,
                 quant_type=quant_type)
    assert os.path.getsize(q.path) <= max_ratio * os.path.getsize(fp32.path)
    e2e = q.quantization["end_to_end"]
    assert e2e["cosine"] >= min_cos
    x = RNG.standard_normal((1, 3, 16, 16)).astype(np.float32)
    ref = run_ort(model, {"x": x})[0].ravel().astype(np.float64)
    got = load(q.path)({"x": x})["y"].ravel().astype(np.float64)
    assert ref @ got / np.linalg.norm(ref) / np.linalg.norm(got) >= min_cos
    storage = {entry["tensor"]: entry["storage"] for entry in q.quantization["layers"]}
    # weights per channel (from 256 values) at the requested bits, except that INT8 keeps its smallest layer (the
    # stem) in 16 bits within its size target; biases of 64 values per tensor in 16 bits; the first conv's
    # 32-value bias stays float32
    if quant_type == "QUANT_INT8":
        assert (storage["w0"], storage["w1"], storage["w2"]) == ("int16", "int8", "int8"), storage
    else:
        assert {storage[w] for w in ("w0", "w1", "w2")} == {"int16"}, storage
    assert storage["b1"] == storage["b2"] == "int16" and storage["b0"] == "float32"


def _int8_conv_net(tmp_path):
    """_conv_net saved and converted to INT8: (source path, the .nb's path, its graph read back)."""
    import onnx
    from liteopt.format import read
    src = str(tmp_path / "m.onnx")
    onnx.save(_conv_net(), src)
    q = optimize(model_file=src, optimize_out=str(tmp_path / "q"), valid_targets="cpu,ref", quant_model=True,
                 quant_type="QUANT_INT8")
    return src, q.path, read(q.path).graph


def test_per_tensor_bias_and_fp16_scales_round_trip(tmp_path):
    """Scales travel as float16 abs-max values and come back bit for bit; per-tensor scales have one value."""
    _, _, g = _int8_conv_net(tmp_path)
    from liteopt.ir.graph import scales_from_amax16
    quant = [t.quant for t in g.tensors.values() if t.quant is not None]
    for qi in quant:
        half = (qi.scale.astype(np.float64) * (2 ** (qi.bits - 1) - 1)).astype(np.float16)
        assert np.array_equal(scales_from_amax16(half, qi.bits), qi.scale)
    assert quant and any(qi.scale.size == 1 for qi in quant)


def _weight_bytes(graph) -> tuple[int, int]:
    """(float32 bytes, bytes the .nb stores) over the quantized weights of a graph read back from a file."""
    from liteopt.ir.graph import stored_bytes
    qs = [t for t in graph.tensors.values() if t.quant is not None]
    return (sum(4 * t.data.size for t in qs),
            sum(len(stored_bytes(t.data, True)) + 2 * np.size(t.quant.scale) for t in qs))


def test_int8_keeps_the_smallest_layers_in_16_bits_within_a_quarter_of_the_float_size(tmp_path):
    """Stems and small layers take 16 bits, smallest first, while the compressed weights stay within 25%."""
    import onnx
    from liteopt.format import read
    src = str(tmp_path / "m.onnx")
    onnx.save(_conv_net([(3, 16), (16, 32), (32, 64), (64, 128), (128, 128)], bias=False), src)
    q = optimize(model_file=src, optimize_out=str(tmp_path / "q"), quant_model=True, quant_type="QUANT_INT8")
    storage = {e["tensor"]: e["storage"] for e in q.quantization["layers"]}
    bits = [storage[f"w{i}"] for i in range(5)]  # in increasing size
    assert bits[0] == "int16" and bits[-1] == "int8", bits
    assert bits == sorted(bits, key=lambda b: b != "int16"), bits  # never a larger int16 after a smaller int8
    float_bytes, stored = _weight_bytes(read(q.path).graph)
    assert stored <= 0.25 * float_bytes
    q16 = optimize(model_file=src, optimize_out=str(tmp_path / "q16"), quant_model=True, quant_type="QUANT_INT16")
    assert q.quantization["end_to_end"]["cosine"] <= q16.quantization["end_to_end"]["cosine"]


def test_quantized_weights_are_stored_compressed_and_read_back_exactly(tmp_path):
    import onnx
    import zlib
    from liteopt.format import read
    from liteopt.format.schema import TRAILER
    from liteopt.ir.errors import NbFormatError
    src, path, g = _int8_conv_net(tmp_path)
    w2 = g.tensors["w2"]
    expect, _ = quantize(onnx.numpy_helper.to_array(
        [i for i in onnx.load(src).graph.initializer if i.name == "w2"][0]), 0, 8)
    np.testing.assert_array_equal(w2.data, expect)  # what the file holds inflates to the very integers
    raw = sum(t.data.nbytes for t in g.tensors.values() if t.quant is not None)
    assert _weight_bytes(g)[1] < raw  # zlib found something to save
    # a corrupt compressed blob (with the data checksum recomputed, so that only inflating can tell) is an error
    # that names the constant
    data = bytearray(open(path, "rb").read())
    packed = zlib.compress(np.ascontiguousarray(w2.data).tobytes(), 9)
    at = bytes(data).index(packed)
    data[at + len(packed) // 2] ^= 0x55
    ident, hsize, hcrc, _ = TRAILER.unpack_from(data, len(data) - TRAILER.size)
    start = -(-(hsize + 4) // 64) * 64
    data[-TRAILER.size:] = TRAILER.pack(ident, hsize, hcrc, zlib.crc32(bytes(data[start:len(data) - TRAILER.size])))
    with pytest.raises(NbFormatError, match="'w2'.*corrupt compressed weights"):
        read(buffer=bytes(data))


def test_end_to_end_check_finds_input_sizes_the_model_accepts(tmp_path):
    """Dynamic dims get 224 first; a model that cannot take that (here a reshape wants H*W = 64*64) is checked
    at the next size that runs, and the report says which."""
    import onnx
    w = (RNG.standard_normal((4096, 300)) / 64).astype(np.float32)
    nodes = [helper.make_node("Reshape", ["x", "s"], ["r"]), helper.make_node("MatMul", ["r", "w"], ["y"])]
    model = make_model(nodes, {"x": (np.float32, [1, 3, "H", "W"])}, ["y"],
                       {"s": np.array([1, 3, 4096], np.int64), "w": w})
    src = str(tmp_path / "m.onnx")
    onnx.save(model, src)
    q = optimize(model_file=src, optimize_out=str(tmp_path / "q"), quant_model=True, quant_type="QUANT_INT8")
    e2e = q.quantization["end_to_end"]
    assert e2e["input_shapes"] == {"x": [1, 3, 64, 64]} and e2e["cosine"] >= 0.999, e2e
