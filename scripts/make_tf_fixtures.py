#!/usr/bin/env python3
"""Build the TensorFlow fixtures of tests/converters/test_tensorflow.py (dev tool: pip install tensorflow-cpu;
never a dependency of liteopt, and the tests do not need it).

Each fixture is a small frozen GraphDef, tests/data/tf/<name>.pb (or .pbtxt), and <name>.npz holding the
inputs (by Placeholder name), the outputs TensorFlow computed ("out:<output node name>") and "meta", a
JSON string: {"input_shapes": {...}} for inputs whose shape must be pinned.

    python3 scripts/make_tf_fixtures.py            # all fixtures
    python3 scripts/make_tf_fixtures.py mtcnn_pnet # some
"""
from __future__ import annotations

import json
import os
import sys
import zlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "tf")
RNG = np.random.default_rng(2024)
FIXTURES = {}


def fixture(fn):
    FIXTURES[fn.__name__] = fn
    return fn


def w(*shape, scale=None):
    """A random constant, scaled like a He init so activations stay O(1)."""
    fan_in = int(np.prod(shape[:-1])) if len(shape) > 1 else 1
    s = scale if scale is not None else (2.0 / max(fan_in, 1)) ** 0.5
    return tf.constant((RNG.standard_normal(shape) * s).astype(np.float32))


def bn(x, c, data_format="NHWC"):
    """FusedBatchNormV3 in inference mode with non-trivial statistics (tf.keras 2 exports this)."""
    scale, offset = 1 + 0.2 * RNG.standard_normal(c), 0.1 * RNG.standard_normal(c)
    mean, var = 0.1 * RNG.standard_normal(c), 0.5 + RNG.random(c)
    y, *_ = tf.compat.v1.nn.fused_batch_norm(x, *(tf.constant(a.astype(np.float32)) for a in
                                                  (scale, offset, mean, var)),
                                             epsilon=1e-3, data_format=data_format, is_training=False)
    return y


def prelu(x, c, spelled="relu"):
    """PReLU as TF graphs spell it: relu(x) - alpha * relu(-x), or max(x, alpha * x) for alpha < 1."""
    alpha = tf.constant((0.1 + 0.2 * RNG.random(c)).astype(np.float32))
    if spelled == "relu":
        return tf.nn.relu(x) - alpha * tf.nn.relu(-x)
    return tf.maximum(x, alpha * x)


def save(name: str, fn, specs: dict, feeds: dict, input_shapes: dict | None = None, text: bool = False,
         also: dict | None = None):
    """Freeze fn (a function of the named inputs), run it on the feeds, write <name>.pb/.pbtxt + .npz;
    `also`: a second set of feeds (other sizes of dynamic dims), stored as also:<input> / also_out:<output>."""
    sig = [tf.TensorSpec(s, tf.float32, name=k) for k, s in specs.items()]
    cf = tf.function(fn).get_concrete_function(*sig)
    frozen = convert_variables_to_constants_v2(cf)
    gd = frozen.graph.as_graph_def()
    del gd.library.function[:]
    outs = frozen(*[tf.constant(feeds[k]) for k in specs])
    outs = outs if isinstance(outs, (list, tuple)) else [outs]
    names = [t.name.split(":")[0] for t in frozen.outputs]
    os.makedirs(OUT, exist_ok=True)
    path = os.path.join(OUT, name + (".pbtxt" if text else ".pb"))
    if text:
        tf.io.write_graph(gd, OUT, name + ".pbtxt", as_text=True)
    else:
        with open(path, "wb") as f:
            f.write(gd.SerializeToString())
    arrays = {k: v for k, v in feeds.items()}
    arrays.update({f"out:{n}": o.numpy() for n, o in zip(names, outs)})
    if also:
        outs2 = frozen(*[tf.constant(also[k]) for k in specs])
        outs2 = outs2 if isinstance(outs2, (list, tuple)) else [outs2]
        arrays.update({f"also:{k}": v for k, v in also.items()})
        arrays.update({f"also_out:{n}": o.numpy() for n, o in zip(names, outs2)})
    np.savez_compressed(os.path.join(OUT, name + ".npz"), meta=json.dumps({"input_shapes": input_shapes or {}}),
                        **arrays)
    ops = sorted({n.op for n in gd.node})
    print(f"{name}: {os.path.getsize(path) / 1024:.0f} KiB, outputs {names}, ops {' '.join(ops)}")


