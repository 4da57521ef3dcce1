"""The hook MicroSIP runs: stdlib only, POSTs to the daemon or spools, hostile numbers stay data.

Real processes throughout: the hook is the installed ``microsip-bridge-hook`` (what MicroSIP
runs, facts §2.3), the daemon is a real uvicorn server on a free loopback port with a real
SQLite file.
"""

from __future__ import annotations

import json
import math
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from microsip_bridge import hook, model, wire
from microsip_bridge.microsip.cmdline import microsip_run_command
from microsip_bridge.model import EventRecord
from tests.daemon_support import (
    HOOK,
    HOOK_DIRECT,
    hook_log,
    hung_daemon,
    live_daemon,
    publish,
    run_hook,
    spool_drained,
    spool_lines,
    start_hook,
    start_hooks,
    stored_calls,
    stored_events,
    wait_until,
)

# Modules whose import would blow the hook's time budget (stack.md §2.2): the hook must not
# import them on any path.
HEAVY = {
    "json",
    "re",
    "socket",
    "selectors",
    "http",
    "urllib",
    "logging",
    "argparse",
    "asyncio",
    "enum",
    "typing",
    "pathlib",
    "uuid",
    "threading",
}

PROBE = r"""
import sys
base = set(sys.modules)
import microsip_bridge.hook as hook
sys.argv = ["microsip-bridge-hook", *sys.argv[1:]]
try:
    hook.main()
except SystemExit as exc:
    code = exc.code
sys.stdout.write(repr((code, sorted(set(sys.modules) - base))))
sys.stdout.flush()
"""


def probe_imports(home: Path, *args: str) -> tuple[int, list[str], list[str]]:
    """Run the hook's main() in a fresh interpreter under -X importtime; returns its exit code,
    the modules it added to sys.modules, and the modules -X importtime saw imported."""
    proc = subprocess.run(
        [sys.executable, "-I", "-X", "importtime", "-c", PROBE, *args],
        env={**os.environ, "MICROSIP_BRIDGE_HOME": str(home)},
        capture_output=True,
        timeout=30,
        check=True,
    )
    code, added = eval(proc.stdout.decode())  # our own repr() of a tuple of ints and strings
    timed = [
        line.split("|")[-1].strip()
        for line in proc.stderr.decode().splitlines()
        if line.startswith("import time:") and "|" in line and "cumulative" not in line
    ]
    return code, added, timed


def assert_stdlib_only(added: list[str], timed: list[str]) -> None:
    ours = {"microsip_bridge", "microsip_bridge.hook", "microsip_bridge.wire"}
    foreign = [m for m in added if m not in ours and m.split(".")[0] not in sys.stdlib_module_names]
    assert foreign == []
    assert HEAVY.isdisjoint({m.split(".")[0] for m in added})
    # -X importtime lists what was actually imported: it agrees with sys.modules.
    assert set(added) - {"__main__"} <= set(timed)
    assert "microsip_bridge.hook" in timed


# --- standard library only -----------------------------------------------------------------------


def test_spool_path_imports_only_the_standard_library(bridge_home: Path) -> None:
    code, added, timed = probe_imports(bridge_home, "ring", "5551234")
    assert code == 0
    assert_stdlib_only(added, timed)
    assert spool_lines(bridge_home)[0]["number"] == "5551234"


def test_post_path_imports_only_the_standard_library(bridge_home: Path) -> None:
    with live_daemon(bridge_home):
        code, added, timed = probe_imports(bridge_home, "incoming", "1001")
        assert code == 0
        assert_stdlib_only(added, timed)
        assert "_socket" in added  # it did talk to the daemon...
    assert spool_lines(bridge_home) == []  # ...and did not need the spool
    assert [e.number for e in stored_events(bridge_home)] == ["1001"]


def test_the_event_enum_is_built_on_the_wire_names_and_the_hook_never_loads_it() -> None:
    assert tuple(e.value for e in model.Event) == wire.EVENT_NAMES
    assert not hasattr(hook, "Event")  # the hook works with the plain names (enum costs 5 ms)


