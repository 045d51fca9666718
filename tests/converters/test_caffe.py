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
layer { name: "c" type: "SPP" bottom: "b" top: "c" }
layer { name: "d" type: "Python" bottom: "c" top: "d" }'''
    pt, cm = build(tmp_path, proto, {})
    with pytest.raises(UnsupportedOpsError) as e:
        optimize(model_file=pt, param_file=cm, optimize_out=str(tmp_path / "o"))
    assert e.value.unsupported == {"Embed": ["b"], "Python": ["d"], "SPP": ["a", "c"]}
    assert "'SPP' x2 (a, c)" in str(e.value) and "net.prototxt" in str(e.value)


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


# --- where OpenCV departs from Caffe (or lacks the layer): numpy written from Caffe's definitions ---

def np_deconv(x, w, b, stride, pad, dil):
    """Caffe's Deconvolution (one group): scatter each input pixel's weighted kernel, then crop the pad."""
    n, c, h, wd = x.shape
    _, o, kh, kw = w.shape
    oh, ow = (h - 1) * stride[0] + dil[0] * (kh - 1) + 1, (wd - 1) * stride[1] + dil[1] * (kw - 1) + 1
    y = np.zeros((n, o, oh, ow))
    for i in range(kh):
        for j in range(kw):
            contrib = np.einsum("nchw,co->nohw", x, w[:, :, i, j])
            y[:, :, i * dil[0]:i * dil[0] + (h - 1) * stride[0] + 1:stride[0],
              j * dil[1]:j * dil[1] + (wd - 1) * stride[1] + 1:stride[1]] += contrib
    y = y[:, :, pad[0]:oh - pad[0], pad[1]:ow - pad[1]]
    return (y + b.reshape(1, -1, 1, 1)).astype(np.float32)


@pytest.mark.parametrize("params,stride,pad,dil", [
    ("kernel_size: 3 dilation: 2", (1, 1), (0, 0), (2, 2)),  # OpenCV ignores a Deconvolution's dilation
    ("kernel_h: 3 kernel_w: 2 stride_h: 2 pad_h: 1", (2, 1), (1, 0), (1, 1)),  # OpenCV needs pad_h and pad_w
])
def test_deconvolution_caffe_semantics(tmp_path, params, stride, pad, dil):
    w, b = r(4, 3, *([3, 3] if "kernel_size" in params else [3, 2])), r(3)
    proto = HEAD + f'layer {{ name: "d" type: "Deconvolution" bottom: "data" top: "d" ' \
                   f'convolution_param {{ num_output: 3 {params} }} }}'
    pt, cm = build(tmp_path, proto, {"d": [w, b]})
    close(run_ours(tmp_path, pt, cm, {"data": X})["d"], np_deconv(X.astype(np.float64), w, b, stride, pad, dil))


def test_inner_product_transpose(tmp_path):
    """transpose: true stores the weights (K, N) and computes x @ W (OpenCV ignores the flag)."""
    w, b = r(4 * 11 * 12, 5) * 0.1, r(5)
    proto = HEAD + 'layer { name: "l" type: "InnerProduct" bottom: "data" top: "l" ' \
                   'inner_product_param { num_output: 5 transpose: true } }'
    pt, cm = build(tmp_path, proto, {"l": [w, b]})
    close(run_ours(tmp_path, pt, cm, {"data": X})["l"], (X.reshape(1, -1) @ w + b).astype(np.float32))


@pytest.mark.parametrize("params,shape", [
    ("shape { dim: -1 } axis: -2", (1, 4, 11, 12)),  # axis -2 = after the 3rd dim: replaces [12] by [-1]
    ("shape { dim: 1 } axis: 1 num_axes: 0", (1, 1, 4, 11, 12)),  # inserts a dim
    ("shape { dim: 0 dim: 0 dim: -1 }", (1, 4, 132)),
])
def test_reshape_axis_num_axes(tmp_path, params, shape):
    proto = HEAD + f'layer {{ name: "l" type: "Reshape" bottom: "data" top: "l" reshape_param {{ {params} }} }}'
    pt, cm = build(tmp_path, proto, {})
    np.testing.assert_array_equal(run_ours(tmp_path, pt, cm, {"data": X})["l"], X.reshape(shape))


def test_normalize_across_spatial_per_channel_scale(tmp_path):
    """SSD's Normalize: one norm per sample over C, H, W, then a per-channel scale (OpenCV rejects it)."""
    scale = np.abs(r(4)) + 1
    proto = HEAD + 'layer { name: "l" type: "Normalize" bottom: "data" top: "l" ' \
                   'norm_param { across_spatial: true channel_shared: false eps: 0.001 } }'
    pt, cm = build(tmp_path, proto, {"l": [scale]})
    x = X.astype(np.float64)
    want = x / np.sqrt((x ** 2).sum(axis=(1, 2, 3), keepdims=True) + 1e-3) * scale.reshape(1, 4, 1, 1)
    close(run_ours(tmp_path, pt, cm, {"data": X})["l"], want.astype(np.float32))


def np_interp(x, oh, ow):
    """Caffe's caffe_cpu_interp2: bilinear with aligned corners (ratio (in-1)/(out-1), 0 for out = 1)."""
    h, w = x.shape[2:]
    ys = np.arange(oh) * ((h - 1) / (oh - 1) if oh > 1 else 0.0)
    xs = np.arange(ow) * ((w - 1) / (ow - 1) if ow > 1 else 0.0)
    y0, x0 = np.floor(ys).astype(int), np.floor(xs).astype(int)
    y1, x1 = np.minimum(y0 + 1, h - 1), np.minimum(x0 + 1, w - 1)
    ly, lx = (ys - y0)[:, None], (xs - x0)[None, :]
    return ((1 - ly) * ((1 - lx) * x[:, :, y0][:, :, :, x0] + lx * x[:, :, y0][:, :, :, x1])
            + ly * ((1 - lx) * x[:, :, y1][:, :, :, x0] + lx * x[:, :, y1][:, :, :, x1]))


@pytest.mark.parametrize("params,crop,size", [
    ("shrink_factor: 2", 0, (6, 6)),  # (11-1)/2+1, (12-1)/2+1; OpenCV computes 0x0 here
    ("shrink_factor: 2 zoom_factor: 3", 0, (16, 16)),  # shrink, then zoom
    ("zoom_factor: 2 pad_beg: -1 pad_end: -1", 1, (17, 19)),  # the input cropped by 1 on each side first
])
def test_interp_caffe_semantics(tmp_path, params, crop, size):
    proto = HEAD + f'layer {{ name: "l" type: "Interp" bottom: "data" top: "l" interp_param {{ {params} }} }}'
    pt, cm = build(tmp_path, proto, {})
    x = X.astype(np.float64)[:, :, crop:11 - crop, crop:12 - crop]
    close(run_ours(tmp_path, pt, cm, {"data": X})["l"], np_interp(x, *size).astype(np.float32))


def test_bias_with_second_bottom(tmp_path):
    proto = 'name: "t"\ninput: "data"\ninput_shape { dim: 1 dim: 4 dim: 11 dim: 12 }\n' \
            'input: "b"\ninput_shape { dim: 4 dim: 11 }\n' \
            'layer { name: "l" type: "Bias" bottom: "data" bottom: "b" top: "l" }'
    pt, cm = build(tmp_path, proto, {})
    b = RNG.standard_normal((4, 11)).astype(np.float32)
    close(run_ours(tmp_path, pt, cm, {"data": X, "b": b})["l"], X + b[None, :, :, None])


# --- whole nets and graph structure ---

def test_scale_with_second_bottom_se_block(tmp_path):
    """A squeeze-excitation block as Caffe SENets write it: the gate (N, C) multiplies at axis 0."""
    proto = HEAD + '''
