"""Reconcile hook calls with MicroSIP's ``[Calls]`` history; import calls no hook announced.

**After busy/end** the daemon reads the newest ``[Calls]`` entry: MicroSIP 3.20+ writes its
duration and status text *before* running ``cmdCallBusy``/``cmdCallEnd`` (facts §5).
:func:`apply_history` links it to the call when it is the same call (same number, created within
``window`` seconds of the call's first event: MicroSIP creates the entry with the call's tab) and
adds what only MicroSIP knows: the contact name, its type, status text and connected seconds.
On 3.19 the hooks run before the history is written, so the newest entry is the previous call;
the number and time check refuses it, and the periodic sweep (:func:`pair_history`) links the
right entry later.

**Numbers.** The hooks get the remote user part (facts §2.4). ``[Calls]`` stores the same user
part, followed by ``@domain`` (and URI parameters) when the domain is not the account's, and by
``,dtmf`` commands when there were some; the account's ``dialingPrefix`` is stripped from it,
while an outgoing hook sees the number after the prefix (facts §5, §2.4). :func:`number_matches`
allows for all three.

**Outcomes.** The hooks are the first source; the history refines them:

* type 3 (answered elsewhere, 3.22) turns a missed call into ``ANSWERED_ELSEWHERE``;
* an outgoing call that ended unconnected (``CANCELLED``) becomes ``FAILED`` unless its status
  text says it was cancelled. MicroSIP writes "Call Ended" when the user hangs up before the
  call connects (its fast hang-up path ends the call before the CANCEL completes) and "Canceled"
  for a 487; other texts are SIP errors ("Incorrect dialing or non-existent number",
  "Service Unavailable", "Server Failure: 503 ...") (S22 ``MessagesDlg::OnEndCall``);
* a call whose events say nothing (``UNKNOWN``: only a ``busy``/``end`` was seen, or it went
  stale) or that the tracker thought rejected takes direction and outcome from the entry.

The status text is **translated into MicroSIP's UI language** before it is stored. The English
texts above come from MicroSIP's source; the other languages in :data:`CANCEL_TEXTS` and
:data:`DECLINED_TEXTS` are common renderings, not read from MicroSIP's language packs (which are
not in the sources examined), so callers can add their own (``cancel_texts=``).

Where the two sources disagree (direction, whether the call connected, the duration by more than
:data:`DURATION_TOLERANCE` seconds), the call keeps the hooks' reading and ``disagreement`` says
what differs.

**The sweep.** :func:`calls_from_history` turns ``[Calls]`` entries that no hook announced
(calls made while the bridge was not running) into ended calls with ``source="history"``. Their
ids come from the entry's slot and time (:func:`~microsip_bridge.model.history_call_id`),
so importing the same entry twice gives the same id, and entries already linked to a call
(``known``) or that belong to a hook call (``calls``) are skipped.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable

from microsip_bridge.microsip.contact import match_key
from microsip_bridge.microsip.history import CallEntry, CallType
from microsip_bridge.model import (
    SOURCE_HISTORY,
    SOURCE_HOOKS,
    Call,
    CallState,
    Direction,
    Outcome,
    history_call_id,
)

# Seconds between a call's first event and the creation of its [Calls] entry that still make
# them the same call. MicroSIP creates the entry with the call's tab, right after the first hook
# returns (our hook returns within 1 s); the entry's time is truncated to whole seconds.
MATCH_WINDOW = 10.0
# A call seen only at its end started before it by its ringing time plus its duration; allow
# this much ringing/dialing when only the end is known.
MAX_RINGING = 600.0
# [Calls] keeps whole seconds, measured by MicroSIP from CONFIRMED; the hooks measure between
# two hook starts. A difference up to this is rounding, not a disagreement.
DURATION_TOLERANCE = 2.0


def _norm(text: str) -> str:
    return " ".join(text.split()).casefold().rstrip(".!")


# "Call Ended" and "Canceled" are MicroSIP's (S22 MessagesDlg::OnEndCall); "Request Terminated"
# is the SIP reason phrase of 487, which older versions stored.
CANCEL_TEXTS: frozenset[str] = frozenset(
    _norm(t)
    for t in (
        "Call Ended",
        "Canceled",
        "Cancelled",
        "Request Terminated",
        # de, fr, es, it, pt, nl, pl, ru, uk, tr, cs
        "Anruf beendet",
        "Gespräch beendet",
        "Abgebrochen",
        "Storniert",
        "Appel terminé",
        "Annulé",
        "Appel annulé",
        "Llamada finalizada",
        "Llamada terminada",
        "Cancelado",
        "Cancelada",
        "Chiamata terminata",
        "Annullato",
        "Annullata",
        "Chamada encerrada",
        "Chamada terminada",
        "Gesprek beëindigd",
        "Oproep beëindigd",
        "Geannuleerd",
        "Połączenie zakończone",
        "Anulowano",
        "Anulowane",
        "Вызов завершен",
        "Вызов завершён",
        "Звонок завершен",
        "Звонок завершён",
        "Отменено",
        "Отменен",
        "Отменён",
        "Виклик завершено",
        "Дзвінок завершено",
        "Скасовано",
        "Arama sonlandı",
        "Arama sonlandırıldı",
        "İptal edildi",
        "Hovor ukončen",
        "Zrušeno",
    )
)
# MicroSIP writes "Declined" for an incoming call the user declined (type 2).
DECLINED_TEXTS: frozenset[str] = frozenset(
    _norm(t)
    for t in (
        "Declined",
        "Abgelehnt",
        "Refusé",
        "Rechazado",
        "Rechazada",
        "Rifiutato",
        "Rifiutata",
        "Recusado",
        "Recusada",
        "Geweigerd",
        "Odrzucono",
        "Отклонено",
        "Отклонен",
        "Отклонён",
        "Відхилено",
        "Reddedildi",
        "Odmítnuto",
    )
)
# SIP reason phrases of the final statuses that fire cmdCallBusy (486, 600, 603; facts §2.2).
BUSY_TEXTS: frozenset[str] = frozenset(
    _norm(t) for t in ("Busy Here", "Busy Everywhere", "Decline", "Busy")
)

_USER_END = re.compile(r"[@;,]")


def is_cancel_text(info: str, extra: Iterable[str] = ()) -> bool:
    """``info`` says the call was cancelled or hung up before connecting (any known language)."""
    text = _norm(info)
    return text in CANCEL_TEXTS or text in {_norm(t) for t in extra}


def history_direction(call_type: CallType | int) -> Direction:
    """Type 0 is outgoing; 1 (incoming), 2 (missed) and 3 (answered elsewhere) are incoming.
    (3.19/3.20 store an answered-elsewhere call as 0, facts §5: it cannot be told apart.)"""
    return Direction.OUTGOING if int(call_type) == CallType.OUTGOING else Direction.INCOMING


def entry_connected(entry: CallEntry) -> bool:
    """MicroSIP's entry says the call connected here: incoming (type 1), or outgoing with
    connected seconds."""
    if entry.type is CallType.INCOMING:
        return True
    return entry.type is CallType.OUTGOING and entry.duration > 0


def history_outcome(entry: CallEntry, cancel_texts: Iterable[str] = ()) -> Outcome:
    """The outcome a ``[Calls]`` entry gives on its own (see the module docstring)."""
    info = _norm(entry.info)
    if entry.type is CallType.INCOMING:
        return Outcome.ANSWERED
    if entry.type is CallType.MISSED:
        return Outcome.DECLINED if info in DECLINED_TEXTS else Outcome.MISSED
    if entry.type is CallType.ANSWERED_ELSEWHERE:
        return Outcome.ANSWERED_ELSEWHERE
    if entry.duration > 0:
        return Outcome.ANSWERED
    if not info or is_cancel_text(entry.info, cancel_texts):
        return Outcome.CANCELLED
    if info in BUSY_TEXTS:
        return Outcome.BUSY
    return Outcome.FAILED


def number_matches(call_number: str, entry_number: str, *, outgoing: bool = False) -> bool:
    """The hooks' number and a ``[Calls]`` number name the same party (module docstring).

    ``entry_number`` may add ``@domain``, URI parameters or ``,dtmf``; for an outgoing call it
    may lack the dialling prefix that the hook's number starts with. An empty hook number (no
    user part) matches an entry with no user part either.
    """
    if call_number == entry_number:
        return True
    user = _USER_END.split(entry_number, maxsplit=1)[0]
    if not call_number:
        return not user or ("@" not in entry_number and "." in entry_number)
    if entry_number.startswith(call_number) and entry_number[len(call_number)] in "@;,":
        return True
    if not user and entry_number.startswith("@"):
        # No user part: MicroSIP names the party by its domain, as busy/end do (facts §2.4).
        domain = _USER_END.split(entry_number[1:], maxsplit=1)[0]
        return domain == call_number
    return outgoing and len(user) >= 3 and call_number.endswith(user)


def history_matches(call: Call, entry: CallEntry, *, window: float = MATCH_WINDOW) -> bool:
    """``entry`` is ``call``'s ``[Calls]`` entry: same party, created within ``window`` seconds
    of the call's first event (earlier by up to :data:`MAX_RINGING` plus its duration when only
    the call's end was seen)."""
    outgoing = call.direction is Direction.OUTGOING
    if not number_matches(call.number, entry.number, outgoing=outgoing):
        return False
    earliest = call.started_at - window
    if call.direction is Direction.UNKNOWN:
        earliest -= MAX_RINGING + entry.duration
    return earliest <= entry.time <= call.started_at + window


