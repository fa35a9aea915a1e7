"""Exact integer matrix products, fast.

NumPy's int64 matmul does not use BLAS and is tens of times slower than float64. A float64
product of integer matrices is exact when every partial sum is an integer of magnitude below
2^53: each product ``|a| * |b|`` and every sum of up to ``k`` of them is then representable, so
no rounding happens whatever order BLAS adds in. :func:`exact_matmul` checks that bound from the
operands' actual largest magnitudes and falls back to int64 when it does not hold.

With the ISA's widths the bound always holds (int16 x int16 over k < 2^16 terms is < 2^46), so
the fallback is a safety net, tested directly.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

#: Partial sums below this magnitude are exact in float64.
FLOAT64_EXACT = 1 << 53


def _max_abs(a: npt.NDArray[np.integer]) -> int:
    return max(int(a.max()), -int(a.min())) if a.size else 0


def exact_matmul(a: npt.NDArray[np.integer], b: npt.NDArray[np.integer]) -> npt.NDArray[np.int64]:
    """``a @ b`` for integer ``a[m, k]`` and ``b[k, n]`` (any integer dtypes), exactly, as int64."""
    if _max_abs(a) * _max_abs(b) * a.shape[1] < FLOAT64_EXACT:
        return (a.astype(np.float64) @ b.astype(np.float64)).astype(np.int64)
    return a.astype(np.int64) @ b.astype(np.int64)
