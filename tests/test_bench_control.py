"""Smoke test: the control benchmark runs in quick mode, every dial's id is its call's, and it
reports p50 and p99 for the dial and its baseline."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench" / "control.py"


def load_bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_control", BENCH)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_quick_mode_reports_percentiles(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MICROSIP_BRIDGE_HOME", "")  # main() sets it for its hooks; undone here
    assert load_bench().main(["--quick"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("5 dials through the daemon's API to the simulator")
    for label in ("dial -> call id", "hold \\(baseline\\)"):
        match = re.search(rf"{label}\s+p50\s+([\d.]+) ms\s+p99\s+([\d.]+) ms", out)
        assert match is not None, label
        assert 0 < float(match.group(1)) <= float(match.group(2))
