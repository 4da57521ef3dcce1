"""Reading and writing the event log and the calls, with the same queries on SQLite and PostgreSQL.

Every function takes a :class:`~sqlalchemy.engine.Connection` and leaves the transaction to the
caller (``with engine.begin() as conn: ...``): the daemon groups an event, the call it changed and
the link between them in one commit.

**The cursor.** Each event gets a cursor when it is first recorded; cursors only grow. With one
writer (the daemon) they also grow in commit order, so a reader that has seen cursor *n* never
later finds a new event below *n*. On SQLite this holds for any number of writers (SQLite has
one write lock, held from the insert to the commit). On PostgreSQL it does not: the sequence hands
out numbers at insert time, and two writers' transactions may commit in the other order, so a
reader could pass over a cursor that becomes visible a moment later. The API's replay must either
keep to one writer per database or re-read a short window behind its position.

Cursors may have gaps: on both databases an insert skipped as a duplicate can use up a number
(SQLite's AUTOINCREMENT counter and PostgreSQL's sequence both move). Readers page with
:func:`events_after` and never expect consecutive cursors.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any, TypeVar

from sqlalchemy import Row, Table, bindparam, func, literal, or_, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from microsip_bridge.errors import BridgeError
from microsip_bridge.model import SOURCE_HOOKS, Call, CallState, Event, EventRecord
from microsip_bridge.store import reader
from microsip_bridge.store.schema import calls, events, purged_entries

# Bound parameters per IN (...) list: old SQLite builds allow 999 in a whole statement.
_IN_CHUNK = 500
_INT64 = 2**63
_CALL_FIELDS = tuple(f.name for f in dataclasses.fields(Call) if f.name != "events")
# A Call field without a column would be dropped silently on save: refuse to save instead.
_UNSTORED = sorted(set(_CALL_FIELDS) - {column.name for column in calls.columns})
_CALL_COLUMNS = tuple(column.name for column in calls.columns if column.name in _CALL_FIELDS)
_CALL_ENUMS = ("direction", "state", "outcome")
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """An event as the log holds it: the :class:`EventRecord` fields (``ts`` is when the hook
    fired), its ``cursor``, when the daemon received it, and the call it was placed in."""

    cursor: int
    uid: str
    event: Event
    number: str
    ts: float
    pid: int | None
    source: str
    received_at: float
    call_id: str | None

    @property
    def record(self) -> EventRecord:
        """The event as the state model takes it."""
        return EventRecord(self.uid, self.event, self.number, self.ts, self.pid, self.source)

    def to_dict(self) -> dict[str, object]:
        """The event object that ``events --format json``, the REST API and the WebSocket give:
        :data:`~.reader.EVENT_FIELDS`, in order."""
        return reader.event_dict(tuple(getattr(self, name) for name in reader.EVENT_FIELDS))


# -- the event log ---------------------------------------------------------------------------


def record_event(
    conn: Connection, rec: EventRecord, received_at: float | None = None
) -> tuple[int, bool]:
    """Append ``rec`` to the log unless an event with its uid is there already.

    Returns ``(cursor, duplicate)``: the new event's cursor, or for a uid seen before the
    cursor it got then and ``duplicate=True`` (the row is left as it was). ``received_at``
    defaults to now. Raises :class:`BridgeError` for values no database can store (NUL,
    unpaired surrogates, non-finite times).
    """
    row = event_row(rec, time.time() if received_at is None else received_at)
    cursor = _insert_event(conn, row)
    if cursor is not None:
        return cursor, False
    return _existing_cursors(conn, [rec.uid])[rec.uid], True


def record_events(
    conn: Connection, recs: Iterable[EventRecord], received_at: float | None = None
) -> list[tuple[int, bool]]:
    """:func:`record_event` for many events in a few statements.

    Returns one ``(cursor, duplicate)`` per record, in order. A uid that appears twice in
    ``recs`` is recorded once: the later copies are duplicates of the first. Every record is
    checked before anything is written, so a bad one (:class:`BridgeError`, naming it)
    leaves the transaction untouched.
    """
    batch = list(recs)
    now = time.time() if received_at is None else received_at
    rows: dict[str, dict[str, Any]] = {}
    for rec in batch:
        if rec.uid not in rows:
            rows[rec.uid] = event_row(rec, now)
    if not rows:
        return []
    inserted = _insert_rows(conn, list(rows.values()))
    known = dict(inserted)
    missing = [uid for uid in rows if uid not in inserted]
    if missing:
        known.update(_existing_cursors(conn, missing))
    results: list[tuple[int, bool]] = []
    fresh = set(inserted)
    for rec in batch:
        results.append((known[rec.uid], rec.uid not in fresh))
        # Only the first copy of a uid in the batch is the one that was inserted.
        fresh.discard(rec.uid)
    return results


def logged_events(conn: Connection, uids: Sequence[str]) -> dict[str, tuple[int, str | None]]:
    """Those of ``uids`` that the log holds already: uid -> (cursor, call id).

    With :func:`insert_events`, what group commit uses: the daemon learns which events are new
    before it places them in calls, so that each is inserted once, linked to its call."""
    found: dict[str, tuple[int, str | None]] = {}
    for chunk in _chunks(uids):
        for uid, cursor, call_id in conn.execute(_logged_statement(), {"uids": list(chunk)}):
            found[uid] = (int(cursor), call_id)
    return found


def insert_events(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """Insert event rows (from :func:`event_row`, each uid once, none in the log); returns
    each uid's cursor, in one statement where the database can return them.

    Raises :class:`BridgeError` if the log holds one of them after all (another writer
    recorded it since :func:`logged_events`): roll the transaction back, nothing is lost,
    and the event is a duplicate when it comes again."""
    inserted = _insert_rows(conn, rows)
    for row in rows:
        if row["uid"] not in inserted:
            raise BridgeError(
                "another writer recorded this event at the same moment; try again",
                where=f"event {str(row['uid'])[:64]!r}",
            )
    return inserted


def _insert_rows(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """Insert event rows, skipping a uid the log holds; the cursors of those inserted."""
    inserted: dict[str, int] = {}
    if not rows:
        return inserted
    dialect = conn.dialect
    if dialect.insert_returning and dialect.insert_executemany_returning:
        for uid, cursor in conn.execute(_statement(conn, "uid-cursor"), rows):
            inserted[uid] = int(cursor)
    else:
        for row in rows:
            cursor = _insert_event(conn, row)
            if cursor is not None:
                inserted[row["uid"]] = cursor
    return inserted


def _insert(conn: Connection, table: Table) -> Any:
    # INSERT ... ON CONFLICT exists in both dialects with the same API, in two modules.
    name = conn.dialect.name
    if name == "sqlite":
        return sqlite.insert(table)
    if name == "postgresql":
        return postgresql.insert(table)
    raise BridgeError(f"unsupported database dialect {name!r}")


def _statement(conn: Connection, kind: str) -> Any:
    """The event-insert statements, built once per dialect: building a statement costs as much
    as running it on SQLite, and one commit per event is the daemon's hot path."""
    key = (conn.dialect.name, kind)
    stmt = _STATEMENTS.get(key)
    if stmt is None:
        stmt = _insert(conn, events).on_conflict_do_nothing(index_elements=["uid"])
        if kind == "cursor":
            stmt = stmt.returning(events.c.cursor)
        elif kind == "uid-cursor":
            stmt = stmt.returning(events.c.uid, events.c.cursor)
        _STATEMENTS[key] = stmt
    return stmt