def img(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


# --- fixtures ----------------------------------------------------------------------------------

@fixture
def keras_mobilenet_like():
    """A small Keras MobileNetV2-style net (Keras 3: BN spelled out as mul/add): stem conv SAME stride 2,
    inverted residuals (1x1 expand, depthwise SAME, ZeroPadding2D + VALID depthwise stride 2, 1x1 project,
    residual add), ReLU6, global average pool, dense + softmax."""
    import keras
    keras.utils.set_random_seed(7)
    L = keras.layers

    def block(x, cin, cout, stride, expand=4):
        h = L.Conv2D(cin * expand, 1, use_bias=False)(x)
        h = L.BatchNormalization()(h)
        h = L.ReLU(6.0)(h)
        if stride == 2:
            h = L.ZeroPadding2D(((0, 1), (0, 1)))(h)
        h = L.DepthwiseConv2D(3, strides=stride, padding="same" if stride == 1 else "valid", use_bias=False)(h)
        h = L.BatchNormalization()(h)
        h = L.ReLU(6.0)(h)
        h = L.Conv2D(cout, 1, use_bias=False)(h)
        h = L.BatchNormalization()(h)
        return L.Add()([x, h]) if stride == 1 and cin == cout else h

    inp = keras.Input((32, 32, 3), name="image")
    x = L.Conv2D(8, 3, strides=2, padding="same", use_bias=False)(inp)
    x = L.BatchNormalization()(x)
    x = L.ReLU(6.0)(x)
    x = block(x, 8, 8, 1)
    x = block(x, 8, 12, 2)
    x = block(x, 12, 12, 1)
    x = L.Conv2D(32, 1, use_bias=False)(x)
    x = L.BatchNormalization()(x)
    x = L.ReLU(6.0)(x)
    x = L.GlobalAveragePooling2D()(x)
    x = L.Dense(10, activation="softmax")(x)
    model = keras.Model(inp, x)
    for layer in model.layers:  # non-trivial BN statistics
        if isinstance(layer, L.BatchNormalization):
            c = layer.gamma.shape[0]
            layer.set_weights([1 + 0.2 * RNG.standard_normal(c), 0.1 * RNG.standard_normal(c),
                               0.1 * RNG.standard_normal(c), 0.5 + RNG.random(c)])
    save("keras_mobilenet_like", lambda image: model(image, training=False), {"image": [None, 32, 32, 3]},
         {"image": img(2, 32, 32, 3)}, input_shapes={"image": [2, 32, 32, 3]})


@fixture
def mobilenet_fused_bn():
    """The tf.keras 2 spelling of a MobileNetV2 block: Conv2D + FusedBatchNormV3 + Relu6, depthwise with SAME
    stride 2 (asymmetric padding), residual AddV2, Mean over H, W with keep_dims + Squeeze, MatMul + BiasAdd,
    Softmax; the batch dim is dynamic."""
    w1, w2, w3, w4 = w(3, 3, 3, 16), w(1, 1, 16, 32), w(3, 3, 32, 1), w(1, 1, 32, 16)
    w5, w6 = w(3, 3, 16, 1), w(1, 1, 16, 16)
    fc, fb = w(16, 10), w(10, scale=0.1)

    def net(x):
        y = tf.nn.relu6(bn(tf.nn.conv2d(x, w1, 2, "SAME"), 16))
        h = tf.nn.relu6(bn(tf.nn.conv2d(y, w2, 1, "VALID"), 32))
        h = tf.nn.relu6(bn(tf.nn.depthwise_conv2d(h, w3, [1, 2, 2, 1], "SAME"), 32))
        h = bn(tf.nn.conv2d(h, w4, 1, "VALID"), 16)
        r = tf.nn.relu6(bn(tf.nn.depthwise_conv2d(h, w5, [1, 1, 1, 1], "SAME"), 16))
        h = h + bn(tf.nn.conv2d(r, w6, 1, "SAME"), 16)
        g = tf.squeeze(tf.reduce_mean(h, [1, 2], keepdims=True), [1, 2])
        return tf.nn.softmax(tf.nn.bias_add(tf.matmul(g, fc), fb))
    save("mobilenet_fused_bn", net, {"input": [None, 29, 27, 3]}, {"input": img(2, 29, 27, 3)},
         input_shapes={"input": [2, 29, 27, 3]})


@fixture
def mtcnn_pnet():
    """MTCNN P-Net: 3x3 VALID convs + PReLU (relu(x) - a*relu(-x)), 2x2 max pool SAME, two 1x1 heads:
    softmax over the channels (NHWC last axis) and box regression; H and W are dynamic (and stay so: one
    .nb runs at two sizes, odd and even)."""
    w1, b1, w2, b2, w3, b3 = w(3, 3, 3, 10), w(10, scale=0.1), w(3, 3, 10, 16), w(16, scale=0.1), \
        w(3, 3, 16, 32), w(32, scale=0.1)
    w41, b41, w42, b42 = w(1, 1, 32, 2), w(2, scale=0.1), w(1, 1, 32, 4), w(4, scale=0.1)

    def net(x):
        y = prelu(tf.nn.bias_add(tf.nn.conv2d(x, w1, 1, "VALID"), b1), 10)
        y = tf.nn.max_pool2d(y, 2, 2, "SAME")
        y = prelu(tf.nn.bias_add(tf.nn.conv2d(y, w2, 1, "VALID"), b2), 16)
        y = prelu(tf.nn.bias_add(tf.nn.conv2d(y, w3, 1, "VALID"), b3), 32)
        prob = tf.nn.softmax(tf.nn.bias_add(tf.nn.conv2d(y, w41, 1, "VALID"), b41), axis=3)
        box = tf.nn.bias_add(tf.nn.conv2d(y, w42, 1, "VALID"), b42)
        return prob, box
    save("mtcnn_pnet", net, {"input": [None, None, None, 3]}, {"input": img(1, 25, 31, 3)},
         also={"input": img(1, 36, 20, 3)})


@fixture
def mtcnn_onet():
    """MTCNN O-Net style: convs + PReLU spelled with Maximum, 3x3/2x2 max pools SAME and VALID, a NHWC
    flatten (Reshape), dense layers with a 2-D PReLU, three heads (softmax, box, landmarks)."""
    convs = [w(3, 3, 3, 8), w(3, 3, 8, 16), w(3, 3, 16, 16), w(2, 2, 16, 32)]
    biases = [w(c, scale=0.1) for c in (8, 16, 16, 32)]
    fc, fcb = w(3 * 3 * 32, 64), w(64, scale=0.1)
    heads = [(w(64, n), w(n, scale=0.1)) for n in (2, 4, 10)]

    def net(x):
        y = x
        pools = [("SAME", 3), ("VALID", 3), ("VALID", 2), None]
        for k, (cw, cb) in enumerate(zip(convs, biases)):
            y = prelu(tf.nn.bias_add(tf.nn.conv2d(y, cw, 1, "VALID"), cb), cw.shape[-1], spelled="max")
            if pools[k]:
                y = tf.nn.max_pool2d(y, pools[k][1], 2, pools[k][0])
        y = tf.reshape(y, [-1, 3 * 3 * 32])
        y = prelu(tf.matmul(y, fc) + fcb, 64, spelled="relu")
        prob = tf.nn.softmax(tf.matmul(y, heads[0][0]) + heads[0][1])
        return prob, tf.matmul(y, heads[1][0]) + heads[1][1], tf.matmul(y, heads[2][0]) + heads[2][1]
    save("mtcnn_onet", net, {"input": [None, 48, 48, 3]}, {"input": img(2, 48, 48, 3)},
         input_shapes={"input": [2, 48, 48, 3]})


@fixture
def pad_same_valid():
    """Explicit Pad before VALID convs (symmetric and asymmetric), SAME stride 2 on odd and even sizes,
    relu6 and leaky_relu, AvgPool SAME (padding not counted), MaxPool VALID, channel concat, BiasAdd."""
    w1, w2, w3, w4, w5 = w(3, 3, 4, 8), w(5, 5, 8, 8), w(3, 3, 8, 8), w(3, 3, 16, 12), w(1, 1, 12, 6)
    b1, b4 = w(8, scale=0.1), w(12, scale=0.1)

    def net(x):
        y = tf.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]])
        y = tf.nn.relu6(tf.nn.bias_add(tf.nn.conv2d(y, w1, 1, "VALID"), b1))
        a = tf.nn.leaky_relu(tf.nn.conv2d(tf.pad(y, [[0, 0], [2, 2], [1, 2], [0, 0]]), w2, 2, "VALID"), 0.1)
        b = tf.nn.relu6(tf.nn.conv2d(y, w3, 2, "SAME"))
        y = tf.concat([a, b], axis=-1)
        y = tf.nn.avg_pool2d(y, 3, 1, "SAME")
        y = tf.nn.leaky_relu(tf.nn.bias_add(tf.nn.conv2d(y, w4, 2, "SAME"), b4), 0.2)
        y = tf.nn.max_pool2d(y, 2, 2, "VALID")
        return tf.nn.conv2d(y, w5, 1, "SAME")
    save("pad_same_valid", net, {"x": [1, 23, 20, 4]}, {"x": img(1, 23, 20, 4)})


