"""The cmd* hooks: values, status, install/uninstall and the store of users' commands (facts §2)."""

from __future__ import annotations

import json
import shutil
import sys
import sysconfig
from pathlib import Path, PureWindowsPath

import pytest
from hypothesis import given
from hypothesis import strategies as st

from microsip_bridge.errors import BridgeError, FileFormatError, NotFoundError, UnsafeInputError
from microsip_bridge.microsip import hook_keys as hooks
from microsip_bridge.microsip.cmdline import microsip_run_command, profile_string_as_read
from microsip_bridge.microsip.crt import WHITESPACE, utf16_len
from microsip_bridge.microsip.hook_keys import (
    HOOK_KEYS,
    SECTION,
    HookAction,
    HookState,
    SavedHooks,
    classify_hook,
    default_hook_program,
    hook_value,
    hooks_status,
    install_hooks,
    uninstall_hooks,
)
from microsip_bridge.microsip.inifile import IniDocument
from microsip_bridge.model import Event

PROG = r"C:\Program Files\Python312\Scripts\microsip-bridge-hook.exe"
SHORT = r"C:\Py\Scripts\microsip-bridge-hook.exe"
OTHER = r"D:\pipx\venvs\microsip-bridge\Scripts\microsip-bridge-hook.exe"


def copy_ini(source: Path, tmp_path: Path) -> Path:
    target = tmp_path / source.name
    shutil.copyfile(source, target)
    return target


def ini_with(tmp_path: Path, lines: str) -> tuple[IniDocument, Path]:
    path = tmp_path / "microsip.ini"
    IniDocument.from_text("[Settings]\r\n" + lines).save(path, backups=0)
    return IniDocument.load(path), path


# --- keys and values -----------------------------------------------------------------------------


def test_the_eight_keys() -> None:
    # facts §2.1
    assert set(HOOK_KEYS) == set(Event)
    assert list(HOOK_KEYS.values()) == [
        "cmdOutgoingCall",
        "cmdIncomingCall",
        "cmdCallRing",
        "cmdCallAnswer",
        "cmdCallAnswerVideo",
        "cmdCallStart",
        "cmdCallBusy",
        "cmdCallEnd",
    ]


def test_hook_value_quotes_only_a_program_with_spaces() -> None:
    assert hook_value(PROG, Event.RING) == f'"{PROG}" ring'
    assert hook_value(SHORT, Event.ANSWER_VIDEO) == f"{SHORT} answer-video"
    assert hook_value(PureWindowsPath(SHORT), Event.END) == f"{SHORT} end"
    assert hook_value("/opt/bridge/bin/microsip-bridge-hook", Event.BUSY) == (
        "/opt/bridge/bin/microsip-bridge-hook busy"
    )


def test_hook_value_survives_microsips_reading_and_running() -> None:
    # facts §2.3, §2.6: what the hook receives is [program, event, number].
    for event in Event:
        value = hook_value(PROG, event)
        assert profile_string_as_read(value) == value
        assert microsip_run_command(profile_string_as_read(value), "1001") == [
            PROG,
            event.value,
            "1001",
        ]


@pytest.mark.parametrize(
    ("program", "error", "why"),
    [
        (r"C:\hooks\on-call.bat", UnsafeInputError, "injection"),
        (r"C:\hooks\ON-CALL.CMD", UnsafeInputError, "injection"),
        (r"C:\hooks\hook.ps1", UnsafeInputError, "interpreted"),
        (r"C:\hooks\hook.vbs", UnsafeInputError, "interpreted"),
        (r"C:\hooks\hook.js", UnsafeInputError, "interpreted"),
        (r"C:\Windows\System32\cmd.exe", UnsafeInputError, "shell"),
        (r"C:\Windows\System32\WindowsPowerShell\v1.0\PowerShell.exe", UnsafeInputError, "shell"),
        (r"C:\Program Files\PowerShell\7\pwsh.exe", UnsafeInputError, "shell"),
        (r"C:\Windows\System32\wscript.exe", UnsafeInputError, "script host"),
        (r"C:\Windows\System32\cscript", UnsafeInputError, "script host"),
        ("microsip-bridge-hook.exe", BridgeError, "absolute"),
        (r"Scripts\microsip-bridge-hook.exe", BridgeError, "absolute"),
        ('C:\\a"b\\hook.exe', BridgeError, "double quote"),
        ("C:\\a\nb\\hook.exe", UnsafeInputError, "U\\+000A"),
        (" C:\\hook.exe", BridgeError, "whitespace"),
        ("", BridgeError, "empty"),
    ],
)
def test_hook_value_refusals(program: str, error: type[BridgeError], why: str) -> None:
    with pytest.raises(error, match=why):
        hook_value(program, Event.RING)


