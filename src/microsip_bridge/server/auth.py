"""Who may use the daemon's API: one check for HTTP routes and WebSockets alike.

Every route but the health probe needs the API token (``Authorization: Bearer <token file>``).
Routers declare ``dependencies=[Depends(require_auth)]``; a WebSocket route calls
:func:`authorized` before it accepts.
"""

from __future__ import annotations

from fastapi import HTTPException, Request
from starlette.requests import HTTPConnection

from microsip_bridge.server.security import bearer_token, tokens_equal

UNAUTHORIZED = "missing or wrong token (Authorization: Bearer <the token file's text>)"


def authorized(conn: HTTPConnection) -> bool:
    """Whether the request or WebSocket ``conn`` carries the daemon's token."""
    given = bearer_token(conn.headers.get("authorization"))
    return given is not None and tokens_equal(given, conn.app.state.token)


def check(conn: HTTPConnection, detail: str = UNAUTHORIZED) -> None:
    """Raise a 401 with ``detail`` unless :func:`authorized`."""
    if not authorized(conn):
        raise HTTPException(401, detail, headers={"WWW-Authenticate": "Bearer"})


async def require_auth(request: Request) -> None:
    """The dependency that guards a route (async: a plain def would run in a worker thread)."""
    check(request)
