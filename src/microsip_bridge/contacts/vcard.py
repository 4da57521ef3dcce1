"""vCard 2.1, 3.0 and 4.0 import and export for MicroSIP contacts, with our own tolerant parser.

Why not vobject (the project's listed dependency): vobject 0.9.9 stops with a ParseError on two
of the four real files of the corpus, at the quoted-printable soft line breaks of the Android and
Outlook 2003 exports (a QP line ending in ``=`` continues on a line that does not start with a
space; tests/test_vcard.py keeps that fact checked). It also reads text, not bytes, so the
per-property charsets of 2.1 (Android's ``CHARSET=UTF-8``, The Bat!'s 8-bit QP with none) would
have to be guessed for the whole file before parsing. The format is small: this module reads it
at the byte level, and vobject serves only the tests, as an independent reader of our export.

Reading:

* Lines end in CRLF, LF or CR. A line starting with a space or tab continues the previous one
  (one whitespace character removed). In a QUOTED-PRINTABLE property a line ending in ``=``
  continues on the next line whatever it starts with (Android, Outlook).
* Values are decoded per property: QP or base64 per ENCODING, then the CHARSET; without a
  CHARSET, UTF-8 if valid, else ``encoding`` (Windows-1252 by default; The Bat! wrote its
  Polish user's cp1250), noted in the report.
* 2.1 bare parameters (``TEL;WORK;FAX``) are types; groups (``item1.TEL``) are accepted and an
  Apple ``X-ABLabel`` of the group names the number in the report.
* Cards nested in a card (2.1 ``AGENT``) are skipped and reported; a card without END:VCARD
  still counts.

Mapping a card to a contact:

* name: FN; else built from N as MicroSIP builds names (given + family); else ORG; else the
  number. firstname/lastname from N. ORG is otherwise not kept: MicroSIP has no company field.
* numbers (TEL), typed first, PREF before others: CELL → mobile, HOME → phone, any other voice
  number (WORK, VOICE, MAIN, untyped…) → number. Numbers whose field is taken, then FAX and
  PAGER numbers, fill the free fields in MicroSIP's order number → phone → mobile. The rest is
  named in the report; a card without any number is skipped and reported.
* email: the PREF e-mail, else the first. address/city/state/zip: the PREF ADR, else HOME, else
  the first (street, extended address and PO box joined into ``address``; MicroSIP has no
  country). NOTE → comment (several joined by line breaks). UID → id. ``CATEGORIES`` containing
  ``starred`` (Google's favourites) → starred. ``X-MICROSIP-INFO``/``-PRESENCE``/``-DIRECTORY``
  (written by our export) → info/presence/directory.
* Text is trimmed, line breaks become ``\\n``, control characters are replaced (and reported).

Writing (``export_vcard``) emits the same mapping back: TEL;VOICE,PREF for number (merged into
the phone or mobile line when it is the copy MicroSIP makes of them), HOME for phone, CELL for
mobile. 3.0 and 4.0 lines are escaped and folded at 75 octets; 2.1 uses QUOTED-PRINTABLE with
CHARSET=UTF-8 for anything that is not short plain ASCII, so it needs no folding.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from microsip_bridge.contacts.importing import (
    ImportResult,
    NumberCandidate,
    check_size,
    clean_text,
    finish,
    place_numbers,
    prepared_key,
)
from microsip_bridge.errors import BridgeError, FileFormatError
from microsip_bridge.microsip.contact import NUMBER_FIELDS, Contact, parse_flag
from microsip_bridge.microsip.textcodec import ANSI_CODEC, UTF8_BOM, decode_unicode, split_bom

VERSIONS = ("2.1", "3.0", "4.0")

# The fields a vCard always describes. A merge overwrites these in a matching contact; id,
# starred and MicroSIP's own flags only when the file carries them (see _carried_fields).
_CARD_FIELDS = frozenset(
    ("name", "firstname", "lastname", "email", "address", "city", "state", "zip", "comment")
) | frozenset(NUMBER_FIELDS)
_MICROSIP_PREFIX = "X-MICROSIP-"

_NEWLINE = re.compile(rb"\r\n|\r|\n")
# The properties a card is read from (and BEGIN/END/VERSION); the rest (PHOTO, KEY, ...) is
# skipped before its parameters are even parsed.
_USED = frozenset(
    b"BEGIN END VERSION FN N ORG TEL EMAIL ADR NOTE UID CATEGORIES X-ABLABEL "
    b"X-MICROSIP-INFO X-MICROSIP-PRESENCE X-MICROSIP-DIRECTORY".split()
)
_NAME_END = re.compile(rb"[;:]")
_NO_PARAMS: dict[str, list[str]] = {}
_ENCODINGS = frozenset(("QUOTED-PRINTABLE", "BASE64", "B", "8BIT", "7BIT"))
_ESCAPES_3 = {"n": "\n", "N": "\n", "\\": "\\", ",": ",", ";": ";", ":": ":"}
_ESCAPES_21 = {"\\": "\\", ";": ";", ",": ","}
_ESCAPE = re.compile(r"\\(.)", re.DOTALL)
_LINE_BREAK = re.compile(r"\r\n|\r")


@dataclass(slots=True)
class _Property:
    group: str
    name: str
    params: dict[str, list[str]]
    raw: bytes
    line: int

    def param(self, key: str) -> list[str]:
        return self.params.get(key, [])

    @property
    def types(self) -> set[str]:
        return {value.casefold() for value in self.param("TYPE")}

    @property
    def pref(self) -> bool:
        return "pref" in self.types or bool(self.param("PREF"))


@dataclass(slots=True)
class _Card:
    index: int
    line: int
    props: dict[str, list[_Property]] = field(default_factory=dict)

    def add(self, prop: _Property) -> None:
        self.props.setdefault(prop.name, []).append(prop)

    def get(self, name: str) -> list[_Property]:
        return list(self.props.get(name, ()))


# ---------------------------------------------------------------------------------------------
# reading


def import_vcard(data: bytes | str, *, encoding: str | None = None) -> ImportResult:
    """Read every vCard in ``data`` into contacts (see the module docstring for the mapping).

    ``encoding`` is the charset for 8-bit text that declares none and is not UTF-8 (default
    Windows-1252). Raises ``FileFormatError`` when there is no vCard at all.
    """
    check_size(data)
    if isinstance(data, str):
        data = data.encode("utf-8", errors="replace")
    fallback = encoding or ANSI_CODEC
    try:
        # Every byte must decode (bad ones replaced): the fallback reads arbitrary 8-bit text.
        bytes(range(256)).decode(fallback, errors="replace")
    except (LookupError, ValueError):
        raise FileFormatError(f"cannot read text as {fallback!r}") from None
    result = ImportResult()
    data = _to_utf8(data, result)
    cards = _cards(data, result)
    if not cards:
        raise FileFormatError("no vCard found (no BEGIN:VCARD line)")
    for card in cards:
        _CardReader(card, result, fallback).read()
    result.fields = _carried_fields(cards)
    return result


def _to_utf8(data: bytes, result: ImportResult) -> bytes:
    """UTF-16/32 files (with a BOM, or UTF-16 without) become UTF-8; a UTF-8 BOM is dropped."""
    bom, body = split_bom(data, (UTF8_BOM,))
    if bom is not None:
        # Still bytes: each property's CHARSET, not the mark, says how its value is encoded.
        return body
    decoded = decode_unicode(data)
    if decoded is None:
        return data
    if decoded.note is not None:
        result.note("file", decoded.note)
    return decoded.text.encode("utf-8", errors="replace")


def _logical_lines(data: bytes) -> Iterator[tuple[int, bytes]]:
    """Unfolded content lines with the number of the physical line each starts on."""
    current: bytearray | None = None
    start = 0
    quoted_printable = False
    for number, line in enumerate(_NEWLINE.split(data), start=1):
        if current is not None:
            if quoted_printable and current.endswith(b"="):
                # A QP soft line break: the value goes on, whatever the next line starts with.
                del current[-1]
                current += line[1:] if line[:1] in (b" ", b"\t") else line
                continue
            if line[:1] in (b" ", b"\t"):
                current += line[1:]
                continue
            yield start, bytes(current)
            current = None
        if not line.strip():
            continue
        current = bytearray(line)
        start = number
        quoted_printable = b"QUOTED-PRINTABLE" in line.split(b":", 1)[0].upper()
    if current is not None:
        yield start, bytes(current)


def _split_outside_quotes(text: str, sep: str) -> list[str]:
    if '"' not in text:
        return text.split(sep)
    parts: list[str] = []
    quoted = False
    begin = 0
    for i, ch in enumerate(text):
        if ch == '"':
            quoted = not quoted
        elif ch == sep and not quoted:
            parts.append(text[begin:i])
            begin = i + 1
    parts.append(text[begin:])
    return parts


def _parse_property(raw: bytes, line: int) -> _Property | None:
    colon = raw.find(b":")
    if b'"' in raw[: max(colon, 0)] or colon < 0:
        # A 4.0 parameter value may be quoted and hold a colon: find the first one outside.
        quoted = False
        colon = -1
        for i, byte in enumerate(raw):
            if byte == 0x22:
                quoted = not quoted
            elif byte == 0x3A and not quoted:
                colon = i
                break
    if colon <= 0:
        return None
    head = raw[:colon].decode("utf-8", errors="replace")
    parts = _split_outside_quotes(head, ";")
    group, _, name = parts[0].strip().rpartition(".")
    if not name:
        return None
    if len(parts) == 1:
        return _Property(group, name.upper(), _NO_PARAMS, raw[colon + 1 :], line)
    params: dict[str, list[str]] = {}
    for part in parts[1:]:
        key, eq, value = part.partition("=")
        key = key.strip().upper()
        if not key:
            continue
        if eq:
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1]
            # TYPE lists may be quoted as a whole in 4.0: TYPE="voice,home".
            values = [v.strip() for v in value.split(",")] if key == "TYPE" else [value]
        else:
            # vCard 2.1 bare parameters: an encoding, or else a type (TEL;WORK;FAX).
            values = [key]
            key = "ENCODING" if key in _ENCODINGS else "TYPE"
        params.setdefault(key, []).extend(v for v in values if v)
    return _Property(group, name.upper(), params, raw[colon + 1 :], line)


def _cards(data: bytes, result: ImportResult) -> list[_Card]:
    cards: list[_Card] = []
    current: _Card | None = None
    depth = 0
    for line, raw in _logical_lines(data):
        end = _NAME_END.search(raw)
        if end is not None and depth == 1:
            name = raw[: end.start()].rpartition(b".")[2].strip().upper()
            if name not in _USED:
                continue
        prop = _parse_property(raw, line)
        if prop is None:
            if depth == 1 and current is not None:
                result.note(f"card {current.index}, line {line}", "not a vCard line; ignored")
            continue
        marker = prop.raw.strip().upper() == b"VCARD"
        if prop.name == "BEGIN" and marker:
            depth += 1
            if depth == 1:
                current = _Card(len(cards) + 1, line)
            elif depth == 2 and current is not None:
                result.note(
                    f"card {current.index}, line {line}",
                    "a vCard nested in this card (a 2.1 AGENT) was not imported",
                )
        elif prop.name == "END" and marker:
            if depth == 1 and current is not None:
                cards.append(current)
                current = None
            depth = max(depth - 1, 0)
        elif depth == 1 and current is not None:
            current.add(prop)
    if current is not None:
        result.note(f"card {current.index} (line {current.line})", "no END:VCARD; read anyway")
        cards.append(current)
    return cards


def _carried_fields(cards: list[_Card]) -> frozenset[str]:
    fields = set(_CARD_FIELDS)
    names = {name for card in cards for name in card.props}
    if "UID" in names:
        fields.add("id")
    if "CATEGORIES" in names:
        fields.add("starred")
    if any(name.startswith(_MICROSIP_PREFIX) for name in names):
        fields |= {"id", "info", "presence", "starred", "directory"}
    return frozenset(fields)


class _CardReader:
    """Turns one card's properties into a contact, noting what it had to change or leave out."""

    def __init__(self, card: _Card, result: ImportResult, fallback: str) -> None:
        self.card = card
        self.result = result
        self.fallback = fallback
        versions = card.get("VERSION")
        self.version = versions[0].raw.decode("ascii", "replace").strip() if versions else "3.0"
        self.fallback_noted = False

    def where(self, prop: _Property) -> str:
        return f"card {self.card.index}, line {prop.line} ({prop.name})"

    def read(self) -> None:
        card = self.card
        fn = self.first_text("FN")
        n = self.first_structured("N")
        family, given = [*n, "", ""][:2]
        org = next((part for part in self.first_structured("ORG") if part), "")
        email = self.first_text("EMAIL", prefer_pref=True)
        address, city, state, zip_code = self.address()
        notes = [self.text(prop) for prop in card.get("NOTE")]
        categories = [
            part.casefold()
            for prop in card.get("CATEGORIES")
            for part in re.split(r"[,;]", self.text(prop))
        ]
        contact = Contact(
            name=fn,
            firstname=given,
            lastname=family,
            email=email,
            address=address,
            city=city,
            state=state,
            zip=zip_code,
            comment="\n".join(note for note in notes if note),
            id=self.first_text("UID"),
            info=self.first_text("X-MICROSIP-INFO"),
            presence=parse_flag(self.first_text("X-MICROSIP-PRESENCE")),
            starred="starred" in (c.strip() for c in categories),
            directory=parse_flag(self.first_text("X-MICROSIP-DIRECTORY")),
        )
        contact = place_numbers(contact, self.numbers(), self.result)
        finish(contact, self.result, f"card {card.index} (line {card.line})", fallback_name=org)

    def numbers(self) -> list[NumberCandidate]:
        labels = {
            prop.group.casefold(): self.text(prop)
            for prop in self.card.get("X-ABLABEL")
            if prop.group
        }
        tels = sorted(self.card.get("TEL"), key=lambda prop: not prop.pref)
        found: list[NumberCandidate] = []
        for prop in tels:
            value = self.text(prop)
            is_uri = "uri" in (v.casefold() for v in prop.param("VALUE"))
            if is_uri and value[:4].casefold() == "tel:":
                value = value[4:]
            if not value:
                continue
            types = prop.types
            label = ";".join(["TEL", *sorted(t.upper() for t in types)])
            if prop.group.casefold() in labels:
                label += f" {labels[prop.group.casefold()]!r}"
            slot: str | None
            low = bool(types & {"fax", "pager"})
            if low:
                slot = None
            elif types & {"cell", "mobile", "iphone"}:
                slot = "mobile"
            elif "home" in types:
                slot = "phone"
            else:
                slot = "number"
            found.append(NumberCandidate(value, self.where(prop), label, slot=slot, low=low))
        return found

    def address(self) -> tuple[str, str, str, str]:
        adrs = self.card.get("ADR")
        if not adrs:
            return "", "", "", ""
        chosen = next(
            (p for p in adrs if p.pref), next((p for p in adrs if "home" in p.types), adrs[0])
        )
        parts = (self.structured(chosen) + [""] * 7)[:7]
        pobox, extended, street, city, state, zip_code, _country = parts
        address = ", ".join(part for part in (street, extended, pobox) if part)
        return address, city, state, zip_code

    def first_text(self, name: str, *, prefer_pref: bool = False) -> str:
        props = self.card.get(name)
        if prefer_pref:
            props.sort(key=lambda prop: not prop.pref)
        for prop in props:
            value = self.text(prop)
            if value:
                return value
        return ""

    def first_structured(self, name: str) -> list[str]:
        props = self.card.get(name)
        return self.structured(props[0]) if props else []

    def text(self, prop: _Property) -> str:
        raw = self.decode(prop)
        if self.version.startswith("2") and prop.name not in ("N", "ADR", "ORG"):
            return self.clean(raw, prop)
        return self.clean(_unescape(raw, self.version), prop)

    def structured(self, prop: _Property) -> list[str]:
        return [
            self.clean(_unescape(part, self.version), prop)
            for part in _split_components(self.decode(prop))
        ]

    def clean(self, value: str, prop: _Property) -> str:
        value = _LINE_BREAK.sub("\n", value).strip()
        return clean_text(value, self.result, lambda: self.where(prop))

    def decode(self, prop: _Property) -> str:
        raw = prop.raw
        encodings = {value.upper() for value in prop.param("ENCODING")}
        if "QUOTED-PRINTABLE" in encodings:
            raw = binascii.a2b_qp(raw)
        elif encodings & {"BASE64", "B"}:
            try:
                raw = base64.b64decode(b"".join(raw.split()), validate=False)
            except (binascii.Error, ValueError):
                self.result.note(self.where(prop), "damaged base64 value; ignored")
                return ""
        charsets = prop.param("CHARSET")
        if charsets:
            charset = charsets[0]
            try:
                return raw.decode(charset)
            except UnicodeDecodeError:
                try:
                    text = raw.decode(charset, errors="replace")
                except (LookupError, ValueError):
                    pass
                else:
                    self.result.note(
                        self.where(prop),
                        f"not valid {charset}; the bad bytes were replaced with U+FFFD",
                    )
                    return text
            except (LookupError, ValueError):
                # Unknown names, non-text codecs ("base64") and codecs that fail in other ways.
                pass
            self.result.note(self.where(prop), f"unknown CHARSET {charset!r}")
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            if not self.fallback_noted:
                self.fallback_noted = True
                self.result.note(
                    self.where(prop),
                    f"8-bit text without CHARSET that is not UTF-8: read as {self.fallback}",
                )
            return raw.decode(self.fallback, errors="replace")


