"""The usersDirectory shapes (facts §4.6): what we serve, and every response shape MicroSIP reads,
read the way it reads them."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from microsip_bridge.errors import BridgeError, FileFormatError, UnsafeInputError
from microsip_bridge.microsip.contact import TEXT_FIELDS, Contact
from microsip_bridge.microsip.contacts_xml import prepare_contact, read_contacts
from microsip_bridge.microsip.directory import (
    PRESENCE_STATUSES,
    DirectoryShape,
    PresenceUpdate,
    parse_directory,
    read_directory_response,
    to_directory_json,
    to_directory_xml,
)

UNSTORABLE = [chr(c) for c in range(32) if chr(c) not in "\t\n\r"] + ["\ufffe", "\uffff", "\ud800"]
STORABLE = st.characters(exclude_categories=("Cs",), exclude_characters="".join(UNSTORABLE))
VALUES = st.text(st.one_of(st.sampled_from("&<>\"';#\t\n\r \\/"), STORABLE), max_size=20)
CONTACT = st.builds(
    Contact,
    **dict.fromkeys(TEXT_FIELDS, VALUES),
    presence=st.booleans(),
    starred=st.booleans(),
    directory=st.booleans(),
)


def as_microsip_keeps_it(contact: Contact) -> Contact | None:
    """What MicroSIP stores from a directory entry: ContactPrepare'd, flagged directory."""
    return prepare_contact(contact.replace(directory=True, extra={}))


# --- building ------------------------------------------------------------------------------------


def test_json_object_carries_every_field_with_the_types_microsip_reads() -> None:
    contacts = [
        Contact(name="Reception", number="100", presence=True),
        Contact(name="Zoë & <Co>", number="", phone="200", starred=True, info='"x"'),
    ]
    text = to_directory_json(contacts, refresh=3600, silent=True)
    body = json.loads(text)
    assert list(body) == ["refresh", "silent", "items"]
    assert body["refresh"] == 3600
    assert body["silent"] == 1
    first, second = body["items"]
    # All 14 text fields as strings (MicroSIP's isString), flags as integers (isInt), no directory.
    assert list(first) == [*TEXT_FIELDS, "presence", "starred"]
    assert all(isinstance(first[name], str) for name in TEXT_FIELDS)
    assert first["presence"] == 1
    assert type(first["presence"]) is int
    assert first["starred"] == 0
    assert second["name"] == "Zoë & <Co>"
    assert second["number"] == ""
    assert second["phone"] == "200"
    assert "Zoë" in text  # UTF-8, not \u escapes
    assert "directory" not in text


def test_json_without_options_is_just_items() -> None:
    assert json.loads(to_directory_json([])) == {"items": []}
    text = to_directory_json([], silent=False)
    assert json.loads(text) == {"silent": 0, "items": []}


def test_json_presence_list() -> None:
    text = to_directory_json(
        [Contact(name="A", number="1")],
        presence=[PresenceUpdate("1", "busy", "on a call"), PresenceUpdate("2", "online")],
    )
    body = json.loads(text)
    assert list(body) == ["items", "presence"]
    assert body["presence"] == [
        {"number": "1", "status": "busy", "info": "on a call"},
        {"number": "2", "status": "online"},
    ]
    response = read_directory_response(text.encode())
    assert response.presence == [
        PresenceUpdate("1", "busy", "on a call"),
        PresenceUpdate("2", "online"),
    ]
    with pytest.raises(BridgeError, match="'sleeping'"):
        to_directory_json([], presence=[PresenceUpdate("1", "sleeping")])
    assert set(PRESENCE_STATUSES) == {"offline", "online", "away", "busy", "ring", "phone"}


@pytest.mark.parametrize("refresh", [-1, True, 1.5, "60", 2**31])
def test_bad_refresh_is_refused(refresh: object) -> None:
    with pytest.raises(BridgeError, match="refresh"):
        to_directory_json([], refresh=refresh)  # type: ignore[arg-type]
    with pytest.raises(BridgeError, match="refresh"):
        to_directory_xml([], refresh=refresh)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", ["\x00", "\x07", "\ufffe", "\ud800"])
