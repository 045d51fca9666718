""".nb -> ir.Graph, validating everything; weights are zero-copy numpy views of an mmap (or of the buffer).

Any problem ends in `NbFormatError` naming the file; nothing else escapes `read()`.
"""
from __future__ import annotations

import json
import math
import mmap
import os
import zlib
from dataclasses import dataclass

import flatbuffers
import numpy as np

from ..ir import OPS, Graph, Node, QuantInfo, Tensor
from ..ir.errors import LiteoptError, NbFormatError
from ..ir.graph import scales_from_amax16
from ..ir.memory import MemoryPlan, Slot, check_plan
from .generated.Model import Model, ModelT
from .schema import (ALIGN, FB_TO_ATTR_KIND, FB_TO_DTYPE, IDENTIFIER, OLDEST_READABLE, SCHEMA_VERSION, TRAILER,
                     align)
from .write import Manifest


@dataclass
class NbModel:
    graph: Graph
    manifest: Manifest
    schema_version: int
    producer_version: str
    file_size: int


def _s(b) -> str:
    return b.decode("utf-8") if isinstance(b, bytes) else (b or "")


def read(path: str | None = None, *, buffer: bytes | None = None, verify_data: bool = True) -> NbModel:
    """Read a .nb from a path (mmap'ed) or from bytes; raise NbFormatError on any problem."""
    where = path if path is not None else "<buffer>"
    if buffer is None:
        if path is None:
            raise NbFormatError("no model given: pass a path or a buffer")
        if not os.path.isfile(path):
            raise NbFormatError(f"{path}: no such file" if not os.path.isdir(path) else f"{path}: is a directory, not a .nb file")
        try:
            with open(path, "rb") as f:
                size = os.fstat(f.fileno()).st_size
                if size == 0:
                    raise NbFormatError(f"{path}: empty file, not a liteopt .nb model")
                buf = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        except OSError as e:
            raise NbFormatError(f"{path}: cannot read: {e.strerror or e}") from None
    else:
        buf = buffer
    try:
        return _parse(buf, where, verify_data)
    except LiteoptError as e:
        raise NbFormatError(f"{where}: {e}" if not str(e).startswith(where) else str(e)) from None
    except Exception as e:  # a crafted file may trip anything in flatbuffers: it is still a format error
        raise NbFormatError(f"{where}: corrupt model file ({type(e).__name__}: {e})") from None


def _fail(msg: str):
    raise NbFormatError(msg)


def _inflate(buf, start: int, stored: int, length: int, what: str) -> bytes:
    try:
        d = zlib.decompressobj()
        raw = d.decompress(memoryview(buf)[start:start + stored], length)
        if len(raw) != length or not d.eof or d.unconsumed_tail:
            raise zlib.error(f"inflates to {len(raw)}{'+' if d.unconsumed_tail else ''} bytes, not {length}")
    except zlib.error as e:
        _fail(f"{what}: corrupt compressed weights ({e})")
    return raw


