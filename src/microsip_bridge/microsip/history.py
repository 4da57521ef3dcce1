"""MicroSIP's call history, the ``[Calls]`` ring buffer in microsip.ini: read, order, write, export.

This is the only module that knows the ``[Calls]`` format (facts §5). Every rule below was read in
MicroSIP's ``Calls.cpp`` (S22 ``CallsLoad``, ``CallDecode``, ``CallEncode``, ``GetNextKey``,
``OnMenuExport``; S14 for the older shape).

**Storage.** Keys ``0`` to ``999`` of ``[Calls]`` form a ring buffer; ``[Settings] callsLastKey``
is the key written last (``-1`` or absent: none yet). The next call goes to ``callsLastKey + 1``,
wrapping to ``0`` after ``999``, overwriting the oldest call. A value is
``number;name;type;time;duration;info`` with no escaping; a deleted call is the literal ``null``.

**Reading (what MicroSIP shows, and why we skip what it would not show).**

* MicroSIP reads keys ``0, 1, 2, ...`` and stops at the first key that is missing (or empty) *and*
  at least ``callsLastKey``. Calls stored beyond such a gap are never shown by MicroSIP. We do the
  same: they are left out and each is reported as "not reachable by MicroSIP (gap at key N)",
  unless ``include_unreachable=True`` asks to recover them (they are then included and still
  reported, with ``skipped=False``).
* ``null`` entries are deleted calls and are skipped silently. Keys that MicroSIP never asks for
  (``abc``, ``05``, ``-1``) and keys outside the ring (``1000`` and up, which MicroSIP never
  writes) are reported and skipped; so is a second ``[Calls]`` section (the profile API reads the
  first only).
* ``callsLastKey`` is read with ``_wtoi`` as MicroSIP does (``abc`` and an empty value mean 0,
  ``12x`` means 12), with a ``skipped=False`` problem when the text is not a plain number. A value
  of 1000 or more sends the next call to key 0, as in MicroSIP. A value below -1 would make
  MicroSIP write keys it never reads; we treat it as absent instead (and say so).
* MicroSIP reads each value into a 256-character buffer, so it sees only the first 255 UTF-16
  code units of a longer value. We read the value the same way: the entry keeps the cut text (a
  problem with ``skipped=False`` says so), or is skipped if the cut leaves it damaged.
* MicroSIP's own decoder never fails (``atoi`` turns rubbish into 0). Ours is strict: a value with
  fewer than 5 fields, a type/time/duration that is not a decimal number, a type outside 0-3, or a
  time or duration outside 0..2**31-1 is reported with its key and reason and skipped. Five fields
  (no ``info``) decode in MicroSIP as an entry with empty info, so we accept them too.
* A ``;`` inside the name (MicroSIP writes display names unescaped) shifts the fields, and
  MicroSIP then shows garbage. We detect it by finding ``type;time;duration`` further right, and
  report the entry, naming the name it would have, and skip it. MicroSIP also puts ``;`` in the
  number: a remote URI with parameters becomes ``user@host;transport=tcp`` (``Calls::Add``
  appends ``sipuri.parameters``). When the extra fields all look like ``name=value`` URI
  parameters after a host, the entry is recovered with them in its number, and a
  ``skipped=False`` note says MicroSIP misreads it. A ``;`` in ``info`` (the last field) is kept
  in the info text (MicroSIP's list shows only the part before it).

**Chronological order.** :attr:`CallHistory.entries` is oldest first, sorted by
``(time, ring position)``. The ring position of key ``k`` is ``(k - newest - 1) mod 1000``, where
``newest`` is ``callsLastKey``: the slot after the newest call holds the oldest one. So:

* calls are ordered by their Unix time, which is what MicroSIP's list does (it sorts by time);
* calls in the same second keep the order in which MicroSIP wrote them, across the 999 -> 0 wrap;
* when ``callsLastKey`` is absent (old versions and forks, e.g. the 2016 Microtalk file), the
  newest slot is the end of the first run of non-decreasing times in key order, which is how the
  versions that wrote such files found it (3.14 ``CallsLoad``), and the ring position counts from
  there. :attr:`CallHistory.next_key` is where MicroSIP 3.22 will write: after the first slot
  holding the greatest time (3.22 ``CallsLoad``). The two agree unless calls share the greatest
  time, in which case 3.22 overwrites one of them, and so does :func:`append_entry`;
* a call recorded after the clock was set back sorts by its own time, as in MicroSIP's list;
  :attr:`CallHistory.latest` still names the slot written last.

**Writing** (:func:`append_entry`, :func:`update_entry`, :func:`delete_entry`) follows
``Calls::Add``/``CallSave``/``SaveKey``: the entry goes to the next ring slot, then
``callsLastKey`` is set to that slot. Unlike MicroSIP, the writer keeps the file parseable, so
that what it writes reads back as written: a number with ``;``, a line break, NUL or a leading
quote is refused (:class:`UnsafeInputError`; the number is what a call is found by, so it is never
altered beyond dropping surrounding blanks); in name and info ``;`` becomes ``,`` (ASCII, so an
ANSI ini can hold it) and line breaks or NUL become a space, trailing blanks of info are dropped
(the profile API would trim them), and info then name are shortened so that the value fits
MicroSIP's 255-character read buffer.

**Exports** return text: our JSON and CSV (stable fields, see :func:`entry_record`), MicroSIP's
own CSV and XML export shapes (``Calls::OnMenuExport``: time and duration are written with
``%d``, i.e. Unix seconds and seconds), and a plain-text table.

Types: ``3`` (answered elsewhere) exists in MicroSIP 3.22 only; 3.19 and 3.20 show it as
outgoing (they clamp anything above 2 to 0).
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import enum
import io
import json
import math
import operator
import re
import time as _time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from microsip_bridge.errors import (
    BridgeError,
    FileFormatError,
    NotFoundError,
    UnsafeInputError,
)
from microsip_bridge.microsip.inifile import IniDocument
from microsip_bridge.tables import format_table

CALLS_SECTION = "Calls"
SETTINGS_SECTION = "Settings"
LAST_KEY_NAME = "callsLastKey"
RING_SIZE = 1000
# GetPrivateProfileString(..., ptr, 256, ...) in CallsLoad: 255 characters and the NUL.
READ_BUFFER = 256
MAX_VALUE_CHARS = READ_BUFFER - 1
DELETED = "null"
# MicroSIP keeps time and duration in a C int.
INT32_MAX = 2**31 - 1
INT32_MIN = -(2**31)
FIELDS = "number;name;type;time;duration;info"


class CallType(enum.IntEnum):
    """The ``type`` field of a ``[Calls]`` entry (facts §5).

    ``ANSWERED_ELSEWHERE`` (3) is written by MicroSIP 3.22 only; 3.19 and 3.20 read it as 0
    (outgoing), because they clamp any type above 2 to 0.
    """

    OUTGOING = 0
    INCOMING = 1
    MISSED = 2
    ANSWERED_ELSEWHERE = 3

    @property
    def label(self) -> str:
        """Our stable name: ``outgoing``, ``incoming``, ``missed``, ``answered_elsewhere``."""
        return self.name.lower()

    @property
    def export_code(self) -> str:
        """The word MicroSIP's CSV and XML exports use: ``out``, ``in``, ``miss``, ``else``."""
        return _EXPORT_CODES[self]

    @classmethod
    def parse(cls, text: str) -> CallType:
        """Read a type as a user may write it: our label, MicroSIP's export word, or the digit."""
        want = text.strip().lower().replace("-", "_").replace(" ", "_")
        for member in cls:
            if want in (member.label, member.export_code, str(member.value)):
                return member
        if want == "answered":  # "answered elsewhere" written loosely
            return cls.ANSWERED_ELSEWHERE
        choices = ", ".join(m.label for m in cls)
        raise BridgeError(f"unknown call type {text!r}; use one of {choices}")


