"""Privacy in the daemon: POST /api/v1/purge (by age or by number) and the retention_days job.

A purge goes through the daemon whenever one runs, because the daemon's call tracker holds the
calls of the last minutes in memory: purged behind its back, a call would be saved again by
the next event or timeout. :meth:`~microsip_bridge.calls.ingest.Ingestor.purge` runs it on the
writer, a batch per job, and rebuilds the tracker from the store afterwards.
"""

from __future__ import annotations

import logging
import threading
import time

import anyio.to_thread
from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from microsip_bridge.calls.ingest import Ingestor
from microsip_bridge.errors import BridgeError
from microsip_bridge.server.auth import require_auth
from microsip_bridge.server.params import ERROR_RESPONSES, OneLineErrors
from microsip_bridge.server.settings import DaemonSettings
from microsip_bridge.store.purge import PurgePlan

logger = logging.getLogger("microsip_bridge.daemon")

router = APIRouter(
    prefix="/api/v1",
    dependencies=[Depends(require_auth)],
    tags=["privacy"],
    responses=ERROR_RESPONSES,
    route_class=OneLineErrors,
)

DAY = 86400.0


class PurgeBody(BaseModel):
    """What to purge: calls ended before ``before``, and/or one person's calls (``number``)."""

    model_config = ConfigDict(extra="forbid")

    before: float | None = Field(
        default=None,
        allow_inf_nan=False,
        description="Unix seconds: closed calls that ended before it, their events, and "
        "delivered or dead webhook deliveries older than it (pending ones are kept).",
    )
    number: str | None = Field(
        default=None,
        min_length=1,
        max_length=1024,
        description="One person's number (any format; compared with the default_region "
        "normaliser, or as the very same text): their closed calls, all their events and all "
        "their webhook deliveries, pending ones too.",
    )
    dry_run: bool = Field(default=False, description="Count what would go; delete nothing.")


class PurgeDone(BaseModel):
    """How many rows went (or would go, for a dry run)."""

    calls: int
    events: int
    webhooks: int
    open_kept: int = Field(description="Calls of that number still going on: kept, for now.")
    dry_run: bool


@router.post("/purge", response_model=PurgeDone)
async def purge(request: Request, body: PurgeBody) -> PurgeDone:
    """Delete calls, their events and webhook deliveries, by age and/or by number (a
    data-subject request); the daemon's tracker forgets the purged calls. Batches of 500
    calls, so events are stored between them."""
    settings: DaemonSettings = request.app.state.settings
    ingestor: Ingestor = request.app.state.ingestor
    try:
        plan = PurgePlan(before=body.before, number=body.number, region=settings.default_region)
    except ValueError as exc:
        raise BridgeError(str(exc)) from None
    if body.dry_run:
        report = await anyio.to_thread.run_sync(ingestor.count_purge, plan)
    else:
        report = await anyio.to_thread.run_sync(ingestor.purge, plan)
        logger.info(
            "purge%s: %d calls, %d events, %d webhook deliveries deleted",
            " of a number" if body.number is not None else "",
            report.calls,
            report.events,
            report.webhooks,
        )
    return PurgeDone(**report.as_dict(), dry_run=body.dry_run)


class Retention:
    """Applies ``retention_days`` every ``retention_interval`` seconds (the first time a minute
    after start, or sooner with a shorter interval), on a thread of its own: the purge itself
    runs batch by batch on the writer (:meth:`Ingestor.purge`), like ``purge --older-than``.
    Does nothing when ``retention_days`` is 0."""

    def __init__(self, ingestor: Ingestor, settings: DaemonSettings) -> None:
        self.ingestor = ingestor
        self.days = settings.retention_days
        self.interval = settings.retention_interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._problem: str | None = None

    def start(self) -> None:
        if self.days <= 0 or self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._run, name="microsip-bridge-retention", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def apply(self, now: float | None = None) -> int:
        """Purge what is older than ``retention_days`` now; returns the calls purged."""
        before = (time.time() if now is None else now) - self.days * DAY
        report = self.ingestor.purge(PurgePlan(before=before))
        if report.calls or report.events or report.webhooks:
            logger.info(
                "retention (%d days): %d calls, %d events, %d webhook deliveries deleted",
                self.days,
                report.calls,
                report.events,
                report.webhooks,
            )
        return report.calls

    def _run(self) -> None:
        wait = min(self.interval, 60.0)
        while not self._stop.wait(wait):
            wait = self.interval
            if not self.ingestor.running:
                continue
            try:
                self.apply()
            except Exception as exc:
                problem = f"{type(exc).__name__}: {exc}"
                if problem != self._problem:  # once per distinct problem, not every hour
                    logger.error("retention could not purge: %s", problem)
                self._problem = problem
            else:
                self._problem = None
