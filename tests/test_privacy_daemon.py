"""Privacy with a running daemon: masked logs after a call played through the simulator, purge
through the daemon (its tracker forgets), retention applied by the daemon, and a purge killed
midway with SIGKILL (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from microsip_bridge.microsip.hook_keys import SavedHooks, install_hooks
from microsip_bridge.microsip.inifile import IniDocument
from microsip_bridge.sim.folder import create_folder
from microsip_bridge.sim.scenario import parse_scenario, run_scenario
from microsip_bridge.sim.simulator import Simulator
from microsip_bridge.store.engine import make_engine, upgrade
from microsip_bridge.store.schema import calls, events
from tests.cli_support import run
from tests.daemon_support import hook_log, live_daemon, run_hook, stored_calls, wait_until
from tests.test_privacy import a_call, fill
from tests.test_store import T0, db, fresh, pg_admin  # noqa: F401 - fixtures

BIN = Path(sys.executable).parent
NUMBER = "02079460958"  # 11 digits: masked, only its last 3 show
MASKED = "xxxxxxxx958"
DAY = 86400.0


# -- masked logs after a simulated call -----------------------------------------------------------


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A simulated MicroSIP folder with our hook installed, as `hooks install` would."""
    sim = create_folder(tmp_path / "MicroSIP", domain="pbx.example.invalid")
    doc = IniDocument.load(sim.ini)
    install_hooks(doc, Path(sys.executable), SavedHooks(), flag="-I").commit()
    doc.save(backups=0)
    return sim.path


def serve(bridge_home: Path, folder: Path, config: str) -> subprocess.Popen[bytes]:
    (bridge_home / "config.toml").write_text(config)
    args = ["serve", "--port", "0", "--ini", str(folder / "microsip.ini")]
    with (bridge_home / "serve.log").open("wb") as out:
        proc = subprocess.Popen([str(BIN / "microsip-bridge"), *args], stdout=out, stderr=out)
    wait_until(lambda: (bridge_home / "daemon.json").exists(), 60, "the daemon to start")
    return proc


@pytest.mark.slow
@pytest.mark.parametrize("masked", [True, False])
def test_no_full_number_in_the_logs_after_a_call_unless_masking_is_off(
    bridge_home: Path, folder: Path, masked: bool
) -> None:
    config = "reject_timeout = 3\nsweep_interval = 1\n"
    if not masked:
        config += "mask_numbers = false\n"
    proc = serve(bridge_home, folder, config)
    try:
        assert json.loads((bridge_home / "daemon.json").read_text())["mask_numbers"] is masked
        scenario = {
            "steps": [{"at": 0.0, "incoming": NUMBER, "then": "answer", "after": 0.3, "talk": 0.5}]
        }
        with Simulator(folder, hook_timeout=10.0) as sim:
            run_scenario(sim, parse_scenario(scenario))
        wait_until(
            lambda: any(c.outcome is not None for c in stored_calls(bridge_home)),
            30,
            "the call to end",
        )
        # A hook line that holds the number: MicroSIP misconfigured to pass it as the event.
        assert run_hook(bridge_home, NUMBER).returncode == 2
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    daemon_log = (bridge_home / "logs" / "daemon.log").read_text()
    logs = daemon_log + (bridge_home / "serve.log").read_text() + hook_log(bridge_home)
    assert "ended: incoming" in daemon_log  # the line that names the caller was written
    if masked:
        assert NUMBER not in logs
        assert f"ended: incoming {MASKED}, answered" in daemon_log
        assert f"unknown event '{MASKED}'" in hook_log(bridge_home)
    else:
        assert f"ended: incoming {NUMBER}, answered" in daemon_log
        assert f"unknown event '{NUMBER}'" in hook_log(bridge_home)


def test_the_hook_masks_its_log_when_no_daemon_runs(bridge_home: Path) -> None:
    assert run_hook(bridge_home, "+44 20 7946 0958").returncode == 2
    assert "unknown event '+xx xx xxxx x958'" in hook_log(bridge_home)
    # A daemon.json that says "off" (written by a daemon with mask_numbers = false).
    (bridge_home / "daemon.json").write_text(
        '{"host": "127.0.0.1", "port": 9, "mask_numbers": false}'
    )
    assert run_hook(bridge_home, "+44 20 7946 0958").returncode == 2
    assert "unknown event '+44 20 7946 0958'" in hook_log(bridge_home)


# -- purge through the daemon ---------------------------------------------------------------------


@pytest.fixture
def daemon_api(bridge_home: Path) -> Iterator[httpx2.Client]:
    with live_daemon(bridge_home) as daemon:
        host, port = daemon.wait_listening()
        token = (bridge_home / "token").read_text().strip()
        with httpx2.Client(
            base_url=f"http://{host}:{port}",
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        ) as client:
            yield client


def play_call(home: Path, number: str) -> None:
    for event in ("incoming", "ring", "answer", "start", "end"):
        assert run_hook(home, event, number).returncode == 0


