"""End to end: the simulator runs our installed hook, the daemon keeps the call log, and every
sequence of facts §2.2 ends as the right call, with MicroSIP's own [Calls] entry reconciled."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from microsip_bridge.microsip.hook_keys import SavedHooks, install_hooks
from microsip_bridge.microsip.inifile import IniDocument
from microsip_bridge.model import Call, Direction, Outcome
from microsip_bridge.sim.folder import create_folder
from microsip_bridge.sim.scenario import parse_scenario, run_scenario
from microsip_bridge.sim.simulator import Simulator
from microsip_bridge.store import repo
from microsip_bridge.store.engine import make_engine

BIN = Path(sys.executable).parent

# Every sequence of facts §2.2, compressed in time, one remote number each.
SCENARIO = {
    "remote": {"5550001": {"then": "answer", "after": 0.5, "talk": 1.5}},
    "steps": [
        # incoming, ring, answer, start, end: answered after 1 s, 2 s of talk
        {
            "at": 0.0,
            "incoming": "5551001",
            "name": "Jane Roe",
            "then": "answer",
            "after": 1,
            "talk": 2,
        },
        # call waiting: a second caller rings during the first call and gives up: missed
        {"at": 1.5, "incoming": "5551002", "then": "missed", "after": 1},
        # incoming, ring, busy: declined
        {"at": 4.0, "incoming": "5551003", "then": "decline", "after": 0.5},
        # incoming only: rejected by do-not-disturb (closed by the reject timeout)
        {"at": 5.0, "incoming": "5551004", "then": "dnd"},
        # incoming, answer, start, end: auto-answered, no ring
        {"at": 5.5, "incoming": "5551005", "then": "auto-answer", "talk": 1.5},
        # another phone took it: [Calls] type 3
        {"at": 7.5, "incoming": "5551006", "then": "elsewhere", "after": 0.5},
        # outgoing, start, end: answered
        {"at": 8.5, "outgoing": "5550001"},
        # outgoing, busy
        {"at": 11.0, "outgoing": "5550002", "then": "busy", "after": 0.5},
        # outgoing, end: cancelled by the user
        {"at": 12.0, "outgoing": "5550003", "then": "cancel", "after": 0.7},
        # outgoing to a number that does not exist: failed
        {"at": 13.2, "outgoing": "5550004", "then": "fail", "after": 0.3},
    ],
}
EXPECTED = {
    "5551001": (Direction.INCOMING, Outcome.ANSWERED, 2.0),
    "5551002": (Direction.INCOMING, Outcome.MISSED, None),
    "5551003": (Direction.INCOMING, Outcome.DECLINED, None),
    "5551004": (Direction.INCOMING, Outcome.REJECTED, None),
    "5551005": (Direction.INCOMING, Outcome.ANSWERED, 1.5),
    "5551006": (Direction.INCOMING, Outcome.ANSWERED_ELSEWHERE, None),
    "5550001": (Direction.OUTGOING, Outcome.ANSWERED, 1.5),
    "5550002": (Direction.OUTGOING, Outcome.BUSY, None),
    "5550003": (Direction.OUTGOING, Outcome.CANCELLED, None),
    "5550004": (Direction.OUTGOING, Outcome.FAILED, None),
}


def wait_for(predicate: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A simulated MicroSIP folder with our hook installed, as `hooks install` would."""
    sim = create_folder(tmp_path / "MicroSIP", domain="pbx.example.invalid")
    doc = IniDocument.load(sim.ini)
    # The form `hooks install` writes by default: this Python running the hook directly.
    install_hooks(doc, Path(sys.executable), SavedHooks(), flag="-I").commit()
    doc.save(backups=0)
    return sim.path


@pytest.fixture
def daemon(bridge_home: Path, folder: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`microsip-bridge serve` as users run it, on a free loopback port."""
    (bridge_home / "config.toml").write_text("reject_timeout = 3\nsweep_interval = 1\n")
    log = bridge_home / "serve.log"
    args = ["serve", "--port", "0", "--ini", str(folder / "microsip.ini")]
    with log.open("wb") as out:
        proc = subprocess.Popen([str(BIN / "microsip-bridge"), *args], stdout=out, stderr=out)
    try:
        wait_for(lambda: (bridge_home / "daemon.json").exists(), 30, "the daemon to start")
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:  # pragma: no cover - a hung daemon fails the test
            proc.kill()
            pytest.fail("the daemon did not stop on SIGTERM")
    assert proc.returncode == 0, log.read_text()
    assert not (bridge_home / "daemon.json").exists()  # removed on a clean stop


def stored_calls(bridge_home: Path) -> list[Call]:
    engine = make_engine(None, bridge_home)
    try:
        with engine.connect() as conn:
            return repo.list_calls(conn)
    finally:
        engine.dispose()


@pytest.mark.slow
def test_every_sequence_ends_as_the_right_call(
    daemon: subprocess.Popen[bytes], folder: Path, bridge_home: Path
) -> None:
    with Simulator(folder, hook_timeout=10.0) as sim:
        run_scenario(sim, parse_scenario(SCENARIO))
        runs = list(sim.hook_runs)
    assert runs, "the simulator ran no hook"
    # The hook must not freeze MicroSIP: with the daemon up it hands the event over and exits.
    assert max(r.blocked_seconds for r in runs) < 1.0
    assert all(r.returncode == 0 for r in runs)

    def settled() -> bool:
        calls = stored_calls(bridge_home)
        return len(calls) >= len(EXPECTED) and all(c.outcome is not None for c in calls)

    wait_for(settled, 20, "every call to end (the rejected one by its timeout)")
    calls = {c.number: c for c in stored_calls(bridge_home)}
    assert set(calls) == set(EXPECTED), "one call per sequence, none duplicated"
    for number, (direction, outcome, duration) in EXPECTED.items():
        call = calls[number]
        assert (call.direction, call.outcome) == (direction, outcome), number
        if duration is not None:
            assert call.duration is not None
            assert abs(call.duration - duration) <= 1.0, number
    assert calls["5551001"].name == "Jane Roe"  # from MicroSIP's [Calls] entry (facts §5)
    assert calls["5551005"].auto_answered
    assert calls["5551001"].microsip_key is not None


@pytest.mark.slow
def test_events_while_the_daemon_is_down_are_spooled_and_ingested(
    folder: Path, bridge_home: Path
) -> None:
    with Simulator(folder, hook_timeout=10.0) as sim:
        run_scenario(
            sim,
            parse_scenario(
                {
                    "steps": [
                        {
                            "at": 0,
                            "incoming": "5552001",
                            "then": "answer",
                            "after": 0.3,
                            "talk": 0.5,
                        }
                    ]
                }
            ),
        )
        blocked = [r.blocked_seconds for r in sim.hook_runs]
    assert max(blocked) < 1.0  # no daemon: the hook spools and exits at once
    spool = bridge_home / "spool.jsonl"
    lines = [json.loads(line) for line in spool.read_text().splitlines()]
    assert [r["event"] for r in lines] == ["incoming", "ring", "answer", "start", "end"]

    proc = subprocess.Popen(
        [
            str(BIN / "microsip-bridge"),
            "serve",
            "--port",
            "0",
            "--ini",
            str(folder / "microsip.ini"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: (bridge_home / "daemon.json").exists(), 30, "the daemon to start")
        wait_for(
            lambda: any(c.outcome is Outcome.ANSWERED for c in stored_calls(bridge_home)),
            30,
            "the spooled call to be ingested",
        )
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(15)
    (call,) = stored_calls(bridge_home)
    assert call.number == "5552001"
    assert call.direction is Direction.INCOMING
