"""`microsip-bridge webhooks list|retry|replay|test`: the webhook targets and the outbox.

Through the daemon when one runs (`retry MESSAGE`, `replay` and `test` use its API: its worker
starts at once, `test` uses the targets it loaded), else straight on the store and with
config.toml's targets. `list`, and `retry --target/--all`, work on the store itself (the outbox
is a table of it): a running daemon's worker sees their changes within 2 s.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import time
import urllib.parse
from typing import TYPE_CHECKING, Any, cast

import click

from microsip_bridge.cli._common import format_option, state
from microsip_bridge.cli.calls import SinceTime, database_option

if TYPE_CHECKING:
    from collections.abc import Iterator

    from sqlalchemy.engine import Connection

    from microsip_bridge.webhooks.targets import WebhookTarget

FORMATS = ("table", "json")
MESSAGE_HEADER = ("Id", "Target", "Type", "State", "Tries", "Last", "Created (UTC)", "Call id")


def _targets() -> list[WebhookTarget]:
    from microsip_bridge.webhooks.targets import parse_targets

    config = state().config
    return parse_targets(config.tables.get("webhooks", []), path=config.path)


def _store(database: str | None, *, write: bool) -> Iterator[Connection]:
    from microsip_bridge.errors import BridgeError
    from microsip_bridge.store.engine import open_log
    from microsip_bridge.wire import bridge_home

    engine = open_log(database or str(state().config["database"]) or None, bridge_home())
    if engine is None:
        raise BridgeError("no call log yet: start `microsip-bridge serve`")
    try:
        with engine.begin() if write else engine.connect() as conn:
            yield conn
    finally:
        engine.dispose()


def _daemon_call(method: str, path: str, body: object = None) -> dict[str, Any] | None:
    """The running daemon's JSON answer to ``method path``, or None when no daemon answers.
    Its errors become the BridgeError they stand for."""
    import http.client

    from microsip_bridge.control.client import CONNECT_TIMEOUT, find_daemon
    from microsip_bridge.errors import BridgeError, NotFoundError
    from microsip_bridge.wire import bridge_home

    daemon = find_daemon(bridge_home())
    if daemon is None:
        return None
    host, port, token = daemon
    authority = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    conn = http.client.HTTPConnection(host, port, timeout=CONNECT_TIMEOUT)
    try:
        try:
            conn.connect()
        except OSError:
            return None  # it died without removing daemon.json
        if conn.sock is not None:
            conn.sock.settimeout(float(state().config["webhook_timeout"]) + 30)
        conn.request(
            method,
            path,
            body=None if body is None else json.dumps(body),
            headers={
                "Host": authority,
                "Authorization": f"Bearer {token}",
                "Content-Type": "application/json",
            },
        )
        response = conn.getresponse()
        raw = response.read(1024 * 1024)
    except (OSError, http.client.HTTPException) as exc:
        raise BridgeError(f"the daemon at {authority} did not answer: {exc}") from None
    finally:
        conn.close()
    try:
        data = json.loads(raw)
    except ValueError:
        data = {}
    if response.status == 200 and isinstance(data, dict):
        return data
    detail = data.get("detail") if isinstance(data, dict) else None
    message = detail if isinstance(detail, str) else f"HTTP {response.status}"
    if response.status == 404:
        raise NotFoundError(message)
    raise BridgeError(f"the daemon refused: {message}")


def _utc(ts: object) -> str:
    if not isinstance(ts, int | float):
        return ""
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


@click.group()
def webhooks() -> None:
    """The webhook targets of config.toml and their messages: list, retry, replay, test."""


@webhooks.command("list")
@click.option("--state", "state_", type=click.Choice(("pending", "delivered", "dead")))
@click.option("--target", help="Only this target's messages.")
@click.option("--call", "call_id", metavar="CALL_ID", help="Only this call's messages.")
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True)
@format_option(FORMATS, "table for people, json for programs.")
@database_option
def list_(
    state_: str | None,
    target: str | None,
    call_id: str | None,
    limit: int,
    fmt: str,
    database: str | None,
) -> None:
    """List the targets (never their secrets) and the newest messages, newest first.

    \b
    Example:
        microsip-bridge webhooks list --state dead --format json
    """
    from microsip_bridge.webhooks import admin

    targets = _targets()
    for conn in _store(database, write=False):
        overview = admin.overview(conn, targets)
        found = admin.list_messages(conn, state=state_, target=target, call_id=call_id, limit=limit)
    if fmt == "json":
        click.echo(json.dumps({**overview, "messages": found}, ensure_ascii=False, indent=2))
        return
    from microsip_bridge.tables import format_table

    rows: list[tuple[object, ...]] = []
    for t in cast("list[dict[str, Any]]", overview["targets"]):
        m = t["messages"]
        where = t["url"] if t["configured"] else "(not in config.toml: its messages wait)"
        events = ", ".join(t["events"])
        rows.append((t["name"], where, events, m["pending"], m["delivered"], m["dead"]))
    headers = ("Target", "URL", "Events", "Pending", "Delivered", "Dead")
    click.echo(format_table(headers, rows, right=(3, 4, 5)), nl=False)
    click.echo()
    table = [
        (
            m["id"],
            m["target"],
            m["type"],
            m["state"],
            m["attempts"],
            m["last_status"] or str(m["last_error"] or "")[:30],
            _utc(m["created_at"]),
            m["call_id"] or "",
        )
        for m in found
    ]
    click.echo(format_table(MESSAGE_HEADER, table, right=(0, 4)), nl=False)


@webhooks.command()
@click.argument("message", type=int, required=False)
@click.option("--target", help="Every dead or failing message of this target.")
@click.option("--all", "every", is_flag=True, help="Every dead or failing message.")
@database_option
def retry(message: int | None, target: str | None, every: bool, database: str | None) -> None:
    """Send dead (or failing) messages again now: MESSAGE (an id from `list`), --target or --all.

    \b
    Example:
        microsip-bridge webhooks retry --target crm
    """
    from microsip_bridge.webhooks import admin

    if (message is not None) + (target is not None) + every != 1:
        raise click.UsageError("give one of MESSAGE, --target and --all")
    answer = None
    if message is not None and database is None:
        answer = _daemon_call("POST", f"/api/v1/webhooks/messages/{message}/retry")
    if answer is not None:
        count = int(answer["retried"])
    else:
        for conn in _store(database, write=True):
            count = admin.retry(conn, now=time.time(), message=message, target=target)
    click.echo(f"{count} message{'s' if count != 1 else ''} due again now")


@webhooks.command()
@click.option("--call", "call_id", metavar="CALL_ID", help="The delivered messages of this call.")
@click.option("--since", type=SinceTime(), help="Those delivered since: a date or a span (7d).")
@click.option("--target", help="Only this target's messages.")
@database_option
def replay(
    call_id: str | None, since: float | None, target: str | None, database: str | None
) -> None:
    """Send delivered messages again, with the same webhook-id (receivers that drop ids they
    have seen drop them).

    \b
    Example:
        microsip-bridge webhooks replay --since 2h --target crm
    """
    from microsip_bridge.webhooks import admin

    if call_id is None and since is None:
        raise click.UsageError("give --call or --since")
    answer = None
    if database is None:
        asked = {"call_id": call_id, "since": since, "target": target}
        answer = _daemon_call("POST", "/api/v1/webhooks/replay", asked)
    if answer is not None:
        count = int(answer["replayed"])
    else:
        for conn in _store(database, write=True):
            count = admin.replay(conn, now=time.time(), call_id=call_id, since=since, target=target)
    click.echo(f"{count} message{'s' if count != 1 else ''} to be sent again")
    click.echo(f"note: {admin.REPLAY_NOTE}", err=True)


@webhooks.command()
@click.argument("name")
def test(name: str) -> None:
    """Send a signed webhook.test message to target NAME now and print the receiver's answer.

    \b
    Example:
        microsip-bridge webhooks test crm
    """
    from microsip_bridge.errors import BridgeError
    from microsip_bridge.webhooks.worker import Outcome, send_test

    answer = _daemon_call("POST", f"/api/v1/webhooks/{urllib.parse.quote(name, safe='')}/test")
    if answer is not None:
        outcome = Outcome(answer.get("status"), str(answer.get("error") or ""))
    else:
        found = [t for t in _targets() if t.name == name]
        if not found:
            raise BridgeError(f"no [[webhooks]] target named {name!r} in {state().config.path}")
        outcome = send_test(found[0], timeout=float(state().config["webhook_timeout"]))
    if outcome.ok:
        click.echo(f"{name}: HTTP {outcome.status}: delivered")
        return
    click.echo(f"{name}: {outcome.error or f'HTTP {outcome.status}'}: not delivered", err=True)
    sys.exit(1)
