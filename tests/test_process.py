"""Whether the MicroSIP owning an ini runs: window-to-ini mapping and the simulator's pid file."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

from microsip_bridge.microsip._win32 import MicroSIPWindow
from microsip_bridge.microsip.locate import DictRegistryReader
from microsip_bridge.microsip.process import (
    SIM_PID_FILE,
    contacts_in_use,
    microsip_running,
    simulator_pid,
    window_uses_ini,
)

# Linux's PID_MAX_LIMIT is 2**22: no process can have a larger id, so this one is always dead.
DEAD_PID = 2**22 + 1


@pytest.fixture
def ini(tmp_path: Path, data_dir: Path) -> Path:
    target = tmp_path / "Phone" / "microsip.ini"
    target.parent.mkdir()
    shutil.copyfile(data_dir / "ini" / "history-3.21.microsip.ini", target)
    return target


def write_marker(ini: Path, content: str | bytes) -> None:
    data = content.encode() if isinstance(content, str) else content
    (ini.parent / SIM_PID_FILE).write_bytes(data)


# --- the simulator's marker ---------------------------------------------------------------------


def test_live_simulator_pid_means_running(ini: Path) -> None:
    write_marker(ini, f"{os.getpid()}\n")
    assert simulator_pid(ini.parent) == os.getpid()
    # The marker wins even when no MicroSIP window exists (windows=[]).
    assert microsip_running(ini, windows=[]) is True


def test_dead_simulator_pid_is_stale(ini: Path) -> None:
    write_marker(ini, str(DEAD_PID))
    assert simulator_pid(ini.parent) is None
    assert microsip_running(ini, windows=[]) is False


@pytest.mark.parametrize(
    "content",
    [
        "",
        "abc",
        "-5",
        "0",  # os.kill(0, 0) would signal our own process group: must not count as alive
        "1.5",
        "9" * 40,  # OverflowError territory for os.kill
        "1" * 100,  # longer than any pid file
        b"\xff\xfe1\x002\x00",
    ],
)
def test_damaged_marker_is_stale(ini: Path, content: str | bytes) -> None:
    write_marker(ini, content)
    assert simulator_pid(ini.parent) is None
    assert microsip_running(ini, windows=[]) is False


def test_marker_must_sit_beside_the_ini(ini: Path, tmp_path: Path) -> None:
    (tmp_path / SIM_PID_FILE).write_text(str(os.getpid()))  # the parent folder: not ours
    assert microsip_running(ini, windows=[]) is False


@pytest.mark.skipif(sys.platform == "win32", reason="off Windows only")
def test_without_windows_off_windows_the_answer_is_unknown(ini: Path) -> None:
    assert microsip_running(ini) is None
    write_marker(ini, str(os.getpid()))
    assert microsip_running(ini) is True  # the simulator is known on every OS


# --- mapping MicroSIP windows to inis (facts §3.1) ----------------------------------------------


@pytest.fixture
def profile(tmp_path: Path) -> dict[str, Path]:
    paths = {
        "install": tmp_path / "Program Files" / "MicroSIP",
        "appdata": tmp_path / "Roaming",
        "portable": tmp_path / "Tools" / "MicroSIP",
    }
    for folder in paths.values():
        folder.mkdir(parents=True)
    return paths


def registry_for(install: Path) -> DictRegistryReader:
    return DictRegistryReader({r"HKCU\Software\MicroSIP": str(install)})


def test_installed_window_runs_the_appdata_ini(profile: dict[str, Path]) -> None:
    window = MicroSIPWindow(1, 100, profile["install"] / "microsip.exe")
    env = {"APPDATA": str(profile["appdata"])}
    roaming_ini = profile["appdata"] / "MicroSIP" / "microsip.ini"
    registry = registry_for(profile["install"])
    assert microsip_running(roaming_ini, windows=[window], env=env, registry=registry) is True
    # The ini beside the installed exe is not the one MicroSIP uses.
    beside = profile["install"] / "microsip.ini"
    assert microsip_running(beside, windows=[window], env=env, registry=registry) is False


def test_portable_window_runs_the_ini_beside_it(profile: dict[str, Path]) -> None:
    window = MicroSIPWindow(1, 100, profile["portable"] / "microsip.exe")
    registry = registry_for(profile["install"])
    env = {"APPDATA": str(profile["appdata"])}
    beside = profile["portable"] / "microsip.ini"
    assert microsip_running(beside, windows=[window], env=env, registry=registry) is True
    # Windows paths are case-insensitive: the same file spelled otherwise is the same ini.
    shouted = profile["portable"] / "MICROSIP.INI"
    assert microsip_running(shouted, windows=[window], env=env, registry=registry) is True
    roaming_ini = profile["appdata"] / "MicroSIP" / "microsip.ini"
    assert microsip_running(roaming_ini, windows=[window], env=env, registry=registry) is False


def test_renamed_exe_runs_its_own_ini(profile: dict[str, Path]) -> None:
    window = MicroSIPWindow(1, 100, profile["portable"] / "Softphone.exe")
    assert window_uses_ini(
        window, profile["portable"] / "Softphone.ini", install_path=None, appdata=None
    )
    assert not window_uses_ini(
        window, profile["portable"] / "microsip.ini", install_path=None, appdata=None
    )


def test_a_contacts_file_named_alone_is_checked_by_its_own_folder(
    profile: dict[str, Path],
) -> None:
    # `contacts import --contacts FILE`: no ini, so the MicroSIP whose Contacts.xml it is.
    window = MicroSIPWindow(1, 100, profile["portable"] / "Softphone.exe")  # a renamed exe
    env = {"APPDATA": str(profile["appdata"])}
    registry = registry_for(profile["install"])
    beside = profile["portable"] / "Contacts.xml"
    assert contacts_in_use(beside, windows=[window], env=env, registry=registry) is True
    elsewhere = profile["appdata"] / "Contacts.xml"
    assert contacts_in_use(elsewhere, windows=[window], env=env, registry=registry) is False
    assert contacts_in_use(elsewhere, windows=[], env=env) is False
    (profile["appdata"] / SIM_PID_FILE).write_text(str(os.getpid()))
    assert contacts_in_use(elsewhere, windows=[], env=env) is True  # the simulator's folder


def test_any_of_several_windows_counts(profile: dict[str, Path]) -> None:
    # A portable copy and an installed one run side by side (facts §1.2).
    windows = [
        MicroSIPWindow(1, 100, profile["portable"] / "microsip.exe"),
        MicroSIPWindow(2, 200, profile["install"] / "microsip.exe"),
    ]
    env = {"APPDATA": str(profile["appdata"])}
    registry = registry_for(profile["install"])
    roaming_ini = profile["appdata"] / "MicroSIP" / "microsip.ini"
    assert microsip_running(roaming_ini, windows=windows, env=env, registry=registry) is True
    other = profile["install"].parent / "Elsewhere" / "microsip.ini"
    assert microsip_running(other, windows=windows, env=env, registry=registry) is False


def test_unknowable_windows_count_as_running(profile: dict[str, Path]) -> None:
    ini = profile["portable"] / "microsip.ini"
    # Windows would not tell us the exe: assume the worst rather than lose the user's edit.
    assert microsip_running(ini, windows=[MicroSIPWindow(1, 100, None)], env={}) is True
    # An installed copy while APPDATA is unknown: its ini cannot be placed either.
    installed = MicroSIPWindow(2, 200, profile["install"] / "microsip.exe")
    registry = registry_for(profile["install"])
    assert microsip_running(ini, windows=[installed], env={}, registry=registry) is True


def test_no_windows_means_not_running(ini: Path) -> None:
    assert microsip_running(ini, windows=[], env={}) is False
