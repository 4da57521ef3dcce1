"""Byte-order marks and text decoding, sniffed once for every reader of MicroSIP's files."""

from __future__ import annotations

import codecs

import pytest

from microsip_bridge.errors import FileFormatError
from microsip_bridge.microsip.inifile import IniEncoding
from microsip_bridge.microsip.inifile import decode as decode_ini
from microsip_bridge.microsip.textcodec import (
    ALL_BOMS,
    ANSI_CODEC,
    UTF8_BOM,
    UTF16BE_BOM,
    UTF16LE_BOM,
    UTF32BE_BOM,
    UTF32LE_BOM,
    WINDOWS_BOMS,
    decode_lenient,
    decode_unicode,
    detect_bom,
    guess_bomless_utf16,
    split_bom,
)

TEXT = "Zoë Łukasz ☎ 5551234 \U0001f4de"


@pytest.mark.parametrize(
    ("bom", "mark", "codec"),
    [
        (UTF8_BOM, codecs.BOM_UTF8, "utf-8"),
        (UTF16LE_BOM, codecs.BOM_UTF16_LE, "utf-16-le"),
        (UTF16BE_BOM, codecs.BOM_UTF16_BE, "utf-16-be"),
        (UTF32LE_BOM, codecs.BOM_UTF32_LE, "utf-32-le"),
        (UTF32BE_BOM, codecs.BOM_UTF32_BE, "utf-32-be"),
    ],
)
def test_every_bom_is_found_and_its_text_decoded(bom: object, mark: bytes, codec: str) -> None:
    data = mark + TEXT.encode(codec)
    assert detect_bom(data) is bom
    assert split_bom(data) == (bom, TEXT.encode(codec))
    decoded = decode_unicode(data)
    assert decoded is not None
    assert (decoded.text, decoded.codec, decoded.note) == (TEXT, codec, None)
    assert decode_lenient(data).text == TEXT


def test_utf32le_is_tested_before_utf16le_whose_mark_it_starts_with() -> None:
    utf32 = codecs.BOM_UTF32_LE + "A".encode("utf-32-le")
    utf16 = codecs.BOM_UTF16_LE + "A".encode("utf-16-le")
    assert utf32.startswith(codecs.BOM_UTF16_LE)
    assert detect_bom(utf32) is UTF32LE_BOM
    assert detect_bom(utf16) is UTF16LE_BOM
    # The longest mark wins whatever order the table lists them in.
    assert detect_bom(utf32, tuple(reversed(ALL_BOMS))) is UTF32LE_BOM
    # Windows' profile API knows no UTF-32: its marks take FF FE 00 00 for UTF-16LE's...
    assert detect_bom(utf32, WINDOWS_BOMS) is UTF16LE_BOM
    assert decode_ini(codecs.BOM_UTF16_LE + "[a]\r\n".encode("utf-16-le"))[1] is IniEncoding.UTF16LE
    # ... while an importer reads the UTF-32 text it is.
    assert decode_lenient(utf32).text == "A"


def test_no_bom() -> None:
    assert detect_bom(b"Name,Number\n") is None
    assert detect_bom(b"") is None
    assert split_bom(b"\xef\xbb") == (None, b"\xef\xbb")
    assert detect_bom(codecs.BOM_UTF16_LE, (UTF8_BOM,)) is None


def test_text_that_does_not_fit_its_bom_is_a_format_error_naming_the_byte() -> None:
    with pytest.raises(FileFormatError, match=r"utf-16-le byte-order mark .* \(byte 2\)") as info:
        decode_unicode(codecs.BOM_UTF16_LE + b"\x00\xd8", where="file")
    assert info.value.where == "file"
    with pytest.raises(FileFormatError, match="not valid utf-8"):
        decode_lenient(codecs.BOM_UTF8 + b"\xff")


def test_utf16_without_a_bom_is_recognised_by_its_zero_bytes() -> None:
    assert guess_bomless_utf16("Name,Number\r\n".encode("utf-16-le")) == "utf-16-le"
    assert guess_bomless_utf16("Name,Number\r\n".encode("utf-16-be")) == "utf-16-be"
    assert guess_bomless_utf16(b"Name,Number\r\n") is None
    assert guess_bomless_utf16(b"N\x00a") is None  # odd length: not UTF-16
    decoded = decode_unicode("Name,Number\r\n".encode("utf-16-le"))
    assert decoded is not None
    assert decoded.codec == "utf-16-le"
    assert decoded.note == "no byte-order mark; read as UTF-16-LE"
    # Zero bytes in the right places but a lone surrogate: not UTF-16 after all.
    assert decode_unicode(b"A\x00B\x00\x00\xdcC\x00") is None


def test_lenient_decoding_falls_back_to_windows_1252_and_says_so() -> None:
    assert decode_lenient("Zoë".encode()).text == "Zoë"
    decoded = decode_lenient("Zoë".encode("cp1252"), where="file")
    assert (decoded.text, decoded.codec) == ("Zoë", ANSI_CODEC)
    assert decoded.note is not None
    assert decoded.note.startswith("not valid UTF-8 (byte 2); read as Windows-1252")


def test_an_explicit_encoding_overrides_every_guess() -> None:
    assert decode_lenient(codecs.BOM_UTF8 + "Zoë".encode(), encoding="utf-8").text == "Zoë"
    assert decode_lenient("Łukasz".encode("cp1250"), encoding="cp1250").text == "Łukasz"
    with pytest.raises(FileFormatError, match="cannot read text as 'no-such-codec'"):
        decode_lenient(b"x", encoding="no-such-codec")
    with pytest.raises(FileFormatError, match="cannot read text as 'rot13'"):
        decode_lenient(b"x", encoding="rot13")
    with pytest.raises(FileFormatError, match=r"not valid ascii \(byte 1: b'\\xff'\)"):
        decode_lenient(b"a\xff", encoding="ascii")
