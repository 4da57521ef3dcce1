"""One MicroSIP contact: the 17 attributes of Contacts.xml in MicroSIP 3.22's order (facts §4.2)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

# The attribute names MicroSIP 3.22 writes, in the order it writes them (facts §4.2). 3.20 lacks
# "starred"; 3.19 writes only number, name, presence, directory.
TEXT_FIELDS: tuple[str, ...] = (
    "name",
    "number",
    "firstname",
    "lastname",
    "phone",
    "mobile",
    "email",
    "address",
    "city",
    "state",
    "zip",
    "comment",
    "id",
    "info",
)
FLAG_FIELDS: tuple[str, ...] = ("presence", "starred", "directory")
ATTRIBUTES: tuple[str, ...] = TEXT_FIELDS + FLAG_FIELDS
# The numbers a contact can carry, in the order MicroSIP falls back on them (facts §4.2).
NUMBER_FIELDS: tuple[str, ...] = ("number", "phone", "mobile")


# What MicroSIP's CString::Trim removes (not NBSP, which Python's str.strip() would).
TRIM = " \t\n\v\f\r"


def parse_flag(value: str) -> bool:
    """MicroSIP's flags are "1" or "0"; anything but exactly "1" (empty included) reads as off."""
    return value == "1"


def prepared_name(contact: Contact) -> str:
    """The name MicroSIP gives a contact (``ContactPrepare``, facts §4.2): ``name``, else "first
    last" (just ``firstname`` when both are equal), trimmed, else the number."""
    if contact.name:
        return contact.name
    if contact.firstname != contact.lastname:
        built = f"{contact.firstname} {contact.lastname}"
    else:
        built = contact.firstname
    return built.strip(TRIM) or contact.dial_number


@dataclass(slots=True)
class Contact:
    """A contact as MicroSIP stores it. Text fields hold MicroSIP's strings verbatim.

    ``extra`` keeps attributes MicroSIP does not know (a newer version's, another tool's), in
    file order, so that a load and save never loses them.
    """

    name: str = ""
    number: str = ""
    firstname: str = ""
    lastname: str = ""
    phone: str = ""
    mobile: str = ""
    email: str = ""
    address: str = ""
    city: str = ""
    state: str = ""
    zip: str = ""
    comment: str = ""
    id: str = ""
    info: str = ""
    presence: bool = False
    starred: bool = False
    directory: bool = False
    extra: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_attributes(cls, attrs: Mapping[str, str]) -> Contact:
        """Build from attribute strings; names are matched exactly, as CMarkup does."""
        known: dict[str, object] = {}
        extra: dict[str, str] = {}
        for key, value in attrs.items():
            if key in TEXT_FIELDS:
                known[key] = value
            elif key in FLAG_FIELDS:
                known[key] = parse_flag(value)
            else:
                extra[key] = value
        return cls(**known, extra=extra)  # type: ignore[arg-type]

    def attributes(self) -> dict[str, str]:
        """Attribute strings in MicroSIP's order, flags as "0"/"1", then the unknown ones."""
        out = {name: getattr(self, name) for name in TEXT_FIELDS}
        out.update({name: "1" if getattr(self, name) else "0" for name in FLAG_FIELDS})
        for key, value in self.extra.items():
            out.setdefault(key, value)
        return out

    @property
    def dial_number(self) -> str:
        """The number MicroSIP dials: ``number``, else ``phone``, else ``mobile`` (facts §4.2)."""
        for name in NUMBER_FIELDS:
            value: str = getattr(self, name)
            if value:
                return value
        return ""

    @property
    def display_name(self) -> str:
        """The name MicroSIP shows (:func:`prepared_name`)."""
        return prepared_name(self)

    def numbers(self) -> list[str]:
        """Every non-empty number the contact carries, without repeats."""
        seen: list[str] = []
        for name in NUMBER_FIELDS:
            value: str = getattr(self, name)
            if value and value not in seen:
                seen.append(value)
        return seen

    def replace(self, **changes: object) -> Contact:
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]


def user_part(number: str) -> str:
    """The user part of a number or SIP address, as MicroSIP compares numbers (facts §4.4):
    without a ``sip:``, ``sips:`` or ``tel:`` scheme and without ``@host``."""
    text = number.strip(TRIM)
    scheme, colon, rest = text.partition(":")
    if colon and scheme.casefold() in ("sip", "sips", "tel"):
        text = rest
    return text.partition("@")[0]


# What MicroSIP's number formatting drops between digits before comparing (facts §4.4).
_SEPARATORS = str.maketrans("", "", " -.()")


def number_part(number: str) -> str:
    """:func:`user_part` cut at ``;`` or ``,`` (URI parameters, post-dial DTMF)."""
    text = user_part(number)
    for stop in ";,":
        text = text.split(stop, 1)[0]
    return text


def match_key(number: str) -> str:
    """What a number is compared by in MicroSIP's caller-name rule: its :func:`number_part`
    without blanks, dashes, dots and brackets."""
    return number_part(number).translate(_SEPARATORS)


class ContactIndex:
    """MicroSIP's caller-name rule (``GetNameByNumber``, facts §4.4) over contacts indexed by
    :func:`match_key`, so a lookup is a few dict reads whatever the number of contacts: an
    exact match, else a contact number of more than 3 characters that the caller's number
    ends with after at most 3 more leading characters. MicroSIP compares the number it dials
    (:attr:`Contact.dial_number`); ``every_number`` indexes phone and mobile too (the
    directory's presence lamps)."""

    def __init__(self, contacts: Iterable[Contact], *, every_number: bool = False) -> None:
        self.contacts = list(contacts)
        self._by_key: dict[str, list[int]] = {}
        for at, contact in enumerate(self.contacts):
            numbers = contact.numbers() if every_number else [contact.dial_number]
            for key in dict.fromkeys(match_key(n) for n in numbers):
                if key:
                    self._by_key.setdefault(key, []).append(at)

    def _positions(self, number: str) -> list[int]:
        caller = match_key(number)
        if not caller:
            return []
        exact = self._by_key.get(caller)
        if exact:
            return exact
        found: list[int] = []
        for extra in range(1, 4):
            rest = caller[extra:]
            if len(rest) > 3:
                found += self._by_key.get(rest, [])
        return sorted(set(found))

    def first(self, number: str) -> Contact | None:
        """The contact whose name MicroSIP shows for the caller ``number`` (the first in file
        order), or None."""
        found = self._positions(number)
        return self.contacts[found[0]] if found else None

    def named_by(self, number: str) -> list[Contact]:
        """Every contact ``number`` names (exact matches, else suffix matches), in file order."""
        return [self.contacts[at] for at in self._positions(number)]


def contact_for_number(contacts: Iterable[Contact], number: str) -> Contact | None:
    """The contact whose name MicroSIP shows for a caller (``GetNameByNumber``, facts §4.4;
    :class:`ContactIndex`). None when nothing matches."""
    return ContactIndex(contacts).first(number)
