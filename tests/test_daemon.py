"""The daemon: its ingestion endpoint and its defences, durable answers, restarts, and bursts of
real hooks against a real uvicorn server and a real database, killed with SIGKILL on the way."""

from __future__ import annotations

import collections
import json
import os
import queue
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO

import httpx2
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from microsip_bridge import __version__, wire
from microsip_bridge.calls.ingest import Ingestor
from microsip_bridge.calls.recorder import clean_number
from microsip_bridge.calls.state import CallTracker
from microsip_bridge.calls.writer import NotStoredError, Periodic, Writer
from microsip_bridge.config import DEFAULTS, Config
from microsip_bridge.errors import BridgeError, FileFormatError, MicroSIPRunningError, NotFoundError
from microsip_bridge.microsip.history import CallType
from microsip_bridge.microsip.history_ring import append_entry, update_entry
from microsip_bridge.microsip.inifile import IniDocument
from microsip_bridge.model import CallState, Direction, EventRecord, Outcome
from microsip_bridge.server import security
from microsip_bridge.server.app import http_status
from microsip_bridge.server.runner import Daemon, bind_socket, read_daemon_file
from microsip_bridge.server.settings import SETTING_NAMES, DaemonSettings
from microsip_bridge.store.engine import make_engine
from tests.conftest import DATABASES, PG_ENV, PG_URL
from tests.daemon_support import (
    kill,
    live_daemon,
    run_hook,
    settings_for,
    spool_drained,
    spool_lines,
    start_daemon_process,
    stop,
    stored_calls,
    stored_events,
    wait_for_daemon_file,
    wait_until,
)


@pytest.fixture(params=DATABASES)
def database(request: pytest.FixtureRequest) -> Iterator[str]:
    """The daemon's --database: "" (SQLite in the home) or a PostgreSQL schema of its own."""
    if request.param == "sqlite":
        yield ""
        return
    assert PG_URL, f"MSB_REQUIRE_PG=1 but {PG_ENV} is not set"
    admin = make_engine(PG_URL)
    schema = f"msb_daemon_{uuid.uuid4().hex[:12]}"
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(PG_URL).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def record(event: str = "ring", number: str = "1001", **extra: object) -> dict[str, object]:
    return {**wire.make_record(event, number), **extra}


@pytest.fixture
def client(bridge_home: Path, database: str) -> Iterator[httpx2.Client]:
    with live_daemon(bridge_home, database=database) as daemon:
        host, port = daemon.wait_listening()
        token = (bridge_home / "token").read_text().strip()
        with httpx2.Client(
            base_url=f"http://{host}:{port}",
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        ) as http:
            yield http


# --- the endpoint ------------------------------------------------------------------------------


def test_health_needs_no_token(client: httpx2.Client) -> None:
    response = client.get("/api/v1/health", headers={"Authorization": ""})
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "version": __version__}


def test_an_event_is_accepted_once_committed_and_a_repeat_is_a_duplicate(
    client: httpx2.Client, bridge_home: Path, database: str
) -> None:
    body = record("incoming", "5551234")
    first = client.post("/api/v1/hook-events", json=body)
    assert first.status_code == 202
    answer = first.json()
    assert answer["duplicate"] is False
    # Durable: another connection sees it at once (the 202 came after the commit).
    [stored] = stored_events(bridge_home, database or None)
    assert (stored.cursor, stored.uid, stored.call_id) == (
        answer["cursor"],
        body["id"],
        answer["call_id"],
    )
    again = client.post("/api/v1/hook-events", json=body)
    assert again.status_code == 202
    assert again.json() == {**answer, "duplicate": True}
    second = client.post("/api/v1/hook-events", json=record("ring", "5551234"))
    assert second.json()["cursor"] > answer["cursor"]
    assert second.json()["call_id"] == answer["call_id"]  # the same call rings


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Bearer wrong-token-of-the-right-length-xxxxxxxxxxxx", "Basic abc"],
)
def test_no_event_without_the_token(
    client: httpx2.Client, bridge_home: Path, database: str, authorization: str | None
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    client.headers.pop("Authorization")
    response = client.post("/api/v1/hook-events", json=record(), headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert stored_events(bridge_home, database or None) == []


@pytest.mark.parametrize(
    ("body", "status", "detail"),
    [
        (b"not json", 400, "not JSON"),
        (b"[1, 2]", 422, "JSON object"),
        (json.dumps({"v": 1, "id": "a b", "event": "ring", "ts": 1.0}).encode(), 422, "event id"),
        (json.dumps(record(event="explode")).encode(), 422, "unknown event"),
        (json.dumps(record(number="9" * 2000)).encode(), 422, "characters"),
        (json.dumps(record(pid=2**70)).encode(), 422, "64 bits"),
        (b'{"pad": "' + b"x" * 20_000 + b'"}', 413, "at most"),
    ],
)
def test_bad_records_are_refused_and_nothing_is_stored(
    client: httpx2.Client, bridge_home: Path, database: str, body: bytes, status: int, detail: str
) -> None:
    response = client.post(
        "/api/v1/hook-events", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == status
    assert detail in response.json()["detail"]
    assert stored_events(bridge_home, database or None) == []
    # The daemon is fine afterwards.
    assert client.post("/api/v1/hook-events", json=record()).status_code == 202


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"Host": "evil.example"}, 421),  # DNS rebinding: a page on evil.example -> 127.0.0.1
        ({"Host": "evil.example:5797"}, 421),
        ({"Host": "127.0.0.1.evil.example"}, 421),
        ({"Origin": "http://evil.example"}, 403),  # CSRF from any web page
        ({"Origin": "null"}, 403),
        ({"Origin": "http://localhost"}, 403),  # another program's page on loopback (port 80)
        ({"Host": "localhost"}, 202),
        ({"Origin": "own"}, 202),  # the daemon's own pages
    ],
)
def test_only_loopback_hosts_and_origins(
    client: httpx2.Client, headers: dict[str, str], status: int
) -> None:
    if headers.get("Origin") == "own":
        headers = {"Origin": str(client.base_url).rstrip("/")}
    response = client.post("/api/v1/hook-events", json=record(), headers=headers)
    assert response.status_code == status
    if status in (403, 421):
        assert "refused" in response.json()["detail"]


