"""The hook's wire format, shared by the hook and the daemon: stdlib only, cheap to import.

What the hook (``microsip_bridge.hook``) and the daemon must agree on lives here, once: the bridge's
home folder and the names of the files in it, the eight event names (facts §2.1), the record the
hook sends or spools and its limits, the spool's append-and-lock protocol, and a JSON reader that
needs no ``json`` import. The daemon's :class:`microsip_bridge.model.EventRecord` validates records
with :func:`check_record`, and the ingestion endpoint's JSON schema is :func:`record_schema`.

**Import cost.** The hook imports this module on every call event, while MicroSIP waits, so it
imports nothing at module level that the interpreter has not loaded already (``re``, ``json``,
``pathlib``, ``enum`` and ``typing`` each cost 5-13 ms): ``_json`` for quoting and scanning,
``os``/``sys``/``time``, and ``fcntl`` only when a spool line is written.
"""

from __future__ import annotations

import os
import sys
import time

# typing costs ~9 ms to import; mypy honours a module-level TYPE_CHECKING = False as well.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

HOME_ENV = "MICROSIP_BRIDGE_HOME"
SPOOL_NAME = "spool.jsonl"
LOG_NAME = "hook.log"
DAEMON_FILE = "daemon.json"
TOKEN_NAME = "token"  # noqa: S105 - the token file's name, not a token
HOOK_EVENTS_PATH = "/api/v1/hook-events"
# The names of the eight events, in the order of facts §2.1; microsip_bridge.model.Event is
# built on them.
EVENT_NAMES: tuple[str, ...] = (
    "outgoing",
    "incoming",
    "ring",
    "answer",
    "answer-video",
    "start",
    "busy",
    "end",
)
# MicroSIP passes the user part of a SIP URI (facts §2.4); anything longer than this is not a
# phone number but an attack or a bug, and is refused rather than stored.
MAX_NUMBER_CHARS = 1024
SPOOL_VERSION = 1
# How every record begins (make_record puts "v" first); quotes inside values are escaped, so it
# can only start a record: the spool reader splits a damaged line at it to recover the records
# that a torn write ran together.
RECORD_MARK = '{"v":'
# `pythonw -I -c<this> EVENT` runs the hook with nothing else imported (see the docstring).
INLINE_CODE = "__import__('microsip_bridge.hook').hook.main()"

try:
    from _json import encode_basestring_ascii as _quote
except ImportError:  # pragma: no cover - CPython always has _json
    from json.encoder import py_encode_basestring_ascii as _quote


def home_dir() -> str:
    """The bridge's home as text (what :func:`bridge_home` returns, without ``pathlib``)."""
    override = os.environ.get(HOME_ENV)
    if override:
        return override
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or os.path.join(
            os.path.expanduser("~"), "AppData", "Local"
        )
    else:
        base = os.environ.get("XDG_DATA_HOME") or os.path.join(
            os.path.expanduser("~"), ".local", "share"
        )
    return os.path.join(base, "microsip-bridge")


def bridge_home() -> Path:
    """The folder of the bridge's config, data, spool and logs.

    ``MICROSIP_BRIDGE_HOME`` wins; otherwise ``%LOCALAPPDATA%\\microsip-bridge`` on Windows (it
    holds a database, which must not roam) and ``$XDG_DATA_HOME/microsip-bridge`` elsewhere.
    """
    from pathlib import Path

    return Path(home_dir())