def test_hook_value_length_limit_is_255_utf16_units() -> None:
    # facts §2.1: a 256-character buffer. " ring" is 5 characters, the quotes 2.
    folder = "C:\\" + "d" * 200 + " x\\"
    name = "microsip-bridge-hook.exe"
    pad = 255 - len(f'"{folder}{name}" ring')
    fits = folder + "e" * pad + name
    assert utf16_len(hook_value(fits, Event.RING)) == 255
    with pytest.raises(BridgeError, match="255") as info:
        hook_value(folder + "e" * (pad + 1) + name, Event.RING)
    assert "PIPX_HOME" in str(info.value)
    assert "8.3" in str(info.value)
    # A character outside the BMP counts twice, as it does in MicroSIP's buffer.
    with pytest.raises(BridgeError, match="256 characters"):
        hook_value(folder + "e" * (pad - 1) + "\U0001f4de" + name, Event.RING)


WIN_CHARS = st.characters(
    blacklist_categories=("Cc", "Cs", "Cn", "Zl", "Zp"),
    blacklist_characters='"<>|?*\\/:\x00',
)
SEGMENT = st.text(WIN_CHARS, min_size=1, max_size=40).filter(lambda s: s == s.strip(WHITESPACE))


@st.composite
def program_paths(draw: st.DrawFn) -> str:
    drive = draw(st.sampled_from(["C:\\", "d:\\", "\\\\server\\share\\"]))
    folders = draw(st.lists(SEGMENT, max_size=10))
    name = draw(st.sampled_from(["microsip-bridge-hook.exe", "hook.exe", "x y.exe", "ü.exe"]))
    return drive + "".join(f + "\\" for f in folders) + name


SIP_USER = st.text(
    alphabet=st.sampled_from([*list("0123456789abcdefxyzABC-_.!~*'()&=+$,;?/%"), "é", "中", "\\"]),
    max_size=25,
)


@given(program_paths(), st.sampled_from(list(Event)), SIP_USER)
def test_hook_value_property(program: str, event: Event, number: str) -> None:
    token = f'"{program}"' if " " in program else program
    if utf16_len(f"{token} {event.value}") > 255:
        with pytest.raises(BridgeError, match="255"):
            hook_value(program, event)
        return
    value = hook_value(program, event)
    assert utf16_len(value) <= 255
    assert not (value.startswith('"') and value.endswith('"'))
    read = profile_string_as_read(value)
    assert read == value
    # ...and through a real ini file: written, saved as MicroSIP does, read back.
    doc = IniDocument.new()
    doc.set(SECTION, HOOK_KEYS[event], value)
    assert IniDocument.from_bytes(doc.to_bytes()).get(SECTION, HOOK_KEYS[event]) == value
    expected = [program, event.value] + ([number] if number else [])
    assert microsip_run_command(read, number) == expected


# --- status -------------------------------------------------------------------------------------


def test_status_missing_ours_elsewhere_foreign() -> None:
    ring = Event.RING
    assert classify_hook(ring, None, PROG).state is HookState.MISSING
    assert classify_hook(ring, "", PROG).state is HookState.MISSING
    assert classify_hook(ring, '""', PROG).state is HookState.MISSING
    ours = classify_hook(ring, hook_value(PROG, ring), PROG)
    assert (ours.state, ours.argv, ours.ok) == (HookState.OURS, (PROG, "ring"), True)
    # Windows compares paths case-insensitively, with / for \.
    assert classify_hook(ring, f'"{PROG.upper()}" ring', PROG).state is HookState.OURS
    assert classify_hook(ring, f'"{PROG.replace(chr(92), "/")}" ring', PROG).ok
    elsewhere = classify_hook(ring, hook_value(OTHER, ring), PROG)
    assert elsewhere.state is HookState.OURS_ELSEWHERE
    assert elsewhere.mine
    # Without an expected program, any microsip-bridge-hook counts as ours.
    assert classify_hook(ring, hook_value(OTHER, ring)).state is HookState.OURS
    foreign = classify_hook(ring, r'"C:\Tools\crm.exe" --popup', PROG)
    assert (foreign.state, foreign.mine) == (HookState.FOREIGN, False)
    assert foreign.argv == (r"C:\Tools\crm.exe", "--popup")


