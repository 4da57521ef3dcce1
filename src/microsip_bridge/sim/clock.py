"""The simulator's clocks: real time (optionally sped up) and a virtual clock for fast tests."""

from __future__ import annotations

import threading
import time
from typing import Protocol

from microsip_bridge.errors import BridgeError

MAX_WAIT = 0.5  # real seconds a RealClock waits at most before its caller looks again


class SimClock(Protocol):
    """What the simulator needs of time: the current simulated Unix time, and a way to wait.

    ``wait`` is called with ``cond`` held; it returns after ``seconds`` of simulated time, or
    earlier when ``cond`` is notified (a command arrived). ``None`` means "until notified".
    """

    def now(self) -> float: ...

    def wait(self, cond: threading.Condition, seconds: float | None) -> None: ...

    def sleep(self, seconds: float) -> None: ...


class RealClock:
    """Wall-clock time, ``speed`` times faster: with ``speed=10`` a 3-second talk takes 0.3 s
    of real time, but [Calls] still records a duration of 3 s. Simulated time starts at the
    real Unix time of creation."""

    def __init__(self, speed: float = 1.0) -> None:
        if not speed > 0 or speed == float("inf"):
            raise BridgeError(f"speed must be a positive number, not {speed!r}")
        self.speed = speed
        self._epoch = time.time()
        self._start = time.monotonic()

    def now(self) -> float:
        return self._epoch + (time.monotonic() - self._start) * self.speed

    def wait(self, cond: threading.Condition, seconds: float | None) -> None:
        # Never block for long in one go: the caller re-checks its state, and Ctrl-C gets in.
        real = MAX_WAIT if seconds is None else min(MAX_WAIT, max(0.0, seconds) / self.speed)
        cond.wait(real)

    def sleep(self, seconds: float) -> None:
        time.sleep(max(0.0, seconds) / self.speed)


class VirtualClock:
    """Time that moves only when the simulator waits: a scenario of minutes runs at once, and
    every duration is exact. Waiting "until notified" still blocks for real (a server waiting
    for commands)."""

    def __init__(self, start: float = 1_750_000_000.0) -> None:
        self._now = float(start)
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise BridgeError(f"time cannot go back ({seconds} s)")
        with self._lock:
            self._now += seconds

    def wait(self, cond: threading.Condition, seconds: float | None) -> None:
        if seconds is None:
            cond.wait()
        else:
            self.advance(max(0.0, seconds))

    def sleep(self, seconds: float) -> None:
        self.advance(max(0.0, seconds))
