"""Benchmark: GET /api/v1/calls on a large call log at a steady request rate (target: p99 under
50 ms with 100,000 calls stored, at 200 requests per second).

    python bench/api_calls.py [--calls N] [--seconds S] [--rate R] [--limit L]

Builds a call log of N calls (default 100,000; one a minute back from now) through the store's
own ``save_calls`` in the default SQLite file of a temporary bridge home, starts the real daemon
(``serve``, uvicorn on a free loopback port) in a process of its own, and sends it
``GET /api/v1/calls?limit=L`` (the newest page, as the dashboard asks for it) with the token, at R
requests per second for S seconds (default 200 for 5 s), from a pool of keep-alive connections
opened (one untimed request each) before the clock starts.

The load is open-loop: each request has its moment on a fixed schedule, and its latency counts
from that moment, not from when a free connection sent it, so a slow answer that delays the
next requests shows in their figures too (no coordinated omission). Prints the median, p90, p99
and the slowest, the requests per second achieved, the errors, and the machine's load average;
and, as a baseline measured in the same run, the latency of requests sent one at a time.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import queue
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from microsip_bridge.model import Call, CallState, Direction, Outcome

TARGET_P99_MS = 50.0
SPACING = 60.0  # seconds between two calls
CHUNK = 20_000  # calls per transaction while building
CONNECTIONS = 16  # keep-alive connections the load is spread over
SERIAL = 100  # requests of the baseline
OUTCOMES = (Outcome.ANSWERED, Outcome.MISSED, Outcome.BUSY, Outcome.CANCELLED, Outcome.DECLINED)

DAEMON = """
import sys
from pathlib import Path
from microsip_bridge.server.runner import serve
from microsip_bridge.server.settings import DaemonSettings
serve(DaemonSettings(home=Path(sys.argv[1]), host="127.0.0.1", port=0), announce=print)
"""


def call_at(n: int, when: float) -> Call:
    outcome = OUTCOMES[n % len(OUTCOMES)]
    answered = outcome is Outcome.ANSWERED
    return Call(
        call_id=f"c{int(when * 1000):012x}{n:012x}",
        direction=Direction.OUTGOING if n % 3 == 0 else Direction.INCOMING,
        number=f"+49 30 {1_000_000 + n * 7919 % 9_000_000}",
        state=CallState.ENDED,
        started_at=when,
        outcome=outcome,
        name=f"Caller {n % 997}",
        answered_at=when + 4 if answered else None,
        ended_at=when + 64 if answered else when + 20,
        duration=60.0 if answered else None,
        rang=n % 3 != 0,
        events=[f"{n:08x}a", f"{n:08x}b", f"{n:08x}c"],
        updated_at=when + 64,
    )


def build_store(home: Path, count: int, now: float | None = None) -> float:
    """A migrated call log in ``home`` with ``count`` calls, the newest at ``now``; the seconds
    it took."""
    from microsip_bridge.store import repo
    from microsip_bridge.store.engine import make_engine, upgrade

    newest = time.time() if now is None else now
    start = time.perf_counter()
    engine = make_engine(None, home)
    try:
        upgrade(engine)
        for first in range(0, count, CHUNK):
            batch = [
                call_at(n, newest - (count - 1 - n) * SPACING)
                for n in range(first, min(count, first + CHUNK))
            ]
            with engine.begin() as conn:
                repo.save_calls(conn, batch)
    finally:
        engine.dispose()
    return time.perf_counter() - start


def start_daemon(home: Path) -> tuple[subprocess.Popen[bytes], str, int]:
    """The daemon in a process of its own, once it listens: (process, host, port)."""
    env = {**os.environ, "MICROSIP_BRIDGE_HOME": str(home)}
    proc = subprocess.Popen(
        [sys.executable, "-c", DAEMON, str(home)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    give_up = time.monotonic() + 120
    while time.monotonic() < give_up:
        if proc.poll() is not None:
            err = proc.stderr.read().decode() if proc.stderr else ""
            raise SystemExit(f"the daemon exited with {proc.returncode}: {err}")
        try:
            info = json.loads((home / "daemon.json").read_text("utf-8"))
        except (OSError, ValueError):
            info = None
        if isinstance(info, dict) and info.get("pid") == proc.pid:
            return proc, str(info["host"]), int(info["port"])
        time.sleep(0.05)
    proc.kill()
    raise SystemExit("the daemon did not start in time")


def load(
    host: str, port: int, token: str, path: str, rate: float, seconds: float
) -> tuple[list[float], int, float]:
    """Send GET ``path`` at ``rate`` per second for ``seconds``; the latencies in seconds (from
    each request's scheduled moment), the errors, and the wall time of the whole run."""
    due: queue.Queue[float | None] = queue.Queue()
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    headers = {"Authorization": f"Bearer {token}", "Host": f"{host}:{port}"}

    ready = threading.Barrier(CONNECTIONS + 1)

    def worker() -> None:
        conn = http.client.HTTPConnection(host, port, timeout=30)
        try:
            # Open the connection before the clock starts: a client keeps its connections.
            conn.request("GET", path, headers=headers)
            conn.getresponse().read()
        finally:
            ready.wait()
        while (moment := due.get()) is not None:
            try:
                conn.request("GET", path, headers=headers)
                response = conn.getresponse()
                body = response.read()
                ok = response.status == 200 and body.startswith(b'{"calls":[')
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection(host, port, timeout=30)
                ok = False
            took = time.perf_counter() - moment
            with lock:
                if ok:
                    latencies.append(took)
                else:
                    errors[0] += 1
        conn.close()

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(CONNECTIONS)]
    for thread in threads:
        thread.start()
    ready.wait()
    total = max(1, round(rate * seconds))
    start = time.perf_counter()
    for i in range(total):
        moment = start + i / rate
        pause = moment - time.perf_counter()
        if pause > 0:
            time.sleep(pause)
        due.put(moment)
    for _ in threads:
        due.put(None)
    for thread in threads:
        thread.join()
    return latencies, errors[0], time.perf_counter() - start