_EXPORT_CODES = {
    CallType.OUTGOING: "out",
    CallType.INCOMING: "in",
    CallType.MISSED: "miss",
    CallType.ANSWERED_ELSEWHERE: "else",
}
_TYPES = tuple(CallType)


@dataclass(frozen=True, slots=True)
class CallEntry:
    """One call as MicroSIP stored it in ring slot ``key``.

    ``time`` is when MicroSIP created the entry (Unix seconds), ``duration`` the connected seconds
    (0 for unanswered calls) and ``info`` the final status text in MicroSIP's UI language.
    """

    key: int
    number: str
    name: str
    type: CallType
    time: int
    duration: int
    info: str = ""

    def __post_init__(self) -> None:
        given: object = self.type  # callers may pass the stored digit
        if not isinstance(given, CallType):
            object.__setattr__(self, "type", _call_type(given))
        for name in ("key", "time", "duration"):
            value: object = getattr(self, name)
            if not isinstance(value, int):
                raise BridgeError(f"call {name} must be a whole number, not {value!r}")
        if not 0 <= self.key < RING_SIZE:
            raise BridgeError(f"call key {self.key} is outside the ring 0-{RING_SIZE - 1}")
        if not 0 <= self.time <= INT32_MAX:
            raise BridgeError(f"call time {self.time} is outside 0..{INT32_MAX} (Unix seconds)")
        if not 0 <= self.duration <= INT32_MAX:
            raise BridgeError(f"call duration {self.duration} is outside 0..{INT32_MAX} seconds")

    @property
    def started_at(self) -> dt.datetime:
        """When MicroSIP created the entry, as an aware UTC datetime."""
        return dt.datetime.fromtimestamp(self.time, dt.UTC)


