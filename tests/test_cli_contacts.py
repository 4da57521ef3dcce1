"""`contacts list | export | import` end to end, as a careful user runs them (and `doctor`'s
view of a named Contacts.xml): the files named are enough, refusals come before any plan, the
counts match what was printed, exit codes as the README says."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from microsip_bridge.microsip.contact import Contact
from microsip_bridge.microsip.contacts_xml import read_contacts, write_contacts
from tests.cli_support import run

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "samples" / "MicroSIP"
TWO_NEW = b"Name,Number\nNew One,5550001\nNew Two,5550002\n"


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "new.csv"
    path.write_bytes(TWO_NEW)
    return path


@pytest.mark.parametrize(
    ("fmt", "probe"),
    [
        ("csv", "\ufeffName,Number"),
        ("vcf", "BEGIN:VCARD"),
        ("json", '"name": "Jane Doe"'),
        ("directory-json", '"items":'),
        ("directory-xml", "<contacts"),
        ("xml", '<?xml version="1.0"?>\r\n<contacts>'),
    ],
)
def test_contacts_export_formats(
    capsys: pytest.CaptureFixture[str], folder: Path, tmp_path: Path, fmt: str, probe: str
) -> None:
    target = tmp_path / f"out.{fmt}"
    code, _, _ = run(
        capsys, "contacts", "export", "--microsip", str(folder), "--format", fmt, "-o", str(target)
    )
    assert code == 0
    text = target.read_bytes().decode("utf-8")
    assert text.startswith(probe) or probe in text
    assert "Smith &" in text or "Smith &amp;" in text or "Smith \\u0026" in text


@pytest.mark.parametrize(
    "sample", ["data/vcard/gmail-3.0.vcf", "corpus/vcard/real-ezvcard-gmail-3.0.vcf"], indirect=True
)
def test_contacts_import_dry_run_then_merge(
    capsys: pytest.CaptureFixture[str], folder: Path, sample: Path
) -> None:
    contacts = folder / "Contacts.xml"
    original = contacts.read_bytes()
    source = sample
    code, out, _ = run(
        capsys, "contacts", "import", str(source), "--microsip", str(folder), "--dry-run"
    )
    assert code == 0
    assert "+ add" in out
    assert contacts.read_bytes() == original
    code, out, _ = run(capsys, "contacts", "import", str(source), "--microsip", str(folder))
    assert code == 0
    after = read_contacts(contacts).contacts
    assert len(after) > 9
    # Importing the same file again changes nothing (merge on number and name, facts §4.5).
    code, out, err = run(capsys, "contacts", "import", str(source), "--microsip", str(folder))
    assert "nothing to change" in err
    assert len(read_contacts(contacts).contacts) == len(after)


@pytest.mark.parametrize(
    "sample",
    ["data/csv/outlook-emails-only.csv", "corpus/csv/real-roundcube-outlook-emails-only.csv"],
    indirect=True,
)
def test_contacts_import_refuses_a_file_without_numbers(
    capsys: pytest.CaptureFixture[str], folder: Path, sample: Path
) -> None:
    contacts = folder / "Contacts.xml"
    original = contacts.read_bytes()
    source = sample
    code, _, err = run(capsys, "contacts", "import", str(source), "--microsip", str(folder))
    assert code == 1
    assert str(source) in err
    assert err.count("\n") == 1
    assert contacts.read_bytes() == original


def test_contacts_import_needs_a_file_name_or_format_it_knows(
    capsys: pytest.CaptureFixture[str], folder: Path, tmp_path: Path
) -> None:
    source = tmp_path / "contacts.ods"
    source.write_bytes(b"Name,Number\nJane,1\n")
    code, _, err = run(capsys, "contacts", "import", str(source), "--microsip", str(folder))
    assert code == 1
    assert err == (
        f"microsip-bridge: error: {source}: cannot tell the format from the file name; "
        "pass --format csv|vcf|json|xml\n"
    )
    args = ("contacts", "import", str(source), "--microsip", str(folder), "--format", "csv")
    code, out, _ = run(capsys, *args, "--dry-run")
    assert code == 0
    assert "1 added" in out


@pytest.mark.parametrize(
    "sample", ["data/csv/google.csv", "corpus/csv/real-roundcube-google.csv"], indirect=True
)
def test_contacts_import_replace_report_json(
    capsys: pytest.CaptureFixture[str], folder: Path, sample: Path
) -> None:
    source = sample
    code, out, _ = run(
        capsys,
        "contacts",
        "import",
        str(source),
        "--microsip",
        str(folder),
        "--replace",
        "--report-format",
        "json",
    )
    assert code == 0
    report = json.loads(out)
    assert report["summary"]["removed"] == 9
    assert report["report"], "numbers that did not fit must be reported"
    assert len(read_contacts(folder / "Contacts.xml").contacts) == report["summary"]["added"]


def test_contacts_list_on_hostile_xml_is_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    bomb = tmp_path / "Contacts.xml"
    bomb.write_text(
        '<?xml version="1.0"?>\n<!DOCTYPE x [<!ENTITY a "aaaaaaaaaa">'
        '<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>\n<contacts><contact name="&b;"/></contacts>'
    )
    code, _, err = run(
        capsys, "contacts", "list", "--contacts", str(bomb), "--ini", str(tmp_path / "microsip.ini")
    )
    assert code != 0
    assert err.count("\n") == 1
    assert "Contacts.xml" in err


# --- a command needs only the files it reads or writes ----------


def test_contacts_file_alone_is_enough(
    capsys: pytest.CaptureFixture[str], folder: Path, source: Path, tmp_path: Path
) -> None:
    # No ini, no MICROSIP_INI, and no registry to search on Linux: --contacts names the file.
    contacts = str(folder / "Contacts.xml")
    code, out, err = run(capsys, "contacts", "list", "--contacts", contacts)
    assert (code, err) == (0, "")
    assert "9 contacts" in out
    target = tmp_path / "out.json"
    code, _, _ = run(
        capsys, "contacts", "export", "--contacts", contacts, "--format", "json", "-o", str(target)
    )
    assert code == 0
    assert len(json.loads(target.read_text(encoding="utf-8"))) == 9
    code, out, _ = run(capsys, "contacts", "import", str(source), "--contacts", contacts)
    assert code == 0
    assert "2 added" in out
    assert len(read_contacts(folder / "Contacts.xml").contacts) == 11


def test_contacts_file_alone_still_refuses_while_its_microsip_runs(
    capsys: pytest.CaptureFixture[str], folder: Path, source: Path
) -> None:
    (folder / "microsip-sim.pid").write_text(str(os.getpid()))
    original = (folder / "Contacts.xml").read_bytes()
    args = ("contacts", "import", str(source), "--contacts", str(folder / "Contacts.xml"))
    code, out, err = run(capsys, *args)
    assert code == 3
    assert "MicroSIP is running" in err
    assert out == ""
    assert (folder / "Contacts.xml").read_bytes() == original
    code, out, _ = run(capsys, *args, "--force")
    assert code == 0


# --- check, then act, then report ----------


@pytest.mark.parametrize("report", ["text", "json"])
def test_a_refused_import_prints_no_plan(
    capsys: pytest.CaptureFixture[str], folder: Path, source: Path, report: str
) -> None:
    (folder / "microsip-sim.pid").write_text(str(os.getpid()))
    original = (folder / "Contacts.xml").read_bytes()
    args = ("contacts", "import", str(source), "--microsip", str(folder))
    code, out, err = run(capsys, *args, "--report-format", report)
    assert code == 3
    assert out == ""  # not "2 added", then a refusal
    assert err.count("\n") == 1
    assert (folder / "Contacts.xml").read_bytes() == original


def big_csv(path: Path, rows: int) -> Path:
    lines = ["Name,Number"] + [f"Caller {i},555{i:07d}" for i in range(rows)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_import_never_writes_what_every_command_would_refuse_to_read(
    capsys: pytest.CaptureFixture[str], folder: Path, tmp_path: Path, bridge_home: Path
) -> None:
    # 1M rows made a 195 MB Contacts.xml over the 64 MiB limit; here 1 MiB and 8,000 rows.
    (bridge_home / "config.toml").write_text("max_file_mb = 1\n")
    csv_file = big_csv(tmp_path / "big.csv", 8_000)
    assert csv_file.stat().st_size < 1024 * 1024  # the import itself is readable
    original = (folder / "Contacts.xml").read_bytes()
    code, out, err = run(capsys, "contacts", "import", str(csv_file), "--microsip", str(folder))
    assert code == 1
    assert out == ""
    assert err.count("\n") == 1
    assert "max_file_mb" in err and "nothing was written" in err
    assert (folder / "Contacts.xml").read_bytes() == original
    assert not (folder / "bridge-backups").exists()
    code, out, _ = run(capsys, "contacts", "list", "--microsip", str(folder))
    assert code == 0


def test_an_export_over_the_read_limit_is_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, bridge_home: Path
) -> None:
    (bridge_home / "config.toml").write_text("max_file_mb = 1\n")
    contacts = tmp_path / "Contacts.xml"
    write_contacts(contacts, [Contact(name=f"C{i}", number=str(i)) for i in range(3_500)])
    assert contacts.stat().st_size < 1024 * 1024
    target = tmp_path / "out.json"
    args = ("contacts", "export", "--contacts", str(contacts), "--format", "json")
    code, _, err = run(capsys, *args, "-o", str(target))
    assert code == 1
    assert "nothing was written" in err
    assert not target.exists()
    code, out, _ = run(capsys, *args)  # standard output is the user's to redirect
    assert code == 0
    assert len(json.loads(out)) == 3_500


# --- exit codes as the README says ----------


@pytest.mark.parametrize(
    "args",
    [
        ("contacts", "list", "--contacts", "{tmp}/none.xml"),
        ("contacts", "list", "--microsip", "{folder}", "--contacts", "{tmp}/none.xml"),
        ("contacts", "export", "--format", "json", "--contacts", "{tmp}/none.xml"),
        ("contacts", "import", "{tmp}/none.csv", "--microsip", "{folder}"),
        # The format cannot be told from the name of a file that is not there: 4, not 1.
        ("contacts", "import", "{tmp}/none.ods", "--microsip", "{folder}"),
        ("contacts", "export", "--format", "json", "--microsip", "{folder}", "-o", "{tmp}/no/out"),
    ],
)
def test_a_missing_file_exits_4(
    capsys: pytest.CaptureFixture[str], folder: Path, tmp_path: Path, args: tuple[str, ...]
) -> None:
    filled = [a.format(tmp=tmp_path, folder=folder) for a in args]
    code, out, err = run(capsys, *filled)
    assert code == 4
    assert out == ""
    assert err.count("\n") == 1


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--delimiter", ";;"),
        ("--delimiter", '"'),
        ("--delimiter", ""),
        ("--encoding", "no-such-codec"),
        ("--encoding", "rot13"),  # a codec, but not a text encoding
    ],
)
def test_bad_option_values_are_usage_errors(
    capsys: pytest.CaptureFixture[str], folder: Path, source: Path, option: str, value: str
) -> None:
    # Checked when the options are parsed: even for a file whose format ignores them.
    for fmt in ("csv", "xml"):
        code, out, err = run(
            capsys,
            "contacts",
            "import",
            str(source),
            "--microsip",
            str(folder),
            "--format",
            fmt,
            "--dry-run",
            option,
            value,
        )
        assert code == 2
        assert f"Invalid value for '{option}'" in err
        assert out == ""


def test_a_tab_delimiter_can_be_typed(
    capsys: pytest.CaptureFixture[str], folder: Path, tmp_path: Path
) -> None:
    tsv = tmp_path / "tabs.txt"
    tsv.write_bytes(b"Name\tNumber\tComment\nAnn\t1\ta, b; c\n")
    code, out, _ = run(
        capsys,
        "contacts",
        "import",
        str(tsv),
        "--microsip",
        str(folder),
        "--delimiter",
        "\\t",
        "--dry-run",
    )
    assert code == 0
    assert "1 added" in out


def test_doctor_says_a_named_contacts_file_is_missing_and_exits_4(
    capsys: pytest.CaptureFixture[str], folder: Path, tmp_path: Path
) -> None:
    missing = tmp_path / "none.xml"
    code, out, _ = run(capsys, "doctor", "--microsip", str(folder), "--contacts", str(missing))
    assert code == 4
    assert f"the Contacts.xml given by --contacts does not exist: {missing}" in out
    code, out, _ = run(capsys, "doctor", "--ini", str(tmp_path / "none.ini"))
    assert code == 4
    assert "the ini given by --ini does not exist" in out
    # A Contacts.xml MicroSIP has simply not created yet is no error.
    (folder / "Contacts.xml").unlink()
    code, out, _ = run(capsys, "doctor", "--microsip", str(folder))
    assert code == 0
    assert "MicroSIP creates it when a contact is added" in out


# --- the import report ----------


def test_the_report_counts_what_it_printed_once(
    capsys: pytest.CaptureFixture[str], folder: Path, tmp_path: Path
) -> None:
    csv_file = tmp_path / "mixed.csv"
    csv_file.write_bytes(b"Name,Number,E-mail Address\nAnn,5550001,\nNobody,,n@x\n")
    args = ("contacts", "import", str(csv_file), "--microsip", str(folder))
    code, out, _ = run(capsys, *args, "--dry-run")
    assert code == 0
    assert out.splitlines() == [
        '+ add  "Ann" 5550001',
        '! skip row 3 "Nobody": has no phone number',
        "1 added, 0 updated, 0 unchanged, 0 removed, 0 duplicates in file, 1 skipped",
    ]
    code, out, err = run(capsys, *args)
    assert code == 0
    assert out == "1 added, 0 updated, 0 unchanged, 0 removed, 0 duplicates in file, 1 skipped\n"
    assert "mixed.csv: row 3: 'Nobody' has no phone number; skipped" in err
    assert "wrote" in err


def test_the_json_report_lists_structured_changes(
    capsys: pytest.CaptureFixture[str], folder: Path, tmp_path: Path
) -> None:
    csv_file = tmp_path / "mixed.csv"
    csv_file.write_bytes(
        b"Name,Number,E-mail Address\nJane Doe,+14155550142,new@example.com\n,,n@x\n"
    )
    code, out, _ = run(
        capsys,
        "contacts",
        "import",
        str(csv_file),
        "--microsip",
        str(folder),
        "--report-format",
        "json",
        "--dry-run",
    )
    assert code == 0
    report = json.loads(out)
    assert report["summary"] == {
        "added": 0,
        "updated": 1,
        "unchanged": 0,
        "removed": 0,
        "duplicates_in_file": 0,
        "skipped": 1,
    }
    assert report["changes"] == [
        {
            "action": "updated",
            "name": "Jane Doe",
            "number": "+14155550142",
            "fields": ["email"],
            "reason": "",
            "where": "",
        },
        {
            "action": "skipped",
            "name": "n@x",
            "number": "",
            "fields": [],
            "reason": "has no phone number",
            "where": "row 3",
        },
    ]
    assert report["report"] == []


# --- list and export ----------


def test_list_piped_shows_every_value_whole(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    contacts = tmp_path / "Contacts.xml"
    long_comment = "x" * 5_000
    write_contacts(contacts, [Contact(name="N" * 300, number="1", email=long_comment)])
    code, out, _ = run(capsys, "contacts", "list", "--contacts", str(contacts))
    assert code == 0
    assert "N" * 300 in out and long_comment in out  # a script reads the whole value


def test_microsips_csv_keeps_microsips_bytes(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # MicroSIP imports its CSV back: a quote added for spreadsheets would land in the name,
    # and "+44" must stay a number MicroSIP dials.
    contacts = tmp_path / "Contacts.xml"
    evil = '=HYPERLINK("http://evil.example/","x")'
    write_contacts(contacts, [Contact(name=evil, number="+442079460958")])
    code, out, _ = run(capsys, "contacts", "export", "--contacts", str(contacts), "--format", "csv")
    assert code == 0
    assert out.splitlines()[1].startswith('"=HYPERLINK(""http://evil.example/"",""x"")",+44')