# --- the spool path ----------------------------------------------------------------------------


def test_without_a_daemon_the_event_is_spooled_at_once(bridge_home: Path) -> None:
    before = time.time()
    proc = start_hook(bridge_home, "ring", "5551234")
    assert proc.wait(30) == 0
    after = time.time()
    [line] = spool_lines(bridge_home)
    assert line["event"] == "ring"
    assert line["number"] == "5551234"
    assert line["pid"] == proc.pid
    assert before <= line["ts"] <= after
    assert uuid.UUID(hex=line["id"]).version == 4
    # The line is what the daemon reads (calls/model.py).
    assert EventRecord.from_spool(line).number == "5551234"
    assert hook_log(bridge_home) == ""  # no daemon is normal, not worth a log line


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# Nobody listens there (it was free a moment ago): a daemon.json pointing at it is refused.
CLOSED_PORT = free_port()


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_daemon_killed_hard_leaves_daemon_json_and_the_hook_spools(bridge_home: Path) -> None:
    publish(bridge_home, free_port(), pid=dead_pid())
    assert run_hook(bridge_home, "end", "1001").returncode == 0
    assert [line["event"] for line in spool_lines(bridge_home)] == ["end"]
    assert hook_log(bridge_home) == ""  # the daemon is gone: a refused connect is no news


def test_a_live_daemon_that_refuses_is_logged(bridge_home: Path) -> None:
    publish(bridge_home, free_port(), pid=os.getpid())
    assert run_hook(bridge_home, "end", "1001").returncode == 0
    assert len(spool_lines(bridge_home)) == 1
    assert "did not answer end in time; spooled it" in hook_log(bridge_home)


def full_fifo(path: Path) -> int:
    """A FIFO at ``path`` whose pipe is full and never read: a write to it blocks for ever (a
    hung disk). Returns the descriptor that keeps it open; close it when done."""
    os.mkfifo(path)
    fd = os.open(path, os.O_RDWR | os.O_NONBLOCK)
    try:
        while True:
            os.write(fd, b"x" * 65536)
    except BlockingIOError:
        pass
    return fd


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs a FIFO to block the spool write")
def test_the_watchdog_ends_a_hook_stuck_on_a_hung_disk(bridge_home: Path) -> None:
    bridge_home.mkdir(parents=True, exist_ok=True)
    fd = full_fifo(bridge_home / "spool.jsonl")
    try:
        started = time.monotonic()
        result = run_hook(bridge_home, "incoming", "1001", timeout=20)
        took = time.monotonic() - started
    finally:
        os.close(fd)
    assert result.returncode == hook.EXIT_FAILED
    # The spool write had started: the watchdog gave it SPOOL_GRACE before giving up.
    assert hook.WATCHDOG_AT + hook.SPOOL_GRACE <= took < hook.WATCHDOG_AT + hook.SPOOL_GRACE + 5
    assert "gave up after" in hook_log(bridge_home)
    assert "'incoming', '1001'" in hook_log(bridge_home)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs a FIFO to block the log")
def test_the_event_is_spooled_before_anything_is_logged(bridge_home: Path) -> None:
    # The log hangs (a FIFO nobody reads) and the daemon never answers: the log line about
    # that must not stand between the event and the spool.
    (bridge_home / "logs").mkdir(parents=True)
    os.mkfifo(bridge_home / "logs" / "hook.log")
    with hung_daemon(bridge_home):
        result = run_hook(bridge_home, "end", "1001", timeout=20)
    assert result.returncode == hook.EXIT_OK  # the event was safe when the watchdog came
    assert [line["number"] for line in spool_lines(bridge_home)] == ["1001"]


STUCK_HOOK = """
import time
from microsip_bridge import hook
def stuck(*args, **kwargs):
    time.sleep(30)  # a POST that never comes back (a starved process looks the same)
hook.post = stuck
hook.main()
"""


