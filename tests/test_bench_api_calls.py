"""Smoke test: the GET /calls load benchmark runs small and prints its figures and verdict."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

import pytest

from microsip_bridge.store.engine import make_engine
from microsip_bridge.store.query import CallFilter, call_listing

BENCH = Path(__file__).resolve().parents[1] / "bench" / "api_calls.py"


def load_bench() -> ModuleType:
    # bench/ is not a package: load the script from its path.
    spec = importlib.util.spec_from_file_location("bench_api_calls", BENCH)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_small_run_prints_every_figure(capsys: pytest.CaptureFixture[str]) -> None:
    assert load_bench().main(["--calls", "300", "--seconds", "1", "--rate", "40"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("call log: 300 calls, built in ")
    assert re.search(
        r"^load: GET /api/v1/calls\?limit=50 at 40 req/s for 1 s over 16 connections: "
        r"40 requests, \d+ req/s achieved, 0 errors$",
        out,
        re.M,
    )
    assert re.search(
        r"^latency: p50 [\d.]+ ms  p90 [\d.]+ ms  p99 [\d.]+ ms  max [\d.]+ ms$", out, re.M
    )
    assert re.search(r"^target: p99 under 50 ms: (met|MISSED) \([\d.]+ ms\)$", out, re.M)


def test_the_log_it_builds_is_what_it_says(tmp_path: Path) -> None:
    bench = load_bench()
    bench.build_store(tmp_path, 45, now=1_764_000_000.0)
    engine = make_engine(None, tmp_path)
    try:
        with engine.connect() as conn:
            calls = call_listing(conn, CallFilter(), limit=100)
    finally:
        engine.dispose()
    assert len(calls) == 45
    assert calls[0]["started_at"] == 1_764_000_000.0
    assert calls[0]["started_at"] - calls[-1]["started_at"] == 44 * bench.SPACING


def test_percentiles_are_nearest_rank() -> None:
    bench = load_bench()
    values = [float(v) for v in range(1, 101)]
    assert bench.percentile(values, 0.99) == 99.0
    assert bench.percentile(values, 0.5) == 50.0
    assert bench.percentile([7.0], 0.99) == 7.0


def test_bad_arguments_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    bench = load_bench()
    for args in (["--calls", "0"], ["--seconds", "0"], ["--limit", "1001"]):
        with pytest.raises(SystemExit) as exited:
            bench.main(args)
        assert exited.value.code == 2
