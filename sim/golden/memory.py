"""The golden model's view of DRAM: range-checked, counted reads and writes of row sets.

Every operand an instruction touches is a set of equally long rows: row ``r`` starts at
``addr + row(r) * stride`` where ``row(r)`` is ``r`` or, for gathers and scatters, ``index[r]``.
Reads and writes go through :class:`Memory`, which

- raises :class:`DeviceError` (``DRAM_RANGE``) before touching anything outside the memory,
- counts the bytes each instruction semantically reads and writes (``rows * row_bytes``; the
  hardware's actual bus traffic, with padding and refetches, is the cycle model's business),
- gives writes the sequential meaning of the ISA: rows are written in increasing ``r``, so where
  rows overlap (a stride shorter than the row, or a repeated index) the later row wins,
- returns for each write the row starts it wrote, from which the trace computes its digests.

Rows are moved with strided NumPy views of the DRAM array, never with Python loops over rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import as_strided

from edgemoe.hw.regs import ErrorCode

I8 = np.dtype("<i1")
I16 = np.dtype("<i2")


class DeviceError(Exception):
    """The device stops with ``code``; the message says which operand or field is at fault."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(f"{code.name}: {message}")
        self.code = code


@dataclass(frozen=True)
class Written:
    """The rows one write stored: absolute byte addresses of each row's first byte, and length."""

    starts: npt.NDArray[np.int64]
    row_bytes: int


class Memory:
    """Range-checked row access to a ``uint8`` DRAM array, with byte counters."""

    def __init__(self, dram: npt.NDArray[np.uint8]) -> None:
        self.dram = dram
        self.rd_bytes = 0
        self.wr_bytes = 0

    # ------------------------------------------------------------------ helpers
    def _rows_view(
        self, what: str, addr: int, nrows: int, row_bytes: int, stride: int, writeable: bool
    ) -> npt.NDArray[np.uint8]:
        """A ``[nrows, row_bytes]`` strided view of DRAM, after checking the bounding range."""
        end = addr + (nrows - 1) * stride + row_bytes
        if end > self.dram.size:
            raise DeviceError(
                ErrorCode.DRAM_RANGE,
                f"{what}: bytes [0x{addr:x}, 0x{end:x}) outside the {self.dram.size}-byte DRAM",
            )
        base = self.dram[addr:end]
        return as_strided(base, (nrows, row_bytes), (stride, 1), writeable=writeable)

    @staticmethod
    def _extent(rows: int, index: npt.NDArray[np.integer] | None) -> int:
        return rows if index is None else int(index.max()) + 1

    # ------------------------------------------------------------------ byte rows
    def read_rows(
        self,
        what: str,
        addr: int,
        rows: int,
        row_bytes: int,
        stride: int,
        index: npt.NDArray[np.integer] | None = None,
    ) -> npt.NDArray[np.uint8]:
        """Copy of ``rows`` rows as ``uint8 [rows, row_bytes]`` (row r at ``index[r]`` if given)."""
        view = self._rows_view(what, addr, self._extent(rows, index), row_bytes, stride, False)
        self.rd_bytes += rows * row_bytes
        return np.ascontiguousarray(view if index is None else view[index])

    def write_rows(
        self,
        what: str,
        addr: int,
        data: npt.NDArray[np.uint8],
        stride: int,
        index: npt.NDArray[np.integer] | None = None,
    ) -> Written:
        """Store ``data[r]`` at row ``r`` (or ``index[r]``); later rows win where rows overlap."""
        rows, row_bytes = data.shape
        view = self._rows_view(what, addr, self._extent(rows, index), row_bytes, stride, True)
        rowno = np.arange(rows, dtype=np.int64) if index is None else index.astype(np.int64)
        starts = addr + rowno * stride
        ordered = np.sort(starts)
        if rows == 1 or bool((np.diff(ordered) >= row_bytes).all()):
            if index is None:
                view[...] = data
            else:
                view[index] = data
        else:  # overlapping rows: keep, for every byte address, the last row that writes it
            byte_addr = (starts[:, None] + np.arange(row_bytes)).ravel()
            last_first, pos = np.unique(byte_addr[::-1], return_index=True)
            self.dram[last_first] = data.ravel()[::-1][pos]
        self.wr_bytes += rows * row_bytes
        return Written(starts, row_bytes)

    # ------------------------------------------------------------------ typed matrices
    def read_matrix(
        self,
        what: str,
        addr: int,
        rows: int,
        cols: int,
        stride: int,
        dtype: np.dtype,
        index: npt.NDArray[np.integer] | None = None,
    ) -> npt.NDArray[np.int64]:
        """Signed ``[rows, cols]`` matrix of ``dtype`` elements, row stride in elements."""
        size = dtype.itemsize
        raw = self.read_rows(what, addr, rows, cols * size, stride * size, index)
        return raw.view(dtype).astype(np.int64)

    def write_matrix(
        self,
        what: str,
        addr: int,
        values: npt.NDArray[np.integer],
        stride: int,
        dtype: np.dtype,
        index: npt.NDArray[np.integer] | None = None,
    ) -> Written:
        """Store a ``[rows, cols]`` matrix (values already in range of ``dtype``)."""
        size = dtype.itemsize
        raw = np.ascontiguousarray(values.astype(dtype)).view(np.uint8)
        return self.write_rows(what, addr, raw, stride * size, index)

    # ------------------------------------------------------------------ contiguous blocks
    def read_block(self, what: str, addr: int, nbytes: int) -> npt.NDArray[np.uint8]:
        """A read-only view of ``nbytes`` contiguous bytes (for the unpack_* layout readers)."""
        view = self._rows_view(what, addr, 1, nbytes, nbytes, False)[0]
        self.rd_bytes += nbytes
        return view

    def write_block(self, what: str, addr: int, data: bytes | npt.NDArray[np.uint8]) -> Written:
        raw = np.frombuffer(data, dtype=np.uint8) if isinstance(data, bytes) else data.ravel()
        return self.write_rows(what, addr, raw.reshape(1, -1), raw.size)
