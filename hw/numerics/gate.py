"""MoE gate on the device: softmax over experts, top-k selection and the per-expert route table.

The gate reuses the attention softmax (:mod:`.softmax`): the experts of one token are the keys of
one row, processed in increasing expert index. Scores are the kept probabilities in Q15, not
renormalised over the top k (as M3ViT does).
"""

from __future__ import annotations

import numpy as np

from .fixedpoint import IntArray, IntLike
from .params import Cfg
from .softmax import softmax

#: Scores are probabilities in Q(SCORE_BITS - 1) = Q15, at most 32767.
SCORE_BITS = 16


def gate_topk(z: IntLike, k: int, cfg: Cfg) -> tuple[IntArray, IntArray]:
    """Top-k experts of each token from int16 base-2 logits ``z[m, e]``.

    Steps: P = softmax(z) in Q15 (:func:`.softmax.softmax`, prob_bits = 16, all e logits of a
    token as one block: exact max, then the sum); rank the experts of
    each row by z, larger first, ties to the lower expert index (a stable sort on -z); keep the
    first k. Returns ``experts[m, k]`` (in order of decreasing score: P is monotonic in z) and
    ``scores[m, k]`` = P of those experts (uint16 values in Q15, not renormalised).
    """
    z = np.asarray(z, dtype=np.int64)
    if z.ndim != 2 or not 1 <= k <= z.shape[1]:
        raise ValueError(f"gate_topk: need z[m, e] and 1 <= k <= e, got shape {z.shape}, k={k}")
    probs = softmax(z, cfg, prob_bits=SCORE_BITS, block=z.shape[1])
    experts = np.argsort(-z, axis=1, kind="stable")[:, :k]
    return experts, np.take_along_axis(probs, experts, axis=1)


def route_table(
    experts: IntLike, scores: IntLike, e: int, capacity: int
) -> tuple[IntArray, IntArray, IntArray]:
    """Per-expert token lists from the top-k choice: (counts[e], tokens[e, capacity], scores[e, capacity]).

    Expert j's list holds the tokens that chose j, in increasing token order, with their scores;
    slots beyond counts[j] are 0. This is the GATE_TOPK route table (the device appends tokens as
    they stream in, so lists come out sorted). Raises ValueError if a list would exceed capacity
    or an expert index is out of range.
    """
    experts = np.asarray(experts, dtype=np.int64)
    scores = np.asarray(scores, dtype=np.int64)
    if experts.size and (experts.min() < 0 or experts.max() >= e):
        raise ValueError(f"route_table: expert indices must be in [0, {e})")
    m, k = experts.shape
    flat_expert = experts.reshape(-1)
    order = np.argsort(flat_expert, kind="stable")  # row-major input: tokens already increasing
    counts = np.bincount(flat_expert, minlength=e).astype(np.int64)
    if counts.size and counts.max() > capacity:
        raise ValueError(
            f"route_table: expert {int(counts.argmax())} has {int(counts.max())} "
            f"tokens, more than the capacity {capacity}"
        )
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    slot = np.arange(m * k) - starts[flat_expert[order]]
    tokens = np.zeros((e, capacity), dtype=np.int64)
    table_scores = np.zeros((e, capacity), dtype=np.int64)
    tokens[flat_expert[order], slot] = order // k
    table_scores[flat_expert[order], slot] = scores.reshape(-1)[order]
    return counts, tokens, table_scores
