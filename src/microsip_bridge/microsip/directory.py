"""MicroSIP's usersDirectory responses: built for a bridge to serve, read as MicroSIP reads them.

MicroSIP fetches the ``usersDirectory`` URL and tries, in this order (facts §4.6; mainDlg.cpp
``onUsersDirectoryLoaded``, read in 3.20.5 and in a 3.22.16-based fork):

1. **CSV** when the headers hold ``Content-Type: text/csv`` (case-sensitive), read like a CSV
   import. Out of scope here: :func:`parse_directory` points to the CSV importer.
2. **JSON**: a bare array of contact objects, or ``{"refresh": int, "silent": int, "items": [...],
   "presence": [...]}``. Text fields count only when they are JSON strings and ``presence`` /
   ``starred`` / ``refresh`` / ``silent`` only when they are integers (``isString()``,
   ``isInt()``): ``"number": 100`` or ``"presence": true`` is silently ignored. The number is
   ``number``, else ``phone``, else ``telephone``. ``presence`` entries (3.22) are
   ``{"number", "status", "info"}`` and set presence icons without SIP.
3. **XML**, read with CMarkup: a ``<contacts refresh="" silent="">`` root with ``<contact .../>``
   children (the Contacts.xml attributes but ``directory``); a ``YealinkIPPhoneBook`` root with
   ``Menu`` / ``Unit Name Phone1 Phone2 Phone3``; or any other root whose ``entry`` or
   ``DirectoryEntry`` children hold ``extension`` or ``Telephone`` (up to three: number, phone,
   mobile), ``name`` or ``Name``, ``info``, ``presence``, ``starred`` elements. A
   ``YealinkIPPhoneBook`` root is only ever read as Menu/Unit: its ``DirectoryEntry`` children are
   not looked at.

Every contact gets ``directory=1`` and goes through ``ContactPrepare`` (no number, phone or mobile:
dropped; no name: "first last", else the number). Only the fields a response carries update an
existing contact (matched on number *and* name); directory contacts missing from a recognised
response are deleted. So the builders here always send every field, empty ones included: the
response then fully decides each contact, and clearing a field on the server clears it in
MicroSIP.
"""

from __future__ import annotations

import bisect
import enum
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import chain
from json.encoder import encode_basestring as _json_string
from operator import attrgetter

from microsip_bridge.errors import (
    BridgeError,
    FileFormatError,
    TooLargeError,
    UnsafeInputError,
)
from microsip_bridge.microsip import textcodec
from microsip_bridge.microsip.contact import TEXT_FIELDS, Contact
from microsip_bridge.microsip.contacts_xml import (
    MAX_CONTACTS_BYTES,
    check_storable,
    parse_markup,
    prepare_contact,
    serialize_contact_elements,
)
from microsip_bridge.microsip.crt import INT_MAX, INT_MIN, wtoi
from microsip_bridge.microsip.markup import MAX_DEPTH, XmlElement, collector_paused

__all__ = [
    "PRESENCE_STATUSES",
    "DirectoryResponse",
    "DirectoryShape",
    "PresenceUpdate",
    "parse_directory",
    "read_directory_response",
    "to_directory_json",
    "to_directory_xml",
]

# The statuses MicroSIP 3.22 knows in a JSON "presence" entry; any other shows the unknown icon.
PRESENCE_STATUSES = ("offline", "online", "away", "busy", "ring", "phone")
# The flags a directory response can carry (``directory`` is implied).
_XML_FLAGS = ("presence", "starred")


class DirectoryShape(enum.StrEnum):
    """Which of MicroSIP's response shapes a response had."""

    JSON_ARRAY = "json-array"
    JSON_OBJECT = "json-object"
    XML_CONTACTS = "xml-contacts"
    XML_YEALINK = "xml-yealink"
    XML_ENTRIES = "xml-entries"


