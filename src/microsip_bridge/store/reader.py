"""The call log for its readers (`calls`, `events`): rows as plain dicts, page by page.

A reader may list a million calls, and a command that lists fifty should not pay more for its
imports than for its query. So rows become the dicts the JSON shows (the keys of
:meth:`~microsip_bridge.model.Call.to_dict` for a call), never Call objects, and the default
SQLite file is read through the standard library's ``sqlite3``, without SQLAlchemy (its import
alone costs about 0.3 s). The SQL of that path is here, beside the SQLAlchemy path in
:mod:`~microsip_bridge.store.repo`; a test holds the two to the same rows. Any other database
(a ``--database`` URL, the ``database`` setting) is read through SQLAlchemy.

Both give calls oldest first, the newest ``limit`` of them (or all), in pages through the index
on (``started_at``, ``call_id``): the first row is printed before the last is read.
"""

from __future__ import annotations

import abc
import dataclasses
import json
import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar, cast

from microsip_bridge.errors import BridgeError
from microsip_bridge.model import Call, CallState, Direction, Outcome
from microsip_bridge.store import DB_NAME, SQLITE_BUSY_TIMEOUT_MS
from microsip_bridge.wire import EVENT_NAMES

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine

    from microsip_bridge.numbers import Normaliser

# The keys of a call as readers get it, in Call's field order (the JSON's and the CSV's), and
# the column each is read from: the calls table keeps ``events`` as ``event_uids``.
CALL_FIELDS = tuple(f.name for f in dataclasses.fields(Call))
CALL_COLUMNS = tuple("event_uids" if name == "events" else name for name in CALL_FIELDS)
EVENT_FIELDS = ("cursor", "uid", "event", "number", "ts", "pid", "source", "received_at", "call_id")
# The event log's columns for EVENT_FIELDS (``ts`` is when the hook fired).
EVENT_COLUMNS = tuple("fired_at" if name == "ts" else name for name in EVENT_FIELDS)
# What `calls --number` ignores on both sides: how people and phones write numbers apart.
NUMBER_SEPARATORS = (" ", "-", ".", "/", "(", ")")
PAGE = 1000

_BOOLEANS = frozenset({"rang", "auto_answered", "video"})
_DIRECTIONS = frozenset(d.value for d in Direction)
_STATES = frozenset(s.value for s in CallState)
_OUTCOMES = frozenset(o.value for o in Outcome)
_EVENTS = frozenset(EVENT_NAMES)
_EVENTS_AT = CALL_FIELDS.index("events")
_TRANSITIONS_AT = CALL_FIELDS.index("transitions")

T = TypeVar("T")
Position = tuple[float, str]  # (started_at, call_id): where a call is in the listing order


class NumberNeedle(NamedTuple):
    """What ``calls --number`` looks for: the text (:func:`number_needle`) in the number, or
    a call whose ``number_key`` equals ``key`` (the number normalised; "": none)."""

    text: str
    key: str = ""


def number_needle(text: str) -> str:
    """What ``calls --number TEXT`` looks for: ``TEXT`` in lower case without the separators
    people write numbers with, so ``555-1234``, ``555 1234`` and ``(555) 1234`` all find
    ``+1 555 1234`` and ``sip:5551234@pbx``."""
    needle = text.casefold()
    for separator in NUMBER_SEPARATORS:
        needle = needle.replace(separator, "")
    return needle


def call_dict(values: Sequence[Any]) -> dict[str, object]:
    """A calls row (its :data:`CALL_COLUMNS`, in order) as :meth:`Call.to_dict` gives it:
    booleans as booleans, the event uids as a list. Names of directions, states and outcomes
    the model does not know are refused (a damaged row is a :class:`BridgeError`)."""
    data = dict(zip(CALL_FIELDS, values, strict=True))
    if (
        data["direction"] not in _DIRECTIONS
        or data["state"] not in _STATES
        or (data["outcome"] is not None and data["outcome"] not in _OUTCOMES)
    ):
        raise BridgeError(
            f"not a call record: direction {data['direction']!r}, state {data['state']!r}, "
            f"outcome {data['outcome']!r}",
            where=f"call {data['call_id']} in the store",
        )
    for name in _BOOLEANS:
        data[name] = bool(data[name])
    uids = values[_EVENTS_AT]
    # SQLAlchemy decodes the JSON column; the stdlib driver gives its text.
    data["events"] = json.loads(uids) if isinstance(uids, str | bytes) else list(uids)
    fired = values[_TRANSITIONS_AT]
    if isinstance(fired, str | bytes):
        fired = json.loads(fired)
    data["transitions"] = None if fired is None else list(fired)
    return data


