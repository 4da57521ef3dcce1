"""The command-line interface: thin Click commands over the library, each imported when run.

The group knows its commands from :data:`COMMANDS` alone, so ``--help`` lists them without
importing one, and ``microsip-bridge X`` imports only X's module. To add a command, write it in a
module of its own under ``cli/`` and add one row: ``"name": ("microsip_bridge.cli.module:attribute",
"its help's first sentence")`` (a test checks the sentence against the command's own help).
"""

from __future__ import annotations

import importlib
import os
import sys

import click

from microsip_bridge import __version__
from microsip_bridge.cli._common import State
from microsip_bridge.errors import BridgeError

PROG = "microsip-bridge"

# name -> ("module:attribute", the first sentence of the command's help).
COMMANDS: dict[str, tuple[str, str]] = {
    "purge": (
        "microsip_bridge.cli.privacy:purge",
        (
            "Delete calls, their events and webhook deliveries: those that ended before "
            "--older-than, or one person's (--number)."
        ),
    ),
    "doctor": (
        "microsip_bridge.cli.doctor:doctor",
        (
            "Check a MicroSIP set-up: its folder and version, the ini's encoding, accounts "
            "(never their passwords), hooks, contacts and call history, then list problems "
            "with their fixes."
        ),
    ),
    "history": (
        "microsip_bridge.cli.history:history",
        "List MicroSIP's call history, oldest first, as MicroSIP stores it in microsip.ini.",
    ),
    "contacts": (
        "microsip_bridge.cli.contacts:contacts",
        "MicroSIP's contacts (Contacts.xml): list, export to other formats, import and merge.",
    ),
    "names": (
        "microsip_bridge.cli.names:names",
        "Caller names: the bridge's own contacts (imported CSV or vCard files) and lookups.",
    ),
    "hooks": (
        "microsip_bridge.cli.hooks:hooks",
        "Install, check and remove the hooks through which MicroSIP reports call events.",
    ),
    "config": (
        "microsip_bridge.cli.config:config",
        "Show the bridge's settings (config.toml in the bridge's home).",
    ),
    "sim": (
        "microsip_bridge.cli.sim:sim",
        (
            "Run a simulated MicroSIP on FOLDER: it fires the cmd* hooks and writes [Calls] as "
            "MicroSIP does, and reports how long each hook blocked it."
        ),
    ),
    "serve": (
        "microsip_bridge.cli.serve:serve",
        "Run the daemon: receive MicroSIP's call events from the hook, keep the call log.",
    ),
    "calls": (
        "microsip_bridge.cli.calls:calls",
        (
            "List the calls the daemon has recorded, oldest first: the newest 50 unless --limit or "
            "--all says otherwise (a note on stderr says when older ones were left out)."
        ),
    ),
    "rules": (
        "microsip_bridge.cli.rules:rules",
        "Check config.toml's screen-pop rules and show what they would do for a call.",
    ),
    "events": (
        "microsip_bridge.cli.calls:events",
        "Print the event log: every hook event the daemon stored, oldest first, with its cursor.",
    ),
    "dial": (
        "microsip_bridge.cli.control:dial",
        "Call NUMBER (a number, user@host, or a sip:/tel: URI; ',' adds post-dial DTMF).",
    ),
    "answer": (
        "microsip_bridge.cli.control:answer",
        "Answer the first incoming call that is still ringing.",
    ),
    "hangup": (
        "microsip_bridge.cli.control:hangup",
        "Hang up calls: by default every call except incoming ones still ringing.",
    ),
    "dtmf": (
        "microsip_bridge.cli.control:dtmf",
        "Send DTMF DIGITS (0-9 * # A-D) on the selected call.",
    ),
    "transfer": (
        "microsip_bridge.cli.control:transfer",
        "Blind-transfer the selected call to NUMBER.",
    ),
    "hold": (
        "microsip_bridge.cli.control:hold",
        "Toggle hold on the selected call (MicroSIP has no separate resume).",
    ),
    "mute": (
        "microsip_bridge.cli.control:mute",
        "Mute the microphone (or the speaker).",
    ),
    "unmute": (
        "microsip_bridge.cli.control:unmute",
        "Unmute the microphone (or the speaker).",
    ),
    "message": (
        "microsip_bridge.cli.control:message",
        "Send TEXT to NUMBER as a SIP instant message.",
    ),
    "account": (
        "microsip_bridge.cli.control:account",
        "Make [AccountINDEX] the active account (MicroSIP saves it and re-registers; 3.20+).",
    ),
    "open": (
        "microsip_bridge.cli.open:open_dashboard",
        "Open the dashboard in your browser, logged in.",
    ),
    "directory": (
        "microsip_bridge.cli.directory:directory",
        "Serve MicroSIP its contacts, with presence lamps from the calls the daemon sees.",
    ),
    "webhooks": (
        "microsip_bridge.cli.webhooks:webhooks",
        "The webhook targets of config.toml and their messages: list, retry, replay, test.",
    ),
}