def test_values_contacts_xml_cannot_store_are_refused(bad: str) -> None:
    # MicroSIP saves every directory contact into Contacts.xml (facts §4.1).
    contacts = [Contact(name="A", number="1"), Contact(name="B", number="2", email=bad)]
    for build in (to_directory_json, to_directory_xml):
        with pytest.raises(UnsafeInputError) as info:
            build(contacts)
        assert "contact 2" in str(info.value)
        assert "'email'" in str(info.value)


def test_xml_exact_bytes() -> None:
    data = to_directory_xml(
        [
            Contact(
                name="O'Neil & Co", number="100", presence=True, directory=True, extra={"x": "y"}
            )
        ],
        refresh=600,
        silent=False,
    )
    assert data == (
        b'<?xml version="1.0"?>\r\n'
        b'<contacts refresh="600" silent="0">\r\n'
        b'<contact name="O&apos;Neil &amp; Co" number="100" firstname="" lastname="" phone="" '
        b'mobile="" email="" address="" city="" state="" zip="" comment="" id="" info="" '
        b'presence="1" starred="0"/>\r\n'
        b"</contacts>\r\n"
    )
    assert to_directory_xml([]) == b'<?xml version="1.0"?>\r\n<contacts/>\r\n'
    assert (
        to_directory_xml([], refresh=60) == b'<?xml version="1.0"?>\r\n<contacts refresh="60"/>\r\n'
    )


@settings(max_examples=150)
@given(st.lists(CONTACT, max_size=6), st.integers(0, 86400), st.booleans())
def test_what_we_serve_reads_back_as_microsip_keeps_it(
    contacts: list[Contact], refresh: int, silent: bool
) -> None:
    expected = [c for c in map(as_microsip_keeps_it, contacts) if c is not None]
    for data, shape in (
        (to_directory_json(contacts, refresh, silent).encode(), DirectoryShape.JSON_OBJECT),
        (to_directory_xml(contacts, refresh, silent), DirectoryShape.XML_CONTACTS),
    ):
        response = read_directory_response(data)
        assert response.shape is shape
        assert response.contacts == expected
        assert response.refresh == refresh
        assert response.silent == int(silent)
        assert response.dropped == len(contacts) - len(expected)
        # Every field is sent, so MicroSIP updates every field of a matching contact.
        assert all(f == {*TEXT_FIELDS, "presence", "starred"} for f in response.fields)
        assert all(c.directory for c in response.contacts)


@pytest.mark.parametrize(
    ("sample", "count", "third"),
    [
        ("data/contacts/pbx-export.Contacts.xml", 8, "Manutenção"),
        ("corpus/contacts/real-cassck-monitcall.Contacts.xml", 148, "Recepção"),
    ],
    indirect=["sample"],
)
def test_a_real_phone_book_served_as_json(sample: Path, count: int, third: str) -> None:
    book = read_contacts(sample).contacts
    contacts = parse_directory(to_directory_json(book, refresh=300).encode(), "application/json")
    assert len(contacts) == count
    assert contacts[2].name == third
    assert all(c.directory for c in contacts)


# --- reading JSON --------------------------------------------------------------------------------


def test_json_bare_array_and_the_number_fallbacks() -> None:
    data = json.dumps(
        [
            {"name": "A", "number": "1", "phone": "11"},
            {"name": "B", "phone": "2"},
            {"name": "C", "telephone": "3"},
            {"firstname": "Dee", "lastname": "Lee", "mobile": "4"},
            {"firstname": "Same", "lastname": "Same", "number": "5"},
            {"name": "", "number": "6"},
        ]
    ).encode()
    response = read_directory_response(data)
    assert response.shape is DirectoryShape.JSON_ARRAY
    got = [(c.name, c.number, c.phone, c.mobile) for c in response.contacts]
    assert got == [
        ("A", "1", "11", ""),
        ("B", "2", "2", ""),  # phone doubles as the number, and stays the phone
        ("C", "3", "", ""),
        ("Dee Lee", "4", "", "4"),  # ContactPrepare: number from mobile, name from first + last
        ("Same", "5", "", ""),  # equal first and last names are not repeated
        ("6", "6", "", ""),
    ]
    assert response.fields[2] == {"name", "number"}
    assert response.refresh is None


