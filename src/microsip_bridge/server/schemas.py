"""The read API's response shapes as Pydantic models: what /api/v1/openapi.json documents.

The objects themselves are made elsewhere, once (a call by :func:`~microsip_bridge.store.reader.
call_dict`, an event by :meth:`~microsip_bridge.store.repo.StoredEvent.to_dict`, a contact by
:func:`~microsip_bridge.contacts.jsonfile.contact_record`, a ``[Calls]`` entry by
:func:`~microsip_bridge.microsip.history_formats.entry_record`); these models describe them, in
the same key order, and tests hold each model to its maker.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from microsip_bridge.model import CallState, Direction, Event, Outcome

EventSource = Literal["hook", "spool", "sweep"]
CallSource = Literal["hooks", "history"]


class EventOut(BaseModel):
    """One hook event as the log holds it (as ``microsip-bridge events --format json`` prints
    it)."""

    cursor: int = Field(description="Its place in the log: cursors only grow (with gaps).")
    uid: str = Field(description="The hook's id for the event: the same event is logged once.")
    event: Event = Field(description="Which cmd* hook fired.")
    number: str = Field(description="MicroSIP's text for the number, verbatim (may be empty).")
    ts: float = Field(description="When the hook fired, Unix seconds.")
    pid: int | None = Field(description="The hook process's id.")
    source: EventSource = Field(
        description="How it reached the daemon: hook, spool (while the daemon was down) or "
        "sweep (imported from MicroSIP's [Calls])."
    )
    received_at: float = Field(description="When the daemon stored it, Unix seconds.")
    call_id: str | None = Field(description="The call it belongs to (null: none).")


class _CallFields(BaseModel):
    call_id: str = Field(description="The bridge's stable id for the call.")
    direction: Direction
    number: str = Field(description="The number as MicroSIP reported it.")
    state: CallState
    started_at: float = Field(description="Time of its first event, Unix seconds.")
    outcome: Outcome | None = Field(description="How it ended (null while it goes on).")
    name: str = Field(description="The caller's name (empty: none found).")
    answered_at: float | None = Field(description="When it was answered, Unix seconds.")
    ended_at: float | None = Field(description="When it ended, Unix seconds.")
    duration: float | None = Field(description="Seconds connected (answered calls).")
    rang: bool = Field(description="cmdCallRing fired for it.")
    auto_answered: bool = Field(description="Answered by MicroSIP's auto-answer, unrung.")
    video: bool = Field(description="Answered with video.")
    microsip_key: int | None = Field(description="Its [Calls] entry's slot.")
    microsip_time: int | None = Field(description="Its [Calls] entry's time, Unix seconds.")
    microsip_type: int | None = Field(description="Its [Calls] entry's type, 0-3.")
    microsip_info: str | None = Field(description="MicroSIP's status text for it.")
    microsip_duration: int | None = Field(description="MicroSIP's connected seconds.")
    disagreement: str | None = Field(description="Where the hooks and [Calls] disagree.")
    source: CallSource = Field(description="Seen through the hooks, or imported from [Calls].")


class CallOut(_CallFields):
    """One call (as ``microsip-bridge calls --format json`` prints it)."""

    events: list[str] = Field(description="The uids of its events, in the order applied.")
    updated_at: float = Field(description="Time of its last change, Unix seconds.")
    name_source: str = Field(
        description="Where the name came from: microsip (Contacts.xml or [Calls]), bridge (the "
        "bridge's own contacts), crm (the CRM lookup); empty: no name."
    )
    number_key: str = Field(
        description="The number normalised: E.164 for a phone number, else the number as it is."
    )
    transitions: list[str] | None = Field(
        description="What has happened to the call (incoming, ringing, answered...), in order; "
        "null for calls stored before the bridge recorded them."
    )


class CallDetail(_CallFields):
    """One call with its events in full, in log order."""

    events: list[EventOut] = Field(description="Its events, as /events gives them.")
    updated_at: float = Field(description="Time of its last change, Unix seconds.")
    name_source: str = Field(
        description="Where the name came from: microsip (Contacts.xml or [Calls]), bridge (the "
        "bridge's own contacts), crm (the CRM lookup); empty: no name."
    )
    number_key: str = Field(
        description="The number normalised: E.164 for a phone number, else the number as it is."
    )
    transitions: list[str] | None = Field(
        description="What has happened to the call (incoming, ringing, answered...), in order; "
        "null for calls stored before the bridge recorded them."
    )


class CallPage(BaseModel):
    """A page of calls, newest first."""

    calls: list[CallOut]
    next: str | None = Field(
        description="Pass it as `cursor` for the next (older) page; null on the last page."
    )


class EventPage(BaseModel):
    """Events after a cursor, oldest first."""

    events: list[EventOut]
    cursor: int = Field(description="The last event's cursor, or `after` when there is none.")


class MicroSIPInfo(BaseModel):
    found: bool = Field(description="The daemon's microsip.ini exists.")
    folder: str | None = Field(description="The folder of that ini (null: the daemon has none).")
    ini: str | None
    version: str | None = Field(description="[Settings] version (3.22 and later write it).")
    running: bool | None = Field(description="MicroSIP runs with this ini (null: cannot tell).")
    detail: str | None = Field(description="Why it is not found or cannot be read.")


class HookInfo(BaseModel):
    event: Event
    key: str = Field(description="The ini key, e.g. cmdCallRing.")
    state: Literal["ours", "ours, another install", "foreign", "missing", "damaged"]
    detail: str


class StoreInfo(BaseModel):
    database: str = Field(description="The database URL, its password hidden.")
    ok: bool = Field(description="The store answered a query just now.")
    detail: str | None = Field(description="The store's error, when not ok.")


class RulesInfo(BaseModel):
    """config.toml's rules and webhook targets as the daemon runs them (reloaded on change)."""

    path: str = Field(description="The config.toml watched.")
    rules: int = Field(description="Rules loaded.")
    webhooks: int = Field(description="Webhook targets loaded.")
    error: str | None = Field(
        description="Why the file's latest version was refused (the previous rules still run)."
    )
    loaded_at: float | None = Field(description="When the rules in use were read, Unix seconds.")


