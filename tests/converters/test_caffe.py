"""The Caffe front end: prototxt + caffemodel pairs built here from numpy weights, converted with opt and
compared with OpenCV's Caffe importer (cv2.dnn.readNetFromCaffe) on the same input."""
from __future__ import annotations

import numpy as np
import pytest
from google.protobuf import text_format

from liteopt.converters.caffe import caffe_pb2 as pb
from liteopt.format import read
from liteopt.ir.errors import ConversionError, UnsupportedOpsError
from liteopt.opt import optimize
from liteopt.runtime import load

cv2 = pytest.importorskip("cv2")  # opencv-python-headless<5 is a test dependency
RNG = np.random.default_rng(0)
TOL = 1e-4


def blob(a):
    b = pb.BlobProto()
    b.shape.dim.extend(np.shape(a))
    b.data.extend(np.asarray(a, np.float32).ravel())
    return b


def build(tmp_path, proto: str, weights: dict, v1: bool = False, name="net"):
    net = pb.NetParameter()
    text_format.Parse(proto, net)
    for lyr in (net.layers if v1 else net.layer):
        for a in weights.get(lyr.name, []):
            lyr.blobs.append(blob(a))
    pt, cm = tmp_path / f"{name}.prototxt", tmp_path / f"{name}.caffemodel"
    pt.write_text(proto)
    cm.write_bytes(net.SerializeToString())
    return str(pt), str(cm)


def run_ours(tmp_path, pt, cm, feeds: dict, **kw) -> dict:
    r_ = optimize(model_file=pt, param_file=cm, optimize_out=str(tmp_path / "out"), valid_targets="cpu", **kw)
    return load(r_.path)(feeds)


def close(got, want, tol=TOL):
    assert got.shape == want.shape, (got.shape, want.shape)
    err = np.abs(got - want).max() / max(np.abs(want).max(), 1e-30)
    assert err <= tol, f"max|diff|/max|ref| = {err:.3g}"


def check(tmp_path, proto, weights, x, v1=False, tol=TOL, input_name="data"):
    """liteopt vs OpenCV on input x, every output (by name when OpenCV's output layer names are our output
    blob names, else in order); returns the op counts of the .nb."""
    pt, cm = build(tmp_path, proto, weights, v1)
    feeds = x if isinstance(x, dict) else {input_name: x}
    ref_net = cv2.dnn.readNetFromCaffe(pt, cm)
    for k, v in feeds.items():
        ref_net.setInput(v, k)
    names = list(ref_net.getUnconnectedOutLayersNames())
    refs = ref_net.forward(names)
    r_ = optimize(model_file=pt, param_file=cm, optimize_out=str(tmp_path / "out"), valid_targets="cpu")
    got = load(r_.path)(feeds)
    assert len(got) == len(names), (list(got), names)
    pairs = [(got[n], v) for n, v in zip(names, refs)] if set(names) == set(got) else zip(got.values(), refs)
    for g, want in pairs:
        close(g, want, tol)
    return read(r_.path).graph.op_counts()


def r(*shape, scale=1.0):
    return RNG.standard_normal(shape) * scale


HEAD = 'name: "t"\ninput: "data"\ninput_dim: 1 input_dim: 4 input_dim: 11 input_dim: 12\n'
X = RNG.standard_normal((1, 4, 11, 12)).astype(np.float32)


@pytest.mark.parametrize("conv,wshape", [
    ("num_output: 6 kernel_size: 3 pad: 1", (6, 4, 3, 3)),
    ("num_output: 6 kernel_h: 3 kernel_w: 1 pad_h: 1 pad_w: 0 stride_h: 2 stride_w: 1", (6, 4, 3, 1)),
    ("num_output: 4 kernel_size: 3 group: 4 pad: 1 stride: 2", (4, 1, 3, 3)),
    ("num_output: 6 kernel_size: 3 dilation: 2 pad: 2 bias_term: false", (6, 4, 3, 3)),
    ("num_output: 8 kernel_size: 1 group: 2", (8, 2, 1, 1)),
])
def test_convolution(tmp_path, conv, wshape):
    bias = "bias_term: false" not in conv
    proto = HEAD + f'layer {{ name: "c" type: "Convolution" bottom: "data" top: "c" convolution_param {{ {conv} }} }}'
    check(tmp_path, proto, {"c": [r(*wshape)] + ([r(wshape[0])] if bias else [])}, X)


