"""The .emb format: round trip, and a clear error for every way a file can be wrong."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from edgemoe.compiler import binary as binfmt
from edgemoe.compiler.binary import BinaryError
from edgemoe.hw import config as hwconfig
from edgemoe.hw import isa


def _binary() -> binfmt.Binary:
    cfg = hwconfig.load("tiny")
    insn = isa.encode_program([isa.make("SYNC"), isa.make("END")])
    meta = {"tasks": {"seg": {"insn_index": 0, "insn_count": 2}}, "hardware": {"name": "tiny"}}
    return binfmt.Binary(cfg.config_hash(), meta, insn, b"\x01\x02\x03")


def test_round_trip(tmp_path: Path) -> None:
    b = _binary()
    path = tmp_path / "x.emb"
    b.save(path)
    back = binfmt.load(path, hwconfig.load("tiny"))
    assert back.meta == b.meta and back.insn == b.insn and back.weights == b.weights
    assert [i.op for i in back.program] == ["SYNC", "END"]
    assert not list(tmp_path.glob("*.partial"))


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda raw: raw[:-40], "truncated"),
        (lambda raw: raw[:20], "truncated"),
        (lambda raw: raw[:100] + bytes([raw[100] ^ 0xFF]) + raw[101:], "checksum mismatch"),
        (lambda raw: b"NOTEDGE\0" + raw[8:], "not an edgemoe binary"),
        (lambda raw: raw[:8] + struct.pack("<I", 99) + raw[12:], "format version 99 is not supported"),
        (lambda raw: raw + b"\0", "unexpected trailing bytes"),
    ],
)
def test_bad_files_fail_clearly(tmp_path: Path, mutate, message: str) -> None:
    raw = _binary().to_bytes()
    path = tmp_path / "bad.emb"
    path.write_bytes(mutate(raw))
    with pytest.raises(BinaryError, match=message) as err:
        binfmt.load(path)
    assert str(path) in str(err.value)


def test_wrong_hardware_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "x.emb"
    _binary().save(path)
    with pytest.raises(BinaryError, match=r"built for hardware config hash .* recompile with --hw edge-moe-zcu102"):
        binfmt.load(path, hwconfig.load("edge-moe-zcu102"))


def test_missing_file() -> None:
    with pytest.raises(BinaryError, match="no such file"):
        binfmt.load("/nonexistent/model.emb")


def test_unknown_task_lists_tasks() -> None:
    with pytest.raises(BinaryError, match="binary has no task 'depth'; its tasks are: seg"):
        _binary().task("depth")
