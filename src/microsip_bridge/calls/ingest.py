"""The daemon's single writer: records events, feeds the call-state model, saves calls, durably.

One worker thread owns the :class:`~microsip_bridge.calls.state.CallTracker` and every database
write, so the order in which events are applied is the order in which they were queued, and no
two transactions race. Everything goes through its queue:

* **Hook events** (:meth:`Ingestor.submit`): the HTTP handler queues the event and waits for its
  future. The worker drains up to ``batch_size`` queued events into one transaction (group
  commit: one fsync for many hooks that fire at once) that records them in the event log
  (``store.repo.record_events``: a uid seen before is a duplicate and changes nothing), feeds
  the new ones to the tracker, reconciles the calls they ended with their ``[Calls]`` entries
  (:func:`entry_of`; facts §5; when an ini is configured), and saves the changed calls with
  their events linked. The futures are resolved only after the commit: a result means durable.
* **The spool** (calls/spool.py), at start and every ``spool_interval`` seconds, in batches.
* **Timeouts** (``tracker.expire``) every ``expire_interval`` seconds: a lone ``incoming`` is
  closed as rejected, a call open for hours as unknown (facts §2.2).
* **The [Calls] sweep** every ``sweep_interval`` seconds (with an ini): ended hook calls that
  found no final entry when they ended get theirs, and entries no hook announced (calls made
  while the daemon was down) become calls of their own once they are a minute old, with one
  synthetic ``sweep`` event each in the log so that readers of the log see them. Entries of
  calls still going on, and entries without their status text yet, are left alone.

**Numbers that are not text.** A hook on Linux receives argv bytes that are not UTF-8 as lone
surrogates (``surrogateescape``); a JSON client can send lone surrogates too. No database stores
them, and MicroSIP on Windows would itself have shown U+FFFD (pjsip's UTF-8 to UTF-16
conversion). So the stored number has each undecodable byte sequence replaced with U+FFFD, as
``bytes.decode("utf-8", "replace")`` does, and the raw bytes are kept, escaped, in the daemon's
log line for that event (:func:`clean_number`).

**Failures.** If a transaction fails (the database went away, the disk is full), the events of
that batch get the error (the hook then spools them, to be ingested again later) and the tracker
is rebuilt from the store, so memory never runs ahead of the database.
"""

from __future__ import annotations

import dataclasses
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import select

from microsip_bridge.calls import reconcile
from microsip_bridge.calls.spool import Rejected, SpoolReport, ingest_spool, reject
from microsip_bridge.calls.state import CallTracker
from microsip_bridge.errors import BridgeError
from microsip_bridge.model import Call, Event, EventRecord, Outcome
from microsip_bridge.store import repo
from microsip_bridge.store.schema import events as events_table
from microsip_bridge.wire import encode_record

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine

    from microsip_bridge.microsip.history import CallEntry, CallHistory

logger = logging.getLogger("microsip_bridge.ingest")

DEFAULT_BATCH = 100
SPOOL_BATCH = 500
# An entry's call may still be running, or its hooks still on their way (spooled, queued):
# the sweep leaves entries that ended less than this long ago to the hooks.
SWEEP_GRACE = 60.0
_TERMINAL = (Event.BUSY, Event.END)
_U_FFFD = "\ufffd"


def clean_number(number: str) -> tuple[str, bytes | None]:
    """``number`` as storable text, and the raw bytes it stood for when it was not text.

    Lone surrogates U+DC80..U+DCFF are bytes that were not UTF-8 (``surrogateescape``); the
    bytes are put back and decoded with U+FFFD for each bad sequence. Any other lone surrogate
    becomes U+FFFD. Valid text is returned as it is, with ``None``.
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


class NotStoredError(BridgeError):
    """The event was not stored (the daemon is stopping, the database failed): try again later;
    the event's id makes a second attempt safe."""


def entry_of(call: Call, entries: Iterable[CallEntry]) -> CallEntry | None:
    """The final [Calls] entry of a call that just ended: the closest in time among those that
    match it (:func:`~microsip_bridge.calls.reconcile.history_matches`) and have their status
    text. Not simply the newest entry: with call waiting, a second call's entry is newer than
    the one of the call that ends first. An entry without its text is not final yet (MicroSIP
    3.19 runs the hooks before it writes it, facts §5); the sweep completes such calls later."""
    best: tuple[float, int, CallEntry] | None = None
    for entry in entries:
        if entry.info and reconcile.history_matches(call, entry):
            rank = (abs(entry.time - call.started_at), -entry.key, entry)
            if best is None or rank[:2] < best[:2]:
                best = rank
    return None if best is None else best[2]


