"""Dials through the bridge in the call-state model: a pending call, bound to its own `outgoing`
event by the number MicroSIP reports, closed as not_placed when none comes, across restarts."""

from __future__ import annotations

import itertools

import pytest

from microsip_bridge.calls.state import CallTracker
from microsip_bridge.errors import BridgeError
from microsip_bridge.model import CallState, Direction, Event, EventRecord, Outcome

T0 = 1_750_000_000.0
UIDS = itertools.count(1)


def ev(event: Event, number: str, ts: float) -> EventRecord:
    return EventRecord(f"{next(UIDS):032x}", event, number, ts)


def test_the_outgoing_event_binds_to_the_dial_and_keeps_its_id() -> None:
    tracker = CallTracker()
    dial = tracker.open_dial("5551234", {"95551234"}, T0)
    assert (dial.direction, dial.state, dial.outcome) == (
        Direction.OUTGOING,
        CallState.DIALING,
        None,
    )
    # facts §2.4: the hook reports the number after dialingPrefix, not what was dialled
    (bound,) = tracker.feed(ev(Event.OUTGOING, "95551234", T0 + 0.3))
    assert bound.call_id == dial.call_id
    assert bound.number == "95551234"
    tracker.feed(ev(Event.START, "95551234", T0 + 2))
    (ended,) = tracker.feed(ev(Event.END, "95551234", T0 + 5))
    assert (ended.call_id, ended.outcome, ended.duration) == (dial.call_id, Outcome.ANSWERED, 3.0)
    assert tracker.open_calls() == []


def test_an_outgoing_of_another_number_is_another_call() -> None:
    tracker = CallTracker()
    dial = tracker.open_dial("5551234", {"5551234"}, T0)
    (other,) = tracker.feed(ev(Event.OUTGOING, "5559999", T0 + 0.1))
    assert other.call_id != dial.call_id
    # and an end for the dialled number does not close the pending dial
    tracker.feed(ev(Event.END, "5551234", T0 + 0.2))
    assert tracker.get(dial.call_id).state is CallState.DIALING  # type: ignore[union-attr]


def test_an_outgoing_dated_before_the_dial_does_not_bind() -> None:
    tracker = CallTracker()
    dial = tracker.open_dial("5551234", {"5551234"}, T0)
    (call,) = tracker.feed(ev(Event.OUTGOING, "5551234", T0 - 1))
    assert call.call_id != dial.call_id


def test_two_dials_of_one_number_bind_oldest_first() -> None:
    tracker = CallTracker()
    first = tracker.open_dial("100", {"100"}, T0)
    second = tracker.open_dial("100", {"100"}, T0 + 1)
    (a,) = tracker.feed(ev(Event.OUTGOING, "100", T0 + 1.5))
    (b,) = tracker.feed(ev(Event.OUTGOING, "100", T0 + 1.6))
    assert (a.call_id, b.call_id) == (first.call_id, second.call_id)


def test_a_dial_with_no_outgoing_ends_not_placed_at_its_deadline() -> None:
    tracker = CallTracker(dial_timeout=15)
    dial = tracker.open_dial("5551234", {"5551234"}, T0)
    assert tracker.expire(T0 + 14.9) == []
    (closed,) = tracker.expire(T0 + 16)
    assert (closed.call_id, closed.state, closed.outcome) == (
        dial.call_id,
        CallState.ENDED,
        Outcome.NOT_PLACED,
    )
    assert closed.ended_at == T0 + 15
    # a late outgoing is a call of its own: the dial was given up
    (late,) = tracker.feed(ev(Event.OUTGOING, "5551234", T0 + 17))
    assert late.call_id != dial.call_id


def test_a_dropped_dial_is_cancelled_at_once() -> None:
    tracker = CallTracker()
    dial = tracker.open_dial("5551234", {"5551234"}, T0)
    closed = tracker.cancel_dial(dial.call_id, T0 + 0.01)
    assert closed is not None and closed.outcome is Outcome.NOT_PLACED
    assert tracker.cancel_dial(dial.call_id, T0 + 1) is None


def test_a_pending_dial_survives_a_restart() -> None:
    tracker = CallTracker(dial_timeout=15)
    dial = tracker.open_dial("5551234", {"5551234"}, T0)
    # the daemon died; the next one loads the stored call (no events linked to it)
    again = CallTracker(dial_timeout=15)
    again.load([dial])
    (bound,) = again.feed(ev(Event.OUTGOING, "5551234", T0 + 2))
    assert bound.call_id == dial.call_id


def test_a_pending_dial_left_by_a_dead_daemon_is_closed_on_the_next_start() -> None:
    tracker = CallTracker(dial_timeout=15)
    dial = tracker.open_dial("5551234", {"5551234"}, T0)
    again = CallTracker(dial_timeout=15)
    again.load([dial])
    (closed,) = again.expire(T0 + 3600)
    assert (closed.call_id, closed.outcome) == (dial.call_id, Outcome.NOT_PLACED)
    # and a not_placed call loaded later stays what it is
    third = CallTracker()
    third.load([closed])
    assert third.get(dial.call_id).outcome is Outcome.NOT_PLACED  # type: ignore[union-attr]
    assert third.expire(T0 + 7200) == []


def test_a_dial_needs_the_number_it_will_be_reported_as() -> None:
    with pytest.raises(BridgeError):
        CallTracker().open_dial("5551234", [], T0)
    with pytest.raises(BridgeError):
        CallTracker().open_dial("5551234", ["5551234"], float("nan"))
