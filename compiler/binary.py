"""The ``.emb`` binary: what the compiler writes and the host loads.

Layout (all integers little endian)::

    offset  size  field
    0       8     magic b"EDGEMOE\\0"
    8       4     format version (FORMAT_VERSION)
    12      4     number of sections
    16      8     HardwareConfig hash (8 raw bytes of the 16-hex-digit hash)
    24      8     total file size in bytes
    32      24*n  section table: kind (u32), reserved (u32), offset (u64), size (u64)
    ...           section payloads, each 32-byte aligned
    end-32  32    SHA-256 of every preceding byte

Sections: META (UTF-8 JSON: model, tasks, tensors, memory plan, layer table), INSN (the
instruction stream of every task, see META ``tasks.*.insn``) and WEIGHTS (the weight image,
loaded into DRAM at META ``memory.weights_addr``).

Every way a file can be wrong (truncated, corrupted, wrong version, built for other hardware)
raises :class:`BinaryError` with a message that says which.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path
from typing import Any

from edgemoe.hw.config import HardwareConfig
from edgemoe.hw.isa import Instruction, IsaError, decode_program

MAGIC = b"EDGEMOE\0"
FORMAT_VERSION = 1
_HEADER = struct.Struct("<8sII8sQ")
_SECTION = struct.Struct("<IIQQ")
_DIGEST_BYTES = 32
_ALIGN = 32


class BinaryError(ValueError):
    """A .emb file cannot be used; the message names the file and what is wrong."""


class Section(IntEnum):
    META = 1
    INSN = 2
    WEIGHTS = 3


@dataclass
class Binary:
    """An in-memory .emb: metadata, encoded instruction stream and weight image."""

    config_hash: str
    meta: dict[str, Any]
    insn: bytes
    weights: bytes
    _program: list[Instruction] | None = field(default=None, repr=False)

    @property
    def program(self) -> list[Instruction]:
        """The decoded instruction stream (all tasks, in file order)."""
        if self._program is None:
            self._program = decode_program(self.insn)
        return self._program

    @property
    def tasks(self) -> list[str]:
        return list(self.meta["tasks"])

    def task(self, name: str) -> dict[str, Any]:
        try:
            return self.meta["tasks"][name]
        except KeyError:
            raise BinaryError(
                f"binary has no task {name!r}; its tasks are: {', '.join(self.tasks)}"
            ) from None

    def check_config(self, cfg: HardwareConfig) -> None:
        if cfg.config_hash() != self.config_hash:
            raise BinaryError(
                f"binary was built for hardware config hash {self.config_hash} "
                f"({self.meta.get('hardware', {}).get('name', '?')}), but this hardware is "
                f"'{cfg.name}' with hash {cfg.config_hash()}; recompile with --hw {cfg.name}"
            )

    # ------------------------------------------------------------------ serialisation
    def to_bytes(self) -> bytes:
        payloads = [
            (Section.META, json.dumps(self.meta).encode()),
            (Section.INSN, self.insn),
            (Section.WEIGHTS, self.weights),
        ]
        table_end = _HEADER.size + _SECTION.size * len(payloads)
        offset = _align(table_end)
        entries, body = [], bytearray()
        for kind, data in payloads:
            entries.append(_SECTION.pack(kind, 0, offset, len(data)))
            pad = offset - table_end - len(body)
            body += b"\0" * pad + data
            offset = _align(offset + len(data))
        total = table_end + len(body) + _DIGEST_BYTES
        head = _HEADER.pack(MAGIC, FORMAT_VERSION, len(payloads), bytes.fromhex(self.config_hash), total)
        blob = head + b"".join(entries) + bytes(body)
        return blob + hashlib.sha256(blob).digest()

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write atomically: a failed write never leaves a file that looks valid."""
        path = Path(path)
        tmp = path.with_name(path.name + ".partial")
        try:
            tmp.write_bytes(self.to_bytes())
            tmp.replace(path)
        finally:
            if tmp.exists():
                tmp.unlink()


def _align(n: int) -> int:
    return (n + _ALIGN - 1) // _ALIGN * _ALIGN


def from_bytes(blob: bytes, source: str = "<bytes>") -> Binary:
    if len(blob) < _HEADER.size + _DIGEST_BYTES:
        raise BinaryError(f"{source}: truncated ({len(blob)} bytes is shorter than a header)")
    magic, version, nsec, hash_raw, total = _HEADER.unpack_from(blob, 0)
    if magic != MAGIC:
        raise BinaryError(f"{source}: not an edgemoe binary (bad magic {magic!r})")
    if version != FORMAT_VERSION:
        raise BinaryError(
            f"{source}: format version {version} is not supported (this edgemoe reads "
            f"version {FORMAT_VERSION}); recompile the model"
        )
    if len(blob) < total:
        raise BinaryError(f"{source}: truncated ({len(blob)} of {total} bytes)")
    if len(blob) > total:
        raise BinaryError(f"{source}: {len(blob) - total} unexpected trailing bytes")
    body, digest = blob[:-_DIGEST_BYTES], blob[-_DIGEST_BYTES:]
    if hashlib.sha256(body).digest() != digest:
        raise BinaryError(f"{source}: checksum mismatch (the file is corrupted)")
    sections: dict[int, bytes] = {}
    for i in range(nsec):
        kind, _, off, size = _SECTION.unpack_from(blob, _HEADER.size + i * _SECTION.size)
        if off + size > len(body):
            raise BinaryError(f"{source}: section {i} lies outside the file")
        sections[kind] = bytes(blob[off : off + size])
    for kind in Section:
        if kind not in sections:
            raise BinaryError(f"{source}: missing {kind.name} section")
    try:
        meta = json.loads(sections[Section.META])
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise BinaryError(f"{source}: META section is not valid JSON: {e}") from None
    b = Binary(hash_raw.hex(), meta, sections[Section.INSN], sections[Section.WEIGHTS])
    try:
        b.program  # noqa: B018 - decode now so a bad stream is reported at load time
    except IsaError as e:
        raise BinaryError(f"{source}: {e}") from None
    return b


def load(path: str | os.PathLike[str], cfg: HardwareConfig | None = None) -> Binary:
    """Read and validate a .emb file; with ``cfg``, also check it was built for that hardware."""
    path = Path(path)
    try:
        blob = path.read_bytes()
    except FileNotFoundError:
        raise BinaryError(f"{path}: no such file") from None
    except OSError as e:
        raise BinaryError(f"{path}: cannot read: {e.strerror}") from None
    b = from_bytes(blob, str(path))
    if cfg is not None:
        b.check_config(cfg)
    return b
