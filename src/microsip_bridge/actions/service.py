"""The actions service: what the daemon does with each call it saves, as one CallObserver.

The recorder (calls/recorder.py) hands every saved call to :class:`Actions` in three steps;
:class:`Actions` fans each step out to its parts:

* ``prepare`` (before the save, on the writer thread, no I/O): the normalised number
  (``Call.number_key``), then the caller's name (contacts/names.py);
* ``record`` (inside the transaction): the webhook outbox rows of each transition, for the
  targets that subscribe to it and those that rules name (webhooks/outbox.py);
* ``committed`` (after the commit): rules' screen-pops, programs and notifications, and a
  nudge to the webhook delivery worker.

Parts with a life of their own (the delivery worker, the CRM look-ups, the config watcher)
are started and stopped with the daemon (:meth:`Actions.start`, :meth:`Actions.stop`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from microsip_bridge.numbers import Normaliser

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine

    from microsip_bridge.calls.transitions import Happened
    from microsip_bridge.model import Call
    from microsip_bridge.webhooks.targets import WebhookTarget

logger = logging.getLogger("microsip_bridge.actions")


class Part(Protocol):
    """One part of the actions. Each method may do nothing."""

    def prepare(self, calls: Sequence[Call]) -> None: ...

    def record(self, conn: Connection, happened: Sequence[Happened]) -> None: ...

    def committed(self, happened: Sequence[Happened]) -> None: ...

    def start(self) -> None: ...

    def stop(self) -> None: ...


class Actions:
    """The daemon's :class:`~microsip_bridge.calls.recorder.CallObserver`: the normaliser,
    then ``parts`` in order. A part that raises in ``prepare`` or ``committed`` is logged and
    the others go on (an event is stored whatever an action does); in ``record`` it fails the
    transaction, as the outbox must (the events are then stored again, with their rows)."""

    def __init__(self, normalise: Normaliser, parts: Sequence[Part] = ()) -> None:
        self.normalise = normalise
        self.parts = list(parts)

    def prepare(self, calls: Sequence[Call]) -> None:
        normalise = self.normalise
        for call in calls:
            call.number_key = normalise(call.number).key
        for part in self.parts:
            try:
                part.prepare(calls)
            except Exception:
                logger.exception("%s could not prepare %d calls", type(part).__name__, len(calls))

    def record(self, conn: Connection, happened: Sequence[Happened]) -> None:
        for part in self.parts:
            part.record(conn, happened)

    def committed(self, happened: Sequence[Happened]) -> None:
        for part in self.parts:
            try:
                part.committed(happened)
            except Exception:
                logger.exception("%s failed on %d transitions", type(part).__name__, len(happened))

    def start(self) -> None:
        for part in self.parts:
            part.start()

    def stop(self) -> None:
        for part in reversed(self.parts):
            try:
                part.stop()
            except Exception:
                logger.exception("%s did not stop cleanly", type(part).__name__)


def build_actions(
    values: Mapping[str, Any], *, home: Path, ini: Path | None, engine: Engine
) -> Actions:
    """The daemon's actions for its settings ``values`` (config.SETTINGS' names), its home
    (config.toml's [[rules]] and [[webhooks]] are read from there, and re-read when it
    changes), MicroSIP's ini (None: none) and its store."""
    normalise = Normaliser(str(values.get("default_region", "")))
    parts: list[Part] = []
    parts.append(webhook_part(values, home=home, engine=engine, normalise=normalise))
    return Actions(normalise, parts)


def webhook_part(
    values: Mapping[str, Any], *, home: Path, engine: Engine, normalise: Normaliser
) -> Part:
    """The outbox part and its delivery worker, with config.toml's [[webhooks]] targets."""
    from microsip_bridge.config import config_path, load_config
    from microsip_bridge.webhooks.outbox import OutboxPart
    from microsip_bridge.webhooks.targets import parse_targets
    from microsip_bridge.webhooks.worker import Worker

    # Read once at start; the lead swaps this for R's LiveConfig(...).targets (hot reload).
    path = config_path(home)
    found = parse_targets(load_config(path).tables.get("webhooks", []), path=path)

    def targets() -> Sequence[WebhookTarget]:
        return found

    worker = Worker(
        engine,
        targets,
        timeout=float(values.get("webhook_timeout", 10.0)),
        max_attempts=int(values.get("webhook_max_attempts", 20)),
        max_age=float(values.get("webhook_max_age", 24.0)) * 3600.0,
        workers=int(values.get("webhook_workers", 8)),
        backoff_base=float(values.get("webhook_backoff", 2.0)),
    )
    return OutboxPart(targets, worker, normalise=normalise)
