"""The call log's transactions: events into the log, through the call-state model, into calls."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from microsip_bridge.calls.state import CallTracker
from microsip_bridge.calls.transitions import Happened, fire
from microsip_bridge.errors import BridgeError
from microsip_bridge.model import Call, Event, EventRecord, Transition
from microsip_bridge.store import repo

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine

    from microsip_bridge.calls.feed import EventHub

logger = logging.getLogger("microsip_bridge.ingest")

_TERMINAL = (Event.BUSY, Event.END)
_U_FFFD = "\ufffd"

# Finishes the calls that just ended (their ids in the set) before they are saved: gets the
# tracker and the changed calls, returns the calls to save.
Completer = Callable[[CallTracker, list[Call], set[str | None]], list[Call]]


def clean_number(number: str) -> tuple[str, bytes | None]:
    """``number`` as storable text, and the raw bytes it stood for when it was not text.

    A hook on Linux receives argv bytes that are not UTF-8 as lone surrogates U+DC80..U+DCFF
    (``surrogateescape``); a JSON client can send any lone surrogate. No database stores them,
    and MicroSIP on Windows would itself have shown U+FFFD (pjsip's UTF-8 to UTF-16
    conversion). So the escaped bytes are put back and decoded with U+FFFD for each bad
    sequence, as ``bytes.decode("utf-8", "replace")`` does, and any other lone surrogate
    becomes U+FFFD; the daemon logs the raw bytes. Valid text is returned as it is, with
    ``None``.
    """
    try:
        number.encode("utf-8")
    except UnicodeEncodeError:
        pass
    else:
        return number, None
    raw = bytearray()
    for char in number:
        code = ord(char)
        if 0xDC80 <= code <= 0xDCFF:
            raw.append(code - 0xDC00)
        elif 0xD800 <= code <= 0xDFFF:
            raw += _U_FFFD.encode("utf-8")
        else:
            raw += char.encode("utf-8")
    data = bytes(raw)
    return data.decode("utf-8", "replace"), data


class CallObserver(Protocol):
    """What acts on calls as they are saved (the actions service: names, rules, webhooks).

    The recorder calls it for every call it saves, on the writer thread: :meth:`prepare` before
    the save (fill in what is derived from the call: its normalised number, its caller's name;
    fast, no I/O), :meth:`record` inside the transaction (what must be exactly as durable as
    the event: the webhook outbox rows), :meth:`committed` after the commit (side effects:
    screen-pops, programs, notifications, waking the delivery worker; never raises, never
    blocks). A transaction that fails calls no :meth:`committed`: its transitions fire again
    when the events are stored again."""

    def prepare(self, calls: Sequence[Call]) -> None: ...

    def record(self, conn: Connection, happened: Sequence[Happened]) -> None: ...

    def committed(self, happened: Sequence[Happened]) -> None: ...


@dataclass(frozen=True, slots=True)
class IngestResult:
    """What became of one event: its cursor in the log, whether the log had it already, and
    the call it belongs to (``None`` when the tracker no longer remembers it and the log has no
    link)."""

    uid: str
    cursor: int
    duplicate: bool
    call_id: str | None


class Recorder:
    """Writes events and calls to the store, with the call-state model in step.

    One :meth:`write` is one transaction that looks the events up in the event log (a uid
    seen before is a duplicate and changes nothing), feeds the new ones to the tracker, lets
    ``complete`` finish the calls they ended (reconciliation with ``[Calls]``,
    calls/sweep.py), inserts the new events already linked to their calls
    (``store.repo.insert_events``: each row written once) and saves the changed calls. If
    a transaction fails (the database went away, the disk is full), the tracker is rebuilt from
    the store before the error goes on, so memory never runs ahead of the database.

    ``tracker``: the call-state model it owns from now on (do not feed it elsewhere).
    ``clock`` gives Unix seconds (the hook's clock), for received times and timeouts.
    ``make_tracker`` builds an empty tracker like ``tracker`` (used to rebuild after a failed
    transaction; default: same timeouts). ``complete``: see :data:`Completer` (None: calls are
    saved as the events left them). ``feed``: where each committed event is published
    (calls/feed.py), after its commit. ``observer``: what acts on the saved calls and their
    transitions (:class:`CallObserver`; None: the transitions are recorded, nothing acts).
    Every call is saved through :meth:`save`. Not thread-safe: one writer thread uses it.
    """

    def __init__(
        self,
        engine: Engine,
        tracker: CallTracker,
        *,
        clock: Callable[[], float],
        make_tracker: Callable[[], CallTracker] | None = None,
        complete: Completer | None = None,
        feed: EventHub | None = None,
        observer: CallObserver | None = None,
    ) -> None:
        self.engine = engine
        self.feed = feed
        self.observer = observer
        self._happened: list[Happened] = []  # by this transaction, for after its commit
        self._last_cursor = 0  # the highest cursor committed: the feed publishes above it
        self.tracker = tracker
        self.clock = clock
        self._make_tracker = make_tracker or _same_kind_of_tracker(tracker)
        self._complete = complete
        self._stale = False  # the tracker must be reloaded from the store before it is fed

    # --- the tracker and the store ------------------------------------------------------------

    def load(self) -> None:
        """Give the tracker the calls that may still get events: the open ones and those that
        ended within its ``keep_closed`` window, with their events from the log."""
        now = self.clock()
        keep = self.tracker.keep_closed
        with self.engine.connect() as conn:
            calls = repo.open_calls(conn)
            recent = [
                c
                for c in repo.list_calls(conn, since=now - keep - self.tracker.stale_timeout)
                if not c.is_open and c.updated_at >= now - keep
            ]
            every = calls + recent
            self._last_cursor = max(self._last_cursor, repo.max_cursor(conn))
            linked = [
                (e.call_id or c.call_id, e.event, e.ts)
                for c in every
                for e in repo.call_events(conn, c.call_id)
            ]
        self.tracker.load(every, linked)
        if every:
            logger.info("continuing %d open and %d recent calls", len(calls), len(recent))

    def reload(self) -> None:
        """Rebuild the tracker from the store: after a purge, so that it forgets the calls the
        store no longer has (a late event then starts a new call, never re-saves a purged one)."""
        self.tracker = self._make_tracker()
        self._stale = True
        self.ensure_loaded()

    def ensure_loaded(self) -> None:
        """Reload the tracker if a failed transaction left it behind the store: an empty
        tracker must never take events, it would split calls in two."""
        if self._stale:
            self.load()
            self._stale = False

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One transaction on the store; if it fails, the tracker is rebuilt from the store.
        Save calls in it with :meth:`save`."""
        self._happened = []
        try:
            with self.engine.begin() as conn:
                yield conn
        except Exception:
            self._happened = []
            self._recover()
            raise
        if self.feed is not None:
            self._publish_new()
        self._after_commit()

    def save(self, conn: Connection, calls: Sequence[Call], *, link: bool = True) -> None:
        """Save ``calls`` in the transaction ``conn``: prepared by the observer, their new
        transitions fired and recorded (in the calls, and by the observer in the same
        transaction). The observer acts on them once the transaction commits."""
        if not calls:
            return
        observer = self.observer
        if observer is not None:
            observer.prepare(calls)
        now = self.clock()
        happened = [h for call in calls for h in fire(call, now)]
        repo.save_calls(conn, calls, link=link)
        tracker = self.tracker
        for call in calls:
            tracker.annotate(call)
        if happened:
            if observer is not None:
                observer.record(conn, happened)
            self._happened.extend(happened)

    def _after_commit(self) -> None:
        happened, self._happened = self._happened, []
        for h in happened:
            if h.transition is Transition.ENDED:
                # One line per call for whoever reads the log; the number in it is masked by
                # the daemon's log formatter unless mask_numbers is off (server/masking.py).
                c = h.call
                logger.info(
                    "call %s ended: %s %s, %s",
                    c.call_id,
                    c.direction.value,
                    c.number or "(no number)",
                    c.outcome.value if c.outcome is not None else "unknown",
                )
        if happened and self.observer is not None:
            try:
                self.observer.committed(happened)
            except Exception:
                # Stored is stored: an action that fails must not fail the events' commit.
                logger.exception("the actions on %d call transitions failed", len(happened))

    def _recover(self) -> None:
        """After a failed transaction: a tracker rebuilt from what the store really has. If
        the store cannot be read now, the next write tries again first
        (:meth:`ensure_loaded`)."""
        self.tracker = self._make_tracker()
        self._stale = True
        try:
            self.ensure_loaded()
        except Exception as exc:
            logger.error("could not reload the calls from the store: %s", exc)

    # --- writing ------------------------------------------------------------------------------

    def write(self, recs: Sequence[EventRecord]) -> list[IngestResult | BridgeError]:
        """Record ``recs``, apply the new ones, save the calls: one transaction. An event the
        store refuses gets its :class:`BridgeError` as its result; any other failure raises
        (and nothing of the batch is stored)."""
        try:
            return self._write(recs)
        except Exception:
            self._recover()
            raise

    def _write(self, recs: Sequence[EventRecord]) -> list[IngestResult | BridgeError]:
        self.ensure_loaded()
        recs = [self._clean(rec) for rec in recs]
        now = self.clock()
        # Checked first: an event the store refuses must never reach the tracker.
        rows: dict[str, dict[str, Any]] = {}  # by uid, from its first copy the store takes
        firsts: list[EventRecord] = []
        refused: dict[int, BridgeError] = {}
        for i, rec in enumerate(recs):
            if rec.uid in rows:
                continue
            try:
                rows[rec.uid] = repo.event_row(rec, now)
            except BridgeError as exc:
                logger.warning("event %s refused: %s", rec.uid, exc)
                refused[i] = exc
            else:
                firsts.append(rec)
        self._happened = []
        with self.engine.begin() as conn:
            # The log, not the tracker's memory, says which events are new; they are then
            # placed in calls and inserted linked to them, so no event row is written twice.
            logged = repo.logged_events(conn, list(rows))
            fresh = [rec for rec in firsts if rec.uid not in logged]
            tracker = self.tracker
            changed = tracker.feed_many(fresh)
            if self._complete is not None:
                ended = {tracker.call_id_of(rec.uid) for rec in fresh if rec.event in _TERMINAL}
                changed = self._complete(tracker, changed, ended)
            placed = []
            for rec in fresh:
                row = rows[rec.uid]
                row["call_id"] = tracker.call_id_of(rec.uid)
                placed.append(row)
            cursors = repo.insert_events(conn, placed)
            # Their older events were linked when the calls were saved before.
            self.save(conn, changed, link=False)
            results: list[IngestResult | BridgeError] = []
            for i, rec in enumerate(recs):
                error = refused.get(i)
                if error is not None:
                    results.append(error)
                    continue
                uid = rec.uid
                call_id = tracker.call_id_of(uid)
                if uid in logged:
                    cursor, linked = logged[uid]
                    results.append(IngestResult(uid, cursor, True, call_id or linked))
                else:
                    # A later copy of a uid in the batch is a duplicate of the first.
                    new = rows.pop(uid, None) is not None
                    results.append(IngestResult(uid, cursors[uid], not new, call_id))
        if self.feed is not None:
            self._publish(recs, results, changed, now)
        self._after_commit()
        return results

    # --- the feed: after the commit, never before ---------------------------------------------

    def _publish(
        self,
        recs: Sequence[EventRecord],
        results: Sequence[IngestResult | BridgeError],
        changed: Sequence[Call],
        now: float,
    ) -> None:
        committed = [
            (rec, r.cursor, r.call_id)
            for rec, r in zip(recs, results, strict=True)
            if isinstance(r, IngestResult) and not r.duplicate
        ]
        if not committed:
            return
        self._last_cursor = max(self._last_cursor, max(c for _, c, _ in committed))
        feed = self.feed
        if feed is None or not feed.active:
            return
        from microsip_bridge.calls.feed import live_messages

        try:
            feed.publish(live_messages(committed, changed, now))
        except Exception:
            # Stored is stored: a client that misses it gets it when it reconnects.
            logger.exception("could not publish %d committed events", len(committed))

    def _publish_new(self) -> None:
        """Publish what a transaction of others (the sweep's imports) added to the log."""
        from microsip_bridge.calls.feed import replay_page

        feed = self.feed
        try:
            with self.engine.connect() as conn:
                if feed is None or not feed.active:
                    self._last_cursor = max(self._last_cursor, repo.max_cursor(conn))
                    return
                while page := replay_page(conn, self._last_cursor, 1000):
                    self._last_cursor = page[-1][0]
                    feed.publish(page)
        except Exception:
            logger.exception("could not publish the events of a transaction")

    @staticmethod
    def _clean(rec: EventRecord) -> EventRecord:
        number, raw = clean_number(rec.number)
        if raw is None:
            return rec
        logger.warning(
            "event %s (%s): the number held bytes that are not UTF-8, stored with U+FFFD; "
            "raw bytes: %s",
            rec.uid,
            rec.event.value,
            raw.hex(" "),
        )
        return dataclasses.replace(rec, number=number)

    def expire(self) -> list[Call]:
        """Apply the tracker's timeouts now (lone ``incoming`` rejected, stale calls unknown)
        and save the calls they closed; returns them."""
        self.ensure_loaded()
        closed = self.tracker.expire(self.clock())
        if closed:
            with self.transaction() as conn:
                self.save(conn, closed)
        return closed


def _same_kind_of_tracker(tracker: CallTracker) -> Callable[[], CallTracker]:
    def make() -> CallTracker:
        return CallTracker(
            reject_timeout=tracker.reject_timeout,
            stale_timeout=tracker.stale_timeout,
            reorder_window=tracker.reorder_window,
            keep_closed=tracker.keep_closed,
            dial_timeout=tracker.dial_timeout,
        )

    return make
