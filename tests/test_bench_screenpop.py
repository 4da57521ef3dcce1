"""Smoke test: the screen-pop benchmark runs in quick mode and prints both medians and the ratio."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench" / "screenpop.py"


def load_bench() -> ModuleType:
    # bench/ is not a package: load the script from its path.
    spec = importlib.util.spec_from_file_location("bench_screenpop", BENCH)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_quick_mode_prints_medians_and_the_ratio(capsys: pytest.CaptureFixture[str]) -> None:
    assert load_bench().main(["--quick"]) == 0
    out = capsys.readouterr().out
    assert "screen-pop: median of 3 runs" in out
    stored = re.search(r"hook spawn -> event stored\s+([\d.]+) ms", out)
    popped = re.search(r"hook spawn -> browser opened\s+([\d.]+) ms\s+([\d.]+)x", out)
    assert stored and popped
    # Both are measured (the browser may start before the hook's process has fully exited).
    assert float(popped.group(1)) > 0 and float(stored.group(1)) > 0
    assert float(popped.group(2)) == pytest.approx(
        float(popped.group(1)) / float(stored.group(1)), abs=0.01
    )
