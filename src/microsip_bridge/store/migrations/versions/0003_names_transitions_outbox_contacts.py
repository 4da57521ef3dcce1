"""Caller names' sources, normalised numbers and fired transitions on calls; the webhook outbox;
the bridge's own contacts; the [Calls] entries of purged calls.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CursorType = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("calls") as batch:
        batch.add_column(sa.Column("name_source", sa.String(16), nullable=False, server_default=""))
        batch.add_column(sa.Column("number_key", sa.Text(), nullable=False, server_default=""))
        # NULL for the calls stored until now: they fire no transition for what they are.
        batch.add_column(sa.Column("transitions", sa.JSON(), nullable=True))
    op.create_index("ix_calls_number_key", "calls", ["number_key"])
    op.create_table(
        "webhook_outbox",
        sa.Column("id", CursorType, primary_key=True, autoincrement=True),
        sa.Column("msg_id", sa.String(64), nullable=False),
        sa.Column("target", sa.String(100), nullable=False),
        sa.Column("call_id", sa.String(40), nullable=True),
        sa.Column("type", sa.String(40), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("next_attempt_at", sa.Double(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("state", sa.String(12), nullable=False),
        sa.Column("claimed_by", sa.String(64), nullable=True),
        sa.Column("claimed_until", sa.Double(), nullable=True),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("delivered_at", sa.Double(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_webhook_outbox"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_webhook_outbox_msg_id", "webhook_outbox", ["msg_id"], unique=True)
    op.create_index("ix_webhook_outbox_due", "webhook_outbox", ["state", "next_attempt_at"])
    op.create_index("ix_webhook_outbox_call", "webhook_outbox", ["target", "call_id", "id"])
    op.create_table(
        "bridge_contacts",
        sa.Column("id", CursorType, primary_key=True, autoincrement=True),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("number", sa.Text(), nullable=False),
        sa.Column("number_key", sa.Text(), nullable=False),
        sa.Column("organization", sa.Text(), nullable=False, server_default=""),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("added_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_bridge_contacts"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_bridge_contacts_number_key", "bridge_contacts", ["number_key"])
    op.create_table(
        "purged_entries",
        sa.Column("id", CursorType, primary_key=True, autoincrement=True),
        sa.Column("microsip_time", sa.BigInteger(), nullable=False),
        sa.Column("microsip_key", sa.BigInteger(), nullable=True),
        sa.Column("purged_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_purged_entries"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_purged_entries_microsip_time", "purged_entries", ["microsip_time"])


def downgrade() -> None:
    op.drop_index("ix_purged_entries_microsip_time", table_name="purged_entries")
    op.drop_table("purged_entries")
    op.drop_index("ix_bridge_contacts_number_key", table_name="bridge_contacts")
    op.drop_table("bridge_contacts")
    op.drop_index("ix_webhook_outbox_call", table_name="webhook_outbox")
    op.drop_index("ix_webhook_outbox_due", table_name="webhook_outbox")
    op.drop_index("ix_webhook_outbox_msg_id", table_name="webhook_outbox")
    op.drop_table("webhook_outbox")
    op.drop_index("ix_calls_number_key", table_name="calls")
    with op.batch_alter_table("calls") as batch:
        batch.drop_column("transitions")
        batch.drop_column("number_key")
        batch.drop_column("name_source")
