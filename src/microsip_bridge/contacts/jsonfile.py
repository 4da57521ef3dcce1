"""Our JSON contacts format, whose import also reads MicroSIP's usersDirectory JSON (facts §4.6).

The format (``export_json``), stable across versions of this project: a JSON array, UTF-8, one
object per contact with exactly these keys in this order::

    name number firstname lastname phone mobile email address city state zip comment id info
        (strings; "" when empty)
    presence starred directory
        (booleans)
    extra
        (an object of strings: attributes MicroSIP does not know, kept from Contacts.xml)

Because it is a bare array of objects with MicroSIP's field names, the same document can be
served as a usersDirectory response: MicroSIP's JSON reader takes ``true``/``false`` for its
integer flags.

Import (``import_json``) accepts that format and the usersDirectory shapes: a bare array of
items or ``{"items": [...], "refresh": …, "silent": …, "presence": [...]}``; the number from
``number``, else ``phone``, else ``telephone``; ``presence``/``starred``/``directory`` as
booleans or integers (1 is on, as MicroSIP reads flags). Leniencies, as directory servers write
them: ``null`` is an empty value or an off flag, and a text field may be a JSON integer (an
extension such as ``1001``). Anything else of the wrong type is an error naming the item, and
keys we do not know are listed once in the report. Items without a number are skipped and
reported, as MicroSIP drops them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from microsip_bridge.contacts.importing import (
    ImportResult,
    check_size,
    clean_text,
    decode_text,
    finish,
)
from microsip_bridge.errors import FileFormatError, UnsafeInputError
from microsip_bridge.microsip.contact import FLAG_FIELDS, NUMBER_FIELDS, TEXT_FIELDS, Contact
from microsip_bridge.microsip.contacts_xml import check_storable

# usersDirectory's last fallback for the number (facts §4.6); "phone" is also a field of its own.
_NUMBER_ALIAS = "telephone"
_KNOWN = frozenset((*TEXT_FIELDS, *FLAG_FIELDS, "extra", _NUMBER_ALIAS))
_DIRECTORY_KEYS = frozenset(("items", "refresh", "silent", "presence"))


def contact_record(contact: Contact) -> dict[str, Any]:
    """One contact as our JSON format holds it (the API's contacts too), keys in order."""
    item: dict[str, Any] = {name: getattr(contact, name) for name in TEXT_FIELDS}
    item.update({name: bool(getattr(contact, name)) for name in FLAG_FIELDS})
    item["extra"] = dict(contact.extra)
    return item


def export_json(contacts: Iterable[Contact]) -> str:
    """The contacts in our JSON format (see the module docstring), ending in a newline: what
    ``json.dumps(items, ensure_ascii=False, indent=2)`` writes, built one contact at a time so
    that a large file never exists as a list of dicts as well (memory stays near the output's
    size)."""
    parts: list[str] = []
    for contact in contacts:
        item = contact_record(contact)
        parts.append("  " + json.dumps(item, ensure_ascii=False, indent=2).replace("\n", "\n  "))
    if not parts:
        return "[]\n"
    return "[\n" + ",\n".join(parts) + "\n]\n"


def import_json(data: bytes | str) -> ImportResult:
    """Read our JSON format or a usersDirectory JSON response into contacts.

    Raises ``FileFormatError`` for text that is not JSON, a document of another shape, or an
    item with a value of the wrong type (the message names the item, counted from 1).
    """
    check_size(data)
    result = ImportResult()
    text = decode_text(data, result) if isinstance(data, bytes) else data.removeprefix("\ufeff")
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise FileFormatError(
            f"not valid JSON: {exc.msg}", where=f"line {exc.lineno}, column {exc.colno}"
        ) from None
    except (ValueError, RecursionError) as exc:
        # Nesting deeper than the interpreter's stack, or an integer of thousands of digits.
        raise FileFormatError(f"not readable JSON: {type(exc).__name__}") from None
    items = _items(document, result)
    keys: set[str] = set()
    unknown: dict[str, list[int]] = {}
    for index, item in enumerate(items, start=1):
        if not isinstance(item, dict):
            raise FileFormatError(f"expected an object, got {_kind(item)}", where=f"item {index}")
        keys.update(item)
        for key in item:
            if key not in _KNOWN:
                unknown.setdefault(key, []).append(index)
        _read_item(index, item, result)
    for key, where in unknown.items():
        result.note(f"item {_ranges(where)}", f"key {key!r} is not a contact field; ignored")
    fields = (keys & (_KNOWN - {_NUMBER_ALIAS})) | set(NUMBER_FIELDS)
    result.fields = frozenset(fields)
    return result


def _items(document: object, result: ImportResult) -> list[object]:
    if isinstance(document, list):
        return document
    if isinstance(document, dict):
        if "items" not in document:
            raise FileFormatError(
                'expected an array of contacts or an object with "items", '
                f"got an object with keys {', '.join(sorted(map(repr, document)))}"
            )
        items = document["items"]
        if not isinstance(items, list):
            raise FileFormatError(f'"items" must be an array, got {_kind(items)}')
        presence = document.get("presence")
        if isinstance(presence, list) and presence:
            # Presence entries push BLF states to a running MicroSIP; they are not contacts.
            result.note("presence", f"{len(presence)} presence entries ignored (not contacts)")
        other = set(document) - _DIRECTORY_KEYS
        if other:
            result.note("document", f"keys ignored: {', '.join(sorted(map(repr, other)))}")
        return items
    raise FileFormatError(f"expected an array of contacts, got {_kind(document)}")


def _read_item(index: int, item: dict[str, object], result: ImportResult) -> None:
    values: dict[str, Any] = {}
    for name in TEXT_FIELDS:
        if name in item:
            values[name] = _text(index, name, item[name], result)
    for name in NUMBER_FIELDS:
        if name in values:
            values[name] = values[name].strip()
    # usersDirectory: number, else phone, else telephone (facts §4.6). The prepare step copies
    # phone itself; telephone exists only as a number alias.
    if not values.get("number") and not values.get("phone") and _NUMBER_ALIAS in item:
        values["number"] = _text(index, _NUMBER_ALIAS, item[_NUMBER_ALIAS], result).strip()
    for name in FLAG_FIELDS:
        if name in item:
            values[name] = _flag(index, name, item[name])
    if "extra" in item:
        values["extra"] = _extra(index, item["extra"], result)
    finish(Contact(**values), result, f"item {index}")


def _text(index: int, key: str, value: object, result: ImportResult) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return clean_text(value, result, f"item {index}, key {key!r}")
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise FileFormatError(f"{key!r} must be a string, got {_kind(value)}", where=f"item {index}")


def _flag(index: int, key: str, value: object) -> bool:
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value == 1
    raise FileFormatError(
        f"{key!r} must be a boolean or an integer, got {_kind(value)}", where=f"item {index}"
    )


def _extra(index: int, value: object, result: ImportResult) -> dict[str, str]:
    if not isinstance(value, dict):
        raise FileFormatError(
            f"'extra' must be an object, got {_kind(value)}", where=f"item {index}"
        )
    extra: dict[str, str] = {}
    for key, item in value.items():
        # They become Contacts.xml attributes: they must be XML names and not shadow a field.
        if key in _KNOWN or not _is_attribute_name(key):
            raise FileFormatError(
                f"'extra' key {key!r} cannot be a Contacts.xml attribute name",
                where=f"item {index}",
            )
        if not isinstance(item, str):
            raise FileFormatError(
                f"'extra' value {key!r} must be a string, got {_kind(item)}",
                where=f"item {index}",
            )
        extra[key] = clean_text(item, result, f"item {index}, extra {key!r}")
    return extra


def _is_attribute_name(name: str) -> bool:
    """Whether the Contacts.xml writer accepts ``name`` as an attribute (its rule, not a copy)."""
    try:
        check_storable([Contact(number="0", extra={name: ""})])
    except UnsafeInputError:
        return False
    return True


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _ranges(indexes: list[int]) -> str:
    """1,2,3,5 -> "1-3, 5": a short place for a note about many items."""
    spans: list[list[int]] = []
    for i in indexes:
        if spans and i == spans[-1][1] + 1:
            spans[-1][1] = i
        else:
            spans.append([i, i])
    parts = [str(a) if a == b else f"{a}-{b}" for a, b in spans]
    return ", ".join(parts)
