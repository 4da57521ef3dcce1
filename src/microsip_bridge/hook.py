"""The hook that MicroSIP runs on every call event: standard library only, fast, never fails loudly.

MicroSIP runs ``microsip-bridge-hook EVENT NUMBER`` and *waits* for it (up to 10 s, on its SIP
thread for incoming calls, facts §2.3), so this module never starts a shell and exits as soon as
the event is safe:

1. If the daemon has left its address in ``<home>/daemon.json``, the event is POSTed to it over
   loopback with the token from ``<home>/token`` (HTTP/1.1 written by hand on a raw socket;
   :data:`CONNECT_TIMEOUT` to connect, :data:`POST_DEADLINE` for the whole exchange). The daemon
   answers 202 only once the event is committed, so a 2xx means done.
2. Otherwise (no daemon, refused, slow, 401, 5xx...) the event is appended as one JSON line to
   ``<home>/spool.jsonl`` with an fsync, for the daemon to ingest. A duplicate of a POST that did
   arrive is harmless: the record's ``id`` makes ingestion idempotent.
3. A watchdog thread ends the process :data:`RUN_DEADLINE` seconds after it started, whatever
   is stuck (a hung disk, say).

**Import cost.** Python itself starts in about 13 ms, and the target for the whole hook is 1.5x
that. ``json``, ``socket``, ``pathlib``, ``enum``, ``uuid`` and ``typing`` would each add 5-13 ms
(mostly for ``re``), so the hot path uses only modules the interpreter has loaded already and the
C modules under them: ``_socket``, ``_json`` (JSON quoting and scanning) and ``_thread``, and
:mod:`microsip_bridge.wire`, which shares the record and the spool with the daemon and is as
frugal. The fastest way to start it is ``python -I -c<INLINE_CODE> EVENT``: no console-script
wrapper (pip's imports ``re``, about 7 ms; on Windows its launcher .exe starts python as a
second process) and no ``-m`` (runpy). :data:`INLINE_CODE` has no spaces and no double quotes,
so it survives MicroSIP's split-and-rejoin of the command (facts §2.3) unchanged.

**Numbers** are untrusted text, re-joined from argv as MicroSIP appended them (facts §2.3, §2.4),
never handed to a shell. Bytes that are not UTF-8 (Linux argv) arrive as lone surrogates
(``surrogateescape``) and travel escaped (``\\udcff``) in the ASCII JSON; the daemon decides what
to store. Longer than :data:`MAX_NUMBER_CHARS`: refused with a log line.

Failures go to ``<home>/logs/hook.log``: under pythonw there is no console.
"""

from __future__ import annotations

import os
import sys
import time

from microsip_bridge.wire import (
    DAEMON_FILE,
    EVENT_NAMES,
    HOOK_EVENTS_PATH,
    LOG_NAME,
    MAX_NUMBER_CHARS,
    TOKEN_NAME,
    append_line,
    encode_record,
    home_dir,
    make_record,
    parse_json,
    spool,
)

# typing costs ~9 ms to import; mypy honours a module-level TYPE_CHECKING = False as well.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

# Loopback connects in microseconds; 0.2 s only passes when the machine is swamped.
CONNECT_TIMEOUT = 0.2
# Connect, send, and the daemon's durable commit, all together.
POST_DEADLINE = 0.5
# The whole run, even when the disk hangs: MicroSIP's SIP thread waits for us (facts §2.3).
RUN_DEADLINE = 1.0
# Exit codes: MicroSIP ignores them (facts §2.3), people and tests do not.
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
MAX_LOG_BYTES = 1024 * 1024
# A daemon.json or token bigger than this is not ours.
_MAX_SMALL_FILE = 64 * 1024
_RESPONSE_LIMIT = 64 * 1024


def join_number(parts: list[str]) -> str:
    """Re-join the number that MicroSIP appended unquoted and CommandLineToArgvW split at spaces.

    Runs of spaces collapse to one in the split; that cannot be undone, and SIP user parts do
    not contain spaces unescaped anyway.
    """
    return " ".join(parts)


