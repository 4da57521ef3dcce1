"""`microsip-bridge history`: MicroSIP's call history ([Calls] in microsip.ini), filtered."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import click

from microsip_bridge.cli._common import (
    emit,
    format_option,
    locate_files,
    location_options,
    output_option,
)

if TYPE_CHECKING:
    from microsip_bridge.microsip.history import CallEntry

FORMATS = ("table", "json", "csv", "microsip-csv", "xml")
# --format -> the library's export format (the table is ours, for people).
_EXPORTED = {"json": "json", "csv": "csv", "microsip-csv": "microsip-csv", "xml": "microsip-xml"}
# The most rows a limit can ask for: what a 64-bit count holds.
MAX_LIMIT = 2**63 - 1
_RELATIVE = r"^(\d+)([mhdw])$"  # compiled by re (and cached there) on first use, not at import
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_since(text: str, now: dt.datetime | None = None) -> dt.datetime:
    """``2026-11-30``, ``2026-11-30T08:00``, ``2026-11-30 08:00+01:00`` (naive: local time), or
    a span back from now: ``90m``, ``12h``, ``7d``, ``2w``. Raises ValueError, also for a time
    that has no Unix timestamp here (a span back past year 1, a date the platform cannot place
    in local time)."""
    match = re.match(_RELATIVE, text.strip())
    try:
        if match:
            now = now or dt.datetime.now(dt.UTC)
            when = now - dt.timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
        else:
            when = dt.datetime.fromisoformat(text.strip())
    except OverflowError:
        raise ValueError(f"{text!r} reaches back before year 1") from None
    except ValueError:
        raise ValueError(
            f"{text!r} is not a date (2026-11-30, 2026-11-30T08:00) or a span (12h, 7d, 2w)"
        ) from None
    try:
        when.timestamp()  # what the filters compare; naive times go through local time
    except (OverflowError, OSError, ValueError):
        raise ValueError(f"{text!r} is out of the range of dates this system can use") from None
    return when


class Since(click.ParamType[dt.datetime]):
    name = "WHEN"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> dt.datetime:
        if isinstance(value, dt.datetime):
            return value
        try:
            return parse_since(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


def format_duration(seconds: int) -> str:
    """A duration as MicroSIP's list shows it (``MSIP::GetDuration``): ``M:SS`` or ``H:MM:SS``,
    and nothing for 0 (an unanswered call)."""
    if seconds <= 0:
        return ""
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def to_table(entries: Iterable[CallEntry], *, tz: dt.tzinfo = dt.UTC) -> str:
    """A plain-text table, one call per line, columns aligned on terminal width.

    Columns: Key, Time (``YYYY-MM-DD HH:MM:SS`` in ``tz``, UTC by default), Type, Duration
    (as :func:`format_duration`), Number, Name, Info. Lines end in ``\\n``, none after the last.
    """
    from microsip_bridge.tables import format_table

    time_title = "Time (UTC)" if tz is dt.UTC else "Time"
    header = ("Key", time_title, "Type", "Duration", "Number", "Name", "Info")
    rows = [
        (
            str(entry.key),
            entry.started_at.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S"),
            entry.type.label,
            format_duration(entry.duration),
            entry.number,
            entry.name,
            entry.info,
        )
        for entry in entries
    ]
    return format_table(header, rows, right={0, 3})


def _limit(ctx: click.Context, param: click.Parameter, value: int | None) -> int | None:
    if value is not None and value > MAX_LIMIT:
        raise click.BadParameter(f"{value} is more than a count can be (at most {MAX_LIMIT})")
    return value


@click.command()
@location_options
@click.option(
    "--since", type=Since(), help="Only calls since a date/time (local) or a span: 12h, 7d, 2w."
)
@click.option(
    "--type",
    "types",
    multiple=True,
    type=click.Choice(
        ["outgoing", "incoming", "missed", "answered_elsewhere", "out", "in", "miss", "else"]
    ),
    help="Only calls of this type (repeatable).",
)
@click.option("--number", help="Only calls whose number contains this text (case-insensitive).")
@click.option(
    "--limit", type=click.IntRange(min=1), callback=_limit, help="Only the newest N calls."
)
@format_option(
    FORMATS, "csv and json are stable for scripts; microsip-csv and xml are MicroSIP's own export."
)
@click.option(
    "--raw",
    is_flag=True,
    help="With --format csv: write cells that start with = + - @, a tab or a carriage return as "
    "they are (by default they get a ' in front, so that a spreadsheet never runs them as "
    "formulas).",
)
@output_option
def history(
    microsip_path: Path | None,
    ini_path: Path | None,
    contacts_path: Path | None,
    since: dt.datetime | None,
    types: tuple[str, ...],
    number: str | None,
    limit: int | None,
    fmt: str,
    raw: bool,
    output: Path | None,
) -> None:
    """List MicroSIP's call history, oldest first, as MicroSIP stores it in microsip.ini.

    Damaged entries are skipped and each is reported on stderr with its key and the reason.

    \b
    Examples:
        microsip-bridge history --since 7d --type missed
        microsip-bridge history --number 555 --format json
        microsip-bridge history --format csv -o calls.csv
    """
    from microsip_bridge.microsip.history import CallType, filter_entries
    from microsip_bridge.microsip.history import read_history as read
    from microsip_bridge.microsip.history_formats import RAW_EXPORTERS, export
    from microsip_bridge.microsip.inifile import IniDocument

    exported = _EXPORTED.get(fmt)
    if raw and exported not in RAW_EXPORTERS:
        raise click.UsageError(f"--raw goes with --format csv; {fmt} is never altered")
    location = locate_files(microsip_path, ini_path, contacts_path)
    doc = IniDocument.load(location.ini)
    calls = read(doc)
    for problem in calls.problems:
        label = "skipped" if problem.skipped else "note"
        click.echo(f"{location.ini.name}: {problem.where}: {label}: {problem.reason}", err=True)
    wanted = [CallType.parse(t) for t in types] if types else None
    entries = filter_entries(calls.entries, since=since, types=wanted, number=number)
    if limit is not None:
        entries = entries[-limit:]
    if exported is None:
        emit(to_table(entries), output)
    else:
        text = export(entries, exported, raw=raw)
        # CSV and XML as bytes: as text, click would strip escape sequences from a number and
        # Windows would write each CRLF as CR CR LF. (JSON escapes both.)
        emit(text if exported == "json" else text.encode("utf-8"), output)
