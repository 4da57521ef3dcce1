"""The call log over HTTP: GET /calls (filtered, paged newest first), /calls.csv, /calls/{id},
/events."""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import partial
from typing import Annotated

import anyio.to_thread
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response, StreamingResponse
from pydantic_core import to_json
from sqlalchemy.engine import Connection, Engine

from microsip_bridge.actions.service import Actions
from microsip_bridge.calls.export import calls_csv as to_csv
from microsip_bridge.errors import NotFoundError
from microsip_bridge.model import Direction, Outcome
from microsip_bridge.numbers import Normaliser, normaliser_for, number_digits
from microsip_bridge.server.auth import require_auth
from microsip_bridge.server.params import (
    ERROR_RESPONSES,
    MAX_TEXT,
    NUMBER,
    PAGE,
    PRINTABLE,
    BadParameter,
    ErrorDetail,
    OneLineErrors,
    page_token,
    parse_time,
    read_page_token,
    read_store,
)
from microsip_bridge.server.schemas import CallDetail, CallPage, EventPage
from microsip_bridge.store import repo
from microsip_bridge.store.query import (
    CallFilter,
    Position,
    call_listing,
    call_with_events,
    position_of,
)

DEFAULT_LIMIT = 50
MAX_LIMIT = 1000
# Calls read per query while the CSV streams: one page of the index at a time.
CSV_PAGE = 1000
MAX_CURSOR = 2**63 - 1
_CALL_ID = re.compile(r"[0-9a-z_-]{1,40}")

router = APIRouter(
    prefix="/api/v1",
    dependencies=[Depends(require_auth)],
    tags=["calls"],
    responses=ERROR_RESPONSES,
    route_class=OneLineErrors,
)

When = Annotated[
    str | None,
    Query(
        max_length=64,
        pattern=PRINTABLE,
        description="Unix seconds, or ISO 8601 (2026-11-30, 2026-11-30T08:00:00+01:00); UTC "
        "unless it carries an offset.",
    ),
]


async def _filters(
    request: Request,
    direction: Annotated[
        Direction | None, Query(description="Only calls of this direction.")
    ] = None,
    outcome: Annotated[Outcome | None, Query(description="Only calls that ended so.")] = None,
    number: Annotated[
        str | None,
        Query(
            max_length=MAX_TEXT,
            pattern=NUMBER,
            description="Only calls with this number, in any format: the same number once "
            "normalised (01234 567890 finds +441234567890 with default_region GB), or its digits "
            "in the call's number without spaces, dashes, dots, slashes, parentheses and +.",
        ),
    ] = None,
    since: When = None,
    until: When = None,
    q: Annotated[
        str | None,
        Query(
            max_length=MAX_TEXT,
            pattern=PRINTABLE,
            description="Only calls whose name or number holds this text (or number).",
        ),
    ] = None,
) -> CallFilter:
    """The filters of /calls and /calls.csv, checked (async: FastAPI would run a plain def in a
    worker thread, a hop that costs more than the checks)."""
    # An empty field of a form is no filter.
    number, since, until = number or None, since or None, until or None
    if number is not None and not number_digits(number):
        raise BadParameter("number: give some digits of the number")
    start = None if since is None else parse_time(since, "since")
    end = None if until is None else parse_time(until, "until")
    key = "" if number is None else _normaliser(request)(number).key
    return CallFilter(
        since=start,
        until=end,
        direction=direction,
        outcome=outcome,
        number=number,
        text=q or None,
        number_key=key,
    )


def _normaliser(request: Request) -> Normaliser:
    actions = getattr(request.app.state, "actions", None)
    if isinstance(actions, Actions):
        return actions.normalise
    return normaliser_for(request.app.state.settings.default_region)


def _engine(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


@router.get("/calls", response_model=CallPage)
async def list_calls(
    request: Request,
    where: Annotated[CallFilter, Depends(_filters)],
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Calls per page.")] = DEFAULT_LIMIT,
    cursor: Annotated[
        str | None,
        Query(max_length=200, pattern=PAGE, description="The `next` of the previous page."),
    ] = None,
) -> Response:
    """Calls, newest first, a page at a time: each as `calls --format json` prints it. Pass
    `next` back as `cursor` (with the same filters) for the next page; no call is repeated or
    skipped across pages, even while new calls come in."""
    before = None if cursor is None else read_page_token(cursor)
    engine = _engine(request)

    def read(conn: Connection) -> list[dict[str, object]]:
        return call_listing(conn, where, before=before, limit=limit + 1)

    rows = await anyio.to_thread.run_sync(read_store, engine, read)
    following = None
    if len(rows) > limit:
        del rows[limit:]
        following = page_token(*position_of(rows[-1]))
    # Encoded as the store gives them, without validating each call against the model again,
    # by pydantic's encoder (a quarter of json.dumps's time, the same bytes): this is the API's
    # busiest route, and the calls are already in the model's shape (a test and the
    # schemathesis run hold them to it).
    return Response(to_json({"calls": rows, "next": following}), media_type="application/json")


@router.get(
    "/calls.csv",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}}, "description": "Every matching call, as CSV."}},
)
async def calls_csv(
    request: Request,
    where: Annotated[CallFilter, Depends(_filters)],
    raw: Annotated[
        bool, Query(description="Every value as stored, even one a spreadsheet would run.")
    ] = False,
) -> StreamingResponse:
    """Every call that matches (all pages), newest first, as `calls --format csv` writes them:
    a header, CRLF line ends, text a spreadsheet would run as a formula behind a `'` (unless
    `raw`). Streamed as it is read."""
    engine = _engine(request)
    return StreamingResponse(
        to_csv(_every_call(engine, where), raw=raw),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="calls.csv"'},
    )


def _every_call(engine: Engine, where: CallFilter) -> Iterator[dict[str, object]]:
    """Every call that matches, newest first, a page per connection (Starlette runs each step
    of this generator in a worker thread)."""
    before: Position | None = None
    while True:
        page = read_store(engine, partial(call_listing, where=where, before=before, limit=CSV_PAGE))
        yield from page
        if len(page) < CSV_PAGE:
            return
        before = position_of(page[-1])


@router.get(
    "/calls/{call_id}",
    response_model=CallDetail,
    responses={404: {"model": ErrorDetail, "description": "No call has this id."}},
)
async def get_call(request: Request, call_id: str) -> dict[str, object]:
    """One call with its events in full (in the list, `events` holds only their uids)."""
    unknown = NotFoundError(f"no call {call_id[:64]!r}")
    if not _CALL_ID.fullmatch(call_id):
        raise unknown
    engine = _engine(request)

    def read(conn: Connection) -> dict[str, object] | None:
        return call_with_events(conn, call_id)

    call = await anyio.to_thread.run_sync(read_store, engine, read)
    if call is None:
        raise unknown
    return call


@router.get("/events", response_model=EventPage)
async def list_events(
    request: Request,
    after: Annotated[
        int, Query(ge=0, le=MAX_CURSOR, description="Only events with a higher cursor.")
    ] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="At most this many.")] = 100,
) -> dict[str, object]:
    """The event log after a cursor, oldest first, each event as `events --format json` prints
    it. Pass the returned `cursor` as `after` to go on."""
    engine = _engine(request)

    def read(conn: Connection) -> list[dict[str, object]]:
        return [event.to_dict() for event in repo.events_after(conn, after, limit)]

    found = await anyio.to_thread.run_sync(read_store, engine, read)
    return {"events": found, "cursor": found[-1]["cursor"] if found else after}
