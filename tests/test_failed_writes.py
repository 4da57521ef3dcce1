"""A failed, refused or killed command writes nothing it cannot undo, and prints no plan as done."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from microsip_bridge import fileio
from microsip_bridge.errors import BridgeError, UnsafeInputError
from microsip_bridge.microsip.hook_keys import HookPlan, SavedHooks
from microsip_bridge.microsip.inifile import IniDocument
from tests.cli_support import run

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "samples" / "MicroSIP"
USER_COMMAND = r'"C:\CRM\log.exe" end'


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """The sample MicroSIP folder with the user's own command in cmdCallEnd."""
    target = tmp_path / "MicroSIP"
    shutil.copytree(SAMPLE, target)
    doc = IniDocument.load(target / "microsip.ini")
    doc.set("Settings", "cmdCallEnd", USER_COMMAND)
    doc.save(backups=0)
    return target


def end_value(folder: Path) -> str | None:
    return IniDocument.load(folder / "microsip.ini").get("Settings", "cmdCallEnd")


# --- hooks install / uninstall ------------------------------------------------------------------


def test_install_with_an_unwritable_store_changes_nothing(
    capsys: pytest.CaptureFixture[str], folder: Path, bridge_home: Path
) -> None:
    # saved-hooks.json cannot be written (a read-only home): the ini must not change, or the
    # user's command would be gone with nothing to put it back.
    (bridge_home / "saved-hooks.json").mkdir()
    original = (folder / "microsip.ini").read_bytes()
    code, out, err = run(capsys, "hooks", "install", "--microsip", str(folder))
    assert code != 0
    assert err.count("\n") == 1 and "saved-hooks.json" in err
    assert out == ""  # no plan printed as if done
    assert (folder / "microsip.ini").read_bytes() == original


