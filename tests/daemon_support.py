"""Helpers for the daemon, hook and spool tests: a real daemon (thread or process), real hooks."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from microsip_bridge import wire
from microsip_bridge.model import Call
from microsip_bridge.server.runner import Daemon
from microsip_bridge.server.settings import DaemonSettings
from microsip_bridge.store import repo
from microsip_bridge.store.engine import make_engine
from microsip_bridge.store.repo import StoredEvent

# What MicroSIP runs: the installed entry point when there is one (pip's wrapper script), else
# the same main() through -c.
_SCRIPT = Path(sys.executable).with_name(
    "microsip-bridge-hook.exe" if sys.platform == "win32" else "microsip-bridge-hook"
)
HOOK = (
    [str(_SCRIPT)]
    if _SCRIPT.is_file()
    else [sys.executable, "-I", "-c", "from microsip_bridge.hook import main; main()"]
)
# The fastest form, which `hooks install` may write (no wrapper script, no `import re`).
HOOK_DIRECT = [sys.executable, "-I", f"-c{wire.INLINE_CODE}"]


def hook_env(home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["MICROSIP_BRIDGE_HOME"] = str(home)
    return env


def run_hook(
    home: Path, *args: str | bytes, command: Sequence[str] = HOOK, timeout: float = 30
) -> subprocess.CompletedProcess[bytes]:
    """Run the real hook as MicroSIP would: argv items, no shell, the bridge home set."""
    return subprocess.run(
        [*command, *args],
        env=hook_env(home),
        capture_output=True,
        timeout=timeout,
        check=False,
        cwd=home,
    )


def start_hook(home: Path, *args: str | bytes) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [*HOOK, *args],
        env=hook_env(home),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=home,
    )


def start_hooks(home: Path, numbers: Sequence[str], event: str = "ring") -> list[int]:
    """Fire one real hook (the direct form) per number, all at once; their exit codes."""
    procs = [
        subprocess.Popen(
            [*HOOK_DIRECT, event, number],
            env=hook_env(home),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=home,
        )
        for number in numbers
    ]
    return [proc.wait(120) for proc in procs]


def publish(home: Path, port: int, *, pid: int, token: str = "t" * 43) -> None:
    """A daemon.json and token as a daemon would leave them."""
    home.mkdir(parents=True, exist_ok=True)
    (home / "daemon.json").write_text(json.dumps({"host": "127.0.0.1", "port": port, "pid": pid}))
    (home / "token").write_text(token + "\n")


@contextmanager
def hung_daemon(home: Path) -> Iterator[list[socket.socket]]:
    """A 'daemon' that accepts every connection and never reads or answers (wedged, or a PC too
    loaded to run it), published in ``home``; yields the connections it holds."""
    server = socket.create_server(("127.0.0.1", 0), backlog=1024)
    server.settimeout(0.05)  # a blocked accept() does not notice close(): poll instead
    held: list[socket.socket] = []
    over = threading.Event()

    def accept() -> None:
        while not over.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            held.append(conn)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    publish(home, server.getsockname()[1], pid=os.getpid())
    try:
        yield held
    finally:
        over.set()
        thread.join(10)
        server.close()
        for conn in held:
            conn.close()


def settings_for(home: Path, **changes: object) -> DaemonSettings:
    """Daemon settings for a test: a free port, quick rounds."""
    base = DaemonSettings(home=home, host="127.0.0.1", port=0, spool_interval=0.2)
    return base.with_(**changes) if changes else base


@contextmanager
def live_daemon(home: Path, **changes: object) -> Iterator[Daemon]:
    """A real daemon (uvicorn on a free loopback port) in a thread of this process."""
    daemon = Daemon(settings_for(home, **changes), configure_logging=False)
    thread = threading.Thread(target=_run_quietly, args=(daemon,), daemon=True)
    thread.start()
    try:
        daemon.wait_listening()
        yield daemon
    finally:
        daemon.stop()
        thread.join(60)


def _run_quietly(daemon: Daemon) -> None:
    try:
        daemon.run()
    except BaseException:  # kept in daemon.error; wait_listening reports it
        return


DAEMON_PROCESS_CODE = """
import sys
from pathlib import Path
from microsip_bridge.server.runner import serve
from microsip_bridge.server.settings import DaemonSettings
home = Path(sys.argv[1])
settings = DaemonSettings(home=home, host="127.0.0.1", port=int(sys.argv[2]), spool_interval=0.2)
stopped = serve(settings, announce=print)
print("stopped", stopped, flush=True)
"""


def start_daemon_process(home: Path, port: int = 0) -> subprocess.Popen[bytes]:
    """The daemon in a process of its own (to SIGKILL it, or to stop it with SIGTERM)."""
    # Its output goes to files, read back by stop() and on a failed start: a pipe nobody reads
    # while the daemon runs fills up with its log lines, and then blocks the daemon.
    out_path, err_path = (_temp_file(f"daemon-{n}-") for n in ("out", "err"))
    with out_path.open("wb") as out, err_path.open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-c", DAEMON_PROCESS_CODE, str(home), str(port)],
            env=hook_env(home),
            stdout=out,
            stderr=err,
        )
    _OUTPUT[proc.pid] = (out_path, err_path)
    wait_for_daemon_file(home, proc)
    return proc


def _temp_file(prefix: str) -> Path:
    fd, name = tempfile.mkstemp(prefix=prefix)
    os.close(fd)
    return Path(name)


# The files a daemon process started by start_daemon_process writes its output to, by pid.
_OUTPUT: dict[int, tuple[Path, Path]] = {}


def _output(proc: subprocess.Popen[bytes]) -> tuple[str, str]:
    paths = _OUTPUT.pop(proc.pid, None)
    if paths is None:
        return "", ""
    texts = tuple(p.read_bytes().decode(errors="replace") for p in paths)
    for path in paths:
        path.unlink(missing_ok=True)
    return texts[0], texts[1]


def wait_for_daemon_file(home: Path, proc: subprocess.Popen[bytes], timeout: float = 60) -> dict:
    """Wait until ``proc`` has published daemon.json (it then listens)."""
    give_up = time.monotonic() + timeout
    path = home / "daemon.json"
    while time.monotonic() < give_up:
        if proc.poll() is not None:
            err = proc.stderr.read().decode() if proc.stderr else _output(proc)[1]
            raise AssertionError(f"the daemon exited with {proc.returncode}: {err}")
        try:
            info = json.loads(path.read_text("utf-8"))
        except (OSError, ValueError):
            info = None
        if isinstance(info, dict) and info.get("pid") == proc.pid:
            return info
        time.sleep(0.02)
    raise AssertionError("the daemon did not publish daemon.json in time")


def kill(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL: the daemon gets no chance to clean up."""
    proc.send_signal(signal.SIGKILL if hasattr(signal, "SIGKILL") else signal.SIGTERM)
    proc.wait(30)
    for stream in (proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()
    _output(proc)  # its output files, if any, go


def stop(proc: subprocess.Popen[bytes]) -> tuple[int, str, str]:
    """SIGTERM and wait; (exit status, stdout, stderr)."""
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    if out is None and err is None:  # its output went to files (start_daemon_process)
        return proc.returncode, *_output(proc)
    return proc.returncode, (out or b"").decode(), (err or b"").decode()


def stored_events(home: Path, database: str | None = None) -> list[StoredEvent]:
    engine = make_engine(database, home)
    try:
        with engine.connect() as conn:
            found: list[StoredEvent] = []
            cursor = 0
            while page := repo.events_after(conn, cursor, 1000):
                found.extend(page)
                cursor = page[-1].cursor
            return found
    finally:
        engine.dispose()


def stored_calls(home: Path, database: str | None = None) -> list[Call]:
    engine = make_engine(database, home)
    try:
        with engine.connect() as conn:
            return list(reversed(repo.list_calls(conn)))
    finally:
        engine.dispose()


def spool_lines(home: Path) -> list[dict]:
    path = home / "spool.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text("ascii").splitlines() if line]


def hook_log(home: Path) -> str:
    path = home / "logs" / "hook.log"
    return path.read_text("utf-8", errors="replace") if path.exists() else ""


def wait_until(predicate: Callable[[], object], timeout: float = 30, what: str = "it") -> None:
    give_up = time.monotonic() + timeout
    while time.monotonic() < give_up:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def spool_drained(home: Path) -> bool:
    """No spool and no claimed file left: every spooled event is committed (the daemon deletes a
    claimed file only after its events are stored)."""
    from microsip_bridge.calls.spool import CLAIMED_SUFFIX

    return not (home / "spool.jsonl").exists() and not list(home.glob(f"spool*{CLAIMED_SUFFIX}"))