def test_deconvolution(tmp_path):
    proto = HEAD + 'layer { name: "d" type: "Deconvolution" bottom: "data" top: "d" ' \
                   'convolution_param { num_output: 3 kernel_size: 4 stride: 2 pad: 1 } }'
    check(tmp_path, proto, {"d": [r(4, 3, 4, 4), r(3)]}, X)


@pytest.mark.parametrize("pool", [
    # H=11, W=12: with k2 s2 p1 the last row window would start in the padding: Caffe drops it (11 -> 6 rows)
    "pool: MAX kernel_size: 2 stride: 2 pad: 1", "pool: AVE kernel_size: 2 stride: 2 pad: 1",
    "pool: AVE kernel_size: 3 stride: 3 pad: 1", "pool: AVE kernel_size: 4 stride: 3 pad: 2",
    "pool: MAX kernel_size: 3 stride: 1 pad: 1", "pool: MAX global_pooling: true",
    "pool: MAX kernel_size: 3 stride: 2", "pool: AVE kernel_size: 3 stride: 2 pad: 1",
                                  "pool: MAX kernel_size: 2 stride: 2", "pool: AVE kernel_size: 2 stride: 2",
                                  "pool: AVE global_pooling: true", "pool: MAX kernel_h: 3 kernel_w: 2 stride: 2 pad: 1"])
def test_pooling_ceil_mode(tmp_path, pool):
    proto = HEAD + f'layer {{ name: "p" type: "Pooling" bottom: "data" top: "p" pooling_param {{ {pool} }} }}'
    check(tmp_path, proto, {}, X)


