"""Atomic file writes with timestamped backups: a failed write never leaves a half-written file.

Temporary files carry the writer's process id (``.NAME.PID.RANDOM.tmp``), so a later write can
tell the leftovers of a killed writer (its process is gone) from a write in progress, and removes
them. A backup is copied under a temporary name and renamed when whole, so a backup that exists is
never a torn one.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
import shutil
import stat
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

from microsip_bridge.errors import BridgeError, NotFoundError, TooLargeError, UnsafeInputError

DEFAULT_BACKUPS = 5
BACKUP_DIR = "bridge-backups"
_STAMP = re.compile(r"\.\d{8}-\d{6}-\d{6}\.bak$")
# A killed writer's temporary file: the pid is the second-to-last dotted part.
_TMP = re.compile(r"\.(\d+)\.[A-Za-z0-9_]+\.tmp$")
# Where a pid cannot be probed (Windows), a temporary file this old is a leftover.
_STALE_TMP_SECONDS = 600.0


def backup_dir(path: Path) -> Path:
    """Backups live in a folder beside the file, so they are found where the file is."""
    return path.parent / BACKUP_DIR


def list_backups(path: Path) -> list[Path]:
    """The backups of ``path``, oldest first (their names sort by time)."""
    folder = backup_dir(path)
    if not folder.is_dir():
        return []
    prefix = path.name + "."
    return sorted(
        p for p in folder.iterdir() if p.name.startswith(prefix) and _STAMP.search(p.name)
    )


def make_backup(path: Path, keep: int = DEFAULT_BACKUPS) -> Path | None:
    """Copy the current file into the backup folder and prune to the newest ``keep``.

    The copy is written under a temporary name, fsync'd and renamed: a kill or a full disk
    leaves no backup rather than a torn or empty one."""
    if keep <= 0 or not path.exists():
        return None
    folder = backup_dir(path)
    folder.mkdir(exist_ok=True)
    remove_leftovers(folder, f".{path.name}.")
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S-%f")
    target = folder / f"{path.name}.{stamp}.bak"
    n = 1
    while target.exists():  # two writes in the same microsecond: keep both
        target = folder / f"{path.name}.{stamp}{n}.bak"
        n += 1
    fd, tmp_name = _mkstemp(folder, path.name)
    try:
        with os.fdopen(fd, "wb") as out, path.open("rb") as src:
            shutil.copyfileobj(src, out, 1024 * 1024)
            out.flush()
            os.fsync(out.fileno())
        shutil.copystat(path, tmp_name)
        os.replace(tmp_name, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise
    fsync_dir(folder)
    for old in list_backups(path)[:-keep]:
        with contextlib.suppress(OSError):
            old.unlink()
    return target


def _mkstemp(folder: Path, name: str) -> tuple[int, str]:
    return tempfile.mkstemp(prefix=f".{name}.{os.getpid()}.", suffix=".tmp", dir=folder)


def _pid_gone(pid: int) -> bool | None:
    """True when no process has this pid; None when it cannot be told here (Windows)."""
    if os.name != "posix":
        return None
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False  # it exists, and is someone else's
    return False


def remove_leftovers(folder: Path, prefix: str) -> list[Path]:
    """Remove the temporary files (``PREFIX<pid>.<random>.tmp``) that killed writers left in
    ``folder``; a file whose writer still runs is kept. Returns what was removed."""
    removed: list[Path] = []
    try:
        names = [n for n in os.listdir(folder) if n.startswith(prefix) and n.endswith(".tmp")]
    except OSError:
        return removed
    for name in names:
        match = _TMP.search(name[len(prefix) - 1 :])
        if match is None:
            continue
        leftover = folder / name
        gone = _pid_gone(int(match.group(1)))
        if gone is None:
            try:
                age = dt.datetime.now().timestamp() - leftover.stat().st_mtime
            except OSError:
                continue
            gone = age > _STALE_TMP_SECONDS
        if gone:
            with contextlib.suppress(OSError):
                leftover.unlink()
                removed.append(leftover)
    return removed


def private_dir(folder: Path) -> Path:
    """Create ``folder`` (and its parents) readable by the user alone; an existing folder of the
    user's is made private too (POSIX: 0700). The bridge's home holds the call log, the token
    and the logs: other local users must not read them."""
    folder = Path(folder)
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    if sys.platform != "win32":
        with contextlib.suppress(OSError):
            if folder.stat().st_uid == os.getuid() and folder.stat().st_mode & 0o077:
                folder.chmod(0o700)
    return folder


def fsync_dir(folder: Path) -> None:
    """Make a rename or delete in ``folder`` durable (POSIX; Windows has no directory fsync and
    MoveFileEx with REPLACE_EXISTING is enough). Best effort: the change itself already happened."""
    if os.name != "posix":
        return
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write(
    path: Path,
    data: bytes | Iterable[bytes],
    *,
    backups: int = DEFAULT_BACKUPS,
    max_bytes: int | None = None,
    public: bool = False,
) -> Path | None:
    """Replace ``path`` with ``data`` atomically: temp file, fsync, rename.

    The previous file, if any, is first copied to the backup folder (the newest ``backups`` are
    kept). Returns the backup's path. On any failure the original file is untouched. Leftover
    temporary files of killed writers of the same file are removed first. ``max_bytes``: the
    largest file the bridge would read back; more is refused before anything is written.
    A file that replaces another keeps its permissions; a new one is private to the user (0600)
    unless ``public``, when it gets what the umask gives (exports, a directory file to serve).
    ``data`` may come in pieces (a large export is then never held twice, as text and as
    bytes); pieces past ``max_bytes`` abort the write, leaving the original untouched.
    """
    path = Path(path)
    folder = path.parent
    if isinstance(data, bytes) and max_bytes is not None and len(data) > max_bytes:
        raise _too_big(path, len(data), max_bytes)
    try:
        remove_leftovers(folder, f".{path.name}.")
        backup = make_backup(path, backups)
        fd, tmp_name = _mkstemp(folder, path.name)
    except OSError as exc:
        raise BridgeError(f"cannot write: {exc.strerror or exc}", path=path) from exc
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as fh:
            if isinstance(data, bytes):
                fh.write(data)
            else:
                size = 0
                for piece in data:
                    size += len(piece)
                    if max_bytes is not None and size > max_bytes:
                        raise _too_big(path, size, max_bytes, more=True)
                    fh.write(piece)
            fh.flush()
            os.fsync(fh.fileno())
        if path.exists():
            with contextlib.suppress(OSError):
                shutil.copymode(path, tmp)
        elif public and os.name == "posix":
            os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
        fsync_dir(folder)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise BridgeError(f"cannot write: {exc.strerror or exc}", path=path) from exc
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    return backup


def _too_big(path: Path, size: int, max_bytes: int, *, more: bool = False) -> TooLargeError:
    at_least = "at least " if more else ""
    return TooLargeError(
        f"would be {at_least}{size:,} bytes, over the limit of {max_bytes:,} that the bridge "
        "reads; nothing was written (raise max_file_mb to allow it)",
        path=path,
    )


def _umask() -> int:
    """The process's umask, read without changing it where Linux allows."""
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o077)  # elsewhere the only way to read it is to set it (and put it back)
    os.umask(mask)
    return mask


