"""The dashboard's login against a real daemon: the one-time link `serve` prints and `open` makes,
the session cookie it sets (flags, single use, redirect), the cookie opening the API, logout, and
sessions kept across a restart; the token never in a page, a link, the output or the log."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx2
import pytest

from microsip_bridge import wire
from microsip_bridge.server import sessions as sessions_module
from microsip_bridge.server.runner import Daemon
from microsip_bridge.server.sessions import (
    SESSIONS_NAME,
    LoginCodes,
    Sessions,
    session_cookie_name,
)
from tests.cli_support import run
from tests.daemon_support import hook_env, settings_for, wait_for_daemon_file

posix_only = pytest.mark.skipif(os.name != "posix", reason="POSIX permissions and signals")
WEEK = 7 * 86400


@dataclass
class Running:
    daemon: Daemon
    banner: str

    @property
    def base(self) -> str:
        host, port = self.daemon.wait_listening()
        return f"http://{host}:{port}"

    @property
    def cookie_name(self) -> str:
        return session_cookie_name(self.daemon.wait_listening()[1])

    def link(self) -> str:
        [line] = [line for line in self.banner.splitlines() if "dashboard:" in line]
        return line.split()[1]

    def client(self, **headers: str) -> httpx2.Client:
        return httpx2.Client(base_url=self.base, headers=headers, timeout=30)


@pytest.fixture
def running(bridge_home: Path) -> Iterator[Running]:
    """A real daemon in a thread, with what it announced."""
    lines: list[str] = []
    daemon = Daemon(settings_for(bridge_home), announce=lines.append, configure_logging=False)
    thread = threading.Thread(target=daemon.run, daemon=True)
    thread.start()
    try:
        daemon.wait_listening()
        yield Running(daemon, "\n".join(lines))
    finally:
        daemon.stop()
        thread.join(60)


def token(home: Path) -> str:
    return (home / "token").read_text().strip()


def log_in(running: Running, link: str | None = None) -> httpx2.Response:
    with httpx2.Client(timeout=30) as browser:
        return browser.get(link or running.link())


def cookie_of(response: httpx2.Response) -> tuple[str, str, str]:
    """(name, value, attributes) of the response's one Set-Cookie."""
    [header] = response.headers.get_list("set-cookie")
    pair, _, attributes = header.partition(";")
    name, _, value = pair.partition("=")
    return name.strip(), value.strip(), attributes


# --- the link and the cookie ---------------------------------------------------------------------


def test_the_printed_link_opens_a_strict_session_once_and_drops_the_code(
    running: Running, bridge_home: Path
) -> None:
    link = running.link()
    assert link.startswith(f"{running.base}/login?once=")
    first = log_in(running, link)
    assert first.status_code == 303
    assert first.headers["location"] == "/"  # the code leaves the address bar
    assert first.headers["cache-control"] == "no-store"
    assert first.headers["referrer-policy"] == "no-referrer"
    name, value, attributes = cookie_of(first)
    assert name == running.cookie_name
    flags = {a.strip().split("=")[0].lower(): a.strip() for a in attributes.split(";")}
    assert "httponly" in flags
    assert flags["samesite"].lower() == "samesite=strict"
    assert flags["path"] == "Path=/"
    assert flags["max-age"] == f"Max-Age={WEEK}"
    assert value not in link and token(bridge_home) not in value
    # Single use: the same link again, from a browser without the cookie.
    again = log_in(running, link)
    assert again.status_code == 401
    assert again.headers["content-type"].startswith("text/html")
    assert "microsip-bridge open" in again.text
    assert "set-cookie" not in again.headers
    assert token(bridge_home) not in again.text


def test_a_code_that_is_unknown_or_damaged_opens_nothing(running: Running) -> None:
    link = running.link()
    for bad in (
        link[:-1] + ("A" if link[-1] != "A" else "B"),
        f"{running.base}/login",
        f"{running.base}/login?once=",
        f"{running.base}/login?once={'x' * 5000}",
        f"{running.base}/login?once={token(running.daemon.settings.home)}",  # not a code
    ):
        answer = log_in(running, bad)
        assert answer.status_code == 401, bad
        assert "set-cookie" not in answer.headers
    assert log_in(running, link).status_code == 303  # the good one was not spent by those


