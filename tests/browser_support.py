"""Helpers for the dashboard's browser tests: Debian's Chromium driven by Playwright, a real
daemon (``microsip-bridge serve``) and a running simulator with our hooks installed."""

from __future__ import annotations

import base64
import http.client
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from microsip_bridge.microsip.hook_keys import SavedHooks, install_hooks
from microsip_bridge.microsip.inifile import IniDocument
from microsip_bridge.sim.channel import CommandChannel
from microsip_bridge.sim.folder import create_folder
from microsip_bridge.sim.simulator import Simulator

CHROMIUM = Path("/usr/bin/chromium")
# CI sets MSB_REQUIRE_BROWSER=1 (.ci/run): there a missing browser fails these tests.
BROWSER_REQUIRED = os.environ.get("MSB_REQUIRE_BROWSER") == "1"
NO_BROWSER = "needs Debian's chromium at /usr/bin/chromium (apt-get install chromium)"
# Debian's build as stack.md §4.3 runs it: no sandbox (root in CI), no GPU, no network of its own.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
BIN = Path(sys.executable).parent


def need_browser() -> None:
    """Skip the calling test without a browser (fail instead when CI requires one)."""
    problem = None
    if not CHROMIUM.is_file():
        problem = NO_BROWSER
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            problem = "needs the playwright package (pip install -e '.[dev]')"
    if problem is None:
        return
    if BROWSER_REQUIRED:
        pytest.fail(f"MSB_REQUIRE_BROWSER=1 but the dashboard cannot be tested: {problem}")
    pytest.skip(problem)


@dataclass
class Served:
    """A running ``microsip-bridge serve``: where it listens, its token, what it printed."""

    proc: subprocess.Popen[bytes]
    url: str
    token: str
    home: Path
    log: Path

    def output(self) -> str:
        return self.log.read_text("utf-8", errors="replace")

    def get(self, path: str, *, token: bool = True) -> tuple[int, bytes]:
        """A GET on the daemon (with the token); its status and body."""
        host, port = self.url.removeprefix("http://").rsplit(":", 1)
        conn = http.client.HTTPConnection(host, int(port), timeout=10)
        headers = {"Authorization": f"Bearer {self.token}"} if token else {}
        try:
            conn.request("GET", path, headers=headers)
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    def has_websocket(self, path: str) -> bool:
        """Whether ``path`` upgrades to a WebSocket for a client with the token (101)."""
        host, port = self.url.removeprefix("http://").rsplit(":", 1)
        conn = http.client.HTTPConnection(host, int(port), timeout=10)
        key = base64.b64encode(secrets.token_bytes(16)).decode("ascii")
        try:
            conn.request(
                "GET",
                path,
                headers={
                    "Authorization": f"Bearer {self.token}",
                    "Connection": "Upgrade",
                    "Upgrade": "websocket",
                    "Sec-WebSocket-Version": "13",
                    "Sec-WebSocket-Key": key,
                },
            )
            return conn.getresponse().status == 101
        except (OSError, http.client.HTTPException):
            return False
        finally:
            conn.close()

    def api_paths(self) -> set[str]:
        """The paths of the daemon's OpenAPI document."""
        status, body = self.get("/api/v1/openapi.json")
        return set(json.loads(body).get("paths", {})) if status == 200 else set()

    def login_link(self) -> str | None:
        """The one-time login link ``serve`` printed, if it prints one."""
        found = re.search(r"http://\S+/login\?once=[\w\-.~%]+", self.output())
        return found.group(0) if found else None


def wait_for(predicate: Any, timeout: float, what: str, page: Any = None) -> Any:
    """Poll ``predicate``; with a Playwright ``page``, wait through it: the sync API runs the
    page's handlers (routes, sockets) only while one of its calls waits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        if page is not None:
            page.wait_for_timeout(50)
        else:
            time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


@contextmanager
def serve(home: Path, ini: Path | None = None, port: int = 0) -> Iterator[Served]:
    """``microsip-bridge serve`` as users run it, on loopback (port 0: a free one), stopped with
    SIGTERM."""
    (home / "config.toml").write_text("reject_timeout = 3\nsweep_interval = 1\n")
    log = home / "serve.log"
    args = ["serve", "--port", str(port)] + (["--ini", str(ini)] if ini else [])
    env = {**os.environ, "MICROSIP_BRIDGE_HOME": str(home)}
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(BIN / "microsip-bridge"), *args], stdout=out, stderr=out, env=env
        )
    try:
        info = wait_for(lambda: _daemon_info(home, proc), 30, "the daemon to start")
        token = (home / "token").read_text("ascii").strip()
        # The banner (and a login link, when there is one) is printed right after daemon.json.
        wait_for(lambda: "Ctrl-C" in log.read_text("utf-8", errors="replace"), 10, "the banner")
        yield Served(proc, info["url"], token, home, log)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:  # pragma: no cover - a hung daemon fails the test
            proc.kill()
            pytest.fail("the daemon did not stop on SIGTERM")


def _daemon_info(home: Path, proc: subprocess.Popen[bytes]) -> dict[str, Any] | None:
    if proc.poll() is not None:
        pytest.fail(f"the daemon exited with {proc.returncode}")
    try:
        info = json.loads((home / "daemon.json").read_text("utf-8"))
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) and info.get("pid") == proc.pid else None


def sim_folder(root: Path) -> Path:
    """A simulated MicroSIP folder with our hook installed, as `hooks install` would."""
    sim = create_folder(root / "MicroSIP", domain="pbx.example.invalid")
    doc = IniDocument.load(sim.ini)
    install_hooks(doc, Path(sys.executable), SavedHooks(), flag="-I").commit()
    doc.save(backups=0)
    return sim.path


@contextmanager
def running_sim(folder: Path) -> Iterator[Simulator]:
    """The simulator running on ``folder`` with its command channel open and its scheduler
    running (as `sim --serve`): remote parties answer, callers hang up on their own."""
    sim = Simulator(folder, hook_timeout=10.0)
    sim.start()
    channel = CommandChannel(sim)
    channel.start()
    scheduler = threading.Thread(target=sim.run, kwargs={"until_idle": False}, daemon=True)
    scheduler.start()
    try:
        yield sim
    finally:
        sim.stop()
        scheduler.join(30)
        channel.close()
        sim.close()


def shot(page: Any, folder: Path, name: str) -> Path:
    """A full-page screenshot under ``folder`` (the test's own temporary folder)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
