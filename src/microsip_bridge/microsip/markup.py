"""CMarkup Lite's reading of XML for MicroSIP's files: a faithful scanner, its limits and refusals.

MicroSIP reads Contacts.xml and directory responses with CMarkup Lite 6.5 (lib/Markup.cpp); this
module reads markup the same way, and :mod:`contacts_xml` and :mod:`directory` apply their files'
own rules to the elements it finds.

**Reading** follows CMarkup's ``x_TextFromDoc``: only ``&lt; &amp; &gt; &apos; &quot; &#39;`` are
decoded; ``&#10;``, ``&#x41;`` and unknown references stay literal text (and are reported), and
attribute values are not whitespace-normalised (an XML parser would turn a newline into a space).
Of repeated attributes the first wins (``x_FindAttrib``). Single- and double-quoted values,
comments, processing instructions and any XML declaration are handled. Writing escapes ``< & > '
"`` and nothing else (``x_TextToDoc``, :func:`encode_attribute`).

**Control characters.** NUL (it ends MicroSIP's C strings), the other C0 controls but tab, LF and
CR, U+FFFE/U+FFFF (XML forbids them) and lone surrogates (UTF-8 cannot encode them) cannot be
stored (:func:`find_unstorable`, :func:`sanitize_text`). When reading, such a character inside an
attribute value is kept and reported as a problem (MicroSIP itself may have written it); NUL
anywhere, or a control character elsewhere, is a format error.

**Hostile or damaged input** gets a one-line error naming the file and line: DTD declarations
(``<!DOCTYPE>``, ``<!ENTITY>``: entity bombs, external entities; nothing is ever expanded), nesting
deeper than ``max_depth`` (checked without recursion) and files over ``max_bytes`` (checked before
reading) raise UnsafeInputError; unterminated tags, comments or elements, mismatched end tags,
malformed attributes, text before the root, UTF-16 and NUL bytes raise FileFormatError. Content
after the root is reported, not read (CMarkup never reads past the root). Of each kind of problem
the first MAX_PROBLEMS are kept and the rest counted (:class:`ProblemLog`), so that a file of
millions of small oddities costs no more memory than an ordinary one.

The scanner is one linear loop over regular-expression tokens with an explicit element stack. It
reads the UTF-8 bytes themselves (checked first by :func:`utf8_error`, a slice at a time), so no
decoded copy of a file is ever made: only names and attribute values are decoded. Its patterns
cannot backtrack (possessive repeats), so a tag of a million quotes is one pass, not seconds and
gigabytes. A start tag's attributes are split at its double quotes and each distinct attribute
layout is validated once per file, which keeps a 100,000-contact file fast. :func:`scan` builds
the element tree; :class:`ChildScan` hands out the root's children one at a time and keeps none.
"""

from __future__ import annotations

import bisect
import codecs
import enum
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from microsip_bridge.errors import BridgeError, FileFormatError, TooLargeError, UnsafeInputError
from microsip_bridge.gcpause import collector_paused

__all__ = [
    "MAX_DEPTH",
    "MAX_PROBLEMS",
    "NAME",
    "UNSTORABLE",
    "ChildScan",
    "Problem",
    "ProblemCode",
    "ProblemLog",
    "XmlDocument",
    "XmlElement",
    "check_bytes",
    "collector_paused",
    "decode_references",
    "encode_attribute",
    "find_unstorable",
    "has_controls",
    "sanitize_text",
    "scan",
    "utf8_error",
]

# MicroSIP's file is two levels deep; 64 leaves room for any directory XML and stops a nesting bomb.
MAX_DEPTH = 64

# --- characters ----------------------------------------------------------------------------------

# What a file CMarkup reads cannot hold (see the module docstring): NUL and the C0 controls but
# tab, LF and CR, the two noncharacters XML excludes, and lone surrogates.
UNSTORABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")
# The same test on UTF-8 bytes (surrogates cannot be in valid UTF-8).
_CONTROL_BYTES = bytes(b for b in range(32) if b not in (9, 10, 13))
_NONCHARACTERS_UTF8 = (b"\xef\xbf\xbe", b"\xef\xbf\xbf")


def find_unstorable(value: str) -> list[tuple[int, str]]:
    """Each character of ``value`` that a CMarkup file cannot store, with its offset."""
    return [(m.start(), m.group()) for m in UNSTORABLE.finditer(value)]


def sanitize_text(value: str, replacement: str = " ") -> str:
    """``value`` with every character a CMarkup file cannot store replaced by ``replacement``.

    Tab, LF and CR are kept: MicroSIP stores them raw and reads them back unchanged.
    """
    return UNSTORABLE.sub(replacement, value)


