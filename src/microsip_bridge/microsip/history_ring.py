"""Writing MicroSIP's ``[Calls]`` ring as MicroSIP does: append, update, delete, clear.

The writers (:func:`append_entry`, :func:`update_entry`, :func:`delete_entry`) follow
``Calls::Add``/``CallSave``/``SaveKey``: the entry goes to the next ring slot, then
``callsLastKey`` is set to that slot. Unlike MicroSIP, the writer keeps the file parseable, so
that what it writes reads back as written: a number with ``;``, a line break, NUL or a leading
quote is refused (:class:`UnsafeInputError`; the number is what a call is found by, so it is never
altered beyond dropping surrounding blanks); in name and info ``;`` becomes ``,`` (ASCII, so an
ANSI ini can hold it) and line breaks or NUL become a space, trailing blanks of info are dropped
(the profile API would trim them), and info then name are shortened so that the value fits
MicroSIP's 255-character read buffer.

The simulator and the tests write with them; the bridge never writes a real MicroSIP's ``[Calls]``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import time as _time
from collections.abc import Callable

from microsip_bridge.errors import BridgeError, FileFormatError, NotFoundError, UnsafeInputError
from microsip_bridge.microsip.crt import fit_utf16, utf16_len
from microsip_bridge.microsip.history import (
    CALLS_SECTION,
    DELETED,
    LAST_KEY_NAME,
    MAX_VALUE_CHARS,
    RING_SIZE,
    SETTINGS_SECTION,
    CallEntry,
    CallType,
    call_type,
    parse_entry,
    read_history,
    read_next_key,
    unix_time,
)
from microsip_bridge.microsip.inifile import IniDocument


def _clean_text(text: str) -> str:
    """Name or info as the file can hold it: ``;`` would shift the fields, a line break would end
    the ini line, NUL would end MicroSIP's C string."""
    return (
        text.replace(";", ",").replace("\r\n", " ").replace("\r", " ").replace("\n", " ")
    ).replace("\x00", " ")


def _check_number(number: str) -> str:
    bad = next((ch for ch in (";", "\r", "\n", "\x00") if ch in number), None)
    if bad is not None:
        raise UnsafeInputError(
            f"a call number cannot contain {bad!r}: MicroSIP's [Calls] format has no escaping"
        )
    number = number.strip(" \t")
    if not number:
        raise UnsafeInputError("a call number cannot be empty: MicroSIP stores that as deleted")
    if number[0] in "\"'":
        # The profile API would take a quote at the start and one at the end as a quoted value.
        raise UnsafeInputError(f"a call number cannot start with a quote: {number!r}")
    return number


def format_entry(entry: CallEntry) -> str:
    """The ``[Calls]`` value for ``entry`` (``number;name;type;time;duration;info``).

    The number must be storable as it is (else :class:`UnsafeInputError`); name and info are
    cleaned as the module docstring says, then info and, if needed, name are shortened so that
    MicroSIP's 255-character read buffer holds the whole value. :func:`parse_entry` of the result
    gives back the entry with those cleaned fields.
    """
    number = _check_number(entry.number)
    name = _clean_text(entry.name)
    info = _clean_text(entry.info).rstrip(" \t")
    fixed = f"{number};;{entry.type.value};{entry.time};{entry.duration};"
    budget = MAX_VALUE_CHARS - utf16_len(fixed)
    if budget < 0:
        raise UnsafeInputError(
            f"the call number is too long ({len(number)} characters): MicroSIP reads only "
            f"{MAX_VALUE_CHARS} characters of an entry"
        )
    name_units = utf16_len(name)
    if name_units + utf16_len(info) > budget:
        info = fit_utf16(info, budget - name_units).rstrip(" \t")
        name = fit_utf16(name, budget - utf16_len(info))
    return f"{number};{name};{entry.type.value};{entry.time};{entry.duration};{info}"


def _epoch(when: int | dt.datetime | None) -> int:
    if when is None:
        return int(_time.time())
    if isinstance(when, dt.datetime):
        return math.floor(unix_time(when, "call time"))
    return when


def append_entry(
    doc: IniDocument,
    number: str,
    name: str,
    type: CallType | int = CallType.OUTGOING,
    time: int | dt.datetime | None = None,
    duration: int = 0,
    info: str = "",
) -> int:
    """Record a new call as MicroSIP does and return its ring slot.

    The entry goes to ``callsLastKey + 1`` (0 after 999, or after the newest call when
    ``callsLastKey`` is absent), overwriting the oldest call there, then ``callsLastKey`` is set
    to that slot. ``time`` defaults to now. The document is changed in memory only.
    """
    key = read_next_key(doc)
    entry = CallEntry(key, number, name, call_type(type), _epoch(time), duration, info)
    doc.set(CALLS_SECTION, str(key), format_entry(entry))
    doc.set(SETTINGS_SECTION, LAST_KEY_NAME, str(key))
    return key


def _current(doc: IniDocument, key: int) -> CallEntry:
    if not 0 <= key < RING_SIZE:
        raise BridgeError(f"call key {key} is outside the ring 0-{RING_SIZE - 1}")
    value = doc.get(CALLS_SECTION, str(key))
    if not value or value == DELETED:
        raise NotFoundError(
            f"no call in slot {key}", path=doc.path, where=f"[{CALLS_SECTION}] key {key}"
        )
    try:
        return parse_entry(key, value)
    except FileFormatError as exc:
        raise FileFormatError(exc.message, path=doc.path, where=exc.where) from None


def update_entry(
    doc: IniDocument,
    key: int,
    *,
    number: str | None = None,
    name: str | None = None,
    type: CallType | int | None = None,
    time: int | dt.datetime | None = None,
    duration: int | None = None,
    info: str | None = None,
) -> CallEntry:
    """Rewrite fields of the call in slot ``key`` in place, as ``CallSave`` does when a call's
    type, duration or status changes (``callsLastKey`` is not touched). Returns the entry as
    stored. :class:`NotFoundError` if the slot holds no call, :class:`FileFormatError` if it is
    damaged."""
    current = _current(doc, key)
    changed = dataclasses.replace(
        current,
        number=current.number if number is None else number,
        name=current.name if name is None else name,
        type=current.type if type is None else call_type(type),
        time=current.time if time is None else _epoch(time),
        duration=current.duration if duration is None else duration,
        info=current.info if info is None else info,
    )
    value = format_entry(changed)
    doc.set(CALLS_SECTION, str(key), value)
    return parse_entry(key, value)


def delete_entry(doc: IniDocument, key: int) -> bool:
    """Delete the call in slot ``key`` the way MicroSIP does: its value becomes ``null``.
    Returns False if there was no call there."""
    if not 0 <= key < RING_SIZE:
        raise BridgeError(f"call key {key} is outside the ring 0-{RING_SIZE - 1}")
    value = doc.get(CALLS_SECTION, str(key))
    if not value or value == DELETED:
        return False
    doc.set(CALLS_SECTION, str(key), DELETED)
    return True


def delete_matching(doc: IniDocument, match: Callable[[str], bool]) -> list[int]:
    """Delete (as MicroSIP does, :func:`delete_entry`) every call whose number ``match``
    accepts, damaged entries left alone; returns their slots, in ring order."""
    found = [e.key for e in read_history(doc).entries if match(e.number)]
    for key in sorted(found):
        delete_entry(doc, key)
    return sorted(found)


def clear_history(doc: IniDocument) -> bool:
    """Delete every call as MicroSIP's "delete all" does: the ``[Calls]`` section goes, and
    ``callsLastKey`` stays, so the ring continues where it was."""
    return doc.remove_section(CALLS_SECTION)
