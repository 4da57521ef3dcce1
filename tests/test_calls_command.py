"""`microsip-bridge calls` and `events`: limits, the number filter, streamed output, safe CSV,
usage errors for numbers out of range, and no SQLAlchemy import for the default store."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from microsip_bridge.cli import calls as calls_cli
from microsip_bridge.model import Call, CallState, Direction, Outcome
from microsip_bridge.store import repo
from microsip_bridge.store.engine import make_engine, upgrade
from microsip_bridge.store.reader import CALL_FIELDS

T0 = 1_764_000_000.0  # 2025-11-24 16:00:00 UTC


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    from microsip_bridge.cli import main

    try:
        main(list(args))
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def a_call(n: int, **changes: object) -> Call:
    values: dict[str, object] = {
        "call_id": f"c{int((T0 + n * 60) * 1000):012x}{n:012x}",
        "direction": Direction.INCOMING,
        "number": f"+1 555 {n:04d}",
        "state": CallState.ENDED,
        "started_at": T0 + n * 60,
        "outcome": Outcome.ANSWERED,
        "name": f"Caller {n}",
        "answered_at": T0 + n * 60 + 2,
        "ended_at": T0 + n * 60 + 32,
        "duration": 30.0,
        "rang": True,
        "events": [f"e{n}a", f"e{n}b"],
        "updated_at": T0 + n * 60 + 32,
        **changes,
    }
    return Call(**values)  # type: ignore[arg-type]


def store(home: Path, calls: list[Call]) -> None:
    engine = make_engine(None, home)
    try:
        upgrade(engine)
        with engine.begin() as conn:
            repo.save_calls(conn, calls)
    finally:
        engine.dispose()


@pytest.fixture
def sixty(bridge_home: Path) -> list[Call]:
    calls = [a_call(n) for n in range(60)]
    store(bridge_home, calls)
    return calls


def ids(out: str) -> list[str]:
    return [c["call_id"] for c in json.loads(out)]


# --- how many, and which ---------------------------------------------------------------------


def test_calls_shows_the_newest_50_by_default_and_says_so(
    capsys: pytest.CaptureFixture[str], sixty: list[Call]
) -> None:
    code, out, err = run_cli(capsys, "calls", "--format", "json")
    assert code == 0
    assert ids(out) == [c.call_id for c in sixty[10:]]  # the newest 50, oldest first
    assert "the newest 50 calls; --limit N or --all for more" in err


def test_calls_all_and_limit(capsys: pytest.CaptureFixture[str], sixty: list[Call]) -> None:
    _, out, err = run_cli(capsys, "calls", "--all", "--format", "json")
    assert ids(out) == [c.call_id for c in sixty]
    assert err == ""
    _, out, err = run_cli(capsys, "calls", "--limit", "3", "--format", "json")
    assert ids(out) == [c.call_id for c in sixty[-3:]]
    assert err == ""  # asked for three: no note
    _, out, _ = run_cli(capsys, "calls", "--limit", "500", "--format", "json")
    assert len(ids(out)) == 60
    code, _, err = run_cli(capsys, "calls", "--all", "--limit", "3")
    assert code == 2 and "--all and --limit" in err


def test_calls_since_keeps_the_limit(capsys: pytest.CaptureFixture[str], sixty: list[Call]) -> None:
    since = dt_text(T0 + 55 * 60)
    _, out, err = run_cli(capsys, "calls", "--since", since, "--format", "json")
    assert ids(out) == [c.call_id for c in sixty[55:]]
    assert err == ""
    _, out, err = run_cli(capsys, "calls", "--since", dt_text(T0), "--format", "json")
    assert ids(out) == [c.call_id for c in sixty[10:]]
    assert "--all for more" in err


def dt_text(ts: float) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat()


def test_calls_number_matches_digits_whatever_the_separators(
    capsys: pytest.CaptureFixture[str], bridge_home: Path
) -> None:
    store(
        bridge_home,
        [
            a_call(1, number="+1 (555) 123-4567"),
            a_call(2, number="5551234567@pbx.example"),
            a_call(3, number="+15559999999"),
            a_call(4, number="Alice.Example"),
            a_call(5, number="50%_off"),
        ],
    )
    for needle in ("555-123-4567", "555 1234567", "(555)1234567", "1234567"):
        _, out, _ = run_cli(capsys, "calls", "--number", needle, "--format", "json")
        assert [c["number"] for c in json.loads(out)] == [
            "+1 (555) 123-4567",
            "5551234567@pbx.example",
        ], needle
    _, out, _ = run_cli(capsys, "calls", "--number", "aliceexample", "--format", "json")
    assert [c["number"] for c in json.loads(out)] == ["Alice.Example"]
    # LIKE's wildcards are matched as themselves.
    _, out, _ = run_cli(capsys, "calls", "--number", "0%_", "--format", "json")
    assert [c["number"] for c in json.loads(out)] == ["50%_off"]
    _, out, _ = run_cli(capsys, "calls", "--number", "5%5", "--format", "json")
    assert json.loads(out) == []
    code, _, err = run_cli(capsys, "calls", "--number", " - ")
    assert code == 2 and "--number" in err


# --- formats -----------------------------------------------------------------------------------


def test_calls_json_is_one_indented_array_printed_call_by_call(
    capsys: pytest.CaptureFixture[str], sixty: list[Call]
) -> None:
    _, out, _ = run_cli(capsys, "calls", "--all", "--format", "json")
    expected = [c.to_dict() for c in sixty]
    assert out == json.dumps(expected, indent=2, ensure_ascii=False) + "\n"
    assert "".join(calls_cli.calls_json([])) == "[]\n"


def test_calls_csv_has_the_json_columns_crlf_and_json_booleans(
    capsys: pytest.CaptureFixture[str], bridge_home: Path
) -> None:
    call = a_call(1, video=True, name='Jane, "JJ"', disagreement=None)
    store(bridge_home, [call])
    _, out, _ = run_cli(capsys, "calls", "--format", "csv")
    _, as_json, _ = run_cli(capsys, "calls", "--format", "json")
    assert out.endswith("\r\n") and "\n" not in out.replace("\r\n", "")
    header, *rows = csv.reader(io.StringIO(out, newline=""))
    assert tuple(header) == CALL_FIELDS == tuple(json.loads(as_json)[0])
    [row] = rows
    cells = dict(zip(header, row, strict=True))
    assert (cells["rang"], cells["auto_answered"], cells["video"]) == ("true", "false", "true")
    assert cells["disagreement"] == "" and cells["microsip_key"] == ""
    assert cells["events"] == "e1a e1b"
    assert cells["name"] == 'Jane, "JJ"'
    assert cells["started_at"] == repr(call.started_at)


def test_calls_csv_neutralises_formulas_unless_raw(
    capsys: pytest.CaptureFixture[str], bridge_home: Path
) -> None:
    evil = '=HYPERLINK("http://evil.example/","click")'
    store(bridge_home, [a_call(1, name=evil, number="+15551234", microsip_info="@SUM(1)")])
    _, out, _ = run_cli(capsys, "calls", "--format", "csv")
    header, row = list(csv.reader(io.StringIO(out, newline="")))
    cells = dict(zip(header, row, strict=True))
    assert cells["name"] == "'" + evil
    assert cells["number"] == "'+15551234"
    assert cells["microsip_info"] == "'@SUM(1)"
    assert cells["direction"] == "incoming"
    _, out, _ = run_cli(capsys, "calls", "--format", "csv", "--raw")
    header, row = list(csv.reader(io.StringIO(out, newline="")))
    cells = dict(zip(header, row, strict=True))
    assert (cells["name"], cells["number"]) == (evil, "+15551234")
    code, _, err = run_cli(capsys, "calls", "--raw")
    assert code == 2 and "--raw is for --format csv" in err


def test_calls_table_is_printed_in_blocks_under_one_header(
    capsys: pytest.CaptureFixture[str], sixty: list[Call], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(calls_cli, "BLOCK", 7)
    _, out, _ = run_cli(capsys, "calls", "--all")
    lines = out.splitlines()
    assert lines[0].startswith("Started (UTC)") and set(lines[1]) <= {"-", " "}
    assert len(lines) == 2 + 60
    assert [line.split()[-1] for line in lines[2:]] == [c.call_id for c in sixty]
    assert sum(line.startswith("Started") for line in lines) == 1


def test_calls_to_a_file_is_written_whole(
    capsys: pytest.CaptureFixture[str], sixty: list[Call], tmp_path: Path
) -> None:
    target = tmp_path / "calls.json"
    code, out, err = run_cli(capsys, "calls", "--all", "--format", "json", "-o", str(target))
    assert (code, out) == (0, "")
    assert f"wrote {target}" in err
    assert [c["call_id"] for c in json.loads(target.read_text("utf-8"))] == [
        c.call_id for c in sixty
    ]


# --- numbers out of range are usage errors ------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ("calls", "--since", "99999999d"),
        ("calls", "--since", "9999999999w"),
        ("calls", "--limit", str(2**70)),
        ("calls", "--limit", "0"),
        ("events", "--limit", str(2**70)),
        ("events", "--after", str(2**70)),
        ("events", "--interval", "nan"),
        ("events", "--interval", "1e308"),
    ],
)
def test_numbers_out_of_range_are_usage_errors(
    capsys: pytest.CaptureFixture[str], sixty: list[Call], args: tuple[str, ...]
) -> None:
    code, out, err = run_cli(capsys, *args)
    assert code == 2, err
    assert out == ""
    assert "Invalid value" in err and "internal error" not in err


def test_the_largest_limit_and_cursor_are_fine(
    capsys: pytest.CaptureFixture[str], sixty: list[Call]
) -> None:
    code, out, _ = run_cli(capsys, "calls", "--limit", str(2**63 - 1), "--format", "json")
    assert code == 0 and len(json.loads(out)) == 60
    code, out, _ = run_cli(capsys, "events", "--after", str(2**63 - 1), "--format", "json")
    assert (code, out) == (0, "")


# --- start-up ----------------------------------------------------------------------------------

PROBE = """
import runpy, sys
sys.argv = ["microsip-bridge", *sys.argv[1:]]
try:
    runpy.run_module("microsip_bridge", run_name="__main__")
except SystemExit:
    pass
heavy = sorted({m.split(".")[0] for m in sys.modules} & {"sqlalchemy", "alembic", "fastapi"})
print("heavy:", ",".join(heavy), file=sys.stderr)
"""


@pytest.mark.parametrize(
    "args",
    [
        ("--help",),
        ("calls", "--limit", "50"),
        ("calls", "--format", "csv"),
        ("events", "--limit", "5"),
    ],
)
def test_reading_the_default_store_imports_no_sqlalchemy(
    sixty: list[Call], bridge_home: Path, args: tuple[str, ...]
) -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        env={**os.environ, "MICROSIP_BRIDGE_HOME": str(bridge_home)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "heavy: \n" in done.stderr, done.stderr
