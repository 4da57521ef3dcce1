"""microsip.ini as a document with the semantics of Windows' profile API, edited line by line.

MicroSIP reads and writes its ini through ``GetPrivateProfileString`` and
``WritePrivateProfileString`` (facts §3.2), so this module follows their rules rather than
``configparser``'s:

* section and key names are case-insensitive; only the *first* section of a name is searched, and
  the first of duplicate keys wins;
* a value is the text after the first ``=``, trimmed, with one pair of surrounding quotes
  (``"..."`` or ``'...'``) removed; there is no escaping and no continuation line;
* lines starting with ``;`` are comments; lines before the first section are never read.

The file's text is kept as read, each line an offset into it, so loading and saving an unchanged
file gives the same bytes, and an edit rewrites only the line it touches (comments, blank lines,
order, key case and line ends are kept). Encodings: UTF-16LE with BOM (what MicroSIP writes),
UTF-16BE with BOM, UTF-8 with or without BOM, and ANSI (cp1252, with the five bytes cp1252 leaves
undefined mapped to U+0081... as Windows does).

We wrote our own line model instead of wrapping configupdater (stack.md §3.7): configupdater reads
indented lines as continuations of the previous value and needs the CRLF and key-insertion
workarounds listed there, while a line model gives the profile API's rules directly.
"""

from __future__ import annotations

import codecs
import enum
import re
from array import array
from bisect import bisect_left
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import overload

from microsip_bridge.errors import (
    BridgeError,
    FileFormatError,
    MicroSIPRunningError,
)
from microsip_bridge.fileio import DEFAULT_BACKUPS, atomic_write, read_limited
from microsip_bridge.microsip import textcodec

# microsip.ini holds at most 1000 call entries and a few hundred settings: a few hundred KB. Refuse
# anything absurdly larger before reading it into memory.
MAX_INI_BYTES = 16 * 1024 * 1024


class IniEncoding(enum.Enum):
    """How an ini file is stored. MicroSIP creates UTF16LE and converts the others (facts §3.2)."""

    UTF16LE = "UTF-16LE with BOM"
    UTF16BE = "UTF-16BE with BOM"
    UTF8_BOM = "UTF-8 with BOM"
    UTF8 = "UTF-8 without BOM"
    ANSI = "ANSI (cp1252)"

    @property
    def bom(self) -> bytes:
        return _BOMS.get(self, b"")

    @property
    def is_microsip_native(self) -> bool:
        """Whether MicroSIP keeps the file as it is; it rewrites every other encoding as ANSI."""
        return self is IniEncoding.UTF16LE


_BOMS = {
    IniEncoding.UTF16LE: codecs.BOM_UTF16_LE,
    IniEncoding.UTF16BE: codecs.BOM_UTF16_BE,
    IniEncoding.UTF8_BOM: codecs.BOM_UTF8,
}


def _c1_handler(exc: UnicodeError) -> tuple[str | bytes, int]:
    """cp1252 leaves 0x81, 0x8D, 0x8F, 0x90 and 0x9D undefined; Windows' MultiByteToWideChar maps
    them to the C1 controls of the same value. Doing the same keeps ANSI files byte-identical."""
    if isinstance(exc, UnicodeDecodeError):
        return chr(exc.object[exc.start]), exc.start + 1
    if isinstance(exc, UnicodeEncodeError):
        ch = exc.object[exc.start]
        if ord(ch) in (0x81, 0x8D, 0x8F, 0x90, 0x9D):
            return bytes([ord(ch)]), exc.start + 1
    raise exc


codecs.register_error("microsip-bridge-c1", _c1_handler)

_CODECS: dict[IniEncoding, tuple[str, str]] = {
    # surrogatepass: a lone surrogate in a UTF-16 file survives a load and save untouched.
    IniEncoding.UTF16LE: ("utf-16-le", "surrogatepass"),
    IniEncoding.UTF16BE: ("utf-16-be", "surrogatepass"),
    IniEncoding.UTF8_BOM: ("utf-8", "strict"),
    IniEncoding.UTF8: ("utf-8", "strict"),
    IniEncoding.ANSI: ("cp1252", "microsip-bridge-c1"),
}


