"""The daemon's contacts directory for MicroSIP (issue 8 §3): the response in MicroSIP's
usersDirectory shapes (facts §4.6), presence lamps from the calls on now, the directory key."""

from __future__ import annotations

import base64
import json
import os
import stat
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
from fastapi.routing import APIRoute
from hypothesis import given
from hypothesis import strategies as st

from microsip_bridge import wire
from microsip_bridge.calls.state import CallTracker
from microsip_bridge.directory import key as keys
from microsip_bridge.directory.service import (
    STATUS_IDLE,
    ContactsSource,
    directory_url,
    presence_for,
    render,
    url_key,
    user_part,
)
from microsip_bridge.errors import BridgeError, DirectoryUnavailableError, UnsafeInputError
from microsip_bridge.microsip.contact import Contact
from microsip_bridge.microsip.contacts_xml import serialize_contacts, write_contacts
from microsip_bridge.microsip.directory import DirectoryShape, read_directory_response
from microsip_bridge.microsip.directory_url import check_directory_url
from microsip_bridge.microsip.hook_keys import SavedHooks, install_hooks
from microsip_bridge.microsip.inifile import IniDocument
from microsip_bridge.model import CallState, EventRecord
from microsip_bridge.server.app import create_app
from microsip_bridge.server.directory import basic_password
from microsip_bridge.sim.folder import create_folder
from microsip_bridge.sim.simulator import Simulator
from tests.daemon_support import live_daemon, settings_for, wait_until

HOSTILE = "Ann & <Bob> \"Q\" 'x'"
OWN = Contact(name="Jane Roe", number="5551001")
SIP = Contact(name="Desk", number="sip:2002@pbx.example.invalid", presence=True)
SPACED = Contact(name="Spaced", number="+30 210 123 4567")
SHORT = Contact(name="Short", number="4001", phone="0800 100")
FROM_DIRECTORY = Contact(name=HOSTILE, number="300", info="from the PBX", directory=True)
CONTACTS = [OWN, SIP, SPACED, SHORT, FROM_DIRECTORY]


def lamps(contacts: list[Contact], lines: dict[str, CallState]) -> dict[str, str]:
    return {p.number: p.status for p in presence_for(contacts, lines)}


# --- presence -------------------------------------------------------------------------------------


def test_a_number_on_a_call_lights_the_contact_it_names() -> None:
    # facts §4.6: busy and ring are statuses MicroSIP 3.22 shows; §4.4: how a number names one.
    got = lamps(
        CONTACTS,
        {
            "5551001": CallState.CONNECTED,
            "2002": CallState.RINGING,  # the user part of a sip: contact number
            "+302101234567": CallState.DIALING,  # the same number without blanks
            "0044001": CallState.CONNECTED,  # ends with 4001, three digits more: the suffix rule
        },
    )
    assert got == {
        "5551001": "busy",
        "sip:2002@pbx.example.invalid": "ring",
        "+30 210 123 4567": "ring",
        "4001": "busy",
        "300": STATUS_IDLE,
    }


def test_idle_contacts_get_the_free_lamp_but_sip_presence_keeps_its_own() -> None:
    got = lamps(CONTACTS, {})
    assert got == dict.fromkeys(["5551001", "+30 210 123 4567", "4001", "300"], STATUS_IDLE)
    assert "sip:2002@pbx.example.invalid" not in got  # presence="1": SIP SUBSCRIBE keeps it


def test_what_does_not_name_a_contact_lights_nothing() -> None:
    got = lamps(CONTACTS, {"55510011": CallState.CONNECTED, "001": CallState.RINGING})
    # 55510011 is not 5551001 (one digit more at the end); 001 is too short for the suffix rule
    assert set(got.values()) == {STATUS_IDLE}
    # four extra leading digits are too many (MicroSIP allows a prefix of 3 at most)
    assert lamps([SHORT], {"12344001": CallState.CONNECTED}) == {"4001": STATUS_IDLE}