def final_entry(call: Call, entries: Iterable[CallEntry]) -> CallEntry | None:
    """The final ``[Calls]`` entry of a call that just ended: the closest in time among those
    that match it (:func:`history_matches`) and have their status text. Not simply the newest
    entry: with call waiting, a second call's entry is newer than the one of the call that ends
    first. An entry without its text is not final yet (MicroSIP 3.19 runs the hooks before it
    writes it, facts §5); the sweep completes such calls later."""
    best: tuple[float, int, CallEntry] | None = None
    for entry in entries:
        if entry.info and history_matches(call, entry):
            rank = (abs(entry.time - call.started_at), -entry.key, entry)
            if best is None or rank[:2] < best[:2]:
                best = rank
    return None if best is None else best[2]


def _notes(call: Call, entry: CallEntry, hooks_decided: bool) -> list[str]:
    notes: list[str] = []
    code = int(entry.type)
    entry_direction = history_direction(entry.type)
    if call.direction is not Direction.UNKNOWN and call.direction is not entry_direction:
        notes.append(
            f"direction: hooks say {call.direction.value}, [Calls] says "
            f"{entry_direction.value} (type {code})"
        )
    if not hooks_decided:
        return notes
    hooks_connected = call.answered_at is not None
    connected = entry_connected(entry)
    short = call.duration is not None and call.duration < DURATION_TOLERANCE
    if hooks_connected and not connected and not (code == CallType.OUTGOING and short):
        notes.append(
            f"answered: hooks say connected, [Calls] says {entry.type.label} "
            f"(type {code}, {entry.duration} s)"
        )
    elif connected and not hooks_connected:
        notes.append(
            f"answered: hooks say not connected, [Calls] says {entry.type.label} "
            f"(type {code}, {entry.duration} s)"
        )
    elif (
        hooks_connected
        and connected
        and call.duration is not None
        and abs(call.duration - entry.duration) > DURATION_TOLERANCE
    ):
        notes.append(f"duration: hooks {call.duration:.1f} s, [Calls] {entry.duration} s")
    return notes