def test_health_checks_the_host_too(client: httpx2.Client) -> None:
    assert client.get("/api/v1/health", headers={"Host": "evil.example"}).status_code == 421


def test_a_number_that_is_not_text_is_stored_with_replacement_characters(
    client: httpx2.Client, bridge_home: Path, database: str
) -> None:
    # What the hook sends for argv bytes that are not UTF-8 (surrogateescape, escaped JSON).
    body = wire.encode_record(record(number="\udcff\udcfe42\ud800"))
    response = client.post(
        "/api/v1/hook-events", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 202
    [stored] = stored_events(bridge_home, database or None)
    assert stored.number == "\ufffd\ufffd42\ufffd"


@pytest.mark.parametrize(
    ("number", "clean", "raw"),
    [
        ("1001", "1001", None),
        ("名前", "名前", None),
        ("\udcc3\udca9", "é", b"\xc3\xa9"),  # valid UTF-8 bytes escaped one by one
        ("a\udcff", "a\ufffd", b"a\xff"),
        ("\ud83d", "\ufffd", b"\xef\xbf\xbd"),  # a lone surrogate from JSON
    ],
)
def test_clean_number(number: str, clean: str, raw: bytes | None) -> None:
    assert clean_number(number) == (clean, raw)


def test_the_openapi_document_describes_the_hook_record(client: httpx2.Client) -> None:
    document = client.get("/api/v1/openapi.json").json()
    body = document["paths"][wire.HOOK_EVENTS_PATH]["post"]["requestBody"]
    assert body["content"]["application/json"]["schema"] == wire.record_schema()


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (NotStoredError("later"), 503),
        (BridgeError("no"), 422),
        (FileFormatError("damaged"), 422),
        (NotFoundError("gone"), 404),
        (MicroSIPRunningError("running"), 409),
    ],
)
def test_each_error_has_its_http_status(error: BridgeError, status: int) -> None:
    assert http_status(error) == status


def test_an_event_not_committed_in_time_is_a_503_and_stored_anyway(bridge_home: Path) -> None:
    with live_daemon(bridge_home, commit_timeout=1e-9) as daemon:
        host, port = daemon.wait_listening()
        token = (bridge_home / "token").read_text().strip()
        body = record("incoming", "slow")
        response = httpx2.post(
            f"http://{host}:{port}{wire.HOOK_EVENTS_PATH}",
            json=body,
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )
        assert response.status_code == 503
        assert "sending it again is safe" in response.json()["detail"]
        wait_until(lambda: stored_events(bridge_home), what="the event stored")
    assert [e.uid for e in stored_events(bridge_home)] == [body["id"]]


# --- the token and the daemon's files ----------------------------------------------------------


def test_the_token_is_created_private_and_kept(bridge_home: Path) -> None:
    token = security.ensure_token(bridge_home)
    path = bridge_home / "token"
    assert security.valid_token(token) and len(token) >= 43
    assert path.read_text().strip() == token
    if os.name == "posix":
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert security.ensure_token(bridge_home) == token  # the same on every start


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_a_token_others_can_read_is_made_private(bridge_home: Path) -> None:
    token = security.ensure_token(bridge_home)
    (bridge_home / "token").chmod(0o644)
    assert security.ensure_token(bridge_home) == token
    assert stat.S_IMODE((bridge_home / "token").stat().st_mode) == 0o600


@pytest.mark.parametrize("damaged", ["", "short", "x" * 40 + "\r\nInjected: 1", "é" * 50])
def test_a_damaged_token_is_replaced(bridge_home: Path, damaged: str) -> None:
    (bridge_home / "token").write_text(damaged)
    token = security.ensure_token(bridge_home)
    assert security.valid_token(token)
    assert (bridge_home / "token").read_text().strip() == token


@pytest.mark.parametrize(
    ("header", "host"),
    [("127.0.0.1:5797", "127.0.0.1"), ("[::1]:80", "::1"), ("LocalHost.", "localhost")],
)
def test_host_name(header: str, host: str) -> None:
    assert security.host_name(header) == host


def test_the_daemon_publishes_itself_and_stops_cleanly_on_sigterm(bridge_home: Path) -> None:
    proc = start_daemon_process(bridge_home)
    info = read_daemon_file(bridge_home)
    assert info is not None
    assert (info["host"], info["pid"]) == ("127.0.0.1", proc.pid)
    assert info["token_file"] == str(bridge_home / "token")
    if os.name == "posix":
        assert stat.S_IMODE((bridge_home / "daemon.json").stat().st_mode) == 0o600
        assert stat.S_IMODE((bridge_home / "token").stat().st_mode) == 0o600
    assert run_hook(bridge_home, "outgoing", "1001").returncode == 0
    code, out, err = stop(proc)
    assert code == 0, err
    assert f"listening on http://127.0.0.1:{info['port']} (pid {proc.pid})" in out
    assert "stopped SIGTERM" in out
    assert not (bridge_home / "daemon.json").exists()
    assert [e.event for e in stored_events(bridge_home)] == ["outgoing"]


def test_a_second_daemon_for_the_same_home_is_refused(bridge_home: Path) -> None:
    with live_daemon(bridge_home):
        second = Daemon(settings_for(bridge_home), configure_logging=False)
        with pytest.raises(BridgeError, match="a daemon already runs for this home"):
            second.run()


