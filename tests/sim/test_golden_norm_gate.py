"""LAYERNORM and GATE_TOPK in the golden model against a plain NumPy reference."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from golden_harness import Harness
from hypothesis import given, settings
from hypothesis import strategies as st

from edgemoe.hw import isa, load
from edgemoe.hw.numerics.gate import gate_topk
from edgemoe.hw.numerics.layernorm import layernorm
from edgemoe.hw.regs import ErrorCode

CFGS = {"tiny": load("tiny"), "edge-moe-zcu102": load("edge-moe-zcu102")}


def ln_params(eps: int, mult: int, shift: int, gamma: np.ndarray, beta: np.ndarray) -> bytes:
    """The LAYERNORM parameter block written out by hand."""
    return (
        struct.pack("<qHB5x", eps, mult, shift)
        + gamma.astype("<i2").tobytes()
        + beta.astype("<i4").tobytes()
    )


@st.composite
def ln_cases(draw: st.DrawFn) -> dict:
    return {
        "cfg": draw(st.sampled_from(sorted(CFGS))),
        "m": draw(st.integers(1, 16)),
        "d": draw(st.integers(1, 64)),
        "x16": draw(st.integers(0, 1)),
        "y16": draw(st.integers(0, 1)),
        "pad": draw(st.integers(0, 4)),
        "eps": draw(st.integers(1, 10**6)),
        "seed": draw(st.integers(0, 2**32 - 1)),
    }


@given(ln_cases())
@settings(max_examples=40, deadline=None)
def test_layernorm(c: dict) -> None:
    cfg = CFGS[c["cfg"]]
    h = Harness(cfg)
    rng = np.random.default_rng(c["seed"])
    m, d, x16, y16 = c["m"], c["d"], c["x16"], c["y16"]
    lim = 2**15 if x16 else 2**7
    x = rng.integers(-lim, lim, size=(m, d))
    gamma = rng.integers(-(2**15), 2**15, size=d)
    beta = rng.integers(-(2**24), 2**24, size=d)
    mult, shift = int(rng.integers(2**15, 2**16)), 28 if y16 else 36
    xs, ys = d + c["pad"], d + 1
    x_addr = h.put_matrix(x, xs, "<i2" if x16 else "<i1", 0x33)
    p_addr = h.put(ln_params(c["eps"], mult, shift, gamma, beta))
    y_addr = h.alloc(m * ys * 2)
    h.run(isa.make("LAYERNORM", x16=x16, y16=y16, m=m, d=d, x_addr=x_addr, x_stride=xs,
                   y_addr=y_addr, y_stride=ys, p_addr=p_addr))
    out_bits = 16 if y16 else 8
    y = layernorm(x, gamma, beta, c["eps"], mult, shift, out_bits, cfg)
    np.testing.assert_array_equal(h.get_matrix(y_addr, m, d, ys, "<i2" if y16 else "<i1"), y)


@pytest.mark.parametrize("eps", [0, -5, 1 << 60])
def test_layernorm_bad_eps_is_illegal_field(eps: int) -> None:
    h = Harness(CFGS["tiny"])
    p_addr = h.put(ln_params(eps, 1, 0, np.ones(4), np.zeros(4)))
    status = h.start([
        isa.make("SYNC"),
        isa.make("LAYERNORM", m=1, d=4, x_addr=h.alloc(4), x_stride=4, y_addr=h.alloc(4),
                 y_stride=4, p_addr=p_addr),
        isa.make("END"),
    ])
    assert status & 4
    assert h.error() == (ErrorCode.ILLEGAL_FIELD, 1)


@st.composite
def gate_cases(draw: st.DrawFn) -> dict:
    e = draw(st.integers(1, 12))
    return {
        "m": draw(st.integers(1, 40)),
        "e": e,
        "k": draw(st.integers(1, min(e, 4))),
        "spread": draw(st.sampled_from([4, 300, 3000])),
        "seed": draw(st.integers(0, 2**32 - 1)),
    }


@given(gate_cases())
@settings(max_examples=40, deadline=None)
def test_gate_topk(c: dict) -> None:
    """Counts and the valid entries are written; unused list slots keep their old bytes."""
    cfg = CFGS["edge-moe-zcu102"]
    h = Harness(cfg)
    rng = np.random.default_rng(c["seed"])
    m, e, k = c["m"], c["e"], c["k"]
    z = rng.integers(-c["spread"], c["spread"] + 1, size=(m, e))  # small spreads force ties
    z_addr = h.put_matrix(z, e, "<i2")
    size = 4 * e + 4 * m * e
    route = h.alloc(size, 0xEE)
    h.run(isa.make("GATE_TOPK", m=m, e=e, k=k, z_addr=z_addr, route_addr=route))

    experts, scores = gate_topk(z, k, cfg)
    lists: list[list[tuple[int, int]]] = [[] for _ in range(e)]
    for tok in range(m):
        for j in range(k):
            lists[int(experts[tok, j])].append((tok, int(scores[tok, j])))
    expect = bytearray([0xEE]) * size
    for x, entries in enumerate(lists):
        expect[4 * x : 4 * x + 4] = len(entries).to_bytes(4, "little")
        at = 4 * e + 4 * m * x
        for i, (tok, score) in enumerate(entries):
            expect[at + 4 * i : at + 4 * i + 4] = struct.pack("<HH", tok, score)
    assert h.m.read_dram(route, size) == bytes(expect)
    assert h.reg64("DRAM_RD_BYTES") == 2 * m * e
    assert h.reg64("DRAM_WR_BYTES") == 4 * e + 4 * m * k
    # Trace regions: the counts plus each non-empty list's valid entries (merged if adjacent).
    assert sum(nb for _, nb, _ in h.m.trace[0].writes) == 4 * e + 4 * m * k
