"""The hook that MicroSIP runs on every call event: standard library only, fast, never fails loudly.

MicroSIP runs ``microsip-bridge-hook EVENT NUMBER`` and *waits* for it (up to 10 s, on its SIP
thread for incoming calls, facts §2.3), so this module imports nothing but the standard library,
never starts a shell, and exits as soon as the event is safe. The event names live here, once, and
the rest of the package imports them from this module.

The event is appended as one JSON line to the spool file in the bridge's home, with an fsync, for
the daemon to ingest. Failures go to a log file: under pythonw there is no console.
"""

from __future__ import annotations

import enum
import json
import os
import sys
import time
import uuid
from pathlib import Path

HOME_ENV = "MICROSIP_BRIDGE_HOME"
SPOOL_NAME = "spool.jsonl"
LOG_NAME = "hook.log"
# MicroSIP passes the user part of a SIP URI (facts §2.4); anything longer than this is not a
# phone number but an attack or a bug, and is refused rather than stored.
MAX_NUMBER_CHARS = 1024
SPOOL_VERSION = 1


class Event(enum.StrEnum):
    """The eight call events MicroSIP can report, one per ``cmd*`` key (facts §2.1, §2.2)."""

    OUTGOING = "outgoing"
    INCOMING = "incoming"
    RING = "ring"
    ANSWER = "answer"
    ANSWER_VIDEO = "answer-video"
    START = "start"
    BUSY = "busy"
    END = "end"


def bridge_home() -> Path:
    """The folder of the bridge's config, data, spool and logs.

    ``MICROSIP_BRIDGE_HOME`` wins; otherwise ``%LOCALAPPDATA%\\microsip-bridge`` on Windows (it
    holds a database, which must not roam) and ``$XDG_DATA_HOME/microsip-bridge`` elsewhere.
    """
    override = os.environ.get(HOME_ENV)
    if override:
        return Path(override)
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or str(Path.home() / "AppData" / "Local")
    else:
        base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "microsip-bridge"


def join_number(parts: list[str]) -> str:
    """Re-join the number that MicroSIP appended unquoted and CommandLineToArgvW split at spaces.

    Runs of spaces collapse to one in the split; that cannot be undone, and SIP user parts do
    not contain spaces unescaped anyway.
    """
    return " ".join(parts)


def make_record(event: Event, number: str, *, now: float | None = None) -> dict[str, object]:
    """The spool record of one event: its id makes ingestion idempotent."""
    return {
        "v": SPOOL_VERSION,
        "id": uuid.uuid4().hex,
        "event": event.value,
        "number": number,
        "ts": time.time() if now is None else now,
        "pid": os.getpid(),
    }


def append_line(path: Path, line: str) -> None:
    """Append one line durably. One ``write`` on an O_APPEND descriptor keeps concurrent hooks'
    lines whole; the fsync keeps the line when the machine dies right after we exit."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = (line + "\n").encode("utf-8", "surrogateescape")
    flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_BINARY", 0)
    fd = os.open(path, flags, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def spool(record: dict[str, object], home: Path | None = None) -> Path:
    """Write the record to the spool; returns the spool's path."""
    path = (home or bridge_home()) / SPOOL_NAME
    # ensure_ascii: numbers from the network may hold lone surrogates (bytes that were not
    # UTF-8); escaped, they survive the file and the JSON parser on the other side.
    append_line(path, json.dumps(record, ensure_ascii=True, separators=(",", ":")))
    return path


def log(message: str, home: Path | None = None) -> None:
    """Best effort: the hook has no console under pythonw, and must never fail because of a log."""
    try:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        append_line(
            (home or bridge_home()) / "logs" / LOG_NAME, f"{stamp} pid={os.getpid()} {message}"
        )
    except OSError:
        pass


USAGE = "usage: microsip-bridge-hook EVENT [NUMBER...]   EVENT: " + ", ".join(
    e.value for e in Event
)


def run(argv: list[str]) -> int:
    """Handle one invocation; returns the exit code (MicroSIP ignores it, people do not)."""
    if not argv or argv[0] in ("-h", "--help"):
        if sys.stderr is not None:
            print(USAGE, file=sys.stderr)
        return 0 if argv else 2
    try:
        event = Event(argv[0])
    except ValueError:
        log(f"refused: unknown event {argv[0]!r}")
        if sys.stderr is not None:
            print(f"microsip-bridge-hook: unknown event {argv[0]!r}\n{USAGE}", file=sys.stderr)
        return 2
    number = join_number(argv[1:])
    if len(number) > MAX_NUMBER_CHARS:
        log(f"refused: {event.value} number of {len(number)} characters (max {MAX_NUMBER_CHARS})")
        return 2
    try:
        spool(make_record(event, number))
    except OSError as exc:
        log(f"could not spool {event.value}: {exc}")
        return 1
    return 0


def main() -> None:
    """Entry point of ``microsip-bridge-hook`` (a GUI script: no console on Windows)."""
    try:
        code = run(sys.argv[1:])
    except Exception as exc:  # the hook must never crash in MicroSIP's face
        log(f"internal error: {exc!r}")
        code = 1
    sys.exit(code)


if __name__ == "__main__":
    main()
