"""The directory response: MicroSIP's contacts, with presence lamps from the calls on now.

**Items.** The bridge keeps no contacts of its own; the contacts are MicroSIP's Contacts.xml,
beside the daemon's ini. Only those a directory gave MicroSIP (``directory="1"``) are served as
items, unchanged. MicroSIP merges a directory response into its *directory* contacts only: an
item with the number of one of the user's own contacts would be added as a second, directory
copy of it (3.20.5 ``ContactsAdd``), while a directory contact missing from the response is
deleted. Serving exactly the directory contacts it holds is the one answer that adds nothing
and deletes nothing.

**Presence** (3.22's ``presence`` list, JSON only: the XML shapes and 3.20 have none). Every
contact named by a number on a call now gets a lamp: ``busy`` while connected, ``ring`` while
ringing or being dialled. A contact is named by a number as MicroSIP names a caller
(``GetNameByNumber``, facts §4.4): the user part of one of its numbers equals the number, else
(ignoring blanks, dashes, dots and brackets) a number of more than 3 characters that the call's
number ends with, at most 3 characters longer. Other contacts get ``online``, the lamp of a free
line, so a lamp goes back when the call ends; except those with ``presence="1"``, whose lamp
SIP presence keeps (we only override it while they are on a call with us).
"""

from __future__ import annotations

import os
import threading
import urllib.parse
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from microsip_bridge.directory import DEFAULT_REFRESH, MAX_REFRESH, MIN_REFRESH
from microsip_bridge.errors import BridgeError, DirectoryUnavailableError
from microsip_bridge.microsip.contact import Contact, ContactIndex, number_part
from microsip_bridge.microsip.contacts_xml import prepare_contact, read_contacts
from microsip_bridge.microsip.directory import PresenceUpdate, to_directory_json, to_directory_xml
from microsip_bridge.microsip.directory_url import check_directory_url
from microsip_bridge.microsip.locate import CONTACTS_NAME
from microsip_bridge.model import CallState

FORMATS = ("json", "xml")
STATUS_CONNECTED = "busy"
STATUS_RINGING = "ring"
STATUS_IDLE = "online"
_RANK = {CallState.CONNECTED: 2, CallState.RINGING: 1, CallState.DIALING: 1}


def status_of(state: CallState) -> str:
    """The lamp for a number on a call in ``state``."""
    return STATUS_CONNECTED if state is CallState.CONNECTED else STATUS_RINGING


def user_part(number: str) -> str:
    """A contact number's user part: no scheme, nothing from ``@``, ``;`` or ``,`` on."""
    return number_part(number)


class PresenceIndex:
    """MicroSIP's contacts (prepared as it holds them) indexed by every number they carry,
    with MicroSIP's own caller-name rule (microsip/contact.py :class:`ContactIndex`), so
    that a call's number finds the contacts it names in a few lookups."""

    def __init__(self, contacts: Iterable[Contact]) -> None:
        self.contacts = [p for p in map(prepare_contact, contacts) if p is not None]
        self._index = ContactIndex(self.contacts, every_number=True)

    def named_by(self, call_number: str) -> list[Contact]:
        """The contacts ``call_number`` names: exact matches, else suffix matches."""
        return self._index.named_by(call_number)

    def presence(self, lines: Mapping[str, CallState]) -> list[PresenceUpdate]:
        """The presence list given the numbers on calls now and their states; one entry per
        contact number (see the module docstring)."""
        lamps: dict[str, CallState] = {}
        for call_number, state in lines.items():
            for contact in self.named_by(call_number):
                now = lamps.get(contact.number)
                if now is None or _RANK[state] > _RANK[now]:
                    lamps[contact.number] = state
        out: list[PresenceUpdate] = []
        seen: set[str] = set()
        for contact in self.contacts:
            if contact.number in seen:
                continue
            seen.add(contact.number)
            lamp = lamps.get(contact.number)
            if lamp is not None:
                out.append(PresenceUpdate(contact.number, status_of(lamp)))
            elif not contact.presence:
                out.append(PresenceUpdate(contact.number, STATUS_IDLE))
        return out


def presence_for(
    contacts: Sequence[Contact], lines: Mapping[str, CallState]
) -> list[PresenceUpdate]:
    """:meth:`PresenceIndex.presence` of ``contacts`` (as MicroSIP loaded them)."""
    return PresenceIndex(contacts).presence(lines)


def directory_items(contacts: Iterable[Contact]) -> list[Contact]:
    """The contacts to serve as items: those a directory gave MicroSIP (module docstring)."""
    return [c for c in contacts if c.directory]


@dataclass(frozen=True, slots=True)
class Snapshot:
    """MicroSIP's contacts as read once: the items to serve and the index for presence."""

    contacts: list[Contact]
    items: list[Contact]
    index: PresenceIndex

    @classmethod
    def of(cls, contacts: Sequence[Contact]) -> Snapshot:
        return cls(list(contacts), directory_items(contacts), PresenceIndex(contacts))


