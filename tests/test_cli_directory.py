"""`microsip-bridge directory`: usersDirectory set in microsip.ini and put back (facts §3.4, §4.6),
refused while MicroSIP runs, with the key that opens only the directory."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from microsip_bridge.directory import key as keys
from microsip_bridge.directory.service import url_key
from microsip_bridge.microsip.directory_url import (
    KEY,
    SECTION,
    DirectoryAction,
    install_directory,
    saved_store,
    uninstall_directory,
)
from microsip_bridge.microsip.inifile import IniDocument
from microsip_bridge.sim.folder import create_folder
from microsip_bridge.sim.simulator import Simulator
from tests.cli_support import run

USERS_OWN = "https://phonebook.example.invalid/dir.xml?u=%s"


@pytest.fixture
def ini(tmp_path: Path) -> Path:
    """A simulated MicroSIP's ini, with the user's own directory URL in it."""
    folder = create_folder(tmp_path / "MicroSIP")
    doc = IniDocument.load(folder.ini)
    doc.set(SECTION, KEY, USERS_OWN)
    doc.save(backups=0)
    return folder.ini


def users_directory(ini: Path) -> str | None:
    return IniDocument.load(ini).get_raw(SECTION, KEY)


def test_install_then_uninstall_puts_the_users_url_back_byte_for_byte(
    capsys: pytest.CaptureFixture[str], ini: Path, bridge_home: Path
) -> None:
    before = ini.read_bytes()
    code, out, err = run(capsys, "directory", "install", "--ini", str(ini), "--refresh", "10")
    assert code == 0, err
    key = keys.read_key(bridge_home)
    assert key is not None
    assert users_directory(ini) == f"http://127.0.0.1:5797/directory.json?key={key}&refresh=10"
    assert key not in out and "key=***" in out  # the key is not printed
    assert "install" in out and f"wrote {ini}" in out
    assert IniDocument.load(ini).encoding.is_microsip_native  # still UTF-16LE (facts §3.2)
    saved = saved_store().entries(ini)[KEY]
    assert saved.value == USERS_OWN

    code, out, _ = run(capsys, "directory", "install", "--ini", str(ini), "--refresh", "10")
    assert code == 0 and "nothing to change" in out  # idempotent, and the saved URL stays
    assert saved_store().entries(ini)[KEY].value == USERS_OWN

    code, out, _ = run(capsys, "directory", "status", "--ini", str(ini), "--format", "json")
    report = json.loads(out)
    assert code == 0
    assert report["bridge"] and report["key_current"] and report["saved"] == USERS_OWN
    assert key not in out

    code, out, err = run(capsys, "directory", "uninstall", "--ini", str(ini))
    assert code == 0, err
    assert "restore" in out
    assert ini.read_bytes() == before
    assert saved_store().entries(ini) == {}


def test_install_with_basic_auth_xml_and_another_port(
    capsys: pytest.CaptureFixture[str], ini: Path, bridge_home: Path
) -> None:
    code, _, err = run(
        capsys,
        "directory",
        "install",
        "--ini",
        str(ini),
        "--basic-auth",
        "--format",
        "xml",
        "--port",
        "6000",
    )
    assert code == 0, err
    key = keys.read_key(bridge_home)
    assert users_directory(ini) == f"http://microsip:{key}@127.0.0.1:6000/directory.xml?refresh=15"


def test_a_new_key_replaces_the_url_without_saving_our_own(
    capsys: pytest.CaptureFixture[str], ini: Path, bridge_home: Path
) -> None:
    run(capsys, "directory", "install", "--ini", str(ini))
    first = keys.read_key(bridge_home)
    code, out, _ = run(capsys, "directory", "install", "--ini", str(ini), "--new-key")
    second = keys.read_key(bridge_home)
    assert code == 0 and "update" in out
    assert first != second and url_key(users_directory(ini) or "") == second
    assert saved_store().entries(ini)[KEY].value == USERS_OWN  # never our own URL
    run(capsys, "directory", "uninstall", "--ini", str(ini))
    assert users_directory(ini) == USERS_OWN


def test_status_fails_when_the_installed_key_no_longer_opens_the_directory(
    capsys: pytest.CaptureFixture[str], ini: Path, bridge_home: Path
) -> None:
    code, out, _ = run(capsys, "directory", "status", "--ini", str(ini))
    assert code == 0 and "not the bridge's" in out
    run(capsys, "directory", "install", "--ini", str(ini))
    code, out, _ = run(capsys, "directory", "status", "--ini", str(ini))
    assert code == 0 and "key current" in out
    (bridge_home / keys.KEY_NAME).unlink()
    code, out, _ = run(capsys, "directory", "status", "--ini", str(ini))
    assert code == 1 and "WRONG KEY" in out


def test_refused_while_microsip_runs_and_nothing_changes(
    capsys: pytest.CaptureFixture[str], ini: Path, bridge_home: Path
) -> None:
    run(capsys, "directory", "install", "--ini", str(ini))
    key = keys.read_key(bridge_home)
    with Simulator(ini.parent, hook_timeout=5.0):
        during = ini.read_bytes()  # the simulator writes version= as it starts (facts §3.2)
        for args in (("install", "--new-key"), ("uninstall",)):
            code, out, err = run(capsys, "directory", *args, "--ini", str(ini))
            assert code == 3, (args, out, err)  # as `hooks install`: MicroSIP is running
            assert "MicroSIP is running" in err and "Traceback" not in err
            assert out == ""  # no plan printed as if done
        assert ini.read_bytes() == during
    assert keys.read_key(bridge_home) == key  # --new-key refused before rotating
    assert saved_store().entries(ini)[KEY].value == USERS_OWN


def test_dry_run_writes_nothing(
    capsys: pytest.CaptureFixture[str], ini: Path, bridge_home: Path
) -> None:
    before = ini.read_bytes()
    code, out, _ = run(capsys, "directory", "install", "--ini", str(ini), "--dry-run")
    assert code == 0 and "dry run: nothing written" in out
    assert ini.read_bytes() == before
    assert keys.read_key(bridge_home) is None and saved_store().entries(ini) == {}


def test_url_prints_the_url_with_its_key(
    capsys: pytest.CaptureFixture[str], bridge_home: Path
) -> None:
    code, out, _ = run(capsys, "directory", "url", "--port", "5800")
    key = keys.read_key(bridge_home)
    assert code == 0
    assert out == f"http://127.0.0.1:5800/directory.json?key={key}&refresh=15\n"


def test_port_zero_is_refused(capsys: pytest.CaptureFixture[str], bridge_home: Path) -> None:
    (bridge_home / "config.toml").write_text("port = 0\n")
    code, out, err = run(capsys, "directory", "url")
    assert code == 1 and "picks another port" in err and out == ""


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str], ini: Path) -> None:
    code, _, err = run(capsys, "directory", "install", "--ini", str(ini), "--refresh", "1")
    assert code == 2 and "--refresh" in err


# --- the library's plan -----------------------------------------------------------------------


def plan_ini(tmp_path: Path, line: str | None) -> tuple[IniDocument, Path]:
    path = tmp_path / "microsip.ini"
    text = "[Settings]\r\n" + (f"{line}\r\n" if line is not None else "")
    IniDocument.from_text(text).save(path, backups=0)
    return IniDocument.load(path), path


URL = "http://127.0.0.1:5797/directory.json?key=" + "k" * 43 + "&refresh=15"


@pytest.mark.parametrize(
    ("line", "back"),
    [
        (None, DirectoryAction.DELETE),  # absent before: removed again
        ("usersDirectory=", DirectoryAction.RESTORE),  # empty before: empty again
        ("usersDirectory=  http://x.invalid/d", DirectoryAction.RESTORE),  # spacing kept
    ],
)
def test_plans_restore_what_was_there(
    tmp_path: Path, line: str | None, back: DirectoryAction
) -> None:
    doc, path = plan_ini(tmp_path, line)
    original = path.read_bytes()
    store = saved_store(tmp_path / "home")
    plan = install_directory(doc, URL, store)
    assert plan.change.action is DirectoryAction.INSTALL
    plan.save_first()
    doc.save(backups=0)
    plan.commit()
    doc = IniDocument.load(path)
    plan = uninstall_directory(doc, store)
    assert plan.change.action is back
    doc.save(backups=0)
    plan.commit()
    assert path.read_bytes() == original
    assert store.entries(path) == {}


def test_uninstall_leaves_a_url_the_user_set_after_install(tmp_path: Path) -> None:
    doc, path = plan_ini(tmp_path, f"usersDirectory={USERS_OWN}")
    store = saved_store(tmp_path / "home")
    plan = install_directory(doc, URL, store)
    plan.commit()
    doc.set(SECTION, KEY, "http://newer.invalid/dir.json")
    plan = uninstall_directory(doc, store)
    assert plan.change.action is DirectoryAction.LEAVE and not plan.changes_ini
    plan.commit()
    assert store.entries(path)[KEY].value == USERS_OWN  # still saved, not lost
