"""Smoke test: the call log benchmark runs in quick mode and prints its figures and verdict."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

import pytest

from microsip_bridge.store import repo
from microsip_bridge.store.engine import make_engine

BENCH = Path(__file__).resolve().parents[1] / "bench" / "calls_query.py"


def load_bench() -> ModuleType:
    # bench/ is not a package: load the script from its path.
    spec = importlib.util.spec_from_file_location("bench_calls_query", BENCH)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_quick_mode_prints_every_figure(capsys: pytest.CaptureFixture[str]) -> None:
    assert load_bench().main(["--quick", "--runs", "1"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("call log: 2,000 calls over 1 days")
    for label in ("--help", "calls --limit 50"):
        assert re.search(rf"^  {re.escape(label)}\s+\d+ ms\s+[\d.]+x python -c pass$", out, re.M)
    for label in ("calls", "calls --since 30d", "calls --number 4567", "events --limit 50"):
        assert re.search(rf"^  {re.escape(label)}\s+\d+ ms$", out, re.M), label
    assert re.search(r"^  calls --all --format csv\s+[\d.]+ s\s+[\d,]+ calls/s", out, re.M)
    assert re.search(r"^target: calls --since 30d under 0.5 s: (met|MISSED) \(", out, re.M)


def test_the_log_it_builds_is_what_it_says(tmp_path: Path) -> None:
    bench = load_bench()
    bench.build_store(tmp_path, 45, now=1_764_000_000.0)
    engine = make_engine(None, tmp_path)
    try:
        with engine.connect() as conn:
            calls = repo.list_calls(conn)
    finally:
        engine.dispose()
    assert len(calls) == 45
    assert calls[0].started_at == 1_764_000_000.0
    assert calls[0].started_at - calls[-1].started_at == 44 * bench.SPACING