def test_an_exact_match_wins_over_a_suffix_match() -> None:
    long, short = Contact(name="L", number="5554001"), Contact(name="S", number="4001")
    assert lamps([long, short], {"5554001": CallState.RINGING}) == {
        "5554001": "ring",
        "4001": STATUS_IDLE,
    }


def test_connected_beats_ringing_on_one_contact() -> None:
    contact = Contact(name="Two lines", number="100", phone="200")
    for order in ([("100", CallState.RINGING), ("200", CallState.CONNECTED)],) * 2:
        assert lamps([contact], dict(order)) == {"100": "busy"}
        order.reverse()


def test_user_part() -> None:
    assert user_part("sip:2002@pbx") == "2002"
    assert user_part("SIPS:anna@pbx") == "anna"
    assert user_part("tel:+15551234") == "+15551234"
    assert user_part("5551234,,45") == "5551234"  # post-dial DTMF, facts §1.6 7
    assert user_part("100;user=phone") == "100"


# --- the tracker's live lines ---------------------------------------------------------------------


def feed(tracker: CallTracker, event: str, number: str, ts: float) -> None:
    tracker.feed(EventRecord.from_spool({**wire.make_record(event, number, now=ts)}, "hook"))


def test_the_tracker_reports_the_state_of_each_number_on_a_call() -> None:
    tracker = CallTracker()
    feed(tracker, "incoming", "1001", 1.0)
    feed(tracker, "ring", "1001", 1.1)
    feed(tracker, "outgoing", "2002", 1.2)
    assert tracker.line_states() == {"1001": CallState.RINGING, "2002": CallState.DIALING}
    feed(tracker, "answer", "1001", 2.0)
    feed(tracker, "start", "1001", 2.0)
    assert tracker.line_states()["1001"] is CallState.CONNECTED
    feed(tracker, "end", "2002", 3.0)
    feed(tracker, "end", "1001", 4.0)
    assert tracker.line_states() == {}


def test_a_second_call_from_a_connected_number_keeps_it_busy() -> None:
    tracker = CallTracker()
    for event, ts in (("incoming", 1.0), ("ring", 1.1), ("answer", 2.0), ("start", 2.0)):
        feed(tracker, event, "1001", ts)
    feed(tracker, "incoming", "1001", 3.0)  # call waiting from the same number
    assert tracker.line_states() == {"1001": CallState.CONNECTED}


# --- the response shapes --------------------------------------------------------------------------


def test_json_is_microsips_object_with_presence_read_back_by_the_library() -> None:
    body, media_type = render(CONTACTS, {"5551001": CallState.CONNECTED}, "json", 20)
    assert media_type == "application/json"
    response = read_directory_response(body, media_type)  # facts §4.6, as MicroSIP reads it
    assert response.shape is DirectoryShape.JSON_OBJECT
    assert response.refresh == 20
    assert response.silent == 1
    # Only what a directory gave MicroSIP is served as items: its own contacts would come back
    # as directory copies of themselves (3.20.5 ContactsAdd matches directory contacts only).
    assert [(c.name, c.number, c.info) for c in response.contacts] == [
        (HOSTILE, "300", "from the PBX")
    ]
    assert {(p.number, p.status) for p in response.presence} >= {
        ("5551001", "busy"),
        ("300", STATUS_IDLE),
    }
    assert json.loads(body)["items"][0]["name"] == HOSTILE


def test_xml_is_the_contacts_shape_with_hostile_names_escaped() -> None:
    body, media_type = render(CONTACTS, {"5551001": CallState.CONNECTED}, "xml", 20)
    assert media_type == "application/xml"
    assert b"Ann &amp; &lt;Bob&gt; &quot;Q&quot; &apos;x&apos;" in body  # facts §4.3
    response = read_directory_response(body, media_type)
    assert response.shape is DirectoryShape.XML_CONTACTS
    assert (response.refresh, response.silent) == (20, 1)
    assert [c.name for c in response.contacts] == [HOSTILE]
    assert response.presence == []  # the XML shapes carry no presence list


