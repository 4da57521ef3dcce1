"""The simulator's engine: calls, their cmd* hooks and [Calls] entries, as MicroSIP makes them.

Every rule here comes from the facts file (docs/microsip-facts.md in the shared folder); where it
is silent, the comment says what we chose and why. In short:

* **Hooks** fire in the orders of facts §2.2 (``incoming`` first for every INVITE, before any
  check; ``ring`` unless auto-answered at once; ``answer`` (+``answer-video`` on 3.22) then
  ``start`` when an incoming call connects; ``outgoing`` then ``start``; one ``busy`` or ``end``
  per call that had a tab; nothing more for calls rejected automatically) and run like
  MSIP::RunCmd (sim/runcmd.py, facts §2.3): the engine waits for each, up to the timeout, and
  records how long it was blocked. The number is the remote user part, and for busy/end the
  domain when that is empty (3.20+, facts §2.4); an empty number adds no argument.
* **[Calls]** (facts §5): an entry is created when the call gets its tab (type 0 for outgoing,
  1 for incoming), and rewritten with type, duration and info when the call ends, *before* the
  busy/end hook on 3.20+ (after it on 3.19). Each write re-reads the ini and changes only its
  keys, as WritePrivateProfileString does, and goes through calls_history.append_entry and
  update_entry (ring buffer, callsLastKey). Calls rejected automatically get no entry.
* **Settings** are read from [Settings] once, at start-up (facts §3.2): the cmd* keys, DND and
  denyIncoming, autoAnswer, callWaiting, maxConcurrentCalls, singleMode. A real MicroSIP needs a
  restart to see an edit; :meth:`Simulator.reload_settings` is the tests' shortcut.
* **Threads.** MicroSIP runs hooks on its SIP and UI threads and is blocked while they run. Here
  one re-entrant lock serialises everything the engine does (scheduled steps, commands from the
  channel, calls from tests), and hooks run with it held: a slow hook delays everything else, as
  it would in MicroSIP.
"""

from __future__ import annotations

import dataclasses
import enum
import fnmatch
import heapq
import itertools
import math
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from microsip_bridge.errors import BridgeError, CommandError, FileFormatError, NotFoundError
from microsip_bridge.microsip.cmdline import profile_string_as_read
from microsip_bridge.microsip.commands import S20, S22, Command, Verb, Version, parse
from microsip_bridge.microsip.contact import Contact
from microsip_bridge.microsip.contacts_xml import read_contacts
from microsip_bridge.microsip.crt import wtoi
from microsip_bridge.microsip.history import CallType
from microsip_bridge.microsip.history_ring import append_entry, update_entry
from microsip_bridge.microsip.hook_keys import HOOK_KEYS
from microsip_bridge.microsip.inifile import IniDocument
from microsip_bridge.model import CallState, Direction, Event, Outcome
from microsip_bridge.sim.clock import RealClock, SimClock
from microsip_bridge.sim.folder import DEFAULT_VERSION, SimFolder, open_folder
from microsip_bridge.sim.runcmd import MICROSIP_HOOK_TIMEOUT, HookRun, HookRunner

SETTINGS = "Settings"
DIALED = "Dialed"
DIALED_SIZE = 10  # [Dialed] keys 0-9, 0 the newest (facts §3.3)
# Statuses that end a call with cmdCallBusy instead of cmdCallEnd (facts §2.2).
BUSY_STATUSES = frozenset({486, 600, 603})


class SimulatorError(BridgeError):
    """Something was asked of the simulator that MicroSIP's state does not allow."""


# --- the [Calls] info texts, in one place ---------------------------------------------------------
#
# MicroSIP writes the final status "in the UI language" (English here); facts §5 names "Call Ended",
# "Missed Call", "Canceled", "Declined", "Answered Elsewhere" or a SIP error text.


class EndKind(enum.Enum):
    """How a call ended, which decides its [Calls] type and info and its hook."""

    HUNG_UP = "hung-up"  # a connected call, ended by either side
    LOCAL_HANGUP = "local-hangup"  # End, /hangupall, /hangupincoming, /hangupcalling (fast path)
    MISSED = "missed"  # incoming: the caller gave up while it rang (487)
    DECLINED = "declined"  # incoming: the user pressed Decline (486, facts §2.2)
    ELSEWHERE = "elsewhere"  # incoming: cancelled with "call completed elsewhere" (3.22)
    BUSY = "busy"  # outgoing: 486, 600 or 603 from the remote party
    FAILED = "failed"  # outgoing: any other error status (404, 408, 480, 5xx ...)


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


def check_failure_status(status: int, *, busy: bool) -> int:
    """A final status a remote party may answer an INVITE with: busy ones end with cmdCallBusy,
    the others (300-699, not 487, which is our own CANCEL's answer) with cmdCallEnd."""
    if isinstance(status, bool) or not isinstance(status, int):
        raise SimulatorError(f"a SIP status must be a whole number, not {status!r}")
    if busy:
        if status not in BUSY_STATUSES:
            raise SimulatorError(f"busy means 486, 600 or 603 (facts §2.2), not {status}")
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
        _check_seconds("after", self.after)
        if self.talk is not None:
            _check_seconds("talk", self.talk)
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


