"""``GET /directory.json`` and ``/directory.xml``: MicroSIP's usersDirectory, with presence lamps.

Not under ``/api/v1`` and not opened by the API token: MicroSIP keeps this URL in its ini in
clear text, so it carries the read-only directory key instead (``?key=`` or HTTP basic
authentication with the key as password; facts §4.6), and that key opens nothing else. A
missing or wrong key gets 401 with a ``WWW-Authenticate: Basic`` challenge (WinINet sends the
URL's ``user:pass@`` only when challenged). Unknown query parameters are ignored (MicroSIP 3.22
appends ``sequence=N``). 503 when the contacts cannot be read now: MicroSIP then keeps its own.
"""

from __future__ import annotations

import base64
import binascii

import anyio.to_thread
from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import Response

from microsip_bridge.directory import DEFAULT_REFRESH, MAX_REFRESH, MIN_REFRESH
from microsip_bridge.directory.key import key_matches
from microsip_bridge.directory.service import ContactsSource, render

UNAUTHORIZED = "missing or wrong directory key (?key=<key>, or basic auth with the key as password)"
_CHALLENGE = {"WWW-Authenticate": 'Basic realm="microsip-bridge directory", charset="UTF-8"'}


def _responses(media_type: str) -> dict[int | str, dict[str, object]]:
    return {
        200: {
            "description": "MicroSIP's usersDirectory response",
            "content": {media_type: {}},
        },
        401: {"description": UNAUTHORIZED},
        503: {"description": "the contacts cannot be read now; MicroSIP keeps its own"},
    }


router = APIRouter(tags=["directory"])


def basic_password(authorization: str | None) -> str | None:
    """The password of an ``Authorization: Basic`` header (any user name), or None."""
    if not authorization:
        return None
    scheme, _, value = authorization.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    _, sep, password = decoded.partition(":")
    return password if sep else None


def _check_key(request: Request, key: str | None) -> None:
    home = request.app.state.settings.home
    given = key if key is not None else basic_password(request.headers.get("authorization"))
    if not key_matches(given, home):
        raise HTTPException(401, UNAUTHORIZED, headers=_CHALLENGE)


def _source(request: Request) -> ContactsSource:
    state = request.app.state
    source: ContactsSource | None = getattr(state, "directory_contacts", None)
    if source is None:
        source = state.directory_contacts = ContactsSource(state.settings.ini)
    return source


async def _serve(request: Request, fmt: str, key: str | None, refresh: int) -> Response:
    _check_key(request, key)
    source = _source(request)
    lines = request.app.state.ingestor.tracker.line_states()

    def build() -> tuple[bytes, str]:
        return render(source.snapshot(), lines, fmt, refresh)

    body, media_type = await anyio.to_thread.run_sync(build)
    # WinINet caches GET responses: a cached copy would freeze the lamps.
    return Response(body, media_type=media_type, headers={"Cache-Control": "no-store"})


_KEY = Query(None, description="The directory key (or send it as the basic-auth password).")
_REFRESH = Query(
    DEFAULT_REFRESH, ge=MIN_REFRESH, le=MAX_REFRESH, description="Seconds between reloads."
)


@router.get("/directory.json", responses=_responses("application/json"), response_class=Response)
async def directory_json(
    request: Request, key: str | None = _KEY, refresh: int = _REFRESH
) -> Response:
    """MicroSIP's contacts as a usersDirectory JSON object, with the 3.22 presence list: a
    contact on a call now is ``busy`` (connected) or ``ring`` (ringing or being dialled)."""
    return await _serve(request, "json", key, refresh)


@router.get("/directory.xml", responses=_responses("application/xml"), response_class=Response)
async def directory_xml(
    request: Request, key: str | None = _KEY, refresh: int = _REFRESH
) -> Response:
    """MicroSIP's contacts as usersDirectory XML (``<contacts refresh silent>``; no presence)."""
    return await _serve(request, "xml", key, refresh)
