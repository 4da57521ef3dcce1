"""What `webhooks list|retry|replay` and the webhook API routes do, on a store connection."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from microsip_bridge.errors import BridgeError, NotFoundError
from microsip_bridge.store import outbox as store

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from microsip_bridge.webhooks.targets import WebhookTarget

REPLAY_NOTE = (
    "replayed messages keep their webhook-id: a receiver that drops ids it has seen drops them"
)
MAX_LIMIT = 10_000


def overview(conn: Connection, targets: Sequence[WebhookTarget]) -> dict[str, object]:
    """The targets (never their secrets) with their messages per state; rows of targets no
    longer configured are listed too (they wait until the target is back)."""
    counts = store.counts(conn)
    zero = dict.fromkeys(store.STATES, 0)
    listed: list[dict[str, object]] = [
        {**t.public(), "configured": True, "messages": counts.get(t.name, zero)} for t in targets
    ]
    names = {t.name for t in targets}
    for name in sorted(set(counts) - names):
        listed.append(
            {"name": name, "url": None, "events": [], "configured": False, "messages": counts[name]}
        )
    totals = {s: sum(c.get(s, 0) for c in counts.values()) for s in store.STATES}
    return {"targets": listed, "totals": totals}


def list_messages(
    conn: Connection,
    *,
    state: str | None = None,
    target: str | None = None,
    call_id: str | None = None,
    limit: int = 50,
) -> list[dict[str, object]]:
    """Messages newest first (no bodies), filtered."""
    if state is not None and state not in store.STATES:
        raise BridgeError(f"state must be one of {', '.join(store.STATES)}, not {state!r}")
    if not 1 <= limit <= MAX_LIMIT:
        raise BridgeError(f"limit must be 1-{MAX_LIMIT}, not {limit}")
    return store.messages(conn, state=state, target=target, call_id=call_id, limit=limit)


def retry(
    conn: Connection,
    *,
    now: float,
    message: int | None = None,
    target: str | None = None,
) -> int:
    """Dead or failing messages due again now (one by id, or all of a target, or all)."""
    if message is not None:
        row = store.message(conn, message)
        if row is None:
            raise NotFoundError(f"no webhook message {message}")
        if row["state"] == store.DELIVERED:
            raise BridgeError(f"message {message} was delivered: replay it instead")
    return store.retry(conn, now=now, row_id=message, target=target)


def replay(
    conn: Connection,
    *,
    now: float,
    call_id: str | None = None,
    since: float | None = None,
    target: str | None = None,
) -> int:
    """Delivered messages sent again (same webhook-id: :data:`REPLAY_NOTE`)."""
    return store.replay(conn, now=now, call_id=call_id, since=since, target=target)