@pytest.mark.parametrize(
    ("raw", "why", "mine"),
    [
        # cut at 255 characters (facts §2.1)
        (f'"C:\\{"x" * 240}\\microsip-bridge-hook.exe" ring', "255", True),
        (f"C:\\Tools\\crm.exe {'a' * 260}", "255", False),
        # an unbalanced quote
        (f'"{PROG} ring', "never closed", True),
        (r'C:\Tools\crm.exe "--popup', "never closed", False),
        # our program with a wrong or a missing event
        (f'"{PROG}" end', "instead of", True),
        (f"{SHORT}", "instead of", True),
        (f'"{PROG}"', "in quotes", True),  # and the path splits at its space
        (f'"{PROG}" ring extra', "instead of", True),
        # a quoted whole value: GetPrivateProfileString strips the quotes (facts §2.6)
        (f'"{SHORT} ring"', "in quotes", True),
        ('"C:\\Program Files\\Tools\\crm.exe"', "in quotes", False),
        # batch files and shells (facts §2.3 5)
        (r"C:\hooks\notify.bat", "injection", False),
        (r'"C:\My hooks\notify.cmd" ring', "injection", False),
        (r"C:\Windows\System32\cmd.exe /c C:\hooks\x.bat", "shell", False),
        ('"" ring', "no program", False),
        # a quoted program path that merely starts like ours
        ('"C:\\x\\microsip-bridge-hook.exe old" ring', "names our hook", True),
    ],
)
def test_status_damaged(raw: str, why: str, mine: bool) -> None:
    status = classify_hook(Event.RING, raw, PROG)
    assert status.state is HookState.DAMAGED, status
    assert why in status.reason
    assert status.mine is mine


def test_status_of_a_truncated_value_shows_what_microsip_runs() -> None:
    raw = f'"C:\\{"x" * 240}\\microsip-bridge-hook.exe" ring'
    status = classify_hook(Event.RING, raw, PROG)
    assert status.value is not None
    assert len(status.value) == 255
    # the cut-off path MicroSIP would run, its quote never closed
    assert status.argv == ("C:\\" + "x" * 240 + "\\microsip-b",)


def test_hooks_status_reads_every_key_in_order(tmp_path: Path) -> None:
    doc, _ = ini_with(
        tmp_path,
        f"cmdCallRing={hook_value(PROG, Event.RING)}\r\n"
        "CMDCALLEND=C:\\Tools\\log.exe\r\n"  # key names are case-insensitive (facts §3.2)
        "cmdCallBusy=\r\n",
    )
    states = {s.event: s.state for s in hooks_status(doc, PROG)}
    assert list(states) == list(HOOK_KEYS)
    assert states[Event.RING] is HookState.OURS
    assert states[Event.END] is HookState.FOREIGN
    assert states[Event.BUSY] is HookState.MISSING
    assert states[Event.START] is HookState.MISSING
    only = hooks_status(doc, PROG, events=[Event.END, Event.RING])
    assert [s.event for s in only] == [Event.RING, Event.END]


# --- install and uninstall -----------------------------------------------------------------------


