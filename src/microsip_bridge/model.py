"""The shared call types: events, directions, states, outcomes, calls and event records.

Standard library only: the daemon, the store, the API and the simulator all import these names.
The event names themselves are declared once, in :data:`microsip_bridge.wire.EVENT_NAMES`: the
hook must not pay for importing :mod:`enum` (about 5 ms, a third of its budget), so it works with
the plain names, and :class:`Event` is built on them.

**Call ids** (:func:`new_call_id`) are ``"c"`` + 12 hex digits of the call's first event time in
Unix milliseconds + 12 hex digits that are random (calls seen through the hooks) or derived from
the ``[Calls]`` slot and time (calls imported from MicroSIP's history, :func:`history_call_id`,
so that a second sweep finds the same id). 25 lower-case characters; sorting the ids as text
sorts the calls by start time (to the millisecond) until the year 10889.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import math
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field

from microsip_bridge.errors import BridgeError
from microsip_bridge.wire import EVENT_NAMES, SPOOL_VERSION, RecordError, check_record

SOURCE_HOOKS = "hooks"
SOURCE_HISTORY = "history"
CALL_SOURCES = (SOURCE_HOOKS, SOURCE_HISTORY)
EVENT_SOURCES = ("hook", "spool", "sweep")
CALL_ID_CHARS = 25


class Event(enum.StrEnum):
    """The call events MicroSIP can report, one per ``cmd*`` key (facts §2.1, §2.2)."""

    OUTGOING = EVENT_NAMES[0]
    INCOMING = EVENT_NAMES[1]
    RING = EVENT_NAMES[2]
    ANSWER = EVENT_NAMES[3]
    ANSWER_VIDEO = EVENT_NAMES[4]
    START = EVENT_NAMES[5]
    BUSY = EVENT_NAMES[6]
    END = EVENT_NAMES[7]


if tuple(e.value for e in Event) != EVENT_NAMES:  # pragma: no cover - a guard for editors
    raise ImportError("microsip_bridge.model.Event does not list wire.EVENT_NAMES in order")


class Direction(enum.StrEnum):
    """Who placed the call. ``UNKNOWN``: only events that both directions fire were seen (a lone
    ``start``, ``busy`` or ``end``); reconciliation with ``[Calls]`` may settle it."""

    INCOMING = "incoming"
    OUTGOING = "outgoing"
    UNKNOWN = "unknown"


class CallState(enum.StrEnum):
    """Where the call is now."""

    RINGING = "ringing"  # incoming, not answered yet
    DIALING = "dialing"  # outgoing, not connected yet
    CONNECTED = "connected"
    ENDED = "ended"


class Outcome(enum.StrEnum):
    """How a call ended: one enum, shared by the daemon, the store, the API and the docs."""

    ANSWERED = "answered"  # connected (either direction)
    MISSED = "missed"  # incoming rang and ended unanswered (the caller gave up or cancelled)
    DECLINED = "declined"  # incoming ended with cmdCallBusy: the user pressed Decline (486)
    REJECTED = "rejected"  # incoming with nothing after it: auto-rejected (DND, limits), by timeout
    ANSWERED_ELSEWHERE = "answered_elsewhere"  # [Calls] type 3 (reconciliation)
    BUSY = "busy"  # outgoing ended with cmdCallBusy (486/600/603)
    CANCELLED = "cancelled"  # outgoing ended before connecting (the user hung up)
    FAILED = "failed"  # outgoing ended before connecting with an error (404, 5xx...), per [Calls]
    UNKNOWN = "unknown"  # ended, but the events do not say how
    NOT_PLACED = "not_placed"  # a dial sent through the bridge that MicroSIP never placed


class Transition(enum.StrEnum):
    """What happened to a call, as rules (``on = [...]``) and webhooks (``call.<name>``) name
    it. Each fires at most once per call, when it first becomes true of the call
    (calls/transitions.py); the order here is the order they fire in within one change."""

    INCOMING = "incoming"  # an incoming call arrived (even one MicroSIP rejects at once)
    OUTGOING = "outgoing"  # MicroSIP placed an outgoing call
    RINGING = "ringing"  # an incoming call rang (never for one auto-answered without delay)
    ANSWERED = "answered"  # the call was answered (incoming: by us; outgoing: by them)
    CONNECTED = "connected"  # the call is connected (either direction, after answered)
    MISSED = "missed"  # ended: an incoming call nobody answered (outcome missed)
    BUSY = "busy"  # ended by cmdCallBusy: the party was busy (busy) or we declined (declined)
    ENDED = "ended"  # ended, however it ended (always the last)


def webhook_type(transition: Transition) -> str:
    """The webhook message type that reports ``transition``: ``call.ringing``..."""
    return f"call.{transition.value}"


def new_call_id(ts: float) -> str:
    """A fresh time-ordered call id for a call whose first event happened at ``ts``."""
    return _time_prefix(ts) + secrets.token_hex(6)


def history_call_id(key: int, time: int) -> str:
    """The id of the call imported from ``[Calls]`` slot ``key`` created at ``time``: the same
    pair always gives the same id, so importing an entry twice cannot make two calls."""
    tail = hashlib.blake2b(f"history:{key}:{time}".encode(), digest_size=6).hexdigest()
    return _time_prefix(float(time)) + tail


def _time_prefix(ts: float) -> str:
    ms = min(max(int(ts * 1000), 0), 16**12 - 1) if math.isfinite(ts) else 0
    return f"c{ms:012x}"


@dataclass(kw_only=True, slots=True)
class Call:
    """One call as the bridge knows it. Times are Unix seconds (the hook's clock).

    ``started_at`` is the time of the call's first event, ``answered_at`` of ``answer`` (incoming)
    or ``start`` (outgoing), ``ended_at`` of ``busy``/``end`` (or of the last event, for a call
    closed by a timeout), ``duration`` is ``ended_at - answered_at`` for an answered call.
    ``state == ENDED`` exactly when ``outcome`` is set. ``rang``: ``cmdCallRing`` fired (it
    tells a ringing call from one MicroSIP rejected at once, after a daemon restart too).
    ``auto_answered``: answered with no ring (MicroSIP's auto-answer without delay; with
    ``autoAnswerDelay`` it rings first and cannot be told from a manual answer, facts §2.2).
    The ``microsip_*`` fields are the ``[Calls]`` entry the call was reconciled with (or
    imported from): ring slot, entry time (Unix seconds; with the slot it names the entry, since
    slots are reused), type 0-3, status text, connected seconds.
    ``events`` are the uids of the events applied to the call. ``updated_at`` is the time of the
    last change (the latest event's time, or the ``now`` of the timeout that closed it).
    ``name`` is the caller's name and ``name_source`` where it came from (``microsip``: its
    Contacts.xml or its [Calls] entry, ``bridge``: the bridge's own contacts, ``crm``: the CRM
    lookup; empty: no name). ``number_key`` is :attr:`microsip_bridge.numbers.Number.key` of
    ``number`` (E.164 for a phone number), what the API's number filter compares.
    ``transitions``: the :class:`Transition` values already fired for the call, in order
    (None: the call predates them, and fires none for what it already is).
    """

    call_id: str
    direction: Direction
    number: str
    state: CallState
    started_at: float
    outcome: Outcome | None = None
    name: str = ""
    answered_at: float | None = None
    ended_at: float | None = None
    duration: float | None = None
    rang: bool = False
    auto_answered: bool = False
    video: bool = False
    microsip_key: int | None = None
    microsip_time: int | None = None
    microsip_type: int | None = None
    microsip_info: str | None = None
    microsip_duration: int | None = None
    disagreement: str | None = None
    source: str = SOURCE_HOOKS
    events: list[str] = field(default_factory=list)
    updated_at: float = 0.0
    name_source: str = ""
    number_key: str = ""
    transitions: list[str] | None = field(default_factory=list)

    @property
    def is_open(self) -> bool:
        """The call has not ended yet."""
        return self.state is not CallState.ENDED

    def copy(self) -> Call:
        """An independent copy (its own ``events`` list)."""
        # Field by field, not dataclasses.replace (five times slower): the daemon copies each
        # call it changes, on the writer thread.
        new = object.__new__(type(self))
        for name in _CALL_FIELD_NAMES:
            setattr(new, name, getattr(self, name))
        new.events = list(self.events)
        if self.transitions is not None:
            new.transitions = list(self.transitions)
        return new

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready dict of every field, enums as their values, in field order."""
        out: dict[str, object] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, enum.Enum):
                value = value.value
            elif isinstance(value, list):
                value = list(value)
            out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> Call:
        """The inverse of :meth:`to_dict` (unknown keys are ignored). BridgeError on bad values."""
        names = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in names}
        try:
            values["direction"] = Direction(str(values["direction"]))
            values["state"] = CallState(str(values["state"]))
            outcome = values.get("outcome")
            values["outcome"] = None if outcome is None else Outcome(str(outcome))
            events = values.get("events", [])
            if not isinstance(events, list) or not all(isinstance(e, str) for e in events):
                raise BridgeError("call events must be a list of event uids")
            values["events"] = list(events)
            fired = values.get("transitions", [])
            if fired is not None:
                if not isinstance(fired, list) or not all(isinstance(t, str) for t in fired):
                    raise BridgeError("call transitions must be a list of names")
                values["transitions"] = list(fired)
            return cls(**values)  # type: ignore[arg-type]
        except (KeyError, TypeError, ValueError) as exc:
            raise BridgeError(f"not a call record: {exc}") from None


