"""The outbox's writing side: a message per transition and target, in the event's transaction."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from microsip_bridge.model import webhook_type
from microsip_bridge.numbers import Normaliser
from microsip_bridge.store import outbox as store
from microsip_bridge.webhooks.payload import call_body, message_id

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from microsip_bridge.model import Call, Happened
    from microsip_bridge.webhooks.targets import WebhookTarget
    from microsip_bridge.webhooks.worker import Worker

logger = logging.getLogger("microsip_bridge.webhooks")
_PLAIN = Normaliser()


def enqueue(
    conn: Connection,
    happened: Happened,
    target: WebhookTarget,
    *,
    now: float,
    normalise: Normaliser | None = None,
) -> bool:
    """Write the message reporting ``happened`` to ``target`` in the transaction ``conn``;
    False when it was written before (its id is derived from target, call and transition).
    ``normalise``: the daemon's normaliser, for the number's forms in the body."""
    row = {
        "msg_id": message_id(target.name, happened.call.call_id, happened.transition.value),
        "target": target.name,
        "call_id": happened.call.call_id,
        "type": webhook_type(happened.transition),
        "body": call_body(happened, normalise or _PLAIN),
        "created_at": now,
        "next_attempt_at": now,
    }
    return store.insert(conn, row)


class OutboxPart:
    """The actions' webhook part: ``record`` writes each transition's messages for the
    targets that subscribe to its type, ``committed`` wakes the worker, which runs from
    ``start`` to ``stop``."""

    def __init__(
        self,
        targets: Callable[[], Sequence[WebhookTarget]],
        worker: Worker | None,
        *,
        normalise: Normaliser | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        import time

        self.targets = targets
        self.worker = worker
        self.normalise = normalise or _PLAIN
        self.clock = clock or time.time

    def prepare(self, calls: Sequence[Call]) -> None:
        pass

    def record(self, conn: Connection, happened: Sequence[Happened]) -> None:
        targets = self.targets()
        if not targets:
            return
        now = self.clock()
        for h in happened:
            type_ = webhook_type(h.transition)
            for target in targets:
                if target.wants(type_):
                    enqueue(conn, h, target, now=now, normalise=self.normalise)

    def committed(self, happened: Sequence[Happened]) -> None:
        if self.worker is not None and happened and self.targets():
            self.worker.wake()

    def start(self) -> None:
        if self.worker is not None:
            self.worker.start()

    def stop(self) -> None:
        if self.worker is not None:
            self.worker.stop()
