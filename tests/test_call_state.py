"""The call-state model: every hook sequence of facts §2.2 becomes the right calls, whatever the
arrival order, duplicates or daemon restarts."""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st

from microsip_bridge.calls import state
from microsip_bridge.calls.state import CallTracker
from microsip_bridge.errors import BridgeError
from microsip_bridge.model import (
    CALL_ID_CHARS,
    Call,
    CallState,
    Direction,
    Event,
    EventRecord,
    Outcome,
    history_call_id,
    new_call_id,
)
from microsip_bridge.wire import MAX_NUMBER_CHARS, make_record

T0 = 1_750_000_000.0
IN, OUT, UNK = Direction.INCOMING, Direction.OUTGOING, Direction.UNKNOWN
ANSWERED, MISSED, DECLINED, REJECTED = (
    Outcome.ANSWERED,
    Outcome.MISSED,
    Outcome.DECLINED,
    Outcome.REJECTED,
)
UIDS = itertools.count(1)

Step = tuple[str, str, float]  # (event, number, seconds after T0)


class Feeder:
    """Builds records with fresh uids and keeps the latest copy of every call."""

    def __init__(self, tracker: CallTracker | None = None) -> None:
        self.tracker = tracker or CallTracker()
        self.calls: dict[str, Call] = {}

    def record(self, event: str, number: str, at: float) -> EventRecord:
        # uids unique across feeders: a restarted tracker must not take new events for old ones
        uid = f"uid{next(UIDS):08d}"
        return EventRecord(uid, Event(event), number, T0 + at, 4242, "hook")

    def feed(self, rec: EventRecord) -> list[Call]:
        changed = self.tracker.feed(rec)
        self._keep(changed)
        return changed

    def steps(self, steps: Iterable[Step]) -> None:
        for event, number, at in steps:
            self.feed(self.record(event, number, at))

    def expire(self, at: float) -> list[Call]:
        closed = self.tracker.expire(T0 + at)
        self._keep(closed)
        return closed

    def _keep(self, calls: Iterable[Call]) -> None:
        for call in calls:
            self.calls[call.call_id] = call

    def result(self) -> list[Call]:
        return sorted(self.calls.values(), key=lambda c: (c.started_at, c.call_id))


@dataclass(frozen=True)
class Want:
    direction: Direction
    outcome: Outcome | None
    duration: float | None = None
    auto_answered: bool = False
    number: str = "100"
    video: bool = False


def check(calls: Sequence[Call], wants: Sequence[Want]) -> None:
    assert len(calls) == len(wants), [(c.direction, c.outcome, c.number) for c in calls]
    for call, want in zip(calls, wants, strict=True):
        assert call.direction is want.direction
        assert call.outcome is want.outcome
        assert call.number == want.number
        assert call.auto_answered is want.auto_answered
        assert call.video is want.video
        if want.duration is None:
            assert call.duration is None
        else:
            assert call.duration == pytest.approx(want.duration, abs=1.0)
        assert (call.state is CallState.ENDED) is (call.outcome is not None)


