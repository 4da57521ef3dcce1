"""Smoke test: the Contacts.xml benchmark runs in quick mode, on realistic data, with a baseline."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

import pytest

from microsip_bridge.microsip.contacts_xml import parse_contacts, serialize_contacts

BENCH = Path(__file__).resolve().parents[1] / "bench" / "contacts_xml.py"


def load_bench() -> ModuleType:
    # bench/ is not a package: load the script from its path.
    spec = importlib.util.spec_from_file_location("bench_contacts_xml", BENCH)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_quick_mode_prints_the_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert load_bench().main(["--quick"]) == 0
    out = capsys.readouterr().out
    assert "Contacts.xml with 2,000 contacts" in out
    assert "median of 1 run(s)" in out
    timed = [line for line in out.splitlines() if re.search(r"\s\d+\.\d{3}$", line)]
    names = [line.split("  ")[1].strip() for line in timed]
    assert names == [
        "load (read_contacts)",
        "save (write_contacts, fsync)",
        "serialize_contacts",
        "directory JSON (to_directory_json)",
        "ET.parse",
        "ElementTree.write",
        "ET.tostring",
    ]
    assert re.search(r"ratio \(load \+ save\) / \(parse \+ write\):\s+\d+\.\d\d", out)
    assert re.search(r"target: load \+ save = \d+\.\d{3} s, under 1\.5 s: (met|MISSED)", out)


def test_the_benchmark_data_is_realistic() -> None:
    contacts = load_bench().make_contacts(3000)
    assert len({c.number for c in contacts}) > 2900
    data = serialize_contacts(contacts)
    text = data.decode("utf-8")
    # Non-ASCII names, and values that need each of CMarkup's escapes.
    assert re.search(r"[^\x00-\x7f]", text)
    for escape in ("&amp;", "&lt;", "&gt;", "&quot;", "&apos;"):
        assert escape in text
    # Mostly empty optional fields, as real files are.
    assert text.count('email=""') > len(contacts) / 2
    assert parse_contacts(data).contacts == contacts


def test_contact_count_and_runs_are_options(capsys: pytest.CaptureFixture[str]) -> None:
    assert load_bench().main(["--contacts", "50", "--runs", "5"]) == 0
    out = capsys.readouterr().out
    assert "Contacts.xml with 50 contacts" in out
    assert "median of 5 run(s)" in out
