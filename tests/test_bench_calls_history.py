"""Smoke test: the [Calls] benchmark runs in quick mode and measures a real full ring."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

from microsip_bridge.microsip.history import read_history
from microsip_bridge.microsip.inifile import IniDocument, IniEncoding

BENCH = Path(__file__).resolve().parents[1] / "bench" / "calls_history.py"


def load_bench() -> ModuleType:
    # bench/ is not a package: load the script from its path.
    spec = importlib.util.spec_from_file_location("bench_calls_history", BENCH)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_quick_mode_prints_the_medians(capsys: pytest.CaptureFixture[str]) -> None:
    assert load_bench().main(["--quick"]) == 0
    out = capsys.readouterr().out
    assert "median of 20 runs" in out
    timed = [line for line in out.splitlines() if line.endswith(" ms")]
    assert len(timed) == 4
    assert any(line.lstrip().startswith("from bytes") for line in timed)
    assert "target: from bytes under 10 ms:" in out


def test_the_benchmark_reads_a_full_wrapped_ring() -> None:
    bench = load_bench()
    doc = IniDocument.from_bytes(bench.full_ring_bytes())
    assert doc.encoding is IniEncoding.UTF16LE
    history = read_history(doc)
    assert history.problems == ()
    assert len(history.entries) == 1000 - len(bench.DELETED)
    assert history.next_key == bench.LAST_KEY + 1
    assert history.entries[0].key == bench.LAST_KEY + 2  # slot 500 (the oldest) is deleted
