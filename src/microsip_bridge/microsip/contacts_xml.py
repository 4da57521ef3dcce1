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

**Reading**: the markup is scanned with CMarkup's rules by :mod:`markup` (references, control
characters, hostile input); here ``ContactsLoad``'s rules apply. Attributes are found by name, so
their order does not matter and a missing one is empty; flags are on only when exactly ``"1"``;
comments (commented-out contacts included) are not contacts. A root other than ``<contacts>`` and
invalid UTF-8 raise FileFormatError. Where CMarkup is lenient and the file still means something,
we warn in ``ContactsFile.problems`` instead: a UTF-8 BOM, content after ``</contacts>``, elements
other than ``<contact>`` and text inside the root, contacts without a number (MicroSIP skips them
on load), repeated (number, name) pairs, numeric references, control characters in values.

**Limits.** Reading refuses a file over ``max_bytes`` (before reading it) and nesting deeper than
``max_depth``; writing refuses a file over ``max_bytes`` too, so that nothing is written that the
reader would refuse (what is written is always two levels deep). A read holds the file's bytes
and the contacts, built as the scan reaches them: never a decoded copy or an element tree.

**Control characters.** Tab, LF and CR are written raw, as CMarkup does, and read back verbatim, so
MicroSIP sees the very same string. The characters a CMarkup file cannot store
(:func:`markup.find_unstorable`) make the writer raise UnsafeInputError naming the contact and
attribute. Importers clean text first with :func:`markup.sanitize_text` or
:func:`sanitize_contacts`, which replace each such character with a space and list what they
replaced.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Callable, Iterable, Sequence
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
    TooLargeError,
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
from microsip_bridge.microsip.markup import (
    MAX_DEPTH,
    NAME,
    UNSTORABLE,
    ChildScan,
    Problem,
    ProblemCode,
    ProblemLog,
    XmlDocument,
    XmlElement,
    check_bytes,
    collector_paused,
    encode_attribute,
    find_unstorable,
    has_controls,
    sanitize_text,
    scan,
    utf8_error,
)

__all__ = [
    "DECLARATION",
    "MAX_CONTACTS_BYTES",
    "ContactsFile",
    "Replacement",
    "check_storable",
    "contacts_from_document",
    "parse_contacts",
    "parse_markup",
    "prepare_contact",
    "prepared_name",
    "read_contacts",
    "read_contacts_stream",
    "sanitize_contacts",
    "serialize_contact_elements",
    "serialize_contacts",
    "write_contacts",
]

# A Contacts.xml holds a few hundred bytes per contact: 64 MiB is ~200,000 contacts, far beyond any
# phone book, and small enough to hold in memory a few times over.
MAX_CONTACTS_BYTES = 64 * 1024 * 1024
DECLARATION = '<?xml version="1.0"?>\r\n'

# --- storable contacts ---------------------------------------------------------------------------

_TEXT_GETTER = attrgetter(*TEXT_FIELDS)
_KNOWN = frozenset(ATTRIBUTES)
# Contacts are checked, escaped and encoded this many at a time: the transient copies stay small,
# and a list too big to read back is refused before it is all serialised.
_BATCH = 4096


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
    # One search over the text of many contacts at a time first (LF joins the values: it is
    # storable); the walk that names the culprit runs only when something is there.
    for start in range(0, len(contacts), _BATCH):
        batch = contacts[start : start + _BATCH]
        values = chain(
            chain.from_iterable(map(_TEXT_GETTER, batch)),
            (value for c in batch if c.extra for value in c.extra.values()),
        )
        if UNSTORABLE.search("\n".join(values)) is not None:
            _name_unstorable(contacts, start)
    for index, contact in enumerate(contacts):
        if not contact.extra:
            continue
        for name in contact.extra:
            if name not in _KNOWN and not NAME.fullmatch(name):
                raise UnsafeInputError(
                    f"{_describe(index, contact)}: {name!r} is not a valid XML attribute name"
                )


