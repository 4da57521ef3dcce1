"""CommandLineToArgvW, quoting, the profile read and MSIP::RunCmd (facts §2.3, §2.6)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from microsip_bridge.errors import CommandError
from microsip_bridge.microsip.cmdline import (
    command_line_to_argv,
    join_command_line,
    microsip_run_command,
    microsip_shell_execute,
    profile_string_as_read,
    quote_arg,
    quote_program,
    split_command_line,
)
from microsip_bridge.microsip.crt import utf16_len

# Microsoft's table in "Parsing C++ command-line arguments" (the arguments after the program).
MICROSOFT_EXAMPLES = [
    (r'"a b c" d e', ["a b c", "d", "e"]),
    (r'"ab\"c" "\\" d', ['ab"c', "\\", "d"]),
    (r"a\\\b d" + '"e f"g h', [r"a\\\b", "de fg", "h"]),
    (r"a\\\"b c d", [r"a\"b", "c", "d"]),
    (r'a\\\\"b c" d e', [r"a\\b c", "d", "e"]),
]

# Raymond Chen, "What's up with the strange treatment of quotation marks and backslashes by
# CommandLineToArgvW" (The Old New Thing, 2010-09-17).
OLD_NEW_THING_EXAMPLES = [
    (r'program.exe "hello there.txt"', ["program.exe", "hello there.txt"]),
    (r'program.exe "C:\Hello there.txt"', ["program.exe", r"C:\Hello there.txt"]),
    (r'program.exe "hello\"there"', ["program.exe", 'hello"there']),
    (r'program.exe "hello\\"', ["program.exe", "hello\\"]),
]


@pytest.mark.parametrize(("args", "expected"), MICROSOFT_EXAMPLES)
def test_microsoft_documented_examples(args: str, expected: list[str]) -> None:
    assert command_line_to_argv("prog.exe " + args) == ["prog.exe", *expected]


@pytest.mark.parametrize(("cmdline", "expected"), OLD_NEW_THING_EXAMPLES)
def test_old_new_thing_examples(cmdline: str, expected: list[str]) -> None:
    assert command_line_to_argv(cmdline) == expected


def test_doubled_quote_keeps_shell32s_pre_2008_rule() -> None:
    # Microsoft's table gives 'ab" c d' for a"b"" c d: that is the C runtime since 2008.
    # CommandLineToArgvW kept the older rule: the second quote is literal AND ends the quoted
    # part (Wine dlls/shcore/main.c; matches real Windows output for "a ""b"" c").
    assert command_line_to_argv('p a"b"" c d') == ["p", 'ab"', "c", "d"]
    assert command_line_to_argv('p "a ""b"" c"') == ["p", 'a "b', "c"]


@pytest.mark.parametrize(
    ("quotes", "expected"),
    [
        ('""', [""]),  # open + close: an empty argument
        ('"""', ['"']),  # 3 quotes: one literal, closed
        ('""""', ['"']),  # 3 + 1: one literal, then a quote opens again (to the end)
        ('"""""', ['"']),  # 3 + 2: the 5th closes an empty quoted part
        ('""""""', ['""']),  # 6: two literals
    ],
)
def test_runs_of_quotes_follow_the_three_quote_cycle(quotes: str, expected: list[str]) -> None:
    assert command_line_to_argv("p " + quotes) == ["p", *expected]


def test_argv0_rules_differ_from_the_arguments() -> None:
    # Quoted program: everything up to the next quote, backslashes literal, and the next argument
    # may start right after the closing quote.
    assert command_line_to_argv('"C:\\dir with space\\" a') == ["C:\\dir with space\\", "a"]
    assert command_line_to_argv('"a b"c d') == ["a b", "c", "d"]
    # Unquoted program: up to the first space or tab; a quote in it is an ordinary character.
    assert command_line_to_argv('a"b c') == ['a"b', "c"]
    assert command_line_to_argv("C:\\x\\\\y\\ z") == ["C:\\x\\\\y\\", "z"]
    # Leading whitespace gives an empty program.
    assert command_line_to_argv(" a b") == ["", "a", "b"]
    assert command_line_to_argv("\ta") == ["", "a"]


def test_empty_command_line_gives_the_callers_exe() -> None:
    assert command_line_to_argv("", exe_path="C:\\MicroSIP\\microsip.exe") == [
        "C:\\MicroSIP\\microsip.exe"
    ]


