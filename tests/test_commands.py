"""MicroSIP's command grammar: builders, parser, validator, WM_COPYDATA payload (facts §1)."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from microsip_bridge.errors import BridgeError, CommandError, UnsafeInputError
from microsip_bridge.microsip import commands as c
from microsip_bridge.microsip.commands import (
    S19,
    S20,
    S22,
    Channel,
    Command,
    Verb,
    Version,
    check_version,
    encode_copydata,
    parse,
    validate,
)
from microsip_bridge.microsip.crt import WHITESPACE

ALL = (S19, S20, S22)


def meaning(cmd: Command) -> tuple[object, ...]:
    return (cmd.verb, cmd.target, cmd.post_dial, cmd.message, cmd.digits, cmd.account)


# --- Version -------------------------------------------------------------------------------------


def test_version_parse_and_order() -> None:
    assert Version.parse("3.22.3") == Version(3, 22, 3)
    assert Version.parse(" 3.20 ") == S20
    assert Version(3, 22, 3) > S22 > Version(3, 20, 5) > S20 > S19
    assert str(Version(3, 22, 3)) == "3.22.3"
    assert str(S20) == "3.20"
    for bad in ("", "3", "3.x", "v3.22", "3.22.3.4.5", "３.２２"):
        with pytest.raises(CommandError):
            Version.parse(bad)


# --- builders ------------------------------------------------------------------------------------


def test_dial_plain_number_works_everywhere() -> None:
    cmd = c.dial("5551234")
    assert (cmd.text, cmd.verb, cmd.target, cmd.min_version, cmd.max_version) == (
        "5551234",
        Verb.DIAL,
        "5551234",
        S19,
        None,
    )


@pytest.mark.parametrize(
    ("target", "text"),
    [
        ("sip:1001@pbx.example", "1001@pbx.example"),
        ("SIP:1001@pbx.example", "1001@pbx.example"),  # case-insensitive (facts §1.6 1)
        ("tel:+15551234", "+15551234"),
        ("callto:5551234", "5551234"),
        ("callto://5551234/", "5551234"),  # // and one trailing / (facts §1.6 2)
        ("sip://1001@pbx/", "1001@pbx"),
        ("dial:5551234", "5551234"),  # S22 scheme (facts §1.7)
        ("DialPad:5551234", "5551234"),
        ("  5551234  ", "5551234"),
        ("tel:%2B15551234", "+15551234"),  # 3.22 decodes %2B; we do it for every version
    ],
)
def test_dial_strips_schemes_so_the_text_works_on_every_version(target: str, text: str) -> None:
    cmd = c.dial(target)
    assert cmd.text == text
    assert cmd.min_version == S19
    assert cmd.max_version is None
    for version in ALL:
        assert parse(cmd.text, version).target == text


def test_dial_with_post_dial_dtmf() -> None:
    # facts §1.6 7: "5551234,,45" dials, waits two seconds, sends 45.
    cmd = c.dial("5551234,,45")
    assert (cmd.target, cmd.post_dial) == ("5551234", ",,45")
    cmd = c.dial("5551234", dtmf="45")
    assert (cmd.text, cmd.post_dial) == ("5551234,45", ",45")
    cmd = c.dial("sip:100@pbx,1", dtmf=",#b")
    assert (cmd.text, cmd.target, cmd.post_dial) == ("100@pbx,1,,#B", "100@pbx", ",1,,#B")


def test_dial_with_account_needs_320_and_is_mangled_on_319() -> None:
    cmd = c.dial("5551234", account=2)
    assert cmd.text == "/account:2 5551234"
    assert (cmd.verb, cmd.account, cmd.min_version) == (Verb.DIAL, 2, S20)
    # 3.19 has no /account: and would send "5551234" as a message to "/account:2".
    old = parse(cmd.text, S19)
    assert (old.verb, old.target, old.message) == (Verb.MESSAGE, "/account:2", "5551234")
    with pytest.raises(CommandError, match=r"needs MicroSIP 3\.20"):
        check_version(cmd, S19)
    check_version(cmd, Version(3, 22, 3))


@pytest.mark.parametrize(
    ("target", "why"),
    [
        ("sips:1001@pbx", "sips"),  # facts §1.6 1, §6
        ("SIPS:1001@pbx", "sips"),
        ("555 1234", "instant message"),  # facts §1.6 6
        ("555\t1234", "whitespace"),
        ("555\u00a01234", "whitespace"),
        ("555%201234", "%20"),
        ("/answer", "switch"),
        ("sip:/hangupall", "switch"),
        ("msip:hold", "command prefix"),
        ("h323:1001", "scheme"),
        ("sip:tel:1001", "scheme"),  # only one scheme is stripped
        ("alice:secret@pbx", "scheme"),
        ('"5551234"', "quote"),
        ("1001/account:2", "/account:"),
        ("1001/password:x", "/password:"),
        ("", "empty"),
        ("sip:", "empty"),
        ("callto:////", "switch"),
        ("555,12x", "post-dial"),
        ("555\x00", "NUL"),
    ],
)
def test_dial_refusals_explain_why(target: str, why: str) -> None:
    with pytest.raises(BridgeError, match=why):
        c.dial(target)


def test_dial_refuses_bad_dtmf_and_accounts() -> None:
    with pytest.raises(CommandError, match="0-9"):
        c.dial("555", dtmf="12E")
    with pytest.raises(CommandError, match="empty"):
        c.dial("555", dtmf=",,")
    with pytest.raises(CommandError, match="N >= 1"):
        c.dial("555", account=0)
    with pytest.raises(CommandError, match="integer"):
        c.dial("555", account=True)


def test_message_uses_the_number_space_text_form() -> None:
    # facts §1.6 6: microsip.exe "123 hello" sends "hello" to 123.
    cmd = c.message("sip:1001@pbx", '  hello there, "friend"  ')
    assert cmd.text == '1001@pbx hello there, "friend"'
    assert (cmd.verb, cmd.target, cmd.message, cmd.min_version) == (
        Verb.MESSAGE,
        "1001@pbx",
        'hello there, "friend"',
        S19,
    )
    for version in ALL:
        assert meaning(parse(cmd.text, version)) == meaning(cmd)


def test_message_refusals() -> None:
    with pytest.raises(CommandError, match="call the number instead"):
        c.message("1001", "   ")
    with pytest.raises(CommandError, match="/account:"):
        c.message("1001", "switch to /account:2 please")
    with pytest.raises(CommandError, match="post-dial"):
        c.message("1001,2", "hi")
    with pytest.raises(UnsafeInputError, match="control"):
        c.message("1001", "line\nbreak")
    with pytest.raises(UnsafeInputError, match="refused"):
        c.message("1001", "x" * 2000)


def test_simple_commands_and_their_versions() -> None:
    # facts §1.6 4, §1.7
    expected = {
        c.answer(): ("/answer", Verb.ANSWER, S19),
        c.hangup_all(): ("/hangupall", Verb.HANGUP_ALL, S19),
        c.hangup_incoming(): ("/hangupincoming", Verb.HANGUP_INCOMING, S22),
        c.hangup_calling(): ("/hangupcalling", Verb.HANGUP_CALLING, S20),
        c.hold(): ("msip:hold", Verb.HOLD, S19),
        c.minimize(): ("msip:minimize", Verb.MINIMIZE, S19),
        c.mic_up(): ("msip:micup", Verb.MIC_UP, S19),
        c.mic_down(): ("msip:micdown", Verb.MIC_DOWN, S19),
        c.speaker_up(): ("msip:speakup", Verb.SPEAKER_UP, S19),
        c.speaker_down(): ("msip:speakdown", Verb.SPEAKER_DOWN, S19),
        c.mic_unmute(): ("msip:micunmute", Verb.MIC_UNMUTE, S22),
        c.speaker_unmute(): ("msip:speakunmute", Verb.SPEAKER_UNMUTE, S22),
        c.account(3): ("/account:3", Verb.ACCOUNT, S20),
        c.transfer("tel:1002"): ("/transfer:1002", Verb.TRANSFER, S19),
    }
    for cmd, (text, verb, since) in expected.items():
        assert (cmd.text, cmd.verb, cmd.min_version) == (text, verb, since), cmd
    # On 3.20 /hangupincoming is an unknown switch, which MicroSIP dials (facts §1.7).
    assert parse("/hangupincoming", S20).verb is Verb.DIAL
    assert c.account(3).account == 3


def test_every_simple_command_has_a_builder_that_parses_back() -> None:
    for verb, (text, doc) in c.SIMPLE_COMMANDS.items():
        cmd = c.build(verb)
        assert (cmd.text, cmd.verb) == (text, verb)
        name = "exit_" if verb is Verb.EXIT else verb.value.replace("-", "_")
        builder = getattr(c, name)
        assert (builder(), builder.__name__, builder.__doc__) == (cmd, name, doc)
    for verb in (Verb.DIAL, Verb.MIC_TOGGLE, Verb.NOTHING):
        with pytest.raises(CommandError, match="use its builder"):
            c.build(verb)


def test_mute_commands_model_the_322_change() -> None:
    # facts §1.5: before 3.22 micmute/speakmute toggle; in 3.22 they set "muted".
    mute = c.mic_mute()
    assert (mute.text, mute.min_version) == ("msip:micmute", S22)
    with pytest.raises(CommandError, match=r"3\.22"):
        check_version(mute, S20)
    old_toggle = c.mic_toggle(S20)
    assert (old_toggle.text, old_toggle.verb) == ("msip:micmute", Verb.MIC_TOGGLE)
    assert old_toggle.works_on(S19)
    assert old_toggle.works_on(Version(3, 20, 5))
    assert not old_toggle.works_on(S22)
    with pytest.raises(CommandError, match=r"only before MicroSIP 3\.22"):
        check_version(old_toggle, Version(3, 22, 3))
    new_toggle = c.mic_toggle(Version(3, 22, 3))
    assert (new_toggle.text, new_toggle.min_version) == ("msip:micmuteclick", S22)
    assert c.speaker_toggle(S19).text == "msip:speakmute"
    assert c.speaker_toggle(S22).text == "msip:speakmuteclick"
    assert c.speaker_mute().verb is Verb.SPEAKER_MUTE
    # On 3.20, micmuteclick is no msip: verb, so MicroSIP would dial "micmuteclick".
    assert parse("msip:micmuteclick", S20).verb is Verb.DIAL
    with pytest.raises(CommandError):
        c.mic_toggle(Version(3, 18))


def test_dtmf_commands() -> None:
    cmd = c.dtmf("12*#abcd")
    assert (cmd.text, cmd.digits, cmd.min_version) == ("/dtmf:12*#ABCD", "12*#ABCD", S19)
    to_dialer = c.dtmf("55", dialer_only=True)
    assert (to_dialer.text, to_dialer.verb, to_dialer.digits) == (
        "/dtmf:55?",
        Verb.DTMF_TO_DIALER,
        "55",
    )
    # The trailing "?" is documented for 3.22 only (facts §1.6 4, S22 Dialer.cpp).
    assert to_dialer.min_version == S22
    for bad in ("", "1,2", "12E", "1 2"):
        with pytest.raises(CommandError):
            c.dtmf(bad)


def test_account_refusals() -> None:
    for bad in (0, -1, 2**31):
        with pytest.raises(CommandError):
            c.account(bad)


def test_exit_and_minimized_are_command_line_only() -> None:
    ex = c.exit_()
    assert (ex.text, ex.verb, ex.command_line_only) == ("/exit", Verb.EXIT, True)
    assert c.start_minimized().command_line_only
    with pytest.raises(CommandError, match="start-up switch"):
        encode_copydata(ex)
    # Sent over WM_COPYDATA, "/exit" is not a switch: MicroSIP would dial it (facts §1.1).
    assert parse("/exit").verb is Verb.DIAL
    with pytest.raises(CommandError, match=r"microsip\.exe /exit"):
        validate("/exit")
    assert parse("/exit", channel=Channel.COMMAND_LINE).verb is Verb.EXIT


# --- the parser: what MicroSIP does with a string -------------------------------------------------


def test_parse_message_form() -> None:
    cmd = parse("123 hello")  # facts §1.6 6
    assert (cmd.verb, cmd.target, cmd.message) == (Verb.MESSAGE, "123", "hello")


def test_parse_web_claim_call_sip_is_a_message() -> None:
    # facts §9: "MicroSIP.exe call sip:..." sends the text "sip:..." to the number "call".
    cmd = parse("call sip:1001@pbx", channel=Channel.COMMAND_LINE)
    assert (cmd.verb, cmd.target, cmd.message) == (Verb.MESSAGE, "call", "sip:1001@pbx")


def test_parse_switches_cannot_be_combined() -> None:
    # facts §1.1: "/minimized 123" is "dial /minimized with message 123".
    cmd = parse("/minimized 123", channel=Channel.COMMAND_LINE)
    assert (cmd.verb, cmd.target, cmd.message) == (Verb.MESSAGE, "/minimized", "123")
    assert parse("/minimized", channel=Channel.COMMAND_LINE).verb is Verb.START_MINIMIZED
    assert parse("", channel=Channel.COMMAND_LINE).verb is Verb.SHOW


def test_parse_hidden_switch_disappeared_in_322() -> None:
    # facts §1.2: S22 has no /hidden, so it is treated as a number to dial.
    assert parse("/hidden", S20, channel=Channel.COMMAND_LINE).verb is Verb.START_HIDDEN
    assert parse("/hidden", S22, channel=Channel.COMMAND_LINE).verb is Verb.DIAL


def test_parse_strips_one_pair_of_quotes_and_whitespace() -> None:
    # facts §1.5 1
    assert parse('  "5551234"  ').target == "5551234"
    assert parse('""5551234""').target == '"5551234"'
    assert parse('"').verb is Verb.NOTHING


def test_parse_msip_prefix_is_case_sensitive_and_falls_back_to_dialling() -> None:
    # facts §1.5: msip:123 dials 123; MSIP:hold is no msip: command.
    assert (parse("msip:123").verb, parse("msip:123").target) == (Verb.DIAL, "123")
    assert parse("msip:hold").verb is Verb.HOLD
    assert parse("MSIP:hold").target == "MSIP:hold"
    assert parse("msip:").verb is Verb.NOTHING
    transfer = parse("msip:transfer_1002")
    assert (transfer.verb, transfer.target) == (Verb.TRANSFER, "1002")


def test_parse_sips_is_not_stripped() -> None:
    # facts §1.6 1: sips: stays, MicroSIP builds sip:sips:...
    cmd = parse("sips:1001@pbx")
    assert (cmd.verb, cmd.target) == (Verb.DIAL, "sips:1001@pbx")
    with pytest.raises(CommandError, match="sips"):
        validate("sips:1001@pbx")


def test_parse_double_slash_only_from_320() -> None:
    # facts §1.6 2
    assert parse("callto://123/", S19).target == "//123/"
    new = parse("callto://123/", S20)
    assert (new.target, new.min_version) == ("123", S20)
    assert parse("callto://123/", S19).max_version == S20


def test_parse_dial_schemes_only_in_322() -> None:
    assert parse("dialpad:123", S20).target == "dialpad:123"
    assert parse("dialpad:123", S22).target == "123"
    assert parse("dialpad:123").min_version == S22


def test_parse_percent_decoding_only_in_322() -> None:
    # facts §1.6 6: S22 replaces %20 and %2B in the number (after the split at the space).
    assert parse("%2B4930%20123", S22).target == "+4930 123"
    assert parse("%2B4930%20123", S20).target == "%2B4930%20123"
    assert parse("%2b1", S22).target == "%2b1"  # case-sensitive Replace
    msg = parse("123 a%20b", S22)
    assert (msg.verb, msg.message) == (Verb.MESSAGE, "a%20b")


def test_parse_account_token_cutting_and_its_bug() -> None:
    # facts §1.6 3: correct at the start and at the end, too much deleted in the middle.
    start = parse("/account:2 5551234")
    assert (start.verb, start.target, start.account) == (Verb.DIAL, "5551234", 2)
    end = parse("5551234 /account:2")
    assert (end.verb, end.target, end.account) == (Verb.DIAL, "5551234", 2)
    middle = parse("555 /account:2 hello")  # 4 characters too many go: "hell"
    assert (middle.verb, middle.target, middle.message) == (Verb.MESSAGE, "555", "o")
    with pytest.raises(CommandError, match="start or the end"):
        validate("555 /account:2 hello")
    alone = parse("/account:4")
    assert (alone.verb, alone.account) == (Verb.ACCOUNT, 4)
    # N <= 0 selects nothing; the token is still cut out.
    zero = parse("/account:0 555")
    assert (zero.verb, zero.target, zero.account) == (Verb.DIAL, "555", None)


def test_parse_passwords_are_recognised_and_never_validated() -> None:
    saved = parse("/account:3 /password:s3cret")
    assert (saved.verb, saved.account, saved.password) == (Verb.SET_ACCOUNT_PASSWORD, 3, "s3cret")
    assert "s3cret" not in repr(saved)
    temp = parse("/password:abc")
    assert (temp.verb, temp.password) == (Verb.PASSWORD, "abc")
    assert parse("/password:abc", S19).verb is Verb.DIAL
    for text in ("/account:3 /password:s3cret", "/password:abc"):
        with pytest.raises(CommandError, match="passwords"):
            validate(text)


def test_parse_subcommands_moved_after_scheme_stripping_in_320() -> None:
    # S19 checks /answer in CommandLine on the whole string; S20+ after stripping the scheme.
    assert parse("sip:/answer", S19).verb is Verb.DIAL
    assert parse("sip:/answer", S20).verb is Verb.ANSWER
    assert parse("msip:/hangupall", S19).verb is Verb.DIAL
    assert parse("msip:/hangupall", S22).verb is Verb.HANGUP_ALL
    assert parse("/answer", S19).verb is Verb.ANSWER
    assert parse("/dtmf:", S22).verb is Verb.NOTHING
    assert parse("/transfer:", S19).verb is Verb.NOTHING


def test_parse_unknown_switch_is_dialled_and_validate_refuses_it() -> None:
    # facts §1.7: "An unknown switch is treated as a number to dial".
    for text in ("/hangup", "/hold", "/status", "/i:file.ini"):
        assert parse(text).verb is Verb.DIAL
        with pytest.raises(CommandError, match="switch"):
            validate(text)


@pytest.mark.parametrize(
    "text",
    ["/reset", "/resetnoask", " /reset ", '"/resetnoask"', "/RESET"],
)
def test_reset_is_never_parsed_validated_or_encoded(text: str) -> None:
    for channel in Channel:
        with pytest.raises(CommandError, match="delete"):
            parse(text, channel=channel)
    with pytest.raises(CommandError):
        encode_copydata(text)


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("123\x00456", "NUL"),
        ("123\x07", "control"),
        ("123\x85", "control"),  # a C1 control
        ("12\ud800", "surrogate"),
        ("9" * 1025, "refused"),
    ],
)
def test_parse_refuses_unsafe_text(text: str, error: str) -> None:
    with pytest.raises(UnsafeInputError, match=error):
        parse(text)


def test_length_limit_counts_utf16_units() -> None:
    parse("9" * 1024)
    with pytest.raises(UnsafeInputError):
        parse("1 " + "\U0001f4de" * 512)  # 2 + 1024 UTF-16 units


def test_validate_checks_the_version_when_given() -> None:
    with pytest.raises(CommandError, match=r"needs MicroSIP 3\.22 or newer; 3\.20 would call"):
        validate("/hangupincoming", S20)
    assert validate("/hangupincoming", S22).verb is Verb.HANGUP_INCOMING
    with pytest.raises(CommandError, match="nothing"):
        validate("msip:")
    with pytest.raises(CommandError, match="0-9"):
        validate("/dtmf:12x")
    with pytest.raises(CommandError, match="post-dial"):
        validate("555,1x")


# --- WM_COPYDATA (facts §1.3, §1.4) ------------------------------------------------------------


def test_encode_copydata_is_utf16le_with_a_two_byte_nul() -> None:
    dw, payload = encode_copydata("5551234")
    assert dw == 2
    assert payload == "5551234".encode("utf-16-le") + b"\x00\x00"
    assert len(payload) == 2 * len("5551234") + 2  # cbData = sizeof(TCHAR) * (len + 1)
    dw, payload = encode_copydata(c.answer(), asynchronous=False)
    assert (dw, payload) == (1, b"/\x00a\x00n\x00s\x00w\x00e\x00r\x00\x00\x00")


def test_encode_copydata_non_bmp_text() -> None:
    _, payload = encode_copydata(c.message("1001", "call me \U0001f4de"))
    assert payload.endswith(b"\x3d\xd8\xde\xdc\x00\x00")  # the surrogate pair, then NUL


def test_encode_copydata_async_needs_320() -> None:
    with pytest.raises(CommandError, match=r"dwData=2 needs 3\.20"):
        encode_copydata("555", version=S19)
    assert encode_copydata("555", asynchronous=False, version=S19)[0] == 1
    assert encode_copydata("555", version=S20)[0] == 2


def test_encode_copydata_revalidates_a_forged_command() -> None:
    forged = Command(text="/resetnoask", verb=Verb.DIAL, min_version=S19, description="x")
    with pytest.raises(CommandError):
        encode_copydata(forged)
    with pytest.raises(CommandError):
        encode_copydata("sips:1@x")


# --- properties --------------------------------------------------------------------------------

NUMBERS = st.text(alphabet="0123456789+*#", min_size=1, max_size=20)
HOSTS = st.from_regex(r"[a-z][a-z0-9]{0,10}(\.[a-z]{2,5}){0,2}", fullmatch=True)
TARGETS = st.one_of(
    NUMBERS,
    st.builds(lambda n, h: f"{n}@{h}", NUMBERS, HOSTS),
    st.builds(lambda s, n: s + n, st.sampled_from(["sip:", "TEL:", "callto://", "dial:"]), NUMBERS),
)


@given(
    TARGETS,
    st.one_of(
        st.none(), st.text(alphabet="0123456789*#ABCD,", min_size=1).filter(lambda d: d.strip(","))
    ),
)
def test_dial_means_the_same_on_every_version(target: str, dtmf: str | None) -> None:
    cmd = c.dial(target, dtmf=dtmf)
    assert cmd.min_version == S19
    assert cmd.max_version is None
    for version in ALL:
        assert meaning(parse(cmd.text, version)) == meaning(cmd)
    assert validate(cmd.text) == cmd


TEXTS = st.text(
    st.characters(blacklist_categories=("Cc", "Cs"), blacklist_characters="\x00"),
    min_size=1,
    max_size=200,
).filter(
    lambda t: (
        t.strip(WHITESPACE) and "/account:" not in t.casefold() and "/password:" not in t.casefold()
    )
)


@given(NUMBERS, TEXTS)
def test_message_round_trips_through_the_parser(number: str, text: str) -> None:
    cmd = c.message(number, text)
    assert cmd.message == text.strip(WHITESPACE)
    for version in ALL:
        parsed = parse(cmd.text, version)
        assert (parsed.verb, parsed.target, parsed.message) == (Verb.MESSAGE, number, cmd.message)


@given(st.text(max_size=60))
def test_parser_and_validator_only_raise_bridge_errors(text: str) -> None:
    for version in ALL:
        for channel in Channel:
            try:
                cmd = parse(text, version, channel=channel)
            except BridgeError:
                continue
            assert cmd.works_on(version)
            with contextlib.suppress(BridgeError):
                validate(text, version, channel=channel)