def test_a_kill_right_after_the_ini_write_loses_no_user_command(
    capsys: pytest.CaptureFixture[str], folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The worst moment to die: the ini holds our hooks, the rest of the command never ran.
    def killed(self: HookPlan) -> None:
        raise SystemExit(137)

    with monkeypatch.context() as patch:
        patch.setattr(HookPlan, "commit", killed)
        code, _, _ = run(capsys, "hooks", "install", "--microsip", str(folder))
    assert code == 137
    assert end_value(folder) != USER_COMMAND  # the ini was written...
    code, _, _ = run(capsys, "hooks", "uninstall", "--microsip", str(folder))
    assert code == 0
    assert end_value(folder) == USER_COMMAND  # ...and the user's command comes back


def test_uninstall_forgets_a_saved_command_only_after_the_ini_is_written(
    capsys: pytest.CaptureFixture[str], folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert run(capsys, "hooks", "install", "--microsip", str(folder))[0] == 0

    def disk_full(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as patch:
        patch.setattr(fileio.os, "replace", disk_full)
        code, out, err = run(capsys, "hooks", "uninstall", "--microsip", str(folder))
    assert code != 0 and "No space left" in err and out == ""
    assert SavedHooks().entries(folder / "microsip.ini")["cmdCallEnd"].value == USER_COMMAND
    assert run(capsys, "hooks", "uninstall", "--microsip", str(folder))[0] == 0
    assert end_value(folder) == USER_COMMAND
    assert SavedHooks().entries(folder / "microsip.ini") == {}


def test_a_refused_install_prints_no_plan(capsys: pytest.CaptureFixture[str], folder: Path) -> None:
    (folder / "microsip-sim.pid").write_text(str(os.getpid()))  # the simulator "runs" here
    code, out, err = run(capsys, "hooks", "install", "--microsip", str(folder))
    assert code == 3
    assert out == ""
    assert "MicroSIP is running" in err
    assert SavedHooks().entries(folder / "microsip.ini") == {}  # nothing saved either


# --- atomic writes ------------------------------------------------------------------------------


def test_leftovers_of_a_killed_writer_are_removed_and_a_live_writers_kept(tmp_path: Path) -> None:
    target = tmp_path / "microsip.ini"
    target.write_bytes(b"old")
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    dead_pid = int(dead.stdout)
    leftover = tmp_path / f".microsip.ini.{dead_pid}.abc123.tmp"
    leftover.write_bytes(b"half")
    live = tmp_path / f".microsip.ini.{os.getppid()}.def456.tmp"  # a writer that still runs
    live.write_bytes(b"busy")
    other = tmp_path / f".Contacts.xml.{dead_pid}.abc123.tmp"  # another file's: not ours to judge
    other.write_bytes(b"x")
    fileio.atomic_write(target, b"new", backups=0)
    assert target.read_bytes() == b"new"
    assert not leftover.exists()
    assert live.exists() and other.exists()
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix == ".tmp") == sorted(
        [live.name, other.name]
    )


def test_a_backup_is_whole_or_absent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "Contacts.xml"
    target.write_bytes(b"<contacts/>" * 1000)

    def torn_copy(src: object, dst: object, length: int = 0) -> None:
        dst.write(b"<cont")  # type: ignore[attr-defined]
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as patch:
        patch.setattr(fileio.shutil, "copyfileobj", torn_copy)
        with pytest.raises(BridgeError, match="No space left"):
            fileio.atomic_write(target, b"<contacts/>", backups=3)
    folder = tmp_path / fileio.BACKUP_DIR
    assert list(folder.iterdir()) == []  # no torn backup, no temporary file
    assert target.read_bytes() == b"<contacts/>" * 1000
    backup = fileio.atomic_write(target, b"<contacts/>", backups=3)
    assert backup is not None and backup.read_bytes() == b"<contacts/>" * 1000


def test_never_write_what_would_be_refused_on_read(tmp_path: Path) -> None:
    target = tmp_path / "Contacts.xml"
    target.write_bytes(b"<contacts/>")
    with pytest.raises(UnsafeInputError, match="over the limit of 10"):
        fileio.atomic_write(target, b"x" * 11, max_bytes=10)
    assert target.read_bytes() == b"<contacts/>"
    assert list(tmp_path.iterdir()) == [target]


def test_status_counts_only_real_commands_as_saved(
    capsys: pytest.CaptureFixture[str], folder: Path
) -> None:
    # Seven keys were empty or absent, one held the user's command: one command is saved.
    assert run(capsys, "hooks", "install", "--microsip", str(folder))[0] == 0
    code, out, _ = run(capsys, "hooks", "status", "--microsip", str(folder))
    assert code == 0
    assert "1 command of your own is saved" in out


# --- what a file is -------------------------------------------------------------------------------


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_fifo_given_as_a_file_is_refused_at_once(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    fifo = tmp_path / "microsip.ini"
    os.mkfifo(fifo)  # nobody writes to it: opening it for reading would block for ever
    code, out, err = run(capsys, "history", "--ini", str(fifo))
    assert code != 0 and out == ""
    assert "not a regular file" in err and err.count("\n") == 1
    with pytest.raises(UnsafeInputError, match="not a regular file"):
        fileio.read_limited(fifo, 1000, "microsip.ini")


def test_exports_follow_the_umask_and_private_files_stay_private(
    capsys: pytest.CaptureFixture[str], folder: Path, tmp_path: Path
) -> None:
    old = os.umask(0o022)
    try:
        out = tmp_path / "history.json"
        code, _, _ = run(
            capsys, "history", "--microsip", str(folder), "--format", "json", "-o", str(out)
        )
        assert code == 0
        assert out.stat().st_mode & 0o777 == 0o644  # a web server may serve it
        private = tmp_path / "token"
        fileio.atomic_write(private, b"secret", backups=0)
        assert private.stat().st_mode & 0o777 == 0o600
    finally:
        os.umask(old)


def test_an_explicit_folder_beats_microsip_ini_for_writes(
    capsys: pytest.CaptureFixture[str],
    folder: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    other = tmp_path / "other"
    shutil.copytree(folder, other)
    monkeypatch.setenv("MICROSIP_INI", str(other / "microsip.ini"))
    untouched = (other / "microsip.ini").read_bytes()
    code, out, _ = run(capsys, "hooks", "install", "--microsip", str(folder))
    assert code == 0 and f"wrote {folder / 'microsip.ini'}" in out
    assert (other / "microsip.ini").read_bytes() == untouched
    code, out, _ = run(capsys, "doctor", "--microsip", str(folder), "--format", "json")
    assert "--microsip" in out
    code, out, _ = run(capsys, "doctor", "--format", "json")
    assert "MICROSIP_INI" in out