def load_command(name: str) -> click.Command:
    """Import the command ``name`` of :data:`COMMANDS`."""
    module, _, attribute = COMMANDS[name][0].partition(":")
    command = getattr(importlib.import_module(module), attribute)
    if not isinstance(command, click.Command):
        raise TypeError(f"{COMMANDS[name][0]} is not a click command")
    return command


class LazyGroup(click.Group):
    """A group whose commands are imported when one is run (or its help shown), not before:
    Click's documented lazy-loading pattern, with the listing's help taken from the table."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*COMMANDS, *super().list_commands(ctx)})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in COMMANDS and cmd_name not in self.commands:
            self.add_command(load_command(cmd_name), cmd_name)
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # What click.Group prints, from a stand-in with the table's sentence: nothing imported.
        names = self.list_commands(ctx)
        if not names:
            return
        limit = formatter.width - 6 - max(len(name) for name in names)
        rows = []
        for name in names:
            command = self.commands.get(name) or click.Command(name, help=COMMANDS[name][1])
            if not command.hidden:
                rows.append((name, command.get_short_help_str(limit)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(
    cls=LazyGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(__version__, prog_name=PROG)
@click.option(
    "--debug", is_flag=True, help="Show the traceback of an error (also allowed after a command)."
)
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """microsip-bridge: the automation API that MicroSIP lacks.

    Reads and writes MicroSIP's own files (microsip.ini, its call history, Contacts.xml) exactly
    as MicroSIP does, and installs the hooks through which MicroSIP reports call events.

    Every command finds MicroSIP's files by itself (on Windows), or takes --microsip (its exe or
    folder), --ini and --contacts, or the MICROSIP_INI environment variable.
    """
    ctx.ensure_object(State).debug |= debug


def main(argv: list[str] | None = None) -> None:
    """Run the CLI: errors become one line on stderr and a non-zero exit, never a traceback
    (unless ``--debug`` or ``MICROSIP_BRIDGE_DEBUG=1``)."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = os.environ.get("MICROSIP_BRIDGE_DEBUG", "") not in ("", "0")
    if "--debug" in args:  # accepted anywhere, so `history --debug` works as users type it
        args = [a for a in args if a != "--debug"]
        debug = True
    state = State(debug=debug)
    try:
        result = cli.main(args=args, prog_name=PROG, standalone_mode=False, obj=state)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(1)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except BridgeError as exc:
        if debug:
            import traceback

            traceback.print_exc()
        click.echo(f"{PROG}: error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
    except BrokenPipeError:
        # `microsip-bridge history | head`: the reader left; that is not our error.
        sys.stderr.close()
        sys.exit(0)
    except Exception as exc:
        if debug:
            import traceback

            traceback.print_exc()
        click.echo(
            f"{PROG}: internal error: {type(exc).__name__}: {exc} (run with --debug for the "
            "traceback, and please report it)",
            err=True,
        )
        sys.exit(70)
    sys.exit(result if isinstance(result, int) else 0)
