"""vCard 2.1/3.0/4.0: real-world exports (ours and the corpus's), our QP fixture, export round
trips."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from microsip_bridge.contacts.importing import ImportResult
from microsip_bridge.contacts.vcard import export_vcard, import_vcard
from microsip_bridge.errors import BridgeError, FileFormatError
from microsip_bridge.microsip.contact import Contact
from microsip_bridge.microsip.contacts_xml import prepare_contact


def tel_values(data: bytes) -> list[str]:
    """An oracle independent of the importer: every TEL line's value, read from the raw bytes
    (no TEL line in the samples is folded or encoded), a tel: URI's number without "tel:"."""
    values = []
    for line in data.splitlines():
        if re.match(rb"(?:[A-Za-z0-9-]+\.)?TEL[;:]", line):
            values.append(line.split(b":", 1)[1].decode().strip().removeprefix("tel:"))
    return values


def accounted_for(result: ImportResult, value: str) -> bool:
    if any(value in contact.numbers() for contact in result.contacts):
        return True
    return any(repr(value) in note.message for note in result.report)


# --- real-world exports: ours (tests/data/vcard) and the corpus's ------------------------------


@pytest.mark.samples("vcard/*.vcf")
def test_every_phone_number_in_the_samples_ends_up_in_a_contact_or_the_report(
    sample: Path,
) -> None:
    data = sample.read_bytes()
    result = import_vcard(data)
    missing = [value for value in tel_values(data) if not accounted_for(result, value)]
    assert missing == []


def test_android_21_of_ours_with_quoted_printable_soft_breaks(data_dir: Path) -> None:
    result = import_vcard((data_dir / "vcard" / "android-2.1.vcf").read_bytes())
    # Trailing =20 of the QP values is trimmed.
    assert [c.name for c in result.contacts] == ["Ñandú Pérez", "Óscar Ibáñez García", "Inés Núñez"]
    nandu, oscar, ines = result.contacts
    assert (nandu.number, nandu.mobile) == ("600100200", "600100200")  # TEL;CELL;PREF
    # Four numbers: CELL;PREF -> mobile, HOME -> phone, the second CELL takes the free number
    # field and the second HOME finds no room: it is reported.
    assert (oscar.number, oscar.phone, oscar.mobile) == ("600100302", "910100301", "600100300")
    # A QP soft break ("=" at the end of a line) continues on a line starting with "=20".
    assert (oscar.firstname, oscar.lastname) == ("Óscar", "Ibáñez García")
    assert oscar.comment.count("\n") == 1  # two NOTE lines, joined
    assert oscar.comment.startswith("Primera línea de la nota, bastante larga")
    # The same number as CELL, WORK and WORK;FAX is kept once, with no report; then a folded
    # base64 photo and its blank line are passed over.
    assert (ines.number, ines.mobile, ines.email) == (
        "600100400",
        "600100400",
        "ines@example.invalid",
    )
    assert [str(n) for n in result.report] == [
        (
            "card 4, line 27 (TEL): number '910100303' (TEL;HOME) not imported: "
            "the number, phone and mobile fields are all in use"
        ),
    ]
    assert [str(s) for s in result.skipped] == [
        "card 1 (line 1): 'office@example.invalid' has no phone number; skipped",
        "card 2 (line 6): 'noreply@example.invalid' has no phone number; skipped",
    ]


def test_android_21_with_quoted_printable_soft_breaks(corpus: Path) -> None:
    result = import_vcard((corpus / "vcard" / "real-ezvcard-android-2.1.vcf").read_bytes())
    names = [c.name for c in result.contacts]
    # Trailing =20 of the QP values is trimmed.
    assert names == ["Ñ Ñ Ñ Ñ Ñ", " ".join(["Ñ"] * 11), "Ñ Ñ Ñ Ñ", "ÑÑÑÑ"]
    first, four, bob, henry = result.contacts
    assert (first.number, first.mobile) == ("123456789", "123456789")  # TEL;CELL;PREF
    # Four numbers: CELL;PREF -> mobile, HOME -> phone, the second CELL takes the free number
    # field and the second HOME finds no room: it is reported.
    assert (four.number, four.phone, four.mobile) == ("3456789", "234567", "123456")
    # A QP soft break ("=" at the end of a line) continues on a line starting with "=20".
    assert four.lastname == " ".join(["Ñ"] * 11)
    assert four.comment.count("\n") == 1  # two NOTE lines, joined
    assert four.comment.startswith("Ñ Ñ Ñ Ñ Ñ Ñ Ñ ÑÑ Ñ")
    # The same number as CELL, WORK and WORK;FAX is kept once, with no report.
    assert (bob.number, bob.mobile, bob.email) == ("123456", "123456", "bob@company.com")
    assert (bob.firstname, bob.lastname) == ("Ñ Ñ Ñ", "Ñ Ñ")
    assert (henry.number, henry.email) == ("55556666", "henry@company.com")
    assert [str(n) for n in result.report] == [
        (
            "card 4, line 27 (TEL): number '45678901' (TEL;HOME) not imported: "
            "the number, phone and mobile fields are all in use"
        ),
    ]
    assert [str(s) for s in result.skipped] == [
        "card 1 (line 1): 'john.doe@company.com' has no phone number; skipped",
        "card 2 (line 6): 'jane.doe@company.com' has no phone number; skipped",
    ]


