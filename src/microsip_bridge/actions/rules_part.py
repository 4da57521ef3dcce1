"""The rules as a part of the actions: webhook rows in the event's transaction, screen-pops,
programs and notices after its commit, for live calls only."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol

from microsip_bridge.actions.launch import Launcher
from microsip_bridge.actions.live_config import LiveConfig
from microsip_bridge.actions.notify import build_notice
from microsip_bridge.actions.rules import Firing, firings
from microsip_bridge.model import SOURCE_HOOKS
from microsip_bridge.numbers import Normaliser

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from microsip_bridge.calls.transitions import Happened
    from microsip_bridge.model import Call
    from microsip_bridge.webhooks.targets import WebhookTarget

logger = logging.getLogger("microsip_bridge.rules")

# A transition is live when the event that caused it happened at most this long before the
# daemon stored it: older ones come from the spool's catch-up or the [Calls] sweep, and a
# browser popping up for a call that rang minutes ago helps nobody.
LIVE_AGE = 60.0


class Enqueue(Protocol):
    """webhooks.outbox.enqueue's shape: one outbox row for ``happened`` to ``target``."""

    def __call__(
        self, conn: Connection, happened: Happened, target: WebhookTarget, *, now: float
    ) -> bool: ...


def event_time(happened: Happened) -> float:
    """When the event behind ``happened`` happened (the hook's clock), for ``hours``."""
    return happened.call.updated_at or happened.at


def is_live(happened: Happened, max_age: float = LIVE_AGE) -> bool:
    """Whether ``happened`` may open, run or notify: a call the hooks reported (not one
    imported from [Calls]) whose latest event is at most ``max_age`` seconds older than the
    moment it was stored."""
    call = happened.call
    return call.source == SOURCE_HOOKS and happened.at - event_time(happened) <= max_age


class RulesPart:
    """The actions' part for rules (config's :class:`LiveConfig`), its side effects through
    ``launcher``. ``enqueue``: webhooks.outbox.enqueue (None: rules' ``webhook`` is skipped,
    logged). ``answer``: what a notice's Answer button calls. ``dashboard``: the page a
    notice's Open button shows when its rule has no ``open``."""

    def __init__(
        self,
        config: LiveConfig,
        launcher: Launcher,
        *,
        normalise: Normaliser,
        enqueue: Enqueue | None = None,
        clock: Callable[[], float] = time.time,
        max_age: float = LIVE_AGE,
        dashboard: str = "",
    ) -> None:
        self.config = config
        self.launcher = launcher
        self.normalise = normalise
        self.enqueue = enqueue
        self.clock = clock
        self.max_age = max_age
        self.dashboard = dashboard
        self.skipped_old = 0

    def plan(self, happened: Happened) -> list[Firing]:
        """What the current rules do for ``happened``."""
        call = happened.call
        return firings(
            self.config.rules,
            call,
            happened.transition,
            self.normalise(call.number),
            event_time(happened),
        )

    def prepare(self, calls: Sequence[Call]) -> None:
        pass

    def record(self, conn: Connection, happened: Sequence[Happened]) -> None:
        # Webhooks go to the outbox for every call, live or caught up: the receivers keep a
        # log, and the outbox's id makes a second row for the same message a no-op.
        if not any(rule.webhook for rule in self.config.rules):
            return
        targets = {t.name: t for t in self.config.targets}
        for h in happened:
            for firing in self.plan(h):
                if firing.webhook is None:
                    continue
                target = targets.get(firing.webhook)
                if target is None or self.enqueue is None:
                    logger.warning(
                        "%s: webhook %r is not available", firing.rule.label, firing.webhook
                    )
                    continue
                self.enqueue(conn, h, target, now=self.clock())

    def committed(self, happened: Sequence[Happened]) -> None:
        if not any(rule.open or rule.run or rule.notify for rule in self.config.rules):
            return
        for h in happened:
            plan = [f for f in self.plan(h) if f.url or f.argv or f.notify]
            if not plan:
                continue
            if not is_live(h, self.max_age):
                self.skipped_old += 1
                logger.info(
                    "%s of call %s is not live (%s): no screen-pop, program or notice",
                    h.transition.value,
                    h.call.call_id,
                    "imported" if h.call.source != SOURCE_HOOKS else "an old event",
                )
                continue
            for firing in plan:
                self.fire(h, firing)

    def fire(self, happened: Happened, firing: Firing) -> None:
        """Open, run and notify for one firing (rate-limited)."""
        rule = firing.rule
        if not self.launcher.allow(rule.label):
            return
        logger.info(
            "%s fires on %s of call %s", rule.label, firing.transition.value, happened.call.call_id
        )
        if firing.url:
            self.launcher.open(firing.url)
        if firing.argv:
            self.launcher.run(firing.argv)
        if firing.notify:
            call = happened.call
            self.launcher.notify(
                build_notice(
                    call_id=call.call_id,
                    name=call.name,
                    number=call.number,
                    direction=call.direction.value,
                    event=firing.transition.value,
                    open_url=firing.url or self.dashboard,
                )
            )

    def start(self) -> None:
        self.config.start()

    def stop(self) -> None:
        self.config.stop()
        self.launcher.stop()
