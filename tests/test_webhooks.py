"""Webhooks: targets, signatures checked by the standardwebhooks package, the payload, the
outbox's queries on SQLite and PostgreSQL, and the worker against a real local receiver."""

from __future__ import annotations

import base64
import json
import random
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.engine import Engine, make_url
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from microsip_bridge.calls.transitions import Happened
from microsip_bridge.errors import FileFormatError
from microsip_bridge.model import Call, CallState, Direction, Outcome, Transition
from microsip_bridge.numbers import Normaliser
from microsip_bridge.store import outbox as store
from microsip_bridge.store.engine import make_engine, upgrade
from microsip_bridge.webhooks import signing
from microsip_bridge.webhooks.outbox import OutboxPart, enqueue
from microsip_bridge.webhooks.payload import VERSION, call_body, message_id
from microsip_bridge.webhooks.targets import WebhookTarget, parse_targets, secret_key
from microsip_bridge.webhooks.worker import Worker, backoff, make_client, retry_after, send_test
from tests.conftest import DATABASES, PG_ENV, PG_URL
from tests.webhook_support import SECRET, Receiver, closed_port, receiver

CONFIG = Path("/home/u/.microsip-bridge/config.toml")


def target(
    url: str = "http://127.0.0.1:9/hook", name: str = "crm", events: str = "*"
) -> WebhookTarget:
    return WebhookTarget(name, url, frozenset({events}), SECRET)


def happened(call_id: str, transition: Transition, number: str = "+442079460000") -> Happened:
    call = Call(
        call_id=call_id,
        direction=Direction.INCOMING,
        number=number,
        state=CallState.ENDED,
        started_at=1_800_000_000.0,
        outcome=Outcome.ANSWERED,
        name="Jane Roe",
        name_source="microsip",
    )
    return Happened(call, transition, 1_800_000_001.5)


# --- targets --------------------------------------------------------------------------------


def test_targets_parse_and_the_secret_stays_out_of_the_repr() -> None:
    found = parse_targets(
        [
            {
                "name": "crm",
                "url": "https://crm.example/h",
                "events": ["call.ringing"],
                "secret": SECRET,
            },
            {"name": "log", "url": "http://127.0.0.1:8000/h", "secret": SECRET},
        ],
        path=CONFIG,
    )
    assert [t.name for t in found] == ["crm", "log"]
    assert found[0].wants("call.ringing") and not found[0].wants("call.ended")
    assert found[1].wants("call.ended")  # events default to all
    assert SECRET not in repr(found) and SECRET[6:] not in repr(found)
    assert SECRET not in json.dumps([t.public() for t in found])


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"url": "https://x.example/h", "secret": SECRET}, "[[webhooks]] #1: name:"),
        ({"name": "a", "url": "ftp://x.example/h", "secret": SECRET}, "'a': url:"),
        ({"name": "a", "url": "http://crm.example/h", "secret": SECRET}, "plain http"),
        (
            {"name": "a", "url": "https://x/h", "events": ["call.rang"], "secret": SECRET},
            "'call.rang'",
        ),
        ({"name": "a", "url": "https://x/h", "events": [], "secret": SECRET}, "events:"),
        ({"name": "a", "url": "https://x/h", "secret": "sk_123"}, "secret: the secret must start"),
        ({"name": "a", "url": "https://x/h", "secret": "whsec_!!!"}, "base64"),
        ({"name": "a", "url": "https://x/h"}, "exactly one of"),
        ({"name": "a", "url": "https://x/h", "secret": SECRET, "sekret": 1}, "sekret: unknown key"),
        ({"name": "a", "url": "https://x/h", "secret_env": "MSB_NO_SUCH_VAR_9"}, "is not set"),
    ],
)
def test_bad_targets_name_the_entry_and_key(entry: dict[str, object], message: str) -> None:
    with pytest.raises(FileFormatError) as info:
        parse_targets([entry], path=CONFIG)
    assert message in str(info.value)
    assert str(CONFIG) in str(info.value)
    assert "whsec_!!!" not in str(info.value)  # never the secret itself


def test_duplicate_names_are_refused() -> None:
    entry = {"name": "a", "url": "https://x.example/h", "secret": SECRET}
    with pytest.raises(FileFormatError, match="'a': name: is used by another"):
        parse_targets([entry, entry], path=CONFIG)


