"""MicroSIP's contacts CSV: exported as MicroSIP writes it; real Google/Outlook/... exports read."""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from microsip_bridge.contacts import importing
from microsip_bridge.contacts.csvfile import check_delimiter, import_csv, sniff_delimiter
from microsip_bridge.contacts.importing import ImportResult
from microsip_bridge.contacts.vcard import import_vcard
from microsip_bridge.errors import BridgeError, FileFormatError, UnsafeInputError
from microsip_bridge.microsip.contact import Contact
from microsip_bridge.microsip.contacts_csv import HEADER, export_csv
from microsip_bridge.microsip.contacts_xml import prepare_contact

# An independent reading of "a phone number column": any header naming a phone, fax, pager...
# but not Google's "Phone N - Type" label columns.
_PHONE_COLUMN = re.compile(
    r"phone|fax|pager|mobile|callback|isdn|telex|tty|\bnumber\b", re.IGNORECASE
)


def phone_values(data: bytes) -> Iterator[tuple[int, str, str]]:
    """(row, column, value) of every phone number in a CSV, read without our importer."""
    text = data.decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text, newline="")))
    header = rows[0]
    for row, cells in enumerate(rows[1:], start=2):
        for index, name in enumerate(header):
            if not _PHONE_COLUMN.search(name) or name.endswith("Type") or index >= len(cells):
                continue
            for value in cells[index].split(":::"):
                if value.strip():
                    yield row, name, value.strip()


def accounted_for(result: ImportResult, row: int, column: str, value: str) -> bool:
    """The rule of corpus/README.md: the number is in a contact, or the report names it."""
    if any(value in contact.numbers() for contact in result.contacts):
        return True
    return any(
        note.where == f"row {row}, column {column!r}" and repr(value) in note.message
        for note in result.report
    )


def by_name(result: ImportResult) -> dict[str, Contact]:
    return {contact.name: contact for contact in result.contacts}


# --- real-world exports: ours (tests/data/csv) and the corpus's -----------------------------


@pytest.mark.samples("csv/*.csv")
def test_every_phone_number_in_the_samples_ends_up_in_a_contact_or_the_report(
    sample: Path,
) -> None:
    data = sample.read_bytes()
    values = list(phone_values(data))
    if sample.name.endswith("outlook-emails-only.csv"):
        assert values == []  # the file the importer must refuse has, indeed, no number at all
        return
    assert values, "the oracle found no numbers: it is broken"
    result = import_csv(data)
    missing = [v for v in values if not accounted_for(result, *v)]
    assert missing == []


def test_google_outlook_csv_export_of_ours(data_dir: Path) -> None:
    result = import_csv((data_dir / "csv" / "google-outlook.csv").read_bytes())
    contacts = by_name(result)
    assert list(contacts) == ["Ingrid Berg", "Lars Berg", "Sigrid Dahl", "Åse Lund"]
    ingrid = contacts["Ingrid Berg"]
    # "Mobile Phone" is MicroSIP's mobile alias; ContactPrepare copies it into number (§4.2).
    assert (ingrid.number, ingrid.phone, ingrid.mobile) == ("40000101", "", "40000101")
    assert ingrid.starred  # Google's "starred" category
    assert not contacts["Lars Berg"].starred
    sigrid = contacts["Sigrid Dahl"]
    # A quoted multi-line field: MicroSIP's reader could not take it (facts §4.5); we do.
    assert sigrid.address == "Storgata 1\nTromsø, 9008\nNorway"
    assert (sigrid.city, sigrid.zip, sigrid.email) == ("Tromsø", "9008", "sigrid@example.invalid")
    assert contacts["Åse Lund"].address.startswith("Fjordveien 2B\n")
    # Row 4 has only an e-mail address: skipped, and said so.
    assert result.report == []
    assert [str(s) for s in result.skipped] == [
        "row 4: 'info@example.invalid' has no phone number; skipped"
    ]