layer { name: "gap" type: "Pooling" bottom: "data" top: "gap" pooling_param { pool: AVE global_pooling: true } }
layer { name: "fc1" type: "InnerProduct" bottom: "gap" top: "fc1" inner_product_param { num_output: 2 } }
layer { name: "relu" type: "ReLU" bottom: "fc1" top: "fc1" }
layer { name: "fc2" type: "InnerProduct" bottom: "fc1" top: "fc2" inner_product_param { num_output: 4 } }
layer { name: "gate" type: "Sigmoid" bottom: "fc2" top: "fc2" }
layer { name: "se" type: "Scale" bottom: "data" bottom: "fc2" top: "se" scale_param { axis: 0 } }'''
    check(tmp_path, proto, {"fc1": [r(2, 4), r(2)], "fc2": [r(4, 2), r(4)]}, X)


def test_split_slice_equal_parts_eltwise_three_inputs(tmp_path):
    proto = HEAD + '''
layer { name: "split" type: "Split" bottom: "data" top: "s1" top: "s2" }
layer { name: "slice" type: "Slice" bottom: "s1" top: "a" top: "b" slice_param { axis: -1 } }
layer { name: "cat" type: "Concat" bottom: "b" bottom: "a" top: "cat" concat_param { axis: -1 } }
layer { name: "sum" type: "Eltwise" bottom: "cat" bottom: "s2" bottom: "s2" top: "sum" eltwise_param { coeff: 1 coeff: -0.5 coeff: 2 } }
layer { name: "max" type: "Eltwise" bottom: "sum" bottom: "s2" bottom: "cat" top: "max" eltwise_param { operation: MAX } }'''
    check(tmp_path, proto, {}, X)


def test_in_place_chain_and_multiple_outputs(tmp_path):
    """In-place layers rewrite one blob name many times; the IR stays single-assignment and the outputs keep
    the blob names (conv1 after its in-place ReLU and Dropout; conv2)."""
    proto = HEAD + '''
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1" convolution_param { num_output: 3 kernel_size: 1 } }
layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" relu_param { negative_slope: 0.2 } }
layer { name: "drop1" type: "Dropout" bottom: "conv1" top: "conv1" }
layer { name: "conv2" type: "Convolution" bottom: "conv1" top: "conv2" convolution_param { num_output: 2 kernel_size: 1 } }
layer { name: "abs" type: "AbsVal" bottom: "conv1" top: "conv1" }'''
    weights = {"conv1": [r(3, 4, 1, 1), r(3)], "conv2": [r(2, 3, 1, 1), r(2)]}
    pt, cm = build(tmp_path, proto, weights)
    got = run_ours(tmp_path, pt, cm, {"data": X})
    assert sorted(got) == ["conv1", "conv2"]
    net = cv2.dnn.readNetFromCaffe(pt, cm)
    net.setInput(X)
    close(got["conv2"], net.forward("conv2"))
    close(got["conv1"], net.forward("abs"))


def test_input_layer_input_shape_and_input_shapes_override(tmp_path):
    proto = 'name: "t"\nlayer { name: "in" type: "Input" top: "data" input_param { shape { dim: 1 dim: 4 dim: 5 dim: 5 } } }\n' \
            'layer { name: "c" type: "Convolution" bottom: "data" top: "c" convolution_param { num_output: 2 kernel_size: 3 } }'
    check(tmp_path, proto, {"c": [r(2, 4, 3, 3), r(2)]}, RNG.standard_normal((1, 4, 5, 5)).astype(np.float32))
    pt, cm = build(tmp_path, proto, {"c": [r(2, 4, 3, 3), r(2)]}, name="pinned")
    got = run_ours(tmp_path, pt, cm, {"data": X}, input_shapes={"data": (1, 4, 11, 12)})["c"]
    assert got.shape == (1, 2, 9, 10)
    proto2 = 'name: "t"\ninput: "data"\ninput_shape { dim: 1 dim: 4 dim: 11 dim: 12 }\n' \
             'layer { name: "r" type: "TanH" bottom: "data" top: "r" }\n' \
             'layer { name: "acc" type: "Accuracy" bottom: "r" bottom: "label" top: "acc" include { phase: TRAIN } }\n' \
             'layer { name: "sig" type: "Sigmoid" bottom: "r" top: "sig" exclude { phase: TEST } }'
    pt, cm = build(tmp_path, proto2, {}, name="phases")  # (OpenCV keeps TRAIN-only layers)
    got = run_ours(tmp_path, pt, cm, {"data": X})
    assert list(got) == ["r"]
    close(got["r"], np.tanh(X))


def test_mtcnn_rnet_like(tmp_path):
    """R-Net's structure: convs + PReLU + ceil-mode pools, an InnerProduct, PReLU on a 2-D blob, two heads."""
    proto = 'name: "RNet"\ninput: "data"\ninput_dim: 1 input_dim: 3 input_dim: 24 input_dim: 24\n' + '''
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1" convolution_param { num_output: 8 kernel_size: 3 } }
layer { name: "prelu1" type: "PReLU" bottom: "conv1" top: "conv1" }
layer { name: "pool1" type: "Pooling" bottom: "conv1" top: "pool1" pooling_param { pool: MAX kernel_size: 3 stride: 2 } }
layer { name: "conv2" type: "Convolution" bottom: "pool1" top: "conv2" convolution_param { num_output: 12 kernel_size: 3 } }
layer { name: "prelu2" type: "PReLU" bottom: "conv2" top: "conv2" }
layer { name: "pool2" type: "Pooling" bottom: "conv2" top: "pool2" pooling_param { pool: MAX kernel_size: 3 stride: 2 } }
layer { name: "conv3" type: "Convolution" bottom: "pool2" top: "conv3" convolution_param { num_output: 16 kernel_size: 2 } }
layer { name: "prelu3" type: "PReLU" bottom: "conv3" top: "conv3" }
layer { name: "conv4" type: "InnerProduct" bottom: "conv3" top: "conv4" inner_product_param { num_output: 32 } }
layer { name: "prelu4" type: "PReLU" bottom: "conv4" top: "conv4" }
layer { name: "conv5-1" type: "InnerProduct" bottom: "conv4" top: "conv5-1" inner_product_param { num_output: 2 } }
layer { name: "conv5-2" type: "InnerProduct" bottom: "conv4" top: "conv5-2" inner_product_param { num_output: 4 } }
layer { name: "prob1" type: "Softmax" bottom: "conv5-1" top: "prob1" }'''
    weights = {"conv1": [r(8, 3, 3, 3) * 0.5, r(8)], "prelu1": [np.abs(r(8)) * 0.2],
               "conv2": [r(12, 8, 3, 3) * 0.2, r(12)], "prelu2": [np.abs(r(12)) * 0.2],
               "conv3": [r(16, 12, 2, 2) * 0.2, r(16)], "prelu3": [np.abs(r(16)) * 0.2],
               "conv4": [r(32, 16 * 3 * 3) * 0.1, r(32)], "prelu4": [np.abs(r(32)) * 0.2],
               "conv5-1": [r(2, 32) * 0.3, r(2)], "conv5-2": [r(4, 32) * 0.3, r(4)]}
    check(tmp_path, proto, weights, RNG.standard_normal((1, 3, 24, 24)).astype(np.float32))


def _dw_block(name, bottom, c_in, c_out, stride):
    """MobileNet's depthwise-separable block, Caffe style: conv/BN/Scale/ReLU in place, twice."""
    text, weights = "", {}
    for part, (group, k, cin, cout, s) in (("dw", (c_in, 3, 1, c_in, stride)), ("sep", (1, 1, c_in, c_out, 1))):
        n = f"{name}/{part}"
        pad = k // 2
        text += f'''
