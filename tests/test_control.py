"""The control parts on their own: payloads, the transport choice, microsip.exe as a real
process, command building and refusals, the cooldown and the rate limit with injected clocks."""

from __future__ import annotations

import json
import os
import signal
import stat
import sys
import time
from collections.abc import Iterable
from pathlib import Path

import pytest

from microsip_bridge.control.service import (
    ControlService,
    RateLimiter,
    build_command,
)
from microsip_bridge.control.transport import Via, choose_transport, ini_version
from microsip_bridge.errors import (
    BridgeError,
    CommandDroppedError,
    MicroSIPNotRunningError,
    RateLimitedError,
    RefusedCommandError,
)
from microsip_bridge.microsip import commands
from microsip_bridge.microsip._win32 import MicroSIPWindow
from microsip_bridge.microsip.commands import Command, Version
from microsip_bridge.microsip.control import DROPPED, TAKEN, CopyDataTransport, ExeTransport
from microsip_bridge.microsip.process import SIM_PID_FILE
from microsip_bridge.model import Call, CallState, Direction
from microsip_bridge.sim.channel import SimulatorTransport

V19, V20, V22 = Version(3, 19, 27), Version(3, 20, 5), Version(3, 22, 3)
WINDOW = MicroSIPWindow(hwnd=0x1234, pid=42, exe=None)


# --- WM_COPYDATA: the payload (facts §1.3, §1.4) ----------------------------------------------


@pytest.mark.parametrize(("version", "dw_data"), [(V22, 2), (V20, 2), (V19, 1), (None, 1)])
def test_copydata_queues_on_320_and_runs_inline_before(
    version: Version | None, dw_data: int
) -> None:
    dw, cb, payload = CopyDataTransport(WINDOW, version).payload(commands.dial("5551234"))
    assert dw == dw_data
    assert payload == "5551234".encode("utf-16-le") + b"\0\0"  # UTF-16LE with its NUL
    assert cb == 2 * len("5551234") + 2


def test_copydata_refuses_a_start_up_switch() -> None:
    # /exit over WM_COPYDATA would be dialled as a number (facts §1.2)
    with pytest.raises(RefusedCommandError):
        CopyDataTransport(WINDOW, V22).payload(commands.exit_())


def test_copydata_refuses_what_the_version_would_misread() -> None:
    with pytest.raises(BridgeError):
        CopyDataTransport(WINDOW, V19).payload(commands.build(commands.Verb.HANGUP_INCOMING))


@pytest.mark.skipif(sys.platform == "win32", reason="the Linux side of the check")
def test_copydata_cannot_be_sent_off_windows() -> None:
    with pytest.raises(BridgeError, match="Windows only"):
        CopyDataTransport(WINDOW, V22).send(commands.dial("5551234"))


# --- microsip.exe, with a real process standing in for it -------------------------------------


def fake_exe(tmp_path: Path, *, sleep: float = 0.0) -> Path:
    """A program that records its argv (and pid) as microsip.exe would receive them, then
    lingers for ``sleep`` seconds (a MicroSIP that starts and keeps running)."""
    exe = tmp_path / "microsip"
    exe.write_text(
        f"#!{sys.executable}\n"
        "import json, os, sys, time\n"
        "from pathlib import Path\n"
        "log = Path(sys.argv[0]).with_name('argv.jsonl')\n"
        "with log.open('a') as fh:\n"
        "    fh.write(json.dumps({'argv': sys.argv[1:], 'pid': os.getpid()}) + '\\n')\n"
        f"time.sleep({sleep})\n"
    )
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    return exe


def recorded(exe: Path) -> list[dict[str, object]]:
    log = exe.with_name("argv.jsonl")
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


@pytest.mark.skipif(sys.platform == "win32", reason="a shebang script stands in for the exe")
def test_the_exe_gets_the_command_as_one_argument(tmp_path: Path) -> None:
    exe = fake_exe(tmp_path)
    transport = ExeTransport(exe)
    assert transport.send(commands.dial("5551234")) == TAKEN
    assert transport.send(commands.message("5551234", "on my way; 5 min")) == TAKEN
    assert transport.send(commands.build(commands.Verb.HANGUP_ALL)) == TAKEN
    assert [r["argv"] for r in recorded(exe)] == [
        ["5551234"],
        ["5551234 on my way; 5 min"],  # one argv item, never through a shell
        ["/hangupall"],
    ]


