"""The control service: builds each command with the library's grammar, sends commands one at a
time with a cooldown before dials, and gives every dial a call id (a pending call)."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from microsip_bridge.errors import (
    BridgeError,
    CommandDroppedError,
    CommandError,
    RateLimitedError,
    RefusedCommandError,
    UnsafeInputError,
)
from microsip_bridge.microsip import commands
from microsip_bridge.microsip.commands import S22, Command, Verb, Version, check_version
from microsip_bridge.microsip.control import TAKEN, ControlTransport
from microsip_bridge.microsip.dialing import DialProfile, dial_profile, reported_number
from microsip_bridge.microsip.inifile import IniDocument
from microsip_bridge.model import Call

VERBS = ("dial", "answer", "hangup", "dtmf", "transfer", "hold", "mute", "message", "account")
HANGUP_WHICH: dict[str, Verb] = {
    "all": Verb.HANGUP_ALL,
    "incoming": Verb.HANGUP_INCOMING,
    "calling": Verb.HANGUP_CALLING,
}
_MUTE: dict[tuple[str, bool], Verb] = {
    ("mic", True): Verb.MIC_MUTE,
    ("mic", False): Verb.MIC_UNMUTE,
    ("speaker", True): Verb.SPEAKER_MUTE,
    ("speaker", False): Verb.SPEAKER_UNMUTE,
}


def build_command(verb: str, args: Mapping[str, Any], version: Version | None) -> Command:
    """The command for a control ``verb`` with its arguments (the API's bodies, the CLI's
    arguments), built by the library's builders; ``version``: the MicroSIP it goes to (None:
    unknown; only input is checked then). Raises RefusedCommandError for anything refused."""
    try:
        cmd = _build(verb, args, version)
        if version is not None:
            check_version(cmd, version)
    except (CommandError, UnsafeInputError) as exc:
        if isinstance(exc, RefusedCommandError):
            raise
        raise RefusedCommandError(exc.message) from None
    except (KeyError, TypeError) as exc:
        raise RefusedCommandError(f"{verb}: missing or wrong argument ({exc})") from None
    return cmd


def _build(verb: str, args: Mapping[str, Any], version: Version | None) -> Command:
    if verb == "dial":
        return commands.dial(str(args["number"]), account=args.get("account"))
    if verb == "answer":
        return commands.build(Verb.ANSWER)
    if verb == "hangup":
        which = str(args.get("which") or "all")
        if which not in HANGUP_WHICH:
            raise RefusedCommandError(
                f"hangup: which must be all, incoming or calling, not {which!r}"
            )
        return commands.build(HANGUP_WHICH[which])
    if verb == "dtmf":
        return commands.dtmf(str(args["digits"]))
    if verb == "transfer":
        return commands.transfer(str(args["number"]))
    if verb == "hold":
        return commands.build(Verb.HOLD)
    if verb == "mute":
        device = str(args.get("device") or "mic")
        muted = args.get("muted", True)
        if device not in ("mic", "speaker") or not isinstance(muted, bool):
            raise RefusedCommandError("mute: device must be mic or speaker, muted true or false")
        if version is not None and version < S22:
            # Before 3.22 MicroSIP only toggles, and tells no one the state (facts §1.5): a
            # "muted": true could unmute. Refused rather than guessed.
            raise RefusedCommandError(
                f"MicroSIP {version} can only toggle mute and does not report the state, so "
                "muting or unmuting cannot be done safely; MicroSIP 3.22 or newer is needed"
            )
        return commands.build(_MUTE[device, muted])
    if verb == "message":
        return commands.message(str(args["number"]), str(args["text"]))
    if verb == "account":
        return commands.account(args["index"])
    raise RefusedCommandError(f"unknown control verb {verb!r} (known: {', '.join(VERBS)})")


@dataclass(frozen=True, slots=True)
class ControlResult:
    """What a control command became: the call id of a dial (None for other commands, or when
    no daemon keeps calls), the exact command text sent, and the transport it went by."""

    call_id: str | None
    command: str
    transport: str


class DialBook(Protocol):
    """Where dials become calls: the daemon's ingestor (calls/ingest.py)."""

    def open_dial(
        self, number: str, reported: Iterable[str], timeout: float | None = None
    ) -> Call: ...

    def cancel_dial(self, call_id: str) -> Call | None: ...