def render(
    contacts: Sequence[Contact] | Snapshot,
    lines: Mapping[str, CallState],
    fmt: str = "json",
    refresh: int = DEFAULT_REFRESH,
) -> tuple[bytes, str]:
    """The response body and its media type, in MicroSIP's usersDirectory shapes (facts §4.6):
    JSON ``{"refresh", "silent", "items", "presence"}`` or XML ``<contacts refresh silent>``.
    ``silent``: no error balloon in MicroSIP when the daemon is briefly away."""
    snap = contacts if isinstance(contacts, Snapshot) else Snapshot.of(contacts)
    if fmt == "json":
        text = to_directory_json(
            snap.items, refresh=refresh, silent=True, presence=snap.index.presence(lines)
        )
        return text.encode("utf-8"), "application/json"
    if fmt == "xml":
        return to_directory_xml(snap.items, refresh=refresh, silent=True), "application/xml"
    raise BridgeError(f"no directory format {fmt!r} (known: {', '.join(FORMATS)})")


@dataclass(frozen=True, slots=True)
class _Loaded:
    signature: tuple[int, int, int]
    snapshot: Snapshot


_EMPTY = Snapshot.of([])


class ContactsSource:
    """MicroSIP's contacts for the directory, read from ``<ini folder>/Contacts.xml`` again only
    when the file changed. ``ini`` None: the daemon does not know MicroSIP's files, so there is
    no directory to serve (DirectoryUnavailableError, never an empty one: that would delete
    MicroSIP's directory contacts)."""

    def __init__(self, ini: Path | None) -> None:
        self.path = None if ini is None else ini.parent / CONTACTS_NAME
        self._loaded: _Loaded | None = None
        self._lock = threading.Lock()

    def contacts(self) -> list[Contact]:
        """The contacts MicroSIP loads; [] when it has no Contacts.xml yet."""
        return self.snapshot().contacts

    def snapshot(self) -> Snapshot:
        """:class:`Snapshot` of the contacts MicroSIP loads (empty: no Contacts.xml yet)."""
        if self.path is None:
            raise DirectoryUnavailableError(
                "the daemon does not know MicroSIP's microsip.ini (start it with --ini or "
                "--microsip), so it has no contacts to serve"
            )
        with self._lock:
            try:
                before = _signature(self.path)
            except FileNotFoundError:
                self._loaded = None
                return _EMPTY
            if self._loaded is not None and self._loaded.signature == before:
                return self._loaded.snapshot
            try:
                contacts = read_contacts(self.path).loaded_by_microsip()
                after = _signature(self.path)
            except (BridgeError, OSError) as exc:
                # MicroSIP rewrites the file in place: a read may meet it half written.
                raise DirectoryUnavailableError(
                    f"cannot read MicroSIP's contacts now: {exc}"
                ) from None
            if after != before:
                raise DirectoryUnavailableError("Contacts.xml changed while it was read")
            self._loaded = _Loaded(before, Snapshot.of(contacts))
            return self._loaded.snapshot


def _signature(path: Path) -> tuple[int, int, int]:
    st = os.stat(path)
    return (st.st_mtime_ns, st.st_size, st.st_ino)


def directory_url(
    host: str,
    port: int,
    key: str,
    *,
    fmt: str = "json",
    refresh: int = DEFAULT_REFRESH,
    basic_auth: bool = False,
) -> str:
    """The URL MicroSIP should fetch: the daemon's directory with the key in the query
    (``?key=``) or as the password of HTTP basic authentication (``user:key@``), both of which
    MicroSIP sends (facts §4.6). Raises UnsafeInputError for a URL MicroSIP would not fetch."""
    if fmt not in FORMATS:
        raise BridgeError(f"no directory format {fmt!r} (known: {', '.join(FORMATS)})")
    if not MIN_REFRESH <= refresh <= MAX_REFRESH:
        raise BridgeError(f"refresh must be {MIN_REFRESH}-{MAX_REFRESH} seconds, not {refresh}")
    authority = f"[{host}]" if ":" in host else host
    query = {"refresh": str(refresh)}
    if basic_auth:
        authority = f"microsip:{key}@{authority}"
    else:
        query = {"key": key, **query}
    url = f"http://{authority}:{port}/directory.{fmt}?{urllib.parse.urlencode(query)}"
    return check_directory_url(url)


def url_key(url: str) -> str | None:
    """The key a directory URL carries (query or basic-auth password), or None."""
    parts = urllib.parse.urlsplit(url)
    if parts.password:
        return urllib.parse.unquote(parts.password)
    values = urllib.parse.parse_qs(parts.query).get("key")
    return values[0] if values else None


def mask_key(url: str, key: str | None) -> str:
    """``url`` with its key shown as ``***`` (for status lines and logs)."""
    return url.replace(key, "***") if key else url
