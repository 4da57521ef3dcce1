"""The dashboard's page at ``/``: a placeholder until the dashboard itself lands.

A browser without a session gets a page saying how to log in (401), not JSON.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from microsip_bridge import __version__
from microsip_bridge.server import auth
from microsip_bridge.server.login import LOGIN_NEEDED, PRIVATE_HEADERS, page

router = APIRouter(tags=["dashboard"])

LOGGED_IN = page(
    f"microsip-bridge {__version__}",
    "You are logged in. The dashboard will be served here; the API is under <code>/api/v1</code>.",
)


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
async def home(request: Request) -> HTMLResponse:
    if not auth.authorized(request):
        return HTMLResponse(LOGIN_NEEDED, status_code=401, headers=PRIVATE_HEADERS)
    return HTMLResponse(LOGGED_IN, headers=PRIVATE_HEADERS)
