"""Finding microsip.ini and Contacts.xml as MicroSIP does: installed, portable, explicit, search."""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from microsip_bridge.errors import NotFoundError
from microsip_bridge.microsip.locate import (
    DictRegistryReader,
    InstallPath,
    MicroSIPLocation,
    RegistryReader,
    ini_name_for_exe,
    is_install_folder,
    locate,
    locate_from_exe,
    locate_from_folder,
    log_name_for_exe,
    read_install_path,
    search,
)

# Our sample files (tests/data); only their names and bytes matter here.
HISTORY_INI = "history-3.21.microsip.ini"  # written by MicroSIP 3.21, UTF-16LE
FORK_INI = "fork-2016.microsip.ini"  # a fork's, which its renamed exe names Microtalk-NG.ini
NO_CALLS_INI = "no-calls.microsip.ini"
CONTACTS = "pbx-export.Contacts.xml"
OTHER_CONTACTS = "hand-kept.Contacts.xml"


def make_exe(folder: Path, name: str = "microsip.exe") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    exe = folder / name
    exe.write_bytes(b"MZ\x90\x00")  # only the name matters to MicroSIP's rules
    return exe


def put(data_dir: Path, kind: str, name: str, target: Path) -> Path:
    """Copy a sample file into place under the name MicroSIP would give it."""
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(data_dir / kind / name, target)
    return target


@dataclass
class Machine:
    """A fake Windows user profile under tmp_path."""

    root: Path
    program_files: Path
    program_files_x86: Path
    appdata: Path
    localappdata: Path

    @property
    def install(self) -> Path:
        return self.program_files / "MicroSIP"

    @property
    def roaming(self) -> Path:
        return self.appdata / "MicroSIP"

    def env(self, **extra: str) -> dict[str, str]:
        env = {
            "APPDATA": str(self.appdata),
            "LOCALAPPDATA": str(self.localappdata),
            "ProgramFiles": str(self.program_files),
            "ProgramFiles(x86)": str(self.program_files_x86),
        }
        env.update(extra)
        return env

    def registry(self, hkcu: str | None = None, hklm: str | None = None) -> DictRegistryReader:
        values = {}
        if hkcu is not None:
            values[r"HKCU\Software\MicroSIP"] = hkcu
        if hklm is not None:
            values[r"HKLM\Software\MicroSIP"] = hklm
        return DictRegistryReader(values)


@pytest.fixture
def machine(tmp_path: Path) -> Machine:
    m = Machine(
        root=tmp_path,
        program_files=tmp_path / "Program Files",
        program_files_x86=tmp_path / "Program Files (x86)",
        appdata=tmp_path / "Users" / "ann" / "AppData" / "Roaming",
        localappdata=tmp_path / "Users" / "ann" / "AppData" / "Local",
    )
    for folder in (m.program_files, m.program_files_x86, m.appdata, m.localappdata):
        folder.mkdir(parents=True)
    return m


# --- names -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("exe", "ini"),
    [
        ("microsip.exe", "microsip.ini"),  # facts §3.1
        ("MicroSIP.exe", "MicroSIP.ini"),
        ("Softphone.exe", "Softphone.ini"),  # a renamed exe renames the ini
        ("Microtalk-NG.exe", "Microtalk-NG.ini"),  # the corpus fork did exactly that
        ("my.phone.EXE", "my.phone.ini"),  # cut at the *last* dot, like ReverseFind('.')
        (r"C:\Program Files\MicroSIP\microsip.exe", "microsip.ini"),  # Windows path as text
        ("/opt/wine/drive_c/MicroSIP/Phone.exe", "Phone.ini"),
    ],
)
def test_ini_name_is_exe_base_name(exe: str, ini: str) -> None:
    assert ini_name_for_exe(exe) == ini


def test_log_name_follows_the_exe() -> None:
    assert log_name_for_exe("Softphone.exe") == "Softphone_log.txt"  # facts §3.1


