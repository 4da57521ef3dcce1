"""The event WebSocket: replay from a cursor then live, exactly once across reconnects and a
SIGKILLed daemon, the message shape shared with the CLI, refusals, slow clients, the stop."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from microsip_bridge.calls.ingest import Ingestor
from microsip_bridge.model import Event, EventRecord
from tests.cli_support import run
from tests.daemon_support import (
    kill,
    live_daemon,
    run_hook,
    spool_lines,
    start_daemon_process,
    stop,
    stored_events,
    wait_until,
)
from tests.test_daemon import database  # noqa: F401 - fixture: SQLite, and PostgreSQL when set

WS_PATH = "/api/v1/events/ws"
T0 = 1_764_000_000.0


def token_of(home: Path) -> str:
    return (home / "token").read_text("ascii").strip()


def address_of(home: Path) -> tuple[str, int]:
    info = json.loads((home / "daemon.json").read_text("utf-8"))
    return info["host"], info["port"]


def open_ws(
    home: Path,
    after: int | str | None = None,
    *,
    token: str | None = "",
    origin: str | None = None,
    sock: socket.socket | None = None,
    **kw: object,
) -> ClientConnection:
    host, port = address_of(home)
    url = f"ws://{host}:{port}{WS_PATH}" + ("" if after is None else f"?after={after}")
    headers: dict[str, str] = {}
    given = token_of(home) if token == "" else token
    if given is not None:
        headers["Authorization"] = f"Bearer {given}"
    if origin is not None:
        headers["Origin"] = origin
    return connect(
        url,
        additional_headers=headers,
        open_timeout=10,
        sock=sock,
        compression=None,
        **kw,  # type: ignore[arg-type]
    )


def receive(ws: ClientConnection, timeout: float = 10.0) -> dict:
    return json.loads(ws.recv(timeout))


def receive_n(ws: ClientConnection, count: int, timeout: float = 30.0) -> list[dict]:
    give_up = time.monotonic() + timeout
    out = []
    while len(out) < count:
        out.append(receive(ws, max(0.1, give_up - time.monotonic())))
    return out


def record(number: str, event: str = "ring", ts: float | None = None) -> dict:
    return {
        "v": 1,
        "id": uuid.uuid4().hex,
        "event": event,
        "number": number,
        "ts": T0 + time.monotonic() % 1000 if ts is None else ts,
        "pid": 4242,
    }


class Poster:
    """Sends hook records as the hook does (POST /api/v1/hook-events), on one connection."""

    def __init__(self, home: Path) -> None:
        self.host, self.port = address_of(home)
        self.token = token_of(home)
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=30)

    def send(self, rec: dict) -> dict:
        self.conn.request(
            "POST",
            "/api/v1/hook-events",
            body=json.dumps(rec),
            headers={
                "Authorization": f"Bearer {self.token}",
                "Content-Type": "application/json",
                "Host": f"{self.host}:{self.port}",
            },
        )
        response = self.conn.getresponse()
        body = json.loads(response.read())
        assert response.status == 202, body
        return body

    def close(self) -> None:
        self.conn.close()


@contextmanager
def poster(home: Path) -> Iterator[Poster]:
    p = Poster(home)
    try:
        yield p
    finally:
        p.close()


def read_until_closed(ws: ClientConnection, got: list[dict]) -> ConnectionClosed:
    """Append every message to ``got`` until the connection closes; how it closed."""
    while True:
        try:
            got.append(receive(ws))
        except ConnectionClosed as closed:
            return closed


def cursors(messages: list[dict]) -> list[int]:
    return [m["cursor"] for m in messages]


# -- the message -------------------------------------------------------------------------------


def test_a_message_is_the_cli_event_json_plus_the_call(
    bridge_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with live_daemon(bridge_home), poster(bridge_home) as post:
        with open_ws(bridge_home) as ws:  # live only
            first = post.send(record("5551234", "incoming", T0))
            post.send(record("5551234", "ring", T0 + 0.5))
            live = receive_n(ws, 2)
        with open_ws(bridge_home, after=0) as ws:
            replayed = receive_n(ws, 2)
    assert cursors(live) == cursors(replayed) and live[0]["cursor"] == first["cursor"]
    code, out, _ = run(capsys, "events", "--format", "json")
    assert code == 0
    lines = out.splitlines()
    for message, line in zip(replayed, lines, strict=True):
        event = {k: v for k, v in message.items() if k != "call"}
        # The same object, key for key and in the same order, as the CLI prints.
        assert json.dumps(event, ensure_ascii=False) == line
    code, out, _ = run(capsys, "calls", "--format", "json")
    (call,) = json.loads(out)
    assert replayed[1]["call"] == call
    assert list(replayed[1]["call"]) == list(call)
    # Live: the call as each commit left it (ringing after the ring, rang only then).
    assert live[0]["call"]["call_id"] == call["call_id"] == live[0]["call_id"]
    assert live[0]["call"]["rang"] is False and live[1]["call"]["rang"] is True
    assert live[1]["call"] == call
    assert [{k: v for k, v in m.items() if k != "call"} for m in live] == [
        {k: v for k, v in m.items() if k != "call"} for m in replayed
    ]


def test_without_after_only_live_events(bridge_home: Path) -> None:
    with live_daemon(bridge_home), poster(bridge_home) as post:
        post.send(record("111"))
        with open_ws(bridge_home) as ws:
            fresh = post.send(record("222"))
            (message,) = receive_n(ws, 1)
            assert message["number"] == "222" and message["cursor"] == fresh["cursor"]
            with pytest.raises(TimeoutError):
                ws.recv(0.3)


# -- exactly once ------------------------------------------------------------------------------


def test_reconnect_during_a_burst_of_1000_misses_nothing_and_repeats_nothing(
    bridge_home: Path,
) -> None:
    sent: list[int] = []
    with live_daemon(bridge_home):
        done = threading.Event()

        def burst() -> None:
            with poster(bridge_home) as post:
                for n in range(1000):
                    sent.append(post.send(record(f"b{n:04d}", ts=T0 + n * 60))["cursor"])
            done.set()

        got: list[dict] = []
        with open_ws(bridge_home, after=0) as ws:
            thread = threading.Thread(target=burst)
            thread.start()
            got += receive_n(ws, 150)
        # Disconnected mid-burst; back with the last cursor, twice.
        wait_until(lambda: len(sent) > 400, what="the burst to go on")
        with open_ws(bridge_home, after=got[-1]["cursor"]) as ws:
            got += receive_n(ws, 200)
        thread.join(120)
        assert done.is_set()
        with open_ws(bridge_home, after=got[-1]["cursor"]) as ws:
            got += receive_n(ws, 1000 - len(got))
            with pytest.raises(TimeoutError):
                ws.recv(0.3)
    assert cursors(got) == sorted(sent)
    assert [m["number"] for m in got] == [f"b{n:04d}" for n in range(1000)]


def test_events_committed_around_the_replay_come_exactly_once(
    bridge_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from microsip_bridge.server import ws as ws_module

    real = ws_module._read_page
    reads: list[int] = []

    def read_in_the_middle_of_traffic(engine: object, after: int) -> list:
        reads.append(after)
        if len(reads) > 1:
            return real(engine, after)
        with poster(bridge_home) as other:
            other.send(record("2"))  # after the client subscribed, before the store is read
            page = real(engine, after)
            other.send(record("3"))  # after the read, before the live messages are sent
        return page

    monkeypatch.setattr(ws_module, "_read_page", read_in_the_middle_of_traffic)
    with live_daemon(bridge_home), poster(bridge_home) as post:
        post.send(record("1"))
        with open_ws(bridge_home, after=0) as ws:
            got = receive_n(ws, 3)
            post.send(record("4"))
            got += receive_n(ws, 1)
            with pytest.raises(TimeoutError):
                ws.recv(0.5)
    assert [m["number"] for m in got] == ["1", "2", "3", "4"]
    assert cursors(got) == sorted(set(cursors(got)))


@pytest.mark.slow
def test_exactly_once_across_a_sigkilled_daemon_and_spooled_hooks(bridge_home: Path) -> None:
    proc = start_daemon_process(bridge_home)
    numbers: list[str] = []
    got: list[dict] = []
    try:
        with poster(bridge_home) as post, open_ws(bridge_home, after=0) as ws:
            for n in range(600):
                numbers.append(f"k{n:04d}")
                post.send(record(numbers[-1], ts=T0 + n * 60))
                if n == 299:
                    got += receive_n(ws, 300)
            # Killed in the middle of the burst, with events the client has not read.
            kill(proc)
            read_until_closed(ws, got)
        # While the daemon is down, the hooks spool.
        for n in range(600, 650):
            numbers.append(f"k{n:04d}")
            assert run_hook(bridge_home, "ring", numbers[-1]).returncode == 0
        assert len(spool_lines(bridge_home)) == 50
        proc = start_daemon_process(bridge_home)
        wait_until(lambda: len(stored_events(bridge_home)) == 650, what="the spool")
        with poster(bridge_home) as post, open_ws(bridge_home, after=got[-1]["cursor"]) as ws:
            for n in range(650, 1000):
                numbers.append(f"k{n:04d}")
                post.send(record(numbers[-1], ts=T0 + n * 60))
            got += receive_n(ws, 1000 - len(got), timeout=60)
            with pytest.raises(TimeoutError):
                ws.recv(0.3)
    finally:
        stop(proc)
    assert cursors(got) == sorted(set(cursors(got)))
    assert sorted(m["number"] for m in got) == numbers
    assert [m["number"] for m in got[:600]] == numbers[:600]
    assert {m["source"] for m in got[600:650]} == {"spool"}
    assert cursors(got) == [e.cursor for e in stored_events(bridge_home)]


# -- refusals ----------------------------------------------------------------------------------


@pytest.mark.parametrize("token", [None, "x" * 43])
def test_no_token_or_a_wrong_one_is_refused_at_the_handshake(
    bridge_home: Path, token: str | None
) -> None:
    with live_daemon(bridge_home), poster(bridge_home) as post:
        post.send(record("5550000"))
        with pytest.raises(InvalidStatus) as refused:
            open_ws(bridge_home, after=0, token=token)
    assert refused.value.response.status_code == 401
    assert b"token" in refused.value.response.body


def test_a_foreign_origin_is_refused_at_the_handshake(bridge_home: Path) -> None:
    with live_daemon(bridge_home), poster(bridge_home) as post:
        post.send(record("5550000"))
        with pytest.raises(InvalidStatus) as refused:
            open_ws(bridge_home, after=0, origin="https://evil.example")
        assert refused.value.response.status_code == 403
        host, port = address_of(bridge_home)
        with open_ws(bridge_home, after=0, origin=f"http://{host}:{port}") as ws:
            assert receive(ws)["number"] == "5550000"


@pytest.mark.parametrize(
    ("after", "code", "words"),
    [
        ("-1", 4400, "after must be a cursor"),
        ("abc", 4400, "after must be a cursor"),
        (str(2**63), 4400, "after must be a cursor"),
        ("1000", 4409, "past the end of this event log (1); reconnect with after=0"),
    ],
)
def test_a_bad_cursor_is_closed_with_a_reason(
    bridge_home: Path, after: str, code: int, words: str
) -> None:
    with live_daemon(bridge_home), poster(bridge_home) as post:
        post.send(record("5550000"))
        with open_ws(bridge_home, after=after) as ws, pytest.raises(ConnectionClosed) as closed:
            ws.recv(10)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == code and words in closed.value.rcvd.reason


def test_the_daemon_stopping_tells_each_client_its_cursor(bridge_home: Path) -> None:
    with (
        live_daemon(bridge_home) as daemon,
        poster(bridge_home) as post,
        open_ws(bridge_home, after=0) as ws,
    ):
        last = post.send(record("5551"))["cursor"]
        receive(ws)
        daemon.stop()
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(10)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1001
    assert closed.value.rcvd.reason == f"the daemon is stopping; reconnect with after={last}"


# -- limits: slow clients, the cap -------------------------------------------------------------


@contextmanager
def small_feed_daemon(
    home: Path, *, queue_size: int, max_subscribers: int
) -> Iterator[tuple[Ingestor, Any]]:
    """The daemon's app and protocols under uvicorn in a thread, with a feed of small limits;
    yields its ingestor (events go in without HTTP, as fast as the writer takes them) and the
    uvicorn server."""
    import uvicorn

    from microsip_bridge.calls.feed import EventHub
    from microsip_bridge.calls.state import CallTracker
    from microsip_bridge.server.app import create_app
    from microsip_bridge.server.guard import GuardedH11Protocol, GuardedWebSocketProtocol
    from microsip_bridge.server.runner import bind_socket, write_daemon_file
    from microsip_bridge.store.engine import make_engine
    from tests.daemon_support import settings_for

    settings = settings_for(home)
    engine = make_engine(None, home)
    ingestor = Ingestor(
        engine,
        CallTracker(),
        home=home,
        feed=EventHub(queue_size=queue_size, max_subscribers=max_subscribers),
    )
    app = create_app(settings, engine, ingestor=ingestor)
    sock = bind_socket("127.0.0.1", 0)
    config = uvicorn.Config(
        app,
        log_config=None,
        log_level="warning",
        lifespan="on",
        http=GuardedH11Protocol,
        ws=GuardedWebSocketProtocol,
        ws_per_message_deflate=False,
        ws_ping_interval=None,  # a client that reads nothing for a while must not time out
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    wait_until(lambda: server.started, what="uvicorn")
    write_daemon_file(home, "127.0.0.1", sock.getsockname()[1])
    try:
        yield ingestor, server
    finally:
        server.should_exit = True
        thread.join(60)
        sock.close()
        engine.dispose()


def event_record(n: int, number: str) -> EventRecord:
    return EventRecord(uuid.uuid4().hex, Event.RING, number, T0 + n * 60, 4242, "hook")


def test_a_client_that_falls_behind_is_closed_with_its_cursor_and_catches_up(
    bridge_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The client reads nothing until the whole burst is stored: it must still find the close
    # frame behind the backlog then, not a connection already cut.
    monkeypatch.setattr("microsip_bridge.server.guard.CLOSE_GRACE", 120.0)
    count = 4000
    long = "5" * 1000  # big messages fill the socket buffers sooner
    # Room for two group commits (100 events each) waiting, no more.
    with small_feed_daemon(bridge_home, queue_size=200, max_subscribers=10) as (ingestor, _):
        slow = socket.create_connection(address_of(bridge_home))
        slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        got: list[dict] = []
        with open_ws(bridge_home, after=0, sock=slow, max_queue=1, ping_interval=None) as ws:
            ingestor.ingest([event_record(n, f"{long}{n:05d}") for n in range(count)])
            slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)  # now read quickly
            closed = read_until_closed(ws, got)
        rcvd = closed.rcvd
        assert rcvd is not None and rcvd.code == 4000
        last = got[-1]["cursor"] if got else 0
        assert rcvd.reason == f"fell behind; reconnect with after={last}"
        assert len(got) < count
        with open_ws(bridge_home, after=last) as ws:
            got += receive_n(ws, count - len(got))
    assert [m["number"][-5:] for m in got] == [f"{n:05d}" for n in range(count)]


def test_past_the_subscriber_cap_a_client_is_told_to_come_back(bridge_home: Path) -> None:
    with (
        small_feed_daemon(bridge_home, queue_size=8, max_subscribers=2),
        open_ws(bridge_home),
        open_ws(bridge_home),
        open_ws(bridge_home) as third,
        pytest.raises(ConnectionClosed) as closed,
    ):
        third.recv(10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1013
    assert "at most 2 clients" in closed.value.rcvd.reason


def test_the_readme_documents_every_close_code() -> None:
    from microsip_bridge.server import ws

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text("utf-8")
    section = readme.split("#### The event WebSocket", 1)[1].split("\n### ", 1)[0]
    codes = [v for k, v in vars(ws).items() if k.startswith("CLOSE_") and isinstance(v, int)]
    assert len(codes) == 6
    for code in codes:
        assert f"`{code}`" in section, code


def test_websockets_do_not_count_against_the_cap_on_http_connections(
    bridge_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from microsip_bridge.server import guard, runner

    monkeypatch.setattr(guard, "MAX_CONNECTIONS", 4)
    monkeypatch.setattr(runner, "raise_fd_limit", lambda: 4)
    with live_daemon(bridge_home), ExitStack() as stack:
        clients = [stack.enter_context(open_ws(bridge_home)) for _ in range(6)]
        with poster(bridge_home) as post:  # a hook still gets in
            sent = post.send(record("5557777"))
        for ws in clients:
            assert receive(ws)["cursor"] == sent["cursor"]


def test_a_client_that_never_reads_is_cut_once_closed(
    bridge_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from microsip_bridge.server import guard

    monkeypatch.setattr(guard, "CLOSE_GRACE", 0.5)
    with small_feed_daemon(bridge_home, queue_size=200, max_subscribers=10) as (ingestor, server):
        stuck = socket.create_connection(address_of(bridge_home))
        stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        with open_ws(bridge_home, sock=stuck, max_queue=1, ping_interval=None):
            ingestor.ingest([event_record(n, "5" * 1000) for n in range(3000)])
            assert ingestor.feed is not None
            wait_until(lambda: not ingestor.feed.active, what="the client to fall behind")
            # Its close frame sits behind data it never reads: the daemon cuts the connection
            # rather than hold it (and its buffer) for as long as the client lives.
            connections = server.server_state.connections
            wait_until(lambda: not connections, timeout=8, what="the connection to be cut")


def test_a_store_failure_during_the_replay_is_closed_with_the_cursor(
    bridge_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from microsip_bridge.server import ws as ws_module

    def broken(engine: object, after: int) -> list:
        raise OSError("database is locked")

    with live_daemon(bridge_home), poster(bridge_home) as post:
        post.send(record("5550000"))
        monkeypatch.setattr(ws_module, "_read_page", broken)
        with open_ws(bridge_home, after=7) as ws, pytest.raises(ConnectionClosed) as closed:
            ws.recv(10)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1011
    assert closed.value.rcvd.reason == "the store failed; reconnect with after=7"


def test_a_restart_keeps_the_cursors_on_either_database(
    bridge_home: Path,
    database: str,  # noqa: F811
) -> None:
    got: list[dict] = []
    with live_daemon(bridge_home, database=database), poster(bridge_home) as post:
        with open_ws(bridge_home, after=0) as ws:
            for n in range(5):
                post.send(record(f"r{n}", ts=T0 + n * 60))
            got += receive_n(ws, 5)
        post.send(record("r5", ts=T0 + 300))  # after the client left
    with (
        live_daemon(bridge_home, database=database),
        poster(bridge_home) as post,
        open_ws(bridge_home, after=got[-1]["cursor"]) as ws,
    ):
        for n in range(6, 9):
            post.send(record(f"r{n}", ts=T0 + n * 60))
        got += receive_n(ws, 4)
        with pytest.raises(TimeoutError):
            ws.recv(0.3)
    assert [m["number"] for m in got] == [f"r{n}" for n in range(9)]
    assert cursors(got) == sorted(set(cursors(got)))
    assert all(m["call"] is not None and m["call"]["number"] == m["number"] for m in got)


@given(st.text(max_size=30) | st.integers(min_value=-5, max_value=2**64).map(str))
def test_after_is_a_cursor_or_refused(text: str) -> None:
    from microsip_bridge.server.ws import MAX_CURSOR, parse_after

    if text.isascii() and text.isdigit() and int(text) <= MAX_CURSOR:
        assert parse_after(text) == int(text)
    else:
        with pytest.raises(ValueError, match="after must be a cursor"):
            parse_after(text)
    assert parse_after(None) is None
