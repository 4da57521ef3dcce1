"""Webhook reliability end to end (issue 9 §7): 500 calls played through the simulator into a
real daemon process while the receiver refuses connections, answers 500 and hangs; the daemon
SIGKILLed mid-delivery and restarted; then every message has arrived, once by webhook-id, in
order within each call, signed. And two daemons sharing one PostgreSQL outbox."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine, make_url

from microsip_bridge import wire
from microsip_bridge.model import Call
from microsip_bridge.sim.clock import VirtualClock
from microsip_bridge.sim.folder import create_folder
from microsip_bridge.sim.records import FiredEvent
from microsip_bridge.sim.scenario import parse_scenario, run_scenario
from microsip_bridge.sim.simulator import Simulator
from microsip_bridge.store import outbox as store
from microsip_bridge.store import repo
from microsip_bridge.store.engine import make_engine, upgrade
from microsip_bridge.webhooks.payload import message_id
from tests.conftest import PG_ENV, PG_REQUIRED, PG_URL
from tests.daemon_support import hook_env, kill, stop, wait_for_daemon_file, wait_until
from tests.webhook_support import Receiver, closed_port, webhooks_toml

# A daemon as `serve` runs it, its settings from config.toml (serve's own options aside).
DAEMON_CODE = """
import sys
from pathlib import Path
from microsip_bridge.config import load_config
from microsip_bridge.server.runner import serve
from microsip_bridge.server.settings import DaemonSettings
home = Path(sys.argv[1])
settings = DaemonSettings.from_config(
    load_config(home / "config.toml"), home, host="127.0.0.1", port=0, spool_interval=0.1
)
print("stopped", serve(settings, announce=print), flush=True)
"""
FAST = "webhook_timeout = 0.5\nwebhook_backoff = 0.05\nwebhook_workers = 8\nreject_timeout = 2\n"


def start_daemon(home: Path) -> subprocess.Popen[bytes]:
    (home / "daemon.json").unlink(missing_ok=True)
    # Its output goes to a file: a pipe nobody reads fills up (the daemon logs a line per
    # ended call) and then blocks the daemon's writes, and with them its ingestion.
    with (home / "daemon-output.txt").open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-c", DAEMON_CODE, str(home)],
            env=hook_env(home),
            stdout=out,
            stderr=out,
        )
    wait_for_daemon_file(home, proc)
    return proc


def play(folder: Path, home: Path, numbers: range, missed_every: int = 5) -> None:
    """Calls from ``numbers`` through the simulator, its events spooled as the hook spools
    them when the daemon is busy (the daemon drains the spool): answered, every
    ``missed_every``-th missed."""
    steps = []
    for i in numbers:
        number = f"+4420794{i:05d}"
        if i % missed_every == 0:
            steps.append(
                {"at": (i - numbers.start) * 10.0, "incoming": number, "then": "missed", "after": 1}
            )
        else:
            steps.append(
                {
                    "at": (i - numbers.start) * 10.0,
                    "incoming": number,
                    "then": "answer",
                    "after": 1,
                    "talk": 2,
                }
            )

    def spool(fired: FiredEvent) -> None:
        wire.spool(wire.make_record(fired.event, fired.number), home)

    clock = VirtualClock(start=time.time())
    with Simulator(folder, clock=clock, run_hooks=False, on_event=spool) as sim:
        run_scenario(sim, parse_scenario({"steps": steps}))


def calls_in(engine: Engine) -> list[Call]:
    with engine.connect() as conn:
        return repo.list_calls(conn)


def expected_messages(calls: list[Call]) -> dict[str, list[str]]:
    """Per call, the ids of its messages in the order its transitions fired."""
    return {
        c.call_id: [message_id("crm", c.call_id, t) for t in (c.transitions or [])] for c in calls
    }


def outbox_done(engine: Engine, total: int) -> bool:
    with engine.connect() as conn:
        counts = store.counts(conn).get("crm", {})
    return counts.get("delivered", 0) == total


def failures(engine: Engine) -> list[dict[str, object]]:
    with engine.connect() as conn:
        return [m for m in store.messages(conn, state="pending", limit=10_000) if m["attempts"]]


def check_arrivals(r: Receiver, expected: dict[str, list[str]]) -> Counter[str]:
    """Every message arrived and verified, in order within its call; the wire's duplicates."""
    arrivals = list(r.delivered)
    assert all(d.verified for d in arrivals), "a signature did not verify"
    seen = Counter(d.msg_id for d in arrivals)
    wanted = {i for ids in expected.values() for i in ids}
    assert set(seen) == wanted, (
        f"missing {len(wanted - set(seen))}, unknown {len(set(seen) - wanted)}"
    )
    first: dict[str, int] = {}
    for n, d in enumerate(arrivals):
        first.setdefault(d.msg_id, n)
    for call_id, ids in expected.items():
        assert [first[i] for i in ids] == sorted(first[i] for i in ids), f"order of {call_id}"
    return Counter({i: n - 1 for i, n in seen.items() if n > 1})