def json_text(obj: Mapping[str, object]) -> str:
    """An event, a call or an event-feed message as one line of JSON, text as itself (not
    escaped to ASCII): what `events --format json` prints and the event WebSocket sends."""
    return json.dumps(obj, ensure_ascii=False)


def event_dict(values: Sequence[Any]) -> dict[str, object]:
    """An events row (its :data:`EVENT_COLUMNS`, in order) as the JSON gives it."""
    data = dict(zip(EVENT_FIELDS, values, strict=True))
    if data["event"] not in _EVENTS:
        raise BridgeError(
            f"unknown event name {data['event']!r} in the log",
            where=f"event cursor {data['cursor']}",
        )
    return data


@dataclass(frozen=True, slots=True)
class Listing:
    """Calls as :meth:`LogReader.calls` gives them: ``rows`` to iterate once, oldest first, and
    ``more``: whether older calls that match were left out by the limit."""

    rows: Iterator[dict[str, object]]
    more: bool


class LogReader(abc.ABC):
    """Reads the call log. :meth:`calls` streams calls; :meth:`events_after` and
    :meth:`cursor_before_newest` page through the event log. Reads see what was committed when
    the read began; :meth:`refresh` ends it, so that the next one sees newer commits."""

    def calls(
        self,
        *,
        since: float | None = None,
        number: str | None = None,
        limit: int | None = None,
        normalise: Normaliser | None = None,
    ) -> Listing:
        """The calls that started at or after ``since`` (Unix seconds) and whose number holds
        ``number`` (:func:`number_needle`) or, with ``normalise``, is the same number
        (``number_key``: ``01234 567890`` finds ``+441234567890`` in region GB), oldest first:
        the newest ``limit`` of them, or all (None)."""
        needle = None
        if number is not None:
            key = normalise(number).key if normalise is not None else ""
            needle = NumberNeedle(number_needle(number), key)
        if limit is None:
            return Listing(self._stream(since, needle, None, None), more=False)
        if limit < 1:
            raise BridgeError(f"the limit must be at least 1, not {limit}")
        # Where the newest ``limit`` begin; from there on, in order, page by page.
        start, more = self._nth_newest(limit, since, needle)
        return Listing(self._stream(since, needle, start, limit), more=more)

    def _stream(
        self,
        since: float | None,
        needle: NumberNeedle | None,
        start: Position | None,
        left: int | None,
    ) -> Iterator[dict[str, object]]:
        after: Position | None = None
        while left is None or left > 0:
            size = PAGE if left is None else min(PAGE, left)
            if after is None and start is None:
                page = self._page(since, needle, None, None, size)
            else:
                # The position alone: every row from it on is past ``since`` too, and the
                # index range then starts at the position, not at ``since``.
                page = self._page(None, needle, start if after is None else None, after, size)
            yield from page
            if len(page) < size:
                return
            last = page[-1]
            after = (cast(float, last["started_at"]), cast(str, last["call_id"]))
            if left is not None:
                left -= len(page)

    @abc.abstractmethod
    def events_after(self, cursor: int, limit: int) -> list[dict[str, object]]:
        """Up to ``limit`` events with a cursor above ``cursor``, oldest first."""
        raise NotImplementedError

    @abc.abstractmethod
    def cursor_before_newest(self, count: int) -> int:
        """The cursor just before the newest ``count`` events (0 when there are no more)."""
        raise NotImplementedError

    @abc.abstractmethod
    def refresh(self) -> None:
        """End the read: the next one sees what was committed since."""
        raise NotImplementedError

    @abc.abstractmethod
    def close(self) -> None:
        """Let the database go."""
        raise NotImplementedError

    def __enter__(self) -> LogReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @abc.abstractmethod
    def _page(
        self,
        since: float | None,
        needle: NumberNeedle | None,
        start: Position | None,
        after: Position | None,
        limit: int,
    ) -> list[dict[str, object]]:
        raise NotImplementedError

    @abc.abstractmethod
    def _nth_newest(
        self, n: int, since: float | None, needle: NumberNeedle | None
    ) -> tuple[Position | None, bool]:
        raise NotImplementedError


