"""The settings the simulator honours: read from microsip.ini at start-up, and written back."""

from __future__ import annotations

import dataclasses
import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass

from microsip_bridge.microsip.cmdline import profile_string_as_read
from microsip_bridge.microsip.commands import S22, Version
from microsip_bridge.microsip.contact import Contact, contact_for_number
from microsip_bridge.microsip.contacts_xml import read_contacts
from microsip_bridge.microsip.crt import wtoi
from microsip_bridge.microsip.hook_keys import HOOK_KEYS
from microsip_bridge.microsip.inifile import IniDocument
from microsip_bridge.model import Event
from microsip_bridge.sim.folder import SimFolder
from microsip_bridge.sim.records import SimCall

SETTINGS = "Settings"


@dataclass(frozen=True, slots=True)
class SimSettings:
    """What MicroSIP reads from [Settings] (and the active account) at start-up (facts §3.4)."""

    hooks: Mapping[Event, str]
    single_mode: bool = True
    call_waiting: bool = True
    max_concurrent_calls: int = 0
    deny_incoming: str = "button"
    dnd: bool = False
    auto_answer: str = "button"
    aa: bool = False
    auto_answer_delay: float = 0.0
    auto_answer_calls: str = ""
    auto_answer_numbers: tuple[str, ...] = ()
    disable_name_lookup: bool = False
    account_id: int = 1
    account_domain: str = ""

    @classmethod
    def from_ini(cls, doc: IniDocument) -> SimSettings:
        def text(key: str, default: str = "") -> str:
            value = doc.get(SETTINGS, key)
            return default if value is None else value

        def number(key: str, default: int) -> int:
            # GetPrivateProfileInt: the default when absent, else the leading integer (0 if none).
            value = doc.get(SETTINGS, key)
            return default if value is None else wtoi(value)

        hooks: dict[Event, str] = {}
        for event, key in HOOK_KEYS.items():
            raw = doc.get_raw(SETTINGS, key)
            hooks[event] = "" if raw is None else profile_string_as_read(raw)
        account_id = number("accountId", 1)
        if account_id == 0 and not number("enableLocalAccount", 0):
            account_id = 1  # facts §3.4: 0 is forced to 1 unless enableLocalAccount
        patterns = text("autoAnswerNumber").replace("|", ";").split(";")
        return cls(
            hooks=hooks,
            single_mode=number("singleMode", 1) != 0,
            call_waiting=number("callWaiting", 1) != 0,
            max_concurrent_calls=max(0, number("maxConcurrentCalls", 0)),
            deny_incoming=text("denyIncoming", "button"),
            dnd=number("DND", 0) != 0,
            auto_answer=text("autoAnswer", "button"),
            aa=number("AA", 0) != 0,
            auto_answer_delay=float(max(0, number("autoAnswerDelay", 0))),
            auto_answer_calls=text("autoAnswerCalls", ""),
            auto_answer_numbers=tuple(p.strip() for p in patterns if p.strip()),
            disable_name_lookup=number("disableNameLookup", 0) != 0,
            account_id=account_id,
            account_domain=account_domain(doc, account_id),
        )

    def rejection(self, call: SimCall, others: list[SimCall]) -> str:
        """Why MicroSIP rejects ``call`` at once (no tab, no [Calls] entry), or "" when it
        rings; ``others`` are the calls already up."""
        deny = self.deny_incoming.casefold()
        # Only the DND toggle and "all" are modelled; the user/domain variants of denyIncoming
        # need the caller's full URI matched against the account (not in the facts).
        if deny == "all":
            return "denyIncoming=all"
        if deny == "button" and self.dnd:
            return "do not disturb"
        if any(c.number == call.number for c in others):
            return "a call from this number is already up"
        if others and not self.call_waiting:
            return "callWaiting=0"
        if self.max_concurrent_calls and len(others) >= self.max_concurrent_calls:
            return f"maxConcurrentCalls={self.max_concurrent_calls}"
        return ""

    def auto_answers(self, call: SimCall, others: list[SimCall], forced: bool | None) -> bool:
        """Whether ``call`` is auto-answered: ``forced`` None follows autoAnswer (and AA), then
        autoAnswerNumber and autoAnswerCalls decide with ``others`` up (facts §3.4)."""
        if forced is None:
            mode = self.auto_answer.casefold()
            wanted = mode == "all" or (mode == "button" and self.aa)
        else:
            wanted = forced
        if not wanted:
            return False
        if self.auto_answer_numbers and not any(
            fnmatch.fnmatchcase(call.user, pattern) for pattern in self.auto_answer_numbers
        ):
            return False  # facts §3.4: autoAnswerNumber limits it to matching callers
        policy = self.auto_answer_calls.casefold()
        if policy == "all":
            return True
        if policy == "hold":
            return all(c.held for c in others)
        return not others


