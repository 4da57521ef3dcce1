"""`microsip-bridge calls` and `events`: the call log and the event log, read from the store."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import click

from microsip_bridge.cli._common import emit, format_option, output_option, state
from microsip_bridge.cli.history import Since, format_duration

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine

    from microsip_bridge.model import Call
    from microsip_bridge.store.repo import StoredEvent

CALL_FORMATS = ("table", "json", "csv")
EVENT_FORMATS = ("table", "json")
# A fresh `events --follow` shows this many recent events before it waits for new ones.
FOLLOW_BACKLOG = 10


def database_option(func: click.decorators.FC) -> click.decorators.FC:
    return click.option(
        "--database",
        metavar="URL",
        help="The store to read: sqlite:///PATH or postgresql://USER@HOST/DB (setting: "
        "database; default: bridge.db in the bridge's home).",
    )(func)


def open_store(database: str | None) -> Engine | None:
    """The engine of the call log, or None when there is no call log yet (nothing created)."""
    from sqlalchemy import inspect
    from sqlalchemy.exc import DBAPIError

    from microsip_bridge.store.engine import DB_NAME, database_error, make_engine
    from microsip_bridge.wire import bridge_home

    url = database or str(state().config["database"]) or None
    home = bridge_home()
    if url is None and not (home / DB_NAME).is_file():
        return None
    engine = make_engine(url, home)
    try:
        if not inspect(engine).has_table("events"):
            engine.dispose()
            return None
    except DBAPIError as exc:
        raise database_error(engine, exc) from None
    return engine


@contextmanager
def reading(engine: Engine) -> Iterator[Connection]:
    """A connection whose driver errors become one-line BridgeErrors."""
    from sqlalchemy.exc import DBAPIError

    from microsip_bridge.store.engine import database_error

    try:
        with engine.connect() as conn:
            yield conn
    except DBAPIError as exc:
        raise database_error(engine, exc) from None


def _no_log(database: str | None) -> None:
    where = database or "the bridge's home"
    click.echo(f"no call log yet in {where}: start `microsip-bridge serve`", err=True)


def _utc(ts: float | None) -> str:
    if ts is None:
        return ""
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    return format_duration(round(seconds)) or "0:00"


def calls_table(calls: Sequence[Call]) -> str:
    """Calls for people: one per line, times in UTC."""
    from microsip_bridge.tables import format_table

    header = ("Started (UTC)", "Direction", "Number", "Name", "Outcome", "Duration", "Call id")
    rows = [
        (
            _utc(c.started_at),
            c.direction.value,
            c.number,
            c.name,
            c.outcome.value if c.outcome is not None else c.state.value,
            _duration(c.duration),
            c.call_id,
        )
        for c in calls
    ]
    return format_table(header, rows, right={5}, max_width=60)


def calls_json(calls: Sequence[Call]) -> str:
    """Calls for scripts: a JSON array of every field (times are Unix seconds)."""
    import json

    return json.dumps([c.to_dict() for c in calls], indent=2, ensure_ascii=False) + "\n"


def calls_csv(calls: Sequence[Call]) -> str:
    """Calls for spreadsheets: every field, ``events`` as space-separated event ids."""
    import csv
    import io

    from microsip_bridge.model import Call

    names = [f for f in Call.__dataclass_fields__ if f != "events"] + ["events"]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(names)
    for call in calls:
        data = call.to_dict()
        data["events"] = " ".join(call.events)
        writer.writerow(["" if data[n] is None else data[n] for n in names])
    return out.getvalue()


@click.command()
@click.option(
    "--since", type=Since(), help="Only calls since a date/time (local) or a span: 12h, 7d."
)
@click.option("--limit", type=click.IntRange(min=1), help="Only the newest N calls.")
@format_option(CALL_FORMATS, "json and csv carry every field, for scripts.")
@database_option
@output_option
def calls(
    since: dt.datetime | None,
    limit: int | None,
    fmt: str,
    database: str | None,
    output: Path | None,
) -> None:
    """List the calls the daemon has recorded, oldest first.

    Each call has our own stable id, its direction, number, state and outcome (answered,
    missed, declined, rejected, busy, cancelled, failed...) and, once MicroSIP's [Calls]
    history was read, the contact name and MicroSIP's own type and status.

    \b
    Example:
        microsip-bridge calls --since 1d
        microsip-bridge calls --limit 20 --format json
        microsip-bridge calls --format csv -o calls.csv
    """
    from microsip_bridge.store.repo import list_calls

    engine = open_store(database)
    found: list[Call] = []
    if engine is None:
        _no_log(database)
    else:
        try:
            with reading(engine) as conn:
                stamp = since.timestamp() if since is not None else None
                found = list_calls(conn, since=stamp, limit=limit)
        finally:
            engine.dispose()
    found.reverse()  # the store gives the newest first; people read a log top-down
    if fmt == "csv":
        # Bytes: click would strip escape sequences from text, and a number may hold them.
        emit(calls_csv(found).encode("utf-8"), output)
    else:
        emit(calls_json(found) if fmt == "json" else calls_table(found), output)


def event_json(event: StoredEvent) -> str:
    import json

    return json.dumps(
        {
            "cursor": event.cursor,
            "uid": event.uid,
            "event": event.event.value,
            "number": event.number,
            "ts": event.ts,
            "pid": event.pid,
            "source": event.source,
            "received_at": event.received_at,
            "call_id": event.call_id,
        },
        ensure_ascii=False,
    )


def event_line(event: StoredEvent) -> str:
    """One event as a fixed-width line (it can be printed as it comes, unlike a table)."""
    from microsip_bridge.tables import cell

    number = cell(event.number)
    if len(number) > 24:
        number = number[:23] + "…"
    return (
        f"{event.cursor:>8}  {_utc(event.ts)}  {event.event.value:<12}  {number:<24}  "
        f"{event.call_id or '-':<25}  {event.source}"
    )


EVENT_HEADER = (
    f"{'Cursor':>8}  {'Fired (UTC)':<19}  {'Event':<12}  {'Number':<24}  {'Call id':<25}  Source"
)


def _start_cursor(conn: Connection, limit: int) -> int:
    """The cursor just before the newest ``limit`` events."""
    from sqlalchemy import select

    from microsip_bridge.store.schema import events

    query = select(events.c.cursor).order_by(events.c.cursor.desc()).limit(1).offset(limit)
    before = conn.execute(query).scalar_one_or_none()
    return 0 if before is None else int(before)


@click.command()
@click.option("-f", "--follow", is_flag=True, help="Keep printing new events as they arrive.")
@click.option(
    "--after",
    type=click.IntRange(min=0),
    metavar="CURSOR",
    help="Only events after this cursor (what the previous run printed last).",
)
@click.option("--limit", type=click.IntRange(min=1), help="Only the newest N events.")
@format_option(EVENT_FORMATS, "json: one JSON object per line (JSON Lines), for scripts.")
@click.option(
    "--interval",
    type=click.FloatRange(min=0.05),
    default=0.5,
    show_default=True,
    help="Seconds between looks at the log with --follow.",
)
@database_option
def events(
    follow: bool,
    after: int | None,
    limit: int | None,
    fmt: str,
    interval: float,
    database: str | None,
) -> None:
    """Print the event log: every hook event the daemon stored, oldest first, with its cursor.

    The cursor only grows: pass the last one seen to --after to continue where you stopped.
    With --follow (and no --after or --limit) the last 10 events are shown, then new ones as
    they come, until Ctrl-C.

    \b
    Example:
        microsip-bridge events --limit 50
        microsip-bridge events --follow
        microsip-bridge events --after 1200 --format json
    """
    from microsip_bridge.store.repo import events_after

    engine = open_store(database)
    if engine is None:
        _no_log(database)
        if not follow:
            return
        while engine is None:  # the daemon has not created it yet: wait for it
            time.sleep(interval)
            engine = open_store(database)
    write = event_json if fmt == "json" else event_line
    if fmt == "table":
        click.echo(EVENT_HEADER)
    try:
        with reading(engine) as conn:
            cursor = after or 0
            if after is None and (limit is not None or follow):
                cursor = _start_cursor(conn, limit or FOLLOW_BACKLOG)
            # --after with --limit: the first N after the cursor (paging through the log).
            budget = limit if (limit is not None and after is not None and not follow) else None
            while True:
                size = 1000 if budget is None else min(1000, budget)
                page = events_after(conn, cursor, size)
                for event in page:
                    click.echo(write(event))
                if page:
                    cursor = page[-1].cursor
                if budget is not None:
                    budget -= len(page)
                    if budget <= 0:
                        return
                conn.commit()  # end the read transaction: the next one sees new commits
                if page:
                    continue
                if not follow:
                    return
                time.sleep(interval)
    except KeyboardInterrupt:
        return
    finally:
        engine.dispose()
