"""Privacy without a daemon: mask_number, the store's purge by age and by number (SQLite and
PostgreSQL), the spool and MicroSIP's [Calls] ring, and `microsip-bridge purge` on the store."""

from __future__ import annotations

import json
import re
import string
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import func, insert, select
from sqlalchemy.engine import Engine

from microsip_bridge.calls.spool import REJECTED_NAME, purge_spool
from microsip_bridge.fileio import list_backups
from microsip_bridge.microsip.history import read_history
from microsip_bridge.microsip.history_ring import append_entry, delete_matching
from microsip_bridge.microsip.inifile import IniDocument
from microsip_bridge.model import Call, CallState, Direction, Event, EventRecord, Outcome
from microsip_bridge.sim.folder import create_folder
from microsip_bridge.store import repo
from microsip_bridge.store.engine import make_engine, upgrade
from microsip_bridge.store.purge import Purge, PurgePlan, number_matcher
from microsip_bridge.store.schema import calls, events, purged_entries, webhook_outbox
from microsip_bridge.wire import SPOOL_NAME, encode_record, make_record, mask_number
from tests.cli_support import run
from tests.test_store import T0, db, fresh, pg_admin  # noqa: F401 - fixtures

DAY = 86400.0


# -- mask_number ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("+44 20 7946 0958", "+xx xx xxxx x958"),
        ("call from 02079460958 ended", "call from xxxxxxxx958 ended"),
        ("5551234", "xxxxx34"),
        ("+1 (555) 123-4567", "+x (xxx) xxx-x567"),
        ("sip:+441234567890@pbx.example", "sip:+xxxxxxxxx890@pbx.example"),
        ("sip:alice@pbx", "sip:a****@pbx"),
        (
            "GET https://crm.example/?q=%2B442079460958 failed",
            "GET https://crm.example/?q=%2Bxxxxxxxxx958 failed",
        ),
        ("took 12345 ms for 100000 bytes", "took 12345 ms for 100000 bytes"),
        # Left alone: extensions, counts, ids, dates, IP addresses and their ports.
        ("ext 101 rang 3 times", "ext 101 rang 3 times"),
        ("event 3f9a81234567 refused", "event 3f9a81234567 refused"),
        ("purged before 2026-09-01", "purged before 2026-09-01"),
        ("listening on 127.0.0.1:55432", "listening on 127.0.0.1:55432"),
        ("", ""),
    ],
)
def test_mask_number_examples(text: str, masked: str) -> None:
    assert mask_number(text) == masked


PHONE = st.builds(
    lambda plus, groups: ("+" if plus else "") + " ".join(groups),
    st.booleans(),
    st.lists(st.text(string.digits, min_size=1, max_size=4), min_size=2, max_size=5),
).filter(lambda n: sum(c.isdigit() for c in n) >= 5)


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_mask_number_never_raises_and_is_idempotent(text: str) -> None:
    once = mask_number(text)
    assert mask_number(once) == once
    assert len(once) == len(text)  # digit for digit: the line keeps its shape


@settings(max_examples=300, deadline=None)
@given(
    PHONE,
    st.sampled_from(["", "from ", "call c12 ended: incoming "]),
    st.sampled_from(["", " ended", ", answered"]),
)
def test_a_masked_number_shows_at_most_its_last_digits(
    number: str, before: str, after: str
) -> None:
    line = mask_number(before + number + after)
    digits = re.sub(r"\D", "", number)
    shown = re.sub(r"\D", "", line[len(before) : len(before) + len(number)])
    keep = 3 if len(digits) >= 8 else 2
    assert shown == digits[-keep:]
    assert digits not in re.sub(r"\D", "", line) or len(digits) <= keep


def test_mask_number_takes_anything() -> None:
    assert mask_number(None) == ""  # type: ignore[arg-type]
    assert mask_number("\udcff12345678") == "\udcffxxxxx678"


# -- the store ----------------------------------------------------------------------------------


def a_call(
    n: int, number: str, *, ended: float, open_: bool = False, key: int | None = None
) -> Call:
    return Call(
        call_id=f"call-{n:04d}",
        direction=Direction.INCOMING,
        number=number,
        state=CallState.CONNECTED if open_ else CallState.ENDED,
        started_at=ended - 60,
        outcome=None if open_ else Outcome.ANSWERED,
        answered_at=ended - 50,
        ended_at=None if open_ else ended,
        duration=None if open_ else 50.0,
        rang=True,
        microsip_key=key,
        microsip_time=None if key is None else int(ended - 60),
        events=[f"ev-{n}-a", f"ev-{n}-b"],
        updated_at=ended,
        number_key="",  # as calls stored before 0003 have it: the purge must not need it
    )


