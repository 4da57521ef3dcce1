"""Contacts.xml read and written as MicroSIP's CMarkup does: corpus, fixtures, hostile input,
and write -> read identity."""

from __future__ import annotations

import inspect
import io
import random
import re
import tracemalloc
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from microsip_bridge.errors import (
    BridgeError,
    FileFormatError,
    MicroSIPRunningError,
    NotFoundError,
    UnsafeInputError,
)
from microsip_bridge.fileio import list_backups
from microsip_bridge.microsip.contact import ATTRIBUTES, TEXT_FIELDS, Contact
from microsip_bridge.microsip.contacts_xml import (
    ContactsFile,
    Replacement,
    contacts_from_document,
    parse_contacts,
    parse_markup,
    prepare_contact,
    read_contacts,
    read_contacts_stream,
    sanitize_contacts,
    serialize_contacts,
    write_contacts,
)
from microsip_bridge.microsip.markup import MAX_PROBLEMS, Problem, ProblemCode

CONTACTS = "contacts"  # the corpus's sub-folder, and ours in tests/data
DECL = b'<?xml version="1.0"?>\r\n'


def doc(*lines: str, decl: bytes = DECL) -> bytes:
    """A Contacts.xml with these lines between <contacts> and </contacts>, CRLF as MicroSIP."""
    body = "".join(line + "\r\n" for line in lines)
    return decl + ("<contacts>\r\n" + body + "</contacts>\r\n").encode("utf-8")


def codes(cf: ContactsFile) -> list[ProblemCode]:
    return [p.code for p in cf.problems]


def assert_one_line_error(exc: BaseException, line: int | None = None, path: str | None = None):
    message = str(exc)
    assert "\n" not in message
    if line is not None:
        assert f"line {line}" in message, message
    if path is not None:
        assert path in message, message


# --- real-world shapes: ours (tests/data/contacts) and the corpus's ----------------------------


@pytest.mark.parametrize(
    ("sample", "count", "duplicates"),
    [
        ("data/contacts/pbx-export.Contacts.xml", 8, 0),
        ("data/contacts/hand-kept.Contacts.xml", 4, 0),
        ("data/contacts/duplicates-3.20.Contacts.xml", 10, 2),
        ("data/contacts/empty-fork.Contacts.xml", 0, 0),
        ("data/contacts/powershell-bom.Contacts.xml", 1, 0),
        ("corpus/contacts/real-cassck-monitcall.Contacts.xml", 148, 0),
        ("corpus/contacts/real-edweltonchristian-microsipgn.Contacts.xml", 154, 0),
        ("corpus/contacts/real-wagner752-testediretorio.Contacts.xml", 177, 3),
        ("corpus/contacts/real-wagner752-testeagenda.Contacts.xml", 179, 1),
        ("corpus/contacts/real-mrsz-microtalk-empty.Contacts.xml", 0, 0),
        ("corpus/contacts/real-obsidian-logger-greek.Contacts.xml", 1, 0),
    ],
    indirect=["sample"],
)
def test_sample_counts(sample: Path, count: int, duplicates: int) -> None:
    cf = read_contacts(sample)
    assert len(cf.contacts) == count
    assert len(cf.loaded_by_microsip()) == count  # every real contact has a number
    assert len(cf.lines) == count
    assert codes(cf).count(ProblemCode.DUPLICATE) == duplicates
    assert cf.path == sample


def test_pbx_export_single_quoted_declaration_and_odd_order(data_dir: Path) -> None:
    # <?xml version='1.0' encoding='utf-8'?>, info after directory, flags empty (facts §4.2).
    cf = read_contacts(data_dir / CONTACTS / "pbx-export.Contacts.xml")
    assert cf.problems == []
    first, third = cf.contacts[0], cf.contacts[2]
    assert (first.name, first.number, first.info) == ("Joaquim", "6101", "Diretoria")
    assert (third.name, third.info) == ("Manutenção", "Manutenção")
    assert not any(c.presence or c.starred or c.directory for c in cf.contacts)
    assert cf.lines[:2] == [3, 4]


def test_hand_kept_file_commented_out_contacts_are_not_contacts(data_dir: Path) -> None:
    path = data_dir / CONTACTS / "hand-kept.Contacts.xml"
    cf = read_contacts(path)
    raw = path.read_text(encoding="utf-8")
    commented = re.findall(r"<!--.*?-->", raw, re.S)
    hidden = {m for c in commented for m in re.findall(r'number="(\d+)"', c)}
    # A block and a one-line comment inside the root, one after it.
    assert hidden == {"4051", "4052", "4099", "4098"}
    assert not hidden & {c.number for c in cf.contacts}
    assert len(re.findall(r"<contact ", raw)) == 4 + sum(c.count("<contact ") for c in commented)
    # Names are kept verbatim: trailing spaces and no-break spaces included.
    assert any(c.name.endswith("\xa0") for c in cf.contacts)
    assert any(c.name.endswith(" ") and not c.name.endswith("\xa0") for c in cf.contacts)
    assert cf.contacts[0].name == "*SP PORTARIA "
    # Blanks after "/>" and the comment after </contacts> are fine; nothing is reported.
    assert cf.problems == []


def test_duplicates_name_both_lines(data_dir: Path) -> None:
    cf = read_contacts(data_dir / CONTACTS / "duplicates-3.20.Contacts.xml")
    dup = [p for p in cf.problems if p.code is ProblemCode.DUPLICATE]
    assert [p.line for p in dup] == [8, 11]
    assert "line 5" in dup[0].message
    assert "'ANA PAULA\\xa0'" in dup[0].message
    # MicroSIP keeps duplicates; so do we.
    assert [c.number for c in cf.contacts].count("5014") == 2


