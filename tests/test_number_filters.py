"""Number filters with the normaliser: the API's `number`, `calls --number` (both readers),
on SQLite and PostgreSQL. A call matches by its number_key (the same number in any format)
or by the old digits rule, which still finds calls stored before number_key existed."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import httpx2
import pytest
from sqlalchemy.engine import Engine

from microsip_bridge.model import Call, CallState, Direction, Outcome
from microsip_bridge.numbers import Normaliser
from microsip_bridge.store import repo
from microsip_bridge.store.engine import make_engine, upgrade
from microsip_bridge.store.query import CallFilter, call_listing
from microsip_bridge.store.reader import DB_NAME, open_reader
from tests.cli_support import run
from tests.daemon_support import live_daemon
from tests.test_store import T0, db, fresh, pg_admin  # noqa: F401 - fixtures

GB = Normaliser("GB")
# (call id, number as MicroSIP reported it, number_key as stored: "" for calls stored before
# the bridge normalised numbers)
STORED = [
    ("e164", "+441234567890", "+441234567890"),
    ("national", "01234 567890", "+441234567890"),
    ("sip", "sip:+44-1234-567890@pbx.example", "+441234567890"),
    ("old", "+44 1234 567890", ""),  # before 0003: found by its digits only
    ("other", "+442079460000", "+442079460000"),
    ("ext", "101", "101"),
]


def a_call(n: int, call_id: str, number: str, key: str) -> Call:
    return Call(
        call_id=call_id,
        direction=Direction.INCOMING,
        number=number,
        state=CallState.ENDED,
        started_at=T0 + n,
        outcome=Outcome.ANSWERED,
        updated_at=T0 + n,
        number_key=key,
    )


def fill(engine: Engine) -> None:
    with engine.begin() as conn:
        repo.save_calls(conn, [a_call(n, *row) for n, row in enumerate(STORED)])


# What each query finds: the same number in any format, and the digits rule as before.
CASES = [
    ("01234 567890", {"e164", "national", "sip", "old"}),
    ("+44 1234 567890", {"e164", "national", "sip", "old"}),
    ("tel:+441234567890", {"e164", "national", "sip", "old"}),
    ("0044 1234 567890", {"e164", "national", "sip", "old"}),
    ("567890", {"e164", "national", "sip", "old"}),  # digits alone: the old rule
    ("020 7946 0000", {"other"}),
    ("101", {"ext"}),
]


@pytest.mark.parametrize(("wanted", "found"), CASES)
def test_the_api_query_matches_the_same_number(
    db: Engine,  # noqa: F811
    wanted: str,
    found: set[str],
) -> None:
    fill(db)
    where = CallFilter(number=wanted, number_key=GB(wanted).key)
    with db.connect() as conn:
        got = {str(c["call_id"]) for c in call_listing(conn, where, limit=100)}
    assert got == found
    # Without the key only the digits rule: the national form misses the E.164 calls.
    if wanted == "01234 567890":
        with db.connect() as conn:
            plain = call_listing(conn, CallFilter(number=wanted), limit=100)
        assert {str(c["call_id"]) for c in plain} == {"national"}


@pytest.mark.parametrize(("wanted", "found"), CASES)
def test_the_cli_readers_match_the_same_number(
    db: Engine,  # noqa: F811
    tmp_path: Path,
    wanted: str,
    found: set[str],
) -> None:
    fill(db)
    reader = open_reader(db.url.render_as_string(hide_password=False), tmp_path)
    assert reader is not None
    with reader:
        got = {str(c["call_id"]) for c in reader.calls(number=wanted, normalise=GB).rows}
        assert got == found
        newest = reader.calls(number=wanted, normalise=GB, limit=1)
        assert len(list(newest.rows)) == 1
    if db.dialect.name == "sqlite":  # the stdlib reader of the default bridge.db
        path = tmp_path / "home"
        path.mkdir()
        with (
            closing(sqlite3.connect(str(db.url.database))) as source,
            closing(sqlite3.connect(path / DB_NAME)) as copy,
        ):
            source.backup(copy)
        plain = open_reader(None, path)
        assert plain is not None
        with plain:
            got = {str(c["call_id"]) for c in plain.calls(number=wanted, normalise=GB).rows}
        assert got == found


def test_the_api_and_the_cli_read_the_default_region(
    bridge_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (bridge_home / "config.toml").write_text('default_region = "GB"\n', encoding="utf-8")
    engine = make_engine(f"sqlite:///{bridge_home / DB_NAME}")
    upgrade(engine)
    fill(engine)
    engine.dispose()
    code, out, err = run(capsys, "calls", "--number", "01234 567890", "--format", "json")
    assert code == 0, err
    assert '"e164"' in out and '"sip"' in out and '"old"' in out and '"other"' not in out
    with live_daemon(bridge_home, default_region="GB") as daemon:
        host, port = daemon.wait_listening()
        token = (bridge_home / "token").read_text().strip()
        response = httpx2.get(
            f"http://{host}:{port}/api/v1/calls",
            params={"number": "+44 1234 567890"},
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )
        assert response.status_code == 200, response.text
        got = {c["call_id"] for c in response.json()["calls"]}
    assert got == {"e164", "national", "sip", "old"}
