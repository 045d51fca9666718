"""The TensorFlow front end: frozen GraphDefs made by scripts/make_tf_fixtures.py (with tensorflow-cpu, a
dev tool) and stored in tests/data/tf/ with the outputs TensorFlow computed. Converted with opt, run on the
cpu kernels, compared with those outputs; each TF convolution must end as exactly one conv op in the .nb.
TensorFlow is not needed here (only the descriptor-clash test uses it when it is installed)."""
from __future__ import annotations

import glob
import importlib.util
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from liteopt.converters.tensorflow import load_tf
from liteopt.converters.tensorflow.loader import read_graphdef
from liteopt.converters.tensorflow.proto import graph_pb2, tensor_pb2
from liteopt.format import read
from liteopt.ir.errors import ConversionError, UnsupportedOpsError
from liteopt.opt import optimize
from liteopt.runtime import load

DATA = os.path.join(os.path.dirname(__file__), "..", "data", "tf")
FIXTURES = sorted(os.path.splitext(os.path.basename(p))[0] for p in glob.glob(os.path.join(DATA, "*.npz")))
TOL = 1e-4
TF_CONVS = ("Conv2D", "DepthwiseConv2dNative", "Conv2DBackpropInput")
IR_CONVS = ("conv2d", "depthwise_conv2d", "conv2d_transpose")
TF_PADS = ("Pad", "PadV2", "MirrorPad")


def model_path(name: str) -> str:
    return next(p for p in (os.path.join(DATA, name + ext) for ext in (".pb", ".pbtxt")) if os.path.exists(p))


def fixture_data(name: str):
    d = np.load(os.path.join(DATA, name + ".npz"))
    meta = json.loads(str(d["meta"]))
    feeds = {k: d[k] for k in d.files if ":" not in k and k != "meta"}
    refs = {k[4:]: d[k] for k in d.files if k.startswith("out:")}
    return feeds, refs, {k: tuple(v) for k, v in meta["input_shapes"].items()}


def second_run(name: str):
    """Feeds and TF outputs at other sizes of the dynamic dims, if the fixture has them."""
    d = np.load(os.path.join(DATA, name + ".npz"))
    return ({k[5:]: d[k] for k in d.files if k.startswith("also:")},
            {k[9:]: d[k] for k in d.files if k.startswith("also_out:")})


def close(got, want, what):
    assert got.shape == want.shape, f"{what}: shape {got.shape} != TensorFlow's {want.shape}"
    assert got.dtype == want.dtype, f"{what}: dtype {got.dtype} != TensorFlow's {want.dtype}"
    err = np.abs(got.astype(np.float64) - want).max() / max(np.abs(want).max(), 1e-30)
    assert err <= TOL, f"{what}: max|diff|/max|ref| = {err:.3g}"


def tf_counts(path: str):
    """(TF conv nodes, TF pad nodes not feeding a conv) of a GraphDef."""
    g = read_graphdef(path)
    consumers: dict[str, list[str]] = {}
    for n in g.node:
        for i in n.input:
            consumers.setdefault(i.split(":")[0].lstrip("^"), []).append(n.op)
    convs = sum(n.op in TF_CONVS for n in g.node)
    pads = sum(n.op in TF_PADS and not all(c in TF_CONVS for c in consumers.get(n.name, [])) for n in g.node)
    return convs, pads


@pytest.mark.parametrize("name", FIXTURES)
def test_fixture_matches_tensorflow(tmp_path, name):
    feeds, refs, shapes = fixture_data(name)
    path = model_path(name)
    r = optimize(model_file=path, optimize_out=str(tmp_path / name), valid_targets="cpu", input_shapes=shapes or None)
    pred = load(r.path)
    for feeds, refs in ((feeds, refs), second_run(name)):
        if not feeds:
            continue
        got = pred(feeds)
        assert sorted(got) == sorted(refs)
        for k, want in refs.items():
            close(got[k], want, f"{name}:{k}")
    ops = read(r.path).graph.op_counts()
    convs, pads = tf_counts(path)
    assert sum(ops.get(o, 0) for o in IR_CONVS) == convs, ops   # each TF conv is one conv op
    assert ops.get("pad", 0) == pads, ops                        # pads feeding convs are merged into them