def _link_statement() -> Any:
    """UPDATE events SET call_id = :link_call WHERE uid = :link_uid, built once for the same
    reason as :func:`_statement`; an event already linked to the call is left alone (no write,
    no page for the WAL)."""
    stmt = _STATEMENTS.get(("any", "link"))
    if stmt is None:
        call_id = bindparam("link_call", type_=events.c.call_id.type)
        stmt = (
            update(events)
            .where(
                events.c.uid == bindparam("link_uid", type_=events.c.uid.type),
                or_(events.c.call_id.is_(None), events.c.call_id != call_id),
            )
            .values(call_id=call_id)
        )
        _STATEMENTS[("any", "link")] = stmt
    return stmt


def _logged_statement() -> Any:
    """SELECT uid, cursor, call_id FROM events WHERE uid IN (:uids), built once for the same
    reason as :func:`_statement` (an expanding parameter: one statement for any count)."""
    stmt = _STATEMENTS.get(("any", "logged"))
    if stmt is None:
        stmt = select(events.c.uid, events.c.cursor, events.c.call_id).where(
            events.c.uid.in_(bindparam("uids", expanding=True))
        )
        _STATEMENTS[("any", "logged")] = stmt
    return stmt


def _call_upsert(conn: Connection) -> Any:
    """INSERT ... ON CONFLICT (call_id) DO UPDATE of every column, built once per dialect for
    the same reason as :func:`_statement`: the daemon saves a call after every event."""
    key = (conn.dialect.name, "call-upsert")
    stmt = _STATEMENTS.get(key)
    if stmt is None:
        base = _insert(conn, calls)
        stmt = base.on_conflict_do_update(
            index_elements=["call_id"],
            set_={c.name: base.excluded[c.name] for c in calls.columns if c.name != "call_id"},
        )
        _STATEMENTS[key] = stmt
    return stmt