def test_google_outlook_csv_export(corpus: Path) -> None:
    result = import_csv((corpus / "csv" / "real-index-google-outlookcsv.csv").read_bytes())
    contacts = by_name(result)
    assert list(contacts) == ["John Doe", "Jane Doe", "Norway Doe", "John Cruickshank"]
    john = contacts["John Doe"]
    # "Mobile Phone" is MicroSIP's mobile alias; ContactPrepare copies it into number (§4.2).
    assert (john.number, john.phone, john.mobile) == ("91551000", "", "91551000")
    assert john.starred  # Google's "starred" category
    assert not contacts["Norway Doe"].starred
    norway = contacts["Norway Doe"]
    # A quoted multi-line field: MicroSIP's reader could not take it (facts §4.5); we do.
    assert norway.address == "Industrigata 50B\nOslo, 0357\nNorway"
    assert (norway.city, norway.zip, norway.email) == ("Oslo", "0357", "mail@hotmail.com")
    assert contacts["John Cruickshank"].address.startswith("Vardåslia 10\n")
    # Row 4 has only an e-mail address: skipped, and said so.
    assert result.report == []
    assert [str(s) for s in result.skipped] == [
        "row 4: 'mail@mail.com' has no phone number; skipped"
    ]


def test_outlook_live_export_of_ours_builds_names_like_microsip(data_dir: Path) -> None:
    result = import_csv((data_dir / "csv" / "outlook-live.csv").read_bytes())
    nilsen, kari = result.contacts
    # ContactPrepare: "first last" trimmed, so a lone first name has no trailing space (§4.2).
    assert (nilsen.name, nilsen.firstname, nilsen.lastname) == ("Nilsen", "Nilsen", "")
    assert (nilsen.number, nilsen.mobile) == ("+47 400 11 000", "+47 400 11 000")
    assert (kari.name, kari.number) == ("Kari Holm", "400 22 000")
    assert result.report == []


def test_outlook_live_export_builds_names_like_microsip(corpus: Path) -> None:
    result = import_csv((corpus / "csv" / "real-index-outlook-live.csv").read_bytes())
    larsen, svein = result.contacts
    # ContactPrepare: "first last" trimmed, so a lone first name has no trailing space (§4.2).
    assert (larsen.name, larsen.firstname, larsen.lastname) == ("Larsen", "Larsen", "")
    assert (larsen.number, larsen.mobile) == ("+47 466 88 000", "+47 466 88 000")
    assert (svein.name, svein.number) == ("Svein Heimdal", "901 06 000")
    assert result.report == []


def test_google_csv_of_ours_with_seven_phones(data_dir: Path) -> None:
    result = import_csv((data_dir / "csv" / "google.csv").read_bytes())
    amelia, bao = result.contacts
    assert amelia.name == "Dr. Amelia Rose Hartley Jr."
    assert (amelia.firstname, amelia.lastname) == ("Amelia", "Hartley")
    # By Google's type column, as the vCard importer maps TEL types: Mobile -> mobile, Home ->
    # phone, Work/Main/Other -> number (the first of them).
    assert (amelia.mobile, amelia.phone, amelia.number) == (
        "+44 7700 900101",
        "+44 20 7946 0103",
        "+44 20 7946 0102",
    )
    assert amelia.comment == 'Call "after" lunch'  # doubled quotes
    assert amelia.email == "amelia@example.invalid"  # the first ":::"-free e-mail column
    # Address 1's parts, not its formatted multi-line text.
    assert (amelia.address, amelia.city, amelia.state, amelia.zip) == (
        "1 Example Road",
        "London",
        "Greater London",
        "SW1A 1AA",
    )
    assert not amelia.starred  # "* myContacts ::: Clients" is no star
    # Two values in one cell (" ::: "): the second fills the free number field; so for e-mail,
    # only the first is kept. "* starred" in Group Membership is a star.
    assert (bao.mobile, bao.number, bao.email) == (
        "+84 90 000 0301",
        "+84 90 000 0302",
        "bao@example.invalid",
    )
    assert bao.starred
    # The rest is named with row, column and Google's type, in column order.
    assert [(n.where, n.message) for n in result.report] == [
        *(
            (
                f"row 2, column 'Phone {i} - Value'",
                (
                    f"number {value!r} ({kind}) not imported: "
                    "the number, phone and mobile fields are all in use"
                ),
            )
            for i, value, kind in [
                (4, "+44 20 7946 0104", "Work Fax"),
                (5, "+44 20 7946 0105", "Pager"),
                (6, "+44 20 7946 0106", "Other"),
                (7, "+44 20 7946 0107", "Main"),
            ]
        ),
    ]
    assert [str(s) for s in result.skipped] == ["row 4: 'Newsletter' has no phone number; skipped"]