def test_purge_through_the_daemon_forgets_the_call(
    capsys: pytest.CaptureFixture[str], bridge_home: Path, daemon_api: httpx2.Client
) -> None:
    play_call(bridge_home, NUMBER)
    play_call(bridge_home, "5551234")
    wait_until(lambda: len(stored_calls(bridge_home)) == 2, 30, "both calls")
    gone = next(c.call_id for c in stored_calls(bridge_home) if c.number == NUMBER)
    code, out, err = run(capsys, "purge", "--number", NUMBER, "--no-history", "--dry-run")
    assert (code, err) == (0, "")
    assert out.startswith("would purge 1 calls, 5 events, 0 webhook deliveries;")
    assert len(stored_calls(bridge_home)) == 2
    code, out, err = run(capsys, "purge", "--number", NUMBER, "--no-history")
    assert (code, err) == (0, "")
    assert out.strip() == "purged 1 calls, 5 events, 0 webhook deliveries"
    assert [c.number for c in stored_calls(bridge_home)] == ["5551234"]
    # A late repeat of the end: a tracker that still held the call would save it again.
    assert run_hook(bridge_home, "end", NUMBER).returncode == 0
    time.sleep(0.5)
    assert gone not in {c.call_id for c in stored_calls(bridge_home)}


def test_the_purge_route_needs_the_token_and_a_plan(
    bridge_home: Path, daemon_api: httpx2.Client
) -> None:
    bare = httpx2.post(str(daemon_api.base_url).rstrip("/") + "/api/v1/purge", json={"before": 1.0})
    assert bare.status_code == 401
    answer = daemon_api.post("/api/v1/purge", json={})
    assert answer.status_code == 422
    assert answer.json() == {"detail": "a purge needs a cut-off time or a number"}
    answer = daemon_api.post("/api/v1/purge", json={"before": T0, "dry_run": True})
    assert answer.status_code == 200
    assert answer.json() == {
        "calls": 0,
        "events": 0,
        "webhooks": 0,
        "open_kept": 0,
        "dry_run": True,
    }


# -- retention ------------------------------------------------------------------------------------


def test_the_daemon_applies_retention_by_itself(bridge_home: Path) -> None:
    engine = make_engine(None, bridge_home)
    upgrade(engine)
    now = time.time()
    fill(engine, [a_call(1, "5550001", ended=now - 40 * DAY), a_call(2, "5550002", ended=now)])
    engine.dispose()
    with live_daemon(bridge_home, retention_days=30, retention_interval=0.2):
        wait_until(
            lambda: [c.call_id for c in stored_calls(bridge_home)] == ["call-0002"],
            30,
            "retention to purge the old call",
        )
    # retention_days = 0 (the default) purges nothing.
    fill_old = make_engine(None, bridge_home)
    fill(fill_old, [a_call(3, "5550003", ended=now - 400 * DAY)])
    fill_old.dispose()
    with live_daemon(bridge_home, retention_interval=0.2):
        time.sleep(1.0)
    assert {c.call_id for c in stored_calls(bridge_home)} == {"call-0002", "call-0003"}


# -- a purge killed midway ------------------------------------------------------------------------

PURGE_CODE = """
import sys, time
from microsip_bridge.store.engine import make_engine
from microsip_bridge.store.purge import Purge, PurgePlan
engine = make_engine(sys.argv[1])
def between(report):
    print(report.calls, flush=True)
    time.sleep(0.01)
Purge(PurgePlan(before=float(sys.argv[2])), batch=20).run(engine, between=between)
print("done", flush=True)
"""


def consistency(engine: Engine) -> tuple[int, int]:
    """(calls, events whose call is not stored)."""
    with engine.connect() as conn:
        count = int(conn.execute(select(func.count()).select_from(calls)).scalar_one())
        orphans = conn.execute(
            select(func.count())
            .select_from(events)
            .where(
                events.c.call_id.is_not(None),
                ~select(calls.c.call_id).where(calls.c.call_id == events.c.call_id).exists(),
            )
        ).scalar_one()
    return count, int(orphans)


def test_a_purge_killed_midway_leaves_the_store_consistent(db: Engine) -> None:  # noqa: F811
    fill(db, [a_call(n, f"555{n:04d}", ended=T0 - DAY - n) for n in range(600)])
    url = db.url.render_as_string(hide_password=False)
    proc = subprocess.Popen(
        [sys.executable, "-c", PURGE_CODE, url, str(T0)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None
    first = proc.stdout.readline()  # one batch committed: kill it in the middle of the rest
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    proc.stdout.close()
    assert proc.stderr is not None
    proc.stderr.close()
    assert int(first) == 20
    left, orphans = consistency(db)
    assert orphans == 0  # no event outlived its call
    assert 0 < left < 600 and left % 20 == 0  # whole batches, nothing half-deleted
    from microsip_bridge.store.purge import Purge, PurgePlan

    Purge(PurgePlan(before=T0)).run(db)  # the next run finishes the job
    assert consistency(db) == (0, 0)
