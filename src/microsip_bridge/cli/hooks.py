"""`microsip-bridge hooks`: point MicroSIP's eight cmd* keys at our hook, check them, undo it."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

import click

from microsip_bridge.cli._common import (
    dry_run_option,
    force_option,
    locate_files,
    location_options,
    microsip_running,
    state,
)

if TYPE_CHECKING:
    from microsip_bridge.microsip.hook_keys import HookPlan


class HookProgram(click.Path[Path]):
    """A program MicroSIP can run safely as every hook (an absolute path, no script or shell,
    each cmd* value within what MicroSIP reads): anything else is a usage error."""

    def __init__(self) -> None:
        super().__init__(path_type=Path, dir_okay=False)

    def convert(
        self,
        value: str | os.PathLike[str],
        param: click.Parameter | None,
        ctx: click.Context | None,
    ) -> Path:
        from microsip_bridge.errors import BridgeError
        from microsip_bridge.microsip.hook_keys import HOOK_KEYS, hook_value

        path = super().convert(value, param, ctx)
        try:
            for event in HOOK_KEYS:
                hook_value(path, event)
        except BridgeError as exc:
            self.fail(str(exc), param, ctx)
        return path


@click.group()
def hooks() -> None:
    """Install, check and remove the hooks through which MicroSIP reports call events.

    MicroSIP runs a program on each call event, named by eight cmd* keys in microsip.ini
    (cmdOutgoingCall ... cmdCallEnd). `install` points them at our hook; commands you
    had there are saved and put back by `uninstall`. MicroSIP must be closed while they change.
    """


def _program(program: Path | None) -> tuple[Path, str]:
    """What the hooks run, and the interpreter flag: --program, else the hook_program setting,
    else this Python in the fast form (``python -I -c<code> EVENT``, see microsip/hooks.py)."""
    from microsip_bridge.microsip.hook_keys import fast_hook_program

    configured = state().config["hook_program"]
    chosen = program or (Path(configured) if configured else None)
    if chosen is None:
        return fast_hook_program()
    return chosen, "-I"


def _print_plan(plan: HookPlan, dry_run: bool) -> None:
    from microsip_bridge.tables import format_table

    rows = [
        (c.key, c.action.value, c.new if c.new is not None else "(removed)") for c in plan.changes
    ]
    click.echo(format_table(["key", "action", "value"], rows, max_width=80))
    if dry_run:
        click.echo("dry run: nothing written")
    elif not plan.changes_ini:
        click.echo("nothing to change")


def _apply(plan: HookPlan, doc: object, ini: Path, dry_run: bool, force: bool) -> None:
    """Check, then act, then report: a refused or failed run prints no plan as if done, and
    writes nothing it cannot undo (the users' own commands are saved before the ini changes)."""
    from microsip_bridge.microsip.inifile import IniDocument

    assert isinstance(doc, IniDocument)
    if dry_run:
        _print_plan(plan, dry_run)
        return
    backup = None
    if plan.changes_ini:
        running = microsip_running(ini)
        doc.check_writable(microsip_running=running, force=force)
        plan.save_first()
        backup = doc.save(backups=state().config.backups, microsip_running=running, force=force)
    plan.commit()
    _print_plan(plan, dry_run)
    if plan.changes_ini:
        click.echo(f"wrote {ini}" + (f" (backup: {backup})" if backup else ""))


@hooks.command()
@location_options
@click.option(
    "--program",
    type=HookProgram(),
    help="The program the hooks run: microsip-bridge-hook, or a Python interpreter (default: "
    "the hook_program setting, else this Python running the hook directly, the fastest form).",
)
@dry_run_option
@force_option
def install(
    microsip_path: Path | None,
    ini_path: Path | None,
    contacts_path: Path | None,
    program: Path | None,
    dry_run: bool,
    force: bool,
) -> None:
    """Point all eight cmd* keys at our hook (idempotent).

    Each value is at most 255 characters (MicroSIP reads no more), quotes only the program path
    (MicroSIP splits the value and re-joins the arguments without quotes), and never runs a
    shell or script (MicroSIP appends the caller's number, which could inject commands).
    Someone else's command in a key is saved first.

    \b
    Example:
        microsip-bridge hooks install --dry-run
    """
    from microsip_bridge.microsip.hook_keys import SavedHooks, install_hooks
    from microsip_bridge.microsip.inifile import IniDocument

    location = locate_files(microsip_path, ini_path, contacts_path)
    hook, flag = _program(program)
    doc = IniDocument.load(location.ini)
    plan = install_hooks(doc, hook, SavedHooks(), flag=flag)
    _apply(plan, doc, location.ini, dry_run, force)


@hooks.command()
@location_options
@dry_run_option
@force_option
def uninstall(
    microsip_path: Path | None,
    ini_path: Path | None,
    contacts_path: Path | None,
    dry_run: bool,
    force: bool,
) -> None:
    """Remove our hooks and put back the commands that install saved.

    \b
    Example:
        microsip-bridge hooks uninstall
    """
    from microsip_bridge.microsip.hook_keys import SavedHooks, uninstall_hooks
    from microsip_bridge.microsip.inifile import IniDocument

    location = locate_files(microsip_path, ini_path, contacts_path)
    doc = IniDocument.load(location.ini)
    plan = uninstall_hooks(doc, SavedHooks())
    _apply(plan, doc, location.ini, dry_run, force)


@hooks.command()
@location_options
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
def status(
    microsip_path: Path | None, ini_path: Path | None, contacts_path: Path | None, fmt: str
) -> int:
    """Show each cmd* key as ours, someone else's (foreign), missing or damaged.

    Exits 1 when a key is damaged. Each value is checked by splitting it as Windows'
    CommandLineToArgvW does and comparing the argv MicroSIP would pass.

    \b
    Example:
        microsip-bridge hooks status --format json
    """
    from microsip_bridge.microsip.hook_keys import HookState, SavedHooks, hooks_status
    from microsip_bridge.microsip.inifile import IniDocument
    from microsip_bridge.tables import format_table

    location = locate_files(microsip_path, ini_path, contacts_path)
    doc = IniDocument.load(location.ini)
    program: Path | None = _program(None)[0]
    states = hooks_status(doc, program)
    saved = SavedHooks().entries(location.ini)
    if fmt == "json":
        rows = [
            {
                "event": s.event.value,
                "key": s.key,
                "state": s.state.value,
                "value": s.raw,
                "argv": list(s.argv),
                "detail": s.reason,
                "saved": saved[s.key].value if s.key in saved else None,
            }
            for s in states
        ]
        click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
    else:
        table = [(s.key, s.state.value, s.reason) for s in states]
        click.echo(format_table(["key", "state", "detail"], table, max_width=80))
        # Empty or absent keys are remembered too (to restore the file byte for byte), but they
        # are not commands of the user's.
        commands = sum(1 for v in saved.values() if v.value)
        if commands:
            noun = "command of your own is" if commands == 1 else "commands of your own are"
            click.echo(f"{commands} {noun} saved for `hooks uninstall`.")
    return 1 if any(s.state is HookState.DAMAGED for s in states) else 0
