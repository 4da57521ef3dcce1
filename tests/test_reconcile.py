"""Reconciliation with MicroSIP's [Calls] history (facts §5) and the sweep that imports the calls
no hook announced: on hand-made entries, on entries written as MicroSIP writes them, and on a real
MicroSIP 3.2x history from the corpus."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from microsip_bridge.calls.reconcile import (
    apply_history,
    calls_from_history,
    entry_connected,
    history_call,
    history_matches,
    history_outcome,
    is_cancel_text,
    number_matches,
    pair_history,
)
from microsip_bridge.calls.state import CallTracker
from microsip_bridge.microsip.history import CallEntry, CallType, read_history
from microsip_bridge.microsip.history_ring import append_entry, update_entry
from microsip_bridge.microsip.inifile import IniDocument
from microsip_bridge.model import (
    SOURCE_HISTORY,
    Call,
    CallState,
    Direction,
    Event,
    EventRecord,
    Outcome,
    history_call_id,
)

SASAMOSENKO = Path("ini") / "real-sasamosenko-3.2x.microsip.ini"
MICROTALK = Path("ini") / "real-microtalk-ng-2016.microsip.ini"
# Ours, of the same shapes (tests/fixture_files.py): a 3.21 history and a 2016 fork's.
HISTORY = Path("ini") / "history-3.21.microsip.ini"
FORK = Path("ini") / "fork-2016.microsip.ini"
T0 = 1_750_000_000  # whole seconds, as [Calls] keeps them


class Hooks:
    """Plays hook events into a tracker; each call's latest copy is kept."""

    def __init__(self) -> None:
        self.tracker = CallTracker()
        self.calls: dict[str, Call] = {}
        self.count = 0

    def fire(self, event: str, number: str, at: float) -> Call:
        self.count += 1
        rec = EventRecord(f"h{self.count}", Event(event), number, at)
        (call,) = self.tracker.feed(rec)
        self.calls[call.call_id] = call
        return call

    def play(self, steps: Iterable[tuple[str, str, float]]) -> Call:
        call = None
        for step in steps:
            call = self.fire(*step)
        assert call is not None
        return call


def entry(
    number: str = "100",
    type: CallType = CallType.INCOMING,
    time: int = T0,
    duration: int = 0,
    info: str = "",
    name: str = "Alice",
    key: int = 5,
) -> CallEntry:
    return CallEntry(key, number, name, type, time, duration, info)


def incoming_answered(number: str = "100", talk: float = 30.0) -> Call:
    return Hooks().play(
        [
            ("incoming", number, T0 + 0.3),
            ("ring", number, T0 + 0.5),
            ("answer", number, T0 + 4.0),
            ("start", number, T0 + 4.01),
            ("end", number, T0 + 4.0 + talk),
        ]
    )


def outgoing_unconnected(number: str = "100") -> Call:
    return Hooks().play([("outgoing", number, T0 + 0.2), ("end", number, T0 + 9.0)])


def missed(number: str = "100") -> Call:
    return Hooks().play(
        [("incoming", number, T0 + 0.3), ("ring", number, T0 + 0.5), ("end", number, T0 + 20)]
    )


# --- matching ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hook", "stored", "outgoing", "same"),
    [
        ("100", "100", False, True),
        # @domain when the domain is not the account's; URI parameters; ,dtmf (facts §5)
        ("100", "100@pbx.example.com", False, True),
        ("100", "100@pbx.example.com;transport=tcp", False, True),
        ("100", "100,123#", False, True),
        ("100", "1000", False, False),
        ("100", "10", False, False),
        ("1000", "100", False, False),
        # dialingPrefix: applied before the outgoing hook, stripped from [Calls] (facts §2.4, §5)
        ("95551234", "5551234", True, True),
        ("95551234", "5551234", False, False),
        ("95551234", "34", True, False),
        # no user part: the hooks pass nothing (or the domain for busy/end, facts §2.4)
        ("", "", False, True),
        ("", "@pbx.example.com", False, True),
        ("", "pbx.example.com", False, True),
        ("", "100", False, False),
        ("pbx.example.com", "@pbx.example.com", False, True),
        ("pbx.example.com", "pbx.example.com", False, True),
        ("100", "", False, False),
    ],
)
def test_number_matches(hook: str, stored: str, outgoing: bool, same: bool) -> None:
    assert number_matches(hook, stored, outgoing=outgoing) is same


