"""Call transitions: each of MicroSIP's event sequences (facts §2.2) fires the transitions a person
means, each once per call, through duplicates, restarts and the [Calls] sweep; the observer sees
them inside the transaction and after the commit, and a failed transaction fires nothing."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from sqlalchemy.engine import Connection, Engine

from microsip_bridge.calls.recorder import Recorder
from microsip_bridge.calls.state import CallTracker
from microsip_bridge.calls.transitions import Happened, fire
from microsip_bridge.model import Call, CallState, Direction, Event, Outcome, Transition
from microsip_bridge.store import repo
from tests.test_store import T0, db, fresh, pg_admin, rec  # noqa: F401 - fixtures

T = Transition

# facts §2.2, "Typical sequences (S22)": the hook events and the transitions a person expects.
SEQUENCES: dict[str, tuple[list[Event], list[Transition]]] = {
    "incoming answered": (
        [Event.INCOMING, Event.RING, Event.ANSWER, Event.START, Event.END],
        [T.INCOMING, T.RINGING, T.ANSWERED, T.CONNECTED, T.ENDED],
    ),
    "incoming answered with video": (
        [Event.INCOMING, Event.RING, Event.ANSWER, Event.ANSWER_VIDEO, Event.START, Event.END],
        [T.INCOMING, T.RINGING, T.ANSWERED, T.CONNECTED, T.ENDED],
    ),
    "auto-answered without delay (no ring)": (
        [Event.INCOMING, Event.ANSWER, Event.START, Event.END],
        [T.INCOMING, T.ANSWERED, T.CONNECTED, T.ENDED],
    ),
    "missed": (
        [Event.INCOMING, Event.RING, Event.END],
        [T.INCOMING, T.RINGING, T.MISSED, T.ENDED],
    ),
    "declined by the user": (
        [Event.INCOMING, Event.RING, Event.BUSY],
        [T.INCOMING, T.RINGING, T.BUSY, T.ENDED],
    ),
    "outgoing answered": (
        [Event.OUTGOING, Event.START, Event.END],
        [T.OUTGOING, T.ANSWERED, T.CONNECTED, T.ENDED],
    ),
    "outgoing to a busy party": (
        [Event.OUTGOING, Event.BUSY],
        [T.OUTGOING, T.BUSY, T.ENDED],
    ),
    "outgoing cancelled": ([Event.OUTGOING, Event.END], [T.OUTGOING, T.ENDED]),
}


class Recording:
    """A CallObserver that records; ``committed`` is the protocol's method."""

    def __init__(self, fail_in_record: bool = False) -> None:
        self.prepared: list[str] = []
        self.recorded: list[tuple[str, Transition]] = []
        self.done: list[tuple[str, Transition]] = []
        self.snapshots: list[Call] = []
        self.fail_in_record = fail_in_record

    def prepare(self, calls: Sequence[Call]) -> None:
        for call in calls:
            call.name = call.name or f"name of {call.number}"
            self.prepared.append(call.call_id)

    def record(self, conn: Connection, happened: Sequence[Happened]) -> None:
        if self.fail_in_record:
            raise RuntimeError("the outbox is full")
        self.recorded += [(h.call.call_id, h.transition) for h in happened]

    def committed(self, happened: Sequence[Happened]) -> None:
        self.done += [(h.call.call_id, h.transition) for h in happened]
        self.snapshots += [h.call for h in happened]


def recorder(engine: Engine, observer: Recording | None = None) -> Recorder:
    clock = [T0 + 1000.0]
    r = Recorder(engine, CallTracker(), clock=lambda: clock[0], observer=observer)
    r.load()
    return r


@pytest.mark.parametrize("name", list(SEQUENCES))
def test_each_sequence_of_the_facts_fires_its_transitions_once(db: Engine, name: str) -> None:  # noqa: F811
    # facts §2.2: the sequences, each event written alone, then all of them again (duplicates).
    events, expected = SEQUENCES[name]
    obs = Recording()
    r = recorder(db, obs)
    recs = [rec(f"u{i}", e, "1001", ts=T0 + i) for i, e in enumerate(events)]
    for one in recs:
        r.write([one])
    r.write(recs)  # every event again: duplicates change nothing
    call_ids = {c for c, _ in obs.done}
    assert len(call_ids) == 1
    assert [t for _, t in obs.done] == expected
    assert obs.recorded == obs.done  # recorded in the transaction, then acted on after it
    with db.connect() as conn:
        stored = repo.get_call(conn, call_ids.pop())
    assert stored is not None and stored.transitions == [t.value for t in expected]
    assert stored.name == "name of 1001"  # prepared before the save


