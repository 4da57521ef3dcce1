"""The records the simulator's rooms share: a call, how it ended, an event fired, a command."""

from __future__ import annotations

import enum
import math
from collections.abc import Callable
from dataclasses import dataclass, field

from microsip_bridge.errors import BridgeError
from microsip_bridge.microsip.commands import Command, Verb
from microsip_bridge.microsip.history import CallType
from microsip_bridge.model import CallState, Direction, Event, Outcome
from microsip_bridge.sim.runcmd import HookRun

Action = Callable[[], object]
# The simulator's scheduler, as the rooms see it: run an action after a delay, with a label.
Schedule = Callable[[float, Action, str], None]


class SimulatorError(BridgeError):
    """Something was asked of the simulator that MicroSIP's state does not allow."""


def check_seconds(what: str, value: float) -> None:
    """Refuse a duration that is not a finite number of seconds, zero or more."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SimulatorError(f"{what} must be a number of seconds, not {value!r}")
    if not (math.isfinite(value) and value >= 0):
        raise SimulatorError(f"{what} must be zero or more seconds, not {value!r}")


class EndKind(enum.Enum):
    """How a call ended, which decides its [Calls] type and info and its hook."""

    HUNG_UP = "hung-up"  # a connected call, ended by either side
    LOCAL_HANGUP = "local-hangup"  # End, /hangupall, /hangupincoming, /hangupcalling (fast path)
    MISSED = "missed"  # incoming: the caller gave up while it rang (487)
    DECLINED = "declined"  # incoming: the user pressed Decline (486, facts §2.2)
    ELSEWHERE = "elsewhere"  # incoming: cancelled with "call completed elsewhere" (3.22)
    BUSY = "busy"  # outgoing: 486, 600 or 603 from the remote party
    FAILED = "failed"  # outgoing: any other error status (404, 408, 480, 5xx ...)


@dataclass(eq=False)
class SimCall:
    """One simulated call, as MicroSIP sees it.

    ``user``/``domain`` are the remote SIP URI's parts (the hooks get ``user``); ``number`` and
    ``name`` are what [Calls] holds; ``key`` is its [Calls] slot (None for a call rejected
    automatically, which gets no entry, or when the number cannot be stored: ``history_error``).
    ``outcome`` is what a correct call-state model should conclude from the events (and
    [Calls]), for end-to-end tests.
    """

    id: int
    direction: Direction
    user: str
    domain: str
    display_name: str
    number: str
    name: str
    video: bool
    state: CallState
    created_at: float
    answered_at: float | None = None
    ended_at: float | None = None
    outcome: Outcome | None = None
    call_type: CallType | None = None
    info: str = ""
    key: int | None = None
    hidden: bool = False
    rejected_because: str = ""
    auto_answered: bool = False
    held: bool = False
    post_dial: str = ""
    dtmf: list[str] = field(default_factory=list)
    transferred_to: str | None = None
    events: list[Event] = field(default_factory=list)
    history_error: str | None = None

    @property
    def active(self) -> bool:
        return self.state is not CallState.ENDED

    @property
    def duration(self) -> int:
        """Connected whole seconds, as [Calls] stores them (0 if never connected)."""
        if self.answered_at is None:
            return 0
        end = self.ended_at if self.ended_at is not None else self.answered_at
        return max(0, math.floor(end - self.answered_at))

    def describe(self) -> str:
        who = self.user or self.domain or "anonymous"
        return f"call {self.id} ({self.direction.value} {who}, {self.state.value})"


@dataclass(frozen=True, slots=True)
class FiredEvent:
    """One event MicroSIP fired (whether or not a hook is configured for it)."""

    event: Event
    number: str
    call_id: int
    at: float
    hook: HookRun | None


# How the rooms fire an event: its hook runs with ``number`` for call ``call_id`` (0: no call).
Fire = Callable[[Event, str, int], FiredEvent]


@dataclass(frozen=True, slots=True)
class CommandRecord:
    """A command the simulator received: its text, verb, return value and what came of it."""

    text: str
    dw_data: int
    verb: Verb | None
    result: int
    note: str
    at: float

    @classmethod
    def noted(cls, cmd: Command, note: str, at: float) -> CommandRecord:
        """What came of a command once it was acted on (or dropped)."""
        return cls(cmd.text, 0, cmd.verb, 0, note, at)
