"""Webhook targets: config.toml's [[webhooks]] tables (minimal stand-in; W's module replaces it)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from microsip_bridge.errors import FileFormatError


@dataclass(frozen=True, slots=True)
class WebhookTarget:
    """One receiver: its name, URL, the message types it takes ("*": all) and its secret."""

    name: str
    url: str
    events: frozenset[str]
    secret: str = field(default="", repr=False)


def parse_targets(tables: Sequence[Mapping[str, Any]], *, path: Path) -> list[WebhookTarget]:
    """The [[webhooks]] tables as targets; FileFormatError naming the entry and key."""
    out: list[WebhookTarget] = []
    for index, table in enumerate(tables, 1):
        name = table.get("name")
        where = f"[[webhooks]] {index}"
        if not isinstance(name, str) or not name:
            raise FileFormatError("must be a non-empty string", path=path, where=f"{where}, name")
        where += f" ({name!r})"
        url = table.get("url")
        if not isinstance(url, str) or not url.lower().startswith(("http://", "https://")):
            raise FileFormatError("must be an http(s) URL", path=path, where=f"{where}, url")
        events = table.get("events", ["*"])
        if not isinstance(events, list) or not all(isinstance(e, str) for e in events):
            raise FileFormatError("must be a list of strings", path=path, where=f"{where}, events")
        secret = table.get("secret", "")
        out.append(WebhookTarget(name, url, frozenset(events), str(secret)))
    return out
