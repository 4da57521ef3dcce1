"""What the commands share: the options that find MicroSIP's files, output, and writing guards."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from microsip_bridge.config import Config
    from microsip_bridge.microsip.locate import MicroSIPLocation

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class State:
    """Per-run state hung on the Click context."""

    debug: bool = False
    _config: Config | None = field(default=None, repr=False)

    @property
    def config(self) -> Config:
        if self._config is None:
            from microsip_bridge.config import load_config

            self._config = load_config()
        return self._config


def state() -> State:
    return click.get_current_context().ensure_object(State)


PATH = click.Path(path_type=Path, dir_okay=True)


def location_options(func: F) -> F:
    """--microsip / --ini / --contacts: where MicroSIP's files are (facts §3.1)."""
    func = click.option(
        "--contacts",
        "contacts_path",
        type=click.Path(path_type=Path, dir_okay=False),
        help="Contacts.xml to use (default: the one beside the ini).",
    )(func)
    func = click.option(
        "--ini",
        "ini_path",
        type=click.Path(path_type=Path, dir_okay=False),
        help="microsip.ini to use (beats --microsip, which beats the MICROSIP_INI environment "
        "variable, which beats the microsip setting).",
    )(func)
    return click.option(
        "--microsip",
        "microsip_path",
        type=PATH,
        help="MicroSIP's exe or folder; its ini is found the way MicroSIP finds it.",
    )(func)


def locate_files(
    microsip_path: Path | None, ini_path: Path | None, contacts_path: Path | None
) -> MicroSIPLocation:
    from microsip_bridge.microsip.locate import locate

    configured = state().config["microsip"]
    return locate(
        microsip=microsip_path, ini=ini_path, contacts=contacts_path, configured=configured or None
    )


def contacts_file(
    microsip_path: Path | None, ini_path: Path | None, contacts_path: Path | None
) -> Path:
    """The Contacts.xml a contacts command works on: ``--contacts`` alone needs no MicroSIP
    (a command needs only the files it reads or writes); otherwise the one MicroSIP uses."""
    if contacts_path is not None and microsip_path is None and ini_path is None:
        from microsip_bridge.microsip.locate import explicit_file

        return explicit_file(contacts_path, "Contacts.xml", "--contacts")
    return locate_files(microsip_path, ini_path, contacts_path).contacts


def force_option(func: F) -> F:
    return click.option(
        "--force",
        is_flag=True,
        help="Write even while MicroSIP runs (it may overwrite the change when it exits).",
    )(func)


def dry_run_option(func: F) -> F:
    return click.option("--dry-run", is_flag=True, help="Show what would change; write nothing.")(
        func
    )


def output_option(func: F) -> F:
    return click.option(
        "-o",
        "--output",
        type=click.Path(path_type=Path, dir_okay=False),
        help="Write to this file (atomically) instead of standard output.",
    )(func)


def format_option(choices: tuple[str, ...], help: str, default: str = "table") -> Callable[[F], F]:
    """--format, with the same spelling and default display in every command."""
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(choices),
        default=default,
        show_default=True,
        help=help,
    )


def emit(data: str | bytes, output: Path | None, *, max_bytes: int | None = None) -> None:
    """Print the result, or write it to ``output`` atomically (no half-written export).

    ``max_bytes``: the largest file the bridge would read back; a bigger export is refused
    before anything is written, rather than written for the next command to refuse."""
    if output is not None:
        from microsip_bridge.errors import NotFoundError
        from microsip_bridge.fileio import atomic_write

        if not output.parent.is_dir():
            raise NotFoundError("the folder for the output file does not exist", path=output)
        payload = _encoded(data) if isinstance(data, str) else data
        # An export is the user's file: permissions as the umask says, like any other tool's.
        atomic_write(output, payload, backups=0, public=True, max_bytes=max_bytes)
        click.echo(f"wrote {output}", err=True)
        return
    if isinstance(data, bytes):
        sys.stdout.flush()
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    else:
        for piece in _pieces(data):
            click.echo(piece, nl=False)
        if not data.endswith("\n"):
            click.echo()


_PIECE = 1 << 20  # characters: a large export is encoded a MiB at a time, never whole


def _pieces(text: str) -> Iterator[str]:
    for start in range(0, len(text), _PIECE):
        yield text[start : start + _PIECE]


def _encoded(text: str) -> Iterator[bytes]:
    for piece in _pieces(text):
        yield piece.encode("utf-8")


def microsip_running(ini: Path) -> bool | None:
    from microsip_bridge.microsip.process import microsip_running as running

    return running(ini)


def contacts_running(contacts: Path) -> bool | None:
    """Whether the MicroSIP that keeps its contacts in ``contacts`` runs: the one a write to
    that file would race, whether it was found through its ini or named by ``--contacts``."""
    from microsip_bridge.microsip.process import contacts_in_use

    return contacts_in_use(contacts)