@pytest.mark.skipif(sys.platform == "win32", reason="a shebang script stands in for the exe")
def test_a_starting_microsip_is_left_running_after_a_bounded_wait(tmp_path: Path) -> None:
    exe = fake_exe(tmp_path, sleep=30)
    started = time.monotonic()
    assert ExeTransport(exe, timeout=0.5).send(commands.dial("5551234")) == TAKEN
    assert time.monotonic() - started < 10
    for _ in range(100):
        if recorded(exe):
            break
        time.sleep(0.05)
    pid = int(recorded(exe)[0]["pid"])  # type: ignore[call-overload]
    try:
        os.kill(pid, 0)  # still running: it is "MicroSIP" now
    finally:
        os.kill(pid, signal.SIGTERM)


def test_the_exe_refuses_what_windows_would_escape(tmp_path: Path) -> None:
    with pytest.raises(RefusedCommandError):
        ExeTransport(tmp_path / "microsip.exe").argv(commands.message("100", 'say "hi"'))


def test_a_missing_exe_means_microsip_cannot_be_reached(tmp_path: Path) -> None:
    with pytest.raises(MicroSIPNotRunningError):
        ExeTransport(tmp_path / "nope.exe").send(commands.dial("5551234"))


# --- the transport choice -----------------------------------------------------------------------


def test_a_running_simulator_in_the_folder_is_chosen(tmp_path: Path) -> None:
    ini = tmp_path / "microsip.ini"
    (tmp_path / SIM_PID_FILE).write_text(str(os.getpid()))
    (tmp_path / "microsip-sim.json").write_text(
        json.dumps({"host": "127.0.0.1", "port": 9, "version": "3.19.27"})
    )
    transport = choose_transport(ini, None)
    assert isinstance(transport, SimulatorTransport)
    assert transport.version == V19
    assert isinstance(choose_transport(ini, None, Via.SIMULATOR), SimulatorTransport)


def test_a_dead_simulator_marker_is_ignored(tmp_path: Path) -> None:
    ini = tmp_path / "microsip.ini"
    (tmp_path / SIM_PID_FILE).write_text("999999999")
    with pytest.raises(MicroSIPNotRunningError):
        choose_transport(ini, None, Via.SIMULATOR)


@pytest.mark.skipif(sys.platform == "win32", reason="no window to find off Windows")
def test_nothing_running_off_windows_is_not_running(tmp_path: Path) -> None:
    with pytest.raises(MicroSIPNotRunningError) as err:
        choose_transport(tmp_path / "microsip.ini", tmp_path / "microsip.exe")
    assert err.value.exit_code == 3
    with pytest.raises(MicroSIPNotRunningError):
        choose_transport(tmp_path / "microsip.ini", None, Via.WINDOW)
    with pytest.raises(MicroSIPNotRunningError):
        choose_transport(None, None)


def test_the_exe_by_choice(tmp_path: Path) -> None:
    ini = tmp_path / "microsip.ini"
    ini.write_text("[Settings]\nversion=3.22.3\n", encoding="utf-8")
    transport = choose_transport(ini, tmp_path / "microsip.exe", "exe")
    assert isinstance(transport, ExeTransport)
    assert transport.version == V22
    with pytest.raises(MicroSIPNotRunningError):
        choose_transport(ini, None, "exe")  # no exe to run
    with pytest.raises(ValueError, match="carrier-pigeon"):
        choose_transport(ini, None, "carrier-pigeon")


def test_the_ini_says_the_version_from_322_on(tmp_path: Path) -> None:
    ini = tmp_path / "microsip.ini"
    assert ini_version(ini) is None
    ini.write_text("[Settings]\naccountId=1\n", encoding="utf-8")
    assert ini_version(ini) is None  # 3.19/3.20 do not write it
    ini.write_text("[Settings]\nversion=3.22.3\n", encoding="utf-8")
    assert ini_version(ini) == V22


# --- building: every command through the library's builder -------------------------------------


