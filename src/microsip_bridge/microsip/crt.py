"""The Windows C-runtime and Win32 string behaviours MicroSIP relies on."""

# MicroSIP links the Universal CRT statically (microsip.vcxproj: toolsets v140_xp and v141,
# /MT), so the rules below are the UCRT's, read in its source (corecrt_internal_strtox.h,
# ctype.cpp, iswctype.cpp). Its strings are UTF-16 (a Unicode build, facts §0): every length and
# buffer size counts UTF-16 code units, so a character outside the BMP takes two.

from __future__ import annotations

import re

# A C int on Windows (32 bits on x86 and x64 alike): MicroSIP keeps times, durations, keys in one.
INT_MIN = -(2**31)
INT_MAX = 2**31 - 1

# iswspace: what _wtoi skips before a number and CString::Trim removes. Below U+0100 the UCRT
# answers from its _wctype table, which marks tab, LF, VT, FF, CR, space, NEL (U+0085) and
# NO-BREAK SPACE (U+00A0). Above, it asks GetStringTypeW for C1_SPACE, which Windows gives to
# Unicode's space separators (Zs, Zl, Zp) [inferred: from Wine's copy of those tables; U+180E and
# U+200B, separators in older Unicode versions, are left out].
WHITESPACE = (
    "\t\n\v\f\r \x85\xa0\u1680"
    + "".join(map(chr, range(0x2000, 0x200B)))
    + "\u2028\u2029\u202f\u205f\u3000"
)
# The zeros of the digits _wtoi reads (the UCRT's wide_character_to_digit, once _wchartodigit):
# ASCII, fullwidth, and sixteen other sets such as Arabic-Indic, Devanagari and Thai; not every
# Unicode digit (Tamil's, for one, stop the number).
_DIGIT_ZEROS = (
    0x0030, 0x0660, 0x06F0, 0x0966, 0x09E6, 0x0A66, 0x0AE6, 0x0B66, 0x0C66,
    0x0CE6, 0x0D66, 0x0E50, 0x0ED0, 0x0F20, 0x1040, 0x17E0, 0x1810, 0xFF10,
)  # fmt: skip
DIGITS = "".join(chr(zero + n) for zero in _DIGIT_ZEROS for n in range(10))
_DIGIT_VALUES = str.maketrans({chr(zero + n): str(n) for zero in _DIGIT_ZEROS for n in range(10)})
_WTOI = re.compile(f"[{re.escape(WHITESPACE)}]*([+-]?)([{re.escape(DIGITS)}]+)")


def wtoi(text: str) -> int:
    """What MSVC's ``_wtoi`` reads from ``text``: it skips :data:`WHITESPACE`, takes one sign and
    the :data:`DIGITS` after it, and stops at anything else (NUL, which ends a C string, too);
    0 when there is no digit; ``INT_MAX`` or ``INT_MIN`` when the number does not fit an int."""
    match = _WTOI.match(text)
    if match is None:
        return 0
    digits = match.group(2).translate(_DIGIT_VALUES).lstrip("0") or "0"
    # Eleven digits are beyond any int already, and int() refuses more than 4300 of them.
    magnitude = int(digits) if len(digits) <= 10 else INT_MAX + 1
    value = -magnitude if match.group(1) == "-" else magnitude
    return max(INT_MIN, min(INT_MAX, value))


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units, the unit of every Windows buffer size."""
    if text.isascii():
        return len(text)
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def truncate_utf16(text: str, limit: int) -> str:
    """The first ``limit`` UTF-16 code units of ``text``, as a Windows buffer holds them (what
    GetPrivateProfileString copies, say): a character outside the BMP cut in half leaves its high
    surrogate behind, as a lone surrogate. ``text`` itself when it fits."""
    return _cut(text, limit, keep_half=True)


def fit_utf16(text: str, limit: int) -> str:
    """The longest prefix of ``text`` that fits in ``limit`` UTF-16 code units without splitting
    a character: for text we write, which must never end in half a surrogate pair. ``text``
    itself when it fits."""
    return _cut(text, limit, keep_half=False)


def _cut(text: str, limit: int, *, keep_half: bool) -> str:
    if len(text) * 2 <= limit or utf16_len(text) <= limit:
        return text
    used = 0
    for i, ch in enumerate(text):
        wide = ch > "\uffff"
        used += 2 if wide else 1
        if used > limit:
            if keep_half and wide and used - 1 == limit:
                return text[:i] + chr(0xD800 + ((ord(ch) - 0x10000) >> 10))
            return text[:i]
    return text
