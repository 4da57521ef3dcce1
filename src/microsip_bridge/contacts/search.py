"""Finding contacts: by name or number (the API's search) and by a caller's number (lookup)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from microsip_bridge.microsip.contact import Contact, contact_for_number
from microsip_bridge.numbers import Normaliser, is_number_like, number_matches

# Where a looked-up name came from: MicroSIP's own Contacts.xml (contacts/names.py has the
# other sources).
SOURCE_MICROSIP = "microsip"


@dataclass(frozen=True, slots=True)
class Lookup:
    """The name found for a number, where it came from, and the contact's number that
    matched."""

    name: str
    source: str
    number: str


def search_contacts(contacts: Iterable[Contact], query: str) -> list[Contact]:
    """The contacts, in file order, whose name (as MicroSIP shows it, or a first or last name)
    holds ``query`` ignoring case, or one of whose numbers holds it as text or, when it is a
    number written in any format, as digits (:func:`~microsip_bridge.numbers.number_matches`).
    An empty or blank ``query`` finds every contact."""
    words = query.strip().casefold()
    if not words:
        return list(contacts)
    digits = is_number_like(words)
    found: list[Contact] = []
    for contact in contacts:
        names = (contact.display_name, contact.firstname, contact.lastname)
        numbers = contact.numbers()
        if (
            any(words in name.casefold() for name in names)
            or any(words in number.casefold() for number in numbers)
            or (digits and any(number_matches(number, words) for number in numbers))
        ):
            found.append(contact)
    return found


def lookup_number(
    contacts: Iterable[Contact], number: str, normalise: Normaliser | None = None
) -> Lookup | None:
    """The name MicroSIP's own rule gives the caller ``number`` among ``contacts`` (those it
    loads); else, with ``normalise``, the first contact with a number that is the same phone
    number once normalised (``020 7946 0000`` for ``+442079460000`` in region GB); or None."""
    contacts = list(contacts)
    contact = contact_for_number(contacts, number)
    if contact is not None:
        return Lookup(contact.display_name, SOURCE_MICROSIP, contact.dial_number)
    wanted = None if normalise is None else normalise(number)
    if wanted is None or not wanted.is_phone:
        return None
    for contact in contacts:
        for theirs in contact.numbers():
            if normalise is not None and normalise(theirs).key == wanted.key:
                return Lookup(contact.display_name, SOURCE_MICROSIP, theirs)
    return None
