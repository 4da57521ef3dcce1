"""Benchmark: Contacts.xml load and save of 100,000 contacts (target: load + save under 1.5 s).

    python bench/contacts_xml.py [--quick] [--runs N] [--contacts N]

Writes a realistic Contacts.xml (non-ASCII names, escapes in some values, mostly empty optional
fields, as MicroSIP files are) into a temporary folder, then prints the median of N runs (at
least 5) of:

* ``load``: ``read_contacts`` (read, decode, scan, build the contacts, find problems);
* ``save``: ``write_contacts`` with no backup (serialise, then an atomic write with fsync);
* ``serialize``: ``serialize_contacts`` alone, without the disk;
* ``directory JSON``: ``to_directory_json`` of the same contacts;
* the baseline, measured in the same run on the same file: ``xml.etree.ElementTree.parse`` and
  ``ElementTree.write`` (and ``ET.tostring``), which are C code (expat) but do not apply
  MicroSIP's rules; the ratio ours / ElementTree is printed for load, save and both.

``--quick`` (2,000 contacts, one run) is for the smoke test.
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from pathlib import Path

from microsip_bridge.microsip.contact import Contact
from microsip_bridge.microsip.contacts_xml import (
    read_contacts,
    serialize_contacts,
    write_contacts,
)
from microsip_bridge.microsip.directory import to_directory_json

TARGET_S = 1.5
FIRST = ("Ana", "José", "Zoë", "Jürgen", "Ελένη", "Михаил", "小明", "Søren", "Łukasz", "Aoife")
LAST = ("Silva", "Müller", "Παπαδοπούλου", "Иванов", "王", "O'Brien", "Núñez", "Øvergaard")
COMPANIES = ("Smith & Sons", 'ACME "Global"', "R&D <Lab>", "Café Noir", "Straße 7 GmbH")
INFOS = ("", "", "", "Ready", "Not online", "Busy")


def make_contacts(count: int, seed: int = 20241201) -> list[Contact]:
    """Contacts shaped like real phone books: a name and a number always, the rest now and then;
    about one in eight values that need escaping."""
    rng = random.Random(seed)
    out: list[Contact] = []
    for i in range(count):
        first = rng.choice(FIRST)
        last = rng.choice(LAST)
        company = rng.choice(COMPANIES) if rng.random() < 0.12 else ""
        name = f"{first} {last}" + (f" ({company})" if company else "")
        directory = rng.random() < 0.4
        out.append(
            Contact(
                name=name,
                number=str(1000 + i)
                if rng.random() < 0.6
                else f"+49 30 {rng.randrange(10**7):07d}",
                firstname=first if rng.random() < 0.3 else "",
                lastname=last if rng.random() < 0.3 else "",
                phone=f"+1 555 {rng.randrange(10**4):04d}" if rng.random() < 0.2 else "",
                mobile=f"+44 7700 {rng.randrange(10**6):06d}" if rng.random() < 0.2 else "",
                email=f"user{i}@example.com" if rng.random() < 0.3 else "",
                address="Hauptstraße 1" if rng.random() < 0.1 else "",
                city="München" if rng.random() < 0.1 else "",
                comment="VIP & key account" if rng.random() < 0.05 else "",
                id=str(i) if rng.random() < 0.1 else "",
                info=rng.choice(INFOS) if directory else "",
                presence=rng.random() < 0.3,
                starred=rng.random() < 0.05,
                directory=directory,
            )
        )
    return out


def median_s(action: Callable[[], object], runs: int) -> float:
    times: list[float] = []
    for _ in range(runs):
        gc.collect()  # each run starts with the same heap, whoever ran before
        start = time.perf_counter()
        result = action()
        times.append(time.perf_counter() - start)
        del result  # freeing what was loaded is the caller's business, not the load's
    return statistics.median(times)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2,000 contacts, one run")
    parser.add_argument("--runs", type=int, default=None, help="runs per measurement (>= 5)")
    parser.add_argument("--contacts", type=int, default=None, help="how many contacts")
    args = parser.parse_args(list(argv) if argv is not None else None)
    count = args.contacts or (2_000 if args.quick else 100_000)
    runs = 1 if args.quick and args.runs is None else max(5, args.runs or 5)

    contacts = make_contacts(count)
    with tempfile.TemporaryDirectory(prefix="bench-contacts-") as tmp:
        folder = Path(tmp)
        source = folder / "Contacts.xml"
        write_contacts(source, contacts, backups=0)
        loaded = read_contacts(source).contacts
        if loaded != contacts:
            print("the benchmark's Contacts.xml does not read back as written", file=sys.stderr)
            return 1
        target = folder / "saved.xml"
        et_target = folder / "saved-et.xml"
        results = {
            "load (read_contacts)": median_s(lambda: read_contacts(source), runs),
            "save (write_contacts, fsync)": median_s(
                lambda: write_contacts(target, loaded, backups=0), runs
            ),
            "serialize_contacts": median_s(lambda: serialize_contacts(loaded), runs),
            "directory JSON (to_directory_json)": median_s(
                lambda: to_directory_json(loaded, refresh=3600), runs
            ),
        }
        tree = ET.parse(source)
        baseline = {
            "ET.parse": median_s(lambda: ET.parse(source), runs),
            "ElementTree.write": median_s(
                lambda: tree.write(et_target, encoding="utf-8", xml_declaration=True), runs
            ),
            "ET.tostring": median_s(lambda: ET.tostring(tree.getroot()), runs),
        }
        size = source.stat().st_size

    print(f"Contacts.xml with {count:,} contacts, {size:,} bytes; median of {runs} run(s)")
    width = max(len(name) for name in (*results, *baseline))
    print(f"  {'ours':<{width}}  seconds")
    for name, value in results.items():
        print(f"  {name:<{width}}  {value:7.3f}")
    print(f"  {'baseline (ElementTree, same run)':<{width}}")
    for name, value in baseline.items():
        print(f"  {name:<{width}}  {value:7.3f}")
    load = results["load (read_contacts)"]
    save = results["save (write_contacts, fsync)"]
    et_load, et_save = baseline["ET.parse"], baseline["ElementTree.write"]
    print(f"  ratio load / ET.parse:                 {load / et_load:5.2f}")
    print(f"  ratio save / ElementTree.write:        {save / et_save:5.2f}")
    print(f"  ratio (load + save) / (parse + write): {(load + save) / (et_load + et_save):5.2f}")
    verdict = "met" if load + save < TARGET_S else "MISSED"
    print(f"  target: load + save = {load + save:.3f} s, under {TARGET_S} s: {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
