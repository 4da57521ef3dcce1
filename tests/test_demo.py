"""The README's main job, `python3 dev.py demo`: it plays its calls, then ends on the dashboard,
served with the simulator until Ctrl-C; `--once` stops after the calls."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.slow


def demo(home: Path, *args: str) -> subprocess.Popen[str]:
    if Path(sys.prefix).resolve() != (REPO / ".venv").resolve():
        pytest.skip("the demo runs in the clone's own .venv (dev.py makes it)")
    env = {**os.environ, "MSB_DEMO_HOME": str(home)}
    env.pop("MICROSIP_BRIDGE_HOME", None)
    return subprocess.Popen(
        [sys.executable, str(REPO / "dev.py"), "demo", "--speed", "4", *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        # Its own process group: Ctrl-C in a terminal reaches the demo and its children.
        start_new_session=True,
    )


def test_the_demo_ends_on_the_dashboard_until_ctrl_c(tmp_path: Path) -> None:
    home = tmp_path / "demo-home"
    proc = demo(home)
    assert proc.stdout is not None
    seen: list[str] = []
    link = None
    try:
        for line in proc.stdout:
            seen.append(line)
            found = re.match(r"Open the dashboard: (http://\S+)", line)
            if found:
                link = found.group(1)
            if "until you press Ctrl-C" in line:
                break
        output = "".join(seen)
        assert link is not None, output
        assert "Jane Doe" in output  # the calls were played and listed first
        assert "== 3. The dashboard" in output
        info = json.loads((home / "daemon.json").read_text("utf-8"))
        assert link.startswith(info["url"] + "/login?once=")
        # The link logs a browser in (a cookie) and leads to the dashboard.
        browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
        with browser.open(link, timeout=10) as page:
            assert page.status == 200
            assert page.url == info["url"] + "/"
            assert b"/static/dashboard.js" in page.read()
        # The simulated MicroSIP runs too, for the calls the dashboard places.
        marker = home / "MicroSIP" / "microsip-sim.pid"
        give_up = time.monotonic() + 30
        while not marker.exists() and time.monotonic() < give_up:
            time.sleep(0.05)
        assert marker.exists()
        os.killpg(proc.pid, signal.SIGINT)
        rest, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        proc.stdout.close()
    assert proc.returncode == 0, "".join(seen) + rest
    assert "Traceback" not in rest
    assert not (home / "daemon.json").exists()
    assert not (home / "MicroSIP" / "microsip-sim.pid").exists()


def test_the_demo_once_stops_after_its_calls(tmp_path: Path) -> None:
    home = tmp_path / "demo-home"
    proc = demo(home, "--once")
    output, _ = proc.communicate(timeout=110)
    assert proc.returncode == 0, output
    assert "Jane Doe" in output and "rejected" in output
    assert "== 3. The dashboard" not in output
    assert not (home / "daemon.json").exists()
