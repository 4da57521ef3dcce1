"""The bridge's settings: each declared once, with its default and help, read from config.toml."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from microsip_bridge.errors import BridgeError, FileFormatError
from microsip_bridge.wire import bridge_home

CONFIG_NAME = "config.toml"


@dataclass(frozen=True, slots=True)
class Setting:
    """One setting: the README's table and ``microsip-bridge config`` are generated from these."""

    name: str
    default: Any
    help: str

    @property
    def type(self) -> type:
        return type(self.default)


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "microsip",
        "",
        "MicroSIP's exe or folder, used when a command gets no --microsip, --ini or MICROSIP_INI.",
    ),
    Setting(
        "backups",
        5,
        "How many timestamped backups of microsip.ini and Contacts.xml to keep on each write.",
    ),
    Setting(
        "max_file_mb",
        64,
        "Largest Contacts.xml or import file read, in MiB; bigger files are refused, not loaded.",
    ),
    Setting(
        "host",
        "127.0.0.1",
        "Address the daemon (`serve`) listens on. Keep it on loopback: the API has no TLS; any "
        "other address needs `public`.",
    ),
    # Not registered with IANA and not used by common servers (5797 is free in /etc/services).
    Setting("port", 5797, "Port the daemon listens on (0 picks a free one)."),
    Setting(
        "public",
        False,
        "Let `serve` listen on an address other machines can reach (as --public does); without "
        "it any host but loopback is refused.",
    ),
    Setting(
        "allowed_hosts",
        "",
        "Host names, comma-separated, that requests may name besides loopback (the Host header, "
        "checked against DNS rebinding), e.g. the PC's name when the daemon is public.",
    ),
    Setting(
        "allowed_origins",
        "",
        "Web origins (scheme://host[:port]), comma-separated, whose pages may use the API besides "
        "the daemon's own, e.g. https://crm.example.com.",
    ),
    Setting(
        "session_days",
        7.0,
        "Days a dashboard login lasts before `microsip-bridge open` is needed again.",
    ),
    Setting(
        "database",
        "",
        "Where the call log is kept: empty for bridge.db (SQLite) in the bridge's home, or "
        "postgresql://USER@HOST/DB for a shared PostgreSQL server.",
    ),
    Setting(
        "reject_timeout",
        15.0,
        "Seconds after which an incoming call with no further event is closed as rejected "
        "(MicroSIP reports nothing more for calls it rejects itself).",
    ),
    Setting(
        "spool_interval",
        5.0,
        "Seconds between the daemon's reads of the spool, where the hook leaves events the "
        "daemon could not take.",
    ),
    Setting(
        "sweep_interval",
        60.0,
        "Seconds between imports of [Calls] entries no hook announced (calls made while the "
        "daemon was off).",
    ),
    Setting(
        "hook_program",
        "",
        "The program `hooks install` writes into microsip.ini: microsip-bridge-hook, or a "
        "Python interpreter; empty means this Python running the hook directly (the fastest).",
    ),
    Setting(
        "control_transport",
        "auto",
        "How control commands reach MicroSIP: auto (the simulator if one runs in MicroSIP's "
        "folder, else its window, else microsip.exe), window, exe or simulator.",
    ),
    Setting(
        "control_cooldown",
        1.0,
        "Seconds a dial waits after the previous control command (e.g. a hang-up), so the SIP "
        "server clears the session first; the daemon applies it across all clients.",
    ),
    Setting(
        "control_rate",
        10.0,
        "Control commands a second the daemon's API accepts (more get 429); 0: no limit.",
    ),
    Setting(
        "default_region",
        "",
        "The country national numbers are read in, as an ISO 3166 code (US, GB, DE...): with "
        "GB, 020 7946 0000 and +44 20 7946 0000 are one number to names, rules, webhooks and "
        "the API. Empty: only numbers written with + or 00 are normalised.",
    ),
    Setting(
        "rules_rate",
        10.0,
        "Times a minute one rule may open a page, run its program or notify (more are skipped "
        "and logged); 0: no limit. Webhooks are not limited.",
    ),
    Setting(
        "crm_url",
        "",
        "A CRM lookup for callers no contact names: an http(s) URL template with {e164}, "
        "{national}, {digits} or {raw} (URL-encoded), fetched with GET; empty: none.",
    ),
    Setting(
        "crm_name_pointer",
        "/name",
        "Where the caller's name is in the CRM's JSON answer, as an RFC 6901 JSON pointer "
        "(/results/0/name).",
    ),
    Setting(
        "crm_timeout",
        2.0,
        "Seconds a CRM lookup may take; a slower answer is dropped (the call keeps no name).",
    ),
    Setting(
        "crm_cache_ttl",
        3600.0,
        "Seconds a CRM name is kept for its number; 'no such caller' for a tenth of it, "
        "failures for at most 10 s.",
    ),
    Setting(
        "crm_token_env",
        "",
        "An environment variable holding a token sent to the CRM as Authorization: Bearer "
        "(never logged); empty: none.",
    ),
    Setting(
        "webhook_timeout",
        10.0,
        "Seconds a webhook receiver has to answer one delivery before the attempt counts as "
        "failed.",
    ),
    Setting(
        "webhook_max_attempts",
        20,
        "Attempts at one webhook message before it becomes a dead letter.",
    ),
    Setting(
        "webhook_max_age",
        24.0,
        "Hours after which a webhook message not yet delivered becomes a dead letter.",
    ),
    Setting(
        "webhook_workers",
        8,
        "Webhook deliveries the daemon makes at once.",
    ),
    Setting(
        "webhook_backoff",
        2.0,
        "Seconds: the longest wait before a failed webhook delivery's first retry; it doubles "
        "with each attempt (random within it, at most an hour).",
    ),
    Setting(
        "dial_timeout",
        15.0,
        "Seconds a dial through the bridge waits for MicroSIP's outgoing event before its call "
        "ends as not_placed.",
    ),
    Setting(
        "mask_numbers",
        True,
        "Mask phone numbers and SIP user names in the daemon's and the hook's logs (only the "
        "last 2-3 digits show): logs get copied into tickets; the call log keeps them whole.",
    ),
    Setting(
        "retention_days",
        0,
        "Days the daemon keeps ended calls, their events and delivered webhooks; older ones it "
        "purges by itself every hour. 0: keep them forever.",
    ),
)
DEFAULTS: dict[str, Any] = {s.name: s.default for s in SETTINGS}

