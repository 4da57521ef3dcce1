"""`microsip-bridge rules check|test`: validate config.toml's rules, and show what would fire."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from microsip_bridge.errors import BridgeError

EVENTS = ("incoming", "outgoing", "ringing", "answered", "connected", "missed", "busy", "ended")
CONFIG_OPTION = click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="The config.toml to read (default: the one in the bridge's home).",
)


@click.group()
def rules() -> None:
    """Check config.toml's screen-pop rules and show what they would do for a call."""


def _load(config_path: Path | None) -> tuple[Any, Any, Any]:
    from microsip_bridge.actions.live_config import load_tables
    from microsip_bridge.config import config_path as default_path

    return load_tables(config_path or default_path())


@rules.command("check")
@CONFIG_OPTION
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
def check(config_path: Path | None, fmt: str) -> None:
    """Validate the rules and webhook targets; print them, or the first error (exit 1).

    \b
    Example:
        microsip-bridge rules check --config ./config.toml
    """
    config, found, targets = _load(config_path)
    if fmt == "json":
        out = {
            "path": str(config.path),
            "rules": [r.describe() for r in found],
            "webhooks": [
                {"name": t.name, "url": t.url, "events": sorted(t.events)} for t in targets
            ],
        }
        click.echo(json.dumps(out, indent=2))
        return
    click.echo(f"# {config.path}: {len(found)} rules, {len(targets)} webhook targets, all valid")
    for rule in found:
        d = rule.describe()
        click.echo(f"{rule.label}: on {', '.join(d['on'])}")
        for key in ("direction", "number", "known", "hours", "open", "run", "webhook"):
            if d[key] is not None:
                click.echo(f"    {key} = {json.dumps(d[key], ensure_ascii=False)}")
        if rule.once:
            click.echo("    once = true")
        if rule.notify:
            click.echo("    notify = true")
    for target in targets:
        click.echo(f"webhook {target.name!r}: {target.url} ({', '.join(sorted(target.events))})")


@rules.command("test")
@click.option("--event", type=click.Choice(EVENTS), required=True, help="The transition.")
@click.option("--number", required=True, help="The other party's number, as MicroSIP gives it.")
@click.option(
    "--direction",
    type=click.Choice(["incoming", "outgoing"]),
    default="incoming",
    show_default=True,
)
@click.option("--name", default="", help="The caller's name (empty: an unknown caller).")
@click.option("--at", "at_text", help='When, local time "YYYY-MM-DD HH:MM" (default: now).')
@CONFIG_OPTION
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
def test(
    event: str,
    number: str,
    direction: str,
    name: str,
    at_text: str | None,
    config_path: Path | None,
    fmt: str,
) -> None:
    """Print which rules would fire for a call, with the exact URL, argv and webhook, firing
    nothing.

    \b
    Example:
        microsip-bridge rules test --event ringing --number +442079460000 --at "2026-12-07 09:30"
    """
    from microsip_bridge.actions.rules import firings
    from microsip_bridge.model import Call, CallState, Direction, Outcome, Transition
    from microsip_bridge.numbers import Normaliser

    config, found, _ = _load(config_path)
    if at_text:
        try:
            at = datetime.strptime(at_text.strip(), "%Y-%m-%d %H:%M").timestamp()
        except ValueError:
            raise BridgeError(f'--at: {at_text!r} is not "YYYY-MM-DD HH:MM"') from None
    else:
        at = datetime.now().timestamp()
    transition = Transition(event)
    outcome = {
        "missed": Outcome.MISSED,
        "busy": Outcome.BUSY,
        "ended": Outcome.ANSWERED,
    }.get(event)
    call = Call(
        call_id="test",
        direction=Direction(direction),
        number=number,
        state=CallState.ENDED if outcome else CallState.RINGING,
        started_at=at,
        outcome=outcome,
        name=name,
        updated_at=at,
    )
    normalised = Normaliser(str(config["default_region"]))(number)
    fired = firings(found, call, transition, normalised, at)
    if fmt == "json":
        out = {
            "event": event,
            "direction": direction,
            "number": normalised.as_dict(),
            "name": name,
            "at": at,
            "fires": [f.as_dict() for f in fired],
        }
        click.echo(json.dumps(out, indent=2, ensure_ascii=False))
        return
    if not fired:
        click.echo(f"no rule fires on {event} ({direction}) for {number!r}")
        return
    for firing in fired:
        click.echo(f"{firing.rule.label} fires:")
        if firing.url:
            click.echo(f"    open {firing.url}")
        if firing.argv:
            click.echo(f"    run {json.dumps(list(firing.argv), ensure_ascii=False)}")
        if firing.webhook:
            click.echo(f"    webhook {firing.webhook}")
        if firing.notify:
            click.echo("    notify")