def has_controls(data: bytes) -> bool:
    """Whether the bytes hold a C0 control other than tab/LF/CR, or U+FFFE/U+FFFF."""
    return len(data.translate(None, _CONTROL_BYTES)) != len(data) or any(
        nc in data for nc in _NONCHARACTERS_UTF8
    )


# --- escaping ------------------------------------------------------------------------------------


def encode_attribute(value: str) -> str:
    """Escape an attribute value exactly as CMarkup's x_TextToDoc does (facts §4.3)."""
    if "&" in value:
        value = value.replace("&", "&amp;")
    if "<" in value:
        value = value.replace("<", "&lt;")
    if ">" in value:
        value = value.replace(">", "&gt;")
    if '"' in value:
        value = value.replace('"', "&quot;")
    if "'" in value:
        value = value.replace("'", "&apos;")
    return value


_REFERENCE = re.compile("&(lt|amp|gt|apos|quot|#39);")
_REFERENCE_CHARS = {"lt": "<", "amp": "&", "gt": ">", "apos": "'", "quot": '"', "#39": "'"}
# A numeric reference CMarkup leaves alone (it only knows &#39;).
_LITERAL_CHARREF = re.compile("&#(?!39;)[0-9xX]")


def _reference_char(m: re.Match[str]) -> str:
    return _REFERENCE_CHARS[m.group(1)]


def decode_references(raw: str) -> str:
    """Decode the six references CMarkup knows, left to right; anything else stays as written."""
    return _REFERENCE.sub(_reference_char, raw) if "&" in raw else raw


# --- problems ------------------------------------------------------------------------------------


class ProblemCode(enum.StrEnum):
    """What a problem found while reading is about."""

    BOM = "bom"
    DECLARED_ENCODING = "declared-encoding"
    NO_NUMBER = "no-number"
    DUPLICATE = "duplicate"
    DUPLICATE_ATTRIBUTE = "duplicate-attribute"
    CHAR_REFERENCE = "char-reference"
    CONTROL_CHARACTER = "control-character"
    IGNORED_ELEMENT = "ignored-element"
    IGNORED_TEXT = "ignored-text"
    AFTER_ROOT = "after-root"


@dataclass(frozen=True, slots=True)
class Problem:
    """Something in a file that MicroSIP reads differently from what its author probably meant."""

    line: int | None
    code: ProblemCode
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}" if self.line is not None else self.message


# A file can hold millions of small oddities (64 MiB of "<a/>" is 16 million ignored elements):
# past this many of one kind, problems are counted, not kept.
MAX_PROBLEMS = 1000


class ProblemLog:
    """Problems in the order found, at most MAX_PROBLEMS of each code; the rest are counted."""

    __slots__ = ("_kept", "_left_out", "_problems")

    def __init__(self, listed: Iterable[Problem] = ()) -> None:
        """``listed``: problems already kept (a :meth:`listed` result), taken as they are."""
        self._problems = list(listed)
        self._kept = Counter(problem.code for problem in self._problems)
        self._left_out: dict[ProblemCode, tuple[int, int | None]] = {}

    def add(self, problem: Problem) -> None:
        code = problem.code
        if self._kept[code] < MAX_PROBLEMS:
            self._kept[code] += 1
            self._problems.append(problem)
        else:
            count, line = self._left_out.get(code, (0, problem.line))
            self._left_out[code] = (count + 1, line)

    def merge(self, other: ProblemLog) -> None:
        """Add what ``other`` kept, and count what it left out."""
        for problem in other._problems:
            self.add(problem)
        for code, (count, line) in other._left_out.items():
            mine, first = self._left_out.get(code, (0, line))
            self._left_out[code] = (mine + count, first)

    def listed(self) -> list[Problem]:
        """The problems kept, then one per code that had more, at the first left out's line."""
        return self._problems + [
            Problem(line, code, f"{count:,} more like those above, from this line on, not listed")
            for code, (count, line) in self._left_out.items()
        ]


# --- the markup scanner --------------------------------------------------------------------------

# A name as the reader accepts it and the writer writes it: an XML name without the rarely used
# characters (CMarkup itself accepts more, but nothing MicroSIP writes needs them).
_NAME_CLASS = "A-Za-z_:\u00c0-\ud7ff\ue000-\ufffd"
_NAME_REST = "-.0-9A-Za-z_:\u00b7\u00c0-\ud7ff\ue000-\ufffd"
NAME = re.compile(f"[{_NAME_CLASS}][{_NAME_REST}]*")

