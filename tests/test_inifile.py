"""The ini document: profile-API reads, byte-identical round trips, line-local edits, safe saves."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from microsip_bridge.errors import FileFormatError, MicroSIPRunningError, NotFoundError
from microsip_bridge.fileio import list_backups
from microsip_bridge.microsip.inifile import IniDocument, IniEncoding, encode, profile_value

CRLF = "\r\n"


def utf16(text: str) -> bytes:
    return encode(text, IniEncoding.UTF16LE)


# --- the real world ----------


@pytest.mark.samples("ini/**/*.ini")
def test_every_sample_ini_round_trips_byte_for_byte(sample: Path) -> None:
    data = sample.read_bytes()
    doc = IniDocument.from_bytes(data, sample)
    assert doc.to_bytes() == data


@pytest.mark.parametrize(
    ("sample", "encoding", "newline"),
    [
        # facts §3.2: MicroSIP writes UTF-16LE with a BOM; the originals were ANSI/ASCII/UTF-8.
        ("data/ini/history-3.21.microsip.ini", IniEncoding.UTF16LE, CRLF),
        ("data/ini/original/fork-2016.ansi-crlf.ini", IniEncoding.ANSI, CRLF),
        ("data/ini/original/template.utf8-lf.ini", IniEncoding.UTF8, "\n"),
        ("corpus/ini/real-sasamosenko-3.2x.microsip.ini", IniEncoding.UTF16LE, CRLF),
        ("corpus/ini/original/real-agnerft-template.utf8-lf.ini", IniEncoding.UTF8, "\n"),
    ],
    indirect=["sample"],
)
def test_sample_encodings_are_detected(sample: Path, encoding: IniEncoding, newline: str) -> None:
    doc = IniDocument.load(sample)
    assert doc.encoding is encoding
    assert doc.newline == newline


def test_an_ansi_original_reads_as_its_utf16_copy(data_dir: Path) -> None:
    # MicroSIP converts an ini without a BOM from ANSI to UTF-16LE at start-up (facts §3.2).
    ansi = IniDocument.load(data_dir / "ini" / "original" / "fork-2016.ansi-crlf.ini")
    native = IniDocument.load(data_dir / "ini" / "fork-2016.microsip.ini")
    assert ansi.text() == native.text()
    assert "Müller" in (ansi.get("Calls", "2") or "")


@pytest.mark.parametrize(
    ("sample", "server"),
    [
        ("data/ini/provisioning.microsip.ini", "sip.example.invalid"),
        ("corpus/ini/real-stuxforce-provisioning.microsip.ini", "voip.example.local"),
    ],
    indirect=["sample"],
)
def test_profile_api_semantics_on_a_hand_made_provisioning_file(sample: Path, server: str) -> None:
    doc = IniDocument.load(sample)
    # Names are case-insensitive (Server, EnableLog) and the first duplicate wins (denyIncoming
    # is written twice: empty, then "button").
    assert doc.get("account1", "server") == server
    assert doc.get("SETTINGS", "enablelog") == "0"
    assert doc.get("Settings", "denyIncoming") == ""
    assert doc.keys("Settings").count("denyIncoming") == 1


@pytest.mark.parametrize(
    "sample",
    ["data/ini/template.microsip.ini", "corpus/ini/real-agnerft-template.microsip.ini"],
    indirect=True,
)
def test_surrounding_quotes_are_removed_like_getprivateprofilestring(sample: Path) -> None:
    doc = IniDocument.load(sample)
    assert doc.get_raw("Settings", "audioRingDevice") == '""'
    assert doc.get("Settings", "audioRingDevice") == ""  # facts §2.6


@pytest.mark.parametrize(
    ("sample", "name"),
    [
        ("data/ini/history-3.21.microsip.ini", "Бухгалтерия"),
        ("corpus/ini/real-sasamosenko-3.2x.microsip.ini", "Академическая"),
    ],
    indirect=["sample"],
)
def test_cyrillic_names_in_calls_survive(sample: Path, name: str) -> None:
    doc = IniDocument.load(sample)
    assert name in (doc.get("Calls", "0") or "")


# --- reading rules ----------


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        ('"a b"', "a b"),
        ("'x'", "x"),
        ('"C:\\P F\\h.exe" ring', '"C:\\P F\\h.exe" ring'),  # not one surrounding pair
        ('  "q"  ', "q"),
        ('"', '"'),
        ("\"a'", "\"a'"),
        ("", ""),
    ],
)
def test_profile_value(raw: str, value: str) -> None:
    assert profile_value(raw) == value


def test_only_the_first_section_of_a_name_is_read() -> None:
    doc = IniDocument.from_text("[A]\r\nx=1\r\n[a]\r\nx=2\r\ny=3\r\n")
    assert doc.get("A", "x") == "1"
    assert doc.get("A", "y") is None  # Windows stops at the first [A]
    assert doc.duplicate_sections() == ["A"]


def test_keys_before_any_section_and_comments_are_not_values() -> None:
    doc = IniDocument.from_text("x=0\r\n[S]\r\n;x=1\r\nnot a key\r\nx = 2 \r\n")
    assert doc.get("S", "x") == "2"
    assert doc.get("S", ";x") is None
    assert doc.items("S") == [("x", "2")]


def test_value_runs_from_the_first_equals_sign() -> None:
    doc = IniDocument.from_text("[S]\r\nurl=http://h/?a=1&b=2\r\n")
    assert doc.get("S", "url") == "http://h/?a=1&b=2"


# --- editing ----------


def test_set_existing_key_rewrites_only_that_line_and_keeps_its_spelling() -> None:
    text = "; top\r\n[Settings]\r\nCmdCallRing = old\r\n\r\n[Account1]\r\nserver=x\r\n"
    doc = IniDocument.from_text(text)
    doc.set("settings", "cmdcallring", "new")
    assert doc.text() == text.replace("CmdCallRing = old", "CmdCallRing = new")
    assert doc.modified


def test_setting_the_same_value_is_not_a_modification() -> None:
    doc = IniDocument.from_text("[S]\r\nk=v\r\n")
    doc.set("S", "k", "v")
    assert not doc.modified


def test_new_key_goes_after_the_last_key_before_blank_lines() -> None:
    doc = IniDocument.from_text("[S]\r\na=1\r\n\r\n[T]\r\nb=2\r\n")
    doc.set("S", "c", "3")
    assert doc.text() == "[S]\r\na=1\r\nc=3\r\n\r\n[T]\r\nb=2\r\n"


def test_new_section_is_appended_and_a_missing_final_newline_is_kept() -> None:
    doc = IniDocument.from_text("[S]\na=1")
    doc.set("S", "b", "2")
    assert doc.text() == "[S]\na=1\nb=2"
    doc.set("New", "k", "v")
    assert doc.text() == "[S]\na=1\nb=2\n[New]\nk=v\n"


def test_delete_removes_every_duplicate_in_the_section() -> None:
    doc = IniDocument.from_text("[S]\r\nk=1\r\nj=0\r\nK=2\r\n")
    assert doc.delete("S", "k")
    assert doc.text() == "[S]\r\nj=0\r\n"
    assert not doc.delete("S", "k")


def test_remove_section() -> None:
    doc = IniDocument.from_text("[A]\r\nx=1\r\n[B]\r\ny=2\r\n[C]\r\n")
    assert doc.remove_section("b")
    assert doc.text() == "[A]\r\nx=1\r\n[C]\r\n"


@pytest.mark.parametrize(("key", "value"), [("k", "a\r\nb"), ("k\n", "v"), ("a=b", "v"), ("", "v")])
def test_values_that_would_break_the_file_are_refused(key: str, value: str) -> None:
    doc = IniDocument.from_text("[S]\r\n")
    with pytest.raises(Exception, match="ini"):
        doc.set("S", key, value)
    assert doc.text() == "[S]\r\n"


def test_a_character_the_encoding_cannot_hold_is_a_clear_error() -> None:
    doc = IniDocument.from_bytes(b"[S]\r\nk=v\r\n")
    assert doc.encoding is IniEncoding.UTF8
    doc2 = IniDocument.from_bytes(b"[S]\r\nk=\xe9\r\n")
    assert doc2.encoding is IniEncoding.ANSI
    doc2.set("S", "k", "Ж")
    with pytest.raises(FileFormatError, match="UTF-16LE"):
        doc2.to_bytes()
    doc2.convert(IniEncoding.UTF16LE)
    assert doc2.to_bytes().startswith(b"\xff\xfe")


# --- encodings ----------


def test_ansi_bytes_that_cp1252_leaves_undefined_round_trip() -> None:
    data = b"[S]\r\nk=\x81\x8d\x8f\x90\x9d\xe9\r\n"
    doc = IniDocument.from_bytes(data)
    assert doc.encoding is IniEncoding.ANSI
    assert doc.get("S", "k") == "\x81\x8d\x8f\x90\x9d\xe9"
    assert doc.to_bytes() == data


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\xff\xfe[\x00S", "truncated"),
        (b"[\x00S\x00]\x00", "NUL"),
        (b"\xef\xbb\xbf[S]\r\nk=\xff\r\n", "UTF-8 with BOM"),
    ],
)
def test_damaged_encodings_are_reported(data: bytes, message: str) -> None:
    with pytest.raises(FileFormatError, match=message):
        IniDocument.from_bytes(data, Path("microsip.ini"))


def test_utf16_big_endian_is_read_and_written_back() -> None:
    data = encode("[S]\r\nk=ü\r\n", IniEncoding.UTF16BE)
    doc = IniDocument.from_bytes(data)
    assert doc.encoding is IniEncoding.UTF16BE
    assert doc.get("S", "k") == "ü"
    assert doc.to_bytes() == data


# --- saving ----------


def test_save_is_atomic_and_keeps_backups(tmp_path: Path) -> None:
    path = tmp_path / "microsip.ini"
    path.write_bytes(utf16("[Settings]\r\nk=0\r\n"))
    for n in range(1, 8):
        doc = IniDocument.load(path)
        doc.set("Settings", "k", str(n))
        doc.save(backups=3)
    assert IniDocument.load(path).get("Settings", "k") == "7"
    backups = list_backups(path)
    assert len(backups) == 3
    assert [IniDocument.load(b).get("Settings", "k") for b in backups] == ["4", "5", "6"]
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_save_is_refused_while_microsip_runs_unless_forced(tmp_path: Path) -> None:
    path = tmp_path / "microsip.ini"
    original = utf16("[Settings]\r\nk=0\r\n")
    path.write_bytes(original)
    doc = IniDocument.load(path)
    doc.set("Settings", "k", "1")
    with pytest.raises(MicroSIPRunningError, match="MicroSIP is running"):
        doc.save(microsip_running=True)
    assert path.read_bytes() == original  # facts §3.2: nothing written
    doc.save(microsip_running=True, force=True)
    assert IniDocument.load(path).get("Settings", "k") == "1"


def test_a_failed_write_leaves_the_file_and_no_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "microsip.ini"
    original = utf16("[Settings]\r\nk=0\r\n")
    path.write_bytes(original)
    doc = IniDocument.load(path)
    doc.set("Settings", "k", "1")

    def boom(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(Exception, match="No space left"):
        doc.save()
    assert path.read_bytes() == original
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_load_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="no such file"):
        IniDocument.load(tmp_path / "missing.ini")
    with pytest.raises(NotFoundError, match="folder"):
        IniDocument.load(tmp_path)


def test_new_document_is_what_microsip_creates() -> None:
    # facts §3.2: a missing ini is created as UTF-16LE with a BOM holding just [Settings].
    assert IniDocument.new().to_bytes() == b"\xff\xfe" + "[Settings]\r\n".encode("utf-16-le")


# --- properties ----------

names = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="[]=;\r\n"),
    min_size=1,
    max_size=12,
).filter(lambda s: s.strip() == s and s)
values = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n\x00"),
    max_size=30,
)


@st.composite
def ini_texts(draw: st.DrawFn) -> str:
    eol = draw(st.sampled_from(["\r\n", "\n"]))
    lines: list[str] = []
    for _ in range(draw(st.integers(0, 4))):
        lines.append(f"[{draw(names)}]")
        for _ in range(draw(st.integers(0, 5))):
            kind = draw(st.sampled_from(["key", "key", "comment", "blank", "dup", "spaced"]))
            if kind == "comment":
                lines.append(";" + draw(values))
            elif kind == "blank":
                lines.append(draw(st.sampled_from(["", "  ", "\t"])))
            elif kind == "spaced":
                lines.append(f"  {draw(names)} = {draw(values)}")
            else:
                lines.append(f"{draw(names)}={draw(values)}")
                if kind == "dup":
                    lines.append(lines[-1].split("=")[0] + "=" + draw(values))
    text = eol.join(lines)
    if lines and draw(st.booleans()):
        text += eol
    return text


@given(ini_texts(), st.sampled_from(list(IniEncoding)))
def test_load_save_identity_for_generated_files(text: str, encoding: IniEncoding) -> None:
    try:
        data = encode(text, encoding)
    except UnicodeEncodeError:
        assume(False)
    if encoding is IniEncoding.UTF8 and data.startswith(b"\xef\xbb\xbf"):
        assume(False)
    doc = IniDocument.from_bytes(data)
    assert doc.to_bytes() == data


@given(st.binary(max_size=400))
def test_arbitrary_bytes_load_and_round_trip_or_fail_cleanly(data: bytes) -> None:
    try:
        doc = IniDocument.from_bytes(data)
    except FileFormatError:
        return
    assert doc.to_bytes() == data


@given(ini_texts(), names, names, values)
def test_an_edit_changes_only_its_line(text: str, section: str, key: str, value: str) -> None:
    doc = IniDocument.from_text(text)
    before = [line.text + line.eol for line in doc.lines]
    existed = doc.get(section, key) is not None
    doc.set(section, key, value)
    after = [line.text + line.eol for line in doc.lines]
    assert profile_value(doc.get_raw(section, key) or "") == profile_value(value)
    reread = IniDocument.from_text(doc.text())
    assert reread.get(section, key) == profile_value(value)
    if existed:
        changed = [i for i, (a, b) in enumerate(zip(before, after, strict=True)) if a != b]
        assert len(changed) <= 1
    else:
        # Only added lines (and possibly a line end on the previous last line).
        assert len(after) - len(before) in (1, 2)
        kept = [line.rstrip("\r\n") for line in after]
        for line in before:
            assert line.rstrip("\r\n") in kept