def test_google_csv_with_seven_phones(corpus: Path) -> None:
    result = import_csv((corpus / "csv" / "real-roundcube-google.csv").read_bytes())
    [contact] = result.contacts
    assert contact.name == "Prefix Firstname Middle Lastname Suffix"
    assert (contact.firstname, contact.lastname) == ("Firstname", "Lastname")
    # By Google's "Phone N - Type", as the vCard importer maps TEL types: Main -> number,
    # Home -> phone, Mobile -> mobile. MicroSIP's own aliases (Phone 1 -> mobile, Phone 2 ->
    # phone) put this contact's pager into mobile.
    assert (contact.number, contact.phone, contact.mobile) == ("mainphone", "homephone", "mobile")
    assert contact.comment == 'note"note'  # doubled quotes
    assert contact.email == "home@aaa.pl"
    assert (contact.address, contact.city, contact.state, contact.zip) == (
        "home_street",
        "home_city",
        "home_state",
        "home_zip",
    )
    assert not contact.starred  # "* My Contacts ::: Test" is no star
    # The rest is named with row, column and Google's type, in column order.
    assert [(n.where, n.message) for n in result.report] == [
        (
            f"row 2, column 'Phone {i} - Value'",
            (
                f"number {value!r} ({kind}) not imported: "
                "the number, phone and mobile fields are all in use"
            ),
        )
        for i, value, kind in [
            (1, "pager", "Pager"),
            (4, "homefax", "Home Fax"),
            (6, "workphone", "Work"),
            (7, "workfax", "Work Fax"),
        ]
    ]


@pytest.mark.parametrize(
    "sample",
    ["data/csv/outlook-emails-only.csv", "corpus/csv/real-roundcube-outlook-emails-only.csv"],
    indirect=True,
)
def test_outlook_file_without_a_number_column_is_refused(sample: Path) -> None:
    data = sample.read_bytes()
    with pytest.raises(FileFormatError, match="no phone number column") as info:
        import_csv(data)
    assert info.value.where == "header (row 1)"


def test_thunderbird_export_of_ours(data_dir: Path) -> None:
    result = import_csv((data_dir / "csv" / "thunderbird.csv").read_bytes())
    [contact] = result.contacts
    assert contact.name == "Marta K."  # our "Display Name" alias
    assert (contact.firstname, contact.lastname) == ("Marta", "Kowalczyk")
    # Work Phone (no MicroSIP alias) takes the free number field; fax and pager find no room.
    assert (contact.number, contact.phone, contact.mobile) == (
        "+48 22 000 01 01",
        "+48 22 000 01 02",
        "+48 600 000 105",
    )
    assert contact.email == "marta@example.invalid"  # "Primary Email"
    assert (contact.address, contact.city, contact.state, contact.zip) == (
        "ul. Przykładowa 5",
        "Kraków",
        "małopolskie",
        "30-001",
    )
    assert [n.where for n in result.report] == [
        "row 2, column 'Fax Number'",
        "row 2, column 'Pager Number'",
    ]
    # The header ends with a comma: an empty column name is simply ignored.


def test_thunderbird_export(corpus: Path) -> None:
    result = import_csv((corpus / "csv" / "real-roundcube-thunderbird.csv").read_bytes())
    [contact] = result.contacts
    assert contact.name == "Displayname"  # our "Display Name" alias
    assert (contact.firstname, contact.lastname) == ("Firstname", "Lastname")
    # Work Phone (no MicroSIP alias) takes the free number field; fax and pager find no room.
    assert (contact.number, contact.phone, contact.mobile) == ("phone work", "phone home", "mobile")
    assert contact.email == "test@domain.tld"  # "Primary Email"
    assert (contact.address, contact.city, contact.state, contact.zip) == (
        "Priv address",
        "City",
        "region",
        "xx-xxx",
    )
    assert [n.where for n in result.report] == [
        "row 2, column 'Fax Number'",
        "row 2, column 'Pager Number'",
    ]
    # The header ends with a comma: an empty column name is simply ignored.