# Each case: the hook events (facts §2.2 "Typical sequences"), when to run the timeouts, the calls.
CASES: dict[str, tuple[list[Step], float, list[Want]]] = {
    # Incoming -> Ring -> Answer -> Start -> End.
    "incoming answered": (
        [
            ("incoming", "100", 0),
            ("ring", "100", 0.2),
            ("answer", "100", 5.0),
            ("start", "100", 5.02),
            ("end", "100", 65.0),
        ],
        100,
        [Want(IN, ANSWERED, 60.0)],
    ),
    # cmdCallAnswerVideo fires with cmdCallAnswer when the remote offers video (S22).
    "incoming answered with video": (
        [
            ("incoming", "100", 0),
            ("ring", "100", 0.2),
            ("answer", "100", 5.0),
            ("answer-video", "100", 5.01),
            ("start", "100", 5.02),
            ("end", "100", 35.0),
        ],
        100,
        [Want(IN, ANSWERED, 30.0, video=True)],
    ),
    # Auto-answer without delay: Incoming -> Answer -> Start -> End, no Ring.
    "auto-answered": (
        [
            ("incoming", "100", 0),
            ("answer", "100", 0.1),
            ("start", "100", 0.12),
            ("end", "100", 20.1),
        ],
        100,
        [Want(IN, ANSWERED, 20.0, auto_answered=True)],
    ),
    # autoAnswerDelay > 0: Ring fires too, so it looks like a manual answer.
    "auto-answered with delay": (
        [
            ("incoming", "100", 0),
            ("ring", "100", 0.2),
            ("answer", "100", 3.2),
            ("start", "100", 3.21),
            ("end", "100", 13.2),
        ],
        100,
        [Want(IN, ANSWERED, 10.0)],
    ),
    # Incoming -> Ring -> End: the caller gave up or cancelled (487).
    "missed": (
        [("incoming", "100", 0), ("ring", "100", 0.2), ("end", "100", 25.0)],
        100,
        [Want(IN, MISSED)],
    ),
    # Cancelled before MicroSIP sent 180 Ringing.
    "cancelled by the caller before ringing": (
        [("incoming", "100", 0), ("end", "100", 0.3)],
        100,
        [Want(IN, MISSED)],
    ),
    # Incoming -> Ring -> Busy: Decline sends 486, which fires cmdCallBusy.
    "declined": (
        [("incoming", "100", 0), ("ring", "100", 0.2), ("busy", "100", 4.0)],
        100,
        [Want(IN, DECLINED)],
    ),
    # Auto-rejected (DND, denyIncoming, limits): Incoming only, nothing ever follows.
    "auto-rejected": ([("incoming", "100", 0)], 60, [Want(IN, REJECTED)]),
    # Outgoing -> Start -> End.
    "outgoing answered": (
        [("outgoing", "100", 0), ("start", "100", 6.0), ("end", "100", 96.0)],
        200,
        [Want(OUT, ANSWERED, 90.0)],
    ),
    # Outgoing -> Busy (486/600/603).
    "outgoing busy": (
        [("outgoing", "100", 0), ("busy", "100", 2.0)],
        100,
        [Want(OUT, Outcome.BUSY)],
    ),
    # Outgoing -> End: cancelled by the user (or failed: [Calls] tells, test_reconcile).
    "outgoing cancelled": (
        [("outgoing", "100", 0), ("end", "100", 8.0)],
        100,
        [Want(OUT, Outcome.CANCELLED)],
    ),
    # Call waiting: a second call rings during an active one (cmdCallRing fires for it).
    "call waiting, second call missed": (
        [
            ("incoming", "100", 0),
            ("ring", "100", 0.2),
            ("answer", "100", 2.0),
            ("start", "100", 2.01),
            ("incoming", "200", 10.0),
            ("ring", "200", 10.2),
            ("end", "200", 30.0),
            ("end", "100", 62.0),
        ],
        100,
        [Want(IN, ANSWERED, 60.0), Want(IN, MISSED, number="200")],
    ),
    "call waiting, second call answered after the first": (
        [
            ("outgoing", "100", 0),
            ("start", "100", 3.0),
            ("incoming", "200", 10.0),
            ("ring", "200", 10.2),
            ("end", "100", 15.0),
            ("answer", "200", 16.0),
            ("start", "200", 16.01),
            ("end", "200", 46.0),
        ],
        100,
        [Want(OUT, ANSWERED, 12.0), Want(IN, ANSWERED, 30.0, number="200")],
    ),
    # Two calls from the same number at once: only the number tells events apart.
    "two calls from one number": (
        [
            ("incoming", "100", 0),
            ("ring", "100", 0.2),
            ("incoming", "100", 1.0),
            ("ring", "100", 1.2),
            ("answer", "100", 4.0),
            ("start", "100", 4.01),
            ("end", "100", 8.0),
            ("end", "100", 34.0),
        ],
        100,
        [Want(IN, ANSWERED, 30.0), Want(IN, MISSED)],
    ),
    # The caller retries while ringing: MicroSIP rejects the duplicate after cmdIncomingCall.
    "duplicate call rejected during ringing": (
        [
            ("incoming", "100", 0),
            ("ring", "100", 0.2),
            ("incoming", "100", 3.0),
            ("answer", "100", 5.0),
            ("start", "100", 5.01),
            ("end", "100", 25.0),
        ],
        100,
        [Want(IN, ANSWERED, 20.0), Want(IN, REJECTED)],
    ),
    # MicroSIP passes nothing when the user part is empty (facts §2.4).
    "no number at all": (
        [
            ("incoming", "", 0),
            ("ring", "", 0.2),
            ("answer", "", 3.0),
            ("start", "", 3.01),
            ("end", "", 13.0),
        ],
        100,
        [Want(IN, ANSWERED, 10.0, number="")],
    ),
    # S20/S22: busy/end fall back to the domain when the user part is empty (facts §2.4).
    "busy/end with the domain instead of an empty number": (
        [
            ("incoming", "", 0),
            ("ring", "", 0.2),
            ("end", "pbx.example.com", 9.0),
            ("outgoing", "", 20.0),
            ("busy", "pbx.example.com", 21.0),
        ],
        100,
        [Want(IN, MISSED, number=""), Want(OUT, Outcome.BUSY, number="")],
    ),
    # An end with no number may be any call's: a ringing call ends before a conversation.
    "end without a number during call waiting": (
        [
            ("incoming", "100", 0),
            ("ring", "100", 0.1),
            ("answer", "100", 1.0),
            ("start", "100", 1.01),
            ("incoming", "200", 5.0),
            ("ring", "200", 5.1),
            ("end", "", 11.0),
            ("end", "", 20.0),
        ],
        100,
        [Want(IN, ANSWERED, 19.0), Want(IN, MISSED, number="200")],
    ),
    # Only an end: kept as a call of unknown direction and outcome, not dropped.
    "lone end": ([("end", "100", 0)], 100, [Want(UNK, Outcome.UNKNOWN)]),
    "lone busy": ([("busy", "100", 0)], 100, [Want(UNK, Outcome.UNKNOWN)]),
    # Repeated events of one call (new uids, same kind): nothing changes.
    "repeated events": (
        [
            ("incoming", "100", 0),
            ("ring", "100", 0.2),
            ("ring", "100", 0.25),
            ("answer", "100", 3.0),
            ("answer", "100", 3.01),
            ("start", "100", 3.02),
            ("start", "100", 3.03),
            ("end", "100", 13.0),
            ("end", "100", 13.01),
            ("busy", "100", 13.02),
        ],
        100,
        [Want(IN, ANSWERED, 10.0)],
    ),
    # A few milliseconds out of order, fed one at a time as they arrive.
    "ring before incoming, start before answer": (
        [
            ("ring", "100", 0.003),
            ("incoming", "100", 0),
            ("start", "100", 4.01),
            ("answer", "100", 4.0),
            ("end", "100", 9.0),
        ],
        100,
        [Want(IN, ANSWERED, 5.0)],
    ),
    "end before start": (
        [("outgoing", "100", 0), ("end", "100", 3.004), ("start", "100", 3.0)],
        100,
        [Want(OUT, ANSWERED, 0.0)],
    ),
    "end before incoming and ring": (
        [("end", "100", 0.01), ("ring", "100", 0.005), ("incoming", "100", 0)],
        100,
        [Want(IN, MISSED)],
    ),
    "busy before outgoing": (
        [("busy", "100", 0.004), ("outgoing", "100", 0)],
        100,
        [Want(OUT, Outcome.BUSY)],
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_sequence(name: str) -> None:
    steps, expire_at, wants = CASES[name]
    feeder = Feeder()
    feeder.steps(steps)
    feeder.expire(expire_at)
    check(feeder.result(), wants)
    assert feeder.tracker.open_calls() == []


@pytest.mark.parametrize("name", list(CASES))
def test_sequence_from_a_batch(name: str) -> None:
    # feed_many applies a batch (the spool) in time order, whatever order it is listed in.
    steps, expire_at, wants = CASES[name]
    feeder = Feeder()
    recs = [feeder.record(*step) for step in reversed(steps)]
    changed = feeder.tracker.feed_many(recs)
    assert len({c.call_id for c in changed}) == len(changed)
    feeder._keep(changed)
    feeder.expire(expire_at)
    check(feeder.result(), wants)


def test_answered_call_times() -> None:
    feeder = Feeder()
    feeder.steps([("incoming", "100", 0), ("ring", "100", 0.2), ("answer", "100", 5.0)])
    feeder.steps([("start", "100", 5.02), ("end", "100", 65.0)])
    (call,) = feeder.result()
    # answered_at is the answer hook's time (facts §2.2: cmdCallAnswer, then cmdCallStart).
    assert call.started_at == T0
    assert call.answered_at == T0 + 5.0
    assert call.ended_at == T0 + 65.0
    assert call.duration == pytest.approx(60.0)
    assert call.rang
    assert len(call.events) == 5
    assert call.updated_at == T0 + 65.0


def test_outgoing_answered_at_is_start() -> None:
    feeder = Feeder()
    feeder.steps([("outgoing", "100", 0), ("start", "100", 6.0), ("end", "100", 96.0)])
    (call,) = feeder.result()
    assert call.answered_at == T0 + 6.0
    assert call.duration == pytest.approx(90.0)


def test_states_while_the_call_goes_on() -> None:
    feeder = Feeder()
    seen = []
    for step in [("incoming", "100", 0), ("ring", "100", 0.2), ("answer", "100", 2.0)]:
        (call,) = feeder.feed(feeder.record(*step))
        seen.append(call.state)
    (call,) = feeder.feed(feeder.record("end", "100", 9.0))
    seen.append(call.state)
    assert seen == [CallState.RINGING, CallState.RINGING, CallState.CONNECTED, CallState.ENDED]
    feeder = Feeder()
    (call,) = feeder.feed(feeder.record("outgoing", "100", 0))
    assert call.state is CallState.DIALING
    assert call.outcome is None


def test_feed_returns_copies() -> None:
    feeder = Feeder()
    (call,) = feeder.feed(feeder.record("incoming", "100", 0))
    call.number = "changed"
    call.events.append("x")
    (again,) = feeder.tracker.open_calls()
    assert again.number == "100"
    assert again.events == call.events[:1]


def test_a_duplicated_uid_is_ignored() -> None:
    feeder = Feeder()
    rec = feeder.record("incoming", "100", 0)
    (call,) = feeder.feed(rec)
    assert feeder.feed(rec) == []
    assert feeder.tracker.call_id_of(rec.uid) == call.call_id
    (again,) = feeder.tracker.open_calls()
    assert again.events == [rec.uid]


def test_a_repeated_kind_is_recorded_on_the_call() -> None:
    feeder = Feeder()
    feeder.steps([("incoming", "100", 0), ("ring", "100", 0.2)])
    (call,) = feeder.feed(feeder.record("ring", "100", 0.3))
    assert len(call.events) == 3  # linked to the call for the event log...
    assert call.rang
    assert call.state is CallState.RINGING  # ...and nothing else changed
    assert len(feeder.result()) == 1


def test_a_second_incoming_is_a_second_call() -> None:
    # MicroSIP fires cmdIncomingCall once per INVITE (facts §2.2): two are two calls.
    feeder = Feeder()
    feeder.steps([("incoming", "100", 0), ("incoming", "100", 0.01)])
    assert len(feeder.tracker.open_calls()) == 2


def test_rejected_only_after_the_timeout() -> None:
    feeder = Feeder(CallTracker(reject_timeout=15.0))
    feeder.steps([("incoming", "100", 0)])
    assert feeder.expire(14.9) == []
    (closed,) = feeder.expire(15.0)
    assert closed.outcome is REJECTED
    assert closed.ended_at == T0  # when we last heard of it
    assert closed.updated_at == T0 + 15.0


def test_a_ringing_call_is_not_rejected() -> None:
    feeder = Feeder()
    feeder.steps([("incoming", "100", 0), ("ring", "100", 0.2)])
    assert feeder.expire(600) == []
    (call,) = feeder.tracker.open_calls()
    assert call.state is CallState.RINGING


def test_a_late_event_undoes_a_rejection() -> None:
    # The daemon was slow: the ring arrives after the timeout, dated right after incoming.
    feeder = Feeder()
    feeder.steps([("incoming", "100", 0)])
    (closed,) = feeder.expire(20)
    assert closed.outcome is REJECTED
    (call,) = feeder.feed(feeder.record("ring", "100", 0.2))
    assert call.call_id == closed.call_id
    assert call.state is CallState.RINGING
    assert call.outcome is None
    assert call.ended_at is None
    feeder.steps([("end", "100", 30)])
    check(feeder.result(), [Want(IN, MISSED)])


def test_an_event_long_after_a_rejection_is_another_call() -> None:
    feeder = Feeder()
    feeder.steps([("incoming", "100", 0)])
    feeder.expire(20)
    feeder.steps([("ring", "100", 40)])
    calls = feeder.result()
    assert [c.outcome for c in calls] == [REJECTED, None]


def test_stale_calls_close_as_unknown_and_a_late_end_still_counts() -> None:
    feeder = Feeder(CallTracker(stale_timeout=3600))
    feeder.steps([("outgoing", "100", 0), ("start", "100", 5)])
    assert feeder.expire(3599) == []
    (closed,) = feeder.expire(3600)
    assert closed.outcome is Outcome.UNKNOWN
    assert closed.state is CallState.ENDED
    (call,) = feeder.feed(feeder.record("end", "100", 3700))
    assert call.call_id == closed.call_id
    assert call.outcome is ANSWERED
    assert call.duration == pytest.approx(3695)


def test_expire_eventually_closes_everything() -> None:
    feeder = Feeder()
    feeder.steps([("incoming", "1", 0), ("ring", "2", 1), ("outgoing", "3", 2)])
    feeder.steps([("start", "4", 3), ("answer", "5", 4)])
    assert len(feeder.tracker.open_calls()) == 5
    feeder.expire(4 * 3600 + 10)
    assert feeder.tracker.open_calls() == []
    assert all(c.outcome is not None for c in feeder.result())


def test_the_domain_of_a_lone_end_gives_way_to_the_user_part() -> None:
    # end first (with the domain), then the call's own events with an empty user part.
    feeder = Feeder()
    feeder.steps([("end", "pbx.example.com", 0.01), ("incoming", "", 0), ("ring", "", 0.005)])
    (call,) = feeder.result()
    assert call.number == ""
    assert call.outcome is MISSED


def test_a_domain_end_does_not_end_a_call_with_a_number() -> None:
    feeder = Feeder()
    feeder.steps([("incoming", "100", 0), ("ring", "100", 0.2), ("end", "pbx.example.com", 5)])
    calls = feeder.result()
    assert [(c.number, c.state) for c in calls] == [
        ("100", CallState.RINGING),
        ("pbx.example.com", CallState.ENDED),
    ]


def test_busy_prefers_the_unconnected_call() -> None:
    # Decline (486) can only end a ringing call, never the connected one (facts §2.2).
    feeder = Feeder()
    feeder.steps([("incoming", "100", 0), ("ring", "100", 0.1), ("answer", "100", 1)])
    feeder.steps([("start", "100", 1.01), ("incoming", "100", 5), ("ring", "100", 5.1)])
    feeder.steps([("busy", "100", 8), ("end", "100", 21)])
    check(feeder.result(), [Want(IN, ANSWERED, 20.0), Want(IN, DECLINED)])


def test_end_prefers_a_call_that_progressed_over_a_lone_incoming() -> None:
    # The second incoming got nothing after it: MicroSIP rejected it (no end will come).
    feeder = Feeder()
    feeder.steps([("incoming", "100", 0), ("incoming", "100", 0.5), ("ring", "100", 0.6)])
    feeder.steps([("end", "100", 9)])
    feeder.expire(60)
    outcomes = sorted(c.outcome.value for c in feeder.result() if c.outcome)
    assert outcomes == ["missed", "rejected"]


def test_load_continues_calls_after_a_restart() -> None:
    first = Feeder()
    first.steps([("incoming", "100", 0), ("ring", "100", 0.2), ("answer", "100", 3)])
    stored = first.tracker.open_calls()
    second = Feeder()
    second.tracker.load(stored)
    second.steps([("start", "100", 3.01), ("end", "100", 33)])
    (call,) = second.result()
    assert call.call_id == stored[0].call_id
    assert call.outcome is ANSWERED
    assert call.duration == pytest.approx(30)
    assert call.events[:3] == stored[0].events


def test_a_loaded_lone_incoming_is_still_rejected_by_timeout() -> None:
    first = Feeder()
    first.steps([("incoming", "100", 0)])
    second = Feeder()
    second.tracker.load(first.tracker.open_calls())
    (closed,) = second.expire(30)
    assert closed.outcome is REJECTED
    third = Feeder()
    first.steps([("ring", "100", 0.3)])
    third.tracker.load(first.tracker.open_calls())
    assert third.expire(30) == []  # it rang: not rejected, even after the restart


def test_a_loaded_ended_call_absorbs_its_repeated_end() -> None:
    first = Feeder()
    first.steps([("outgoing", "100", 0), ("end", "100", 5)])
    second = Feeder()
    second.tracker.load(first.result())
    second.steps([("end", "100", 5.01)])
    assert [c.call_id for c in second.result()] == [first.result()[0].call_id]
    # and the uids it knew are still duplicates
    first_uid = first.result()[0].events[0]
    assert second.tracker.feed(EventRecord(first_uid, Event.OUTGOING, "100", T0)) == []


def test_update_keeps_reconciled_fields_through_later_events() -> None:
    feeder = Feeder()
    feeder.steps([("outgoing", "100", 0), ("end", "100", 5.0)])
    (call,) = feeder.result()
    call.name = "Alice"
    call.outcome = Outcome.FAILED  # refined by [Calls], as apply_history does
    call.microsip_key = 7
    assert feeder.tracker.update(call)
    feeder.steps([("end", "100", 5.01)])  # a repeat: nothing changes
    (again,) = feeder.result()
    assert (again.name, again.outcome, again.microsip_key) == ("Alice", Outcome.FAILED, 7)
    # A late start is real news: the events' outcome wins again, the name stays.
    feeder.steps([("start", "100", 4.99)])
    (again,) = feeder.result()
    assert (again.name, again.outcome) == ("Alice", ANSWERED)
    assert not feeder.tracker.update(Call.from_dict({**call.to_dict(), "call_id": "c-unknown"}))


def test_ended_calls_are_forgotten_after_keep_closed() -> None:
    feeder = Feeder(CallTracker(keep_closed=300))
    feeder.steps([("outgoing", "100", 0), ("end", "100", 5)])
    (call,) = feeder.result()
    feeder.expire(304)
    assert feeder.tracker.get(call.call_id) == call
    feeder.expire(306)
    assert feeder.tracker.get(call.call_id) is None
    # Its repeated end is now a call of its own (unknown), but its uids are still known.
    (lone,) = feeder.feed(feeder.record("end", "100", 5.01))
    assert lone.call_id != call.call_id
    assert feeder.tracker.call_id_of(call.events[0]) == call.call_id


def test_memory_of_ended_calls_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(state, "MAX_CLOSED", 10)
    feeder = Feeder()
    for i in range(30):
        feeder.steps([("outgoing", str(i), 10 * i), ("end", str(i), 10 * i + 1)])
    feeder.steps([("incoming", "open", 400)])
    first, *_, last = [c for c in feeder.result() if c.number != "open"]
    assert feeder.tracker.get(first.call_id) is None
    assert feeder.tracker.get(last.call_id) == last
    assert len(feeder.tracker.open_calls()) == 1  # open calls are never dropped


def test_custom_ids_and_the_default_id_format() -> None:
    made: list[float] = []

    def new_id(ts: float) -> str:
        made.append(ts)
        return f"test-{len(made)}"

    feeder = Feeder(CallTracker(new_id=new_id))
    feeder.steps([("incoming", "100", 0), ("outgoing", "200", 1)])
    assert [c.call_id for c in feeder.result()] == ["test-1", "test-2"]
    assert made == [T0, T0 + 1]
    first, second = new_call_id(T0), new_call_id(T0 + 0.002)
    assert len(first) == CALL_ID_CHARS and first.startswith("c")
    assert int(first[1:13], 16) == int(T0 * 1000)
    assert first < second  # time-ordered
    assert new_call_id(T0) != new_call_id(T0)
    assert history_call_id(3, 1718273586) == history_call_id(3, 1718273586)
    assert history_call_id(3, 1718273586) != history_call_id(4, 1718273586)


def test_bad_settings_and_bad_times_are_refused() -> None:
    with pytest.raises(BridgeError):
        CallTracker(reject_timeout=0)
    with pytest.raises(BridgeError, match="not a number"):
        CallTracker().feed(EventRecord("u1", Event.RING, "1", math.nan))


# --- the event record -------------------------------------------------------------------------


def test_from_spool_reads_what_the_hook_writes() -> None:
    record = make_record(Event.ANSWER_VIDEO, "1001", now=T0)
    rec = EventRecord.from_spool(record)
    assert (rec.event, rec.number, rec.ts, rec.source) == (Event.ANSWER_VIDEO, "1001", T0, "spool")
    assert rec.uid == record["id"]
    assert rec.to_spool() == record
    assert EventRecord.from_spool(record, source="hook").source == "hook"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"v": 2}, "version"),
        ({"v": "1"}, "version"),
        ({"id": ""}, "event id"),
        ({"id": "x" * 65}, "event id"),
        ({"id": "a b"}, "event id"),
        ({"id": 17}, "event id"),
        ({"event": "hangup"}, "unknown event"),
        ({"event": None}, "unknown event"),
        ({"number": 5551234}, "number must be text"),
        ({"number": "1" * (MAX_NUMBER_CHARS + 1)}, "characters"),
        ({"number": "1\x002"}, "NUL"),
        ({"ts": "now"}, "ts"),
        ({"ts": True}, "ts"),
        ({"ts": -1}, "ts"),
        ({"ts": math.inf}, "ts"),
        ({"ts": math.nan}, "ts"),
        ({"pid": -3}, "pid"),
        ({"pid": 1.5}, "pid"),
    ],
)
def test_from_spool_refuses_bad_records(change: dict[str, object], message: str) -> None:
    record = {**make_record(Event.RING, "1001", now=T0), **change}
    with pytest.raises(BridgeError, match=message):
        EventRecord.from_spool(record)