@dataclass(frozen=True, slots=True)
class HistoryProblem:
    """Something in ``[Calls]`` (or ``callsLastKey``) that a user should hear about.

    ``key`` is the ini key as written (``""`` for the whole section), ``raw`` the value as read.
    ``skipped`` is False when the entry is still in :attr:`CallHistory.entries` and this is a
    warning about it.
    """

    key: str
    reason: str
    raw: str
    skipped: bool = True
    section: str = CALLS_SECTION

    @property
    def where(self) -> str:
        return f"[{self.section}] key {self.key}" if self.key else f"[{self.section}]"

    def __str__(self) -> str:
        return f"{self.where}: {self.reason}"


@dataclass(frozen=True, slots=True)
class CallHistory:
    """The calls MicroSIP would show, oldest first, and what was wrong on the way.

    ``last_key`` is the slot written last (``callsLastKey``, or inferred when it is absent;
    ``-1`` when there is none) and ``next_key`` the slot the next call goes to (see the module
    docstring for how both are inferred when ``callsLastKey`` is absent).
    """

    entries: tuple[CallEntry, ...]
    problems: tuple[HistoryProblem, ...]
    last_key: int
    next_key: int
    last_key_inferred: bool = False

    def get(self, key: int) -> CallEntry | None:
        """The entry in ring slot ``key``, if it holds one."""
        for entry in self.entries:
            if entry.key == key:
                return entry
        return None

    @property
    def latest(self) -> CallEntry | None:
        """The entry MicroSIP wrote last (slot ``last_key``), which a ``cmdCallEnd`` hook reads
        to learn the outcome of the call that just ended (facts §5). None if that slot holds no
        call (deleted, damaged, or no history): it is never silently another call."""
        return self.get(self.last_key) if 0 <= self.last_key < RING_SIZE else None


_Fields = tuple[str, str, CallType, int, int, str]
_BY_TIME = operator.attrgetter("time")
_TYPE_DIGITS = {str(member.value): member for member in CallType}
(_SET_KEY, _SET_NUMBER, _SET_NAME, _SET_TYPE, _SET_TIME, _SET_DURATION, _SET_INFO) = (
    getattr(CallEntry, name).__set__
    for name in ("key", "number", "name", "type", "time", "duration", "info")
)


def _checked_entry(
    key: int, number: str, name: str, call_type: CallType, time: int, duration: int, info: str
) -> CallEntry:
    """A CallEntry from fields the reader has already checked, built without the dataclass
    ``__init__`` (which sets each field through ``object.__setattr__`` and checks them again).
    Reading a full ring sits on the hook's path, and this halves the cost of building entries."""
    entry: CallEntry = object.__new__(CallEntry)
    _SET_KEY(entry, key)
    _SET_NUMBER(entry, number)
    _SET_NAME(entry, name)
    _SET_TYPE(entry, call_type)
    _SET_TIME(entry, time)
    _SET_DURATION(entry, duration)
    _SET_INFO(entry, info)
    return entry


# --- reading ----------------------------------------------------------------------------------

_SLOT_KEY = re.compile(r"(?:0|[1-9][0-9]*)\Z")
# Key names exactly as MicroSIP asks for them (``key.Format(_T("%d"), i)``).
_SLOTS = {str(slot): slot for slot in range(RING_SIZE)}
# The shape MicroSIP writes (CallEncode "%s;%s;%d;%d;%d;%s"), matched in one step; anything else
# goes through the field-by-field reading that explains what is wrong.
_STANDARD = re.compile(r"([^;]*);([^;]*);([0-3]);([0-9]{1,10});([0-9]{1,10})(?:;(.*))?\Z", re.S)
_DECIMAL = re.compile(r"-?[0-9]+\Z")
# A SIP URI parameter as ParseSIPURI leaves it in the number: "transport=tcp", "user=phone".
_URI_PARAM = re.compile(r"[A-Za-z][A-Za-z0-9.!%*_+`'~-]*=[^\s;]*\Z")
_WTOI = re.compile(r"[ \t\n\v\f\r]*([+-]?)([0-9]*)")


def wtoi(text: str) -> int:
    """The integer MSVC's ``_wtoi`` reads from ``text``: leading blanks, a sign, digits, then
    anything; 0 when there are no digits; clamped to the int range on overflow. MicroSIP reads
    ``callsLastKey`` this way."""
    match = _WTOI.match(text)
    if match is None or not match.group(2):
        return 0
    digits = match.group(2).lstrip("0") or "0"
    magnitude = int(digits) if len(digits) <= 10 else INT32_MAX + 1
    value = -magnitude if match.group(1) == "-" else magnitude
    return max(INT32_MIN, min(INT32_MAX, value))


