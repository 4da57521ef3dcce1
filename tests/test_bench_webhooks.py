"""Smoke test: the webhook benchmark runs in quick mode and prints its rates and verdict."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench" / "webhooks.py"


def load_bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_webhooks", BENCH)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_quick_mode_prints_every_figure(capsys: pytest.CaptureFixture[str]) -> None:
    assert load_bench().main(["--quick"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("outbox: 50 calls x 4 transitions = 200 messages, SQLite")
    assert re.search(r"^  baseline: .*\s+\d+ /s \(median\)$", out, re.M)
    assert re.search(r"^  outbox worker: .*\s+\d+ /s \(median, [\d.]+x baseline\)$", out, re.M)
    assert re.search(r"^target: >= 500 deliveries/s on SQLite: (met|MISSED) \(\d+/s\)$", out, re.M)
