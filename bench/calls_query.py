"""Benchmark: `calls` and `events` on a large call log, and the CLI's start-up (target: `calls
--since 30d` under 0.5 s at 1,000,000 calls).

    python bench/calls_query.py [--quick] [--calls N] [--runs N]

Builds a call log of N calls (default 1,000,000; 2,000 with ``--quick``), one every 31.5 s back
from now (a year for a million), through the store's own ``save_calls``, in the default SQLite
file of a temporary bridge home. Then runs the commands as people and scripts do, each as a new
process, and prints the median wall time of several runs (3 by default):

* start-up: ``python -c pass``, ``microsip-bridge --help`` and ``calls --limit 50`` (the one
  query that start-up dominates), with their ratio to ``python -c pass``;
* ``calls`` (the newest 50), ``calls --since 30d`` (the newest 50 of them), ``calls --number``
  (digits anywhere in the number: read newest first until 50 match), ``events --limit 50``;
* ``calls --since 30d --all --format json`` and ``calls --all --format csv``: every row,
  streamed to a pipe, with the calls per second and the command's peak memory (POSIX).

The event log is left empty (the calls are what these commands page through).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from microsip_bridge.model import Call, CallState, Direction, Outcome

TARGET_S = 0.5
SPACING = 31.5  # seconds between two calls: 1,000,000 calls make a year
CHUNK = 20_000  # calls per transaction while building
OUTCOMES = (Outcome.ANSWERED, Outcome.MISSED, Outcome.BUSY, Outcome.CANCELLED, Outcome.DECLINED)
NAMES = ("", "Reception", "Müller, Jürgen", "王小明", '=HYPERLINK("http://x")')


def call_at(n: int, when: float) -> Call:
    """The ``n``-th call of the log, at ``when``: a few shapes and numbers of each kind."""
    outcome = OUTCOMES[n % len(OUTCOMES)]
    answered = outcome is Outcome.ANSWERED
    return Call(
        call_id=f"c{int(when * 1000):012x}{n:012x}",
        direction=Direction.OUTGOING if n % 3 == 0 else Direction.INCOMING,
        number=f"+49 30 {1_000_000 + n * 7919 % 9_000_000}",
        state=CallState.ENDED,
        started_at=when,
        outcome=outcome,
        name=NAMES[n % len(NAMES)],
        answered_at=when + 4 if answered else None,
        ended_at=when + 64 if answered else when + 20,
        duration=60.0 if answered else None,
        rang=n % 3 != 0,
        microsip_key=n % 1000,
        microsip_time=int(when),
        microsip_type=n % 3,
        microsip_info="Call Ended",
        microsip_duration=60 if answered else 0,
        events=[f"{n:08x}a", f"{n:08x}b", f"{n:08x}c"],
        updated_at=when + 64,
    )


def build_store(home: Path, count: int, now: float | None = None) -> float:
    """A migrated call log in ``home`` (its bridge.db) with ``count`` calls, the newest at
    ``now``; returns the seconds it took."""
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
        engine.dispose()  # the last connection checkpoints the WAL into the file
    return time.perf_counter() - start


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "microsip_bridge", *args]


def run(command: Sequence[str], env: dict[str, str]) -> tuple[float, int, float | None]:
    """Wall time of ``command`` (its output to a pipe, read and dropped), the bytes it wrote and
    its peak memory in MB (None where the platform does not say)."""
    start = time.perf_counter()
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    stdout = proc.stdout
    assert stdout is not None
    size = 0
    while block := stdout.read(1 << 16):
        size += len(block)
    peak = None
    if hasattr(os, "wait4"):
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        peak = usage.ru_maxrss / (2**20 if sys.platform == "darwin" else 1024)
    else:
        proc.wait()
    took = time.perf_counter() - start
    stdout.close()
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(command[3:])} exited with {proc.returncode}")
    return took, size, peak


def median_run(command: Sequence[str], env: dict[str, str], runs: int) -> float:
    run(command, env)  # warm-up: the page cache, Python's bytecode cache
    return statistics.median(run(command, env)[0] for _ in range(runs))


def lines(args: argparse.Namespace) -> Iterator[str]:
    count = args.calls if args.calls is not None else (2_000 if args.quick else 1_000_000)
    with tempfile.TemporaryDirectory(prefix="msb-bench-calls-") as tmp:
        home = Path(tmp)
        # In a process of its own: a child forked from a big process starts as big, and the
        # commands' peak memory would be this process's.
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, __file__, "--build", str(home), "--calls", str(count)], check=True
        )
        built = time.perf_counter() - start
        days = count * SPACING / 86400
        yield f"call log: {count:,} calls over {days:,.0f} days, built in {built:.1f} s"
        env = {**os.environ, "MICROSIP_BRIDGE_HOME": str(home)}
        base = median_run([sys.executable, "-c", "pass"], env, args.runs)
        yield f"start-up, median of {args.runs} runs; python -c pass: {base * 1000:.0f} ms"
        for label, command in (
            ("--help", cli("--help")),
            ("calls --limit 50", cli("calls", "--limit", "50")),
        ):
            took = median_run(command, env, args.runs)
            yield f"  {label:<44} {took * 1000:7.0f} ms  {took / base:4.1f}x python -c pass"
        yield "queries (table to a pipe):"
        since = None
        for label, command in (
            ("calls", cli("calls")),
            ("calls --since 30d", cli("calls", "--since", "30d")),
            ("calls --number 4567", cli("calls", "--number", "4567")),
            ("events --limit 50", cli("events", "--limit", "50")),
        ):
            took = median_run(command, env, args.runs)
            if label == "calls --since 30d":
                since = took
            yield f"  {label:<44} {took * 1000:7.0f} ms"
        yield "every row, streamed to a pipe:"
        for label, command, rows in (
            (
                "calls --since 30d --all --format json",
                cli("calls", "--since", "30d", "--all", "--format", "json"),
                min(count, int(30 * 86400 / SPACING) + 1),
            ),
            ("calls --all --format csv", cli("calls", "--all", "--format", "csv"), count),
        ):
            took, size, peak = run(command, env)
            memory = "" if peak is None else f", peak memory {peak:.0f} MB"
            yield (
                f"  {label:<44} {took:7.2f} s  {rows / took:9,.0f} calls/s  "
                f"{size / 2**20:6.1f} MB out{memory}"
            )
        assert since is not None
        verdict = "met" if since < TARGET_S else "MISSED"
        yield f"target: calls --since 30d under {TARGET_S} s: {verdict} ({since:.2f} s)"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2,000 calls, for the smoke test")
    parser.add_argument("--calls", type=int, default=None, help="calls in the log (1,000,000)")
    parser.add_argument("--runs", type=int, default=3, help="runs per command (3)")
    parser.add_argument("--build", metavar="HOME", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(list(argv) if argv is not None else None)
    if (args.calls is not None and args.calls < 1) or args.runs < 1:
        parser.error("--calls and --runs must be at least 1")
    if args.build is not None:
        build_store(args.build, args.calls)
        return 0
    for line in lines(args):
        print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
