"""The usersDirectory setting: a URL MicroSIP can fetch, set in and removed from microsip.ini.

MicroSIP reads ``[Settings] usersDirectory`` once, at start-up, into a 256-character buffer
(255 characters kept) and fetches it through WinINet (facts §3.4, §4.6): only ``http`` and
``https`` work, ``user:pass@`` in the URL becomes HTTP basic authentication, ``%s`` and ``{...}``
are placeholders (and make the first load wait for a SIP registration), and 3.22 turns every
literal ``*`` into ``%``. A URL that would not reach us intact is refused here.

Installing saves what the key held before (in a JSON file in the bridge's home, as ``hooks
install`` saves the users' own commands), so that uninstalling puts the user's own directory
back byte for byte. The order that loses nothing is the hooks' one:
:meth:`DirectoryPlan.save_first`, then ``doc.save()``, then :meth:`DirectoryPlan.commit`.
"""

from __future__ import annotations

import datetime as dt
import enum
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path, PurePath

from microsip_bridge.errors import BridgeError, UnsafeInputError
from microsip_bridge.microsip.cmdline import MAX_PROFILE_VALUE_CHARS
from microsip_bridge.microsip.crt import utf16_len
from microsip_bridge.microsip.hook_keys import SavedHooks, SavedValue
from microsip_bridge.microsip.inifile import IniDocument, profile_value
from microsip_bridge.wire import bridge_home

SECTION = "Settings"
KEY = "usersDirectory"
SAVED_DIRECTORY_NAME = "saved-directory.json"
# The paths the bridge's daemon serves the directory on (server/directory.py).
BRIDGE_PATHS = ("/directory.json", "/directory.xml")
MAX_URL_CHARS = MAX_PROFILE_VALUE_CHARS


class DirectoryAction(enum.StrEnum):
    KEEP = "keep"  # already this URL
    INSTALL = "install"  # was empty, absent or the user's own (saved first)
    UPDATE = "update"  # ours, with another key, port or refresh
    RESTORE = "restore"  # uninstall: the saved value is put back
    DELETE = "delete"  # uninstall: the key was absent before install
    CLEAR = "clear"  # uninstall: ours, nothing saved: emptied
    LEAVE = "leave"  # uninstall: not ours, left as it is


def check_directory_url(url: str) -> str:
    """``url`` if MicroSIP would fetch exactly it; else UnsafeInputError saying why."""
    if utf16_len(url) > MAX_URL_CHARS:
        raise UnsafeInputError(
            f"the directory URL has {utf16_len(url)} characters; MicroSIP reads only "
            f"{MAX_URL_CHARS} of usersDirectory"
        )
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in url) or url != url.strip():
        raise UnsafeInputError("the directory URL holds control characters or blanks at its ends")
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UnsafeInputError(
            f"MicroSIP fetches only http:// and https:// directory URLs, not {url!r}"
        )
    if "%s" in url or "{" in url:
        raise UnsafeInputError(
            "MicroSIP fills %s and {...} in a directory URL with account values: not allowed here"
        )
    if "*" in url:
        raise UnsafeInputError("MicroSIP 3.22 turns every * in a directory URL into %")
    return url


def is_bridge_url(value: str | None) -> bool:
    """``value`` (an ini value as MicroSIP reads it) is a directory URL of a bridge daemon."""
    if not value:
        return False
    try:
        parts = urllib.parse.urlsplit(value)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and parts.path in BRIDGE_PATHS


def current_url(doc: IniDocument) -> str | None:
    """usersDirectory as MicroSIP reads it (None: absent)."""
    raw = doc.get_raw(SECTION, KEY)
    return None if raw is None else profile_value(raw)


@dataclass(frozen=True, slots=True)
class DirectoryChange:
    """What the key holds before and after (the text after ``=``; None: no such key)."""

    action: DirectoryAction
    old: str | None
    new: str | None
    note: str = ""

    @property
    def changes_ini(self) -> bool:
        return self.old != self.new