def test_gmail_30_of_ours_with_grouped_tel(data_dir: Path) -> None:
    result = import_vcard((data_dir / "vcard" / "gmail-3.0.vcf").read_bytes())
    [priya] = result.contacts
    assert (priya.name, priya.firstname, priya.lastname) == ("Priya Raman", "Priya", "Raman")
    # TYPE=CELL -> mobile; the untyped item1.TEL -> number. X-ICQ is not a phone number.
    assert (priya.number, priya.phone, priya.mobile) == ("555 010 2222", "", "555 010 1111")
    assert "400123456" not in priya.numbers()
    assert priya.email == "priya@example.invalid"
    # ADR;TYPE=HOME wins over item2.ADR; \n and \, are unescaped.
    assert priya.address == "12 Home Lane\nSpringfield, SP 10001"
    # A folded NOTE line ("TeamRo" + "le") is unfolded.
    assert priya.comment.endswith("in the morning.\nTeamRole: Lead")
    assert result.report == []


def test_gmail_30_with_grouped_tel(corpus: Path) -> None:
    result = import_vcard((corpus / "vcard" / "real-ezvcard-gmail-3.0.vcf").read_bytes())
    [greg] = result.contacts
    assert (greg.name, greg.firstname, greg.lastname) == ("Greg Dartmouth", "Greg", "Dartmouth")
    # TYPE=CELL -> mobile; the untyped item1.TEL -> number. X-ICQ is not a phone number.
    assert (greg.number, greg.phone, greg.mobile) == ("555 555 2222", "", "555 555 1111")
    assert "123456789" not in greg.numbers()
    assert greg.email == "gdartmouth@hotmail.com"
    # ADR;TYPE=HOME wins over item2.ADR; \n and \, are unescaped.
    assert greg.address == "123 Home St\nHome City, HM 12345"
    # A folded NOTE line ("ACust" + "omField") is unfolded.
    assert greg.comment.endswith("NOTE type.\nACustomField: CustomField")
    assert result.report == []


def test_outlook_2003_of_ours_with_x509_key_and_qp_note(data_dir: Path) -> None:
    result = import_vcard((data_dir / "vcard" / "outlook-2003-2.1.vcf").read_bytes())
    [henrik] = result.contacts
    assert (henrik.name, henrik.firstname, henrik.lastname) == (
        "Dr. Henrik Lindqvist Sr.",
        "Henrik",
        "Lindqvist",
    )
    assert (henrik.number, henrik.phone, henrik.mobile) == (
        "+46 8 000 001",
        "+46 8 000 002",
        "+46 70 000 003",
    )
    # "=0D=" + line break + "=0A": a QP soft break inside a CRLF.
    assert henrik.comment == "First line\nNext line\n\nLast line, cut here"
    assert (henrik.address, henrik.city, henrik.state, henrik.zip) == (
        "Exempelgatan 7, Floor 3",
        "Stockholm",
        "AB",
        "111 22",
    )
    assert henrik.email == "henrik@example.invalid"  # after the base64 KEY and its blank lines
    assert [(n.where, "'+46 8 000 004'" in n.message) for n in result.report] == [
        ("card 1, line 14 (TEL)", True)
    ]


