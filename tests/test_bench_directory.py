"""Smoke test: the directory benchmark runs in quick mode against a real daemon, with a baseline."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench" / "directory.py"


def test_quick_mode_prints_the_figures(capsys: pytest.CaptureFixture[str]) -> None:
    spec = importlib.util.spec_from_file_location("bench_directory", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--quick"]) == 0
    out = capsys.readouterr().out
    # 500 contacts, a tenth from a directory; every call the benchmark places lights a lamp
    assert "500 contacts (50 served as items)" in out
    assert "20 lit by 20 calls" in out
    assert re.search(r"directory\s+median\s+[\d.]+ ms\s+p99", out)
    assert re.search(r"baseline health median\s+[\d.]+ ms", out)