def _entry_fields(entry: CallEntry) -> tuple[int, int, int, str, int]:
    return (entry.key, entry.time, int(entry.type), entry.info, entry.duration)


def apply_history(
    call: Call,
    entry: CallEntry,
    *,
    window: float = MATCH_WINDOW,
    cancel_texts: Iterable[str] = (),
) -> Call:
    """``call`` completed with its ``[Calls]`` entry (a new Call; ``call`` is not changed).

    If the entry is not the call's (:func:`history_matches`), the copy is unchanged. Otherwise it
    gets the name (when MicroSIP has one), the ``microsip_*`` fields, a refined outcome and a
    ``disagreement`` text (None when the sources agree). For a call still open only the name is
    taken: the entry is not final yet, and the call is not linked to it. Applying the same entry
    twice gives the same call.
    """
    out = call.copy()
    if not history_matches(call, entry, window=window):
        return out
    if out.state is not CallState.ENDED:
        _take_name(out, entry)
        return out
    linked = (
        out.microsip_key,
        out.microsip_time,
        out.microsip_type,
        out.microsip_info,
        out.microsip_duration,
    )
    if linked == _entry_fields(entry):
        return out  # already applied: the refinements must not be judged twice
    out.microsip_key = entry.key
    out.microsip_time = entry.time
    out.microsip_type = int(entry.type)
    out.microsip_info = entry.info
    out.microsip_duration = entry.duration
    _take_name(out, entry)
    if out.direction is Direction.UNKNOWN:
        # The hooks saw only the end: the call started when MicroSIP made its entry.
        out.direction = history_direction(entry.type)
        out.started_at = min(out.started_at, float(entry.time))
    hooks_decided = out.outcome not in (Outcome.UNKNOWN, Outcome.REJECTED)
    notes = _notes(call, entry, hooks_decided)
    if not hooks_decided:
        if out.outcome is Outcome.REJECTED:
            notes.append(
                f"outcome: hooks say rejected (nothing after incoming), [Calls] has the "
                f"call as {entry.type.label}"
            )
        out.outcome = history_outcome(entry, cancel_texts)
        if entry_connected(entry):
            seconds = float(entry.duration)
            if out.answered_at is None:
                end = out.ended_at if out.ended_at is not None else out.started_at + seconds
                out.answered_at = max(end - seconds, out.started_at)
                out.ended_at = end
            else:
                out.ended_at = out.answered_at + seconds
            out.duration = out.ended_at - out.answered_at
    elif entry.type is CallType.ANSWERED_ELSEWHERE and out.outcome is Outcome.MISSED:
        out.outcome = Outcome.ANSWERED_ELSEWHERE
    elif (
        out.outcome is Outcome.CANCELLED
        and out.direction is Direction.OUTGOING
        and _norm(entry.info)
        and not is_cancel_text(entry.info, cancel_texts)
    ):
        out.outcome = Outcome.FAILED
    out.disagreement = "; ".join(notes) or None
    return out


