"""`history` output for scripts and spreadsheets: CSV cells a spreadsheet would run are
neutralised (``--raw`` gives the text back), bytes go out as they are, one line end."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from microsip_bridge.cli import main
from microsip_bridge.microsip.history_formats import RECORD_FIELDS
from microsip_bridge.microsip.inifile import IniDocument

HOSTILE_NAME = '=HYPERLINK("http://evil.example","Bob")'
ESCAPE_NAME = "\x1b[2JClear"


@pytest.fixture
def ini(tmp_path: Path) -> Path:
    path = tmp_path / "microsip.ini"
    doc = IniDocument.new(path)
    doc.set("Settings", "callsLastKey", "2")
    doc.set("Calls", "0", f"+14155550142;{HOSTILE_NAME};1;1700000000;30;Call Ended")
    doc.set("Calls", "1", "-5551234;@SUM(1+1);2;1700000100;0;Missed Call")
    doc.set("Calls", "2", f"5550001;{ESCAPE_NAME};0;1700000200;5;Call Ended")
    doc.save(backups=0)
    return path


def run(capsysbinary: pytest.CaptureFixture[bytes], *args: str) -> tuple[int, bytes, str]:
    try:
        main(list(args))
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    else:  # pragma: no cover - main always exits
        code = 0
    out, err = capsysbinary.readouterr()
    return code, out, err.decode("utf-8")


def rows(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode("utf-8"), newline="")))


def test_csv_neutralises_formulas_and_raw_gives_the_text(
    capsysbinary: pytest.CaptureFixture[bytes], ini: Path
) -> None:
    code, out, _ = run(capsysbinary, "history", "--ini", str(ini), "--format", "csv")
    assert code == 0
    assert [(r["number"], r["name"]) for r in rows(out)] == [
        ("'+14155550142", "'" + HOSTILE_NAME),
        ("'-5551234", "'@SUM(1+1)"),
        ("5550001", ESCAPE_NAME),
    ]
    code, raw, _ = run(capsysbinary, "history", "--ini", str(ini), "--format", "csv", "--raw")
    assert code == 0
    assert [(r["number"], r["name"]) for r in rows(raw)] == [
        ("+14155550142", HOSTILE_NAME),
        ("-5551234", "@SUM(1+1)"),
        ("5550001", ESCAPE_NAME),
    ]


def test_csv_has_the_json_columns_and_values_and_one_line_end(
    capsysbinary: pytest.CaptureFixture[bytes], ini: Path
) -> None:
    _, out, _ = run(capsysbinary, "history", "--ini", str(ini), "--format", "csv", "--raw")
    _, as_json, _ = run(capsysbinary, "history", "--ini", str(ini), "--format", "json")
    records = json.loads(as_json)
    assert list(records[0]) == list(RECORD_FIELDS)
    assert rows(out) == [{k: str(v) for k, v in r.items()} for r in records]
    assert out.startswith(",".join(RECORD_FIELDS).encode() + b"\r\n")
    # CRLF after every row and nowhere else: no CR CR LF, no bare LF.
    assert out.count(b"\r\n") == 4
    assert b"\n" not in out.replace(b"\r\n", b"")
    assert b"\r" not in out.replace(b"\r\n", b"")
    # The bytes as they are: an escape sequence in a name is not stripped on the way out.
    assert ESCAPE_NAME.encode() in out


def test_microsips_own_csv_keeps_microsips_bytes(
    capsysbinary: pytest.CaptureFixture[bytes], ini: Path, tmp_path: Path
) -> None:
    code, out, _ = run(capsysbinary, "history", "--ini", str(ini), "--format", "microsip-csv")
    assert code == 0
    assert out.startswith(b"\xef\xbb\xbfType,Name,Number,Time,Duration,Info\r\n")
    assert b'in,"=HYPERLINK(""http://evil.example"",""Bob"")",+14155550142,' in out
    assert b"miss,@SUM(1+1),-5551234," in out
    target = tmp_path / "calls.csv"
    code, _, _ = run(
        capsysbinary, "history", "--ini", str(ini), "--format", "microsip-csv", "-o", str(target)
    )
    assert code == 0
    assert target.read_bytes() == out


@pytest.mark.parametrize("fmt", ["table", "json", "microsip-csv", "xml"])
def test_raw_goes_with_csv_only(capsysbinary: pytest.CaptureFixture[bytes], fmt: str) -> None:
    code, out, err = run(capsysbinary, "history", "--format", fmt, "--raw")
    assert code == 2
    assert out == b""
    assert "--raw goes with --format csv" in err
