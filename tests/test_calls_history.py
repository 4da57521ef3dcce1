"""The call history: MicroSIP's [Calls] ring read, ordered, written, filtered and exported."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import random
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from microsip_bridge.cli.history import format_duration, to_table
from microsip_bridge.errors import BridgeError, FileFormatError, NotFoundError, UnsafeInputError
from microsip_bridge.microsip.crt import INT_MAX, INT_MIN
from microsip_bridge.microsip.history import (
    CallEntry,
    CallHistory,
    CallType,
    filter_entries,
    parse_entry,
    parse_history,
    read_history,
)
from microsip_bridge.microsip.history_formats import (
    EXPORTERS,
    RECORD_FIELDS,
    entry_record,
    export,
    to_csv,
    to_json,
    to_microsip_csv,
    to_microsip_xml,
)
from microsip_bridge.microsip.history_ring import (
    append_entry,
    clear_history,
    delete_entry,
    format_entry,
    update_entry,
)
from microsip_bridge.microsip.inifile import IniDocument, IniEncoding, encode
from microsip_bridge.tables import display_width

CRLF = "\r\n"
UTC = dt.UTC
SASAMOSENKO = Path("ini") / "real-sasamosenko-3.2x.microsip.ini"
MICROTALK = Path("ini") / "real-microtalk-ng-2016.microsip.ini"
# Ours, of the same shapes (tests/fixture_files.py): a 3.21 history and a 2016 fork's.
HISTORY = Path("ini") / "history-3.21.microsip.ini"
FORK = Path("ini") / "fork-2016.microsip.ini"
WRAPPED_FILE = Path(__file__).resolve().parent / "data" / "microsip-wrapped.ini"


def utf16(text: str) -> bytes:
    """What MicroSIP writes: UTF-16LE with a BOM (facts §3.2)."""
    return encode(text, IniEncoding.UTF16LE)


def doc_of(*lines: str) -> IniDocument:
    return IniDocument.from_bytes(utf16(CRLF.join(lines) + CRLF))


def ring_position(history: CallHistory, entry: CallEntry) -> int:
    return (entry.key - history.next_key) % 1000


# --- a wrapped ring in the shape MicroSIP writes ---------------------------------------------
# facts §5: 1000 slots, callsLastKey = the slot written last, deleted calls are "null". The
# ring below has wrapped: slot 249 is the newest call, slot 250 (the oldest) was deleted, and the
# next call will overwrite it.

WRAP_LAST_KEY = 249
WRAP_NULLS = frozenset({7, 250, 500, 998})
WRAP_BASE = 1_700_000_000
_CALLERS = (
    ("101", "Reception"),
    ("+493012345678", "Müller, Jürgen"),
    ("8656420197", "Hard (Академическая)"),
    ("alice@sip.example.org", 'Alice & Bob\'s "Lab"'),
    ("*97", "Voicemail"),
    ("2001", "Γιώργος Παπαδόπουλος"),
    ("5551234,123#", "5551234"),  # DTMF commands stay in the number (facts §5)
    ("200", "王小明"),
    ("0049891234567", "0049891234567"),
)
_OUTCOMES = (  # type, info in the UI language (facts §5), whether the call was connected
    (CallType.INCOMING, "Call Ended", True),
    (CallType.OUTGOING, "Call Ended", True),
    (CallType.MISSED, "Missed Call", False),
    (CallType.OUTGOING, "Canceled", False),
    (CallType.INCOMING, "Anruf beendet", True),
    (CallType.ANSWERED_ELSEWHERE, "Answered Elsewhere", False),
    (CallType.OUTGOING, "Busy Here", False),
    (CallType.INCOMING, "", True),
)


def wrap_position(slot: int) -> int:
    return (slot - (WRAP_LAST_KEY + 1)) % 1000


def wrap_time(slot: int) -> int:
    # An hour apart, except two pairs of calls in the same second: slots 999 and 0 (across the
    # wrap) and slots 100 and 101.
    position = wrap_position(slot)
    return WRAP_BASE + position * 3600 - (3600 if position in (750, 851) else 0)


def wrap_value(slot: int) -> str:
    if slot in WRAP_NULLS:
        return "null"
    number, name = _CALLERS[slot % len(_CALLERS)]
    call_type, info, connected = _OUTCOMES[slot % len(_OUTCOMES)]
    duration = (slot * 37) % 900 + 1 if connected else 0
    return f"{number};{name};{call_type.value};{wrap_time(slot)};{duration};{info}"


def wrapped_ini_text() -> str:
    settings_lines = [
        "[Settings]",
        "accountId=1",
        "singleMode=1",
        "ringingSound=",
        "volumeRing=100",
        'audioRingDevice=""',
        'audioOutputDevice=""',
        'audioInputDevice=""',
        "audioCodecs=opus/48000/2 G722/16000/1 PCMA/8000/1 PCMU/8000/1",
        "EC=1",
        "autoAnswer=button",
        "denyIncoming=button",
        "cmdOutgoingCall=",
        "cmdIncomingCall=",
        "cmdCallRing=",
        "cmdCallAnswer=",
        "cmdCallBusy=",
        "cmdCallStart=",
        "cmdCallEnd=",
        *(f"callsWidth{i}=0" for i in range(6)),
        "activeTab=1",
        "enableShortcuts=1",
        "lastCallNumber=101",
        "lastCallHasVideo=0",
        f"callsLastKey={WRAP_LAST_KEY}",
        "version=3.22.3",
    ]
    account = [
        "[Account1]",
        "label=agent",
        "server=pbx.example.invalid",
        "proxy=",
        "domain=pbx.example.invalid",
        "username=agent",
        "password=" + "0" * 32,
        "authID=agent",
        "displayName=Agent",
        "dialingPrefix=",
        "transport=udp",
        "registerRefresh=300",
        "keepAlive=15",
    ]
    calls = ["[Calls]", *(f"{slot}={wrap_value(slot)}" for slot in range(1000))]
    dialed = ["[Dialed]", *(f"{i}={n}" for i, n in enumerate(("101", "*97", "200", "2001")))]
    shortcuts = ["[Shortcuts]", "0=Reception;101;call;;0", "1=Voicemail;*97;call;;0"]
    return CRLF.join([*settings_lines, *account, *calls, *dialed, *shortcuts]) + CRLF


def wrapped_ini_bytes() -> bytes:
    return utf16(wrapped_ini_text())


@pytest.fixture
def wrapped() -> IniDocument:
    return IniDocument.from_bytes(wrapped_ini_bytes())


# --- the real world ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sample", "count", "latest_name"),
    [(f"data/{HISTORY}", 30, "SALES DESK"), (f"corpus/{SASAMOSENKO}", 44, "TEST")],
    indirect=["sample"],
)
def test_a_3_2x_history_has_all_its_calls(sample: Path, count: int, latest_name: str) -> None:
    # Written by MicroSIP 3.2x: slots 0 to count-1, callsLastKey=count-1 (facts §5).
    history = read_history(IniDocument.load(sample))
    assert history.problems == ()
    assert len(history.entries) == count
    assert [e.key for e in history.entries] == list(range(count))
    assert (history.last_key, history.next_key, history.last_key_inferred) == (
        count - 1,
        count,
        False,
    )
    latest = history.latest
    assert latest is not None
    assert (latest.key, latest.name, latest.type) == (count - 1, latest_name, CallType.INCOMING)


def test_a_3_21_history_keeps_cyrillic_type_3_and_empty_info(data_dir: Path) -> None:
    history = read_history(IniDocument.load(data_dir / HISTORY))
    first = history.get(0)
    assert first == CallEntry(
        0, "2231405", "Бухгалтерия (Иванова)", CallType.INCOMING, 1730102400, 0, ""
    )
    assert first.started_at == dt.datetime(2024, 10, 28, 8, 0, 0, tzinfo=UTC)
    elsewhere = history.get(28)
    assert elsewhere is not None
    # Type 3 is S22 only (facts §5); it must not be clamped to outgoing as S19/S20 do.
    assert elsewhere.type is CallType.ANSWERED_ELSEWHERE
    assert elsewhere.info == "Answered Elsewhere"
    assert history.get(6) == CallEntry(
        6, "queue-7723", "5096612", CallType.OUTGOING, 1740000000, 31, "Call Ended"
    )


def test_sasamosenko_cyrillic_name_type_3_and_empty_info(corpus: Path) -> None:
    history = read_history(IniDocument.load(corpus / SASAMOSENKO))
    first = history.get(0)
    assert first == CallEntry(
        0, "8656420197", "Hard (Академическая)", CallType.INCOMING, 1718273159, 0, ""
    )
    assert first.started_at == dt.datetime(2024, 6, 13, 10, 5, 59, tzinfo=UTC)
    elsewhere = history.get(42)
    assert elsewhere is not None
    # Type 3 is S22 only (facts §5); it must not be clamped to outgoing as S19/S20 do.
    assert elsewhere.type is CallType.ANSWERED_ELSEWHERE
    assert elsewhere.info == "Answered Elsewhere"
    assert history.get(6) == CallEntry(
        6, "ivr-666668701382953", "8701382953", CallType.OUTGOING, 1742375709, 28, "Call Ended"
    )


@pytest.mark.parametrize(
    ("sample", "second", "pair"),
    [(f"data/{HISTORY}", 1750086460, [12, 13]), (f"corpus/{SASAMOSENKO}", 1771493012, [20, 21])],
    indirect=["sample"],
)
def test_calls_in_the_same_second_keep_ring_order(
    sample: Path, second: int, pair: list[int]
) -> None:
    doc = IniDocument.load(sample)
    history = read_history(doc)
    keys = [e.key for e in history.entries]
    same = [e for e in history.entries if e.time == second]
    assert [e.key for e in same] == pair
    # The order comes from the ring, not from the order the pairs arrive in.
    shuffled = list(reversed(doc.items("Calls")))
    again = parse_history(shuffled, history.last_key)
    assert [e.key for e in again.entries] == keys


def test_a_2016_fork_without_callsLastKey(data_dir: Path) -> None:
    # No callsLastKey, infos mostly empty: the last key is inferred as below.
    history = read_history(IniDocument.load(data_dir / FORK))
    assert history.problems == ()
    assert len(history.entries) == 12
    assert history.last_key_inferred
    assert (history.last_key, history.next_key) == (11, 12)
    assert [e.key for e in history.entries] == list(range(12))
    assert history.get(0) == CallEntry(0, "100", "100", CallType.OUTGOING, 1457000000, 3, "")
    assert [e.key for e in history.entries if e.type is CallType.MISSED] == [4, 9]
    assert history.get(5) is not None
    assert history.get(5).info == "Request Terminated"  # type: ignore[union-attr]


def test_microtalk_2016_fork_without_callsLastKey(corpus: Path) -> None:
    # A 2016 fork: no callsLastKey, empty info fields (corpus README). MicroSIP 3.22 then takes
    # the first key holding the greatest time as the last one written (Calls.cpp CallsLoad).
    history = read_history(IniDocument.load(corpus / MICROTALK))
    assert history.problems == ()
    assert len(history.entries) == 11
    assert history.last_key_inferred
    assert (history.last_key, history.next_key) == (10, 11)
    assert [e.key for e in history.entries] == list(range(11))
    assert history.get(0) == CallEntry(0, "888", "888", CallType.OUTGOING, 1457459126, 1, "")
    assert [e.key for e in history.entries if e.type is CallType.MISSED] == [7, 8]
    assert history.get(5) is not None
    assert history.get(5).info == "Request Terminated"  # type: ignore[union-attr]


def test_calls_sharing_the_greatest_time_without_callsLastKey() -> None:
    # Old versions wrote keys in rising order, so the end of the first run of non-decreasing
    # times is the newest (3.14 CallsLoad); 3.22 writes next after the FIRST key holding the
    # greatest time (3.22 CallsLoad), overwriting slot 2 here, and so do we.
    pairs = [("0", _value(100)), ("1", _value(200)), ("2", _value(200)), ("3", _value(50))]
    history = parse_history(pairs, None)
    assert (history.last_key, history.next_key) == (2, 2)
    assert [e.key for e in history.entries] == [3, 0, 1, 2]
    doc = doc_of("[Calls]", *(f"{k}={v}" for k, v in pairs))
    assert append_entry(doc, "1", "x", CallType.OUTGOING, 300) == 2


@pytest.mark.parametrize(
    ("sample", "count"),
    [(f"data/{FORK}", 12), (f"corpus/{MICROTALK}", 11)],
    indirect=["sample"],
)
def test_appending_to_the_2016_file_starts_callsLastKey(sample: Path, count: int) -> None:
    doc = IniDocument.load(sample)
    key = append_entry(doc, "555", "555", CallType.OUTGOING, 1458200000, 3, "Call Ended")
    assert key == count
    assert doc.get("Settings", "callsLastKey") == str(count)
    history = read_history(doc)
    assert not history.last_key_inferred
    assert len(history.entries) == count + 1
    assert history.latest == history.entries[-1]
    assert history.latest == CallEntry(
        count, "555", "555", CallType.OUTGOING, 1458200000, 3, "Call Ended"
    )


@pytest.mark.samples("ini/**/*.ini")
def test_every_sample_ini_reads_without_a_skipped_entry(sample: Path) -> None:
    history = read_history(IniDocument.load(sample))
    assert [p for p in history.problems if p.skipped] == []


@pytest.mark.parametrize(
    ("sample", "newest", "elsewhere", "oldest"),
    [
        (
            f"data/{HISTORY}",
            ["in", "SALES DESK", "5096612", "1760000000", "0", "Gone"],
            ["else", "Sales desk", "5096612", "1751090400", "0", "Answered Elsewhere"],
            ["in", "Бухгалтерия (Иванова)", "2231405", "1730102400", "0", ""],
        ),
        (
            f"corpus/{SASAMOSENKO}",
            ["in", "TEST", "8701382953", "1783164880", "0", "Gone"],
            ["else", "test", "8701382953", "1772793409", "0", "Answered Elsewhere"],
            ["in", "Hard (Академическая)", "8656420197", "1718273159", "0", ""],
        ),
    ],
    indirect=["sample"],
)
def test_exports_of_a_real_history_parse_back(
    sample: Path, newest: list[str], elsewhere: list[str], oldest: list[str]
) -> None:
    # The newest call was incoming, the one before it answered elsewhere (type 3).
    history = read_history(IniDocument.load(sample))
    count = len(history.entries)
    # MicroSIP's CSV export: UTF-8 with a BOM, newest first like its list (facts §5).
    data = to_microsip_csv(history.entries).encode("utf-8")
    assert data.startswith(b"\xef\xbb\xbfType,Name,Number,Time,Duration,Info\r\n")
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))
    assert len(rows) == count + 1
    assert rows[1] == newest
    assert rows[2] == elsewhere
    assert rows[-1] == oldest

    root = ET.fromstring(to_microsip_xml(history.entries).encode("utf-8"))
    calls = root.findall("call")
    assert root.tag == "calls"
    assert len(calls) == count
    assert calls[-1].attrib == dict(
        zip(("type", "name", "number", "time", "duration", "info"), oldest, strict=True)
    )

    records = json.loads(to_json(history.entries))
    assert [r["key"] for r in records] == list(range(count))
    assert records[count - 2]["type"] == "answered_elsewhere"
    assert records[count - 2]["type_code"] == 3


# --- the wrapped ring -------------------------------------------------------------------------


def test_the_wrapped_fixture_file_matches_its_generator() -> None:
    # tests/data/microsip-wrapped.ini is shared with the CLI tests; it must stay what this
    # module describes: UTF-16LE with a BOM and CRLF (facts §3.2).
    data = WRAPPED_FILE.read_bytes()
    assert data.startswith(b"\xff\xfe")
    assert data == wrapped_ini_bytes()
    doc = IniDocument.load(WRAPPED_FILE)
    assert doc.encoding is IniEncoding.UTF16LE
    assert doc.newline == CRLF
    assert doc.sections() == ["Settings", "Account1", "Calls", "Dialed", "Shortcuts"]


def test_a_wrapped_ring_reads_oldest_first_across_the_wrap(wrapped: IniDocument) -> None:
    history = read_history(wrapped)
    assert history.problems == ()
    assert (history.last_key, history.next_key) == (249, 250)
    assert len(history.entries) == 1000 - len(WRAP_NULLS)
    expected = [s for s in [*range(250, 1000), *range(250)] if s not in WRAP_NULLS]
    assert [e.key for e in history.entries] == expected
    assert history.entries[0].key == 251  # 250, the oldest slot, holds a deleted call
    assert history.entries[-1] == history.latest
    times = [e.time for e in history.entries]
    assert times == sorted(times)
    # Same second across the wrap: 999 was written before 0.
    assert wrap_time(999) == wrap_time(0)
    assert expected.index(999) + 1 == expected.index(0)
    assert history.get(100).time == history.get(101).time  # type: ignore[union-attr]


def test_appending_to_a_full_ring_overwrites_the_oldest(wrapped: IniDocument) -> None:
    before = read_history(wrapped)
    first = append_entry(wrapped, "300", "New", CallType.INCOMING, 1_800_000_000, 5, "Call Ended")
    assert first == 250
    assert wrapped.get("Settings", "callsLastKey") == "250"
    second = append_entry(wrapped, "301", "Newer", CallType.MISSED, 1_800_000_060, 0, "")
    assert second == 251  # the oldest live call, 251, is gone
    after = read_history(wrapped)
    assert len(after.entries) == len(before.entries) + 1
    assert after.get(251) == CallEntry(251, "301", "Newer", CallType.MISSED, 1_800_000_060, 0)
    assert [e.key for e in after.entries[:2]] == [252, 253]
    assert [e.key for e in after.entries[-2:]] == [250, 251]
    assert after.latest == after.entries[-1]


def test_a_wrapped_ring_without_callsLastKey_is_ordered_by_inference(
    wrapped: IniDocument,
) -> None:
    with_pointer = [e.key for e in read_history(wrapped).entries]
    wrapped.delete("Settings", "callsLastKey")
    history = read_history(wrapped)
    assert history.last_key_inferred
    # The first key with the greatest time (Calls.cpp CallsLoad), so the same order, including
    # the two calls in the same second across the wrap.
    assert (history.last_key, history.next_key) == (249, 250)
    assert [e.key for e in history.entries] == with_pointer
    assert append_entry(wrapped, "1", "x", CallType.OUTGOING, WRAP_BASE + 10**7) == 250


def test_a_saved_append_survives_a_reload(wrapped: IniDocument, tmp_path: Path) -> None:
    path = tmp_path / "microsip.ini"
    path.write_bytes(wrapped_ini_bytes())
    doc = IniDocument.load(path)
    append_entry(doc, "+15551234", "Ada", CallType.OUTGOING, 1_800_000_000, 61, "Call Ended")
    doc.save(backups=0)
    data = path.read_bytes()
    assert data.startswith(b"\xff\xfe")
    latest = read_history(IniDocument.load(path)).latest
    assert latest == CallEntry(
        250, "+15551234", "Ada", CallType.OUTGOING, 1_800_000_000, 61, "Call Ended"
    )


# --- MicroSIP's load rule: gaps, null, keys, callsLastKey ----------------------------------


def _value(t: int, name: str = "n") -> str:
    return f"100;{name};1;{t};0;Call Ended"


GAPPED = [
    ("0", _value(10)),
    ("1", _value(11)),
    ("2", _value(12)),
    ("4", _value(14)),
    ("5", _value(15)),
]


def test_a_gap_below_callsLastKey_is_crossed() -> None:
    # facts §5: keys are read until one is missing AND the index is >= callsLastKey.
    history = parse_history(GAPPED, 5)
    assert [e.key for e in history.entries] == [0, 1, 2, 4, 5]
    assert history.problems == ()


@pytest.mark.parametrize("last_key", [2, 3, None])
def test_a_gap_at_or_after_callsLastKey_ends_what_microsip_shows(last_key: int | None) -> None:
    history = parse_history(GAPPED, last_key)
    assert [e.key for e in history.entries] == [0, 1, 2]
    assert [(p.key, p.reason, p.skipped) for p in history.problems] == [
        ("4", "not reachable by MicroSIP (gap at key 3)", True),
        ("5", "not reachable by MicroSIP (gap at key 3)", True),
    ]
    assert history.problems[0].raw == _value(14)


def test_unreachable_calls_can_be_recovered_on_request() -> None:
    history = parse_history(GAPPED, 2, include_unreachable=True)
    assert [e.key for e in history.entries] == [0, 1, 2, 4, 5]
    assert [(p.key, p.skipped) for p in history.problems] == [("4", False), ("5", False)]


def test_an_empty_value_is_a_missing_key_and_null_is_not() -> None:
    # GetPrivateProfileString returns 0 characters for "3=", which CallsLoad takes as missing.
    pairs = [("0", _value(1)), ("1", "null"), ("2", _value(3)), ("3", ""), ("4", _value(5))]
    history = parse_history(pairs, 2)
    assert [e.key for e in history.entries] == [0, 2]
    assert [p.key for p in history.problems] == ["4"]
    # A deleted entry is skipped silently and does not end the reading.
    assert parse_history(pairs[:3], None).problems == ()
    assert [e.key for e in parse_history(pairs[:3], None).entries] == [0, 2]


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ("abc", "key 'abc' is not a ring slot (0-999)"),
        ("05", "key '05' is not written the way MicroSIP asks for keys"),
        ("-1", "key '-1' is not written the way MicroSIP asks for keys"),
        ("1000", "key 1000 is outside the ring 0-999"),
    ],
)
def test_keys_microsip_never_reads_are_reported(key: str, reason: str) -> None:
    history = parse_history([("0", _value(1)), (key, _value(2))], 0)
    assert [e.key for e in history.entries] == [0]
    (problem,) = history.problems
    assert problem.key == key
    assert problem.reason.startswith(reason)
    assert problem.skipped


def test_a_duplicate_key_keeps_the_first_like_the_profile_api() -> None:
    history = parse_history([("0", _value(1, "first")), ("0", _value(2, "second"))], 0)
    assert [e.name for e in history.entries] == ["first"]
    assert history.problems[0].reason == "written twice; MicroSIP reads only the first"


@pytest.mark.parametrize(
    ("stored", "last_key", "next_key", "complaint"),
    [
        ("43", 43, 44, None),
        ("043", 43, 44, None),
        ("999", 999, 0, None),  # wraps to 0 (Calls.cpp GetNextKey)
        ("abc", 0, 1, "'abc' is not a whole number; MicroSIP reads it as 0"),
        ("", 0, 1, "'' is not a whole number; MicroSIP reads it as 0"),
        ("12x", 12, 13, "'12x' is not a whole number; MicroSIP reads it as 12"),
        (
            "5000",
            5000,
            0,
            "5000 is beyond the ring (0-999); MicroSIP writes the next call to key 0",
        ),
        ("-5", 1, 2, "-5 is below -1"),
        ("-1", 1, 2, None),
    ],
)
def test_callsLastKey_is_read_like_wtoi(
    stored: str, last_key: int, next_key: int, complaint: str | None
) -> None:
    doc = doc_of(
        "[Settings]", f"callsLastKey={stored}", "[Calls]", f"0={_value(5)}", f"1={_value(9)}"
    )
    history = read_history(doc)
    assert (history.last_key, history.next_key) == (last_key, next_key)
    reasons = [p.reason for p in history.problems if p.section == "Settings"]
    if complaint is None:
        assert reasons == []
    else:
        assert len(reasons) == 1
        assert reasons[0].startswith(complaint)
        assert history.problems[0].where == "[Settings] key callsLastKey"
    assert append_entry(doc, "1", "x", CallType.OUTGOING, 100) == next_key


def test_a_second_calls_section_is_reported() -> None:
    doc = doc_of("[Calls]", f"0={_value(1)}", "[Dialed]", "0=1", "[Calls]", f"1={_value(2)}")
    history = read_history(doc)
    assert [e.key for e in history.entries] == [0]
    assert [str(p) for p in history.problems] == [
        "[Calls]: the section is written more than once; MicroSIP reads only the first"
    ]


# --- damaged entries --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("123;Bob;1;1700000000", "has 4 fields, expected 6 (number;name;type;time;duration;info)"),
        ("123", "has 1 field, expected 6"),
        ("NULL", "has 1 field, expected 6"),  # only the exact literal "null" means deleted
        ("123;Bob;x;1700000000;5;", "type 'x' is not a number"),
        ("123;Bob;7;1700000000;5;", "type 7 is not a call type (0-3)"),
        ("123;Bob;1;yesterday;5;", "time 'yesterday' is not a number of Unix seconds"),
        ("123;Bob;1; 1700000000;5;", "time ' 1700000000' is not a number"),
        ("123;Bob;1;-5;5;", "time -5 is out of range"),
        ("123;Bob;1;2147483648;5;", "time 2147483648 is out of range"),
        ("123;Bob;1;" + "9" * 30 + ";5;", "time " + "9" * 30 + " is out of range"),
        ("123;Bob;1;1700000000;-1;", "duration -1 is out of range"),
        ("123;Bob;1;1700000000;1.5;", "duration '1.5' is not a number of seconds"),
        ("123;Bob;١;1700000000;5;", "type '١' is not a number"),
        (
            "123;Smith; John;1;1700000000;5;Call Ended",
            "a ';' inside the name shifts the fields (the name would be 'Smith; John')",
        ),
        ("1;2;9;4;5;6;x", "type 9 is not a call type (0-3); MicroSIP shows it as outgoing; a"),
        ("123;Bob;1;1700000000;x;y;z", "duration 'x' is not a number of seconds; a ';' in the"),
    ],
)
def test_damaged_entries_are_reported_and_skipped(value: str, reason: str) -> None:
    history = parse_history([("0", _value(1)), ("1", value)], 1)
    assert [e.key for e in history.entries] == [0]
    (problem,) = history.problems
    assert (problem.key, problem.raw, problem.skipped) == ("1", value, True)
    assert problem.reason.startswith(reason)
    with pytest.raises(FileFormatError, match=r"\[Calls\] key 1: "):
        parse_entry(1, value)


def test_five_fields_read_as_an_entry_without_info() -> None:
    # CallDecode leaves info empty when the last field is missing.
    assert parse_entry(3, "555;Ann;2;1700000000;0") == CallEntry(
        3, "555", "Ann", CallType.MISSED, 1700000000, 0, ""
    )


def test_a_semicolon_in_info_stays_in_the_info() -> None:
    entry = parse_entry(0, "555;Ann;0;1700000000;3;Busy Here;cause=17")
    assert entry.info == "Busy Here;cause=17"


def test_a_number_with_uri_parameters_is_recovered() -> None:
    # Calls::Add appends the remote URI's parameters (";transport=tcp") to the number, unescaped.
    value = "bob@pbx.example;transport=tcp;user=phone;Bob;1;1700000000;5;Call Ended"
    history = parse_history([("0", value)], 0)
    assert history.entries == (
        CallEntry(
            0,
            "bob@pbx.example;transport=tcp;user=phone",
            "Bob",
            CallType.INCOMING,
            1700000000,
            5,
            "Call Ended",
        ),
    )
    (note,) = history.problems
    assert not note.skipped
    assert "SIP URI parameters (transport=tcp;user=phone)" in note.reason


def test_a_value_longer_than_microsips_buffer_is_cut_like_microsip() -> None:
    # facts §5: values are read with a 256-character buffer, so MicroSIP sees 255 characters.
    head = "555;Ann;0;1700000000;3;"
    history = parse_history([("0", head + "x" * 300)], 0)
    (entry,) = history.entries
    assert entry.info == "x" * (255 - len(head))
    (problem,) = history.problems
    assert not problem.skipped
    assert problem.reason.startswith("the value is 323 characters long; MicroSIP reads only")
    # Characters outside the BMP take two UTF-16 units: 116 faces fit in the 232 left.
    (emoji,) = parse_history([("0", head + "😀" * 200)], 0).entries
    assert emoji.info == "😀" * ((255 - len(head)) // 2)


def test_a_cut_that_reaches_the_numbers_skips_the_entry() -> None:
    value = "555;" + "N" * 300 + ";0;1700000000;3;"
    (problem,) = parse_history([("0", value)], 0).problems
    assert problem.skipped
    assert problem.reason == (
        "has 2 fields, expected 6 (number;name;type;time;duration;info), "
        "after MicroSIP's cut to 255 characters"
    )


def test_parse_entry_refuses_deleted_and_out_of_ring_entries() -> None:
    with pytest.raises(FileFormatError, match="deleted"):
        parse_entry(5, "null")
    with pytest.raises(FileFormatError, match="outside the ring"):
        parse_entry(1000, _value(1))


def test_lone_surrogates_survive_reading_and_exporting() -> None:
    # The ini reader keeps a lone surrogate of a UTF-16 file; exports must still encode.
    doc = IniDocument.from_bytes(utf16("[Calls]\r\n0=1\ud800;N\udfff;0;1700000000;1;x\r\n"))
    (entry,) = read_history(doc).entries
    assert entry.number == "1\ud800"
    for fmt in EXPORTERS:
        assert "\ufffd" in export([entry], fmt).encode("utf-8").decode("utf-8")
    assert "\ufffd" in to_table([entry])


# --- writing ----------------------------------------------------------------------------------


def test_format_entry_writes_microsips_shape() -> None:
    entry = CallEntry(5, "101", "Reception", CallType.MISSED, 1700000000, 0, "Missed Call")
    # Calls.cpp CallEncode: "%s;%s;%d;%d;%d;%s".
    assert format_entry(entry) == "101;Reception;2;1700000000;0;Missed Call"


@pytest.mark.parametrize("number", ["1;2", "1\r\n2", "1\n2", "1\x002", "", "  ", '"101', "'101"])
def test_the_writer_refuses_numbers_the_format_cannot_hold(number: str) -> None:
    with pytest.raises(UnsafeInputError, match="call number"):
        format_entry(CallEntry(0, number, "x", CallType.OUTGOING, 1, 0))
    doc = IniDocument.new()
    with pytest.raises(UnsafeInputError):
        append_entry(doc, number, "x")
    assert not doc.modified


def test_the_writer_cleans_name_and_info_so_the_file_stays_parseable() -> None:
    entry = CallEntry(0, " 555 ", "Smith; John\r\nJr\x00", CallType.INCOMING, 1, 2, "a;b \t")
    value = format_entry(entry)
    assert value == "555;Smith, John Jr ;1;1;2;a,b"
    assert parse_entry(0, value) == CallEntry(
        0, "555", "Smith, John Jr ", CallType.INCOMING, 1, 2, "a,b"
    )


def test_the_writer_fits_the_value_into_microsips_buffer() -> None:
    long_info = CallEntry(0, "555", "Ann", CallType.OUTGOING, 1700000000, 3, "i" * 400)
    value = format_entry(long_info)
    assert len(value) == 255
    assert parse_entry(0, value).name == "Ann"
    long_name = CallEntry(0, "555", "N" * 400, CallType.OUTGOING, 1700000000, 3, "info")
    value = format_entry(long_name)
    assert len(value) == 255
    assert parse_entry(0, value).info == ""  # info goes first, then the name is shortened
    emoji = format_entry(CallEntry(0, "555", "😀" * 200, CallType.OUTGOING, 1, 0, ""))
    assert len(emoji.encode("utf-16-le")) // 2 <= 255
    with pytest.raises(UnsafeInputError, match="too long"):
        format_entry(CallEntry(0, "9" * 250, "", CallType.OUTGOING, 1700000000, 0))


def test_appending_to_a_new_ini_writes_slot_0_and_callsLastKey() -> None:
    doc = IniDocument.new()
    assert (
        append_entry(doc, "101", "Reception", CallType.INCOMING, 1700000000, 9, "Call Ended") == 0
    )
    data = doc.to_bytes()
    assert data.startswith(b"\xff\xfe")
    assert data.decode("utf-16") == (
        "[Settings]\r\ncallsLastKey=0\r\n[Calls]\r\n0=101;Reception;1;1700000000;9;Call Ended\r\n"
    )
    assert append_entry(doc, "102", "Two", CallType.OUTGOING, 1700000001) == 1
    assert doc.get("Settings", "callsLastKey") == "1"


def test_appending_after_slot_999_wraps_to_0() -> None:
    full = [f"{k}={_value(k + 10)}" for k in range(1000)]
    doc = doc_of("[Settings]", "callsLastKey=999", "[Calls]", *full)
    assert append_entry(doc, "1", "x", CallType.OUTGOING, 2000) == 0
    history = read_history(doc)
    assert doc.get("Settings", "callsLastKey") == "0"
    assert [e.key for e in history.entries] == [*range(1, 1000), 0]
    assert history.latest == history.entries[-1]


def test_a_lone_slot_999_is_not_reachable_once_the_ring_restarts() -> None:
    # With callsLastKey=0 MicroSIP stops at the missing key 1, so 999 is never shown.
    doc = doc_of("[Settings]", "callsLastKey=999", "[Calls]", f"999={_value(5)}")
    assert [e.key for e in read_history(doc).entries] == [999]
    append_entry(doc, "1", "x", CallType.OUTGOING, 6)
    history = read_history(doc)
    assert [e.key for e in history.entries] == [0]
    assert [(p.key, p.reason) for p in history.problems] == [
        ("999", "not reachable by MicroSIP (gap at key 1)")
    ]


def test_append_takes_now_or_a_datetime_for_the_time() -> None:
    doc = IniDocument.new()
    before = int(time.time())
    append_entry(doc, "1", "x")
    after = int(time.time())
    entry = read_history(doc).latest
    assert entry is not None
    assert before <= entry.time <= after
    assert (entry.type, entry.duration, entry.info) == (CallType.OUTGOING, 0, "")
    append_entry(doc, "2", "y", 2, dt.datetime(2024, 6, 13, 10, 5, 59, 900000, tzinfo=UTC))
    assert read_history(doc).latest == CallEntry(1, "2", "y", CallType.MISSED, 1718273159, 0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"type": 7}, "call type 7 is not one of 0-3"),
        ({"duration": -1}, "duration -1 is outside"),
        ({"time": 2**31}, "time 2147483648 is outside"),
        ({"time": -1}, "time -1 is outside"),
    ],
)
def test_append_refuses_values_microsip_cannot_hold(kwargs: dict[str, int], message: str) -> None:
    doc = IniDocument.new()
    with pytest.raises(BridgeError, match=message):
        append_entry(doc, "1", "x", **kwargs)  # type: ignore[arg-type]
    assert not doc.modified


def test_update_entry_rewrites_one_call_in_place(wrapped: IniDocument) -> None:
    lines = len(wrapped.lines)
    old = read_history(wrapped).get(249)
    assert old is not None
    new = update_entry(wrapped, 249, type=CallType.INCOMING, duration=42, info="Call Ended")
    assert new == CallEntry(
        249, old.number, old.name, CallType.INCOMING, old.time, 42, "Call Ended"
    )
    assert read_history(wrapped).get(249) == new
    assert wrapped.get("Settings", "callsLastKey") == "249"  # CallSave does not move the ring
    assert len(wrapped.lines) == lines
    cleaned = update_entry(wrapped, 249, name="A;B")
    assert cleaned.name == "A,B"


def test_update_entry_refuses_empty_deleted_damaged_and_outside_slots() -> None:
    doc = doc_of("[Calls]", f"0={_value(1)}", "1=null", "2=1;2", "3=")
    with pytest.raises(NotFoundError, match="no call in slot 1"):
        update_entry(doc, 1, duration=1)
    with pytest.raises(NotFoundError):
        update_entry(doc, 3, duration=1)
    with pytest.raises(NotFoundError):
        update_entry(doc, 4, duration=1)
    with pytest.raises(FileFormatError, match=r"\[Calls\] key 2: has 2 fields"):
        update_entry(doc, 2, duration=1)
    with pytest.raises(BridgeError, match="outside the ring"):
        update_entry(doc, 1000, duration=1)
    assert not doc.modified


def test_delete_entry_writes_null_as_microsip_does(wrapped: IniDocument) -> None:
    assert delete_entry(wrapped, 300)
    assert wrapped.get("Calls", "300") == "null"
    history = read_history(wrapped)
    assert history.get(300) is None
    assert history.problems == ()
    assert not delete_entry(wrapped, 300)
    assert not delete_entry(wrapped, 250)  # already null in the fixture


def test_clear_history_keeps_the_ring_pointer(wrapped: IniDocument) -> None:
    # Calls::DeleteAll removes the section; callsLastKey stays, so the ring goes on from there.
    assert clear_history(wrapped)
    assert read_history(wrapped).entries == ()
    assert append_entry(wrapped, "1", "x", CallType.OUTGOING, 5) == 250
    assert [e.key for e in read_history(wrapped).entries] == [250]


# --- filters ----------------------------------------------------------------------------------


def test_filters_on_a_3_21_history(data_dir: Path) -> None:
    entries = read_history(IniDocument.load(data_dir / HISTORY)).entries
    missed = filter_entries(entries, types={CallType.MISSED})
    assert [e.key for e in missed] == [19, 22]
    same_second = dt.datetime.fromtimestamp(1750086460, UTC)
    assert [e.key for e in filter_entries(entries, since=same_second)][:2] == [12, 13]
    assert [e.key for e in filter_entries(entries, until=same_second)][-1] == 11
    assert [e.key for e in filter_entries(entries, number="RECEPTION")] == [1, 2]
    assert [e.key for e in filter_entries(entries, number="0911")] == [14, 17]
    # MicroSIP's search box: name or number, case-insensitive (Cyrillic too).
    assert [e.key for e in filter_entries(entries, text="БУХГАЛ")] == [0, 5]
    combined = filter_entries(entries, since=same_second, types=[1], number="5096", text="sales")
    assert [e.key for e in combined] == [15, 16, 18, 20, 21, 23, 25, 26, 27, 29]
    assert filter_entries(entries) == list(entries)


def test_filters_on_a_real_history(corpus: Path) -> None:
    entries = read_history(IniDocument.load(corpus / SASAMOSENKO)).entries
    missed = filter_entries(entries, types={CallType.MISSED})
    assert [e.key for e in missed] == [32, 35]
    same_second = dt.datetime.fromtimestamp(1771493012, UTC)
    assert [e.key for e in filter_entries(entries, since=same_second)][:2] == [20, 21]
    assert [e.key for e in filter_entries(entries, until=same_second)][-1] == 19
    assert [e.key for e in filter_entries(entries, number="OPERATOR")] == [1, 2]
    assert len(filter_entries(entries, number="3337")) == 2
    # MicroSIP's search box: name or number, case-insensitive (Cyrillic too).
    assert [e.key for e in filter_entries(entries, text="АКАДЕМ")] == [0, 5]
    combined = filter_entries(entries, since=same_second, types=[1], number="870", text="test")
    assert [e.key for e in combined] == [
        23,
        24,
        26,
        27,
        28,
        29,
        31,
        33,
        34,
        36,
        37,
        38,
        39,
        40,
        41,
        43,
    ]
    assert filter_entries(entries) == list(entries)


@pytest.mark.parametrize("sample", [f"data/{HISTORY}", f"corpus/{SASAMOSENKO}"], indirect=True)
def test_a_naive_datetime_filter_is_local_time(sample: Path) -> None:
    entries = read_history(IniDocument.load(sample)).entries
    # Noon, local time, of the day of the middle call.
    middle = dt.datetime.fromtimestamp(entries[len(entries) // 2].time)
    naive = middle.replace(hour=12, minute=0, second=0)
    assert filter_entries(entries, since=naive) == filter_entries(entries, since=naive.astimezone())


# --- exports ----------------------------------------------------------------------------------

SAMPLE = (
    CallEntry(7, "+4930123", 'Müller, "Jo"', CallType.MISSED, 1700000000, 0, "Missed Call"),
    CallEntry(8, "101", "A & B <x> 'q'\tT", CallType.ANSWERED_ELSEWHERE, 1700000060, 0, ""),
    CallEntry(9, "200", "王小明", CallType.OUTGOING, 1700003725, 3725, "Call Ended"),
)


def test_json_records_are_the_documented_shape() -> None:
    assert entry_record(SAMPLE[0]) == {
        "key": 7,
        "number": "+4930123",
        "name": 'Müller, "Jo"',
        "type": "missed",
        "type_code": 2,
        "time": "2023-11-14T22:13:20Z",
        "timestamp": 1700000000,
        "duration": 0,
        "info": "Missed Call",
    }
    assert list(entry_record(SAMPLE[0])) == list(RECORD_FIELDS)
    records = json.loads(to_json(SAMPLE))
    assert [r["type"] for r in records] == ["missed", "answered_elsewhere", "outgoing"]
    assert json.loads(to_json([])) == []
    assert "王小明" in to_json(SAMPLE)  # not \u-escaped


def test_our_csv_is_rfc_4180() -> None:
    text = to_csv(SAMPLE, raw=True)
    assert text.startswith("key,number,name,type,type_code,time,timestamp,duration,info\r\n")
    assert (
        '7,+4930123,"Müller, ""Jo""",missed,2,2023-11-14T22:13:20Z,1700000000,0,Missed Call\r\n'
        in text
    )
    assert text.endswith("\r\n")
    assert text.count("\r\n") == len(SAMPLE) + 1  # CRLF and only CRLF ends a row
    assert "\n" not in text.replace("\r\n", "")
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    assert [r["name"] for r in rows] == [e.name for e in SAMPLE]
    assert rows[2]["duration"] == "3725"
    # The columns are the JSON's keys, in the JSON's order, with the JSON's values as text.
    assert list(rows[0]) == list(RECORD_FIELDS)
    assert rows == [{k: str(v) for k, v in entry_record(e).items()} for e in SAMPLE]


