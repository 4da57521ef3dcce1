"""Smoke test: the hook benchmark runs in quick mode, with the daemon up and down."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench" / "hook.py"


def load_bench() -> ModuleType:
    # bench/ is not a package: load the script from its path.
    spec = importlib.util.spec_from_file_location("bench_hook", BENCH)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_quick_mode_prints_both_ratios_and_medians(capsys: pytest.CaptureFixture[str]) -> None:
    assert load_bench().main(["--quick"]) == 0
    out = capsys.readouterr().out
    assert "median of 3 runs each, interleaved; baseline python -I -c pass:" in out
    rows = re.findall(
        r"daemon (up|down)\s+(\w+)\s+([\d.]+) ms\s+([\d.]+)x\s+\(target <= ([\d.]+)x", out
    )
    assert {(state, form) for state, form, *_ in rows} >= {("up", "direct"), ("down", "direct")}
    for state, _, median, ratio, target in rows:
        assert float(median) > 0 and float(ratio) > 0
        assert float(target) == (1.5 if state == "up" else 2.0)


def test_the_benchmark_times_the_form_microsip_can_run() -> None:
    bench = load_bench()
    assert bench.DIRECT[1:] == ["-I", "-c__import__('microsip_bridge.hook').hook.main()"]
