"""MoE gate: top-k with the tie rule, Q15 scores against float softmax, route-table layout."""

from __future__ import annotations

import numpy as np
import pytest

from edgemoe.hw.config import NumericsConfig
from edgemoe.hw.numerics.gate import gate_topk, route_table
from edgemoe.hw.numerics.report import exact_softmax

DEFAULT = NumericsConfig()


def test_ties_go_to_the_lower_expert_and_order_is_by_score() -> None:
    z = np.array([[5, 5, 3, 9], [0, 0, 0, 0], [1, 2, 3, 4], [7, -2, 7, 7]])
    experts, scores = gate_topk(z, 2, DEFAULT)
    assert experts.tolist() == [[3, 0], [0, 1], [3, 2], [0, 2]]
    assert np.all(np.diff(scores, axis=1) <= 0)
    assert scores[1].tolist() == [8192, 8192]  # 1/4 in Q15
    experts, _ = gate_topk(z, 4, DEFAULT)
    assert experts.tolist()[3] == [0, 2, 3, 1]


def test_scores_match_float_softmax_and_are_not_renormalised() -> None:
    rng = np.random.default_rng(7)
    z = np.clip(np.round(rng.normal(0, 2 * 256, (2000, 16))), -32768, 32767).astype(np.int64)
    experts, scores = gate_topk(z, 2, DEFAULT)
    exact = exact_softmax(z, DEFAULT.score_frac_bits)
    kept = np.take_along_axis(exact, experts, axis=1)
    assert np.abs(scores / 32768 - kept).max() <= 2.0**-9
    assert scores.max() <= 32767 and scores.min() >= 0
    # Top-k by the exact logits (ties to the lower index).
    want = np.argsort(-z, axis=1, kind="stable")[:, :2]
    assert np.array_equal(experts, want)


def test_route_table_layout() -> None:
    experts = np.array([[2, 0], [0, 1], [2, 0], [3, 2]])
    scores = np.array([[900, 100], [600, 400], [700, 300], [800, 200]])
    counts, tokens, table = route_table(experts, scores, 5, 4)
    assert counts.tolist() == [3, 1, 3, 1, 0]
    assert tokens.tolist() == [[0, 1, 2, 0], [1, 0, 0, 0], [0, 2, 3, 0], [3, 0, 0, 0], [0, 0, 0, 0]]
    assert table.tolist() == [
        [100, 600, 300, 0],
        [400, 0, 0, 0],
        [900, 700, 200, 0],
        [800, 0, 0, 0],
        [0, 0, 0, 0],
    ]


def test_route_table_from_gate_is_consistent() -> None:
    rng = np.random.default_rng(8)
    z = rng.integers(-2000, 2000, (129, 16))
    experts, scores = gate_topk(z, 2, DEFAULT)
    counts, tokens, table = route_table(experts, scores, 16, 129)
    assert counts.sum() == 129 * 2
    for e in range(16):
        toks = tokens[e, : counts[e]]
        assert np.all(np.diff(toks) > 0)
        assert np.all(tokens[e, counts[e] :] == 0) and np.all(table[e, counts[e] :] == 0)
        for t, s in zip(toks, table[e, : counts[e]]):
            (slot,) = np.nonzero(experts[t] == e)[0]
            assert scores[t, slot] == s


def test_errors() -> None:
    with pytest.raises(ValueError, match="capacity"):
        route_table(np.array([[0], [0], [0]]), np.ones((3, 1)), 2, 2)
    with pytest.raises(ValueError, match="expert indices"):
        route_table(np.array([[5]]), np.ones((1, 1)), 2, 2)
    with pytest.raises(ValueError, match="k"):
        gate_topk(np.zeros((2, 4)), 5, DEFAULT)