@given(st.text(alphabet=st.characters(blacklist_characters="/\\.\x00"), min_size=1))
def test_ini_name_keeps_any_base_name(base: str) -> None:
    assert ini_name_for_exe(base + ".exe") == base + ".ini"
    assert ini_name_for_exe(Path("x") / (base + ".exe")) == base + ".ini"


def test_ini_name_refuses_an_empty_name() -> None:
    with pytest.raises(NotFoundError):
        ini_name_for_exe("C:\\MicroSIP\\")


# --- the registry ------------------------------------------------------------------------------


def test_registry_reader_is_a_protocol_the_dict_reader_satisfies() -> None:
    reader: RegistryReader = DictRegistryReader({r"hkcu\software\microsip": r"C:\X"})
    # Registry key names are case-insensitive.
    assert reader.default_value("HKCU", r"Software\MicroSIP") == r"C:\X"
    assert reader.default_value("HKLM", r"Software\MicroSIP") is None


def test_install_path_prefers_hkcu_then_hklm(machine: Machine) -> None:
    # facts §3.1: HKCU's default value, else HKLM's.
    both = machine.registry(hkcu=r"C:\User", hklm=r"C:\Machine")
    assert read_install_path(both) == InstallPath(r"C:\User", r"HKCU\Software\MicroSIP")
    only_lm = machine.registry(hklm=r"C:\Machine")
    assert read_install_path(only_lm) == InstallPath(r"C:\Machine", r"HKLM\Software\MicroSIP")
    # An empty HKCU value falls through too (MicroSIP tests pathInstaller.IsEmpty()).
    empty_cu = machine.registry(hkcu="", hklm=r"C:\Machine")
    assert read_install_path(empty_cu) == InstallPath(r"C:\Machine", r"HKLM\Software\MicroSIP")
    assert read_install_path(machine.registry()) is None
    assert read_install_path(None) is None


def test_install_folder_compare_is_case_insensitive_but_literal(machine: Machine) -> None:
    folder = machine.install
    assert is_install_folder(folder, str(folder))
    assert is_install_folder(folder, str(folder).upper())
    # MicroSIP's CompareNoCase does not normalise the registry value: a trailing separator makes
    # the installed copy portable, and we must agree with MicroSIP about where its files are.
    assert not is_install_folder(folder, str(folder) + os.sep)
    assert not is_install_folder(folder, "")
    # Our side is normalised as GetModuleFileName would give it.
    assert is_install_folder(folder / "sub" / "..", str(folder))


# --- installed vs portable ---------------------------------------------------------------------


def test_installed_copy_keeps_its_files_in_appdata(machine: Machine, data_dir: Path) -> None:
    exe = make_exe(machine.install)
    ini = put(data_dir, "ini", HISTORY_INI, machine.roaming / "microsip.ini")
    contacts = put(data_dir, "contacts", CONTACTS, machine.roaming / "Contacts.xml")
    # A portable-style ini beside the installed exe is NOT what MicroSIP reads.
    put(data_dir, "ini", NO_CALLS_INI, machine.install / "microsip.ini")

    loc = locate_from_exe(
        exe,
        install_path=str(machine.install),
        appdata=machine.appdata,
        localappdata=machine.localappdata,
    )

    assert loc.mode == "installed"  # facts §3.1
    assert loc.ini == ini
    assert loc.ini.read_bytes() == (data_dir / "ini" / HISTORY_INI).read_bytes()
    assert loc.contacts == contacts
    assert loc.folder == machine.roaming
    assert loc.exe == exe
    assert loc.log == machine.localappdata / "MicroSIP" / "microsip_log.txt"
    assert "install path" in loc.found_by
    assert any(str(machine.install / "microsip.ini") in note for note in loc.notes)


def test_registry_value_in_other_case_still_means_installed(machine: Machine) -> None:
    exe = make_exe(machine.install)
    loc = locate_from_exe(exe, install_path=str(machine.install).upper(), appdata=machine.appdata)
    assert loc.mode == "installed"
    assert loc.ini == machine.roaming / "microsip.ini"


