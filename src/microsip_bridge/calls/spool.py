"""Ingest the hook's spool exactly once, even when the daemon dies in the middle of it.

The hook appends one JSON line per event to ``<home>/spool.jsonl`` when it cannot hand the event
to the daemon (microsip_bridge/hook.py). The daemon empties the spool like this:

1. **Claim.** Files ``spool.<ns>.ingesting`` left by a daemon that died are taken first, oldest
   first. Then ``spool.jsonl`` is renamed (atomically) to ``spool.<ns>.ingesting``; hooks that
   come later create a new ``spool.jsonl``.
2. **Wait for writers.** A hook that opened ``spool.jsonl`` just before the rename may still be
   writing into the renamed file. Hooks write under a shared ``flock`` and check, once they hold
   it, that the path still names the file they opened (wire.append_spool_line); the daemon takes
   an exclusive ``flock`` on the claimed file before reading it. A writer that got its lock
   first finishes before the daemon reads; a writer that comes after finds the file renamed and
   writes to the new ``spool.jsonl``. Nothing is lost and no wait is guessed. (On Windows a file
   open in another process cannot be renamed, so the rename itself waits for the writers: it is
   retried until it succeeds or :data:`CLAIM_TIMEOUT` passes, and then left for the next round.)
3. **Ingest** every line, in batches handed to a callback that makes them durable (the daemon
   records them in the event log, whose unique event ids make a second ingestion of the same
   line a no-op). Damaged lines are appended to ``spool-rejected.jsonl`` with the reason, and
   logged: never lost silently, never a crash. A write torn by a full disk never costs the
   records after it: hooks end the fragment before appending (wire.append_spool_line), and
   records run together with a fragment anyway are split off it here.
4. **Delete** the claimed file, only after all of it is durable.

A daemon that dies at any point leaves either ``spool.jsonl`` or a ``.ingesting`` file, which the
next round ingests again; events already recorded are duplicates and change nothing, so each
event is stored exactly once.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from microsip_bridge.errors import BridgeError
from microsip_bridge.fileio import fsync_dir
from microsip_bridge.model import EventRecord
from microsip_bridge.wire import RECORD_MARK, SPOOL_NAME, append_line

CLAIMED_SUFFIX = ".ingesting"
REJECTED_NAME = "spool-rejected.jsonl"
# A hook's line is about 150 bytes, 6 KiB with the longest number fully escaped.
MAX_LINE_BYTES = 64 * 1024
# How long a claim may wait for hooks still writing (they hold the file well under a second).
CLAIM_TIMEOUT = 2.0
DEFAULT_BATCH = 500

_MARK = RECORD_MARK.encode("ascii")

logger = logging.getLogger("microsip_bridge.spool")

Handler = Callable[[Sequence[EventRecord]], object]


@dataclass(slots=True)
class SpoolReport:
    """What one round of spool ingestion did."""

    files: int = 0  # claimed files ingested and deleted
    events: int = 0  # lines handed to the handler
    rejected: int = 0  # damaged lines moved to spool-rejected.jsonl
    busy: list[str] = field(default_factory=list)  # files left for the next round (still held)


@dataclass(frozen=True, slots=True)
class Rejected:
    """A spool line that is not an event, and why."""

    line: int
    reason: str
    text: str


def claimed_files(home: Path) -> list[Path]:
    """The spool files claimed by an earlier round and not finished (oldest first)."""
    found = [p for p in home.glob(f"spool.*{CLAIMED_SUFFIX}") if p.is_file()]
    return sorted(found, key=_claim_order)


def _claim_order(path: Path) -> tuple[int, str]:
    stamp = path.name[len("spool.") : -len(CLAIMED_SUFFIX)]
    return (int(stamp) if stamp.isdigit() else 0, path.name)


def claim(home: Path, *, timeout: float = CLAIM_TIMEOUT) -> Path | None:
    """Rename ``spool.jsonl`` to a fresh ``spool.<ns>.ingesting``; None if there is no spool (or,
    on Windows, hooks kept it open for ``timeout`` seconds)."""
    source = home / SPOOL_NAME
    give_up = time.monotonic() + timeout
    while True:
        target = home / f"spool.{time.time_ns()}{CLAIMED_SUFFIX}"
        try:
            os.rename(source, target)
        except FileNotFoundError:
            return None
        except PermissionError:
            # Windows: a hook has the file open (no FILE_SHARE_DELETE); it is done in ms.
            if time.monotonic() > give_up:
                return None
            time.sleep(0.005)
            continue
        except FileExistsError:  # two claims in one nanosecond tick (Windows clock)
            time.sleep(0.001)
            continue
        fsync_dir(home)
        return target


def ingest_spool(
    home: Path,
    handle: Handler,
    *,
    batch: int = DEFAULT_BATCH,
    timeout: float = CLAIM_TIMEOUT,
) -> SpoolReport:
    """Ingest the whole spool: leftovers from an interrupted round, then ``spool.jsonl``.

    ``handle(records)`` gets the events in batches of at most ``batch``, in file order, and must
    make them durable before it returns (if it raises, the file stays claimed and the next round
    starts it again; the error propagates). Damaged lines go to ``spool-rejected.jsonl``.
    """
    if batch < 1:
        raise BridgeError(f"spool batch must be at least 1, not {batch}")
    report = SpoolReport()
    files = claimed_files(home)
    fresh = claim(home, timeout=timeout)
    if fresh is not None:
        files.append(fresh)
    elif (home / SPOOL_NAME).exists():
        report.busy.append(SPOOL_NAME)
    for path in files:
        ingest_file(path, handle, batch=batch, timeout=timeout, report=report)
    return report


def ingest_file(
    path: Path,
    handle: Handler,
    *,
    batch: int = DEFAULT_BATCH,
    timeout: float = CLAIM_TIMEOUT,
    report: SpoolReport | None = None,
) -> SpoolReport:
    """Ingest one claimed spool file and delete it (see :func:`ingest_spool`)."""
    report = SpoolReport() if report is None else report
    try:
        fh = path.open("rb")
    except FileNotFoundError:
        return report
    with fh:
        if not _lock_exclusive(fh.fileno(), timeout):
            logger.warning("spool file %s is still being written; left for the next round", path)
            report.busy.append(path.name)
            return report
        leftover = _rejected_lines(path.parent, path.name)
        pending: list[EventRecord] = []
        rejected: list[Rejected] = []
        for item in read_lines(fh):
            if isinstance(item, Rejected):
                rejected.append(item)
                continue
            pending.append(item)
            if len(pending) >= batch:
                handle(pending)
                report.events += len(pending)
                pending = []
        if pending:
            handle(pending)
            report.events += len(pending)
        for bad in rejected:
            if bad.line not in leftover:
                reject(path.parent, path.name, bad)
        report.rejected += len(rejected)
    # Deleted once closed (Windows cannot delete an open file). No hook can write to it any
    # more: none opens it by its claimed name, and one that opened spool.jsonl before the
    # rename finds, once it has its lock, that the name is no longer this file's.
    path.unlink()
    fsync_dir(path.parent)
    report.files += 1
    return report


def purge_spool(
    home: Path,
    match: Callable[[str], bool],
    *,
    dry_run: bool = False,
    timeout: float = CLAIM_TIMEOUT,
) -> int:
    """Drop the spooled events whose number ``match`` accepts (a purge by number while the
    daemon is stopped: a running daemon ingests the spool first and purges the store). The
    spool is claimed as for ingestion and the claimed files rewritten atomically without those
    lines, left for the daemon's next start; rejected lines (``spool-rejected.jsonl``) whose
    number ``match`` accepts go too. Returns how many lines were (or, ``dry_run``, would be)
    dropped. Raises BridgeError when a file is still being written after ``timeout``."""
    from microsip_bridge.fileio import atomic_write

    files = claimed_files(home)
    if dry_run:
        if (home / SPOOL_NAME).is_file():
            files.append(home / SPOOL_NAME)
    else:
        fresh = claim(home, timeout=timeout)
        if fresh is not None:
            files.append(fresh)
    dropped = 0
    for path in files:
        try:
            fh = path.open("rb")
        except FileNotFoundError:
            continue
        with fh:
            if not dry_run and not _lock_exclusive(fh.fileno(), timeout):
                raise BridgeError("still being written by a hook; try again", path=path)
            keep: list[bytes] = []
            gone = 0
            for number, raw in enumerate(fh, 1):
                item = parse_line(number, raw.rstrip(b"\r\n")) if raw.endswith(b"\n") else None
                if isinstance(item, EventRecord) and match(item.number):
                    gone += 1
                else:
                    keep.append(raw)
        dropped += gone
        if gone and not dry_run:
            atomic_write(path, b"".join(keep), backups=0)
    dropped += _purge_rejected(home, match, dry_run=dry_run)
    return dropped


def _purge_rejected(home: Path, match: Callable[[str], bool], *, dry_run: bool) -> int:
    # A rejected line is damaged: its number is whatever "number" its text still holds.
    from microsip_bridge.fileio import atomic_write

    path = home / REJECTED_NAME
    try:
        lines = path.read_bytes().splitlines(keepends=True)
    except FileNotFoundError:
        return 0
    keep: list[bytes] = []
    for raw in lines:
        try:
            entry = json.loads(raw)
        except ValueError:
            entry = None
        text = str(entry.get("text", "")) if isinstance(entry, dict) else ""
        try:
            inner = json.loads(text) if text.startswith("{") else None
        except ValueError:
            inner = None
        number = inner.get("number") if isinstance(inner, dict) else _number_in(text)
        if not (isinstance(number, str) and match(number)):
            keep.append(raw)
    gone = len(lines) - len(keep)
    if gone and not dry_run:
        atomic_write(path, b"".join(keep), backups=0)
    return gone


def _number_in(text: str) -> str | None:
    # A torn or damaged record still shows "number":"..." as the hook wrote it.
    at = text.find('"number":"')
    if at < 0:
        return None
    start = at + len('"number":"')
    end = text.find('"', start)
    return text[start:] if end < 0 else text[start:end]


def read_lines(lines: Iterable[bytes]) -> Iterator[EventRecord | Rejected]:
    """The events of a spool file's lines, and a :class:`Rejected` for each damaged line."""
    number = 0
    for raw in lines:
        number += 1
        if not raw.endswith(b"\n"):
            # Every hook line ends with its newline (one write): this is a torn write.
            yield Rejected(number, "incomplete line (no newline at the end)", _shown(raw))
            continue
        body = raw.rstrip(b"\r\n")
        if not body.strip():
            continue
        item = parse_line(number, body)
        if isinstance(item, Rejected):
            yield from _split_torn(number, body, item)
        else:
            yield item


