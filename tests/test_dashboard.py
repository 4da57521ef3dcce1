"""The dashboard's page and assets as the daemon serves them: a strict CSP, nothing inline, no
asset from elsewhere, no way to read a file that is not one of the page's, and a script that
never turns API text into HTML."""

from __future__ import annotations

import re
from collections.abc import Iterator
from html.parser import HTMLParser
from importlib import resources
from pathlib import Path

import httpx2
import pytest

from microsip_bridge.server import dashboard
from tests.daemon_support import live_daemon

STATIC = Path(str(resources.files("microsip_bridge.server") / "static"))


@pytest.fixture
def client(bridge_home: Path) -> Iterator[httpx2.Client]:
    """A real daemon and a client with its token."""
    with live_daemon(bridge_home) as daemon:
        host, port = daemon.wait_listening()
        token = (bridge_home / "token").read_text().strip()
        with httpx2.Client(
            base_url=f"http://{host}:{port}",
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        ) as http:
            yield http


class PageParts(HTMLParser):
    """What a page loads and runs: scripts, styles, handlers, links."""

    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[dict[str, str | None]] = []
        self.inline_code: list[str] = []
        self.handlers: list[str] = []
        self.style_attrs: list[str] = []
        self.urls: list[str] = []
        self._in: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "script":
            self.scripts.append(values)
        if tag in ("script", "style"):
            self._in = tag
        for name, value in attrs:
            if name.startswith("on"):
                self.handlers.append(f"{tag} {name}")
            if name == "style":
                self.style_attrs.append(tag)
            if name in ("src", "href") and value:
                self.urls.append(value)

    def handle_endtag(self, tag: str) -> None:
        self._in = None

    def handle_data(self, data: str) -> None:
        if self._in is not None and data.strip():
            self.inline_code.append(f"{self._in}: {data.strip()[:40]}")


def csp_directives(header: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for part in header.split(";"):
        name, *values = part.split()
        out[name] = values
    return out


def test_without_a_login_the_page_says_how_to_log_in(client: httpx2.Client) -> None:
    stranger = {"Authorization": ""}
    del client.headers["Authorization"]
    page = client.get("/", headers=stranger)
    assert page.status_code == 401
    assert "microsip-bridge open" in page.text
    assert "dashboard.js" not in page.text
    assert client.get("/static/dashboard.js").status_code == 401


def test_the_page_is_served_under_a_strict_csp(client: httpx2.Client) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    csp = csp_directives(response.headers["content-security-policy"])
    assert csp["default-src"] == ["'none'"]
    assert csp["script-src"] == ["'self'"]
    assert csp["style-src"] == ["'self'"]
    # The page talks to this daemon alone: fetch and the WebSocket ('self' covers ws:).
    assert csp["connect-src"] == ["'self'"]
    assert csp["frame-ancestors"] == ["'none'"]
    assert "unsafe" not in response.headers["content-security-policy"]
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"


def test_the_page_runs_nothing_inline_and_loads_only_its_own_assets(
    client: httpx2.Client,
) -> None:
    parts = PageParts()
    parts.feed(client.get("/").text)
    assert parts.scripts == [{"type": "module", "src": "/static/dashboard.js"}]
    assert parts.inline_code == []
    assert parts.handlers == []
    assert parts.style_attrs == []
    assets = [u for u in parts.urls if not u.startswith("#")]
    assert assets, "the page links its assets"
    for url in assets:
        assert url.startswith("/"), f"{url}: from elsewhere (no CDN: assets are vendored)"
        if url.startswith("/static/"):
            response = client.get(url)
            assert response.status_code == 200, url
            assert response.headers["content-security-policy"] == dashboard.CSP
    assert client.get("/static/dashboard.js").headers["content-type"].startswith("text/javascript")
    assert client.get("/static/dashboard.css").headers["content-type"].startswith("text/css")


@pytest.mark.parametrize(
    "path",
    [
        "/static/nothing.js",
        "/static/index.html",  # the page has one address
        "/static/..%2Fdashboard.py",
        "/static/../app.py",
        "/static/%2e%2e/app.py",
        "/static/",
    ],
)
def test_only_the_pages_own_assets_are_served(client: httpx2.Client, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404, path
    assert b"import" not in response.content


def test_assets_are_revalidated_with_their_etag(client: httpx2.Client) -> None:
    first = client.get("/static/dashboard.js")
    etag = first.headers["etag"]
    again = client.get("/static/dashboard.js", headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    stale = client.get("/static/dashboard.js", headers={"If-None-Match": '"other"'})
    assert stale.status_code == 200
    assert stale.content == first.content
    head = client.head("/")
    assert head.status_code == 200
    assert head.content == b""


def test_a_forged_host_gets_no_page(client: httpx2.Client) -> None:
    # DNS rebinding: a page of evil.example that resolves to 127.0.0.1 must not read ours.
    assert client.get("/", headers={"Host": "evil.example"}).status_code == 421


def test_every_asset_is_in_the_package_and_served() -> None:
    shipped = {p.name for p in STATIC.iterdir() if p.is_file()}
    assert shipped == set(dashboard.ASSETS)
    assert {"index.html", "dashboard.js", "dashboard.css"} <= shipped


def test_the_script_never_turns_text_into_html() -> None:
    # Caller names come from strangers: only textContent and createElement write the page.
    code = (STATIC / "dashboard.js").read_text("utf-8")
    for sink in (
        "innerHTML",
        "outerHTML",
        "insertAdjacentHTML",
        "document.write",
        "eval(",
        "new Function",
        "createContextualFragment",
        "srcdoc",
    ):
        assert sink not in code, sink
    # Every request goes to this daemon, with the session cookie of this origin only.
    assert re.findall(r"fetch\(([^,)]*)", code) == ["API + path"]
    assert 'credentials: "same-origin"' in code
