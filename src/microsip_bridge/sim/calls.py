"""The calls' state machine: incoming and outgoing calls, the user's and the remote's actions."""

from __future__ import annotations

import enum
import itertools
from collections.abc import Callable
from dataclasses import dataclass

from microsip_bridge.errors import CommandError, NotFoundError
from microsip_bridge.microsip.commands import S20, S22, Command, Verb, Version, parse
from microsip_bridge.microsip.history import CallType
from microsip_bridge.model import CallState, Direction, Event, Outcome
from microsip_bridge.sim.history import CANCELED_LATER, HistoryWriter, history_number, record_end
from microsip_bridge.sim.records import (
    CommandRecord,
    EndKind,
    Fire,
    Schedule,
    SimCall,
    SimulatorError,
    check_seconds,
)
from microsip_bridge.sim.settings import IniSettings

# Statuses that end a call with cmdCallBusy instead of cmdCallEnd (facts §2.2).
BUSY_STATUSES = frozenset({486, 600, 603})


def check_failure_status(status: int, *, busy: bool) -> int:
    """A final status a remote party may answer an INVITE with: busy ones end with cmdCallBusy,
    the others (300-699, not 487, which is our own CANCEL's answer) with cmdCallEnd."""
    if isinstance(status, bool) or not isinstance(status, int):
        raise SimulatorError(f"a SIP status must be a whole number, not {status!r}")
    if busy:
        if status not in BUSY_STATUSES:
            raise SimulatorError(
                f"busy means 486, 600 or 603 (what MicroSIP treats as busy), not {status}"
            )
    elif not 300 <= status <= 699 or status in BUSY_STATUSES or status == 487:
        raise SimulatorError(
            f"a failure status must be 300-699, not 487 (a cancel) nor 486/600/603 (busy), "
            f"not {status}"
        )
    return status


# --- what the remote parties do -----------------------------------------------------------------


class RemoteAction(enum.StrEnum):
    """What happens to an outgoing call ``after`` seconds of ringing."""

    ANSWER = "answer"  # the remote party answers
    BUSY = "busy"  # it replies busy (486, or ``status`` 600/603): cmdCallBusy
    FAIL = "fail"  # it fails with ``status`` (default 404): cmdCallEnd
    CANCEL = "cancel"  # nobody answers and the user hangs up: cmdCallEnd
    RING = "ring"  # it rings until a command or a test ends it


class HangupBy(enum.StrEnum):
    """Who ends a connected call after ``talk`` seconds."""

    REMOTE = "remote"
    LOCAL = "local"
    NEVER = "never"  # it stays connected until a command or a test ends it


@dataclass(frozen=True, slots=True)
class RemoteBehaviour:
    """How a called party behaves, e.g. ``RemoteBehaviour(RemoteAction.BUSY, after=1)``.

    The default answers after 2 s and stays connected until it is hung up.
    """

    then: RemoteAction = RemoteAction.ANSWER
    after: float = 2.0
    talk: float | None = None
    status: int | None = None
    reason: str | None = None
    hangup: HangupBy = HangupBy.REMOTE

    def __post_init__(self) -> None:
        object.__setattr__(self, "then", RemoteAction(self.then))
        object.__setattr__(self, "hangup", HangupBy(self.hangup))
        check_seconds("after", self.after)
        if self.talk is not None:
            check_seconds("talk", self.talk)
        if self.status is not None:
            if self.then not in (RemoteAction.BUSY, RemoteAction.FAIL):
                raise SimulatorError("a status goes with 'busy' or 'fail' only")
            check_failure_status(self.status, busy=self.then is RemoteAction.BUSY)
        if self.reason is not None and self.then is not RemoteAction.FAIL:
            raise SimulatorError("a reason goes with 'fail' only")

    @classmethod
    def manual(cls) -> RemoteBehaviour:
        """A party that does nothing by itself: tests drive it with remote_answers() etc."""
        return cls(RemoteAction.RING, after=0.0)


def dial_command(number: str, version: Version) -> Command:
    """``number`` parsed by the library's grammar as the dial command it must be."""
    cmd = parse(number, version)
    if cmd.verb is not Verb.DIAL:
        raise CommandError(f"{number!r} is not a number to dial: MicroSIP would {cmd.description}")
    return cmd


