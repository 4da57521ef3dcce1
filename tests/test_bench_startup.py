"""Smoke test: the start-up benchmark times every case against `python -c pass`."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench" / "startup.py"


def load_bench() -> ModuleType:
    # bench/ is not a package: load the script from its path.
    spec = importlib.util.spec_from_file_location("bench_startup", BENCH)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_quick_mode_prints_a_median_and_ratio_per_case(capsys: pytest.CaptureFixture[str]) -> None:
    bench = load_bench()
    assert bench.main(["--quick"]) == 0
    out = capsys.readouterr().out
    assert "median of 3 runs each, interleaved; baseline python -c pass:" in out
    rows = {
        label.strip(): (float(ms), float(ratio))
        for label, ms, ratio in re.findall(r"^(.+?)\s+([\d.]+) ms\s+([\d.]+)x$", out, re.M)
    }
    assert set(rows) == set(bench.cases())
    assert {f"-m {label}" for label in bench.ARGS} <= set(rows)
    assert rows["python -c pass"][1] == 1.0
    # The CLI does more than an empty interpreter: a ratio under 1 means nothing ran.
    assert all(ratio > 1.0 for label, (_, ratio) in rows.items() if label != "python -c pass")


def test_a_failing_case_stops_the_benchmark_with_its_error() -> None:
    bench = load_bench()
    with pytest.raises(SystemExit, match="exited 2"):
        bench.run_once(
            [bench.sys.executable, "-m", "microsip_bridge", "no-such-command"],
            dict(bench.os.environ),
        )
