"""The C runtime's and Win32's string rules MicroSIP relies on: _wtoi, UTF-16 lengths and cuts."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from microsip_bridge.microsip.crt import (
    DIGITS,
    INT_MAX,
    INT_MIN,
    WHITESPACE,
    fit_utf16,
    truncate_utf16,
    utf16_len,
    wtoi,
)

# --- _wtoi ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("43", 43),
        ("  -5x", -5),
        ("+7", 7),
        ("abc", 0),
        ("", 0),
        ("99999999999", INT_MAX),
        ("-99999999999", INT_MIN),
        ("0000000000000000000012", 12),
        ("2147483647", INT_MAX),
        ("2147483648", INT_MAX),
        ("-2147483648", INT_MIN),
        ("-2147483649", INT_MIN),
        ("9" * 5000, INT_MAX),  # beyond what int() takes from a string
        ("+-5", 0),
        ("- 5", 0),
        ("0x1A", 0),
        ("1e5", 1),
        ("12\x003", 12),  # NUL ends the C string
        ("\x00 5", 0),
        # iswspace in the UCRT: its table for NEL and NO-BREAK SPACE, GetStringTypeW above.
        ("\xa0 5", 5),
        ("\x85-3", -3),
        ("\u3000\u2028\u202f8", 8),
        ("\u200b5", 0),  # ZERO WIDTH SPACE is no space
        # _wchartodigit: fullwidth and many scripts' digits count, in any mix.
        ("\uff11\uff12", 12),
        ("\u0663\u0664", 34),  # Arabic-Indic
        ("1\u09682", 122),  # Bengali two between ASCII digits
        ("\u0be7", 0),  # Tamil one is not among them
        ("\U0001d7cf", 0),  # MATHEMATICAL BOLD DIGIT ONE, outside the BMP
    ],
)
def test_wtoi(text: str, value: int) -> None:
    assert wtoi(text) == value


# A model of the UCRT's parse_integer for _wtoi, written from its source independently of
# crt.wtoi: it walks UTF-16 code units up to a NUL with 32-bit unsigned arithmetic and an
# overflow flag, and takes its classes from other places (the _wctype table, Unicode's
# categories, the DIGIT_RANGE_TEST cascade of wide_character_to_digit).
_TABLE_SPACES = frozenset((0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x20, 0x85, 0xA0))
_ZEROS = (0x0660, 0x06F0, 0x0966, 0x09E6, 0x0A66, 0x0AE6, 0x0B66, 0x0C66, 0x0CE6, 0x0D66)
_ZEROS += (0x0E50, 0x0ED0, 0x0F20, 0x1040, 0x17E0, 0x1810)


def _model_is_space(unit: int) -> bool:
    if unit < 256:
        return unit in _TABLE_SPACES
    return unicodedata.category(chr(unit)) in ("Zs", "Zl", "Zp")


def _model_digit(unit: int) -> int:
    if unit < 0x30:
        return -1
    if unit < 0x3A:
        return unit - 0x30
    if unit < 0xFF10:
        for zero in _ZEROS:
            if unit < zero:
                return -1
            if unit < zero + 10:
                return unit - zero
        return -1
    return unit - 0xFF10 if unit < 0xFF1A else -1


def model_wtoi(text: str) -> int:
    data = text.encode("utf-16-le", "surrogatepass")
    units = [int.from_bytes(data[i : i + 2], "little") for i in range(0, len(data), 2)] + [0]
    at = 0
    while _model_is_space(units[at]):
        at += 1
    negative = units[at] == ord("-")
    if units[at] in (ord("-"), ord("+")):
        at += 1
    number, overflow, read = 0, False, False
    while 0 <= (digit := _model_digit(units[at])) < 10:
        read = True
        multiplied = (number * 10) & 0xFFFFFFFF
        added = (multiplied + digit) & 0xFFFFFFFF
        overflow = overflow or number > 0xFFFFFFFF // 10 or added < multiplied
        number = added
        at += 1
    if not read:
        return 0
    if overflow or number > (2**31 if negative else 2**31 - 1):
        return -(2**31) if negative else 2**31 - 1
    return -number if negative else number


_PIECES = st.sampled_from(
    [
        *" \t\n\v\f\r\x85\xa0\u1680\u2000\u200a\u200b\u180e\u3000",
        *"+-0123456789xX.e\x00",
        *"\u0660\u0669\u06f5\u0967\u0be7\u1819\uff10\uff19\uff1a\U0001d7cf\ud800",
        *("2147483648", "4294967296", "0000000000"),
    ]
)
_WTOI_TEXT = st.one_of(
    st.lists(_PIECES, max_size=14).map("".join),
    st.text(max_size=20),
    st.tuples(st.sampled_from(["", "+", "-", " -", "\xa0+"]), st.integers(0, 2**70)).map(
        lambda parts: parts[0] + str(parts[1])
    ),
)


@given(_WTOI_TEXT)
def test_wtoi_matches_a_model_of_the_ucrt(text: str) -> None:
    assert wtoi(text) == model_wtoi(text)


def test_whitespace_and_digits_are_what_the_model_says() -> None:
    for unit in range(0x10000):
        ch = chr(unit)
        assert (ch in WHITESPACE) == _model_is_space(unit), hex(unit)
        assert (ch in DIGITS) == (_model_digit(unit) != -1), hex(unit)


# --- UTF-16 lengths and cuts ---------------------------------------------------------------------


def test_utf16_len_counts_code_units() -> None:
    assert utf16_len("") == 0
    assert utf16_len("abc") == 3
    assert utf16_len("é王") == 2
    assert utf16_len("a\U0001f4de") == 3
    assert utf16_len("\ud800") == 1  # a lone surrogate is one unit


def test_truncate_utf16_short_text_is_unchanged() -> None:
    text = "abc"
    assert truncate_utf16(text, 5) is text
    assert truncate_utf16("\U0001f4de\U0001f4de", 2) == "\U0001f4de"


def test_a_cut_pair_leaves_its_high_surrogate_where_windows_would_but_not_when_we_write() -> None:
    text = "ab\U0001f4de"
    assert truncate_utf16(text, 3) == "ab\ud83d"
    assert fit_utf16(text, 3) == "ab"
    assert truncate_utf16(text, 4) is text
    assert fit_utf16(text, 4) is text
    assert truncate_utf16(text, 0) == fit_utf16(text, -1) == ""


@given(st.text(max_size=40), st.integers(0, 90))
def test_cuts_hold_the_first_units(text: str, limit: int) -> None:
    data = text.encode("utf-16-le")
    cut = truncate_utf16(text, limit)
    assert cut.encode("utf-16-le", "surrogatepass") == data[: 2 * limit]
    fitted = fit_utf16(text, limit)
    assert text.startswith(fitted)
    assert utf16_len(fitted) <= limit
    if fitted != text:
        assert utf16_len(text[: len(fitted) + 1]) > limit
