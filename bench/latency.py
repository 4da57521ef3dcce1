"""Benchmark: from spawning the hook to the event stored in the call log, p50 and p99.

    python bench/latency.py [--quick] [--events N] [--script]

Starts a real daemon (its own process, temporary SQLite file), then spawns the hook N times
(default 200; 10 with ``--quick``), one at a time, each with a new number. For each, the time
from ``Popen`` to the moment a separate reader sees the event in the database (polled every
0.5 ms through the stdlib sqlite3, as any reader of the log would) is the **spawn -> stored**
latency. From the stored rows, **fired -> recorded** is the daemon's side: the hook's own time
stamp to the time the daemon recorded it. ``--script`` uses the pip entry point instead of the
``python -I -c<wire.INLINE_CODE>`` form.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

POLL = 0.0005
TIMEOUT = 10.0


def _bench_hook() -> ModuleType:
    # bench/ is not a package: the daemon helpers live in the sibling script.
    spec = importlib.util.spec_from_file_location("bench_hook", Path(__file__).with_name("hook.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def percentile(values: Sequence[float], p: int) -> float:
    """The p-th percentile (nearest rank; the maximum for p=99 under 100 samples)."""
    ordered = sorted(values)
    rank = max(1, -(-p * len(ordered) // 100))  # ceil
    return ordered[rank - 1]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10 events, for the smoke test")
    parser.add_argument("--events", type=int, default=None, help="hooks to spawn (default 200)")
    parser.add_argument("--script", action="store_true", help="spawn the pip entry point")
    args = parser.parse_args(list(argv) if argv is not None else None)
    count = args.events or (10 if args.quick else 200)

    helpers = _bench_hook()
    command = [str(helpers.SCRIPT)] if args.script else list(helpers.DIRECT)
    home = Path(tempfile.mkdtemp(prefix="msb-bench-latency-"))
    env = {**os.environ, "MICROSIP_BRIDGE_HOME": str(home)}
    daemon = helpers.start_daemon(home)
    spawn_to_stored: list[float] = []
    try:
        reader = sqlite3.connect(f"file:{home / 'bridge.db'}?mode=ro", uri=True)
        try:
            for n in range(count):
                number = f"lat{n:06d}"
                start = time.perf_counter()
                proc = subprocess.Popen([*command, "incoming", number], env=env)
                give_up = start + TIMEOUT
                while True:
                    row = reader.execute(
                        "SELECT 1 FROM events WHERE number = ?", (number,)
                    ).fetchone()
                    if row is not None:
                        spawn_to_stored.append(time.perf_counter() - start)
                        break
                    if time.perf_counter() > give_up:
                        print(f"event {number} not stored within {TIMEOUT} s", file=sys.stderr)
                        return 1
                    time.sleep(POLL)
                if proc.wait(TIMEOUT) != 0:
                    print(f"the hook for {number} exited with {proc.returncode}", file=sys.stderr)
                    return 1
            rows = reader.execute("SELECT received_at - fired_at, source FROM events").fetchall()
        finally:
            reader.close()
    finally:
        helpers.stop_daemon(daemon)
    if any(source != "hook" for _, source in rows):
        print("some hooks spooled although the daemon was up", file=sys.stderr)
        return 1
    recorded = [delta for delta, _ in rows]
    form = "entry-point script" if args.script else "python -I -c<INLINE_CODE>"
    print(f"{count} hooks spawned one at a time, daemon up, SQLite (durable commits), {form}")
    for label, values in (("spawn -> stored", spawn_to_stored), ("fired -> recorded", recorded)):
        print(
            f"  {label:<18} p50 {percentile(values, 50) * 1000:6.1f} ms   "
            f"p99 {percentile(values, 99) * 1000:6.1f} ms   "
            f"mean {statistics.fmean(values) * 1000:6.1f} ms"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
