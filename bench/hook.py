"""Benchmark: the hook's wall time against ``python -I -c pass`` (targets: 1.5x up, 2x down).

    python bench/hook.py [--quick] [--runs N]

MicroSIP waits for every hook it runs (facts §2.3), so the hook's whole process is what counts:
interpreter start, imports, the POST and the daemon's durable commit (daemon up), or the
fsync'd spool append (daemon down). Measured side by side, interleaved run by run, with the
baseline ``python -I -c pass`` from the same interpreter, medians of N runs each (N >= 20;
3 with ``--quick``). A real daemon runs in its own process on a temporary SQLite file.

Two ways to start the hook are measured:

* ``direct``: ``python -I -c__import__('microsip_bridge.hook').hook.main() EVENT NUMBER``
  (``wire.INLINE_CODE``), which pays only for the hook and survives MicroSIP's unquoted
  re-joining of the command line (facts §2.3), so ``hooks install`` can write it;
* ``script``: the ``microsip-bridge-hook`` entry point that pip installs, whose wrapper imports
  ``re`` (about 7 ms) before the hook runs (on Windows pip's launcher .exe also starts python
  as a second process).

The targets apply to the hook; both forms are reported.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from microsip_bridge.wire import INLINE_CODE

TARGET_UP = 1.5
TARGET_DOWN = 2.0
DIRECT = [sys.executable, "-I", f"-c{INLINE_CODE}"]
SCRIPT = Path(sys.executable).with_name(
    "microsip-bridge-hook.exe" if sys.platform == "win32" else "microsip-bridge-hook"
)
BASELINE = [sys.executable, "-I", "-c", "pass"]

DAEMON_CODE = """
import sys
from pathlib import Path
from microsip_bridge.server.runner import serve
from microsip_bridge.server.settings import DaemonSettings
serve(DaemonSettings(home=Path(sys.argv[1]), host="127.0.0.1", port=0), configure_logging=False)
"""


def start_daemon(home: Path, timeout: float = 60.0) -> subprocess.Popen[bytes]:
    """A real daemon in a process of its own; returns once it listens (daemon.json is out)."""
    env = {**os.environ, "MICROSIP_BRIDGE_HOME": str(home)}
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


def stop_daemon(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    if proc.stderr is not None:
        proc.stderr.close()


def stored_count(home: Path) -> int:
    with sqlite3.connect(home / "bridge.db") as conn:
        return int(conn.execute("SELECT count(*) FROM events").fetchone()[0])


def spooled_count(home: Path) -> int:
    path = home / "spool.jsonl"
    return len(path.read_bytes().splitlines()) if path.exists() else 0


def timed(command: Sequence[str], env: dict[str, str] | None) -> float:
    start = time.perf_counter()
    result = subprocess.run(command, env=env, check=False)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(f"{command[-2:]} exited with {result.returncode}")
    return elapsed


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 runs each, for the smoke test")
    parser.add_argument("--runs", type=int, default=None, help="runs per variant (>= 20)")
    args = parser.parse_args(list(argv) if argv is not None else None)
    runs = 3 if args.quick else max(20, args.runs or 30)
    warmup = 1 if args.quick else 3

    folder = Path(tempfile.mkdtemp(prefix="msb-bench-hook-"))
    up, down = folder / "up", folder / "down"
    up.mkdir()
    down.mkdir()
    env_up = {**os.environ, "MICROSIP_BRIDGE_HOME": str(up)}
    env_down = {**os.environ, "MICROSIP_BRIDGE_HOME": str(down)}
    forms = {"direct": DIRECT}
    if SCRIPT.is_file():
        forms["script"] = [str(SCRIPT)]
    variants: dict[str, tuple[list[str], dict[str, str] | None]] = {"baseline": (BASELINE, None)}
    for form, command in forms.items():
        variants[f"up/{form}"] = ([*command, "incoming", "5551234"], env_up)
        variants[f"down/{form}"] = ([*command, "incoming", "5551234"], env_down)

    daemon = start_daemon(up)
    samples: dict[str, list[float]] = {name: [] for name in variants}
    try:
        for i in range(warmup + runs):
            for name, (command, env) in variants.items():
                elapsed = timed(command, env)
                if i >= warmup:
                    samples[name].append(elapsed)
        posted = stored_count(up)
    finally:
        stop_daemon(daemon)
    hooks_per_home = (warmup + runs) * len(forms)
    problems = []
    if spooled_count(up) or posted != hooks_per_home:
        problems.append(f"daemon up: {posted} of {hooks_per_home} events posted")
    if spooled_count(down) != hooks_per_home:
        problems.append(f"daemon down: {spooled_count(down)} of {hooks_per_home} spooled")
    shutil.rmtree(folder, ignore_errors=True)
    if problems:
        print("the hooks did not do their job: " + "; ".join(problems), file=sys.stderr)
        return 1

    base = statistics.median(samples["baseline"])
    print(
        f"hook wall time, median of {runs} runs each, interleaved; "
        f"baseline python -I -c pass: {base * 1000:.1f} ms"
    )
    for name in variants:
        if name == "baseline":
            continue
        median = statistics.median(samples[name])
        state, form = name.split("/")
        target = TARGET_UP if state == "up" else TARGET_DOWN
        ratio = median / base
        verdict = "ok" if ratio <= target else "over"
        label = f"daemon {state:<4} {form:<6}"
        print(
            f"  {label}  {median * 1000:6.1f} ms  {ratio:4.2f}x  (target <= {target}x: {verdict})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