@pytest.mark.parametrize("name", ["mobilenet_fused_bn", "mtcnn_pnet", "pad_same_valid", "dilated", "deconv",
                                  "keras_mobilenet_like"])
def test_layout_transposes_only_at_the_boundaries(tmp_path, name):
    """Inside, everything runs in NCHW: one transpose per input, at most one per output, none between."""
    feeds, refs, shapes = fixture_data(name)
    r = optimize(model_file=model_path(name), optimize_out=str(tmp_path / name), valid_targets="cpu",
                 input_shapes=shapes or None)
    assert read(r.path).graph.op_counts().get("transpose2", 0) <= len(feeds) + len(refs)


def test_convs_fuse_their_epilogues(tmp_path):
    """BN, BiasAdd and activations meet the conv in NCHW, so the passes fold them in."""
    _, _, shapes = fixture_data("mobilenet_fused_bn")
    r = optimize(model_file=model_path("mobilenet_fused_bn"), optimize_out=str(tmp_path / "m"), valid_targets="cpu",
                 input_shapes=shapes)
    ops = read(r.path).graph.op_counts()
    assert "batch_norm" not in ops and "relu6" not in ops, ops


def test_dynamic_batch_one_nb_several_sizes(tmp_path):
    """The slicing fixture has a dynamic batch (shape arithmetic at run time): one .nb, two batch sizes."""
    feeds, refs, _ = fixture_data("slicing")
    r = optimize(model_file=model_path("slicing"), optimize_out=str(tmp_path / "s"), valid_targets="cpu")
    pred = load(r.path)
    got = pred(feeds)
    for k, want in refs.items():
        close(got[k], want, k)
    one = pred({"x": feeds["x"][:1]})
    assert one["Identity_4"].shape == (1, 5)
    close(one["Identity_4"], refs["Identity_4"][:1], "batch 1")


def test_inputs_outputs_names_and_layout():
    g = load_tf(model_path("mtcnn_pnet"), {"input": (1, 25, 31, 3)})
    assert g.inputs == ["input"] and g.outputs == ["Identity", "Identity_1"]
    assert g.tensors["input"].shape == (1, 25, 31, 3)
    assert g.tensors["Identity"].shape == (1, 8, 11, 2)  # NHWC, as TF gives it
    g = load_tf(model_path("mtcnn_pnet"), {"input": (1, 25, 31, 3)})
    g.verify()


def test_model_dir_with_one_pb(tmp_path):
    d = tmp_path / "m"
    d.mkdir()
    shutil.copy(model_path("dilated"), d / "frozen.pb")
    feeds, refs, _ = fixture_data("dilated")
    r = optimize(model_dir=str(d), optimize_out=str(tmp_path / "out"), valid_targets="cpu")
    close(load(r.path)(feeds)["Identity"], refs["Identity"], "Identity")


# --- errors ------------------------------------------------------------------------------------

def node(g, name, op, inputs=(), **attrs):
    n = g.node.add(name=name, op=op)
    n.input.extend(inputs)
    for k, v in attrs.items():
        a = n.attr[k]
        if isinstance(v, bool):
            a.b = v
        elif isinstance(v, int):
            a.i = v
        elif isinstance(v, float):
            a.f = v
        elif isinstance(v, str):
            a.s = v.encode()
        elif isinstance(v, tensor_pb2.TensorProto):
            a.tensor.CopyFrom(v)
        elif isinstance(v, tuple) and k == "shape":
            a.shape.dim.extend([a.shape.Dim(size=d) for d in v])
        elif isinstance(v, tuple):
            a.list.i.extend(v)
    return n


def placeholder(g, name="x", shape=(1, 4, 4, 3)):
    n = node(g, name, "Placeholder", shape=shape)
    n.attr["dtype"].type = 1
    return n