_STATEMENTS: dict[tuple[str, str], Any] = {}


def _insert_event(conn: Connection, row: Mapping[str, Any]) -> int | None:
    """Insert one event row; its cursor, or ``None`` if its uid is already in the log."""
    if conn.dialect.insert_returning:
        cursor = conn.execute(_statement(conn, "cursor"), row).scalar_one_or_none()
        return None if cursor is None else int(cursor)
    # SQLite before 3.35 has no RETURNING: a skipped insert changes no row, and lastrowid is
    # then stale, so the row count decides.
    result = conn.execute(_statement(conn, "plain"), row)
    if result.rowcount != 1 or result.lastrowid is None:
        return None
    return int(result.lastrowid)


def _existing_cursors(conn: Connection, uids: Sequence[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for chunk in _chunks(uids):
        query = select(events.c.uid, events.c.cursor).where(events.c.uid.in_(chunk))
        found.update((uid, int(cursor)) for uid, cursor in conn.execute(query))
    lost = [uid for uid in uids if uid not in found]
    if lost:
        # Only possible if another transaction deleted the row: the log is append-only.
        raise BridgeError(f"event {lost[0]} conflicts with a row that is not in the log")
    return found


def set_event_call(conn: Connection, uid: str, call_id: str | None) -> bool:
    """Record that event ``uid`` belongs to call ``call_id`` (``None``: to no call).
    ``False`` if the log has no such event."""
    result = conn.execute(update(events).where(events.c.uid == uid).values(call_id=call_id))
    return result.rowcount > 0


def events_after(conn: Connection, cursor: int, limit: int = 1000) -> list[StoredEvent]:
    """The events with a cursor above ``cursor``, oldest first, at most ``limit`` of them: a
    reader pages through the log by passing the last cursor it got."""
    if limit < 1:
        raise BridgeError(f"limit must be at least 1, not {limit}")
    query = select(events).where(events.c.cursor > cursor).order_by(events.c.cursor).limit(limit)
    return [_stored_event(row) for row in conn.execute(query)]


def call_events(conn: Connection, call_id: str) -> list[StoredEvent]:
    """The events linked to call ``call_id``, in log order."""
    query = select(events).where(events.c.call_id == call_id).order_by(events.c.cursor)
    return [_stored_event(row) for row in conn.execute(query)]


def event_call_id(conn: Connection, uid: str) -> str | None:
    """The call event ``uid`` is linked to (``None``: no such event, or linked to no call)."""
    call_id: str | None = conn.execute(
        select(events.c.call_id).where(events.c.uid == uid)
    ).scalar_one_or_none()
    return call_id


def cursor_before_newest(conn: Connection, count: int) -> int:
    """The cursor just before the newest ``count`` events (0 when the log holds no more): a
    reader that passes it to :func:`events_after` gets the last ``count`` events."""
    query = select(events.c.cursor).order_by(events.c.cursor.desc()).limit(1).offset(count)
    before = conn.execute(query).scalar_one_or_none()
    return 0 if before is None else int(before)


def max_cursor(conn: Connection) -> int:
    """The highest cursor in the log (0 when it is empty)."""
    value = conn.execute(select(func.max(events.c.cursor))).scalar_one_or_none()
    return 0 if value is None else int(value)


def event_row(rec: EventRecord, received_at: float, call_id: str | None = None) -> dict[str, Any]:
    """The log's row for ``rec``, linked to call ``call_id``. Raises :class:`BridgeError` for
    values no database can store (NUL, unpaired surrogates, non-finite times)."""
    row: dict[str, Any] = {
        "uid": rec.uid,
        "event": rec.event.value,
        "number": rec.number,
        "fired_at": rec.ts,
        "received_at": received_at,
        "pid": rec.pid,
        "source": rec.source,
        "call_id": call_id,
    }
    _check_values(row, f"event {rec.uid[:64]!r}")
    return row


def _stored_event(row: Row[Any]) -> StoredEvent:
    try:
        kind = Event(row.event)
    except ValueError:
        raise BridgeError(
            f"unknown event name {row.event!r} in the log", where=f"event cursor {row.cursor}"
        ) from None
    return StoredEvent(
        cursor=int(row.cursor),
        uid=row.uid,
        event=kind,
        number=row.number,
        ts=row.fired_at,
        pid=row.pid,
        source=row.source,
        received_at=row.received_at,
        call_id=row.call_id,
    )


# -- the calls -------------------------------------------------------------------------------


def save_call(conn: Connection, call: Call) -> None:
    """Insert or replace ``call`` (by ``call_id``), every field of it, and link the events in
    ``call.events`` that the log holds to it."""
    save_calls(conn, [call])


def save_calls(conn: Connection, batch: Sequence[Call], *, link: bool = True) -> None:
    """:func:`save_call` for many calls in two statements (what group commit uses): every call
    is checked before anything is written. ``link=False`` skips linking the events, for a
    caller that inserted them linked (:func:`insert_events`) and saved their calls' older
    events before."""
    if not batch:
        return
    rows = [_call_row(call) for call in batch]
    conn.execute(_call_upsert(conn), rows)
    if not link:
        return
    links = [{"link_uid": uid, "link_call": call.call_id} for call in batch for uid in call.events]
    if links:
        conn.execute(_link_statement(), links)


def get_call(conn: Connection, call_id: str) -> Call | None:
    """The call with id ``call_id``, or ``None``."""
    row = conn.execute(select(calls).where(calls.c.call_id == call_id)).first()
    return None if row is None else _call_from_row(row)


def open_calls(conn: Connection) -> list[Call]:
    """The calls that have not ended (what the daemon's state model reloads at start), oldest
    first."""
    query = (
        select(calls).where(calls.c.open.is_(True)).order_by(calls.c.started_at, calls.c.call_id)
    )
    return [_call_from_row(row) for row in conn.execute(query)]


def list_calls(
    conn: Connection,
    *,
    since: float | None = None,
    limit: int | None = None,
    number: str | None = None,
) -> list[Call]:
    """Calls, newest first: those that started at or after ``since`` (Unix seconds), with
    exactly this ``number``, at most ``limit`` of them."""
    query = select(calls)
    if since is not None:
        query = query.where(calls.c.started_at >= since)
    if number is not None:
        query = query.where(calls.c.number == number)
    query = query.order_by(calls.c.started_at.desc(), calls.c.call_id.desc())
    if limit is not None:
        if limit < 0:
            raise BridgeError(f"limit must not be negative, not {limit}")
        query = query.limit(limit)
    return [_call_from_row(row) for row in conn.execute(query)]


def history_entries_seen(
    conn: Connection, entries: Iterable[tuple[int, int]]
) -> set[tuple[int, int]]:
    """Those of ``entries``, ``[Calls]`` entries as ``(key, time)``, that calls in the store
    were reconciled with or imported from: the sweep skips them. Looked up through the index on
    (``microsip_time``, ``microsip_key``), so the cost follows ``entries``, not the store.

    ``time`` is the entry's own time where the call has one (``microsip_time``); otherwise the
    call's start time to the second, which is the entry's time for imported calls and, for
    calls seen through the hooks, the second in which MicroSIP created the entry (facts §5:
    at the same moment as the outgoing/incoming hook) as long as both clocks agree.
    """
    wanted = set(entries)
    times = sorted({when for _, when in wanted})
    keys = sorted({key for key, _ in wanted})
    seen: set[tuple[int, int]] = set()
    # A list of times, not an OR per entry: one statement, compiled once whatever the count.
    for chunk in _chunks(times):
        query = select(calls.c.microsip_key, calls.c.microsip_time).where(
            calls.c.microsip_time.in_(chunk)
        )
        for key, when in conn.execute(query):
            if key is not None and (pair := (int(key), int(when))) in wanted:
                seen.add(pair)
    # Calls linked to a slot without the entry's time (a call saved so by hand, or by an older
    # version): the same index, at (NULL, key).
    for chunk in _chunks(keys):
        query = select(calls.c.microsip_key, calls.c.started_at).where(
            calls.c.microsip_time.is_(None), calls.c.microsip_key.in_(chunk)
        )
        for key, started_at in conn.execute(query):
            if (pair := (int(key), math.floor(started_at))) in wanted:
                seen.add(pair)
    # Entries of purged calls (store/purge.py): settled for good, never imported again.
    for chunk in _chunks(times):
        query = select(purged_entries.c.microsip_key, purged_entries.c.microsip_time).where(
            purged_entries.c.microsip_time.in_(chunk)
        )
        for key, when in conn.execute(query):
            seen.update(
                pair for pair in wanted if pair[1] == when and (key is None or pair[0] == key)
            )
    return seen


def calls_awaiting_history(conn: Connection, *, since: float) -> list[Call]:
    """Ended hook calls that started at or after ``since`` and are linked to no ``[Calls]``
    entry yet, newest first: what the sweep may still pair with an entry."""
    # No condition that an index on open or microsip_key could serve: without statistics
    # SQLite would take one of those, which hold most of the table, over the time range.
    query = (
        select(calls)
        .where(
            calls.c.started_at >= since,
            calls.c.state == CallState.ENDED.value,
            calls.c.source == SOURCE_HOOKS,
        )
        .order_by(calls.c.started_at.desc(), calls.c.call_id.desc())
    )
    return [_call_from_row(row) for row in conn.execute(query) if row.microsip_key is None]


# -- the calls for readers: plain dicts, in pages --------------------------------------------


def call_page(
    conn: Connection,
    *,
    since: float | None = None,
    number: str | None = None,
    key: str | None = None,
    start: tuple[float, str] | None = None,
    after: tuple[float, str] | None = None,
    limit: int,
) -> list[dict[str, object]]:
    """Up to ``limit`` calls in the shape of :meth:`Call.to_dict` (no Call objects: a reader
    may list a million), oldest first: those that started at or after ``since``, whose number
    holds ``number`` (see :func:`~.reader.number_needle`) or whose ``number_key`` is ``key``
    (when given), from the position ``start``
    (inclusive) or ``after`` (exclusive), a ``(started_at, call_id)`` pair."""
    position = tuple_(calls.c.started_at, calls.c.call_id)
    query = select(*(calls.c[name] for name in reader.CALL_COLUMNS))
    query = query.where(*_call_filters(since, number, key))
    if start is not None:
        query = query.where(position >= tuple_(literal(start[0]), literal(start[1])))
    if after is not None:
        query = query.where(position > tuple_(literal(after[0]), literal(after[1])))
    query = query.order_by(calls.c.started_at, calls.c.call_id).limit(limit)
    return [reader.call_dict(row) for row in conn.execute(query)]


def nth_newest_call(
    conn: Connection,
    n: int,
    *,
    since: float | None = None,
    number: str | None = None,
    key: str | None = None,
) -> tuple[tuple[float, str] | None, bool]:
    """The position ``(started_at, call_id)`` of the ``n``-th newest call that matches (as
    :func:`call_page`), or None when fewer match; and whether older ones match too."""
    if n < 1:
        raise BridgeError(f"the count must be at least 1, not {n}")
    query = (
        select(calls.c.started_at, calls.c.call_id)
        .where(*_call_filters(since, number, key))
        .order_by(calls.c.started_at.desc(), calls.c.call_id.desc())
        .limit(2)
        .offset(n - 1)
    )
    rows = conn.execute(query).all()
    if not rows:
        return None, False
    return (float(rows[0][0]), str(rows[0][1])), len(rows) > 1


def _call_filters(
    since: float | None, number: str | None, key: str | None = None
) -> list[ColumnElement[bool]]:
    filters: list[ColumnElement[bool]] = []
    if since is not None:
        filters.append(calls.c.started_at >= since)
    if number:
        digits: Any = func.lower(calls.c.number)
        for separator in reader.NUMBER_SEPARATORS:
            digits = func.replace(digits, separator, "")
        found: ColumnElement[bool] = digits.contains(number, autoescape=True)
        if key:
            found = or_(found, calls.c.number_key == key)
        if key and key.startswith("+"):
            # Calls stored before number_key existed: the E.164 digits in their number.
            found = or_(found, digits.contains(key[1:], autoescape=True))
        filters.append(found)
    return filters


def _call_row(call: Call) -> dict[str, Any]:
    if _UNSTORED:
        raise BridgeError(f"the calls table has no column for {', '.join(_UNSTORED)}")
    # Not Call.to_dict: this runs for every saved call, on the writer thread.
    row = {name: getattr(call, name) for name in _CALL_FIELDS}
    for name in _CALL_ENUMS:
        value = row[name]
        if isinstance(value, Enum):
            row[name] = value.value
    row["event_uids"] = list(call.events)
    row["open"] = call.is_open
    _check_values(row, f"call {call.call_id[:40]!r}")
    return row


def _call_from_row(row: Row[Any]) -> Call:
    mapping = row._mapping
    data: dict[str, object] = {name: mapping[name] for name in _CALL_COLUMNS}
    uids = mapping["event_uids"]
    data["events"] = list(uids) if isinstance(uids, list) else uids
    fired = mapping["transitions"]
    data["transitions"] = list(fired) if isinstance(fired, list) else fired
    try:
        return Call.from_dict(data)
    except BridgeError as exc:
        raise BridgeError(exc.message, where=f"call {mapping['call_id']} in the store") from None


# -- checks ----------------------------------------------------------------------------------


def _check_values(row: Mapping[str, Any], what: str) -> None:
    """Refuse what the databases would refuse with a driver error, or store differently:
    SQLite turns NaN into NULL, PostgreSQL text cannot hold NUL, neither takes an unpaired
    surrogate (a hostile number decoded from invalid UTF-16), integers beyond 64 bits."""
    for name, value in row.items():
        # The common values are cleared here, without a call: this runs for every event and
        # every saved call, on the writer thread.
        kind = type(value)
        if kind is str:
            if value.isascii() and "\x00" not in value:
                continue
        elif kind is float:
            if math.isfinite(value):
                continue
        elif kind is int:
            if -_INT64 <= value < _INT64:
                continue
        elif value is None or kind is bool:
            continue
        for item in value if kind is list else (value,):
            problem = _problem(item)
            if problem:
                raise BridgeError(f"{name} {problem}", where=what)


def _problem(value: object) -> str | None:
    if isinstance(value, str):
        if value.isascii():
            return "holds a NUL character" if "\x00" in value else None
        if "\x00" in value:
            return "holds a NUL character"
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return "is not valid Unicode text (an unpaired surrogate)"
        return None
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return f"is {value}, not a time or a number"
    if isinstance(value, int) and not -_INT64 <= value < _INT64:
        return "does not fit in 64 bits"
    return None


def _chunks(items: Sequence[T]) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), _IN_CHUNK):
        yield items[start : start + _IN_CHUNK]
