"""The dashboard's login: a one-time link becomes a session cookie; new links; logging out.

* ``GET /login?once=CODE`` (no token: the code is the credential): a valid code is spent, a
  session opens (an HttpOnly, SameSite=Strict cookie for ``/``) and the browser is sent on to
  ``/`` with a 303, which also drops the code from the address bar. A used, expired or unknown
  code gets a small page saying how to get a new link (401); a browser already logged in is
  simply sent on.
* ``POST /api/v1/login-links`` (token or session): a new one-time link ``{"url", "expires_in"}``
  (what ``microsip-bridge open`` asks for).
* ``POST /api/v1/logout``: ends the session of the cookie sent, and clears the cookie (204).
"""

from __future__ import annotations

import html

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import BaseModel

from microsip_bridge.server import auth
from microsip_bridge.server.sessions import LOGIN_CODE_SECONDS, LOGIN_PATH, login_url

# Nothing of a login answer may be cached or sent on as a Referer.
PRIVATE_HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}

router = APIRouter(tags=["login"])
api = APIRouter(prefix="/api/v1", dependencies=[Depends(auth.require_auth)], tags=["login"])


class LoginLink(BaseModel):
    """A one-time dashboard login link, and the seconds it stays valid."""

    url: str
    expires_in: int


def page(title: str, text: str) -> str:
    """A small self-contained HTML page (no script, no outside resource)."""
    return (
        "<!doctype html><html lang=en><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title>"
        '<body style="font:16px/1.5 system-ui,sans-serif;max-width:36em;margin:3em auto;'
        f'padding:0 1em"><h1 style="font-size:1.4em">{html.escape(title)}</h1>'
        f"<p>{text}</p></body></html>\n"
    )


LOGIN_NEEDED = page(
    "Log in to microsip-bridge",
    "This page needs a login. A login link works once, for "
    f"{LOGIN_CODE_SECONDS / 60:g} minutes: for a fresh one, run "
    "<code>microsip-bridge open</code> on the computer where the bridge runs.",
)


@router.get(LOGIN_PATH, response_class=HTMLResponse, include_in_schema=False)
async def login(request: Request, once: str = "") -> Response:
    """Spend a one-time code: open a session and go to the dashboard."""
    state = request.app.state
    if state.login_codes.redeem(once):
        response: Response = RedirectResponse("/", status_code=303, headers=PRIVATE_HEADERS)
        response.set_cookie(
            state.session_cookie,
            state.sessions.open(),
            max_age=int(state.sessions.lifetime),
            path="/",
            httponly=True,
            samesite="strict",
        )
        return response
    if auth.authorized(request):  # already logged in: a second click on the link
        return RedirectResponse("/", status_code=303, headers=PRIVATE_HEADERS)
    return HTMLResponse(LOGIN_NEEDED, status_code=401, headers=PRIVATE_HEADERS)


@api.post("/login-links", status_code=201, response_model=LoginLink)
async def new_login_link(request: Request) -> LoginLink:
    """A new one-time link to log a browser in to the dashboard (as `microsip-bridge open`)."""
    codes = request.app.state.login_codes
    base = f"http://{request.headers.get('host', '127.0.0.1')}"
    return LoginLink(url=login_url(base, codes.issue()), expires_in=int(codes.lifetime))


@api.post("/logout", status_code=204)
async def logout(request: Request) -> Response:
    """End this browser's dashboard session and clear its cookie."""
    state = request.app.state
    value = auth.session_value(request)
    if value is not None:
        state.sessions.close(value)
    response = Response(status_code=204, headers=PRIVATE_HEADERS)
    response.delete_cookie(state.session_cookie, path="/", httponly=True, samesite="strict")
    return response