def _utf16_units(text: str) -> int:
    return len(text) + sum(1 for ch in text if ch > "\uffff")


def _cut_utf16(text: str, units: int) -> str:
    """The longest prefix of ``text`` that fits in ``units`` UTF-16 code units. A character
    outside the BMP that would be split is dropped whole, not left as half a surrogate pair."""
    if units <= 0:
        return ""
    if len(text) <= units // 2 or _utf16_units(text) <= units:
        return text
    used = 0
    for i, ch in enumerate(text):
        used += 2 if ch > "\uffff" else 1
        if used > units:
            return text[:i]
    return text


def _as_int(text: str) -> int | None:
    """A strict decimal (what MicroSIP's ``%d`` writes); huge digit strings map outside the int
    range instead of reaching ``int()`` (which refuses more than 4300 digits)."""
    if not _DECIMAL.match(text):
        return None
    if len(text) > 12:
        return INT32_MIN - 1 if text[0] == "-" else INT32_MAX + 1
    return int(text)


def _numbers(type_text: str, time_text: str, duration_text: str) -> tuple[CallType, int, int] | str:
    """The type, time and duration fields, or why they are not valid."""
    code = _as_int(type_text)
    if code is None:
        return f"type {type_text!r} is not a number"
    if not 0 <= code <= 3:
        return f"type {type_text} is not a call type (0-3); MicroSIP shows it as outgoing"
    when = _as_int(time_text)
    if when is None:
        return f"time {time_text!r} is not a number of Unix seconds"
    if not 0 <= when <= INT32_MAX:
        return f"time {time_text} is out of range (0 to {INT32_MAX})"
    duration = _as_int(duration_text)
    if duration is None:
        return f"duration {duration_text!r} is not a number of seconds"
    if not 0 <= duration <= INT32_MAX:
        return f"duration {duration_text} is out of range (0 to {INT32_MAX})"
    return _TYPES[code], when, duration


def _decode(value: str) -> tuple[_Fields | None, str | None]:
    """Split a value into its fields: ``(fields, None)``, ``(fields, note)`` for an entry read
    with a remark, or ``(None, reason)`` for a damaged one."""
    parts = value.split(";")
    count = len(parts)
    if count < 5:
        plural = "" if count == 1 else "s"
        return None, f"has {count} field{plural}, expected 6 ({FIELDS})"
    found = _numbers(parts[2], parts[3], parts[4])
    if not isinstance(found, str):
        return (parts[0], parts[1], *found, ";".join(parts[5:])), None
    # A ';' in the number or name moves type;time;duration to the right: find where they are.
    for shift in range(1, count - 4):
        moved = _numbers(parts[2 + shift], parts[3 + shift], parts[4 + shift])
        if isinstance(moved, str):
            continue
        extras = parts[1 : 1 + shift]
        looks_like_host = "@" in parts[0] or "." in parts[0]
        if looks_like_host and all(_URI_PARAM.match(extra) for extra in extras):
            number = ";".join(parts[: 1 + shift])
            info = ";".join(parts[5 + shift :])
            note = (
                f"the number carries SIP URI parameters ({';'.join(extras)}), whose ';' "
                f"shifts the fields: read as number {number!r}; MicroSIP itself misreads "
                "this entry"
            )
            return (number, parts[1 + shift], *moved, info), note
        name = ";".join(parts[1 : 2 + shift])
        return None, (
            f"a ';' inside the name shifts the fields (the name would be {name!r}); "
            "MicroSIP misreads this entry"
        )
    hint = "; a ';' in the name or number would shift the fields" if count > 6 else ""
    return None, found + hint


def _decode_entry(key: int, value: str) -> tuple[CallEntry | None, str | None]:
    """The entry in ring slot ``key`` (a note may come with it), or why it is damaged."""
    standard = _STANDARD.match(value)
    if standard is not None:
        number, name, code, when, duration, info = standard.groups()
        seconds, connected = int(when), int(duration)
        if seconds <= INT32_MAX and connected <= INT32_MAX:
            entry = _checked_entry(
                key, number, name, _TYPE_DIGITS[code], seconds, connected, info or ""
            )
            return entry, None
    fields, message = _decode(value)
    if fields is None:
        return None, message or "damaged entry"
    return _checked_entry(key, *fields), message