def _split_torn(number: int, body: bytes, rejected: Rejected) -> Iterator[EventRecord | Rejected]:
    """A damaged line may be a torn write with whole records run on after it (a hook appended
    before the fragment was ended): split it where each record starts, keep the records, reject
    the rest. A line that holds no whole record stays one rejection, with its first reason."""
    starts = []
    at = body.find(_MARK, 1)
    while at != -1:
        starts.append(at)
        at = body.find(_MARK, at + 1)
    pieces = [
        parse_line(number, body[begin:end])
        for begin, end in zip([0, *starts], [*starts, len(body)], strict=True)
    ]
    if all(isinstance(piece, Rejected) for piece in pieces):
        yield rejected
    else:
        yield from pieces


def parse_line(number: int, body: bytes) -> EventRecord | Rejected:
    """One spool line as an event, or why it is not one."""
    if len(body) > MAX_LINE_BYTES:
        return Rejected(number, f"line of {len(body)} bytes (max {MAX_LINE_BYTES})", _shown(body))
    try:
        text = body.decode("ascii")
    except UnicodeDecodeError:
        # The hook writes ASCII-only JSON; other bytes are damage (or another writer).
        return Rejected(number, "bytes that are not ASCII JSON", _shown(body))
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        return Rejected(number, f"not JSON: {exc}", text)
    try:
        return EventRecord.from_spool(data, source="spool")
    except BridgeError as exc:
        return Rejected(number, str(exc), text)


