"""One knob for the runtime's threads: numba's pool and the BLAS numpy was built with (OpenBLAS, as
threadpoolctl would do it: find the loaded library and call its set_num_threads)."""
from __future__ import annotations

import ctypes
import glob
import os
import re

_SYMBOLS = ("scipy_openblas_set_num_threads64_", "scipy_openblas_set_num_threads", "openblas_set_num_threads64_",
            "openblas_set_num_threads", "MKL_Set_Num_Threads")


def _blas_libraries() -> list[str]:
    try:
        with open("/proc/self/maps") as f:
            found = set(re.findall(r"(/\S*(?:openblas|mkl_rt)\S*\.(?:so|dylib)\S*)", f.read()))
    except OSError:
        found = set()
    if not found:
        import numpy
        libs = os.path.join(os.path.dirname(os.path.dirname(numpy.__file__)), "numpy.libs")
        found = set(glob.glob(os.path.join(libs, "*openblas*")))
    return sorted(found)


def set_blas_threads(n: int) -> bool:
    """Set the BLAS thread count; False when no known BLAS library was found (then nothing changes)."""
    setters = _blas_setters()
    for fn in setters:
        fn(ctypes.c_int(n))
    return bool(setters)


_found: list = []  # the BLAS set-threads functions, once found (every predictor load sets the threads)


def _blas_setters() -> list:
    if not _found:
        for path in _blas_libraries():
            try:
                lib = ctypes.CDLL(path)
            except OSError:
                continue
            fn = next((getattr(lib, sym) for sym in _SYMBOLS if getattr(lib, sym, None) is not None), None)
            if fn is not None:
                _found.append(fn)
    return _found


_wanted = {"threads": 1, "numba": False, "numba_threads": None}


def set_threads(n: int) -> None:
    """n threads for the runtime, in one of the two pools (`use_numba_pool`): by default the BLAS calls (GEMM
    convolutions, fc, matmul) and the numba kernels on the calling thread. OpenBLAS's workers spin for a while
    after each call, and a numba thread pool running beside them waits for a core each time: measured here,
    both pools at 2 threads made models 20-80x slower, so one pool gets the threads and the other one."""
    _wanted["threads"] = max(1, n)
    _apply()


def use_numba_pool(on: bool) -> None:
    """Give the threads to numba's pool (the channel-blocked kernels split their tiles over it) and run BLAS on
    one thread, or the other way round: the predictor picks by where a model's convolutions run."""
    _wanted["numba"] = bool(on)
    _apply()


def cores() -> int:
    """The most threads numba's pool can have (NUMBA_NUM_THREADS: the machine's cores by default)."""
    import numba
    return numba.config.NUMBA_NUM_THREADS


def numba_threads() -> int:
    """The threads numba's pool has, as `set_threads`/`use_numba_pool` last set them (numba's own count until
    then). The drivers that come serial and threaded ask this on every call: numba.get_num_threads() took
    0.6 us, a tenth of a small kernel's call."""
    n = _wanted["numba_threads"]
    if n is None:
        import numba
        return numba.get_num_threads()
    return n


def _apply() -> None:
    import numba
    n = _wanted["threads"]
    if _wanted["numba"]:
        _wanted["numba_threads"] = min(n, cores())
        set_blas_threads(1)
    else:
        _wanted["numba_threads"] = 1
        set_blas_threads(n)
    numba.set_num_threads(_wanted["numba_threads"])