# --- the state machine ---------------------------------------------------------------------------


class CallMachine:
    """MicroSIP's calls: their states, hooks and [Calls] entries. It holds the calls and the
    selected tab; the Simulator documents the public methods and calls them with its lock held,
    as its scheduler runs the actions they schedule.

    Hooks fire in the orders of facts §2.2: ``incoming`` first for every INVITE, before any
    check; ``ring`` unless auto-answered at once; ``answer`` (+``answer-video`` on 3.22) then
    ``start`` when an incoming call connects; ``outgoing`` then ``start``; one ``busy`` or
    ``end`` per call that had a tab; nothing more for calls rejected automatically. The number
    is the remote user part, and for busy/end the domain when that is empty (3.20+, facts §2.4).
    A call's [Calls] entry (facts §5) is created when it gets its tab (type 0 for outgoing, 1
    for incoming) and rewritten with type, duration and info when it ends, *before* the
    busy/end hook on 3.20+ (after it on 3.19); calls rejected automatically get no entry.
    """

    def __init__(
        self,
        *,
        version: Version,
        settings: IniSettings,
        history: HistoryWriter,
        fire: Fire,
        now: Callable[[], float],
        schedule: Schedule,
        commands: list[CommandRecord],
        remotes: dict[str, RemoteBehaviour],
        default_remote: RemoteBehaviour,
    ) -> None:
        self.version = version
        self.settings = settings
        self.history = history
        self.fire = fire
        self.now = now
        self.schedule = schedule
        self.commands = commands
        self.remotes = remotes
        self.default_remote = default_remote
        self.calls: list[SimCall] = []
        self._ids = itertools.count(1)
        self._selected: SimCall | None = None

    # --- lookups ---------------------------------------------------------------------------------

    def active_calls(self) -> list[SimCall]:
        """Calls with a tab that have not ended, oldest first."""
        return [c for c in self.calls if c.active and not c.hidden]

    def ringing_incoming(self) -> list[SimCall]:
        return [
            c
            for c in self.active_calls()
            if c.direction is Direction.INCOMING and c.state is CallState.RINGING
        ]

    def selected_call(self) -> SimCall | None:
        """The call in the selected tab: the last one placed or answered that is still up."""
        if self._selected is not None and self._selected.active:
            return self._selected
        connected = [c for c in self.active_calls() if c.state is CallState.CONNECTED]
        if connected:
            return max(connected, key=lambda c: c.answered_at or 0.0)
        active = self.active_calls()
        return active[-1] if active else None

    def call(self, call_id: int) -> SimCall:
        for call in self.calls:
            if call.id == call_id:
                return call
        raise NotFoundError(f"no simulated call {call_id}")

    def _others(self, call: SimCall) -> list[SimCall]:
        return [c for c in self.active_calls() if c is not call]

    def _first_ringing(self) -> SimCall | None:
        """The call /answer and Decline act on: the first incoming call still ringing."""
        ringing = self.ringing_incoming()
        return ringing[0] if ringing else None

    def _expect(
        self, call: SimCall, *states: CallState, direction: Direction | None = None
    ) -> None:
        if call not in self.calls:
            raise SimulatorError(f"{call.describe()} is not one of this simulator's calls")
        if call.hidden:
            raise SimulatorError(f"{call.describe()} was rejected: it has no tab")
        if call.state not in states:
            wanted = " or ".join(s.value for s in states)
            raise SimulatorError(f"{call.describe()} is not {wanted}")
        if direction is not None and call.direction is not direction:
            raise SimulatorError(f"{call.describe()} is not {direction.value}")

    # --- hooks -----------------------------------------------------------------------------------

    def _fire(self, event: Event, call: SimCall) -> None:
        self.fire(event, self._hook_number(event, call), call.id)
        call.events.append(event)

    def _hook_number(self, event: Event, call: SimCall) -> str:
        if call.user:
            return call.user
        if event in (Event.BUSY, Event.END) and self.version >= S20:
            return call.domain  # facts §2.4: busy/end fall back to the domain (3.20+)
        return ""

    # --- building calls --------------------------------------------------------------------------

    def _new_call(
        self,
        direction: Direction,
        user: str,
        domain: str | None,
        display_name: str,
        video: bool,
        state: CallState,
        *,
        original: str = "",
    ) -> SimCall:
        settings = self.settings.current
        domain = (domain if domain is not None else settings.account_domain).strip()
        if not user and not domain:
            raise SimulatorError("a call needs a number or a domain")
        for what, value in (("number", user), ("domain", domain), ("name", display_name)):
            if "\x00" in value:
                raise SimulatorError(f"the {what} contains NUL, which no SIP header can carry")
        name = self.settings.contact_name(user)
        # facts §4.4: contacts first, then the SIP display name, then the number.
        name = name or display_name or original or user or domain
        call = SimCall(
            id=next(self._ids),
            direction=direction,
            user=user,
            domain=domain,
            display_name=display_name,
            number=history_number(user, domain, settings.account_domain),
            name=name,
            video=video,
            state=state,
            created_at=self.now(),
        )
        self.calls.append(call)
        return call

    def drop_all(self) -> None:
        """MicroSIP exiting: calls still up end without events."""
        for call in self.calls:
            if call.active:
                call.state = CallState.ENDED
                call.ended_at = self.now()

    # --- incoming calls ---------------------------------------------------------------------------

    def incoming(
        self,
        number: str,
        name: str,
        *,
        domain: str | None,
        video: bool,
        auto_answer: bool | None,
        auto_answer_delay: float | None,
    ) -> SimCall:
        user, domain = _split_uri(number, domain)
        call = self._new_call(Direction.INCOMING, user, domain, name, video, CallState.RINGING)
        self._fire(Event.INCOMING, call)
        settings = self.settings.current
        reason = settings.rejection(call, self._others(call))
        if reason:
            return self._reject(call, reason)
        auto = settings.auto_answers(call, self._others(call), auto_answer)
        delay = settings.auto_answer_delay if auto_answer_delay is None else auto_answer_delay
        check_seconds("auto_answer_delay", delay)
        self.history.create_entry(call, CallType.INCOMING)
        if auto and delay == 0:
            call.auto_answered = True
            self._connect(call)
            return call
        self._fire(Event.RING, call)
        if auto:
            self.schedule(delay, lambda: self._delayed_auto_answer(call), f"auto-answer {call.id}")
        return call

    def reject_dnd(self, number: str, name: str, *, domain: str | None, video: bool) -> SimCall:
        user, domain = _split_uri(number, domain)
        call = self._new_call(Direction.INCOMING, user, domain, name, video, CallState.RINGING)
        self._fire(Event.INCOMING, call)
        return self._reject(call, "do not disturb")

    def _reject(self, call: SimCall, reason: str) -> SimCall:
        # MicroSIP answers 486 and flags the call "hidden": it gets no tab and no later event
        # (facts §2.2); the end is ours, for bookkeeping.
        call.hidden = True
        call.rejected_because = reason
        call.state = CallState.ENDED
        call.ended_at = self.now()
        call.outcome = Outcome.REJECTED
        return call

    def _delayed_auto_answer(self, call: SimCall) -> None:
        if call.state is CallState.RINGING:
            call.auto_answered = True
            self._connect(call)

    # --- connecting and ending -------------------------------------------------------------------

    def _connect(self, call: SimCall) -> None:
        call.state = CallState.CONNECTED
        call.answered_at = self.now()
        self._selected = call
        if call.direction is Direction.INCOMING:
            self._fire(Event.ANSWER, call)
            if call.video and self.version >= S22:
                self._fire(Event.ANSWER_VIDEO, call)
        else:
            groups = [g for g in call.post_dial.split(",") if g]
            # Post-dial DTMF (facts §1.6 7): one second per comma in MicroSIP; recorded here.
            call.dtmf.extend(groups)
        self._fire(Event.START, call)

    def _end(
        self, call: SimCall, kind: EndKind, *, status: int | None = None, reason: str = ""
    ) -> None:
        call.state = CallState.ENDED
        call.ended_at = self.now()
        answered = call.answered_at is not None
        incoming = call.direction is Direction.INCOMING
        kind = record_end(call, kind, self.version, status=status, reason=reason)
        call.outcome = _outcome(call, kind)
        event = Event.BUSY if kind in (EndKind.BUSY, EndKind.DECLINED) else Event.END
        if self.version >= S20:
            self.history.finish_entry(call)  # facts §5: written before busy/end on 3.20+
            self._fire(event, call)
        else:
            self._fire(event, call)  # 3.19 runs the hook before updating the history
            self.history.finish_entry(call)
        if kind is EndKind.LOCAL_HANGUP and not answered and not incoming:
            call.info = CANCELED_LATER
            self.history.finish_entry(call)
        if self._selected is call:
            self._selected = None

    # --- the user's actions ----------------------------------------------------------------------

    def answer(self, call: SimCall | None) -> SimCall | None:
        call = call or self._first_ringing()
        if call is None:
            return None
        self._expect(call, CallState.RINGING, direction=Direction.INCOMING)
        if self.settings.current.single_mode:
            # Another connected call goes on hold (no hook: facts §2.1 lists no hold trigger).
            for other in self._others(call):
                if other.state is CallState.CONNECTED:
                    other.held = True
        self._connect(call)
        return call

    def decline(self, call: SimCall | None) -> SimCall | None:
        call = call or self._first_ringing()
        if call is None:
            return None
        self._expect(call, CallState.RINGING, direction=Direction.INCOMING)
        self._end(call, EndKind.DECLINED)
        return call

    def hang_up(self, call: SimCall | None) -> SimCall | None:
        call = call if call is not None else self.selected_call()
        if call is None:
            return None
        self._expect(call, CallState.RINGING, CallState.DIALING, CallState.CONNECTED)
        self._end(call, EndKind.LOCAL_HANGUP if call.answered_at is None else EndKind.HUNG_UP)
        return call

    def hangup_all(self) -> list[SimCall]:
        targets = [
            c
            for c in self.active_calls()
            if not (c.direction is Direction.INCOMING and c.state is CallState.RINGING)
        ]
        for call in targets:
            self.hang_up(call)
        return targets

    def hangup_incoming(self) -> list[SimCall]:
        targets = self.ringing_incoming()
        for call in targets:
            self.hang_up(call)
        return targets

    def hangup_calling(self) -> list[SimCall]:
        targets = [c for c in self.active_calls() if c.state is CallState.DIALING]
        for call in targets:
            self.hang_up(call)
        return targets

    def hold(self, call: SimCall | None) -> SimCall | None:
        call = call if call is not None else self.selected_call()
        if call is None or call.state is not CallState.CONNECTED:
            return None
        call.held = not call.held
        return call

    def send_dtmf(self, digits: str) -> SimCall | None:
        call = self.selected_call()
        if call is None or call.state is not CallState.CONNECTED:
            return None
        call.dtmf.append(digits)
        return call

    def transfer(self, target: str) -> SimCall | None:
        call = self.selected_call()
        if call is None or call.state is not CallState.CONNECTED:
            return None
        call.transferred_to = target
        # The remote side is referred elsewhere and hangs up: ``end`` (no transfer trigger).
        self._end(call, EndKind.HUNG_UP)
        return call

    # --- the remote parties' actions -------------------------------------------------------------

    def caller_cancels(self, call: SimCall) -> SimCall:
        self._expect(call, CallState.RINGING, direction=Direction.INCOMING)
        self._end(call, EndKind.MISSED)
        return call

    def answered_elsewhere(self, call: SimCall) -> SimCall:
        self._expect(call, CallState.RINGING, direction=Direction.INCOMING)
        self._end(call, EndKind.ELSEWHERE)
        return call

    def remote_answers(self, call: SimCall) -> SimCall:
        self._expect(call, CallState.DIALING, direction=Direction.OUTGOING)
        self._connect(call)
        return call

    def remote_busy(self, call: SimCall, status: int) -> SimCall:
        check_failure_status(status, busy=True)
        self._expect(call, CallState.DIALING, direction=Direction.OUTGOING)
        self._end(call, EndKind.BUSY, status=status)
        return call

    def remote_fails(self, call: SimCall, status: int, reason: str | None) -> SimCall:
        check_failure_status(status, busy=False)
        self._expect(call, CallState.DIALING, direction=Direction.OUTGOING)
        self._end(call, EndKind.FAILED, status=status, reason=reason or "")
        return call

    def remote_hangs_up(self, call: SimCall) -> SimCall:
        if call.direction is Direction.INCOMING and call.state is CallState.RINGING:
            return self.caller_cancels(call)
        self._expect(call, CallState.CONNECTED)
        self._end(call, EndKind.HUNG_UP)
        return call

    # --- outgoing calls --------------------------------------------------------------------------

    def place_call(
        self, cmd: Command, remote: RemoteBehaviour | None, video: bool = False
    ) -> SimCall | None:
        """MakeCall for a dial command: the new call, or None (noted in the command log) when
        MicroSIP would place none."""
        if cmd.account is not None and not self.settings.switch_account(cmd.account):
            self._note(cmd, f"Account{cmd.account} does not exist: the command is dropped")
            return None
        target = cmd.target
        if not target or target.startswith("/"):
            # An unknown switch is dialled and "normally fails with an error box" (facts §1.7).
            self._note(cmd, f"error box: {target!r} is not a valid number; no call")
            return None
        if not self.settings.current.account_domain:
            self._note(cmd, "error box: no valid account to call from; no call")
            return None
        self.history.add_dialed(target + cmd.post_dial)
        if self.settings.current.single_mode and self.active_calls():
            # facts §1.6 6: MakeCall only switches to the existing call's tab.
            self._note(cmd, "single mode and a call is up: no second call placed")
            return None
        user, _, rest = target.partition("@")
        domain = rest.split(";", 1)[0].split("?", 1)[0] or None
        call = self._new_call(
            Direction.OUTGOING, user, domain, "", video, CallState.DIALING, original=target
        )
        call.post_dial = cmd.post_dial
        call.number = call.number + cmd.post_dial  # facts §5: ",dtmf" kept in the number
        self._selected = call
        self.history.create_entry(call, CallType.OUTGOING)
        self._fire(Event.OUTGOING, call)
        self._play_remote(call, remote or self._remote_for(user, target))
        return call

    def _note(self, cmd: Command, note: str) -> None:
        self.commands.append(CommandRecord.noted(cmd, note, self.now()))

    def _remote_for(self, user: str, target: str) -> RemoteBehaviour:
        for key in (target, user, "*"):
            if key in self.remotes:
                return self.remotes[key]
        return self.default_remote

    def _play_remote(self, call: SimCall, remote: RemoteBehaviour) -> None:
        if remote.then is RemoteAction.RING:
            return

        def act() -> None:
            if call.state is not CallState.DIALING:
                return
            if remote.then is RemoteAction.ANSWER:
                self.remote_answers(call)
                self.end_after(call, remote.talk, remote.hangup)
            elif remote.then is RemoteAction.BUSY:
                self.remote_busy(call, remote.status or 486)
            elif remote.then is RemoteAction.FAIL:
                self.remote_fails(call, remote.status or 404, remote.reason)
            else:
                self.hang_up(call)

        self.schedule(remote.after, act, f"{remote.then.value} {call.id}")

    def end_after(self, call: SimCall, talk: float | None, by: HangupBy) -> None:
        if talk is None or by is HangupBy.NEVER:
            return

        def hang() -> None:
            if call.state is not CallState.CONNECTED:
                return
            if by is HangupBy.LOCAL:
                self.hang_up(call)
            else:
                self.remote_hangs_up(call)

        self.schedule(talk, hang, f"hang up {call.id}")


def _split_uri(number: str, domain: str | None) -> tuple[str, str | None]:
    """``user@host`` given as the number: its user part, and the host unless a domain is given."""
    if not isinstance(number, str):
        raise SimulatorError(f"a number must be text, not {type(number).__name__}")
    user, at, host = number.partition("@")
    if at and domain is None:
        return user, host
    return (user if at else number), domain


def _outcome(call: SimCall, kind: EndKind) -> Outcome:
    """What the call-state model should conclude from the events."""
    if call.answered_at is not None:
        return Outcome.ANSWERED
    if call.direction is Direction.INCOMING:
        if kind is EndKind.DECLINED:
            return Outcome.DECLINED
        if kind is EndKind.ELSEWHERE:
            return Outcome.ANSWERED_ELSEWHERE
        return Outcome.MISSED
    if kind is EndKind.BUSY:
        return Outcome.BUSY
    if kind is EndKind.FAILED:
        return Outcome.FAILED
    return Outcome.CANCELLED