def test_from_spool_refuses_what_is_not_a_record() -> None:
    for bad in ([1, 2], "ring", None, 3):
        with pytest.raises(BridgeError, match="JSON object"):
            EventRecord.from_spool(bad)
    with pytest.raises(BridgeError, match="source"):
        EventRecord.from_spool(make_record(Event.RING, "1"), source="mail")


def test_from_spool_keeps_hostile_numbers_verbatim() -> None:
    # Numbers are untrusted text (issue 3): stored as given, never interpreted.
    for number in ("&calc", '"; rm -rf ~', "$(id)", "%PATH%", "\udcff\udcfe", "", "a b"):
        rec = EventRecord.from_spool({**make_record(Event.END, number, now=T0)})
        assert rec.number == number
    missing = make_record(Event.END, "x", now=T0)
    del missing["number"]
    assert EventRecord.from_spool(missing).number == ""


def test_call_dict_round_trip_and_errors() -> None:
    feeder = Feeder()
    feeder.steps(CASES["incoming answered with video"][0])
    (call,) = feeder.result()
    data = call.to_dict()
    assert data["direction"] == "incoming"
    assert data["outcome"] == "answered"
    assert Call.from_dict(data) == call
    with pytest.raises(BridgeError):
        Call.from_dict({**data, "state": "flying"})
    with pytest.raises(BridgeError):
        Call.from_dict({**data, "events": "uid1"})
    with pytest.raises(BridgeError):
        Call.from_dict({"call_id": "x"})