def parse_entry(key: int, value: str) -> CallEntry:
    """Decode one ``[Calls]`` value as MicroSIP reads it (first 255 characters).

    Raises :class:`FileFormatError` for a deleted (``null``) or damaged entry.
    """
    where = f"[{CALLS_SECTION}] key {key}"
    if not 0 <= key < RING_SIZE:
        raise FileFormatError(f"key {key} is outside the ring 0-{RING_SIZE - 1}", where=where)
    if value == DELETED:
        raise FileFormatError("the entry was deleted (null)", where=where)
    entry, message = _decode_entry(key, _cut_utf16(value, MAX_VALUE_CHARS))
    if entry is None:
        raise FileFormatError(message or "damaged entry", where=where)
    return entry


def _bad_key_reason(name: str) -> str:
    if _SLOT_KEY.match(name):
        return (
            f"key {name} is outside the ring 0-{RING_SIZE - 1}: MicroSIP never writes it and "
            "reads it only if every key below it is present"
        )
    if re.fullmatch(r"[+-]?[0-9]+", name):
        return f"key {name!r} is not written the way MicroSIP asks for keys, so it never reads it"
    return f"key {name!r} is not a ring slot (0-{RING_SIZE - 1})"


def _last_key_range_problem(last_key: int) -> HistoryProblem | None:
    if last_key < -1:
        return HistoryProblem(
            LAST_KEY_NAME,
            f"{last_key} is below -1: MicroSIP would write the next call to key "
            f"{last_key + 1}, which it never reads; the last key is inferred from the calls",
            str(last_key),
            skipped=False,
            section=SETTINGS_SECTION,
        )
    if last_key >= RING_SIZE:
        return HistoryProblem(
            LAST_KEY_NAME,
            f"{last_key} is beyond the ring (0-{RING_SIZE - 1}); MicroSIP writes the next call "
            "to key 0",
            str(last_key),
            skipped=False,
            section=SETTINGS_SECTION,
        )
    return None


def parse_history(
    items: Iterable[tuple[str, str]],
    last_key: int | None,
    *,
    include_unreachable: bool = False,
) -> CallHistory:
    """Read ``[Calls]`` from raw ``(key, value)`` pairs (values as the profile API returns them).

    ``last_key`` is ``callsLastKey`` as MicroSIP reads it (:func:`wtoi`), None when absent. The
    rules (reachability, damage, order) are in the module docstring. Never raises on bad data.
    """
    problems: list[HistoryProblem] = []
    values: dict[int, str] = {}
    for key_text, value in items:
        slot = _SLOTS.get(key_text)
        if slot is None:
            name = key_text.strip(" \t")
            slot = _SLOTS.get(name)
            if slot is None:
                if value and value != DELETED:
                    problems.append(HistoryProblem(name, _bad_key_reason(name), value))
                continue
        if slot in values:
            problems.append(
                HistoryProblem(str(slot), "written twice; MicroSIP reads only the first", value)
            )
        else:
            values[slot] = value

    pointer = -1 if last_key is None else last_key
    if last_key is not None and (range_problem := _last_key_range_problem(last_key)):
        problems.append(range_problem)
    # CallsLoad stops at the first missing (or empty) key that is >= callsLastKey.
    gap = next((g for g in range(RING_SIZE) if g >= pointer and not values.get(g)), None)

    entries: list[CallEntry] = []  # in slot order
    # Without callsLastKey: MicroSIP 3.22 takes the first key holding the greatest time as the
    # last one (CallsLoad); the versions that wrote such files wrote keys in rising order and
    # took the end of the first run of non-decreasing times (3.14 CallsLoad).
    greatest: tuple[int, int] | None = None  # (time, key)
    run_end, run_time, run_open = -1, 0, True
    for slot in sorted(values):
        value = values[slot]
        if not value or value == DELETED:
            continue
        reachable = gap is None or slot < gap
        if not reachable:
            problems.append(
                HistoryProblem(
                    str(slot),
                    f"not reachable by MicroSIP (gap at key {gap})",
                    value,
                    skipped=not include_unreachable,
                )
            )
            if not include_unreachable:
                continue
        read = value if len(value) <= MAX_VALUE_CHARS // 2 else _cut_utf16(value, MAX_VALUE_CHARS)
        entry, message = _decode_entry(slot, read)
        if entry is None:
            if read is not value:
                message = f"{message}, after MicroSIP's cut to {MAX_VALUE_CHARS} characters"
            problems.append(HistoryProblem(str(slot), message or "damaged entry", value))
            continue
        if message:
            problems.append(HistoryProblem(str(slot), message, value, skipped=False))
        if read is not value:
            problems.append(
                HistoryProblem(
                    str(slot),
                    f"the value is {_utf16_units(value)} characters long; MicroSIP reads only "
                    f"the first {MAX_VALUE_CHARS}, so the entry is cut",
                    value,
                    skipped=False,
                )
            )
        entries.append(entry)
        # CallsLoad remembers the first key holding the greatest time (strictly greater wins).
        if reachable:
            if entry.time > (0 if greatest is None else greatest[0]):
                greatest = (entry.time, slot)
            if run_open and entry.time >= run_time:
                run_end, run_time = slot, entry.time
            else:
                run_open = False

    inferred = last_key is None or last_key < 0
    newest = pointer
    next_key = newest + 1 if newest + 1 < RING_SIZE else 0
    if inferred:
        newest = run_end
        next_key = 0 if greatest is None else (greatest[1] + 1) % RING_SIZE
    # Ring order starts after the newest slot (the oldest call); the stable sort by time keeps it
    # for calls in the same second.
    oldest = (newest + 1) % RING_SIZE
    split = next((i for i, e in enumerate(entries) if e.key >= oldest), len(entries))
    ordered = entries[split:] + entries[:split]
    ordered.sort(key=_BY_TIME)
    return CallHistory(
        entries=tuple(ordered),
        problems=tuple(problems),
        last_key=newest,
        next_key=next_key,
        last_key_inferred=inferred,
    )


