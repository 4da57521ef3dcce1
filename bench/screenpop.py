"""Benchmark: hook spawn -> browser opened for a screen-pop rule, against hook spawn -> event
stored, in the same run.

    python bench/screenpop.py [--quick] [--runs N]

A real daemon runs in its own process on a temporary SQLite file, with one rule (``on =
["ringing"]``, ``open = "http://crm.example.invalid/?q={e164}&id={call_id}"``) and ``BROWSER``
pointing at a tiny script that appends the time it started and the URL it got to a file, so the
daemon's ``webbrowser.open`` runs it as it would run a browser. Each run fires the ``incoming``
hook (untimed), then times the ``ring`` hook: *stored* is when the hook process exits (it
returns once the daemon has committed the event), *browser* is the time the browser script
recorded. Medians of N runs (N >= 20; 3 with ``--quick``), and browser/stored as a ratio: what
a screen-pop costs beyond storing the event (the commit, the rule, a thread of the launcher,
the browser's own process start).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from microsip_bridge.wire import INLINE_CODE

HOOK = [sys.executable, "-I", f"-c{INLINE_CODE}"]
BROWSER_SCRIPT = """\
import sys, time
t = time.time()
with open(sys.argv[1], "a", encoding="utf-8") as f:
    f.write(f"{t!r} {sys.argv[2]}\\n")
"""
RULE = """\
[[rules]]
name = "crm pop"
on = ["ringing"]
open = "http://crm.example.invalid/?q={e164}&id={call_id}"
"""
DAEMON_CODE = """
import sys
from pathlib import Path
from microsip_bridge.server.runner import serve
from microsip_bridge.server.settings import DaemonSettings
# No rate limit: the benchmark pops more than rules_rate's default 10 a minute.
settings = DaemonSettings(home=Path(sys.argv[1]), host="127.0.0.1", port=0, rules_rate=0.0)
serve(settings, configure_logging=False)
"""


def start_daemon(home: Path, env: dict[str, str], timeout: float = 60.0) -> subprocess.Popen[bytes]:
    """A real daemon in its own process; returns once it listens (daemon.json is out)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", DAEMON_CODE, str(home)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    give_up = time.monotonic() + timeout
    while time.monotonic() < give_up:
        if proc.poll() is not None:
            err = proc.stderr.read().decode() if proc.stderr else ""
            raise RuntimeError(f"the daemon did not start: {err.strip()}")
        try:
            info = json.loads((home / "daemon.json").read_text("utf-8"))
        except (OSError, ValueError):
            info = None
        if isinstance(info, dict) and info.get("pid") == proc.pid:
            return proc
        time.sleep(0.01)
    proc.kill()
    raise RuntimeError("the daemon did not publish daemon.json in time")


def opened(log: Path) -> dict[str, float]:
    """The URLs the browser script got, with the time it started."""
    if not log.exists():
        return {}
    out: dict[str, float] = {}
    for line in log.read_text(encoding="utf-8").splitlines():
        stamp, url = line.split(" ", 1)
        out[url] = float(stamp)
    return out


def one_run(
    env: dict[str, str], log: Path, number: str, timeout: float = 30.0
) -> tuple[float, float]:
    """(stored, browser) seconds after the ring hook was spawned, for one call from ``number``."""
    subprocess.run([*HOOK, "incoming", number], env=env, check=True, timeout=timeout)
    start = time.time()
    subprocess.run([*HOOK, "ring", number], env=env, check=True, timeout=timeout)
    stored = time.time() - start
    give_up = time.monotonic() + timeout
    while time.monotonic() < give_up:
        for url, stamp in opened(log).items():
            if f"q=%2B{number[1:]}&" in url:
                return stored, stamp - start
        time.sleep(0.002)
    raise RuntimeError(f"no browser opened for {number} within {timeout} s")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 runs (the test suite's smoke run)")
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args(argv)
    runs = 3 if args.quick else max(20, args.runs)
    home = Path(tempfile.mkdtemp(prefix="bench-screenpop-"))
    try:
        script = home / "browser.py"
        script.write_text(BROWSER_SCRIPT, encoding="utf-8")
        log = home / "opened.txt"
        (home / "config.toml").write_text(RULE, encoding="utf-8")
        words = [sys.executable, "-I", str(script), str(log)]
        browser = " ".join(shlex.quote(w) for w in words) + " %s"
        env = {**os.environ, "MICROSIP_BRIDGE_HOME": str(home), "BROWSER": browser}
        daemon = start_daemon(home, env)
        try:
            one_run(env, log, "+12025550100")  # warm-up: first imports, first browser
            stored: list[float] = []
            popped: list[float] = []
            for i in range(runs):
                s, b = one_run(env, log, f"+1202555{1000 + i:04d}")
                stored.append(s)
                popped.append(b)
        finally:
            daemon.terminate()
            try:
                daemon.wait(30)
            except subprocess.TimeoutExpired:
                daemon.kill()
                daemon.wait()
            if daemon.stderr is not None:
                daemon.stderr.close()
    finally:
        shutil.rmtree(home, ignore_errors=True)
    s_med = statistics.median(stored) * 1000
    b_med = statistics.median(popped) * 1000
    print(f"screen-pop: median of {runs} runs, one daemon (SQLite), BROWSER = a recording script")
    print(f"  hook spawn -> event stored    {s_med:8.1f} ms  (baseline)")
    print(f"  hook spawn -> browser opened  {b_med:8.1f} ms  {b_med / s_med:5.2f}x")
    print(f"  p90 browser opened            {sorted(popped)[int(0.9 * (runs - 1))] * 1000:8.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