def test_the_watchdog_spools_an_event_the_main_thread_could_not(bridge_home: Path) -> None:
    publish(bridge_home, free_port(), pid=os.getpid())
    started = time.monotonic()
    result = run_hook(bridge_home, "ring", "1001", command=[sys.executable, "-I", "-c", STUCK_HOOK])
    assert time.monotonic() - started < hook.RUN_DEADLINE + 2
    assert result.returncode == hook.EXIT_OK, result.stderr.decode()
    [line] = spool_lines(bridge_home)
    assert (line["event"], line["number"]) == ("ring", "1001")
    assert "spooled ring" in hook_log(bridge_home)


def test_the_post_gets_only_what_the_spool_leaves_of_the_budget(bridge_home: Path) -> None:
    with hung_daemon(bridge_home) as held:
        # Start-up took long (a loaded PC): no time is left for the daemon, the event is
        # spooled at once.
        began = time.monotonic()
        late = began - (hook.WATCHDOG_AT - hook.SPOOL_RESERVE)
        assert hook.run(["ring", "1001"], bridge_home, started=late) == hook.EXIT_OK
        assert time.monotonic() - began < 0.2
        assert held == []
        # A little time left: the POST gets that, not POST_DEADLINE.
        began = time.monotonic()
        assert hook.run(["ring", "1002"], bridge_home, started=late + 0.2) == hook.EXIT_OK
        assert 0.15 <= time.monotonic() - began < hook.POST_DEADLINE
    assert [line["number"] for line in spool_lines(bridge_home)] == ["1001", "1002"]
    assert "no time left to try the daemon" in hook_log(bridge_home)


@pytest.mark.slow
def test_a_hundred_hooks_at_once_against_a_hung_daemon_spool_every_event(
    bridge_home: Path,
) -> None:
    # The issue: 50 hooks at once against a wedged daemon lost events; on 2 cores, 100 python
    # processes take seconds to start, and each hook must still make its event safe.
    numbers = [str(n) for n in range(100)]
    with hung_daemon(bridge_home):
        codes = start_hooks(bridge_home, numbers)
    spooled = [line["number"] for line in spool_lines(bridge_home)]
    assert sorted(set(spooled), key=int) == numbers, hook_log(bridge_home)[-2000:]
    assert codes == [hook.EXIT_OK] * len(numbers)


# --- the POST path -----------------------------------------------------------------------------


def test_with_a_daemon_the_event_is_posted_and_stored(bridge_home: Path) -> None:
    with live_daemon(bridge_home):
        proc = start_hook(bridge_home, "incoming", "5551234")
        assert proc.wait(30) == 0
        [event] = stored_events(bridge_home)
    assert (event.event, event.number, event.source, event.pid) == (
        "incoming",
        "5551234",
        "hook",
        proc.pid,
    )
    assert event.call_id is not None
    assert spool_lines(bridge_home) == []
    [call] = stored_calls(bridge_home)
    assert (call.call_id, call.direction, call.state) == (event.call_id, "incoming", "ringing")


def test_a_wrong_token_gets_401_and_the_event_is_spooled_then_ingested(bridge_home: Path) -> None:
    with live_daemon(bridge_home):
        real = (bridge_home / "token").read_text()
        (bridge_home / "token").write_text("w" * 43 + "\n")
        assert run_hook(bridge_home, "answer", "1001").returncode == 0
        assert "daemon answered 401 to answer; spooled it" in hook_log(bridge_home)
        (bridge_home / "token").write_text(real)
        # The daemon ingests its spool every spool_interval (0.2 s here).
        # Wait for the commit, not just the spool's rename: ingestion claims the file first.
        wait_until(lambda: len(stored_events(bridge_home)) == 1, what="spool ingestion")
        [event] = stored_events(bridge_home)
    assert (event.event, event.source) == ("answer", "spool")
    assert not (bridge_home / "spool.jsonl").exists()


