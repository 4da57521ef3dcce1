"""Benchmark: phone numbers normalised per second, cold (libphonenumber each time) and cached.

    python bench/phone_numbers.py [--quick] [--numbers N]

(Not bench/numbers.py: run as a script, a numbers.py in bench/ would shadow the standard
library's ``numbers`` module for every benchmark there.)

Normalises N distinct numbers as MicroSIP reports them (E.164, national with separators,
``sip:`` URIs, extensions and SIP names mixed) with a fresh :class:`Normaliser` (region GB and a
dialling prefix): every answer is a cache miss. Then the same numbers again on the warm
normaliser: every answer is a cache hit. The baseline, measured in the same run, is the old
digits-only key (``numbers.number_key``), what the search box still uses. Prints medians over
a few rounds, in numbers per second, and the ratios to the baseline.

``--quick`` (2,000 numbers, 3 rounds) is for the smoke test.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable, Sequence

from microsip_bridge.numbers import Normaliser, NumberKind, number_key


def make_numbers(count: int) -> list[str]:
    shapes: list[Callable[[int], str]] = [
        lambda i: f"+44 20 7946 {i % 10_000:04d}",
        lambda i: f"020 7{i % 1000:03d} {i % 10_000:04d}",
        lambda i: f"sip:+1212555{i % 10_000:04d}@pbx.example",
        lambda i: f"0049 30 {1_000_000 + i}",
        lambda i: f"9 07700 9{i % 100_000:05d}",  # the dialling prefix
        lambda i: f"{100 + i % 900}",  # extensions
        lambda i: f"user{i}@pbx.example",  # SIP names
    ]
    # Distinct texts: each shape's counter plus a round-robin over the shapes.
    found: list[str] = []
    seen: set[str] = set()
    i = 0
    while len(found) < count:
        text = shapes[i % len(shapes)](i // len(shapes))
        if text in seen:
            text = f"{text};n={i}" if "@" in text or text.startswith("sip") else f"{text}-{i}"
        seen.add(text)
        found.append(text)
        i += 1
    return found


def rate(action: Callable[[], object], count: int, rounds: int) -> float:
    """Median numbers per second over ``rounds`` runs of ``action`` (which does ``count``)."""
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return count / statistics.median(times)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--numbers", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    count, rounds = (2_000, 3) if args.quick else (args.numbers, args.rounds)
    numbers = make_numbers(count)
    Normaliser("GB")("+442079460000")  # import libphonenumber and its GB metadata first

    warm = Normaliser("GB", "9", cache_size=count)

    def cold() -> None:
        fresh = Normaliser("GB", "9", cache_size=0)
        for text in numbers:
            fresh(text)

    def cached() -> None:
        for text in numbers:
            warm(text)

    def baseline() -> None:
        for text in numbers:
            number_key(text)

    cached()  # fill the cache
    kinds = dict.fromkeys(NumberKind, 0)
    for text in numbers:
        kinds[warm(text).kind] += 1
    cold_rate = rate(cold, count, rounds)
    cached_rate = rate(cached, count, rounds)
    base_rate = rate(baseline, count, rounds)
    mix = ", ".join(f"{n} {kind.value}" for kind, n in kinds.items() if n)
    print(f"{count} distinct numbers ({mix}), median of {rounds} rounds")
    print(f"cold     {cold_rate:12,.0f} numbers/s  ({cold_rate / base_rate:.3f} x baseline)")
    print(f"cached   {cached_rate:12,.0f} numbers/s  ({cached_rate / base_rate:.3f} x baseline)")
    print(f"baseline {base_rate:12,.0f} numbers/s  (digits only, numbers.number_key)")
    print(f"cached / cold: {cached_rate / cold_rate:.1f} x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
