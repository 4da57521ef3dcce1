"""microsip.ini as a document with the semantics of Windows' profile API, edited line by line.

MicroSIP reads and writes its ini through ``GetPrivateProfileString`` and
``WritePrivateProfileString`` (facts §3.2), so this module follows their rules rather than
``configparser``'s:

* section and key names are case-insensitive; only the *first* section of a name is searched, and
  the first of duplicate keys wins;
* a value is the text after the first ``=``, trimmed, with one pair of surrounding quotes
  (``"..."`` or ``'...'``) removed; there is no escaping and no continuation line;
* lines starting with ``;`` are comments; lines before the first section are never read.

The file is kept as its lines, so loading and saving an unchanged file gives the same bytes, and an
edit rewrites only the line it touches (comments, blank lines, order, key case and line ends are
kept). Encodings: UTF-16LE with BOM (what MicroSIP writes), UTF-16BE with BOM, UTF-8 with or without
BOM, and ANSI (cp1252, with the five bytes cp1252 leaves undefined mapped to U+0081... as Windows
does).

We wrote our own line model instead of wrapping configupdater (stack.md §3.7): configupdater reads
indented lines as continuations of the previous value and needs the CRLF and key-insertion
workarounds listed there, while a line model gives the profile API's rules directly.
"""

from __future__ import annotations

import codecs
import enum
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from microsip_bridge.errors import (
    BridgeError,
    FileFormatError,
    MicroSIPRunningError,
)
from microsip_bridge.fileio import DEFAULT_BACKUPS, atomic_write, read_limited
from microsip_bridge.gcpause import collector_paused
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


@dataclass(slots=True)
class Line:
    """One physical line: its text without the line end, and the line end itself.

    A name is kept as its place in ``text`` (``name_at:name_end``, before stripping), not as a
    string of its own: a large ini holds a million of these, and memory stays near the file's
    size."""

    text: str
    eol: str
    kind: LineKind
    name_at: int = 0
    name_end: int = 0
    value_at: int = 0  # for keys: index in ``text`` where the value starts

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


_LINE = re.compile(r"([^\r\n]*)(\r\n|\r|\n|\Z)")
# One string object per kind of line end, not one per line.
_EOLS = {"\r\n": "\r\n", "\n": "\n", "\r": "\r", "": ""}


def iter_lines(text: str) -> Iterator[tuple[str, str]]:
    """Split at CRLF, LF or CR only (``str.splitlines`` also splits at \\x0b, \\x1c, U+2028...),
    one line at a time."""
    eols = _EOLS
    for match in _LINE.finditer(text):
        line, eol = match.groups()
        # The pattern also matches the empty string at the very end: that is not a line.
        if line or eol:
            yield line, eols[eol]


def split_lines(text: str) -> list[tuple[str, str]]:
    """:func:`iter_lines` as a list."""
    return list(iter_lines(text))


def profile_value(raw: str) -> str:
    """What GetPrivateProfileString returns for the text after ``=``: trimmed, and one pair of
    surrounding quotes removed (facts §2.6)."""
    value = raw.strip(" \t")
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value


@dataclass(slots=True)
class _Index:
    """Where each section (its first occurrence, as the profile API reads) and each of its keys
    is, by case-folded name: the key's first line, and in ``more`` the lines of its duplicates."""

    size: int
    spans: dict[str, tuple[int, int]]
    keys: dict[str, dict[str, int]]
    more: dict[tuple[str, str], list[int]]

    def find(self, section: str, key: str) -> list[int]:
        keys = self.keys.get(section)
        first = None if keys is None else keys.get(key)
        if first is None:
            return []
        return [first, *self.more.get((section, key), ())]

    def key_lines(self, section: str) -> list[int]:
        keys = self.keys.get(section)
        if keys is None:
            return []
        found = list(keys.values())
        for (where, _), lines in self.more.items():
            if where == section:
                found.extend(lines)
        return sorted(found)

    @classmethod
    def build(cls, lines: list[Line]) -> _Index:
        spans: dict[str, tuple[int, int]] = {}
        keys: dict[str, dict[str, int]] = {}
        more: dict[tuple[str, str], list[int]] = {}
        current: dict[str, int] | None = None  # the keys of a first occurrence, or None
        open_name = ""
        open_start = -1
        for i, line in enumerate(lines):
            kind = line.kind
            if kind is LineKind.KEY:
                if current is not None:
                    name = line.name.casefold()
                    if name in current:
                        more.setdefault((open_name, name), []).append(i)
                    else:
                        current[name] = i
            elif kind is LineKind.SECTION:
                if open_start >= 0:
                    spans[open_name] = (open_start, i)
                    open_start = -1
                name = line.name.casefold()
                if name in spans:
                    current = None  # a later duplicate: the profile API never reads it
                else:
                    current = keys[name] = {}
                    open_name, open_start = name, i
                    spans[name] = (i, len(lines))
        if open_start >= 0:
            spans[open_name] = (open_start, len(lines))
        return cls(len(lines), spans, keys, more)