def test_outlook_2003_with_x509_key_and_qp_note(corpus: Path) -> None:
    result = import_vcard((corpus / "vcard" / "real-ezvcard-outlook-2003-2.1.vcf").read_bytes())
    [john] = result.contacts
    assert (john.name, john.firstname, john.lastname) == ("John Doe III", "John", "Doe")
    assert (john.number, john.phone, john.mobile) == ("BusinessPhone", "HomePhone", "MobilePhone")
    # "=0D=" + line break + "=0A": a QP soft break inside a CRLF.
    assert john.comment == "This is the note field!!\nSecond line\n\nThird line is empty"
    assert (john.address, john.city, john.state, john.zip) == (
        "123 Main St, TheOffice",
        "Austin",
        "TX",
        "12345",
    )
    assert john.email == "jdoe@hotmail.com"  # after the base64 KEY and its blank lines
    assert [(n.where, "'BusinessFaxPhone'" in n.message) for n in result.report] == [
        ("card 1, line 13 (TEL)", True)
    ]


@pytest.mark.parametrize(
    ("sample", "as_cp1252", "as_cp1250"),
    [
        ("data/vcard/thebat-2.1.vcf", "Micha³ Nowak", "Michał Nowak"),
        ("corpus/vcard/real-roundcube-thebat-2.1.vcf", "Piotr Iksiñski", "Piotr Iksiński"),
    ],
    indirect=["sample"],
)
def test_the_bat_qp_without_charset(sample: Path, as_cp1252: str, as_cp1250: str) -> None:
    data = sample.read_bytes()
    result = import_vcard(data)
    assert result.contacts == []  # no number
    # 8-bit QP with no CHARSET and not UTF-8: read as cp1252 by default, and said so.
    assert [str(n) for n in result.report] == [
        "card 1, line 4 (FN): 8-bit text without CHARSET that is not UTF-8: read as cp1252",
    ]
    assert [str(s) for s in result.skipped] == [
        f"card 1 (line 1): {as_cp1252!r} has no phone number; skipped"
    ]
    # The writer's real charset (a Polish user's cp1250) can be given.
    fixed = import_vcard(data, encoding="cp1250")
    assert [s.label for s in fixed.skipped] == [as_cp1250]


@pytest.mark.parametrize(
    "sample",
    [
        "data/vcard/android-2.1.vcf",
        "data/vcard/outlook-2003-2.1.vcf",
        "corpus/vcard/real-ezvcard-android-2.1.vcf",
        "corpus/vcard/real-ezvcard-outlook-2003-2.1.vcf",
    ],
    indirect=True,
)
def test_vobject_cannot_read_the_samples(sample: Path) -> None:
    """Why this module has its own parser: vobject 0.9.9 stops at QP soft line breaks."""
    vobject = pytest.importorskip("vobject")
    text = sample.read_text("utf-8")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(vobject.base.ParseError):
            list(vobject.readComponents(text))
    assert import_vcard(text).contacts


def test_40_of_ours_with_a_tel_uri_and_a_card_without_fn(data_dir: Path) -> None:
    result = import_vcard((data_dir / "vcard" / "contacts-4.0.vcf").read_bytes())
    zoe, luc = result.contacts
    # TYPE=cell with PREF and a tel: URI -> mobile, "voice,home" -> phone, work -> number.
    assert (zoe.number, zoe.phone, zoe.mobile) == (
        "+33 1 00 00 01 03",
        "+33 1 00 00 01 02",
        "+33-6-00-00-01-01",
    )
    assert zoe.name == "Zoë Martin"
    assert (luc.name, luc.number) == ("Luc Dubois", "+33 6 00 00 02 01")  # built from N
    assert result.report == []


# --- our fixture --------------------------------------------------------------------------------


def test_own_21_quoted_printable_fixture(data_dir: Path) -> None:
    data = (data_dir / "vcard-2.1-quoted-printable.vcf").read_bytes()
    result = import_vcard(data)
    joerg, org, bell, ann = result.contacts
    assert (joerg.name, joerg.firstname, joerg.lastname) == ("Jörg Müller", "Jörg", "Müller")
    assert (joerg.number, joerg.phone, joerg.mobile) == (
        "+49 30 7654321",  # WORK;VOICE
        "+49 30 1234567",  # HOME
        "+49 170 1234567",  # CELL;PREF
    )
    assert (joerg.address, joerg.city, joerg.zip) == ("Straße 1", "Berlin", "10115")
    # A soft break in the middle of a word, and "=3D" for a literal "=".
    assert (
        joerg.comment
        == "Erste Zeile\nZweite Zeile, die sehr lang ist und deshalb umgebrochen wird= gut"
    )
    # No FN and no N: the organisation names the contact (CHARSET=ISO-8859-2).
    assert org.name == "Zakład Usług"
    assert bell.name == "Bell Ringer"  # BEL replaced with a space
    assert (ann.name, ann.lastname) == ("Ann Smith;Jones", "Smith;Jones")  # N with "\;"
    assert "999" not in [n for c in result.contacts for n in c.numbers()]  # the AGENT's card
    assert [(n.where, n.message.split(":")[0]) for n in result.report] == [
        ("card 5, line 39", "a vCard nested in this card (a 2.1 AGENT) was not imported"),
        ("card 1, line 8 (TEL)", "number '+49 30 7654322' (TEL;FAX;WORK) not imported"),
        ("card 1, line 9 (TEL)", "number '+49 30 7654323' (TEL;PAGER) not imported"),
        ("card 4, line 28 (FN)", "control characters (U+0007) replaced with spaces"),
    ]
    assert [(s.where, s.label) for s in result.skipped] == [("card 3 (line 20)", "Anna Nowak")]


