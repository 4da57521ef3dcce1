"""Benchmark: events stored durably per second through the daemon's ingest (target: >= 10,000
events/s grouped on SQLite).

    python bench/ingest.py [--quick] [--events N] [--runs N] [--batch N] [--pg URL]

Feeds N hook events (default 20,000; 500 with ``--quick``), five per call (incoming, ring,
answer, start, end), into a freshly migrated database through the path the daemon takes: the
:class:`~microsip_bridge.calls.ingest.Ingestor`, whose writer thread records each event in the
log, applies it to the call-state model and saves the call it changed (with the daemon's
actions: numbers normalised, caller names, rules and the webhook outbox, none configured), one
transaction per group; a result means durable. It prints the median events/s of several runs for:

* ``serial``: one event at a time, each submitted once the previous one is durable (hooks that
  fire one after another: one commit per event);
* ``grouped``: 100 events submitted at once (``--batch``), then the next 100 once they are
  durable (hooks that fire together: the writer commits up to 100 in one transaction).

SQLite runs as the bridge configures it (WAL, ``synchronous=FULL``: every commit is fsync'd).
For scale, the SQLite section also times the floors, in the same run: the stdlib ``sqlite3``
inserting the same rows with the same pragmas, without SQLAlchemy or the call model, one commit
per event and one per ``--batch`` events (one run each with ``--quick``); the grouped rate is
also printed as a share of its floor, a figure that the machine's load moves much less than
the rates themselves. PostgreSQL is measured too when ``--pg URL`` or ``MSB_TEST_PG_URL`` is
given (each run in a schema of its own, dropped after).
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import Engine, make_url

from microsip_bridge.actions.service import build_actions
from microsip_bridge.calls.ingest import Ingestor
from microsip_bridge.calls.state import CallTracker
from microsip_bridge.config import DEFAULTS
from microsip_bridge.model import Event, EventRecord
from microsip_bridge.store import repo
from microsip_bridge.store.engine import make_engine, parse_url, safe_url, upgrade

TARGET_PER_S = 10_000.0
PG_ENV = "MSB_TEST_PG_URL"
# A call's usual sequence, so the rows look like real traffic.
SEQUENCE = (Event.INCOMING, Event.RING, Event.ANSWER, Event.START, Event.END)

Feeder = Callable[[Ingestor, list[EventRecord]], None]


def make_events(count: int) -> list[EventRecord]:
    """``count`` events with fresh uids, in call-sized groups of five."""
    base = time.time()
    return [
        EventRecord(
            uid=uuid.uuid4().hex,
            event=SEQUENCE[i % len(SEQUENCE)],
            number=f"+4930{1000000 + i // len(SEQUENCE)}",
            ts=base + i * 0.001,
            pid=10_000 + i,
            source="hook",
        )
        for i in range(count)
    ]


def serial(ingestor: Ingestor, recs: list[EventRecord]) -> None:
    """One event at a time: the next is submitted once the previous one is durable."""
    for rec in recs:
        ingestor.submit(rec).result(60)


def grouped(size: int) -> Feeder:
    """``size`` events at once, then the next ``size`` once all of them are durable."""

    def feed(ingestor: Ingestor, recs: list[EventRecord]) -> None:
        for start in range(0, len(recs), size):
            futures = [ingestor.submit(rec) for rec in recs[start : start + size]]
            for future in futures:
                future.result(60)

    return feed


class Database:
    """A fresh, migrated database per run: a new SQLite file, or a new PostgreSQL schema."""

    def __init__(self, label: str, pg_url: str | None, folder: Path) -> None:
        self.label = label
        self.pg_url = pg_url
        self.folder = folder
        self.runs = 0
        self.template: bytes | None = None

    def fresh(self) -> tuple[Engine, Callable[[], None]]:
        self.runs += 1
        if self.pg_url is None:
            path = self.folder / f"ingest-{self.runs}.db"
            path.write_bytes(self.sqlite_template())
            engine = make_engine(f"sqlite:///{path}")
            return engine, engine.dispose
        schema = f"msb_bench_{uuid.uuid4().hex[:12]}"
        admin = make_engine(self.pg_url)
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        url = make_url(self.pg_url).update_query_dict({"options": f"-csearch_path={schema}"})
        engine = make_engine(url.render_as_string(hide_password=False))
        upgrade(engine)

        def drop() -> None:
            engine.dispose()
            with admin.begin() as conn:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()

        return engine, drop

    def sqlite_template(self) -> bytes:
        """A migrated SQLite file, migrated once and copied for each run: a migration costs
        more than the quick mode's whole measurement."""
        if self.template is None:
            path = self.folder / "template.db"
            engine = make_engine(f"sqlite:///{path}")
            try:
                upgrade(engine)
            finally:
                # The last connection to close checkpoints the WAL into the file.
                engine.dispose()
            self.template = path.read_bytes()
        return self.template


