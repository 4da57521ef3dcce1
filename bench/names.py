"""Benchmark: caller-name lookups as the daemon's writer does them, with 100,000 contacts.

    python bench/names.py [--quick] [--contacts N] [--calls N]

Writes a Contacts.xml of N contacts (national numbers, region GB) and puts N/10 more in the
bridge's own contacts (a SQLite store), builds :class:`CallerNames` on them (the index build is
timed apart: the daemon does it on a thread of its own when a file changes), then times
``prepare`` for one call at a time, as the writer calls it, over calls whose numbers (each
new to the normaliser's cache) are: E.164 forms of Contacts.xml numbers (found by equal E.164),
MicroSIP's-rule matches, bridge contacts, extensions and unknown numbers. Prints the median
and p99 per lookup (target: p99 under 1 ms), against the baseline measured in the same run:
MicroSIP's own rule alone (``ContactIndex.first``) on the same numbers.

``--quick`` (2,000 contacts, 500 calls) is for the smoke test.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from microsip_bridge.contacts.names import CallerNames
from microsip_bridge.microsip.contact import Contact, ContactIndex
from microsip_bridge.microsip.contacts_xml import write_contacts
from microsip_bridge.model import Call, CallState, Direction
from microsip_bridge.numbers import Normaliser
from microsip_bridge.store import contacts as table
from microsip_bridge.store.contacts import BridgeContact
from microsip_bridge.store.engine import make_engine, upgrade


def national(i: int) -> str:
    return f"020 {7000 + i // 10_000:04d} {i % 10_000:04d}"


def e164(i: int) -> str:
    return f"+4420{7000 + i // 10_000:04d}{i % 10_000:04d}"


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]


def callers(count: int, contacts: int, bridge: int) -> list[str]:
    out = []
    for n in range(count):
        kind = n % 5
        pick = (n * 7919) % contacts
        if kind == 0:
            out.append(e164(pick))  # Contacts.xml, by equal E.164
        elif kind == 1:
            out.append(national(pick).replace(" ", ""))  # MicroSIP's rule (blanks ignored)
        elif kind == 2:
            out.append(f"+447700{900_000 + (n * 31) % bridge:06d}")  # the bridge's contacts
        elif kind == 3:
            out.append(f"{100 + n % 900}")  # an extension nobody has
        else:
            out.append(f"+3021{n:08d}")  # unknown
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--calls", type=int, default=5_000)
    args = parser.parse_args(argv)
    count, calls = (2_000, 500) if args.quick else (args.contacts, args.calls)
    bridge = max(10, count // 10)
    with tempfile.TemporaryDirectory(prefix="msb-bench-names-") as tmp:
        root = Path(tmp)
        contacts = [Contact(name=f"Contact {i}", number=national(i)) for i in range(count)]
        path = root / "Contacts.xml"
        write_contacts(path, contacts, backups=0)
        engine = make_engine(f"sqlite:///{root / 'bridge.db'}")
        upgrade(engine)
        with engine.begin() as conn:
            rows = [
                BridgeContact(
                    f"Bridge {i}", f"07700 {900_000 + i:06d}", f"+447700{900_000 + i:06d}"
                )
                for i in range(bridge)
            ]
            table.insert_contacts(conn, rows)
        normalise = Normaliser("GB", cache_size=count * 2)
        names = CallerNames(normalise, contacts=path, engine=engine)
        start = time.perf_counter()
        names.refresh(force=True)
        built = time.perf_counter() - start
        numbers = callers(calls, count, bridge)
        rule = ContactIndex(contacts)
        found = 0
        times, base = [], []
        for n, number in enumerate(numbers):
            call = Call(
                call_id=f"c{n}",
                direction=Direction.INCOMING,
                number=number,
                state=CallState.RINGING,
                started_at=0.0,
            )
            t0 = time.perf_counter()
            names.prepare([call])
            t1 = time.perf_counter()
            rule.first(number)
            t2 = time.perf_counter()
            times.append(t1 - t0)
            base.append(t2 - t1)
            found += bool(call.name)
        engine.dispose()
    ms = 1000.0
    print(
        f"{count} contacts in Contacts.xml, {bridge} bridge contacts; {calls} calls, {found} named"
    )
    print(f"index build        {built:8.2f} s")
    med, worst = statistics.median(times) * ms, p99(times) * ms
    print(f"name lookup        median {med:7.3f} ms   p99 {worst:7.3f} ms   (target p99 < 1 ms)")
    bmed, bworst = statistics.median(base) * ms, p99(base) * ms
    print(f"baseline MicroSIP  median {bmed:7.3f} ms   p99 {bworst:7.3f} ms   (its rule alone)")
    print(f"ratio to baseline  median {med / bmed:7.1f} x   p99 {worst / bworst:7.1f} x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