def test_portable_copy_keeps_its_files_beside_the_exe(machine: Machine, data_dir: Path) -> None:
    folder = machine.root / "Tools" / "MicroSIP"
    exe = make_exe(folder)
    ini = put(data_dir, "ini", HISTORY_INI, folder / "microsip.ini")
    # The registry names another folder (an installed copy): this one is still portable.
    loc = locate_from_exe(exe, install_path=str(machine.install), appdata=machine.appdata)
    assert loc.mode == "portable"  # facts §3.1
    assert loc.ini == ini
    assert loc.contacts == folder / "Contacts.xml"
    assert loc.log == folder / "microsip_log.txt"
    assert loc.folder == folder
    assert str(machine.install) in loc.found_by


def test_no_install_path_means_portable_even_in_program_files(machine: Machine) -> None:
    exe = make_exe(machine.install)
    loc = locate_from_exe(exe, install_path=None, appdata=machine.appdata)
    assert loc.mode == "portable"
    assert loc.ini == machine.install / "microsip.ini"
    assert "no install path" in loc.found_by


def test_trailing_backslash_in_registry_makes_microsip_portable(machine: Machine) -> None:
    exe = make_exe(machine.install)
    loc = locate_from_exe(exe, install_path=str(machine.install) + os.sep, appdata=machine.appdata)
    assert loc.mode == "portable"


def test_renamed_exe_renames_its_ini(machine: Machine, data_dir: Path) -> None:
    # A fork renamed its exe, and so its ini: the corpus holds a real Microtalk-NG.ini (facts §3.1).
    folder = machine.root / "Microtalk"
    exe = make_exe(folder, "Microtalk-NG.exe")
    ini = put(data_dir, "ini", FORK_INI, folder / "Microtalk-NG.ini")
    put(data_dir, "ini", NO_CALLS_INI, folder / "microsip.ini")  # a decoy: not this exe's ini
    loc = locate_from_exe(exe, install_path=None, appdata=machine.appdata)
    assert loc.ini == ini
    assert loc.log == folder / "Microtalk-NG_log.txt"
    # Installed and renamed: %APPDATA%\MicroSIP\Softphone.ini, the folder keeps MicroSIP's name.
    installed = make_exe(machine.install, "Softphone.exe")
    loc = locate_from_exe(installed, install_path=str(machine.install), appdata=machine.appdata)
    assert loc.ini == machine.roaming / "Softphone.ini"
    assert loc.contacts == machine.roaming / "Contacts.xml"


def test_file_names_match_case_insensitively(machine: Machine, data_dir: Path) -> None:
    folder = machine.root / "Portable"
    exe = make_exe(folder, "MICROSIP.EXE")
    ini = put(data_dir, "ini", NO_CALLS_INI, folder / "MicroSIP.ini")  # its upstream name
    contacts = put(data_dir, "contacts", OTHER_CONTACTS, folder / "contacts.xml")  # upstream name
    loc = locate_from_exe(exe, install_path=None, appdata=machine.appdata)
    # The files on disk are found, not new ones with MicroSIP's spelling.
    assert loc.ini == ini
    assert loc.contacts == contacts
    assert loc.ini.name == "MicroSIP.ini"
    assert loc.contacts.name == "contacts.xml"


def test_missing_files_get_the_names_microsip_would_create(machine: Machine) -> None:
    folder = machine.root / "Fresh"
    exe = make_exe(folder, "Phone.exe")
    loc = locate_from_exe(exe, install_path=None, appdata=None)
    assert loc.ini == folder / "Phone.ini"
    assert not loc.ini.exists()
    assert loc.contacts == folder / "Contacts.xml"


def test_installed_without_appdata_is_an_error(machine: Machine) -> None:
    exe = make_exe(machine.install)
    with pytest.raises(NotFoundError, match="APPDATA"):
        locate_from_exe(exe, install_path=str(machine.install), appdata=None)


