"""The daemon's settings: from config.toml (microsip_bridge.config), command-line options on top."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from microsip_bridge.config import DEFAULTS
from microsip_bridge.errors import BridgeError
from microsip_bridge.server.cors import normalize_origin
from microsip_bridge.server.security import is_loopback, split_list

if TYPE_CHECKING:
    from microsip_bridge.config import Config

# How long the ingestion endpoint waits for the commit before answering 503 (the hook itself
# gives up after 0.5 s and spools; other clients may wait this long).
COMMIT_TIMEOUT = 5.0
WILDCARD_HOSTS = frozenset({"0.0.0.0", "::", ""})  # noqa: S104 - recognised, not bound


@dataclass(frozen=True, slots=True)
class DaemonSettings:
    """Everything ``serve`` needs; the defaults are config.py's. ``database`` empty: SQLite
    ``bridge.db`` in ``home``. ``ini``: MicroSIP's microsip.ini for reconciliation and the
    sweep (None: none). Times in seconds (``session_days`` in days). A host other than loopback
    needs ``public``. ``allowed_hosts`` and ``allowed_origins``: comma-separated."""

    home: Path
    host: str = DEFAULTS["host"]
    port: int = DEFAULTS["port"]
    database: str = DEFAULTS["database"]
    ini: Path | None = None
    reject_timeout: float = DEFAULTS["reject_timeout"]
    spool_interval: float = DEFAULTS["spool_interval"]
    sweep_interval: float = DEFAULTS["sweep_interval"]
    public: bool = DEFAULTS["public"]
    allowed_hosts: str = DEFAULTS["allowed_hosts"]
    allowed_origins: str = DEFAULTS["allowed_origins"]
    session_days: float = DEFAULTS["session_days"]
    commit_timeout: float = COMMIT_TIMEOUT
    # Read by the API: which hook program counts as ours, the largest Contacts.xml it reads.
    hook_program: str = DEFAULTS["hook_program"]
    max_file_mb: int = DEFAULTS["max_file_mb"]
    exe: Path | None = None  # MicroSIP's exe, when known: the microsip.exe control transport
    control_transport: str = DEFAULTS["control_transport"]
    control_cooldown: float = DEFAULTS["control_cooldown"]
    control_rate: float = DEFAULTS["control_rate"]
    dial_timeout: float = DEFAULTS["dial_timeout"]
    default_region: str = DEFAULTS["default_region"]
    rules_rate: float = DEFAULTS["rules_rate"]
    mask_numbers: bool = DEFAULTS["mask_numbers"]
    retention_days: int = DEFAULTS["retention_days"]
    # How often the daemon applies retention_days (seconds); tests make it short.
    retention_interval: float = 3600.0
    crm_url: str = DEFAULTS["crm_url"]
    crm_name_pointer: str = DEFAULTS["crm_name_pointer"]
    crm_timeout: float = DEFAULTS["crm_timeout"]
    crm_cache_ttl: float = DEFAULTS["crm_cache_ttl"]
    crm_token_env: str = DEFAULTS["crm_token_env"]
    webhook_timeout: float = DEFAULTS["webhook_timeout"]
    webhook_max_attempts: int = DEFAULTS["webhook_max_attempts"]
    webhook_max_age: float = DEFAULTS["webhook_max_age"]
    webhook_workers: int = DEFAULTS["webhook_workers"]
    webhook_backoff: float = DEFAULTS["webhook_backoff"]

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise BridgeError(f"port must be 0-65535, not {self.port}")
        if not self.host.strip():
            raise BridgeError("host must not be empty")
        names = ("reject_timeout", "spool_interval", "sweep_interval", "commit_timeout")
        for name in (*names, "dial_timeout", "crm_timeout"):
            value = getattr(self, name)
            if not value > 0:
                raise BridgeError(f"{name} must be more than 0 seconds, not {value}")
        if self.control_transport not in ("auto", "window", "exe", "simulator"):
            raise BridgeError(
                "control_transport must be auto, window, exe or simulator, not "
                f"{self.control_transport!r}"
            )
        if self.crm_url:
            from microsip_bridge.contacts.crm import check_pointer, check_template

            check_template(self.crm_url)
            check_pointer(self.crm_name_pointer)
        for name in ("webhook_timeout", "webhook_max_age"):
            if not getattr(self, name) > 0:
                raise BridgeError(f"{name} must be more than 0, not {getattr(self, name)}")
        for name in ("webhook_max_attempts", "webhook_workers"):
            if not 1 <= getattr(self, name) <= 1000:
                raise BridgeError(f"{name} must be 1-1000, not {getattr(self, name)}")
        for name in ("control_cooldown", "control_rate", "crm_cache_ttl"):
            if not getattr(self, name) >= 0:
                raise BridgeError(f"{name} must not be negative")
        if self.retention_days < 0:
            raise BridgeError(f"retention_days must not be negative, not {self.retention_days}")
        if not self.retention_interval > 0:
            raise BridgeError("retention_interval must be more than 0 seconds")
        if not self.session_days > 0:
            raise BridgeError(f"session_days must be more than 0, not {self.session_days}")
        if not self.public and not is_loopback(self.host):
            raise BridgeError(
                f"{self.host} is not a loopback address: other machines could reach the daemon "
                "there, which needs --public (or the public setting)"
            )
        for name in self.host_names:
            if not name or any(c in name for c in "/[]@?#"):
                raise BridgeError(f"allowed_hosts: {name!r} is not a host name")
        for origin in split_list(self.allowed_origins):
            if normalize_origin(origin) is None:
                raise BridgeError(
                    f"allowed_origins: {origin!r} is not an origin (scheme://host[:port])"
                )

    @classmethod
    def from_config(cls, config: Config, home: Path, **overrides: Any) -> DaemonSettings:
        """The settings in ``config`` (declared in config.SETTINGS); ``overrides`` that are not
        None win (the CLI's options). Raises BridgeError for values out of range."""
        # As declared: a Config built in code may hold 15 for a setting declared as 15.0.
        values: dict[str, Any] = {
            name: type(DEFAULTS[name])(config[name]) for name in SETTING_NAMES
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(home=home, **values)

    def with_(self, **changes: Any) -> DaemonSettings:
        """A copy with some fields changed."""
        return replace(self, **changes)

    @property
    def max_bytes(self) -> int:
        """The largest file the API reads (Contacts.xml), in bytes."""
        return self.max_file_mb * 1024 * 1024

    @property
    def database_url(self) -> str | None:
        """The database URL, or None for the default SQLite file in ``home``."""
        return self.database.strip() or None

    @property
    def host_names(self) -> list[str]:
        """The ``allowed_hosts`` setting's names."""
        return split_list(self.allowed_hosts)

    @property
    def origins(self) -> list[str]:
        """The ``allowed_origins`` setting's origins."""
        return split_list(self.allowed_origins)

    @property
    def connect_host(self) -> str:
        """Where a local client connects: loopback when the daemon listens on every address."""
        if self.host in WILDCARD_HOSTS:
            return "::1" if ":" in self.host else "127.0.0.1"
        return self.host


# The config.toml settings the daemon reads: its fields that config.py declares.
SETTING_NAMES = tuple(f.name for f in fields(DaemonSettings) if f.name in DEFAULTS)
