"""End to end: a real daemon with a `run` rule, a simulated MicroSIP running our hooks through
every event sequence of facts §2.2: "ringing" rules pop exactly once per call (and a
``once`` rule on ringing+answered once per incoming call, auto-answered ones too), hostile
numbers reach the program as one argument and execute nothing, and a rule file with an error
keeps the old rules running (and /status says why)."""

from __future__ import annotations

import http.client
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from microsip_bridge.sim.calls import RemoteAction, RemoteBehaviour
from microsip_bridge.sim.simulator import Simulator
from tests.control_support import Api, control_daemon, hooked_folder, serving_simulator
from tests.daemon_support import stored_calls

ANSWERS = RemoteBehaviour(RemoteAction.ANSWER, after=0.2, talk=0.3)
POPPER = """\
import json, sys
with open(sys.argv[1], "a", encoding="utf-8") as f:
    f.write(json.dumps(sys.argv[2:]) + "\\n")
"""


def rules_toml(script: Path, log: Path, marker: str, *, once: bool = False) -> str:
    def run(marker: str) -> str:
        argv = [
            sys.executable,
            "-I",
            str(script),
            str(log),
            marker,
            "{raw}",
            "{call_id}",
            "{event}",
        ]
        return f"run = [{', '.join(json.dumps(a) for a in argv)}]\n"

    text = '[[rules]]\nname = "pop"\non = ["ringing"]\n' + run(marker)
    if once:
        text += (
            '[[rules]]\nname = "every call"\non = ["ringing", "answered"]\nonce = true\n'
            'direction = "incoming"\n' + run("once")
        )
    return text


def write(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")
    stamp = time.time_ns()
    os.utime(path, ns=(stamp, stamp))


def pops(log: Path, marker: str | None = None) -> list[list[str]]:
    if not log.exists():
        return []
    every = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
    return [p for p in every if marker is None or p[0] == marker]


def wait_for(predicate: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


def get_status(api: Api) -> dict[str, Any]:
    conn = http.client.HTTPConnection(api.host, api.port, timeout=30)
    try:
        conn.request("GET", "/api/v1/status", headers={"Authorization": f"Bearer {api.token}"})
        answer = conn.getresponse()
        assert answer.status == 200
        data: dict[str, Any] = json.loads(answer.read())
        return data
    finally:
        conn.close()


def play_every_sequence(sim: Simulator, hostile: list[str]) -> list[str]:
    """facts §2.2's sequences, one call each; the numbers whose call rings."""
    rang: list[str] = []
    c = sim.incoming("5551001")  # answered
    sim.answer(c)
    sim.hang_up(c)
    rang.append("5551001")
    c = sim.incoming("5551002", auto_answer=True, auto_answer_delay=0)  # auto-answered: no ring
    sim.hang_up(c)
    c = sim.incoming("5551003")  # missed
    sim.caller_cancels(c)
    rang.append("5551003")
    c = sim.incoming("5551004")  # declined
    sim.decline(c)
    rang.append("5551004")
    sim.reject_dnd("5551005")  # rejected at once: incoming only
    c = sim.incoming("5551006")  # answered elsewhere
    sim.answered_elsewhere(c)
    rang.append("5551006")
    a = sim.incoming("5551007")  # call waiting: a second call rings during the first
    sim.answer(a)
    b = sim.incoming("5551008")
    sim.caller_cancels(b)
    sim.hang_up(a)
    rang += ["5551007", "5551008"]
    out = sim.outgoing("5550001")  # outgoing: never rings here
    assert out is not None
    wait_for(lambda: not sim.active_calls(), 20, "the outgoing call to end")
    c = sim.incoming("5551009", auto_answer=True, auto_answer_delay=0.3)  # rings, then answered
    wait_for(lambda: not sim.ringing_incoming(), 20, "the delayed auto-answer")
    sim.hang_up(c)
    rang.append("5551009")
    for number in hostile:
        c = sim.incoming(number)
        sim.caller_cancels(c)
        rang.append(number)
    return rang


@pytest.mark.slow
def test_ringing_rules_pop_once_per_call_and_a_bad_file_keeps_the_old_rules(
    bridge_home: Path, tmp_path: Path
) -> None:
    folder = hooked_folder(tmp_path / "MicroSIP")
    script = tmp_path / "pop.py"
    script.write_text(POPPER, encoding="utf-8")
    log = tmp_path / "pops.jsonl"
    victim = tmp_path / "victim"
    victim.mkdir()
    hostile = [
        f"1;touch${{IFS}}{victim}/semicolon",
        f"$(touch${{IFS}}{victim}/dollar)",
        "a&b|c`id`",
        "'quoted'>x",
    ]
    config = bridge_home / "config.toml"
    write(config, rules_toml(script, log, "v1", once=True))
    with (
        serving_simulator(folder, remotes={"*": ANSWERS}) as sim,
        control_daemon(bridge_home, folder, rules_rate=0.0) as (_, api),
    ):
        assert get_status(api)["rules"]["rules"] == 2
        rang = play_every_sequence(sim, hostile)
        wait_for(lambda: len(pops(log, "v1")) >= len(rang), 60, "the pops")
        wait_for(lambda: len(pops(log, "once")) >= len(rang) + 1, 60, "the once pops")
        time.sleep(1.5)  # anything late would show now
        got = pops(log, "v1")
        assert sorted(p[1] for p in got) == sorted(rang)  # each ringing call, exactly once
        assert len({p[2] for p in got}) == len(got)  # one pop per call id
        stored = {c.call_id: c.number for c in stored_calls(bridge_home) if c.rang}
        assert {p[2]: p[1] for p in got} == stored
        assert {p[3] for p in got} == {"ringing"}
        # once: every incoming call that rang or was answered, once; the auto-answered one
        # (no ring) on its answer.
        every = pops(log, "once")
        assert sorted(p[1] for p in every) == sorted([*rang, "5551002"])
        assert len({p[2] for p in every}) == len(every)
        assert {p[1]: p[3] for p in every}["5551002"] == "answered"
        assert {p[3] for p in every if p[1] != "5551002"} == {"ringing"}
        assert list(victim.iterdir()) == []  # nothing executed

        # A mistake in the file: the old rule goes on, /status says why.
        write(config, rules_toml(script, log, "v2").replace("{event}", "{evnt}"))
        wait_for(lambda: get_status(api)["rules"]["error"], 20, "the error in /status")
        error = get_status(api)["rules"]["error"]
        assert error.startswith(f"{config}, [[rules]] 1 ('pop'), run: item 8: unknown placeholder")
        c = sim.incoming("5552001")
        sim.caller_cancels(c)
        wait_for(lambda: len(pops(log, "v1")) == len(rang) + 1, 30, "the pop by the old rule")
        assert pops(log, "v1")[-1][1] == "5552001"

        # Fixed: the new rule runs, the error is gone.
        write(config, rules_toml(script, log, "v2"))
        wait_for(lambda: get_status(api)["rules"]["error"] is None, 20, "the fix")
        c = sim.incoming("5552002")
        sim.caller_cancels(c)
        wait_for(lambda: len(pops(log, "v2")) == 1, 30, "the pop by the new rule")
        assert pops(log, "v2")[0][1] == "5552002"
        assert len(pops(log, "v1")) == len(rang) + 1  # the old rule is gone