@pytest.mark.parametrize(
    "sample", ["data/csv/outlook-live.csv", "corpus/csv/real-index-outlook-live.csv"], indirect=True
)
def test_import_reports_which_fields_the_file_carries(sample: Path) -> None:
    result = import_csv(sample.read_bytes())
    # No Name, Id, Info or flag columns: a merge must leave those alone (facts §4.5).
    assert "name" not in result.fields
    assert "presence" not in result.fields
    assert {"firstname", "lastname", "mobile", "number", "phone"} <= result.fields


def test_microsips_own_export_reads_back_every_field(data_dir: Path) -> None:
    # What MicroSIP 3.22's Export -> CSV writes (facts §4.5): BOM, "\n", its 17 columns.
    data = (data_dir / "csv" / "microsip-3.22.csv").read_bytes()
    assert data.startswith(codecs.BOM_UTF8 + ",".join(HEADER).encode() + b"\n")
    result = import_csv(data)
    reception, jurgen, eleni = result.contacts
    assert result.report == []
    assert len(result.fields) == len(HEADER)  # every column is MicroSIP's
    assert (reception.name, reception.number, reception.presence) == ("Reception", "100", True)
    assert jurgen == Contact(
        name='Weiß, Jürgen "JW"',
        number="+49 30 1234567",
        firstname="Jürgen",
        lastname="Weiß",
        phone="+49 30 7654321",
        mobile="+49 170 7654321",
        email="jw@example.invalid",
        address="Hauptstraße 1",
        city="München",
        state="BY",
        zip="80331",
        comment="Prefers e-mail",
        id="crm-42",
        info="Ready",
        starred=True,
    )
    assert (eleni.name, eleni.directory) == ("Ελένη", True)
    # Our export of what was read is the same file, byte for byte.
    assert export_csv(result.contacts) == data


# --- our fixtures ---------------------------------------------------------------------------


def test_excel_unicode_text_is_utf16_tsv(data_dir: Path) -> None:
    data = (data_dir / "excel-unicode-text.txt").read_bytes()
    assert data.startswith(codecs.BOM_UTF16_LE)
    result = import_csv(data)
    contacts = by_name(result)
    assert list(contacts) == ["Åsa Öberg", 'Smith, "Bob"', "李雷"]
    asa = contacts["Åsa Öberg"]
    assert (asa.number, asa.mobile) == ("+46 8 123 45 67", "+46 70 123 45 67")
    assert asa.phone == "+46 8 123 45 68"  # the Business Fax fills the one free field
    assert asa.comment == "Rad ett\nRad två"
    assert contacts["李雷"].number == "13800138000"
    assert result.report == []
    assert [str(s) for s in result.skipped] == ["row 4: 'Ünal Yılmaz' has no phone number; skipped"]


def test_semicolon_separated_utf8_with_bom(data_dir: Path) -> None:
    result = import_csv((data_dir / "excel-semicolon-utf8-bom.csv").read_bytes())
    joerg, marie = result.contacts
    assert joerg.name == "Müller, Jörg"  # a comma is plain text in a ;-file
    assert (joerg.number, joerg.mobile, joerg.starred) == (
        "+49 30 1234567",
        "+49 170 1234567",
        True,
    )
    assert (joerg.address, joerg.city, joerg.zip) == ("Straße 1", "Berlin", "10115")
    assert joerg.comment == "Kunde, seit 2020"
    assert (marie.name, marie.comment, marie.starred) == ("Dupont; Marie", 'dit "bonjour"', False)
    assert [s.where for s in result.skipped] == ["row 4"]


def test_ansi_file_falls_back_to_cp1252_and_says_so(data_dir: Path) -> None:
    result = import_csv((data_dir / "ansi-cp1252.csv").read_bytes())
    jose, francoise = result.contacts
    assert jose.name == "José Müller"
    # Number empty: ContactPrepare takes the phone (facts §4.2), which also stays in phone.
    assert (francoise.name, francoise.number, francoise.phone) == ("Françoise", "200", "200")
    assert "Windows-1252" in result.report[0].message


