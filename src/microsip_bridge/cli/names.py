"""`microsip-bridge names`: the bridge's own contacts (caller names) and looking a caller up."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from microsip_bridge.cli._common import format_option, locate_files, location_options, state
from microsip_bridge.errors import BridgeError

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from microsip_bridge.numbers import Normaliser

_DATABASE_HELP = (
    "The store: sqlite:///PATH or postgresql://USER@HOST/DB (setting: database; default: "
    "bridge.db in the bridge's home)."
)


def _database_option(func: Any) -> Any:
    return click.option("--database", metavar="URL", help=_DATABASE_HELP)(func)


def _url(database: str | None) -> str | None:
    return database or str(state().config["database"]) or None


def _engine(database: str | None, *, create: bool) -> Engine | None:
    """The store (migrated when ``create``), or None when there is none yet."""
    from microsip_bridge.store.engine import make_engine, open_log, upgrade
    from microsip_bridge.wire import bridge_home

    if not create:
        return open_log(_url(database), bridge_home())
    engine = make_engine(_url(database), bridge_home())
    upgrade(engine)
    return engine


def _normaliser(ini: Path | None) -> Normaliser:
    from microsip_bridge.microsip.accounts import dialing_prefix_of
    from microsip_bridge.numbers import normaliser_for

    return normaliser_for(str(state().config["default_region"]), dialing_prefix_of(ini))


@click.group()
def names() -> None:
    """Caller names: the bridge's own contacts (imported CSV or vCard files) and lookups.

    The daemon names each caller from MicroSIP's Contacts.xml, then these contacts, then the
    CRM (crm_url); it picks up changes made here within a second.
    """


@names.command("import")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(("auto", "csv", "vcf")),
    default="auto",
    show_default=True,
    help="The file's format (auto: by its suffix, .csv or .vcf).",
)
@click.option(
    "--replace", is_flag=True, help="Drop what an earlier import of this file added first."
)
@_database_option
@click.option("--report-format", "report_fmt", type=click.Choice(["text", "json"]), default="text")
def import_(file: Path, fmt: str, replace: bool, database: str | None, report_fmt: str) -> None:
    """Import names from a CSV or vCard FILE: one entry per number, numbers already known
    skipped.

    \b
    Examples:
        microsip-bridge names import customers.csv
        microsip-bridge names import phone.vcf --replace
    """
    from microsip_bridge.contacts.book import import_book

    engine = _engine(database, create=True)
    assert engine is not None
    try:
        report = import_book(
            engine,
            file,
            _normaliser(None),
            fmt=fmt,
            replace=replace,
            max_bytes=state().config.max_bytes,
        )
    finally:
        engine.dispose()
    if report_fmt == "json":
        click.echo(json.dumps(report.as_dict(), ensure_ascii=False, indent=2))
        return
    for note in report.notes:
        click.echo(f"note: {note}", err=True)
    line = f"{report.added} number{'' if report.added == 1 else 's'} added from {file}"
    if report.replaced:
        line += f" ({report.replaced} from its earlier import dropped)"
    if report.duplicates:
        line += f"; {len(report.duplicates)} already known, skipped"
    if report.skipped:
        line += f"; {report.skipped} without a number, skipped"
    click.echo(line)


@names.command("list")
@format_option(("table", "json"), "How to print the contacts.")
@_database_option
def list_(fmt: str, database: str | None) -> None:
    """List the bridge's own contacts, in the order they were imported.

    \b
    Examples:
        microsip-bridge names list
        microsip-bridge names list --format json
    """
    from microsip_bridge.store import contacts as table

    engine = _engine(database, create=False)
    rows = []
    if engine is not None:
        try:
            with engine.connect() as conn:
                rows = table.list_contacts(conn)
        finally:
            engine.dispose()
    if fmt == "json":
        click.echo(json.dumps([r.as_dict() for r in rows], ensure_ascii=False, indent=2))
        return
    from microsip_bridge.tables import format_table

    cells = [(r.name, r.number, r.number_key, Path(r.source).name) for r in rows]
    click.echo(format_table(["name", "number", "key", "file"], cells, max_width=50))


@names.command("lookup")
@click.argument("number")
@location_options
@_database_option
@click.option("--no-crm", is_flag=True, help="Do not ask the CRM (crm_url).")
@format_option(("text", "json"), "How to print the answer.", default="text")
def lookup(
    number: str,
    microsip_path: Path | None,
    ini_path: Path | None,
    contacts_path: Path | None,
    database: str | None,
    no_crm: bool,
    fmt: str,
) -> None:
    """Print the name the daemon would give the caller NUMBER, its source and the matched
    number (exit 1: no name).

    \b
    Examples:
        microsip-bridge names lookup "+44 20 7946 0000"
        microsip-bridge names lookup 02079460000 --format json
    """
    from microsip_bridge.actions.service import caller_names
    from microsip_bridge.config import SETTINGS

    ini = contacts = None
    try:
        where = locate_files(microsip_path, ini_path, contacts_path)
        ini, contacts = where.ini, where.contacts
    except BridgeError:
        if microsip_path or ini_path or contacts_path:
            raise
    cfg = state().config
    engine = _engine(database, create=False)
    try:
        finder = caller_names(
            {s.name: cfg[s.name] for s in SETTINGS}, _normaliser(ini), ini=ini, engine=engine
        )
        finder.contacts_path = contacts
        found = finder.lookup(number, crm=not no_crm)
    finally:
        if engine is not None:
            engine.dispose()
    if found is None:
        click.echo(f"no name for {number}", err=True)
        raise SystemExit(1)
    if fmt == "json":
        click.echo(json.dumps(found.as_dict(), ensure_ascii=False))
    else:
        click.echo(f"{found.name}\t{found.source}\t{found.number}")


@names.command("clear")
@_database_option
def clear(database: str | None) -> None:
    """Delete every one of the bridge's own contacts (MicroSIP's Contacts.xml is untouched).

    \b
    Example:
        microsip-bridge names clear
    """
    from microsip_bridge.store import contacts as table

    engine = _engine(database, create=False)
    count = 0
    if engine is not None:
        try:
            with engine.begin() as conn:
                count = table.delete_contacts(conn)
        finally:
            engine.dispose()
    click.echo(f"{count} contact{'' if count == 1 else 's'} deleted")