def test_the_entry_must_be_created_near_the_call_start() -> None:
    # MicroSIP creates the entry with the call's tab (facts §5), right after the first hook.
    call = incoming_answered()
    assert history_matches(call, entry(time=T0))
    assert history_matches(call, entry(time=T0 + 10))
    assert not history_matches(call, entry(time=T0 + 11))
    assert not history_matches(call, entry(time=T0 - 10))
    assert not history_matches(call, entry(number="200"))
    assert history_matches(call, entry(time=T0 + 20), window=30)


def test_a_call_seen_only_at_its_end_matches_an_entry_made_before() -> None:
    lone = Hooks().play([("end", "100", T0 + 95.0)])
    assert lone.direction is Direction.UNKNOWN
    assert history_matches(lone, entry(time=T0, duration=60))
    assert not history_matches(lone, entry(time=T0 - 2000, duration=60))


# --- apply_history ----------------------------------------------------------------------------


def test_answered_call_gets_name_and_microsip_fields() -> None:
    call = incoming_answered(talk=30.0)
    e = entry(duration=30, info="Call Ended", name="Alice Example", key=17)
    out = apply_history(call, e)
    assert out.name == "Alice Example"
    assert (out.microsip_key, out.microsip_time, out.microsip_type) == (17, T0, 1)
    assert (out.microsip_info, out.microsip_duration) == ("Call Ended", 30)
    assert out.outcome is Outcome.ANSWERED
    assert out.disagreement is None
    assert call.name == ""  # the argument is not changed
    assert call.microsip_key is None


def test_an_entry_of_another_call_changes_nothing() -> None:
    # MicroSIP 3.19 runs the hook before writing the history (facts §5): the newest entry is
    # then the previous call.
    call = incoming_answered()
    previous = entry(time=T0 - 300, duration=12, info="Call Ended", name="Bob")
    assert apply_history(call, previous) == call
    assert apply_history(call, entry(number="999")) == call


def test_an_empty_name_does_not_erase_ours() -> None:
    call = dataclasses.replace(incoming_answered(), name="From contacts")
    assert apply_history(call, entry(duration=30, name="")).name == "From contacts"


@pytest.mark.parametrize(
    ("info", "outcome"),
    [
        # MicroSIP's texts for an unconnected outgoing call (S22 MessagesDlg::OnEndCall)
        ("Call Ended", Outcome.CANCELLED),
        ("Canceled", Outcome.CANCELLED),
        ("Request Terminated", Outcome.CANCELLED),
        ("", Outcome.CANCELLED),
        # translated: the info is in the UI language (facts §5)
        ("Anruf beendet", Outcome.CANCELLED),
        ("Отменено", Outcome.CANCELLED),
        ("  call ended. ", Outcome.CANCELLED),
        # errors
        ("Incorrect dialing or non-existent number", Outcome.FAILED),
        ("Server Internal Error", Outcome.FAILED),
        ("Server Failure: 503 Service Unavailable", Outcome.FAILED),
        ("Request Timeout", Outcome.FAILED),
    ],
)
def test_outgoing_unconnected_cancelled_or_failed(info: str, outcome: Outcome) -> None:
    call = outgoing_unconnected()
    assert call.outcome is Outcome.CANCELLED
    out = apply_history(call, entry(type=CallType.OUTGOING, info=info))
    assert out.outcome is outcome
    assert out.microsip_info == info
    assert out.disagreement is None


def test_cancel_texts_can_be_added() -> None:
    call = outgoing_unconnected()
    e = entry(type=CallType.OUTGOING, info="Hívás vége")
    assert apply_history(call, e).outcome is Outcome.FAILED
    assert apply_history(call, e, cancel_texts=["hívás vége"]).outcome is Outcome.CANCELLED
    assert is_cancel_text("HÍVÁS VÉGE", ["Hívás vége"])


def test_answered_elsewhere_refines_missed() -> None:
    out = apply_history(
        missed(), entry(type=CallType.ANSWERED_ELSEWHERE, info="Answered Elsewhere")
    )
    assert out.outcome is Outcome.ANSWERED_ELSEWHERE
    assert out.disagreement is None


