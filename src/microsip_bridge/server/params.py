"""What the read API's routes share: their parameters (times, page tokens), their refusals in one
line (422), their reads of the store (503 when it does not answer).

FastAPI answers a parameter it cannot validate with a list of error objects; the API's routes
answer with one line, ``{"detail": "limit: Input should be less than or equal to 1000"}``, like
every other refusal of the daemon. Routers opt in with ``route_class=OneLineErrors``.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import math
import re
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError

from microsip_bridge.errors import BridgeError, StoreUnavailableError
from microsip_bridge.store.engine import database_error

T = TypeVar("T")

# A number of Unix seconds: what `since` and `until` take besides ISO 8601.
_EPOCH = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")
# Text parameters hold no control characters: no database stores a NUL, and no number or name
# a person types holds one. (A regular expression: it is part of the OpenAPI document.)
PRINTABLE = r"^[^\x00-\x1f\x7f]*$"
# The same, holding a digit: a number in any format (or nothing: an empty field of a form).
NUMBER = r"^$|^[^\x00-\x1f\x7f]*[0-9][^\x00-\x1f\x7f]*$"
# What page_token writes: base64url without padding.
PAGE = r"^[A-Za-z0-9_-]+$"
MAX_TEXT = 200
# What a pattern asks for, said to people (pydantic would quote the expression).
_PATTERN_MEANS = {
    PRINTABLE: "must not hold control characters",
    NUMBER: "give some digits of the number (and no control characters)",
    PAGE: "not a value this API gave as next",
}


class ErrorDetail(BaseModel):
    """Why a request was refused, in one line."""

    detail: str


# Documented on every router of the read API: the answers any of its routes may give.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorDetail, "description": "No token, or the wrong one."},
    422: {"model": ErrorDetail, "description": "A parameter is malformed or out of range."},
    503: {"model": ErrorDetail, "description": "The store did not answer."},
}


class BadParameter(BridgeError):
    """A query parameter the API cannot use (answered with 422)."""


def read_store(engine: Engine, query: Callable[[Connection], T]) -> T:
    """``query`` run on a connection of ``engine``; a driver error becomes a one-line
    :class:`StoreUnavailableError`."""
    try:
        with engine.connect() as conn:
            return query(conn)
    except DBAPIError as exc:
        raise StoreUnavailableError(database_error(engine, exc).message) from None


def one_line(error: RequestValidationError) -> str:
    """The first of FastAPI's validation errors as ``where: what``."""
    problems = error.errors()
    if not problems:
        return "the request is malformed"
    first = problems[0]
    where = ".".join(str(part) for part in first.get("loc", ())[1:]) or "request"
    what = first.get("msg", "invalid")
    if first.get("type") == "string_pattern_mismatch":
        what = _PATTERN_MEANS.get(str(first.get("ctx", {}).get("pattern")), what)
    return f"{where}: {what}"


class OneLineErrors(APIRoute):
    """A route whose parameter errors are answered as :class:`ErrorDetail` (422)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestValidationError as error:
                return JSONResponse({"detail": one_line(error)}, status_code=422)

        return route


def parse_time(text: str, name: str) -> float:
    """``since``/``until`` as Unix seconds: a number of seconds, or an ISO 8601 date or
    date-time (UTC unless it carries an offset). :class:`BadParameter` otherwise."""
    value = text.strip()
    if _EPOCH.fullmatch(value):
        seconds = float(value)
        if not math.isfinite(seconds):
            raise BadParameter(f"{name}: {text!r} is out of range")
        return seconds
    try:
        when = dt.datetime.fromisoformat(value)
    except ValueError:
        raise BadParameter(
            f"{name}: {text!r} is not Unix seconds or an ISO 8601 time (2026-11-30T08:00Z)"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    try:
        return when.timestamp()
    except (OverflowError, OSError, ValueError):
        raise BadParameter(f"{name}: {text!r} is out of range") from None


def page_token(started_at: float, call_id: str) -> str:
    """The opaque ``next`` of a page whose last call is at this position."""
    raw = json.dumps([started_at, call_id], separators=(",", ":")).encode("utf-8")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def read_page_token(token: str) -> tuple[float, str]:
    """The position a :func:`page_token` names; :class:`BadParameter` for anything else."""
    refused = BadParameter("cursor: not a value this API gave as next")
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = json.loads(raw)
    except (binascii.Error, ValueError, RecursionError):
        raise refused from None
    if (
        not isinstance(data, list)
        or len(data) != 2
        or not isinstance(data[0], int | float)
        or isinstance(data[0], bool)
        or not math.isfinite(data[0])
        or not isinstance(data[1], str)
        or not re.fullmatch(r"[0-9a-z_-]{1,40}", data[1])
    ):
        raise refused
    return float(data[0]), data[1]
