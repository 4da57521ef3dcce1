"""Benchmark: reading a full 1000-entry [Calls] ring from microsip.ini (target: under 10 ms).

    python bench/calls_history.py [--quick] [--runs N]

Prints the median of N runs (at least 20) for:

* ``from bytes``: ``IniDocument.from_bytes`` + ``read_history``, what a hook or the CLI pays to
  read the history of a file it has just read from disk;
* ``read_history``: the history of an already loaded document;
* ``parse_history``: our part alone, on (key, value) pairs already taken from the document;
* ``baseline``: ``IniDocument.from_bytes`` alone, the decoding and line model that every reader of
  the ini pays, so the share of the [Calls] code can be told apart.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable, Sequence

from microsip_bridge.microsip.history import CallEntry, CallType, parse_history, read_history
from microsip_bridge.microsip.history_ring import format_entry
from microsip_bridge.microsip.inifile import IniDocument, IniEncoding, encode

TARGET_MS = 10.0
LAST_KEY = 499  # a ring that has wrapped: slot 500 holds the oldest call
# A few calls deleted by the user ("null"), the oldest slot (500) among them.
DELETED = frozenset({*range(0, 1000, 97), LAST_KEY + 1})
NAMES = ("Reception", "Hard (Академическая)", "Müller, Jürgen", "王小明", "8656420197")
INFOS = ("Call Ended", "Missed Call", "Canceled", "Answered Elsewhere", "Anruf beendet", "")


def full_ring_bytes() -> bytes:
    """A microsip.ini in the shape MicroSIP writes (UTF-16LE, BOM, CRLF) whose [Calls] ring is
    full: 1000 slots, some of them deleted."""
    lines = ["[Settings]", "accountId=1", "singleMode=1", f"callsLastKey={LAST_KEY}"]
    lines += [f"callsWidth{i}=0" for i in range(6)]
    lines += ["[Account1]", "label=agent", "server=pbx.example.invalid", "username=agent"]
    lines.append("[Calls]")
    for slot in range(1000):
        if slot in DELETED:
            lines.append(f"{slot}=null")
            continue
        position = (slot - LAST_KEY - 1) % 1000
        entry = CallEntry(
            key=slot,
            number=f"+4930{1000000 + slot * 7919 % 9000000}",
            name=NAMES[slot % len(NAMES)],
            type=CallType(slot % 4),
            time=1_700_000_000 + position * 600,
            duration=(slot * 37) % 900,
            info=INFOS[slot % len(INFOS)],
        )
        lines.append(f"{slot}={format_entry(entry)}")
    lines += ["[Dialed]", *(f"{i}=10{i}" for i in range(10))]
    return encode("\r\n".join(lines) + "\r\n", IniEncoding.UTF16LE)


def median_ms(action: Callable[[], object], runs: int) -> float:
    action()  # warm-up: imports, regex compilation, caches
    times: list[float] = []
    for _ in range(runs):
        start = time.perf_counter()
        action()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer runs, for the smoke test")
    parser.add_argument("--runs", type=int, default=None, help="runs per measurement (>= 20)")
    args = parser.parse_args(list(argv) if argv is not None else None)
    runs = max(20, args.runs if args.runs is not None else (20 if args.quick else 100))

    data = full_ring_bytes()
    doc = IniDocument.from_bytes(data)
    pairs = doc.items("Calls")
    history = read_history(doc)
    expected = 1000 - len(DELETED)
    if len(history.entries) != expected or history.problems or history.next_key != LAST_KEY + 1:
        print(f"the benchmark's ini reads wrong: {len(history.entries)} calls", file=sys.stderr)
        return 1

    results = {
        "from bytes (from_bytes + read_history)": median_ms(
            lambda: read_history(IniDocument.from_bytes(data)), runs
        ),
        "read_history (loaded document)": median_ms(lambda: read_history(doc), runs),
        "parse_history (pairs only)": median_ms(lambda: parse_history(pairs, LAST_KEY), runs),
        "baseline: IniDocument.from_bytes alone": median_ms(
            lambda: IniDocument.from_bytes(data), runs
        ),
    }
    print(
        f"[Calls] with {expected} calls in 1000 slots, {len(data):,} bytes; median of {runs} runs"
    )
    width = max(len(name) for name in results)
    for name, value in results.items():
        print(f"  {name:<{width}}  {value:7.2f} ms")
    total = results["from bytes (from_bytes + read_history)"]
    ours = results["read_history (loaded document)"]
    for name, value in (("from bytes", total), ("read_history", ours)):
        verdict = "met" if value < TARGET_MS else "MISSED"
        print(f"  target: {name} under {TARGET_MS:.0f} ms: {verdict}")
    print(f"  read_history is {ours / total:.0%} of the from-bytes time")
    return 0


if __name__ == "__main__":
    sys.exit(main())
