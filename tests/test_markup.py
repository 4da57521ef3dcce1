"""CMarkup's reading and escaping rules, which Contacts.xml and directory responses share."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from microsip_bridge.microsip.contacts_xml import parse_markup
from microsip_bridge.microsip.markup import (
    decode_references,
    encode_attribute,
    find_unstorable,
    sanitize_text,
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