HOSTILE = (
    CallEntry(1, "+14155550142", '=HYPERLINK("http://evil.example","hi")', CallType.INCOMING, 5, 1),
    CallEntry(2, "-1", "@SUM(1+1)*cmd|' /C calc'!A0", CallType.OUTGOING, 6, 0, "\tTab"),
    CallEntry(3, "1001", "\rCR", CallType.MISSED, 7, 0, "a=b"),
)


def test_our_csv_neutralises_cells_a_spreadsheet_would_run() -> None:
    rows = list(csv.DictReader(io.StringIO(to_csv(HOSTILE), newline="")))
    assert [(r["number"], r["name"], r["info"]) for r in rows] == [
        ("'+14155550142", '\'=HYPERLINK("http://evil.example","hi")', ""),
        ("'-1", "'@SUM(1+1)*cmd|' /C calc'!A0", "'\tTab"),
        ("1001", "'\rCR", "a=b"),
    ]
    # Numbers stay numbers; --raw (raw=True) gives the text back as MicroSIP stored it.
    assert [r["key"] for r in rows] == ["1", "2", "3"]
    raw = list(csv.DictReader(io.StringIO(export(HOSTILE, "csv", raw=True), newline="")))
    assert [(r["number"], r["name"], r["info"]) for r in raw] == [
        (e.number, e.name, e.info) for e in HOSTILE
    ]


