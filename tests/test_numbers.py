"""The phone-number normaliser: its forms, what it keeps as it is, the account's dialingPrefix,
and properties over any text (hypothesis)."""

from __future__ import annotations

import threading
from pathlib import Path

import phonenumbers as pn
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from microsip_bridge.microsip.accounts import dialing_prefix, dialing_prefix_of, read_accounts
from microsip_bridge.microsip.inifile import IniDocument
from microsip_bridge.numbers import (
    EXTENSION_MAX_DIGITS,
    Normaliser,
    NumberKind,
    normaliser_for,
)

# Real-looking numbers libphonenumber accepts as valid: (region, national as people write it,
# E.164).
COUNTRIES = [
    ("US", "(212) 555-0142", "+12125550142"),
    ("GB", "020 7946 0000", "+442079460000"),
    ("DE", "030 12345678", "+493012345678"),
    ("GR", "210 345 6789", "+302103456789"),
    ("IN", "098765 43210", "+919876543210"),
    ("RU", "8 (495) 123-45-67", "+74951234567"),
]


@pytest.mark.parametrize(("region", "national", "e164"), COUNTRIES)
def test_national_and_international_forms_are_one_number(
    region: str, national: str, e164: str
) -> None:
    normalise = Normaliser(region)
    local, world = normalise(national), normalise(e164)
    assert local.kind is NumberKind.PHONE and world.kind is NumberKind.PHONE
    assert local.e164 == world.e164 == e164
    assert local.same(world) and local.key == e164
    assert local.digits == e164[1:] and local.region == region
    # 00 and the SIP and tel: wrappings MicroSIP reports are the same number too.
    for wrapped in (f"sip:{e164}@pbx.example", f"tel:{e164}", "00" + e164[1:]):
        assert normalise(wrapped).key == e164, wrapped


def test_national_numbers_need_a_region() -> None:
    assert Normaliser("")("020 7946 0000").kind is NumberKind.OTHER
    assert Normaliser("")("+44 20 7946 0000").e164 == "+442079460000"
    assert Normaliser("")("0044 20 7946 0000").e164 == "+442079460000"
    # The same national digits are another number in another region.
    assert Normaliser("GB")("020 7946 0000").key != Normaliser("DE")("020 7946 0000").key


@pytest.mark.parametrize(
    ("raw", "kind", "key"),
    [
        ("101", NumberKind.EXTENSION, "101"),
        ("sip:2002@pbx.example", NumberKind.EXTENSION, "2002"),
        ("alice", NumberKind.SIP, "alice"),
        ("Alice@PBX.example", NumberKind.SIP, "alice@pbx.example"),
        ("sip:bob.smith@pbx", NumberKind.SIP, "bob.smith@pbx"),
        ("*43", NumberKind.OTHER, "43"),
        ("", NumberKind.EMPTY, ""),
        ("   ", NumberKind.EMPTY, ""),
    ],
)
def test_extensions_and_sip_names_are_kept_as_they_are(
    raw: str, kind: NumberKind, key: str
) -> None:
    number = Normaliser("GB")(raw)
    assert number.kind is kind and number.key == key and number.e164 == ""
    assert not number.is_phone


def test_empty_numbers_are_never_the_same() -> None:
    normalise = Normaliser("GB")
    assert not normalise("").same(normalise(""))
    assert normalise("101").same(normalise("sip:101@pbx"))


def test_forms_and_last_digits() -> None:
    number = Normaliser("GB")("020 7946 0000")
    assert number.forms() == ("+442079460000", "020 7946 0000", "442079460000")
    assert number.last(4) == "0000" and number.last(9) == "079460000" and number.last(0) == ""
    assert number.as_dict() == {
        "raw": "020 7946 0000",
        "kind": "phone",
        "e164": "+442079460000",
        "national": "020 7946 0000",
        "digits": "442079460000",
        "region": "GB",
    }


def test_the_dialing_prefix_is_taken_off_dialled_numbers() -> None:
    plain, prefixed = Normaliser("GB"), Normaliser("GB", "9")
    assert prefixed("9 020 7946 0000").e164 == "+442079460000"
    assert prefixed("900442079460000").e164 == "+442079460000"
    # Without the prefix setting the 9 is part of the number (and no UK number).
    assert plain("9 020 7946 0000").e164 != "+442079460000"
    # A short number that starts with the prefix is an extension, not a prefixed number.
    assert prefixed("9123").kind is NumberKind.EXTENSION and prefixed("9123").key == "9123"