def _read_last_key(doc: IniDocument) -> tuple[int | None, HistoryProblem | None]:
    """``callsLastKey`` as MicroSIP reads it (``_wtoi``), and a problem if the text is not a
    plain whole number (MicroSIP then reads it as something the user may not expect)."""
    raw = doc.get(SETTINGS_SECTION, LAST_KEY_NAME)
    if raw is None:
        return None, None
    value = wtoi(raw)
    if _DECIMAL.match(raw) and len(raw) <= 12 and INT32_MIN <= int(raw) <= INT32_MAX:
        return value, None
    problem = HistoryProblem(
        LAST_KEY_NAME,
        f"{raw!r} is not a whole number; MicroSIP reads it as {value}",
        raw,
        skipped=False,
        section=SETTINGS_SECTION,
    )
    return value, problem


def read_history(doc: IniDocument, *, include_unreachable: bool = False) -> CallHistory:
    """The call history of a microsip.ini, as MicroSIP would show it (see the module docstring).

    Never raises on bad data: what cannot be read is in :attr:`CallHistory.problems`.
    """
    last_key, key_problem = _read_last_key(doc)
    history = parse_history(
        doc.items(CALLS_SECTION), last_key, include_unreachable=include_unreachable
    )
    extra: list[HistoryProblem] = []
    if key_problem is not None:
        extra.append(key_problem)
    if any(name.casefold() == CALLS_SECTION.casefold() for name in doc.duplicate_sections()):
        extra.append(
            HistoryProblem(
                "",
                "the section is written more than once; MicroSIP reads only the first",
                "",
            )
        )
    if not extra:
        return history
    return dataclasses.replace(history, problems=(*extra, *history.problems))


# --- writing ----------------------------------------------------------------------------------


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
    budget = MAX_VALUE_CHARS - _utf16_units(fixed)
    if budget < 0:
        raise UnsafeInputError(
            f"the call number is too long ({len(number)} characters): MicroSIP reads only "
            f"{MAX_VALUE_CHARS} characters of an entry"
        )
    name_units = _utf16_units(name)
    if name_units + _utf16_units(info) > budget:
        info = _cut_utf16(info, budget - name_units).rstrip(" \t")
        name = _cut_utf16(name, budget - _utf16_units(info))
    return f"{number};{name};{entry.type.value};{entry.time};{entry.duration};{info}"


def _read_pointer(doc: IniDocument) -> int:
    """The slot the next call goes to, as ``Calls::GetNextKey`` computes it."""
    last_key, _ = _read_last_key(doc)
    if last_key is None or last_key < 0:
        return read_history(doc).next_key
    return last_key + 1 if last_key + 1 < RING_SIZE else 0


def _epoch(when: int | dt.datetime | None) -> int:
    if when is None:
        return int(_time.time())
    if isinstance(when, dt.datetime):
        return math.floor(_timestamp(when, "call time"))
    return when


def _call_type(value: object) -> CallType:
    if isinstance(value, CallType):
        return value
    if isinstance(value, int) and 0 <= value < len(_TYPES):
        return _TYPES[value]
    raise BridgeError(f"call type {value!r} is not one of 0-3")


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
    key = _read_pointer(doc)
    entry = CallEntry(key, number, name, _call_type(type), _epoch(time), duration, info)
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
        type=current.type if type is None else _call_type(type),
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


def clear_history(doc: IniDocument) -> bool:
    """Delete every call as MicroSIP's "delete all" does: the ``[Calls]`` section goes, and
    ``callsLastKey`` stays, so the ring continues where it was."""
    return doc.remove_section(CALLS_SECTION)


# --- filtering --------------------------------------------------------------------------------


