"""The ini's section and key index answers exactly what a scan of the lines would (facts §3.2:
the profile API reads the first section of a name and the first key of a name in it)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from microsip_bridge.microsip.inifile import IniDocument, profile_value

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