def test_corpus_pbx_export_single_quoted_declaration_and_odd_order(corpus: Path) -> None:
    # <?xml version='1.0' encoding='utf-8'?>, info after directory, flags empty (facts §4.2).
    cf = read_contacts(corpus / CONTACTS / "real-cassck-monitcall.Contacts.xml")
    assert cf.problems == []
    first, third = cf.contacts[0], cf.contacts[2]
    assert (first.name, first.number, first.info) == ("Geraldo", "5901", "Diretoria")
    assert (third.name, third.info) == ("Recepção", "Recepção")
    assert not any(c.presence or c.starred or c.directory for c in cf.contacts)
    assert cf.lines[:2] == [3, 4]


def test_corpus_commented_out_contacts_are_not_contacts(corpus: Path) -> None:
    path = corpus / CONTACTS / "real-edweltonchristian-microsipgn.Contacts.xml"
    cf = read_contacts(path)
    raw = path.read_text(encoding="utf-8")
    commented = re.findall(r"<!--.*?-->", raw, re.S)
    hidden = {m for c in commented for m in re.findall(r'number="(\d+)"', c)}
    assert "3042" in hidden  # NAYARA SILVA, in the first comment
    numbers = {c.number for c in cf.contacts}
    assert "3042" not in numbers
    assert len(re.findall(r"<contact ", raw)) == 154 + sum(c.count("<contact ") for c in commented)
    # Names are kept verbatim: trailing spaces and no-break spaces included.
    assert any(c.name.endswith("\xa0") for c in cf.contacts)
    assert any(c.name.endswith(" ") and not c.name.endswith("\xa0") for c in cf.contacts)
    assert cf.contacts[0].name == "*VD MACAU "
    # The comment after </contacts> is fine; nothing else is reported.
    assert cf.problems == []


def test_corpus_duplicates_name_both_lines(corpus: Path) -> None:
    cf = read_contacts(corpus / CONTACTS / "real-wagner752-testediretorio.Contacts.xml")
    dup = [p for p in cf.problems if p.code is ProblemCode.DUPLICATE]
    assert [p.line for p in dup] == [117, 152, 172]
    assert "line 116" in dup[0].message
    assert "'ALYNE SILVA\\xa0'" in dup[0].message
    # MicroSIP keeps duplicates; so do we.
    assert [c.number for c in cf.contacts].count("3074") >= 2


@pytest.mark.parametrize(
    ("sample", "name", "number"),
    [
        ("data/contacts/powershell-bom.Contacts.xml", "Νίκος Αλεξίου", "+30 231 055 0199"),
        (
            "corpus/contacts/real-obsidian-logger-greek.Contacts.xml",
            "Μαρία Γεωργίου",
            "+30 210 123 4567",
        ),
    ],
    indirect=["sample"],
)
def test_powershell_bom_greek(sample: Path, name: str, number: str) -> None:
    cf = read_contacts(sample)
    assert codes(cf) == [ProblemCode.BOM]
    assert cf.problems[0].line == 1
    (contact,) = cf.contacts
    assert contact.name == name
    assert contact.number == number  # the spaces are part of the dial string
    assert contact.attributes()["presence"] == "0"


@pytest.mark.parametrize(
    "sample",
    [
        "data/contacts/empty-fork.Contacts.xml",
        "corpus/contacts/real-mrsz-microtalk-empty.Contacts.xml",
    ],
    indirect=True,
)
def test_empty_file_from_the_3_11_fork(sample: Path) -> None:
    cf = read_contacts(sample)
    assert cf.contacts == []
    assert cf.problems == []
    # What 3.20/3.22 (CMarkup) write for no contacts differs: the empty element.
    assert serialize_contacts(cf.contacts) == DECL + b"<contacts/>\r\n"


@pytest.mark.parametrize(
    "sample",
    [
        "data/contacts/duplicates-3.20.Contacts.xml",
        "corpus/contacts/real-wagner752-testediretorio.Contacts.xml",
    ],
    indirect=True,
)
def test_file_written_by_3_20_is_rewritten_byte_for_byte_plus_starred(sample: Path) -> None:
    # These have exactly the 16 attributes of 3.20 in its order (facts §4.2): our 3.22 output is
    # the same bytes with starred="0" added before directory, as 3.22 itself would save.
    path = sample
    original = path.read_bytes()
    rewritten = serialize_contacts(read_contacts(path).contacts)
    assert rewritten == original.replace(b'" directory="', b'" starred="0" directory="')


@pytest.mark.parametrize(
    "sample",
    [
        "data/contacts/pbx-export.Contacts.xml",
        "data/contacts/hand-kept.Contacts.xml",
        "data/contacts/duplicates-3.20.Contacts.xml",
        "data/contacts/powershell-bom.Contacts.xml",
        "corpus/contacts/real-cassck-monitcall.Contacts.xml",
        "corpus/contacts/real-edweltonchristian-microsipgn.Contacts.xml",
        "corpus/contacts/real-wagner752-testeagenda.Contacts.xml",
        "corpus/contacts/real-obsidian-logger-greek.Contacts.xml",
    ],
    indirect=True,
)
def test_load_save_load_keeps_every_contact(sample: Path, tmp_path: Path) -> None:
    cf = read_contacts(sample)
    target = tmp_path / "Contacts.xml"
    write_contacts(target, cf.contacts)
    data = target.read_bytes()
    assert data.startswith(DECL + b"<contacts>\r\n")
    assert not data.startswith(b"\xef\xbb\xbf")
    again = read_contacts(target)
    assert again.contacts == cf.contacts
    assert ProblemCode.BOM not in codes(again)
    # One contact per CRLF line, in MicroSIP's attribute order.
    lines = data.split(b"\r\n")
    assert len(lines) == len(cf.contacts) + 4  # declaration, <contacts>, contacts, </contacts>, ""
    names = re.findall(rb' ([a-z]+)="', lines[2])
    assert tuple(n.decode() for n in names) == ATTRIBUTES