@fixture
def dilated():
    """Dilated Conv2D (SAME and VALID) and a dilated depthwise conv (DepthwiseConv2dNative with dilations),
    a channel-multiplier-2 depthwise conv, Elu, Sigmoid, Tanh."""
    w1, w2, w3, w4 = w(3, 3, 3, 8), w(3, 3, 8, 1), w(3, 3, 8, 8), w(3, 3, 8, 2)

    def net(x):
        y = tf.nn.elu(tf.nn.conv2d(x, w1, 1, "SAME", dilations=2))
        y = tf.raw_ops.DepthwiseConv2dNative(input=y, filter=w2, strides=[1, 1, 1, 1], padding="SAME",
                                             dilations=[1, 3, 3, 1])
        y = tf.nn.sigmoid(y)
        z = tf.nn.conv2d(y, w3, 1, "VALID", dilations=[1, 2, 1, 1])
        return tf.nn.tanh(tf.nn.depthwise_conv2d(z, w4, [1, 1, 1, 1], "SAME"))
    save("dilated", net, {"x": [1, 17, 19, 3]}, {"x": img(1, 17, 19, 3)})


@fixture
def deconv():
    """Conv2DBackpropInput (tf.nn.conv2d_transpose): SAME stride 2 (even and odd output sizes), VALID
    stride 2, and a 4x4 kernel; between ReLUs."""
    w1, w2, w3 = w(3, 3, 8, 4), w(4, 4, 6, 8), w(3, 3, 5, 6)

    def net(x):
        y = tf.nn.relu(tf.nn.conv2d_transpose(x, w1, [1, 14, 18, 8], 2, "SAME"))
        y = tf.nn.relu(tf.nn.conv2d_transpose(y, w2, [1, 27, 35, 6], 2, "SAME"))
        return tf.nn.conv2d_transpose(y, w3, [1, 55, 71, 5], 2, "VALID")
    save("deconv", net, {"x": [1, 7, 9, 4]}, {"x": img(1, 7, 9, 4)})


