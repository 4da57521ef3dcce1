"""The hook that MicroSIP runs on every call event: standard library only, fast, never fails loudly.

MicroSIP runs ``microsip-bridge-hook EVENT NUMBER`` and *waits* for it (up to 10 s, on its SIP
thread for incoming calls, facts §2.3), so this module never starts a shell and exits as soon as
the event is safe:

1. If the daemon has left its address in ``<home>/daemon.json``, the event is POSTed to it over
   loopback with the token from ``<home>/token`` (HTTP/1.1 written by hand on a raw socket;
   :data:`CONNECT_TIMEOUT` to connect, :data:`POST_DEADLINE` for the whole exchange, less when
   the run has used up its time: see below). The daemon answers 202 only once the event is
   committed, so a 2xx means done.
2. Otherwise (no daemon, damaged files, refused, slow, 401, 5xx, a bug...) the event is
   appended as one JSON line to ``<home>/spool.jsonl`` with an fsync, for the daemon to ingest.
   A duplicate of a POST that did arrive is harmless: the record's ``id`` makes ingestion
   idempotent; a loss is not, so nothing that can wait (the log line) comes before the spool.
3. A watchdog thread acts :data:`WATCHDOG_AT` seconds into the run: it spools the event itself
   if the main thread has not made it safe (stuck in the POST, or starved of CPU), then ends
   the process, whatever is stuck. A spool write already under way gets :data:`SPOOL_GRACE`
   more before the hook gives up (a hung disk).

**Time.** The run's clock starts when this module is imported; the interpreter's start-up comes
before that and, with a hundred hooks on two cores, takes hundreds of ms by itself. So the POST
gets only what is left before :data:`WATCHDOG_AT` minus :data:`SPOOL_RESERVE` (the spool's
share), and none at all below 50 ms.

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

import _thread
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
    mask_number,
    parse_json,
    spool,
)

# typing costs ~9 ms to import; mypy honours a module-level TYPE_CHECKING = False as well.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import NoReturn

# The run's clock (see the docstring): every deadline below counts from here.
_STARTED = time.monotonic()

# Loopback connects in microseconds; 0.2 s only passes when the machine is swamped.
CONNECT_TIMEOUT = 0.2
# Connect, send, and the daemon's durable commit, all together.
POST_DEADLINE = 0.5
# The whole run, unless a spool write is under way: MicroSIP's SIP thread waits for us (facts
# §2.3). The watchdog acts a little before, to leave time for its own spool write and exit.
RUN_DEADLINE = 1.0
WATCHDOG_AT = RUN_DEADLINE - 0.15
# The POST ends this long before WATCHDOG_AT: an fsync'd append takes milliseconds, but a hook
# among a hundred on two cores can wait that long for the CPU.
SPOOL_RESERVE = 0.3
# How long the watchdog lets a spool write under way finish (a slow or hung disk) before the
# hook gives up: MicroSIP waits up to 10 s (facts §2.3), and a lost event is worse.
SPOOL_GRACE = 1.0
# Less time than this left for the POST: the event goes straight to the spool.
_MIN_POST = 0.05
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
    The log is cut to one old generation (``hook.log.1``) past :data:`MAX_LOG_BYTES`. Numbers
    in ``message`` are masked (wire.mask_number) unless the daemon's mask_numbers is off."""
    try:
        base = home_dir() if home is None else os.fspath(home)
        if _masking(base):
            message = mask_number(message)
        folder = os.path.join(base, "logs")
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