# --- fixtures in MicroSIP's three shapes ---------------------------------------------------------


def test_fixture_3_19_cxmlfile_shape(data_dir: Path) -> None:
    # 3.19's CXMLFile: number, name, presence, directory; ' '-padded attributes, an end tag per
    # contact, CRLF from the text-mode fopen; only & < > " escaped (S19 global.cpp).
    raw = (data_dir / "contacts-3.19.xml").read_bytes()
    assert (
        b'<contact number="100"  name="Reception"  presence="1"  directory="0" >\r\n</contact>'
        in raw
    )
    cf = parse_contacts(raw)
    assert cf.problems == []
    assert [(c.number, c.name, c.presence, c.directory) for c in cf.contacts] == [
        ("100", "Reception", True, False),
        ("+353 1 234 5678", "O'Brien & Sons <Sales>", False, False),
        ("sip:anna@pbx.example.invalid", 'Anna "Annie" Müller', True, True),
        ("+30 210 123 4567", "Ελένη Παπαδοπούλου", False, True),
    ]
    assert all(c.firstname == c.info == "" and not c.starred for c in cf.contacts)
    assert cf.lines == [3, 5, 7, 9]


def test_fixture_3_20_shape(data_dir: Path) -> None:
    raw = (data_dir / "contacts-3.20.xml").read_bytes()
    cf = parse_contacts(raw)
    assert cf.problems == []
    assert len(cf.contacts) == 6
    assert not any(c.starred for c in cf.contacts)  # 3.20 has no starred attribute
    jurgen = cf.contacts[4]
    assert jurgen.name == ""
    assert prepare_contact(jurgen) == jurgen.replace(name="Jürgen Weiß")
    # Written back by 3.22: starred="0" appears before directory, nothing else changes.
    assert serialize_contacts(cf.contacts) == raw.replace(
        b'" directory="', b'" starred="0" directory="'
    )


def test_fixture_3_22_shape_reads_every_field_and_writes_back_identically(data_dir: Path) -> None:
    raw = (data_dir / "contacts-3.22.xml").read_bytes()
    cf = parse_contacts(raw)
    assert cf.problems == []
    jurgen = cf.contacts[4]
    assert jurgen == Contact(
        name="",
        number="+1 555 0100",
        firstname="Jürgen",
        lastname="Weiß",
        phone="+49 30 1234567",
        mobile="+49 170 7654321",
        email="j.weiss@example.invalid",
        address="Hauptstraße 1",
        city="München",
        state="BY",
        zip="80331",
        # A raw CRLF inside the value: CMarkup writes it raw and reads it back raw.
        comment="Prefers e-mail.\r\nAsk for 'JW' & never call after 18:00",
        id="crm-42",
        info="Ready",
        presence=False,
        starred=True,
        directory=False,
    )
    assert cf.contacts[1].name == "O'Brien & Sons <Sales>"
    assert cf.lines == [3, 4, 5, 6, 7, 9]  # the raw CRLF moves the next contact down a line
    assert serialize_contacts(cf.contacts) == raw


# --- the exact bytes MicroSIP writes -------------------------------------------------------------


def test_exact_bytes_of_a_small_file() -> None:
    contacts = [
        Contact(name="Reception", number="100", presence=True),
        Contact(
            name="O'Brien & <Sons>",
            number='+1 "555"',
            comment="a\tb\r\nc",
            starred=True,
            directory=True,
            extra={"x-crm": "7 & 8"},
        ),
    ]
    expected = (
        b'<?xml version="1.0"?>\r\n'
        b"<contacts>\r\n"
        b'<contact name="Reception" number="100" firstname="" lastname="" phone="" mobile="" '
        b'email="" address="" city="" state="" zip="" comment="" id="" info="" presence="1" '
        b'starred="0" directory="0"/>\r\n'
        b'<contact name="O&apos;Brien &amp; &lt;Sons&gt;" number="+1 &quot;555&quot;" '
        b'firstname="" lastname="" phone="" mobile="" email="" address="" city="" state="" '
        b'zip="" comment="a\tb\r\nc" id="" info="" presence="0" starred="1" directory="1" '
        b'x-crm="7 &amp; 8"/>\r\n'
        b"</contacts>\r\n"
    )
    assert serialize_contacts(contacts) == expected
    assert parse_contacts(expected).contacts == contacts


def test_empty_list_is_the_cmarkup_empty_element() -> None:
    # CMarkup's x_AddElem writes <contacts/> and only splits it when a child is added.
    assert serialize_contacts([]) == b'<?xml version="1.0"?>\r\n<contacts/>\r\n'
    assert parse_contacts(serialize_contacts([])).contacts == []


def test_non_ascii_is_utf8_without_bom_or_references() -> None:
    data = serialize_contacts([Contact(name="李小龍 😀 Zoë", number="1")])
    assert "李小龍 😀 Zoë".encode() in data
    assert b"&#" not in data
    assert not data.startswith(b"\xef\xbb\xbf")


def test_prefixed_attribute_names_round_trip() -> None:
    contact = Contact(number="1", extra={"xmlns:crm": "urn:x", "crm:id": "7"})
    assert parse_contacts(serialize_contacts([contact])).contacts == [contact]


def test_known_names_in_extra_are_not_written_twice() -> None:
    contact = Contact(name="A", number="1", extra={"name": "B", "group": "x"})
    data = serialize_contacts([contact])
    assert data.count(b' name="') == 1
    assert b'group="x"/>' in data


