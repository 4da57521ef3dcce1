"""The daemon's guard against hostile clients: request deadlines, a connection cap, quiet logs.

uvicorn keeps a connection open for as long as its client takes to send a request: a few
thousand half-sent requests (a slow-loris attack, or a stuck tool) would hold every file
descriptor, after which the event loop logs a traceback for each failed ``accept()``. Here each
connection must deliver a whole request within :data:`REQUEST_TIMEOUT` of its first byte (idle
keep-alive connections are closed by uvicorn's own timeout), at most :data:`MAX_CONNECTIONS` are
open at once (more are closed at once, before they cost anything), the process's descriptor
limit is raised to what the system allows, and repeated log lines become one line per burst.

WebSockets that the API accepted (the event feed) are counted apart, against the feed's own cap
(:data:`MAX_WEBSOCKETS`): a thousand dashboards must not lock the hooks out. A WebSocket whose
client stops reading is cut :data:`CLOSE_GRACE` seconds after the app is done with it, instead
of waiting forever to deliver its close frame.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import time
import weakref
from typing import Any

import h11
from uvicorn._types import ASGISendEvent
from uvicorn.config import Config
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from uvicorn.server import ServerState

# A hook's request is a few hundred bytes on loopback: seconds are generous for any client.
REQUEST_TIMEOUT = 10.0
MAX_CONNECTIONS = 1024
# Event-feed WebSockets at once (calls/feed.py), on top of MAX_CONNECTIONS.
MAX_WEBSOCKETS = 2048
CLOSE_GRACE = 5.0
# Descriptors kept for the database, the logs, the spool and the event loop itself.
_FD_RESERVE = 64
# A log line repeated within this many seconds is counted, not written.
BURST_SECONDS = 10.0

logger = logging.getLogger("microsip_bridge.daemon")


def raise_fd_limit() -> int:
    """Raise the soft limit of open files to the hard limit (POSIX; Windows has no such limit
    on sockets); returns the connection cap that leaves room for the daemon's own files. The
    WebSocket cap (:data:`MAX_WEBSOCKETS`) gets what is left after it."""
    global MAX_CONNECTIONS, MAX_WEBSOCKETS
    if sys.platform != "win32":
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if hard == resource.RLIM_INFINITY or hard > 65536:
            hard = 65536
        if soft != resource.RLIM_INFINITY and soft < hard:
            try:
                resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
                soft = hard
            except (ValueError, OSError):
                pass
        if soft != resource.RLIM_INFINITY:
            MAX_CONNECTIONS = max(16, min(MAX_CONNECTIONS, soft - _FD_RESERVE))
            MAX_WEBSOCKETS = max(16, min(MAX_WEBSOCKETS, soft - _FD_RESERVE - MAX_CONNECTIONS))
    return MAX_CONNECTIONS


# WebSockets open per server (a process may run several, in tests): not counted as HTTP.
_websockets: weakref.WeakKeyDictionary[ServerState, int] = weakref.WeakKeyDictionary()


def open_websockets(state: ServerState) -> int:
    return _websockets.get(state, 0)


class GuardedH11Protocol(H11Protocol):
    """uvicorn's HTTP/1.1 protocol with a deadline for each request and a cap on connections."""

    request_timeout = REQUEST_TIMEOUT

    _deadline: asyncio.TimerHandle | None = None
    _refused = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        open_http = len(self.server_state.connections) - open_websockets(self.server_state)
        if open_http >= MAX_CONNECTIONS:
            # Closed before it is counted: a flood costs one accept() per connection.
            self._refused = True
            self.transport = transport
            transport.abort()
            logger.warning(
                "refused a connection: %d are open, the most this daemon serves at once",
                open_http,
            )
            return
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if self._refused:
            return
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._deadline is None and self.conn.their_state is h11.IDLE:
            self._arm()  # the first byte of the next request on a kept-alive connection
        super().data_received(data)

    def on_response_complete(self) -> None:
        self._disarm()
        super().on_response_complete()

    def handle_websocket_upgrade(self, event: h11.Request) -> None:
        self._disarm()  # a WebSocket lives as long as its client wants
        super().handle_websocket_upgrade(event)

    def _arm(self) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(self.request_timeout, self._expired)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        if self.conn.their_state in (h11.DONE, h11.MUST_CLOSE, h11.CLOSED):
            return  # the request arrived whole; the app is answering it
        logger.warning(
            "closed a connection that sent no whole request within %g s", self.request_timeout
        )
        self.transport.abort()


class GuardedWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's WebSocket protocol (the websockets package), counted apart from HTTP
    connections, and cut once the app is done with it and its client still has not closed."""

    _counted = False

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._server_state = server_state

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        state = self._state()
        _websockets[state] = _websockets.get(state, 0) + 1
        self._counted = True

    def connection_lost(self, exc: Exception | None) -> None:
        if self._counted:
            self._counted = False
            state = self._state()
            _websockets[state] = max(0, _websockets.get(state, 0) - 1)
        super().connection_lost(exc)

    async def send(self, message: ASGISendEvent) -> None:
        if message["type"] == "websocket.close" and not self.writable.is_set():
            # A client that stops reading holds the buffer above its high-water mark; the close
            # frame (with the cursor to reconnect with) goes behind what is buffered anyway,
            # instead of waiting for a drain that may never come. The write does not yield.
            self.writable.set()
            try:
                await super().send(message)
            finally:
                if self.transport.get_write_buffer_size() > 0 and not self.disconnected:
                    self.writable.clear()
            return
        await super().send(message)

    def on_task_complete(self, task: asyncio.Task[None]) -> None:
        super().on_task_complete(task)
        # The close frame may sit behind data the client never reads: give it a moment.
        self.loop.call_later(CLOSE_GRACE, self._cut)

    def _cut(self) -> None:
        if not self.disconnected:
            self.transport.abort()

    def _state(self) -> ServerState:
        return self._server_state


class BurstFilter(logging.Filter):
    """Let the first of a run of like log lines through, then count the rest: one line per
    burst (with how many were left out) instead of thousands, and no traceback for a repeat."""

    def __init__(self, seconds: float = BURST_SECONDS) -> None:
        super().__init__()
        self.seconds = seconds
        self._seen: dict[tuple[str, int, str], tuple[float, int]] = {}
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        key = (record.name, record.levelno, str(record.msg))
        now = time.monotonic()
        with self._lock:
            first, dropped = self._seen.get(key, (0.0, -1))
            if dropped >= 0 and now - first < self.seconds:
                self._seen[key] = (first, dropped + 1)
                return False
            self._seen[key] = (now, 0)
            if len(self._seen) > 1000:  # forget old bursts
                self._seen = {k: v for k, v in self._seen.items() if now - v[0] < self.seconds}
        if dropped > 0:
            record.msg = f"{record.msg} (and {dropped} more like it in {self.seconds:g} s)"
        return True
