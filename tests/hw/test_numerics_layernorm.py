"""LayerNorm: calibrated rows of std 1e-2..1e2 against float64, parameters, bit-exact steps."""

from __future__ import annotations

import numerics_reference as ref
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from edgemoe.hw.config import NumericsConfig
from edgemoe.hw.numerics.layernorm import layernorm, layernorm_params
from edgemoe.hw.numerics.report import layernorm_case, measure_layernorm

DEFAULT = NumericsConfig()
#: Asserted: max abs error in real units (int16 output, scale 16 / 2^15).
LAYERNORM_MAX_ABS_ERR = 1e-2


@pytest.mark.parametrize("x_bits", [16, 8])
@pytest.mark.parametrize("d", [192, 768, 7])
def test_std_sweep_within_1e2(x_bits: int, d: int) -> None:
    for i, std in enumerate(np.logspace(-2, 2, 9)):
        got, want = layernorm_case(float(std), d, 8, DEFAULT, seed=i, x_bits=x_bits)
        assert np.abs(got - want).max() <= LAYERNORM_MAX_ABS_ERR, std


def test_int8_output_is_half_a_step_plus_the_same_error() -> None:
    for i, std in enumerate(np.logspace(-2, 2, 5)):
        got, want = layernorm_case(float(std), 192, 8, DEFAULT, seed=i, x_bits=8, y_bits=8)
        fits = np.abs(want) < 127 * 8 / 128  # exclude saturated outputs
        assert np.abs(got - want)[fits].max() <= 0.5 * 8 / 128 + 1e-3


def test_report_figure_is_within_bound() -> None:
    assert measure_layernorm(DEFAULT).summary()["max_abs_err"] <= LAYERNORM_MAX_ABS_ERR


@pytest.mark.parametrize(
    "num",
    [
        NumericsConfig(norm_frac_bits=8, recip_table_bits=4),
        NumericsConfig(norm_frac_bits=14, recip_table_bits=10),
    ],
)
def test_other_configs(num: NumericsConfig) -> None:
    bound = LAYERNORM_MAX_ABS_ERR if num.norm_frac_bits >= 12 else 2e-2
    for i, std in enumerate((1e-2, 1.0, 1e2)):
        got, want = layernorm_case(std, 192, 8, num, seed=i)
        assert np.abs(got - want).max() <= bound


def test_constant_row_gives_beta_and_one_hot_row_is_bounded() -> None:
    d = 16
    gamma, beta = np.linspace(0.5, 1.5, d), np.linspace(-1, 1, d)
    g, b, eps_q, mult, shift = layernorm_params(gamma, beta, 1e-6, 0.01, 2.0**-10, d, DEFAULT)
    x = np.array([[123] * d, [-32768] * d, [0] * (d - 1) + [32767]])
    y = layernorm(x, g, b, eps_q, mult, shift, 16, DEFAULT)
    assert np.abs(y[0] * 2.0**-10 - beta).max() <= 2.0**-10 and np.array_equal(y[0], y[1])
    n_last = np.sqrt(d - 1)  # the normalised value of the single non-zero element
    assert abs(y[2, -1] * 2.0**-10 - (n_last * gamma[-1] + beta[-1])) <= 2e-3


def test_params() -> None:
    gamma = np.array([1.0, -2.0, 0.5])
    beta = np.array([0.0, 0.25, -3.0])
    g, b, eps_q, mult, shift = layernorm_params(gamma, beta, 1e-5, 0.01, 0.001, 3, DEFAULT)
    assert g.tolist() == [16384, -32767, 8192]  # max |gamma| maps to 32767
    assert eps_q == round(1e-5 * 9 / 1e-4)
    unit = 2.0 / 32767 * 2.0**-12  # accumulator unit = gamma scale * 2^-N
    assert np.allclose(b * unit, beta, atol=unit)
    assert abs(mult / 2.0**shift - unit / 0.001) <= unit / 0.001 * 2.0**-16
    # Beta too large for int32 at gamma's scale moves the scale; eps_q is at least 1.
    g, b, eps_q, _, _ = layernorm_params(
        np.full(3, 1e-4), np.full(3, 100.0), 0.0, 1.0, 1.0, 3, DEFAULT
    )
    assert b.max() <= 2**31 - 1 and g.max() < 32767 and eps_q == 1
    g, b, *_ = layernorm_params(np.zeros(3), np.zeros(3), 1e-6, 1.0, 1.0, 3, DEFAULT)
    assert g.tolist() == [0, 0, 0] and b.tolist() == [0, 0, 0]
    with pytest.raises(ValueError, match="must be \\(4,\\)"):
        layernorm_params(gamma, beta, 1e-5, 0.01, 0.001, 4, DEFAULT)
    with pytest.raises(ValueError, match="x_scale"):
        layernorm_params(gamma, beta, 1e-5, 0.0, 0.001, 3, DEFAULT)
    with pytest.raises(ValueError, match="2\\^60"):
        layernorm_params(gamma, beta, 1.0, 1e-12, 0.001, 3, DEFAULT)


@settings(max_examples=80, deadline=None)
@given(
    x=hnp.arrays(
        np.int64,
        st.tuples(st.integers(1, 3), st.integers(1, 48)),
        elements=st.integers(-32768, 32767),
    ),
    gamma=st.integers(-32768, 32767),
    beta=st.integers(-(1 << 31), (1 << 31) - 1),
    eps_q=st.integers(1, 1 << 40),
    mult=st.integers(0, 65535),
    shift=st.integers(0, 63),
    out_bits=st.sampled_from([8, 16]),
)
def test_matches_scalar_steps(
    x: np.ndarray, gamma: int, beta: int, eps_q: int, mult: int, shift: int, out_bits: int
) -> None:
    d = x.shape[1]
    gammas = [(gamma + 7919 * i) % 65536 - 32768 for i in range(d)]
    betas = [beta // (i + 1) for i in range(d)]
    y = layernorm(x, gammas, betas, eps_q, mult, shift, out_bits, DEFAULT)
    for i, row in enumerate(x.tolist()):
        assert y[i].tolist() == ref.layernorm_row(
            row, gammas, betas, eps_q, mult, shift, out_bits, DEFAULT
        )