def _name_unstorable(contacts: Sequence[Contact], start: int) -> None:
    """Raise UnsafeInputError for the first value from ``contacts[start]`` on that Contacts.xml
    cannot store."""
    for index in range(start, len(contacts)):
        contact = contacts[index]
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


# --- the result ----------------------------------------------------------------------------------


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
        max_bytes: int = MAX_CONTACTS_BYTES,
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
            max_bytes=max_bytes,
        )
        self.path = target
        return backup


# --- reading -------------------------------------------------------------------------------------

_DECLARED_ENCODING = re.compile(
    rb"""^(?:\xef\xbb\xbf)?\s*<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._-]+)["']"""
)


def _is_utf8(encoding: str) -> bool:
    try:
        return codecs.lookup(encoding).name == "utf-8"
    except LookupError:  # a name Python does not know is not UTF-8 either
        return False


def _check_utf8(data: bytes, path: Path | None) -> tuple[int, ProblemLog]:
    """Check that the bytes are UTF-8, as MicroSIP reads them whatever the declaration says;
    returns where the text starts (after a UTF-8 BOM, which is skipped) and the problems found.
    The scanner then reads the bytes themselves: no decoded copy of the file is ever made."""
    problems = ProblemLog()
    # CMarkup knows only UTF-8's mark; UTF-16's were refused before (check_bytes).
    bom = textcodec.detect_bom(data, (textcodec.UTF8_BOM,))
    start = len(bom.mark) if bom is not None else 0
    if bom is not None:
        problems.add(
            Problem(
                1,
                ProblemCode.BOM,
                "starts with a UTF-8 BOM; MicroSIP skips it, and drops it when it saves",
            )
        )
    declared = _DECLARED_ENCODING.match(data)
    declared_name = declared.group(1).decode("ascii") if declared else None
    exc = utf8_error(data, start)
    if exc is not None:
        bad_at = exc.start
        line = data.count(b"\n", 0, bad_at) + 1
        hint = ""
        if declared_name and not _is_utf8(declared_name):
            hint = f" (it declares {declared_name!r}, but MicroSIP reads only UTF-8)"
        raise FileFormatError(
            f"invalid UTF-8 (byte 0x{data[bad_at]:02X}){hint}", path=path, where=f"line {line}"
        ) from exc
    if declared_name and not _is_utf8(declared_name):
        problems.add(
            Problem(
                1,
                ProblemCode.DECLARED_ENCODING,
                f"declares encoding {declared_name!r}; MicroSIP ignores that and reads UTF-8",
            )
        )
    return start, problems


def parse_markup(
    data: bytes,
    path: Path | str | None = None,
    *,
    max_bytes: int = MAX_CONTACTS_BYTES,
    max_depth: int = MAX_DEPTH,
) -> XmlDocument:
    """Scan UTF-8 XML bytes into an element tree with CMarkup's reading rules.

    Raises UnsafeInputError (too big, DOCTYPE, too deep) or FileFormatError (everything else),
    each naming the file and line. The scan is :mod:`markup`'s; it lives here beside
    :func:`_check_utf8`, which checks the bytes are text as MicroSIP reads it.
    """
    where = Path(path) if path is not None else None
    check_bytes(data, where, max_bytes)
    with collector_paused():
        start, problems = _check_utf8(data, where)
        return scan(data, where, max_depth, problems, has_controls(data), start)


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
    _check_root(doc.root, doc.path)
    found = _Found(doc.root.children)
    return found.result(doc.root.text_line, ProblemLog(doc.problems), doc.path)


def _check_root(root: XmlElement, path: Path | None) -> None:
    if root.name != "contacts":
        raise FileFormatError(
            f"the root element is <{root.name}>, not <contacts>: MicroSIP would load nothing",
            path=path,
            where=f"line {root.line}",
        )


