"""The call-state model: turns MicroSIP's bare hook events into calls with ids, states, outcomes.

MicroSIP tells us about a call only through eight events that carry the remote number and nothing
else (facts §2.2, §2.4): no call id, no direction, sometimes no number at all. The tracker groups
the events into calls and keeps each call's *facts*: the time of the first event of each kind it
received. Every call field is derived from those facts, never from the order they arrived in, so
a call comes out the same whatever order its events arrive in, and an event applied twice changes
nothing. What remains is deciding which call an event belongs to.

**Which call an event belongs to.** Candidates are first the calls whose number is the event's
number; then, only if none of those fits, the calls an empty or fallback number may stand for:

* an event with an empty number (MicroSIP passes nothing when the user part is empty, facts
  §2.4) may belong to any call;
* ``busy``/``end`` fall back to the *domain* when the user part is empty (S20/S22, facts §2.4),
  so a ``busy``/``end`` whose number matches no call may belong to a call with an empty number.

Among the candidates, three steps are tried in turn; within a step the best-ranked call wins,
then the oldest, then the smallest call id (which, unlike arrival order, survives a restart):

1. *forward*: a call for which this event is a next step:
   ``ring`` an incoming call that has neither rung nor been answered; ``answer`` an incoming
   call not answered yet, one that rang before one that got only ``incoming`` (auto-answer
   skips the ring, but a call that rang is the one the user picked up);
   ``answer-video`` an answered call without it (else, like ``answer``, one not answered yet);
   ``start`` an outgoing call not connected, or an answered incoming call (``start``
   follows ``answer`` within milliseconds); ``busy``/``end`` any open call: first one that rang
   or is dialing, then (``end``) a connected one, since a ringing call usually ends before a
   conversation does, and last an incoming call that got nothing after ``incoming`` (most likely
   rejected at once, e.g. a duplicate call, facts §2.2: no end will come). ``busy`` (486/600/603,
   an answer to the INVITE: declined or busy) prefers that lone incoming call to a connected one.
   With two calls from the same number at once the events cannot tell them apart; these rules
   make the count and the outcomes right, though the durations of two such calls may be swapped.
2. *attach*: a late event of a call that is already past it. Hook times are reliable (one
   clock, and MicroSIP waits for each hook before it fires the next, facts §2.3); what arrives
   out of order is the events (one spooled, the next sent straight to the daemon). So a late
   event joins a call only if it is dated inside the call's span, before the event that passed
   it (give or take :data:`CLOCK_SLACK`): ``incoming``/``outgoing`` for a call created by a
   later event (a ``ring``, ``start``, ``busy`` or ``end`` that arrived first, dated at most
   ``reorder_window``, 2 s, after it); ``ring`` for a call answered or ended without one;
   ``answer`` for a call connected by ``start`` (within ``reorder_window``) or ended unanswered;
   ``start`` for an incoming call not answered yet, or a call that ended unconnected (``end``
   arrived before ``start``). Late events re-derive the call: an outgoing call closed as
   cancelled becomes answered when its ``start`` turns up.
3. *repeat*: a second event of a kind the call already has, within ``reorder_window`` of the
   first or (call still open) after it (e.g. two ``ring`` for one call; a second
   ``busy``/``end`` within ``reorder_window`` of the end). It is recorded on the call (its uid
   joins ``events``) and changes nothing else. ``incoming`` and
   ``outgoing`` never repeat: MicroSIP fires them once per call, so a second one is a second
   call (MicroSIP rejects a duplicate INVITE after firing ``cmdIncomingCall`` for it).

An event no call accepts creates one: ``outgoing`` an outgoing call, ``incoming``/``ring``/
``answer`` an incoming call, ``start`` a connected call of unknown direction, and ``busy``/
``end`` an *ended* call of unknown direction and outcome (kept, not dropped: reconciliation with
``[Calls]`` may still tell what it was).

**Timeouts** (:meth:`CallTracker.expire`). An incoming call with nothing after ``incoming`` for
``reject_timeout`` seconds was rejected by MicroSIP (DND, limits, duplicates: facts §2.2 says
no other event follows) and is closed as ``REJECTED``. If an event of that call still arrives,
dated within that timeout, the rejection was wrong and is undone. A call open for longer than
``stale_timeout`` seconds is closed as ``UNKNOWN`` (an event lost); a ``busy``/``end`` that
arrives for it later still closes it properly.

**Dials through the bridge** (:meth:`CallTracker.open_dial`). A dial the bridge sends opens an
outgoing call at once, *pending*: not matched by any event but the ``outgoing`` that MicroSIP
fires for it, whose number is one of the numbers MicroSIP may report for that dial (after its
own rewriting, microsip/dialing.py) and which comes before the dial's deadline. That event binds
to the pending call (the oldest, if several wait for the same number): the call keeps its id and
takes the reported number. A pending call still unbound at its deadline (``dial_timeout``
seconds) is closed as ``NOT_PLACED``. Restarts keep it: a stored outgoing call with no event is a
pending dial, waiting for its own number until ``dial_timeout`` after it was opened.

**Restarts.** :meth:`CallTracker.load` takes the calls the store has (open ones, and those
ended in the last ``keep_closed`` seconds, for late and repeated events) and, best, the events
linked to them in the event log: the tracker then continues exactly as if it had never stopped.
Without the events it rebuilds the facts from the calls' fields, which is exact unless calls
from one number overlap. The daemon should ingest the spool before the first :meth:`expire`
after a start, or a call whose ``ring`` waits in the spool is first closed as rejected (and
reopened when the ring comes).

Not thread-safe: the daemon feeds it from one task. Times are Unix seconds from the hook's clock;
``expire(now)`` takes the same clock.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from microsip_bridge.errors import BridgeError
from microsip_bridge.model import (
    Call,
    CallState,
    Direction,
    Event,
    EventRecord,
    Outcome,
    new_call_id,
)

_TERMINAL = (Event.BUSY, Event.END)
# Events only an incoming call fires (answer: MicroSIP is the UAS, facts §2.2).
_INCOMING_ONLY = frozenset((Event.INCOMING, Event.RING, Event.ANSWER, Event.ANSWER_VIDEO))
_ANSWERS = (Event.ANSWER, Event.ANSWER_VIDEO)
# Hook times come from one clock and MicroSIP runs the hooks one after another (facts §2.3), so
# an event dated after the event that follows it is off by clock granularity at most.
CLOCK_SLACK = 0.05
# How many closed calls and event uids the tracker remembers (for late and duplicated events).
MAX_CLOSED = 10_000
MAX_UIDS = 200_000

# A matching step (CallTracker._find): the tracker, a call, the event's kind and time -> the
# call's rank, or None.
_Step = Callable[["CallTracker", "_Track", Event, float], int | None]


@dataclass(slots=True, eq=False)
class _Track:
    """A call and what the tracker knows about it beyond the call's own fields."""

    call: Call
    facts: dict[Event, float]  # event kind -> time of its first occurrence
    seq: int  # creation order
    base: Outcome | None = None  # the outcome the events alone give (reconciliation may refine)
    expired: Outcome | None = None  # REJECTED or UNKNOWN: closed by a timeout, not an event
    expired_at: float | None = None  # the ended_at the timeout gave
    pending: frozenset[str] | None = None  # a dial's numbers, until its `outgoing` binds
    deadline: float = math.inf  # when a pending dial is closed as never placed

    @property
    def answered(self) -> bool:
        return self.call.answered_at is not None

    @property
    def ended_by_event(self) -> bool:
        return Event.BUSY in self.facts or Event.END in self.facts

    @property
    def only_incoming(self) -> bool:
        """Nothing but ``incoming`` so far: the shape of a call MicroSIP rejected at once."""
        return self.call.direction is Direction.INCOMING and set(self.facts) <= {Event.INCOMING}

    def may_be(self, direction: Direction) -> bool:
        """Events of ``direction`` may join this call (its own events do not say otherwise)."""
        if direction is Direction.OUTGOING:
            if _INCOMING_ONLY.intersection(self.facts):
                return False
        elif Event.OUTGOING in self.facts:
            return False
        return self.call.direction in (direction, Direction.UNKNOWN)