def _timestamp(when: dt.datetime, what: str) -> float:
    """Unix seconds of ``when``; a naive datetime is local time, as ``datetime.timestamp()``
    takes it."""
    try:
        return when.timestamp()
    except (OverflowError, OSError, ValueError) as exc:
        raise BridgeError(f"cannot use {when.isoformat()} as a {what}: {exc}") from None


def filter_entries(
    entries: Iterable[CallEntry],
    since: dt.datetime | None = None,
    types: Iterable[CallType | int] | None = None,
    number: str | None = None,
    *,
    until: dt.datetime | None = None,
    text: str | None = None,
) -> list[CallEntry]:
    """The entries that match every given condition, in their original order.

    * ``since`` (inclusive) and ``until`` (exclusive): when the call started; a naive datetime is
      taken as local time.
    * ``types``: the call types to keep.
    * ``number``: case-insensitive substring of the number field as stored (``"555"`` finds
      ``+15551234`` and ``5551234@pbx``; no digit normalisation, so ``"555-1"`` does not).
    * ``text``: MicroSIP's own search box: case-insensitive substring of the name or the number.
    """
    start = None if since is None else _timestamp(since, "start time")
    stop = None if until is None else _timestamp(until, "end time")
    wanted = None if types is None else {_call_type(t) for t in types}
    needle = None if number is None else number.casefold()
    words = None if text is None else text.casefold()
    out: list[CallEntry] = []
    for entry in entries:
        if start is not None and entry.time < start:
            continue
        if stop is not None and entry.time >= stop:
            continue
        if wanted is not None and entry.type not in wanted:
            continue
        if needle is not None and needle not in entry.number.casefold():
            continue
        if words is not None and not (
            words in entry.number.casefold() or words in entry.name.casefold()
        ):
            continue
        out.append(entry)
    return out


# --- exports ----------------------------------------------------------------------------------

_SURROGATE = re.compile("[\ud800-\udfff]")
# Characters XML 1.0 cannot carry at all, plus lone surrogates.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


def _text(value: str) -> str:
    """Text that encodes as UTF-8: a lone surrogate (kept by the ini reader) becomes U+FFFD."""
    return _SURROGATE.sub("\ufffd", value) if _SURROGATE.search(value) else value


def _iso(entry: CallEntry) -> str:
    return entry.started_at.strftime("%Y-%m-%dT%H:%M:%SZ")


def entry_record(entry: CallEntry) -> dict[str, str | int]:
    """The stable JSON object for one call.

    Keys, in this order: ``key`` (ring slot), ``number``, ``name``, ``type`` (``outgoing``,
    ``incoming``, ``missed``, ``answered_elsewhere``), ``type_code`` (0-3 as stored), ``time``
    (ISO 8601 UTC, ``2024-06-13T10:05:59Z``), ``timestamp`` (Unix seconds), ``duration``
    (connected seconds), ``info`` (MicroSIP's status text, in its UI language).
    """
    return {
        "key": entry.key,
        "number": _text(entry.number),
        "name": _text(entry.name),
        "type": entry.type.label,
        "type_code": int(entry.type),
        "time": _iso(entry),
        "timestamp": entry.time,
        "duration": entry.duration,
        "info": _text(entry.info),
    }


RECORD_FIELDS = (
    "key",
    "number",
    "name",
    "type",
    "type_code",
    "time",
    "timestamp",
    "duration",
    "info",
)


def to_json(entries: Iterable[CallEntry], *, indent: int | None = 2) -> str:
    """A JSON array of :func:`entry_record` objects, in the given order, non-ASCII kept."""
    return json.dumps([entry_record(e) for e in entries], ensure_ascii=False, indent=indent)


