"""Caller names: who a call's number is, from MicroSIP's contacts, the bridge's, or a CRM.

:class:`CallerNames` is an actions part (actions/service.py). Its ``prepare`` gives each call
without a name one, in this order:

1. MicroSIP's Contacts.xml: MicroSIP's own rule (``GetNameByNumber``, facts §4.4;
   microsip/contact.py :class:`ContactIndex`), then the same number once normalised (a contact
   saved as ``020 7946 0000`` names a call from ``+442079460000`` with region GB, and the other
   way round). Source ``microsip``.
2. The bridge's own contacts (``names import``; table bridge_contacts), by number key. Source
   ``bridge``.
3. The CRM lookup (contacts/crm.py), in the background: the name reaches the call through
   ``on_name`` (the daemon: :meth:`Ingestor.set_name`) when the answer comes. Source ``crm``.

A name the call already has stays: MicroSIP's [Calls] gave it (source ``microsip``).
``prepare`` runs on the writer thread: it reads in-memory indexes only. They are rebuilt by
:meth:`CallerNames.refresh` when Contacts.xml (its mtime and size) or the table (its count and
highest id) changed, at most once a second: on a thread of their own in the daemon, on demand
elsewhere. The daemon's start builds MicroSIP's rule's index (about a second with 100,000
contacts); equal E.164 forms (about 0.1 ms a number through libphonenumber: 15 s for
100,000) follow on that thread.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from microsip_bridge.errors import BridgeError
from microsip_bridge.microsip.contact import ContactIndex, match_key
from microsip_bridge.numbers import Normaliser, NumberKind

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine

    from microsip_bridge.contacts.crm import CrmLookup
    from microsip_bridge.model import Call, Happened

logger = logging.getLogger("microsip_bridge.names")

SOURCE_MICROSIP = "microsip"
SOURCE_BRIDGE = "bridge"
SOURCE_CRM = "crm"
SOURCES = (SOURCE_MICROSIP, SOURCE_BRIDGE, SOURCE_CRM)
# How often the indexes' files and table are looked at, in seconds.
REFRESH_EVERY = 1.0

NameSetter = Callable[[str, str, str], object]  # (call_id, name, source)


@dataclass(frozen=True, slots=True)
class NameMatch:
    """A caller's name, where it came from and the number (as that source has it) that
    matched."""

    name: str
    source: str
    number: str

    def as_dict(self) -> dict[str, str]:
        return {"name": self.name, "source": self.source, "number": self.number}


def is_only_the_number(name: str, number: str) -> bool:
    """Whether ``name`` is only the number: MicroSIP's [Calls] names an unknown caller by the
    number (facts §4.4), which is no name to keep."""
    key = match_key(name)
    return bool(key) and key == match_key(number)


class _XmlIndex:
    """Contacts.xml in memory: MicroSIP's rule, and every number's key (first contact wins)."""

    def __init__(
        self, rule: ContactIndex, by_key: dict[str, tuple[str, str]] | None = None
    ) -> None:
        self.rule = rule
        self.by_key = by_key or {}

    def with_keys(self, normalise: Normaliser) -> _XmlIndex:
        """This index with every number's key too: the slow part (libphonenumber, about 0.1
        ms a number), built after MicroSIP's rule is already in use."""
        by_key: dict[str, tuple[str, str]] = {}
        for contact in self.rule.contacts:
            for number in contact.numbers():
                found = normalise(number)
                if found.is_phone:
                    by_key.setdefault(found.key, (contact.display_name, number))
        return _XmlIndex(self.rule, by_key)

    def find(self, raw: str, key: str) -> NameMatch | None:
        contact = self.rule.first(raw)
        if contact is not None:
            return NameMatch(contact.display_name, SOURCE_MICROSIP, contact.dial_number)
        hit = self.by_key.get(key) if key else None
        return None if hit is None else NameMatch(hit[0], SOURCE_MICROSIP, hit[1])


_NO_XML = _XmlIndex(ContactIndex([]))


