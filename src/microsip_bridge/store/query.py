"""The call log as the API asks for it: calls filtered and paged newest first, one call with its
events, the newest event.

Pages are keyset pages on the index (``started_at``, ``call_id``): a page starts just before the
position of the last call of the previous one, so calls recorded meanwhile shift nothing, and
no call is shown twice or skipped across pages. Rows are the dicts readers get
(:func:`~.reader.call_dict`, :meth:`~.repo.StoredEvent.to_dict`): the CLI's objects.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, literal, or_, select, tuple_
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from microsip_bridge.model import Direction, Outcome
from microsip_bridge.numbers import NUMBER_SEPARATORS, is_number_like, number_digits
from microsip_bridge.store import reader, repo
from microsip_bridge.store.schema import calls, events

Position = tuple[float, str]  # (started_at, call_id)
# Built once: a select is immutable, and coercing its 22 columns costs as much as the query.
_CALLS = select(*(calls.c[name] for name in reader.CALL_COLUMNS))
_NEWEST_FIRST = (calls.c.started_at.desc(), calls.c.call_id.desc())


@dataclass(frozen=True, slots=True)
class CallFilter:
    """Which calls to list: each condition given must hold. ``since`` is inclusive, ``until``
    exclusive (Unix seconds, on ``started_at``); ``number`` is a number in any format
    (:func:`number_condition`); ``text`` is found in the name (ignoring ASCII case) or the
    number (as text, or as a number in any format)."""

    since: float | None = None
    until: float | None = None
    direction: Direction | None = None
    outcome: Outcome | None = None
    number: str | None = None
    text: str | None = None
    # ``number``'s key (numbers.Number.key): a call whose number_key equals it matches too.
    number_key: str = ""

    def conditions(self) -> list[ColumnElement[bool]]:
        found: list[ColumnElement[bool]] = []
        if self.since is not None:
            found.append(calls.c.started_at >= self.since)
        if self.until is not None:
            found.append(calls.c.started_at < self.until)
        if self.direction is not None:
            found.append(calls.c.direction == self.direction.value)
        if self.outcome is not None:
            found.append(calls.c.outcome == self.outcome.value)
        if self.number is not None:
            condition = number_condition(calls.c.number, self.number)
            if self.number_key:
                condition = or_(condition, calls.c.number_key == self.number_key)
            if self.number_key.startswith("+"):
                # Calls stored before number_key existed: the E.164 digits in their number.
                condition = or_(condition, number_condition(calls.c.number, self.number_key))
            found.append(condition)
        if self.text:
            words = self.text.lower()
            either = [
                func.lower(calls.c.name).contains(words, autoescape=True),
                func.lower(calls.c.number).contains(words, autoescape=True),
            ]
            if is_number_like(self.text):
                either.append(number_condition(calls.c.number, self.text))
            found.append(or_(*either))
        return found


def number_condition(column: Any, wanted: str) -> ColumnElement[bool]:
    """SQL for :func:`microsip_bridge.numbers.number_matches` (``column`` as the stored number):
    the digits of ``wanted`` in ``column`` without the separators. Nothing matches a ``wanted``
    without digits."""
    digits = number_digits(wanted)
    if not digits:
        return literal(False)
    key: Any = column
    for separator in NUMBER_SEPARATORS:
        key = func.replace(key, separator, "")
    # Digits only: nothing for LIKE to take as a wildcard.
    condition: ColumnElement[bool] = key.contains(digits)
    return condition


def call_listing(
    conn: Connection, where: CallFilter, *, before: Position | None = None, limit: int
) -> list[dict[str, object]]:
    """Up to ``limit`` calls that match ``where``, newest first (``started_at``, then
    ``call_id``, both descending), from just before the position ``before`` (exclusive)."""
    query = _CALLS.where(*where.conditions())
    if before is not None:
        position = tuple_(calls.c.started_at, calls.c.call_id)
        query = query.where(position < tuple_(literal(before[0]), literal(before[1])))
    query = query.order_by(*_NEWEST_FIRST).limit(limit)
    return [reader.call_dict(row) for row in conn.execute(query)]


def position_of(call: dict[str, object]) -> Position:
    """Where ``call`` (as :func:`call_listing` gives it) is in the listing order."""
    started_at, call_id = call["started_at"], call["call_id"]
    if not isinstance(started_at, int | float) or not isinstance(call_id, str):
        raise TypeError(f"not a call as the store reads it: {sorted(call)}")
    return float(started_at), call_id


def call_with_events(conn: Connection, call_id: str) -> dict[str, object] | None:
    """The call ``call_id`` as :func:`call_listing` gives it, but with ``events`` holding its
    events (as ``events --format json`` prints them, in log order) instead of their uids; None
    for an unknown id."""
    row = conn.execute(_CALLS.where(calls.c.call_id == call_id)).first()
    if row is None:
        return None
    call = reader.call_dict(row)
    call["events"] = [event.to_dict() for event in repo.call_events(conn, call_id)]
    return call


def newest_event(conn: Connection) -> tuple[int, float] | None:
    """The cursor of the newest event in the log and when its hook fired; None for an empty
    log."""
    query = select(events.c.cursor, events.c.fired_at).order_by(events.c.cursor.desc()).limit(1)
    row = conn.execute(query).first()
    return None if row is None else (int(row[0]), float(row[1]))
