"""Run NumPy matrix products on one BLAS thread (golden model and compiler calibration).

It lives in ``hw`` because that is the package every other one may import; it is a property of
the machine we run on, not of the accelerator.

The golden model's products are small (a few million MACs) and BLAS splits them over threads
anyway. On a loaded machine, or under ``pytest -n`` where every worker does the same, the threads
wait on each other and a 1 ms product takes 20 ms or more (measured with NumPy's bundled
OpenBLAS on two cores). :func:`single_blas_thread` limits the calling thread to one BLAS thread
while the machine runs, through OpenBLAS's thread-local setting, and restores it afterwards. With
another BLAS (or none found in the process) it does nothing: the results are the same either way,
only the speed differs.
"""

from __future__ import annotations

import ctypes
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

_SET_LOCAL = "openblas_set_num_threads_local"


@lru_cache(maxsize=1)
def _set_local() -> Any | None:
    """OpenBLAS's ``openblas_set_num_threads_local`` in this process, if it is loaded."""
    maps = Path("/proc/self/maps")
    if not maps.exists():
        return None
    paths = {line.split()[-1] for line in maps.read_text().splitlines() if "openblas" in line}
    for path in sorted(paths):
        try:
            fn = getattr(ctypes.CDLL(path), _SET_LOCAL)
        except (OSError, AttributeError):
            continue
        fn.argtypes, fn.restype = [ctypes.c_int], ctypes.c_int
        return fn
    return None


@contextmanager
def single_blas_thread() -> Iterator[None]:
    fn = _set_local()
    if fn is None:
        yield
        return
    previous = fn(1)
    try:
        yield
    finally:
        fn(previous)
