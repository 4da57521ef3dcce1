"""`microsip-bridge contacts`: list, export and import MicroSIP's Contacts.xml."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

from microsip_bridge.cli._common import (
    contacts_file,
    contacts_running,
    dry_run_option,
    emit,
    force_option,
    location_options,
    output_option,
    state,
)
from microsip_bridge.contacts.formats import (
    EXPORT_FORMATS,
    IMPORT_FORMATS,
    WriteOptions,
    format_for_path,
    get_format,
)
from microsip_bridge.errors import BridgeError, NotFoundError

if TYPE_CHECKING:
    from microsip_bridge.microsip.contacts_xml import ContactsFile


class EncodingType(click.ParamType[str]):
    """A text encoding Python can decode with: a wrong name is a usage error (exit 2)."""

    name = "encoding"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> str:
        value = str(value)
        try:
            # Not b"": Python decodes empty bytes without looking the codec up.
            b"a".decode(value, "replace")
        except (LookupError, ValueError):
            # Unknown names, and codecs that are not bytes-to-text ("rot13", "hex").
            self.fail(f"{value!r} is not a text encoding (try utf-8, cp1252 or utf-16)", param, ctx)
        return value


class DelimiterType(click.ParamType[str]):
    """A CSV delimiter, checked by the importer's own rule: a wrong one is a usage error."""

    name = "char"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> str:
        from microsip_bridge.contacts.csvfile import check_delimiter

        try:
            return check_delimiter(str(value))
        except BridgeError as exc:
            self.fail(exc.message, param, ctx)


@click.group()
def contacts() -> None:
    """MicroSIP's contacts (Contacts.xml): list, export to other formats, import and merge.

    Contacts.xml is read and written exactly as MicroSIP's XML library does; MicroSIP must be
    closed while it changes, since it rewrites the file from memory.
    """


def _load(path: Path, *, missing_ok: bool = False) -> ContactsFile:
    from microsip_bridge.microsip.contacts_xml import ContactsFile, read_contacts

    if missing_ok and not path.exists():
        return ContactsFile([], path=path)
    return read_contacts(path, max_bytes=state().config.max_bytes)


def _report_problems(cf: ContactsFile) -> None:
    for problem in cf.problems:
        name = cf.path.name if cf.path else "Contacts.xml"
        click.echo(f"{name}: {problem}", err=True)


@contacts.command("list")
@location_options
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
def list_(
    microsip_path: Path | None, ini_path: Path | None, contacts_path: Path | None, fmt: str
) -> None:
    """Show the contacts, in file order.

    The table fits the terminal, cutting long values with "…"; piped or redirected, every value
    is shown whole.

    \b
    Example:
        microsip-bridge contacts list
        microsip-bridge contacts list --contacts ./Contacts.xml --format json
    """
    from microsip_bridge.contacts.jsonfile import export_json
    from microsip_bridge.tables import format_table

    cf = _load(contacts_file(microsip_path, ini_path, contacts_path))
    _report_problems(cf)
    if fmt == "json":
        click.echo(export_json(cf.contacts))
        return
    rows = [
        (
            c.display_name,
            c.number,
            c.phone,
            c.mobile,
            c.email,
            "".join(
                mark for mark, on in (("★", c.starred), ("P", c.presence), ("D", c.directory)) if on
            ),
        )
        for c in cf.contacts
    ]
    click.echo(
        format_table(["name", "number", "phone", "mobile", "email", "flags"], rows, max_width=32)
    )
    click.echo(f"{len(cf.contacts)} contacts (flags: ★ starred, P presence, D directory)")


@contacts.command("export")
@location_options
@click.option("--format", "fmt", type=click.Choice(EXPORT_FORMATS), required=True)
@click.option(
    "--vcard-version", type=click.Choice(["2.1", "3.0", "4.0"]), default="3.0", show_default=True
)
@click.option(
    "--refresh",
    type=click.IntRange(60, 86400),
    help="directory-json/xml: seconds before MicroSIP reloads the directory (60-86400).",
)
@output_option
def export(
    microsip_path: Path | None,
    ini_path: Path | None,
    contacts_path: Path | None,
    fmt: str,
    vcard_version: str,
    refresh: int | None,
    output: Path | None,
) -> None:
    """Export the contacts.

    \b
    Formats:
      csv             MicroSIP's own CSV export, byte for byte as MicroSIP writes it (UTF-8
                      with BOM, its column names), so MicroSIP imports it back; values are not
                      changed for spreadsheets (a name starting with = stays a formula)
      vcf             vCard (--vcard-version 2.1, 3.0 or 4.0)
      json            our stable JSON list (see the README)
      directory-json  what MicroSIP reads from a usersDirectory URL (JSON)
      directory-xml   the same as XML
      xml             Contacts.xml as MicroSIP writes it
    \b
    Example:
        microsip-bridge contacts export --format vcf -o contacts.vcf
    """
    cf = _load(contacts_file(microsip_path, ini_path, contacts_path))
    _report_problems(cf)
    limit = state().config.max_bytes
    options = WriteOptions(vcard_version=vcard_version, refresh=refresh, max_bytes=limit)
    emit(get_format(fmt).write(cf.contacts, options), output, max_bytes=limit)