@pytest.mark.parametrize("fmt", ["json", "microsip-csv", "microsip-xml"])
def test_the_other_formats_keep_the_text_as_it_is(fmt: str) -> None:
    assert export(HOSTILE, fmt) == export(HOSTILE, fmt, raw=True) == EXPORTERS[fmt](HOSTILE)
    assert "'=HYPERLINK" not in export(HOSTILE, fmt)


def test_microsips_csv_export_shape() -> None:
    # facts §5 and Calls.cpp OnMenuExport: BOM, Type/Name/Number/Time/Duration/Info, %d times.
    assert to_microsip_csv(SAMPLE) == (
        "\ufeffType,Name,Number,Time,Duration,Info\r\n"
        "out,王小明,200,1700003725,3725,Call Ended\r\n"
        "else,A & B <x> 'q'\tT,101,1700000060,0,\r\n"
        'miss,"Müller, ""Jo""",+4930123,1700000000,0,Missed Call\r\n'
    )
    oldest_first = to_microsip_csv(SAMPLE, newest_first=False).splitlines()
    assert oldest_first[1].startswith("miss,")
    assert to_microsip_csv([]) == "\ufeffType,Name,Number,Time,Duration,Info\r\n"
    # CCSVFile::WriteData quotes a field that holds a double quote even without a comma.
    quoted = CallEntry(0, "1", 'say "hi"', CallType.INCOMING, 5, 1, "x y")
    assert to_microsip_csv([quoted]).splitlines()[1] == 'in,"say ""hi""",1,5,1,x y'