def test_install_saves_a_foreign_command_and_uninstall_restores_it_exactly(tmp_path: Path) -> None:
    foreign = '"C:\\Program Files\\CRM\\popup.exe" --number'
    doc, path = ini_with(tmp_path, f"cmdCallRing = {foreign}\r\ncmdCallEnd=\r\n")
    original = path.read_bytes()
    store = SavedHooks(tmp_path / "saved.json")

    plan = install_hooks(doc, PROG, store)
    actions = {c.event: c.action for c in plan.changes}
    assert actions[Event.RING] is HookAction.INSTALL
    ring = next(c for c in plan.changes if c.event is Event.RING)
    assert (ring.old, ring.new) == (foreign, hook_value(PROG, Event.RING))
    assert "saved" in ring.note
    assert plan.changes_ini
    assert not store.path.exists()  # nothing persisted before commit
    doc.save(path, backups=0)
    plan.commit()
    saved = store.entries(path)
    assert saved["cmdCallRing"].value == foreign
    assert saved["cmdCallEnd"].value == ""
    assert saved["cmdCallStart"].value is None  # absent before
    assert all(s.ok for s in hooks_status(IniDocument.load(path), PROG))

    doc = IniDocument.load(path)
    undo = uninstall_hooks(doc, store)
    by_event = {c.event: c for c in undo.changes}
    assert by_event[Event.RING].action is HookAction.RESTORE
    assert by_event[Event.END].action is HookAction.RESTORE
    assert by_event[Event.START].action is HookAction.DELETE
    doc.save(path, backups=0)
    undo.commit()
    assert path.read_bytes() == original
    assert store.entries(path) == {}
    assert json.loads(store.path.read_text(encoding="utf-8"))["inis"] == {}


def test_install_twice_is_idempotent_and_never_saves_our_own_value(tmp_path: Path) -> None:
    doc, path = ini_with(tmp_path, "cmdCallRing=C:\\Tools\\crm.exe\r\n")
    store = SavedHooks(tmp_path / "saved.json")
    plan = install_hooks(doc, PROG, store)
    doc.save(path, backups=0)
    plan.commit()
    first = store.path.read_bytes()
    doc = IniDocument.load(path)
    again = install_hooks(doc, PROG, store)
    assert {c.action for c in again.changes} == {HookAction.KEEP}
    assert not again.changes_ini
    assert not again.store_updates
    assert not doc.modified
    again.commit()
    assert store.path.read_bytes() == first
    assert store.entries(path)["cmdCallRing"].value == "C:\\Tools\\crm.exe"


def test_a_failed_ini_save_leaves_the_store_untouched(tmp_path: Path) -> None:
    doc, _ = ini_with(tmp_path, "cmdCallRing=C:\\Tools\\crm.exe\r\n")
    store = SavedHooks(tmp_path / "saved.json")
    plan = install_hooks(doc, PROG, store)
    with pytest.raises(BridgeError):
        doc.save(tmp_path / "no-such-folder" / "microsip.ini", backups=0)
    assert not store.path.exists()
    assert plan.store_updates  # still pending: the caller simply does not commit


def test_install_updates_our_hook_from_another_install_without_saving_it(tmp_path: Path) -> None:
    doc, _path = ini_with(
        tmp_path,
        f"cmdCallRing={hook_value(OTHER, Event.RING)}\r\n"
        f"cmdCallEnd={hook_value(PROG, Event.RING)}\r\n",  # ours, but the wrong event: damaged
    )
    store = SavedHooks(tmp_path / "saved.json")
    plan = install_hooks(doc, PROG, store)
    by_event = {c.event: c for c in plan.changes}
    assert by_event[Event.RING].action is HookAction.UPDATE
    assert by_event[Event.END].action is HookAction.UPDATE
    assert "cmdCallRing" not in plan.store_updates
    assert "cmdCallEnd" not in plan.store_updates
    assert doc.get(SECTION, "cmdCallEnd") == hook_value(PROG, Event.END)


def test_install_replaces_and_saves_a_batch_file_hook(tmp_path: Path) -> None:
    doc, path = ini_with(tmp_path, "cmdCallRing=C:\\hooks\\ring.bat\r\n")
    store = SavedHooks(tmp_path / "saved.json")
    plan = install_hooks(doc, PROG, store, events=[Event.RING])
    assert [c.action for c in plan.changes] == [HookAction.INSTALL]
    assert plan.store_updates["cmdCallRing"].value == "C:\\hooks\\ring.bat"  # type: ignore[union-attr]
    doc.save(path, backups=0)
    plan.commit()
    doc = IniDocument.load(path)
    undo = uninstall_hooks(doc, store, events=[Event.RING])
    assert doc.get(SECTION, "cmdCallRing") == "C:\\hooks\\ring.bat"
    assert undo.store_updates == {"cmdCallRing": None}


