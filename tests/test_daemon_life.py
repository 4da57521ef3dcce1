"""The daemon's life: one per home, stopped cleanly at any moment, private, hostile clients."""

from __future__ import annotations

import logging
import os
import random
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from microsip_bridge.errors import BridgeError
from microsip_bridge.server import guard, runner
from microsip_bridge.server.lifecycle import HomeLock

from .daemon_support import hook_env, live_daemon, wait_for_daemon_file

posix_only = pytest.mark.skipif(os.name != "posix", reason="POSIX signals and permissions")


def start_serve(home: Path, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "microsip_bridge", "serve", "--port", "0", *args],
        env=hook_env(home),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def finish(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> tuple[int, str, str]:
    if proc.poll() is None:
        proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    return proc.returncode, out.decode(), err.decode()


# --- one daemon per home ------------------------------------------------------------------------


def test_two_daemons_started_together_one_runs_the_other_says_who(bridge_home: Path) -> None:
    first, second = start_serve(bridge_home), start_serve(bridge_home)
    try:
        deadline = time.monotonic() + 60
        while first.poll() is None and second.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        loser, winner = (first, second) if first.poll() is not None else (second, first)
        code, _, err = finish(loser)
        assert code == 1
        assert f"pid {winner.pid} holds daemon.lock" in err
        assert "Traceback" not in err  # one line says it
        info = wait_for_daemon_file(bridge_home, winner)
        assert info["pid"] == winner.pid  # the loser did not remove the winner's daemon.json
        assert (bridge_home / "daemon.json").exists()
    finally:
        code, out, _ = finish(winner)
    assert code == 0 and "stopped (SIGTERM)" in out
    assert not (bridge_home / "daemon.json").exists()


def test_the_lock_names_its_holder_and_frees_on_release(tmp_path: Path) -> None:
    with (
        HomeLock(tmp_path),
        pytest.raises(BridgeError, match=f"pid {os.getpid()} holds daemon.lock"),
    ):
        HomeLock(tmp_path).acquire()
    with HomeLock(tmp_path):  # released: taken again at once
        pass


def test_a_daemon_killed_hard_does_not_block_the_next(bridge_home: Path) -> None:
    proc = start_serve(bridge_home)
    wait_for_daemon_file(bridge_home, proc)
    proc.kill()
    proc.communicate(timeout=30)
    again = start_serve(bridge_home)
    try:
        wait_for_daemon_file(bridge_home, again)
    finally:
        assert finish(again)[0] == 0


# --- stopped cleanly at any moment ----------------------------------------------------------------


@posix_only
@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_at_any_moment_of_start_up_ends_it_cleanly(bridge_home: Path, sig: int) -> None:
    rng = random.Random(sig)
    # From the moment our code runs (the interpreter's own first milliseconds, before any of
    # it, cannot be covered) to the moment it listens.
    for delay in [0.3, *(rng.uniform(0.3, 1.5) for _ in range(5))]:
        proc = start_serve(bridge_home)
        time.sleep(delay)
        code, _, err = finish(proc, sig)
        assert code == 0, f"signal after {delay:.2f} s: exit {code}: {err[-500:]}"
        assert "Traceback" not in err
        assert not (bridge_home / "daemon.json").exists()
    with HomeLock(bridge_home):  # and nothing holds the home afterwards
        pass


# --- private files --------------------------------------------------------------------------------


@posix_only
def test_the_home_and_everything_in_it_are_private(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir(mode=0o755)
    old = os.umask(0o022)
    try:
        proc = start_serve(home)
        try:
            wait_for_daemon_file(home, proc)
        finally:
            assert finish(proc)[0] == 0
    finally:
        os.umask(old)

    def mode(path: Path) -> int:
        return stat.S_IMODE(path.stat().st_mode)

    assert mode(home) == 0o700
    assert mode(home / "logs") == 0o700
    assert mode(home / "logs" / "daemon.log") == 0o600
    assert mode(home / "bridge.db") == 0o600
    assert mode(home / "token") == 0o600


# --- what it says about where it listens -------------------------------------------------------


def test_every_address_is_said_as_it_is_with_a_warning(bridge_home: Path) -> None:
    proc = start_serve(bridge_home, "--host", "0.0.0.0", "--public")
    try:
        info = wait_for_daemon_file(bridge_home, proc)
    finally:
        code, out, _ = finish(proc)
    assert code == 0
    assert "listening on every address (0.0.0.0:" in out
    assert f"local clients use http://127.0.0.1:{info['port']}" in out
    assert "WARNING: other machines can reach this daemon" in out


# --- hostile clients ------------------------------------------------------------------------------


def test_a_half_sent_request_is_closed_after_the_deadline(
    bridge_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(guard.GuardedH11Protocol, "request_timeout", 0.5)
    with live_daemon(bridge_home) as daemon:
        host, port = daemon.wait_listening()
        slow = [socket.create_connection((host, port), timeout=5) for _ in range(20)]
        for conn in slow:
            conn.sendall(b"POST /api/v1/hook-events HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        started = time.monotonic()
        for conn in slow:
            assert conn.recv(1024) == b""  # closed by the daemon, not by us
            conn.close()
        assert time.monotonic() - started < 4
        silent = socket.create_connection((host, port), timeout=5)  # connects, sends nothing
        assert silent.recv(1024) == b""
        silent.close()
        assert _health(host, port) == 200  # and it still serves


def test_connections_over_the_cap_are_closed_at_once(
    bridge_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(guard, "MAX_CONNECTIONS", 8)
    monkeypatch.setattr(runner, "raise_fd_limit", lambda: 8)
    with live_daemon(bridge_home) as daemon:
        host, port = daemon.wait_listening()
        held = [socket.create_connection((host, port), timeout=5) for _ in range(8)]
        time.sleep(0.3)
        extra = socket.create_connection((host, port), timeout=5)
        assert extra.recv(1024) == b""  # over the cap: closed without a word
        extra.close()
        for conn in held:
            conn.close()
        time.sleep(0.3)
        assert _health(host, port) == 200


def test_a_burst_of_like_log_lines_is_one_line() -> None:
    bursts = guard.BurstFilter(seconds=60)
    records = [
        logging.LogRecord("asyncio", logging.ERROR, __file__, 1, "accept() failed", None, None)
        for _ in range(1000)
    ]
    passed = [r for r in records if bursts.filter(r)]
    assert len(passed) == 1
    other = logging.LogRecord("asyncio", logging.ERROR, __file__, 1, "other", None, None)
    assert bursts.filter(other)
    bursts.seconds = 0  # the burst is over: the next one says how many were left out
    late = logging.LogRecord("asyncio", logging.ERROR, __file__, 1, "accept() failed", None, None)
    assert bursts.filter(late)
    assert "and 999 more like it" in late.getMessage()


def _health(host: str, port: int) -> int:
    import http.client

    conn = http.client.HTTPConnection(host, port, timeout=5)
    try:
        conn.request("GET", "/api/v1/health")
        return conn.getresponse().status
    finally:
        conn.close()
