"""`microsip-bridge directory`: point MicroSIP's usersDirectory at the daemon, check it, undo it."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from microsip_bridge.cli._common import (
    dry_run_option,
    force_option,
    locate_files,
    location_options,
    microsip_running,
    state,
)
from microsip_bridge.directory import DEFAULT_REFRESH, MAX_REFRESH, MIN_REFRESH

if TYPE_CHECKING:
    from microsip_bridge.microsip.directory_url import DirectoryPlan

F = TypeVar("F", bound=Callable[..., Any])


def url_options(func: F) -> F:
    """What the URL says: the daemon's address, the format, the refresh, how the key goes."""
    for option in reversed(
        (
            click.option(
                "--refresh",
                type=click.IntRange(MIN_REFRESH, MAX_REFRESH),
                default=DEFAULT_REFRESH,
                show_default=True,
                help="Seconds between MicroSIP's reloads: how soon a lamp follows a call.",
            ),
            click.option(
                "--format",
                "fmt",
                type=click.Choice(["json", "xml"]),
                default="json",
                show_default=True,
                help="json carries the presence lamps (MicroSIP 3.22); xml has none.",
            ),
            click.option(
                "--basic-auth",
                is_flag=True,
                help="Put the key in the URL as user:KEY@ (HTTP basic auth) instead of ?key=.",
            ),
            click.option("--host", help="The daemon's address (default: the host setting)."),
            click.option(
                "--port",
                type=click.IntRange(1, 65535),
                help="The daemon's port (default: the port setting).",
            ),
        )
    ):
        func = option(func)
    return func


def _url(
    key: str, fmt: str, refresh: int, basic_auth: bool, host: str | None, port: int | None
) -> str:
    from microsip_bridge.directory.service import directory_url
    from microsip_bridge.errors import BridgeError
    from microsip_bridge.server.settings import DaemonSettings
    from microsip_bridge.wire import bridge_home

    settings = DaemonSettings.from_config(state().config, bridge_home(), host=host, port=port)
    if settings.port == 0:
        raise BridgeError(
            "the port setting is 0, which picks another port at each start: MicroSIP's URL "
            "would stop working; set a fixed port (config port, or --port)"
        )
    return directory_url(
        settings.connect_host,
        settings.port,
        key,
        fmt=fmt,
        refresh=refresh,
        basic_auth=basic_auth,
    )


@click.group()
def directory() -> None:
    """Serve MicroSIP its contacts, with presence lamps from the calls the daemon sees.

    MicroSIP fetches a contacts directory from the URL in its usersDirectory setting. `install`
    points it at the daemon (GET /directory.json), with a read-only directory key that opens
    nothing else; a URL of your own is saved and put back by `uninstall`. MicroSIP must be
    closed while the ini changes, and reads the URL when it starts.
    """


def _print_plan(plan: DirectoryPlan, key: str | None, dry_run: bool) -> None:
    from microsip_bridge.directory.service import mask_key
    from microsip_bridge.microsip.directory_url import KEY
    from microsip_bridge.tables import format_table

    change = plan.change
    shown = "(removed)" if change.new is None else mask_key(change.new, key) or "(empty)"
    rows = [(KEY, change.action.value, shown, change.note)]
    click.echo(format_table(["key", "action", "value", "note"], rows, max_width=100))
    if dry_run:
        click.echo("dry run: nothing written")
    elif not plan.changes_ini:
        click.echo("nothing to change")


def _apply(
    plan: DirectoryPlan,
    doc: object,
    ini: Path,
    key: str | None,
    *,
    dry_run: bool,
    running: bool | None,
    force: bool,
) -> None:
    """Act, then report (the caller checked first, so a refused run prints no plan): the
    user's own URL is saved before the ini changes, and forgotten only once it is back."""
    from microsip_bridge.microsip.inifile import IniDocument

    assert isinstance(doc, IniDocument)
    backup = None
    if not dry_run and plan.changes_ini:
        plan.save_first()
        backup = doc.save(backups=state().config.backups, microsip_running=running, force=force)
    if not dry_run:
        plan.commit()
    _print_plan(plan, key, dry_run)
    if not dry_run and plan.changes_ini:
        click.echo(f"wrote {ini}" + (f" (backup: {backup})" if backup else ""))


