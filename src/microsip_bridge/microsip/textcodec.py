"""The byte-order marks and text encodings MicroSIP's files come in, sniffed in one place."""

from __future__ import annotations

import codecs
from dataclasses import dataclass

from microsip_bridge.errors import FileFormatError

# What a Windows "ANSI" text is in Western locales, and so what 8-bit text that is not UTF-8
# most likely is.
ANSI_CODEC = "cp1252"


@dataclass(frozen=True, slots=True)
class Bom:
    """A byte-order mark and the codec of the text that follows it."""

    mark: bytes
    codec: str


UTF8_BOM = Bom(codecs.BOM_UTF8, "utf-8")
UTF16LE_BOM = Bom(codecs.BOM_UTF16_LE, "utf-16-le")
UTF16BE_BOM = Bom(codecs.BOM_UTF16_BE, "utf-16-be")
UTF32LE_BOM = Bom(codecs.BOM_UTF32_LE, "utf-32-le")
UTF32BE_BOM = Bom(codecs.BOM_UTF32_BE, "utf-32-be")
ALL_BOMS: tuple[Bom, ...] = (UTF8_BOM, UTF32LE_BOM, UTF32BE_BOM, UTF16LE_BOM, UTF16BE_BOM)
# The marks Windows' own text readers (the profile API, Notepad) know. Without UTF-32, a UTF-32LE
# mark (FF FE 00 00) is taken for UTF-16LE's, as Windows takes it.
WINDOWS_BOMS: tuple[Bom, ...] = (UTF16LE_BOM, UTF16BE_BOM, UTF8_BOM)


@dataclass(frozen=True, slots=True)
class Decoded:
    """Text and the codec it was read with; ``note`` says what was guessed, for a report."""

    text: str
    codec: str
    note: str | None = None


def detect_bom(data: bytes, boms: tuple[Bom, ...] = ALL_BOMS) -> Bom | None:
    """The byte-order mark ``data`` starts with, of those in ``boms``.

    The longest match wins, so UTF-32LE's mark is never read as UTF-16LE's followed by a NUL.
    """
    found = None
    for bom in boms:
        if data.startswith(bom.mark) and (found is None or len(bom.mark) > len(found.mark)):
            found = bom
    return found


def split_bom(data: bytes, boms: tuple[Bom, ...] = ALL_BOMS) -> tuple[Bom | None, bytes]:
    """The byte-order mark ``data`` starts with (of those in ``boms``), and the bytes after it."""
    bom = detect_bom(data, boms)
    return bom, data[len(bom.mark) :] if bom is not None else data


def guess_bomless_utf16(data: bytes) -> str | None:
    """UTF-16 text without a BOM has a zero byte in every other position for Latin text."""
    sample = data[:4096]
    if len(sample) < 4 or len(sample) % 2:
        return None
    even_zeros = sample[0::2].count(0)
    odd_zeros = sample[1::2].count(0)
    half = len(sample) // 2
    if odd_zeros > 0.6 * half and even_zeros < 0.1 * half:
        return "utf-16-le"
    if even_zeros > 0.6 * half and odd_zeros < 0.1 * half:
        return "utf-16-be"
    return None


def decode_unicode(data: bytes, *, where: str | None = None) -> Decoded | None:
    """Decode text whose bytes say how: after any byte-order mark, or UTF-16 without one,
    recognised by its zero bytes. ``None`` for 8-bit text (UTF-8 or a code page), whose codec
    the caller chooses, and for zero-byte-rich data that is not valid UTF-16 after all.

    Raises ``FileFormatError`` (at ``where``) for text that is not valid in its mark's codec.
    """
    bom = detect_bom(data)
    if bom is not None:
        size = len(bom.mark)
        try:
            return Decoded(data[size:].decode(bom.codec), bom.codec)
        except UnicodeDecodeError as exc:
            raise FileFormatError(
                f"starts with a {bom.codec} byte-order mark but is not valid {bom.codec} "
                f"(byte {exc.start + size})",
                where=where,
            ) from None
    guessed = guess_bomless_utf16(data)
    if guessed is None:
        return None
    try:
        text = data.decode(guessed)
    except UnicodeDecodeError:
        return None
    return Decoded(text, guessed, f"no byte-order mark; read as {guessed.upper()}")


def decode_lenient(
    data: bytes, *, encoding: str | None = None, where: str | None = None
) -> Decoded:
    """Decode a whole text file of unknown origin: the BOM's codec if it has one, UTF-16 if it
    looks like it, else UTF-8, else Windows-1252 (bad bytes replaced). ``encoding`` overrides
    all guessing. Every guess but a BOM's and UTF-8 comes with a note.

    Raises ``FileFormatError`` (at ``where``) when ``encoding`` or a BOM's codec does not fit.
    """
    if encoding is not None:
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError as exc:
            raise FileFormatError(
                f"not valid {encoding} (byte {exc.start}: {data[exc.start : exc.start + 1]!r})",
                where=where,
            ) from None
        except (LookupError, ValueError):
            # Unknown names, and codecs that are not bytes-to-text ("rot13", "hex"), land here.
            raise FileFormatError(f"cannot read text as {encoding!r}", where=where) from None
        # Whatever the codec, a BOM decodes to U+FEFF: drop it rather than glue it to a header.
        return Decoded(text.removeprefix("\ufeff"), encoding)
    decoded = decode_unicode(data, where=where)
    if decoded is not None:
        return decoded
    try:
        return Decoded(data.decode("utf-8"), "utf-8")
    except UnicodeDecodeError as exc:
        note = (
            f"not valid UTF-8 (byte {exc.start}); read as Windows-1252, "
            "give the encoding if names look wrong"
        )
        return Decoded(data.decode(ANSI_CODEC, errors="replace"), ANSI_CODEC, note)
