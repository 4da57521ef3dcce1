"""The database schema as SQLAlchemy Core tables: the event log and the calls, for both databases.

The migrations in ``migrations/versions`` must build exactly this schema; a test compares the two
with Alembic's autogenerate on both databases, so a change here needs a new migration.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Double,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

# Deterministic constraint names: Alembic's batch mode rebuilds SQLite tables by name, and a
# later migration can only drop a constraint it can name.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_name)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)

# SQLite gives a primary key its rowid behaviour (and AUTOINCREMENT) only when it is spelt
# INTEGER; PostgreSQL needs 64 bits for an event log that may outlive 2**31 events.
CursorType = BigInteger().with_variant(Integer(), "sqlite")

events = Table(
    "events",
    metadata,
    # The API replays the log from this cursor. AUTOINCREMENT on SQLite: a cursor is never
    # reused, even for the highest row if it were ever deleted.
    Column("cursor", CursorType, primary_key=True, autoincrement=True),
    Column("uid", String(64), nullable=False),
    Column("event", String(16), nullable=False),
    Column("number", Text, nullable=False),
    Column("fired_at", Double, nullable=False),
    Column("received_at", Double, nullable=False),
    # Windows pids are DWORDs: they do not always fit a signed 32-bit column.
    Column("pid", BigInteger, nullable=True),
    Column("source", String(8), nullable=False),
    # No foreign key: the log records an event before the state model has placed it in a call,
    # and it must never refuse an event because of the calls table.
    Column("call_id", String(40), nullable=True),
    Index("ix_events_uid", "uid", unique=True),
    Index("ix_events_call_id", "call_id"),
    sqlite_autoincrement=True,
)

calls = Table(
    "calls",
    metadata,
    Column("call_id", String(40), primary_key=True),
    Column("direction", String(16), nullable=False),
    Column("number", Text, nullable=False),
    Column("state", String(16), nullable=False),
    Column("outcome", String(24), nullable=True),
    Column("name", Text, nullable=False),
    Column("started_at", Double, nullable=False),
    Column("answered_at", Double, nullable=True),
    Column("ended_at", Double, nullable=True),
    Column("duration", Double, nullable=True),
    Column("rang", Boolean, nullable=False),
    Column("auto_answered", Boolean, nullable=False),
    Column("video", Boolean, nullable=False),
    Column("microsip_key", BigInteger, nullable=True),
    # The [Calls] entry's own time (Unix seconds): with the key it names one entry of the ring,
    # whose keys are reused every 1000 calls (facts §5).
    Column("microsip_time", BigInteger, nullable=True),
    Column("microsip_type", BigInteger, nullable=True),
    Column("microsip_info", Text, nullable=True),
    Column("microsip_duration", BigInteger, nullable=True),
    Column("disagreement", Text, nullable=True),
    Column("source", String(8), nullable=False),
    # The uids of the events applied to the call, in the order they were applied: the state
    # model's idempotence after a restart depends on the exact list.
    Column("event_uids", JSON, nullable=False),
    Column("updated_at", Double, nullable=False),
    # Derived from ``state``; indexed so that the daemon loads the open calls at start cheaply.
    Column("open", Boolean, nullable=False),
    Index("ix_calls_open", "open"),
    # The call id breaks ties in every listing: with it in the index, a page of the newest (or
    # the next) calls is read from the index in order, never sorted from the whole table.
    Index("ix_calls_started_at", "started_at", "call_id"),
    Index("ix_calls_number", "number"),
    # The sweep asks whether a [Calls] entry (time, slot) is linked to a call already, for the
    # new entries only: a lookup, not a scan of the calls. The time first: it nearly names the
    # entry on its own, so one statement with a list of times serves any number of entries.
    Index("ix_calls_microsip_entry", "microsip_time", "microsip_key"),
)
