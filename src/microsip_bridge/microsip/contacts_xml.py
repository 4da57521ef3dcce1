"""Contacts.xml read and written exactly the way MicroSIP's CMarkup Lite does (facts §4).

**Writing** follows CMarkup Lite 6.5 (lib/Markup.cpp ``x_AddElem``, ``x_SetAttrib``,
``x_TextToDoc``; facts §4.2, §4.3)::

    <?xml version="1.0"?>CRLF
    <contacts>CRLF
    <contact name="..." number="..." ... presence="0" starred="0" directory="0"/>CRLF
    </contacts>CRLF

one line per contact, no space before ``/>``, the 17 attributes of 3.22 in MicroSIP's order, then
the unknown ones; an empty list is ``<contacts/>`` CRLF, because CMarkup only splits an empty
element when a child is added. UTF-8 without a BOM. Values escape ``< & > ' "`` as ``&lt; &amp; &gt;
&apos; &quot;`` and nothing else. (The corpus' real-mrsz-microtalk-empty file, with ``<contacts>``
CRLF ``</contacts>``, comes from the CXMLFile writer of a 3.11 fork, like 3.19's; see
tests/data/contacts-3.19.xml.)

**Reading** follows CMarkup's ``x_TextFromDoc``: only ``&lt; &amp; &gt; &apos; &quot; &#39;`` are
decoded; ``&#10;``, ``&#x41;`` and unknown references stay literal text, and attribute values are
not whitespace-normalised (an XML parser would turn a newline into a space). Attributes are found by
name, so their order does not matter and a missing one is empty; of repeated attributes the first
wins (``x_FindAttrib``). Flags are on only when exactly ``"1"``. Single- and double-quoted values,
comments (commented-out contacts included), processing instructions and any XML declaration are
handled.

**Control characters.** Tab, LF and CR are written raw, as CMarkup does, and read back verbatim, so
MicroSIP sees the very same string. NUL (it ends MicroSIP's C strings: the rest of the value or
file vanishes), the other C0 controls and U+FFFE/U+FFFF (XML forbids them), and lone surrogates
(UTF-8 cannot encode them) cannot be stored: the writer raises UnsafeInputError naming the contact
and attribute. Importers clean text first with :func:`sanitize_text` or
:func:`sanitize_contacts`, which replace each such character with a space and list what they
replaced. When reading, such a character inside an attribute value is kept and reported as a
problem (MicroSIP itself may have written it); NUL anywhere, or a control character elsewhere, is a
format error.

**Hostile or damaged input** gets a one-line error naming the file and line: DTD declarations
(``<!DOCTYPE>``, ``<!ENTITY>``: entity bombs, external entities; nothing is ever expanded), nesting
deeper than ``max_depth`` (checked without recursion) and files over ``max_bytes`` (checked before
reading) raise UnsafeInputError; unterminated tags, comments or elements, mismatched end tags,
malformed attributes, text before the root, a root other than ``<contacts>`` and invalid UTF-8
raise FileFormatError. Where CMarkup is lenient and the file still means something, we warn in
``ContactsFile.problems`` instead: a UTF-8 BOM, content after ``</contacts>`` (CMarkup never reads
past the root), elements other than ``<contact>`` and text inside the root, contacts without a
number (MicroSIP skips them on load), repeated (number, name) pairs, numeric references.

The scanner is one linear loop over regular-expression tokens with an explicit element stack. A
start tag's attributes are split at its double quotes and each distinct attribute layout is
validated once per file, which keeps a 100,000-contact file fast.
"""

from __future__ import annotations

import bisect
import codecs
import contextlib
import enum
import gc
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import chain
from operator import attrgetter, itemgetter
from pathlib import Path
from typing import Any, BinaryIO

from microsip_bridge.errors import (
    BridgeError,
    FileFormatError,
    MicroSIPRunningError,
    NotFoundError,
    UnsafeInputError,
)
from microsip_bridge.fileio import DEFAULT_BACKUPS, atomic_write
from microsip_bridge.microsip import textcodec
from microsip_bridge.microsip.contact import (
    ATTRIBUTES,
    FLAG_FIELDS,
    TEXT_FIELDS,
    Contact,
    prepared_name,
)

__all__ = [
    "DECLARATION",
    "MAX_CONTACTS_BYTES",
    "MAX_DEPTH",
    "ContactsFile",
    "Problem",
    "ProblemCode",
    "Replacement",
    "XmlDocument",
    "XmlElement",
    "check_storable",
    "collector_paused",
    "contacts_from_document",
    "decode_references",
    "encode_attribute",
    "find_unstorable",
    "parse_contacts",
    "parse_markup",
    "prepare_contact",
    "prepared_name",
    "read_contacts",
    "read_contacts_stream",
    "sanitize_contacts",
    "sanitize_text",
    "serialize_contact_elements",
    "serialize_contacts",
    "write_contacts",
]

