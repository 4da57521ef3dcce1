"""MicroSIP and the daemon over HTTP: GET /status, /history, /contacts, /lookup."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import anyio.to_thread
from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy.engine import Connection

from microsip_bridge import __version__
from microsip_bridge.actions.service import Actions
from microsip_bridge.contacts.jsonfile import contact_record
from microsip_bridge.contacts.search import lookup_number, search_contacts
from microsip_bridge.diagnosis import microsip_status
from microsip_bridge.errors import NotFoundError, StoreUnavailableError
from microsip_bridge.microsip.contacts_xml import ContactsFile, read_contacts
from microsip_bridge.microsip.history import read_history
from microsip_bridge.microsip.history_formats import entry_record
from microsip_bridge.microsip.hook_keys import fast_hook_program
from microsip_bridge.microsip.inifile import IniDocument
from microsip_bridge.microsip.locate import CONTACTS_NAME, find_in_folder
from microsip_bridge.server.auth import require_auth
from microsip_bridge.server.params import (
    ERROR_RESPONSES,
    MAX_TEXT,
    PRINTABLE,
    ErrorDetail,
    OneLineErrors,
    read_store,
)
from microsip_bridge.server.schemas import ContactList, HistoryEntry, LookupOut, Status
from microsip_bridge.server.settings import DaemonSettings
from microsip_bridge.store import query
from microsip_bridge.store.engine import safe_url
from microsip_bridge.store.outbox import counts as outbox_counts

router = APIRouter(
    prefix="/api/v1",
    dependencies=[Depends(require_auth)],
    tags=["microsip"],
    responses=ERROR_RESPONSES,
    route_class=OneLineErrors,
)
NO_INI: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorDetail, "description": "The daemon knows of no MicroSIP ini."}
}

NO_CONTACT: dict[int | str, dict[str, Any]] = {
    404: {
        "model": ErrorDetail,
        "description": "No contact has this number, or the daemon knows of no MicroSIP ini.",
    }
}
# The last Contacts.xml read, by path, with the size and time it had: a search box asks on every
# key press, and a large file takes a second to read. MicroSIP rewrites the file whole, so a
# change shows in its size or time.
_read: dict[Path, tuple[tuple[int, int], ContactsFile]] = {}


def _settings(request: Request) -> DaemonSettings:
    settings: DaemonSettings = request.app.state.settings
    return settings


def _ini(settings: DaemonSettings) -> Path:
    if settings.ini is None:
        raise NotFoundError("the daemon was started without a MicroSIP ini (serve --ini)")
    return settings.ini


def _contacts(settings: DaemonSettings) -> ContactsFile:
    """MicroSIP's Contacts.xml beside the daemon's ini; none yet is an empty list (MicroSIP
    creates the file with the first contact)."""
    path = find_in_folder(_ini(settings).parent, CONTACTS_NAME)
    try:
        info = path.stat()
    except OSError:
        return ContactsFile([], path=path)
    stamp = (info.st_size, info.st_mtime_ns)
    known = _read.get(path)
    if known is not None and known[0] == stamp:
        return known[1]
    found = read_contacts(path, max_bytes=settings.max_bytes)
    _read.clear()  # one file is all a daemon serves
    _read[path] = (stamp, found)
    return found


def webhook_totals(conn: Connection) -> dict[str, int]:
    """Pending and dead webhook messages, all targets together."""
    every = outbox_counts(conn).values()
    return {"pending": sum(c["pending"] for c in every), "dead": sum(c["dead"] for c in every)}


@router.get("/status", response_model=Status)
async def status(request: Request) -> dict[str, Any]:
    """MicroSIP (found, folder, ini, version, running), its eight cmd* hooks (ours, foreign,
    missing, damaged), the newest event and the store, at a glance."""
    settings = _settings(request)
    engine = request.app.state.engine
    program = settings.hook_program or fast_hook_program()[0]

    def look() -> dict[str, Any]:
        found = microsip_status(settings.ini, program)
        store: dict[str, Any] = {"database": safe_url(engine.url), "ok": True, "detail": None}
        newest = None
        webhooks = None
        try:
            newest = read_store(engine, query.newest_event)
            webhooks = read_store(engine, webhook_totals)
        except StoreUnavailableError as exc:
            store.update(ok=False, detail=exc.message)
        return {
            "webhooks": webhooks,
            "version": __version__,
            **found,
            "last_event_at": None if newest is None else newest[1],
            "cursor": 0 if newest is None else newest[0],
            "store": store,
            "rules": _rules_status(request),
        }

    return await anyio.to_thread.run_sync(look)


def _rules_status(request: Request) -> dict[str, Any] | None:
    rules = getattr(getattr(request.app.state, "actions", None), "rules", None)
    return None if rules is None else dict(rules.config.status())


@router.get("/history", response_model=list[HistoryEntry], responses=NO_INI)
async def history(request: Request) -> list[dict[str, Any]]:
    """MicroSIP's own call history ([Calls] in the daemon's microsip.ini), oldest first, as
    `history --format json` prints it. Damaged entries are left out."""
    ini = _ini(_settings(request))

    def read() -> list[dict[str, Any]]:
        return [dict(entry_record(entry)) for entry in read_history(IniDocument.load(ini)).entries]

    return await anyio.to_thread.run_sync(read)


@router.get("/contacts", response_model=ContactList, responses=NO_INI)
async def contacts(
    request: Request,
    q: Annotated[
        str,
        Query(
            max_length=MAX_TEXT,
            pattern=PRINTABLE,
            description="Name (any part, any case) or number (as text, or in any format).",
        ),
    ] = "",
) -> dict[str, Any]:
    """MicroSIP's contacts (Contacts.xml beside the daemon's ini) that match `q`, in file
    order, each as `contacts list --format json` prints it; all of them without `q`."""
    settings = _settings(request)

    def read() -> dict[str, Any]:
        found = search_contacts(_contacts(settings).contacts, q)
        return {"contacts": [contact_record(contact) for contact in found]}

    return await anyio.to_thread.run_sync(read)


@router.get(
    "/lookup",
    response_model=LookupOut,
    responses=NO_CONTACT,
)
async def lookup(
    request: Request,
    number: Annotated[
        str,
        Query(
            min_length=1,
            max_length=MAX_TEXT,
            pattern=PRINTABLE,
            description="A caller's number (sip:user@host and tel: too).",
        ),
    ],
) -> dict[str, str]:
    """The name the daemon gives a caller, from its sources in order: MicroSIP's contacts
    (MicroSIP's rule: an exact match on a contact number's user part, else one that the number
    ends with after at most 3 more leading characters; then the same number normalised), the
    bridge's own contacts (`names import`), then the CRM (crm_url). `source` says which."""
    settings = _settings(request)
    actions = getattr(request.app.state, "actions", None)
    names = actions.names if isinstance(actions, Actions) else None

    def find() -> dict[str, str] | None:
        normalise = actions.normalise if isinstance(actions, Actions) else None
        found = lookup_number(_contacts(settings).loaded_by_microsip(), number, normalise)
        if found is not None:
            return {"name": found.name, "source": found.source, "number": found.number}
        more = None if names is None else names.lookup(number)
        return None if more is None else more.as_dict()

    answer = await anyio.to_thread.run_sync(find)
    if answer is None:
        raise NotFoundError(f"no contact for {number[:64]!r}")
    return answer