_CALL_FIELD_NAMES = tuple(f.name for f in dataclasses.fields(Call))


@dataclass(frozen=True, slots=True)
class EventRecord:
    """One hook event as the daemon receives it: from the hook (``source="hook"``), the spool
    (``"spool"``) or a ``[Calls]`` sweep (``"sweep"``). ``ts`` is when the hook fired (Unix
    seconds), ``uid`` makes it idempotent, ``number`` is MicroSIP's text, verbatim (facts §2.4:
    may be empty, may be a domain for busy/end, may hold anything a SIP user part can)."""

    uid: str
    event: Event
    number: str
    ts: float
    pid: int | None = None
    source: str = "hook"

    @classmethod
    def from_spool(cls, record: object, source: str = "spool") -> EventRecord:
        """Validate a spool record (the hook's shape, also the ingestion endpoint's body):
        ``{"v": 1, "id": hex, "event": "ring", "number": "...", "ts": float, "pid": int}``.

        Unknown extra keys are ignored (a newer hook may add some); ``v`` must be 1 when given.
        Raises :class:`BridgeError` saying what is wrong.
        """
        if source not in EVENT_SOURCES:
            raise BridgeError(f"event source {source!r} is not one of {', '.join(EVENT_SOURCES)}")
        try:
            uid, event, number, ts, pid = check_record(
                dict(record) if isinstance(record, Mapping) else record
            )
        except RecordError as exc:
            raise BridgeError(str(exc), where=f"event {exc.uid}" if exc.uid else None) from None
        return cls(uid, Event(event), number, ts, pid, source)

    def to_spool(self) -> dict[str, object]:
        """The record in the hook's spool shape (what :meth:`from_spool` reads)."""
        return {
            "v": SPOOL_VERSION,
            "id": self.uid,
            "event": self.event.value,
            "number": self.number,
            "ts": self.ts,
            "pid": self.pid,
        }


@dataclass(frozen=True, slots=True)
class Happened:
    """One transition of one call: the call as it was saved (a copy), what happened, when
    (fired by calls/transitions.py; acted on by rules and webhooks)."""

    call: Call
    transition: Transition
    at: float