def to_csv(entries: Iterable[CallEntry]) -> str:
    """Our CSV: a header row of :data:`RECORD_FIELDS`, one row per call as in
    :func:`entry_record`, RFC 4180 quoting and CRLF line ends."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(RECORD_FIELDS)
    for entry in entries:
        record = entry_record(entry)
        writer.writerow([record[name] for name in RECORD_FIELDS])
    return out.getvalue()


def _ordered(entries: Iterable[CallEntry], newest_first: bool) -> list[CallEntry]:
    listed = list(entries)
    return listed[::-1] if newest_first else listed


def _microsip_csv_field(value: str) -> str:
    # CCSVFile::WriteData quotes a field only when it holds a comma or a double quote.
    if "," in value or '"' in value:
        return '"' + value.replace('"', '""') + '"'
    return value


def to_microsip_csv(entries: Iterable[CallEntry], *, newest_first: bool = True) -> str:
    """The CSV file MicroSIP's Calls tab exports (S22 ``Calls::OnMenuExport``), as text.

    The text starts with U+FEFF: encoded as UTF-8 it is byte for byte the file MicroSIP writes
    (UTF-8 with a BOM, facts §5). Columns ``Type,Name,Number,Time,Duration,Info``; Type is
    ``out``/``in``/``miss``/``else``; Time is Unix seconds and Duration seconds, both as plain
    integers (``str.Format(_T("%d"), ...)`` in the source); a field is quoted only when it holds
    a comma or a double quote (``CCSVFile::WriteData``). Rows end in CRLF: MicroSIP writes
    ``\\n`` to a file opened in text mode, which Windows turns into CRLF [inferred]. Give the
    entries oldest first (as :func:`read_history` returns them); MicroSIP exports its list
    order, newest first by default, hence ``newest_first``.
    """
    lines = ["Type,Name,Number,Time,Duration,Info"]
    for entry in _ordered(entries, newest_first):
        row = (
            entry.type.export_code,
            _text(entry.name),
            _text(entry.number),
            str(entry.time),
            str(entry.duration),
            _text(entry.info),
        )
        lines.append(",".join(_microsip_csv_field(field) for field in row))
    return "\ufeff" + "".join(line + "\r\n" for line in lines)


def _xml_attr(value: str) -> str:
    # CMarkup's x_TextToDoc escapes these five in attributes; a tab is kept as a reference so
    # that an XML reader does not turn it into a space, and characters XML 1.0 cannot carry
    # (MicroSIP would write them raw, making the file unreadable) become U+FFFD.
    value = _NOT_XML.sub("\ufffd", value) if _NOT_XML.search(value) else value
    return (
        value.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace("'", "&apos;")
        .replace('"', "&quot;")
        .replace("\t", "&#9;")
    )


def to_microsip_xml(entries: Iterable[CallEntry], *, newest_first: bool = True) -> str:
    """The XML file MicroSIP's Calls tab exports (S22 ``Calls::OnMenuExport``, CMarkup).

    ``<?xml version="1.0"?>``, then ``<calls>`` with one ``<call type name number time duration
    info/>`` per line, CRLF line ends, no indentation; ``<calls/>`` when empty. Encode as UTF-8
    without a BOM to get MicroSIP's bytes. Time and duration are plain integers (Unix seconds,
    seconds), type is ``out``/``in``/``miss``/``else``. Order as in :func:`to_microsip_csv`.
    """
    calls = _ordered(entries, newest_first)
    head = '<?xml version="1.0"?>\r\n'
    if not calls:
        return head + "<calls/>\r\n"
    rows = [
        f'<call type="{entry.type.export_code}" name="{_xml_attr(entry.name)}" '
        f'number="{_xml_attr(entry.number)}" time="{entry.time}" '
        f'duration="{entry.duration}" info="{_xml_attr(entry.info)}"/>\r\n'
        for entry in calls
    ]
    return head + "<calls>\r\n" + "".join(rows) + "</calls>\r\n"


def format_duration(seconds: int) -> str:
    """A duration as MicroSIP's list shows it (``MSIP::GetDuration``): ``M:SS`` or ``H:MM:SS``,
    and nothing for 0 (an unanswered call)."""
    if seconds <= 0:
        return ""
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def to_table(entries: Iterable[CallEntry], *, tz: dt.tzinfo = dt.UTC) -> str:
    """A plain-text table, one call per line, columns aligned on terminal width.

    Columns: Key, Time (``YYYY-MM-DD HH:MM:SS`` in ``tz``, UTC by default), Type, Duration
    (as :func:`format_duration`), Number, Name, Info. Lines end in ``\\n``, none after the last.
    """
    time_title = "Time (UTC)" if tz is dt.UTC else "Time"
    header = ("Key", time_title, "Type", "Duration", "Number", "Name", "Info")
    rows = [
        (
            str(entry.key),
            entry.started_at.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S"),
            entry.type.label,
            format_duration(entry.duration),
            entry.number,
            entry.name,
            entry.info,
        )
        for entry in entries
    ]
    return format_table(header, rows, right={0, 3})


EXPORTERS: dict[str, Callable[[Sequence[CallEntry]], str]] = {
    "table": to_table,
    "json": to_json,
    "csv": to_csv,
    "microsip-csv": to_microsip_csv,
    "microsip-xml": to_microsip_xml,
}


def export(entries: Iterable[CallEntry], fmt: str) -> str:
    """Export in one of :data:`EXPORTERS`' formats (the CLI's ``--format`` choices)."""
    try:
        exporter = EXPORTERS[fmt]
    except KeyError:
        raise BridgeError(
            f"unknown export format {fmt!r}; use one of {', '.join(EXPORTERS)}"
        ) from None
    return exporter(list(entries))