@dataclass(frozen=True, slots=True)
class PresenceUpdate:
    """One entry of a JSON response's ``presence`` list (3.22): an icon without SIP SUBSCRIBE."""

    number: str
    status: str
    info: str = ""


@dataclass(slots=True)
class DirectoryResponse:
    """What MicroSIP takes from one directory response."""

    shape: DirectoryShape
    contacts: list[Contact]
    # For each contact, the fields the response carried: MicroSIP updates only those in an
    # existing contact (ContactUpdate).
    fields: list[frozenset[str]] = field(default_factory=list)
    refresh: int | None = None
    silent: int | None = None
    presence: list[PresenceUpdate] = field(default_factory=list)
    dropped: int = 0  # entries ContactPrepare rejected: no number, phone or mobile
    notes: list[str] = field(default_factory=list)


# --- building ------------------------------------------------------------------------------------


def _check_refresh(refresh: int | None) -> None:
    if refresh is None:
        return
    if isinstance(refresh, bool) or not isinstance(refresh, int) or not 0 <= refresh <= INT_MAX:
        raise BridgeError(
            f"refresh must be a whole number of seconds from 0 to {INT_MAX}, not {refresh!r} "
            "(MicroSIP reads only an integer; 0 means no periodic refresh)"
        )


# One item's JSON text: every text field as a string, the flags as integers. Building the text
# with the C string encoder is several times faster than json.dumps of 100,000 dicts.
_ITEM = (
    "{"
    + ",".join(f'"{name}":%s' for name in TEXT_FIELDS)
    + "".join(f',"{flag}":%d' for flag in _XML_FLAGS)
    + "}"
)
_TEXTS = attrgetter(*TEXT_FIELDS)
_FLAGS = attrgetter(*_XML_FLAGS)


# Items are built this many at a time, so that the only big string is the response itself.
_BATCH = 4096


def _items_json(contacts: list[Contact]) -> str:
    quoted = map(_json_string, chain.from_iterable(map(_TEXTS, contacts)))
    rows = map(tuple.__add__, zip(*[quoted] * len(TEXT_FIELDS), strict=True), map(_FLAGS, contacts))
    return ",".join(map(_ITEM.__mod__, rows))