# A Contacts.xml holds a few hundred bytes per contact: 64 MiB is ~200,000 contacts, far beyond any
# phone book, and small enough to hold in memory a few times over.
MAX_CONTACTS_BYTES = 64 * 1024 * 1024
# MicroSIP's file is two levels deep; 64 leaves room for any directory XML and stops a nesting bomb.
MAX_DEPTH = 64
DECLARATION = '<?xml version="1.0"?>\r\n'

# --- characters ----------------------------------------------------------------------------------

# What Contacts.xml cannot hold (see the module docstring): NUL and the C0 controls but tab, LF
# and CR, the two noncharacters XML excludes, and lone surrogates.
_UNSTORABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")
# The same test on UTF-8 bytes (surrogates cannot be in valid UTF-8).
_CONTROL_BYTES = bytes(b for b in range(32) if b not in (9, 10, 13))
_NONCHARACTERS_UTF8 = (b"\xef\xbf\xbe", b"\xef\xbf\xbf")
_CONTROLS_IN_TEXT = re.compile("[\x01-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_TEXT_GETTER = attrgetter(*TEXT_FIELDS)
_KNOWN = frozenset(ATTRIBUTES)


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector during bulk work.

    Reading or writing 100,000 contacts allocates several hundred thousand containers, and every
    few hundred allocations the collector walks the young ones (and, ever more often, all of them)
    looking for cycles that this code never creates. Pausing it halves the time of a large load.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        # Everything allocated meanwhile sits in the youngest generation, and re-enabling would
        # make the very next allocation walk all of it (0.1 s for 100,000 contacts). Freezing
        # and unfreezing moves it straight to the oldest generation instead; nothing is lost:
        # unfrozen objects are collected as usual.
        gc.freeze()
        gc.unfreeze()
        gc.enable()


def find_unstorable(value: str) -> list[tuple[int, str]]:
    """Each character of ``value`` that Contacts.xml cannot store, with its offset."""
    return [(m.start(), m.group()) for m in _UNSTORABLE.finditer(value)]


def sanitize_text(value: str) -> str:
    """``value`` with every character Contacts.xml cannot store replaced by a space.

    Tab, LF and CR are kept: MicroSIP stores them raw and reads them back unchanged.
    """
    return _UNSTORABLE.sub(" ", value)


@dataclass(frozen=True, slots=True)
class Replacement:
    """One character that sanitize_contacts() replaced with a space."""

    index: int  # position of the contact in the list, 0-based
    attribute: str
    offset: int  # offset of the character in the attribute's value
    char: str

    def __str__(self) -> str:
        return (
            f"contact {self.index + 1}: {self.attribute!r} had U+{ord(self.char):04X} at offset "
            f"{self.offset}, replaced with a space"
        )


def sanitize_contacts(contacts: Iterable[Contact]) -> tuple[list[Contact], list[Replacement]]:
    """Copies of ``contacts`` that Contacts.xml can store, and the list of what was replaced.

    Contacts that need no change are returned as they are (not copied).
    """
    out: list[Contact] = []
    replaced: list[Replacement] = []
    for index, contact in enumerate(contacts):
        changes: dict[str, object] = {}
        extra: dict[str, str] | None = None
        for attribute, value in _text_items(contact):
            bad = find_unstorable(value)
            if not bad:
                continue
            replaced.extend(Replacement(index, attribute, off, ch) for off, ch in bad)
            clean = sanitize_text(value)
            if attribute in TEXT_FIELDS:
                changes[attribute] = clean
            else:
                if extra is None:
                    extra = dict(contact.extra)
                extra[attribute] = clean
        if extra is not None:
            changes["extra"] = extra
        out.append(contact.replace(**changes) if changes else contact)
    return out, replaced


def _text_items(contact: Contact) -> Iterable[tuple[str, str]]:
    for name in TEXT_FIELDS:
        yield name, getattr(contact, name)
    yield from contact.extra.items()


def _describe(index: int, contact: Contact) -> str:
    who = f"contact {index + 1}"
    if contact.number or contact.name:
        who += f" ({contact.name!r}, number {contact.number!r})"
    return who


def check_storable(contacts: Sequence[Contact]) -> None:
    """Raise UnsafeInputError for the first value Contacts.xml cannot store, or a bad extra name."""
    with_extra = [(i, c) for i, c in enumerate(contacts) if c.extra]
    # One search over all the text first (LF joins the values: it is storable); the walk that
    # names the culprit runs only when something is there.
    values = chain(
        chain.from_iterable(map(_TEXT_GETTER, contacts)),
        (value for _, c in with_extra for value in c.extra.values()),
    )
    if _UNSTORABLE.search("\n".join(values)) is not None:
        for index, contact in enumerate(contacts):
            for attribute, value in _text_items(contact):
                bad = find_unstorable(value)
                if bad:
                    offset, ch = bad[0]
                    raise UnsafeInputError(
                        f"{_describe(index, contact)}: {attribute!r} holds U+{ord(ch):04X} at "
                        f"offset {offset}, which Contacts.xml cannot store (NUL ends MicroSIP's "
                        "strings, XML forbids the other control characters); clean it with "
                        "sanitize_text()"
                    )
    for index, contact in with_extra:
        for name in contact.extra:
            if name not in _KNOWN and not _NAME.fullmatch(name):
                raise UnsafeInputError(
                    f"{_describe(index, contact)}: {name!r} is not a valid XML attribute name"
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


# --- problems and the result ---------------------------------------------------------------------


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


@dataclass(slots=True)
class ContactsFile:
    """The contacts of a Contacts.xml, in file order, with what was odd about the file.

    ``contacts`` holds every ``<contact>`` child of the root, including those MicroSIP skips
    because their ``number`` is empty (see :meth:`loaded_by_microsip`), so that a load and save
    loses nothing. ``lines[i]`` is the line of ``contacts[i]``'s tag.
    """

    contacts: list[Contact]
    problems: list[Problem] = field(default_factory=list)
    path: Path | None = None
    lines: list[int] = field(default_factory=list)

    def loaded_by_microsip(self) -> list[Contact]:
        """The contacts MicroSIP loads: ContactsLoad skips those whose ``number`` is empty."""
        return [c for c in self.contacts if c.number]

    def save(
        self,
        path: Path | str | None = None,
        *,
        backups: int = DEFAULT_BACKUPS,
        microsip_running: bool | None = None,
        force: bool = False,
    ) -> Path | None:
        """Write the contacts back (see :func:`write_contacts`); returns the backup's path."""
        target = Path(path) if path is not None else self.path
        if target is None:
            raise BridgeError("the contacts have no path to save to")
        backup = write_contacts(
            target,
            self.contacts,
            backups=backups,
            microsip_running=microsip_running,
            force=force,
        )
        self.path = target
        return backup


# --- the markup scanner --------------------------------------------------------------------------

# A name as the reader accepts it and the writer writes it: an XML name without the rarely used
# characters (CMarkup itself accepts more, but nothing MicroSIP writes needs them).
_NAME_CLASS = "A-Za-z_:\u00c0-\ud7ff\ue000-\ufffd"
_NAME_REST = "-.0-9A-Za-z_:\u00b7\u00c0-\ud7ff\ue000-\ufffd"
_NAME = re.compile(f"[{_NAME_CLASS}][{_NAME_REST}]*")

_TOKEN = re.compile(
    r"""
    ([^<]*)                                               # 1: text before the markup
    <(?:
        ([^\s/>!?<="'&\x00-\x1f\ufffe\uffff]+)            # 2: start tag name
        ([^>"']*(?:(?:"[^"]*"|'[^']*')[^>"']*)*)          # 3: attributes (quotes respected)
        >
      | /([^\s>]*)\s*>                                    # 4: end tag name
      | ([!?])                                            # 5: comment, PI, CDATA, DOCTYPE
    )""",
    re.VERBOSE,
)
# The same tokens with a start tag taken up to its first ">": much faster, and right unless a value
# holds ">" (then the quotes do not pair up, and the scanner falls back to _TOKEN).
_QUICK_TOKEN = re.compile(
    r"""\s*([^<]*)<(?:([^\s/>!?<="'&\x00-\x1f\ufffe\uffff]+)([^>]*)>|/([^\s>]*)\s*>|([!?]))"""
)
# One attribute in a skeleton (the attribute text with every double-quoted value emptied).
_SKELETON_ATTR = re.compile(rf'\s*([{_NAME_CLASS}][{_NAME_REST}]*)\s*=\s*""')
_SKELETON_TAIL = re.compile(r"\s*(/?)")
# The general attribute syntax, for tags with single-quoted values.
_ATTR = re.compile(rf"""\s*([{_NAME_CLASS}][{_NAME_REST}]*)\s*=\s*(?:"([^"]*)"|'([^']*)')""")
_DECLARED_ENCODING = re.compile(
    rb"""^(?:\xef\xbb\xbf)?\s*<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._-]+)["']"""
)
_TAG_START = re.compile("<([^\\s/>!?<=\"'&\x00-\x1f\ufffe\uffff]+)")
_DTD_KEYWORDS = ("<!DOCTYPE", "<!ENTITY", "<!ELEMENT", "<!ATTLIST", "<!NOTATION")


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
        self, name: str, keys: tuple[str, ...], values: list[str], line: int, doc: str = ""
    ) -> None:
        self.name = name
        self.keys = keys
        self.values = values
        self.line = line
        self.children: list[XmlElement] = []
        # Offsets of the content between the start and end tag in the document; None for <x/>.
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
        raw = self._doc[start:end]
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


def _line_at(text: str, pos: int) -> int:
    return text.count("\n", 0, pos) + 1


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
    """One pass over a document's text; builds the element tree without recursion."""

    def __init__(self, text: str, path: Path | None, max_depth: int, check_controls: bool):
        self.text = text
        self.path = path
        self.max_depth = max_depth
        self.problems: list[Problem] = []
        self.check_controls = check_controls
        # Spans of start tags and of ignored nodes (comments, PIs), recorded only when the document
        # holds control characters, to tell a control character in a value from one elsewhere.
        self.tag_spans: list[tuple[int, int]] = []
        self.ignored_spans: list[tuple[int, int]] = []
        # Each distinct attribute layout -> (names, self-closing, has repeats), or _SLOW; and the
        # layouts without repeated names, which the scan loop handles inline.
        self.skeletons: dict[str, _Shape] = {}
        self.quick_shapes: dict[str, tuple[tuple[str, ...], bool]] = {}
        self.stop_at = len(text)  # where scanning stopped: after the root, nothing is read

    def fail(self, message: str, pos: int, *, unsafe: bool = False) -> BridgeError:
        where = f"line {_line_at(self.text, pos)}"
        cls = UnsafeInputError if unsafe else FileFormatError
        return cls(message, path=self.path, where=where)

    def attributes(
        self, blob: str, element: str, pos: int, line: int
    ) -> tuple[tuple[str, ...], list[str], bool]:
        """The attributes of one start tag and whether it is self-closing (``<x/>``)."""
        parts = blob.split('"')
        skeleton = '""'.join(parts[0::2])
        shape = self.skeletons.get(skeleton)
        if shape is None:
            shape = self._learn(skeleton) or _SLOW
            if len(self.skeletons) < 1024:  # a hostile file must not grow this without bound
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
            near = blob[at:].strip()[:30]
            raise self.fail(
                f"malformed attribute syntax in <{element}> near {near!r}: expected "
                'name="value" pairs',
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
                self.problems.append(
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
                self.problems.append(
                    Problem(
                        line,
                        ProblemCode.CHAR_REFERENCE,
                        f"<{element}> {key!r} holds {ref!r}, which MicroSIP shows literally (it "
                        "decodes only &lt; &amp; &gt; &apos; &quot; &#39;)",
                    )
                )

    def _special(self, start: int, in_root: bool) -> int:
        """Skip a comment, PI or CDATA section starting at ``start``; return where it ends."""
        text = self.text
        if text.startswith("<!--", start):
            end = text.find("-->", start + 4)
            if end == -1:
                raise self.fail("unterminated comment <!-- (no -->)", start)
            end += 3
        elif text.startswith("<?", start):
            end = text.find("?>", start + 2)
            if end == -1:
                raise self.fail("unterminated processing instruction <? (no ?>)", start)
            end += 2
        elif text.startswith("<![CDATA[", start):
            if not in_root:
                raise self.fail("CDATA section outside the root element", start)
            end = text.find("]]>", start + 9)
            if end == -1:
                raise self.fail("unterminated CDATA section (no ]]>)", start)
            return end + 3  # CDATA is content, not an ignored node
        elif (
            text.startswith(_DTD_KEYWORDS, start) or text[start : start + 9].upper() == "<!DOCTYPE"
        ):
            raise self.fail(
                "DTD declarations (<!DOCTYPE>, <!ENTITY>) are refused: they can define entity "
                "bombs and external entities, and MicroSIP's files never have one",
                start,
                unsafe=True,
            )
        else:
            raise self.fail(f"unknown markup {text[start : start + 12]!r}", start)
        if self.check_controls:
            self.ignored_spans.append((start, end))
        return end

    def _diagnose(self, pos: int) -> BridgeError:
        """Explain why no token matches at ``pos`` (the next '<')."""
        text = self.text
        if text.startswith("</", pos):
            return self.fail("unterminated end tag (no >)", pos)
        m = _TAG_START.match(text, pos)
        if m is None:
            return self.fail(f"invalid tag {text[pos : pos + 12]!r}", pos)
        return self.fail(f"unterminated tag <{m.group(1)} (no closing >, or an open quote)", pos)

    def scan(self) -> XmlElement:
        text = self.text
        quick = _QUICK_TOKEN.match
        quick_shapes = self.quick_shapes
        max_depth = self.max_depth
        check_controls = self.check_controls
        stack: list[XmlElement] = []
        root: XmlElement | None = None
        pos = 0
        line = 1
        line_pos = 0
        while True:
            m = quick(text, pos)
            if m is None:
                lt = text.find("<", pos)
                if lt == -1:
                    self._text(text[pos:], pos, stack, root)
                elif root is not None and not stack:
                    self._after_root(lt)  # CMarkup never looks past the root
                else:
                    raise self._diagnose(lt)
                break
            chunk, name, blob, end_name, _ = m.groups()
            lt = m.end(1)
            if chunk and self._text(chunk, m.start(1), stack, root):
                break
            if name is not None:
                line += text.count("\n", line_pos, lt)
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
                parts = blob.split('"')
                known = quick_shapes.get('""'.join(parts[0::2]))
                if known is not None and len(parts) & 1:
                    keys, closed = known
                    values = parts[1::2]
                    if "&" in blob:
                        if "&#" in blob:
                            self._note_charrefs(keys, values, name, line)
                        values = _decode_all(values)
                    pos = m.end()
                else:
                    full = _TOKEN.match(text, lt)
                    if full is None:
                        raise self._diagnose(lt)
                    keys, values, closed = self.attributes(full.group(3), name, lt, line)
                    pos = full.end()
                if check_controls:
                    self.tag_spans.append((lt, pos))
                element = XmlElement(name, keys, values, line, text)
                if stack:
                    stack[-1].children.append(element)
                else:
                    root = element
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
                    if text.startswith("<![CDATA[", lt):
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
                where=f"line {_line_at(text, len(text))}",
            )
        if root is None:
            raise FileFormatError("no root element: this is not an XML file", path=self.path)
        return root

    def _text(self, chunk: str, pos: int, stack: list[XmlElement], root: XmlElement | None) -> bool:
        """Handle non-markup text at ``pos``; returns True when scanning should stop (text after
        the root)."""
        offset = len(chunk) - len(chunk.lstrip())
        if offset == len(chunk):
            return False
        if stack:
            top = stack[-1]
            if top.text_at is None:
                top.text_at = pos + offset
            return False
        if root is None:
            raise self.fail(
                f"text {chunk.strip()[:20]!r} before the root element: not an XML file",
                pos + offset,
            )
        self._after_root(pos + offset)
        return True

    def _after_root(self, pos: int) -> None:
        self.stop_at = pos
        self.problems.append(
            Problem(
                _line_at(self.text, pos),
                ProblemCode.AFTER_ROOT,
                "content after the root element is ignored (MicroSIP reads nothing after it, "
                "and drops it when it saves)",
            )
        )

    def check_control_positions(self, root: XmlElement) -> None:
        """Controls inside attribute values become problems; anywhere else they are errors."""
        tags = self.tag_spans
        starts = [s for s, _ in tags]
        ignored = self.ignored_spans
        ignored_starts = [s for s, _ in ignored]
        for m in _CONTROLS_IN_TEXT.finditer(self.text, 0, self.stop_at):
            p = m.start()
            i = bisect.bisect_right(starts, p) - 1
            if i >= 0 and tags[i][0] <= p < tags[i][1]:
                continue
            j = bisect.bisect_right(ignored_starts, p) - 1
            if j >= 0 and ignored[j][0] <= p < ignored[j][1]:
                continue
            raise self.fail(
                f"control character U+{ord(m.group()):04X} outside an attribute value: "
                "XML forbids it",
                p,
            )
        pending = [root]
        while pending:
            element = pending.pop()
            pending.extend(reversed(element.children))
            for key, value in zip(element.keys, element.values, strict=True):
                bad = find_unstorable(value)
                if bad:
                    self.problems.append(
                        Problem(
                            element.line,
                            ProblemCode.CONTROL_CHARACTER,
                            f"<{element.name}> {key!r} holds U+{ord(bad[0][1]):04X}, which "
                            "cannot be written back; sanitize_contacts() replaces it",
                        )
                    )


def _is_utf8(encoding: str) -> bool:
    try:
        return codecs.lookup(encoding).name == "utf-8"
    except LookupError:  # a name Python does not know is not UTF-8 either
        return False


def _decode(data: bytes, path: Path | None) -> tuple[str, list[Problem]]:
    """UTF-8, as MicroSIP reads it whatever the declaration says; a UTF-8 BOM is skipped."""
    problems: list[Problem] = []
    # CMarkup knows only UTF-8's mark; UTF-16's were refused before (_check_bytes).
    bom, body = textcodec.split_bom(data, (textcodec.UTF8_BOM,))
    if bom is not None:
        problems.append(
            Problem(
                1,
                ProblemCode.BOM,
                "starts with a UTF-8 BOM; MicroSIP skips it, and drops it when it saves",
            )
        )
    declared = _DECLARED_ENCODING.match(data)
    declared_name = declared.group(1).decode("ascii") if declared else None
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        bad_at = exc.start + (len(data) - len(body))
        line = data.count(b"\n", 0, bad_at) + 1
        hint = ""
        if declared_name and not _is_utf8(declared_name):
            hint = f" (it declares {declared_name!r}, but MicroSIP reads only UTF-8)"
        raise FileFormatError(
            f"invalid UTF-8 (byte 0x{data[bad_at]:02X}){hint}", path=path, where=f"line {line}"
        ) from exc
    if declared_name and not _is_utf8(declared_name):
        problems.append(
            Problem(
                1,
                ProblemCode.DECLARED_ENCODING,
                f"declares encoding {declared_name!r}; MicroSIP ignores that and reads UTF-8",
            )
        )
    return text, problems


def parse_markup(
    data: bytes,
    path: Path | str | None = None,
    *,
    max_bytes: int = MAX_CONTACTS_BYTES,
    max_depth: int = MAX_DEPTH,
) -> XmlDocument:
    """Scan UTF-8 XML bytes into an element tree with CMarkup's reading rules.

    Raises UnsafeInputError (too big, DOCTYPE, too deep) or FileFormatError (everything else),
    each naming the file and line.
    """
    where = Path(path) if path is not None else None
    _check_bytes(data, where, max_bytes)
    with collector_paused():
        text, problems = _decode(data, where)
        return _scan(text, where, max_depth, problems, _has_controls(data))


def _check_bytes(data: bytes, where: Path | None, max_bytes: int) -> None:
    if len(data) > max_bytes:
        raise UnsafeInputError(
            f"is {len(data):,} bytes, over the limit of {max_bytes:,}", path=where
        )
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


def _has_controls(data: bytes) -> bool:
    """Whether the bytes hold a C0 control other than tab/LF/CR, or U+FFFE/U+FFFF."""
    return len(data.translate(None, _CONTROL_BYTES)) != len(data) or any(
        nc in data for nc in _NONCHARACTERS_UTF8
    )


def _scan(
    text: str, where: Path | None, max_depth: int, problems: list[Problem], controls: bool
) -> XmlDocument:
    scanner = _Scanner(text, where, max_depth, controls)
    scanner.problems = problems
    root = scanner.scan()
    if controls:
        scanner.check_control_positions(root)
    return XmlDocument(root, scanner.problems, where)


# --- Contacts.xml --------------------------------------------------------------------------------


def prepare_contact(contact: Contact) -> Contact | None:
    """MicroSIP's ``ContactPrepare`` (Contacts.cpp; facts §4.2), applied to every imported or
    directory contact: an empty number falls back to ``phone``, then ``mobile``, and without any
    the contact is dropped (None); the name is :func:`prepared_name`. Returns ``contact`` itself
    when nothing changes."""
    number = contact.dial_number
    if not number:
        return None
    name = prepared_name(contact)
    if number == contact.number and name == contact.name:
        return contact
    return contact.replace(number=number, name=name)


class _Plan:
    """How to build a Contact from one attribute layout (Contacts.cpp ContactsLoad): attributes
    found by exact name, missing ones empty, flags on only for exactly "1", unknown ones kept in
    ``extra``. Index ``len(keys)`` points at the empty string _contact() appends."""

    __slots__ = ("extra", "flags", "keys", "texts")

    def __init__(self, keys: tuple[str, ...]) -> None:
        self.keys = keys
        missing = len(keys)
        where = {key: i for i, key in enumerate(keys)}
        self.texts = itemgetter(*(where.get(name, missing) for name in TEXT_FIELDS))
        self.flags = itemgetter(*(where.get(name, missing) for name in FLAG_FIELDS))
        self.extra = tuple((key, i) for i, key in enumerate(keys) if key not in _KNOWN)


def _contact(plan: _Plan, values: Sequence[str]) -> Contact:
    padded = (*values, "")
    presence, starred, directory = plan.flags(padded)
    extra = {key: values[i] for key, i in plan.extra} if plan.extra else {}
    return Contact(  # type: ignore[call-arg]  # plan.texts yields the 14 text fields in order
        *plan.texts(padded),
        presence == "1",
        starred == "1",
        directory == "1",
        extra,
    )


def contacts_from_document(doc: XmlDocument) -> ContactsFile:
    """The contacts of a scanned document, as MicroSIP's ContactsLoad finds them: the
    ``<contact>`` children of a ``<contacts>`` root."""
    root = doc.root
    problems = doc.problems
    if root.name != "contacts":
        raise FileFormatError(
            f"the root element is <{root.name}>, not <contacts>: MicroSIP would load nothing",
            path=doc.path,
            where=f"line {root.line}",
        )
    if root.text_line is not None:
        problems.append(
            Problem(root.text_line, ProblemCode.IGNORED_TEXT, "text inside <contacts> is ignored")
        )
    contacts: list[Contact] = []
    lines: list[int] = []
    plan: _Plan | None = None
    for element in root.children:
        if element.name != "contact":
            problems.append(
                Problem(
                    element.line,
                    ProblemCode.IGNORED_ELEMENT,
                    f"<{element.name}> inside <contacts> is ignored (MicroSIP reads only "
                    "<contact>, and drops the rest when it saves)",
                )
            )
            continue
        keys = element.keys
        if plan is None or (plan.keys is not keys and plan.keys != keys):
            plan = _Plan(keys)
        contacts.append(_contact(plan, element.values))
        lines.append(element.line)
    return _checked(contacts, lines, problems, doc.path)


_NUMBER_AND_NAME = attrgetter("number", "name")


def _checked(
    contacts: list[Contact], lines: list[int], problems: list[Problem], path: Path | None
) -> ContactsFile:
    """The result, with what MicroSIP does with contacts that lack a number or repeat another."""
    keys = list(map(_NUMBER_AND_NAME, contacts))
    problems.sort(key=_problem_line)
    # Most files have neither problem: two quick tests spare the walk below.
    if all(number and name for number, name in keys) and len(set(keys)) == len(keys):
        return ContactsFile(contacts, problems, path, lines)
    seen: dict[tuple[str, str], int] = {}
    for contact, line in zip(contacts, lines, strict=True):
        if not contact.number:
            fallback = contact.phone or contact.mobile
            why = (
                f" (it does not fall back to phone/mobile {fallback!r} when loading)"
                if fallback
                else ""
            )
            problems.append(
                Problem(
                    line,
                    ProblemCode.NO_NUMBER,
                    f"contact {contact.name!r} has no number: MicroSIP skips it{why}",
                )
            )
            continue
        key = (contact.number, prepared_name(contact))
        first = seen.setdefault(key, line)
        if first != line:
            problems.append(
                Problem(
                    line,
                    ProblemCode.DUPLICATE,
                    f"number {key[0]!r} and name {key[1]!r} repeat the contact on line {first}; "
                    "MicroSIP keeps both and updates both on import or directory refresh",
                )
            )
    problems.sort(key=_problem_line)
    return ContactsFile(contacts, problems, path, lines)


def _problem_line(problem: Problem) -> int:
    return problem.line or 0


def parse_contacts(
    data: bytes,
    path: Path | str | None = None,
    *,
    max_bytes: int = MAX_CONTACTS_BYTES,
    max_depth: int = MAX_DEPTH,
) -> ContactsFile:
    """Read Contacts.xml bytes as MicroSIP does (see the module docstring for the rules)."""
    where = Path(path) if path is not None else None
    _check_bytes(data, where, max_bytes)
    with collector_paused():
        text, problems = _decode(data, where)
        document = _scan(text, where, max_depth, problems, _has_controls(data))
        return contacts_from_document(document)


def read_contacts_stream(
    stream: BinaryIO,
    path: Path | str | None = None,
    *,
    max_bytes: int = MAX_CONTACTS_BYTES,
    max_depth: int = MAX_DEPTH,
) -> ContactsFile:
    """Read Contacts.xml from a binary stream, never reading more than ``max_bytes`` + 1 bytes."""
    chunks: list[bytes] = []
    total = 0
    # A pipe or socket may return less than asked for: read until the end or the limit.
    while chunk := stream.read(min(1 << 20, max_bytes + 1 - total)):
        chunks.append(chunk)
        total += len(chunk)
        if total > max_bytes:
            raise UnsafeInputError(
                f"is over the limit of {max_bytes:,} bytes",
                path=Path(path) if path is not None else None,
            )
    return parse_contacts(b"".join(chunks), path, max_bytes=max_bytes, max_depth=max_depth)


def read_contacts(
    path: Path | str,
    *,
    max_bytes: int = MAX_CONTACTS_BYTES,
    max_depth: int = MAX_DEPTH,
) -> ContactsFile:
    """Read a Contacts.xml file; its size is checked before anything is read."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise UnsafeInputError(
                f"is {size:,} bytes, over the limit of {max_bytes:,}: not a Contacts.xml",
                path=path,
            )
        with path.open("rb") as fh:
            # A special file (a pipe, /dev/zero) reports size 0: the stream limit still holds.
            return read_contacts_stream(fh, path, max_bytes=max_bytes, max_depth=max_depth)
    except FileNotFoundError as exc:
        raise NotFoundError("no such file", path=path) from exc
    except IsADirectoryError as exc:
        raise NotFoundError("is a folder, not a Contacts.xml", path=path) from exc
    except OSError as exc:
        raise BridgeError(f"cannot read: {exc.strerror or exc}", path=path) from exc


# --- writing -------------------------------------------------------------------------------------


def _tuple_getter(names: Sequence[str]) -> Callable[[Contact], tuple[Any, ...]]:
    """attrgetter that returns a tuple even for one name."""
    if len(names) == 1:
        name = names[0]
        return lambda contact: (getattr(contact, name),)
    return attrgetter(*names)


class _FlagTexts(dict[tuple[object, ...], tuple[str, ...]]):
    """Flag values -> their "0"/"1" texts, filled on first use (a C-level lookup afterwards)."""

    def __missing__(self, key: tuple[object, ...]) -> tuple[str, ...]:
        texts = tuple("1" if value else "0" for value in key)
        self[key] = texts
        return texts


def serialize_contact_elements(
    contacts: Sequence[Contact],
    *,
    text_fields: Sequence[str] = TEXT_FIELDS,
    flag_fields: Sequence[str] = FLAG_FIELDS,
    include_extra: bool = True,
    root_attributes: Sequence[tuple[str, str]] = (),
) -> bytes:
    """A ``<contacts>`` document in CMarkup's exact shape, with the given attributes per contact.

    Shared by Contacts.xml (all 17 attributes and the unknown ones) and the usersDirectory XML
    (without ``directory``). Raises UnsafeInputError for values that cannot be stored.
    """
    items = list(contacts)
    root_attr = "".join(f' {k}="{encode_attribute(v)}"' for k, v in root_attributes)
    head = DECLARATION + f"<contacts{root_attr}"
    if not items:
        return (head + "/>\r\n").encode("utf-8")
    fields = (*text_fields, *flag_fields)
    width = len(fields)
    # Every value of every contact, flags as "0"/"1", in one flat stream, built at C speed.
    rows: Iterable[tuple[str, ...]] = map(_tuple_getter(text_fields), items)
    if flag_fields:
        texts = _FlagTexts()
        flags = map(_tuple_getter(flag_fields), items)
        rows = map(tuple.__add__, rows, map(texts.__getitem__, flags))
    # Escape them all in one go: join with NUL (which no storable value holds), replace, split.
    joined = "\x00".join(chain.from_iterable(rows))
    escaped = encode_attribute(joined).split("\x00")
    if len(escaped) != len(items) * width:
        check_storable(items)  # a value holds NUL: name it
    template = "<contact " + " ".join(f'{name}="%s"' for name in fields) + "/>\r\n"
    lines = list(map(template.__mod__, zip(*[iter(escaped)] * width, strict=True)))
    if include_extra:
        for index in [i for i, c in enumerate(items) if c.extra]:
            contact = items[index]
            extra = []
            for name, value in contact.extra.items():
                if name in _KNOWN:
                    continue  # Contact.attributes() drops these too
                if not _NAME.fullmatch(name):
                    raise UnsafeInputError(
                        f"{_describe(index, contact)}: {name!r} is not a valid XML attribute name"
                    )
                extra.append(f' {name}="{encode_attribute(value)}"')
            lines[index] = lines[index][:-4] + "".join(extra) + "/>\r\n"
    document = head + ">\r\n" + "".join(lines) + "</contacts>\r\n"
    try:
        out = document.encode("utf-8")
    except UnicodeEncodeError as exc:
        check_storable(items)  # a lone surrogate in a value: name it
        raise UnsafeInputError(f"cannot be encoded as UTF-8: {exc.reason}") from exc
    if len(out.translate(None, _CONTROL_BYTES)) != len(out) or any(
        nc in out for nc in _NONCHARACTERS_UTF8
    ):
        check_storable(items)
    return out


def serialize_contacts(contacts: Iterable[Contact]) -> bytes:
    """Contacts.xml bytes exactly as MicroSIP 3.22 writes them (facts §4.2, §4.3).

    Raises UnsafeInputError naming the contact and attribute when a value holds a character that
    Contacts.xml cannot store (see sanitize_text()).
    """
    with collector_paused():
        return serialize_contact_elements(list(contacts))


def write_contacts(
    path: Path | str,
    contacts: Iterable[Contact],
    *,
    backups: int = DEFAULT_BACKUPS,
    microsip_running: bool | None = None,
    force: bool = False,
) -> Path | None:
    """Replace ``path`` with the contacts, atomically, keeping ``backups`` older copies.

    MicroSIP loads Contacts.xml once and rewrites it from memory after every change (facts §4.1),
    so a write while it runs would be lost: it is refused unless ``force``. ``microsip_running`` is
    the caller's knowledge; ``None`` means unknown. Returns the backup's path, if one was made.
    """
    path = Path(path)
    if microsip_running and not force:
        raise MicroSIPRunningError(
            "MicroSIP is running and rewrites Contacts.xml from memory after any change, which "
            "would undo this one; close MicroSIP first (microsip.exe /exit) or pass --force",
            path=path,
        )
    data = serialize_contacts(contacts)
    return atomic_write(path, data, backups=backups)