# --- reading rules (facts §4.2, §4.3) ------------------------------------------------------------


def test_only_six_references_are_decoded() -> None:
    raw = doc(
        '<contact name="a&#10;b&#x41;c&#39;d&apos;e&quot;f&lt;g&gt;h&amp;i" number="1" '
        'comment="&amp;lt; &foo; & &#65 &amp" info="&#39;&amp;#39;"/>'
    )
    (contact,) = parse_contacts(raw).contacts
    assert contact.name == "a&#10;b&#x41;c'd'e\"f<g>h&i"
    assert contact.comment == "&lt; &foo; & &#65 &amp"
    assert contact.info == "'&#39;"


def test_numeric_references_are_reported() -> None:
    cf = parse_contacts(doc('<contact name="a&#10;b" number="1" info="&amp;#10;"/>'))
    (problem,) = cf.problems
    assert problem.code is ProblemCode.CHAR_REFERENCE
    assert problem.line == 3
    assert "'name'" in problem.message
    assert "&#10;" in problem.message


def test_whitespace_in_values_is_not_normalised() -> None:
    raw = doc('<contact name=" two  spaces\tand\ttabs " number="1" comment="x\r\ny\nz\rw"/>')
    (contact,) = parse_contacts(raw).contacts
    assert contact.name == " two  spaces\tand\ttabs "
    assert contact.comment == "x\r\ny\nz\rw"


def test_attribute_order_quotes_spacing_missing_and_unknown() -> None:
    raw = doc(
        "<contact  directory = '1' number='200'\r\n   name=\"O'Neil\" x-photo='a\"b' "
        'presence="1" extra2=""  />'
    )
    cf = parse_contacts(raw)
    (contact,) = cf.contacts
    assert contact.name == "O'Neil"
    assert contact.number == "200"
    assert contact.directory
    assert contact.presence
    assert not contact.starred
    assert contact.email == contact.info == ""
    assert contact.extra == {"x-photo": 'a"b', "extra2": ""}
    assert list(contact.extra) == ["x-photo", "extra2"]
    assert cf.problems == []
    # Unknown attributes go after the 17, in file order.
    written = serialize_contacts([contact])
    assert written.endswith(b'directory="1" x-photo="a&quot;b" extra2=""/>\r\n</contacts>\r\n')


def test_flags_are_on_only_for_exactly_1() -> None:
    raw = doc(
        '<contact name="a" number="1" presence="1" starred="true" directory=" 1"/>',
        '<contact name="b" number="2" presence="01" starred="yes" directory=""/>',
    )
    a, b = parse_contacts(raw).contacts
    assert (a.presence, a.starred, a.directory) == (True, False, False)
    assert (b.presence, b.starred, b.directory) == (False, False, False)


def test_repeated_attribute_first_wins() -> None:
    cf = parse_contacts(doc('<contact name="first" number="1" name="second"/>'))
    assert cf.contacts[0].name == "first"
    assert codes(cf) == [ProblemCode.DUPLICATE_ATTRIBUTE]
    assert cf.problems[0].line == 3


def test_contact_without_number_is_kept_but_microsip_skips_it() -> None:
    cf = parse_contacts(
        doc(
            '<contact name="Only phone" number="" phone="555"/>',
            '<contact name="Nothing"/>',
            '<contact name="Good" number="1"/>',
        )
    )
    assert [c.name for c in cf.contacts] == ["Only phone", "Nothing", "Good"]
    assert [c.name for c in cf.loaded_by_microsip()] == ["Good"]
    assert codes(cf) == [ProblemCode.NO_NUMBER, ProblemCode.NO_NUMBER]
    assert "'555'" in cf.problems[0].message  # ContactsLoad checks number before any fallback
    assert [p.line for p in cf.problems] == [3, 4]


def test_duplicates_use_the_name_microsip_builds() -> None:
    cf = parse_contacts(
        doc(
            '<contact name="" firstname="Ann" lastname="Lee" number="1"/>',
            '<contact name="Ann Lee" number="1"/>',
            '<contact name="Ann Lee" number="2"/>',
        )
    )
    assert codes(cf) == [ProblemCode.DUPLICATE]
    assert cf.problems[0].line == 4


def test_3_19_end_tag_form_and_other_elements() -> None:
    cf = parse_contacts(
        doc(
            '<contact number="1"  name="a"  presence="0"  directory="0" >',
            "</contact>",
            '<group name="x"><contact number="9" name="nested"/></group>',
            "stray text",
            '<contact number="2" name="b"><note>hi</note></contact>',
        )
    )
    assert [c.number for c in cf.contacts] == ["1", "2"]  # nested contacts are not contacts
    assert codes(cf) == [ProblemCode.IGNORED_ELEMENT, ProblemCode.IGNORED_TEXT]
    assert [p.line for p in cf.problems] == [5, 6]


@pytest.mark.parametrize(
    "decl",
    [
        b"",
        b'<?xml version="1.0"?>',
        b"<?xml version='1.0' encoding='utf-8'?>\n",
        b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\r\n<!-- made by hand -->\r\n',
        b"\xef\xbb\xbf<?xml version='1.0'?>",
        b'<?xml-stylesheet href="x"?>\n',
    ],
)
def test_declarations(decl: bytes) -> None:
    cf = parse_contacts(doc('<contact name="a" number="1"/>', decl=decl))
    assert [c.number for c in cf.contacts] == ["1"]
    assert codes(cf) == ([ProblemCode.BOM] if decl.startswith(b"\xef\xbb\xbf") else [])