def _split_components(value: str) -> list[str]:
    """Split a structured value (N, ADR, ORG) on the semicolons that are not escaped."""
    parts: list[str] = []
    begin = 0
    i = 0
    while i < len(value):
        if value[i] == "\\":
            i += 2
            continue
        if value[i] == ";":
            parts.append(value[begin:i])
            begin = i + 1
        i += 1
    parts.append(value[begin:])
    return parts


def _unescape(value: str, version: str) -> str:
    table = _ESCAPES_21 if version.startswith("2") else _ESCAPES_3
    return _ESCAPE.sub(lambda m: table.get(m.group(1), m.group(0)), value)


# ---------------------------------------------------------------------------------------------
# writing


def export_vcard(contacts: Iterable[Contact], version: str = "3.0") -> str:
    """The contacts as vCards of ``version`` ("2.1", "3.0" or "4.0"), CRLF line ends.

    ``extra`` attributes are not written; MicroSIP's info/presence/directory are kept in
    ``X-MICROSIP-*`` properties that other programs ignore.
    """
    if version not in VERSIONS:
        raise BridgeError(f"unknown vCard version {version!r}; use 2.1, 3.0 or 4.0")
    writer = _Writer(version)
    return "".join(writer.card(contact) for contact in contacts)


class _Writer:
    def __init__(self, version: str) -> None:
        self.version = version
        self.v21 = version == "2.1"
        self.v40 = version == "4.0"

    def card(self, contact: Contact) -> str:
        c = contact
        lines = ["BEGIN:VCARD", f"VERSION:{self.version}"]
        lines += self.prop("FN", [], self.text(prepared_key(c)[1]))
        lines += self.prop("N", [], self.structured([c.lastname, c.firstname, "", "", ""]))
        for types, number in self.tels(c):
            lines += self.prop("TEL", types, self.text(number))
        if c.email:
            lines += self.prop("EMAIL", [] if self.v40 else ["INTERNET"], self.text(c.email))
        if c.address or c.city or c.state or c.zip:
            adr = ["", "", c.address, c.city, c.state, c.zip, ""]
            lines += self.prop("ADR", ["HOME"], self.structured(adr))
        if c.comment:
            lines += self.prop("NOTE", [], self.text(c.comment))
        if c.id:
            lines += self.prop("UID", [], self.text(c.id), value_text=self.v40)
        if c.starred:
            lines += self.prop("CATEGORIES", [], "starred")
        if c.info:
            lines += self.prop("X-MICROSIP-INFO", [], self.text(c.info))
        lines += self.prop("X-MICROSIP-PRESENCE", [], "1" if c.presence else "0")
        lines += self.prop("X-MICROSIP-DIRECTORY", [], "1" if c.directory else "0")
        lines.append("END:VCARD")
        return "".join(line + "\r\n" for line in lines)

    @staticmethod
    def tels(c: Contact) -> list[tuple[list[str], str]]:
        """TEL lines: number gets VOICE+PREF, unless it is the very copy of phone (or of mobile
        when there is no phone) that MicroSIP makes, in which case that line carries PREF."""
        preferred = None
        if c.number and c.number == c.phone:
            preferred = "phone"
        elif c.number and not c.phone and c.number == c.mobile:
            preferred = "mobile"
        tels: list[tuple[list[str], str]] = []
        if c.number and preferred is None:
            tels.append((["VOICE", "PREF"], c.number))
        if c.phone:
            tels.append((["HOME", "VOICE", *(["PREF"] if preferred == "phone" else [])], c.phone))
        if c.mobile:
            tels.append((["CELL", "VOICE", *(["PREF"] if preferred == "mobile" else [])], c.mobile))
        return tels

    def text(self, value: str) -> str:
        value = _LINE_BREAK.sub("\n", value)
        if self.v21:
            return value
        return (
            value.replace("\\", "\\\\").replace("\n", "\\n").replace(",", "\\,").replace(";", "\\;")
        )

    def structured(self, parts: list[str]) -> str:
        if self.v21:
            return ";".join(
                _LINE_BREAK.sub("\n", p).replace("\\", "\\\\").replace(";", "\\;") for p in parts
            )
        return ";".join(self.text(part) for part in parts)

    def prop(
        self, name: str, types: list[str], value: str, *, value_text: bool = False
    ) -> list[str]:
        params = ""
        if types:
            if self.v21:
                params = "".join(f";{t}" for t in types)
            elif self.v40:
                plain = [t.lower() for t in types if t != "PREF"]
                params = f";TYPE={','.join(plain)}" if plain else ""
                params += ";PREF=1" if "PREF" in types else ""
            else:
                params = f";TYPE={','.join(types)}"
        if value_text:
            params += ";VALUE=text"
        if self.v21:
            return _qp_lines(name + params, value)
        return _fold(f"{name}{params}:{value}")


