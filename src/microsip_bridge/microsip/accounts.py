"""MicroSIP's SIP accounts ([AccountN] sections), read without ever exposing a password."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from pathlib import Path

from microsip_bridge.errors import BridgeError
from microsip_bridge.microsip.inifile import IniDocument

_ACCOUNT = re.compile(r"^account(\d+)$", re.IGNORECASE)
_HEX = re.compile(r"^[0-9a-fA-F]+$")
# The account menu addresses IDs up to 100 (facts §3.3).
MAX_ACCOUNTS = 100


class PasswordState(enum.Enum):
    """What is stored, never the password itself (facts §3.5)."""

    NONE = "none"
    ENCRYPTED = "encrypted"
    CLEAR = "clear text"


def password_state(value: str) -> PasswordState:
    """MicroSIP stores RC2-encrypted bytes as lowercase hex; RC2 works on 8-byte blocks, so the
    hex of a stored password is a whole number of 16-character blocks. Anything else is clear
    text, which MicroSIP accepts and encrypts at its next start (facts §3.5)."""
    if not value:
        return PasswordState.NONE
    if _HEX.match(value) and len(value) % 16 == 0:
        return PasswordState.ENCRYPTED
    return PasswordState.CLEAR


class Transport(enum.Enum):
    UDP = "udp"
    TCP = "tcp"
    TLS = "tls"
    UDP_TCP = "udp+tcp"


@dataclass(frozen=True, slots=True)
class Account:
    """One [AccountN] section; ``password`` is deliberately absent."""

    id: int
    label: str
    server: str
    proxy: str
    domain: str
    username: str
    auth_id: str
    display_name: str
    transport: Transport | str
    password: PasswordState
    # What MicroSIP puts before each number dialled on this account (facts §3.5).
    dialing_prefix: str = ""

    @property
    def valid(self) -> bool:
        """MicroSIP uses an account only if its section exists and ``domain`` is non-empty
        (facts §3.5)."""
        return bool(self.domain)

    @property
    def registers(self) -> bool:
        """An empty ``server`` means no registration: MicroSIP shows "Idle" (facts §3.5)."""
        return bool(self.server)

    @property
    def title(self) -> str:
        return self.label or (f"{self.username}@{self.domain}" if self.username else self.domain)


def _transport(value: str, present: bool) -> Transport | str:
    # Absent means UDP; present but empty means UDP+TCP (facts §3.5).
    if not present:
        return Transport.UDP
    lowered = value.lower()
    if lowered == "":
        return Transport.UDP_TCP
    for t in (Transport.UDP, Transport.TCP, Transport.TLS):
        if lowered == t.value:
            return t
    return value


def read_accounts(doc: IniDocument) -> list[Account]:
    """Every [AccountN] section with N >= 1, by N (Account0 is the local "call by IP" account)."""
    found: list[Account] = []
    for section in doc.sections():
        match = _ACCOUNT.match(section)
        if not match:
            continue
        n = int(match.group(1))
        if n < 1:
            continue

        def value(key: str, section: str = section) -> str:
            return doc.get(section, key) or ""

        found.append(
            Account(
                id=n,
                label=value("label"),
                server=value("server"),
                proxy=value("proxy"),
                domain=value("domain"),
                username=value("username"),
                auth_id=value("authID"),
                display_name=value("displayName"),
                transport=_transport(value("transport"), doc.get(section, "transport") is not None),
                password=password_state(value("password")),
                dialing_prefix=value("dialingPrefix").strip(),
            )
        )
    return sorted(found, key=lambda a: a.id)


def active_account_id(doc: IniDocument) -> int | None:
    """``accountId`` in [Settings]; 0 means the local account only (facts §3.4)."""
    raw = (doc.get("Settings", "accountId") or "").strip()
    return int(raw) if raw.isdigit() else None


def reachable_accounts(accounts: list[Account]) -> list[Account]:
    """The accounts MicroSIP's menu shows: numbered contiguously from 1, stopping at the first
    missing or invalid one (facts §3.3)."""
    by_id = {a.id: a for a in accounts}
    out: list[Account] = []
    n = 1
    while n in by_id and by_id[n].valid and n <= MAX_ACCOUNTS:
        out.append(by_id[n])
        n += 1
    return out


def dialing_prefix(doc: IniDocument) -> str:
    """The ``dialingPrefix`` of the account MicroSIP dials with: the active one
    (``accountId``), else the first it can use; "" when there is none."""
    accounts = reachable_accounts(read_accounts(doc))
    active = active_account_id(doc)
    for account in accounts:
        if account.id == active:
            return account.dialing_prefix
    return accounts[0].dialing_prefix if accounts else ""


def dialing_prefix_of(ini: Path | None) -> str:
    """:func:`dialing_prefix` of the microsip.ini at ``ini``; "" when there is none or it
    cannot be read (a missing prefix only makes fewer dialled numbers normalise)."""
    if ini is None:
        return ""
    try:
        return dialing_prefix(IniDocument.load(ini))
    except (BridgeError, OSError, ValueError):
        return ""
