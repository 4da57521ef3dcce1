"""The MicroSIP simulator: hook order, RunCmd fidelity, [Calls] writes, commands, scenarios, CLI."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from microsip_bridge.errors import BridgeError, CommandError, FileFormatError, NotFoundError
from microsip_bridge.hook import join_number
from microsip_bridge.microsip.contact import Contact
from microsip_bridge.microsip.contacts_xml import read_contacts
from microsip_bridge.microsip.history import CallType, parse_entry, read_history
from microsip_bridge.microsip.hook_keys import (
    HOOK_KEYS,
    HookState,
    SavedHooks,
    hooks_status,
    install_hooks,
)
from microsip_bridge.microsip.inifile import IniDocument, IniEncoding
from microsip_bridge.microsip.process import SIM_PID_FILE, microsip_running
from microsip_bridge.model import CallState, Direction, Event, Outcome
from microsip_bridge.sim import (
    CommandChannel,
    HangupBy,
    RemoteAction,
    RemoteBehaviour,
    SimCall,
    Simulator,
    SimulatorError,
    VirtualClock,
    create_folder,
    load_scenario,
    open_folder,
    request_close,
    run_scenario,
    send_command,
)
from microsip_bridge.sim.channel import forward_command_line
from microsip_bridge.sim.folder import SETTINGS_KEYS, SimFolder
from microsip_bridge.sim.scenario import (
    Scenario,
    Step,
    StepKind,
    parse_call_spec,
    parse_scenario,
    steps_from_specs,
)

SCENARIOS = Path(__file__).resolve().parent / "data" / "scenarios"

# A hook that appends its argv, and the newest [Calls] entry at the moment it runs, to a log: the
# standard library only (-I -S), so it starts fast.
RECORDER = """#!{python} -IS
import json, sys
LOG = {log!r}
INI = {ini!r}
SLEEP = {sleep!r}
EXIT = {exit!r}


def latest():
    try:
        text = open(INI, "rb").read().decode("utf-16")
    except OSError:
        return None
    section, last, calls = None, None, {{}}
    for line in text.splitlines():
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, sep, value = line.partition("=")
        if not sep:
            continue
        if section == "Settings" and key == "callsLastKey":
            last = value
        elif section == "Calls":
            calls[key] = value
    return None if last is None else calls.get(last)


with open(LOG, "a", encoding="utf-8") as fh:
    fh.write(json.dumps({{"argv": sys.argv[1:], "latest": latest()}}) + "\\n")
if SLEEP:
    import time
    time.sleep(SLEEP)