@pytest.mark.parametrize("layer,params,weights", [
    ("ReLU", "", {}), ("ReLU", "relu_param { negative_slope: 0.1 }", {}), ("Sigmoid", "", {}), ("TanH", "", {}),
    ("AbsVal", "", {}), ("ELU", "elu_param { alpha: 0.5 }", {}),
    ("Power", "power_param { power: 2 scale: 0.5 shift: 1 }", {}),
    ("PReLU", "", {"l": [r(4) * 0.3]}), ("PReLU", "prelu_param { channel_shared: true }", {"l": [r(1) * 0.3]}),
    ("BatchNorm", "batch_norm_param { eps: 0.001 }", {"l": [r(4), np.abs(r(4)) + 0.5, [0.5]]}),
    ("Scale", "scale_param { bias_term: true }", {"l": [r(4), r(4)]}),
    ("Softmax", "", {}), ("Dropout", "", {}),
    ("LRN", "lrn_param { local_size: 3 alpha: 0.1 beta: 0.75 }", {}),  # (OpenCV ignores k != 1)
    ("Normalize", "norm_param { across_spatial: false channel_shared: false }", {"l": [np.abs(r(4)) + 1]}),
    ("Normalize", "norm_param { across_spatial: true channel_shared: true }", {"l": [[2.0]]}),
    ("Flatten", "", {}), ("Permute", "permute_param { order: 0 order: 2 order: 3 order: 1 }", {}),
    ("Reshape", "reshape_param { shape { dim: 0 dim: -1 dim: 6 } }", {}),
    ("InnerProduct", "inner_product_param { num_output: 7 }", {"l": [r(7, 4 * 11 * 12) * 0.1, r(7)]}),
    ("InnerProduct", "inner_product_param { num_output: 5 axis: 2 }", {"l": [r(5, 11 * 12), r(5)]}),
    ("InnerProduct", "inner_product_param { num_output: 5 bias_term: false }", {"l": [r(5, 4 * 11 * 12) * 0.1]}),
    ("ReLU6", "", {}), ("Softmax", "softmax_param { axis: 2 }", {}), ("Softmax", "softmax_param { axis: -1 }", {}),
    ("Interp", "interp_param { zoom_factor: 2 }", {}), ("Interp", "interp_param { height: 9 width: 17 }", {}),
    ("Reshape", "reshape_param { shape { dim: 2 dim: 2 } axis: 1 num_axes: 1 }", {}),
    ("Flatten", "flatten_param { axis: 2 }", {}), ("Flatten", "flatten_param { axis: 1 end_axis: 2 }", {}),
    ("Scale", "scale_param { axis: 0 num_axes: 2 }", {"l": [r(1, 4)]}),
    ("Scale", "scale_param { num_axes: 0 bias_term: true }", {"l": [r(1), r(1)]}),
    ("Scale", "scale_param { axis: 1 num_axes: -1 }", {"l": [r(4, 11, 12)]}),
    ("Scale", "scale_param { axis: 2 }", {"l": [r(11)]}),
    ("Power", "power_param { power: 0.5 }", {}), ("Power", "power_param { power: 3 }", {}),
    ("Power", "power_param { scale: 2 }", {}), ("Power", "", {}),
    ("BatchNorm", "", {"l": [r(4), np.abs(r(4)) + 0.5, [0.0]]}),  # factor 0: zero statistics
    ("BatchNorm", "", {"l": [r(4), np.abs(r(4)) + 0.5]}),  # no factor blob (OpenCV's reading: 1)
    ("BatchNorm", "batch_norm_param { use_global_stats: false }", {"l": [r(4), np.abs(r(4)) + 0.5, [1.0]]}),
    ("LRN", "lrn_param { local_size: 5 alpha: 0.3 beta: 0.6 }", {}),
    ("LRN", "lrn_param { local_size: 3 alpha: 0.5 beta: 0.75 norm_region: WITHIN_CHANNEL }", {}),
    ("Normalize", "norm_param { across_spatial: false channel_shared: true eps: 0.01 }", {"l": [[3.0]]}),
    ("Deconvolution", "convolution_param { num_output: 4 group: 4 kernel_size: 4 stride: 2 pad: 1 bias_term: false }",
     {"l": [r(4, 1, 4, 4)]}),
    ("Deconvolution", "convolution_param { num_output: 6 group: 2 kernel_h: 3 kernel_w: 2 stride_h: 2 stride_w: 1 "
                      "pad_h: 1 pad_w: 1 }", {"l": [r(4, 3, 3, 2), r(6)]}),
    ("Convolution", "convolution_param { num_output: 6 kernel_size: 3 kernel_size: 2 stride: 2 stride: 1 pad: 1 pad: 0 }",
     {"l": [r(6, 4, 3, 2), r(6)]}),
    ("Convolution", "convolution_param { num_output: 8 kernel_size: 3 group: 4 pad: 1 }", {"l": [r(8, 1, 3, 3), r(8)]}),
])
def test_single_layers(tmp_path, layer, params, weights):
    x = np.abs(X) + 0.1 if layer == "Power" else X
    proto = HEAD + f'layer {{ name: "l" type: "{layer}" bottom: "data" top: "l" {params} }}'
    check(tmp_path, proto, weights, x)


def test_bias_layer(tmp_path):
    """OpenCV has no Bias layer: numpy is the reference (x + b per channel)."""
    b = r(4)
    pt, cm = build(tmp_path, HEAD + 'layer { name: "l" type: "Bias" bottom: "data" top: "l" }', {"l": [b]})
    got = load(optimize(model_file=pt, param_file=cm, optimize_out=str(tmp_path / "o")).path)({"data": X})["l"]
    np.testing.assert_allclose(got, X + b.reshape(1, 4, 1, 1).astype(np.float32), rtol=1e-6)


