"""The daemon's single writer thread: one queue of events and jobs, group commit, periodic work."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Generic, TypeVar

from microsip_bridge.errors import BridgeError
from microsip_bridge.model import EventRecord

logger = logging.getLogger("microsip_bridge.ingest")

R = TypeVar("R")


class NotStoredError(BridgeError):
    """The event was not stored (the daemon is stopping, the database failed): try again later;
    the event's id makes a second attempt safe."""


@dataclass(frozen=True, slots=True)
class Periodic:
    """Work the writer runs every ``interval`` seconds, the first time ``first`` seconds after
    it starts (default: ``interval``)."""

    name: str
    interval: float
    run: Callable[[], object]
    first: float | None = None


@dataclass(slots=True)
class _Submit(Generic[R]):
    rec: EventRecord
    future: Future[R]


@dataclass(slots=True)
class _Job:
    name: str
    run: Callable[[], object]
    future: Future[object]


_STOP = object()


class Writer(Generic[R]):
    """One thread runs every write, so events are applied in the order they were queued and no
    two transactions race.

    * **Events** (:meth:`submit`): the caller queues an event and waits for its future. The
      thread drains up to ``batch_size`` queued events into one call of ``write`` (group
      commit: one transaction, one fsync, for many hooks that fire at once), which returns a
      result (``R``) or the :class:`~microsip_bridge.errors.BridgeError` that refused it for
      each event. The futures resolve after it returns: a result means durable. If ``write``
      raises, every event of the batch gets a :class:`NotStoredError`.
    * **Jobs** (:meth:`run_soon`): work that must not race the writes, run in queue order.
    * **Periodic work**: run between queue items when due. A failure is logged once per
      distinct problem (not every second while the database is down) and retried at the next
      interval.

    :meth:`stop` refuses new work first, then commits what was queued before it.

    **Usage**::

        writer = Writer(write, batch_size=100, periodic=[Periodic("expire", 1.0, expire)])
        writer.start()
        result = writer.submit(rec).result()   # durable once it returns
        writer.stop()
    """

    def __init__(
        self,
        write: Callable[[Sequence[EventRecord]], Sequence[R | BridgeError]],
        *,
        batch_size: int,
        periodic: Sequence[Periodic] = (),
        name: str = "microsip-bridge-ingest",
    ) -> None:
        if batch_size < 1:
            raise BridgeError("ingest batch sizes must be at least 1")
        if any(task.interval <= 0 for task in periodic):
            raise BridgeError("ingest intervals must be positive")
        self.write = write
        self.batch_size = batch_size
        self.periodic = tuple(periodic)
        self.name = name
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._accepting = False
        self._lock = threading.Lock()  # start/stop
        self._gate = threading.Lock()  # accepting + enqueue, atomic against stop()
        self._due: dict[str, float] = {}
        self._failures: dict[str, str] = {}

    # --- life cycle ---------------------------------------------------------------------------

    @property
    def started(self) -> bool:
        """The thread was started and not stopped."""
        return self._thread is not None

    @property
    def running(self) -> bool:
        """The thread runs and accepts work."""
        return self._accepting

    def start(self) -> None:
        """Start the thread (nothing happens if it runs); the first periodic rounds are due
        ``first`` seconds from now."""
        with self._lock:
            if self._thread is not None:
                return
            now = time.monotonic()
            self._due = {
                task.name: now + (task.interval if task.first is None else task.first)
                for task in self.periodic
            }
            self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
            self._thread.start()
            with self._gate:
                self._accepting = True

    def stop(self, timeout: float = 30.0) -> None:
        """Finish what is queued, then stop the thread. Work submitted later is refused."""
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

    def submit(self, rec: EventRecord) -> Future[R]:
        """Queue one event; the future resolves once it is committed (or fails)."""
        future: Future[R] = Future()
        with self._gate:
            if not self._accepting:
                raise NotStoredError("the daemon is not accepting events (stopped or not started)")
            self._queue.put(_Submit(rec, future))
        return future

    def run_soon(self, name: str, run: Callable[[], object]) -> Future[object]:
        """Queue ``run`` to run on the writer's thread; the future gets what it returns."""
        future: Future[object] = Future()
        with self._gate:
            if not self._accepting:
                raise NotStoredError("the daemon is not running")
            self._queue.put(_Job(name, run, future))
        return future

    # --- the thread ---------------------------------------------------------------------------

    def _run(self) -> None:
        carry: object = None
        while True:
            item = carry
            carry = None
            if item is None:
                due = min(self._due.values(), default=None)
                wait = None if due is None else max(0.0, due - time.monotonic())
                try:
                    item = self._queue.get(timeout=wait)
                except queue.Empty:
                    self._run_periodic()
                    continue
            if item is _STOP:
                self._drain_after_stop()
                return
            if isinstance(item, _Job):
                self._run_job(item)
            elif isinstance(item, _Submit):
                batch: list[_Submit[R]] = [item]
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
            self._run_periodic()

    def _drain_after_stop(self) -> None:
        # stop() refused new work first; what was queued before it is still done.
        batch: list[_Submit[R]] = []
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

    @staticmethod
    def _run_job(job: _Job) -> None:
        if not job.future.set_running_or_notify_cancel():
            return
        try:
            job.future.set_result(job.run())
        except Exception as exc:
            logger.exception("%s failed", job.name)
            job.future.set_exception(exc)

    def _run_periodic(self) -> None:
        now = time.monotonic()
        for task in self.periodic:
            if now < self._due[task.name]:
                continue
            self._due[task.name] = now + task.interval
            try:
                task.run()
            except Exception as exc:
                # Retried at the next interval: the writer must outlive any of them.
                problem = f"{type(exc).__name__}: {exc}"
                if self._failures.get(task.name) != problem:
                    logger.exception("periodic %s failed", task.name)
                self._failures[task.name] = problem
            else:
                if self._failures.pop(task.name, None) is not None:
                    logger.info("periodic %s works again", task.name)

    def _commit(self, batch: Sequence[_Submit[R]]) -> None:
        live = [item for item in batch if item.future.set_running_or_notify_cancel()]
        if not live:
            return
        try:
            results = self.write([item.rec for item in live])
        except Exception as exc:
            error = NotStoredError(f"not stored: {exc}")
            logger.error("a batch of %d events was not stored: %s", len(live), exc)
            for item in live:
                item.future.set_exception(error)
            return
        for item, result in zip(live, results, strict=True):
            if isinstance(result, BridgeError):
                item.future.set_exception(result)
            else:
                item.future.set_result(result)
