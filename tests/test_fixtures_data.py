"""Our sample files in tests/data are what tests/fixture_files.py builds, in the shapes it says."""

from __future__ import annotations

import codecs
import re
from pathlib import Path

import pytest

from tests.fixture_files import FILES, FOLDERS


def line_ends(text: str) -> set[str]:
    return set(re.findall(r"\r\n|\r|\n", text))


@pytest.mark.parametrize("name", sorted(FILES))
def test_the_file_is_what_its_builder_writes(data_dir: Path, name: str) -> None:
    data = (data_dir / name).read_bytes()
    assert data == FILES[name](), f"{name} changed: run python -m tests.fixture_files"


def test_every_file_has_a_builder(data_dir: Path) -> None:
    on_disk = {
        path.relative_to(data_dir).as_posix()
        for folder in FOLDERS
        for path in (data_dir / folder).rglob("*")
        if path.is_file()
    }
    assert on_disk == set(FILES)


# Every file's byte-order mark, encoding and line end.
SHAPES: list[tuple[str, bytes, str, str]] = [
    # MicroSIP's own ini: UTF-16LE with a BOM, CRLF (facts §3.2); the originals as written.
    *(
        (name, codecs.BOM_UTF16_LE, "utf-16-le", "\r\n")
        for name in sorted(FILES)
        if re.fullmatch(r"ini/[^/]+\.microsip\.ini", name)
    ),
    ("ini/original/fork-2016.ansi-crlf.ini", b"", "cp1252", "\r\n"),
    ("ini/original/provisioning.ascii-lf.ini", b"", "ascii", "\n"),
    ("ini/original/template.utf8-lf.ini", b"", "utf-8", "\n"),
    # Contacts.xml: UTF-8, CRLF as CMarkup writes it; PowerShell adds a BOM.
    ("contacts/pbx-export.Contacts.xml", b"", "utf-8", "\r\n"),
    ("contacts/hand-kept.Contacts.xml", b"", "utf-8", "\r\n"),
    ("contacts/duplicates-3.20.Contacts.xml", b"", "utf-8", "\r\n"),
    ("contacts/powershell-bom.Contacts.xml", codecs.BOM_UTF8, "utf-8", "\r\n"),
    ("contacts/empty-fork.Contacts.xml", b"", "utf-8", "\r\n"),
    # CSV exports: UTF-8 and "\n"; MicroSIP's with a BOM (facts §4.5).
    ("csv/google.csv", b"", "utf-8", "\n"),
    ("csv/google-outlook.csv", b"", "utf-8", "\n"),
    ("csv/outlook-live.csv", b"", "utf-8", "\n"),
    ("csv/outlook-emails-only.csv", b"", "ascii", "\n"),
    ("csv/thunderbird.csv", b"", "utf-8", "\n"),
    ("csv/microsip-3.22.csv", codecs.BOM_UTF8, "utf-8", "\n"),
    # vCard: CRLF; 2.1 is 7-bit, its 8-bit text quoted-printable.
    ("vcard/android-2.1.vcf", b"", "ascii", "\r\n"),
    ("vcard/outlook-2003-2.1.vcf", b"", "ascii", "\r\n"),
    ("vcard/thebat-2.1.vcf", b"", "ascii", "\r\n"),
    ("vcard/gmail-3.0.vcf", b"", "utf-8", "\r\n"),
    ("vcard/contacts-4.0.vcf", b"", "utf-8", "\r\n"),
]


@pytest.mark.parametrize(("name", "bom", "codec", "newline"), SHAPES)
def test_the_file_has_its_shape(
    data_dir: Path, name: str, bom: bytes, codec: str, newline: str
) -> None:
    data = (data_dir / name).read_bytes()
    assert data.startswith(bom)
    body = data[len(bom) :]
    assert not body.startswith((codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE))
    text = body.decode(codec)
    assert line_ends(text) == {newline}
    if codec == "cp1252":
        # An ANSI file MicroSIP would convert: not valid UTF-8 (facts §3.2).
        with pytest.raises(UnicodeDecodeError):
            body.decode("utf-8")


def test_every_file_has_a_shape_above() -> None:
    assert {name for name, *_ in SHAPES} == set(FILES)
