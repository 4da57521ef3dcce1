"""Which web pages may use the API: the Origin allow-list, CORS and Private Network Access answers.

A browser names the page behind every cross-origin request, every POST and every WebSocket in
the ``Origin`` header, and a page cannot forge it. A request that carries an Origin not on the
allow-list is refused with 403 whatever its method (a GET can leak the call log as well as a
POST can dial), and so is a WebSocket handshake (cross-site WebSocket hijacking: browsers send
cookies with it and apply no same-origin rule). Requests without an Origin (the hook, the CLI,
curl, a link followed in the address bar) pass: the token or the session cookie guards them.

The allow-list is the daemon's own origins (``http://127.0.0.1:PORT``, ``http://localhost:PORT``,
``http://[::1]:PORT``, and ``http://<the Host of the request>``, which is the dashboard's origin
on a public daemon) plus the ``allowed_origins`` setting. Only allowed origins get CORS headers
(``Access-Control-Allow-Origin`` naming them, with credentials, never ``*``) and an answer to a
preflight, including Chrome's Private Network Access one
(``Access-Control-Request-Private-Network: true``), without which Chrome lets no public web page
reach a daemon on loopback.
"""

from __future__ import annotations

from collections.abc import Iterable

from microsip_bridge.server.security import (
    ASGIApp,
    Message,
    Receive,
    Scope,
    Send,
    header,
    refuse,
)

_DEFAULT_PORTS = {"http": 80, "https": 443}
ALLOWED_METHODS = "GET, HEAD, POST, PUT, PATCH, DELETE"
ALLOWED_HEADERS = "Authorization, Content-Type"
PREFLIGHT_MAX_AGE = 600  # seconds a browser may keep a preflight's answer


def normalize_origin(origin: str) -> str | None:
    """``origin`` as ``scheme://host:port`` (lower-case, the port always written, IPv6 in
    brackets), or None when it is not an origin (``null``, a path, junk)."""
    scheme, sep, rest = origin.strip().partition("://")
    scheme = scheme.lower()
    if not sep or scheme not in _DEFAULT_PORTS or not rest or "/" in rest or "@" in rest:
        return None
    if rest.startswith("["):
        end = rest.find("]")
        if end < 0 or rest[end + 1 : end + 2] not in ("", ":"):
            return None
        host, port_text = rest[1:end], rest[end + 2 :]
    else:
        host, _, port_text = rest.partition(":")
    host = host.lower().rstrip(".")
    if not host or any(c in host for c in "[]/?#\\ "):
        return None
    if port_text and not (port_text.isdigit() and 0 < int(port_text[:6]) < 65536):
        return None
    port = int(port_text) if port_text else _DEFAULT_PORTS[scheme]
    shown = f"[{host}]" if ":" in host else host
    return f"{scheme}://{shown}:{port}"


def own_origins(port: int) -> frozenset[str]:
    """The origins of the daemon's own pages on ``port`` by its loopback names."""
    found = (normalize_origin(f"http://{h}:{port}") for h in ("127.0.0.1", "localhost", "[::1]"))
    return frozenset(o for o in found if o is not None)


class OriginMiddleware:
    """Refuse requests and WebSockets from pages of origins not in ``allowed`` (see the module
    docstring) with 403; give the allowed ones CORS headers and answer their preflights."""

    def __init__(self, app: ASGIApp, allowed: Iterable[str]) -> None:
        self.app = app
        self.allowed = frozenset(o for o in map(normalize_origin, allowed) if o is not None)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        origin = header(scope, b"origin")
        if origin is None:
            await self.app(scope, receive, send)
            return
        if not self.allows(origin, header(scope, b"host")):
            shown = origin[:100].encode("ascii", "replace").decode("ascii")
            await refuse(
                scope,
                send,
                403,
                f"requests from web pages of other origins are refused (Origin: {shown})",
            )
            return
        if scope["type"] == "http" and _is_preflight(scope):
            await _answer_preflight(scope, send, origin)
            return
        if scope["type"] == "websocket":
            await self.app(scope, receive, send)
            return

        async def with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (k, v)
                    for k, v in message.get("headers", [])
                    if not k.lower().startswith(b"access-control-allow-")
                ]
                message = {**message, "headers": [*headers, *_cors_headers(origin)]}
            await send(message)

        await self.app(scope, receive, with_cors)

    def allows(self, origin: str, host: str | None) -> bool:
        """Whether a page of ``origin`` may use the API in a request sent to ``host``."""
        normal = normalize_origin(origin)
        if normal is None:
            return False
        if normal in self.allowed:
            return True
        # The page came from this very daemon, by the name the request uses (the Host check has
        # passed by now, so the name is one of ours).
        return host is not None and normal == normalize_origin(f"http://{host}")


def _is_preflight(scope: Scope) -> bool:
    return (
        scope.get("method") == "OPTIONS"
        and header(scope, b"access-control-request-method") is not None
    )


def _cors_headers(origin: str) -> list[tuple[bytes, bytes]]:
    return [
        (b"access-control-allow-origin", origin.encode("latin-1")),
        (b"access-control-allow-credentials", b"true"),
        (b"vary", b"Origin"),
    ]


async def _answer_preflight(scope: Scope, send: Send, origin: str) -> None:
    headers = [
        *_cors_headers(origin),
        (b"access-control-allow-methods", ALLOWED_METHODS.encode("ascii")),
        (b"access-control-allow-headers", ALLOWED_HEADERS.encode("ascii")),
        (b"access-control-max-age", str(PREFLIGHT_MAX_AGE).encode("ascii")),
        (b"content-length", b"0"),
    ]
    if (header(scope, b"access-control-request-private-network") or "").lower() == "true":
        headers.append((b"access-control-allow-private-network", b"true"))
    await send({"type": "http.response.start", "status": 204, "headers": headers})
    await send({"type": "http.response.body", "body": b""})
