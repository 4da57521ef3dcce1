"""`microsip-bridge calls` and `events`: the call log and the event log, read from the store."""

from __future__ import annotations

import datetime as dt
import sys
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, cast

import click

from microsip_bridge.cli._common import emit, format_option, output_option, state
from microsip_bridge.cli.history import format_duration, parse_since

if TYPE_CHECKING:
    from microsip_bridge.numbers import Normaliser
    from microsip_bridge.store.reader import LogReader

CALL_FORMATS = ("table", "json", "csv")
EVENT_FORMATS = ("table", "json")
# `calls` without --limit or --all shows the newest this many: a log of a million calls is
# not something to print by accident.
DEFAULT_LIMIT = 50
# The largest count or cursor both databases take (a signed 64-bit LIMIT, OFFSET or cursor).
MAX_COUNT = 2**63 - 1
# A fresh `events --follow` shows this many recent events before it waits for new ones.
FOLLOW_BACKLOG = 10
# Calls per piece of output: printed as they come, a table aligned block by block.
BLOCK = 1000
CALL_HEADER = ("Started (UTC)", "Direction", "Number", "Name", "Outcome", "Duration", "Call id")


class SinceTime(click.ParamType[float]):
    """``--since`` as Unix seconds: a date, a date-time (local unless it has an offset) or a
    span back from now. A moment no clock can hold is a usage error, like a malformed one."""

    name = "WHEN"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        if isinstance(value, float):
            return value
        try:
            return parse_since(str(value)).timestamp()
        except ValueError as exc:
            self.fail(str(exc), param, ctx)
        except (OverflowError, OSError):
            # A span reaching before year 1, or a date the platform's clock cannot convert.
            self.fail(f"{value!r} is out of range", param, ctx)


def _finite(ctx: click.Context, param: click.Parameter, value: float) -> float:
    # FloatRange lets NaN through (every comparison with it is false).
    if value != value:
        raise click.BadParameter("must be a number of seconds, not nan")
    return value