def test_explicit_encoding_and_delimiter_override_sniffing() -> None:
    data = "Name;Number\nŁukasz;5\n".encode("cp1250")
    assert import_csv(data).contacts[0].name == "£ukasz"  # the cp1252 guess is wrong here
    result = import_csv(data, encoding="cp1250", delimiter=";")
    assert result.contacts[0].name == "Łukasz"
    assert result.report == []  # nothing guessed, nothing to report
    with pytest.raises(FileFormatError, match="delimiter"):
        import_csv(data, delimiter=";;")
    with pytest.raises(FileFormatError, match="cannot read text as 'no-such-codec'"):
        import_csv(data, encoding="no-such-codec")
    with pytest.raises(FileFormatError, match="not valid utf-8"):
        import_csv(data, encoding="utf-8")


def test_bomless_utf16_is_recognised() -> None:
    data = "Name,Number\r\nAnn,1\r\n".encode("utf-16-le")
    result = import_csv(data)
    assert result.contacts[0].name == "Ann"
    assert "UTF-16-LE" in result.report[0].message


# --- the rules ----------------------------------------------------------------------------------


def test_header_aliases_match_case_insensitively_and_microsip_aliases_win() -> None:
    data = b"DISPLAY NAME,name,PRIMARY PHONE,Home Street,HOME ADDRESS\nShown,Real,1,street,addr\n"
    [contact] = import_csv(data).contacts
    # "name" is MicroSIP's alias and wins over our "Display Name" though it comes later;
    # likewise Home Address (MicroSIP) over Home Street (ours).
    assert (contact.name, contact.number, contact.address) == ("Real", "1", "addr")


_GOOGLE_HEADER = (
    "Name,Phone 1 - Type,Phone 1 - Value,Phone 2 - Type,Phone 2 - Value,"
    "Phone 3 - Type,Phone 3 - Value\n"
)


def test_google_phones_go_by_their_type_not_their_column() -> None:
    # MicroSIP's aliases make Phone 1 the mobile whatever its type: here an office number.
    data = (_GOOGLE_HEADER + "Ann,Work,111,Mobile,222,Home,333\n").encode()
    [ann] = import_csv(data).contacts
    assert (ann.number, ann.phone, ann.mobile) == ("111", "333", "222")


def test_google_csv_and_google_vcard_give_the_same_contact() -> None:
    csv_data = (_GOOGLE_HEADER + "Ann,Home,1,Other,2,Work Mobile,3\n").encode()
    vcard = (
        b"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Ann\r\nTEL;TYPE=HOME:1\r\nTEL:2\r\n"
        b"TEL;TYPE=CELL,WORK:3\r\nEND:VCARD\r\n"
    )
    [from_csv] = import_csv(csv_data).contacts
    [from_vcard] = import_vcard(vcard).contacts
    assert from_csv.numbers() == from_vcard.numbers()
    assert (from_csv.number, from_csv.phone, from_csv.mobile) == ("2", "1", "3")


def test_google_primary_phone_comes_first_and_untyped_is_the_number() -> None:
    data = (_GOOGLE_HEADER + "Ann,Work,111,* Work,222,,333\n").encode()
    result = import_csv(data)
    [ann] = result.contacts
    # "* " marks Google's primary phone: it takes the number field before the first Work.
    assert (ann.number, ann.phone, ann.mobile) == ("222", "111", "333")
    assert result.report == []
    # Without a type cell the phone is any voice number; a lone Mobile is copied into the
    # number by ContactPrepare, as MicroSIP does.
    [bob] = import_csv((_GOOGLE_HEADER + "Bob,,5,Mobile,6,,\n").encode()).contacts
    assert (bob.number, bob.phone, bob.mobile) == ("5", "", "6")
    [cy] = import_csv((_GOOGLE_HEADER + "Cy,Mobile,7,,,,\n").encode()).contacts
    assert (cy.number, cy.phone, cy.mobile) == ("7", "", "7")


def test_delimiter_rule() -> None:
    assert check_delimiter(";") == ";"
    assert check_delimiter("\\t") == check_delimiter("tab") == "\t"
    for bad in ("", ";;", '"', "\n"):
        with pytest.raises(FileFormatError, match="one character"):
            check_delimiter(bad)