@dataclass(frozen=True, slots=True)
class IngestResult:
    """What became of one event: its cursor in the log, whether the log had it already, and
    the call it belongs to (``None`` when the tracker no longer remembers it and the log has no
    link)."""

    uid: str
    cursor: int
    duplicate: bool
    call_id: str | None


@dataclass(slots=True)
class _Submit:
    rec: EventRecord
    future: Future[IngestResult]


@dataclass(slots=True)
class _Job:
    name: str
    run: Callable[[], object]
    future: Future[object]


_STOP = object()


class Ingestor:
    """The single writer of the call log (see the module docstring).

    ``engine``: the store. ``tracker``: the call-state model it owns from now on (do not feed it
    elsewhere). ``ini``: MicroSIP's microsip.ini, for reconciliation and the sweep (None: off).
    ``home``: where the spool is (None: no spool ingestion). Intervals are in seconds;
    ``clock`` gives Unix seconds (the hook's clock), for received times and timeouts.
    ``make_tracker`` builds an empty tracker like ``tracker`` (used to rebuild after a failed
    transaction; default: same timeouts).

    **Usage**::

        ingestor = Ingestor(engine, CallTracker(), ini=ini, home=home)
        ingestor.start()                     # migrate, reload open calls, ingest the spool
        result = ingestor.submit(rec).result()   # durable once it returns
        ingestor.stop()
    """

    def __init__(
        self,
        engine: Engine,
        tracker: CallTracker,
        *,
        ini: Path | None = None,
        home: Path | None = None,
        spool_interval: float = 5.0,
        sweep_interval: float = 60.0,
        expire_interval: float = 1.0,
        batch_size: int = DEFAULT_BATCH,
        spool_batch: int = SPOOL_BATCH,
        clock: Callable[[], float] = time.time,
        make_tracker: Callable[[], CallTracker] | None = None,
        cancel_texts: Iterable[str] = (),
    ) -> None:
        if batch_size < 1 or spool_batch < 1:
            raise BridgeError("ingest batch sizes must be at least 1")
        if min(spool_interval, sweep_interval, expire_interval) <= 0:
            raise BridgeError("ingest intervals must be positive")
        self.engine = engine
        self.tracker = tracker
        self.ini = ini
        self.home = home
        self.spool_interval = spool_interval
        self.sweep_interval = sweep_interval
        self.expire_interval = expire_interval
        self.batch_size = batch_size
        self.spool_batch = spool_batch
        self.clock = clock
        self.cancel_texts = tuple(cancel_texts)
        self._make_tracker = make_tracker or self._same_kind_of_tracker(tracker)
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._accepting = False
        self._lock = threading.Lock()  # start/stop
        self._gate = threading.Lock()  # accepting + enqueue, atomic against stop()
        self._due: dict[str, float] = {}
        self._ini_problem: str | None = None
        self._failures: dict[str, str] = {}
        self._stale = False  # the tracker must be reloaded from the store before it is fed

    @staticmethod
    def _same_kind_of_tracker(tracker: CallTracker) -> Callable[[], CallTracker]:
        def make() -> CallTracker:
            return CallTracker(
                reject_timeout=tracker.reject_timeout,
                stale_timeout=tracker.stale_timeout,
                reorder_window=tracker.reorder_window,
                keep_closed=tracker.keep_closed,
            )

        return make

    # --- life cycle ---------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """The worker runs and accepts events."""
        return self._accepting

    def start(self, *, migrate: bool = True) -> None:
        """Migrate the store (``migrate``), reload the calls that may still get events, ingest
        what the spool holds, then start the worker. Idempotent. Raises BridgeError when the
        store cannot be opened or migrated."""
        with self._lock:
            if self._thread is not None:
                return
            if migrate:
                from microsip_bridge.store.engine import upgrade

                upgrade(self.engine)
            self._load_tracker()
            # Before the worker starts, this thread is the single writer.
            self._spool_round()
            now = time.monotonic()
            self._due = {
                "expire": now + self.expire_interval,
                "spool": now + self.spool_interval,
                "sweep": now + (0.0 if self.ini is not None else self.sweep_interval),
            }
            self._thread = threading.Thread(
                target=self._run, name="microsip-bridge-ingest", daemon=True
            )
            self._thread.start()
            with self._gate:
                self._accepting = True

    def stop(self, timeout: float = 30.0) -> None:
        """Finish what is queued, then stop the worker. Events submitted later are refused."""
        with self._lock:
            thread = self._thread
            if thread is None:
                return
            with self._gate:
                self._accepting = False
                self._queue.put(_STOP)
        thread.join(timeout)
        if thread.is_alive():
            logger.error("the ingest worker did not stop within %.0f s", timeout)
        with self._lock:
            self._thread = None

    # --- work ---------------------------------------------------------------------------------

    def submit(self, rec: EventRecord) -> Future[IngestResult]:
        """Queue one event; the future resolves once it is committed (or fails)."""
        future: Future[IngestResult] = Future()
        with self._gate:
            if not self._accepting:
                raise NotStoredError("the daemon is not accepting events (stopped or not started)")
            self._queue.put(_Submit(rec, future))
        return future

    def ingest(
        self, recs: Iterable[EventRecord], timeout: float | None = 60.0
    ) -> list[IngestResult]:
        """Queue events and wait until all are committed; results in the same order."""
        futures = [self.submit(rec) for rec in recs]
        return [f.result(timeout) for f in futures]

    def ingest_spool_now(self, timeout: float | None = 60.0) -> SpoolReport:
        """Ingest the spool now (on the worker); returns what was done."""
        result = self._job("spool", self._spool_round).result(timeout)
        assert isinstance(result, SpoolReport)
        return result

    def schedule_spool(self) -> None:
        """Ingest the spool soon (on the worker), without waiting for it."""
        self._job("spool", self._spool_round)

    def sweep_now(self, timeout: float | None = 60.0) -> int:
        """Run the [Calls] sweep now; returns how many calls it saved (imported or completed)."""
        result = self._job("sweep", self._sweep).result(timeout)
        assert isinstance(result, int)
        return result

    def expire_now(self, timeout: float | None = 60.0) -> list[Call]:
        """Apply the call timeouts now; returns the calls they closed."""
        result = self._job("expire", self._expire).result(timeout)
        assert isinstance(result, list)
        return result

    def _job(self, name: str, run: Callable[[], object]) -> Future[object]:
        future: Future[object] = Future()
        with self._gate:
            if not self._accepting:
                raise NotStoredError("the daemon is not running")
            self._queue.put(_Job(name, run, future))
        return future

    # --- the worker ---------------------------------------------------------------------------

    def _run(self) -> None:
        carry: object = None
        while True:
            item = carry
            carry = None
            if item is None:
                wait = max(0.0, min(self._due.values()) - time.monotonic())
                try:
                    item = self._queue.get(timeout=wait)
                except queue.Empty:
                    self._periodic()
                    continue
            if item is _STOP:
                self._drain_after_stop()
                return
            if isinstance(item, _Job):
                self._run_job(item)
            elif isinstance(item, _Submit):
                batch = [item]
                while len(batch) < self.batch_size:
                    try:
                        more = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if isinstance(more, _Submit):
                        batch.append(more)
                    else:
                        carry = more
                        break
                self._commit(batch)
            self._periodic()

    def _drain_after_stop(self) -> None:
        # stop() refused new work first; what was queued before it is still done.
        batch: list[_Submit] = []
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if isinstance(item, _Submit):
                batch.append(item)
            elif isinstance(item, _Job):
                item.future.set_exception(NotStoredError("the daemon stopped"))
        for start in range(0, len(batch), self.batch_size):
            self._commit(batch[start : start + self.batch_size])

    def _run_job(self, job: _Job) -> None:
        if not job.future.set_running_or_notify_cancel():
            return
        try:
            job.future.set_result(job.run())
        except Exception as exc:
            logger.exception("%s failed", job.name)
            job.future.set_exception(exc)

    def _periodic(self) -> None:
        now = time.monotonic()
        for name, interval, run in (
            ("expire", self.expire_interval, self._expire),
            ("spool", self.spool_interval, self._spool_round),
            ("sweep", self.sweep_interval, self._sweep),
        ):
            if now < self._due[name]:
                continue
            self._due[name] = now + interval
            if name == "sweep" and self.ini is None:
                continue
            try:
                run()
            except Exception as exc:
                # Retried at the next interval: the worker must outlive any of them. Logged
                # once per distinct failure, not every second while the database is down.
                problem = f"{type(exc).__name__}: {exc}"
                if self._failures.get(name) != problem:
                    logger.exception("periodic %s failed", name)
                self._failures[name] = problem
            else:
                if self._failures.pop(name, None) is not None:
                    logger.info("periodic %s works again", name)

    def _commit(self, batch: Sequence[_Submit]) -> None:
        live = [item for item in batch if item.future.set_running_or_notify_cancel()]
        if not live:
            return
        try:
            results = self._write([item.rec for item in live])
        except Exception as exc:
            error = NotStoredError(f"not stored: {exc}")
            logger.error("a batch of %d events was not stored: %s", len(live), exc)
            self._recover()
            for item in live:
                item.future.set_exception(error)
            return
        for item, result in zip(live, results, strict=True):
            if isinstance(result, BridgeError):
                item.future.set_exception(result)
            else:
                item.future.set_result(result)

    # --- one transaction ----------------------------------------------------------------------

    def _clean(self, rec: EventRecord) -> EventRecord:
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

    def _write(self, recs: Sequence[EventRecord]) -> list[IngestResult | BridgeError]:
        """Record ``recs``, apply the new ones, save the calls: one transaction."""
        self._reload()
        recs = [self._clean(rec) for rec in recs]
        now = self.clock()
        with self.engine.begin() as conn:
            stored = self._record(conn, recs, now)
            fresh = [
                rec
                for rec, s in zip(recs, stored, strict=True)
                if isinstance(s, tuple) and not s[1]
            ]
            changed = self.tracker.feed_many(fresh)
            ended = {self.tracker.call_id_of(rec.uid) for rec in fresh if rec.event in _TERMINAL}
            changed = self._reconcile(changed, ended)
            for call in changed:
                repo.save_call(conn, call)
            results: list[IngestResult | BridgeError] = []
            for rec, s in zip(recs, stored, strict=True):
                if isinstance(s, BridgeError):
                    results.append(s)
                    continue
                cursor, duplicate = s
                call_id = self.tracker.call_id_of(rec.uid)
                if call_id is None and duplicate:
                    call_id = conn.execute(
                        select(events_table.c.call_id).where(events_table.c.uid == rec.uid)
                    ).scalar_one_or_none()
                results.append(IngestResult(rec.uid, cursor, duplicate, call_id))
        return results

    @staticmethod
    def _record(
        conn: Connection, recs: Sequence[EventRecord], now: float
    ) -> list[tuple[int, bool] | BridgeError]:
        try:
            if len(recs) == 1:
                # The common case (one hook at a time): the single insert is cheaper.
                return [repo.record_event(conn, recs[0], received_at=now)]
            return list(repo.record_events(conn, recs, received_at=now))
        except BridgeError:
            pass
        # One record the store refuses (record_events checks all before writing anything):
        # store the others, refuse that one.
        out: list[tuple[int, bool] | BridgeError] = []
        for rec in recs:
            try:
                out.append(repo.record_event(conn, rec, received_at=now))
            except BridgeError as exc:
                logger.warning("event %s refused: %s", rec.uid, exc)
                out.append(exc)
        return out

    def _reconcile(self, changed: list[Call], ended: set[str | None]) -> list[Call]:
        """Complete the calls that just ended with their [Calls] entries (facts §5)."""
        targets = {c.call_id for c in changed if c.call_id in ended and not c.is_open}
        if self.ini is None or not targets:
            return changed
        history = self._read_history()
        if history is None:
            return changed
        out: list[Call] = []
        for call in changed:
            entry = entry_of(call, history.entries) if call.call_id in targets else None
            if entry is not None:
                new = reconcile.apply_history(call, entry, cancel_texts=self.cancel_texts)
                if new != call:
                    self.tracker.update(new)
                    call = new
            out.append(call)
        return out

    def _read_history(self) -> CallHistory | None:
        from microsip_bridge.microsip.history import read_history
        from microsip_bridge.microsip.inifile import IniDocument

        if self.ini is None:
            return None
        try:
            history = read_history(IniDocument.load(self.ini))
        except (BridgeError, OSError) as exc:
            problem = str(exc)
            if problem != self._ini_problem:  # once per distinct problem, not every call
                logger.warning("cannot read MicroSIP's call history: %s", problem)
            self._ini_problem = problem
            return None
        self._ini_problem = None
        return history

    # --- periodic work ------------------------------------------------------------------------

    def _spool_round(self) -> SpoolReport:
        if self.home is None:
            return SpoolReport()
        report = ingest_spool(self.home, self._ingest_spooled, batch=self.spool_batch)
        if report.events or report.rejected:
            logger.info(
                "spool: %d events from %d files, %d damaged lines rejected",
                report.events,
                report.files,
                report.rejected,
            )
        return report

    def _ingest_spooled(self, recs: Sequence[EventRecord]) -> None:
        try:
            results = self._write(recs)
        except Exception:
            self._recover()
            raise
        for rec, result in zip(recs, results, strict=True):
            if isinstance(result, BridgeError):
                # The line is valid JSON of a valid shape that the store still refuses; keep
                # it where people look for refused lines.
                assert self.home is not None
                text = encode_record(rec.to_spool())
                reject(self.home, "spool (refused by the store)", Rejected(0, str(result), text))

    def _expire(self) -> list[Call]:
        self._reload()
        closed = self.tracker.expire(self.clock())
        if closed:
            try:
                with self.engine.begin() as conn:
                    for call in closed:
                        repo.save_call(conn, call)
            except Exception:
                self._recover()
                raise
        return closed

    def _sweep(self) -> int:
        history = self._read_history()
        if history is None or not history.entries:
            return 0
        self._reload()
        now = self.clock()
        open_calls = self.tracker.open_calls()
        final = [e for e in history.entries if self._final(e, open_calls, now)]
        # Importing needs more patience than completing: the hooks of a call that just ended
        # may still be on their way (queued, spooled), and they would make it a hook call.
        settled = [e for e in final if now - (e.time + e.duration) >= SWEEP_GRACE]
        if not final:
            return 0
        saved = 0
        imported: list[Call] = []
        try:
            with self.engine.begin() as conn:
                known = repo.history_keys_seen(conn)
                oldest = min(e.time for e in final)
                stored = repo.list_calls(conn, since=oldest - reconcile.MATCH_WINDOW)
                for call, entry in reconcile.pair_history(stored, final, known):
                    new = reconcile.apply_history(call, entry, cancel_texts=self.cancel_texts)
                    known.add((entry.key, entry.time))
                    if new != call:
                        repo.save_call(conn, new)
                        self.tracker.update(new)
                        saved += 1
                imported = reconcile.calls_from_history(
                    settled, known, calls=stored, cancel_texts=self.cancel_texts
                )
                for call in imported:
                    saved += self._import(conn, call, now)
        except Exception:
            self._recover()
            raise
        if imported:
            logger.info(
                "sweep: imported %d calls from [Calls] that no hook announced", len(imported)
            )
        return saved

    def _final(self, entry: CallEntry, open_calls: Sequence[Call], now: float) -> bool:
        """The entry describes a call that is over: no open call owns it, and MicroSIP has
        written its status text (it does when the call ends, facts §5; an entry still without
        one after ``stale_timeout`` is taken as it is)."""
        if any(reconcile.history_matches(call, entry) for call in open_calls):
            return False
        return bool(entry.info) or now - entry.time >= self.tracker.stale_timeout

    @staticmethod
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

    # --- the tracker and the store ------------------------------------------------------------

    def _load_tracker(self) -> None:
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
            linked = [
                (e.call_id or c.call_id, e.event, e.ts)
                for c in every
                for e in repo.call_events(conn, c.call_id)
            ]
        self.tracker.load(every, linked)
        if every:
            logger.info("continuing %d open and %d recent calls", len(calls), len(recent))

    def _recover(self) -> None:
        """After a failed transaction: a tracker rebuilt from what the store really has. If
        the store cannot be read now, the next write tries again first (:meth:`_write`): an
        empty tracker must never take events, it would split calls in two."""
        self.tracker = self._make_tracker()
        self._stale = True
        try:
            self._reload()
        except Exception as exc:
            logger.error("could not reload the calls from the store: %s", exc)

    def _reload(self) -> None:
        if self._stale:
            self._load_tracker()
            self._stale = False