def _needle(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    from microsip_bridge.store.reader import number_needle

    if value is not None and not number_needle(value):
        raise click.BadParameter("give some digits (or letters) of the number")
    return value


def database_option(func: click.decorators.FC) -> click.decorators.FC:
    return click.option(
        "--database",
        metavar="URL",
        help="The store to read: sqlite:///PATH or postgresql://USER@HOST/DB (setting: "
        "database; default: bridge.db in the bridge's home).",
    )(func)


def open_store(database: str | None) -> LogReader | None:
    """A reader of the call log, or None when there is no call log yet (nothing created)."""
    from microsip_bridge.store.reader import open_reader
    from microsip_bridge.wire import bridge_home

    return open_reader(database or str(state().config["database"]) or None, bridge_home())


def _normaliser() -> Normaliser:
    from microsip_bridge.numbers import normaliser_for

    return normaliser_for(str(state().config["default_region"]))


def _no_log(database: str | None) -> None:
    where = database or "the bridge's home"
    click.echo(f"no call log yet in {where}: start `microsip-bridge serve`", err=True)


def _utc(ts: object) -> str:
    if not isinstance(ts, int | float):
        return ""
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def _duration(seconds: object) -> str:
    if not isinstance(seconds, int | float):
        return ""
    return format_duration(round(seconds)) or "0:00"


def calls_table(calls: Iterable[dict[str, object]]) -> Iterator[str]:
    """Calls for people: one per line, times in UTC, under a header; aligned in blocks of
    :data:`BLOCK` calls, each printed as soon as it is read. Each piece ends in a line
    end."""
    from microsip_bridge.tables import format_table

    block: list[tuple[object, ...]] = []
    header = True
    for call in calls:
        block.append(
            (
                _utc(call["started_at"]),
                call["direction"],
                call["number"],
                call["name"],
                call["outcome"] if call["outcome"] is not None else call["state"],
                _duration(call["duration"]),
                call["call_id"],
            )
        )
        if len(block) == BLOCK:
            yield _table_block(format_table(CALL_HEADER, block, right={5}, max_width=60), header)
            block, header = [], False
    if block or header:
        yield _table_block(format_table(CALL_HEADER, block, right={5}, max_width=60), header)


def _table_block(table: str, header: bool) -> str:
    # Every block is a table of its own; the header and its rule are printed once, on top.
    return (table if header else table.split("\n", 2)[2]) + "\n"


def calls_json(calls: Iterable[dict[str, object]]) -> Iterator[str]:
    """Calls for scripts: a JSON array of every field (times are Unix seconds), indented, one
    call after the other: the same text as one ``json.dumps(..., indent=2)`` of the list."""
    import json

    from microsip_bridge.store.reader import CALL_FIELDS

    # Made by the C encoder and one template: Python's own encoder, which ``indent`` brings
    # in, took 45 us a call, most of what `calls --all` cost. An encoded value never holds a
    # control character (they are escaped), so one separates the values of one encoding.
    encode = json.JSONEncoder(ensure_ascii=False, separators=("\x1f", ":")).encode
    # The fields that hold lists: each is laid out over lines of its own, as indent=2 does.
    lists = [CALL_FIELDS.index("events"), CALL_FIELDS.index("transitions")]
    template = "  {\n" + ",\n".join(f"    {encode(k)}: %s" for k in CALL_FIELDS) + "\n  }"
    opened = False
    for call in calls:
        values = list(call.values())
        if tuple(call) != CALL_FIELDS or not isinstance(values[lists[0]], list):
            raise ValueError(f"not a call as the store reads it: {sorted(call)}")
        held = [values[i] for i in lists]
        for i in reversed(lists):
            values.pop(i)
        parts = encode(values)[1:-1].split("\x1f")
        for i, items in zip(lists, held, strict=True):
            if items is None:
                parts.insert(i, "null")
            elif items:
                lines = ",\n      ".join(encode(items)[1:-1].split("\x1f"))
                parts.insert(i, f"[\n      {lines}\n    ]")
            else:
                parts.insert(i, "[]")
        yield ("[\n" if not opened else ",\n") + template % tuple(parts)
        opened = True
    yield "\n]\n" if opened else "[]\n"


class _Sink:
    """Where output goes: standard output as it is produced, or ``output``, written whole and
    atomically at the end (no half-written export)."""

    def __init__(self, output: Path | None) -> None:
        self.output = output
        self._parts: list[bytes] = []

    def write(self, text: str) -> None:
        # Bytes, not click.echo: click would strip escape sequences from text, and a number or
        # a name may hold them (CSV keeps them; the table and the JSON never print them raw).
        data = text.encode("utf-8")
        if self.output is not None:
            self._parts.append(data)
        elif data:
            sys.stdout.buffer.write(data)

    def close(self) -> None:
        if self.output is not None:
            emit(b"".join(self._parts), self.output)
        else:
            sys.stdout.flush()
            sys.stdout.buffer.flush()


@click.command()
@click.option(
    "--since",
    type=SinceTime(),
    help="Only calls since a date/time (local) or a span: 90m, 12h, 7d, 2w.",
)
@click.option(
    "--number",
    callback=_needle,
    help="Only calls with this number: the same number once normalised (setting: "
    "default_region), or whose number holds these digits (spaces, dashes, dots, slashes and "
    "parentheses ignored on both sides).",
)
@click.option(
    "--limit",
    type=click.IntRange(min=1, max=MAX_COUNT),
    help=f"Only the newest N calls (default: {DEFAULT_LIMIT}).",
)
@click.option("--all", "every", is_flag=True, help="Every call (no limit).")
@format_option(CALL_FORMATS, "json and csv carry every field, for scripts.")
@click.option(
    "--raw",
    is_flag=True,
    help="csv: every value as stored, even one a spreadsheet would run as a formula.",
)
@database_option
@output_option
def calls(
    since: float | None,
    number: str | None,
    limit: int | None,
    every: bool,
    fmt: str,
    raw: bool,
    database: str | None,
    output: Path | None,
) -> None:
    """List the calls the daemon has recorded, oldest first: the newest 50 unless --limit or
    --all says otherwise (a note on stderr says when older ones were left out).

    Each call has our own stable id, its direction, number, state and outcome (answered,
    missed, declined, rejected, busy, cancelled, failed...) and, once MicroSIP's [Calls]
    history was read, the contact name and MicroSIP's own type and status. Calls are printed
    as they are read, so --all streams even a very large log.

    \b
    Example:
        microsip-bridge calls --since 1d
        microsip-bridge calls --number 5551234 --limit 20 --format json
        microsip-bridge calls --all --format csv -o calls.csv
    """
    if every and limit is not None:
        raise click.UsageError("--all and --limit do not go together")
    if raw and fmt != "csv":
        raise click.UsageError("--raw is for --format csv")
    count = None if every else (limit or DEFAULT_LIMIT)
    reader = open_store(database)
    if reader is None:
        _no_log(database)
    sink = _Sink(output)
    more = False
    try:
        rows: Iterable[dict[str, object]] = ()
        if reader is not None:
            listing = reader.calls(since=since, number=number, limit=count, normalise=_normaliser())
            rows, more = listing.rows, listing.more
        if fmt == "csv":
            from microsip_bridge.calls.export import calls_csv

            pieces = calls_csv(rows, raw=raw)
        elif fmt == "json":
            pieces = calls_json(rows)
        else:
            pieces = calls_table(rows)
        for piece in pieces:
            sink.write(piece)
    finally:
        if reader is not None:
            reader.close()
    sink.close()
    if more and limit is None:
        click.echo(f"the newest {DEFAULT_LIMIT} calls; --limit N or --all for more", err=True)


def event_json(event: dict[str, object]) -> str:
    from microsip_bridge.store.reader import json_text

    return json_text(event)


def event_line(event: dict[str, object]) -> str:
    """One event as a fixed-width line (it can be printed as it comes, unlike a table)."""
    from microsip_bridge.tables import cell

    number = cell(event["number"])
    if len(number) > 24:
        number = number[:23] + "…"
    return (
        f"{event['cursor']:>8}  {_utc(event['ts'])}  {event['event']:<12}  {number:<24}  "
        f"{event['call_id'] or '-':<25}  {event['source']}"
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
        import signal

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
    type=click.IntRange(min=0, max=MAX_COUNT),
    metavar="CURSOR",
    help="Only events after this cursor (what the previous run printed last).",
)
@click.option(
    "--limit", type=click.IntRange(min=1, max=MAX_COUNT), help="Only the newest N events."
)
@format_option(EVENT_FORMATS, "json: one JSON object per line (JSON Lines), for scripts.")
@click.option(
    "--interval",
    type=click.FloatRange(min=0.05, max=3600.0),
    callback=_finite,
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
    reader = open_store(database)
    if reader is None:
        _no_log(database)
        if not follow:
            return
        while reader is None:  # the daemon has not created it yet: wait for it
            ctrl_c.pause(interval)
            if ctrl_c.pressed:
                return
            reader = open_store(database)
    write = event_json if fmt == "json" else event_line
    if fmt == "table":
        click.echo(EVENT_HEADER)
    try:
        cursor = after or 0
        if after is None and (limit is not None or follow):
            cursor = reader.cursor_before_newest(limit or FOLLOW_BACKLOG)
        # --after with --limit: the first N after the cursor (paging through the log).
        budget = limit if (limit is not None and after is not None and not follow) else None
        while not ctrl_c.pressed:
            size = 1000 if budget is None else min(1000, budget)
            page = reader.events_after(cursor, size)
            for event in page:
                click.echo(write(event))
            if page:
                cursor = cast(int, page[-1]["cursor"])
            if budget is not None:
                budget -= len(page)
                if budget <= 0:
                    return
            reader.refresh()  # end the read: the next one sees new commits
            if page:
                continue
            if not follow:
                return
            ctrl_c.pause(interval)
    finally:
        reader.close()
