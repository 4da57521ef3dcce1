"""What users read states MicroSIP's behaviour itself, never a section of our internal notes."""

from __future__ import annotations

import ast
from pathlib import Path

import click

from microsip_bridge.cli import cli

SRC = Path(__file__).resolve().parents[1] / "src" / "microsip_bridge"
PENDING: set[str] = set()  # files whose user-facing strings still cite the facts document


def texts(command: click.Command) -> list[str]:
    out = [command.help or "", command.short_help or "", command.epilog or ""]
    out += [getattr(param, "help", None) or "" for param in command.params]
    if isinstance(command, click.Group):
        ctx = click.Context(command)  # the main group imports its commands when asked for them
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            assert sub is not None, name
            out += texts(sub)
    return out


def test_help_texts_cite_no_sections() -> None:
    assert [text for text in texts(cli) if "§" in text] == []


def test_messages_cite_no_sections() -> None:
    # Every string that is not a docstring may reach a user: an error, a finding, a help text.
    found = []
    for path in sorted(SRC.rglob("*.py")):
        if path.relative_to(SRC).as_posix() in PENDING:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docstrings = {
            id(node.body[0].value)
            for node in ast.walk(tree)
            if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
            and node.body
            and isinstance(node.body[0], ast.Expr)
            and isinstance(node.body[0].value, ast.Constant)
        }
        found += [
            f"{path.relative_to(SRC)}:{node.lineno}"
            for node in ast.walk(tree)
            if isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and "§" in node.value
            and id(node) not in docstrings
        ]
    assert found == []
