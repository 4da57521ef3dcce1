"""The daemon's defences: the token file, the token check, the Host/Origin check, unread bodies.

* **Token.** ``<home>/token`` is created on the first start with ``secrets.token_urlsafe(32)``
  (256 random bits), readable by the user only (0600 on POSIX; on Windows the bridge's home is
  under ``%LOCALAPPDATA%``, which only the user and administrators can read). The hook and API
  clients send it as ``Authorization: Bearer <token>``; it is compared in constant time.
* **Host.** The daemon listens on loopback, but a web page can still reach loopback through DNS
  rebinding (``evil.example`` resolving to 127.0.0.1): the browser then sends
  ``Host: evil.example``. Requests whose Host is not a loopback name (or the configured host)
  are refused with 421, and so are state-changing requests whose ``Origin`` is not a loopback
  origin (CSRF from any page).
* **Bodies.** A response sent before its request's body was read whole (a 401 before the body,
  a 413 at the size limit, a 421) closes the connection: otherwise the server would go on
  reading, and throwing away, whatever the client still sends, a gigabyte or a body that never
  ends.
"""

from __future__ import annotations

import contextlib
import hmac
import logging
import os
import secrets
import stat
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from pathlib import Path
from typing import Any

from microsip_bridge.errors import BridgeError
from microsip_bridge.fileio import atomic_write
from microsip_bridge.wire import TOKEN_NAME

logger = logging.getLogger("microsip_bridge.daemon")

TOKEN_BYTES = 32
# token_urlsafe(32) gives 43 characters; a shorter file was cut short or written by hand.
MIN_TOKEN_CHARS = 32
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_TOKEN_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def token_path(home: Path) -> Path:
    return home / TOKEN_NAME


def valid_token(text: str) -> bool:
    """``text`` looks like a token we made (and cannot break a header line)."""
    return len(text) >= MIN_TOKEN_CHARS and set(text) <= _TOKEN_ALPHABET


def ensure_token(home: Path) -> str:
    """The daemon's token: read from ``<home>/token``, created (0600) on the first start.

    A damaged token file (empty, cut short, not our alphabet) is replaced, with a warning; a
    token file others may read is made private again. Raises BridgeError if it cannot be read
    or written.
    """
    path = token_path(home)
    try:
        home.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise BridgeError(f"cannot create the bridge's folder: {exc.strerror}", path=home) from None
    for _ in range(3):
        try:
            text = path.read_text("ascii", errors="replace").strip()
        except FileNotFoundError:
            token = secrets.token_urlsafe(TOKEN_BYTES)
            if _create_exclusive(path, token):
                logger.info("created the token file %s", path)
                return token
            continue  # another daemon made one at the same moment: read theirs
        except OSError as exc:
            raise BridgeError(f"cannot read the token: {exc.strerror}", path=path) from None
        if not valid_token(text):
            logger.warning("the token file %s is damaged; writing a new token", path)
            token = secrets.token_urlsafe(TOKEN_BYTES)
            atomic_write(path, token.encode("ascii") + b"\n", backups=0)
            _make_private(path)
            return token
        _make_private(path)
        return text
    raise BridgeError("the token file keeps changing under us", path=path)


def _create_exclusive(path: Path, token: str) -> bool:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags, 0o600)
    except FileExistsError:
        return False
    except OSError as exc:
        raise BridgeError(f"cannot create the token: {exc.strerror}", path=path) from None
    try:
        os.write(fd, token.encode("ascii") + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)
    return True


def _make_private(path: Path) -> None:
    if os.name != "posix":
        return
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        logger.warning("the token file %s was readable by others (%o); made it 0600", path, mode)
        with contextlib.suppress(OSError):
            path.chmod(0o600)