def test_hooks_answered_but_history_missed_is_a_disagreement() -> None:
    out = apply_history(incoming_answered(), entry(type=CallType.MISSED, info="Missed Call"))
    assert out.outcome is Outcome.ANSWERED  # the hooks' reading stays
    assert out.disagreement is not None
    assert "answered" in out.disagreement
    assert "missed" in out.disagreement


def test_hooks_missed_but_history_answered_is_a_disagreement() -> None:
    out = apply_history(missed(), entry(type=CallType.INCOMING, duration=25))
    assert out.outcome is Outcome.MISSED
    assert out.disagreement is not None
    assert "not connected" in out.disagreement


def test_answered_here_but_elsewhere_per_history() -> None:
    out = apply_history(incoming_answered(), entry(type=CallType.ANSWERED_ELSEWHERE))
    assert out.outcome is Outcome.ANSWERED
    assert out.disagreement is not None
    assert "answered_elsewhere" in out.disagreement


@pytest.mark.parametrize(("stored", "differs"), [(30, False), (32, False), (33, True), (5, True)])
def test_durations_differing_by_more_than_2_s(stored: int, differs: bool) -> None:
    out = apply_history(incoming_answered(talk=30.0), entry(duration=stored))
    assert (out.disagreement is not None) is differs
    if differs:
        assert out.disagreement is not None
        assert "duration" in out.disagreement
    assert out.duration == pytest.approx(30.0)  # ours stays


def test_direction_differs() -> None:
    out = apply_history(incoming_answered(), entry(type=CallType.OUTGOING, duration=30))
    assert out.disagreement is not None
    assert out.disagreement.startswith("direction: hooks say incoming")
    assert out.direction is Direction.INCOMING


def test_a_short_outgoing_call_stored_as_0_s_is_no_disagreement() -> None:
    call = Hooks().play(
        [("outgoing", "100", T0 + 0.1), ("start", "100", T0 + 3.0), ("end", "100", T0 + 3.6)]
    )
    assert apply_history(call, entry(type=CallType.OUTGOING, duration=0)).disagreement is None


def test_a_lone_end_takes_direction_and_outcome_from_history() -> None:
    lone = Hooks().play([("end", "100", T0 + 64.0)])
    assert lone.outcome is Outcome.UNKNOWN
    out = apply_history(lone, entry(type=CallType.INCOMING, duration=60, name="Carol"))
    assert out.direction is Direction.INCOMING
    assert out.outcome is Outcome.ANSWERED
    assert out.duration == pytest.approx(60.0)
    assert out.answered_at == pytest.approx(T0 + 4.0)
    assert out.ended_at == pytest.approx(T0 + 64.0)
    assert out.started_at == T0  # when MicroSIP created the entry
    assert out.disagreement is None
    lone_busy = Hooks().play([("busy", "100", T0 + 3.0)])
    stored = entry(type=CallType.OUTGOING, info="Busy Here")
    assert apply_history(lone_busy, stored).outcome is Outcome.BUSY
    declined = entry(type=CallType.MISSED, info="Declined")
    assert apply_history(lone_busy, declined).outcome is Outcome.DECLINED


def test_a_rejected_call_found_in_history_was_not_rejected() -> None:
    # Rejected calls are not recorded (facts §5): an entry means the ring was lost.
    hooks = Hooks()
    hooks.fire("incoming", "100", T0 + 0.2)
    (rejected,) = hooks.tracker.expire(T0 + 60)
    assert rejected.outcome is Outcome.REJECTED
    out = apply_history(rejected, entry(type=CallType.MISSED, info="Missed Call"))
    assert out.outcome is Outcome.MISSED
    assert out.disagreement is not None
    assert "rejected" in out.disagreement


def test_an_open_call_only_takes_the_name() -> None:
    hooks = Hooks()
    ringing = hooks.play([("incoming", "100", T0 + 0.2), ("ring", "100", T0 + 0.4)])
    out = apply_history(ringing, entry(type=CallType.MISSED, name="Dave"))
    assert out.name == "Dave"
    assert out.microsip_key is None  # not linked: the entry is not final
    assert out.outcome is None
    assert out.state is CallState.RINGING
    assert out.disagreement is None