layer {{ name: "{n}" type: "Convolution" bottom: "{bottom}" top: "{n}" convolution_param {{ num_output: {cout} group: {group} kernel_size: {k} pad: {pad} stride: {s} bias_term: false }} }}
layer {{ name: "{n}/bn" type: "BatchNorm" bottom: "{n}" top: "{n}" }}
layer {{ name: "{n}/scale" type: "Scale" bottom: "{n}" top: "{n}" scale_param {{ bias_term: true }} }}
layer {{ name: "{n}/relu" type: "ReLU" bottom: "{n}" top: "{n}" }}'''
        weights[n] = [r(cout, cin, k, k) * 0.4]
        weights[f"{n}/bn"] = [r(cout) * 3, (np.abs(r(cout)) + 0.5) * 3, [3.0]]
        weights[f"{n}/scale"] = [r(cout), r(cout)]
        bottom = n
    return text, weights, bottom


def test_mobilenet_ssd_like_head(tmp_path):
    """Depthwise blocks with BatchNorm+Scale (folded away), then SSD's heads: Normalize, a conv per head,
    Permute to NHWC, Flatten, Concat of the heads; the confidences through Reshape/Softmax/Flatten."""
    b1, w1, top1 = _dw_block("conv1", "data", 4, 8, 1)
    b2, w2, top2 = _dw_block("conv2", top1, 8, 8, 2)
    heads, weights = "", {**w1, **w2}
    heads += f'''