def const(g, name, arr):
    arr = np.asarray(arr, np.float32)
    t = tensor_pb2.TensorProto(dtype=1, tensor_content=arr.tobytes())
    t.tensor_shape.dim.extend([t.tensor_shape.Dim(size=d) for d in arr.shape])
    return node(g, name, "Const", value=t)


def write(tmp_path, g, name="g.pb"):
    g.versions.producer = 1
    p = tmp_path / name
    p.write_bytes(g.SerializeToString())
    return str(p)


def test_unsupported_ops_listed_at_once(tmp_path):
    g = graph_pb2.GraphDef()
    placeholder(g)
    node(g, "a", "Erfinv", ["x"])
    node(g, "b", "Relu", ["a"])
    node(g, "c", "SpaceToBatchND", ["b"])
    node(g, "d", "Erfinv", ["c"])
    with pytest.raises(UnsupportedOpsError) as e:
        load_tf(write(tmp_path, g))
    assert e.value.unsupported == {"Erfinv": ["a", "d"], "SpaceToBatchND": ["c"]}
    assert "'Erfinv' x2 (a, d)" in str(e.value) and "g.pb" in str(e.value)


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty", "text"])
def test_corrupt_files_name_the_file(tmp_path, damage):
    src = open(model_path("mtcnn_pnet"), "rb").read()
    data = {"garbage": b"\xff\x00 not a graph" * 10, "truncated": src[:len(src) // 3], "empty": b"",
            "text": b"node { name: 'x' op: "}[damage]
    p = tmp_path / ("bad.pbtxt" if damage == "text" else "bad.pb")
    p.write_bytes(data)
    with pytest.raises(ConversionError, match="bad.pb"):
        load_tf(str(p))


def test_truncated_anywhere_names_the_file(tmp_path):
    """Every prefix of a GraphDef is refused (a cut between two nodes parses, but lacks `versions`)."""
    src = open(model_path("dilated"), "rb").read()
    p = tmp_path / "cut.pb"
    for cut in range(len(src)):
        p.write_bytes(src[:cut])
        with pytest.raises(ConversionError, match="cut.pb"):
            load_tf(str(p))


def test_dead_nodes_are_not_converted(tmp_path):
    """A string Const or an unsupported op nobody reads (and that is not an output) does not matter."""
    g = graph_pb2.GraphDef()
    placeholder(g, shape=(2,))
    node(g, "y", "Relu", ["x"])
    n = node(g, "filename", "Const", value=tensor_pb2.TensorProto(dtype=7, string_val=[b"model.ckpt"]))
    n.attr["dtype"].type = 7
    node(g, "save", "SaveV2", ["filename"])
    node(g, "deps", "NoOp", ["^save"])
    with pytest.raises(UnsupportedOpsError, match="SaveV2"):  # a sink: an output, so it matters
        load_tf(write(tmp_path, g))
    del g.node[-2:]
    assert load_tf(write(tmp_path, g)).outputs == ["y"]


@pytest.mark.parametrize("dtype,field,vals,want", [
    (1, "float_val", [1.5], np.full((2, 3), 1.5, np.float32)),          # one value fills the shape
    (3, "int_val", [1, 2], np.array([[1, 2, 2], [2, 2, 2]], np.int32)),  # the last value repeats
    (2, "double_val", [0.25] * 6, np.full((2, 3), 0.25, np.float32)),    # doubles narrowed
    (22, "uint32_val", [7] * 6, np.full((2, 3), 7, np.int64)),           # unsigned narrowed
    (10, "bool_val", [True, False] * 3, np.array([[1, 0, 1], [0, 1, 0]], bool)),
])
def test_const_tensor_encodings(dtype, field, vals, want):
    from liteopt.converters.tensorflow.loader import tensor_array
    t = tensor_pb2.TensorProto(dtype=dtype)
    t.tensor_shape.dim.extend([t.tensor_shape.Dim(size=d) for d in (2, 3)])
    getattr(t, field).extend(vals)
    got = tensor_array(t)
    assert got.dtype == want.dtype and np.array_equal(got, want)
    half = tensor_pb2.TensorProto(dtype=19, half_val=np.array([1.5, -2], np.float16).view(np.uint16).tolist())
    half.tensor_shape.dim.add(size=2)
    assert np.array_equal(tensor_array(half), np.array([1.5, -2], np.float16))


def test_same_stride_2_needs_static_size(tmp_path):
    """SAME with stride 2 pads by the parity of the size (a 2x2 window does not: P-Net stays dynamic)."""
    g = graph_pb2.GraphDef()
    placeholder(g, shape=(1, -1, -1, 3))
    node(g, "pool", "MaxPool", ["x"], ksize=(1, 3, 3, 1), strides=(1, 2, 2, 1), padding="SAME")
    with pytest.raises(ConversionError, match=r"'pool' \(MaxPool\).*--input_shape"):
        load_tf(write(tmp_path, g))
    assert load_tf(write(tmp_path, g), {"x": (1, 9, 8, 3)}).tensors["pool"].shape == (1, 5, 4, 3)


def test_input_shape_errors():
    with pytest.raises(ConversionError, match="no input named 'nope'"):
        load_tf(model_path("dilated"), {"nope": (1, 2, 3, 4)})
    with pytest.raises(ConversionError, match="dim 1 is fixed to 17"):
        load_tf(model_path("dilated"), {"x": (1, 18, 19, 3)})


def test_training_batch_norm_is_refused(tmp_path):
    g = graph_pb2.GraphDef()
    placeholder(g)
    for k in "sbmv":
        const(g, k, np.ones(3))
    node(g, "bn", "FusedBatchNormV3", ["x", "s", "b", "m", "v"], is_training=True, data_format="NHWC")
    with pytest.raises(ConversionError, match=r"'bn'.*training"):
        load_tf(write(tmp_path, g))


def test_unknown_attribute_and_missing_input_name_the_node(tmp_path):
    g = graph_pb2.GraphDef()
    placeholder(g)
    node(g, "r", "Relu", ["x"], frobnicate=3)
    with pytest.raises(ConversionError, match=r"'r'.*frobnicate"):
        load_tf(write(tmp_path, g))
    g = graph_pb2.GraphDef()
    placeholder(g)
    node(g, "r", "Relu", ["y"])
    with pytest.raises(ConversionError, match="no node 'y'"):
        load_tf(write(tmp_path, g))


def test_unsorted_graph_and_control_inputs(tmp_path):
    """A GraphDef need not be in dependency order; control inputs order nothing and are not data."""
    g = graph_pb2.GraphDef()
    node(g, "out", "Relu", ["mid", "^init"])
    node(g, "mid", "Mul", ["x", "two"])
    const(g, "two", 2.0)
    node(g, "init", "NoOp")
    placeholder(g, shape=(2, 3))
    x = np.array([[-1, 2, 3], [4, -5, 6]], np.float32)
    r = optimize(model_file=write(tmp_path, g), optimize_out=str(tmp_path / "o"), valid_targets="cpu")
    out = load(r.path)({"x": x})
    np.testing.assert_array_equal(out["out"], np.maximum(2 * x, 0))


def test_protos_do_not_clash_with_tensorflow():
    """Our descriptors live in package liteopt_tf under liteopt/...: no duplicate file or symbol with TF's."""
    assert graph_pb2.DESCRIPTOR.name.startswith("liteopt/") and graph_pb2.DESCRIPTOR.package == "liteopt_tf"
    if importlib.util.find_spec("tensorflow") is None:
        pytest.skip("tensorflow is not installed")
    code = ("import tensorflow as tf\nfrom liteopt.converters.tensorflow.proto import graph_pb2\n"
            "from liteopt.converters.tensorflow import load_tf\n"
            "g = tf.Graph().as_graph_def()\nprint(graph_pb2.GraphDef.FromString(g.SerializeToString()))\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                       env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    assert r.returncode == 0, r.stderr[-2000:]