class CallerNames:
    """The caller-name part. ``contacts``: MicroSIP's Contacts.xml (None: none); ``engine``:
    the store with the bridge's contacts (None: none); ``crm``: the CRM lookup (None: none).
    ``on_name`` gets the CRM's late answers (the daemon sets it to Ingestor.set_name)."""

    def __init__(
        self,
        normalise: Normaliser,
        *,
        contacts: Path | None = None,
        engine: Engine | None = None,
        crm: CrmLookup | None = None,
        max_bytes: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.normalise = normalise
        self.contacts_path = contacts
        self.engine = engine
        self.crm = crm
        self.on_name: NameSetter | None = None
        self.max_bytes = max_bytes
        self.clock = clock
        self._xml = _NO_XML
        self._xml_signature: tuple[int, int] | None = None
        self._xml_keyed = True  # the index has equal E.164 forms too
        self._bridge: dict[str, tuple[str, str]] = {}
        self._bridge_signature: tuple[int, int] | None = None
        self._checked = -REFRESH_EVERY
        self._refresh_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._logged: set[str] = set()

    # --- the actions part ---------------------------------------------------------------------

    def prepare(self, calls: Sequence[Call]) -> None:
        """Name each call that has none (module docstring); no I/O but the CRM's, started in
        the background."""
        if self._thread is None:
            self.refresh()
        for call in calls:
            if call.name and not is_only_the_number(call.name, call.number):
                if not call.name_source:
                    call.name_source = SOURCE_MICROSIP  # [Calls] named it
                continue
            number = self.normalise(call.number)
            found = self._local(call.number, number.key)
            if found is None and self.crm is not None and number.kind is NumberKind.PHONE:
                name = self.crm.cached(number)
                if name:
                    found = NameMatch(name, SOURCE_CRM, number.e164)
                elif name is None and self.on_name is not None:
                    self.crm.request(number, self._late(call.call_id))
            if found is not None:
                call.name, call.name_source = found.name, found.source

    # Transitions need nothing from names: a call is named before it is saved.
    def record(self, conn: Connection, happened: Sequence[Happened]) -> None:
        return None

    def committed(self, happened: Sequence[Happened]) -> None:
        return None

    def start(self) -> None:
        """Build the indexes with MicroSIP's rule (the daemon's first calls are named), then
        start the CRM's pool and the thread that adds equal E.164 forms and follows changes
        (with 100,000 contacts the forms take seconds: the daemon does not wait for them)."""
        self.refresh(force=True, keys=False)
        if self.crm is not None:
            self.crm.start()
        self._stop.clear()
        self._thread = threading.Thread(target=self._watch, name="caller-names", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(5)
        if self.crm is not None:
            self.crm.stop()

    # --- looking up ---------------------------------------------------------------------------

    def lookup(self, raw: str, *, crm: bool = True) -> NameMatch | None:
        """The name for the number ``raw`` from every source in order, the CRM asked now
        (waiting at most its timeout) unless ``crm`` is False; None when none has one."""
        if self._thread is None:
            self.refresh()
        number = self.normalise(raw)
        found = self._local(raw, number.key)
        if found is None and crm and self.crm is not None and number.kind is NumberKind.PHONE:
            name = self.crm.lookup(number)
            if name:
                found = NameMatch(name, SOURCE_CRM, number.e164)
        return found

    def _local(self, raw: str, key: str) -> NameMatch | None:
        found = self._xml.find(raw, key)
        if found is None and key:
            hit = self._bridge.get(key)
            if hit is not None:
                found = NameMatch(hit[0], SOURCE_BRIDGE, hit[1])
        return found

    def _late(self, call_id: str) -> Callable[[str], None]:
        def give(name: str) -> None:
            if self.on_name is not None:
                self.on_name(call_id, name, SOURCE_CRM)

        return give

    # --- the indexes --------------------------------------------------------------------------

    def refresh(self, *, force: bool = False, keys: bool = True) -> None:
        """Rebuild the indexes whose source changed; looks at most once a second unless
        ``force``. ``keys`` False: Contacts.xml's index without equal E.164 forms yet (added
        by a later refresh). Never raises: a file or table that cannot be read keeps the old
        index."""
        with self._refresh_lock:
            now = self.clock()
            if not force and now - self._checked < REFRESH_EVERY:
                return
            self._checked = now
            self._refresh_xml(keys)
            self._refresh_bridge()

    def _watch(self) -> None:
        self.refresh(force=True)  # equal E.164 forms for what start() read
        while not self._stop.wait(REFRESH_EVERY):
            self.refresh(force=True)

    def _refresh_xml(self, keys: bool) -> None:
        self._read_xml()
        if keys and not self._xml_keyed:
            # The slow part, never on the writer's thread in the daemon.
            self._xml = self._xml.with_keys(self.normalise)
            self._xml_keyed = True

    def _read_xml(self) -> None:
        path = self.contacts_path
        if path is None:
            return
        try:
            st = os.stat(path)
        except OSError:
            self._xml, self._xml_signature = _NO_XML, None
            return
        signature = (st.st_mtime_ns, st.st_size)
        if signature == self._xml_signature:
            return
        from microsip_bridge.microsip.contacts_xml import MAX_CONTACTS_BYTES, read_contacts

        try:
            contacts = read_contacts(
                path, max_bytes=self.max_bytes or MAX_CONTACTS_BYTES
            ).loaded_by_microsip()
        except (BridgeError, OSError) as exc:
            # MicroSIP may be writing it; the next look tries again.
            self._warn("xml", f"cannot read {path} for caller names: {exc}")
            return
        # MicroSIP's rule at once; equal E.164 forms once every number is normalised.
        self._xml = _XmlIndex(ContactIndex(contacts))
        self._xml_keyed = False
        self._xml_signature = signature
        self._logged.discard("xml")

    def _refresh_bridge(self) -> None:
        if self.engine is None:
            return
        from microsip_bridge.store import contacts as table

        try:
            with self.engine.connect() as conn:
                signature = table.signature(conn)
                if signature == self._bridge_signature:
                    return
                rows = table.list_contacts(conn)
        except Exception as exc:  # no table yet (not migrated), database away
            self._warn("bridge", f"cannot read the bridge's contacts: {exc}")
            return
        index: dict[str, tuple[str, str]] = {}
        for row in rows:
            index.setdefault(row.number_key, (row.name, row.number))
        self._bridge = index
        self._bridge_signature = signature
        self._logged.discard("bridge")

    def _warn(self, kind: str, message: str) -> None:
        if kind not in self._logged:
            self._logged.add(kind)
            logger.warning("%s", message.splitlines()[0])