def fill(engine: Engine, items: list[Call], *, loose: list[EventRecord] = ()) -> None:  # type: ignore[assignment]
    with engine.begin() as conn:
        for call in items:
            for i, uid in enumerate(call.events):
                event = Event.INCOMING if i == 0 else Event.END
                repo.record_event(
                    conn,
                    EventRecord(uid, event, call.number, call.started_at + i, 4242),
                    received_at=call.started_at + i,
                )
        for r in loose:
            repo.record_event(conn, r, received_at=r.ts)
        repo.save_calls(conn, items)


def outbox_row(call_id: str | None, state: str, at: float, n: int) -> dict[str, object]:
    return {
        "msg_id": f"msg_{n}",
        "target": "crm",
        "call_id": call_id,
        "type": "call.ended",
        "body": "{}",
        "created_at": at,
        "next_attempt_at": at,
        "attempts": 1,
        "state": state,
        "delivered_at": at if state == "delivered" else None,
    }


def counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            t.name: int(conn.execute(select(func.count()).select_from(t)).scalar_one())
            for t in (calls, events, webhook_outbox, purged_entries)
        }


def call_ids(engine: Engine) -> set[str]:
    with engine.connect() as conn:
        return set(conn.scalars(select(calls.c.call_id)))


@pytest.fixture
def aged(db: Engine) -> Engine:  # noqa: F811
    """Calls ended 200, 100 and 10 days ago (and one still going on), with events, outbox rows
    in every state and an event no call took."""
    now = T0
    fill(
        db,
        [
            a_call(1, "5550001", ended=now - 200 * DAY, key=7),
            a_call(2, "5550002", ended=now - 100 * DAY),
            a_call(3, "5550003", ended=now - 10 * DAY),
            a_call(4, "5550004", ended=now - 300 * DAY, open_=True),
        ],
        loose=[
            EventRecord("loose-old", Event.RING, "5559999", now - 150 * DAY),
            EventRecord("loose-new", Event.RING, "5559999", now - 1 * DAY),
        ],
    )
    with db.begin() as conn:
        conn.execute(
            insert(webhook_outbox),
            [
                outbox_row("call-0001", "delivered", now - 200 * DAY, 1),
                outbox_row("call-0001", "pending", now - 200 * DAY, 2),
                outbox_row("call-0002", "dead", now - 100 * DAY, 3),
                outbox_row("call-0003", "delivered", now - 10 * DAY, 4),
                outbox_row(None, "delivered", now - 95 * DAY, 5),
            ],
        )
    return db


def test_purge_by_age_takes_what_ended_before_and_keeps_pending_deliveries(aged: Engine) -> None:
    plan = PurgePlan(before=T0 - 90 * DAY)
    preview = Purge(plan).count(aged)
    assert counts(aged)["calls"] == 4  # the dry run wrote nothing
    report = Purge(plan, batch=1).run(aged)  # a batch per call: the loop must carry on
    assert call_ids(aged) == {"call-0003", "call-0004"}  # recent, and still open
    assert (report.calls, report.events, report.webhooks) == (2, 5, 3)
    assert (preview.calls, preview.events, preview.webhooks) == (2, 5, 3)
    with aged.connect() as conn:
        left = {r.msg_id: r.state for r in conn.execute(select(webhook_outbox))}
        uids = set(conn.scalars(select(events.c.uid)))
        stones = set(
            conn.execute(select(purged_entries.c.microsip_key, purged_entries.c.microsip_time))
        )
    assert left == {"msg_2": "pending", "msg_4": "delivered"}
    assert uids == {"ev-3-a", "ev-3-b", "ev-4-a", "ev-4-b", "loose-new"}
    # Tombstones: the time and slot of each purged call's [Calls] entry, no number.
    assert stones == {(7, int(T0 - 200 * DAY - 60)), (None, int(T0 - 100 * DAY - 60))}
    assert Purge(plan).count(aged).calls == 0