@given(
    event=st.sampled_from(list(Event)),
    number=st.text(max_size=40),
    ts=st.floats(min_value=0, max_value=4e9, allow_nan=False),
    pid=st.none() | st.integers(min_value=0, max_value=2**31),
)
def test_spool_round_trip(event: Event, number: str, ts: float, pid: int | None) -> None:
    rec = EventRecord("0123abcd", event, number.replace("\x00", ""), ts, pid, "spool")
    assert EventRecord.from_spool(rec.to_spool()) == rec


# --- properties -------------------------------------------------------------------------------

SEQUENCES: dict[str, tuple[list[str], Want]] = {
    "answered": (["incoming", "ring", "answer", "start", "end"], Want(IN, ANSWERED)),
    "answered video": (
        ["incoming", "ring", "answer", "answer-video", "start", "end"],
        Want(IN, ANSWERED, video=True),
    ),
    "auto": (["incoming", "answer", "start", "end"], Want(IN, ANSWERED, auto_answered=True)),
    "missed": (["incoming", "ring", "end"], Want(IN, MISSED)),
    "declined": (["incoming", "ring", "busy"], Want(IN, DECLINED)),
    "rejected": (["incoming"], Want(IN, REJECTED)),
    "out answered": (["outgoing", "start", "end"], Want(OUT, ANSWERED)),
    "out busy": (["outgoing", "busy"], Want(OUT, Outcome.BUSY)),
    "out cancelled": (["outgoing", "end"], Want(OUT, Outcome.CANCELLED)),
}