def test_json_types_are_checked_like_jsoncpp() -> None:
    data = json.dumps(
        {
            "refresh": "60",
            "silent": True,
            "items": [
                {"name": "int number", "number": 100},
                {"name": "bool flags", "number": "1", "presence": True, "starred": False},
                {"name": "real flags", "number": "2", "presence": 1.0, "starred": 7},
                {"name": 5, "number": "3", "info": None},
            ],
        }
    ).encode()
    response = read_directory_response(data)
    assert response.refresh is None
    assert response.silent is None
    assert response.dropped == 1  # "number": 100 is not a string: no number at all
    bools, reals, odd = response.contacts
    assert not bools.presence
    assert "presence" not in response.fields[0]
    assert reals.presence
    assert reals.starred
    assert (odd.name, odd.info) == ("3", "")


def test_json_presence_entries_are_read_like_jsoncpp() -> None:
    data = (
        b'{"items": [], "presence": [{"number": "1", "status": "ring", "info": 5}, null, '
        b'{"number": 2, "status": "busy"}, {"number": "3"}, "oops", '
        b'{"number": "4", "status": "x"}]}'
    )
    response = read_directory_response(data)
    assert response.presence == [PresenceUpdate("1", "ring", "")]
    assert "presence entry 4" in response.notes[0]


def test_json_stops_at_an_item_that_is_not_an_object() -> None:
    data = (
        b'{"items": [{"number": "1"}, null, 7, {"number": "2"}], '
        b'"presence": [{"number": "1", "status": "busy"}]}'
    )
    response = read_directory_response(data)
    assert [c.number for c in response.contacts] == ["1"]
    assert response.dropped == 1  # the null item: no number
    assert response.presence == []  # jsoncpp threw before MicroSIP reached it
    assert "item 2" in response.notes[0]


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b'{"refresh": 60}', '"items"'),
        (b'{"items": {"number": "1"}}', '"items"'),
        (b'"just a string"', "neither an array nor an object"),
        (b"42", "neither an array nor an object"),
        (b'{"items": [', "invalid JSON"),
        (b"[1, 2,]", "invalid JSON"),
    ],
)
def test_json_microsip_does_not_recognise(data: bytes, words: str) -> None:
    with pytest.raises(FileFormatError) as info:
        read_directory_response(data)
    assert words in str(info.value)
    assert "\n" not in str(info.value)


# --- reading XML ---------------------------------------------------------------------------------


def test_xml_contacts_root() -> None:
    data = (
        b"<?xml version='1.0' encoding='UTF-8'?>\n"
        b'<contacts refresh=" 120 seconds" silent="1">\n'
        b'  <contact name="A &amp; B" number="1" presence="1" starred="1" directory="0" x="y"/>\n'
        b"  <contact number='2' info='&#10;'/>\n"
        b'  <contact name="no number"/>\n'
        b'  <other number="3"/>\n'
        b"</contacts>"
    )
    response = read_directory_response(data, "text/xml; charset=utf-8")
    assert response.shape is DirectoryShape.XML_CONTACTS
    assert response.refresh == 120  # _wtoi
    assert response.silent == 1
    a, two = response.contacts
    assert (a.name, a.presence, a.starred, a.directory, a.extra) == ("A & B", True, True, True, {})
    assert (two.name, two.info) == ("2", "&#10;")  # CMarkup leaves &#10; alone
    assert response.fields[1] == {"number", "info"}
    assert response.dropped == 1