def test_secret_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRM_SECRET", SECRET)
    (found,) = parse_targets(
        [{"name": "a", "url": "https://x.example/h", "secret_env": "CRM_SECRET"}], path=CONFIG
    )
    assert found.secret == SECRET


def test_keyring_without_the_package_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "keyring", None)  # import keyring -> ImportError
    with pytest.raises(FileFormatError, match="keyring package is not installed"):
        parse_targets(
            [{"name": "a", "url": "https://x.example/h", "secret_keyring": True}], path=CONFIG
        )


# --- signing ----------------------------------------------------------------------------------


@given(st.binary(max_size=300), st.text(min_size=1, max_size=40).filter(lambda s: "." not in s))
def test_signatures_verify_with_standardwebhooks(body: bytes, suffix: str) -> None:
    msg_id = "msg_" + suffix.encode("utf-8", "replace").hex()
    now = int(time.time())
    headers = signing.headers(secret_key(SECRET), msg_id, now, body)
    Webhook(SECRET).verify(body, headers, json_parse=False)
    with pytest.raises(WebhookVerificationError):
        Webhook(signing.new_secret()).verify(body, headers, json_parse=False)
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(body + b"x", headers, json_parse=False)


def test_new_secret_is_a_whsec_secret() -> None:
    secret = signing.new_secret()
    assert secret.startswith("whsec_") and len(base64.b64decode(secret[6:])) == 32
    assert secret != signing.new_secret()


# --- payload ----------------------------------------------------------------------------------


def test_body_is_the_call_with_its_number_forms() -> None:
    body = json.loads(call_body(happened("c1", Transition.ENDED), Normaliser("GB")))
    assert body["type"] == "call.ended" and body["version"] == VERSION
    assert body["timestamp"] == "2027-01-15T08:00:01.500Z"
    data = body["data"]
    assert (
        data["call_id"] == "c1" and data["name"] == "Jane Roe" and data["name_source"] == "microsip"
    )
    assert data["number_forms"]["e164"] == "+442079460000"
    assert data["number_forms"]["national"].replace(" ", "") == "02079460000"


def test_message_ids_are_derived_per_target_call_and_transition() -> None:
    assert message_id("crm", "c1", "ended") == message_id("crm", "c1", "ended")
    ids = {
        message_id(t, c, x) for t in ("a", "b") for c in ("c1", "c2") for x in ("ringing", "ended")
    }
    assert len(ids) == 8


# --- backoff and Retry-After ------------------------------------------------------------------


@given(st.integers(min_value=1, max_value=10_000), st.integers(min_value=0, max_value=2**32))
def test_backoff_is_full_jitter_capped(attempt: int, seed: int) -> None:
    wait = backoff(attempt, random.Random(seed), base=2.0, cap=3600.0)
    assert 0.0 <= wait <= min(3600.0, 2.0 * 2.0 ** min(attempt - 1, 20))


def test_backoff_grows_on_average() -> None:
    rng = random.Random(7)
    means = [sum(backoff(a, rng) for _ in range(400)) / 400 for a in (1, 4, 8)]
    assert means[0] < 1.5 < means[1] < means[2]


def test_retry_after_seconds_dates_and_caps() -> None:
    now = 1_800_000_000.0
    assert retry_after("120", now) == 120.0
    assert retry_after("99999999", now) == 3600.0
    assert retry_after("Fri, 15 Jan 2027 08:00:30 GMT", now) == pytest.approx(30.0)
    assert retry_after("soon", now) is None and retry_after(None, now) is None


# --- the outbox's queries, on both databases --------------------------------------------------


@pytest.fixture(scope="module")
def pg_admin() -> Iterator[Engine]:
    assert PG_URL, f"MSB_REQUIRE_PG=1 but {PG_ENV} is not set"
    admin = make_engine(PG_URL)
    yield admin
    admin.dispose()