@directory.command()
@location_options
@url_options
@click.option("--new-key", is_flag=True, help="Make a new directory key (the old one stops).")
@dry_run_option
@force_option
def install(
    microsip_path: Path | None,
    ini_path: Path | None,
    contacts_path: Path | None,
    refresh: int,
    fmt: str,
    basic_auth: bool,
    host: str | None,
    port: int | None,
    new_key: bool,
    dry_run: bool,
    force: bool,
) -> None:
    """Set usersDirectory to the daemon's directory URL, with the key (idempotent).

    The URL the user had there is saved first. MicroSIP reads it at its next start; the
    daemon must then run with this MicroSIP's ini (serve --ini or --microsip).

    \b
    Example:
        microsip-bridge directory install --refresh 10
    """
    from microsip_bridge.directory import key as keys
    from microsip_bridge.microsip.directory_url import install_directory, saved_store
    from microsip_bridge.microsip.inifile import IniDocument
    from microsip_bridge.wire import bridge_home

    location = locate_files(microsip_path, ini_path, contacts_path)
    doc = IniDocument.load(location.ini)
    running = None
    home = bridge_home()
    if dry_run:
        key = keys.read_key(home) if not new_key else None
        key = key or "NEW-KEY"
    else:
        running = microsip_running(location.ini)
        doc.check_writable(microsip_running=running, force=force)
        key = keys.new_key(home) if new_key else keys.ensure_key(home)
    url = _url(key, fmt, refresh, basic_auth, host, port)
    plan = install_directory(doc, url, saved_store(home))
    _apply(plan, doc, location.ini, key, dry_run=dry_run, running=running, force=force)
    if not dry_run and plan.changes_ini:
        click.echo("MicroSIP loads the directory when it next starts; the daemon must run then.")


@directory.command()
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
    """Put back the usersDirectory that install saved (or empty it).

    A URL that is not the bridge's is left alone.

    \b
    Example:
        microsip-bridge directory uninstall
    """
    from microsip_bridge.directory.key import read_key
    from microsip_bridge.microsip.directory_url import saved_store, uninstall_directory
    from microsip_bridge.microsip.inifile import IniDocument
    from microsip_bridge.wire import bridge_home

    location = locate_files(microsip_path, ini_path, contacts_path)
    doc = IniDocument.load(location.ini)
    running = None
    if not dry_run:
        running = microsip_running(location.ini)
        doc.check_writable(microsip_running=running, force=force)
    plan = uninstall_directory(doc, saved_store())
    key = read_key(bridge_home())
    _apply(plan, doc, location.ini, key, dry_run=dry_run, running=running, force=force)


@directory.command()
@location_options
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
def status(
    microsip_path: Path | None, ini_path: Path | None, contacts_path: Path | None, fmt: str
) -> int:
    """Show what usersDirectory holds, whether it is the bridge's and its key the current one.

    The key is shown as ***. Exits 1 when the ini holds a bridge URL whose key does not open
    the directory (rotated, or the key file is gone): run `directory install` again.

    \b
    Example:
        microsip-bridge directory status
    """
    from microsip_bridge.directory.key import read_key
    from microsip_bridge.directory.service import mask_key, url_key
    from microsip_bridge.microsip.directory_url import (
        KEY,
        current_url,
        is_bridge_url,
        saved_store,
    )
    from microsip_bridge.microsip.inifile import IniDocument
    from microsip_bridge.tables import format_table
    from microsip_bridge.wire import bridge_home

    location = locate_files(microsip_path, ini_path, contacts_path)
    value = current_url(IniDocument.load(location.ini))
    key = read_key(bridge_home())
    ours = is_bridge_url(value)
    key_ok = ours and key is not None and value is not None and url_key(value) == key
    saved = saved_store().entries(location.ini).get(KEY)
    report = {
        "ini": str(location.ini),
        "value": None if value is None else mask_key(value, url_key(value) if ours else None),
        "bridge": ours,
        "key_file": key is not None,
        "key_current": key_ok,
        "saved": None if saved is None else saved.value,
    }
    if fmt == "json":
        click.echo(json.dumps(report, indent=2, ensure_ascii=False))
    else:
        if not ours:
            state_text = "not the bridge's" if value else "not set"
        else:
            state_text = "the bridge's, key current" if key_ok else "the bridge's, WRONG KEY"
        rows = [
            (KEY, report["value"] if value is not None else "(absent)"),
            ("state", state_text),
            ("saved for uninstall", "(nothing)" if saved is None else saved.value or "(empty)"),
        ]
        click.echo(format_table(["", str(location.ini)], rows, max_width=100))
    return 1 if ours and not key_ok else 0


@directory.command()
@url_options
def url(refresh: int, fmt: str, basic_auth: bool, host: str | None, port: int | None) -> None:
    """Print the directory URL with the key (creating the key on first use).

    For a MicroSIP whose ini this machine cannot write, or to test the directory with curl.

    \b
    Example:
        curl "$(microsip-bridge directory url)"
    """
    from microsip_bridge.directory.key import ensure_key
    from microsip_bridge.wire import bridge_home

    click.echo(_url(ensure_key(bridge_home()), fmt, refresh, basic_auth, host, port))