def test_declared_non_utf8_encoding() -> None:
    decl = b'<?xml version="1.0" encoding="ISO-8859-1"?>\r\n'
    cf = parse_contacts(doc('<contact name="plain" number="1"/>', decl=decl))
    assert codes(cf) == [ProblemCode.DECLARED_ENCODING]
    latin1 = decl + b'<contacts>\r\n<contact name="Jos\xe9" number="1"/>\r\n</contacts>'
    with pytest.raises(FileFormatError) as info:
        parse_contacts(latin1, "Contacts.xml")
    assert_one_line_error(info.value, line=3, path="Contacts.xml")
    assert "ISO-8859-1" in str(info.value)
    unknown = b'<?xml version="1.0" encoding="no-such-codec"?><contacts>\xff</contacts>'
    with pytest.raises(FileFormatError, match="no-such-codec"):
        parse_contacts(unknown)


def test_comment_and_pi_after_the_root_are_fine_other_content_is_reported() -> None:
    ok = doc('<contact name="a" number="1"/>') + b"<!-- bye -->\r\n<?pi x?>\r\n"
    assert parse_contacts(ok).problems == []
    for tail in (b"<contacts/>", b"garbage", b"<x", b"<!-- open", b"<![CDATA[x]]>"):
        cf = parse_contacts(doc('<contact name="a" number="1"/>') + tail)
        assert [c.number for c in cf.contacts] == ["1"]
        assert codes(cf) == [ProblemCode.AFTER_ROOT]
        assert cf.problems[0].line == 5


def test_control_character_in_a_value_is_kept_and_reported() -> None:
    cf = parse_contacts(doc('<contact name="a\x01b" number="1"/>', "<!-- \x02 ignored -->"))
    assert cf.contacts[0].name == "a\x01b"
    assert codes(cf) == [ProblemCode.CONTROL_CHARACTER]
    assert "U+0001" in cf.problems[0].message
    with pytest.raises(UnsafeInputError):
        serialize_contacts(cf.contacts)
    clean, replaced = sanitize_contacts(cf.contacts)
    assert clean[0].name == "a b"
    assert replaced == [Replacement(0, "name", 1, "\x01")]
    assert parse_contacts(serialize_contacts(clean)).contacts == clean


def test_control_characters_after_the_root_are_not_read() -> None:
    cf = parse_contacts(doc('<contact name="a" number="1"/>') + b"junk \x01\x02")
    assert codes(cf) == [ProblemCode.AFTER_ROOT]


def test_values_with_markup_characters_raw() -> None:
    # CMarkup reads quoted strings to the closing quote: > and < inside them are fine.
    cf = parse_contacts(doc('<contact name="a>b<c" number="1" info=\'x>"y\'/>'))
    (contact,) = cf.contacts
    assert (contact.name, contact.info) == ("a>b<c", 'x>"y')


def test_many_layouts_in_one_file() -> None:
    lines = []
    for i in range(300):
        names = ["name", "number", f"x{i % 7}"]
        random.Random(i).shuffle(names)
        lines.append("<contact " + " ".join(f'{n}="{n}{i}"' for n in names) + "/>")
    cf = parse_contacts(doc(*lines))
    assert [c.number for c in cf.contacts] == [f"number{i}" for i in range(300)]
    assert all(c.extra == {f"x{i % 7}": f"x{i % 7}{i}"} for i, c in enumerate(cf.contacts))


# --- hostile and damaged input -------------------------------------------------------------------

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol9 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<contacts><contact name="&lol9;" number="1"/></contacts>
"""
EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE contacts [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<contacts><contact name="&xxe;" number="1"/></contacts>
"""
EXTERNAL_DTD = b'<?xml version="1.0"?>\n<!DOCTYPE contacts PUBLIC "-//x//EN" "http://example.invalid/x.dtd">\n<contacts/>'


@pytest.mark.parametrize("data", [BILLION_LAUGHS, EXTERNAL_ENTITY, EXTERNAL_DTD])
def test_dtd_is_refused(data: bytes) -> None:
    with pytest.raises(UnsafeInputError) as info:
        parse_contacts(data, "evil.xml")
    assert_one_line_error(info.value, line=2, path="evil.xml")
    assert "DTD" in str(info.value)


def test_entity_declaration_outside_a_doctype_is_refused() -> None:
    with pytest.raises(UnsafeInputError):
        parse_contacts(b'<!ENTITY x "y"><contacts/>')


def test_deep_nesting_is_refused_without_recursion() -> None:
    depth = 10_000
    data = b"<contacts>" + b"<a>" * depth + b"</a>" * depth + b"</contacts>"
    with pytest.raises(UnsafeInputError) as info:
        parse_contacts(data, "deep.xml")
    assert_one_line_error(info.value, line=1, path="deep.xml")
    assert "64" in str(info.value)
    # 64 levels are fine; the limit is a parameter.
    ok = b"<contacts>" + b"<a>" * 63 + b"</a>" * 63 + b"</contacts>"
    assert parse_contacts(ok).contacts == []
    with pytest.raises(UnsafeInputError):
        parse_contacts(ok, max_depth=10)


