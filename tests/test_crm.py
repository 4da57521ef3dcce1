"""The CRM lookup against a real HTTP server on loopback: names, slow, failing and malformed
answers, the cache, the token; and its late names reaching stored calls through the ingestor."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from microsip_bridge.calls.ingest import Ingestor
from microsip_bridge.calls.state import CallTracker
from microsip_bridge.contacts import crm as crm_module
from microsip_bridge.contacts.crm import (
    CrmLookup,
    CrmSettings,
    build_url,
    check_pointer,
    check_template,
    resolve_pointer,
)
from microsip_bridge.contacts.names import CallerNames, NameMatch
from microsip_bridge.errors import BridgeError
from microsip_bridge.model import Event, EventRecord
from microsip_bridge.numbers import Normaliser
from microsip_bridge.store import repo
from microsip_bridge.store.engine import make_engine

GB = Normaliser("GB")


class Crm:
    """A CRM on loopback: ``answers`` maps an E.164 number to (status, body, delay)."""

    def __init__(self) -> None:
        self.answers: dict[str, tuple[int, bytes, float]] = {}
        self.requests: list[tuple[str, dict[str, str]]] = []
        crm = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                query = parse_qs(urlsplit(self.path).query)
                number = query.get("phone", [""])[0]
                crm.requests.append((self.path, dict(self.headers)))
                status, body, delay = crm.answers.get(number, (404, b"{}", 0.0))
                time.sleep(delay)
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:  # the client gave up (timeout)
                    pass

            def log_message(self, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def name(self, e164: str, name: object, *, delay: float = 0.0) -> None:
        body = json.dumps({"results": [{"name": name}]}).encode()
        self.answers[e164] = (200, body, delay)

    def settings(self, **changes: Any) -> CrmSettings:
        values: dict[str, Any] = {
            "url": self.url + "/search?phone={e164}&n={national}",
            "name_pointer": "/results/0/name",
            "timeout": 0.5,
            "cache_ttl": 60.0,
            **changes,
        }
        return CrmSettings(**values)


@pytest.fixture
def crm() -> Iterator[Crm]:
    server = Crm()
    server.thread.start()
    yield server
    server.server.shutdown()
    server.server.server_close()


@pytest.fixture
def lookup(crm: Crm) -> Iterator[CrmLookup]:
    found = CrmLookup(crm.settings())
    found.start()
    yield found
    found.stop()


def test_a_name_from_the_crm(crm: Crm, lookup: CrmLookup) -> None:
    crm.name("+442079460000", "Ada Lovelace")
    assert lookup.lookup(GB("020 7946 0000")) == "Ada Lovelace"
    path, _ = crm.requests[0]
    # Every form URL-encoded: the + is %2B, the spaces %20.
    assert path == "/search?phone=%2B442079460000&n=020%207946%200000"
    assert lookup.lookup(GB("+44 20 7946 0000")) == "Ada Lovelace"
    assert len(crm.requests) == 1  # cached by the number, in any format


@pytest.mark.parametrize(
    ("answer", "logged"),
    [
        ((500, b"oops", 0.0), "HTTP 500"),
        ((200, b"<html>", 0.0), "bad JSON"),
        ((200, b'{"results": [{"name": {"first": "A"}}]}', 0.0), "not a name"),
        ((200, b'{"results": []}', 0.0), None),  # nothing at the pointer: no such caller
        ((200, b'{"results": [{"name": null}]}', 0.0), None),
        ((404, b"{}", 0.0), None),
        ((200, b'{"results": [{"name": "Late"}]}', 2.0), "timeout"),
    ],
)
def test_failures_give_no_name_and_are_logged_once(
    crm: Crm,
    lookup: CrmLookup,
    caplog: pytest.LogCaptureFixture,
    answer: tuple[int, bytes, float],
    logged: str | None,
) -> None:
    caplog.set_level(logging.WARNING, "microsip_bridge.crm")
    numbers = ["+442079460001", "+442079460002", "+442079460003"]
    for number in numbers:
        crm.answers[number] = answer
    started = time.monotonic()
    assert [lookup.lookup(GB(n)) for n in numbers] == ["", "", ""]
    assert time.monotonic() - started < 3 * 0.5 + 1.5  # the timeout holds
    warnings = [r.getMessage() for r in caplog.records]
    if logged is None:
        assert warnings == []
    else:
        assert len(warnings) == 1 and logged in warnings[0], warnings


def test_answers_are_cached_for_their_time(crm: Crm) -> None:
    now = [0.0]
    found = CrmLookup(crm.settings(cache_ttl=100.0), clock=lambda: now[0])
    crm.name("+442079460000", "Ada")
    crm.answers["+442079460009"] = (500, b"", 0.0)
    try:
        ada, nobody, broken = GB("+442079460000"), GB("+442079460008"), GB("+442079460009")
        assert [found.lookup(n) for n in (ada, nobody, broken)] == ["Ada", "", ""]
        assert len(crm.requests) == 3
        now[0] = 9.0  # failures: at most 10 s
        assert [found.lookup(n) for n in (ada, nobody, broken)] == ["Ada", "", ""]
        assert len(crm.requests) == 3
        now[0] = 10.5  # "no such caller": a tenth of the ttl; failures: expired too
        crm.name("+442079460008", "Now known")
        crm.name("+442079460009", "Mended")
        assert [found.lookup(n) for n in (ada, nobody, broken)] == ["Ada", "Now known", "Mended"]
        assert len(crm.requests) == 5
        now[0] = 101.0
        crm.name("+442079460000", "Ada Renamed")
        assert found.lookup(ada) == "Ada Renamed"
    finally:
        found.stop()


def test_the_token_is_sent_but_never_logged(
    crm: Crm, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MSB_TEST_CRM_TOKEN", "s3cret-token")
    found = CrmLookup(crm.settings(token_env="MSB_TEST_CRM_TOKEN"))
    crm.answers["+442079460000"] = (401, b"", 0.0)
    try:
        assert found.lookup(GB("+442079460000")) == ""
    finally:
        found.stop()
    assert crm.requests[0][1]["Authorization"] == "Bearer s3cret-token"
    assert caplog.records and "s3cret" not in caplog.text
    assert "s3cret" not in repr(found)


def test_a_crm_that_is_not_there(caplog: pytest.LogCaptureFixture) -> None:
    found = CrmLookup(CrmSettings(url="http://127.0.0.1:9/?q={e164}", timeout=0.5))
    try:
        assert found.lookup(GB("+442079460000")) == ""
    finally:
        found.stop()
    assert "connection" in caplog.text


def test_request_never_waits_and_asks_once_per_number(crm: Crm, lookup: CrmLookup) -> None:
    crm.name("+442079460000", "Ada", delay=0.3)
    got: list[str] = []
    done = threading.Event()

    def give(name: str) -> None:
        got.append(name)
        if len(got) == 2:
            done.set()

    started = time.monotonic()
    assert lookup.request(GB("+442079460000"), give)
    assert lookup.request(GB("020 7946 0000"), give)  # joins the one in flight
    assert time.monotonic() - started < 0.25  # not the 0.3 s the answer takes
    assert done.wait(5) and got == ["Ada", "Ada"] and len(crm.requests) == 1
    assert not lookup.request(GB("+442079460000"), give)  # cached now
    assert not lookup.request(GB(""), give)  # no number: nothing to ask


@pytest.mark.parametrize(
    ("pointer", "expected"),
    [
        ("", {"a/b": [1, {"~x": "y"}], "": 0}),
        ("/a~1b/1/~0x", "y"),
        ("/a~1b/0", 1),
        ("/", 0),
        ("/a~1b/2", None),
        ("/a~1b/01", None),
        ("/a~1b/-", None),
        ("/missing", None),
        ("/a~1b/0/deeper", None),
    ],
)
def test_json_pointers_as_rfc_6901(pointer: str, expected: object) -> None:
    document = {"a/b": [1, {"~x": "y"}], "": 0}
    value = resolve_pointer(document, pointer)
    if expected is None:
        assert value is crm_module._MISSING
    else:
        assert value == expected


@given(
    st.recursive(
        st.none() | st.text() | st.integers(), lambda c: st.lists(c) | st.dictionaries(st.text(), c)
    ),
    st.text(),
)
def test_pointers_never_raise(document: object, pointer: str) -> None:
    resolve_pointer(document, "/" + pointer)


@pytest.mark.parametrize(
    "url", ["ftp://crm/{e164}", "crm.example/{e164}", "https://crm/{phone}", "https://crm/{0}"]
)
def test_bad_templates_are_one_line_errors(url: str) -> None:
    with pytest.raises(BridgeError) as caught:
        check_template(url)
    assert "crm_url" in str(caught.value) and "\n" not in str(caught.value)
    with pytest.raises(BridgeError):
        check_pointer("results/0")


def test_every_placeholder() -> None:
    url = build_url("https://crm/?a={e164}&b={national}&c={digits}&d={raw}", GB("020 7946 0000"))
    assert url == (
        "https://crm/?a=%2B442079460000&b=020%207946%200000&c=442079460000&d=020%207946%200000"
    )


# --- late names reach the stored call ---------------------------------------------------------


def test_a_late_crm_name_is_stored_with_the_open_call(crm: Crm, tmp_path: Path) -> None:
    crm.name("+442079460000", "Ada from the CRM", delay=0.3)
    engine = make_engine(f"sqlite:///{tmp_path / 'crm.db'}")
    names = CallerNames(GB, crm=CrmLookup(crm.settings()))
    ingestor = Ingestor(engine, CallTracker())
    ingestor.observer = names
    names.on_name = ingestor.set_name
    names.start()
    ingestor.start()
    try:
        ts = time.time()
        first = ingestor.submit(EventRecord("u1", Event.INCOMING, "+442079460000", ts, 1)).result(
            10
        )
        call_id = first.call_id
        assert call_id is not None

        def stored() -> tuple[str, str]:
            with engine.connect() as conn:
                (call,) = repo.list_calls(conn)
            return call.name, call.name_source

        assert stored() == ("", "")  # stored at once: the CRM is not waited for
        deadline = time.monotonic() + 10
        while stored() != ("Ada from the CRM", "crm") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert stored() == ("Ada from the CRM", "crm")
        # Later events keep the name (the tracker has it), and the CRM is not asked again.
        ingestor.submit(EventRecord("u2", Event.RING, "+442079460000", ts + 0.1, 1)).result(10)
        assert stored() == ("Ada from the CRM", "crm") and len(crm.requests) == 1
        assert names.lookup("+442079460000") == NameMatch(
            "Ada from the CRM", "crm", "+442079460000"
        )
    finally:
        ingestor.stop()
        names.stop()
        engine.dispose()


def test_a_late_name_never_replaces_a_name(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'crm.db'}")
    ingestor = Ingestor(engine, CallTracker())
    ingestor.start()
    try:
        ts = time.time()
        result = ingestor.submit(EventRecord("u1", Event.INCOMING, "1001", ts, 1)).result(10)
        assert result.call_id is not None
        ingestor.set_name(result.call_id, "First", "crm")
        ingestor.set_name(result.call_id, "Second", "crm")
        ingestor.set_name("no-such-call", "Nobody", "crm")
        ingestor.sweep_now()  # a job after them on the writer
        ingestor.expire_now()
        with engine.connect() as conn:
            (call,) = repo.list_calls(conn)
        assert (call.name, call.name_source) == ("First", "crm")
    finally:
        ingestor.stop()
        engine.dispose()
    ingestor.set_name("after-stop", "Nobody", "crm")  # stopped: dropped, no error


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"crm_url": "crm.example/?q={e164}"}, "crm_url must start with http"),
        ({"crm_url": "https://crm/?q={number}"}, "unknown placeholder"),
        ({"crm_url": "https://crm/?q={e164}", "crm_name_pointer": "name"}, "crm_name_pointer"),
        ({"crm_timeout": 0.0}, "crm_timeout must be more than 0"),
        ({"crm_cache_ttl": -1.0}, "crm_cache_ttl must not be negative"),
    ],
)
def test_the_daemon_refuses_bad_crm_settings(
    tmp_path: Path, changes: dict[str, object], message: str
) -> None:
    from microsip_bridge.server.settings import DaemonSettings

    with pytest.raises(BridgeError) as caught:
        DaemonSettings(home=tmp_path, **changes)  # type: ignore[arg-type]
    assert message in str(caught.value) and "\n" not in str(caught.value)