@pytest.mark.slow
def test_500_calls_through_refusals_500s_hangs_and_a_sigkill(
    bridge_home: Path, tmp_path: Path
) -> None:
    folder = create_folder(tmp_path / "MicroSIP", domain="pbx.example.invalid").path
    r = Receiver(hang_seconds=1.0)
    r.port = closed_port()  # refused until it comes up
    (bridge_home / "config.toml").write_text(FAST + webhooks_toml(r.url), "utf-8")
    engine = make_engine(None, bridge_home)
    proc = start_daemon(bridge_home)
    try:
        play(folder, bridge_home, range(170))
        wait_until(lambda: len(calls_in(engine)) >= 170, 60, "the first calls to be stored")
        wait_until(
            lambda: any("ConnectError" in str(m["last_error"]) for m in failures(engine)),
            30,
            "refused attempts",
        )
        r.mode = "500"  # before it listens: no request may find it accepting
        r.up()
        play(folder, bridge_home, range(170, 340))
        wait_until(
            lambda: any(m["last_status"] == 500 for m in failures(engine)), 30, "500 answers"
        )
        r.mode = "hang"
        play(folder, bridge_home, range(340, 500))
        wait_until(lambda: len(calls_in(engine)) >= 500, 60, "every call to be stored")
        wait_until(
            lambda: any(m["last_error"] == "timed out" for m in failures(engine)),
            30,
            "attempts timed out",
        )
        assert r.delivered == [], "nothing is accepted while the receiver fails"
        r.mode = "ok"
        wait_until(lambda: len(r.delivered) >= 300, 60, "deliveries to start")
        kill(proc)  # in the middle of the deliveries
        delivered_before = len(r.delivered)
        proc = start_daemon(bridge_home)
        calls = calls_in(engine)
        expected = expected_messages(calls)
        total = sum(len(ids) for ids in expected.values())
        assert delivered_before < total, "the kill came after the last delivery"
        wait_until(lambda: outbox_done(engine, total), 120, "every message to be delivered")
        assert stop(proc)[0] == 0
    finally:
        if proc.poll() is None:
            kill(proc)
        r.down()
        engine.dispose()
    assert len(calls) == 500
    assert all(c.outcome is not None for c in calls)
    duplicates = check_arrivals(r, expected)
    # At least once on the wire: only what was in flight when the daemon died is sent again
    # (a batch is 4 per worker), with the same webhook-id, so a receiver de-duplicating by id
    # gets each message exactly once.
    assert sum(duplicates.values()) <= 8 * 4


@pytest.fixture
def pg_database() -> Iterator[str]:
    if not PG_URL:
        if PG_REQUIRED:
            pytest.fail(f"MSB_REQUIRE_PG=1 but {PG_ENV} is not set")
        pytest.skip(f"set {PG_ENV} to test on PostgreSQL")
    admin = make_engine(PG_URL)
    schema = f"msb_test_{uuid.uuid4().hex[:16]}"
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(PG_URL).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.mark.slow
def test_two_daemons_share_one_postgresql_outbox(
    bridge_home: Path, tmp_path: Path, pg_database: str
) -> None:
    """Two daemon processes on one database, both delivering: each message exactly once on
    the wire (no failures, no kill), in order within each call."""
    folder = create_folder(tmp_path / "MicroSIP", domain="pbx.example.invalid").path
    engine = make_engine(pg_database)
    upgrade(engine)
    r = Receiver(mode="500")  # rows pile up, then both daemons deliver them at once
    r.up()
    homes = [bridge_home, tmp_path / "second-home"]
    homes[1].mkdir()
    config = FAST + f'database = "{pg_database}"\n' + webhooks_toml(r.url)
    for home in homes:
        (home / "config.toml").write_text(config, "utf-8")
    procs = [start_daemon(home) for home in homes]
    try:
        play(folder, homes[0], range(300))
        wait_until(lambda: len(calls_in(engine)) >= 300, 60, "the calls to be stored")
        calls = calls_in(engine)
        expected = expected_messages(calls)
        total = sum(len(ids) for ids in expected.values())
        r.mode = "ok"
        senders: set[str] = set()

        def done() -> bool:
            # Which daemons hold claims as they deliver (the worker names hold their pids).
            with engine.connect() as conn:
                holders = conn.execute(
                    text(
                        "SELECT DISTINCT claimed_by FROM webhook_outbox"
                        " WHERE claimed_by IS NOT NULL"
                    )
                ).scalars()
                senders.update(str(h).split(":")[1] for h in holders)
            return outbox_done(engine, total)

        wait_until(done, 120, "every message to be delivered")
        for proc in procs:
            assert stop(proc)[0] == 0
    finally:
        for proc in procs:
            if proc.poll() is None:
                kill(proc)
        r.down()
        engine.dispose()
    assert check_arrivals(r, expected) == Counter(), "a message was sent by two daemons"
    assert senders == {str(p.pid) for p in procs}, "both daemons delivered"