def _utf8_size(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


def to_directory_json(
    contacts: Iterable[Contact],
    refresh: int | None = None,
    silent: bool | None = None,
    presence: Iterable[PresenceUpdate] | None = None,
    *,
    max_bytes: int | None = MAX_CONTACTS_BYTES,
) -> str:
    """The JSON object MicroSIP reads from a usersDirectory URL.

    Every item carries all 14 text fields as strings (empty ones too, so that the response fully
    decides the contact) and ``presence``/``starred`` as the integers 0/1; ``refresh`` (seconds
    between reloads) and ``silent`` (no error balloons) are written when given; ``presence`` adds
    the 3.22 list of presence icons. 3.20 ignores ``silent``, ``starred`` and that list. Values
    Contacts.xml cannot store are refused (UnsafeInputError), because MicroSIP saves every
    directory contact into it.

    Note: a 3.22.16-based source clamps only a Cache-Control ``max-age`` to 60-86400 s, not this
    ``refresh``; values under 60 make MicroSIP reload that often.

    A response over ``max_bytes`` in UTF-8, which :func:`read_directory_response` would refuse,
    is refused (UnsafeInputError) before it is all built; None: no limit.
    """
    _check_refresh(refresh)
    items = list(contacts)
    check_storable(items)
    head: dict[str, object] = {}
    if refresh is not None:
        head["refresh"] = refresh
    if silent is not None:
        head["silent"] = int(bool(silent))
    body: dict[str, object] = {}
    if presence is not None:
        entries = []
        for update in presence:
            if update.status not in PRESENCE_STATUSES and update.status != "unknown":
                raise BridgeError(
                    f"presence status {update.status!r} for {update.number!r} is not one of "
                    f"{', '.join(PRESENCE_STATUSES)} (or unknown)"
                )
            entry = {"number": update.number, "status": update.status}
            if update.info:
                entry["info"] = update.info
            entries.append(entry)
        body["presence"] = entries
    out = _dumps(head)[:-1] + ("," if head else "") + '"items":['
    end = "]" + (("," + _dumps(body)[1:]) if body else "}")
    size = _utf8_size(out) + _utf8_size(end)
    with collector_paused():
        for at in range(0, len(items), _BATCH):
            chunk = ("," if at else "") + _items_json(items[at : at + _BATCH])
            size += _utf8_size(chunk)
            if max_bytes is not None and size > max_bytes:
                raise TooLargeError(
                    f"{len(items):,} contacts make a directory response over {max_bytes:,} "
                    "bytes, more than the reader accepts: refused"
                )
            # Grown in place: CPython resizes a string nothing else refers to, so the response
            # never exists twice over (a join would hold all the parts and the result at once).
            out += chunk
    out += end
    return out


def _dumps(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def to_directory_xml(
    contacts: Iterable[Contact],
    refresh: int | None = None,
    silent: bool | None = None,
    *,
    max_bytes: int | None = MAX_CONTACTS_BYTES,
) -> bytes:
    """The ``<contacts refresh="" silent="">`` XML MicroSIP reads from a usersDirectory URL.

    The shape and escaping are Contacts.xml's (CMarkup's), with every text attribute, then
    ``presence`` and ``starred``; ``directory`` and unknown attributes are left out (MicroSIP
    ignores them here). A response over ``max_bytes``, which :func:`read_directory_response`
    would refuse, is refused (UnsafeInputError); None: no limit.
    """
    _check_refresh(refresh)
    root: list[tuple[str, str]] = []
    if refresh is not None:
        root.append(("refresh", str(refresh)))
    if silent is not None:
        root.append(("silent", str(int(bool(silent)))))
    with collector_paused():
        return serialize_contact_elements(
            list(contacts),
            text_fields=TEXT_FIELDS,
            flag_fields=_XML_FLAGS,
            include_extra=False,
            root_attributes=root,
            max_bytes=max_bytes,
        )


# --- reading -------------------------------------------------------------------------------------


def _json_int(value: object) -> int | None:
    """jsoncpp's ``isInt()``: an integer in int32 range, or an integral real in it; not a bool."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if INT_MIN <= value <= INT_MAX else None
    if isinstance(value, float) and value.is_integer() and INT_MIN <= value <= INT_MAX:
        return int(value)
    return None


def _add(response: DirectoryResponse, contact: Contact, fields: set[str]) -> None:
    prepared = prepare_contact(contact)
    if prepared is None:
        response.dropped += 1
        return
    response.contacts.append(prepared)
    response.fields.append(frozenset(fields))


def _from_json(root: object, response: DirectoryResponse) -> None:
    items: list[object]
    if isinstance(root, dict):
        refresh = _json_int(root.get("refresh"))
        if refresh is not None:
            response.refresh = refresh
        silent = _json_int(root.get("silent"))
        if silent is not None:
            response.silent = silent
        raw_items = root.get("items")
        if not isinstance(raw_items, list):
            raise FileFormatError('JSON object without an "items" array: MicroSIP ignores it')
        items = raw_items
    elif isinstance(root, list):
        items = root
    else:
        raise FileFormatError("JSON that is neither an array nor an object: MicroSIP ignores it")
    for index, item in enumerate(items):
        if item is None:
            item = {}
        if not isinstance(item, dict):
            # jsoncpp throws on item["name"] of a non-object; MicroSIP keeps the contacts read so
            # far and skips the rest, presence list included.
            response.notes.append(
                f"item {index} is not an object: MicroSIP stops reading the items there"
            )
            return
        contact = Contact(directory=True)
        fields: set[str] = set()
        for name in TEXT_FIELDS:
            value = item.get(name)
            if isinstance(value, str):
                setattr(contact, name, value)
                fields.add(name)
        if not isinstance(item.get("number"), str):
            for alias in ("phone", "telephone"):
                value = item.get(alias)
                if isinstance(value, str):
                    contact.number = value
                    fields.add("number")
                    break
        for flag in _XML_FLAGS:
            number = _json_int(item.get(flag))
            if number is not None:
                setattr(contact, flag, number != 0)
                fields.add(flag)
        _add(response, contact, fields)
    presence = root.get("presence") if isinstance(root, dict) else None
    if isinstance(presence, list):
        for index, entry in enumerate(presence):
            if entry is None:
                continue
            if not isinstance(entry, dict):
                response.notes.append(
                    f"presence entry {index} is not an object: MicroSIP stops reading them there"
                )
                break
            number, status, info = entry.get("number"), entry.get("status"), entry.get("info")
            if isinstance(number, str) and isinstance(status, str):
                response.presence.append(
                    PresenceUpdate(number, status, info if isinstance(info, str) else "")
                )


class _Children:
    """CMarkup's child cursor: ``FindChildElem(name)`` finds the next child of that name after the
    current one and moves there; ``ResetChildPos()`` goes back to the start. Index lists keep a
    long run of children from costing a scan per call."""

    def __init__(self, element: XmlElement) -> None:
        self.children = element.children
        self.at = -1
        self.index: dict[str, list[int]] = {}
        for i, child in enumerate(self.children):
            self.index.setdefault(child.name, []).append(i)

    def find(self, *names: str) -> XmlElement | None:
        """``FindChildElem(a) || FindChildElem(b)``: each search starts after the cursor."""
        for name in names:
            positions = self.index.get(name)
            if positions:
                k = bisect.bisect_right(positions, self.at)
                if k < len(positions):
                    self.at = positions[k]
                    return self.children[self.at]
        return None

    def reset(self) -> None:
        self.at = -1


def _from_contacts_root(root: XmlElement, response: DirectoryResponse) -> None:
    attrs = root.attrs
    if "refresh" in attrs:
        response.refresh = wtoi(attrs["refresh"])
    if "silent" in attrs:
        response.silent = wtoi(attrs["silent"])
    for element in root.children:
        if element.name != "contact":
            continue
        values = element.attrs
        contact = Contact(directory=True)
        fields: set[str] = set()
        for name in TEXT_FIELDS:
            if name in values:
                setattr(contact, name, values[name])
                fields.add(name)
        for flag in _XML_FLAGS:
            if flag in values:
                setattr(contact, flag, values[flag] == "1")
                fields.add(flag)
        _add(response, contact, fields)


_YEALINK_ATTRIBUTES = (
    ("Name", "name"),
    ("Phone1", "number"),
    ("Phone2", "phone"),
    ("Phone3", "mobile"),
)


def _from_yealink(root: XmlElement, response: DirectoryResponse) -> None:
    for menu in root.children:
        if menu.name != "Menu":
            continue
        for unit in menu.children:
            if unit.name != "Unit":
                continue
            values = unit.attrs
            contact = Contact(directory=True)
            fields: set[str] = set()
            for attribute, name in _YEALINK_ATTRIBUTES:
                if attribute in values:
                    setattr(contact, name, values[attribute])
                    fields.add(name)
            _add(response, contact, fields)
    if not response.contacts and any(c.name == "DirectoryEntry" for c in root.children):
        response.notes.append(
            "YealinkIPPhoneBook with DirectoryEntry children: MicroSIP reads only Menu/Unit, so "
            "it finds no contacts (and deletes its directory contacts)"
        )


def _from_entries(root: XmlElement, response: DirectoryResponse) -> None:
    entries = _Children(root)
    while (entry := entries.find("entry", "DirectoryEntry")) is not None:
        kids = _Children(entry)
        contact = Contact(directory=True)
        fields: set[str] = set()
        found = kids.find("extension", "Telephone")
        if found is not None:
            contact.number = found.data
            fields.add("number")
            # The second and third numbers are searched after the first (no reset between).
            for name in ("phone", "mobile"):
                found = kids.find("extension", "Telephone")
                if found is not None:
                    setattr(contact, name, found.data)
                    fields.add(name)
            kids.reset()
        found = kids.find("name", "Name")
        if found is not None:
            contact.name = found.data
            fields.add("name")
            kids.reset()
        found = kids.find("info")
        if found is not None:
            contact.info = found.data
            fields.add("info")
            kids.reset()
        for flag in _XML_FLAGS:
            found = kids.find(flag)
            if found is not None:
                setattr(contact, flag, found.data == "1")
                fields.add(flag)
                kids.reset()
        _add(response, contact, fields)


def _json_document(text: str) -> object:
    try:
        return json.loads(text)
    except RecursionError as exc:
        raise UnsafeInputError("JSON nested too deeply") from exc


def read_directory_response(
    data: bytes,
    content_type: str | None = None,
    *,
    max_bytes: int = MAX_CONTACTS_BYTES,
    max_depth: int = MAX_DEPTH,
) -> DirectoryResponse:
    """Read a usersDirectory response body the way MicroSIP does (see the module docstring).

    ``content_type`` is the response's Content-Type value. Raises FileFormatError for a response
    MicroSIP would not recognise (it then keeps its directory contacts unchanged) and
    UnsafeInputError for hostile input (too big, DOCTYPE, nested too deeply). A recognised
    response with no usable contact is not an error: MicroSIP then deletes all its directory
    contacts, and so ``contacts`` is empty.
    """
    if len(data) > max_bytes:
        raise UnsafeInputError(f"the response is {len(data):,} bytes, over {max_bytes:,}")
    if content_type is not None and content_type.lstrip().startswith("text/csv"):
        raise FileFormatError(
            "a text/csv directory response is read like a CSV import: use the CSV importer "
            "(microsip_bridge.contacts.csvfile), not parse_directory()"
        )
    _, body = textcodec.split_bom(data, (textcodec.UTF8_BOM,))
    json_error: str | None = None
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = body.count(b"\n", 0, exc.start) + 1
        raise FileFormatError(f"invalid UTF-8 at line {line}") from exc
    try:
        document = _json_document(text)
    except ValueError as exc:  # json.JSONDecodeError, or an integer too long to convert
        json_error = str(exc)
    else:
        shape = (
            DirectoryShape.JSON_OBJECT if isinstance(document, dict) else DirectoryShape.JSON_ARRAY
        )
        response = DirectoryResponse(shape, [])
        with collector_paused():
            _from_json(document, response)
        return response
    if text.lstrip()[:1] in ("{", "["):
        raise FileFormatError(f"invalid JSON, which MicroSIP ignores: {json_error}")
    try:
        root = parse_markup(data, max_bytes=max_bytes, max_depth=max_depth).root
    except FileFormatError as exc:
        raise FileFormatError(
            f"neither JSON nor XML that MicroSIP can read ({exc.message}, {exc.where or ''})"
        ) from exc
    with collector_paused():
        if root.name == "contacts":
            response = DirectoryResponse(DirectoryShape.XML_CONTACTS, [])
            _from_contacts_root(root, response)
        elif root.name == "YealinkIPPhoneBook":
            response = DirectoryResponse(DirectoryShape.XML_YEALINK, [])
            _from_yealink(root, response)
        else:
            response = DirectoryResponse(DirectoryShape.XML_ENTRIES, [])
            _from_entries(root, response)
    return response


def parse_directory(
    data: bytes,
    content_type: str | None = None,
    *,
    max_bytes: int = MAX_CONTACTS_BYTES,
) -> list[Contact]:
    """The contacts MicroSIP takes from a usersDirectory response, each with ``directory=True``
    and prepared as MicroSIP prepares them. See :func:`read_directory_response` for the rest."""
    return read_directory_response(data, content_type, max_bytes=max_bytes).contacts