def test_the_account_dialing_prefix_is_read_from_the_active_account(tmp_path: Path) -> None:
    ini = tmp_path / "microsip.ini"
    ini.write_text(
        "[Settings]\naccountId=2\n"
        "[Account1]\ndomain=pbx.example\ndialingPrefix=0\n"
        "[Account2]\ndomain=pbx.example\ndialingPrefix= 9 \n",
        encoding="utf-8",
    )
    doc = IniDocument.load(ini)
    assert [a.dialing_prefix for a in read_accounts(doc)] == ["0", "9"]
    assert dialing_prefix(doc) == "9" == dialing_prefix_of(ini)
    ini.write_text("[Account1]\ndomain=pbx.example\ndialingPrefix=8\n", encoding="utf-8")
    assert dialing_prefix_of(ini) == "8"  # no accountId: the first usable account
    assert dialing_prefix_of(tmp_path / "missing.ini") == ""
    assert dialing_prefix_of(None) == ""


def test_the_daemons_normaliser_has_the_accounts_prefix(tmp_path: Path) -> None:
    from microsip_bridge.actions.service import build_actions
    from microsip_bridge.store.engine import make_engine

    ini = tmp_path / "microsip.ini"
    ini.write_text("[Account1]\ndomain=pbx.example\ndialingPrefix=9\n", encoding="utf-8")
    engine = make_engine(f"sqlite:///{tmp_path / 'b.db'}")
    try:
        actions = build_actions({"default_region": "gb"}, home=tmp_path, ini=ini, engine=engine)
    finally:
        engine.dispose()
    assert (actions.normalise.region, actions.normalise.prefix) == ("GB", "9")
    assert actions.normalise is normaliser_for("GB", "9")  # one cache per process
    assert actions.names is not None and actions.names in actions.parts


def test_the_cache_is_bounded_and_thread_safe() -> None:
    normalise = Normaliser("GB", cache_size=100)
    errors: list[BaseException] = []

    def work(offset: int) -> None:
        try:
            for n in range(500):
                assert normalise(f"020 7946 {(n + offset) % 1000:04d}").is_phone
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i * 37,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors and normalise.cached() <= 100


# --- properties -----------------------------------------------------------------------------

REGIONS = ["", "US", "GB", "DE", "GR", "IN", "RU", "FR", "BR", "JP"]


@settings(max_examples=400)
@given(st.sampled_from(REGIONS), st.text(max_size=40))
def test_never_raises_and_is_stable_on_any_text(region: str, raw: str) -> None:
    normalise = Normaliser(region, "9")
    number = normalise(raw)
    assert number.raw == raw
    assert number.kind in NumberKind
    # Asking again (cached) and asking a fresh normaliser (uncached) give the same answer.
    assert normalise(raw) == number == Normaliser(region, "9")(raw)
    if number.is_phone:
        assert number.e164.startswith("+") and number.key == number.e164
        assert normalise(number.e164).key == number.key  # idempotent
        assert normalise(number.key).kind is NumberKind.PHONE
    else:
        assert number.e164 == ""
        assert normalise(number.national).kind is number.kind  # kind is stable


@settings(max_examples=300)
@given(st.sampled_from(REGIONS), st.text(alphabet="0123456789+()- .", max_size=20))
def test_number_like_text_too(region: str, raw: str) -> None:
    number = Normaliser(region)(raw)
    if number.is_phone:
        assert Normaliser(region)(number.e164).key == number.key


def _examples() -> list[tuple[str, str]]:
    found = []
    kinds = (pn.PhoneNumberType.FIXED_LINE, pn.PhoneNumberType.MOBILE)
    for region in sorted(pn.SUPPORTED_REGIONS):
        for kind in kinds:
            example = pn.example_number_for_type(region, kind)
            if example is not None:
                found.append((region, pn.format_number(example, pn.PhoneNumberFormat.E164)))
    return found


EXAMPLES = _examples()


@settings(max_examples=400)
@given(st.sampled_from(EXAMPLES), st.text(alphabet="0123456789", min_size=1, max_size=4))
def test_national_and_e164_of_any_valid_number_share_a_key(
    example: tuple[str, str], tail: str
) -> None:
    region, e164 = example
    candidate = e164[: len(e164) - len(tail)] + tail
    parsed = pn.parse(candidate, None)
    assume(pn.is_valid_number(parsed))
    home = pn.region_code_for_number(parsed)
    international = Normaliser(region)(candidate)
    assert international.is_phone and international.key == candidate
    national = international.national
    # Nationally short numbers are read as PBX extensions: the documented trade-off.
    assume(sum(ch.isdigit() for ch in national) > EXTENSION_MAX_DIGITS)
    assert Normaliser(home)(national).key == candidate
