"""Benchmark: what the [Calls] sweep costs the writer thread, and the hooks' wait while it runs
(targets: the writer held under 50 ms by a periodic sweep at 1,000,000 calls; no hook past its
0.5 s deadline).

    python bench/sweep.py [--quick] [--calls N] [--seconds S]

Builds a call log of N calls (default 1,000,000; 5,000 with ``--quick``; see calls_query.py)
and a microsip.ini whose full [Calls] ring (1000 entries) holds the newest 1000 of them, as on
a daemon that has run for a while. Then, in this process, the daemon's own ingest (the
:class:`~microsip_bridge.calls.ingest.Ingestor`) with that ini:

* **writer time per sweep**: how long a sweep holds the writer thread (the time hooks would
  wait behind it), for the first sweep after a restart (every entry of the ring looked up), a
  periodic sweep with nothing new, and one with 10 new entries to import;
* **hooks during sweeps**: for S seconds (default 10; 2 with ``--quick``) events are submitted
  one at a time, each as soon as the previous is durable, while the sweep runs every 0.2 s (300
  times as often as the daemon's default), and the same again without the periodic sweep: the
  latency from submit to durable, p50, p99 and max, and how many took longer than the hook's
  0.5 s deadline (those a hook would have spooled). Both runs reconcile each ended call with
  [Calls] as the daemon does; the second has no periodic sweep.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import ModuleType

from microsip_bridge.calls.ingest import Ingestor
from microsip_bridge.calls.state import CallTracker
from microsip_bridge.calls.sweep import SweepResult
from microsip_bridge.microsip.history import CallEntry, CallType
from microsip_bridge.microsip.history_ring import append_entry, format_entry
from microsip_bridge.microsip.inifile import IniDocument, IniEncoding, encode
from microsip_bridge.model import Event, EventRecord
from microsip_bridge.store.engine import make_engine

HOLD_TARGET_MS = 50.0
DEADLINE_S = 0.5  # the hook's: past it, it spools the event
RING = 1000
SWEEP_EVERY = 0.2


def _calls_query() -> ModuleType:
    # bench/ is not a package: the call log builder lives in the sibling script.
    path = Path(__file__).with_name("calls_query.py")
    spec = importlib.util.spec_from_file_location("bench_calls_query", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_ring(ini: Path, count: int, newest: float, builder: ModuleType) -> None:
    """A microsip.ini whose [Calls] ring holds the newest ``RING`` calls of the log (the slot
    and time the builder gave them), with callsLastKey on the newest."""
    lines = ["[Settings]", f"callsLastKey={(count - 1) % RING}", "[Calls]"]
    entries = {}
    for n in range(max(0, count - RING), count):
        when = newest - (count - 1 - n) * builder.SPACING
        call = builder.call_at(n, when)
        entries[n % RING] = CallEntry(
            key=n % RING,
            number=call.number,
            name=call.name,
            type=CallType(call.microsip_type),
            time=int(when),
            duration=call.microsip_duration,
            info=call.microsip_info,
        )
    lines += [f"{slot}={format_entry(entries[slot])}" for slot in sorted(entries)]
    ini.write_bytes(encode("\r\n".join(lines) + "\r\n", IniEncoding.UTF16LE))


def timed_sweeps(ingestor: Ingestor) -> list[float]:
    """Where the writer-thread time of each sweep of ``ingestor`` is collected, in seconds."""
    reconciler = ingestor._reconciler  # what the writer runs is the reconciler's sweep_entries
    assert reconciler is not None
    held: list[float] = []
    real = reconciler.sweep_entries

    def sweep_entries(*args: object, **kwargs: object) -> SweepResult:
        start = time.perf_counter()
        try:
            return real(*args, **kwargs)  # type: ignore[arg-type]
        finally:
            held.append(time.perf_counter() - start)

    reconciler.sweep_entries = sweep_entries  # type: ignore[method-assign]
    return held


def hooks(ingestor: Ingestor, seconds: float) -> list[float]:
    """Submit one event after the other for ``seconds``; the latency of each."""
    latencies: list[float] = []
    stop = time.monotonic() + seconds
    n = 0
    while time.monotonic() < stop:
        kind = (Event.INCOMING, Event.RING, Event.END)[n % 3]
        rec = EventRecord(f"bench{n:016x}", kind, f"77{n // 3:06d}", time.time(), 4242, "hook")
        start = time.perf_counter()
        ingestor.submit(rec).result(60)
        latencies.append(time.perf_counter() - start)
        n += 1
        time.sleep(0.005)
    return latencies


def percentile(values: Sequence[float], p: int) -> float:
    ordered = sorted(values)
    return ordered[max(1, -(-p * len(ordered) // 100)) - 1]


def latency_line(label: str, values: Sequence[float]) -> str:
    late = sum(v > DEADLINE_S for v in values)
    return (
        f"  {label:<24} {len(values):5d} events  p50 {percentile(values, 50) * 1000:6.1f} ms  "
        f"p99 {percentile(values, 99) * 1000:6.1f} ms  max {max(values) * 1000:6.1f} ms  "
        f"over {DEADLINE_S} s: {late}"
    )


def run_ingestor(
    home: Path, ini: Path | None, interval: float, work: Callable[[Ingestor], object]
) -> None:
    engine = make_engine(None, home)
    ingestor = Ingestor(engine, CallTracker(), ini=ini, home=home, sweep_interval=interval)
    try:
        work(ingestor)
    finally:
        ingestor.stop()
        engine.dispose()


def lines(args: argparse.Namespace) -> Iterator[str]:
    builder = _calls_query()
    count = args.calls if args.calls is not None else (5_000 if args.quick else 1_000_000)
    seconds = args.seconds if args.seconds is not None else (2.0 if args.quick else 10.0)
    with tempfile.TemporaryDirectory(prefix="msb-bench-sweep-") as tmp:
        home = Path(tmp)
        newest = time.time() - 3600  # an hour ago: every entry is past the sweep's grace
        built = builder.build_store(home, count, now=newest)
        ini = home / "microsip.ini"
        write_ring(ini, count, newest, builder)
        yield f"call log: {count:,} calls (built in {built:.1f} s), [Calls]: a full ring of {RING}"

        measured: dict[str, float] = {}

        def sweeps(ingestor: Ingestor) -> None:
            held = timed_sweeps(ingestor)
            ingestor.start()  # its first sweep: the whole ring, each entry looked up once
            measured["first"] = held[-1]
            jobs = len(held)
            start = time.perf_counter()
            ingestor.sweep_now()
            measured["idle round"] = time.perf_counter() - start
            measured["idle"] = held[-1] if len(held) > jobs else 0.0  # no job: nothing new
            doc = IniDocument.load(ini)
            for n in range(10):
                append_entry(doc, f"99{n:04d}", "", CallType.MISSED, int(newest) + n, 0, "x")
            doc.save(backups=0)
            if ingestor.sweep_now() != 10:
                raise SystemExit("the sweep did not import the 10 new entries")
            measured["ten"] = held[-1]

        run_ingestor(home, ini, 3600.0, sweeps)
        yield "writer time per sweep (what a hook may wait behind):"
        yield (
            f"  {'first after a restart':<26} {measured['first'] * 1000:8.1f} ms  "
            f"(the {RING} entries of the ring looked up)"
        )
        yield (
            f"  {'periodic, nothing new':<26} {measured['idle'] * 1000:8.1f} ms  (the round: "
            f"{measured['idle round'] * 1000:.1f} ms, reading the ini on the sweep's thread)"
        )
        yield f"  {'periodic, 10 new entries':<26} {measured['ten'] * 1000:8.1f} ms"

        results: dict[str, list[float]] = {}

        def with_sweeps(ingestor: Ingestor) -> None:
            ingestor.start()
            results["sweep every 0.2 s"] = hooks(ingestor, seconds)

        def without(ingestor: Ingestor) -> None:
            ingestor.start()
            results["no periodic sweep"] = hooks(ingestor, seconds)

        run_ingestor(home, ini, SWEEP_EVERY, with_sweeps)
        run_ingestor(home, ini, 3600.0, without)
        yield f"events one at a time for {seconds:.0f} s, submit to durable:"
        for label, values in results.items():
            yield latency_line(label, values)
        worst = max(measured["idle"], measured["ten"]) * 1000
        late = sum(v > DEADLINE_S for v in results["sweep every 0.2 s"])
        verdict = "met" if worst < HOLD_TARGET_MS and late == 0 else "MISSED"
        yield (
            f"target: a periodic sweep holds the writer under {HOLD_TARGET_MS:.0f} ms, no event "
            f"waits past {DEADLINE_S} s: {verdict} ({worst:.1f} ms, {late} late)"
        )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5,000 calls, for the smoke test")
    parser.add_argument("--calls", type=int, default=None, help="calls in the log (1,000,000)")
    parser.add_argument("--seconds", type=float, default=None, help="seconds of events (10)")
    args = parser.parse_args(list(argv) if argv is not None else None)
    if args.calls is not None and args.calls < RING:
        parser.error(f"--calls must be at least {RING} (a full ring)")
    for line in lines(args):
        print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
