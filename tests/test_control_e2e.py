"""End to end: POST /api/v1/control/{verb} and the CLI against a real daemon and a running
simulated MicroSIP that runs our hooks: a dial's id is the id its call is logged under."""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from microsip_bridge.model import Call, CallState, Direction, Outcome
from microsip_bridge.sim.calls import RemoteAction, RemoteBehaviour
from microsip_bridge.store import repo
from microsip_bridge.store.engine import make_engine
from tests.cli_support import run
from tests.control_support import control_daemon, hooked_folder, serving_simulator

ANSWERS = RemoteBehaviour(RemoteAction.ANSWER, after=0.3, talk=0.5)


def calls_in_store(home: Path) -> dict[str, Call]:
    engine = make_engine(None, home)
    try:
        with engine.connect() as conn:
            return {c.call_id: c for c in repo.list_calls(conn)}
    finally:
        engine.dispose()


def event_names(home: Path, call_id: str) -> list[str]:
    engine = make_engine(None, home)
    try:
        with engine.connect() as conn:
            return [e.event.value for e in repo.call_events(conn, call_id)]
    finally:
        engine.dispose()


def wait_for(predicate: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return hooked_folder(tmp_path / "MicroSIP")


@pytest.mark.slow
def test_a_dial_returns_the_id_its_call_is_logged_under(bridge_home: Path, folder: Path) -> None:
    with (
        serving_simulator(folder, remotes={"5550001": ANSWERS}) as sim,
        control_daemon(bridge_home, folder, control_cooldown=0.0) as (_, api),
    ):
        status, _, answer = api.post("/api/v1/control/dial", {"number": "sip:5550001@pbx"})
        assert status == 202, answer
        call_id = answer["call_id"]
        assert answer["command"] == "5550001@pbx"
        # It is in the log at once, dialing, before MicroSIP's hook has said anything.
        assert calls_in_store(bridge_home)[call_id].direction is Direction.OUTGOING

        def ended() -> bool:
            call = calls_in_store(bridge_home).get(call_id)
            return call is not None and call.state is CallState.ENDED

        wait_for(ended, 30, "the dialled call to end")
        calls = calls_in_store(bridge_home)
        assert list(calls) == [call_id]  # the hook's events joined it: no second call
        call = calls[call_id]
        assert (call.direction, call.number, call.outcome) == (
            Direction.OUTGOING,
            "5550001",
            Outcome.ANSWERED,
        )
        assert event_names(bridge_home, call_id) == ["outgoing", "start", "end"]
        assert len(sim.calls) == 1


@pytest.mark.slow
def test_a_dial_the_simulator_never_places_ends_not_placed(bridge_home: Path, folder: Path) -> None:
    with (
        serving_simulator(folder) as sim,
        control_daemon(bridge_home, folder, dial_timeout=1.5, control_cooldown=0.0) as (_, api),
    ):
        # facts §1.6 6: in single mode, with a call up, MakeCall places no second call.
        ringing = sim.incoming("5559999")
        assert ringing is not None
        status, _, answer = api.post("/api/v1/control/dial", {"number": "5550002"})
        assert status == 202
        call_id = answer["call_id"]

        def closed() -> bool:
            call = calls_in_store(bridge_home).get(call_id)
            return call is not None and call.outcome is Outcome.NOT_PLACED

        wait_for(closed, 20, "the dial to end as not_placed")
        assert not any(c.number == "5550002" for c in sim.calls)


@pytest.mark.slow
def test_a_dropped_dial_is_503_and_its_call_not_placed(bridge_home: Path, folder: Path) -> None:
    with (
        serving_simulator(folder) as sim,
        control_daemon(bridge_home, folder, control_cooldown=0.0) as (_, api),
    ):
        sim.stack_running = False  # facts §1.4: the SIP stack is down, every command answers 1
        try:
            status, _, answer = api.post("/api/v1/control/dial", {"number": "5550003"})
        finally:
            sim.stack_running = True
        assert status == 503, answer
        (call,) = calls_in_store(bridge_home).values()
        assert (call.number, call.outcome) == ("5550003", Outcome.NOT_PLACED)


@pytest.mark.slow
def test_the_other_verbs_reach_the_simulator(bridge_home: Path, folder: Path) -> None:
    with (
        serving_simulator(folder) as sim,
        control_daemon(bridge_home, folder, control_cooldown=0.0) as (_, api),
    ):
        call = sim.incoming("5551111")
        assert call is not None
        assert api.post("/api/v1/control/answer")[0] == 202
        wait_for(lambda: call.state is CallState.CONNECTED, 10, "the answer")
        for path, body in [
            ("dtmf", {"digits": "12#"}),
            ("mute", {"device": "mic", "muted": True}),
            ("mute", {"device": "mic", "muted": True}),  # idempotent: stays muted
            ("hold", None),
            ("message", {"number": "100", "text": "hello"}),
            ("hangup", {"which": "all"}),
        ]:
            status, _, answer = api.post(f"/api/v1/control/{path}", body)
            assert status == 202, (path, answer)
            assert answer["call_id"] is None
        wait_for(lambda: call.state is CallState.ENDED, 10, "the hang-up")
        assert sim.mic_muted
        assert [m.text for m in sim.messages] == ["hello"]


@pytest.mark.slow
def test_refusals_and_limits_over_http(bridge_home: Path, folder: Path) -> None:
    with (
        serving_simulator(folder) as sim,
        control_daemon(bridge_home, folder, control_rate=2.0) as (_, api),
    ):
        for body in ({"number": "/reset"}, {"number": "5551234 /hangupall"}, {"number": ""}):
            status, _, answer = api.post("/api/v1/control/dial", body)
            assert status == 422, (body, answer)
        assert api.post("/api/v1/control/hangup", {"which": "some"})[0] == 422
        assert calls_in_store(bridge_home) == {}
        assert sim.calls == []
        codes = [api.post("/api/v1/control/hold")[0] for _ in range(4)]
        assert 429 in codes
        status, headers, _ = api.post("/api/v1/control/hold")
        assert status == 429 and int(headers["retry-after"]) >= 1


@pytest.mark.slow
def test_no_microsip_is_409(bridge_home: Path, folder: Path) -> None:
    with control_daemon(bridge_home, folder) as (_, api):
        status, _, answer = api.post("/api/v1/control/dial", {"number": "5551234"})
        assert status == 409, answer
        assert calls_in_store(bridge_home) == {}


@pytest.mark.slow
def test_the_cli_dials_through_the_daemon_and_prints_the_id(
    bridge_home: Path, folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with (
        serving_simulator(folder, remotes={"*": ANSWERS}),
        control_daemon(bridge_home, folder, control_cooldown=0.0),
    ):
        code, out, err = run(capsys, "dial", "5550004")
        assert code == 0, err
        call_id = out.strip()
        assert out == call_id + "\n" and call_id in calls_in_store(bridge_home)
        code, out, _ = run(capsys, "hangup", "--calling", "--format", "json")
        assert code == 0
        assert out.strip() == '{"call_id": null, "command": "/hangupcalling"}'
        assert run(capsys, "dial", "/reset")[0] == 2


@pytest.mark.slow
def test_the_cli_without_a_daemon_goes_straight_to_microsip(
    folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ini = str(folder / "microsip.ini")
    with serving_simulator(folder, remotes={"*": ANSWERS}) as sim:
        code, out, err = run(capsys, "dial", "5550005", "--ini", ini)
        assert (code, out) == (0, "")
        assert "no id" in err
        wait_for(lambda: [c.number for c in sim.calls] == ["5550005"], 10, "the call")
        sim.stack_running = False
        try:
            assert run(capsys, "hold", "--ini", ini)[0] == 1  # dropped
        finally:
            sim.stack_running = True
    assert run(capsys, "hold", "--ini", ini)[0] == 3  # not running


@pytest.mark.slow
def test_control_needs_the_token_and_is_described(bridge_home: Path, folder: Path) -> None:
    with control_daemon(bridge_home, folder) as (_, api):
        stranger = type(api)(api.host, api.port, "not-the-token")
        status, headers, _ = stranger.post("/api/v1/control/dial", {"number": "5551234"})
        assert status == 401 and headers["www-authenticate"] == "Bearer"
        assert calls_in_store(bridge_home) == {}
        conn = http.client.HTTPConnection(api.host, api.port, timeout=30)
        try:
            conn.request(
                "GET",
                "/api/v1/openapi.json",
                headers={"Host": f"{api.host}:{api.port}", "Authorization": f"Bearer {api.token}"},
            )
            doc = json.loads(conn.getresponse().read())
        finally:
            conn.close()
    dial = doc["paths"]["/api/v1/control/dial"]["post"]
    assert set(dial["responses"]) >= {"202", "409", "422", "429", "503"}
    body = dial["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    assert set(doc["components"]["schemas"][body]["properties"]) == {"number", "account"}
    verbs = {p.rsplit("/", 1)[1] for p in doc["paths"] if p.startswith("/api/v1/control/")}
    assert verbs == {
        "dial",
        "answer",
        "hangup",
        "dtmf",
        "transfer",
        "hold",
        "mute",
        "message",
        "account",
    }


@pytest.mark.slow
def test_a_dial_to_microsip_319_runs_inside_the_command_and_still_binds(
    bridge_home: Path, tmp_path: Path
) -> None:
    # 3.19 ignores dwData 2 (facts §1.4): the command runs inside the send, hooks and all,
    # so the outgoing event arrives before the 202 does.
    old = hooked_folder(tmp_path / "MicroSIP-3.19", version="3.19.27")
    with (
        serving_simulator(old, version="3.19.27", remotes={"*": ANSWERS}) as sim,
        control_daemon(bridge_home, old, control_cooldown=0.0) as (_, api),
    ):
        status, _, answer = api.post("/api/v1/control/dial", {"number": "5550006"})
        assert status == 202, answer
        assert [c.dw_data for c in sim.commands] == [1]
        wait_for(
            lambda: event_names(bridge_home, answer["call_id"])[:1] == ["outgoing"],
            20,
            "the outgoing event to bind",
        )
        assert list(calls_in_store(bridge_home)) == [answer["call_id"]]