def test_install_only_some_events(tmp_path: Path) -> None:
    doc, _ = ini_with(tmp_path, "cmdCallEnd=C:\\Tools\\log.exe\r\n")
    plan = install_hooks(doc, PROG, SavedHooks(tmp_path / "s.json"), events=[Event.RING])
    assert [c.key for c in plan.changes] == ["cmdCallRing"]
    assert doc.get(SECTION, "cmdCallEnd") == "C:\\Tools\\log.exe"


def test_a_too_long_program_fails_before_any_change(tmp_path: Path) -> None:
    doc, _ = ini_with(tmp_path, "cmdCallRing=\r\n")
    with pytest.raises(BridgeError, match="255"):
        install_hooks(doc, "C:\\" + "x" * 300 + "\\hook.exe", SavedHooks(tmp_path / "s.json"))
    assert not doc.modified


def test_uninstall_leaves_a_command_the_user_put_in_after_install(tmp_path: Path) -> None:
    doc, path = ini_with(tmp_path, "cmdCallRing=C:\\Tools\\old.exe\r\n")
    store = SavedHooks(tmp_path / "saved.json")
    plan = install_hooks(doc, PROG, store)
    doc.save(path, backups=0)
    plan.commit()
    doc = IniDocument.load(path)
    doc.set(SECTION, "cmdCallRing", "C:\\Tools\\new.exe")  # the user replaced our hook
    undo = uninstall_hooks(doc, store)
    ring = next(c for c in undo.changes if c.event is Event.RING)
    assert ring.action is HookAction.LEAVE
    assert not ring.changes_ini
    assert "old.exe" in ring.note
    assert "cmdCallRing" not in undo.store_updates  # the saved original is kept, not lost
    doc.save(path, backups=0)
    undo.commit()
    assert store.entries(path)["cmdCallRing"].value == "C:\\Tools\\old.exe"

    # Installing again saves the newer command and keeps the older one in the file.
    doc = IniDocument.load(path)
    plan = install_hooks(doc, PROG, store)
    doc.save(path, backups=0)
    plan.commit()
    entry = store.entries(path)["cmdCallRing"]
    assert (entry.value, entry.superseded) == ("C:\\Tools\\new.exe", ("C:\\Tools\\old.exe",))
    doc = IniDocument.load(path)
    uninstall_hooks(doc, store)
    assert doc.get(SECTION, "cmdCallRing") == "C:\\Tools\\new.exe"


def test_uninstall_clears_our_hook_when_nothing_was_saved(tmp_path: Path) -> None:
    doc, _ = ini_with(tmp_path, f"cmdCallRing={hook_value(OTHER, Event.RING)}\r\n")
    undo = uninstall_hooks(doc, SavedHooks(tmp_path / "s.json"))
    ring = next(c for c in undo.changes if c.event is Event.RING)
    assert (ring.action, ring.new) == (HookAction.CLEAR, "")
    assert doc.get(SECTION, "cmdCallRing") == ""  # "cmdX=" is MicroSIP's "no hook"
    others = [c for c in undo.changes if c.event is not Event.RING]
    assert all(c.action is HookAction.LEAVE for c in others)


def test_stale_store_entries_are_dropped_when_the_original_is_in_place(tmp_path: Path) -> None:
    # E.g. a store written before an ini save that then failed.
    doc, path = ini_with(tmp_path, "cmdCallRing=C:\\Tools\\crm.exe\r\n")
    store = SavedHooks(tmp_path / "saved.json")
    install_hooks(doc, PROG, store).commit()  # committed, but the ini is never saved
    doc = IniDocument.load(path)
    again = install_hooks(doc, PROG, store)
    assert "cmdCallRing" not in again.store_updates  # same original: nothing new to save
    doc = IniDocument.load(path)
    undo = uninstall_hooks(doc, store)
    assert undo.store_updates.get("cmdCallRing", "kept") is None


def test_a_document_without_a_path_needs_an_ini_name(tmp_path: Path) -> None:
    doc = IniDocument.new()
    store = SavedHooks(tmp_path / "s.json")
    with pytest.raises(BridgeError, match="no path"):
        install_hooks(doc, PROG, store)
    plan = install_hooks(doc, PROG, store, ini=tmp_path / "elsewhere.ini")
    assert plan.ini == SavedHooks.ini_key(tmp_path / "elsewhere.ini")