def test_microsips_xml_export_shape() -> None:
    xml = to_microsip_xml(SAMPLE[1:2])
    assert xml == (
        '<?xml version="1.0"?>\r\n<calls>\r\n'
        '<call type="else" name="A &amp; B &lt;x&gt; &apos;q&apos;&#9;T" number="101" '
        'time="1700000060" duration="0" info=""/>\r\n</calls>\r\n'
    )
    root = ET.fromstring(to_microsip_xml(SAMPLE).encode("utf-8"))
    assert [c.get("name") for c in root] == [e.name for e in reversed(SAMPLE)]
    assert to_microsip_xml([]) == '<?xml version="1.0"?>\r\n<calls/>\r\n'


def test_xml_never_carries_characters_xml_cannot_hold() -> None:
    entry = CallEntry(0, "1\x01", "\x1f", CallType.OUTGOING, 1, 0, "\x0b")
    root = ET.fromstring(to_microsip_xml([entry]).encode("utf-8"))
    assert root[0].get("number") == "1\ufffd"
    assert root[0].get("name") == "\ufffd"


def test_the_table_aligns_wide_characters() -> None:
    table = to_table(SAMPLE)
    lines = table.split("\n")
    assert lines[0].split() == [
        "Key",
        "Time",
        "(UTC)",
        "Type",
        "Duration",
        "Number",
        "Name",
        "Info",
    ]
    assert len(lines) == 5
    assert lines[2].startswith("  7  2023-11-14 22:13:20  missed")
    # Column "Name" starts at the same terminal column on every line.
    starts = set()
    for line, entry in zip(lines[2:], SAMPLE, strict=True):
        at = line.index(entry.name.replace("\t", " "))
        starts.add(display_width(line[:at]))
    assert len(starts) == 1
    assert "1:02:05" in lines[4]
    assert display_width("王小明") == 6
    assert display_width("e\u0301") == 1
    assert to_table([]).count("\n") == 1