def test_a_call_rejected_by_microsip_fires_incoming_then_ended_by_the_timeout(db: Engine) -> None:  # noqa: F811
    # facts §2.2: an automatically rejected call reports "incoming" only; the timeout ends it.
    obs = Recording()
    clock = [T0]
    r = Recorder(db, CallTracker(reject_timeout=15), clock=lambda: clock[0], observer=obs)
    r.load()
    r.write([rec("lone", Event.INCOMING, "666", ts=T0)])
    assert [t for _, t in obs.done] == [T.INCOMING]
    clock[0] = T0 + 60
    closed = r.expire()
    assert [c.outcome for c in closed] == [Outcome.REJECTED]
    assert [t for _, t in obs.done] == [T.INCOMING, T.ENDED]


def test_a_restarted_daemon_does_not_fire_again(db: Engine) -> None:  # noqa: F811
    obs = Recording()
    r = recorder(db, obs)
    r.write([rec("a", Event.INCOMING, "1001", ts=T0), rec("b", Event.RING, "1001", ts=T0 + 1)])
    # A new recorder (a restarted daemon) loads the open call with what it already fired.
    obs2 = Recording()
    r2 = recorder(db, obs2)
    r2.write([rec("c", Event.ANSWER, "1001", ts=T0 + 5), rec("d", Event.START, "1001", ts=T0 + 5)])
    r2.write([rec("e", Event.END, "1001", ts=T0 + 9)])
    assert [t for _, t in obs.done] == [T.INCOMING, T.RINGING]
    assert [t for _, t in obs2.done] == [T.ANSWERED, T.CONNECTED, T.ENDED]


def test_a_failed_transaction_acts_on_nothing_and_fires_again_when_stored(db: Engine) -> None:  # noqa: F811
    obs = Recording(fail_in_record=True)
    r = recorder(db, obs)
    with pytest.raises(RuntimeError):
        r.write([rec("a", Event.INCOMING, "1001", ts=T0)])
    assert obs.done == []
    with db.connect() as conn:
        assert repo.max_cursor(conn) == 0  # the event went with the transaction
    obs.fail_in_record = False
    r.write([rec("a", Event.INCOMING, "1001", ts=T0)])  # the hook sends it again
    assert [t for _, t in obs.done] == [T.INCOMING]


def test_an_observer_that_fails_after_the_commit_loses_no_event(db: Engine) -> None:  # noqa: F811
    class Failing(Recording):
        def committed(self, happened: Sequence[Happened]) -> None:
            raise RuntimeError("the browser is gone")

    r = recorder(db, Failing())
    results = r.write([rec("a", Event.INCOMING, "1001", ts=T0)])
    assert len(results) == 1
    with db.connect() as conn:
        assert repo.max_cursor(conn) == 1


def test_the_observer_gets_a_snapshot_not_the_live_call(db: Engine) -> None:  # noqa: F811
    obs = Recording()
    r = recorder(db, obs)
    r.write([rec("a", Event.INCOMING, "1001", ts=T0)])
    r.write([rec("b", Event.RING, "1001", ts=T0 + 1)])
    first, second = obs.snapshots
    assert first.state is CallState.RINGING and first.rang is False
    assert second.rang is True  # the later change did not reach the first snapshot


def test_a_call_stored_before_transitions_fires_nothing_for_what_it_already_is() -> None:
    call = Call(
        call_id="c1",
        direction=Direction.INCOMING,
        number="1001",
        state=CallState.ENDED,
        started_at=T0,
        outcome=Outcome.MISSED,
        rang=True,
        events=["u1"],
        transitions=None,
    )
    assert fire(call, T0) == []
    assert call.transitions == ["incoming", "ringing", "missed", "ended"]


def test_a_pending_dial_fires_nothing_until_microsip_reports_it() -> None:
    call = Call(
        call_id="c1",
        direction=Direction.OUTGOING,
        number="5551234",
        state=CallState.DIALING,
        started_at=T0,
    )
    assert fire(call, T0) == []
    call.outcome, call.state = Outcome.NOT_PLACED, CallState.ENDED
    assert fire(call, T0) == []  # never placed: nothing happened on the phone
    call = Call(
        call_id="c2",
        direction=Direction.OUTGOING,
        number="5551234",
        state=CallState.DIALING,
        started_at=T0,
        events=["u1"],
    )
    assert [h.transition for h in fire(call, T0)] == [T.OUTGOING]