def test_xml_yealink_menus_and_units() -> None:
    data = b"""<?xml version="1.0" encoding="UTF-8"?>
<YealinkIPPhoneBook><Title>Phonebook</Title>
 <Menu Name="Staff">
  <Unit Name="Weber Dennis" Phone1="015112727388" Phone2="030 1" Phone3="0171 2" default_photo=""/>
  <Unit Name="Purmann &amp; Co" Phone1="070728919003"/>
 </Menu>
 <Menu Name="Empty"/>
 <Menu><Unit Phone2="99"/><Unit Name="No phone"/></Menu>
 <Unit Name="outside a menu" Phone1="5"/>
</YealinkIPPhoneBook>"""
    response = read_directory_response(data)
    assert response.shape is DirectoryShape.XML_YEALINK
    got = [(c.name, c.number, c.phone, c.mobile) for c in response.contacts]
    assert got == [
        ("Weber Dennis", "015112727388", "030 1", "0171 2"),
        ("Purmann & Co", "070728919003", "", ""),
        ("99", "99", "99", ""),
    ]
    assert response.dropped == 1
    assert all(c.directory for c in response.contacts)


def test_xml_yealink_with_directory_entries_finds_nothing() -> None:
    # MicroSIP reads a YealinkIPPhoneBook root only as Menu/Unit.
    data = (
        b"<YealinkIPPhoneBook><DirectoryEntry><Name>A</Name><Telephone>1</Telephone>"
        b"</DirectoryEntry></YealinkIPPhoneBook>"
    )
    response = read_directory_response(data)
    assert response.contacts == []
    assert "Menu/Unit" in response.notes[0]


def test_xml_generic_entries() -> None:
    data = b"""<IPPhoneDirectory>
 <DirectoryEntry>
  <Name>Alice &amp; Co</Name><Telephone>100</Telephone><Telephone>101</Telephone>
  <Telephone>102</Telephone><Telephone>103</Telephone><info>Ready</info><presence>1</presence>
  <starred>1</starred>
 </DirectoryEntry>
 <DirectoryEntry><name><![CDATA[<Bob>]]></name><Telephone> 200 </Telephone>
  <presence> 1</presence></DirectoryEntry>
 <DirectoryEntry><Name>No phone</Name></DirectoryEntry>
 <DirectoryEntry><Telephone>300</Telephone></DirectoryEntry>
</IPPhoneDirectory>"""
    response = read_directory_response(data)
    assert response.shape is DirectoryShape.XML_ENTRIES
    alice, bob, three = response.contacts
    assert (alice.name, alice.number, alice.phone, alice.mobile) == (
        "Alice & Co",
        "100",
        "101",
        "102",
    )
    assert (alice.info, alice.presence, alice.starred) == ("Ready", True, True)
    assert alice.directory
    # GetChildData is the raw text: no trimming, and presence is exactly "1" or not.
    assert (bob.name, bob.number, bob.presence) == ("<Bob>", " 200 ", False)
    assert (three.name, three.number) == ("300", "300")
    assert response.dropped == 1
    assert response.fields[0] == {
        "name",
        "number",
        "phone",
        "mobile",
        "info",
        "presence",
        "starred",
    }


def test_xml_entry_elements_and_extension() -> None:
    data = (
        b"<root><entry><extension>1</extension><name>One</name></entry>"
        b"<entry><name>Two</name><extension>2</extension></entry></root>"
    )
    assert [(c.name, c.number) for c in parse_directory(data)] == [("One", "1"), ("Two", "2")]


def test_xml_cmarkup_cursor_quirks() -> None:
    # FindChildElem("entry") || FindChildElem("DirectoryEntry") looks for an "entry" first, and
    # moves past whatever it finds: in a mixed list a DirectoryEntry before an entry is never
    # read. Within an entry, an "extension" after a "Telephone" is found first, and the search
    # for the second number starts after it, so that Telephone is lost too.
    data = (
        b"<root><DirectoryEntry><Telephone>1</Telephone></DirectoryEntry>"
        b"<entry><Telephone>2</Telephone><extension>3</extension></entry>"
        b"<DirectoryEntry><Telephone>4</Telephone></DirectoryEntry></root>"
    )
    assert [(c.number, c.phone) for c in parse_directory(data)] == [("3", ""), ("4", "")]