def serial(host: str, port: int, token: str, path: str, count: int) -> list[float]:
    """The latencies of ``count`` requests sent one after the other on one connection: the
    daemon's own time per request, with no queueing (the baseline)."""
    headers = {"Authorization": f"Bearer {token}", "Host": f"{host}:{port}"}
    conn = http.client.HTTPConnection(host, port, timeout=30)
    took: list[float] = []
    try:
        for _ in range(count):
            start = time.perf_counter()
            conn.request("GET", path, headers=headers)
            response = conn.getresponse()
            response.read()
            if response.status != 200:
                raise SystemExit(f"GET {path} answered {response.status}")
            took.append(time.perf_counter() - start)
    finally:
        conn.close()
    return took


def percentile(values: Sequence[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


def lines(args: argparse.Namespace) -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="msb-bench-api-") as tmp:
        home = Path(tmp)
        built = build_store(home, args.calls)
        yield f"call log: {args.calls:,} calls, built in {built:.1f} s"
        proc, host, port = start_daemon(home)
        try:
            token = (home / "token").read_text("utf-8").strip()
            path = f"/api/v1/calls?limit={args.limit}"
            # Warm-up: the page cache, the daemon's first imports and connections.
            load(host, port, token, path, min(args.rate, 50.0), 0.5)
            alone = [value * 1000 for value in serial(host, port, token, path, SERIAL)]
            latencies, errors, wall = load(host, port, token, path, args.rate, args.seconds)
        finally:
            proc.terminate()
            proc.wait(60)
            if proc.stderr is not None:
                proc.stderr.close()
        yield (
            f"baseline, one request at a time ({SERIAL}): p50 {statistics.median(alone):.1f} ms  "
            f"p99 {percentile(alone, 0.99):.1f} ms"
        )
        sent = len(latencies) + errors
        yield (
            f"load: GET {path} at {args.rate:g} req/s for {args.seconds:g} s over "
            f"{CONNECTIONS} connections: {sent:,} requests, {sent / wall:.0f} req/s achieved, "
            f"{errors} errors"
        )
        if not latencies:
            yield "latency: no request succeeded"
            return
        ms = [value * 1000 for value in latencies]
        yield (
            f"latency: p50 {statistics.median(ms):.1f} ms  p90 {percentile(ms, 0.90):.1f} ms  "
            f"p99 {percentile(ms, 0.99):.1f} ms  max {max(ms):.1f} ms"
        )
        if hasattr(os, "getloadavg"):
            yield "machine load (1, 5, 15 min): " + ", ".join(f"{v:.1f}" for v in os.getloadavg())
        p99 = percentile(ms, 0.99)
        verdict = "met" if p99 < TARGET_P99_MS and not errors else "MISSED"
        yield f"target: p99 under {TARGET_P99_MS:g} ms: {verdict} ({p99:.1f} ms)"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=100_000, help="calls in the log (100,000)")
    parser.add_argument("--seconds", type=float, default=5.0, help="seconds of load (5)")
    parser.add_argument("--rate", type=float, default=200.0, help="requests per second (200)")
    parser.add_argument("--limit", type=int, default=50, help="calls per page (50)")
    args = parser.parse_args(list(argv) if argv is not None else None)
    if args.calls < 1 or not args.seconds > 0 or not args.rate > 0:
        parser.error("--calls, --seconds and --rate must be more than 0")
    if not 1 <= args.limit <= 1000:
        parser.error("--limit must be 1-1000")
    for line in lines(args):
        print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