class WebhookTotals(BaseModel):
    """The webhook outbox's messages, all targets together."""

    pending: int = Field(description="Not delivered yet (waiting for their next attempt).")
    dead: int = Field(description="Dead letters: given up on, kept for `webhooks retry`.")


class Status(BaseModel):
    """The daemon, MicroSIP, its hooks and the store at a glance."""

    version: str = Field(description="The daemon's version.")
    microsip: MicroSIPInfo
    hooks: list[HookInfo] = Field(description="The eight cmd* hooks (none if no ini is read).")
    last_event_at: float | None = Field(description="When the newest event's hook fired.")
    cursor: int = Field(description="The newest event's cursor (0: no event yet).")
    store: StoreInfo
    rules: RulesInfo | None = Field(default=None, description="None: the daemon runs no rules.")
    webhooks: WebhookTotals | None = Field(
        default=None, description="The webhook outbox (None: the store could not be read)."
    )


class HistoryEntry(BaseModel):
    """One entry of MicroSIP's [Calls] (as ``microsip-bridge history --format json``)."""

    key: int = Field(description="Its ring slot.")
    number: str
    name: str
    type: Literal["outgoing", "incoming", "missed", "answered_elsewhere"]
    type_code: int = Field(description="The type as stored, 0-3.")
    time: str = Field(description="When it started, ISO 8601 UTC.")
    timestamp: int = Field(description="When it started, Unix seconds.")
    duration: int = Field(description="Seconds connected.")
    info: str = Field(description="MicroSIP's status text, in its UI language.")


class ContactOut(BaseModel):
    """One contact of MicroSIP's Contacts.xml (as ``contacts list --format json``)."""

    name: str
    number: str
    firstname: str
    lastname: str
    phone: str
    mobile: str
    email: str
    address: str
    city: str
    state: str
    zip: str
    comment: str
    id: str
    info: str
    presence: bool
    starred: bool
    directory: bool
    extra: dict[str, str] = Field(description="Attributes MicroSIP does not know, kept.")


class ContactList(BaseModel):
    contacts: list[ContactOut]


class LookupOut(BaseModel):
    """The name the daemon gives a caller."""

    name: str
    source: str = Field(
        description="Where the name came from: microsip (its Contacts.xml), bridge (the "
        "bridge's own contacts, `names import`) or crm (the CRM lookup, crm_url)."
    )
    number: str = Field(description="The number that matched, as that source has it.")
