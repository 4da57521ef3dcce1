"""The daemon's ingest pipeline as one object: writer thread, recorder, spool, timeouts, sweep."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING

from microsip_bridge.calls.reconcile import is_only_the_number
from microsip_bridge.calls.recorder import CallObserver, IngestResult, Recorder
from microsip_bridge.calls.spool import Rejected, SpoolReport, ingest_spool, reject
from microsip_bridge.calls.state import CallTracker
from microsip_bridge.calls.sweep import Reconciler, Sweeper, SweepResult
from microsip_bridge.calls.writer import Periodic, Writer
from microsip_bridge.errors import BridgeError
from microsip_bridge.model import Call, EventRecord
from microsip_bridge.store.purge import BATCH as PURGE_BATCH
from microsip_bridge.store.purge import Purge, PurgePlan, PurgeReport
from microsip_bridge.wire import encode_record

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from microsip_bridge.calls.feed import EventHub

logger = logging.getLogger("microsip_bridge.ingest")

DEFAULT_BATCH = 100
SPOOL_BATCH = 500
# Seconds the sweep's thread waits for its write on the worker.
JOB_TIMEOUT = 60.0


class Ingestor:
    """The single writer of the call log, wiring the parts:

    * :class:`~.writer.Writer`: hook events (:meth:`submit`) are queued and committed in groups
      on one thread; a result means durable.
    * :class:`~.recorder.Recorder`: one transaction per group: the event log, the call-state
      model, the calls. If it fails, the events of that group get a
      :class:`~.writer.NotStoredError` (the hook then spools them, to be ingested again later).
    * calls/spool.py: at start and every ``spool_interval`` seconds, the events the hook spooled
      while the daemon was down, each exactly once, in batches.
    * the tracker's timeouts every ``expire_interval`` seconds: a lone ``incoming`` is closed as
      rejected, a call open for hours as unknown (facts §2.2).
    * :class:`~.sweep.Reconciler` (with an ini): calls completed from ``[Calls]`` as they end,
      and the sweep every ``sweep_interval`` seconds (the first at start): the ini is read on a
      thread of its own (:class:`~.sweep.Sweeper`), and only the entries it has not settled
      yet are written, on the writer.

    ``engine``: the store. ``tracker``: the call-state model it owns from now on (do not feed it
    elsewhere). ``ini``: MicroSIP's microsip.ini, for reconciliation and the sweep (None: off).
    ``home``: where the spool is (None: no spool ingestion). Intervals are in seconds;
    ``clock`` gives Unix seconds (the hook's clock), for received times and timeouts.
    ``make_tracker`` builds an empty tracker like ``tracker`` (used to rebuild after a failed
    transaction; default: same timeouts). ``feed``: the hub every committed event is published
    to (calls/feed.py; None: none). ``observer``: what acts on saved calls and their
    transitions (names, rules, webhooks: :class:`~.recorder.CallObserver`; None: nothing).

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
        feed: EventHub | None = None,
        observer: CallObserver | None = None,
    ) -> None:
        if batch_size < 1 or spool_batch < 1:
            raise BridgeError("ingest batch sizes must be at least 1")
        if min(spool_interval, sweep_interval, expire_interval) <= 0:
            raise BridgeError("ingest intervals must be positive")
        self.engine = engine
        self.ini = ini
        self.home = home
        self.spool_batch = spool_batch
        self._reconciler = None if ini is None else Reconciler(ini, cancel_texts=cancel_texts)
        self._recorder = Recorder(
            engine,
            tracker,
            clock=clock,
            make_tracker=make_tracker,
            complete=None if self._reconciler is None else self._reconciler.complete,
            feed=feed,
            observer=observer,
        )
        periodic = [
            Periodic("expire", expire_interval, self._recorder.expire),
            Periodic("spool", spool_interval, self._spool_round),
        ]
        self._writer: Writer[IngestResult] = Writer(
            self._recorder.write, batch_size=batch_size, periodic=periodic
        )
        self._sweeper = (
            None
            if self._reconciler is None
            else Sweeper(self._reconciler, self._recorder, self._on_writer, sweep_interval)
        )
        self._lock = threading.Lock()  # start

    @property
    def feed(self) -> EventHub | None:
        """Where committed events are published (set it before :meth:`start`)."""
        return self._recorder.feed

    @feed.setter
    def feed(self, hub: EventHub | None) -> None:
        self._recorder.feed = hub

    @property
    def observer(self) -> CallObserver | None:
        """What acts on saved calls (set it before :meth:`start`)."""
        return self._recorder.observer

    @observer.setter
    def observer(self, observer: CallObserver | None) -> None:
        self._recorder.observer = observer

    @property
    def tracker(self) -> CallTracker:
        """The call-state model (a new one after a failed transaction)."""
        return self._recorder.tracker

    # --- life cycle ---------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """The worker runs and accepts events."""
        return self._writer.running

    def start(self, *, migrate: bool = True) -> None:
        """Migrate the store (``migrate``), reload the calls that may still get events, ingest
        what the spool holds, then start the worker. Idempotent. Raises BridgeError when the
        store cannot be opened or migrated."""
        with self._lock:
            if self._writer.started:
                return
            if migrate:
                from microsip_bridge.store.engine import upgrade

                upgrade(self.engine)
            self._recorder.load()
            # Before the worker starts, this thread is the single writer: the spool, then the
            # first sweep (calls made while the daemon was down) run here.
            self._spool_round()
            if self._sweeper is not None:
                self._sweeper.sweep_logged()
            self._writer.start()
            if self._sweeper is not None:
                self._sweeper.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Finish what is queued, then stop the worker. Events submitted later are refused."""
        if self._sweeper is not None:
            self._sweeper.stop(timeout)  # first: its round may wait for the writer
        self._writer.stop(timeout)

    # --- work ---------------------------------------------------------------------------------

    def submit(self, rec: EventRecord) -> Future[IngestResult]:
        """Queue one event; the future resolves once it is committed (or fails)."""
        return self._writer.submit(rec)

    def ingest(
        self, recs: Iterable[EventRecord], timeout: float | None = 60.0
    ) -> list[IngestResult]:
        """Queue events and wait until all are committed; results in the same order."""
        futures = [self.submit(rec) for rec in recs]
        return [f.result(timeout) for f in futures]

    def ingest_spool_now(self, timeout: float | None = 60.0) -> SpoolReport:
        """Ingest the spool now (on the worker); returns what was done."""
        result = self._writer.run_soon("spool", self._spool_round).result(timeout)
        assert isinstance(result, SpoolReport)
        return result

    def schedule_spool(self) -> None:
        """Ingest the spool soon (on the worker), without waiting for it."""
        self._writer.run_soon("spool", self._spool_round)

    def sweep_now(self) -> int:
        """Run the [Calls] sweep now (the ini read on this thread, the write on the worker);
        returns how many calls it saved (imported or completed)."""
        return 0 if self._sweeper is None else self._sweeper.sweep()

    def expire_now(self, timeout: float | None = 60.0) -> list[Call]:
        """Apply the call timeouts now; returns the calls they closed."""
        result = self._writer.run_soon("expire", self._recorder.expire).result(timeout)
        assert isinstance(result, list)
        return result

    def open_dial(self, number: str, reported: Iterable[str], timeout: float | None = None) -> Call:
        """Open (and store) a pending outgoing call for a dial about to be sent; its
        ``outgoing`` event binds to it (calls/state.py). Returns the call, with its id."""
        numbers = tuple(reported)

        def work() -> Call:
            recorder = self._recorder
            recorder.ensure_loaded()
            call = recorder.tracker.open_dial(number, numbers, recorder.clock(), timeout=timeout)
            with recorder.transaction() as conn:
                recorder.save(conn, [call])
            return call

        result = self._writer.run_soon("dial", work).result(JOB_TIMEOUT)
        assert isinstance(result, Call)
        return result

    def cancel_dial(self, call_id: str) -> Call | None:
        """Close a pending dial as never placed now (MicroSIP dropped it, or it could not be
        sent); returns the call, or None when it was no longer pending."""

        def work() -> Call | None:
            recorder = self._recorder
            call = recorder.tracker.cancel_dial(call_id, recorder.clock())
            if call is not None:
                with recorder.transaction() as conn:
                    recorder.save(conn, [call])
            return call

        result = self._writer.run_soon("dial", work).result(JOB_TIMEOUT)
        assert result is None or isinstance(result, Call)
        return result

    def purge(self, plan: PurgePlan, *, batch: int = PURGE_BATCH) -> PurgeReport:
        """Purge what ``plan`` selects (store/purge.py): the spool first (what it holds joins
        the store, and goes with it), then one writer job per batch, so events keep being stored
        between batches; then the tracker forgets the purged calls."""
        self.ingest_spool_now(JOB_TIMEOUT)
        purge = Purge(plan, batch=batch)
        report = PurgeReport()
        while True:
            more = self._writer.run_soon("purge", lambda: purge.step(self.engine, report))
            if not more.result(JOB_TIMEOUT):
                break
        if report.calls:
            self._writer.run_soon("purge", self._recorder.reload).result(JOB_TIMEOUT)
        return report

    def count_purge(self, plan: PurgePlan) -> PurgeReport:
        """What :meth:`purge` would delete now (a dry run: the spool is left alone)."""
        return Purge(plan).count(self.engine)

    def set_name(self, call_id: str, name: str, source: str) -> None:
        """Give an open call a name found late (the CRM lookup's answer), stored through the
        recorder on the writer thread; a call that has a name by then keeps it (MicroSIP's
        stand-in, the number, is no name). Returns at
        once (called from the lookup's thread)."""

        def work() -> Call | None:
            recorder = self._recorder
            call = recorder.tracker.get(call_id)
            if call is None or (call.name and not is_only_the_number(call.name, call.number)):
                return None
            call.name, call.name_source = name, source
            # The recorder's save hands the name to the tracker too (CallTracker.annotate).
            with recorder.transaction() as conn:
                recorder.save(conn, [call])
            return call

        try:
            future = self._writer.run_soon("name", work)
        except BridgeError:  # stopping: the name is lost, the call is not
            return
        future.add_done_callback(_log_failure)

    # --- on the worker ------------------------------------------------------------------------

    def _write(self, recs: Sequence[EventRecord]) -> list[IngestResult | BridgeError]:
        return self._recorder.write(recs)

    def _on_writer(self, work: Callable[[], SweepResult]) -> SweepResult:
        if not self._writer.started:
            return work()  # start(): this thread is the single writer until the worker runs
        result = self._writer.run_soon("sweep", work).result(JOB_TIMEOUT)
        assert isinstance(result, SweepResult)
        return result

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
        results = self._write(recs)
        for rec, result in zip(recs, results, strict=True):
            if isinstance(result, BridgeError):
                # The line is valid JSON of a valid shape that the store still refuses; keep
                # it where people look for refused lines.
                assert self.home is not None
                text = encode_record(rec.to_spool())
                reject(self.home, "spool (refused by the store)", Rejected(0, str(result), text))


def _log_failure(future: Future[object]) -> None:
    exc = future.exception()
    if exc is not None:
        logger.error("a call's late name could not be stored: %s", exc)
