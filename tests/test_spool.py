"""Spool ingestion: every spooled event exactly once, across crashes and concurrent hooks."""

from __future__ import annotations

import collections
import json
import os
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

import pytest

from microsip_bridge import wire
from microsip_bridge.calls import spool
from microsip_bridge.calls.ingest import Ingestor
from microsip_bridge.calls.state import CallTracker
from microsip_bridge.model import EventRecord
from microsip_bridge.store.engine import make_engine
from tests.daemon_support import run_hook, stored_events


class Collector:
    """A handler that keeps what it was given, batch by batch."""

    def __init__(self) -> None:
        self.batches: list[list[EventRecord]] = []

    def __call__(self, recs: Sequence[EventRecord]) -> None:
        self.batches.append(list(recs))

    @property
    def numbers(self) -> list[str]:
        return [r.number for batch in self.batches for r in batch]


def spool_numbers(home: Path, numbers: list[str], event: str = "ring") -> list[dict[str, object]]:
    records = [wire.make_record(event, n) for n in numbers]
    for record in records:
        wire.spool(record, home)
    return records


def test_every_line_is_ingested_and_the_file_deleted(bridge_home: Path) -> None:
    spool_numbers(bridge_home, [str(n) for n in range(7)])
    seen = Collector()
    report = spool.ingest_spool(bridge_home, seen, batch=3)
    assert seen.numbers == [str(n) for n in range(7)]
    assert [len(b) for b in seen.batches] == [3, 3, 1]
    assert all(r.source == "spool" for b in seen.batches for r in b)
    assert (report.files, report.events, report.rejected, report.busy) == (1, 7, 0, [])
    assert list(bridge_home.glob("spool*")) == []


def test_nothing_to_do_without_a_spool(bridge_home: Path) -> None:
    seen = Collector()
    assert spool.ingest_spool(bridge_home, seen) == spool.SpoolReport()
    assert seen.batches == []


def test_leftovers_of_an_interrupted_round_come_first_oldest_first(bridge_home: Path) -> None:
    for stamp, number in ((200, "second"), (100, "first")):
        (bridge_home / f"spool.{stamp}.ingesting").write_text(
            json.dumps(wire.make_record("ring", number)) + "\n"
        )
    spool_numbers(bridge_home, ["third"])
    seen = Collector()
    report = spool.ingest_spool(bridge_home, seen)
    assert seen.numbers == ["first", "second", "third"]
    assert report.files == 3
    assert list(bridge_home.glob("spool*")) == []


DAMAGED = [
    (b"not json at all", "not JSON"),
    (b'{"v": 1, "event": "ring", "ts": 1.0}', "event id"),
    (b'{"v": 1, "id": "a1", "event": "ring", "ts": 1.0, "number": 5}', "number must be text"),
    (b'{"v": 1, "id": "a2", "event": "explode", "ts": 1.0}', "unknown event"),
    (b'{"v": 2, "id": "a3", "event": "ring", "ts": 1.0}', "version"),
    (b'{"v": 1, "id": "a4", "event": "ring", "ts": 1.0, "number": "\xc3\xa9"}', "not ASCII"),
    (b'["a", "list"]', "JSON object"),
    (b"{" * 100_000, "bytes (max"),
]


def test_damaged_lines_are_set_aside_with_the_reason(
    bridge_home: Path, caplog: pytest.LogCaptureFixture
) -> None:
    good = wire.encode_record(wire.make_record("end", "1001")).encode()
    lines = [good] + [line for line, _ in DAMAGED] + [b"", good.replace(b"1001", b"1002")]
    torn = b'{"v":1,"id":"tail","event":"ri'  # a write cut short: no newline
    (bridge_home / "spool.jsonl").write_bytes(b"\n".join(lines) + b"\n" + torn)
    seen = Collector()
    with caplog.at_level("WARNING", logger="microsip_bridge.spool"):
        report = spool.ingest_spool(bridge_home, seen)
    assert seen.numbers == ["1001", "1002"]
    assert report.rejected == len(DAMAGED) + 1
    rejected = [
        json.loads(line) for line in (bridge_home / spool.REJECTED_NAME).read_text().splitlines()
    ]
    reasons = [r["reason"] for r in rejected]
    for (_, expected), reason in zip(DAMAGED, reasons, strict=False):
        assert expected in reason
    assert "incomplete line" in reasons[-1]
    assert [r["line"] for r in rejected] == [*range(2, 2 + len(DAMAGED)), len(lines) + 1]
    assert rejected[0]["text"] == "not json at all"
    assert rejected[-1]["text"] == torn.decode()
    assert all(r["file"].endswith(".ingesting") for r in rejected)
    assert caplog.text.count("rejected line") == len(DAMAGED) + 1
    assert not (bridge_home / "spool.jsonl").exists()


