"""Smoke test: the latency benchmark runs in quick mode and reports p50 and p99."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench" / "latency.py"


def load_bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_latency", BENCH)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_quick_mode_reports_percentiles(capsys: pytest.CaptureFixture[str]) -> None:
    assert load_bench().main(["--quick"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("10 hooks spawned one at a time, daemon up")
    for label in ("spawn -> stored", "fired -> recorded"):
        match = re.search(rf"{label}\s+p50\s+([\d.]+) ms\s+p99\s+([\d.]+) ms", out)
        assert match is not None, label
        assert 0 < float(match.group(1)) <= float(match.group(2))


@pytest.mark.parametrize(
    ("values", "p", "expected"),
    [
        ([1.0, 2.0, 3.0, 4.0], 50, 2.0),
        ([5.0, 1.0, 3.0], 99, 5.0),
        ([float(n) for n in range(1, 201)], 99, 198.0),
    ],
)
def test_percentile_is_nearest_rank(values: list[float], p: int, expected: float) -> None:
    assert load_bench().percentile(values, p) == expected