def pair_history(
    calls: Iterable[Call],
    entries: Iterable[CallEntry],
    known: Collection[tuple[int, int]] = (),
    *,
    window: float = MATCH_WINDOW,
) -> list[tuple[Call, CallEntry]]:
    """Ended hook calls not reconciled yet, each with the ``[Calls]`` entry that is its own.

    For the sweep: a call whose reconciliation after ``end`` found no entry (MicroSIP 3.19
    writes it after the hook; the ini was busy) gets it now. Entries in ``known`` (already
    linked) are skipped; each call and each entry is used once, the closest in time first and
    an entry of the call's direction before one that is not. Apply each pair with
    :func:`apply_history`.
    """
    waiting = [
        c
        for c in calls
        if c.source == SOURCE_HOOKS and c.state is CallState.ENDED and c.microsip_key is None
    ]
    free = [e for e in entries if (e.key, e.time) not in known]
    candidates: list[tuple[bool, float, int, int]] = []
    for i, call in enumerate(waiting):
        for j, entry in enumerate(free):
            if history_matches(call, entry, window=window):
                other = (
                    call.direction is not Direction.UNKNOWN
                    and call.direction is not history_direction(entry.type)
                )
                candidates.append((other, abs(entry.time - call.started_at), i, j))
    candidates.sort()
    used_calls: set[int] = set()
    used_entries: set[int] = set()
    pairs: list[tuple[int, int]] = []
    for _, _, i, j in candidates:
        if i in used_calls or j in used_entries:
            continue
        used_calls.add(i)
        used_entries.add(j)
        pairs.append((i, j))
    pairs.sort()
    return [(waiting[i], free[j]) for i, j in pairs]


