"""The webhook outbox's queries: insert, claim with a lease, mark, list, retry, replay, count.

A row is *due* when it is pending, its time has come, nobody holds an unexpired claim on it,
and no earlier pending row of the same target and call exists (order within one call). On
PostgreSQL several daemons claim from one outbox at once: the claim's inner SELECT locks with
``FOR UPDATE SKIP LOCKED``, so no row is claimed by two. SQLite has one writer at a time, and
the claim is one UPDATE that re-checks the claim in its WHERE.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, bindparam, case, exists, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.orm import aliased

from microsip_bridge.errors import BridgeError
from microsip_bridge.store.schema import webhook_outbox as ob

PENDING = "pending"
DELIVERED = "delivered"
DEAD = "dead"
STATES = (PENDING, DELIVERED, DEAD)
# What `list` shows of a row: everything but the body (asked for by id).
LIST_COLUMNS = (
    "id",
    "msg_id",
    "target",
    "call_id",
    "type",
    "state",
    "attempts",
    "created_at",
    "next_attempt_at",
    "last_status",
    "last_error",
    "delivered_at",
    "claimed_by",
)


@dataclass(frozen=True, slots=True)
class Claimed:
    """A row a worker holds: what it sends."""

    id: int
    msg_id: str
    target: str
    call_id: str | None
    type: str
    body: str
    attempts: int
    created_at: float


def insert(conn: Connection, row: Mapping[str, Any]) -> bool:
    """Add one message (msg_id target call_id type body created_at next_attempt_at); False
    when a row with its msg_id is there already (nothing changes)."""
    values = dict(row)
    values.setdefault("state", PENDING)
    values.setdefault("attempts", 0)
    name = conn.dialect.name
    if name == "sqlite":
        stmt: Any = sqlite.insert(ob)
    elif name == "postgresql":
        stmt = postgresql.insert(ob)
    else:
        raise BridgeError(f"unsupported database dialect {name!r}")
    stmt = stmt.values(values).on_conflict_do_nothing(index_elements=["msg_id"])
    # RETURNING, not rowcount: drivers differ on the rowcount of a conflict skipped.
    return conn.execute(stmt.returning(ob.c.id)).first() is not None


def _first_of_call() -> Any:
    # A row without a call (a test message) is never held back.
    earlier = aliased(ob)
    blocked = exists().where(
        earlier.c.target == ob.c.target,
        earlier.c.call_id == ob.c.call_id,
        earlier.c.id < ob.c.id,
        earlier.c.state == PENDING,
    )
    return or_(ob.c.call_id.is_(None), ~blocked)


def _due(now: float, targets: Sequence[str]) -> Any:
    return and_(
        ob.c.state == PENDING,
        ob.c.next_attempt_at <= now,
        or_(ob.c.claimed_until.is_(None), ob.c.claimed_until < now),
        ob.c.target.in_(list(targets)),
        _first_of_call(),
    )


def claim(
    conn: Connection,
    worker: str,
    *,
    now: float,
    lease: float,
    limit: int,
    targets: Sequence[str],
) -> list[Claimed]:
    """Claim up to ``limit`` due rows of ``targets`` for ``worker`` until ``now + lease``,
    oldest first. Call it in a transaction of its own and commit at once."""
    if not targets or limit <= 0:
        return []
    inner = (
        select(ob.c.id)
        .where(_due(now, targets))
        .order_by(ob.c.id)
        .limit(limit)
        .with_for_update(skip_locked=True, of=ob)
    )
    stmt = (
        update(ob)
        .where(
            ob.c.id.in_(inner.scalar_subquery()),
            ob.c.state == PENDING,
            or_(ob.c.claimed_until.is_(None), ob.c.claimed_until < now),
        )
        .values(claimed_by=worker, claimed_until=now + lease)
        .returning(
            ob.c.id,
            ob.c.msg_id,
            ob.c.target,
            ob.c.call_id,
            ob.c.type,
            ob.c.body,
            ob.c.attempts,
            ob.c.created_at,
        )
    )
    rows = [Claimed(*row) for row in conn.execute(stmt)]
    rows.sort(key=lambda r: r.id)
    return rows


def _mine(row_id: int, worker: str) -> Any:
    # A worker whose lease ran out and was claimed again by another leaves the row to it.
    return and_(ob.c.id == row_id, ob.c.claimed_by == worker, ob.c.state == PENDING)


def delivered(conn: Connection, row_id: int, worker: str, *, now: float, status: int) -> bool:
    """Mark a claimed row delivered (its receiver answered 2xx)."""
    stmt = (
        update(ob)
        .where(_mine(row_id, worker))
        .values(
            state=DELIVERED,
            delivered_at=now,
            attempts=ob.c.attempts + 1,
            last_status=status,
            last_error=None,
            claimed_by=None,
            claimed_until=None,
        )
    )
    return bool(conn.execute(stmt).rowcount)


def delivered_many(
    conn: Connection, worker: str, done: Sequence[tuple[int, int]], *, now: float
) -> None:
    """Mark many claimed rows delivered, ``(id, status)`` each: one statement, many rows."""
    if not done:
        return
    stmt = (
        update(ob)
        .where(
            ob.c.id == bindparam("row_id"),
            ob.c.claimed_by == worker,
            ob.c.state == PENDING,
        )
        .values(
            state=DELIVERED,
            delivered_at=now,
            attempts=ob.c.attempts + 1,
            last_status=bindparam("status"),
            last_error=None,
            claimed_by=None,
            claimed_until=None,
        )
    )
    conn.execute(stmt, [{"row_id": i, "status": s} for i, s in done])


def failed(
    conn: Connection,
    row_id: int,
    worker: str,
    *,
    next_at: float,
    status: int | None,
    error: str,
    dead: bool = False,
) -> bool:
    """Count a failed attempt: retried at ``next_at``, or a dead letter (``dead``)."""
    stmt = (
        update(ob)
        .where(_mine(row_id, worker))
        .values(
            state=DEAD if dead else PENDING,
            attempts=ob.c.attempts + 1,
            next_attempt_at=next_at,
            last_status=status,
            last_error=error[:500],
            claimed_by=None,
            claimed_until=None,
        )
    )
    return bool(conn.execute(stmt).rowcount)


def release(conn: Connection, worker: str | None = None) -> int:
    """Drop the claims of ``worker`` (None: every claim: only where one daemon writes, as on
    SQLite) so their rows are due again at once; the number of rows."""
    stmt = update(ob).where(ob.c.state == PENDING, ob.c.claimed_by.is_not(None))
    if worker is not None:
        stmt = stmt.where(ob.c.claimed_by == worker)
    return conn.execute(stmt.values(claimed_by=None, claimed_until=None)).rowcount


def messages(
    conn: Connection,
    *,
    state: str | None = None,
    target: str | None = None,
    call_id: str | None = None,
    since: float | None = None,
    limit: int = 100,
    body: bool = False,
) -> list[dict[str, object]]:
    """Rows, newest first, filtered; without their bodies unless ``body``."""
    columns = [ob.c[name] for name in LIST_COLUMNS]
    if body:
        columns.append(ob.c.body)
    stmt = select(*columns).order_by(ob.c.id.desc()).limit(limit)
    stmt = _filtered(stmt, state=state, target=target, call_id=call_id, since=since)
    return [dict(row._mapping) for row in conn.execute(stmt)]


def message(conn: Connection, row_id: int) -> dict[str, object] | None:
    """One row with its body, or None."""
    rows = conn.execute(select(ob).where(ob.c.id == row_id)).all()
    return dict(rows[0]._mapping) if rows else None


def _filtered(
    stmt: Any,
    *,
    state: str | None = None,
    target: str | None = None,
    call_id: str | None = None,
    since: float | None = None,
) -> Any:
    if state is not None:
        stmt = stmt.where(ob.c.state == state)
    if target is not None:
        stmt = stmt.where(ob.c.target == target)
    if call_id is not None:
        stmt = stmt.where(ob.c.call_id == call_id)
    if since is not None:
        stmt = stmt.where(ob.c.created_at >= since)
    return stmt


def retry(
    conn: Connection,
    *,
    now: float,
    row_id: int | None = None,
    target: str | None = None,
    call_id: str | None = None,
) -> int:
    """Send dead (or failing) rows again now, attempts and age counted afresh; the number."""
    stmt = update(ob).where(ob.c.state.in_((DEAD, PENDING)))
    if row_id is not None:
        stmt = stmt.where(ob.c.id == row_id)
    stmt = _filtered(stmt, target=target, call_id=call_id)
    return _requeue(conn, stmt, now)


def replay(
    conn: Connection,
    *,
    now: float,
    call_id: str | None = None,
    since: float | None = None,
    target: str | None = None,
) -> int:
    """Send delivered rows again (the same ``webhook-id``: a receiver that drops ids it has
    seen drops them); the number."""
    if call_id is None and since is None:
        raise BridgeError("replay needs a call id or a time to replay from")
    stmt = update(ob).where(ob.c.state == DELIVERED)
    stmt = _filtered(stmt, target=target, call_id=call_id, since=since)
    return _requeue(conn, stmt, now)


def _requeue(conn: Connection, stmt: Any, now: float) -> int:
    values = {
        "state": PENDING,
        "attempts": 0,
        "created_at": now,  # max_age counts from here
        "next_attempt_at": now,
        "claimed_by": None,
        "claimed_until": None,
    }
    return conn.execute(stmt.values(values)).rowcount


def counts(conn: Connection) -> dict[str, dict[str, int]]:
    """Rows per target and state: {"crm": {"pending": 2, "delivered": 10, "dead": 0}}."""
    stmt = select(ob.c.target, ob.c.state, func.count()).group_by(ob.c.target, ob.c.state)
    out: dict[str, dict[str, int]] = {}
    for target, state, count in conn.execute(stmt):
        out.setdefault(target, dict.fromkeys(STATES, 0))[state] = count
    return out


def next_due(conn: Connection, targets: Sequence[str]) -> float | None:
    """When the earliest pending row of ``targets`` that is first of its call is due (or its
    claim expires, whichever is later), or None."""
    if not targets:
        return None
    when = case(
        (ob.c.claimed_until > ob.c.next_attempt_at, ob.c.claimed_until),
        else_=ob.c.next_attempt_at,
    )
    stmt = select(func.min(when)).where(
        ob.c.state == PENDING, ob.c.target.in_(list(targets)), _first_of_call()
    )
    value = conn.execute(stmt).scalar()
    return float(value) if value is not None else None