def new_uid() -> str:
    """A random uuid4 as 32 hex digits (``uuid`` itself costs 10 ms to import)."""
    raw = bytearray(os.urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40  # version 4
    raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122 variant
    return raw.hex()


def make_record(event: str, number: str, *, now: float | None = None) -> dict[str, object]:
    """The spool record of one event (``event`` is an ``Event`` or its name): its id makes
    ingestion idempotent."""
    return {
        "v": SPOOL_VERSION,
        "id": new_uid(),
        "event": str(event),
        "number": number,
        "ts": time.time() if now is None else now,
        "pid": os.getpid(),
    }


def encode_record(record: Mapping[str, object]) -> str:
    """``json.dumps(record, ensure_ascii=True, separators=(",", ":"))`` for a flat record of
    text, numbers, booleans and nulls, without importing :mod:`json`. ASCII-only: numbers from
    the network may hold lone surrogates (bytes that were not UTF-8); escaped, they survive the
    file and the JSON parser on the other side. Raises ValueError for anything else."""
    items = []
    for key, value in record.items():
        if value is None:
            text = "null"
        elif value is True or value is False:
            text = "true" if value else "false"
        elif type(value) is int:
            text = int.__repr__(value)
        elif type(value) is float:
            if value != value or value in (float("inf"), float("-inf")):
                raise ValueError(f"{key} is {value!r}, which JSON cannot hold")
            text = float.__repr__(value)
        elif type(value) is str:
            text = _quote(value)
        else:
            raise ValueError(f"{key} is a {type(value).__name__}, not text or a number")
        items.append(_quote(key) + ":" + text)
    return "{" + ",".join(items) + "}"


def _same_file(fd: int, path: str) -> bool:
    try:
        there = os.stat(path)
    except OSError:
        return False
    here = os.fstat(fd)
    return (here.st_ino, here.st_dev) == (there.st_ino, there.st_dev)


def _write_line(fd: int, data: bytes) -> None:
    # One write on an O_APPEND descriptor keeps concurrent hooks' lines whole.
    written = os.write(fd, data)
    if written != len(data):
        # A full disk took half the line. Cutting it off again (ftruncate) could cut a line
        # another writer appended meanwhile, so end it instead: the reader rejects a fragment
        # on a line of its own. When even that byte does not fit, the next writer ends it.
        if written:
            try:  # noqa: SIM105 - contextlib would cost the hook 3 ms of imports
                os.write(fd, b"\n")
            except OSError:
                pass
        raise OSError(f"short write: {written} of {len(data)} bytes")
    os.fsync(fd)


def _ends_a_line(fd: int) -> bool:
    # Whether the file is empty or its last byte ends a line (a torn write leaves neither).
    size = os.fstat(fd).st_size
    if size == 0:
        return True
    os.lseek(fd, size - 1, os.SEEK_SET)  # O_APPEND writes go to the end wherever this points
    return os.read(fd, 1) == b"\n"


_APPEND = os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_BINARY", 0)
# The spool's last byte is read too (append_spool_line).
_APPEND_READ = os.O_RDWR | os.O_CREAT | os.O_APPEND | getattr(os, "O_BINARY", 0)


def append_line(path: str | os.PathLike[str], line: str) -> None:
    """Append one line durably: one ``write`` (whole lines even with writers at once), fsync'd
    (the line survives the machine dying right after we exit)."""
    os.makedirs(os.path.dirname(os.fspath(path)) or ".", exist_ok=True)
    fd = os.open(path, _APPEND, 0o600)
    try:
        _write_line(fd, (line + "\n").encode("utf-8", "surrogateescape"))
    finally:
        os.close(fd)


def append_spool_line(path: str | os.PathLike[str], line: str, *, timeout: float = 0.5) -> None:
    """Append one line to the spool without racing the daemon's claim of it.

    The daemon claims the spool by renaming it (calls/spool.py) and then takes an exclusive
    ``flock`` on it before reading. A hook takes a shared ``flock`` and checks that the path
    still names the file it opened: if the daemon renamed it in between, the hook writes to a
    fresh ``spool.jsonl`` instead; if the daemon already holds its lock, the file was claimed and
    the hook retries with the new name. So every line lands either in a file the daemon has not
    read yet or before its exclusive lock. On Windows a file another process holds open cannot
    be renamed at all, so the daemon's rename itself waits for writers and no lock is needed.

    When the file does not end a line (a write torn by a full disk), the line starts with a
    newline of its own, so the fragment cannot swallow it.
    """
    target = os.fspath(path)
    os.makedirs(os.path.dirname(target) or ".", exist_ok=True)
    data = (line + "\n").encode("utf-8", "surrogateescape")
    give_up = time.monotonic() + timeout
    while True:
        fd = os.open(target, _APPEND_READ, 0o600)
        try:
            if _lock_shared(fd) and _same_file(fd, target):
                _write_line(fd, data if _ends_a_line(fd) else b"\n" + data)
                return
        finally:
            os.close(fd)  # also drops the lock
        if time.monotonic() > give_up:
            raise OSError(f"the spool stayed claimed for {timeout} s: {target}")
        time.sleep(0.001)


if sys.platform == "win32":

    def _lock_shared(fd: int) -> bool:
        return True

else:

    def _lock_shared(fd: int) -> bool:
        import fcntl

        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return False  # the daemon holds it: it has claimed (renamed) this file
        return True


def spool(record: Mapping[str, object], home: str | os.PathLike[str] | None = None) -> str:
    """Write the record to the spool; returns the spool's path."""
    path = os.path.join(home_dir() if home is None else os.fspath(home), SPOOL_NAME)
    append_spool_line(path, encode_record(record))
    return path


class _ScanContext:
    # What _json.make_scanner reads from json.JSONDecoder, for a strict JSON parse without
    # importing json (and re).
    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int

    @staticmethod
    def parse_constant(name: str) -> object:
        raise ValueError(f"{name} is not JSON")


def parse_json(text: str) -> object:
    """Strict JSON (no NaN) without importing :mod:`json`; ValueError when it is not JSON."""
    try:
        from _json import make_scanner
    except ImportError:  # pragma: no cover - CPython always has _json
        import json

        return json.loads(text)
    scan = make_scanner(_ScanContext())  # type: ignore[arg-type]
    start = len(text) - len(text.lstrip(" \t\r\n"))
    try:
        value, end = scan(text, start)
    except StopIteration:
        raise ValueError("not JSON") from None
    except SystemError:
        # Most syntax errors are raised as json.decoder.JSONDecodeError, which Python 3.11's
        # scanner finds only when json is loaded (3.12 imports it); without json it fails
        # like this. Nothing else in the scanner raises SystemError.
        raise ValueError("not JSON") from None
    if text[end:].strip(" \t\r\n"):
        raise ValueError("extra data after the JSON value")
    return value


# --- the record --------------------------------------------------------------------------------

# Characters of an event id: the hook writes uuid4().hex (32); the store's uid column holds 64.
UID_CHARS = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_.:-")
MAX_UID_CHARS = 64
# Event times are Unix seconds from the hook's clock; beyond this they are not times but damage.
MAX_TS = 1e11

# The record's fields, once: (name, JSON type, description). check_record() and record_schema()
# are both built on this table, and make_record() writes exactly these keys.
RECORD_FIELDS: tuple[tuple[str, str, str], ...] = (
    ("v", "integer", f"record version, {SPOOL_VERSION}"),
    (
        "id",
        "string",
        f"the event's id: 1-{MAX_UID_CHARS} of [0-9A-Za-z_.:-]; makes ingestion idempotent",
    ),
    ("event", "string", "one of " + ", ".join(EVENT_NAMES)),
    (
        "number",
        "string",
        f"MicroSIP's text verbatim, at most {MAX_NUMBER_CHARS} characters, no NUL",
    ),
    ("ts", "number", "when the hook fired, Unix seconds"),
    ("pid", "integer", "the hook's process id (may be null)"),
)
REQUIRED_FIELDS = ("id", "event", "ts")


class RecordError(ValueError):
    """A record that is not of the wire format; ``uid`` is its id when that id is well formed."""

    def __init__(self, message: str, uid: str | None = None) -> None:
        super().__init__(message)
        self.uid = uid


def _uid_ok(uid: object) -> bool:
    return (
        isinstance(uid, str) and 0 < len(uid) <= MAX_UID_CHARS and all(c in UID_CHARS for c in uid)
    )


def check_record(record: object) -> tuple[str, str, str, float, int | None]:
    """Validate a record of the wire format; returns ``(id, event, number, ts, pid)``.

    Unknown extra keys are ignored (a newer hook may add some); ``v`` must be
    :data:`SPOOL_VERSION` when given, ``number`` defaults to empty. Raises :class:`RecordError`.
    """
    if not isinstance(record, dict):
        raise RecordError(f"event record must be a JSON object, not {type(record).__name__}")
    raw_uid = record.get("id")
    uid = raw_uid if _uid_ok(raw_uid) else None
    version = record.get("v", SPOOL_VERSION)
    if type(version) is not int or version != SPOOL_VERSION:
        raise RecordError(f"unsupported event record version {version!r}", uid)
    if uid is None:
        shown = repr(raw_uid)[:80]
        raise RecordError(
            f"event id must be 1-{MAX_UID_CHARS} characters of [0-9A-Za-z_.:-], not {shown}"
        )
    event = record.get("event")
    if not isinstance(event, str) or event not in EVENT_NAMES:
        known = ", ".join(EVENT_NAMES)
        raise RecordError(f"unknown event {repr(event)[:80]}; expected one of {known}", uid)
    number = record.get("number", "")
    if not isinstance(number, str):
        raise RecordError(f"event number must be text, not {type(number).__name__}", uid)
    if len(number) > MAX_NUMBER_CHARS:
        raise RecordError(
            f"event number has {len(number)} characters (max {MAX_NUMBER_CHARS})", uid
        )
    if "\x00" in number:
        # No SIP user part and no argv item can hold NUL; PostgreSQL text cannot either.
        raise RecordError("event number holds a NUL character", uid)
    ts = record.get("ts")
    if type(ts) not in (int, float) or not 0 <= ts < MAX_TS:  # type: ignore[operator]
        raise RecordError(f"event ts must be Unix seconds, not {repr(ts)[:80]}", uid)
    pid = record.get("pid")
    if pid is not None and (type(pid) is not int or pid < 0):
        raise RecordError(f"event pid must be a whole number, not {repr(pid)[:80]}", uid)
    return uid, event, number, float(ts), pid  # type: ignore[arg-type]


def record_schema() -> dict[str, object]:
    """The record as a JSON schema (the ingestion endpoint's OpenAPI body), from
    :data:`RECORD_FIELDS`."""
    props: dict[str, object] = {}
    for name, kind, description in RECORD_FIELDS:
        prop: dict[str, object] = {"type": kind, "description": description}
        if name == "v":
            prop["enum"] = [SPOOL_VERSION]
        elif name == "id":
            prop.update(minLength=1, maxLength=MAX_UID_CHARS, pattern="^[0-9A-Za-z_.:-]+$")
        elif name == "event":
            prop["enum"] = list(EVENT_NAMES)
        elif name == "number":
            prop["maxLength"] = MAX_NUMBER_CHARS
        elif name == "ts":
            prop.update(minimum=0, exclusiveMaximum=MAX_TS)
        elif name == "pid":
            prop = {"type": ["integer", "null"], "minimum": 0, "description": description}
        props[name] = prop
    return {
        "type": "object",
        "required": list(REQUIRED_FIELDS),
        "properties": props,
    }


# --- masking numbers in logs (the mask_numbers setting) ------------------------------------------

# What a masked digit becomes: ASCII, so a log line stays writable to any console encoding.
MASK_CHAR = "x"
# A run of fewer digits is left alone: internal extensions (101, 2345) name a desk, not a
# caller, and counts, ports and years in log lines stay readable.
MASK_MIN_DIGITS = 5
# A run followed by one of these words is a quantity, not a phone number ("10000 characters").
_UNITS = ("characters", "bytes", "KiB", "MiB", "ms", "s", "seconds")
# Characters that may sit between the digits of one phone number (+44 (20) 7946-0958); a dot
# does not, so IP addresses and versions stay as they are.
_JOINERS = " -()/"


def _masked_run(run: str) -> str:
    # Keep the last 3 digits of a long number (8 or more digits), the last 2 of a shorter one.
    digits = sum(c.isdigit() for c in run)
    keep = 3 if digits >= 8 else 2
    out = []
    for char in reversed(run):
        if char.isdigit():
            if keep > 0:
                keep -= 1
                out.append(char)
            else:
                out.append(MASK_CHAR)
        else:
            out.append(char)
    return "".join(reversed(out))


def _quantity(text: str, end: int) -> bool:
    # " <unit>" then the end of the word.
    if not text.startswith(" ", end):
        return False
    for unit in _UNITS:
        stop = end + 1 + len(unit)
        if text.startswith(unit, end + 1) and (stop == len(text) or not text[stop].isalnum()):
            return True
    return False


def _is_iso_date(run: str) -> bool:
    # 2026-12-06: a date in a log line, not a caller.
    return (
        len(run) == 10
        and run[4] == "-"
        and run[7] == "-"
        and (run[:4] + run[5:7] + run[8:]).isdigit()
    )


def mask_number(text: str) -> str:
    """``text`` with every phone number in it masked, for a log line.

    Each run of at least :data:`MASK_MIN_DIGITS` digits (spaces, ``-``, ``/`` and brackets may
    join them, a ``+`` may lead) keeps its ``+``, its separators and its last 2 digits (3 from 8
    digits on); every other digit becomes :data:`MASK_CHAR`: ``+44 20 7946 0958`` ->
    ``+xx xx xxxx x958``. Digits that touch a letter or ``_`` (ids, hex) are no number; ISO
    dates, the port of an IP address (``127.0.0.1:55432``) and quantities (``10000 bytes``) are
    kept. A SIP user name with a letter in it keeps its first character: ``sip:alice@pbx`` ->
    ``sip:a****@pbx``. Never raises; masking a masked text changes nothing.
    """
    if not isinstance(text, str):  # a caller without type checks (a log argument)
        return ""  # type: ignore[unreachable]
    return _mask_users(_mask_digits(text)) if "@" in text else _mask_digits(text)


def _mask_digits(text: str) -> str:
    out: list[str] = []
    i, n = 0, len(text)
    done = 0  # text[:done] is in out
    while i < n:
        char = text[i]
        if not (char.isdigit() or (char == "+" and i + 1 < n and text[i + 1].isdigit())):
            i += 1
            continue
        start, j = i, i + 1
        end = j if char.isdigit() else i  # just past the run's last digit
        while j < n:
            c = text[j]
            if c.isdigit():
                j += 1
                end = j
            elif c in _JOINERS and j + 1 < n and (text[j + 1].isdigit() or text[j + 1] in "( "):
                j += 1
            else:
                break
        end = max(end, start + 1)
        run = text[start:end]
        before = text[start - 1] if start else " "
        if before in "Bb" and text[max(start - 3, 0) : start - 1] == "%2":
            before = "+"  # a URL-encoded "+" (a CRM URL with the number in its query)
        after = text[end] if end < n else " "
        if (
            sum(c.isdigit() for c in run) >= MASK_MIN_DIGITS
            and not (before.isalnum() or before == "_")
            and not (after.isalnum() or after == "_")
            and not _is_iso_date(run)
            and not _quantity(text, end)
            and not (
                before == ":"
                and start > 1
                and (text[start - 2].isdigit() or text[start - 2] == "]")
            )
        ):
            out.append(text[done:start])
            out.append(_masked_run(run))
            done = end
        elif before.isalnum() or before == "_":
            # Inside a word (an id): skip the whole word, or its tail would look like a number.
            while end < n and (text[end].isalnum() or text[end] == "_"):
                end += 1
        i = end
    out.append(text[done:])
    return "".join(out)


# What a SIP user name may hold besides letters and digits (RFC 3261 unreserved, roughly).
_USER_CHARS = "._-+%!~"


def _mask_users(text: str) -> str:
    out: list[str] = []
    done = 0
    at = text.find("@")
    while at != -1:
        start = at
        while start > done and (text[start - 1].isalnum() or text[start - 1] in _USER_CHARS):
            start -= 1
        user = text[start:at]
        # Only a name: a number was masked digit by digit already, and a masked name holds "*".
        if any(c.isalpha() and c != MASK_CHAR for c in user):
            out.append(text[done : start + 1])
            out.append("*" * (len(user) - 1))
            done = at
        at = text.find("@", at + 1)
    out.append(text[done:])
    return "".join(out)