@pytest.mark.parametrize("op", ["operation: SUM coeff: 0.5 coeff: -2", "operation: PROD", "operation: MAX"])
def test_eltwise_concat_slice(tmp_path, op):
    proto = HEAD + f'''
layer {{ name: "s" type: "Slice" bottom: "data" top: "a" top: "b" slice_param {{ axis: 1 slice_point: 2 }} }}
layer {{ name: "e" type: "Eltwise" bottom: "a" bottom: "b" top: "e" eltwise_param {{ {op} }} }}
layer {{ name: "c" type: "Concat" bottom: "e" bottom: "data" top: "c" concat_param {{ axis: 1 }} }}'''
    check(tmp_path, proto, {}, X)


def test_crop(tmp_path):
    proto = 'name: "t"\ninput: "data"\ninput_dim: 1 input_dim: 4 input_dim: 11 input_dim: 12\n' \
            'input: "ref"\ninput_dim: 1 input_dim: 4 input_dim: 7 input_dim: 8\n' \
            'layer { name: "cr" type: "Crop" bottom: "data" bottom: "ref" top: "cr" crop_param { axis: 2 offset: 2 offset: 1 } }'
    pt, cm = build(tmp_path, proto, {})
    ref_in = RNG.standard_normal((1, 4, 7, 8)).astype(np.float32)
    net = cv2.dnn.readNetFromCaffe(pt, cm)
    net.setInput(X, "data")
    net.setInput(ref_in, "ref")
    want = net.forward()
    got = load(optimize(model_file=pt, param_file=cm, optimize_out=str(tmp_path / "o")).path)({"data": X, "ref": ref_in})
    np.testing.assert_allclose(got["cr"], want, rtol=1e-6)


def test_conv_bn_scale_relu_folds_into_one_conv(tmp_path):
    proto = HEAD + '''
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv" convolution_param { num_output: 8 kernel_size: 3 pad: 1 bias_term: false } }
layer { name: "bn" type: "BatchNorm" bottom: "conv" top: "conv" batch_norm_param { use_global_stats: true } }
layer { name: "scale" type: "Scale" bottom: "conv" top: "conv" scale_param { bias_term: true } }
layer { name: "relu" type: "ReLU" bottom: "conv" top: "conv" }
layer { name: "dw" type: "Convolution" bottom: "conv" top: "dw" convolution_param { num_output: 8 group: 8 kernel_size: 3 pad: 1 stride: 2 bias_term: false } }
layer { name: "dw_bn" type: "BatchNorm" bottom: "dw" top: "dw" }
layer { name: "dw_scale" type: "Scale" bottom: "dw" top: "dw" scale_param { bias_term: true } }
layer { name: "dw_relu" type: "ReLU" bottom: "dw" top: "dw" }'''
    weights = {"conv": [r(8, 4, 3, 3)], "bn": [r(8), np.abs(r(8)) + 0.5, [1.0]], "scale": [r(8), r(8)],
               "dw": [r(8, 1, 3, 3)], "dw_bn": [r(8), np.abs(r(8)) + 0.5, [999.0]], "dw_scale": [r(8), r(8)]}
    ops = check(tmp_path, proto, weights, X)
    assert ops == {"conv2d": 1, "depthwise_conv2d": 1}, ops


def test_mtcnn_pnet_like(tmp_path):
    """P-Net's structure: conv + PReLU + max pool (ceil) + conv + PReLU + two heads (one with softmax)."""
    proto = 'name: "PNet"\nlayer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 3 dim: 24 dim: 30 } } }\n' + '''
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1" convolution_param { num_output: 10 kernel_size: 3 } }
layer { name: "PReLU1" type: "PReLU" bottom: "conv1" top: "conv1" }
layer { name: "pool1" type: "Pooling" bottom: "conv1" top: "pool1" pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
layer { name: "conv2" type: "Convolution" bottom: "pool1" top: "conv2" convolution_param { num_output: 16 kernel_size: 3 } }
layer { name: "PReLU2" type: "PReLU" bottom: "conv2" top: "conv2" }
layer { name: "conv4-1" type: "Convolution" bottom: "conv2" top: "conv4-1" convolution_param { num_output: 2 kernel_size: 1 } }
layer { name: "prob1" type: "Softmax" bottom: "conv4-1" top: "prob1" }'''
    weights = {"conv1": [r(10, 3, 3, 3), r(10)], "PReLU1": [np.abs(r(10)) * 0.2], "conv2": [r(16, 10, 3, 3) * 0.3, r(16)],
               "PReLU2": [np.abs(r(16)) * 0.2], "conv4-1": [r(2, 16, 1, 1), r(2)]}
    check(tmp_path, proto, weights, RNG.standard_normal((1, 3, 24, 30)).astype(np.float32))


