"""Delete calls, their events and webhook deliveries from the store: by age or by number.

Both purges work in batches of :data:`BATCH` calls, one short transaction each, so a purge of
a million rows never holds SQLite's write lock for long (the daemon's writer runs its events
between two batches) and a purge killed midway leaves a consistent store: a call and its
events and outbox rows go in the same transaction, so no event is left pointing at a call that
is gone, and the next run carries on where the killed one stopped.

* **By age** (:attr:`PurgePlan.before`): calls that are closed and ended (or, never ended, were
  last updated) before the cut-off, with their events and their delivered or dead outbox rows;
  events no call took (``call_id`` NULL) received before it; delivered and dead outbox rows
  older than it. Pending outbox rows are never deleted by age: they are messages still owed to a
  receiver (their call goes, they stay until delivered or dead, and a later purge takes them).
* **By number** (:attr:`PurgePlan.number`, a data-subject request): every closed call whose
  number is the same number (:class:`~microsip_bridge.numbers.Normaliser` key equality, or the
  very same text), with all of its events and all of its outbox rows, pending ones too; then
  any event left with that number that no stored call owns. A call still open is kept (its
  events keep flowing): :attr:`PurgeReport.open_kept` counts them, to purge once they end.

Each purged call leaves a tombstone in ``purged_entries``: the time and slot of its ``[Calls]``
entry, no number, so that the sweep never imports it again from MicroSIP's history.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, false, func, insert, or_, select, true
from sqlalchemy.engine import Connection, Engine

from microsip_bridge.numbers import Normaliser
from microsip_bridge.store.schema import calls, events, purged_entries, webhook_outbox

# Calls per transaction: a few ms of SQLite's write lock each (bench/purge.py).
BATCH = 500
# Outbox states a purge by age may delete: the message was delivered, or given up on.
FINISHED = ("delivered", "dead")


@dataclass(frozen=True, slots=True)
class PurgePlan:
    """What to purge: ``before`` (Unix seconds: what ended before it) and/or ``number`` (one
    person's calls, compared with ``region``'s normaliser). Both given: calls that match both."""

    before: float | None = None
    number: str | None = None
    region: str = ""

    def __post_init__(self) -> None:
        if self.before is None and self.number is None:
            raise ValueError("a purge needs a cut-off time or a number")
        if self.number is not None and not self.number.strip():
            raise ValueError("the number to purge is empty")


@dataclass(slots=True)
class PurgeReport:
    """How many rows went (or, for a dry run, would go)."""

    calls: int = 0
    events: int = 0
    webhooks: int = 0
    open_kept: int = 0
    call_ids: list[str] = field(default_factory=list)

    def add(self, other: PurgeReport) -> None:
        self.calls += other.calls
        self.events += other.events
        self.webhooks += other.webhooks
        self.call_ids += other.call_ids

    def as_dict(self) -> dict[str, int]:
        return {
            "calls": self.calls,
            "events": self.events,
            "webhooks": self.webhooks,
            "open_kept": self.open_kept,
        }


def number_matcher(number: str, region: str = "") -> tuple[Callable[[str], bool], str]:
    """A test of whether a stored text is ``number`` (the very same text, or the same
    :class:`~microsip_bridge.numbers.Normaliser` key in ``region``), and that key ("" when
    the number has none: then only the same text matches)."""
    normalise = Normaliser(region)
    key = normalise(number).key

    def match(text: str) -> bool:
        return text == number or (bool(key) and normalise(text).key == key)

    return match, key


class Purge:
    """One purge, batch by batch: :meth:`step` deletes one batch in its own transaction and
    says whether more is left; :meth:`run` loops until done; :meth:`count` is the dry run.

    **Usage**::

        purge = Purge(PurgePlan(before=time.time() - 90 * 86400))
        report = purge.run(engine)             # or: while purge.step(engine, report): ...
    """

    def __init__(self, plan: PurgePlan, *, batch: int = BATCH) -> None:
        if batch < 1:
            raise ValueError(f"purge batches must hold at least 1 call, not {batch}")
        self.plan = plan
        self.batch = batch
        self._numbers: list[str] | None = None  # the texts that are plan.number, once found
        self._key = ""
        self._targets: list[str] | None = None  # the outbox's targets, once looked up
        self._stage = 0  # 0: calls, 1: loose events, 2: outbox (by age), 3: done

    # --- what is selected ----------------------------------------------------------------------

    def _resolve(self, conn: Connection) -> None:
        """Find every text in the store that is the plan's number (a scan of the distinct
        numbers: a data-subject request is rare, and a number may be stored in many forms)."""
        if self._numbers is not None or self.plan.number is None:
            return
        match, self._key = number_matcher(self.plan.number, self.plan.region)
        found = {self.plan.number}
        for table in (calls, events):
            for (text,) in conn.execute(select(table.c.number).distinct()):
                if match(text):
                    found.add(text)
        self._numbers = sorted(found)

    def _call_filter(self) -> ColumnElement[bool]:
        plan = self.plan
        # Through a function: an index on ``open`` (most rows are closed) must not win over the
        # one on started_at, or every batch would sort the whole table again.
        where: list[ColumnElement[bool]] = [func.coalesce(calls.c.open, false()) == false()]
        if plan.before is not None:
            # A call that ended before the cut-off started before it: the index on started_at
            # narrows the scan, the end time decides.
            where.append(calls.c.started_at < plan.before)
            where.append(func.coalesce(calls.c.ended_at, calls.c.updated_at) < plan.before)
        if plan.number is not None:
            assert self._numbers is not None
            same: list[ColumnElement[bool]] = [calls.c.number.in_(self._numbers)]
            if self._key:
                same.append(calls.c.number_key == self._key)
            where.append(or_(*same))
        return and_(*where)

    def _loose_event_filter(self) -> ColumnElement[bool]:
        plan = self.plan
        where: list[ColumnElement[bool]] = []
        if plan.number is not None:
            assert self._numbers is not None
            where.append(events.c.number.in_(self._numbers))
            # Not an event of a call still stored (an open one: it is kept with its events).
            owned = select(calls.c.call_id).where(calls.c.call_id == events.c.call_id).exists()
            where.append(or_(events.c.call_id.is_(None), ~owned))
        else:
            where.append(events.c.call_id.is_(None))
        if plan.before is not None:
            where.append(events.c.received_at < plan.before)
        return and_(*where)

    def _outbox_filter(self) -> ColumnElement[bool]:
        assert self.plan.before is not None
        return and_(
            webhook_outbox.c.state.in_(FINISHED),
            func.coalesce(webhook_outbox.c.delivered_at, webhook_outbox.c.created_at)
            < self.plan.before,
        )

    def _call_outbox_filter(self, conn: Connection, ids: Sequence[str]) -> ColumnElement[bool]:
        if self._targets is None:
            # The outbox's index leads with the target: with the targets named, a batch's rows
            # are looked up, not found by a scan of the whole outbox.
            self._targets = list(conn.scalars(select(webhook_outbox.c.target).distinct()))
        mine = and_(webhook_outbox.c.target.in_(self._targets), webhook_outbox.c.call_id.in_(ids))
        if self.plan.number is not None:
            return mine  # a data-subject request: pending messages about the person go too
        return and_(mine, webhook_outbox.c.state.in_(FINISHED))

    # --- doing it ------------------------------------------------------------------------------

    def count(self, engine: Engine) -> PurgeReport:
        """What :meth:`run` would delete now (the dry run): nothing is written."""
        with engine.connect() as conn:
            self._resolve(conn)
            chosen = select(calls.c.call_id).where(self._call_filter())
            report = PurgeReport()
            report.calls = _scalar(conn, select(func.count()).select_from(chosen.subquery()))
            of_calls = events.c.call_id.in_(chosen)
            report.events = _scalar(
                conn,
                select(func.count())
                .select_from(events)
                .where(or_(of_calls, self._loose_event_filter())),
            )
            boxed: ColumnElement[bool] = webhook_outbox.c.call_id.in_(chosen)
            if self.plan.number is None:
                boxed = and_(boxed, webhook_outbox.c.state.in_(FINISHED))
            if self.plan.before is not None:
                boxed = or_(boxed, self._outbox_filter())
            report.webhooks = _scalar(
                conn, select(func.count()).select_from(webhook_outbox).where(boxed)
            )
            report.open_kept = self._open_kept(conn)
        return report

    def step(self, engine: Engine, report: PurgeReport) -> bool:
        """Delete one batch (one transaction), adding to ``report``; False once all is done."""
        if self._stage >= 3:
            return False
        with engine.begin() as conn:
            self._resolve(conn)
            if self._stage == 0:
                ids = list(
                    conn.scalars(
                        select(calls.c.call_id)
                        .where(self._call_filter())
                        .order_by(calls.c.started_at, calls.c.call_id)
                        .limit(self.batch)
                    )
                )
                if ids:
                    _remember_entries(conn, ids)
                    report.events += _deleted(conn, delete(events).where(events.c.call_id.in_(ids)))
                    report.webhooks += _deleted(
                        conn, delete(webhook_outbox).where(self._call_outbox_filter(conn, ids))
                    )
                    report.calls += _deleted(conn, delete(calls).where(calls.c.call_id.in_(ids)))
                    report.call_ids += ids
                if len(ids) < self.batch:
                    self._stage = 1
                    report.open_kept = self._open_kept(conn)
            elif self._stage == 1:
                left = self._batch_by(conn, events, events.c.cursor, self._loose_event_filter())
                report.events += left
                if left < self.batch:
                    self._stage = 2 if self.plan.before is not None else 3
            else:
                gone = self._batch_by(
                    conn, webhook_outbox, webhook_outbox.c.id, self._outbox_filter()
                )
                report.webhooks += gone
                if gone < self.batch:
                    self._stage = 3
        return self._stage < 3

    def run(
        self, engine: Engine, *, between: Callable[[PurgeReport], object] | None = None
    ) -> PurgeReport:
        """Purge everything the plan selects, batch after batch; ``between`` is called after
        each batch (progress, a pause for other writers)."""
        report = PurgeReport()
        while self.step(engine, report):
            if between is not None:
                between(report)
        return report

    def _batch_by(self, conn: Connection, table: Any, key: Any, where: ColumnElement[bool]) -> int:
        keys = list(conn.scalars(select(key).where(where).order_by(key).limit(self.batch)))
        if not keys:
            return 0
        return _deleted(conn, delete(table).where(key.in_(keys)))

    def _open_kept(self, conn: Connection) -> int:
        if self.plan.number is None:
            return 0
        assert self._numbers is not None
        same: list[ColumnElement[bool]] = [calls.c.number.in_(self._numbers)]
        if self._key:
            same.append(calls.c.number_key == self._key)
        return _scalar(
            conn,
            select(func.count()).select_from(calls).where(and_(calls.c.open == true(), or_(*same))),
        )


def _remember_entries(conn: Connection, ids: Sequence[str]) -> None:
    """Tombstones for the [Calls] entries of the calls ``ids`` (time and slot only): the sweep
    would otherwise import a purged call again from MicroSIP's history (calls/sweep.py)."""
    rows = conn.execute(
        select(calls.c.microsip_key, calls.c.microsip_time, calls.c.started_at).where(
            calls.c.call_id.in_(ids)
        )
    )
    now = time.time()
    stones = [
        {
            "microsip_key": key,
            "microsip_time": int(when) if when is not None else math.floor(started_at),
            "purged_at": now,
        }
        for key, when, started_at in rows
    ]
    if stones:
        conn.execute(insert(purged_entries), stones)


def _scalar(conn: Connection, query: Any) -> int:
    return int(conn.execute(query).scalar_one())


def _deleted(conn: Connection, statement: Any) -> int:
    return int(conn.execute(statement).rowcount or 0)