def decode(data: bytes, path: Path | None = None) -> tuple[str, IniEncoding]:
    """Decode ini bytes the way they were written: BOM first, then strict UTF-8, then ANSI."""
    # The profile API knows no UTF-32: a UTF-32LE mark (FF FE 00 00) is taken for UTF-16LE's.
    bom = textcodec.detect_bom(data, textcodec.WINDOWS_BOMS)
    if bom is textcodec.UTF16LE_BOM:
        encoding = IniEncoding.UTF16LE
    elif bom is textcodec.UTF16BE_BOM:
        encoding = IniEncoding.UTF16BE
    elif bom is textcodec.UTF8_BOM:
        encoding = IniEncoding.UTF8_BOM
    else:
        if b"\x00" in data:
            raise FileFormatError(
                "contains NUL bytes: not an ini file, or UTF-16 without a byte-order mark",
                path=path,
            )
        try:
            return data.decode("utf-8"), IniEncoding.UTF8
        except UnicodeDecodeError:
            encoding = IniEncoding.ANSI
    body = memoryview(data)[len(encoding.bom) :]  # not a copy: the file may be 16 MiB
    codec, errors = _CODECS[encoding]
    if codec.startswith("utf-16") and len(body) % 2:
        raise FileFormatError("odd number of bytes in a UTF-16 file: it is truncated", path=path)
    try:
        return str(body, codec, errors), encoding
    except UnicodeDecodeError as exc:
        raise FileFormatError(
            f"not valid {encoding.value} at byte {exc.start + len(encoding.bom)}", path=path
        ) from exc


def encode(text: str, encoding: IniEncoding) -> bytes:
    codec, errors = _CODECS[encoding]
    return encoding.bom + text.encode(codec, errors)


class LineKind(enum.Enum):
    SECTION = "section"
    KEY = "key"
    COMMENT = "comment"
    BLANK = "blank"
    OTHER = "other"  # no "=": the profile API finds no value in it


@dataclass(frozen=True, slots=True)
class Line:
    """One physical line, made when asked for: its text without the line end, the line end, and
    what the profile API makes of it. A name is its place in ``text`` (``name_at:name_end``,
    before stripping); ``value_at`` is where a key's value starts."""

    text: str
    eol: str
    kind: LineKind
    name_at: int = 0
    name_end: int = 0
    value_at: int = 0

    @property
    def name(self) -> str:
        """The section or key name as written (stripped); empty for other lines."""
        return self.text[self.name_at : self.name_end].strip()


def _parse_line(text: str, eol: str) -> Line:
    stripped = text.lstrip(" \t")
    if not stripped.strip():
        return Line(text, eol, LineKind.BLANK)
    if stripped[0] == ";":
        return Line(text, eol, LineKind.COMMENT)
    if stripped[0] == "[":
        lead = len(text) - len(stripped)
        close = stripped.rfind("]")
        end = lead + close if close > 0 else len(text)
        return Line(text, eol, LineKind.SECTION, lead + 1, end)
    eq = text.find("=")
    if eq < 0:
        return Line(text, eol, LineKind.OTHER)
    value_at = eq + 1
    while value_at < len(text) and text[value_at] in " \t":
        value_at += 1
    return Line(text, eol, LineKind.KEY, 0, eq, value_at)


def _section_name(text: str) -> str | None:
    """The folded name of a section header line, None for any other line (the cheap test that
    a pass over every line makes)."""
    stripped = text.lstrip(" \t")
    if stripped[:1] != "[":
        return None
    close = stripped.rfind("]")
    return (stripped[1:close] if close > 0 else stripped[1:]).strip().casefold()


def _key_name(text: str) -> str | None:
    """The folded name of a key line, None for any other line."""
    stripped = text.lstrip(" \t")
    if stripped[:1] in ("", ";", "[") or not stripped.strip():
        return None
    eq = text.find("=")
    return None if eq < 0 else text[:eq].strip().casefold()