def test_v1_layers_format(tmp_path):
    proto = HEAD + '''
layers { name: "conv" type: CONVOLUTION bottom: "data" top: "conv" convolution_param { num_output: 5 kernel_size: 3 } }
layers { name: "relu" type: RELU bottom: "conv" top: "conv" }
layers { name: "pool" type: POOLING bottom: "conv" top: "pool" pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
layers { name: "fc" type: INNER_PRODUCT bottom: "pool" top: "fc" inner_product_param { num_output: 3 } }'''
    check(tmp_path, proto, {"conv": [r(5, 4, 3, 3), r(5)], "fc": [r(3, 5 * 5 * 5), r(3)]}, X, v1=True)


def test_unsupported_layers_are_listed(tmp_path):
    proto = HEAD + '''
layer { name: "a" type: "SPP" bottom: "data" top: "a" }
layer { name: "b" type: "Embed" bottom: "a" top: "b" }
layer { name: "c" type: "SPP" bottom: "b" top: "c" }'''
    pt, cm = build(tmp_path, proto, {})
    with pytest.raises(UnsupportedOpsError) as e:
        optimize(model_file=pt, param_file=cm, optimize_out=str(tmp_path / "o"))
    assert e.value.unsupported == {"Embed": ["b"], "SPP": ["a", "c"]}


def test_blob_mismatch_names_the_layer(tmp_path):
    proto = HEAD + 'layer { name: "myconv" type: "Convolution" bottom: "data" top: "c" ' \
                   'convolution_param { num_output: 6 kernel_size: 3 } }'
    pt, cm = build(tmp_path, proto, {"myconv": [r(6, 4, 5, 5), r(6)]})
    with pytest.raises(ConversionError, match="myconv.*weights"):
        optimize(model_file=pt, param_file=cm, optimize_out=str(tmp_path / "o"))
    pt, cm = build(tmp_path, proto, {}, name="noweights")
    with pytest.raises(ConversionError, match="myconv"):
        optimize(model_file=pt, param_file=cm, optimize_out=str(tmp_path / "o"))


def test_corrupt_files_and_model_dir(tmp_path):
    proto = HEAD + 'layer { name: "r" type: "ReLU" bottom: "data" top: "r" }'
    pt, cm = build(tmp_path, proto, {})
    bad = tmp_path / "bad.caffemodel"
    bad.write_bytes(b"\xff\xff\xff garbage")
    with pytest.raises(ConversionError, match="bad.caffemodel"):
        optimize(model_file=pt, param_file=str(bad), optimize_out=str(tmp_path / "o"))
    badtxt = tmp_path / "bad.prototxt"
    badtxt.write_text("layer { name: ")
    with pytest.raises(ConversionError, match="bad.prototxt"):
        optimize(model_file=str(badtxt), param_file=cm, optimize_out=str(tmp_path / "o"))
    d = tmp_path / "dir"
    d.mkdir()
    (d / "net.prototxt").write_text(proto)
    (d / "net.caffemodel").write_bytes(open(cm, "rb").read())
    r_ = optimize(model_dir=str(d), optimize_out=str(tmp_path / "fromdir"))
    np.testing.assert_allclose(load(r_.path)({"data": X})["r"], np.maximum(X, 0))