@pytest.fixture(params=DATABASES)
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A migrated store: a SQLite file, or a PostgreSQL schema of its own."""
    if request.param == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path / 'test.db'}")
        upgrade(engine)
        yield engine
        engine.dispose()
        return
    admin: Engine = request.getfixturevalue("pg_admin")
    schema = f"msb_test_{uuid.uuid4().hex[:16]}"
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    assert PG_URL is not None
    url = make_url(PG_URL).update_query_dict({"options": f"-csearch_path={schema}"})
    engine = make_engine(url.render_as_string(hide_password=False))
    upgrade(engine)
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))


def fill(db: Engine, calls: int, transitions: tuple[Transition, ...], now: float = 1000.0) -> None:
    t = target()
    with db.begin() as conn:
        for i in range(calls):
            for tr in transitions:
                assert enqueue(conn, happened(f"c{i}", tr), t, now=now)


def test_enqueue_is_idempotent(db: Engine) -> None:
    fill(db, 1, (Transition.RINGING,))
    with db.begin() as conn:
        assert not enqueue(conn, happened("c0", Transition.RINGING), target(), now=2000.0)
        assert store.counts(conn) == {"crm": {"pending": 1, "delivered": 0, "dead": 0}}


def test_claims_keep_order_within_a_call(db: Engine) -> None:
    fill(db, 2, (Transition.RINGING, Transition.ANSWERED, Transition.ENDED))
    with db.begin() as conn:
        first = store.claim(conn, "w1", now=1000.0, lease=60, limit=10, targets=["crm"])
    # Only the first row of each call is due; claimed rows are not claimed again.
    assert [(r.call_id, r.type) for r in first] == [("c0", "call.ringing"), ("c1", "call.ringing")]
    with db.begin() as conn:
        assert store.claim(conn, "w2", now=1001.0, lease=60, limit=10, targets=["crm"]) == []
        assert store.delivered(conn, first[0].id, "w1", now=1001.0, status=204)
        # Another worker cannot mark a row it does not hold.
        assert not store.delivered(conn, first[1].id, "w2", now=1001.0, status=204)
        second = store.claim(conn, "w2", now=1001.0, lease=60, limit=10, targets=["crm"])
    assert [(r.call_id, r.type) for r in second] == [("c0", "call.answered")]
    # A dead row does not hold the rest of its call back; an expired lease frees its row.
    with db.begin() as conn:
        assert store.failed(conn, second[0].id, "w2", next_at=0, status=500, error="x", dead=True)
        third = store.claim(conn, "w3", now=1061.5, lease=60, limit=10, targets=["crm"])
    assert [(r.call_id, r.type) for r in third] == [("c0", "call.ended"), ("c1", "call.ringing")]


def test_rows_of_targets_not_configured_wait(db: Engine) -> None:
    fill(db, 1, (Transition.RINGING,))
    with db.begin() as conn:
        assert store.claim(conn, "w", now=1000.0, lease=60, limit=10, targets=["other"]) == []
        assert store.next_due(conn, ["other"]) is None
        assert store.next_due(conn, ["crm"]) == 1000.0


def test_failed_rows_wait_for_their_time_then_retry_and_replay(db: Engine) -> None:
    fill(db, 1, (Transition.RINGING,))
    with db.begin() as conn:
        (row,) = store.claim(conn, "w", now=1000.0, lease=60, limit=10, targets=["crm"])
        store.failed(conn, row.id, "w", next_at=1100.0, status=500, error="HTTP 500")
        assert store.claim(conn, "w", now=1099.0, lease=60, limit=10, targets=["crm"]) == []
        (again,) = store.claim(conn, "w", now=1100.0, lease=60, limit=10, targets=["crm"])
        assert again.attempts == 1
        store.failed(conn, row.id, "w", next_at=0, status=410, error="HTTP 410", dead=True)
        (listed,) = store.messages(conn, state="dead")
        assert listed["last_status"] == 410 and listed["attempts"] == 2 and "body" not in listed
        assert store.retry(conn, now=2000.0, row_id=row.id) == 1
        (back,) = store.claim(conn, "w", now=2000.0, lease=60, limit=10, targets=["crm"])
        assert back.attempts == 0 and back.created_at == 2000.0
        store.delivered(conn, row.id, "w", now=2001.0, status=200)
        with pytest.raises(Exception, match="call id or a time"):
            store.replay(conn, now=3000.0)
        assert store.replay(conn, now=3000.0, call_id="other") == 0
        assert store.replay(conn, now=3000.0, call_id="c0") == 1
        (replayed,) = store.claim(conn, "w", now=3000.0, lease=60, limit=10, targets=["crm"])
    assert replayed.msg_id == row.msg_id  # the same webhook-id: say so in the docs


def test_two_workers_never_claim_one_row(db: Engine) -> None:
    """Workers claiming at once (threads with a connection each): every row once."""
    fill(db, 200, (Transition.RINGING,))
    got: dict[str, list[int]] = {}

    def work(name: str) -> None:
        mine = got.setdefault(name, [])
        while True:
            with db.begin() as conn:
                rows = store.claim(conn, name, now=1000.0, lease=600, limit=7, targets=["crm"])
            if not rows:
                return
            mine.extend(r.id for r in rows)

    threads = [threading.Thread(target=work, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    every = [i for ids in got.values() for i in ids]
    assert len(every) == 200 and len(set(every)) == 200


# --- the worker against a real receiver -------------------------------------------------------


def run_worker(db: Engine, targets: list[WebhookTarget], **options: object) -> Worker:
    worker = Worker(db, lambda: targets, **{"timeout": 1.0, "backoff_base": 0.05, **options})  # type: ignore[arg-type]
    worker.start()
    return worker


def wait_for(predicate: object, timeout: float = 20.0) -> None:
    give_up = time.monotonic() + timeout
    while time.monotonic() < give_up:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.02)
    raise AssertionError("timed out")


def state_counts(db: Engine) -> dict[str, int]:
    with db.connect() as conn:
        return store.counts(conn).get("crm", {})


def test_worker_delivers_signed_messages_in_order(db: Engine) -> None:
    with receiver() as r:
        fill(db, 5, (Transition.RINGING, Transition.ANSWERED, Transition.ENDED), now=time.time())
        worker = run_worker(db, [target(r.url)])
        try:
            wait_for(lambda: state_counts(db).get("delivered") == 15)
        finally:
            worker.stop()
    assert all(d.verified for d in r.delivered)
    ids = r.ids()
    assert len(ids) == len(set(ids)) == 15
    for i in range(5):
        types = [d.body["type"] for d in r.delivered if d.body["data"]["call_id"] == f"c{i}"]
        assert types == ["call.ringing", "call.answered", "call.ended"]


@pytest.mark.parametrize("mode", ["refused", "500", "hang", "retry-after"])
def test_worker_retries_until_the_receiver_recovers(db: Engine, mode: str) -> None:
    r = Receiver(mode="ok" if mode == "refused" else mode, hang_seconds=1.5)
    if mode == "refused":
        r.port = closed_port()
    else:
        r.up()
    url = f"http://127.0.0.1:{r.port}/hook"
    fill(db, 3, (Transition.RINGING, Transition.ENDED), now=time.time())
    worker = run_worker(db, [target(url)], timeout=0.5)
    try:
        time.sleep(1.2)
        with db.connect() as conn:
            failing = store.messages(conn, state="pending")
        assert len(failing) == 6 and max(int(m["attempts"]) for m in failing) >= 1  # type: ignore[call-overload]
        if mode == "retry-after":  # 1 s asked for: not the 0.05 s backoff's dozens of tries
            assert max(int(m["attempts"]) for m in failing) <= 2  # type: ignore[call-overload]
        elif mode != "hang":  # quick failures are retried quickly
            assert max(int(m["attempts"]) for m in failing) >= 2  # type: ignore[call-overload]
        assert state_counts(db).get("delivered") == 0
        if mode == "refused":
            r.up()
        r.mode = "ok"
        wait_for(lambda: state_counts(db).get("delivered") == 6)
    finally:
        worker.stop()
        r.down()
    ids = r.ids()
    assert len(ids) == len(set(ids)) == 6 and all(d.verified for d in r.delivered)


def test_410_is_dead_at_once_and_max_attempts_make_dead_letters(db: Engine) -> None:
    with receiver(mode="410") as r:
        fill(db, 1, (Transition.RINGING, Transition.ENDED), now=time.time())
        worker = run_worker(db, [target(r.url)])
        try:
            wait_for(lambda: state_counts(db).get("dead") == 2)
        finally:
            worker.stop()
        assert r.attempts == 2  # one each: 410 Gone is not retried
        r.mode = "500"
        with db.begin() as conn:
            assert store.retry(conn, now=time.time(), target="crm") == 2
        worker = run_worker(db, [target(r.url)], max_attempts=3)
        try:
            wait_for(lambda: state_counts(db).get("dead") == 2)
        finally:
            worker.stop()
        assert r.attempts == 2 + 6
        with db.connect() as conn:
            assert {m["attempts"] for m in store.messages(conn)} == {3}


def test_max_age_makes_dead_letters(db: Engine) -> None:
    with receiver(mode="500") as r:
        fill(db, 1, (Transition.RINGING,), now=time.time() - 7200)
        worker = run_worker(db, [target(r.url)], max_age=3600.0)
        try:
            wait_for(lambda: state_counts(db).get("dead") == 1)
        finally:
            worker.stop()
        assert r.attempts == 1


def test_redirects_are_not_followed() -> None:
    import http.server

    class Redirect(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.send_response(307)
            self.send_header("Location", "http://127.0.0.1:9/elsewhere")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        outcome = send_test(target(f"http://127.0.0.1:{server.server_address[1]}/h"), timeout=2)
    finally:
        server.shutdown()
        server.server_close()
    assert outcome.status == 307 and not outcome.ok


def test_send_test_is_signed_and_reports_the_status() -> None:
    with receiver() as r:
        outcome = send_test(target(r.url), timeout=2)
    assert outcome.ok and outcome.status == 204
    (d,) = r.delivered
    assert d.verified and d.body["type"] == "webhook.test"


def test_https_certificates_are_verified() -> None:
    """A self-signed certificate is refused (no verify=False anywhere)."""
    import http.server
    import ssl
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        key, cert = Path(tmp, "k.pem"), Path(tmp, "c.pem")
        made = subprocess.run(
            [
                "openssl",
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                str(key),
                "-out",
                str(cert),
                "-days",
                "1",
                "-subj",
                "/CN=127.0.0.1",
            ],
            capture_output=True,
            check=False,
        )
        if made.returncode != 0:
            pytest.skip("no openssl to make a certificate")
        server = http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), http.server.BaseHTTPRequestHandler
        )
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            outcome = send_test(
                target(f"https://127.0.0.1:{server.server_address[1]}/h"), timeout=3
            )
        finally:
            server.shutdown()
            server.server_close()
    assert outcome.status is None and "CERTIFICATE" in outcome.error.upper()


def test_outbox_part_enqueues_for_the_subscribed_targets_only(db: Engine) -> None:
    ringing_only = WebhookTarget("ring", "http://127.0.0.1:9/", frozenset({"call.ringing"}), SECRET)
    part = OutboxPart(lambda: [ringing_only, target()], None, clock=lambda: 5.0)
    with db.begin() as conn:
        part.record(conn, [happened("c1", Transition.RINGING), happened("c1", Transition.ENDED)])
        counts = store.counts(conn)
    assert counts["ring"]["pending"] == 1 and counts["crm"]["pending"] == 2


def test_make_client_follows_no_redirects_and_verifies() -> None:
    with make_client(1.0, 2) as client:
        assert client.follow_redirects is False


@given(
    st.lists(
        st.dictionaries(
            st.sampled_from(["name", "url", "events", "secret", "secret_env", "other"]),
            st.one_of(
                st.text(max_size=30),
                st.lists(st.text(max_size=15), max_size=3),
                st.integers(),
                st.booleans(),
                st.sampled_from([SECRET, "https://x.example/h", "call.ended", "*"]),
            ),
        ),
        max_size=3,
    )
)
def test_parse_targets_never_raises_anything_but_file_format_errors(
    tables: list[dict[str, object]],
) -> None:
    message = ""
    try:
        found = parse_targets(tables, path=CONFIG)
    except FileFormatError as exc:
        message = str(exc)
    else:
        assert len(found) == len(tables)
        return
    assert "\n" not in message and str(CONFIG) in message
    if not any(t.get("name") == SECRET for t in tables):  # a name is shown, a secret not
        assert SECRET not in message


def test_stopping_sends_no_more_of_the_batch_and_releases_its_claims(db: Engine) -> None:
    with receiver(mode="hang", hang_seconds=3.0) as r:
        fill(db, 16, (Transition.RINGING,), now=time.time())
        worker = run_worker(db, [target(r.url)], timeout=1.0, workers=2)  # batches of 8
        wait_for(lambda: r.attempts >= 1)
        started = time.monotonic()
        worker.stop()
        took = time.monotonic() - started
    # Only the two posts in flight finish (by the timeout): not the four rounds of a batch.
    assert took < 2.5
    assert r.attempts <= 4
    with db.connect() as conn:
        rows = store.messages(conn, limit=100)
    assert all(m["state"] == "pending" and m["claimed_by"] is None for m in rows)