# The scanner reads the document's UTF-8 bytes, not a decoded copy of them: markup is ASCII, so
# tags are found in the bytes and only names and attribute values are decoded. The ASCII
# characters a str pattern's \s matches (it also matches \x1c-\x1f; a bytes pattern's does not):
_SPACE = b"\\t\\n\\x0b\\x0c\\r\\x1c-\\x1f "
# One token: blank text, text, then a tag up to its first ">" (right unless a value holds ">"),
# or the start of a comment, PI, CDATA section or DOCTYPE. A name holding a Unicode space or a
# noncharacter goes to _unicode_tag (a str pattern's \s and those end a name). Every repeat is
# possessive: a pattern that can backtrack over a run of quotes takes quadratic time or memory.
_QUICK_TOKEN = re.compile(
    b"[\\t\\n\\r ]*+([^<]*+)<(?:([^" + _SPACE + b"/>!?<=\"'&\\x00-\\x1f]++)([^>]*+)>"
    b"|/([^>]*+)>|([!?]))"
)
# A start tag's attributes to its real end: quoted values may hold ">". Possessive, so that a
# tag of a million quotes is one linear pass (it took seconds and gigabytes with backtracking).
_ATTRIBUTES_END = re.compile(b"(?:[^>\"']++|\"[^\"]*+\"|'[^']*+')*+>")
_TAG_START = re.compile(b"<([^" + _SPACE + b"/>!?<=\"'&\\x00-\\x1f]++)")
# The same rules on decoded text, for the rare names that are not ASCII.
_STR_TAG = re.compile(r"""<([^\s/>!?<="'&\x00-\x1f\ufffe\uffff]+)([^>]*)>""")
_STR_TAG_START = re.compile(r"""<([^\s/>!?<="'&\x00-\x1f\ufffe\uffff]+)""")
_NAME_BREAK = re.compile("[\\s\ufffe\uffff]")
_END_NAME = re.compile(r"([^\s>]*)\s*")
_NOT_ASCII_SPACE = re.compile(b"[^" + _SPACE + b"]")
_NOT_SPACE = re.compile(r"\S")
# Tags up to this many bytes of attributes take the fast path, and tags with at most this many
# double quotes are split at them: MicroSIP writes about 300 bytes and 34 quotes per contact.
_QUICK_TAG = 1 << 14
_QUICK_QUOTES = 512
# One attribute in a skeleton (the attribute text with every double-quoted value emptied).
_SKELETON_ATTR = re.compile(rf'\s*([{_NAME_CLASS}][{_NAME_REST}]*)\s*=\s*""')
_SKELETON_TAIL = re.compile(r"\s*(/?)")
# The general attribute syntax, for tags with single-quoted values.
_ATTR = re.compile(rf"""\s*([{_NAME_CLASS}][{_NAME_REST}]*)\s*=\s*(?:"([^"]*)"|'([^']*)')""")
_DTD_KEYWORDS = (b"<!DOCTYPE", b"<!ENTITY", b"<!ELEMENT", b"<!ATTLIST", b"<!NOTATION")
_CONTROLS_IN_BYTES = re.compile(b"[\\x01-\\x08\\x0b\\x0c\\x0e-\\x1f]|\\xef\\xbf[\\xbe\\xbf]")
# Caches keyed by what a hostile file can vary stay this small.
_CACHE_SIZE = 1024


class XmlElement:
    """One element as CMarkup sees it: name, attributes (decoded), children, raw content.

    The attributes are kept as parallel ``keys`` and ``values`` (each name once; of repeated ones
    the first, as CMarkup's x_FindAttrib finds it); ``attrs`` is the same as a dict.
    """

    __slots__ = (
        "_attrs",
        "_doc",
        "children",
        "content",
        "keys",
        "line",
        "name",
        "text_at",
        "values",
    )

    def __init__(
        self, name: str, keys: tuple[str, ...], values: list[str], line: int, doc: bytes = b""
    ) -> None:
        self.name = name
        self.keys = keys
        self.values = values
        self.line = line
        self.children: list[XmlElement] = []
        # Byte offsets of the content between the start and end tag in the document; None for
        # <x/>.
        self.content: tuple[int, int] | None = None
        self.text_at: int | None = None  # offset of the first non-blank text directly inside
        self._doc = doc
        self._attrs: dict[str, str] | None = None

    def __repr__(self) -> str:
        return f"<XmlElement {self.name} line {self.line}: {len(self.children)} children>"

    @property
    def text_line(self) -> int | None:
        """The line of the first non-blank text directly inside, if any."""
        return None if self.text_at is None else _line_at(self._doc, self.text_at)

    @property
    def attrs(self) -> dict[str, str]:
        if self._attrs is None:
            self._attrs = dict(zip(self.keys, self.values, strict=True))
        return self._attrs

    @property
    def data(self) -> str:
        """What CMarkup's GetChildData/GetData returns: the raw content with the six references
        decoded, or a leading CDATA section's text; empty for <x/> and for an element with child
        elements (x_GetData)."""
        if self.content is None or self.children:
            return ""
        start, end = self.content
        raw = self._doc[start:end].decode("utf-8")
        stripped = raw.lstrip(" \t\n\r")
        if stripped.startswith("<![CDATA["):
            close = stripped.find("]]>", 9)
            if close != -1:
                return stripped[9:close]
        return decode_references(raw)