def _facts_direction(facts: dict[Event, float]) -> Direction:
    if Event.OUTGOING in facts:
        return Direction.OUTGOING
    if _INCOMING_ONLY.intersection(facts):
        return Direction.INCOMING
    return Direction.UNKNOWN


def _facts_of(
    call: Call, known: dict[Event, float] | None = None
) -> tuple[dict[Event, float], Outcome | None, float | None]:
    """Rebuild a stored call's facts (and timeout closure) from its fields, after a restart.

    ``known`` are the facts from the call's own events in the event log, when the caller has
    them: exact. Otherwise they are guessed from the fields: times of events other than the
    first, the answer and the end are not stored, so the first event's time stands in for
    ``ring`` (it only matters for telling a repeated ``ring``).
    """
    facts: dict[Event, float] = {}
    start = call.started_at
    answered = call.answered_at
    if call.direction is Direction.OUTGOING:
        facts[Event.OUTGOING] = start
        if answered is not None:
            facts[Event.START] = answered
    elif call.direction is Direction.INCOMING:
        # An answered call with no ring that is not auto-answered was created by its answer.
        if answered is None or call.rang or call.auto_answered:
            facts[Event.INCOMING] = start
        if call.rang:
            facts[Event.RING] = start
        if answered is not None:
            # `start` follows `answer` within milliseconds: a restart between them is unlikely.
            facts[Event.ANSWER] = facts[Event.START] = answered
            if call.video:
                facts[Event.ANSWER_VIDEO] = answered
    elif answered is not None:
        facts[Event.START] = answered
    expired: Outcome | None = None
    expired_at: float | None = None
    if call.state is CallState.ENDED:
        ended = call.ended_at if call.ended_at is not None else call.updated_at
        outcome = call.outcome
        if outcome in (Outcome.REJECTED, Outcome.NOT_PLACED):
            expired, expired_at = outcome, ended
        elif outcome is Outcome.UNKNOWN and (
            call.direction is not Direction.UNKNOWN or answered is not None
        ):
            expired, expired_at = Outcome.UNKNOWN, ended  # closed as stale
        elif outcome in (Outcome.DECLINED, Outcome.BUSY):
            facts[Event.BUSY] = ended
        else:
            facts[Event.END] = ended
    if known:
        facts = dict(known)
        if any(k in known for k in _TERMINAL):
            expired = expired_at = None  # it ended by its own event, not by a timeout
    if not facts:
        facts[Event.END if call.state is CallState.ENDED else Event.START] = start
    return facts, expired, expired_at


