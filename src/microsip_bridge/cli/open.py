"""`microsip-bridge open`: log a browser in to the dashboard with a fresh one-time link."""

from __future__ import annotations

import click


@click.command("open")
@click.option(
    "--print",
    "print_only",
    is_flag=True,
    help="Print the link instead of opening a browser (to open it elsewhere).",
)
def open_dashboard(print_only: bool) -> None:
    """Open the dashboard in your browser, logged in.

    Asks the running daemon for a one-time login link (it works once, for 10 minutes, and
    holds no token) and opens it in the default browser, which keeps the session cookie it
    gets. Exits 3 when the daemon is not running.

    \b
    Example:
        microsip-bridge open
        microsip-bridge open --print
    """
    import webbrowser

    from microsip_bridge.server.client import new_login_link
    from microsip_bridge.wire import bridge_home

    url = new_login_link(bridge_home())
    if print_only:
        click.echo(url)
        return
    if not webbrowser.open(url):
        click.echo("no browser could be started; open this link (it works once):", err=True)
        click.echo(url)
        return
    click.echo("opened the dashboard in your browser")
