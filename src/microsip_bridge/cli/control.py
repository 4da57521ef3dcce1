"""`microsip-bridge dial`, `answer`, `hangup` and the other commands that remote-control MicroSIP.

Through the daemon when one runs (it serialises every client's commands, applies the cooldown
and gives dials a call id), else straight to MicroSIP. Exit codes: 0 MicroSIP took the command,
1 MicroSIP dropped it, 2 refused input, 3 MicroSIP is not running.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from microsip_bridge.cli._common import PATH, format_option, locate_files, state

F = TypeVar("F", bound=Callable[..., Any])

_FORMATS = ("text", "json")
_FORMAT_HELP = 'text: a dial\'s call id alone; json: {"call_id": ..., "command": ...}.'


def _options(func: F) -> F:
    """--microsip / --ini (where MicroSIP is, when no daemon runs) and --format."""
    func = format_option(_FORMATS, _FORMAT_HELP, default="text")(func)
    func = click.option(
        "--ini",
        "ini_path",
        type=click.Path(path_type=Path, dir_okay=False),
        help="microsip.ini of the MicroSIP to control, when no daemon runs.",
    )(func)
    return click.option(
        "--microsip",
        "microsip_path",
        type=PATH,
        help="MicroSIP's exe or folder, when no daemon runs (the daemon controls its own).",
    )(func)


def _run(
    verb: str,
    args: dict[str, Any],
    microsip_path: Path | None,
    ini_path: Path | None,
    fmt: str,
) -> None:
    from microsip_bridge.control.client import find_daemon, send_via_daemon
    from microsip_bridge.control.service import ControlService, build_command
    from microsip_bridge.control.transport import choose_transport
    from microsip_bridge.wire import bridge_home

    build_command(verb, args, None)  # refused input: exit 2 before looking for anyone
    daemon = find_daemon(bridge_home())
    result = send_via_daemon(daemon, verb, args) if daemon is not None else None
    if result is None:
        location = locate_files(microsip_path, ini_path, None)
        via = str(state().config["control_transport"])
        service = ControlService(
            lambda: choose_transport(location.ini, location.exe, via), ini=location.ini
        )
        result = service.send(verb, args)
        if verb == "dial":
            click.echo(
                "note: no daemon is running, so the command went straight to MicroSIP and the "
                "call has no id (start one with `microsip-bridge serve`)",
                err=True,
            )
    if fmt == "json":
        click.echo(json.dumps({"call_id": result.call_id, "command": result.command}))
    elif result.call_id is not None:
        click.echo(result.call_id)


@click.command()
@click.argument("number")
@click.option("--account", type=int, help="Make AccountN the active account first (3.20+).")
@_options
def dial(
    number: str, account: int | None, microsip_path: Path | None, ini_path: Path | None, fmt: str
) -> None:
    """Call NUMBER (a number, user@host, or a sip:/tel: URI; ',' adds post-dial DTMF).

    Through the daemon, prints the call's id, which the call log and the events carry.

    \b
    Example:
        microsip-bridge dial 5551234
        microsip-bridge dial "sip:1001@pbx.example.com" --account 2 --format json
    """
    _run("dial", {"number": number, "account": account}, microsip_path, ini_path, fmt)


@click.command()
@_options
def answer(microsip_path: Path | None, ini_path: Path | None, fmt: str) -> None:
    """Answer the first incoming call that is still ringing.

    \b
    Example:
        microsip-bridge answer
    """
    _run("answer", {}, microsip_path, ini_path, fmt)


@click.command()
@click.option(
    "--all",
    "which",
    flag_value="all",
    default=True,
    help="Every call except incoming ones still ringing (the default).",
)
@click.option("--incoming", "which", flag_value="incoming", help="Ringing incoming calls (3.22).")
@click.option("--calling", "which", flag_value="calling", help="Outgoing calls not answered yet.")
@_options
def hangup(which: str, microsip_path: Path | None, ini_path: Path | None, fmt: str) -> None:
    """Hang up calls: by default every call except incoming ones still ringing.

    \b
    Example:
        microsip-bridge hangup --calling
    """
    _run("hangup", {"which": which}, microsip_path, ini_path, fmt)


@click.command()
@click.argument("digits")
@_options
def dtmf(digits: str, microsip_path: Path | None, ini_path: Path | None, fmt: str) -> None:
    """Send DTMF DIGITS (0-9 * # A-D) on the selected call.

    \b
    Example:
        microsip-bridge dtmf 1234#
    """
    _run("dtmf", {"digits": digits}, microsip_path, ini_path, fmt)


@click.command()
@click.argument("number")
@_options
def transfer(number: str, microsip_path: Path | None, ini_path: Path | None, fmt: str) -> None:
    """Blind-transfer the selected call to NUMBER.

    \b
    Example:
        microsip-bridge transfer 200
    """
    _run("transfer", {"number": number}, microsip_path, ini_path, fmt)


@click.command()
@_options
def hold(microsip_path: Path | None, ini_path: Path | None, fmt: str) -> None:
    """Toggle hold on the selected call (MicroSIP has no separate resume).

    \b
    Example:
        microsip-bridge hold
    """
    _run("hold", {}, microsip_path, ini_path, fmt)


def _mute_command(muted: bool) -> click.Command:
    what = "Mute" if muted else "Unmute"

    @click.command("mute" if muted else "unmute")
    @click.option("--speaker", is_flag=True, help="The speaker instead of the microphone.")
    @_options
    def command(speaker: bool, microsip_path: Path | None, ini_path: Path | None, fmt: str) -> None:
        args = {"device": "speaker" if speaker else "mic", "muted": muted}
        _run("mute", args, microsip_path, ini_path, fmt)

    name = "mute" if muted else "unmute"
    command.help = (
        f"{what} the microphone (or the speaker). Needs MicroSIP 3.22: older versions can only "
        "toggle, without saying the state, so the bridge refuses rather than guess.\n\n"
        f"\b\nExample:\n    microsip-bridge {name} --speaker"
    )
    return command


mute = _mute_command(True)
unmute = _mute_command(False)


@click.command()
@click.argument("number")
@click.argument("text")
@_options
def message(
    number: str, text: str, microsip_path: Path | None, ini_path: Path | None, fmt: str
) -> None:
    """Send TEXT to NUMBER as a SIP instant message.

    \b
    Example:
        microsip-bridge message 1001 "on my way"
    """
    _run("message", {"number": number, "text": text}, microsip_path, ini_path, fmt)


@click.command()
@click.argument("index", type=int)
@_options
def account(index: int, microsip_path: Path | None, ini_path: Path | None, fmt: str) -> None:
    """Make [AccountINDEX] the active account (MicroSIP saves it and re-registers; 3.20+).

    \b
    Example:
        microsip-bridge account 2
    """
    _run("account", {"index": index}, microsip_path, ini_path, fmt)


COMMANDS = (dial, answer, hangup, dtmf, transfer, hold, mute, unmute, message, account)