def account_domain(doc: IniDocument, account_id: int) -> str:
    """The domain of [AccountN] ([Account0]: the local account), "" when that account is not
    valid (no section or no domain, facts §3.5)."""
    if account_id < 0:
        return ""
    return (doc.get(f"Account{account_id}", "domain") or "").strip()


def lookup_name(contacts: list[Contact], number: str) -> str:
    """The name MicroSIP shows for the caller ``number`` (facts §4.4), "" when no contact
    matches."""
    contact = contact_for_number(contacts, number)
    return "" if contact is None else contact.display_name


class IniSettings:
    """The settings a running simulator holds: what it read at start-up ([Settings], the active
    account, Contacts.xml), as the DND toggle and account switches change them, and its writes
    to [Settings]. Callers hold the simulator's lock.

    MicroSIP reads them once, at start-up (facts §3.2): a real one needs a restart to see an
    edit, and :meth:`load` again is the tests' shortcut (Simulator.reload_settings).
    """

    def __init__(self, folder: SimFolder) -> None:
        self.folder = folder
        self.current = SimSettings(hooks={})
        self.contacts: list[Contact] = []
        self._snapshot: list[tuple[str, str]] = []

    def load(self) -> None:
        """Read [Settings], the active account and Contacts.xml (facts §3.2, §4.1)."""
        doc = IniDocument.load(self.folder.ini)
        self.current = SimSettings.from_ini(doc)
        self._snapshot = doc.items(SETTINGS)
        if self.folder.contacts.is_file():
            self.contacts = read_contacts(self.folder.contacts).loaded_by_microsip()
        else:
            self.contacts = []

    def contact_name(self, number: str) -> str:
        """The contact name MicroSIP shows for ``number`` ("" with disableNameLookup)."""
        return "" if self.current.disable_name_lookup else lookup_name(self.contacts, number)

    def write_version(self, version: Version) -> None:
        if version >= S22:
            # facts §3.2: every start also writes version=<x.y.z>
            self.folder.edit_ini(lambda doc: doc.set(SETTINGS, "version", str(version)))

    def write_back(self) -> None:
        """SettingsSave at exit: every [Settings] key from memory, i.e. the values as read (quotes
        removed, facts §2.6)."""

        def write(doc: IniDocument) -> None:
            for key, value in self._snapshot:
                # callsLastKey is left alone: it is re-read for each new entry.
                if key.casefold() == "callslastkey":
                    continue
                if key.casefold() == "dnd":
                    value = "1" if self.current.dnd else "0"
                doc.set(SETTINGS, key, value)

        self.folder.edit_ini(write)

    def set_dnd(self, on: bool) -> None:
        self.current = _replace(self.current, dnd=on)

    def switch_account(self, n: int) -> bool:
        """Make [AccountN] the active account; False when it is not a valid account."""
        doc = IniDocument.load(self.folder.ini)
        domain = account_domain(doc, n)
        if not domain:
            return False
        # facts §1.6 3: the account becomes the active one, saved to the ini, and re-registers.
        self.folder.edit_ini(lambda d: d.set(SETTINGS, "accountId", str(n)))
        self.current = _replace(self.current, account_id=n, account_domain=domain)
        return True


def _replace(settings: SimSettings, **changes: object) -> SimSettings:
    return dataclasses.replace(settings, **changes)  # type: ignore[arg-type]