def test_the_table_can_show_local_time() -> None:
    plus2 = dt.timezone(dt.timedelta(hours=2))
    line = to_table(SAMPLE[:1], tz=plus2).split("\n")[2]
    assert "2023-11-15 00:13:20" in line


@pytest.mark.parametrize(
    ("seconds", "text"), [(0, ""), (7, "0:07"), (61, "1:01"), (3600, "1:00:00"), (3725, "1:02:05")]
)
def test_durations_read_like_microsips_list(seconds: int, text: str) -> None:
    assert format_duration(seconds) == text


def test_export_dispatches_by_format_name() -> None:
    assert list(EXPORTERS) == ["json", "csv", "microsip-csv", "microsip-xml"]
    assert export(SAMPLE, "json") == to_json(SAMPLE)
    assert export(iter(SAMPLE), "microsip-xml") == to_microsip_xml(SAMPLE)
    with pytest.raises(BridgeError, match="unknown export format 'yaml'"):
        export(SAMPLE, "yaml")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("missed", CallType.MISSED),
        ("MISS", CallType.MISSED),
        ("2", CallType.MISSED),
        ("answered elsewhere", CallType.ANSWERED_ELSEWHERE),
        ("answered-elsewhere", CallType.ANSWERED_ELSEWHERE),
        ("else", CallType.ANSWERED_ELSEWHERE),
        (" Out ", CallType.OUTGOING),
        ("incoming", CallType.INCOMING),
    ],
)
def test_call_types_parse_from_user_words(text: str, expected: CallType) -> None:
    assert CallType.parse(text) is expected


