"""Phone numbers, one way for the whole bridge: normalised with libphonenumber, and matched.

Every part that compares numbers (caller names, rules, webhooks, the API's filters, the
directory's presence, deduplication, purges) goes through :class:`Normaliser`, so ``+44 20 7946
0000``, ``020 7946 0000`` (region GB) and ``sip:+442079460000@pbx`` are one number everywhere.

A :class:`Number` has the forms integrators ask for: E.164 (``+442079460000``), national
(``020 7946 0000``), digits only (``442079460000``) and the last N digits (3CX's
``MaxLength``), plus :attr:`Number.key`, what two numbers are compared by. What libphonenumber
cannot read as a phone number is kept as it was and flagged: internal extensions (``101``),
SIP user names (``alice`` or ``alice@pbx``), service codes (``*43``), empty numbers.

The normaliser never raises on any input (MicroSIP reports whatever a SIP user part holds,
facts §2.4) and caches its answers; libphonenumber is imported on first use, not at import.

The digit rule below (:func:`number_matches`) stays for what people type into a search box:
the digits they typed, together, anywhere in a stored number.
"""

from __future__ import annotations

import enum
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

# What people and phones put between digits; a stored number is compared without them.
NUMBER_SEPARATORS = (" ", "-", ".", "/", "(", ")", "+")
_DIGITS = frozenset("0123456789")
# A number of at most this many digits, with no +, no 00 and no trunk prefix making it a phone
# number in the default region, is an internal extension (PBX extensions are 2-6 digits).
EXTENSION_MAX_DIGITS = 6
# The number of digits :meth:`Number.last` defaults to: national significant numbers of most
# countries are 9-10 digits, and 3CX's CRM templates match on the last 9 by default.
DEFAULT_LAST_DIGITS = 9
CACHE_SIZE = 65536
_SCHEME = re.compile(r"^(?:sips?|tel|callto):/{0,2}", re.IGNORECASE)
_VISUAL = re.compile(r"[\s\-./()\u00a0\u2010-\u2015\u2212]")
_PHONE_CHARS = re.compile(r"^\+?[0-9]+$")


class NumberKind(enum.StrEnum):
    """What a number is, to the normaliser."""

    PHONE = "phone"  # libphonenumber read it: it has an E.164 form
    EXTENSION = "extension"  # a short internal number (101), kept as it is
    SIP = "sip"  # a SIP user name (alice, alice@pbx), kept as it is
    OTHER = "other"  # digits libphonenumber could not place (no region to read it in...)
    EMPTY = "empty"  # no number at all (MicroSIP passes none for anonymous callers)


@dataclass(frozen=True, slots=True)
class Number:
    """One number in all its forms. For a number that is not a phone number (``kind`` other
    than ``phone``) ``e164`` is empty, ``national`` is the number as it came (without a
    ``sip:`` scheme) and ``digits`` its ASCII digits."""

    raw: str
    kind: NumberKind
    e164: str
    national: str
    digits: str
    region: str
    key: str

    @property
    def is_phone(self) -> bool:
        return self.kind is NumberKind.PHONE

    @property
    def is_internal(self) -> bool:
        """An extension or a SIP user name: a number of the PBX, not of the phone network."""
        return self.kind in (NumberKind.EXTENSION, NumberKind.SIP)

    def last(self, count: int = DEFAULT_LAST_DIGITS) -> str:
        """The last ``count`` digits (all of them when there are fewer)."""
        return self.digits[-count:] if count > 0 else ""

    def same(self, other: Number) -> bool:
        """Whether ``other`` is the same number: equal keys (E.164 for phone numbers), never
        for two empty numbers."""
        return bool(self.key) and self.key == other.key

    def forms(self) -> tuple[str, ...]:
        """Every form a rule's pattern is tried on: E.164, national, digits, raw (no
        repeats, in that order)."""
        seen: list[str] = []
        for form in (self.e164, self.national, self.digits, self.raw):
            if form and form not in seen:
                seen.append(form)
        return tuple(seen)

    def as_dict(self) -> dict[str, str]:
        """The forms as the API and webhooks show them."""
        return {
            "raw": self.raw,
            "kind": self.kind.value,
            "e164": self.e164,
            "national": self.national,
            "digits": self.digits,
            "region": self.region,
        }


