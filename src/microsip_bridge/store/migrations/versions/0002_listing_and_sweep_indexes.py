"""Indexes for reading the calls in pages and for the sweep's look-ups of [Calls] entries.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # (started_at, call_id): the order every listing uses, so a page is read from the index in
    # order instead of sorting the whole table; it replaces the index on started_at alone.
    op.drop_index("ix_calls_started_at", table_name="calls")
    op.create_index("ix_calls_started_at", "calls", ["started_at", "call_id"])
    # (time, slot) names one [Calls] entry: the sweep looks up its new entries by it.
    op.create_index("ix_calls_microsip_entry", "calls", ["microsip_time", "microsip_key"])


def downgrade() -> None:
    op.drop_index("ix_calls_microsip_entry", table_name="calls")
    op.drop_index("ix_calls_started_at", table_name="calls")
    op.create_index("ix_calls_started_at", "calls", ["started_at"])
