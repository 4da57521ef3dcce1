"""``WS /api/v1/events/ws``: the event log over a WebSocket, replayed from a cursor, then live.

* **Auth** before the upgrade is accepted: the API token (``Authorization: Bearer``), as every
  route; without it the handshake is answered 401 and no event is ever sent. The Host and Origin
  checks (security.py) refuse forged hosts and foreign web pages before this runs.
* **Messages**: one JSON object each, the event as `microsip-bridge events --format json`
  prints it plus ``"call"`` (calls/feed.py). Clients send nothing; what they send is ignored.
* **Cursors**: ``?after=N`` first sends every stored event after cursor N, oldest first, then
  the live ones; without ``after``, live events only. Cursors strictly increase: a client that
  reconnects with the last cursor it got misses nothing and sees nothing twice.
* **Replay without gaps**: subscribe to the live feed first, then page through the store after
  N, then send the live messages, skipping the cursors the store already gave.
* **Close codes**: 1001 the daemon stops; 1013 too many clients; 4000 the client fell behind
  (its queue overflowed); 4400 ``after`` is not a cursor; 4409 ``after`` is past the end of the
  log (another database, or one reset); 1011 the store failed. Every reason that calls for a
  reconnect names the cursor to reconnect with.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import anyio.to_thread
from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from fastapi.responses import JSONResponse
from sqlalchemy.engine import Engine

from microsip_bridge.calls.feed import EventHub, FeedFull, Message, Subscription, replay_page
from microsip_bridge.server import auth

logger = logging.getLogger("microsip_bridge.daemon")

EVENTS_WS_PATH = "/api/v1/events/ws"
# Events read from the store per query while replaying.
REPLAY_PAGE = 500
# Seconds a closing handshake may take before the connection is left to the server to cut.
CLOSE_TIMEOUT = 2.0
MAX_CURSOR = 2**63 - 1

CLOSE_STOPPING = 1001
CLOSE_STORE = 1011
CLOSE_FULL = 1013
CLOSE_BEHIND = 4000
CLOSE_BAD_AFTER = 4400
CLOSE_PAST_END = 4409

router = APIRouter()


class _Close(Exception):
    """End the WebSocket with ``code`` and ``reason``."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def parse_after(text: str | None) -> int | None:
    """``after`` as a cursor (None: not given); ValueError saying what is wrong."""
    if text is None:
        return None
    if not (text.isascii() and text.isdigit()) or int(text) > MAX_CURSOR:
        raise ValueError(f"after must be a cursor (an integer from 0 to {MAX_CURSOR})")
    return int(text)


def _reconnect(reason: str, last: int | None) -> str:
    # A close reason is at most 123 bytes: the cursor is what matters in it.
    hint = f"reconnect with after={last}" if last is not None else "reconnect"
    return f"{reason}; {hint}"


@router.websocket(EVENTS_WS_PATH)
async def events_ws(websocket: WebSocket) -> None:
    """Every event after ``?after=N``, then live ones (see the module docstring)."""
    if not auth.authorized(websocket):
        await websocket.send_denial_response(
            JSONResponse({"detail": auth.UNAUTHORIZED}, 401, headers={"WWW-Authenticate": "Bearer"})
        )
        return
    hub: EventHub = websocket.app.state.feed
    engine: Engine = websocket.app.state.engine
    await websocket.accept()
    try:
        after = parse_after(websocket.query_params.get("after"))
    except ValueError as exc:
        await _close(websocket, CLOSE_BAD_AFTER, str(exc))
        return
    try:
        sub = hub.subscribe()
    except FeedFull as exc:
        await _close(websocket, CLOSE_FULL, f"{exc}; try again later")
        return
    progress = _Progress(after)
    pump = asyncio.ensure_future(_pump(websocket, engine, sub, progress))
    listen = asyncio.ensure_future(_until_disconnect(websocket))
    ended = asyncio.ensure_future(sub.ended.wait())
    try:
        await asyncio.wait({pump, listen, ended}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        sub.close()
        for task in (pump, listen, ended):
            task.cancel()
        await asyncio.gather(pump, listen, ended, return_exceptions=True)
    if listen.done() and not listen.cancelled():
        return  # the client left
    failure = pump.exception() if pump.done() and not pump.cancelled() else None
    if isinstance(failure, WebSocketDisconnect):
        return  # the client left while it was being sent to
    if isinstance(failure, _Close):
        close = failure
    elif sub.end_code is not None:
        close = _Close(sub.end_code, _reconnect(sub.end_reason, progress.last))
    elif failure is not None:
        logger.error("the event feed of a client failed: %s", failure)
        close = _Close(CLOSE_STORE, _reconnect("the daemon failed", progress.last))
    else:
        close = _Close(1000, "")
    await _close(websocket, close.code, close.reason)


class _Progress:
    """The last cursor a client was sent (``after`` before any): what it reconnects with."""

    def __init__(self, after: int | None) -> None:
        self.last = after


async def _pump(
    websocket: WebSocket, engine: Engine, sub: Subscription, progress: _Progress
) -> None:
    """Send the replay, then the live messages, until the subscription ends."""
    after = progress.last
    if after is not None:
        position = after
        while True:
            try:
                page = await anyio.to_thread.run_sync(_read_page, engine, position)
            except Exception as exc:
                logger.error("the event feed could not read the store: %s", exc)
                raise _Close(CLOSE_STORE, _reconnect("the store failed", position)) from None
            for cursor, text in page:
                await websocket.send_text(text)
                progress.last = position = cursor
            if len(page) < REPLAY_PAGE:
                break
        if after > 0 and position == after:
            end = await anyio.to_thread.run_sync(_max_cursor, engine)
            if after > end:
                raise _Close(
                    CLOSE_PAST_END,
                    f"after={after} is past the end of this event log ({end}); "
                    "reconnect with after=0",
                )
    while True:
        message: Message | None = await sub.get()
        if message is None:
            return
        cursor, text = message
        if progress.last is not None and cursor <= progress.last:
            continue  # the store gave it already
        await websocket.send_text(text)
        progress.last = cursor


def _read_page(engine: Engine, after: int) -> list[Message]:
    with engine.connect() as conn:
        return replay_page(conn, after, REPLAY_PAGE)


def _max_cursor(engine: Engine) -> int:
    from microsip_bridge.store import repo

    with engine.connect() as conn:
        return repo.max_cursor(conn)


async def _until_disconnect(websocket: WebSocket) -> None:
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return


async def _close(websocket: WebSocket, code: int, reason: str) -> None:
    encoded = reason.encode("utf-8")[:123]
    text = encoded.decode("utf-8", "ignore")
    # A client that does not read would hold the close forever: the server cuts it later.
    with contextlib.suppress(Exception):
        await asyncio.wait_for(websocket.close(code, text), CLOSE_TIMEOUT)