def test_many_entries_are_read_in_linear_time() -> None:
    # A cursor that rescanned the children for each lookup would make this quadratic.
    entries = b"".join(
        b"<DirectoryEntry><Name>n%d</Name><Telephone>%d</Telephone></DirectoryEntry>" % (i, i)
        for i in range(20_000)
    )
    contacts = parse_directory(b"<d>" + entries + b"</d>")
    assert len(contacts) == 20_000
    assert contacts[-1].number == "19999"


def test_any_other_xml_is_a_recognised_empty_response() -> None:
    # MicroSIP accepts it (and deletes its directory contacts), so it is no error.
    response = read_directory_response(b"<html><body>Not found</body></html>")
    assert response.shape is DirectoryShape.XML_ENTRIES
    assert response.contacts == []


# --- what MicroSIP does not read, and hostile input ----------------------------------------------


@pytest.mark.parametrize("content_type", ["text/csv", "text/csv; charset=utf-8"])
def test_csv_points_to_the_csv_importer(content_type: str) -> None:
    with pytest.raises(FileFormatError, match="CSV importer"):
        parse_directory(b"Name,Number\r\nA,1\r\n", content_type)


def test_csv_content_type_is_matched_like_microsip() -> None:
    # MicroSIP looks for "Content-Type: text/csv" case-sensitively: TEXT/CSV is not CSV to it.
    with pytest.raises(FileFormatError, match="neither JSON nor XML"):
        parse_directory(b"Name,Number\r\nA,1\r\n", "TEXT/CSV")


@pytest.mark.parametrize(
    "data",
    [
        (
            b'<!DOCTYPE x [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]>'
            b'<contacts><contact name="&b;" number="1"/></contacts>'
        ),
        b'<!DOCTYPE x SYSTEM "http://example.invalid/x.dtd"><contacts/>',
        b"<a>" * 5000 + b"</a>" * 5000,
        b"[" * 100_000 + b"]" * 100_000,
    ],
)
def test_hostile_responses_are_refused(data: bytes) -> None:
    with pytest.raises(UnsafeInputError) as info:
        read_directory_response(data)
    assert "\n" not in str(info.value)


def test_too_big_and_not_text() -> None:
    with pytest.raises(UnsafeInputError):
        parse_directory(b"[]" + b" " * 100, max_bytes=50)
    with pytest.raises(FileFormatError, match="line 2"):
        parse_directory(b'[\n{"name": "\xff"}]')
    with pytest.raises(FileFormatError, match="neither JSON nor XML"):
        parse_directory(b"hello")
    with pytest.raises(FileFormatError, match="neither JSON nor XML"):
        parse_directory(b"<contacts><contact number='1'>")


def test_a_bom_is_accepted() -> None:
    assert [c.number for c in parse_directory(b'\xef\xbb\xbf[{"number": "1"}]')] == ["1"]
    assert [
        c.number for c in parse_directory(b'\xef\xbb\xbf<contacts><contact number="2"/></contacts>')
    ] == ["2"]


@settings(max_examples=300)
@given(st.binary(max_size=300))
def test_random_bytes_raise_only_bridge_errors(data: bytes) -> None:
    error = None
    try:
        contacts = parse_directory(data)
    except BridgeError as exc:
        error = exc
    else:
        assert all(c.directory for c in contacts)
    assert error is None or not re.search("\n", str(error))


def test_a_response_over_the_read_limit_is_never_built() -> None:
    book = [Contact(name=f"Zoë {i}", number=str(1000 + i)) for i in range(10_000)]
    for build in (to_directory_json, to_directory_xml):
        built = build(book, refresh=60)
        data = built.encode() if isinstance(built, str) else built
        assert build(book, refresh=60, max_bytes=len(data)) == built
        with pytest.raises(UnsafeInputError, match=f"over {len(data) - 1:,} bytes"):
            build(book, refresh=60, max_bytes=len(data) - 1)
        assert len(read_directory_response(data, max_bytes=len(data)).contacts) == len(book)
        with pytest.raises(UnsafeInputError):
            read_directory_response(data, max_bytes=len(data) - 1)
