"""Smoke test: the scaling benchmark runs each reader at three sizes and prints its ratios."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench" / "scaling.py"


def load_bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_scaling", BENCH)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_quick_mode_measures_every_reader_at_three_sizes(
    capsys: pytest.CaptureFixture[str],
) -> None:
    bench = load_bench()
    assert bench.main(["--quick"]) == 0
    out = capsys.readouterr().out
    rows = [
        line.split()
        for line in out.splitlines()
        if line.split()[:1] in ([n] for n in bench.READERS)
    ]
    assert [r[0] for r in rows] == [name for name in bench.READERS for _ in range(3)]
    # the second and third size of each reader carry the ratio to the size before
    assert all(float(r[4]) > 0 for i, r in enumerate(rows) if i % 3)


def test_big_mode_reports_the_peak_of_reading_and_exporting(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    bench = load_bench()
    monkeypatch.setattr(bench, "BIG_CONTACTS", 300)  # the real run takes a 50 MB file
    assert bench.main(["--quick", "--only", "contacts-quotes", "--big"]) == 0
    out = capsys.readouterr().out
    assert "(300 contacts)" in out
    peaks = re.findall(r"peak +(\d+) MB +\((.*)\)", out)
    assert len(peaks) == len(bench.BIG_READERS)
    assert all(int(mb) > 0 for mb, _ in peaks)
    assert [verdict for _, verdict in peaks[:2]] == ["target under 250 MB: met"] * 2
