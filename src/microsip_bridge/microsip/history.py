"""MicroSIP's call history, the ``[Calls]`` ring in microsip.ini: the model, reading, filtering.

This module and :mod:`history_ring` (which writes the ring) are the only ones that know the
``[Calls]`` format (facts §5); :mod:`history_formats` exports what is read here. Every rule below
was read in MicroSIP's ``Calls.cpp`` (S22 ``CallsLoad``, ``CallDecode``, ``GetNextKey``; S14 for
the older shape).

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
  code units of a longer value (a character outside the BMP cut in half leaves its high
  surrogate). We read the value the same way: the entry keeps the cut text (a problem with
  ``skipped=False`` says so), or is skipped if the cut leaves it damaged.
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
  time, in which case 3.22 overwrites one of them, and so does
  :func:`history_ring.append_entry`;
* a call recorded after the clock was set back sorts by its own time, as in MicroSIP's list;
  :attr:`CallHistory.latest` still names the slot written last.

Types: ``3`` (answered elsewhere) exists in MicroSIP 3.22 only; 3.19 and 3.20 show it as
outgoing (they clamp anything above 2 to 0).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import operator
import re
from collections.abc import Iterable
from dataclasses import dataclass

from microsip_bridge.errors import BridgeError, FileFormatError
from microsip_bridge.microsip.crt import INT_MAX, INT_MIN, truncate_utf16, utf16_len, wtoi
from microsip_bridge.microsip.inifile import IniDocument

CALLS_SECTION = "Calls"
SETTINGS_SECTION = "Settings"
LAST_KEY_NAME = "callsLastKey"
RING_SIZE = 1000
# GetPrivateProfileString(..., ptr, 256, ...) in CallsLoad: 255 characters and the NUL.
READ_BUFFER = 256
MAX_VALUE_CHARS = READ_BUFFER - 1
DELETED = "null"
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
            object.__setattr__(self, "type", call_type(given))
        for name in ("key", "time", "duration"):
            value: object = getattr(self, name)
            if not isinstance(value, int):
                raise BridgeError(f"call {name} must be a whole number, not {value!r}")
        if not 0 <= self.key < RING_SIZE:
            raise BridgeError(f"call key {self.key} is outside the ring 0-{RING_SIZE - 1}")
        if not 0 <= self.time <= INT_MAX:
            raise BridgeError(f"call time {self.time} is outside 0..{INT_MAX} (Unix seconds)")
        if not 0 <= self.duration <= INT_MAX:
            raise BridgeError(f"call duration {self.duration} is outside 0..{INT_MAX} seconds")

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


def call_type(value: object) -> CallType:
    """A :class:`CallType`, or the digit MicroSIP stores for one (0-3)."""
    if isinstance(value, CallType):
        return value
    if isinstance(value, int) and 0 <= value < len(_TYPES):
        return _TYPES[value]
    raise BridgeError(f"call type {value!r} is not one of 0-3")


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


def _as_int(text: str) -> int | None:
    """A strict decimal (what MicroSIP's ``%d`` writes); huge digit strings map outside the int
    range instead of reaching ``int()`` (which refuses more than 4300 digits)."""
    if not _DECIMAL.match(text):
        return None
    if len(text) > 12:
        return INT_MIN - 1 if text[0] == "-" else INT_MAX + 1
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
    if not 0 <= when <= INT_MAX:
        return f"time {time_text} is out of range (0 to {INT_MAX})"
    duration = _as_int(duration_text)
    if duration is None:
        return f"duration {duration_text!r} is not a number of seconds"
    if not 0 <= duration <= INT_MAX:
        return f"duration {duration_text} is out of range (0 to {INT_MAX})"
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
        if seconds <= INT_MAX and connected <= INT_MAX:
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
    entry, message = _decode_entry(key, truncate_utf16(value, MAX_VALUE_CHARS))
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
        # The short case inline: this runs for every slot, on the hook's path.
        read = (
            value if len(value) * 2 <= MAX_VALUE_CHARS else truncate_utf16(value, MAX_VALUE_CHARS)
        )
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
                    f"the value is {utf16_len(value)} characters long; MicroSIP reads only "
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
    if _DECIMAL.match(raw) and len(raw) <= 12 and INT_MIN <= int(raw) <= INT_MAX:
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


def read_next_key(doc: IniDocument) -> int:
    """The slot the next call goes to, as ``Calls::GetNextKey`` computes it (the
    :attr:`CallHistory.next_key` of :func:`read_history`, without reading the ring when
    ``callsLastKey`` gives it)."""
    last_key, _ = _read_last_key(doc)
    if last_key is None or last_key < 0:
        return read_history(doc).next_key
    return last_key + 1 if last_key + 1 < RING_SIZE else 0


# --- filtering --------------------------------------------------------------------------------


def unix_time(when: dt.datetime, what: str) -> float:
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
    start = None if since is None else unix_time(since, "start time")
    stop = None if until is None else unix_time(until, "end time")
    wanted = None if types is None else {call_type(t) for t in types}
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
