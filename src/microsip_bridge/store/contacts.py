"""The bridge's own contacts (table bridge_contacts): one row per name and number, as imported."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import delete, func, insert, select
from sqlalchemy.engine import Connection

from microsip_bridge.store.schema import bridge_contacts


@dataclass(frozen=True, slots=True)
class BridgeContact:
    """One row: a name for one number. ``number_key`` is the number normalised
    (numbers.Number.key), what lookups and deduplication compare; ``source`` names the file
    it came from."""

    name: str
    number: str
    number_key: str
    organization: str = ""
    source: str = ""
    added_at: float = 0.0
    id: int = 0

    def as_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "name": self.name,
            "number": self.number,
            "number_key": self.number_key,
            "organization": self.organization,
            "source": self.source,
            "added_at": self.added_at,
        }


_COLUMNS = (
    bridge_contacts.c.name,
    bridge_contacts.c.number,
    bridge_contacts.c.number_key,
    bridge_contacts.c.organization,
    bridge_contacts.c.source,
    bridge_contacts.c.added_at,
    bridge_contacts.c.id,
)


def insert_contacts(conn: Connection, rows: Sequence[BridgeContact]) -> int:
    """Add ``rows`` (their ``id`` is ignored); returns how many."""
    if not rows:
        return 0
    conn.execute(
        insert(bridge_contacts),
        [
            {
                "name": r.name,
                "number": r.number,
                "number_key": r.number_key,
                "organization": r.organization,
                "source": r.source,
                "added_at": r.added_at,
            }
            for r in rows
        ],
    )
    return len(rows)


def list_contacts(conn: Connection) -> list[BridgeContact]:
    """Every row, in the order they were added."""
    query = select(*_COLUMNS).order_by(bridge_contacts.c.id)
    return [BridgeContact(*row) for row in conn.execute(query)]


def known_keys(conn: Connection) -> set[str]:
    """The number keys the table holds: what an import deduplicates against."""
    return {str(k) for (k,) in conn.execute(select(bridge_contacts.c.number_key).distinct())}


def delete_contacts(conn: Connection, source: str | None = None) -> int:
    """Delete the rows imported from ``source`` (None: every row); returns how many."""
    query = delete(bridge_contacts)
    if source is not None:
        query = query.where(bridge_contacts.c.source == source)
    return int(conn.execute(query).rowcount or 0)


def signature(conn: Connection) -> tuple[int, int]:
    """(row count, highest id): changes whenever rows are added or deleted, cheap to ask for
    (the daemon polls it to know when to rebuild its index)."""
    row = conn.execute(select(func.count(), func.coalesce(func.max(bridge_contacts.c.id), 0))).one()
    return int(row[0]), int(row[1])
