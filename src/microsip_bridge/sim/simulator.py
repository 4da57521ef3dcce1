"""The simulated MicroSIP: life cycle, scheduler and events, wiring the rooms that do the rest."""

from __future__ import annotations

import heapq
import itertools
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from microsip_bridge.microsip.commands import Command, Version
from microsip_bridge.microsip.contact import Contact
from microsip_bridge.microsip.hook_keys import HOOK_KEYS
from microsip_bridge.model import Event
from microsip_bridge.sim.calls import CallMachine, HangupBy, RemoteBehaviour, dial_command
from microsip_bridge.sim.clock import RealClock, SimClock
from microsip_bridge.sim.dispatch import Dispatcher, SentMessage
from microsip_bridge.sim.folder import DEFAULT_VERSION, SimFolder, open_folder
from microsip_bridge.sim.history import HistoryWriter
from microsip_bridge.sim.records import (
    Action,
    CommandRecord,
    FiredEvent,
    SimCall,
    SimulatorError,
    check_seconds,
)
from microsip_bridge.sim.runcmd import MICROSIP_HOOK_TIMEOUT, HookRun, HookRunner
from microsip_bridge.sim.settings import IniSettings, SimSettings


class Simulator:
    """A simulated MicroSIP on a folder, following the facts file (docs/microsip-facts.md in the
    shared folder; where it is silent, the comments say what we chose and why).

    Use it as a context manager (or call :meth:`start` and :meth:`close`): while it runs it
    keeps the ``microsip-sim.pid`` marker in the folder, so the bridge sees "MicroSIP is
    running" (process.SIM_PID_FILE). Drive it with the user's actions (:meth:`answer`,
    :meth:`decline`, :meth:`hang_up`, :meth:`command` ...) and the remote parties' ones
    (:meth:`incoming`, :meth:`remote_answers`, :meth:`caller_cancels` ...); :meth:`schedule` and
    :meth:`run` play timed steps (sim/scenario.py) on ``clock``.

    The rooms: sim/settings.py holds what MicroSIP read at start-up, sim/calls.py the calls'
    state machine, sim/history.py writes [Calls] and [Dialed], sim/dispatch.py takes commands,
    sim/runcmd.py runs the hooks. Here: the life cycle, the scheduler, firing events, the lock.

    **Threads.** MicroSIP runs hooks on its SIP and UI threads and is blocked while they run. Here
    one re-entrant lock serialises everything the simulator does (scheduled steps, commands from
    the channel, calls from tests), and hooks run with it held: a slow hook delays everything
    else, as it would in MicroSIP.
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
        check_seconds("hook_timeout", hook_timeout)
        self.hooks = HookRunner(hook_timeout, show_output=show_hook_output)
        self.rewrite_settings_on_exit = rewrite_settings_on_exit
        self.on_event = on_event
        self.events: list[FiredEvent] = []
        self.hook_runs: list[HookRun] = []
        self.commands: list[CommandRecord] = []
        self.stack_running = False
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._timers: list[tuple[float, int, str, Action]] = []
        self._seq = itertools.count()
        self._stop = False
        self._due: float | None = None
        self._settings = IniSettings(self.folder)
        self._calls = CallMachine(
            version=self.version,
            settings=self._settings,
            history=HistoryWriter(self.folder),
            fire=self._fire,
            now=self.now,
            schedule=self.schedule,
            commands=self.commands,
            remotes=dict(remotes or {}),
            default_remote=default_remote or RemoteBehaviour(),
        )
        self._dispatch = Dispatcher(
            version=self.version,
            calls=self._calls,
            settings=self._settings,
            commands=self.commands,
            now=self.now,
            schedule=self.schedule,
            running=lambda: self.stack_running,
        )

    # --- the rooms' state, as the simulator's ----------------------------------------------------

    @property
    def settings(self) -> SimSettings:
        """What MicroSIP read from [Settings] and the active account (sim/settings.py)."""
        return self._settings.current

    @property
    def contacts(self) -> list[Contact]:
        """Contacts.xml as MicroSIP loaded it at start-up."""
        return self._settings.contacts

    @property
    def calls(self) -> list[SimCall]:
        """Every call, oldest first, rejected ones included."""
        return self._calls.calls

    @property
    def remotes(self) -> dict[str, RemoteBehaviour]:
        """How called parties behave, by number, ``user@host`` or ``"*"``."""
        return self._calls.remotes

    @remotes.setter
    def remotes(self, remotes: dict[str, RemoteBehaviour]) -> None:
        self._calls.remotes = remotes

    @property
    def default_remote(self) -> RemoteBehaviour:
        """How a called party not in :attr:`remotes` behaves."""
        return self._calls.default_remote

    @default_remote.setter
    def default_remote(self, remote: RemoteBehaviour) -> None:
        self._calls.default_remote = remote

    @property
    def messages(self) -> list[SentMessage]:
        return self._dispatch.messages

    @property
    def ui_actions(self) -> list[str]:
        """The commands that only act on MicroSIP's window (minimize, volume, show ...)."""
        return self._dispatch.ui_actions

    @property
    def mic_muted(self) -> bool:
        return self._dispatch.mic_muted

    @property
    def speaker_muted(self) -> bool:
        return self._dispatch.speaker_muted

    @property
    def password_override(self) -> str | None:
        """The password a /password command set, in memory only."""
        return self._dispatch.password_override

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
                self._settings.load()
                self._settings.write_version(self.version)
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
            self._calls.drop_all()
            try:
                if was_running and self.rewrite_settings_on_exit:
                    self._settings.write_back()
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
            self._settings.load()

    def _require_running(self) -> None:
        if not self.stack_running:
            raise SimulatorError("the simulator is not running (start() it first)")

    # --- time and the scheduler ------------------------------------------------------------------

    def now(self) -> float:
        """Simulated Unix time. While a scheduled action runs it is that action's due time, so
        that a step's timings are exact however late the host runs it (a slow hook, a fast
        --speed): a 3-second talk gives a 3-second duration."""
        due = self._due
        return self.clock.now() if due is None else due

    def schedule(self, delay: float, action: Action, label: str = "") -> None:
        """Run ``action`` after ``delay`` seconds of simulated time (in :meth:`run`)."""
        check_seconds("delay", delay)
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

    # --- hooks -----------------------------------------------------------------------------------

    def fire(self, event: Event, number: str) -> FiredEvent:
        """Run the hook configured for ``event`` with ``number`` as MicroSIP's RunCmd would,
        outside any call (``call_id`` 0): for testing hooks with numbers no call would carry."""
        with self._lock:
            self._require_running()
            return self._fire(Event(event), number, 0)

    def _fire(self, event: Event, number: str, call_id: int) -> FiredEvent:
        # Hooks run like MSIP::RunCmd (sim/runcmd.py, facts §2.3): the simulator waits for each,
        # up to the timeout, and records how long it was blocked.
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

    # --- lookups ---------------------------------------------------------------------------------

    def active_calls(self) -> list[SimCall]:
        """Calls with a tab that have not ended, oldest first."""
        with self._lock:
            return self._calls.active_calls()

    def ringing_incoming(self) -> list[SimCall]:
        with self._lock:
            return self._calls.ringing_incoming()

    def selected_call(self) -> SimCall | None:
        """The call in the selected tab: the last one placed or answered that is still up."""
        with self._lock:
            return self._calls.selected_call()

    def call(self, call_id: int) -> SimCall:
        with self._lock:
            return self._calls.call(call_id)

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
            return self._calls.incoming(
                number,
                name,
                domain=domain,
                video=video,
                auto_answer=auto_answer,
                auto_answer_delay=auto_answer_delay,
            )

    def reject_dnd(
        self, number: str, name: str = "", *, domain: str | None = None, video: bool = False
    ) -> SimCall:
        """An INVITE rejected by do-not-disturb: ``incoming`` only, no tab, no [Calls] entry
        (facts §2.2, §5 "Rejected calls"), whatever the ini says."""
        with self._lock:
            self._require_running()
            return self._calls.reject_dnd(number, name, domain=domain, video=video)

    def set_dnd(self, on: bool) -> None:
        """Press the DND toggle (with denyIncoming=button, it rejects incoming calls)."""
        with self._lock:
            self._settings.set_dnd(on)

    # --- the user's actions ----------------------------------------------------------------------

    def answer(self, call: SimCall | None = None) -> SimCall | None:
        """Answer ``call``, or the first incoming call still ringing (/answer, facts §1.6 4);
        None when none rings. In single mode another connected call is put on hold (no hook:
        facts §2.1 lists no hold trigger)."""
        with self._lock:
            self._require_running()
            return self._calls.answer(call)

    def decline(self, call: SimCall | None = None) -> SimCall | None:
        """Press Decline on a ringing incoming call (the first one if None): MicroSIP answers 486,
        so ``busy`` fires, not ``end`` (facts §2.2)."""
        with self._lock:
            self._require_running()
            return self._calls.decline(call)

    def hang_up(self, call: SimCall | None = None) -> SimCall | None:
        """Press End on ``call`` (the selected call if None): the fast hang-up path, which fires
        ``end`` at once (facts §2.2). None when there is no call."""
        with self._lock:
            self._require_running()
            return self._calls.hang_up(call)

    def hangup_all(self) -> list[SimCall]:
        """/hangupall: every call except incoming calls still ringing (facts §1.6 4)."""
        with self._lock:
            return self._calls.hangup_all()

    def hangup_incoming(self) -> list[SimCall]:
        """/hangupincoming (3.22): every incoming call still ringing."""
        with self._lock:
            return self._calls.hangup_incoming()

    def hangup_calling(self) -> list[SimCall]:
        """/hangupcalling (3.20+): outgoing calls not connected yet."""
        with self._lock:
            return self._calls.hangup_calling()

    def hold(self, call: SimCall | None = None) -> SimCall | None:
        """msip:hold: toggle hold on the selected connected call (no hook fires)."""
        with self._lock:
            return self._calls.hold(call)

    def send_dtmf(self, digits: str) -> SimCall | None:
        """/dtmf: digits on the call in the selected tab (recorded; no hook)."""
        with self._lock:
            return self._calls.send_dtmf(digits)

    def transfer(self, target: str) -> SimCall | None:
        """Blind transfer of the selected connected call: the remote side is referred elsewhere
        and then hangs up, so the call ends with ``end`` (there is no transfer trigger, facts
        §2.1)."""
        with self._lock:
            return self._calls.transfer(target)

    # --- the remote parties' actions -------------------------------------------------------------

    def caller_cancels(self, call: SimCall) -> SimCall:
        """The caller gives up while the call rings: ``end``, a missed call (facts §2.2, §5)."""
        with self._lock:
            return self._calls.caller_cancels(call)

    def answered_elsewhere(self, call: SimCall) -> SimCall:
        """Another phone took the call: ``end``, [Calls] type 3 on 3.22 (facts §5)."""
        with self._lock:
            return self._calls.answered_elsewhere(call)

    def remote_answers(self, call: SimCall) -> SimCall:
        """The called party answers: ``start`` (facts §2.2)."""
        with self._lock:
            return self._calls.remote_answers(call)

    def remote_busy(self, call: SimCall, status: int = 486) -> SimCall:
        """The called party is busy or declines (486, 600, 603): ``busy`` (facts §2.2)."""
        with self._lock:
            return self._calls.remote_busy(call, status)

    def remote_fails(self, call: SimCall, status: int = 404, reason: str | None = None) -> SimCall:
        """The call fails with ``status`` (404, 408, 480, 5xx ...): ``end``, and [Calls] info is
        the error text (facts §2.2, §5)."""
        with self._lock:
            return self._calls.remote_fails(call, status, reason)

    def remote_hangs_up(self, call: SimCall) -> SimCall:
        """The other side ends a connected call (BYE): ``end``. A caller hanging up before the
        answer is :meth:`caller_cancels`."""
        with self._lock:
            return self._calls.remote_hangs_up(call)

    def end_after(self, call: SimCall, talk: float | None, by: HangupBy) -> None:
        """Schedule the end of a connected call after ``talk`` seconds, by ``by``."""
        self._calls.end_after(call, talk, by)

    # --- outgoing calls --------------------------------------------------------------------------

    def outgoing(
        self, number: str, *, remote: RemoteBehaviour | None = None, video: bool = False
    ) -> SimCall | None:
        """Dial ``number`` as the dial command ``number`` would (a number, ``user@host`` or a
        ``sip:``/``tel:`` URI, parsed by the library's grammar). Returns the call, or None when
        MicroSIP would place none (single mode with a call up, no valid account, an invalid
        number). The remote party then behaves as ``remote`` says, else as :attr:`remotes` says
        for the number (or ``"*"``), else as :attr:`default_remote`."""
        cmd = dial_command(number, self.version)
        with self._lock:
            self._require_running()
            return self._calls.place_call(cmd, remote, video)

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
            return self._dispatch.command(text, dw_data)

    def execute(self, cmd: Command) -> SimCall | None:
        """Do what a parsed command does (CommandLine, facts §1.5-1.6). Returns the new call of a
        dial, else None."""
        with self._lock:
            return self._dispatch.execute(cmd)

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