@pytest.fixture
def silent_daemon(bridge_home: Path) -> Iterator[dict[str, float]]:
    """A 'daemon' that accepts connections and never answers; reports how long the hook held
    the connection (from accept to the hook closing it)."""
    server = socket.create_server(("127.0.0.1", 0))
    seen: dict[str, float] = {}

    def serve() -> None:
        conn, _ = server.accept()
        with conn:
            accepted = time.monotonic()
            conn.settimeout(30)
            while True:
                try:
                    if not conn.recv(65536):
                        break
                except OSError:
                    break
            seen["held"] = time.monotonic() - accepted

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    publish(bridge_home, server.getsockname()[1], pid=os.getpid())
    yield seen
    thread.join(30)
    server.close()


def test_a_daemon_that_never_answers_costs_the_hook_under_a_second(
    bridge_home: Path, silent_daemon: dict[str, float]
) -> None:
    result = run_hook(bridge_home, "incoming", "1001", timeout=20)
    assert result.returncode == 0
    assert [line["event"] for line in spool_lines(bridge_home)] == ["incoming"]
    assert "did not answer incoming in time" in hook_log(bridge_home)
    # The hook's own deadline, seen by the peer (not the process start-up): the whole point of
    # POST_DEADLINE is that MicroSIP's SIP thread waits for us (facts §2.3).
    assert hook.POST_DEADLINE * 0.8 <= silent_daemon["held"] < hook.RUN_DEADLINE


@pytest.mark.parametrize(
    ("status", "logged"), [(500, "answered 500"), (503, "answered 503"), (404, "answered 404")]
)
def test_an_http_error_spools_the_event(bridge_home: Path, status: int, logged: str) -> None:
    server = socket.create_server(("127.0.0.1", 0))

    def answer() -> None:
        conn, _ = server.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(f"HTTP/1.1 {status} Oops\r\nContent-Length: 0\r\n\r\n".encode())

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    publish(bridge_home, server.getsockname()[1], pid=os.getpid())
    record = wire.make_record("busy", "1001")
    assert hook.deliver(record, bridge_home) == "spooled"
    thread.join(10)
    server.close()
    assert spool_lines(bridge_home) == [record]
    assert logged in hook_log(bridge_home)


# --- hostile numbers -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shared_daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    home = tmp_path_factory.mktemp("hostile")
    with live_daemon(home):
        yield home


HOSTILE = [
    (["&calc"], "&calc"),
    (['"; rm -rf ~'], '"; rm -rf ~'),
    (['";', "rm", "-rf", "~"], '"; rm -rf ~'),  # split by CommandLineToArgvW, rejoined
    (["$(id)"], "$(id)"),
    (["`id`"], "`id`"),
    (["%PATH%"], "%PATH%"),  # no expansion anywhere (facts §2.3: no DOENVSUBST)
    (["$(touch", "PWNED)"], "$(touch PWNED)"),
    (["1001;", "touch", "PWNED2"], "1001; touch PWNED2"),
    (["a|b>c<d"], "a|b>c<d"),
    (["\u202ebidi\u202c", "名前"], "\u202ebidi\u202c 名前"),
    ([], ""),  # facts §2.4: an empty value adds no argument
    ([""], ""),
]


@pytest.mark.parametrize(("argv", "stored"), HOSTILE)
def test_hostile_numbers_are_stored_verbatim_never_run(
    shared_daemon: Path, argv: list[str], stored: str
) -> None:
    before = len(stored_events(shared_daemon))
    result = run_hook(shared_daemon, "incoming", *argv)
    assert result.returncode == 0
    added = stored_events(shared_daemon)[before:]
    assert [(e.event, e.number) for e in added] == [("incoming", stored)]
    assert not list(shared_daemon.rglob("PWNED*"))  # nothing was executed
    assert spool_lines(shared_daemon) == []