@pytest.mark.samples("ini/*.ini")
def test_real_inis_install_then_uninstall_byte_for_byte(sample: Path, tmp_path: Path) -> None:
    # MicroSIP's own inis (UTF-16LE): with users' own commands, empty or missing cmd* keys.
    path = copy_ini(sample, tmp_path)
    original = path.read_bytes()
    store = SavedHooks(tmp_path / "saved.json")
    doc = IniDocument.load(path)
    before = hooks_status(doc, PROG)
    plan = install_hooks(doc, PROG, store)
    doc.save(backups=0)
    plan.commit()
    after = IniDocument.load(path)
    assert [s.state for s in hooks_status(after, PROG)] == [HookState.OURS] * 8
    assert after.to_bytes()[:2] == b"\xff\xfe"  # still what MicroSIP writes (facts §3.2)
    # Every other key is untouched.
    for section in IniDocument.load(sample).sections():
        for key, value in IniDocument.load(sample).items(section):
            if key.lower() not in {k.lower() for k in HOOK_KEYS.values()}:
                assert after.get(section, key) == value
    doc = IniDocument.load(path)
    undo = uninstall_hooks(doc, store)
    doc.save(backups=0)
    undo.commit()
    assert path.read_bytes() == original
    assert [s.state for s in hooks_status(IniDocument.load(path), PROG)] == [
        s.state for s in before
    ]


@pytest.mark.parametrize(
    "sample",
    ["data/ini/template.microsip.ini", "corpus/ini/real-agnerft-template.microsip.ini"],
    indirect=True,
)
def test_a_template_has_empty_keys_that_come_back_empty(sample: Path, tmp_path: Path) -> None:
    path = copy_ini(sample, tmp_path)
    doc = IniDocument.load(path)
    assert all(s.state is HookState.MISSING and s.raw == "" for s in hooks_status(doc))
    plan = install_hooks(doc, PROG, SavedHooks(tmp_path / "s.json"))
    assert {u.value for u in plan.store_updates.values() if u} == {""}


def test_users_own_commands_are_judged_and_saved_for_uninstall(
    data_dir: Path, tmp_path: Path
) -> None:
    path = copy_ini(data_dir / "ini" / "user-commands.microsip.ini", tmp_path)
    doc = IniDocument.load(path)
    states = {s.key: s.state for s in hooks_status(doc, PROG)}
    assert states["cmdIncomingCall"] is states["cmdCallEnd"] is HookState.FOREIGN
    # A value wholly in quotes loses them (facts §2.6); a script host would interpret the
    # number MicroSIP appends (facts §2.3).
    assert states["cmdCallRing"] is states["cmdCallStart"] is HookState.DAMAGED
    plan = install_hooks(doc, PROG, SavedHooks(tmp_path / "s.json"))
    saved = {key: update.value for key, update in plan.store_updates.items() if update}
    assert saved["cmdIncomingCall"] == (
        r'"C:\Program Files\CRM Connector\crm-popup.exe" --incoming'
    )
    assert saved["cmdCallRing"] == r'"C:\Tools\ring.cmd"'
    assert saved["cmdCallStart"] == r'powershell.exe -File "C:\Users\Zoë\log call.ps1"'
    assert saved["cmdCallEnd"] == r"C:\Tools\calllog.exe --append"


# --- the store ----------------------------------------------------------------------------------


def test_store_default_location_is_the_bridge_home(bridge_home: Path) -> None:
    assert SavedHooks().path == bridge_home / "saved-hooks.json"


def test_store_is_keyed_by_the_resolved_ini_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = SavedHooks(tmp_path / "saved.json")
    ini = tmp_path / "MicroSIP" / "microsip.ini"
    ini.parent.mkdir()
    store.update(ini, {"cmdCallRing": hooks.SavedValue("x", "t")})
    monkeypatch.chdir(tmp_path)
    assert (
        store.entries(Path("MicroSIP") / ".." / "MicroSIP" / "microsip.ini")["cmdCallRing"].value
        == "x"
    )
    assert store.entries(tmp_path / "other.ini") == {}


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (b"{not json", "not valid JSON"),
        (b"\xff\xfe{}", "not valid JSON"),
        (b"[]", "'inis'"),
        (b'{"version": 2, "inis": {}}', "version 2"),
        (b'{"version": 1, "inis": {"a": []}}', "object of keys"),
        (b'{"version": 1, "inis": {"a": {"cmdCallRing": {"value": 5}}}}', "'value'"),
        (b'{"version": 1, "inis": {"a": {"k": {"value": "x", "superseded": [1]}}}}', "superseded"),
    ],
)
def test_store_refuses_a_damaged_file(tmp_path: Path, content: bytes, why: str) -> None:
    path = tmp_path / "saved.json"
    path.write_bytes(content)
    with pytest.raises(FileFormatError, match=why):
        SavedHooks(path).load()


