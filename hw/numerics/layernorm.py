"""One-pass integer LayerNorm and the compiler's parameter quantization.

Per row of ``d`` integers x (int8 or int16 codes of one per-tensor scale), with exact integer sums
``s1 = sum x`` and ``s2 = sum x^2``: ``d * (x_i - mean) = d * x_i - s1 = c_i`` and
``d^2 * var = d * s2 - s1^2``, so ``(x_i - mean) / sqrt(var + eps) = c_i / sqrt(v)`` with
``v = d * s2 - s1^2 + eps_q`` and ``eps_q = eps * d^2 / x_scale^2``. The scale of x cancels, so
the normalised value needs no per-tensor parameter; gamma, beta and the output scale are folded
into one int16 gamma, one int32 beta per channel and a single requantize (mult, shift).
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from .fixedpoint import IntArray, IntLike, quantize_multiplier, requantize, round_shift
from .params import Cfg, numerics_of
from .recip import rsqrt

#: gamma is int16, beta int32 (the LAYERNORM parameter block).
GAMMA_MAX = (1 << 15) - 1
BETA_MAX = (1 << 31) - 1
#: eps_q is stored as int64; keeping it below 2^60 leaves v = d*s2 - s1^2 + eps_q below 2^62
#: (the rsqrt input range) for every d <= 2^14 with int16 inputs (d * s2 <= d^2 * 2^30).
EPS_Q_MAX = 1 << 60


def layernorm(
    x: IntLike,
    gamma_q: IntLike,
    beta_q: IntLike,
    eps_q: int,
    mult: int,
    shift: int,
    out_bits: int,
    cfg: Cfg,
) -> IntArray:
    """LayerNorm of each row of ``x[m, d]`` (integer codes), in the output's integer format.

    Steps per row (N = norm_frac_bits, all integer, sums exact in 64 bits):

    1. ``s1 = sum_i x_i``, ``s2 = sum_i x_i^2``.
    2. ``c_i = d * x_i - s1``; ``v = d * s2 - s1^2 + eps_q`` (eps_q >= 1, so v >= 1).
    3. ``(r, e) = rsqrt(v)`` (1/sqrt(v) ~= r * 2^-e, r in [2^15, 2^16), e >= 16).
    4. ``n_i = round_shift(c_i * r, e - N)``: (x_i - mean) / sqrt(var + eps) in Q(N).
    5. ``acc_i = n_i * gamma_q[i] + beta_q[i]``; ``y_i = requantize(acc_i, mult, shift, out_bits)``.

    Widths: |c_i| < d * 2^16 and |n_i| <= sqrt(d) * 2^N for int16 inputs; v < 2^62 requires
    d * s2 + eps_q < 2^62 (d <= 2^14 with int16 inputs, see EPS_Q_MAX).
    """
    num = numerics_of(cfg)
    x = np.asarray(x, dtype=np.int64)
    if x.ndim != 2:
        raise ValueError(f"layernorm: x must be [m, d], got shape {x.shape}")
    d = x.shape[1]
    s1 = x.sum(axis=1, keepdims=True)
    s2 = (x * x).sum(axis=1, keepdims=True)
    c = d * x - s1
    v = d * s2 - s1 * s1 + np.int64(eps_q)
    r, e = rsqrt(v, num)
    n = round_shift(c * r, e - num.norm_frac_bits)
    acc = n * np.asarray(gamma_q, dtype=np.int64) + np.asarray(beta_q, dtype=np.int64)
    return requantize(acc, mult, shift, out_bits)


def layernorm_params(
    gamma: npt.ArrayLike,
    beta: npt.ArrayLike,
    eps: float,
    x_scale: float,
    y_scale: float,
    d: int,
    cfg: Cfg,
) -> tuple[IntArray, IntArray, int, int, int]:
    """Quantize float LayerNorm parameters for :func:`layernorm`: (gamma_q, beta_q, eps_q, mult, shift).

    The accumulator unit is ``g = gamma_scale * 2^-N``: gamma_q = round(gamma / gamma_scale)
    (int16), beta_q = round(beta / g) (int32), and (mult, shift) = quantize_multiplier(g / y_scale).
    gamma_scale = max(max|gamma| / 32767, max|beta| / (2^31 - 1) * 2^N), so that both fit (the
    gamma term decides for any ordinary model). eps_q = max(1, round(eps * d^2 / x_scale^2)).
    Rounding is half away from zero. Raises ValueError for scales that cannot be represented.
    """
    num = numerics_of(cfg)
    gamma = np.asarray(gamma, dtype=np.float64)
    beta = np.asarray(beta, dtype=np.float64)
    if gamma.shape != (d,) or beta.shape != (d,):
        raise ValueError(
            f"layernorm_params: gamma {gamma.shape} and beta {beta.shape} must be ({d},)"
        )
    if not (x_scale > 0 and y_scale > 0 and eps >= 0):
        raise ValueError(
            f"layernorm_params: need x_scale > 0, y_scale > 0, eps >= 0 "
            f"(got {x_scale!r}, {y_scale!r}, {eps!r})"
        )
    unit = 2.0**-num.norm_frac_bits
    gamma_scale = max(
        np.abs(gamma).max(initial=0.0) / GAMMA_MAX, np.abs(beta).max(initial=0.0) / BETA_MAX / unit
    )
    if gamma_scale == 0.0:
        gamma_scale = 1.0
    gamma_q = _round_away(gamma / gamma_scale)
    beta_q = _round_away(beta / (gamma_scale * unit))
    eps_q = max(1, math.floor(eps * d * d / (x_scale * x_scale) + 0.5))
    if eps_q >= EPS_Q_MAX:
        raise ValueError(
            f"layernorm_params: eps {eps!r} is {eps_q} in units of (x_scale/d)^2, "
            f"too large for the 2^60 limit (x_scale {x_scale!r} too small?)"
        )
    mult, shift = quantize_multiplier(gamma_scale * unit / y_scale)
    return gamma_q, beta_q, eps_q, mult, shift


def _round_away(v: npt.NDArray[np.float64]) -> IntArray:
    return (np.sign(v) * np.floor(np.abs(v) + 0.5)).astype(np.int64)
