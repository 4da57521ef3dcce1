"""The ini's section and key index answers exactly what a scan of the lines would (facts §3.2:
the profile API reads the first section of a name and the first key of a name in it)."""

from __future__ import annotations

import re
import tracemalloc

from hypothesis import given, settings
from hypothesis import strategies as st

from microsip_bridge.microsip.history import read_history
from microsip_bridge.microsip.inifile import IniDocument, IniEncoding, encode, profile_value

NAMES = st.sampled_from(["Settings", "settings", "Calls", "Account1", "x"])
KEYS = st.sampled_from(["a", "A", "cmdCallEnd", "CMDCALLEND", "b"])
LINE = st.one_of(
    NAMES.map(lambda n: f"[{n}]"),
    st.tuples(KEYS, st.text("xyz 1=", max_size=5)).map(lambda kv: f"{kv[0]}={kv[1]}"),
    st.just("; comment"),
    st.just(""),
    st.just("no equals sign"),
)


def scan_get(lines: list[str], section: str, key: str) -> str | None:
    """The profile API's rule, written as plainly as possible."""
    in_first = False
    seen_sections: set[str] = set()
    for text in lines:
        stripped = text.strip()
        if stripped.startswith("["):
            name = stripped[1:].split("]")[0].strip().casefold()
            in_first = name == section.casefold() and name not in seen_sections
            seen_sections.add(name)
        elif in_first and "=" in text and not stripped.startswith(";"):
            name, _, value = text.partition("=")
            if name.strip().casefold() == key.casefold():
                return profile_value(value)
    return None


@settings(max_examples=300)
@given(st.lists(LINE, max_size=30), NAMES, KEYS)
def test_lookups_agree_with_a_scan(lines: list[str], section: str, key: str) -> None:
    doc = IniDocument.from_text("\r\n".join(lines) + "\r\n")
    assert doc.get(section, key) == scan_get(lines, section, key)


@settings(max_examples=200)
@given(st.lists(LINE, max_size=30), NAMES, KEYS, st.text("vw", min_size=1, max_size=3))
def test_lookups_stay_right_after_edits(
    lines: list[str], section: str, key: str, value: str
) -> None:
    doc = IniDocument.from_text("\r\n".join(lines) + "\r\n")
    doc.get(section, key)  # build the index, then change the lines under it
    doc.set(section, key, value)
    assert doc.get(section, key) == value
    doc.set("New", "k", "1")
    assert doc.get("new", "K") == "1"
    assert doc.delete(section, key)
    assert doc.get(section, key) is None
    doc.remove_section("New")
    assert not doc.has_section("new")
    text = doc.text()
    assert IniDocument.from_text(text).get(section, key) is None


EOLS = st.sampled_from(["\r\n", "\n", "\r"])
ODD_LINE = st.one_of(
    LINE,
    st.tuples(st.sampled_from(["", " ", "\t", " \t"]), NAMES).map(lambda p: f"{p[0]}[{p[1]}]"),
    st.tuples(KEYS, st.sampled_from(["[x]", "a[b", "=[", ""])).map(lambda kv: f"{kv[0]}={kv[1]}"),
    st.just("x [Settings]"),
    st.just("[Calls"),
)


def answers(doc: IniDocument) -> tuple[object, ...]:
    names = ["Settings", "Calls", "Account1", "x"]
    return (
        doc.sections(),
        doc.duplicate_sections(),
        [doc.items(n) for n in names],
        [doc.line_number(n) for n in names],
        [[doc.get(n, k) for k in ("a", "b", "cmdCallEnd")] for n in names],
    )


def reference_lines(text: str) -> list[tuple[str, str]]:
    """Lines and their line ends, split at CRLF, LF or CR only."""
    found = re.findall(r"([^\r\n]*)(\r\n|\r|\n|\Z)", text)
    return [(line, eol) for line, eol in found if line or eol]