def test_store_keeps_other_inis_entries(tmp_path: Path) -> None:
    store = SavedHooks(tmp_path / "saved.json")
    store.update(tmp_path / "a.ini", {"cmdCallRing": hooks.SavedValue("A", "t")})
    store.update(tmp_path / "b.ini", {"cmdCallEnd": hooks.SavedValue(None, "t")})
    store.update(tmp_path / "a.ini", {"cmdCallRing": None})
    assert store.entries(tmp_path / "a.ini") == {}
    assert store.entries(tmp_path / "b.ini")["cmdCallEnd"].value is None


# --- locating the hook program -----------------------------------------------------------------


def test_default_hook_program_override_is_returned_as_given() -> None:
    assert default_hook_program(SHORT) == Path(SHORT)


def test_default_hook_program_finds_the_scripts_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scripts = tmp_path / "Scripts"
    scripts.mkdir()
    exe = scripts / "microsip-bridge-hook.exe"
    exe.write_bytes(b"MZ")
    monkeypatch.setattr(sysconfig, "get_path", lambda name, scheme=None: str(scripts))
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python.exe"))
    monkeypatch.setattr(shutil, "which", lambda name: None)
    assert default_hook_program(platform="win32") == exe
    with pytest.raises(NotFoundError):
        default_hook_program(platform="linux")  # looks for the name without .exe


def test_default_hook_program_falls_back_to_path_then_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sysconfig, "get_path", lambda name, scheme=None: str(tmp_path))
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    found = tmp_path / "elsewhere" / "microsip-bridge-hook"
    monkeypatch.setattr(shutil, "which", lambda name: str(found))
    assert default_hook_program(platform="linux") == found
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(NotFoundError, match="microsip-bridge-hook"):
        default_hook_program(platform="linux")


def test_default_hook_program_in_this_environment_is_runnable_as_a_hook() -> None:
    try:
        program = default_hook_program()
    except NotFoundError:
        pytest.skip("microsip-bridge is not installed in this environment")
    assert program.name.startswith("microsip-bridge-hook")
    if sys.platform != "win32":
        assert hook_value(program, Event.RING).endswith(" ring")


# --- the fast form: a Python interpreter running the hook directly ------------------------------


@pytest.mark.parametrize("flag", ["-I", "-E"])
def test_fast_form_survives_runcmd_and_is_ours(flag: str) -> None:
    from microsip_bridge.microsip.hook_keys import INLINE_ARG, HookState, classify_hook, hook_value
    from microsip_bridge.wire import INLINE_CODE

    python = r"C:\Users\Ann Lee\pipx\venvs\microsip-bridge\Scripts\pythonw.exe"
    value = hook_value(python, Event.RING, flag=flag)
    assert len(value) <= 255  # facts §2.1
    assert INLINE_CODE in value
    # facts §2.3: split, re-joined unquoted, the number appended: the code arrives whole.
    assert microsip_run_command(value, "5551234") == [python, flag, INLINE_ARG, "ring", "5551234"]
    status = classify_hook(Event.RING, value, python)
    assert status.state is HookState.OURS
    assert classify_hook(Event.END, value, python).state is HookState.DAMAGED  # wrong event
    assert classify_hook(Event.RING, value, r"C:\other\python.exe").state is (
        HookState.OURS_ELSEWHERE
    )


def test_fast_form_refuses_other_interpreter_flags() -> None:
    from microsip_bridge.microsip.hook_keys import hook_value

    with pytest.raises(BridgeError, match="flag"):
        hook_value(r"C:\Python312\python.exe", Event.END, flag="-S")