def test_a_taken_port_is_one_clear_line() -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        with pytest.raises(BridgeError, match=f"cannot listen on 127.0.0.1:{port}: .*--port"):
            bind_socket("127.0.0.1", port)


def test_settings_come_from_the_config_with_options_on_top(tmp_path: Path) -> None:
    values = {**DEFAULTS, "port": 6000, "reject_timeout": 20, "database": "sqlite:///x.db"}
    config = Config(values, {}, tmp_path)
    settings = DaemonSettings.from_config(config, tmp_path, port=None, host="localhost")
    assert (settings.host, settings.port, settings.reject_timeout) == ("localhost", 6000, 20.0)
    assert settings.database_url == "sqlite:///x.db"
    with pytest.raises(BridgeError, match="port must be"):
        DaemonSettings.from_config(config, tmp_path, port=70000)
    with pytest.raises(BridgeError, match="spool_interval must be more than 0"):
        DaemonSettings(home=tmp_path, spool_interval=0)


def test_the_daemon_defaults_agree_with_the_declared_settings(tmp_path: Path) -> None:
    # Declared once, in config.SETTINGS; DaemonSettings' own defaults serve library callers.
    declared = DaemonSettings.from_config(Config(dict(DEFAULTS), {}, tmp_path), tmp_path)
    assert set(SETTING_NAMES) <= set(DEFAULTS)
    assert declared == DaemonSettings(home=tmp_path)


# --- the single writer -------------------------------------------------------------------------


def test_the_writer_commits_in_groups_in_order() -> None:
    batches: list[list[str]] = []
    queued = threading.Event()

    def write(recs: Sequence[EventRecord]) -> list[str]:
        queued.wait(10)  # the first batch waits until every event is queued behind it
        batches.append([r.uid for r in recs])
        return [r.uid.upper() for r in recs]

    writer: Writer[str] = Writer(write, batch_size=3)
    writer.start()
    recs = [EventRecord.from_spool(record(number=str(n))) for n in range(7)]
    futures = [writer.submit(r) for r in recs]
    queued.set()
    assert [f.result(30) for f in futures] == [r.uid.upper() for r in recs]
    writer.stop()
    assert [uid for batch in batches for uid in batch] == [r.uid for r in recs]
    assert max(map(len, batches)) == 3 and len(batches) <= 4


def test_a_batch_that_fails_is_not_stored_and_the_writer_goes_on() -> None:
    def write(recs: Sequence[EventRecord]) -> list[str | BridgeError]:
        if recs[0].number == "disk full":
            raise RuntimeError("database or disk is full")
        return [BridgeError("refused") if r.number == "bad" else r.uid for r in recs]

    writer: Writer[str] = Writer(write, batch_size=1)
    writer.start()
    try:
        with pytest.raises(NotStoredError, match="not stored: database or disk is full"):
            writer.submit(EventRecord.from_spool(record(number="disk full"))).result(30)
        with pytest.raises(BridgeError, match="refused"):
            writer.submit(EventRecord.from_spool(record(number="bad"))).result(30)
        good = EventRecord.from_spool(record())
        assert writer.submit(good).result(30) == good.uid
    finally:
        writer.stop()
    with pytest.raises(NotStoredError, match="not accepting"):
        writer.submit(good)


def test_periodic_work_runs_on_the_writer_and_a_failure_is_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    runs: list[str] = []

    def flaky() -> None:
        runs.append(threading.current_thread().name)
        if len(runs) <= 3:
            raise OSError("the ini is locked")

    writer: Writer[str] = Writer(
        lambda recs: [r.uid for r in recs],
        batch_size=1,
        periodic=[Periodic("sweep", 0.01, flaky, first=0.0)],
        name="test-writer",
    )
    with caplog.at_level("INFO", logger="microsip_bridge.ingest"):
        writer.start()
        try:
            wait_until(lambda: len(runs) >= 5, what="five periodic runs")
        finally:
            writer.stop()
    assert set(runs) == {"test-writer"}
    assert caplog.text.count("periodic sweep failed") == 1
    assert caplog.text.count("periodic sweep works again") == 1


# --- restarts ------------------------------------------------------------------------------------


def test_a_call_continues_across_a_daemon_restart(bridge_home: Path, database: str) -> None:
    with live_daemon(bridge_home, database=database):
        for event in ("incoming", "ring"):
            assert run_hook(bridge_home, event, "5551234").returncode == 0
    assert not (bridge_home / "daemon.json").exists()
    # While the daemon is down, MicroSIP goes on: the hooks spool.
    assert run_hook(bridge_home, "answer", "5551234").returncode == 0
    assert len(spool_lines(bridge_home)) == 1
    with live_daemon(bridge_home, database=database):
        for event in ("start", "end"):
            assert run_hook(bridge_home, event, "5551234").returncode == 0
    db = database or None
    [call] = stored_calls(bridge_home, db)
    assert (call.direction, call.state, call.outcome) == (
        Direction.INCOMING,
        CallState.ENDED,
        Outcome.ANSWERED,
    )
    assert call.rang and not call.auto_answered
    stored = stored_events(bridge_home, db)
    assert [e.event for e in stored] == ["incoming", "ring", "answer", "start", "end"]
    assert {e.call_id for e in stored} == {call.call_id}
    assert [e.source for e in stored] == ["hook", "hook", "spool", "hook", "hook"]


def test_a_lone_incoming_is_closed_as_rejected_by_the_timeout(bridge_home: Path) -> None:
    # facts §2.2: a call MicroSIP rejects at once (DND, limits) fires cmdIncomingCall only.
    with live_daemon(bridge_home, reject_timeout=0.3):
        assert run_hook(bridge_home, "incoming", "666").returncode == 0
        wait_until(
            lambda: stored_calls(bridge_home)[0].state is CallState.ENDED, what="the timeout"
        )
    [call] = stored_calls(bridge_home)
    assert call.outcome is Outcome.REJECTED


