"""The daemon's ASGI app: the hook ingestion endpoint, the health check and the API's description.

:func:`create_app` builds everything from the settings (datasette's style: the library object
builds the app), so tests and other programs can serve it with any ASGI server.

* ``POST /api/v1/hook-events`` (token): body = the hook's spool record
  (``{"v":1,"id":"<hex>","event":"ring","number":"1001","ts":<epoch>,"pid":<int>}``). Answers
  **202** ``{"cursor", "duplicate", "call_id"}`` once the event is committed (a 202 means
  durable); 400 for a body that is not JSON, 413 as soon as the body passes
  :data:`MAX_BODY_BYTES` (declared or sent, chunked or not: nothing more is read), 422 for a
  record of the wrong shape, 401 without the right token (before the body is read), 503 when
  the commit did not happen in time (the event may still be stored; sending it again is safe:
  its id makes ingestion idempotent).
* ``GET /api/v1/health`` (no token): ``{"status": "ok", "version": ...}``.
* ``GET /api/v1/openapi.json`` and ``GET /docs`` (token): the OpenAPI document and its Swagger
  UI. They describe the API to whoever asks, so they are guarded like the API itself.
* The read API (token): the call log in :mod:`.api_calls`, MicroSIP and the daemon's state in
  :mod:`.api_microsip`.
* ``WS /api/v1/events/ws`` (token): the event log, replayed and live (server/ws.py).
* The login routes (:mod:`.login`) and the dashboard's page (:mod:`.dashboard`).

Middleware, outermost first: unread bodies close the connection, the Host check (421), the
Origin allow-list with CORS (403, :mod:`.cors`).
* ``GET /directory.json`` and ``/directory.xml`` (the directory key, not the token): MicroSIP's
  contacts directory with presence lamps (server/directory.py).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel
from sqlalchemy.engine import Engine

from microsip_bridge import __version__
from microsip_bridge.actions.service import Actions, build_actions
from microsip_bridge.calls.feed import EventHub
from microsip_bridge.calls.ingest import Ingestor
from microsip_bridge.calls.state import CallTracker
from microsip_bridge.calls.writer import NotStoredError
from microsip_bridge.errors import (
    BridgeError,
    CommandDroppedError,
    DirectoryUnavailableError,
    MicroSIPNotRunningError,
    MicroSIPRunningError,
    NotFoundError,
    StoreUnavailableError,
)
from microsip_bridge.model import EventRecord
from microsip_bridge.server import (
    api_calls,
    api_microsip,
    api_privacy,
    api_webhooks,
    auth,
    control,
    dashboard,
    directory,
    guard,
    login,
    ws,
)
from microsip_bridge.server.cors import OriginMiddleware, own_origins
from microsip_bridge.server.security import (
    CloseUnreadBodyMiddleware,
    HostCheckMiddleware,
    allowed_hosts,
    ensure_token,
)
from microsip_bridge.server.sessions import (
    SESSIONS_NAME,
    LoginCodes,
    Sessions,
    session_cookie_name,
)
from microsip_bridge.server.settings import SETTING_NAMES, DaemonSettings
from microsip_bridge.wire import HOOK_EVENTS_PATH, record_schema

HEALTH_PATH = "/api/v1/health"
OPENAPI_PATH = "/api/v1/openapi.json"
DOCS_PATH = "/docs"
# The longest record the hook writes is about 6 KiB (a 1024-character number, fully escaped).
MAX_BODY_BYTES = 16 * 1024
DOCS_UNAUTHORIZED = (
    "the API docs need a login: run `microsip-bridge open` for a browser, or send "
    "Authorization: Bearer <the token file's text>"
)


class HookEventAccepted(BaseModel):
    """The answer to a hook event: its cursor in the event log, whether the log already had
    it, and the call it belongs to."""

    cursor: int
    duplicate: bool
    call_id: str | None


class Health(BaseModel):
    status: str
    version: str


# What an error means to an HTTP client, mapped once (as cli/__init__.py maps errors to exit
# codes): the entry of the most specific class in the error's MRO wins.
HTTP_STATUS: dict[type[BridgeError], int] = {
    NotStoredError: 503,  # not stored now: sending it again later is safe
    DirectoryUnavailableError: 503,  # MicroSIP keeps its contacts and asks again later
    MicroSIPRunningError: 409,
    MicroSIPNotRunningError: 409,
    CommandDroppedError: 503,  # MicroSIP answered 1: its SIP stack is down
    NotFoundError: 404,
    StoreUnavailableError: 503,  # the database did not answer: asking again later may work
    BridgeError: 422,  # what the request asks for cannot be done as it is
}


def http_status(error: BridgeError) -> int:
    """The HTTP status that answers ``error`` (:data:`HTTP_STATUS`)."""
    return next(HTTP_STATUS[kind] for kind in type(error).__mro__ if kind in HTTP_STATUS)


def create_app(
    settings: DaemonSettings,
    engine: Engine | None = None,
    *,
    ingestor: Ingestor | None = None,
) -> FastAPI:
    """The daemon's app for ``settings``: its engine (default: from the settings), its token
    (created on the first start) and its :class:`Ingestor` (default: a new one with a
    :class:`CallTracker`). The app's lifespan starts the ingestor (migrating the store) unless
    it is already started, and stops it. ``app.state`` holds ``settings``, ``engine``,
    ``ingestor``, ``token``, ``feed`` (the :class:`EventHub` of the event WebSocket),
    ``login_codes``, ``sessions`` and ``session_cookie`` (its name).
    ``settings.port`` must be the port served (not 0): the daemon's own origins and its cookie
    are named after it."""
    if engine is None:
        from microsip_bridge.store.engine import make_engine

        engine = make_engine(settings.database_url, settings.home)
    if ingestor is None:
        ingestor = Ingestor(
            engine,
            CallTracker(reject_timeout=settings.reject_timeout, dial_timeout=settings.dial_timeout),
            ini=settings.ini,
            home=settings.home,
            spool_interval=settings.spool_interval,
            sweep_interval=settings.sweep_interval,
        )
    if ingestor.observer is None:
        values = {name: getattr(settings, name) for name in SETTING_NAMES}
        ingestor.observer = build_actions(
            values, home=settings.home, ini=settings.ini, engine=engine
        )
    actions = ingestor.observer
    if isinstance(actions, Actions):
        actions.bind(ingestor)
    if ingestor.feed is None:
        ingestor.feed = EventHub(max_subscribers=guard.MAX_WEBSOCKETS)
    feed = ingestor.feed
    token = ensure_token(settings.home)
    worker = ingestor
    retention = api_privacy.Retention(ingestor, settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        feed.bind(asyncio.get_running_loop())
        if isinstance(actions, Actions):
            await anyio.to_thread.run_sync(actions.start)
        await anyio.to_thread.run_sync(worker.start)
        retention.start()
        try:
            yield
        finally:
            feed.close()
            await anyio.to_thread.run_sync(retention.stop)
            await anyio.to_thread.run_sync(worker.stop)
            if isinstance(actions, Actions):
                # After the ingestor: the last commits may still act.
                await anyio.to_thread.run_sync(actions.stop)

    app = FastAPI(
        title="microsip-bridge",
        version=__version__,
        summary="The automation API that MicroSIP lacks.",
        lifespan=lifespan,
        # FastAPI's own routes would serve these to anyone: ours below need the token.
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.ingestor = ingestor
    app.state.token = token
    app.state.feed = feed
    app.state.actions = actions
    if isinstance(actions, Actions):
        actions.control = lambda verb: control.state_control_service(app.state).send(verb)
    app.state.login_codes = LoginCodes()
    app.state.sessions = Sessions(settings.home / SESSIONS_NAME, settings.session_days * 86400)
    app.state.session_cookie = session_cookie_name(settings.port)
    app.add_middleware(OriginMiddleware, allowed=own_origins(settings.port) | set(settings.origins))
    app.add_middleware(
        HostCheckMiddleware,
        allowed=allowed_hosts(settings.host, settings.host_names),
        ip_addresses=settings.public,
    )
    # Added last, so outermost: it sees the 421s of the Host check too.
    app.add_middleware(CloseUnreadBodyMiddleware)

    app.include_router(control.router)
    app.include_router(api_webhooks.router)

    @app.exception_handler(BridgeError)
    async def bridge_error(request: Request, error: BridgeError) -> JSONResponse:
        return JSONResponse({"detail": str(error)}, status_code=http_status(error))

    app.include_router(login.router)
    app.include_router(login.api)
    app.include_router(dashboard.router)

    async def require_token_for_docs(request: Request) -> None:
        auth.check(request, DOCS_UNAUTHORIZED)

    @app.get(HEALTH_PATH, response_model=Health, tags=["daemon"])
    async def health() -> dict[str, str]:
        """Whether the daemon runs (no token needed)."""
        return {"status": "ok", "version": __version__}

    @app.get(OPENAPI_PATH, include_in_schema=False, dependencies=[Depends(auth.require_auth)])
    async def openapi() -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.get(DOCS_PATH, include_in_schema=False, dependencies=[Depends(require_token_for_docs)])
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url=OPENAPI_PATH, title="microsip-bridge API")

    @app.post(
        HOOK_EVENTS_PATH,
        status_code=202,
        response_model=HookEventAccepted,
        dependencies=[Depends(auth.require_auth)],
        tags=["hook"],
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": record_schema()}},
            }
        },
    )
    async def hook_event(request: Request) -> JSONResponse:
        """Record one hook event (what ``microsip-bridge-hook`` sends); answers once it is
        committed."""
        body = await read_body(request, MAX_BODY_BYTES, "an event record")
        try:
            data = json.loads(body)
        except (ValueError, RecursionError):
            raise HTTPException(400, "the body is not JSON") from None
        rec = EventRecord.from_spool(data, source="hook")
        waiting = asyncio.wrap_future(worker.submit(rec))
        try:
            # shield: a client that gives up must not cancel the event; it is stored anyway.
            result = await asyncio.wait_for(asyncio.shield(waiting), settings.commit_timeout)
        except TimeoutError:
            raise NotStoredError(
                f"not committed within {settings.commit_timeout:g} s; sending it again is safe"
            ) from None
        return JSONResponse(
            {"cursor": result.cursor, "duplicate": result.duplicate, "call_id": result.call_id},
            status_code=202,
        )

    app.include_router(ws.router)
    app.include_router(api_calls.router)
    app.include_router(api_microsip.router)
    app.include_router(directory.router)
    app.include_router(api_privacy.router)

    return app


async def read_body(request: Request, limit: int, what: str) -> bytes:
    """The request's body, refused with a 413 as soon as it passes ``limit`` bytes, declared
    (Content-Length) or sent (chunked): at most ``limit`` plus one chunk is ever read."""
    too_big = HTTPException(413, f"{what} is at most {limit} bytes")
    declared = request.headers.get("content-length")
    # Digits counted before int() reads them (h11 does too; other ASGI servers may not).
    if declared is not None and not (
        declared.isdigit() and len(declared) <= 20 and int(declared) <= limit
    ):
        raise too_big
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_big
        chunks.append(chunk)
    return b"".join(chunks)
