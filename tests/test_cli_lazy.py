"""The CLI's command table: `--help` lists every command without importing one, and a command
imports only its own module."""

from __future__ import annotations

import json
import subprocess
import sys

import click
import pytest

from microsip_bridge import cli as cli_module
from microsip_bridge.cli import COMMANDS, cli, load_command

# Prints which command modules (and heavy libraries) a run of the CLI imported.
PROBE = """
import json, sys
from microsip_bridge.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
print(json.dumps(sorted(m for m in sys.modules
      if m.startswith("microsip_bridge.cli.") or m in ("sqlalchemy", "fastapi", "uvicorn"))))
"""


def imported(*args: str) -> set[str]:
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, *args], capture_output=True, text=True, check=True
    )
    return set(json.loads(proc.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_each_row_names_its_command_and_its_first_sentence(name: str) -> None:
    command = load_command(name)
    assert command.name == name
    # What --help lists for the row is what Click would list for the command itself.
    stand_in = click.Command(name, help=COMMANDS[name][1])
    assert stand_in.get_short_help_str(10_000) == command.get_short_help_str(10_000)
    assert command.help is not None and command.help.startswith(COMMANDS[name][1][:40])


def test_help_lists_every_command_without_importing_one() -> None:
    assert imported("--help") == {"microsip_bridge.cli._common"}
    assert imported("--version") == {"microsip_bridge.cli._common"}


def test_a_command_imports_its_own_module_only() -> None:
    loaded = imported("calls", "--help")
    assert "microsip_bridge.cli.calls" in loaded
    assert not loaded & {"microsip_bridge.cli.sim", "microsip_bridge.cli.serve", "sqlalchemy"}
    assert "microsip_bridge.cli.contacts" in imported("contacts", "--help")
    assert "microsip_bridge.cli.calls" not in imported("contacts", "--help")


def test_the_listing_is_what_an_eager_group_prints() -> None:
    eager = click.Group("microsip-bridge", help=cli.help, params=cli.params)
    ctx = click.Context(cli)
    for name in COMMANDS:
        command = cli.get_command(ctx, name)
        assert command is not None
        eager.add_command(command, name)
    for width in (60, 100):
        lazy_help = cli.get_help(
            click.Context(cli, info_name="microsip-bridge", terminal_width=width)
        )
        eager_help = eager.get_help(
            click.Context(eager, info_name="microsip-bridge", terminal_width=width)
        )
        assert lazy_help.split("Commands:")[1] == eager_help.split("Commands:")[1]


def test_an_unknown_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli_module.main(["no-such-command"])
    assert exit_info.value.code == 2
    assert "No such command 'no-such-command'" in capsys.readouterr().err


def test_a_row_that_is_not_a_command_fails_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(COMMANDS, "broken", ("microsip_bridge.cli:PROG", "Not a command."))
    with pytest.raises(TypeError, match=r"microsip_bridge\.cli:PROG is not a click command"):
        load_command("broken")


# Prints the patterns our modules compiled while the CLI ran.
COMPILES = """
import re, sys
seen = []
compile_ = re.compile
def spy(pattern, flags=0):
    if sys._getframe(1).f_globals.get("__name__", "").startswith("microsip_bridge"):
        seen.append(pattern)
    return compile_(pattern, flags)
re.compile = spy
from microsip_bridge.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
print(repr(seen))
"""


@pytest.mark.parametrize(
    "args", [["--help"], ["calls", "--help"], ["events", "--help"], ["history", "--help"]]
)
def test_help_compiles_no_pattern(args: list[str]) -> None:
    # A module-level re.compile costs every start-up, even when the pattern is never used.
    proc = subprocess.run(
        [sys.executable, "-c", COMPILES, *args], capture_output=True, text=True, check=True
    )
    assert proc.stdout.strip().splitlines()[-1] == "[]"
