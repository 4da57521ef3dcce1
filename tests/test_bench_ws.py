"""Smoke test: the WebSocket benchmark runs in quick mode and reports p50 and p99 for each part."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench" / "ws.py"


def load_bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_ws", BENCH)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_quick_mode_reports_percentiles(capsys: pytest.CaptureFixture[str]) -> None:
    assert load_bench().main(["--quick", "--clients", "20", "--fan-events", "3"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("10 hooks spawned one at a time, one WebSocket client")
    assert "3 hooks spawned one at a time, 20 WebSocket clients" in out
    found = {}
    for label in ("spawn -> stored", "spawn -> WebSocket", "spawn -> each client"):
        match = re.search(rf"{label}\s+p50\s+([\d.]+) ms\s+p99\s+([\d.]+) ms.*\(n=(\d+)\)", out)
        assert match is not None, label
        assert 0 < float(match.group(1)) <= float(match.group(2))
        found[label] = int(match.group(3))
    assert found == {"spawn -> stored": 10, "spawn -> WebSocket": 10, "spawn -> each client": 60}
    assert re.search(r"WebSocket - stored\s+p50\s+-?[\d.]+ ms\s+p99\s+-?[\d.]+ ms", out)
