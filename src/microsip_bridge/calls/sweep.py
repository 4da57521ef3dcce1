"""MicroSIP's [Calls] history into the call log: calls completed as they end, and the sweep."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from microsip_bridge.calls import reconcile
from microsip_bridge.calls.recorder import Recorder, clean_number
from microsip_bridge.calls.state import CallTracker
from microsip_bridge.errors import BridgeError
from microsip_bridge.model import Call, Event, EventRecord, Outcome
from microsip_bridge.store import repo

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from microsip_bridge.microsip.history import CallEntry, CallHistory

logger = logging.getLogger("microsip_bridge.ingest")

# An entry's call may still be running, or its hooks still on their way (spooled, queued):
# the sweep leaves entries that ended less than this long ago to the hooks.
SWEEP_GRACE = 60.0


class Reconciler:
    """Reconciliation with the ``[Calls]`` of MicroSIP's ``ini``: reads the ini when the rules
    (calls/reconcile.py) need it, and saves what they give.

    * **As a call ends** (:meth:`complete`, inside the transaction that records its
      ``busy``/``end``): its final entry adds the name, duration and status (facts §5).
    * **The sweep** (:meth:`sweep`, periodic): ended hook calls that found no final entry when
      they ended get theirs, and entries no hook announced (calls made while the daemon was
      down) become calls of their own once they are :data:`SWEEP_GRACE` seconds old, with one
      synthetic ``sweep`` event each in the log so that readers of the log see them. Entries of
      calls still going on, and entries without their status text yet, are left alone.

    ``cancel_texts``: status texts that mean "cancelled", beyond the known ones.
    """

    def __init__(self, ini: Path, *, cancel_texts: Iterable[str] = ()) -> None:
        self.ini = ini
        self.cancel_texts = tuple(cancel_texts)
        self._ini_problem: str | None = None

    def read_history(self) -> CallHistory | None:
        """MicroSIP's ``[Calls]`` now, or None when the ini cannot be read (logged once per
        distinct problem, not on every call)."""
        from microsip_bridge.microsip.history import read_history
        from microsip_bridge.microsip.inifile import IniDocument

        try:
            history = read_history(IniDocument.load(self.ini))
        except (BridgeError, OSError) as exc:
            problem = str(exc)
            if problem != self._ini_problem:
                logger.warning("cannot read MicroSIP's call history: %s", problem)
            self._ini_problem = problem
            return None
        self._ini_problem = None
        return history

    def complete(
        self, tracker: CallTracker, changed: list[Call], ended: set[str | None]
    ) -> list[Call]:
        """``changed`` with the calls that just ended (ids in ``ended``) completed from their
        final entries; the tracker takes the completed calls (a
        :data:`~.recorder.Completer`)."""
        targets = {c.call_id for c in changed if c.call_id in ended and not c.is_open}
        if not targets:
            return changed
        history = self.read_history()
        if history is None:
            return changed
        out: list[Call] = []
        for call in changed:
            entry = (
                reconcile.final_entry(call, history.entries) if call.call_id in targets else None
            )
            if entry is not None:
                new = reconcile.apply_history(call, entry, cancel_texts=self.cancel_texts)
                if new != call:
                    tracker.update(new)
                    call = new
            out.append(call)
        return out

    def sweep(self, recorder: Recorder) -> int:
        """Complete ended calls from their entries and import the calls no hook announced, in
        one transaction of ``recorder``; returns how many calls it saved."""
        history = self.read_history()
        if history is None or not history.entries:
            return 0
        recorder.ensure_loaded()
        tracker = recorder.tracker
        now = recorder.clock()
        open_calls = tracker.open_calls()
        final = [e for e in history.entries if _final(e, open_calls, now, tracker.stale_timeout)]
        # Importing needs more patience than completing: the hooks of a call that just ended
        # may still be on their way (queued, spooled), and they would make it a hook call.
        settled = [e for e in final if now - (e.time + e.duration) >= SWEEP_GRACE]
        if not final:
            return 0
        saved = 0
        imported: list[Call] = []
        with recorder.transaction() as conn:
            known = repo.history_keys_seen(conn)
            oldest = min(e.time for e in final)
            stored = repo.list_calls(conn, since=oldest - reconcile.MATCH_WINDOW)
            for call, entry in reconcile.pair_history(stored, final, known):
                new = reconcile.apply_history(call, entry, cancel_texts=self.cancel_texts)
                known.add((entry.key, entry.time))
                if new != call:
                    repo.save_call(conn, new)
                    tracker.update(new)
                    saved += 1
            imported = reconcile.calls_from_history(
                settled, known, calls=stored, cancel_texts=self.cancel_texts
            )
            for call in imported:
                saved += _import(conn, call, now)
        if imported:
            logger.info(
                "sweep: imported %d calls from [Calls] that no hook announced", len(imported)
            )
        return saved


def _final(entry: CallEntry, open_calls: Sequence[Call], now: float, stale: float) -> bool:
    """The entry describes a call that is over: no open call owns it, and MicroSIP has written
    its status text (it does when the call ends, facts §5; an entry still without one after
    ``stale`` seconds is taken as it is)."""
    if any(reconcile.history_matches(call, entry) for call in open_calls):
        return False
    return bool(entry.info) or now - entry.time >= stale


def _import(conn: Connection, call: Call, now: float) -> int:
    """Save a call imported from [Calls], with one ``sweep`` event for readers of the log."""
    end_kind = Event.BUSY if call.outcome in (Outcome.BUSY, Outcome.DECLINED) else Event.END
    rec = EventRecord(
        uid=f"sweep-{call.microsip_key}-{call.microsip_time}",
        event=end_kind,
        number=clean_number(call.number)[0],
        ts=call.ended_at if call.ended_at is not None else call.started_at,
        pid=None,
        source="sweep",
    )
    call = dataclasses.replace(call, number=rec.number, events=[rec.uid])
    try:
        repo.record_event(conn, rec, received_at=now)
        repo.save_call(conn, call)
    except BridgeError as exc:
        logger.warning("[Calls] entry %s not imported: %s", call.microsip_key, exc)
        return 0
    return 1
