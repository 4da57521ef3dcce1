"""Rules in the daemon: the watched config.toml, the launcher's limits, real programs given
hostile numbers, notices, and RulesPart on a real store (once per call, live calls only)."""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Connection, Engine

from microsip_bridge.actions.launch import Launcher, RateLimit, run_program
from microsip_bridge.actions.live_config import LiveConfig
from microsip_bridge.actions.notify import (
    NoNotifier,
    Notice,
    ToastNotifier,
    build_notice,
    make_notifier,
    toast_spec,
)
from microsip_bridge.actions.rules_part import RulesPart, is_live
from microsip_bridge.actions.service import Actions
from microsip_bridge.calls.recorder import Recorder
from microsip_bridge.calls.state import CallTracker
from microsip_bridge.calls.transitions import Happened
from microsip_bridge.model import SOURCE_HISTORY, Call, CallState, Direction, Event, Transition
from microsip_bridge.numbers import Normaliser
from microsip_bridge.webhooks.targets import WebhookTarget
from tests.test_store import T0, db, fresh, pg_admin, rec  # noqa: F401 - fixtures
from tests.test_transitions import SEQUENCES

POP = """
[[rules]]
name = "pop"
on = ["ringing"]
open = "https://crm.example/?q={e164}"
run = ["logger", "{raw}"]
notify = true
"""
HOOK = """
[[webhooks]]
name = "crm"
url = "https://crm.example/hook"
events = ["*"]
secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

[[rules]]
name = "to crm"
on = ["ringing", "ended"]
webhook = "crm"
"""


def write(path: Path, text: str) -> None:
    # A new size or time for every version, as an editor's save gives.
    path.write_text(text, encoding="utf-8")
    stamp = time.time_ns() + len(text)
    os.utime(path, ns=(stamp, stamp))


# --- LiveConfig -------------------------------------------------------------------------------


