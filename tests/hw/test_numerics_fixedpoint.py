"""Fixed-point primitives: requantize equals the exactly rounded real result, always."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgemoe.hw.numerics.fixedpoint import (
    dequantize,
    quantize,
    quantize_multiplier,
    quantize_multipliers,
    requantize,
    round_shift,
    saturate,
    wrap,
)


def exact_requantize(acc: int, mult: int, shift: int, out_bits: int) -> int:
    """The specification: floor(acc * mult / 2^shift + 1/2), then saturate (Fractions)."""
    v = math.floor(Fraction(acc * mult, 1 << shift) + Fraction(1, 2))
    return max(-(1 << (out_bits - 1)), min((1 << (out_bits - 1)) - 1, v))


def test_requantize_exhaustive_small_widths() -> None:
    """Every 7-bit acc, 7-bit mult and shift 0..10, for three output widths."""
    acc = np.arange(-64, 64)
    mult = np.arange(0, 128)
    a, m = np.meshgrid(acc, mult, indexing="ij")
    for shift in range(11):
        exact = {
            (x, y): math.floor(Fraction(x * y, 1 << shift) + Fraction(1, 2))
            for x in acc.tolist()
            for y in mult.tolist()
        }
        for out_bits in (4, 8, 12):
            got = requantize(a, m, shift, out_bits)
            lo, hi = -(1 << (out_bits - 1)), (1 << (out_bits - 1)) - 1
            want = np.array(
                [[max(lo, min(hi, exact[(x, y)])) for y in mult.tolist()] for x in acc.tolist()]
            )
            assert np.array_equal(got, want), (shift, out_bits)


@settings(max_examples=400, deadline=None)
@given(
    acc=st.integers(-(1 << 39), (1 << 39) - 1),
    mult=st.integers(0, 65535),
    shift=st.integers(0, 63),
    out_bits=st.integers(2, 48),
)
def test_requantize_large_widths(acc: int, mult: int, shift: int, out_bits: int) -> None:
    assert int(requantize(acc, mult, shift, out_bits)) == exact_requantize(
        acc, mult, shift, out_bits
    )


@settings(max_examples=100, deadline=None)
@given(
    acc=st.lists(st.integers(-(1 << 39), (1 << 39) - 1), min_size=1, max_size=16),
    mult=st.integers(0, 65535),
    shift=st.integers(0, 63),
)
def test_requantize_per_channel_arrays(acc: list[int], mult: int, shift: int) -> None:
    n = len(acc)
    mults = np.array([(mult + 977 * i) % 65536 for i in range(n)])
    shifts = np.array([(shift + 7 * i) % 64 for i in range(n)])
    got = requantize(np.array(acc), mults, shifts, 16)
    want = [exact_requantize(a, int(m), int(s), 16) for a, m, s in zip(acc, mults, shifts)]
    assert got.tolist() == want


def test_round_shift_rounds_half_up() -> None:
    assert round_shift([-3, -2, -1, 0, 1, 2, 3], 1).tolist() == [-1, -1, 0, 0, 1, 1, 2]
    assert round_shift([5, 5, 5, 5], [0, 1, 2, 3]).tolist() == [5, 3, 1, 1]
    assert round_shift(-(1 << 61), 63).tolist() == 0


def test_wrap_and_saturate() -> None:
    assert wrap([127, 128, -129, 255, 256], 8).tolist() == [127, -128, 127, -1, 0]
    assert wrap([(1 << 62) + 5], 63).tolist() == [-(1 << 62) + 5]
    assert wrap([-5], 64).tolist() == [-5]
    assert saturate([300, -300, 5], 8).tolist() == [127, -128, 5]


@settings(max_examples=300, deadline=None)
@given(st.floats(min_value=2.0**-48, max_value=65535.0, allow_nan=False))
def test_quantize_multiplier_is_nearest(scale: float) -> None:
    mult, shift = quantize_multiplier(scale)
    assert 1 << 15 <= mult < 1 << 16 and 0 <= shift <= 63
    exact = Fraction(scale)
    err = abs(Fraction(mult, 1 << shift) - exact)
    assert err <= Fraction(1, 1 << (shift + 1))
    assert err / exact <= Fraction(1, 1 << 16)
    # No other representable pair is closer.
    for m2, s2 in ((mult - 1, shift), (mult + 1, shift), (mult * 2 - 1, shift + 1)):
        if 1 << 15 <= m2 < 1 << 16 and 0 <= s2 <= 63:
            assert abs(Fraction(m2, 1 << s2) - exact) >= err


def test_quantize_multiplier_edges() -> None:
    assert quantize_multiplier(0.0) == (0, 0)
    assert quantize_multiplier(1.0) == (32768, 15)
    assert quantize_multiplier(65535.4) == (65535, 0)
    assert quantize_multiplier(2.0**-48) == (32768, 63)
    for bad in (-1.0, math.nan, math.inf, 65535.6, 2.0**-50):
        with pytest.raises(ValueError, match=str(bad)[:6]):
            quantize_multiplier(bad)


def test_quantize_round_trip() -> None:
    q = quantize([0.5, -0.5, 1.49, -1e9, 1e9, 0.0], 1.0, 8)
    assert q.tolist() == [1, -1, 1, -128, 127, 0]
    x = np.linspace(-1, 1, 101)
    assert np.max(np.abs(dequantize(quantize(x, 1 / 100, 16), 1 / 100) - x)) <= 0.5 / 100 + 1e-12


@settings(max_examples=500, deadline=None)
@given(st.lists(st.floats(min_value=2.0**-47, max_value=65535.0, allow_nan=False), min_size=1, max_size=20))
def test_vectorised_multipliers_equal_scalar(values: list[float]) -> None:
    mult, shift = quantize_multipliers(values)
    assert [(int(m), int(s)) for m, s in zip(mult, shift)] == [quantize_multiplier(v) for v in values]