def test_call_type_words() -> None:
    assert [t.label for t in CallType] == ["outgoing", "incoming", "missed", "answered_elsewhere"]
    assert [t.export_code for t in CallType] == ["out", "in", "miss", "else"]
    with pytest.raises(BridgeError, match="unknown call type 'bogus'"):
        CallType.parse("bogus")


def test_a_call_entry_checks_its_fields() -> None:
    assert CallEntry(0, "1", "x", 1, 0, 0).type is CallType.INCOMING  # type: ignore[arg-type]
    with pytest.raises(BridgeError, match="key 1000"):
        CallEntry(1000, "1", "x", CallType.OUTGOING, 0, 0)
    with pytest.raises(BridgeError, match="call type 4"):
        CallEntry(0, "1", "x", 4, 0, 0)  # type: ignore[arg-type]
    with pytest.raises(BridgeError, match="call time must be a whole number"):
        CallEntry(0, "1", "x", CallType.OUTGOING, 1.5, 0)  # type: ignore[arg-type]
    with pytest.raises(BridgeError, match="call type 9"):
        filter_entries([], types=[9])


# --- properties -------------------------------------------------------------------------------

_FRAGMENTS = st.sampled_from(
    [
        "",
        ";",
        "null",
        "0",
        "1",
        "3",
        "7",
        "-1",
        "1700000000",
        "x",
        "Ann",
        " ",
        "a=b",
        "@h.x",
        "😀",
        "\ud800",
        "é",
        "9" * 20,
        "2147483648",
    ]
)
_VALUES = st.one_of(
    st.text(max_size=40),
    st.lists(_FRAGMENTS, max_size=12).map("".join),
    st.lists(_FRAGMENTS, max_size=8).map(";".join),
    st.text(min_size=200, max_size=400),
)
_KEYS = st.one_of(st.integers(-3, 1005).map(str), st.text(max_size=4))