def test_ten_thousand_characters_are_refused_with_a_log_line(shared_daemon: Path) -> None:
    before = len(stored_events(shared_daemon))
    result = run_hook(shared_daemon, "ring", "9" * 10_000)
    assert result.returncode == hook.EXIT_USAGE
    assert len(stored_events(shared_daemon)) == before
    assert f"refused: ring number of 10000 characters (max {wire.MAX_NUMBER_CHARS})" in hook_log(
        shared_daemon
    )
    assert spool_lines(shared_daemon) == []


@pytest.mark.skipif(sys.platform == "win32", reason="Windows argv is UTF-16, never raw bytes")
def test_bytes_that_are_not_utf8_are_stored_with_a_replacement_character(
    shared_daemon: Path, caplog: pytest.LogCaptureFixture
) -> None:
    before = len(stored_events(shared_daemon))
    with caplog.at_level("WARNING", logger="microsip_bridge.ingest"):
        result = run_hook(shared_daemon, b"end", b"\xff\xfe555\xc3")
    assert result.returncode == 0
    [event] = stored_events(shared_daemon)[before:]
    # What bytes.decode("utf-8", "replace") gives, and what MicroSIP on Windows would show.
    assert event.number == "\ufffd\ufffd555\ufffd"
    assert "ff fe 35 35 35 c3" in caplog.text  # the raw bytes are kept in the daemon's log


def test_hostile_numbers_survive_the_spool_too(bridge_home: Path) -> None:
    numbers = ["&calc", '"; rm -rf ~', "$(id)", "%PATH%", ""]
    for number in numbers:
        assert run_hook(bridge_home, "ring", *([number] if number else [])).returncode == 0
    if sys.platform != "win32":
        assert run_hook(bridge_home, b"ring", b"\xff1001").returncode == 0
    lines = spool_lines(bridge_home)
    assert [line["number"] for line in lines[: len(numbers)]] == numbers
    raw = (bridge_home / "spool.jsonl").read_bytes()
    assert raw.isascii()  # escaped, whatever the number held
    with live_daemon(bridge_home):
        wait_until(lambda: spool_drained(bridge_home), what="spool ingestion")
        stored = [e.number for e in stored_events(bridge_home)]
    expected = numbers + ([] if sys.platform == "win32" else ["\ufffd1001"])
    assert sorted(stored) == sorted(expected)


def test_no_event_at_all_is_refused_with_a_log_line(bridge_home: Path) -> None:
    result = run_hook(bridge_home)
    assert result.returncode == hook.EXIT_USAGE
    assert "usage: microsip-bridge-hook EVENT" in result.stderr.decode()
    assert "refused: no event given" in hook_log(bridge_home)
    assert spool_lines(bridge_home) == []


def test_an_unknown_event_is_refused_with_a_log_line(bridge_home: Path) -> None:
    result = run_hook(bridge_home, "$(reboot)", "1001")
    assert result.returncode == hook.EXIT_USAGE
    assert "refused: unknown event '$(reboot)'" in hook_log(bridge_home)
    assert spool_lines(bridge_home) == []


def test_help_is_not_an_event(bridge_home: Path) -> None:
    assert hook.run(["--help"], bridge_home) == hook.EXIT_OK
    assert spool_lines(bridge_home) == []


def test_a_nul_in_a_number_given_by_hand_is_refused(bridge_home: Path) -> None:
    assert hook.run(["ring", "10\x0001"], bridge_home) == hook.EXIT_USAGE
    assert "NUL" in hook_log(bridge_home)


def test_the_inline_form_survives_microsips_command_line_handling() -> None:
    # facts §2.3: the value is split with CommandLineToArgvW, re-joined unquoted, the number
    # appended unquoted; what the child gets must still be `-c<code> EVENT NUMBER`.
    value = rf'"C:\Program Files\Python312\pythonw.exe" -I -c{wire.INLINE_CODE} ring'
    argv = microsip_run_command(value, "5551234")
    assert argv[1:] == ["-I", f"-c{wire.INLINE_CODE}", "ring", "5551234"]