def log(message: str, home: str | os.PathLike[str] | None = None) -> None:
    """Best effort: the hook has no console under pythonw, and must never fail because of a log.
    The log is cut to one old generation (``hook.log.1``) past :data:`MAX_LOG_BYTES`."""
    try:
        folder = os.path.join(home_dir() if home is None else os.fspath(home), "logs")
        path = os.path.join(folder, LOG_NAME)
        try:
            if os.stat(path).st_size > MAX_LOG_BYTES:
                os.replace(path, path + ".1")
        except OSError:
            pass
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        append_line(path, f"{stamp} pid={os.getpid()} {message}")
    except (OSError, ValueError):
        pass


# --- the daemon ---------------------------------------------------------------------------------


def _read_small(path: str) -> str | None:
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
    except OSError:
        return None
    try:
        data = os.read(fd, _MAX_SMALL_FILE + 1)
    except OSError:
        return None
    finally:
        os.close(fd)
    if len(data) > _MAX_SMALL_FILE:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _token_ok(token: str) -> bool:
    # secrets.token_urlsafe's alphabet: nothing that could break out of a header line.
    return bool(token) and all(c.isascii() and (c.isalnum() or c in "-_.~") for c in token)


def read_daemon(home: str | os.PathLike[str] | None = None) -> tuple[str, int, str] | None:
    """``(host, port, token)`` of the running daemon, from ``daemon.json`` and the token file;
    ``None`` when there is no daemon (or its files are missing or damaged: the caller spools)."""
    folder = home_dir() if home is None else os.fspath(home)
    text = _read_small(os.path.join(folder, DAEMON_FILE))
    if text is None:
        return None
    try:
        info = parse_json(text)
    except (ValueError, RecursionError):
        log(f"ignored a damaged {DAEMON_FILE}", folder)
        return None
    if not isinstance(info, dict):
        return None
    host, port = info.get("host"), info.get("port")
    if not isinstance(host, str) or type(port) is not int or not 0 < port < 65536:
        log(f"ignored {DAEMON_FILE}: no host and port in it", folder)
        return None
    token = (_read_small(os.path.join(folder, TOKEN_NAME)) or "").strip()
    if not _token_ok(token):
        log(f"no usable token in {os.path.join(folder, TOKEN_NAME)}", folder)
        return None
    return host, port, token


def build_request(host: str, port: int, token: str, body: bytes) -> bytes:
    """The HTTP/1.1 request that hands one event to the daemon."""
    authority = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    head = (
        f"POST {HOOK_EVENTS_PATH} HTTP/1.1\r\n"
        f"Host: {authority}\r\n"
        f"Authorization: Bearer {token}\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Connection: close\r\n"
        "\r\n"
    )
    return head.encode("ascii") + body


def post(
    address: tuple[str, int, str],
    body: bytes,
    *,
    connect_timeout: float = CONNECT_TIMEOUT,
    deadline: float = POST_DEADLINE,
) -> int | None:
    """POST ``body`` to the daemon; its HTTP status, or ``None`` when there is no answer (refused,
    reset, timed out, garbled). ``deadline`` bounds the whole exchange, in seconds."""
    try:
        import _socket as sock
    except ImportError:  # pragma: no cover - CPython always has _socket
        import socket as sock  # type: ignore[no-redef]
    host, port, token = address
    give_up = time.monotonic() + deadline
    family = sock.AF_INET6 if ":" in host else sock.AF_INET
    try:
        conn = sock.socket(family, sock.SOCK_STREAM)
    except OSError:
        return None
    reply = b""
    try:
        conn.settimeout(min(connect_timeout, deadline))
        conn.connect((host, port))
        request = build_request(host, port, token, body)
        conn.settimeout(max(give_up - time.monotonic(), 0.001))
        conn.sendall(request)
        # Connection: close, so the daemon's end of the response is the end of the stream; the
        # status line is all we need, and the daemon sends it only after the commit.
        while len(reply) < _RESPONSE_LIMIT:
            left = give_up - time.monotonic()
            if left <= 0:
                break
            conn.settimeout(left)
            chunk = conn.recv(4096)
            if not chunk:
                break
            reply += chunk
    except OSError:
        if not reply.startswith(b"HTTP/1."):
            return None
    finally:
        conn.close()
    if not reply.startswith(b"HTTP/1.") or len(reply) < 12 or b"\r\n" not in reply:
        return None
    code = reply[9:12]
    return int(code) if code.isdigit() else None


