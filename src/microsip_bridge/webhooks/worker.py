"""The delivery worker: claims due outbox rows, POSTs them signed, retries with backoff.

Each attempt is one POST (no redirects followed, certificates verified). 2xx: delivered.
410 Gone: the receiver wants no more, dead at once. Anything else (another status, a refused
connection, a timeout): tried again after :func:`backoff`, or after the receiver's
Retry-After when that is later, until ``max_attempts`` attempts or ``max_age`` after the
message was queued: then it is a dead letter (kept, listed, retryable).

Delivery is at least once on the wire: a daemon killed between the POST and the mark sends
the row again once its claim expires (at once after a restart on SQLite, where one daemon
writes; after the lease on PostgreSQL). Every attempt of a message has the same
``webhook-id``, so a receiver that drops ids it has seen gets each message exactly once.
Rows of a target no longer in config.toml wait, pending, until it is back (or they are retried
elsewhere): nothing is thrown away because of a typo in the file.
"""

from __future__ import annotations

import concurrent.futures
import email.utils
import logging
import math
import os
import random
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from microsip_bridge.store import outbox as store
from microsip_bridge.webhooks import signing
from microsip_bridge.webhooks.payload import test_body, test_message_id

if TYPE_CHECKING:
    import httpx2
    from sqlalchemy.engine import Connection, Engine

    from microsip_bridge.webhooks.targets import WebhookTarget

logger = logging.getLogger("microsip_bridge.webhooks")

BACKOFF_CAP = 3600.0  # the longest wait between two attempts, Retry-After included
MAX_POLL = 2.0  # the longest the worker sleeps without a nudge (rows retried elsewhere)
MIN_POLL = 0.02


def backoff(
    attempt: int, rng: random.Random, *, base: float = 2.0, cap: float = BACKOFF_CAP
) -> float:
    """Seconds before the attempt after the ``attempt``-th failed one (1, 2...): full jitter,
    uniform in [0, min(cap, base * 2**(attempt-1))]."""
    exponent = min(max(attempt, 1) - 1, 64)
    return rng.uniform(0.0, min(cap, base * 2.0**exponent))


def retry_after(value: str | None, now: float, *, cap: float = BACKOFF_CAP) -> float | None:
    """The seconds a Retry-After header asks for (delta seconds or an HTTP date), capped at
    ``cap``; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return min(float(value), cap)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return min(max(when.timestamp() - now, 0.0), cap)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one attempt got: the status (None: no answer), an error text, Retry-After."""

    status: int | None
    error: str = ""
    retry_after: float | None = None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def post(
    client: httpx2.Client, target: WebhookTarget, msg_id: str, body: str, now: float
) -> Outcome:
    """One signed POST of ``body`` to ``target``."""
    import httpx2

    data = body.encode("utf-8")
    headers = signing.headers(target.key, msg_id, int(now), data)
    headers["user-agent"] = "microsip-bridge-webhooks"
    try:
        response = client.post(target.url, content=data, headers=headers)
    except httpx2.TimeoutException:
        return Outcome(None, "timed out")
    except httpx2.HTTPError as exc:
        return Outcome(None, f"{type(exc).__name__}: {exc}"[:300])
    except Exception as exc:  # an attempt that fails oddly is a failed attempt, not a crash
        return Outcome(None, f"{type(exc).__name__}: {exc}"[:300])
    error = "" if 200 <= response.status_code < 300 else f"HTTP {response.status_code}"
    return Outcome(
        response.status_code, error, retry_after(response.headers.get("retry-after"), now)
    )


def make_client(timeout: float, connections: int) -> httpx2.Client:
    """The HTTP client of the deliveries: verified certificates, no redirects, no proxy
    settings from the environment surprising anyone."""
    import httpx2

    return httpx2.Client(
        timeout=timeout,
        verify=True,
        follow_redirects=False,
        trust_env=False,
        limits=httpx2.Limits(max_connections=connections, max_keepalive_connections=connections),
    )


def send_test(target: WebhookTarget, *, timeout: float, now: float | None = None) -> Outcome:
    """Send a signed ``webhook.test`` message to ``target`` now (nothing stored)."""
    now = time.time() if now is None else now
    with make_client(timeout, 1) as client:
        return post(client, target, test_message_id(), test_body(target.name, now), now)


def worker_id() -> str:
    """This process's worker name: host, pid and a random part (unique among daemons)."""
    return f"{socket.gethostname()[:30]}:{os.getpid()}:{random.getrandbits(32):08x}"


