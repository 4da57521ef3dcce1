"""Dashboard logins: one-time login codes, and the sessions they open (kept across restarts).

A browser cannot send the API token, and the token must never sit in a URL, a page or a log.
So ``serve`` and ``microsip-bridge open`` hand out a **login code** instead: 256 random bits,
valid once, for :data:`LOGIN_CODE_SECONDS`, held in the daemon's memory only. Redeemed at
``/login``, it opens a **session**: a new random value sent to the browser as an HttpOnly,
SameSite=Strict cookie. The daemon keeps only the SHA-256 of each session value with its expiry,
in ``<home>/sessions.json`` (0600), so that logins survive a restart, a logout really ends one,
and the file alone opens nothing.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import threading
import time
from collections.abc import Callable
from pathlib import Path

from microsip_bridge.errors import BridgeError
from microsip_bridge.fileio import atomic_write

logger = logging.getLogger("microsip_bridge.daemon")

SESSIONS_NAME = "sessions.json"
LOGIN_PATH = "/login"
LOGIN_CODE_SECONDS = 600.0
# Enough for every browser of a desk and a few people; the oldest go first past it.
MAX_SESSIONS = 200
MAX_LOGIN_CODES = 100
_SECRET_BYTES = 32
# A value we made: token_urlsafe(32) is 43 characters; anything much longer is not ours.
_MAX_VALUE_CHARS = 64

Clock = Callable[[], float]


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8", "surrogateescape")).hexdigest()


def session_cookie_name(port: int) -> str:
    """The session cookie's name: cookies are shared by every port of a host, so two daemons
    on one machine (two homes) must not overwrite each other's."""
    return f"microsip_bridge_session_{port}"


def login_url(base: str, code: str) -> str:
    """The login link for ``code`` on the daemon at ``base`` (``http://host:port``)."""
    return f"{base}{LOGIN_PATH}?once={code}"


class LoginCodes:
    """One-time login codes, in memory: each redeems once, within its lifetime."""

    def __init__(self, lifetime: float = LOGIN_CODE_SECONDS, clock: Clock = time.time) -> None:
        self.lifetime = lifetime
        self._clock = clock
        self._expiries: dict[str, float] = {}  # digest -> expiry
        self._lock = threading.Lock()

    def issue(self) -> str:
        """A new code (URL-safe text)."""
        code = secrets.token_urlsafe(_SECRET_BYTES)
        now = self._clock()
        with self._lock:
            self._expiries = {d: t for d, t in self._expiries.items() if t > now}
            while len(self._expiries) >= MAX_LOGIN_CODES:
                del self._expiries[min(self._expiries, key=self._expiries.__getitem__)]
            self._expiries[_digest(code)] = now + self.lifetime
        return code

    def redeem(self, code: str) -> bool:
        """Whether ``code`` is valid now; it is spent either way."""
        if not code or len(code) > _MAX_VALUE_CHARS:
            return False
        with self._lock:
            expiry = self._expiries.pop(_digest(code), None)
        return expiry is not None and expiry > self._clock()


class Sessions:
    """The open dashboard sessions, persisted in ``path`` as digests with their expiry."""

    def __init__(self, path: Path, lifetime: float, clock: Clock = time.time) -> None:
        self.path = path
        self.lifetime = lifetime
        self._clock = clock
        self._lock = threading.Lock()
        self._expiries = self._load()

    def open(self) -> str:
        """A new session; its value for the cookie (never stored as such)."""
        value = secrets.token_urlsafe(_SECRET_BYTES)
        now = self._clock()
        with self._lock:
            live = {d: t for d, t in self._expiries.items() if t > now}
            while len(live) >= MAX_SESSIONS:
                del live[min(live, key=live.__getitem__)]
            live[_digest(value)] = now + self.lifetime
            self._expiries = live
            self._save()
        return value

    def valid(self, value: str) -> bool:
        """Whether ``value`` (a cookie's) is an open session that has not expired."""
        if not value or len(value) > _MAX_VALUE_CHARS:
            return False
        expiry = self._expiries.get(_digest(value))
        return expiry is not None and expiry > self._clock()

    def close(self, value: str) -> bool:
        """End the session ``value``; whether it was open."""
        with self._lock:
            if self._expiries.pop(_digest(value), None) is None:
                return False
            self._save()
        return True

    def _load(self) -> dict[str, float]:
        try:
            data = json.loads(self.path.read_text("utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError, RecursionError) as exc:
            # Losing the sessions costs each browser one `microsip-bridge open`.
            logger.warning("cannot read %s (%s); every dashboard must log in again", self.path, exc)
            return {}
        found = data.get("sessions") if isinstance(data, dict) else None
        if not isinstance(found, dict):
            logger.warning("%s is not ours; every dashboard must log in again", self.path)
            return {}
        now = self._clock()
        return {
            str(d): float(t)
            for d, t in found.items()
            if isinstance(t, int | float) and not isinstance(t, bool) and t > now
        }

    def _save(self) -> None:
        text = json.dumps({"v": 1, "sessions": self._expiries}, indent=1) + "\n"
        try:
            atomic_write(self.path, text.encode("utf-8"), backups=0)  # a new file is 0600
        except BridgeError as exc:
            # The session works until the daemon stops; only its survival is lost.
            logger.warning("%s", exc)
