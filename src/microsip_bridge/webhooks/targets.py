"""The [[webhooks]] targets of config.toml: where each message goes, which types, its secret."""

from __future__ import annotations

import base64
import binascii
import ipaddress
import os
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from microsip_bridge.errors import FileFormatError
from microsip_bridge.model import Transition, webhook_type

SECRET_PREFIX = "whsec_"  # noqa: S105 - the format's prefix, not a secret
KEYRING_SERVICE = "microsip-bridge"
TEST_TYPE = "webhook.test"
# Every type a target may subscribe to: one per call transition.
EVENT_TYPES = frozenset(webhook_type(t) for t in Transition)
_KEYS = frozenset({"name", "url", "events", "secret", "secret_env", "secret_keyring"})


@dataclass(frozen=True, slots=True)
class WebhookTarget:
    """One receiver: ``events`` holds call.* types, or "*" for all. ``secret`` is the
    ``whsec_`` secret; it never shows in the repr (nor anywhere else the bridge prints)."""

    name: str
    url: str
    events: frozenset[str]
    secret: str = field(repr=False)

    def wants(self, type_: str) -> bool:
        """Whether messages of ``type_`` go to this target."""
        return "*" in self.events or type_ in self.events

    @property
    def key(self) -> bytes:
        """The signing key: the secret's base64 after the prefix, decoded."""
        return secret_key(self.secret)

    def public(self) -> dict[str, object]:
        """What the API and the CLI show: everything but the secret."""
        return {"name": self.name, "url": self.url, "events": sorted(self.events)}


def secret_key(secret: str) -> bytes:
    """The key of a ``whsec_<base64>`` secret; ValueError when it is not one."""
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError(f"must start with {SECRET_PREFIX}")
    try:
        key = base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"must be {SECRET_PREFIX} followed by base64") from None
    if len(key) < 16:
        raise ValueError("must hold at least 16 bytes (24 base64 characters)")
    return key


def is_loopback_host(host: str) -> bool:
    """Whether ``host`` names this machine (where plain http is allowed)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_targets(tables: Sequence[Mapping[str, Any]], *, path: Path) -> list[WebhookTarget]:
    """The [[webhooks]] tables of config.toml at ``path`` as targets; FileFormatError naming
    the entry (its name, else its position) and the key at the first bad one."""
    targets: list[WebhookTarget] = []
    seen: set[str] = set()
    for index, table in enumerate(tables, 1):
        name = table.get("name") if isinstance(table, Mapping) else None
        where = (
            f"[[webhooks]] {name!r}" if isinstance(name, str) and name else f"[[webhooks]] #{index}"
        )

        def bad(key: str, message: str, where: str = where) -> FileFormatError:
            return FileFormatError(f"{key}: {message}", path=path, where=where)

        if not isinstance(table, Mapping):
            raise FileFormatError("must be a table", path=path, where=where)
        unknown = sorted(set(table) - _KEYS)
        if unknown:
            raise bad(unknown[0], f"unknown key (known: {', '.join(sorted(_KEYS))})")
        if not isinstance(name, str) or not name.strip() or len(name) > 100:
            raise bad("name", "must be a non-empty string of at most 100 characters")
        if name in seen:
            raise bad("name", "is used by another [[webhooks]] entry")
        seen.add(name)
        url = _url(table.get("url"), bad)
        events = _events(table.get("events", ["*"]), bad)
        secret = _secret(name, table, bad)
        targets.append(WebhookTarget(name, url, events, secret))
    return targets


def _url(value: object, bad: Any) -> str:
    if not isinstance(value, str) or not value:
        raise bad("url", "must be an http:// or https:// URL")
    try:
        parts = urllib.parse.urlsplit(value)
        parts.port  # noqa: B018 - raises for a port out of range
    except ValueError as exc:
        raise bad("url", f"not a URL: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise bad("url", "must be an http:// or https:// URL with a host")
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        raise bad(
            "url", "plain http is only allowed to this machine (127.0.0.1, localhost): use https"
        )
    return value


def _events(value: object, bad: Any) -> frozenset[str]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise bad("events", 'must be a list of types such as "call.ringing", or ["*"]')
    for item in value:
        if item != "*" and item not in EVENT_TYPES:
            raise bad(
                "events", f"unknown type {item!r} (known: {', '.join(sorted(EVENT_TYPES))}, *)"
            )
    return frozenset(value)


def _secret(name: str, table: Mapping[str, Any], bad: Any) -> str:
    given = [k for k in ("secret", "secret_env", "secret_keyring") if k in table]
    if len(given) != 1:
        raise bad("secret", "give exactly one of secret, secret_env and secret_keyring")
    key = given[0]
    value = table[key]
    if key == "secret":
        secret = value
        if not isinstance(secret, str):
            raise bad("secret", f"must be a string {SECRET_PREFIX}...")
    elif key == "secret_env":
        if not isinstance(value, str) or not value:
            raise bad("secret_env", "must name an environment variable")
        secret = os.environ.get(value)
        if secret is None:
            raise bad("secret_env", f"the environment variable {value} is not set")
    else:
        if value is not True:
            raise bad("secret_keyring", "must be true (or left out)")
        secret = _keyring_secret(name, bad)
    try:
        secret_key(secret)
    except ValueError as exc:
        # Never the secret itself: only what is wrong with it.
        raise bad(key, f"the secret {exc}") from None
    return secret


def _keyring_secret(name: str, bad: Any) -> str:
    try:
        import keyring  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        raise bad(
            "secret_keyring",
            "the keyring package is not installed (pip install keyring), or use secret_env",
        ) from None
    try:
        secret = keyring.get_password(KEYRING_SERVICE, name)
    except Exception as exc:  # the backends raise their own kinds
        raise bad("secret_keyring", f"the OS keyring did not answer: {exc}") from None
    if not isinstance(secret, str):
        raise bad(
            "secret_keyring",
            f"no password for service {KEYRING_SERVICE!r}, user {name!r} in the OS keyring",
        )
    return secret
