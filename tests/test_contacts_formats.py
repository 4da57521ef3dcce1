"""The contacts format registry: what the README promises is registered, and formats round-trip."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from microsip_bridge import contacts
from microsip_bridge.cli import cli
from microsip_bridge.contacts.formats import (
    EXPORT_FORMATS,
    FORMATS,
    IMPORT_FORMATS,
    ReadOptions,
    WriteOptions,
    format_for_path,
    get_format,
)
from microsip_bridge.errors import BridgeError
from microsip_bridge.microsip.contact import Contact

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
# How the README's import paragraph names each importable format.
README_IMPORT_NAMES = {"CSV": "csv", "vCard": "vcf", "JSON": "json", "XML": "xml"}

# Contacts as MicroSIP holds them (prepared), so that every reader gives them back unchanged.
SAMPLE = [
    Contact(
        name="Zoë Smith & Co",
        number="5551234",
        firstname="Zoë",
        lastname="Smith",
        phone="5550000",
        mobile="+44 7700 900123",
        email="zoe@example.com",
        address="1 High St",
        city="Bath",
        state="Somerset",
        zip="BA1 1AA",
        comment="two\nlines",
        id="42",
        info="sales",
        presence=True,
        starred=True,
        directory=False,
    ),
    Contact(name="Reception", number="1001", phone="1001"),
]


def _contacts_section() -> str:
    start = README.index("### `microsip-bridge contacts")
    return README[start : README.index("\n### ", start + 1)]


def test_every_export_format_in_the_readme_is_registered() -> None:
    paragraph = _contacts_section().split("Export formats:", 1)[1].split("\n\n", 1)[0]
    named = set(re.findall(r"`([a-z-]+)`", paragraph)) - {"refresh"}  # an option, not a format
    assert named == set(EXPORT_FORMATS)


def test_every_import_format_in_the_readme_is_registered() -> None:
    paragraph = _contacts_section().split("Import reads", 1)[1].split("\n\n", 1)[0]
    named = [
        name for word, name in README_IMPORT_NAMES.items() if re.search(rf"\b{word}\b", paragraph)
    ]
    assert sorted(named) == sorted(IMPORT_FORMATS)


def test_the_cli_offers_and_documents_exactly_the_registered_formats() -> None:
    runner = CliRunner()
    export_help = runner.invoke(cli, ["contacts", "export", "--help"]).output
    import_help = runner.invoke(cli, ["contacts", "import", "--help"]).output
    assert f"[{'|'.join(EXPORT_FORMATS)}]" in export_help
    assert f"[{'|'.join(('auto', *IMPORT_FORMATS))}]" in " ".join(import_help.split())
    for name in EXPORT_FORMATS:  # each one explained in the Formats list
        assert re.search(rf"^\s+{re.escape(name)}\s", export_help, re.MULTILINE), name


def _as_bytes(data: str | bytes) -> bytes:
    return data.encode("utf-8") if isinstance(data, str) else data


@pytest.mark.parametrize("name", [n for n, f in FORMATS.items() if f.reader and f.writer])
def test_formats_with_a_reader_and_a_writer_round_trip(name: str) -> None:
    fmt = get_format(name)
    data = fmt.write(SAMPLE)
    result = fmt.read(_as_bytes(data))
    assert result.contacts == SAMPLE
    assert not result.report


def test_writer_options_reach_the_writer() -> None:
    vcard = get_format("vcf").write(SAMPLE, WriteOptions(vcard_version="4.0"))
    assert isinstance(vcard, str)
    assert "VERSION:4.0" in vcard
    directory = get_format("directory-json").write(SAMPLE, WriteOptions(refresh=3600))
    assert isinstance(directory, str)
    assert '"refresh":3600' in directory.replace(" ", "")


def test_the_xml_reader_tells_contacts_xml_from_a_directory_response() -> None:
    xml = get_format("xml")
    own = xml.read(_as_bytes(xml.write(SAMPLE)))
    assert [c.directory for c in own.contacts] == [False, False]
    directory = get_format("directory-xml").write(SAMPLE, WriteOptions(refresh=60))
    served = xml.read(_as_bytes(directory))
    assert [c.directory for c in served.contacts] == [True, True]


def test_file_names_pick_the_format_when_importing() -> None:
    expected = {
        "google.csv": "csv",
        "excel.TSV": "csv",
        "unicode.txt": "csv",
        "phone.vcf": "vcf",
        "card.vCard": "vcf",
        "crm.json": "json",
        "Contacts.XML": "xml",
    }
    for file_name, name in expected.items():
        found = format_for_path(Path(file_name))
        assert found is not None and found.name == name, file_name
    assert format_for_path(Path("contacts.ods")) is None
    assert format_for_path(Path("contacts")) is None


def test_unknown_names_and_missing_directions_are_errors() -> None:
    with pytest.raises(BridgeError, match="unknown contacts format 'ods'; use one of csv, vcf"):
        get_format("ods")
    with pytest.raises(BridgeError, match="cannot be imported from directory-json"):
        get_format("directory-json").read(b"[]")


def test_read_file_names_the_file_in_errors(tmp_path: Path) -> None:
    source = tmp_path / "broken.json"
    source.write_bytes(b"[1, 2")
    with pytest.raises(BridgeError) as info:
        get_format("json").read_file(source, max_bytes=1024)
    assert info.value.path == source
    assert str(info.value).startswith(f"{source}, line 1, column 6: not valid JSON")
    with pytest.raises(BridgeError, match="over the limit of 2 for a contacts file"):
        get_format("json").read_file(source, max_bytes=2)


def test_csv_reader_options_override_sniffing() -> None:
    data = "Name;Number\nŁukasz;1\n".encode("cp1250")
    result = get_format("csv").read(data, ReadOptions(encoding="cp1250", delimiter=";"))
    assert [(c.name, c.number) for c in result.contacts] == [("Łukasz", "1")]


def test_the_package_surface_is_the_registry() -> None:
    for name in contacts.__all__:
        assert getattr(contacts, name) is not None
    assert contacts.get_format is get_format
