"""The dashboard in real headless Chromium against the API's contract (issue 8 §2): the daemon
serves the page, and the API's answers and the WebSocket's messages are played by the test, so
every case (hostile names, a dropped feed, the last page of the log) is exact and quick."""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.browser_support import CHROMIUM_ARGS, DESKTOP, PHONE, need_browser, shot
from tests.daemon_support import live_daemon

pytestmark = pytest.mark.e2e

HOSTILE = '<img src=x onerror="window.__pwned=1">Eve & <b>co</b>'


def make_call(call_id: str, number: str, state: str = "ended", **fields: Any) -> dict[str, Any]:
    """A call as the API serves it (`calls --format json`'s object)."""
    now = time.time()
    call: dict[str, Any] = {
        "call_id": call_id,
        "direction": "incoming",
        "number": number,
        "state": state,
        "started_at": now - 60,
        "outcome": "answered" if state == "ended" else None,
        "name": "",
        "answered_at": now - 50 if state in ("connected", "ended") else None,
        "ended_at": now - 10 if state == "ended" else None,
        "duration": 40.0 if state == "ended" else None,
        "updated_at": now,
    }
    call.update(fields)
    return call


class FakeApi:
    """The API's answers, kept by the test; every request the page makes is recorded."""

    def __init__(self) -> None:
        self.pages: dict[str | None, dict[str, Any]] = {None: {"calls": [], "next": None}}
        self.contacts: list[dict[str, Any]] = []
        self.status: dict[str, Any] = {
            "microsip": {
                "found": True,
                "folder": "C:\\MicroSIP",
                "version": "3.22.3",
                "running": True,
            },
            "hooks": [{"event": e, "state": "ours"} for e in range(7)]
            + [{"event": 7, "state": "ours, another install"}],
            "last_event_at": time.time() - 30,
            "store": {"database": "sqlite:///bridge.db", "ok": True},
            "version": "0.8.0",
        }
        self.logged_in = True
        self.requests: list[tuple[str, str, dict[str, list[str]], Any]] = []
        self.dial_id = "c0000000000000000000dial1"
        self.sockets: list[Any] = []
        self.by_id: dict[str, dict[str, Any]] = {}

    def posts(self, path: str | None = None) -> list[tuple[str, Any]]:
        return [
            (p, body)
            for method, p, _, body in self.requests
            if method == "POST" and (path is None or p == path)
        ]

    def gets(self, path: str) -> list[dict[str, list[str]]]:
        return [q for method, p, q, _ in self.requests if method == "GET" and p == path]

    def handle(self, route: Any) -> None:
        request = route.request
        url = urlsplit(request.url)
        query = parse_qs(url.query)
        body = request.post_data_json if request.method == "POST" else None
        self.requests.append((request.method, url.path, query, body))
        if not self.logged_in:
            route.fulfill(status=401, json={"detail": "missing or wrong token"})
        elif request.method == "POST" and url.path == "/api/v1/control/dial":
            route.fulfill(status=202, json={"call_id": self.dial_id, "command": body.get("number")})
        elif request.method == "POST" and url.path.startswith("/api/v1/control/"):
            route.fulfill(status=202, json={"command": url.path.rsplit("/", 1)[1]})
        elif url.path == "/api/v1/calls":
            route.fulfill(json=self.pages.get(query.get("next", [None])[0], self.pages[None]))
        elif url.path.startswith("/api/v1/calls/"):
            found = self.by_id.get(url.path.rsplit("/", 1)[1])
            if found is None:
                route.fulfill(status=404, json={"detail": "no such call"})
            else:
                route.fulfill(json=found)
        elif url.path == "/api/v1/contacts":
            route.fulfill(json={"contacts": self.contacts})
        elif url.path == "/api/v1/status":
            route.fulfill(json=self.status)
        else:
            route.fulfill(status=404, json={"detail": "Not Found"})

    def on_socket(self, ws: Any) -> None:
        self.sockets.append(ws)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    need_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def daemon_url(bridge_home: Path) -> Iterator[str]:
    """A real daemon serving the page (its API answers are replaced in the browser)."""
    with live_daemon(bridge_home) as daemon:
        assert daemon.address is not None
        host, port = daemon.address
        yield f"http://{host}:{port}"


