"""The CRM lookup: a caller's name from an HTTP GET to a URL template, read with a JSON pointer.

``crm_url`` holds ``{e164}``, ``{national}``, ``{digits}`` and ``{raw}``, each URL-encoded;
``crm_name_pointer`` (RFC 6901) points at the name in the JSON answer. Answers are cached per
number (:attr:`numbers.Number.key`): names for ``crm_cache_ttl`` seconds, "no such caller"
(404, nothing at the pointer) for a tenth of it, failures (timeout, connection, other
statuses, bad JSON) for :data:`FAILURE_TTL`. Each kind of failure is logged once until a
lookup succeeds again; the token (``crm_token_env``) is never logged. Look-ups run on a small
thread pool: :meth:`CrmLookup.request` never waits.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import urllib.parse
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from microsip_bridge.errors import BridgeError
from microsip_bridge.numbers import Number

logger = logging.getLogger("microsip_bridge.crm")

WORKERS = 4
FAILURE_TTL = 10.0
CACHE_MAX = 100_000
MAX_ANSWER = 1 << 20  # a CRM's search answer is small; more is not a name
PLACEHOLDERS = ("e164", "national", "digits", "raw")


@dataclass(frozen=True, slots=True)
class CrmSettings:
    """The crm_* settings. ``url`` empty: no CRM lookup."""

    url: str = ""
    name_pointer: str = "/name"
    timeout: float = 2.0
    cache_ttl: float = 3600.0
    token_env: str = ""

    def __repr__(self) -> str:
        return f"CrmSettings(url={self.url!r}, name_pointer={self.name_pointer!r})"


def check_template(url: str) -> None:
    """Raise a one-line BridgeError when ``url`` is no http(s) URL template with known
    placeholders."""
    scheme = urllib.parse.urlsplit(url.replace("{", "").replace("}", "")).scheme.lower()
    if scheme not in ("http", "https"):
        raise BridgeError(f"crm_url must start with http:// or https://, not {url[:40]!r}")
    try:
        url.format(**dict.fromkeys(PLACEHOLDERS, ""))
    except (KeyError, IndexError, ValueError) as exc:
        raise BridgeError(
            f"crm_url has an unknown placeholder {exc} (known: "
            + ", ".join("{" + p + "}" for p in PLACEHOLDERS)
            + ")"
        ) from None


def check_pointer(pointer: str) -> None:
    """Raise a one-line BridgeError when ``pointer`` is no RFC 6901 JSON pointer."""
    if pointer and not pointer.startswith("/"):
        raise BridgeError(f"crm_name_pointer must be empty or start with '/', not {pointer!r}")


def build_url(template: str, number: Number) -> str:
    """``template`` with the number's forms, URL-encoded (a ``+`` or a space never reaches
    the CRM as is)."""
    forms = {
        "e164": number.e164,
        "national": number.national,
        "digits": number.digits,
        "raw": number.raw,
    }
    return template.format(**{k: urllib.parse.quote(v, safe="") for k, v in forms.items()})


_MISSING = object()


def resolve_pointer(document: Any, pointer: str) -> Any:
    """The value at the RFC 6901 ``pointer`` in ``document``; a sentinel object when nothing
    is there (never raises)."""
    if pointer == "":
        return document
    here = document
    for escaped in pointer[1:].split("/"):
        step = escaped.replace("~1", "/").replace("~0", "~")
        if isinstance(here, dict):
            if step not in here:
                return _MISSING
            here = here[step]
        elif isinstance(here, list):
            if not (step.isascii() and step.isdigit()) or (step != "0" and step.startswith("0")):
                return _MISSING
            at = int(step)
            if at >= len(here):
                return _MISSING
            here = here[at]
        else:
            return _MISSING
    return here


class CrmFailure(Exception):
    """A lookup that gave no answer; ``kind`` is what is logged once."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind


@dataclass(frozen=True, slots=True)
class _Cached:
    name: str
    until: float