def test_google_multi_values_fill_free_slots_then_the_report() -> None:
    data = b"Name,Phone 1 - Value,E-mail 1 - Value\nAnn,111 ::: 222 ::: 333 ::: 444,a@x ::: b@x\n"
    result = import_csv(data)
    [ann] = result.contacts
    assert ann.mobile == "111"
    assert (ann.number, ann.phone) == ("222", "333")
    assert ann.email == "a@x"  # one e-mail field: the first address
    assert [(n.where, "'444'" in n.message) for n in result.report] == [
        ("row 2, column 'Phone 1 - Value'", True)
    ]


def test_fax_and_pager_only_take_what_voice_numbers_leave() -> None:
    data = b"Name,Pager,Business Phone,Car Phone,Other Phone\nAnn,9,1,2,3\n"
    result = import_csv(data)
    [ann] = result.contacts
    # The pager comes first in the file but last in line.
    assert (ann.number, ann.phone, ann.mobile) == ("1", "2", "3")
    assert [n.where for n in result.report] == ["row 2, column 'Pager'"]


def test_a_repeated_number_is_not_reported() -> None:
    data = b"Name,Number,Business Phone\nAnn,1,1\n"
    result = import_csv(data)
    assert result.contacts[0].numbers() == ["1"]
    assert result.report == []


def test_rows_without_numbers_and_blank_lines() -> None:
    data = b"Name,Number\n\nAnn,\n,\nBob,2\n"
    result = import_csv(data)
    assert [c.name for c in result.contacts] == ["Bob"]
    # Blank lines are no contacts; a named row without a number is listed (spreadsheet rows).
    assert [str(s) for s in result.skipped] == ["row 3: 'Ann' has no phone number; skipped"]


def test_values_past_the_header_are_reported() -> None:
    result = import_csv(b"Name,Number\nAnn,1,555 1234\n")
    assert result.contacts[0].number == "1"
    assert "'555 1234'" in result.report[0].message


def test_flags_are_on_only_for_1() -> None:
    data = b"Number,Presence,Directory,Starred\n1,1,yes,true\n"
    [c] = import_csv(data).contacts
    assert (c.presence, c.directory, c.starred) == (True, False, False)


def test_control_characters_are_replaced_and_reported() -> None:
    data = b"Name,Number\nA\x00B\x1bC,1\x07\n"
    result = import_csv(data)
    [c] = result.contacts
    assert (c.name, c.number) == ("A B C", "1")
    assert [n.where for n in result.report] == ["row 2, column 'Name'", "row 2, column 'Number'"]
    assert "U+0000" in result.report[0].message


def test_damaged_csv_is_a_format_error() -> None:
    with pytest.raises(FileFormatError, match="empty"):
        import_csv(b"")
    with pytest.raises(FileFormatError, match="empty"):
        import_csv(b"\xef\xbb\xbf\r\n\r\n")
    with pytest.raises(FileFormatError, match="not valid utf-16"):
        import_csv(codecs.BOM_UTF16_LE + b"\x00\xd8")  # a lone surrogate
    huge_field = b"Number\n" + b'"' + b"1" * 200_000 + b'"\n'
    with pytest.raises(FileFormatError, match="row 2"):
        import_csv(huge_field)


def test_oversized_input_is_refused_before_parsing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importing, "MAX_IMPORT_BYTES", 10)
    with pytest.raises(UnsafeInputError):
        import_csv(b"Number\n12345678901\n")


def test_sniff_delimiter_looks_outside_quotes_in_the_header_only() -> None:
    assert sniff_delimiter('"a;b;c",Number\n1;2;3;4;5\n') == ","
    assert sniff_delimiter("Name;Number\n") == ";"
    assert sniff_delimiter("Name\tNumber;x\tMobile\n") == "\t"
    assert sniff_delimiter("Number\n") == ","


# --- export ---------------------------------------------------------------------------------


