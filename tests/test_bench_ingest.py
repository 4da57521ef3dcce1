"""Smoke test: the ingest benchmark runs in quick mode through the daemon's ingest, stores every
event and call, and prints its rates."""

from __future__ import annotations

import importlib.util
import os
import re
from pathlib import Path
from types import ModuleType

import pytest
from sqlalchemy import func, select

from microsip_bridge.calls.ingest import Ingestor
from microsip_bridge.calls.state import CallTracker
from microsip_bridge.store import repo
from microsip_bridge.store.engine import make_engine
from microsip_bridge.store.schema import events

BENCH = Path(__file__).resolve().parents[1] / "bench" / "ingest.py"
PG_URL = os.environ.get("MSB_TEST_PG_URL")


def load_bench() -> ModuleType:
    # bench/ is not a package: load the script from its path.
    spec = importlib.util.spec_from_file_location("bench_ingest", BENCH)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def rates(out: str) -> dict[str, int]:
    found = re.findall(r"^\s+(.+?)\s+([\d,]+) events/s$", out, flags=re.MULTILINE)
    return {name: int(value.replace(",", "")) for name, value in found}


def test_quick_mode_prints_the_medians(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MSB_TEST_PG_URL", raising=False)
    assert load_bench().main(["--quick"]) == 0
    out = capsys.readouterr().out
    assert "daemon ingest: 500 events per run, median of 3 runs" in out
    measured = rates(out)
    assert set(measured) == {
        "serial",
        "grouped (100 at once)",
        "floor: raw sqlite3, 1/commit",
        "floor: raw sqlite3, 100/commit",
    }
    assert all(value > 0 for value in measured.values())
    # The share of its floor, measured in the same run: what the machine's load moves least.
    share = re.search(r"^grouped ingest / its floor: (\d+\.\d\d) \(the same run\)$", out, re.M)
    assert share is not None
    expected = measured["grouped (100 at once)"] / measured["floor: raw sqlite3, 100/commit"]
    assert abs(float(share[1]) - expected) < 0.01 + expected * 0.001
    assert "postgresql: skipped" in out
    assert re.search(r">= 10,000 events/s grouped on SQLite .*: (met|MISSED) \(", out)


@pytest.mark.skipif(
    not PG_URL and os.environ.get("MSB_REQUIRE_PG") != "1",
    reason="set MSB_TEST_PG_URL to benchmark PostgreSQL",
)
def test_quick_mode_on_postgresql(capsys: pytest.CaptureFixture[str]) -> None:
    assert PG_URL, "MSB_REQUIRE_PG=1 but MSB_TEST_PG_URL is not set"
    assert (
        load_bench().main(["--quick", "--runs", "1", "--events", "200", "--pg", str(PG_URL)]) == 0
    )
    out = capsys.readouterr().out
    assert "postgresql (postgresql+psycopg://" in out
    # Two SQLite modes and the two floors, then the two PostgreSQL modes.
    assert len(re.findall(r" events/s$", out, flags=re.MULTILINE)) == 6


def test_both_feeders_store_every_event_once_through_the_ingestor(tmp_path: Path) -> None:
    bench = load_bench()
    recs = bench.make_events(250)
    assert len({r.uid for r in recs}) == 250
    for name, feed in (("serial", bench.serial), ("grouped", bench.grouped(100))):
        engine = make_engine(f"sqlite:///{tmp_path / name}.db")
        ingestor = Ingestor(engine, CallTracker())
        try:
            ingestor.start()
            feed(ingestor, recs)
            feed(ingestor, recs[:50])  # replayed: duplicates, not new rows
            ingestor.stop()
            with engine.connect() as conn:
                assert conn.execute(select(func.count()).select_from(events)).scalar() == 250
                stored = repo.events_after(conn, 0, limit=1000)
                calls = repo.list_calls(conn)
        finally:
            ingestor.stop()
            engine.dispose()
        assert [e.record for e in stored] == recs
        # Five events a call, each linked to it: the daemon's path, not the log alone.
        assert len(calls) == 50
        assert all(len(c.events) == 5 and c.outcome is not None for c in calls)
        assert {e.call_id for e in stored} == {c.call_id for c in calls}
