"""The control routes: ``POST /api/v1/control/{verb}`` sends MicroSIP a command (dial, answer...).

Each verb has its own body model, so the OpenAPI document describes it. Answers **202**
``{"call_id", "command"}`` once MicroSIP took the command (``call_id``: the dial's call, null for
the other verbs); **409** MicroSIP is not running, **422** refused input, **429** past
``control_rate`` (with Retry-After), **503** MicroSIP dropped the command.
"""

from __future__ import annotations

import math
import threading
from typing import Any, Literal

import anyio.to_thread
from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field

from microsip_bridge.control.service import ControlResult, ControlService, RateLimiter
from microsip_bridge.control.transport import choose_transport
from microsip_bridge.errors import RateLimitedError
from microsip_bridge.microsip.control import ControlTransport
from microsip_bridge.server.auth import require_auth
from microsip_bridge.server.settings import DaemonSettings

router = APIRouter(prefix="/api/v1", dependencies=[Depends(require_auth)], tags=["control"])

_Text = Field(min_length=1, max_length=1024)


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DialBody(_Body):
    number: str = Field(
        min_length=1, max_length=1024, description="A number, user@host or sip:/tel: URI"
    )
    account: int | None = Field(
        default=None, ge=1, description="Make AccountN active first (MicroSIP 3.20+)"
    )


class HangupBody(_Body):
    which: Literal["all", "incoming", "calling"] = Field(
        default="all",
        description="all: every call but ringing incoming ones; incoming: ringing incoming "
        "calls (3.22); calling: outgoing calls not yet answered (3.20+)",
    )


class DtmfBody(_Body):
    digits: str = Field(min_length=1, max_length=1024, description="0-9 * # A-D")


class TransferBody(_Body):
    number: str = _Text


class MuteBody(_Body):
    device: Literal["mic", "speaker"] = "mic"
    muted: bool = True


class MessageBody(_Body):
    number: str = _Text
    text: str = _Text


class AccountBody(_Body):
    index: int = Field(ge=1, description="N of [AccountN]")


class ControlAccepted(BaseModel):
    """MicroSIP took the command (not: it succeeded; MicroSIP reports nothing more)."""

    call_id: str | None = Field(description="The dial's call, as the call log and events carry")
    command: str = Field(description="The exact command text sent to MicroSIP")


_RESPONSES: dict[int | str, dict[str, Any]] = {
    409: {"description": "MicroSIP is not running"},
    422: {"description": "Refused input (bad number, a hidden second command, /reset...)"},
    429: {"description": "Past control_rate; see Retry-After"},
    503: {"description": "MicroSIP dropped the command (its SIP stack is not running)"},
}
_lock = threading.Lock()


def control_service(request: Request) -> ControlService:
    """The app's one ControlService (every client's commands go through it, in turn)."""
    return state_control_service(request.app.state)


def state_control_service(state: Any) -> ControlService:
    """:func:`control_service` for the app whose ``app.state`` is ``state`` (the notices'
    Answer button has no request)."""
    with _lock:
        service = getattr(state, "control", None)
        if service is None:
            settings: DaemonSettings = state.settings

            def transport() -> ControlTransport:
                return choose_transport(settings.ini, settings.exe, settings.control_transport)

            service = ControlService(
                transport,
                dials=state.ingestor,
                ini=settings.ini,
                cooldown=settings.control_cooldown,
                dial_timeout=settings.dial_timeout,
            )
            state.control = service
            state.control_rate = RateLimiter(settings.control_rate)
    return service


async def _send(request: Request, verb: str, body: BaseModel | None) -> ControlAccepted:
    service = control_service(request)
    limiter: RateLimiter = request.app.state.control_rate
    try:
        limiter.acquire()
    except RateLimitedError as exc:
        raise HTTPException(
            429, str(exc), headers={"Retry-After": str(max(1, math.ceil(exc.retry_after)))}
        ) from None
    args = body.model_dump() if body is not None else {}
    # A worker thread: the send may wait out the cooldown, or for MicroSIP.
    result: ControlResult = await anyio.to_thread.run_sync(service.send, verb, args)
    return ControlAccepted(call_id=result.call_id, command=result.command)


_POST: dict[str, Any] = {
    "status_code": 202,
    "response_model": ControlAccepted,
    "responses": _RESPONSES,
}


@router.post("/control/dial", **_POST)
async def dial(request: Request, body: DialBody) -> ControlAccepted:
    """Call a number; the answer carries the call's id, which the call log and the events
    carry once MicroSIP places the call (or the call ends as not_placed)."""
    return await _send(request, "dial", body)


@router.post("/control/answer", **_POST)
async def answer(request: Request) -> ControlAccepted:
    """Answer the first incoming call still ringing."""
    return await _send(request, "answer", None)


@router.post("/control/hangup", **_POST)
async def hangup(request: Request, body: HangupBody | None = None) -> ControlAccepted:
    """Hang up calls (``which``, default all)."""
    return await _send(request, "hangup", body or HangupBody())


@router.post("/control/dtmf", **_POST)
async def dtmf(request: Request, body: DtmfBody) -> ControlAccepted:
    """Send DTMF digits on the selected call."""
    return await _send(request, "dtmf", body)


@router.post("/control/transfer", **_POST)
async def transfer(request: Request, body: TransferBody) -> ControlAccepted:
    """Blind-transfer the selected call."""
    return await _send(request, "transfer", body)


@router.post("/control/hold", **_POST)
async def hold(request: Request) -> ControlAccepted:
    """Toggle hold on the selected call (MicroSIP has no separate hold and resume)."""
    return await _send(request, "hold", None)


@router.post("/control/mute", **_POST)
async def mute(request: Request, body: MuteBody) -> ControlAccepted:
    """Mute or unmute the microphone or the speaker: idempotent, so MicroSIP 3.22+ only
    (older ones can only toggle and do not say the state: 422)."""
    return await _send(request, "mute", body)


@router.post("/control/message", **_POST)
async def message(request: Request, body: MessageBody) -> ControlAccepted:
    """Send a SIP instant message."""
    return await _send(request, "message", body)


@router.post("/control/account", **_POST)
async def account(request: Request, body: AccountBody) -> ControlAccepted:
    """Make AccountN the active account (MicroSIP saves it and re-registers)."""
    return await _send(request, "account", body)
