"""The CLI end to end: real files in, stable output out, one-line errors, nothing half-written."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from microsip_bridge.microsip.inifile import IniDocument
from tests.cli_support import run

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "samples" / "MicroSIP"


# --- doctor ----------


def test_doctor_reports_the_sample_without_passwords(
    capsys: pytest.CaptureFixture[str], folder: Path
) -> None:
    code, out, _ = run(capsys, "doctor", "--microsip", str(folder))
    assert code == 0
    assert "3.22.3" in out
    assert "UTF-16LE with BOM" in out
    assert "encrypted" in out
    stored = IniDocument.load(folder / "microsip.ini").get("Account1", "password")
    assert stored
    assert stored not in out
    assert "foreign" in out  # the user's own cmdCallEnd
    assert "9 (9 shown by MicroSIP)" in out


def test_doctor_json_is_stable(capsys: pytest.CaptureFixture[str], folder: Path) -> None:
    code, out, _ = run(capsys, "doctor", "--ini", str(folder / "microsip.ini"), "--format", "json")
    assert code == 0
    report = json.loads(out)
    assert set(report) == {
        "microsip",
        "ini",
        "accounts",
        "hooks",
        "contacts",
        "history",
        "findings",
    }
    assert report["microsip"]["version"] == "3.22.3"
    assert report["accounts"][0] == {
        "id": 1,
        "label": "Office",
        "server": "pbx.example.invalid",
        "domain": "pbx.example.invalid",
        "username": "1001",
        "transport": "udp",
        "password": "encrypted",
        "valid": True,
        "active": True,
    }
    assert [h["key"] for h in report["hooks"]][-1] == "cmdCallEnd"
    assert report["history"]["count"] == 996


def test_doctor_reports_a_damaged_ini_and_exits_1(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    ini = tmp_path / "microsip.ini"
    ini.write_bytes(b"\xff\xfe[\x00S")  # odd byte count: a truncated UTF-16 file
    code, out, err = run(capsys, "doctor", "--ini", str(ini))
    assert code == 1
    assert "truncated" in out
    assert "Traceback" not in out + err


@pytest.mark.samples("ini/*.ini")
def test_doctor_on_real_world_inis(capsys: pytest.CaptureFixture[str], sample: Path) -> None:
    code, out, err = run(capsys, "doctor", "--ini", str(sample), "--format", "json")
    report = json.loads(out)
    assert report["ini"]["encoding"] == "UTF-16LE with BOM"
    assert "Traceback" not in err
    assert code in (0, 1)


# --- history ----------


def test_history_json_filters_and_limit(capsys: pytest.CaptureFixture[str], folder: Path) -> None:
    code, out, _ = run(
        capsys,
        "history",
        "--microsip",
        str(folder),
        "--type",
        "missed",
        "--number",
        "1004",
        "--limit",
        "3",
        "--format",
        "json",
    )
    assert code == 0
    rows = json.loads(out)
    assert len(rows) == 3
    assert {r["type"] for r in rows} == {"missed"}
    assert all("1004" in r["number"] for r in rows)
    assert [r["timestamp"] for r in rows] == sorted(r["timestamp"] for r in rows)


def test_history_csv_has_the_documented_columns(
    capsys: pytest.CaptureFixture[str], folder: Path
) -> None:
    code, out, _ = run(capsys, "history", "--microsip", str(folder), "--format", "csv")
    assert code == 0
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0] == [
        "key",
        "number",
        "name",
        "type",
        "type_code",
        "time",
        "timestamp",
        "duration",
        "info",
    ]
    assert len(rows) == 997


def test_history_microsip_exports_and_output_file(
    capsys: pytest.CaptureFixture[str], folder: Path, tmp_path: Path
) -> None:
    target = tmp_path / "calls.xml"
    code, _, err = run(
        capsys, "history", "--microsip", str(folder), "--format", "xml", "-o", str(target)
    )
    assert code == 0
    assert f"wrote {target}" in err
    text = target.read_text(encoding="utf-8")
    assert text.startswith('<?xml version="1.0"?>')
    assert text.count("<call ") == 996  # facts §5: MicroSIP's export shape
    code, out, _ = run(capsys, "history", "--microsip", str(folder), "--format", "microsip-csv")
    assert out.startswith("\ufeffType,Name,Number,Time,Duration,Info")


def test_history_since_span(capsys: pytest.CaptureFixture[str], folder: Path) -> None:
    code, out, _ = run(capsys, "history", "--microsip", str(folder), "--since", "2026-11-27")
    assert code == 0
    lines = out.splitlines()
    assert len(lines) > 2
    assert all(line.split()[1] >= "2026-11-27" for line in lines[2:])


def test_history_reports_damaged_entries_and_goes_on(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    ini = tmp_path / "microsip.ini"
    doc = IniDocument.new(ini)
    doc.set("Settings", "callsLastKey", "1")
    doc.set("Calls", "0", "5551234;Bob;1;1700000000;30;Call Ended")
    doc.set("Calls", "1", "5559876;Smith; John;0;1700000100;5;Call Ended")
    doc.save(backups=0)
    code, out, err = run(capsys, "history", "--ini", str(ini), "--format", "json")
    assert code == 0
    assert [r["number"] for r in json.loads(out)] == ["5551234"]
    assert "[Calls] key 1" in err


# --- hooks ----------


@pytest.fixture
def hook_program(tmp_path: Path) -> Path:
    program = tmp_path / "bin" / "microsip-bridge-hook"
    program.parent.mkdir()
    program.write_text("#!/bin/sh\n")
    return program


def test_hooks_install_status_uninstall_round_trip(
    capsys: pytest.CaptureFixture[str], folder: Path, hook_program: Path
) -> None:
    ini = folder / "microsip.ini"
    original = ini.read_bytes()
    loc = ("--microsip", str(folder))
    code, out, _ = run(
        capsys, "hooks", "install", *loc, "--program", str(hook_program), "--dry-run"
    )
    assert code == 0
    assert "dry run" in out
    assert ini.read_bytes() == original

    code, out, _ = run(capsys, "hooks", "install", *loc, "--program", str(hook_program))
    assert code == 0
    doc = IniDocument.load(ini)
    assert doc.get("Settings", "cmdCallRing") == f"{hook_program} ring"  # facts §2.3
    assert doc.get("Settings", "cmdCallEnd") == f"{hook_program} end"

    code, out, _ = run(capsys, "hooks", "status", *loc, "--format", "json")
    states = {row["key"]: row for row in json.loads(out)}
    assert code == 0
    assert states["cmdCallEnd"]["saved"] == "C:\\Tools\\calllog.exe --append"
    assert states["cmdCallRing"]["argv"] == [str(hook_program), "ring"]

    code, out, _ = run(capsys, "hooks", "uninstall", *loc)
    assert code == 0
    assert ini.read_bytes() == original  # the user's command is back, byte for byte


def test_hooks_install_refuses_a_batch_file(
    capsys: pytest.CaptureFixture[str], folder: Path, tmp_path: Path
) -> None:
    original = (folder / "microsip.ini").read_bytes()
    bat = tmp_path / "hook.bat"
    bat.write_text("@echo off\n")
    code, _, err = run(capsys, "hooks", "install", "--microsip", str(folder), "--program", str(bat))
    assert code == 2  # a bad --program is a usage error
    assert "injection" in err.splitlines()[-1]
    assert (folder / "microsip.ini").read_bytes() == original


def test_hooks_status_flags_damage_with_exit_1(
    capsys: pytest.CaptureFixture[str], folder: Path, hook_program: Path
) -> None:
    ini = folder / "microsip.ini"
    doc = IniDocument.load(ini)
    doc.set("Settings", "cmdCallRing", f'"{hook_program}" ring')
    doc.set("Settings", "cmdCallStart", f'"{hook_program} start"')  # whole value quoted
    doc.save(backups=0)
    code, out, _ = run(capsys, "hooks", "status", "--ini", str(ini))
    assert code == 1
    assert "damaged" in out


def test_writes_are_refused_while_the_simulated_microsip_runs(
    capsys: pytest.CaptureFixture[str], folder: Path, hook_program: Path
) -> None:
    (folder / "microsip-sim.pid").write_text(str(os.getpid()))
    original = (folder / "microsip.ini").read_bytes()
    args = ("hooks", "install", "--microsip", str(folder), "--program", str(hook_program))
    code, _, err = run(capsys, *args)
    assert code == 3
    assert "MicroSIP is running" in err  # facts §3.2
    assert (folder / "microsip.ini").read_bytes() == original
    code, _, _ = run(capsys, *args, "--force")
    assert code == 0


# --- errors as users see them ----------


def test_errors_are_one_line_without_traceback_unless_debug(tmp_path: Path) -> None:
    exe = Path(sys.executable).parent / "microsip-bridge"
    env = dict(os.environ, MICROSIP_BRIDGE_HOME=str(tmp_path))
    bad = tmp_path / "microsip.ini"
    bad.write_bytes(b"[S]\x00")
    proc = subprocess.run(
        [str(exe), "history", "--ini", str(bad)], capture_output=True, text=True, env=env
    )
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert proc.stderr.count("\n") == 1
    assert str(bad) in proc.stderr
    assert "NUL" in proc.stderr
    proc = subprocess.run(
        [str(exe), "history", "--ini", str(bad), "--debug"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert "Traceback" in proc.stderr


def test_wrong_flags_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "history", "--format", "yaml")
    assert code == 2
    assert "Invalid value for '--format'" in err


def test_nothing_found_on_linux_says_how_to_point_at_microsip(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, _, err = run(capsys, "history")
    assert code == 4
    assert "--microsip" in err


def test_config_show(capsys: pytest.CaptureFixture[str], bridge_home: Path) -> None:
    code, out, _ = run(capsys, "config", "show", "--format", "json")
    assert code == 0
    data = json.loads(out)
    assert data["path"] == str(bridge_home / "config.toml")
    assert {s["name"] for s in data["settings"]} >= {"backups", "microsip"}


def test_configured_microsip_folder_is_used(
    capsys: pytest.CaptureFixture[str], folder: Path, bridge_home: Path
) -> None:
    (bridge_home / "config.toml").write_text(f"microsip = {json.dumps(str(folder))}\n")
    code, out, _ = run(capsys, "history", "--limit", "1", "--format", "json")
    assert code == 0
    assert len(json.loads(out)) == 1


def test_default_install_writes_the_fast_form_and_it_runs(
    capsys: pytest.CaptureFixture[str], folder: Path, bridge_home: Path
) -> None:
    from microsip_bridge.microsip.cmdline import microsip_run_command
    from microsip_bridge.wire import INLINE_CODE

    code, _, _ = run(capsys, "hooks", "install", "--microsip", str(folder))
    assert code == 0
    value = IniDocument.load(folder / "microsip.ini").get("Settings", "cmdCallRing")
    assert value is not None and INLINE_CODE in value
    code, out, _ = run(capsys, "hooks", "status", "--microsip", str(folder), "--format", "json")
    assert code == 0
    assert {row["state"] for row in json.loads(out)} == {"ours"}
    # Run it as MicroSIP would (facts §2.3): the event reaches the spool (no daemon here).
    argv = microsip_run_command(value, "5551234")
    subprocess.run(argv, check=True, timeout=10)
    (line,) = (bridge_home / "spool.jsonl").read_text().splitlines()
    record = json.loads(line)
    assert (record["event"], record["number"]) == ("ring", "5551234")
