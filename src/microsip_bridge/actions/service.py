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

import functools
import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from microsip_bridge.actions.live_config import LiveConfig
from microsip_bridge.config import CONFIG_NAME
from microsip_bridge.contacts.names import CallerNames
from microsip_bridge.errors import FileFormatError
from microsip_bridge.microsip.accounts import dialing_prefix_of
from microsip_bridge.numbers import Normaliser, normaliser_for

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine

    from microsip_bridge.actions.rules_part import RulesPart
    from microsip_bridge.calls.ingest import Ingestor
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

    def __init__(
        self,
        normalise: Normaliser,
        parts: Sequence[Part] = (),
        *,
        names: CallerNames | None = None,
    ) -> None:
        self.normalise = normalise
        self.parts = list(parts)
        # Sends MicroSIP a control verb ("answer"): set by the daemon (server/app.py) for the
        # notices' Answer button; None: no control.
        self.control: Callable[[str], object] | None = None
        self.rules: RulesPart | None = None
        self.names = names  # also in ``parts``: the API's /lookup and late CRM names need it

    def bind(self, ingestor: Ingestor) -> None:
        """Let names found late (the CRM's) reach their calls through ``ingestor``."""
        if self.names is not None:
            self.names.on_name = ingestor.set_name

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
    normalise = normaliser_for(str(values.get("default_region", "")), dialing_prefix_of(ini))
    names = caller_names(values, normalise, ini=ini, engine=engine)
    parts: list[Part] = [names]  # first: the rules see the names it gives
    actions = Actions(normalise, parts, names=names)
    # One watcher of config.toml for the rules and the webhook targets (hot-reloaded together);
    # a file that is bad when the daemon starts stops it, with the reason.
    live = LiveConfig(home / CONFIG_NAME)
    if live.error is not None:
        raise FileFormatError(live.error)
    actions.rules = _rules_part(actions, values, live)
    actions.parts.append(actions.rules)
    actions.parts.append(webhook_part(values, live, engine=engine, normalise=normalise))
    return actions


def _rules_part(actions: Actions, values: Mapping[str, Any], live: LiveConfig) -> RulesPart:
    """The rules (config.toml's [[rules]], watched), their launcher and notifier."""
    from microsip_bridge.actions.launch import Launcher, open_url
    from microsip_bridge.actions.notify import make_notifier
    from microsip_bridge.actions.rules_part import RulesPart
    from microsip_bridge.webhooks.outbox import enqueue

    def answer() -> None:
        if actions.control is None:
            logger.warning("the notice's Answer button: the daemon has no control service")
        else:
            actions.control("answer")

    # The notice is shown on the daemon's own PC: loopback reaches it whatever it listens on.
    port = int(values.get("port", 0))
    dashboard = f"http://127.0.0.1:{port}/"
    launcher = Launcher(
        rule_rate=float(values.get("rules_rate", 10.0)),
        notifier=make_notifier(answer, open_url),
    )
    return RulesPart(
        live,
        launcher,
        normalise=actions.normalise,
        enqueue=functools.partial(enqueue, normalise=actions.normalise),
        dashboard=dashboard if port else "",
    )


def caller_names(
    values: Mapping[str, Any], normalise: Normaliser, *, ini: Path | None, engine: Engine | None
) -> CallerNames:
    """The caller-name part for the settings ``values``: Contacts.xml beside ``ini``, the
    bridge's contacts in ``engine``, the CRM when crm_url is set (the CLI's `names lookup`
    builds the same)."""
    from microsip_bridge.contacts.crm import CrmLookup, CrmSettings
    from microsip_bridge.microsip.locate import CONTACTS_NAME

    crm = None
    if values.get("crm_url"):
        crm = CrmLookup(
            CrmSettings(
                url=str(values["crm_url"]),
                name_pointer=str(values.get("crm_name_pointer", "/name")),
                timeout=float(values.get("crm_timeout", 2.0)),
                cache_ttl=float(values.get("crm_cache_ttl", 3600.0)),
                token_env=str(values.get("crm_token_env", "")),
            )
        )
    max_mb = values.get("max_file_mb")
    return CallerNames(
        normalise,
        contacts=None if ini is None else ini.parent / CONTACTS_NAME,
        engine=engine,
        crm=crm,
        max_bytes=int(max_mb) * 1024 * 1024 if max_mb else None,
    )


def webhook_part(
    values: Mapping[str, Any], live: LiveConfig, *, engine: Engine, normalise: Normaliser
) -> Part:
    """The outbox part and its delivery worker, with config.toml's [[webhooks]] targets as
    ``live`` has them now (hot-reloaded)."""
    from microsip_bridge.webhooks.outbox import OutboxPart
    from microsip_bridge.webhooks.worker import Worker

    def targets() -> Sequence[WebhookTarget]:
        return live.targets

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