def summary(calls: Iterable[Call]) -> list[tuple[object, ...]]:
    return sorted(
        (c.number, c.direction.value, str(c.outcome), c.auto_answered, c.video, c.rang)
        for c in calls
    )


@given(
    name=st.sampled_from(list(SEQUENCES)),
    gaps=st.lists(st.floats(min_value=0.0005, max_value=0.01), min_size=6, max_size=6),
    order=st.permutations(range(6)),
)
def test_any_arrival_order_within_milliseconds_gives_the_same_call(
    name: str, gaps: list[float], order: list[int]
) -> None:
    kinds, want = SEQUENCES[name]
    times = list(itertools.accumulate(gaps[: len(kinds)]))
    feeder = Feeder()
    recs = [feeder.record(kind, "100", at) for kind, at in zip(kinds, times, strict=True)]
    for index in (i for i in order if i < len(recs)):
        feeder.feed(recs[index])  # one at a time, as they arrive
    feeder.expire(100)
    (call,) = feeder.result()
    assert (call.direction, call.outcome, call.auto_answered, call.video) == (
        want.direction,
        want.outcome,
        want.auto_answered,
        want.video,
    )
    if want.outcome is ANSWERED:
        assert call.duration is not None
        assert 0 <= call.duration < 0.1
    else:
        assert call.duration is None