def open_reader(url: str | None, home: Path) -> LogReader | None:
    """A reader of the call log at ``url`` (None: ``bridge.db`` in ``home``, read through the
    standard library), or None when there is no call log there yet. A reader creates nothing.
    Raises :class:`BridgeError` when the database cannot be opened."""
    if url is not None:
        from microsip_bridge.store.engine import open_log

        engine = open_log(url, home)
        return None if engine is None else _EngineReader(engine)
    path = home / DB_NAME
    if not path.is_file():
        return None
    return _SqliteReader.open(path)


def _select(table: str, columns: Sequence[str]) -> str:
    quoted = ", ".join(f'"{column}"' for column in columns)
    return f"SELECT {quoted} FROM {table}"  # noqa: S608 - our names, never input


def _number_digits() -> str:
    expression = "lower(number)"
    for separator in NUMBER_SEPARATORS:
        expression = f"replace({expression}, '{separator}', '')"
    return expression


class _SqliteReader(LogReader):
    """The default SQLite file through the standard library's sqlite3."""

    # Built from the column lists, so that they cannot drift from what repo reads.
    _CALLS = _select("calls", CALL_COLUMNS)
    _EVENTS = _select("events", EVENT_COLUMNS)
    _NUMBER = _number_digits()

    def __init__(self, db: sqlite3.Connection, where: str) -> None:
        self._db = db
        self._where = where
        self._reading = False

    @classmethod
    def open(cls, path: Path) -> _SqliteReader | None:
        where = f"sqlite:///{path.resolve()}"
        # mode=rw: never create the file; the daemon made it, and set it to WAL mode.
        uri = f"{path.resolve().as_uri()}?mode=rw"
        try:
            db = sqlite3.connect(uri, uri=True, isolation_level=None)
        except sqlite3.Error as exc:
            raise _error(where, exc) from None
        try:
            db.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
            found = db.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'events'"
            ).fetchone()
        except sqlite3.Error as exc:
            db.close()
            raise _error(where, exc) from None
        if found is None:
            db.close()
            return None
        return cls(db, where)

    def _run(self, sql: str, params: Sequence[object]) -> list[Any]:
        try:
            if not self._reading:
                # One read transaction: every page of a listing sees the same moment.
                self._db.execute("BEGIN")
                self._reading = True
            with closing(self._db.execute(sql, params)) as cursor:
                return cursor.fetchall()
        except sqlite3.Error as exc:
            raise _error(self._where, exc) from None

    def _filters(
        self, since: float | None, needle: NumberNeedle | None
    ) -> tuple[list[str], list[object]]:
        where: list[str] = []
        params: list[object] = []
        if since is not None:
            where.append("started_at >= ?")
            params.append(since)
        if needle is not None and needle.text:
            text = needle.text
            escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            if needle.key.startswith("+"):
                # Calls stored before number_key existed: the E.164 digits in their number.
                where.append(
                    f"({self._NUMBER} LIKE ? ESCAPE '\\' OR {self._NUMBER} LIKE ? "
                    "OR number_key = ?)"
                )
                params.extend((f"%{escaped}%", f"%{needle.key[1:]}%", needle.key))
            elif needle.key:
                where.append(f"({self._NUMBER} LIKE ? ESCAPE '\\' OR number_key = ?)")
                params.extend((f"%{escaped}%", needle.key))
            else:
                where.append(f"{self._NUMBER} LIKE ? ESCAPE '\\'")
                params.append(f"%{escaped}%")
        return where, params

    def _page(
        self,
        since: float | None,
        needle: NumberNeedle | None,
        start: Position | None,
        after: Position | None,
        limit: int,
    ) -> list[dict[str, object]]:
        where, params = self._filters(since, needle)
        if start is not None:
            where.append("(started_at, call_id) >= (?, ?)")
            params.extend(start)
        if after is not None:
            where.append("(started_at, call_id) > (?, ?)")
            params.extend(after)
        sql = self._CALLS
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY started_at, call_id LIMIT ?"
        return [call_dict(row) for row in self._run(sql, [*params, limit])]

    def _nth_newest(
        self, n: int, since: float | None, needle: NumberNeedle | None
    ) -> tuple[Position | None, bool]:
        where, params = self._filters(since, needle)
        sql = "SELECT started_at, call_id FROM calls"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY started_at DESC, call_id DESC LIMIT 2 OFFSET ?"
        rows = self._run(sql, [*params, n - 1])
        if not rows:
            return None, False
        return (float(rows[0][0]), str(rows[0][1])), len(rows) > 1

    def events_after(self, cursor: int, limit: int) -> list[dict[str, object]]:
        sql = f"{self._EVENTS} WHERE cursor > ? ORDER BY cursor LIMIT ?"
        return [event_dict(row) for row in self._run(sql, [cursor, limit])]

    def cursor_before_newest(self, count: int) -> int:
        sql = "SELECT cursor FROM events ORDER BY cursor DESC LIMIT 1 OFFSET ?"
        rows = self._run(sql, [count])
        return 0 if not rows else int(rows[0][0])

    def refresh(self) -> None:
        if self._reading:
            self._reading = False
            try:
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                raise _error(self._where, exc) from None

    def close(self) -> None:
        self._db.close()


