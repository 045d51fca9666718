"""Caffe .prototxt (text) + .caffemodel (binary) -> ir.Graph, with protobuf and no Caffe.

Layer parameters come from the prototxt; the weights (blobs) from the caffemodel, matched by layer name.
Both the current `layer` and the legacy V1 `layers` formats are read; inputs come from `input` +
`input_dim`/`input_shape` or from Input layers; in-place layers (top == bottom) get fresh tensor names so
the IR stays single-assignment, and the net's outputs keep their blob names. Layers run in TEST phase.
"""
from __future__ import annotations

import os

import numpy as np
from google.protobuf import text_format
from google.protobuf.message import DecodeError

from ...ir import DType, Graph, Tensor
from ...ir.errors import ConversionError, LiteoptError, UnsupportedOpsError
from ..onnx.registry import ConvertCtx
from . import caffe_pb2 as pb
from .layers import LAYERS

SKIPPED = {"Silence", "Accuracy", "SoftmaxWithLoss", "EuclideanLoss"}
INPUT_LAYERS = {"Input", "Data", "ImageData", "MemoryData", "DummyData", "HDF5Data", "AnnotatedData", "Python"}
V1_NAMES = {v.number: n for n, v in pb.V1LayerParameter.LayerType.DESCRIPTOR.values_by_name.items()}
V1_TO_TYPE = {"CONVOLUTION": "Convolution", "DECONVOLUTION": "Deconvolution", "POOLING": "Pooling",
              "INNER_PRODUCT": "InnerProduct", "RELU": "ReLU", "SIGMOID": "Sigmoid", "TANH": "TanH",
              "ABSVAL": "AbsVal", "POWER": "Power", "ELTWISE": "Eltwise", "CONCAT": "Concat", "SLICE": "Slice",
              "SPLIT": "Split", "SOFTMAX": "Softmax", "DROPOUT": "Dropout", "FLATTEN": "Flatten", "LRN": "LRN",
              "DATA": "Data", "MEMORY_DATA": "MemoryData", "IMAGE_DATA": "ImageData", "SILENCE": "Silence",
              "SOFTMAX_LOSS": "SoftmaxWithLoss", "ACCURACY": "Accuracy", "EXP": "Exp", "BNLL": "BNLL",
              "THRESHOLD": "Threshold", "MVN": "MVN", "ARGMAX": "ArgMax"}


def _read_prototxt(path: str) -> pb.NetParameter:
    if not os.path.isfile(path):
        raise ConversionError(f"{path}: no such file")
    net = pb.NetParameter()
    try:
        with open(path, encoding="utf-8", errors="strict") as f:
            text_format.Parse(f.read(), net, allow_unknown_field=True, allow_unknown_extension=True)
    except (text_format.ParseError, UnicodeDecodeError) as e:
        raise ConversionError(f"{path}: not a valid Caffe prototxt: {e}") from None
    return net


def _read_caffemodel(path: str) -> pb.NetParameter:
    if not os.path.isfile(path):
        raise ConversionError(f"{path}: no such file")
    net = pb.NetParameter()
    try:
        with open(path, "rb") as f:
            net.ParseFromString(f.read())
    except (DecodeError, ValueError, RuntimeError) as e:
        raise ConversionError(f"{path}: not a valid .caffemodel (truncated or corrupt?): {e}") from None
    if not net.layer and not net.layers:
        raise ConversionError(f"{path}: not a valid .caffemodel (no layers found)")
    return net


def blob_array(b: pb.BlobProto) -> np.ndarray:
    data = np.asarray(b.double_data if len(b.double_data) else b.data, np.float32)
    if b.HasField("shape"):
        shape = tuple(int(d) for d in b.shape.dim)
    else:  # legacy 4-D num/channels/height/width (the layer reshapes to what it expects)
        shape = tuple(d for d in (b.num, b.channels, b.height, b.width))
    if int(np.prod(shape)) != data.size:
        raise ValueError(f"blob of shape {shape} holds {data.size} values")
    return data.reshape(shape)


def _layers(net: pb.NetParameter):
    """(name, type, bottoms, tops, layer message) in order, for either format, TEST phase only."""
    if net.layer:
        items = [(lyr.name, lyr.type, list(lyr.bottom), list(lyr.top), lyr) for lyr in net.layer]
    else:
        items = [(lyr.name, V1_TO_TYPE.get(V1_NAMES.get(lyr.type, ""), V1_NAMES.get(lyr.type, str(lyr.type))),
                  list(lyr.bottom), list(lyr.top), lyr) for lyr in net.layers]
    for name, ltype, bottoms, tops, lyr in items:
        if any(r.HasField("phase") and r.phase != pb.TEST for r in lyr.include):
            continue
        if any(r.HasField("phase") and r.phase == pb.TEST for r in lyr.exclude):
            continue
        yield name, ltype, bottoms, tops, lyr


def unsupported_layers(layers) -> dict[str, list[str]]:
    """Layer type -> names of its layers, for every type we cannot convert (a Python layer that reads
    bottoms is a custom op, not an input)."""
    bad: dict[str, list[str]] = {}
    for name, ltype, bottoms, _, _ in layers:
        known = ltype in LAYERS or ltype in SKIPPED or (ltype in INPUT_LAYERS and not bottoms)
        if not known:
            bad.setdefault(ltype, []).append(name)
    return dict(sorted(bad.items()))


