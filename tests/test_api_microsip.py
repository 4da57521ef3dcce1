"""The read API over MicroSIP's own files and the daemon, against a real daemon on loopback:
GET /status, /history, /contacts, /lookup; each object the one the CLI prints."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest

from microsip_bridge import __version__
from microsip_bridge.contacts.search import lookup_number, search_contacts
from microsip_bridge.microsip.contact import Contact, user_part
from microsip_bridge.microsip.contacts_xml import write_contacts
from microsip_bridge.microsip.history import CallType
from microsip_bridge.microsip.history_ring import append_entry
from microsip_bridge.microsip.hook_keys import hook_value
from microsip_bridge.microsip.inifile import IniDocument
from microsip_bridge.model import Event, EventRecord
from microsip_bridge.store import repo
from microsip_bridge.store.engine import make_engine
from tests.cli_support import run
from tests.daemon_support import live_daemon

T0 = 1_764_000_000
PROGRAM = "/opt/msb/bin/microsip-bridge-hook"
CONTACTS = [
    Contact(name="Alice Martin", number="1001"),
    Contact(name="Bob Öztürk", number="+44 20 7946 0018", mobile="07700 900123"),
    Contact(firstname="Carol", lastname="Nguyen", number="sip:5551234@pbx.example"),
    Contact(name="No Number", number="", phone="2002"),
    Contact(name="Dora", number="555"),
]


def microsip_folder(root: Path) -> Path:
    """A MicroSIP 3.22 folder: an ini with history and some hooks, and a Contacts.xml."""
    folder = root / "MicroSIP"
    folder.mkdir()
    doc = IniDocument.new(folder / "microsip.ini")
    doc.set("Settings", "version", "3.22.3")
    doc.set("Settings", "cmdCallRing", hook_value(PROGRAM, Event.RING))
    doc.set("Settings", "cmdCallAnswer", hook_value(PROGRAM, Event.ANSWER))
    doc.set("Settings", "cmdIncomingCall", "notify.exe")
    doc.set("Settings", "cmdCallEnd", "x.bat")
    append_entry(doc, "1001", "Alice Martin", CallType.INCOMING, T0, 42, "Call ended")
    append_entry(doc, "+447700900123", "", CallType.MISSED, T0 + 60, 0, "Missed")
    append_entry(doc, "=2+5", "=HYPERLINK()", CallType.OUTGOING, T0 + 120, 7, "")
    doc.save(backups=0)
    write_contacts(folder / "Contacts.xml", CONTACTS, backups=0)
    return folder


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path, str]]:
    """(home, MicroSIP folder, the daemon's URL) for a daemon that knows the folder's ini."""
    root = tmp_path_factory.mktemp("api-microsip")
    folder = microsip_folder(root)
    home = root / "home"
    with live_daemon(home, ini=folder / "microsip.ini", hook_program=PROGRAM) as daemon:
        host, port = daemon.wait_listening()
        yield home, folder, f"http://{host}:{port}"


@pytest.fixture
def api(setup: tuple[Path, Path, str]) -> Iterator[httpx2.Client]:
    home, _, url = setup
    token = (home / "token").read_text().strip()
    with httpx2.Client(
        base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30
    ) as client:
        yield client


# --- /status -----------------------------------------------------------------------------------


def test_status_tells_microsip_its_hooks_and_the_store(
    api: httpx2.Client, setup: tuple[Path, Path, str]
) -> None:
    home, folder, _ = setup
    body = api.get("/api/v1/status").json()
    assert body["version"] == __version__
    microsip = body["microsip"]
    assert microsip["found"] is True
    assert microsip["folder"] == str(folder) and microsip["ini"] == str(folder / "microsip.ini")
    assert microsip["version"] == "3.22.3" and microsip["detail"] is None
    assert microsip["running"] in (None, False)  # no MicroSIP window here, no simulator
    states = {h["key"]: h["state"] for h in body["hooks"]}
    assert len(body["hooks"]) == 8
    assert states["cmdCallRing"] == states["cmdCallAnswer"] == "ours"
    assert states["cmdIncomingCall"] == "foreign"
    assert states["cmdCallEnd"] == "damaged"
    assert states["cmdOutgoingCall"] == states["cmdCallBusy"] == "missing"
    assert [h["event"] for h in body["hooks"]][:3] == ["outgoing", "incoming", "ring"]
    assert body["store"] == {
        "database": f"sqlite:///{(home / 'bridge.db').resolve()}",
        "ok": True,
        "detail": None,
    }


def test_status_shows_the_newest_event(api: httpx2.Client, setup: tuple[Path, Path, str]) -> None:
    home, _, _ = setup
    engine = make_engine(None, home)
    try:
        with engine.begin() as conn:
            cursor, _ = repo.record_event(conn, EventRecord("st1", Event.RING, "1001", T0 + 999.5))
    finally:
        engine.dispose()
    body = api.get("/api/v1/status").json()
    assert body["cursor"] == cursor and body["last_event_at"] == T0 + 999.5


def test_status_says_microsip_runs_when_a_simulator_holds_the_folder(
    api: httpx2.Client, setup: tuple[Path, Path, str]
) -> None:
    import os

    from microsip_bridge.microsip.process import SIM_PID_FILE

    _, folder, _ = setup
    marker = folder / SIM_PID_FILE
    marker.write_text(str(os.getpid()))  # a live process: this one
    try:
        assert api.get("/api/v1/status").json()["microsip"]["running"] is True
    finally:
        marker.unlink()
    assert api.get("/api/v1/status").json()["microsip"]["running"] in (None, False)


def test_status_without_an_ini_and_with_an_empty_store(bridge_home: Path) -> None:
    with live_daemon(bridge_home) as daemon:
        host, port = daemon.wait_listening()
        token = (bridge_home / "token").read_text().strip()
        headers = {"Authorization": f"Bearer {token}"}
        body = httpx2.get(f"http://{host}:{port}/api/v1/status", headers=headers).json()
        assert body["microsip"]["found"] is False and body["microsip"]["folder"] is None
        assert "without a MicroSIP ini" in body["microsip"]["detail"]
        assert body["hooks"] == [] and body["cursor"] == 0 and body["last_event_at"] is None
        assert body["store"]["ok"] is True
        for route in ("/api/v1/history", "/api/v1/contacts", "/api/v1/lookup?number=1"):
            response = httpx2.get(f"http://{host}:{port}{route}", headers=headers)
            assert response.status_code == 404
            assert "without a MicroSIP ini" in response.json()["detail"]


def test_status_with_a_damaged_ini_says_why(tmp_path: Path, bridge_home: Path) -> None:
    ini = tmp_path / "microsip.ini"
    ini.write_bytes(b"\xff\xfe[\x00S\x00]")  # UTF-16 cut in the middle of a character
    with live_daemon(bridge_home, ini=ini) as daemon:
        host, port = daemon.wait_listening()
        token = (bridge_home / "token").read_text().strip()
        headers = {"Authorization": f"Bearer {token}"}
        response = httpx2.get(f"http://{host}:{port}/api/v1/status", headers=headers)
        assert response.status_code == 200
        body = response.json()
        assert body["microsip"]["found"] is True and body["hooks"] == []
        assert body["microsip"]["detail"].startswith("cannot read the ini: ")
        assert "odd number of bytes" in body["microsip"]["detail"]


def test_status_never_shows_a_database_password(bridge_home: Path) -> None:
    from microsip_bridge.diagnosis import microsip_status
    from microsip_bridge.store.engine import safe_url

    shown = safe_url(make_engine("postgresql://bridge:s3cret@db.example/calls").url)
    assert "s3cret" not in shown and "db.example/calls" in shown
    assert microsip_status(None, PROGRAM)["hooks"] == []


# --- /history ----------------------------------------------------------------------------------


def test_history_is_what_history_format_json_prints(
    api: httpx2.Client, setup: tuple[Path, Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    _, folder, _ = setup
    code, out, _ = run(capsys, "history", "--ini", str(folder / "microsip.ini"), "--format", "json")
    assert code == 0
    body = api.get("/api/v1/history").json()
    assert body == json.loads(out)
    assert [e["number"] for e in body] == ["1001", "+447700900123", "=2+5"]
    assert body[1]["type"] == "missed" and body[0]["duration"] == 42


# --- /contacts ---------------------------------------------------------------------------------


def names(response: httpx2.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [c["name"] or c["firstname"] for c in response.json()["contacts"]]


def test_contacts_are_what_contacts_list_prints(
    api: httpx2.Client, setup: tuple[Path, Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    _, folder, _ = setup
    code, out, _ = run(
        capsys, "contacts", "list", "--ini", str(folder / "microsip.ini"), "--format", "json"
    )
    assert code == 0
    assert api.get("/api/v1/contacts").json() == {"contacts": json.loads(out)}


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("alice", ["Alice Martin"]),
        ("ÖZTÜRK", ["Bob Öztürk"]),
        ("nguyen", ["Carol"]),  # a name MicroSIP builds from first and last name
        ("carol nguyen", ["Carol"]),
        ("44 (20) 7946-0018", ["Bob Öztürk"]),  # a number in another format
        ("020 7946 0018", []),  # the national form: a trunk 0 the stored number lacks
        ("+447700900123", []),  # 07700 900123 is the national form: not digits in common
        ("7700 900123", ["Bob Öztürk"]),  # the mobile
        ("(555) 1234", ["Carol"]),
        ("pbx.example", ["Carol"]),
        ("2002", ["No Number"]),
        ("555", ["Carol", "Dora"]),
        ("", ["Alice Martin", "Bob Öztürk", "Carol", "No Number", "Dora"]),
        ("zed", []),
    ],
)
def test_contacts_search_by_name_or_number(api: httpx2.Client, q: str, expected: list[str]) -> None:
    assert names(api.get("/api/v1/contacts", params={"q": q})) == expected


def test_contacts_refuse_control_characters(api: httpx2.Client) -> None:
    response = api.get("/api/v1/contacts", params={"q": "a\x00"})
    assert response.status_code == 422 and response.json()["detail"].startswith("q: ")


def test_search_contacts_directly() -> None:
    assert search_contacts(CONTACTS, "  ") == CONTACTS
    assert [c.name for c in search_contacts(CONTACTS, "7946-0018")] == ["Bob Öztürk"]


# --- /lookup -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("number", "name", "matched"),
    [
        ("1001", "Alice Martin", "1001"),  # exact
        ("sip:1001@pbx.example", "Alice Martin", "1001"),  # the caller's user part
        ("5551234", "Carol Nguyen", "sip:5551234@pbx.example"),  # the contact's user part
        ("0015551234", "Carol Nguyen", "sip:5551234@pbx.example"),  # at most 3 more in front
        ("+44 20 7946 0018", "Bob Öztürk", "+44 20 7946 0018"),
    ],
)
def test_lookup_follows_microsips_rule(
    api: httpx2.Client, number: str, name: str, matched: str
) -> None:
    response = api.get("/api/v1/lookup", params={"number": number})
    assert response.status_code == 200, response.text
    assert response.json() == {"name": name, "source": "microsip", "number": matched}


@pytest.mark.parametrize(
    "number",
    [
        "00005551234",  # 4 more in front: no suffix match
        "2002",  # the contact without a number: MicroSIP does not load it
        "55",  # "555" is no suffix of it
        "1555",  # "555" is too short to match as a suffix
        "unknown",
    ],
)
def test_lookup_is_404_when_microsip_would_find_no_name(api: httpx2.Client, number: str) -> None:
    response = api.get("/api/v1/lookup", params={"number": number})
    assert response.status_code == 404
    assert response.json()["detail"].startswith("no contact for ")


def test_lookup_needs_a_number(api: httpx2.Client) -> None:
    for params in ({}, {"number": ""}, {"number": "1\x002"}):
        response = api.get("/api/v1/lookup", params=params)
        assert response.status_code == 422 and response.json()["detail"].startswith("number: ")


def test_user_part_strips_scheme_and_host() -> None:
    assert user_part("sip:1001@pbx") == "1001"
    assert user_part("TEL:+15551234") == "+15551234"
    assert user_part(" 1001 ") == "1001"
    assert user_part("alice:1001") == "alice:1001"
    assert lookup_number(CONTACTS, "") is None
    assert lookup_number(CONTACTS, "sip:@pbx") is None


def test_the_simulator_uses_the_same_rule() -> None:
    from microsip_bridge.sim.settings import lookup_name

    assert lookup_name(CONTACTS, "0015551234") == "Carol Nguyen"
    assert lookup_name(CONTACTS, "00005551234") == ""


def test_a_damaged_contacts_file_is_a_one_line_422(tmp_path: Path, bridge_home: Path) -> None:
    folder = microsip_folder(tmp_path)
    (folder / "Contacts.xml").write_bytes(b'<?xml version="1.0"?>\r\n<contacts><contact name="a')
    with live_daemon(bridge_home, ini=folder / "microsip.ini") as daemon:
        host, port = daemon.wait_listening()
        headers = {"Authorization": f"Bearer {(bridge_home / 'token').read_text().strip()}"}
        for route in ("/api/v1/contacts", "/api/v1/lookup?number=1001"):
            response = httpx2.get(f"http://{host}:{port}{route}", headers=headers)
            assert response.status_code == 422
            detail = response.json()["detail"]
            assert "Contacts.xml" in detail and "\n" not in detail


def test_a_store_that_does_not_answer_is_a_503_and_status_says_so() -> None:
    from microsip_bridge.errors import StoreUnavailableError
    from microsip_bridge.server.params import read_store
    from microsip_bridge.store.query import newest_event

    engine = make_engine("postgresql://bridge:s3cret@127.0.0.1:9/calls")
    try:
        with pytest.raises(StoreUnavailableError) as refused:
            read_store(engine, newest_event)
    finally:
        engine.dispose()
    assert "s3cret" not in str(refused.value) and "\n" not in str(refused.value)
    from microsip_bridge.server.app import http_status

    assert http_status(refused.value) == 503


def test_contacts_are_read_again_when_the_file_changes(
    api: httpx2.Client, setup: tuple[Path, Path, str]
) -> None:
    import os

    _, folder, _ = setup
    path = folder / "Contacts.xml"
    before = path.read_bytes()
    try:
        write_contacts(path, [*CONTACTS, Contact(name="Eve Late", number="7007")], backups=0)
        stat = path.stat()  # the same second as the first write on a coarse clock: move it
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
        assert names(api.get("/api/v1/contacts", params={"q": "eve"})) == ["Eve Late"]
        assert api.get("/api/v1/lookup", params={"number": "7007"}).json()["name"] == "Eve Late"
    finally:
        path.write_bytes(before)
    assert names(api.get("/api/v1/contacts", params={"q": "eve"})) == []
