"""How the bridge matches a phone number written in any format: on its digits.

``555-1234``, ``(555) 1234``, ``+1 555 1234`` and ``sip:5551234@pbx`` are one number to a
person. Until the bridge normalises numbers properly (libphonenumber, with national prefixes and
country codes), a number asked for matches a stored one when its digits, in order and together,
appear in the stored number once the characters people write numbers with are taken out of it.
This module is the one place that rule lives: the store's SQL filter is derived from
:data:`NUMBER_SEPARATORS` and held to :func:`number_matches` by a test.
"""

from __future__ import annotations

# What people and phones put between digits; a stored number is compared without them.
NUMBER_SEPARATORS = (" ", "-", ".", "/", "(", ")", "+")
_DIGITS = frozenset("0123456789")


def number_digits(text: str) -> str:
    """The ASCII digits of ``text``, in order: what a number asked for is matched by."""
    return "".join(ch for ch in text if ch in _DIGITS)


def is_number_like(text: str) -> bool:
    """Whether a search text is a number (digits, no letters): ``555-1234`` is, ``Caller 1``
    is a name."""
    return bool(number_digits(text)) and not any(ch.isalpha() for ch in text)


def number_key(stored: str) -> str:
    """``stored`` without :data:`NUMBER_SEPARATORS`: what the digits are looked for in."""
    for separator in NUMBER_SEPARATORS:
        stored = stored.replace(separator, "")
    return stored


def number_matches(stored: str, wanted: str) -> bool:
    """Whether the number ``wanted`` (any format) names ``stored``: its digits appear, together,
    in :func:`number_key` of ``stored``. A ``wanted`` without digits matches nothing."""
    digits = number_digits(wanted)
    return bool(digits) and digits in number_key(stored)