# --- reading details ------------------------------------------------------------------------------


def test_40_tel_uri_pref_and_quoted_types() -> None:
    text = (
        "BEGIN:VCARD\r\nVERSION:4.0\r\nFN:Ann\r\n"
        'TEL;VALUE=uri;TYPE="voice,home":tel:+1-555-0100\r\n'
        "TEL;VALUE=uri;TYPE=cell;PREF=1:tel:+1-555-0101\r\n"
        "TEL;TYPE=work:+1-555-0102\r\n"
        "END:VCARD\r\n"
    )
    [ann] = import_vcard(text).contacts
    assert (ann.number, ann.phone, ann.mobile) == ("+1-555-0102", "+1-555-0100", "+1-555-0101")


def test_utf16_vcard_and_missing_end() -> None:
    text = "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Zoë\r\nTEL:1\r\n"
    result = import_vcard(text.encode("utf-16"))
    assert [c.name for c in result.contacts] == ["Zoë"]
    assert result.report[0].message == "no END:VCARD; read anyway"


def test_unknown_or_wrong_charset_falls_back_with_a_note() -> None:
    text = (
        b"BEGIN:VCARD\r\nVERSION:2.1\r\n"
        b"FN;CHARSET=X-NOPE:Ann\r\n"
        b"N;CHARSET=UTF-8;ENCODING=QUOTED-PRINTABLE:=C3=28;Bo\r\n"
        b"TEL:1\r\nEND:VCARD\r\n"
    )
    result = import_vcard(text)
    [c] = result.contacts
    assert (c.name, c.lastname, c.firstname) == ("Ann", "\ufffd(", "Bo")
    assert [n.message for n in result.report] == [
        "unknown CHARSET 'X-NOPE'",
        "not valid UTF-8; the bad bytes were replaced with U+FFFD",
    ]


def test_no_vcard_is_a_format_error() -> None:
    with pytest.raises(FileFormatError, match="no vCard found"):
        import_vcard(b"Name,Number\n1,2\n")
    with pytest.raises(FileFormatError, match="cannot read text"):
        import_vcard(b"BEGIN:VCARD\r\nEND:VCARD\r\n", encoding="rot13")


# --- export ---------------------------------------------------------------------------------


def _sample() -> Contact:
    return Contact(
        name="Müller, Jörg; Dr.",
        number="+49 30 1234567",
        firstname="Jörg",
        lastname="Müller",
        phone="+49 30 7654321",
        mobile="+49 170 1234567",
        email="joerg@example.org",
        address="Straße 1\nHinterhaus",
        city="Berlin",
        zip="10115",
        comment="Line one\nLine two with a backslash \\ and a long tail " + "x" * 80,
        id="42",
        info="Ready",
        presence=True,
        starred=True,
    )


def test_export_30_escapes_and_folds() -> None:
    text = export_vcard([_sample()], "3.0")
    lines = text.split("\r\n")
    assert lines[:4] == [
        "BEGIN:VCARD",
        "VERSION:3.0",
        "FN:Müller\\, Jörg\\; Dr.",
        "N:Müller;Jörg;;;",
    ]
    assert "TEL;TYPE=VOICE,PREF:+49 30 1234567" in lines
    assert "TEL;TYPE=HOME,VOICE:+49 30 7654321" in lines
    assert "TEL;TYPE=CELL,VOICE:+49 170 1234567" in lines
    assert "ADR;TYPE=HOME:;;Straße 1\\nHinterhaus;Berlin;;10115;" in lines
    assert "CATEGORIES:starred" in lines
    assert all(len(line.encode()) <= 75 for line in lines)
    assert any(line.startswith(" ") for line in lines)  # the long NOTE is folded
    assert text.endswith("END:VCARD\r\n")