class Normaliser:
    """Numbers to :class:`Number`, for one default region and dialling prefix.

    ``region``: the ISO 3166 code national numbers are read in (``GB``: ``020...`` is London);
    empty: only numbers written with ``+`` or ``00`` become E.164. ``prefix``: the account's
    ``dialingPrefix`` (facts §3.5), which MicroSIP puts before dialled numbers: a number that
    starts with it and is too long to be an extension is read without it. Thread-safe; the
    last :data:`CACHE_SIZE` answers are kept.
    """

    def __init__(self, region: str = "", prefix: str = "", *, cache_size: int = CACHE_SIZE):
        self.region = (region or "").strip().upper()
        self.prefix = "".join(ch for ch in (prefix or "") if ch in _DIGITS)
        self._cache: OrderedDict[str, Number] = OrderedDict()
        self._cache_size = max(0, cache_size)
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Normaliser(region={self.region!r}, prefix={self.prefix!r})"

    def __call__(self, raw: str) -> Number:
        text = raw if isinstance(raw, str) else str(raw)
        with self._lock:
            found = self._cache.get(text)
            if found is not None:
                self._cache.move_to_end(text)
                return found
        try:
            number = self._normalise(text)
        except Exception:  # never raise: anything libphonenumber chokes on is kept as it is
            number = _kept(text, _strip_scheme(text), NumberKind.OTHER)
        if self._cache_size:
            with self._lock:
                self._cache[text] = number
                if len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
        return number

    def cached(self) -> int:
        """How many answers the cache holds."""
        return len(self._cache)

    def _normalise(self, raw: str) -> Number:
        text = _strip_scheme(raw.strip())
        if "@" in text:
            user, _, _domain = text.partition("@")
            if not _PHONE_CHARS.match(_VISUAL.sub("", user)):
                return _kept(raw, text, NumberKind.SIP)
            text = user  # 5551234@pbx: the user part is the number
        text = text.split(";", 1)[0]  # tel: parameters (;ext=, ;phone-context=)
        compact = _VISUAL.sub("", text)
        if not compact:
            return _kept(raw, text, NumberKind.EMPTY)
        if not _PHONE_CHARS.match(compact):
            letters = any(ch.isalpha() for ch in compact)
            return _kept(raw, text, NumberKind.SIP if letters else NumberKind.OTHER)
        international = compact.startswith(("+", "00"))
        if (
            self.prefix
            and not international
            and compact.startswith(self.prefix)
            and len(compact) - len(self.prefix) > EXTENSION_MAX_DIGITS
        ):
            compact = compact[len(self.prefix) :]
            international = compact.startswith("00")
        if not international and len(compact) <= EXTENSION_MAX_DIGITS:
            return _kept(raw, text, NumberKind.EXTENSION)
        if compact.startswith("00") and not self.region:
            compact = "+" + compact[2:]
        parsed = _parse(compact, self.region)
        if parsed is None and compact.startswith("00"):
            # 00 is the international prefix nearly everywhere, and SIP providers take it
            # where the region's own is another (011 in the US): read it as + then.
            parsed = _parse("+" + compact[2:], "")
        if parsed is None:
            return _kept(raw, text, NumberKind.OTHER)
        return _phone(raw, parsed)


def _strip_scheme(text: str) -> str:
    return _SCHEME.sub("", text, count=1)


def _kept(raw: str, text: str, kind: NumberKind) -> Number:
    digits = "".join(ch for ch in text if ch in _DIGITS)
    if kind is NumberKind.SIP:
        key = text.casefold()
    elif kind is NumberKind.EMPTY:
        key = ""
    else:
        key = digits or text.casefold()
    return Number(raw, kind, "", text, digits, "", key)


_phonenumbers: Any = None
_import_lock = threading.Lock()


def _library() -> Any:
    global _phonenumbers
    if _phonenumbers is None:
        with _import_lock:
            if _phonenumbers is None:
                import phonenumbers

                _phonenumbers = phonenumbers
    return _phonenumbers


def _parse(compact: str, region: str) -> Any | None:
    pn = _library()
    try:
        parsed = pn.parse(compact, region or None)
    except pn.NumberParseException:
        return None
    # Possible, not valid: fictional numbers (555-01xx) and new ranges must still normalise.
    # Not "possible locally only" either: a 7-digit US number has no area code to give it.
    if pn.is_possible_number_with_reason(parsed) != pn.ValidationResult.IS_POSSIBLE:
        return None
    return parsed


def _phone(raw: str, parsed: Any) -> Number:
    pn = _library()
    e164 = pn.format_number(parsed, pn.PhoneNumberFormat.E164)
    national = pn.format_number(parsed, pn.PhoneNumberFormat.NATIONAL)
    # Most country codes have one region; asking libphonenumber to pick among several (+1,
    # +7, +44...) validates the number against each, a third of the whole cost.
    regions = pn.COUNTRY_CODE_TO_REGION_CODE.get(parsed.country_code, ())
    region = regions[0] if len(regions) == 1 else pn.region_code_for_number(parsed) or ""
    if region == "ZZ":
        region = ""
    return Number(raw, NumberKind.PHONE, e164, national, e164[1:], region, e164)


_shared: dict[tuple[str, str], Normaliser] = {}


def normaliser_for(region: str, prefix: str = "") -> Normaliser:
    """The process's one :class:`Normaliser` for a default ``region`` and a dialling
    ``prefix`` (the account's ``dialingPrefix``, read from microsip.ini by the caller): every
    part that asks for the same pair shares one cache."""
    wanted = Normaliser(region, prefix)
    pair = (wanted.region, wanted.prefix)
    with _import_lock:
        return _shared.setdefault(pair, wanted)


# --- search-box matching on digits ----------------------------------------------------------


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