def _key_parts(text: str) -> tuple[str, str] | None:
    """A key line's name as written (stripped) and the text after its "=", None for any other
    line."""
    stripped = text.lstrip(" \t")
    if stripped[:1] in ("", ";", "[") or not stripped.strip():
        return None
    eq = text.find("=")
    return None if eq < 0 else (text[:eq].strip(), text[eq + 1 :])


# A line and its line end: split at CRLF, LF or CR only (``str.splitlines`` also splits at \x0b,
# \x1c, U+2028...). It matches the empty string at the very end of a text: that is not a line.
_LINE = re.compile(r"([^\r\n]*)(\r\n|\r|\n|\Z)")
_LINE_END = re.compile(r"\r\n?|\n")
_EMPTY = -1  # a free slot of a key table
# Line offsets and numbers in 4 bytes ("i" is a C int: 32 bits wherever Python runs); a text of
# 2**31 characters would need "q", but a loaded ini stops at MAX_INI_BYTES long before.
_INT = "i"
_HASH_BITS = 0x7FFFFFFF  # the part of a name's hash a key table keeps


def _line_starts(text: str, lf_only: bool) -> array[int]:
    """Where each line of the text starts: 4 bytes a line, found without a string per line."""
    starts = array(_INT if len(text) < _HASH_BITS else "q")
    if not text:
        return starts
    starts.append(0)
    add = starts.append
    if lf_only:
        # No lone CR (the common case): a line ends at each LF, and str.find is the fastest way.
        find = text.find
        pos = find("\n") + 1
        while pos:
            add(pos)
            pos = find("\n", pos) + 1
    else:
        for match in _LINE_END.finditer(text):
            add(match.end())
    if starts[-1] == len(text):
        starts.pop()  # the text ends with a line end: no line after it
    return starts


def _end_of_line(text: str, pos: int) -> int:
    """Where the line holding ``pos`` ends (its CR or LF), -1 for the last line."""
    match = _LINE_END.search(text, pos)
    return -1 if match is None else match.start()


def profile_value(raw: str) -> str:
    """What GetPrivateProfileString returns for the text after ``=``: trimmed, and one pair of
    surrounding quotes removed (facts §2.6)."""
    value = raw.strip(" \t")
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value