sys.exit(EXIT)
"""


def write_recorder(
    path: Path, log: Path, ini: Path, *, sleep: float = 0.0, exit_code: int = 0
) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        RECORDER.format(
            python=sys.executable, log=str(log), ini=str(ini), sleep=sleep, exit=exit_code
        ),
        encoding="utf-8",
    )
    path.chmod(0o755)
    return path


def read_log(log: Path) -> list[dict[str, object]]:
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text("utf-8").splitlines()]


def argvs(log: Path) -> list[list[str]]:
    return [list(map(str, entry["argv"])) for entry in read_log(log)]  # type: ignore[call-overload]


def set_settings(folder: SimFolder, **values: str) -> None:
    doc = IniDocument.load(folder.ini)
    for key, value in values.items():
        doc.set("Settings", key, value)
    doc.save(backups=0)


class Rig:
    """A simulator folder with the recording hook installed on all eight keys."""

    def __init__(self, root: Path, contacts: list[Contact] | None = None) -> None:
        self.folder = create_folder(root / "MicroSIP", contacts=contacts or [])
        self.log = root / "hooks.log"
        self.hook = write_recorder(root / "bin" / "record-hook", self.log, self.folder.ini)
        doc = IniDocument.load(self.folder.ini)
        install_hooks(doc, self.hook, SavedHooks(root / "saved-hooks.json"))
        doc.save(backups=0)

    def simulator(self, **kwargs: object) -> Simulator:
        options: dict[str, object] = {"clock": VirtualClock(), "hook_timeout": 20.0}
        options.update(kwargs)
        return Simulator(self.folder, **options)  # type: ignore[arg-type]

    def events(self) -> list[list[str]]:
        return argvs(self.log)

    def latest_at(self, event: str) -> list[str | None]:
        return [e["latest"] for e in read_log(self.log) if e["argv"][0] == event]  # type: ignore[index,misc]

    def history(self) -> list[tuple[int, str, str, CallType, int, str]]:
        doc = IniDocument.load(self.folder.ini)
        return [
            (e.key, e.number, e.name, e.type, e.duration, e.info) for e in read_history(doc).entries
        ]


@pytest.fixture
def rig(tmp_path: Path) -> Rig:
    return Rig(tmp_path)


# --- the folder -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sample",
    ["data/ini/no-calls.microsip.ini", "corpus/ini/real-eltonwillian-no-calls.microsip.ini"],
    indirect=True,
)
def test_created_ini_has_microsips_encoding_and_key_list(tmp_path: Path, sample: Path) -> None:
    folder = create_folder(tmp_path / "ms", domain="pbx.example.invalid")
    raw = folder.ini.read_bytes()
    assert raw.startswith(b"\xff\xfe")  # facts §3.2: UTF-16LE with a BOM
    text = raw[2:].decode("utf-16-le")
    assert text.endswith("\r\n") and "\n" not in text.replace("\r\n", "")  # CRLF only
    doc = IniDocument.load(folder.ini)
    assert doc.encoding is IniEncoding.UTF16LE
    # The [Settings] keys and their order are those MicroSIP wrote in a file without calls,
    # plus the version= line every 3.22 start writes (facts §3.2).
    real = IniDocument.load(sample)
    assert doc.keys("Settings") == [*real.keys("Settings"), "version"]
    assert list(SETTINGS_KEYS) == real.keys("Settings")
    assert doc.get("Settings", "version") == "3.22.3"
    assert doc.get("Settings", "accountId") == "1"
    assert doc.get("Settings", "callsLastKey") is None  # absent means -1 (facts §3.4)
    for key in HOOK_KEYS.values():
        assert doc.get_raw("Settings", key) == ""
    assert doc.get("Account1", "domain") == "pbx.example.invalid"
    history = read_history(doc)
    assert history.entries == () and history.last_key == -1
    assert all(s.state is HookState.MISSING for s in hooks_status(doc))
    assert read_contacts(folder.contacts).contacts == []


def test_folder_keeps_contacts_and_refuses_to_overwrite(tmp_path: Path) -> None:
    jane = Contact(name="Jane Roe", number="5551234")
    folder = create_folder(tmp_path / "ms", contacts=[jane])
    assert [c.name for c in read_contacts(folder.contacts).contacts] == ["Jane Roe"]
    with pytest.raises(BridgeError, match=r"already holds a microsip\.ini"):
        create_folder(folder.path)
    create_folder(folder.path, overwrite=True, version="3.20.5")
    assert IniDocument.load(folder.ini).get("Settings", "version") is None  # 3.20 writes none
    with pytest.raises(NotFoundError, match=r"no microsip\.ini"):
        open_folder(tmp_path)
    with pytest.raises(BridgeError, match="domain"):
        create_folder(tmp_path / "other", domain=" ")


def test_running_marker_makes_the_bridge_refuse_ini_writes(rig: Rig) -> None:
    marker = rig.folder.path / SIM_PID_FILE
    assert microsip_running(rig.folder.ini, windows=[]) is False
    with rig.simulator():
        assert marker.read_text("ascii").strip().isdigit()
        assert microsip_running(rig.folder.ini, windows=[]) is True
        doc = IniDocument.load(rig.folder.ini)
        doc.set("Settings", "DND", "1")
        with pytest.raises(BridgeError, match="MicroSIP is running"):
            doc.save(microsip_running=microsip_running(rig.folder.ini, windows=[]))
    assert not marker.exists()
    assert microsip_running(rig.folder.ini, windows=[]) is False


def test_a_second_simulator_on_the_same_folder_is_refused(rig: Rig) -> None:
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (rig.folder.path / SIM_PID_FILE).write_text(f"{other.pid}\n", "ascii")
        with pytest.raises(BridgeError, match=f"pid {other.pid}"):
            rig.simulator().start()
        assert (rig.folder.path / SIM_PID_FILE).read_text("ascii").strip() == str(other.pid)
    finally:
        other.kill()
        other.wait()


@pytest.mark.parametrize(
    "sample",
    ["data/ini/history-3.21.microsip.ini", "corpus/ini/real-sasamosenko-3.2x.microsip.ini"],
    indirect=True,
)
def test_start_writes_version_and_only_its_own_keys(tmp_path: Path, sample: Path) -> None:
    # A MicroSIP 3.2x ini with its calls in slots 0 to n-1: the simulator adds its entry and
    # callsLastKey and leaves every other line as it was (WritePrivateProfileString touches one
    # key).
    folder = tmp_path / "ms"
    folder.mkdir()
    shutil.copy(sample, folder / "microsip.ini")
    before = IniDocument.load(folder / "microsip.ini").text().splitlines()
    n = len(read_history(IniDocument.load(sample)).entries)
    with Simulator(folder, clock=VirtualClock()) as sim:
        call = sim.incoming("5551234", "Jane")
        sim.caller_cancels(call)
    after = IniDocument.load(folder / "microsip.ini")
    history = read_history(after)
    assert history.last_key == n and len(history.entries) == n + 1
    assert history.latest is not None and history.latest.info == "Missed Call"
    changed = set(after.text().splitlines()) - set(before)
    assert changed == {
        f"callsLastKey={n}",
        f"{n}=" + "5551234;Jane;2;1750000000;0;Missed Call",
        "version=3.22.3",
    }


def test_the_ring_buffer_wraps_through_the_library(rig: Rig) -> None:
    set_settings(rig.folder, callsLastKey="999")
    with rig.simulator(run_hooks=False) as sim:
        call = sim.incoming("5551234")
        sim.caller_cancels(call)
    assert call.key == 0  # facts §5: after 999 comes 0
    assert IniDocument.load(rig.folder.ini).get("Settings", "callsLastKey") == "0"


# --- the event sequences of facts §2.2 ------------------------------------------------------------


def _answered(sim: Simulator) -> SimCall:
    call = sim.incoming("5551234", "Jane")
    sim.clock.sleep(2)
    sim.answer()
    sim.clock.sleep(5)
    return sim.remote_hangs_up(call)


def _answered_video(sim: Simulator) -> SimCall:
    call = sim.incoming("5551234", video=True)
    sim.answer(call)
    sim.clock.sleep(1)
    return sim.hang_up(call) or call


def _auto_answered(sim: Simulator) -> SimCall:
    call = sim.incoming("5551234", auto_answer=True)
    sim.clock.sleep(4)
    return sim.remote_hangs_up(call)


def _auto_answered_after_delay(sim: Simulator) -> SimCall:
    call = sim.incoming("5551234", auto_answer=True, auto_answer_delay=2)
    sim.run()
    sim.clock.sleep(1)
    return sim.remote_hangs_up(call)


def _missed(sim: Simulator) -> SimCall:
    call = sim.incoming("5551234")
    sim.clock.sleep(8)
    return sim.caller_cancels(call)


def _declined(sim: Simulator) -> SimCall:
    call = sim.incoming("5551234")
    sim.clock.sleep(1)
    sim.decline()
    return call


def _hung_up_while_ringing(sim: Simulator) -> SimCall:
    call = sim.incoming("5551234")
    sim.hangup_incoming()
    return call


def _elsewhere(sim: Simulator) -> SimCall:
    return sim.answered_elsewhere(sim.incoming("5551234"))


def _dnd(sim: Simulator) -> SimCall:
    return sim.reject_dnd("5551234", "Jane")


def _outgoing_answered(sim: Simulator) -> SimCall:
    call = sim.outgoing("5550001", remote=RemoteBehaviour(after=3, talk=7))
    sim.run()
    assert call is not None
    return call


def _outgoing_busy(sim: Simulator) -> SimCall:
    call = sim.outgoing("5550001", remote=RemoteBehaviour.manual())
    assert call is not None
    return sim.remote_busy(call)


def _outgoing_declined_603(sim: Simulator) -> SimCall:
    call = sim.outgoing("5550001", remote=RemoteBehaviour(RemoteAction.BUSY, status=603))
    sim.run()
    assert call is not None
    return call


def _outgoing_cancelled(sim: Simulator) -> SimCall:
    call = sim.outgoing("5550001", remote=RemoteBehaviour.manual())
    sim.clock.sleep(4)
    sim.hangup_calling()
    assert call is not None
    return call


def _outgoing_failed(sim: Simulator) -> SimCall:
    call = sim.outgoing("5550001", remote=RemoteBehaviour(RemoteAction.FAIL, after=1))
    sim.run()
    assert call is not None
    return call


def _outgoing_server_error(sim: Simulator) -> SimCall:
    call = sim.outgoing("5550001", remote=RemoteBehaviour.manual())
    assert call is not None
    return sim.remote_fails(call, 503)


SEQUENCES: list[
    tuple[Callable[[Simulator], SimCall], list[str], Outcome, tuple[int, int, str] | None]
] = [
    # (play, events, outcome, [Calls] (type, duration, info) or None for no entry)
    (
        _answered,
        ["incoming", "ring", "answer", "start", "end"],
        Outcome.ANSWERED,
        (1, 5, "Call Ended"),
    ),
    (
        _answered_video,
        ["incoming", "ring", "answer", "answer-video", "start", "end"],
        Outcome.ANSWERED,
        (1, 1, "Call Ended"),
    ),
    (
        _auto_answered,
        ["incoming", "answer", "start", "end"],
        Outcome.ANSWERED,
        (1, 4, "Call Ended"),
    ),
    (
        _auto_answered_after_delay,
        ["incoming", "ring", "answer", "start", "end"],
        Outcome.ANSWERED,
        (1, 1, "Call Ended"),
    ),
    (_missed, ["incoming", "ring", "end"], Outcome.MISSED, (2, 0, "Missed Call")),
    (_declined, ["incoming", "ring", "busy"], Outcome.DECLINED, (2, 0, "Declined")),
    (_hung_up_while_ringing, ["incoming", "ring", "end"], Outcome.MISSED, (2, 0, "Call Ended")),
    (
        _elsewhere,
        ["incoming", "ring", "end"],
        Outcome.ANSWERED_ELSEWHERE,
        (3, 0, "Answered Elsewhere"),
    ),
    (_dnd, ["incoming"], Outcome.REJECTED, None),
    (_outgoing_answered, ["outgoing", "start", "end"], Outcome.ANSWERED, (0, 7, "Call Ended")),
    (_outgoing_busy, ["outgoing", "busy"], Outcome.BUSY, (0, 0, "Busy Here")),
    (_outgoing_declined_603, ["outgoing", "busy"], Outcome.BUSY, (0, 0, "Decline")),
    (_outgoing_cancelled, ["outgoing", "end"], Outcome.CANCELLED, (0, 0, "Canceled")),
    (
        _outgoing_failed,
        ["outgoing", "end"],
        Outcome.FAILED,
        (0, 0, "Incorrect dialing or non-existent number"),
    ),
    (_outgoing_server_error, ["outgoing", "end"], Outcome.FAILED, (0, 0, "Service Unavailable")),
]


@pytest.mark.parametrize(
    ("play", "expected", "outcome", "entry"), SEQUENCES, ids=lambda v: getattr(v, "__name__", "")
)
def test_each_sequence_fires_its_hooks_in_order(
    rig: Rig,
    play: Callable[[Simulator], SimCall],
    expected: list[str],
    outcome: Outcome,
    entry: tuple[int, int, str] | None,
) -> None:
    # facts §2.2 "Typical sequences"; the hook gets the remote user part as its last argument.
    with rig.simulator() as sim:
        call = play(sim)
        assert not call.active and call.outcome is outcome
        assert [e.event.value for e in sim.events] == expected
        assert all(run.returncode == 0 for run in sim.hook_runs)
    number = "5550001" if call.direction is Direction.OUTGOING else "5551234"
    assert rig.events() == [[event, number] for event in expected]
    assert call.events == [Event(e) for e in expected]
    history = rig.history()
    if entry is None:
        assert history == []  # facts §5: rejected calls are not recorded
        assert call.key is None and call.hidden
    else:
        assert history == [(0, number, call.name, CallType(entry[0]), entry[1], entry[2])]
        assert call.duration == entry[1]


def test_answer_video_is_3_22_only(rig: Rig) -> None:
    with rig.simulator(version="3.20.5") as sim:
        _answered_video(sim)
    assert [a[0] for a in rig.events()] == ["incoming", "ring", "answer", "start", "end"]


def test_ini_auto_answer_skips_ring_and_needs_no_other_call(rig: Rig) -> None:
    set_settings(rig.folder, autoAnswer="all")
    with rig.simulator() as sim:
        first = sim.incoming("5551234")
        second = sim.incoming("5552222")  # another call is up: it rings (autoAnswerCalls="")
        assert first.auto_answered and first.state is CallState.CONNECTED
        assert second.state is CallState.RINGING and not second.auto_answered
    assert [a[0] for a in rig.events()] == ["incoming", "answer", "start", "incoming", "ring"]


def test_auto_answer_number_limits_auto_answer_to_matching_callers(rig: Rig) -> None:
    set_settings(rig.folder, autoAnswer="all", autoAnswerNumber="555*|1??")  # facts §3.4
    answered = []
    with rig.simulator(run_hooks=False) as sim:
        for number in ("5551234", "7771234", "123", "1234"):
            call = sim.incoming(number)
            answered.append(call.auto_answered)
            sim.hang_up(call)  # one at a time: auto-answer needs no other call up
    assert answered == [True, False, True, False]


def test_account_zero_is_forced_to_one_without_the_local_account(rig: Rig) -> None:
    set_settings(rig.folder, accountId="0")
    with rig.simulator(run_hooks=False) as sim:
        assert sim.settings.account_id == 1
        assert sim.settings.account_domain == "sip.example.invalid"
    set_settings(rig.folder, enableLocalAccount="1")  # now account 0 is [Account0]: absent
    with rig.simulator(run_hooks=False) as sim:
        assert sim.outgoing("5550001") is None
        assert "no valid account" in sim.commands[-1].note


def test_ini_dnd_rejects_with_the_incoming_hook_only(rig: Rig) -> None:
    set_settings(rig.folder, DND="1")  # with denyIncoming=button (facts §3.4)
    with rig.simulator() as sim:
        call = sim.incoming("5551234")
        assert call.hidden and call.rejected_because == "do not disturb"
        assert sim.answer() is None  # nothing rings
    assert rig.events() == [["incoming", "5551234"]]
    assert rig.history() == []


def test_call_waiting_rings_and_the_limits_reject(rig: Rig) -> None:
    with rig.simulator() as sim:
        first = sim.incoming("5551234")
        sim.answer(first)
        waiting = sim.incoming("5552222")  # facts §2.2: ring fires for call waiting
        duplicate = sim.incoming("5551234")  # the same number again: rejected
        assert waiting.state is CallState.RINGING
    assert duplicate.hidden and duplicate.outcome is Outcome.REJECTED
    assert rig.events() == [
        ["incoming", "5551234"],
        ["ring", "5551234"],
        ["answer", "5551234"],
        ["start", "5551234"],
        ["incoming", "5552222"],
        ["ring", "5552222"],
        ["incoming", "5551234"],
    ]


@pytest.mark.parametrize("setting", [{"callWaiting": "0"}, {"maxConcurrentCalls": "1"}])
def test_no_call_waiting_rejects_the_second_call(rig: Rig, setting: dict[str, str]) -> None:
    set_settings(rig.folder, **setting)
    with rig.simulator() as sim:
        sim.answer(sim.incoming("5551234"))
        second = sim.incoming("5552222")
    assert second.hidden
    assert rig.events()[-1] == ["incoming", "5552222"]
    assert [n for _, n, *_ in rig.history()] == ["5551234"]


def test_single_mode_places_no_second_outgoing_call(rig: Rig) -> None:
    with rig.simulator() as sim:
        first = sim.outgoing("5550001", remote=RemoteBehaviour.manual())
        second = sim.outgoing("5550002", remote=RemoteBehaviour.manual())
        assert first is not None and second is None  # facts §1.6 6
        assert sim.commands[-1].note.startswith("single mode")
    assert rig.events() == [["outgoing", "5550001"]]
    doc = IniDocument.load(rig.folder.ini)
    assert doc.get("Dialed", "0") == "5550002" and doc.get("Dialed", "1") == "5550001"


def test_single_mode_off_allows_two_outgoing_calls(rig: Rig) -> None:
    set_settings(rig.folder, singleMode="0")
    with rig.simulator() as sim:
        assert sim.outgoing("5550001", remote=RemoteBehaviour.manual()) is not None
        assert sim.outgoing("5550002", remote=RemoteBehaviour.manual()) is not None
    assert [a[0] for a in rig.events()] == ["outgoing", "outgoing"]


def test_end_fires_once_per_call(rig: Rig) -> None:
    with rig.simulator() as sim:
        call = sim.incoming("5551234")
        sim.answer(call)
        sim.hang_up(call)
        with pytest.raises(SimulatorError, match="is not"):
            sim.hang_up(call)
        assert sim.hangup_all() == []
        with pytest.raises(SimulatorError):
            sim.remote_hangs_up(call)
    assert [a[0] for a in rig.events()].count("end") == 1


@pytest.mark.parametrize(
    ("version", "busy_number"),
    [("3.22.3", "anonymous.invalid"), ("3.20.5", "anonymous.invalid"), ("3.19.27", None)],
)
def test_an_empty_user_part_adds_no_argument_but_busy_and_end_get_the_domain(
    rig: Rig, version: str, busy_number: str | None
) -> None:
    # facts §2.4: an empty value adds no argument; 3.20+ pass the domain to busy/end.
    with rig.simulator(version=version) as sim:
        call = sim.incoming("", domain="anonymous.invalid")
        sim.decline(call)
        assert call.number == "anonymous.invalid"  # [Calls] holds the domain
    busy = [busy_number] if busy_number else []
    assert rig.events() == [["incoming"], ["ring"], ["busy", *busy]]


# --- [Calls] is written before the busy/end hooks (facts §5) --------------------------------------


def test_the_end_and_busy_hooks_read_the_finished_entry(rig: Rig) -> None:
    with rig.simulator() as sim:
        _answered(sim)
        _declined(sim)
        _outgoing_failed(sim)
    ends = rig.latest_at("end")
    busy = rig.latest_at("busy")
    assert [parse_entry(0, v or "").info for v in ends] == [
        "Call Ended",
        "Incorrect dialing or non-existent number",
    ]
    assert parse_entry(0, ends[0] or "").duration == 5
    declined = parse_entry(0, busy[0] or "")
    assert (declined.number, declined.type, declined.info) == (
        "5551234",
        CallType.MISSED,
        "Declined",
    )
    # While a call rings its entry exists already, unfinished (created with the call tab).
    ring = parse_entry(0, rig.latest_at("ring")[0] or "")
    assert (ring.type, ring.info) == (CallType.INCOMING, "")


def test_3_19_runs_the_end_hook_before_the_history_update(rig: Rig) -> None:
    with rig.simulator(version="3.19.27") as sim:
        _missed(sim)
    seen = parse_entry(0, rig.latest_at("end")[0] or "")
    assert (seen.type, seen.info) == (CallType.INCOMING, "")  # not yet updated (facts §5)
    assert rig.history()[0][3:] == (CallType.MISSED, 0, "Missed Call")


def test_a_local_cancel_reads_call_ended_then_becomes_canceled(rig: Rig) -> None:
    # The fast hang-up path fires end before the CANCEL completes (facts §2.2); the final text
    # is written when the 487 arrives.
    with rig.simulator() as sim:
        _outgoing_cancelled(sim)
    assert parse_entry(0, rig.latest_at("end")[0] or "").info == "Call Ended"
    assert rig.history()[0][5] == "Canceled"


def test_names_come_from_contacts_then_display_name(tmp_path: Path) -> None:
    contacts = [
        Contact(name="Jane Roe", number="5551234"),
        Contact(firstname="Max", lastname="Muster", number="77"),
    ]
    rig = Rig(tmp_path, contacts)
    with rig.simulator(run_hooks=False) as sim:
        names = [
            sim.incoming(number, "Display").name
            for number in ("5551234", "+15551234", "0015551234", "44005551234", "77", "8")
        ]
        sim.hangup_incoming()
    # facts §4.4: exact match; suffix with at most 3 extra leading characters; else the display
    # name ("77" is too short for a suffix match but matches exactly).
    assert names == ["Jane Roe", "Jane Roe", "Jane Roe", "Display", "Max Muster", "Display"]


@pytest.mark.parametrize(
    "sample",
    ["data/contacts/pbx-export.Contacts.xml", "corpus/contacts/real-cassck-monitcall.Contacts.xml"],
    indirect=True,
)
def test_names_from_a_real_contacts_file(tmp_path: Path, sample: Path) -> None:
    rig = Rig(tmp_path)
    shutil.copy(sample, rig.folder.contacts)
    contact = next(c for c in read_contacts(rig.folder.contacts).loaded_by_microsip() if c.name)
    with rig.simulator(run_hooks=False) as sim:
        call = sim.incoming(contact.number, "Someone else")
        sim.caller_cancels(call)
    assert rig.history()[0][1:3] == (contact.number, contact.name)


def test_a_number_the_history_cannot_hold_still_reaches_the_hooks(rig: Rig) -> None:
    with rig.simulator() as sim:
        call = sim.incoming("55;51234")
        sim.caller_cancels(call)
    assert call.key is None and call.history_error and "';'" in call.history_error
    assert rig.events() == [["incoming", "55;51234"], ["ring", "55;51234"], ["end", "55;51234"]]
    assert rig.history() == []


# --- RunCmd fidelity (facts §2.3, §2.6) -----------------------------------------------------------


def test_runcmd_splits_like_commandlinetoargvw_and_expands_nothing(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    spaced = write_recorder(tmp_path / "dir with space" / "rec hook", rig.log, rig.folder.ini)
    # A quoted program path with spaces works; a quoted argument loses its quotes and splits
    # (facts §2.3 1); %PATH% and $HOME are not expanded (no shell, no SEE_MASK_DOENVSUBST).
    value = f'"{spaced}" first "two words" %PATH% $HOME'
    set_settings(rig.folder, cmdCallRing=value)
    with rig.simulator() as sim:
        sim.incoming("5551234")
        run = sim.hook_runs[1]
    assert rig.events()[1] == ["first", "two", "words", "%PATH%", "$HOME", "5551234"]
    assert run.value == value and run.argv[0] == str(spaced)
    assert run.command_line == f'"{spaced}" first two words %PATH% $HOME 5551234'


def test_a_value_wrapped_in_quotes_loses_them_and_fails_silently(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    spaced = write_recorder(tmp_path / "dir with space" / "hook", rig.log, rig.folder.ini)
    set_settings(rig.folder, cmdCallRing=f'"{spaced}"')  # GetPrivateProfileString strips them
    with rig.simulator() as sim:
        call = sim.incoming("5551234")
        run = sim.hook_runs[1]
        sim.caller_cancels(call)  # the failed launch did not stop the simulator
    assert run.argv[0] == str(tmp_path / "dir")
    assert run.error is not None and run.returncode is None
    assert [a[0] for a in rig.events()] == ["incoming", "end"]


def test_hostile_numbers_are_passed_as_text_never_to_a_shell(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    marker = tmp_path / "pwned"
    number = f"$(touch${{IFS}}{marker})&calc|%PATH%`id`"
    with rig.simulator() as sim:
        sim.caller_cancels(sim.incoming(number))
        sim.caller_cancels(sim.incoming("555 1234"))
        long_one = sim.fire(Event.END, "7" * 10_000)  # no call: the hook alone, via RunCmd
        empty = sim.fire(Event.END, "")
    assert not marker.exists()
    assert rig.events()[0] == ["incoming", number]
    assert rig.events()[-2:] == [["end", "7" * 10_000], ["end"]]  # empty: no argument at all
    assert long_one.call_id == 0 and long_one.hook is not None and empty.hook is not None
    assert empty.hook.argv == (str(rig.hook), "end")
    # Appended unquoted: a space splits the number (the hook re-joins it).
    assert rig.events()[3] == ["incoming", "555", "1234"]
    assert join_number(rig.events()[3][1:]) == "555 1234"


def test_a_value_is_read_with_microsips_255_character_buffer(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    value = f"{rig.hook} {'x' * 300}"
    set_settings(rig.folder, cmdCallEnd=value)
    with rig.simulator() as sim:
        sim.caller_cancels(sim.incoming("5551234"))
    arg = rig.events()[-1]
    assert arg[0] == "x" * (255 - len(str(rig.hook)) - 1) and arg[1] == "5551234"


def test_a_slow_hook_is_abandoned_after_the_timeout_and_measured(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    sleeper = write_recorder(tmp_path / "bin" / "sleeper", rig.log, rig.folder.ini, sleep=12)
    set_settings(rig.folder, cmdCallRing=f"{sleeper} ring")
    # 1.5 s, not 10: short for the test, long enough for the hook to log before it sleeps.
    sim = rig.simulator(hook_timeout=1.5)
    with sim:
        call = sim.incoming("5551234")
        slow = sim.hook_runs[1]
        sim.caller_cancels(call)  # MicroSIP carries on
        assert len(sim.hooks.abandoned) == 1
        abandoned = sim.hooks.abandoned[0]
    assert slow.event is Event.RING and slow.timed_out and slow.returncode is None
    assert slow.blocked_seconds >= 1.5  # it blocked for the whole wait, not 12 s
    assert sim.summary().per_event[Event.RING].timeouts == 1
    assert abandoned.poll() is not None  # reaped when the simulator stopped
    assert [a[0] for a in rig.events()] == ["incoming", "ring", "end"]


def test_exit_codes_are_recorded_and_ignored(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    failing = write_recorder(tmp_path / "bin" / "failing", rig.log, rig.folder.ini, exit_code=3)
    set_settings(rig.folder, cmdIncomingCall=f"{failing} incoming")
    with rig.simulator() as sim:
        sim.caller_cancels(sim.incoming("5551234"))
        codes = [run.returncode for run in sim.hook_runs]
    assert codes == [3, 0, 0]


def test_run_hooks_false_and_reload_settings(rig: Rig) -> None:
    with rig.simulator(run_hooks=False) as sim:
        sim.caller_cancels(sim.incoming("5551234"))
        assert sim.hook_runs == [] and len(sim.events) == 3
    set_settings(rig.folder, cmdCallRing="")
    with rig.simulator() as sim:
        sim.incoming("5551234")
        set_settings(rig.folder, cmdCallRing=f"{rig.hook} ring")  # read only at start-up
        sim.hangup_incoming()
        sim.reload_settings()
        sim.incoming("5552222")
    assert rig.events() == [
        ["incoming", "5551234"],
        ["end", "5551234"],
        ["incoming", "5552222"],
        ["ring", "5552222"],
    ]


def test_rewrite_on_exit_drops_quotes_and_undoes_edits(rig: Rig) -> None:
    set_settings(rig.folder, cmdCallEnd='"C:\\Program Files\\x\\hook.exe"')
    with rig.simulator(rewrite_settings_on_exit=True) as sim:
        set_settings(rig.folder, DND="1")  # an edit while "MicroSIP" runs
        sim.caller_cancels(sim.incoming("5551234"))
    doc = IniDocument.load(rig.folder.ini)
    # facts §2.6, §3.2: the in-memory (unquoted) value is written back, the edit is lost.
    assert doc.get_raw("Settings", "cmdCallEnd") == "C:\\Program Files\\x\\hook.exe"
    assert doc.get("Settings", "DND") == "0"
    assert doc.get("Settings", "callsLastKey") == "0"


# --- commands over the channel (facts §1.4-1.6) ---------------------------------------------------


@contextmanager
def serving(sim: Simulator) -> Iterator[CommandChannel]:
    """The simulator started, its channel open and its scheduler running in a thread."""
    errors: list[BaseException] = []

    def loop() -> None:
        try:
            sim.run(until_idle=False)
        except BaseException as exc:
            errors.append(exc)

    with sim, CommandChannel(sim) as channel:
        thread = threading.Thread(target=loop)
        thread.start()
        try:
            yield channel
        finally:
            sim.stop()
            thread.join(10)
    assert not thread.is_alive() and not errors


def wait_for(predicate: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("the simulator did not get there")
        time.sleep(0.01)


def test_dial_answer_and_hangupall_over_the_channel(rig: Rig) -> None:
    sim = rig.simulator(remotes={"5550001": RemoteBehaviour(after=1)})
    with serving(sim) as channel:
        state = json.loads(rig.folder.state_file.read_text("utf-8"))
        assert state["port"] == channel.port and state["host"] == "127.0.0.1"
        assert send_command(rig.folder.path, "5550001", asynchronous=False) == 0
        wait_for(lambda: len(sim.events) == 2)  # outgoing, then start when it answers
        ringing = sim.incoming("5552222")  # call waiting
        assert send_command(rig.folder.path, "/hangupall", asynchronous=False) == 0
        # facts §1.6 4: /hangupall spares incoming calls still ringing ...
        assert ringing.state is CallState.RINGING
        assert send_command(rig.folder.path, "/answer") == 0  # dwData=2: queued
        wait_for(lambda: ringing.state is CallState.CONNECTED)
        assert send_command(rig.folder.path, "msip:hangupall", asynchronous=False) == 0
    assert not rig.folder.state_file.exists()
    assert rig.events() == [
        ["outgoing", "5550001"],
        ["start", "5550001"],
        ["incoming", "5552222"],
        ["ring", "5552222"],
        ["end", "5550001"],
        ["answer", "5552222"],
        ["start", "5552222"],
        ["end", "5552222"],
    ]


def test_hangupincoming_and_hangupcalling(rig: Rig) -> None:
    set_settings(rig.folder, singleMode="0")
    with rig.simulator() as sim:
        out = sim.outgoing("5550001", remote=RemoteBehaviour.manual())
        ringing = sim.incoming("5552222")
        assert sim.command("/hangupincoming") == 0
        assert ringing.outcome is Outcome.MISSED and out is not None and out.active
        assert sim.command("/hangupcalling") == 0
        assert out.outcome is Outcome.CANCELLED
    assert [a[0] for a in rig.events()] == ["outgoing", "incoming", "ring", "end", "end"]


def test_version_specific_commands(rig: Rig) -> None:
    with rig.simulator(version="3.20.5") as sim:
        sim.incoming("5552222")
        # /hangupincoming is 3.22 only: on 3.20 it is dialled, fails, and nothing happens
        assert sim.command("/hangupincoming") == 0
        assert sim.ringing_incoming() and "error box" in sim.commands[-1].note
    with rig.simulator(version="3.19.27") as sim:
        assert sim.command("/answer", dw_data=2) == 1  # 3.19 ignores dwData=2


def test_refused_and_ignored_commands(rig: Rig) -> None:
    with serving(rig.simulator()):
        with pytest.raises(CommandError, match="delete its settings"):
            send_command(rig.folder.path, "/reset")
        with pytest.raises(CommandError, match="control character"):
            send_command(rig.folder.path, "555\x07")
    with rig.simulator() as sim:
        assert sim.command("/answer", dw_data=3) == 1  # facts §1.4: other dwData: 1
        assert sim.command("5551234 hello there") == 0
        assert [(m.number, m.text) for m in sim.messages] == [("5551234", "hello there")]
        assert sim.calls == []  # a message places no call
    assert sim.command("/answer") == 1  # the SIP stack is down: dropped
    assert rig.events() == []


def test_in_call_commands(rig: Rig) -> None:
    with rig.simulator() as sim:
        call = sim.outgoing("5550001,,45", remote=RemoteBehaviour.manual())
        assert call is not None
        sim.remote_answers(call)
        assert call.dtmf == ["45"]  # post-dial DTMF (facts §1.6 7)
        sim.command("/dtmf:123#")
        sim.command("msip:hold")
        assert call.held and call.dtmf == ["45", "123#"]
        sim.command("msip:micmute")
        sim.command("msip:speakmuteclick")
        assert sim.mic_muted and sim.speaker_muted
        sim.command("/transfer:5550002")
        assert call.transferred_to == "5550002" and call.outcome is Outcome.ANSWERED
    assert rig.history()[0][1] == "5550001,,45"  # facts §5: ",dtmf" kept in the number
    assert [a[0] for a in rig.events()] == ["outgoing", "start", "end"]


def test_account_switch_and_user_at_host_dialling(rig: Rig) -> None:
    doc = IniDocument.load(rig.folder.ini)
    doc.set("Account2", "domain", "other.example.invalid")
    doc.save(backups=0)
    with rig.simulator() as sim:
        assert sim.command("/account:3 5550001") == 0  # no Account3: dropped
        assert sim.calls == []
        sim.command("/account:2")
        call = sim.outgoing("5550001@far.example.invalid", remote=RemoteBehaviour.manual())
        assert call is not None and (call.user, call.domain) == ("5550001", "far.example.invalid")
        sim.hang_up(call)
    assert IniDocument.load(rig.folder.ini).get("Settings", "accountId") == "2"
    assert rig.history()[0][1] == "5550001@far.example.invalid"
    assert rig.events()[0] == ["outgoing", "5550001"]


def test_raw_channel_requests(rig: Rig) -> None:
    def ask(port: int, data: bytes) -> dict[str, object]:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(data)
            return json.loads(sock.makefile("rb").readline())  # type: ignore[no-any-return]

    sim = rig.simulator(run_hooks=False)
    with serving(sim) as channel:
        assert ask(channel.port, b"5551234 hi\n") == {"result": 0}  # a bare line: dwData 1
        assert ask(channel.port, b'{"dwData": 1, "text": "/hangupall"}\n') == {"result": 0}
        assert "error" in ask(channel.port, b'{"dwData": 1}\n')
        assert "error" in ask(channel.port, b"{not json\n")
        assert "error" in ask(channel.port, b"\xff\xfe\n")
        assert "error" in ask(channel.port, b"x" * 20000 + b"\n")
        assert [m.text for m in sim.messages] == ["hi"]


def test_close_request_stops_the_loop_and_stale_state_is_reported(rig: Rig) -> None:
    sim = rig.simulator()
    with sim, CommandChannel(sim) as channel:
        thread = threading.Thread(target=lambda: sim.run(until_idle=False))
        thread.start()
        request_close(rig.folder.path)
        thread.join(10)
        assert not thread.is_alive() and channel.close_requested.is_set()
        state = rig.folder.state_file.read_bytes()
    with pytest.raises(NotFoundError, match="no simulator is serving"):
        send_command(rig.folder.path, "/answer")
    rig.folder.state_file.write_bytes(state)  # left behind by a crash
    with pytest.raises(NotFoundError, match="stale"):
        send_command(rig.folder.path, "/answer")
    rig.folder.state_file.write_text('{"host": "192.0.2.1", "port": 80}', "utf-8")
    with pytest.raises(BridgeError, match="not loopback"):
        send_command(rig.folder.path, "/answer")


def test_command_line_forwarding_like_a_second_instance(rig: Rig) -> None:
    # facts §1.2: with nothing running, /exit, /answer and /hangupall end at once; anything
    # else starts MicroSIP with it.
    assert forward_command_line(rig.folder.path, "/exit") == 0
    assert forward_command_line(rig.folder.path, "/answer") == 0
    assert forward_command_line(rig.folder.path, "5551234") is None
    sim = rig.simulator()
    with serving(sim) as channel:
        sim.incoming("5552222")
        assert forward_command_line(rig.folder.path, "/answer") == 0  # forwarded, dwData=1
        assert sim.calls[0].state is CallState.CONNECTED
        assert forward_command_line(rig.folder.path, "") == 0  # shows the window: no-op
        assert forward_command_line(rig.folder.path, "/minimized") == 0  # start-up only: no-op
        assert not channel.close_requested.is_set()
        assert forward_command_line(rig.folder.path, "/exit") == 0  # WM_CLOSE
        assert channel.close_requested.is_set()


# --- scenarios ------------------------------------------------------------------------------------

FRONT_DESK = [
    # (number, direction, outcome, events, [Calls] type, duration, info)
    ("5551234", "incoming", "answered", "incoming ring answer start end", 1, 5, "Call Ended"),
    ("5559876", "incoming", "missed", "incoming ring end", 2, 0, "Missed Call"),
    ("5553333", "incoming", "declined", "incoming ring busy", 2, 0, "Declined"),
    ("5554444", "incoming", "rejected", "incoming", None, 0, ""),
    ("5555555", "incoming", "answered", "incoming answer start end", 1, 4, "Call Ended"),
    ("5556666", "incoming", "answered_elsewhere", "incoming ring end", 3, 0, "Answered Elsewhere"),
    ("5550001", "outgoing", "answered", "outgoing start end", 0, 2, "Call Ended"),
    ("5550002", "outgoing", "busy", "outgoing busy", 0, 0, "Busy Here"),
    ("5550003", "outgoing", "cancelled", "outgoing end", 0, 0, "Canceled"),
    (
        "5550404",
        "outgoing",
        "failed",
        "outgoing end",
        0,
        0,
        "Incorrect dialing or non-existent number",
    ),
    ("5550005", "outgoing", "answered", "outgoing start end", 0, 6, "Call Ended"),
    ("5557777", "incoming", "missed", "incoming ring end", 2, 0, "Call Ended"),
]


@pytest.mark.parametrize("name", ["front-desk.toml", "front-desk.json"])
def test_the_front_desk_scenario_plays_every_sequence(rig: Rig, name: str) -> None:
    scenario = load_scenario(SCENARIOS / name)
    with rig.simulator() as sim:
        run_scenario(sim, scenario)
        sim_events = list(sim.events)
        calls = [
            (
                c.user,
                c.direction.value,
                c.outcome.value if c.outcome else None,
                " ".join(c.events),
                c.call_type,
                c.duration,
                c.info,
            )
            for c in sim.calls
        ]
    expected = [
        (n, d, o, e, None if t is None else CallType(t), s, i) for n, d, o, e, t, s, i in FRONT_DESK
    ]
    assert calls == expected
    history = [(n, t, d, i) for _, n, _, t, d, i in rig.history()]
    assert history == [
        (n, CallType(t), s, i) for n, _, _, _, t, s, i in FRONT_DESK if t is not None
    ]
    # Every hook the scenario fired ran, in the order of the events, with the right number.
    assert rig.events() == [[e.event.value, e.number] for e in sim_events]
    for number, _, _, events, *_ in FRONT_DESK:
        assert [a[0] for a in rig.events() if a[1] == number] == events.split()
    assert rig.latest_at("ring")  # the hook saw the entries as they were written


def test_toml_and_json_scenarios_are_the_same() -> None:
    toml = load_scenario(SCENARIOS / "front-desk.toml")
    data = load_scenario(SCENARIOS / "front-desk.json")
    assert toml.steps == data.steps and dict(toml.remotes) == dict(data.remotes)
    assert len(toml.steps) == 14 and toml.length() == 52.0


def test_the_demo_scenario_runs(rig: Rig) -> None:
    with rig.simulator(run_hooks=False) as sim:
        run_scenario(sim, load_scenario(SCENARIOS / "demo.toml"))
        assert [(c.name, c.outcome) for c in sim.calls] == [
            ("Jane Roe", Outcome.ANSWERED),
            ("5550001", Outcome.ANSWERED),
            ("Max Mustermann", Outcome.MISSED),
        ]
        assert [c.duration for c in sim.calls] == [12, 6, 0]


BAD_SCENARIOS = [
    ("[[steps]]\nat = 0\n", "step 1: a step needs exactly one of incoming, outgoing, command"),
    (
        "[[steps]]\nincoming = '1'\noutgoing = '2'\n",
        (
            "step 1: a step needs exactly one of incoming, outgoing, command (it has incoming, "
            "outgoing)"
        ),
    ),
    (
        "[[steps]]\nincoming = '1'\nthen = 'hold'\n",
        (
            "step 1: then must be one of answer, auto-answer, missed, decline, dnd, elsewhere, "
            "ring, not 'hold'"
        ),
    ),
    (
        "[[steps]]\nincoming = '1'\n[[steps]]\nincoming = '2'\nat = -1\n",
        "step 2: at must be zero or more seconds, not -1",
    ),
    (
        "[[steps]]\nincoming = '1'\nafter = 'soon'\n",
        "step 1: after must be a number of seconds, not 'soon'",
    ),
    (
        "[[steps]]\nincoming = '1'\nthen = 'dnd'\nafter = 2\n",
        "step 1: 'after' means nothing here: it goes with anything but 'dnd'",
    ),
    (
        "[[steps]]\nincoming = '1'\nthen = 'missed'\ntalk = 2\n",
        "step 1: 'talk' means nothing here: it goes with answer or auto-answer",
    ),
    ("[[steps]]\nincoming = '1'\ncolour = 'red'\n", "step 1: unknown key 'colour'"),
    ("[[steps]]\nincoming = ''\n", "step 1: an incoming call with an empty number needs a domain"),
    (
        "[[steps]]\nincoming = '1'\nvideo = 'yes'\n",
        "step 1: video must be true or false, not 'yes'",
    ),
    (
        "[[steps]]\noutgoing = '/answer'\n",
        "step 1: '/answer' is not a number to dial: MicroSIP would answer the first ringing call",
    ),
    (
        "[[steps]]\noutgoing = '5550001'\nthen = 'busy'\nstatus = 404\n",
        "step 1: busy means 486, 600 or 603 (what MicroSIP treats as busy), not 404",
    ),
    (
        "[[steps]]\noutgoing = '5550001'\nthen = 'fail'\nstatus = 487\n",
        "step 1: a failure status must be 300-699",
    ),
    (
        "[[steps]]\noutgoing = '5550001'\nafter = 3\n",
        "step 1: 'after' means nothing here: it goes with a `then`",
    ),
    ("[[steps]]\ncommand = '/reset'\n", "step 1: command '/reset' refused"),
    ("[[steps]]\ncommand = '/answer'\nthen = 'answer'\n", "step 1: unknown key 'then'"),
    (
        "[remote.'555']\nthen = 'answer'\nstatus = 486\n",
        "remote '555': 'status' means nothing here: it goes with busy or fail",
    ),
    (
        "[remote.'555']\nthen = 'fail'\nstatus = 'x'\n",
        "remote '555': status must be a SIP status code, not 'x'",
    ),
    ("remote = 3\n", "scenario: remote must be a table"),
    ("steps = {}\n", "scenario: steps must be a list"),
    ("speed = 2\n", "scenario: unknown key 'speed'"),
    ("description = 'empty'\n", "scenario: the scenario has no steps and no remote parties"),
    ("[[steps]\n", "not valid TOML"),
]


@pytest.mark.parametrize(("text", "message"), BAD_SCENARIOS)
def test_scenario_errors_name_the_file_and_step(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text, "utf-8")
    with pytest.raises(FileFormatError) as info:
        load_scenario(path)
    error = str(info.value)
    assert "\n" not in error
    assert error.startswith(f"{path}")
    assert message in error


def test_scenario_file_format_errors(tmp_path: Path) -> None:
    bad_json = tmp_path / "bad.json"
    bad_json.write_text('{"steps": [1,]}', "utf-8")
    with pytest.raises(FileFormatError, match=r"not valid JSON: .* \(line 1, column"):
        load_scenario(bad_json)
    not_object = tmp_path / "list.json"
    not_object.write_text("[]", "utf-8")
    with pytest.raises(FileFormatError, match="a scenario is a table"):
        load_scenario(not_object)
    step_not_table = tmp_path / "step.json"
    step_not_table.write_text('{"steps": ["5551234"]}', "utf-8")
    with pytest.raises(FileFormatError, match="step 1: a step is a table"):
        load_scenario(step_not_table)
    other = tmp_path / "s.yaml"
    other.write_text("steps: []", "utf-8")
    with pytest.raises(FileFormatError, match=r"\.toml or \.json"):
        load_scenario(other)
    binary = tmp_path / "b.toml"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(FileFormatError, match="not UTF-8"):
        load_scenario(binary)
    with pytest.raises(NotFoundError):
        load_scenario(tmp_path / "missing.toml")


_numbers = st.text(alphabet="0123456789+*#", min_size=1, max_size=12)
_seconds = st.one_of(st.none(), st.integers(0, 100).map(float))


@st.composite
def _steps(draw: st.DrawFn) -> Step:
    at = float(draw(st.integers(0, 1000)))
    kind = draw(st.sampled_from(list(StepKind)))
    if kind is StepKind.COMMAND:
        return Step(
            kind, draw(st.sampled_from(["/answer", "/hangupall", "msip:hold", "5551234 hi"])), at
        )
    number = draw(_numbers)
    if kind is StepKind.INCOMING:
        then = draw(st.sampled_from(["answer", "auto-answer", "missed", "decline", "elsewhere"]))
        talks = then in ("answer", "auto-answer")
        return Step(
            kind,
            number,
            at,
            then=then,
            after=draw(_seconds),
            talk=draw(_seconds) if talks else None,
            hangup=draw(st.sampled_from([None, *HangupBy])) if talks else None,
            name=draw(st.text(alphabet="abc ÄΩ", max_size=8)),
            domain=draw(st.sampled_from([None, "pbx.example.invalid"])),
            video=draw(st.booleans()),
        )
    then = draw(st.sampled_from(["answer", "busy", "fail", "cancel"]))
    status = {
        "busy": draw(st.sampled_from([None, 486, 600, 603])),
        "fail": draw(st.sampled_from([None, 404, 408, 503])),
    }
    return Step(
        kind,
        number,
        at,
        then=then,
        after=draw(_seconds),
        talk=draw(_seconds) if then == "answer" else None,
        status=status.get(then),
        reason=draw(st.sampled_from([None, "Nope"])) if then == "fail" else None,
    )


@given(st.lists(_steps(), min_size=1, max_size=6))
def test_scenarios_round_trip_through_json(steps: list[Step]) -> None:
    scenario = Scenario(
        tuple(steps), {"*": RemoteBehaviour(RemoteAction.FAIL, after=1.0, status=503)}
    )
    again = parse_scenario(json.loads(json.dumps(scenario.to_dict())))
    assert again.steps == scenario.steps
    assert dict(again.remotes) == dict(scenario.remotes)


@given(
    _numbers,
    st.sampled_from(["answer", "missed", "decline", "dnd"]),
    st.integers(0, 50),
    st.integers(0, 50),
)
def test_call_specs_parse_to_steps(number: str, then: str, after: int, talk: int) -> None:
    spec = f"incoming:{number}:{then}"
    if then != "dnd":
        spec += f":{after}"
        if then == "answer":
            spec += f":{talk}"
    step = parse_call_spec(spec)
    assert (step.kind, step.target, step.then) == (StepKind.INCOMING, number, then)
    assert step.after == (None if then == "dnd" else float(after))


def test_call_specs_follow_each_other_and_refuse_nonsense() -> None:
    steps = steps_from_specs(
        ["incoming:5551234:answer:1:3", "outgoing:5550001:busy:2", "command:/hangupall"]
    )
    assert [s.at for s in steps] == [0.0, 5.0, 8.0]
    assert steps[2].target == "/hangupall"
    for spec, message in [
        ("ringing:555", "expected incoming:NUMBER"),
        ("incoming:555:answer:x", "after must be a number of seconds"),
        ("incoming:sip:555@pbx:answer:1:2", "too many ':' fields"),
        ("outgoing:555:explode", "then must be one of"),
    ]:
        with pytest.raises(FileFormatError, match=message):
            parse_call_spec(spec)


# --- the CLI --------------------------------------------------------------------------------------


def test_cli_creates_plays_and_reports(tmp_path: Path) -> None:
    from microsip_bridge.cli.sim import sim as sim_command

    folder = tmp_path / "demo"
    runner = CliRunner()
    result = runner.invoke(
        sim_command,
        [
            str(folder),
            "--create",
            "--call",
            "incoming:5551234:answer:0:2",
            "--call",
            "incoming:5552222:dnd",
            "--speed",
            "1000",
        ],
    )
    assert result.exit_code == 0, result.output
    assert (
        "incoming" in result.output and "answered" in result.output and "rejected" in result.output
    )
    assert "no hook ran" in result.output
    assert not (folder / SIM_PID_FILE).exists()
    history = read_history(IniDocument.load(folder / "microsip.ini"))
    assert [(e.number, e.type, e.duration) for e in history.entries] == [
        ("5551234", CallType.INCOMING, 2)
    ]

    result = runner.invoke(
        sim_command,
        [str(folder), "--scenario", str(SCENARIOS / "demo.toml"), "--speed", "1000", "--json"],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert [c["outcome"] for c in report["calls"]] == ["answered", "answered", "missed"]
    assert report["calls"][0]["events"] == ["incoming", "ring", "answer", "start", "end"]


def test_cli_with_hooks_reports_blocking(tmp_path: Path) -> None:
    from microsip_bridge.cli.sim import sim as sim_command

    rig = Rig(tmp_path)
    result = CliRunner().invoke(
        sim_command, [str(rig.folder.path), "--call", "outgoing:5550001:fail:0", "--speed", "1000"]
    )
    assert result.exit_code == 0, result.output
    assert "hook blocked" in result.output and "MicroSIP was blocked at most" in result.output
    assert rig.events() == [["outgoing", "5550001"], ["end", "5550001"]]


def test_cli_errors_and_forwarding(tmp_path: Path, rig: Rig) -> None:
    from microsip_bridge.cli.sim import sim as sim_command

    runner = CliRunner()
    missing = runner.invoke(sim_command, [str(tmp_path / "nowhere"), "--call", "incoming:1"])
    assert isinstance(missing.exception, NotFoundError)
    bad = tmp_path / "bad.toml"
    bad.write_text("[[steps]]\nincoming = '1'\nthen = 'hold'\n", "utf-8")
    error = runner.invoke(sim_command, [str(rig.folder.path), "--scenario", str(bad)])
    assert isinstance(error.exception, FileFormatError) and "step 1" in str(error.exception)
    nothing = runner.invoke(sim_command, [str(rig.folder.path)])
    assert nothing.exit_code == 0 and "nothing to play" in nothing.output
    # -c while a simulator serves the folder: forwarded, as a second microsip.exe does.
    sim = rig.simulator()
    with serving(sim):
        sim.incoming("5552222")
        forwarded = runner.invoke(sim_command, [str(rig.folder.path), "-c", "/answer"])
        assert forwarded.exit_code == 0 and forwarded.output == "/answer: 0\n"
        assert sim.calls[0].state is CallState.CONNECTED
    # -c with nothing running: started with the command, which dials.
    started = runner.invoke(
        sim_command,
        [str(rig.folder.path), "-c", "/minimized", "-c", "5550001", "--json", "--speed", "100"],
    )
    assert started.exit_code == 0, started.output
    report = json.loads(started.output)
    # /minimized only picks how the window starts; the dial is answered by the default party
    # (after 2 s) and still up when the plays end, so it is dropped without an end event.
    assert [(c["number"], c["events"]) for c in report["calls"]] == [
        ("5550001", ["outgoing", "start"])
    ]


# --- misc -----------------------------------------------------------------------------------------


def test_remote_behaviour_and_engine_argument_checks(rig: Rig) -> None:
    with pytest.raises(SimulatorError, match="busy means"):
        RemoteBehaviour(RemoteAction.BUSY, status=404)
    with pytest.raises(SimulatorError, match="reason goes with 'fail'"):
        RemoteBehaviour(RemoteAction.ANSWER, reason="x")
    with pytest.raises(SimulatorError, match="after must be zero or more"):
        RemoteBehaviour(after=float("nan"))
    with rig.simulator() as sim:
        with pytest.raises(CommandError, match="not a number to dial"):
            sim.outgoing("/answer")
        with pytest.raises(SimulatorError, match="needs a number or a domain"):
            sim.incoming("", domain="")
        call = sim.incoming("5551234")
        with pytest.raises(SimulatorError, match="is not dialing"):
            sim.remote_answers(call)
        with pytest.raises(SimulatorError, match="failure status"):
            sim.remote_fails(sim.outgoing("5550001", remote=RemoteBehaviour.manual()) or call, 486)
    with pytest.raises(SimulatorError, match="not running"):
        sim.incoming("5551234")


def test_virtual_time_gives_exact_durations(rig: Rig) -> None:
    clock = VirtualClock(start=1_800_000_000)
    with rig.simulator(clock=clock, run_hooks=False) as sim:
        call = sim.outgoing(
            "5550001", remote=RemoteBehaviour(after=2.5, talk=61.9, hangup=HangupBy.LOCAL)
        )
        sim.run()
        assert call is not None and call.duration == 61
        assert clock.now() == pytest.approx(1_800_000_000 + 2.5 + 61.9)
    assert rig.history() == [(0, "5550001", "5550001", CallType.OUTGOING, 61, "Call Ended")]