@dataclass(slots=True)
class XmlDocument:
    """A scanned document: its root element and the problems found on the way."""

    root: XmlElement
    problems: list[Problem]
    path: Path | None = None


def _line_at(data: bytes, pos: int) -> int:
    return data.count(b"\n", 0, pos) + 1


def _chars(data: bytes, pos: int, count: int, end: int | None = None) -> str:
    """Up to ``count`` characters of the (valid UTF-8) document from byte ``pos`` (to ``end``)."""
    stop = pos + 4 * count if end is None else min(end, pos + 4 * count)
    # Only the last character can be cut short by the slice: "ignore" drops just that.
    return data[pos:stop].decode("utf-8", "ignore")[:count]


def _decode(data: bytes, start: int, end: int) -> str:
    """``data[start:end]`` decoded without a copy of the bytes first (a tag may be megabytes)."""
    return str(memoryview(data)[start:end], "utf-8")


def _first_non_blank(data: bytes, start: int, end: int) -> int | None:
    """The offset of the first character in ``data[start:end]`` that is not whitespace as
    ``str.isspace`` sees it (NBSP and the other Unicode spaces included), or None."""
    while True:
        m = _NOT_ASCII_SPACE.search(data, start, end)
        if m is None:
            return None
        at = m.start()
        lead = data[at]
        if lead < 0x80:
            return at
        size = 2 if lead < 0xE0 else 3 if lead < 0xF0 else 4
        if not data[at : at + size].decode("utf-8").isspace():
            return at
        start = at + size


def _excerpt(text: str, at: int, count: int) -> str:
    """``text[at:].strip()[:count]`` without copying the rest of a long text."""
    m = _NOT_SPACE.search(text, at)
    if m is None:
        return ""
    head = text[m.start() : m.start() + count]
    if _NOT_SPACE.search(text, m.start() + count) is None:
        head = head.rstrip()
    return head


_Shape = tuple[tuple[str, ...], bool, bool]
_SLOW: _Shape = ((), False, False)  # marker: this layout needs the general attribute parser


def _decode_all(values: list[str]) -> list[str]:
    """decode_references() on many values with one pass over their joined text (no value holds
    NUL: parse_markup refuses it). Replacing ``&amp;`` last equals CMarkup's single left-to-right
    pass, because no other replacement yields a character that could start a reference."""
    joined = "\x00".join(values)
    joined = joined.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", '"')
    joined = joined.replace("&apos;", "'").replace("&#39;", "'").replace("&amp;", "&")
    return joined.split("\x00")