@pytest.mark.parametrize(
    ("verb", "args", "text"),
    [
        ("dial", {"number": "sip:1001@pbx"}, "1001@pbx"),
        ("dial", {"number": "5551234", "account": 2}, "/account:2 5551234"),
        ("answer", {}, "/answer"),
        ("hangup", {}, "/hangupall"),
        ("hangup", {"which": "incoming"}, "/hangupincoming"),
        ("hangup", {"which": "calling"}, "/hangupcalling"),
        ("dtmf", {"digits": "12#"}, "/dtmf:12#"),
        ("transfer", {"number": "200"}, "/transfer:200"),
        ("hold", {}, "msip:hold"),
        ("mute", {"device": "mic", "muted": True}, "msip:micmute"),
        ("mute", {"device": "mic", "muted": False}, "msip:micunmute"),
        ("mute", {"device": "speaker", "muted": True}, "msip:speakmute"),
        ("message", {"number": "100", "text": "hello there"}, "100 hello there"),
        ("account", {"index": 3}, "/account:3"),
    ],
)
def test_each_verb_builds_its_command(verb: str, args: dict[str, object], text: str) -> None:
    assert build_command(verb, args, V22).text == text


@pytest.mark.parametrize(
    ("verb", "args"),
    [
        ("dial", {"number": "/reset"}),
        ("dial", {"number": "555\x01"}),  # a control character
        ("dial", {"number": "5551234 /hangupall"}),  # a second command after a space
        ("dial", {"number": "/account:2/password:x"}),
        ("dial", {"number": "sips:1001@pbx"}),
        ("dial", {"number": "5551234", "account": 0}),
        ("dial", {}),
        ("dtmf", {"digits": "12;/answer"}),
        ("transfer", {"number": "200,1"}),
        ("message", {"number": "100", "text": "x /account:2"}),
        ("account", {"index": 0}),
        ("hangup", {"which": "everyone"}),
        ("mute", {"device": "camera", "muted": True}),
        ("shutdown", {}),
    ],
)
def test_refused_input_is_refused_with_exit_2(verb: str, args: dict[str, object]) -> None:
    with pytest.raises(RefusedCommandError) as err:
        build_command(verb, args, V22)
    assert err.value.exit_code == 2


def test_a_command_the_version_lacks_is_refused() -> None:
    with pytest.raises(RefusedCommandError):
        build_command("hangup", {"which": "incoming"}, V20)  # /hangupincoming: 3.22
    with pytest.raises(RefusedCommandError):
        build_command("dial", {"number": "5551234", "account": 2}, V19)  # /account: 3.20+


@pytest.mark.parametrize("version", [V19, V20])
def test_mute_with_a_state_is_refused_where_microsip_only_toggles(version: Version) -> None:
    # facts §1.5: before 3.22 msip:micmute toggles; the state is not reported anywhere.
    with pytest.raises(RefusedCommandError, match="toggle"):
        build_command("mute", {"device": "mic", "muted": True}, version)


# --- the service: serial, with a cooldown before dials ----------------------------------------


class FakeTransport:
    name = "fake"

    def __init__(self, version: Version | None = V22, answer: int = TAKEN) -> None:
        self.version = version
        self.answer = answer
        self.sent: list[str] = []
        self.error: BridgeError | None = None

    def send(self, command: Command) -> int:
        if self.error is not None:
            raise self.error
        self.sent.append(command.text)
        return self.answer


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


class FakeDials:
    def __init__(self) -> None:
        self.opened: list[tuple[str, list[str]]] = []
        self.cancelled: list[str] = []

    def open_dial(self, number: str, reported: Iterable[str], timeout: float | None = None) -> Call:
        self.opened.append((number, list(reported)))
        call_id = f"c{len(self.opened):024x}"
        return Call(
            call_id=call_id,
            direction=Direction.OUTGOING,
            number=number,
            state=CallState.DIALING,
            started_at=0.0,
        )

    def cancel_dial(self, call_id: str) -> Call | None:
        self.cancelled.append(call_id)
        return None


def service(
    transport: FakeTransport,
    clock: FakeClock,
    dials: FakeDials | None = None,
    ini: Path | None = None,
) -> ControlService:
    return ControlService(
        lambda: transport, dials=dials, ini=ini, cooldown=1.0, clock=clock, sleep=clock.sleep
    )