def test_a_purged_call_is_seen_by_the_sweep_and_never_imported_again(aged: Engine) -> None:
    Purge(PurgePlan(before=T0 - 90 * DAY)).run(aged)
    first, second = (7, int(T0 - 200 * DAY - 60)), (3, int(T0 - 100 * DAY - 60))
    other = (5, int(T0 - 100 * DAY - 61))
    with aged.connect() as conn:
        seen = repo.history_entries_seen(conn, [first, second, other])
    assert seen == {first, second}


def test_purge_by_number_matches_every_form_of_it(db: Engine) -> None:  # noqa: F811
    fill(
        db,
        [
            a_call(1, "+44 20 7946 0958", ended=T0),
            a_call(2, "02079460958", ended=T0 - DAY),
            a_call(3, "00442079460958", ended=T0 - 2 * DAY),
            a_call(4, "020 7946 0959", ended=T0),  # a neighbour: kept
            a_call(5, "02079460958", ended=T0, open_=True),  # still going on: kept
        ],
        loose=[EventRecord("lonely", Event.RING, "+442079460958", T0)],
    )
    with db.begin() as conn:
        conn.execute(
            insert(webhook_outbox),
            [outbox_row("call-0001", "pending", T0, 1), outbox_row("call-0004", "pending", T0, 2)],
        )
    report = Purge(PurgePlan(number="+44 20 7946 0958", region="GB")).run(db)
    assert call_ids(db) == {"call-0004", "call-0005"}
    assert (report.calls, report.events, report.webhooks, report.open_kept) == (3, 7, 1, 1)
    with db.connect() as conn:
        assert set(conn.scalars(select(events.c.uid))) == {"ev-4-a", "ev-4-b", "ev-5-a", "ev-5-b"}


def test_purge_by_number_without_a_region_takes_the_same_text_only(db: Engine) -> None:  # noqa: F811
    fill(db, [a_call(1, "02079460958", ended=T0), a_call(2, "+442079460958", ended=T0)])
    Purge(PurgePlan(number="02079460958")).run(db)
    assert call_ids(db) == {"call-0002"}


def test_a_plan_needs_something_to_purge() -> None:
    with pytest.raises(ValueError, match="cut-off time or a number"):
        PurgePlan()
    with pytest.raises(ValueError, match="empty"):
        PurgePlan(number="  ")


def test_a_killed_purge_leaves_every_event_with_its_call(aged: Engine) -> None:
    """Each batch is one transaction: stopping after any batch (a kill between commits) leaves
    no event whose call is gone, and the next run finishes the job."""
    plan = PurgePlan(before=T0 - 90 * DAY)
    purge = Purge(plan, batch=1)
    from microsip_bridge.store.purge import PurgeReport

    purge.step(aged, PurgeReport())  # one call gone, then "killed"
    with aged.connect() as conn:
        ids = set(conn.scalars(select(calls.c.call_id)))
        linked = set(conn.scalars(select(events.c.call_id).where(events.c.call_id.is_not(None))))
    assert linked <= ids
    Purge(plan).run(aged)
    assert call_ids(aged) == {"call-0003", "call-0004"}


# -- the spool and [Calls] -----------------------------------------------------------------------


def test_purge_spool_drops_that_number_only(tmp_path: Path) -> None:
    lines = [
        encode_record(make_record("ring", number, now=T0))
        for number in ("02079460958", "5551234", "+442079460958")
    ]
    (tmp_path / SPOOL_NAME).write_text("".join(line + "\n" for line in lines))
    damaged = {
        "rejected_at": T0,
        "file": SPOOL_NAME,
        "line": 9,
        "reason": "incomplete line",
        "text": '{"v":1,"id":"x","event":"ring","number":"+44 20 7946 0958","ts',
    }
    (tmp_path / REJECTED_NAME).write_text(json.dumps(damaged) + "\n")
    match, _ = number_matcher("+44 20 7946 0958", "GB")
    assert purge_spool(tmp_path, match, dry_run=True) == 3
    assert (tmp_path / SPOOL_NAME).read_text().count("\n") == 3  # the dry run wrote nothing
    assert purge_spool(tmp_path, match) == 3
    assert not (tmp_path / SPOOL_NAME).exists()  # claimed: the daemon's next start ingests it
    left = [p.read_text() for p in tmp_path.glob("spool.*.ingesting")]
    assert len(left) == 1 and "5551234" in left[0] and "7946" not in left[0]
    assert (tmp_path / REJECTED_NAME).read_text() == ""


