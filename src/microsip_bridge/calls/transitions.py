"""What happened to a call: the transitions (ringing, answered, ended...) each call fires once.

MicroSIP fires several hook events per call and the bridge may see a call again and again (a
duplicate event, a reorder, the [Calls] sweep completing it). Rules and webhooks want the
moments a person means: "it rang", "it was answered", "it ended". So a transition is a
predicate on the call (:data:`HOLDS`); it fires when it first holds, and the call remembers it
(``Call.transitions``, stored with the call): however often the call is saved, each fires at
most once per call, across daemon restarts too.
"""

from __future__ import annotations

from collections.abc import Callable

from microsip_bridge.model import Call, CallState, Direction, Happened, Outcome, Transition

__all__ = ["HOLDS", "Happened", "fire"]

HOLDS: dict[Transition, Callable[[Call], bool]] = {
    Transition.INCOMING: lambda c: c.direction is Direction.INCOMING,
    Transition.OUTGOING: lambda c: c.direction is Direction.OUTGOING and c.number != "",
    Transition.RINGING: lambda c: c.rang,
    Transition.ANSWERED: lambda c: c.answered_at is not None,
    Transition.CONNECTED: lambda c: (
        c.answered_at is not None
        and (c.state is CallState.CONNECTED or c.outcome is Outcome.ANSWERED)
    ),
    Transition.MISSED: lambda c: c.outcome is Outcome.MISSED,
    Transition.BUSY: lambda c: c.outcome in (Outcome.BUSY, Outcome.DECLINED),
    Transition.ENDED: lambda c: c.outcome is not None,
}


def fire(call: Call, now: float) -> list[Happened]:
    """The transitions that hold for ``call`` and have not fired yet, in :class:`Transition`
    order; they are recorded in ``call.transitions``. A pending dial (no event from MicroSIP
    yet) fires nothing until MicroSIP reports it; a call that predates transitions
    (``transitions`` None) fires nothing and starts recording."""
    holding = [t for t, holds in HOLDS.items() if holds(call)]
    if call.transitions is None:
        call.transitions = [t.value for t in holding]
        return []
    if call.outcome is Outcome.NOT_PLACED or (not call.events and call.outcome is None):
        # A dial MicroSIP never reported: nothing happened on the phone.
        return []
    fired = set(call.transitions)
    new = [t for t in holding if t.value not in fired]
    if not new:
        return []
    call.transitions.extend(t.value for t in new)
    snapshot = call.copy()
    return [Happened(snapshot, t, now) for t in new]
