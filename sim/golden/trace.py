"""Per-instruction trace: what each executed instruction wrote, as digests of DRAM regions.

Definition (shared with the RTL comparison, which recomputes the same from its own DRAM):

- The *regions* of an instruction are the maximal contiguous byte ranges it wrote: every written
  row ``[start, start + row_bytes)`` of every operand it stores, with touching or overlapping rows
  merged, sorted by address. A dense matrix is one region; a strided one (e.g. one head's columns
  of the attention output) is one region per row; a scatter is one region per run of adjacent
  token rows. Bytes between rows that the instruction did not write are never included, so a
  digest does not depend on what other instructions wrote around the operand.
- The *digest* of a region is :func:`region_digest`: SHA-256 (hex) of the region's bytes in DRAM
  after the instruction retired.

A loop body instruction has one entry per expert pass (``expert`` set); END, SYNC and
EXPERT_LOOP have entries with no writes.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from .memory import Written


@dataclass(frozen=True)
class TraceEntry:
    """One retired instruction: stream index, mnemonic, expert pass, (addr, nbytes, digest)s."""

    index: int
    mnemonic: str
    expert: int | None
    writes: list[tuple[int, int, str]] = field(default_factory=list)


def region_digest(dram: npt.NDArray[np.uint8], addr: int, nbytes: int) -> str:
    """SHA-256 hex digest of ``dram[addr : addr + nbytes]``."""
    return hashlib.sha256(memoryview(dram[addr : addr + nbytes])).hexdigest()


def write_regions(written: list[Written]) -> list[tuple[int, int]]:
    """Merge the rows of all writes of one instruction into sorted (addr, nbytes) regions."""
    if not written:
        return []
    starts = np.concatenate([w.starts for w in written])
    ends = np.concatenate([w.starts + w.row_bytes for w in written])
    order = np.argsort(starts, kind="stable")
    starts, ends = starts[order], np.maximum.accumulate(ends[order])
    # A new region begins where a row starts after everything before it has ended.
    new = np.flatnonzero(starts[1:] > ends[:-1]) + 1
    first = np.concatenate(([0], new))
    last = np.concatenate((new - 1, [len(starts) - 1]))
    return [(int(starts[a]), int(ends[b] - starts[a])) for a, b in zip(first, last)]


def digest_writes(
    dram: npt.NDArray[np.uint8], written: list[Written]
) -> list[tuple[int, int, str]]:
    """The trace ``writes`` of one instruction: each region with its digest."""
    return [(a, n, region_digest(dram, a, n)) for a, n in write_regions(written)]


def entry_to_json(entry: TraceEntry) -> dict:
    """One trace entry as plain JSON data (one line of a ``.trace.jsonl`` file)."""
    return {
        "index": entry.index,
        "op": entry.mnemonic,
        "expert": entry.expert,
        "writes": [[addr, nbytes, digest] for addr, nbytes, digest in entry.writes],
    }


def entry_from_json(data: dict) -> TraceEntry:
    return TraceEntry(
        data["index"], data["op"], data["expert"], [tuple(w) for w in data["writes"]]
    )


@dataclass(frozen=True)
class Divergence:
    """Where two traces first differ: the position in the trace and what differs."""

    position: int
    expected: TraceEntry | None
    actual: TraceEntry | None
    reason: str

    def __str__(self) -> str:
        ref = self.expected or self.actual
        where = f"instruction {ref.index} ({ref.mnemonic}" if ref else "end of trace ("
        if ref is not None and ref.expert is not None:
            where += f", expert {ref.expert}"
        return f"trace entry {self.position}: {where}): {self.reason}"


def first_divergence(expected: list[TraceEntry], actual: list[TraceEntry]) -> Divergence | None:
    """The first entry where ``actual`` (e.g. the RTL) departs from ``expected`` (golden).

    Compares, entry by entry, the instruction index, mnemonic, expert pass and every written
    region with its digest; a missing or extra entry is a divergence too. None if identical.
    """
    for pos in range(max(len(expected), len(actual))):
        e = expected[pos] if pos < len(expected) else None
        a = actual[pos] if pos < len(actual) else None
        if e is None or a is None:
            missing = "missing" if a is None else "unexpected extra"
            return Divergence(pos, e, a, f"{missing} entry")
        if (e.index, e.mnemonic, e.expert) != (a.index, a.mnemonic, a.expert):
            return Divergence(
                pos, e, a,
                f"executed instruction {a.index} ({a.mnemonic}, expert {a.expert}) instead",
            )
        if e.writes != a.writes:
            exp_regions = {(addr, n): d for addr, n, d in e.writes}
            act_regions = {(addr, n): d for addr, n, d in a.writes}
            for region in sorted(exp_regions.keys() | act_regions.keys()):
                if exp_regions.get(region) != act_regions.get(region):
                    addr, n = region
                    what = (
                        "not written" if region not in act_regions
                        else "written unexpectedly" if region not in exp_regions
                        else "holds different bytes"
                    )
                    return Divergence(pos, e, a, f"DRAM [0x{addr:08x}, +{n}) {what}")
    return None
