"""Plain-text tables: aligned, fitted to the terminal, whole in a pipe, never torn apart."""

from __future__ import annotations

import io
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from microsip_bridge.tables import cut, display_width, format_table, terminal_width


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_columns_align_with_wide_characters() -> None:
    out = format_table(["name", "n"], [["山田", "1"], ["Bob", "22"]])
    lines = out.splitlines()
    assert lines[0] == "name  n"
    assert lines[2] == "山田  1"  # two wide characters take four columns
    assert lines[3] == "Bob   22"


def test_long_and_multiline_cells() -> None:
    out = format_table(["x"], [["a\nb"], ["y" * 50]], max_width=10, width=80)
    assert "a b" in out
    assert "yyyyyyyyy…" in out
    assert len(out.splitlines()) == 4


@given(st.text(), st.integers(min_value=1, max_value=40))
def test_cut_fits_and_keeps_a_prefix(text: str, limit: int) -> None:
    shown = cut(text, limit)
    assert display_width(shown) <= limit
    if display_width(text) <= limit:
        assert shown == text
    else:
        assert shown.endswith("…")
        assert text.startswith(shown[:-1])


@pytest.mark.parametrize("char", ["x", "é", "山"])
def test_cutting_a_huge_cell_is_linear(char: str) -> None:
    # Cutting used to drop one character per loop and measure the rest each time: 400,000
    # characters took 5.5 s. It now stops at the limit.
    started = time.perf_counter()
    out = format_table(["name", "n"], [(char * 400_000, "1")], max_width=32, width=80)
    assert time.perf_counter() - started < 1.0
    assert out.splitlines()[2].endswith("…  1")


def test_lines_fit_the_width_by_narrowing_the_widest_columns() -> None:
    rows = [("Ann", "1001", "a" * 60, "b" * 30), ("Bob", "1002", "short", "")]
    out = format_table(["name", "number", "email", "comment"], rows, width=50)
    assert all(display_width(line) <= 50 for line in out.splitlines())
    assert "Ann   1001" in out  # narrow columns keep their width
    assert "a" * 10 + "…" in out and "b" * 10 + "…" in out


def test_headers_are_never_cut_even_when_nothing_fits() -> None:
    out = format_table(["name", "number"], [("Ann" * 10, "1" * 20)], width=5)
    assert out.splitlines()[0] == "name  number"


def test_piped_output_keeps_every_value_whole() -> None:
    # Under pytest standard output is not a terminal, as in `contacts list | grep`.
    assert terminal_width() is None
    out = format_table(["name"], [("z" * 500,)], max_width=32)
    assert "z" * 500 in out


def test_terminal_width_is_columns_or_the_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    assert terminal_width(io.StringIO()) is None
    monkeypatch.setenv("COLUMNS", "57")
    assert terminal_width(FakeTerminal()) == 57
    monkeypatch.setattr("sys.stdout", FakeTerminal())
    out = format_table(["name"], [("z" * 500,)])
    assert max(display_width(line) for line in out.splitlines()) == 57