def interleave(
    draw: st.DrawFn, max_calls: int = 4, shared_numbers: bool = False
) -> list[tuple[str, str, float]]:
    """Several valid calls with realistic gaps, merged in time order."""
    steps: list[tuple[str, str, float]] = []
    for index in range(draw(st.integers(min_value=1, max_value=max_calls))):
        kinds, _ = SEQUENCES[draw(st.sampled_from(list(SEQUENCES)))]
        number = draw(st.sampled_from(["100", "200"])) if shared_numbers else str(100 + index)
        at = draw(st.floats(min_value=0, max_value=60))
        for kind, after in itertools.zip_longest(kinds, kinds[1:]):
            steps.append((kind, number, at))
            # answer, answer-video and start fire at the same CONFIRMED moment (facts §2.2).
            confirmed = after in ("answer-video", "start") and kind != "outgoing"
            at += draw(st.floats(min_value=0.001, max_value=0.05 if confirmed else 30))
    steps.sort(key=lambda s: s[2])
    return steps


@st.composite
def scenarios(draw: st.DrawFn, shared_numbers: bool = False) -> list[tuple[str, str, float]]:
    return interleave(draw, shared_numbers=shared_numbers)


@given(steps=scenarios())
def test_each_event_twice_changes_nothing(steps: list[Step]) -> None:
    once, twice = Feeder(), Feeder()
    for step in steps:
        rec = once.record(*step)
        once.feed(rec)
        assert twice.feed(rec) != []
        assert twice.feed(rec) == []
    assert summary(once.result()) == summary(twice.result())
    assert sorted(c.events for c in once.result()) == sorted(c.events for c in twice.result())