def test_old_local_appdata_files_are_noted_not_moved(machine: Machine, data_dir: Path) -> None:
    # S22 moves %LOCALAPPDATA%\MicroSIP\{ini,Contacts.xml} to Roaming when Roaming lacks them.
    exe = make_exe(machine.install)
    local = machine.localappdata / "MicroSIP"
    old_ini = put(data_dir, "ini", HISTORY_INI, local / "microsip.ini")
    old_contacts = put(data_dir, "contacts", CONTACTS, local / "Contacts.xml")
    loc = locate_from_exe(
        exe,
        install_path=str(machine.install),
        appdata=machine.appdata,
        localappdata=machine.localappdata,
    )
    assert loc.ini == machine.roaming / "microsip.ini"
    assert len(loc.notes) == 2
    assert str(old_ini) in loc.notes[0]
    assert str(old_contacts) in loc.notes[1]
    assert "3.22" in loc.notes[0]
    assert old_ini.is_file()
    assert not loc.ini.exists()
    # Once Roaming has its own file, the old one is no longer MicroSIP's business.
    put(data_dir, "ini", NO_CALLS_INI, machine.roaming / "microsip.ini")
    put(data_dir, "contacts", CONTACTS, machine.roaming / "Contacts.xml")
    again = locate_from_exe(
        exe,
        install_path=str(machine.install),
        appdata=machine.appdata,
        localappdata=machine.localappdata,
    )
    assert again.notes == ()


# --- folders -----------------------------------------------------------------------------------


def test_folder_with_exe_and_ini(machine: Machine, data_dir: Path) -> None:
    folder = machine.root / "Phone"
    make_exe(folder)
    make_exe(folder, "Uninstall.exe")  # the NSIS uninstaller is not a MicroSIP
    ini = put(data_dir, "ini", HISTORY_INI, folder / "microsip.ini")
    loc = locate_from_folder(folder)
    assert loc.mode == "portable"
    assert loc.ini == ini
    assert loc.exe == folder / "microsip.exe"


def test_folder_with_a_renamed_exe_and_its_ini(machine: Machine, data_dir: Path) -> None:
    folder = machine.root / "Microtalk"
    make_exe(folder, "Microtalk-NG.exe")
    make_exe(folder, "helper.exe")  # another program without an ini of its own
    ini = put(data_dir, "ini", FORK_INI, folder / "microtalk-ng.INI")
    loc = locate_from_folder(folder)
    assert loc.exe == folder / "Microtalk-NG.exe"
    assert loc.ini == ini


def test_install_folder_given_as_folder_is_installed(machine: Machine, data_dir: Path) -> None:
    make_exe(machine.install)
    make_exe(machine.install, "Uninstall.exe")
    ini = put(data_dir, "ini", HISTORY_INI, machine.roaming / "microsip.ini")
    loc = locate_from_folder(
        machine.install, install_path=str(machine.install), appdata=machine.appdata
    )
    assert loc.mode == "installed"
    assert loc.ini == ini


def test_single_renamed_exe_installed_without_ini_beside(machine: Machine) -> None:
    make_exe(machine.install, "Softphone.exe")
    loc = locate_from_folder(
        machine.install, install_path=str(machine.install), appdata=machine.appdata
    )
    assert loc.mode == "installed"
    assert loc.ini == machine.roaming / "Softphone.ini"


def test_appdata_style_data_folder(machine: Machine, data_dir: Path) -> None:
    ini = put(data_dir, "ini", HISTORY_INI, machine.roaming / "microsip.ini")
    contacts = put(data_dir, "contacts", OTHER_CONTACTS, machine.roaming / "contacts.xml")
    loc = locate_from_folder(machine.roaming, appdata=machine.appdata)
    assert loc.mode == "installed"
    assert (loc.ini, loc.contacts, loc.exe) == (ini, contacts, None)
    # The same kind of folder elsewhere (a backup, a copy from another PC) is just data.
    copy = machine.root / "backup"
    shutil.copytree(machine.roaming, copy)
    loc = locate_from_folder(copy, appdata=machine.appdata)
    assert loc.mode == "explicit"
    assert loc.ini == copy / "microsip.ini"