def _live(value: str) -> bool:
    return value not in ("", "null")


@given(
    pairs=st.lists(st.tuples(_KEYS, _VALUES), max_size=40),
    last_key=st.one_of(st.none(), st.integers(INT_MIN, INT_MAX), st.integers(-3, 1002)),
    include_unreachable=st.booleans(),
)
def test_parse_history_never_crashes_and_accounts_for_every_call(
    pairs: list[tuple[str, str]], last_key: int | None, include_unreachable: bool
) -> None:
    history = parse_history(pairs, last_key, include_unreachable=include_unreachable)
    # Every live value in a ring slot is either an entry or a skipped problem, never both.
    first: dict[int, str] = {}
    for key, value in pairs:
        name = key.strip(" \t")
        if name.isascii() and name.isdigit() and str(int(name)) == name and int(name) < 1000:
            first.setdefault(int(name), value)
    shown = {e.key for e in history.entries}
    skipped = {
        int(p.key)
        for p in history.problems
        if p.skipped and p.key in map(str, first) and not p.reason.startswith("written twice")
    }
    for slot, value in first.items():
        if _live(value):
            assert (slot in shown) != (slot in skipped), (slot, value)
        else:
            assert slot not in shown
    order = [(e.time, ring_position(history, e)) for e in history.entries]
    assert order == sorted(order)
    assert 0 <= history.next_key < 1000
    for fmt in EXPORTERS:
        export(history.entries, fmt).encode("utf-8")
    to_table(history.entries).encode("utf-8")