@given(steps=scenarios(), delay=st.floats(min_value=0, max_value=0.04))
def test_each_event_sent_again_with_a_new_uid_changes_nothing(
    steps: list[Step], delay: float
) -> None:
    # e.g. two `ring` for one call. Not `incoming`/`outgoing`: a second one is a second call.
    once, again = Feeder(), Feeder()
    once.steps(steps)
    for kind, number, at in steps:
        again.feed(again.record(kind, number, at))
        if kind not in ("incoming", "outgoing"):
            again.feed(again.record(kind, number, at + delay))
    assert summary(once.result()) == summary(again.result())
    assert [t[:-1] for t in timeline(once.result())] == [t[:-1] for t in timeline(again.result())]


@given(steps=scenarios(), data=st.data())
def test_a_batch_in_any_order_gives_what_live_feeding_gives(
    steps: list[Step], data: st.DataObject
) -> None:
    live = Feeder()
    live.steps(steps)
    batch = Feeder()
    recs = [batch.record(*step) for step in steps]
    batch._keep(batch.tracker.feed_many(data.draw(st.permutations(recs))))
    assert summary(live.result()) == summary(batch.result())


@given(steps=scenarios())
def test_each_scenario_call_comes_out_right(steps: list[Step]) -> None:
    feeder = Feeder()
    feeder.steps(steps)
    feeder.expire(10_000)
    by_number: dict[str, list[str]] = {}
    for kind, number, _ in steps:
        by_number.setdefault(number, []).append(kind)
    calls = feeder.result()
    assert len(calls) == len(by_number)
    for call in calls:
        kinds = by_number[call.number]
        (want,) = [w for k, w in SEQUENCES.values() if k == kinds]
        assert (call.direction, call.outcome, call.auto_answered) == (
            want.direction,
            want.outcome,
            want.auto_answered,
        )