def _check_seconds(what: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SimulatorError(f"{what} must be a number of seconds, not {value!r}")
    if not (math.isfinite(value) and value >= 0):
        raise SimulatorError(f"{what} must be zero or more seconds, not {value!r}")


# --- records --------------------------------------------------------------------------------------


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


@dataclass(frozen=True, slots=True)
class SentMessage:
    """An instant message MicroSIP would send for ``"<number> <text>"`` (facts §1.6 6)."""

    number: str
    text: str
    at: float


@dataclass(frozen=True, slots=True)
class CommandRecord:
    """A command the simulator received: its text, verb, return value and what came of it."""

    text: str
    dw_data: int
    verb: Verb | None
    result: int
    note: str
    at: float


@dataclass(frozen=True, slots=True)
class SimSettings:
    """What MicroSIP reads from [Settings] (and the active account) at start-up (facts §3.4)."""

    hooks: Mapping[Event, str]
    single_mode: bool = True
    call_waiting: bool = True
    max_concurrent_calls: int = 0
    deny_incoming: str = "button"
    dnd: bool = False
    auto_answer: str = "button"
    aa: bool = False
    auto_answer_delay: float = 0.0
    auto_answer_calls: str = ""
    auto_answer_numbers: tuple[str, ...] = ()
    disable_name_lookup: bool = False
    account_id: int = 1
    account_domain: str = ""

    @classmethod
    def from_ini(cls, doc: IniDocument) -> SimSettings:
        def text(key: str, default: str = "") -> str:
            value = doc.get(SETTINGS, key)
            return default if value is None else value

        def number(key: str, default: int) -> int:
            # GetPrivateProfileInt: the default when absent, else the leading integer (0 if none).
            value = doc.get(SETTINGS, key)
            return default if value is None else wtoi(value)

        hooks: dict[Event, str] = {}
        for event, key in HOOK_KEYS.items():
            raw = doc.get_raw(SETTINGS, key)
            hooks[event] = "" if raw is None else profile_string_as_read(raw)
        account_id = number("accountId", 1)
        if account_id == 0 and not number("enableLocalAccount", 0):
            account_id = 1  # facts §3.4: 0 is forced to 1 unless enableLocalAccount
        patterns = text("autoAnswerNumber").replace("|", ";").split(";")
        return cls(
            hooks=hooks,
            single_mode=number("singleMode", 1) != 0,
            call_waiting=number("callWaiting", 1) != 0,
            max_concurrent_calls=max(0, number("maxConcurrentCalls", 0)),
            deny_incoming=text("denyIncoming", "button"),
            dnd=number("DND", 0) != 0,
            auto_answer=text("autoAnswer", "button"),
            aa=number("AA", 0) != 0,
            auto_answer_delay=float(max(0, number("autoAnswerDelay", 0))),
            auto_answer_calls=text("autoAnswerCalls", ""),
            auto_answer_numbers=tuple(p.strip() for p in patterns if p.strip()),
            disable_name_lookup=number("disableNameLookup", 0) != 0,
            account_id=account_id,
            account_domain=account_domain(doc, account_id),
        )


def account_domain(doc: IniDocument, account_id: int) -> str:
    """The domain of [AccountN] ([Account0]: the local account), "" when that account is not
    valid (no section or no domain, facts §3.5)."""
    if account_id < 0:
        return ""
    return (doc.get(f"Account{account_id}", "domain") or "").strip()


def lookup_name(contacts: list[Contact], number: str) -> str:
    """GetNameByNumber (facts §4.4): an exact match on the contact number's user part, else a
    contact number of more than 3 characters that the caller's number ends with, with at most 3
    extra leading characters (a country prefix). "" when nothing matches."""
    if not number:
        return ""
    for contact in contacts:
        if contact.dial_number.partition("@")[0] == number:
            return contact.display_name
    for contact in contacts:
        candidate = contact.dial_number.partition("@")[0]
        if len(candidate) > 3 and number.endswith(candidate) and len(number) - len(candidate) <= 3:
            return contact.display_name
    return ""


# --- the engine ----------------------------------------------------------------------------------

Action = Callable[[], object]


class Simulator:
    """A simulated MicroSIP on a folder (see the module docstring for the rules it follows).

    Use it as a context manager (or call :meth:`start` and :meth:`close`): while it runs it
    keeps the ``microsip-sim.pid`` marker in the folder, so the bridge sees "MicroSIP is
    running" (process.SIM_PID_FILE). Drive it with the user's actions (:meth:`answer`,
    :meth:`decline`, :meth:`hang_up`, :meth:`command` ...) and the remote parties' ones
    (:meth:`incoming`, :meth:`remote_answers`, :meth:`caller_cancels` ...); :meth:`schedule` and
    :meth:`run` play timed steps (sim/scenario.py) on ``clock``.
    """

    def __init__(
        self,
        folder: SimFolder | Path | str,
        *,
        clock: SimClock | None = None,
        run_hooks: bool = True,
        hook_timeout: float = MICROSIP_HOOK_TIMEOUT,
        version: str = DEFAULT_VERSION,
        show_hook_output: bool = False,
        remotes: Mapping[str, RemoteBehaviour] | None = None,
        default_remote: RemoteBehaviour | None = None,
        rewrite_settings_on_exit: bool = False,
        on_event: Callable[[FiredEvent], None] | None = None,
    ) -> None:
        self.folder = folder if isinstance(folder, SimFolder) else open_folder(folder)
        self.clock: SimClock = clock if clock is not None else RealClock()
        self.run_hooks = run_hooks
        self.version = Version.parse(version)
        _check_seconds("hook_timeout", hook_timeout)
        self.hooks = HookRunner(hook_timeout, show_output=show_hook_output)
        self.remotes: dict[str, RemoteBehaviour] = dict(remotes or {})
        self.default_remote = default_remote or RemoteBehaviour()
        self.rewrite_settings_on_exit = rewrite_settings_on_exit
        self.on_event = on_event
        self.settings = SimSettings(hooks={})
        self.contacts: list[Contact] = []
        self.calls: list[SimCall] = []
        self.events: list[FiredEvent] = []
        self.hook_runs: list[HookRun] = []
        self.messages: list[SentMessage] = []
        self.commands: list[CommandRecord] = []
        self.ui_actions: list[str] = []
        self.mic_muted = False
        self.speaker_muted = False
        self.stack_running = False
        self.password_override: str | None = None
        self._settings_snapshot: list[tuple[str, str]] = []
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._timers: list[tuple[float, int, str, Action]] = []
        self._seq = itertools.count()
        self._ids = itertools.count(1)
        self._selected: SimCall | None = None
        self._stop = False
        self._due: float | None = None

    # --- life cycle ------------------------------------------------------------------------------

    def __enter__(self) -> Simulator:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        """Start like MicroSIP: read the ini, write ``version`` (3.22), mark the folder as
        running and bring the SIP stack up (commands are dropped before that, facts §1.4)."""
        with self._lock:
            if self.stack_running:
                return
            self.folder.mark_running()
            try:
                self.reload_settings()
                if self.version >= S22:
                    # facts §3.2: every start also writes version=<x.y.z>
                    self._write_ini(lambda doc: doc.set(SETTINGS, "version", str(self.version)))
            except BaseException:
                self.folder.clear_running()
                raise
            self.stack_running = True
            self._stop = False

    def close(self) -> None:
        """Stop like MicroSIP exiting: calls still up are dropped without events (the facts do
        not say that the end handling runs at exit), [Settings] is rewritten from memory only if
        ``rewrite_settings_on_exit`` (facts §3.2: MicroSIP does; off by default so that edits
        made while the simulator runs survive), hooks it stopped waiting for are killed, and the
        running marker is removed."""
        with self._cond:
            was_running = self.stack_running
            self.stack_running = False
            self._stop = True
            self._timers.clear()
            self._cond.notify_all()
            for call in self.calls:
                if call.active:
                    call.state = CallState.ENDED
                    call.ended_at = self.now()
            try:
                if was_running and self.rewrite_settings_on_exit:
                    self._rewrite_settings()
            finally:
                self.hooks.reap()
                if was_running:
                    self.folder.clear_running()

    def reload_settings(self) -> None:
        """Read [Settings], the active account and Contacts.xml again.

        MicroSIP reads them only at start-up (facts §3.2, §4.1): a real one must be restarted to
        see a new hook. Tests that install hooks into a running simulator's ini call this.
        """
        with self._lock:
            doc = IniDocument.load(self.folder.ini)
            self.settings = SimSettings.from_ini(doc)
            self._settings_snapshot = doc.items(SETTINGS)
            if self.folder.contacts.is_file():
                self.contacts = read_contacts(self.folder.contacts).loaded_by_microsip()
            else:
                self.contacts = []

    def _rewrite_settings(self) -> None:
        # SettingsSave writes every [Settings] key from memory, i.e. the values as read (quotes
        # removed, facts §2.6). callsLastKey is left alone: it is re-read for each new entry.
        def write(doc: IniDocument) -> None:
            for key, value in self._settings_snapshot:
                if key.casefold() == "callslastkey":
                    continue
                if key.casefold() == "dnd":
                    value = "1" if self.settings.dnd else "0"
                doc.set(SETTINGS, key, value)

        self._write_ini(write)

    # --- time and the scheduler ------------------------------------------------------------------

    def now(self) -> float:
        """Simulated Unix time. While a scheduled action runs it is that action's due time, so
        that a step's timings are exact however late the host runs it (a slow hook, a fast
        --speed): a 3-second talk gives a 3-second duration."""
        due = self._due
        return self.clock.now() if due is None else due

    def schedule(self, delay: float, action: Action, label: str = "") -> None:
        """Run ``action`` after ``delay`` seconds of simulated time (in :meth:`run`)."""
        _check_seconds("delay", delay)
        with self._cond:
            heapq.heappush(self._timers, (self.now() + delay, next(self._seq), label, action))
            self._cond.notify_all()

    def pending(self) -> list[tuple[float, str]]:
        """The scheduled actions: (due time, label), soonest first."""
        with self._lock:
            return [(due, label) for due, _, label, _ in sorted(self._timers)]

    def stop(self) -> None:
        """Make :meth:`run` return (from any thread)."""
        with self._cond:
            self._stop = True
            self._cond.notify_all()

    @property
    def stop_requested(self) -> bool:
        """Whether :meth:`stop` was called and no :meth:`run` has returned for it yet."""
        return self._stop

    def run(self, *, until_idle: bool = True, max_seconds: float | None = None) -> None:
        """Run scheduled actions as their time comes, until none is left (``until_idle``), or
        until :meth:`stop` (also when it was called before this run began); ``max_seconds`` of
        simulated time bound the run."""
        with self._cond:
            deadline = None if max_seconds is None else self.now() + max_seconds
            while True:
                if self._stop:
                    if self.stack_running:
                        self._stop = False  # consumed: the next run() runs
                    return
                now = self.now()
                if deadline is not None and now >= deadline:
                    return
                if not self._timers:
                    if until_idle:
                        return
                    wait = None if deadline is None else deadline - now
                    self.clock.wait(self._cond, wait)
                    continue
                due = self._timers[0][0]
                if deadline is not None and due > deadline:
                    self.clock.wait(self._cond, deadline - now)
                    continue
                if due > now:
                    self.clock.wait(self._cond, due - now)
                    continue
                due, _, _, action = heapq.heappop(self._timers)
                self._due = due
                try:
                    action()
                finally:
                    self._due = None

    # --- lookups ---------------------------------------------------------------------------------

    def active_calls(self) -> list[SimCall]:
        """Calls with a tab that have not ended, oldest first."""
        with self._lock:
            return [c for c in self.calls if c.active and not c.hidden]

    def ringing_incoming(self) -> list[SimCall]:
        return [
            c
            for c in self.active_calls()
            if c.direction is Direction.INCOMING and c.state is CallState.RINGING
        ]

    def selected_call(self) -> SimCall | None:
        """The call in the selected tab: the last one placed or answered that is still up."""
        with self._lock:
            if self._selected is not None and self._selected.active:
                return self._selected
            connected = [c for c in self.active_calls() if c.state is CallState.CONNECTED]
            if connected:
                return max(connected, key=lambda c: c.answered_at or 0.0)
            active = self.active_calls()
            return active[-1] if active else None

    def call(self, call_id: int) -> SimCall:
        with self._lock:
            for call in self.calls:
                if call.id == call_id:
                    return call
        raise NotFoundError(f"no simulated call {call_id}")

    # --- ini writes ------------------------------------------------------------------------------

    def _write_ini(self, change: Callable[[IniDocument], object]) -> None:
        """Read, change, write: what each WritePrivateProfileString does to the file."""
        doc = IniDocument.load(self.folder.ini)
        change(doc)
        if doc.modified:
            doc.save(backups=0)

    def _history_number(self, user: str, domain: str) -> str:
        # facts §5: the user part, with @domain when the domain is not the account's.
        if not user:
            return domain
        if domain and domain.casefold() != self.settings.account_domain.casefold():
            return f"{user}@{domain}"
        return user

    def _create_entry(self, call: SimCall, call_type: CallType) -> None:
        call.call_type = call_type

        def add(doc: IniDocument) -> None:
            call.key = append_entry(
                doc, call.number, call.name, call_type, math.floor(call.created_at), 0, ""
            )

        try:
            self._write_ini(add)
        except BridgeError as exc:
            # MicroSIP would write the damaged entry anyway; the library refuses numbers that
            # [Calls] cannot hold (';', line breaks, a leading quote, too long). The call goes
            # on without an entry, and says why.
            call.history_error = str(exc)

    def _finish_entry(self, call: SimCall) -> None:
        key = call.key
        if key is None:
            return

        def finish(doc: IniDocument) -> None:
            update_entry(doc, key, type=call.call_type, duration=call.duration, info=call.info)

        try:
            self._write_ini(finish)
        except (NotFoundError, FileFormatError) as exc:
            # Someone deleted or damaged the entry under us; MicroSIP would rewrite it, but we
            # write only through calls_history, which will not guess a slot's other fields.
            call.history_error = str(exc)

    def _add_dialed(self, text: str) -> None:
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
        self._write_ini(add)

    # --- hooks -----------------------------------------------------------------------------------

    def _hook_number(self, event: Event, call: SimCall) -> str:
        if call.user:
            return call.user
        if event in (Event.BUSY, Event.END) and self.version >= S20:
            return call.domain  # facts §2.4: busy/end fall back to the domain (3.20+)
        return ""

    def fire(self, event: Event, number: str) -> FiredEvent:
        """Run the hook configured for ``event`` with ``number`` as MicroSIP's RunCmd would,
        outside any call (``call_id`` 0): for testing hooks with numbers no call would carry."""
        with self._lock:
            self._require_running()
            return self._run_hook(Event(event), number, 0)

    def _fire(self, event: Event, call: SimCall) -> FiredEvent:
        fired = self._run_hook(event, self._hook_number(event, call), call.id)
        call.events.append(event)
        return fired

    def _run_hook(self, event: Event, number: str, call_id: int) -> FiredEvent:
        value = self.settings.hooks.get(event, "")
        run = None
        # MicroSIP calls RunCmd only for a non-empty value (facts §2.2 code locations).
        if value and self.run_hooks:
            run = self.hooks.run(event, value, number)
            if run is not None:
                self.hook_runs.append(run)
        fired = FiredEvent(event, number, call_id, self.now(), run)
        self.events.append(fired)
        if self.on_event is not None:
            self.on_event(fired)
        return fired

    # --- building calls --------------------------------------------------------------------------

    def _require_running(self) -> None:
        if not self.stack_running:
            raise SimulatorError("the simulator is not running (start() it first)")

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
        domain = (domain if domain is not None else self.settings.account_domain).strip()
        if not user and not domain:
            raise SimulatorError("a call needs a number or a domain")
        for what, value in (("number", user), ("domain", domain), ("name", display_name)):
            if "\x00" in value:
                raise SimulatorError(f"the {what} contains NUL, which no SIP header can carry")
        name = "" if self.settings.disable_name_lookup else lookup_name(self.contacts, user)
        # facts §4.4: contacts first, then the SIP display name, then the number.
        name = name or display_name or original or user or domain
        call = SimCall(
            id=next(self._ids),
            direction=direction,
            user=user,
            domain=domain,
            display_name=display_name,
            number=self._history_number(user, domain),
            name=name,
            video=video,
            state=state,
            created_at=self.now(),
        )
        self.calls.append(call)
        return call

    def _others(self, call: SimCall) -> list[SimCall]:
        return [c for c in self.active_calls() if c is not call]

    # --- incoming calls ---------------------------------------------------------------------------

    def incoming(
        self,
        number: str,
        name: str = "",
        *,
        domain: str | None = None,
        video: bool = False,
        auto_answer: bool | None = None,
        auto_answer_delay: float | None = None,
    ) -> SimCall:
        """An INVITE from ``number`` (the caller's user part; ``domain`` defaults to the account's)
        with display name ``name``.

        ``incoming`` fires first, always (facts §2.2). Then MicroSIP's checks may reject the
        call at once, which then has no tab, no [Calls] entry and no other event: the DND toggle
        or denyIncoming=all, a call from a number that already has one, callWaiting=0 with a call
        up, maxConcurrentCalls reached. Otherwise it gets its tab and [Calls] entry and rings
        (``ring``), unless it is auto-answered without delay (``answer``, ``start``, no ring).
        ``auto_answer`` None follows the ini (autoAnswer=all, or =button with AA=1); True forces
        it (e.g. a PBX's auto-answer header). Either way it applies only when no other call is
        up, unless autoAnswerCalls says otherwise (facts §3.4). ``auto_answer_delay`` defaults to
        autoAnswerDelay; with a delay the call rings first.
        """
        with self._lock:
            self._require_running()
            user, domain = _split_uri(number, domain)
            call = self._new_call(Direction.INCOMING, user, domain, name, video, CallState.RINGING)
            self._fire(Event.INCOMING, call)
            reason = self._rejection(call)
            if reason:
                return self._reject(call, reason)
            auto = self._auto_answers(call, auto_answer)
            delay = (
                self.settings.auto_answer_delay if auto_answer_delay is None else auto_answer_delay
            )
            _check_seconds("auto_answer_delay", delay)
            self._create_entry(call, CallType.INCOMING)
            if auto and delay == 0:
                call.auto_answered = True
                self._connect(call)
                return call
            self._fire(Event.RING, call)
            if auto:
                self.schedule(
                    delay, lambda: self._delayed_auto_answer(call), f"auto-answer {call.id}"
                )
            return call

    def reject_dnd(
        self, number: str, name: str = "", *, domain: str | None = None, video: bool = False
    ) -> SimCall:
        """An INVITE rejected by do-not-disturb: ``incoming`` only, no tab, no [Calls] entry
        (facts §2.2, §5 "Rejected calls"), whatever the ini says."""
        with self._lock:
            self._require_running()
            user, domain = _split_uri(number, domain)
            call = self._new_call(Direction.INCOMING, user, domain, name, video, CallState.RINGING)
            self._fire(Event.INCOMING, call)
            return self._reject(call, "do not disturb")

    def set_dnd(self, on: bool) -> None:
        """Press the DND toggle (with denyIncoming=button, it rejects incoming calls)."""
        with self._lock:
            self.settings = _replace_settings(self.settings, dnd=on)

    def _rejection(self, call: SimCall) -> str:
        s = self.settings
        deny = s.deny_incoming.casefold()
        # Only the DND toggle and "all" are modelled; the user/domain variants of denyIncoming
        # need the caller's full URI matched against the account (not in the facts).
        if deny == "all":
            return "denyIncoming=all"
        if deny == "button" and s.dnd:
            return "do not disturb"
        others = self._others(call)
        if any(c.number == call.number for c in others):
            return "a call from this number is already up"
        if others and not s.call_waiting:
            return "callWaiting=0"
        if s.max_concurrent_calls and len(others) >= s.max_concurrent_calls:
            return f"maxConcurrentCalls={s.max_concurrent_calls}"
        return ""

    def _reject(self, call: SimCall, reason: str) -> SimCall:
        # MicroSIP answers 486 and flags the call "hidden": it gets no tab and no later event
        # (facts §2.2); the end is ours, for bookkeeping.
        call.hidden = True
        call.rejected_because = reason
        call.state = CallState.ENDED
        call.ended_at = self.now()
        call.outcome = Outcome.REJECTED
        return call

    def _auto_answers(self, call: SimCall, forced: bool | None) -> bool:
        s = self.settings
        if forced is None:
            mode = s.auto_answer.casefold()
            wanted = mode == "all" or (mode == "button" and s.aa)
        else:
            wanted = forced
        if not wanted:
            return False
        if s.auto_answer_numbers and not any(
            fnmatch.fnmatchcase(call.user, pattern) for pattern in s.auto_answer_numbers
        ):
            return False  # facts §3.4: autoAnswerNumber limits it to matching callers
        others = self._others(call)
        policy = s.auto_answer_calls.casefold()
        if policy == "all":
            return True
        if policy == "hold":
            return all(c.held for c in others)
        return not others

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
        if kind is EndKind.BUSY or kind is EndKind.FAILED:
            call.info = reason or sip_reason(status or 0)
        else:
            call.info = INFO_TEXTS[kind]
        if incoming and not answered:
            elsewhere = kind is EndKind.ELSEWHERE and self.version >= S22
            # facts §5: type 2 missed (3 answered elsewhere, 3.22 only) for an incoming call that
            # never connected.
            call.call_type = CallType.ANSWERED_ELSEWHERE if elsewhere else CallType.MISSED
        if kind is EndKind.ELSEWHERE and self.version < S22:
            # Only 3.22 knows "answered elsewhere"; older versions record a plain missed call.
            kind = EndKind.MISSED
            call.info = INFO_MISSED
        call.outcome = _outcome(call, kind)
        event = Event.BUSY if kind in (EndKind.BUSY, EndKind.DECLINED) else Event.END
        if self.version >= S20:
            self._finish_entry(call)  # facts §5: written before busy/end on 3.20+
            self._fire(event, call)
        else:
            self._fire(event, call)  # 3.19 runs the hook before updating the history
            self._finish_entry(call)
        if kind is EndKind.LOCAL_HANGUP and not answered and not incoming:
            call.info = CANCELED_LATER
            self._finish_entry(call)
        if self._selected is call:
            self._selected = None

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

    # --- the user's actions ----------------------------------------------------------------------

    def _first_ringing(self) -> SimCall | None:
        """The call /answer and Decline act on: the first incoming call still ringing."""
        ringing = self.ringing_incoming()
        return ringing[0] if ringing else None

    def answer(self, call: SimCall | None = None) -> SimCall | None:
        """Answer ``call``, or the first incoming call still ringing (/answer, facts §1.6 4);
        None when none rings. In single mode another connected call is put on hold (no hook:
        facts §2.1 lists no hold trigger)."""
        with self._lock:
            self._require_running()
            call = call or self._first_ringing()
            if call is None:
                return None
            self._expect(call, CallState.RINGING, direction=Direction.INCOMING)
            if self.settings.single_mode:
                for other in self._others(call):
                    if other.state is CallState.CONNECTED:
                        other.held = True
            self._connect(call)
            return call

    def decline(self, call: SimCall | None = None) -> SimCall | None:
        """Press Decline on a ringing incoming call (the first one if None): MicroSIP answers 486,
        so ``busy`` fires, not ``end`` (facts §2.2)."""
        with self._lock:
            self._require_running()
            call = call or self._first_ringing()
            if call is None:
                return None
            self._expect(call, CallState.RINGING, direction=Direction.INCOMING)
            self._end(call, EndKind.DECLINED)
            return call

    def hang_up(self, call: SimCall | None = None) -> SimCall | None:
        """Press End on ``call`` (the selected call if None): the fast hang-up path, which fires
        ``end`` at once (facts §2.2). None when there is no call."""
        with self._lock:
            self._require_running()
            call = call if call is not None else self.selected_call()
            if call is None:
                return None
            self._expect(call, CallState.RINGING, CallState.DIALING, CallState.CONNECTED)
            self._end(call, EndKind.LOCAL_HANGUP if call.answered_at is None else EndKind.HUNG_UP)
            return call

    def hangup_all(self) -> list[SimCall]:
        """/hangupall: every call except incoming calls still ringing (facts §1.6 4)."""
        with self._lock:
            targets = [
                c
                for c in self.active_calls()
                if not (c.direction is Direction.INCOMING and c.state is CallState.RINGING)
            ]
            for call in targets:
                self.hang_up(call)
            return targets

    def hangup_incoming(self) -> list[SimCall]:
        """/hangupincoming (3.22): every incoming call still ringing."""
        with self._lock:
            targets = self.ringing_incoming()
            for call in targets:
                self.hang_up(call)
            return targets

    def hangup_calling(self) -> list[SimCall]:
        """/hangupcalling (3.20+): outgoing calls not connected yet."""
        with self._lock:
            targets = [c for c in self.active_calls() if c.state is CallState.DIALING]
            for call in targets:
                self.hang_up(call)
            return targets

    def hold(self, call: SimCall | None = None) -> SimCall | None:
        """msip:hold: toggle hold on the selected connected call (no hook fires)."""
        with self._lock:
            call = call if call is not None else self.selected_call()
            if call is None or call.state is not CallState.CONNECTED:
                return None
            call.held = not call.held
            return call

    def send_dtmf(self, digits: str) -> SimCall | None:
        """/dtmf: digits on the call in the selected tab (recorded; no hook)."""
        with self._lock:
            call = self.selected_call()
            if call is None or call.state is not CallState.CONNECTED:
                return None
            call.dtmf.append(digits)
            return call

    def transfer(self, target: str) -> SimCall | None:
        """Blind transfer of the selected connected call: the remote side is referred elsewhere
        and then hangs up, so the call ends with ``end`` (there is no transfer trigger, facts
        §2.1)."""
        with self._lock:
            call = self.selected_call()
            if call is None or call.state is not CallState.CONNECTED:
                return None
            call.transferred_to = target
            self._end(call, EndKind.HUNG_UP)
            return call

    # --- the remote parties' actions -------------------------------------------------------------

    def caller_cancels(self, call: SimCall) -> SimCall:
        """The caller gives up while the call rings: ``end``, a missed call (facts §2.2, §5)."""
        with self._lock:
            self._expect(call, CallState.RINGING, direction=Direction.INCOMING)
            self._end(call, EndKind.MISSED)
            return call

    def answered_elsewhere(self, call: SimCall) -> SimCall:
        """Another phone took the call: ``end``, [Calls] type 3 on 3.22 (facts §5)."""
        with self._lock:
            self._expect(call, CallState.RINGING, direction=Direction.INCOMING)
            self._end(call, EndKind.ELSEWHERE)
            return call

    def remote_answers(self, call: SimCall) -> SimCall:
        """The called party answers: ``start`` (facts §2.2)."""
        with self._lock:
            self._expect(call, CallState.DIALING, direction=Direction.OUTGOING)
            self._connect(call)
            return call

    def remote_busy(self, call: SimCall, status: int = 486) -> SimCall:
        """The called party is busy or declines (486, 600, 603): ``busy`` (facts §2.2)."""
        with self._lock:
            check_failure_status(status, busy=True)
            self._expect(call, CallState.DIALING, direction=Direction.OUTGOING)
            self._end(call, EndKind.BUSY, status=status)
            return call

    def remote_fails(self, call: SimCall, status: int = 404, reason: str | None = None) -> SimCall:
        """The call fails with ``status`` (404, 408, 480, 5xx ...): ``end``, and [Calls] info is
        the error text (facts §2.2, §5)."""
        with self._lock:
            check_failure_status(status, busy=False)
            self._expect(call, CallState.DIALING, direction=Direction.OUTGOING)
            self._end(call, EndKind.FAILED, status=status, reason=reason or "")
            return call

    def remote_hangs_up(self, call: SimCall) -> SimCall:
        """The other side ends a connected call (BYE): ``end``. A caller hanging up before the
        answer is :meth:`caller_cancels`."""
        with self._lock:
            if call.direction is Direction.INCOMING and call.state is CallState.RINGING:
                return self.caller_cancels(call)
            self._expect(call, CallState.CONNECTED)
            self._end(call, EndKind.HUNG_UP)
            return call

    # --- outgoing calls --------------------------------------------------------------------------

    def outgoing(
        self, number: str, *, remote: RemoteBehaviour | None = None, video: bool = False
    ) -> SimCall | None:
        """Dial ``number`` as the dial command ``number`` would (a number, ``user@host`` or a
        ``sip:``/``tel:`` URI, parsed by the library's grammar). Returns the call, or None when
        MicroSIP would place none (single mode with a call up, no valid account, an invalid
        number). The remote party then behaves as ``remote`` says, else as :attr:`remotes` says
        for the number (or ``"*"``), else as :attr:`default_remote`."""
        cmd = parse(number, self.version)
        if cmd.verb is not Verb.DIAL:
            raise CommandError(
                f"{number!r} is not a number to dial: MicroSIP would {cmd.description}"
            )
        with self._lock:
            self._require_running()
            return self._place_call(cmd, remote, video)

    def _place_call(
        self, cmd: Command, remote: RemoteBehaviour | None, video: bool = False
    ) -> SimCall | None:
        if cmd.account is not None and not self._switch_account(cmd.account):
            self._note(cmd, f"Account{cmd.account} does not exist: the command is dropped")
            return None
        target = cmd.target
        if not target or target.startswith("/"):
            # An unknown switch is dialled and "normally fails with an error box" (facts §1.7).
            self._note(cmd, f"error box: {target!r} is not a valid number; no call")
            return None
        if not self.settings.account_domain:
            self._note(cmd, "error box: no valid account to call from; no call")
            return None
        self._add_dialed(target + cmd.post_dial)
        if self.settings.single_mode and self.active_calls():
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
        self._create_entry(call, CallType.OUTGOING)
        self._fire(Event.OUTGOING, call)
        self._play_remote(call, remote or self._remote_for(user, target))
        return call

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
        """Schedule the end of a connected call after ``talk`` seconds, by ``by``."""
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

    def _switch_account(self, n: int) -> bool:
        doc = IniDocument.load(self.folder.ini)
        domain = account_domain(doc, n)
        if not domain:
            return False
        # facts §1.6 3: the account becomes the active one, saved to the ini, and re-registers.
        self._write_ini(lambda d: d.set(SETTINGS, "accountId", str(n)))
        self.settings = _replace_settings(self.settings, account_id=n, account_domain=domain)
        return True

    # --- commands --------------------------------------------------------------------------------

    def command(self, text: str, *, dw_data: int = 1) -> int:
        """Handle a WM_COPYDATA command (facts §1.4) and return what SendMessage would.

        ``dw_data=1`` runs it now and returns 0; ``2`` (3.20+) queues it for :meth:`run` and
        returns 0; any other value, or any command while the SIP stack is down, returns 1. The
        text is classified by the library's grammar (commands.parse); what parse refuses
        (/reset, control characters, over-long text) raises CommandError or UnsafeInputError
        and is never acted on.
        """
        with self._lock:
            if dw_data not in (1, 2) or (dw_data == 2 and self.version < S20):
                self._record(text, dw_data, None, 1, f"dwData={dw_data} is ignored")
                return 1
            if not self.stack_running:
                self._record(text, dw_data, None, 1, "SIP stack not running: dropped")
                return 1
            cmd = parse(text, self.version)
            if dw_data == 2:
                self._record(text, dw_data, cmd.verb, 0, "queued")
                self.schedule(0.0, lambda: self.execute(cmd), f"command {text!r}")
                return 0
            self._record(text, dw_data, cmd.verb, 0, "done")
            self.execute(cmd)
            return 0

    def execute(self, cmd: Command) -> SimCall | None:
        """Do what a parsed command does (CommandLine, facts §1.5-1.6). Returns the new call of a
        dial, else None."""
        with self._lock:
            if not self.stack_running:
                return None
            verb = cmd.verb
            if verb is Verb.DIAL:
                return self._place_call(cmd, None)
            if cmd.account is not None and not self._switch_account(cmd.account):
                self._note(cmd, f"Account{cmd.account} does not exist: the command is dropped")
                return None
            if verb is Verb.MESSAGE:
                self.messages.append(SentMessage(cmd.target, cmd.message, self.now()))
            elif verb is Verb.ANSWER:
                self.answer()
            elif verb is Verb.HANGUP_ALL:
                self.hangup_all()
            elif verb is Verb.HANGUP_INCOMING:
                self.hangup_incoming()
            elif verb is Verb.HANGUP_CALLING:
                self.hangup_calling()
            elif verb is Verb.DTMF:
                self.send_dtmf(cmd.digits)
            elif verb is Verb.TRANSFER:
                self.transfer(cmd.target)
            elif verb is Verb.HOLD:
                self.hold()
            elif verb is Verb.PASSWORD:
                self.password_override = cmd.password  # in memory only (facts §1.6 4)
            elif verb is Verb.SET_ACCOUNT_PASSWORD:
                # MicroSIP would save it RC2-encrypted with a key nobody has (facts §3.5); the
                # simulator cannot produce that, so it writes nothing.
                self._note(cmd, "a saved password is not simulated: nothing written")
            elif verb in _MUTE_STATES:
                self._set_mute(verb)
            elif verb is not Verb.ACCOUNT:
                # minimize, volume, dialer-only DTMF, show, nothing: no visible effect here.
                self.ui_actions.append(verb.value)
            return None

    def _set_mute(self, verb: Verb) -> None:
        self.ui_actions.append(verb.value)
        if verb is Verb.MIC_MUTE:
            self.mic_muted = True
        elif verb is Verb.MIC_UNMUTE:
            self.mic_muted = False
        elif verb is Verb.MIC_TOGGLE:
            self.mic_muted = not self.mic_muted
        elif verb is Verb.SPEAKER_MUTE:
            self.speaker_muted = True
        elif verb is Verb.SPEAKER_UNMUTE:
            self.speaker_muted = False
        else:
            self.speaker_muted = not self.speaker_muted

    def _record(self, text: str, dw_data: int, verb: Verb | None, result: int, note: str) -> None:
        self.commands.append(CommandRecord(text, dw_data, verb, result, note, self.now()))

    def _note(self, cmd: Command, note: str) -> None:
        self.commands.append(CommandRecord(cmd.text, 0, cmd.verb, 0, note, self.now()))

    # --- reporting -------------------------------------------------------------------------------

    def summary(self) -> SimSummary:
        """Counts, and how long the hooks blocked the simulated MicroSIP, per event."""
        with self._lock:
            per_event: dict[Event, HookStats] = {}
            for run in self.hook_runs:
                stats = per_event.get(run.event, HookStats())
                per_event[run.event] = HookStats(
                    runs=stats.runs + 1,
                    max_blocked=max(stats.max_blocked, run.blocked_seconds),
                    total_blocked=stats.total_blocked + run.blocked_seconds,
                    timeouts=stats.timeouts + int(run.timed_out),
                    errors=stats.errors + int(run.error is not None),
                )
            return SimSummary(
                calls=sum(1 for c in self.calls if not c.hidden),
                rejected=sum(1 for c in self.calls if c.hidden),
                events=len(self.events),
                per_event={e: per_event[e] for e in HOOK_KEYS if e in per_event},
            )


@dataclass(frozen=True, slots=True)
class HookStats:
    """How often one event's hook ran and how long it held MicroSIP up."""

    runs: int = 0
    max_blocked: float = 0.0
    total_blocked: float = 0.0
    timeouts: int = 0
    errors: int = 0


@dataclass(frozen=True, slots=True)
class SimSummary:
    """The totals of a simulator run."""

    calls: int
    rejected: int
    events: int
    per_event: dict[Event, HookStats]

    @property
    def hook_runs(self) -> int:
        return sum(s.runs for s in self.per_event.values())

    @property
    def max_blocked(self) -> float:
        return max((s.max_blocked for s in self.per_event.values()), default=0.0)


_MUTE_STATES = frozenset(
    {
        Verb.MIC_MUTE,
        Verb.MIC_UNMUTE,
        Verb.MIC_TOGGLE,
        Verb.SPEAKER_MUTE,
        Verb.SPEAKER_UNMUTE,
        Verb.SPEAKER_TOGGLE,
    }
)


def _replace_settings(settings: SimSettings, **changes: object) -> SimSettings:
    return dataclasses.replace(settings, **changes)  # type: ignore[arg-type]


def _split_uri(number: str, domain: str | None) -> tuple[str, str | None]:
    """``user@host`` given as the number: its user part, and the host unless a domain is given."""
    if not isinstance(number, str):
        raise SimulatorError(f"a number must be text, not {type(number).__name__}")
    user, at, host = number.partition("@")
    if at and domain is None:
        return user, host
    return (user if at else number), domain


def _outcome(call: SimCall, kind: EndKind) -> Outcome:
    """What the call-state model should conclude (calls/model.py's Outcome)."""
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