def history_call(entry: CallEntry, cancel_texts: Iterable[str] = ()) -> Call:
    """The ended call a ``[Calls]`` entry describes, for a call no hook announced.

    MicroSIP keeps only when the entry was created and the connected seconds, so the times are
    estimates: the call starts at the entry's time, and an answered call is taken as answered
    then (ringing time unknown) and ended ``duration`` seconds later.
    """
    outcome = history_outcome(entry, cancel_texts)
    started = float(entry.time)
    answered = outcome is Outcome.ANSWERED
    duration = float(entry.duration) if answered else None
    ended = started + (duration or 0.0)
    return Call(
        call_id=history_call_id(entry.key, entry.time),
        direction=history_direction(entry.type),
        number=entry.number,
        state=CallState.ENDED,
        started_at=started,
        outcome=outcome,
        name=entry.name,
        name_source=SOURCE_MICROSIP if entry.name else "",
        answered_at=started if answered else None,
        ended_at=ended,
        duration=duration,
        microsip_key=entry.key,
        microsip_time=entry.time,
        microsip_type=int(entry.type),
        microsip_info=entry.info,
        microsip_duration=entry.duration,
        source=SOURCE_HISTORY,
        updated_at=ended,
    )


def calls_from_history(
    entries: Iterable[CallEntry],
    known: Collection[tuple[int, int]],
    *,
    calls: Iterable[Call] = (),
    window: float = MATCH_WINDOW,
    cancel_texts: Iterable[str] = (),
) -> list[Call]:
    """Calls for the ``[Calls]`` entries no hook announced, in the entries' order.

    Skipped: entries whose ``(key, time)`` is in ``known`` (already linked to a call: the store's
    ``history_entries_seen``), and entries that :func:`pair_history` gives to one of ``calls``
    (recent hook calls not reconciled yet: reconcile them instead of importing a duplicate).
    The ids are derived from ``(key, time)``, so a second sweep yields the same calls.
    """
    listed = list(entries)
    skip = set(known)
    skip.update((e.key, e.time) for _, e in pair_history(calls, listed, skip, window=window))
    out: list[Call] = []
    for entry in listed:
        pair = (entry.key, entry.time)
        if pair in skip:
            continue
        skip.add(pair)
        out.append(history_call(entry, cancel_texts))
    return out


SOURCE_MICROSIP = "microsip"  # contacts/names.py's name for MicroSIP as a source of names


def is_only_the_number(name: str, *numbers: str) -> bool:
    """Whether a name MicroSIP shows is only the number: it falls back on the number when no
    contact and no SIP display name names the caller (facts §4.4)."""
    key = match_key(name)
    return bool(key) and any(key == match_key(number) for number in numbers)


def _take_name(out: Call, entry: CallEntry) -> None:
    # MicroSIP's own name wins, but its stand-in (the number) never replaces a name.
    if not entry.name:
        return
    if out.name and is_only_the_number(entry.name, entry.number, out.number):
        return
    out.name, out.name_source = entry.name, SOURCE_MICROSIP