def open_regular(path: Path, what: str = "file") -> BinaryIO:
    """Open a regular file for reading. A FIFO, a device or a socket is refused, not opened:
    opening a FIFO with no writer blocks for ever, and /dev/zero never ends. Errors name the file
    (NotFoundError for a missing file or a folder)."""
    path = Path(path)
    try:
        info = path.stat()
        if stat.S_ISDIR(info.st_mode):
            raise NotFoundError(f"is a folder, not a {what}", path=path)
        if not stat.S_ISREG(info.st_mode):
            raise UnsafeInputError(
                f"is not a regular file (a pipe or a device?), not a {what}", path=path
            )
        # O_NONBLOCK: should the path have become a FIFO since the stat, open still returns.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except FileNotFoundError as exc:
        raise NotFoundError("no such file", path=path) from exc
    except IsADirectoryError as exc:
        raise NotFoundError(f"is a folder, not a {what}", path=path) from exc
    except OSError as exc:
        raise BridgeError(f"cannot read: {exc.strerror or exc}", path=path) from exc
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise UnsafeInputError(f"is not a regular file, not a {what}", path=path)
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_limited(path: Path, max_bytes: int, what: str = "file") -> bytes:
    """Read a whole regular file, refusing one larger than ``max_bytes`` before reading it: a
    damaged or hostile file must not take the memory with it. Errors name the file."""
    path = Path(path)
    with open_regular(path, what) as fh:
        try:
            size = os.fstat(fh.fileno()).st_size
            if size > max_bytes:
                raise TooLargeError(
                    f"is {size:,} bytes, over the limit of {max_bytes:,} for a {what}", path=path
                )
            # A file that grows while we read: read one byte past the limit to catch it.
            data = fh.read(max_bytes + 1)
        except OSError as exc:
            raise BridgeError(f"cannot read: {exc.strerror or exc}", path=path) from exc
    if len(data) > max_bytes:
        raise TooLargeError(f"is over the limit of {max_bytes:,} bytes for a {what}", path=path)
    return data