class _Scanner:
    """One pass over a document's bytes with an explicit element stack (no recursion).

    ``link``: whether each element is added to its parent's ``children`` (the whole tree) or
    dropped once read (a caller that takes the root's children one by one keeps memory flat).
    """

    def __init__(
        self,
        data: bytes,
        path: Path | None,
        max_depth: int,
        check_controls: bool,
        problems: ProblemLog,
        start: int,
        link: bool,
    ) -> None:
        self.data = data
        self.path = path
        self.max_depth = max_depth
        self.problems = problems
        self.check_controls = check_controls
        self.start = start
        self.link = link
        self.root: XmlElement | None = None
        # Spans of start tags and of ignored nodes (comments, PIs), recorded only when the document
        # holds control characters, to tell a control character in a value from one elsewhere;
        # and the problems of the values that hold one, reported once the rest is known good.
        self.tag_spans: list[tuple[int, int]] = []
        self.ignored_spans: list[tuple[int, int]] = []
        self.value_problems = ProblemLog()
        # Each distinct attribute layout -> (names, self-closing, has repeats), or _SLOW; and the
        # layouts without repeated names, which the scan loop handles inline.
        self.skeletons: dict[str, _Shape] = {}
        self.quick_shapes: dict[str, tuple[tuple[str, ...], bool]] = {}
        self.names: dict[bytes, str] = {}  # ASCII element names, decoded once
        self.end_names: dict[bytes, str | None] = {}
        self.stop_at = len(data)  # where scanning stopped: after the root, nothing is read

    def fail(self, message: str, pos: int, *, unsafe: bool = False) -> BridgeError:
        where = f"line {_line_at(self.data, pos)}"
        cls = UnsafeInputError if unsafe else FileFormatError
        return cls(message, path=self.path, where=where)

    def attributes(
        self, blob: str, element: str, pos: int, line: int
    ) -> tuple[tuple[str, ...], list[str], bool]:
        """The attributes of one start tag and whether it is self-closing (``<x/>``)."""
        if blob.count('"') > _QUICK_QUOTES:  # a run of quotes: the general parser is linear
            return self._attributes_slow(blob, element, pos, line)
        parts = blob.split('"')
        skeleton = '""'.join(parts[0::2])
        shape = self.skeletons.get(skeleton)
        if shape is None:
            shape = self._learn(skeleton) or _SLOW
            if len(self.skeletons) < _CACHE_SIZE:  # a hostile file must not grow this unbounded
                self.skeletons[skeleton] = shape
                if shape is not _SLOW and not shape[2]:
                    self.quick_shapes[skeleton] = shape[:2]
        if shape is _SLOW:
            return self._attributes_slow(blob, element, pos, line)
        keys, closed, repeated = shape
        values = parts[1::2]
        if "&" in blob:
            if "&#" in blob:
                self._note_charrefs(keys, values, element, line)
            values = _decode_all(values)
        if repeated:
            return (*self._first_wins(keys, values, element, line), closed)
        return keys, values, closed

    def _learn(self, skeleton: str) -> _Shape | None:
        """Validate one attribute layout; None when it needs the general parser (single quotes,
        or a syntax error the general parser will report)."""
        keys: list[str] = []
        pos = 0
        n = len(skeleton)
        while True:
            m = _SKELETON_ATTR.match(skeleton, pos)
            if m is None:
                break
            keys.append(m.group(1))
            pos = m.end()
        tail = _SKELETON_TAIL.match(skeleton, pos)
        if tail is None or tail.end() != n:
            return None
        return tuple(keys), tail.group(1) == "/", len(set(keys)) != len(keys)

    def _attributes_slow(
        self, blob: str, element: str, pos: int, line: int
    ) -> tuple[tuple[str, ...], list[str], bool]:
        keys: list[str] = []
        values: list[str] = []
        at = 0
        while True:
            m = _ATTR.match(blob, at)
            if m is None:
                break
            keys.append(m.group(1))
            values.append(m.group(2) if m.group(2) is not None else m.group(3))
            at = m.end()
        tail = _SKELETON_TAIL.match(blob, at)
        if tail is None or tail.end() != len(blob):
            raise self.fail(
                f"malformed attribute syntax in <{element}> near {_excerpt(blob, at, 30)!r}: "
                'expected name="value" pairs',
                pos,
            )
        if "&#" in blob:
            self._note_charrefs(keys, values, element, line)
        values = [decode_references(v) for v in values]
        closed = tail.group(1) == "/"
        if len(set(keys)) != len(keys):
            return (*self._first_wins(keys, values, element, line), closed)
        return tuple(keys), values, closed

    def _first_wins(
        self, keys: Sequence[str], values: Sequence[str], element: str, line: int
    ) -> tuple[tuple[str, ...], list[str]]:
        out: dict[str, str] = {}
        for key, value in zip(keys, values, strict=True):
            if key in out:
                self.problems.add(
                    Problem(
                        line,
                        ProblemCode.DUPLICATE_ATTRIBUTE,
                        f"<{element}> repeats {key!r}; MicroSIP reads the first one",
                    )
                )
            else:
                out[key] = value
        return tuple(out), list(out.values())

    def _note_charrefs(
        self, keys: Sequence[str], values: Sequence[str], element: str, line: int
    ) -> None:
        for key, value in zip(keys, values, strict=True):
            m = _LITERAL_CHARREF.search(value)
            if m:
                ref = value[m.start() : value.find(";", m.start()) + 1 or m.start() + 6]
                self.problems.add(
                    Problem(
                        line,
                        ProblemCode.CHAR_REFERENCE,
                        f"<{element}> {key!r} holds {ref!r}, which MicroSIP shows literally (it "
                        "decodes only &lt; &amp; &gt; &apos; &quot; &#39;)",
                    )
                )

    def _note_controls(self, element: XmlElement) -> None:
        for key, value in zip(element.keys, element.values, strict=True):
            bad = UNSTORABLE.search(value)
            if bad:
                self.value_problems.add(
                    Problem(
                        element.line,
                        ProblemCode.CONTROL_CHARACTER,
                        f"<{element.name}> {key!r} holds U+{ord(bad.group()):04X}, which "
                        "cannot be written back; sanitize_contacts() replaces it",
                    )
                )

    def _special(self, start: int, in_root: bool) -> int:
        """Skip a comment, PI or CDATA section starting at ``start``; return where it ends."""
        data = self.data
        if data.startswith(b"<!--", start):
            end = data.find(b"-->", start + 4)
            if end == -1:
                raise self.fail("unterminated comment <!-- (no -->)", start)
            end += 3
        elif data.startswith(b"<?", start):
            end = data.find(b"?>", start + 2)
            if end == -1:
                raise self.fail("unterminated processing instruction <? (no ?>)", start)
            end += 2
        elif data.startswith(b"<![CDATA[", start):
            if not in_root:
                raise self.fail("CDATA section outside the root element", start)
            end = data.find(b"]]>", start + 9)
            if end == -1:
                raise self.fail("unterminated CDATA section (no ]]>)", start)
            return end + 3  # CDATA is content, not an ignored node
        elif (
            data.startswith(_DTD_KEYWORDS, start) or data[start : start + 9].upper() == b"<!DOCTYPE"
        ):
            raise self.fail(
                "DTD declarations (<!DOCTYPE>, <!ENTITY>) are refused: they can define entity "
                "bombs and external entities, and MicroSIP's files never have one",
                start,
                unsafe=True,
            )
        else:
            raise self.fail(f"unknown markup {_chars(data, start, 12)!r}", start)
        if self.check_controls:
            self.ignored_spans.append((start, end))
        return end

    def _diagnose(self, pos: int) -> BridgeError:
        """Explain why no token matches at ``pos`` (the next '<')."""
        data = self.data
        if data.startswith(b"</", pos):
            return self.fail("unterminated end tag (no >)", pos)
        m = _TAG_START.match(data, pos)
        name = m.group(1).decode("utf-8") if m is not None else None
        if name is not None and not name.isascii():
            found = _STR_TAG_START.match("<" + name)
            name = found.group(1) if found is not None else None
        if name is None:
            return self.fail(f"invalid tag {_chars(data, pos, 12)!r}", pos)
        return self.fail(f"unterminated tag <{name} (no closing >, or an open quote)", pos)

    def _name(self, raw: bytes) -> str | None:
        """The element name ``raw``, decoded (and remembered); None when the str rules would end
        it sooner (at a Unicode space or a noncharacter): _unicode_tag then reads the tag."""
        name = raw.decode("utf-8")
        if not name.isascii() and _NAME_BREAK.search(name):
            return None
        if len(self.names) < _CACHE_SIZE:
            self.names[raw] = name
        return name

    def _unicode_tag(self, lt: int, gt: int) -> tuple[str, str] | None:
        """A start tag whose name is not ASCII, read with the str rules: (name, attribute
        text up to the first ">", at ``gt``), or None when it is no start tag."""
        m = _STR_TAG.match(_decode(self.data, lt, gt + 1))
        return None if m is None else (m.group(1), m.group(2))

    def _end_name(self, raw: bytes) -> str | None:
        """The name of an end tag ``</raw>``, read as ``[^\\s>]*\\s*``; None if it is none."""
        if raw in self.end_names:
            return self.end_names[raw]
        m = _END_NAME.fullmatch(raw.decode("utf-8"))
        name = None if m is None else m.group(1)
        if len(self.end_names) < _CACHE_SIZE:
            self.end_names[raw] = name
        return name

    def _no_token(self, pos: int, stack: list[XmlElement], root: XmlElement | None) -> None:
        """What is left at ``pos`` is no token: text to the end, or an error."""
        lt = self.data.find(b"<", pos)
        if lt == -1:
            self._text(pos, len(self.data), stack, root)
        elif root is not None and not stack:
            self._after_root(lt)  # CMarkup never looks past the root
        else:
            raise self._diagnose(lt)

    def run(self) -> Iterator[XmlElement]:
        """Scan the document; yields each child of the root as soon as its start tag is read."""
        data = self.data
        quick = _QUICK_TOKEN.match
        quick_shapes = self.quick_shapes
        names = self.names
        max_depth = self.max_depth
        check_controls = self.check_controls
        link = self.link
        stack: list[XmlElement] = []
        root: XmlElement | None = None
        pos = self.start
        line = 1
        line_pos = 0
        while True:
            m = quick(data, pos)
            if m is None:
                self._no_token(pos, stack, root)
                break
            text_at, lt = m.span(1)
            name_b, end_b = m.group(2, 4)
            name = end_name = blob = None
            if name_b is not None:
                attrs_at, gt = m.span(3)
                name = names.get(name_b) or self._name(name_b)
                if name is None:
                    tag = self._unicode_tag(lt, gt)
                    if tag is None:
                        self._no_token(pos, stack, root)
                        break
                    name, blob = tag
                    attrs_at = lt + 1 + len(name.encode("utf-8"))
            elif end_b is not None:
                end_name = self._end_name(end_b)
                if end_name is None:
                    self._no_token(pos, stack, root)
                    break
            if text_at != lt and self._text(text_at, lt, stack, root):
                break
            if name is not None:
                line += data.count(b"\n", line_pos, lt)
                line_pos = lt
                if not stack and root is not None:
                    self._after_root(lt)
                    break
                if len(stack) >= max_depth:
                    raise self.fail(
                        f"elements nested deeper than {max_depth} levels are refused",
                        lt,
                        unsafe=True,
                    )
                # The common case inline: paired double quotes in a layout already validated.
                known = None
                if gt - attrs_at <= _QUICK_TAG:
                    if blob is None:
                        blob = data[attrs_at:gt].decode("utf-8")
                    parts = blob.split('"')
                    if len(parts) & 1:
                        known = quick_shapes.get('""'.join(parts[0::2]))
                    if known is not None:
                        keys, closed = known
                        values = parts[1::2]
                        if "&" in blob:
                            if "&#" in blob:
                                self._note_charrefs(keys, values, name, line)
                            values = _decode_all(values)
                        pos = m.end()
                if known is None:
                    full = _ATTRIBUTES_END.match(data, attrs_at)
                    if full is None:
                        raise self._diagnose(lt)
                    pos = full.end()
                    if blob is None or pos != m.end():  # long, or a quoted value holds ">"
                        blob = _decode(data, attrs_at, pos - 1)
                    keys, values, closed = self.attributes(blob, name, lt, line)
                if check_controls:
                    self.tag_spans.append((lt, pos))
                element = XmlElement(name, keys, values, line, data)
                if check_controls:
                    self._note_controls(element)
                if stack:
                    if link:
                        stack[-1].children.append(element)
                    if len(stack) == 1:
                        yield element
                else:
                    root = self.root = element
                if not closed:
                    element.content = (pos, pos)
                    stack.append(element)
            elif end_name is not None:
                if not stack:
                    raise self.fail(f"end tag </{end_name}> without a start tag", lt)
                top = stack.pop()
                if top.name != end_name:
                    raise self.fail(
                        f"</{end_name}> does not close <{top.name}> (opened at line {top.line})",
                        lt,
                    )
                assert top.content is not None
                top.content = (top.content[0], lt)
                pos = m.end()
            elif root is not None and not stack:
                # After the root: comments and PIs are fine; anything else MicroSIP ignores.
                try:
                    if data.startswith(b"<![CDATA[", lt):
                        raise self.fail("CDATA after the root", lt)
                    pos = self._special(lt, False)
                except BridgeError:
                    self._after_root(lt)
                    break
            else:
                pos = self._special(lt, bool(stack))
        if stack:
            top = stack[-1]
            raise FileFormatError(
                f"<{top.name}> opened at line {top.line} is never closed (the file is truncated?)",
                path=self.path,
                where=f"line {_line_at(data, len(data))}",
            )
        if root is None:
            raise FileFormatError("no root element: this is not an XML file", path=self.path)
        if check_controls:
            self._check_control_positions()

    def _text(self, start: int, end: int, stack: list[XmlElement], root: XmlElement | None) -> bool:
        """Handle the non-markup text ``data[start:end]``; returns True when scanning should stop
        (text after the root)."""
        at = _first_non_blank(self.data, start, end)
        if at is None:
            return False
        if stack:
            top = stack[-1]
            if top.text_at is None:
                top.text_at = at
            return False
        if root is None:
            head = _chars(self.data, at, 20, end)  # as text.strip()[:20], without the copy
            if _first_non_blank(self.data, at + len(head.encode("utf-8")), end) is None:
                head = head.rstrip()
            raise self.fail(f"text {head!r} before the root element: not an XML file", at)
        self._after_root(at)
        return True

    def _after_root(self, pos: int) -> None:
        self.stop_at = pos
        self.problems.add(
            Problem(
                _line_at(self.data, pos),
                ProblemCode.AFTER_ROOT,
                "content after the root element is ignored (MicroSIP reads nothing after it, "
                "and drops it when it saves)",
            )
        )

    def _check_control_positions(self) -> None:
        """Controls inside attribute values become problems; anywhere else they are errors."""
        tags = self.tag_spans
        starts = [s for s, _ in tags]
        ignored = self.ignored_spans
        ignored_starts = [s for s, _ in ignored]
        for m in _CONTROLS_IN_BYTES.finditer(self.data, self.start, self.stop_at):
            p = m.start()
            i = bisect.bisect_right(starts, p) - 1
            if i >= 0 and tags[i][0] <= p < tags[i][1]:
                continue
            j = bisect.bisect_right(ignored_starts, p) - 1
            if j >= 0 and ignored[j][0] <= p < ignored[j][1]:
                continue
            raise self.fail(
                f"control character U+{ord(m.group().decode('utf-8')):04X} outside an attribute "
                "value: XML forbids it",
                p,
            )
        self.problems.merge(self.value_problems)


