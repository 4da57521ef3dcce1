"""The call log's readers: the stdlib sqlite3 path and the SQLAlchemy path give the same rows as
the store's own queries, in pages, without creating anything."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import insert, text
from sqlalchemy.engine import Engine, make_url

from microsip_bridge.errors import BridgeError
from microsip_bridge.model import Call, CallState, Direction, Event, EventRecord, Outcome
from microsip_bridge.store import DB_NAME, reader, repo
from microsip_bridge.store.engine import make_engine, upgrade
from microsip_bridge.store.reader import LogReader, number_needle, open_reader
from microsip_bridge.store.schema import calls, events
from tests.conftest import DATABASES, PG_ENV, PG_URL

T0 = 1_764_000_000.0
NUMBERS = ["+1 (555) 123-4567", "5551234567@pbx", "100", "Alice.Example", "", "50%_x\\y"]


def some_calls(count: int, seed: int = 7) -> list[Call]:
    """Calls with ties in started_at (resolved by the id), every kind of value, None and not."""
    rng = random.Random(seed)
    out = []
    for n in range(count):
        ended = rng.random() < 0.8
        out.append(
            Call(
                call_id=f"c{n:024x}",
                direction=rng.choice(list(Direction)),
                number=rng.choice(NUMBERS),
                state=CallState.ENDED if ended else CallState.RINGING,
                started_at=T0 + rng.randrange(0, max(1, count // 2)) * 7.25,
                outcome=rng.choice(list(Outcome)) if ended else None,
                name=rng.choice(["", "Jürgen Müller", "李小龍", "=cmd"]),
                answered_at=rng.choice([None, T0 + 1.5]),
                duration=rng.choice([None, 0.0, 61.25]),
                rang=rng.random() < 0.5,
                video=rng.random() < 0.2,
                microsip_key=rng.choice([None, rng.randrange(1000)]),
                microsip_time=rng.choice([None, int(T0)]),
                disagreement=rng.choice([None, "direction: ..."]),
                source=rng.choice(["hooks", "history"]),
                events=[uuid.uuid4().hex for _ in range(rng.randrange(4))],
                updated_at=T0 + n,
            )
        )
    return out


@pytest.fixture(params=DATABASES)
def log(request: pytest.FixtureRequest, bridge_home: Path) -> Iterator[tuple[Engine, str | None]]:
    """A migrated call log: the default SQLite file in the home (url None), or a PostgreSQL
    schema of its own."""
    if request.param == "sqlite":
        engine = make_engine(None, bridge_home)
        upgrade(engine)
        yield engine, None
        engine.dispose()
        return
    assert PG_URL, f"MSB_REQUIRE_PG=1 but {PG_ENV} is not set"
    admin = make_engine(PG_URL)
    schema = f"msb_reader_{uuid.uuid4().hex[:12]}"
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(PG_URL).update_query_dict({"options": f"-csearch_path={schema}"})
    rendered = url.render_as_string(hide_password=False)
    engine = make_engine(rendered)
    upgrade(engine)
    try:
        yield engine, rendered
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def readers(url: str | None, home: Path) -> list[LogReader]:
    """Every way to read the log at ``url``: for the default SQLite file, both."""
    found = open_reader(url, home)
    assert found is not None
    if url is not None:
        return [found]
    sqlalchemy_path = open_reader(f"sqlite:///{home / DB_NAME}", home)
    assert sqlalchemy_path is not None
    return [found, sqlalchemy_path]


def expected(
    stored: list[Call], since: float | None, number: str | None, limit: int | None
) -> list[dict[str, object]]:
    """What a listing must give, computed from Call objects in Python."""
    needle = None if number is None else number_needle(number)
    matching = [
        c
        for c in sorted(stored, key=lambda c: (c.started_at, c.call_id))
        if (since is None or c.started_at >= since)
        and (needle is None or needle in number_needle(c.number))
    ]
    if limit is not None:
        matching = matching[-limit:] if limit else []
    return [c.to_dict() for c in matching]


@pytest.mark.parametrize(
    ("since", "number", "limit"),
    [
        (None, None, None),
        (None, None, 1),
        (None, None, 50),
        (None, None, 2499),
        (T0 + 3000, None, None),
        (T0 + 3000, None, 30),
        (None, "555-123", None),
        (None, "555-123", 5),
        (T0 + 1000, "100", 7),
        (None, "%_", None),
        (None, "x\\y", None),
        (T0 + 10**9, None, 10),
    ],
)
def test_both_readers_give_the_rows_the_store_holds(
    log: tuple[Engine, str | None],
    bridge_home: Path,
    monkeypatch: pytest.MonkeyPatch,
    since: float | None,
    number: str | None,
    limit: int | None,
) -> None:
    engine, url = log
    stored = some_calls(2500)
    with engine.begin() as conn:
        repo.save_calls(conn, stored)
    monkeypatch.setattr(reader, "PAGE", 97)  # many pages, and a short last one
    want = expected(stored, since, number, limit)
    for each in readers(url, bridge_home):
        with each:
            listing = each.calls(since=since, number=number, limit=limit)
            got = list(listing.rows)
        assert got == want, type(each).__name__
        older = len(expected(stored, since, number, None)) > len(want)
        assert listing.more is (limit is not None and older)


def test_a_listing_is_one_moment(bridge_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Calls the daemon saves while a long listing is printed do not join it half-way.
    engine = make_engine(None, bridge_home)
    upgrade(engine)
    with engine.begin() as conn:
        repo.save_calls(conn, some_calls(300))
    monkeypatch.setattr(reader, "PAGE", 50)
    found = open_reader(None, bridge_home)
    assert found is not None
    with found:
        rows = found.calls().rows
        first = next(rows)
        late = some_calls(1)[0]
        late.call_id, late.started_at = "c" + "f" * 24, T0 + 10**6
        with engine.begin() as conn:
            repo.save_calls(conn, [late])
        assert len([first, *rows]) == 300
        found.refresh()
        [newest] = found.calls(limit=1).rows
        assert newest["call_id"] == late.call_id
    engine.dispose()


def test_both_readers_page_through_the_events(
    log: tuple[Engine, str | None], bridge_home: Path
) -> None:
    engine, url = log
    recs = [
        EventRecord(f"u{n}", list(Event)[n % 8], f"55{n}", T0 + n, n or None, "hook")
        for n in range(30)
    ]
    with engine.begin() as conn:
        repo.record_events(conn, recs, received_at=T0 + 100)
        repo.set_event_call(conn, "u3", "c-x")
    with engine.connect() as conn:
        want = [
            {
                "cursor": e.cursor,
                "uid": e.uid,
                "event": e.event.value,
                "number": e.number,
                "ts": e.ts,
                "pid": e.pid,
                "source": e.source,
                "received_at": e.received_at,
                "call_id": e.call_id,
            }
            for e in repo.events_after(conn, 0)
        ]
        middle = repo.cursor_before_newest(conn, 12)
    for each in readers(url, bridge_home):
        with each:
            assert each.events_after(0, 1000) == want
            assert each.events_after(want[9]["cursor"], 5) == want[10:15]  # type: ignore[arg-type]
            assert each.cursor_before_newest(12) == middle
            assert each.cursor_before_newest(500) == 0


def test_a_damaged_row_is_a_bridge_error_on_both_paths(bridge_home: Path) -> None:
    engine = make_engine(None, bridge_home)
    upgrade(engine)
    row = {
        "call_id": "c-bad", "direction": "sideways", "number": "1", "state": "ended",
        "outcome": "answered", "name": "", "started_at": T0, "rang": False,
        "auto_answered": False, "video": False, "source": "hooks", "event_uids": [],
        "updated_at": T0, "open": False,
    }  # fmt: skip
    event = {
        "uid": "u-bad", "event": "explode", "number": "1", "fired_at": T0, "received_at": T0,
        "source": "hook",
    }  # fmt: skip
    with engine.begin() as conn:
        conn.execute(insert(calls).values(row))
        conn.execute(insert(events).values(event))
    engine.dispose()
    for each in readers(None, bridge_home):
        with each:
            with pytest.raises(BridgeError, match="c-bad"):
                list(each.calls().rows)
            with pytest.raises(BridgeError, match="explode"):
                each.events_after(0, 10)


def test_the_stdlib_reader_creates_nothing(bridge_home: Path) -> None:
    assert open_reader(None, bridge_home) is None  # no file
    assert list(bridge_home.iterdir()) == []
    (bridge_home / DB_NAME).write_bytes(b"")  # a file without tables: the daemon's first start
    assert open_reader(None, bridge_home) is None
    (bridge_home / DB_NAME).write_bytes(b"this is not a database\n" * 200)
    with pytest.raises(BridgeError, match="database error on sqlite:///") as caught:
        open_reader(None, bridge_home)
    assert "\n" not in str(caught.value)


def test_the_stdlib_reader_reads_the_columns_the_schema_has() -> None:
    assert set(reader.CALL_COLUMNS) == {c.name for c in calls.columns} - {"open"}
    assert set(reader.EVENT_COLUMNS) == {c.name for c in events.columns}
    assert tuple(some_calls(1)[0].to_dict()) == reader.CALL_FIELDS
