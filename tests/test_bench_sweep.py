"""Smoke test: the sweep benchmark runs in quick mode and prints the writer's time per sweep,
the events' latencies and its verdict."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

import pytest

from microsip_bridge.microsip.history import read_history
from microsip_bridge.microsip.inifile import IniDocument
from microsip_bridge.store import repo
from microsip_bridge.store.engine import make_engine

BENCH = Path(__file__).resolve().parents[1] / "bench" / "sweep.py"


def load_bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_sweep", BENCH)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_quick_mode_prints_every_figure(capsys: pytest.CaptureFixture[str]) -> None:
    assert load_bench().main(["--quick", "--seconds", "0.5"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("call log: 5,000 calls")
    for label in ("first after a restart", "periodic, nothing new", "periodic, 10 new entries"):
        assert re.search(rf"^  {label}\s+[\d.]+ ms", out, re.M), label
    for label in ("sweep every 0.2 s", "no periodic sweep"):
        assert re.search(rf"^  {label}\s+\d+ events\s+p50\s+[\d.]+ ms\s+p99", out, re.M), label
    assert re.search(r"^target: .*: (met|MISSED) \([\d.]+ ms, \d+ late\)$", out, re.M)


def test_the_ring_holds_the_newest_calls_of_the_log(tmp_path: Path) -> None:
    bench = load_bench()
    builder = bench._calls_query()
    newest = 1_764_000_000.0
    builder.build_store(tmp_path, 1200, now=newest)
    ini = tmp_path / "microsip.ini"
    bench.write_ring(ini, 1200, newest, builder)
    entries = read_history(IniDocument.load(ini)).entries
    assert len(entries) == 1000
    engine = make_engine(None, tmp_path)
    try:
        with engine.connect() as conn:
            seen = repo.history_entries_seen(conn, [(e.key, e.time) for e in entries])
    finally:
        engine.dispose()
    assert seen == {(e.key, e.time) for e in entries}  # every entry already in the log
    assert entries[-1].time == int(newest)
