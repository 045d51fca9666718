"""ir.Graph -> .nb bytes: deterministic (same graph, same manifest -> same bytes) and written atomically."""
from __future__ import annotations

import json
import os
import tempfile
import zlib
from dataclasses import dataclass, field

import flatbuffers
import numpy as np

from .. import __version__
from ..ir import Graph, Tensor
from ..ir.graph import scales_from_amax16, stored_bytes
from .generated.Attr import AttrT
from .generated.KeyValue import KeyValueT
from .generated.Manifest import ManifestT
from .generated.MemoryPlan import MemoryPlanT
from .generated.MemorySlot import MemorySlotT
from .generated.Model import ModelT
from .generated.Op import OpT
from .generated.Quant import QuantT
from .generated.Var import VarT
from .schema import ATTR_KIND_TO_FB, DTYPE_TO_FB, IDENTIFIER, SCHEMA_VERSION, TRAILER, align


@dataclass
class Manifest:
    """Where a .nb came from: the source model's hash and format, and the opt flags that shaped it."""

    source_sha256: str = ""
    source_format: str = ""
    flags: dict[str, str] = field(default_factory=dict)


def _kv(d: dict[str, str]) -> list[KeyValueT]:
    out = []
    for k in sorted(d):
        kv = KeyValueT()
        kv.key, kv.value = str(k), str(d[k])
        out.append(kv)
    return out


def _attr(name: str, kind: str, value) -> AttrT:
    a = AttrT()
    a.name, a.kind = name, ATTR_KIND_TO_FB[kind]
    if kind == "int":
        a.i = int(value)
    elif kind == "float":
        a.f = float(value)
    elif kind == "bool":
        a.b = bool(value)
    elif kind in ("str", "dtype"):
        a.s = str(value)
    elif kind == "ints":
        a.ints = [int(v) for v in value]
    elif kind == "floats":
        a.floats = [float(v) for v in value]
    elif kind == "strs":
        a.strs = [str(v) for v in value]
    return a


class _SharedStringBuilder(flatbuffers.Builder):
    """Each distinct string is stored once (op types, attribute names, kernel ids repeat a lot)."""

    def __init__(self, size):
        super().__init__(size)
        self._strings: dict = {}

    def CreateString(self, s, encoding="utf-8", errors="strict"):  # noqa: N802 (flatbuffers' name)
        key = (s, encoding)
        if key not in self._strings:
            self._strings[key] = super().CreateString(s, encoding, errors)
        return self._strings[key]


def _memory(plan, index: dict[str, int]) -> MemoryPlanT:
    mp = MemoryPlanT()
    mp.arenaBytes, mp.lowerBoundBytes, mp.strategy = plan.arena_bytes, plan.lower_bound_bytes, plan.strategy
    mp.slots = []
    for s in plan.slots:
        st = MemorySlotT()
        st.tensors = [index[t] for t in s.tensors]
        st.offset, st.size, st.first, st.last = s.offset, s.size, s.first, s.last
        if s.sub:
            st.tensorOffsets = [s.sub.get(t, 0) for t in s.tensors]
        mp.slots.append(st)
    return mp


def _var_order(graph: Graph) -> list[str]:
    """Every tensor the graph uses, in first-use order: inputs, then node by node."""
    seen: dict[str, None] = dict.fromkeys(graph.inputs)
    for n in graph.nodes:
        seen.update(dict.fromkeys(i for i in n.inputs if i))
        seen.update(dict.fromkeys(n.outputs))
    seen.update(dict.fromkeys(graph.outputs))
    return list(seen)


