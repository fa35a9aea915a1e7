"""Online softmax: accuracy against float64, bit-exact steps, statistics byte layout."""

from __future__ import annotations

import numerics_reference as ref
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from edgemoe.hw.config import NumericsConfig
from edgemoe.hw.numerics.report import exact_softmax, measure_softmax, softmax_rows
from edgemoe.hw.numerics.softmax import (
    SUM_GUARD_BITS,
    SoftmaxStats,
    online_softmax_stats,
    pack_stats,
    softmax,
    softmax_probs,
    unpack_stats,
)

DEFAULT = NumericsConfig()
#: The asserted bound: max abs error per probability (Q15 output).
SOFTMAX_MAX_ABS_ERR = 2.0**-9


@pytest.mark.parametrize(
    "num",
    [
        DEFAULT,
        NumericsConfig(score_frac_bits=4, exp_frac_bits=12, recip_table_bits=4),
        NumericsConfig(score_frac_bits=10, exp_frac_bits=14),
    ],
    ids=["default", "F4E12T4", "F10E14"],
)
@pytest.mark.parametrize("block", [1, 16, 64])
def test_random_and_adversarial_rows(num: NumericsConfig, block: int) -> None:
    for z in softmax_rows(num.score_frac_bits):
        p = softmax(z, num, block=block)
        assert p.min() >= 0 and p.max() <= 32767
        err = np.abs(p / 32768 - exact_softmax(z, num.score_frac_bits))
        assert err.max() <= SOFTMAX_MAX_ABS_ERR, (z.shape, err.max())


def test_report_figure_is_within_bound() -> None:
    assert measure_softmax(DEFAULT).summary()["max_abs_err"] <= SOFTMAX_MAX_ABS_ERR


@pytest.mark.parametrize(
    "num", [DEFAULT, NumericsConfig(score_frac_bits=4, exp_frac_bits=12)], ids=["E16", "E12"]
)
def test_flush_case_needs_the_guard_bits(num: NumericsConfig) -> None:
    """1023 terms just below half an LSB of the sum each flush to 0: the worst rounding loss.

    Without SUM_GUARD_BITS the loss is 1023 * 2^-(E+1) ~= 2^-7 (4x the bound); with them it is
    1023 * 2^-(E+9).
    """
    f_bits, e_bits = num.score_frac_bits, num.exp_frac_bits
    for below in (e_bits + 1, e_bits + SUM_GUARD_BITS + 1):
        z = np.full((1, 1024), -((below << f_bits) + 1))
        z[0, 0] = 0
        err = np.abs(softmax(z, num) / 32768 - exact_softmax(z, f_bits)).max()
        # Lost mass 1023 * 2^-(E+G+1), plus the Q15 output rounding and saturation.
        assert err <= 2.0 ** -(e_bits + SUM_GUARD_BITS - 9) + 2.0**-15


def test_special_rows() -> None:
    for n in (1, 3, 129, 1024):
        for v in (-32768, 0, 32767):
            p = softmax(np.full((1, n), v), DEFAULT)
            assert np.all(np.abs(p / 32768 - 1 / n) <= 2.0**-15)
    p = softmax(np.array([[-32768, 32767, -32768]]), DEFAULT)
    assert p.tolist() == [[0, 32767, 0]]


@settings(max_examples=60, deadline=None)
@given(
    rows=hnp.arrays(
        np.int64,
        st.tuples(st.integers(1, 4), st.integers(1, 40)),
        elements=st.integers(-32768, 32767),
    ),
    spread=st.sampled_from([1, 16, 256, 4096]),
    num=st.sampled_from(
        [DEFAULT, NumericsConfig(score_frac_bits=4, exp_frac_bits=12, recip_table_bits=5)]
    ),
    block=st.sampled_from([1, 3, 4, 16, 64]),
)
def test_matches_scalar_steps(rows: np.ndarray, spread: int, num: NumericsConfig, block: int) -> None:
    z = np.clip(rows * spread // 256, -32768, 32767)
    stats = online_softmax_stats(z, num, block)
    probs = softmax_probs(z, stats, num)
    for i, row in enumerate(z.tolist()):
        b, mant, exp, p = ref.softmax_row(row, num, block=block)
        assert (int(stats.b[i]), int(stats.mant[i]), int(stats.exp[i])) == (b, mant, exp)
        assert probs[i].tolist() == p


def test_long_rows_match_scalar_steps() -> None:
    rng = np.random.default_rng(11)
    z = np.clip(np.round(rng.normal(0, 3 * 256, (2, 1024))), -32768, 32767).astype(np.int64)
    z[1] = np.sort(z[1])  # every score a new maximum
    stats = online_softmax_stats(z, DEFAULT)
    probs = softmax(z, DEFAULT, prob_bits=12)
    for i in range(2):
        b, mant, exp, p = ref.softmax_row(z[i].tolist(), DEFAULT, prob_bits=12)
        assert (int(stats.b[i]), int(stats.mant[i]), int(stats.exp[i])) == (b, mant, exp)
        assert probs[i].tolist() == p


def test_pack_layout_and_round_trip() -> None:
    stats = SoftmaxStats(
        b=np.array([-2, 300]), mant=np.array([0x8001, 0xFFFF]), exp=np.array([16, 32])
    )
    raw = pack_stats(stats)
    assert raw.shape == (2, 8) and raw.dtype == np.uint8
    assert raw[0].tobytes() == bytes([0xFE, 0xFF, 0x01, 0x80, 16, 0, 0, 0])
    assert raw[1].tobytes() == (300).to_bytes(2, "little") + bytes([0xFF, 0xFF, 32, 0, 0, 0])
    for back in (unpack_stats(raw), unpack_stats(raw.tobytes())):
        assert back.b.tolist() == [-2, 300]
        assert back.mant.tolist() == [0x8001, 0xFFFF]
        assert back.exp.tolist() == [16, 32]
    with pytest.raises(ValueError, match="multiple of 8"):
        unpack_stats(bytes(7))


def test_stats_ranges_and_unpacked_use() -> None:
    rng = np.random.default_rng(5)
    z = rng.integers(-32768, 32768, (64, 200))
    stats = online_softmax_stats(z, DEFAULT)
    assert stats.b.tolist() == z.max(axis=1).tolist()
    assert stats.mant.min() >= 1 << 15 and stats.mant.max() < 1 << 16
    assert stats.exp.min() >= 16 and stats.exp.max() <= 32
    again = softmax_probs(z, unpack_stats(pack_stats(stats)), DEFAULT)
    assert np.array_equal(again, softmax_probs(z, stats, DEFAULT))


def test_scores_above_stored_max_count_as_max() -> None:
    stats = online_softmax_stats(np.array([[0, 0]]), DEFAULT)
    assert np.array_equal(
        softmax_probs(np.array([[500, 0]]), stats, DEFAULT),
        softmax_probs(np.array([[0, 0]]), stats, DEFAULT),
    )


def test_rejects_empty_rows() -> None:
    with pytest.raises(ValueError, match="shape"):
        online_softmax_stats(np.zeros((3, 0), np.int64), DEFAULT)