@pytest.fixture
def fake() -> FakeApi:
    return FakeApi()


@pytest.fixture
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.getbasetemp() / "screenshots"


class Opened:
    """The page, the console errors it logged, and the fake API behind it."""

    def __init__(self, page: Any, errors: list[str], fake: FakeApi) -> None:
        self.page = page
        self.errors = errors
        self.fake = fake

    def socket(self, index: int = -1) -> Any:
        from tests.browser_support import wait_for

        wait_for(
            lambda: len(self.fake.sockets) > (index if index >= 0 else 0), 10, "a socket", self.page
        )
        return self.fake.sockets[index]

    def push(self, cursor: int, call: dict[str, Any], event: str = "ring") -> None:
        message = {
            "cursor": cursor,
            "uid": f"u{cursor}",
            "event": event,
            "number": call["number"],
            "ts": time.time(),
            "call_id": call["call_id"],
            "call": call,
        }
        self.socket().send(json.dumps(message))


def open_page(browser: Any, url: str, fake: FakeApi, viewport: dict[str, int]) -> Opened:
    context = browser.new_context(viewport=viewport)
    # The page itself needs a login too; the API behind it is the fake one.
    token = (Path(os.environ["MICROSIP_BRIDGE_HOME"]) / "token").read_text().strip()
    context.set_extra_http_headers({"Authorization": f"Bearer {token}"})
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.route(re.compile(r".*/api/v1/(?!events/ws).*"), fake.handle)
    page.route_web_socket(re.compile(r".*/api/v1/events/ws.*"), fake.on_socket)
    page.goto(url + "/")
    return Opened(page, errors, fake)


@pytest.fixture
def opened(browser: Any, daemon_url: str, fake: FakeApi) -> Iterator[Opened]:
    result = open_page(browser, daemon_url, fake, DESKTOP)
    yield result
    result.page.context.close()


def test_the_page_loads_its_assets_under_its_csp_without_an_error(opened: Opened) -> None:
    from playwright.sync_api import expect

    page = opened.page
    expect(page.locator("#link-state")).to_have_text("Live")
    expect(page.locator("#health-microsip")).to_contain_text("found 3.22.3, running")
    expect(page.locator("#health-hooks")).to_have_text("all 8 ours")
    # The script ran (it wired the forms) and the style applied (the grid has two columns).
    columns = page.evaluate(
        "getComputedStyle(document.querySelector('.layout')).gridTemplateColumns"
    )
    assert len(columns.split()) == 2, columns
    assert opened.errors == []


def test_caller_names_are_shown_as_text_never_run(opened: Opened) -> None:
    from playwright.sync_api import expect

    page = opened.page
    opened.fake.contacts = [{"name": HOSTILE, "number": "<svg onload=alert(1)>"}]
    ringing = make_call("c1", "<b>5551001</b>", "ringing", name=HOSTILE, outcome=None)
    opened.push(1, ringing)
    card = page.locator('#live-list li[data-call-id="c1"]')
    expect(card.locator(".call-name")).to_have_text(HOSTILE)
    expect(card.locator(".call-number")).to_have_text("<b>5551001</b>")
    opened.push(2, {**ringing, "state": "ended", "outcome": "missed"}, "end")
    expect(card).to_have_count(0)
    page.fill("#contacts-q", "eve")
    page.press("#contacts-q", "Enter")
    expect(page.locator("#contacts-list li strong")).to_have_text(HOSTILE)
    # No element came out of the API's text, and nothing of it ran.
    assert page.locator("main img, main b, main svg").count() == 0
    assert page.evaluate("window.__pwned") is None
    assert opened.errors == []