def _error(where: str, exc: sqlite3.Error) -> BridgeError:
    lines = str(exc).strip().splitlines()
    return BridgeError(f"database error on {where}: {lines[0] if lines else type(exc).__name__}")


class _EngineReader(LogReader):
    """Any database SQLAlchemy opens, through the queries of :mod:`~microsip_bridge.store.repo`."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._conn: Connection | None = None

    def _connection(self) -> Connection:
        if self._conn is None:
            from sqlalchemy.exc import DBAPIError

            from microsip_bridge.store.engine import database_error

            try:
                self._conn = self._engine.connect()
            except DBAPIError as exc:
                raise database_error(self._engine, exc) from None
        return self._conn

    def _read(self, query: Callable[[Connection], T]) -> T:
        from sqlalchemy.exc import DBAPIError

        from microsip_bridge.store.engine import database_error

        try:
            return query(self._connection())
        except DBAPIError as exc:
            raise database_error(self._engine, exc) from None

    def _page(
        self,
        since: float | None,
        needle: NumberNeedle | None,
        start: Position | None,
        after: Position | None,
        limit: int,
    ) -> list[dict[str, object]]:
        from microsip_bridge.store import repo

        return self._read(
            lambda conn: repo.call_page(
                conn,
                since=since,
                number=None if needle is None else needle.text,
                key=None if needle is None else needle.key,
                start=start,
                after=after,
                limit=limit,
            )
        )

    def _nth_newest(
        self, n: int, since: float | None, needle: NumberNeedle | None
    ) -> tuple[Position | None, bool]:
        from microsip_bridge.store import repo

        return self._read(
            lambda conn: repo.nth_newest_call(
                conn,
                n,
                since=since,
                number=None if needle is None else needle.text,
                key=None if needle is None else needle.key,
            )
        )

    def events_after(self, cursor: int, limit: int) -> list[dict[str, object]]:
        from microsip_bridge.store import repo

        stored = self._read(lambda conn: repo.events_after(conn, cursor, limit))
        return [event.to_dict() for event in stored]

    def cursor_before_newest(self, count: int) -> int:
        from microsip_bridge.store import repo

        return self._read(lambda conn: repo.cursor_before_newest(conn, count))

    def refresh(self) -> None:
        if self._conn is not None:
            self._read(lambda conn: conn.commit())

    def close(self) -> None:
        try:
            if self._conn is not None:
                self._conn.close()
        finally:
            self._engine.dispose()