def test_only_space_and_tab_separate() -> None:
    assert command_line_to_argv("p a\nb\rc\x0bd") == ["p", "a\nb\rc\x0bd"]
    assert command_line_to_argv("p a\u3000b\u00a0c") == ["p", "a\u3000b\u00a0c"]
    assert command_line_to_argv("p  a \t b   ") == ["p", "a", "b"]


def test_unterminated_quotes_are_reported() -> None:
    assert split_command_line('"C:\\x\\hook.exe ring').unterminated_quote
    assert split_command_line('"C:\\x\\hook.exe ring').argv == ["C:\\x\\hook.exe ring"]
    assert split_command_line('p "a b').unterminated_quote
    assert split_command_line('p "a b').argv == ["p", "a b"]
    assert not split_command_line('p "a b"').unterminated_quote
    assert not split_command_line('"p" a').unterminated_quote


# An independent model of the same function, written as a state machine (the shape of Chris
# Wellons' fuzzed cmdline.c) rather than Wine's quote counting: the two must agree everywhere.
def _reference_argv(cmd: str) -> list[str]:
    argv: list[list[str]] = [[]]
    i, n = 0, len(cmd)
    state = "argv0"
    if n and cmd[0] == '"':
        i, state = 1, "argv0-quoted"
    while i < n:
        c = cmd[i]
        i += 1
        if state == "argv0":
            if c in " \t":
                state = "between"
            else:
                argv[0].append(c)
        elif state == "argv0-quoted":
            if c == '"':
                state = "between"
            else:
                argv[0].append(c)
        elif state == "between":
            if c in " \t":
                continue
            argv.append([])
            state = "plain"
            i -= 1
        elif state in ("plain", "quoted"):
            if c in " \t" and state == "plain":
                state = "between"
            elif c == "\\":
                run = 1
                while i < n and cmd[i] == "\\":
                    run += 1
                    i += 1
                if i < n and cmd[i] == '"':
                    argv[-1].extend("\\" * (run // 2))
                    if run % 2:
                        argv[-1].append('"')
                        i += 1
                else:
                    argv[-1].extend("\\" * run)
            elif c == '"':
                if state == "plain":
                    state = "quoted"
                elif i < n and cmd[i] == '"':
                    argv[-1].append('"')  # "" inside quotes: a quote, and out of quotes
                    i += 1
                    state = "plain"
                else:
                    state = "plain"
            else:
                argv[-1].append(c)
    return ["".join(a) for a in argv]


TRICKY = st.text(alphabet=st.sampled_from(['"', "\\", " ", "\t", "a", "é"]), max_size=30)


@given(TRICKY)
def test_agrees_with_an_independent_model(cmd: str) -> None:
    if cmd:
        assert command_line_to_argv(cmd) == _reference_argv(cmd)


NO_NUL = st.text(st.characters(blacklist_characters="\x00", blacklist_categories=["Cs"]))


@given(NO_NUL)
def test_quote_arg_round_trips_after_a_program(arg: str) -> None:
    assert command_line_to_argv("prog " + quote_arg(arg)) == ["prog", arg]


@given(st.lists(NO_NUL, max_size=6), NO_NUL.filter(lambda s: '"' not in s))
def test_join_command_line_round_trips(args: list[str], program: str) -> None:
    # argv[0] has its own rules, so it is quoted with quote_program, not quote_arg.
    argv = [program, *args]
    assert command_line_to_argv(join_command_line(argv)) == argv


def test_quote_arg_leaves_plain_tokens_and_doubles_only_backslashes_before_quotes() -> None:
    assert quote_arg("ring") == "ring"
    assert quote_arg("C:\\x\\y") == "C:\\x\\y"  # backslashes not before a quote are literal
    assert quote_arg("") == '""'
    assert quote_arg("a b\\") == '"a b\\\\"'
    assert quote_arg('say "hi"') == '"say \\"hi\\""'


def test_quote_program_quotes_only_whitespace_and_refuses_quotes() -> None:
    assert quote_program("C:\\x\\hook.exe") == "C:\\x\\hook.exe"
    assert quote_program("C:\\Program Files\\hook.exe") == '"C:\\Program Files\\hook.exe"'
    assert quote_program("") == '""'
    with pytest.raises(CommandError):
        quote_program('C:\\a"b.exe')
    with pytest.raises(CommandError):
        join_command_line([])


# --- GetPrivateProfileString (facts §2.1, §2.6) -------------------------------------------------


def test_profile_read_removes_one_pair_of_quotes_and_trims() -> None:
    assert profile_string_as_read('  "C:\\Program Files\\x\\hook.exe"  ') == (
        "C:\\Program Files\\x\\hook.exe"
    )
    assert profile_string_as_read("'abc'") == "abc"
    assert profile_string_as_read('""abc""') == '"abc"'  # one pair only
    assert profile_string_as_read('"C:\\x\\hook.exe" ring') == '"C:\\x\\hook.exe" ring'


def test_profile_read_keeps_at_most_255_utf16_units() -> None:
    # MicroSIP reads cmd* keys into a 256-TCHAR buffer (facts §2.1).
    assert profile_string_as_read("x" * 300) == "x" * 255
    assert profile_string_as_read("y" * 255) == "y" * 255
    # A character outside the BMP takes two units; the 255th unit cuts it in half.
    value = "a" * 254 + "\U0001f4de" + "b"
    assert utf16_len(value) == 257
    read = profile_string_as_read(value)
    assert utf16_len(read) == 255
    assert read == "a" * 254 + "\ud83d"  # the lone high surrogate Windows would copy


# --- MSIP::RunCmd (facts §2.3) ------------------------------------------------------------------


def test_runcmd_recommended_form_from_the_facts() -> None:
    # facts §2.6: the hook receives "C:\msipbridge\hook.py ring <number>".
    value = '"C:\\Python312\\pythonw.exe" C:\\msipbridge\\hook.py ring'
    assert microsip_run_command(value, "1001") == [
        "C:\\Python312\\pythonw.exe",
        "C:\\msipbridge\\hook.py",
        "ring",
        "1001",
    ]


def test_runcmd_rejoins_arguments_without_quotes() -> None:
    # facts §2.3 1: a quoted argument with spaces loses its quotes and falls apart.
    value = '"C:\\Program Files\\x\\tool.exe" "two words" end'
    call = microsip_shell_execute(value, "555")
    assert call is not None
    assert call.file == "C:\\Program Files\\x\\tool.exe"
    assert call.parameters == "two words end 555"
    assert microsip_run_command(value, "555")[1:] == ["two", "words", "end", "555"]


def test_runcmd_number_is_last_and_unquoted_and_placeholders_stay_literal() -> None:
    # facts §2.3 2, §9: no placeholder substitution; the number is appended last.
    assert microsip_run_command("C:\\x\\t.exe %1 %callerid%", "42") == [
        "C:\\x\\t.exe",
        "%1",
        "%callerid%",
        "42",
    ]
    # Appended unquoted: a number with a space arrives as two arguments.
    assert microsip_run_command("C:\\x\\t.exe ring", "a b")[2:] == ["a", "b"]


def test_runcmd_empty_number_adds_no_argument() -> None:
    # facts §2.4: "An empty value means no argument is added at all."
    assert microsip_run_command("C:\\x\\t.exe ring", "") == ["C:\\x\\t.exe", "ring"]
    assert microsip_run_command("C:\\x\\t.exe", "") == ["C:\\x\\t.exe"]
    call = microsip_shell_execute("C:\\x\\t.exe", "77")
    assert call is not None
    assert call.parameters == "77"


def test_runcmd_quoted_whole_value_breaks_after_the_profile_read() -> None:
    # facts §2.6: GetPrivateProfileString strips the quotes, then the path splits at its space.
    stored = '"C:\\Program Files\\x\\hook.exe"'
    assert microsip_run_command(profile_string_as_read(stored), "9") == [
        "C:\\Program",
        "Files\\x\\hook.exe",
        "9",
    ]


def test_runcmd_nothing_runs_for_an_empty_value_or_program() -> None:
    assert microsip_run_command("", "1") == []
    assert microsip_run_command("   ", "1") == []
    assert microsip_shell_execute('"" ring', "1") is None


def test_runcmd_trims_arguments_right_and_parameters_left() -> None:
    # CommandLineToShell right-trims the joined arguments: a quoted trailing blank is lost.
    call = microsip_shell_execute('C:\\t.exe "x "', "5")
    assert call is not None
    assert call.parameters == "x 5"