@contacts.command("import")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@location_options
@click.option(
    "--format",
    "fmt",
    type=click.Choice(("auto", *IMPORT_FORMATS)),
    default="auto",
    show_default=True,
)
@click.option("--replace", is_flag=True, help="Replace all contacts instead of merging.")
@click.option(
    "--encoding", type=EncodingType(), help="The file's text encoding, if sniffing gets it wrong."
)
@click.option(
    "--delimiter",
    type=DelimiterType(),
    help="CSV: the field delimiter (one character; \\t or tab for a tab), if sniffing gets it "
    "wrong.",
)
@click.option(
    "--report-format",
    "report_fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    help="How to print what changes.",
)
@dry_run_option
@force_option
def import_(
    file: Path,
    microsip_path: Path | None,
    ini_path: Path | None,
    contacts_path: Path | None,
    fmt: str,
    replace: bool,
    encoding: str | None,
    delimiter: str | None,
    report_fmt: str,
    dry_run: bool,
    force: bool,
) -> None:
    """Import contacts from FILE (CSV, vCard, JSON or XML) into Contacts.xml.

    Merges as MicroSIP does: a contact with the same number and name is updated, anything else
    is added (--replace replaces the whole list). Numbers that do not fit a contact's three
    number fields, and rows without a number, are listed in the report, never dropped silently.

    \b
    Examples:
        microsip-bridge contacts import google.csv --dry-run
        microsip-bridge contacts import phone.vcf
        microsip-bridge contacts import crm.json --replace
    """
    from microsip_bridge.contacts.merge import describe, merge, records, summary, summary_line
    from microsip_bridge.contacts.saving import save_contacts

    cfg = state().config
    target = contacts_file(microsip_path, ini_path, contacts_path)
    if not file.exists():  # before guessing a format from the name of a file that is not there
        raise NotFoundError("no such file", path=file)
    source = get_format(fmt) if fmt != "auto" else format_for_path(file)
    if source is None:
        raise BridgeError(
            f"cannot tell the format from the file name; pass --format {'|'.join(IMPORT_FORMATS)}",
            path=file,
        )
    result = source.read_file(file, max_bytes=cfg.max_bytes, encoding=encoding, delimiter=delimiter)
    plan = merge(_load(target, missing_ok=True).contacts, result, replace=replace)
    # Check, then act, then report: a refused write (MicroSIP running, a file too large to read
    # back) raises here, before any line of the plan is printed as if done.
    backup = None
    if plan.changed and not dry_run:
        backup = save_contacts(
            target,
            plan.result,
            max_bytes=cfg.max_bytes,
            backups=cfg.backups,
            microsip_running=contacts_running(target),
            force=force,
        )
    if report_fmt == "json":
        report = {
            "file": str(file),
            "contacts": str(target),
            "dry_run": dry_run,
            "summary": summary(plan),
            "changes": records(plan),
            "report": [{"where": n.where, "message": n.message} for n in result.report],
        }
        click.echo(json.dumps(report, indent=2, ensure_ascii=False))
    else:
        for note in result.report:
            click.echo(f"{file.name}: {note}", err=True)
        if dry_run:
            for line in describe(plan):
                click.echo(line)
        else:  # a skipped record is never dropped silently, dry run or not
            for skip in plan.skipped:
                click.echo(f"{file.name}: {skip}", err=True)
        click.echo(summary_line(plan))
    if dry_run:
        click.echo("dry run: nothing written", err=True)
    elif not plan.changed:
        click.echo("nothing to change", err=True)
    else:
        click.echo(f"wrote {target}" + (f" (backup: {backup})" if backup else ""), err=True)