def deliver(
    record: Mapping[str, object],
    home: str | os.PathLike[str] | None = None,
    *,
    connect_timeout: float = CONNECT_TIMEOUT,
    deadline: float = POST_DEADLINE,
) -> str:
    """Hand the record to the daemon, or spool it: returns ``"posted"`` or ``"spooled"``.
    Raises OSError only when the spool cannot be written either."""
    folder = home_dir() if home is None else os.fspath(home)
    line = encode_record(record)
    address = read_daemon(folder)
    if address is not None:
        status = post(
            address, line.encode("ascii"), connect_timeout=connect_timeout, deadline=deadline
        )
        if status is not None and 200 <= status < 300:
            return "posted"
        if status is not None:
            # A refused connection is the normal "daemon stopped"; an HTTP error is worth a line.
            log(f"daemon answered {status} to {record.get('event')}; spooled it", folder)
        elif _daemon_alive(folder):
            log(f"daemon did not answer {record.get('event')} in time; spooled it", folder)
    spool(record, folder)
    return "spooled"


if sys.platform == "win32":

    def _daemon_alive(folder: str) -> bool:
        # No harmless probe there (os.kill terminates the process): assume it is, and log.
        return True

else:

    def _daemon_alive(folder: str) -> bool:
        # A daemon killed hard leaves daemon.json behind; then a refused connect is no news.
        text = _read_small(os.path.join(folder, DAEMON_FILE))
        try:
            info = parse_json(text) if text else None
        except (ValueError, RecursionError):
            return False
        pid = info.get("pid") if isinstance(info, dict) else None
        if type(pid) is not int or pid <= 0:
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except OSError:
            return True  # alive, but someone else's
        return True


# --- the program --------------------------------------------------------------------------------

USAGE = "usage: microsip-bridge-hook EVENT [NUMBER...]   EVENT: " + ", ".join(EVENT_NAMES)


def _say(message: str) -> None:
    if sys.stderr is not None:  # None under pythonw
        try:  # noqa: SIM105 - contextlib would cost the hook 3 ms of imports
            print(message, file=sys.stderr)
        except (OSError, ValueError):
            pass


def run(argv: list[str], home: str | os.PathLike[str] | None = None) -> int:
    """Handle one invocation (``argv`` without the program); returns the exit code."""
    if not argv:
        log("refused: no event given", home)
        _say(USAGE)
        return EXIT_USAGE
    if argv[0] in ("-h", "--help"):
        _say(USAGE)
        return EXIT_OK
    event = argv[0]
    if event not in EVENT_NAMES:
        log(f"refused: unknown event {ascii(event)[:80]}", home)
        _say(f"microsip-bridge-hook: unknown event {ascii(event)[:80]}\n{USAGE}")
        return EXIT_USAGE
    number = join_number(argv[1:])
    if len(number) > MAX_NUMBER_CHARS:
        log(f"refused: {event} number of {len(number)} characters (max {MAX_NUMBER_CHARS})", home)
        return EXIT_USAGE
    if "\x00" in number:  # impossible from argv; possible from run() called by hand
        log(f"refused: {event} number holds a NUL character", home)
        return EXIT_USAGE
    record = make_record(event, number)
    try:
        deliver(record, home)
    except (OSError, ValueError) as exc:
        log(f"could not spool {event} {record['id']}: {exc}", home)
        return EXIT_FAILED
    return EXIT_OK


def _watchdog(started: float) -> None:
    # Runs in its own thread: ends the process at RUN_DEADLINE whatever the main thread is
    # stuck in. A second timer ends it even if writing the log line hangs too.
    import _thread

    time.sleep(max(started + RUN_DEADLINE - 0.15 - time.monotonic(), 0.0))
    _thread.start_new_thread(_exit_after, (0.1,))
    log(f"gave up after {RUN_DEADLINE - 0.15:.2f} s: argv {ascii(sys.argv[1:])[:200]}")
    os._exit(EXIT_FAILED)


def _exit_after(delay: float) -> None:
    time.sleep(delay)
    os._exit(EXIT_FAILED)


def main() -> None:
    """Entry point of ``microsip-bridge-hook`` (a GUI script: no console on Windows)."""
    import _thread

    _thread.start_new_thread(_watchdog, (time.monotonic(),))
    try:
        code = run(sys.argv[1:])
    except Exception as exc:  # the hook must never crash in MicroSIP's face
        log(f"internal error: {exc!r}")
        code = EXIT_FAILED
    sys.exit(code)


if __name__ == "__main__":
    main()