def test_the_cookie_opens_the_api_and_the_page(running: Running) -> None:
    name, value, _ = cookie_of(log_in(running))
    own = {"Cookie": f"{name}={value}", "Origin": running.base}
    with running.client(**own) as browser:
        assert browser.get("/api/v1/openapi.json").status_code == 200
        page = browser.get("/")
        assert page.status_code == 200 and "/static/dashboard.js" in page.text
        posted = browser.post(wire.HOOK_EVENTS_PATH, json=wire.make_record("ring", "1001"))
        assert posted.status_code == 202
        # A page of another site cannot ride on the cookie (SameSite aside, the Origin says it).
        forged = browser.post(
            wire.HOOK_EVENTS_PATH,
            json=wire.make_record("ring", "1002"),
            headers={"Origin": "http://evil.example"},
        )
        assert forged.status_code == 403
        # Clicking the used link again while logged in just goes to the dashboard.
        again = browser.get(running.link().removeprefix(running.base))
        assert again.status_code == 303 and "set-cookie" not in again.headers
    with running.client() as stranger:
        assert stranger.get("/").status_code == 401
        assert "microsip-bridge open" in stranger.get("/").text


def test_logout_ends_the_session_for_good(running: Running, bridge_home: Path) -> None:
    name, value, _ = cookie_of(log_in(running))
    with running.client(Cookie=f"{name}={value}", Origin=running.base) as browser:
        out = browser.post("/api/v1/logout")
        assert out.status_code == 204
        cleared_name, cleared, attributes = cookie_of(out)
        assert (cleared_name, cleared.strip('"')) == (name, "")
        assert "Max-Age=0" in attributes
        # The value itself is dead, not only forgotten by the browser.
        assert browser.get("/api/v1/openapi.json").status_code == 401
        assert browser.post("/api/v1/logout").status_code == 401
    assert value not in (bridge_home / SESSIONS_NAME).read_text()


def test_the_api_makes_fresh_links_with_the_token_only(running: Running, bridge_home: Path) -> None:
    with running.client(Authorization=f"Bearer {token(bridge_home)}") as api:
        made = [api.post("/api/v1/login-links") for _ in range(3)]
    assert {answer.status_code for answer in made} == {201}
    urls = [answer.json()["url"] for answer in made]
    assert len(set(urls)) == 3
    assert all(answer.json()["expires_in"] == 600 for answer in made)
    assert all(url.startswith(f"{running.base}/login?once=") for url in urls)
    assert all(token(bridge_home) not in url for url in urls)
    assert [log_in(running, url).status_code for url in urls] == [303, 303, 303]
    with running.client() as anonymous:
        assert anonymous.post("/api/v1/login-links").status_code == 401


# --- codes and sessions, with a clock of our own ------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def test_a_code_works_once_and_only_within_its_lifetime() -> None:
    clock = Clock()
    codes = LoginCodes(lifetime=600, clock=clock)
    late, spent, fresh = codes.issue(), codes.issue(), codes.issue()
    assert codes.redeem(spent)
    assert not codes.redeem(spent)
    clock.now += 599
    assert codes.redeem(fresh)
    clock.now += 2
    assert not codes.redeem(late)
    assert not codes.redeem("")
    assert not codes.redeem("x" * 100)


def test_codes_are_capped_the_oldest_going_first() -> None:
    clock = Clock()
    codes = LoginCodes(clock=clock)
    first = codes.issue()
    clock.now += 1
    rest = [codes.issue() for _ in range(sessions_module.MAX_LOGIN_CODES)]
    assert not codes.redeem(first)
    assert all(codes.redeem(code) for code in rest)


@posix_only
def test_sessions_are_kept_as_digests_in_a_private_file_and_expire(tmp_path: Path) -> None:
    clock = Clock()
    path = tmp_path / SESSIONS_NAME
    store = Sessions(path, lifetime=3600, clock=clock)
    value = store.open()
    assert store.valid(value)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert value not in path.read_text()
    # Another daemon (a restart) reads them back.
    again = Sessions(path, lifetime=3600, clock=clock)
    assert again.valid(value)
    assert not again.valid(value + "x")
    clock.now += 3601
    assert not again.valid(value)
    assert not Sessions(path, lifetime=3600, clock=clock).valid(value)


@pytest.mark.parametrize("text", ["", "{", "[1, 2]", '{"sessions": 5}', '{"sessions": {"a": "b"}}'])
def test_a_damaged_sessions_file_means_logging_in_again(tmp_path: Path, text: str) -> None:
    path = tmp_path / SESSIONS_NAME
    path.write_text(text)
    store = Sessions(path, lifetime=3600)
    value = store.open()  # and it is written anew
    assert Sessions(path, lifetime=3600).valid(value)


def test_sessions_are_capped_the_soonest_to_expire_going_first(tmp_path: Path) -> None:
    clock = Clock()
    store = Sessions(tmp_path / SESSIONS_NAME, lifetime=3600, clock=clock)
    first = store.open()
    clock.now += 1
    rest = [store.open() for _ in range(sessions_module.MAX_SESSIONS)]
    assert not store.valid(first)
    assert all(store.valid(value) for value in rest)


