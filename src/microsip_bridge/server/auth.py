"""Who may use the daemon's API: one check for HTTP routes and WebSockets alike.

Every route but the health probe (and ``/login``, which takes a one-time code) needs the API
token (``Authorization: Bearer <token file>``) or the dashboard's session cookie
(:mod:`.sessions`). Routers declare ``dependencies=[Depends(require_auth)]``; a WebSocket route
calls :func:`accept_authorized` instead of ``accept()`` (or :func:`authorized`, then
:func:`refuse` when it fails), so that nothing is sent to a client without the right.
"""

from __future__ import annotations

from fastapi import HTTPException, Request, WebSocket
from fastapi.responses import JSONResponse
from starlette.requests import HTTPConnection

from microsip_bridge.server.security import bearer_token, tokens_equal

UNAUTHORIZED = (
    "missing or wrong token (Authorization: Bearer <the token file's text>), and no dashboard "
    "session (log in with `microsip-bridge open`)"
)


def authorized(conn: HTTPConnection) -> bool:
    """Whether the request or WebSocket ``conn`` carries the daemon's token or the cookie of an
    open session. A wrong token is refused even beside a good cookie: the client meant it."""
    state = conn.app.state
    header = conn.headers.get("authorization")
    if header is not None:
        given = bearer_token(header)
        return given is not None and tokens_equal(given, state.token)
    return session_value(conn) is not None


def session_value(conn: HTTPConnection) -> str | None:
    """The value of ``conn``'s session cookie when it names an open session, else None."""
    state = conn.app.state
    value = conn.cookies.get(state.session_cookie)
    return value if value is not None and state.sessions.valid(value) else None


def check(conn: HTTPConnection, detail: str = UNAUTHORIZED) -> None:
    """Raise a 401 with ``detail`` unless :func:`authorized`."""
    if not authorized(conn):
        raise HTTPException(401, detail, headers={"WWW-Authenticate": "Bearer"})


async def require_auth(request: Request) -> None:
    """The dependency that guards a route (async: a plain def would run in a worker thread)."""
    check(request)


async def refuse(websocket: WebSocket) -> None:
    """Refuse a WebSocket handshake: a 401 answer where the server can send one (uvicorn can),
    else a close before accepting (the client then sees a 403)."""
    if "websocket.http.response" in websocket.scope.get("extensions", {}):
        await websocket.send_denial_response(
            JSONResponse(
                {"detail": UNAUTHORIZED}, status_code=401, headers={"WWW-Authenticate": "Bearer"}
            )
        )
    else:
        await websocket.close(code=1008)


async def accept_authorized(websocket: WebSocket) -> bool:
    """Accept the WebSocket if :func:`authorized`, else :func:`refuse` it; whether accepted."""
    if not authorized(websocket):
        await refuse(websocket)
        return False
    await websocket.accept()
    return True
