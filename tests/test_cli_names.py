"""`microsip-bridge names`: import CSV and vCard into the bridge's contacts (deduplicated by the
normalised number), list, lookup in the daemon's order, clear; and a running daemon naming
calls from them, Contacts.xml and a CRM, played through the simulator."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import httpx2
import pytest

from microsip_bridge.microsip.contact import Contact
from microsip_bridge.microsip.hook_keys import SavedHooks, install_hooks
from microsip_bridge.microsip.inifile import IniDocument
from microsip_bridge.sim.folder import create_folder
from microsip_bridge.sim.simulator import Simulator
from tests.cli_support import run
from tests.daemon_support import live_daemon, stored_calls, wait_until
from tests.test_crm import Crm, crm  # noqa: F401 - fixture

CSV = (
    "Name,Number,Mobile\r\n"
    "Ada Lovelace,020 7946 0000,07700 900123\r\n"
    "Ada Again,+44 20 7946 0000,\r\n"  # the same number: skipped
    "Nobody,,\r\n"
    "Bob Öztürk,+44 20 7946 0018,\r\n"
)
VCARD = (
    "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Carol Nguyen\r\nTEL;TYPE=CELL:+44 7700 900124\r\n"
    "TEL;TYPE=WORK:020 7946 0018\r\nEND:VCARD\r\n"
)


@pytest.fixture
def gb(bridge_home: Path) -> Path:
    (bridge_home / "config.toml").write_text('default_region = "GB"\n', encoding="utf-8")
    return bridge_home


def names_json(capsys: pytest.CaptureFixture[str]) -> list[dict[str, object]]:
    code, out, err = run(capsys, "names", "list", "--format", "json")
    assert code == 0, err
    rows: list[dict[str, object]] = json.loads(out)
    return rows


def test_import_list_lookup_clear(
    gb: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv_file = tmp_path / "people.csv"
    csv_file.write_text(CSV, encoding="utf-8")
    code, out, err = run(capsys, "names", "import", str(csv_file))
    assert code == 0, err
    assert out == (
        f"3 numbers added from {csv_file}; 1 already known, skipped; 1 without a number, skipped\n"
    )
    rows = names_json(capsys)
    assert [(r["name"], r["number"], r["number_key"]) for r in rows] == [
        ("Ada Lovelace", "020 7946 0000", "+442079460000"),
        ("Ada Lovelace", "07700 900123", "+447700900123"),
        ("Bob Öztürk", "+44 20 7946 0018", "+442079460018"),
    ]
    vcf = tmp_path / "phone.vcf"
    vcf.write_text(VCARD, encoding="utf-8")
    code, out, err = run(capsys, "names", "import", str(vcf), "--report-format", "json")
    assert code == 0, err
    report = json.loads(out)
    assert report["added"] == 1 and report["duplicates"] == ["020 7946 0018"]
    # Re-importing a file changes nothing; --replace swaps its own rows only.
    code, out, _ = run(capsys, "names", "import", str(vcf), "--report-format", "json")
    assert json.loads(out)["added"] == 0
    code, out, _ = run(capsys, "names", "import", str(vcf), "--replace", "--report-format", "json")
    assert (json.loads(out)["replaced"], json.loads(out)["added"]) == (1, 1)
    assert len(names_json(capsys)) == 4

    code, out, err = run(capsys, "names", "lookup", "+44 20 7946 0000", "--format", "json")
    assert code == 0, err
    assert json.loads(out) == {
        "name": "Ada Lovelace",
        "source": "bridge",
        "number": "020 7946 0000",
    }
    code, out, _ = run(capsys, "names", "lookup", "07700900124")
    assert out == "Carol Nguyen\tbridge\t+44 7700 900124\n"
    code, out, err = run(capsys, "names", "lookup", "+44 20 7946 9999")
    assert (code, out, err) == (1, "", "no name for +44 20 7946 9999\n")

    code, out, _ = run(capsys, "names", "clear")
    assert (code, out) == (0, "4 contacts deleted\n")
    assert names_json(capsys) == []


def test_lookup_asks_contacts_xml_first_then_the_crm(
    gb: Path,
    tmp_path: Path,
    crm: Crm,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    folder = create_folder(tmp_path / "MicroSIP", contacts=[Contact(name="Desk", number="101")])
    (gb / "config.toml").write_text(
        f'default_region = "GB"\ncrm_url = "{crm.url}/search?phone={{e164}}"\n'
        'crm_name_pointer = "/results/0/name"\n',
        encoding="utf-8",
    )
    crm.name("+442079460055", "From the CRM")
    args = ("--microsip", str(folder.path))
    code, out, _ = run(capsys, "names", "lookup", "sip:101@pbx", *args)
    assert out == "Desk\tmicrosip\t101\n"
    code, out, _ = run(capsys, "names", "lookup", "020 7946 0055", *args)
    assert out == "From the CRM\tcrm\t+442079460055\n"
    code, out, _err = run(capsys, "names", "lookup", "020 7946 0055", "--no-crm", *args)
    assert code == 1
    assert len(crm.requests) == 1


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("missing.csv", None, "no such file"),
        ("people.json", "[]", "names are imported from CSV or vCard files"),
        ("broken.vcf", "BEGIN:VCARD\r\nFN:x\r\n", "vcf"),
    ],
)
def test_bad_files_are_one_line_errors(
    gb: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    name: str,
    text: str | None,
    message: str,
) -> None:
    path = tmp_path / name
    if text is not None:
        path.write_text(text, encoding="utf-8")
    code, _out, err = run(capsys, "names", "import", str(path))
    if name == "broken.vcf" and code == 0:
        return  # the vCard reader is lenient: an unterminated card is reported, not fatal
    assert code != 0 and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert message in err or str(path) in err


def test_list_and_clear_without_a_store(gb: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert names_json(capsys) == []
    assert run(capsys, "names", "clear") == (0, "0 contacts deleted\n", "")


# --- the daemon, end to end --------------------------------------------------------------------


@pytest.mark.slow
def test_the_daemon_names_simulated_calls_from_every_source(
    gb: Path,
    tmp_path: Path,
    crm: Crm,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    folder = create_folder(
        tmp_path / "Sim", contacts=[Contact(name="Ada (Contacts.xml)", number="020 7946 0000")]
    )
    doc = IniDocument.load(folder.ini)
    install_hooks(doc, Path(sys.executable), SavedHooks(), flag="-I").commit()
    doc.save(backups=0)
    book = tmp_path / "book.csv"
    book.write_text("Name,Number\r\nBob (bridge),+44 20 7946 0018\r\n", encoding="utf-8")
    assert run(capsys, "names", "import", str(book))[0] == 0
    crm.name("+442079460099", "Carol (CRM)", delay=0.2)
    settings = {
        "ini": folder.ini,
        "default_region": "GB",
        "crm_url": crm.url + "/search?phone={e164}",
        "crm_name_pointer": "/results/0/name",
    }
    with live_daemon(gb, **settings) as daemon:
        host, port = daemon.wait_listening()
        with Simulator(folder, hook_timeout=10.0) as sim:
            for number in ("+442079460000", "02079460018", "+442079460099", "+442079461111"):
                call = sim.incoming(number)
                sim.answer(call)
                sim.hang_up(call)
        expected = {
            "+442079460000": ("Ada (Contacts.xml)", "microsip"),
            "02079460018": ("Bob (bridge)", "bridge"),
            "+442079460099": ("Carol (CRM)", "crm"),
            # MicroSIP's [Calls] names an unknown caller by the number.
            "+442079461111": ("+442079461111", "microsip"),
        }

        def named() -> dict[str, tuple[str, str]]:
            calls = stored_calls(gb)
            return {c.number: (c.name, c.name_source) for c in calls}

        wait_until(lambda: named() == expected, what=f"the names ({named()})")
        token = (gb / "token").read_text().strip()
        api = httpx2.Client(
            base_url=f"http://{host}:{port}", headers={"Authorization": f"Bearer {token}"}
        )
        with api:
            listed = api.get("/api/v1/calls", params={"number": "020 7946 0018"}).json()
            assert [(c["name"], c["name_source"], c["number_key"]) for c in listed["calls"]] == [
                ("Bob (bridge)", "bridge", "+442079460018")
            ]
            for number, source in (("02079460000", "microsip"), ("+442079460099", "crm")):
                answer = api.get("/api/v1/lookup", params={"number": number})
                assert answer.status_code == 200 and answer.json()["source"] == source


def test_the_event_websocket_carries_the_name_and_its_source(
    gb: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.test_ws import T0, open_ws, poster, receive_n, record

    folder = create_folder(tmp_path / "MicroSIP", contacts=[Contact(name="Ada", number="101")])
    book = tmp_path / "book.csv"
    book.write_text("Name,Number\r\nBob,020 7946 0018\r\n", encoding="utf-8")
    assert run(capsys, "names", "import", str(book))[0] == 0
    with (
        live_daemon(gb, ini=folder.ini, default_region="GB"),
        poster(gb) as post,
        open_ws(gb) as ws,
    ):
        post.send(record("sip:101@pbx", "incoming", T0))
        post.send(record("+442079460018", "incoming", T0 + 1))
        post.send(record("+442079460019", "incoming", T0 + 2))
        messages = receive_n(ws, 3)
    calls = [m["call"] for m in messages]
    assert [(c["name"], c["name_source"], c["number_key"]) for c in calls] == [
        ("Ada", "microsip", "101"),
        ("Bob", "bridge", "+442079460018"),
        ("", "", "+442079460019"),
    ]
