"""The read API over the call log, against a real daemon on loopback and a real SQLite store:
GET /calls (filters, keyset pages), /calls.csv, /calls/{call_id}, /events; each object the one
the CLI prints."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import math
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from microsip_bridge.model import Call, CallState, Direction, Event, EventRecord, Outcome
from microsip_bridge.numbers import number_matches
from microsip_bridge.server import api_calls
from microsip_bridge.server.params import page_token, parse_time, read_page_token
from microsip_bridge.store import repo
from microsip_bridge.store.engine import make_engine, upgrade
from microsip_bridge.store.query import number_condition
from microsip_bridge.store.reader import CALL_FIELDS, EVENT_FIELDS
from microsip_bridge.store.schema import calls as calls_table
from tests.cli_support import run
from tests.daemon_support import live_daemon

T0 = 1_764_000_000.0  # 2025-11-24 16:00:00 UTC
COUNT = 60
# Calls 0-59; every 10th pair shares its start time, so that pages break ties on the call id.
NUMBERS = {7: "sip:+1-555-0007@pbx.example", 8: "(555) 0008", 9: "=cmd|' /C calc'!A0"}


def started(n: int) -> float:
    return T0 + (n - n % 2 if n % 10 < 2 else n) * 60


def a_call(n: int, **changes: object) -> Call:
    values: dict[str, object] = {
        "call_id": f"c{int(started(n) * 1000):012x}{n:012x}",
        "direction": Direction.OUTGOING if n % 3 == 0 else Direction.INCOMING,
        "number": NUMBERS.get(n, f"+1 555 {n:04d}"),
        "state": CallState.ENDED,
        "started_at": started(n),
        "outcome": Outcome.MISSED if n % 4 == 1 else Outcome.ANSWERED,
        "name": "Zoë Écrivain" if n == 11 else f"Caller {n}",
        "answered_at": started(n) + 2,
        "ended_at": started(n) + 32,
        "duration": 30.0,
        "rang": True,
        "events": [f"e{n}a", f"e{n}b"],
        "updated_at": started(n) + 32,
        **changes,
    }
    return Call(**values)  # type: ignore[arg-type]


def fill(home: Path, calls: list[Call]) -> None:
    """The calls in the store, with their events in the log (each linked to its call)."""
    engine = make_engine(None, home)
    try:
        upgrade(engine)
        with engine.begin() as conn:
            for call in calls:
                for i, uid in enumerate(call.events):
                    event = Event.INCOMING if i == 0 else Event.END
                    rec = EventRecord(uid, event, call.number, call.started_at + i, 4242)
                    repo.record_event(conn, rec, received_at=call.started_at + i + 0.01)
            repo.save_calls(conn, calls)
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def log_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("api-calls-home")
    fill(home, [a_call(n) for n in range(COUNT)])
    return home


@pytest.fixture(scope="module")
def daemon_url(log_home: Path) -> Iterator[str]:
    with live_daemon(log_home) as daemon:
        host, port = daemon.wait_listening()
        yield f"http://{host}:{port}"


@pytest.fixture
def api(
    daemon_url: str, log_home: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[httpx2.Client]:
    # The CLI in these tests reads the same store as the daemon.
    monkeypatch.setenv("MICROSIP_BRIDGE_HOME", str(log_home))
    token = (log_home / "token").read_text().strip()
    with httpx2.Client(
        base_url=daemon_url, headers={"Authorization": f"Bearer {token}"}, timeout=30
    ) as client:
        yield client


def get_calls(api: httpx2.Client, **params: object) -> list[dict[str, object]]:
    """Every page of /calls with ``params``, following ``next``."""
    found: list[dict[str, object]] = []
    cursor = None
    while True:
        query = dict(params, **({"cursor": cursor} if cursor else {}))
        response = api.get("/api/v1/calls", params=query)
        assert response.status_code == 200, response.text
        body = response.json()
        found.extend(body["calls"])
        cursor = body["next"]
        if cursor is None:
            return found


def newest_first(calls: list[Call]) -> list[str]:
    return [c.call_id for c in sorted(calls, key=lambda c: (c.started_at, c.call_id), reverse=True)]


EVERY = [a_call(n) for n in range(COUNT)]


# --- the token ---------------------------------------------------------------------------------

READ_ROUTES = [
    "/api/v1/calls",
    "/api/v1/calls.csv",
    f"/api/v1/calls/{EVERY[0].call_id}",
    "/api/v1/events",
    "/api/v1/status",
    "/api/v1/history",
    "/api/v1/contacts",
    "/api/v1/lookup?number=1001",
]


@pytest.mark.parametrize("route", READ_ROUTES)
@pytest.mark.parametrize("authorization", [None, "Bearer wrong-token", "Basic abc"])
def test_every_read_route_needs_the_token(
    daemon_url: str, route: str, authorization: str | None
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    response = httpx2.get(daemon_url + route, headers=headers, timeout=30)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert "calls" not in response.json() and "Caller" not in response.text


# --- /calls ------------------------------------------------------------------------------------


def test_calls_are_the_newest_50_newest_first_with_a_next(api: httpx2.Client) -> None:
    body = api.get("/api/v1/calls").json()
    assert [c["call_id"] for c in body["calls"]] == newest_first(EVERY)[:50]
    assert isinstance(body["next"], str)
    rest = api.get("/api/v1/calls", params={"cursor": body["next"]}).json()
    assert [c["call_id"] for c in rest["calls"]] == newest_first(EVERY)[50:]
    assert rest["next"] is None


@pytest.mark.parametrize("limit", [1, 3, 7, 10, 59, 60, 1000])
def test_pages_have_no_gap_and_no_repeat_across_ties(api: httpx2.Client, limit: int) -> None:
    ids = [c["call_id"] for c in get_calls(api, limit=limit)]
    assert ids == newest_first(EVERY)  # every call once, in order, across equal start times
    # A page never ends with an empty last page when the calls fill it exactly.
    pages = -(-COUNT // limit)
    assert len(ids) == COUNT and pages >= 1


def test_a_call_recorded_between_pages_shifts_nothing(api: httpx2.Client, log_home: Path) -> None:
    first = api.get("/api/v1/calls", params={"limit": 20}).json()
    newcomer = a_call(500, call_id="c" + "f" * 24, started_at=T0 + 10**6)
    middle = a_call(
        501, call_id=f"c{int(started(30) * 1000):012x}{'0' * 12}", started_at=started(30)
    )
    fill(log_home, [newcomer, middle])
    try:
        seen = [c["call_id"] for c in first["calls"]]
        cursor = first["next"]
        while cursor:
            page = api.get("/api/v1/calls", params={"limit": 20, "cursor": cursor}).json()
            seen.extend(c["call_id"] for c in page["calls"])
            cursor = page["next"]
        expected = newest_first([*EVERY, middle])  # older than the first page: it is found
        assert seen == [i for i in expected if i != newcomer.call_id]
        assert len(seen) == len(set(seen))
    finally:
        engine = make_engine(None, log_home)
        with engine.begin() as conn:
            conn.execute(
                calls_table.delete().where(
                    calls_table.c.call_id.in_([newcomer.call_id, middle.call_id])
                )
            )
        engine.dispose()


def test_the_models_are_the_objects_in_the_same_order(api: httpx2.Client) -> None:
    from microsip_bridge.server.schemas import CallDetail, CallOut, CallPage, EventOut

    assert tuple(CallOut.model_fields) == CALL_FIELDS == tuple(CallDetail.model_fields)
    assert tuple(EventOut.model_fields) == EVENT_FIELDS
    body = api.get("/api/v1/calls", params={"limit": 1000}).json()
    assert CallPage.model_validate(body).model_dump(mode="json") == body


def test_each_call_is_the_object_calls_format_json_prints(
    api: httpx2.Client, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "calls", "--all", "--format", "json")
    assert code == 0
    printed = list(reversed(json.loads(out)))
    served = get_calls(api, limit=1000)
    assert served == printed
    assert all(tuple(call) == CALL_FIELDS for call in served)  # the same keys, in order
    assert served[0]["events"] == EVERY[-1].events


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"direction": "outgoing"}, [c for c in EVERY if c.direction is Direction.OUTGOING]),
        ({"outcome": "missed"}, [c for c in EVERY if c.outcome is Outcome.MISSED]),
        (
            {"direction": "incoming", "outcome": "missed"},
            [c for c in EVERY if c.outcome is Outcome.MISSED and c.direction is Direction.INCOMING],
        ),
        ({"number": "555-0007"}, [EVERY[7]]),
        ({"number": "+1 (555) 0007"}, [EVERY[7]]),
        ({"number": "tel:15550007"}, [EVERY[7]]),
        ({"number": "555.0008"}, [EVERY[8]]),
        ({"number": "0555 0008"}, []),  # digits together, not scattered
        ({"number": "5550"}, [c for c in EVERY if number_matches(c.number, "5550")]),
        ({"since": str(started(50))}, [c for c in EVERY if c.started_at >= started(50)]),
        ({"since": "2025-11-24T16:50:00Z"}, [c for c in EVERY if c.started_at >= T0 + 3000]),
        ({"since": "2025-11-24T17:50:00+01:00"}, [c for c in EVERY if c.started_at >= T0 + 3000]),
        ({"until": "2025-11-24T16:03:00"}, [c for c in EVERY if c.started_at < T0 + 180]),
        (
            {"since": "1764000600", "until": "1764001200.5"},
            [c for c in EVERY if T0 + 600 <= c.started_at < T0 + 1200.5],
        ),
        ({"since": "2025-11-25"}, []),
        ({"q": "caller 1"}, [c for c in EVERY if c.name.startswith("Caller 1")]),
        ({"q": "Zoë"}, [EVERY[11]]),
        ({"q": "pbx.EXAMPLE"}, [EVERY[7]]),
        ({"q": "555-0042"}, [EVERY[42]]),
        ({"q": "nobody"}, []),
        ({"q": "", "number": "", "since": "", "until": ""}, EVERY),  # empty fields of a form
        (
            {"q": "caller", "outcome": "missed", "until": str(started(20))},
            [c for c in EVERY if c.outcome is Outcome.MISSED and c.started_at < started(20)],
        ),
    ],
)
def test_filters(api: httpx2.Client, params: dict[str, str], expected: list[Call]) -> None:
    assert [c["call_id"] for c in get_calls(api, limit=7, **params)] == newest_first(expected)


@pytest.mark.parametrize(
    ("params", "detail"),
    [
        ({"limit": "0"}, "limit: "),
        ({"limit": "1001"}, "limit: "),
        ({"limit": "ten"}, "limit: "),
        ({"direction": "sideways"}, "direction: "),
        ({"outcome": "won"}, "outcome: "),
        ({"since": "yesterday"}, "since: 'yesterday' is not Unix seconds or an ISO 8601"),
        ({"until": "1e999"}, "until: '1e999' is out of range"),
        ({"since": "2025-13-01"}, "since: '2025-13-01' is not Unix seconds"),
        ({"cursor": "not-a-page"}, "cursor: not a value this API gave as next"),
        ({"cursor": page_token(T0, "c1")[:-2] + "!!"}, "cursor: not a value this API gave"),
        ({"number": "alice"}, "number: give some digits of the number"),
        ({"number": "555\x001234"}, "number: give some digits of the number (and no control"),
        ({"q": "a\nb"}, "q: must not hold control characters"),
        ({"q": "x" * 201}, "q: "),
    ],
)
def test_bad_parameters_are_one_line_422s(
    api: httpx2.Client, params: dict[str, str], detail: str
) -> None:
    for route in ("/api/v1/calls", "/api/v1/calls.csv"):
        if route.endswith(".csv") and set(params) & {"limit", "cursor"}:
            continue
        response = api.get(route, params=params)
        assert response.status_code == 422, (route, response.text)
        text = response.json()["detail"]
        assert isinstance(text, str) and "\n" not in text
        assert text.startswith(detail)


def test_times_parse_as_epoch_or_iso_8601() -> None:
    assert parse_time("1764000000", "since") == T0
    assert parse_time(" 1764000000.25 ", "since") == T0 + 0.25
    assert parse_time("2025-11-24T16:00:00Z", "since") == T0
    assert parse_time("2025-11-24T16:00:00", "since") == T0  # naive is UTC
    assert parse_time("2025-11-24", "since") == T0 - 16 * 3600
    assert parse_time("2025-11-24T17:00+01:00", "since") == T0


@given(st.text(max_size=40))
def test_any_time_text_is_seconds_or_a_one_line_refusal(text: str) -> None:
    from microsip_bridge.server.params import BadParameter

    try:
        seconds = parse_time(text, "since")
    except BadParameter as exc:
        refusal = str(exc)
    else:
        assert math.isfinite(seconds)
        return
    # One line, but for what the caller sent (quoted back with repr: escaped).
    assert refusal.startswith("since: ") and "\n" not in refusal


@given(st.datetimes(timezones=st.timezones()))
def test_iso_times_are_read_back_to_the_microsecond(when: dt.datetime) -> None:
    assert parse_time(when.isoformat(), "until") == when.timestamp()


@given(
    st.floats(allow_nan=False, allow_infinity=False),
    st.from_regex(r"[0-9a-z_-]{1,40}", fullmatch=True),
)
def test_page_tokens_round_trip_exactly(started_at: float, call_id: str) -> None:
    assert read_page_token(page_token(started_at, call_id)) == (started_at, call_id)


@given(st.text(max_size=40))
def test_page_tokens_refuse_anything_else(token: str) -> None:
    from microsip_bridge.server.params import BadParameter

    try:
        started_at, call_id = read_page_token(token)
    except BadParameter:
        return
    assert page_token(started_at, call_id)  # only what decodes to a position gets through


# --- the number rule, in Python and in SQL ------------------------------------------------------

NUMBERISH = st.text(alphabet="0123456789 -./()+@:sipABC", max_size=16)


@given(st.lists(NUMBERISH, min_size=1, max_size=8), NUMBERISH)
def test_the_sql_number_filter_is_number_matches(stored: list[str], wanted: str) -> None:
    engine = make_engine("sqlite://")
    try:
        calls_table.metadata.create_all(engine)
        with engine.begin() as conn:
            conn.execute(
                calls_table.insert(),
                [
                    {
                        **{c.name: None for c in calls_table.columns},
                        "call_id": f"c{i}",
                        "direction": "incoming",
                        "number": number,
                        "state": "ended",
                        "name": "",
                        "started_at": 0.0,
                        "rang": False,
                        "auto_answered": False,
                        "video": False,
                        "source": "hooks",
                        "event_uids": [],
                        "updated_at": 0.0,
                        "open": False,
                        "name_source": "",
                        "number_key": "",
                    }
                    for i, number in enumerate(stored)
                ],
            )
            query = select(calls_table.c.call_id).where(
                number_condition(calls_table.c.number, wanted)
            )
            found = {row[0] for row in conn.execute(query)}
    finally:
        engine.dispose()
    assert found == {f"c{i}" for i, n in enumerate(stored) if number_matches(n, wanted)}


def test_number_matches_on_digits() -> None:
    assert number_matches("sip:+1-555-0007@pbx", "(555) 0007")
    assert number_matches("+1 555 0007", "1.555.0007")
    assert not number_matches("+1 555 0007", "555 0008")
    assert not number_matches("+1 555 0007", "alice")  # no digits: nothing


# --- /calls/{call_id} --------------------------------------------------------------------------


def test_one_call_with_its_events_in_full(
    api: httpx2.Client, capsys: pytest.CaptureFixture[str]
) -> None:
    call = EVERY[7]
    response = api.get(f"/api/v1/calls/{call.call_id}")
    assert response.status_code == 200
    body = response.json()
    code, out, _ = run(capsys, "events", "--format", "json", "--limit", "1000")
    assert code == 0
    printed = [json.loads(line) for line in out.splitlines()]
    assert body["events"] == [e for e in printed if e["call_id"] == call.call_id]
    assert [e["uid"] for e in body["events"]] == call.events
    assert all(tuple(e) == EVENT_FIELDS for e in body["events"])
    listed = next(c for c in get_calls(api, limit=1000) if c["call_id"] == call.call_id)
    assert {k: v for k, v in body.items() if k != "events"} == {
        k: v for k, v in listed.items() if k != "events"
    }


@pytest.mark.parametrize("call_id", ["c0000000000000000000000ff", "nope", "C" + "0" * 24, "x" * 41])
def test_an_unknown_call_is_404(api: httpx2.Client, call_id: str) -> None:
    response = api.get(f"/api/v1/calls/{call_id}")
    assert response.status_code == 404
    assert response.json()["detail"].startswith("no call ")


def test_a_call_id_with_odd_characters_is_404_not_500(api: httpx2.Client) -> None:
    for call_id in ("%00", "%E2%80%AE", "a%20b", "..%2F.."):
        assert api.get(f"/api/v1/calls/{call_id}").status_code == 404


# --- /calls.csv --------------------------------------------------------------------------------


def test_csv_is_every_call_as_calls_format_csv_writes_it(
    api: httpx2.Client, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(api_calls, "CSV_PAGE", 7)  # several pages, the last one short
    response = api.get("/api/v1/calls.csv")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    code, out, _ = run(capsys, "calls", "--all", "--format", "csv")
    assert code == 0
    header, *printed = out.split("\r\n")[:-1]
    served_header, *served = response.text.split("\r\n")[:-1]
    assert served_header == header
    assert served == list(reversed(printed))  # newest first, every page
    rows = list(csv.DictReader(io.StringIO(response.text, newline="")))
    assert len(rows) == COUNT
    assert next(r for r in rows if r["call_id"] == EVERY[9].call_id)["number"].startswith("'=")


def test_csv_takes_the_filters_and_raw(api: httpx2.Client) -> None:
    response = api.get("/api/v1/calls.csv", params={"q": "C calc", "raw": "true"})
    assert response.status_code == 200
    [row] = list(csv.DictReader(io.StringIO(response.text, newline="")))
    assert row["number"] == "=cmd|' /C calc'!A0" and row["call_id"] == EVERY[9].call_id
    missed = api.get("/api/v1/calls.csv", params={"outcome": "missed"}).text
    assert len(missed.split("\r\n")) - 2 == sum(c.outcome is Outcome.MISSED for c in EVERY)
    empty = api.get("/api/v1/calls.csv", params={"since": "2030-01-01"}).text
    assert empty == ",".join(CALL_FIELDS) + "\r\n"


# --- /events -----------------------------------------------------------------------------------


def test_events_after_a_cursor_are_the_cli_objects_in_order(
    api: httpx2.Client, capsys: pytest.CaptureFixture[str]
) -> None:
    _, out, _ = run(capsys, "events", "--format", "json", "--after", "0", "--limit", "1000")
    printed = [json.loads(line) for line in out.splitlines()]
    collected: list[dict[str, object]] = []
    after = 0
    while True:
        body = api.get("/api/v1/events", params={"after": after, "limit": 13}).json()
        if not body["events"]:
            assert body["cursor"] == after  # nothing new: the cursor stays
            break
        assert body["cursor"] == body["events"][-1]["cursor"]
        collected.extend(body["events"])
        after = body["cursor"]
    assert collected == printed and len(collected) >= 2 * COUNT


def test_events_defaults_and_limits(api: httpx2.Client) -> None:
    body = api.get("/api/v1/events").json()
    assert len(body["events"]) == 100 and body["events"][0]["cursor"] == 1
    far = api.get("/api/v1/events", params={"after": 2**63 - 1}).json()
    assert far == {"events": [], "cursor": 2**63 - 1}
    for params in ({"after": -1}, {"after": 2**63}, {"limit": 0}, {"limit": 1001}, {"after": "x"}):
        response = api.get("/api/v1/events", params=params)
        assert response.status_code == 422
        assert isinstance(response.json()["detail"], str)