@dataclass(slots=True)
class _KeyTable:
    """The keys of one section (its first occurrence, the one the profile API reads), by folded
    name: an open-addressing hash table of line numbers in two arrays, 8 bytes a slot, instead
    of a dict holding a string and an int object per key (several times the line's own size).
    ``more`` has the later lines of duplicated keys (rare)."""

    hashes: array[int]
    lines: array[int]
    more: dict[str, list[int]]
    count: int = 0

    @classmethod
    def build(cls, doc: IniDocument, start: int, end: int) -> _KeyTable:
        # Sized by the section's line count, an upper bound of its keys (one pass, no list of the
        # names on the side), for a table at most two-thirds full.
        size = (end - start) * 3 // 2 + 8
        table = cls(array(_INT, [0]) * size, array(_INT, [_EMPTY]) * size, {})
        hashes, lines = table.hashes, table.lines
        for i, text in doc._texts(start + 1, end):
            name = _key_name(text)
            if name is None:
                continue
            h = hash(name) & _HASH_BITS
            slot = h % size
            while (line := lines[slot]) != _EMPTY:
                if hashes[slot] == h and doc._key_name(line) == name:
                    table.more.setdefault(name, []).append(i)
                    break
                slot = slot + 1 if slot + 1 < size else 0
            else:
                hashes[slot] = h
                lines[slot] = i
                table.count += 1
        return table

    def shift(self, at: int, delta: int) -> None:
        """Line ``at`` was inserted (``delta`` 1) or removed (-1): the lines after it move."""
        lines = self.lines
        first = at if delta > 0 else at + 1
        for slot in range(len(lines)):
            if lines[slot] >= first:  # never a free slot: _EMPTY is negative
                lines[slot] += delta
        for more in self.more.values():
            more[:] = [line + delta if line >= first else line for line in more]

    def discard(self, doc: IniDocument, name: str) -> None:
        """Forget a key and its duplicates (before their lines are removed)."""
        slot, found = self._slot(doc, name)
        if not found:
            return
        self.more.pop(name, None)
        self.count -= 1
        # Backward-shift deletion: later entries of the probe run move into the hole unless
        # their home slot lies (cyclically) after it, so every lookup still finds them.
        hashes, lines = self.hashes, self.lines
        size = len(lines)
        lines[slot] = _EMPTY
        j = slot
        while True:
            j = j + 1 if j + 1 < size else 0
            if lines[j] == _EMPTY:
                return
            home = hashes[j] % size
            if (slot <= j and slot < home <= j) or (slot > j and (home > slot or home <= j)):
                continue
            hashes[slot], lines[slot] = hashes[j], lines[j]
            lines[j] = _EMPTY
            slot = j

    def add(self, doc: IniDocument, name: str, line: int) -> bool:
        """Record a key line; False when the table is too full to take it."""
        slot, found = self._slot(doc, name)
        if found:
            first = self.lines[slot]
            if line < first:  # the new line comes first: it is the one the profile API reads
                self.lines[slot], line = line, first
            more = self.more.setdefault(name, [])
            more.append(line)
            more.sort()
            return True
        if (self.count + 1) * 3 > len(self.lines) * 2:
            return False
        self.hashes[slot] = hash(name) & _HASH_BITS
        self.lines[slot] = line
        self.count += 1
        return True

    def _slot(self, doc: IniDocument, name: str) -> tuple[int, bool]:
        """The slot holding ``name`` (True), or the free slot where it would go (False)."""
        h = hash(name) & _HASH_BITS
        size = len(self.lines)
        slot = h % size
        while (line := self.lines[slot]) != _EMPTY:
            if self.hashes[slot] == h and doc._key_name(line) == name:
                return slot, True
            slot = slot + 1 if slot + 1 < size else 0
        return slot, False

    def find(self, doc: IniDocument, name: str) -> list[int]:
        slot, found = self._slot(doc, name)
        if not found:
            return []
        return [self.lines[slot], *self.more.get(name, ())]


