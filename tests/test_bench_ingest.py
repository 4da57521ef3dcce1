"""Smoke test: the ingest benchmark runs in quick mode, stores every event and prints its rates."""

from __future__ import annotations

import importlib.util
import os
import re
from pathlib import Path
from types import ModuleType

import pytest
from sqlalchemy import func, select

from microsip_bridge.store import repo
from microsip_bridge.store.engine import make_engine, upgrade
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
    assert "500 events per run, median of 3 runs" in out
    measured = rates(out)
    assert set(measured) == {
        "one commit per event",
        "batches of 100",
        "floor: raw sqlite3, 1/commit",
    }
    assert all(value > 0 for value in measured.values())
    assert "postgresql: skipped" in out
    assert re.search(r"one commit per event: (met|MISSED)", out)


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
    # Two SQLite modes and the floor, then the two PostgreSQL modes.
    assert len(re.findall(r" events/s$", out, flags=re.MULTILINE)) == 5


def test_both_recorders_store_every_event_once(tmp_path: Path) -> None:
    bench = load_bench()
    recs = bench.make_events(250)
    assert len({r.uid for r in recs}) == 250
    for name, record in (("single", bench.one_commit_per_event), ("batch", bench.batched(100))):
        engine = make_engine(f"sqlite:///{tmp_path / name}.db")
        try:
            upgrade(engine)
            record(engine, recs)
            record(engine, recs[:50])  # replayed: duplicates, not new rows
            with engine.connect() as conn:
                assert conn.execute(select(func.count()).select_from(events)).scalar() == 250
                stored = repo.events_after(conn, 0, limit=1000)
        finally:
            engine.dispose()
        assert [e.record for e in stored] == recs