def _masking(folder: str) -> bool:
    # The daemon publishes its mask_numbers setting in daemon.json; no daemon (or a damaged
    # file) means the default, on. Read only when a line is logged: the hot path never logs.
    text = _read_small(os.path.join(folder, DAEMON_FILE))
    if not text or '"mask_numbers"' not in text:
        return True
    try:
        info = parse_json(text)
    except (ValueError, RecursionError):
        return True
    return not (isinstance(info, dict) and info.get("mask_numbers") is False)


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
    ``None`` when there is no daemon (or its files are missing or damaged: the caller spools),
    with a log line when they are damaged."""
    folder = home_dir() if home is None else os.fspath(home)
    address, note = _find_daemon(folder)
    if note is not None:
        log(note, folder)
    return address


def _find_daemon(folder: str) -> tuple[tuple[str, int, str] | None, str | None]:
    # The address, or None and what is worth a log line (the caller logs it after spooling).
    text = _read_small(os.path.join(folder, DAEMON_FILE))
    if text is None:
        return None, None
    try:
        info = parse_json(text)
    except (ValueError, RecursionError):
        return None, f"ignored a damaged {DAEMON_FILE}"
    if not isinstance(info, dict):
        return None, f"ignored a damaged {DAEMON_FILE}"
    host, port = info.get("host"), info.get("port")
    if not isinstance(host, str) or type(port) is not int or not 0 < port < 65536:
        return None, f"ignored {DAEMON_FILE}: no host and port in it"
    if not _ip_address(host):
        return None, f"ignored {DAEMON_FILE}: its host {ascii(host)[:80]} is not an IP address"
    token = (_read_small(os.path.join(folder, TOKEN_NAME)) or "").strip()
    if not _token_ok(token):
        return None, f"no usable token in {os.path.join(folder, TOKEN_NAME)}"
    return (host, port, token), None


def _ip_address(host: str) -> bool:
    # The daemon writes the address it bound. A name would be looked up, and a lookup has no
    # timeout of ours (nor would a NUL or non-ASCII host reach the socket as an OSError).
    try:
        import _socket as sock
    except ImportError:  # pragma: no cover - CPython always has _socket
        import socket as sock  # type: ignore[no-redef]
    for family in (sock.AF_INET, sock.AF_INET6):
        try:
            sock.inet_pton(family, host)
        except (OSError, ValueError):
            continue
        return True
    return False


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
        conn.settimeout(max(min(connect_timeout, deadline), 0.001))
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

    ``deadline`` bounds the POST, in seconds (below 50 ms the daemon is not tried). Whatever goes
    wrong on the way to the daemon only sends the event to the spool, and the spool is written
    before anything is logged. Raises OSError only when the spool cannot be written either."""
    folder = home_dir() if home is None else os.fspath(home)
    line = encode_record(record)
    _in_flight.hold(record, folder)
    event = record.get("event")
    try:
        posted, note = _try_daemon(line, event, folder, connect_timeout, deadline)
    except Exception as exc:  # a bug on the way to the daemon costs a log line, not the event
        posted, note = False, f"internal error reaching the daemon with {event}: {exc!r}"
    if posted:
        _in_flight.safe = True
        return "posted"
    with _in_flight.lock:
        spool(record, folder)
        _in_flight.safe = True
    if note == _UNANSWERED:
        # A daemon killed hard leaves daemon.json behind; then a refused connect is no news.
        note = f"daemon did not answer {event} in time" if _daemon_alive(folder) else None
    if note is not None:
        log(f"{note}; spooled it", folder)
    return "spooled"


# The daemon did not answer: worth a log line only if it is still alive.
_UNANSWERED = "unanswered"


def _try_daemon(
    line: str, event: object, folder: str, connect_timeout: float, deadline: float
) -> tuple[bool, str | None]:
    # (True, None) when the daemon took the event; else (False, what is worth a log line).
    address, note = _find_daemon(folder)
    if address is None:
        return False, note
    if deadline < _MIN_POST:
        return False, f"no time left to try the daemon with {event} ({deadline:.2f} s)"
    status = post(address, line.encode("ascii"), connect_timeout=connect_timeout, deadline=deadline)
    if status is not None and 200 <= status < 300:
        return True, None
    if status is not None:
        # A refused connection is the normal "daemon stopped"; an HTTP error is worth a line.
        return False, f"daemon answered {status} to {event}"
    return False, _UNANSWERED