class RateLimiter:
    """A token bucket: ``rate`` commands a second on average, bursts of up to ``rate`` (at
    least 1); ``rate`` 0 means no limit. ``clock``: monotonic seconds."""

    def __init__(self, rate: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        if not rate >= 0 or not math.isfinite(rate):
            raise BridgeError(f"control_rate must be 0 or more commands a second, not {rate}")
        self.rate = rate
        self.capacity = max(1.0, rate)
        self._clock = clock
        self._tokens = self.capacity
        self._at = clock()
        self._lock = threading.Lock()

    def acquire(self) -> None:
        """Take one command's token, or raise RateLimitedError saying when one is free."""
        if self.rate == 0:
            return
        with self._lock:
            now = self._clock()
            self._tokens = min(self.capacity, self._tokens + (now - self._at) * self.rate)
            self._at = now
            if self._tokens >= 1.0 - 1e-9:  # give or take the float error of the clock
                self._tokens = max(0.0, self._tokens - 1.0)
                return
            wait = (1.0 - self._tokens) / self.rate
        raise RateLimitedError(
            f"more than {self.rate:g} control commands a second; try again in {wait:.2f} s",
            retry_after=wait,
        )


class ControlService:
    """Sends control commands to MicroSIP, one at a time, for every client of the daemon.

    ``transport()`` finds the transport for each command (MicroSIP may start or stop between
    two). A dial waits until ``cooldown`` seconds have passed since the previous command (the
    SIP server must clear a session just hung up before the next INVITE), rather than failing.
    With ``dials`` (the daemon), a dial first opens a pending outgoing call and returns its id;
    the ``outgoing`` event MicroSIP fires binds to it, matched by the number MicroSIP will
    report (``ini``'s account settings, microsip/dialing.py). A dial MicroSIP drops, or that
    cannot be sent, closes its call as never placed at once; one never placed closes after
    ``dial_timeout``. ``clock`` and ``sleep`` are monotonic seconds (injectable for tests).
    """

    def __init__(
        self,
        transport: Callable[[], ControlTransport],
        *,
        dials: DialBook | None = None,
        ini: Path | None = None,
        cooldown: float = 1.0,
        dial_timeout: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not cooldown >= 0 or not math.isfinite(cooldown):
            raise BridgeError(f"control_cooldown must be 0 or more seconds, not {cooldown}")
        self._transport = transport
        self._dials = dials
        self.ini = ini
        self.cooldown = cooldown
        self.dial_timeout = dial_timeout
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._last: float | None = None

    def send(self, verb: str, args: Mapping[str, Any] | None = None) -> ControlResult:
        """Build, check and send one command; returns what it became. Raises
        RefusedCommandError (bad input), MicroSIPNotRunningError, CommandDroppedError (MicroSIP
        answered 1) or another BridgeError (the transport failed)."""
        args = args or {}
        build_command(verb, args, None)  # refused input is refused before anything else
        with self._lock:
            transport = self._transport()
            cmd = build_command(verb, args, transport.version)
            if cmd.verb is Verb.DIAL:
                self._wait_cooldown()
            call_id = self._open_dial(cmd) if cmd.verb is Verb.DIAL else None
            try:
                result = transport.send(cmd)
            except BaseException:
                self._cancel(call_id)
                raise
            finally:
                self._last = self._clock()
            if result != TAKEN:
                self._cancel(call_id)
                raise CommandDroppedError(
                    f"MicroSIP dropped {cmd.text!r} (its SIP stack is not running, or it did "
                    "not understand the command)"
                )
            return ControlResult(call_id, cmd.text, transport.name)

    def _wait_cooldown(self) -> None:
        if self._last is None:
            return
        wait = self._last + self.cooldown - self._clock()
        if wait > 0:
            self._sleep(wait)

    def _open_dial(self, cmd: Command) -> str | None:
        if self._dials is None:
            return None
        reported = self.reported_numbers(cmd)
        return self._dials.open_dial(cmd.target, reported, self.dial_timeout).call_id

    def reported_numbers(self, cmd: Command) -> list[str]:
        """The numbers MicroSIP's ``outgoing`` may carry for dial ``cmd``: the one its rewriting
        gives with the ini's account settings, and the target's own user part (what it reports
        without prefix or plan). Refuses a dial the account's dial plan turns into nothing."""
        profile = self._profile(cmd.account)
        number = reported_number(cmd.target + cmd.post_dial, profile)
        if number is None:
            raise RefusedCommandError(
                f"the account's dialPlan matches no pattern for {cmd.target!r}: MicroSIP would "
                "dial nothing"
            )
        plain = reported_number(cmd.target + cmd.post_dial, DialProfile(domain=profile.domain))
        return list(dict.fromkeys(n for n in (number, plain) if n is not None))

    def _profile(self, account: int | None) -> DialProfile:
        if self.ini is None:
            return DialProfile(domain="-")  # the domain's text never reaches the user part
        try:
            return dial_profile(IniDocument.load(self.ini), account)
        except (BridgeError, OSError):
            return DialProfile(domain="-")

    def _cancel(self, call_id: str | None) -> None:
        if call_id is not None and self._dials is not None:
            self._dials.cancel_dial(call_id)