class Ids:
    """Call ids in creation order: two runs that behave alike name their calls alike."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, ts: float) -> str:
        self.count += 1
        return f"c{self.count:08d}"


def restarted(
    steps: list[Step], split: int, *, keep_ended: bool, with_events: bool = False
) -> tuple[Feeder, Feeder]:
    """The same events fed to one tracker, and to one that is restarted after ``split``."""
    whole = Feeder(CallTracker(new_id=Ids()))
    ids = Ids()
    before = Feeder(CallTracker(new_id=ids))
    recs = [before.record(*step) for step in steps]
    for rec in recs:
        whole.feed(rec)
    for rec in recs[:split]:
        before.feed(rec)
    after = Feeder(CallTracker(new_id=ids))
    # What the daemon loads from the store: the open calls, and with keep_ended those that
    # ended recently too.
    stored = before.result() if keep_ended else before.tracker.open_calls()
    by_uid = {rec.uid: rec for rec in recs}
    log = [(c.call_id, by_uid[uid].event, by_uid[uid].ts) for c in stored for uid in c.events]
    after.tracker.load(stored, log if with_events else ())
    after.calls = dict(before.calls)
    for rec in recs[split:]:
        after.feed(rec)
    return whole, after


@given(steps=scenarios(shared_numbers=True), split=st.integers(min_value=0, max_value=40))
def test_a_restart_continues_where_it_stopped(steps: list[Step], split: int) -> None:
    # With the calls and their events from the store, even overlapping calls from one number
    # continue exactly as if the daemon had never stopped.
    whole, after = restarted(steps, split, keep_ended=True, with_events=True)
    assert timeline(whole.result()) == timeline(after.result())
    assert [c.call_id for c in whole.result()] == [c.call_id for c in after.result()]


@given(steps=scenarios(), split=st.integers(min_value=0, max_value=40))
def test_a_restart_with_only_the_open_calls(steps: list[Step], split: int) -> None:
    # One call per number (the usual case): the open calls' fields are all a restart needs.
    whole, after = restarted(steps, split, keep_ended=False)
    assert timeline(whole.result()) == timeline(after.result())
    whole, after = restarted(steps, split, keep_ended=True)
    assert timeline(whole.result()) == timeline(after.result())


# Any events at all: kinds, numbers (with empty and domain ones) and times in any mix.
SOUP_EVENT = st.tuples(
    st.sampled_from([e.value for e in Event]),
    st.sampled_from(["100", "200", "", "pbx.example.com"]),
    st.floats(min_value=0, max_value=120),
)


@given(soup=st.lists(SOUP_EVENT, max_size=30), split=st.integers(min_value=0, max_value=30))
def test_a_restart_in_any_event_soup(soup: list[Step], split: int) -> None:
    whole, after = restarted(soup, split, keep_ended=True, with_events=True)
    assert timeline(whole.result()) == timeline(after.result())


def timeline(calls: Iterable[Call]) -> list[tuple[object, ...]]:
    return sorted(
        (
            c.number,
            c.direction.value,
            str(c.outcome),
            c.started_at,
            -1.0 if c.answered_at is None else c.answered_at,
            -1.0 if c.ended_at is None else c.ended_at,
            c.auto_answered,
            c.video,
            c.rang,
            len(c.events),
        )
        for c in calls
    )


@given(soup=st.lists(SOUP_EVENT, max_size=40), expire_at=st.floats(min_value=0, max_value=200))
def test_any_event_soup_gives_consistent_calls(
    soup: list[tuple[str, str, float]], expire_at: float
) -> None:
    feeder = Feeder()
    for step in soup:
        (call,) = feeder.feed(feeder.record(*step))
        assert_consistent(call)
    for call in feeder.expire(expire_at):
        assert_consistent(call)
    for call in feeder.result():
        assert_consistent(call)
    assert sum(len(c.events) for c in feeder.result()) == len(soup)  # every event is placed
    for call in feeder.tracker.open_calls():
        assert call.state is not CallState.ENDED
    feeder.expire(200 + 4 * 3600)
    assert feeder.tracker.open_calls() == []
    assert all(c.state is CallState.ENDED for c in feeder.result())


def assert_consistent(call: Call) -> None:
    assert (call.state is CallState.ENDED) is (call.outcome is not None)
    assert (call.state is CallState.ENDED) is (call.ended_at is not None)
    if call.state is CallState.RINGING:
        assert call.direction is IN
    if call.state is CallState.CONNECTED:
        assert call.answered_at is not None
    if call.duration is not None:
        assert call.duration >= 0
        assert call.answered_at is not None
        assert call.ended_at == pytest.approx(call.answered_at + call.duration)
    if call.answered_at is not None:
        assert call.answered_at >= call.started_at
    if call.auto_answered:
        assert call.direction is IN and not call.rang
    if call.outcome in (MISSED, DECLINED, REJECTED):
        assert call.direction is IN
    if call.outcome in (Outcome.BUSY, Outcome.CANCELLED):
        assert call.direction is OUT
    assert call.started_at <= call.updated_at


def test_every_event_kind_has_its_matching_steps() -> None:
    assert set(state._STEPS) == set(Event)
    assert all(state._STEPS[kind] for kind in Event)


def test_the_tracker_is_pure() -> None:
    # No I/O: the model imports nothing of ours but the shared types, and no database, file or
    # network module of the standard library.
    import ast
    from pathlib import Path

    tree = ast.parse(Path(state.__file__).read_text(encoding="utf-8"))
    modules = {alias.name for n in ast.walk(tree) if isinstance(n, ast.Import) for alias in n.names}
    modules |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    ours = {m for m in modules if m.startswith("microsip_bridge")}
    assert ours <= {"microsip_bridge.errors", "microsip_bridge.model"}
    assert modules - ours <= {"__future__", "math", "collections", "collections.abc", "dataclasses"}
