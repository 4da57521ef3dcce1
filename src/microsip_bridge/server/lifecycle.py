"""The daemon's life: one daemon per home (an exclusive lock), stop signals caught from the start.

Standard library only, so that ``serve`` can catch Ctrl-C and SIGTERM before it imports the web
stack: a signal during start-up then ends the daemon cleanly (exit 0), never half-way through a
migration and never with the signal's own exit status.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType

from microsip_bridge.errors import BridgeError

LOCK_NAME = "daemon.lock"
# Windows locks a byte range, and a locked range cannot be read by others: the pid is written at
# the start of the file and the lock taken on a byte past it.
_LOCK_OFFSET = 1024


class StopSignals:
    """Ctrl-C, SIGTERM (and SIGBREAK on Windows) turned into a request to stop.

    The first signal asks the daemon to stop gracefully (the callbacks registered with
    :meth:`on_stop` run); a second one asks it to stop now. Nothing is raised, so no start-up
    step is cut in the middle: each checks :attr:`requested` when it is done.
    """

    def __init__(self) -> None:
        self.signal_name: str | None = None
        self.count = 0
        self._callbacks: list[Callable[[int], None]] = []
        self._lock = threading.Lock()

    @property
    def requested(self) -> bool:
        return self.count > 0

    def handle(self, signum: int, frame: FrameType | None = None) -> None:
        with self._lock:
            self.count += 1
            if self.signal_name is None:
                self.signal_name = signal.Signals(signum).name
            callbacks = list(self._callbacks)
        for callback in callbacks:
            callback(self.count)

    def on_stop(self, callback: Callable[[int], None]) -> None:
        """Run ``callback(count)`` on each stop signal from now on (at once if one came)."""
        with self._lock:
            self._callbacks.append(callback)
            count = self.count
        if count:
            callback(count)


_installed: StopSignals | None = None


def stop_signals_caught() -> bool:
    """Whether :func:`catch_stop_signals` holds the signals now."""
    return _installed is not None


def catch_stop_signals() -> StopSignals | None:
    """Install the process's :class:`StopSignals` (idempotent); None off the main thread, where
    Python cannot handle signals (tests run the daemon in a thread and stop it by hand)."""
    global _installed
    if threading.current_thread() is not threading.main_thread():
        return None
    if _installed is None:
        stop = StopSignals()
        for name in ("SIGINT", "SIGTERM", "SIGBREAK"):
            sig = getattr(signal, name, None)
            if sig is not None:
                signal.signal(sig, stop.handle)
        _installed = stop
    return _installed


def release_stop_signals() -> None:
    """Give the signals back to Python's defaults (the end of a daemon run in a process that
    goes on, such as a test)."""
    global _installed
    if _installed is None or threading.current_thread() is not threading.main_thread():
        return
    for name, default in (
        ("SIGINT", signal.default_int_handler),
        ("SIGTERM", signal.SIG_DFL),
        ("SIGBREAK", signal.SIG_DFL),
    ):
        sig = getattr(signal, name, None)
        if sig is not None:
            signal.signal(sig, default)
    _installed = None


class HomeLock:
    """An exclusive lock on ``<home>/daemon.lock`` for the daemon's whole life.

    Two daemons on one home would split the calls between them (each sees half of a call's
    events) and remove each other's ``daemon.json``. The operating system drops the lock when
    the process ends, however it ends, so a daemon killed hard never blocks the next one. The
    hook and the other commands never take it.
    """

    def __init__(self, home: Path) -> None:
        self.path = home / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock, or raise BridgeError naming the pid that holds it."""
        from microsip_bridge.fileio import private_dir

        private_dir(self.path.parent)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_BINARY", 0), 0o600)
        try:
            if not _try_lock(fd):
                holder = _read_pid(fd)
                who = f"pid {holder}" if holder else "another process"
                raise BridgeError(
                    f"a daemon already runs for this home ({who} holds {LOCK_NAME}); stop it "
                    "first, or give this one another MICROSIP_BRIDGE_HOME",
                    path=self.path.parent,
                )
            os.ftruncate(fd, 0)
            os.lseek(fd, 0, os.SEEK_SET)
            os.write(fd, f"{os.getpid()}\n".encode("ascii"))
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, 0)
            os.close(self._fd)  # also drops the lock
            self._fd = None

    def __enter__(self) -> HomeLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _read_pid(fd: int) -> int | None:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        text = os.read(fd, 32).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


if sys.platform == "win32":
    import msvcrt

    def _try_lock(fd: int) -> bool:
        os.lseek(fd, _LOCK_OFFSET, os.SEEK_SET)
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

else:
    import fcntl

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True
