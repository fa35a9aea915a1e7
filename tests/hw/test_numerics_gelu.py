"""GELU: error over dense sweeps for several formats and table configs, bit-exact steps."""

from __future__ import annotations

import math

import numerics_reference as ref
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgemoe.hw.config import NumericsConfig
from edgemoe.hw.numerics.gelu import gelu, gelu_table
from edgemoe.hw.numerics.report import exact_gelu, measure_gelu

DEFAULT = NumericsConfig()
#: Asserted: max abs error over [-8, 8] with 16-bit activations in Q10..Q12.
GELU_MAX_ABS_ERR = 1e-3
#: Interpolation error of a step-1/32 table (|delta''| <= 0.8: 0.8 / 8 / 32^2 ~= 1e-4).
INTERP_ERR = 1.1e-4


def _sweep(frac_bits: int, num: NumericsConfig, out_bits: int = 16) -> float:
    limit = min(8 << frac_bits, (1 << 15) - 1)
    q = np.arange(-limit, limit + 1)
    got = gelu(q, frac_bits, out_bits, num) / (1 << frac_bits)
    return float(np.abs(got - exact_gelu(q / (1 << frac_bits))).max())


@pytest.mark.parametrize("frac_bits", [10, 11, 12])
def test_target_formats_within_1e3(frac_bits: int) -> None:
    assert _sweep(frac_bits, DEFAULT) <= GELU_MAX_ABS_ERR


def test_report_figure_is_within_bound() -> None:
    assert measure_gelu(DEFAULT).summary()["max_abs_err"] <= GELU_MAX_ABS_ERR


@pytest.mark.parametrize("frac_bits", [0, 3, 4, 5, 6, 8, 13, 15])
def test_every_format_is_output_rounding_plus_interpolation(frac_bits: int) -> None:
    """Coarse formats (including frac_bits < gelu_step_log2) only add the output rounding."""
    bound = 2.0 ** -(frac_bits + 1) + INTERP_ERR + 2.0**-17
    assert _sweep(frac_bits, DEFAULT) <= bound


@pytest.mark.parametrize(
    "num",
    [
        NumericsConfig(gelu_step_log2=2, gelu_table_frac_bits=8, gelu_table_max=2.0),
        NumericsConfig(gelu_step_log2=8, gelu_table_frac_bits=10, gelu_table_max=16.0),
        NumericsConfig(gelu_step_log2=6, gelu_table_frac_bits=16, gelu_table_max=5.5),
    ],
    ids=["s2G8max2", "s8G10max16", "s6G16max5.5"],
)
def test_other_table_configs(num: NumericsConfig) -> None:
    h = 2.0**-num.gelu_step_log2
    # Interpolation + table rounding + the correction dropped beyond the table + output rounding.
    tail = num.gelu_table_max * 0.5 * math.erfc(num.gelu_table_max / math.sqrt(2))
    bound = 0.8 * h * h / 8 + 2.0 ** -(num.gelu_table_frac_bits + 1) + tail
    for frac_bits in (3, 11):
        assert _sweep(frac_bits, num) <= bound + 2.0 ** -(frac_bits + 1)


def test_table() -> None:
    t = gelu_table(DEFAULT)
    assert len(t) == DEFAULT.gelu_table_entries == 193
    assert t[0] == 0 and t.max() < 0.17 * (1 << 16) and t[-1] == 0
    assert not t.flags.writeable


def test_saturation_and_sign() -> None:
    q = np.arange(-32768, 32768)
    y8 = gelu(q, 11, 8, DEFAULT)
    assert y8.min() == -128  # GELU's minimum -0.17 is -348 in Q11: saturates in 8 bits
    assert y8.max() == 127
    y = gelu(q, 11, 16, DEFAULT)
    assert np.all(y[q >= 0] <= q[q >= 0]) and np.all(y[q < 0] <= 0)
    assert np.all(y[q > 6 << 11] == q[q > 6 << 11])  # beyond the table GELU is the identity
    with pytest.raises(ValueError, match="frac_bits"):
        gelu(q, 16, 16, DEFAULT)


@settings(max_examples=300, deadline=None)
@given(
    x=st.integers(-(1 << 20), 1 << 20),
    frac_bits=st.integers(0, 15),
    out_bits=st.sampled_from([8, 16, 24]),
    step=st.sampled_from([2, 5, 8]),
)
def test_matches_scalar_steps(x: int, frac_bits: int, out_bits: int, step: int) -> None:
    num = NumericsConfig(gelu_step_log2=step)
    assert int(gelu([x], frac_bits, out_bits, num)[0]) == ref.gelu(x, frac_bits, out_bits, num)