class IniDocument:
    """A microsip.ini (or any Windows ini) that can be read like the profile API and edited in
    place.

    **Usage**::

        doc = IniDocument.load(path)
        doc.get("Settings", "callsLastKey")
        doc.set("Settings", "cmdCallRing", r'"C:\\x\\hook.exe" ring')
        doc.save()
    """

    def __init__(self, lines: list[Line], encoding: IniEncoding, path: Path | None = None) -> None:
        self.lines = lines
        self.encoding = encoding
        self.path = path
        self.modified = False
        self._index: _Index | None = None
        crlf = sum(1 for line in lines if line.eol == "\r\n")
        lf = sum(1 for line in lines if line.eol == "\n")
        # MicroSIP writes CRLF; keep whatever the file mostly uses for the lines we add.
        self.newline = "\n" if lf > crlf else "\r\n"

    # --- loading and saving -------------------------------------------------------------------

    @classmethod
    def from_text(
        cls, text: str, encoding: IniEncoding = IniEncoding.UTF16LE, path: Path | None = None
    ) -> IniDocument:
        with collector_paused():
            return cls([_parse_line(t, e) for t, e in iter_lines(text)], encoding, path)

    @classmethod
    def from_bytes(cls, data: bytes, path: Path | None = None) -> IniDocument:
        text, encoding = decode(data, path)
        return cls.from_text(text, encoding, path)

    @classmethod
    def load(cls, path: Path | str) -> IniDocument:
        path = Path(path)
        # The bytes are dropped once decoded, before the lines are built.
        text, encoding = decode(read_limited(path, MAX_INI_BYTES, "microsip.ini"), path)
        return cls.from_text(text, encoding, path)

    @classmethod
    def new(cls, path: Path | None = None) -> IniDocument:
        """What MicroSIP creates when the ini is missing: UTF-16LE with a BOM and ``[Settings]``."""
        return cls.from_text("[Settings]\r\n", IniEncoding.UTF16LE, path)

    def text(self) -> str:
        return "".join(line.text + line.eol for line in self.lines)

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

    # --- reading --------------------------------------------------------------------------------

    def _lookup(self) -> _Index:
        """The index of sections and keys, built in one pass over the lines and kept until the
        lines are inserted or removed: every lookup is a dict access, not a scan (a document of
        a million lines is read in linear time)."""
        index = self._index
        if index is None or index.size != len(self.lines):
            with collector_paused():
                index = self._index = _Index.build(self.lines)
        return index

    def _changed_lines(self) -> None:
        self._index = None

    def _section_span(self, section: str) -> tuple[int, int] | None:
        """Line indexes [start, end) of the first section with this name (header included)."""
        return self._lookup().spans.get(section.casefold())

    def _key_lines(self, section: str) -> list[int]:
        return self._lookup().key_lines(section.casefold())

    def _find(self, section: str, key: str) -> list[int]:
        return self._lookup().find(section.casefold(), key.casefold())

    def sections(self) -> list[str]:
        """Section names in file order, each name once (as first written)."""
        seen: dict[str, str] = {}
        for line in self.lines:
            if line.kind is LineKind.SECTION:
                seen.setdefault(line.name.casefold(), line.name)
        return list(seen.values())

    def duplicate_sections(self) -> list[str]:
        """Sections written more than once: the profile API reads only the first of them."""
        counts: dict[str, list[str]] = {}
        for line in self.lines:
            if line.kind is LineKind.SECTION:
                counts.setdefault(line.name.casefold(), []).append(line.name)
        return [names[0] for names in counts.values() if len(names) > 1]

    def has_section(self, section: str) -> bool:
        return self._section_span(section) is not None

    def keys(self, section: str) -> list[str]:
        """Key names of the section, each once (the first duplicate's spelling)."""
        seen: dict[str, str] = {}
        for i in self._key_lines(section):
            seen.setdefault(self.lines[i].name.casefold(), self.lines[i].name)
        return list(seen.values())

    def items(self, section: str) -> list[tuple[str, str]]:
        """(key, value) pairs as the profile API reads them: first duplicate wins."""
        seen: dict[str, tuple[str, str]] = {}
        for i in self._key_lines(section):
            line = self.lines[i]
            seen.setdefault(
                line.name.casefold(), (line.name, profile_value(line.text[line.value_at :]))
            )
        return list(seen.values())

    def get_raw(self, section: str, key: str) -> str | None:
        """The value's text as stored: trimmed, quotes kept."""
        found = self._find(section, key)
        if not found:
            return None
        line = self.lines[found[0]]
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
            line = self.lines[found[0]]
            new_text = line.text[: line.value_at] + value
            if new_text != line.text:
                self.lines[found[0]] = _parse_line(new_text, line.eol)
                self.modified = True
            return
        new_line = _parse_line(f"{key}={value}", self.newline)
        span = self._section_span(section)
        if span is None:
            self._terminate_last_line()
            self.lines.append(_parse_line(f"[{section}]", self.newline))
            self.lines.append(new_line)
            self._changed_lines()
        else:
            at = span[1]
            while at - 1 > span[0] and self.lines[at - 1].kind is LineKind.BLANK:
                at -= 1
            prev = self.lines[at - 1]
            if not prev.eol:  # inserting after a last line that has no line end
                prev.eol = self.newline
                new_line.eol = ""
            self.lines.insert(at, new_line)
            self._changed_lines()
        self.modified = True

    def _terminate_last_line(self) -> None:
        if self.lines and not self.lines[-1].eol:
            self.lines[-1].eol = self.newline

    def delete(self, section: str, key: str) -> bool:
        """Remove the key (every duplicate in the section, so no older value shows through)."""
        found = self._find(section, key)
        for i in reversed(found):
            removed = self.lines.pop(i)
            if not removed.eol and i > 0:
                self.lines[i - 1].eol = ""  # keep "no newline at end of file" as it was
        if found:
            self._changed_lines()
            self.modified = True
        return bool(found)

    def remove_section(self, section: str) -> bool:
        """Remove the first section of that name with all its lines."""
        span = self._section_span(section)
        if span is None:
            return False
        last_eol = self.lines[span[1] - 1].eol
        del self.lines[span[0] : span[1]]
        self._changed_lines()
        if span[0] > 0 and span[0] == len(self.lines) and not last_eol:
            self.lines[-1].eol = ""
        self.modified = True
        return True
