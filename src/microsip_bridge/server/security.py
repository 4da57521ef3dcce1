"""The daemon's defences: the token file, the token check, the Host check, unread bodies.

* **Token.** ``<home>/token`` is created on the first start with ``secrets.token_urlsafe(32)``
  (256 random bits), readable by the user only (0600 on POSIX; on Windows the bridge's home is
  under ``%LOCALAPPDATA%``, which only the user and administrators can read). The hook and API
  clients send it as ``Authorization: Bearer <token>``; it is compared in constant time.
* **Host.** The daemon listens on loopback, but a web page can still reach loopback through DNS
  rebinding (``evil.example`` resolving to 127.0.0.1): the browser then sends
  ``Host: evil.example``. Requests and WebSockets whose Host is not a loopback name, the address
  the daemon listens on or a name of the ``allowed_hosts`` setting are refused with 421. A
  public daemon also accepts a Host that is an IP address: DNS rebinding needs a name. Which
  web pages may call the API (the Origin header) is :mod:`.cors`'s job.
* **Bodies.** A response sent before its request's body was read whole (a 401 before the body,
  a 413 at the size limit, a 421) closes the connection: otherwise the server would go on
  reading, and throwing away, whatever the client still sends, a gigabyte or a body that never
  ends.
"""

from __future__ import annotations

import contextlib
import hmac
import ipaddress
import json
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


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an address, IPv6 with or without brackets) is loopback."""
    name = host.strip().lower().strip("[]").rstrip(".")
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def is_ip_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def split_list(text: str) -> list[str]:
    """The items of a comma-separated setting (``allowed_hosts``, ``allowed_origins``)."""
    return [item.strip() for item in text.replace(" ", ",").split(",") if item.strip()]


class HostCheckMiddleware:
    """Refuse HTTP requests and WebSockets whose Host is not one of ``allowed`` (DNS rebinding)
    with 421; ``ip_addresses``: accept any Host that is an IP address too (a public daemon, which
    clients reach by the addresses of its machine)."""

    def __init__(self, app: ASGIApp, allowed: Iterable[str], *, ip_addresses: bool = False) -> None:
        self.app = app
        self.allowed = frozenset(host_name(h) for h in allowed)
        self.ip_addresses = ip_addresses

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and not self.accepts(header(scope, b"host")):
            await refuse(
                scope,
                send,
                421,
                "this daemon answers only to its own host names (Host header refused)",
            )
            return
        await self.app(scope, receive, send)

    def accepts(self, host_header: str | None) -> bool:
        """Whether a request naming ``host_header`` is for this daemon."""
        if host_header is None:
            return False
        name = host_name(host_header)
        return name in self.allowed or (self.ip_addresses and is_ip_address(name))


def header(scope: Scope, name: bytes) -> str | None:
    """The first ``name`` header (lower-case bytes) of an ASGI scope, or None."""
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


async def refuse(scope: Scope, send: Send, status: int, message: str) -> None:
    """Answer ``status`` with ``{"detail": message}`` before the app sees the request; a
    WebSocket handshake gets the same HTTP answer when the server can send one (uvicorn can),
    else it is closed before it is accepted (the client then sees a 403)."""
    body = json.dumps({"detail": message}).encode("utf-8")
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode("ascii")),
    ]
    if scope["type"] == "websocket":
        if "websocket.http.response" not in scope.get("extensions", {}):
            await send({"type": "websocket.close", "code": 1008, "reason": message[:120]})
            return
        prefix = "websocket.http.response"
    else:
        prefix = "http.response"
    await send({"type": f"{prefix}.start", "status": status, "headers": headers})
    await send({"type": f"{prefix}.body", "body": body})


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


def allowed_hosts(host: str, extra: Iterable[str] = ()) -> frozenset[str]:
    """The Host names to accept for a daemon listening on ``host``: loopback, ``host`` itself
    (unless it is every address) and ``extra`` (the ``allowed_hosts`` setting)."""
    from microsip_bridge.server.settings import WILDCARD_HOSTS

    names = set(LOOPBACK_HOSTS) | {host_name(h) for h in extra}
    if host not in WILDCARD_HOSTS:
        names.add(host_name(host))
    return frozenset(names)