@dataclass
class DirectoryPlan:
    """What install or uninstall did to an IniDocument in memory, and will do to the store of
    saved values (see the module docstring for the order)."""

    ini: str
    change: DirectoryChange
    store: SavedHooks
    store_update: SavedValue | None = None
    forget: bool = False
    _saved: bool = field(default=False, repr=False)
    _committed: bool = field(default=False, repr=False)

    @property
    def changes_ini(self) -> bool:
        return self.change.changes_ini

    def save_first(self) -> None:
        """Keep the user's value before the ini is written (idempotent)."""
        if not self._saved and self.store_update is not None:
            self.store.update(self.ini, {KEY: self.store_update})
        self._saved = True

    def commit(self) -> None:
        """After the ini is written: forget a saved value that was put back (idempotent)."""
        self.save_first()
        if not self._committed and self.forget:
            self.store.update(self.ini, {KEY: None})
        self._committed = True


def saved_store(home: Path | None = None) -> SavedHooks:
    """Where the user's own usersDirectory waits for uninstall (one entry per ini)."""
    return SavedHooks((home or bridge_home()) / SAVED_DIRECTORY_NAME)


def _ini_key(doc: IniDocument, ini: str | PurePath | None) -> str:
    path = ini if ini is not None else doc.path
    if path is None:
        raise BridgeError("the ini has no path: a saved directory URL is kept per ini file")
    return SavedHooks.ini_key(path)


def install_directory(
    doc: IniDocument, url: str, store: SavedHooks, *, ini: str | PurePath | None = None
) -> DirectoryPlan:
    """Point usersDirectory at ``url`` in ``doc`` (in memory). The user's own value (a URL,
    empty or absent) is recorded for the store first; a bridge URL is replaced without saving.
    Installing twice changes nothing."""
    check_directory_url(url)
    ini_key = _ini_key(doc, ini)
    raw = doc.get_raw(SECTION, KEY)
    plan = DirectoryPlan(ini_key, DirectoryChange(DirectoryAction.KEEP, raw, raw), store)
    if raw is not None and profile_value(raw) == url:
        return plan
    if is_bridge_url(None if raw is None else profile_value(raw)):
        plan.change = DirectoryChange(DirectoryAction.UPDATE, raw, url, "a bridge URL before")
    else:
        previous = store.entries(ini_key).get(KEY)
        now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        if previous is None:
            plan.store_update = SavedValue(raw, now)
        elif previous.value != raw:
            plan.store_update = SavedValue(raw, now, (*previous.superseded, previous.value))
        note = "saved for uninstall" if raw else "was empty" if raw is not None else "was absent"
        plan.change = DirectoryChange(DirectoryAction.INSTALL, raw, url, note)
    doc.set(SECTION, KEY, url)
    return plan


def uninstall_directory(
    doc: IniDocument, store: SavedHooks, *, ini: str | PurePath | None = None
) -> DirectoryPlan:
    """Put back what install saved, if usersDirectory still holds a bridge URL; a URL of
    someone else's is left alone (and its saved value kept, unless it is that very value)."""
    ini_key = _ini_key(doc, ini)
    raw = doc.get_raw(SECTION, KEY)
    previous = store.entries(ini_key).get(KEY)
    plan = DirectoryPlan(ini_key, DirectoryChange(DirectoryAction.LEAVE, raw, raw), store)
    if not is_bridge_url(None if raw is None else profile_value(raw)):
        if previous is not None and previous.value == raw:
            plan.forget = True
            plan.change = DirectoryChange(
                DirectoryAction.LEAVE, raw, raw, "not a bridge URL: already the saved value"
            )
        else:
            plan.change = DirectoryChange(DirectoryAction.LEAVE, raw, raw, "not a bridge URL")
        return plan
    plan.forget = previous is not None
    if previous is None:
        doc.set(SECTION, KEY, "")
        plan.change = DirectoryChange(DirectoryAction.CLEAR, raw, "", "nothing was saved")
    elif previous.value is None:
        doc.delete(SECTION, KEY)
        plan.change = DirectoryChange(DirectoryAction.DELETE, raw, None, "was absent")
    else:
        doc.set(SECTION, KEY, previous.value)
        plan.change = DirectoryChange(
            DirectoryAction.RESTORE, raw, previous.value, "saved at install"
        )
    return plan
