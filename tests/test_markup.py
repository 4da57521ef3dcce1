"""CMarkup's reading and escaping rules, which Contacts.xml and directory responses share."""

from __future__ import annotations

import re
import tracemalloc

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from microsip_bridge.errors import BridgeError, FileFormatError
from microsip_bridge.microsip.contacts_xml import parse_markup
from microsip_bridge.microsip.markup import (
    MAX_DEPTH,
    ChildScan,
    ProblemLog,
    decode_references,
    encode_attribute,
    find_unstorable,
    has_controls,
    sanitize_text,
    utf8_error,
)

# --- CMarkup's escaping, checked against a port of its C loops -----------------------------------


def cmarkup_text_from_doc(raw: str) -> str:
    """Markup.cpp x_TextFromDoc, line for line."""
    codes_ = ["lt;", "amp;", "gt;", "apos;", "quot;", "#39;"]
    symbols = "<&>'\"'"
    out = []
    n = 0
    right = len(raw) - 1
    while n <= right:
        if raw[n] == "&":
            for i, code in enumerate(codes_):
                if n <= right - len(code) and raw[n + 1 : n + 1 + len(code)] == code:
                    out.append(symbols[i])
                    n += len(code) + 1
                    break
            else:
                out.append("&")
                n += 1
        else:
            out.append(raw[n])
            n += 1
    return "".join(out)


def cmarkup_text_to_doc(text: str) -> str:
    """Markup.cpp x_TextToDoc with bAttrib: one character at a time."""
    table = {"<": "&lt;", "&": "&amp;", ">": "&gt;", "'": "&apos;", '"': "&quot;"}
    return "".join(table.get(ch, ch) for ch in text)


REFERENCE_PIECES = ["&", "lt;", "amp;", "gt;", "apos;", "quot;", "#39;", "#10;", ";", "a", "#", "é"]


@given(st.lists(st.sampled_from(REFERENCE_PIECES), max_size=30))
def test_decoding_equals_cmarkup(pieces: list[str]) -> None:
    raw = "".join(pieces)
    assert decode_references(raw) == cmarkup_text_from_doc(raw)
    # The bulk path used for whole tags gives the same.
    (element,) = parse_markup(f'<r><e name="{raw}" info="x{raw}"/></r>'.encode()).root.children
    assert element.attrs == {
        "name": cmarkup_text_from_doc(raw),
        "info": "x" + cmarkup_text_from_doc(raw),
    }


@given(st.text())
def test_encoding_equals_cmarkup(text: str) -> None:
    assert encode_attribute(text) == cmarkup_text_to_doc(text)


# --- characters and the element tree -------------------------------------------------------------


def test_sanitize_text_and_find_unstorable() -> None:
    value = "a\x00b\tc\x1fd\r\ne\ufffe\ud800"
    assert sanitize_text(value) == "a b\tc d\r\ne  "
    assert find_unstorable(value) == [(1, "\x00"), (5, "\x1f"), (10, "\ufffe"), (11, "\ud800")]
    assert sanitize_text("plain\ttext\n") == "plain\ttext\n"
    assert sanitize_text(value, "\ufffd") == "a\ufffdb\tc\ufffdd\r\ne\ufffd\ufffd"


def test_parse_markup_tree_and_data() -> None:
    tree = parse_markup(
        b"<r a='1'>\n <e><n> Bob &amp; Co </n><t><![CDATA[<raw>]]></t><x/><m>a<b/>c</m></e></r>"
    )
    root = tree.root
    assert root.name == "r"
    assert root.attrs == {"a": "1"}
    (entry,) = root.children
    n, t, x, m = entry.children
    assert n.data == " Bob & Co "  # GetChildData: raw, not trimmed
    assert t.data == "<raw>"
    assert x.data == ""
    assert m.data == ""  # has a child element
    assert entry.line == 2