def _parse(buf, where: str, verify_data: bool) -> NbModel:
    mv = memoryview(buf)
    size = len(mv)
    if size < 8 + TRAILER.size:
        _fail(f"{where}: truncated or not a liteopt .nb model ({size} bytes)")
    if bytes(mv[8:12]) != IDENTIFIER:
        _fail(f"{where}: not a liteopt .nb model (file identifier {bytes(mv[8:12])!r}, expected {IDENTIFIER!r})")
    ident, hsize, hcrc, dcrc = TRAILER.unpack_from(mv, size - TRAILER.size)
    header_len = int.from_bytes(mv[0:4], "little") + 4
    if ident != IDENTIFIER or hsize + 4 != header_len:
        _fail(f"{where}: truncated or corrupt .nb file (the trailer is missing or wrong)")
    data_start = align(header_len)
    if data_start + TRAILER.size > size:
        _fail(f"{where}: truncated .nb file (header of {header_len} bytes, file of {size})")
    if zlib.crc32(mv[:header_len]) != hcrc:
        _fail(f"{where}: corrupt .nb file (header checksum mismatch)")

    if not flatbuffers.util.BufferHasIdentifier(mv, 0, IDENTIFIER, size_prefixed=True):
        _fail(f"{where}: not a liteopt .nb model")
    root = Model.GetRootAs(bytes(mv[4:header_len]), 0)
    version = root.SchemaVersion()
    producer = _s(root.ProducerVersion())
    if not OLDEST_READABLE <= version <= SCHEMA_VERSION:
        _fail(f"{where}: written by {producer or 'an unknown producer'} in .nb format version {version}; this "
              f"liteopt reads versions {OLDEST_READABLE} to {SCHEMA_VERSION}: convert the model again with this "
              f"liteopt's opt")
    m = ModelT.InitFromObj(root)
    data_size = m.dataSize
    if data_start + data_size + TRAILER.size != size:
        _fail(f"{where}: truncated or padded .nb file (expected {data_start + data_size + TRAILER.size} bytes, "
              f"found {size})")
    data = mv[data_start:data_start + data_size]
    if verify_data and zlib.crc32(data) != dcrc:
        _fail(f"{where}: corrupt .nb file (weight data checksum mismatch)")

    tensors: dict[str, Tensor] = {}
    names: list[str] = []
    for k, v in enumerate(m.vars or []):
        name = _s(v.name)
        if not name or name in tensors:
            _fail(f"{where}: var #{k} has an empty or duplicate name {name!r}")
        if v.dtype not in FB_TO_DTYPE:
            _fail(f"{where}: var {name!r} has unknown dtype code {v.dtype}")
        dtype = FB_TO_DTYPE[v.dtype]
        dims = [int(d) for d in (v.dims if v.dims is not None else [])]
        symbols = [_s(x) for x in (v.symbols or [])]
        if not (v.rank == len(dims) or (v.rank == -1 and not dims)) or (symbols and len(symbols) != len(dims)):
            _fail(f"{where}: var {name!r}: rank {v.rank} but {len(dims)} dims and {len(symbols)} symbols")
        shape = None if v.rank == -1 else tuple(symbols[k] if symbols and symbols[k] else d
                                                for k, d in enumerate(dims))
        if shape is not None and any(isinstance(d, int) and d < 0 for d in shape):
            _fail(f"{where}: var {name!r} has a negative dimension {shape}")
        t = Tensor(name, dtype, shape)
        if v.isConst:
            if shape is None or not all(isinstance(d, int) for d in shape):
                _fail(f"{where}: constant {name!r} has no static shape")
            numel = math.prod(shape)
            if v.dataLength != numel * dtype.itemsize:
                _fail(f"{where}: constant {name!r}: {v.dataLength} bytes for shape {shape} of {dtype}")
            stored = v.storedLength or v.dataLength
            if v.dataOffset % ALIGN or v.dataOffset + stored > data_size:
                _fail(f"{where}: constant {name!r}: blob at offset {v.dataOffset} (+{stored}) lies outside "
                      f"the {data_size}-byte data region or is not {ALIGN}-byte aligned")
            if v.storedLength:
                t.data = np.frombuffer(_inflate(buf, data_start + v.dataOffset, stored, v.dataLength,
                                                f"{where}: constant {name!r}"), dtype.np).reshape(shape)
            else:
                t.data = np.frombuffer(buf, dtype.np, numel, data_start + v.dataOffset).reshape(shape)
        if v.quant is not None:
            if v.quant.scaleF16 is not None and len(v.quant.scaleF16):
                scale = scales_from_amax16(np.asarray(v.quant.scaleF16, np.uint16).view(np.float16), v.quant.bits)
            else:
                scale = np.asarray(v.quant.scale if v.quant.scale is not None else [], np.float32).reshape(-1)
            t.quant = QuantInfo(scale, v.quant.axis, v.quant.bits)
            _check_quant(t, where)
        tensors[name] = t
        names.append(name)

    def var(i: int, what: str) -> str:
        if not 0 <= i < len(names):
            _fail(f"{where}: {what} refers to var #{i}, but there are {len(names)}")
        return names[i]

    nodes = []
    for k, o in enumerate(m.ops or []):
        op_type, op_name = _s(o.opType), _s(o.name)
        label = f"op #{k} {op_name!r} ({op_type})"
        if op_type not in OPS:
            _fail(f"{where}: {label}: this liteopt has no op {op_type!r}; the file needs a newer runtime")
        d = OPS[op_type]
        attrs = {}
        for a in o.attrs or []:
            kind = FB_TO_ATTR_KIND.get(a.kind)
            aname = _s(a.name)
            if aname not in d.attrs or kind != d.attrs[aname].kind:
                _fail(f"{where}: {label}: unexpected attribute {aname!r} of kind {kind}")
            attrs[aname] = _attr_value(a, kind)
        attrs = d.normalize_attrs(attrs, f"{where}: {label}")
        if attrs.get("act_type") == "hard_sigmoid" and attrs.get("act_alpha") == 0:
            # written before act_alpha carried hard_sigmoid's slope (opt never fuses a slope of 0): the default
            attrs["act_alpha"] = OPS["hard_sigmoid"].attrs["slope"].default
        ins = [var(i, label) if i != -1 else "" for i in (o.inputs if o.inputs is not None else [])]
        outs = [var(i, label) for i in (o.outputs if o.outputs is not None else [])]
        nodes.append(Node(op_type, ins, outs, attrs, op_name, _s(o.kernel)))
    inputs = [var(i, "model input") for i in (m.inputs if m.inputs is not None else [])]
    outputs = [var(i, "model output") for i in (m.outputs if m.outputs is not None else [])]
    mf = m.manifest
    metadata = {_s(kv.key): _s(kv.value) for kv in (mf.metadata or [])} if mf else {}
    if mf is not None and mf.metadataZlib is not None and len(mf.metadataZlib):
        packed = json.loads(zlib.decompress(bytes(np.asarray(mf.metadataZlib, np.uint8))).decode("utf-8"))
        if not isinstance(packed, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in packed.items()):
            _fail(f"{where}: the compressed metadata is not a string mapping")
        metadata.update(packed)
    graph = Graph(nodes, [*inputs], [*outputs], tensors, metadata)
    graph.verify()
    if m.memory is not None:
        graph.memory_plan = _memory(m.memory, var, tensors, where)
    manifest = Manifest(_s(mf.sourceSha256), _s(mf.sourceFormat),
                        {_s(kv.key): _s(kv.value) for kv in (mf.flags or [])}) if mf else Manifest()
    return NbModel(graph, manifest, version, producer, size)


