"""What number MicroSIP's outgoing hook reports for a dial: its rewriting (facts §1.6 7, §2.4)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from microsip_bridge.microsip import commands
from microsip_bridge.microsip.dialing import (
    DialProfile,
    apply_dial_plan,
    dial_profile,
    format_number,
    is_pstn_number,
    reported_number,
    split_post_dial,
)
from microsip_bridge.microsip.inifile import IniDocument

PBX = DialProfile(domain="pbx.example.com")


def reported_for(target: str, profile: DialProfile = PBX) -> str | None:
    """What the outgoing hook gets when the library's dial builder sends ``target``."""
    cmd = commands.dial(target)
    return reported_number(cmd.target + cmd.post_dial, profile)


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("5551234", "5551234"),
        # facts §1.6 1-2: schemes stripped, then // and a trailing /
        ("sip:1001@pbx.example.com", "1001"),
        ("tel:+15551234", "+15551234"),
        ("callto://5551234/", "5551234"),
        # facts §2.4: the user part only, whatever the domain
        ("alice@other.example.org", "alice"),
        # facts §1.6 7: post-dial DTMF after a comma is not part of the number
        ("5551234,,45", "5551234"),
        # the punctuation of a PSTN number goes
        ("(555) 123-4567", None),  # a space: the builder refuses it (a message otherwise)
        ("555.123-4567", "5551234567"),
    ],
)
def test_the_reported_number_is_the_user_part_after_rewriting(
    target: str, expected: str | None
) -> None:
    if expected is None:
        with pytest.raises(commands.CommandError):
            reported_for(target)
        return
    assert reported_for(target) == expected


def test_a_comma_first_or_last_is_kept_in_the_number() -> None:
    # FormatNumber splits only when the comma is neither the first nor the last character.
    assert split_post_dial("123,45") == ("123", ",45")
    assert split_post_dial("123,") == ("123,", "")
    assert split_post_dial(",123") == (",123", "")
    assert reported_number("123,", PBX) == "123,"


def test_the_dialing_prefix_goes_in_front_of_a_pstn_number() -> None:
    # facts §2.4: the outgoing hook sees the number after dialingPrefix.
    profile = DialProfile(dialing_prefix="9", domain="pbx")
    assert reported_number("5551234", profile) == "95551234"
    assert reported_number("+15551234", profile) == "915551234"  # the '+' gives way to it
    assert reported_number("555-1234", profile) == "95551234"
    # three characters or fewer: an extension, no prefix
    assert reported_number("123", profile) == "123"
    # not a PSTN number: untouched
    assert reported_number("alice", profile) == "alice"
    assert reported_number("alice@host", profile) == "alice"


def test_a_leading_plus_passes_the_pstn_check_whatever_follows() -> None:
    # The check's slip: number[0] != '+' is inside the per-character test.
    assert is_pstn_number("+1abc")
    assert not is_pstn_number("1abc")
    assert format_number("+1a-b", DialProfile(dialing_prefix="0")) == "01ab"


def test_the_dial_plan_filters_and_rewrites() -> None:
    # x: any character; '.': repeat; <a:b>: a becomes b.
    plan = "<0:+49>xxx.|1xx"
    assert apply_dial_plan("0301234", plan) == "+49301234"
    assert apply_dial_plan("123", plan) == "123"
    # no pattern matches: MicroSIP dials nothing
    assert apply_dial_plan("99", plan) == ""
    assert reported_number("99", DialProfile(dial_plan=plan, domain="pbx")) is None
    # the plan's outer parentheses and spaces are trimmed, empty patterns skipped
    assert apply_dial_plan("123", " (||1xx) ") == "123"


def test_a_pattern_atl_cannot_parse_is_skipped() -> None:
    assert apply_dial_plan("5", "[5|5") == "5"  # "[5" does not parse; "5" matches


def test_a_call_by_ip_on_the_local_account_is_not_rewritten() -> None:
    # The plan would refuse these numbers; on the local account it is not applied.
    profile = DialProfile(dial_plan="1xx", domain="pbx", local_account=True)
    assert reported_number("5551234@192.0.2.7", profile) == "5551234"
    assert reported_number("5551234@localhost:5070", profile) == "5551234"
    assert reported_number("5551234@pbx", profile) is None
    no_local = DialProfile(dial_plan="1xx", domain="pbx")
    assert reported_number("5551234@192.0.2.7", no_local) is None
    # a user@host target is no PSTN number: no prefix either way
    assert reported_number("5551234@pbx", DialProfile(dialing_prefix="9", domain="pbx")) == (
        "5551234"
    )


def test_without_a_domain_the_hook_gets_no_number() -> None:
    # GetSIPURI appends no domain, ParseSIPURI then finds no '@': the user part is empty.
    assert reported_number("5551234", DialProfile()) == ""


def test_the_profile_comes_from_the_active_or_chosen_account() -> None:
    doc = IniDocument.from_text(
        "[Settings]\r\naccountId=2\r\nenableLocalAccount=1\r\n"
        "[Account1]\r\ndomain=one\r\ndialingPrefix=8\r\n"
        "[Account2]\r\ndomain=two\r\ndialingPrefix=9\r\ndialPlan=x.\r\n"
    )
    assert dial_profile(doc) == DialProfile("9", "x.", "two", True)
    assert dial_profile(doc, 1) == DialProfile("8", "", "one", True)
    assert dial_profile(doc, 7) == DialProfile(local_account=True)


@given(st.text(alphabet="0123456789*#", min_size=1, max_size=30))
def test_a_plain_number_without_prefix_or_plan_is_reported_as_dialled(number: str) -> None:
    assert reported_number(number, PBX) == number


@given(st.text(max_size=40), st.text(max_size=40))
def test_the_dial_plan_never_raises(number: str, plan: str) -> None:
    result = apply_dial_plan(number, plan)
    assert isinstance(result, str)