@pytest.mark.parametrize(
    "make",
    [incoming_answered, outgoing_unconnected, missed],
)
@pytest.mark.parametrize("type", list(CallType))
@pytest.mark.parametrize("info", ["Call Ended", "Server Internal Error", ""])
@pytest.mark.parametrize("duration", [0, 30, 90])
def test_applying_twice_is_applying_once(
    make: Callable[[], Call], type: CallType, info: str, duration: int
) -> None:
    call = make()
    e = entry(type=type, info=info, duration=duration)
    once = apply_history(call, e)
    assert apply_history(once, e) == once


def test_the_tracker_keeps_a_reconciled_call() -> None:
    hooks = Hooks()
    call = hooks.play([("outgoing", "100", T0 + 0.2), ("end", "100", T0 + 9.0)])
    reconciled = apply_history(call, entry(type=CallType.OUTGOING, info="Service Unavailable"))
    assert reconciled.outcome is Outcome.FAILED
    assert hooks.tracker.update(reconciled)
    again = hooks.fire("end", "100", T0 + 9.01)  # a repeated end
    assert (again.outcome, again.name, again.microsip_key) == (Outcome.FAILED, "Alice", 5)
    # A call seen only at its busy, settled by [Calls] as declined, stays so in the tracker.
    lone = hooks.fire("busy", "200", T0 + 30.0)
    declined = apply_history(lone, entry("200", CallType.MISSED, T0 + 25, info="Declined"))
    assert (declined.direction, declined.outcome) == (Direction.INCOMING, Outcome.DECLINED)
    assert hooks.tracker.update(declined)
    assert hooks.tracker.get(lone.call_id) == declined


# --- written as MicroSIP writes them ----------------------------------------------------------


def test_reconcile_with_the_newest_entry_as_microsip_writes_it() -> None:
    # 3.20+: the entry is created with the call's tab and updated with duration and info
    # before cmdCallEnd runs (facts §5), so the newest entry at `end` is this call's.
    doc = IniDocument.new()
    append_entry(doc, "200", "Earlier", CallType.OUTGOING, T0 - 600, 40, "Call Ended")
    hooks = Hooks()
    hooks.fire("incoming", "100", T0 + 0.2)
    key = append_entry(doc, "100@pbx.example.com", "Erin", CallType.INCOMING, T0, 0, "")
    hooks.fire("ring", "100", T0 + 0.4)
    hooks.fire("answer", "100", T0 + 5.0)
    hooks.fire("start", "100", T0 + 5.02)
    update_entry(doc, key, duration=45, info="Call Ended")
    call = hooks.fire("end", "100", T0 + 50.0)
    newest = read_history(doc).latest
    assert newest is not None
    out = apply_history(call, newest)
    assert (out.name, out.microsip_key, out.outcome) == ("Erin", key, Outcome.ANSWERED)
    assert out.disagreement is None
    assert out.duration == pytest.approx(45.0)


# --- the sweep --------------------------------------------------------------------------------


def test_history_outcomes_by_type() -> None:
    assert history_outcome(entry(type=CallType.INCOMING, duration=5)) is Outcome.ANSWERED
    assert history_outcome(entry(type=CallType.MISSED)) is Outcome.MISSED
    assert history_outcome(entry(type=CallType.MISSED, info="Declined")) is Outcome.DECLINED
    elsewhere = entry(type=CallType.ANSWERED_ELSEWHERE)
    assert history_outcome(elsewhere) is Outcome.ANSWERED_ELSEWHERE
    out = CallType.OUTGOING
    assert history_outcome(entry(type=out, duration=7)) is Outcome.ANSWERED
    assert history_outcome(entry(type=out, info="Canceled")) is Outcome.CANCELLED
    assert history_outcome(entry(type=out, info="Busy Here")) is Outcome.BUSY
    assert history_outcome(entry(type=out, info="Not Found")) is Outcome.FAILED
    assert entry_connected(entry(type=CallType.INCOMING))
    assert not entry_connected(entry(type=out))


def test_a_history_call() -> None:
    call = history_call(entry(type=CallType.INCOMING, duration=42, key=9, name="Frank"))
    assert call.call_id == history_call_id(9, T0)
    assert call.source == SOURCE_HISTORY
    assert (call.direction, call.state, call.outcome) == (
        Direction.INCOMING,
        CallState.ENDED,
        Outcome.ANSWERED,
    )
    assert (call.started_at, call.answered_at, call.ended_at) == (T0, T0, T0 + 42)
    assert call.duration == 42.0
    assert (call.name, call.microsip_key, call.microsip_time) == ("Frank", 9, T0)
    assert call.events == []
    missed_call = history_call(entry(type=CallType.MISSED))
    assert (missed_call.answered_at, missed_call.duration) == (None, None)
    assert missed_call.ended_at == T0