layer {{ name: "norm" type: "Normalize" bottom: "{top1}" top: "norm" norm_param {{ across_spatial: false channel_shared: false }} }}'''
    weights["norm"] = [np.full(8, 20.0)]
    for i, src in enumerate(["norm", top2]):
        for kind, n_out in (("loc", 8), ("conf", 6)):
            n = f"{src.split('/')[0]}_{kind}"
            heads += f'''
layer {{ name: "{n}" type: "Convolution" bottom: "{src}" top: "{n}" convolution_param {{ num_output: {n_out} kernel_size: 3 pad: 1 }} }}
layer {{ name: "{n}_perm" type: "Permute" bottom: "{n}" top: "{n}_perm" permute_param {{ order: 0 order: 2 order: 3 order: 1 }} }}
layer {{ name: "{n}_flat" type: "Flatten" bottom: "{n}_perm" top: "{n}_flat" flatten_param {{ axis: 1 }} }}'''
            weights[n] = [r(n_out, 8, 3, 3) * 0.2, r(n_out)]
    heads += '''
layer { name: "mbox_loc" type: "Concat" bottom: "norm_loc_flat" bottom: "conv2_loc_flat" top: "mbox_loc" concat_param { axis: 1 } }
layer { name: "mbox_conf" type: "Concat" bottom: "norm_conf_flat" bottom: "conv2_conf_flat" top: "mbox_conf" concat_param { axis: 1 } }
layer { name: "conf_reshape" type: "Reshape" bottom: "mbox_conf" top: "conf_reshape" reshape_param { shape { dim: 0 dim: -1 dim: 3 } } }
layer { name: "conf_softmax" type: "Softmax" bottom: "conf_reshape" top: "conf_softmax" softmax_param { axis: 2 } }
layer { name: "conf_flatten" type: "Flatten" bottom: "conf_softmax" top: "conf_flatten" flatten_param { axis: 1 } }'''
    ops = check(tmp_path, HEAD + b1 + b2 + heads, weights, X)
    assert "batch_norm" not in ops and ops["depthwise_conv2d"] == 2 and ops["conv2d"] == 6, ops
    normalize_ops = {"elementwise_mul": 2, "elementwise_add": 1, "elementwise_div": 1}  # its own: x*x, +eps, /, *scale
    assert {k: v for k, v in ops.items() if k.startswith("elementwise")} == normalize_ops, ops


def legacy_blob(a):
    """A blob as old Caffe wrote it: num/channels/height/width, no shape."""
    a = np.asarray(a, np.float32)
    b = pb.BlobProto()
    b.num, b.channels, b.height, b.width = (1,) * (4 - a.ndim) + a.shape
    b.data.extend(a.ravel())
    return b


def test_v1_format_more_layers_and_legacy_blobs(tmp_path):
    proto = HEAD + '''