def tokens_equal(given: str, expected: str) -> bool:
    """Compare in constant time (no timing oracle on the token's prefix)."""
    return hmac.compare_digest(
        given.encode("utf-8", "surrogateescape"), expected.encode("utf-8", "surrogateescape")
    )


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, or None."""
    if not authorization:
        return None
    scheme, _, value = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return value.strip() or None


def host_name(host_header: str) -> str:
    """The host of a Host header without its port, lower-case: ``[::1]:80`` -> ``::1``."""
    host = host_header.strip().lower()
    if host.startswith("["):
        end = host.find("]")
        return host[1:end] if end > 0 else host
    if host.count(":") == 1:
        host = host.split(":", 1)[0]
    return host.rstrip(".")


def origin_host(origin: str) -> str | None:
    """The host of an Origin header (``scheme://host[:port]``); None for ``null`` or junk."""
    scheme, sep, rest = origin.strip().partition("://")
    if not sep or not scheme or not rest or "/" in rest:
        return None
    return host_name(rest)


class HostCheckMiddleware:
    """Refuse requests whose Host is not one of ``allowed`` (DNS rebinding), and state-changing
    requests or WebSockets from a web page of another origin (CSRF). ``allowed=None`` turns
    the Host check off (the daemon listens on every address; the token still guards)."""

    def __init__(self, app: ASGIApp, allowed: Iterable[str] | None) -> None:
        self.app = app
        self.allowed = None if allowed is None else frozenset(h.lower() for h in allowed)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            problem = self._problem(scope)
            if problem is not None:
                await _refuse(scope, send, problem)
                return
        await self.app(scope, receive, send)

    def _problem(self, scope: Scope) -> str | None:
        headers = {k.lower(): v for k, v in scope.get("headers", [])}
        if self.allowed is not None:
            host = headers.get(b"host", b"").decode("latin-1")
            if host_name(host) not in self.allowed:
                return "this daemon answers only to loopback host names (Host header refused)"
        origin = headers.get(b"origin")
        checks_origin = scope["type"] == "websocket" or scope.get("method") not in _SAFE_METHODS
        if origin is not None and checks_origin:
            name = origin_host(origin.decode("latin-1"))
            allowed = self.allowed if self.allowed is not None else LOOPBACK_HOSTS
            if name is None or name not in allowed:
                return "requests from web pages of other origins are refused (Origin header)"
        return None


async def _refuse(scope: Scope, send: Send, message: str) -> None:
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 1008, "reason": message[:120]})
        return
    body = ('{"detail":"' + message.replace('"', "'") + '"}').encode("utf-8")
    await send(
        {
            "type": "http.response.start",
            "status": 421,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode("ascii")),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class CloseUnreadBodyMiddleware:
    """Answer a request whose body was not read whole with ``Connection: close``, so that the
    server stops reading it (see the module docstring)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _has_body(scope):
            await self.app(scope, receive, send)
            return
        body_read = False

        async def tracked_receive() -> Message:
            nonlocal body_read
            message = await receive()
            if message["type"] == "http.request" and not message.get("more_body", False):
                body_read = True
            return message

        async def closing_send(message: Message) -> None:
            if message["type"] == "http.response.start" and not body_read:
                headers = [
                    (k, v) for k, v in message.get("headers", []) if k.lower() != b"connection"
                ]
                message = {**message, "headers": [*headers, (b"connection", b"close")]}
            await send(message)

        await self.app(scope, tracked_receive, closing_send)


def _has_body(scope: Scope) -> bool:
    # HTTP/1.1: a request has a body only with Transfer-Encoding or a non-zero Content-Length.
    for key, value in scope.get("headers", []):
        name = key.lower()
        if name == b"transfer-encoding" or (name == b"content-length" and value.strip(b" 0")):
            return True
    return False


def allowed_hosts(host: str) -> frozenset[str] | None:
    """The Host names to accept for a daemon listening on ``host`` (None: any, see above)."""
    from microsip_bridge.server.settings import WILDCARD_HOSTS

    if host in WILDCARD_HOSTS:
        return None
    return LOOPBACK_HOSTS | {host_name(host)}