def test_a_dial_right_after_a_hang_up_waits_out_the_cooldown() -> None:
    clock, transport = FakeClock(), FakeTransport()
    control = service(transport, clock)
    control.send("hangup")
    clock.now += 0.25
    control.send("dial", {"number": "5551234"})
    assert clock.slept == [pytest.approx(0.75)]
    assert transport.sent == ["/hangupall", "5551234"]


def test_a_dial_after_the_cooldown_and_other_commands_do_not_wait() -> None:
    clock, transport = FakeClock(), FakeTransport()
    control = service(transport, clock)
    control.send("dial", {"number": "5551234"})  # the first command: nothing to wait for
    control.send("dtmf", {"digits": "1"})
    control.send("hangup")
    clock.now += 5
    control.send("dial", {"number": "5551234"})
    assert clock.slept == []


def test_a_dial_gets_a_call_id_matched_by_the_reported_number(tmp_path: Path) -> None:
    ini = tmp_path / "microsip.ini"
    ini.write_text(
        "[Settings]\naccountId=1\n[Account1]\ndomain=pbx\ndialingPrefix=9\n", encoding="utf-8"
    )
    clock, transport, dials = FakeClock(), FakeTransport(), FakeDials()
    result = service(transport, clock, dials, ini).send("dial", {"number": "tel:5551234"})
    assert result.call_id == f"c{1:024x}"
    assert result.command == "5551234"
    # facts §2.4: the outgoing hook will carry the number after dialingPrefix
    assert dials.opened == [("5551234", ["95551234", "5551234"])]


def test_a_dropped_dial_fails_and_closes_its_call() -> None:
    clock, transport, dials = FakeClock(), FakeTransport(answer=DROPPED), FakeDials()
    with pytest.raises(CommandDroppedError) as err:
        service(transport, clock, dials).send("dial", {"number": "5551234"})
    assert err.value.exit_code == 1
    assert dials.cancelled == [f"c{1:024x}"]


def test_a_dial_that_cannot_be_sent_closes_its_call() -> None:
    clock, transport, dials = FakeClock(), FakeTransport(), FakeDials()
    transport.error = BridgeError("Windows blocked the message: MicroSIP runs as administrator")
    with pytest.raises(BridgeError, match="administrator"):
        service(transport, clock, dials).send("dial", {"number": "5551234"})
    assert dials.cancelled == [f"c{1:024x}"]


def test_refused_input_never_reaches_the_transport_or_the_store() -> None:
    transport, dials = FakeTransport(), FakeDials()

    def no_transport() -> FakeTransport:
        raise AssertionError("looked for MicroSIP")

    control = ControlService(no_transport, dials=dials)  # type: ignore[arg-type]
    with pytest.raises(RefusedCommandError):
        control.send("dial", {"number": "/reset"})
    assert (transport.sent, dials.opened) == ([], [])


def test_a_dial_the_dial_plan_rejects_is_refused(tmp_path: Path) -> None:
    ini = tmp_path / "microsip.ini"
    ini.write_text(
        "[Settings]\naccountId=1\n[Account1]\ndomain=pbx\ndialPlan=1xx\n", encoding="utf-8"
    )
    clock, transport, dials = FakeClock(), FakeTransport(), FakeDials()
    with pytest.raises(RefusedCommandError, match="dialPlan"):
        service(transport, clock, dials, ini).send("dial", {"number": "5551234"})
    assert transport.sent == []


# --- the API's rate limit -------------------------------------------------------------------


def test_the_rate_limit_refuses_past_the_rate_and_says_when_to_retry() -> None:
    clock = FakeClock()
    limiter = RateLimiter(10, clock=clock)
    for _ in range(10):
        limiter.acquire()
    with pytest.raises(RateLimitedError) as err:
        limiter.acquire()
    assert err.value.retry_after == pytest.approx(0.1)
    clock.now += 0.1
    limiter.acquire()
    with pytest.raises(RateLimitedError):
        limiter.acquire()


def test_rate_zero_is_no_limit_and_negative_is_refused() -> None:
    limiter = RateLimiter(0, clock=FakeClock())
    for _ in range(1000):
        limiter.acquire()
    with pytest.raises(BridgeError):
        RateLimiter(-1)