def test_non_ascii_names_and_unicode_spaces_read_as_before() -> None:
    # Tags are found in the bytes; a name is decoded, and a Unicode space still ends it.
    tree = parse_markup(
        "<контакты>\r\n<заметка текст='привет'/>\r\n<e\u00a0a=\"1\"/></контакты\u3000>".encode()
    )
    assert tree.root.name == "контакты"
    note, e = tree.root.children
    assert (note.name, note.attrs, note.line) == ("заметка", {"текст": "привет"}, 2)
    assert (e.name, e.attrs, e.line) == ("e", {"a": "1"}, 3)
    with pytest.raises(FileFormatError, match=r"line 2: unterminated tag <é \(no closing >"):
        parse_markup("<r>\r\n<é\u00a0".encode())
    with pytest.raises(FileFormatError, match="line 2: invalid tag"):
        parse_markup("<r>\r\n<\u00a0x/></r>".encode())
    with pytest.raises(FileFormatError, match="text 'héllo wörld' before the root"):
        parse_markup("héllo wörld <r/>".encode())


def test_a_run_of_quotes_is_read_in_linear_time_and_bounded_memory() -> None:
    # A tag of a million quotes once cost seconds and ~160 bytes of backtracking state per quote.
    for quote in (b'"', b"'"):
        for extra in (0, 1):  # quotes that pair up (malformed attributes), and an open one
            data = b'<contacts>\n<contact name="' + quote * (1_000_000 + extra) + b"/>"
            tracemalloc.start()
            try:
                with pytest.raises(FileFormatError, match=r"line 2: (unterminated|malformed)"):
                    parse_markup(data)
                peak = tracemalloc.get_traced_memory()[1]
            finally:
                tracemalloc.stop()
            assert peak < 3 * len(data)


def test_long_tags_and_many_quotes_in_values_take_the_general_path() -> None:
    long_value = "x" * 100_000
    quotes = '"' * 1001
    tree = parse_markup(
        f"<r><e a=\"{long_value}\" b='{quotes}' c=\"&amp;\"/><e a='1>2'/></r>".encode()
    )
    first, second = tree.root.children
    assert first.attrs == {"a": long_value, "b": quotes, "c": "&"}
    assert second.attrs == {"a": "1>2"}


def test_utf8_is_checked_across_the_slices_it_is_read_in() -> None:
    # A character that straddles the 1 MiB slice boundary is fine; a bad byte is found anywhere.
    head = b"<r a='"
    pad = b"x" * ((1 << 20) - len(head) - 1)
    good = head + pad + "é".encode() + b"'/>"
    assert parse_markup(good).root.attrs == {"a": "x" * len(pad) + "é"}
    assert utf8_error(good) is None
    bad = head + pad + b"\n\n\xff'/>"
    error = utf8_error(bad)
    assert error is not None
    assert error.start == len(head) + len(pad) + 2
    with pytest.raises(FileFormatError, match=r"line 3: invalid UTF-8 \(byte 0xFF\)"):
        parse_markup(bad)


@settings(max_examples=200)
@given(st.data())
def test_the_child_scan_finds_what_the_tree_holds(data: st.DataObject) -> None:
    raw = bytearray(
        "<r>\n<a x='1'><b/></a>\n<!-- c --><é y=\"&amp;\"/>text<a/>\n</r>\n<!-- end -->".encode()
    )
    for _ in range(data.draw(st.integers(0, 3))):
        at = data.draw(st.integers(0, len(raw)))
        raw[at:at] = data.draw(st.sampled_from([b"<", b">", b'"', b"/", b"<a/>", b"\n", b"&#1;"]))
    text = bytes(raw)
    assume(utf8_error(text) is None)  # the scan's input is checked UTF-8
    problems = ProblemLog()
    scan = ChildScan(text, None, MAX_DEPTH, problems, has_controls(text))
    try:
        tree = parse_markup(text)
    except BridgeError as exc:
        error = exc
    else:
        error = None
    if error is not None:
        with pytest.raises(type(error), match=re.escape(str(error))):
            list(scan)
        return
    children = [(c.name, c.keys, c.values, c.line) for c in scan]
    assert children == [(c.name, c.keys, c.values, c.line) for c in tree.root.children]
    assert (scan.root.name, scan.root.line, scan.root.text_line, scan.root.children) == (
        tree.root.name,
        tree.root.line,
        tree.root.text_line,
        [],
    )
    assert problems.listed() == tree.problems


def test_a_child_scan_has_no_root_before_it_runs() -> None:
    with pytest.raises(RuntimeError):
        _ = ChildScan(b"<r/>", None, MAX_DEPTH, ProblemLog(), controls=False).root
