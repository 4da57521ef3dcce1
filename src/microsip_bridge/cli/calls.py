"""`microsip-bridge calls` and `events`: the call log and the event log, read from the store."""

from __future__ import annotations

import datetime as dt
import signal
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

import click

from microsip_bridge.cli._common import emit, format_option, output_option, state
from microsip_bridge.cli.history import Since, format_duration

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

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
    from microsip_bridge.store.engine import open_log
    from microsip_bridge.wire import bridge_home

    return open_log(database or str(state().config["database"]) or None, bridge_home())


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
    from microsip_bridge.store.engine import reading
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


class _CtrlC:
    """Ctrl-C (SIGINT) as a request to stop, seen between reads of the log: an interrupt in the
    middle of a query would unwind through SQLAlchemy's pool, and click would turn it into
    "Aborted." (exit 1). The handler is set even when SIGINT was ignored at start (a shell
    without job control does that to a background job, and Python then sets no handler of its
    own), so SIGINT always ends --follow. A second Ctrl-C interrupts at once (a read that
    hangs)."""

    NAP = 0.05  # seconds: how soon a pause sees the request

    def __init__(self) -> None:
        self.pressed = False

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.pressed:
            raise KeyboardInterrupt
        self.pressed = True

    @contextmanager
    def caught(self) -> Iterator[None]:
        """SIGINT sets :attr:`pressed` while the block runs (in the main thread; elsewhere
        Ctrl-C stays a KeyboardInterrupt)."""
        try:
            previous = signal.signal(signal.SIGINT, self._handle)
        except ValueError:  # not the main thread
            yield
            return
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)

    def pause(self, seconds: float) -> None:
        """Sleep ``seconds``, or less once Ctrl-C was pressed."""
        until = time.monotonic() + seconds
        while not self.pressed and (left := until - time.monotonic()) > 0:
            time.sleep(min(left, self.NAP))


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
    ctrl_c = _CtrlC()
    with ctrl_c.caught() if follow else nullcontext():
        try:
            _print_events(follow, after, limit, fmt, interval, database, ctrl_c)
        except KeyboardInterrupt:  # a second Ctrl-C, or one without our handler
            return


def _print_events(
    follow: bool,
    after: int | None,
    limit: int | None,
    fmt: str,
    interval: float,
    database: str | None,
    ctrl_c: _CtrlC,
) -> None:
    from microsip_bridge.store.engine import reading
    from microsip_bridge.store.repo import cursor_before_newest, events_after

    engine = open_store(database)
    if engine is None:
        _no_log(database)
        if not follow:
            return
        while engine is None:  # the daemon has not created it yet: wait for it
            ctrl_c.pause(interval)
            if ctrl_c.pressed:
                return
            engine = open_store(database)
    write = event_json if fmt == "json" else event_line
    if fmt == "table":
        click.echo(EVENT_HEADER)
    try:
        with reading(engine) as conn:
            cursor = after or 0
            if after is None and (limit is not None or follow):
                cursor = cursor_before_newest(conn, limit or FOLLOW_BACKLOG)
            # --after with --limit: the first N after the cursor (paging through the log).
            budget = limit if (limit is not None and after is not None and not follow) else None
            while not ctrl_c.pressed:
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
                ctrl_c.pause(interval)
    finally:
        engine.dispose()
