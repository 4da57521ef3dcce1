"""Benchmark: rows purged per second by ``purge --older-than`` (store/purge.py), and how long one
batch holds the database (targets: linear in the size of the log; a batch under 100 ms).

    python bench/purge.py [--quick] [--calls N] [--runs R]

Builds a SQLite call log of N calls (default 100,000; 2,000 with ``--quick``), each with its 3
events and one delivered webhook delivery (so 5 rows a call), then purges all of it by age, batch
by batch as the daemon and the command do; and the same for a log a tenth the size (the baseline,
measured in the same run). Prints, for each size, the median over R runs (default 3; 1 with
``--quick``) of the rows purged per second and the p99 and max time of one batch (one
transaction: the time the writer, and so the hooks, would wait behind it), and the ratio of the
two rates (1.0: linear).
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from sqlalchemy import insert

from microsip_bridge.store import repo
from microsip_bridge.store.engine import make_engine, upgrade
from microsip_bridge.store.purge import Purge, PurgePlan, PurgeReport
from microsip_bridge.store.schema import events, webhook_outbox

BATCH_TARGET_MS = 100.0
CHUNK = 10_000


def _calls_query() -> ModuleType:
    # bench/ is not a package: the call builder lives in the sibling script.
    path = Path(__file__).with_name("calls_query.py")
    spec = importlib.util.spec_from_file_location("bench_calls_query", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def build(db: Path, count: int, newest: float) -> None:
    """``count`` ended calls, each with its events and a delivered webhook delivery."""
    builder = _calls_query()
    engine = make_engine(f"sqlite:///{db}")
    try:
        upgrade(engine)
        for first in range(0, count, CHUNK):
            batch = [
                builder.call_at(n, newest - (count - 1 - n) * builder.SPACING)
                for n in range(first, min(count, first + CHUNK))
            ]
            rows = [
                {
                    "uid": uid,
                    "event": "ring",
                    "number": call.number,
                    "fired_at": call.started_at,
                    "received_at": call.started_at,
                    "pid": 1,
                    "source": "hook",
                    "call_id": call.call_id,
                }
                for call in batch
                for uid in call.events
            ]
            boxes = [
                {
                    "msg_id": f"msg_{call.call_id}",
                    "target": "crm",
                    "call_id": call.call_id,
                    "type": "call.ended",
                    "body": "{}",
                    "created_at": call.started_at,
                    "next_attempt_at": call.started_at,
                    "attempts": 1,
                    "state": "delivered",
                    "delivered_at": call.started_at + 1,
                }
                for call in batch
            ]
            with engine.begin() as conn:
                conn.execute(insert(events), rows)
                conn.execute(insert(webhook_outbox), boxes)
                repo.save_calls(conn, batch)
    finally:
        engine.dispose()


def purge_once(count: int, folder: Path) -> tuple[float, int, list[float]]:
    """Build a log of ``count`` calls and purge it all: (seconds, rows purged, batch times)."""
    db = folder / f"purge-{count}-{time.monotonic_ns()}.db"
    newest = time.time() - 86400
    build(db, count, newest)
    engine = make_engine(f"sqlite:///{db}")
    try:
        purge = Purge(PurgePlan(before=newest + 3600))
        report = PurgeReport()
        steps: list[float] = []
        start = time.perf_counter()
        while True:
            began = time.perf_counter()
            more = purge.step(engine, report)
            steps.append(time.perf_counter() - began)
            if not more:
                break
        took = time.perf_counter() - start
    finally:
        engine.dispose()
        db.unlink(missing_ok=True)
    rows = report.calls + report.events + report.webhooks
    assert report.calls == count, (report.calls, count)
    return took, rows, steps


def p99(values: Sequence[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def measure(count: int, runs: int, folder: Path) -> tuple[float, float, float]:
    """Median rows/s, median p99 batch (ms) and the worst batch (ms) over ``runs``."""
    rates, p99s, worst = [], [], 0.0
    for _ in range(runs):
        took, rows, steps = purge_once(count, folder)
        rates.append(rows / took)
        p99s.append(p99(steps) * 1000)
        worst = max(worst, max(steps) * 1000)
    return statistics.median(rates), statistics.median(p99s), worst


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small log, one run")
    parser.add_argument("--calls", type=int, help="calls in the big log (default 100,000)")
    parser.add_argument("--runs", type=int, help="runs per size (default 3)")
    args = parser.parse_args(argv)
    count = args.calls or (2_000 if args.quick else 100_000)
    runs = args.runs or (1 if args.quick else 3)
    small = max(count // 10, 1)
    print(f"purge by age, SQLite: {count:,} calls (5 rows each) against {small:,}, {runs} run(s)")
    with tempfile.TemporaryDirectory(prefix="bench-purge-") as tmp:
        results = {}
        for size in (small, count):
            rate, batch_p99, worst = measure(size, runs, Path(tmp))
            results[size] = rate
            print(
                f"  {size:>9,} calls   {rate:>10,.0f} rows/s   batch p99 {batch_p99:.1f} ms   "
                f"max {worst:.1f} ms"
            )
            worst_batch = worst
    ratio = results[count] / results[small]
    print(f"ratio {count:,} / {small:,} calls: {ratio:.2f} (1.00: linear)")
    met = worst_batch < BATCH_TARGET_MS
    verdict = "met" if met else "MISSED"
    print(f"target: a batch under {BATCH_TARGET_MS:g} ms: {verdict} ({worst_batch:.1f} ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
