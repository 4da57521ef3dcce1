"""The side effects of rules: a web page opened, a program run, a notice shown; off the
writer thread, on a small pool, with rate limits, so neither the daemon nor MicroSIP waits."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time
import webbrowser
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from microsip_bridge.actions.notify import NoNotifier, Notice, Notifier

logger = logging.getLogger("microsip_bridge.rules")

WORKERS = 4  # programs and browsers at once: 100 pops at once must not fork-bomb the PC
MAX_QUEUED = 64  # waiting beyond the workers; more are dropped (and logged)
RUN_TIMEOUT = 30.0  # a program still running after this is killed
GLOBAL_PER_MINUTE = 120  # fires a minute by all rules together


def open_url(url: str) -> None:
    """Open ``url`` in the user's default browser (Windows: the shell's handler)."""
    if sys.platform == "win32":
        os.startfile(url)  # noqa: S606 - an http(s) URL checked by the rule's parser
    elif not webbrowser.open(url):
        # Not the URL: it holds the caller's number, which logs do not show.
        logger.warning("no browser could open the page (%s)", url.split("?", 1)[0])


def run_program(argv: tuple[str, ...], timeout: float = RUN_TIMEOUT) -> int | None:
    """Run ``argv`` (no shell: each item is one argument, whatever it holds), with no input or
    output, killed after ``timeout`` seconds; its exit code (None: killed)."""
    flags = 0
    if sys.platform == "win32":
        flags = subprocess.CREATE_NO_WINDOW
    try:
        done = subprocess.run(  # an argv list, never a shell
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=timeout,
            shell=False,
            check=False,
            creationflags=flags,
        )
    except subprocess.TimeoutExpired:
        logger.warning("%s ran longer than %.0f s and was killed", argv[0], timeout)
        return None
    except OSError as exc:
        logger.warning("cannot run %s: %s", argv[0], exc.strerror or exc)
        return None
    if done.returncode != 0:
        logger.info("%s exited with %d", argv[0], done.returncode)
    return done.returncode


class RateLimit:
    """At most ``per_minute`` fires in any 60 seconds (0: no limit)."""

    def __init__(self, per_minute: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self.clock = clock
        self._times: deque[float] = deque()

    def allow(self) -> bool:
        if self.per_minute <= 0:
            return True
        now = self.clock()
        times = self._times
        while times and times[0] <= now - 60:
            times.popleft()
        if len(times) >= self.per_minute:
            return False
        times.append(now)
        return True


class Launcher:
    """Runs the side effects of rules on ``workers`` threads. ``rule_rate``: fires a minute per
    rule; ``global_rate``: by all rules. ``opener``, ``runner`` and ``notifier`` do the work
    (replaceable in tests). :meth:`submit` never blocks."""

    def __init__(
        self,
        *,
        rule_rate: float,
        global_rate: float = GLOBAL_PER_MINUTE,
        workers: int = WORKERS,
        max_queued: int = MAX_QUEUED,
        run_timeout: float = RUN_TIMEOUT,
        opener: Callable[[str], None] = open_url,
        runner: Callable[[tuple[str, ...], float], int | None] = run_program,
        notifier: Notifier | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rule_rate = rule_rate
        self.workers = workers
        self.max_queued = max_queued
        self.run_timeout = run_timeout
        self.opener = opener
        self.runner = runner
        self.notifier: Notifier = notifier or NoNotifier()
        self.clock = clock
        self._global = RateLimit(global_rate, clock)
        self._per_rule: dict[str, RateLimit] = {}
        self._pending = 0
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self.dropped = 0
        self.done = 0

    def allow(self, rule: str) -> bool:
        """Whether rule ``rule`` (its label) may fire now; counts the fire when it may."""
        with self._lock:
            limit = self._per_rule.get(rule)
            if limit is None:
                limit = self._per_rule[rule] = RateLimit(self.rule_rate, self.clock)
            if not limit.allow():
                logger.warning(
                    "%s fired more than %g times a minute: skipped", rule, self.rule_rate
                )
                return False
            if not self._global.allow():
                logger.warning(
                    "rules fired more than %g times a minute: %s skipped",
                    self._global.per_minute,
                    rule,
                )
                return False
            return True

    def open(self, url: str) -> bool:
        return self._submit(lambda: self.opener(url), f"open {url.split('?', 1)[0]}")

    def run(self, argv: tuple[str, ...]) -> bool:
        return self._submit(lambda: self.runner(argv, self.run_timeout), f"run {argv[0]}")

    def notify(self, notice: Notice) -> bool:
        return self._submit(lambda: self.notifier.show(notice), "notify")

    def _submit(self, job: Callable[[], object], what: str) -> bool:
        with self._lock:
            if self._pending >= self.workers + self.max_queued:
                self.dropped += 1
                logger.warning("too many rule actions waiting: %s dropped", what)
                return False
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="rule-action")
            self._pending += 1
            pool = self._pool

        def task() -> None:
            try:
                job()
            except Exception:
                logger.exception("rule action failed: %s", what)
            finally:
                with self._lock:
                    self._pending -= 1
                    self.done += 1

        pool.submit(task)
        return True

    def wait(self, timeout: float = 10.0) -> bool:
        """Wait until nothing is pending (tests); True if so."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if self._pending == 0:
                    return True
            time.sleep(0.01)
        return False

    def stop(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            # Programs already running finish (or time out) on their own; queued ones are not
            # started during shutdown.
            pool.shutdown(wait=False, cancel_futures=True)
