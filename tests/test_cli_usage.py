"""What users are told: a bad option value is a usage error (exit 2) before anything runs, and
help texts and error messages state facts instead of citing sections of our notes."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from microsip_bridge.cli import cli
from microsip_bridge.server.lifecycle import release_stop_signals
from tests.cli_support import run

SRC = Path(__file__).resolve().parents[1] / "src" / "microsip_bridge"
# The modules whose every user-facing literal was checked, not only those in raise statements:
# messages are also built in helpers and returned (commands.py's *_problem functions).
MESSAGE_MODULES = (
    "server/*.py",
    "sim/*.py",
    "microsip/*.py",
    "hook.py",
    "cli/history.py",
    "cli/hooks.py",
    "cli/sim.py",
    "cli/serve.py",
    "cli/config.py",
)


@pytest.fixture(autouse=True)
def _signals_given_back() -> Iterator[None]:
    # main() catches the stop signals for `serve` before its options are parsed.
    yield
    release_stop_signals()


# --- bad option values -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["sim", "--call", "bogus"], "expected incoming:NUMBER"),
        (["sim", "--call", "incoming:555:explode"], "then must be one of"),
        (["sim", "--call", "incoming:555:answer:99999999999999999999999"], "at most 86400"),
        (["sim", "--call", "incoming:555:answer:nan"], "zero or more seconds"),
        (["sim", "--call", "command:/reset"], "delete its settings"),
        (["sim", "-c", "/reset"], "delete its settings"),
        (["sim", "-c", "5551234\x07"], "control character"),
        (["sim", "--sim-version", "abc"], "not a MicroSIP version"),
        (["sim", "--create", "--domain", ""], "needs a domain"),
        (["sim", "--create", "--domain", "a\nb"], "line break"),
        (["sim", "--speed", "nan"], "not a number"),
        (["sim", "--hook-timeout", "nan"], "not a number"),
        (["sim", "--port", "99999999999999999999"], "not in the range"),
        (["history", "--since", "99999999d"], "before year 1"),
        (["history", "--since", "9" * 40 + "w"], "before year 1"),
        (["history", "--since", "yesterday"], "not a date"),
        (["history", "--limit", str(2**70)], "more than a count can be"),
        (["history", "--limit", "0"], "not in the range"),
        (["history", "--format", "json", "--raw"], "--raw goes with --format csv"),
        (["hooks", "install", "--program", "/opt/hooks/hook.bat"], "command-injection"),
        (["hooks", "install", "--program", "/bin/sh"], "shell"),
        (["hooks", "install", "--program", "hook"], "absolute path"),
        (["hooks", "install", "--program", "/" + "x" * 300], "characters"),
        (["serve", "--database", "nonsense"], "not a database URL"),
        (["serve", "--database", "mysql://db.example/calls"], "unsupported database"),
        (["serve", "--port", "70000"], "not in the range"),
        (["config", "show", "--format", "yaml"], "is not one of"),
    ],
)
def test_a_bad_option_value_is_a_usage_error_before_anything_runs(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, args: list[str], said: str
) -> None:
    # The folder and the ini do not exist: had the command started, it would exit 4.
    words = next(i for i, arg in enumerate(args) if arg.startswith("-"))
    place = {
        "sim": [str(tmp_path / "none")],
        "history": ["--ini", str(tmp_path / "none.ini")],
        "hooks": ["--ini", str(tmp_path / "none.ini")],
    }.get(args[0], [])
    code, out, err = run(capsys, *args[:words], *place, *args[words:])
    assert code == 2, err
    assert out == ""
    assert said in err
    assert "Traceback" not in err
    assert not (tmp_path / "none").exists()


# --- facts, not sections -----------------------------------------------------------------------


def commands(group: click.Group, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    yield path
    ctx = click.Context(group)  # the main group imports its commands when asked for them
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        if isinstance(command, click.Group):
            yield from commands(command, (*path, name))
        else:
            yield (*path, name)


@pytest.mark.parametrize("path", list(commands(cli)), ids=lambda p: " ".join(p) or "main")
def test_help_states_facts_without_citing_sections(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(cli, [*path, "--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output
    assert "§" not in result.output
    assert "facts" not in result.output.lower()


def string_literals(node: ast.AST) -> Iterator[str]:
    for sub in ast.walk(node):
        if isinstance(sub, ast.Constant) and isinstance(sub.value, str):
            yield sub.value


def docstrings(tree: ast.Module) -> set[int]:
    """The ids of the docstring nodes: for developers, they may cite our notes."""
    found: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
    return found


def test_no_error_raised_in_src_cites_a_section() -> None:
    cited: list[str] = []
    for path in sorted(SRC.rglob("*.py")):
        tree = ast.parse(path.read_text("utf-8"), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Raise) and node.exc is not None:
                cited += [
                    f"{path.relative_to(SRC)}:{node.lineno}: {text!r}"
                    for text in string_literals(node.exc)
                    if "facts §" in text or "§" in text
                ]
    assert cited == []


def test_no_user_facing_text_of_these_modules_cites_a_section() -> None:
    cited: list[str] = []
    for pattern in MESSAGE_MODULES:
        for path in sorted(SRC.glob(pattern)):
            tree = ast.parse(path.read_text("utf-8"), str(path))
            skip = docstrings(tree)
            cited += [
                f"{path.relative_to(SRC)}:{node.lineno}: {node.value[:60]!r}"
                for node in ast.walk(tree)
                if isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and "§" in node.value
                and id(node) not in skip
            ]
    assert cited == []