# The arrays of tables config.toml may hold besides the settings: each checked by its owner
# (actions/rules.py for [[rules]], webhooks/targets.py for [[webhooks]]).
TABLES = ("rules", "webhooks")


def config_path(home: Path | None = None) -> Path:
    return (home or bridge_home()) / CONFIG_NAME


@dataclass(frozen=True, slots=True)
class Config:
    """Setting values, with where each came from ("default" or the config file)."""

    values: dict[str, Any]
    sources: dict[str, str]
    path: Path
    # The arrays of tables (TABLES) as the file has them, unchecked: {"rules": [{...}, ...]}.
    tables: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def __getitem__(self, name: str) -> Any:
        return self.values[name]

    @property
    def backups(self) -> int:
        return int(self.values["backups"])

    @property
    def max_bytes(self) -> int:
        return int(self.values["max_file_mb"]) * 1024 * 1024


def load_config(path: Path | None = None) -> Config:
    """Read config.toml (a missing file means all defaults); unknown or mistyped settings are
    errors that name the file and the setting."""
    path = path or config_path()
    values = dict(DEFAULTS)
    sources = dict.fromkeys(DEFAULTS, "default")
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return Config(values, sources, path)
    except OSError as exc:
        raise BridgeError(f"cannot read: {exc.strerror or exc}", path=path) from exc
    try:
        data = tomllib.loads(raw.decode("utf-8-sig"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise FileFormatError(f"not valid TOML: {exc}", path=path) from exc
    tables: dict[str, list[dict[str, Any]]] = {}
    for name, value in data.items():
        if name in TABLES:
            if not isinstance(value, list) or not all(isinstance(t, dict) for t in value):
                raise FileFormatError(
                    f"{name} must be an array of tables ([[{name}]] sections)", path=path
                )
            tables[name] = value
            continue
        if name not in DEFAULTS:
            known = ", ".join(DEFAULTS)
            raise FileFormatError(f"unknown setting {name!r} (known: {known})", path=path)
        expected = type(DEFAULTS[name])
        if expected is float and type(value) is int:
            value = float(value)  # TOML writes 15 for 15.0
        if type(value) is not expected:
            raise FileFormatError(
                f"{name} must be a {expected.__name__}, not {type(value).__name__}", path=path
            )
        if expected in (int, float) and value < 0:
            raise FileFormatError(f"{name} must not be negative", path=path)
        values[name] = value
        sources[name] = str(path)
    return Config(values, sources, path, tables)