def test_live_config_reloads_and_keeps_the_last_good_rules(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "config.toml"
    live = LiveConfig(path)
    assert live.rules == () and live.error is None and live.loaded_at is not None
    write(path, POP)
    assert live.poll()
    assert [r.name for r in live.rules] == ["pop"]
    good = live.rules
    caplog.set_level(logging.INFO, "microsip_bridge.rules")
    write(path, POP.replace("{e164}", "{e165}"))
    assert not live.poll()
    assert live.rules is good  # the previous rules still run
    assert live.error is not None
    assert live.error.startswith(f"{path}, [[rules]] 1 ('pop'), open: unknown placeholder")
    assert "keeping the previous rules" in caplog.text
    assert live.status()["error"] == live.error
    write(path, POP + HOOK)
    assert live.poll()
    assert live.error is None
    assert [r.name for r in live.rules] == ["pop", "to crm"]
    assert [t.name for t in live.targets] == ["crm"]


def test_live_config_bad_toml_and_unknown_webhook(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    write(path, HOOK)
    live = LiveConfig(path)
    assert len(live.rules) == 1
    write(path, HOOK.replace('webhook = "crm"', 'webhook = "crn"'))
    live.poll()
    assert live.error is not None and "no [[webhooks]] target is named 'crn'" in live.error
    assert len(live.rules) == 1
    write(path, "[[rules]\n")
    live.poll()
    assert live.error is not None and "not valid TOML" in live.error
    assert len(live.targets) == 1


def test_a_bad_file_at_start_runs_no_rules_and_says_why(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    write(path, '[[rules]]\nname = "x"\non = ["ringing"]\n')
    live = LiveConfig(path)
    assert live.rules == ()
    assert live.error is not None and "does nothing" in live.error
    assert live.loaded_at is None


def test_touching_the_file_does_not_reload_and_settings_need_a_restart(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "config.toml"
    write(path, "backups = 3\n" + POP)
    live = LiveConfig(path)
    write(path, "backups = 3\n" + POP)  # same content, new time
    assert not live.poll()
    assert live.reloads == 1
    caplog.set_level(logging.INFO, "microsip_bridge.rules")
    write(path, "backups = 4\n" + POP)
    assert live.poll()
    assert "settings changed (backups)" in caplog.text
    assert "restart" in caplog.text


def test_the_watcher_thread_picks_up_a_change(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    live = LiveConfig(path, interval=0.05)
    live.start()
    try:
        write(path, POP)
        deadline = time.monotonic() + 10
        while not live.rules and time.monotonic() < deadline:
            time.sleep(0.02)
        assert [r.name for r in live.rules] == ["pop"]
    finally:
        live.stop()


# --- the launcher -----------------------------------------------------------------------------


def test_rate_limit_per_minute() -> None:
    now = [0.0]
    limit = RateLimit(3, clock=lambda: now[0])
    assert [limit.allow() for _ in range(4)] == [True, True, True, False]
    now[0] = 59.9
    assert not limit.allow()
    now[0] = 60.0
    assert limit.allow()
    assert all(RateLimit(0).allow() for _ in range(1000))


def test_launcher_limits_each_rule_and_all_rules() -> None:
    now = [0.0]
    launcher = Launcher(rule_rate=2, global_rate=3, clock=lambda: now[0])
    assert [launcher.allow("a") for _ in range(3)] == [True, True, False]
    assert launcher.allow("b")
    assert not launcher.allow("c")  # the global cap
    now[0] = 61
    assert launcher.allow("a")


def test_the_pool_is_bounded_and_never_blocks_the_caller() -> None:
    gate = threading.Event()
    started: list[tuple[str, ...]] = []

    def slow(argv: tuple[str, ...], timeout: float) -> int:
        started.append(argv)
        gate.wait(10)
        return 0

    launcher = Launcher(rule_rate=0, workers=2, max_queued=3, runner=slow)
    try:
        t0 = time.perf_counter()
        accepted = [launcher.run(("p", str(i))) for i in range(100)]
        assert time.perf_counter() - t0 < 1
        assert accepted.count(True) == 5
        assert launcher.dropped == 95
        time.sleep(0.2)
        assert len(started) == 2  # no more at once than the workers
        gate.set()
        assert launcher.wait()
        assert len(started) == 5
    finally:
        gate.set()
        launcher.stop()


HOSTILE = [
    "1; touch {out}/semicolon",
    "$(touch {out}/dollar)",
    "`touch {out}/backtick`",
    "a & touch {out}/amp",
    "x | touch {out}/pipe",
    "\"quoted\" 'single' {out}/x",
    "%PATH% && touch {out}/percent",
    "line\nbreak",
]


def test_run_passes_hostile_numbers_as_one_argument_and_executes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    script = tmp_path / "argv.py"
    script.write_text(
        "import json, sys\n"
        "with open(sys.argv[1], 'a', encoding='utf-8') as f:\n"
        "    f.write(json.dumps(sys.argv[2:]) + '\\n')\n",
        encoding="utf-8",
    )
    log = tmp_path / "argv.jsonl"
    numbers = [h.format(out=out) for h in HOSTILE]
    for number in numbers:
        assert run_program((sys.executable, "-I", str(script), str(log), number, "end")) == 0
    got = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
    assert got == [[n, "end"] for n in numbers]
    assert list(out.iterdir()) == []


def test_run_kills_a_program_past_its_timeout(tmp_path: Path) -> None:
    t0 = time.perf_counter()
    code = run_program((sys.executable, "-c", "import time; time.sleep(30)"), timeout=0.5)
    assert code is None
    assert time.perf_counter() - t0 < 10


def test_run_a_missing_program_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    assert run_program(("/nonexistent/program",)) is None
    assert "cannot run /nonexistent/program" in caplog.text


# --- notices ----------------------------------------------------------------------------------


def test_notice_and_toast_for_a_ringing_known_caller() -> None:
    notice = build_notice(
        call_id="c1",
        name="Ann Lee",
        number="+442079460000",
        direction="incoming",
        event="ringing",
        open_url="https://crm/x",
    )
    assert notice.title == "Incoming call: Ann Lee"
    assert notice.body == "+442079460000"
    spec = toast_spec(notice)
    assert spec.lines == ("Incoming call: Ann Lee", "+442079460000")
    assert spec.buttons == (("Answer", "answer"), ("Open", "open"))


def test_toast_for_a_missed_unknown_caller_has_no_answer() -> None:
    notice = build_notice(
        call_id="c1", name="", number="5551234", direction="incoming", event="missed", open_url=""
    )
    assert notice.title == "Missed call: 5551234"
    spec = toast_spec(notice)
    assert spec.lines == ("Missed call: 5551234",)
    assert spec.buttons == ()


def test_toast_buttons_answer_and_open() -> None:
    answered: list[str] = []
    opened: list[str] = []
    toaster = ToastNotifier(lambda: answered.append("answer"), opened.append)
    notice = Notice("c1", "Incoming call: 1", "", "https://crm/1", True)
    toaster.on_button(notice, "answer")
    toaster.on_button(notice, "open")
    assert answered == ["answer"] and opened == ["https://crm/1"]

    def broken() -> None:
        raise RuntimeError("no MicroSIP")

    ToastNotifier(broken, opened.append).on_button(notice, "answer")  # logged, not raised


@pytest.mark.skipif(sys.platform == "win32", reason="no toasts elsewhere")
def test_no_notification_service_is_a_logged_no_op(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "microsip_bridge.notify")
    notifier = make_notifier(lambda: None, lambda url: None)
    assert isinstance(notifier, NoNotifier)
    notice = Notice("c1", "Incoming call: 1", "", "", True)
    notifier.show(notice)
    notifier.show(notice)
    assert caplog.text.count("no notification service") == 1
    assert notifier.shown == [notice, notice]


# --- RulesPart on a real store ----------------------------------------------------------------


class Fakes:
    """A launcher whose side effects are recorded, and an outbox that records its rows."""

    def __init__(self) -> None:
        self.opened: list[str] = []
        self.ran: list[tuple[str, ...]] = []
        self.notifier = NoNotifier()
        self.enqueued: list[tuple[str, str, str]] = []
        self.launcher = Launcher(
            rule_rate=0,
            opener=self.opened.append,
            runner=lambda argv, timeout: self.ran.append(argv) or 0,
            notifier=self.notifier,
        )

    def enqueue(
        self, conn: Connection, happened: Happened, target: WebhookTarget, *, now: float
    ) -> bool:
        assert conn.in_transaction()
        self.enqueued.append((happened.call.call_id, happened.transition.value, target.name))
        return True


def rules_part(tmp_path: Path, text: str, fakes: Fakes) -> RulesPart:
    path = tmp_path / "config.toml"
    write(path, text)
    return RulesPart(
        LiveConfig(path), fakes.launcher, normalise=Normaliser("US"), enqueue=fakes.enqueue
    )


def recorder(engine: Engine, part: RulesPart, clock: list[float]) -> Recorder:
    actions = Actions(Normaliser("US"), [part])
    r = Recorder(engine, CallTracker(), clock=lambda: clock[0], observer=actions)
    r.load()
    return r


@pytest.mark.parametrize("name", list(SEQUENCES))
def test_ringing_rules_pop_once_per_call_for_every_sequence(
    db: Engine,  # noqa: F811
    tmp_path: Path,
    name: str,
) -> None:
    # facts §2.2: each sequence, event by event, then all again; a ringing rule pops once for
    # the sequences that ring and never for the others (auto-answer without delay, outgoing).
    events, expected = SEQUENCES[name]
    fakes = Fakes()
    part = rules_part(tmp_path, POP + HOOK, fakes)
    clock = [T0]
    r = recorder(db, part, clock)
    recs = [rec(f"u{i}", e, "2125550100", ts=T0 + i) for i, e in enumerate(events)]
    for one in recs:
        clock[0] = one.ts + 0.1
        r.write([one])
    r.write(recs)
    assert fakes.launcher.wait()
    rings = Transition.RINGING in expected
    assert fakes.ran == ([("logger", "2125550100")] if rings else [])
    assert fakes.opened == (["https://crm.example/?q=%2B12125550100"] if rings else [])
    assert len(fakes.notifier.shown) == int(rings)
    webhooks = [t for _, t, _ in fakes.enqueued]
    assert webhooks == [t.value for t in expected if t.value in ("ringing", "ended")]
    assert len({c for c, _, _ in fakes.enqueued}) == 1


def test_old_events_from_the_spool_pop_nothing_but_still_queue_webhooks(
    db: Engine,  # noqa: F811
    tmp_path: Path,
) -> None:
    fakes = Fakes()
    part = rules_part(tmp_path, POP + HOOK, fakes)
    clock = [T0 + 61]  # the daemon takes the events a minute after the hook fired
    r = recorder(db, part, clock)
    r.write([rec("a", Event.INCOMING, "2125550100"), rec("b", Event.RING, "2125550100")])
    assert fakes.launcher.wait()
    assert fakes.ran == [] and fakes.opened == []
    assert part.skipped_old == 1
    assert [t for _, t, _ in fakes.enqueued] == ["ringing"]
    clock[0] = T0 + 59
    r.write([rec("c", Event.INCOMING, "2125550111", ts=T0), rec("d", Event.RING, "2125550111")])
    assert fakes.launcher.wait()
    assert fakes.ran == [("logger", "2125550111")]


def make_call(**kw: Any) -> Call:
    values: dict[str, Any] = {
        "call_id": "c",
        "direction": Direction.INCOMING,
        "number": "1",
        "state": CallState.RINGING,
        "started_at": T0,
        "updated_at": T0,
    }
    return Call(**{**values, **kw})


def test_is_live() -> None:
    call = make_call()
    assert is_live(Happened(call, Transition.RINGING, T0 + 60))
    assert not is_live(Happened(call, Transition.RINGING, T0 + 60.5))
    imported = make_call(state=CallState.ENDED, source=SOURCE_HISTORY)
    assert not is_live(Happened(imported, Transition.ENDED, T0))


def test_a_rule_over_its_rate_is_skipped(
    db: Engine,  # noqa: F811
    tmp_path: Path,
) -> None:
    fakes = Fakes()
    fakes.launcher.rule_rate = 2
    part = rules_part(tmp_path, POP, fakes)
    clock = [T0]
    r = recorder(db, part, clock)
    for i in range(4):
        clock[0] = T0 + i + 0.1
        r.write([rec(f"i{i}", Event.INCOMING, f"212555010{i}", ts=T0 + i)])
        r.write([rec(f"r{i}", Event.RING, f"212555010{i}", ts=T0 + i)])
    assert fakes.launcher.wait()
    assert [argv[1] for argv in fakes.ran] == ["2125550100", "2125550101"]


def test_a_rule_changed_while_running_applies_to_the_next_call(
    db: Engine,  # noqa: F811
    tmp_path: Path,
) -> None:
    fakes = Fakes()
    part = rules_part(tmp_path, POP, fakes)
    clock = [T0 + 0.1]
    r = recorder(db, part, clock)
    r.write([rec("i1", Event.INCOMING, "2125550100"), rec("r1", Event.RING, "2125550100")])
    write(part.config.path, POP.replace('["logger", "{raw}"]', '["logger2", "{digits}"]'))
    part.config.poll()
    r.write([rec("i2", Event.INCOMING, "2125550199"), rec("r2", Event.RING, "2125550199")])
    write(part.config.path, POP.replace("{raw}", "{bad}"))
    part.config.poll()
    r.write([rec("i3", Event.INCOMING, "2125550177"), rec("r3", Event.RING, "2125550177")])
    assert fakes.launcher.wait()
    assert fakes.ran == [
        ("logger", "2125550100"),
        ("logger2", "12125550199"),
        ("logger2", "12125550177"),  # the bad file kept the previous rule
    ]


def test_a_rule_with_a_webhook_but_no_outbox_is_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "config.toml"
    write(path, HOOK)
    part = RulesPart(LiveConfig(path), Launcher(rule_rate=0), normalise=Normaliser())
    call = make_call(rang=True)
    happened: Sequence[Happened] = [Happened(call, Transition.RINGING, T0)]
    conn: Any = None
    part.record(conn, happened)
    assert "webhook 'crm' is not available" in caplog.text


def test_the_notices_answer_button_answers_through_the_daemons_control(
    bridge_home: Path, tmp_path: Path
) -> None:
    from microsip_bridge.server.app import create_app
    from microsip_bridge.server.settings import DaemonSettings
    from microsip_bridge.sim.folder import create_folder
    from tests.control_support import serving_simulator

    folder = create_folder(tmp_path / "MicroSIP", domain="pbx.example.invalid").path
    settings = DaemonSettings(
        home=bridge_home,
        port=5797,
        ini=folder / "microsip.ini",
        control_transport="simulator",
        control_cooldown=0.0,
    )
    app = create_app(settings)
    actions = app.state.actions
    assert actions.rules is not None
    assert actions.rules.dashboard == "http://127.0.0.1:5797/"
    with serving_simulator(folder) as sim:
        sim.incoming("5551234")
        assert len(sim.ringing_incoming()) == 1
        toaster = ToastNotifier(lambda: actions.control("answer"), lambda url: None)
        toaster.on_button(Notice("c1", "Incoming call: 5551234", "", "", True), "answer")
        assert sim.ringing_incoming() == []
        assert [c.number for c in sim.active_calls()] == ["5551234"]
    app.state.engine.dispose()


def test_open_url_uses_the_shell_on_windows_and_webbrowser_elsewhere(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import webbrowser

    from microsip_bridge.actions import launch

    started: list[str] = []
    browsed: list[str] = []
    monkeypatch.setattr(os, "startfile", started.append, raising=False)
    monkeypatch.setattr(webbrowser, "open", lambda url: browsed.append(url) or False)
    monkeypatch.setattr(sys, "platform", "win32")
    launch.open_url("https://crm.example/?q=1")
    assert (started, browsed) == (["https://crm.example/?q=1"], [])
    monkeypatch.setattr(sys, "platform", "linux")
    launch.open_url("https://crm.example/?q=2")
    assert browsed == ["https://crm.example/?q=2"]
    assert "no browser could open the page (https://crm.example/)" in caplog.text
    assert "q=2" not in caplog.text


def test_a_failing_action_is_logged_and_the_pool_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    def broken(url: str) -> None:
        raise RuntimeError("no display")

    opened: list[str] = []
    launcher = Launcher(rule_rate=0, opener=broken)
    try:
        assert launcher.open("https://a/?q=5551234")
        assert launcher.wait()
        launcher.opener = opened.append
        assert launcher.open("https://b/")
        assert launcher.wait()
    finally:
        launcher.stop()
    assert opened == ["https://b/"]
    assert "rule action failed: open https://a/" in caplog.text
    assert "5551234" not in caplog.text


ONCE = """
[[rules]]
name = "pop once"
on = ["ringing", "answered"]
once = true
direction = "incoming"
run = ["logger", "{event}"]
"""


@pytest.mark.parametrize("name", list(SEQUENCES))
def test_once_pops_every_incoming_call_once_auto_answered_or_not(
    db: Engine,  # noqa: F811
    tmp_path: Path,
    name: str,
) -> None:
    # on = ["ringing", "answered"] with once: a call that rings pops on the ring and not again
    # when answered; one auto-answered without delay (no ring, facts §2.2) pops on the answer.
    events, expected = SEQUENCES[name]
    fakes = Fakes()
    part = rules_part(tmp_path, ONCE, fakes)
    clock = [T0]
    r = recorder(db, part, clock)
    recs = [rec(f"u{i}", e, "2125550100", ts=T0 + i) for i, e in enumerate(events)]
    for one in recs:
        clock[0] = one.ts + 0.1
        r.write([one])
    r.write(recs)
    assert fakes.launcher.wait()
    if Transition.INCOMING not in expected:
        assert fakes.ran == []
    elif Transition.RINGING in expected:
        assert fakes.ran == [("logger", "ringing")]
    else:
        assert fakes.ran == [("logger", "answered")]


def test_once_in_one_batch_fires_for_the_first_event(
    db: Engine,  # noqa: F811
    tmp_path: Path,
) -> None:
    fakes = Fakes()
    part = rules_part(tmp_path, ONCE, fakes)
    clock = [T0 + 3.1]
    r = recorder(db, part, clock)
    events = [Event.INCOMING, Event.RING, Event.ANSWER, Event.START]
    r.write([rec(f"b{i}", e, "2125550100", ts=T0 + i) for i, e in enumerate(events)])
    assert fakes.launcher.wait()
    assert fakes.ran == [("logger", "ringing")]