class CaffeCtx(ConvertCtx):
    """The ONNX converters' context, plus the current layer's blobs from the .caffemodel."""

    blobs: list = []
    in_model: bool = True  # the current layer is in the .caffemodel
    used: int = 0  # how many of its blobs the converter read

    def start(self, name: str, ltype: str, tops: list, blobs: list | None) -> None:
        self.node_name, self.node_op, self._emitted_here, self.node_outputs = name or ltype, ltype, 0, tops
        self.blobs, self.in_model, self.used = blobs or [], blobs is not None, 0

    def error(self, msg: str) -> ConversionError:
        return ConversionError(f"layer {self.node_name!r} ({self.node_op}): {msg}")

    def blob(self, i: int, what: str) -> np.ndarray:
        if not self.in_model:
            raise self.error(f"the layer is not in the .caffemodel, which must hold {what} (blob #{i})")
        if i >= len(self.blobs):
            raise self.error(f"the .caffemodel has {len(self.blobs)} blob(s) for this layer, {what} (blob #{i}) "
                             f"is missing")
        self.used = max(self.used, i + 1)
        return self.blobs[i]

    def ignore_blobs(self) -> None:
        """The layer stores blobs that its forward pass does not read (BatchNorm on batch statistics)."""
        self.used = len(self.blobs)

    def check_all_blobs_used(self) -> None:
        """Caffe refuses a .caffemodel layer with more blobs than the prototxt's layer has."""
        if len(self.blobs) > self.used:
            raise self.error(f"the .caffemodel has {len(self.blobs)} blob(s) for this layer, its parameters in the "
                             f"prototxt use {self.used} (bias_term or another parameter does not match the weights?)")


def load_caffe(prototxt: str, caffemodel: str, input_shapes: dict | None = None) -> Graph:
    net = _read_prototxt(prototxt)
    weights = _read_caffemodel(caffemodel)
    layers = list(_layers(net))
    bad = unsupported_layers(layers)
    if bad:
        raise UnsupportedOpsError.listing(prototxt, bad, kind="layer type", unit="layer")
    blobs: dict[str, list] = {}
    for name, _, _, _, lyr in _layers(weights):
        try:
            blobs[name] = [blob_array(b) for b in lyr.blobs]
        except ValueError as e:
            raise ConversionError(f"{caffemodel}: layer {name!r}: {e}") from None

    graph = Graph(nodes=[], inputs=[], outputs=[], tensors={})
    ctx = CaffeCtx(graph, opset=0)
    current: dict[str, str] = {}  # blob name -> our tensor holding its latest value

    def add_input(blob: str, shape):
        shape = tuple(int(d) for d in shape)
        if input_shapes and blob in input_shapes:
            shape = tuple(input_shapes[blob])
        graph.tensors[blob] = Tensor(blob, DType.FLOAT32, shape)
        graph.inputs.append(blob)
        current[blob] = blob

    dims = list(net.input_dim)
    for k, blob in enumerate(net.input):
        if k < len(net.input_shape):
            add_input(blob, net.input_shape[k].dim)
        elif len(dims) >= 4 * (k + 1):
            add_input(blob, dims[4 * k:4 * k + 4])
        else:
            raise ConversionError(f"{prototxt}: input {blob!r} has no shape (input_dim / input_shape); "
                                  f"give it with --input_shape={blob}:N,C,H,W")
    unread: dict[str, bool] = {}  # blob -> its latest value has not been read yet
    produced: list[str] = []
    for name, ltype, bottoms, tops, lyr in layers:
        if ltype in INPUT_LAYERS:
            shapes = list(lyr.input_param.shape) if ltype == "Input" else []
            for k, top in enumerate(tops):
                if ltype != "Input":
                    if input_shapes and top in input_shapes:
                        add_input(top, input_shapes[top])
                        continue
                    if len(tops) > 1 and k > 0:
                        continue  # the label top of a data layer
                    raise ConversionError(f"{prototxt}: data layer {name!r}: its shape is not in the prototxt; "
                                          f"give it with --input_shape={top}:N,C,H,W")
                if not shapes and not (input_shapes and top in input_shapes):
                    raise ConversionError(f"{prototxt}: Input layer {name!r} has no shape; use --input_shape")
                add_input(top, shapes[min(k, len(shapes) - 1)].dim if shapes else input_shapes[top])
            continue
        if ltype in SKIPPED:
            continue
        ctx.start(name, ltype, tops, blobs.get(name))
        missing = [b for b in bottoms if b not in current]
        if missing:
            raise ConversionError(f"{prototxt}: layer {name!r} ({ltype}) reads blob(s) {', '.join(missing)} that no "
                                  f"earlier layer produces")
        try:
            outs = LAYERS[ltype](ctx, [current[b] for b in bottoms], lyr)
            ctx.check_all_blobs_used()
        except LiteoptError as e:
            raise ConversionError(f"{prototxt}: {e}") from None
        except Exception as e:
            raise ConversionError(f"{prototxt}: layer {name!r} ({ltype}) cannot be converted: "
                                  f"{type(e).__name__}: {e}") from None
        outs = outs if isinstance(outs, list) else [outs]
        if len(outs) != len(tops):
            raise ConversionError(f"{prototxt}: layer {name!r} ({ltype}) has {len(tops)} tops, expected {len(outs)}")
        for b in bottoms:
            unread[b] = False
        for top, ours in zip(tops, outs):
            current[top] = ours
            unread[top] = True
            if top not in produced:
                produced.append(top)
    outputs = [b for b in produced if unread[b]]
    for blob in outputs:
        ours = current[blob]
        if ours in graph.inputs or graph.tensors[ours].is_const or ours in graph.outputs:
            ctx.node_name, ctx.node_op, ctx._emitted_here = f"output/{blob}", "Split", 0
            ours = ctx.emit("assign", [ours])
        if ours != blob and blob not in graph.tensors:
            graph.rename(ours, blob)
            ours = blob
        graph.outputs.append(ours)
    if not graph.outputs:
        raise ConversionError(f"{prototxt}: the net has no output")
    graph.prune()
    return graph