def check_bytes(data: bytes, where: Path | None, max_bytes: int) -> None:
    """Refuse bytes no scan should start on: over ``max_bytes``, UTF-16, or holding NUL."""
    if len(data) > max_bytes:
        raise TooLargeError(f"is {len(data):,} bytes, over the limit of {max_bytes:,}", path=where)
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise FileFormatError(
            "is UTF-16; MicroSIP reads Contacts.xml as UTF-8 only: save it as UTF-8", path=where
        )
    nul = data.find(b"\x00")
    if nul != -1:
        line = data.count(b"\n", 0, nul) + 1
        raise FileFormatError(
            "contains a NUL byte (binary data, or UTF-16 without a byte-order mark); "
            "MicroSIP would stop reading there",
            path=where,
            where=f"line {line}",
        )


# Validated in slices, so that checking a big file never holds a decoded copy of it.
_UTF8_SLICE = 1 << 20


def utf8_error(data: bytes, start: int = 0) -> UnicodeDecodeError | None:
    """The error of decoding ``data[start:]`` as UTF-8 (offsets into ``data``), or None."""
    view = memoryview(data)
    pos = start
    end = len(data)
    while pos < end:
        stop = min(pos + _UTF8_SLICE, end)
        try:
            _, used = codecs.utf_8_decode(view[pos:stop], "strict", stop == end)
        except UnicodeDecodeError as exc:
            return UnicodeDecodeError("utf-8", data, pos + exc.start, pos + exc.end, exc.reason)
        pos += used
    return None