def test_delete_matching_nulls_the_ring_slots(tmp_path: Path) -> None:
    sim = create_folder(tmp_path / "MicroSIP", domain="pbx.example.invalid")
    doc = IniDocument.load(sim.ini)
    for number in ("02079460958", "5551234", "+442079460958"):
        append_entry(doc, number, "", 1, int(T0), 5)
    match, _ = number_matcher("02079460958", "GB")
    assert delete_matching(doc, match) == [0, 2]
    assert [e.number for e in read_history(doc).entries] == ["5551234"]


# -- the command on the store (no daemon) ---------------------------------------------------------


@pytest.fixture
def home_store(bridge_home: Path) -> Engine:
    engine = make_engine(None, bridge_home)
    upgrade(engine)
    yield engine  # type: ignore[misc]
    engine.dispose()


def test_cli_purge_older_than(capsys: pytest.CaptureFixture[str], home_store: Engine) -> None:
    import time

    now = time.time()
    fill(home_store, [a_call(1, "5550001", ended=now - 100 * DAY), a_call(2, "5550002", ended=now)])
    code, out, err = run(capsys, "purge", "--older-than", "90d", "--dry-run")
    assert (code, err) == (0, "")
    assert out.strip() == "would purge 1 calls, 2 events, 0 webhook deliveries; nothing written"
    assert len(call_ids(home_store)) == 2
    code, out, _ = run(capsys, "purge", "--older-than", "90d")
    assert code == 0 and out.startswith("purged 1 calls, 2 events")
    assert call_ids(home_store) == {"call-0002"}


def test_cli_purge_number_cleans_store_spool_ring_and_backups(
    capsys: pytest.CaptureFixture[str], home_store: Engine, bridge_home: Path, tmp_path: Path
) -> None:
    (bridge_home / "config.toml").write_text('default_region = "GB"\n')
    fill(home_store, [a_call(1, "02079460958", ended=T0), a_call(2, "5551234", ended=T0)])
    (bridge_home / SPOOL_NAME).write_text(
        encode_record(make_record("ring", "+442079460958", now=T0)) + "\n"
    )
    sim = create_folder(tmp_path / "MicroSIP", domain="pbx.example.invalid")
    doc = IniDocument.load(sim.ini)
    append_entry(doc, "+44 20 7946 0958", "", 1, int(T0), 5)
    doc.save(backups=0)
    append_entry(doc, "5551234", "", 1, int(T0), 5)
    doc.save(backups=3)  # a backup of the bridge's own that holds the number
    ini = str(sim.ini)
    code, out, err = run(capsys, "purge", "--number", "+44 20 7946 0958", "--ini", ini)
    assert (code, err) == (0, "")
    assert out.strip() == (
        "purged 1 calls, 2 events, 0 webhook deliveries, 1 spooled events, "
        "1 [Calls] entries, 1 ini backups cleaned"
    )
    assert call_ids(home_store) == {"call-0002"}
    assert [e.number for e in read_history(IniDocument.load(sim.ini)).entries] == ["5551234"]
    for path in [sim.ini, *list_backups(sim.ini), *bridge_home.glob("spool*")]:
        assert "7946" not in path.read_text(errors="replace"), path


def test_cli_purge_history_refused_while_microsip_runs(
    capsys: pytest.CaptureFixture[str], home_store: Engine, tmp_path: Path
) -> None:
    fill(home_store, [a_call(1, "5551234", ended=T0)])
    sim = create_folder(tmp_path / "MicroSIP", domain="pbx.example.invalid")
    (sim.path / "microsip-sim.pid").write_text(str(__import__("os").getpid()))
    args = ("purge", "--number", "5551234", "--ini", str(sim.ini))
    code, out, err = run(capsys, *args, "--history")
    assert code == 3 and out == ""
    assert len(err.strip().splitlines()) == 1 and "MicroSIP is running" in err
    assert call_ids(home_store) == {"call-0001"}  # refused before anything was deleted
    code, out, err = run(capsys, *args)  # without --history: the ring is left, said so
    assert code == 0 and "[Calls] was left" in err
    assert call_ids(home_store) == set()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "say what to purge"),
        (("--older-than", "soon"), "is not a date"),
        (("--number", " "), "must not be empty"),
        (("--older-than", "1d", "--history"), "--history needs --number"),
    ],
)
def test_cli_purge_usage_errors(
    capsys: pytest.CaptureFixture[str], args: tuple[str, ...], message: str
) -> None:
    code, out, err = run(capsys, "purge", *args)
    assert code == 2 and out == "" and message in err
    assert "Traceback" not in err
