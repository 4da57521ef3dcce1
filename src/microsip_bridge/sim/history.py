"""[Calls] and [Dialed] as the simulated MicroSIP writes them, with [Calls]' info texts."""

from __future__ import annotations

import math

from microsip_bridge.errors import BridgeError, FileFormatError, NotFoundError
from microsip_bridge.microsip.commands import S22, Version
from microsip_bridge.microsip.history import CallType
from microsip_bridge.microsip.history_ring import append_entry, update_entry
from microsip_bridge.microsip.inifile import IniDocument
from microsip_bridge.model import Direction
from microsip_bridge.sim.folder import SimFolder
from microsip_bridge.sim.records import EndKind, SimCall

DIALED = "Dialed"
DIALED_SIZE = 10  # [Dialed] keys 0-9, 0 the newest (facts §3.3)

# --- the [Calls] info texts, in one place ---------------------------------------------------------
#
# MicroSIP writes the final status "in the UI language" (English here); facts §5 names "Call Ended",
# "Missed Call", "Canceled", "Declined", "Answered Elsewhere" or a SIP error text.

INFO_CALL_ENDED = "Call Ended"
INFO_MISSED = "Missed Call"
INFO_DECLINED = "Declined"
INFO_CANCELED = "Canceled"
INFO_ELSEWHERE = "Answered Elsewhere"
INFO_TEXTS: dict[EndKind, str] = {
    EndKind.HUNG_UP: INFO_CALL_ENDED,
    # The fast hang-up path runs the end handling at once, before the BYE/CANCEL completes
    # (facts §2.2), so the call is not yet disconnected and the text is "Call Ended"; for an
    # unanswered outgoing call the CANCEL's 487 then arrives and a second pass (which finds no
    # tab and fires no hook, facts §2.2) rewrites it as "Canceled" (CANCELED_LATER below). The
    # corpus' real-sasamosenko-3.2x ini and our samples hold such "Canceled" outgoing entries.
    EndKind.LOCAL_HANGUP: INFO_CALL_ENDED,
    EndKind.MISSED: INFO_MISSED,
    EndKind.DECLINED: INFO_DECLINED,
    EndKind.ELSEWHERE: INFO_ELSEWHERE,
}
CANCELED_LATER = INFO_CANCELED
# A SIP error's text is its reason phrase (RFC 3261 §21), except 404, for which MicroSIP 3.2x
# writes its own sentence (seen in the corpus' real-sasamosenko-3.2x ini). Busy statuses give
# "Busy Here" and friends, as the samples' [Calls] shows.
SIP_REASONS: dict[int, str] = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Incorrect dialing or non-existent number",
    405: "Method Not Allowed",
    407: "Proxy Authentication Required",
    408: "Request Timeout",
    410: "Gone",
    480: "Temporarily Unavailable",
    481: "Call/Transaction Does Not Exist",
    484: "Address Incomplete",
    486: "Busy Here",
    488: "Not Acceptable Here",
    500: "Server Internal Error",
    501: "Not Implemented",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Server Time-out",
    600: "Busy Everywhere",
    603: "Decline",
    604: "Does Not Exist Anywhere",
    606: "Not Acceptable",
}


def sip_reason(status: int) -> str:
    """The [Calls] info MicroSIP writes for a call that failed with ``status``."""
    return SIP_REASONS.get(status, f"SIP error {status}")


def history_number(user: str, domain: str, account_domain: str) -> str:
    """The number [Calls] holds for a call (facts §5): the user part, with @domain when the
    domain is not the account's."""
    if not user:
        return domain
    if domain and domain.casefold() != account_domain.casefold():
        return f"{user}@{domain}"
    return user


def record_end(
    call: SimCall, kind: EndKind, version: Version, *, status: int | None, reason: str
) -> EndKind:
    """Set the [Calls] type and info of ``call``, which ended as ``kind``; returns the kind as
    ``version`` knows it."""
    answered = call.answered_at is not None
    if kind is EndKind.BUSY or kind is EndKind.FAILED:
        call.info = reason or sip_reason(status or 0)
    else:
        call.info = INFO_TEXTS[kind]
    if call.direction is Direction.INCOMING and not answered:
        elsewhere = kind is EndKind.ELSEWHERE and version >= S22
        # facts §5: type 2 missed (3 answered elsewhere, 3.22 only) for an incoming call that
        # never connected.
        call.call_type = CallType.ANSWERED_ELSEWHERE if elsewhere else CallType.MISSED
    if kind is EndKind.ELSEWHERE and version < S22:
        # Only 3.22 knows "answered elsewhere"; older versions record a plain missed call.
        call.info = INFO_MISSED
        return EndKind.MISSED
    return kind


class HistoryWriter:
    """Writes a folder's [Calls] and [Dialed] as MicroSIP does: each write re-reads the ini and
    changes only its keys, and [Calls] goes through the library's ring (append_entry,
    update_entry, callsLastKey)."""

    def __init__(self, folder: SimFolder) -> None:
        self.folder = folder

    def create_entry(self, call: SimCall, call_type: CallType) -> None:
        """The entry a call gets with its tab (facts §5); ``call.key`` is its slot."""
        call.call_type = call_type

        def add(doc: IniDocument) -> None:
            call.key = append_entry(
                doc, call.number, call.name, call_type, math.floor(call.created_at), 0, ""
            )

        try:
            self.folder.edit_ini(add)
        except BridgeError as exc:
            # MicroSIP would write the damaged entry anyway; the library refuses numbers that
            # [Calls] cannot hold (';', line breaks, a leading quote, too long). The call goes
            # on without an entry, and says why.
            call.history_error = str(exc)

    def finish_entry(self, call: SimCall) -> None:
        """Rewrite the call's entry with its type, duration and info."""
        key = call.key
        if key is None:
            return

        def finish(doc: IniDocument) -> None:
            update_entry(doc, key, type=call.call_type, duration=call.duration, info=call.info)

        try:
            self.folder.edit_ini(finish)
        except (NotFoundError, FileFormatError) as exc:
            # Someone deleted or damaged the entry under us; MicroSIP would rewrite it, but we
            # write only through the library's ring, which will not guess a slot's other fields.
            call.history_error = str(exc)

    def add_dialed(self, text: str) -> None:
        """Put ``text`` first in [Dialed]."""

        # The last 10 dialled strings, 0 the newest (facts §3.3); a string dialled again moves
        # to the front instead of appearing twice (as the corpus' [Dialed] sections show).
        def add(doc: IniDocument) -> None:
            old = [doc.get(DIALED, str(i)) for i in range(DIALED_SIZE)]
            kept = [v for v in old if v and v != text]
            new = [text, *kept][:DIALED_SIZE]
            for i, value in enumerate(new):
                doc.set(DIALED, str(i), value)

        if any(c in text for c in "\r\n\x00"):
            return
        self.folder.edit_ini(add)
