"""The edgemoe command line: every command works, user mistakes exit 2 without a traceback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest


def edgemoe(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "edgemoe.host", *args], capture_output=True, text=True, cwd=cwd, timeout=600
    )


def assert_user_error(r: subprocess.CompletedProcess[str], fragment: str) -> None:
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr
    assert r.stderr.startswith("edgemoe: error:") and fragment in r.stderr, r.stderr


def test_config_preset_and_json() -> None:
    r = edgemoe("config", "edge-moe-zcu102")
    assert r.returncode == 0 and "macs_per_cycle" in r.stdout and "256" in r.stdout
    data = json.loads(edgemoe("config", "tiny", "--json").stdout)
    assert data["array_rows"] == 4 and data["derived"]["macs_per_cycle"] == 16


def test_config_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\narray_rows = 3\narray_cols = 4\n')
    assert_user_error(edgemoe("config", str(bad)), "field 'array_rows' must be a power of two")
    assert_user_error(edgemoe("config", "no-such"), "no such hardware config")


def test_isa_doc_check_is_current() -> None:
    root = Path(__file__).resolve().parents[2]
    r = edgemoe("isa-doc", "--check", cwd=root)
    assert r.returncode == 0, r.stderr


def test_compile_inspect_disasm_run(tmp_path: Path, coffee_png: Path) -> None:
    out = tmp_path / "t.emb"
    r = edgemoe("compile", "tiny", "--hw", "tiny", "-o", str(out), "--calib", "1", "--precision", "w8a8")
    assert r.returncode == 0, r.stderr
    assert "[compile] lower:" in r.stderr  # progress output
    info = json.loads(edgemoe("inspect", str(out), "--json").stdout)
    assert info["precision"] == "w8a8" and set(info["tasks"]) == {"seg", "depth"}
    assert info["tasks"]["seg"]["predicted_cycles"] > 0
    dis = edgemoe("disasm", str(out), "--task", "depth").stdout
    assert "EXPERT_LOOP" in dis and "; head.depth" in dis
    assert dis.strip().splitlines()[-1].split()[1] == "END"
    npz = tmp_path / "o.npz"
    r = edgemoe("run", str(out), "--input", str(coffee_png), "--task", "seg", "-o", str(npz))
    assert r.returncode == 0, r.stderr
    assert np.load(npz)["output"].shape == (16, 19)
    r = edgemoe("run", str(out), "--input", str(coffee_png), "--task", "seg", "--compare", "float", "--json")
    report = json.loads(r.stdout)["fidelity"]
    assert report["output"]["cosine"] > 0.99


def test_run_errors(tiny_binary_path: Path, tmp_path: Path) -> None:
    assert_user_error(edgemoe("run", str(tiny_binary_path), "--input", "nope.png"), "nope.png: no such file")
    assert_user_error(
        edgemoe("run", str(tiny_binary_path), "--input", "x.png", "--task", "foo"), "binary has no task 'foo'"
    )
    np.save(tmp_path / "bad.npy", np.zeros((3, 5, 5), dtype=np.float32))
    assert_user_error(edgemoe("run", str(tiny_binary_path), "--input", str(tmp_path / "bad.npy")), "shape")
    trunc = tmp_path / "trunc.emb"
    trunc.write_bytes(tiny_binary_path.read_bytes()[:1000])
    assert_user_error(edgemoe("run", str(trunc), "--input", "x.png"), "truncated")


def test_compile_error_leaves_no_output(tmp_path: Path) -> None:
    out = tmp_path / "x.emb"
    assert_user_error(edgemoe("compile", "nope", "--hw", "tiny", "-o", str(out)), "unknown model 'nope'")
    assert not out.exists() and not list(tmp_path.iterdir())


@pytest.mark.rtl
def test_doctor_reports_toolchain() -> None:
    r = edgemoe("doctor")
    assert r.returncode == 0, r.stdout + r.stderr
    for tool in ("verilator", "cocotb", "torch", "g++"):
        assert tool in r.stdout


def test_trace_and_trace_diff(tiny_binary_path: Path, coffee_png: Path, tmp_path: Path) -> None:
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    for path in (a, b):
        r = edgemoe("run", str(tiny_binary_path), "--input", str(coffee_png), "--trace", str(path))
        assert r.returncode == 0, r.stderr
    assert edgemoe("trace-diff", str(a), str(b)).returncode == 0
    lines = b.read_text().splitlines()
    entry = json.loads(lines[3])
    entry["writes"][0][2] = "0" * 64
    lines[3] = json.dumps(entry)
    b.write_text("\n".join(lines) + "\n")
    r = edgemoe("trace-diff", str(a), str(b))
    assert r.returncode == 1 and "trace entry 3: instruction 3" in r.stdout


@pytest.mark.rtl
def test_unimplemented_instruction_on_verilator_is_a_clean_error(tiny_binary_path: Path, coffee_png: Path) -> None:
    r = edgemoe("run", str(tiny_binary_path), "--input", str(coffee_png), "--backend", "verilator")
    # The first instruction the RTL lacks stops it (the patch-embedding MATMUL, the first
    # block's LAYERNORM and its QKV MATMUL run since those units exist; attention does not yet).
    assert_user_error(r, "device error at instruction 4 (ATTN_QK): instruction not implemented")