class Worker:
    """Sends the outbox's due rows of the targets ``targets()`` returns (read at every round,
    so a reloaded config.toml counts at once), ``workers`` at a time."""

    def __init__(
        self,
        engine: Engine,
        targets: Callable[[], Sequence[WebhookTarget]],
        *,
        timeout: float = 10.0,
        max_attempts: int = 20,
        max_age: float = 86400.0,
        workers: int = 8,
        backoff_base: float = 2.0,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        name: str | None = None,
    ) -> None:
        self.engine = engine
        self.targets = targets
        self.timeout = timeout
        self.max_attempts = max_attempts
        self.max_age = max_age
        self.workers = max(1, workers)
        self.backoff_base = backoff_base
        self.clock = clock
        self.rng = rng or random.Random()  # noqa: S311 - jitter, not secrets
        self.name = name or worker_id()
        self.batch = self.workers * 4
        # A batch takes at most batch/workers timeouts in a row; a claim outlives it.
        self.lease = math.ceil(self.batch / self.workers) * timeout * 1.5 + 10.0
        self.sent = 0  # attempts made, for the bench and the tests
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def wake(self) -> None:
        """New rows were committed: look now."""
        self._wake.set()

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="webhooks", daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        thread = self._thread
        if thread is None:
            return
        self._stop.set()
        self._wake.set()
        thread.join(timeout if timeout is not None else self.lease)
        self._thread = None

    def _release_stale(self) -> None:
        # One daemon writes a SQLite store: claims left by a killed one are void now. (On
        # PostgreSQL other daemons may hold claims: theirs expire with their lease.)
        if self.engine.dialect.name != "sqlite":
            return
        try:
            with self.engine.begin() as conn:
                released = store.release(conn)
        except Exception as exc:  # the store not migrated yet: nothing was claimed
            logger.debug("no webhook claims released: %s", exc)
            return
        if released:
            logger.info("%d webhook messages claimed before a restart are due again", released)

    def _run(self) -> None:
        self._release_stale()
        with (
            make_client(self.timeout, self.workers) as client,
            concurrent.futures.ThreadPoolExecutor(self.workers, "webhook-send") as pool,
        ):
            while not self._stop.is_set():
                try:
                    busy = self.round(client, pool)
                except Exception:
                    logger.exception("webhook delivery round failed")
                    busy = False
                if not busy:
                    self._wake.wait(self._idle())
                    self._wake.clear()
            try:
                with self.engine.begin() as conn:
                    store.release(conn, self.name)
            except Exception:
                logger.exception("could not release the webhook claims")

    def _idle(self) -> float:
        names = [t.name for t in self.targets()]
        try:
            with self.engine.connect() as conn:
                due = store.next_due(conn, names)
        except Exception:
            return MAX_POLL
        if due is None:
            return MAX_POLL
        return min(max(due - self.clock(), MIN_POLL), MAX_POLL)

    def round(self, client: httpx2.Client, pool: concurrent.futures.Executor | None = None) -> bool:
        """Claim one batch, send it, record what each attempt got; whether there was any."""
        targets = {t.name: t for t in self.targets()}
        now = self.clock()
        with self.engine.begin() as conn:
            rows = store.claim(
                conn, self.name, now=now, lease=self.lease, limit=self.batch, targets=list(targets)
            )
        if not rows:
            return False

        def attempt(row: store.Claimed) -> Outcome | None:
            if self._stop.is_set():
                return None  # stopping: not sent, its claim released when the worker ends
            return post(client, targets[row.target], row.msg_id, row.body, self.clock())

        outcomes = list(pool.map(attempt, rows)) if pool else [attempt(r) for r in rows]
        self.sent += sum(o is not None for o in outcomes)
        now = self.clock()
        done: list[tuple[int, int]] = []
        failed: list[tuple[store.Claimed, Outcome]] = []
        for row, outcome in zip(rows, outcomes, strict=True):
            if outcome is None:
                continue
            if outcome.ok and outcome.status is not None:
                done.append((row.id, outcome.status))
            else:
                failed.append((row, outcome))
        with self.engine.begin() as conn:
            store.delivered_many(conn, self.name, done, now=now)
            for row, outcome in failed:
                self._record(conn, row, outcome, now)
        return True

    def _record(self, conn: Connection, row: store.Claimed, outcome: Outcome, now: float) -> None:
        """A failed attempt: retried after the backoff (or Retry-After), or a dead letter."""
        attempts = row.attempts + 1
        dead = (
            outcome.status == 410
            or attempts >= self.max_attempts
            or now - row.created_at >= self.max_age
        )
        wait = backoff(attempts, self.rng, base=self.backoff_base)
        if outcome.retry_after is not None:
            wait = max(wait, outcome.retry_after)
        store.failed(
            conn,
            row.id,
            self.name,
            next_at=now + wait,
            status=outcome.status,
            error=outcome.error,
            dead=dead,
        )
        if dead:
            logger.warning(
                "webhook %s to %s is a dead letter after %d attempts: %s",
                row.msg_id,
                row.target,
                attempts,
                outcome.error,
            )