def test_the_sweep_skips_known_entries_and_hook_calls() -> None:
    hooked = incoming_answered("100")
    entries = [
        entry("100", CallType.INCOMING, T0, 30, "Call Ended", key=1),  # the hook call's
        entry("200", CallType.MISSED, T0 + 100, key=2),
        entry("300", CallType.OUTGOING, T0 + 200, 12, "Call Ended", key=3),
    ]
    swept = calls_from_history(entries, known=set(), calls=[hooked])
    assert [c.number for c in swept] == ["200", "300"]
    assert [c.outcome for c in swept] == [Outcome.MISSED, Outcome.ANSWERED]
    again = calls_from_history(entries, known={(2, T0 + 100)}, calls=[hooked])
    assert [c.number for c in again] == ["300"]
    assert again[0].call_id == swept[1].call_id  # a re-sweep never duplicates
    assert [c.number for c in calls_from_history(entries, known=set())] == ["100", "200", "300"]


def test_pair_history_links_each_call_to_its_own_entry() -> None:
    first = missed("100")
    second = dataclasses.replace(missed("100"), call_id="second", started_at=T0 + 60.3)
    reconciled = dataclasses.replace(incoming_answered("100"), call_id="r", microsip_key=1)
    entries = [
        entry("100", CallType.MISSED, T0 + 60, key=11),
        entry("100", CallType.MISSED, T0, key=10),
        entry("100", CallType.MISSED, T0 + 1, key=12),
    ]
    pairs = pair_history([first, second, reconciled], entries)
    assert [(c.call_id, e.key) for c, e in pairs] == [(first.call_id, 10), ("second", 11)]
    known = {(10, T0)}
    pairs = pair_history([first, second], entries, known)
    assert [(c.call_id, e.key) for c, e in pairs] == [(first.call_id, 12), ("second", 11)]


def test_pairing_prefers_the_entry_of_the_same_direction() -> None:
    call = outgoing_unconnected("100")
    entries = [
        entry("100", CallType.MISSED, T0, key=1),
        entry("100", CallType.OUTGOING, T0 + 3, info="Canceled", key=2),
    ]
    ((_, chosen),) = pair_history([call], entries)
    assert chosen.key == 2


@given(
    types=st.lists(st.sampled_from(list(CallType)), min_size=1, max_size=30),
    seen=st.sets(st.integers(min_value=0, max_value=29)),
)
def test_the_sweep_is_idempotent(types: list[CallType], seen: set[int]) -> None:
    entries = [
        entry(str(100 + i), t, T0 + 60 * i, 10 * (i % 3), "Call Ended", key=i)
        for i, t in enumerate(types)
    ]
    known = {(e.key, e.time) for e in entries if e.key in seen}
    first = calls_from_history(entries, known)
    assert len(first) == len(entries) - len(known)
    assert len({c.call_id for c in first}) == len(first)
    linked = known | {(c.microsip_key or 0, c.microsip_time or 0) for c in first}
    assert calls_from_history(entries, linked) == []
    assert calls_from_history(entries, known) == first


# --- the real world ---------------------------------------------------------------------------


def test_sweeping_a_3_21_history(data_dir: Path) -> None:
    # 30 calls as MicroSIP 3.21 writes them: a Cyrillic name, type 3, two calls in the same
    # second, empty info, and the failure texts of a real PBX.
    entries = read_history(IniDocument.load(data_dir / HISTORY)).entries
    calls = calls_from_history(entries, known=set())
    assert len(calls) == 30
    assert len({c.call_id for c in calls}) == 30
    by_key = {c.microsip_key: c for c in calls}
    assert by_key[0].name == "Бухгалтерия (Иванова)"
    assert (by_key[1].direction, by_key[1].outcome, by_key[1].duration) == (
        Direction.OUTGOING,
        Outcome.ANSWERED,
        12.0,
    )
    assert by_key[3].outcome is Outcome.FAILED  # "Server Internal Error"
    assert by_key[7].outcome is Outcome.CANCELLED  # "Canceled"
    assert by_key[11].outcome is Outcome.FAILED  # "Not Found"
    assert by_key[19].outcome is Outcome.MISSED
    assert by_key[28].outcome is Outcome.ANSWERED_ELSEWHERE
    seen = {(c.microsip_key or 0, c.microsip_time or 0) for c in calls}
    assert calls_from_history(entries, seen) == []
    # A second sweep of the same file gives the same ids.
    assert [c.call_id for c in calls_from_history(entries, set())] == [c.call_id for c in calls]