def measure(
    db: Database, feed: Feeder, count: int, runs: int, batch: int, *, actions: bool = True
) -> float:
    """Median events/s of ``runs`` runs, each on a fresh database and a fresh daemon ingest
    (with the daemon's actions, or without any: ``actions``)."""
    rates: list[float] = []
    for _ in range(runs):
        recs = make_events(count)
        engine, cleanup = db.fresh()
        try:
            # The daemon's own actions, as `serve` builds them: the normaliser and the caller
            # names on every saved call, the rules and the webhook outbox on every transition
            # (no rule or target configured: what each part costs when it has nothing to do).
            with tempfile.TemporaryDirectory() as home:
                values = {**DEFAULTS, "default_region": "DE"}
                observer = build_actions(values, home=Path(home), ini=None, engine=engine)
                ingestor = Ingestor(
                    engine, CallTracker(), batch_size=batch, observer=observer if actions else None
                )
                observer.start()
                ingestor.start(migrate=False)  # fresh() migrated it
                try:
                    start = time.perf_counter()
                    feed(ingestor, recs)
                    elapsed = time.perf_counter() - start
                finally:
                    ingestor.stop()
                    observer.stop()
            with engine.connect() as conn:
                stored = repo.max_cursor(conn)
                calls = len(repo.list_calls(conn))
        finally:
            cleanup()
        expected = -(-count // len(SEQUENCE))
        if stored < count or calls != expected:
            raise SystemExit(
                f"{db.label}: {stored} of {count} events and {calls} of {expected} calls stored"
            )
        rates.append(count / elapsed)
    return statistics.median(rates)


def sqlite_floor(template: bytes, folder: Path, count: int, runs: int, group: int = 1) -> float:
    """The stdlib sqlite3 with the bridge's pragmas and schema, one COMMIT per ``group`` events,
    each inserted by its own INSERT."""
    rates: list[float] = []
    for run in range(runs):
        recs = make_events(count)
        path = folder / f"floor-{group}-{run}.db"
        path.write_bytes(template)
        db = sqlite3.connect(path, isolation_level=None)
        try:
            for pragma in ("journal_mode = WAL", "synchronous = FULL", "busy_timeout = 5000"):
                db.execute(f"PRAGMA {pragma}")
            sql = (
                "INSERT INTO events (uid, event, number, fired_at, received_at, pid, source)"
                " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (uid) DO NOTHING"
            )
            start = time.perf_counter()
            for first in range(0, count, group):
                db.execute("BEGIN")
                for rec in recs[first : first + group]:
                    db.execute(
                        sql,
                        (
                            rec.uid,
                            rec.event.value,
                            rec.number,
                            rec.ts,
                            time.time(),
                            rec.pid,
                            rec.source,
                        ),
                    )
                db.execute("COMMIT")
            rates.append(count / (time.perf_counter() - start))
        finally:
            db.close()
    return statistics.median(rates)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="500 events, for the smoke test")
    parser.add_argument("--events", type=int, default=None, help="events per run (20,000)")
    parser.add_argument("--runs", type=int, default=3, help="runs per measurement (3)")
    parser.add_argument("--batch", type=int, default=100, help="events at once, grouped (100)")
    parser.add_argument("--pg", metavar="URL", default=None, help=f"PostgreSQL URL (${PG_ENV})")
    args = parser.parse_args(list(argv) if argv is not None else None)
    count = args.events if args.events is not None else (500 if args.quick else 20_000)
    if count < 1 or args.runs < 1 or args.batch < 1:
        parser.error("--events, --runs and --batch must be at least 1")
    pg_url = args.pg or os.environ.get(PG_ENV) or None

    with tempfile.TemporaryDirectory(prefix="msb-bench-ingest-") as tmp:
        folder = Path(tmp)
        databases = [Database("sqlite (WAL, synchronous=FULL)", None, folder)]
        if pg_url:
            databases.append(
                Database(f"postgresql ({safe_url(parse_url(pg_url))})", pg_url, folder)
            )
        modes: list[tuple[str, Feeder]] = [
            ("serial", serial),
            (f"grouped ({args.batch} at once)", grouped(args.batch)),
        ]
        print(
            f"daemon ingest: {count:,} events per run, median of {args.runs} runs, "
            "fresh database each"
        )
        results: dict[tuple[str, str], float] = {}
        grouped_floor = 0.0
        for db in databases:
            print(f"  {db.label}")
            for name, feed in modes:
                rate = measure(db, feed, count, args.runs, args.batch)
                results[(db.label, name)] = rate
                print(f"    {name:<28} {rate:>10,.0f} events/s")
            if db.pg_url is None and not args.quick:
                # What the actions cost: the same grouped run without them (the ingest alone).
                bare = measure(db, modes[1][1], count, args.runs, args.batch, actions=False)
                share = results[(db.label, modes[1][0])] / bare
                label = "grouped, no actions"
                print(f"    {label:<28} {bare:>10,.0f} events/s (with them: {share:.2f}x)")
            if db.pg_url is None:
                # One run in quick mode: the smoke test only needs the line, not the median.
                floor_runs = 1 if args.quick else args.runs
                floor = sqlite_floor(db.sqlite_template(), folder, count, floor_runs)
                print(f"    {'floor: raw sqlite3, 1/commit':<28} {floor:>10,.0f} events/s")
                grouped_floor = sqlite_floor(
                    db.sqlite_template(), folder, count, floor_runs, args.batch
                )
                label = f"floor: raw sqlite3, {args.batch}/commit"
                print(f"    {label:<28} {grouped_floor:>10,.0f} events/s")
        if not pg_url:
            print(f"  postgresql: skipped (set ${PG_ENV} or pass --pg URL)")

    sqlite_label = databases[0].label
    grouped_rate = results[(sqlite_label, modes[1][0])]
    verdict = "met" if grouped_rate >= TARGET_PER_S else "MISSED"
    print(f"grouped ingest / its floor: {grouped_rate / grouped_floor:.2f} (the same run)")
    print(
        f"target: >= {TARGET_PER_S:,.0f} events/s grouped on SQLite with durable commits: "
        f"{verdict} ({grouped_rate:,.0f}/s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