def test_export_21_uses_quoted_printable_for_non_ascii() -> None:
    text = export_vcard([_sample()], "2.1")
    assert "N;CHARSET=UTF-8;ENCODING=QUOTED-PRINTABLE:M=C3=BCller;J=C3=B6rg;;;\r\n" in text
    assert "TEL;CELL;VOICE:+49 170 1234567\r\n" in text
    assert all(len(line) <= 76 for line in text.split("\r\n"))
    assert not any(line.startswith((" ", "\t")) for line in text.split("\r\n"))


def test_export_40_types_and_pref() -> None:
    text = export_vcard([_sample()], "4.0")
    assert "TEL;TYPE=voice;PREF=1:+49 30 1234567\r\n" in text
    assert "UID;VALUE=text:42\r\n" in text
    assert text.startswith("BEGIN:VCARD\r\nVERSION:4.0\r\n")


def test_number_copied_from_mobile_is_written_once() -> None:
    text = export_vcard([Contact(name="A", number="5", mobile="5")], "3.0")
    assert text.count("TEL") == 1
    assert "TEL;TYPE=CELL,VOICE,PREF:5" in text


@pytest.mark.parametrize("version", ["2.1", "3.0", "4.0"])
def test_export_import_round_trip_of_a_rich_contact(version: str) -> None:
    result = import_vcard(export_vcard([_sample()], version))
    assert result.contacts == [_sample()]
    assert result.report == []
    assert result.fields >= {"info", "presence", "starred", "directory", "id"}


def test_vobject_reads_our_30_and_40_export() -> None:
    """An independent reader agrees with what we wrote."""
    vobject = pytest.importorskip("vobject")
    for version in ("3.0", "4.0"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            card = vobject.readOne(export_vcard([_sample()], version))
        assert card.fn.value == "Müller, Jörg; Dr."
        assert sorted(tel.value for tel in card.tel_list) == sorted(
            ["+49 30 1234567", "+49 30 7654321", "+49 170 1234567"]
        )
        assert card.note.value == _sample().comment


def test_unknown_version_is_refused() -> None:
    with pytest.raises(BridgeError, match="unknown vCard version"):
        export_vcard([], "5.0")


# --- properties -----------------------------------------------------------------------------

# Storable text without surrounding whitespace or CR: the importer trims values and turns line
# breaks into "\n".
_TEXT = st.text(
    st.characters(
        exclude_categories=["Cs"],
        exclude_characters="".join(map(chr, [*range(10), *range(11, 32)])) + "\ufffe\uffff",
    ),
    max_size=15,
).map(str.strip)


@st.composite
def vcard_contacts(draw: st.DrawFn) -> Contact:
    numbers = draw(st.tuples(_TEXT, _TEXT, _TEXT).filter(any))
    t = draw(st.lists(_TEXT, min_size=11, max_size=11))
    flags = draw(st.tuples(st.booleans(), st.booleans(), st.booleans()))
    return Contact(
        name=t[0],
        number=numbers[0],
        firstname=t[1],
        lastname=t[2],
        phone=numbers[1],
        mobile=numbers[2],
        email=t[3],
        address=t[4],
        city=t[5],
        state=t[6],
        zip=t[7],
        comment=t[8],
        id=t[9],
        info=t[10],
        presence=flags[0],
        starred=flags[1],
        directory=flags[2],
    )


@given(st.lists(vcard_contacts(), min_size=1, max_size=4), st.sampled_from(["2.1", "3.0", "4.0"]))
def test_export_then_import_gives_the_prepared_contacts(
    contacts: list[Contact], version: str
) -> None:
    result = import_vcard(export_vcard(contacts, version))
    assert result.contacts == [prepare_contact(c) for c in contacts]


@given(st.binary(max_size=400))
def test_import_of_any_bytes_raises_only_bridge_errors(data: bytes) -> None:
    try:
        result = import_vcard(data)
    except BridgeError:
        return
    assert all(contact.number for contact in result.contacts)


_LINE = st.text(max_size=40).map(lambda s: s.replace("\r", "").replace("\n", ""))


@given(st.lists(_LINE, max_size=10), st.sampled_from(["2.1", "3.0", "4.0"]))
def test_import_of_any_card_body_never_crashes(lines: list[str], version: str) -> None:
    body = "\r\n".join(["BEGIN:VCARD", f"VERSION:{version}", *lines, "END:VCARD", ""])
    result = import_vcard(body.encode("utf-8", "surrogatepass"))
    for contact in result.contacts:
        assert contact.number