def test_sweeping_a_real_history(corpus: Path) -> None:
    # 44 calls written by MicroSIP 3.2x (corpus README): names in Cyrillic, type 3, two calls
    # in the same second, empty info.
    entries = read_history(IniDocument.load(corpus / SASAMOSENKO)).entries
    calls = calls_from_history(entries, known=set())
    assert len(calls) == 44
    assert len({c.call_id for c in calls}) == 44
    by_key = {c.microsip_key: c for c in calls}
    assert by_key[0].name == "Hard (Академическая)"
    assert (by_key[1].direction, by_key[1].outcome, by_key[1].duration) == (
        Direction.OUTGOING,
        Outcome.ANSWERED,
        7.0,
    )
    assert by_key[3].outcome is Outcome.FAILED  # "Server Internal Error"
    assert by_key[7].outcome is Outcome.CANCELLED  # "Canceled"
    assert by_key[19].outcome is Outcome.FAILED  # "Incorrect dialing or non-existent number"
    assert by_key[32].outcome is Outcome.MISSED
    assert by_key[42].outcome is Outcome.ANSWERED_ELSEWHERE
    seen = {(c.microsip_key or 0, c.microsip_time or 0) for c in calls}
    assert calls_from_history(entries, seen) == []
    # A second sweep of the same file gives the same ids.
    assert [c.call_id for c in calls_from_history(entries, set())] == [c.call_id for c in calls]


@pytest.mark.parametrize(
    ("sample", "count"), [(f"data/{FORK}", 12), (f"corpus/{MICROTALK}", 11)], indirect=["sample"]
)
def test_a_2016_fork_history_sweeps_too(sample: Path, count: int) -> None:
    entries = read_history(IniDocument.load(sample)).entries
    calls = calls_from_history(entries, known=set())
    assert len(calls) == len(entries) == count
    assert all(c.state is CallState.ENDED and c.outcome is not None for c in calls)


def hook_steps(e: CallEntry) -> list[tuple[str, str, float]]:
    """The hook events MicroSIP fires for the call an entry records (facts §2.2)."""
    at = e.time + 0.4
    talk = max(e.duration, 0) + 0.4
    if e.type is CallType.OUTGOING:
        if e.duration > 0:
            return [
                ("outgoing", e.number, at),
                ("start", e.number, at + 3),
                ("end", e.number, at + 3 + talk),
            ]
        return [("outgoing", e.number, at), ("end", e.number, at + 5)]
    if e.type is CallType.INCOMING:
        return [
            ("incoming", e.number, at),
            ("ring", e.number, at + 0.2),
            ("answer", e.number, at + 2),
            ("start", e.number, at + 2.01),
            ("end", e.number, at + 2 + talk),
        ]
    return [("incoming", e.number, at), ("ring", e.number, at + 0.2), ("end", e.number, at + 9)]


@pytest.mark.parametrize("sample", [f"data/{HISTORY}", f"corpus/{SASAMOSENKO}"], indirect=True)
def test_hook_calls_reconcile_with_a_real_history(sample: Path) -> None:
    # Replay the real calls through the hooks, then reconcile each with its entry: names come
    # from [Calls], outcomes agree with what MicroSIP recorded, nothing disagrees.
    entries = read_history(IniDocument.load(sample)).entries
    for e in entries:
        hooks = Hooks()
        call = hooks.play(hook_steps(e))
        out = apply_history(call, e)
        assert out.microsip_key == e.key, e
        assert out.name == e.name
        assert out.outcome is history_outcome(e), e
        assert out.disagreement is None, (e, out.disagreement)
    # And the sweep imports none of them once they are linked.
    hooks = Hooks()
    linked = []
    for e in entries:
        call = hooks.play(hook_steps(e))
        linked.append(call)
    pairs = pair_history(linked, entries)
    assert len(pairs) == len(entries)
    assert all(c.number == e.number for c, e in pairs)
    assert calls_from_history(entries, set(), calls=linked) == []
