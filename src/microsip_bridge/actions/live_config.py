"""config.toml's [[rules]] and [[webhooks]] as the daemon runs: re-read when the file changes,
the last good ones kept when it turns bad."""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from microsip_bridge.actions.rules import Rule, parse_rules
from microsip_bridge.config import TABLES, load_config
from microsip_bridge.errors import BridgeError
from microsip_bridge.webhooks.targets import WebhookTarget, parse_targets

if TYPE_CHECKING:
    from microsip_bridge.config import Config

logger = logging.getLogger("microsip_bridge.rules")

POLL_INTERVAL = 1.0


def load_tables(path: Path) -> tuple[Config, list[Rule], list[WebhookTarget]]:
    """The settings, rules and targets of config.toml at ``path`` (none: no file);
    BridgeError (one line naming the file, the entry and the key) when any is wrong."""
    config = load_config(path)
    targets = parse_targets(config.tables.get("webhooks", []), path=path)
    rules = parse_rules(
        config.tables.get("rules", []), path=path, webhook_names=[t.name for t in targets]
    )
    return config, rules, targets


class LiveConfig:
    """The rules and webhook targets of config.toml at ``path``, kept current.

    :meth:`poll` (its own thread between :meth:`start` and :meth:`stop`, every
    ``interval`` seconds) looks at the file's size, time and content hash and re-reads it when
    they change. A file that does not parse keeps the previous rules and targets: ``error``
    says why (and one log line), until a good file clears it. Settings (everything but the
    tables) are read once at start: a change to them is logged as needing a restart.
    ``rules`` and ``targets`` are replaced whole, never changed in place, so readers on other
    threads need no lock."""

    def __init__(self, path: Path, *, interval: float = POLL_INTERVAL) -> None:
        self.path = path
        self.interval = interval
        self.rules: Sequence[Rule] = ()
        self.targets: Sequence[WebhookTarget] = ()
        self.error: str | None = None
        self.loaded_at: float | None = None
        self.reloads = 0
        self._stamp: tuple[int, int] | None = None
        self._digest: bytes | None = None
        self._settings: dict[str, Any] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.poll()

    def status(self) -> dict[str, Any]:
        """What /status shows: the rules loaded, the targets, the error, when loaded."""
        return {
            "path": str(self.path),
            "rules": len(self.rules),
            "webhooks": len(self.targets),
            "error": self.error,
            "loaded_at": self.loaded_at,
        }

    def poll(self) -> bool:
        """Re-read the file if it changed; True when new rules and targets were taken."""
        with self._lock:
            return self._poll()

    def _poll(self) -> bool:
        try:
            info = self.path.stat()
            stamp = (info.st_size, info.st_mtime_ns)
        except FileNotFoundError:
            stamp = (-1, 0)
        except OSError as exc:
            return self._bad(f"{self.path}: cannot read: {exc.strerror or exc}")
        if stamp == self._stamp:
            return False
        self._stamp = stamp
        try:
            data = b"" if stamp[0] < 0 else self.path.read_bytes()
        except FileNotFoundError:
            data = b""
        except OSError as exc:
            return self._bad(f"{self.path}: cannot read: {exc.strerror or exc}")
        digest = hashlib.blake2b(data, digest_size=16).digest()
        if digest == self._digest:
            return False  # touched, not changed
        self._digest = digest
        try:
            config, rules, targets = load_tables(self.path)
        except BridgeError as exc:
            return self._bad(str(exc))
        settings = {k: v for k, v in config.values.items() if k not in TABLES}
        first = self.loaded_at is None and self.error is None
        if self._settings is not None and settings != self._settings:
            changed = sorted(k for k in settings if settings[k] != self._settings.get(k))
            logger.warning(
                "%s: settings changed (%s): they take effect when the daemon restarts; rules "
                "and webhooks are reloaded now",
                self.path,
                ", ".join(changed),
            )
        self._settings = settings
        self.rules = tuple(rules)
        self.targets = tuple(targets)
        self.loaded_at = time.time()
        self.reloads += 1
        was_bad = self.error is not None
        self.error = None
        if first:
            logger.info("%s: %d rules and %d webhook targets", self.path, len(rules), len(targets))
        else:
            logger.info(
                "%s %s: %d rules and %d webhook targets now",
                self.path,
                "fixed" if was_bad else "changed",
                len(rules),
                len(targets),
            )
        return True

    def _bad(self, message: str) -> bool:
        if message != self.error:
            kept = "" if self.loaded_at is None else "; keeping the previous rules and webhooks"
            logger.error("%s%s", message, kept)
        self.error = message
        return False

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="config-watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.poll()
            except Exception:
                logger.exception("watching %s failed", self.path)
