"""One simulator session, as `microsip-bridge sim` runs it: folder, plays, command channel."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from microsip_bridge.microsip.commands import Channel, Verb, parse
from microsip_bridge.sim.channel import CommandChannel
from microsip_bridge.sim.clock import RealClock, SimClock
from microsip_bridge.sim.folder import (
    DEFAULT_DOMAIN,
    DEFAULT_VERSION,
    SimFolder,
    create_folder,
    open_folder,
)
from microsip_bridge.sim.records import FiredEvent, SimCall
from microsip_bridge.sim.runcmd import MICROSIP_HOOK_TIMEOUT
from microsip_bridge.sim.scenario import Scenario, schedule_scenario, steps_from_specs
from microsip_bridge.sim.simulator import Simulator


@dataclass
class SessionPlan:
    """What a session does: which folder, what to play, whether to serve commands."""

    folder: Path
    create: bool = False
    domain: str = DEFAULT_DOMAIN
    version: str = DEFAULT_VERSION
    scenario: Scenario | None = None
    calls: Sequence[str] = ()
    commands: Sequence[str] = ()
    speed: float = 1.0
    serve: bool = False
    port: int = 0
    hook_timeout: float = MICROSIP_HOOK_TIMEOUT
    show_hook_output: bool = False
    rewrite_settings_on_exit: bool = False
    clock: SimClock | None = field(default=None, repr=False)

    @property
    def plays_anything(self) -> bool:
        return bool(self.scenario or self.calls or self.commands or self.serve)


def prepare_folder(plan: SessionPlan) -> tuple[SimFolder, bool]:
    """The session's folder, created first with ``create`` when it has no microsip.ini yet;
    returns it and whether it was created."""
    folder = SimFolder(Path(plan.folder))
    if plan.create and not folder.ini.exists():
        return create_folder(folder.path, domain=plan.domain, version=plan.version), True
    return open_folder(folder.path), False


def run_session(
    plan: SessionPlan,
    *,
    on_event: Callable[[FiredEvent], None] | None = None,
    on_ready: Callable[[Simulator, tuple[str, int] | None], None] | None = None,
) -> Simulator:
    """Start a simulator on the plan's folder, play the scenario, then the --call steps, with the
    start-up commands first (MicroSIP runs its command line once the SIP stack is up, facts
    §1.2), and serve commands if asked, until the plays are over (without ``serve``) or until
    the channel's /exit or Ctrl-C (with it). The simulator is closed (its marker removed) on
    every way out; the returned one holds the calls, events and hook runs."""
    folder, _ = prepare_folder(plan)
    steps = steps_from_specs(plan.calls, start=plan.scenario.length() + 1 if plan.scenario else 0)
    commands = startup_commands(plan.commands)
    sim = Simulator(
        folder,
        clock=plan.clock or RealClock(plan.speed),
        hook_timeout=plan.hook_timeout,
        version=plan.version,
        show_hook_output=plan.show_hook_output,
        rewrite_settings_on_exit=plan.rewrite_settings_on_exit,
        on_event=on_event,
    )
    channel: CommandChannel | None = None
    with sim:
        try:
            address = None
            if plan.serve:
                channel = CommandChannel(sim, port=plan.port)
                address = channel.start()
            if on_ready is not None:
                on_ready(sim, address)
            for text in commands:
                sim.command(text, dw_data=1)
            if plan.scenario is not None:
                schedule_scenario(sim, plan.scenario)
            if steps:
                schedule_scenario(sim, Scenario(tuple(steps)))
            sim.run(until_idle=not plan.serve)
        finally:
            if channel is not None:
                channel.close()
    return sim


def startup_commands(texts: Sequence[str]) -> list[str]:
    """The command lines a starting MicroSIP passes to CommandLine() (facts §1.2): not the
    start-up switches, which only choose how the window starts. Refuses /reset and unsafe text
    before anything starts."""
    kept: list[str] = []
    for text in texts:
        cmd = parse(text, channel=Channel.COMMAND_LINE)
        if cmd.verb not in (Verb.SHOW, Verb.START_MINIMIZED, Verb.START_HIDDEN):
            kept.append(text)
    return kept


def call_record(call: SimCall) -> dict[str, Any]:
    """A call as plain data, for JSON output."""
    return {
        "id": call.id,
        "direction": call.direction.value,
        "number": call.user,
        "domain": call.domain,
        "name": call.name,
        "state": call.state.value,
        "outcome": call.outcome.value if call.outcome else None,
        "duration": call.duration,
        "rejected": call.rejected_because or None,
        "calls_key": call.key,
        "calls_type": int(call.call_type) if call.call_type is not None else None,
        "info": call.info,
        "events": [e.value for e in call.events],
        "history_error": call.history_error,
    }


def session_record(sim: Simulator) -> dict[str, Any]:
    """Everything a session did, as plain data: calls, hook runs and the blocking summary."""
    summary = sim.summary()
    return {
        "folder": str(sim.folder.path),
        "version": str(sim.version),
        "calls": [call_record(c) for c in sim.calls],
        "hooks": [
            {
                "event": run.event.value,
                "number": run.number,
                "argv": list(run.argv),
                "blocked_seconds": round(run.blocked_seconds, 6),
                "returncode": run.returncode,
                "timed_out": run.timed_out,
                "error": run.error,
            }
            for run in sim.hook_runs
        ],
        "messages": [{"number": m.number, "text": m.text} for m in sim.messages],
        "max_blocked_seconds": round(summary.max_blocked, 6),
    }