def _is_pending_dial(call: Call, known: dict[Event, float] | None) -> bool:
    """A stored call that is a dial still waiting for its ``outgoing``: outgoing, open, and no
    event at all (every call the events made has at least one)."""
    return (
        call.direction is Direction.OUTGOING
        and call.is_open
        and call.answered_at is None
        and not call.events
        and not known
    )


def _terminal_outcome(direction: Direction, answered: bool, kind: Event) -> Outcome:
    if answered:
        return Outcome.ANSWERED
    busy = kind is Event.BUSY
    if direction is Direction.INCOMING:
        return Outcome.DECLINED if busy else Outcome.MISSED
    if direction is Direction.OUTGOING:
        return Outcome.BUSY if busy else Outcome.CANCELLED
    return Outcome.UNKNOWN


def _before(ts: float, moment: float | None) -> bool:
    """``ts`` is not after ``moment``, give or take the clock's granularity."""
    return moment is not None and ts <= moment + CLOCK_SLACK


class CallTracker:
    """Groups hook events into calls (see the module docstring for the rules).

    ``reject_timeout``: seconds after a lone ``incoming`` before the call counts as rejected.
    ``stale_timeout``: seconds after which a call still open is closed as ``UNKNOWN``.
    ``new_id(ts)`` makes a call id for a call whose first event is at ``ts``
    (default :func:`~microsip_bridge.model.new_call_id`).
    ``dial_timeout``: seconds a dial sent through the bridge waits for its ``outgoing`` event.
    ``reorder_window``: how far apart (seconds) events may be and still count as out of order
    or repeated rather than as another call. ``keep_closed``: how long (seconds, by the clock of
    :meth:`expire`) ended calls are remembered for late and repeated events.

    :meth:`feed`, :meth:`feed_many` and :meth:`expire` return *copies* of the calls they created
    or changed: the caller may keep, change and store them without touching the tracker. After
    changing a call outside (reconciliation), hand it back with :meth:`update`.
    """

    def __init__(
        self,
        reject_timeout: float = 15.0,
        stale_timeout: float = 4 * 3600,
        new_id: Callable[[float], str] | None = None,
        *,
        reorder_window: float = 2.0,
        keep_closed: float = 300.0,
        dial_timeout: float = 15.0,
    ) -> None:
        if not (
            reject_timeout > 0 and stale_timeout > 0 and reorder_window >= 0 and dial_timeout > 0
        ):
            raise BridgeError("call timeouts must be positive and the reorder window >= 0")
        self.reject_timeout = reject_timeout
        self.dial_timeout = dial_timeout
        self.stale_timeout = stale_timeout
        self.reorder_window = reorder_window
        self.keep_closed = max(keep_closed, 2 * reject_timeout, 2 * reorder_window)
        self._new_id = new_id or new_call_id
        self._tracks: dict[str, _Track] = {}
        self._open: dict[str, _Track] = {}  # the tracks of calls not ended
        self._by_number: dict[str, list[_Track]] = {}
        self._pending: dict[str, _Track] = {}  # dials waiting for their `outgoing`, by call id
        self._uids: OrderedDict[str, str] = OrderedDict()
        self._seq = 0

    # --- public API ---------------------------------------------------------------------------

    def load(
        self, calls: Iterable[Call], events: Iterable[tuple[str, Event | str, float]] = ()
    ) -> None:
        """Continue calls from the store after a restart: open calls, and (better) calls ended
        in the last ``keep_closed`` seconds, so that their late or repeated events still find
        them. A call already tracked under the same id is replaced.

        ``events`` are ``(call_id, event, ts)`` of the events linked to those calls in the event
        log. With them the tracker continues exactly where it stopped; without them it rebuilds
        what it knew from the calls' fields, which is exact unless calls from one number
        overlap."""
        known: dict[str, dict[Event, float]] = {}
        for call_id, name, ts in events:
            try:
                kind = Event(name)
            except ValueError:
                raise BridgeError(f"unknown event {name!r}", where=f"call {call_id}") from None
            facts_of_call = known.setdefault(call_id, {})
            facts_of_call[kind] = min(ts, facts_of_call.get(kind, ts))
        for call in calls:
            old = self._tracks.get(call.call_id)
            if old is not None:
                self._forget(old)
            if _is_pending_dial(call, known.get(call.call_id)):
                # A dial opened before the restart whose `outgoing` has not come (yet).
                self._add_pending(
                    call.copy(), frozenset({call.number}), call.started_at + self.dial_timeout
                )
                continue
            facts, expired, expired_at = _facts_of(call, known.get(call.call_id))
            track = _Track(call.copy(), facts, self._next_seq(), None, expired, expired_at)
            track.base = self._derive(track, apply=False)
            self._add(track)
            for uid in call.events:
                self._remember(uid, call.call_id)

    def open_dial(
        self,
        number: str,
        reported: Iterable[str],
        ts: float,
        *,
        timeout: float | None = None,
        call_id: str | None = None,
    ) -> Call:
        """Open a pending outgoing call for a dial the bridge is about to send (module
        docstring): ``number`` is the dialled target, ``reported`` the numbers MicroSIP's
        ``outgoing`` may carry for it, ``ts`` now. Returns (a copy of) the call, state DIALING,
        closed as ``NOT_PLACED`` by :meth:`expire` ``timeout`` seconds (default
        ``dial_timeout``) after ``ts`` unless its ``outgoing`` binds first."""
        if not math.isfinite(ts):
            raise BridgeError(f"dial time {ts!r} is not a number")
        numbers = frozenset(reported)
        if not numbers:
            raise BridgeError("a pending dial needs the number MicroSIP will report")
        call = Call(
            call_id=call_id or self._new_id(ts),
            direction=Direction.OUTGOING,
            number=number,
            state=CallState.DIALING,
            started_at=ts,
            updated_at=ts,
        )
        wait = self.dial_timeout if timeout is None else timeout
        return self._add_pending(call, numbers, ts + wait).call.copy()

    def cancel_dial(self, call_id: str, now: float) -> Call | None:
        """Close a pending dial as ``NOT_PLACED`` now (MicroSIP dropped it, or sending failed);
        returns the call, or None when it is not pending (any more)."""
        track = self._pending.get(call_id)
        if track is None:
            return None
        self._close_pending(track, now)
        return track.call.copy()

    def feed(self, rec: EventRecord) -> list[Call]:
        """Apply one event; returns the call it was applied to (a copy), or ``[]`` if its uid
        was seen before. The returned call's ``events`` ends with ``rec.uid``."""
        track = self._feed(rec)
        return [] if track is None else [track.call.copy()]

    def feed_many(self, recs: Iterable[EventRecord]) -> list[Call]:
        """Apply events in the order they happened (``ts``, then arrival): what a batch from the
        spool needs. Returns each call created or changed once, in its latest state, in the
        order they were first touched."""
        ordered = sorted(enumerate(recs), key=lambda pair: (pair[1].ts, pair[0]))
        changed: dict[str, _Track] = {}
        for _, rec in ordered:
            track = self._feed(rec)
            if track is not None:
                changed.setdefault(track.call.call_id, track)
        # One copy per call, of its latest state: a call gets several events in a batch.
        return [track.call.copy() for track in changed.values()]

    def _feed(self, rec: EventRecord) -> _Track | None:
        if not math.isfinite(rec.ts):
            raise BridgeError(f"event time {rec.ts!r} is not a number", where=f"event {rec.uid}")
        if rec.uid in self._uids:
            return None
        track = self._find(rec)
        if track is None:
            track = self._create(rec)
        else:
            # A repeat changes nothing, unless it is dated earlier than the first of its kind.
            self._apply(track, rec)
        self._remember(rec.uid, track.call.call_id)
        self._trim()
        return track

    def expire(self, now: float) -> list[Call]:
        """Close calls whose timeouts passed at ``now`` (rejected, stale); returns them."""
        closed: list[Call] = []
        for track in sorted(self._pending.values(), key=self._age):
            if now >= track.deadline:
                self._close_pending(track, now)
                closed.append(track.call.copy())
        for track in sorted(self._open_tracks(), key=self._age):
            call = track.call
            if track.pending is not None:
                continue
            if track.only_incoming and now - call.updated_at >= self.reject_timeout:
                track.expired = Outcome.REJECTED
            elif now - call.started_at >= self.stale_timeout:
                track.expired = Outcome.UNKNOWN
            else:
                continue
            # The call ended when we last heard of it; nothing says when exactly.
            track.expired_at = call.updated_at
            call.updated_at = max(call.updated_at, now)
            self._derive(track)
            closed.append(call.copy())
        self._prune(now)
        return closed

    def open_calls(self) -> list[Call]:
        """Copies of the calls not ended yet, oldest first."""
        return [t.call.copy() for t in sorted(self._open_tracks(), key=self._age)]

    def line_states(self) -> dict[str, CallState]:
        """Each number on a call not ended, with that call's state (connected wins over ringing
        and dialing). Read-only, and safe from another thread than the one feeding the tracker
        (the directory's presence): the open calls are copied in one step and two fields read
        from each, so the answer may be one event behind, never torn."""
        for _ in range(3):
            try:
                tracks = list(self._open.values())
                break
            except RuntimeError:  # changed size during the copy: take it again
                continue
        else:
            return {}
        states: dict[str, CallState] = {}
        for track in tracks:
            number, state = track.call.number, track.call.state
            busy = states.get(number) is CallState.CONNECTED
            if number and state is not CallState.ENDED and not busy:
                states[number] = state
        return states

    def get(self, call_id: str) -> Call | None:
        """A copy of a call the tracker still remembers."""
        track = self._tracks.get(call_id)
        return None if track is None else track.call.copy()

    def call_id_of(self, uid: str) -> str | None:
        """The call an event (by uid) was applied to, while the tracker remembers it."""
        return self._uids.get(uid)

    def annotate(self, call: Call) -> None:
        """Keep what was added to a copy of a tracked call outside the state model (its name and
        where it came from, its normalised number, the transitions fired), so that the copies
        of its next changes carry them. Untracked calls are ignored."""
        track = self._tracks.get(call.call_id)
        if track is None:
            return
        kept = track.call
        kept.name = call.name
        kept.name_source = call.name_source
        kept.number_key = call.number_key
        kept.transitions = None if call.transitions is None else list(call.transitions)

    def update(self, call: Call) -> bool:
        """Take ``call`` (a copy from this tracker, changed outside it, e.g. by
        :func:`~microsip_bridge.calls.reconcile.apply_history`) as the tracker's version, so later
        events keep its name, ``microsip_*`` fields and refined outcome. The tracker's facts stay:
        a later event still re-derives times and states. Returns False if the call is not
        tracked (any more)."""
        track = self._tracks.get(call.call_id)
        if track is None:
            return False
        events = list(track.call.events)
        known = set(events)
        events.extend(uid for uid in call.events if uid not in known)
        new = call.copy()
        new.events = events
        if new.number != track.call.number:
            self._unindex(track)
            track.call = new
            self._index(track)
        else:
            track.call = new
        # The given outcome refines what the events say about the call as it now stands (its
        # direction may have been settled by [Calls]); only a later event may overrule it.
        track.base = self._derive(track, apply=False)
        self._derive(track)
        return True

    # --- matching -----------------------------------------------------------------------------

    def _find(self, rec: EventRecord) -> _Track | None:
        """The call ``rec`` belongs to, if any (module docstring)."""
        kind, ts = rec.event, rec.ts
        if kind is Event.OUTGOING and self._pending:
            dial = self._pending_for(rec)
            if dial is not None:
                return dial
        for pool in self._pools(rec):
            for step in _STEPS[kind]:
                best: tuple[tuple[int, float, str], _Track] | None = None
                for track in pool:
                    rank = step(self, track, kind, ts)
                    if rank is None:
                        continue
                    # Ties go by call id, which survives a restart (creation order does not).
                    key = (rank, track.call.started_at, track.call.call_id)
                    if best is None or key < best[0]:
                        best = (key, track)
                if best is not None:
                    return best[1]
        return None

    def _pending_for(self, rec: EventRecord) -> _Track | None:
        """The oldest pending dial that ``rec`` (an ``outgoing``) is the event of: its number is
        one MicroSIP may report for the dial, dated after the dial was opened (give or take the
        clock's granularity) and before its deadline."""
        fits = [
            t
            for t in self._pending.values()
            if t.pending is not None
            and rec.number in t.pending
            and t.call.started_at - CLOCK_SLACK <= rec.ts <= t.deadline
        ]
        return min(fits, key=self._age, default=None)

    def _pools(self, rec: EventRecord) -> list[list[_Track]]:
        exact = self._by_number.get(rec.number, [])
        if rec.number == "":
            others = [t for num, ts in self._by_number.items() if num != "" for t in ts]
            return [exact, others]
        if rec.event in _TERMINAL:
            return [exact, self._by_number.get("", [])]
        return [exact]

    # --- the steps: each gives a call's rank for an event of `kind` dated `ts` (lower wins),
    # or None when the call is not one for that step. _STEPS lists them by kind, in order.
    # A late event must be dated inside the span of the call it joins: hook times are reliable
    # (MicroSIP waits for each hook before it fires the next, facts §2.3); it is the arrival
    # that may be out of order (one event spooled, the next sent straight).

    def _live(self, t: _Track, ts: float) -> bool:
        if t.call.is_open:
            return True
        # A timeout's rejection is undone by an event dated within that timeout.
        return (
            t.expired is Outcome.REJECTED
            and t.expired_at is not None
            and ts <= t.expired_at + self.reject_timeout
        )

    def _inside(self, t: _Track, ts: float) -> bool:
        return ts >= t.call.started_at - (
            self.reorder_window if Event.INCOMING in t.facts else math.inf
        )

    def _repeat(self, t: _Track, kind: Event, ts: float) -> int | None:
        # A second one of a kind for a call that has it: near the first, or later while the
        # call goes on (no other call wanted it; a call of its own would lack its origin).
        first = t.facts.get(kind)
        if first is None:
            return None
        near = abs(ts - first) <= self.reorder_window
        return 0 if near or (t.call.is_open and ts >= first) else None

    def _origin_attach(self, t: _Track, kind: Event, ts: float) -> int | None:
        # A call created by a later event, whose `incoming`/`outgoing` arrives now.
        direction = Direction.OUTGOING if kind is Event.OUTGOING else Direction.INCOMING
        if kind in t.facts or not t.may_be(direction):
            return None
        first = t.call.started_at
        return 0 if _before(ts, first) and first - ts <= self.reorder_window else None

    def _ring_forward(self, t: _Track, kind: Event, ts: float) -> int | None:
        ok = (
            self._live(t, ts)
            and t.call.direction is Direction.INCOMING
            and kind not in t.facts
            and not t.answered
            and not t.ended_by_event
        )
        return 0 if ok else None

    def _ring_attach(self, t: _Track, kind: Event, ts: float) -> int | None:
        if kind in t.facts or not t.may_be(Direction.INCOMING) or not self._inside(t, ts):
            return None
        passed = [v for v in (t.call.answered_at, t.call.ended_at) if v is not None]
        return 0 if passed and _before(ts, min(passed)) else None

    def _answer_forward(self, t: _Track, kind: Event, ts: float) -> int | None:
        ok = (
            self._live(t, ts)
            and t.call.direction is Direction.INCOMING
            and kind not in t.facts
            and not t.ended_by_event
        )
        if not ok:
            return None
        video = kind is Event.ANSWER_VIDEO
        if t.answered:
            # answer-video comes with (right after) its call's answer (facts §2.2).
            return 0 if video and Event.ANSWER in t.facts else None
        # A call that rang before one that got only `incoming` (likely rejected).
        return (1 if video else 0) + (0 if Event.RING in t.facts else 1)

    def _answer_attach(self, t: _Track, kind: Event, ts: float) -> int | None:
        if kind in t.facts or not t.may_be(Direction.INCOMING) or not self._inside(t, ts):
            return None
        answered_at, ended_at = t.call.answered_at, t.call.ended_at
        if answered_at is not None:
            return 0 if abs(ts - answered_at) <= self.reorder_window else None
        return 0 if _before(ts, ended_at) else None

    def _start_forward(self, t: _Track, kind: Event, ts: float) -> int | None:
        if not self._live(t, ts) or kind in t.facts or t.ended_by_event:
            return None
        direction = t.call.direction
        if direction is Direction.OUTGOING and not t.answered:
            return 0
        return 0 if direction is Direction.INCOMING and t.answered else None

    def _start_attach(self, t: _Track, kind: Event, ts: float) -> int | None:
        if kind in t.facts or not self._inside(t, ts):
            return None
        answered_at, ended_at = t.call.answered_at, t.call.ended_at
        if answered_at is not None:
            return 0 if abs(ts - answered_at) <= self.reorder_window else None
        if self._live(t, ts) and t.call.direction is Direction.INCOMING:
            return 0  # `start` before `answer`
        return 0 if _before(ts, ended_at) else None

    def _end_forward(self, t: _Track, kind: Event, ts: float) -> int | None:
        if t.ended_by_event:
            return None
        if not self._live(t, ts):
            # A call closed as stale still gets its real end, while remembered.
            return 3 if t.expired is Outcome.UNKNOWN else None
        busy = kind is Event.BUSY
        if t.only_incoming:
            # Most likely rejected at once (no end will come); but a connected call never
            # gets a busy (486/600/603 are answers to an INVITE).
            return 1 if busy else 2
        if t.answered:
            # A ringing call usually ends (the caller gives up) before a conversation does.
            return 2 if busy else 1
        return 0

    def _end_repeat(self, t: _Track, kind: Event, ts: float) -> int | None:
        ended_at = t.call.ended_at
        ok = t.ended_by_event and ended_at is not None and abs(ts - ended_at) <= self.reorder_window
        return 0 if ok else None

    # --- changing calls -----------------------------------------------------------------------

    def _create(self, rec: EventRecord) -> _Track:
        kind = rec.event
        if kind is Event.OUTGOING:
            direction = Direction.OUTGOING
        elif kind in _INCOMING_ONLY:
            direction = Direction.INCOMING
        else:
            direction = Direction.UNKNOWN
        call = Call(
            call_id=self._new_id(rec.ts),
            direction=direction,
            number=rec.number,
            state=CallState.RINGING,
            started_at=rec.ts,
            events=[rec.uid],
            updated_at=rec.ts,
        )
        track = _Track(call, {kind: rec.ts}, self._next_seq())
        self._derive(track)
        self._add(track)
        return track

    def _apply(self, track: _Track, rec: EventRecord) -> None:
        kind, ts = rec.event, rec.ts
        if track.pending is not None:
            # The dial's own `outgoing`: from now on an ordinary call, under the number
            # MicroSIP reports (the user part after its rewriting).
            self._pending.pop(track.call.call_id, None)
            track.pending = None
            track.deadline = math.inf
            track.call.number = rec.number
            self._index(track)
        if kind not in _TERMINAL and all(k in _TERMINAL for k in track.facts):
            # A call known only from busy/end may carry the domain (facts §2.4); the user part
            # from its other events is the number to keep.
            self._unindex(track)
            track.call.number = rec.number
            self._index(track)
        first = track.facts.get(kind)
        track.facts[kind] = ts if first is None else min(first, ts)
        # An event undoes a timeout's guess: any event after a rejection, an end after stale.
        undo = Outcome.UNKNOWN if kind in _TERMINAL else Outcome.REJECTED
        if track.expired in (Outcome.REJECTED, undo) and kind is not Event.INCOMING:
            track.expired = track.expired_at = None
        track.call.events.append(rec.uid)
        track.call.updated_at = max(track.call.updated_at, ts)
        self._derive(track)

    def _derive(self, track: _Track, *, apply: bool = True) -> Outcome | None:
        """Set the call's fields from its facts; returns the outcome the events alone give.
        With ``apply=False`` only computes that outcome (for calls loaded from the store)."""
        facts, call = track.facts, track.call
        direction = _facts_direction(facts)
        if direction is Direction.UNKNOWN:
            direction = call.direction  # maybe settled by reconciliation
        if direction is Direction.INCOMING:
            answers = [facts[k] for k in (*_ANSWERS, Event.START) if k in facts]
        else:
            answers = [facts[Event.START]] if Event.START in facts else []
        # Without answer events a call may still have been answered per [Calls].
        answered_at = min(answers) if answers else call.answered_at
        ended = [(facts[k], k) for k in _TERMINAL if k in facts]
        duration: float | None = None
        ended_at: float | None
        if ended:
            ended_at, kind = min(ended)
            base: Outcome | None = _terminal_outcome(direction, answered_at is not None, kind)
            state = CallState.ENDED
            if answered_at is not None:
                duration = max(0.0, ended_at - answered_at)
        elif track.expired is not None:
            base, state = track.expired, CallState.ENDED
            if call.state is CallState.ENDED and call.ended_at is not None:
                # Closed before: keep its end and duration (reconciliation may have set them).
                ended_at, duration = call.ended_at, call.duration
            else:
                ended_at = track.expired_at
        else:
            base, ended_at = None, None
            if answered_at is not None:
                state = CallState.CONNECTED
            elif direction is Direction.INCOMING:
                state = CallState.RINGING
            else:
                state = CallState.DIALING
        if not apply:
            return base
        if base != track.base:
            call.outcome = base
            track.base = base
        elif state is CallState.ENDED and call.outcome is None:
            call.outcome = base
        if state is not CallState.ENDED:
            call.outcome = None
        call.direction = direction
        call.state = state
        self._mark(track)
        # Reconciliation may have moved the start earlier than any event seen.
        call.started_at = min(call.started_at, *facts.values()) if facts else call.started_at
        call.answered_at = answered_at
        call.ended_at = ended_at
        call.duration = duration
        call.rang = Event.RING in facts
        call.video = Event.ANSWER_VIDEO in facts
        call.auto_answered = (
            direction is Direction.INCOMING
            and answered_at is not None
            and Event.INCOMING in facts
            and Event.RING not in facts
        )
        return base

    # --- bookkeeping --------------------------------------------------------------------------

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    @staticmethod
    def _age(track: _Track) -> tuple[float, str]:
        return (track.call.started_at, track.call.call_id)

    def _open_tracks(self) -> list[_Track]:
        return list(self._open.values())

    def _mark(self, track: _Track) -> None:
        if track.call.is_open:
            self._open[track.call.call_id] = track
        else:
            self._open.pop(track.call.call_id, None)

    def _add(self, track: _Track) -> None:
        self._tracks[track.call.call_id] = track
        self._mark(track)
        if track.pending is None:
            self._index(track)
        else:
            # Not indexed by number: only its own `outgoing` may join it (_pending_for).
            self._pending[track.call.call_id] = track

    def _add_pending(self, call: Call, numbers: frozenset[str], deadline: float) -> _Track:
        track = _Track(call, {}, self._next_seq(), pending=numbers, deadline=deadline)
        self._add(track)
        return track

    def _close_pending(self, track: _Track, now: float) -> None:
        self._pending.pop(track.call.call_id, None)
        # It ended when the bridge gave up on it: at the deadline, or now if sooner.
        track.expired_at = max(track.call.started_at, min(now, track.deadline))
        track.expired = Outcome.NOT_PLACED
        track.pending = None
        track.deadline = math.inf
        track.call.updated_at = max(track.call.updated_at, now)
        self._derive(track)

    def _index(self, track: _Track) -> None:
        self._by_number.setdefault(track.call.number, []).append(track)

    def _unindex(self, track: _Track) -> None:
        pool = self._by_number.get(track.call.number)
        if pool is None:
            return
        pool[:] = [t for t in pool if t is not track]
        if not pool:
            del self._by_number[track.call.number]

    def _forget(self, track: _Track) -> None:
        self._unindex(track)
        self._pending.pop(track.call.call_id, None)
        self._tracks.pop(track.call.call_id, None)
        self._open.pop(track.call.call_id, None)

    def _remember(self, uid: str, call_id: str) -> None:
        self._uids[uid] = call_id
        while len(self._uids) > MAX_UIDS:
            self._uids.popitem(last=False)

    def _prune(self, now: float) -> None:
        """Forget ended calls that closed more than ``keep_closed`` seconds before ``now``."""
        limit = now - self.keep_closed
        for track in [t for t in self._tracks.values() if not t.call.is_open]:
            if track.call.updated_at < limit:
                self._forget(track)

    def _trim(self) -> None:
        """Bound the memory of ended calls when :meth:`expire` is not called often."""
        if len(self._tracks) - len(self._open) <= MAX_CLOSED:
            return
        closed = [t for t in self._tracks.values() if not t.call.is_open]
        if len(closed) <= MAX_CLOSED:
            return
        closed.sort(key=lambda t: (t.call.updated_at, t.seq))
        # Down to 90 %, so that the sort runs once per thousand calls, not per event.
        for track in closed[: len(closed) - MAX_CLOSED * 9 // 10]:
            self._forget(track)


# The steps that find the call of an event, by its kind, tried in order: forward, attach, repeat
# (module docstring).
_STEPS: dict[Event, tuple[_Step, ...]] = {
    Event.OUTGOING: (CallTracker._origin_attach,),
    Event.INCOMING: (CallTracker._origin_attach,),
    Event.RING: (CallTracker._ring_forward, CallTracker._ring_attach, CallTracker._repeat),
    Event.ANSWER: (CallTracker._answer_forward, CallTracker._answer_attach, CallTracker._repeat),
    Event.ANSWER_VIDEO: (
        CallTracker._answer_forward,
        CallTracker._answer_attach,
        CallTracker._repeat,
    ),
    Event.START: (CallTracker._start_forward, CallTracker._start_attach, CallTracker._repeat),
    Event.BUSY: (CallTracker._end_forward, CallTracker._end_repeat),
    Event.END: (CallTracker._end_forward, CallTracker._end_repeat),
}
