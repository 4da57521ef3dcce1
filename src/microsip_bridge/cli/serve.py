"""`microsip-bridge serve`: run the daemon that ingests MicroSIP's call events (see server/)."""

from __future__ import annotations

import os
from pathlib import Path

import click

from microsip_bridge.cli._common import locate_files, state
from microsip_bridge.config import DEFAULTS


def _database_url(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """A --database URL the store can use (the form only: the server is reached at start)."""
    if value is None or not value.strip():
        return value
    from microsip_bridge.errors import BridgeError
    from microsip_bridge.store.engine import parse_url

    try:
        parse_url(value)
    except BridgeError as exc:
        raise click.BadParameter(str(exc), ctx, param) from None
    return value


@click.command()
@click.option(
    "--host",
    help=f"Address to listen on (setting: host; default {DEFAULTS['host']}); any but loopback "
    "needs --public.",
)
@click.option(
    "--public",
    is_flag=True,
    default=None,
    help="Allow a --host other machines can reach, such as 0.0.0.0 (setting: public). The API "
    "has no TLS: use it on a trusted network only.",
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    help=f"Port to listen on; 0 picks a free one (setting: port; default {DEFAULTS['port']}).",
)
@click.option(
    "--database",
    metavar="URL",
    callback=_database_url,
    help="sqlite:///PATH or postgresql://USER@HOST/DB (setting: database; default: bridge.db in "
    "the bridge's home).",
)
@click.option(
    "--microsip",
    "microsip_path",
    type=click.Path(path_type=Path),
    help="MicroSIP's exe or folder, whose [Calls] history completes the calls.",
)
@click.option(
    "--ini",
    "ini_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="microsip.ini whose [Calls] history completes the calls (beats --microsip, then the "
    "MICROSIP_INI environment variable, then the microsip setting).",
)
def serve(
    host: str | None,
    public: bool | None,
    port: int | None,
    database: str | None,
    microsip_path: Path | None,
    ini_path: Path | None,
) -> None:
    """Run the daemon: receive MicroSIP's call events from the hook, keep the call log.

    Listens on 127.0.0.1 only (by default; another address needs --public), creates on first
    start a token file readable only by you, and prints where it listens with a one-time login
    link for the dashboard (`microsip-bridge open` makes more). Events the hook could not
    deliver while it was down are ingested from the spool at start. After each call,
    MicroSIP's own [Calls] entry adds the name, duration and status (when its ini is found),
    and calls made while the daemon was off are imported from it. Stop it with Ctrl-C or
    SIGTERM.

    \b
    Example:
        microsip-bridge serve
        microsip-bridge serve --port 5800 --ini "C:\\MicroSIP\\microsip.ini"
        microsip-bridge serve --database postgresql://bridge@db.example/calls
        microsip-bridge serve --host 0.0.0.0 --public
    """
    from microsip_bridge.server.lifecycle import catch_stop_signals, release_stop_signals

    catch_stop_signals()  # the entry point did it already; here too for callers that skip it
    # Everything the daemon creates (database, logs) is the user's alone.
    umask = os.umask(0o077) if os.name == "posix" else None
    try:
        _serve(host, public, port, database, microsip_path, ini_path)
    finally:
        if umask is not None:
            os.umask(umask)
        release_stop_signals()


def _serve(
    host: str | None,
    public: bool | None,
    port: int | None,
    database: str | None,
    microsip_path: Path | None,
    ini_path: Path | None,
) -> None:
    from microsip_bridge.errors import NotFoundError
    from microsip_bridge.server.runner import serve as run
    from microsip_bridge.server.security import is_loopback
    from microsip_bridge.server.settings import DaemonSettings
    from microsip_bridge.wire import bridge_home

    config = state().config
    public = bool(config["public"]) if public is None else public
    bind = config["host"] if host is None else host
    if not public and not is_loopback(bind):
        where = "--host" if host is not None else f"the host setting ({config.path})"
        raise click.UsageError(
            f"{where} {bind} is not a loopback address: other machines could reach the daemon "
            "there; add --public (or set public = true) if that is what you want"
        )
    explicit = (
        microsip_path is not None
        or ini_path is not None
        or bool(os.environ.get("MICROSIP_INI"))
        or bool(config["microsip"])
    )
    exe: Path | None = None
    try:
        location = locate_files(microsip_path, ini_path, None)
        ini: Path | None = location.ini
        exe = location.exe
    except NotFoundError as exc:
        if explicit:
            raise
        click.echo(
            f"note: no MicroSIP ini found ({exc.message}); calls are not reconciled", err=True
        )
        ini = None
    settings = DaemonSettings.from_config(
        config,
        bridge_home(),
        host=host,
        public=public,
        port=port,
        database=database,
        ini=ini,
        exe=exe,
    )
    stopped_by = run(settings, announce=click.echo)
    click.echo(f"stopped ({stopped_by})" if stopped_by else "stopped")
