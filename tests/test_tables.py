"""Plain-text tables: aligned, cut, and never torn by a line break."""

from __future__ import annotations

from microsip_bridge.tables import format_table


def test_columns_align_with_wide_characters() -> None:
    out = format_table(["name", "n"], [["山田", "1"], ["Bob", "22"]])
    lines = out.splitlines()
    assert lines[0] == "name  n"
    assert lines[2] == "山田  1"  # two wide characters take four columns
    assert lines[3] == "Bob   22"


def test_long_and_multiline_cells() -> None:
    out = format_table(["x"], [["a\nb"], ["y" * 50]], max_width=10)
    assert "a b" in out
    assert "yyyyyyyyy…" in out
    assert len(out.splitlines()) == 4
