"""What `doctor` finds in a MicroSIP set-up: each part read on its own, problems with fixes."""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Any

from microsip_bridge.errors import BridgeError
from microsip_bridge.microsip.accounts import (
    Account,
    PasswordState,
    active_account_id,
    reachable_accounts,
    read_accounts,
)
from microsip_bridge.microsip.contacts_xml import ContactsFile, read_contacts
from microsip_bridge.microsip.history import CallHistory, read_history
from microsip_bridge.microsip.hook_keys import HookState, HookStatus, hooks_status
from microsip_bridge.microsip.inifile import IniDocument, IniEncoding
from microsip_bridge.microsip.locate import MicroSIPLocation


class Level(enum.StrEnum):
    ERROR = "error"  # something is broken for MicroSIP or for the bridge
    WARNING = "warning"  # works, but not as the user probably expects
    INFO = "info"


@dataclass(frozen=True, slots=True)
class Finding:
    level: Level
    message: str
    fix: str = ""


@dataclass
class Diagnosis:
    """Everything doctor reports. Passwords are never read into it (see ``accounts``)."""

    location: MicroSIPLocation
    running: bool | None
    ini: IniDocument | None = None
    version: str | None = None
    accounts: list[Account] = field(default_factory=list)
    active_account: int | None = None
    hooks: list[HookStatus] = field(default_factory=list)
    contacts: ContactsFile | None = None
    history: CallHistory | None = None
    findings: list[Finding] = field(default_factory=list)
    # Files the user named (--ini, --contacts) that do not exist: doctor then exits 4.
    missing: list[Path] = field(default_factory=list)

    def add(self, level: Level, message: str, fix: str = "") -> None:
        self.findings.append(Finding(level, message, fix))

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.level is Level.ERROR]

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape of ``doctor --format json`` (documented in the README)."""
        loc = self.location
        history = self.history
        return {
            "microsip": {
                "folder": str(loc.folder),
                "mode": loc.mode,
                "found_by": loc.found_by,
                "exe": str(loc.exe) if loc.exe else None,
                "ini": str(loc.ini),
                "contacts": str(loc.contacts),
                "version": self.version,
                "running": self.running,
            },
            "ini": None
            if self.ini is None
            else {
                "encoding": self.ini.encoding.value,
                "line_ends": "CRLF" if self.ini.newline == "\r\n" else "LF",
            },
            "accounts": [
                {
                    "id": a.id,
                    "label": a.label,
                    "server": a.server,
                    "domain": a.domain,
                    "username": a.username,
                    "transport": getattr(a.transport, "value", a.transport),
                    "password": a.password.value,
                    "valid": a.valid,
                    "active": a.id == self.active_account,
                }
                for a in self.accounts
            ],
            "hooks": [
                {"event": h.event.value, "key": h.key, "state": h.state.value, "detail": h.reason}
                for h in self.hooks
            ],
            "contacts": None
            if self.contacts is None
            else {
                "count": len(self.contacts.contacts),
                "loaded_by_microsip": len(self.contacts.loaded_by_microsip()),
                "problems": [str(p) for p in self.contacts.problems],
            },
            "history": None
            if history is None
            else {
                "count": len(history.entries),
                "oldest": history.entries[0].started_at.isoformat().replace("+00:00", "Z")
                if history.entries
                else None,
                "newest": history.entries[-1].started_at.isoformat().replace("+00:00", "Z")
                if history.entries
                else None,
                "problems": [str(p) for p in history.problems],
            },
            "findings": [dataclasses.asdict(f) for f in self.findings],
        }


def diagnose(
    location: MicroSIPLocation,
    *,
    running: bool | None,
    hook_program: str | PurePath | None = None,
    max_contacts_bytes: int | None = None,
    ini_named: bool = False,
    contacts_named: bool = False,
) -> Diagnosis:
    """Read every part that exists; a damaged part becomes a finding, never an exception.

    ``ini_named``/``contacts_named``: the user named that file (--ini, --contacts), so its
    absence is an error listed in ``missing``, not a file MicroSIP has yet to create."""
    diag = Diagnosis(location, running)
    for note in location.notes:
        diag.add(Level.INFO, note)
    if running:
        diag.add(
            Level.WARNING,
            "MicroSIP is running: it rewrites microsip.ini and Contacts.xml from memory, so "
            "the bridge refuses to write them now",
            "close MicroSIP (microsip.exe /exit) before `hooks install` or `contacts import`",
        )
    _check_ini(diag, hook_program, ini_named)
    _check_contacts(diag, max_contacts_bytes, contacts_named)
    return diag


def _check_ini(diag: Diagnosis, hook_program: str | PurePath | None, named: bool) -> None:
    path = diag.location.ini
    if not path.exists() and named:
        diag.missing.append(path)
        diag.add(
            Level.ERROR,
            f"the ini given by --ini does not exist: {path}",
            "check the path, or pass --microsip with MicroSIP's exe or folder instead",
        )
        return
    if not path.exists():
        diag.add(
            Level.ERROR,
            f"no ini at {path}",
            "start MicroSIP once (it creates the file), or point --microsip/--ini at the "
            "right place",
        )
        return
    try:
        doc = IniDocument.load(path)
    except BridgeError as exc:
        diag.add(Level.ERROR, f"cannot read the ini: {exc}", "restore it from a backup")
        return
    diag.ini = doc
    diag.version = doc.get("Settings", "version") or None
    if not diag.version:
        diag.add(
            Level.INFO,
            "the ini has no version key: MicroSIP older than 3.22, or never started",
        )
    if doc.encoding is not IniEncoding.UTF16LE:
        non_ascii = any(ord(ch) > 127 for ch in doc.text())
        diag.add(
            Level.ERROR if non_ascii and doc.encoding is not IniEncoding.ANSI else Level.WARNING,
            f"the ini is {doc.encoding.value}; MicroSIP converts it to UTF-16LE at start-up, "
            "reading it as ANSI" + (", which garbles its non-ASCII text" if non_ascii else ""),
            "let MicroSIP convert it before adding non-ASCII text, or convert it yourself",
        )
    for section in doc.duplicate_sections():
        diag.add(
            Level.WARNING,
            f"section [{section}] appears more than once: MicroSIP reads only the first",
            "merge the sections",
        )
    _check_accounts(diag, doc)
    diag.hooks = hooks_status(doc, hook_program)
    _check_hooks(diag)
    try:
        diag.history = read_history(doc)
    except BridgeError as exc:  # read_history reports entries; this is the section itself
        diag.add(Level.ERROR, f"cannot read the call history: {exc}")
        return
    skipped = [p for p in diag.history.problems if p.skipped]
    if skipped:
        diag.add(
            Level.WARNING,
            f"{len(skipped)} call history entries cannot be read, e.g. {skipped[0]}",
            "see `microsip-bridge history --debug`",
        )


def _check_accounts(diag: Diagnosis, doc: IniDocument) -> None:
    diag.accounts = read_accounts(doc)
    diag.active_account = active_account_id(doc)
    if not diag.accounts:
        diag.add(Level.WARNING, "no SIP account is configured", "add one in MicroSIP")
        return
    reachable = {a.id for a in reachable_accounts(diag.accounts)}
    for account in diag.accounts:
        if not account.valid:
            diag.add(
                Level.WARNING,
                f"[Account{account.id}] has no domain, so MicroSIP ignores it",
                "set its domain in MicroSIP's account dialog",
            )
        elif account.id not in reachable:
            diag.add(
                Level.WARNING,
                f"[Account{account.id}] is unreachable: MicroSIP's account menu stops at the "
                "first missing or invalid account (number them from 1 without gaps)",
                "renumber the [AccountN] sections",
            )
        if account.password is PasswordState.CLEAR:
            diag.add(
                Level.INFO,
                f"[Account{account.id}] holds a clear-text password; MicroSIP encrypts it at "
                "its next start",
            )
    if diag.active_account and diag.active_account not in {a.id for a in diag.accounts}:
        diag.add(
            Level.ERROR,
            f"accountId={diag.active_account} names an account that does not exist",
            "choose an account in MicroSIP",
        )


def _check_hooks(diag: Diagnosis) -> None:
    states = [h.state for h in diag.hooks]
    for h in diag.hooks:
        if h.state is HookState.DAMAGED:
            diag.add(Level.ERROR, f"{h.key}: {h.reason}", "run `microsip-bridge hooks install`")
        elif h.state is HookState.OURS_ELSEWHERE:
            diag.add(Level.WARNING, f"{h.key}: {h.reason}", "run `microsip-bridge hooks install`")
    if HookState.OURS not in states and HookState.OURS_ELSEWHERE not in states:
        diag.add(
            Level.INFO,
            "the bridge's hooks are not installed: MicroSIP reports no call events to it",
            "run `microsip-bridge hooks install` while MicroSIP is closed",
        )
    elif any(s in (HookState.MISSING, HookState.FOREIGN) for s in states):
        missing = [h.key for h in diag.hooks if h.state in (HookState.MISSING, HookState.FOREIGN)]
        diag.add(
            Level.WARNING,
            f"only some hooks are the bridge's; not: {', '.join(missing)}",
            "run `microsip-bridge hooks install` (your own commands are kept and restored "
            "by uninstall)",
        )


def _check_contacts(diag: Diagnosis, max_bytes: int | None, named: bool) -> None:
    path: Path = diag.location.contacts
    if not path.exists() and named:
        diag.missing.append(path)
        diag.add(
            Level.ERROR,
            f"the Contacts.xml given by --contacts does not exist: {path}",
            "check the path, or leave out --contacts to use the one beside the ini",
        )
        return
    if not path.exists():
        diag.add(
            Level.INFO,
            f"no Contacts.xml at {path}; MicroSIP creates it when a contact is added",
        )
        return
    try:
        if max_bytes is None:
            diag.contacts = read_contacts(path)
        else:
            diag.contacts = read_contacts(path, max_bytes=max_bytes)
    except BridgeError as exc:
        diag.add(Level.ERROR, f"cannot read the contacts: {exc}", "restore it from a backup")
        return
    for problem in diag.contacts.problems[:5]:
        diag.add(Level.WARNING, f"{path.name} {problem}")
    if len(diag.contacts.problems) > 5:
        diag.add(Level.WARNING, f"{len(diag.contacts.problems) - 5} more problems in {path.name}")


def microsip_status(ini: Path | None, hook_program: str | PurePath | None) -> dict[str, Any]:
    """What the daemon's status says of MicroSIP, whose ini is ``ini`` (None: the daemon knows
    of none): ``microsip`` (found, folder, ini, version, running, detail: why it is not found
    or cannot be read) and ``hooks``: the eight ``cmd*`` keys as ``hooks status`` sees them
    (empty when the ini cannot be read). Never raises for a missing or damaged ini."""
    from microsip_bridge.microsip.process import microsip_running

    found = ini is not None and ini.is_file()
    microsip: dict[str, Any] = {
        "found": found,
        "folder": None if ini is None else str(ini.parent),
        "ini": None if ini is None else str(ini),
        "version": None,
        "running": None,
        "detail": None,
    }
    hooks: list[dict[str, Any]] = []
    if ini is None:
        microsip["detail"] = "the daemon was started without a MicroSIP ini"
    elif not found:
        microsip["detail"] = f"no ini at {ini}"
    else:
        try:
            microsip["running"] = microsip_running(ini)
        except (BridgeError, OSError):
            microsip["running"] = None  # cannot tell, as on a system without windows to ask
        try:
            doc = IniDocument.load(ini)
        except BridgeError as exc:
            microsip["detail"] = f"cannot read the ini: {exc}"
        else:
            microsip["version"] = doc.get("Settings", "version") or None
            hooks = [
                {"event": h.event.value, "key": h.key, "state": h.state.value, "detail": h.reason}
                for h in hooks_status(doc, hook_program)
            ]
    return {"microsip": microsip, "hooks": hooks}