class CrmLookup:
    """Names from the CRM, cached. Thread-safe; :meth:`start` before :meth:`request`."""

    def __init__(
        self,
        settings: CrmSettings,
        *,
        workers: int = WORKERS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        check_template(settings.url)
        check_pointer(settings.name_pointer)
        self.settings = settings
        self.clock = clock
        self._workers = workers
        self._cache: dict[str, _Cached] = {}
        self._waiting: dict[str, list[Callable[[str], None]]] = {}
        self._lock = threading.Lock()
        self._client_lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._client: Any = None
        self._stopped = False  # stop() ran: a lookup still running makes no new client
        self._logged: set[str] = set()

    def __repr__(self) -> str:
        return f"CrmLookup({self.settings!r})"

    # --- the daemon -----------------------------------------------------------------------

    def start(self) -> None:
        with self._client_lock:
            self._stopped = False
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self._workers, thread_name_prefix="crm")

    def stop(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        with self._client_lock:
            client, self._client = self._client, None
            self._stopped = True
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
        if client is not None:
            client.close()

    def cached(self, number: Number) -> str | None:
        """The cached answer for ``number``: a name, "" (none, or a failure), or None (not
        asked yet, or expired)."""
        with self._lock:
            found = self._cache.get(number.key)
            if found is None:
                return None
            if found.until <= self.clock():
                del self._cache[number.key]
                return None
            return found.name

    def request(self, number: Number, done: Callable[[str], None]) -> bool:
        """Look ``number`` up in the background unless the answer is cached; ``done(name)``
        runs on a pool thread once a name is found (not for "none"). Returns False when no
        lookup was started or joined (cached, no key, not started)."""
        if not number.key or self.cached(number) is not None:
            return False
        with self._lock:
            if self._pool is None:
                return False
            waiting = self._waiting.get(number.key)
            if waiting is not None:
                waiting.append(done)
                return True
            self._waiting[number.key] = [done]
            pool = self._pool
        try:
            pool.submit(self._run, number)
        except RuntimeError:  # shut down meanwhile
            with self._lock:
                self._waiting.pop(number.key, None)
            return False
        return True

    def lookup(self, number: Number) -> str:
        """The CRM's name for ``number`` (cached, else asked now, waiting at most the
        timeout); "" when none."""
        found = self.cached(number)
        if found is not None:
            return found
        return self._ask(number)

    # --- on a pool thread -------------------------------------------------------------------

    def _run(self, number: Number) -> None:
        name = ""
        try:
            name = self._ask(number)
        finally:
            with self._lock:
                waiting = self._waiting.pop(number.key, [])
        if name:
            for done in waiting:
                try:
                    done(name)
                except Exception:
                    logger.exception("a CRM name could not be given to its call")

    def _ask(self, number: Number) -> str:
        now = self.clock()
        ttl = self.settings.cache_ttl
        try:
            name = self._fetch(number)
        except CrmFailure as exc:
            if exc.kind not in self._logged:
                self._logged.add(exc.kind)
                logger.warning("CRM lookup failed (%s): %s", exc.kind, exc)
            self._remember(number.key, "", now + min(ttl, FAILURE_TTL))
            return ""
        self._logged.clear()
        self._remember(number.key, name, now + (ttl if name else ttl / 10))
        return name

    def _remember(self, key: str, name: str, until: float) -> None:
        with self._lock:
            if len(self._cache) >= CACHE_MAX:
                self._cache.clear()  # rare: a full day's callers; cheaper than an LRU per call
            self._cache[key] = _Cached(name, until)

    def _http(self) -> Any:
        # A lock of its own: building the client (importing httpx2 the first time) takes
        # long enough to hold up the writer's cache reads, which take ``_lock``.
        with self._client_lock:
            if self._stopped:
                raise CrmFailure("stopped", "the daemon is stopping")
            if self._client is None:
                import httpx2

                self._client = httpx2.Client(
                    timeout=self.settings.timeout, follow_redirects=True, verify=True
                )
            return self._client

    def _fetch(self, number: Number) -> str:
        import httpx2

        url = build_url(self.settings.url, number)
        headers = {"Accept": "application/json"}
        if self.settings.token_env:
            token = os.environ.get(self.settings.token_env, "")
            if token:
                headers["Authorization"] = f"Bearer {token}"
        try:
            response = self._http().get(url, headers=headers)
        except httpx2.TimeoutException:
            raise CrmFailure("timeout", f"no answer within {self.settings.timeout:g} s") from None
        except httpx2.HTTPError as exc:
            raise CrmFailure("connection", type(exc).__name__) from None
        if response.status_code == 404:
            return ""
        if response.status_code != 200:
            raise CrmFailure(f"HTTP {response.status_code}", "the CRM refused the lookup")
        if len(response.content) > MAX_ANSWER:
            raise CrmFailure("too big", f"an answer of {len(response.content)} bytes")
        try:
            document = response.json()
        except ValueError:
            raise CrmFailure("bad JSON", "the answer is not JSON") from None
        value = resolve_pointer(document, self.settings.name_pointer)
        if value is _MISSING or value is None:
            return ""
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise CrmFailure(
                "not a name", f"{self.settings.name_pointer} holds a {type(value).__name__}"
            )
        return str(value).strip()