def to_bytes(graph: Graph, manifest: Manifest | None = None) -> bytes:
    """Serialize a graph; node attributes are checked against the registry on the way."""
    from ..ir import OPS

    manifest = manifest or Manifest()
    names = _var_order(graph)
    index = {n: i for i, n in enumerate(names)}
    blobs: list[bytes] = []
    offset = 0
    # id(data) -> (offset, stored length if compressed else 0): a weight shared by two tensors is stored once
    blob_at: dict[int, tuple] = {}
    vars_: list[VarT] = []
    for name in names:
        t: Tensor = graph.tensors[name]
        v = VarT()
        v.name, v.dtype = name, DTYPE_TO_FB[t.dtype]
        v.rank = -1 if t.shape is None else len(t.shape)
        v.dims = [-1 if isinstance(d, str) else int(d) for d in t.shape or ()]
        if any(isinstance(d, str) for d in t.shape or ()):
            v.symbols = [d if isinstance(d, str) else "" for d in t.shape]
        if t.data is not None:
            data = np.asarray(t.data, dtype=t.dtype.np, order="C")
            if tuple(data.shape) != tuple(t.shape):
                raise ValueError(f"tensor {name!r}: data shape {data.shape} != declared {t.shape}")
            key = id(t.data)
            if key not in blob_at:
                raw = stored_bytes(data, t.quant is not None)
                blob_at[key] = offset, len(raw) if len(raw) != data.nbytes else 0
                blobs.append(raw + b"\0" * (align(len(raw)) - len(raw)))
                offset += align(len(raw))
            v.isConst, (v.dataOffset, v.storedLength), v.dataLength = True, blob_at[key], data.nbytes
        if t.quant is not None:
            q = QuantT()
            scale = np.asarray(t.quant.scale, np.float32).reshape(-1)
            half = (scale.astype(np.float64) * (2 ** (t.quant.bits - 1) - 1)).astype(np.float16)  # abs-max
            if t.quant.bits in (8, 16) and np.array_equal(scales_from_amax16(half, t.quant.bits), scale):
                q.scaleF16 = [int(v) for v in half.view(np.uint16)]  # exact: quantize() made them so
            else:
                q.scale = [float(s) for s in scale]
            q.axis, q.bits = int(t.quant.axis), int(t.quant.bits)
            v.quant = q
        vars_.append(v)

    ops = []
    for n in graph.nodes:
        d = OPS[n.op]
        o = OpT()
        o.opType, o.name, o.kernel = n.op, n.name, n.kernel
        o.inputs = [index[i] if i else -1 for i in n.inputs]
        o.outputs = [index[x] for x in n.outputs]
        # attributes at their default are left out: the reader restores them from the registry
        o.attrs = [_attr(k, d.attrs[k].kind, n.attrs[k]) for k in sorted(n.attrs)
                   if d.attrs[k].required or n.attrs[k] != d.attrs[k].default]
        ops.append(o)

    m = ModelT()
    m.schemaVersion = SCHEMA_VERSION
    m.producerVersion = f"liteopt {__version__}"
    mf = ManifestT()
    mf.sourceSha256, mf.sourceFormat = manifest.source_sha256, manifest.source_format
    mf.flags = _kv(manifest.flags)
    packed = zlib.compress(json.dumps(graph.metadata, sort_keys=True, ensure_ascii=False).encode("utf-8"), 9)
    if graph.metadata and len(packed) < sum(len(k.encode()) + len(v.encode()) for k, v in graph.metadata.items()):
        mf.metadataZlib = list(packed)  # an OCR dictionary of 6623 characters is 26 KB as text
    else:
        mf.metadata = _kv(graph.metadata)
    m.manifest, m.vars, m.ops = mf, vars_, ops
    m.inputs = [index[i] for i in graph.inputs]
    m.outputs = [index[o] for o in graph.outputs]
    m.dataSize = offset
    m.memory = _memory(graph.memory_plan, index) if graph.memory_plan is not None else None

    b = _SharedStringBuilder(1024)
    b.FinishSizePrefixed(m.Pack(b), file_identifier=IDENTIFIER)
    header = bytes(b.Output())
    pad = b"\0" * (align(len(header)) - len(header))
    data = b"".join(blobs)
    trailer = TRAILER.pack(IDENTIFIER, len(header) - 4, zlib.crc32(header), zlib.crc32(data))
    return header + pad + data + trailer


def write(graph: Graph, path: str, manifest: Manifest | None = None) -> int:
    """Write atomically (temp file in the same directory, then rename). Returns the file size."""
    payload = to_bytes(graph, manifest)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".liteopt-", suffix=".nb.tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return len(payload)