def _fold(line: str) -> list[str]:
    """Fold a content line at 75 octets without splitting a UTF-8 sequence (RFC 6350 §3.2)."""
    out: list[str] = []
    chunk: list[str] = []
    size = 0
    for ch in line:
        width = len(ch.encode("utf-8", errors="replace"))
        if size + width > 75:
            out.append("".join(chunk))
            chunk, size = [" "], 1
        chunk.append(ch)
        size += width
    out.append("".join(chunk))
    return out


_QP_SAFE = frozenset(range(33, 127)) - {ord("=")}


def _qp_lines(head: str, value: str) -> list[str]:
    """A vCard 2.1 property: plain when short printable ASCII, else UTF-8 quoted-printable with
    soft line breaks, every line at most 76 characters. Spaces are encoded too, so that no
    continuation line starts with whitespace, which some readers would take for folding."""
    plain = f"{head}:{value}"
    if len(plain) <= 75 and value.isascii() and value.isprintable():
        return [plain]
    data = value.replace("\n", "\r\n").encode("utf-8", errors="replace")
    lines: list[str] = []
    current = f"{head};CHARSET=UTF-8;ENCODING=QUOTED-PRINTABLE:"
    for byte in data:
        token = chr(byte) if byte in _QP_SAFE else f"={byte:02X}"
        if len(current) + len(token) > 75:  # leave room for the soft break's "="
            lines.append(current + "=")
            current = ""
        current += token
    lines.append(current)
    return lines
