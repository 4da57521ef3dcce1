"""Smoke test: the purge benchmark runs in quick mode and prints its rates, batch times, ratio
and verdict."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench" / "purge.py"


def load_bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_purge", BENCH)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_quick_mode_prints_every_figure(capsys: pytest.CaptureFixture[str]) -> None:
    assert load_bench().main(["--quick", "--calls", "600"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("purge by age, SQLite: 600 calls (5 rows each) against 60, 1 run(s)")
    for size in ("60", "600"):
        assert re.search(
            rf"^\s+{size} calls\s+[\d,]+ rows/s\s+batch p99 [\d.]+ ms\s+max [\d.]+ ms$", out, re.M
        ), size
    assert re.search(r"^ratio 600 / 60 calls: [\d.]+ \(1\.00: linear\)$", out, re.M)
    assert re.search(r"^target: a batch under 100 ms: (met|MISSED) \([\d.]+ ms\)$", out, re.M)


def test_every_call_is_purged_or_the_bench_fails(tmp_path: Path) -> None:
    took, rows, steps = load_bench().purge_once(120, tmp_path)
    assert rows == 120 * 5  # calls, 3 events each, one delivery each
    assert took > 0 and len(steps) >= 2