def test_live_calls_offer_their_buttons_and_post_the_contract(opened: Opened) -> None:
    from playwright.sync_api import expect

    page, fake = opened.page, opened.fake
    opened.push(1, make_call("c1", "5551001", "ringing", name="Jane Roe", outcome=None))
    card = page.locator('#live-list li[data-call-id="c1"]')
    expect(card.locator(".call-state")).to_have_text("Incoming · Ringing")
    # The tab says a call rings; screen readers hear who, once.
    expect(page).to_have_title("(1 ringing) MicroSIP bridge")
    expect(page.locator("#live-announce")).to_have_text("Incoming call from Jane Roe")
    assert card.get_by_role("button").all_text_contents() == ["Answer", "Decline"]
    card.get_by_role("button", name="Answer Jane Roe").click()
    card.get_by_role("button", name="Decline Jane Roe").click()
    expect(page.locator("#problem")).to_be_hidden()

    opened.push(2, make_call("c1", "5551001", "connected", name="Jane Roe", outcome=None))
    expect(card.locator(".call-state")).to_have_text("Incoming · On the call")
    expect(page).to_have_title("MicroSIP bridge")
    assert card.get_by_role("button").all_text_contents()[:4] == [
        "Hang up",
        "Hold",
        "Mute",
        "Keypad",
    ]
    mute = card.get_by_role("button", name="Mute")
    mute.click()
    expect(mute).to_have_attribute("aria-pressed", "true")
    mute.click()
    expect(mute).to_have_attribute("aria-pressed", "false")
    card.get_by_role("button", name="Hold").click()
    keypad = card.get_by_role("button", name="Keypad")
    keypad.click()
    expect(keypad).to_have_attribute("aria-expanded", "true")
    card.get_by_role("button", name="Send 5").click()
    card.get_by_role("button", name="Send #").click()
    card.get_by_role("button", name="Hang up the call with Jane Roe").click()

    def sent() -> list[tuple[str, Any]]:
        return fake.posts()

    from tests.browser_support import wait_for

    wait_for(lambda: len(sent()) >= 8, 10, "every command", page)
    assert sent() == [
        ("/api/v1/control/answer", {}),
        ("/api/v1/control/hangup", {"which": "incoming"}),
        ("/api/v1/control/mute", {"device": "mic", "muted": True}),
        ("/api/v1/control/mute", {"device": "mic", "muted": False}),
        ("/api/v1/control/hold", {}),
        ("/api/v1/control/dtmf", {"digits": "5"}),
        ("/api/v1/control/dtmf", {"digits": "#"}),
        ("/api/v1/control/hangup", {"which": "all"}),
    ]
    # An outgoing call not yet connected is cancelled with hangup "calling" (facts §1.6).
    opened.push(3, make_call("c2", "5550002", "dialing", direction="outgoing", outcome=None))
    page.locator('li[data-call-id="c2"]').get_by_role("button", name="Hang up").click()
    wait_for(lambda: len(sent()) == 9, 10, "the cancel", page)
    assert sent()[-1] == ("/api/v1/control/hangup", {"which": "calling"})
    assert opened.errors == []


def test_a_refused_command_says_why(browser: Any, daemon_url: str, fake: FakeApi) -> None:
    from playwright.sync_api import expect

    opened = open_page(browser, daemon_url, fake, DESKTOP)
    page = opened.page
    page.unroute(re.compile(r".*/api/v1/(?!events/ws).*"))

    def refuse(route: Any) -> None:
        if route.request.method == "POST":
            route.fulfill(status=409, json={"detail": "MicroSIP is not running"})
        else:
            fake.handle(route)

    page.route(re.compile(r".*/api/v1/(?!events/ws).*"), refuse)
    page.fill("#dial-number", "5551234")
    page.press("#dial-number", "Enter")
    expect(page.locator("#dial-result")).to_have_text("Not dialled: MicroSIP is not running")
    expect(page.locator("#problem-text")).to_have_text("dial: MicroSIP is not running")
    page.get_by_role("button", name="Dismiss").click()
    expect(page.locator("#problem")).to_be_hidden()
    page.context.close()


