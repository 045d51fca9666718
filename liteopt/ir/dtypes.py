"""The dtypes a liteopt tensor can have, and their numpy equivalents."""
from __future__ import annotations

import enum

import numpy as np


class DType(str, enum.Enum):
    FLOAT32 = "float32"
    FLOAT16 = "float16"
    INT64 = "int64"
    INT32 = "int32"
    INT16 = "int16"
    INT8 = "int8"
    UINT8 = "uint8"
    BOOL = "bool"

    @property
    def np(self) -> np.dtype:
        return np.dtype(self.value)

    @property
    def itemsize(self) -> int:
        return self.np.itemsize

    @property
    def is_float(self) -> bool:
        return self in (DType.FLOAT32, DType.FLOAT16)

    @classmethod
    def of(cls, x) -> "DType":
        """DType of a numpy array, numpy dtype or dtype name; ValueError if we do not support it."""
        if isinstance(x, DType):
            return x
        name = np.dtype(x.dtype if hasattr(x, "dtype") else x).name
        try:
            return cls(name)
        except ValueError:
            raise ValueError(f"unsupported dtype {name!r} (supported: {', '.join(d.value for d in cls)})") from None

    def __str__(self) -> str:
        return self.value


def compute_dtype(x) -> DType:
    """The dtype liteopt computes a source tensor of numpy dtype `x` in: float64 in float32 (the CPU kernels
    are float32; exporters emit doubles for index grids and the like, e.g. `torch.arange(h) + 0.5`), other
    dtypes as `DType.of`, which raises ValueError for those liteopt has no kernels for."""
    name = np.dtype(x).name
    return DType.FLOAT32 if name == "float64" else DType.of(name)


def narrow(arr: np.ndarray) -> np.ndarray:
    """A source constant in the nearest supported dtype: float64 -> float32, unsigned 16-64 bit -> int64
    (front ends read models whose exporters store such constants); other dtypes are returned as they are."""
    if arr.dtype == np.float64:
        return arr.astype(np.float32)
    if arr.dtype in (np.uint16, np.uint32, np.uint64):
        return arr.astype(np.int64)
    return arr