class _InFlight:
    """The event of this run, shared by the main thread and the watchdog: whoever spools it
    holds ``lock``; ``safe`` once it is posted or spooled."""

    def __init__(self) -> None:
        self.lock = _thread.allocate_lock()
        self.record: Mapping[str, object] | None = None
        self.folder = ""
        self.safe = False

    def hold(self, record: Mapping[str, object], folder: str) -> None:
        self.record, self.folder, self.safe = record, folder, False


_in_flight = _InFlight()


if sys.platform == "win32":

    def _daemon_alive(folder: str) -> bool:
        # No harmless probe there (os.kill terminates the process): assume it is, and log.
        return True

else:

    def _daemon_alive(folder: str) -> bool:
        text = _read_small(os.path.join(folder, DAEMON_FILE))
        try:
            info = parse_json(text) if text else None
        except (ValueError, RecursionError):
            return False
        pid = info.get("pid") if isinstance(info, dict) else None
        # A pid past the C int is no process (os.kill would raise OverflowError).
        if type(pid) is not int or not 0 < pid < 2**31:
            return False
        try:
            os.kill(pid, 0)
        except (ProcessLookupError, OverflowError):
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


def run(
    argv: list[str], home: str | os.PathLike[str] | None = None, *, started: float | None = None
) -> int:
    """Handle one invocation (``argv`` without the program); returns the exit code.

    ``started`` is when the run's clock started (``time.monotonic()``; default: now): the POST
    gets what is left of :data:`WATCHDOG_AT` after :data:`SPOOL_RESERVE`, at most
    :data:`POST_DEADLINE`."""
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
    now = time.monotonic()
    left = (now if started is None else started) + WATCHDOG_AT - SPOOL_RESERVE - now
    try:
        deliver(record, home, deadline=min(POST_DEADLINE, left))
    except (OSError, ValueError) as exc:
        log(f"could not spool {event} {record['id']}: {exc}", home)
        return EXIT_FAILED
    return EXIT_OK


def _watchdog() -> None:
    # Runs in its own thread: at WATCHDOG_AT it makes the event safe if the main thread has
    # not (stuck in the POST, starved, or not yet past making the record), then ends the
    # process whatever the main thread is stuck in. The spool lock held means the main thread
    # is writing the spool: that write gets SPOOL_GRACE to finish.
    time.sleep(max(_STARTED + WATCHDOG_AT - time.monotonic(), 0.0))
    give_up = time.monotonic() + SPOOL_GRACE
    while _in_flight.record is None and time.monotonic() < give_up:
        time.sleep(0.01)
    record = _in_flight.record
    if record is not None and _in_flight.lock.acquire(timeout=max(give_up - time.monotonic(), 0)):
        if _in_flight.safe:
            os._exit(EXIT_OK)  # done; the main thread is stuck after it (in the log, say)
        event, uid = record.get("event"), record.get("id")
        try:
            spool(record, _in_flight.folder)
        except (OSError, ValueError) as exc:
            _last_words(f"could not spool {event} {uid}: {exc}", EXIT_FAILED)
        took = time.monotonic() - _STARTED
        _last_words(f"spooled {event} {uid} at the deadline ({took:.2f} s): too slow", EXIT_OK)
    took = time.monotonic() - _STARTED
    _last_words(f"gave up after {took:.2f} s: argv {ascii(sys.argv[1:])[:200]}", EXIT_FAILED)


def _last_words(message: str, code: int) -> NoReturn:
    # Log and end the process; a second timer ends it even if writing the log line hangs.
    _thread.start_new_thread(_exit_after, (0.1, code))
    log(message)
    os._exit(code)


def _exit_after(delay: float, code: int) -> NoReturn:
    time.sleep(delay)
    os._exit(code)


def main() -> None:
    """Entry point of ``microsip-bridge-hook`` (a GUI script: no console on Windows)."""
    _thread.start_new_thread(_watchdog, ())
    try:
        code = run(sys.argv[1:], started=_STARTED)
    except Exception as exc:  # the hook must never crash in MicroSIP's face
        log(f"internal error: {exc!r}")
        code = EXIT_FAILED
    sys.exit(code)


if __name__ == "__main__":
    main()
