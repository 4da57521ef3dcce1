"""`microsip-bridge doctor`: what the bridge finds in a MicroSIP set-up, and how to fix problems."""

from __future__ import annotations

import json
from pathlib import Path

import click

from microsip_bridge.cli._common import locate_files, location_options, microsip_running, state
from microsip_bridge.errors import NotFoundError


@click.command()
@location_options
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True
)
def doctor(
    microsip_path: Path | None, ini_path: Path | None, contacts_path: Path | None, fmt: str
) -> int:
    """Check a MicroSIP set-up: its folder and version, the ini's encoding, accounts (never their
    passwords), hooks, contacts and call history, then list problems with their fixes.

    Exits 1 when it finds an error, 4 when a file named by --ini or --contacts does not exist,
    0 otherwise (warnings included). A Contacts.xml that MicroSIP has not created yet is no
    error: it creates the file when the first contact is added.

    \b
    Example:
        microsip-bridge doctor --microsip "C:\\Program Files\\MicroSIP"
        microsip-bridge doctor --ini ./microsip.ini --format json
    """
    from microsip_bridge.diagnosis import diagnose
    from microsip_bridge.microsip.hook_keys import fast_hook_program

    cfg = state().config
    location = locate_files(microsip_path, ini_path, contacts_path)
    program: str | Path = cfg["hook_program"] or fast_hook_program()[0]
    diag = diagnose(
        location,
        running=microsip_running(location.ini),
        hook_program=program,
        max_contacts_bytes=cfg.max_bytes,
        ini_named=ini_path is not None,
        contacts_named=contacts_path is not None,
    )
    if fmt == "json":
        click.echo(json.dumps(diag.to_dict(), indent=2, ensure_ascii=False))
    else:
        click.echo(render(diag))
    if diag.missing:
        return NotFoundError.exit_code
    return 1 if diag.errors else 0


def render(diag: object) -> str:
    """The text report: sections, aligned, problems last."""
    from microsip_bridge.diagnosis import Diagnosis
    from microsip_bridge.tables import format_table

    assert isinstance(diag, Diagnosis)
    loc = diag.location
    running = {True: "yes", False: "no", None: "unknown on this OS"}[diag.running]
    out = [
        "MicroSIP",
        f"  folder     {loc.folder}  ({loc.mode}; {loc.found_by})",
        f"  ini        {loc.ini}",
        f"  contacts   {loc.contacts}",
        f"  version    {diag.version or 'unknown'}",
        f"  running    {running}",
    ]
    if diag.ini is not None:
        ends = "CRLF" if diag.ini.newline == "\r\n" else "LF"
        out.append(f"  encoding   {diag.ini.encoding.value}, {ends} line ends")
    if diag.accounts:
        out += ["", "Accounts (passwords are never shown)"]
        rows = [
            (
                ("*" if a.id == diag.active_account else "") + str(a.id),
                a.label,
                a.username,
                a.domain,
                a.server or "(no registration)",
                getattr(a.transport, "value", a.transport),
                a.password.value,
            )
            for a in diag.accounts
        ]
        table = format_table(
            ["id", "label", "user", "domain", "server", "transport", "password"], rows, right={0}
        )
        out += ["  " + line for line in table.splitlines()]
    if diag.hooks:
        out += ["", "Hooks (cmd* keys in [Settings])"]
        hook_rows = [(h.key, h.state.value, h.reason) for h in diag.hooks]
        table = format_table(["key", "state", "detail"], hook_rows, max_width=70)
        out += ["  " + line for line in table.splitlines()]
    out.append("")
    if diag.contacts is not None:
        shown = len(diag.contacts.loaded_by_microsip())
        out.append(f"Contacts   {len(diag.contacts.contacts)} ({shown} shown by MicroSIP)")
    if diag.history is not None:
        entries = diag.history.entries
        span = ""
        if entries:
            first = entries[0].started_at.strftime("%Y-%m-%d")
            last = entries[-1].started_at.strftime("%Y-%m-%d")
            span = f", {first} .. {last} (UTC)"
        out.append(f"History    {len(entries)} calls{span}")
    out += ["", "Problems" if diag.findings else "No problems found."]
    for f in diag.findings:
        out.append(f"  {f.level.value:<8}{f.message}")
        if f.fix:
            out.append(f"  {'':<8}fix: {f.fix}")
    return "\n".join(out)
