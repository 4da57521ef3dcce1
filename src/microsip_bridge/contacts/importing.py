"""What every contacts importer shares: result and report types, number slots, text decoding.

The importers (MicroSIP CSV, vCard, JSON) turn foreign records into :class:`Contact` objects the
way MicroSIP's own import does (facts §4.5), and never drop a phone number silently: a number that
does not fit into the three number fields is named in the report, as is any text we had to
change; a record that becomes no contact is listed in ``skipped`` with its place and reason.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from microsip_bridge.errors import UnsafeInputError
from microsip_bridge.microsip.contact import ATTRIBUTES, NUMBER_FIELDS, Contact, prepared_name
from microsip_bridge.microsip.contacts_xml import prepare_contact
from microsip_bridge.microsip.markup import find_unstorable, sanitize_text
from microsip_bridge.microsip.textcodec import decode_lenient

# A contacts export of a few hundred thousand people is a few tens of MB; anything far larger is
# not a contacts file, and reading it whole into memory would only hurt.
MAX_IMPORT_BYTES = 64 * 1024 * 1024

# Every field a merge may overwrite: the 17 attributes plus the unknown ones kept in ``extra``.
ALL_FIELDS: frozenset[str] = frozenset((*ATTRIBUTES, "extra"))


@dataclass(frozen=True, slots=True)
class ImportNote:
    """One line of an import's report: where in the source, and what happened there."""

    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


@dataclass(frozen=True, slots=True)
class Skipped:
    """A source record that became no contact: where it was, whom it named, and why."""

    where: str
    label: str
    reason: str = "has no phone number"

    def __str__(self) -> str:
        text = f"{self.label!r} {self.reason}; skipped"
        return f"{self.where}: {text}" if self.where else text

    @classmethod
    def no_number(cls, where: str, contact: Contact) -> Skipped:
        """A contact without any number, labelled by the name MicroSIP would give it, else
        its e-mail address."""
        return cls(where, prepared_name(contact) or contact.email or "(no name)")


@dataclass(slots=True)
class ImportResult:
    """The contacts read from a foreign file, and the report of what could not be taken as is.

    ``fields`` names the contact fields the source carries (a CSV's mapped columns, say). A merge
    overwrites only those in an existing contact, as MicroSIP's ``ContactsAdd`` updates only the
    columns the file has (facts §4.5). ``skipped`` lists the records that became no contact.
    """

    contacts: list[Contact] = field(default_factory=list)
    report: list[ImportNote] = field(default_factory=list)
    fields: frozenset[str] = ALL_FIELDS
    skipped: list[Skipped] = field(default_factory=list)

    def note(self, where: str, message: str) -> None:
        self.report.append(ImportNote(where, message))


def check_size(data: bytes | str, what: str = "the file") -> None:
    """Refuse input too large to be a contacts file before any parsing work."""
    size = len(data)
    if size > MAX_IMPORT_BYTES:
        raise UnsafeInputError(
            f"{what} is {size} bytes; contact imports are limited to {MAX_IMPORT_BYTES} bytes"
        )


def prepared_key(contact: Contact) -> tuple[str, str]:
    """The (number, name) pair MicroSIP matches on, as after ``ContactPrepare`` (facts §4.2)."""
    return contact.dial_number, prepared_name(contact)


@dataclass(frozen=True, slots=True)
class NumberCandidate:
    """A phone number found in a source record, waiting for one of the contact's number fields.

    ``slot`` is the field its type asks for (``None``: any free one); ``low`` marks fax and pager
    numbers, which only take a field left over after every voice number.
    """

    value: str
    where: str
    label: str
    slot: str | None = None
    low: bool = False


def place_numbers(
    contact: Contact, candidates: Sequence[NumberCandidate], result: ImportResult
) -> Contact:
    """Put numbers into the contact's free number fields; report those that find no room.

    First each candidate with a ``slot`` takes that field if it is still empty (the same value
    may then sit in two fields, as MicroSIP's own copy of ``phone`` into ``number`` does). The
    rest, voice numbers before fax and pager, fill the free fields in MicroSIP's fallback order
    number → phone → mobile, skipping values the contact already holds. Whatever is left is
    named in the report, so no number disappears silently.
    """
    values = {name: str(getattr(contact, name)) for name in NUMBER_FIELDS}
    waiting: list[NumberCandidate] = []
    for cand in candidates:
        if cand.slot is not None and not values[cand.slot]:
            values[cand.slot] = cand.value
        else:
            waiting.append(cand)
    left: set[int] = set()
    # Voice numbers first; sorted() is stable, so file order holds within each group.
    for position, cand in sorted(enumerate(waiting), key=lambda item: item[1].low):
        if cand.value in values.values():
            continue
        free = next((name for name in NUMBER_FIELDS if not values[name]), None)
        if free is None:
            left.add(position)
        else:
            values[free] = cand.value
    for position in sorted(left):
        cand = waiting[position]
        result.note(
            cand.where,
            f"number {cand.value!r} ({cand.label}) not imported: "
            "the number, phone and mobile fields are all in use",
        )
    return contact.replace(**values)


def finish(contact: Contact, result: ImportResult, where: str, *, fallback_name: str = "") -> None:
    """Apply ``ContactPrepare`` and add the contact, or list it in ``result.skipped`` for want
    of a number. ``fallback_name`` (an organisation, say) is used before MicroSIP's
    number-as-name."""
    if not contact.name and not prepared_name(contact.replace(number="", phone="", mobile="")):
        contact = contact.replace(name=fallback_name)
    prepared = prepare_contact(contact)
    if prepared is None:
        result.skipped.append(Skipped.no_number(where, contact))
        return
    result.contacts.append(prepared)


def clean_text(value: str, result: ImportResult, where: str | Callable[[], str]) -> str:
    """Replace what Contacts.xml cannot store (NUL, other C0 controls but tab/LF/CR, U+FFFE,
    U+FFFF, lone surrogates) with spaces, and say so in the report. ``where`` may be a function,
    called only when there is something to report."""
    bad = find_unstorable(value)
    if not bad:
        return value
    chars = ", ".join(sorted({f"U+{ord(ch):04X}" for _, ch in bad}))
    result.note(
        where if isinstance(where, str) else where(),
        f"control characters ({chars}) replaced with spaces",
    )
    return sanitize_text(value)


def decode_text(
    data: bytes, result: ImportResult, *, encoding: str | None = None, what: str = "file"
) -> str:
    """Decode a whole text file as :func:`decode_lenient` does (its BOM, BOM-less UTF-16, UTF-8,
    else Windows-1252) and report any guess under ``what``. ``encoding`` overrides guessing."""
    decoded = decode_lenient(data, encoding=encoding, where=what)
    if decoded.note is not None:
        result.note(what, decoded.note)
    return decoded.text


def validate_fields(fields: Iterable[str]) -> frozenset[str]:
    """The field names a merge may overwrite; unknown names are a programming error."""
    chosen = frozenset(fields)
    unknown = chosen - ALL_FIELDS
    if unknown:
        raise ValueError(f"unknown contact fields: {', '.join(sorted(unknown))}")
    return chosen