@settings(max_examples=300)
@given(st.lists(st.tuples(ODD_LINE, EOLS), max_size=25), st.booleans())
def test_any_line_ends_read_the_same_before_and_after_an_edit(
    lines: list[tuple[str, str]], last_eol: bool
) -> None:
    text = "".join(line + eol for line, eol in lines)
    if lines and not last_eol:
        text = text[: -len(lines[-1][1])]
    doc = IniDocument.from_text(text)
    assert doc.text() == text
    split = reference_lines(text)
    assert [(line.text, line.eol) for line in doc.lines] == split
    plain = [line for line, _ in split]
    for section in ("Settings", "Calls", "x"):
        for key in ("a", "b"):
            assert doc.get(section, key) == scan_get(plain, section, key)
    before = answers(doc)
    doc.set("zz new", "k", "1")  # the lines are no longer the text as read
    assert answers(doc)[2:] == before[2:]
    assert doc.get("ZZ NEW", "K") == "1"
    doc.remove_section("zz new")
    assert answers(doc) == before
    assert doc.text().rstrip("\r\n") == text.rstrip("\r\n")


def test_the_memory_of_a_large_ini_stays_near_its_size() -> None:
    # A 1.4 MB UTF-16 ini of 20,000 settings and a full [Calls] ring, read as `doctor` and the
    # sweep read it. Lines as objects with a key index of strings peaked at 4.6x the file;
    # offsets into the text and a table of line numbers stay near 1x.
    lines = ["[Settings]", "callsLastKey=999"]
    lines += [f"setting{i}=value number {i}" for i in range(20_000)]
    lines += ["[Calls]"]
    lines += [f"{k}=10{k:04d};Caller {k};{k % 4};{1700000000 + k};{k % 300};" for k in range(1000)]
    data = encode("\r\n".join(lines) + "\r\n", IniEncoding.UTF16LE)
    tracemalloc.start()
    try:
        doc = IniDocument.from_bytes(data)
        assert len(read_history(doc).entries) == 1000
        assert doc.get("Settings", "setting19999") == "value number 19999"
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak <= 2.5 * len(data), f"peak {peak / len(data):.1f}x the file"


OPS = st.lists(
    st.tuples(
        st.sampled_from(["set", "delete", "remove", "get"]), NAMES, KEYS, st.text("vw", max_size=2)
    ),
    max_size=12,
)


@settings(max_examples=300)
@given(st.lists(st.tuples(ODD_LINE, EOLS), max_size=20), OPS)
def test_a_run_of_edits_reads_as_its_own_text_would(
    lines: list[tuple[str, str]], ops: list[tuple[str, str, str, str]]
) -> None:
    # The indexes are moved on each insert, not rebuilt: after every step the document must
    # answer what a fresh parse of its text answers.
    doc = IniDocument.from_text("".join(line + eol for line, eol in lines))
    for op, section, key, value in ops:
        if op == "set":
            doc.set(section, key, value)
        elif op == "delete":
            doc.delete(section, key)
        elif op == "remove":
            doc.remove_section(section)
        doc.get(section, key)  # builds the indexes the next step moves
        fresh = IniDocument.from_text(doc.text())
        assert answers(doc) == answers(fresh)
        assert [(x.text, x.eol) for x in doc.lines] == [(x.text, x.eol) for x in fresh.lines]


@settings(max_examples=50)
@given(st.permutations(range(120)), st.integers(0, 120))
def test_deleting_keys_keeps_every_other_key_found(order: list[int], count: int) -> None:
    # Enough keys in one section that their probe runs in the key table meet, so a deletion
    # must move later entries into the hole it leaves.
    text = "[S]\r\n" + "".join(f"k{n}={n}\r\n" for n in range(120)) + "[T]\r\nk1=t\r\n"
    doc = IniDocument.from_text(text)
    assert doc.get("S", "k0") == "0"  # the table is built before the deletions
    gone = set(order[:count])
    for n in order[:count]:
        assert doc.delete("S", f"K{n}")
    for n in range(120):
        assert doc.get("S", f"k{n}") == (None if n in gone else str(n))
    assert doc.get("T", "k1") == "t"
    doc.set("S", "k0", "again")
    assert doc.get("s", "K0") == "again"
    assert IniDocument.from_text(doc.text()).items("S") == doc.items("S")