def scan(
    data: bytes,
    where: Path | None,
    max_depth: int,
    problems: ProblemLog,
    controls: bool,
    start: int = 0,
) -> XmlDocument:
    """The element tree of a document, with CMarkup's reading rules.

    ``data`` is valid UTF-8 (see :func:`utf8_error`) from byte ``start`` (after a BOM);
    ``problems`` holds those found on the way here (decoding) and receives the scanner's;
    ``controls`` says whether the bytes hold a control character (:func:`has_controls`), which
    turns on the checks of where each one is. Raises UnsafeInputError (DOCTYPE, too deep) or
    FileFormatError (everything else), each naming the file and line.
    """
    scanner = _Scanner(data, where, max_depth, controls, problems, start, link=True)
    for _ in scanner.run():
        pass
    assert scanner.root is not None
    return XmlDocument(scanner.root, problems.listed(), where)


class ChildScan:
    """A document scanned for its root's children one at a time, in constant memory per child.

    Iterating it (once) scans the whole document (see :func:`scan` for the arguments and the
    errors) and yields each child of the root when its start tag has been read; the children are
    not kept, nor linked to the root. Afterwards ``root`` is the root element, without children,
    and ``problems`` holds everything found.
    """

    def __init__(
        self,
        data: bytes,
        where: Path | None,
        max_depth: int,
        problems: ProblemLog,
        controls: bool,
        start: int = 0,
    ) -> None:
        self.problems = problems
        self._scanner = _Scanner(data, where, max_depth, controls, problems, start, link=False)

    def __iter__(self) -> Iterator[XmlElement]:
        return self._scanner.run()

    @property
    def root(self) -> XmlElement:
        if self._scanner.root is None:
            raise RuntimeError("the document has not been scanned yet")
        return self._scanner.root
