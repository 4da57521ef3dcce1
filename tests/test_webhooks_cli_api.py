"""`microsip-bridge webhooks` and the /api/v1/webhooks routes, on a real store and daemon."""

from __future__ import annotations

import http.client
import json
import time
from pathlib import Path
from typing import Any

import pytest

from microsip_bridge.model import Transition
from microsip_bridge.store import outbox as store
from microsip_bridge.store.engine import make_engine, upgrade
from microsip_bridge.webhooks.outbox import enqueue
from microsip_bridge.webhooks.payload import message_id
from microsip_bridge.webhooks.targets import WebhookTarget
from tests.cli_support import run
from tests.daemon_support import live_daemon
from tests.test_webhooks import happened
from tests.webhook_support import SECRET, Receiver, closed_port, receiver, webhooks_toml


def seed(home: Path, url: str, calls: int = 2) -> None:
    """Messages in the store's outbox: call c0 delivered, the others dead."""
    engine = make_engine(None, home)
    upgrade(engine)
    t = WebhookTarget("crm", url, frozenset({"*"}), SECRET)
    with engine.begin() as conn:
        for i in range(calls):
            enqueue(conn, happened(f"c{i}", Transition.ENDED), t, now=1000.0)
        rows = store.claim(conn, "w", now=1000.0, lease=60, limit=10, targets=["crm"])
        for row in rows:
            if row.call_id == "c0":
                store.delivered(conn, row.id, "w", now=1001.0, status=204)
            else:
                store.failed(conn, row.id, "w", next_at=0, status=410, error="HTTP 410", dead=True)
    engine.dispose()


# --- the CLI ----------------------------------------------------------------------------------


def test_cli_lists_targets_without_secrets_and_messages(
    bridge_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (bridge_home / "config.toml").write_text(webhooks_toml("https://crm.example/h"), "utf-8")
    seed(bridge_home, "https://crm.example/h", calls=3)
    code, out, err = run(capsys, "webhooks", "list")
    assert code == 0, err
    assert "crm" in out and "https://crm.example/h" in out and "410" in out
    assert SECRET not in out and SECRET[6:] not in out
    code, out, _ = run(capsys, "webhooks", "list", "--state", "dead", "--format", "json")
    data = json.loads(out)
    assert [m["state"] for m in data["messages"]] == ["dead", "dead"]
    assert data["targets"][0]["messages"] == {"pending": 0, "delivered": 1, "dead": 2}
    assert SECRET not in out


def test_cli_retry_and_replay(bridge_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (bridge_home / "config.toml").write_text(webhooks_toml("https://crm.example/h"), "utf-8")
    seed(bridge_home, "https://crm.example/h", calls=3)
    assert run(capsys, "webhooks", "retry", "--target", "crm")[1] == "2 messages due again now\n"
    code, out, err = run(capsys, "webhooks", "replay", "--call", "c0")
    assert (code, out) == (0, "1 message to be sent again\n") and "same" not in out
    assert "keep their webhook-id" in err
    _, out, _ = run(capsys, "webhooks", "list", "--format", "json")
    assert json.loads(out)["totals"] == {"pending": 3, "delivered": 0, "dead": 0}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("retry",), "give one of MESSAGE, --target and --all"),
        (("retry", "999"), "no webhook message 999"),
        (("replay",), "give --call or --since"),
        (("test", "nobody"), "no [[webhooks]] target named 'nobody'"),
        (("list", "--state", "lost"), "'lost' is not one of"),
    ],
)
def test_cli_errors_are_one_line(
    bridge_home: Path, capsys: pytest.CaptureFixture[str], args: tuple[str, ...], message: str
) -> None:
    (bridge_home / "config.toml").write_text(webhooks_toml("https://crm.example/h"), "utf-8")
    seed(bridge_home, "https://crm.example/h")
    code, _, err = run(capsys, "webhooks", *args)
    assert code != 0 and message in err and "Traceback" not in err


