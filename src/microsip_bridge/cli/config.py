"""`microsip-bridge config`: where the settings file is and what each setting is."""

from __future__ import annotations

import json

import click

from microsip_bridge.cli._common import state


@click.group()
def config() -> None:
    """Show the bridge's settings (config.toml in the bridge's home)."""


@config.command("show")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
def show(fmt: str) -> None:
    """Every setting with its value, where the value came from, and what it does.

    \b
    Example:
        microsip-bridge config show --format json
    """
    from microsip_bridge.config import SETTINGS
    from microsip_bridge.tables import format_table

    cfg = state().config
    if fmt == "json":
        rows = [
            {"name": s.name, "value": cfg[s.name], "source": cfg.sources[s.name], "help": s.help}
            for s in SETTINGS
        ]
        click.echo(json.dumps({"path": str(cfg.path), "settings": rows}, indent=2))
        return
    click.echo(f"# {cfg.path}")
    table = [(s.name, repr(cfg[s.name]), cfg.sources[s.name], s.help) for s in SETTINGS]
    click.echo(format_table(["setting", "value", "source", "help"], table, max_width=90), nl=False)


@config.command("path")
def path() -> None:
    """Print the path of config.toml (it need not exist: defaults apply).

    \b
    Example:
        microsip-bridge config path
    """
    click.echo(str(state().config.path))
