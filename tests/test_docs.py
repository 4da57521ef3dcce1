"""The README stays true: every command, option group and setting is documented there."""

from __future__ import annotations

from pathlib import Path

import click

from microsip_bridge.cli import cli
from microsip_bridge.config import SETTINGS

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")


def walk(group: click.Group, prefix: str = "microsip-bridge") -> list[tuple[str, click.Command]]:
    out: list[tuple[str, click.Command]] = []
    ctx = click.Context(group)  # the main group imports its commands when asked for them
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None, name
        path = f"{prefix} {name}"
        if isinstance(command, click.Group):
            out += walk(command, path)
        else:
            out.append((path, command))
    return out


def test_every_command_is_in_the_readme_and_has_help() -> None:
    headings = [line for line in README.splitlines() if line.startswith("### `microsip-bridge")]
    commands = walk(cli)
    assert len(commands) >= 9
    for path, command in commands:
        group, leaf = path.rsplit(" ", 1)
        documented = any(
            h.startswith(f"### `{path}`")
            or (h.startswith(f"### `{group} ") and leaf in h.split("`")[1].split())
            for h in headings
        )
        assert documented, f"{path} has no section in the README"
        assert f"\n{path}" in README, f"the README shows no example of {path}"
        assert command.help and len(command.help) > 20, path
        assert "Example" in command.help, f"{path} --help has no example"


def test_every_setting_is_in_the_readme() -> None:
    for setting in SETTINGS:
        assert f"| `{setting.name}` |" in README, setting.name
        assert setting.help in README, setting.name


def test_the_quick_start_commands_are_what_dev_py_offers() -> None:
    assert "python3 dev.py demo" in README
    assert "python3 dev.py test" in README
    dev = (Path(__file__).resolve().parents[1] / "dev.py").read_text(encoding="utf-8")
    assert '"demo": demo' in dev
    assert '"test": test' in dev
