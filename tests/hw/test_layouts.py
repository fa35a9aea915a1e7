"""hw.layouts: round trips, the exact byte positions of DATA_LAYOUTS, and refusals."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgemoe.hw import layouts, load
from edgemoe.hw.layouts import LayoutError

CFGS = [load("tiny"), load("edge-moe-zcu102"), load("zcu102-large")]
cfg_st = st.sampled_from(CFGS)


def _ints(draw: st.DrawFn, shape: tuple[int, ...], lo: int, hi: int) -> np.ndarray:
    seed = draw(st.integers(0, 2**32 - 1))
    return np.random.default_rng(seed).integers(lo, hi + 1, size=shape)


# --------------------------------------------------------------------------- weights
@st.composite
def weights(draw: st.DrawFn) -> tuple[np.ndarray, object]:
    cfg = draw(cfg_st)
    k, n = draw(st.integers(1, 80)), draw(st.integers(1, 80))
    return _ints(draw, (k, n), -128, 127).astype(np.int8), cfg


@given(weights())
@settings(max_examples=60, deadline=None)
def test_weights_round_trip(case: tuple[np.ndarray, object]) -> None:
    w, cfg = case
    k, n = w.shape
    buf = layouts.pack_weights(w, cfg)
    assert len(buf) == layouts.packed_weight_bytes(k, n, cfg)
    np.testing.assert_array_equal(layouts.unpack_weights(buf, k, n, cfg), w)
    # Reading from a NumPy view of a larger memory gives the same matrix.
    mem = np.zeros(len(buf) + 7, np.uint8)
    mem[3 : 3 + len(buf)] = np.frombuffer(buf, np.uint8)
    np.testing.assert_array_equal(layouts.unpack_weights(mem[3:], k, n, cfg), w)


@given(weights())
@settings(max_examples=30, deadline=None)
def test_weight_byte_positions(case: tuple[np.ndarray, object]) -> None:
    """W[i, j] sits at ((nt * KT + kt) * rows + r) * cols + c; every other byte is padding 0."""
    w, cfg = case
    k, n = w.shape
    rows, cols = cfg.array_rows, cfg.array_cols
    kt_count = -(-k // rows)
    packed = np.frombuffer(layouts.pack_weights(w, cfg), np.int8)
    i, j = np.meshgrid(np.arange(k), np.arange(n), indexing="ij")
    offset = (((j // cols) * kt_count + i // rows) * rows + i % rows) * cols + j % cols
    np.testing.assert_array_equal(packed[offset], w)
    padding = np.ones(packed.size, bool)
    padding[offset.ravel()] = False
    assert not packed[padding].any()


def test_weight_tiles_small_example() -> None:
    """A 5x5 matrix on the 4x4 array: tile (nt=0, kt=1) holds row 4, columns 0..3."""
    cfg = CFGS[0]
    w = np.arange(25, dtype=np.int8).reshape(5, 5)
    packed = layouts.pack_weights(w, cfg)
    assert len(packed) == 4 * 16
    tile = np.frombuffer(packed, np.int8).reshape(4, 4, 4)  # [nt*2 + kt, r, c]
    np.testing.assert_array_equal(tile[0], w[0:4, 0:4])
    np.testing.assert_array_equal(tile[1][0], w[4, 0:4])
    assert not tile[1][1:].any()
    np.testing.assert_array_equal(tile[2][:, 0], w[0:4, 4])
    assert not tile[2][:, 1:].any()
    assert tile[3][0, 0] == w[4, 4] and np.count_nonzero(tile[3]) == 1


def test_weights_refused() -> None:
    cfg = CFGS[0]
    with pytest.raises(LayoutError, match="range"):
        layouts.pack_weights(np.array([[200]]), cfg)
    with pytest.raises(LayoutError, match="2-D"):
        layouts.pack_weights(np.zeros(4), cfg)
    with pytest.raises(LayoutError, match="needs 16"):
        layouts.unpack_weights(bytes(15), 3, 3, cfg)


# --------------------------------------------------------------------------- epilogue
@st.composite
def epilogues(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = draw(st.integers(1, 100))
    return (
        _ints(draw, (n,), -(2**31), 2**31 - 1),
        _ints(draw, (n,), 0, 2**16 - 1),
        _ints(draw, (n,), 0, 255),
    )


@given(epilogues())
@settings(max_examples=40, deadline=None)
def test_epilogue_round_trip(case: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    bias, mult, shift = case
    n = bias.size
    buf = layouts.pack_epilogue(bias, mult, shift)
    assert len(buf) == 8 * n == layouts.epilogue_bytes(n)
    got = layouts.unpack_epilogue(buf, n)
    for a, b in zip(got, (bias, mult, shift)):
        np.testing.assert_array_equal(a, b)
    c = n - 1  # the last record, decoded by hand
    rec = buf[8 * c : 8 * c + 8]
    assert int.from_bytes(rec[0:4], "little", signed=True) == bias[c]
    assert int.from_bytes(rec[4:6], "little") == mult[c]
    assert rec[6] == shift[c] and rec[7] == 0


def test_epilogue_refused() -> None:
    with pytest.raises(LayoutError, match="shape"):
        layouts.pack_epilogue([1, 2], [1], [1, 2])
    with pytest.raises(LayoutError, match="range"):
        layouts.pack_epilogue([1], [70000], [1])


# --------------------------------------------------------------------------- layernorm
@st.composite
def layernorm_params(draw: st.DrawFn) -> tuple[int, int, int, np.ndarray, np.ndarray]:
    d = draw(st.integers(1, 64))
    return (
        draw(st.integers(-(2**63), 2**63 - 1)),
        draw(st.integers(0, 2**16 - 1)),
        draw(st.integers(0, 255)),
        _ints(draw, (d,), -(2**15), 2**15 - 1),
        _ints(draw, (d,), -(2**31), 2**31 - 1),
    )


@given(layernorm_params())
@settings(max_examples=40, deadline=None)
def test_layernorm_round_trip(case: tuple[int, int, int, np.ndarray, np.ndarray]) -> None:
    eps, mult, shift, gamma, beta = case
    d = gamma.size
    buf = layouts.pack_layernorm(eps, mult, shift, gamma, beta)
    assert len(buf) == 16 + 6 * d == layouts.layernorm_bytes(d)
    assert int.from_bytes(buf[0:8], "little", signed=True) == eps
    assert int.from_bytes(buf[8:10], "little") == mult and buf[10] == shift
    assert buf[11:16] == bytes(5)
    assert int.from_bytes(buf[16:18], "little", signed=True) == gamma[0]
    assert int.from_bytes(buf[16 + 2 * d : 20 + 2 * d], "little", signed=True) == beta[0]
    got = layouts.unpack_layernorm(buf, d)
    assert (got.eps, got.mult, got.shift) == (eps, mult, shift)
    np.testing.assert_array_equal(got.gamma, gamma)
    np.testing.assert_array_equal(got.beta, beta)


# --------------------------------------------------------------------------- route table
@st.composite
def route_tables(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    e, capacity = draw(st.integers(1, 20)), draw(st.integers(1, 40))
    count = _ints(draw, (e,), 0, capacity)
    token = _ints(draw, (e, capacity), 0, 2**16 - 1)
    score = _ints(draw, (e, capacity), 0, 2**16 - 1)
    return count, token, score


@given(route_tables())
@settings(max_examples=40, deadline=None)
def test_route_table_round_trip(case: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    count, token, score = case
    e, capacity = token.shape
    buf = layouts.pack_route_table(count, token, score)
    assert len(buf) == layouts.route_table_bytes(e, capacity) == 4 * e + 4 * capacity * e
    got = layouts.unpack_route_table(buf, e, capacity)
    valid = np.arange(capacity)[None, :] < count[:, None]
    np.testing.assert_array_equal(got.count, count)
    np.testing.assert_array_equal(got.token, np.where(valid, token, 0))
    np.testing.assert_array_equal(got.score, np.where(valid, score, 0))
    # The list of the last expert starts at 4*E + 4*capacity*(E-1).
    at = layouts.route_list_offset(e, capacity, e - 1)
    assert at == 4 * e + 4 * capacity * (e - 1)
    if count[-1]:
        assert int.from_bytes(buf[at : at + 2], "little") == token[-1, 0]
        assert int.from_bytes(buf[at + 2 : at + 4], "little") == score[-1, 0]


def test_route_table_refused() -> None:
    with pytest.raises(LayoutError, match="capacity"):
        layouts.pack_route_table([3], [[1, 2]], [[1, 2]])
    buf = (5).to_bytes(4, "little") + bytes(16)
    with pytest.raises(LayoutError, match="capacity"):
        layouts.unpack_route_table(buf, 1, 4)