class IniDocument:
    """A microsip.ini (or any Windows ini) that can be read like the profile API and edited in
    place.

    **Usage**::

        doc = IniDocument.load(path)
        doc.get("Settings", "callsLastKey")
        doc.set("Settings", "cmdCallRing", r'"C:\\x\\hook.exe" ring')
        doc.save()

    The text is kept once, as read; each line is the offset where it starts in that text (4
    bytes), or, once edited or added, its own text. The sections and each section's keys are
    found on the first lookup that needs them, so memory stays near the file's size and every
    lookup is a hash access, not a scan.
    """

    def __init__(self, text: str, encoding: IniEncoding, path: Path | None = None) -> None:
        self.encoding = encoding
        self.path = path
        self.modified = False
        self._text = text
        # >= 0: where the line starts in _text; < 0: ~index of its (text, eol) in _edited.
        # No lone CR (the common case): every line ends at an LF, which str.find finds fast.
        self._lf_only = text.count("\r") == text.count("\r\n")
        self._at = _line_starts(text, self._lf_only)
        self._edited: list[tuple[str, str]] = []
        self._read_lines = len(self._at)
        self._spans: dict[str, tuple[int, int]] | None = None
        self._tables: dict[str, _KeyTable] = {}
        crlf = text.count("\r\n")
        lf = text.count("\n") - crlf
        # MicroSIP writes CRLF; keep whatever the file mostly uses for the lines we add.
        self.newline = "\n" if lf > crlf else "\r\n"

    # --- loading and saving -------------------------------------------------------------------

    @classmethod
    def from_text(
        cls, text: str, encoding: IniEncoding = IniEncoding.UTF16LE, path: Path | None = None
    ) -> IniDocument:
        return cls(text, encoding, path)

    @classmethod
    def from_bytes(cls, data: bytes, path: Path | None = None) -> IniDocument:
        text, encoding = decode(data, path)
        return cls.from_text(text, encoding, path)

    @classmethod
    def load(cls, path: Path | str) -> IniDocument:
        path = Path(path)
        # The bytes are dropped once decoded, before the lines are found.
        text, encoding = decode(read_limited(path, MAX_INI_BYTES, "microsip.ini"), path)
        return cls.from_text(text, encoding, path)

    @classmethod
    def new(cls, path: Path | None = None) -> IniDocument:
        """What MicroSIP creates when the ini is missing: UTF-16LE with a BOM and ``[Settings]``."""
        return cls.from_text("[Settings]\r\n", IniEncoding.UTF16LE, path)

    def text(self) -> str:
        if not self._edited and len(self._at) == self._read_lines:
            return self._text  # no line was touched, added or removed: the text as read
        return "".join(self._wholes())

    def to_bytes(self) -> bytes:
        try:
            return encode(self.text(), self.encoding)
        except UnicodeEncodeError as exc:
            bad = exc.object[exc.start : exc.end]
            raise FileFormatError(
                f"{bad!r} cannot be stored in an {self.encoding.value} file; "
                "convert it to UTF-16LE (what MicroSIP writes) first",
                path=self.path,
            ) from exc

    def convert(self, encoding: IniEncoding) -> None:
        """Store the document in another encoding at the next save (every line is kept)."""
        if encoding is not self.encoding:
            self.encoding = encoding
            self.modified = True

    def check_writable(
        self, path: Path | None = None, *, microsip_running: bool | None = None, force: bool = False
    ) -> Path:
        """The file :meth:`save` would write; raises what :meth:`save` would refuse with, so a
        command can check before it acts (and before it prints a plan as if done)."""
        target = Path(path) if path is not None else self.path
        if target is None:
            raise BridgeError("the document has no path to save to")
        if microsip_running and not force:
            raise MicroSIPRunningError(
                "MicroSIP is running and rewrites this file when it exits, which would undo "
                "the change; close MicroSIP first (microsip.exe /exit) or pass --force",
                path=target,
            )
        return target

    def save(
        self,
        path: Path | None = None,
        *,
        backups: int = DEFAULT_BACKUPS,
        microsip_running: bool | None = None,
        force: bool = False,
    ) -> Path | None:
        """Write atomically, keeping a timestamped backup of the previous file.

        MicroSIP rewrites its ini from memory when it exits (facts §3.2), so a write while it runs
        would be lost: it is refused unless ``force``. ``microsip_running`` is the caller's
        knowledge (see :mod:`microsip_bridge.microsip.process`); ``None`` means unknown.
        Returns the backup's path, if one was made.
        """
        target = self.check_writable(path, microsip_running=microsip_running, force=force)
        data = self.to_bytes()
        backup = atomic_write(target, data, backups=backups, max_bytes=MAX_INI_BYTES, public=True)
        self.path = target
        self.modified = False
        return backup

    # --- the lines ------------------------------------------------------------------------------

    @property
    def lines(self) -> Sequence[Line]:
        """The physical lines, read-only (edit through :meth:`set`, :meth:`delete`...)."""
        return _Lines(self)

    def _raw(self, i: int) -> tuple[str, str]:
        """Line ``i``'s text and line end."""
        at = self._at[i]
        if at < 0:
            return self._edited[~at]
        if self._lf_only:
            text = self._text
            lf = text.find("\n", at)
            if lf < 0:
                return text[at:], ""
            if lf > at and text[lf - 1] == "\r":
                return text[at : lf - 1], "\r\n"
            return text[at:lf], "\n"
        match = _LINE.match(self._text, at)
        assert match is not None  # the pattern matches anywhere
        return match.group(1), match.group(2)

    def _pristine(self) -> bool:
        """Whether the lines are still the text as read (offsets in order, none edited)."""
        return not self._edited and len(self._at) == self._read_lines

    def _texts(self, start: int, end: int) -> Iterator[tuple[int, str]]:
        """(index, text) of the lines [start, end)."""
        if not self._pristine():
            text, offsets, edited, find = self._text, self._at, self._edited, self._text.find
            for i in range(start, end):
                at = offsets[i]
                if at < 0:
                    yield i, edited[~at][0]
                elif self._lf_only:
                    lf = find("\n", at)
                    yield i, (text[at:] if lf < 0 else text[at:lf]).rstrip("\r")
                else:
                    yield i, self._raw(i)[0]
        elif start < end:
            # The lines are consecutive in the text: each ends where the next starts.
            text, starts = self._text, self._at
            ends = starts[start + 1 : end + 1]
            if end == len(starts):
                ends.append(len(text))
            for i, a, b in zip(range(start, end), starts[start:end], ends, strict=True):
                yield i, text[a:b].rstrip("\r\n")

    def _headers(self) -> Iterator[tuple[int, str]]:
        """(index, text) of each line that opens a section, in file order."""
        if not self._pristine():
            for i, line in self._texts(0, len(self._at)):
                if line.lstrip(" \t")[:1] == "[":
                    yield i, line
            return
        # Only a line whose first character after spaces and tabs is "[" opens a section: look
        # at the first "[" of each line that has one (few, in an ini) instead of at each line.
        text, offsets = self._text, self._at
        pos = text.find("[")
        while pos >= 0:
            start = pos
            while start > 0 and text[start - 1] in " \t":
                start -= 1
            if start == 0 or text[start - 1] in "\r\n":
                i = bisect_left(offsets, start)
                yield i, self._raw(i)[0]
            # No other "[" of this line opens a section: go on from its end.
            end = text.find("\n", pos) if self._lf_only else _end_of_line(text, pos)
            if end < 0:
                return
            pos = text.find("[", end)

    def _wholes(self) -> Iterator[str]:
        """Each line with its line end."""
        text, find, edited = self._text, self._text.find, self._edited
        for at in self._at:
            if at < 0:
                line, eol = edited[~at]
                yield line + eol
            elif self._lf_only:
                lf = find("\n", at)
                yield text[at:] if lf < 0 else text[at : lf + 1]
            else:
                match = _LINE.match(text, at)
                assert match is not None  # the pattern matches anywhere
                yield match.group()

    def _line(self, i: int) -> Line:
        return _parse_line(*self._raw(i))

    def _key_name(self, i: int) -> str | None:
        return _key_name(self._raw(i)[0])

    def _put(self, i: int, text: str, eol: str) -> None:
        """Replace line ``i`` (same kind and name: the indexes stay true)."""
        at = self._at[i]
        if at < 0:
            self._edited[~at] = (text, eol)
        else:
            self._edited.append((text, eol))
            self._at[i] = ~(len(self._edited) - 1)

    def _insert(self, i: int, text: str, eol: str) -> None:
        self._edited.append((text, eol))
        self._at.insert(i, ~(len(self._edited) - 1))
        spans = self._spans
        if spans is None:
            return
        if _section_name(text) is not None:
            self._changed_lines()  # a new section (once per section): find them all again
            return
        # The lines after i move down by one, and a line inserted inside or right after a span
        # belongs to it: the indexes are moved, not rebuilt (hooks install adds several keys
        # to a [Settings] that may hold many).
        for name, (start, end) in spans.items():
            if start >= i:
                spans[name] = (start + 1, end + 1)
            elif end >= i:
                spans[name] = (start, end + 1)
        key = _key_name(text)
        for name, table in list(self._tables.items()):
            table.shift(i, 1)
            start, end = spans[name]
            if key is not None and start < i < end and not table.add(self, key, i):
                del self._tables[name]  # full: built again, larger, on the next lookup

    def _remove_key_line(self, i: int) -> None:
        """Remove line ``i``, a key line already discarded from its table: the indexes move."""
        del self._at[i]
        spans = self._spans
        if spans is None:
            return
        for name, (start, end) in spans.items():
            if start > i:
                spans[name] = (start - 1, end - 1)
            elif end > i:
                spans[name] = (start, end - 1)
        for table in self._tables.values():
            table.shift(i, -1)

    def _set_eol(self, i: int, eol: str) -> None:
        self._put(i, self._raw(i)[0], eol)

    def _changed_lines(self) -> None:
        """Lines were inserted or removed: every line number in the indexes may have moved."""
        self._spans = None
        self._tables.clear()

    # --- reading --------------------------------------------------------------------------------

    def _all_spans(self) -> dict[str, tuple[int, int]]:
        """Line indexes [start, end) of each section's first occurrence (the one the profile API
        reads), by folded name, found in one pass and kept until lines are inserted or removed."""
        spans = self._spans
        if spans is None:
            spans = {}
            open_name: str | None = None
            for i, line in self._headers():
                name = _section_name(line)
                assert name is not None
                if open_name is not None:
                    spans[open_name] = (spans[open_name][0], i)
                    open_name = None
                if name not in spans:
                    spans[name] = (i, len(self._at))
                    open_name = name
            self._spans = spans
        return spans

    def _section_span(self, section: str) -> tuple[int, int] | None:
        """Line indexes [start, end) of the first section with this name (header included)."""
        return self._all_spans().get(section.casefold())

    def _key_parts(self, section: str) -> Iterator[tuple[str, str]]:
        """(name as written, text after "=") of every key line of the section, duplicates
        included, in file order."""
        span = self._section_span(section)
        if span is None:
            return
        for _, text in self._texts(span[0] + 1, span[1]):
            parts = _key_parts(text)
            if parts is not None:
                yield parts

    def _find(self, section: str, key: str) -> list[int]:
        """The lines of a key, the one the profile API reads first, then its duplicates."""
        folded = section.casefold()
        table = self._tables.get(folded)
        if table is None:
            span = self._all_spans().get(folded)
            if span is None:
                return []
            table = self._tables[folded] = _KeyTable.build(self, *span)
        return table.find(self, key.casefold())

    def _section_names(self) -> Iterator[str]:
        for _, line in self._headers():
            yield _parse_line(line, "").name

    def sections(self) -> list[str]:
        """Section names in file order, each name once (as first written)."""
        seen: dict[str, str] = {}
        for name in self._section_names():
            seen.setdefault(name.casefold(), name)
        return list(seen.values())

    def duplicate_sections(self) -> list[str]:
        """Sections written more than once: the profile API reads only the first of them."""
        counts: dict[str, list[str]] = {}
        for name in self._section_names():
            counts.setdefault(name.casefold(), []).append(name)
        return [names[0] for names in counts.values() if len(names) > 1]

    def has_section(self, section: str) -> bool:
        return self._section_span(section) is not None

    def keys(self, section: str) -> list[str]:
        """Key names of the section, each once (the first duplicate's spelling)."""
        seen: dict[str, str] = {}
        for name, _ in self._key_parts(section):
            seen.setdefault(name.casefold(), name)
        return list(seen.values())

    def items(self, section: str) -> list[tuple[str, str]]:
        """(key, value) pairs as the profile API reads them: first duplicate wins."""
        seen: dict[str, tuple[str, str]] = {}
        for name, value in self._key_parts(section):
            folded = name.casefold()
            if folded not in seen:
                seen[folded] = (name, profile_value(value))
        return list(seen.values())

    def get_raw(self, section: str, key: str) -> str | None:
        """The value's text as stored: trimmed, quotes kept."""
        found = self._find(section, key)
        if not found:
            return None
        line = self._line(found[0])
        return line.text[line.value_at :].strip(" \t")

    def get(self, section: str, key: str, default: str | None = None) -> str | None:
        """The value as MicroSIP reads it with GetPrivateProfileString (see the module doc)."""
        raw = self.get_raw(section, key)
        return default if raw is None else profile_value(raw)

    def line_number(self, section: str, key: str | None = None) -> int | None:
        """1-based line number of a key (or of the section header), for error messages."""
        if key is None:
            span = self._section_span(section)
            return None if span is None else span[0] + 1
        found = self._find(section, key)
        return found[0] + 1 if found else None

    # --- editing --------------------------------------------------------------------------------

    @staticmethod
    def _check(kind: str, text: str) -> None:
        if "\r" in text or "\n" in text or "\x00" in text:
            raise BridgeError(f"an ini {kind} cannot contain a line break or NUL: {text!r}")

    def set(self, section: str, key: str, value: str) -> None:
        """Set a value the way WritePrivateProfileString does, touching only one line.

        The value is written verbatim: what MicroSIP reads back is :func:`profile_value` of it.
        An existing key keeps its spelling and the spacing before its value; a new key goes after
        the section's last non-blank line; a new section goes at the end of the file.
        """
        self._check("section name", section)
        self._check("key", key)
        self._check("value", value)
        if not key.strip() or "=" in key or key.lstrip().startswith((";", "[")):
            raise BridgeError(f"not a valid ini key: {key!r}")
        if not section.strip() or "]" in section:
            raise BridgeError(f"not a valid ini section name: {section!r}")
        found = self._find(section, key)
        if found:
            line = self._line(found[0])
            new_text = line.text[: line.value_at] + value
            if new_text != line.text:
                self._put(found[0], new_text, line.eol)
                self.modified = True
            return
        span = self._section_span(section)
        if span is None:
            self._terminate_last_line()
            end = len(self._at)
            self._insert(end, f"[{section}]", self.newline)
            self._insert(end + 1, f"{key}={value}", self.newline)
        else:
            at = span[1]
            while at - 1 > span[0] and self._line(at - 1).kind is LineKind.BLANK:
                at -= 1
            eol = self.newline
            if not self._raw(at - 1)[1]:  # inserting after a last line that has no line end
                self._set_eol(at - 1, self.newline)
                eol = ""
            self._insert(at, f"{key}={value}", eol)
        self.modified = True

    def _terminate_last_line(self) -> None:
        if len(self._at) and not self._raw(len(self._at) - 1)[1]:
            self._set_eol(len(self._at) - 1, self.newline)

    def delete(self, section: str, key: str) -> bool:
        """Remove the key (every duplicate in the section, so no older value shows through)."""
        found = self._find(section, key)
        if not found:
            return False
        # _find built the section's table: the key leaves it, and the other lines move up.
        self._tables[section.casefold()].discard(self, key.casefold())
        for i in reversed(found):
            removed_eol = self._raw(i)[1]
            self._remove_key_line(i)
            if not removed_eol and i > 0:
                self._set_eol(i - 1, "")  # keep "no newline at end of file" as it was
        self.modified = True
        return True

    def remove_section(self, section: str) -> bool:
        """Remove the first section of that name with all its lines."""
        span = self._section_span(section)
        if span is None:
            return False
        last_eol = self._raw(span[1] - 1)[1]
        del self._at[span[0] : span[1]]
        self._changed_lines()
        if span[0] > 0 and span[0] == len(self._at) and not last_eol:
            self._set_eol(len(self._at) - 1, "")
        self.modified = True
        return True


class _Lines(Sequence[Line]):
    """An :class:`IniDocument`'s lines as a read-only sequence, each :class:`Line` made when
    asked for."""

    def __init__(self, doc: IniDocument) -> None:
        self._doc = doc

    def __len__(self) -> int:
        return len(self._doc._at)

    @overload
    def __getitem__(self, index: int) -> Line: ...

    @overload
    def __getitem__(self, index: slice) -> list[Line]: ...

    def __getitem__(self, index: int | slice) -> Line | list[Line]:
        if isinstance(index, slice):
            return [self._doc._line(i) for i in range(len(self))[index]]
        return self._doc._line(range(len(self))[index])