layers { name: "conv" type: CONVOLUTION bottom: "data" top: "conv" convolution_param { num_output: 4 kernel_size: 3 pad: 1 } }
layers { name: "deconv" type: DECONVOLUTION bottom: "conv" top: "deconv" convolution_param { num_output: 4 kernel_size: 2 stride: 2 } }
layers { name: "pool" type: POOLING bottom: "deconv" top: "pool" pooling_param { pool: AVE kernel_size: 2 stride: 2 } }
layers { name: "sum" type: ELTWISE bottom: "pool" bottom: "data" top: "sum" }
layers { name: "cat" type: CONCAT bottom: "sum" bottom: "conv" top: "cat" }
layers { name: "tanh" type: TANH bottom: "cat" top: "cat" }
layers { name: "lrn" type: LRN bottom: "cat" top: "lrn" lrn_param { local_size: 3 alpha: 0.1 } }
layers { name: "fc" type: INNER_PRODUCT bottom: "lrn" top: "fc" inner_product_param { num_output: 3 } }
layers { name: "prob" type: SOFTMAX bottom: "fc" top: "prob" }'''
    weights = {"conv": [r(4, 4, 3, 3) * 0.3, r(4)], "deconv": [r(4, 4, 2, 2) * 0.3, r(4)],
               "fc": [r(3, 8 * 11 * 12) * 0.05, r(3)]}
    net = pb.NetParameter()
    text_format.Parse(proto, net)
    for lyr in net.layers:  # InnerProduct weights as (1, 1, N, K), biases as (1, 1, 1, N)
        lyr.blobs.extend(legacy_blob(a) for a in weights.get(lyr.name, []))
    (tmp_path / "v1.prototxt").write_text(proto)
    (tmp_path / "v1.caffemodel").write_bytes(net.SerializeToString())
    pt, cm = str(tmp_path / "v1.prototxt"), str(tmp_path / "v1.caffemodel")
    ref = cv2.dnn.readNetFromCaffe(pt, cm)
    ref.setInput(X)
    close(run_ours(tmp_path, pt, cm, {"data": X})["prob"], ref.forward())


CONV = HEAD + 'layer { name: "myconv" type: "Convolution" bottom: "data" top: "c" ' \
              'convolution_param { num_output: 6 kernel_size: 3 } }'


@pytest.mark.parametrize("proto,weights,match", [
    (CONV, {"myconv": [r(6, 4, 3, 3)]}, "'myconv'.*1 blob.*the bias .blob #1. is missing"),
    (CONV, {"myconv": [r(6, 4, 3, 3), r(6), r(6)]}, "'myconv'.*3 blob.*prototxt use 2"),
    (CONV, {"myconv": [r(6, 4, 3, 3), r(5)]}, "'myconv'.*the bias .blob #1. has shape .5,., expected .6,."),
    (HEAD + 'layer { name: "s" type: "Scale" bottom: "data" top: "s" }', {"s": [r(3)]}, "'s'.*the scale"),
    (HEAD + 'layer { name: "bn" type: "BatchNorm" bottom: "data" top: "bn" }', {"bn": [r(4)]}, "'bn'.*variance"),
    (HEAD + 'layer { name: "x" type: "ReLU" bottom: "nothere" top: "x" }', {}, "'x'.*nothere"),
    ('name: "t"\nlayer { name: "in" type: "Input" top: "data" }', {}, "'in' has no shape"),
    ('name: "t"\ninput: "data"\nlayer { name: "x" type: "ReLU" bottom: "data" top: "x" }', {},
     "input 'data' has no shape"),
    (HEAD + 'layer { name: "l" type: "LRN" bottom: "data" top: "l" lrn_param { local_size: 4 } }', {}, "odd"),
])
def test_errors_name_the_layer(tmp_path, proto, weights, match):
    pt, cm = build(tmp_path, proto, weights)
    with pytest.raises(ConversionError, match=match):
        optimize(model_file=pt, param_file=cm, optimize_out=str(tmp_path / "o"))


def test_layer_missing_from_the_caffemodel(tmp_path):
    _, cm = build(tmp_path, CONV, {"myconv": [r(6, 4, 3, 3), r(6)]})
    pt, _ = build(tmp_path, CONV.replace("myconv", "other"), {}, name="renamed")
    with pytest.raises(ConversionError, match="'other'.*not in the .caffemodel"):
        optimize(model_file=pt, param_file=cm, optimize_out=str(tmp_path / "o"))


def test_truncated_caffemodel_names_the_file(tmp_path):
    pt, cm = build(tmp_path, CONV, {"myconv": [r(6, 4, 3, 3), r(6)]})
    data = open(cm, "rb").read()
    cut = tmp_path / "cut.caffemodel"
    cut.write_bytes(data[:len(data) // 2])
    with pytest.raises(ConversionError, match="cut.caffemodel"):
        optimize(model_file=pt, param_file=str(cut), optimize_out=str(tmp_path / "o"))
    with pytest.raises(ConversionError, match="missing.caffemodel"):
        optimize(model_file=pt, param_file=str(tmp_path / "missing.caffemodel"), optimize_out=str(tmp_path / "o"))
