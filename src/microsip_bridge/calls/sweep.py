"""MicroSIP's [Calls] history into the call log: calls completed as they end, and the sweep."""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
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
    * **The sweep** (:meth:`sweep_entries`, periodic, driven by :class:`Sweeper`): ended hook
      calls that found no final entry when they ended get theirs, and entries no hook announced
      (calls made while the daemon was down) become calls of their own once they are
      :data:`SWEEP_GRACE` seconds old, with one synthetic ``sweep`` event each in the log so
      that readers of the log see them. Entries of calls still going on, and entries without
      their status text yet, are left alone. The entries a sweep settled are remembered
      (:meth:`settle`), so the next one looks up only new entries (:meth:`unsettled`).

    ``cancel_texts``: status texts that mean "cancelled", beyond the known ones.
    """

    def __init__(self, ini: Path, *, cancel_texts: Iterable[str] = ()) -> None:
        self.ini = ini
        self.cancel_texts = tuple(cancel_texts)
        # Read and written by the writer (complete) and the sweep's thread: a race costs at
        # most one log line more or less.
        self._ini_problem: str | None = None
        # (key, time) of the entries a sweep settled: skipped from then on, without a look at
        # the store. Only entries still in the ring are kept.
        self._settled: frozenset[tuple[int, int]] = frozenset()
        self._lock = threading.Lock()

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

    # --- the sweep ----------------------------------------------------------------------------

    def unsettled(self, history: CallHistory) -> list[CallEntry]:
        """The entries of ``history`` that the sweep has not settled yet (any thread): on a
        running daemon, the few MicroSIP wrote since the last sweep."""
        with self._lock:
            return [e for e in history.entries if (e.key, e.time) not in self._settled]

    def sweep_entries(self, recorder: Recorder, entries: Sequence[CallEntry]) -> SweepResult:
        """Complete ended calls from ``entries`` and import the calls no hook announced, in one
        transaction of ``recorder`` (on the writer thread). Looks up only ``entries`` in the
        store, so the time it holds the writer follows their number, not the store's size."""
        recorder.ensure_loaded()
        tracker = recorder.tracker
        now = recorder.clock()
        open_calls = tracker.open_calls()
        final = [e for e in entries if _final(e, open_calls, now, tracker.stale_timeout)]
        if not final:
            return SweepResult(0, frozenset())
        # Importing needs more patience than completing: the hooks of a call that just ended
        # may still be on their way (queued, spooled), and they would make it a hook call.
        settled = [e for e in final if now - (e.time + e.duration) >= SWEEP_GRACE]
        saved = 0
        done: set[tuple[int, int]] = set()
        with recorder.transaction() as conn:
            known = repo.history_entries_seen(conn, [(e.key, e.time) for e in final])
            done |= known
            oldest = min(e.time for e in final)
            waiting = repo.calls_awaiting_history(conn, since=oldest - reconcile.MATCH_WINDOW)
            changed: list[Call] = []
            for call, entry in reconcile.pair_history(waiting, final, known):
                new = reconcile.apply_history(call, entry, cancel_texts=self.cancel_texts)
                known.add((entry.key, entry.time))
                done.add((entry.key, entry.time))
                if new != call:
                    changed.append(new)
            recorder.save(conn, changed)
            for new in changed:
                tracker.update(new)
            saved += len(changed)
            imported = reconcile.calls_from_history(
                settled, known, calls=waiting, cancel_texts=self.cancel_texts
            )
            for call in imported:
                saved += _import(recorder, conn, call, now)
                # Imported, or refused for good (its values): either way, never again.
                if call.microsip_key is not None and call.microsip_time is not None:
                    done.add((call.microsip_key, call.microsip_time))
        if imported:
            logger.info(
                "sweep: imported %d calls from [Calls] that no hook announced", len(imported)
            )
        return SweepResult(saved, frozenset(done))

    def settle(self, history: CallHistory, result: SweepResult) -> None:
        """Remember what ``result`` settled, and forget the entries no longer in ``history``
        (MicroSIP reused their slots): the memory stays the size of the ring."""
        present = {(e.key, e.time) for e in history.entries}
        with self._lock:
            self._settled = (self._settled | result.settled) & present


@dataclass(frozen=True, slots=True)
class SweepResult:
    """What a sweep did: how many calls it saved (completed or imported), and the entries it
    settled (linked to a call in the store, or imported), which later sweeps skip."""

    saved: int
    settled: frozenset[tuple[int, int]]


class Sweeper:
    """The periodic sweep: every ``interval`` seconds, on a thread of its own, MicroSIP's ini
    is read and parsed and the entries the sweep settled before are set aside; only what is
    left, usually nothing, goes to the writer thread as a small job (``run_on_writer``). So
    hooks never wait behind an ini read or a scan of the store. A failure is logged once per
    distinct problem and retried at the next interval."""

    def __init__(
        self,
        reconciler: Reconciler,
        recorder: Recorder,
        run_on_writer: Callable[[Callable[[], SweepResult]], SweepResult],
        interval: float,
    ) -> None:
        self.reconciler = reconciler
        self.recorder = recorder
        self.interval = interval
        self._run_on_writer = run_on_writer
        self._round_lock = threading.Lock()  # one round at a time: the thread's or sweep_now's
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._problem: str | None = None

    def sweep(self) -> int:
        """One round now, on the calling thread (the write on the writer's); returns how many
        calls it saved."""
        with self._round_lock:
            history = self.reconciler.read_history()
            if history is None:
                return 0
            entries = self.reconciler.unsettled(history)
            if not entries:
                return 0
            result = self._run_on_writer(
                lambda: self.reconciler.sweep_entries(self.recorder, entries)
            )
            self.reconciler.settle(history, result)
            return result.saved

    def start(self) -> None:
        """Start the thread; its first round runs one interval from now."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="microsip-bridge-sweep", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the thread, after the round it may be in (so stop it before the writer)."""
        thread = self._thread
        if thread is None:
            return
        self._stop.set()
        thread.join(timeout)
        if thread.is_alive():
            logger.error("the sweep did not stop within %.0f s", timeout)
        self._thread = None

    def sweep_logged(self) -> None:
        """:meth:`sweep`, with a failure logged (once per distinct problem) instead of raised."""
        try:
            self.sweep()
        except Exception as exc:
            problem = f"{type(exc).__name__}: {exc}"
            if problem != self._problem:
                logger.exception("periodic sweep failed")
            self._problem = problem
        else:
            if self._problem is not None:
                logger.info("periodic sweep works again")
            self._problem = None

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sweep_logged()


def _final(entry: CallEntry, open_calls: Sequence[Call], now: float, stale: float) -> bool:
    """The entry describes a call that is over: no open call owns it, and MicroSIP has written
    its status text (it does when the call ends, facts §5; an entry still without one after
    ``stale`` seconds is taken as it is)."""
    if any(reconcile.history_matches(call, entry) for call in open_calls):
        return False
    return bool(entry.info) or now - entry.time >= stale


def _import(recorder: Recorder, conn: Connection, call: Call, now: float) -> int:
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
        recorder.save(conn, [call])
    except BridgeError as exc:
        logger.warning("[Calls] entry %s not imported: %s", call.microsip_key, exc)
        return 0
    return 1
