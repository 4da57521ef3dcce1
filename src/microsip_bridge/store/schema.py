"""The database schema as SQLAlchemy Core tables (events, calls, webhook outbox, contacts, purges).

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
    # Where ``name`` came from (microsip, bridge, crm; empty: no name).
    Column("name_source", String(16), nullable=False, server_default=""),
    # numbers.Number.key of ``number`` (E.164 for phone numbers): the API's number filter.
    Column("number_key", Text, nullable=False, server_default=""),
    # The Transition values fired for the call, in order; NULL for calls stored before they
    # existed (migration 0003), which fire none for what they already are.
    Column("transitions", JSON, nullable=True),
    Index("ix_calls_open", "open"),
    # The call id breaks ties in every listing: with it in the index, a page of the newest (or
    # the next) calls is read from the index in order, never sorted from the whole table.
    Index("ix_calls_started_at", "started_at", "call_id"),
    Index("ix_calls_number", "number"),
    # The sweep asks whether a [Calls] entry (time, slot) is linked to a call already, for the
    # new entries only: a lookup, not a scan of the calls. The time first: it nearly names the
    # entry on its own, so one statement with a list of times serves any number of entries.
    Index("ix_calls_microsip_entry", "microsip_time", "microsip_key"),
    Index("ix_calls_number_key", "number_key"),
)

# The webhooks' transactional outbox: a row is written in the same transaction as the event it
# reports, then sent (and retried) by the delivery worker until delivered or dead.
webhook_outbox = Table(
    "webhook_outbox",
    metadata,
    Column("id", CursorType, primary_key=True, autoincrement=True),
    # The Standard Webhooks ``webhook-id``: the same for every attempt, the receiver's
    # idempotency key.
    Column("msg_id", String(64), nullable=False),
    Column("target", String(100), nullable=False),  # the [[webhooks]] name
    Column("call_id", String(40), nullable=True),
    Column("type", String(40), nullable=False),  # call.ringing...
    Column("body", Text, nullable=False),  # the JSON sent, fixed when the row is written
    Column("created_at", Double, nullable=False),
    Column("next_attempt_at", Double, nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("state", String(12), nullable=False),  # pending, delivered, dead
    Column("claimed_by", String(64), nullable=True),
    Column("claimed_until", Double, nullable=True),
    Column("last_status", Integer, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("delivered_at", Double, nullable=True),
    Index("ix_webhook_outbox_msg_id", "msg_id", unique=True),
    Index("ix_webhook_outbox_due", "state", "next_attempt_at"),
    Index("ix_webhook_outbox_call", "target", "call_id", "id"),
    sqlite_autoincrement=True,
)

# The bridge's own contacts (imported from CSV or vCard files), one row per number: a source
# of caller names besides MicroSIP's Contacts.xml.
bridge_contacts = Table(
    "bridge_contacts",
    metadata,
    Column("id", CursorType, primary_key=True, autoincrement=True),
    Column("name", Text, nullable=False),
    Column("number", Text, nullable=False),  # as the file had it
    Column("number_key", Text, nullable=False),  # numbers.Number.key: what lookups compare
    Column("organization", Text, nullable=False, server_default=""),
    Column("source", Text, nullable=False),  # the file it was imported from
    Column("added_at", Double, nullable=False),
    Index("ix_bridge_contacts_number_key", "number_key"),
    sqlite_autoincrement=True,
)

# The [Calls] entries of purged calls (store/purge.py), by time and slot and nothing else: the
# sweep must not import a purged call again from MicroSIP's history at the next start. A NULL
# key stands for a call never linked to a slot: any entry of that second is skipped.
purged_entries = Table(
    "purged_entries",
    metadata,
    Column("id", CursorType, primary_key=True, autoincrement=True),
    Column("microsip_time", BigInteger, nullable=False),
    Column("microsip_key", BigInteger, nullable=True),
    Column("purged_at", Double, nullable=False),
    Index("ix_purged_entries_microsip_time", "microsip_time"),
    sqlite_autoincrement=True,
)
