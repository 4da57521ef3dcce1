"""Spreadsheet-safe CSV cells: nothing a spreadsheet would run, nothing else changed."""

from __future__ import annotations

import csv
import io

from hypothesis import given
from hypothesis import strategies as st

from microsip_bridge.csvsafe import FORMULA_STARTS, is_formula_like, neutralise, neutralise_row

# Text built to start with a formula character half the time.
cells = st.one_of(
    st.text(),
    st.builds(lambda head, tail: head + tail, st.sampled_from(FORMULA_STARTS), st.text()),
)


@given(cells)
def test_no_cell_starts_like_a_formula_and_the_value_is_kept(value: str) -> None:
    safe = neutralise(value)
    assert not safe.startswith(FORMULA_STARTS)
    if is_formula_like(value):
        assert safe == "'" + value
    else:
        assert safe == value
    assert neutralise(safe) == safe  # idempotent: a second pass adds no second quote


@given(st.lists(cells, max_size=8))
def test_rows_survive_a_csv_round_trip_defused(row: list[str]) -> None:
    out = io.StringIO()
    csv.writer(out).writerow(neutralise_row(row))
    [back] = list(csv.reader(io.StringIO(out.getvalue(), newline="")))
    assert back == [neutralise(v) for v in row]
    assert not any(cell.startswith(FORMULA_STARTS) for cell in back)


def test_owasp_examples() -> None:
    assert neutralise('=HYPERLINK("http://evil.example/","click")') == (
        '\'=HYPERLINK("http://evil.example/","click")'
    )
    assert neutralise("@SUM(1+1)*cmd|' /C calc'!A0") == "'@SUM(1+1)*cmd|' /C calc'!A0"
    assert neutralise("+44 20 7946 0000") == "'+44 20 7946 0000"
    assert neutralise("\t=1") == "'\t=1"
    assert neutralise("Jane Doe") == "Jane Doe"
    assert neutralise("") == ""