def test_the_feed_reconnects_with_its_last_cursor(opened: Opened) -> None:
    from playwright.sync_api import expect

    page, fake = opened.page, opened.fake
    first = opened.socket(0)
    assert "after=" not in first.url  # no cursor yet: live events only, the log from REST
    from tests.browser_support import wait_for

    wait_for(lambda: fake.gets("/api/v1/calls"), 10, "the call log", page)
    calls_loaded = len(fake.gets("/api/v1/calls"))
    assert calls_loaded == 1
    opened.push(41, make_call("c1", "5551001", "ringing", outcome=None))
    opened.push(42, make_call("c1", "5551001", "connected", outcome=None), "answer")
    expect(page.locator('li[data-call-id="c1"] .call-state')).to_contain_text("On the call")
    page.wait_for_timeout(500)  # the log's reload for the new call (debounced) is done
    loads_before = len(fake.gets("/api/v1/calls"))
    first.close()
    expect(page.locator("#link-state")).to_have_attribute("data-state", "offline")
    expect(page.locator("#link-state")).to_contain_text("Reconnecting in")
    wait_for(lambda: len(fake.sockets) >= 2, 10, "the reconnection", page)
    assert parse_qs(urlsplit(fake.sockets[1].url).query) == {"after": ["42"]}
    expect(page.locator("#link-state")).to_have_text("Live")
    # With a cursor, the log is not fetched again to catch up: the replay does that.
    page.wait_for_timeout(500)
    assert len(fake.gets("/api/v1/calls")) == loads_before
    # A replayed event it has seen already changes nothing; the next one ends the call.
    opened.push(42, make_call("c1", "5551001", "ringing", outcome=None))
    opened.push(43, make_call("c1", "5551001", "ended", outcome="answered"), "end")
    expect(page.locator('li[data-call-id="c1"]')).to_have_count(0)
    assert opened.errors == []


def test_the_call_log_filters_pages_and_exports(opened: Opened) -> None:
    from playwright.sync_api import expect

    page, fake = opened.page, opened.fake
    fake.pages = {
        None: {
            "calls": [make_call(f"c{i}", f"555100{i}", name=f"Caller {i}") for i in range(3)],
            "next": "page-2",
        },
        "page-2": {
            "calls": [make_call("c9", "5559999", outcome="missed", duration=None)],
            "next": None,
        },
    }
    page.get_by_role("button", name="Filter").click()
    rows = page.locator("#log-rows tr")
    expect(rows).to_have_count(3)
    expect(rows.first.locator(".name")).to_have_text("Caller 0")
    expect(page.locator("#log-newer")).to_be_disabled()
    page.get_by_role("button", name="Older").click()
    expect(rows).to_have_count(1)
    expect(rows.first.locator(".outcome")).to_have_text("Missed")
    expect(page.locator("#log-page")).to_have_text("Page 2")
    expect(page.locator("#log-older")).to_be_disabled()
    page.get_by_role("button", name="Newer").click()
    expect(rows).to_have_count(3)
    assert fake.gets("/api/v1/calls")[-2]["next"] == ["page-2"]
    assert "next" not in fake.gets("/api/v1/calls")[-1]

    page.get_by_label("Name or number", exact=True).fill("Roe")
    page.get_by_label("Direction").select_option("incoming")
    page.get_by_label("Outcome").select_option("missed")
    page.get_by_label("From").fill("2026-12-01")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("#log-page")).to_have_text("Page 1")
    wait = fake.gets("/api/v1/calls")[-1]
    assert wait["q"] == ["Roe"] and wait["direction"] == ["incoming"]
    assert wait["outcome"] == ["missed"] and wait["limit"] == ["25"]
    since = float(wait["since"][0])
    local_midnight = page.evaluate("new Date('2026-12-01T00:00:00').getTime() / 1000")
    assert since == local_midnight
    href = page.get_by_role("link", name="Export CSV").get_attribute("href")
    assert href is not None and href.startswith("/api/v1/calls.csv?")
    csv_query = parse_qs(urlsplit(href).query)
    assert csv_query["q"] == ["Roe"] and "limit" not in csv_query and "next" not in csv_query
    page.get_by_role("button", name="Clear").click()
    expect(page.get_by_role("link", name="Export CSV")).to_have_attribute(
        "href", "/api/v1/calls.csv"
    )
    assert opened.errors == []


def test_dialing_from_the_keyboard_and_from_contacts(opened: Opened) -> None:
    from playwright.sync_api import expect

    page, fake = opened.page, opened.fake
    # The dial box comes first in the tab order after the skip link.
    page.keyboard.press("Tab")
    expect(page.locator(".skip")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("#dial-number")).to_be_focused()
    page.keyboard.type("555 1234")
    page.keyboard.press("Enter")
    card = page.locator(f'#live-list li[data-call-id="{fake.dial_id}"]')
    expect(card.locator(".call-state")).to_have_text("Outgoing · Dialing")
    expect(page.locator("#dial-result")).to_contain_text(fake.dial_id)
    assert fake.posts() == [("/api/v1/control/dial", {"number": "555 1234"})]

    fake.contacts = [{"name": "Bob Stone", "number": "1002"}]
    page.get_by_label("Contact name or number").fill("bob")
    page.keyboard.press("Enter")
    expect(page.locator("#contacts-list li")).to_have_count(1)
    assert fake.gets("/api/v1/contacts")[-1] == {"q": ["bob"]}
    page.get_by_role("button", name="Call Bob Stone").click()
    from tests.browser_support import wait_for

    wait_for(lambda: len(fake.posts()) == 2, 10, "the second dial", page)
    assert fake.posts()[-1] == ("/api/v1/control/dial", {"number": "1002"})
    assert opened.errors == []