def test_data_folder_with_one_renamed_ini(machine: Machine, data_dir: Path) -> None:
    ini = put(data_dir, "ini", FORK_INI, machine.roaming / "Microtalk-NG.ini")
    assert locate_from_folder(machine.roaming, appdata=machine.appdata).ini == ini


def test_data_folder_with_several_inis_is_ambiguous(machine: Machine, data_dir: Path) -> None:
    put(data_dir, "ini", FORK_INI, machine.roaming / "Microtalk-NG.ini")
    put(data_dir, "ini", NO_CALLS_INI, machine.roaming / "Other.ini")
    with pytest.raises(NotFoundError, match=r"Microtalk-NG\.ini, Other\.ini"):
        locate_from_folder(machine.roaming)


def test_several_programs_with_their_own_ini(machine: Machine, data_dir: Path) -> None:
    folder = machine.root / "Two"
    for name in ("A.exe", "B.exe"):
        make_exe(folder, name)
        put(data_dir, "ini", NO_CALLS_INI, folder / name.replace(".exe", ".ini"))
    with pytest.raises(NotFoundError, match=r"A\.exe, B\.exe"):
        locate_from_folder(folder)
    # With microsip.exe among them, MicroSIP's own name wins.
    make_exe(folder)
    put(data_dir, "ini", HISTORY_INI, folder / "microsip.ini")
    assert locate_from_folder(folder).ini == folder / "microsip.ini"


def test_folder_with_unrelated_programs_only(machine: Machine) -> None:
    folder = machine.root / "Downloads"
    make_exe(folder, "setup.exe")
    with pytest.raises(NotFoundError, match=r"setup\.exe") as info:
        locate_from_folder(folder)
    assert info.value.path == folder


def test_missing_and_empty_folders(machine: Machine) -> None:
    with pytest.raises(NotFoundError, match="no such folder"):
        locate_from_folder(machine.root / "nowhere")
    (machine.root / "empty").mkdir()
    with pytest.raises(NotFoundError, match=r"microsip\.ini") as info:
        locate_from_folder(machine.root / "empty")
    assert info.value.path == machine.root / "empty"


# --- locate(): precedence ----------------------------------------------------------------------


def test_explicit_ini_wins_over_everything(machine: Machine, data_dir: Path) -> None:
    chosen = put(data_dir, "ini", FORK_INI, machine.root / "chosen" / "phone.ini")
    contacts = put(data_dir, "contacts", OTHER_CONTACTS, machine.root / "chosen" / "contacts.xml")
    other = put(data_dir, "ini", HISTORY_INI, machine.root / "env" / "microsip.ini")
    exe = make_exe(machine.root / "portable")
    loc = locate(
        microsip=exe,
        ini=chosen,
        env=machine.env(MICROSIP_INI=str(other)),
        registry=machine.registry(hkcu=str(machine.install)),
    )
    assert loc.mode == "explicit"
    assert loc.ini == chosen
    assert loc.contacts == contacts  # Contacts.xml beside the ini, matched case-insensitively
    assert loc.exe == exe
    assert "--ini" in loc.found_by


def test_explicit_microsip_folder_wins_over_env_var(machine: Machine, data_dir: Path) -> None:
    # An explicit option always beats the environment (it used to write another folder's ini).
    from_env = put(data_dir, "ini", HISTORY_INI, machine.root / "env" / "microsip.ini")
    folder = machine.root / "portable"
    make_exe(folder)
    put(data_dir, "ini", NO_CALLS_INI, folder / "microsip.ini")
    loc = locate(microsip=folder, env=machine.env(MICROSIP_INI=str(from_env)))
    assert loc.ini == folder / "microsip.ini"
    assert loc.found_by.startswith("--microsip")
    loc = locate(env=machine.env(MICROSIP_INI=str(from_env)), configured=folder)
    assert loc.ini == from_env  # the environment beats the config file...
    assert loc.contacts == from_env.parent / "Contacts.xml"
    assert "MICROSIP_INI" in loc.found_by
    loc = locate(env=machine.env(), configured=folder, registry=machine.registry())
    assert loc.ini == folder / "microsip.ini"  # ...which beats the search
    assert loc.found_by.startswith("the microsip setting in config.toml")


