"""The first schema: the append-only event log and the calls table.

Revision ID: 0001
Revises:
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column(
            "cursor",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("uid", sa.String(64), nullable=False),
        sa.Column("event", sa.String(16), nullable=False),
        sa.Column("number", sa.Text(), nullable=False),
        sa.Column("fired_at", sa.Double(), nullable=False),
        sa.Column("received_at", sa.Double(), nullable=False),
        sa.Column("pid", sa.BigInteger(), nullable=True),
        sa.Column("source", sa.String(8), nullable=False),
        sa.Column("call_id", sa.String(40), nullable=True),
        sa.PrimaryKeyConstraint("cursor", name="pk_events"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_events_uid", "events", ["uid"], unique=True)
    op.create_index("ix_events_call_id", "events", ["call_id"])

    op.create_table(
        "calls",
        sa.Column("call_id", sa.String(40), nullable=False),
        sa.Column("direction", sa.String(16), nullable=False),
        sa.Column("number", sa.Text(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("outcome", sa.String(24), nullable=True),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("started_at", sa.Double(), nullable=False),
        sa.Column("answered_at", sa.Double(), nullable=True),
        sa.Column("ended_at", sa.Double(), nullable=True),
        sa.Column("duration", sa.Double(), nullable=True),
        sa.Column("rang", sa.Boolean(), nullable=False),
        sa.Column("auto_answered", sa.Boolean(), nullable=False),
        sa.Column("video", sa.Boolean(), nullable=False),
        sa.Column("microsip_key", sa.BigInteger(), nullable=True),
        sa.Column("microsip_time", sa.BigInteger(), nullable=True),
        sa.Column("microsip_type", sa.BigInteger(), nullable=True),
        sa.Column("microsip_info", sa.Text(), nullable=True),
        sa.Column("microsip_duration", sa.BigInteger(), nullable=True),
        sa.Column("disagreement", sa.Text(), nullable=True),
        sa.Column("source", sa.String(8), nullable=False),
        sa.Column("event_uids", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.Double(), nullable=False),
        sa.Column("open", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("call_id", name="pk_calls"),
    )
    op.create_index("ix_calls_open", "calls", ["open"])
    op.create_index("ix_calls_started_at", "calls", ["started_at"])
    op.create_index("ix_calls_number", "calls", ["number"])


def downgrade() -> None:
    op.drop_table("calls")
    op.drop_table("events")