def test_a_dialled_call_that_never_shows_up_live_is_read_from_the_api(opened: Opened) -> None:
    from playwright.sync_api import expect

    page, fake = opened.page, opened.fake
    page.fill("#dial-number", "5550009")
    page.press("#dial-number", "Enter")
    card = page.locator(f'#live-list li[data-call-id="{fake.dial_id}"]')
    expect(card).to_have_count(1)
    # MicroSIP never placed it: no event comes; the daemon closed the call on its own.
    fake.by_id[fake.dial_id] = make_call(
        fake.dial_id, "5550009", direction="outgoing", outcome="never_placed", duration=None
    )
    expect(card).to_have_count(0, timeout=15_000)
    assert f"/api/v1/calls/{fake.dial_id}" in [p for m, p, _, _ in fake.requests if m == "GET"]


def test_without_a_login_the_page_says_how_to_log_in(
    browser: Any, daemon_url: str, fake: FakeApi
) -> None:
    from playwright.sync_api import expect

    fake.logged_in = False
    opened = open_page(browser, daemon_url, fake, DESKTOP)
    notice = opened.page.get_by_role("alert").filter(has_text="Not logged in")
    expect(notice).to_be_visible()
    expect(notice).to_contain_text("microsip-bridge serve")
    expect(notice).to_contain_text("microsip-bridge open")
    fake.logged_in = True
    opened.page.get_by_role("button", name="Filter").click()
    expect(notice).to_be_hidden()
    opened.page.context.close()


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["1280x800", "390x844"])
def test_the_page_is_clean_on_a_desk_and_on_a_phone(
    browser: Any, daemon_url: str, fake: FakeApi, viewport: dict[str, int], screenshots: Path
) -> None:
    from playwright.sync_api import expect

    fake.pages[None] = {
        "calls": [
            make_call("c1", "+1 (415) 555-0142", name="Jane Roe"),
            make_call("c2", "5551002", outcome="missed", duration=None, name="Front desk"),
            make_call(
                "c3",
                "5550003",
                direction="outgoing",
                outcome="busy",
                duration=None,
                name="A caller with a very long name that must wrap, not widen the page",
            ),
        ],
        "next": "more",
    }
    opened = open_page(browser, daemon_url, fake, viewport)
    page = opened.page
    expect(page.locator("#log-rows tr")).to_have_count(3)
    opened.push(1, make_call("c4", "5551004", "ringing", name="Ringing Caller", outcome=None))
    opened.push(2, make_call("c5", "5551005", "connected", name="On The Line", outcome=None))
    page.locator('li[data-call-id="c5"]').get_by_role("button", name="Keypad").click()
    expect(page.locator("#live-list li")).to_have_count(2)
    name = f"dashboard-{viewport['width']}x{viewport['height']}"
    path = shot(page, screenshots, name)
    assert path.stat().st_size > 10_000
    # Nothing is wider than the screen: no sideways scrolling on a phone.
    overflow = page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, f"the page is {overflow}px wider than the {viewport['width']}px screen"
    # Every button is big enough to hit with a finger and has a name.
    for handle in page.get_by_role("button").element_handles():
        box = handle.bounding_box()
        if box is not None:
            assert box["height"] >= 30, handle.text_content()
            assert (handle.get_attribute("aria-label") or handle.text_content() or "").strip()
    if viewport is PHONE:
        # One column: the live calls come first, then the dial box, then the log.
        tops = [
            page.locator(sel).bounding_box()["y"]  # type: ignore[index]
            for sel in (".panel-live", ".panel-dial", ".panel-log")
        ]
        assert tops == sorted(tops)
    assert opened.errors == []
    page.context.close()
