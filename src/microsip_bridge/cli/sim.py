"""`microsip-bridge sim`: run the MicroSIP simulator on a folder, play calls, take commands."""

from __future__ import annotations

import json
import math
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

import click

from microsip_bridge.errors import BridgeError

if TYPE_CHECKING:
    from microsip_bridge.sim.records import FiredEvent
    from microsip_bridge.sim.simulator import Simulator

DEFAULT_FOLDER = "microsip-sim"


class Checked(click.ParamType[str]):
    """Text that ``check`` accepts (it raises BridgeError otherwise): a bad value is a usage
    error, reported before anything starts."""

    def __init__(self, name: str, check: Callable[[str], object]) -> None:
        self.name = name
        self.check = check

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> str:
        text = str(value)
        try:
            self.check(text)
        except BridgeError as exc:
            # Name the value (one of several --call options, say) unless the message does.
            said = exc.message if repr(text) in exc.message else f"{text!r}: {exc.message}"
            self.fail(said, param, ctx)
        return text


class NumberRange(click.FloatRange):
    """A FloatRange that also refuses NaN (which compares as inside any range)."""

    def convert(
        self, value: float, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        number: float = super().convert(value, param, ctx)
        if math.isnan(number):
            self.fail(f"{value!r} is not a number", param, ctx)
        return number


def _call_spec(text: str) -> None:
    from microsip_bridge.sim.scenario import parse_call_spec

    parse_call_spec(text)


def _command_line(text: str) -> None:
    from microsip_bridge.microsip.commands import Channel, parse

    parse(text, channel=Channel.COMMAND_LINE)


def _version(text: str) -> None:
    from microsip_bridge.microsip.commands import Version

    Version.parse(text)


def _domain(text: str) -> None:
    from microsip_bridge.sim.folder import check_domain

    check_domain(text)


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


@contextmanager
def _sigterm_stops() -> Iterator[None]:
    """SIGTERM stops the simulator cleanly, as Ctrl-C does (its marker is removed)."""
    if sys.platform != "win32":
        previous = signal.signal(signal.SIGTERM, _raise_interrupt)
        try:
            yield
        finally:
            signal.signal(signal.SIGTERM, previous)
    else:
        # Windows delivers no SIGTERM to Python code; Ctrl-C (KeyboardInterrupt) works.
        yield


def _event_line(sim: Simulator, fired: FiredEvent) -> str:
    start = sim.calls[0].created_at if sim.calls else fired.at
    hook = ""
    run = fired.hook
    if run is not None:
        if run.error:
            hook = f"hook failed to start: {run.error}"
        elif run.timed_out:
            hook = f"hook blocked {run.blocked_seconds:.3f} s (gave up waiting)"
        else:
            hook = f"hook blocked {run.blocked_seconds:.3f} s (exit {run.returncode})"
    number = fired.number or "(no number)"
    when = f"{fired.at - start:8.2f}s"
    return f"{when}  call {fired.call_id:<3} {fired.event.value:<12} {number:<16} {hook}".rstrip()


@click.command()
@click.argument(
    "folder",
    type=click.Path(path_type=Path, file_okay=False),
    default=DEFAULT_FOLDER,
    required=False,
)
@click.option(
    "--create", is_flag=True, help="Create the folder (microsip.ini, Contacts.xml) if needed."
)
@click.option(
    "--domain",
    type=Checked("DOMAIN", _domain),
    default="sip.example.invalid",
    show_default=True,
    help="With --create: the account's SIP domain.",
)
@click.option(
    "--sim-version",
    "version",
    type=Checked("VERSION", _version),
    default="3.22.3",
    show_default=True,
    help="The MicroSIP version to behave as (3.19, 3.20 and 3.22 rules differ).",
)
@click.option(
    "--scenario",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="A scenario file (.toml or .json) to play.",
)
@click.option(
    "--call",
    "calls",
    multiple=True,
    type=Checked("SPEC", _call_spec),
    help="A call to play, one after another: incoming:NUMBER[:THEN[:AFTER[:TALK]]], "
    "outgoing:NUMBER[:THEN[:AFTER[:TALK]]] or command:TEXT (repeatable).",
)
@click.option(
    "-c",
    "--command",
    "commands",
    multiple=True,
    type=Checked("TEXT", _command_line),
    help="A MicroSIP command line: sent to the simulator already running on FOLDER, as a second "
    "microsip.exe would, else run when this one starts (repeatable).",
)
@click.option(
    "--speed",
    type=NumberRange(min=0.01, max=1000),
    default=1.0,
    show_default=True,
    help="Play the scenario this many times faster (durations in [Calls] are not scaled).",
)
@click.option(
    "--serve", is_flag=True, help="Take commands over the local channel until /exit or Ctrl-C."
)
@click.option(
    "--port", type=click.IntRange(0, 65535), default=0, help="The channel's port (0: any)."
)
@click.option(
    "--hook-timeout",
    type=NumberRange(min=0, max=600),
    default=10.0,
    show_default=True,
    help="How long to wait for a hook, as MicroSIP's 10 s.",
)
@click.option("--show-hook-output", is_flag=True, help="Let hooks write to this terminal.")
@click.option(
    "--rewrite-on-exit",
    is_flag=True,
    help="Rewrite [Settings] from memory on exit, as MicroSIP does (undoes edits made meanwhile).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON report at the end instead.")
def sim(
    folder: Path,
    create: bool,
    domain: str,
    version: str,
    scenario: Path | None,
    calls: tuple[str, ...],
    commands: tuple[str, ...],
    speed: float,
    serve: bool,
    port: int,
    hook_timeout: float,
    show_hook_output: bool,
    rewrite_on_exit: bool,
    as_json: bool,
) -> int:
    """Run a simulated MicroSIP on FOLDER: it fires the cmd* hooks and writes [Calls] as
    MicroSIP does, and reports how long each hook blocked it.

    The simulator keeps microsip.ini and Contacts.xml in FOLDER (a portable MicroSIP folder);
    install the hooks there with `microsip-bridge hooks install --ini FOLDER/microsip.ini` before
    starting it, since MicroSIP reads them only at start-up. With --serve it takes MicroSIP
    command strings (/answer, 5551234, msip:hold ...) from `-c` of a second `sim` run or from the
    port in FOLDER/microsip-sim.json. THEN is answer, auto-answer, missed, decline, dnd,
    elsewhere or ring for incoming calls; answer, busy, fail, cancel or ring for outgoing ones.

    \b
    Example:
        microsip-bridge sim demo --create --call incoming:5551234:answer:1:3 \\
            --call outgoing:5550001:busy:2
        microsip-bridge sim demo --scenario morning.toml --speed 10 --serve
        microsip-bridge sim demo -c /answer
    """
    from microsip_bridge.sim.channel import forward_command_line
    from microsip_bridge.sim.runner import SessionPlan, prepare_folder, run_session, session_record
    from microsip_bridge.sim.scenario import load_scenario

    remaining: list[str] = []
    for text in commands:
        result = forward_command_line(folder, text)
        if result is None:
            remaining.append(text)
        else:
            click.echo(f"{text}: {result}")
    if commands and not remaining and not (scenario or calls or serve):
        return 0
    plan = SessionPlan(
        folder=folder,
        create=create,
        domain=domain,
        version=version,
        scenario=load_scenario(scenario) if scenario else None,
        calls=calls,
        commands=remaining,
        speed=speed,
        serve=serve,
        port=port,
        hook_timeout=hook_timeout,
        show_hook_output=show_hook_output,
        rewrite_settings_on_exit=rewrite_on_exit,
    )
    if not plan.plays_anything:
        prepared, created = prepare_folder(plan)
        click.echo(f"{'created' if created else 'ready'}: {prepared.ini}")
        click.echo("nothing to play: give --scenario, --call, --command or --serve")
        return 0

    holder: list[Simulator] = []

    def ready(simulator: Simulator, address: tuple[str, int] | None) -> None:
        holder.append(simulator)
        if as_json:
            return
        click.echo(f"simulating MicroSIP {simulator.version} on {simulator.folder.path}")
        if address is not None:
            click.echo(f"taking commands on {address[0]}:{address[1]} (Ctrl-C or /exit to stop)")

    def event(fired: FiredEvent) -> None:
        if not as_json and holder:
            click.echo(_event_line(holder[0], fired))

    interrupted = False
    with _sigterm_stops():
        try:
            run_session(plan, on_event=event, on_ready=ready)
        except KeyboardInterrupt:
            interrupted = True
    if not holder:
        return 130 if interrupted else 1
    simulator = holder[0]
    if as_json:
        click.echo(json.dumps(session_record(simulator), indent=2, ensure_ascii=False))
    else:
        _print_summary(simulator)
    return 130 if interrupted else 0


def _print_summary(simulator: Simulator) -> None:
    from microsip_bridge.tables import format_table

    summary = simulator.summary()
    rows = [
        (
            call.id,
            call.direction.value,
            call.user or call.domain,
            call.outcome.value if call.outcome else call.state.value,
            call.duration,
            "-" if call.key is None else call.key,
            " ".join(e.value for e in call.events),
        )
        for call in simulator.calls
    ]
    if rows:
        click.echo("")
        click.echo(
            format_table(
                ["call", "direction", "number", "outcome", "secs", "[Calls]", "events"],
                rows,
                right={0, 4},
                max_width=40,
            )
        )
    stats = [
        (e.value, s.runs, f"{s.max_blocked:.3f}", f"{s.total_blocked:.3f}", s.timeouts, s.errors)
        for e, s in summary.per_event.items()
    ]
    if stats:
        click.echo("")
        click.echo(
            format_table(
                ["hook", "runs", "max blocked s", "total s", "timeouts", "failed"],
                stats,
                right={1, 2, 3, 4, 5},
            )
        )
        click.echo(f"MicroSIP was blocked at most {summary.max_blocked:.3f} s by one hook")
    else:
        click.echo("no hook ran (none configured in [Settings])")