@fixture
def slicing():
    """StridedSlice masks (ellipsis, new axis, shrink, begin/end masks, negative strides and indices), Shape ->
    StridedSlice -> Pack -> Reshape with a dynamic batch, Squeeze, ExpandDims, Transpose, Cast, the element-
    wise math ops, reductions with and without keep_dims, MatMul transposes, PadV2, MirrorPad, ConcatV2."""
    wc, m = w(3, 3, 3, 6), w(6, 5)

    def net(x):
        c = tf.nn.conv2d(x, wc, 1, "SAME")           # held NCHW inside: the ops below meet that layout
        a = c[:, 1:-1, ::2, :]                         # begin/end/strides
        b = c[..., 0]                                  # ellipsis + shrink
        d = c[:, tf.newaxis, ::-1, 2:, 1:4]            # new axis, negative stride, begin_mask
        e = c[0, -1]                                   # two shrinks, negative index
        n = tf.shape(x)[0]
        flat = tf.reshape(c, tf.stack([n, -1, 6]))     # dynamic-batch shape arithmetic
        s = tf.reduce_sum(flat, axis=1)                # (N, 6)
        mm = tf.matmul(s, m)
        mt = tf.matmul(tf.transpose(m), s, transpose_b=True)
        q = tf.squeeze(tf.reduce_max(c, axis=[1], keepdims=True), axis=1)
        t = tf.transpose(c, [0, 3, 1, 2])
        r = tf.math.squared_difference(c, 0.5) - tf.maximum(c, -0.2) / (tf.minimum(c, 3.0) + 4.0)
        r = tf.math.rsqrt(tf.square(r) + 1.0) + tf.sqrt(tf.exp(-tf.abs(r)))
        p = tf.pad(c, [[0, 0], [1, 2], [0, 1], [0, 0]], constant_values=0.5)
        mp = tf.pad(c, [[0, 0], [2, 1], [1, 1], [0, 0]], mode="REFLECT")
        cat = tf.concat([tf.expand_dims(b, -1), tf.cast(tf.cast(c[..., 1:2] * 3, tf.int32), tf.float32)], -1)
        mean = tf.reduce_mean(c, axis=[-1])
        return a, b, d, e, mm, mt, q, t, r, p, mp, cat, mean
    save("slicing", net, {"x": [None, 6, 7, 3]}, {"x": img(2, 6, 7, 3)})