@given(
    st.lists(
        st.builds(
            Contact,
            name=st.text(st.sampled_from("&<>\"' aé€\t"), max_size=8),
            number=st.text(st.sampled_from("0123456789+ -@:sip"), min_size=1, max_size=10),
            directory=st.booleans(),
            presence=st.booleans(),
        ),
        max_size=6,
    ),
    st.dictionaries(
        st.text("0123456789", min_size=1, max_size=8),
        st.sampled_from([CallState.RINGING, CallState.DIALING, CallState.CONNECTED]),
        max_size=3,
    ),
)
def test_any_contacts_round_trip_through_microsips_reader(
    contacts: list[Contact], lines: dict[str, CallState]
) -> None:
    for fmt in ("json", "xml"):
        body, media_type = render(contacts, lines, fmt)
        response = read_directory_response(body, media_type)
        wanted = [c for c in contacts if c.directory and c.number]
        assert [(c.name or c.number, c.number) for c in wanted] == [
            (c.name, c.number) for c in response.contacts
        ]
    statuses = {p.status for p in presence_for(contacts, lines)}
    assert statuses <= {"busy", "ring", STATUS_IDLE}


# --- MicroSIP's contacts, read for each request ---------------------------------------------------


def test_contacts_come_from_beside_the_ini_and_are_read_again_when_they_change(
    tmp_path: Path,
) -> None:
    ini = tmp_path / "microsip.ini"
    source = ContactsSource(ini)
    assert source.contacts() == []  # no Contacts.xml yet: MicroSIP has no contacts
    write_contacts(tmp_path / "Contacts.xml", [OWN], backups=0)
    assert [c.name for c in source.contacts()] == ["Jane Roe"]
    write_contacts(tmp_path / "Contacts.xml", [OWN, FROM_DIRECTORY], backups=0)
    assert [c.name for c in source.contacts()] == ["Jane Roe", HOSTILE]


def test_no_ini_or_a_half_written_contacts_file_is_no_directory(tmp_path: Path) -> None:
    with pytest.raises(DirectoryUnavailableError, match=r"does not know MicroSIP's microsip\.ini"):
        ContactsSource(None).contacts()
    # MicroSIP rewrites Contacts.xml in place; a read that meets it half written must not serve
    # fewer directory contacts (MicroSIP would delete the others).
    data = serialize_contacts([OWN, FROM_DIRECTORY])
    (tmp_path / "Contacts.xml").write_bytes(data[: len(data) - 20])
    with pytest.raises(DirectoryUnavailableError, match="cannot read MicroSIP's contacts now"):
        ContactsSource(tmp_path / "microsip.ini").contacts()
    (tmp_path / "Contacts.xml").write_bytes(b"")
    with pytest.raises(DirectoryUnavailableError):
        ContactsSource(tmp_path / "microsip.ini").contacts()


# --- the key and the URL --------------------------------------------------------------------------


def test_the_key_is_private_created_once_and_rotated(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert keys.read_key(home) is None
    assert not keys.key_matches("anything", home)
    key = keys.ensure_key(home)
    assert keys.valid_key(key) and keys.ensure_key(home) == key
    if os.name == "posix":
        assert stat.S_IMODE((home / keys.KEY_NAME).stat().st_mode) == 0o600
    assert keys.key_matches(key, home)
    assert not keys.key_matches(key[:-1], home)
    assert not keys.key_matches("", home) and not keys.key_matches(None, home)
    rotated = keys.new_key(home)
    assert rotated != key and keys.key_matches(rotated, home) and not keys.key_matches(key, home)
    (home / keys.KEY_NAME).write_text("short\n")
    assert keys.read_key(home) is None  # damaged: opens nothing until a new one is made
    assert not keys.key_matches("short", home)


def test_directory_urls_in_both_forms_microsip_sends() -> None:
    key = "k" * 43
    query = directory_url("127.0.0.1", 5797, key, refresh=30)
    assert query == f"http://127.0.0.1:5797/directory.json?key={key}&refresh=30"
    basic = directory_url("::1", 5797, key, fmt="xml", basic_auth=True)
    assert basic == f"http://microsip:{key}@[::1]:5797/directory.xml?refresh=15"
    assert url_key(query) == url_key(basic) == key
    with pytest.raises(BridgeError, match="refresh"):
        directory_url("127.0.0.1", 5797, key, refresh=1)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://127.0.0.1/directory.json", "only http"),
        ("http://127.0.0.1/x?u=%s", "fills %s"),
        ("http://127.0.0.1/x?u={username}", "fills %s"),
        ("http://127.0.0.1/x?k=a*b", r"turns every \*"),  # facts §4.6: the S22 quirk
        ("http://127.0.0.1/" + "x" * 250, "reads only 255"),  # a 256-character buffer
        ("http://127.0.0.1/x\r\nother=1", "control characters"),
    ],
)
def test_urls_microsip_would_not_fetch_as_written_are_refused(url: str, reason: str) -> None:
    with pytest.raises(UnsafeInputError, match=reason):
        check_directory_url(url)


