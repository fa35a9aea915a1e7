"""ATTN_QK and ATTN_AV in the golden model against a plain NumPy reference."""

from __future__ import annotations

import numpy as np
from golden_harness import Harness
from hypothesis import given, settings
from hypothesis import strategies as st

from edgemoe.hw import isa, load
from edgemoe.hw.numerics.fixedpoint import requantize, wrap
from edgemoe.hw.numerics.softmax import online_softmax_stats, pack_stats, softmax_probs

CFGS = {"tiny": load("tiny"), "edge-moe-zcu102": load("edge-moe-zcu102")}


@st.composite
def attention_cases(draw: st.DrawFn) -> dict:
    return {
        "cfg": draw(st.sampled_from(sorted(CFGS))),
        "m": draw(st.integers(1, 20)),
        "n": draw(st.integers(1, 24)),
        "d": draw(st.integers(1, 20)),
        "x16": draw(st.integers(0, 1)),
        "y16": draw(st.integers(0, 1)),
        "pad": draw(st.integers(0, 40)),
        "shift_delta": draw(st.integers(-3, 3)),
        "seed": draw(st.integers(0, 2**32 - 1)),
    }


@given(attention_cases())
@settings(max_examples=40, deadline=None)
def test_qk_then_av(c: dict) -> None:
    """One head of a fused [q | k | v] buffer (row stride > d), QK then AV, in one program."""
    cfg = CFGS[c["cfg"]]
    h = Harness(cfg)
    rng = np.random.default_rng(c["seed"])
    m, n, d, x16, y16 = c["m"], c["n"], c["d"], c["x16"], c["y16"]
    lim = 2**15 if x16 else 2**7
    xdt = "<i2" if x16 else "<i1"
    stride = d + c["pad"]
    q, k, v = (rng.integers(-lim, lim, size=(r, d)) for r in (m, n, n))
    q_addr, k_addr, v_addr = (h.put_matrix(a, stride, xdt, 0x77) for a in (q, k, v))
    z_addr, stats_addr = h.alloc(m * n * 2), h.alloc(8 * m)
    o_stride = d + 3
    o_addr = h.alloc(m * o_stride * 2, 0x77)
    qk_mult, av_mult = int(rng.integers(2**15, 2**16)), int(rng.integers(2**15, 2**16))
    # Shifts that bring typical values into range (so few saturate): |Q.K| ~ sqrt(d) * lim^2 / 3,
    # and sum_j P V ~ 2^15 * lim; Z aims at a few units in Q8, O at half its range.
    qk_shift = 2 * int(np.log2(lim)) + int(np.log2(d) / 2) + 3 + c["shift_delta"]
    av_shift = int(np.log2(lim)) + 16 + (1 if y16 else 9)
    h.run(
        isa.make("ATTN_QK", x16=x16, m=m, n=n, d=d, q_addr=q_addr, q_stride=stride,
                 k_addr=k_addr, k_stride=stride, z_addr=z_addr, stats_addr=stats_addr,
                 mult=qk_mult, shift=qk_shift),
        isa.make("ATTN_AV", x16=x16, y16=y16, m=m, n=n, d=d, z_addr=z_addr,
                 stats_addr=stats_addr, v_addr=v_addr, v_stride=stride, o_addr=o_addr,
                 o_stride=o_stride, mult=av_mult, shift=av_shift),
    )
    # Reference: plain int64 products; the softmax arithmetic comes from the numerics.
    scores = q.astype(np.int64) @ k.astype(np.int64).T
    z = requantize(wrap(scores, cfg.acc_width), qk_mult, qk_shift, 16)
    stats = online_softmax_stats(z, cfg, block=cfg.array_cols)
    np.testing.assert_array_equal(h.get_matrix(z_addr, m, n, n, "<i2"), z)
    assert h.m.read_dram(stats_addr, 8 * m) == pack_stats(stats).tobytes()
    p = softmax_probs(z, stats, cfg, prob_bits=cfg.act_width)
    out_bits = 16 if y16 else 8
    o = requantize(wrap(p @ v.astype(np.int64), cfg.acc_width), av_mult, av_shift, out_bits)
    got = h.get_matrix(o_addr, m, d, o_stride, "<i2" if y16 else "<i1")
    np.testing.assert_array_equal(got, o)
    # Trace: Z and the stats (or one merged region if adjacent); O as one region per row.
    qk, av = h.m.trace[0], h.m.trace[1]
    assert sum(nb for _, nb, _ in qk.writes) == 2 * m * n + 8 * m
    osize = 2 if y16 else 1
    assert [(a, nb) for a, nb, _ in av.writes] == (
        [(o_addr + i * o_stride * osize, d * osize) for i in range(m)]
    )


def test_av_reads_stats_written_by_host() -> None:
    """ATTN_AV alone, with a score matrix and statistics placed by the host (8-bit inputs)."""
    cfg = CFGS["tiny"]
    h = Harness(cfg)
    rng = np.random.default_rng(5)
    m, n, d = 5, 7, 3
    z = rng.integers(-3000, 3000, size=(m, n))
    stats = online_softmax_stats(z, cfg, block=cfg.array_cols)
    v = rng.integers(-128, 128, size=(n, d))
    z_addr = h.put_matrix(z, n, "<i2")
    s_addr = h.put(pack_stats(stats).tobytes())
    v_addr = h.put_matrix(v, d, "<i1")
    o_addr = h.alloc(m * d)
    h.run(isa.make("ATTN_AV", m=m, n=n, d=d, z_addr=z_addr, stats_addr=s_addr, v_addr=v_addr,
                   v_stride=d, o_addr=o_addr, o_stride=d, mult=40000, shift=20))
    p = softmax_probs(z, stats, cfg, prob_bits=cfg.act_width)
    o = requantize(wrap(p @ v, cfg.acc_width), 40000, 20, 8)
    np.testing.assert_array_equal(h.get_matrix(o_addr, m, d, d, "<i1"), o)
    assert h.reg64("DRAM_RD_BYTES") == m * n * 2 + 8 * m + n * d
    assert h.reg64("DRAM_WR_BYTES") == m * d