# --- reconciliation and the sweep, through the daemon -------------------------------------------


def microsip_ini(folder: Path) -> Path:
    ini = folder / "microsip.ini"
    IniDocument.new(ini).save(backups=0)
    return ini


def test_an_ended_call_is_completed_from_the_newest_calls_entry(
    bridge_home: Path, tmp_path: Path
) -> None:
    ini = microsip_ini(tmp_path)
    with live_daemon(bridge_home, ini=ini) as daemon:
        assert run_hook(bridge_home, "outgoing", "5551234").returncode == 0
        # MicroSIP 3.20+ writes the entry before cmdCallBusy runs (facts §5).
        doc = IniDocument.load(ini)
        key = append_entry(
            doc, "5551234", "Alice Example", CallType.OUTGOING, int(time.time()), 0, ""
        )
        update_entry(doc, key, info="Busy Here")
        doc.save(backups=0)
        assert run_hook(bridge_home, "busy", "5551234").returncode == 0
        assert daemon.address is not None
    [call] = stored_calls(bridge_home)
    assert (call.outcome, call.name, call.microsip_key, call.microsip_info) == (
        Outcome.BUSY,
        "Alice Example",
        key,
        "Busy Here",
    )


def test_call_waiting_gets_its_own_entry_not_the_newest(bridge_home: Path, tmp_path: Path) -> None:
    # A second call rings during the first; the first ends: its entry is not callsLastKey.
    ini = microsip_ini(tmp_path)
    now = time.time()
    doc = IniDocument.load(ini)
    first = append_entry(doc, "1001", "First", CallType.INCOMING, int(now), 0, "")
    append_entry(doc, "1002", "Second", CallType.INCOMING, int(now) + 2, 0, "")
    update_entry(doc, first, duration=30, info="Call Ended")
    doc.save(backups=0)
    engine = make_engine(None, bridge_home)
    ingestor = Ingestor(engine, CallTracker(), ini=ini, home=bridge_home)
    ingestor.start()
    try:
        steps = [("1001", "incoming", 0), ("1001", "ring", 0.1), ("1001", "answer", 1)]
        steps += [("1002", "incoming", 2), ("1002", "ring", 2.1), ("1001", "end", 31)]
        ingestor.ingest(
            EventRecord.from_spool(wire.make_record(event, number, now=now + at), source="hook")
            for number, event, at in steps
        )
    finally:
        ingestor.stop()
        engine.dispose()
    calls = {c.number: c for c in stored_calls(bridge_home)}
    assert (calls["1001"].name, calls["1001"].microsip_key) == ("First", first)
    assert calls["1002"].microsip_key is None  # still ringing: its entry is not final


def test_an_entry_not_final_at_the_end_is_completed_by_the_sweep(
    bridge_home: Path, tmp_path: Path
) -> None:
    # MicroSIP 3.19 runs cmdCallEnd before it writes the entry's duration and text (facts §5).
    ini = microsip_ini(tmp_path)
    now = time.time()
    doc = IniDocument.load(ini)
    key = append_entry(doc, "1001", "Early", CallType.INCOMING, int(now), 0, "")
    doc.save(backups=0)
    engine = make_engine(None, bridge_home)
    ingestor = Ingestor(engine, CallTracker(), ini=ini, home=bridge_home)
    ingestor.start()
    try:
        ingestor.ingest(
            EventRecord.from_spool(wire.make_record(event, "1001", now=now + at), source="hook")
            for event, at in (("incoming", 0), ("ring", 0.1), ("end", 5))
        )
        [call] = stored_calls(bridge_home)
        assert (call.outcome, call.microsip_key, call.name) == (Outcome.MISSED, None, "")
        doc = IniDocument.load(ini)
        update_entry(doc, key, type=CallType.MISSED, info="Missed Call")
        doc.save(backups=0)
        assert ingestor.sweep_now() == 1
        assert ingestor.sweep_now() == 0
    finally:
        ingestor.stop()
        engine.dispose()
    [call] = stored_calls(bridge_home)
    assert (call.outcome, call.microsip_key, call.name) == (Outcome.MISSED, key, "Early")
    assert call.source == "hooks"


def test_the_sweep_imports_calls_no_hook_announced_once(bridge_home: Path, tmp_path: Path) -> None:
    ini = microsip_ini(tmp_path)
    doc = IniDocument.load(ini)
    long_ago = int(time.time()) - 3600
    append_entry(doc, "1001", "Bob", CallType.INCOMING, long_ago, 42, "Call Ended")
    append_entry(doc, "1002", "", CallType.MISSED, long_ago + 60, 0, "Missed Call")
    doc.save(backups=0)
    engine = make_engine(None, bridge_home)
    ingestor = Ingestor(engine, CallTracker(), ini=ini, home=bridge_home)
    ingestor.start()
    try:
        assert ingestor.sweep_now() == 0  # the first sweep ran at start
        assert ingestor.sweep_now() == 0  # and a second one finds nothing new
    finally:
        ingestor.stop()
        engine.dispose()
    calls = stored_calls(bridge_home)
    assert [(c.number, c.name, c.outcome, c.source) for c in calls] == [
        ("1001", "Bob", Outcome.ANSWERED, "history"),
        ("1002", "", Outcome.MISSED, "history"),
    ]
    assert calls[0].duration == 42
    events = stored_events(bridge_home)
    assert [(e.source, e.event, e.call_id) for e in events] == [
        ("sweep", "end", calls[0].call_id),
        ("sweep", "end", calls[1].call_id),
    ]