def test_basic_password() -> None:
    def header(text: str) -> str:
        return "Basic " + base64.b64encode(text.encode()).decode()

    assert basic_password(header("anyone:s3cret:with:colons")) == "s3cret:with:colons"
    assert basic_password(header(":k")) == "k"
    assert basic_password(header("no-colon")) is None
    assert basic_password("Basic !!!") is None
    assert basic_password("Bearer abc") is None
    assert basic_password(None) is None


# --- the routes, on a real daemon -----------------------------------------------------------------


@pytest.fixture
def contacts_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "MicroSIP"
    folder.mkdir()
    IniDocument.from_text("[Settings]\r\n").save(folder / "microsip.ini", backups=0)
    write_contacts(folder / "Contacts.xml", CONTACTS, backups=0)
    return folder


@pytest.fixture
def served(bridge_home: Path, contacts_folder: Path) -> Iterator[tuple[httpx2.Client, str]]:
    key = keys.ensure_key(bridge_home)
    with live_daemon(bridge_home, ini=contacts_folder / "microsip.ini") as daemon:
        host, port = daemon.wait_listening()
        with httpx2.Client(base_url=f"http://{host}:{port}", timeout=30) as http:
            yield http, key


def test_the_key_in_the_query_opens_the_directory(served: tuple[httpx2.Client, str]) -> None:
    http, key = served
    # MicroSIP 3.22 appends sequence=N to every request (facts §4.6)
    response = http.get("/directory.json", params={"key": key, "refresh": 30, "sequence": 0})
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"  # WinINet must not serve a copy
    parsed = read_directory_response(response.content, response.headers["content-type"])
    assert parsed.refresh == 30 and [c.number for c in parsed.contacts] == ["300"]
    assert {p.status for p in parsed.presence} == {STATUS_IDLE}
    xml = http.get("/directory.xml", params={"key": key})
    assert xml.status_code == 200
    assert read_directory_response(xml.content).shape is DirectoryShape.XML_CONTACTS


def test_the_key_as_basic_auth_password_opens_it_too(served: tuple[httpx2.Client, str]) -> None:
    http, key = served
    response = http.get("/directory.json", auth=("any-user", key))
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("how", ["none", "wrong-query", "wrong-basic", "token-query", "bearer"])
def test_no_key_or_a_wrong_one_is_refused_with_a_basic_challenge(
    served: tuple[httpx2.Client, str], bridge_home: Path, how: str
) -> None:
    http, key = served
    token = (bridge_home / "token").read_text().strip()
    params: dict[str, str] = {}
    headers: dict[str, str] = {}
    if how == "wrong-query":
        params["key"] = key[:-1] + ("A" if key[-1] != "A" else "B")
    elif how == "wrong-basic":
        headers["Authorization"] = "Basic " + base64.b64encode(b"u:nope").decode()
    elif how == "token-query":
        params["key"] = token  # the API token never opens the directory
    elif how == "bearer":
        headers["Authorization"] = f"Bearer {token}"
    for path in ("/directory.json", "/directory.xml"):
        response = http.get(path, params=params, headers=headers)
        assert response.status_code == 401
        # WinINet sends the URL's user:pass@ only when challenged
        assert response.headers["www-authenticate"].startswith("Basic ")
        assert key not in response.text and token not in response.text


