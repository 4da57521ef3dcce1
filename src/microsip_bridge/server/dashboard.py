"""The dashboard: ``GET /`` and its static assets, served from the package with a strict CSP.

The page is plain HTML, CSS and one JavaScript module (``server/static/``, no build step, no
CDN). Like every route but the health probe it needs the session cookie (or the token): a
browser without one gets the page saying how to log in (401). The assets are read
once, at import, into a fixed table: a request names one of them or gets a 404, so no path from
a URL ever reaches the file system.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, Response

from microsip_bridge.server import auth
from microsip_bridge.server.login import LOGIN_NEEDED, PRIVATE_HEADERS

STATIC_PREFIX = "/static/"
_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
# The page runs only its own script and style; it talks only to this daemon (HTTP and
# WebSocket: 'self' covers ws:// on the same host and port); nothing may frame it. Caller names
# are written by strangers, so even an escaping mistake must not run their script.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-cache",
}


@dataclass(frozen=True, slots=True)
class Asset:
    body: bytes
    media_type: str
    etag: str


def _load_assets() -> dict[str, Asset]:
    folder = resources.files("microsip_bridge.server") / "static"
    found: dict[str, Asset] = {}
    for item in folder.iterdir():
        suffix = "." + item.name.rpartition(".")[2]
        if item.is_file() and suffix in _TYPES:
            body = item.read_bytes()
            etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
            found[item.name] = Asset(body, _TYPES[suffix], etag)
    return found


ASSETS = _load_assets()

router = APIRouter(include_in_schema=False)


def _answer(request: Request, asset: Asset) -> Response:
    headers = {**SECURITY_HEADERS, "ETag": asset.etag}
    if request.headers.get("if-none-match") == asset.etag:
        return Response(status_code=304, headers=headers)
    body = b"" if request.method == "HEAD" else asset.body
    return Response(body, media_type=asset.media_type, headers=headers)


@router.api_route("/", methods=["GET", "HEAD"])
async def page(request: Request) -> Response:
    """The dashboard's page (without a login: how to log in)."""
    if not auth.authorized(request):
        return HTMLResponse(LOGIN_NEEDED, 401, headers={**SECURITY_HEADERS, **PRIVATE_HEADERS})
    return _answer(request, ASSETS["index.html"])


@router.api_route(STATIC_PREFIX + "{name}", methods=["GET", "HEAD"])
async def asset(request: Request, name: str) -> Response:
    """One of the page's assets, by its file name."""
    auth.check(request)
    found = ASSETS.get(name)
    if found is None or name == "index.html":
        raise HTTPException(404, "no such asset")
    return _answer(request, found)