@fixture
def misc_ops():
    """Div, Pow, AddN and the old Concat on tensors held in NCHW, PlaceholderWithDefault, a Sum over one
    axis of an NCHW-held tensor (the output keeps a transposed layout), Squeeze of every size-1 dim,
    StridedSlice with an ellipsis in the middle and a new axis after it, Softmax over NHWC channels, a
    grouped Conv2D (input channels = 2 x the filter's), a MaxPool with EXPLICIT paddings."""
    w1, w2, wg = w(3, 3, 3, 4), w(1, 1, 3, 4), w(3, 3, 4, 6)

    def net(x):
        c1, c2 = tf.nn.conv2d(x, w1, 1, "SAME"), tf.nn.conv2d(x, w2, 1, "SAME")
        extra = tf.compat.v1.placeholder_with_default(tf.constant(0.25, shape=[4]), [4])
        a = tf.raw_ops.Div(x=c1, y=tf.abs(c2) + 1.0) + extra
        b = tf.pow(tf.abs(c1) + 1.0, tf.constant(1.5))
        n = tf.add_n([c1, c2, c1])
        cc = tf.raw_ops.Concat(concat_dim=tf.constant(3), values=[c1, x])
        s = tf.reduce_sum(c1, axis=1)
        q = tf.squeeze(tf.reduce_mean(c1, [1, 2], keepdims=True))
        e = c1[0:1, ..., tf.newaxis, 1]
        sm = tf.nn.softmax(c2)
        grouped = tf.nn.conv2d(tf.concat([c1, c2], -1), wg, 1, "SAME")  # 8 channels, filter of 4: 2 groups
        mp = tf.nn.max_pool2d(c1, 2, 1, [[0, 0], [1, 0], [0, 1], [0, 0]])
        return a, b, n, cc, s, q, e, sm, grouped, mp
    save("misc_ops", net, {"x": [1, 5, 6, 3]}, {"x": img(1, 5, 6, 3)})


