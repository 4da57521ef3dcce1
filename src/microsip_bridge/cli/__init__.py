"""The command-line interface: thin Click commands over the library, heavy imports inside them."""

from __future__ import annotations

import os
import sys

import click

from microsip_bridge import __version__
from microsip_bridge.cli import (
    calls,
    config,
    contacts,
    directory,
    doctor,
    history,
    hooks,
    serve,
    sim,
)
from microsip_bridge.cli._common import State
from microsip_bridge.errors import BridgeError

PROG = "microsip-bridge"


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
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


for command in (
    doctor.doctor,
    history.history,
    contacts.contacts,
    hooks.hooks,
    directory.directory,
    config.config,
    sim.sim,
    serve.serve,
    calls.calls,
    calls.events,
):
    cli.add_command(command)


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