def test_a_100_mb_file_is_refused_before_it_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "Contacts.xml"
    with path.open("wb") as fh:
        fh.truncate(100 * 1024 * 1024)  # sparse: no 100 MB written
    opened: list[Path] = []
    real_open = Path.open

    def spy(self: Path, *args: object, **kwargs: object) -> object:
        opened.append(self)
        return real_open(self, *args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr(Path, "open", spy)
    with pytest.raises(UnsafeInputError) as info:
        read_contacts(path)
    assert_one_line_error(info.value, path=str(path))
    assert "104,857,600 bytes" in str(info.value)
    assert opened == []  # refused on its size alone


class CountingStream(io.RawIOBase):
    """An endless stream of spaces that counts what was read from it."""

    def __init__(self) -> None:
        self.served = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        n = len(buffer)
        buffer[:n] = b" " * n
        self.served += n
        return n


def test_a_stream_is_read_no_further_than_the_limit() -> None:
    stream = CountingStream()
    with pytest.raises(UnsafeInputError):
        read_contacts_stream(stream, "pipe", max_bytes=1000)  # type: ignore[arg-type]
    assert stream.served == 1001


class TrickleStream(io.RawIOBase):
    """A pipe that hands out 7 bytes per read."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        n = min(7, len(buffer), len(self.data))
        buffer[:n] = self.data[:n]
        self.data = self.data[n:]
        return n


def test_short_reads_are_joined(data_dir: Path) -> None:
    raw = (data_dir / "contacts-3.22.xml").read_bytes()
    cf = read_contacts_stream(TrickleStream(raw))  # type: ignore[arg-type]
    assert cf.contacts == parse_contacts(raw).contacts
    assert len(cf.contacts) == 6


def test_bytes_over_the_limit_are_refused() -> None:
    data = doc('<contact name="a" number="1"/>')
    with pytest.raises(UnsafeInputError):
        parse_contacts(data, max_bytes=len(data) - 1)
    assert len(parse_contacts(data, max_bytes=len(data)).contacts) == 1


@pytest.mark.parametrize(
    ("data", "line", "words"),
    [
        (b'<contacts>\r\n<!-- open\r\n<contact number="1"/>\r\n</contacts>', 2, "comment"),
        (b"<contacts>\r\n<contact number='1'/>\r\n</contact>", 3, "does not close"),
        (b"<contacts>\r\n<contact number='1'/>\r\n", 3, "never closed"),
        (b'<contacts>\r\n<contact number="1/>\r\n</contacts>\r\n', 2, "unterminated tag"),
        (b"<contacts>\r\n<contact number=1/>\r\n</contacts>", 2, "malformed attribute"),
        (b'<contacts>\r\n<contact number="1" "x"/>\r\n</contacts>', 2, "malformed attribute"),
        (b'<contacts>\r\n<contact ="1"/>\r\n</contacts>', 2, "malformed attribute"),
        (b"<contacts>\r\n<contact number='1'/></contacts", 2, "unterminated end tag"),
        (b"<contacts>\r\n< contact/>\r\n</contacts>", 2, "invalid tag"),
        (b"<contacts>\r\n</x>\r\n</contacts>", 2, "does not close"),
        (b"</contacts>", 1, "without a start tag"),
        (b"hello <contacts/>", 1, "before the root"),
        (b"<contacts>\r\n<![CDATA[ x\r\n</contacts>", 2, "CDATA"),
        (b"<contacts>\r\n<!FOO>\r\n</contacts>", 2, "unknown markup"),
        (b"<contacts>\r\n<?pi\r\n</contacts>", 2, "processing instruction"),
        (b"\r\n\r\n<phonebook/>", 3, "not <contacts>"),
        (b'<contacts>\r\n<contact name="caf\xe9" number="1"/>\r\n</contacts>', 2, "invalid UTF-8"),
        (b'<contacts>\r\n<contact name="a\x00" number="1"/>\r\n</contacts>', 2, "NUL"),
        (b"<contacts>\r\ntext \x07 bell\r\n</contacts>", 2, "U+0007"),
    ],
)
def test_damaged_input_names_file_and_line(data: bytes, line: int, words: str) -> None:
    with pytest.raises(FileFormatError) as info:
        parse_contacts(data, "C:/MicroSIP/Contacts.xml")
    assert_one_line_error(info.value, line=line, path="Contacts.xml")
    assert words in str(info.value)


@pytest.mark.parametrize("data", [b"", b"   \r\n", b"just text", b"\x89PNG\r\n\x1a\n\x00\x00"])
def test_not_xml_at_all(data: bytes) -> None:
    with pytest.raises(FileFormatError) as info:
        parse_contacts(data, "x.xml")
    assert_one_line_error(info.value, path="x.xml")


def test_utf16_file_is_explained() -> None:
    data = doc('<contact name="a" number="1"/>').decode().encode("utf-16")
    with pytest.raises(FileFormatError, match="UTF-16"):
        parse_contacts(data)


def test_missing_file_and_folder(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError):
        read_contacts(tmp_path / "nope.xml")
    with pytest.raises(NotFoundError):
        read_contacts(tmp_path)


@settings(max_examples=300)
@given(st.binary(max_size=400))
def test_random_bytes_raise_only_bridge_errors(data: bytes) -> None:
    error = None
    try:
        parse_contacts(data)
    except BridgeError as exc:
        error = exc
    assert error is None or "\n" not in str(error)


VALID = doc(
    '<contact name="O&apos;Brien" number="1" comment="a&amp;b"/>',
    "<!-- c -->",
    "<contact number='2' name=\"x>y\"></contact>",
)


@settings(max_examples=300)
@given(st.data())
def test_mutated_documents_raise_only_bridge_errors(data: st.DataObject) -> None:
    raw = bytearray(VALID)
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(raw)))
        if data.draw(st.booleans()) and at < len(raw):
            del raw[at]
        else:
            raw[at:at] = data.draw(
                st.sampled_from([b"<", b">", b'"', b"'", b"&", b"/", b"=", b"!"])
            )
    error = None
    try:
        cf = parse_contacts(bytes(raw))
    except BridgeError as exc:
        error = exc
    else:
        assert all(isinstance(c, Contact) for c in cf.contacts)
    assert error is None or "\n" not in str(error)


# --- writing -------------------------------------------------------------------------------------

UNSTORABLE = [chr(c) for c in range(32) if chr(c) not in "\t\n\r"] + ["\ufffe", "\uffff", "\ud800"]


@pytest.mark.parametrize("bad", UNSTORABLE)
def test_unstorable_characters_are_refused_naming_contact_and_attribute(bad: str) -> None:
    contacts = [Contact(name="ok", number="1"), Contact(name="Bob", number="2", city=f"x{bad}")]
    with pytest.raises(UnsafeInputError) as info:
        serialize_contacts(contacts)
    message = str(info.value)
    assert "\n" not in message
    assert "contact 2" in message
    assert "'Bob'" in message
    assert "'city'" in message
    assert f"U+{ord(bad):04X}" in message


def test_unstorable_in_extra_and_bad_extra_names() -> None:
    with pytest.raises(UnsafeInputError, match="'x-note'"):
        serialize_contacts([Contact(number="1", extra={"x-note": "\x00"})])
    for name in ("bad name", "1st", 'a"b', "", "a/b", "a\ud800", "\x01"):
        with pytest.raises(UnsafeInputError, match="not a valid XML attribute name"):
            serialize_contacts([Contact(number="1", extra={name: "v"})])


def test_sanitize_contacts_reports_and_keeps_clean_ones() -> None:
    clean = Contact(name="fine", number="1")
    dirty = Contact(name="x\x0b", number="2\x00", extra={"note": "\x01", "ok": "y"})
    out, replaced = sanitize_contacts([clean, dirty])
    assert out[0] is clean
    assert out[1] == Contact(name="x ", number="2 ", extra={"note": " ", "ok": "y"})
    assert dirty.name == "x\x0b"  # the input is not modified
    assert [(r.index, r.attribute, r.offset, r.char) for r in replaced] == [
        (1, "name", 1, "\x0b"),
        (1, "number", 1, "\x00"),
        (1, "note", 0, "\x01"),
    ]
    assert str(replaced[0]) == "contact 2: 'name' had U+000B at offset 1, replaced with a space"
    serialize_contacts(out)


def test_write_refuses_while_microsip_runs(tmp_path: Path) -> None:
    target = tmp_path / "Contacts.xml"
    target.write_bytes(b"old")
    with pytest.raises(MicroSIPRunningError) as info:
        write_contacts(target, [Contact(number="1")], microsip_running=True)
    assert_one_line_error(info.value, path="Contacts.xml")
    assert target.read_bytes() == b"old"
    write_contacts(target, [Contact(number="1")], microsip_running=True, force=True)
    assert read_contacts(target).contacts == [Contact(number="1")]
    write_contacts(target, [Contact(number="2")], microsip_running=None)
    assert read_contacts(target).contacts == [Contact(number="2")]


def test_write_keeps_backups_and_never_leaves_a_half_file(tmp_path: Path) -> None:
    target = tmp_path / "Contacts.xml"
    for n in range(4):
        backup = write_contacts(target, [Contact(number=str(n))], backups=2)
    assert backup is not None
    assert len(list_backups(target)) == 2
    assert read_contacts(backup).contacts == [Contact(number="2")]
    with pytest.raises(UnsafeInputError):
        write_contacts(target, [Contact(number="\x00")])
    assert read_contacts(target).contacts == [Contact(number="3")]
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == ["Contacts.xml"]


def test_contacts_file_save(tmp_path: Path, data_dir: Path) -> None:
    source = tmp_path / "Contacts.xml"
    source.write_bytes((data_dir / "contacts-3.22.xml").read_bytes())
    cf = read_contacts(source)
    cf.contacts.append(Contact(name="New", number="300"))
    cf.save(backups=1)
    assert read_contacts(source).contacts[-1].number == "300"
    other = tmp_path / "copy.xml"
    cf.save(other, backups=0)
    assert cf.path == other
    with pytest.raises(BridgeError):
        ContactsFile([]).save()


# --- write -> read identity ----------------------------------------------------------------------

STORABLE = st.characters(exclude_categories=("Cs",), exclude_characters="".join(UNSTORABLE))
VALUES = st.text(st.one_of(st.sampled_from("&<>\"';#\t\n\r "), STORABLE), max_size=25)
# No "prefix:name": ElementTree is namespace-aware and refuses an undeclared prefix.
EXTRA_NAMES = st.sampled_from(["x-crm", "photo", "group", "ext_id", "Ω", "a.b-c"])
CONTACT = st.builds(
    Contact,
    **dict.fromkeys(TEXT_FIELDS, VALUES),
    presence=st.booleans(),
    starred=st.booleans(),
    directory=st.booleans(),
    extra=st.dictionaries(EXTRA_NAMES, VALUES, max_size=3),
)


def xml_attribute_normalised(value: str) -> str:
    """What any XML parser returns for a raw attribute value: line ends normalised, then each
    whitespace character replaced by a space (XML 1.0 §2.11, §3.3.3)."""
    value = value.replace("\r\n", "\n").replace("\r", "\n")
    return value.replace("\n", " ").replace("\t", " ")


@settings(max_examples=200)
@given(st.lists(CONTACT, max_size=6))
def test_write_read_identity(contacts: list[Contact]) -> None:
    data = serialize_contacts(contacts)
    cf = parse_contacts(data)
    assert cf.contacts == contacts
    assert all(p.code in (ProblemCode.NO_NUMBER, ProblemCode.DUPLICATE) for p in cf.problems)
    # The output is always well-formed XML: raw tab, LF and CR are legal in attribute values.
    # A standard parser differs from MicroSIP only in normalising that whitespace to spaces.
    root = ET.fromstring(data)
    assert root.tag == "contacts"
    assert len(root) == len(contacts)
    for element, contact in zip(root, contacts, strict=True):
        expected = contact.attributes()
        assert list(element.attrib) == list(expected)
        for name, value in expected.items():
            assert element.attrib[name] == xml_attribute_normalised(value)
            if not re.search("[\t\n\r]", value):
                assert element.attrib[name] == value


@given(st.lists(CONTACT, min_size=1, max_size=4), st.data())
def test_unstorable_values_are_always_refused(contacts: list[Contact], data: st.DataObject) -> None:
    index = data.draw(st.integers(0, len(contacts) - 1))
    field = data.draw(st.sampled_from(TEXT_FIELDS))
    bad = data.draw(st.sampled_from(UNSTORABLE))
    victim = contacts[index]
    value = getattr(victim, field)
    at = data.draw(st.integers(0, len(value)))
    contacts[index] = victim.replace(**{field: value[:at] + bad + value[at:]})
    with pytest.raises(UnsafeInputError) as info:
        serialize_contacts(contacts)
    assert f"contact {index + 1}" in str(info.value)
    assert repr(field) in str(info.value)
    clean, replaced = sanitize_contacts(contacts)
    assert any(r.index == index and r.attribute == field for r in replaced)
    assert parse_contacts(serialize_contacts(clean)).contacts == clean


# --- limits: what is written can be read back with the same limits -------------------------------


def test_a_file_over_the_read_limit_is_never_written(tmp_path: Path) -> None:
    contacts = [Contact(name=f"Caller {i}", number=str(1000 + i)) for i in range(10_000)]
    size = len(serialize_contacts(contacts))
    assert len(serialize_contacts(contacts, max_bytes=size)) == size
    with pytest.raises(UnsafeInputError, match=f"over {size - 1:,} bytes") as info:
        serialize_contacts(contacts, max_bytes=size - 1)
    assert_one_line_error(info.value)
    target = tmp_path / "Contacts.xml"
    write_contacts(target, contacts[:1])
    with pytest.raises(UnsafeInputError) as info:
        write_contacts(target, contacts, max_bytes=size - 1)
    assert_one_line_error(info.value, path="Contacts.xml")
    assert read_contacts(target).contacts == contacts[:1]  # untouched, and no temporary left
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == ["Contacts.xml"]
    write_contacts(target, contacts, max_bytes=size)
    assert read_contacts(target, max_bytes=size).contacts == contacts


def test_the_writer_and_the_reader_share_their_limits() -> None:
    def default(function: Callable[..., object], name: str) -> object:
        return inspect.signature(function).parameters[name].default

    assert default(write_contacts, "max_bytes") == default(read_contacts, "max_bytes")
    assert default(serialize_contacts, "max_bytes") == default(parse_contacts, "max_bytes")
    # Nothing deeper than a root and its contacts is ever written: any depth limit reads it.
    data = serialize_contacts([Contact(number="1", extra={"x": "y"})])
    assert parse_contacts(data, max_depth=2).contacts == [Contact(number="1", extra={"x": "y"})]
    with pytest.raises(UnsafeInputError):
        parse_contacts(data, max_depth=1)


@settings(max_examples=200)
@given(st.data())
def test_reading_as_it_scans_equals_reading_the_tree(data: st.DataObject) -> None:
    raw = bytearray(VALID + b"<!-- x --><contact number='3'/>")
    raw[VALID.index(b"<contact") : VALID.index(b"<contact")] = "<é a='1'/>\r\n".encode()
    for _ in range(data.draw(st.integers(0, 3))):
        at = data.draw(st.integers(0, len(raw)))
        raw[at:at] = data.draw(st.sampled_from([b"<", b">", b'"', b"/", b"\r\n", b"<x/>", b"t"]))
    outcomes = []
    for read in (parse_contacts, lambda d: contacts_from_document(parse_markup(d))):
        try:
            cf = read(bytes(raw))
        except BridgeError as exc:
            outcomes.append((type(exc), str(exc)))
        else:
            outcomes.append((cf.contacts, cf.problems, cf.lines))
    assert outcomes[0] == outcomes[1]


def test_millions_of_small_oddities_keep_a_thousand_problems_of_each_kind() -> None:
    # Each "<a/>" was a problem kept: 64 MiB of them took 4 GB. Now at most 1000 of each kind.
    data = b"<contacts>\n" + b"<a/>\n" * 20_000 + b"</contacts>"
    tracemalloc.start()
    try:
        cf = parse_contacts(data)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 3 * len(data) + 500_000  # 20,000 problems are 5 MB
    assert codes(cf) == [ProblemCode.IGNORED_ELEMENT] * (MAX_PROBLEMS + 1)
    assert cf.problems[-1] == Problem(
        2 + MAX_PROBLEMS,
        ProblemCode.IGNORED_ELEMENT,
        "19,000 more like those above, from this line on, not listed",
    )
    contacts = b'<contact number="1" x="" x=""/>\n' * 1500
    cf = parse_contacts(b"<contacts>\n" + contacts + b"</contacts>")
    for code, left_out, line in (
        (ProblemCode.DUPLICATE_ATTRIBUTE, 500, 2 + MAX_PROBLEMS),
        (ProblemCode.DUPLICATE, 499, 3 + MAX_PROBLEMS),
    ):
        kept = [p for p in cf.problems if p.code is code]
        assert len(kept) == MAX_PROBLEMS + 1
        assert (kept[-1].line, kept[-1].message) == (
            line,
            f"{left_out:,} more like those above, from this line on, not listed",
        )
    assert [p.line for p in cf.problems] == sorted(p.line or 0 for p in cf.problems)