def test_the_sweep_looks_up_only_new_entries_and_reads_the_ini_off_the_writer(
    bridge_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Issue 7 §8: a sweep that scanned the whole store on the writer thread delayed the hooks.
    from microsip_bridge.calls.sweep import Reconciler
    from microsip_bridge.store import repo

    ini = microsip_ini(tmp_path)
    doc = IniDocument.load(ini)
    long_ago = int(time.time()) - 3600
    for n in range(30):
        append_entry(doc, f"10{n:02d}", "", CallType.MISSED, long_ago + n, 0, "Missed Call")
    doc.save(backups=0)
    asked: list[list[tuple[int, int]]] = []
    real_seen = repo.history_entries_seen

    def seen(conn: object, entries: Sequence[tuple[int, int]]) -> set[tuple[int, int]]:
        asked.append(sorted(entries))
        return real_seen(conn, entries)  # type: ignore[arg-type]

    threads: list[str] = []
    real_read = Reconciler.read_history

    def read(self: Reconciler) -> object:
        threads.append(threading.current_thread().name)
        return real_read(self)

    monkeypatch.setattr(repo, "history_entries_seen", seen)
    monkeypatch.setattr(Reconciler, "read_history", read)
    engine = make_engine(None, bridge_home)
    ingestor = Ingestor(engine, CallTracker(), ini=ini, home=bridge_home, sweep_interval=0.05)
    ingestor.start()
    try:
        assert len(asked) == 1 and len(asked[0]) == 30  # at start: the whole ring, once
        wait_until(lambda: "microsip-bridge-sweep" in threads, what="a periodic sweep")
        assert ingestor.sweep_now() == 0
        assert len(asked) == 1  # nothing new since: the store was not asked again
        doc = IniDocument.load(ini)
        key = append_entry(doc, "2000", "", CallType.MISSED, long_ago + 100, 0, "Missed Call")
        doc.save(backups=0)
        wait_until(lambda: len(stored_calls(bridge_home)) == 31, what="the new entry imported")
    finally:
        ingestor.stop()
        engine.dispose()
    assert asked[1:] == [[(key, long_ago + 100)]]  # then only the new entry
    assert "microsip-bridge-ingest" not in threads  # never on the writer thread


# --- reliability: real hooks, many at once, and a daemon killed on the way ---------------------

# Each call kind: its hook sequence in MicroSIP's order (facts §2.2) and the outcome it gives.
KINDS = [
    (("incoming", "ring", "answer", "start", "end"), Direction.INCOMING, Outcome.ANSWERED),
    (("incoming", "ring", "end"), Direction.INCOMING, Outcome.MISSED),
    (("incoming", "ring", "busy"), Direction.INCOMING, Outcome.DECLINED),
    (("outgoing", "start", "end"), Direction.OUTGOING, Outcome.ANSWERED),
    (("outgoing", "busy"), Direction.OUTGOING, Outcome.BUSY),
    (("incoming", "answer", "answer-video", "start", "end"), Direction.INCOMING, Outcome.ANSWERED),
]


def fire_calls(home: Path, calls: int, lines: int = 8) -> list[tuple[str, int]]:
    """``calls`` calls on ``lines`` lines at once: each line runs its calls' hooks one after
    another, as MicroSIP waits for each hook (facts §2.3), so ``lines`` hooks run at any moment.
    Returns (number, kind index) per call."""
    work: queue.SimpleQueue[tuple[str, int]] = queue.SimpleQueue()
    plan = [(f"55{n:05d}", n % len(KINDS)) for n in range(calls)]
    for item in plan:
        work.put(item)
    failures: list[str] = []

    def line() -> None:
        while True:
            try:
                number, kind = work.get_nowait()
            except queue.Empty:
                return
            for event in KINDS[kind][0]:
                result = run_hook(home, event, number, timeout=60)
                if result.returncode != 0:
                    failures.append(f"{event} {number}: {result.returncode}")

    threads = [threading.Thread(target=line) for _ in range(lines)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    return plan


def check_calls(home: Path, plan: list[tuple[str, int]]) -> None:
    calls = stored_calls(home)
    by_number = collections.Counter(c.number for c in calls)
    assert len(calls) == len(plan)  # no call duplicated...
    assert set(by_number) == {number for number, _ in plan}  # ...none lost
    kinds = dict(plan)
    for call in calls:
        _, direction, outcome = KINDS[kinds[call.number]]
        assert (call.number, call.direction, call.outcome) == (call.number, direction, outcome)
    events = stored_events(home)
    assert len(events) == sum(len(KINDS[kind][0]) for _, kind in plan)  # no event lost
    assert len({e.uid for e in events}) == len(events)
    by_call = {c.call_id: c.number for c in calls}
    assert all(by_call[e.call_id] == e.number for e in events)  # each in its own call


def test_eight_lines_of_calls_at_once_lose_nothing(bridge_home: Path) -> None:
    with live_daemon(bridge_home):
        plan = fire_calls(bridge_home, 24)
        wait_until(lambda: spool_drained(bridge_home), what="the spool")
    check_calls(bridge_home, plan)


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_eight_hooks_at_once_for_each_of_200_calls_lose_nothing(bridge_home: Path) -> None:
    with live_daemon(bridge_home):
        plan = fire_calls(bridge_home, 200)
        wait_until(lambda: spool_drained(bridge_home), what="the spool")
    check_calls(bridge_home, plan)


def burst_with_kills(home: Path, total: int, kill_at: tuple[int, ...]) -> None:
    """``total`` hooks (8 at once), the daemon SIGKILLed after each count in ``kill_at`` and
    restarted at once; then every event must be stored exactly once."""
    numbers = [f"b{n:05d}" for n in range(total)]
    work: queue.SimpleQueue[str] = queue.SimpleQueue()
    for number in numbers:
        work.put(number)
    done = 0
    lock = threading.Lock()
    failures: list[str] = []

    def line() -> None:
        nonlocal done
        while True:
            try:
                number = work.get_nowait()
            except queue.Empty:
                return
            result = run_hook(home, "incoming", number, timeout=60)
            if result.returncode != 0:
                failures.append(number)
            with lock:
                done += 1

    proc = start_daemon_process(home)
    threads = [threading.Thread(target=line) for _ in range(8)]
    for t in threads:
        t.start()
    for mark in kill_at:
        wait_until(lambda: done >= mark, timeout=600, what=f"{mark} hooks")  # noqa: B023
        kill(proc)  # SIGKILL: mid-request, mid-commit, mid-spool-ingestion, wherever it is
        proc = start_daemon_process(home)
    for t in threads:
        t.join()
    assert failures == []
    wait_until(lambda: not list(home.glob("spool*")), timeout=120, what="the spool to be ingested")
    code, _, err = stop(proc)
    assert code == 0, err
    events = stored_events(home)
    assert collections.Counter(e.number for e in events) == collections.Counter(numbers)
    assert len({e.uid for e in events}) == total
    # Both paths were taken: hooks that found the daemon dead spooled, the restarts ingested.
    assert {e.source for e in events} == {"hook", "spool"}
    calls = stored_calls(home)
    assert sorted(c.number for c in calls) == numbers  # one call each, none duplicated


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
def test_sigkilled_twice_during_a_small_burst_every_event_once(bridge_home: Path) -> None:
    burst_with_kills(bridge_home, 150, (40, 90))


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
def test_sigkilled_twice_during_a_burst_of_1000_every_event_once(bridge_home: Path) -> None:
    burst_with_kills(bridge_home, 1000, (300, 650))


def test_a_202_survives_a_sigkill_right_after_it(bridge_home: Path) -> None:
    proc = start_daemon_process(bridge_home)
    info = wait_for_daemon_file(bridge_home, proc)
    token = (bridge_home / "token").read_text().strip()
    body = record("incoming", "durable")
    response = httpx2.post(
        f"http://127.0.0.1:{info['port']}/api/v1/hook-events",
        json=body,
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    kill(proc)  # no clean shutdown: only what was committed is there
    assert response.status_code == 202
    [stored] = stored_events(bridge_home)
    assert (stored.uid, stored.cursor) == (body["id"], response.json()["cursor"])


def test_the_ingestor_refuses_work_when_stopped(bridge_home: Path) -> None:
    engine = make_engine(None, bridge_home)
    ingestor = Ingestor(engine, CallTracker(), home=bridge_home)
    rec = EventRecord.from_spool(record())
    with pytest.raises(BridgeError, match="not accepting"):
        ingestor.submit(rec)
    ingestor.start()
    first, again = ingestor.ingest([rec, rec])
    ingestor.stop()
    with pytest.raises(BridgeError, match="not accepting"):
        ingestor.submit(rec)
    engine.dispose()
    assert (first.duplicate, again.duplicate) == (False, True)
    assert first.cursor == again.cursor
    assert first.call_id == again.call_id is not None


# --- the commands: serve, calls, events ----------------------------------------------------------


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    from microsip_bridge.cli import main

    try:
        main(list(args))
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def fill_store(home: Path, sequences: list[tuple[str, list[tuple[str, float]]]]) -> None:
    """Calls in the store, through the real ingestion: (number, [(event, ts), ...])."""
    engine = make_engine(None, home)
    ingestor = Ingestor(engine, CallTracker(), home=home)
    ingestor.start()
    try:
        for number, steps in sequences:
            ingestor.ingest(
                EventRecord.from_spool(wire.make_record(event, number, now=ts), source="hook")
                for event, ts in steps
            )
    finally:
        ingestor.stop()
        engine.dispose()


T0 = 1_764_000_000.0  # 2025-11-24 16:00:00 UTC


@pytest.fixture
def filled(bridge_home: Path) -> Path:
    fill_store(
        bridge_home,
        [
            ("1001", [("incoming", T0), ("ring", T0 + 0.1), ("answer", T0 + 5), ("end", T0 + 65)]),
            ("\x1b[31mred", [("outgoing", T0 + 100), ("busy", T0 + 103)]),
        ],
    )
    return bridge_home


def test_calls_table_lists_the_calls_oldest_first(
    capsys: pytest.CaptureFixture[str], filled: Path
) -> None:
    code, out, _ = run_cli(capsys, "calls")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == [
        "Started", "(UTC)", "Direction", "Number", "Name", "Outcome", "Duration", "Call", "id",
    ]  # fmt: skip
    assert lines[2].startswith("2025-11-24 16:00:00  incoming   1001")
    assert "answered" in lines[2] and "1:00" in lines[2]
    assert "\x1b" not in out  # a hostile number cannot drive the terminal
    assert "\ufffd[31mred" in lines[3] and "busy" in lines[3]


def test_calls_json_and_csv_carry_every_field(
    capsys: pytest.CaptureFixture[str], filled: Path
) -> None:
    _, out, _ = run_cli(capsys, "calls", "--format", "json")
    data = json.loads(out)
    assert [(c["number"], c["direction"], c["outcome"]) for c in data] == [
        ("1001", "incoming", "answered"),
        ("\x1b[31mred", "outgoing", "busy"),
    ]
    assert data[0]["duration"] == 60.0 and len(data[0]["events"]) == 4
    _, out, _ = run_cli(capsys, "calls", "--format", "csv", "--limit", "1")
    header, row = out.splitlines()[:2]
    # The JSON's columns, in its order.
    assert header.split(",") == list(data[0])
    assert ",outgoing,\x1b[31mred,ended," in row  # the newest only, oldest first


def test_calls_since(capsys: pytest.CaptureFixture[str], filled: Path) -> None:
    _, out, _ = run_cli(capsys, "calls", "--since", "2025-11-24T16:01:00+00:00", "--format", "json")
    assert [c["outcome"] for c in json.loads(out)] == ["busy"]


def test_calls_without_a_store_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, "calls", "--format", "json")
    assert (code, json.loads(out)) == (0, [])
    assert "no call log yet" in err


def test_events_table_json_after_and_limit(
    capsys: pytest.CaptureFixture[str], filled: Path
) -> None:
    code, out, _ = run_cli(capsys, "events")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["Cursor", "Fired", "(UTC)"]
    assert [line.split()[3] for line in lines[1:]] == [
        "incoming", "ring", "answer", "end", "outgoing", "busy",
    ]  # fmt: skip
    _, out, _ = run_cli(capsys, "events", "--format", "json", "--after", "4")
    stored = [json.loads(line) for line in out.splitlines()]
    assert [(e["cursor"], e["event"]) for e in stored] == [(5, "outgoing"), (6, "busy")]
    assert stored[0]["number"] == "\x1b[31mred" and stored[0]["source"] == "hook"
    _, out, _ = run_cli(capsys, "events", "--format", "json", "--limit", "2")
    assert [json.loads(line)["cursor"] for line in out.splitlines()] == [5, 6]
    _, out, _ = run_cli(capsys, "events", "--format", "json", "--after", "1", "--limit", "2")
    assert [json.loads(line)["cursor"] for line in out.splitlines()] == [2, 3]


# `events --follow` as a terminal starts it, and as a background job of a shell without job
# control does: with SIGINT ignored, so that Python sets no handler of its own.
FOLLOW = (
    "import runpy, signal; signal.signal(signal.SIGINT, signal.{}); "
    "runpy.run_module('microsip_bridge', run_name='__main__')"
)
FOLLOW_ARGS = ("events", "--follow", "--format", "json", "--interval", "0.05")


def _line_reader(stream: IO[str]) -> Callable[[], str]:
    """A readline that gives up after 30 s (a child that hangs fails the test, not pytest)."""
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        for line in stream:
            lines.put(line)
        lines.put("")

    threading.Thread(target=pump, daemon=True).start()
    return lambda: lines.get(timeout=30)


@pytest.mark.parametrize("sigint", ["default_int_handler", "SIG_IGN"])
def test_events_follow_prints_new_events_as_they_come(filled: Path, sigint: str) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", FOLLOW.format(sigint), *FOLLOW_ARGS],
        env={**os.environ, "MICROSIP_BRIDGE_HOME": str(filled)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stderr is not None
    try:
        readline = _line_reader(proc.stdout)
        backlog = [json.loads(readline()) for _ in range(6)]
        assert [e["cursor"] for e in backlog] == [1, 2, 3, 4, 5, 6]
        fill_store(filled, [("2002", [("incoming", T0 + 200)])])
        fresh = json.loads(readline())
        assert (fresh["cursor"], fresh["event"], fresh["number"]) == (7, "incoming", "2002")
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0, proc.stderr.read()
        assert readline() == ""  # nothing after the stop
        assert proc.stderr.read() == ""
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()


def test_a_database_that_cannot_be_opened_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "events", "--database", "mysql://nope/x")
    assert code == 1
    assert err.startswith("microsip-bridge: error: unsupported database 'mysql'")


def test_serve_runs_prints_where_it_listens_and_stops_on_sigterm(
    bridge_home: Path, tmp_path: Path
) -> None:
    ini = microsip_ini(tmp_path)
    proc = subprocess.Popen(
        [sys.executable, "-m", "microsip_bridge", "serve", "--port", "0", "--ini", str(ini)],
        env={**os.environ, "MICROSIP_BRIDGE_HOME": str(bridge_home)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    info = wait_for_daemon_file(bridge_home, proc)
    assert run_hook(bridge_home, "outgoing", "1001").returncode == 0
    code, out, err = stop(proc)
    assert code == 0, err
    assert f"listening on http://127.0.0.1:{info['port']}" in out
    assert f"MicroSIP ini: {ini}" in out
    assert "stopped (SIGTERM)" in out
    assert [e.number for e in stored_events(bridge_home)] == ["1001"]


def test_serve_without_microsip_runs_without_reconciliation(
    capsys: pytest.CaptureFixture[str], bridge_home: Path
) -> None:
    # Refused before it binds (another daemon answers), after finding no ini: both said plainly.
    with live_daemon(bridge_home):
        code, _, err = run_cli(capsys, "serve", "--port", "0")
    assert code == 1
    assert "note: no MicroSIP ini found" in err or sys.platform == "win32"
    assert "a daemon already runs for this home" in err


@pytest.mark.parametrize("command", ["serve", "calls", "events"])
def test_help_has_an_example(capsys: pytest.CaptureFixture[str], command: str) -> None:
    code, out, _ = run_cli(capsys, command, "--help")
    assert code == 0
    after = out.split("Example:\n", 1)[1].splitlines()
    assert after[0].strip().startswith(f"microsip-bridge {command}")


def test_a_failed_transaction_leaves_no_trace_in_the_calls(
    bridge_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy.exc import OperationalError

    from microsip_bridge.store import repo

    engine = make_engine(None, bridge_home)
    ingestor = Ingestor(engine, CallTracker(), home=bridge_home)
    ingestor.start()
    real_save, real_open = repo.save_calls, repo.open_calls

    def disk_full(conn: object, batch: object, **options: object) -> None:
        raise OperationalError("INSERT", {}, Exception("database or disk is full"))

    def unreadable(conn: object) -> list[object]:
        raise OperationalError("SELECT", {}, Exception("database is locked"))

    def event(name: str, at: float) -> EventRecord:
        return EventRecord.from_spool(wire.make_record(name, "1001", now=T0 + at), source="hook")

    try:
        incoming = event("incoming", 0)
        monkeypatch.setattr(repo, "save_calls", disk_full)
        with pytest.raises(NotStoredError, match="disk is full"):
            ingestor.submit(incoming).result(30)
        monkeypatch.setattr(repo, "save_calls", real_save)
        [created] = ingestor.ingest([incoming])
        # The call the answer names exists: memory did not keep the call the failure created.
        assert [c.call_id for c in stored_calls(bridge_home)] == [created.call_id]
        ring = event("ring", 0.1)
        monkeypatch.setattr(repo, "save_calls", disk_full)
        monkeypatch.setattr(repo, "open_calls", unreadable)  # and the reload fails too, at first
        with pytest.raises(NotStoredError, match="disk is full"):
            ingestor.submit(ring).result(30)
        monkeypatch.setattr(repo, "save_calls", real_save)
        monkeypatch.setattr(repo, "open_calls", real_open)
        # The hook spooled it; it comes again, and is not a duplicate: nothing was committed.
        [again] = ingestor.ingest([ring])
        assert again.duplicate is False
        ingestor.ingest([event("end", 20)])
    finally:
        ingestor.stop()
        engine.dispose()
    [call] = stored_calls(bridge_home)  # one call: the reload kept it whole
    assert (call.rang, call.outcome) == (True, Outcome.MISSED)
    assert [e.event for e in stored_events(bridge_home)] == ["incoming", "ring", "end"]


def test_each_event_row_is_written_once_already_linked_to_its_call(bridge_home: Path) -> None:
    # Group commit's cost per event: the row is inserted with its call, never updated after.
    from sqlalchemy import event as sa_event

    engine = make_engine(None, bridge_home)
    ingestor = Ingestor(engine, CallTracker())
    ingestor.start()
    statements: list[str] = []

    def seen(conn: object, cursor: object, statement: str, *rest: object) -> None:
        statements.append(" ".join(statement.split()).upper())

    sa_event.listen(engine, "before_cursor_execute", seen)
    names = ("incoming", "ring", "answer", "start", "end")
    recs = [
        EventRecord.from_spool(wire.make_record(name, number, now=T0 + i), source="hook")
        for number in ("1001", "1002")
        for i, name in enumerate(names)
    ]
    try:
        first = ingestor.ingest(recs)
        again = ingestor.ingest([recs[0], recs[7]])  # replayed: duplicates
        ingestor.ingest(recs[3:4])  # one at a time, the common case
    finally:
        ingestor.stop()
        engine.dispose()
    assert not [sql for sql in statements if sql.startswith("UPDATE EVENTS")]
    assert len([sql for sql in statements if sql.startswith("INSERT INTO EVENTS")]) == 1
    assert [r.duplicate for r in first] == [False] * 10
    assert [(r.duplicate, r.call_id) for r in again] == [
        (True, first[0].call_id),
        (True, first[7].call_id),
    ]
    calls = {c.number: c for c in stored_calls(bridge_home)}
    assert {n: c.outcome for n, c in calls.items()} == {
        "1001": Outcome.ANSWERED,
        "1002": Outcome.ANSWERED,
    }
    stored = stored_events(bridge_home)
    assert [e.uid for e in stored] == [r.uid for r in recs]
    assert [e.call_id for e in stored] == [r.call_id for r in first]
    assert {e.call_id for e in stored} == {c.call_id for c in calls.values()}


def test_an_event_another_writer_recorded_meanwhile_fails_its_group_and_nothing_is_lost(
    bridge_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from microsip_bridge.store import repo

    engine = make_engine(None, bridge_home)
    ingestor = Ingestor(engine, CallTracker(), home=bridge_home)
    ingestor.start()

    def event(name: str, at: float) -> EventRecord:
        return EventRecord.from_spool(wire.make_record(name, "1001", now=T0 + at), source="hook")

    incoming, ring = event("incoming", 0), event("ring", 0.1)
    try:
        [created] = ingestor.ingest([incoming])
        # The lookup misses the incoming (another writer committed it in between): it would be
        # placed a second time, as a call of its own.
        real_lookup = repo.logged_events
        monkeypatch.setattr(repo, "logged_events", lambda conn, uids: {})
        with pytest.raises(NotStoredError, match="another writer"):
            ingestor.ingest([incoming, ring])
        monkeypatch.setattr(repo, "logged_events", real_lookup)
        # The hook spooled both; they come again: the incoming a duplicate, the ring new, in
        # the one call (the tracker was rebuilt from the store, not kept as the failure left it).
        again, rang = ingestor.ingest([incoming, ring])
    finally:
        ingestor.stop()
        engine.dispose()
    assert (again.duplicate, again.call_id) == (True, created.call_id)
    assert (rang.duplicate, rang.call_id) == (False, created.call_id)
    [call] = stored_calls(bridge_home)
    assert (call.call_id, call.rang, call.events) == (
        created.call_id,
        True,
        [incoming.uid, ring.uid],
    )
    assert [e.call_id for e in stored_events(bridge_home)] == [created.call_id] * 2


def test_timeouts_and_spool_rounds_on_demand(bridge_home: Path) -> None:
    now = [T0]
    engine = make_engine(None, bridge_home)
    ingestor = Ingestor(
        engine, CallTracker(reject_timeout=15), home=bridge_home, clock=lambda: now[0]
    )
    ingestor.start()
    try:
        lone = EventRecord.from_spool(wire.make_record("incoming", "666", now=T0), source="hook")
        ingestor.ingest([lone])
        now[0] = T0 + 14
        assert ingestor.expire_now() == []
        now[0] = T0 + 15
        [closed] = ingestor.expire_now()
        assert (closed.number, closed.outcome) == ("666", Outcome.REJECTED)
        wire.spool(wire.make_record("ring", "777", now=T0 + 16), bridge_home)
        report = ingestor.ingest_spool_now()
        assert (report.files, report.events, report.rejected) == (1, 1, 0)
    finally:
        ingestor.stop()
        engine.dispose()
    assert {c.number: c.outcome for c in stored_calls(bridge_home)} == {
        "666": Outcome.REJECTED,
        "777": None,
    }