def test_empty_env_var_is_ignored(machine: Machine, data_dir: Path) -> None:
    folder = machine.root / "portable"
    make_exe(folder)
    ini = put(data_dir, "ini", NO_CALLS_INI, folder / "microsip.ini")
    loc = locate(microsip=folder, env=machine.env(MICROSIP_INI=""), registry=machine.registry())
    assert loc.ini == ini
    assert loc.mode == "portable"


def test_default_env_is_the_live_environment(
    machine: Machine, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ini = put(data_dir, "ini", HISTORY_INI, machine.root / "live" / "microsip.ini")
    monkeypatch.setenv("MICROSIP_INI", str(ini))
    assert locate().ini == ini


def test_microsip_exe_uses_registry_and_env(machine: Machine, data_dir: Path) -> None:
    exe = make_exe(machine.install)
    ini = put(data_dir, "ini", HISTORY_INI, machine.roaming / "microsip.ini")
    # Windows' environment is case-insensitive: a lower-case key must be found.
    env = {"appdata": str(machine.appdata)}
    loc = locate(microsip=exe, env=env, registry=machine.registry(hklm=str(machine.install)))
    assert loc.mode == "installed"
    assert loc.ini == ini
    assert loc.found_by.startswith("--microsip: ")


def test_explicit_contacts_override_what_was_found(machine: Machine, data_dir: Path) -> None:
    folder = machine.root / "portable"
    make_exe(folder)
    put(data_dir, "ini", NO_CALLS_INI, folder / "microsip.ini")
    contacts = put(data_dir, "contacts", CONTACTS, machine.root / "shared" / "Contacts.xml")
    loc = locate(microsip=folder, contacts=contacts, env={}, registry=machine.registry())
    assert loc.contacts == contacts
    assert loc.ini == folder / "microsip.ini"
    assert "--contacts" in loc.found_by


def test_explicit_paths_that_cannot_be_right(machine: Machine) -> None:
    with pytest.raises(NotFoundError, match="folder, not the ini"):
        locate(ini=machine.root, env={})
    with pytest.raises(NotFoundError, match="does not exist") as info:
        locate(ini=machine.root / "nowhere" / "microsip.ini", env={})
    assert info.value.path == machine.root / "nowhere" / "microsip.ini"
    with pytest.raises(NotFoundError, match="MICROSIP_INI"):
        locate(env={"MICROSIP_INI": str(machine.root / "nowhere" / "x.ini")})
    with pytest.raises(NotFoundError, match="no existing exe or folder"):
        locate(microsip=machine.root / "nowhere.exe", env={}, registry=machine.registry())
    folder = machine.root / "p"
    make_exe(folder)
    with pytest.raises(NotFoundError, match="--contacts"):
        locate(
            microsip=folder,
            contacts=machine.root / "no" / "c.xml",
            env={},
            registry=machine.registry(),
        )


def test_an_explicit_ini_may_not_exist_yet(machine: Machine) -> None:
    # MicroSIP creates a missing ini at its first start; readers report a missing file.
    loc = locate(ini=machine.root / "new.ini", env={})
    assert loc.ini == machine.root / "new.ini"


@pytest.mark.skipif(sys.platform == "win32", reason="Windows searches the real registry")
def test_nothing_given_off_windows_says_what_to_pass(machine: Machine) -> None:
    with pytest.raises(NotFoundError) as info:
        locate(env=machine.env())
    message = str(info.value)
    assert "--microsip FOLDER" in message
    assert "--ini PATH" in message
    assert "MICROSIP_INI" in message


# --- the search of the usual places ------------------------------------------------------------


def test_search_finds_the_installed_copy_first(machine: Machine, data_dir: Path) -> None:
    exe = make_exe(machine.install)
    ini = put(data_dir, "ini", HISTORY_INI, machine.roaming / "microsip.ini")
    portable = machine.program_files_x86 / "MicroSIP"
    make_exe(portable)
    put(data_dir, "ini", NO_CALLS_INI, portable / "microsip.ini")
    loc = locate(env=machine.env(), registry=machine.registry(hkcu=str(machine.install)))
    assert loc.mode == "installed"
    assert (loc.ini, loc.exe) == (ini, exe)
    assert r"HKCU\Software\MicroSIP" in loc.found_by


def test_search_falls_back_to_appdata(machine: Machine, data_dir: Path) -> None:
    # The registry value is gone (uninstalled, or a roaming profile), the data is still there.
    ini = put(data_dir, "ini", HISTORY_INI, machine.roaming / "microsip.ini")
    loc = search(machine.env(), machine.registry())
    assert loc.mode == "installed"
    assert loc.ini == ini
    assert loc.exe is None


def test_search_finds_a_portable_copy(machine: Machine, data_dir: Path) -> None:
    folder = machine.localappdata / "Programs" / "MicroSIP"
    make_exe(folder)
    ini = put(data_dir, "ini", HISTORY_INI, folder / "microsip.ini")
    loc = search(machine.env(), machine.registry())
    assert loc.mode == "portable"
    assert loc.ini == ini
    assert "%LOCALAPPDATA%\\Programs\\MicroSIP" in loc.found_by


def test_search_prefers_an_existing_ini_to_a_fresh_install(
    machine: Machine, data_dir: Path
) -> None:
    make_exe(machine.install)  # installed but never started: no ini in %APPDATA% yet
    folder = machine.program_files_x86 / "MicroSIP"
    make_exe(folder)
    ini = put(data_dir, "ini", HISTORY_INI, folder / "microsip.ini")
    loc = search(machine.env(), machine.registry(hkcu=str(machine.install)))
    assert loc.ini == ini
    assert loc.mode == "portable"


def test_search_returns_a_fresh_install_with_a_note(machine: Machine) -> None:
    exe = make_exe(machine.install)
    loc = search(machine.env(), machine.registry(hkcu=str(machine.install)))
    assert loc.mode == "installed"
    assert loc.exe == exe
    assert loc.ini == machine.roaming / "microsip.ini"
    assert any("does not exist yet" in note for note in loc.notes)


def test_search_failure_names_every_place_tried(machine: Machine) -> None:
    env = machine.env()
    del env["ProgramFiles(x86)"]
    (machine.program_files / "MicroSIP").mkdir()  # exists, but holds nothing
    with pytest.raises(NotFoundError) as info:
        search(env, machine.registry())
    message = str(info.value)
    assert r"HKCU and HKLM\Software\MicroSIP (no install path)" in message
    assert str(machine.roaming / "microsip.ini") + " (missing)" in message
    assert str(machine.program_files / "MicroSIP") in message
    assert "%ProgramFiles(x86)%\\MicroSIP (variable not set)" in message
    assert str(machine.localappdata / "Programs" / "MicroSIP") + " (no such folder)" in message
    assert "pass --microsip FOLDER, --ini PATH or set MICROSIP_INI" in message
    assert "\n" not in message


def test_search_reports_an_install_path_without_microsip(machine: Machine) -> None:
    machine.install.mkdir()
    with pytest.raises(NotFoundError, match=r"no microsip\.exe"):
        search(machine.env(), machine.registry(hkcu=str(machine.install)))


def test_location_is_immutable(machine: Machine) -> None:
    loc = MicroSIPLocation(
        ini=machine.root / "a.ini",
        contacts=machine.root / "Contacts.xml",
        folder=machine.root,
        mode="explicit",
        found_by="test",
    )
    with pytest.raises(AttributeError):
        loc.ini = machine.root  # type: ignore[misc]