def test_export_is_byte_for_byte_microsip() -> None:
    contacts = [
        Contact(name="Bob", number="1001", presence=True, starred=True),
        Contact(name='Ann "A", jr', number="1002", email="a@x", directory=True),
    ]
    expected = (
        "\ufeff"
        "Name,Number,First Name,Last Name,Phone Number,Mobile Number,E-mail Address,Address,"
        "City,State,Postal Code,Comment,Id,Info,Presence,Directory,Starred\n"
        "Bob,1001,,,,,,,,,,,,,1,0,1\n"
        '"Ann ""A"", jr",1002,,,,,a@x,,,,,,,,0,1,0\n'
    )
    assert export_csv(contacts) == expected.encode("utf-8")


def test_export_header_has_no_spaces_after_commas() -> None:
    # Facts §4.5 lists the names with ", " as prose; MicroSIP's own import compares whole
    # cells, so " Number" would not be found by it.
    first_line = export_csv([]).decode("utf-8-sig").splitlines()[0]
    assert first_line.split(",") == list(HEADER)
    assert ", " not in first_line


def test_export_quotes_line_breaks() -> None:
    data = export_csv([Contact(name="A", number="1", comment="x\ny\rz")])
    assert data.endswith(b'"x\ny\rz",,,0,0,0\n')


@pytest.mark.samples("contacts/*.xml", "contacts-*.xml")
def test_export_of_sample_contacts_reimports_identically(sample: Path) -> None:
    import xml.etree.ElementTree as ET

    root = ET.fromstring(sample.read_bytes())
    contacts = [Contact.from_attributes(e.attrib) for e in root.iter("contact")]
    result = import_csv(export_csv(contacts))
    # Names ending in U+00A0 and spaces survive; the flags come back.
    assert result.contacts == [prepare_contact(c) for c in contacts]
    assert result.report == []


# --- properties -----------------------------------------------------------------------------

# Text a contact can hold in Contacts.xml (no NUL/C0 but tab/LF/CR, no U+FFFE/FFFF/surrogates).
_TEXT = st.text(
    st.characters(
        exclude_categories=["Cs"],
        exclude_characters="".join(map(chr, [*range(9), 11, 12, *range(14, 32)])) + "\ufffe\uffff",
    ),
    max_size=12,
)
# The importer trims numbers and splits Google's ":::" in numbers and e-mail; the property's
# contacts hold no such values.
_NUMBER = _TEXT.map(str.strip).filter(lambda s: ":::" not in s)


@st.composite
def storable_contacts(draw: st.DrawFn) -> Contact:
    numbers = draw(st.tuples(_NUMBER, _NUMBER, _NUMBER).filter(any))
    texts = draw(st.lists(_TEXT, min_size=11, max_size=11))
    flags = draw(st.tuples(st.booleans(), st.booleans(), st.booleans()))
    name, first, last, email, address, city, state, zip_, comment, id_, info = texts
    email = email.replace(":::", "")  # Google's multi-value separator: the first value is kept
    return Contact(
        name=name,
        number=numbers[0],
        firstname=first,
        lastname=last,
        phone=numbers[1],
        mobile=numbers[2],
        email=email,
        address=address,
        city=city,
        state=state,
        zip=zip_,
        comment=comment,
        id=id_,
        info=info,
        presence=flags[0],
        starred=flags[1],
        directory=flags[2],
    )


@given(st.lists(storable_contacts(), max_size=5))
def test_export_then_import_gives_the_prepared_contacts(contacts: list[Contact]) -> None:
    result = import_csv(export_csv(contacts))
    assert result.contacts == [prepare_contact(c) for c in contacts]


@given(st.binary(max_size=400))
def test_import_never_fails_with_anything_but_a_bridge_error(data: bytes) -> None:
    try:
        result = import_csv(data)
    except BridgeError:
        return
    for contact in result.contacts:
        assert contact.number  # MicroSIP drops rows without one


@given(
    st.lists(st.lists(_TEXT, max_size=6), max_size=6),
    st.sampled_from([",", ";", "\t"]),
)
def test_import_of_any_table_with_a_number_column_succeeds(
    rows: list[list[str]], delimiter: str
) -> None:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow(["Name", "Number", "Business Fax"])
    writer.writerows(rows)
    result = import_csv(out.getvalue().encode("utf-8"))
    for row in rows:
        for value in row[1:3]:
            value = value.strip()
            if value and ":::" not in value:
                in_contact = any(value in c.numbers() for c in result.contacts)
                assert in_contact or any(repr(value) in n.message for n in result.report)
