"""Trace comparison: identical traces pass; the first divergence is named by index and op."""

from __future__ import annotations

from edgemoe.sim.golden import TraceEntry, entry_from_json, entry_to_json, first_divergence

A = [
    TraceEntry(0, "MATMUL", None, [(0x100, 64, "aa")]),
    TraceEntry(1, "EXPERT_LOOP", None, []),
    TraceEntry(2, "MATMUL", 3, [(0x200, 32, "bb"), (0x400, 32, "cc")]),
    TraceEntry(3, "END", None, []),
]


def test_identical_and_json_round_trip() -> None:
    back = [entry_from_json(entry_to_json(e)) for e in A]
    assert back == A
    assert first_divergence(A, back) is None


def test_different_bytes_name_region_and_instruction() -> None:
    b = list(A)
    b[2] = TraceEntry(2, "MATMUL", 3, [(0x200, 32, "bb"), (0x400, 32, "XX")])
    div = first_divergence(A, b)
    assert div is not None and div.position == 2
    assert str(div) == "trace entry 2: instruction 2 (MATMUL, expert 3): DRAM [0x00000400, +32) holds different bytes"


def test_missing_region_wrong_path_and_short_trace() -> None:
    b = list(A)
    b[0] = TraceEntry(0, "MATMUL", None, [])
    assert "not written" in str(first_divergence(A, b))
    c = list(A)
    c[2] = TraceEntry(2, "MATMUL", 4, A[2].writes)
    assert "expert 4" in str(first_divergence(A, c))
    div = first_divergence(A, A[:3])
    assert div is not None and div.position == 3 and "missing entry" in str(div)
