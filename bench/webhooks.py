"""Benchmark: webhook deliveries per second from the SQLite outbox to a local receiver (target:
at least 500 a second).

    python bench/webhooks.py [--quick] [--calls N] [--runs R] [--workers W]

Fills a fresh SQLite store's outbox with the messages of N calls (default 500; 50 with
``--quick``), four transitions each (ringing, answered, connected, ended: each call's
messages in order), then lets the daemon's delivery worker (webhooks/worker.py, W senders,
default 8 as the ``webhook_workers`` setting) send them all, signed, to a receiver on
127.0.0.1 (stdlib ThreadingHTTPServer in a process of its own, keep-alive, answers 204).
Prints the median of R runs (default 3) in deliveries a second, against a baseline measured
in the same run: the same signed POSTs sent by one client straight from memory, no store (the
receiver's and HTTP's own ceiling).
"""

from __future__ import annotations

import argparse
import http.server
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from microsip_bridge.calls.transitions import Happened
from microsip_bridge.model import Call, CallState, Direction, Outcome, Transition
from microsip_bridge.store import outbox as store
from microsip_bridge.store.engine import make_engine, upgrade
from microsip_bridge.webhooks.outbox import enqueue
from microsip_bridge.webhooks.signing import new_secret
from microsip_bridge.webhooks.targets import WebhookTarget
from microsip_bridge.webhooks.worker import Worker, make_client, post

TARGET_PER_S = 500.0
TRANSITIONS = (Transition.RINGING, Transition.ANSWERED, Transition.CONNECTED, Transition.ENDED)


class Sink(http.server.BaseHTTPRequestHandler):
    """Reads the body, answers 204: the cheapest receiver that still speaks HTTP/1.1."""

    protocol_version = "HTTP/1.1"
    received = 0
    lock = threading.Lock()

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", "0")))
        with Sink.lock:
            Sink.received += 1
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


def fill(db: Path, target: WebhookTarget, calls: int) -> None:
    engine = make_engine(f"sqlite:///{db}")
    upgrade(engine)
    now = time.time()
    with engine.begin() as conn:
        for i in range(calls):
            call = Call(
                call_id=f"bench{i:06d}",
                direction=Direction.INCOMING,
                number=f"+4420794{i:05d}",
                state=CallState.ENDED,
                started_at=now,
                outcome=Outcome.ANSWERED,
            )
            for t in TRANSITIONS:
                enqueue(conn, Happened(call, t, now), target, now=now)
    engine.dispose()


def worker_run(folder: Path, target: WebhookTarget, calls: int, workers: int) -> float:
    """Deliveries a second of the worker emptying a fresh outbox."""
    db = folder / f"run{time.monotonic_ns()}.db"
    fill(db, target, calls)
    engine = make_engine(f"sqlite:///{db}")
    total = calls * len(TRANSITIONS)
    worker = Worker(engine, lambda: [target], timeout=10.0, workers=workers)
    start = time.perf_counter()
    worker.start()
    try:
        while True:
            with engine.connect() as conn:
                done = store.counts(conn).get(target.name, {}).get("delivered", 0)
            if done >= total:
                break
            time.sleep(0.005)
        elapsed = time.perf_counter() - start
    finally:
        worker.stop()
        engine.dispose()
    return total / elapsed


def baseline_run(target: WebhookTarget, count: int) -> float:
    """Signed POSTs from memory, one client, one at a time: no store."""
    body = '{"type":"call.ended","data":{}}'
    with make_client(10.0, 1) as client:
        start = time.perf_counter()
        for i in range(count):
            assert post(client, target, f"msg_{i}", body, time.time()).ok
        return count / (time.perf_counter() - start)


def serve_sink() -> None:
    """The receiver's process: prints its port, serves until killed."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Sink)
    server.daemon_threads = True
    print(server.server_address[1], flush=True)
    server.serve_forever(0.05)


def start_sink() -> tuple[subprocess.Popen[str], int]:
    """The receiver in a process of its own, as a real one is (not sharing our GIL)."""
    proc = subprocess.Popen([sys.executable, __file__, "--sink"], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    return proc, int(proc.stdout.readline())


def lines(args: argparse.Namespace) -> Iterator[str]:
    sink, port = start_sink()
    url = f"http://127.0.0.1:{port}/hook"
    target = WebhookTarget("bench", url, frozenset({"*"}), new_secret())
    total = args.calls * len(TRANSITIONS)
    yield (
        f"outbox: {args.calls:,} calls x {len(TRANSITIONS)} transitions = {total:,} messages, "
        f"SQLite, {args.workers} senders, {args.runs} runs"
    )
    try:
        with tempfile.TemporaryDirectory(prefix="bench-webhooks-") as tmp:
            base = [baseline_run(target, min(total, 1000)) for _ in range(args.runs)]
            rates = [
                worker_run(Path(tmp), target, args.calls, args.workers) for _ in range(args.runs)
            ]
    finally:
        sink.kill()
        sink.wait(10)
        if sink.stdout is not None:
            sink.stdout.close()
    b, r = statistics.median(base), statistics.median(rates)
    yield f"  baseline: signed POSTs from memory, one client  {b:8.0f} /s (median)"
    yield (
        f"  outbox worker: claim, POST, mark delivered     {r:8.0f} /s "
        f"(median, {r / b:.2f}x baseline)"
    )
    verdict = "met" if r >= TARGET_PER_S else "MISSED"
    yield f"target: >= {TARGET_PER_S:.0f} deliveries/s on SQLite: {verdict} ({r:.0f}/s)"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="50 calls, one run: the smoke test")
    parser.add_argument("--calls", type=int, default=None, help="calls in the outbox (500)")
    parser.add_argument("--runs", type=int, default=None, help="runs to take the median of (3)")
    parser.add_argument("--workers", type=int, default=8, help="senders at once (8)")
    parser.add_argument("--sink", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.sink:
        serve_sink()
        return 0
    args.calls = args.calls or (50 if args.quick else 500)
    args.runs = args.runs or (1 if args.quick else 3)
    for line in lines(args):
        print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
