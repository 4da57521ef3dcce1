"""The directory key: a read-only secret for MicroSIP's usersDirectory URL, never the API token.

MicroSIP keeps its directory URL in microsip.ini in clear text, so whatever opens the directory
must open nothing else: the key is a file of its own, ``<home>/directory-key`` (0600, 256 random
bits), created on first need (``directory install`` or ``directory url``) and replaced by
``directory install --new-key``. The daemon reads it at each request, so a new key works at
once and the old one stops working at once. Compared in constant time.
"""

from __future__ import annotations

import contextlib
import hmac
import os
import secrets
import stat
from pathlib import Path

from microsip_bridge.errors import BridgeError
from microsip_bridge.fileio import atomic_write, private_dir

KEY_NAME = "directory-key"
KEY_BYTES = 32
# token_urlsafe's alphabet: nothing MicroSIP would rewrite in a URL (no %, *, { or blanks).
_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
MIN_KEY_CHARS = 32
# A key file is one line; anything much longer is not ours.
_MAX_FILE_BYTES = 256


def key_path(home: Path) -> Path:
    return home / KEY_NAME


def valid_key(text: str) -> bool:
    """``text`` looks like a key we made."""
    return len(text) >= MIN_KEY_CHARS and set(text) <= _ALPHABET


def read_key(home: Path) -> str | None:
    """The current key; None when there is none (or the file is not a key we wrote)."""
    path = key_path(home)
    try:
        with path.open("rb") as fh:
            data = fh.read(_MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise BridgeError(f"cannot read the directory key: {exc.strerror}", path=path) from None
    text = data.decode("ascii", "replace").strip()
    return text if len(data) <= _MAX_FILE_BYTES and valid_key(text) else None


def ensure_key(home: Path) -> str:
    """The current key, created (0600) when there is none or the file is damaged."""
    key = read_key(home)
    return key if key is not None else new_key(home)


def new_key(home: Path) -> str:
    """Write a fresh key (atomically, private to the user) and return it."""
    private_dir(home)
    key = secrets.token_urlsafe(KEY_BYTES)
    path = key_path(home)
    atomic_write(path, key.encode("ascii") + b"\n", backups=0)
    if os.name == "posix" and stat.S_IMODE(path.stat().st_mode) & 0o077:
        with contextlib.suppress(OSError):
            path.chmod(0o600)
    return key


def key_matches(given: str | None, home: Path) -> bool:
    """``given`` is the current key (constant time; no key file: nothing matches)."""
    expected = read_key(home)
    if not given or expected is None:
        return False
    return hmac.compare_digest(given.encode("utf-8", "surrogateescape"), expected.encode("ascii"))