@fixture
def resize():
    """ResizeBilinear and ResizeNearestNeighbor in the three coordinate conventions (legacy, align_corners,
    half_pixel_centers), up and down, on a tensor held in NCHW inside; nearest at sizes where TF's float32
    coordinates round differently from nearest_interp_v2's."""
    wc = w(1, 1, 3, 4)

    def net(x):
        c = tf.nn.conv2d(x, wc, 1, "VALID")
        outs = []
        for size in ([16, 20], [5, 7]):
            for ac, hp in ((False, False), (True, False), (False, True)):
                outs.append(tf.compat.v1.image.resize_bilinear(c, size, align_corners=ac, half_pixel_centers=hp))
                outs.append(tf.compat.v1.image.resize_nearest_neighbor(c, size, align_corners=ac,
                                                                       half_pixel_centers=hp))
        up = tf.image.resize(c, [16, 20], method="bilinear")  # TF2's default: half pixel
        # sizes where a float32 coordinate lands within an ulp of an integer (8 -> 82, 47, 41 rows)
        odd = [tf.compat.v1.image.resize_nearest_neighbor(c, size, align_corners=ac, half_pixel_centers=hp)
               for size, ac, hp in (([82, 3], False, False), ([47, 3], True, False), ([41, 3], False, True))]
        return tuple(outs) + (up,) + tuple(odd)
    save("resize", net, {"x": [1, 8, 10, 3]}, {"x": img(1, 8, 10, 3)})


@fixture
def nchw_text():
    """A .pbtxt GraphDef computing in NCHW itself: Transpose, Conv2D with EXPLICIT paddings and SAME,
    FusedBatchNorm, BiasAdd and a stride-2 SAME MaxPool all with data_format NCHW, Transpose back, then a
    LeakyRelu, a Neg and a Sub."""
    w1, w2, b = w(3, 3, 4, 6), w(3, 3, 6, 6), w(6, scale=0.1)

    def net(x):
        y = tf.transpose(x, [0, 3, 1, 2])
        y = tf.nn.conv2d(y, w1, 1, [[0, 0], [0, 0], [1, 2], [2, 1]], data_format="NCHW")
        y = tf.nn.conv2d(y, w2, [1, 1, 2, 2], "SAME", data_format="NCHW")
        y = tf.nn.bias_add(bn(y, 6, "NCHW"), b, data_format="NCHW")
        y = tf.nn.max_pool2d(y, 3, 2, "SAME", data_format="NCHW")
        return -tf.nn.leaky_relu(tf.transpose(y, [0, 2, 3, 1])) - 1.0
    save("nchw_text", net, {"x": [1, 17, 19, 4]}, {"x": img(1, 17, 19, 4)}, text=True)


def main(names):
    global RNG
    for n in names or FIXTURES:
        RNG = np.random.default_rng(zlib.crc32(n.encode()))  # each fixture the same, whatever else is built
        tf.random.set_seed(0)
        FIXTURES[n]()
    total = sum(os.path.getsize(os.path.join(OUT, f)) for f in os.listdir(OUT))
    print(f"tests/data/tf: {total / 1024:.0f} KiB")


if __name__ == "__main__":
    main(sys.argv[1:])
