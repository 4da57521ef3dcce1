"""``microsip-bridge purge``: old calls, or one person's calls wherever the bridge keeps them."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from microsip_bridge.cli._common import (
    dry_run_option,
    locate_files,
    location_options,
    microsip_running,
    state,
)
from microsip_bridge.cli.calls import database_option
from microsip_bridge.cli.history import Since
from microsip_bridge.errors import BridgeError, MicroSIPRunningError, NotFoundError

if TYPE_CHECKING:
    from collections.abc import Callable

    from microsip_bridge.store.purge import PurgePlan

# A purge through the daemon runs batch by batch; a million rows take a while.
PURGE_TIMEOUT = 3600.0


@dataclass(slots=True)
class _Ring:
    """The [Calls] part of a purge by number: the ini, and whether MicroSIP runs."""

    ini: Path
    running: bool | None


@click.command()
@click.option(
    "--older-than",
    "older_than",
    type=Since(),
    metavar="WHEN",
    help="Calls that ended before this: a span back from now (90d, 12h, 2w) or a date "
    "(2026-09-01, local time unless it has an offset).",
)
@click.option(
    "--number",
    metavar="N",
    help="One person's number, in any format: their calls, events and webhook deliveries "
    "(matched by the normalised number, with the default_region setting, or the very same "
    "text), and their entries in MicroSIP's [Calls] and in the spool.",
)
@click.option(
    "--history/--no-history",
    default=None,
    help="With --number: also delete their entries in MicroSIP's [Calls] history (default: "
    "yes when MicroSIP is found and not running; --history insists, and fails while it runs).",
)
@location_options
@database_option
@dry_run_option
def purge(
    older_than: dt.datetime | None,
    number: str | None,
    history: bool | None,
    microsip_path: Path | None,
    ini_path: Path | None,
    contacts_path: Path | None,
    database: str | None,
    dry_run: bool,
) -> None:
    """Delete calls, their events and webhook deliveries: those that ended before
    --older-than, or one person's (--number).

    Goes through the daemon when it runs (it forgets the calls too), else straight to the
    store (--database, or the database setting). Pending webhook deliveries are kept by
    --older-than (they are still owed); --number deletes them too. Calls still going on are
    kept. MicroSIP's [Calls] is rewritten without a backup, and the bridge's older backups of
    microsip.ini are cleaned of the number as well. Prints one summary line.

    \b
    Examples:
        microsip-bridge purge --older-than 90d --dry-run
        microsip-bridge purge --number "+44 20 7946 0958"
    """
    from microsip_bridge.store.purge import PurgePlan, number_matcher

    if older_than is None and number is None:
        raise click.UsageError("say what to purge: --older-than WHEN, --number N, or both")
    if number is not None and not number.strip():
        raise click.BadParameter("must not be empty", param_hint="--number")
    if history and number is None:
        raise click.UsageError("--history needs --number (it deletes one person's entries)")
    region = str(state().config["default_region"])
    plan = PurgePlan(
        before=None if older_than is None else older_than.timestamp(),
        number=number,
        region=region,
    )
    # Every check before any write: a refused purge deletes nothing.
    ring = _ring(number, history, microsip_path, ini_path, contacts_path)
    counts, through_daemon = _purge_store(plan, database, dry_run)
    if number is not None:
        match, _ = number_matcher(number, region)
        if not through_daemon:  # a running daemon ingested the spool before it purged
            counts["spooled events"] = _purge_spool(match, dry_run)
        if ring is not None:
            entries, backups = _purge_ring(ring, match, dry_run)
            counts["[Calls] entries"] = entries
            counts["ini backups cleaned"] = backups
    kept = counts.pop("open_kept", 0)
    summary = ", ".join(f"{value} {name}" for name, value in counts.items())
    click.echo(f"would purge {summary}; nothing written" if dry_run else f"purged {summary}")
    if kept:
        click.echo(
            f"kept {kept} call(s) of that number still going on: purge again once they end",
            err=True,
        )


def _ring(
    number: str | None,
    history: bool | None,
    microsip_path: Path | None,
    ini_path: Path | None,
    contacts_path: Path | None,
) -> _Ring | None:
    """The [Calls] to purge, or None; raises (before anything is deleted) when --history
    insists and MicroSIP runs or cannot be found."""
    if number is None or history is False:
        return None
    try:
        location = locate_files(microsip_path, ini_path, contacts_path)
    except NotFoundError:
        if history:
            raise
        click.echo("no MicroSIP found: its [Calls] history was not looked at", err=True)
        return None
    if not location.ini.is_file():
        if history:
            raise NotFoundError("no such file", path=location.ini)
        return None
    running = microsip_running(location.ini)
    if running:
        if history:
            raise MicroSIPRunningError(
                "MicroSIP is running and rewrites its [Calls] when it exits; close it first "
                "(microsip.exe /exit), or pass --no-history",
                path=location.ini,
            )
        click.echo(
            f"MicroSIP is running: {location.ini} [Calls] was left as it is; close MicroSIP "
            "and run this again to purge it there too",
            err=True,
        )
        return None
    return _Ring(location.ini, running)


def _purge_store(
    plan: PurgePlan, database: str | None, dry_run: bool
) -> tuple[dict[str, int], bool]:
    """The counts, and whether a running daemon did it."""
    from microsip_bridge.server.client import call_api, running_daemon
    from microsip_bridge.wire import bridge_home

    home = bridge_home()
    if running_daemon(home) is not None:
        body: dict[str, Any] = {"before": plan.before, "number": plan.number, "dry_run": dry_run}
        status, answer = call_api(home, "POST", "/api/v1/purge", body, timeout=PURGE_TIMEOUT)
        if status != 200 or not isinstance(answer, dict):
            detail = answer.get("detail") if isinstance(answer, dict) else None
            raise BridgeError(f"the daemon refused the purge ({status}): {detail or 'no reason'}")
        return _counts(answer), True
    from microsip_bridge.store.engine import open_log
    from microsip_bridge.store.purge import Purge

    engine = open_log(database or str(state().config["database"]) or None, home)
    if engine is None:
        return _counts({}), False
    try:
        purge = Purge(plan)
        report = purge.count(engine) if dry_run else purge.run(engine)
    finally:
        engine.dispose()
    return _counts(report.as_dict()), False


def _counts(answer: dict[str, Any]) -> dict[str, int]:
    return {
        "calls": int(answer.get("calls", 0)),
        "events": int(answer.get("events", 0)),
        "webhook deliveries": int(answer.get("webhooks", 0)),
        "open_kept": int(answer.get("open_kept", 0)),
    }


def _purge_spool(match: Callable[[str], bool], dry_run: bool) -> int:
    from microsip_bridge.calls.spool import purge_spool
    from microsip_bridge.wire import bridge_home

    home = bridge_home()
    return purge_spool(home, match, dry_run=dry_run) if home.is_dir() else 0


def _purge_ring(ring: _Ring, match: Callable[[str], bool], dry_run: bool) -> tuple[int, int]:
    """The entries deleted from [Calls], and the bridge's backups of the ini cleaned. No new
    backup is made (it would keep the number); the write is atomic all the same."""
    from microsip_bridge.fileio import list_backups
    from microsip_bridge.microsip.history_ring import delete_matching
    from microsip_bridge.microsip.inifile import IniDocument

    doc = IniDocument.load(ring.ini)
    slots = delete_matching(doc, match)
    if slots and not dry_run:
        doc.save(backups=0, microsip_running=ring.running)
    cleaned = 0
    for backup in list_backups(ring.ini):
        old = IniDocument.load(backup)
        if delete_matching(old, match):
            cleaned += 1
            if not dry_run:
                old.save(backups=0)
    return len(slots), cleaned