# --- serve and open, as users run them -----------------------------------------------------------


def start_serve(home: Path, *args: str) -> subprocess.Popen[str]:
    env = {**hook_env(home), "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "microsip_bridge", "serve", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def banner_link(proc: subprocess.Popen[str]) -> tuple[str, list[str]]:
    """Read the banner up to its login link; (the link, the lines read)."""
    assert proc.stdout is not None
    lines = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if "dashboard:" in line:
            return line.split()[1], lines
    raise AssertionError(f"no login link in {lines}")


def stop(proc: subprocess.Popen[str]) -> tuple[str, str]:
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    return out, err


def cli(home: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "microsip_bridge", *args],
        env={**hook_env(home), **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


FAKE_BROWSER = """#!{python}
import http.client, json, sys, urllib.parse
url = urllib.parse.urlsplit(sys.argv[1])
conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
conn.request("GET", url.path + "?" + url.query)
answer = conn.getresponse()
with open({out!r}, "w") as fh:
    json.dump({{"url": sys.argv[1], "status": answer.status,
               "cookie": answer.getheader("set-cookie")}}, fh)
"""


@posix_only
def test_serve_prints_a_link_open_makes_more_and_sessions_survive_a_restart(
    bridge_home: Path, tmp_path: Path
) -> None:
    proc = start_serve(bridge_home, "--port", "0")
    try:
        link, _ = banner_link(proc)
        info = wait_for_daemon_file(bridge_home, proc)  # type: ignore[arg-type]  # text mode
        port = info["port"]
        first = httpx2.get(link, timeout=30)
        assert first.status_code == 303
        name, value, _ = cookie_of(first)
        # `open --print`: a fresh link, alone on its line.
        printed = cli(bridge_home, "open", "--print")
        assert printed.returncode == 0, printed.stderr
        fresh = printed.stdout.strip()
        assert fresh.startswith(f"http://127.0.0.1:{port}/login?once=") and fresh != link
        assert httpx2.get(fresh, timeout=30).status_code == 303
        # `open`: the browser gets a link of its own (BROWSER names the browser to run).
        browser = tmp_path / "fake-browser"
        seen = tmp_path / "seen.json"
        browser.write_text(FAKE_BROWSER.format(python=sys.executable, out=str(seen)))
        browser.chmod(0o700)
        opened = cli(bridge_home, "open", BROWSER=str(browser))
        assert opened.returncode == 0, opened.stderr
        visit = json.loads(seen.read_text())
        assert visit["status"] == 303 and visit["cookie"].startswith(f"{name}=")
        assert visit["url"] not in opened.stdout  # opened, not shown
    finally:
        out, err = stop(proc)
    # The same port after a restart: the cookie still opens the API.
    again = start_serve(bridge_home, "--port", str(port))
    try:
        banner_link(again)
        with httpx2.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            answer = http.get("/api/v1/openapi.json", headers={"Cookie": f"{name}={value}"})
            assert answer.status_code == 200
    finally:
        out2, err2 = stop(again)
    secret = token(bridge_home)
    log = (bridge_home / "logs" / "daemon.log").read_text()
    for text in (link, fresh, out, err, out2, err2, log, printed.stdout, opened.stdout):
        assert secret not in text
    assert "once=" not in log  # the codes are shown to the user, never logged


def test_open_says_the_daemon_is_not_running(
    capsys: pytest.CaptureFixture[str], bridge_home: Path
) -> None:
    code, out, err = run(capsys, "open", "--print")
    assert (code, out) == (3, "")
    assert "the daemon is not running" in err and "microsip-bridge serve" in err
    # A daemon.json left by a daemon killed hard is not a running daemon.
    (bridge_home / "daemon.json").write_text(json.dumps({"host": "127.0.0.1", "port": 9, "pid": 1}))
    assert run(capsys, "open")[0] == 3


@pytest.mark.parametrize(("started", "shown"), [(True, False), (False, True)])
def test_open_prints_the_link_only_when_no_browser_starts(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    running: Running,
    started: bool,
    shown: bool,
) -> None:
    opened: list[str] = []

    def fake_open(url: str) -> bool:
        opened.append(url)
        return started

    monkeypatch.setattr("webbrowser.open", fake_open)
    code, out, err = run(capsys, "open")
    assert code == 0
    [url] = opened
    assert (url in out) is shown
    assert ("no browser" in err) is shown
    assert log_in(running, url).status_code == 303