def test_cli_bad_webhooks_table_names_the_key(
    bridge_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (bridge_home / "config.toml").write_text(
        webhooks_toml("https://crm.example/h", events='["call.rang"]'), "utf-8"
    )
    code, _, err = run(capsys, "webhooks", "list")
    assert code != 0 and "[[webhooks]] 'crm': events: unknown type 'call.rang'" in err


def test_cli_test_sends_a_signed_message(
    bridge_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with receiver() as r:
        (bridge_home / "config.toml").write_text(webhooks_toml(r.url), "utf-8")
        code, out, _ = run(capsys, "webhooks", "test", "crm")
    assert (code, out) == (0, "crm: HTTP 204: delivered\n")
    assert r.delivered[0].verified and r.delivered[0].body["type"] == "webhook.test"
    (bridge_home / "config.toml").write_text(
        webhooks_toml(f"http://127.0.0.1:{closed_port()}/h"), "utf-8"
    )
    code, out, err = run(capsys, "webhooks", "test", "crm")
    assert code == 1 and "not delivered" in err and "ConnectError" in err


def test_cli_goes_through_a_running_daemon(
    bridge_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with receiver() as r:
        (bridge_home / "config.toml").write_text(webhooks_toml(r.url), "utf-8")
        seed(bridge_home, r.url, calls=2)
        with live_daemon(bridge_home):
            # The daemon's loaded target is used, not the file as it is now.
            (bridge_home / "config.toml").write_text(
                webhooks_toml(f"http://127.0.0.1:{closed_port()}/h"), "utf-8"
            )
            code, out, err = run(capsys, "webhooks", "test", "crm")
            assert (code, out) == (0, "crm: HTTP 204: delivered\n"), err
            code, _, err = run(capsys, "webhooks", "retry", "999")
            assert code != 0 and "no webhook message 999" in err
            code, out, err = run(capsys, "webhooks", "replay", "--call", "c0")
            assert (code, out) == (0, "1 message to be sent again\n"), err
            give_up = time.monotonic() + 20
            while len(r.delivered) < 2:  # the test message, then the replayed one at once
                assert time.monotonic() < give_up, "the replay was not sent"
                time.sleep(0.02)
    assert [d.body["type"] for d in r.delivered] == ["webhook.test", "call.ended"]


# --- the API ----------------------------------------------------------------------------------


def call(
    daemon: Any, home: Path, method: str, path: str, body: object = None, token: bool = True
) -> tuple[int, Any]:
    host, port = daemon.wait_listening()
    conn = http.client.HTTPConnection(host, port, timeout=30)
    headers = {"Host": f"{host}:{port}", "Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {(home / 'token').read_text().strip()}"
    try:
        conn.request(method, path, body=None if body is None else json.dumps(body), headers=headers)
        response = conn.getresponse()
        raw = response.read()
        return response.status, json.loads(raw) if raw else None
    finally:
        conn.close()


def test_api_routes(bridge_home: Path) -> None:
    r = Receiver(mode="500")
    r.up()
    try:
        (bridge_home / "config.toml").write_text(webhooks_toml(r.url), "utf-8")
        seed(bridge_home, r.url, calls=2)
        with live_daemon(bridge_home) as daemon:
            status, data = call(daemon, bridge_home, "GET", "/api/v1/webhooks")
            assert status == 200 and SECRET not in json.dumps(data)
            assert data["targets"] == [
                {
                    "name": "crm",
                    "url": r.url,
                    "events": ["*"],
                    "configured": True,
                    "messages": {"pending": 0, "delivered": 1, "dead": 1},
                }
            ]
            assert call(daemon, bridge_home, "GET", "/api/v1/webhooks", token=False)[0] == 401
            status, data = call(daemon, bridge_home, "GET", "/api/v1/webhooks/messages?state=dead")
            (dead,) = data["messages"]
            assert dead["call_id"] == "c1" and dead["last_status"] == 410
            assert call(daemon, bridge_home, "GET", "/api/v1/webhooks/messages?state=x")[0] == 422
            r.mode = "ok"
            status, data = call(
                daemon, bridge_home, "POST", f"/api/v1/webhooks/messages/{dead['id']}/retry"
            )
            assert (status, data) == (200, {"retried": 1})
            give_up = time.monotonic() + 20
            while not any(d.body["data"]["call_id"] == "c1" for d in r.delivered):
                assert time.monotonic() < give_up, "the retried message was not delivered"
                time.sleep(0.05)
            assert (
                call(daemon, bridge_home, "POST", "/api/v1/webhooks/messages/999/retry")[0] == 404
            )
            status, data = call(
                daemon, bridge_home, "POST", "/api/v1/webhooks/replay", {"call_id": "c0"}
            )
            assert status == 200 and data["replayed"] == 1 and "webhook-id" in data["note"]
            assert call(daemon, bridge_home, "POST", "/api/v1/webhooks/replay", {})[0] == 422
            status, data = call(daemon, bridge_home, "POST", "/api/v1/webhooks/crm/test")
            assert (status, data["ok"], data["status"]) == (200, True, 204)
            assert call(daemon, bridge_home, "POST", "/api/v1/webhooks/nobody/test")[0] == 404
            give_up = time.monotonic() + 20
            while sum(d.body["data"].get("call_id") == "c0" for d in r.delivered) < 1:
                assert time.monotonic() < give_up, "the replayed message was not delivered"
                time.sleep(0.05)
    finally:
        r.down()
    replayed = [d for d in r.delivered if d.body["data"].get("call_id") == "c0"]
    assert all(d.verified for d in r.delivered)
    # A replay keeps the message's webhook-id.
    assert [d.msg_id for d in replayed] == [message_id("crm", "c0", "ended")]


def test_status_counts_pending_and_dead_messages(bridge_home: Path) -> None:
    (bridge_home / "config.toml").write_text(webhooks_toml("https://crm.example/h"), "utf-8")
    seed(bridge_home, "https://crm.example/h", calls=3)  # 1 delivered, 2 dead
    engine = make_engine(None, bridge_home)
    with engine.begin() as conn:
        enqueue(
            conn,
            happened("c9", Transition.RINGING),
            WebhookTarget("gone", "https://gone.example/h", frozenset({"*"}), SECRET),
            now=1000.0,
        )
    engine.dispose()
    with live_daemon(bridge_home) as daemon:
        status, data = call(daemon, bridge_home, "GET", "/api/v1/status")
    assert status == 200 and data["webhooks"] == {"pending": 1, "dead": 2}


def test_a_bad_webhooks_table_stops_the_daemon_with_its_reason(bridge_home: Path) -> None:
    (bridge_home / "config.toml").write_text(webhooks_toml("http://crm.example/h"), "utf-8")
    with pytest.raises(Exception, match="plain http is only allowed"), live_daemon(bridge_home):
        pass


@pytest.mark.parametrize(
    ("setting", "value", "message"),
    [
        ("webhook_workers", 0, "webhook_workers must be 1-1000, not 0"),
        ("webhook_max_attempts", 5000, "webhook_max_attempts must be 1-1000, not 5000"),
        ("webhook_timeout", 0.0, "webhook_timeout must be more than 0"),
        ("webhook_max_age", 0.0, "webhook_max_age must be more than 0"),
    ],
)
def test_webhook_settings_out_of_range_are_refused(
    bridge_home: Path, setting: str, value: object, message: str
) -> None:
    from microsip_bridge.errors import BridgeError
    from microsip_bridge.server.settings import DaemonSettings

    with pytest.raises(BridgeError, match=message):
        DaemonSettings(home=bridge_home, **{setting: value})  # type: ignore[arg-type]