_INI_TEXT = st.text(
    st.characters(exclude_characters="\r\n\x00", exclude_categories=["Cs"]), max_size=60
)


@given(
    values=st.lists(st.tuples(st.integers(0, 1001), _INI_TEXT), max_size=25),
    last_key=st.one_of(st.none(), _INI_TEXT),
)
def test_read_history_never_crashes_on_arbitrary_ini_values(
    values: list[tuple[int, str]], last_key: str | None
) -> None:
    doc = IniDocument.new()
    if last_key is not None:
        doc.set("Settings", "callsLastKey", last_key)
    for key, value in values:
        doc.set("Calls", str(key), value)
    history = read_history(IniDocument.from_bytes(doc.to_bytes()))
    assert all(0 <= e.key < 1000 for e in history.entries)
    assert all(str(p) for p in history.problems)


_TEXT = st.text(max_size=120)
_ENTRIES = st.builds(
    CallEntry,
    key=st.integers(0, 999),
    number=_TEXT,
    name=_TEXT,
    type=st.sampled_from(CallType),
    time=st.integers(0, INT_MAX),
    duration=st.integers(0, INT_MAX),
    info=_TEXT,
)


@given(_ENTRIES)
def test_what_the_writer_accepts_reads_back_through_the_ini(entry: CallEntry) -> None:
    try:
        value = format_entry(entry)
    except UnsafeInputError:
        return
    doc = IniDocument.new()
    doc.set("Calls", str(entry.key), value)
    doc.set("Settings", "callsLastKey", str(entry.key))
    reread = read_history(IniDocument.from_bytes(doc.to_bytes()))
    assert reread.problems == ()
    (back,) = reread.entries
    assert back == parse_entry(entry.key, value)
    assert (back.number, back.type, back.time, back.duration) == (
        entry.number.strip(" \t"),
        entry.type,
        entry.time,
        entry.duration,
    )
    assert len(value.encode("utf-16-le", "surrogatepass")) // 2 <= 255


_CLEAN = st.characters(exclude_characters=";\r\n\x00", exclude_categories=["Cs"])
_CLEAN_ENTRIES = st.builds(
    CallEntry,
    key=st.integers(0, 999),
    number=st.from_regex(r"[0-9+*#]{1,12}(@[a-z0-9.]{1,8})?", fullmatch=True),
    name=st.text(_CLEAN, max_size=50),
    type=st.sampled_from(CallType),
    time=st.integers(0, INT_MAX),
    duration=st.integers(0, INT_MAX),
    info=st.text(_CLEAN, max_size=50).map(lambda text: text.rstrip(" \t")),
)


@given(_CLEAN_ENTRIES)
def test_a_clean_entry_round_trips_exactly(entry: CallEntry) -> None:
    assert parse_entry(entry.key, format_entry(entry)) == entry


@pytest.mark.parametrize(
    "sample",
    [
        "data/microsip-wrapped.ini",
        f"data/{HISTORY}",
        f"data/{FORK}",
        f"corpus/{SASAMOSENKO}",
        f"corpus/{MICROTALK}",
    ],
    indirect=True,
)
# The sample fixture only names a file, so it needs no reset between examples.
@settings(max_examples=10, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    new=st.booleans(),
    number=st.from_regex(r"[0-9+*#@a-z.]{1,20}", fullmatch=True),
    name=st.text(max_size=30),
    call_type=st.sampled_from(CallType),
    later=st.integers(0, 10**6),
    duration=st.integers(0, 10**5),
    info=st.text(max_size=30),
)
def test_an_appended_call_reads_back_as_the_newest(
    sample: Path,
    new: bool,
    number: str,
    name: str,
    call_type: CallType,
    later: int,
    duration: int,
    info: str,
) -> None:
    # Appended to what MicroSIP creates, or to a file with a history.
    doc = IniDocument.new() if new else IniDocument.load(sample)
    before = read_history(doc)
    when = max((e.time for e in before.entries), default=0) + later
    key = append_entry(doc, number, name, call_type, when, duration, info)
    assert key == before.next_key
    history = read_history(IniDocument.from_bytes(doc.to_bytes()))
    assert history.latest is not None
    assert history.entries[-1] == history.latest
    assert history.latest == parse_entry(key, doc.get("Calls", str(key)) or "")
    assert (history.latest.number, history.latest.type, history.latest.time) == (
        number,
        call_type,
        when,
    )
    assert history.problems == before.problems


@settings(max_examples=3)
@given(seed=st.integers(0, 2**32 - 1))
def test_1100_appends_keep_the_newest_1000_in_order(seed: int) -> None:
    rng = random.Random(seed)
    doc = IniDocument.new()
    when = 1_700_000_000
    appended: list[str] = []
    for i in range(1100):
        when += rng.choice((0, 0, 1, 60))  # many calls in the same second
        number = f"n{i}"
        append_entry(doc, number, "x", CallType.OUTGOING, when)
        appended.append(number)
    history = read_history(doc)
    assert history.problems == ()
    assert len(history.entries) == 1000
    assert [e.number for e in history.entries] == appended[100:]
    assert [e.key for e in history.entries] == [*range(100, 1000), *range(100)]
    assert doc.get("Settings", "callsLastKey") == "99"