def reject(home: Path, file_name: str, bad: Rejected) -> None:
    """Keep a damaged line in ``spool-rejected.jsonl`` (fsync'd), with why, and log it."""
    logger.warning("rejected line %d of %s: %s", bad.line, file_name, bad.reason)
    entry = {
        "rejected_at": time.time(),
        "file": file_name,
        "line": bad.line,
        "reason": bad.reason,
        "text": bad.text,
    }
    append_line(home / REJECTED_NAME, json.dumps(entry, ensure_ascii=True))


def _rejected_lines(home: Path, file_name: str) -> set[int]:
    """Lines of ``file_name`` already in spool-rejected.jsonl: a round that died after writing
    them but before deleting the file must not reject them twice."""
    path = home / REJECTED_NAME
    seen: set[int] = set()
    try:
        with path.open("rb") as fh:
            for raw in fh:
                with contextlib.suppress(ValueError, RecursionError):
                    entry = json.loads(raw)
                    if isinstance(entry, dict) and entry.get("file") == file_name:
                        line = entry.get("line")
                        if isinstance(line, int):
                            seen.add(line)
    except FileNotFoundError:
        pass
    return seen


def _shown(raw: bytes) -> str:
    return raw[:MAX_LINE_BYTES].decode("utf-8", "backslashreplace")


if sys.platform == "win32":

    def _lock_exclusive(fd: int, timeout: float) -> bool:
        # The rename succeeded, so no hook had the file open, and none can open it by name now.
        return True

else:

    def _lock_exclusive(fd: int, timeout: float) -> bool:
        import fcntl

        give_up = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if time.monotonic() > give_up:
                    return False
                time.sleep(0.002)
                continue
            return True