class _Found:
    """The contacts among the root's children, taken one by one (from a list, or from a scan
    that yields each child as it reads it), with their lines and the elements ignored."""

    __slots__ = ("contacts", "ignored", "lines")

    def __init__(self, children: Iterable[XmlElement]) -> None:
        self.contacts: list[Contact] = []
        self.lines: list[int] = []
        self.ignored = ProblemLog()
        contacts = self.contacts
        lines = self.lines
        plan: _Plan | None = None
        for element in children:
            if element.name != "contact":
                self.ignored.add(
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

    def result(
        self, text_line: int | None, problems: ProblemLog, path: Path | None
    ) -> ContactsFile:
        """The contacts file, given the line of any text directly inside the root."""
        if text_line is not None:
            problems.add(
                Problem(text_line, ProblemCode.IGNORED_TEXT, "text inside <contacts> is ignored")
            )
        problems.merge(self.ignored)
        return _checked(self.contacts, self.lines, problems, path)


_NUMBER = attrgetter("number")
_NAME = attrgetter("name")


def _checked(
    contacts: list[Contact], lines: list[int], problems: ProblemLog, path: Path | None
) -> ContactsFile:
    """The result, with what MicroSIP does with contacts that lack a number or repeat another."""
    # Most files have neither problem: two quick tests spare the walk below. Repeated pairs
    # need a repeated number, and a set of the numbers costs a pointer or two per contact.
    numbers = set(map(_NUMBER, contacts))
    if len(numbers) == len(contacts) and "" not in numbers and all(map(_NAME, contacts)):
        return ContactsFile(contacts, _sorted(problems), path, lines)
    del numbers
    repeated = _repeated_numbers(contacts)
    seen: dict[tuple[str, str], int] = {}
    for contact, line in zip(contacts, lines, strict=True):
        if not contact.number:
            fallback = contact.phone or contact.mobile
            why = (
                f" (it does not fall back to phone/mobile {fallback!r} when loading)"
                if fallback
                else ""
            )
            problems.add(
                Problem(
                    line,
                    ProblemCode.NO_NUMBER,
                    f"contact {contact.name!r} has no number: MicroSIP skips it{why}",
                )
            )
            continue
        if contact.number not in repeated:
            continue
        key = (contact.number, prepared_name(contact))
        first = seen.setdefault(key, line)
        if first != line:
            problems.add(
                Problem(
                    line,
                    ProblemCode.DUPLICATE,
                    f"number {key[0]!r} and name {key[1]!r} repeat the contact on line {first}; "
                    "MicroSIP keeps both and updates both on import or directory refresh",
                )
            )
    return ContactsFile(contacts, _sorted(problems), path, lines)


def _sorted(problems: ProblemLog) -> list[Problem]:
    listed = problems.listed()
    listed.sort(key=_problem_line)
    return listed


def _repeated_numbers(contacts: list[Contact]) -> set[str]:
    once: set[str] = set()
    again: set[str] = set()
    for number in map(_NUMBER, contacts):
        if number in once:
            again.add(number)
        else:
            once.add(number)
    return again


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
    return _parse([data], path, max_bytes, max_depth)


def _parse(
    box: list[bytes], path: Path | str | None, max_bytes: int, max_depth: int
) -> ContactsFile:
    """parse_contacts() of the bytes in ``box``, which it empties: bytes that nothing else
    refers to are freed as soon as they are scanned.

    The contacts are built as the scan reaches them and the elements dropped, so memory holds
    the bytes and the contacts, never a tree or a decoded copy of the file besides.
    """
    data = box.pop()
    where = Path(path) if path is not None else None
    check_bytes(data, where, max_bytes)
    with collector_paused():
        start, problems = _check_utf8(data, where)
        scan = ChildScan(data, where, max_depth, problems, has_controls(data), start)
        found = _Found(scan)  # the scan runs here, and raises what it finds on the way
        _check_root(scan.root, where)
        text_line = scan.root.text_line
        del data, scan  # the root refers to the bytes too
        return found.result(text_line, problems, where)


def read_contacts_stream(
    stream: BinaryIO,
    path: Path | str | None = None,
    *,
    max_bytes: int = MAX_CONTACTS_BYTES,
    max_depth: int = MAX_DEPTH,
) -> ContactsFile:
    """Read Contacts.xml from a binary stream, never reading more than ``max_bytes`` + 1 bytes."""
    return _parse([_read_all(stream, path, max_bytes, 1 << 20)], path, max_bytes, max_depth)


def _read_all(stream: BinaryIO, path: Path | str | None, max_bytes: int, first: int) -> bytes:
    """The stream's bytes, asking for ``first`` of them first: a file whose size is known comes
    in one read, which spares joining chunks (and holding the file twice)."""
    chunks: list[bytes] = []
    total = 0
    ask = first
    # A pipe or socket may return less than asked for: read until the end or the limit.
    while chunk := stream.read(min(ask, max_bytes + 1 - total)):
        chunks.append(chunk)
        total += len(chunk)
        if total > max_bytes:
            raise TooLargeError(
                f"is over the limit of {max_bytes:,} bytes",
                path=Path(path) if path is not None else None,
            )
        ask = 1 << 20
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


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
            raise TooLargeError(
                f"is {size:,} bytes, over the limit of {max_bytes:,}: not a Contacts.xml",
                path=path,
            )
        with path.open("rb") as fh:
            # A special file (a pipe, /dev/zero) reports size 0: the stream limit still holds.
            box = [_read_all(fh, path, max_bytes, size + 1 if size else 1 << 20)]
    except FileNotFoundError as exc:
        raise NotFoundError("no such file", path=path) from exc
    except IsADirectoryError as exc:
        raise NotFoundError("is a folder, not a Contacts.xml", path=path) from exc
    except OSError as exc:
        raise BridgeError(f"cannot read: {exc.strerror or exc}", path=path) from exc
    return _parse(box, path, max_bytes, max_depth)


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


_END = b"</contacts>\r\n"


def serialize_contact_elements(
    contacts: Sequence[Contact],
    *,
    text_fields: Sequence[str] = TEXT_FIELDS,
    flag_fields: Sequence[str] = FLAG_FIELDS,
    include_extra: bool = True,
    root_attributes: Sequence[tuple[str, str]] = (),
    max_bytes: int | None = None,
) -> bytes:
    """A ``<contacts>`` document in CMarkup's exact shape, with the given attributes per contact.

    Shared by Contacts.xml (all 17 attributes and the unknown ones) and the usersDirectory XML
    (without ``directory``). Raises UnsafeInputError for values that cannot be stored, and for a
    document over ``max_bytes``, which the reader would refuse.
    """
    items = list(contacts)
    root_attr = "".join(f' {k}="{encode_attribute(v)}"' for k, v in root_attributes)
    head = (DECLARATION + f"<contacts{root_attr}").encode("utf-8")
    if not items:
        return _limited(head + b"/>\r\n", max_bytes, items)
    writer = _ElementWriter(items, text_fields, flag_fields, include_extra)
    parts = [head + b">\r\n"]
    size = len(parts[0]) + len(_END)
    for start in range(0, len(items), _BATCH):
        chunk = writer.lines(start, start + _BATCH)
        size += len(chunk)
        if max_bytes is not None and size > max_bytes:
            raise _too_big(max_bytes, items)
        parts.append(chunk)
    parts.append(_END)
    return b"".join(parts)


def _limited(data: bytes, max_bytes: int | None, items: Sequence[Contact]) -> bytes:
    if max_bytes is not None and len(data) > max_bytes:
        raise _too_big(max_bytes, items)
    return data


def _too_big(max_bytes: int, items: Sequence[Contact]) -> UnsafeInputError:
    return TooLargeError(
        f"{len(items):,} contacts make a file over {max_bytes:,} bytes, more than the reader "
        "accepts: refused"
    )


class _ElementWriter:
    """The ``<contact .../>`` lines of a list of contacts, a slice at a time, as UTF-8."""

    def __init__(
        self,
        items: list[Contact],
        text_fields: Sequence[str],
        flag_fields: Sequence[str],
        include_extra: bool,
    ) -> None:
        self.items = items
        fields = (*text_fields, *flag_fields)
        self.width = len(fields)
        self.texts = _tuple_getter(text_fields)
        self.flags = _tuple_getter(flag_fields) if flag_fields else None
        self.flag_texts = _FlagTexts()
        self.include_extra = include_extra
        self.template = "<contact " + " ".join(f'{name}="%s"' for name in fields) + "/>\r\n"

    def lines(self, start: int, stop: int) -> bytes:
        items = self.items
        batch = items[start:stop]
        width = self.width
        # Every value of every contact, flags as "0"/"1", in one flat stream, built at C speed.
        rows: Iterable[tuple[str, ...]] = map(self.texts, batch)
        if self.flags is not None:
            flags = map(self.flag_texts.__getitem__, map(self.flags, batch))
            rows = map(tuple.__add__, rows, flags)
        # Escape them all in one go: join with NUL (which no storable value holds), replace, split.
        joined = "\x00".join(chain.from_iterable(rows))
        escaped = encode_attribute(joined).split("\x00")
        del joined
        if len(escaped) != len(batch) * width:
            check_storable(items)  # a value holds NUL: name it
        lines = list(map(self.template.__mod__, zip(*[iter(escaped)] * width, strict=True)))
        del escaped
        if self.include_extra:
            for index in [i for i, c in enumerate(batch) if c.extra]:
                contact = batch[index]
                extra = []
                for name, value in contact.extra.items():
                    if name in _KNOWN:
                        continue  # Contact.attributes() drops these too
                    if not NAME.fullmatch(name):
                        raise UnsafeInputError(
                            f"{_describe(start + index, contact)}: {name!r} is not a valid XML "
                            "attribute name"
                        )
                    extra.append(f' {name}="{encode_attribute(value)}"')
                lines[index] = lines[index][:-4] + "".join(extra) + "/>\r\n"
        try:
            out = "".join(lines).encode("utf-8")
        except UnicodeEncodeError as exc:
            check_storable(items)  # a lone surrogate in a value: name it
            raise UnsafeInputError(f"cannot be encoded as UTF-8: {exc.reason}") from exc
        if has_controls(out):
            check_storable(items)
        return out


def serialize_contacts(
    contacts: Iterable[Contact], *, max_bytes: int | None = MAX_CONTACTS_BYTES
) -> bytes:
    """Contacts.xml bytes exactly as MicroSIP 3.22 writes them (facts §4.2, §4.3).

    Raises UnsafeInputError naming the contact and attribute when a value holds a character that
    Contacts.xml cannot store (see sanitize_text()), and when the file would be bigger than
    ``max_bytes``, which :func:`read_contacts` would refuse (None: no limit).
    """
    with collector_paused():
        return serialize_contact_elements(list(contacts), max_bytes=max_bytes)


def write_contacts(
    path: Path | str,
    contacts: Iterable[Contact],
    *,
    backups: int = DEFAULT_BACKUPS,
    microsip_running: bool | None = None,
    force: bool = False,
    max_bytes: int = MAX_CONTACTS_BYTES,
) -> Path | None:
    """Replace ``path`` with the contacts, atomically, keeping ``backups`` older copies.

    MicroSIP loads Contacts.xml once and rewrites it from memory after every change (facts §4.1),
    so a write while it runs would be lost: it is refused unless ``force``. ``microsip_running`` is
    the caller's knowledge; ``None`` means unknown. Returns the backup's path, if one was made.
    A file bigger than ``max_bytes``, which :func:`read_contacts` would refuse with the same
    limit, is refused before anything is written (UnsafeInputError).
    """
    path = Path(path)
    if microsip_running and not force:
        raise MicroSIPRunningError(
            "MicroSIP is running and rewrites Contacts.xml from memory after any change, which "
            "would undo this one; close MicroSIP first (microsip.exe /exit) or pass --force",
            path=path,
        )
    try:
        data = serialize_contacts(contacts, max_bytes=max_bytes)
    except TooLargeError as exc:
        exc.path = path
        raise
    return atomic_write(path, data, backups=backups, max_bytes=max_bytes)