_STORAGE = {("int8", 8), ("int16", 16), ("float16", 16)}


def _check_quant(t: Tensor, where: str) -> None:
    q = t.quant
    if t.data is None or (t.dtype.value, q.bits) not in _STORAGE:
        _fail(f"{where}: var {t.name!r}: quantization info on a {t.dtype} {'constant' if t.data is not None else 'variable'}")
    if t.dtype.is_float:
        if q.scale.size:
            _fail(f"{where}: var {t.name!r}: a float16 weight carries scales")
    elif not 0 <= q.axis < max(t.data.ndim, 1) or q.scale.size not in (1, t.data.shape[q.axis] if t.data.ndim else 1) \
            or not np.all(np.isfinite(q.scale)):
        _fail(f"{where}: var {t.name!r}: {q.scale.size} scales for axis {q.axis} of shape {t.shape}")


def _memory(mp, var, tensors, where: str) -> MemoryPlan:
    slots = []
    for k, s in enumerate(mp.slots or []):
        names = [var(i, f"memory slot #{k}") for i in (s.tensors if s.tensors is not None else [])]
        if not names or any(tensors[n].data is not None for n in names):
            _fail(f"{where}: memory slot #{k} is empty or holds a constant")
        subs = [int(v) for v in (s.tensorOffsets if s.tensorOffsets is not None else [])]
        if subs and len(subs) != len(names):
            _fail(f"{where}: memory slot #{k}: {len(subs)} tensor offsets for {len(names)} tensors")
        sub = {n: v for n, v in zip(names, subs) if v}
        for n in names:
            t = tensors[n]
            if t.shape is None or not all(isinstance(d, int) for d in t.shape) or \
                    sub.get(n, 0) + math.prod(t.shape) * t.dtype.itemsize > s.size:
                _fail(f"{where}: memory slot #{k}: tensor {n!r} does not fit its {s.size} bytes")
        slots.append(Slot(names, s.first, s.last, s.size, s.offset, sub))
    plan = MemoryPlan(slots, mp.arenaBytes, mp.lowerBoundBytes, _s(mp.strategy))
    try:
        check_plan(plan)
    except AssertionError:
        _fail(f"{where}: the memory plan is inconsistent (slots overlap or leave the arena)")
    return plan


def _attr_value(a, kind: str):
    if kind == "int":
        return a.i
    if kind == "float":
        return a.f
    if kind == "bool":
        return a.b
    if kind in ("str", "dtype"):
        return _s(a.s)
    if kind == "ints":
        return tuple(int(x) for x in (a.ints if a.ints is not None else []))
    if kind == "floats":
        return tuple(float(x) for x in (a.floats if a.floats is not None else []))
    if kind == "strs":
        return tuple(_s(x) for x in (a.strs or []))
    _fail(f"unknown attribute kind {kind}")