TORN = b'{"v":1,"id":"0123456789abcdef","event":"ri'  # a write cut short by a full disk


def test_a_torn_line_does_not_swallow_the_next_event(bridge_home: Path) -> None:
    (bridge_home / "spool.jsonl").write_bytes(TORN)  # half a line, no newline
    assert run_hook(bridge_home, "end", "1001").returncode == 0  # the real hook, no daemon
    engine = make_engine(None, bridge_home)
    ingestor = Ingestor(engine, CallTracker(), home=bridge_home)
    ingestor.start()
    ingestor.stop()
    engine.dispose()
    assert [(e.event, e.number) for e in stored_events(bridge_home)] == [("end", "1001")]
    [rejected] = (bridge_home / spool.REJECTED_NAME).read_text().splitlines()
    assert json.loads(rejected)["text"] == TORN.decode()


def test_a_short_write_leaves_no_torn_line(
    bridge_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_write = os.write

    def disk_full(fd: int, data: bytes) -> int:
        monkeypatch.setattr(os, "write", real_write)  # the disk fills up once
        return real_write(fd, data[: len(data) // 2])

    monkeypatch.setattr(os, "write", disk_full)
    with pytest.raises(OSError, match="short write"):
        wire.spool(wire.make_record("ring", "lost"), bridge_home)
    wire.spool(wire.make_record("ring", "1002"), bridge_home)
    seen = Collector()
    report = spool.ingest_spool(bridge_home, seen)
    assert seen.numbers == ["1002"]
    assert report.rejected == 1


@pytest.mark.parametrize(
    "damage",
    [
        TORN,
        TORN + TORN,  # two torn writes in a row
        b'{"v":1,"id":"x","event":"ring","ts":1.0,',
        b"\x00\x00\x00",  # what some filesystems leave after a crash
        b"garbage",
    ],
)
def test_a_good_record_is_recovered_from_a_damaged_line(bridge_home: Path, damage: bytes) -> None:
    # Half a line and the next record on one physical line: what a hook's append makes of a
    # torn line when another hook tore it at the same moment (or an older hook wrote it).
    good = wire.encode_record(wire.make_record("ring", "1003")).encode()
    after = wire.encode_record(wire.make_record("ring", "1004")).encode()
    (bridge_home / "spool.jsonl").write_bytes(damage + good + b"\n" + after + b"\n")
    seen = Collector()
    report = spool.ingest_spool(bridge_home, seen)
    assert seen.numbers == ["1003", "1004"]
    assert report.rejected >= 1
    texts = [
        json.loads(line)["text"]
        for line in (bridge_home / spool.REJECTED_NAME).read_text().splitlines()
    ]
    assert "".join(texts) == damage.decode("utf-8", "backslashreplace")


def test_every_record_starts_with_the_mark_the_reader_splits_at() -> None:
    record = wire.make_record("ring", '{"v":1,"id":"fake"}')  # the mark inside a number
    line = wire.encode_record(record)
    assert line.startswith(wire.RECORD_MARK)
    assert line.count(wire.RECORD_MARK) == 1  # quotes in values are escaped


def test_a_failing_handler_leaves_the_file_claimed_for_the_next_round(bridge_home: Path) -> None:
    spool_numbers(bridge_home, ["1", "2", "3"])

    def broken(recs: Sequence[EventRecord]) -> None:
        raise RuntimeError("database went away")

    with pytest.raises(RuntimeError, match="went away"):
        spool.ingest_spool(bridge_home, broken)
    [claimed] = spool.claimed_files(bridge_home)
    spool_numbers(bridge_home, ["4"])  # hooks keep spooling meanwhile
    seen = Collector()
    spool.ingest_spool(bridge_home, seen)
    assert seen.numbers == ["1", "2", "3", "4"]
    assert not claimed.exists()


def test_a_round_dying_before_the_delete_does_not_reject_twice(
    bridge_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (bridge_home / "spool.jsonl").write_text("garbage\n")
    real_unlink = Path.unlink

    def dies(self: Path, missing_ok: bool = False) -> None:
        raise OSError("power cut")

    monkeypatch.setattr(Path, "unlink", dies)
    with pytest.raises(OSError, match="power cut"):
        spool.ingest_spool(bridge_home, Collector())
    monkeypatch.setattr(Path, "unlink", real_unlink)
    spool.ingest_spool(bridge_home, Collector())
    assert len((bridge_home / spool.REJECTED_NAME).read_text().splitlines()) == 1


@pytest.mark.skipif(sys.platform == "win32", reason="flock: POSIX writers")
def test_a_writer_still_holding_the_claimed_file_is_waited_for(bridge_home: Path) -> None:
    import fcntl

    spool_numbers(bridge_home, ["early"])
    claimed = spool.claim(bridge_home)
    assert claimed is not None
    # A hook that opened spool.jsonl before the rename and holds its shared lock, mid-write.
    fd = os.open(claimed, os.O_WRONLY | os.O_APPEND)
    fcntl.flock(fd, fcntl.LOCK_SH)
    seen = Collector()
    report = spool.ingest_file(claimed, seen, timeout=0.1)
    assert report.busy == [claimed.name]
    assert seen.batches == []
    assert claimed.exists()  # left for the next round, not lost
    os.write(fd, (wire.encode_record(wire.make_record("ring", "late")) + "\n").encode())
    os.close(fd)
    spool.ingest_spool(bridge_home, seen)
    assert seen.numbers == ["early", "late"]


@pytest.mark.skipif(sys.platform == "win32", reason="flock: POSIX writers")
def test_a_hook_that_opened_the_spool_before_the_rename_writes_to_the_new_one(
    bridge_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spool_numbers(bridge_home, ["before"])
    real_lock = wire._lock_shared
    claimed: list[Path] = []

    def lock_after_the_daemon_claimed(fd: int) -> bool:
        # The daemon renames the spool between the hook's open() and its flock().
        if not claimed:
            found = spool.claim(bridge_home)
            assert found is not None
            claimed.append(found)
        return real_lock(fd)

    monkeypatch.setattr(wire, "_lock_shared", lock_after_the_daemon_claimed)
    wire.spool(wire.make_record("ring", "racing"), bridge_home)
    monkeypatch.undo()
    old = [json.loads(line)["number"] for line in claimed[0].read_text().splitlines()]
    new = [json.loads(line)["number"] for line in (bridge_home / "spool.jsonl").read_text().split()]
    assert (old, new) == (["before"], ["racing"])


def test_windows_rename_waits_for_hooks_holding_the_file(
    bridge_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spool_numbers(bridge_home, ["x"])
    real_rename = os.rename
    refusals = iter([True, True, False])

    def rename(src: object, dst: object) -> None:
        if next(refusals, False):
            raise PermissionError(32, "being used by another process")
        real_rename(src, dst)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "rename", rename)
    assert spool.claim(bridge_home) is not None

    spool_numbers(bridge_home, ["y"])
    monkeypatch.setattr(os, "rename", lambda s, d: (_ for _ in ()).throw(PermissionError(32, "")))
    report = spool.ingest_spool(bridge_home, Collector(), timeout=0.05)
    assert report.busy == ["spool.jsonl"]
    assert (bridge_home / "spool.jsonl").exists()


WRITER = """
import sys
from microsip_bridge import wire
home, name, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
for i in range(count):
    wire.spool(wire.make_record("ring", f"{name}-{i}"), home)
"""


def test_concurrent_hooks_lose_nothing_while_the_daemon_claims(bridge_home: Path) -> None:
    writers, count = 4, 300
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(bridge_home), f"w{w}", str(count)])
        for w in range(writers)
    ]
    seen = Collector()
    rounds = 0
    # Claim as often as possible while they write: the race the design is about.
    while any(p.poll() is None for p in procs):
        spool.ingest_spool(bridge_home, seen)
        rounds += 1
    for p in procs:
        assert p.wait() == 0
    spool.ingest_spool(bridge_home, seen)
    counts = collections.Counter(seen.numbers)
    expected = {f"w{w}-{i}" for w in range(writers) for i in range(count)}
    assert set(counts) == expected
    assert max(counts.values()) == 1  # each exactly once
    assert rounds > 1
    for w in range(writers):  # and each writer's lines in its order
        mine = [n for n in seen.numbers if n.startswith(f"w{w}-")]
        assert mine == [f"w{w}-{i}" for i in range(count)]
    assert list(bridge_home.glob("spool*")) == []


def test_concurrent_hooks_and_an_ingesting_thread_in_one_process(bridge_home: Path) -> None:
    stop = threading.Event()
    seen = Collector()

    def daemon() -> None:
        while not stop.is_set():
            spool.ingest_spool(bridge_home, seen)

    thread = threading.Thread(target=daemon)
    thread.start()
    written = spool_numbers(bridge_home, [str(n) for n in range(500)])
    stop.set()
    thread.join()
    spool.ingest_spool(bridge_home, seen)
    assert seen.numbers == [r["number"] for r in written]


# --- exactly once across a crash, with the real store ---------------------------------------

CRASHING_DAEMON = """
import os, sys
from pathlib import Path
from microsip_bridge.calls.ingest import Ingestor
from microsip_bridge.calls.state import CallTracker
from microsip_bridge.store.engine import make_engine
home, die_after = Path(sys.argv[1]), int(sys.argv[2])
ingestor = Ingestor(make_engine(None, home), CallTracker(), home=home, spool_batch=50)
write, done = ingestor._write, []
def write_then_die(recs):
    result = write(recs)          # committed...
    done.append(len(recs))
    if len(done) == die_after:
        os._exit(9)               # ...and the daemon dies before it goes on
    return result
ingestor._write = write_then_die
ingestor.start()
os._exit(0)
"""


@pytest.mark.parametrize("die_after", [1, 3, 6])  # mid-file, later, after the last batch
def test_each_event_is_stored_exactly_once_across_a_crash_mid_ingest(
    bridge_home: Path, die_after: int
) -> None:
    records = spool_numbers(bridge_home, [f"n{i}" for i in range(300)])  # 6 batches of 50
    crash = subprocess.run(
        [sys.executable, "-c", CRASHING_DAEMON, str(bridge_home), str(die_after)],
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert crash.returncode == 9, crash.stderr.decode()
    assert len(stored_events(bridge_home)) == 50 * die_after
    [leftover] = spool.claimed_files(bridge_home)  # the claimed file survived the crash
    wire.spool(wire.make_record("ring", "after"), bridge_home)  # and hooks went on spooling

    ingestor = Ingestor(make_engine(None, bridge_home), CallTracker(), home=bridge_home)
    ingestor.start()
    ingestor.stop()

    stored = stored_events(bridge_home)
    uids = [e.uid for e in stored]
    assert len(uids) == len(set(uids)) == 301
    assert set(uids) == {str(r["id"]) for r in records} | {uids[-1]}
    assert [e.number for e in stored][-1] == "after"
    assert not leftover.exists()
    assert list(bridge_home.glob("spool*")) == []


def test_a_record_the_store_refuses_is_set_aside_and_the_rest_stored(bridge_home: Path) -> None:
    good = wire.make_record("ring", "1001")
    huge_pid = {**wire.make_record("ring", "1002"), "pid": 2**70}  # valid JSON, no column fits
    wire.spool(good, bridge_home)
    wire.spool(huge_pid, bridge_home)
    engine = make_engine(None, bridge_home)
    ingestor = Ingestor(engine, CallTracker(), home=bridge_home)
    ingestor.start()
    ingestor.stop()
    engine.dispose()
    assert [e.uid for e in stored_events(bridge_home)] == [good["id"]]
    rejected = (bridge_home / spool.REJECTED_NAME).read_text().splitlines()
    [refused] = [json.loads(line) for line in rejected]
    assert "64 bits" in refused["reason"]
    assert json.loads(refused["text"])["id"] == huge_pid["id"]
    assert list(bridge_home.glob("spool*.*")) == [bridge_home / spool.REJECTED_NAME]
