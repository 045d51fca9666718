"""Constants of the .nb layout shared by the writer and the reader (see nb.fbs)."""
import struct

from ..ir import DType
from .generated.AttrKind import AttrKind
from .generated.DType import DType as FbDType

IDENTIFIER = b"LTNB"
SCHEMA_VERSION = 3  # 3: Var.stored_length (zlib-compressed integer weights)
OLDEST_READABLE = 2  # version 2 files have no compressed blobs and read as they are
ALIGN = 64
TRAILER = struct.Struct("<4sIII")  # identifier, header size H, crc32(header), crc32(blob region)

DTYPE_TO_FB = {d: getattr(FbDType, d.name) for d in DType}
FB_TO_DTYPE = {v: k for k, v in DTYPE_TO_FB.items()}
ATTR_KIND_TO_FB = {k: getattr(AttrKind, k.upper()) for k in ("int", "float", "bool", "str", "ints", "floats", "strs",
                                                              "dtype")}
FB_TO_ATTR_KIND = {v: k for k, v in ATTR_KIND_TO_FB.items()}


def align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN
