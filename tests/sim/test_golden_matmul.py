"""MATMUL in the golden model against a plain NumPy reference (dense and expert modes)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from golden_harness import Harness, ref_epilogue, ref_route_table, ref_tiles
from hypothesis import given, settings
from hypothesis import strategies as st

from edgemoe.hw import isa, load
from edgemoe.hw.config import HardwareConfig
from edgemoe.hw.numerics.fixedpoint import requantize, round_shift, saturate, wrap
from edgemoe.hw.numerics.gate import gate_topk
from edgemoe.hw.numerics.gelu import gelu

CFGS = {"tiny": load("tiny"), "edge-moe-zcu102": load("edge-moe-zcu102")}
GAP = 0x5A  # filler of the bytes between rows, which must survive every write


def dt(flag: int) -> str:
    return "<i2" if flag else "<i1"


def act(rng: np.random.Generator, shape: tuple[int, int], flag: int) -> np.ndarray:
    hi = 2**15 if flag else 2**7
    return rng.integers(-hi, hi, size=shape)


@dataclass
class Layer:
    """One MATMUL's weights and epilogue as plain arrays."""

    w: np.ndarray
    bias: np.ndarray
    mult: np.ndarray
    shift: np.ndarray

    @staticmethod
    def random(rng: np.random.Generator, k: int, n: int, x16: int, y16: int) -> Layer:
        # Shifts around the accumulator's magnitude, so some outputs saturate and some do not.
        base = 15 + (8 if x16 else 0) - (8 if y16 else 0) + int(np.log2(k) / 2)
        return Layer(
            w=rng.integers(-128, 128, size=(k, n)),
            bias=rng.integers(-(2**20), 2**20, size=n),
            mult=rng.integers(2**15, 2**16, size=n),
            shift=rng.integers(base - 2, base + 3, size=n),
        )

    def place(self, h: Harness) -> tuple[int, int]:
        return h.put(ref_tiles(self.w, h.cfg.array_rows, h.cfg.array_cols)), h.put(
            ref_epilogue(self.bias, self.mult, self.shift)
        )

    def epilogue(self, x: np.ndarray, cfg: HardwareConfig, out_bits: int) -> np.ndarray:
        acc = x.astype(np.int64) @ self.w.astype(np.int64)  # plain int64 product
        return requantize(wrap(acc + self.bias, cfg.acc_width), self.mult, self.shift, out_bits)


# --------------------------------------------------------------------------- dense
@st.composite
def dense_cases(draw: st.DrawFn) -> dict:
    return {
        "cfg": draw(st.sampled_from(sorted(CFGS))),
        "m": draw(st.integers(1, 24)),
        "k": draw(st.integers(1, 48)),
        "n": draw(st.integers(1, 40)),
        "x16": draw(st.integers(0, 1)),
        "y16": draw(st.integers(0, 1)),
        "gelu": draw(st.integers(0, 1)),
        "gelu_frac": draw(st.integers(0, 15)),
        "residual": draw(st.sampled_from(["none", "separate", "in_place"])),
        "x_pad": draw(st.integers(0, 5)),
        "y_pad": draw(st.integers(0, 5)),
        "seed": draw(st.integers(0, 2**32 - 1)),
    }


@given(dense_cases())
@settings(max_examples=40, deadline=None)
def test_matmul_dense(c: dict) -> None:
    cfg = CFGS[c["cfg"]]
    h = Harness(cfg)
    rng = np.random.default_rng(c["seed"])
    m, k, n, x16, y16 = c["m"], c["k"], c["n"], c["x16"], c["y16"]
    out_bits = 16 if y16 else 8
    xs, ys = k + c["x_pad"], n + c["y_pad"]
    x = act(rng, (m, k), x16)
    layer = Layer.random(rng, k, n, x16, y16)
    x_addr = h.put_matrix(x, xs, dt(x16), GAP)
    w_addr, p_addr = layer.place(h)
    y_before = act(rng, (m, n), y16)
    y_addr = h.put_matrix(y_before, ys, dt(y16), GAP)
    r = act(rng, (m, n), y16)
    r_addr = {"none": 0, "in_place": y_addr}.get(c["residual"]) or h.put_matrix(r, ys, dt(y16))
    if c["residual"] == "in_place":
        r = y_before

    h.run(
        isa.make(
            "MATMUL", x16=x16, y16=y16, gelu=c["gelu"], residual=c["residual"] != "none",
            m=m, k=k, n=n, x_addr=x_addr, x_stride=xs, w_addr=w_addr, p_addr=p_addr,
            y_addr=y_addr, y_stride=ys, r_addr=r_addr, gelu_frac=c["gelu_frac"],
        )
    )

    v = layer.epilogue(x, cfg, out_bits)
    if c["gelu"]:
        v = gelu(v, c["gelu_frac"], out_bits, cfg)
    if c["residual"] != "none":
        v = saturate(v + r, out_bits)
    np.testing.assert_array_equal(h.get_matrix(y_addr, m, n, ys, dt(y16)), v)
    # Row gaps of Y are untouched.
    size = 2 if y16 else 1
    for i in range(m - 1):
        gap = h.m.read_dram(y_addr + (i * ys + n) * size, (ys - n) * size)
        assert gap == bytes([GAP]) * len(gap)
    # Semantic byte counts: X, packed W, params, R; Y written once.
    rd = m * k * (2 if x16 else 1) + len(ref_tiles(layer.w, cfg.array_rows, cfg.array_cols)) + 8 * n
    rd += m * n * size if c["residual"] != "none" else 0
    assert h.reg64("DRAM_RD_BYTES") == rd
    assert h.reg64("DRAM_WR_BYTES") == m * n * size


def test_matmul_m0_is_a_no_op() -> None:
    h = Harness(CFGS["tiny"])
    y = h.alloc(16, GAP)
    h.run(isa.make("MATMUL", m=0, k=3, n=4, x_stride=3, y_addr=y, y_stride=4))
    assert h.m.read_dram(y, 16) == bytes([GAP]) * 16
    assert h.m.trace[0].writes == []


# --------------------------------------------------------------------------- expert mode
def _expert_setup(h: Harness, rng: np.random.Generator, lists: list[list[tuple[int, int]]],
                  t: int, d: int, hidden: int) -> tuple[list[tuple[Layer, Layer]], int, int, int]:
    """Place every expert's (fc1, fc2) at a fixed stride; returns layers, w1, p1 base and stride."""
    layers = [
        (Layer.random(rng, d, hidden, 1, 1), Layer.random(rng, hidden, d, 1, 1)) for _ in lists
    ]
    blobs = []
    for fc1, fc2 in layers:
        rows, cols = h.cfg.array_rows, h.cfg.array_cols
        blobs.append([ref_tiles(fc1.w, rows, cols), ref_epilogue(fc1.bias, fc1.mult, fc1.shift),
                      ref_tiles(fc2.w, rows, cols), ref_epilogue(fc2.bias, fc2.mult, fc2.shift)])
    offsets = np.cumsum([0] + [len(b) for b in blobs[0]])
    stride = int(offsets[-1]) + 64
    base = h.alloc(stride * len(lists))
    for e, parts in enumerate(blobs):
        for off, blob in zip(offsets, parts):
            h.m.write_dram(base + e * stride + int(off), blob)
    return layers, base, [base + int(o) for o in offsets[:4]], stride


@pytest.mark.parametrize("cfg_name", sorted(CFGS))
@pytest.mark.parametrize("with_residual", [False, True])
def test_expert_loop_gather_scatter(cfg_name: str, with_residual: bool) -> None:
    cfg = CFGS[cfg_name]
    h = Harness(cfg)
    rng = np.random.default_rng(7)
    t, d, hidden, capacity = 11, 12, 9, 13
    # Expert 1 has no tokens: its weights are garbage and it must be skipped.
    lists = [
        [(0, 30000), (3, 1200), (10, 32767)],
        [],
        [(1, 5), (2, 16384), (3, 20000), (9, 7)],
        [(4, 22222)],
    ]
    layers, base, (w1, p1, w2, p2), stride = _expert_setup(h, rng, lists, t, d, hidden)
    h.m.dram[base + stride : base + 2 * stride] = rng.integers(0, 256, stride, dtype=np.uint8)
    route = h.put(ref_route_table(lists, capacity, filler=0xEE))
    x = act(rng, (t, d), 1)
    x_addr = h.put_matrix(x, d, "<i2")
    y0 = act(rng, (t, d), 1)
    y_addr = h.put_matrix(y0, d + 2, "<i2", GAP)
    r = act(rng, (t, d), 1)
    r_addr = h.put_matrix(r, d + 2, "<i2")
    hbuf = h.alloc(capacity * hidden * 2, GAP)
    h.run(
        isa.make("EXPERT_LOOP", e=len(lists), body=2, capacity=capacity, route_addr=route,
                 expert_stride=stride),
        isa.make("MATMUL", x16=1, y16=1, gelu=1, gelu_frac=9, expert=1, gather_x=1, k=d,
                 n=hidden, x_addr=x_addr, x_stride=d, w_addr=w1, p_addr=p1, y_addr=hbuf,
                 y_stride=hidden),
        isa.make("MATMUL", x16=1, y16=1, expert=1, scatter_acc=1, residual=int(with_residual),
                 k=hidden, n=d, x_addr=hbuf, x_stride=hidden, w_addr=w2, p_addr=p2,
                 y_addr=y_addr, y_stride=d + 2, r_addr=r_addr),
    )

    y = y0.copy()
    hb = np.full((capacity, hidden), np.int16(np.frombuffer(bytes([GAP] * 2), "<i2")[0]))
    for e, entries in enumerate(lists):
        if not entries:
            continue
        tokens = np.array([tok for tok, _ in entries])
        scores = np.array([s for _, s in entries])
        fc1, fc2 = layers[e]
        hid = gelu(fc1.epilogue(x[tokens], cfg, 16), 9, 16, cfg)
        hb[: len(tokens)] = hid
        v = fc2.epilogue(hid, cfg, 16)
        if with_residual:
            v = saturate(v + r[tokens], 16)
        y[tokens] = saturate(y[tokens] + round_shift(v * scores[:, None], 15), 16)
    np.testing.assert_array_equal(h.get_matrix(y_addr, t, d, d + 2, "<i2"), y)
    np.testing.assert_array_equal(h.get_matrix(hbuf, capacity, hidden, hidden, "<i2"), hb)
    # Trace: the loop, then two body entries per active expert (expert 1 skipped), then END.
    got = [(e.mnemonic, e.expert) for e in h.m.trace]
    body = [(op, e) for e in (0, 2, 3) for op in ("MATMUL", "MATMUL")]
    assert got == [("EXPERT_LOOP", None), *body, ("END", None)]
    assert h.reg("INSN_RETIRED") == len(got)


def test_gate_then_expert_loop() -> None:
    """GATE_TOPK writes the table the following EXPERT_LOOP reads (no host round trip)."""
    cfg = CFGS["edge-moe-zcu102"]
    h = Harness(cfg)
    rng = np.random.default_rng(3)
    t, d, hidden, e, k = 20, 16, 8, 6, 2
    z = rng.integers(-2000, 2000, size=(t, e))
    z[:, 4] = -30000  # expert 4 never wins
    experts, scores = gate_topk(z, k, cfg)
    lists: list[list[tuple[int, int]]] = [[] for _ in range(e)]
    for tok in range(t):
        for j in range(k):
            lists[int(experts[tok, j])].append((tok, int(scores[tok, j])))
    assert not lists[4]
    layers, _, (w1, p1, w2, p2), stride = _expert_setup(h, rng, lists, t, d, hidden)
    z_addr = h.put_matrix(z, e, "<i2")
    route = h.alloc(4 * e + 4 * t * e)
    x = act(rng, (t, d), 1)
    x_addr = h.put_matrix(x, d, "<i2")
    y_addr = h.put_matrix(np.zeros((t, d), np.int64), d, "<i2")
    hbuf = h.alloc(t * hidden * 2)
    h.run(
        isa.make("GATE_TOPK", m=t, e=e, k=k, z_addr=z_addr, route_addr=route),
        isa.make("EXPERT_LOOP", e=e, body=2, capacity=t, route_addr=route, expert_stride=stride),
        isa.make("MATMUL", x16=1, y16=1, expert=1, gather_x=1, k=d, n=hidden, x_addr=x_addr,
                 x_stride=d, w_addr=w1, p_addr=p1, y_addr=hbuf, y_stride=hidden),
        isa.make("MATMUL", x16=1, y16=1, expert=1, scatter_acc=1, k=hidden, n=d, x_addr=hbuf,
                 x_stride=hidden, w_addr=w2, p_addr=p2, y_addr=y_addr, y_stride=d),
    )
    y = np.zeros((t, d), np.int64)
    for ex, entries in enumerate(lists):
        if entries:
            tokens = np.array([tok for tok, _ in entries])
            sc = np.array([s for _, s in entries])
            v = layers[ex][1].epilogue(layers[ex][0].epilogue(x[tokens], cfg, 16), cfg, 16)
            y[tokens] = saturate(y[tokens] + round_shift(v * sc[:, None], 15), 16)
    np.testing.assert_array_equal(h.get_matrix(y_addr, t, d, d, "<i2"), y)
    assert [en.expert for en in h.m.trace if en.expert is not None] == [
        x for x in range(e) if lists[x] for _ in range(2)
    ]