def test_the_direct_form_behaves_like_the_installed_script(bridge_home: Path) -> None:
    assert run_hook(bridge_home, "ring", "42", command=HOOK_DIRECT).returncode == 0
    assert run_hook(bridge_home, "ring", "43", command=HOOK).returncode == 0
    assert [line["number"] for line in spool_lines(bridge_home)] == ["42", "43"]


# --- the pieces ----------------------------------------------------------------------------------

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()  # includes lone surrogates: bytes that were not UTF-8
)


@given(st.dictionaries(st.text(), json_scalars, max_size=8))
def test_encode_record_is_json_dumps_in_ascii(record: dict[str, object]) -> None:
    expected = json.dumps(record, ensure_ascii=True, separators=(",", ":"))
    assert wire.encode_record(record) == expected


@pytest.mark.parametrize("bad", [math.nan, math.inf, b"bytes", [1], {"a": 1}])
def test_encode_record_refuses_what_it_cannot_write(bad: object) -> None:
    with pytest.raises(ValueError, match="x"):
        wire.encode_record({"x": bad})


json_values = st.recursive(
    json_scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner)
)


@given(json_values)
def test_parse_json_reads_what_json_writes(value: object) -> None:
    text = json.dumps(value)
    assert wire.parse_json(text) == json.loads(text)
    assert wire.parse_json(" \n" + json.dumps(value, indent=2) + "\n") == json.loads(text)


@pytest.mark.parametrize("bad", ["", "{", "NaN", '{"a": NaN}', "[1] x", "{'a': 1}", "[1,]"])
def test_parse_json_refuses_what_is_not_strict_json(bad: str) -> None:
    with pytest.raises(ValueError, match=r"."):
        wire.parse_json(bad)


@pytest.mark.parametrize("bad", ['{"host":"127.0.0.1","port":5', '{"a":"\\x', '"abc', "[1,2"])
def test_parse_json_refuses_damage_when_json_is_not_loaded(
    monkeypatch: pytest.MonkeyPatch, bad: str
) -> None:
    # As in the hook's process: Python 3.11's scanner then cannot raise its JSONDecodeError.
    monkeypatch.delitem(sys.modules, "json.decoder")
    with pytest.raises(ValueError, match=r"."):  # 3.12 imports json for its own message
        wire.parse_json(bad)


def test_read_daemon_gives_the_address_and_token(bridge_home: Path) -> None:
    publish(bridge_home, 5797, pid=1, token="abc_DEF-123" * 4)
    assert hook.read_daemon(bridge_home) == ("127.0.0.1", 5797, "abc_DEF-123" * 4)


@pytest.mark.parametrize(
    ("daemon_json", "token", "logged"),
    [
        ("{not json", "t" * 43, "damaged daemon.json"),
        ('{"host": "127.0.0.1"}', "t" * 43, "no host and port"),
        ('{"host": "127.0.0.1", "port": 70000}', "t" * 43, "no host and port"),
        ('{"host": "127.0.0.1", "port": true}', "t" * 43, "no host and port"),
        ('{"host": "127.0.0.1", "port": 5797}', "", "no usable token"),
        ('{"host": "127.0.0.1", "port": 5797}', "abc\r\nX-Evil: 1", "no usable token"),
    ],
)
def test_read_daemon_refuses_damaged_files(
    bridge_home: Path, daemon_json: str, token: str, logged: str
) -> None:
    bridge_home.mkdir(parents=True, exist_ok=True)
    (bridge_home / "daemon.json").write_text(daemon_json)
    (bridge_home / "token").write_text(token)
    assert hook.read_daemon(bridge_home) is None
    assert logged in hook_log(bridge_home)
    # And the event is not lost: it goes to the spool.
    assert hook.deliver(wire.make_record("ring", "1"), bridge_home) == "spooled"