def test_the_key_opens_nothing_else(
    served: tuple[httpx2.Client, str], bridge_home: Path, contacts_folder: Path
) -> None:
    http, key = served
    app = create_app(settings_for(bridge_home, ini=contacts_folder / "microsip.ini"))
    routes = [
        r
        for r in app.routes
        if isinstance(r, APIRoute) and r.path.startswith("/api/v1") and r.path != "/api/v1/health"
    ]
    assert routes, "no API routes found"
    checked = 0
    for route in routes:
        path = route.path.replace("{", "").replace("}", "")  # /calls/{call_id} -> /calls/call_id
        for method in sorted(route.methods):
            for headers in (
                {"Authorization": f"Bearer {key}"},
                {"Cookie": f"session={key}; msb_session={key}; key={key}"},
                {"Authorization": "Basic " + base64.b64encode(f"u:{key}".encode()).decode()},
            ):
                response = http.request(method, path, params={"key": key}, headers=headers, json={})
                assert response.status_code == 401, (method, path, headers, response.text)
                checked += 1
    docs = http.get("/docs", headers={"Authorization": f"Bearer {key}"})
    assert docs.status_code == 401
    assert checked >= 3 * len(routes)


def test_the_host_check_applies_to_the_directory(served: tuple[httpx2.Client, str]) -> None:
    http, key = served
    response = http.get("/directory.json", params={"key": key}, headers={"Host": "evil.example"})
    assert response.status_code == 421


def test_a_refresh_out_of_range_is_refused(served: tuple[httpx2.Client, str]) -> None:
    http, key = served
    assert http.get("/directory.json", params={"key": key, "refresh": 1}).status_code == 422
    assert http.get("/directory.json", params={"key": key, "refresh": "x"}).status_code == 422


def test_a_daemon_without_an_ini_answers_503_so_microsip_keeps_its_contacts(
    bridge_home: Path,
) -> None:
    key = keys.ensure_key(bridge_home)
    with live_daemon(bridge_home) as daemon:
        host, port = daemon.wait_listening()
        response = httpx2.get(f"http://{host}:{port}/directory.json", params={"key": key})
    assert response.status_code == 503
    assert "microsip.ini" in response.json()["detail"]


def test_a_rotated_key_takes_effect_at_once(served: tuple[httpx2.Client, str]) -> None:
    http, key = served
    home = Path(os.environ["MICROSIP_BRIDGE_HOME"])
    rotated = keys.new_key(home)
    assert http.get("/directory.json", params={"key": key}).status_code == 401
    assert http.get("/directory.json", params={"key": rotated}).status_code == 200


# --- presence as a simulated call rings, connects and ends ----------------------------------------


@pytest.mark.slow
def test_presence_follows_a_simulated_call(bridge_home: Path, tmp_path: Path) -> None:
    sim_folder = create_folder(tmp_path / "Sim", contacts=[OWN, FROM_DIRECTORY])
    doc = IniDocument.load(sim_folder.ini)
    install_hooks(doc, Path(sys.executable), SavedHooks(), flag="-I").commit()
    doc.save(backups=0)
    key = keys.ensure_key(bridge_home)
    with live_daemon(bridge_home, ini=sim_folder.ini) as daemon:
        host, port = daemon.wait_listening()
        url = f"http://{host}:{port}/directory.json"

        def lamp() -> str:
            response = httpx2.get(url, params={"key": key}, timeout=30)
            assert response.status_code == 200, response.text
            parsed = read_directory_response(response.content, "application/json")
            return {p.number: p.status for p in parsed.presence}["5551001"]

        assert lamp() == STATUS_IDLE
        with Simulator(sim_folder, hook_timeout=10.0) as sim:
            call = sim.incoming("5551001", "Jane Roe")  # incoming + ring
            wait_until(lambda: lamp() == "ring", what="the ringing lamp")
            sim.answer(call)  # answer + start
            wait_until(lambda: lamp() == "busy", what="the busy lamp")
            sim.hang_up(call)  # end
            wait_until(lambda: lamp() == STATUS_IDLE, what="the lamp to go back")
