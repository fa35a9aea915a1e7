"""exp2, reciprocal and reciprocal square root: tables, error bounds, bit-exact steps."""

from __future__ import annotations

import numerics_reference as ref
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgemoe.hw.config import NumericsConfig
from edgemoe.hw.numerics.exp import exp2_neg, exp2_table
from edgemoe.hw.numerics.recip import msb_index, reciprocal, rsqrt
from edgemoe.hw.numerics.report import measure_exp, measure_reciprocal, measure_rsqrt

DEFAULT = NumericsConfig()
VARIANTS = [
    DEFAULT,
    NumericsConfig(score_frac_bits=4, exp_frac_bits=12, recip_table_bits=4),
    NumericsConfig(score_frac_bits=10, exp_frac_bits=14, recip_table_bits=10),
    NumericsConfig(recip_table_bits=6),
]

#: Asserted bounds (documented in docs/numerics.md).
EXP_MAX_REL_ERR = 2.0**-16  # for d > -2^F (results >= 1/2): the table rounding
RECIP_MAX_REL_ERR = 2.0**-15
RSQRT_MAX_REL_ERR = 2.0**-15


@pytest.mark.parametrize("num", VARIANTS, ids=lambda n: f"F{n.score_frac_bits}E{n.exp_frac_bits}")
def test_exp2_exhaustive_error(num: NumericsConfig) -> None:
    f_bits, e_bits = num.score_frac_bits, num.exp_frac_bits
    d = np.arange(-(e_bits + 4) << f_bits, 1)
    got = exp2_neg(d, num)
    exact = np.exp2(d / (1 << f_bits)) * (1 << e_bits)
    err = np.abs(got - exact)
    assert err.max() <= 1.0  # one LSB of Q(E) everywhere
    n = (-d) >> f_bits
    assert np.all(err <= 0.5 + 0.5 * 2.0**-n + 1e-9)
    head = d > -(1 << f_bits)
    assert (err[head] / exact[head]).max() <= 2.0**-e_bits
    assert np.all(got[d <= -(e_bits + 2) << f_bits] == 0)  # flushed
    assert np.all(np.diff(got) >= 0)  # monotonic
    # With 8 guard bits the shift rounds at 2^-(E+8); the table's own rounding is scaled by 2^-n.
    g = exp2_neg(d, num, frac_bits=e_bits + 8)
    assert np.all(np.abs(g - exact * 256) <= 0.5 + 0.5 * 2.0 ** (8 - n) + 1e-6)


def test_exp2_table_and_guards() -> None:
    t = exp2_table(DEFAULT)
    assert len(t) == 256 and t[0] == 1 << 16 and t[1:].max() < 1 << 16 and t.min() > 1 << 15
    assert not t.flags.writeable
    assert exp2_neg(-(1 << 20), DEFAULT).tolist() == 0
    with pytest.raises(ValueError, match="<= 0"):
        exp2_neg([1], DEFAULT)
    with pytest.raises(ValueError, match="frac_bits"):
        exp2_neg([0], DEFAULT, frac_bits=8)


def test_exp_report_bound() -> None:
    assert measure_exp(DEFAULT).summary()["max_rel_err"] <= EXP_MAX_REL_ERR


def test_msb_index_exhaustive_and_edges() -> None:
    x = np.concatenate([np.arange(1, 1 << 16), 1 << np.arange(63), (1 << np.arange(1, 63)) - 1])
    want = [int(v).bit_length() - 1 for v in x.tolist()]
    assert msb_index(x).tolist() == want


def _inputs(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    big = np.exp2(rng.uniform(16, 61.9, 50_000)).astype(np.int64)
    edges = np.concatenate([1 << np.arange(62), (1 << np.arange(1, 62)) - 1])
    return np.concatenate([np.arange(1, 1 << 16), big, edges])


@pytest.mark.parametrize("num", VARIANTS, ids=lambda n: f"T{n.recip_table_bits}")
def test_reciprocal_and_rsqrt_relative_error(num: NumericsConfig) -> None:
    x = _inputs(num.recip_table_bits)
    xf = x.astype(np.float64)
    mant, e = reciprocal(x, num)
    assert mant.min() >= 1 << 15 and mant.max() < 1 << 16
    assert np.abs(np.ldexp(mant.astype(np.float64), -e) * xf - 1).max() <= RECIP_MAX_REL_ERR
    mant, e = rsqrt(x, num)
    assert mant.min() >= 1 << 15 and mant.max() < 1 << 16
    got = np.ldexp(mant.astype(np.float64), -e) * np.sqrt(xf)
    assert np.abs(got - 1).max() <= RSQRT_MAX_REL_ERR


def test_recip_report_bounds() -> None:
    assert measure_reciprocal(DEFAULT).summary()["max_rel_err"] <= RECIP_MAX_REL_ERR
    assert measure_rsqrt(DEFAULT).summary()["max_rel_err"] <= RSQRT_MAX_REL_ERR


@settings(max_examples=200, deadline=None)
@given(x=st.integers(1, (1 << 62) - 1), t_bits=st.sampled_from([4, 5, 8, 10]))
def test_recip_matches_scalar_steps(x: int, t_bits: int) -> None:
    num = NumericsConfig(recip_table_bits=t_bits)
    m, e = reciprocal([x], num)
    assert (int(m[0]), int(e[0])) == ref.reciprocal(x, num)
    m, e = rsqrt([x], num)
    assert (int(m[0]), int(e[0])) == ref.rsqrt(x, num)


def test_recip_rejects_out_of_range() -> None:
    for bad in ([0], [-3], [1 << 62]):
        with pytest.raises(ValueError, match="2\\^62"):
            reciprocal(bad, DEFAULT)
        with pytest.raises(ValueError, match="2\\^62"):
            rsqrt(bad, DEFAULT)