DAMAGED_DAEMON_JSON = [
    b'{"host":"127.0.0.1","port":5',  # the issue: truncated mid-write
    b'{"host":"127.0.0.1","port":5797,"pid":1',
    b'{"host":"127.0.0.1","port":5797,"pid":"',
    b'{"a":"\\x',
    b"[1,2",
    b"",
    b"\xff\xfe{\x00",
    b'{"host":"127.0.0.1\\u0000","port":PORT}',
    b'{"host":"h\\u00e9.invalid","port":PORT}',
    b'{"host":"localhost.invalid","port":PORT}',
    b'{"host":"1.2.3","port":PORT}',
    b'{"host":"127.0.0.1","port":PORT,"pid":-1}',
    b'{"host":"127.0.0.1","port":PORT}' + b" " * 70_000,
]


@pytest.mark.parametrize("content", DAMAGED_DAEMON_JSON)
def test_any_daemon_json_leaves_the_event_spooled(bridge_home: Path, content: bytes) -> None:
    # The real hook in its own process: there, unlike in this test, json is not loaded.
    bridge_home.mkdir(parents=True, exist_ok=True)
    (bridge_home / "daemon.json").write_bytes(content.replace(b"PORT", str(free_port()).encode()))
    (bridge_home / "token").write_text("t" * 43)
    result = run_hook(bridge_home, "ring", "1001", command=HOOK_DIRECT)
    assert result.returncode == hook.EXIT_OK, hook_log(bridge_home)
    assert [line["number"] for line in spool_lines(bridge_home)] == ["1001"]
    assert "internal error" not in hook_log(bridge_home)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    daemon_json=st.binary(max_size=80)
    | st.builds(
        lambda host, extra: json.dumps({"host": host, "port": CLOSED_PORT, **extra}).encode(),
        st.text(max_size=20) | st.sampled_from(["127.0.0.1", "::1", "0.0.0.0"]),
        st.dictionaries(st.sampled_from(["pid", "token_file", "url"]), json_scalars),
    ),
    token=st.binary(max_size=60) | st.just(b"t" * 43),
)
def test_no_content_of_daemon_json_or_the_token_loses_the_event(
    daemon_json: bytes, token: bytes
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        home = Path(folder)
        (home / "daemon.json").write_bytes(daemon_json)
        (home / "token").write_bytes(token)
        record = wire.make_record("ring", "1001")
        assert hook.deliver(record, home) == "spooled"
        assert spool_lines(home) == [record]


def test_the_request_is_well_formed_http() -> None:
    body = b'{"v":1}'
    request = hook.build_request("127.0.0.1", 5797, "tok", body)
    head, _, rest = request.partition(b"\r\n\r\n")
    lines = head.decode("ascii").split("\r\n")
    assert lines[0] == "POST /api/v1/hook-events HTTP/1.1"
    headers = dict(line.split(": ", 1) for line in lines[1:])
    assert headers["Host"] == "127.0.0.1:5797"
    assert headers["Authorization"] == "Bearer tok"
    assert int(headers["Content-Length"]) == len(rest) == len(body)
    assert hook.build_request("::1", 80, "t", b"").split(b"\r\n")[1] == b"Host: [::1]:80"


def test_the_log_is_cut_to_one_old_generation(bridge_home: Path) -> None:
    log = bridge_home / "logs" / "hook.log"
    log.parent.mkdir(parents=True)
    log.write_bytes(b"x" * (hook.MAX_LOG_BYTES + 1))
    hook.log("fresh line", bridge_home)
    assert log.read_text().endswith("fresh line\n")
    assert log.stat().st_size < 200
    assert (bridge_home / "logs" / "hook.log.1").stat().st_size == hook.MAX_LOG_BYTES + 1


def test_home_dir_and_bridge_home_agree(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("MICROSIP_BRIDGE_HOME")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    monkeypatch.setenv("LOCALAPPDATA", str(tmp_path))
    assert wire.bridge_home() == Path(wire.home_dir()) == tmp_path / "microsip-bridge"
