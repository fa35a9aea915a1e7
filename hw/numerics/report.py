"""Error report of the bit-exact numerics against float64 references.

Each ``measure_*`` function runs one approximation over a dense or random sweep (fixed seeds, so
the report is reproducible) and returns an :class:`ErrorReport` with the error of every sample in
real units. ``edgemoe numerics`` prints them; docs/numerics.md quotes them; the tests assert bounds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from .exp import exp2_neg
from .fixedpoint import dequantize, quantize
from .gelu import gelu
from .layernorm import layernorm, layernorm_params
from .params import Cfg, numerics_of
from .recip import reciprocal, rsqrt
from .softmax import softmax

FloatArray = npt.NDArray[np.float64]

#: Activation format of the GELU sweep (16-bit, Q11: the range [-16, 16) covers [-8, 8]).
GELU_FRAC_BITS = 11


@dataclass(frozen=True)
class ErrorReport:
    """Errors of one function: ``x`` is the plotted input coordinate, ``abs_err`` the absolute
    error in real units per sample, ``rel_err`` the relative error where it is meaningful."""

    name: str
    sweep: str
    x: FloatArray
    x_label: str
    abs_err: FloatArray
    rel_err: FloatArray | None = None
    log_x: bool = False

    def summary(self) -> dict[str, float]:
        out = {"max_abs_err": float(self.abs_err.max()), "mean_abs_err": float(self.abs_err.mean())}
        if self.rel_err is not None:
            out["max_rel_err"] = float(self.rel_err.max())
            out["mean_rel_err"] = float(self.rel_err.mean())
        return out


def measure_exp(cfg: Cfg) -> ErrorReport:
    """exp2_neg over every d in [-(E + 2) * 2^F, 0] (all inputs that do not flush to 0).

    The relative error is reported over d > -2^F (results >= 1/2); below that the absolute error
    (at most one LSB of Q(E)) is the meaningful figure.
    """
    num = numerics_of(cfg)
    f_bits, e_bits = num.score_frac_bits, num.exp_frac_bits
    d = np.arange(-(e_bits + 2) << f_bits, 1)
    exact = np.exp2(d / (1 << f_bits))
    got = exp2_neg(d, num) / (1 << e_bits)
    err = np.abs(got - exact)
    rel = err[d > -(1 << f_bits)] / exact[d > -(1 << f_bits)]
    return ErrorReport(
        "exp",
        f"all d in [-{e_bits + 2}, 0] step 2^-{f_bits}",
        d / (1 << f_bits),
        "d (log2 domain)",
        err,
        rel,
    )


def _recip_inputs() -> npt.NDArray[np.int64]:
    rng = np.random.default_rng(2)
    big = np.exp2(rng.uniform(16, 61.9, 1 << 16)).astype(np.int64)
    edges = np.concatenate([(1 << np.arange(62)), (1 << np.arange(1, 62)) - 1])
    return np.concatenate([np.arange(1, 1 << 16), big, edges])


def measure_reciprocal(cfg: Cfg) -> ErrorReport:
    """reciprocal over all x < 2^16, 2^16 log-uniform x < 2^62 and every 2^k, 2^k - 1."""
    x = _recip_inputs()
    mant, e = reciprocal(x, cfg)
    xf = x.astype(np.float64)
    got = np.ldexp(mant.astype(np.float64), -e)
    rel = np.abs(got * xf - 1.0)
    return ErrorReport(
        "reciprocal",
        "all x < 2^16, log-uniform x < 2^62, powers of two",
        xf,
        "x",
        np.abs(got - 1.0 / xf),
        rel,
        log_x=True,
    )


def measure_rsqrt(cfg: Cfg) -> ErrorReport:
    """rsqrt over the same inputs as :func:`measure_reciprocal`."""
    x = _recip_inputs()
    mant, e = rsqrt(x, cfg)
    xf = x.astype(np.float64)
    got = np.ldexp(mant.astype(np.float64), -e)
    rel = np.abs(got * np.sqrt(xf) - 1.0)
    return ErrorReport(
        "rsqrt",
        "all x < 2^16, log-uniform x < 2^62, powers of two",
        xf,
        "x",
        np.abs(got - 1.0 / np.sqrt(xf)),
        rel,
        log_x=True,
    )


def exact_gelu(x: FloatArray) -> FloatArray:
    """GELU(x) = x * Phi(x) in float64."""
    return 0.5 * x * (1.0 + np.vectorize(math.erf)(x / math.sqrt(2.0)))


def measure_gelu(cfg: Cfg, frac_bits: int = GELU_FRAC_BITS) -> ErrorReport:
    """gelu over every 16-bit code of Q(frac_bits) in [-8, 8]."""
    limit = min(8 << frac_bits, (1 << 15) - 1)
    q = np.arange(-limit, limit + 1)
    x = q / (1 << frac_bits)
    got = gelu(q, frac_bits, 16, cfg) / (1 << frac_bits)
    return ErrorReport(
        "gelu", f"every int16 Q{frac_bits} code in [-8, 8]", x, "x", np.abs(got - exact_gelu(x))
    )


def exact_softmax(z: npt.ArrayLike, score_frac_bits: int) -> FloatArray:
    """Row softmax in float64 of base-2 scores z in Q(score_frac_bits)."""
    v = np.asarray(z, dtype=np.float64) / (1 << score_frac_bits)
    e = np.exp2(v - v.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def softmax_rows(score_frac_bits: int) -> list[npt.NDArray[np.int64]]:
    """Random and adversarial int16 score rows, as one matrix per row length.

    Random rows: lengths 1..1024, normal scores with a std of 0.05 to 60 (log2 units).
    Adversarial rows (length 1024): one dominant score with 1023 others that each flush to 0;
    a dominant score arriving last; alternating int16 extremes; all-equal rows at 0 and at both
    int16 limits; ascending and descending ramps of several slopes.
    """
    rng = np.random.default_rng(3)
    one = 1 << score_frac_bits
    by_length: dict[int, list[npt.NDArray[np.int64]]] = {}
    for n in (1, 2, 7, 64, 129, 1024):
        for spread in (0.05, 1.0, 4.0, 16.0, 60.0):
            z = np.round(rng.normal(0.0, spread * one, (24, n)))
            by_length.setdefault(n, []).append(np.clip(z, -32768, 32767).astype(np.int64))
    n = 1024
    flush = np.full((1, n), -((17 * one) + one // 100), dtype=np.int64)
    flush[0, 0] = 0
    late = np.zeros((1, n), np.int64)
    late[0, -1] = 17 * one + one // 100
    extremes = np.full((2, n), -32768, dtype=np.int64)
    extremes[0, ::2], extremes[1, 0] = 32767, 32767
    equal = np.stack([np.full(n, v, dtype=np.int64) for v in (-32768, 0, 32767)])
    ramps = np.stack([np.arange(n, dtype=np.int64) * step for step in (1, 3, 31, one)])
    ramps = np.clip(np.concatenate([ramps, -ramps, ramps - 32768]), -32768, 32767)
    by_length[n] += [flush, late, extremes, equal, ramps]
    return [np.concatenate(rows) for rows in by_length.values()]


def measure_softmax(cfg: Cfg) -> ErrorReport:
    """softmax probabilities (Q15) against float64 over :func:`softmax_rows`."""
    f_bits = numerics_of(cfg).score_frac_bits
    exact, errs = [], []
    for z in softmax_rows(f_bits):
        ref = exact_softmax(z, f_bits)
        exact.append(ref.ravel())
        errs.append(np.abs(softmax(z, cfg) / (1 << 15) - ref).ravel())
    return ErrorReport(
        "softmax",
        "rows of 1..1024 int16 scores: random (std 0.05..60 in log2 units) and adversarial",
        np.concatenate(exact),
        "exact probability",
        np.concatenate(errs),
    )


def layernorm_case(
    std: float, d: int, rows: int, cfg: Cfg, seed: int, x_bits: int = 16, y_bits: int = 16
) -> tuple[FloatArray, FloatArray]:
    """One calibrated LayerNorm case: rows of N(mu, std^2) (mu up to 3 std), per-tensor input
    scale from the range, gamma ~ N(1, 0.2), beta ~ N(0, 0.5), output scale 16 / 2^(y_bits-1)
    for a 16-bit output (8 / 2^(y_bits-1) for narrower ones). Returns (result, float64 reference)
    in real units, from the same dequantized inputs."""
    rng = np.random.default_rng(seed)
    x = rng.normal(rng.uniform(-3.0, 3.0) * std, std, (rows, d))
    gamma, beta, eps = rng.normal(1.0, 0.2, d), rng.normal(0.0, 0.5, d), 1e-6
    x_scale = float(np.abs(x).max()) / ((1 << (x_bits - 1)) - 1)
    y_scale = (16.0 if y_bits >= 16 else 8.0) / (1 << (y_bits - 1))
    xq = quantize(x, x_scale, x_bits)
    params = layernorm_params(gamma, beta, eps, x_scale, y_scale, d, cfg)
    got = dequantize(layernorm(xq, *params, y_bits, cfg), y_scale)
    xd = dequantize(xq, x_scale)
    mean = xd.mean(axis=1, keepdims=True)
    ref = (xd - mean) / np.sqrt(xd.var(axis=1, keepdims=True) + eps) * gamma + beta
    return got, ref


def measure_layernorm(cfg: Cfg) -> ErrorReport:
    """layernorm (int16 in and out, d = 192) for row std from 1e-2 to 1e2."""
    stds = np.logspace(-2, 2, 25)
    xs, errs = [], []
    for i, std in enumerate(stds):
        got, ref = layernorm_case(float(std), 192, 16, cfg, seed=100 + i)
        errs.append(np.abs(got - ref).ravel())
        xs.append(np.full(got.size, std))
    return ErrorReport(
        "layernorm",
        "int16 rows (d = 192) of std 1e-2..1e2, int16 output",
        np.concatenate(xs),
        "row std",
        np.concatenate(errs),
        log_x=True,
    )


def measure_all(cfg: Cfg) -> dict[str, ErrorReport]:
    """Every report, keyed by function name."""
    reports = (
        measure_gelu(cfg),
        measure_softmax(cfg),
        measure_layernorm(cfg),
        measure_exp(cfg),
        measure_reciprocal(cfg),
        measure_rsqrt(cfg),
    )
    return {r.name: r for r in reports}


def format_table(reports: dict[str, ErrorReport]) -> str:
    """A text table: function, max and mean absolute error, max relative error, sweep."""
    lines = [
        f"{'function':11s} {'max_abs_err':>12s} {'mean_abs_err':>12s} {'max_rel_err':>12s}  sweep"
    ]
    for r in reports.values():
        s = r.summary()
        rel = f"{s['max_rel_err']:12.3e}" if "max_rel_err" in s else f"{'-':>12s}"
        lines.append(
            f"{r.name:11s} {s['max_abs_err']:12.3e} {s['mean_abs_err']:12.3e} {rel}  {r.sweep}"
        )
    return "\n".join(lines)


def _envelope(x: FloatArray, err: FloatArray, bins: int = 8000) -> tuple[FloatArray, FloatArray]:
    """At most 2 * bins points: the largest and smallest error of each run of inputs (sorted by
    x), so large sweeps plot quickly and the worst case is always drawn."""
    order = np.argsort(x, kind="stable")
    xs, es = x[order], err[order]
    if xs.size <= 2 * bins:
        return xs, es
    starts = np.linspace(0, xs.size, bins, endpoint=False).astype(np.int64)
    hi, lo = np.maximum.reduceat(es, starts), np.minimum.reduceat(es, starts)
    return np.concatenate([xs[starts], xs[starts]]), np.concatenate([hi, lo])


def write_plots(reports: dict[str, ErrorReport], out_dir: Path) -> list[Path]:
    """One PNG per function, error versus input, written as ``<out_dir>/<name>.png``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for r in reports.values():
        err = r.rel_err if r.rel_err is not None and r.rel_err.size == r.x.size else r.abs_err
        label = "relative error" if err is r.rel_err else "absolute error"
        fig, ax = plt.subplots(figsize=(7, 4))
        ax.plot(*_envelope(r.x, err), ".", markersize=1.5)
        if r.log_x:
            ax.set_xscale("log")
        ax.set_xlabel(r.x_label)
        ax.set_ylabel(label)
        ax.set_title(f"{r.name}: {r.sweep}", fontsize=9)
        ax.grid(True, alpha=0.3)
        fig.tight_layout()
        path = out_dir / f"{r.name}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    return paths
