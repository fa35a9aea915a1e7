"""Fixed-point primitives: wrap, saturate, rounding shift, requantize, multiplier quantization.

Everything in the bit-exact path works on ``int64`` NumPy arrays (Python ints and lists are
accepted and converted). The rounding rule of the whole accelerator is *round half up* (toward
+inf) implemented as ``(x + 2^(s-1)) >> s`` with an arithmetic shift; the Verilog mirrors it with
one adder and a shifter.

:func:`quantize` and :func:`dequantize` are float helpers for the compiler; they are not part of
the bit-exact path.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]
IntLike = int | npt.ArrayLike

#: Multipliers are unsigned 16-bit and normalised to [2^15, 2^16) by :func:`quantize_multiplier`.
MULT_BITS = 16
#: Largest requantize shift (the ISA's 6-bit shift field).
MAX_SHIFT = 63


def _i64(x: IntLike) -> IntArray:
    return np.asarray(x, dtype=np.int64)


def wrap(x: IntLike, bits: int) -> IntArray:
    """Two's-complement wrap of ``x`` to ``bits`` bits (1..64): keep the low bits, sign-extend.

    This is what a ``bits``-wide hardware register does on overflow (accumulators wrap).
    """
    x = _i64(x)
    if bits >= 64:
        return x
    low = x & ((1 << bits) - 1)
    half = 1 << (bits - 1)
    return np.where(low >= half, low - half - half, low)


def saturate(x: IntLike, bits: int) -> IntArray:
    """Clamp ``x`` to the signed range of ``bits`` bits: [-2^(bits-1), 2^(bits-1) - 1]."""
    return np.clip(_i64(x), -(1 << (bits - 1)), (1 << (bits - 1)) - 1)


def round_shift(x: IntLike, shift: IntLike) -> IntArray:
    """Arithmetic right shift rounding half up (toward +inf): ``floor(x / 2^shift + 1/2)``.

    Steps: ``(x + (1 << (shift - 1))) >> shift`` for shift > 0; ``x`` for shift == 0.
    ``shift`` (0..63) may be a scalar or an array broadcast against ``x``. The addition must not
    overflow: ``|x| < 2^62`` is always safe.
    """
    x = _i64(x)
    if isinstance(shift, (int, np.integer)):
        s = int(shift)
        return x if s == 0 else (x + (1 << (s - 1))) >> s
    s = _i64(shift)
    bias = np.where(s > 0, np.left_shift(np.int64(1), np.maximum(s - 1, 0)), 0)
    return (x + bias) >> s


def requantize(acc: IntLike, mult: IntLike, shift: IntLike, out_bits: int) -> IntArray:
    """Rescale an accumulator: ``saturate(round_shift(acc * mult, shift), out_bits)``.

    ``acc`` is signed (up to 40 bits), ``mult`` unsigned 16-bit (0..65535), ``shift`` 0..63;
    ``mult`` and ``shift`` may be per-channel arrays broadcast against ``acc``. The product
    needs 57 bits (signed) and the result equals the exactly rounded real value
    ``floor(acc * mult / 2^shift + 1/2)`` clamped to ``out_bits``.
    """
    return saturate(round_shift(_i64(acc) * _i64(mult), shift), out_bits)


def quantize_multiplier(real_scale: float) -> tuple[int, int]:
    """The (mult, shift) with mult in [2^15, 2^16) and shift in [0, 63] nearest to real_scale.

    ``mult / 2^shift`` is the closest such value to ``real_scale`` (ties round up), so its
    relative error is at most 2^-16. Returns (0, 0) for 0. Representable scales are about
    [2^-48, 65535.5); anything else (negative, NaN, inf, too large or too small) raises
    :class:`ValueError` naming the value.
    """
    try:
        value = float(real_scale)
    except (TypeError, ValueError):
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"requantize scale {real_scale!r} is not a finite number >= 0")
    if value == 0:
        return 0, 0
    exact = Fraction(value)
    _, exponent = math.frexp(value)  # real_scale = fr * 2^exponent, fr in [0.5, 1)
    shift = MULT_BITS - exponent
    mult = math.floor(exact * (Fraction(2) ** shift) + Fraction(1, 2))
    if mult == 1 << MULT_BITS:
        mult, shift = mult >> 1, shift - 1
    if not 0 <= shift <= MAX_SHIFT:
        raise ValueError(
            f"requantize scale {real_scale!r} is not representable as mult/2^shift with "
            f"mult in [2^15, 2^16) and shift in [0, {MAX_SHIFT}] (representable: about "
            f"[2^-48, 65535.5))"
        )
    return mult, shift


def quantize_multipliers(real_scales: npt.ArrayLike) -> tuple[IntArray, IntArray]:
    """Vectorised :func:`quantize_multiplier` (same results, element by element).

    Exact in float64: ``ldexp(v, shift)`` only changes the exponent, and adding 1/2 to a value
    with 16 integer bits and at most 37 fraction bits needs no rounding.
    """
    v = np.asarray(real_scales, dtype=np.float64)
    bad = ~np.isfinite(v) | (v < 0)
    if bad.any():
        raise ValueError(f"requantize scale {v[bad].flat[0]!r} is not a finite number >= 0")
    _, exponent = np.frexp(v)
    shift = (MULT_BITS - exponent).astype(np.int64)
    mult = np.floor(np.ldexp(v, shift) + 0.5).astype(np.int64)
    carry = mult == 1 << MULT_BITS
    mult = np.where(carry, mult >> 1, mult)
    shift = np.where(carry, shift - 1, shift)
    zero = v == 0
    mult, shift = np.where(zero, 0, mult), np.where(zero, 0, shift)
    out = ~zero & ((shift < 0) | (shift > MAX_SHIFT))
    if out.any():
        raise ValueError(
            f"requantize scale {v[out].flat[0]!r} is not representable as mult/2^shift with "
            f"mult in [2^15, 2^16) and shift in [0, {MAX_SHIFT}] (representable: about "
            f"[2^-48, 65535.5))"
        )
    return mult, shift


def quantize(x_float: npt.ArrayLike, scale: float, bits: int) -> IntArray:
    """Float to signed ``bits``-bit integers: ``round(x / scale)``, saturating.

    Rounding is half away from zero. A float-side helper for the compiler and the tests.
    """
    v = np.asarray(x_float, dtype=np.float64) / scale
    r = np.sign(v) * np.floor(np.abs(v) + 0.5)
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return np.clip(r, lo, hi).astype(np.int64)


def dequantize(q: IntLike, scale: float) -> npt.NDArray[np.float64]:
    """Integers back to real values: ``q * scale`` as float64."""
    return np.asarray(q, dtype=np.float64) * scale
