"""The webhooks over HTTP: targets and counts, messages, retry, replay, a test message."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Annotated, Any

import anyio.to_thread
from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel

from microsip_bridge.errors import NotFoundError
from microsip_bridge.server.auth import require_auth
from microsip_bridge.server.params import read_store
from microsip_bridge.webhooks import admin
from microsip_bridge.webhooks.outbox import OutboxPart
from microsip_bridge.webhooks.targets import WebhookTarget
from microsip_bridge.webhooks.worker import send_test

router = APIRouter(prefix="/api/v1", dependencies=[Depends(require_auth)], tags=["webhooks"])


class Replay(BaseModel):
    """Which delivered messages to send again: those of a call, or since a time (Unix s)."""

    call_id: str | None = None
    since: float | None = None
    target: str | None = None


def _part(request: Request) -> OutboxPart | None:
    actions = request.app.state.actions
    for part in getattr(actions, "parts", ()):
        if isinstance(part, OutboxPart):
            return part
    return None


def _targets(request: Request) -> Sequence[WebhookTarget]:
    part = _part(request)
    return part.targets() if part is not None else ()


def _wake(request: Request) -> None:
    part = _part(request)
    if part is not None and part.worker is not None:
        part.worker.wake()


def _write(request: Request, job: Any) -> Any:
    engine = request.app.state.engine

    def run() -> Any:
        with engine.begin() as conn:
            return job(conn)

    return run


@router.get("/webhooks")
async def webhooks(request: Request) -> dict[str, Any]:
    """The [[webhooks]] targets (never their secrets) with their messages per state."""
    targets = _targets(request)
    engine = request.app.state.engine
    return await anyio.to_thread.run_sync(
        read_store, engine, lambda conn: admin.overview(conn, targets)
    )


@router.get("/webhooks/messages")
async def messages(
    request: Request,
    state: Annotated[str | None, Query(description="pending, delivered or dead")] = None,
    target: str | None = None,
    call_id: str | None = None,
    limit: Annotated[int, Query(ge=1, le=admin.MAX_LIMIT)] = 50,
) -> dict[str, Any]:
    """Outbox messages, newest first (without their bodies)."""
    engine = request.app.state.engine

    def query(conn: Any) -> list[dict[str, object]]:
        return admin.list_messages(conn, state=state, target=target, call_id=call_id, limit=limit)

    return {"messages": await anyio.to_thread.run_sync(read_store, engine, query)}


@router.post("/webhooks/messages/{message_id}/retry")
async def retry(request: Request, message_id: int) -> dict[str, Any]:
    """Send a dead (or failing) message again now, its attempts counted afresh."""
    now = time.time()
    count = await anyio.to_thread.run_sync(
        _write(request, lambda conn: admin.retry(conn, now=now, message=message_id))
    )
    _wake(request)
    return {"retried": count}


@router.post("/webhooks/replay")
async def replay(request: Request, body: Replay) -> dict[str, Any]:
    """Send delivered messages again (of a call, or since a time): the same webhook-id."""
    now = time.time()

    def job(conn: Any) -> int:
        return admin.replay(
            conn, now=now, call_id=body.call_id, since=body.since, target=body.target
        )

    count = await anyio.to_thread.run_sync(_write(request, job))
    _wake(request)
    return {"replayed": count, "note": admin.REPLAY_NOTE}


@router.post("/webhooks/{name}/test")
async def test(request: Request, name: str) -> dict[str, Any]:
    """Send a signed webhook.test message to the target now; the receiver's answer."""
    found = [t for t in _targets(request) if t.name == name]
    if not found:
        raise NotFoundError(f"no [[webhooks]] target named {name!r}")
    timeout = float(request.app.state.settings.webhook_timeout)
    outcome = await anyio.to_thread.run_sync(lambda: send_test(found[0], timeout=timeout))
    return {"target": name, "ok": outcome.ok, "status": outcome.status, "error": outcome.error}
